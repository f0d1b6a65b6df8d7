using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

public sealed partial class UserfaultfdCtx
{
    /// <summary><c>validate_range</c> / <c>validate_unaligned_range</c> (fs/userfaultfd.c).</summary>
    internal static Errno ValidateRange(ulong start, ulong len, bool requireAlignedStart = true)
    {
        if (requireAlignedStart && (start & (Folio.BasePageSize - 1)) != 0)
            return Errno.EINVAL;
        if ((len & (Folio.BasePageSize - 1)) != 0 || len == 0)
            return Errno.EINVAL;
        if (start < MmapMinAddr || start >= ModelKernel.TaskSize || len > ModelKernel.TaskSize - start)
            return Errno.EINVAL;
        return Errno.None;
    }

    /// <summary>
    /// Models <c>vma_can_userfault</c> (mm/userfaultfd.c, vm_uffd_ops series + seed 000) through the VMA's table: no
    /// <c>CanUserfault</c> → false; VM_DROPPABLE → false; WP_ASYNC with WP only → true; a file-backed, non-hugetlb VMA whose
    /// table lacks <c>GetFolioNoAlloc</c> → false (the run-time twin of PMM0001: <c>__do_userfault</c> needs it); then the
    /// type's own <c>CanUserfault</c>.
    /// </summary>
    /// <remarks>Model addition: modes outside the type's declared <see cref="MemoryTypeOps.Modes"/> are refused too.</remarks>
    internal static unsafe bool VmaCanUserfault(Vma vma, UffdModes modes, bool wpAsync)
    {
        var ops = vma.Type.UffdOps;
        if (ops.CanUserfault == null)
            return false;
        if ((vma.Flags & VmFlags.Droppable) != 0)
            return false;
        if (wpAsync && modes == UffdModes.Wp)
            return true;
        if (!vma.IsAnonymous && !vma.IsHugetlb && ops.GetFolioNoAlloc == null)
            return false;
        if ((modes & ~vma.Type.Modes) != 0)
            return false;
        var view = vma.View;
        return ops.CanUserfault(in view, modes);
    }

    private static VmFlags ToVmFlags(UffdModes m)
        => ((m & UffdModes.Missing) != 0 ? VmFlags.UffdMissing : 0)
         | ((m & UffdModes.Wp) != 0 ? VmFlags.UffdWp : 0)
         | ((m & UffdModes.Minor) != 0 ? VmFlags.UffdMinor : 0);

    private static UffdModes ToModes(VmFlags f)
        => ((f & VmFlags.UffdMissing) != 0 ? UffdModes.Missing : 0)
         | ((f & VmFlags.UffdWp) != 0 ? UffdModes.Wp : 0)
         | ((f & VmFlags.UffdMinor) != 0 ? UffdModes.Minor : 0);

    /// <summary>
    /// Models <c>userfaultfd_register</c> (fs/userfaultfd.c) in its validation order: EINVAL before UFFDIO_API, for mode 0
    /// or unknown bits, a bad range, no VMA in the range, a hugetlb start or end off a huge-page boundary, or a VMA the
    /// type refuses (<see cref="VmaCanUserfault"/>); EPERM without VM_MAYWRITE; EBUSY when another userfaultfd owns a VMA;
    /// ENOMEM when the mm has exited. Holes between VMAs are tolerated. VMAs already registered here with a superset of
    /// the modes are left as they are. <paramref name="ioctls"/> is the kernel's mask: the basic set if any VMA is hugetlb,
    /// without WRITEPROTECT unless MODE_WP, without CONTINUE unless MODE_MINOR.
    /// </summary>
    public UffdioResult Register(ulong start, ulong len, UffdModes mode, out UffdIoctls ioctls)
    {
        ioctls = 0;
        if (_released)
            return UffdioResult.Fail(Errno.EBADF);
        if (!Initialized)
            return UffdioResult.Fail(Errno.EINVAL);
        if (mode == 0 || (mode & ~(UffdModes.Missing | UffdModes.Wp | UffdModes.Minor)) != 0)
            return UffdioResult.Fail(Errno.EINVAL);
        if (ValidateRange(start, len) != Errno.None)
            return UffdioResult.Fail(Errno.EINVAL);
        if (Mm.Exited)
            return UffdioResult.Fail(Errno.ENOMEM);
        VmFlags req = ToVmFlags(mode);
        ulong end = start + len;
        bool basic = false;
        Mm.MmapLock.EnterWriteLock();
        try
        {
            var err = RangeVmasLocked(start, end, out var vmas);
            if (err != Errno.None)
                return UffdioResult.Fail(err);
            bool wpAsync = (_features & UffdFeatures.WpAsync) != 0;
            foreach (var cur in vmas)
            {
                if (!VmaCanUserfault(cur, mode, wpAsync))
                    return UffdioResult.Fail(Errno.EINVAL);
                if ((cur.Flags & VmFlags.MayWrite) == 0)
                    return UffdioResult.Fail(Errno.EPERM);
                if (cur.IsHugetlb && end <= cur.End && end > cur.Start && (end & ((ulong)cur.PageSize - 1)) != 0)
                    return UffdioResult.Fail(Errno.EINVAL);
                if (cur.UffdCtx is not null && !ReferenceEquals(cur.UffdCtx, this))
                    return UffdioResult.Fail(Errno.EBUSY);
                if (cur.IsHugetlb)
                    basic = true;
            }
            foreach (var cur in vmas)
            {
                if (ReferenceEquals(cur.UffdCtx, this) && (cur.Flags & req) == req)
                    continue;
                ulong s = Math.Max(start, cur.Start), e = Math.Min(end, cur.End);
                Mm.SplitAround(s, e);
                var target = Mm.VmaLookup(s)!;
                target.Flags = (target.Flags & ~VmFlags.UffdFlags) | req;
                target.UffdCtx = this;
            }
        }
        finally { Mm.MmapLock.ExitWriteLock(); }

        ioctls = basic ? Uapi.UFFD_API_RANGE_IOCTLS_BASIC : Uapi.UFFD_API_RANGE_IOCTLS;
        if ((mode & UffdModes.Wp) == 0) ioctls &= ~UffdIoctls.WriteProtect;
        if ((mode & UffdModes.Minor) == 0) ioctls &= ~UffdIoctls.Continue;
        return UffdioResult.Ok;
    }

