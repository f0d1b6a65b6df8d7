using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Ports of tools/testing/selftests/mm/uffd-unit-tests.c that this issue covers, run over the five memory configurations
/// and both fault-path designs.
/// </summary>
[TestClass]
public sealed class UffdUnitTests
{
    private static readonly UffdFeatures AllRegisterFeatures = UffdFeatures.MissingHugetlbfs | UffdFeatures.MissingShmem
        | UffdFeatures.PagefaultFlagWp | UffdFeatures.WpHugetlbfsShmem | UffdFeatures.MinorHugetlbfs | UffdFeatures.MinorShmem;

    private static void ApiTest(Func<Mm, (Errno, UserfaultfdCtx?)> open)
    {
        var k = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var mm = k.CreateMm();

        var (e1, u1) = open(mm);
        Assert.AreEqual(Errno.None, e1);
        using (u1)
        {
            // api 0xab fails, and the struct is zeroed
            var r = u1!.Api(0xab, 0, out var feat, out var ioc);
            Assert.AreEqual(Errno.EINVAL, r.Errno);
            Assert.AreEqual(UffdFeatures.None, feat);
            Assert.AreEqual(UffdIoctls.None, ioc);
            // an unknown feature bit fails
            r = u1.Api(Uapi.UFFD_API, (UffdFeatures)(1UL << 63), out feat, out ioc);
            Assert.AreEqual(Errno.EINVAL, r.Errno);
            Assert.AreEqual(UffdFeatures.None, feat);
            // the normal call succeeds with REGISTER | UNREGISTER | API
            r = u1.Api(Uapi.UFFD_API, 0, out feat, out ioc);
            Assert.IsTrue(r.Succeeded, r.ToString());
            Assert.AreEqual(Uapi.UFFD_API_IOCTLS, ioc & Uapi.UFFD_API_IOCTLS);
            Assert.AreEqual(UserfaultfdCtx.SupportedFeatures, feat, "UFFDIO_API reports every available feature");
            // "UFFDIO_API should reject initialized uffd"
            r = u1.Api(Uapi.UFFD_API, UffdFeatures.PagefaultFlagWp, out feat, out ioc);
            Assert.AreEqual(Errno.EINVAL, r.Errno);
            Assert.AreEqual(UffdFeatures.None, feat);
        }
    }

    [TestMethod(DisplayName = "UFFDIO_API (with syscall)")]
    public void UffdioApiWithSyscall()
        => ApiTest(mm => (mm.Userfaultfd(Uapi.O_CLOEXEC | Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY, out var c), c));

    [TestMethod(DisplayName = "UFFDIO_API (with /dev/userfaultfd)")]
    public void UffdioApiWithDevUserfaultfd()
        => ApiTest(mm => (mm.Kernel.DevUserfaultfdIoctl(mm, Uapi.USERFAULTFD_IOC_NEW, Uapi.O_CLOEXEC | Uapi.O_NONBLOCK, out var c), c));

    [TestMethod(DisplayName = "register-ioctls")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void RegisterIoctls(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: AllRegisterFeatures);
        var cfg = env.Config;
        for (int combo = 0; combo < 8; combo++)
        {
            bool miss = (combo & 1) != 0, wp = (combo & 2) != 0, minor = (combo & 4) != 0;
            var mode = (miss ? UffdModes.Missing : 0) | (wp ? UffdModes.Wp : 0) | (minor ? UffdModes.Minor : 0);
            var r = env.Uffd.Register(env.Dst, (ulong)env.PageSize, mode, out var ioctls);
            if (mode == 0 || (minor && cfg.IsAnon))
            {
                Assert.AreEqual(Errno.EINVAL, r.Errno, $"mode {mode} on {mem}");
                continue;
            }
            Assert.IsTrue(r.Succeeded, $"mode {mode} on {mem}: {r}");
            var expect = UffdIoctls.Wake | (miss ? UffdIoctls.Copy : 0) | (wp ? UffdIoctls.WriteProtect : 0) | (minor ? UffdIoctls.Continue : 0);
            Assert.AreEqual(expect, ioctls & expect, $"mode {mode} on {mem}: {ioctls}");
            Assert.AreEqual(cfg.IsHugetlb, (ioctls & UffdIoctls.ZeroPage) == 0, "ZEROPAGE is advertised iff not hugetlb");
            Assert.AreEqual(wp, (ioctls & UffdIoctls.WriteProtect) != 0);
            Assert.AreEqual(minor, (ioctls & UffdIoctls.Continue) != 0);
            Assert.IsTrue(env.Uffd.Unregister(env.Dst, (ulong)env.PageSize).Succeeded);
        }
    }

