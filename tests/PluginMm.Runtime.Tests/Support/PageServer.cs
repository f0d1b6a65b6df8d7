using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests.Support;

/// <summary>
/// A userfaultfd handler written only against the handler-side API (<see cref="IUserfaultfd"/>), in the manner of the
/// selftests' <c>uffd_poll_thread</c> + <c>uffd_handle_page_fault</c>: MISSING → UFFDIO_COPY of the page's contents
/// (EEXIST → UFFDIO_WAKE, as <c>__copy_page</c> does after a stale message); MINOR → let the test prepare the page
/// through another mapping, then UFFDIO_CONTINUE (and a second CONTINUE must fail with EEXIST). A missing fault with the
/// WRITE flag is counted as an error, as in the selftests (their faults come from reads).
/// </summary>
public sealed class PageServer : IDisposable
{
    private readonly IUserfaultfd _uffd;
    private readonly Func<ulong, byte[]> _contents;
    private readonly Action<ulong>? _prepareMinor;
    private readonly int _pageSize;
    private readonly Thread _thread;
    private volatile bool _stop;
    private readonly List<string> _errors = new();

    /// <summary>Starts serving. <paramref name="contents"/> maps a page address to the bytes to copy there.</summary>
    public PageServer(IUserfaultfd uffd, int pageSize, Func<ulong, byte[]> contents, Action<ulong>? prepareMinor = null, bool allowWriteFaults = true)
    {
        _uffd = uffd;
        _pageSize = pageSize;
        _contents = contents;
        _prepareMinor = prepareMinor;
        AllowWriteFaults = allowWriteFaults;
        _thread = new Thread(Run) { IsBackground = true, Name = "uffd-handler" };
        _thread.Start();
    }

    public bool AllowWriteFaults { get; }
    public long MissingFaults;
    public long MinorFaults;
    public long WpFaults;

    /// <summary>Messages seen, in order.</summary>
    public List<UffdMsg> Messages { get; } = new();

    public IReadOnlyList<string> Errors { get { lock (_errors) return _errors.ToArray(); } }

    private void Error(string e)
    {
        lock (_errors) _errors.Add(e);
    }

    private void Run()
    {
        Span<UffdMsg> batch = stackalloc UffdMsg[8];
        while (!_stop)
        {
            if (_uffd.NonBlocking)
            {
                var p = _uffd.Poll(20);
                if (p == PollResult.HangUp) return;
                if (p != PollResult.Readable) continue;
            }
            var r = _uffd.Read(batch);
            if (r.Errno == Errno.EAGAIN) continue;
            if (!r.Succeeded) return; // closed
            for (int i = 0; i < r.Field; i++)
                Handle(batch[i]);
        }
    }

    private void Handle(UffdMsg msg)
    {
        lock (Messages) Messages.Add(msg);
        if (msg.Event != UffdEvent.Pagefault)
        {
            Error($"unexpected event {msg}");
            return;
        }
        ulong page = msg.PagefaultAddress & ~((ulong)_pageSize - 1);
        var flags = msg.PagefaultFlags;
        if ((flags & UffdPagefaultFlags.Wp) != 0)
        {
            Interlocked.Increment(ref WpFaults);
            Error("WP fault: write-protect is not served by this handler");
            return;
        }
        if ((flags & UffdPagefaultFlags.Minor) != 0)
        {
            Interlocked.Increment(ref MinorFaults);
            _prepareMinor?.Invoke(page);
            var c = _uffd.Continue(page, (ulong)_pageSize, UffdContinueMode.None);
            if (c.Errno == Errno.EEXIST) { _uffd.Wake(page, (ulong)_pageSize); return; }
            if (!c.Succeeded || c.Field != _pageSize) { Error($"CONTINUE 0x{page:x}: {c}"); return; }
            var again = _uffd.Continue(page, (ulong)_pageSize, UffdContinueMode.None);
            if (again.Errno != Errno.EEXIST || again.Field != -(long)Errno.EEXIST)
                Error($"second CONTINUE 0x{page:x} should be EEXIST: {again}");
            return;
        }
        Interlocked.Increment(ref MissingFaults);
        if (!AllowWriteFaults && (flags & UffdPagefaultFlags.Write) != 0)
            Error($"unexpected write fault {msg}");
        var res = _uffd.Copy(page, _contents(page), UffdCopyMode.None);
        if (res.Errno == Errno.EEXIST && res.Field == -(long)Errno.EEXIST)
        {
            _uffd.Wake(page, (ulong)_pageSize); // stale message: the page is already there (__copy_page)
            return;
        }
        if (!res.Succeeded || res.Field != _pageSize)
            Error($"COPY 0x{page:x}: {res}");
    }

    /// <summary>Stops the thread (it polls with a short timeout, or a blocking read ends when the fd closes).</summary>
    public void Stop()
    {
        _stop = true;
        if (!_thread.Join(TimeSpan.FromSeconds(30)))
            throw new TimeoutException("uffd handler thread did not stop");
    }

    public void Dispose()
    {
        if (_thread.IsAlive) Stop();
    }
}

/// <summary>Hang guards for threads in tests.</summary>
public static class Threads
{
    /// <summary>Generous hang guard: a join that takes this long means a lost wake-up.</summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Thread, Exception> Failures = new();

    /// <summary>
    /// Starts <paramref name="body"/> as <paramref name="task"/> on a new thread; an exception (a failed assertion) is
    /// kept and rethrown by <see cref="JoinOrFail"/> instead of crashing the test host.
    /// </summary>
    public static Thread RunChecked(this ModelTask task, Action<ModelTask> body)
    {
        Thread? self = null;
        self = new Thread(() =>
        {
            try { body(task); }
            catch (Exception e) { Failures.AddOrUpdate(self!, e); }
        }) { IsBackground = true, Name = task.Name };
        self.Start();
        return self;
    }

    /// <summary>Joins or fails with a message naming the thread; rethrows what the thread failed with.</summary>
    public static void JoinOrFail(Thread t, string what)
    {
        if (!t.Join(HangGuard))
            Assert.Fail($"{what}: thread did not finish within {HangGuard.TotalSeconds} s (lost wake-up or hang)");
        if (Failures.TryGetValue(t, out var e))
            throw new AssertFailedException($"{what}: {e.Message}", e);
    }

    /// <summary>Spins (yielding) until <paramref name="cond"/> holds, or fails after the hang guard.</summary>
    public static void WaitUntil(Func<bool> cond, string what)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!cond())
        {
            if (sw.Elapsed > HangGuard)
                Assert.Fail($"timed out waiting for: {what}");
            Thread.Sleep(1);
        }
    }
}
