namespace PluginMm;

/// <summary>
/// A memory type's <c>struct vm_uffd_ops</c>: function pointers to the backend's static hooks, <c>null</c> where the
/// backend has no such hook (as the kernel installs NULL). The generator fills it; it can also be built by hand,
/// in which case the runtime applies the kernel's run-time checks at UFFDIO_REGISTER.
/// </summary>
public readonly unsafe struct VmUffdOps
{
    /// <summary>Creates a table.</summary>
    public VmUffdOps(
        delegate*<in VmaView, UffdModes, bool> canUserfault,
        delegate*<Inode, long, Folio?> getFolioNoAlloc,
        delegate*<in VmaView, ulong, Folio?> allocFolio,
        delegate*<Folio, in VmaView, ulong, Errno> filemapAdd,
        delegate*<Folio, in VmaView, void> filemapRemove)
    {
        CanUserfault = canUserfault;
        GetFolioNoAlloc = getFolioNoAlloc;
        AllocFolio = allocFolio;
        FilemapAdd = filemapAdd;
        FilemapRemove = filemapRemove;
    }

    /// <summary><c>can_userfault(vma, vm_flags)</c>. See <see cref="HookSignatures.CanUserfault"/>.</summary>
    public readonly delegate*<in VmaView, UffdModes, bool> CanUserfault;

    /// <summary><c>get_folio_noalloc(inode, pgoff)</c>. See <see cref="HookSignatures.GetFolioNoAlloc"/>.</summary>
    public readonly delegate*<Inode, long, Folio?> GetFolioNoAlloc;

    /// <summary><c>alloc_folio(vma, addr)</c>. See <see cref="HookSignatures.AllocFolio"/>.</summary>
    public readonly delegate*<in VmaView, ulong, Folio?> AllocFolio;

    /// <summary><c>filemap_add(folio, vma, addr)</c>. See <see cref="HookSignatures.FilemapAdd"/>.</summary>
    public readonly delegate*<Folio, in VmaView, ulong, Errno> FilemapAdd;

    /// <summary><c>filemap_remove(folio, vma)</c>. See <see cref="HookSignatures.FilemapRemove"/>.</summary>
    public readonly delegate*<Folio, in VmaView, void> FilemapRemove;
}

/// <summary>The subset of <c>struct vm_operations_struct</c> a memory type provides.</summary>
public readonly unsafe struct VmOperations
{
    /// <summary>Creates a table.</summary>
    public VmOperations(delegate*<ref VmFault, VmFaultResult> fault) => Fault = fault;

    /// <summary><c>fault(vmf)</c>. See <see cref="HookSignatures.Fault"/>.</summary>
    public readonly delegate*<ref VmFault, VmFaultResult> Fault;
}

/// <summary>The subset of <c>struct file_operations</c> a memory type's files provide (every hook optional).</summary>
public readonly unsafe struct FileOperations
{
    /// <summary>Creates a table.</summary>
    public FileOperations(delegate*<in VmaView, Errno> mmap) => Mmap = mmap;

    /// <summary><c>mmap(file, vma)</c>: admission of a new mapping. See <see cref="HookSignatures.Mmap"/>.</summary>
    public readonly delegate*<in VmaView, Errno> Mmap;
}

/// <summary>
/// Everything the runtime knows about one memory type: its declaration and its two tables. The generator emits one
/// per <see cref="MemoryTypeAttribute"/> class as <c>static readonly MemoryTypeOps Ops</c>, and lists them all in the
/// assembly's <c>MemoryTypeRegistry</c>.
/// </summary>
public sealed class MemoryTypeOps
{
    /// <summary>Creates a memory type description.</summary>
    public MemoryTypeOps(string name, Backing backing, UffdModes modes, VmOperations vmOps, VmUffdOps uffdOps,
        FileOperations fileOps = default, bool sharedAnonymous = false)
    {
        Name = name;
        Backing = backing;
        Modes = modes;
        VmOps = vmOps;
        UffdOps = uffdOps;
        FileOps = fileOps;
        SharedAnonymous = sharedAnonymous;
    }

    /// <summary>The declared name.</summary>
    public string Name { get; }

    /// <summary>The declared backing.</summary>
    public Backing Backing { get; }

    /// <summary>The declared userfaultfd modes.</summary>
    public UffdModes Modes { get; }

    /// <summary>The <c>vm_operations_struct</c> part.</summary>
    public readonly VmOperations VmOps;

    /// <summary>The <c>vm_uffd_ops</c> part.</summary>
    public readonly VmUffdOps UffdOps;

    /// <summary>The <c>file_operations</c> part.</summary>
    public readonly FileOperations FileOps;

    /// <summary>The declared <see cref="MemoryTypeAttribute.SharedAnonymous"/>: this type backs <c>MAP_SHARED | MAP_ANONYMOUS</c>.</summary>
    public bool SharedAnonymous { get; }

    /// <summary>The table points to an <c>Mmap</c> hook.</summary>
    public unsafe bool HasMmap => FileOps.Mmap != null;

    /// <summary>The table points to a <c>Fault</c> hook.</summary>
    public unsafe bool HasFault => VmOps.Fault != null;

    /// <summary>The table points to a <c>CanUserfault</c> hook.</summary>
    public unsafe bool HasCanUserfault => UffdOps.CanUserfault != null;

    /// <summary>The table points to a <c>GetFolioNoAlloc</c> hook.</summary>
    public unsafe bool HasGetFolioNoAlloc => UffdOps.GetFolioNoAlloc != null;

    /// <summary>The table points to an <c>AllocFolio</c> hook.</summary>
    public unsafe bool HasAllocFolio => UffdOps.AllocFolio != null;

    /// <summary>The table points to a <c>FilemapAdd</c> hook.</summary>
    public unsafe bool HasFilemapAdd => UffdOps.FilemapAdd != null;

    /// <summary>The table points to a <c>FilemapRemove</c> hook.</summary>
    public unsafe bool HasFilemapRemove => UffdOps.FilemapRemove != null;

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({Backing}, {Modes})";
}
