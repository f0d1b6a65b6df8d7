namespace PluginMm.Runtime;

/// <summary>Bits of a <c>/proc/pid/pagemap</c> entry (fs/proc/task_mmu.c) that the model reports.</summary>
[Flags]
public enum PagemapFlags : ulong
{
    /// <summary>Nothing mapped, no marker.</summary>
    None = 0,
    /// <summary><c>PM_MMAP_EXCLUSIVE</c> (bit 56): the page is mapped only here.</summary>
    MmapExclusive = 1UL << 56,
    /// <summary><c>PM_UFFD_WP</c> (bit 57): the entry (present, or a uffd-wp PTE marker) is userfaultfd write-protected.</summary>
    UffdWp = 1UL << 57,
    /// <summary><c>PM_SWAP</c> (bit 62): a non-present swap-format entry; in the model, a uffd-wp PTE marker outside hugetlb.</summary>
    Swap = 1UL << 62,
    /// <summary><c>PM_FILE</c> (bit 61): a page-cache page.</summary>
    File = 1UL << 61,
    /// <summary><c>PM_PRESENT</c> (bit 63).</summary>
    Present = 1UL << 63,
}

public sealed partial class Mm
{
    /// <summary>
    /// The model's <c>/proc/pid/pagemap</c> entry for <paramref name="address"/> (<c>pte_to_pagemap_entry</c>,
    /// fs/proc/task_mmu.c): PM_PRESENT, PM_FILE, PM_MMAP_EXCLUSIVE and PM_UFFD_WP (bit 57, set for a write-protected present
    /// entry and for a uffd-wp PTE marker); a marker is a swap-format PTE, so it also reports PM_SWAP, except in hugetlb
    /// (<c>pagemap_hugetlb_range</c> sets only PM_UFFD_WP for it). Takes the mmap read lock.
    /// </summary>
    public PagemapFlags Pagemap(ulong address)
    {
        MmapLock.EnterReadLock();
        try
        {
            var vma = VmaLookup(address);
            if (vma is null)
                return PagemapFlags.None;
            var p = PageTable.Get(address & ~((ulong)vma.PageSize - 1));
            var r = PagemapFlags.None;
            if (p.IsPresent)
            {
                r |= PagemapFlags.Present;
                if (!p.IsZeroPage && p.Folio?.Mapping is not null)
                    r |= PagemapFlags.File;
                if (!p.IsZeroPage && p.Folio is { } f && f.RefCount == (f.Mapping is null ? 1 : 2))
                    r |= PagemapFlags.MmapExclusive;
                if ((p.Flags & PteFlags.UffdWp) != 0)
                    r |= PagemapFlags.UffdWp;
            }
            else if (p.IsUffdWpMarker)
                r |= vma.IsHugetlb ? PagemapFlags.UffdWp : PagemapFlags.UffdWp | PagemapFlags.Swap;
            return r;
        }
        finally { MmapLock.ExitReadLock(); }
    }
}
