using PluginMm.Hmm;

namespace HmmMirror;

/// <summary>
/// The mirror's interval-notifier callbacks (<c>dmirror_min_ops</c> in lib/test_hmm.c). The generator turns the static
/// <see cref="Invalidate"/> into <c>DmirrorMinOps.Ops</c>; leave it out and the build fails with PMM0011.
/// </summary>
[MmuIntervalNotifierOps("dmirror")]
public static partial class DmirrorMinOps
{
    /// <summary>
    /// Models <c>dmirror_interval_invalidate</c>: ignore this device's own migrations; under the mirror's mutex (trylock when
    /// the range may not block) record the sequence and erase the device entries of the range.
    /// </summary>
    public static bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq)
    {
        var dmirror = (Dmirror)interval.Owner!;
        if (range.Event == MmuNotifyEvent.Migrate && ReferenceEquals(range.Owner, dmirror.Device))
            return true;
        if (range.Blockable)
            Monitor.Enter(dmirror.Mutex);
        else if (!Monitor.TryEnter(dmirror.Mutex))
            return false;
        try
        {
            interval.SetSeq(curSeq);
            dmirror.DoUpdate(range.Start, range.End);
        }
        finally { Monitor.Exit(dmirror.Mutex); }
        return true;
    }
}

/// <summary>
/// A snapshot's temporary notifier (<c>dmirror_mrn_ops</c>): any invalidation of the chunk invalidates the whole
/// snapshot, so it only records the sequence.
/// </summary>
[MmuIntervalNotifierOps("dmirror_snapshot")]
public static partial class DmirrorSnapshotOps
{
    /// <summary>Models <c>dmirror_snapshot_invalidate</c>.</summary>
    public static bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq)
    {
        var dmirror = (Dmirror)interval.Owner!;
        if (range.Blockable)
            Monitor.Enter(dmirror.Mutex);
        else if (!Monitor.TryEnter(dmirror.Mutex))
            return false;
        interval.SetSeq(curSeq);
        Monitor.Exit(dmirror.Mutex);
        return true;
    }
}
