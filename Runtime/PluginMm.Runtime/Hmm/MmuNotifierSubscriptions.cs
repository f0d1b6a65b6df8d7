using System.Runtime.CompilerServices;
using PluginMm.Hmm;

namespace PluginMm.Runtime.Hmm;

/// <summary>
/// An mm's interval-notifier state (<c>struct mmu_notifier_subscriptions</c>, mm/mmu_notifier.c): the subscriptions, the
/// mm-wide <c>invalidate_seq</c> (odd while an invalidation that hits a subscription is running), the count of active
/// invalidations, the list of inserts and removals deferred until they end, and the wait queue
/// <c>mmu_interval_read_begin</c> sleeps on. It subscribes to the mm's invalidations as an <see cref="IMmuNotifier"/>.
/// </summary>
/// <remarks>
/// Departure: the kernel keeps subscriptions in an interval tree; the model keeps a list in insertion order and tests
/// each for overlap (drivers hold a handful). The protocol (what is called, when, and with which sequence) is the kernel's.
/// </remarks>
public sealed class MmuNotifierSubscriptions : IMmuNotifier
{
    private static readonly ConditionalWeakTable<Mm, MmuNotifierSubscriptions> s_byMm = new();

    private readonly object _lock = new(); // subscriptions->lock, and the wait queue (Monitor) read_begin sleeps on
    private readonly List<IntervalNotifier> _itree = new();
    private readonly List<IntervalNotifier> _deferred = new();
    private ulong _invalidateSeq = 2;
    private int _activeInvalidateRanges;
    private long _warnings;

    private MmuNotifierSubscriptions(Mm mm) => Mm = mm;

    /// <summary>The address space.</summary>
    public Mm Mm { get; }

    /// <summary>The mm-wide sequence (<c>subscriptions-&gt;invalidate_seq</c>).</summary>
    public ulong InvalidateSeq { get { lock (_lock) return _invalidateSeq; } }

    /// <summary>Subscriptions in the tree (not counting deferred inserts).</summary>
    public int Count { get { lock (_lock) return _itree.Count; } }

    /// <summary>
    /// Number of <c>WARN_ON</c>s: an <c>Invalidate</c> hook returned false for a blockable range (a driver bug the kernel
    /// warns about and ignores).
    /// </summary>
    public long Warnings => Interlocked.Read(ref _warnings);

    /// <summary>The subscriptions of <paramref name="mm"/>, or null if none were ever created (<c>mm-&gt;notifier_subscriptions</c>).</summary>
    public static MmuNotifierSubscriptions? Of(Mm mm) => s_byMm.TryGetValue(mm, out var s) ? s : null;

    /// <summary>
    /// Models <c>__mmu_notifier_register</c> as <c>mmu_interval_notifier_insert</c> does it the first time: creates the
    /// subscriptions under the mmap write lock. The caller must not hold the mmap lock.
    /// </summary>
    internal static MmuNotifierSubscriptions GetOrCreate(Mm mm)
    {
        if (Of(mm) is { } existing)
            return existing;
        mm.MmapLock.EnterWriteLock();
        try
        {
            if (Of(mm) is { } raced)
                return raced;
            var s = new MmuNotifierSubscriptions(mm);
            s_byMm.Add(mm, s);
            mm.RegisterMmuNotifier(s);
            return s;
        }
        finally { mm.MmapLock.ExitWriteLock(); }
    }

    private bool IsInvalidating => (_invalidateSeq & 1) != 0;

    /// <summary>Models <c>__mmu_interval_notifier_insert</c> (mm/mmu_notifier.c).</summary>
    internal void Insert(IntervalNotifier sub)
    {
        lock (_lock)
        {
            if (_activeInvalidateRanges > 0)
            {
                // An invalidation is running: a reader must wait for it to finish before trusting the page tables.
                if (IsInvalidating)
                {
                    sub.PendingInsert = true;
                    _deferred.Add(sub);
                }
                else
                {
                    _invalidateSeq |= 1;
                    _itree.Add(sub);
                    sub.InTree = true;
                }
                sub.StoreSeq(_invalidateSeq);
            }
            else
            {
                sub.StoreSeq(_invalidateSeq - 1);
                _itree.Add(sub);
                sub.InTree = true;
            }
        }
    }

