using System.Collections.Generic;
using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Simplification;
using PluginMm.Generators.Diagnostics;

namespace PluginMm.Generators.CodeFixes;

/// <summary>
/// PMM0003 (MINOR on anonymous memory, which vma_can_userfault rejects): removes <c>UffdModes.Minor</c> from the
/// attribute's <c>Modes</c>, leaving the other modes (<c>UffdModes.None</c> if it was the only one).
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(DropMinorCodeFixProvider)), Shared]
public sealed class DropMinorCodeFixProvider : DocumentCodeFixProvider
{
    /// <summary>The equivalence key of every action of this provider (so fix-all groups them).</summary>
    public const string Key = "PMM0003.DropMinor";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(DiagnosticIds.ModeNotSupportedByBacking);

    /// <inheritdoc/>
    protected override string EquivalenceKey => Key;

    /// <inheritdoc/>
    protected override string? Title(Diagnostic diagnostic) => "Remove MINOR from Modes";

    /// <inheritdoc/>
    protected override async Task<Document> FixAsync(Document document, ImmutableArray<Diagnostic> diagnostics, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        var modes = new HashSet<ExpressionSyntax>();
        foreach (var diagnostic in diagnostics)
        {
            if (root.FindToken(diagnostic.Location.SourceSpan.Start).Parent?.FirstAncestorOrSelf<TypeDeclarationSyntax>() is not { } type)
            {
                continue;
            }

            foreach (var argument in type.AttributeLists.SelectMany(l => l.Attributes).Where(IsMemoryType)
                .SelectMany(a => a.ArgumentList?.Arguments ?? default))
            {
                if (argument.NameEquals?.Name.Identifier.ValueText == "Modes" && Operands(argument.Expression).Any(IsMinor))
                {
                    modes.Add(argument.Expression);
                }
            }
        }

        if (modes.Count == 0)
        {
            return document;
        }

        var newRoot = root.ReplaceNodes(modes, static (original, _) => WithoutMinor(original));
        var changed = document.WithSyntaxRoot(newRoot);
        return await Simplifier.ReduceAsync(changed, Simplifier.Annotation, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private static ExpressionSyntax WithoutMinor(ExpressionSyntax modes)
    {
        var kept = Operands(modes).Where(o => !IsMinor(o)).Select(o => o.WithoutTrivia()).ToList();
        ExpressionSyntax result = kept.Count == 0
            ? SyntaxFactory.ParseExpression("global::PluginMm.UffdModes.None").WithAdditionalAnnotations(Simplifier.Annotation)
            : kept.Aggregate((left, right) => SyntaxFactory.BinaryExpression(
                SyntaxKind.BitwiseOrExpression,
                left.WithTrailingTrivia(SyntaxFactory.Space),
                SyntaxFactory.Token(SyntaxKind.BarToken).WithTrailingTrivia(SyntaxFactory.Space),
                right));
        return result.WithTriviaFrom(modes);
    }

    /// <summary>The operands of <c>a | b | (c | d)</c>, left to right; any other expression is one operand.</summary>
    private static IEnumerable<ExpressionSyntax> Operands(ExpressionSyntax expression)
    {
        switch (expression)
        {
            case ParenthesizedExpressionSyntax p when p.Expression is BinaryExpressionSyntax { RawKind: (int)SyntaxKind.BitwiseOrExpression }:
                return Operands(p.Expression);
            case BinaryExpressionSyntax b when b.IsKind(SyntaxKind.BitwiseOrExpression):
                return Operands(b.Left).Concat(Operands(b.Right));
            default:
                return new[] { expression };
        }
    }

    private static bool IsMinor(ExpressionSyntax operand) => operand switch
    {
        MemberAccessExpressionSyntax m => m.Name.Identifier.ValueText == "Minor",
        IdentifierNameSyntax i => i.Identifier.ValueText == "Minor",
        _ => false,
    };

    private static bool IsMemoryType(AttributeSyntax attribute) => HookStubs.AttributeName(attribute) is "MemoryType" or "MemoryTypeAttribute";
}
