using HmmMirror;
using PluginMm.Hmm;
using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;
using static PluginMm.Hmm.Tests.HmmFixture;

namespace PluginMm.Hmm.Tests;

/// <summary>What a recording notifier saw, and a gate its hook can be held at.</summary>
internal sealed class Recorder
{
    public readonly List<(MmuNotifyEvent Event, ulong Start, ulong End, ulong Seq)> Calls = new();
    public ManualResetEventSlim? Gate;
    public ManualResetEventSlim Entered { get; } = new();

    public (MmuNotifyEvent Event, ulong Start, ulong End, ulong Seq)[] Snapshot()
    {
        lock (Calls) return Calls.ToArray();
    }
}

/// <summary>A hand-built notifier table that records each invalidation (and can be held inside the hook).</summary>
internal static unsafe class RecordingNotifier
{
    public static readonly MmuIntervalNotifierOps Ops = new("recording", &Invalidate);

    public static bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq)
    {
        var r = (Recorder)interval.Owner!;
        lock (r.Calls)
        {
            interval.SetSeq(curSeq);
            r.Calls.Add((range.Event, range.Start, range.End, curSeq));
        }
        // Held here, the invalidation stays in progress (after set_seq, as a driver still tearing down its mappings).
        r.Entered.Set();
        if (r.Gate is { } gate && !gate.Wait(TimeSpan.FromSeconds(30)))
            throw new TimeoutException("test gate never opened");
        return true;
    }
}

/// <summary>
/// The <c>mmu_interval_notifier</c> protocol (mm/mmu_notifier.c) and the invalidations the mm raises, plus the guarantee
/// HMM drivers rely on: an invalidation racing a device fault never leaves a stale device entry.
/// </summary>
[TestClass]
public sealed class IntervalNotifierTests
{
    private static (ModelKernel Kernel, Mm Mm, ModelTask Task) NewProcess()
    {
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var mm = kernel.CreateMm();
        return (kernel, mm, mm.CreateTask());
    }

    private static IntervalNotifier Subscribe(Mm mm, ulong start, ulong length, Recorder recorder)
    {
        Assert.AreEqual(Errno.None, IntervalNotifier.Insert(mm, start, length, RecordingNotifier.Ops, recorder, out var sub));
        return sub!;
    }

    [TestMethod(DisplayName = "hmm notifier: munmap, madvise, mprotect, mremap, fork, CoW and exit invalidate the range")]
    public void InvalidationSources()
    {
        var (kernel, mm, task) = NewProcess();
        const ulong len = 8 * PageSize;
        Assert.AreEqual(Errno.None, mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong a));
        CpuWrite(task, a, new byte[len]);
        var rec = new Recorder();
        Subscribe(mm, 0, ulong.MaxValue & ~(ulong)(PageSize - 1), rec);

        Assert.AreEqual(Errno.None, mm.Mprotect(a, len, Prot.Read | Prot.Write)); // unchanged: nothing to announce
        Assert.AreEqual(Errno.None, mm.Madvise(a, PageSize, Advice.DontNeed));
        Assert.AreEqual(Errno.None, mm.Mprotect(a + PageSize, PageSize, Prot.Read));
        Assert.AreEqual(Errno.None, mm.Munmap(a + 7 * PageSize, PageSize));
        var child = mm.Fork();
        CpuWrite(task, a + 2 * PageSize, new byte[] { 1 }); // CoW after fork
        Assert.AreEqual(Errno.None, mm.Mremap(a + 3 * PageSize, PageSize, PageSize, MremapFlags.MayMove | MremapFlags.Fixed, a + 64 * PageSize, out _));
        mm.Exit();
        child.Exit();