    /// <summary>Models <c>mmu_interval_notifier_remove</c> (mm/mmu_notifier.c): after it returns, the hook is never called again.</summary>
    internal void Remove(IntervalNotifier sub)
    {
        ulong seq = 0;
        lock (_lock)
        {
            if (IsInvalidating)
            {
                if (sub.PendingInsert)
                {
                    _deferred.Remove(sub); // never made it into the tree
                    sub.PendingInsert = false;
                }
                else if (sub.InTree && !sub.PendingRemove)
                {
                    sub.PendingRemove = true;
                    _deferred.Add(sub);
                    seq = _invalidateSeq;
                }
            }
            else if (sub.InTree)
            {
                _itree.Remove(sub);
                sub.InTree = false;
            }
        }
        // The invalidation running now may still call the hook: wait until it has finished.
        if (seq != 0)
            WaitWhileSeq(seq);
    }

    /// <summary>Models <c>mmu_interval_read_begin</c> (mm/mmu_notifier.c) for <paramref name="sub"/>.</summary>
    internal ulong ReadBegin(IntervalNotifier sub)
    {
        ulong seq;
        bool invalidating;
        lock (_lock)
        {
            seq = sub.InvalidateSeq;
            invalidating = seq == _invalidateSeq;
        }
        if (invalidating)
            WaitWhileSeq(seq);
        return seq;
    }

    private void WaitWhileSeq(ulong seq)
    {
        lock (_lock)
        {
            while (_invalidateSeq == seq)
                Monitor.Wait(_lock);
        }
    }

    /// <summary>
    /// Models <c>mn_itree_invalidate</c> (<c>mn_itree_inv_start_range</c> + the hook calls): makes the sequence odd when a
    /// subscription overlaps, then calls each overlapping subscription's <c>Invalidate</c> with it. Allocates nothing.
    /// </summary>
    void IMmuNotifier.InvalidateRangeStart(in MmuNotifierRange range) => InvalidateStart(range.Start, range.End, range.Event, range.Owner);

    /// <summary>Models <c>mn_itree_inv_end</c> (mm/mmu_notifier.c).</summary>
    void IMmuNotifier.InvalidateRangeEnd(in MmuNotifierRange range) => InvalidateEnd();

    /// <summary>Models <c>mn_itree_release</c> (mm/mmu_notifier.c): the mm exits; every subscription is invalidated with MMU_NOTIFY_RELEASE.</summary>
    void IMmuNotifier.Release(Mm mm)
    {
        InvalidateStart(0, ulong.MaxValue, MmuNotifyEvent.Release, null);
        InvalidateEnd();
    }

    private unsafe void InvalidateStart(ulong start, ulong end, MmuNotifyEvent ev, object? owner)
    {
        ulong curSeq = 0;
        bool any = false;
        lock (_lock)
        {
            _activeInvalidateRanges++;
            for (int i = 0; i < _itree.Count; i++)
            {
                if (_itree[i].Overlaps(start, end))
                {
                    any = true;
                    break;
                }
            }
            if (any)
            {
                _invalidateSeq |= 1;
                curSeq = _invalidateSeq;
            }
        }
        if (!any)
            return;
        // The tree is stable while the sequence is odd: inserts and removals are deferred (as in the kernel, no lock here).
        var view = new MmuNotifierRangeView(start, end, ev, owner, blockable: true);
        for (int i = 0; i < _itree.Count; i++)
        {
            var sub = _itree[i];
            if (!sub.Overlaps(start, end))
                continue;
            if (!sub.Ops.Invalidate(sub, in view, curSeq))
                Interlocked.Increment(ref _warnings); // WARN_ON(mmu_notifier_range_blockable(range)); continue
        }
    }

