using System.Diagnostics;
using System.Reflection;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using PluginMm.Bench;
using static PluginMm.Bench.Report;

// dotnet run -c Release --project bench/PluginMm.Bench -- [--quick | --full] [--only=dispatch,seed003,roundtrip,host,generator,scaling]
var sw = Stopwatch.StartNew();
bool full = args.Contains("--full");
var only = args.FirstOrDefault(a => a.StartsWith("--only=", StringComparison.Ordinal))?["--only=".Length..]
    .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
bool Want(string part) => only is null || only.Contains(part);
var s = full ? Sizes.Full : Sizes.Quick;
string root = RepoRoot();
var report = new Report();
int failures = 0;

void Part(string name, Action body)
{
    if (!Want(name)) return;
    try { body(); }
    catch (Exception e)
    {
        failures++;
        report.Text($"**{name} failed**: `{e.GetType().Name}: {e.Message}`");
        report.AddGoal(new Goal(name, "(part failed)", "error", false, e.Message));
        Console.Error.WriteLine(e);
    }
}

string? hostUnavailable = RoundTrip.HostUnavailable();
if (hostUnavailable is not null)
    Console.WriteLine($"host parts skipped: {hostUnavailable}");

Part("dispatch", () => Parts.Dispatch(report, s));
Part("seed003", () => Parts.Seed003(report, s));
Part("roundtrip", () => Parts.ModelRoundTrip(report, s, hostUnavailable));
Part("host", () => Parts.HostHandler(report, s, root, hostUnavailable));
Part("generator", () => Parts.Generator(report, s));
Part("scaling", () => Parts.Scaling(report, s, hostUnavailable));

string cmd = "dotnet run -c Release --project bench/PluginMm.Bench -- " + (args.Length == 0 ? "--quick" : string.Join(' ', args));
string path = report.Write(root, cmd, sw.Elapsed, !full);
Console.WriteLine();
Console.WriteLine($"results: {path} ({sw.Elapsed.TotalMinutes:F1} min)");
return failures == 0 ? 0 : 1;

static string RepoRoot()
{
    var meta = typeof(Report).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "RepositoryRoot")?.Value;
    if (meta is not null && File.Exists(Path.Combine(meta, "PluginMm.sln")))
        return Path.GetFullPath(meta);
    for (var d = new DirectoryInfo(Environment.CurrentDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "PluginMm.sln")))
            return d.FullName;
    return Environment.CurrentDirectory;
}

/// <summary>How much of everything a run does.</summary>
internal sealed record Sizes(int Rounds, int Warmup, int BdnIterations, int DispatchReps, int FaultPasses, int ModelPages, int HostPages, int GenEdits)
{
    public static readonly Sizes Quick = new(Rounds: 7, Warmup: 1, BdnIterations: 5, DispatchReps: 10, FaultPasses: 8, ModelPages: 4096, HostPages: 16384, GenEdits: 6);
    public static readonly Sizes Full = new(Rounds: 15, Warmup: 2, BdnIterations: 15, DispatchReps: 10, FaultPasses: 16, ModelPages: 16384, HostPages: 65536, GenEdits: 20);
}

