using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using PluginMm;
using PluginMm.Runtime.Linux;
using PluginMm.Samples.LazyRestore;
using PluginMm.Userfaultfd;

// Lazy restore of a memory snapshot, as Firecracker and CRIU do it: the "guest" region is empty anonymous memory
// registered MISSING; its contents come from the snapshot file on first touch, served by LazyPageServer (written
// against IUserfaultfd only) with a prefetch policy. The guest verifies every byte it reads against the snapshot.
//
//   dotnet run --project Samples/LazyRestore -- [--size 64M|1G] [--prefetch none|fixed|adaptive] [--window 256K]
//                                              [--access sequential|random] [--snapshot PATH]

return Cli.Run(args);

internal static unsafe class Cli
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(10);

    public static int Run(string[] args)
    {
        long size = 64L << 20;
        var policy = PrefetchPolicy.Adaptive;
        int window = 256 * 1024;
        bool random = false;
        string? snapshotPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? v = i + 1 < args.Length ? args[i + 1] : null;
            switch (a)
            {
                case "--size" when v is not null && TryParseSize(v, out size): i++; break;
                case "--window" when v is not null && TryParseSize(v, out long w) && w is > 0 and <= int.MaxValue: window = (int)w; i++; break;
                case "--prefetch" when v is not null && Enum.TryParse(v, ignoreCase: true, out policy): i++; break;
                case "--access" when v is "sequential" or "random": random = v == "random"; i++; break;
                case "--snapshot" when v is not null: snapshotPath = v; i++; break;
                case "-h" or "--help": Usage(); return 0;
                default:
                    Console.Error.WriteLine($"lazyrestore: bad argument '{a}'{(v is null ? "" : $" '{v}'")}");
                    Usage();
                    return 64;
            }
        }
        int page = Environment.SystemPageSize;
        if (size <= 0 || size % page != 0)
        {
            Console.Error.WriteLine($"lazyrestore: --size must be a positive multiple of the page size ({page})");
            return 64;
        }
        if (!OperatingSystem.IsLinux())
        {
            Console.Error.WriteLine("lazyrestore: userfaultfd is Linux-only");
            return 2;
        }

        // 1. The userfaultfd: /dev/userfaultfd or the syscall; unprivileged, fall back to USER_MODE_ONLY (enough here:
        //    the guest touches memory in user mode).
        if (!HostUserfaultfd.TryOpen(UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec, UffdOpenPath.Auto, out var uffd, out var failure)
            && !HostUserfaultfd.TryOpen(UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec | UffdOpenFlags.UserModeOnly, UffdOpenPath.Syscall, out uffd, out _))
        {
            Console.Error.WriteLine($"lazyrestore: {failure.Explanation}");
            return 2;
        }
        using var _uffd = uffd;
        var api = uffd.Api(Uapi.UFFD_API, UffdFeatures.None, out _, out _);
        if (!api.Succeeded)
        {
            Console.Error.WriteLine($"lazyrestore: UFFDIO_API failed: {api}");
            return 2;
        }

        // 2. The snapshot (created once, deterministic content) mapped read-only: the source of every UFFDIO_COPY.
        snapshotPath ??= Path.Combine(Path.GetTempPath(), $"pluginmm-lazyrestore-{size}.snap");
        try
        {
            Snapshot.Ensure(snapshotPath, size, page);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"lazyrestore: cannot create the snapshot {snapshotPath}: {e.Message}");
            return 1;
        }
        var me = HostMemory.TryMapFileReadOnly(snapshotPath, out var snapshot);
        if (me != Errno.None)
        {
            Console.Error.WriteLine($"lazyrestore: cannot map {snapshotPath}: {me}");
            return 1;
        }
        using var _snapshot = snapshot!;
        if ((long)snapshot!.Length != size)
        {
            Console.Error.WriteLine($"lazyrestore: {snapshotPath} has {snapshot.Length} bytes, expected {size}");
            return 1;
        }

        // 3. The guest region, registered MISSING.
        var ge = HostMemory.TryMapAnonymous((nuint)size, out var region);
        if (ge != Errno.None)
        {
            Console.Error.WriteLine($"lazyrestore: mmap of {size} bytes failed: {ge}");
            return 1;
        }
        using var _region = region!;
        HostMemory.Madvise(region!.Start, (ulong)size, HostAdvice.NoHugePage);
        var reg = uffd.Register(region.Start, (ulong)size, UffdModes.Missing, out _);
        if (!reg.Succeeded)
        {
            Console.Error.WriteLine($"lazyrestore: UFFDIO_REGISTER failed: {reg}");
            return 1;
        }

        // 4. Serve on one thread, run the guest on another.
        var server = new LazyPageServer(uffd, region.Start, size, (byte*)snapshot.Address, policy, window);
        Errno serverResult = Errno.None;
        var serverThread = new Thread(() => serverResult = server.Run()) { Name = "uffd-server", IsBackground = true };
        long mismatches = 0;
        var sw = Stopwatch.StartNew();
        var guest = new Thread(() => mismatches = Guest.TouchAndVerify(region, snapshot, size, page, random)) { Name = "guest", IsBackground = true };
        serverThread.Start();
        guest.Start();
        bool finished = guest.Join(HangGuard);
        double seconds = sw.Elapsed.TotalSeconds;
        server.Stop();
        if (!finished)
        {
            uffd.Dispose(); // releases the guest: it refaults on unregistered memory
            guest.Join(HangGuard);
        }
        serverThread.Join(HangGuard);

        var s = server.Stats;
        Console.WriteLine($"LazyRestore: {Human(size)} snapshot, prefetch={policy.ToString().ToLowerInvariant()}"
            + (policy == PrefetchPolicy.Fixed ? $" (window {Human(window)})" : "")
            + $", access={(random ? "random" : "sequential")}, page {page} B, uffd via {(uffd.OpenFlags.HasFlag(UffdOpenFlags.UserModeOnly) ? "syscall (user-mode only)" : "/dev/userfaultfd or syscall")}");
        Console.WriteLine($"  faults {s.Faults} (stale {s.StaleFaults}), UFFDIO_COPY {s.CopyIoctls} (partial {s.PartialCopies}, -EAGAIN {s.Retries}), "
            + $"copied {Human(s.BytesCopied)} ({s.PrefetchedPages} pages prefetched)");
        Console.WriteLine($"  restore + verify: {seconds:F3} s, {size / 1e6 / seconds:F0} MB/s, {(s.Faults == 0 ? 0 : seconds * 1e6 / s.Faults):F1} us per fault");
        if (!finished)
        {
            Console.WriteLine($"  FAILED: the guest did not finish within {HangGuard.TotalMinutes} min (server: {serverResult})");
            return 1;
        }
        if (serverResult != Errno.None)
        {
            Console.WriteLine($"  FAILED: the page server stopped with {serverResult}");
            return 1;
        }
        if (mismatches != 0 || s.BytesCopied != size)
        {
            Console.WriteLine($"  FAILED: {mismatches} mismatching bytes, {s.BytesCopied} of {size} bytes copied");
            return 1;
        }
        Console.WriteLine($"  every byte verified: {size} bytes identical to the snapshot");
        return 0;
    }

    private static void Usage() => Console.Error.WriteLine(
        "usage: lazyrestore [--size 64M|1G] [--prefetch none|fixed|adaptive] [--window 256K] [--access sequential|random] [--snapshot PATH]");

    private static bool TryParseSize(string s, out long bytes)
    {
        bytes = 0;
        long mult = 1;
        char last = char.ToUpperInvariant(s[^1]);
        if (last is 'K' or 'M' or 'G')
        {
            mult = last == 'K' ? 1L << 10 : last == 'M' ? 1L << 20 : 1L << 30;
            s = s[..^1];
        }
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / mult)
            return false;
        bytes = n * mult;
        return true;
    }

    private static string Human(long b) => b >= 1L << 30 && b % (1L << 30) == 0 ? $"{b >> 30} GiB"
        : b >= 1L << 20 ? $"{b / (double)(1L << 20):0.#} MiB" : $"{b / 1024.0:0.#} KiB";
}

