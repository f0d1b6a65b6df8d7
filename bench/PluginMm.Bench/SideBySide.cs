using System.Diagnostics;

namespace PluginMm.Bench;

/// <summary>
/// The interleaved harness for everything BenchmarkDotNet does not fit (threads, real page faults, child processes):
/// each round runs every variant once, in an order rotated per round (so no variant always runs first or last), after
/// warm-up rounds that are thrown away. A figure is the median over rounds; a ratio is the median of the per-round
/// ratios (paired: both sides of a ratio come from the same round, so load from other users of the machine hits both).
/// </summary>
public static class SideBySide
{
    /// <summary>Runs <paramref name="variants"/> (each returns its figure for one run) and returns values[variant][round].</summary>
    public static double[][] Run(int rounds, int warmup, params Func<double>[] variants)
    {
        var values = new double[variants.Length][];
        for (int v = 0; v < variants.Length; v++) values[v] = new double[rounds];
        for (int r = -warmup; r < rounds; r++)
        {
            for (int k = 0; k < variants.Length; k++)
            {
                int v = (k + Math.Max(r, 0)) % variants.Length;
                double x = variants[v]();
                if (r >= 0) values[v][r] = x;
            }
        }
        return values;
    }

    public static double Median(double[] xs)
    {
        var s = (double[])xs.Clone();
        Array.Sort(s);
        int n = s.Length;
        return n == 0 ? double.NaN : n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    /// <summary>
    /// min(a) / min(b): for single-threaded CPU-bound work on a loaded machine, preemption only ever adds time, so the
    /// fastest of many short interleaved samples is the best estimate of each side's cost.
    /// </summary>
    public static double MinRatio(double[] a, double[] b) => a.Min() / b.Min();

    /// <summary>Median of the per-round ratios a[r] / b[r].</summary>
    public static double PairedRatio(double[] a, double[] b)
    {
        var r = new double[a.Length];
        for (int i = 0; i < a.Length; i++) r[i] = a[i] / b[i];
        return Median(r);
    }

    /// <summary>Nanoseconds per operation of <paramref name="ops"/> operations done by <paramref name="body"/>.</summary>
    public static double NsPerOp(int ops, Action body)
    {
        long t0 = Stopwatch.GetTimestamp();
        body();
        return Stopwatch.GetElapsedTime(t0).TotalNanoseconds / ops;
    }
}

/// <summary>Wraps a round-trip run as a side-by-side variant (its figure: pages/s) and keeps its other figures per round.</summary>
public sealed class TripSeries(Func<TripResult> run, int warmup)
{
    private readonly List<TripResult> _all = new();

    public Func<double> Variant => () =>
    {
        var r = run();
        _all.Add(r);
        return r.PagesPerSec;
    };

    private IEnumerable<TripResult> Measured => _all.Skip(warmup);

    public double CpuNsPerPage => SideBySide.Median(Measured.Select(r => r.CpuNsPerPage).ToArray());

    public double[] CpuSeries => Measured.Select(r => r.CpuNsPerPage).ToArray();

    public double MsgsPerRead => SideBySide.Median(Measured.Select(r => r.MsgsPerRead).ToArray());
}
