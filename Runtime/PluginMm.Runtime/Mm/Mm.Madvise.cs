using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>do_madvise</c> + <c>madvise_walk_vmas</c> (mm/madvise.c) for DONTNEED, REMOVE, DONTFORK and DOFORK. EINVAL
    /// for an unaligned start, unknown advice, a length that wraps when page-aligned (<c>len_in &amp;&amp; !len</c>) or a range
    /// that wraps; a zero length does nothing. The walk advises VMA by VMA and looks the next VMA up again after each step
    /// (<c>find_vma</c>), because <c>userfaultfd_remove</c> may have dropped the mmap lock: a VMA list taken before would be
    /// stale. ENOMEM when part of the range is unmapped (after advising the mapped part, as Linux does), also beyond
    /// TASK_SIZE. Per VMA: see <see cref="MadviseVma"/>.
    /// </summary>
    public Errno Madvise(ulong addr, ulong len, Advice advice)
    {
        if (advice is not (Advice.DontNeed or Advice.Remove or Advice.DontFork or Advice.DoFork))
            return Errno.EINVAL;
        if ((addr & (Folio.BasePageSize - 1)) != 0)
            return Errno.EINVAL;
        ulong aligned = (len + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        if (len != 0 && aligned == 0)
            return Errno.EINVAL; // len_in && !len: PAGE_ALIGN wrapped
        ulong end = addr + aligned;
        if (end < addr)
            return Errno.EINVAL;
        if (end == addr)
            return Errno.None;

        bool write = advice is Advice.DontFork or Advice.DoFork;
        if (write) MmapLock.EnterWriteLock(); else MmapLock.EnterReadLock();
        try
        {
            Errno unmapped = Errno.None;
            ulong cur = addr;
            while (true)
            {
                var v = FindVma(cur);
                if (v is null)
                    return Errno.ENOMEM;
                if (cur < v.Start)
                {
                    unmapped = Errno.ENOMEM;
                    cur = v.Start;
                    if (cur >= end)
                        break;
                }
                ulong e = Math.Min(v.End, end);
                var err = MadviseVma(v, advice, cur, ref e);
                if (err != Errno.None)
                    return err;
                cur = e;
                if (cur >= end)
                    break;
            }
            return unmapped;
        }
        finally
        {
            if (write) MmapLock.ExitWriteLock(); else MmapLock.ExitReadLock();
        }
    }

    /// <summary>
    /// One step of <c>madvise_walk_vmas</c> → <c>madvise_vma_behavior</c> over [<paramref name="s"/>, <paramref name="e"/>) of
    /// <paramref name="v"/>. The checks come before <c>userfaultfd_remove</c>, so a refused madvise raises no REMOVE event.
    /// DONTNEED (<c>madvise_dontneed_free</c>): when the REMOVE event dropped the lock, the VMA is looked up again (none →
    /// ENOMEM), re-checked, and <paramref name="e"/> clamped to its end (the walk goes on from there). REMOVE
    /// (<c>madvise_remove</c>): the file and offset are taken before the event and the hole is punched in them. DONTFORK /
    /// DOFORK (<c>madvise_update_vma</c>): the VMA is split and changed only when its flags change.
    /// </summary>
    private Errno MadviseVma(Vma v, Advice advice, ulong s, ref ulong e)
    {
        ulong stepEnd = e;
        var invalid = MadviseValidVma(v, advice, s, ref stepEnd);
        if (invalid != Errno.None)
            return invalid;
        switch (advice)
        {
            case Advice.DontNeed:
                if (s == stepEnd)
                    return Errno.None;
                if (!UserfaultfdRemove(v, s, stepEnd))
                {
                    var again = VmaLookup(s);
                    if (again is null)
                        return Errno.ENOMEM;
                    v = again;
                    stepEnd = e;
                    invalid = MadviseValidVma(v, advice, s, ref stepEnd);
                    if (invalid != Errno.None)
                        return invalid;
                    if (stepEnd > v.End)
                        stepEnd = e = v.End;
                }
                InvalidateRangeStart(s, stepEnd, MmuNotifyEvent.Clear);
                // Anonymous zaps drop uffd-wp markers; file zaps keep them (zap_details, ZAP_FLAG_DROP_MARKER).
                ZapRange(v, s, stepEnd, dropMarkers: v.IsAnonymous);
                InvalidateRangeEnd(s, stepEnd, MmuNotifyEvent.Clear);
                return Errno.None;
            case Advice.Remove:
            {
                // MadviseValidVma made sure there is a file.
                var file = v.File!;
                long off = (long)(s - v.Start) + (v.PgOff << Folio.BasePageShift);
                UserfaultfdRemove(v, s, stepEnd);
                return file.PunchHole(off, (long)(stepEnd - s));
            }
            default:
            {
                var flags = advice == Advice.DontFork ? v.Flags | VmFlags.DontCopy : v.Flags & ~VmFlags.DontCopy;
                if (flags == v.Flags)
                    return Errno.None;
                SplitAround(s, stepEnd);
                VmaLookup(s)!.Flags = flags;
                return Errno.None;
            }
        }
    }

    /// <summary>
    /// Models <c>madvise_dontneed_free_valid_vma</c> and <c>madvise_remove</c>'s checks (mm/madvise.c): DONTNEED refuses
    /// VM_LOCKED (and VM_PFNMAP) VMAs; on hugetlb it needs a huge-aligned start and rounds the end down to a huge page
    /// (so a short range frees nothing rather than failing); REMOVE needs an unlocked file VMA (EINVAL) mapped shared and
    /// writable (EACCES). Other advice is not checked here.
    /// </summary>
    private static Errno MadviseValidVma(Vma v, Advice advice, ulong start, ref ulong end)
    {
        switch (advice)
        {
            case Advice.DontNeed:
                if (!v.IsHugetlb)
                    return (v.Flags & (VmFlags.Locked | VmFlags.PfnMap)) != 0 ? Errno.EINVAL : Errno.None;
                ulong mask = (ulong)v.PageSize - 1;
                if ((start & mask) != 0)
                    return Errno.EINVAL;
                end = Math.Max(start, end & ~mask);
                return Errno.None;
            case Advice.Remove:
                if (v.File is null || (v.Flags & VmFlags.Locked) != 0)
                    return Errno.EINVAL;
                return (v.Flags & (VmFlags.Shared | VmFlags.MayWrite)) != (VmFlags.Shared | VmFlags.MayWrite) ? Errno.EACCES : Errno.None;
            default:
                return Errno.None;
        }
    }
}