    /// <summary>
    /// The common start of <c>userfaultfd_register</c> and <c>_unregister</c> under the mmap write lock: ENOMEM when the
    /// mm has exited (<c>mmget_not_zero</c>); EINVAL when no VMA intersects [start, end) or the first one is hugetlb and
    /// <paramref name="start"/> is not huge-page aligned.
    /// </summary>
    private Errno RangeVmasLocked(ulong start, ulong end, out List<Vma> vmas)
    {
        vmas = Mm.Exited ? new List<Vma>() : Mm.VmasIn(start, end);
        if (Mm.Exited)
            return Errno.ENOMEM;
        if (vmas.Count == 0)
            return Errno.EINVAL;
        if (vmas[0].IsHugetlb && (start & ((ulong)vmas[0].PageSize - 1)) != 0)
            return Errno.EINVAL;
        return Errno.None;
    }

    /// <summary>
    /// Models <c>userfaultfd_unregister</c> (fs/userfaultfd.c): EINVAL before UFFDIO_API, for a bad range, no VMA, a
    /// misaligned hugetlb start, a VMA owned by another userfaultfd, or a VMA that cannot be userfault-registered at all;
    /// ENOMEM when the mm has exited. MISSING-registered VMAs wake their pending faults first ("so they will not hang");
    /// uffd-wp bits are cleared; unregistered VMAs in the range are skipped.
    /// </summary>
    public UffdioResult Unregister(ulong start, ulong len)
    {
        if (_released)
            return UffdioResult.Fail(Errno.EBADF);
        if (!Initialized || ValidateRange(start, len) != Errno.None)
            return UffdioResult.Fail(Errno.EINVAL);
        if (Mm.Exited)
            return UffdioResult.Fail(Errno.ENOMEM);
        ulong end = start + len;
        Mm.MmapLock.EnterWriteLock();
        try
        {
            var err = RangeVmasLocked(start, end, out var vmas);
            if (err != Errno.None)
                return UffdioResult.Fail(err);
            bool wpAsync = (_features & UffdFeatures.WpAsync) != 0;
            foreach (var cur in vmas)
            {
                if (cur.UffdCtx is not null && !ReferenceEquals(cur.UffdCtx, this))
                    return UffdioResult.Fail(Errno.EINVAL);
                if (!VmaCanUserfault(cur, ToModes(cur.Flags), wpAsync))
                    return UffdioResult.Fail(Errno.EINVAL);
            }
            foreach (var cur in vmas)
            {
                if (cur.UffdCtx is null)
                    continue;
                ulong s = Math.Max(start, cur.Start), e = Math.Min(end, cur.End);
                if (cur.UffdMissing)
                    WakeRange(start, cur.End - start);
                Mm.SplitAround(s, e);
                var target = Mm.VmaLookup(s)!;
                if (target.UffdWp)
                    Mm.ClearUffdWp(target, target.Start, target.End);
                target.Flags &= ~VmFlags.UffdFlags;
                target.UffdCtx = null;
            }
        }
        finally { Mm.MmapLock.ExitWriteLock(); }
        return UffdioResult.Ok;
    }
}
