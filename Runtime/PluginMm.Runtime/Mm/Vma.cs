namespace PluginMm.Runtime;

/// <summary>
/// A virtual memory area (<c>struct vm_area_struct</c>). Bounds, flags and the userfaultfd context change only under
/// the owning mm's mmap write lock (and, for file VMAs, the file's <c>i_mmap</c> lock); the fault path reads them
/// under the mmap read lock.
/// </summary>
public sealed class Vma
{
    internal Vma(Mm mm, ulong start, ulong end, VmFlags flags, long pgoff, MemFile? file, MemoryTypeOps type, int pageShift)
    {
        Mm = mm;
        Start = start;
        End = end;
        Flags = flags;
        PgOff = pgoff;
        File = file;
        Type = type;
        PageShift = pageShift;
    }

    /// <summary>The owning address space (<c>vm_mm</c>).</summary>
    public Mm Mm { get; }

    /// <summary><c>vm_start</c>.</summary>
    public ulong Start { get; internal set; }

    /// <summary><c>vm_end</c> (exclusive).</summary>
    public ulong End { get; internal set; }

    /// <summary><c>vm_flags</c>.</summary>
    public VmFlags Flags { get; internal set; }

    /// <summary><c>vm_pgoff</c> in base pages (for anonymous VMAs: <c>vm_start &gt;&gt; PAGE_SHIFT</c> at creation).</summary>
    public long PgOff { get; internal set; }

    /// <summary><c>vm_file</c>, or null for anonymous memory.</summary>
    public MemFile? File { get; }

    /// <summary>The memory type whose tables serve this VMA (<c>vm_ops</c> and <c>vm_ops-&gt;uffd_ops</c>).</summary>
    public MemoryTypeOps Type { get; }

    /// <summary>log2 of the page size (<c>huge_page_shift</c> for hugetlb, else 12).</summary>
    public int PageShift { get; }

    /// <summary>Page size in bytes.</summary>
    public int PageSize => 1 << PageShift;

    /// <summary><c>vm_userfaultfd_ctx.ctx</c>.</summary>
    public UserfaultfdCtx? UffdCtx { get; internal set; }

    /// <summary><c>vma_is_anonymous</c>.</summary>
    public bool IsAnonymous => File is null;

    /// <summary><c>is_vm_hugetlb_page</c>.</summary>
    public bool IsHugetlb => (Flags & VmFlags.HugeTlb) != 0;

    /// <summary><c>VM_SHARED</c>.</summary>
    public bool IsShared => (Flags & VmFlags.Shared) != 0;

    /// <summary><c>userfaultfd_missing</c>.</summary>
    public bool UffdMissing => (Flags & VmFlags.UffdMissing) != 0;

    /// <summary><c>userfaultfd_minor</c>.</summary>
    public bool UffdMinor => (Flags & VmFlags.UffdMinor) != 0;

    /// <summary><c>userfaultfd_wp</c>.</summary>
    public bool UffdWp => (Flags & VmFlags.UffdWp) != 0;

    /// <summary><c>userfaultfd_armed</c>.</summary>
    public bool UffdArmed => (Flags & VmFlags.UffdFlags) != 0;

    /// <summary>What hooks see of this VMA (built on the stack; no allocation).</summary>
    public VmaView View => new(Start, End, Flags, PgOff, File?.Inode, PageShift, Mm.Kernel.Allocator);

    /// <summary><c>linear_page_index</c> in the file's page units.</summary>
    public long PageIndex(ulong address)
        => VmaView.LinearPageIndex(Start, PgOff, File?.Inode.PageShift ?? Folio.BasePageShift, address);

    /// <summary>Whether [<paramref name="start"/>, <paramref name="end"/>) intersects this VMA.</summary>
    public bool Intersects(ulong start, ulong end) => start < End && end > Start;

    internal Vma CloneFor(Mm mm, ulong start, ulong end, long pgoff)
        => new(mm, start, end, Flags, pgoff, File, Type, PageShift) { UffdCtx = UffdCtx };

    /// <inheritdoc/>
    public override string ToString()
        => $"[0x{Start:x}-0x{End:x}) {Type.Name} {Flags}{(UffdCtx is null ? "" : " uffd")}";
}
