using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

public sealed partial class UserfaultfdCtx
{
    /// <summary>The operation of one fill ioctl (the mode bits of <c>uffd_flags_t</c>: <c>MFILL_ATOMIC_*</c>).</summary>
    private enum MfillMode { Copy, ZeroPage, Continue, Poison }

    /// <summary>
    /// Models <c>struct mfill_state</c> (mm/userfaultfd.c, "userfaultfd: introduce struct mfill_state" of the vm_uffd_ops
    /// series): one UFFDIO_COPY / ZEROPAGE / CONTINUE / POISON in progress. The ioctl fills in the request; <see
    /// cref="MfillGetVma"/> the destination VMA and the tables that fill it; the per-page functions advance
    /// <see cref="Copied"/>. Lives on the stack of <see cref="MfillAtomic"/>.
    /// </summary>
    private ref struct MfillState
    {
        public MfillState(MfillMode mode, ulong dstStart, ulong len, bool wp)
        {
            Mode = mode;
            DstStart = dstStart;
            Len = len;
            Wp = wp;
        }

        /// <summary>Which fill (<c>uffd_flags_mode_is</c>).</summary>
        public readonly MfillMode Mode;

        /// <summary><c>dst_start</c>.</summary>
        public readonly ulong DstStart;

        /// <summary><c>len</c>.</summary>
        public readonly ulong Len;

        /// <summary><c>MFILL_ATOMIC_WP</c>: install the entries write-protected.</summary>
        public readonly bool Wp;

        /// <summary>COPY from a buffer of the handler (always resident).</summary>
        public ReadOnlySpan<byte> SrcBuffer;

        /// <summary>COPY from a user address: the task whose mm holds <see cref="SrcStart"/> (null for a buffer source).</summary>
        public ModelTask? SrcTask;

        /// <summary><c>src_start</c> (a user address in <see cref="SrcTask"/>'s mm).</summary>
        public ulong SrcStart;

        /// <summary>Bytes filled so far (the value the ioctl reports).</summary>
        public ulong Copied;

        /// <summary><c>vma</c>: the destination VMA, set by <see cref="MfillGetVma"/> under the mmap read lock.</summary>
        public Vma? Vma;

        /// <summary>
        /// The memory type whose <c>vm_uffd_ops</c> fill a PTE-mapped destination: the VMA's own for a shared file mapping,
        /// the anonymous type's for a private one (as the kernel uses the anon ops there); null for hugetlb.
        /// </summary>
        public MemoryTypeOps? Ops;

        /// <summary><c>dst_addr</c>: the page being filled.</summary>
        public readonly ulong DstAddr => DstStart + Copied;

        /// <summary><c>src_addr</c>: where the page being filled comes from (COPY).</summary>
        public readonly ulong SrcAddr => SrcStart + Copied;
    }

    /// <summary>
    /// UFFDIO_COPY from a buffer of the handler (models <c>userfaultfd_copy</c>, fs/userfaultfd.c). Validation order:
    /// EINVAL before UFFDIO_API; mmap_changing → EAGAIN with field -EAGAIN; the source length must be a non-zero page
    /// multiple and the destination a valid range (EINVAL); mode ⊄ {DONTWAKE, WP} → EINVAL; mm gone → ESRCH. Then
    /// <c>mfill_atomic</c>; the field is bytes done or -errno; a partial copy returns EAGAIN with the bytes done; the
    /// copied range is woken unless DONTWAKE (never on error).
    /// </summary>
    public UffdioResult Copy(ulong dst, ReadOnlySpan<byte> src, UffdCopyMode mode)
    {
        var pre = CopyChecks(dst, (ulong)src.Length, src.Length == 0 ? 0 : MmapMinAddr, mode);
        if (pre is { } fail)
            return fail;
        var state = new MfillState(MfillMode.Copy, dst, (ulong)src.Length, (mode & UffdCopyMode.Wp) != 0) { SrcBuffer = src };
        long ret = MfillAtomic(ref state);
        return FinishFill(ret, dst, (ulong)src.Length, (mode & UffdCopyMode.DontWake) != 0);
    }

