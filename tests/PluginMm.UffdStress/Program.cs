using PluginMm.Runtime;
using System.Diagnostics;

namespace PluginMm.UffdStress;

/// <summary>
/// Command line of the uffd-stress port:
/// <c>uffd-stress &lt;anon|shmem|shmem-private|hugetlb|hugetlb-private|all&gt; &lt;MiB&gt; &lt;bounces&gt; [--design precheck|rfc|both]
/// [--cpus N] [--minutes M] [--seed N] [--quiet]</c>. With <c>--minutes</c> the runs repeat (new seed each pass) until the
/// time is up, printing a progress line per run. The last line starts with <c>uffd-stress:</c> and ends with ok or FAILED.
/// </summary>
public static class Program
{
    private const string Usage =
        "usage: uffd-stress <anon|shmem|shmem-private|hugetlb|hugetlb-private|all> <MiB> <bounces> [--design precheck|rfc|both] [--cpus N] [--minutes M] [--seed N] [--quiet]";

    /// <summary>Entry point; exit code 0 when every run was clean, 1 on a failure, 2 on bad arguments.</summary>
    public static int Main(string[] args)
    {
        if (!TryParse(args, out var types, out int mib, out int bounces, out var designs, out int cpus, out double minutes, out int seed, out bool quiet, out var why))
        {
            Console.Error.WriteLine(why);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var total = Stopwatch.StartNew();
        long runs = 0, bouncesDone = 0, pages = 0, missing = 0, wp = 0, eexistWakes = 0, eexistRetries = 0, copies = 0;
        string? failure = null;
        int pass = 0;
        do
        {
            foreach (var type in types)
            {
                foreach (var design in designs)
                {
                    var o = new StressOptions
                    {
                        MemType = type, MiB = mib, Bounces = bounces, Design = design, Cpus = cpus, Seed = seed + pass,
                        Log = quiet ? null : Console.Out,
                    };
                    var r = UffdStressRunner.Run(o);
                    runs++;
                    bouncesDone += r.Bounces;
                    pages += r.Pages * r.Bounces;
                    missing += r.MissingFaults;
                    wp += r.WpFaults;
                    copies += r.Copies;
                    eexistWakes += r.EexistWakes;
                    eexistRetries += r.EexistRetries;
                    Console.WriteLine($"[{total.Elapsed:hh\\:mm\\:ss}] pass {pass + 1}: {r}");
                    if (!r.Ok)
                    {
                        failure = $"{type} {design}: {string.Join("; ", r.Errors)}";
                        Console.WriteLine("  " + failure);
                        goto done;
                    }
                }
            }
            pass++;
        } while (total.Elapsed.TotalMinutes < minutes);
    done:
        Console.WriteLine($"uffd-stress: {(failure is null ? "ok" : "FAILED")} types={string.Join(',', types)} runs={runs} passes={pass} bounces={bouncesDone} "
            + $"pages={pages} faults={missing + wp} (missing={missing} wp={wp}) copies={copies} eexist-wake={eexistWakes} eexist-retry={eexistRetries} "
            + $"elapsed={total.Elapsed.TotalSeconds:F0}s");
        return failure is null ? 0 : 1;
    }

    private static bool TryParse(string[] args, out string[] types, out int mib, out int bounces, out FaultPathDesign[] designs,
        out int cpus, out double minutes, out int seed, out bool quiet, out string why)
    {
        types = [];
        mib = bounces = 0;
        designs = [FaultPathDesign.PreCheck];
        cpus = Math.Clamp(Environment.ProcessorCount, 2, 32);
        minutes = 0;
        seed = 1;
        quiet = false;
        why = "";
        var pos = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? Next() => i + 1 < args.Length ? args[++i] : null;
            switch (a)
            {
                case "--design":
                    designs = Next() switch
                    {
                        "precheck" => [FaultPathDesign.PreCheck],
                        "rfc" => [FaultPathDesign.RfcRetval],
                        "both" => [FaultPathDesign.PreCheck, FaultPathDesign.RfcRetval],
                        var d => null!,
                    };
                    if (designs is null) { why = "--design takes precheck, rfc or both"; return false; }
                    break;
                case "--cpus":
                    if (!int.TryParse(Next(), out cpus) || cpus < 1 || cpus > 32) { why = "--cpus takes 1..32"; return false; }
                    break;
                case "--minutes":
                    if (!double.TryParse(Next(), System.Globalization.CultureInfo.InvariantCulture, out minutes) || minutes < 0) { why = "--minutes takes a number"; return false; }
                    break;
                case "--seed":
                    if (!int.TryParse(Next(), out seed)) { why = "--seed takes an integer"; return false; }
                    break;
                case "--quiet":
                    quiet = true;
                    break;
                default:
                    if (a.StartsWith("--", StringComparison.Ordinal)) { why = $"unknown option {a}"; return false; }
                    pos.Add(a);
                    break;
            }
        }
        if (pos.Count != 3) { why = "expected <type> <MiB> <bounces>"; return false; }
        types = pos[0] == "all" ? StressArea.MemTypes : [pos[0]];
        if (Array.IndexOf(StressArea.MemTypes, types[0]) < 0) { why = $"unknown memory type {pos[0]}"; return false; }
        if (!int.TryParse(pos[1], out mib) || mib < 1 || mib > 65536) { why = "MiB must be 1..65536"; return false; }
        if (!int.TryParse(pos[2], out bounces) || bounces < 1) { why = "bounces must be positive"; return false; }
        return true;
    }
}
