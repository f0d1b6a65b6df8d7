namespace PluginMm;

/// <summary>
/// What a hook sees of a VMA (<c>struct vm_area_struct</c>): a read-only snapshot, passed by <c>in</c> reference so the
/// fault path allocates nothing.
/// </summary>
public readonly struct VmaView
{
    /// <summary>Creates a view.</summary>
    public VmaView(ulong start, ulong end, VmFlags flags, long pgoff, Inode? file, int pageShift, PageAllocator allocator, object? owner = null)
    {
        Owner = owner;
        Start = start;
        End = end;
        Flags = flags;
        PgOff = pgoff;
        File = file;
        PageShift = pageShift;
        Allocator = allocator;
    }

    /// <summary><c>vm_start</c>.</summary>
    public ulong Start { get; }

    /// <summary><c>vm_end</c> (exclusive).</summary>
    public ulong End { get; }

    /// <summary><c>vm_flags</c>.</summary>
    public VmFlags Flags { get; }

    /// <summary><c>vm_pgoff</c>: offset into <see cref="File"/> in base (4 KiB) pages.</summary>
    public long PgOff { get; }

    /// <summary><c>vm_file</c>'s inode, or null for anonymous memory.</summary>
    public Inode? File { get; }

    /// <summary>log2 of the VMA's page size: 12, or the huge page shift for hugetlb (<c>huge_page_shift(hstate_vma)</c>).</summary>
    public int PageShift { get; }

    /// <summary>The VMA's page size in bytes (<c>vma_kernel_pagesize</c>).</summary>
    public int PageSize => 1 << PageShift;

    /// <summary>
    /// The runtime's VMA this view shows (set where a hook calls back into the kernel model, as <c>migrate_to_ram</c>
    /// does with <c>vmf-&gt;vma</c>), or null.
    /// </summary>
    public object? Owner { get; }

    /// <summary>The allocator this mm's folios come from.</summary>
    public PageAllocator Allocator { get; }

    /// <summary><c>VM_SHARED</c> is set.</summary>
    public bool IsShared => (Flags & VmFlags.Shared) != 0;

    /// <summary><c>vma_is_anonymous</c>: no file behind it.</summary>
    public bool IsAnonymous => File is null;

    /// <summary><c>userfaultfd_missing</c>.</summary>
    public bool UffdMissing => (Flags & VmFlags.UffdMissing) != 0;

    /// <summary><c>userfaultfd_wp</c>.</summary>
    public bool UffdWp => (Flags & VmFlags.UffdWp) != 0;

    /// <summary><c>userfaultfd_minor</c>.</summary>
    public bool UffdMinor => (Flags & VmFlags.UffdMinor) != 0;

    /// <summary><c>userfaultfd_armed</c>: any uffd registration bit.</summary>
    public bool UffdArmed => (Flags & VmFlags.UffdFlags) != 0;

    /// <summary>
    /// <c>linear_page_index</c>: the page-cache index of <paramref name="address"/>, in units of the file's page size
    /// (huge pages for hugetlbfs).
    /// </summary>
    public long PageIndex(ulong address) => LinearPageIndex(Start, PgOff, File?.PageShift ?? Folio.BasePageShift, address);

    /// <summary>
    /// <c>linear_page_index</c> for a VMA starting at <paramref name="vmStart"/> with <c>vm_pgoff</c> <paramref name="pgoff"/>
    /// (base pages) over a file whose page-cache entries are 2^<paramref name="fileShift"/> bytes.
    /// </summary>
    public static long LinearPageIndex(ulong vmStart, long pgoff, int fileShift, ulong address)
    {
        long basePages = (long)((address - vmStart) >> Folio.BasePageShift) + pgoff;
        return basePages >> (fileShift - Folio.BasePageShift);
    }
}

/// <summary>
/// A fault being handled (<c>struct vm_fault</c>): what <c>vm_ops-&gt;fault</c> receives by <c>ref</c>, and where it puts the folio.
/// </summary>
public struct VmFault
{
    /// <summary>Creates a fault descriptor.</summary>
    public VmFault(in VmaView vma, ulong address, ulong realAddress, long pgoff, FaultFlags flags)
    {
        Vma = vma;
        Address = address;
        RealAddress = realAddress;
        PgOff = pgoff;
        Flags = flags;
        Folio = null;
    }

    /// <summary>The faulting VMA.</summary>
    public VmaView Vma { get; }

    /// <summary>Faulting address, aligned down to the VMA's page size.</summary>
    public ulong Address { get; }

    /// <summary>The exact faulting address (<c>vmf-&gt;real_address</c>).</summary>
    public ulong RealAddress { get; }

    /// <summary>Page-cache index of the fault (<c>vmf-&gt;pgoff</c>), in the file's page units.</summary>
    public long PgOff { get; }

    /// <summary>Fault flags.</summary>
    public FaultFlags Flags { get; }

    /// <summary>Whether the access is a write.</summary>
    public readonly bool IsWrite => (Flags & FaultFlags.Write) != 0;

    /// <summary>
    /// Model switch, not part of the backend contract: the runtime runs seed 001's RFC design, where <c>-&gt;fault</c> reports
    /// userfaults (<see cref="UserfaultRetval"/>). Set by the runtime only; false for any fault a backend or test builds.
    /// </summary>
    internal bool UffdRetvalDesign { get; init; }

    /// <summary>Out: the folio that backs the page, with a reference the caller now owns (<c>vmf-&gt;page</c>).</summary>
    public Folio? Folio { get; set; }

    /// <summary>
    /// The RFC design's userfault report (seed 001): when the runtime runs that design (it says so in
    /// <see cref="UffdRetvalDesign"/>, which only the runtime sets),
    /// returns <see cref="VmFaultResult.UffdMinor"/> if the folio is cached and the VMA is MINOR-registered,
    /// <see cref="VmFaultResult.UffdMissing"/> if it is absent and the VMA is MISSING-registered, and
    /// <see cref="VmFaultResult.None"/> otherwise. Always <see cref="VmFaultResult.None"/> in the default pre-check design,
    /// where the runtime's <c>__do_userfault</c> has already decided before <c>-&gt;fault</c> runs.
    /// </summary>
    public readonly VmFaultResult UserfaultRetval(bool folioCached)
    {
        if (!UffdRetvalDesign)
            return VmFaultResult.None;
        if (folioCached)
            return Vma.UffdMinor ? VmFaultResult.UffdMinor : VmFaultResult.None;
        return Vma.UffdMissing ? VmFaultResult.UffdMissing : VmFaultResult.None;
    }
}
