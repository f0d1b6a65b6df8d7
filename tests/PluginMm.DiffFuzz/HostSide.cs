using Microsoft.Win32.SafeHandles;
using PluginMm.Linux.Testing;
using PluginMm.Runtime.Linux;
using PluginMm.Userfaultfd;

using PluginMm.Conformance;

namespace PluginMm.DiffFuzz;

/// <summary>
/// The real kernel: mappings of this process at fixed addresses inside a reserved span, a <see cref="HostUserfaultfd"/>,
/// <see cref="FaultingThread"/> workers whose accesses go through the kernel (a would-be SIGBUS/SIGSEGV is EFAULT),
/// /proc/self/pagemap and cachestat(2) for the summary.
/// </summary>
public sealed class HostSide : Side
{
    private static readonly Lazy<SafeFileHandle?> s_pagemap = new(() =>
    {
        try { return File.OpenHandle("/proc/self/pagemap"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    });

    private readonly Dictionary<Worker, FaultingThread> _threads = [];
    private readonly string? _uffdReason;
    private HostMemFile? _file;
    private bool _mapped;

    private const string NrHugePages = "/proc/sys/vm/nr_hugepages";
    private static readonly Lock s_hugeLock = new();
    private static int s_reserved;

    /// <summary>Why hugetlb cannot run on the host (null when huge pages are reserved).</summary>
    public static string? HugeReason { get; private set; } = "huge pages not reserved (call ReserveHugePages)";

    /// <summary>
    /// Raises <c>nr_hugepages</c> by <paramref name="pages"/> default-size (2 MiB) pages; <see cref="ReleaseHugePages"/>
    /// lowers it by the same number. Relative, not a restore of an absolute value, so test processes reserving at
    /// the same time give back exactly what they took (the conformance suite's <see cref="HugeTlbReservation"/> restores
    /// the value it saw; <see cref="Runner.Run"/> discards a hugetlb case during which the total dropped).
    /// </summary>
    public static void ReserveHugePages(int pages)
    {
        lock (s_hugeLock)
        {
            if (s_reserved > 0)
                return;
            if (HugeTlbReservation.DefaultHugePageSize != (int)Layout.Pmd)
            {
                HugeReason = $"default huge page size is {HugeTlbReservation.DefaultHugePageSize} bytes, the fuzzer lays out 2 MiB pages";
                return;
            }
            try
            {
                long free = Meminfo("HugePages_Free:");
                WriteNr(ReadNr() + pages);
                if (Meminfo("HugePages_Free:") - free < pages)
                {
                    WriteNr(Math.Max(0, ReadNr() - pages));
                    HugeReason = $"asked the kernel for {pages} more huge pages, it could not free them (memory fragmented or too small)";
                    return;
                }
                s_reserved = pages;
                HugeReason = null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                HugeReason = $"cannot reserve huge pages through {NrHugePages}: {e.Message} (needs root)";
            }
        }
    }

    /// <summary>Gives the reserved huge pages back (lowers nr_hugepages by what <see cref="ReserveHugePages"/> raised).</summary>
    public static void ReleaseHugePages()
    {
        lock (s_hugeLock)
        {
            if (s_reserved == 0)
                return;
            try { WriteNr(Math.Max(0, ReadNr() - s_reserved)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
            s_reserved = 0;
            HugeReason = "huge pages released";
        }
    }

    /// <summary><c>HugePages_Total</c> now (0 if unknown).</summary>
    public static long HugePagesTotal()
    {
        try { return Meminfo("HugePages_Total:"); }
        catch (IOException) { return 0; }
    }

    private static long ReadNr() => long.Parse(File.ReadAllText(NrHugePages).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    private static void WriteNr(long v) => File.WriteAllText(NrHugePages, v.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static long Meminfo(string key)
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line.AsSpan(key.Length).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        return 0;
    }

    /// <summary>Checks /dev/userfaultfd (or the system call).</summary>
    public HostSide()
    {
        if (!HostUserfaultfd.TryOpen(UffdOpenFlags.CloseOnExec, UffdOpenPath.Auto, out var probe, out var failure))
            _uffdReason = failure.Explanation;
        probe?.Dispose();
    }

    /// <inheritdoc/>
    public override string Name => "host";

    /// <summary>Start of the span (for the model to use the same addresses).</summary>
    public ulong BaseAddress { get; private set; }

    /// <inheritdoc/>
    public override string? Unsupported(MemType type)
        => !OperatingSystem.IsLinux() ? "not Linux" : _uffdReason ?? (type.IsHuge() ? HugeReason : null);

    /// <inheritdoc/>
    protected override Layout MapLayout(FuzzCase c, ulong pageSize)
    {
        ulong span = Layout.SpanFor(c, pageSize);
        Check(Native.Mmap(0, span + Layout.Pmd, Native.PROT_NONE, Native.MAP_PRIVATE | Native.MAP_ANONYMOUS | Native.MAP_NORESERVE, -1, 0, out ulong raw), "reserve");
        ulong b = (raw + Layout.Pmd - 1) & ~(Layout.Pmd - 1);
        if (b > raw)
            Native.Munmap(raw, b - raw);
        Native.Munmap(b + span, raw + span + Layout.Pmd - (b + span));
        BaseAddress = b;
        _mapped = true;
        var lay = new Layout(c, pageSize, b);
        // No transparent huge pages anywhere in the span: the model has none.
        Native.Madvise(lay.Base, lay.End - lay.Base, NoHugePage);
        const int rw = Native.PROT_READ | Native.PROT_WRITE;
        const int anon = Native.MAP_PRIVATE | Native.MAP_ANONYMOUS | Native.MAP_NORESERVE | Native.MAP_FIXED;
        if (c.Type == MemType.Anon)
        {
            Check(Native.Mmap(lay.A, lay.AreaLen, rw, anon, -1, 0, out _), "mmap area");
            Native.Madvise(lay.A, lay.AreaLen, NoHugePage);
        }
        else
        {
            _file = HostMemFile.Create($"difffuzz-{c.Type.Name()}", (long)lay.AreaLen, c.Type.IsHuge());
            int flags = (c.Type.IsShared() ? Native.MAP_SHARED : Native.MAP_PRIVATE | (c.Type.IsHuge() ? Native.MAP_NORESERVE : 0)) | Native.MAP_FIXED;
            Check(Native.Mmap(lay.A, lay.AreaLen, rw, flags, _file.Fd, 0, out _), "mmap area");
            Check(Native.Mmap(lay.L, lay.AreaLen, rw, Native.MAP_SHARED | Native.MAP_FIXED, _file.Fd, 0, out _), "mmap alias");
        }
        Check(Native.Mmap(lay.S, lay.AreaLen, rw, anon, -1, 0, out _), "mmap source");
        Native.Madvise(lay.S, lay.AreaLen, NoHugePage);
        return lay;
    }

    private const int NoHugePage = 15;

    private static void Check(Errno e, string what)
    {
        if (e != Errno.None)
            throw new InvalidOperationException($"host {what}: {e}");
    }

    /// <inheritdoc/>
    protected override IUserfaultfd OpenUffd() => HostUserfaultfd.Open(UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec);

    /// <inheritdoc/>
    protected override UffdioResult CopyFrom(ulong dst, ulong src, ulong len, ulong mode)
        => ((HostUserfaultfd)Uffd!).CopyFrom(dst, src, len, (UffdCopyMode)mode);

    /// <inheritdoc/>
    protected override void FillSource(ulong addr, ulong len, byte value)
    {
        var b = new byte[len];
        b.AsSpan().Fill(value);
        HostMemory.WriteThroughKernel(addr, b);
    }

    /// <inheritdoc/>
    protected override void Start(Worker w, Func<string> body)
    {
        var t = FaultingThread.Start($"w{w.Index}", () => w.Outcome = body());
        w.Tid = (uint)t.Tid;
        _threads[w] = t;
    }

    /// <inheritdoc/>
    protected override string Access(ulong address, bool write, byte value)
    {
        Span<byte> one = [value];
        var e = write ? HostMemory.WriteThroughKernel(address, one) : HostMemory.ReadThroughKernel(address, one);
        return e switch
        {
            Errno.None => $"ok:{Op.Hex(one[0])}",
            Errno.EFAULT => "fault",
            _ => e.ToString(),
        };
    }

    /// <inheritdoc/>
    protected override Errno Madvise(ulong a, ulong len, int advice) => Native.Madvise(a, len, advice);

    /// <inheritdoc/>
    protected override Errno Mprotect(ulong a, ulong len, int prot) => Native.Mprotect(a, len, prot);

    /// <inheritdoc/>
    protected override Errno Munmap(ulong a, ulong len) => Native.Munmap(a, len);

    /// <inheritdoc/>
    protected override Errno Mremap(ulong old, ulong oldLen, ulong newLen, int flags, ulong newAddr, out ulong result)
        => Native.Mremap(old, oldLen, newLen, flags, newAddr, out result);

    /// <inheritdoc/>
    protected override Errno PunchHole(long offset, long len) => Native.PunchHole(_file!.Fd, offset, len);

    /// <inheritdoc/>
    protected override void PlugHoles()
    {
        ulong at = Lay.Base;
        var gaps = new List<(ulong, ulong)>();
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal), sp = line.IndexOf(' ', StringComparison.Ordinal);
            ulong s = Convert.ToUInt64(line[..dash], 16), e = Convert.ToUInt64(line[(dash + 1)..sp], 16);
            if (e <= Lay.Base || s >= Lay.End)
                continue;
            if (s > at)
                gaps.Add((at, s));
            at = Math.Max(at, e);
        }
        if (at < Lay.End)
            gaps.Add((at, Lay.End));
        foreach (var (s, e) in gaps)
        {
            if (Native.Mmap(s, e - s, Native.PROT_NONE, Native.MAP_PRIVATE | Native.MAP_ANONYMOUS | Native.MAP_NORESERVE | Native.MAP_FIXED_NOREPLACE, -1, 0, out _) == Errno.None)
                Native.Madvise(s, e - s, NoHugePage);
        }
    }

    /// <inheritdoc/>
    protected override (bool Present, bool Wp, bool File) Pagemap(ulong a)
    {
        Span<byte> e = stackalloc byte[8];
        if (s_pagemap.Value is not { } h || RandomAccess.Read(h, e, (long)(a / 4096 * 8)) != 8)
            return (false, false, false);
        ulong v = BitConverter.ToUInt64(e);
        return ((v & (1UL << 63)) != 0, (v & (1UL << 57)) != 0, (v & (1UL << 61)) != 0);
    }

    /// <inheritdoc/>
    protected override string? CachedPage(long index)
    {
        long n = Native.CachedPages(_file!.Fd, index * (long)Lay.PageSize, (long)Lay.PageSize);
        return n < 0 ? null : n > 0 ? "1" : "0";
    }

    /// <inheritdoc/>
    protected override long CachedTotal()
    {
        long n = Native.CachedPages(_file!.Fd, 0, (long)Lay.AreaLen);
        return n >= 0 ? n / (long)(Lay.PageSize / 4096) : Native.Blocks(_file.Fd) * 512 / (long)Lay.PageSize;
    }

    /// <inheritdoc/>
    protected override bool ReadMemory(ulong a, Span<byte> buffer) => HostMemory.ReadThroughKernel(a, buffer) == Errno.None;

    /// <inheritdoc/>
    protected override bool Settle(int timeoutMs)
        => WaitUntil(() => _threads.Values.All(t => t.Finished || t.Wchan.Contains("userfault", StringComparison.Ordinal)), timeoutMs);

    /// <inheritdoc/>
    public override void Dispose()
    {
        Uffd?.Dispose();
        Uffd = null;
        // Unmapping the span ends every access still running (a livelocked fault becomes SIGSEGV → EFAULT).
        if (_mapped)
            Native.Munmap(Lay.Base, Lay.End - Lay.Base);
        _mapped = false;
        foreach (var t in _threads.Values)
            t.Join(TimeSpan.FromSeconds(2));
        _file?.Dispose();
    }
}
