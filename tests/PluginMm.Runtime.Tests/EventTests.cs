using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Non-cooperative events and the SIGBUS feature: ports of uffd-unit-tests.c <c>events</c>, <c>events-wp</c>,
/// <c>sigbus</c>, <c>sigbus-wp</c> and <c>mmap-changing</c> over every memory type and both fault-path designs, plus
/// UNMAP, release while an event waits, and USER_MODE_ONLY against a kernel-mode fault (kernel-uffd.md §1 rows 18, 19, 22; §8).
/// </summary>
[TestClass]
public sealed class EventTests
{
    private const UffdFeatures WpFeatures = UffdFeatures.PagefaultFlagWp | UffdFeatures.WpHugetlbfsShmem;

    private static int Pages(string mem) => mem.StartsWith("hugetlb", StringComparison.Ordinal) ? 4 : 16;

    /// <summary>uffd_test_ops-&gt;release_pages for any mm: anon and hugetlb-private DONTNEED, shared memory REMOVE.</summary>
    private static Errno Release(UffdTestEnv env, Mm mm, ulong area)
        => mm.Madvise(area, env.Bytes, env.Config.IsAnon || env.Config.Name == "hugetlb-private" ? Advice.DontNeed : Advice.Remove);

    /// <summary>Reads page <paramref name="nr"/> at <paramref name="area"/>, checks it, writes its first word back (a WP trigger).</summary>
    private static AccessResult CheckAndWriteBack(UffdTestEnv env, ModelTask t, ulong area, int nr, out bool corrupt)
    {
        corrupt = false;
        var (r, data) = env.ReadPage(t, area, nr);
        if (r != AccessResult.Ok)
            return r;
        corrupt = !data.AsSpan().SequenceEqual(env.Expected(nr));
        return t.Write(area + (ulong)nr * (ulong)env.PageSize, data.AsSpan(0, 8));
    }

