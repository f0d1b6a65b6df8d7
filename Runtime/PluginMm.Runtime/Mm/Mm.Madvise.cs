using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>do_madvise</c> (mm/madvise.c) for DONTNEED, REMOVE, DONTFORK and DOFORK. EINVAL for an unaligned start,
    /// unknown advice, or (DONTNEED) a VMA that is VM_LOCKED or a hugetlb range not on huge-page boundaries; ENOMEM when
    /// part of the range is unmapped (after advising the mapped part, as Linux does); REMOVE: EINVAL on anonymous memory,
    /// EACCES on a private mapping.
    /// </summary>
    public Errno Madvise(ulong addr, ulong len, Advice advice)
    {
        if ((addr & (Folio.BasePageSize - 1)) != 0 || addr > ModelKernel.TaskSize)
            return Errno.EINVAL;
        if (advice is not (Advice.DontNeed or Advice.Remove or Advice.DontFork or Advice.DoFork))
            return Errno.EINVAL;
        len = (len + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        if (len == 0)
            return Errno.None;
        ulong end = addr + len;
        if (end < addr || end > ModelKernel.TaskSize)
            return Errno.EINVAL;

        bool write = advice is Advice.DontFork or Advice.DoFork;
        if (write) MmapLock.EnterWriteLock(); else MmapLock.EnterReadLock();
        try
        {
            var vmas = VmasIn(addr, end);
            bool hole = vmas.Count == 0 || vmas[0].Start > addr || vmas[^1].End < end;
            for (int i = 1; i < vmas.Count; i++)
                if (vmas[i - 1].End != vmas[i].Start) hole = true;
            foreach (var v0 in vmas)
            {
                var v = v0;
                ulong s = Math.Max(addr, v.Start), e = Math.Min(end, v.End);
                // The checks come before userfaultfd_remove, as in the kernel: a refused madvise raises no REMOVE event.
                var invalid = MadviseValidVma(v, advice, s, ref e);
                if (invalid != Errno.None)
                    return invalid;
                if (s == e)
                    continue;
                if (advice is Advice.DontNeed or Advice.Remove && !UserfaultfdRemove(v, s, e))
                {
                    // userfaultfd_remove dropped the mmap lock while the REMOVE event was read: look the VMA up again
                    // and check it again (madvise_dontneed_free).
                    var again = VmaLookup(s);
                    if (again is null)
                        return Errno.ENOMEM;
                    v = again;
                    invalid = MadviseValidVma(v, advice, s, ref e);
                    if (invalid != Errno.None)
                        return invalid;
                    e = Math.Min(e, v.End);
                }
                switch (advice)
                {
                    case Advice.DontNeed:
                        InvalidateRangeStart(s, e, MmuNotifyEvent.Clear);
                        // Anonymous zaps drop uffd-wp markers; file zaps keep them (zap_details, ZAP_FLAG_DROP_MARKER).
                        ZapRange(v, s, e, dropMarkers: v.IsAnonymous);
                        InvalidateRangeEnd(s, e, MmuNotifyEvent.Clear);
                        break;
                    case Advice.Remove:
                        // MadviseValidVma made sure there is a file.
                        long off = (long)((s - v.Start) >> Folio.BasePageShift) + v.PgOff;
                        var err = v.File!.PunchHole(off << Folio.BasePageShift, (long)(e - s));
                        if (err != Errno.None)
                            return err;
                        break;
                    default:
                        SplitAround(s, e);
                        foreach (var p in VmasIn(s, e))
                            p.Flags = advice == Advice.DontFork ? p.Flags | VmFlags.DontCopy : p.Flags & ~VmFlags.DontCopy;
                        break;
                }
            }
            return hole ? Errno.ENOMEM : Errno.None;
        }
        finally
        {
            if (write) MmapLock.ExitWriteLock(); else MmapLock.ExitReadLock();
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
