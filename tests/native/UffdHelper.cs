using System.Diagnostics;
using System.Globalization;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace PluginMm.TestNative;

/// <summary>
/// Drives <c>uffd_helper</c> (tests/native/uffd_helper.c): a separate process that owns memory, faulting threads and
/// forked children, while this (.NET) process is the userfaultfd handler. fork(2) in a .NET process is unsafe (one
/// thread survives, the runtime's others do not), so scenarios that fork, or that need a real user-mode SIGBUS, run
/// their memory there. The helper's userfaultfd is taken into this process with <c>pidfd_getfd(2)</c>: ioctls on it act
/// on the helper's mm (<c>ctx-&gt;mm</c>), a UFFDIO_COPY source is read from this process, FORK messages install the
/// child's userfaultfd here. The protocol is documented in the C source.
/// </summary>
public sealed partial class UffdHelper : IDisposable
{
    /// <summary>Hang guard for one command round trip (on top of the wait a command asks for).</summary>
    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly MemoryMappedFile _xferFile;
    private readonly MemoryMappedViewAccessor _xfer;
    private readonly Lock _lock = new();
    private bool _dead;

    private UffdHelper(Process process, int pid, int xferFd, long xferSize)
    {
        _process = process;
        Pid = pid;
        TransferSize = xferSize;
        _xferFile = MemoryMappedFile.CreateFromFile($"/proc/{pid}/fd/{xferFd}", FileMode.Open, null, xferSize, MemoryMappedFileAccess.ReadWrite);
        _xfer = _xferFile.CreateViewAccessor(0, xferSize);
        Root = new HelperProcess(this, 0, pid);
    }

    /// <summary>The helper's pid (process 0).</summary>
    public int Pid { get; }

    /// <summary>Process 0.</summary>
    public HelperProcess Root { get; }

    /// <summary>Bytes one <see cref="HelperProcess.Write"/> or <see cref="HelperProcess.Read"/> can move.</summary>
    public long TransferSize { get; }

    /// <summary>Builds (once) and starts the helper; null with <paramref name="reason"/> when it cannot run here.</summary>
    public static UffdHelper? TryStart(out string? reason)
    {
        string? exe = NativeProgram.TryBuild("uffd_helper.c", out reason, "-pthread");
        if (exe is null)
            return null;
        var p = Process.Start(new ProcessStartInfo(exe)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            UseShellExecute = false,
        })!;
        var line = ReadLine(p, CommandTimeout);
        var f = line?.Split(' ');
        if (f is not ["ready", var pid, var fd, var size])
        {
            Kill(p);
            reason = $"uffd_helper did not start: {line ?? "(no output)"}";
            return null;
        }
        return new UffdHelper(p, Int(pid), Int(fd), long.Parse(size, CultureInfo.InvariantCulture));
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static string? ReadLine(Process p, TimeSpan timeout)
    {
        var t = p.StandardOutput.ReadLineAsync();
        return t.Wait(timeout) ? t.Result : null;
    }

    /// <summary>Sends one command to process <paramref name="proc"/> and returns its reply line.</summary>
    public string Call(int proc, string command, TimeSpan? wait = null)
    {
        lock (_lock)
        {
            if (_dead)
                throw new InvalidOperationException("uffd_helper is gone");
            _process.StandardInput.WriteLine(proc == 0 ? command : $"@{proc} {command}");
            _process.StandardInput.Flush();
            var reply = ReadLine(_process, CommandTimeout + (wait ?? TimeSpan.Zero));
            if (reply is null)
            {
                _dead = true;
                Kill(_process);
                throw new TimeoutException($"uffd_helper did not answer '{command}' (process {proc}); killed");
            }
            return reply;
        }
    }

    internal void WithTransfer(Action<MemoryMappedViewAccessor> body)
    {
        lock (_lock)
            body(_xfer);
    }

    /// <summary>Takes file descriptor <paramref name="remoteFd"/> of <paramref name="pid"/> into this process (pidfd_getfd).</summary>
    public static int TakeFd(int pid, int remoteFd, out Errno errno)
    {
        errno = Errno.None;
        long pidfd = Syscall(SYS_pidfd_open, pid, 0, 0);
        if (pidfd < 0)
        {
            errno = (Errno)Marshal.GetLastPInvokeError();
            return -1;
        }
        long fd = Syscall(SYS_pidfd_getfd, pidfd, remoteFd, 0);
        if (fd < 0)
            errno = (Errno)Marshal.GetLastPInvokeError();
        Close((int)pidfd);
        return (int)fd;
    }

