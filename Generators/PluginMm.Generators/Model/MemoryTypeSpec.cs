using PluginMm.Generators.Helpers;

namespace PluginMm.Generators.Model;

// Every type in Model/ is part of the incremental pipeline's cached state: it must be immutable and have structural
// equality (records, strings, numbers, EquatableArray). Never put an ISymbol, Compilation, SyntaxNode, Location or
// any other Roslyn type in here, or caching breaks (a test walks this graph and fails if one appears).

/// <summary>Everything the emitter needs to write one memory type's table.</summary>
/// <param name="Name">The declared name (<c>[MemoryType("shmem")]</c>).</param>
/// <param name="Backing">The declared backing, by number (Anonymous = 0, PageCache = 1, HugeTlb = 2).</param>
/// <param name="Modes">The declared userfaultfd modes, by bits (Missing = 1, Wp = 2, Minor = 4).</param>
/// <param name="Namespace">The type's namespace, or null for the global namespace.</param>
/// <param name="TypeName">The type's own name, as written in source (keywords escaped).</param>
/// <param name="DeclarationKeyword"><c>class</c> or <c>record</c> (partial parts must agree).</param>
/// <param name="FullyQualifiedName">The <c>global::</c>-qualified name, used by the registry.</param>
/// <param name="ContainingTypes">Outer types, outermost first, as partial re-declarations (e.g. <c>partial class Outer</c>).</param>
/// <param name="HookMask">Which hooks the type declares with the right signature (bit = <see cref="HookId"/>).</param>
/// <param name="SharedAnonymous">The declared <c>SharedAnonymous</c>: the type backs MAP_SHARED | MAP_ANONYMOUS.</param>
internal sealed record MemoryTypeSpec(
    string Name,
    int Backing,
    ulong Modes,
    string? Namespace,
    string TypeName,
    string DeclarationKeyword,
    string FullyQualifiedName,
    EquatableArray<string> ContainingTypes,
    int HookMask,
    bool SharedAnonymous = false)
{
    public bool Has(HookId hook) => (HookMask & (1 << (int)hook)) != 0;
}

/// <summary>One registry entry: the name and where its table lives.</summary>
internal sealed record RegistryEntry(string Name, string FullyQualifiedName);

/// <summary>The assembly's registry: namespace and entries sorted by name (ordinal).</summary>
internal sealed record RegistrySpec(string Namespace, EquatableArray<RegistryEntry> Entries);
