namespace PluginMm.Runtime;

public sealed partial class UserfaultfdCtx
{
    /// <summary>
    /// Models <c>hugetlb_mfill_atomic_pte</c> (mm/hugetlb.c) as <c>mfill_atomic_hugetlb</c> (mm/userfaultfd.c) calls it for
    /// one huge page, under the hugetlb fault mutex of (file, index): COPY, CONTINUE or POISON (ZEROPAGE was refused by
    /// <see cref="MfillGetVma"/>).
    /// </summary>
    private Errno HugetlbMfillAtomicPte(ref MfillState s)
    {
        if (s.Mode == MfillMode.Copy)
            return HugetlbMfillCopy(ref s);
        var vma = s.Vma!;
        ulong addr = s.DstAddr;
        long idx = vma.PageIndex(addr);
        var mutex = Mm.Kernel.HugetlbFaultMutex(vma.File!.Inode, idx);
        var table = Mm.PageTable.Alloc(addr);
        mutex.Enter();
        try
        {
            return s.Mode == MfillMode.Poison ? MfillAtomicPtePoison(vma, addr) : HugetlbMfillContinue(vma, table, addr, idx, s.Wp);
        }
        finally { mutex.Exit(); }
    }

    /// <summary>
    /// Models <c>hugetlb_mfill_atomic_pte</c> for COPY (mm/hugetlb.c) with <c>mfill_atomic_hugetlb</c>'s retry: under the
    /// fault mutex an entry that is not none → EEXIST; allocate a huge folio and copy the source with page faults disabled;
    /// when it is not resident, drop the mutex and the mmap lock, copy with faults enabled (<see cref="MfillCopyFolioRetry"/>),
    /// look the VMA up again (no longer hugetlb → ENOENT, another huge page size → EINVAL) and go round again with the
    /// copied folio. Shared: the folio goes into the page cache (EEXIST if cached) and out again if the entry cannot be installed.
    /// </summary>
    private Errno HugetlbMfillCopy(ref MfillState s)
    {
        Folio? folio = null;
        while (true)
        {
            var vma = s.Vma!;
            ulong addr = s.DstAddr;
            long idx = vma.PageIndex(addr);
            var mutex = Mm.Kernel.HugetlbFaultMutex(vma.File!.Inode, idx);
            var table = Mm.PageTable.Alloc(addr);
            mutex.Enter();
            try
            {
                lock (table.Ptl)
                {
                    ref Pte p = ref table[addr];
                    if (!p.IsNone && !p.IsUffdWpMarker)
                    {
                        folio?.Put();
                        return Errno.EEXIST;
                    }
                }
                if (folio is null)
                {
                    folio = Mm.Kernel.Allocator.Alloc(vma.PageSize);
                    if (folio is null)
                        return Errno.ENOMEM;
                    if (!MfillCopyFolioLocked(ref s, folio.Data))
                        goto Retry;
                }
                return HugetlbMfillInstall(vma, table, addr, idx, folio, s.Wp);
            }
            finally { mutex.Exit(); }

        Retry:
            var e = MfillCopyFolioRetry(ref s, folio.Data);
            if (e == Errno.None && !s.Vma!.IsHugetlb)
                e = Errno.ENOENT;
            if (e == Errno.None && s.Vma!.PageSize != folio.Size)
                e = Errno.EINVAL;
            if (e != Errno.None)
            {
                folio.Put();
                return e;
            }
        }
    }

    /// <summary>
    /// The install half of <c>hugetlb_mfill_atomic_pte</c> for COPY (mm/hugetlb.c): mark the copied folio uptodate, add
    /// it to the page cache of a shared mapping, install the huge entry, and take it out of the page cache again when
    /// the entry cannot be installed. Takes the caller's folio reference. Caller holds the fault mutex.
    /// </summary>
    private static Errno HugetlbMfillInstall(Vma vma, PteTable table, ulong addr, long idx, Folio folio, bool wp)
    {
        folio.SetFlags(FolioFlags.Uptodate);
        var inode = vma.File!.Inode;
        if (vma.IsShared)
        {
            var e = inode.Cache.Add(folio, idx);
            if (e != Errno.None)
            {
                folio.Put();
                return e;
            }
        }
        var ie = MfillAtomicInstallPte(vma, table, addr, folio, vma.IsShared, wp, huge: true);
        if (ie != Errno.None)
        {
            if (vma.IsShared)
                inode.Cache.Remove(folio);
            folio.Put();
        }
        return ie;
    }

    /// <summary>Models <c>hugetlb_mfill_atomic_pte</c> for CONTINUE (mm/hugetlb.c): map the cached huge folio (absent → EFAULT, HWPoison → EIO).</summary>
    private static Errno HugetlbMfillContinue(Vma vma, PteTable table, ulong addr, long idx, bool wp)
    {
        var folio = vma.File!.Inode.Cache.Get(idx);
        if (folio is null)
            return Errno.EFAULT;
        if ((folio.Flags & FolioFlags.HwPoison) != 0)
        {
            folio.Put();
            return Errno.EIO;
        }
        var e = MfillAtomicInstallPte(vma, table, addr, folio, pageInCache: true, wp, huge: true);
        if (e != Errno.None)
            folio.Put();
        return e;
    }
}
