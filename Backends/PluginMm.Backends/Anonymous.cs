namespace PluginMm.Backends;

/// <summary>
/// Anonymous private memory (the kernel's anon <c>vm_uffd_ops</c> in mm/userfaultfd.c). No page cache and no
/// <c>-&gt;fault</c>: faults go to the runtime's <c>do_anonymous_page</c>. The runtime also uses these hooks for
/// UFFDIO_COPY into any private mapping, as the kernel does.
/// </summary>
[MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing | UffdModes.Wp)]
public static partial class Anonymous
{
    /// <summary>Models <c>anon_can_userfault</c>: everything but MINOR (anonymous memory has no page cache).</summary>
    public static bool CanUserfault(in VmaView vma, UffdModes modes) => (modes & UffdModes.Minor) == 0;

    /// <summary>Models <c>anon_alloc_folio</c> (<c>vma_alloc_folio</c> + memcg charge): a zeroed order-0 folio, or null (ENOMEM).</summary>
    public static Folio? AllocFolio(in VmaView vma, ulong address) => vma.Allocator.Alloc();
}
