namespace PluginMm.Backends;

/// <summary>
/// shmem / tmpfs / memfd (mm/shmem.c with the vm_uffd_ops series); also what backs MAP_SHARED | MAP_ANONYMOUS
/// (<see cref="MemoryTypeAttribute.SharedAnonymous"/>, <c>shmem_zero_setup</c>). Its <c>Fault</c> has no userfault code of its own
/// under the default design: the runtime's generic <c>__do_userfault</c> pre-check (seed 000) traps MISSING and MINOR
/// through <see cref="GetFolioNoAlloc"/>. Under the RFC design (seed 001) the single <see cref="VmFault.UserfaultRetval"/>
/// call after the page-cache lookup reports the userfault instead.
/// </summary>
[MemoryType("shmem", Backing = Backing.PageCache, Modes = UffdModes.Missing | UffdModes.Wp | UffdModes.Minor, SharedAnonymous = true)]
public static partial class Shmem
{
    /// <summary>Models <c>shmem_can_userfault</c>: every mode.</summary>
    public static bool CanUserfault(in VmaView vma, UffdModes modes) => true;

    /// <summary>
    /// Models <c>shmem_get_folio_noalloc</c> (<c>shmem_get_folio(SGP_NOALLOC)</c>): the cached folio at
    /// <paramref name="pgoff"/>, locked and referenced, or null. Never allocates.
    /// </summary>
    public static Folio? GetFolioNoAlloc(Inode inode, long pgoff)
        => PageCacheHooks.GetLocked(inode, pgoff);

    /// <summary>Models <c>shmem_mfill_folio_alloc</c>: a zeroed order-0 folio from the file's allocator, or null (ENOMEM).</summary>
    public static Folio? AllocFolio(in VmaView vma, ulong address) => vma.File!.Allocator.Alloc();

    /// <summary>
    /// Models <c>shmem_mfill_filemap_add</c> (<c>shmem_add_to_page_cache</c>): locks the folio and inserts it at the VMA's
    /// index for <paramref name="address"/>; EEXIST when the index is cached (another mapping filled it first).
    /// The folio stays locked until the runtime has installed the entry.
    /// </summary>
    public static Errno FilemapAdd(Folio folio, in VmaView vma, ulong address)
        => PageCacheHooks.AddLocked(folio, in vma, address);

    /// <summary>Models <c>shmem_mfill_filemap_remove</c>: takes the folio back out of the page cache and unlocks it.</summary>
    public static void FilemapRemove(Folio folio, in VmaView vma)
        => PageCacheHooks.RemoveAndUnlock(folio, in vma);

    /// <summary>
    /// Models <c>shmem_fault</c> → <c>shmem_get_folio_gfp(SGP_CACHE)</c>: SIGBUS beyond <c>i_size</c>; the cached folio,
    /// or a new zeroed one added to the page cache (a racing insert wins and is used instead). The RFC design's
    /// <see cref="VmFault.UserfaultRetval"/> call sits in <see cref="PageCacheHooks.Fault"/>.
    /// </summary>
    public static VmFaultResult Fault(ref VmFault vmf) => PageCacheHooks.Fault(ref vmf);
}
