using PluginMm.Backends;
using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Ports of the guest_memfd userfaultfd selftests (tools/testing/selftests/kvm/guest_memfd_test.c, kernel-uffd.md §10)
/// and the mmap rules they rely on, under both fault-path designs.
/// </summary>
[TestClass]
public sealed class GuestMemfdTests
{
    private const int Pages = 4;
    private const int Ps = Folio.BasePageSize;

    private static (ModelKernel, Mm, MemFile) Setup(FaultPathDesign design, ulong flags = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared)
    {
        var k = new ModelKernel(MemoryTypeRegistry.All, new ModelOptions { Design = design });
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, k.GuestMemfdCreate("guest_memfd", Pages * Ps, flags, out var f));
        return (k, mm, f!);
    }

    public static IEnumerable<object[]> Designs => [[FaultPathDesign.PreCheck], [FaultPathDesign.RfcRetval]];

    [TestMethod(DisplayName = "guest_memfd test_uffd_minor")]
    [DynamicData(nameof(Designs))]
    public void TestUffdMinor(FaultPathDesign design)
    {
        var (k, mm, f) = Setup(design);
        Assert.AreEqual(Errno.None, mm.Mmap(0, Pages * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var mem));
        Assert.AreEqual(Errno.None, mm.Mmap(0, Pages * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var mem2));
        // Blocking fd, features 0.
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.O_CLOEXEC, out var uffd));
        using (uffd)
        {
            Assert.IsTrue(uffd!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
            Assert.IsTrue(uffd.Register(mem, Pages * Ps, UffdModes.Minor, out _).Succeeded);
            ulong faultAddr = mem + Ps;
            // Populate the page through the second mapping (no fault traps there).
            var main = mm.CreateTask();
            Assert.AreEqual(AccessResult.Ok, main.Write(mem2 + Ps, Enumerable.Repeat((byte)0xcd, Ps).ToArray()));

            byte seen = 0;
            var th = mm.CreateTask("reader").RunChecked(t => Assert.AreEqual(AccessResult.Ok, t.ReadByte(faultAddr, out seen)));
            var r = uffd.ReadOne(out var msg);
            Assert.IsTrue(r.Succeeded, r.ToString());
            Assert.AreEqual(UffdEvent.Pagefault, msg.Event);
            Assert.AreEqual(faultAddr, msg.PagefaultAddress);
            Assert.IsTrue((msg.PagefaultFlags & UffdPagefaultFlags.Minor) != 0);
            var c = uffd.Continue(faultAddr, Ps, UffdContinueMode.None);
            Assert.IsTrue(c.Succeeded, c.ToString());
            Assert.AreEqual(Ps, c.Field);
            Threads.JoinOrFail(th, "guest_memfd minor reader");
            Assert.AreEqual(0xcd, seen);
            // Reading again faults no more.
            Assert.AreEqual(AccessResult.Ok, main.ReadByte(faultAddr, out seen));
            Assert.AreEqual(0xcd, seen);
            Assert.AreEqual(0, uffd.PendingCount);
        }
        mm.Exit();
        f.Release();
        Assert.AreEqual(0, k.Allocator.LivePages, "no folio leaked");
    }

    [TestMethod(DisplayName = "guest_memfd test_uffd_missing")]
    [DynamicData(nameof(Designs))]
    public void TestUffdMissing(FaultPathDesign design)
    {
        var (k, mm, f) = Setup(design);
        Assert.AreEqual(Errno.None, mm.Mmap(0, Pages * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var mem));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.O_CLOEXEC, out var uffd));
        using (uffd)
        {
            Assert.IsTrue(uffd!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
            Assert.IsTrue(uffd.Register(mem, Pages * Ps, UffdModes.Missing, out var ioctls).Succeeded);
            Assert.IsTrue((ioctls & UffdIoctls.Copy) != 0);
            ulong faultAddr = mem + Ps;
            byte seen = 0;
            var th = mm.CreateTask("reader").RunChecked(t => Assert.AreEqual(AccessResult.Ok, t.ReadByte(faultAddr, out seen)));
            var r = uffd.ReadOne(out var msg);
            Assert.IsTrue(r.Succeeded, r.ToString());
            Assert.AreEqual(faultAddr, msg.PagefaultAddress);
            Assert.AreEqual(UffdPagefaultFlags.None, msg.PagefaultFlags & (UffdPagefaultFlags.Wp | UffdPagefaultFlags.Minor));
            var c = uffd.Copy(faultAddr, Enumerable.Repeat((byte)0xab, Ps).ToArray(), UffdCopyMode.None);
            Assert.IsTrue(c.Succeeded, c.ToString());
            Threads.JoinOrFail(th, "guest_memfd missing reader");
            Assert.AreEqual(0xab, seen);
            Assert.AreEqual(1, f.CachedFolios, "COPY into a shared gmem mapping went through FilemapAdd");
        }
        mm.Exit();
        f.Release();
        Assert.AreEqual(0, k.Allocator.LivePages, "no folio leaked");
    }

    [TestMethod(DisplayName = "guest_memfd mmap_cow / mmap_not_supported")]
    public void MmapRules()
    {
        var (_, mm, f) = Setup(FaultPathDesign.PreCheck);
        Assert.AreEqual(Errno.EINVAL, mm.Mmap(0, Pages * Ps, Prot.Read | Prot.Write, MapFlags.Private, f, 0, out _), "MAP_PRIVATE");
        var k2 = new ModelKernel(MemoryTypeRegistry.All);
        Assert.AreEqual(Errno.None, k2.GuestMemfdCreate("guest_memfd", Pages * Ps, 0, out var noMmap));
        Assert.AreEqual(Errno.ENODEV, k2.CreateMm().Mmap(0, Ps, Prot.Read, MapFlags.Shared, noMmap, 0, out _));
        Assert.AreEqual(Errno.EINVAL, k2.GuestMemfdCreate("guest_memfd", Ps + 1, 0, out _), "invalid size");
        Assert.AreEqual(Errno.EINVAL, k2.GuestMemfdCreate("guest_memfd", Ps, 1UL << 7, out _), "unknown flag");
    }

    [TestMethod(DisplayName = "guest_memfd fault_overflow and not-shared: SIGBUS, no uffd admission")]
    public void FaultRulesAndAdmission()
    {
        var (_, mm, f) = Setup(FaultPathDesign.PreCheck);
        // Map more than the file: the page beyond i_size gets SIGBUS (fault_overflow).
        Assert.AreEqual(Errno.None, mm.Mmap(0, (Pages + 1) * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var mem));
        var t = mm.CreateTask();
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(mem, 7));
        Assert.AreEqual(AccessResult.SigBus, t.ReadUInt64(mem + Pages * Ps, out _));

        // Created without INIT_SHARED: faults get SIGBUS and UFFDIO_REGISTER is refused by CanUserfault.
        var (_, mm2, priv) = Setup(FaultPathDesign.PreCheck, GuestMemfdFlags.Mmap);
        Assert.AreEqual(Errno.None, mm2.Mmap(0, Pages * Ps, Prot.Read | Prot.Write, MapFlags.Shared, priv, 0, out var m2));
        Assert.AreEqual(AccessResult.SigBus, mm2.CreateTask().ReadUInt64(m2, out _));
        Assert.AreEqual(Errno.None, mm2.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        using (u)
        {
            Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
            Assert.AreEqual(Errno.EINVAL, u.Register(m2, Pages * Ps, UffdModes.Missing, out _).Errno);
            Assert.AreEqual(Errno.EINVAL, u.Register(m2, Pages * Ps, UffdModes.Minor, out _).Errno);
        }
    }

    [TestMethod(DisplayName = "guest_memfd declares no WP: registration with MODE_WP is refused")]
    public void NoWp()
    {
        var (_, mm, f) = Setup(FaultPathDesign.PreCheck);
        Assert.AreEqual(Errno.None, mm.Mmap(0, Pages * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var mem));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        using (u)
        {
            Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
            Assert.AreEqual(Errno.EINVAL, u.Register(mem, Pages * Ps, UffdModes.Wp, out _).Errno);
            Assert.IsTrue(u.Register(mem, Pages * Ps, UffdModes.Missing | UffdModes.Minor, out _).Succeeded);
        }
    }
}

