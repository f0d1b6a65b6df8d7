namespace PluginMm.Runtime.Hmm;

/// <summary>
/// <c>hmm_range_fault</c> and friends (mm/hmm.c): snapshot the CPU page table of a range into PFN words, faulting pages
/// in through <see cref="Mm.HandleMmFault"/> where the request asks for it. Three entry points, chosen explicitly by the
/// driver: mainline <see cref="HmmRangeFault"/> (<see cref="HmmFaultVariant.Mainline"/>), seed 002's version of it
/// (<see cref="HmmFaultVariant.Seed002"/>), and the v8 series' <see cref="HmmRangeFaultUnlockedTimeout"/>.
/// Nothing here allocates.
/// </summary>
public static class HmmFaults
{
    /// <summary><c>HMM_RANGE_DEFAULT_TIMEOUT</c> in milliseconds.</summary>
    public const int RangeDefaultTimeoutMs = 1000;

    private const int NeedFaultBit = 1 << 0;
    private const int NeedWriteFault = 1 << 1;

    private enum Mode
    {
        Mainline,
        Seed002,
        Unlocked,
    }

    /// <summary>
    /// Models <c>hmm_range_fault</c> (mm/hmm.c). The caller holds <paramref name="range"/>'s mm's mmap read lock (EINVAL
    /// otherwise, where the kernel asserts) and set <see cref="HmmRange.NotifierSeq"/> with <c>ReadBegin</c>. Returns 0 with
    /// every entry filled; -EBUSY when the notifier saw an invalidation (call <c>ReadBegin</c> and retry); -EFAULT for a
    /// requested page in a hole, in an inaccessible VMA or whose fault failed (mainline: also any userfaultfd-registered
    /// page); -EPERM for a write request on a VMA without VM_WRITE; EINVAL for a malformed range. Under
    /// <see cref="HmmFaultVariant.Seed002"/> a userfault blocks the caller until it is served, and the lock is held again
    /// on return whatever happened.
    /// </summary>
    public static Errno HmmRangeFault(HmmRange range, ModelTask task, HmmFaultVariant variant = HmmFaultVariant.Mainline)
    {
        var e = Validate(range, task);
        if (e != Errno.None)
            return e;
        if (!range.Notifier!.Mm.MmapLock.IsReadLockHeld)
            return Errno.EINVAL;
        bool locked = true;
        return RangeFaultLocked(range, task, variant == HmmFaultVariant.Seed002 ? Mode.Seed002 : Mode.Mainline, ref locked);
    }

    /// <summary>
    /// Models <c>hmm_range_fault_unlocked_timeout</c> (mm/hmm.c, "mm/hmm: Add mmap lock-drop support for
    /// userfaultfd-backed mappings" v8): the caller does not hold the mmap lock. Loop: refresh
    /// <see cref="HmmRange.NotifierSeq"/> with <c>ReadBegin</c>, take the read lock, walk and fault with
    /// ALLOW_RETRY|KILLABLE (so any fault, a userfault included, may drop the lock); a lock-dropping fault or an invalidation
    /// restarts the walk from the start. <paramref name="timeoutMs"/> 0 retries for ever; otherwise -EBUSY once the deadline
    /// passes, the deadline being restarted after each lock-dropping fault (it made progress). The caller still checks
    /// <c>ReadRetry</c> under its lock before using the result. The model has no fatal signals, so never -EINTR.
    /// </summary>
    public static Errno HmmRangeFaultUnlockedTimeout(HmmRange range, int timeoutMs, ModelTask task)
    {
        var e = Validate(range, task);
        if (e != Errno.None)
            return e;
        if (timeoutMs < 0)
            return Errno.EINVAL;
        var notifier = range.Notifier!;
        var mm = notifier.Mm;
        if (mm.MmapLock.IsReadLockHeld || mm.MmapLock.IsWriteLockHeld)
            return Errno.EINVAL; // "The caller must not hold mmap_read_lock before the call."
        long deadline = 0;
        bool locked = false;
        Errno ret;
        do
        {
            if (timeoutMs != 0)
            {
                if (!locked)
                    deadline = Environment.TickCount64 + timeoutMs;
                if (Environment.TickCount64 > deadline)
                    return Errno.EBUSY;
            }
            range.NotifierSeq = notifier.ReadBegin();
            mm.MmapLock.EnterReadLock();
            locked = true;
            ret = RangeFaultLocked(range, task, Mode.Unlocked, ref locked);
            if (locked)
                mm.MmapLock.ExitReadLock();
        }
        while (ret == Errno.EBUSY);
        return ret;
    }

