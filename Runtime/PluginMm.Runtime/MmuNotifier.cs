namespace PluginMm.Runtime;

/// <summary>Why a range is invalidated (<c>enum mmu_notifier_event</c>, include/linux/mmu_notifier.h).</summary>
public enum MmuNotifierEvent
{
    /// <summary><c>MMU_NOTIFY_UNMAP</c>: munmap, mremap (old range).</summary>
    Unmap,
    /// <summary><c>MMU_NOTIFY_CLEAR</c>: zap (MADV_DONTNEED, hole punch), CoW replacement.</summary>
    Clear,
    /// <summary><c>MMU_NOTIFY_PROTECTION_VMA</c>: mprotect.</summary>
    ProtectionVma,
    /// <summary><c>MMU_NOTIFY_PROTECTION_PAGE</c>: write-protecting pages (fork's CoW, uffd-wp).</summary>
    ProtectionPage,
    /// <summary><c>MMU_NOTIFY_SOFT_DIRTY</c>.</summary>
    SoftDirty,
    /// <summary><c>MMU_NOTIFY_RELEASE</c>: the mm is going away.</summary>
    Release,
    /// <summary><c>MMU_NOTIFY_MIGRATE</c>.</summary>
    Migrate,
    /// <summary><c>MMU_NOTIFY_EXCLUSIVE</c>.</summary>
    Exclusive,
}

/// <summary>An invalidated range (<c>struct mmu_notifier_range</c>).</summary>
/// <param name="Mm">The address space.</param>
/// <param name="Start">First byte.</param>
/// <param name="End">One past the last byte.</param>
/// <param name="Event">Why.</param>
/// <param name="Owner">Who started it (<c>owner</c>, for MIGRATE), or null.</param>
public readonly record struct MmuNotifierRange(Mm Mm, ulong Start, ulong End, MmuNotifierEvent Event, object? Owner = null);

/// <summary>
/// A subscriber to an mm's invalidations (<c>struct mmu_notifier_ops</c>). The model calls
/// <see cref="InvalidateRangeStart"/> before page-table entries in the range are cleared or write-protected and
/// <see cref="InvalidateRangeEnd"/> afterwards, from munmap, zap (madvise, hole punch), mremap, fork and CoW.
/// HMM's interval notifiers build on this.
/// </summary>
public interface IMmuNotifier
{
    /// <summary><c>invalidate_range_start</c>.</summary>
    void InvalidateRangeStart(in MmuNotifierRange range);

    /// <summary><c>invalidate_range_end</c>.</summary>
    void InvalidateRangeEnd(in MmuNotifierRange range);

    /// <summary><c>release</c>: the mm is exiting.</summary>
    void Release(Mm mm);
}
