using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>Message queue, wake-up, poll and COPY details of the userfaultfd context (fs/userfaultfd.c, mm/userfaultfd.c).</summary>
[TestClass]
public sealed class UffdCtxTests
{
    private static Thread FaultOn(UffdTestEnv env, ulong addr, bool write, out Func<AccessResult> result, string name = "faulter")
    {
        AccessResult r = (AccessResult)(-1);
        result = () => r;
        return env.Mm.CreateTask(name).RunChecked(t => r = write ? t.WriteUInt64(addr, 0x99) : t.ReadUInt64(addr, out _));
    }

    [TestMethod(DisplayName = "uffd: messages are read oldest first, in batches, with WRITE and EXACT_ADDRESS")]
    public void QueueOrderAndFlags()
    {
        using var env = new UffdTestEnv("anon", nrPages: 4, features: UffdFeatures.ExactAddress | UffdFeatures.ThreadId);
        env.RegisterDst(UffdModes.Missing);
        var t1 = FaultOn(env, env.DstPage(2) + 24, write: true, out var r1, "first");
        Threads.WaitUntil(() => env.Uffd.WaitingCount == 1, "first fault queued");
        var t2 = FaultOn(env, env.DstPage(0) + 8, write: false, out var r2, "second");
        Threads.WaitUntil(() => env.Uffd.WaitingCount == 2, "second fault queued");
        Assert.AreEqual(PollResult.Readable, env.Uffd.Poll(0));
        var buf = new UffdMsg[4];
        var r = env.Uffd.Read(buf);
        Assert.AreEqual(2, r.Field, "both messages in one read");
        Assert.AreEqual(env.DstPage(2) + 24, buf[0].PagefaultAddress, "oldest first; EXACT_ADDRESS keeps the offset");
        Assert.AreEqual(UffdPagefaultFlags.Write, buf[0].PagefaultFlags);
        Assert.AreEqual(env.DstPage(0) + 8, buf[1].PagefaultAddress);
        Assert.AreEqual(UffdPagefaultFlags.None, buf[1].PagefaultFlags);
        Assert.AreNotEqual(buf[0].PagefaultPtid, buf[1].PagefaultPtid);
        Assert.AreEqual(PollResult.Timeout, env.Uffd.Poll(0), "read messages are no longer pending");
        Assert.AreEqual(2, env.Uffd.WaitingCount, "but their tasks still wait");
        // A page-aligned WAKE range matches the exact addresses.
        Assert.IsTrue(env.Uffd.Copy(env.DstPage(2), env.Expected(2), UffdCopyMode.None).Succeeded);
        Threads.JoinOrFail(t1, "first");
        Assert.AreEqual(AccessResult.Ok, r1());
        Assert.IsTrue(env.Uffd.ZeroPage(env.DstPage(0), (ulong)env.PageSize, UffdZeroPageMode.None).Succeeded);
        Threads.JoinOrFail(t2, "second");
        Assert.AreEqual(AccessResult.Ok, r2());
        Assert.AreEqual(AccessResult.Ok, env.Main.ReadUInt64(env.DstPage(2) + 24, out var v));
        Assert.AreEqual(0x99UL, v, "the write landed after the COPY");
    }

    [TestMethod(DisplayName = "uffd: COPY with DONTWAKE leaves the faulter asleep until UFFDIO_WAKE")]
    public void DontWake()
    {
        using var env = new UffdTestEnv("shmem", nrPages: 2);
        env.RegisterDst(UffdModes.Missing);
        var th = FaultOn(env, env.DstPage(1), write: false, out var res);
        Threads.WaitUntil(() => env.Uffd.WaitingCount == 1, "fault queued");
        Assert.IsTrue(env.Uffd.ReadOne(out _).Succeeded);
        var c = env.Uffd.Copy(env.DstPage(1), env.Expected(1), UffdCopyMode.DontWake);
        Assert.IsTrue(c.Succeeded, c.ToString());
        Assert.IsFalse(th.Join(200), "DONTWAKE: the task stays asleep although the page is there");
        Assert.AreEqual(1, env.Uffd.WaitingCount);
        Assert.IsTrue(env.Uffd.Wake(env.DstPage(0), (ulong)env.PageSize).Succeeded);
        Assert.AreEqual(1, env.Uffd.WaitingCount, "a WAKE of another range does not match");
        Assert.IsTrue(env.Uffd.Wake(env.DstPage(1), (ulong)env.PageSize).Succeeded);
        Threads.JoinOrFail(th, "woken faulter");
        Assert.AreEqual(AccessResult.Ok, res());
    }

    [TestMethod(DisplayName = "uffd: a WAKE without resolving makes the task fault again with a new message")]
    public void WakeWithoutResolve()
    {
        using var env = new UffdTestEnv("hugetlb", nrPages: 1);
        env.RegisterDst(UffdModes.Missing);
        var th = FaultOn(env, env.DstPage(0) + 4096, write: false, out var res);
        Threads.WaitUntil(() => env.Uffd.WaitingCount == 1, "fault queued");
        Assert.IsTrue(env.Uffd.ReadOne(out var m1).Succeeded);
        Assert.AreEqual(env.DstPage(0), m1.PagefaultAddress, "hugetlb reports the huge-page-aligned address");
        Assert.IsTrue(env.Uffd.Wake(env.DstPage(0), (ulong)env.PageSize).Succeeded);
        Threads.WaitUntil(() => env.Uffd.PendingCount == 1, "the task faulted again");
        Assert.IsTrue(env.Uffd.ReadOne(out var m2).Succeeded);
        Assert.AreEqual(m1, m2);
        Assert.IsTrue(env.Uffd.Copy(env.DstPage(0), env.Expected(0), UffdCopyMode.None).Succeeded);
        Threads.JoinOrFail(th, "refaulted task");
        Assert.AreEqual(AccessResult.Ok, res());
    }