    private const long SYS_pidfd_open = 434, SYS_pidfd_getfd = 438;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a, long b, long c);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    private static void Kill(Process p)
    {
        try { p.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        p.WaitForExit(5000);
    }

    /// <summary>Ends the helper and every child (they die with it: PR_SET_PDEATHSIG).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (!_dead)
            {
                try
                {
                    _process.StandardInput.WriteLine("exit");
                    _process.StandardInput.Close();
                }
                catch (IOException) { }
                _dead = true;
            }
        }
        if (!_process.WaitForExit(5000))
            Kill(_process);
        _xfer.Dispose();
        _xferFile.Dispose();
        _process.Dispose();
    }
}

/// <summary>What a helper task ended with: <c>ok</c> with a value, <c>sig</c> with a signal number, or <c>err</c> with an errno.</summary>
public readonly record struct HelperOutcome(string Kind, long Value)
{
    /// <summary>Parses "ok 5", "sig 7", "err 22".</summary>
    public static HelperOutcome Parse(string s)
    {
        var f = s.Split(' ');
        long v = f.Length < 2 ? 0 : f[1].StartsWith('-') ? long.Parse(f[1], CultureInfo.InvariantCulture)
            : unchecked((long)ulong.Parse(f[1], CultureInfo.InvariantCulture));
        return new HelperOutcome(f[0], v);
    }

    /// <summary>Completed.</summary>
    public bool Ok => Kind == "ok";

    /// <summary>The errno of an <c>err</c> outcome (None otherwise).</summary>
    public Errno Errno => Kind == "err" ? (Errno)Value : Errno.None;

    /// <summary>The signal name of a <c>sig</c> outcome (null otherwise).</summary>
    public string? Signal => Kind != "sig" ? null : Value switch { 7 => "SIGBUS", 11 => "SIGSEGV", _ => $"signal {Value}" };
}

/// <summary>One process of the helper (0, or a forked child).</summary>
public sealed class HelperProcess
{
    private readonly UffdHelper _helper;

    internal HelperProcess(UffdHelper helper, int id, int pid)
    {
        _helper = helper;
        Id = id;
        Pid = pid;
    }

    /// <summary>The helper's number for this process (0 = the first).</summary>
    public int Id { get; }

    /// <summary>The kernel pid.</summary>
    public int Pid { get; }

    /// <summary>Sends a command to this process.</summary>
    public string Call(string command, TimeSpan? wait = null) => _helper.Call(Id, command, wait);

    private HelperOutcome Value(string command)
    {
        var r = HelperOutcome.Parse(Call(command));
        return r.Kind is "ok" or "err" ? r : throw new InvalidOperationException($"uffd_helper: '{command}' -> {r}");
    }

