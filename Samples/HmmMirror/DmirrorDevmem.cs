using PluginMm;
using PluginMm.Hmm;
using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;

namespace HmmMirror;

/// <summary>
/// The device memory's page-map callbacks (<c>dmirror_devmem_ops</c> in lib/test_hmm.c). The generator turns the static
/// hooks into <c>DmirrorDevmemOps.Ops</c>; leave <see cref="MigrateToRam"/> out and the build fails with PMM0030.
/// </summary>
[DevPagemapOps("dmirror_devmem", DevPagemapTypes.Private | DevPagemapTypes.Coherent)]
public static partial class DmirrorDevmemOps
{
    /// <summary>Models <c>dmirror_devmem_free</c>: the page goes back on its device's free list.</summary>
    public static void PageFree(Folio page)
    {
        ((DmirrorDevice)page.Pgmap!.Owner!).Memory.Free(page);
    }

    /// <summary>
    /// Models <c>dmirror_devmem_fault</c>: the CPU touched a device-private page; migrate that one page back with
    /// <c>fault_page</c> set. No finalize step for the device: the copy already erased its page-table entry.
    /// </summary>
    public static VmFaultResult MigrateToRam(ref VmFault vmf)
    {
        var page = vmf.Folio!;
        var dmirror = (Dmirror)page.ZoneDeviceData!;
        var args = new MigrateVma(1)
        {
            Vma = (Vma)vmf.Vma.Owner!,
            Start = vmf.Address,
            End = vmf.Address + Folio.BasePageSize,
            PgmapOwner = dmirror.Device,
            Flags = dmirror.Device.SelectDevice,
            FaultPage = page,
        };
        if (MigrateDevice.MigrateVmaSetup(args) != Errno.None)
            return VmFaultResult.SigBus;
        var ret = dmirror.DevmemFaultAllocAndCopy(args);
        if (ret != VmFaultResult.None)
            return ret;
        MigrateDevice.MigrateVmaPages(args);
        MigrateDevice.MigrateVmaFinalize(args);
        Interlocked.Increment(ref dmirror.Device.Memory.CpuFaultMigrations);
        return VmFaultResult.None;
    }
}

/// <summary>
/// A dmirror device's memory (<c>struct dmirror_device</c>'s chunks and free list): ZONE_DEVICE chunks of
/// <see cref="ChunkPages"/> pages, each its own page map (<c>dmirror_allocate_chunk</c> → <c>memremap_pages</c>), a free
/// list and the driver's counters. The model's device memory is the device pages' own bytes (test_hmm.c backs each
/// device-private page with a system "rpage"; here the page holds its data).
/// </summary>
public sealed class DmirrorDeviceMemory
{
    /// <summary>Pages per chunk (the kernel's DEVMEM_CHUNK_SIZE is 256 MiB; 2 MiB here).</summary>
    public const int ChunkPages = 512;

    /// <summary>Chunks the device may hot-plug (DEVMEM_CHUNKS_RESERVE-sized growth in the kernel).</summary>
    public const int MaxChunks = 64;

    private readonly object _lock = new(); // mdevice->lock
    private readonly List<DevPagemap> _chunks = new();
    private readonly Stack<Folio> _free = new();

    internal DmirrorDeviceMemory(DmirrorDevice device, MemoryDeviceType type)
    {
        Device = device;
        Type = type;
    }

    /// <summary>The device.</summary>
    public DmirrorDevice Device { get; }

    /// <summary>MEMORY_DEVICE_PRIVATE or MEMORY_DEVICE_COHERENT.</summary>
    public MemoryDeviceType Type { get; }

    /// <summary><c>mdevice-&gt;calloc</c>: pages handed out.</summary>
    public long Calloc;

    /// <summary><c>mdevice-&gt;cfree</c>: pages given back through <c>page_free</c>.</summary>
    public long Cfree;

    /// <summary>CPU faults served by <c>migrate_to_ram</c> (demo counter).</summary>
    public long CpuFaultMigrations;

    /// <summary>Hot-plugged chunks (<c>devmem_count</c>).</summary>
    public int Chunks { get { lock (_lock) return _chunks.Count; } }

    /// <summary>Pages in use (handed out and not freed).</summary>
    public long InUse => Interlocked.Read(ref Calloc) - Interlocked.Read(ref Cfree);

    /// <summary>The chunks' page maps (for eviction).</summary>
    public DevPagemap[] PageMaps { get { lock (_lock) return _chunks.ToArray(); } }

    /// <summary>Models <c>dmirror_devmem_alloc_page</c>: a free device page, initialised (count 1, locked), or null.</summary>
    public Folio? Alloc(Dmirror dmirror)
    {
        Folio? page = null;
        lock (_lock)
        {
            if (_free.Count == 0 && !AllocateChunk())
                return null;
            page = _free.Pop();
            Calloc++;
        }
        page.ZoneDevicePageInit();
        page.ZoneDeviceData = dmirror;
        return page;
    }

    /// <summary>Models <c>dmirror_allocate_chunk</c> (lock held): a new page map, <c>memremap_pages</c>, every page onto the free list.</summary>
    private bool AllocateChunk()
    {
        if (_chunks.Count >= MaxChunks)
            return false;
        var pgmap = new DevPagemap(Type, DmirrorDevmemOps.Ops, Device, ChunkPages);
        if (Memremap.MemremapPages(pgmap) != Errno.None)
            return false;
        _chunks.Add(pgmap);
        var pages = pgmap.Pages;
        for (int i = pages.Length - 1; i >= 0; i--)
            _free.Push(pages[i]);
        return true;
    }

    /// <summary>The free half of <c>dmirror_devmem_free</c>.</summary>
    internal void Free(Folio page)
    {
        page.ZoneDeviceData = null;
        lock (_lock)
        {
            Cfree++;
            if (_chunks.Contains(page.Pgmap!))
                _free.Push(page);
        }
    }

    /// <summary>
    /// Models <c>dmirror_device_remove_chunks</c>: evict every chunk (<c>dmirror_device_evict_chunk</c>: migrate each page
    /// in use back to system memory), then unplug them.
    /// </summary>
    internal void RemoveChunks()
    {
        foreach (var pgmap in PageMaps)
            EvictChunk(pgmap);
        lock (_lock)
        {
            _chunks.Clear();
            _free.Clear();
        }
    }

    /// <summary>Models <c>dmirror_device_evict_chunk</c>.</summary>
    private void EvictChunk(DevPagemap pgmap)
    {
        var args = new MigrateVma(pgmap.NrPages);
        if (MigrateDevice.MigrateDeviceRange(args, pgmap, 0, pgmap.NrPages) != Errno.None)
            return;
        for (int i = 0; i < pgmap.NrPages; i++)
        {
            if (args.SrcPages[i] is not { } spage || !args.IsMigrating(i))
                continue;
            if (spage.ZoneDeviceData is not Dmirror dmirror || dmirror.Mm.Kernel.Allocator.Alloc() is not { } dpage)
                continue;
            dpage.Lock();
            spage.Data.CopyTo(dpage.Data);
            args.SetDst(i, dpage, (args.Src[i] & MigratePfn.Write) != 0);
        }
        MigrateDevice.MigrateDevicePages(args);
        MigrateDevice.MigrateDeviceFinalize(args);
    }
}
