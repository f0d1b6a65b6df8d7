using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

public sealed partial class UserfaultfdCtx
{
    /// <summary>
    /// Models <c>userfaultfd_poison</c> (fs/userfaultfd.c): same shape as ZEROPAGE — mmap_changing → EAGAIN with field
    /// -EAGAIN; EINVAL before UFFDIO_API, for a bad range or a mode outside {DONTWAKE}; ESRCH when the mm has exited. Then
    /// <c>mfill_atomic_poison</c>: each page gets a <c>PTE_MARKER_POISONED</c> (any existing entry, even a marker → EEXIST;
    /// beyond <c>i_size</c> → EFAULT); a later access is VM_FAULT_HWPOISON (SIGBUS). <c>Field</c> is <c>updated</c>.
    /// </summary>
    public UffdioResult Poison(ulong start, ulong len, UffdPoisonMode mode)
    {
        if (RangeIoctlChecks(start, len, (mode & ~UffdPoisonMode.DontWake) == 0) is { } fail)
            return fail;
        var state = new MfillState(MfillMode.Poison, start, len, wp: false);
        long ret = MfillAtomic(ref state);
        return FinishFill(ret, start, len, (mode & UffdPoisonMode.DontWake) != 0);
    }

    /// <summary>
    /// The common head of <c>userfaultfd_poison</c> and <c>userfaultfd_move</c> (fs/userfaultfd.c), in their order: closed
    /// fd → EBADF (model); before UFFDIO_API → EINVAL; mmap_changing → EAGAIN with the field set to -EAGAIN; a bad range
    /// or mode (<paramref name="argsOk"/> false) → EINVAL; the mm has exited → ESRCH. Null when the ioctl may proceed.
    /// </summary>
    private UffdioResult? RangeIoctlChecks(ulong start, ulong len, bool argsOk)
    {
        if (_released)
            return UffdioResult.Fail(Errno.EBADF);
        if (!Initialized)
            return UffdioResult.Fail(Errno.EINVAL);
        if (MmapChanging > 0)
            return new UffdioResult(Errno.EAGAIN, -(long)Errno.EAGAIN);
        if (ValidateRange(start, len) != Errno.None || !argsOk)
            return UffdioResult.Fail(Errno.EINVAL);
        if (Mm.Exited)
            return UffdioResult.Fail(Errno.ESRCH);
        return null;
    }

    /// <summary>
    /// Models <c>mfill_atomic_pte_poison</c> (mm/userfaultfd.c) and the POISON branch of <c>hugetlb_mfill_atomic_pte</c>
    /// (mm/hugetlb.c): refuse beyond <c>i_size</c> (EFAULT), refuse any entry that is not none, markers included (EEXIST),
    /// else install <c>PTE_MARKER_POISONED</c>. For hugetlb the caller holds the fault mutex.
    /// </summary>
    private Errno MfillAtomicPtePoison(Vma vma, ulong addr) => MfillInstallIntoNone(vma, addr, PteFlags.MarkerPoisoned);

    /// <summary>
    /// Installs a folio-less entry (the zero page, a poison marker) where the entry is none: beyond <c>i_size</c> → EFAULT,
    /// any entry (markers included) → EEXIST. Shared by <c>mfill_atomic_pte_zeropage</c> and <c>mfill_atomic_pte_poison</c>.
    /// </summary>
    private Errno MfillInstallIntoNone(Vma vma, ulong addr, PteFlags flags)
    {
        var table = Mm.PageTable.Alloc(addr);
        lock (table.Ptl)
        {
            if (vma.File is { } file && vma.PageIndex(addr) >= file.Inode.PageCount)
                return Errno.EFAULT;
            if (!table[addr].IsNone)
                return Errno.EEXIST;
            table.Set(addr, new Pte { Flags = flags });
        }
        return Errno.None;
    }
}
