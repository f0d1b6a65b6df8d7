using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using PluginMm.Runtime.Linux.Interop;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Linux;

/// <summary>Flags for creating a userfaultfd (the <c>flags</c> of <c>userfaultfd(2)</c> / <c>USERFAULTFD_IOC_NEW</c>).</summary>
[Flags]
public enum UffdOpenFlags
{
    /// <summary>Blocking, inherited across exec, catches kernel-mode faults too.</summary>
    None = 0,
    /// <summary><c>UFFD_USER_MODE_ONLY</c>: only faults taken in user mode are handled; a fault taken inside the kernel
    /// (e.g. <c>read(2)</c> into the region) fails with EFAULT instead. Needed for the syscall path when unprivileged.</summary>
    UserModeOnly = Uapi.UFFD_USER_MODE_ONLY,
    /// <summary><c>O_NONBLOCK</c>: <c>read(2)</c> returns EAGAIN when nothing is queued.</summary>
    NonBlocking = Uapi.O_NONBLOCK,
    /// <summary><c>O_CLOEXEC</c>.</summary>
    CloseOnExec = Uapi.O_CLOEXEC,
}

/// <summary>How to create the userfaultfd.</summary>
public enum UffdOpenPath
{
    /// <summary><c>/dev/userfaultfd</c> first (Linux 6.1+, access is governed by the device node's permissions), then the
    /// system call.</summary>
    Auto,
    /// <summary><c>open("/dev/userfaultfd")</c> + <c>ioctl(USERFAULTFD_IOC_NEW)</c> only.</summary>
    Device,
    /// <summary><c>syscall(SYS_userfaultfd)</c> only (governed by <c>vm.unprivileged_userfaultfd</c> and CAP_SYS_PTRACE).</summary>
    Syscall,
}

/// <summary>Why a userfaultfd could not be created: the errno of each path tried, and what to do about it.</summary>
/// <param name="DeviceErrno">The error of the <c>/dev/userfaultfd</c> path (<see cref="Errno.None"/> if not tried).</param>
/// <param name="SyscallErrno">The error of the system call path (<see cref="Errno.None"/> if not tried).</param>
/// <param name="Explanation">A human-readable explanation with the fix.</param>
public readonly record struct UffdOpenFailure(Errno DeviceErrno, Errno SyscallErrno, string Explanation);

/// <summary>Thrown by <see cref="HostUserfaultfd.Open"/> when no userfaultfd can be created; the message says why and how to fix it.</summary>
public sealed class UserfaultfdUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public UserfaultfdUnavailableException(UffdOpenFailure failure) : base(failure.Explanation) => Failure = failure;

    /// <summary>The failure details.</summary>
    public UffdOpenFailure Failure { get; }
}

/// <summary>
/// The Linux host target of <see cref="IUserfaultfd"/>: a real userfaultfd of this process. Every method is one
/// system call and returns what the kernel returned: the errno and the signed result field (<c>-errno</c> decoded by
/// <see cref="UffdioResult.FieldErrno"/>). Calls after <see cref="Dispose"/> return EBADF. Thread-safe: the handler
/// thread, waker threads and <see cref="Dispose"/> may race; the descriptor is reference-counted so it is never reused
/// under a running call.
/// </summary>
public sealed unsafe class HostUserfaultfd : IUserfaultfd
{
    /// <summary>Path of the userfaultfd device (Linux 6.1+).</summary>
    public const string DevicePath = "/dev/userfaultfd";

    private readonly FdHandle _handle;
    private UffdFeatures _features;
    private volatile bool _nonBlocking;

    private HostUserfaultfd(int fd, UffdOpenFlags flags, bool ownsHandle = true)
    {
        _handle = new FdHandle(fd, ownsHandle);
        OwnsDescriptor = ownsHandle;
        OpenFlags = flags;
        _nonBlocking = (flags & UffdOpenFlags.NonBlocking) != 0;
        PageSize = LibC.PageSize;
    }

    /// <summary>The path that created this userfaultfd: <see cref="UffdOpenPath.Device"/> (<c>/dev/userfaultfd</c>) or
    /// <see cref="UffdOpenPath.Syscall"/> (never <see cref="UffdOpenPath.Auto"/>).</summary>
    public UffdOpenPath OpenedThrough { get; private init; }

    /// <summary>The flags the fd was created with (for an adopted fd: its <c>O_NONBLOCK</c>/<c>O_CLOEXEC</c> state at adoption).</summary>
    public UffdOpenFlags OpenFlags { get; }

    /// <summary>Whether <see cref="Dispose"/> closes the descriptor (false for a non-owning <see cref="Adopt"/>).</summary>
    public bool OwnsDescriptor { get; }

