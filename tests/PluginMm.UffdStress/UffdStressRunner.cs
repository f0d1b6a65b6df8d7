using PluginMm.Runtime;
using System.Diagnostics;
using PluginMm.Userfaultfd;

namespace PluginMm.UffdStress;

/// <summary>What to run: a port of the command line <c>uffd-stress &lt;type&gt; &lt;MiB&gt; &lt;bounces&gt;</c> plus model options.</summary>
public sealed class StressOptions
{
    /// <summary>The memory type: anon, shmem, shmem-private, hugetlb or hugetlb-private.</summary>
    public string MemType { get; init; } = "anon";

    /// <summary>Size of each area in MiB (uffd-stress's second argument).</summary>
    public int MiB { get; init; } = 4;

    /// <summary>Number of bounces (uffd-stress's third argument); the low four bits of the count-down pick each bounce's mode.</summary>
    public int Bounces { get; init; } = 16;

    /// <summary>Parallelism (uffd-stress's <c>nr_parallel</c>: online CPUs capped at 32): locking, fault and copy threads per CPU.</summary>
    public int Cpus { get; init; } = Math.Clamp(Environment.ProcessorCount, 2, 32);

    /// <summary>The fault-path design of the model kernel.</summary>
    public FaultPathDesign Design { get; init; } = FaultPathDesign.PreCheck;

