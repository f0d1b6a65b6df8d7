using PluginMm.Runtime;
namespace PluginMm.UffdStress;

/// <summary>
/// One memory configuration of uffd-stress (uffd-common.c <c>*_allocate_area</c>, <c>*_release_pages</c>,
/// <c>*_alias_mapping</c>): anon, shmem and shmem-private (memfd mapped MAP_SHARED twice, as the selftests do), hugetlb
/// (MAP_SHARED + alias) and hugetlb-private (MAP_PRIVATE, no alias).
/// </summary>
internal sealed class StressArea
{
    /// <summary>The five memory types, in the order the selftests list them.</summary>
    public static readonly string[] MemTypes = ["anon", "shmem", "shmem-private", "hugetlb", "hugetlb-private"];

    /// <summary>Huge page size of the hugetlb configurations.</summary>
    public const int HugePageSize = 2 * 1024 * 1024;

    private readonly Mm _mm;

    public StressArea(ModelKernel kernel, Mm mm, string memType, ulong bytes)
    {
        _mm = mm;
        MemType = memType;
        Bytes = bytes;
        if (memType == "anon")
        {
            Check(mm.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var a), "mmap anon");
            Area = a;
            return;
        }
        bool huge = memType.StartsWith("hugetlb", StringComparison.Ordinal);
        Check(huge ? kernel.HugetlbfsCreate("hugetlb", (long)bytes, HugePageSize, out var f) : kernel.MemfdCreate("shmem", (long)bytes, out f),
            "memfd_create");
        File = f!;
        var flags = memType == "hugetlb-private" ? MapFlags.Private | MapFlags.NoReserve : MapFlags.Shared;
        Check(mm.Mmap(0, bytes, Prot.Read | Prot.Write, flags, File, 0, out var area), "mmap file");
        Area = area;
        if (memType != "hugetlb-private")
        {
            Check(mm.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Shared, File, 0, out var alias), "mmap alias");
            Alias = alias;
        }
    }

    public string MemType { get; }
    public ulong Bytes { get; }
    public ulong Area { get; }

    /// <summary>The MAP_SHARED alias of <see cref="Area"/>, or 0.</summary>
    public ulong Alias { get; }

    public MemFile? File { get; }

    /// <summary>Page size of the configuration.</summary>
    public static int PageSizeOf(string memType) => memType.StartsWith("hugetlb", StringComparison.Ordinal) ? HugePageSize : Folio.BasePageSize;

    /// <summary><c>uffd_test_ops-&gt;release_pages</c>: anon and hugetlb-private DONTNEED, shared memory REMOVE (hole punch).</summary>
    public void ReleasePages()
    {
        var advice = MemType is "anon" or "hugetlb-private" ? Advice.DontNeed : Advice.Remove;
        Check(_mm.Madvise(Area, Bytes, advice), "release_pages");
    }

    /// <summary><c>uffd_test_ops-&gt;alias_mapping</c>: the same offset in the alias (shared types), else the area itself.</summary>
    public ulong AliasOf(ulong address) => Alias == 0 ? address : address - Area + Alias;

    /// <summary>Unmaps both mappings and drops the file's page cache.</summary>
    public void Destroy()
    {
        _mm.Munmap(Area, Bytes);
        if (Alias != 0) _mm.Munmap(Alias, Bytes);
        File?.Release();
    }

    private static void Check(Errno e, string what)
    {
        if (e != Errno.None)
            throw new InvalidOperationException($"uffd-stress setup: {what} failed with {e}");
    }
}
