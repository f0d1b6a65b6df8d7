namespace PluginMm.Runtime;

/// <summary>
/// An address space (<c>struct mm_struct</c>, include/linux/mm_types.h): VMAs, page tables, the mmap lock, MMU notifiers.
/// The system calls (<see cref="Mmap"/>, <see cref="Munmap"/>, <see cref="Madvise"/>, <see cref="Mremap"/>,
/// <see cref="Mprotect"/>, <see cref="Fork"/>) return the errno Linux would; tasks (<see cref="CreateTask"/>) access memory
/// through the fault path.
/// </summary>
/// <remarks>
/// One partial file per kernel concern, named after the kernel file it models: Mm.Vma.cs (mm/vma.c), Mm.Mmap.cs
/// (mm/mmap.c), Mm.Madvise.cs, Mm.Mremap.cs, Mm.Mprotect.cs, Mm.Zap.cs and Mm.Fault.cs (mm/memory.c), Mm.Filemap.cs,
/// Mm.Hugetlb.cs, Mm.Fork.cs (kernel/fork.c), Mm.Exit.cs, Mm.UffdWp.cs (mm/userfaultfd.c), Mm.Userfaultfd.cs
/// (fs/userfaultfd.c), Mm.Pagemap.cs (fs/proc/task_mmu.c), MmuNotifier.cs (mm/mmu_notifier.c); see docs/architecture.md.
/// </remarks>
public sealed partial class Mm
{
    private volatile bool _exited;

    internal Mm(ModelKernel kernel)
    {
        Kernel = kernel;
    }

    /// <summary>The kernel this mm lives in.</summary>
    public ModelKernel Kernel { get; }

    /// <summary>The VMAs (<c>mm_mt</c>). Caller holds the mmap lock.</summary>
    internal VmaSet VmaSet { get; } = new();

    /// <summary>The page tables.</summary>
    public PageTable PageTable { get; } = new();

    /// <summary><c>mmap_lock</c>: a reader-writer lock. The fault path holds it for reading; VMA changes for writing.</summary>
    public ReaderWriterLockSlim MmapLock { get; } = new(LockRecursionPolicy.NoRecursion);

    /// <summary>Whether the process has CAP_SYS_PTRACE (checked by userfaultfd(2) and EVENT_FORK). Default: true (root).</summary>
    public bool HasCapSysPtrace { get; set; } = true;

    /// <summary>The mm has exited (<c>mm_users</c> dropped to 0): <c>mmget_not_zero</c> fails.</summary>
    public bool Exited => _exited;

    /// <summary>Snapshot of the VMAs, in address order (takes the mmap read lock).</summary>
    public IReadOnlyList<Vma> Vmas
    {
        get
        {
            MmapLock.EnterReadLock();
            try { return VmaSet.ToArray(); }
            finally { MmapLock.ExitReadLock(); }
        }
    }

    /// <summary>Creates a task (a thread of this process) with its own thread id.</summary>
    public ModelTask CreateTask(string? name = null) => new(this, name);

    /// <summary>Models <c>userfaultfd(2)</c> (fs/userfaultfd.c) called by a task of this process.</summary>
    public Errno Userfaultfd(int flags, out UserfaultfdCtx? ctx) => UserfaultfdCtx.Create(this, flags, checkPrivilege: true, out ctx);

    /// <inheritdoc/>
    public override string ToString() => $"mm ({VmaSet.Count} vmas{(_exited ? ", exited" : "")})";
}
