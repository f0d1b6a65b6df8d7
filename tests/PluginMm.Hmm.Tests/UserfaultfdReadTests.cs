using HmmMirror;
using PluginMm.Hmm;
using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;
using PluginMm.Userfaultfd;
using static PluginMm.Hmm.Tests.HmmFixture;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// Seed 002 and the lock-drop series: a device reading memory a userfaultfd handler supplies. Mainline HMM gets -EFAULT,
/// seed 002's hmm_range_fault and hmm_range_fault_unlocked_timeout read every page.
/// </summary>
[TestClass]
public sealed class UserfaultfdReadTests
{
    /// <summary>A handler thread for one uffd: fills each faulting page with one byte value and UFFDIO_COPYs it.</summary>
    private sealed class Handler : IDisposable
    {
        private readonly UserfaultfdCtx _uffd;
        private readonly Thread _thread;
        private long _served;

        public Handler(UserfaultfdCtx uffd, byte fill)
        {
            _uffd = uffd;
            _thread = new Thread(() =>
            {
                var page = new byte[uffd.PageSize];
                page.AsSpan().Fill(fill);
                while (uffd.ReadOne(out var msg).Succeeded)
                {
                    if (msg.Event != UffdEvent.Pagefault)
                        continue;
                    var r = uffd.Copy(msg.PagefaultAddress & ~((ulong)uffd.PageSize - 1), page, UffdCopyMode.None);
                    if (r.Succeeded || r.Errno == Errno.EEXIST)
                        Interlocked.Increment(ref _served);
                }
            }) { IsBackground = true, Name = "uffd-handler" };
            _thread.Start();
        }

        public long Served => Interlocked.Read(ref _served);

        public void Dispose()
        {
            _uffd.Dispose();
            Assert.IsTrue(_thread.Join(TimeSpan.FromSeconds(30)), "handler thread did not stop");
        }
    }

