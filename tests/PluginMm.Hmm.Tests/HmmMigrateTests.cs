using HmmMirror;
using PluginMm.Hmm;
using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;
using static PluginMm.Hmm.Tests.HmmFixture;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// Ports of hmm-tests.c's migration, exclusive-access, GUP and CoW TEST_Fs (Linux 6.18), each in both fixture variants
/// (hmm_device_private / hmm_device_coherent, hmm2_* for the two-device tests), asserting what hmm-tests asserts.
/// </summary>
[TestClass]
public sealed class HmmMigrateTests
{
    private static ulong Anon(HmmFixture f, ulong size, Prot prot = Prot.Read | Prot.Write, MapFlags flags = MapFlags.Private) => f.MmapAnon(size, prot, flags);

    /// <summary>
    /// The prologue most of these tests share: a private anonymous buffer of <paramref name="npages"/> pages initialised in
    /// system memory with ptr[i] = i, migrated to the device (cpages == npages), and the device's read-back checked.
    /// </summary>
    private static ulong MigratedBuffer(HmmFixture f, int npages, HmmDmirrorCommand command = HmmDmirrorCommand.MigrateToDev)
    {
        ulong size = (ulong)npages * PageSize;
        int ints = (int)(size / 4);
        ulong ptr = Anon(f, size);
        CpuWrite(f.Task, ptr, Ints(ints, i => i));
        var mirror = new byte[size];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, command, ptr, npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)npages, cmd.CPages);
        AssertInts(mirror, ints, i => i, "what the device read");
        return ptr;
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm migrate (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm migrate (hmm_device_coherent)")]
    public void Migrate(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        ulong ptr = MigratedBuffer(f, Npages);
        // Beyond hmm-tests: the pages now live in the device, and unmapping gives them back through page_free.
        Assert.AreEqual(Npages, f.Device0.Memory.InUse);
        var pte = f.Mm.PageTable.Get(ptr);
        Assert.IsTrue(variant == MemoryDeviceType.Private ? DevicePte.IsDevicePrivate(pte) : pte.IsPresent && pte.Folio!.IsDeviceCoherent);
        Assert.AreEqual(Errno.None, f.Mm.Munmap(ptr, Size));
        Assert.AreEqual(0, f.Device0.Memory.InUse, "munmap freed every device page (page_free)");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm migrate_fault (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm migrate_fault (hmm_device_coherent)")]
    public void MigrateFault(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        ulong ptr = MigratedBuffer(f, Npages);
        // Fault half the pages back to system memory and check them.
        AssertInts(CpuRead(f.Task, ptr, Size / 2), ints / 2, i => i, "CPU read of the first half");
        // Migrate memory to the device again.
        var mirror = new byte[Size];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.MigrateToDev, ptr, Npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        AssertInts(mirror, ints, i => i, "what the device read the second time");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm migrate_release (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm migrate_release (hmm_device_coherent)")]
    public void MigrateRelease(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        ulong ptr = MigratedBuffer(f, Npages);
        // Release device memory.
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Release, ptr, Npages, new byte[Size], f.Task, out _));
        // Fault pages back to system memory and check them.
        AssertInts(CpuRead(f.Task, ptr, Size / 2), ints / 2, i => i, "CPU read after release");
        // Beyond hmm-tests: release left nothing on the device and everything in system memory.
        Assert.AreEqual(0, f.Device0.Memory.InUse);
        Assert.AreEqual(0, f.Device0.Memory.Chunks);
        Assert.IsTrue(f.Mm.PageTable.Get(ptr + Size - PageSize) is { IsPresent: true, Folio.IsZoneDevice: false });
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm migrate_shared (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm migrate_shared (hmm_device_coherent)")]
    public void MigrateShared(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        ulong ptr = Anon(f, Size, flags: MapFlags.Shared);
        var mirror = new byte[Size];
        Assert.AreEqual(Errno.ENOENT, Cmd(f.Fd, HmmDmirrorCommand.MigrateToDev, ptr, Npages, mirror, f.Task, out _));
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm migrate_mixed (hmm2_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm migrate_mixed (hmm2_device_coherent)")]
    public void MigrateMixed(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        const int npages = 6;
        ulong size = npages * PageSize;
        var fd0 = f.Fd;
        var fd1 = f.Open(f.Device1, f.Mm);
        var mirror = new byte[size];
        // Reserve a range of addresses.
        ulong p = Anon(f, size, Prot.None);
        // Migrating a protected area should be an error.
        Assert.AreEqual(Errno.EINVAL, Cmd(fd1, HmmDmirrorCommand.MigrateToDev, p, npages, mirror, f.Task, out _));
        // Punch a hole after the first page address.
        Assert.AreEqual(Errno.None, f.Mm.Munmap(p + PageSize, PageSize));
        // We expect an error if the vma doesn't cover the range.
        Assert.AreEqual(Errno.EINVAL, Cmd(fd1, HmmDmirrorCommand.MigrateToDev, p, 3, mirror, f.Task, out _));
        // Page 2 will be a read-only zero page.
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(p + 2 * PageSize, PageSize, Prot.Read));
        int val = IntAt(CpuRead(f.Task, p + 2 * PageSize, 4), 0) + 3;
        Assert.AreEqual(3, val);
        // Page 3 will be read-only.
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(p + 3 * PageSize, PageSize, Prot.Read | Prot.Write));
        CpuWrite(f.Task, p + 3 * PageSize, Ints(1, _ => val));
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(p + 3 * PageSize, PageSize, Prot.Read));
        // Page 4-5 will be read-write.
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(p + 4 * PageSize, 2 * PageSize, Prot.Read | Prot.Write));
        CpuWrite(f.Task, p + 4 * PageSize, Ints(1, _ => val));
        CpuWrite(f.Task, p + 5 * PageSize, Ints(1, _ => val));
        // Now try to migrate pages 2-5 to device 1.
        Assert.AreEqual(Errno.None, Cmd(fd1, HmmDmirrorCommand.MigrateToDev, p + 2 * PageSize, 4, mirror, f.Task, out var cmd));
        Assert.AreEqual(4UL, cmd.CPages);
        // Page 5 won't be migrated to device 0 because it's on device 1.
        Assert.AreEqual(Errno.ENOENT, Cmd(fd0, HmmDmirrorCommand.MigrateToDev, p + 5 * PageSize, 1, mirror, f.Task, out _));
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm migrate_multiple (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm migrate_multiple (hmm_device_coherent)")]
    public void MigrateMultiple(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        for (int c = 0; c < 10; c++)
        {
            ulong ptr = Anon(f, Size);
            CpuWrite(f.Task, ptr, Ints(ints, i => i));
            var mirror = new byte[Size];
            Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.MigrateToDev, ptr, Npages, mirror, f.Task, out var cmd));
            Assert.AreEqual((ulong)Npages, cmd.CPages);
            AssertInts(mirror, ints, i => i, $"round {c}: what the device read");
            // Migrate back to system memory and check them: coherent pages explicitly, private ones by CPU faults.
            if (f.IsCoherent)
            {
                Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.MigrateToSys, ptr, Npages, mirror, f.Task, out cmd));
                Assert.AreEqual((ulong)Npages, cmd.CPages);
            }
            AssertInts(CpuRead(f.Task, ptr, Size), ints, i => i, $"round {c}: CPU read");
            Assert.AreEqual(Errno.None, f.Mm.Munmap(ptr, Size));
        }
        Assert.AreEqual(0, f.Device0.Memory.InUse, "every device page came back (page_free)");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm exclusive (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm exclusive (hmm_device_coherent)")]
    public void Exclusive(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        ulong ptr = Anon(f, Size);
        CpuWrite(f.Task, ptr, Ints(ints, i => i));
        var mirror = new byte[Size];
        // Map memory exclusively for device access.
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Exclusive, ptr, Npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        AssertInts(mirror, ints, i => i, "what the device read");
        Assert.IsTrue(DevicePte.IsDeviceExclusive(f.Mm.PageTable.Get(ptr)));
        // Fault pages back to system memory and check them (ptr[i]++).
        var data = CpuRead(f.Task, ptr, Size);
        AssertInts(data, ints, i => i, "CPU read of exclusive pages");
        CpuWrite(f.Task, ptr, Ints(ints, i => i + 1));
        AssertInts(CpuRead(f.Task, ptr, Size), ints, i => i + 1, "after the increments");
        // Check atomic access revoked.
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.CheckExclusive, ptr, Npages, mirror, f.Task, out _));
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm exclusive_mprotect (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm exclusive_mprotect (hmm_device_coherent)")]
    public void ExclusiveMprotect(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        ulong ptr = MigratedBuffer(f, Npages, HmmDmirrorCommand.Exclusive);
        Assert.AreEqual(Errno.None, f.Mm.Mprotect(ptr, Size, Prot.Read));
        // Simulate a device writing system memory.
        Assert.AreEqual(Errno.EPERM, Cmd(f.Fd, HmmDmirrorCommand.Write, ptr, Npages, new byte[Size], f.Task, out _));
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm exclusive_cow (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm exclusive_cow (hmm_device_coherent)")]
    public void ExclusiveCow(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        int ints = (int)(Size / 4);
        ulong ptr = Anon(f, Size);
        CpuWrite(f.Task, ptr, Ints(ints, i => i));
        var mirror = new byte[Size];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Exclusive, ptr, Npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)Npages, cmd.CPages);
        var child = f.Mm.Fork();
        var childTask = child.CreateTask("child");
        // Child verifies CoW independently; the parent increments too.
        foreach (var task in new[] { childTask, f.Task })
        {
            AssertInts(CpuRead(task, ptr, Size), ints, i => i, $"{task.Name} sees the values");
            CpuWrite(task, ptr, Ints(ints, i => i + 1));
            AssertInts(CpuRead(task, ptr, Size), ints, i => i + 1, $"{task.Name} after the increments");
        }
        child.Exit();
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm hmm_gup_test (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm hmm_gup_test (hmm_device_coherent)")]
    public void HmmGupTest(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        const int npages = 4;
        ulong size = npages * PageSize;
        int ints = (int)(size / 4);
        ulong ptr = MigratedBuffer(f, npages);
        // gup_test: GUP_BASIC_TEST, GUP_FAST_BENCHMARK (no FOLL_LONGTERM), PIN_FAST_BENCHMARK with FOLL_LONGTERM,
        // PIN_LONGTERM_BENCHMARK; all with FOLL_WRITE, one page each; the pages are put again right after.
        bool[] longterm = { false, false, true, true };
        for (int i = 0; i < npages; i++)
        {
            f.Mm.MmapLock.EnterReadLock();
            Folio? page;
            Errno e;
            try { e = Gup.GetUserPage(f.Mm, ptr + (ulong)i * PageSize, write: true, longterm[i], f.Task, out page); }
            finally { f.Mm.MmapLock.ExitReadLock(); }
            Assert.AreEqual(Errno.None, e, $"gup of page {i}");
            page!.Put();
        }
        // Take snapshot to CPU pagetables.
        var m = new byte[npages];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Snapshot, ptr, npages, m, f.Task, out var cmd));
        Assert.AreEqual((ulong)npages, cmd.CPages);
        byte first = f.IsCoherent ? (byte)(DmirrorProt.DevCoherentLocal | DmirrorProt.Write) : DmirrorProt.Write;
        Assert.AreEqual(first, m[0]);
        Assert.AreEqual(first, m[1]);
        Assert.AreEqual(DmirrorProt.Write, m[2]);
        Assert.AreEqual(DmirrorProt.Write, m[3]);
        // Check again the content on the pages. Make sure there's no corrupted data.
        AssertInts(CpuRead(f.Task, ptr, size), ints, i => i, "content after GUP");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm hmm_cow_in_device (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm hmm_cow_in_device (hmm_device_coherent)")]
    public void HmmCowInDevice(MemoryDeviceType variant)
    {
        using var f = new HmmFixture(variant);
        const int npages = 4;
        ulong size = npages * PageSize;
        int ints = (int)(size / 4);
        ulong ptr = Anon(f, size);
        CpuWrite(f.Task, ptr, Ints(ints, i => i));
        var mirror = new byte[size];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.MigrateToDev, ptr, npages, mirror, f.Task, out var cmd));
        Assert.AreEqual((ulong)npages, cmd.CPages);
        var child = f.Mm.Fork(); // the child just waits to be killed
        // The parent writes to the CoW pages and gets a new copy in system memory (device-private pages migrate first).
        CpuWrite(f.Task, ptr, Ints(ints, i => i));
        // Beyond hmm-tests: the child still sees the original data, and once it is gone no device page is left in use.
        AssertInts(CpuRead(child.CreateTask("child"), ptr, size), ints, i => i, "the child's copy");
        child.Exit();
        Assert.AreEqual(0, f.Device0.Memory.InUse, "no device page leaked through fork and CoW");
        AssertInts(CpuRead(f.Task, ptr, size), ints, i => i, "the parent's copy");
        var m = new byte[npages];
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.Snapshot, ptr, npages, m, f.Task, out cmd));
        Assert.AreEqual((ulong)npages, cmd.CPages);
        for (int i = 0; i < npages; i++)
            Assert.AreEqual(DmirrorProt.Write, m[i], $"page {i}");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm anon_write_huge (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm anon_write_huge (hmm_device_coherent)")]
    public void AnonWriteHuge(MemoryDeviceType variant)
    {
        _ = variant;
        Assert.Inconclusive("anon_write_huge needs transparent huge pages (MADV_HUGEPAGE on anonymous memory), which the model does not have yet");
    }

    [TestMethod]
    [DataRow(MemoryDeviceType.Private, DisplayName = "hmm mixedmap (hmm_device_private)")]
    [DataRow(MemoryDeviceType.Coherent, DisplayName = "hmm mixedmap (hmm_device_coherent)")]
    public void Mixedmap(MemoryDeviceType variant)
    {
        _ = variant;
        Assert.Inconclusive("mixedmap mmaps the dmirror device file itself (dmirror_fops_mmap: vm_insert_page of zeroed pages, VM_MIXEDMAP); the model has no driver-file mmap yet");
    }

    [TestMethod(DisplayName = "hmm migrate: in a MISSING-registered VMA empty entries are not migrated and no userfault is raised (migrate_vma_insert_page backs off)")]
    public void UserfaultfdMissingBacksOff()
    {
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var (steps, intact) = MigrationDemo.Run(kernel, pages: 64, populated: 48);
        Assert.IsTrue(intact, "the CPU read back the handler's data after the round trip");
        Assert.AreEqual(48UL, steps[1].CPages, "populated pages migrate to the device");
        Assert.AreEqual(48, steps[1].OnDevice);
        Assert.AreEqual(47, steps[2].OnDevice, "the CPU touch brought page 0 back through migrate_to_ram");
        Assert.AreEqual(1UL, steps[2].CPages, "one migrate_to_ram call");
        Assert.AreEqual(Errno.ENOENT, steps[3].Result, "empty pages of a MISSING VMA stay empty");
        Assert.AreEqual(48L, steps[3].UffdFaults, "and raise no userfault");
        Assert.AreEqual(17L, steps[3].DeviceFreed, "page 0 and the device pages allocated for the empty ones came back through page_free");
        Assert.AreEqual(47UL, steps[4].CPages, "MIGRATE_TO_SYS brought every other device page back");
        Assert.AreEqual(0L, steps[^1].DeviceInUse);
        Assert.AreEqual(48L, steps[^1].UffdFaults, "the CPU read after the round trip needed no userfault");
    }
}
