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
/// PMM0001 (a required hook is missing) and PMM0009 (FilemapAdd or FilemapRemove without the other): adds each missing
/// hook, with the exact signature and the kernel's standard body (<see cref="HookStubs"/>), to the memory type.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(AddMissingHookCodeFixProvider)), Shared]
public sealed class AddMissingHookCodeFixProvider : DocumentCodeFixProvider
{
    /// <summary>The equivalence key of every action of this provider (so fix-all groups them).</summary>
    public const string Key = "PMM0001.AddMissingHook";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(DiagnosticIds.MissingRequiredHook, DiagnosticIds.UnpairedFilemapHook);

    /// <inheritdoc/>
    protected override string EquivalenceKey => Key;

    /// <inheritdoc/>
    protected override string? Title(Diagnostic diagnostic) =>
        diagnostic.Properties.TryGetValue(DiagnosticDescriptors.HookProperty, out var hook) && hook is not null && HookCatalog.TryGetHook(hook, out _)
            ? $"Add hook '{hook}'"
            : null;

    /// <inheritdoc/>
    protected override async Task<Document> FixAsync(Document document, ImmutableArray<Diagnostic> diagnostics, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        // Group the missing hooks by the class declaration they belong to, in table order, without duplicates.
        var hooksByType = new Dictionary<TypeDeclarationSyntax, SortedSet<int>>();
        foreach (var diagnostic in diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(DiagnosticDescriptors.HookProperty, out var name) || name is null
                || !HookCatalog.TryGetHook(name, out var hook)
                || root.FindToken(diagnostic.Location.SourceSpan.Start).Parent?.FirstAncestorOrSelf<TypeDeclarationSyntax>() is not { } type)
            {
                continue;
            }

            if (!hooksByType.TryGetValue(type, out var set))
            {
                hooksByType[type] = set = new SortedSet<int>();
            }

            set.Add((int)hook.Id);
        }

        if (hooksByType.Count == 0)
        {
            return document;
        }

        string newLine = HookStubs.NewLine(await document.GetTextAsync(cancellationToken).ConfigureAwait(false));
        var newRoot = root.ReplaceNodes(hooksByType.Keys, (original, rewritten) =>
        {
            var existing = new HashSet<string>(original.Members.OfType<MethodDeclarationSyntax>().Select(m => m.Identifier.ValueText));
            var stubs = hooksByType[original]
                .Select(i => HookCatalog.All[i])
                .Where(h => !existing.Contains(h.Name))
                .Select(h => HookStubs.Stub(h, newLine))
                .ToArray();
            return rewritten.AddMembers(stubs);
        });

        var changed = document.WithSyntaxRoot(newRoot);
        changed = await Simplifier.ReduceAsync(changed, Simplifier.Annotation, cancellationToken: cancellationToken).ConfigureAwait(false);
        return await HookStubs.FormatAsync(changed, newLine, cancellationToken).ConfigureAwait(false);
    }
}