        var calls = rec.Snapshot();
        CollectionAssert.AreEqual(
            new[]
            {
                MmuNotifyEvent.Clear, MmuNotifyEvent.ProtectionVma, MmuNotifyEvent.Unmap,
                MmuNotifyEvent.ProtectionPage, MmuNotifyEvent.ProtectionPage, MmuNotifyEvent.ProtectionPage, // fork: one per VMA (mprotect split it in three)
                MmuNotifyEvent.Clear, MmuNotifyEvent.Unmap, MmuNotifyEvent.Release,
            },
            calls.Select(c => c.Event).ToArray(), string.Join(", ", calls));
        Assert.AreEqual((a, a + PageSize), (calls[0].Start, calls[0].End), "MADV_DONTNEED range");
        Assert.AreEqual((a + PageSize, a + 2 * PageSize), (calls[1].Start, calls[1].End), "mprotect range");
        Assert.AreEqual((a + 7 * PageSize, a + 8 * PageSize), (calls[2].Start, calls[2].End), "munmap range");
        Assert.AreEqual((a, a + 2 * PageSize + 5 * PageSize), (calls[3].Start, calls[5].End), "fork write-protects every private VMA");
        Assert.AreEqual((a + 2 * PageSize, a + 3 * PageSize), (calls[6].Start, calls[6].End), "CoW of one page");
        Assert.AreEqual((a + 3 * PageSize, a + 4 * PageSize), (calls[7].Start, calls[7].End), "mremap's old range");
        foreach (var c in calls)
            Assert.AreEqual(1UL, c.Seq & 1, "cur_seq is always odd");
        _ = kernel;
    }

    [TestMethod(DisplayName = "hmm notifier: only overlapping intervals are called")]
    public void OnlyOverlapping()
    {
        var (_, mm, task) = NewProcess();
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong a));
        var low = new Recorder();
        var high = new Recorder();
        Subscribe(mm, a, PageSize, low);
        Subscribe(mm, a + 2 * PageSize, 2 * PageSize, high);
        Assert.AreEqual(Errno.None, mm.Madvise(a + 3 * PageSize, PageSize, Advice.DontNeed));
        Assert.IsEmpty(low.Snapshot());
        Assert.HasCount(1, high.Snapshot());
        _ = task;
    }

    [TestMethod(DisplayName = "hmm notifier: an invalidation between hmm_range_fault and the commit makes read_retry true")]
    public void ReadRetryAfterInvalidation()
    {
        var (_, mm, task) = NewProcess();
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong a));
        var sub = Subscribe(mm, a, 4 * PageSize, new Recorder());
        var range = new HmmRange(4) { Notifier = sub, Start = a, End = a + 4 * PageSize, DefaultFlags = HmmPfn.ReqFault };
        range.NotifierSeq = sub.ReadBegin();
        mm.MmapLock.EnterReadLock();
        try { Assert.AreEqual(Errno.None, HmmFaults.HmmRangeFault(range, task)); }
        finally { mm.MmapLock.ExitReadLock(); }
        Assert.IsFalse(sub.ReadRetry(range.NotifierSeq));
        Assert.AreEqual(Errno.None, mm.Madvise(a, PageSize, Advice.DontNeed));
        Assert.IsTrue(sub.ReadRetry(range.NotifierSeq), "the pfns are stale: the driver must not use them");
        Assert.IsTrue(sub.CheckRetry(range.NotifierSeq));
        mm.MmapLock.EnterReadLock();
        try { Assert.AreEqual(Errno.EBUSY, HmmFaults.HmmRangeFault(range, task), "hmm_range_fault checks the sequence first"); }
        finally { mm.MmapLock.ExitReadLock(); }
    }

    [TestMethod(DisplayName = "hmm notifier: read_begin waits while an invalidation of the range runs; inserts and removes are deferred")]
    public void ReadBeginWaitsAndDeferral()
    {
        var (_, mm, _) = NewProcess();
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong a));
        var held = new Recorder { Gate = new ManualResetEventSlim(false) };
        var sub = Subscribe(mm, a, 4 * PageSize, held);
        var other = new Recorder();
        var doomed = Subscribe(mm, a, PageSize, other);

        var invalidation = new Thread(() => mm.Madvise(a, PageSize, Advice.DontNeed)) { IsBackground = true };
        invalidation.Start();
        Assert.IsTrue(held.Entered.Wait(TimeSpan.FromSeconds(30)), "the invalidation never reached the hook");

        var subs = MmuNotifierSubscriptions.Of(mm)!;
        Assert.AreEqual(1UL, subs.InvalidateSeq & 1, "odd while invalidating");
        // A subscription inserted now is deferred and starts "invalidating"; its read_begin must wait too.
        Assert.AreEqual(Errno.None, IntervalNotifier.Insert(mm, a, PageSize, RecordingNotifier.Ops, new Recorder(), out var late));
        Assert.AreEqual(subs.InvalidateSeq, late!.InvalidateSeq);
        var reader = Task.Run(sub.ReadBegin);
        var lateReader = Task.Run(late.ReadBegin);
        var remover = Task.Run(doomed.Remove);
        Assert.IsFalse(Task.WaitAny(new Task[] { reader, lateReader, remover }, 200) >= 0, "read_begin / remove returned during the invalidation");

        held.Gate.Set();
        Assert.IsTrue(invalidation.Join(TimeSpan.FromSeconds(30)));
        Assert.IsTrue(Task.WaitAll(new Task[] { reader, lateReader, remover }, TimeSpan.FromSeconds(30)), "waiters were not woken");
        Assert.AreEqual(0UL, subs.InvalidateSeq & 1);
        Assert.AreEqual(held.Snapshot().Single().Seq, reader.Result, "read_begin returns the sequence the hook set (cur_seq, odd)");
        Assert.IsFalse(sub.ReadRetry(reader.Result), "no invalidation since read_begin");
        Assert.AreEqual(2, subs.Count, "the deferred insert and the deferred remove were both applied");
    }

    [TestMethod(DisplayName = "hmm notifier: insert errors (EOVERFLOW, EINVAL for a table without Invalidate)")]
    public unsafe void InsertErrors()
    {
        var (_, mm, _) = NewProcess();
        Assert.AreEqual(Errno.EOVERFLOW, IntervalNotifier.Insert(mm, 0x1000, 0, RecordingNotifier.Ops, null, out _));
        Assert.AreEqual(Errno.EOVERFLOW, IntervalNotifier.Insert(mm, ulong.MaxValue - 10, 0x1000, RecordingNotifier.Ops, null, out _));
        Assert.AreEqual(Errno.EINVAL, IntervalNotifier.Insert(mm, 0x1000, 0x1000, new MmuIntervalNotifierOps("empty", null), null, out var none));
        Assert.IsNull(none);
        Assert.AreEqual(Errno.None, IntervalNotifier.Insert(mm, 0x1000, 0x1000, RecordingNotifier.Ops, null, out var ok));
        ok!.Remove();
        ok.Remove(); // idempotent
        Assert.AreEqual(0, MmuNotifierSubscriptions.Of(mm)!.Count);
    }

    [TestMethod(DisplayName = "hmm notifier: an invalidation racing device faults never leaves a stale device entry")]
    public void RacingInvalidationLeavesNoStaleEntry()
    {
        using var f = new HmmFixture();
        const int npages = 16;
        ulong size = npages * PageSize;
        ulong ptr = f.MmapAnon(size, Prot.Read | Prot.Write);
        var cpu = f.Mm.CreateTask("cpu");
        for (int round = 0; round < 200; round++)
        {
            var zapper = new Thread(() =>
            {
                for (int p = 0; p < npages; p += 3)
                {
                    f.Mm.Madvise(ptr + (ulong)p * PageSize, PageSize, Advice.DontNeed);
                    cpu.Write(ptr + (ulong)p * PageSize, new byte[] { (byte)round });
                    if (p % 2 == 0)
                        f.Mm.Mprotect(ptr + (ulong)p * PageSize, PageSize, Prot.Read);
                    f.Mm.Mprotect(ptr + (ulong)p * PageSize, PageSize, Prot.Read | Prot.Write);
                }
            });
            zapper.Start();
            var mirror = new byte[size];
            var cmd = round % 2 == 0 ? HmmDmirrorCommand.Read : HmmDmirrorCommand.Write;
            var rc = Cmd(f.Fd, cmd, ptr, npages, mirror, f.Task, out _);
            // EPERM: a device write met a page the zapper had just made read-only.
            Assert.IsTrue(rc is Errno.None or Errno.EBUSY || (rc == Errno.EPERM && cmd == HmmDmirrorCommand.Write), $"round {round}: {rc}");
            Assert.IsTrue(zapper.Join(TimeSpan.FromSeconds(30)), "zapper hung");
            AssertNoStaleEntries(f, ptr, npages, round);
        }
    }

    /// <summary>Every device entry maps the folio the CPU maps at that address, writable only if the CPU entry is.</summary>
    private static void AssertNoStaleEntries(HmmFixture f, ulong ptr, int npages, int round)
    {
        for (int p = 0; p < npages; p++)
        {
            ulong addr = ptr + (ulong)p * PageSize;
            if (!f.Fd.TryGetDeviceEntry(addr, out var page, out bool writable))
                continue;
            var pte = f.Mm.PageTable.Get(addr);
            Assert.IsTrue(pte.IsPresent, $"round {round}, page {p}: device entry but no CPU mapping");
            var cpuPage = pte.IsZeroPage ? null : pte.Folio;
            if (cpuPage is not null)
                Assert.AreSame(cpuPage, page, $"round {round}, page {p}: the device maps a page the CPU no longer maps");
            if (writable)
                Assert.IsTrue(pte.IsWritable, $"round {round}, page {p}: the device may write a page the CPU has write-protected");
        }
    }
}

