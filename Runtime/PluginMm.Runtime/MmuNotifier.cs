using PluginMm.Hmm;
namespace PluginMm.Runtime;

/// <summary>An invalidated range (<c>struct mmu_notifier_range</c>).</summary>
/// <param name="Mm">The address space.</param>
/// <param name="Start">First byte.</param>
/// <param name="End">One past the last byte.</param>
/// <param name="Event">Why.</param>
/// <param name="Owner">Who started it (<c>owner</c>, for MIGRATE), or null.</param>
public readonly record struct MmuNotifierRange(Mm Mm, ulong Start, ulong End, MmuNotifyEvent Event, object? Owner = null);

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