    /// <summary>
    /// UFFDIO_COPY whose source is the user address <paramref name="src"/> in <paramref name="caller"/>'s mm, as the
    /// kernel's ioctl takes it. Models the locks-dropped retry of <c>mfill_atomic_pte_copy</c>: the copy is first tried
    /// with page faults disabled; if the source page is not mapped, the mmap lock is dropped, the source is faulted in by
    /// a kernel-mode access (<c>copy_from_user</c>, which fails with EFAULT on SIGBUS/SIGSEGV), and the destination VMA is
    /// looked up again before installing.
    /// </summary>
    public UffdioResult Copy(ModelTask caller, ulong dst, ulong src, ulong len, UffdCopyMode mode)
    {
        ArgumentNullException.ThrowIfNull(caller);
        var pre = CopyChecks(dst, len, src, mode);
        if (pre is { } fail)
            return fail;
        var state = new MfillState(MfillMode.Copy, dst, len, (mode & UffdCopyMode.Wp) != 0) { SrcTask = caller, SrcStart = src };
        long ret = MfillAtomic(ref state);
        return FinishFill(ret, dst, len, (mode & UffdCopyMode.DontWake) != 0);
    }

    private UffdioResult? CopyChecks(ulong dst, ulong len, ulong src, UffdCopyMode mode)
        => FillChecks(dst, len, (mode & ~(UffdCopyMode.DontWake | UffdCopyMode.Wp)) == 0, src, checkSrc: true);

    /// <summary>
    /// The common prologue of the fill ioctls (<c>userfaultfd_copy</c>, <c>_zeropage</c>, <c>_continue</c>,
    /// <c>_poison</c>) in the kernel's order: EINVAL before UFFDIO_API; mmap_changing → EAGAIN with field -EAGAIN; the
    /// source range (COPY: its start need not be aligned), then the destination range and the mode → EINVAL; mm gone →
    /// ESRCH. Null when the ioctl may proceed.
    /// </summary>
    internal UffdioResult? FillChecks(ulong start, ulong len, bool modeValid, ulong src = MmapMinAddr, bool checkSrc = false)
    {
        if (_released)
            return UffdioResult.Fail(Errno.EBADF);
        if (!Initialized)
            return UffdioResult.Fail(Errno.EINVAL);
        if (MmapChanging > 0)
            return new UffdioResult(Errno.EAGAIN, -(long)Errno.EAGAIN);
        if (checkSrc && ValidateRange(src, len, requireAlignedStart: false) != Errno.None)
            return UffdioResult.Fail(Errno.EINVAL);
        if (ValidateRange(start, len) != Errno.None || !modeValid)
            return UffdioResult.Fail(Errno.EINVAL);
        if (Mm.Exited)
            return UffdioResult.Fail(Errno.ESRCH);
        return null;
    }

    /// <summary>
    /// Models <c>userfaultfd_zeropage</c> (fs/userfaultfd.c): mode ⊄ {DONTWAKE} → EINVAL; hugetlb → field -EINVAL.
    /// Private and anonymous mappings get the shared zero page; shared file mappings a zeroed page-cache folio
    /// (<see cref="MfillAtomicPteZeropage"/>).
    /// </summary>
    public UffdioResult ZeroPage(ulong start, ulong len, UffdZeroPageMode mode)
    {
        if (FillChecks(start, len, (mode & ~UffdZeroPageMode.DontWake) == 0) is { } fail)
            return fail;
        var state = new MfillState(MfillMode.ZeroPage, start, len, wp: false);
        long ret = MfillAtomic(ref state);
        return FinishFill(ret, start, len, (mode & UffdZeroPageMode.DontWake) != 0);
    }

    /// <summary>
    /// Models <c>userfaultfd_continue</c> (fs/userfaultfd.c): mode ⊄ {DONTWAKE, WP} → EINVAL; maps the page-cache folio
    /// found by the type's <c>GetFolioNoAlloc</c> (absent → EFAULT, HWPoison → EIO, entry present → EEXIST; no
    /// <c>GetFolioNoAlloc</c>, e.g. anonymous memory → EINVAL).
    /// </summary>
    public UffdioResult Continue(ulong start, ulong len, UffdContinueMode mode)
    {
        if (FillChecks(start, len, (mode & ~(UffdContinueMode.DontWake | UffdContinueMode.Wp)) == 0) is { } fail)
            return fail;
        var state = new MfillState(MfillMode.Continue, start, len, (mode & UffdContinueMode.Wp) != 0);
        long ret = MfillAtomic(ref state);
        return FinishFill(ret, start, len, (mode & UffdContinueMode.DontWake) != 0);
    }

