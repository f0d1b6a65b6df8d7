using System.Runtime.InteropServices;

namespace PluginMm.Linux.Testing;

/// <summary>
/// A dedicated thread that touches memory that may fault into a userfaultfd, so the handler (never this thread) can
/// serve it. The thread blocks in the kernel (<c>handle_userfault</c>) until the fault is resolved, the range is
/// woken, or the userfaultfd is closed; <see cref="Join"/> with a timeout is the hang guard, and
/// <see cref="WaitUntilBlockedInUserfault"/> tells deterministically (from <c>/proc/self/task/TID/wchan</c>) that it is
/// parked on a userfault.
/// </summary>
public sealed partial class FaultingThread
{
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _started = new();
    private volatile int _tid;
    private Exception? _error;

    private FaultingThread(string name, Action body)
    {
        _thread = new Thread(() =>
        {
            _tid = GetTid();
            _started.Set();
            try { body(); }
            catch (Exception e) { _error = e; }
        })
        { IsBackground = true, Name = name };
    }

    /// <summary>Starts <paramref name="body"/> on a new background thread and returns once it runs.</summary>
    public static FaultingThread Start(string name, Action body)
    {
        var t = new FaultingThread(name, body);
        t._thread.Start();
        t._started.Wait();
        return t;
    }

    /// <summary>The kernel thread id.</summary>
    public int Tid => _tid;

    /// <summary>The exception the body threw, if any.</summary>
    public Exception? Error => _error;

    /// <summary>Waits for the body to finish; false on timeout (the thread is still blocked).</summary>
    public bool Join(TimeSpan timeout) => _thread.Join(timeout);

    /// <summary>Whether the body has finished.</summary>
    public bool Finished => !_thread.IsAlive;

    /// <summary>The kernel function the thread sleeps in (<c>/proc/self/task/TID/wchan</c>), or "" if running/unknown.</summary>
    public string Wchan
    {
        get
        {
            try { return File.ReadAllText($"/proc/self/task/{_tid}/wchan").Trim(); }
            catch (IOException) { return ""; }
            catch (UnauthorizedAccessException) { return ""; }
        }
    }

    /// <summary>
    /// Waits until the thread sleeps in a kernel function whose name contains <paramref name="wchanFragment"/>
    /// (default <c>handle_userfault</c>); false if it finished or <paramref name="timeout"/> passed first.
    /// </summary>
    public bool WaitUntilBlockedInUserfault(TimeSpan timeout, string wchanFragment = "handle_userfault")
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var spin = new SpinWait();
        while (Environment.TickCount64 < deadline)
        {
            if (Finished)
                return false;
            if (Wchan.Contains(wchanFragment, StringComparison.Ordinal))
                return true;
            if (spin.NextSpinWillYield)
                Thread.Sleep(1);
            spin.SpinOnce();
        }
        return false;
    }

    /// <summary>Reads one byte through a pointer (a user-mode read fault if not mapped yet).</summary>
    public static unsafe byte ReadByte(ulong address) => Volatile.Read(ref *(byte*)address);

    /// <summary>Writes one byte through a pointer (a user-mode write fault if not mapped or write-protected).</summary>
    public static unsafe void WriteByte(ulong address, byte value) => Volatile.Write(ref *(byte*)address, value);

    /// <summary>gettid(2): the kernel id of the calling thread.</summary>
    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();
}