    private static Errno Validate(HmmRange range, ModelTask task)
    {
        ArgumentNullException.ThrowIfNull(range);
        ArgumentNullException.ThrowIfNull(task);
        if (range.Notifier is null)
            return Errno.EINVAL;
        const ulong mask = Folio.BasePageSize - 1;
        if (((range.Start | range.End) & mask) != 0 || range.End <= range.Start)
            return Errno.EINVAL;
        if ((range.End - range.Start) >> Folio.BasePageShift > (ulong)range.HmmPfns.Length)
            return Errno.EINVAL;
        return Errno.None;
    }

    /// <summary>
    /// The body of <c>hmm_range_fault</c> (<c>hmm_range_fault_locked</c> in the v8 series): re-walk from the first page not
    /// yet output while a walk step asks for it, unless the notifier saw an invalidation. <paramref name="locked"/> turns
    /// false when a fault dropped the mmap lock (unlocked mode only); then -EBUSY goes back to the caller at once.
    /// </summary>
    private static Errno RangeFaultLocked(HmmRange range, ModelTask task, Mode mode, ref bool locked)
    {
        ulong last = range.Start;
        Errno ret;
        do
        {
            if (range.Notifier!.CheckRetry(range.NotifierSeq))
                return Errno.EBUSY;
            ret = WalkPageRange(range, ref last, task, mode, ref locked);
            if (ret == Errno.EBUSY)
            {
                range.WalkRestarts++;
                if (!locked)
                    return ret;
            }
        }
        while (ret == Errno.EBUSY);
        return ret;
    }

    /// <summary><c>walk_page_range</c> with <c>hmm_walk_ops</c>: VMAs, holes between them, and the test of each VMA.</summary>
    private static Errno WalkPageRange(HmmRange range, ref ulong last, ModelTask task, Mode mode, ref bool locked)
    {
        var mm = range.Notifier!.Mm;
        ulong addr = last;
        ulong end = range.End;
        while (addr < end)
        {
            var vma = mm.FindVma(addr);
            ulong holeEnd = vma is null ? end : Math.Min(vma.Start, end);
            if (addr < holeEnd)
            {
                // hmm_vma_walk_hole without a VMA: a requested page there is -EFAULT.
                if (NeedFaultRange(range, addr, holeEnd, 0) != 0)
                    return Errno.EFAULT;
                Fill(range, addr, holeEnd, HmmPfn.Error);
                addr = holeEnd;
                continue;
            }
            ulong vmaEnd = Math.Min(vma!.End, end);
            // hmm_vma_walk_test
            if ((vma.Flags & (VmFlags.IO | VmFlags.PfnMap)) != 0 || (vma.Flags & VmFlags.Read) == 0)
            {
                if (NeedFaultRange(range, addr, vmaEnd, 0) != 0)
                    return Errno.EFAULT;
                Fill(range, addr, vmaEnd, HmmPfn.Error);
                addr = vmaEnd;
                continue;
            }
            var r = vma.IsHugetlb
                ? WalkHugetlb(range, vma, addr, vmaEnd, ref last, task, mode, ref locked)
                : WalkPtes(range, vma, addr, vmaEnd, ref last, task, mode, ref locked);
            if (r != Errno.None)
                return r;
            addr = vmaEnd;
        }
        return Errno.None;
    }