    private static UserfaultfdCtx RegisterMissing(Mm mm, ulong addr, ulong len)
    {
        Assert.AreEqual(Errno.None, mm.Userfaultfd(0, out var uffd));
        Assert.IsTrue(uffd!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        Assert.IsTrue(uffd.Register(addr, len, UffdModes.Missing, out _).Succeeded);
        return uffd;
    }

    [TestMethod(DisplayName = "hmm userfaultfd_read")]
    public void UserfaultfdRead()
    {
        // The series' selftest: 4 anonymous pages registered MISSING, a handler filling 0xAB, HMM_DMIRROR_READ_UNLOCKED.
        using var f = new HmmFixture();
        const int npages = 4;
        ulong size = npages * PageSize;
        ulong ptr = f.MmapAnon(size, Prot.Read | Prot.Write);
        var uffd = RegisterMissing(f.Mm, ptr, size);
        var mirror = new byte[size];
        using (var handler = new Handler(uffd, 0xAB))
        {
            Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.ReadUnlocked, ptr, npages, mirror, f.Task, out var cmd));
            Assert.AreEqual((ulong)npages, cmd.CPages);
            Assert.AreEqual((long)npages, handler.Served, "each page came from the handler");
        }
        Assert.AreEqual(-1, mirror.AsSpan().IndexOfAnyExcept((byte)0xAB), "every byte the device read is the handler's");
        Assert.AreEqual(npages, f.Fd.Stats.LockDrops);
    }

    [TestMethod(DisplayName = "hmm userfaultfd_read: mainline hmm_range_fault returns -EFAULT")]
    public void MainlineFails()
    {
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var r = Seed002Demo.Run(kernel, DmirrorFaultPath.Mainline, 16);
        Assert.AreEqual(Errno.EFAULT, r.Result);
        Assert.AreEqual(0L, r.UffdFaultsServed, "no ALLOW_RETRY: handle_userfault returns SIGBUS without queueing a message");
        Assert.AreEqual(0L, r.Stats.LockDrops);
        Assert.AreEqual(1L, r.Stats.HmmFaults, "one handle_mm_fault, then -EFAULT");
    }

    [TestMethod(DisplayName = "hmm userfaultfd_read: seed 002 retries with -EBUSY and reads every page")]
    public void Seed002Succeeds()
    {
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        const int pages = 64;
        var r = Seed002Demo.Run(kernel, DmirrorFaultPath.Seed002, pages);
        Assert.AreEqual(Errno.None, r.Result);
        Assert.AreEqual(pages, r.PagesCorrect);
        Assert.AreEqual((long)pages, r.UffdFaultsServed);
        Assert.AreEqual((long)pages, r.Stats.LockDrops, "one page per lock drop");
        Assert.IsGreaterThanOrEqualTo((long)pages, r.Stats.WalkRestarts, "each lock drop returns -EBUSY and restarts the walk");
    }

    [TestMethod(DisplayName = "hmm userfaultfd_read: hmm_range_fault_unlocked_timeout reads every page")]
    public void UnlockedTimeoutSucceeds()
    {
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        const int pages = 64;
        var r = Seed002Demo.Run(kernel, DmirrorFaultPath.UnlockedTimeout, pages);
        Assert.AreEqual(Errno.None, r.Result);
        Assert.AreEqual(pages, r.PagesCorrect);
        Assert.AreEqual((long)pages, r.UffdFaultsServed);
        Assert.AreEqual((long)pages, r.Stats.LockDrops);
    }

    [TestMethod(DisplayName = "hmm userfaultfd_read: seed 002 only changes MISSING-registered VMAs")]
    public void Seed002LeavesOtherVmasAlone()
    {
        // Seed 002 sets ALLOW_RETRY only under userfaultfd_missing(vma); an ordinary VMA faults as in mainline.
        using var f = new HmmFixture(DmirrorFaultPath.Seed002);
        ulong ptr = f.MmapAnon(Size, Prot.Read | Prot.Write);
        CpuWrite(f.Task, ptr, Ints((int)(Size / 4), i => i));
        var mirror = new byte[Size];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Read, ptr, Npages, mirror, f.Task, out var cmd));
        Assert.AreEqual(1UL, cmd.Faults);
        Assert.AreEqual(0L, f.Fd.Stats.LockDrops);
        AssertInts(mirror, (int)(Size / 4), i => i, "device read");
    }

    [TestMethod(DisplayName = "hmm hmm_range_fault_unlocked_timeout: -EBUSY once the deadline passes")]
    public void UnlockedTimeoutExpires()
    {
        // A write request on a page shared with a fork child: the write fault copies it (CoW), which invalidates the range
        // the request covers, so the walk ends with -EBUSY while the lock is held: an ordinary retry that keeps the deadline.
        // The notifier's hook takes longer than the 1 ms timeout, so the retry finds the deadline passed.
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var mm = kernel.CreateMm();
        var task = mm.CreateTask();
        Assert.AreEqual(Errno.None, mm.Mmap(0, PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong ptr));
        CpuWrite(task, ptr, new byte[] { 1 });
        var child = mm.Fork();
        Assert.AreEqual(Errno.None, IntervalNotifier.Insert(mm, ptr, PageSize, SlowNotifier.Ops, null, out var sub));
        var range = new HmmRange(1) { Notifier = sub, Start = ptr, End = ptr + PageSize, DefaultFlags = HmmPfn.ReqFault | HmmPfn.ReqWrite };

        Assert.AreEqual(Errno.EBUSY, HmmFaults.HmmRangeFaultUnlockedTimeout(range, 1, task));
        Assert.AreEqual(1L, range.Faults);
        Assert.AreEqual(0L, range.LockDrops);

        // Timeout 0 retries for ever: the retry finds the page writable and succeeds.
        Assert.AreEqual(Errno.None, HmmFaults.HmmRangeFaultUnlockedTimeout(range, 0, task));
        Assert.AreEqual(HmmPfn.Valid | HmmPfn.Write, range.HmmPfns[0] & HmmPfn.Flags);
        sub!.Remove();
        child.Exit();
    }

    [TestMethod(DisplayName = "hmm hmm_range_fault_unlocked_timeout: refuses a caller holding mmap_lock")]
    public void UnlockedRefusesLockedCaller()
    {
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var mm = kernel.CreateMm();
        var task = mm.CreateTask();
        Assert.AreEqual(Errno.None, mm.Mmap(0, PageSize, Prot.Read, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong ptr));
        Assert.AreEqual(Errno.None, IntervalNotifier.Insert(mm, ptr, PageSize, SlowNotifier.Ops, null, out var sub));
        var range = new HmmRange(1) { Notifier = sub, Start = ptr, End = ptr + PageSize, DefaultFlags = HmmPfn.ReqFault };
        range.NotifierSeq = sub!.ReadBegin();
        mm.MmapLock.EnterReadLock();
        try
        {
            Assert.AreEqual(Errno.EINVAL, HmmFaults.HmmRangeFaultUnlockedTimeout(range, 0, task));
            Assert.AreEqual(Errno.None, HmmFaults.HmmRangeFault(range, task));
        }
        finally { mm.MmapLock.ExitReadLock(); }
        Assert.AreEqual(Errno.EINVAL, HmmFaults.HmmRangeFault(range, task), "hmm_range_fault needs the caller's mmap lock");
        sub!.Remove();
    }
}

/// <summary>A hand-built notifier table whose hook takes 50 ms (to let a 1 ms HMM deadline pass deterministically).</summary>
internal static unsafe class SlowNotifier
{
    public static readonly MmuIntervalNotifierOps Ops = new("slow", &Invalidate);

