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
using PluginMm.Generators.Hmm;

namespace PluginMm.Generators.CodeFixes;

/// <summary>
/// PMM0011: adds the missing <c>Invalidate</c> hook to an HMM driver's <c>[MmuIntervalNotifierOps]</c> class, with the
/// exact signature and the one thing every implementation must do (<c>mmu_interval_set_seq</c>); the author adds the
/// device-side invalidation under the driver's lock.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(AddInvalidateHookCodeFixProvider)), Shared]
public sealed class AddInvalidateHookCodeFixProvider : DocumentCodeFixProvider
{
    /// <summary>The equivalence key of every action of this provider (so fix-all groups them).</summary>
    public const string Key = "PMM0011.AddInvalidate";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(DiagnosticIds.MissingNotifierInvalidate);

    /// <inheritdoc/>
    protected override string EquivalenceKey => Key;

    /// <inheritdoc/>
    protected override string? Title(Diagnostic diagnostic) => "Add hook 'Invalidate'";

    /// <inheritdoc/>
    protected override async Task<Document> FixAsync(Document document, ImmutableArray<Diagnostic> diagnostics, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        var types = new HashSet<TypeDeclarationSyntax>();
        foreach (var diagnostic in diagnostics)
        {
            if (root.FindToken(diagnostic.Location.SourceSpan.Start).Parent?.FirstAncestorOrSelf<TypeDeclarationSyntax>() is { } type
                && !type.Members.OfType<MethodDeclarationSyntax>().Any(m => m.Identifier.ValueText == NotifierCatalog.InvalidateName))
            {
                types.Add(type);
            }
        }

        if (types.Count == 0)
        {
            return document;
        }

        string newLine = HookStubs.NewLine(await document.GetTextAsync(cancellationToken).ConfigureAwait(false));
        var newRoot = root.ReplaceNodes(types, (_, rewritten) => rewritten.AddMembers(Stub(newLine)));
        var changed = document.WithSyntaxRoot(newRoot);
        changed = await Simplifier.ReduceAsync(changed, Simplifier.Annotation, cancellationToken: cancellationToken).ConfigureAwait(false);
        return await HookStubs.FormatAsync(changed, newLine, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The hook with the exact signature: it records the invalidation; dropping device mappings is left to write.</summary>
    internal static MemberDeclarationSyntax Stub(string newLine) => HookStubs.Member(
        newLine,
        NotifierCatalog.InvalidateSignature,
        "{",
        "    // TODO: under the driver lock, drop the device's mappings of [range.Start, range.End) (" + NotifierCatalog.InvalidateKernelName + ").",
        "    interval.SetSeq(curSeq);",
        "    return true;",
        "}");
}