    private UffdioResult FinishFill(long ret, ulong start, ulong len, bool dontWake)
    {
        if (ret < 0)
            return new UffdioResult((Errno)(int)(-ret), ret);
        if (!dontWake)
            WakeRange(start, (ulong)ret);
        return (ulong)ret == len ? new UffdioResult(Errno.None, ret) : new UffdioResult(Errno.EAGAIN, ret);
    }

    /// <summary>
    /// Models <c>mfill_atomic</c> (mm/userfaultfd.c): under the mmap read lock, <see cref="MfillGetVma"/>, then page by page
    /// (hugetlb: huge page by huge page, <see cref="HugetlbMfillAtomicPte"/>) until done or an error. Returns bytes done if
    /// any, else -errno.
    /// </summary>
    private long MfillAtomic(ref MfillState s)
    {
        var mm = Mm;
        mm.MmapLock.EnterReadLock();
        Errno err;
        try
        {
            err = MfillGetVma(ref s);
            while (err == Errno.None && s.Copied < s.Len)
            {
                var vma = s.Vma!;
                err = vma.IsHugetlb ? HugetlbMfillAtomicPte(ref s) : MfillAtomicPte(ref s);
                if (err == Errno.None)
                    s.Copied += (ulong)s.Vma!.PageSize;
            }
        }
        finally { mm.MmapLock.ExitReadLock(); }
        return s.Copied > 0 ? (long)s.Copied : -(long)err;
    }

    /// <summary>
    /// Models <c>mfill_get_vma</c> (mm/userfaultfd.c) with the checks <c>mfill_atomic</c> makes of the VMA it found; the
    /// caller holds the mmap read lock. The one registered VMA holding [dst_start, dst_start+len) (else ENOENT);
    /// mmap_changing → EAGAIN; MODE_WP without VM_UFFD_WP → EINVAL. hugetlb: ZEROPAGE, or dst/len not multiples of the huge
    /// page size → EINVAL. Otherwise: shared anonymous → EINVAL; CONTINUE needs a file VMA whose type has
    /// <c>GetFolioNoAlloc</c>, COPY and ZEROPAGE tables with <c>AllocFolio</c> (EINVAL). Sets <see cref="MfillState.Vma"/>
    /// and <see cref="MfillState.Ops"/>.
    /// </summary>
    private unsafe Errno MfillGetVma(ref MfillState s)
    {
        s.Vma = null;
        s.Ops = null;
        var mm = Mm;
        var vma = mm.VmaLookup(s.DstStart);
        if (mm.Exited || vma is null || s.DstStart + s.Len > vma.End || vma.UffdCtx is null)
            return Errno.ENOENT;
        if (MmapChanging > 0)
            return Errno.EAGAIN;
        if (s.Wp && !vma.UffdWp)
            return Errno.EINVAL;
        if (vma.IsHugetlb)
        {
            if (s.Mode == MfillMode.ZeroPage)
                return Errno.EINVAL;
            ulong hs = (ulong)vma.PageSize;
            if (((s.DstStart | s.Len) & (hs - 1)) != 0)
                return Errno.EINVAL;
        }
        else
        {
            if (vma.IsAnonymous && vma.IsShared)
                return Errno.EINVAL;
            var ops = vma.IsShared ? vma.Type : mm.Kernel.AnonymousType;
            if (s.Mode == MfillMode.Continue)
            {
                if (vma.IsAnonymous || vma.Type.UffdOps.GetFolioNoAlloc == null)
                    return Errno.EINVAL;
            }
            else if (s.Mode != MfillMode.Poison && (ops is null || ops.UffdOps.AllocFolio == null))
                return Errno.EINVAL;
            s.Ops = ops;
        }
        s.Vma = vma;
        return Errno.None;
    }

    /// <summary>Models <c>mfill_atomic_pte</c> (mm/userfaultfd.c): one base page, by mode.</summary>
    private Errno MfillAtomicPte(ref MfillState s) => s.Mode switch
    {
        MfillMode.Copy => MfillAtomicPteCopy(ref s),
        MfillMode.ZeroPage => MfillAtomicPteZeropage(ref s),
        MfillMode.Continue => MfillAtomicPteContinue(ref s),
        _ => MfillAtomicPtePoison(s.Vma!, s.DstAddr),
    };

