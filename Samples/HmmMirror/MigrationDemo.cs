using PluginMm;
using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;
using PluginMm.Userfaultfd;

namespace HmmMirror;

/// <summary>One step of the migration demo and the counters after it.</summary>
/// <param name="Step">What was done.</param>
/// <param name="Result">The ioctl's errno (None = success).</param>
/// <param name="CPages">cpages the ioctl reported (for the CPU steps: pages read, or migrate_to_ram calls so far).</param>
/// <param name="UffdFaults">Faults the userfaultfd handler has served so far.</param>
/// <param name="OnDevice">Pages of the buffer whose CPU entry is device-private.</param>
/// <param name="DeviceInUse">Device pages handed out and not yet freed (calloc - cfree).</param>
/// <param name="DeviceFreed">Device pages given back through page_free so far (cfree).</param>
public sealed record MigrationStep(string Step, Errno Result, ulong CPages, long UffdFaults, int OnDevice, long DeviceInUse, long DeviceFreed);

/// <summary>
/// Device-private memory under userfaultfd: a MISSING-registered anonymous buffer whose pages a handler supplies, read by
/// the device through HMM (so the handler fills them), migrated to the device (<c>migrate_vma_*</c>), one page touched by
/// the CPU (the page map's <c>migrate_to_ram</c> brings it back), an attempt on pages never populated (the kernel's <c>migrate_vma_insert_page</c> backs off in a MISSING-registered VMA), migrated back, and
/// read by the CPU.
/// </summary>
public static class MigrationDemo
{
    /// <summary>Runs the demo: <paramref name="pages"/> pages, of which the first <paramref name="populated"/> get populated.</summary>
    public static (List<MigrationStep> Steps, bool DataIntact) Run(ModelKernel kernel, int pages, int populated)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var mm = kernel.CreateMm();
        ulong len = (ulong)pages * Folio.BasePageSize;
        Seed002Demo.Check(mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong addr), "mmap");
        Seed002Demo.Check(mm.Userfaultfd(0, out var uffd), "userfaultfd");
        Seed002Demo.Check(uffd!.Api(Uapi.UFFD_API, 0, out _, out _).Errno, "UFFDIO_API");
        Seed002Demo.Check(uffd.Register(addr, len, UffdModes.Missing, out _).Errno, "UFFDIO_REGISTER");
        var served = new System.Runtime.CompilerServices.StrongBox<long>();
        var handler = new Thread(() => Seed002Demo.ServeFaults(uffd, addr, served)) { IsBackground = true, Name = "uffd-handler" };
        handler.Start();
        var device = new DmirrorDevice(0);
        Seed002Demo.Check(device.Open(mm, out var dmirror), "open /dev/hmm_dmirror0");
        var task = mm.CreateTask("demo");
        var steps = new List<MigrationStep>();
        var buffer = new byte[len];
        ulong popLen = (ulong)populated * Folio.BasePageSize;

        MigrationStep Step(string what, HmmDmirrorCommand command, ulong start, int n)
        {
            var cmd = new HmmDmirrorCmd { Addr = start, NPages = (ulong)n };
            var r = dmirror!.Ioctl(command, ref cmd, buffer, task);
            var s = new MigrationStep(what, r, r == Errno.None ? cmd.CPages : 0, Interlocked.Read(ref served.Value), OnDevice(mm, addr, pages),
                device.Memory.InUse, Interlocked.Read(ref device.Memory.Cfree));
            steps.Add(s);
            return s;
        }

        Step($"device READ_UNLOCKED pages 0-{populated - 1} (handler fills them)", HmmDmirrorCommand.ReadUnlocked, addr, populated);
        Step($"MIGRATE_TO_DEV pages 0-{populated - 1}", HmmDmirrorCommand.MigrateToDev, addr, populated);
        var one = new byte[Folio.BasePageSize];
        bool touched = task.Read(addr, one) == AccessResult.Ok && one.AsSpan().IndexOfAnyExcept(Seed002Demo.PatternByte(0)) < 0;
        steps.Add(new MigrationStep("CPU reads page 0 (device-private: migrate_to_ram)", touched ? Errno.None : Errno.EIO,
            (ulong)Interlocked.Read(ref device.Memory.CpuFaultMigrations), Interlocked.Read(ref served.Value), OnDevice(mm, addr, pages),
            device.Memory.InUse, Interlocked.Read(ref device.Memory.Cfree)));
        Step($"MIGRATE_TO_DEV pages {populated}-{pages - 1} (never populated)", HmmDmirrorCommand.MigrateToDev, addr + popLen, pages - populated);
        Step($"MIGRATE_TO_SYS pages 0-{pages - 1}", HmmDmirrorCommand.MigrateToSys, addr, pages);

        var cpu = new byte[popLen];
        bool intact = touched && task.Read(addr, cpu) == AccessResult.Ok;
        for (int i = 0; intact && i < populated; i++)
            intact = cpu.AsSpan(i * Folio.BasePageSize, Folio.BasePageSize).IndexOfAnyExcept(Seed002Demo.PatternByte(i)) < 0;
        steps.Add(new MigrationStep($"CPU reads pages 0-{populated - 1}", intact ? Errno.None : Errno.EIO, (ulong)populated,
            Interlocked.Read(ref served.Value), OnDevice(mm, addr, pages), device.Memory.InUse, Interlocked.Read(ref device.Memory.Cfree)));

        uffd.Dispose();
        if (!handler.Join(TimeSpan.FromSeconds(30)))
            throw new InvalidOperationException("the userfaultfd handler thread did not stop");
        dmirror!.Dispose();
        mm.Exit();
        return (steps, intact);
    }

    private static int OnDevice(Mm mm, ulong addr, int pages)
    {
        int n = 0;
        for (int i = 0; i < pages; i++)
            if (DevicePte.IsDevicePrivate(mm.PageTable.Get(addr + (ulong)i * Folio.BasePageSize)))
                n++;
        return n;
    }
}
