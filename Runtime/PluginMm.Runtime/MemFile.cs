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

    internal MemFile(ModelKernel kernel, MemoryTypeOps type, Inode inode, bool gmemFops = false)
        : this(kernel, type, inode, !gmemFops, new Shared())
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

    /// <summary>
    /// The file's <c>fallocate</c> rounds a hole inward (<c>shmem_fallocate</c>, <c>hugetlbfs_punch_hole</c>); false for
    /// <c>kvm_gmem_fallocate</c>, which requires page-aligned offset and length (the same <c>kvm_gmem_fops</c> as
    /// <see cref="CanRead"/>).
    /// </summary>
    internal bool PunchRoundsInward => CanRead;

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
    /// Models <c>fallocate(FALLOC_FL_PUNCH_HOLE)</c>: <c>shmem_fallocate</c> and <c>hugetlbfs_punch_hole</c> round the hole
    /// inward to whole pages (huge pages for hugetlbfs) and zero the partial pages at either end in place
    /// (<c>shmem_truncate_range</c> → <c>truncate_inode_partial_folio</c>, <c>hugetlbfs_zero_partial_page</c>); guest_memfd
    /// requires page-aligned offset and length (<c>kvm_gmem_fallocate</c>, EINVAL). The whole pages are unmapped from every
    /// mapping (<c>unmap_mapping_range</c>, page-cache pages only: private CoW copies stay) and then removed one by one
    /// under the folio lock, zapping again whatever mapped the folio meanwhile (<c>truncate_inode_folio</c> →
    /// <c>unmap_mapping_folio</c>), so a UFFDIO_COPY or CONTINUE that holds the folio lock from page-cache insertion to PTE
    /// install can never leave a PTE mapping a folio that is no longer in the page cache.
    /// </summary>
    public Errno PunchHole(long offset, long length)
    {
        int ps = Inode.PageSize;
        if (offset < 0 || length <= 0 || length > long.MaxValue - offset)
            return Errno.EINVAL;
        if (!PunchRoundsInward && ((offset | length) & (Folio.BasePageSize - 1)) != 0)
            return Errno.EINVAL;
        long stop = offset + length;
        long first = (offset + ps - 1) / ps, end = stop / ps;
        if (offset < first * ps)
            ZeroPartialPage(offset, Math.Min(stop, first * ps));
        if (stop > end * ps && stop > first * ps)
            ZeroPartialPage(Math.Max(end * ps, offset), stop);
        if (end > first)
            RemovePages(first, end);
        return Errno.None;
    }

    /// <summary>Zeroes the cached bytes [<paramref name="from"/>, <paramref name="to"/>) of one page (none cached: nothing to do).</summary>
    private void ZeroPartialPage(long from, long to)
    {
        int ps = Inode.PageSize;
        var folio = Inode.Cache.Get(from / ps);
        if (folio is null)
            return;
        folio.Lock();
        folio.Data.Slice((int)(from % ps), (int)(to - from)).Clear();
        folio.Unlock();
        folio.Put();
    }

    /// <summary>
    /// Unmaps and removes page indexes [<paramref name="first"/>, <paramref name="end"/>) (<c>unmap_mapping_range</c>, then
    /// <c>truncate_inode_pages_range</c> folio by folio under the folio lock, re-zapping with <c>unmap_mapping_folio</c>).
    /// </summary>
    private void RemovePages(long first, long end)
    {
        InvalidateLock.EnterWriteLock();
        try
        {
            lock (IMmapLock)
            {
                foreach (var vma in _mappings)
                    vma.Mm.ZapFileRange(vma, first, end);
            }
            foreach (var (idx, folio) in Inode.Cache.GetRange(first, end))
            {
                folio.Lock();
                if (folio.Mapping == Inode)
                {
                    lock (IMmapLock)
                    {
                        foreach (var vma in _mappings)
                            vma.Mm.ZapFileRange(vma, idx, idx + 1);
                    }
                    Inode.Cache.Remove(folio);
                }
                folio.Unlock();
                folio.Put();
            }
        }
        finally { InvalidateLock.ExitWriteLock(); }
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
