using System.Text;
using System.Text.RegularExpressions;

using PluginMm.Conformance;

namespace PluginMm.DiffFuzz;

/// <summary>Where two sides first disagreed.</summary>
/// <param name="OpIndex">Index of the operation (in the case plus the fixed tail).</param>
/// <param name="Op">The operation.</param>
/// <param name="Field">The first differing field.</param>
/// <param name="Class">The divergence class: operation, field, memory type.</param>
/// <param name="Model">The model's record.</param>
/// <param name="Host">The host's record.</param>
public sealed record Divergence(int OpIndex, Op Op, string Field, string Class, Rec Model, Rec Host);

/// <summary>What running a case gave: the records of each side that ran, and the first divergence.</summary>
public sealed class CaseRun
{
    /// <summary>Per operation: (op, model record or null, host record or null).</summary>
    public List<(Op Op, Rec? Model, Rec? Host)> Steps { get; } = [];

    /// <summary>The first divergence (null: identical, or one side only).</summary>
    public Divergence? Divergence { get; set; }

    /// <summary>Why the case could not run (setup failed on a side).</summary>
    public string? Error { get; set; }
}

/// <summary>Runs cases on both sides, compares, classifies, shrinks.</summary>
public static partial class Runner
{
    /// <summary>How long one operation may take on one side before it counts as a hang.</summary>
    public static int OpTimeoutMs { get; set; } = 15000;

    /// <summary>The operations every case ends with: answer every fault properly, summarise, close, summarise.</summary>
    public static readonly Op[] Tail =
    [
        new("resolve"),
        new("summary", ("when", "before")),
        new("close"),
        new("summary", ("when", "after")),
    ];

    /// <summary>Called after every operation (the watchdog's heartbeat).</summary>
    public static Action? Heartbeat { get; set; }

    /// <summary>Runs <paramref name="c"/> on the sides asked for and compares op by op; the first difference ends it.</summary>
    public static CaseRun Run(FuzzCase c, bool model = true, bool host = true)
    {
        var run = new CaseRun();
        HostSide? h = host ? new HostSide() : null;
        ModelSide? m = null;
        try
        {
            if (h?.Unsupported(c.Type) is { } why)
            {
                run.Error = $"host cannot run {c.Type.Name()}: {why}";
                return run;
            }
            if (h is not null && !Guard(() => { h.Setup(c); return true; }, out _, out var he))
            {
                run.Error = $"host setup: {he}";
                return run;
            }
            if (model)
            {
                m = new ModelSide(h?.BaseAddress ?? 0);
                if (!Guard(() => { m.Setup(c); return true; }, out _, out var me))
                {
                    run.Error = $"model setup: {me}";
                    return run;
                }
            }
            long hugeBefore = h is not null && c.Type.IsHuge() ? HostSide.HugePagesTotal() : 0;
            int index = 0;
            foreach (var op in c.Ops.Concat(Tail))
            {
                Rec? rm = m is null ? null : Exec(m, op);
                Rec? rh = h is null ? null : Exec(h, op);
                run.Steps.Add((op, rm, rh));
                Heartbeat?.Invoke();
                if (rm is not null && rh is not null && Rec.FirstDifference(rm, rh) is { } field)
                {
                    run.Divergence = new Divergence(index, op, field, Classify(op, field, rm, rh, c.Type), rm, rh);
                    break;
                }
                if (IsHang(rm) || IsHang(rh))
                    break;
                index++;
            }
            if (hugeBefore > 0 && HostSide.HugePagesTotal() < hugeBefore)
            {
                // Another process lowered nr_hugepages under this case: its host faults may have failed for that.
                run.Error = $"nr_hugepages dropped from {hugeBefore} to {HostSide.HugePagesTotal()} during the case (another process)";
                run.Divergence = null;
            }
            return run;
        }
        finally
        {
            if (m is not null)
                Guard(() => { m.Dispose(); return true; }, out _, out _, 5000);
            if (h is not null)
                Guard(() => { h.Dispose(); return true; }, out _, out _, 5000);
        }
    }

    private static bool IsHang(Rec? r) => r?.Fields.Count > 0 && r.Fields[0].Key == "hang";

    private static Rec Exec(Side side, Op op)
    {
        if (Guard(() => side.Execute(op), out var rec, out var error))
            return rec!;
        return new Rec().Add(error!.StartsWith("hang", StringComparison.Ordinal) ? "hang" : "exception", error);
    }

    /// <summary>Runs <paramref name="f"/> with a timeout; a timeout is "hang", an exception its type and message.</summary>
    private static bool Guard<T>(Func<T> f, out T? result, out string? error, int timeoutMs = -1)
    {
        var t = Task.Factory.StartNew(f, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            if (!t.Wait(timeoutMs < 0 ? OpTimeoutMs : timeoutMs))
            {
                result = default;
                error = $"hang (no return within {(timeoutMs < 0 ? OpTimeoutMs : timeoutMs)} ms)";
                return false;
            }
            result = t.Result;
            error = null;
            return true;
        }
        catch (AggregateException e)
        {
            var inner = e.InnerException ?? e;
            result = default;
            error = $"{inner.GetType().Name}: {inner.Message.Split('\n')[0]}";
            return false;
        }
    }

    [GeneratedRegex("^[px][0-9]+$")]
    private static partial Regex PageKey();

