using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

public sealed partial class UserfaultfdCtx
{
    /// <summary>
    /// Models <c>userfaultfd_writeprotect</c> (fs/userfaultfd.c): mmap_changing → EAGAIN (no result field); EINVAL before
    /// UFFDIO_API, for a bad range, a mode outside {WP, DONTWAKE} or WP and DONTWAKE together; ESRCH when the mm has exited.
    /// Then <see cref="MwriteprotectRange"/>; an unprotect without DONTWAKE wakes the range (a protect never wakes).
    /// </summary>
    public UffdioResult WriteProtect(ulong start, ulong len, UffdWriteProtectMode mode)
    {
        if (_released)
            return UffdioResult.Fail(Errno.EBADF);
        if (!Initialized)
            return UffdioResult.Fail(Errno.EINVAL);
        if (MmapChanging > 0)
            return UffdioResult.Fail(Errno.EAGAIN);
        if (ValidateRange(start, len) != Errno.None)
            return UffdioResult.Fail(Errno.EINVAL);
        if ((mode & ~(UffdWriteProtectMode.Wp | UffdWriteProtectMode.DontWake)) != 0)
            return UffdioResult.Fail(Errno.EINVAL);
        bool wp = (mode & UffdWriteProtectMode.Wp) != 0;
        if (wp && (mode & UffdWriteProtectMode.DontWake) != 0)
            return UffdioResult.Fail(Errno.EINVAL);
        if (Mm.Exited)
            return UffdioResult.Fail(Errno.ESRCH);
        var e = MwriteprotectRange(start, len, wp);
        if (e != Errno.None)
            return UffdioResult.Fail(e);
        if (!wp && (mode & UffdWriteProtectMode.DontWake) == 0)
            WakeRange(start, len);
        return UffdioResult.Ok;
    }

    /// <summary>
    /// Models <c>mwriteprotect_range</c> (mm/userfaultfd.c): under the mmap read lock, VMA by VMA
    /// (<c>for_each_vma_range</c>): a VMA without VM_UFFD_WP stops the walk with ENOENT (a range with no VMA is ENOENT too,
    /// holes between VMAs are skipped), a hugetlb VMA needs a huge-page-aligned range (EINVAL); each VMA before the one that
    /// stopped it has already been protected or resolved by <see cref="Mm.UffdWpRange"/>, and stays so.
    /// </summary>
    private Errno MwriteprotectRange(ulong start, ulong len, bool enableWp)
    {
        ulong end = start + len;
        var mm = Mm;
        mm.MmapLock.EnterReadLock();
        MapChangingLock.EnterReadLock(); // held for the whole operation (map_changing_lock)
        try
        {
            if (mm.Exited)
                return Errno.ESRCH;
            if (MmapChanging > 0)
                return Errno.EAGAIN;
            var vmas = mm.VmasIn(start, end);
            if (vmas.Count == 0)
                return Errno.ENOENT;
            foreach (var v in vmas)
            {
                if (!v.UffdWp)
                    return Errno.ENOENT;
                if (v.IsHugetlb && ((start | len) & ((ulong)v.PageSize - 1)) != 0)
                    return Errno.EINVAL;
                mm.UffdWpRange(v, Math.Max(start, v.Start), Math.Min(end, v.End), enableWp);
            }
            return Errno.None;
        }
        finally
        {
            MapChangingLock.ExitReadLock();
            mm.MmapLock.ExitReadLock();
        }
    }

    /// <summary><c>userfaultfd_wp_async</c> (include/linux/userfaultfd_k.h): the VMA's userfaultfd has UFFD_FEATURE_WP_ASYNC.</summary>
    internal static bool WpAsync(Vma vma) => vma.UffdCtx is { } c && (c._features & UffdFeatures.WpAsync) != 0;

    /// <summary>
    /// <c>userfaultfd_wp_use_markers</c> (include/linux/userfaultfd_k.h): file-backed memory (shmem, hugetlb, ...) always
    /// write-protects empty entries with PTE markers; anonymous memory only with UFFD_FEATURE_WP_UNPOPULATED.
    /// </summary>
    internal static bool WpUseMarkers(Vma vma)
    {
        if (!vma.UffdWp)
            return false;
        if (!vma.IsAnonymous)
            return true;
        return vma.UffdCtx is { } c && (c._features & UffdFeatures.WpUnpopulated) != 0;
    }
}
