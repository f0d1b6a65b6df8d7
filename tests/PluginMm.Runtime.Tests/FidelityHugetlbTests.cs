using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Issue 11 part 2, hugetlb: hole punch / MADV_REMOVE round inward and zero the partial huge pages
/// (fs/hugetlbfs/inode.c <c>hugetlbfs_punch_hole</c> → <c>hugetlbfs_zero_partial_page</c>), and a VMA split off a huge-page
/// boundary is EINVAL (mm/hugetlb.c <c>hugetlb_vm_op_split</c>). Found by the fuzzer: punch_outcome_hugetlb.case,
/// unregister_errno_hugetlb.case.
/// </summary>
[TestClass]
public sealed class FidelityHugetlbTests
{
    private const int Hs = MemConfig.HugePageSize;

    private static void Fill(UffdTestEnv env, ulong area, int page, byte value)
    {
        var b = new byte[Hs];
        Array.Fill(b, value);
        Assert.AreEqual(AccessResult.Ok, env.Main.Write(area + (ulong)page * Hs, b));
    }

    private static void AssertBytes(MemFile file, long offset, int length, byte expected, string what)
    {
        var b = new byte[length];
        Assert.AreEqual(Errno.None, file.Pread(offset, b));
        int bad = Array.FindIndex(b, x => x != expected);
        Assert.AreEqual(-1, bad, $"{what}: byte at file offset 0x{offset + Math.Max(bad, 0):x} is {(bad < 0 ? 0 : b[bad]):x}, expected {expected:x}");
    }

    [TestMethod(DisplayName = "hugetlb: punching an unaligned range rounds inward and zeroes the partial huge pages")]
    public void PunchUnalignedZeroesPartialPages()
    {
        using var env = new UffdTestEnv("hugetlb", nrPages: 3, openUffd: false);
        for (int i = 0; i < 3; i++) Fill(env, env.Dst, i, (byte)(0x11 * (i + 1)));
        // [0x1000, 2 huge pages + 0x3000): page 0 partly, page 1 whole, page 2 partly.
        var e = env.DstFile!.PunchHole(0x1000, 2L * Hs + 0x2000);
        Assert.AreEqual(Errno.None, e);
        AssertBytes(env.DstFile, 0, 0x1000, 0x11, "head of page 0 kept");
        AssertBytes(env.DstFile, 0x1000, Hs - 0x1000, 0, "rest of page 0 zeroed");
        AssertBytes(env.DstFile, Hs, Hs, 0, "page 1 punched");
        AssertBytes(env.DstFile, 2L * Hs, 0x3000, 0, "head of page 2 zeroed");
        AssertBytes(env.DstFile, 2L * Hs + 0x3000, Hs - 0x3000, 0x33, "tail of page 2 kept");
        Assert.AreEqual(2, env.DstFile.CachedFolios, "pages 0 and 2 stay cached, page 1 is gone");
        Assert.AreEqual(AccessResult.Ok, env.Main.ReadByte(env.Dst + 0x800, out var head));
        Assert.AreEqual((byte)0x11, head, "the mapping sees the kept head");
        Assert.AreEqual(AccessResult.Ok, env.Main.ReadByte(env.Dst + 0x1800, out var zeroed));
        Assert.AreEqual((byte)0, zeroed, "the mapping sees the zeroed part");
    }

    [TestMethod(DisplayName = "hugetlb: MADV_REMOVE of a base-page-aligned range inside a huge page zeroes it")]
    public void MadviseRemovePartialHugePage()
    {
        using var env = new UffdTestEnv("hugetlb", nrPages: 1, openUffd: false);
        Fill(env, env.Dst, 0, 0x5a);
        Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst + 0x2000, 0x1000, Advice.Remove));
        AssertBytes(env.DstFile!, 0, 0x2000, 0x5a, "before the hole");
        AssertBytes(env.DstFile!, 0x2000, 0x1000, 0, "the hole");
        AssertBytes(env.DstFile!, 0x3000, Hs - 0x3000, 0x5a, "after the hole");
        Assert.AreEqual(1, env.DstFile!.CachedFolios);
    }

    [TestMethod(DisplayName = "hugetlb: UNREGISTER of half a huge page is EINVAL and leaves the VMA registered (hugetlb_vm_op_split)")]
    [DataRow("hugetlb")]
    [DataRow("hugetlb-private")]
    public void UnregisterHalfHugePage(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2);
        env.RegisterDst(UffdModes.Missing);
        var r = env.Uffd.Unregister(env.Dst, Hs / 2);
        Assert.AreEqual(Errno.EINVAL, r.Errno, r.ToString());
        var v = env.Mm.Vmas.Single(x => x.Start <= env.Dst && env.Dst < x.End);
        Assert.AreEqual(env.Dst, v.Start);
        Assert.AreEqual(env.Dst + 2UL * Hs, v.End, "not split");
        Assert.IsTrue(v.UffdMissing, "still registered");
    }
}

