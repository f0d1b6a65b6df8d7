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
/// PMM0030: adds the missing <c>PageFree</c> or <c>MigrateToRam</c> hook to a <c>[DevPagemapOps]</c> class with the exact
/// signature and a body that says what the kernel expects of it (the author fills in the driver side).
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(AddDevPagemapHookCodeFixProvider)), Shared]
public sealed class AddDevPagemapHookCodeFixProvider : DocumentCodeFixProvider
{
    /// <summary>The equivalence key of every action of this provider (so fix-all groups them).</summary>
    public const string Key = "PMM0030.AddDevPagemapHook";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(DiagnosticIds.MissingDevPagemapHook);

    /// <inheritdoc/>
    protected override string EquivalenceKey => Key;

    /// <inheritdoc/>
    protected override string? Title(Diagnostic diagnostic) =>
        diagnostic.Properties.TryGetValue(DiagnosticDescriptors.HookProperty, out var hook) && hook is not null ? $"Add hook '{hook}'" : null;

    /// <inheritdoc/>
    protected override async Task<Document> FixAsync(Document document, ImmutableArray<Diagnostic> diagnostics, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        var additions = new Dictionary<TypeDeclarationSyntax, List<string>>();
        foreach (var diagnostic in diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(DiagnosticDescriptors.HookProperty, out var hook) || hook is null
                || root.FindToken(diagnostic.Location.SourceSpan.Start).Parent?.FirstAncestorOrSelf<TypeDeclarationSyntax>() is not { } type
                || type.Members.OfType<MethodDeclarationSyntax>().Any(m => m.Identifier.ValueText == hook))
            {
                continue;
            }

            if (!additions.TryGetValue(type, out var hooks))
            {
                additions[type] = hooks = new List<string>();
            }

            if (!hooks.Contains(hook))
            {
                hooks.Add(hook);
            }
        }

        if (additions.Count == 0)
        {
            return document;
        }

        string newLine = HookStubs.NewLine(await document.GetTextAsync(cancellationToken).ConfigureAwait(false));
        var newRoot = root.ReplaceNodes(additions.Keys, (original, rewritten) =>
        {
            var result = rewritten;
            foreach (var hook in additions[original].OrderBy(h => System.Array.FindIndex(DevPagemapCatalog.All, x => x.Name == h)))
            {
                if (Stub(hook, newLine) is { } stub)
                {
                    result = result.AddMembers(stub);
                }
            }

            return result;
        });
        var changed = document.WithSyntaxRoot(newRoot);
        changed = await Simplifier.ReduceAsync(changed, Simplifier.Annotation, cancellationToken: cancellationToken).ConfigureAwait(false);
        return await HookStubs.FormatAsync(changed, newLine, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The hook with the exact signature and the contract's obligations as a TODO, in the document's line ending.</summary>
    internal static MemberDeclarationSyntax? Stub(string hook, string newLine)
    {
        string[]? body = hook switch
        {
            "PageFree" =>
            [
                "{",
                "    // TODO: take the page back into the driver's free list (" + DevPagemapCatalog.PageFree.KernelName + "); reuse it with page.ZoneDevicePageInit().",
                "}",
            ],
            "MigrateToRam" =>
            [
                "{",
                "    // TODO: migrate vmf.Folio back to system memory with migrate_vma_setup/pages/finalize (fault_page = vmf.Folio) (" + DevPagemapCatalog.MigrateToRam.KernelName + ").",
                "    return global::PluginMm.VmFaultResult.SigBus;",
                "}",
            ],
            _ => null,
        };
        var signature = System.Array.Find(DevPagemapCatalog.All, h => h.Name == hook)?.Signature;
        return body is null || signature is null ? null : HookStubs.Member(newLine, [signature, .. body]);
    }
}
