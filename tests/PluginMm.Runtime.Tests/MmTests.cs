using PluginMm.Hmm;
using PluginMm.Backends;
using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>The address-space model: mmap, munmap, madvise, mremap, fork, private file mappings, scale.</summary>
[TestClass]
public sealed class MmTests
{
    private const int Ps = Folio.BasePageSize;

    private static (ModelKernel K, Mm Mm, ModelTask T) New(PageAllocator? alloc = null)
    {
        var k = new ModelKernel(MemoryTypeRegistry.All, new ModelOptions { Allocator = alloc });
        var mm = k.CreateMm();
        return (k, mm, mm.CreateTask());
    }

    [TestMethod(DisplayName = "mm: anonymous memory reads zero, keeps writes, and SIGSEGVs outside VMAs and permissions")]
    public void AnonymousBasics()
    {
        var (k, mm, t) = New();
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var a));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(a + Ps, out var v));
        Assert.AreEqual(0UL, v);
        Assert.IsTrue(mm.PageTable.Get(a + Ps).IsZeroPage, "a read fault maps the zero page");
        Assert.AreEqual(0, k.Allocator.LivePages);
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(a + Ps, 0xabc));
        Assert.AreEqual(1, k.Allocator.LivePages, "the write replaced the zero page by a folio");
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(a + Ps, out v));
        Assert.AreEqual(0xabcUL, v);
        // A write across a page boundary.
        var buf = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
        Assert.AreEqual(AccessResult.Ok, t.Write(a + 2 * Ps - 8, buf));
        var back = new byte[16];
        Assert.AreEqual(AccessResult.Ok, t.Read(a + 2 * Ps - 8, back));
        CollectionAssert.AreEqual(buf, back);
        Assert.AreEqual(AccessResult.SigSegv, t.ReadUInt64(a + 4 * Ps, out _), "past the VMA");
        Assert.AreEqual(Errno.None, mm.Mmap(0, Ps, Prot.Read, MapFlags.Private | MapFlags.Anonymous, null, 0, out var ro));
        Assert.AreEqual(AccessResult.SigSegv, t.WriteUInt64(ro, 1), "write to PROT_READ");
        Assert.AreEqual(Errno.None, mm.Mmap(0, Ps, Prot.None, MapFlags.Private | MapFlags.Anonymous, null, 0, out var none));
        Assert.AreEqual(AccessResult.SigSegv, t.ReadUInt64(none, out _), "read of PROT_NONE");
        Assert.AreEqual(Errno.EINVAL, mm.Mmap(0, 0, Prot.Read, MapFlags.Private | MapFlags.Anonymous, null, 0, out _));
        Assert.AreEqual(Errno.EINVAL, mm.Mmap(0, Ps, Prot.Read, MapFlags.Shared | MapFlags.Private | MapFlags.Anonymous, null, 0, out _));
        Assert.AreEqual(Errno.EINVAL, mm.Mmap(a + 1, Ps, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _));
    }

    [TestMethod(DisplayName = "mm: munmap splits VMAs, frees folios, and later accesses SIGSEGV")]
    public void Munmap()
    {
        var alloc = new PageAllocator();
        var (_, mm, t) = New(alloc);
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var a));
        for (int i = 0; i < 4; i++) Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(a + (ulong)(i * Ps), (ulong)i + 1));
        Assert.AreEqual(4, alloc.LivePages);
        Assert.AreEqual(Errno.None, mm.Munmap(a + Ps, 2 * Ps));
        Assert.AreEqual(2, mm.Vmas.Count);
        Assert.AreEqual(2, alloc.LivePages);
        Assert.AreEqual(AccessResult.SigSegv, t.ReadUInt64(a + Ps, out _));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(a + 3 * Ps, out var v));
        Assert.AreEqual(4UL, v);
        Assert.AreEqual(Errno.EINVAL, mm.Munmap(a + 1, Ps));
        Assert.AreEqual(Errno.EINVAL, mm.Munmap(a, 0));
        mm.Exit();
        Assert.AreEqual(0, alloc.LivePages);
    }

    [TestMethod(DisplayName = "mm: MADV_DONTNEED and MADV_REMOVE on anonymous, shmem and aliases")]
    public void Madvise()
    {
        var (k, mm, t) = New();
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Ps, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var anon));
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(anon, 7));
        Assert.AreEqual(Errno.None, mm.Madvise(anon, Ps, Advice.DontNeed));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(anon, out var v));
        Assert.AreEqual(0UL, v, "anonymous memory reads back as zero after DONTNEED");
        Assert.AreEqual(Errno.EINVAL, mm.Madvise(anon, Ps, Advice.Remove), "REMOVE needs a file");

        Assert.AreEqual(Errno.None, k.MemfdCreate("shmem", 2 * Ps, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var s1));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var s2));
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(s1, 11));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(s2, out v));
        Assert.AreEqual(11UL, v, "two mappings of one file alias");
        Assert.AreEqual(Errno.None, mm.Madvise(s1, Ps, Advice.DontNeed));
        Assert.IsTrue(mm.PageTable.Get(s1).IsNone);
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(s1, out v));
        Assert.AreEqual(11UL, v, "shmem refaults from the page cache after DONTNEED");
        Assert.AreEqual(Errno.None, mm.Madvise(s1, Ps, Advice.Remove));
        Assert.AreEqual(0, f!.CachedFolios, "REMOVE punched the page cache");
        Assert.IsTrue(mm.PageTable.Get(s2).IsNone, "and unmapped it from the alias");
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(s2, out v));
        Assert.AreEqual(0UL, v);
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Ps, Prot.Read | Prot.Write, MapFlags.Private, f, 0, out var priv));
        Assert.AreEqual(Errno.EACCES, mm.Madvise(priv, Ps, Advice.Remove), "REMOVE on a private mapping");
        Assert.AreEqual(Errno.ENOMEM, mm.Madvise(0x10000, Ps, Advice.DontNeed), "unmapped range");
    }

    [TestMethod(DisplayName = "mm: MAP_PRIVATE of shmem is copy-on-write; COPY into it uses the anonymous type")]
    public void PrivateShmem()
    {
        var (k, mm, t) = New();
        Assert.AreEqual(Errno.None, k.MemfdCreate("shmem", 4 * Ps, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var shared));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read | Prot.Write, MapFlags.Private, f, 0, out var priv));
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(shared, 1));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(priv, out var v));
        Assert.AreEqual(1UL, v, "a private mapping reads the file");
        Assert.IsFalse(mm.PageTable.Get(priv).IsWritable, "page-cache pages are mapped read-only in a private mapping");
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(priv, 2));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(shared, out v));
        Assert.AreEqual(1UL, v, "the private write did not reach the file");
        Assert.IsNull(mm.PageTable.Get(priv).Folio!.Mapping, "the private copy is anonymous");

        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        using (u)
        {
            Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
            Assert.IsTrue(u.Register(priv, 4 * Ps, UffdModes.Missing, out _).Succeeded);
            int cached = f!.CachedFolios;
            var r = u.Copy(priv + 2 * Ps, Enumerable.Repeat((byte)0x5a, Ps).ToArray(), UffdCopyMode.None);
            Assert.IsTrue(r.Succeeded, r.ToString());
            Assert.AreEqual(cached, f.CachedFolios, "COPY into a private mapping does not touch the page cache");
            Assert.IsNull(mm.PageTable.Get(priv + 2 * Ps).Folio!.Mapping);
            Assert.IsTrue(mm.PageTable.Get(priv + 2 * Ps).IsWritable);
            Assert.IsTrue(u.ZeroPage(priv + 3 * Ps, Ps, UffdZeroPageMode.None).Succeeded);
            Assert.IsTrue(mm.PageTable.Get(priv + 3 * Ps).IsZeroPage, "ZEROPAGE into a private mapping maps the zero page");
        }
    }

    [TestMethod(DisplayName = "mm: fork shares pages copy-on-write and drops uffd registration without EVENT_FORK")]
    public void Fork()
    {
        var alloc = new PageAllocator();
        var (_, mm, t) = New(alloc);
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Ps, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var a));
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(a, 100));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        Assert.IsTrue(u.Register(a, 2 * Ps, UffdModes.Missing, out _).Succeeded);
        var child = mm.Fork();
        var ct = child.CreateTask("child");
        Assert.IsTrue(child.Vmas.All(v => !v.UffdArmed && v.UffdCtx is null), "child VMAs are unregistered");
        Assert.AreEqual(1, alloc.LivePages, "the page is shared");
        Assert.AreEqual(AccessResult.Ok, ct.ReadUInt64(a, out var v));
        Assert.AreEqual(100UL, v);
        Assert.AreEqual(AccessResult.Ok, ct.WriteUInt64(a, 200));
        Assert.AreEqual(2, alloc.LivePages, "the child's write copied");
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(a, out v));
        Assert.AreEqual(100UL, v, "the parent is unchanged");
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(a, 300));
        Assert.AreEqual(2, alloc.LivePages, "the parent reuses its now exclusive page");
        Assert.AreEqual(AccessResult.Ok, ct.ReadUInt64(a + Ps, out v), "the child's unregistered empty page zero-fills");
        Assert.AreEqual(0UL, v);
        child.Exit();
        u.Dispose();
        mm.Exit();
        Assert.AreEqual(0, alloc.LivePages);
    }

    [TestMethod(DisplayName = "mm: mremap moves pages, shrinks, grows in place, and unregisters the moved VMA")]
    public void Mremap()
    {
        var (_, mm, t) = New();
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var a));
        for (int i = 0; i < 4; i++) Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(a + (ulong)(i * Ps), (ulong)i + 10));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        Assert.IsTrue(u.Register(a, 4 * Ps, UffdModes.Missing, out _).Succeeded);
        Assert.AreEqual(Errno.None, mm.Mmap(0, Ps, Prot.Read, MapFlags.Private | MapFlags.Anonymous, null, 0, out var blocker));
        Assert.AreEqual(Errno.ENOMEM, mm.Mremap(a, 4 * Ps, 8 * Ps, MremapFlags.None, 0, out _), "cannot grow in place without MAYMOVE");
        Assert.AreEqual(Errno.None, mm.Mremap(a, 4 * Ps, 8 * Ps, MremapFlags.MayMove, 0, out var moved));
        Assert.AreNotEqual(a, moved);
        Assert.AreEqual(AccessResult.SigSegv, t.ReadUInt64(a, out _), "the old range is gone");
        for (int i = 0; i < 4; i++)
        {
            Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(moved + (ulong)(i * Ps), out var v));
            Assert.AreEqual((ulong)i + 10, v);
        }
        var mv = mm.Vmas.First(v => v.Start == moved);
        Assert.IsFalse(mv.UffdArmed, "without EVENT_REMAP the moved VMA is unregistered");
        Assert.AreEqual(Errno.None, mm.Mremap(moved, 8 * Ps, 2 * Ps, MremapFlags.None, 0, out var shrunk));
        Assert.AreEqual(moved, shrunk);
        Assert.AreEqual(AccessResult.SigSegv, t.ReadUInt64(moved + 3 * Ps, out _));
        Assert.AreEqual(Errno.None, mm.Mremap(moved, 2 * Ps, 3 * Ps, MremapFlags.None, 0, out var grown));
        Assert.AreEqual(moved, grown, "grew in place into the free gap");
        Assert.AreEqual(Errno.EFAULT, mm.Mremap(0x20000, Ps, Ps, MremapFlags.None, 0, out _));
        Assert.AreEqual(Errno.EINVAL, mm.Mremap(moved, Ps, 2 * Ps, MremapFlags.Fixed, 0, out _), "FIXED needs MAYMOVE");
        _ = blocker;
        u.Dispose();
    }

    [TestMethod(DisplayName = "mm: hugetlb maps at huge-page granularity and aliases share the huge folio")]
    public void Hugetlb()
    {
        var (k, mm, t) = New();
        const int H = MemConfig.HugePageSize;
        Assert.AreEqual(Errno.None, k.HugetlbfsCreate("hugetlb", 2 * H, H, out var f));
        Assert.AreEqual(Errno.EINVAL, mm.Mmap(0, H + Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out _), "length not a huge multiple");
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * H, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var a));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * H, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var b));
        Assert.AreEqual(0UL, a % H);
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(a + H + 12345 * 8, 77));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(b + H + 12345 * 8, out var v));
        Assert.AreEqual(77UL, v);
        Assert.AreEqual(H / Ps, k.Allocator.LivePages, "one huge folio");
        Assert.IsTrue((mm.PageTable.Get(a + H).Flags & PteFlags.Huge) != 0);
        Assert.AreEqual(Errno.EINVAL, mm.Munmap(a + Ps, H), "hugetlb munmap off huge boundaries");
    }

    [TestMethod(DisplayName = "mm: page tables scale to millions of pages")]
    public void MillionsOfPages()
    {
        var alloc = new PageAllocator();
        var (_, mm, t) = New(alloc);
        const ulong pages = 1UL << 22; // 16 GiB of address space
        Assert.AreEqual(Errno.None, mm.Mmap(0, pages * Ps, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var a));
        for (ulong p = 0; p < pages; p += 4096)
            Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(a + p * Ps, p));
        Assert.AreEqual((long)(pages / 4096), alloc.LivePages);
        Assert.AreEqual((int)(pages / 4096), mm.PageTable.TableCount, "only touched 2 MiB regions have page tables");
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(a + (pages - 4096) * Ps, out var v));
        Assert.AreEqual(pages - 4096, v);
        Assert.AreEqual(Errno.None, mm.Munmap(a, pages * Ps));
        Assert.AreEqual(0, alloc.LivePages);
    }

    [TestMethod(DisplayName = "mm: MMU notifiers see munmap, zap and CoW invalidations")]
    public void Notifiers()
    {
        var (_, mm, t) = New();
        var seen = new List<MmuNotifierRange>();
        mm.RegisterMmuNotifier(new Recorder(seen));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Ps, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var a));
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(a, out _));
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(a, 1)); // CoW from the zero page
        Assert.AreEqual(Errno.None, mm.Madvise(a, Ps, Advice.DontNeed));
        Assert.AreEqual(Errno.None, mm.Munmap(a, 2 * Ps));
        CollectionAssert.AreEqual(new[] { MmuNotifyEvent.Clear, MmuNotifyEvent.Clear, MmuNotifyEvent.Unmap },
            seen.Select(r => r.Event).ToArray());
        Assert.AreEqual(a, seen[^1].Start);
        Assert.AreEqual(a + 2 * Ps, seen[^1].End);
    }

    private sealed class Recorder(List<MmuNotifierRange> seen) : IMmuNotifier
    {
        public void InvalidateRangeStart(in MmuNotifierRange range) => seen.Add(range);
        public void InvalidateRangeEnd(in MmuNotifierRange range) { }
        public void Release(Mm mm) { }
    }
}