    public static bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq)
    {
        Thread.Sleep(50);
        interval.SetSeq(curSeq);
        return true;
    }
}

/// <summary>Invalidations that land while HMM sleeps in a userfault (the mmap lock dropped).</summary>
[TestClass]
public sealed class UserfaultfdRaceTests
{
    [TestMethod(DisplayName = "hmm userfaultfd_read: an invalidation while HMM sleeps in a userfault: seed 002 hands -EBUSY to the driver, the unlocked variant refreshes the sequence")]
    [DataRow(DmirrorFaultPath.Seed002)]
    [DataRow(DmirrorFaultPath.UnlockedTimeout)]
    public void InvalidationDuringLockDrop(DmirrorFaultPath path)
    {
        using var f = new HmmFixture(path);
        const int npages = 8;
        ulong size = npages * PageSize;
        ulong ptr = f.MmapAnon(size, Prot.Read | Prot.Write);
        Assert.AreEqual(Errno.None, f.Mm.Userfaultfd(0, out var uffd));
        Assert.IsTrue(uffd!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        Assert.IsTrue(uffd.Register(ptr, size, UffdModes.Missing, out _).Succeeded);
        int invalidations = 0;
        var handler = new Thread(() =>
        {
            var page = new byte[PageSize];
            page.AsSpan().Fill(0x5A);
            while (uffd.ReadOne(out var msg).Succeeded)
            {
                // While the device's fault sleeps (mmap_lock dropped), make the last page read-only: an invalidation of
                // the mirrored range that HMM must notice when it retakes the lock.
                if (msg.PagefaultAddress == ptr + 2 * PageSize && invalidations++ == 0)
                    Assert.AreEqual(Errno.None, f.Mm.Mprotect(ptr + (npages - 1) * PageSize, PageSize, Prot.Read));
                uffd.Copy(msg.PagefaultAddress & ~((ulong)PageSize - 1), page, UffdCopyMode.None);
            }
        }) { IsBackground = true };
        handler.Start();

        var mirror = new byte[size];
        var cmd = path == DmirrorFaultPath.UnlockedTimeout ? HmmDmirrorCommand.ReadUnlocked : HmmDmirrorCommand.Read;
        Assert.AreEqual(Errno.None, Cmd(f.Fd, cmd, ptr, npages, mirror, f.Task, out var result));
        uffd.Dispose();
        Assert.IsTrue(handler.Join(TimeSpan.FromSeconds(30)));

        Assert.AreEqual((ulong)npages, result.CPages);
        Assert.AreEqual(-1, mirror.AsSpan().IndexOfAnyExcept((byte)0x5A));
        Assert.AreEqual(1, invalidations);
        if (path == DmirrorFaultPath.Seed002)
            Assert.AreEqual(1L, f.Fd.Stats.EbusyRetries, "hmm_range_fault saw the sequence change after retaking the lock and returned -EBUSY");
        else
        {
            // hmm_range_fault_unlocked_timeout re-reads the sequence after every lock drop: the invalidation is absorbed.
            Assert.AreEqual(0L, f.Fd.Stats.EbusyRetries);
            Assert.AreEqual(0L, f.Fd.Stats.ReadRetries);
            Assert.AreEqual((long)npages, f.Fd.Stats.LockDrops);
        }
    }
}

/// <summary>Seed 002 covers MISSING only (the question David Hildenbrand asked of the RFC); the unlocked variant any userfault.</summary>
[TestClass]
public sealed class UserfaultfdMinorTests
{
    [TestMethod(DisplayName = "hmm userfaultfd_read on MINOR-registered shmem: mainline and seed 002 -EFAULT, unlocked variant reads it")]
    [DataRow(DmirrorFaultPath.Mainline, Errno.EFAULT)]
    [DataRow(DmirrorFaultPath.Seed002, Errno.EFAULT)]
    [DataRow(DmirrorFaultPath.UnlockedTimeout, Errno.None)]
    public void MinorShmem(DmirrorFaultPath path, Errno expected)
    {
        using var f = new HmmFixture(path);
        const int npages = 4;
        ulong size = npages * PageSize;
        Assert.AreEqual(Errno.None, f.Kernel.MemfdCreate("shmem", (long)size, out var file));
        // Fill the page cache through one mapping; the device reads through another, registered MINOR.
        Assert.AreEqual(Errno.None, f.Mm.Mmap(0, size, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out ulong writer));
        CpuWrite(f.Task, writer, Enumerable.Repeat((byte)0x3C, (int)size).ToArray());
        Assert.AreEqual(Errno.None, f.Mm.Mmap(0, size, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out ulong ptr));
        Assert.AreEqual(Errno.None, f.Mm.Userfaultfd(0, out var uffd));
        Assert.IsTrue(uffd!.Api(Uapi.UFFD_API, UffdFeatures.MinorShmem, out _, out _).Succeeded);
        Assert.IsTrue(uffd.Register(ptr, size, UffdModes.Minor, out _).Succeeded);
        long continued = 0;
        var handler = new Thread(() =>
        {
            while (uffd.ReadOne(out var msg).Succeeded)
            {
                if (uffd.Continue(msg.PagefaultAddress & ~((ulong)PageSize - 1), (ulong)PageSize, UffdContinueMode.None).Succeeded)
                    Interlocked.Increment(ref continued);
            }
        }) { IsBackground = true };
        handler.Start();

        var mirror = new byte[size];
        var cmd = path == DmirrorFaultPath.UnlockedTimeout ? HmmDmirrorCommand.ReadUnlocked : HmmDmirrorCommand.Read;
        Assert.AreEqual(expected, Cmd(f.Fd, cmd, ptr, npages, mirror, f.Task, out _));
        uffd.Dispose();
        Assert.IsTrue(handler.Join(TimeSpan.FromSeconds(30)));
        if (expected == Errno.None)
        {
            Assert.AreEqual(npages, Interlocked.Read(ref continued), "each page resolved with UFFDIO_CONTINUE");
            Assert.AreEqual(-1, mirror.AsSpan().IndexOfAnyExcept((byte)0x3C));
        }
        else
            Assert.AreEqual(0, Interlocked.Read(ref continued), "no message: handle_userfault returned SIGBUS");
    }
}

/// <summary>
/// The lock-drop series' <c>userfaultfd_timeout</c> (hmm-tests.c, "selftests/mm: add HMM tests for mmap lock-dropping
/// faults"): 4 anonymous pages registered MISSING and no handler; a thread closes the userfaultfd after 1.5 s while
/// HMM_DMIRROR_READ_UNLOCKED_TIMEOUT (HMM_RANGE_DEFAULT_TIMEOUT = 1 s) sleeps in <c>handle_userfault</c>.
/// </summary>
/// <remarks>
/// The series' v7 text asserts -EBUSY: v7's <c>hmm_range_fault_unlocked_timeout</c> fixes the deadline at entry, so the
/// fault that the close unblocks after 1.5 s finds it passed. v8, which <see cref="HmmFaults.HmmRangeFaultUnlockedTimeout"/>
/// models, restarts the deadline after a lock-dropping fault ("the fault handler made progress"): the refault, no longer
/// registered, maps a zero page and the read succeeds. The port runs the scenario and asserts the v8 outcome, plus that
/// the call really slept past the timeout (until the close).
/// </remarks>
[TestClass]
public sealed class UserfaultfdTimeoutTests
{
    [TestMethod(DisplayName = "hmm userfaultfd_timeout")]
    public void UserfaultfdTimeout()
    {
        using var f = new HmmFixture();
        const int npages = 4;
        ulong size = npages * PageSize;
        Assert.AreEqual(Errno.None, f.Mm.Userfaultfd(0, out var uffd));
        Assert.IsTrue(uffd!.Api(PluginMm.Userfaultfd.Uapi.UFFD_API, 0, out _, out _).Succeeded);
        ulong ptr = f.MmapAnon(size, Prot.Read | Prot.Write);
        Assert.IsTrue(uffd.Register(ptr, size, UffdModes.Missing, out _).Succeeded);
        var closer = new Thread(() =>
        {
            Thread.Sleep(1500); // close_args.delay_us = 1500 * 1000
            uffd.Dispose();
        }) { IsBackground = true };
        closer.Start();
        var mirror = new byte[size];
        mirror.AsSpan().Fill(0xEE);
        long t0 = Environment.TickCount64;
        var ret = Cmd(f.Fd, HmmDmirrorCommand.ReadUnlockedTimeout, ptr, npages, mirror, f.Task, out var cmd);
        long elapsed = Environment.TickCount64 - t0;
        Assert.IsTrue(closer.Join(TimeSpan.FromSeconds(30)));
        Assert.IsGreaterThanOrEqualTo(HmmFaults.RangeDefaultTimeoutMs, elapsed, "the read slept in handle_userfault until the close, past the 1 s timeout");
        // v8: the lock drop restarted the deadline; v7 (the selftest's text) would return -EBUSY here.
        Assert.AreEqual(Errno.None, ret);
        Assert.AreEqual((ulong)npages, cmd.CPages);
        Assert.AreEqual(-1, mirror.AsSpan().IndexOfAnyExcept((byte)0), "the unregistered refault mapped zero pages");
    }
}