    /// <summary>The file descriptor number (for <see cref="UffdEpoll"/> or an external event loop). -1 after <see cref="Dispose"/>.</summary>
    public int Fd => _handle.IsClosed ? -1 : (int)_handle.DangerousGetHandle();

    /// <inheritdoc/>
    public int PageSize { get; }

    /// <inheritdoc/>
    public bool NonBlocking => _nonBlocking;

    /// <inheritdoc/>
    public UffdFeatures Features => _features;

    /// <summary>Creates a userfaultfd, or throws <see cref="UserfaultfdUnavailableException"/> explaining why it cannot.</summary>
    public static HostUserfaultfd Open(UffdOpenFlags flags = UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec, UffdOpenPath path = UffdOpenPath.Auto)
        => TryOpen(flags, path, out var uffd, out var failure) ? uffd : throw new UserfaultfdUnavailableException(failure);

    /// <summary>Creates a userfaultfd; on failure <paramref name="failure"/> says why (errno per path) and how to fix it.</summary>
    public static bool TryOpen(UffdOpenFlags flags, UffdOpenPath path, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HostUserfaultfd? uffd, out UffdOpenFailure failure)
    {
        Errno deviceErrno = Errno.None, syscallErrno = Errno.None;
        int fd = -1;
        if (path is UffdOpenPath.Auto or UffdOpenPath.Device)
            fd = OpenThroughDevice((int)flags, out deviceErrno);
        var used = UffdOpenPath.Device;
        if (fd < 0 && path is UffdOpenPath.Auto or UffdOpenPath.Syscall)
        {
            fd = OpenThroughSyscall((int)flags, out syscallErrno);
            used = UffdOpenPath.Syscall;
        }
        if (fd >= 0)
        {
            uffd = new HostUserfaultfd(fd, flags) { OpenedThrough = used };
            failure = default;
            return true;
        }
        uffd = null;
        failure = new UffdOpenFailure(deviceErrno, syscallErrno, Explain(flags, deviceErrno, syscallErrno));
        return false;
    }

    /// <summary>
    /// Wraps a userfaultfd this process already holds — received from another process (<see cref="UffdSocket"/>), or
    /// the <c>ufd</c> of a FORK message (<see cref="FromForkMessage"/>). With <paramref name="ownsDescriptor"/> false,
    /// <see cref="Dispose"/> leaves the descriptor open (the caller keeps it). The sender normally did the
    /// <c>UFFDIO_API</c> handshake already (a second one fails); <see cref="Features"/> is then read from
    /// <c>/proc/self/fdinfo</c> (fs/userfaultfd.c userfaultfd_show_fdinfo, the <c>API:</c> line). With
    /// <paramref name="verify"/> (the default) an fd that is not a userfaultfd (<c>/proc/self/fd/N</c> is not
    /// <c>anon_inode:[userfaultfd]</c>) is refused with ENOTTY, a closed one with EBADF.
    /// </summary>
    public static Errno Adopt(int fd, bool ownsDescriptor, out HostUserfaultfd? uffd, bool verify = true)
    {
        uffd = null;
        int fl = fd < 0 ? -1 : LibC.Fcntl(fd, LibC.F_GETFL, 0);
        if (fl < 0)
            return Errno.EBADF;
        if (verify && ReadLink($"/proc/self/fd/{fd}") is { } target && target != "anon_inode:[userfaultfd]")
            return Errno.ENOTTY;
        int fdFlags = LibC.Fcntl(fd, SocketCalls.F_GETFD, 0);
        var flags = ((fl & Uapi.O_NONBLOCK) != 0 ? UffdOpenFlags.NonBlocking : UffdOpenFlags.None)
                  | (fdFlags > 0 && (fdFlags & 1) != 0 ? UffdOpenFlags.CloseOnExec : UffdOpenFlags.None);
        uffd = new HostUserfaultfd(fd, flags, ownsDescriptor);
        uffd._features = ReadFdinfoFeatures(fd);
        return Errno.None;
    }

    /// <summary>
    /// Wraps the new userfaultfd of a FORK message (<c>msg.arg.fork.ufd</c>, installed in this process by the read,
    /// fs/userfaultfd.c resolve_userfault_fork), owning it. EINVAL if the message is not a FORK.
    /// </summary>
    public static Errno FromForkMessage(in UffdMsg msg, out HostUserfaultfd? uffd)
    {
        uffd = null;
        return msg.Event != UffdEvent.Fork ? Errno.EINVAL : Adopt((int)msg.ForkUfd, ownsDescriptor: true, out uffd);
    }