/// <summary>The seed-000 rule at run time: vma_can_userfault refuses a page-cache table without GetFolioNoAlloc.</summary>
[TestClass]
public sealed unsafe class Seed000RuntimeTests
{
    private static MemoryTypeOps HandBuilt(bool withGetFolio, bool withCanUserfault = true) => new(
        "handmade", Backing.PageCache, UffdModes.Missing | UffdModes.Minor,
        new VmOperations(&Shmem.Fault),
        new VmUffdOps(
            withCanUserfault ? &Shmem.CanUserfault : null,
            withGetFolio ? &Shmem.GetFolioNoAlloc : null,
            &Shmem.AllocFolio, &Shmem.FilemapAdd, &Shmem.FilemapRemove));

    private static UffdioResult RegisterOn(MemoryTypeOps type, UffdModes mode, out ulong mem, out Mm mm)
    {
        var k = new ModelKernel([Anonymous.Ops, type]);
        mm = k.CreateMm();
        Assert.AreEqual(Errno.None, k.MemfdCreate("handmade", 4 * Folio.BasePageSize, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Folio.BasePageSize, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out mem));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        return u.Register(mem, 4 * Folio.BasePageSize, mode, out _);
    }

    [TestMethod(DisplayName = "a table built by hand without GetFolioNoAlloc is refused with EINVAL")]
    public void HandBuiltWithoutGetFolioNoAllocIsRefused()
    {
        Assert.AreEqual(Errno.EINVAL, RegisterOn(HandBuilt(withGetFolio: false), UffdModes.Missing, out _, out _).Errno);
        Assert.AreEqual(Errno.EINVAL, RegisterOn(HandBuilt(withGetFolio: false), UffdModes.Minor, out _, out _).Errno);
        // The same table with the hook is admitted, and the VMA still faults normally when unregistered.
        Assert.IsTrue(RegisterOn(HandBuilt(withGetFolio: true), UffdModes.Missing, out _, out _).Succeeded);
        var refused = RegisterOn(HandBuilt(withGetFolio: false), UffdModes.Missing, out var mem, out var mm);
        Assert.AreEqual(Errno.EINVAL, refused.Errno);
        Assert.AreEqual(AccessResult.Ok, mm.CreateTask().WriteUInt64(mem, 42), "memory of a refused table stays usable");
    }

    [TestMethod(DisplayName = "a table without CanUserfault has no uffd ops: EINVAL")]
    public void HandBuiltWithoutCanUserfaultIsRefused()
        => Assert.AreEqual(Errno.EINVAL, RegisterOn(HandBuilt(withGetFolio: true, withCanUserfault: false), UffdModes.Missing, out _, out _).Errno);

    [TestMethod(DisplayName = "the generated tables carry the hooks the rules require")]
    public void GeneratedTables()
    {
        Assert.IsTrue(Shmem.Ops.UffdOps.GetFolioNoAlloc != null);
        Assert.IsTrue(HugeTlb.Ops.VmOps.Fault == null);
        Assert.IsTrue(HugeTlb.Ops.UffdOps.AllocFolio == null);
        Assert.IsTrue(Anonymous.Ops.UffdOps.GetFolioNoAlloc == null);
        Assert.IsTrue(GuestMemfd.Ops.UffdOps.FilemapRemove != null);
        CollectionAssert.AreEqual(new[] { "anon", "guest_memfd", "hugetlb", "shmem" }, MemoryTypeRegistry.All.Select(t => t.Name).ToArray());
    }
}
