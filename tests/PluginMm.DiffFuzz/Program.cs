using PluginMm.Conformance;
using System.Globalization;
using PluginMm.DiffFuzz;

const string Help = """
    PluginMm.DiffFuzz — differential fuzzer: random userfaultfd operation sequences on the model and on this kernel.

      --seconds N        run for N seconds (default 60 unless --cases is given)
      --cases N          run N cases
      --seed S           run seed (decimal or 0x hex; default 1); case i uses a seed derived from S and i
      --types LIST       comma-separated memory types: anon,shmem,shmem-private,hugetlb,hugetlb-private (default all)
      --out DIR          save each divergence class's minimal case file in DIR (default difffuzz-cases)
      --no-shrink        do not shrink divergent cases
      --replay FILE      run one case file and print its trace (exit 1 if it diverges)
      --side SIDE        with --replay: model, host or both (default both)
      --shrink FILE      shrink a divergent case file (keeping its class) and print the minimal case file
      --case SEED        print the case a case seed generates (with --types)
      --help             this text

    Ends with: difffuzz: N cases, M identical, K divergent (classes: ...)
    """;

var o = new FuzzOptions { OutDir = "difffuzz-cases" };
string? replay = null, side = "both", shrink = null;
ulong? showCase = null;
for (int i = 0; i < args.Length; i++)
{
    string Arg() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--help" or "-h": Console.WriteLine(Help); return 0;
        case "--seconds": o.Duration = TimeSpan.FromSeconds(double.Parse(Arg(), CultureInfo.InvariantCulture)); break;
        case "--cases": o.Cases = long.Parse(Arg(), CultureInfo.InvariantCulture); break;
        case "--seed": o.Seed = Op.ParseNum(Arg()); break;
        case "--types": o.Types = Arg().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(MemTypeNames.Parse).ToList(); break;
        case "--out": o.OutDir = Arg(); break;
        case "--no-shrink": o.Shrink = false; break;
        case "--replay": replay = Arg(); break;
        case "--side": side = Arg(); break;
        case "--shrink": shrink = Arg(); break;
        case "--case": showCase = Op.ParseNum(Arg()); break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}\n{Help}"); return 2;
    }
}
if (o.Duration is null && o.Cases is null)
    o.Duration = TimeSpan.FromSeconds(60);

if (showCase is { } cs)
{
    Console.Write(Generator.Generate(cs, o.Types).ToText());
    return 0;
}

replay ??= shrink;
bool needHuge = replay is null ? o.Types.Any(t => t.IsHuge()) : FuzzCase.Parse(File.ReadAllText(replay)).Type.IsHuge();
if (needHuge && side != "model")
    HostSide.ReserveHugePages(16);
using var release = new HugePagesRelease();
// Give the huge pages back on every way out: normal end, Ctrl-C, SIGTERM, SIGHUP.
AppDomain.CurrentDomain.ProcessExit += (_, _) => HostSide.ReleaseHugePages();
using var onInt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, _ => HostSide.ReleaseHugePages());
using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, _ => HostSide.ReleaseHugePages());
using var onHup = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGHUP, _ => HostSide.ReleaseHugePages());

// The watchdog: no operation finished for two minutes means something hangs beyond every timeout; report and exit.
long beat = Environment.TickCount64;
Runner.Heartbeat = () => Interlocked.Exchange(ref beat, Environment.TickCount64);
using var watchdog = new Timer(_ =>
{
    if (Environment.TickCount64 - Interlocked.Read(ref beat) > 120_000)
    {
        Console.WriteLine("difffuzz: watchdog: no operation completed for 120 s (a hang beyond the per-op timeouts); exiting");
        HostSide.ReleaseHugePages();
        Environment.Exit(3);
    }
}, null, 10_000, 10_000);

if (replay is not null)
{
    var c = FuzzCase.Parse(File.ReadAllText(replay));
    if (shrink is not null)
    {
        var first = Runner.Run(c);
        if (first.Divergence is not { } d0)
        {
            Console.WriteLine($"difffuzz: {Path.GetFileName(shrink)} does not diverge; nothing to shrink");
            return 0;
        }
        var (small, sd) = Runner.Shrink(c, d0, TimeSpan.FromSeconds(120));
        Console.Write(Runner.CaseFile(small, sd, $"shrunk from {Path.GetFileName(shrink)} ({c.Ops.Count} -> {small.Ops.Count} ops)"));
        return 1;
    }
    var run = Runner.Run(c, model: side != "host", host: side != "model");
    Console.Write(Runner.Trace(run));
    if (run.Error is not null)
        return 2;
    Console.WriteLine(run.Divergence is { } d ? $"difffuzz: replay {Path.GetFileName(replay)}: divergent ({d.Class})" : $"difffuzz: replay {Path.GetFileName(replay)}: {(side == "both" ? "identical" : $"ran on {side}")}");
    return run.Divergence is null ? 0 : 1;
}

if (HostSide.HugeReason is { } hr && o.Types.Any(t => t.IsHuge()))
    Console.WriteLine($"difffuzz: hugetlb types skipped on the host: {hr}");
if (HostSide.HugeReason is not null)
    o.Types = o.Types.Where(t => !t.IsHuge()).ToList();
if (o.Types.Count == 0)
{
    Console.WriteLine("difffuzz: no memory type can run");
    return 2;
}
Console.WriteLine($"difffuzz: seed {Op.Hex(o.Seed)}, types {string.Join(",", o.Types.Select(t => t.Name()))}, {(o.Cases is { } n ? $"{n} cases" : $"{o.Duration!.Value.TotalSeconds:F0} s")}");
var sum = Fuzzer.Run(o, Console.Out);
Console.WriteLine($"difffuzz: {sum.Elapsed.TotalSeconds:F0} s");
Console.WriteLine(sum.Line);
return 0;

/// <summary>Gives reserved huge pages back when the program ends.</summary>
internal sealed class HugePagesRelease : IDisposable
{
    public void Dispose() => HostSide.ReleaseHugePages();
}