    private static string? ReadLink(string path)
    {
        byte* buf = stackalloc byte[256];
        nint n = SocketCalls.ReadLink(path, buf, 256);
        return n < 0 ? null : System.Text.Encoding.UTF8.GetString(buf, (int)n);
    }

    // "API:\t%Lx:%x:%Lx\n": UFFD_API, ctx->features, UFFD_API_IOCTLS.
    private static UffdFeatures ReadFdinfoFeatures(int fd)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/self/fdinfo/{fd}"))
            {
                if (!line.StartsWith("API:", StringComparison.Ordinal))
                    continue;
                var parts = line[4..].Trim().Split(':');
                if (parts.Length >= 2 && ulong.TryParse(parts[1], System.Globalization.NumberStyles.HexNumber, null, out ulong f))
                    return (UffdFeatures)f & ~(UffdFeatures)(1UL << 63); // UFFD_FEATURE_INITIALIZED is internal
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return UffdFeatures.None;
    }

    private static int OpenThroughDevice(int flags, out Errno errno)
    {
        int dev = LibC.Open(DevicePath, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (dev < 0)
        {
            errno = LibC.LastErrno;
            return -1;
        }
        int fd = LibC.IoctlInt(dev, Uapi.USERFAULTFD_IOC_NEW, flags);
        errno = fd < 0 ? LibC.LastErrno : Errno.None;
        LibC.Close(dev);
        return fd;
    }

    private static int OpenThroughSyscall(int flags, out Errno errno)
    {
        if (LibC.SYS_userfaultfd < 0)
        {
            errno = Errno.ENOSYS;
            return -1;
        }
        long fd = LibC.Syscall1(LibC.SYS_userfaultfd, flags);
        errno = fd < 0 ? LibC.LastErrno : Errno.None;
        return (int)fd;
    }

    /// <summary>Builds the explanation of a failed creation: which path failed with which errno, the governing setting, the fix.</summary>
    public static string Explain(UffdOpenFlags flags, Errno deviceErrno, Errno syscallErrno)
    {
        var sb = new System.Text.StringBuilder("Cannot create a userfaultfd.");
        if (deviceErrno != Errno.None)
        {
            sb.Append($" {DevicePath}: {deviceErrno} — ");
            sb.Append(deviceErrno switch
            {
                Errno.ENOENT => "the device does not exist (kernel older than 6.1, CONFIG_USERFAULTFD off, or the device is not exposed in this container).",
                Errno.EACCES or Errno.EPERM => $"the device node is not accessible to this user ({DescribeDevice()}); grant access, e.g. `sudo setfacl -m u:$USER:rw {DevicePath}`, or a udev rule giving a group rw access.",
                Errno.EINVAL => $"the kernel rejected the flags 0x{(int)flags:x} (only O_CLOEXEC, O_NONBLOCK and UFFD_USER_MODE_ONLY are valid).",
                _ => "unexpected error.",
            });
        }
        if (syscallErrno != Errno.None)
        {
            sb.Append($" userfaultfd(2): {syscallErrno} — ");
            sb.Append(syscallErrno switch
            {
                Errno.EPERM => $"without UFFD_USER_MODE_ONLY the system call needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1 (now {ReadSysctl()}); " +
                               "run as root, `sudo sysctl -w vm.unprivileged_userfaultfd=1`, or open with UffdOpenFlags.UserModeOnly (then faults the kernel takes on your behalf, e.g. read(2) into the region, fail with EFAULT).",
                Errno.ENOSYS => "the kernel has no userfaultfd (CONFIG_USERFAULTFD off) or a seccomp filter blocks it (container runtimes' default profiles often do).",
                Errno.EINVAL => $"the kernel rejected the flags 0x{(int)flags:x} (only O_CLOEXEC, O_NONBLOCK and UFFD_USER_MODE_ONLY are valid).",
                Errno.EMFILE => "too many open files.",
                _ => "unexpected error.",
            });
        }
        return sb.ToString();
    }

    private static string ReadSysctl()
    {
        try { return File.ReadAllText("/proc/sys/vm/unprivileged_userfaultfd").Trim(); }
        catch (IOException) { return "unknown"; }
        catch (UnauthorizedAccessException) { return "unreadable"; }
    }

    private static string DescribeDevice()
    {
        if (OperatingSystem.IsWindows())
            return "mode unknown";
        try
        {
            var mode = File.GetUnixFileMode(DevicePath);
            return $"mode {Convert.ToString((int)mode, 8)}, user {Environment.UserName}";
        }
        catch (IOException) { return "mode unknown"; }
        catch (UnauthorizedAccessException) { return "mode unreadable"; }
    }

    /// <inheritdoc/>
    public UffdioResult Api(ulong api, UffdFeatures features, out UffdFeatures available, out UffdIoctls ioctls)
    {
        var arg = new UffdioApi { Api = api, Features = (ulong)features };
        var r = IoctlNoField(Uapi.UFFDIO_API, &arg);
        available = (UffdFeatures)arg.Features;
        ioctls = (UffdIoctls)arg.Ioctls;
        if (r.Succeeded)
        {
            // fs/userfaultfd.c userfaultfd_api(): WP_ASYNC implies WP_UNPOPULATED on the context.
            _features = (features & UffdFeatures.WpAsync) != 0 ? features | UffdFeatures.WpUnpopulated : features;
        }
        return r;
    }

    /// <inheritdoc/>
    public UffdioResult Read(Span<UffdMsg> buffer)
    {
        if (!Lease(out int fd))
            return UffdioResult.Fail(Errno.EBADF);
        try
        {
            fixed (UffdMsg* p = buffer)
            {
                while (true)
                {
                    nint n = LibC.Read(fd, p, (nuint)(buffer.Length * sizeof(UffdMsg)));
                    if (n >= 0 && n % sizeof(UffdMsg) != 0)
                    {
                        // The kernel only ever returns whole messages (userfaultfd_read_iter); a partial one means
                        // the fd is not a userfaultfd. Report it rather than dropping the tail.
                        ShortReadBytes = n % sizeof(UffdMsg);
                        return new UffdioResult(Errno.EIO, n / sizeof(UffdMsg));
                    }
                    if (n >= 0)
                        return new UffdioResult(Errno.None, n / sizeof(UffdMsg));
                    var e = LibC.LastErrno;
                    if (e != Errno.EINTR)
                        return UffdioResult.Fail(e);
                }
            }
        }
        finally { _handle.DangerousRelease(); }
    }

    /// <summary>Bytes of a trailing partial message of the last <see cref="Read"/> that returned EIO (0 otherwise
    /// untouched): a read of a non-multiple of <c>sizeof(struct uffd_msg)</c> is reported, not truncated.</summary>
    public long ShortReadBytes { get; private set; }

    /// <inheritdoc/>
    public PollResult Poll(int timeoutMs)
    {
        if (!Lease(out int fd))
            return PollResult.HangUp;
        try
        {
            var pfd = new PollFd { Fd = fd, Events = LibC.POLLIN };
            long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
            while (true)
            {
                int wait = timeoutMs < 0 ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
                int n = LibC.Poll(&pfd, 1, wait);
                if (n < 0)
                {
                    if (LibC.LastErrno == Errno.EINTR)
                        continue;
                    return PollResult.Error;
                }
                if (n == 0)
                    return PollResult.Timeout;
                if ((pfd.REvents & (LibC.POLLERR | LibC.POLLNVAL)) != 0)
                    return PollResult.Error;
                if ((pfd.REvents & LibC.POLLHUP) != 0)
                    return PollResult.HangUp;
                return PollResult.Readable;
            }
        }
        finally { _handle.DangerousRelease(); }
    }

    /// <inheritdoc/>
    public UffdioResult Register(ulong start, ulong len, UffdModes mode, out UffdIoctls ioctls)
    {
        var arg = new UffdioRegister { Range = { Start = start, Len = len }, Mode = (ulong)mode };
        var r = IoctlNoField(Uapi.UFFDIO_REGISTER, &arg);
        ioctls = r.Succeeded ? (UffdIoctls)arg.Ioctls : UffdIoctls.None;
        return r;
    }

    /// <inheritdoc/>
    public UffdioResult Unregister(ulong start, ulong len)
    {
        var arg = new UffdioRange { Start = start, Len = len };
        return IoctlNoField(Uapi.UFFDIO_UNREGISTER, &arg);
    }

    /// <inheritdoc/>
    public UffdioResult Wake(ulong start, ulong len)
    {
        var arg = new UffdioRange { Start = start, Len = len };
        return IoctlNoField(Uapi.UFFDIO_WAKE, &arg);
    }

    /// <inheritdoc/>
    public UffdioResult Copy(ulong dst, ReadOnlySpan<byte> src, UffdCopyMode mode)
    {
        fixed (byte* p = src)
            return CopyFrom(dst, (ulong)p, (ulong)src.Length, mode);
    }

    /// <summary>
    /// <c>UFFDIO_COPY</c> from an address of this process (e.g. a mapped snapshot file), without pinning a managed span.
    /// <c>Field</c> is <c>copy</c>.
    /// </summary>
    public UffdioResult CopyFrom(ulong dst, ulong src, ulong len, UffdCopyMode mode)
    {
        var arg = new UffdioCopy { Dst = dst, Src = src, Len = len, Mode = (ulong)mode };
        return IoctlWithField(Uapi.UFFDIO_COPY, &arg, &arg.Copy);
    }

    /// <inheritdoc/>
    public UffdioResult ZeroPage(ulong start, ulong len, UffdZeroPageMode mode)
    {
        var arg = new UffdioZeropage { Range = { Start = start, Len = len }, Mode = (ulong)mode };
        return IoctlWithField(Uapi.UFFDIO_ZEROPAGE, &arg, &arg.Zeropage);
    }

    /// <inheritdoc/>
    public UffdioResult Continue(ulong start, ulong len, UffdContinueMode mode)
    {
        var arg = new UffdioContinue { Range = { Start = start, Len = len }, Mode = (ulong)mode };
        return IoctlWithField(Uapi.UFFDIO_CONTINUE, &arg, &arg.Mapped);
    }

    /// <inheritdoc/>
    public UffdioResult WriteProtect(ulong start, ulong len, UffdWriteProtectMode mode)
    {
        var arg = new UffdioWriteprotect { Range = { Start = start, Len = len }, Mode = (ulong)mode };
        return IoctlNoField(Uapi.UFFDIO_WRITEPROTECT, &arg);
    }

    /// <inheritdoc/>
    public UffdioResult Poison(ulong start, ulong len, UffdPoisonMode mode)
    {
        var arg = new UffdioPoison { Range = { Start = start, Len = len }, Mode = (ulong)mode };
        return IoctlWithField(Uapi.UFFDIO_POISON, &arg, &arg.Updated);
    }

    /// <inheritdoc/>
    public UffdioResult Move(ulong dst, ulong src, ulong len, UffdMoveMode mode)
    {
        var arg = new UffdioMove { Dst = dst, Src = src, Len = len, Mode = (ulong)mode };
        return IoctlWithField(Uapi.UFFDIO_MOVE, &arg, &arg.Move);
    }

    /// <summary>
    /// Switches <c>O_NONBLOCK</c> on or off (<c>fcntl(F_SETFL)</c>), as uffd-stress does between bounces.
    /// </summary>
    public Errno SetNonBlocking(bool nonBlocking)
    {
        if (!Lease(out int fd))
            return Errno.EBADF;
        try
        {
            int fl = LibC.Fcntl(fd, LibC.F_GETFL, 0);
            if (fl < 0)
                return LibC.LastErrno;
            fl = nonBlocking ? fl | Uapi.O_NONBLOCK : fl & ~Uapi.O_NONBLOCK;
            if (LibC.Fcntl(fd, LibC.F_SETFL, fl) < 0)
                return LibC.LastErrno;
            _nonBlocking = nonBlocking;
            return Errno.None;
        }
        finally { _handle.DangerousRelease(); }
    }

    /// <summary>Closes the userfaultfd: the kernel releases the context and wakes every blocked faulter, which refaults
    /// on now-unregistered memory (fs/userfaultfd.c userfaultfd_release).</summary>
    public void Dispose() => _handle.Dispose();

    private bool Lease(out int fd)
    {
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
        }
        fd = added ? (int)_handle.DangerousGetHandle() : -1;
        return added;
    }

