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

public sealed partial class Mm
{
    private readonly Lock _notifierLock = new();
    private IMmuNotifier[] _notifiers = Array.Empty<IMmuNotifier>();

    /// <summary>Models <c>mmu_notifier_register</c>.</summary>
    public void RegisterMmuNotifier(IMmuNotifier notifier)
    {
        lock (_notifierLock)
        {
            var n = new IMmuNotifier[_notifiers.Length + 1];
            _notifiers.CopyTo(n, 0);
            n[^1] = notifier;
            _notifiers = n;
        }
    }

    /// <summary>Models <c>mmu_notifier_unregister</c>.</summary>
    public void UnregisterMmuNotifier(IMmuNotifier notifier)
    {
        lock (_notifierLock)
            _notifiers = Array.FindAll(_notifiers, x => !ReferenceEquals(x, notifier));
    }

    /// <summary>Models <c>mmu_notifier_invalidate_range_start</c>.</summary>
    internal void InvalidateRangeStart(ulong start, ulong end, MmuNotifyEvent ev)
    {
        var n = Volatile.Read(ref _notifiers);
        if (n.Length == 0) return;
        var r = new MmuNotifierRange(this, start, end, ev);
        foreach (var s in n) s.InvalidateRangeStart(in r);
    }

    /// <summary>Models <c>mmu_notifier_invalidate_range_end</c>.</summary>
    internal void InvalidateRangeEnd(ulong start, ulong end, MmuNotifyEvent ev)
    {
        var n = Volatile.Read(ref _notifiers);
        if (n.Length == 0) return;
        var r = new MmuNotifierRange(this, start, end, ev);
        foreach (var s in n) s.InvalidateRangeEnd(in r);
    }
}
