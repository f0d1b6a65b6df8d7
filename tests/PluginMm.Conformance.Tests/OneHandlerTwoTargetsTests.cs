using System.Runtime.InteropServices;
using PluginMm.Runtime;
using PluginMm.Runtime.Linux;
using PluginMm.Samples.LazyRestore;
using PluginMm.Userfaultfd;

namespace PluginMm.Conformance;

/// <summary>
/// Issue 6 part 2: one handler, two targets. The LazyRestore page server (written against <see cref="IUserfaultfd"/>
/// only) restores the same snapshot unchanged on the real kernel and on the model; the deterministic counters (faults
/// and copies for a sequential guest without background prefetch) must agree.
/// </summary>
[TestClass]
public sealed unsafe class OneHandlerTwoTargetsTests
{
    private const int Pages = 512;
    private static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(30);

    private static byte[] MakeSnapshot(int page)
    {
        var snap = GC.AllocateArray<byte>(Pages * page, pinned: true);
        var words = MemoryMarshal.Cast<byte, ulong>(snap.AsSpan());
        for (int i = 0; i < words.Length; i++)
            words[i] = i / (page / 8) % 16 == 15 ? 0 : (ulong)i * 0x9E3779B97F4A7C15UL;
        return snap;
    }

    private static (RestoreStats Stats, long Mismatches) Host(PrefetchPolicy policy)
    {
        if (!HostUserfaultfd.TryOpen(UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec, UffdOpenPath.Auto, out var uffd, out var failure))
            Assert.Inconclusive(failure.Explanation);
        using var owner = uffd;
        int page = uffd.PageSize;
        var snap = MakeSnapshot(page);
        Assert.IsTrue(uffd.Api(Uapi.UFFD_API, UffdFeatures.None, out _, out _).Succeeded);
        using var region = HostMemory.MapAnonymous((nuint)snap.Length);
        Assert.IsTrue(uffd.Register(region.Start, (ulong)snap.Length, UffdModes.Missing, out _).Succeeded);
        fixed (byte* s = snap)
        {
            var server = new LazyPageServer(uffd, region.Start, snap.Length, s, policy, 64 * 1024);
            long mismatches = 0;
            var serving = Task.Factory.StartNew(server.Run, TaskCreationOptions.LongRunning);
            var guest = FaultingThread.Start("guest", () =>
            {
                for (int p = 0; p < Pages; p++)
                    mismatches += region.Span((ulong)(p * page), page).SequenceEqual(snap.AsSpan(p * page, page)) ? 0 : 1;
            });
            Finish(guest.Join, server, serving, uffd);
            return (server.Stats, mismatches);
        }
    }

    private static (RestoreStats Stats, long Mismatches) Model(PrefetchPolicy policy)
    {
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var mm = kernel.CreateMm();
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.O_NONBLOCK | Uapi.O_CLOEXEC, out var ctx));
        using var owner = ctx!;
        int page = ctx!.PageSize;
        var snap = MakeSnapshot(page);
        Assert.IsTrue(ctx.Api(Uapi.UFFD_API, UffdFeatures.None, out _, out _).Succeeded);
        Assert.AreEqual(Errno.None, mm.Mmap(0, (ulong)snap.Length, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong start));
        Assert.IsTrue(ctx.Register(start, (ulong)snap.Length, UffdModes.Missing, out _).Succeeded);
        fixed (byte* s = snap)
        {
            var server = new LazyPageServer(ctx, start, snap.Length, s, policy, 64 * 1024);
            long mismatches = 0;
            var serving = Task.Factory.StartNew(server.Run, TaskCreationOptions.LongRunning);
            var guest = mm.CreateTask("guest").Start(t =>
            {
                var buf = new byte[page];
                for (int p = 0; p < Pages; p++)
                {
                    var r = t.Read(start + (ulong)(p * page), buf);
                    mismatches += r == AccessResult.Ok && buf.AsSpan().SequenceEqual(snap.AsSpan(p * page, page)) ? 0 : 1;
                }
            });
            Finish(guest.Join, server, serving, ctx);
            return (server.Stats, mismatches);
        }
    }

    private static void Finish(Func<TimeSpan, bool> joinGuest, LazyPageServer server, Task<Errno> serving, IUserfaultfd uffd)
    {
        bool done = joinGuest(HangTimeout);
        server.Stop();
        if (!done)
        {
            uffd.Dispose();
            joinGuest(HangTimeout);
        }
        Assert.IsTrue(serving.Wait(HangTimeout), "the server did not stop");
        Assert.IsTrue(done, "the guest did not finish: restore hung");
        Assert.AreEqual(Errno.None, serving.Result, "server result");
        Assert.IsTrue(server.Complete, "every page resident");
    }

    [TestMethod(DisplayName = "LazyRestore handler runs unchanged on host and model (prefetch none, fixed)")]
    [DataRow(PrefetchPolicy.None)]
    [DataRow(PrefetchPolicy.Fixed)]
    public void SameHandlerBothTargets(PrefetchPolicy policy)
    {
        var host = Host(policy);
        var model = Model(policy);
        foreach (var (name, r) in new[] { ("host", host), ("model", model) })
        {
            Assert.AreEqual(0, r.Mismatches, $"{name}: pages differing from the snapshot");
            Assert.AreEqual((long)Pages * Environment.SystemPageSize, r.Stats.BytesCopied, $"{name}: bytes copied");
            Assert.AreEqual(0, r.Stats.StaleFaults, $"{name}: a sequential guest without background prefetch sees no stale fault");
        }
        long expectedFaults = policy == PrefetchPolicy.None ? Pages : Pages / (64 * 1024 / Environment.SystemPageSize);
        Assert.AreEqual(expectedFaults, host.Stats.Faults, "host faults");
        Assert.AreEqual(host.Stats.Faults, model.Stats.Faults, "faults: model vs host");
        Assert.AreEqual(host.Stats.CopyIoctls, model.Stats.CopyIoctls, "UFFDIO_COPY calls: model vs host");
        Assert.AreEqual(host.Stats.PrefetchedPages, model.Stats.PrefetchedPages, "prefetched pages: model vs host");
    }

    [TestMethod(DisplayName = "LazyRestore handler with adaptive (CRIU) prefetch restores every byte on host and model")]
    public void AdaptiveBothTargets()
    {
        foreach (var (name, r) in new[] { ("host", Host(PrefetchPolicy.Adaptive)), ("model", Model(PrefetchPolicy.Adaptive)) })
        {
            Assert.AreEqual(0, r.Mismatches, $"{name}: pages differing from the snapshot");
            Assert.AreEqual((long)Pages * Environment.SystemPageSize, r.Stats.BytesCopied, $"{name}: bytes copied");
            Assert.AreEqual(Pages, r.Stats.Faults - r.Stats.StaleFaults + r.Stats.PrefetchedPages, $"{name}: every page copied once, for a fault or as a prefetch");
        }
    }
}
