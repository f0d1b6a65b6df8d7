using HmmMirror;
using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;
using PluginMm.Userfaultfd;
using static PluginMm.Hmm.Tests.HmmFixture;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// Device memory in a userfaultfd-registered VMA, as the kernel has it: a CPU fault on a device-private page migrates it
/// (do_swap_page runs before any userfault), UFFDIO_WRITEPROTECT marks device-private entries (the swp uffd-wp bit) so the
/// page comes back write-protected and the write raises a WP userfault, UFFDIO_COPY finds the entry occupied (EEXIST).
/// </summary>
[TestClass]
public sealed class DeviceMemoryUserfaultfdTests
{
    private const int Pages = 8;
    private const ulong Len = Pages * PageSize;

    private static (HmmFixture F, UserfaultfdCtx Uffd, ulong Ptr) Setup(UffdModes modes)
    {
        var f = new HmmFixture();
        ulong ptr = f.MmapAnon(Len, Prot.Read | Prot.Write);
        CpuWrite(f.Task, ptr, Ints((int)(Len / 4), i => i));
        Assert.AreEqual(Errno.None, f.Mm.Userfaultfd(Uapi.O_NONBLOCK, out var uffd));
        var features = (modes & UffdModes.Wp) != 0 ? UffdFeatures.PagefaultFlagWp : 0;
        Assert.IsTrue(uffd!.Api(Uapi.UFFD_API, features, out _, out _).Succeeded);
        Assert.IsTrue(uffd.Register(ptr, Len, modes, out _).Succeeded);
        var mirror = new byte[Len];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.MigrateToDev, ptr, Pages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)Pages, cmd.CPages);
        Assert.IsTrue(DevicePte.IsDevicePrivate(f.Mm.PageTable.Get(ptr)));
        return (f, uffd, ptr);
    }

    [TestMethod(DisplayName = "hmm device memory + userfaultfd: a CPU read of a device-private page in a MISSING-registered VMA migrates it, no userfault")]
    public void MissingVmaCpuReadMigrates()
    {
        var (f, uffd, ptr) = Setup(UffdModes.Missing);
        using (f)
        using (uffd)
        {
            AssertInts(CpuRead(f.Task, ptr, Len), (int)(Len / 4), i => i, "CPU read");
            Assert.AreEqual(Pages, f.Device0.Memory.CpuFaultMigrations, "each page came back through migrate_to_ram");
            Assert.AreEqual(0, f.Device0.Memory.InUse);
            Assert.AreEqual(Errno.EAGAIN, uffd.ReadOne(out _).Errno, "no userfault was raised: the pages were not missing");
        }
    }

    [TestMethod(DisplayName = "hmm device memory + userfaultfd: UFFDIO_COPY onto a device-private entry is EEXIST")]
    public void CopyOntoDevicePageIsEexist()
    {
        var (f, uffd, ptr) = Setup(UffdModes.Missing);
        using (f)
        using (uffd)
        {
            var page = new byte[PageSize];
            var r = uffd.Copy(ptr, page, UffdCopyMode.None);
            Assert.AreEqual(Errno.EEXIST, r.Errno);
            Assert.IsTrue(DevicePte.IsDevicePrivate(f.Mm.PageTable.Get(ptr)), "the device page is untouched");
        }
    }

    [TestMethod(DisplayName = "hmm device memory + userfaultfd: a write-protected device-private page comes back write-protected; the write raises a WP userfault")]
    public void WriteProtectedDevicePage()
    {
        var (f, uffd, ptr) = Setup(UffdModes.Wp);
        using (f)
        using (uffd)
        {
            Assert.IsTrue(uffd.WriteProtect(ptr, Len, UffdWriteProtectMode.Wp).Succeeded);
            var pte = f.Mm.PageTable.Get(ptr);
            Assert.IsTrue(DevicePte.IsDevicePrivate(pte) && DevicePte.UffdWp(pte) && !DevicePte.IsWritableEntry(pte), "readable device-private entry with the swp uffd-wp bit");

            var writer = f.Task.Start(t => CpuWrite(t, ptr, Ints(1, _ => 77)));
            Assert.IsTrue(WaitForMessage(uffd, out var msg), "the write raised a userfault");
            Assert.AreEqual(UffdEvent.Pagefault, msg.Event);
            Assert.AreNotEqual(0UL, (ulong)(msg.PagefaultFlags & UffdPagefaultFlags.Wp), "a WP fault");
            var back = f.Mm.PageTable.Get(ptr);
            Assert.IsTrue(back.IsPresent && back.IsUffdWp && !back.IsWritable, "migrate_to_ram restored a write-protected present page");
            Assert.IsTrue(uffd.WriteProtect(ptr, PageSize, UffdWriteProtectMode.None).Succeeded);
            Assert.IsTrue(writer.Join(TimeSpan.FromSeconds(30)), "the writer completed after the unprotect");
            Assert.AreEqual(77, IntAt(CpuRead(f.Task, ptr, 4), 0));
        }
    }

    private static bool WaitForMessage(UserfaultfdCtx uffd, out UffdMsg msg)
    {
        var deadline = Environment.TickCount64 + 30_000;
        while (Environment.TickCount64 < deadline)
        {
            if (uffd.ReadOne(out msg).Succeeded)
                return true;
            Thread.Yield();
        }
        msg = default;
        return false;
    }
}
