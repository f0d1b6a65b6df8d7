using PluginMm.Userfaultfd;
using static PluginMm.Runtime.Linux.Tests.HostTestSupport;

namespace PluginMm.Runtime.Linux.Tests;

/// <summary>The real-memory helpers: memfd with an alias, punch hole, madvise, hugetlb reservation.</summary>
[TestClass]
public sealed class MemoryTests
{
    private static readonly int Page = Environment.SystemPageSize;

    [TestMethod(DisplayName = "memfd: a MAP_SHARED alias sees the page cache, MAP_PRIVATE copies on write, punch hole empties it")]
    public void MemfdAliasAndPunchHole()
    {
        using var file = HostMemFile.Create("t", 2 * Page);
        using var shared = file.Map(shared: true, (nuint)(2 * Page));
        using var alias = file.Map(shared: true, (nuint)(2 * Page));
        using var priv = file.Map(shared: false, (nuint)(2 * Page));
        Assert.AreEqual(Errno.None, file.Write(Page, [1, 2, 3]));
        Assert.AreEqual(2, shared.Span((ulong)Page + 1, 1)[0]);
        alias.Span(0, 1)[0] = 9;
        Assert.AreEqual(9, shared.Span(0, 1)[0]);
        Assert.AreEqual(9, priv.Span(0, 1)[0], "an untouched private page reads the page cache");
        priv.Span(0, 1)[0] = 7;
        Assert.AreEqual(9, shared.Span(0, 1)[0], "a private write does not reach the page cache");
        Assert.AreEqual(Errno.None, file.PunchHole(0, 2 * Page));
        Assert.AreEqual(0, shared.Span(0, 1)[0]);
        Assert.AreEqual(7, priv.Span(0, 1)[0], "the private copy survives the punch");
        Assert.AreEqual(Errno.None, HostMemory.Madvise(priv.Start, (ulong)Page, HostAdvice.DontNeed));
        Assert.AreEqual(0, priv.Span(0, 1)[0], "DONTNEED drops the private copy; the page cache is empty");
        Assert.AreEqual(Errno.EINVAL, HostMemory.Madvise(priv.Start + 1, (ulong)Page, HostAdvice.DontNeed));
    }

    [TestMethod(DisplayName = "hugetlb: reservation raises nr_hugepages and restores it; MFD_HUGETLB memory maps and registers")]
    public void HugeTlbReservationRestores()
    {
        long before = long.Parse(File.ReadAllText("/proc/sys/vm/nr_hugepages").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        if (!HugeTlbReservation.TryReserve(2, out var reservation, out var reason))
            Assert.Inconclusive(reason);
        int huge = HugeTlbReservation.DefaultHugePageSize;
        using (reservation)
        {
            Assert.AreEqual(before + 2, long.Parse(File.ReadAllText("/proc/sys/vm/nr_hugepages").Trim(), System.Globalization.CultureInfo.InvariantCulture));
            using var file = HostMemFile.Create("h", 2L * huge, hugeTlb: true);
            Assert.AreEqual(huge, file.PageSize);
            using var map = file.Map(shared: true, (nuint)(2 * huge));
            using var uffd = OpenApi(UffdFeatures.MissingHugetlbfs);
            Assert.AreEqual(Errno.EINVAL, uffd.Register(map.Start + (ulong)Page, (ulong)huge, UffdModes.Missing, out _).Errno, "hugetlb start must be huge-aligned");
            var r = uffd.Register(map.Start, 2UL * (ulong)huge, UffdModes.Missing, out var ioctls);
            Assert.IsTrue(r.Succeeded, r.ToString());
            Assert.AreEqual(Uapi.UFFD_API_RANGE_IOCTLS_BASIC & ~(UffdIoctls.WriteProtect | UffdIoctls.Continue), ioctls);
            Assert.AreEqual(new UffdioResult(Errno.None, huge), uffd.Copy(map.Start, new byte[huge], UffdCopyMode.None));
        }
        Assert.AreEqual(before, long.Parse(File.ReadAllText("/proc/sys/vm/nr_hugepages").Trim(), System.Globalization.CultureInfo.InvariantCulture));
    }

    [TestMethod(DisplayName = "a snapshot file maps read-only, and a missing file gives ENOENT")]
    public void MapFileReadOnly()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, [5, 6, 7]);
            Assert.AreEqual(Errno.None, HostMemory.TryMapFileReadOnly(path, out var m));
            using (m!)
                Assert.AreEqual(7, m!.Span(2, 1)[0]);
            Assert.AreEqual(Errno.ENOENT, HostMemory.TryMapFileReadOnly(path + ".absent", out _));
        }
        finally { File.Delete(path); }
    }
}
