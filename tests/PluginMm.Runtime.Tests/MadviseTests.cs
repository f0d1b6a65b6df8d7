using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>madvise's VMA checks (mm/madvise.c: madvise_dontneed_free_valid_vma, madvise_remove) and their order against
/// userfaultfd_remove: a refused madvise raises no REMOVE event.</summary>
[TestClass]
public sealed class MadviseTests
{
    [TestMethod(DisplayName = "MADV_DONTNEED on hugetlb rounds the end down to a huge page")]
    public void HugetlbDontNeedRoundsEndDown()
    {
        using var env = new UffdTestEnv("hugetlb-private", nrPages: 2, openUffd: false);
        var t = env.Main;
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(env.DstPage(0), 0xAA));
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(env.DstPage(1), 0xBB));
        // One huge page and one base page: the kernel frees only the whole huge page (no EINVAL, no data loss).
        Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst, (ulong)env.PageSize + Folio.BasePageSize, Advice.DontNeed));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(env.DstPage(0), out var v0));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(env.DstPage(1), out var v1));
        Assert.AreEqual(0UL, v0, "the first huge page was zapped (private: refaults from the empty file)");
        Assert.AreEqual(0xBBUL, v1, "the partly covered huge page was kept");
        // Shorter than one huge page: nothing to do, and no error.
        Assert.AreEqual(Errno.None, env.Mm.Madvise(env.DstPage(1), Folio.BasePageSize, Advice.DontNeed));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(env.DstPage(1), out v1));
        Assert.AreEqual(0xBBUL, v1);
    }

    [TestMethod(DisplayName = "a refused madvise raises no REMOVE event")]
    [DataRow("hugetlb", Advice.DontNeed, Errno.EINVAL, DisplayName = "a refused madvise raises no REMOVE event (hugetlb, unaligned DONTNEED)")]
    [DataRow("anon", Advice.Remove, Errno.EINVAL, DisplayName = "a refused madvise raises no REMOVE event (anon, MADV_REMOVE)")]
    public void RefusedMadviseRaisesNoEvent(string mem, Advice advice, Errno expected)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: UffdFeatures.EventRemove);
        env.RegisterDst(UffdModes.Missing);
        ulong start = env.Dst + (mem == "hugetlb" ? Folio.BasePageSize : 0UL);
        // REMOVE events are synchronous: a wrongly raised one would park this call until read. Guard against a hang.
        var call = Task.Run(() => env.Mm.Madvise(start, env.Bytes / 2, advice));
        Assert.IsTrue(call.Wait(TimeSpan.FromSeconds(30)), "madvise blocked: it raised a REMOVE event before its checks");
        Assert.AreEqual(expected, call.Result);
        Assert.AreEqual(0, env.Uffd.PendingEventCount, "no REMOVE event queued");
    }
}
