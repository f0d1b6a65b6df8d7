using PluginMm;
using PluginMm.Userfaultfd;

namespace PluginMm.Samples.LazyRestore;

/// <summary>How much the server copies beyond the faulting page.</summary>
public enum PrefetchPolicy
{
    /// <summary>Exactly the faulting page (Firecracker's example handler).</summary>
    None,
    /// <summary>A fixed window starting at the faulting page.</summary>
    Fixed,
    /// <summary>CRIU lazy-pages: the faulting page on a fault; while no fault is pending, background chunks that start
    /// at 64 KiB, grow by 64 KiB per transfer up to 4 MiB, and reset to 64 KiB on every fault (criu/uffd.c
    /// update_xfer_len).</summary>
    Adaptive,
}

/// <summary>Counters of a restore.</summary>
public struct RestoreStats
{
    /// <summary>PAGEFAULT messages read.</summary>
    public long Faults;
    /// <summary>Messages whose page was already populated when read (prefetched meanwhile): COPY gave EEXIST, then WAKE.</summary>
    public long StaleFaults;
    /// <summary>UFFDIO_COPY calls.</summary>
    public long CopyIoctls;
    /// <summary>Bytes the kernel reported copied.</summary>
    public long BytesCopied;
    /// <summary>Pages copied that no fault asked for (prefetch).</summary>
    public long PrefetchedPages;
    /// <summary>Partial copies (EAGAIN with bytes done).</summary>
    public long PartialCopies;
    /// <summary>COPY results of -EAGAIN (a non-cooperative event in flight), retried.</summary>
    public long Retries;
}

/// <summary>
/// A lazy-restore page server written only against <see cref="IUserfaultfd"/>: a region registered MISSING is filled
/// from a snapshot on first touch, with a prefetch policy. It follows the kernel's rules for results
/// (fs/userfaultfd.c userfaultfd_copy, mm/userfaultfd.c mfill_atomic): a COPY that hits a populated page stops there —
/// a positive field with EAGAIN is a partial copy (continue after the bytes done), a field of -EEXIST means the first
/// page was already there (skip it, and UFFDIO_WAKE the faulting page, since a failed COPY wakes nobody), a field of
/// -EAGAIN means the address space is changing (read pending messages, retry). No allocation per fault.
/// </summary>
public sealed unsafe class LazyPageServer
{
    private const int InitialXfer = 64 * 1024;
    private const int MaxXfer = 4 * 1024 * 1024;

    private readonly IUserfaultfd _uffd;
    private readonly ulong _start;
    private readonly byte* _snapshot;
    private readonly long _pages;
    private readonly int _page;
    private readonly ulong[] _populated;
    private readonly PrefetchPolicy _policy;
    private readonly int _windowPages;
    private long _resident;
    private long _cursor;
    private int _xferBytes = InitialXfer;
    private volatile bool _stop;
    private RestoreStats _stats;

    /// <summary>Creates a server for the region [<paramref name="start"/>, +<paramref name="length"/>) that must be registered MISSING on <paramref name="uffd"/>.</summary>
    public LazyPageServer(IUserfaultfd uffd, ulong start, long length, byte* snapshot, PrefetchPolicy policy, int windowBytes)
    {
        _uffd = uffd;
        _start = start;
        _snapshot = snapshot;
        _page = uffd.PageSize;
        _pages = length / _page;
        _populated = new ulong[(_pages + 63) / 64];
        _policy = policy;
        _windowPages = Math.Max(1, windowBytes / _page);
    }

    /// <summary>The counters (read after <see cref="Run"/> returns).</summary>
    public RestoreStats Stats => _stats;

    /// <summary>Whether every page has been copied.</summary>
    public bool Complete => Volatile.Read(ref _resident) == _pages;

    /// <summary>Asks <see cref="Run"/> to return at its next wake-up (at most 100 ms later).</summary>
    public void Stop() => _stop = true;

