using HmmMirror;
using PluginMm.Hmm;
using PluginMm.Runtime;
using static PluginMm.Hmm.Tests.HmmFixture;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// Ports of tools/testing/selftests/mm/hmm-tests.c (Linux 6.18) about system memory, the snapshot and the double map,
/// each in both fixture variants (device-private and device-coherent devices). Each keeps the kernel test's name,
/// set-up and assertions. Migration and exclusive access: <see cref="HmmMigrateTests"/>.
/// </summary>
[TestClass]
public sealed class HmmSelftestTests
{
    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm open_close (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm open_close (hmm_device_coherent)")]
    public void OpenClose(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        Assert.AreEqual(Errno.None, f.Device0.Open(f.Mm, out var fd));
        Assert.IsNotNull(fd);
        Assert.AreEqual(2, PluginMm.Runtime.Hmm.MmuNotifierSubscriptions.Of(f.Mm)!.Count, "each open inserts an interval notifier");
        fd.Dispose();
        Assert.AreEqual(1, PluginMm.Runtime.Hmm.MmuNotifierSubscriptions.Of(f.Mm)!.Count, "close removes it");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_read (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_read (hmm_device_coherent)")]
    public void AnonRead(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        ulong ptr = f.MmapAnon(Size, Prot.Read | Prot.Write);
        // Initialize buffer in system memory but leave the first two pages zero (pte_none and pfn_zero).
        int ints = (int)(Size / 4), skip = 2 * PageSize / 4;
        var init = Ints(ints, i => i);
        CpuWrite(f.Task, ptr + 2 * PageSize, init.AsSpan(skip * 4).ToArray());
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(ptr, Size, Prot.Read));
        // Populate the CPU page table with a special zero page.
        Assert.AreEqual(0, IntAt(CpuRead(f.Task, ptr + PageSize, 4), 0));
        Assert.IsTrue(f.Mm.PageTable.Get(ptr + PageSize).IsZeroPage);

        var mirror = new byte[Size];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Read, ptr, Npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        Assert.AreEqual(1UL, cmd.Faults);
        AssertInts(mirror, ints, i => i < skip ? 0 : i, "device read");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_read_prot (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_read_prot (hmm_device_coherent)")]
    public void AnonReadProt(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        ulong ptr = f.MmapAnon(Size, Prot.Read | Prot.Write);
        int ints = (int)(Size / 4);
        CpuWrite(f.Task, ptr, Ints(ints, i => i));
        // Initialize mirror buffer so we can verify it isn't written.
        var mirror = Ints(ints, i => -i);
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(ptr, Size, Prot.None));
        Assert.AreEqual(Errno.EFAULT, Cmd(f.Fd, HmmDmirrorCommand.Read, ptr, Npages, mirror, f.Task, out _));
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(ptr, Size, Prot.Read));
        AssertInts(CpuRead(f.Task, ptr, Size), ints, i => i, "buffer");
        AssertInts(mirror, ints, i => -i, "mirror untouched");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_write (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_write (hmm_device_coherent)")]
    public void AnonWrite(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        ulong ptr = f.MmapAnon(Size, Prot.Read | Prot.Write);
        int ints = (int)(Size / 4);
        var mirror = Ints(ints, i => i);
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Write, ptr, Npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        Assert.AreEqual(1UL, cmd.Faults);
        AssertInts(CpuRead(f.Task, ptr, Size), ints, i => i, "what the device wrote");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_write_prot (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_write_prot (hmm_device_coherent)")]
    public void AnonWriteProt(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        ulong ptr = f.MmapAnon(Size, Prot.Read);
        int ints = (int)(Size / 4);
        var mirror = new byte[Size];
        // Simulate a device reading a zero page of memory.
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Read, ptr, 1, mirror, f.Task, out var cmd));
        Assert.AreEqual(1UL, cmd.CPages);
        Assert.AreEqual(1UL, cmd.Faults);
        // Initialize data that the device will write to buffer->ptr.
        mirror = Ints(ints, i => i);
        Assert.AreEqual(Errno.EPERM, Cmd(f.Fd, HmmDmirrorCommand.Write, ptr, Npages, mirror, f.Task, out _));
        AssertInts(CpuRead(f.Task, ptr, Size), ints, _ => 0, "buffer still zero");
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(ptr, Size, Prot.Read | Prot.Write));
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Write, ptr, Npages, mirror, f.Task, out cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        Assert.AreEqual(1UL, cmd.Faults);
        AssertInts(CpuRead(f.Task, ptr, Size), ints, i => i, "what the device wrote");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_write_child (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_write_child (hmm_device_coherent)")]
    public void AnonWriteChild(MemoryDeviceType variant) => WriteChild(variant, MapFlags.Private, parentSeesChildWrite: false);

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_write_child_shared (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_write_child_shared (hmm_device_coherent)")]
    public void AnonWriteChildShared(MemoryDeviceType variant) => WriteChild(variant, MapFlags.Shared, parentSeesChildWrite: true);

    /// <summary>
    /// anon_write_child / anon_write_child_shared: after fork the child mirrors its own mm and writes through the device;
    /// a private mapping is copied on write (the parent keeps its data), a shared one shows the child's write.
    /// </summary>
    private static void WriteChild(MemoryDeviceType variant, MapFlags sharing, bool parentSeesChildWrite)
    {
        using var f = new HmmFixture(variant);
        ulong ptr = f.MmapAnon(Size, Prot.Read | Prot.Write, sharing);
        int ints = (int)(Size / 4);
        CpuWrite(f.Task, ptr, Ints(ints, i => i));
        var mirror = Ints(ints, i => -i);

        var child = f.Mm.Fork();
        var childTask = child.CreateTask("child");
        // Check that we see the parent's values.
        AssertInts(CpuRead(childTask, ptr, Size), ints, i => i, "child sees the parent's values");
        // The child process needs its own mirror to its own mm.
        var childFd = f.Open(f.PrivateDevice0, child); // hmm_open(0)
        Assert.AreEqual(Errno.None, Cmd(childFd, HmmDmirrorCommand.Write, ptr, Npages, mirror, childTask, out var cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        Assert.AreEqual(1UL, cmd.Faults);
        AssertInts(CpuRead(childTask, ptr, Size), ints, i => -i, "what the device wrote in the child");
        childFd.Dispose();
        child.Exit();

        if (parentSeesChildWrite)
            AssertInts(CpuRead(f.Task, ptr, Size), ints, i => -i, "parent sees the child's device write (MAP_SHARED)");
        else
            AssertInts(CpuRead(f.Task, ptr, Size), ints, i => i, "parent unchanged (CoW)");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_write_hugetlbfs (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_write_hugetlbfs (hmm_device_coherent)")]
    public void AnonWriteHugetlbfs(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        const int huge = 2 << 20;
        ulong size = 2 * (ulong)huge;
        int npages = (int)(size / PageSize), ints = (int)(size / 4);
        Assert.AreEqual(Errno.None, f.Kernel.HugetlbfsCreate("hugetlb", (long)size, huge, out var file));
        Assert.AreEqual(Errno.None, f.Mm.Mmap(0, size, Prot.Read | Prot.Write, MapFlags.Private, file, 0, out ulong ptr));
        var mirror = Ints(ints, i => i);
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Write, ptr, npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)npages, cmd.CPages);
        Assert.AreEqual(1UL, cmd.Faults);
        AssertInts(CpuRead(f.Task, ptr, size), ints, i => i, "what the device wrote");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm compound (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm compound (hmm_device_coherent)")]
    public void Compound(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        const int huge = 2 << 20;
        int npages = huge / PageSize;
        Assert.AreEqual(Errno.None, f.Kernel.HugetlbfsCreate("hugetlb", huge, huge, out var file));
        Assert.AreEqual(Errno.None, f.Mm.Mmap(0, huge, Prot.Read | Prot.Write, MapFlags.Private, file, 0, out ulong ptr));
        CpuWrite(f.Task, ptr, Ints(huge / 4, i => i));
        var perm = new byte[npages];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Snapshot, ptr, npages, perm, f.Task, out var cmd));
        Assert.AreEqual((ulong)npages, cmd.CPages);
        CollectionAssert.AreEqual(Enumerable.Repeat((byte)(DmirrorProt.Write | DmirrorProt.Pmd), npages).ToArray(), perm);
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(ptr, huge, Prot.Read));
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Snapshot, ptr, npages, perm, f.Task, out _));
        CollectionAssert.AreEqual(Enumerable.Repeat((byte)(DmirrorProt.Read | DmirrorProt.Pmd), npages).ToArray(), perm);
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm file_read (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm file_read (hmm_device_coherent)")]
    public void FileRead(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        Assert.AreEqual(Errno.None, f.Kernel.MemfdCreate("shmem", (long)Size, out var file));
        // Write initial contents of the file (the selftest's write(2), done through a writable mapping).
        Assert.AreEqual(Errno.None, f.Mm.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out ulong writer));
        CpuWrite(f.Task, writer, Ints(ints, i => i));
        Assert.AreEqual(Errno.None, f.Mm.Munmap(writer, Size));

        Assert.AreEqual(Errno.None, f.Mm.Mmap(0, Size, Prot.Read, MapFlags.Shared, file, 0, out ulong ptr));
        var mirror = new byte[Size];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Read, ptr, Npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        Assert.AreEqual(1UL, cmd.Faults);
        AssertInts(mirror, ints, i => i, "device read");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm file_write (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm file_write (hmm_device_coherent)")]
    public void FileWrite(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        Assert.AreEqual(Errno.None, f.Kernel.MemfdCreate("shmem", (long)Size, out var file));
        Assert.AreEqual(Errno.None, f.Mm.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out ulong ptr));
        var mirror = Ints(ints, i => i);
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Write, ptr, Npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        Assert.AreEqual(1UL, cmd.Faults);
        AssertInts(CpuRead(f.Task, ptr, Size), ints, i => i, "what the device wrote");
        var pread = new byte[Size];
        Assert.AreEqual(Errno.None, file!.Pread(0, pread));
        AssertInts(pread, ints, i => i, "pread");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_read_multiple (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_read_multiple (hmm_device_coherent)")]
    public void AnonReadMultiple(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        for (int c = 0; c < 10; c++)
        {
            ulong ptr = f.MmapAnon(Size, Prot.Read | Prot.Write);
            CpuWrite(f.Task, ptr, Ints(ints, i => i + c));
            var mirror = new byte[Size];
            Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Read, ptr, Npages, mirror, f.Task, out var cmd));
            Assert.AreEqual((ulong)Npages, cmd.CPages);
            Assert.AreEqual(1UL, cmd.Faults);
            AssertInts(mirror, ints, i => i + c, $"round {c}");
            Assert.AreEqual(Errno.None, f.Mm.Munmap(ptr, Size));
        }
        Assert.AreEqual(0, f.Fd.DeviceEntries, "munmap erased every device entry");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_teardown (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_teardown (hmm_device_coherent)")]
    public void AnonTeardown(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        int succeeded = 0;
        for (int c = 0; c < 10; c++)
        {
            ulong ptr = f.MmapAnon(Size, Prot.Read | Prot.Write);
            CpuWrite(f.Task, ptr, Ints(ints, i => i + c));
            var unmap = new Thread(() => f.Mm.Munmap(ptr + Size / 2, Size / 2));
            unmap.Start();
            var mirror = new byte[Size];
            var rc = Cmd(f.Fd, HmmDmirrorCommand.Read, ptr, Npages, mirror, f.Task, out var cmd);
            if (rc == Errno.None)
            {
                succeeded++;
                Assert.AreEqual((ulong)Npages, cmd.CPages);
                Assert.AreEqual(1UL, cmd.Faults);
                AssertInts(mirror, ints, i => i + c, $"round {c}");
            }
            else
                Assert.IsTrue(rc is Errno.EFAULT or Errno.EBUSY, $"a read racing munmap either succeeds fully or fails (got {rc})");
            Assert.IsTrue(unmap.Join(TimeSpan.FromSeconds(30)), "munmap hung");
            Assert.AreEqual(Errno.None, f.Mm.Munmap(ptr, Size));
        }
        Assert.AreEqual(0, f.Fd.DeviceEntries);
        Console.WriteLine($"{succeeded}/10 reads completed before the unmap");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm snapshot (hmm2_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm snapshot (hmm2_device_coherent)")]
    public void Snapshot(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        const int npages = 7;
        ulong size = npages * PageSize;
        var fd0 = f.Fd;
        var fd1 = f.Open(f.Device1, f.Mm);
        ulong p = f.MmapAnon(size, Prot.None);
        // Punch a hole after the first page address.
        Assert.AreEqual(Errno.None, f.Mm.Munmap(p + PageSize, PageSize));
        // Page 2 will be read-only zero page.
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(p + 2 * PageSize, PageSize, Prot.Read));
        Assert.AreEqual(3, IntAt(CpuRead(f.Task, p + 2 * PageSize, 4), 0) + 3);
        // Page 3 will be read-only.
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(p + 3 * PageSize, PageSize, Prot.Read | Prot.Write));
        CpuWrite(f.Task, p + 3 * PageSize, Ints(1, _ => 3));
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(p + 3 * PageSize, PageSize, Prot.Read));
        // Page 4-6 will be read-write.
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(p + 4 * PageSize, 3 * PageSize, Prot.Read | Prot.Write));
        CpuWrite(f.Task, p + 4 * PageSize, Ints(1, _ => 3));
        var mirror = new byte[size];
        // Page 5 will be migrated to device 0.
        Assert.AreEqual(Errno.None, Cmd(fd0, HmmDmirrorCommand.MigrateToDev, p + 5 * PageSize, 1, mirror, f.Task, out var cmd));
        Assert.AreEqual(1UL, cmd.CPages);
        // Page 6 will be migrated to device 1.
        Assert.AreEqual(Errno.None, Cmd(fd1, HmmDmirrorCommand.MigrateToDev, p + 6 * PageSize, 1, mirror, f.Task, out cmd));
        Assert.AreEqual(1UL, cmd.CPages);

        // Simulate a device snapshotting CPU pagetables.
        var m = new byte[npages];
        Assert.AreEqual(Errno.None, Cmd(fd0, HmmDmirrorCommand.Snapshot, p, npages, m, f.Task, out cmd));
        Assert.AreEqual((ulong)npages, cmd.CPages);
        Assert.AreEqual(DmirrorProt.Error, m[0]);
        Assert.AreEqual(DmirrorProt.Error, m[1]);
        Assert.AreEqual(DmirrorProt.Zero | DmirrorProt.Read, m[2]);
        Assert.AreEqual(DmirrorProt.Read, m[3]);
        Assert.AreEqual(DmirrorProt.Write, m[4]);
        if (!f.IsCoherent)
        {
            Assert.AreEqual(DmirrorProt.DevPrivateLocal | DmirrorProt.Write, m[5]);
            Assert.AreEqual(DmirrorProt.None, m[6]);
        }
        else
        {
            Assert.AreEqual(DmirrorProt.DevCoherentLocal | DmirrorProt.Write, m[5]);
            Assert.AreEqual(DmirrorProt.DevCoherentRemote | DmirrorProt.Write, m[6]);
        }
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm double_map (hmm2_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm double_map (hmm2_device_coherent)")]
    public void DoubleMap(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        const int npages = 6;
        ulong size = npages * PageSize;
        int ints = (int)(size / 4);
        var fd0 = f.Fd;
        var fd1 = f.Open(f.Device1, f.Mm);
        ulong ptr = f.MmapAnon(size, Prot.Read | Prot.Write);
        CpuWrite(f.Task, ptr, Ints(ints, i => i));
        // Make region read-only.
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(ptr, size, Prot.Read));
        foreach (var fd in new[] { fd0, fd1 })
        {
            // Simulate device 0, then device 1, reading system memory.
            var mirror = new byte[size];
            Assert.AreEqual(Errno.None, Cmd(fd, HmmDmirrorCommand.Read, ptr, npages, mirror, f.Task, out var cmd));
            Assert.AreEqual((ulong)npages, cmd.CPages);
            Assert.AreEqual(1UL, cmd.Faults);
            AssertInts(mirror, ints, i => i, "device read");
        }
        // Migrate pages to device 1 and try to read from device 0.
        var m1 = new byte[size];
        Assert.AreEqual(Errno.None, Cmd(fd1, HmmDmirrorCommand.MigrateToDev, ptr, npages, m1, f.Task, out var mc));
        Assert.AreEqual((ulong)npages, mc.CPages);
        var m0 = new byte[size];
        Assert.AreEqual(Errno.None, Cmd(fd0, HmmDmirrorCommand.Read, ptr, npages, m0, f.Task, out var rc));
        Assert.AreEqual((ulong)npages, rc.CPages);
        Assert.AreEqual(1UL, rc.Faults);
        AssertInts(m0, ints, i => i, "what device 0 read");
    }

    [TestMethod(DisplayName = "hmm dmirror ioctl argument checks")]
    public void IoctlArgumentChecks()
    {
        using var f = new HmmFixture();
        ulong ptr = f.MmapAnon(Size, Prot.Read | Prot.Write);
        var mirror = new byte[Size];
        var cmd = new HmmDmirrorCmd { Addr = ptr + 1, NPages = 1, CPages = 77, Faults = 88 };
        Assert.AreEqual(Errno.EINVAL, f.Fd.Ioctl(HmmDmirrorCommand.Read, ref cmd, mirror, f.Task), "unaligned addr");
        Assert.AreEqual(77UL, cmd.CPages, "on error the struct is not copied back");
        cmd = new HmmDmirrorCmd { Addr = ptr, NPages = 0 };
        Assert.AreEqual(Errno.EINVAL, f.Fd.Ioctl(HmmDmirrorCommand.Read, ref cmd, mirror, f.Task), "npages 0");
        cmd = new HmmDmirrorCmd { Addr = ptr, NPages = ulong.MaxValue >> 12 };
        Assert.AreEqual(Errno.EINVAL, f.Fd.Ioctl(HmmDmirrorCommand.Read, ref cmd, mirror, f.Task), "addr + size wraps");
        cmd = new HmmDmirrorCmd { Addr = ptr, NPages = 1 };
        Assert.AreEqual(Errno.EINVAL, f.Fd.Ioctl((HmmDmirrorCommand)0x42, ref cmd, mirror, f.Task), "unknown command");
        Assert.AreEqual(Errno.EFAULT, f.Fd.Ioctl(HmmDmirrorCommand.Read, ref cmd, new byte[10], f.Task), "copy_to_user into a short buffer");
        Assert.AreEqual(Errno.EFAULT, f.Fd.Ioctl(HmmDmirrorCommand.Read, ref cmd, mirror.AsSpan(0, 0), f.Task));
    }
}