/// <summary>
/// Issue 11 part 2: zapping file ranges keeps uffd-wp as a marker (mm/memory.c <c>zap_install_uffd_wp_if_needed</c>;
/// mm/hugetlb.c <c>__unmap_hugepage_range</c> "leave a uffd-wp pte marker") and, on hugetlb, clears poison markers. Fuzzer:
/// summary-before_page_uffd-wp_shmem.case, summary-before_page_uffd-wp_hugetlb.case, access_outcome_hugetlb.case.
/// </summary>
[TestClass]
public sealed class FidelityZapTests
{
    [TestMethod(DisplayName = "zap: MADV_REMOVE / hole punch of a uffd-wp protected page leaves a uffd-wp marker")]
    [DataRow("shmem", true)]
    [DataRow("shmem", false)]
    [DataRow("hugetlb", true)]
    [DataRow("hugetlb", false)]
    public void RemoveKeepsUffdWpMarker(string mem, bool viaMadvise)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: UffdFeatures.WpHugetlbfsShmem | MemConfig.Get(mem).MissingFeature);
        env.RegisterDst(UffdModes.Missing | UffdModes.Wp);
        Assert.IsTrue(env.Uffd.Copy(env.Dst, env.SrcPage(0), UffdCopyMode.Wp).Succeeded);
        Assert.AreEqual(PagemapFlags.UffdWp | PagemapFlags.Present, env.Mm.Pagemap(env.Dst) & (PagemapFlags.UffdWp | PagemapFlags.Present));
        var e = viaMadvise ? env.Mm.Madvise(env.Dst, (ulong)env.PageSize, Advice.Remove) : env.DstFile!.PunchHole(0, env.PageSize);
        Assert.AreEqual(Errno.None, e);
        // A marker is a swap-format PTE: PM_SWAP too, except in hugetlb (pte_to_pagemap_entry / pagemap_hugetlb_range).
        var marker = mem.StartsWith("hugetlb", StringComparison.Ordinal) ? PagemapFlags.UffdWp : PagemapFlags.UffdWp | PagemapFlags.Swap;
        Assert.AreEqual(marker, env.Mm.Pagemap(env.Dst), "not present, still uffd-wp (a marker)");
    }

    [TestMethod(DisplayName = "zap: a hugetlb hole punch clears a poison marker")]
    [DataRow("hugetlb")]
    [DataRow("hugetlb-private")]
    public void HugetlbPunchClearsPoison(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: UffdFeatures.Poison | UffdFeatures.MissingHugetlbfs);
        env.RegisterDst(UffdModes.Missing);
        Assert.IsTrue(env.Uffd.Poison(env.Dst, (ulong)env.PageSize, UffdPoisonMode.None).Succeeded);
        Assert.AreEqual(Errno.EEXIST, env.Uffd.Poison(env.Dst, (ulong)env.PageSize, UffdPoisonMode.None).Errno, "poisoned");
        Assert.AreEqual(Errno.None, env.DstFile!.PunchHole(0, env.PageSize));
        var again = env.Uffd.Poison(env.Dst, (ulong)env.PageSize, UffdPoisonMode.None);
        Assert.AreEqual(Errno.None, again.Errno, "the punch cleared the marker: the entry is none again");
    }
}

/// <summary>
/// Issue 11 part 2: this kernel livelocks a hugetlb write after a WP range is re-registered MINOR (the uffd-wp bits stay;
/// <c>hugetlb_wp</c> returns 0 for a uffd-wp entry and <c>hugetlb_fault</c> only resolves it in a WP-registered VMA). The
/// model does what the kernel does — the page stays protected — and reports <see cref="AccessResult.KernelLivelock"/>
/// instead of spinning; the model used to make the page writable.
/// </summary>
[TestClass]
public sealed class FidelityHugetlbLivelockTests
{
    [TestMethod(DisplayName = "hugetlb: write after WP → MINOR re-registration is the named kernel livelock, not a spin")]
    public void WpThenMinorWriteIsLivelock()
    {
        using var env = new UffdTestEnv("hugetlb", nrPages: 1, features: UffdFeatures.WpHugetlbfsShmem | UffdFeatures.MinorHugetlbfs);
        Assert.AreEqual(AccessResult.Ok, env.Main.WriteUInt64(env.Dst, 1), "populate");
        env.RegisterDst(UffdModes.Wp);
        Assert.IsTrue(env.Uffd.WriteProtect(env.Dst, env.Bytes, UffdWriteProtectMode.Wp).Succeeded);
        env.RegisterDst(UffdModes.Minor);
        Assert.AreEqual(AccessResult.KernelLivelock, env.Main.WriteUInt64(env.Dst, 2));
        Assert.AreEqual(PagemapFlags.UffdWp, env.Mm.Pagemap(env.Dst) & PagemapFlags.UffdWp, "the bit stays, as on the kernel");
        Assert.AreEqual(AccessResult.Ok, env.Main.ReadUInt64(env.Dst, out var v));
        Assert.AreEqual(1UL, v, "the write did not happen");
        Assert.IsFalse(env.Mm.MmapLock.IsReadLockHeld);
    }
}