    /// <summary><c>hmm_vma_walk_pmd</c> + <c>hmm_vma_handle_pte</c> for one VMA, one page table at a time.</summary>
    private static Errno WalkPtes(HmmRange range, Vma vma, ulong addr, ulong end, ref ulong last, ModelTask task, Mode mode, ref bool locked)
    {
        var mm = vma.Mm;
        var zero = mm.Kernel.ZeroFolio;
        while (addr < end)
        {
            ulong tableEnd = Math.Min((addr / PteTable.Span + 1) * PteTable.Span, end);
            var table = mm.PageTable.Lookup(addr);
            if (table is null)
            {
                // pmd_none: hmm_vma_walk_hole inside a VMA faults what is requested, else reports 0.
                int required = NeedFaultRange(range, addr, tableEnd, 0);
                if (required != 0)
                    return VmaFault(range, vma, addr, tableEnd, required, ref last, task, mode, ref locked);
                Fill(range, addr, tableEnd, 0);
                addr = tableEnd;
                continue;
            }
            for (; addr < tableEnd; addr += Folio.BasePageSize)
            {
                int i = Index(range, addr);
                Pte pte;
                lock (table.Ptl) pte = table[addr];
                if (pte.IsNone || pte.IsUffdWpMarker)
                {
                    // pte_none_mostly
                    int required = NeedFault(range, range.HmmPfns[i], 0);
                    if (required != 0)
                        return VmaFault(range, vma, addr, tableEnd, required, ref last, task, mode, ref locked);
                    Set(range, i, 0, null);
                    continue;
                }
                if (!pte.IsPresent)
                {
                    // Device-private pages of the caller's device are reported, not faulted.
                    if (DevicePte.IsDevicePrivate(pte) && range.DevPrivateOwner is not null
                        && ReferenceEquals(pte.Folio!.Pgmap!.Owner, range.DevPrivateOwner))
                    {
                        Set(range, i, HmmPfn.Valid | (DevicePte.IsWritableEntry(pte) ? HmmPfn.Write : 0), pte.Folio);
                        continue;
                    }
                    int needed = NeedFault(range, range.HmmPfns[i], 0);
                    if (needed == 0)
                    {
                        Set(range, i, 0, null);
                        continue;
                    }
                    // Another device's private page or a device-exclusive entry: fault it back to the CPU.
                    if (DevicePte.IsDevicePrivate(pte) || DevicePte.IsDeviceExclusive(pte))
                        return VmaFault(range, vma, addr, tableEnd, needed, ref last, task, mode, ref locked);
                    if (DevicePte.IsMigration(pte))
                    {
                        // migration_entry_wait, then -EBUSY: the walk restarts at this page.
                        last = addr;
                        DeviceFault.TryHandle(vma, addr, 0, out _);
                        return Errno.EBUSY;
                    }
                    // Anything else (poison, guard marker): an error, as the page is wanted.
                    return Errno.EFAULT;
                }
                ulong cpuFlags = HmmPfn.Valid | (pte.IsWritable ? HmmPfn.Write : 0);
                int req = NeedFault(range, range.HmmPfns[i], cpuFlags);
                if (req != 0)
                    return VmaFault(range, vma, addr, tableEnd, req, ref last, task, mode, ref locked);
                Set(range, i, cpuFlags, pte.IsZeroPage ? zero : pte.Folio);
            }
        }
        return Errno.None;
    }

    /// <summary><c>hmm_vma_walk_hugetlb_entry</c>: one huge entry gives every subpage its flags and the map order.</summary>
    private static Errno WalkHugetlb(HmmRange range, Vma vma, ulong addr, ulong end, ref ulong last, ModelTask task, Mode mode, ref bool locked)
    {
        var mm = vma.Mm;
        ulong size = (ulong)vma.PageSize;
        int order = vma.PageShift - Folio.BasePageShift;
        while (addr < end)
        {
            ulong haddr = addr & ~(size - 1);
            ulong next = Math.Min(haddr + size, end);
            var pte = mm.PageTable.Get(haddr);
            ulong cpuFlags = pte.IsPresent ? HmmPfn.Valid | (pte.IsWritable ? HmmPfn.Write : 0) : 0;
            int required = NeedFaultRange(range, addr, next, cpuFlags);
            if (required != 0)
                return VmaFault(range, vma, addr, next, required, ref last, task, mode, ref locked);
            for (ulong a = addr; a < next; a += Folio.BasePageSize)
            {
                if (cpuFlags == 0)
                    Set(range, Index(range, a), 0, null);
                else
                    Set(range, Index(range, a), cpuFlags | HmmPfn.FlagsOrder(order) | ((a - haddr) >> Folio.BasePageShift), pte.Folio);
            }
            addr = next;
        }
        return Errno.None;
    }

