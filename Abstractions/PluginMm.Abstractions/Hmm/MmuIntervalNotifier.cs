namespace PluginMm.Hmm;

/// <summary>
/// Why a range is invalidated, as a driver's <c>Invalidate</c> hook sees it (<c>enum mmu_notifier_event</c>,
/// include/linux/mmu_notifier.h). The runtime raises these for every invalidation (munmap, zap, mprotect, write-protect, mremap, fork).
/// </summary>
public enum MmuNotifyEvent
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

/// <summary>What an <c>Invalidate</c> hook sees of the invalidated range (<c>const struct mmu_notifier_range *</c>).</summary>
public readonly struct MmuNotifierRangeView
{
    /// <summary>Creates a view.</summary>
    public MmuNotifierRangeView(ulong start, ulong end, MmuNotifyEvent @event, object? owner, bool blockable)
    {
        Start = start;
        End = end;
        Event = @event;
        Owner = owner;
        Blockable = blockable;
    }

    /// <summary><c>range-&gt;start</c>.</summary>
    public ulong Start { get; }

    /// <summary><c>range-&gt;end</c> (exclusive).</summary>
    public ulong End { get; }

    /// <summary><c>range-&gt;event</c>.</summary>
    public MmuNotifyEvent Event { get; }

    /// <summary><c>range-&gt;owner</c> (set for MIGRATE by the migrating driver), or null.</summary>
    public object? Owner { get; }

    /// <summary><c>mmu_notifier_range_blockable(range)</c>: the hook may sleep (take a mutex).</summary>
    public bool Blockable { get; }
}

/// <summary>
/// A subscription to invalidations of one virtual range of one address space (<c>struct mmu_interval_notifier</c>,
/// include/linux/mmu_notifier.h), and the driver side of its sequence protocol (<c>mmu_interval_read_begin</c>,
/// <c>mmu_interval_read_retry</c>, <c>mmu_interval_check_retry</c>, <c>mmu_interval_set_seq</c>). The runtime creates
/// them (<c>mmu_interval_notifier_insert</c>); <see cref="Owner"/> is how a static hook finds its driver object
/// (the kernel's <c>container_of</c>).
/// </summary>
public abstract class MmuIntervalNotifier
{
    private ulong _invalidateSeq;

    /// <summary>Creates a subscription of [<paramref name="start"/>, <paramref name="end"/>).</summary>
    protected MmuIntervalNotifier(ulong start, ulong end, MmuIntervalNotifierOps ops, object? owner)
    {
        ArgumentNullException.ThrowIfNull(ops);
        Start = start;
        End = end;
        Ops = ops;
        Owner = owner;
    }

    /// <summary>First byte (<c>interval_tree.start</c>).</summary>
    public ulong Start { get; }

    /// <summary>One past the last byte (<c>interval_tree.last + 1</c>; 0 when the range reaches the top of the address space).</summary>
    public ulong End { get; }

    /// <summary>The callbacks (<c>ops</c>).</summary>
    public MmuIntervalNotifierOps Ops { get; }

    /// <summary>The driver object this subscription belongs to (<c>container_of</c>), or null.</summary>
    public object? Owner { get; }

    /// <summary><c>invalidate_seq</c> (odd while an invalidation of this range is in progress).</summary>
    public ulong InvalidateSeq => Volatile.Read(ref _invalidateSeq);

    /// <summary>
    /// Models <c>mmu_interval_read_begin</c> (mm/mmu_notifier.c): waits until no invalidation of this range is in
    /// progress and returns the sequence number to check later with <see cref="ReadRetry"/>. Call without the mmap lock
    /// or the driver's lock held.
    /// </summary>
    public abstract ulong ReadBegin();

    /// <summary>
    /// Models <c>mmu_interval_read_retry</c> (include/linux/mmu_notifier.h): true when an invalidation began since
    /// <paramref name="seq"/> was read. Call with the driver lock that <c>Invalidate</c> also takes.
    /// </summary>
    public bool ReadRetry(ulong seq) => Volatile.Read(ref _invalidateSeq) != seq;

    /// <summary>Models <c>mmu_interval_check_retry</c>: the same test without the driver lock (an early hint only).</summary>
    public bool CheckRetry(ulong seq) => ReadRetry(seq);

    /// <summary>
    /// Models <c>mmu_interval_set_seq</c> (include/linux/mmu_notifier.h): the <c>Invalidate</c> hook calls it with
    /// <c>curSeq</c>, under the driver lock, so that a concurrent reader's <see cref="ReadRetry"/> sees the change.
    /// </summary>
    public void SetSeq(ulong curSeq) => Volatile.Write(ref _invalidateSeq, curSeq);
}

/// <summary>
/// An interval notifier's callbacks (<c>struct mmu_interval_notifier_ops</c>): a function pointer to the driver's static
/// <c>Invalidate</c> hook. The generator fills it from an <see cref="MmuIntervalNotifierOpsAttribute"/> class; built by
/// hand, a null <see cref="Invalidate"/> is refused at insert (EINVAL), as the generator refuses it at compile time.
/// </summary>
public sealed unsafe class MmuIntervalNotifierOps
{
    /// <summary>Creates a table.</summary>
    public MmuIntervalNotifierOps(string name, delegate*<MmuIntervalNotifier, in MmuNotifierRangeView, ulong, bool> invalidate)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        Invalidate = invalidate;
    }

    /// <summary>The declared name.</summary>
    public string Name { get; }

    /// <summary><c>invalidate(interval_sub, range, cur_seq)</c>. See <see cref="NotifierHookSignatures.Invalidate"/>.</summary>
    public readonly delegate*<MmuIntervalNotifier, in MmuNotifierRangeView, ulong, bool> Invalidate;

    /// <summary>Whether the table has an <c>Invalidate</c> hook.</summary>
    public bool HasInvalidate => Invalidate != null;

    /// <inheritdoc/>
    public override string ToString() => $"mmu_interval_notifier_ops {Name}";
}