    [TestMethod(DisplayName = "uffd: COPY from a user source that is not mapped takes the drop-locks-and-retry path")]
    [DataRow("anon")]
    [DataRow("shmem")]
    [DataRow("hugetlb")]
    public void CopyRetryPath(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2);
        env.RegisterDst(UffdModes.Missing);
        // Make the source not resident in the page tables: zap it. anon: its contents are gone, so refill through a
        // shared alias is impossible; use a fresh source whose first touch is the COPY's own fault-in.
        ulong src = env.Src;
        byte[] expected;
        if (env.Config.IsAnon)
        {
            Assert.AreEqual(Errno.None, env.Mm.Madvise(src, env.Bytes, Advice.DontNeed));
            expected = new byte[env.PageSize];
        }
        else
        {
            expected = env.SrcPage(1);
            Assert.AreEqual(Errno.None, env.Mm.Madvise(src, env.Bytes, Advice.DontNeed)); // page cache keeps the data
        }
        ulong srcPage = src + (ulong)env.PageSize;
        Assert.IsTrue(env.Mm.PageTable.Get(srcPage).IsNone, "source not mapped: the atomic copy must fail");
        long faults = env.Main.Faults;
        var r = env.Uffd.Copy(env.Main, env.DstPage(1), srcPage, (ulong)env.PageSize, UffdCopyMode.None);
        Assert.IsTrue(r.Succeeded, r.ToString());
        Assert.AreEqual(env.PageSize, r.Field);
        Assert.IsTrue(env.Main.Faults > faults, "the source was faulted in with the locks dropped");
        Assert.IsFalse(env.Mm.PageTable.Get(srcPage).IsNone);
        var (res, data) = env.ReadPage(env.Main, env.Dst, 1);
        Assert.AreEqual(AccessResult.Ok, res);
        CollectionAssert.AreEqual(expected, data);
        // A resident source copies atomically (no new fault).
        faults = env.Main.Faults;
        Assert.IsTrue(env.Uffd.Copy(env.Main, env.DstPage(0), srcPage, (ulong)env.PageSize, UffdCopyMode.None).Succeeded);
        Assert.AreEqual(faults, env.Main.Faults);
    }

    [TestMethod(DisplayName = "uffd: UNREGISTER wakes MISSING waiters, which then fault as unregistered memory")]
    public void UnregisterWakes()
    {
        using var env = new UffdTestEnv("shmem", nrPages: 2);
        env.RegisterDst(UffdModes.Missing);
        var th = FaultOn(env, env.DstPage(0), write: false, out var res);
        Threads.WaitUntil(() => env.Uffd.WaitingCount == 1, "fault queued");
        Assert.IsTrue(env.Uffd.Unregister(env.Dst, env.Bytes).Succeeded);
        Threads.JoinOrFail(th, "task woken by unregister");
        Assert.AreEqual(AccessResult.Ok, res());
        Assert.AreEqual(1, env.DstFile!.CachedFolios, "shmem's own fault filled the page");
    }

    [TestMethod(DisplayName = "uffd: a fault that may not drop the lock gets SIGBUS (no ALLOW_RETRY), RETRY_NOWAIT does not queue")]
    public void FaultFlagsAtTheHookPoint()
    {
        using var env = new UffdTestEnv("anon", nrPages: 1);
        env.RegisterDst(UffdModes.Missing);
        var t = env.Mm.CreateTask("remote");
        env.Mm.MmapLock.EnterReadLock();
        var vma = env.Mm.VmaLookup(env.Dst)!;
        var r = env.Mm.HandleMmFault(vma, env.Dst, FaultFlags.Remote, t);
        Assert.AreEqual(VmFaultResult.SigBus, r, "handle_userfault without FAULT_FLAG_ALLOW_RETRY");
        r = env.Mm.HandleMmFault(vma, env.Dst, FaultFlags.UserDefault | FaultFlags.RetryNoWait, t);
        Assert.AreEqual(VmFaultResult.Retry, r);
        Assert.IsTrue(env.Mm.MmapLock.IsReadLockHeld, "RETRY_NOWAIT keeps the mmap lock");
        env.Mm.MmapLock.ExitReadLock();
        Assert.AreEqual(0, env.Uffd.PendingCount);
        // A kernel-mode fault (no FAULT_FLAG_USER) on a USER_MODE_ONLY uffd: SIGBUS, so copy_from_user fails with EFAULT.
        var c = env.Uffd.Copy(env.Main, env.Src, env.Dst, (ulong)env.PageSize, UffdCopyMode.None);
        Assert.AreEqual(Errno.ENOENT, c.Errno, "the destination (area_src) is not registered");
        env.Uffd.Dispose();
        Assert.AreEqual(Errno.None, env.Mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u2));
        using (u2)
        {
            Assert.IsTrue(u2!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
            Assert.IsTrue(u2.Register(env.Dst, env.Bytes, UffdModes.Missing, out _).Succeeded);
            Assert.IsTrue(u2.Register(env.Src, env.Bytes, UffdModes.Missing, out _).Succeeded);
            Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Src, env.Bytes, Advice.DontNeed));
            var e = u2.Copy(env.Main, env.Dst, env.Src, (ulong)env.PageSize, UffdCopyMode.None);
            Assert.AreEqual(Errno.EFAULT, e.Errno, "the source fault is kernel-mode on a USER_MODE_ONLY uffd");
            Assert.AreEqual(0, u2.PendingCount);
        }
    }
}
