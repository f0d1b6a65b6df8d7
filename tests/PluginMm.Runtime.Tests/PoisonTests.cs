using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>UFFDIO_POISON: the uffd-unit-tests.c <c>poison</c> port on every memory type and design, and its errno rules (row 15).</summary>
[TestClass]
public sealed class PoisonTests
{
    private const int PoisonPages = 4; // UFFD_POISON_TEST_NPAGES

    [TestMethod(DisplayName = "poison")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void Poison(string mem)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, PoisonPages, design, UffdFeatures.Poison);
            ulong ps = (ulong)env.PageSize;
            var r = env.Uffd.Register(env.Dst, PoisonPages * ps, UffdModes.Missing, out var ioctls);
            Assert.IsTrue(r.Succeeded, r.ToString());
            var expected = UffdIoctls.Copy | UffdIoctls.Poison;
            Assert.AreEqual(expected, ioctls & expected, "registered area doesn't support COPY and POISON ioctls");
            var zero = new byte[ps];
            // Odd pages → COPY a zeroed page; even pages → POISON.
            using var mon = new UffdMonitor(env, custom: (m, msg) =>
            {
                if ((msg.PagefaultFlags & (UffdPagefaultFlags.Wp | UffdPagefaultFlags.Minor)) != 0)
                    m.Error($"unexpected fault type {msg}");
                ulong offset = (msg.PagefaultAddress - env.Dst) & ~(ps - 1);
                if ((offset & ps) != 0)
                    m.CopyPage(m.Uffd, env.Dst + offset, zero);
                else
                {
                    var p = m.Uffd.Poison(env.Dst + offset, ps, UffdPoisonMode.None);
                    if (!p.Succeeded || p.Field != (long)ps)
                        m.Error($"UFFDIO_POISON 0x{env.Dst + offset:x}: {p}");
                }
            });
            int sigbus = 0;
            var reader = Issue4.Start(env.Mm.CreateTask("reader"), t =>
            {
                for (int nr = 0; nr < PoisonPages; nr++)
                {
                    var (res, data) = env.ReadPage(t, env.Dst, nr);
                    if (res == AccessResult.SigBus) { sigbus++; continue; }
                    Assert.AreEqual(AccessResult.Ok, res);
                    Assert.IsTrue(data.All(b => b == 0), $"nonzero byte in area_dst page {nr}");
                }
            });
            Issue4.Join(reader, "poison reader");
            mon.Stop();
            mon.AssertClean();
            Assert.AreEqual(PoisonPages / 2, sigbus, $"expected to receive {PoisonPages / 2} SIGBUS ({design})");

            // A poisoned entry stays poisoned (a second access is SIGBUS again), and zapping it clears it.
            Assert.AreEqual(AccessResult.SigBus, env.ReadPage(env.Main, env.Dst, 0).Result);
            Assert.AreEqual(Errno.None, env.Uffd.Unregister(env.Dst, PoisonPages * ps).Errno);
            Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst, ps, Advice.DontNeed));
            Assert.AreEqual(AccessResult.Ok, env.ReadPage(env.Main, env.Dst, 0).Result, "DONTNEED drops the poison marker");
        }
    }

    [TestMethod(DisplayName = "POISON errno (checklist row 15)")]
    [DataRow("anon")]
    [DataRow("shmem")]
    [DataRow("hugetlb")]
    public void PoisonErrno(string mem)
    {
        using var env = new UffdTestEnv(mem, 3, features: UffdFeatures.Poison | UffdFeatures.PagefaultFlagWp | UffdFeatures.WpHugetlbfsShmem);
        ulong ps = (ulong)env.PageSize;
        Assert.AreEqual(Errno.ENOENT, env.Uffd.Poison(env.Dst, ps, UffdPoisonMode.None).Errno, "not registered");
        env.RegisterDst(UffdModes.Missing | UffdModes.Wp);
        Assert.AreEqual(Errno.EINVAL, env.Uffd.Poison(env.Dst, ps, (UffdPoisonMode)2).Errno, "mode ⊄ {DONTWAKE}");
        Assert.AreEqual(Errno.EINVAL, env.Uffd.Poison(env.Dst + 1, ps, UffdPoisonMode.None).Errno);
        // A present page → EEXIST with the field.
        Assert.IsTrue(env.Uffd.Copy(env.DstPage(0), env.Expected(0), UffdCopyMode.None).Succeeded);
        var r = env.Uffd.Poison(env.DstPage(0), ps, UffdPoisonMode.None);
        Assert.AreEqual(Errno.EEXIST, r.Errno);
        Assert.AreEqual(-(long)Errno.EEXIST, r.Field);
        // A marker, even a uffd-wp one, → EEXIST (COPY may overwrite a WP marker, POISON may not).
        Assert.IsTrue(env.Uffd.WriteProtect(env.DstPage(1), ps, UffdWriteProtectMode.Wp).Succeeded);
        if (!env.Config.IsAnon)
            Assert.AreEqual(Errno.EEXIST, env.Uffd.Poison(env.DstPage(1), ps, UffdPoisonMode.None).Errno, "uffd-wp marker");
        Assert.AreEqual((long)ps, env.Uffd.Poison(env.DstPage(2), ps, UffdPoisonMode.None).Field);
        Assert.AreEqual(Errno.EEXIST, env.Uffd.Poison(env.DstPage(2), ps, UffdPoisonMode.None).Errno, "poison marker");
        // Partial: page 2 is poisoned, so poisoning pages 1..2 of anon (no marker on 1) does one page then EAGAIN.
        if (env.Config.IsAnon)
        {
            var part = env.Uffd.Poison(env.DstPage(1), 2 * ps, UffdPoisonMode.None);
            Assert.AreEqual(Errno.EAGAIN, part.Errno, part.ToString());
            Assert.AreEqual((long)ps, part.Field, "bytes done before the EEXIST");
        }
    }
}
