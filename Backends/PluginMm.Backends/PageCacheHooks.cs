namespace PluginMm.Backends;

/// <summary>
/// The page-cache halves of <c>vm_uffd_ops</c> that shmem and guest_memfd implement alike in the kernel
/// (<c>filemap_get_folio(FGP_LOCK)</c>, add-locked, remove-and-unlock), written once over the public
/// <see cref="AddressSpace"/> API a third-party backend has.
/// </summary>
internal static class PageCacheHooks
{
    /// <summary>The cached folio at <paramref name="pgoff"/>, locked and referenced, or null (never allocates).</summary>
    public static Folio? GetLocked(Inode inode, long pgoff)
    {
        var folio = inode.Cache.Get(pgoff);
        folio?.Lock();
        return folio;
    }

    /// <summary>Locks <paramref name="folio"/> and inserts it at the VMA's index for <paramref name="address"/>; unlocks on error (EEXIST).</summary>
    public static Errno AddLocked(Folio folio, in VmaView vma, ulong address)
    {
        folio.Lock();
        var e = vma.File!.Cache.Add(folio, vma.PageIndex(address));
        if (e != Errno.None)
            folio.Unlock();
        return e;
    }

    /// <summary>Removes <paramref name="folio"/> from the page cache and unlocks it.</summary>
    public static void RemoveUnlock(Folio folio, in VmaView vma)
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
}
