namespace PluginMm.Runtime;

/// <summary>
/// The model kernel: the memory types it knows (a generated <c>MemoryTypeRegistry.All</c>, or hand-built tables), the
/// page allocator, the shared zero page, thread ids, and the system calls that create files and address spaces.
/// </summary>
/// <remarks>
/// Usage: <c>var k = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All); var mm = k.CreateMm();
/// mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var addr);
/// var t = mm.CreateTask(); t.Write(addr, data);</c>
/// </remarks>
public sealed class ModelKernel
{
    /// <summary><c>TASK_SIZE</c> of x86-64 with 4-level paging.</summary>
    public const ulong TaskSize = 0x0000_7FFF_FFFF_F000UL;

    private const int HugetlbFaultMutexes = 64;

    private readonly IReadOnlyList<MemoryTypeOps> _registry;
    private readonly Lock[] _hugetlbFaultMutex = new Lock[HugetlbFaultMutexes];
    private int _nextTid = 1000;

    /// <summary>Creates a kernel that knows the memory types in <paramref name="registry"/>.</summary>
    public ModelKernel(IReadOnlyList<MemoryTypeOps> registry, ModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        options ??= new ModelOptions();
        _registry = registry;
        Design = options.Design;
        Allocator = options.Allocator ?? new PageAllocator();
        UnprivilegedUserfaultfd = options.UnprivilegedUserfaultfd;
        FaultAroundPages = Math.Clamp(options.FaultAroundPages, 1, PteTable.Entries);
        foreach (var t in registry)
        {
            if (t.Backing == Backing.Anonymous && AnonymousType is null)
                AnonymousType = t;
        }
        // The zero page comes from its own allocator so it never shows up in leak accounting.
        ZeroFolio = new PageAllocator().Alloc()!;
        for (int i = 0; i < _hugetlbFaultMutex.Length; i++)
            _hugetlbFaultMutex[i] = new Lock();
    }

    /// <summary>The fault-path design this kernel runs.</summary>
    public FaultPathDesign Design { get; }

    /// <summary>
    /// Benchmark-only (bench/PluginMm.Bench, issue 7, seed 003 (a)): a third design value for the fault path built with no
    /// userfault code, as with <c>CONFIG_USERFAULTFD=n</c>: <c>__do_fault</c> runs no <c>__do_userfault</c> pre-check and
    /// <c>-&gt;fault</c> gets no <see cref="FaultFlags.UffdRetval"/>, so a registered VMA never traps. Internal: nothing but
    /// the benchmarks sets it, and only on mappings that no userfaultfd registers.
    /// </summary>
    internal const FaultPathDesign NoUserfaultBenchmarkOnly = (FaultPathDesign)2;

    /// <summary>The page allocator.</summary>
    public PageAllocator Allocator { get; }

    /// <summary>The memory types this kernel knows.</summary>
    public IReadOnlyList<MemoryTypeOps> Registry => _registry;

    /// <summary>
    /// The anonymous memory type (the first with <see cref="Backing.Anonymous"/>): anonymous mappings use it, and so does
    /// UFFDIO_COPY into any private mapping (as the kernel uses the anon <c>vm_uffd_ops</c> there).
    /// </summary>
    public MemoryTypeOps? AnonymousType { get; }

    /// <summary>sysctl <c>vm.unprivileged_userfaultfd</c>.</summary>
    public bool UnprivilegedUserfaultfd { get; set; }

    /// <summary>Fault-around window in pages (1 = off).</summary>
    public int FaultAroundPages { get; }

    /// <summary>The shared zero page (<c>ZERO_PAGE(0)</c>).</summary>
    internal Folio ZeroFolio { get; }

    /// <summary>Finds a memory type by its declared name.</summary>
    public MemoryTypeOps? FindType(string name)
    {
        for (int i = 0; i < _registry.Count; i++)
            if (string.Equals(_registry[i].Name, name, StringComparison.Ordinal))
                return _registry[i];
        return null;
    }

    /// <summary>Creates an empty address space (a new process).</summary>
    public Mm CreateMm() => new(this);

