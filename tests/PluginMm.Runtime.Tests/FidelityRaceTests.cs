using PluginMm.Backends;
using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Issue 11 part 3: races found by reading the model against the kernel. Each test forces its interleaving with a lock
/// held by the test or a blocking backend hook (no sleeps), and failed on the model before the fix.
/// </summary>
[TestClass]
public sealed unsafe class FidelityRaceTests
{
    /// <summary>
    /// The kernel's first copy in <c>mfill_atomic_pte_copy</c> runs with page faults disabled and takes no lock on the
    /// source mm, so a COPY whose source is in another process never waits for that process's mmap lock while it holds the
    /// destination's. The model took a blocking read lock on the source mm under the destination's read lock: with a writer
    /// on the source mm that in turn wants the destination's lock, both hang. Forced here: the test holds the source mm's
    /// write lock, waits until the COPY queues for it, and then must be able to take the destination mm's write lock.
    /// </summary>
    [TestMethod(DisplayName = "race: cross-mm COPY waits for the source mm without holding the destination's mmap lock")]
    public void CrossMmCopyDoesNotHoldDestinationLock()
    {
        using var env = new UffdTestEnv("anon", nrPages: 1);
        env.RegisterDst(UffdModes.Missing);
        var smm = env.Kernel.CreateMm();
        Assert.AreEqual(Errno.None, smm.Mmap(0, Folio.BasePageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var src));
        var handler = smm.CreateTask("handler");
        var data = env.Expected(0);
        Assert.AreEqual(AccessResult.Ok, handler.Write(src, data));

        UffdioResult result = default;
        Thread copier;
        smm.MmapLock.EnterWriteLock();
        bool dstLockFree;
        try
        {
            copier = new Thread(() => result = env.Uffd.Copy(handler, env.Dst, src, Folio.BasePageSize, UffdCopyMode.None)) { IsBackground = true };
            copier.Start();
            Threads.WaitUntil(() => smm.MmapLock.WaitingReadCount > 0, "the COPY waits for the source mm's lock");
            dstLockFree = env.Mm.MmapLock.TryEnterWriteLock(0);
            if (dstLockFree)
                env.Mm.MmapLock.ExitWriteLock();
        }
        finally { smm.MmapLock.ExitWriteLock(); }
        Threads.JoinOrFail(copier, "COPY");
        Assert.IsTrue(dstLockFree, "the COPY held the destination mm's mmap lock while waiting for the source mm's (lock-order deadlock)");
        Assert.AreEqual(Errno.None, result.Errno, result.ToString());
        var (r, got) = env.ReadPage(env.Main, env.Dst, 0);
        Assert.AreEqual(AccessResult.Ok, r);
        CollectionAssert.AreEqual(data, got);
    }

    private sealed class HookFailure : Exception
    {
        public HookFailure() : base("backend hook failed on purpose") { }
    }

    private static VmFaultResult ThrowingFault(ref VmFault vmf) => throw new HookFailure();

    private static MemoryTypeOps Throwing() => new(
        "throwing", Backing.PageCache, UffdModes.Missing | UffdModes.Minor,
        new VmOperations(&ThrowingFault),
        new VmUffdOps(&Shmem.CanUserfault, &Shmem.GetFolioNoAlloc, &Shmem.AllocFolio, &Shmem.FilemapAdd, &Shmem.FilemapRemove));

