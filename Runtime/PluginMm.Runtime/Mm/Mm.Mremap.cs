using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>mremap</c> (mm/mremap.c): shrink, grow in place, or move (MAYMOVE, FIXED, DONTUNMAP). The moved VMA
    /// loses its userfaultfd registration unless the userfaultfd has EVENT_REMAP (<c>mremap_userfaultfd_prep</c>); REMAP and
    /// UNMAP events are delivered after the lock is dropped, and mremap returns once they were read.
    /// EINVAL for bad flags/alignment/lengths, EFAULT when the old range is not inside one VMA, ENOMEM when it cannot grow.
    /// </summary>
    public Errno Mremap(ulong oldAddr, ulong oldLen, ulong newLen, MremapFlags flags, ulong newAddr, out ulong result)
    {
        result = 0;
        if ((flags & ~(MremapFlags.MayMove | MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0)
            return Errno.EINVAL;
        if ((flags & (MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0 && (flags & MremapFlags.MayMove) == 0)
            return Errno.EINVAL;
        if ((oldAddr & (Folio.BasePageSize - 1)) != 0 || newLen == 0)
            return Errno.EINVAL;
        oldLen = (oldLen + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        newLen = (newLen + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        if ((flags & MremapFlags.DontUnmap) != 0 && oldLen != newLen)
            return Errno.EINVAL;
        if ((flags & MremapFlags.Fixed) != 0 && ((newAddr & (Folio.BasePageSize - 1)) != 0 || newAddr + newLen > ModelKernel.TaskSize
            || (newAddr < oldAddr + oldLen && newAddr + newLen > oldAddr)))
            return Errno.EINVAL;

        MmapLock.EnterWriteLock();
        try
        {
            var vma = VmaLookup(oldAddr);
            if (vma is null || oldAddr + Math.Max(oldLen, (ulong)Folio.BasePageSize) > vma.End)
                return Errno.EFAULT;
            if (vma.IsHugetlb)
            {
                ulong m = (ulong)vma.PageSize - 1;
                if (((oldAddr | oldLen | newLen) & m) != 0 || ((flags & MremapFlags.Fixed) != 0 && (newAddr & m) != 0))
                    return Errno.EINVAL;
            }
            if (oldLen == 0)
                return Errno.EINVAL; // duplicating shared mappings (old_len 0) is not modelled
            if ((flags & MremapFlags.Fixed) == 0 && (flags & MremapFlags.DontUnmap) == 0)
            {
                if (newLen <= oldLen)
                {
                    if (newLen < oldLen)
                        UnmapLocked(oldAddr + newLen, oldAddr + oldLen);
                    result = oldAddr;
                    return Errno.None;
                }
                if (oldAddr + oldLen == vma.End)
                {
                    var next = FindVma(vma.End);
                    ulong want = oldAddr + newLen;
                    if ((next is null || next.Start >= want) && want <= ModelKernel.TaskSize)
                    {
                        if (vma.File is { } f) { lock (f.IMmapLock) vma.End = want; }
                        else vma.End = want;
                        result = oldAddr;
                        return Errno.None;
                    }
                }
                if ((flags & MremapFlags.MayMove) == 0)
                    return Errno.ENOMEM;
            }

            ulong align = Math.Max((ulong)vma.PageSize, (ulong)Folio.BasePageSize);
            if ((flags & MremapFlags.Fixed) != 0)
                UnmapLocked(newAddr, newAddr + newLen);
            else
            {
                newAddr = GetUnmappedArea(newLen, align);
                if (newAddr == 0)
                    return Errno.ENOMEM;
            }
            MoveVmaLocked(oldAddr, oldLen, newAddr, newLen, (flags & MremapFlags.DontUnmap) != 0);
            result = newAddr;
            return Errno.None;
        }
        finally
        {
            MmapLock.ExitWriteLock();
            CompleteUserfaultfdEvents(); // mremap_userfaultfd_complete, userfaultfd_unmap_complete
        }
    }

    /// <summary>Models <c>move_vma</c> + <c>move_page_tables</c> (mm/mremap.c). Caller holds the mmap write lock.</summary>
    private void MoveVmaLocked(ulong oldAddr, ulong oldLen, ulong newAddr, ulong newLen, bool dontUnmap)
    {
        SplitAround(oldAddr, oldAddr + oldLen);
        var old = VmaLookup(oldAddr)!;
        var moved = old.CloneFor(this, newAddr, newAddr + newLen, old.PgOff);
        bool keepUffd = MremapUserfaultfdPrep(moved, oldAddr, newAddr, oldLen);
        if (old.IsAnonymous)
            moved.PgOff = old.PgOff; // anon rmap index follows the pages
        InsertVma(moved);

        InvalidateRangeStart(oldAddr, oldAddr + oldLen, MmuNotifyEvent.Unmap);
        ulong n = Math.Min(oldLen, newLen);
        ulong step = (ulong)old.PageSize;
        for (ulong off = 0; off < n; off += step)
        {
            var src = PageTable.Lookup(oldAddr + off);
            if (src is null)
                continue;
            Pte pte;
            lock (src.Ptl) pte = src.Clear(oldAddr + off);
            if (pte.IsNone)
                continue;
            // Unless EVENT_REMAP kept the registration, drop the uffd-wp bit and markers (move_ptes, uffd-wp-mremap).
            if (!keepUffd || !moved.UffdWp)
            {
                if (pte.IsUffdWpMarker)
                    continue;
                pte.Flags &= ~PteFlags.UffdWp;
            }
            var dst = PageTable.Alloc(newAddr + off);
            lock (dst.Ptl) dst.Set(newAddr + off, pte);
        }
        if (!dontUnmap)
        {
            ZapRange(old, old.Start, old.End, dropMarkers: true);
            RemoveVma(old);
        }
        InvalidateRangeEnd(oldAddr, oldAddr + oldLen, MmuNotifyEvent.Unmap);
    }
}
