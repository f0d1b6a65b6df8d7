using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests.Support;

/// <summary>
/// The selftests' monitor thread (uffd-common.c <c>uffd_poll_thread</c> + <c>uffd_handle_page_fault</c>), written against
/// the model's userfaultfd: PAGEFAULT with WP → unprotect that page; MINOR → bit-flip through the non-registered mapping,
/// CONTINUE (+MODE_WP with <see cref="ApplyWp"/>) and a second CONTINUE that must give -EEXIST; MISSING → error if WRITE,
/// else COPY of the matching source page (+MODE_WP), EEXIST → WAKE. FORK → switch to the child's userfaultfd; REMOVE →
/// UNREGISTER that range; REMAP → follow the area. <see cref="Custom"/> replaces the PAGEFAULT handling (poison, move).
/// Exceptions on the monitor thread become <see cref="Errors"/>, never a crashed test host.
/// </summary>
public sealed class UffdMonitor : IDisposable
{
    private readonly UffdTestEnv _env;
    private readonly byte[][] _src;
    private readonly Thread _thread;
    private readonly List<string> _errors = new();
    private readonly List<UserfaultfdCtx> _forked = new();
    private volatile bool _stop;
    private UserfaultfdCtx _uffd;

    public UffdMonitor(UffdTestEnv env, bool applyWp = false, Action<UffdMonitor, UffdMsg>? custom = null)
    {
        _env = env;
        _uffd = env.Uffd;
        ApplyWp = applyWp;
        Custom = custom;
        AreaDst = env.Dst;
        _src = new byte[env.NrPages][];
        for (int i = 0; i < env.NrPages; i++)
            _src[i] = env.SrcPage(i);
        _thread = new Thread(Run) { IsBackground = true, Name = "uffd-monitor" };
        _thread.Start();
    }

    public bool ApplyWp { get; }
    public Action<UffdMonitor, UffdMsg>? Custom { get; }
    public UffdTestEnv Env => _env;

    /// <summary>The userfaultfd being served (the child's after a FORK event).</summary>
    public UserfaultfdCtx Uffd => Volatile.Read(ref _uffd);

    /// <summary><c>area_dst</c> as the monitor knows it (moved by REMAP events).</summary>
    public ulong AreaDst;

    public long MissingFaults, WpFaults, MinorFaults, Forks, Removes, Remaps;

    /// <summary>Every message read, in order.</summary>
    public List<UffdMsg> Messages { get; } = new();

    public IReadOnlyList<string> Errors { get { lock (_errors) return _errors.ToArray(); } }

    public void Error(string e)
    {
        lock (_errors) _errors.Add(e);
    }

    /// <summary>The source page for a destination offset (the handler's copy buffer).</summary>
    public byte[] SourceFor(ulong offset) => _src[(int)(offset / (ulong)_env.PageSize)];

    private void Run()
    {
        try
        {
            var buf = new UffdMsg[8];
            while (!_stop)
            {
                var u = Uffd;
                var p = u.Poll(10);
                if (p == PollResult.HangUp) return;
                if (p != PollResult.Readable) continue;
                var r = u.Read(buf);
                if (r.Errno == Errno.EAGAIN) continue;
                if (!r.Succeeded) { Error($"read: {r}"); return; }
                for (int i = 0; i < r.Field; i++)
                    Handle(u, buf[i]);
            }
        }
        catch (Exception e)
        {
            Error("monitor threw: " + e);
        }
    }