    internal int NextTid() => Interlocked.Increment(ref _nextTid);

    /// <summary><c>hugetlb_fault_mutex_table[hugetlb_fault_mutex_hash(mapping, idx)]</c>.</summary>
    internal Lock HugetlbFaultMutex(Inode inode, long idx)
        => _hugetlbFaultMutex[(int)((uint)HashCode.Combine(inode.GetHashCode(), idx) % HugetlbFaultMutexes)];

    /// <summary>
    /// Models <c>memfd_create</c> (mm/memfd.c) for a page-cache memory type (shmem, ...): a file of <paramref name="size"/> bytes.
    /// EINVAL when the type is unknown or not <see cref="Backing.PageCache"/>.
    /// </summary>
    public Errno MemfdCreate(string memoryType, long size, out MemFile? file)
    {
        file = null;
        var type = FindType(memoryType);
        if (type is null || type.Backing != Backing.PageCache || size < 0)
            return Errno.EINVAL;
        file = new MemFile(this, type, new Inode(type.Name, size, Folio.BasePageSize, Allocator), MemFile.FileKind.Regular);
        return Errno.None;
    }

    /// <summary>
    /// Models <c>memfd_create(MFD_HUGETLB)</c> / a hugetlbfs file (fs/hugetlbfs/inode.c): a file whose page cache holds
    /// folios of <paramref name="hugePageSize"/> bytes. EINVAL when the type is not <see cref="Backing.HugeTlb"/> or the
    /// size is not a power of two above the base page size.
    /// </summary>
    public Errno HugetlbfsCreate(string memoryType, long size, int hugePageSize, out MemFile? file)
    {
        file = null;
        var type = FindType(memoryType);
        if (type is null || type.Backing != Backing.HugeTlb || size < 0
            || hugePageSize <= Folio.BasePageSize || (hugePageSize & (hugePageSize - 1)) != 0)
            return Errno.EINVAL;
        file = new MemFile(this, type, new Inode(type.Name, size, hugePageSize, Allocator), MemFile.FileKind.Regular);
        return Errno.None;
    }

    /// <summary>
    /// Models <c>kvm_gmem_create</c> (virt/kvm/guest_memfd.c): a guest_memfd of <paramref name="size"/> bytes with
    /// <paramref name="flags"/> (<see cref="GuestMemfdFlags"/>), backed by the memory type <paramref name="memoryType"/>.
    /// Size must be a positive multiple of the page size, flags known (EINVAL otherwise).
    /// </summary>
    public Errno GuestMemfdCreate(long size, ulong flags, out MemFile? file, string memoryType = "guest_memfd")
    {
        file = null;
        var type = FindType(memoryType);
        if (type is null || type.Backing != Backing.PageCache)
            return Errno.EINVAL;
        if (size <= 0 || (size & (Folio.BasePageSize - 1)) != 0)
            return Errno.EINVAL;
        if ((flags & ~(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared)) != 0)
            return Errno.EINVAL;
        if ((flags & GuestMemfdFlags.InitShared) != 0 && (flags & GuestMemfdFlags.Mmap) == 0)
            return Errno.EINVAL;
        file = new MemFile(this, type, new Inode(type.Name, size, Folio.BasePageSize, Allocator, flags), MemFile.FileKind.GuestMemfd);
        return Errno.None;
    }

    /// <summary>
    /// Models <c>USERFAULTFD_IOC_NEW</c> on <c>/dev/userfaultfd</c> (fs/userfaultfd.c): like the syscall but without the
    /// CAP_SYS_PTRACE / sysctl check; any other command is EINVAL.
    /// </summary>
    public Errno DevUserfaultfdIoctl(Mm mm, uint cmd, int flags, out UserfaultfdCtx? ctx)
    {
        ctx = null;
        if (cmd != PluginMm.Userfaultfd.Uapi.USERFAULTFD_IOC_NEW)
            return Errno.EINVAL;
        return UserfaultfdCtx.Create(mm, flags, checkPrivilege: false, out ctx);
    }
}
