using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>do_mprotect_pkey</c> + <c>mprotect_fixup</c> + <c>change_protection</c> (mm/mprotect.c): sets the
    /// protection of [<paramref name="start"/>, <paramref name="start"/>+<paramref name="len"/>), splitting VMAs at the
    /// edges. EINVAL for an unaligned start or unknown bits; ENOMEM when the range is not fully mapped (VMAs before the
    /// hole keep the new protection, as in Linux); EACCES for PROT_WRITE on a shared mapping without VM_MAYWRITE.
    /// Removing write permission write-protects the present entries; the change is announced to MMU notifiers
    /// (<c>MMU_NOTIFY_PROTECTION_VMA</c>) so mirrors (HMM) drop their copies. A VMA whose protection does not change is
    /// left alone (not split, not announced).
    /// </summary>
    public Errno Mprotect(ulong start, ulong len, Prot prot)
    {
        if ((start & (Folio.BasePageSize - 1)) != 0 || (prot & ~(Prot.Read | Prot.Write | Prot.Exec)) != 0)
            return Errno.EINVAL;
        if (len == 0)
            return Errno.None;
        len = (len + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        ulong end = start + len;
        if (end <= start)
            return Errno.ENOMEM;
        VmFlags want = ((prot & Prot.Read) != 0 ? VmFlags.Read : 0) | ((prot & Prot.Write) != 0 ? VmFlags.Write : 0)
            | ((prot & Prot.Exec) != 0 ? VmFlags.Exec : 0);
        MmapLock.EnterWriteLock();
        try
        {
            var first = VmaLookup(start);
            if (first is null)
                return Errno.ENOMEM;
            ulong next = start;
            foreach (var v in VmasIn(start, end))
            {
                if (v.Start > next)
                    return Errno.ENOMEM;
                // newflags & ~(newflags >> 4): every requested permission needs its VM_MAY* bit.
                VmFlags may = (VmFlags)(((ulong)v.Flags >> 4) & (ulong)(VmFlags.Read | VmFlags.Write | VmFlags.Exec));
                if ((want & ~may) != 0)
                    return Errno.EACCES;
                ulong s = Math.Max(start, v.Start), e = Math.Min(end, v.End);
                if (v.IsHugetlb && ((s | e) & ((ulong)v.PageSize - 1)) != 0)
                    return Errno.EINVAL;
                var newFlags = (v.Flags & ~(VmFlags.Read | VmFlags.Write | VmFlags.Exec)) | want;
                if (newFlags == v.Flags)
                {
                    next = e; // mprotect_fixup: nothing changes, no split, no invalidation
                    continue;
                }
                SplitAround(s, e);
                var target = VmaLookup(s)!;
                var old = target.Flags;
                target.Flags = newFlags;
                ChangeProtection(target, s, e, removeWrite: (old & VmFlags.Write) != 0 && (want & VmFlags.Write) == 0);
                next = e;
            }
            return next < end ? Errno.ENOMEM : Errno.None;
        }
        finally { MmapLock.ExitWriteLock(); }
    }

    /// <summary>
    /// Models <c>change_protection</c> (mm/mprotect.c) for a protection change of [start, end) in <paramref name="vma"/>:
    /// announces it to MMU notifiers and, when write permission goes, clears the write bit of present entries (the next
    /// write faults to <c>do_wp_page</c>). Caller holds the mmap write lock.
    /// </summary>
    private void ChangeProtection(Vma vma, ulong start, ulong end, bool removeWrite)
    {
        InvalidateRangeStart(start, end, MmuNotifyEvent.ProtectionVma);
        if (removeWrite)
        {
            ulong step = (ulong)vma.PageSize;
            PageTable.ForEachTable(start, end, ref step, static (PteTable t, ulong s, ulong e, ref ulong st) =>
            {
                lock (t.Ptl)
                {
                    for (ulong a = s; a < e; a += st)
                    {
                        ref Pte p = ref t[a];
                        if (p.IsPresent)
                            p.Flags &= ~PteFlags.Writable;
                    }
                }
            });
        }
        InvalidateRangeEnd(start, end, MmuNotifyEvent.ProtectionVma);
    }
}
