using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// The events the current thread prepared under the mmap write lock and must deliver once it has dropped it: the
    /// kernel keeps these lists on the stack of fork, mremap and munmap (<c>struct list_head uf</c>); the model keeps one
    /// per host thread, so two threads changing mappings at once never deliver (or wait for) each other's events.
    /// </summary>
    [ThreadStatic]
    private static List<UserfaultfdCtx.EventWait>? t_pendingUffdEvents;

    [ThreadStatic]
    private static List<UserfaultfdCtx>? t_pendingUffdCtxs;

    private static void QueueUffdEvent(UserfaultfdCtx ctx, UserfaultfdCtx.EventWait ew)
    {
        (t_pendingUffdEvents ??= new()).Add(ew);
        (t_pendingUffdCtxs ??= new()).Add(ctx);
    }

    /// <summary>
    /// Models <c>dup_userfaultfd</c> (fs/userfaultfd.c) for one child VMA during fork: without EVENT_FORK the child VMA is
    /// unregistered (<c>userfaultfd_reset_ctx</c>; its uffd-wp bits are then dropped by the page-table copy); with it,
    /// the VMA keeps its flags and points at the child context made once per parent context, whose FORK event (raising
    /// the parent's <c>mmap_changing</c> now) is delivered after fork drops the lock. Caller holds the mmap write lock.
    /// </summary>
    private void DupUserfaultfd(Vma childVma, Mm child)
    {
        var octx = childVma.UffdCtx;
        if (octx is null)
            return;
        if ((octx.Features & UffdFeatures.EventFork) == 0 || octx.Released)
        {
            childVma.UffdCtx = null;
            childVma.Flags &= ~VmFlags.UffdFlags;
            return;
        }
        var pending = t_pendingUffdEvents;
        if (pending is not null)
        {
            for (int i = 0; i < pending.Count; i++)
            {
                if (pending[i].ForkCtx is { } made && ReferenceEquals(t_pendingUffdCtxs![i], octx) && ReferenceEquals(made.Mm, child))
                {
                    childVma.UffdCtx = made;
                    return;
                }
            }
        }
        var nctx = octx.CreateForkChild(child);
        octx.MmapChangingBegin();
        QueueUffdEvent(octx, new UserfaultfdCtx.EventWait(UffdMsg.Fork(0), nctx));
        childVma.UffdCtx = nctx;
    }

    /// <summary>
    /// Models <c>mremap_userfaultfd_prep</c> (fs/userfaultfd.c) for the moved VMA: with EVENT_REMAP it stays registered
    /// (and keeps its uffd-wp bits) and a REMAP {from, to, len} event is prepared, raising <c>mmap_changing</c>; without
    /// it the new VMA is unregistered (<c>userfaultfd_reset_ctx</c>). Returns whether the registration was kept. Caller
    /// holds the mmap write lock.
    /// </summary>
    private static bool MremapUserfaultfdPrep(Vma moved, ulong from, ulong to, ulong len)
    {
        var ctx = moved.UffdCtx;
        if (ctx is null)
            return false;
        if ((ctx.Features & UffdFeatures.EventRemap) == 0 || ctx.Released)
        {
            moved.UffdCtx = null;
            moved.Flags &= ~VmFlags.UffdFlags;
            return false;
        }
        ctx.MmapChangingBegin();
        QueueUffdEvent(ctx, new UserfaultfdCtx.EventWait(UffdMsg.Remap(from, to, len)));
        return true;
    }

    /// <summary>
    /// Models <c>userfaultfd_unmap_prep</c> (fs/userfaultfd.c) for an unmap of [start, end): one UNMAP {start, end} event per
    /// userfaultfd with EVENT_UNMAP registered on a VMA in the range (deduplicated), raising its <c>mmap_changing</c>;
    /// delivered after the unmap, once the lock is dropped. Caller holds the mmap write lock.
    /// </summary>
    private void UserfaultfdUnmapPrep(ulong start, ulong end)
    {
        foreach (var v in VmasIn(start, end))
        {
            var ctx = v.UffdCtx;
            if (ctx is null || (ctx.Features & UffdFeatures.EventUnmap) == 0 || ctx.Released)
                continue;
            var pending = t_pendingUffdEvents;
            bool dup = false;
            if (pending is not null)
            {
                for (int i = 0; i < pending.Count && !dup; i++)
                    dup = ReferenceEquals(t_pendingUffdCtxs![i], ctx) && pending[i].Msg.Event == UffdEvent.Unmap
                          && pending[i].Msg.RemoveStart == start && pending[i].Msg.RemoveEnd == end;
            }
            if (dup)
                continue;
            ctx.MmapChangingBegin();
            QueueUffdEvent(ctx, new UserfaultfdCtx.EventWait(UffdMsg.Remove(UffdEvent.Unmap, start, end)));
        }
    }

    /// <summary>
    /// Models <c>dup_userfaultfd_complete</c>, <c>mremap_userfaultfd_complete</c> and <c>userfaultfd_unmap_complete</c>
    /// (fs/userfaultfd.c): delivers the events this thread prepared, in order, each waiting until a reader has read it
    /// (synchronous, as in Linux). Call after dropping the mmap lock.
    /// </summary>
    private static void CompleteUserfaultfdEvents()
    {
        var pending = t_pendingUffdEvents;
        if (pending is null || pending.Count == 0)
            return;
        var ctxs = t_pendingUffdCtxs!;
        var evs = pending.ToArray();
        var owners = ctxs.ToArray();
        pending.Clear();
        ctxs.Clear();
        for (int i = 0; i < evs.Length; i++)
            owners[i].EventWaitCompletion(evs[i]);
    }

    /// <summary>
    /// Models <c>userfaultfd_remove</c> (fs/userfaultfd.c), called by madvise before it zaps or punches [start, end) of
    /// <paramref name="vma"/>: without EVENT_REMOVE returns true (lock kept). With it, raises <c>mmap_changing</c>, drops
    /// the mmap read lock, sends REMOVE {start, end} and waits until it is read, retakes the read lock and returns false:
    /// the caller must look the VMA up again.
    /// </summary>
    private bool UserfaultfdRemove(Vma vma, ulong start, ulong end)
    {
        var ctx = vma.UffdCtx;
        if (ctx is null || (ctx.Features & UffdFeatures.EventRemove) == 0)
            return true;
        ctx.MmapChangingBegin();
        MmapLock.ExitReadLock();
        try
        {
            ctx.EventWaitCompletion(new UserfaultfdCtx.EventWait(UffdMsg.Remove(UffdEvent.Remove, start, end)));
        }
        finally { MmapLock.EnterReadLock(); }
        return false;
    }

    /// <summary>
    /// Models <c>userfaultfd_must_wait</c> / <c>userfaultfd_huge_must_wait</c> (fs/userfaultfd.c): after queueing, the
    /// faulter sleeps only if the entry is still none (or a uffd-wp marker), or, for WP, still write-protected; so a
    /// resolution that raced ahead is never slept through.
    /// </summary>
    internal bool UserfaultfdMustWait(Vma vma, ulong address, VmFlags reason)
    {
        ulong a = address & ~((ulong)vma.PageSize - 1);
        var table = PageTable.Lookup(a);
        if (table is null)
            return true;
        lock (table.Ptl)
        {
            ref Pte p = ref table[a];
            if (p.IsNone || p.IsUffdWpMarker)
                return true;
            if (reason == VmFlags.UffdWp && p.IsPresent && !p.IsWritable && p.IsUffdWp)
                return true;
            return false;
        }
    }
}
