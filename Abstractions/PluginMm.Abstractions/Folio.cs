namespace PluginMm;

/// <summary>Folio flags (<c>enum pageflags</c> subset).</summary>
[Flags]
public enum FolioFlags
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary><c>PG_uptodate</c>: contents valid.</summary>
    Uptodate = 1 << 0,
    /// <summary><c>PG_dirty</c>.</summary>
    Dirty = 1 << 1,
    /// <summary><c>PG_hwpoison</c>: CONTINUE on it fails with EIO.</summary>
    HwPoison = 1 << 2,
}

/// <summary>
/// A folio: one or more contiguous pages of memory with a reference count (<c>struct folio</c>).
/// Allocated from a <see cref="PageAllocator"/>; freed (and counted as freed) when the last reference is put.
/// </summary>
public sealed class Folio
{
    /// <summary><c>PAGE_SIZE</c> of the modelled machine.</summary>
    public const int BasePageSize = 4096;

    /// <summary><c>PAGE_SHIFT</c>.</summary>
    public const int BasePageShift = 12;

    private readonly PageAllocator? _allocator;
    private readonly byte[] _data;
    private int _refCount = 1;
    private int _flags;
    private int _locked;

    internal Folio(PageAllocator allocator, int size)
    {
        _allocator = allocator;
        _data = new byte[size];
    }

    /// <summary>A ZONE_DEVICE page of <paramref name="pgmap"/> (<c>memmap_init_zone_device</c>): free, reference count 0.</summary>
    internal Folio(Hmm.DevPagemap pgmap, int index)
    {
        Pgmap = pgmap;
        PgmapIndex = index;
        _data = new byte[BasePageSize];
        _refCount = 0;
    }

    /// <summary><c>folio-&gt;pgmap</c>: the ZONE_DEVICE page map this page belongs to, or null for system memory.</summary>
    public Hmm.DevPagemap? Pgmap { get; }

    /// <summary>The page's index inside <see cref="Pgmap"/> (its pfn relative to the range), 0 for system memory.</summary>
    public int PgmapIndex { get; }

    /// <summary><c>folio_is_zone_device</c>.</summary>
    public bool IsZoneDevice => Pgmap is not null;

    /// <summary><c>folio_is_device_private</c>.</summary>
    public bool IsDevicePrivate => Pgmap is { Type: Hmm.MemoryDeviceType.Private };

    /// <summary><c>folio_is_device_coherent</c>.</summary>
    public bool IsDeviceCoherent => Pgmap is { Type: Hmm.MemoryDeviceType.Coherent };

    /// <summary><c>page-&gt;zone_device_data</c>: the driver's per-page pointer (ZONE_DEVICE pages only).</summary>
    public object? ZoneDeviceData { get; set; }

    /// <summary>
    /// Models <c>zone_device_page_init</c> (mm/memremap.c): a driver hands out a free ZONE_DEVICE page: reference count 1,
    /// locked (the migration that uses it unlocks it).
    /// </summary>
    public void ZoneDevicePageInit()
    {
        if (Pgmap is null)
            throw new InvalidOperationException("zone_device_page_init on a page that is not ZONE_DEVICE");
        if (Interlocked.CompareExchange(ref _refCount, 1, 0) != 0)
            throw new InvalidOperationException("zone_device_page_init on a page in use");
        Lock();
    }

    /// <summary>Size in bytes (<c>folio_size</c>).</summary>
    public int Size => _data.Length;

    /// <summary>The folio's bytes. Valid only while a reference is held.</summary>
    public Span<byte> Data => _data;

    /// <summary>Current reference count (<c>folio_ref_count</c>); 0 once freed.</summary>
    public int RefCount => Volatile.Read(ref _refCount);

    /// <summary>The inode whose page cache holds this folio (<c>folio->mapping</c>), or null for anonymous memory.</summary>
    public Inode? Mapping { get; internal set; }


    /// <summary>Index in <see cref="Mapping"/>'s page cache, in units of the folio size (<c>folio->index</c>).</summary>
    public long Index { get; internal set; }

    /// <summary>Flags.</summary>
    public FolioFlags Flags => (FolioFlags)Volatile.Read(ref _flags);

    /// <summary>Sets flag bits atomically.</summary>
    public void SetFlags(FolioFlags flags) => Interlocked.Or(ref _flags, (int)flags);

    /// <summary>Clears flag bits atomically.</summary>
    public void ClearFlags(FolioFlags flags) => Interlocked.And(ref _flags, ~(int)flags);

    /// <summary><c>folio_get</c>: takes a reference.</summary>
    public Folio Get()
    {
        int r = Interlocked.Increment(ref _refCount);
        if (r <= 1)
            throw new InvalidOperationException("folio_get on a freed folio");
        return this;
    }

    /// <summary><c>folio_put</c>: drops a reference; the last one frees the folio.</summary>
    public void Put()
    {
        int r = Interlocked.Decrement(ref _refCount);
        if (r == 0)
        {
            if (Pgmap is not null)
                Pgmap.FreeZoneDeviceFolio(this); // free_zone_device_folio
            else
                _allocator!.Free(_data.Length);
        }
        else if (r < 0)
            throw new InvalidOperationException("folio_put underflow");
    }

    /// <summary><c>folio_trylock</c>.</summary>
    public bool TryLock() => Interlocked.Exchange(ref _locked, 1) == 0;

    /// <summary><c>folio_lock</c>: spins until the lock is taken (folio locks are held briefly).</summary>
    public void Lock()
    {
        var spin = new SpinWait();
        while (!TryLock())
            spin.SpinOnce();
    }

    /// <summary><c>folio_unlock</c>.</summary>
    public void Unlock() => Volatile.Write(ref _locked, 0);

    /// <summary>Whether the folio lock is held.</summary>
    public bool IsLocked => Volatile.Read(ref _locked) != 0;
}
