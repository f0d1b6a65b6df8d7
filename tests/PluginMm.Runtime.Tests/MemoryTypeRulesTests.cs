using PluginMm.Backends;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Rules the runtime asks the memory types about instead of knowing them: admission of a file's mappings through the
/// optional <c>Mmap</c> hook (<c>file_operations->mmap</c>), the type that backs MAP_SHARED | MAP_ANONYMOUS
/// (<c>shmem_zero_setup</c>), and the kernel built without userfaultfd (<see cref="FaultPathDesign.NoUserfault"/>).
/// </summary>
[TestClass]
public sealed unsafe class MemoryTypeRulesTests
{
    private const int Ps = Folio.BasePageSize;

    [ThreadStatic]
    private static VmaView t_seen;

    private static Errno RefuseWithEperm(in VmaView vma)
    {
        t_seen = vma;
        return Errno.EPERM;
    }

    private static VmFaultResult SigBusFault(ref VmFault vmf) => VmFaultResult.SigBus;

    private static MemoryTypeOps PageCacheType(string name, FileOperations fileOps = default, bool sharedAnonymous = false)
        => new(name, Backing.PageCache, UffdModes.None, new VmOperations(&SigBusFault), default, fileOps, sharedAnonymous);

    [TestMethod]
    public void MmapHook_SeesTheRequestedMapping_AndItsErrnoIsMmapsResult()
    {
        var k = new ModelKernel([PageCacheType("picky", new FileOperations(&RefuseWithEperm))]);
        Assert.AreEqual(Errno.None, k.MemfdCreate("picky", 4 * Ps, out var f));
        var mm = k.CreateMm();
        t_seen = default;
        Assert.AreEqual(Errno.EPERM, mm.Mmap(0, 2 * Ps, Prot.Read, MapFlags.Shared, f, Ps, out var addr));
        Assert.AreEqual(0UL, addr);
        Assert.AreEqual(0, mm.Vmas.Count, "a refused mapping leaves no VMA");
        Assert.AreSame(f!.Inode, t_seen.File);
        Assert.AreEqual(1L, t_seen.PgOff);
        Assert.AreEqual(2UL * Ps, t_seen.End - t_seen.Start);
        Assert.AreEqual(VmFlags.Shared | VmFlags.MayShare, t_seen.Flags & (VmFlags.Shared | VmFlags.MayShare));
        Assert.AreEqual(VmFlags.Read, t_seen.Flags & (VmFlags.Read | VmFlags.Write));
        // The generic check stays the runtime's: an offset not aligned to the file's page size never reaches the hook.
        t_seen = default;
        Assert.AreEqual(Errno.EINVAL, mm.Mmap(0, Ps, Prot.Read, MapFlags.Shared, f, 100, out _));
        Assert.IsNull(t_seen.File);
    }

    [TestMethod]
    public void NoMmapHook_AdmitsEveryMapping()
    {
        var k = new ModelKernel([PageCacheType("plain")]);
        Assert.AreEqual(Errno.None, k.MemfdCreate("plain", 4 * Ps, out var f));
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, mm.Mmap(0, Ps, Prot.Read, MapFlags.Private, f, 0, out _));
        Assert.AreEqual(Errno.None, mm.Mmap(0, Ps, Prot.Read, MapFlags.Shared, f, 0, out _));
    }

    [TestMethod]
    public void GuestMemfdMmapRules_ComeFromItsMmapHook()
    {
        Assert.IsTrue(GuestMemfd.Ops.HasMmap);
        Assert.IsFalse(Shmem.Ops.HasMmap);
        var allocator = new PageAllocator();
        var noMmap = new Inode("guest_memfd", Ps, Ps, allocator, 0);
        var mappable = new Inode("guest_memfd", Ps, Ps, allocator, GuestMemfdFlags.Mmap);
        var shared = new VmaView(0, Ps, VmFlags.Shared | VmFlags.MayShare, 0, mappable, 12, allocator);
        Assert.AreEqual(Errno.ENODEV, GuestMemfd.Mmap(new VmaView(0, Ps, VmFlags.Shared | VmFlags.MayShare, 0, noMmap, 12, allocator)));
        Assert.AreEqual(Errno.EINVAL, GuestMemfd.Mmap(new VmaView(0, Ps, VmFlags.MayWrite, 0, mappable, 12, allocator)), "MAP_PRIVATE");
        Assert.AreEqual(Errno.None, GuestMemfd.Mmap(in shared));
    }

    [TestMethod]
    public void SharedAnonymous_UsesTheTypeThatSaysItBacksIt()
    {
        var mine = PageCacheType("mine", sharedAnonymous: true);
        var k = new ModelKernel([PageCacheType("other"), mine]);
        Assert.AreSame(mine, k.SharedAnonymousType);
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, mm.Mmap(0, 3 * Ps, Prot.Read | Prot.Write, MapFlags.Shared | MapFlags.Anonymous, null, 0, out var addr));
        var vma = mm.Vmas.Single();
        Assert.AreSame(mine, vma.Type);
        Assert.AreEqual(3L * Ps, vma.File!.Inode.Size);

        Assert.AreSame(Shmem.Ops, new ModelKernel(MemoryTypeRegistry.All).SharedAnonymousType, "the built-in set: shmem says so");

        var none = new ModelKernel([PageCacheType("other")]);
        Assert.IsNull(none.SharedAnonymousType);
        Assert.AreEqual(Errno.ENODEV, none.CreateMm().Mmap(0, Ps, Prot.Read, MapFlags.Shared | MapFlags.Anonymous, null, 0, out _));
    }

    [TestMethod]
    public void NoUserfaultDesign_HasNoUserfaultfd_AndFaultsStillWork()
    {
        var k = new ModelKernel(MemoryTypeRegistry.All, new ModelOptions { Design = FaultPathDesign.NoUserfault });
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.ENOSYS, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var ctx));
        Assert.IsNull(ctx);
        Assert.AreEqual(Errno.ENOSYS, k.DevUserfaultfdIoctl(mm, Uapi.USERFAULTFD_IOC_NEW, 0, out ctx));
        Assert.IsNull(ctx);
        Assert.AreEqual(Errno.None, k.MemfdCreate("shmem", 2 * Ps, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var addr));
        var t = mm.CreateTask();
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(addr + Ps, 42));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(addr + Ps, out var v));
        Assert.AreEqual(42UL, v);
    }
}
