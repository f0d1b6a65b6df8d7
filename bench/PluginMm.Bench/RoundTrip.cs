using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using PluginMm.Runtime;
using PluginMm.Runtime.Linux;
using PluginMm.Userfaultfd;

namespace PluginMm.Bench;

/// <summary>One round-trip configuration: faulting threads, messages per read, pages per COPY, DONTWAKE + one WAKE.</summary>
public readonly record struct TripConfig(int Threads, int Batch, int Window, bool DontWake)
{
    public override string ToString()
        => $"{Threads} thread{(Threads == 1 ? "" : "s")}, read {Batch}, copy {Window} page{(Window == 1 ? "" : "s")}{(DontWake ? ", DONTWAKE + 1 WAKE" : "")}";
}

/// <summary>The result of one run: pages per second and the handler's counters.</summary>
public readonly record struct TripResult(double PagesPerSec, long Faults, long Reads, double CpuNsPerPage = double.NaN)
{
    public double MsgsPerRead => Reads == 0 ? 0 : (double)Faults / Reads;
}

/// <summary>
/// MISSING faults on anonymous private memory resolved by UFFDIO_COPY from <see cref="CopyServer"/>, with
/// <c>Threads</c> faulting threads each writing one byte to every page of its slice in order. On the model
/// (<see cref="ModelTask"/>s on a <see cref="ModelKernel"/>) and on the real kernel (<see cref="HostUserfaultfd"/>,
/// .NET threads touching real memory). Every page is checked afterwards (the byte written, then the copied pattern).
/// </summary>
public static unsafe class RoundTrip
{
    private const byte Pattern = 0x5a;

    /// <summary>Why the host parts cannot run (null when /dev/userfaultfd or the syscall works).</summary>
    public static string? HostUnavailable()
    {
        if (!HostUserfaultfd.TryOpen(UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec, UffdOpenPath.Auto, out var u, out var failure))
            return failure.Explanation;
        u.Dispose();
        return null;
    }

    private static byte* Source(int windowPages)
    {
        nuint n = (nuint)(windowPages * Folio.BasePageSize);
        var p = (byte*)NativeMemory.AlignedAlloc(n, 4096);
        new Span<byte>(p, (int)n).Fill(Pattern);
        return p;
    }

