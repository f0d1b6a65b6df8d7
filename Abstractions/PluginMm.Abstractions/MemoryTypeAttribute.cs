namespace PluginMm;

/// <summary>
/// Declares a memory type: a backend whose static hook methods the PluginMm generator turns into a
/// <see cref="MemoryTypeOps"/> table (the kernel's <c>vm_operations_struct</c> + <c>vm_uffd_ops</c>).
/// The class must be <c>partial</c>, non-generic, and only nested in partial types.
/// </summary>
/// <remarks>
/// Hook methods are <c>public static</c> (or <c>internal static</c>) methods named after the kernel members:
/// <see cref="HookNames.CanUserfault"/>, <see cref="HookNames.GetFolioNoAlloc"/>, <see cref="HookNames.AllocFolio"/>,
/// <see cref="HookNames.FilemapAdd"/>, <see cref="HookNames.FilemapRemove"/>, <see cref="HookNames.Fault"/> and the optional
/// <see cref="HookNames.Mmap"/>.
/// Their exact signatures are in <see cref="HookSignatures"/>.
/// </remarks>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class MemoryTypeAttribute : Attribute
{
    /// <summary>Declares a memory type called <paramref name="name"/> (unique in a compilation).</summary>
    public MemoryTypeAttribute(string name) => Name = name;

    /// <summary>The memory type's name, e.g. <c>"shmem"</c>. Unique per compilation (PMM0005).</summary>
    public string Name { get; }

    /// <summary>What backs the memory: decides which hooks are required (see the rules in the README).</summary>
    public Backing Backing { get; set; }

    /// <summary>The userfaultfd registration modes this memory type supports.</summary>
    public UffdModes Modes { get; set; }

    /// <summary>
    /// This (page-cache) type backs <c>MAP_SHARED | MAP_ANONYMOUS</c> mappings: the model kernel gives each such mapping a
    /// new file of this type, as Linux's <c>shmem_zero_setup</c> (mm/shmem.c) does with shmem. At most one type in a
    /// kernel's set should say so; the first PageCache type that does is used.
    /// </summary>
    public bool SharedAnonymous { get; set; }
}

/// <summary>What backs a memory type's pages.</summary>
public enum Backing
{
    /// <summary>Anonymous memory (<c>vma_is_anonymous</c>): no page cache; faults go to <c>do_anonymous_page</c>.</summary>
    Anonymous = 0,
    /// <summary>A file with a page cache (shmem, guest_memfd, ...): faults go to <c>__do_fault</c> and the type's <c>Fault</c> hook.</summary>
    PageCache = 1,
    /// <summary>hugetlbfs: its own fault and fill paths at huge-page granularity (<c>hugetlb_fault</c>, <c>mfill_atomic_hugetlb</c>).</summary>
    HugeTlb = 2,
}

/// <summary>userfaultfd registration modes (<c>UFFDIO_REGISTER_MODE_*</c>; values as in the Linux UAPI).</summary>
[Flags]
public enum UffdModes : ulong
{
    /// <summary>No mode.</summary>
    None = 0,
    /// <summary><c>UFFDIO_REGISTER_MODE_MISSING</c>: trap faults on pages that are not there.</summary>
    Missing = 1 << 0,
    /// <summary><c>UFFDIO_REGISTER_MODE_WP</c>: trap writes to write-protected pages.</summary>
    Wp = 1 << 1,
    /// <summary><c>UFFDIO_REGISTER_MODE_MINOR</c>: trap faults on pages present in the page cache but not mapped.</summary>
    Minor = 1 << 2,
}

/// <summary>The hook names the generator recognises, spelled as in the C# contract.</summary>
public static class HookNames
{
    /// <summary><c>vm_uffd_ops->can_userfault</c>.</summary>
    public const string CanUserfault = nameof(CanUserfault);
    /// <summary><c>vm_uffd_ops->get_folio_noalloc</c>.</summary>
    public const string GetFolioNoAlloc = nameof(GetFolioNoAlloc);
    /// <summary><c>vm_uffd_ops->alloc_folio</c>.</summary>
    public const string AllocFolio = nameof(AllocFolio);
    /// <summary><c>vm_uffd_ops->filemap_add</c>.</summary>
    public const string FilemapAdd = nameof(FilemapAdd);
    /// <summary><c>vm_uffd_ops->filemap_remove</c>.</summary>
    public const string FilemapRemove = nameof(FilemapRemove);
    /// <summary><c>vm_operations_struct->fault</c>.</summary>
    public const string Fault = nameof(Fault);
    /// <summary><c>file_operations->mmap</c> (optional).</summary>
    public const string Mmap = nameof(Mmap);
}

/// <summary>The exact hook signatures, as C# source (what PMM0002 shows and the PMM0001 fix inserts).</summary>
public static class HookSignatures
{
    /// <summary>Admission at <c>UFFDIO_REGISTER</c> (<c>vma_can_userfault</c>): may this VMA be registered with the requested modes?</summary>
    public const string CanUserfault = "public static bool CanUserfault(in global::PluginMm.VmaView vma, global::PluginMm.UffdModes modes)";
    /// <summary>Look up the folio at <c>pgoff</c> in the inode's page cache without allocating; returns it with a reference taken, or null.</summary>
    public const string GetFolioNoAlloc = "public static global::PluginMm.Folio? GetFolioNoAlloc(global::PluginMm.Inode inode, long pgoff)";
    /// <summary>Allocate a folio for <c>UFFDIO_COPY</c>/<c>ZEROPAGE</c> at <c>address</c> in <c>vma</c>; null means ENOMEM.</summary>
    public const string AllocFolio = "public static global::PluginMm.Folio? AllocFolio(in global::PluginMm.VmaView vma, ulong address)";
    /// <summary>Insert a freshly filled folio into the page cache at the VMA's offset for <c>address</c>; returns 0 or an errno.</summary>
    public const string FilemapAdd = "public static global::PluginMm.Errno FilemapAdd(global::PluginMm.Folio folio, in global::PluginMm.VmaView vma, ulong address)";
    /// <summary>Undo <c>FilemapAdd</c> when the PTE cannot be installed.</summary>
    public const string FilemapRemove = "public static void FilemapRemove(global::PluginMm.Folio folio, in global::PluginMm.VmaView vma)";
    /// <summary>The genuine fault handler (<c>vm_ops->fault</c>): find or create the folio and put it in <c>vmf.Folio</c>.</summary>
    public const string Fault = "public static global::PluginMm.VmFaultResult Fault(ref global::PluginMm.VmFault vmf)";
    /// <summary>
    /// Optional admission of a new mapping of one of the type's files (<c>file_operations->mmap</c>): <c>vma</c> is the
    /// mapping as requested (flags, file, offset); return 0 to allow it or the errno <c>mmap(2)</c> fails with.
    /// </summary>
    public const string Mmap = "public static global::PluginMm.Errno Mmap(in global::PluginMm.VmaView vma)";
}