    /// <summary>
    /// Models <c>mfill_atomic_pte_copy</c> (mm/userfaultfd.c, vm_uffd_ops series): <c>AllocFolio</c>, copy the source with
    /// page faults disabled (<see cref="MfillCopyFolioLocked"/>) or, when it is not resident, with the locks dropped
    /// (<see cref="MfillCopyFolioRetry"/>), then <see cref="MfillAtomicPteInstallFolio"/>.
    /// </summary>
    private unsafe Errno MfillAtomicPteCopy(ref MfillState s)
    {
        var view = s.Vma!.View;
        var folio = s.Ops!.UffdOps.AllocFolio(in view, s.DstAddr);
        if (folio is null)
            return Errno.ENOMEM;
        var data = folio.Data.Slice(0, Folio.BasePageSize);
        if (!MfillCopyFolioLocked(ref s, data))
        {
            var e = MfillCopyFolioRetry(ref s, data);
            if (e != Errno.None)
            {
                folio.Put();
                return e;
            }
        }
        return MfillAtomicPteInstallFolio(ref s, folio);
    }

    /// <summary>
    /// Models <c>mfill_atomic_pte_zeropage</c> (mm/userfaultfd.c): maps the shared zero page; in a shared file mapping,
    /// where the page cache must hold the page, a zeroed folio from the type's <c>AllocFolio</c> instead
    /// (<c>mfill_atomic_pte_zeroed_folio</c>).
    /// </summary>
    private unsafe Errno MfillAtomicPteZeropage(ref MfillState s)
    {
        var vma = s.Vma!;
        if (!vma.IsShared || vma.IsAnonymous)
            return MfillInstallIntoNone(vma, s.DstAddr, PteFlags.Present | PteFlags.ZeroPage);
        var view = vma.View;
        var folio = s.Ops!.UffdOps.AllocFolio(in view, s.DstAddr);
        if (folio is null)
            return Errno.ENOMEM;
        folio.Data.Slice(0, Folio.BasePageSize).Clear();
        return MfillAtomicPteInstallFolio(ref s, folio);
    }

    /// <summary>
    /// Models the tail of <c>__mfill_atomic_pte</c> (mm/userfaultfd.c, vm_uffd_ops series) shared by COPY and ZEROPAGE:
    /// mark the new folio uptodate, <c>FilemapAdd</c> it in a shared file mapping, install the entry, and
    /// <c>FilemapRemove</c> it when the entry cannot be installed. Takes the caller's folio reference.
    /// </summary>
    private unsafe Errno MfillAtomicPteInstallFolio(ref MfillState s, Folio folio)
    {
        var vma = s.Vma!;
        var ops = s.Ops!;
        ulong addr = s.DstAddr;
        bool sharedFile = vma.IsShared && !vma.IsAnonymous;
        var view = vma.View;
        folio.SetFlags(FolioFlags.Uptodate);
        if (sharedFile)
        {
            var e = ops.UffdOps.FilemapAdd(folio, in view, addr);
            if (e != Errno.None)
            {
                folio.Unlock();
                folio.Put();
                return e;
            }
        }
        var table = Mm.PageTable.Alloc(addr);
        var ie = MfillAtomicInstallPte(vma, table, addr, folio, sharedFile, s.Wp, huge: false);
        if (ie != Errno.None)
        {
            if (sharedFile)
                ops.UffdOps.FilemapRemove(folio, in view);
            folio.Unlock();
            folio.Put();
            return ie;
        }
        if (sharedFile)
            folio.Unlock();
        return Errno.None;
    }

    /// <summary>
    /// Models <c>mfill_atomic_pte_continue</c> (mm/userfaultfd.c): <c>GetFolioNoAlloc</c> (absent → EFAULT), HWPoison → EIO,
    /// install the page-cache folio (EEXIST when mapped).
    /// </summary>
    private unsafe Errno MfillAtomicPteContinue(ref MfillState s)
    {
        var vma = s.Vma!;
        ulong addr = s.DstAddr;
        var folio = vma.Type.UffdOps.GetFolioNoAlloc(vma.File!.Inode, vma.PageIndex(addr));
        if (folio is null)
            return Errno.EFAULT;
        if ((folio.Flags & FolioFlags.HwPoison) != 0)
        {
            folio.Unlock();
            folio.Put();
            return Errno.EIO;
        }
        var table = Mm.PageTable.Alloc(addr);
        var e = MfillAtomicInstallPte(vma, table, addr, folio, pageInCache: true, s.Wp, huge: false);
        folio.Unlock();
        if (e != Errno.None)
            folio.Put();
        return e;
    }