    public static TripResult Model(int pages, TripConfig cfg, FaultPathDesign design = FaultPathDesign.PreCheck)
    {
        ulong len = (ulong)pages * Folio.BasePageSize;
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All, new ModelOptions { Design = design });
        var mm = kernel.CreateMm();
        Check(mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong addr), "mmap");
        Check(mm.Userfaultfd(Uapi.O_NONBLOCK, out var maybeCtx), "userfaultfd");
        using var ctx = maybeCtx!;
        Ok(ctx.Api(Uapi.UFFD_API, 0, out _, out _), "UFFDIO_API");
        Ok(ctx.Register(addr, len, UffdModes.Missing, out _), "UFFDIO_REGISTER");
        var tasks = new ModelTask[cfg.Threads];
        for (int i = 0; i < tasks.Length; i++) tasks[i] = mm.CreateTask();
        byte* src = Source(cfg.Window);
        try
        {
            ulong slice = len / (ulong)cfg.Threads;
            var server = new CopyServer(ctx, addr, slice, src, cfg.Window, cfg.Batch, cfg.DontWake);
            (double Seconds, double CpuNs) seconds;
            using (server)
            {
                seconds = Touch(cfg.Threads, t =>
                {
                    var task = tasks[t];
                    ReadOnlySpan<byte> one = [1];
                    ulong s = addr + (ulong)t * slice;
                    for (ulong a = s; a < s + slice; a += Folio.BasePageSize)
                        if (task.Write(a, one) != AccessResult.Ok)
                            throw new InvalidOperationException($"model write at 0x{a:x} failed");
                });
            }
            if (server.Error is { } e) throw new InvalidOperationException("model handler: " + e);
            Span<byte> two = stackalloc byte[2];
            for (ulong a = addr; a < addr + len; a += Folio.BasePageSize)
            {
                if (tasks[0].Read(a, two) != AccessResult.Ok || two[0] != 1 || two[1] != Pattern)
                    throw new InvalidOperationException($"model page 0x{a:x} holds {two[0]},{two[1]}");
            }
            return new TripResult(pages / seconds.Seconds, server.Faults, server.Reads, seconds.CpuNs / pages);
        }
        finally { NativeMemory.AlignedFree(src); }
    }

    public static TripResult Host(int pages, TripConfig cfg)
    {
        nuint len = (nuint)pages * (nuint)Environment.SystemPageSize;
        using var map = HostMemory.MapAnonymous(len);
        using var uffd = HostUserfaultfd.Open();
        Ok(uffd.Api(Uapi.UFFD_API, 0, out _, out _), "UFFDIO_API");
        Ok(uffd.Register(map.Start, len, UffdModes.Missing, out _), "UFFDIO_REGISTER");
        byte* src = Source(cfg.Window);
        try
        {
            ulong slice = len / (ulong)cfg.Threads;
            var server = new CopyServer(uffd, map.Start, slice, src, cfg.Window, cfg.Batch, cfg.DontWake);
            (double Seconds, double CpuNs) seconds;
            using (server)
                seconds = Touch(cfg.Threads, t => TouchPages((byte*)map.Start + (ulong)t * slice, slice, (ulong)uffd.PageSize));
            if (server.Error is { } e) throw new InvalidOperationException("host handler: " + e);
            Verify((byte*)map.Start, len, uffd.PageSize, Pattern);
            return new TripResult(pages / seconds.Seconds, server.Faults, server.Reads, seconds.CpuNs / pages);
        }
        finally { NativeMemory.AlignedFree(src); }
    }

    /// <summary>
    /// The two halves of a model round trip without the hand-off between threads: (1) ns per first-touch write fault on
    /// anonymous memory with no userfaultfd, (2) ns per one-page UFFDIO_COPY into a MISSING-registered range nobody waits on.
    /// </summary>
    public static (double TouchNs, double CopyNs) ModelParts(int pages)
    {
        ulong len = (ulong)pages * Folio.BasePageSize;
        var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var mm = kernel.CreateMm();
        var task = mm.CreateTask();
        Check(mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong plain), "mmap");
        Check(mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong armed), "mmap");
        ReadOnlySpan<byte> one = [1];
        long t0 = Stopwatch.GetTimestamp();
        for (ulong a = plain; a < plain + len; a += Folio.BasePageSize)
            task.Write(a, one);
        double touch = Stopwatch.GetElapsedTime(t0).TotalNanoseconds / pages;
        Check(mm.Userfaultfd(Uapi.O_NONBLOCK, out var maybeCtx), "userfaultfd");
        using var ctx = maybeCtx!;
        Ok(ctx.Api(Uapi.UFFD_API, 0, out _, out _), "UFFDIO_API");
        Ok(ctx.Register(armed, len, UffdModes.Missing, out _), "UFFDIO_REGISTER");
        byte* src = Source(1);
        try
        {
            var span = new ReadOnlySpan<byte>(src, Folio.BasePageSize);
            t0 = Stopwatch.GetTimestamp();
            for (ulong a = armed; a < armed + len; a += Folio.BasePageSize)
                Ok(ctx.Copy(a, span, UffdCopyMode.None), "UFFDIO_COPY");
            return (touch, Stopwatch.GetElapsedTime(t0).TotalNanoseconds / pages);
        }
        finally { NativeMemory.AlignedFree(src); }
    }

    /// <summary>The same two halves on the real kernel: plain first touch, and one-page UFFDIO_COPY nobody waits on.</summary>
    public static (double TouchNs, double CopyNs) HostParts(int pages)
    {
        double touch = 1e9 / Plain(pages, 1).PagesPerSec;
        nuint len = (nuint)pages * (nuint)Environment.SystemPageSize;
        using var map = HostMemory.MapAnonymous(len);
        using var uffd = HostUserfaultfd.Open();
        Ok(uffd.Api(Uapi.UFFD_API, 0, out _, out _), "UFFDIO_API");
        Ok(uffd.Register(map.Start, len, UffdModes.Missing, out _), "UFFDIO_REGISTER");
        byte* src = Source(1);
        try
        {
            ulong ps = (ulong)uffd.PageSize;
            long t0 = Stopwatch.GetTimestamp();
            for (ulong a = map.Start; a < map.Start + len; a += ps)
                Ok(uffd.CopyFrom(a, (ulong)src, ps, UffdCopyMode.None), "UFFDIO_COPY");
            return (touch, Stopwatch.GetElapsedTime(t0).TotalNanoseconds / pages);
        }
        finally { NativeMemory.AlignedFree(src); }
    }

    /// <summary>First touch of plain anonymous memory (no userfaultfd): the kernel's own page-fault path.</summary>
    public static TripResult Plain(int pages, int threads)
    {
        nuint len = (nuint)pages * (nuint)Environment.SystemPageSize;
        using var map = HostMemory.MapAnonymous(len);
        ulong slice = len / (ulong)threads;
        var (seconds, cpu) = Touch(threads, t => TouchPages((byte*)map.Start + (ulong)t * slice, slice, (ulong)Environment.SystemPageSize));
        Verify((byte*)map.Start, len, Environment.SystemPageSize, 0);
        return new TripResult(pages / seconds, 0, 0, cpu / pages);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void TouchPages(byte* p, ulong len, ulong pageSize)
    {
        for (ulong o = 0; o < len; o += pageSize)
            Volatile.Write(ref p[o], (byte)1);
    }

    private static void Verify(byte* p, nuint len, int pageSize, byte second)
    {
        for (nuint o = 0; o < len; o += (nuint)pageSize)
            if (p[o] != 1 || p[o + 1] != second)
                throw new InvalidOperationException($"host page +0x{o:x} holds {p[o]},{p[o + 1]}");
    }

    /// <summary>Starts <paramref name="threads"/> threads on a barrier and times them from release to the last join.</summary>
    private static (double Seconds, double CpuNs) Touch(int threads, Action<int> body)
    {
        using var barrier = new Barrier(threads + 1);
        var ts = new Thread[threads];
        Exception? error = null;
        for (int i = 0; i < threads; i++)
        {
            int t = i;
            ts[i] = new Thread(() =>
            {
                barrier.SignalAndWait();
                try { body(t); } catch (Exception e) { error = e; }
            }) { IsBackground = true, Name = $"toucher-{t}" };
            ts[i].Start();
        }
        double cpu0 = CpuTime.ProcessNs();
        barrier.SignalAndWait();
        long t0 = Stopwatch.GetTimestamp();
        foreach (var t in ts)
            if (!t.Join(TimeSpan.FromMinutes(2)))
                throw new TimeoutException("a faulting thread did not finish in 2 minutes (lost wake-up?)");
        double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        double cpu = CpuTime.ProcessNs() - cpu0;
        if (error is not null) throw new InvalidOperationException("faulting thread failed", error);
        return (s, cpu);
    }

    private static void Check(Errno e, string what)
    {
        if (e != Errno.None) throw new InvalidOperationException($"{what}: {e}");
    }

    private static void Ok(UffdioResult r, string what)
    {
        if (!r.Succeeded) throw new InvalidOperationException($"{what}: {r}");
    }
}

