using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

/// <summary>
/// A userfaultfd (<c>struct userfaultfd_ctx</c>, fs/userfaultfd.c) in the model: creation flags, UFFDIO_API, the fault
/// message queue, blocking and wake-up, read and poll, release. Other partial files: registration
/// (<c>UserfaultfdCtx.Register.cs</c>), the fill ioctls (<c>.Mfill.cs</c>, <c>.MfillHugetlb.cs</c>, <c>.Poison.cs</c>),
/// MOVE, WP and events. Implements the handler-side API <see cref="IUserfaultfd"/>.
/// </summary>
public sealed partial class UserfaultfdCtx : IUserfaultfd
{
    /// <summary><c>mmap_min_addr</c> (default 64 KiB): ranges below it are invalid.</summary>
    public const ulong MmapMinAddr = 0x10000;

    /// <summary>
    /// The features this model supports (what UFFDIO_API reports as available): every feature bit of the mainline uapi
    /// (write-protect with markers and WP_UNPOPULATED / WP_ASYNC, POISON, MOVE and the four non-cooperative events in
    /// <c>UserfaultfdCtx.Wp.cs</c>, <c>.Poison.cs</c>, <c>.Move.cs</c>, <c>.Events.cs</c>).
    /// </summary>
    public const UffdFeatures SupportedFeatures = UffdFeatures.PagefaultFlagWp | UffdFeatures.MissingHugetlbfs
        | UffdFeatures.MissingShmem | UffdFeatures.SigBus | UffdFeatures.ThreadId | UffdFeatures.MinorHugetlbfs
        | UffdFeatures.MinorShmem | UffdFeatures.ExactAddress | UffdFeatures.WpHugetlbfsShmem
        | UffdFeatures.EventFork | UffdFeatures.EventRemap | UffdFeatures.EventRemove | UffdFeatures.EventUnmap
        | UffdFeatures.WpUnpopulated | UffdFeatures.WpAsync | UffdFeatures.Poison | UffdFeatures.Move;

    private readonly object _q = new(); // ctx->fault_pending_wqh.lock; also the fd_wqh for readers and pollers
    private readonly WaitQueue _pending = new(); // fault_pending_wqh: not yet read
    private readonly WaitQueue _read = new(); // fault_wqh: read, still blocked
    private UffdFeatures _features;
    private int _initialized;
    private volatile bool _released;
    private int _mmapChanging;

    private UserfaultfdCtx(Mm mm, int flags)
    {
        Mm = mm;
        NonBlocking = (flags & Uapi.O_NONBLOCK) != 0;
        UserModeOnly = (flags & Uapi.UFFD_USER_MODE_ONLY) != 0;
    }

    /// <summary>The address space this userfaultfd serves (<c>ctx-&gt;mm</c>).</summary>
    public Mm Mm { get; }

    /// <inheritdoc/>
    public int PageSize => Folio.BasePageSize;

    /// <inheritdoc/>
    public bool NonBlocking { get; }

    /// <summary>Created with UFFD_USER_MODE_ONLY: kernel-mode faults get SIGBUS instead of a message.</summary>
    public bool UserModeOnly { get; }

    /// <inheritdoc/>
    public UffdFeatures Features => _features;

    /// <summary><c>userfaultfd_is_initialized</c>: UFFDIO_API succeeded.</summary>
    public bool Initialized => Volatile.Read(ref _initialized) != 0;

    /// <summary><c>ctx-&gt;released</c>: the fd was closed.</summary>
    public bool Released => _released;

    /// <summary>Faults queued and not yet read (<c>fdinfo</c> "pending" counts these plus read ones).</summary>
    public int PendingCount { get { lock (_q) return _pending.Count; } }

    /// <summary>Faulting tasks that are queued (read or not) and not yet woken.</summary>
    public int WaitingCount { get { lock (_q) return _pending.Count + _read.Count; } }

    /// <summary>
    /// <c>ctx-&gt;mmap_changing</c>: while positive (a non-cooperative event is in flight), the fill ioctls fail with EAGAIN.
    /// Issue 4's events raise and lower it.
    /// </summary>
    internal int MmapChanging => Volatile.Read(ref _mmapChanging);

    internal void MmapChangingBegin() => Interlocked.Increment(ref _mmapChanging);

    internal void MmapChangingEnd() => Interlocked.Decrement(ref _mmapChanging);

    /// <summary>
    /// Models <c>userfaultfd(2)</c> / <c>new_userfaultfd</c> (fs/userfaultfd.c): EPERM when neither USER_MODE_ONLY, nor
    /// CAP_SYS_PTRACE, nor the sysctl allows handling kernel faults (syscall only); EINVAL for unknown flags.
    /// </summary>
    internal static Errno Create(Mm mm, int flags, bool checkPrivilege, out UserfaultfdCtx? ctx)
    {
        ctx = null;
        if (checkPrivilege && (flags & Uapi.UFFD_USER_MODE_ONLY) == 0 && !mm.HasCapSysPtrace && !mm.Kernel.UnprivilegedUserfaultfd)
            return Errno.EPERM;
        if ((flags & ~(Uapi.O_CLOEXEC | Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY)) != 0)
            return Errno.EINVAL;
        ctx = new UserfaultfdCtx(mm, flags);
        return Errno.None;
    }