    /// <summary>
    /// Models <c>mfill_copy_folio_locked</c> (mm/userfaultfd.c): copies the source of the page being filled into
    /// <paramref name="dst"/> with page faults disabled. False when a user-address source is not resident now.
    /// </summary>
    private bool MfillCopyFolioLocked(ref MfillState s, Span<byte> dst)
    {
        if (s.SrcTask is null)
        {
            s.SrcBuffer.Slice((int)s.Copied, dst.Length).CopyTo(dst);
            return true;
        }
        return TryCopyFromUserAtomic(s.SrcTask, s.SrcAddr, dst);
    }

    /// <summary>
    /// Models <c>mfill_copy_folio_retry</c> (mm/userfaultfd.c): drops the mmap lock (<c>mfill_put_vma</c>), copies the
    /// source with page faults enabled (a kernel-mode access: SIGBUS / SIGSEGV → EFAULT), retakes the lock and looks the
    /// destination up again (<see cref="MfillGetVma"/>: it may have changed meanwhile).
    /// </summary>
    private Errno MfillCopyFolioRetry(ref MfillState s, Span<byte> dst)
    {
        Mm.MmapLock.ExitReadLock();
        var r = s.SrcTask!.Access(s.SrcAddr, dst, write: false, FaultFlags.AllowRetry | FaultFlags.Killable);
        Mm.MmapLock.EnterReadLock();
        if (r != AccessResult.Ok)
            return Errno.EFAULT;
        return MfillGetVma(ref s);
    }

    /// <summary>
    /// Models <c>mfill_atomic_install_pte</c> (mm/userfaultfd.c): beyond <c>i_size</c> → EFAULT; an entry that is not none
    /// and not a uffd-wp marker → EEXIST; writable iff VM_WRITE and not a page-cache page in a private mapping; uffd-wp
    /// bit with MODE_WP. The entry takes the caller's folio reference.
    /// </summary>
    private static Errno MfillAtomicInstallPte(Vma vma, PteTable table, ulong addr, Folio folio, bool pageInCache, bool wp, bool huge)
    {
        lock (table.Ptl)
        {
            if (vma.File is { } file && vma.PageIndex(addr) >= file.Inode.PageCount)
                return Errno.EFAULT;
            ref Pte p = ref table[addr];
            if (!p.IsNone && !p.IsUffdWpMarker)
                return Errno.EEXIST;
            bool writable = (vma.Flags & VmFlags.Write) != 0 && !(pageInCache && !vma.IsShared);
            var f = PteFlags.Present;
            if (huge) f |= PteFlags.Huge;
            if (writable) f |= PteFlags.Writable;
            if (writable || !pageInCache) f |= PteFlags.Dirty;
            if (wp) f = (f | PteFlags.UffdWp) & ~PteFlags.Writable;
            table.Set(addr, new Pte { Folio = folio, Flags = f });
        }
        return Errno.None;
    }


    /// <summary>
    /// <c>copy_from_user</c> with page faults disabled: succeeds only when every source page is mapped readable now.
    /// Takes the source mm's mmap read lock unless it is this ctx's mm (whose lock the caller holds).
    /// </summary>
    private bool TryCopyFromUserAtomic(ModelTask task, ulong src, Span<byte> dst)
    {
        var smm = task.Mm;
        bool own = !ReferenceEquals(smm, Mm);
        if (own) smm.MmapLock.EnterReadLock();
        try
        {
            int done = 0;
            while (done < dst.Length)
            {
                ulong a = src + (ulong)done;
                int n = Math.Min(Folio.BasePageSize - (int)(a & (Folio.BasePageSize - 1)), dst.Length - done);
                var vma = smm.VmaLookup(a);
                if (vma is null || !ModelTask.TryAccessMapped(smm, vma, a, dst.Slice(done, n), write: false))
                    return false;
                done += n;
            }
            return true;
        }
        finally
        {
            if (own) smm.MmapLock.ExitReadLock();
        }
    }
}
