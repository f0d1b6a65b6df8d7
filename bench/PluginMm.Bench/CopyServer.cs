using System.Runtime.CompilerServices;
using PluginMm.Userfaultfd;

namespace PluginMm.Bench;

/// <summary>
/// The MISSING-fault page server every round-trip figure uses, written once against the handler-side API
/// (<see cref="IUserfaultfd"/>) so the very same code serves the model (<c>UserfaultfdCtx</c>) and the real kernel
/// (<c>HostUserfaultfd</c>). Like bench/c/uffd_handler.c: poll, read up to <c>batch</c> messages, UFFDIO_COPY a window of
/// pages starting at the faulting page (clamped to the faulter's slice); EEXIST (stale message) or a partial copy →
/// UFFDIO_WAKE. With <c>dontWake</c> every COPY of a batch is DONTWAKE and one UFFDIO_WAKE covering the batch follows.
/// Allocation-free after start.
/// </summary>
public sealed unsafe class CopyServer : IDisposable
{
    private readonly IUserfaultfd _uffd;
    private readonly ulong _start;
    private readonly ulong _slice;
    private readonly byte* _source;
    private readonly int _window;
    private readonly int _batch;
    private readonly bool _dontWake;
    private readonly int _pageSize;
    private readonly Thread _thread;
    private volatile bool _stop;

    public CopyServer(IUserfaultfd uffd, ulong start, ulong sliceBytes, byte* source, int windowPages, int batch, bool dontWake)
    {
        _uffd = uffd;
        _start = start;
        _slice = sliceBytes;
        _source = source;
        _window = windowPages;
        _batch = Math.Clamp(batch, 1, 64);
        _dontWake = dontWake;
        _pageSize = uffd.PageSize;
        _thread = new Thread(Run) { IsBackground = true, Name = "copy-server" };
        _thread.Start();
    }

    public long Faults;
    public long Copies;
    public long Reads;
    public string? Error;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Run()
    {
        Span<UffdMsg> all = stackalloc UffdMsg[64];
        var msgs = all[.._batch];
        ulong ps = (ulong)_pageSize;
        var mode = _dontWake ? UffdCopyMode.DontWake : UffdCopyMode.None;
        while (!_stop)
        {
            var p = _uffd.Poll(100);
            if (p is PollResult.HangUp or PollResult.Error)
                return;
            if (p != PollResult.Readable)
                continue;
            var r = _uffd.Read(msgs);
            if (!r.Succeeded)
            {
                if (r.Errno == Errno.EAGAIN) continue;
                Error = "read: " + r;
                return;
            }
            Reads++;
            ulong lo = ulong.MaxValue, hi = 0;
            for (int i = 0; i < (int)r.Field; i++)
            {
                ref readonly var m = ref msgs[i];
                if (m.Event != UffdEvent.Pagefault)
                {
                    Error = "unexpected " + m;
                    return;
                }
                ulong page = m.PagefaultAddress & ~(ps - 1);
                ulong off = page - _start;
                ulong sliceEnd = (off / _slice + 1) * _slice;
                ulong len = Math.Min((ulong)_window * ps, sliceEnd - off);
                Faults++;
                var c = _uffd.Copy(page, new ReadOnlySpan<byte>(_source, (int)len), mode);
                if (c.Succeeded)
                {
                    Copies++;
                    if (_dontWake)
                    {
                        lo = Math.Min(lo, page);
                        hi = Math.Max(hi, page + len);
                    }
                }
                else if (c.Errno == Errno.EEXIST || (c.Errno == Errno.EAGAIN && c.Field > 0))
                {
                    _uffd.Wake(page, ps);
                }
                else
                {
                    Error = $"COPY 0x{page:x}: {c}";
                    return;
                }
            }
            if (lo < hi)
                _uffd.Wake(lo, hi - lo);
        }
    }

    /// <summary>Stops the server (it notices within one poll timeout).</summary>
    public void Dispose()
    {
        _stop = true;
        if (!_thread.Join(TimeSpan.FromSeconds(30)))
            throw new TimeoutException("copy server did not stop");
    }
}
