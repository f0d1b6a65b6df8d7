namespace PluginMm;

/// <summary>
/// A file (<c>struct inode</c> + its <c>address_space</c>): the object a page-cache or hugetlb memory type backs
/// its memory with. The runtime creates it (memfd_create, guest_memfd, hugetlbfs); hooks look up and insert folios
/// through <see cref="Cache"/>.
/// </summary>
public sealed class Inode
{
    private long _size;

    /// <summary>Creates an inode of <paramref name="size"/> bytes whose page cache holds folios of <paramref name="pageSize"/> bytes.</summary>
    public Inode(string memoryType, long size, int pageSize, PageAllocator allocator, ulong flags = 0)
    {
        if (pageSize < Folio.BasePageSize || (pageSize & (pageSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(pageSize), pageSize, "page size must be a power of two of at least 4096 bytes");
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        MemoryType = memoryType;
        _size = size;
        PageSize = pageSize;
        PageShift = System.Numerics.BitOperations.Log2((uint)pageSize);
        Allocator = allocator;
        Flags = flags;
        Cache = new AddressSpace(this);
    }

    /// <summary>The memory type's name (<see cref="MemoryTypeAttribute.Name"/>).</summary>
    public string MemoryType { get; }

    /// <summary><c>i_size</c> in bytes.</summary>
    public long Size { get => Interlocked.Read(ref _size); set => Interlocked.Exchange(ref _size, value); }

    /// <summary>Size of one page-cache entry: 4096, or the huge page size for hugetlbfs.</summary>
    public int PageSize { get; }

    /// <summary>log2 of <see cref="PageSize"/>.</summary>
    public int PageShift { get; }

    /// <summary>Number of page-cache indexes below <c>i_size</c>.</summary>
    public long PageCount => (Size + PageSize - 1) >> PageShift;

    /// <summary>The allocator folios of this file come from.</summary>
    public PageAllocator Allocator { get; }

    /// <summary>Creation flags private to the memory type (e.g. guest_memfd's <c>GUEST_MEMFD_FLAG_INIT_SHARED</c>).</summary>
    public ulong Flags { get; }

    /// <summary>The page cache (<c>inode->i_mapping</c>).</summary>
    public AddressSpace Cache { get; }

    /// <summary>Data private to the memory type (<c>inode->i_private</c>), e.g. the image a file's pages are read from.</summary>
    public object? PrivateData { get; set; }
}

/// <summary>
/// A page cache (<c>struct address_space</c>): folios by index, safe for concurrent use, sized for millions of entries.
/// </summary>
public sealed class AddressSpace
{
    private readonly Dictionary<long, Folio> _folios = new();
    private readonly Lock _lock = new();

    internal AddressSpace(Inode host) => Host = host;

    /// <summary>The inode this page cache belongs to.</summary>
    public Inode Host { get; }

    /// <summary>Number of cached folios (<c>nrpages</c> in folio units).</summary>
    public int Count { get { lock (_lock) return _folios.Count; } }

    /// <summary><c>filemap_get_folio</c> without FGP_CREAT: the folio at <paramref name="index"/> with a reference taken, or null.</summary>
    public Folio? Get(long index)
    {
        lock (_lock)
            return _folios.TryGetValue(index, out var f) ? f.Get() : null;
    }

    /// <summary>Whether a folio is cached at <paramref name="index"/> (no reference taken).</summary>
    public bool Contains(long index)
    {
        lock (_lock)
            return _folios.ContainsKey(index);
    }

    /// <summary>
    /// <c>filemap_add_folio</c>: inserts <paramref name="folio"/> at <paramref name="index"/>; the cache takes its own
    /// reference. Returns EEXIST when the index is taken, EINVAL when the folio size does not match the cache.
    /// </summary>
    public Errno Add(Folio folio, long index)
    {
        if (folio.Size != Host.PageSize)
            return Errno.EINVAL;
        lock (_lock)
        {
            if (!_folios.TryAdd(index, folio))
                return Errno.EEXIST;
            folio.Get();
            folio.Mapping = Host;
            folio.Index = index;
        }
        return Errno.None;
    }

    /// <summary><c>filemap_remove_folio</c>: removes <paramref name="folio"/> if it is still cached at its index; drops the cache's reference.</summary>
    public bool Remove(Folio folio)
    {
        lock (_lock)
        {
            if (folio.Mapping != Host || !_folios.TryGetValue(folio.Index, out var cur) || !ReferenceEquals(cur, folio))
                return false;
            _folios.Remove(folio.Index);
            folio.Mapping = null;
        }
        folio.Put();
        return true;
    }

    /// <summary>
    /// <c>find_get_entries</c>: the folios with index in [<paramref name="start"/>, <paramref name="end"/>), in index order,
    /// each with a reference taken (the caller puts them).
    /// </summary>
    public List<(long Index, Folio Folio)> GetRange(long start, long end)
    {
        var list = new List<(long Index, Folio Folio)>();
        lock (_lock)
        {
            if (end - start <= _folios.Count)
            {
                for (long i = start; i < end; i++)
                    if (_folios.TryGetValue(i, out var f)) list.Add((i, f.Get()));
            }
            else
            {
                foreach (var kv in _folios)
                    if (kv.Key >= start && kv.Key < end) list.Add((kv.Key, kv.Value.Get()));
                list.Sort((x, y) => x.Index.CompareTo(y.Index));
            }
        }
        return list;
    }

    /// <summary>
    /// <c>truncate_inode_pages_range</c> / hole punch: removes every folio with index in [<paramref name="start"/>, <paramref name="end"/>)
    /// and returns how many were removed.
    /// </summary>
    public int RemoveRange(long start, long end)
    {
        List<Folio>? removed = null;
        lock (_lock)
        {
            if (end - start <= _folios.Count)
            {
                for (long i = start; i < end; i++)
                    if (_folios.Remove(i, out var f)) (removed ??= new()).Add(f);
            }
            else
            {
                foreach (var kv in _folios)
                    if (kv.Key >= start && kv.Key < end) (removed ??= new()).Add(kv.Value);
                if (removed != null)
                    foreach (var f in removed) _folios.Remove(f.Index);
            }
        }
        if (removed == null)
            return 0;
        foreach (var f in removed)
        {
            f.Mapping = null;
            f.Put();
        }
        return removed.Count;
    }
}
