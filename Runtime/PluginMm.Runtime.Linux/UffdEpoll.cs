using PluginMm.Runtime.Linux.Interop;

namespace PluginMm.Runtime.Linux;

/// <summary>Outcome of <see cref="UffdEpoll.Wait"/>.</summary>
/// <param name="Errno">The error of <c>epoll_wait</c> (<see cref="Errno.None"/> on success).</param>
/// <param name="Count">How many tokens were written to the caller's span.</param>
/// <param name="Stopped">Whether <see cref="UffdEpoll.Stop"/> has been called.</param>
public readonly record struct EpollWaitResult(Errno Errno, int Count, bool Stopped);

/// <summary>
/// An epoll set over any number of userfaultfds (or other fds) plus a stop eventfd, so a handler thread sleeps in the
/// kernel until a message is queued or it is asked to stop — no spinning, no timeouts needed for shutdown. This is
/// how Firecracker's and CRIU's page servers wait (epoll over all uffds).
/// </summary>
public sealed unsafe class UffdEpoll : IDisposable
{
    private const ulong StopToken = ulong.MaxValue;
    private const int MaxEvents = 64;
    private readonly int _epfd;
    private readonly int _stopFd;
    private int _disposed;
    private volatile bool _stopped;

    /// <summary>Creates the epoll set. Throws <see cref="IOException"/> if the kernel refuses (EMFILE/ENOMEM).</summary>
    public UffdEpoll()
    {
        _epfd = LibC.EpollCreate1(LibC.EPOLL_CLOEXEC);
        if (_epfd < 0)
            throw new IOException($"epoll_create1 failed: {LibC.LastErrno}");
        _stopFd = LibC.EventFd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (_stopFd < 0)
        {
            var e = LibC.LastErrno;
            LibC.Close(_epfd);
            throw new IOException($"eventfd failed: {e}");
        }
        var err = Add(_stopFd, StopToken);
        if (err != Errno.None)
        {
            LibC.Close(_stopFd);
            LibC.Close(_epfd);
            throw new IOException($"epoll_ctl failed: {err}");
        }
    }

    /// <summary>Adds a userfaultfd; <see cref="Wait"/> reports <paramref name="token"/> when it is readable.</summary>
    public Errno Add(HostUserfaultfd uffd, ulong token)
    {
        ArgumentNullException.ThrowIfNull(uffd);
        if (token == StopToken)
            return Errno.EINVAL;
        int fd = uffd.Fd;
        return fd < 0 ? Errno.EBADF : Add(fd, token);
    }

    /// <summary>Adds any pollable fd (level-triggered <c>EPOLLIN</c>).</summary>
    public Errno Add(int fd, ulong token)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = LibC.EPOLLIN;
        *(ulong*)(ev + EpollEvent.DataOffset) = token;
        return LibC.EpollCtl(_epfd, LibC.EPOLL_CTL_ADD, fd, ev) < 0 ? LibC.LastErrno : Errno.None;
    }

    /// <summary>Removes an fd.</summary>
    public Errno Remove(int fd)
    {
        byte* ev = stackalloc byte[16];
        return LibC.EpollCtl(_epfd, LibC.EPOLL_CTL_DEL, fd, ev) < 0 ? LibC.LastErrno : Errno.None;
    }

    /// <summary>
    /// Sleeps until at least one fd is readable, <see cref="Stop"/> is called, or <paramref name="timeoutMs"/> passes
    /// (-1 = forever). Writes the ready tokens to <paramref name="ready"/>. An fd whose uffd was released reports
    /// ready too (EPOLLHUP); the next read on it tells.
    /// </summary>
    public EpollWaitResult Wait(Span<ulong> ready, int timeoutMs)
    {
        if (_stopped)
            return new EpollWaitResult(Errno.None, 0, true);
        int max = Math.Min(MaxEvents, Math.Max(1, ready.Length + 1));
        byte* events = stackalloc byte[MaxEvents * 16];
        int n;
        while (true)
        {
            n = LibC.EpollWait(_epfd, events, max, timeoutMs);
            if (n >= 0)
                break;
            var e = LibC.LastErrno;
            if (e != Errno.EINTR)
                return new EpollWaitResult(e, 0, _stopped);
        }
        int count = 0;
        bool stopped = _stopped;
        for (int i = 0; i < n; i++)
        {
            ulong token = *(ulong*)(events + i * EpollEvent.Size + EpollEvent.DataOffset);
            if (token == StopToken)
                stopped = true;
            else if (count < ready.Length)
                ready[count++] = token;
        }
        return new EpollWaitResult(Errno.None, count, stopped);
    }

    /// <summary>Wakes every <see cref="Wait"/> (now and later) with <c>Stopped</c> set. Safe from any thread.</summary>
    public void Stop()
    {
        _stopped = true;
        ulong one = 1;
        if (Volatile.Read(ref _disposed) == 0)
            LibC.Write(_stopFd, &one, sizeof(ulong));
    }

    /// <summary>Closes the epoll set and the stop eventfd (not the added fds).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        LibC.Close(_stopFd);
        LibC.Close(_epfd);
    }
}