/// <summary>UFFDIO_WRITEPROTECT reaches mirrors too (<c>uffd_wp_range</c> → <c>change_protection</c> → notifier).</summary>
[TestClass]
public sealed class WriteProtectInvalidationTests
{
    [TestMethod(DisplayName = "hmm notifier: UFFDIO_WRITEPROTECT erases the device's writable entries")]
    public void WriteProtectInvalidates()
    {
        using var f = new HmmFixture();
        const int npages = 8;
        ulong size = npages * PageSize;
        ulong ptr = f.MmapAnon(size, Prot.Read | Prot.Write);
        Assert.AreEqual(Errno.None, f.Mm.Userfaultfd(0, out var uffd));
        Assert.IsTrue(uffd!.Api(PluginMm.Userfaultfd.Uapi.UFFD_API, 0, out _, out _).Succeeded);
        Assert.IsTrue(uffd.Register(ptr, size, UffdModes.Wp, out _).Succeeded);
        var data = Enumerable.Repeat((byte)0x77, (int)size).ToArray();
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Write, ptr, npages, data, f.Task, out _));
        Assert.IsTrue(f.Fd.TryGetDeviceEntry(ptr, out _, out bool writable) && writable);

        var rec = new Recorder();
        Assert.AreEqual(Errno.None, IntervalNotifier.Insert(f.Mm, ptr, size, RecordingNotifier.Ops, rec, out var sub));
        Assert.IsTrue(uffd.WriteProtect(ptr, size, PluginMm.Userfaultfd.UffdWriteProtectMode.Wp).Succeeded);
        Assert.AreEqual(0, f.Fd.DeviceEntries, "the device may no longer write what the CPU write-protected");
        Assert.IsTrue(rec.Snapshot().Any(c => c.Event == MmuNotifyEvent.ProtectionVma && c.Start <= ptr && c.End >= ptr + size),
            string.Join(", ", rec.Snapshot()));
        sub!.Remove();
        uffd.Dispose();
    }
}