    /// <summary>
    /// Models <c>userfaultfd_api</c> (fs/userfaultfd.c): api must be 0xAA; EVENT_FORK needs CAP_SYS_PTRACE (EPERM);
    /// WP_ASYNC implies WP_UNPOPULATED; any unsupported bit → EINVAL; a second call → EINVAL. On every error the
    /// outputs are zero, as the kernel zeroes the struct.
    /// </summary>
    public UffdioResult Api(ulong api, UffdFeatures features, out UffdFeatures available, out UffdIoctls ioctls)
    {
        available = 0;
        ioctls = 0;
        if (_released)
            return UffdioResult.Fail(Errno.EBADF);
        if (api != Uapi.UFFD_API)
            return UffdioResult.Fail(Errno.EINVAL);
        if ((features & UffdFeatures.EventFork) != 0 && !Mm.HasCapSysPtrace)
            return UffdioResult.Fail(Errno.EPERM);
        if ((features & UffdFeatures.WpAsync) != 0)
            features |= UffdFeatures.WpUnpopulated;
        if ((features & ~SupportedFeatures) != 0)
            return UffdioResult.Fail(Errno.EINVAL);
        if (Interlocked.CompareExchange(ref _initialized, 1, 0) != 0)
            return UffdioResult.Fail(Errno.EINVAL);
        _features = features;
        available = SupportedFeatures;
        ioctls = Uapi.UFFD_API_IOCTLS;
        return UffdioResult.Ok;
    }

    // ---------------------------------------------------------------- the fault side

    /// <summary>
    /// Models <c>handle_userfault</c> (fs/userfaultfd.c). Called with the mmap read lock held. SIGBUS when the VMA has no
    /// ctx, the ctx has UFFD_FEATURE_SIGBUS, a kernel-mode fault meets a USER_MODE_ONLY ctx, or the caller cannot drop
    /// the lock (no FAULT_FLAG_ALLOW_RETRY); RETRY at once (lock kept) for RETRY_NOWAIT; RETRY (lock released) when the ctx
    /// is released. Otherwise queues the message, re-checks the page table (<see cref="Mm.UserfaultfdMustWait"/>),
    /// releases the lock, sleeps until woken and returns VM_FAULT_RETRY. Allocates nothing.
    /// </summary>
    internal static VmFaultResult HandleUserfault(Mm mm, Vma vma, ref VmFault vmf, VmFlags reason, ModelTask task)
    {
        var ctx = vma.UffdCtx;
        if (ctx is null)
            return VmFaultResult.SigBus;
        if ((ctx._features & UffdFeatures.SigBus) != 0)
            return VmFaultResult.SigBus;
        if ((vmf.Flags & FaultFlags.User) == 0 && ctx.UserModeOnly)
            return VmFaultResult.SigBus;
        if ((vmf.Flags & FaultFlags.AllowRetry) == 0)
            return VmFaultResult.SigBus;
        if ((vmf.Flags & FaultFlags.RetryNoWait) != 0)
            return VmFaultResult.Retry;
        if (ctx._released)
        {
            mm.MmapLock.ExitReadLock();
            return VmFaultResult.Retry;
        }

        var w = task.Waiter;
        var flags = UffdPagefaultFlags.None;
        if (vmf.IsWrite) flags |= UffdPagefaultFlags.Write;
        if (reason == VmFlags.UffdWp) flags |= UffdPagefaultFlags.Wp;
        if (reason == VmFlags.UffdMinor) flags |= UffdPagefaultFlags.Minor;
        ulong address = (ctx._features & UffdFeatures.ExactAddress) != 0
            ? vmf.RealAddress
            : vmf.Address & ~((ulong)Folio.BasePageSize - 1);
        uint ptid = (ctx._features & UffdFeatures.ThreadId) != 0 ? (uint)task.Tid : 0;
        w.Msg = UffdMsg.Pagefault(flags, address, ptid);
        w.Address = address;
        w.Event.Reset();
        lock (ctx._q)
            ctx._pending.Add(w);

        bool mustWait = mm.UserfaultfdMustWait(vma, vmf.Address, reason);
        mm.MmapLock.ExitReadLock();
        if (mustWait && !ctx._released)
        {
            lock (ctx._q)
                Monitor.PulseAll(ctx._q); // wake_up_poll(&ctx->fd_wqh, EPOLLIN)
            w.Event.Wait();
        }
        lock (ctx._q)
        {
            w.Queue?.Remove(w);
        }
        return VmFaultResult.Retry;
    }

    /// <summary>
    /// Models <c>wake_userfault</c> / <c>__wake_userfault</c> (fs/userfaultfd.c): wakes every queued faulter, read or not,
    /// whose address is in [start, start+len) (len 0 = all).
    /// </summary>
    internal void WakeRange(ulong start, ulong len)
    {
        lock (_q)
        {
            WakeQueue(_pending, start, len);
            WakeQueue(_read, start, len);
        }
    }

