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
using Microsoft.CodeAnalysis.Formatting;
using Microsoft.CodeAnalysis.Simplification;
using PluginMm.Generators.Diagnostics;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.CodeFixes;

/// <summary>
/// PMM0002: rewrites a hook method's signature to the expected one (static, public or internal, exact return and
/// parameter types and ref kinds, not generic, no <c>[UnmanagedCallersOnly]</c>) and keeps its body; parameters keep
/// their names when the count matches, so the body still binds. A method without a body gets the standard one.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(FixHookSignatureCodeFixProvider)), Shared]
public sealed class FixHookSignatureCodeFixProvider : DocumentCodeFixProvider
{
    /// <summary>The equivalence key of every action of this provider (so fix-all groups them).</summary>
    public const string Key = "PMM0002.FixHookSignature";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(DiagnosticIds.HookSignatureMismatch);

    /// <inheritdoc/>
    protected override string EquivalenceKey => Key;

    /// <inheritdoc/>
    protected override string? Title(Diagnostic diagnostic) =>
        diagnostic.Properties.TryGetValue(DiagnosticDescriptors.HookProperty, out var hook) && hook is not null && HookCatalog.TryGetHook(hook, out _)
            ? $"Use the signature of hook '{hook}'"
            : null;

    /// <inheritdoc/>
    protected override async Task<Document> FixAsync(Document document, ImmutableArray<Diagnostic> diagnostics, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        var targets = new Dictionary<MethodDeclarationSyntax, HookDefinition>();
        foreach (var diagnostic in diagnostics)
        {
            if (diagnostic.Properties.TryGetValue(DiagnosticDescriptors.HookProperty, out var name) && name is not null
                && HookCatalog.TryGetHook(name, out var hook)
                && root.FindToken(diagnostic.Location.SourceSpan.Start).Parent?.FirstAncestorOrSelf<MethodDeclarationSyntax>() is { } method
                && method.Identifier.ValueText == hook.Name)
            {
                targets[method] = hook;
            }
        }

        if (targets.Count == 0)
        {
            return document;
        }

        string newLine = HookStubs.NewLine(await document.GetTextAsync(cancellationToken).ConfigureAwait(false));
        var newRoot = root.ReplaceNodes(targets.Keys, (original, rewritten) => Rewrite(rewritten, targets[original], newLine));
        var changed = document.WithSyntaxRoot(newRoot);
        changed = await Simplifier.ReduceAsync(changed, Simplifier.Annotation, cancellationToken: cancellationToken).ConfigureAwait(false);
        return await HookStubs.FormatAsync(changed, newLine, cancellationToken).ConfigureAwait(false);
    }

    private static MethodDeclarationSyntax Rewrite(MethodDeclarationSyntax method, HookDefinition hook, string newLine)
    {
        var expected = (MethodDeclarationSyntax)HookStubs.Stub(hook, newLine);
        var standardBody = expected.Body!.WithAdditionalAnnotations(Formatter.Annotation);

        // Parameters: the expected types and ref kinds; the user's names when there are as many, so the body binds.
        var parameters = expected.ParameterList;
        if (method.ParameterList.Parameters.Count == parameters.Parameters.Count)
        {
            parameters = parameters.WithParameters(SyntaxFactory.SeparatedList(
                parameters.Parameters.Select((p, i) => p.WithIdentifier(method.ParameterList.Parameters[i].Identifier.WithoutTrivia()))));
        }

        // Modifiers: internal stays internal, anything else becomes public; static; unsafe is kept.
        var modifiers = new List<SyntaxToken>
        {
            SyntaxFactory.Token(method.Modifiers.Any(SyntaxKind.InternalKeyword) && !method.Modifiers.Any(SyntaxKind.ProtectedKeyword)
                ? SyntaxKind.InternalKeyword
                : SyntaxKind.PublicKeyword),
            SyntaxFactory.Token(SyntaxKind.StaticKeyword),
        };
        if (method.Modifiers.Any(SyntaxKind.UnsafeKeyword))
        {
            modifiers.Add(SyntaxFactory.Token(SyntaxKind.UnsafeKeyword));
        }

        var attributes = SyntaxFactory.List(method.AttributeLists
            .Select(list => list.WithAttributes(SyntaxFactory.SeparatedList(list.Attributes.Where(a => !IsUnmanagedCallersOnly(a)))))
            .Where(list => list.Attributes.Count > 0));

        var result = method
            .WithAttributeLists(attributes)
            .WithModifiers(SyntaxFactory.TokenList(modifiers.Select(m => m.WithTrailingTrivia(SyntaxFactory.Space))))
            .WithReturnType(expected.ReturnType.WithTrailingTrivia(SyntaxFactory.Space))
            .WithTypeParameterList(null)
            .WithConstraintClauses(default)
            .WithParameterList(parameters.WithTriviaFrom(method.ParameterList));

        if (method.Body is null && method.ExpressionBody is null)
        {
            // A partial definition without an implementation, or an extern: give it the standard body.
            result = result.WithSemicolonToken(default).WithBody(standardBody);
        }

        return result
            .WithLeadingTrivia(method.GetLeadingTrivia())
            .WithTrailingTrivia(method.GetTrailingTrivia())
            .WithAdditionalAnnotations(Simplifier.Annotation); // not reformatted: the user's layout of the body stays
    }

    private static bool IsUnmanagedCallersOnly(AttributeSyntax attribute) => HookStubs.AttributeName(attribute) is "UnmanagedCallersOnly" or "UnmanagedCallersOnlyAttribute";
}