    [TestMethod(DisplayName = "zeropage")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void ZeroPage(string mem)
    {
        foreach (var design in new[] { FaultPathDesign.PreCheck, FaultPathDesign.RfcRetval })
        {
            using var env = new UffdTestEnv(mem, nrPages: 2, design: design);
            var ioctls = env.RegisterDst(UffdModes.Missing);
            if (env.DstAlias != 0)
                Assert.IsTrue(env.Uffd.Register(env.DstAlias, env.Bytes, UffdModes.Missing, out _).Succeeded);
            bool supported = (ioctls & UffdIoctls.ZeroPage) != 0;
            Assert.AreEqual(!env.Config.IsHugetlb, supported);
            // Dirty the page first through nothing: the destination is empty (release_pages).
            var r = env.Uffd.ZeroPage(env.Dst, (ulong)env.PageSize, UffdZeroPageMode.None);
            if (!supported)
            {
                Assert.AreEqual(Errno.EINVAL, r.Errno);
                Assert.AreEqual(-(long)Errno.EINVAL, r.Field);
                continue;
            }
            Assert.IsTrue(r.Succeeded, r.ToString());
            Assert.AreEqual(env.PageSize, r.Field);
            var (res, data) = env.ReadPage(env.Main, env.Dst, 0);
            Assert.AreEqual(AccessResult.Ok, res);
            Assert.IsTrue(data.All(b => b == 0));
            // Again, on the alias for shared memory: the page (or page-cache entry) exists → -EEXIST.
            ulong again = env.Config.MapShared ? env.DstAlias : env.Dst;
            r = env.Uffd.ZeroPage(again, (ulong)env.PageSize, UffdZeroPageMode.None);
            Assert.AreEqual(Errno.EEXIST, r.Errno, $"{design}");
            Assert.AreEqual(-(long)Errno.EEXIST, r.Field);
        }
    }

    [TestMethod(DisplayName = "minor")]
    [DynamicData(nameof(MemConfig.MinorCapable), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void Minor(string mem)
    {
        foreach (var design in new[] { FaultPathDesign.PreCheck, FaultPathDesign.RfcRetval })
        {
            using var env = new UffdTestEnv(mem, nrPages: mem == "hugetlb" ? 3 : 24, design: design,
                features: UffdFeatures.MinorShmem | UffdFeatures.MinorHugetlbfs);
            // Register MINOR on the alias; populate through the other mapping (no faults there).
            Assert.IsTrue(env.Uffd.Register(env.DstAlias, env.Bytes, UffdModes.Minor, out var ioctls).Succeeded);
            Assert.IsTrue((ioctls & UffdIoctls.Continue) != 0);
            for (int i = 0; i < env.NrPages; i++)
                Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(i), env.Expected(i)));

            // The handler bit-flips each page through the non-registered mapping, then CONTINUEs.
            using var server = new PageServer(env.Uffd, env.PageSize, _ => throw new InvalidOperationException("no MISSING expected"),
                prepareMinor: aliasPage =>
                {
                    ulong off = aliasPage - env.DstAlias;
                    var t = env.Mm.CreateTask("flipper");
                    var b = new byte[env.PageSize];
                    Assert.AreEqual(AccessResult.Ok, t.Read(env.Dst + off, b));
                    for (int j = 0; j < b.Length; j++) b[j] = (byte)~b[j];
                    Assert.AreEqual(AccessResult.Ok, t.Write(env.Dst + off, b));
                });
            var reader = env.Mm.CreateTask("reader");
            var th = reader.RunChecked(t =>
            {
                for (int i = 0; i < env.NrPages; i++)
                {
                    var (r, data) = env.ReadPage(t, env.DstAlias, i);
                    Assert.AreEqual(AccessResult.Ok, r);
                    var exp = env.Expected(i);
                    for (int j = 0; j < exp.Length; j++) exp[j] = (byte)~exp[j];
                    CollectionAssert.AreEqual(exp, data, $"page {i}");
                }
            });
            Threads.JoinOrFail(th, "minor reader");
            server.Stop();
            Assert.AreEqual(0, server.Errors.Count, string.Join("; ", server.Errors));
            Assert.AreEqual(env.NrPages, server.MinorFaults, $"exactly one MINOR fault per page (no fault-around when armed), {design}");
            Assert.AreEqual(0, server.MissingFaults);
        }
    }

    [TestMethod(DisplayName = "missing")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void Missing(string mem)
    {
        foreach (var design in new[] { FaultPathDesign.PreCheck, FaultPathDesign.RfcRetval })
        {
            using var env = new UffdTestEnv(mem, nrPages: env_pages(mem), design: design, features: UffdFeatures.ThreadId);
            env.RegisterDst(UffdModes.Missing);
            var src = Enumerable.Range(0, env.NrPages).Select(env.SrcPage).ToArray();
            using var server = new PageServer(env.Uffd, env.PageSize, page => src[(int)((page - env.Dst) / (ulong)env.PageSize)], allowWriteFaults: false);
            var reader = env.Mm.CreateTask("locker");
            var th = reader.RunChecked(t =>
            {
                for (int i = 0; i < env.NrPages; i++)
                {
                    var (r, data) = env.ReadPage(t, env.Dst, i);
                    Assert.AreEqual(AccessResult.Ok, r);
                    CollectionAssert.AreEqual(src[i], data, $"page {i}");
                }
            });
            Threads.JoinOrFail(th, "missing reader");
            server.Stop();
            Assert.AreEqual(0, server.Errors.Count, string.Join("; ", server.Errors));
            Assert.AreEqual(env.NrPages, server.MissingFaults, design.ToString());
            foreach (var m in server.Messages)
            {
                Assert.AreEqual((uint)reader.Tid, m.PagefaultPtid, "THREAD_ID reports the faulting task");
                Assert.AreEqual(0UL, m.PagefaultAddress % (ulong)env.PageSize, "page-aligned (huge-aligned for hugetlb) without EXACT_ADDRESS");
            }
        }

        static int env_pages(string m) => m.StartsWith("hugetlb", StringComparison.Ordinal) ? 3 : 16;
    }
}