    private static void WakeQueue(WaitQueue q, ulong start, ulong len)
    {
        var w = q.Head;
        while (w is not null)
        {
            var next = w.Next;
            if (len == 0 || (w.Address >= start && w.Address - start < len))
            {
                q.Remove(w);
                w.Event.Set();
            }
            w = next;
        }
    }

    // ---------------------------------------------------------------- read / poll

    /// <summary>
    /// Models <c>userfaultfd_read_iter</c> (fs/userfaultfd.c): EINVAL before UFFDIO_API or for a buffer smaller than one
    /// message; blocks for the first message unless non-blocking (then EAGAIN); reads pending faults oldest first and moves
    /// them to the read queue (their tasks stay blocked until woken). <c>Field</c> = messages read. A read on a closed fd,
    /// or one blocked when it is closed, returns EBADF (model: the fd is gone).
    /// </summary>
    public UffdioResult Read(Span<UffdMsg> buffer)
    {
        if (_released)
            return UffdioResult.Fail(Errno.EBADF);
        if (!Initialized || buffer.Length == 0)
            return UffdioResult.Fail(Errno.EINVAL);
        lock (_q)
        {
            while (true)
            {
                if (_released)
                    return UffdioResult.Fail(Errno.EBADF);
                int n = 0;
                while (n < buffer.Length && _pending.Head is { } w)
                {
                    _pending.Remove(w);
                    _read.Add(w);
                    buffer[n++] = w.Msg;
                }
                n = ReadEventsLocked(buffer, n); // non-cooperative events come after faults
                if (n > 0)
                    return new UffdioResult(Errno.None, n);
                if (NonBlocking)
                    return UffdioResult.Fail(Errno.EAGAIN);
                Monitor.Wait(_q);
            }
        }
    }

    /// <summary>Reads one message (a convenience over <see cref="Read(Span{UffdMsg})"/>).</summary>
    public UffdioResult ReadOne(out UffdMsg msg)
    {
        Span<UffdMsg> one = stackalloc UffdMsg[1];
        var r = Read(one);
        msg = r.Succeeded ? one[0] : default;
        return r;
    }

    /// <summary>
    /// Models <c>userfaultfd_poll</c> (fs/userfaultfd.c): EPOLLERR before UFFDIO_API or on a blocking fd; EPOLLIN when a
    /// fault is pending; HangUp once released. Waits up to <paramref name="timeoutMs"/> (-1 = forever).
    /// </summary>
    public PollResult Poll(int timeoutMs)
    {
        if (_released)
            return PollResult.HangUp;
        if (!Initialized || !NonBlocking)
            return PollResult.Error;
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        lock (_q)
        {
            while (true)
            {
                if (_released)
                    return PollResult.HangUp;
                if (_pending.Count > 0 || _events.Count > 0)
                    return PollResult.Readable;
                long now = Environment.TickCount64;
                if (now >= deadline)
                    return PollResult.Timeout;
                int wait = deadline == long.MaxValue ? Timeout.Infinite : (int)Math.Min(int.MaxValue, deadline - now);
                Monitor.Wait(_q, wait);
            }
        }
    }

    /// <summary>Models <c>userfaultfd_wake</c> (fs/userfaultfd.c): EINVAL before UFFDIO_API or for a bad range; registration is not checked.</summary>
    public UffdioResult Wake(ulong start, ulong len)
    {
        if (_released)
            return UffdioResult.Fail(Errno.EBADF);
        if (!Initialized || ValidateRange(start, len) != Errno.None)
            return UffdioResult.Fail(Errno.EINVAL);
        WakeRange(start, len);
        return UffdioResult.Ok;
    }

    // ---------------------------------------------------------------- release

    /// <summary>
    /// Models <c>userfaultfd_release</c> (fs/userfaultfd.c): marks the ctx released, unregisters every VMA of the mm it
    /// owns (clearing uffd-wp bits) under the mmap write lock, then wakes every queued faulter (they return
    /// VM_FAULT_RETRY and refault against now-unregistered memory) and every reader and poller.
    /// </summary>
    public void Dispose()
    {
        if (_released)
            return;
        _released = true;
        if (!Mm.Exited)
        {
            Mm.MmapLock.EnterWriteLock();
            try
            {
                foreach (var v in Mm.VmaSet)
                {
                    if (!ReferenceEquals(v.UffdCtx, this))
                        continue;
                    if (v.UffdWp)
                        Mm.ClearUffdWp(v, v.Start, v.End);
                    v.Flags &= ~VmFlags.UffdFlags;
                    v.UffdCtx = null;
                }
            }
            finally { Mm.MmapLock.ExitWriteLock(); }
        }
        lock (_q)
        {
            WakeQueue(_pending, 0, 0);
            WakeQueue(_read, 0, 0);
            Monitor.PulseAll(_q);
        }
        ReleaseForkFds();
    }

    /// <inheritdoc/>
    public override string ToString() => $"userfaultfd (pending {PendingCount}, features {_features})";
}
