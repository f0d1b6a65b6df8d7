using HmmMirror;
using PluginMm;
using PluginMm.Runtime;

// Seed 002's scenario on the built-in model: a device (dmirror, lib/test_hmm.c) reads an anonymous region whose pages a
// userfaultfd handler supplies on demand, once per HMM path. No arguments, no set-up.
const int Pages = 256;
var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);

Console.WriteLine($"HmmMirror: a dmirror device reads {Pages} pages of anonymous memory registered with userfaultfd (MISSING);");
Console.WriteLine("a handler thread fills each faulting page with UFFDIO_COPY. One run per HMM path:");
Console.WriteLine();
Console.WriteLine($"  {"HMM path",-34} {"result",-8} {"pages ok",9} {"uffd faults",12} {"lock drops",11} {"-EBUSY restarts",16} {"driver retries",15} {"time",10}");
var paths = new[] { DmirrorFaultPath.Mainline, DmirrorFaultPath.Seed002, DmirrorFaultPath.UnlockedTimeout };
foreach (var path in paths)
    Seed002Demo.Run(kernel, path, 8); // warm-up, not reported: keeps JIT compilation out of the times below
bool ok = true;
foreach (var path in paths)
{
    var r = Seed002Demo.Run(kernel, path, Pages);
    string name = path switch
    {
        DmirrorFaultPath.Mainline => "mainline hmm_range_fault",
        DmirrorFaultPath.Seed002 => "seed 002 (ALLOW_RETRY|USER)",
        _ => "hmm_range_fault_unlocked_timeout",
    };
    string result = r.Result == Errno.None ? "ok" : "-" + r.Result;
    Console.WriteLine($"  {name,-34} {result,-8} {r.PagesCorrect,4}/{r.Pages,-4} {r.UffdFaultsServed,12} {r.Stats.LockDrops,11} {r.Stats.WalkRestarts,16} {r.Stats.EbusyRetries + r.Stats.ReadRetries,15} {r.Elapsed.TotalMilliseconds,7:F2} ms");
    ok &= path == DmirrorFaultPath.Mainline ? r.Result == Errno.EFAULT : r.Result == Errno.None && r.PagesCorrect == r.Pages;
}
Console.WriteLine();
Console.WriteLine("Mainline HMM never sets FAULT_FLAG_ALLOW_RETRY, so handle_userfault cannot sleep and the device read fails (-EFAULT).");
Console.WriteLine("Seed 002 lets the fault drop mmap_lock; HMM retakes it and returns -EBUSY, which restarts the walk: one page per drop.");
Console.WriteLine("The unlocked variant takes the lock itself, refreshes the notifier sequence and restarts after each lock drop.");
Console.WriteLine("(\"driver retries\" counts -EBUSY or read_retry reaching dmirror's loop: only an invalidation during a drop causes one.)");
Console.WriteLine(ok ? "All three paths behaved as expected." : "UNEXPECTED RESULT: see the table above.");

// Device memory: the same kind of buffer, migrated to the device's private memory and back (migrate_vma_*).
const int DemoPages = 256, Populated = 192;
Console.WriteLine();
Console.WriteLine($"Device-private memory: {DemoPages} pages registered MISSING; the device reads the first {Populated} (the handler fills them),");
Console.WriteLine("migrates them to its memory, the CPU touches one (migrate_to_ram), the device tries the never-populated rest,");
Console.WriteLine("migrates everything back, and the CPU reads the data:");
Console.WriteLine();
Console.WriteLine($"  {"step",-62} {"result",-8} {"cpages",7} {"uffd faults",12} {"on device",10} {"dev in use",11} {"page_free",10}");
var (steps, intact) = MigrationDemo.Run(kernel, DemoPages, Populated);
foreach (var s in steps)
    Console.WriteLine($"  {s.Step,-62} {(s.Result == Errno.None ? "ok" : "-" + s.Result),-8} {s.CPages,7} {s.UffdFaults,12} {s.OnDevice,10} {s.DeviceInUse,11} {s.DeviceFreed,10}");
Console.WriteLine();
Console.WriteLine("Empty entries of a MISSING-registered VMA are not migrated: the driver allocated device pages for them, but");
Console.WriteLine("migrate_vma_insert_page backs off without delivering a userfault and finalize frees them (page_free), so the device");
Console.WriteLine("cannot read them back: -ENOENT. Migrating back frees every device page; the CPU reads the data without a new fault.");
bool migrationOk = intact && steps[1].CPages == Populated && steps[2].OnDevice == Populated - 1 && steps[3].Result == Errno.ENOENT
    && steps[4].CPages == Populated - 1 && steps[^1].DeviceInUse == 0 && steps[^1].UffdFaults == Populated;
Console.WriteLine(migrationOk ? "Migration behaved as expected." : "UNEXPECTED RESULT: see the migration table above.");
ok &= migrationOk;
return ok ? 0 : 1;
