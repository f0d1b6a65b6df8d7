using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;
using static PluginMm.Hmm.Tests.HmmFixture;

namespace PluginMm.Hmm.Tests;

/// <summary>The walk rules of <c>hmm_range_fault</c> (mm/hmm.c), driven directly through an <see cref="HmmRange"/>.</summary>
[TestClass]
public sealed class HmmRangeFaultTests
{
    private sealed class Process : IDisposable
    {
        public Process(int pages)
        {
            var kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
            Mm = kernel.CreateMm();
            Task = Mm.CreateTask();
            Assert.AreEqual(Errno.None, IntervalNotifier.Insert(Mm, 0, ulong.MaxValue & ~(ulong)(PageSize - 1), RecordingNotifier.Ops, new Recorder(), out var sub));
            Notifier = sub!;
            Range = new HmmRange(pages) { Notifier = sub };
        }

        public Mm Mm { get; }
        public ModelTask Task { get; }
        public IntervalNotifier Notifier { get; }
        public HmmRange Range { get; }

        /// <summary>read_begin, mmap_read_lock, hmm_range_fault, mmap_read_unlock.</summary>
        public Errno Fault(ulong start, int pages, ulong defaultFlags, ulong mask = 0, HmmFaultVariant variant = HmmFaultVariant.Mainline)
        {
            Range.Start = start;
            Range.End = start + (ulong)pages * PageSize;
            Range.DefaultFlags = defaultFlags;
            Range.PfnFlagsMask = mask;
            Range.NotifierSeq = Notifier.ReadBegin();
            Mm.MmapLock.EnterReadLock();
            try { return HmmFaults.HmmRangeFault(Range, Task, variant); }
            finally { Mm.MmapLock.ExitReadLock(); }
        }

        /// <summary>As a driver does: retry while -EBUSY (bounded), keeping the per-page requests.</summary>
        public Errno FaultRetrying(ulong start, int pages, ulong defaultFlags, ulong mask)
        {
            var saved = Range.HmmPfns.ToArray();
            for (int attempt = 0; attempt < 100; attempt++)
            {
                saved.CopyTo(Range.HmmPfns, 0);
                var e = Fault(start, pages, defaultFlags, mask);
                if (e != Errno.EBUSY)
                    return e;
            }
            return Errno.EBUSY;
        }

        public ulong Flags(int i) => Range.HmmPfns[i] & HmmPfn.Flags;

        public void Dispose()
        {
            Notifier.Remove();
            Mm.Exit();
        }
    }

    [TestMethod(DisplayName = "hmm_range_fault: no request flags = a snapshot (none → 0, zero page → VALID, data → VALID|WRITE), nothing faulted")]
    public void SnapshotWithoutRequest()
    {
        using var p = new Process(4);
        Assert.AreEqual(Errno.None, p.Mm.Mmap(0, 4 * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong a));
        CpuRead(p.Task, a + PageSize, 1);           // zero page
        CpuWrite(p.Task, a + 2 * PageSize, new byte[] { 1 }); // private data
        Assert.AreEqual(Errno.None, p.Fault(a, 4, 0));
        Assert.AreEqual(0UL, p.Flags(0));
        Assert.AreEqual(HmmPfn.Valid, p.Flags(1));
        Assert.IsTrue(p.Range.IsZeroPfn(1));
        Assert.AreEqual(HmmPfn.Valid | HmmPfn.Write, p.Flags(2));
        Assert.AreEqual(0UL, p.Flags(3));
        Assert.AreEqual(0L, p.Range.Faults);
    }

    [TestMethod(DisplayName = "hmm_range_fault: per-page requests through pfn_flags_mask; hmm_vma_fault faults from the first needy page to the table's end")]
    public void PerPageRequests()
    {
        using var p = new Process(4);
        Assert.AreEqual(Errno.None, p.Mm.Mmap(0, 4 * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong a));
        CpuRead(p.Task, a + 3 * PageSize, 1); // a page table exists: the walk goes pte by pte
        p.Range.HmmPfns[0] = 0;
        p.Range.HmmPfns[1] = HmmPfn.ReqFault;
        p.Range.HmmPfns[2] = HmmPfn.ReqFault | HmmPfn.ReqWrite;
        p.Range.HmmPfns[3] = 0;
        // The write fault copies the zero page, which invalidates the range: -EBUSY, then the retry succeeds.
        Assert.AreEqual(Errno.None, p.FaultRetrying(a, 4, 0, HmmPfn.ReqFault | HmmPfn.ReqWrite));
        Assert.AreEqual(0UL, p.Flags(0), "no request, pte_none: reported 0");
        Assert.IsTrue(p.Mm.PageTable.Get(a).IsNone, "and never faulted");
        Assert.AreEqual(HmmPfn.Valid, p.Flags(1), "read request: the zero page");
        Assert.AreEqual(HmmPfn.Valid | HmmPfn.Write, p.Flags(2));
        // hmm_vma_fault(addr, end) faults every page from the first that needs it to the end of the walk step, with the
        // strongest request seen: page 3 was write-faulted along with page 2 and is reported as the CPU now maps it.
        Assert.AreEqual(HmmPfn.Valid | HmmPfn.Write, p.Flags(3));

        // With the same requests but default_flags masked out (pfn_flags_mask 0), nothing is requested at all.
        p.Range.HmmPfns[0] = HmmPfn.ReqFault;
        Assert.AreEqual(Errno.None, p.Fault(a, 4, 0, mask: 0));
        Assert.AreEqual(0UL, p.Flags(0));
    }