/// <summary>bench/c/uffd_handler.c, built with gcc at run time.</summary>
public static class Gcc
{
    public static string? Version()
    {
        var r = Proc.Run("gcc", "--version", TimeSpan.FromSeconds(10));
        return r.ExitCode == 0 ? r.Stdout.Split('\n')[0].Trim() : null;
    }

    /// <summary>Builds the C handler; returns its path, or null with the reason.</summary>
    public static string? BuildHandler(string repoRoot, out string? reason)
    {
        string src = Path.Combine(repoRoot, "bench", "c", "uffd_handler.c");
        string exe = Path.Combine(Path.GetTempPath(), $"pluginmm-uffd_handler-{Environment.ProcessId}");
        var r = Proc.Run("gcc", $"-O2 -pthread -o \"{exe}\" \"{src}\"", TimeSpan.FromMinutes(1));
        reason = r.ExitCode == 0 ? null : $"gcc failed ({r.ExitCode}): {r.Stderr.Trim()}";
        return r.ExitCode == 0 ? exe : null;
    }

    /// <summary>One run of the C handler (or plain first touch when <paramref name="cfg"/> is null).</summary>
    public static TripResult Run(string exe, int pages, TripConfig? cfg, int plainThreads = 1)
    {
        string args = cfg is { } c ? $"uffd {pages} {c.Threads} {c.Window} {c.Batch}" : $"plain {pages} {plainThreads} 1 1";
        var r = Proc.Run(exe, args, TimeSpan.FromMinutes(2));
        if (r.ExitCode != 0 || !r.Stdout.Contains("verified=1", StringComparison.Ordinal))
            throw new InvalidOperationException($"C handler {args}: exit {r.ExitCode}: {r.Stdout} {r.Stderr}");
        double pps = 0, cpu = double.NaN;
        long faults = 0;
        foreach (var kv in r.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = kv.Split('=');
            if (parts[0] == "pages_per_sec") pps = double.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            if (parts[0] == "cpu_ns_per_page") cpu = double.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            if (parts[0] == "faults") faults = long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        return new TripResult(pps, faults, 0, cpu);
    }
}