internal static class Parts
{
    private static Summary Bdn<T>(Sizes s)
    {
        var job = Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithWarmupCount(2)
            .WithIterationCount(s.BdnIterations)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(150))
            .WithId("InProcessShort");
        var config = ManualConfig.CreateEmpty()
            .AddJob(job)
            .AddColumnProvider(BenchmarkDotNet.Columns.DefaultColumnProviders.Instance)
            .AddDiagnoser(BenchmarkDotNet.Diagnosers.MemoryDiagnoser.Default)
            .AddLogger(ConsoleLogger.Default)
            .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "pluginmm-bdn"))
            .WithOptions(ConfigOptions.DisableLogFile | ConfigOptions.JoinSummary);
        return BenchmarkRunner.Run<T>(config);
    }

    private static IEnumerable<string[]> BdnRows(Summary summary)
    {
        foreach (var r in summary.Reports)
        {
            var st = r.ResultStatistics;
            var alloc = r.GcStats.GetBytesAllocatedPerOperation(r.BenchmarkCase);
            yield return
            [
                r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo,
                st is null ? "n/a" : F(st.Median, "N2"),
                st is null ? "n/a" : F(st.StandardDeviation, "N2"),
                alloc is null ? "?" : alloc.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ];
        }
    }

    private static readonly string[] BdnHeader = ["case (BenchmarkDotNet, in-process, one op = one call / one fault)", "median ns/op", "stddev ns", "allocated B/op"];

    // ------------------------------------------------------------------ part 1

    public static void Dispatch(Report report, Sizes s)
    {
        report.Section("1. Dispatch: generated table against a direct call",
            "`Shmem.Ops.UffdOps.GetFolioNoAlloc(...)` / `Shmem.Ops.VmOps.Fault(ref vmf)` (a `calli` through the generated function "
            + "pointer, as the runtime calls hooks) against `Shmem.GetFolioNoAlloc(...)` / `Shmem.Fault(ref vmf)` called directly, "
            + "on a cached shmem page. `CanUserfault` (`=> true`) is the degenerate case: the direct call is inlined to a constant, "
            + "so that pair measures the bare cost of an indirect call. Absolute figures: BenchmarkDotNet. Ratios: the interleaved "
            + "harness (same methods, alternating, median of paired rounds).");
        var summary = Bdn<DispatchBenchmarks>(s);
        report.Table(BdnHeader, BdnRows(summary));

        var b = new DispatchBenchmarks();
        b.Setup();
        // Many short samples (about a millisecond each), interleaved: see SideBySide.MinRatio.
        int reps = s.DispatchReps, ops = reps * 1024;
        Func<double> V(Action a) => () => SideBySide.NsPerOp(ops, () => { for (int i = 0; i < reps; i++) a(); });
        var v = SideBySide.Run(s.Rounds * 15, s.Warmup + 5,
            V(b.GetFolioDirect), V(b.GetFolioTable), V(b.FaultDirect), V(b.FaultTable),
            V(() => b.CanUserfaultDirect()), V(() => b.CanUserfaultTable()), V(b.FaultDirect), V(b.FaultDirectNoInline));
        string[] names = ["GetFolioNoAlloc", "Fault", "CanUserfault (inlined direct)"];
        var rows = new List<string[]>();
        double worst = 0;
        for (int i = 0; i < 3; i++)
        {
            double d = v[2 * i].Min(), t = v[2 * i + 1].Min();
            double ratio = SideBySide.MinRatio(v[2 * i + 1], v[2 * i]);
            if (i < 2) worst = Math.Max(worst, ratio);
            rows.Add([names[i], F(d, "N2"), F(t, "N2"), F(t - d, "N2"), F(ratio, "N3"),
                F(SideBySide.Median(v[2 * i]), "N2"), F(SideBySide.Median(v[2 * i + 1]), "N2"), F(SideBySide.PairedRatio(v[2 * i + 1], v[2 * i]), "N3")]);
        }
        rows.Add(["Fault direct again (A/A control)", F(v[2].Min(), "N2"), F(v[6].Min(), "N2"), F(v[6].Min() - v[2].Min(), "N2"), F(SideBySide.MinRatio(v[6], v[2]), "N3"),
            F(SideBySide.Median(v[2]), "N2"), F(SideBySide.Median(v[6]), "N2"), F(SideBySide.PairedRatio(v[6], v[2]), "N3")]);
        double noInline = SideBySide.MinRatio(v[3], v[7]);
        rows.Add(["Fault through table / direct not inlined into the caller", F(v[7].Min(), "N2"), F(v[3].Min(), "N2"), F(v[3].Min() - v[7].Min(), "N2"), F(noInline, "N3"),
            F(SideBySide.Median(v[7]), "N2"), F(SideBySide.Median(v[3]), "N2"), F(SideBySide.PairedRatio(v[3], v[7]), "N3")]);
        report.Table(["hook", "direct ns/call (min)", "table ns/call (min)", "difference ns", "ratio table/direct (of minimums)",
            "direct (median)", "table (median)", "paired median ratio"], rows);
        report.Text($"{v[0].Length} interleaved samples of {ops} calls per variant. The goal is judged on the ratio of minimums (preemption on the shared machine only adds time); the medians are shown for the spread. The A/A control runs `Fault direct` twice: its ratio is this run's resolution.");
        double aaDispatch = SideBySide.MinRatio(v[6], v[2]);
        var (met1, verdict1) = Goal.Judge(worst, 1.05, higherIsBetter: false, aaDispatch);
        report.AddGoal(new Goal("1 dispatch", "table/direct ≤ 1.05 (hooks with work)", $"worst {F(worst, "N3")}; Fault against a direct call not inlined into the caller {F(noInline, "N3")} (A/A {F(aaDispatch, "N3")})", met1,
            met1 == true
                ? $"CanUserfault, whose direct call inlines to nothing, costs one indirect call more through the table: {F(v[5].Min() - v[4].Min(), "N2")} ns/call."
                : $"measured: the JIT inlines the direct Shmem.Fault (and its page-cache lookup) into the caller's loop (JitDisasm of FaultDirect at Tier 1 has no call to Shmem:Fault); a function pointer cannot be inlined. Against the same direct call kept as a call, the table costs {F(noInline, "N3")}. Next: let the runtime call known memory types through a generic, static-abstract-interface path the JIT can specialise and inline (the generator can emit the interface implementation), keeping the table for types registered at run time.", verdict1));
    }

    // ------------------------------------------------------------------ part 2

    public static void Seed003(Report report, Sizes s)
    {
        report.Section("2. Seed 003: pre-check against RFC retval (and against no userfault code)",
            "One operation = one fault of a 64-fault pass over a 64-page MAP_SHARED shmem mapping in the model kernel, including "
            + "that fault's share of the reset (MADV_DONTNEED for (a)/(b), MADV_REMOVE for (c)), identical for every design. "
            + "Faults are writes, so every one goes through `__do_fault` (a read of a cached page with no uffd armed is served "
            + "by fault-around, which neither design touches). (a) *no userfault code*: `FaultPathDesign.NoUserfault` "
            + "(no `__do_userfault`, no retval flag) on `shmem-plain` (shmem's `->fault` minus the RFC's retval test, "
            + "bench/PluginMm.Bench/ShmemPlain.cs); *pre-check, plain ->fault*: seed 000 as proposed (the backend has no userfault "
            + "code); *pre-check, shipped shmem*: what the repository ships (its `Fault` keeps one dead retval flag test so one "
            + "backend serves both designs); *RFC retval*: seed 001. (b) a MINOR-registered mapping over a cached page: fault → "
            + "message → UFFDIO_CONTINUE from a handler thread → retry. (c) MINOR-registered, page not cached: no trap, `->fault` "
            + "allocates.");
        var summary = Bdn<FaultPathBenchmarks>(s);
        report.Table(BdnHeader, BdnRows(summary));

        // The cases, plus a second, identical no-userfault fixture: the A/A control that shows the harness's resolution.
        var fixtures = Seed003Cases.Cases.Select(c => new FaultFixture(c.Variant, c.Scenario))
            .Append(new FaultFixture(PathVariant.NoUserfault, FaultScenario.CachedNoUffd)).ToArray();
        try
        {
            // Many short interleaved samples: single-threaded (a)/(c) are judged on the ratio of minimums (preemption
            // only adds time); (b) has a thread hand-off per fault, so its median and paired-median ratio are the figures.
            int passes = s.FaultPasses;
            int rounds = s.Rounds * 20;
            var v = SideBySide.Run(rounds, s.Warmup + 5, fixtures.Select(f => (Func<double>)(() =>
                SideBySide.NsPerOp(passes * FaultFixture.Pages, () => { for (int i = 0; i < passes; i++) f.Pass(); }))).ToArray());
            long totalPasses = (long)passes * (rounds + s.Warmup + 5);
            foreach (var f in fixtures)
                if (f.Verify(totalPasses) is { } bad) throw new InvalidOperationException(bad);
            double[] V(PathVariant pv, FaultScenario sc) => v[Seed003Cases.Index(pv, sc)];
            string[] Row(string scenario, string variant, PathVariant pv, FaultScenario sc, PathVariant? against, string againstName)
            {
                var x = V(pv, sc);
                string rMin = "1.000", rMed = "1.000";
                if (against is { } b)
                {
                    rMin = F(SideBySide.MinRatio(x, V(b, sc)), "N3");
                    rMed = F(SideBySide.PairedRatio(x, V(b, sc)), "N3");
                }
                return [scenario, variant, F(x.Min()), F(SideBySide.Median(x)), rMin, rMed, againstName];
            }
            var a = FaultScenario.CachedNoUffd;
            var bb = FaultScenario.MinorTrap;
            var c = FaultScenario.MinorArmedNotCached;
            report.Table(["scenario", "variant", "min ns/fault", "median ns/fault", "ratio of minimums", "paired median ratio", "against"],
            [
                Row("(a) cached, no uffd armed", "no userfault code", PathVariant.NoUserfault, a, null, "itself"),
                ["(a)", "no userfault code again (A/A control)", F(v[^1].Min()), F(SideBySide.Median(v[^1])), F(SideBySide.MinRatio(v[^1], V(PathVariant.NoUserfault, a)), "N3"),
                    F(SideBySide.PairedRatio(v[^1], V(PathVariant.NoUserfault, a)), "N3"), "no userfault code"],
                Row("(a)", "pre-check, plain ->fault", PathVariant.PreCheckPlain, a, PathVariant.NoUserfault, "no userfault code"),
                Row("(a)", "pre-check, shipped shmem", PathVariant.PreCheck, a, PathVariant.NoUserfault, "no userfault code"),
                Row("(a)", "RFC retval", PathVariant.RfcRetval, a, PathVariant.NoUserfault, "no userfault code"),
                Row("(a)", "pre-check, shipped shmem", PathVariant.PreCheck, a, PathVariant.RfcRetval, "RFC retval"),
                Row("(b) MINOR trap + CONTINUE", "pre-check", PathVariant.PreCheck, bb, PathVariant.RfcRetval, "RFC retval"),
                Row("(b)", "RFC retval", PathVariant.RfcRetval, bb, null, "itself"),
                Row("(c) MINOR-armed, not cached", "pre-check", PathVariant.PreCheck, c, PathVariant.RfcRetval, "RFC retval"),
                Row("(c)", "RFC retval", PathVariant.RfcRetval, c, null, "itself"),
            ]);
            double aa = SideBySide.MinRatio(v[^1], V(PathVariant.NoUserfault, a));
            report.Text($"{rounds} interleaved samples of {passes * FaultFixture.Pages} faults per variant. The A/A control runs the very same "
                + $"configuration twice: its ratio ({F(aa, "N3")}) is this run's resolution; a difference smaller than |1 − A/A| is not a measured difference.");
            double ra = SideBySide.MinRatio(V(PathVariant.PreCheck, a), V(PathVariant.NoUserfault, a));
            double rp = SideBySide.MinRatio(V(PathVariant.PreCheckPlain, a), V(PathVariant.NoUserfault, a));
            var (met2, verdict2) = Goal.Judge(Math.Max(ra, rp), 1.02, higherIsBetter: false, aa);
            report.AddGoal(new Goal("2 seed 003 (a)", "pre-check within 2% of no userfault code (ratio of minimums)", $"shipped {F(ra, "N3")}, plain ->fault {F(rp, "N3")} (A/A control {F(aa, "N3")})", met2,
                met2 == true
                    ? $"with nothing armed the pre-check is one VMA-flag test before ->fault; A/A control {F(aa, "N3")} is this run's resolution."
                    : met2 is null
                        ? $"not resolved: {F(Math.Max(ra, rp), "N3")} lies within the 2% goal ± this run's A/A deviation ({F(aa, "N3")}: the same configuration measured twice), so the run cannot tell it from 1.02. The paths differ by one call + one VMA-flag test per fault. Next: bench/run.sh --full on an idle machine for a finer resolution."
                        : "measured: the difference is the `__do_userfault` call + VMA flag test per fault; next: inline the armed test into __do_fault (`if (userfaultfd_armed(vma))` before the call) and re-measure.", verdict2));
            report.Text($"(b) and (c) have no goal; they answer seed 003's question. Every MINOR fault of (b) was verified to be served by one CONTINUE; "
                + $"faults per scenario include the setup pass.");
        }
        finally
        {
            foreach (var f in fixtures) f.Dispose();
        }
    }

    // ------------------------------------------------------------------ part 3

    public static void ModelRoundTrip(Report report, Sizes s, string? hostUnavailable)
    {
        report.Section("3. Model round trip: MISSING fault resolved by COPY from a handler thread",
            "The same .NET handler (`CopyServer`, written against `IUserfaultfd`) serves the model kernel and the real kernel "
            + $"(`HostUserfaultfd`), in alternating rounds. Anonymous private memory, registered MISSING; each faulting thread "
            + $"writes one byte to every page of its slice, in order; every page is verified afterwards. Model: {s.ModelPages} "
            + $"pages per run; host: {s.HostPages}. Figures are pages per second (higher is better); ratio = model / host.");
        TripConfig[] cfgs =
        [
            new(1, 1, 1, false), new(8, 1, 1, false), new(8, 16, 1, false), new(8, 16, 1, true), new(1, 1, 1, true),
        ];
        bool host = hostUnavailable is null;
        var series = new List<TripSeries>();
        for (int i = 0; i < cfgs.Length; i++)
        {
            var cfg = cfgs[i];
            series.Add(new TripSeries(() => RoundTrip.Model(s.ModelPages, cfg), s.Warmup));
            if (host) series.Add(new TripSeries(() => RoundTrip.Host(s.HostPages, cfg), s.Warmup));
        }
        series.Add(new TripSeries(() => RoundTrip.Model(s.ModelPages, cfgs[0]), s.Warmup)); // A/A control
        var v = SideBySide.Run(s.Rounds, s.Warmup, series.Select(x => x.Variant).ToArray());
        double aa3 = SideBySide.PairedRatio(v[^1], v[0]);
        var rows = new List<string[]>();
        double worst = double.MaxValue, worstCpu = double.MaxValue;
        int stride = host ? 2 : 1;
        for (int i = 0; i < cfgs.Length; i++)
        {
            int mi = i * stride;
            var ms = series[mi];
            double m = SideBySide.Median(v[mi]);
            string[] hostCols = ["skipped", "", "", "", "n/a", "n/a"];
            if (host)
            {
                var hs = series[mi + 1];
                double ratio = SideBySide.PairedRatio(v[mi], v[mi + 1]);
                double cpuRatio = SideBySide.PairedRatio(hs.CpuSeries, ms.CpuSeries);
                worst = Math.Min(worst, ratio);
                worstCpu = Math.Min(worstCpu, cpuRatio);
                hostCols = [F(SideBySide.Median(v[mi + 1]), "N0"), F(1e9 / SideBySide.Median(v[mi + 1]), "N0"), F(hs.CpuNsPerPage, "N0"), F(hs.MsgsPerRead, "N2"), F(ratio, "N2"), F(cpuRatio, "N2")];
            }
            rows.Add([cfgs[i].ToString(), F(m, "N0"), F(1e9 / m, "N0"), F(ms.CpuNsPerPage, "N0"), F(ms.MsgsPerRead, "N2"), .. hostCols]);
        }
        // Where a round trip's time goes: the fault and the COPY measured alone; the rest is the hand-off between threads.
        var mp = new double[2][];
        var hp = new double[2][];
        for (int i = 0; i < 2; i++) { mp[i] = new double[s.Rounds]; hp[i] = new double[s.Rounds]; }
        for (int r = 0; r < s.Rounds; r++)
        {
            (mp[0][r], mp[1][r]) = RoundTrip.ModelParts(s.ModelPages);
            if (host) (hp[0][r], hp[1][r]) = RoundTrip.HostParts(s.HostPages);
        }
        double mTrip = 1e9 / SideBySide.Median(v[0]), hTrip = host ? 1e9 / SideBySide.Median(v[1]) : double.NaN;
        double mT = SideBySide.Median(mp[0]), mC = SideBySide.Median(mp[1]), hT = host ? SideBySide.Median(hp[0]) : double.NaN, hC = host ? SideBySide.Median(hp[1]) : double.NaN;
        string[] Pad(string label, string m, string h) => [label, "", m, "", "", "", h, "", "", "", ""];
        rows.Add(Pad("— one round trip (1 thread, read 1) splits into:", "", ""));
        rows.Add(Pad("first-touch fault, no uffd (alone)", F(mT, "N0"), host ? F(hT, "N0") : ""));
        rows.Add(Pad("UFFDIO_COPY of one page, nobody waiting (alone)", F(mC, "N0"), host ? F(hC, "N0") : ""));
        rows.Add(Pad("rest: message, poll/read, wake-ups, 2 thread switches", F(mTrip - mT - mC, "N0"), host ? F(hTrip - hT - hC, "N0") : ""));
        report.Table(["configuration", "model pages/s", "model ns/page", "model CPU ns/page", "model msgs/read", "host pages/s", "host ns/page", "host CPU ns/page", "host msgs/read", "model / host (pages/s)", "model / host (pages per CPU-s)"], rows);
        report.Text("CPU ns/page is the process's CPU time (every thread, user + system, getrusage) per page: a preempted thread accrues none, so it is the steadier figure on a shared machine.");
        if (!host)
        {
            report.AddGoal(new Goal("3 model round trip", "model pages/s ≥ host", "host skipped", null, hostUnavailable!));
            return;
        }
        report.Text($"A/A control: the first model configuration measured twice in every round: paired ratio {F(aa3, "N3")}.");
        var (met3, verdict3) = Goal.Judge(worst, 1.0, higherIsBetter: true, aa3);
        report.AddGoal(new Goal("3 model round trip", "model pages/s ≥ host pages/s (every row)", $"worst model/host {F(worst, "N2")} (per CPU-second: {F(worstCpu, "N2")}; A/A {F(aa3, "N3")})", met3,
            met3 == true ? "the model's fault → wake → COPY → wake cycle is in-process (no syscalls, no TLB work)."
                : $"measured: the fault and the COPY alone cost the model {F(mT + mC, "N0")} ns against the kernel's {F(hT + hC, "N0")} ns; the hand-off between faulting and handler threads is {F(mTrip - mT - mC, "N0")} ns against {F(hTrip - hT - hC, "N0")} ns (model: Monitor.PulseAll + Monitor.Wait in poll, ManualResetEventSlim per faulter). Next: a lighter wait queue in UserfaultfdCtx (one futex-style wake per message, no poll→read double lock), re-measured on an idle machine.", verdict3));
    }

    // ------------------------------------------------------------------ part 4

    public static void HostHandler(Report report, Sizes s, string root, string? hostUnavailable)
    {
        report.Section("4. Host handler: .NET (HostUserfaultfd) against a minimal C handler, and against plain first touch",
            "bench/c/uffd_handler.c (built with gcc by the benchmark) and the .NET `CopyServer` on `HostUserfaultfd` do the same "
            + "work: poll + read + UFFDIO_COPY of a window of pages (clamped to the faulter's slice), faulting threads writing "
            + $"one byte per page in order, {s.HostPages} pages per run, every page verified. The C program times itself (its "
            + "process start is outside the figure). Plain first touch: the same loop over plain anonymous memory, no uffd. "
            + "All variants alternate within each round.");
        if (hostUnavailable is not null)
        {
            report.Text("Skipped: " + hostUnavailable);
            report.AddGoal(new Goal("4 host handler", ".NET ≥ 0.95 × C", "skipped", null, hostUnavailable));
            return;
        }
        string? exe = Gcc.BuildHandler(root, out var why);
        if (exe is null) report.Text("C handler not built: " + why);
        TripConfig[] cfgs = [new(1, 1, 1, false), new(4, 16, 1, false), new(1, 1, 16, false), new(1, 1, 64, false)];
        string[] labels = ["per page", "batched reads (4 faulting threads, read 16)", "prefetch 16 pages", "prefetch 64 pages"];
        var series = new List<TripSeries>();
        foreach (var c in cfgs)
        {
            var cfg = c;
            series.Add(new TripSeries(() => RoundTrip.Host(s.HostPages, cfg), s.Warmup));
            if (exe is not null) series.Add(new TripSeries(() => Gcc.Run(exe, s.HostPages, cfg), s.Warmup));
        }
        series.Add(new TripSeries(() => RoundTrip.Plain(s.HostPages, 1), s.Warmup));
        if (exe is not null) series.Add(new TripSeries(() => Gcc.Run(exe, s.HostPages, null), s.Warmup));
        series.Add(new TripSeries(() => RoundTrip.Host(s.HostPages, cfgs[0]), s.Warmup)); // A/A control
        var v = SideBySide.Run(s.Rounds, s.Warmup, series.Select(x => x.Variant).ToArray());
        double aa4 = SideBySide.PairedRatio(v[^1], v[0]);
        int stride = exe is null ? 1 : 2;
        int plainNet = cfgs.Length * stride, plainC = plainNet + 1;
        var rows = new List<string[]>();
        double worstVsC = double.MaxValue, worstVsCCpu = double.MaxValue, worstPrefetch = double.MaxValue, worstPrefetchCpu = double.MaxValue;
        string worstCpuRow = "";
        var cpuRatios = new List<string>();
        string[] Row(string label, int n, int? c, bool prefetch)
        {
            double net = SideBySide.Median(v[n]);
            string[] cCols = ["no gcc", "", "n/a", "n/a"];
            if (c is { } ci)
            {
                double r = SideBySide.PairedRatio(v[n], v[ci]);
                double rc = SideBySide.PairedRatio(series[ci].CpuSeries, series[n].CpuSeries);
                if (n != plainNet)
                {
                    worstVsC = Math.Min(worstVsC, r);
                    if (rc < worstVsCCpu) { worstVsCCpu = rc; worstCpuRow = label; }
                    cpuRatios.Add($"{label} {F(rc, "N3")}");
                }
                cCols = [F(SideBySide.Median(v[ci]), "N0"), F(series[ci].CpuNsPerPage, "N0"), F(r, "N3"), F(rc, "N3")];
            }
            double vsPlain = SideBySide.PairedRatio(v[n], v[plainNet]);
            double vsPlainCpu = SideBySide.PairedRatio(series[plainNet].CpuSeries, series[n].CpuSeries);
            if (prefetch) { worstPrefetch = Math.Min(worstPrefetch, vsPlain); worstPrefetchCpu = Math.Min(worstPrefetchCpu, vsPlainCpu); }
            return [label, F(net, "N0"), F(series[n].CpuNsPerPage, "N0"), .. cCols, F(vsPlain, "N2"), F(vsPlainCpu, "N2")];
        }
        for (int i = 0; i < cfgs.Length; i++)
            rows.Add(Row(labels[i], i * stride, exe is null ? null : i * stride + 1, cfgs[i].Window > 1));
        rows.Add(Row("plain first touch (no uffd)", plainNet, exe is null ? null : plainC, false));
        report.Table([
            "configuration", ".NET pages/s", ".NET CPU ns/page", "C pages/s", "C CPU ns/page", ".NET / C (pages/s)", ".NET / C (pages per CPU-s)",
            ".NET / plain first touch (pages/s)", ".NET / plain (pages per CPU-s)",
        ], rows);
        report.Text($"CPU ns/page: the process's CPU time (all threads, user + system, getrusage in both languages) per page. A/A control: the .NET per-page run measured twice in every round: paired ratio {F(aa4, "N3")}.");
        if (exe is null)
            report.AddGoal(new Goal("4 host handler", ".NET ≥ 0.95 × C", "C handler not built", null, why ?? "gcc missing"));
        else
        {
            var (met4, verdict4) = Goal.Judge(worstVsC, 0.95, higherIsBetter: true, aa4);
            report.AddGoal(new Goal("4 host handler", ".NET pages/s ≥ 0.95 × C (every row)", $"worst {F(worstVsC, "N3")} (per CPU-second: {F(worstVsCCpu, "N3")}; A/A {F(aa4, "N3")})", met4,
                met4 == true ? "per fault both spend their time in the same syscalls (poll, read, ioctl); the P/Invoke + SafeHandle lease is tens of ns against microseconds."
                    : worstVsCCpu >= 0.95
                        ? $"measured: per CPU-second the .NET handler does {F(worstVsCCpu, "N3")} of C's pages at worst, so the wall-clock gap is time spent runnable but not running on the shared machine (load average in the header), not handler work. Next: re-run on an idle machine (bench/run.sh --full)."
                        : $"measured: per CPU-second too the .NET process does only {F(worstVsCCpu, "N3")} of C's pages at worst (.NET/C per CPU-second: {string.Join("; ", cpuRatios)}), and the A/A control moves by {F(Math.Max(aa4, 1 / aa4) - 1, "P1")}. Candidates for the extra CPU are the runtime's own threads (tiering, GC) and the start barrier's spin, which count in process CPU time, and the SafeHandle lease per call; not yet attributed. Next: perf record the {worstCpuRow} row on an idle machine and compare the handler thread's CPU alone (per-thread getrusage) in both languages.", verdict4));
        }
        var (met4p, verdict4p) = Goal.Judge(worstPrefetch, 1.0, higherIsBetter: true, aa4);
        double bestPrefetch = Math.Max(SideBySide.PairedRatio(v[2 * stride], v[plainNet]), SideBySide.PairedRatio(v[3 * stride], v[plainNet]));
        report.AddGoal(new Goal("4 prefetch", "sequential first touch with prefetch ≥ plain anonymous first touch", $"worst prefetch/plain {F(worstPrefetch, "N2")} (per CPU-second: {F(worstPrefetchCpu, "N2")}; A/A {F(aa4, "N3")})", met4p,
            met4p == true ? "one COPY maps a window of pages: one fault + wake per window instead of one fault per page."
                : $"measured: the best window reaches {F(bestPrefetch, "N2")} of plain first touch, the worst {F(worstPrefetch, "N2")} (per CPU-second {F(worstPrefetchCpu, "N2")}); each window costs one fault, two thread switches and a wake, which a 16-page window does not amortise on a loaded 2-core machine. Next: default sequential first touch to 64 pages or the adaptive window of Samples/LazyRestore, and have the handler COPY the next window before it is touched.", verdict4p));
    }

    // ------------------------------------------------------------------ part 5

    public static void Generator(Report report, Sizes s)
    {
        report.Section("5. Generator: 1,000 memory types",
            "The generator in-process (`CSharpGeneratorDriver`, `trackIncrementalGeneratorSteps: true`) over a synthetic compilation of "
            + "1,000 `[MemoryType]` page-cache classes, one file each. First run = a cold driver over the whole compilation. Edits "
            + "re-run the same driver on the compilation with one file's line changed (alternating between two versions), median "
            + "time; the counts come from the run result's tracked steps (`Parse` outputs New/Modified, `SourceOutput` reasons).");
        var r = GeneratorBench.Run(1000, s.GenEdits);
        report.Table(["run", "time ms", "specs New/Modified", "re-emitted types", "registry output"],
        [
            ["first run (1,000 types, cold driver)", F(r.FirstRunMs), "1000", $"{r.GeneratedFiles} files", "New"],
            .. r.Edits.Select(e => new[] { "one-line edit: " + e.Edit, F(e.MedianMs, "N2"), $"{e.Reparsed} of {r.Types}", $"{e.ReEmittedTypes} of {e.TotalTypes}", e.Registry }),
        ]);
        report.Text($"The generated code compiles with the synthetic project: {r.Errors} errors (full semantic diagnostics: {F(r.FullCompileMs, "N0")} ms).");
        var decl = r.Edits[1];
        var body = r.Edits[0];
        bool met = decl.ReEmittedTypes == 1 && body.ReEmittedTypes == 0 && decl.Reparsed <= 1 && body.Reparsed <= 1 && r.Errors == 0
            && decl.Registry is "Cached" or "Unchanged";
        report.AddGoal(new Goal("5 generator", "a one-line edit re-runs nothing but the edited type's emission",
            $"declaration edit: re-emitted {decl.ReEmittedTypes} of {decl.TotalTypes} (registry {decl.Registry}); body edit: re-emitted {body.ReEmittedTypes} of {body.TotalTypes}",
            met, met ? "a body edit changes no table, so nothing is re-emitted at all." : "see the counts: the step that re-ran is named in the table."));
    }

    // ------------------------------------------------------------------ part 6

    public static void Scaling(Report report, Sizes s, string? hostUnavailable)
    {
        report.Section("6. Scaling: pages per second against faulting threads on one userfaultfd",
            "One handler thread (reads of up to 16 messages, one COPY per page), 1/2/4/8 faulting threads, model and host "
            + "alternating. msgs/read is the mean number of messages one read returned: it rises when the handler, not the faulters, is the limit.");
        int[] threads = [1, 2, 4, 8];
        bool host = hostUnavailable is null;
        var series = new List<TripSeries>();
        for (int i = 0; i < threads.Length; i++)
        {
            var cfg = new TripConfig(threads[i], 16, 1, false);
            series.Add(new TripSeries(() => RoundTrip.Model(s.ModelPages, cfg), s.Warmup));
            if (host) series.Add(new TripSeries(() => RoundTrip.Host(s.HostPages, cfg), s.Warmup));
        }
        var v = SideBySide.Run(s.Rounds, s.Warmup, series.Select(x => x.Variant).ToArray());
        int stride = host ? 2 : 1;
        double m1 = SideBySide.Median(v[0]), h1 = host ? SideBySide.Median(v[1]) : 0;
        var rows = new List<string[]>();
        for (int i = 0; i < threads.Length; i++)
        {
            int mi = i * stride;
            double m = SideBySide.Median(v[mi]);
            double h = host ? SideBySide.Median(v[mi + 1]) : double.NaN;
            rows.Add([threads[i].ToString(System.Globalization.CultureInfo.InvariantCulture), F(m, "N0"), F(m / m1, "N2"), F(series[mi].CpuNsPerPage, "N0"), F(m * series[mi].CpuNsPerPage / 1e9, "N2"), F(series[mi].MsgsPerRead, "N2"),
                host ? F(h, "N0") : "skipped", host ? F(h / h1, "N2") : "", host ? F(series[mi + 1].CpuNsPerPage, "N0") : "", host ? F(h * series[mi + 1].CpuNsPerPage / 1e9, "N2") : "", host ? F(series[mi + 1].MsgsPerRead, "N2") : ""]);
        }
        report.Table(["faulting threads", "model pages/s", "model ×(1 thread)", "model CPU ns/page", "model cores busy", "model msgs/read", "host pages/s", "host ×(1 thread)", "host CPU ns/page", "host cores busy", "host msgs/read"], rows);
        string Flat(int offset)
        {
            int best = 0;
            for (int i = 1; i < threads.Length; i++)
                if (SideBySide.Median(v[i * stride + offset]) > SideBySide.Median(v[best * stride + offset])) best = i;
            double gain = SideBySide.Median(v[best * stride + offset]) / SideBySide.Median(v[offset]);
            for (int i = 1; i < threads.Length; i++)
                if (SideBySide.Median(v[i * stride + offset]) < 1.10 * SideBySide.Median(v[(i - 1) * stride + offset]))
                    return $"first doubling with < 10% more pages/s: {threads[i - 1]} → {threads[i]} threads; peak at {threads[best]} thread{(best == 0 ? "" : "s")} ({F(gain, "N2")}× one thread)";
            return $"still gains ≥ 10% per doubling up to 8 threads ({F(gain, "N2")}× one thread)";
        }
        report.Text($"Model: {Flat(0)}. " + (host ? $"Host: {Flat(1)}. " : "")
            + $"Why: cores busy = pages/s × CPU time per page, against the {Environment.ProcessorCount} logical cores this machine has (shared with other "
            + "processes, load average in the header). One faulter is latency-bound: each page waits for two thread switches and the machine idles in "
            + "between (cores busy well below the core count). More faulters fill that idle time and queue messages at the single handler thread "
            + "(msgs/read > 1), so each poll + read serves several faults. The curve flattens where cores busy reaches what the machine can give this "
            + "process: from there pages/s only grows if CPU per page falls. The model costs more CPU per page than the kernel (column), so it flattens "
            + "first. Next: a cheaper model hand-off (part 3) and, on machines with more cores, more handler threads reading the same userfaultfd.");
    }
}

/// <summary>The seed-003 cases, in one fixed order shared by the BDN class and the interleaved run.</summary>
public static class Seed003Cases
{
    public static readonly (PathVariant Variant, FaultScenario Scenario)[] Cases =
    [
        (PathVariant.NoUserfault, FaultScenario.CachedNoUffd),
        (PathVariant.PreCheckPlain, FaultScenario.CachedNoUffd),
        (PathVariant.PreCheck, FaultScenario.CachedNoUffd),
        (PathVariant.RfcRetval, FaultScenario.CachedNoUffd),
        (PathVariant.PreCheck, FaultScenario.MinorTrap),
        (PathVariant.RfcRetval, FaultScenario.MinorTrap),
        (PathVariant.PreCheck, FaultScenario.MinorArmedNotCached),
        (PathVariant.RfcRetval, FaultScenario.MinorArmedNotCached),
    ];

    public static string Key(PathVariant v, FaultScenario s) => $"{v}/{s}";

    public static int Index(PathVariant v, FaultScenario s) => Array.IndexOf(Cases, (v, s));
}
