using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Formatting;
using Microsoft.CodeAnalysis.Simplification;
using Microsoft.CodeAnalysis.Text;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.CodeFixes;

/// <summary>
/// The text the code fixes insert. Every stub implements the kernel's standard behaviour through the public
/// <c>PluginMm.PageCacheHooks</c> helpers (what shmem does), so a fixed memory type builds and serves faults; a comment
/// says what to replace. Line endings follow the document's, never a hard-coded "\n".
/// </summary>
internal static class HookStubs
{
    /// <summary>The document's line ending: that of its first line, "\n" for a one-line document.</summary>
    public static string NewLine(SourceText text)
    {
        foreach (var line in text.Lines)
        {
            int breakLength = line.EndIncludingLineBreak - line.End;
            if (breakLength > 0)
            {
                return text.ToString(TextSpan.FromBounds(line.End, line.EndIncludingLineBreak));
            }
        }

        return "\n";
    }

    /// <summary>Formats the annotated nodes with <paramref name="newLine"/> for the line breaks the formatter inserts.</summary>
    public static Task<Document> FormatAsync(Document document, string newLine, CancellationToken cancellationToken)
    {
#pragma warning disable CS0618 // the OptionSet overload is the one Roslyn 4.14 offers code fixes for a per-document option
        var options = document.Project.Solution.Options.WithChangedOption(FormattingOptions.NewLine, LanguageNames.CSharp, newLine);
        return Formatter.FormatAsync(document, Formatter.Annotation, options, cancellationToken);
#pragma warning restore CS0618
    }

    /// <summary>The simple name of an attribute as written (<c>X</c> for <c>X</c>, <c>N.X</c>, <c>global::X</c>).</summary>
    public static string AttributeName(AttributeSyntax attribute) => attribute.Name switch
    {
        QualifiedNameSyntax q => q.Right.Identifier.ValueText,
        AliasQualifiedNameSyntax a => a.Name.Identifier.ValueText,
        SimpleNameSyntax s => s.Identifier.ValueText,
        _ => string.Empty,
    };

    /// <summary>A member parsed from <paramref name="lines"/> joined with <paramref name="newLine"/>, annotated to be simplified and formatted.</summary>
    public static MemberDeclarationSyntax Member(string newLine, params string[] lines) =>
        SyntaxFactory.ParseMemberDeclaration(newLine + string.Join(newLine, lines) + newLine)!
            .WithAdditionalAnnotations(Simplifier.Annotation, Formatter.Annotation);

    /// <summary>The body lines of <paramref name="hook"/>'s stub (without braces).</summary>
    public static string[] Body(HookDefinition hook) => hook.Id switch
    {
        HookId.CanUserfault => new[]
        {
            "// Admits every mode the attribute declares (shmem_can_userfault). Replace it to refuse what this memory cannot serve (vm_uffd_ops->can_userfault).",
            "return true;",
        },
        HookId.GetFolioNoAlloc => new[]
        {
            "// The standard page-cache lookup (shmem_get_folio_noalloc): the cached folio, locked, or null. Replace it if this memory keeps its folios elsewhere.",
            "return global::PluginMm.PageCacheHooks.GetLocked(inode, pgoff);",
        },
        HookId.AllocFolio => new[]
        {
            "// A zeroed order-0 folio from the file's or the VMA's allocator (shmem_mfill_folio_alloc, anon_alloc_folio). Replace it to allocate elsewhere.",
            "return (vma.File?.Allocator ?? vma.Allocator).Alloc();",
        },
        HookId.FilemapAdd => new[]
        {
            "// The standard page-cache insert (shmem_mfill_filemap_add): lock the folio and add it at the address's index. Replace it for another cache.",
            "return global::PluginMm.PageCacheHooks.AddLocked(folio, in vma, address);",
        },
        HookId.FilemapRemove => new[]
        {
            "// The standard undo of FilemapAdd (shmem_mfill_filemap_remove): remove from the page cache and unlock. Replace it together with FilemapAdd.",
            "global::PluginMm.PageCacheHooks.RemoveAndUnlock(folio, in vma);",
        },
        _ => new[]
        {
            "// The standard page-cache fault (shmem_fault): SIGBUS beyond i_size, else the cached folio or a new zeroed one. Replace it to fill pages from elsewhere.",
            "return global::PluginMm.PageCacheHooks.Fault(ref vmf);",
        },
    };

    /// <summary>The stub of <paramref name="hook"/>: the exact signature and the standard body.</summary>
    public static MemberDeclarationSyntax Stub(HookDefinition hook, string newLine)
    {
        var lines = new System.Collections.Generic.List<string> { hook.Signature, "{" };
        foreach (var line in Body(hook))
        {
            lines.Add("    " + line);
        }

        lines.Add("}");
        return Member(newLine, lines.ToArray());
    }
}