    private static void EventsCommon(string mem, bool wp)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, Pages(mem), design, UffdFeatures.EventFork | UffdFeatures.EventRemap
                | UffdFeatures.EventRemove | (wp ? WpFeatures : 0));
            env.RegisterDst(UffdModes.Missing | (wp ? UffdModes.Wp : 0));
            using var mon = new UffdMonitor(env, applyWp: wp);

            Mm? child = null;
            Issue4.Join(Issue4.Start(env.Mm.CreateTask("forker"), _ => child = env.Mm.Fork()), "fork with EVENT_FORK");
            // faulting_process(0) in the child.
            var proc = Issue4.Start(child!.CreateTask("faulting"), t =>
            {
                int split = (env.NrPages + 1) / 2, nr;
                for (nr = 0; nr < split; nr++)
                {
                    Assert.AreEqual(AccessResult.Ok, CheckAndWriteBack(env, t, env.Dst, nr, out var bad), $"page {nr}");
                    Assert.IsFalse(bad, $"nr {nr} memory corruption");
                }
                Assert.AreEqual(Errno.None, child.Mremap(env.Dst, env.Bytes, env.Bytes, MremapFlags.MayMove | MremapFlags.Fixed, env.Src, out var dst));
                Assert.AreEqual(env.Src, dst);
                for (; nr < env.NrPages; nr++)
                {
                    Assert.AreEqual(AccessResult.Ok, CheckAndWriteBack(env, t, dst, nr, out var bad), $"page {nr} after mremap");
                    Assert.IsFalse(bad, $"nr {nr} memory corruption after mremap");
                }
                Assert.AreEqual(Errno.None, Release(env, child, dst), "release_pages");
                for (nr = 0; nr < env.NrPages; nr++)
                {
                    var (r, data) = env.ReadPage(t, dst, nr);
                    Assert.AreEqual(AccessResult.Ok, r);
                    Assert.IsTrue(data.All(b => b == 0), $"page {nr} is not zero");
                }
            });
            Issue4.Join(proc, "faulting process");
            child.Exit();
            mon.Stop();
            mon.AssertClean();
            Assert.AreEqual(env.NrPages, mon.MissingFaults, $"Fault counts wrong ({design})");
            Assert.AreEqual(1, mon.Forks, "one FORK");
            Assert.AreEqual(1, mon.Remaps, "one REMAP");
            Assert.AreEqual(1, mon.Removes, "one REMOVE");
            if (wp)
                Assert.AreEqual(env.NrPages, mon.WpFaults, "every write-back of a COPY(WP) page is a WP fault");
        }
    }

    [TestMethod(DisplayName = "events")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void Events(string mem) => EventsCommon(mem, wp: false);

    [TestMethod(DisplayName = "events-wp")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void EventsWp(string mem) => EventsCommon(mem, wp: true);

    private static void SigbusCommon(string mem, bool wp)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, Pages(mem), design, UffdFeatures.SigBus | UffdFeatures.EventFork | (wp ? WpFeatures : 0));
            env.RegisterDst(UffdModes.Missing | (wp ? UffdModes.Wp : 0));
            ulong ps = (ulong)env.PageSize;
            int split = (env.NrPages + 1) / 2;

            // faulting_process(1): every first touch is SIGBUS (no message); the process copies the page itself and retries;
            // with WP the write-back is a second SIGBUS, resolved by unprotecting.
            int signalled = 0;
            for (int nr = 0; nr < split; nr++)
            {
                int steps = 1;
                while (true)
                {
                    var r = CheckAndWriteBack(env, env.Main, env.Dst, nr, out var bad);
                    if (r == AccessResult.Ok)
                    {
                        Assert.IsFalse(bad, $"nr {nr} memory corruption");
                        break;
                    }
                    Assert.AreEqual(AccessResult.SigBus, r, $"page {nr}");
                    if (steps == 1)
                    {
                        steps++;
                        var c = env.Uffd.Copy(env.DstPage(nr), env.SrcPage(nr), wp ? UffdCopyMode.Wp : UffdCopyMode.None);
                        Assert.IsTrue(c.Succeeded && c.Field == (long)ps, $"copy_page {nr}: {c}");
                        signalled++;
                    }
                    else
                    {
                        Assert.IsTrue(wp && steps == 2, $"Signal repeated on page {nr}");
                        steps++;
                        Assert.IsTrue(env.Uffd.WriteProtect(env.DstPage(nr), ps, UffdWriteProtectMode.None).Succeeded);
                    }
                }
            }
            Assert.AreEqual(split, signalled, "faulting process (signal_test 1)");
            Assert.AreEqual(0, env.Uffd.PendingCount, "SIGBUS mode queues no message");

            Assert.AreEqual(Errno.None, Release(env, env.Mm, env.Dst));
            using var mon = new UffdMonitor(env, applyWp: wp);
            Mm? child = null;
            Issue4.Join(Issue4.Start(env.Mm.CreateTask("forker"), _ => child = env.Mm.Fork()), "fork with EVENT_FORK");
            // faulting_process(2) in the child: released memory, SIGBUS on every access, and the monitor sees no userfault.
            var proc = Issue4.Start(child!.CreateTask("faulting"), t =>
            {
                for (int nr = 0; nr < split; nr++)
                    Assert.AreEqual(AccessResult.SigBus, env.ReadPage(t, env.Dst, nr).Result, $"child page {nr}");
            });
            Issue4.Join(proc, "faulting process (signal_test 2)");
            child!.Exit();
            mon.Stop();
            mon.AssertClean();
            Assert.AreEqual(1, mon.Forks, "the monitor followed the fork");
            Assert.AreEqual(0, mon.MissingFaults + mon.WpFaults + mon.MinorFaults, "Signal test failed, userfaults");
        }
    }

    [TestMethod(DisplayName = "sigbus")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void Sigbus(string mem) => SigbusCommon(mem, wp: false);

    [TestMethod(DisplayName = "sigbus-wp")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void SigbusWp(string mem) => SigbusCommon(mem, wp: true);

    [TestMethod(DisplayName = "mmap-changing")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void MmapChanging(string mem)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, 2, design, UffdFeatures.EventRemove | UffdFeatures.Move | UffdFeatures.Poison
                | UffdFeatures.MinorShmem | UffdFeatures.MinorHugetlbfs | WpFeatures);
            env.RegisterDst(UffdModes.Missing | UffdModes.Wp);
            ulong ps = (ulong)env.PageSize;
            // A thread parked in madvise: its REMOVE event waits to be read ('D' state in the selftest).
            Errno madv = Errno.EINVAL;
            var parked = Issue4.Start(env.Mm.CreateTask("madvise"), _ => madv = Release(env, env.Mm, env.Dst));
            Threads.WaitUntil(() => env.Uffd.PendingEventCount == 1, "the REMOVE event is queued");

            void Eagain(string name, UffdioResult r)
            {
                Assert.AreEqual(Errno.EAGAIN, r.Errno, $"{name} should have errno==EAGAIN");
                Assert.AreEqual(-(long)Errno.EAGAIN, r.Field, $"{name} should have been updated for -EAGAIN");
            }
            Eagain("UFFDIO_ZEROPAGE", env.Uffd.ZeroPage(env.Dst, ps, UffdZeroPageMode.None));
            Eagain("UFFDIO_COPY", env.Uffd.Copy(env.Dst, env.Expected(0), UffdCopyMode.None));
            Eagain("UFFDIO_MOVE", env.Uffd.Move(env.Dst, env.Src, ps, UffdMoveMode.None));
            Eagain("UFFDIO_POISON", env.Uffd.Poison(env.Dst, ps, UffdPoisonMode.None));
            Eagain("UFFDIO_CONTINUE", env.Uffd.Continue(env.Dst, ps, UffdContinueMode.None));
            Assert.AreEqual(Errno.EAGAIN, env.Uffd.WriteProtect(env.Dst, ps, UffdWriteProtectMode.Wp).Errno, "UFFDIO_WRITEPROTECT");
            Assert.IsTrue(parked.Thread.IsAlive, "madvise still waits for its event to be read");

            var r = env.Uffd.ReadOne(out var msg);
            Assert.IsTrue(r.Succeeded, r.ToString());
            Assert.AreEqual(UffdEvent.Remove, msg.Event);
            Assert.AreEqual(env.Dst, msg.RemoveStart);
            Assert.AreEqual(env.Dst + env.Bytes, msg.RemoveEnd);
            Issue4.Join(parked, "madvise after its event was read");
            Assert.AreEqual(Errno.None, madv);
            var c = env.Uffd.Copy(env.Dst, env.Expected(0), UffdCopyMode.None);
            Assert.IsTrue(c.Succeeded, $"COPY once mmap_changing is over: {c}");
        }
    }

    [TestMethod(DisplayName = "events: UNMAP is synchronous, and release aborts a waiting event")]
    [DataRow("anon")]
    [DataRow("shmem")]
    [DataRow("hugetlb")]
    public void UnmapEvent(string mem)
    {
        using var env = new UffdTestEnv(mem, 2, features: UffdFeatures.EventUnmap | UffdFeatures.EventFork);
        env.RegisterDst(UffdModes.Missing);
        var unmapper = Issue4.Start(env.Mm.CreateTask("munmap"), _ => Assert.AreEqual(Errno.None, env.Mm.Munmap(env.Dst, env.Bytes)));
        Threads.WaitUntil(() => env.Uffd.PendingEventCount == 1, "UNMAP queued");
        Assert.AreEqual(Errno.EAGAIN, env.Uffd.Copy(env.Dst, env.Expected(0), UffdCopyMode.None).Errno, "mmap_changing while UNMAP waits");
        Assert.AreEqual(PollResult.Readable, env.Uffd.Poll(0), "an event makes the fd readable");
        var r = env.Uffd.ReadOne(out var msg);
        Assert.IsTrue(r.Succeeded);
        Assert.AreEqual(UffdMsg.Remove(UffdEvent.Unmap, env.Dst, env.Dst + env.Bytes), msg);
        Issue4.Join(unmapper, "munmap");
        Assert.AreEqual(0, env.Mm.Vmas.Count(v => v.Intersects(env.Dst, env.Dst + env.Bytes)));

        // A FORK nobody reads: closing the userfaultfd aborts it, and the child's VMAs end up unregistered.
        Assert.IsTrue(env.Uffd.Register(env.Src, env.Bytes, UffdModes.Missing, out _).Succeeded);
        Mm? child = null;
        var forker = Issue4.Start(env.Mm.CreateTask("forker"), _ => child = env.Mm.Fork());
        Threads.WaitUntil(() => env.Uffd.PendingEventCount == 1, "FORK queued");
        env.Uffd.Dispose();
        Issue4.Join(forker, "fork after release");
        Assert.IsTrue(child!.Vmas.All(v => v.UffdCtx is null), "aborted FORK: child context torn down");
        child.Exit();
    }

    [TestMethod(DisplayName = "USER_MODE_ONLY: a kernel-mode fault on registered memory is SIGBUS (COPY source → EFAULT)")]
    [DataRow("anon")]
    [DataRow("shmem")]
    public void UserModeOnly(string mem)
    {
        using var env = new UffdTestEnv(mem, 2);
        Assert.IsTrue(env.Uffd.UserModeOnly);
        ulong ps = (ulong)env.PageSize;
        env.RegisterDst(UffdModes.Missing, ps);
        Assert.IsTrue(env.Uffd.Register(env.Src, env.Bytes, UffdModes.Missing, out _).Succeeded);
        Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Src, env.Bytes, env.Config.IsAnon ? Advice.DontNeed : Advice.Remove));
        // copy_from_user of the (now missing, registered) source is a kernel-mode fault: no message, EFAULT.
        var r = env.Uffd.Copy(env.Main, env.Dst, env.Src, ps, UffdCopyMode.None);
        Assert.AreEqual(Errno.EFAULT, r.Errno, r.ToString());
        Assert.AreEqual(-(long)Errno.EFAULT, r.Field);
        Assert.AreEqual(0, env.Uffd.PendingCount, "no userfault message for a kernel-mode fault");
    }
}
