using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests.Support;

/// <summary>
/// The five memory configurations of the kernel's uffd selftests (uffd-common.c): <c>anon</c>, <c>shmem</c>,
/// <c>shmem-private</c>, <c>hugetlb</c>, <c>hugetlb-private</c>. As in the selftests, both shmem configurations map the
/// memfd MAP_SHARED (with an alias) and "private" only clears <see cref="MapShared"/>; hugetlb-private maps MAP_PRIVATE
/// with no alias. Use <see cref="All"/> with <c>[DynamicData]</c> and <see cref="Get"/> to parameterise a test.
/// </summary>
public sealed class MemConfig
{
    /// <summary>Huge page size used for the hugetlb configurations (the default x86-64 huge page).</summary>
    public const int HugePageSize = 2 * 1024 * 1024;

    private MemConfig(string name) => Name = name;

    /// <summary>The selftest name ("anon", "shmem", ...).</summary>
    public string Name { get; }

    /// <summary>anon.</summary>
    public bool IsAnon => Name == "anon";

    /// <summary>shmem or shmem-private.</summary>
    public bool IsShmem => Name.StartsWith("shmem", StringComparison.Ordinal);

    /// <summary>hugetlb or hugetlb-private.</summary>
    public bool IsHugetlb => Name.StartsWith("hugetlb", StringComparison.Ordinal);

    /// <summary>The selftests' <c>map_shared</c>.</summary>
    public bool MapShared => Name is "shmem" or "hugetlb";

    /// <summary>The area is mapped MAP_SHARED (shmem-private too, as in uffd-common.c).</summary>
    public bool MappedShared => IsShmem || Name == "hugetlb";

    /// <summary>There is a second MAP_SHARED mapping of the same file range.</summary>
    public bool HasAlias => IsShmem || Name == "hugetlb";

    /// <summary>Page size of the area.</summary>
    public int PageSize => IsHugetlb ? HugePageSize : Folio.BasePageSize;

    /// <summary>The MISSING-support feature bit the selftests require for this type (0 for anon).</summary>
    public UffdFeatures MissingFeature => IsHugetlb ? UffdFeatures.MissingHugetlbfs : IsShmem ? UffdFeatures.MissingShmem : 0;

    /// <summary>The MINOR-support feature bit (0 for anon, which has no MINOR).</summary>
    public UffdFeatures MinorFeature => IsHugetlb ? UffdFeatures.MinorHugetlbfs : IsShmem ? UffdFeatures.MinorShmem : 0;

    /// <summary>The five configurations.</summary>
    public static readonly MemConfig[] Values =
    [
        new("anon"), new("shmem"), new("shmem-private"), new("hugetlb"), new("hugetlb-private"),
    ];

    /// <summary>By name.</summary>
    public static MemConfig Get(string name) => Array.Find(Values, v => v.Name == name)
        ?? throw new ArgumentException($"unknown memory configuration {name}", nameof(name));

    /// <summary>For <c>[DynamicData(nameof(MemConfig.All), typeof(MemConfig))]</c>: one row per configuration name.</summary>
    public static IEnumerable<object[]> All => Values.Select(v => new object[] { v.Name });

    /// <summary>Only the configurations that support MINOR (shmem and hugetlb, shared, as the selftest "minor").</summary>
    public static IEnumerable<object[]> MinorCapable => new[] { new object[] { "shmem" }, new object[] { "hugetlb" } };

    /// <summary>Display name "<c>test on mem</c>" as uffd-unit-tests prints it.</summary>
    public static string DisplayName(string test, object?[]? data) => $"{test} on {data?[0]}";

    /// <inheritdoc/>
    public override string ToString() => Name;
}