    private void InvalidateEnd()
    {
        lock (_lock)
        {
            if (--_activeInvalidateRanges > 0 || !IsInvalidating)
                return;
            _invalidateSeq++; // even again
            foreach (var sub in _deferred)
            {
                if (sub.PendingInsert)
                {
                    sub.PendingInsert = false;
                    _itree.Add(sub);
                    sub.InTree = true;
                }
                else if (sub.PendingRemove)
                {
                    sub.PendingRemove = false;
                    _itree.Remove(sub);
                    sub.InTree = false;
                }
            }
            _deferred.Clear();
            Monitor.PulseAll(_lock); // wake_up_all(&subscriptions->wq)
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"mmu_notifier_subscriptions ({Count} intervals, seq {InvalidateSeq})";
}

/// <summary>
/// The runtime's <see cref="MmuIntervalNotifier"/>: a subscription of one mm's range, created by
/// <see cref="Insert"/> (<c>mmu_interval_notifier_insert</c>) and ended by <see cref="Remove"/>
/// (<c>mmu_interval_notifier_remove</c>).
/// </summary>
public sealed class IntervalNotifier : MmuIntervalNotifier
{
    private readonly MmuNotifierSubscriptions _subscriptions;
    private int _removed;

    private IntervalNotifier(MmuNotifierSubscriptions subscriptions, ulong start, ulong last, MmuIntervalNotifierOps ops, object? owner)
        : base(start, last + 1, ops, owner)
    {
        _subscriptions = subscriptions;
        Last = last;
    }

    /// <summary>The subscribed address space (<c>interval_sub-&gt;mm</c>).</summary>
    public Mm Mm => _subscriptions.Mm;

    /// <summary>The last byte (<c>interval_tree.last</c>, inclusive).</summary>
    public ulong Last { get; }

    internal bool InTree;
    internal bool PendingInsert;
    internal bool PendingRemove;

    internal void StoreSeq(ulong seq) => SetSeq(seq);

    internal bool Overlaps(ulong start, ulong end) => Start < end && start <= Last;

    /// <summary>
    /// Models <c>mmu_interval_notifier_insert</c> (mm/mmu_notifier.c): subscribes <paramref name="ops"/> to invalidations
    /// of [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>) in <paramref name="mm"/>.
    /// EOVERFLOW for an empty or wrapping range; EINVAL for a table without <c>Invalidate</c> (a hand-built table: the
    /// generator refuses one at compile time, PMM0011) or when the caller holds the mmap lock (the kernel would deadlock
    /// taking it for writing).
    /// </summary>
    public static unsafe Errno Insert(Mm mm, ulong start, ulong length, MmuIntervalNotifierOps ops, object? owner, out IntervalNotifier? sub)
    {
        ArgumentNullException.ThrowIfNull(mm);
        ArgumentNullException.ThrowIfNull(ops);
        sub = null;
        if (length == 0 || start > ulong.MaxValue - (length - 1))
            return Errno.EOVERFLOW;
        if (ops.Invalidate == null)
            return Errno.EINVAL;
        if (mm.MmapLock.IsReadLockHeld || mm.MmapLock.IsWriteLockHeld)
            return Errno.EINVAL;
        var subscriptions = MmuNotifierSubscriptions.GetOrCreate(mm);
        sub = new IntervalNotifier(subscriptions, start, start + (length - 1), ops, owner);
        subscriptions.Insert(sub);
        return Errno.None;
    }

    /// <summary>Models <c>mmu_interval_notifier_remove</c>: may wait for a running invalidation; idempotent.</summary>
    public void Remove()
    {
        if (Interlocked.Exchange(ref _removed, 1) != 0)
            return;
        _subscriptions.Remove(this);
    }

    /// <inheritdoc/>
    public override ulong ReadBegin() => _subscriptions.ReadBegin(this);

    /// <inheritdoc/>
    public override string ToString() => $"interval [0x{Start:x}-0x{Last:x}] {Ops.Name}";
}