    private UffdioResult IoctlNoField(uint request, void* arg)
    {
        if (!Lease(out int fd))
            return UffdioResult.Fail(Errno.EBADF);
        try
        {
            int rc = LibC.Ioctl(fd, request, arg);
            return rc < 0 ? UffdioResult.Fail(LibC.LastErrno) : UffdioResult.Ok;
        }
        finally { _handle.DangerousRelease(); }
    }

    // The result field starts at 0; the kernel writes it (bytes done or -errno) unless it failed before reaching the
    // mfill (bad mode, EFAULT on the struct), so an unwritten field reads back as 0.
    private UffdioResult IoctlWithField(uint request, void* arg, long* field)
    {
        if (!Lease(out int fd))
            return UffdioResult.Fail(Errno.EBADF);
        try
        {
            int rc = LibC.Ioctl(fd, request, arg);
            return new UffdioResult(rc < 0 ? LibC.LastErrno : Errno.None, *field);
        }
        finally { _handle.DangerousRelease(); }
    }

    private sealed class FdHandle : SafeHandleMinusOneIsInvalid
    {
        public FdHandle(int fd, bool ownsHandle) : base(ownsHandle) => SetHandle(fd);

        protected override bool ReleaseHandle() => LibC.Close((int)handle) == 0;
    }
}