    private static string N(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Creates a userfaultfd in this process (the syscall, or /dev/userfaultfd) and takes it into this .NET
    /// process; the helper's own descriptor is closed, so closing the returned one releases the context.</summary>
    public int OpenUffd(int flags, bool device, out Errno errno)
    {
        var r = Value($"{(device ? "uffddev" : "uffd")} {flags}");
        if (!r.Ok)
        {
            errno = r.Errno;
            return -1;
        }
        int fd = UffdHelper.TakeFd(Pid, (int)r.Value, out errno);
        Call($"close {r.Value}");
        return fd;
    }

    /// <summary>memfd_create (MFD_HUGETLB when <paramref name="huge"/>) of <paramref name="size"/> bytes: the remote fd.</summary>
    public HelperOutcome Memfd(long size, bool huge) => Value($"memfd {size} {(huge ? 1 : 0)}");

    /// <summary>A KVM VM's guest_memfd (KVM_CREATE_GUEST_MEMFD with <paramref name="flags"/>): the remote fd.</summary>
    public HelperOutcome GuestMemfd(long size, ulong flags) => Value($"gmem {size} {flags}");

    /// <summary>mmap(2) in this process: the address.</summary>
    public HelperOutcome Mmap(ulong length, int prot, int flags, int fd, long offset)
        => Value($"mmap {length} {prot} {flags} {fd} {offset}");

    /// <summary>close(2) of a remote descriptor.</summary>
    public void CloseFd(int fd) => Call($"close {fd}");

    /// <summary>The /proc/self/pagemap entry of <paramref name="address"/>.</summary>
    public ulong Pagemap(ulong address) => (ulong)Value($"pagemap {address}").Value;

    /// <summary>Starts a task: <c>read a</c>, <c>write a byte</c>, <c>copyin a len</c>, <c>copyout a len</c>,
    /// <c>madvise a len advice</c>, <c>munmap a len</c>, <c>mremap old len new</c>, <c>fork</c>.</summary>
    public HelperTask Run(string op, params ulong[] args)
    {
        string reply = Call($"run {op} {string.Join(' ', args.Select(N))}".TrimEnd());
        var f = reply.Split(' ');
        if (f is not ["task", var id, var tid])
            throw new InvalidOperationException($"uffd_helper: run {op} -> {reply}");
        return new HelperTask(this, int.Parse(id, CultureInfo.InvariantCulture), int.Parse(tid, CultureInfo.InvariantCulture));
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="address"/> with a user-mode copy (hang-guarded).</summary>
    public HelperOutcome Write(ulong address, ReadOnlySpan<byte> data)
    {
        var copy = data.ToArray();
        HelperOutcome result = default;
        _helper.WithTransfer(x =>
        {
            if (copy.Length > x.Capacity)
                throw new ArgumentException("larger than the transfer buffer", nameof(data));
            x.WriteArray(0, copy, 0, copy.Length);
            result = Finish(Run("copyin", address, (ulong)copy.Length), "copyin");
        });
        return result;
    }

    /// <summary>Reads at <paramref name="address"/> with a user-mode copy (hang-guarded); <c>sig 7</c> where it would SIGBUS.</summary>
    public HelperOutcome Read(ulong address, Span<byte> destination)
    {
        var buf = new byte[destination.Length];
        HelperOutcome result = default;
        _helper.WithTransfer(x =>
        {
            result = Finish(Run("copyout", address, (ulong)buf.Length), "copyout");
            if (result.Ok)
                x.ReadArray(0, buf, 0, buf.Length);
        });
        buf.CopyTo(destination);
        return result;
    }

    private static HelperOutcome Finish(HelperTask t, string what)
        => t.Join(UffdHelper.CommandTimeout) ? t.Outcome : throw new TimeoutException($"uffd_helper: {what} blocked");

    /// <summary>The child a finished <c>fork</c> task created.</summary>
    public HelperProcess Child(HelperTask fork)
    {
        if (!fork.Outcome.Ok)
            throw new InvalidOperationException($"fork failed: {fork.Outcome}");
        int id = (int)fork.Outcome.Value;
        int pid = (int)HelperOutcome.Parse(_helper.Call(id, "pid")).Value;
        return new HelperProcess(_helper, id, pid);
    }

    /// <summary>Ends a child process (exit(2)); process 0 ends with the helper.</summary>
    public void Exit()
    {
        if (Id != 0)
            _helper.Call(Id, "exit");
    }
}

/// <summary>A task (thread) in a helper process.</summary>
public sealed class HelperTask
{
    private readonly HelperProcess _process;
    private readonly int _id;

    internal HelperTask(HelperProcess process, int id, int tid)
    {
        _process = process;
        _id = id;
        Tid = tid;
    }

    /// <summary>The thread's kernel tid.</summary>
    public int Tid { get; }

    /// <summary>How it ended (valid after <see cref="Join"/> returned true).</summary>
    public HelperOutcome Outcome { get; private set; }

    /// <summary>Waits for the task to finish; false on timeout.</summary>
    public bool Join(TimeSpan timeout)
    {
        string r = _process.Call($"join {_id} {(long)timeout.TotalMilliseconds}", timeout);
        if (!r.StartsWith("done ", StringComparison.Ordinal))
            return false;
        Outcome = HelperOutcome.Parse(r[5..]);
        return true;
    }

    /// <summary>Waits until the task sleeps in a kernel function containing <paramref name="wchanFragment"/>; false if it
    /// finished or the timeout passed first.</summary>
    public bool WaitBlocked(string wchanFragment, TimeSpan timeout)
        => _process.Call($"blocked {_id} {wchanFragment} {(long)timeout.TotalMilliseconds}", timeout) == "yes";
}
