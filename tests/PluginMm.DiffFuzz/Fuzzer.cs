using System.Diagnostics;

using PluginMm.Conformance;

namespace PluginMm.DiffFuzz;

/// <summary>Options of a fuzzing run.</summary>
public sealed class FuzzOptions
{
    /// <summary>Stop after this long (with <see cref="Cases"/>, whichever comes first).</summary>
    public TimeSpan? Duration { get; set; }

    /// <summary>Stop after this many cases.</summary>
    public long? Cases { get; set; }

    /// <summary>The run's seed (case seeds derive from it).</summary>
    public ulong Seed { get; set; } = 1;

    /// <summary>Memory types to draw from.</summary>
    public List<MemType> Types { get; set; } = [.. MemTypes.All];

    /// <summary>Where minimal case files go (null: not saved).</summary>
    public string? OutDir { get; set; }

    /// <summary>Shrink divergent cases.</summary>
    public bool Shrink { get; set; } = true;

    /// <summary>Time budget for shrinking one case.</summary>
    public TimeSpan ShrinkBudget { get; set; } = TimeSpan.FromSeconds(40);

    /// <summary>Shrink only the first case of each class (later ones are counted).</summary>
    public bool ShrinkFirstOnly { get; set; } = true;

    /// <summary>Seconds between progress lines.</summary>
    public int ProgressSeconds { get; set; } = 5;
}

/// <summary>The result of a fuzzing run.</summary>
public sealed class FuzzSummary
{
    /// <summary>Cases run.</summary>
    public long Cases { get; set; }

    /// <summary>Cases with identical records on both sides.</summary>
    public long Identical { get; set; }

    /// <summary>Cases that diverged.</summary>
    public long Divergent { get; set; }

    /// <summary>Cases that could not run (setup failed).</summary>
    public long Errors { get; set; }

    /// <summary>Count per class.</summary>
    public SortedDictionary<string, int> Classes { get; } = new(StringComparer.Ordinal);

    /// <summary>The minimal case per class (text of the case file).</summary>
    public Dictionary<string, (FuzzCase Case, Divergence Divergence)> Minimal { get; } = [];

    /// <summary>Run time.</summary>
    public TimeSpan Elapsed { get; set; }

    /// <summary>The final line: <c>difffuzz: N cases, M identical, K divergent (classes: a ×2, b ×1)</c>.</summary>
    public string Line => $"difffuzz: {Cases} cases, {Identical} identical, {Divergent} divergent (classes: "
        + (Classes.Count == 0 ? "none" : string.Join(", ", Classes.Select(kv => $"{kv.Key} x{kv.Value}"))) + ")";
}

/// <summary>Runs seeded cases for a budget, classifies and shrinks divergences, saves minimal case files.</summary>
public static class Fuzzer
{
    /// <summary>Runs the fuzzer; progress and findings go to <paramref name="log"/>.</summary>
    public static FuzzSummary Run(FuzzOptions o, TextWriter log)
    {
        var sum = new FuzzSummary();
        var sw = Stopwatch.StartNew();
        long lastProgress = 0;
        if (o.OutDir is not null)
            Directory.CreateDirectory(o.OutDir);
        for (long i = 0; ; i++)
        {
            if (o.Cases is { } max && i >= max)
                break;
            if (o.Duration is { } d && sw.Elapsed >= d)
                break;
            ulong seed = Generator.CaseSeed(o.Seed, i);
            var c = Generator.Generate(seed, o.Types);
            var run = Runner.Run(c);
            if (run.Error is not null)
            {
                sum.Errors++;
                log.WriteLine($"difffuzz: case {Op.Hex(seed)} ({c.Type.Name()}) not run: {run.Error}");
                if (sum.Errors > 20 && sum.Cases == 0)
                    break;
                continue;
            }
            sum.Cases++;
            if (run.Divergence is not { } div)
                sum.Identical++;
            else
            {
                // A divergence must reproduce to count as one; otherwise it is timing (named "flaky").
                var again = Runner.Run(c);
                string cls = again.Divergence?.Class == div.Class ? div.Class : $"flaky:{div.Class}";
                sum.Divergent++;
                bool first = !sum.Classes.ContainsKey(cls);
                sum.Classes[cls] = sum.Classes.GetValueOrDefault(cls) + 1;
                if (first || !o.ShrinkFirstOnly)
                {
                    var (small, sd) = o.Shrink && !cls.StartsWith("flaky:", StringComparison.Ordinal)
                        ? Runner.Shrink(c, div, o.ShrinkBudget) : (c, div);
                    if (!sum.Minimal.TryGetValue(cls, out var prev) || prev.Case.Ops.Count > small.Ops.Count)
                    {
                        sum.Minimal[cls] = (small, sd);
                        string? path = null;
                        if (o.OutDir is not null)
                        {
                            path = Path.Combine(o.OutDir, FileName(cls));
                            File.WriteAllText(path, Runner.CaseFile(small, sd, $"found by seed {Op.Hex(o.Seed)} case {i} (case seed {Op.Hex(seed)}), {c.Ops.Count} ops before shrinking"));
                        }
                        log.WriteLine($"difffuzz: new class {cls} (case seed {Op.Hex(seed)}, {c.Ops.Count} -> {small.Ops.Count} ops){(path is null ? "" : $" saved {path}")}");
                        log.WriteLine($"    at {sd.Op}: model {sd.Model}");
                        log.WriteLine($"    {new string(' ', sd.Op.ToString().Length + 3)}  host  {sd.Host}");
                    }
                }
            }
            if (sw.Elapsed.TotalSeconds - lastProgress >= o.ProgressSeconds)
            {
                lastProgress = (long)sw.Elapsed.TotalSeconds;
                log.WriteLine($"difffuzz: [{sw.Elapsed.TotalSeconds:F0}s] {sum.Cases} cases, {sum.Identical} identical, {sum.Divergent} divergent, {sum.Classes.Count} classes");
            }
        }
        sum.Elapsed = sw.Elapsed;
        return sum;
    }

    /// <summary>A file name for a class (<c>copy_errno_anon.case</c>).</summary>
    public static string FileName(string cls)
        => new string(cls.Select(ch => char.IsLetterOrDigit(ch) || ch == '-' ? ch : '_').ToArray()) + ".case";
}
