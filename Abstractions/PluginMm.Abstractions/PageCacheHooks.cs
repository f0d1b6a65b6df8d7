namespace PluginMm;

/// <summary>
/// The page-cache halves of <c>vm_uffd_ops</c> that shmem and guest_memfd implement alike in the kernel
/// (<c>filemap_get_folio(FGP_LOCK)</c>, add-locked, remove-and-unlock) and the allocating half of their faults, written
/// once over the public <see cref="AddressSpace"/> API. The built-in backends call them, and so do the hooks the PMM0001
/// code fix writes: a page-cache memory type that calls them behaves like shmem until it needs more.
/// </summary>
public static class PageCacheHooks
{
    /// <summary>
    /// Models <c>filemap_get_folio(mapping, index, FGP_LOCK)</c> as <c>shmem_get_folio_noalloc</c> uses it: the cached folio
    /// at <paramref name="pgoff"/>, locked and referenced, or null (never allocates).
    /// </summary>
    public static Folio? GetLocked(Inode inode, long pgoff)
    {
        var folio = inode.Cache.Get(pgoff);
        folio?.Lock();
        return folio;
    }

    /// <summary>
    /// Models <c>shmem_mfill_filemap_add</c> (<c>__folio_set_locked</c> + <c>shmem_add_to_page_cache</c>): locks
    /// <paramref name="folio"/> and inserts it at the VMA's index for <paramref name="address"/>; unlocks it again on
    /// error (EEXIST when the index is cached).
    /// </summary>
    public static Errno AddLocked(Folio folio, in VmaView vma, ulong address)
    {
        folio.Lock();
        var e = vma.File!.Cache.Add(folio, vma.PageIndex(address));
        if (e != Errno.None)
            folio.Unlock();
        return e;
    }

    /// <summary>Models <c>shmem_mfill_filemap_remove</c> (<c>filemap_remove_folio</c> + <c>folio_unlock</c>): removes <paramref name="folio"/> from the page cache and unlocks it.</summary>
    public static void RemoveAndUnlock(Folio folio, in VmaView vma)
    {
        vma.File!.Cache.Remove(folio);
        folio.Unlock();
    }

    /// <summary>
    /// The allocating half of a page-cache fault (<c>shmem_alloc_and_add_folio</c>, <c>__filemap_get_folio(FGP_CREAT)</c>):
    /// a zeroed, uptodate folio added at <paramref name="pgoff"/>, returned with the caller's reference. A racing insert wins
    /// and its folio is used instead. Returns <see cref="VmFaultResult.None"/> with <paramref name="folio"/> set,
    /// <see cref="VmFaultResult.Oom"/>, or <see cref="VmFaultResult.NoPage"/> when the index was added and punched out
    /// again meanwhile (the fault is retried, as the kernel does on -EAGAIN).
    /// </summary>
    public static VmFaultResult AddNewFolio(Inode inode, long pgoff, out Folio? folio)
    {
        folio = null;
        var fresh = inode.Allocator.Alloc();
        if (fresh is null)
            return VmFaultResult.Oom;
        fresh.SetFlags(FolioFlags.Uptodate);
        if (inode.Cache.Add(fresh, pgoff) == Errno.None)
        {
            folio = fresh; // our allocation reference goes to the caller; the cache holds its own
            return VmFaultResult.None;
        }
        fresh.Put();
        folio = inode.Cache.Get(pgoff);
        return folio is null ? VmFaultResult.NoPage : VmFaultResult.None;
    }

    /// <summary>
    /// Models <c>shmem_fault</c> → <c>shmem_get_folio_gfp(SGP_CACHE)</c>: SIGBUS beyond <c>i_size</c>; the cached folio,
    /// or a new zeroed one added to the page cache (a racing insert wins and is used instead). Under the RFC design
    /// (seed 001) the one <see cref="VmFault.UserfaultRetval"/> call after the lookup reports the userfault; it returns
    /// None under the default pre-check design.
    /// </summary>
    public static VmFaultResult Fault(ref VmFault vmf)
    {
        var inode = vmf.Vma.File;
        if (inode is null || vmf.PgOff >= inode.PageCount)
            return VmFaultResult.SigBus;
        var folio = inode.Cache.Get(vmf.PgOff);
        var uffd = vmf.UserfaultRetval(folio is not null);
        if (uffd != VmFaultResult.None)
        {
            folio?.Put();
            return uffd;
        }
        if (folio is null)
        {
            var r = AddNewFolio(inode, vmf.PgOff, out folio);
            if (folio is null)
                return r;
        }
        vmf.Folio = folio;
        return VmFaultResult.None;
    }
}
