using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

public sealed partial class UserfaultfdCtx
{
    private enum MfillKind { Copy, ZeroPage, Continue, Poison }

    /// <summary>Internal result of one page: the source page was not resident; drop the locks, fault it in and retry.</summary>
    private const Errno NeedSourceFault = (Errno)(-1);

    /// <summary>Where UFFDIO_COPY reads from: a handler buffer (always resident), or a user address in a task's mm.</summary>
    private ref struct MfillSource
    {
        public ReadOnlySpan<byte> Buffer;
        public ModelTask? Task;
        public ulong Address;
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
        var source = new MfillSource { Buffer = src };
        long ret = MfillAtomic(dst, (ulong)src.Length, MfillKind.Copy, ref source, (mode & UffdCopyMode.Wp) != 0);
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
        var source = new MfillSource { Task = caller, Address = src };
        long ret = MfillAtomic(dst, len, MfillKind.Copy, ref source, (mode & UffdCopyMode.Wp) != 0);
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
    /// Models <c>userfaultfd_zeropage</c> (fs/userfaultfd.c): like COPY without a source; mode ⊄ {DONTWAKE} → EINVAL;
    /// hugetlb → field -EINVAL. Private and anonymous mappings get the shared zero page; shared file mappings a zeroed
    /// page-cache folio.
    /// </summary>
    public UffdioResult ZeroPage(ulong start, ulong len, UffdZeroPageMode mode)
    {
        if (FillChecks(start, len, (mode & ~UffdZeroPageMode.DontWake) == 0) is { } fail)
            return fail;
        var none = default(MfillSource);
        long ret = MfillAtomic(start, len, MfillKind.ZeroPage, ref none, wp: false);
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
        var none = default(MfillSource);
        long ret = MfillAtomic(start, len, MfillKind.Continue, ref none, (mode & UffdContinueMode.Wp) != 0);
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
    /// Models <c>mfill_atomic</c> (mm/userfaultfd.c): under the mmap read lock, finds the one registered VMA holding
    /// [dst, dst+len) (else ENOENT), checks mmap_changing (EAGAIN) and MODE_WP against VM_UFFD_WP (EINVAL), dispatches
    /// hugetlb to <see cref="MfillAtomicHugetlb"/>, picks the tables (a private mapping uses the anonymous type's, as the
    /// kernel uses the anon <c>vm_uffd_ops</c>) and fills page by page. Returns bytes done if any, else -errno.
    /// </summary>
    private unsafe long MfillAtomic(ulong dst, ulong len, MfillKind kind, ref MfillSource source, bool wp)
    {
        ulong copied = 0;
        Errno err = Errno.None;
        Folio? pending = null; // filled with locks dropped (mfill_state.folio)
        var mm = Mm;
        mm.MmapLock.EnterReadLock();
        try
        {
            while (true)
            {
                err = Errno.None;
                var vma = mm.VmaLookup(dst);
                if (mm.Exited || vma is null || dst + len > vma.End || vma.UffdCtx is null)
                {
                    err = Errno.ENOENT;
                    break;
                }
                if (MmapChanging > 0)
                {
                    err = Errno.EAGAIN;
                    break;
                }
                if (wp && !vma.UffdWp)
                {
                    err = Errno.EINVAL;
                    break;
                }
                if (vma.IsHugetlb)
                    err = MfillAtomicHugetlb(vma, dst, len, kind, ref source, wp, ref copied, ref pending);
                else
                    err = MfillAtomicPtes(vma, dst, len, kind, ref source, wp, ref copied, ref pending);
                if (err != NeedSourceFault)
                    break;

                // Drop the locks, fault the source in (copy_from_user with faults enabled), retake and look up again.
                mm.MmapLock.ExitReadLock();
                var span = pending!.Data.Slice(0, pending.Size);
                var r = source.Task!.Access(source.Address + copied, span, write: false, FaultFlags.AllowRetry | FaultFlags.Killable);
                mm.MmapLock.EnterReadLock();
                if (r != AccessResult.Ok)
                {
                    err = Errno.EFAULT;
                    break;
                }
            }
        }
        finally
        {
            mm.MmapLock.ExitReadLock();
            pending?.Put();
        }
        return copied > 0 ? (long)copied : -(long)err;
    }

    private unsafe Errno MfillAtomicPtes(Vma vma, ulong dst, ulong len, MfillKind kind, ref MfillSource source, bool wp, ref ulong copied, ref Folio? pending)
    {
        if (vma.IsAnonymous && vma.IsShared)
            return Errno.EINVAL;
        bool sharedFile = vma.IsShared && !vma.IsAnonymous;
        MemoryTypeOps? ops = sharedFile ? vma.Type : Mm.Kernel.AnonymousType;
        if (kind == MfillKind.Continue)
        {
            if (vma.IsAnonymous || vma.Type.UffdOps.GetFolioNoAlloc == null)
                return Errno.EINVAL;
        }
        else if (kind != MfillKind.Poison && (ops is null || ops.UffdOps.AllocFolio == null))
            return Errno.EINVAL;

        while (copied < len)
        {
            ulong addr = dst + copied;
            Errno e = kind switch
            {
                MfillKind.Copy => MfillAtomicPteCopy(vma, addr, ops!, sharedFile, ref source, copied, ref pending, wp),
                MfillKind.ZeroPage => sharedFile
                    ? MfillAtomicPteCopy(vma, addr, ops!, sharedFile, ref source, copied, ref pending, wp)
                    : MfillAtomicPteZeropage(vma, addr),
                MfillKind.Poison => MfillAtomicPtePoison(vma, addr),
                _ => MfillAtomicPteContinue(vma, addr, wp),
            };
            if (e != Errno.None)
                return e;
            copied += Folio.BasePageSize;
        }
        return Errno.None;
    }

    /// <summary>
    /// Models <c>mfill_atomic_pte_copy</c> (mm/userfaultfd.c, vm_uffd_ops series / seed 001): <c>AllocFolio</c>, copy the
    /// source (a zeroed folio for ZEROPAGE on shared memory), <c>FilemapAdd</c> for a shared file mapping, install the
    /// entry, and <c>FilemapRemove</c> when it cannot be installed.
    /// </summary>
    private unsafe Errno MfillAtomicPteCopy(Vma vma, ulong addr, MemoryTypeOps ops, bool sharedFile, ref MfillSource source,
        ulong offset, ref Folio? pending, bool wp)
    {
        var view = vma.View;
        Folio folio;
        if (pending is not null)
        {
            folio = pending;
            pending = null;
        }
        else
        {
            var f = ops.UffdOps.AllocFolio(in view, addr);
            if (f is null)
                return Errno.ENOMEM;
            folio = f;
            if (!source.Buffer.IsEmpty)
                source.Buffer.Slice((int)offset, Folio.BasePageSize).CopyTo(folio.Data);
            else if (source.Task is not null && !TryCopyFromUserAtomic(source.Task, source.Address + offset, folio.Data.Slice(0, Folio.BasePageSize)))
            {
                pending = folio;
                return NeedSourceFault;
            }
        }
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
        var ie = MfillAtomicInstallPte(vma, table, addr, folio, sharedFile, wp, huge: false);
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

    /// <summary>Models <c>mfill_atomic_pte_zeropage</c> (mm/userfaultfd.c): maps the shared zero page.</summary>
    private Errno MfillAtomicPteZeropage(Vma vma, ulong addr) => MfillInstallIntoNone(vma, addr, PteFlags.Present | PteFlags.ZeroPage);

    /// <summary>
    /// Models <c>mfill_atomic_pte_continue</c> (mm/userfaultfd.c): <c>GetFolioNoAlloc</c> (absent → EFAULT), HWPoison → EIO,
    /// install the page-cache folio (EEXIST when mapped).
    /// </summary>
    private unsafe Errno MfillAtomicPteContinue(Vma vma, ulong addr, bool wp)
    {
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
        var e = MfillAtomicInstallPte(vma, table, addr, folio, pageInCache: true, wp, huge: false);
        folio.Unlock();
        if (e != Errno.None)
            folio.Put();
        return e;
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
    /// Models <c>mfill_atomic_hugetlb</c> (mm/userfaultfd.c): ZEROPAGE → EINVAL; dst and len must be multiples of the huge
    /// page size (EINVAL); per huge page under the fault mutex: COPY allocates a huge folio (shared: into the page cache,
    /// EEXIST if cached), CONTINUE maps the cached one (EFAULT if absent); an entry not none → EEXIST.
    /// </summary>
    private Errno MfillAtomicHugetlb(Vma vma, ulong dst, ulong len, MfillKind kind, ref MfillSource source, bool wp, ref ulong copied, ref Folio? pending)
    {
        if (kind == MfillKind.ZeroPage)
            return Errno.EINVAL;
        ulong hs = (ulong)vma.PageSize;
        if (((dst | len) & (hs - 1)) != 0)
            return Errno.EINVAL;
        var inode = vma.File!.Inode;
        while (copied < len)
        {
            ulong addr = dst + copied;
            long idx = vma.PageIndex(addr);
            var mutex = Mm.Kernel.HugetlbFaultMutex(inode, idx);
            var table = Mm.PageTable.Alloc(addr);
            Errno e;
            mutex.Enter();
            try
            {
                e = kind == MfillKind.Copy
                    ? HugetlbMfillCopy(vma, table, addr, idx, ref source, copied, ref pending, wp)
                    : kind == MfillKind.Poison
                        ? MfillAtomicPtePoison(vma, addr)
                        : HugetlbMfillContinue(vma, table, addr, idx, wp);
            }
            finally { mutex.Exit(); }
            if (e != Errno.None)
                return e;
            copied += hs;
        }
        return Errno.None;
    }

    /// <summary>Models <c>hugetlb_mfill_atomic_pte</c> for COPY (mm/hugetlb.c).</summary>
    private Errno HugetlbMfillCopy(Vma vma, PteTable table, ulong addr, long idx, ref MfillSource source, ulong offset, ref Folio? pending, bool wp)
    {
        lock (table.Ptl)
        {
            ref Pte p = ref table[addr];
            if (!p.IsNone && !p.IsUffdWpMarker)
                return Errno.EEXIST;
        }
        Folio folio;
        if (pending is not null)
        {
            folio = pending;
            pending = null;
        }
        else
        {
            var f = Mm.Kernel.Allocator.Alloc(vma.PageSize);
            if (f is null)
                return Errno.ENOMEM;
            folio = f;
            if (!source.Buffer.IsEmpty)
                source.Buffer.Slice((int)offset, vma.PageSize).CopyTo(folio.Data);
            else if (source.Task is not null && !TryCopyFromUserAtomic(source.Task, source.Address + offset, folio.Data))
            {
                pending = folio;
                return NeedSourceFault;
            }
        }
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

    /// <summary>Models <c>hugetlb_mfill_atomic_pte</c> for CONTINUE (mm/hugetlb.c).</summary>
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
