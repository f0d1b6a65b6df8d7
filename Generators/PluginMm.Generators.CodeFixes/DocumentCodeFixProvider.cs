using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;

namespace PluginMm.Generators.CodeFixes;

/// <summary>
/// A code fix that rewrites one document for a batch of its diagnostics. The single fix and fix-all share one code
/// path (<see cref="FixAsync"/>), so fix-all merges the edits of one document instead of racing text changes.
/// </summary>
public abstract class DocumentCodeFixProvider : CodeFixProvider
{
    /// <summary>The equivalence key of every action of this provider (so fix-all groups them).</summary>
    protected abstract string EquivalenceKey { get; }

    /// <inheritdoc/>
    public sealed override FixAllProvider GetFixAllProvider() =>
        FixAllProvider.Create(async (context, document, diagnostics) => await FixAsync(document, diagnostics, context.CancellationToken).ConfigureAwait(false));

    /// <inheritdoc/>
    public sealed override Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        foreach (var diagnostic in context.Diagnostics)
        {
            if (Title(diagnostic) is { } title)
            {
                var document = context.Document;
                context.RegisterCodeFix(
                    CodeAction.Create(title, ct => FixAsync(document, ImmutableArray.Create(diagnostic), ct), EquivalenceKey),
                    diagnostic);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>The action's title, or null if this diagnostic cannot be fixed.</summary>
    protected abstract string? Title(Diagnostic diagnostic);

    /// <summary>Fixes every diagnostic of <paramref name="diagnostics"/> (all in <paramref name="document"/>).</summary>
    protected abstract Task<Document> FixAsync(Document document, ImmutableArray<Diagnostic> diagnostics, CancellationToken cancellationToken);
}
