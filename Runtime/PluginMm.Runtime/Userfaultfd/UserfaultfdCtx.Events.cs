using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

public sealed partial class UserfaultfdCtx
{
    /// <summary>
    /// A non-cooperative event in flight (<c>struct userfaultfd_wait_queue</c> on <c>ctx-&gt;event_wqh</c>): the message,
    /// and for FORK the child's new userfaultfd, which becomes an fd of the reader when the message is read.
    /// </summary>
    internal sealed class EventWait
    {
        public EventWait(UffdMsg msg, UserfaultfdCtx? forkCtx = null)
        {
            Msg = msg;
            ForkCtx = forkCtx;
        }

        public UffdMsg Msg;
        public readonly UserfaultfdCtx? ForkCtx;

        /// <summary><c>ewq-&gt;msg.event == 0</c>: the reader completed the event.</summary>
        public bool Done;
    }

    private readonly List<EventWait> _events = new(); // event_wqh, FIFO; protected by _q
    private readonly Dictionary<uint, UserfaultfdCtx> _forkFds = new(); // the reader's fds from FORK messages; under _q
    private static int s_nextForkFd = 100;

    /// <summary>Non-cooperative events queued and not yet read.</summary>
    public int PendingEventCount { get { lock (_q) return _events.Count; } }

    /// <summary>
    /// The userfaultfd of a forked child, by the number a FORK message carried (<c>arg.fork.ufd</c>). In the kernel the
    /// reader's <c>read()</c> installs a new fd in its own fd table; the model keeps that table on the userfaultfd that
    /// was read. Ownership passes to the caller (close it with <see cref="Dispose"/>); a number is claimable once, and
    /// unclaimed ones are closed with this userfaultfd, as a process's fds close when it exits. Null for an unknown number.
    /// </summary>
    public UserfaultfdCtx? ForkedUserfaultfd(uint ufd)
    {
        lock (_q)
            return _forkFds.Remove(ufd, out var child) ? child : null;
    }

    /// <summary>
    /// Models the part of <c>dup_userfaultfd</c> (fs/userfaultfd.c) that builds the child's context: same flags and
    /// features, initialised, bound to <paramref name="childMm"/>, with no VMAs until the caller points them at it.
    /// </summary>
    internal UserfaultfdCtx CreateForkChild(Mm childMm)
    {
        int flags = (NonBlocking ? Uapi.O_NONBLOCK : 0) | (UserModeOnly ? Uapi.UFFD_USER_MODE_ONLY : 0);
        return new UserfaultfdCtx(childMm, flags) { _features = _features, _initialized = 1 };
    }

    /// <summary>
    /// Models <c>userfaultfd_event_wait_completion</c> (fs/userfaultfd.c): queues the event, wakes readers and pollers,
    /// and sleeps until a reader completes it; aborts when the userfaultfd is released (an aborted FORK tears the child's
    /// context down, <c>userfaultfd_release_new</c>). Finally drops the <c>mmap_changing</c> the caller raised. The caller
    /// holds no mmap lock.
    /// </summary>
    internal void EventWaitCompletion(EventWait ew)
    {
        bool aborted = false;
        lock (_q)
        {
            _events.Add(ew);
            Monitor.PulseAll(_q); // wake_up_poll(&ctx->fd_wqh, EPOLLIN)
            while (!ew.Done)
            {
                if (_released)
                {
                    _events.Remove(ew);
                    aborted = true;
                    break;
                }
                Monitor.Wait(_q);
            }
        }
        if (aborted)
            ew.ForkCtx?.Dispose();
        MmapChangingEnd();
    }

    /// <summary>
    /// The event half of <c>userfaultfd_ctx_read</c> (fs/userfaultfd.c), called by <see cref="Read"/> under the queue
    /// lock once no fault is pending: moves queued events into <paramref name="buffer"/> from index <paramref name="n"/>,
    /// completing each (<c>userfaultfd_event_complete</c>); a FORK gets its fd number here (<c>resolve_userfault_fork</c>).
    /// Returns the new count.
    /// </summary>
    private int ReadEventsLocked(Span<UffdMsg> buffer, int n)
    {
        bool any = false;
        while (n < buffer.Length && _events.Count > 0)
        {
            var ew = _events[0];
            _events.RemoveAt(0);
            if (ew.Msg.Event == UffdEvent.Fork)
            {
                uint fd = (uint)Interlocked.Increment(ref s_nextForkFd);
                _forkFds.Add(fd, ew.ForkCtx!);
                ew.Msg = UffdMsg.Fork(fd);
            }
            buffer[n++] = ew.Msg;
            ew.Done = true;
            any = true;
        }
        if (any)
            Monitor.PulseAll(_q); // wake the originators
        return n;
    }

    /// <summary>Closes the fork fds nobody claimed (part of releasing this userfaultfd). Caller does not hold the queue lock.</summary>
    private void ReleaseForkFds()
    {
        UserfaultfdCtx[] left;
        lock (_q)
        {
            if (_forkFds.Count == 0)
                return;
            left = new UserfaultfdCtx[_forkFds.Count];
            _forkFds.Values.CopyTo(left, 0);
            _forkFds.Clear();
        }
        foreach (var c in left)
            c.Dispose();
    }
}
