using PluginMm.Runtime.Linux;

namespace PluginMm.Linux.Testing;

/// <summary>
/// A reservation of default-size huge pages (<c>/proc/sys/vm/nr_hugepages</c> raised by the number needed); the
/// previous value is restored on <see cref="Dispose"/>. Needs root.
/// </summary>
public sealed class HugeTlbReservation : IDisposable
{
    private const string NrHugePages = "/proc/sys/vm/nr_hugepages";
    private readonly long _previous;
    private int _disposed;

    private HugeTlbReservation(long previous, int pages)
    {
        _previous = previous;
        Pages = pages;
    }

    /// <summary>Pages reserved by this object.</summary>
    public int Pages { get; }

    /// <summary>The default huge page size (<see cref="HostMemory.DefaultHugePageSize"/>), or 0 if unknown.</summary>
    public static int DefaultHugePageSize => HostMemory.DefaultHugePageSize;

    /// <summary>
    /// Raises <c>nr_hugepages</c> by <paramref name="pages"/> and checks the kernel really has them free; on failure
    /// restores the old value and says why in <paramref name="reason"/>.
    /// </summary>
    public static bool TryReserve(int pages, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HugeTlbReservation? reservation, out string reason)
    {
        reservation = null;
        if (DefaultHugePageSize == 0)
        {
            reason = "no hugetlb support (no Hugepagesize in /proc/meminfo)";
            return false;
        }
        long previous;
        try
        {
            previous = long.Parse(File.ReadAllText(NrHugePages).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            long freeBefore = ReadMeminfo("HugePages_Free:");
            File.WriteAllText(NrHugePages, (previous + pages).ToString(System.Globalization.CultureInfo.InvariantCulture));
            long freeAfter = ReadMeminfo("HugePages_Free:");
            if (freeAfter - freeBefore < pages)
            {
                File.WriteAllText(NrHugePages, previous.ToString(System.Globalization.CultureInfo.InvariantCulture));
                reason = $"asked the kernel for {pages} more huge pages of {DefaultHugePageSize / 1024} KiB, got {freeAfter - freeBefore} (memory fragmented or too small)";
                return false;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            reason = $"cannot reserve huge pages through {NrHugePages}: {e.Message} (needs root)";
            return false;
        }
        reservation = new HugeTlbReservation(previous, pages);
        reason = "";
        return true;
    }

    private static long ReadMeminfo(string key)
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line.AsSpan(key.Length).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        return 0;
    }

    /// <summary>Restores the previous <c>nr_hugepages</c>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try { File.WriteAllText(NrHugePages, _previous.ToString(System.Globalization.CultureInfo.InvariantCulture)); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