/// <summary>The deterministic snapshot: every 16th page zero, the others pseudo-random (SplitMix64 of the word index).</summary>
internal static class Snapshot
{
    public static void Ensure(string path, long size, int page)
    {
        if (File.Exists(path) && new FileInfo(path).Length == size && Probe(path, size, page))
            return;
        string tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var buf = new byte[1 << 20];
            for (long off = 0; off < size; off += buf.Length)
            {
                int n = (int)Math.Min(buf.Length, size - off);
                Fill(buf.AsSpan(0, n), off, page);
                f.Write(buf, 0, n);
            }
        }
        File.Move(tmp, path, overwrite: true);
    }

    public static void Fill(Span<byte> dst, long offset, int page)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(dst);
        for (int i = 0; i < words.Length; i++)
        {
            long at = offset + i * 8L;
            words[i] = at / page % 16 == 15 ? 0 : Mix((ulong)at);
        }
    }

    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    // A reused file must still hold the generated content: check its first and last pages.
    private static bool Probe(string path, long size, int page)
    {
        var want = new byte[page];
        var got = new byte[page];
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read);
        foreach (long off in new[] { 0L, size - page })
        {
            Fill(want, off, page);
            f.Position = off;
            f.ReadExactly(got);
            if (!want.AsSpan().SequenceEqual(got))
                return false;
        }
        return true;
    }
}

/// <summary>The guest: touches every page (in order or in a fixed pseudo-random order) and compares it with the snapshot.</summary>
internal static unsafe class Guest
{
    public static long TouchAndVerify(HostMapping region, HostMapping snapshot, long size, int page, bool random)
    {
        long pages = size / page;
        long stride = random ? Stride(pages) : 1;
        long mismatches = 0;
        long p = 0;
        for (long i = 0; i < pages; i++)
        {
            var live = new ReadOnlySpan<byte>((byte*)region.Address + p * page, page);
            var want = new ReadOnlySpan<byte>((byte*)snapshot.Address + p * page, page);
            if (!live.SequenceEqual(want))
            {
                for (int b = 0; b < page; b++)
                    mismatches += live[b] != want[b] ? 1 : 0;
            }
            p = (p + stride) % pages;
        }
        return mismatches;
    }

    // An odd stride near pages/φ that is coprime with the page count visits every page once, in a scattered order.
    private static long Stride(long pages)
    {
        long s = Math.Max(1, (long)(pages / 1.618033988749895)) | 1;
        while (Gcd(s, pages) != 1)
            s += 2;
        return s;
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0)
            (a, b) = (b, a % b);
        return a;
    }
}