    private void Handle(UserfaultfdCtx u, UffdMsg msg)
    {
        lock (Messages) Messages.Add(msg);
        switch (msg.Event)
        {
            case UffdEvent.Fork:
                var child = u.ForkedUserfaultfd(msg.ForkUfd);
                if (child is null) { Error($"FORK ufd {msg.ForkUfd} unknown"); return; }
                lock (_forked) _forked.Add(child);
                Volatile.Write(ref _uffd, child);
                Interlocked.Increment(ref Forks);
                return;
            case UffdEvent.Remove:
                Interlocked.Increment(ref Removes);
                var ur = u.Unregister(msg.RemoveStart, msg.RemoveEnd - msg.RemoveStart);
                if (!ur.Succeeded) Error($"unregister after REMOVE: {ur}");
                return;
            case UffdEvent.Remap:
                Interlocked.Increment(ref Remaps);
                AreaDst = msg.RemapTo;
                return;
            case UffdEvent.Pagefault:
                break;
            default:
                Error($"unexpected event {msg}");
                return;
        }
        if (Custom is not null)
        {
            Custom(this, msg);
            return;
        }
        ulong ps = (ulong)_env.PageSize;
        ulong page = msg.PagefaultAddress & ~(ps - 1);
        var flags = msg.PagefaultFlags;
        if ((flags & UffdPagefaultFlags.Wp) != 0)
        {
            Interlocked.Increment(ref WpFaults);
            var r = u.WriteProtect(page, ps, UffdWriteProtectMode.None);
            if (!r.Succeeded) Error($"unprotect 0x{page:x}: {r}");
            return;
        }
        if ((flags & UffdPagefaultFlags.Minor) != 0)
        {
            Interlocked.Increment(ref MinorFaults);
            ulong off = page - _env.DstAlias;
            var t = _env.Mm.CreateTask("flipper");
            var b = new byte[ps];
            if (t.Read(_env.Dst + off, b) != AccessResult.Ok) { Error("flip read"); return; }
            for (int j = 0; j < b.Length; j++) b[j] = (byte)~b[j];
            if (t.Write(_env.Dst + off, b) != AccessResult.Ok) { Error("flip write"); return; }
            var mode = ApplyWp ? UffdContinueMode.Wp : UffdContinueMode.None;
            var c = u.Continue(page, ps, mode);
            if (!c.Succeeded || c.Field != (long)ps) { Error($"CONTINUE 0x{page:x}: {c}"); return; }
            var again = u.Continue(page, ps, mode);
            if (again.Errno != Errno.EEXIST || again.Field != -(long)Errno.EEXIST)
                Error($"second CONTINUE should be EEXIST: {again}");
            return;
        }
        Interlocked.Increment(ref MissingFaults);
        if ((flags & UffdPagefaultFlags.Write) != 0)
            Error($"unexpected write fault {msg}");
        CopyPage(u, page, SourceFor(page - AreaDst));
    }

    /// <summary><c>__copy_page</c>: COPY (+MODE_WP); -EEXIST → WAKE; anything else but the page size is an error.</summary>
    public void CopyPage(UserfaultfdCtx u, ulong page, byte[] data)
    {
        var res = u.Copy(page, data, ApplyWp ? UffdCopyMode.Wp : UffdCopyMode.None);
        if (res.Errno == Errno.EEXIST && res.Field == -(long)Errno.EEXIST)
            u.Wake(page, (ulong)data.Length);
        else if (!res.Succeeded || res.Field != data.Length)
            Error($"COPY 0x{page:x}: {res}");
    }

    /// <summary>Stops the thread (the pipe byte of the selftests) and closes the forked userfaultfds it took.</summary>
    public void Stop()
    {
        _stop = true;
        if (!_thread.Join(Threads.HangGuard))
            Assert.Fail("uffd monitor thread did not stop");
        lock (_forked)
        {
            foreach (var c in _forked) c.Dispose();
            _forked.Clear();
        }
    }

    /// <summary>Asserts the monitor saw no error.</summary>
    public void AssertClean() => Assert.AreEqual(0, Errors.Count, string.Join("; ", Errors));

    public void Dispose()
    {
        if (_thread.IsAlive) Stop();
    }
}

/// <summary>Helpers shared by the issue-4 test classes.</summary>
public static class Issue4
{
    /// <summary>Both fault-path designs, for tests that loop over them.</summary>
    public static readonly FaultPathDesign[] Designs = [FaultPathDesign.PreCheck, FaultPathDesign.RfcRetval];

    /// <summary>Only anon (wp-unpopulated, move, uffd-missing-wp).</summary>
    public static IEnumerable<object[]> AnonOnly => [["anon"]];

    /// <summary>
    /// Runs <paramref name="body"/> on a host thread as <paramref name="task"/>; an exception (a failed assert) is kept and
    /// rethrown by <see cref="Join"/>, so it fails the test instead of crashing the test host.
    /// </summary>
    public static (Thread Thread, Func<Exception?> Error) Start(ModelTask task, Action<ModelTask> body)
    {
        Exception? err = null;
        var th = task.Start(t =>
        {
            try { body(t); }
            catch (Exception e) { err = e; }
        });
        return (th, () => err);
    }

    /// <summary>Joins (hang guard) and rethrows what the thread threw.</summary>
    public static void Join((Thread Thread, Func<Exception?> Error) t, string what)
    {
        Threads.JoinOrFail(t.Thread, what);
        if (t.Error() is { } e)
            throw new AssertFailedException($"{what}: {e.Message}", e);
    }

    /// <summary>Whether pagemap reports PM_UFFD_WP for <paramref name="address"/>.</summary>
    public static bool PagemapWp(Mm mm, ulong address) => (mm.Pagemap(address) & PagemapFlags.UffdWp) != 0;
}