    [GeneratedRegex("^w[0-9]+$")]
    private static partial Regex WorkerKey();

    /// <summary>
    /// The class of a divergence: <c>op:field:type</c>. For per-page summary fields the field is the differing attribute
    /// (present, uffd-wp, file, cache, content); a worker's start record is its outcome; a hang is "hang".
    /// </summary>
    public static string Classify(Op op, string field, Rec model, Rec host, MemType type)
    {
        string kind = op.Kind == "summary" ? $"summary-{op["when"]}" : op.Kind;
        string f = field;
        if (PageKey().IsMatch(field))
        {
            string a = Value(model, field), b = Value(host, field);
            string[] names = ["present", "uffd-wp", "file", "cache"];
            f = "content";
            for (int i = 0; i < Math.Min(4, Math.Min(a.Length, b.Length)); i++)
            {
                if (a[i] == ' ' || b[i] == ' ')
                    break;
                if (a[i] != b[i])
                {
                    f = names[i];
                    break;
                }
            }
            f = $"{(field[0] == 'x' ? "scratch" : "page")}.{f}";
        }
        else if (WorkerKey().IsMatch(field))
            f = "outcome";
        if (Value(model, field) == "" && Value(host, field) == "")
            f = "fields";
        if (model.Fields.Any(x => x.Key == "hang") || host.Fields.Any(x => x.Key == "hang"))
            f = "hang";
        if (op.Kind == "access" && op["at"].StartsWith('L'))
            kind = "access-alias";
        kind += Tag(op);
        return $"{kind}:{f}:{type.Name()}";
    }

    /// <summary>
    /// Marks the argument shapes the kernel treats specially, so their divergences are classes of their own: an
    /// absolute address below 64 KiB (mmap_min_addr) is <c>[low]</c>, a length of 2^63 or more (it wraps) <c>[wrap]</c>.
    /// </summary>
    private static string Tag(Op op)
    {
        bool low = false, wrap = false;
        foreach (var (k, v) in op.Args)
        {
            if (k is "start" or "dst" or "src" or "old" && v.StartsWith("0x", StringComparison.Ordinal) && Op.ParseNum(v) < 0x10000)
                low = true;
            if (k is "len" && Op.ParseNum(v) >= 1UL << 63)
                wrap = true;
        }
        return (low ? "[low]" : "") + (wrap ? "[wrap]" : "");
    }

    private static string Value(Rec r, string key) => r.Fields.FirstOrDefault(x => x.Key == key).Value ?? "";

    /// <summary>
    /// Shrinks a divergent case to a shorter one with the same class: drops everything after the diverging op, then
    /// chunks and single ops (ddmin) while the class stays; stops after <paramref name="budget"/>.
    /// </summary>
    public static (FuzzCase Case, Divergence Divergence) Shrink(FuzzCase c, Divergence d, TimeSpan budget)
    {
        var deadline = DateTime.UtcNow + budget;
        var ops = c.Ops.ToList();
        if (d.OpIndex < ops.Count)
            ops = ops.Take(d.OpIndex + 1).ToList();
        var best = d;
        for (int chunk = Math.Max(1, ops.Count / 2); chunk >= 1 && DateTime.UtcNow < deadline; chunk /= 2)
        {
            for (int i = ops.Count - chunk; i >= 0 && DateTime.UtcNow < deadline; i--)
            {
                var trial = ops.Take(i).Concat(ops.Skip(i + chunk)).ToList();
                var r = Run(c.WithOps(trial));
                if (r.Divergence is { } td && td.Class == d.Class)
                {
                    ops = td.OpIndex < trial.Count ? trial.Take(td.OpIndex + 1).ToList() : trial;
                    best = td;
                    i = Math.Min(i, ops.Count - chunk + 1);
                }
            }
            if (chunk == 1)
                break;
        }
        return (new FuzzCase(c.Type, c.Pages, c.Placement, ops, c.Seed), best);
    }

    /// <summary>The case file text of a divergence: the case plus what each side recorded at the divergence.</summary>
    public static string CaseFile(FuzzCase c, Divergence d, string? note = null)
    {
        var comments = new List<string>
        {
            $"difffuzz divergence class {d.Class}",
            $"replay: dotnet run --project tests/PluginMm.DiffFuzz -- --replay <this file> [--side model|host]",
            $"diverges at op {d.OpIndex} ({d.Op}), field '{d.Field}'",
            $"model: {d.Model}",
            $"host:  {d.Host}",
        };
        if (note is not null)
            comments.Add(note);
        return c.ToText(comments);
    }

    /// <summary>A readable trace of a run: per operation the records of the sides that ran, marking the divergence.</summary>
    public static string Trace(CaseRun run)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < run.Steps.Count; i++)
        {
            var (op, m, h) = run.Steps[i];
            bool bad = run.Divergence?.OpIndex == i;
            sb.Append(bad ? "!! " : "   ").Append(op).Append('\n');
            if (m is not null && h is not null && m.ToString() == h.ToString())
                sb.Append("      both:  ").Append(m).Append('\n');
            else
            {
                if (m is not null)
                    sb.Append("      model: ").Append(m).Append('\n');
                if (h is not null)
                    sb.Append("      host:  ").Append(h).Append('\n');
            }
        }
        if (run.Error is not null)
            sb.Append("error: ").Append(run.Error).Append('\n');
        return sb.ToString();
    }
}
