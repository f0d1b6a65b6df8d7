namespace PluginMm.Runtime.Tests;

/// <summary>
/// Issue 11 part 2: the fault-around window as <c>do_fault_around</c> (mm/memory.c) computes it — the start is the
/// window-aligned address clamped to the VMA and the page table, the end <c>from_pte + nr_pages</c> from that clamped start
/// (then clamped to the page table and the VMA). The model ended the window at the aligned start + window, so a VMA that
/// starts inside a window got fewer pages mapped (fuzzer: summary-after_page_present_shmem.case).
/// </summary>
[TestClass]
public sealed class FidelityFaultAroundTests
{
    [TestMethod(DisplayName = "fault-around: the window is counted from the start clamped to the VMA (do_fault_around)")]
    [DataRow(true)]
    [DataRow(false)]
    public void WindowCountedFromClampedStart(bool shared)
    {
        const int Pages = 32;
        const ulong Ps = Folio.BasePageSize;
        var k = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        var mm = k.CreateMm();
        var t = mm.CreateTask();
        // 3 anonymous pages first, so the file mappings start 3 pages into a 16-page window.
        Assert.AreEqual(Errno.None, mm.Mmap(0, 3 * Ps, Prot.Read, MapFlags.Private | MapFlags.Anonymous, null, 0, out var pad));
        Assert.AreEqual(0UL, pad & (16 * Ps - 1));
        Assert.AreEqual(Errno.None, k.MemfdCreate("shmem", Pages * (long)Ps, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, Pages * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var fill));
        for (int i = 0; i < Pages; i++)
            Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(fill + (ulong)i * Ps, (ulong)i + 1));
        Assert.AreEqual(Errno.None, mm.Mmap(0, Pages * Ps, Prot.Read | Prot.Write, shared ? MapFlags.Shared : MapFlags.Private, f, 0, out var m));
        Assert.AreEqual(3UL * Ps, m & (16 * Ps - 1), "the mapping starts 3 pages into a window");
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(m + 2 * Ps, out var v));
        Assert.AreEqual(3UL, v);
        // Kernel: from = VMA start (pte 35), to = from + 16: VMA pages 0..15 are mapped, page 16 is not.
        for (int i = 0; i < 16; i++)
            Assert.AreEqual(PagemapFlags.Present, mm.Pagemap(m + (ulong)i * Ps) & PagemapFlags.Present, $"page {i} mapped by fault-around");
        Assert.AreEqual(PagemapFlags.None, mm.Pagemap(m + 16 * Ps) & PagemapFlags.Present, "page 16 is beyond the window");
    }
}