    /// <summary>
    /// Models <c>hmm_vma_fault</c> (mm/hmm.c) and, in seed 002, <c>hmm_handle_mm_fault</c>: fault every page of
    /// [<paramref name="addr"/>, <paramref name="end"/>) and return -EBUSY so the walk restarts at <paramref name="addr"/>.
    /// </summary>
    private static Errno VmaFault(HmmRange range, Vma vma, ulong addr, ulong end, int required, ref ulong last, ModelTask task, Mode mode, ref bool locked)
    {
        var mm = vma.Mm;
        last = addr;
        var flags = FaultFlags.Remote;
        if ((required & NeedWriteFault) != 0)
        {
            if ((vma.Flags & VmFlags.Write) == 0)
                return Errno.EPERM;
            flags |= FaultFlags.Write;
        }
        if (mode == Mode.Unlocked)
            flags |= FaultFlags.AllowRetry | FaultFlags.Killable;
        for (; addr < end; addr += Folio.BasePageSize)
        {
            var f = flags;
            bool seedUffd = mode == Mode.Seed002 && vma.UffdMissing;
            if (seedUffd)
                f |= FaultFlags.AllowRetry | FaultFlags.User;
            range.Faults++;
            var ret = mm.HandleMmFault(vma, addr, f, task);
            if ((ret & (VmFaultResult.Retry | VmFaultResult.Completed)) != 0)
            {
                // The fault dropped mmap_lock (handle_userfault slept until the page was served).
                range.LockDrops++;
                if (mode == Mode.Unlocked)
                {
                    locked = false;
                    return Errno.EBUSY;
                }
                // Seed 002 (and, defensively, any other lock drop): retake the lock; the VMA may have changed, so the
                // caller's loop re-walks from 'last'. (VM_FAULT_RETRY with RETRY_NOWAIT keeps the lock: never set here.)
                if (!mm.MmapLock.IsReadLockHeld)
                    mm.MmapLock.EnterReadLock();
                return Errno.EBUSY;
            }
            if ((ret & VmFaultResult.Error) != 0)
                return mode == Mode.Seed002 ? VmFaultToErrno(ret) : Errno.EFAULT;
        }
        return Errno.EBUSY;
    }

    /// <summary>Models <c>vm_fault_to_errno(vm_fault, 0)</c> (include/linux/mm.h).</summary>
    private static Errno VmFaultToErrno(VmFaultResult ret)
    {
        if ((ret & VmFaultResult.Oom) != 0)
            return Errno.ENOMEM;
        if ((ret & (VmFaultResult.HwPoison | VmFaultResult.HwPoisonLarge | VmFaultResult.SigBus | VmFaultResult.SigSegv)) != 0)
            return Errno.EFAULT;
        return Errno.None;
    }

    /// <summary>Models <c>hmm_pte_need_fault</c>.</summary>
    private static int NeedFault(HmmRange range, ulong pfnReqFlags, ulong cpuFlags)
    {
        pfnReqFlags &= range.PfnFlagsMask;
        pfnReqFlags |= range.DefaultFlags;
        if ((pfnReqFlags & HmmPfn.ReqFault) == 0)
            return 0;
        if ((pfnReqFlags & HmmPfn.ReqWrite) != 0 && (cpuFlags & HmmPfn.Write) == 0)
            return NeedFaultBit | NeedWriteFault;
        if ((cpuFlags & HmmPfn.Valid) == 0)
            return NeedFaultBit;
        return 0;
    }

    /// <summary>Models <c>hmm_range_need_fault</c>.</summary>
    private static int NeedFaultRange(HmmRange range, ulong addr, ulong end, ulong cpuFlags)
    {
        if (((range.DefaultFlags | range.PfnFlagsMask) & HmmPfn.ReqFault) == 0)
            return 0;
        int required = 0;
        for (int i = Index(range, addr), n = Index(range, end); i < n; i++)
        {
            required |= NeedFault(range, range.HmmPfns[i], cpuFlags);
            if (required == (NeedFaultBit | NeedWriteFault))
                break;
        }
        return required;
    }

    /// <summary>Models <c>hmm_pfns_fill</c>.</summary>
    private static void Fill(HmmRange range, ulong addr, ulong end, ulong value)
    {
        for (int i = Index(range, addr), n = Index(range, end); i < n; i++)
            Set(range, i, value, null);
    }

    private static void Set(HmmRange range, int i, ulong value, Folio? page)
    {
        range.HmmPfns[i] = value;
        range.Pages[i] = page;
    }

    private static int Index(HmmRange range, ulong addr) => (int)((addr - range.Start) >> Folio.BasePageShift);
}
