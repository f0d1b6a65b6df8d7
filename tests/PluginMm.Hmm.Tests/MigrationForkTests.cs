using HmmMirror;
using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;
using static PluginMm.Hmm.Tests.HmmFixture;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// A fork that copies a migration entry while another mm's migration of the page is between setup and finalize: the
/// child's copy must be resolved by <c>remove_migration_ptes</c> too (the kernel finds it through the rmap walk), or the
/// child's access would wait for ever.
/// </summary>
[TestClass]
public sealed class MigrationForkTests
{
    [TestMethod(DisplayName = "hmm migrate: a migration entry copied by fork mid-migration is resolved at finalize")]
    public void ForkCopiesMigrationEntry()
    {
        using var f = new HmmFixture();
        const int npages = 1;
        ulong size = PageSize;
        ulong ptr = f.MmapAnon(size, Prot.Read | Prot.Write);
        CpuWrite(f.Task, ptr, Ints(1024, i => i));
        Assert.AreEqual(Errno.None, Cmd(f.Fd, HmmDmirrorCommand.MigrateToDev, ptr, npages, new byte[size], f.Task, out _));
        var child = f.Mm.Fork(); // the child maps the same device-private page
        Assert.IsTrue(DevicePte.IsDevicePrivate(child.PageTable.Get(ptr)));

        // The device migrates the page back from the parent; try_to_migrate turns the child's entry into a migration entry.
        var args = new MigrateVma(1)
        {
            Vma = f.Mm.VmaLookup(ptr),
            Start = ptr,
            End = ptr + size,
            PgmapOwner = f.Device0,
            Flags = MigrateVmaSelect.DevicePrivate,
        };
        f.Mm.MmapLock.EnterReadLock();
        try
        {
            Assert.AreEqual(Errno.None, MigrateDevice.MigrateVmaSetup(args));
            Assert.IsTrue(args.IsMigrating(0));
            Assert.IsTrue(DevicePte.IsMigration(child.PageTable.Get(ptr)), "the child's mapping was unmapped too");

            // Meanwhile the child forks: the grandchild copies the migration entry.
            var grandchild = child.Fork();
            Assert.IsTrue(DevicePte.IsMigration(grandchild.PageTable.Get(ptr)));

            var dst = f.Kernel.Allocator.Alloc()!;
            dst.Lock();
            args.SrcPages[0]!.Data.CopyTo(dst.Data);
            args.SetDst(0, dst, writable: false);
            MigrateDevice.MigrateVmaPages(args);
            MigrateDevice.MigrateVmaFinalize(args);

            var g = grandchild.PageTable.Get(ptr);
            Assert.IsTrue(g.IsPresent && ReferenceEquals(g.Folio, dst), "finalize resolved the grandchild's copy");
            AssertInts(CpuRead(grandchild.CreateTask("grandchild"), ptr, size), 1024, i => i, "the grandchild reads the data");
            grandchild.Exit();
        }
        finally { f.Mm.MmapLock.ExitReadLock(); }
        AssertInts(CpuRead(child.CreateTask("child"), ptr, size), 1024, i => i, "the child reads the data");
        child.Exit();
        Assert.AreEqual(0, f.Device0.Memory.InUse, "the device page was freed");
    }
}