    /// <summary>
    /// A backend hook that throws inside the fault path: the faulting task gets SIGBUS, the exception is reported on the
    /// kernel (<see cref="ModelKernel.HookExceptions"/>), the mmap lock is released (a later munmap from another task
    /// completes), and the CoW folio allocated before <c>-&gt;fault</c> is freed. The model let the exception escape with
    /// the mmap read lock held, so every later mmap-lock writer hung.
    /// </summary>
    [TestMethod(DisplayName = "a throwing Fault hook: SIGBUS, reported, locks released, nothing leaked")]
    [DataRow(true, false)]
    [DataRow(false, false)]
    [DataRow(false, true)]
    public void ThrowingHookIsContained(bool shared, bool write)
    {
        var alloc = new PageAllocator();
        var k = new ModelKernel([Anonymous.Ops, Throwing()], new ModelOptions { Allocator = alloc });
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, k.MemfdCreate("throwing", 2 * Folio.BasePageSize, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Folio.BasePageSize, Prot.Read | Prot.Write, shared ? MapFlags.Shared : MapFlags.Private, f, 0, out var mem));
        var t = mm.CreateTask("faulter");
        AccessResult r = AccessResult.Ok;
        Exception? escaped = null;
        var th = new Thread(() =>
        {
            try { r = write ? t.WriteUInt64(mem, 1) : t.ReadUInt64(mem, out _); }
            catch (Exception e) { escaped = e; }
        }) { IsBackground = true };
        th.Start();
        Threads.JoinOrFail(th, "faulting task");
        Assert.IsNull(escaped, $"the hook's exception escaped the fault path: {escaped}");
        Assert.AreEqual(AccessResult.SigBus, r);
        Assert.IsTrue(k.HookExceptions.Any(e => e is HookFailure), "the exception is reported");
        Errno unmapped = Errno.EINVAL;
        var other = mm.CreateTask("munmap").RunChecked(_ => unmapped = mm.Munmap(mem, 2 * Folio.BasePageSize));
        Threads.JoinOrFail(other, "munmap after the failed fault (mmap lock left held?)");
        Assert.AreEqual(Errno.None, unmapped);
        f!.Release();
        Assert.AreEqual(0, alloc.LivePages, "no folio leaked");
    }

    private static readonly ManualResetEventSlim s_allocReached = new(false), s_allocGate = new(true);

    private static Folio? GatedAlloc(in VmaView vma, ulong address)
    {
        s_allocReached.Set();
        s_allocGate.Wait();
        return Shmem.AllocFolio(in vma, address);
    }

    private static MemoryTypeOps Gated() => new(
        "gated", Backing.PageCache, UffdModes.Missing | UffdModes.Minor | UffdModes.Wp,
        new VmOperations(&Shmem.Fault),
        new VmUffdOps(&Shmem.CanUserfault, &Shmem.GetFolioNoAlloc, &GatedAlloc, &Shmem.FilemapAdd, &Shmem.FilemapRemove));

    /// <summary>
    /// <c>mmap_changing</c> without <c>map_changing_lock</c>: a COPY that checked <c>mmap_changing</c> before MADV_DONTNEED
    /// raised it could still be in flight when the handler read the REMOVE event and the zap ran, and land after the zap.
    /// With the lock (fs/userfaultfd.c <c>userfaultfd_remove</c>: <c>down_write(&amp;ctx-&gt;map_changing_lock)</c> around the
    /// increment; <c>mfill_atomic</c> holds it for reading) the REMOVE cannot be raised while the COPY is in flight. Forced:
    /// the COPY blocks in its backend's AllocFolio; the madvise either queues REMOVE (old model: the test reads it, the zap
    /// runs, then the COPY is released and lands after the zap) or waits for the lock (then the COPY lands first and the zap
    /// removes it). Either way the page must be gone once both returned.
    /// </summary>
    [TestMethod(DisplayName = "race: COPY in flight vs MADV_DONTNEED with EVENT_REMOVE (map_changing_lock)")]
    public void CopyInFlightVsRemoveEvent()
    {
        var k = new ModelKernel([Anonymous.Ops, Gated()]);
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, k.MemfdCreate("gated", Folio.BasePageSize, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, Folio.BasePageSize, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var mem));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY, out var u));
        using var uffd = u!;
        Assert.IsTrue(uffd.Api(Uapi.UFFD_API, UffdFeatures.EventRemove | UffdFeatures.MissingShmem, out _, out _).Succeeded);
        Assert.IsTrue(uffd.Register(mem, Folio.BasePageSize, UffdModes.Missing, out _).Succeeded);
        s_allocReached.Reset();
        s_allocGate.Reset();
        UffdioResult copy = default;
        Errno advised = Errno.EINVAL;
        Thread copier, advisor;
        try
        {
            copier = new Thread(() => copy = uffd.Copy(mem, new byte[Folio.BasePageSize], UffdCopyMode.None)) { IsBackground = true };
            copier.Start();
            Assert.IsTrue(s_allocReached.Wait(Threads.HangGuard), "the COPY reached its AllocFolio");
            advisor = mm.CreateTask("madvise").RunChecked(_ => advised = mm.Madvise(mem, Folio.BasePageSize, Advice.DontNeed));
            Threads.WaitUntil(() => uffd.PendingEventCount > 0 || uffd.MapChangingLock.WaitingWriteCount > 0, "madvise raised REMOVE or waits for the COPY");
            if (uffd.PendingEventCount > 0)
            {
                FidelityUffdTests.DrainEvents(uffd, advisor); // REMOVE read and zapped while the COPY is still in flight
                s_allocGate.Set();
            }
            else
            {
                s_allocGate.Set();
                FidelityUffdTests.DrainEvents(uffd, advisor);
            }
        }
        finally { s_allocGate.Set(); }
        Threads.JoinOrFail(copier, "COPY");
        Threads.JoinOrFail(advisor, "madvise");
        Assert.AreEqual(Errno.None, copy.Errno, copy.ToString());
        Assert.AreEqual(Errno.None, advised);
        Assert.AreEqual(PagemapFlags.None, mm.Pagemap(mem) & PagemapFlags.Present, "the COPY landed after the zap of the REMOVE the handler read");
    }

    /// <summary>
    /// madvise after <c>userfaultfd_remove</c> dropped the mmap lock: the kernel's <c>madvise_walk_vmas</c> finds the next
    /// VMA again (<c>find_vma</c>); the model walked a list taken before, so a VMA unmapped meanwhile still got a REMOVE
    /// event and "advice", and the call returned 0. Forced: while the first VMA's REMOVE waits to be read, the test unmaps
    /// the second VMA; then only one REMOVE may come and madvise returns ENOMEM (nothing mapped after the first VMA).
    /// </summary>
    [TestMethod(DisplayName = "race: madvise re-finds VMAs after userfaultfd_remove dropped the lock")]
    public void MadviseRefindsVmasAfterRemoveEvent()
    {
        using var env = new UffdTestEnv("anon", nrPages: 4, features: UffdFeatures.EventRemove);
        ulong half = env.Bytes / 2;
        Assert.IsTrue(env.Uffd.Register(env.Dst, half, UffdModes.Missing, out _).Succeeded);
        Assert.IsTrue(env.Uffd.Register(env.Dst + half, half, UffdModes.Missing | UffdModes.Wp, out _).Succeeded);
        Assert.IsTrue(env.Mm.Vmas.All(v => v.End <= env.Dst + env.Bytes), "nothing is mapped after the area");
        Errno advised = Errno.None;
        var m = env.Mm.CreateTask("madvise").RunChecked(_ => advised = env.Mm.Madvise(env.Dst, env.Bytes, Advice.DontNeed));
        Threads.WaitUntil(() => env.Uffd.PendingEventCount == 1, "the first VMA's REMOVE is queued (mmap lock dropped)");
        Assert.AreEqual(Errno.None, env.Mm.Munmap(env.Dst + half, half), "unmap the second VMA meanwhile");
        var msgs = FidelityUffdTests.DrainEvents(env.Uffd, m);
        Threads.JoinOrFail(m, "madvise");
        Assert.AreEqual(1, msgs.Count, string.Join("; ", msgs));
        Assert.AreEqual(env.Dst, msgs[0].RemoveStart);
        Assert.AreEqual(env.Dst + half, msgs[0].RemoveEnd);
        Assert.AreEqual(Errno.ENOMEM, advised, "the rest of the range is no longer mapped");
    }
}