    /// <summary>How often the "repeat the next COPY on the alias and expect EEXIST" flag is raised (the selftest's 10 s SIGALRM).</summary>
    public TimeSpan EexistInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A bounce that takes longer than this is reported as a hang.</summary>
    public TimeSpan HangGuard { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Seed of the RANDOM mode's generators.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Where per-bounce lines go (null: nowhere).</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>Counters of one run, and what went wrong.</summary>
public sealed class StressResult
{
    /// <summary>The options run.</summary>
    public required StressOptions Options { get; init; }

    /// <summary>Bounces completed.</summary>
    public int Bounces;

    /// <summary>Pages per area.</summary>
    public long Pages;

    /// <summary>MISSING faults resolved by a handler's COPY.</summary>
    public long MissingFaults;

    /// <summary>WP faults resolved by unprotecting.</summary>
    public long WpFaults;

    /// <summary>Successful UFFDIO_COPYs (handlers and background threads).</summary>
    public long Copies;

    /// <summary>COPYs that met an already-filled page (-EEXIST) and were followed by UFFDIO_WAKE.</summary>
    public long EexistWakes;

    /// <summary>Deliberate repeated COPYs on the alias that returned -EEXIST as they must.</summary>
    public long EexistRetries;

    /// <summary>Locked counter increments by the locking threads.</summary>
    public long LockerIterations;

    /// <summary>Pages still allocated after teardown (must be 0).</summary>
    public long LeakedPages;

    /// <summary>Wall time.</summary>
    public TimeSpan Elapsed;

    /// <summary>Errors (memory corruption, unexpected ioctl results, hangs, leaks).</summary>
    public List<string> Errors { get; } = new();

    /// <summary>No error.</summary>
    public bool Ok { get { lock (Errors) return Errors.Count == 0; } }

    internal void Error(string e)
    {
        lock (Errors)
            if (Errors.Count < 50) Errors.Add(e);
    }

    /// <inheritdoc/>
    public override string ToString()
        => $"{Options.MemType} {Options.Design}: bounces={Bounces} pages={Pages} faults={MissingFaults + WpFaults} (missing={MissingFaults} wp={WpFaults}) "
         + $"copies={Copies} eexist-wake={EexistWakes} eexist-retry={EexistRetries} locks={LockerIterations} leaked={LeakedPages} {Elapsed.TotalSeconds:F1}s {(Ok ? "ok" : "FAILED")}";
}

/// <summary>
/// A port of tools/testing/selftests/mm/uffd-stress.c to the model kernel. Per bounce (counting down; bit 0 RANDOM,
/// bit 1 RACINGFAULTS, bit 2 VERIFY, bit 3 POLL): a fresh userfaultfd (O_NONBLOCK in POLL mode — the model has no
/// fcntl, so the fd is reopened instead of toggled) registers area_dst (and its alias) MISSING|WP; area_dst is released;
/// per CPU a locking thread takes per-page locks in area_dst (the first touch is a MISSING read fault, the lock word's
/// write a WP fault), checks the page's counter against <c>count_verify</c> and increments both; a fault thread serves
/// the userfaultfd (poll + non-blocking read, or blocking read); a background thread COPYs the first half of its slice,
/// write-protects the whole slice, then COPYs the second half, tolerating -EEXIST with a WAKE. A timer raises
/// <c>test_uffdio_copy_eexist</c> so the next COPY is repeated on the alias and must fail with -EEXIST. After the
/// background threads, area_src is released, the lockers stop, the fault threads stop (POLL: stop flag, then unprotect
/// and unregister; read mode: close, which unprotects and unregisters), every counter is verified, and src and dst swap.
/// Teardown checks that no page leaked.
/// </summary>
public static class UffdStressRunner
{
    private const int BounceRandom = 1, BounceRacingFaults = 2, BounceVerify = 4, BouncePoll = 8;
    private const ulong LockWordOffset = 0, CountOffset = 8, PlaceholderOffset = 16;

    /// <summary>Runs one memory type; never throws for a failure of the model (it lands in <see cref="StressResult.Errors"/>).</summary>
    public static StressResult Run(StressOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var res = new StressResult { Options = o };
        if (Array.IndexOf(StressArea.MemTypes, o.MemType) < 0)
        {
            res.Error($"unknown memory type {o.MemType}");
            return res;
        }
        var sw = Stopwatch.StartNew();
        try
        {
            RunCore(o, res);
        }
        catch (Exception e)
        {
            res.Error("uffd-stress threw: " + e);
        }
        res.Elapsed = sw.Elapsed;
        return res;
    }

    private sealed class Bounce
    {
        public required StressOptions O;
        public required StressResult R;
        public required Mm Mm;
        public required UserfaultfdCtx Uffd;
        public required StressArea Src, Dst;
        public required ulong[] CountVerify;
        public required object[] PageLocks;
        public required int Mode;
        public required int BounceNr;
        public required long NrPages, PerCpu;
        public required ulong PageSize;
        public required bool Wp;
        public volatile bool Finished, StopFaults;
        public int CopyEexist; // test_uffdio_copy_eexist
        public long Missing, WpFaults;
    }

    private static void RunCore(StressOptions o, StressResult res)
    {
        var allocator = new PageAllocator();
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All, new ModelOptions { Design = o.Design, Allocator = allocator });
        var mm = kernel.CreateMm();
        ulong ps = (ulong)StressArea.PageSizeOf(o.MemType);
        long nrPages = Math.Max(1, (long)((ulong)o.MiB * 1024 * 1024 / ps));
        int cpus = (int)Math.Min(o.Cpus, nrPages);
        long perCpu = nrPages / cpus;
        nrPages = perCpu * cpus;
        res.Pages = nrPages;
        ulong bytes = (ulong)nrPages * ps;

        var src = new StressArea(kernel, mm, o.MemType, bytes);
        var dst = new StressArea(kernel, mm, o.MemType, bytes);
        var main = mm.CreateTask("uffd-stress");
        var countVerify = new ulong[nrPages];
        var locks = new object[nrPages];
        for (long nr = 0; nr < nrPages; nr++)
        {
            locks[nr] = new object();
            ulong a = src.Area + (ulong)nr * ps;
            countVerify[nr] = 1;
            if (main.WriteUInt64(a + LockWordOffset, 0) != AccessResult.Ok || main.WriteUInt64(a + CountOffset, 1) != AccessResult.Ok
                || main.WriteUInt64(a + PlaceholderOffset, 1) != AccessResult.Ok)
            {
                res.Error("initialising area_src failed");
                return;
            }
        }

        using var eexistTimer = new Timer(_ => Volatile.Write(ref s_eexistTick, Volatile.Read(ref s_eexistTick) + 1), null, o.EexistInterval, o.EexistInterval);
        var sw = Stopwatch.StartNew();
        for (int b = o.Bounces - 1; b >= 0 && res.Ok; b--)
        {
            bool poll = (b & BouncePoll) != 0;
            int flags = Uapi.O_CLOEXEC | Uapi.UFFD_USER_MODE_ONLY | (poll ? Uapi.O_NONBLOCK : 0);
            if (mm.Userfaultfd(flags, out var uffd) != Errno.None || uffd is null)
            {
                res.Error("userfaultfd() failed");
                break;
            }
            var features = UffdFeatures.PagefaultFlagWp | UffdFeatures.WpHugetlbfsShmem | (o.MemType == "anon" ? UffdFeatures.WpUnpopulated : 0);
            var api = uffd.Api(Uapi.UFFD_API, features, out _, out _);
            bool wp = api.Succeeded; // "write-protect when available"
            if (!wp && !uffd.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded)
            {
                res.Error($"UFFDIO_API: {api}");
                uffd.Dispose();
                break;
            }
            var bc = new Bounce
            {
                O = o, R = res, Mm = mm, Uffd = uffd, Src = src, Dst = dst, CountVerify = countVerify, PageLocks = locks, Mode = b,
                BounceNr = o.Bounces - 1 - b, NrPages = nrPages, PerCpu = perCpu, PageSize = ps, Wp = wp, CopyEexist = 1,
            };
            RunBounce(bc, cpus);
            if (!res.Ok)
                break;
            // swap area_src and area_dst (and their aliases)
            (src, dst) = (dst, src);
            res.Bounces++;
            o.Log?.WriteLine($"bounces: {b}, mode:{((b & BounceRandom) != 0 ? " rnd" : "")}{((b & BounceRacingFaults) != 0 ? " racing" : "")}"
                + $"{((b & BounceVerify) != 0 ? " ver" : "")}{(poll ? " poll" : " read")}, userfaults: missing {bc.Missing} wp {bc.WpFaults}"
                + $" [{sw.Elapsed.TotalSeconds:F1}s]");
        }

        // Teardown: every folio must come back to the allocator.
        src.Destroy();
        dst.Destroy();
        mm.Exit();
        res.LeakedPages = allocator.LivePages;
        if (res.LeakedPages != 0)
            res.Error($"leak: {res.LeakedPages} pages still allocated after teardown");
    }

    private static int s_eexistTick;

    private static void RunBounce(Bounce bc, int cpus)
    {
        var res = bc.R;
        var uffd = bc.Uffd;
        bool poll = (bc.Mode & BouncePoll) != 0;
        var modes = UffdModes.Missing | (bc.Wp ? UffdModes.Wp : 0);
        var reg = uffd.Register(bc.Dst.Area, bc.Dst.Bytes, modes, out _);
        if (reg.Succeeded && bc.Dst.Alias != 0)
            reg = uffd.Register(bc.Dst.Alias, bc.Dst.Bytes, modes, out _);
        if (!reg.Succeeded)
        {
            res.Error($"register failure: {reg}");
            uffd.Dispose();
            return;
        }
        // Release area_dst: it must be empty before the bounce.
        bc.Dst.ReleasePages();
        if ((bc.Mode & BounceVerify) != 0)
        {
            for (long nr = 0; nr < bc.NrPages; nr++)
            {
                ulong a = bc.Dst.Area + (ulong)nr * bc.PageSize;
                if ((bc.Mm.Pagemap(a) & PagemapFlags.Present) != 0)
                {
                    var pte = bc.Mm.PageTable.Get(a);
                    res.Error($"area_dst page {nr} not empty after release: {pte.Flags}, folio mapping "
                        + $"{(pte.Folio?.Mapping is null ? "none (removed from the page cache)" : ReferenceEquals(pte.Folio.Mapping, bc.Dst.File?.Inode) ? "area_dst's file" : "another file")}"
                        + $" index {pte.Folio?.Index} refs {pte.Folio?.RefCount} cached={bc.Dst.File?.CachedFolios}");
                }
            }
        }

        int tick = Volatile.Read(ref s_eexistTick);
        var lockers = new Thread[cpus];
        var faulters = new Thread[cpus];
        var background = new Thread[cpus];
        for (int cpu = 0; cpu < cpus; cpu++)
        {
            int c = cpu;
            lockers[cpu] = Spawn(bc, $"locking-{cpu}", t => LockingThread(bc, t, c));
            faulters[cpu] = Spawn(bc, $"uffd-{(poll ? "poll" : "read")}-{cpu}", t => FaultThread(bc, t, poll));
            background[cpu] = Spawn(bc, $"background-{cpu}", t => BackgroundThread(bc, t, c, ref tick));
        }
        var deadline = Stopwatch.StartNew();
        bool hung = !JoinAll(background, bc.O.HangGuard - deadline.Elapsed, res, "background copy thread");
        // All of area_dst is now filled: area_src can go.
        if (!hung)
            bc.Src.ReleasePages();
        bc.Finished = true;
        hung |= !JoinAll(lockers, bc.O.HangGuard - deadline.Elapsed, res, "locking thread");
        if (hung)
            return; // threads are background threads; the result says FAILED
        if (uffd.WaitingCount != 0)
            res.Error($"{uffd.WaitingCount} faulting tasks still queued after the lockers finished");

        if (poll)
        {
            bc.StopFaults = true;
            if (!JoinAll(faulters, bc.O.HangGuard, res, "poll thread"))
                return;
            if (bc.Wp)
            {
                var u = uffd.WriteProtect(bc.Dst.Area, bc.Dst.Bytes, UffdWriteProtectMode.None);
                if (!u.Succeeded) res.Error($"unprotect area_dst: {u}");
            }
            var un = uffd.Unregister(bc.Dst.Area, bc.Dst.Bytes);
            if (un.Succeeded && bc.Dst.Alias != 0)
                un = uffd.Unregister(bc.Dst.Alias, bc.Dst.Bytes);
            if (!un.Succeeded) res.Error($"unregister failure: {un}");
            uffd.Dispose();
        }
        else
        {
            // The selftest cancels its blocking readers; the model closes the fd, which wakes them (EBADF) and, as
            // userfaultfd_release does, clears the uffd-wp bits and unregisters area_dst and its alias.
            bc.StopFaults = true;
            uffd.Dispose();
            if (!JoinAll(faulters, bc.O.HangGuard, res, "read thread"))
                return;
        }

        // Verify every counter (and, in VERIFY mode, the lock word and placeholder) of area_dst.
        var main = bc.Mm.CreateTask("verify");
        for (long nr = 0; nr < bc.NrPages && res.Ok; nr++)
        {
            ulong a = bc.Dst.Area + (ulong)nr * bc.PageSize;
            if (main.ReadUInt64(a + CountOffset, out var count) != AccessResult.Ok || count != bc.CountVerify[nr])
                res.Error($"bounce {bc.BounceNr}: page_nr {nr} memory corruption {count} {bc.CountVerify[nr]}");
            if ((bc.Mode & BounceVerify) != 0)
            {
                main.ReadUInt64(a + LockWordOffset, out var lw);
                main.ReadUInt64(a + PlaceholderOffset, out var ph);
                if (lw != 0 || ph != 1)
                    res.Error($"bounce {bc.BounceNr}: page_nr {nr} lock word {lw} placeholder {ph}");
            }
        }
        Interlocked.Add(ref res.MissingFaults, bc.Missing);
        Interlocked.Add(ref res.WpFaults, bc.WpFaults);
    }

    private static Thread Spawn(Bounce bc, string name, Action<ModelTask> body)
    {
        var task = bc.Mm.CreateTask(name);
        return task.Start(t =>
        {
            try { body(t); }
            catch (Exception e) { bc.R.Error($"{name} threw: {e}"); bc.Finished = true; bc.StopFaults = true; }
        });
    }

    private static bool JoinAll(Thread[] threads, TimeSpan budget, StressResult res, string what)
    {
        var sw = Stopwatch.StartNew();
        foreach (var t in threads)
        {
            var left = budget - sw.Elapsed;
            if (left < TimeSpan.Zero) left = TimeSpan.Zero;
            if (!t.Join(left))
            {
                res.Error($"hang: {what} {t.Name} did not finish within the hang guard");
                return false;
            }
        }
        return true;
    }

    /// <summary><c>locking_thread</c>.</summary>
    private static void LockingThread(Bounce bc, ModelTask t, int cpu)
    {
        int mode = bc.Mode;
        ulong nrPages = (ulong)bc.NrPages;
        ulong pageNr = 0;
        var rng = new Random(bc.O.Seed * 7919 + bc.BounceNr * 31 + cpu);
        if ((mode & BounceRandom) == 0)
        {
            pageNr = unchecked((ulong)-(long)mode);
            if ((mode & BounceRacingFaults) == 0)
                pageNr += (ulong)cpu * (ulong)bc.PerCpu;
        }
        long iterations = 0;
        while (!bc.Finished)
        {
            pageNr = (mode & BounceRandom) != 0 ? (ulong)rng.NextInt64() : pageNr + 1;
            pageNr %= nrPages;
            ulong a = bc.Dst.Area + pageNr * bc.PageSize;
            // pthread_mutex_lock: the lock word is loaded first (a MISSING read fault on a page not there yet) ...
            if (!Check(bc, t.ReadUInt64(a + LockWordOffset, out _), "lock word load", pageNr))
                return;
            lock (bc.PageLocks[pageNr])
            {
                // ... then written (a WP fault on a write-protected page).
                if (!Check(bc, t.WriteUInt64(a + LockWordOffset, (ulong)t.Tid), "lock", pageNr)
                    || !Check(bc, t.ReadUInt64(a + CountOffset, out var count), "count load", pageNr))
                    return;
                if (count != bc.CountVerify[pageNr])
                {
                    bc.R.Error($"bounce {bc.BounceNr}: page_nr {pageNr} memory corruption {count} {bc.CountVerify[pageNr]}");
                    bc.Finished = true;
                    return;
                }
                count++;
                if (!Check(bc, t.WriteUInt64(a + CountOffset, count), "count store", pageNr))
                    return;
                bc.CountVerify[pageNr] = count;
                if (!Check(bc, t.WriteUInt64(a + LockWordOffset, 0), "unlock", pageNr))
                    return;
            }
            iterations++;
        }
        Interlocked.Add(ref bc.R.LockerIterations, iterations);
    }

    private static bool Check(Bounce bc, AccessResult r, string what, ulong pageNr)
    {
        if (r == AccessResult.Ok)
            return true;
        bc.R.Error($"bounce {bc.BounceNr}: {what} of page {pageNr}: {r}");
        bc.Finished = true;
        return false;
    }

    /// <summary><c>uffd_poll_thread</c> (POLL) or <c>uffd_read_thread</c>, with <c>uffd_handle_page_fault</c>.</summary>
    private static void FaultThread(Bounce bc, ModelTask t, bool poll)
    {
        var uffd = bc.Uffd;
        Span<UffdMsg> msgs = stackalloc UffdMsg[4];
        while (true)
        {
            if (poll)
            {
                if (bc.StopFaults) return;
                var p = uffd.Poll(20);
                if (p == PollResult.HangUp) return;
                if (p != PollResult.Readable) continue;
            }
            var r = uffd.Read(poll ? msgs[..1] : msgs);
            if (r.Errno == Errno.EAGAIN && poll) continue;
            if (r.Errno == Errno.EBADF && !poll) return; // closed: the read thread's cancellation
            if (!r.Succeeded)
            {
                bc.R.Error($"read: {r}");
                return;
            }
            for (int i = 0; i < r.Field; i++)
                HandlePageFault(bc, t, msgs[i]);
        }
    }

    private static void HandlePageFault(Bounce bc, ModelTask t, UffdMsg msg)
    {
        if (msg.Event != UffdEvent.Pagefault)
        {
            bc.R.Error($"unexpected msg event {msg}");
            return;
        }
        ulong page = msg.PagefaultAddress & ~(bc.PageSize - 1);
        var flags = msg.PagefaultFlags;
        if ((flags & UffdPagefaultFlags.Wp) != 0)
        {
            Interlocked.Increment(ref bc.WpFaults);
            var u = bc.Uffd.WriteProtect(page, bc.PageSize, UffdWriteProtectMode.None);
            if (!u.Succeeded && !ClosedUnderUs(bc, u)) bc.R.Error($"unprotect 0x{page:x}: {u}");
            return;
        }
        if ((flags & UffdPagefaultFlags.Minor) != 0 || (flags & UffdPagefaultFlags.Write) != 0)
        {
            bc.R.Error($"unexpected fault {msg}");
            return;
        }
        int noRetry = 0;
        if (CopyPage(bc, t, page - bc.Dst.Area, retry: false, ref noRetry))
            Interlocked.Increment(ref bc.Missing);
    }

    /// <summary>
    /// In read mode the fault threads are stopped by closing the fd (the selftest cancels them). A stale message a
    /// thread read just before the close can then meet an unregistered range (ENOENT) or a closed fd (EBADF): harmless,
    /// because the lockers have finished and every page is filled; anything else is still an error.
    /// </summary>
    private static bool ClosedUnderUs(Bounce bc, UffdioResult r)
        => bc.StopFaults && bc.Uffd.Released && r.Errno is Errno.ENOENT or Errno.EBADF;

    /// <summary><c>background_thread</c>.</summary>
    private static void BackgroundThread(Bounce bc, ModelTask t, int cpu, ref int tick)
    {
        long start = cpu * bc.PerCpu, end = start + bc.PerCpu, mid = (start + end) / 2;
        for (long nr = start; nr < mid; nr++)
            CopyPage(bc, t, (ulong)nr * bc.PageSize, retry: true, ref tick);
        if (bc.Wp)
        {
            var r = bc.Uffd.WriteProtect(bc.Dst.Area + (ulong)start * bc.PageSize, (ulong)bc.PerCpu * bc.PageSize, UffdWriteProtectMode.Wp);
            if (!r.Succeeded) bc.R.Error($"write-protect slice {cpu}: {r}");
        }
        for (long nr = mid; nr < end; nr++)
            CopyPage(bc, t, (ulong)nr * bc.PageSize, retry: true, ref tick);
    }

    /// <summary>
    /// <c>__copy_page</c>: COPY area_src+offset → area_dst+offset (+MODE_WP), reading the source from the caller's address
    /// space as the kernel does; -EEXIST → WAKE; with <paramref name="retry"/> and the EEXIST flag raised, repeat the COPY
    /// on the alias and require -EEXIST (<c>retry_copy_page</c>). Returns whether this call filled the page.
    /// </summary>
    private static bool CopyPage(Bounce bc, ModelTask t, ulong offset, bool retry, ref int tick)
    {
        ulong dst = bc.Dst.Area + offset, src = bc.Src.Area + offset;
        var mode = bc.Wp ? UffdCopyMode.Wp : UffdCopyMode.None;
        var r = bc.Uffd.Copy(t, dst, src, bc.PageSize, mode);
        if (!r.Succeeded && ClosedUnderUs(bc, r))
            return false;
        if (!r.Succeeded)
        {
            if (r.Field != -(long)Errno.EEXIST)
                bc.R.Error($"UFFDIO_COPY error: {r}");
            else
                Interlocked.Increment(ref bc.R.EexistWakes);
            bc.Uffd.Wake(dst, bc.PageSize);
            return false;
        }
        if (r.Field != (long)bc.PageSize)
        {
            bc.R.Error($"UFFDIO_COPY unexpected size: {r}");
            return false;
        }
        Interlocked.Increment(ref bc.R.Copies);
        if (!retry)
            return true;
        // test_uffdio_copy_eexist: raised once per bounce and on every timer tick; the first retrying COPY takes it.
        bool raised = Interlocked.Exchange(ref bc.CopyEexist, 0) == 1;
        int now = Volatile.Read(ref s_eexistTick), seen = Volatile.Read(ref tick);
        if (now != seen && Interlocked.CompareExchange(ref tick, now, seen) == seen)
            raised = true;
        if (raised)
        {
            // retry_copy_page: the same COPY through the alias must now fail with -EEXIST.
            var again = bc.Uffd.Copy(t, bc.Dst.AliasOf(dst), bc.Src.AliasOf(src), bc.PageSize, mode);
            if (again.Errno != Errno.EEXIST || again.Field != -(long)Errno.EEXIST)
                bc.R.Error($"UFFDIO_COPY retry on the alias should be -EEXIST: {again}");
            else
                Interlocked.Increment(ref bc.R.EexistRetries);
        }
        return true;
    }
}
