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
}