    /// <summary>
    /// Serves faults until every page is resident or <see cref="Stop"/> is called. Returns the errno that ended it
    /// abnormally (<see cref="Errno.None"/> on completion or stop).
    /// </summary>
    public Errno Run()
    {
        Span<UffdMsg> msgs = stackalloc UffdMsg[64];
        while (!_stop && !Complete)
        {
            bool background = _policy == PrefetchPolicy.Adaptive;
            var p = _uffd.Poll(background ? 0 : 100);
            if (p == PollResult.Timeout)
            {
                if (background)
                    BackgroundTransfer();
                continue;
            }
            if (p != PollResult.Readable)
                return Errno.EBADF;
            var r = _uffd.Read(msgs);
            if (r.Errno == Errno.EAGAIN)
                continue;
            if (!r.Succeeded)
                return r.Errno;
            for (int i = 0; i < (int)r.Field; i++)
            {
                ref readonly var m = ref msgs[i];
                if (m.Event != UffdEvent.Pagefault)
                    continue;
                _stats.Faults++;
                var err = ServeFault((long)((m.PagefaultAddress - _start) / (ulong)_page));
                if (err != Errno.None)
                    return err;
            }
        }
        return Errno.None;
    }

    private Errno ServeFault(long page)
    {
        if (IsPopulated(page))
        {
            // Stale message: the page arrived (prefetch) after the fault was queued. The faulter may still sleep; wake it.
            _stats.StaleFaults++;
            var w = _uffd.Wake(_start + (ulong)(page * _page), (ulong)_page);
            return w.Errno;
        }
        long count = _policy == PrefetchPolicy.Fixed ? _windowPages : 1;
        if (_policy == PrefetchPolicy.Adaptive)
            _xferBytes = InitialXfer;
        long end = Math.Min(_pages, page + count);
        var e = CopyRange(page, end, faultPage: page);
        if (_policy == PrefetchPolicy.Adaptive)
            _cursor = end;
        return e;
    }

    private void BackgroundTransfer()
    {
        long n = _xferBytes / _page;
        long first = NextHole(_cursor);
        if (first < 0)
            return;
        long end = Math.Min(_pages, first + n);
        CopyRange(first, end, faultPage: -1);
        _cursor = end;
        _xferBytes = Math.Min(MaxXfer, _xferBytes + InitialXfer);
    }

    private long NextHole(long from)
    {
        for (long i = from; i < _pages; i++)
        {
            if (!IsPopulated(i))
                return i;
        }
        for (long i = 0; i < from; i++)
        {
            if (!IsPopulated(i))
                return i;
        }
        return -1;
    }

    // Copies every hole in [first, end) as runs of consecutive missing pages.
    private Errno CopyRange(long first, long end, long faultPage)
    {
        long i = first;
        while (i < end)
        {
            if (IsPopulated(i))
            {
                i++;
                continue;
            }
            long j = i;
            while (j < end && !IsPopulated(j))
                j++;
            var e = CopyRun(i, j, faultPage);
            if (e != Errno.None)
                return e;
            i = j;
        }
        return Errno.None;
    }

    private Errno CopyRun(long first, long end, long faultPage)
    {
        long at = first;
        while (at < end)
        {
            long bytes = (end - at) * _page;
            var src = new ReadOnlySpan<byte>(_snapshot + at * _page, (int)Math.Min(bytes, int.MaxValue & ~(_page - 1)));
            var r = _uffd.Copy(_start + (ulong)(at * _page), src, UffdCopyMode.None);
            _stats.CopyIoctls++;
            if (r.BytesDone > 0)
            {
                long done = r.BytesDone / _page;
                MarkPopulated(at, done, faultPage);
                _stats.BytesCopied += r.BytesDone;
                at += done;
                if (r.Errno == Errno.EAGAIN)
                    _stats.PartialCopies++;
                continue;
            }
            switch (r.FieldErrno)
            {
                case Errno.EEXIST:
                    // Populated behind our back (only possible if something else fills the region): skip the page and
                    // wake whoever faulted on it, because a failed COPY does not wake.
                    MarkPopulated(at, 1, faultPage);
                    _uffd.Wake(_start + (ulong)(at * _page), (ulong)_page);
                    at++;
                    break;
                case Errno.EAGAIN:
                    _stats.Retries++;
                    return Errno.None; // mmap changing: drop this transfer; the fault will be re-read or re-raised
                default:
                    return r.Errno != Errno.None ? r.Errno : r.FieldErrno;
            }
        }
        return Errno.None;
    }

    private bool IsPopulated(long page) => (_populated[page >> 6] & (1UL << (int)(page & 63))) != 0;

    private void MarkPopulated(long first, long count, long faultPage)
    {
        for (long p = first; p < first + count; p++)
        {
            ref ulong w = ref _populated[p >> 6];
            ulong bit = 1UL << (int)(p & 63);
            if ((w & bit) == 0)
            {
                w |= bit;
                Interlocked.Increment(ref _resident);
                if (p != faultPage)
                    _stats.PrefetchedPages++;
            }
        }
    }
}
