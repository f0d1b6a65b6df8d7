namespace PluginMm.Runtime;

/// <summary>
/// An open file of a page-cache or hugetlb memory type (<c>struct file</c> + its inode): what <see cref="Mm.Mmap"/> maps.
/// Keeps the list of VMAs that map it (<c>i_mmap</c>) so that hole punching unmaps the range from every mapping.
/// </summary>
public sealed class MemFile
{
    /// <summary>State shared by every open file of one inode: its mappings (<c>i_mmap</c>) and their lock.</summary>
    private sealed class Shared
    {
        public readonly List<Vma> Mappings = new();
        public readonly Lock IMmapLock = new();
        public readonly ReaderWriterLockSlim InvalidateLock = new(LockRecursionPolicy.NoRecursion);
    }

    private readonly Shared _shared;
    private List<Vma> _mappings => _shared.Mappings;

    internal MemFile(ModelKernel kernel, MemoryTypeOps type, Inode inode, bool canRead = true)
        : this(kernel, type, inode, canRead, new Shared())
    {
    }

    private MemFile(ModelKernel kernel, MemoryTypeOps type, Inode inode, bool canRead, Shared shared)
    {
        Kernel = kernel;
        Type = type;
        Inode = inode;
        CanRead = canRead;
        _shared = shared;
    }

    /// <summary>Models opening the same inode again with <c>O_RDONLY</c> (e.g. via <c>/proc/self/fd</c>).</summary>
    public MemFile OpenReadOnly() => new(Kernel, Type, Inode, CanRead, _shared) { ReadOnly = true };

    /// <summary>The kernel the file lives in.</summary>
    public ModelKernel Kernel { get; }

    /// <summary>The memory type whose tables serve this file's mappings.</summary>
    public MemoryTypeOps Type { get; }

    /// <summary>The inode and its page cache.</summary>
    public Inode Inode { get; }

    /// <summary>
    /// The file's <c>file_operations</c> have a <c>read_iter</c> (false for <c>kvm_gmem_fops</c>, which has none: a
    /// property of the file the creating system call makes, not of the memory type).
    /// </summary>
    internal bool CanRead { get; }

    /// <summary>Opened read-only (<c>O_RDONLY</c>): shared mappings get no <c>VM_MAYWRITE</c>.</summary>
    public bool ReadOnly { get; init; }

    /// <summary><c>i_mmap_rwsem</c>: held while the set of mappings, or a file VMA's bounds, change, and during hole punches.</summary>
    internal Lock IMmapLock => _shared.IMmapLock;

    /// <summary>
    /// <c>mapping-&gt;invalidate_lock</c> (include/linux/fs.h): taken exclusively while a hole punch or truncate unmaps and
    /// removes page-cache folios, and shared by the fault paths while they check that the folio they found is still in the
    /// page cache and map it, so a fault racing with the punch can never leave a removed folio mapped (the kernel closes
    /// the same race with the folio lock in <c>truncate_inode_folio</c> / <c>filemap_map_pages</c>).
    /// </summary>
    internal ReaderWriterLockSlim InvalidateLock => _shared.InvalidateLock;

    internal void AddMapping(Vma vma)
    {
        lock (IMmapLock) _mappings.Add(vma);
    }

    internal void RemoveMapping(Vma vma)
    {
        lock (IMmapLock) _mappings.Remove(vma);
    }

    /// <summary>
    /// Models <c>fallocate(FALLOC_FL_PUNCH_HOLE)</c> / <c>shmem_fallocate</c>: unmaps the range from every mapping
    /// (<c>unmap_mapping_range</c>, page-cache pages only: private CoW copies stay) and drops it from the page cache.
    /// Offsets must be page aligned (EINVAL).
    /// </summary>
    public Errno PunchHole(long offset, long length)
    {
        int ps = Inode.PageSize;
        if (offset < 0 || length <= 0 || (offset & (ps - 1)) != 0 || (length & (ps - 1)) != 0)
            return Errno.EINVAL;
        long first = offset / ps, end = first + length / ps;
        InvalidateLock.EnterWriteLock();
        try
        {
            lock (IMmapLock)
            {
                foreach (var vma in _mappings)
                    vma.Mm.ZapFileRange(vma, first, end);
            }
            Inode.Cache.RemoveRange(first, end);
        }
        finally { InvalidateLock.ExitWriteLock(); }
        return Errno.None;
    }

    /// <summary>Models <c>ftruncate</c>: sets <c>i_size</c>; shrinking punches the tail.</summary>
    public Errno Truncate(long size)
    {
        if (size < 0)
            return Errno.EINVAL;
        long old = Inode.Size;
        Inode.Size = size;
        if (size < old)
        {
            long ps = Inode.PageSize;
            long first = (size + ps - 1) / ps;
            InvalidateLock.EnterWriteLock();
            try
            {
                lock (IMmapLock)
                {
                    foreach (var vma in _mappings)
                        vma.Mm.ZapFileRange(vma, first, long.MaxValue);
                }
                Inode.Cache.RemoveRange(first, long.MaxValue);
            }
            finally { InvalidateLock.ExitWriteLock(); }
        }
        return Errno.None;
    }

    /// <summary>
    /// Models <c>pread</c> on the file (<c>filemap_read</c> / <c>shmem_file_read_iter</c>): copies page-cache contents
    /// (zeros for holes) without faulting anything in. EINVAL for a file without <c>read_iter</c> (guest_memfd), as
    /// <c>vfs_read</c> returns.
    /// </summary>
    public Errno Pread(long offset, Span<byte> buffer)
    {
        if (!CanRead)
            return Errno.EINVAL;
        if (offset < 0)
            return Errno.EINVAL;
        int ps = Inode.PageSize;
        int done = 0;
        while (done < buffer.Length)
        {
            long pos = offset + done;
            long idx = pos / ps;
            int inPage = (int)(pos % ps);
            int n = Math.Min(ps - inPage, buffer.Length - done);
            var f = Inode.Cache.Get(idx);
            if (f is null)
                buffer.Slice(done, n).Clear();
            else
            {
                f.Data.Slice(inPage, n).CopyTo(buffer.Slice(done, n));
                f.Put();
            }
            done += n;
        }
        return Errno.None;
    }

    /// <summary>Number of folios in the page cache.</summary>
    public int CachedFolios => Inode.Cache.Count;

    /// <summary>Models closing the last reference and evicting the inode: drops the whole page cache.</summary>
    public void Release() => Inode.Cache.RemoveRange(0, long.MaxValue);

    /// <inheritdoc/>
    public override string ToString() => $"{Type.Name} file ({Inode.Size} bytes, page {Inode.PageSize})";
}