    [TestMethod(DisplayName = "hmm_range_fault: holes and inaccessible VMAs are ERROR, or -EFAULT when requested; write to !VM_WRITE is -EPERM")]
    public void ErrorsAndHoles()
    {
        using var p = new Process(3);
        Assert.AreEqual(Errno.None, p.Mm.Mmap(0, 3 * PageSize, Prot.Read, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong a));
        Assert.AreEqual(Errno.None, p.Mm.Munmap(a + PageSize, PageSize));
        Assert.AreEqual(Errno.None, p.Mm.Mprotect(a + 2 * PageSize, PageSize, Prot.None));
        Assert.AreEqual(Errno.None, p.Fault(a, 3, 0));
        Assert.AreEqual(0UL, p.Flags(0));
        Assert.AreEqual(HmmPfn.Error, p.Flags(1), "hole");
        Assert.AreEqual(HmmPfn.Error, p.Flags(2), "no VM_READ");

        Assert.AreEqual(Errno.EFAULT, p.Fault(a + PageSize, 1, HmmPfn.ReqFault), "requested page in a hole");
        Assert.AreEqual(Errno.EFAULT, p.Fault(a + 2 * PageSize, 1, HmmPfn.ReqFault), "requested page without VM_READ");
        Assert.AreEqual(Errno.EPERM, p.Fault(a, 1, HmmPfn.ReqFault | HmmPfn.ReqWrite), "write request on a read-only VMA");
        Assert.AreEqual(Errno.None, p.Fault(a, 1, HmmPfn.ReqFault));
        Assert.AreEqual(HmmPfn.Valid, p.Flags(0));
    }

    [TestMethod(DisplayName = "hmm_range_fault: a write request on a read-only PTE faults it writable (CoW after fork raises -EBUSY first)")]
    public void WriteUpgrade()
    {
        using var p = new Process(1);
        Assert.AreEqual(Errno.None, p.Mm.Mmap(0, PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong a));
        CpuWrite(p.Task, a, new byte[] { 9 });
        var child = p.Mm.Fork(); // both PTEs now read-only, the folio shared
        Assert.AreEqual(Errno.EBUSY, p.Fault(a, 1, HmmPfn.ReqFault | HmmPfn.ReqWrite), "the CoW invalidated the range being faulted");
        Assert.AreEqual(Errno.None, p.Fault(a, 1, HmmPfn.ReqFault | HmmPfn.ReqWrite));
        Assert.AreEqual(HmmPfn.Valid | HmmPfn.Write, p.Flags(0));
        Assert.AreEqual(9, p.Range.Pages[0]!.Data[0]);
        Assert.AreEqual(9, CpuRead(child.CreateTask(), a, 1)[0], "the child keeps the old copy");
        child.Exit();
    }

    [TestMethod(DisplayName = "hmm_range_fault: a hugetlb entry reports VALID|WRITE with map order 9 for every subpage")]
    public void HugetlbOrder()
    {
        const int huge = 2 << 20;
        using var p = new Process(huge / PageSize);
        var kernel = p.Mm.Kernel;
        Assert.AreEqual(Errno.None, kernel.HugetlbfsCreate("hugetlb", huge, huge, out var file));
        Assert.AreEqual(Errno.None, p.Mm.Mmap(0, huge, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out ulong a));
        Assert.AreEqual(Errno.None, p.Fault(a, huge / PageSize, HmmPfn.ReqFault | HmmPfn.ReqWrite));
        for (int i = 0; i < huge / PageSize; i++)
        {
            Assert.AreEqual(9, HmmPfn.ToMapOrder(p.Range.HmmPfns[i]));
            Assert.AreEqual((long)i, HmmPfn.ToSubpage(p.Range.HmmPfns[i]));
            Assert.AreSame(p.Range.Pages[0], p.Range.Pages[i]);
        }
        Assert.AreEqual(HmmPfn.Valid | HmmPfn.Write | HmmPfn.FlagsOrder(9), p.Flags(0));
    }

    [TestMethod(DisplayName = "hmm_range_fault: malformed ranges are EINVAL")]
    public void Malformed()
    {
        using var p = new Process(2);
        Assert.AreEqual(Errno.EINVAL, p.Fault(0x10001, 1, 0), "unaligned");
        Assert.AreEqual(Errno.EINVAL, p.Fault(0x10000, 3, 0), "more pages than hmm_pfns holds");
        Assert.AreEqual(Errno.EINVAL, p.Fault(0x10000, 0, 0), "empty");
    }
}
