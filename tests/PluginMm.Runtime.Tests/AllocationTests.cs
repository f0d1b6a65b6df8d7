using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// The fault path allocates nothing where the kernel's allocates nothing: an access to a resident page, an unarmed fault
/// that maps the zero page or an already cached folio, and an armed fault that the pre-check lets through to a cached
/// folio. Measured with <see cref="GC.GetAllocatedBytesForCurrentThread"/> on the accessing thread, after warm-up
/// rounds (JIT tiers, the reader-writer locks' per-thread records, the page tables themselves).
/// </summary>
[TestClass]
public sealed class AllocationTests
{
    private const int Rounds = 200;

    /// <summary>
    /// Warm-up rounds before measuring: more than the tiered JIT's call-count threshold (30), so that the paths are
    /// compiled at their final tier and one-time per-thread records (ReaderWriterLockSlim's) exist before counting.
    /// </summary>
    private const int WarmUp = 64;

    private static long Measure(Action body)
    {
        for (int i = 0; i < WarmUp; i++)
            body();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Rounds; i++)
            body();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [TestMethod(DisplayName = "an access to a resident page allocates nothing")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void ResidentAccess(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, openUffd: false);
        var t = env.Main;
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(env.DstPage(1) + 64, 1));
        long bytes = Measure(() =>
        {
            t.WriteUInt64(env.DstPage(1) + 64, 2);
            t.ReadUInt64(env.DstPage(1) + 64, out _);
        });
        Assert.AreEqual(0, bytes, $"{bytes} bytes allocated by {Rounds} resident accesses");
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(env.DstPage(1) + 64, out var v));
        Assert.AreEqual(2UL, v);
    }

    [TestMethod(DisplayName = "an unarmed fault allocates nothing (zero page, cached folio)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void UnarmedFault(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, openUffd: false);
        var t = env.Main;
        // anon: every round is a read fault on an empty entry that maps the zero page. File types: the folio is cached,
        // so every round is a fault that maps it (fault-around included). hugetlb-private: the faulted huge page is
        // anonymous and DONTNEED frees it, so it re-allocates by design; read the file through a shared mapping instead.
        ulong addr = env.DstPage(0) + 128;
        if (mem == "hugetlb-private")
        {
            Assert.AreEqual(Errno.None, env.Mm.Mmap(0, env.Bytes, Prot.Read | Prot.Write, MapFlags.Shared, env.DstFile, 0, out var shared));
            addr = shared + 128;
        }
        if (!env.Config.IsAnon)
            Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(addr, 5));
        long faultsBefore = t.Faults;
        ulong page = addr & ~((ulong)env.PageSize - 1);
        long bytes = 0;
        for (int i = 0; i < WarmUp + Rounds; i++)
        {
            Assert.AreEqual(Errno.None, env.Mm.Madvise(page, (ulong)env.PageSize, Advice.DontNeed));
            long b0 = GC.GetAllocatedBytesForCurrentThread();
            var r = t.ReadUInt64(addr, out _);
            long b1 = GC.GetAllocatedBytesForCurrentThread();
            Assert.AreEqual(AccessResult.Ok, r);
            if (i >= WarmUp) bytes += b1 - b0;
        }
        Assert.AreEqual(WarmUp + Rounds, t.Faults - faultsBefore, "each round took a fault");
        Assert.AreEqual(0, bytes, $"{bytes} bytes allocated by {Rounds} unarmed faults");
    }

    [TestMethod(DisplayName = "an armed fault the pre-check lets through to a cached folio allocates nothing")]
    [DataRow("shmem")]
    [DataRow("hugetlb")]
    public void ArmedButCached(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2);
        var t = env.Main;
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(env.DstAlias + 8, 9));
        env.RegisterDst(UffdModes.Missing);
        long bytes = 0;
        for (int i = 0; i < WarmUp + Rounds; i++)
        {
            Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst, (ulong)env.PageSize, Advice.DontNeed));
            long b0 = GC.GetAllocatedBytesForCurrentThread();
            var r = t.ReadUInt64(env.Dst + 8, out var v);
            long b1 = GC.GetAllocatedBytesForCurrentThread();
            Assert.AreEqual(AccessResult.Ok, r);
            Assert.AreEqual(9UL, v);
            if (i >= WarmUp) bytes += b1 - b0;
        }
        Assert.AreEqual(0, bytes, $"{bytes} bytes allocated by {Rounds} armed, non-trapping faults");
        Assert.AreEqual(0, env.Uffd.PendingCount);
    }
}
