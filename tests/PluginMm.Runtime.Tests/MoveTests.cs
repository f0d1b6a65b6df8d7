using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>UFFDIO_MOVE: the uffd-unit-tests.c <c>move</c> port (anon, both designs) and the errno/field rules (row 16, §5.3).</summary>
[TestClass]
public sealed class MoveTests
{
    [TestMethod(DisplayName = "move")]
    [DynamicData(nameof(Issue4.AnonOnly), typeof(Issue4), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void Move(string mem)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, 16, design, UffdFeatures.Move);
            ulong ps = (ulong)env.PageSize;
            // Prevent source pages from being mapped more than once.
            Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Src, env.Bytes, Advice.DontFork));
            env.RegisterDst(UffdModes.Missing);
            // move_page: MOVE with ALLOW_SRC_HOLES; EEXIST tolerated + WAKE.
            using var mon = new UffdMonitor(env, custom: (m, msg) =>
            {
                if ((msg.PagefaultFlags & (UffdPagefaultFlags.Wp | UffdPagefaultFlags.Minor | UffdPagefaultFlags.Write)) != 0)
                    m.Error($"unexpected fault type {msg}");
                ulong offset = (msg.PagefaultAddress - env.Dst) & ~(ps - 1);
                var r = m.Uffd.Move(env.Dst + offset, env.Src + offset, ps, UffdMoveMode.AllowSrcHoles);
                if (r.Errno == Errno.EEXIST && r.Field == -(long)Errno.EEXIST)
                    m.Uffd.Wake(env.Dst + offset, ps);
                else if (!r.Succeeded || r.Field != (long)ps)
                    m.Error($"UFFDIO_MOVE: {r}");
                else
                    Interlocked.Increment(ref m.MissingFaults);
            });
            var reader = Issue4.Start(env.Mm.CreateTask("reader"), t =>
            {
                for (int nr = 0; nr < env.NrPages; nr++)
                {
                    var (r1, s) = env.ReadPage(t, env.Src, nr);
                    Assert.AreEqual(AccessResult.Ok, r1);
                    CollectionAssert.AreEqual(env.Expected(nr), s, $"nr {nr} source memory invalid");
                    var (r2, d) = env.ReadPage(t, env.Dst, nr);
                    Assert.AreEqual(AccessResult.Ok, r2);
                    CollectionAssert.AreEqual(env.Expected(nr), d, $"nr {nr} memory corruption");
                    var (r3, e) = env.ReadPage(t, env.Src, nr);
                    Assert.AreEqual(AccessResult.Ok, r3);
                    Assert.IsTrue(e.All(b => b == 0), $"nr {nr} move failed");
                }
            });
            Issue4.Join(reader, "move reader");
            mon.Stop();
            mon.AssertClean();
            Assert.AreEqual(env.NrPages, mon.MissingFaults, $"stats check error ({design})");
        }
    }

    [TestMethod(DisplayName = "move-pmd")]
    public void MovePmd() => Assert.Inconclusive("skipped: moves PMD-mapped THPs (MADV_HUGEPAGE); the model has no THP");

    [TestMethod(DisplayName = "move-pmd-split")]
    public void MovePmdSplit() => Assert.Inconclusive("skipped: splits PMD-mapped THPs while moving; the model has no THP");

    [TestMethod(DisplayName = "MOVE errno and field (checklist row 16)")]
    public void MoveErrno()
    {
        using var env = new UffdTestEnv("anon", 4, features: UffdFeatures.Move);
        ulong ps = (ulong)env.PageSize;
        Assert.AreEqual(Errno.EINVAL, env.Uffd.Move(env.Dst, env.Src, ps, UffdMoveMode.None).Errno, "dst not registered");
        env.RegisterDst(UffdModes.Missing);
        Assert.AreEqual(Errno.EINVAL, env.Uffd.Move(env.Dst, env.Src + 8, ps, UffdMoveMode.None).Errno, "unaligned src");
        Assert.AreEqual(Errno.EINVAL, env.Uffd.Move(env.Dst, env.Src, ps, (UffdMoveMode)4).Errno, "unknown mode");
        Assert.AreEqual(Errno.ENOENT, env.Uffd.Move(env.Dst, 0x20000, ps, UffdMoveMode.None).Errno, "no source VMA");
        Assert.AreEqual(Errno.EINVAL, env.Uffd.Move(env.Dst, env.Src, env.Bytes + ps, UffdMoveMode.None).Errno, "past the VMA end");

        // Populated destination → EEXIST with the field.
        Assert.IsTrue(env.Uffd.Copy(env.DstPage(0), env.Expected(0), UffdCopyMode.None).Succeeded);
        var r = env.Uffd.Move(env.DstPage(0), env.Src, ps, UffdMoveMode.None);
        Assert.AreEqual(Errno.EEXIST, r.Errno);
        Assert.AreEqual(-(long)Errno.EEXIST, r.Field);

        // A source page shared with a forked child → EBUSY; exclusive again once the child exits.
        var child = env.Mm.Fork();
        r = env.Uffd.Move(env.DstPage(1), env.Src + ps, ps, UffdMoveMode.None);
        Assert.AreEqual(Errno.EBUSY, r.Errno, r.ToString());
        child.Exit();
        r = env.Uffd.Move(env.DstPage(1), env.Src + ps, ps, UffdMoveMode.None);
        Assert.IsTrue(r.Succeeded && r.Field == (long)ps, r.ToString());
        CollectionAssert.AreEqual(env.Expected(1), env.ReadPage(env.Main, env.Dst, 1).Data);

        // Source holes: ENOENT without ALLOW_SRC_HOLES; counted as moved with it (the destination stays empty).
        Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Src + 2 * ps, 2 * ps, Advice.DontNeed));
        Assert.AreEqual(Errno.ENOENT, env.Uffd.Move(env.DstPage(2), env.Src + 2 * ps, ps, UffdMoveMode.None).Errno);
        r = env.Uffd.Move(env.DstPage(2), env.Src + 2 * ps, 2 * ps, UffdMoveMode.AllowSrcHoles);
        Assert.IsTrue(r.Succeeded && r.Field == 2 * (long)ps, r.ToString());
        Assert.IsTrue(env.Mm.PageTable.Get(env.DstPage(2)).IsNone);

        // Partial move: pages 0.. where page 0 of dst exists → 0 bytes, EEXIST; pages 3.. with the last one populated → EAGAIN.
        Assert.IsTrue(env.Uffd.Copy(env.Src, env.Expected(0), UffdCopyMode.None).Errno is Errno.ENOENT, "src is not registered: COPY there is ENOENT");
        Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.Src + 2 * ps, env.Expected(2)));
        Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.Src + 3 * ps, env.Expected(3)));
        Assert.IsTrue(env.Uffd.ZeroPage(env.DstPage(3), ps, UffdZeroPageMode.None).Succeeded);
        Assert.AreEqual(Errno.None, env.Mm.Madvise(env.DstPage(2), ps, Advice.DontNeed));
        r = env.Uffd.Move(env.DstPage(2), env.Src + 2 * ps, 2 * ps, UffdMoveMode.None);
        Assert.AreEqual(Errno.EAGAIN, r.Errno, r.ToString());
        Assert.AreEqual((long)ps, r.Field, "one page moved before the EEXIST");

        // Shared memory and hugetlb cannot be moved.
        using var shm = new UffdTestEnv("shmem", 1, features: UffdFeatures.Move);
        shm.RegisterDst(UffdModes.Missing);
        Assert.AreEqual(Errno.EINVAL, shm.Uffd.Move(shm.Dst, shm.Src, (ulong)shm.PageSize, UffdMoveMode.None).Errno, "shmem");
        using var huge = new UffdTestEnv("hugetlb-private", 1, features: UffdFeatures.Move);
        huge.RegisterDst(UffdModes.Missing);
        Assert.AreEqual(Errno.EINVAL, huge.Uffd.Move(huge.Dst, huge.Src, (ulong)huge.PageSize, UffdMoveMode.None).Errno, "hugetlb");
    }
}
