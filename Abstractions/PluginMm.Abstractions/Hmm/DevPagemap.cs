namespace PluginMm.Hmm;

/// <summary>The ZONE_DEVICE memory types HMM drivers use (<c>enum memory_type</c>, include/linux/memremap.h).</summary>
public enum MemoryDeviceType
{
    /// <summary><c>MEMORY_DEVICE_PRIVATE</c>: device memory the CPU cannot address; a CPU access faults and calls <c>migrate_to_ram</c>.</summary>
    Private = 1,

    /// <summary><c>MEMORY_DEVICE_COHERENT</c>: device memory the CPU can map and access coherently; never pinned long-term.</summary>
    Coherent = 2,
}

/// <summary>
/// One ZONE_DEVICE range a driver hot-plugs (<c>struct dev_pagemap</c>, include/linux/memremap.h): its type, its callbacks
/// (<see cref="Ops"/>), its owner (<c>pgmap-&gt;owner</c>: what <c>MIGRATE_VMA_SELECT_DEVICE_*</c> and
/// <c>hmm_range-&gt;dev_private_owner</c> compare against) and, once <c>memremap_pages</c> ran, its pages.
/// </summary>
public sealed class DevPagemap
{
    private Folio[] _pages = [];

    /// <summary>Creates a page map of <paramref name="nrPages"/> base pages; the runtime's <c>MemremapPages</c> creates them.</summary>
    public DevPagemap(MemoryDeviceType type, DevPagemapOps ops, object? owner, int nrPages)
    {
        ArgumentNullException.ThrowIfNull(ops);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(nrPages);
        Type = type;
        Ops = ops;
        Owner = owner;
        NrPages = nrPages;
    }

    /// <summary><c>pgmap-&gt;type</c>.</summary>
    public MemoryDeviceType Type { get; }

    /// <summary><c>pgmap-&gt;ops</c>.</summary>
    public DevPagemapOps Ops { get; }

    /// <summary><c>pgmap-&gt;owner</c>: an opaque identity of the driver instance managing the memory.</summary>
    public object? Owner { get; }

    /// <summary>Pages in the range (<c>range_len / PAGE_SIZE</c>).</summary>
    public int NrPages { get; }

    /// <summary>Whether <c>memremap_pages</c> populated the range.</summary>
    public bool IsMapped => _pages.Length != 0;

    /// <summary>The range's pages (<c>pfn_to_page</c> over the range); empty before <c>memremap_pages</c>.</summary>
    public ReadOnlySpan<Folio> Pages => _pages;

    /// <summary>Pages freed back to the driver through <see cref="DevPagemapOps.PageFree"/> (cumulative).</summary>
    public long FreedPages => Interlocked.Read(ref _freed);

    private long _freed;

    /// <summary>
    /// Creates the range's struct pages (the part of <c>memremap_pages</c> → <c>memmap_init_zone_device</c> that lives with
    /// the page type): each a free ZONE_DEVICE page with reference count 0. Called once, by the runtime's <c>MemremapPages</c>.
    /// </summary>
    public void InitPages()
    {
        if (IsMapped)
            throw new InvalidOperationException("memremap_pages already ran for this pgmap");
        var pages = new Folio[NrPages];
        for (int i = 0; i < pages.Length; i++)
            pages[i] = new Folio(this, i);
        _pages = pages;
    }

    /// <summary>
    /// Models <c>free_zone_device_folio</c> (mm/memremap.c): the last reference went; clear the page's mapping state and
    /// hand it back to the driver (<c>pgmap-&gt;ops-&gt;page_free</c>). The reference count stays 0 until the driver reuses
    /// the page with <see cref="Folio.ZoneDevicePageInit"/>.
    /// </summary>
    internal unsafe void FreeZoneDeviceFolio(Folio folio)
    {
        folio.Mapping = null;
        folio.ClearFlags(FolioFlags.Uptodate | FolioFlags.Dirty);
        Interlocked.Increment(ref _freed);
        if (Ops.PageFree != null)
            Ops.PageFree(folio);
    }

    /// <inheritdoc/>
    public override string ToString() => $"dev_pagemap {Ops.Name} ({Type}, {NrPages} pages)";
}

/// <summary>
/// A page map's callbacks (<c>struct dev_pagemap_ops</c>, include/linux/memremap.h, Linux 6.18): function pointers to the
/// driver's static hooks. The generator fills it from a <see cref="DevPagemapOpsAttribute"/> class; built by hand, the
/// runtime's <c>MemremapPages</c> refuses a table missing what the memory type needs (EINVAL), as the generator refuses
/// it at compile time.
/// </summary>
public sealed unsafe class DevPagemapOps
{
    /// <summary>Creates a table.</summary>
    public DevPagemapOps(
        string name,
        delegate*<Folio, void> pageFree,
        delegate*<ref VmFault, VmFaultResult> migrateToRam,
        delegate*<DevPagemap, long, long, int, int> memoryFailure)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        PageFree = pageFree;
        MigrateToRam = migrateToRam;
        MemoryFailure = memoryFailure;
    }

    /// <summary>The declared name.</summary>
    public string Name { get; }

    /// <summary><c>page_free(page)</c>: the page's reference count reached 0. See <see cref="DevPagemapHookSignatures.PageFree"/>.</summary>
    public readonly delegate*<Folio, void> PageFree;

    /// <summary><c>migrate_to_ram(vmf)</c>: the CPU touched a device-private page. See <see cref="DevPagemapHookSignatures.MigrateToRam"/>.</summary>
    public readonly delegate*<ref VmFault, VmFaultResult> MigrateToRam;

    /// <summary><c>memory_failure(pgmap, pfn, nr_pages, mf_flags)</c> (optional). See <see cref="DevPagemapHookSignatures.MemoryFailure"/>.</summary>
    public readonly delegate*<DevPagemap, long, long, int, int> MemoryFailure;

    /// <summary>Whether the table has <c>page_free</c>.</summary>
    public bool HasPageFree => PageFree != null;

    /// <summary>Whether the table has <c>migrate_to_ram</c>.</summary>
    public bool HasMigrateToRam => MigrateToRam != null;

    /// <summary>Whether the table has <c>memory_failure</c> (<c>pgmap_has_memory_failure</c>).</summary>
    public bool HasMemoryFailure => MemoryFailure != null;

    /// <inheritdoc/>
    public override string ToString() => $"dev_pagemap_ops {Name}";
}

/// <summary>
/// Declares a device driver's ZONE_DEVICE page-map callbacks (<c>struct dev_pagemap_ops</c>, include/linux/memremap.h in
/// Linux 6.18): a partial class with static hooks, from which the PluginMm generator emits
/// <c>public static readonly global::PluginMm.Hmm.DevPagemapOps Ops</c> and one <c>Has*</c> constant per hook.
/// <see cref="DevPagemapHookNames.PageFree"/> is required for every type; <see cref="DevPagemapHookNames.MigrateToRam"/>
/// for <see cref="MemoryDeviceType.Private"/> (PMM0030, with a code fix); a wrong signature is PMM0031; a class that cannot
/// carry the generated part is PMM0032; <c>MigrateToRam</c> declared for device-coherent memory only is PMM0033 (never called).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class DevPagemapOpsAttribute : Attribute
{
    /// <summary>Declares page-map callbacks called <paramref name="name"/> for memory of <paramref name="types"/>.</summary>
    public DevPagemapOpsAttribute(string name, DevPagemapTypes types)
    {
        Name = name;
        Types = types;
    }

    /// <summary>The name, e.g. <c>"dmirror"</c>.</summary>
    public string Name { get; }

    /// <summary>The memory types page maps using this table have.</summary>
    public DevPagemapTypes Types { get; }
}

/// <summary>Which memory types a <see cref="DevPagemapOpsAttribute"/> table serves (a driver may use one table for both).</summary>
[Flags]
public enum DevPagemapTypes
{
    /// <summary><see cref="MemoryDeviceType.Private"/>.</summary>
    Private = 1 << 0,

    /// <summary><see cref="MemoryDeviceType.Coherent"/>.</summary>
    Coherent = 1 << 1,
}

/// <summary>The hook names of a <see cref="DevPagemapOpsAttribute"/> class.</summary>
public static class DevPagemapHookNames
{
    /// <summary><c>dev_pagemap_ops-&gt;page_free</c> (required: <c>memremap_pages</c> refuses a private or coherent map without it).</summary>
    public const string PageFree = nameof(PageFree);

    /// <summary><c>dev_pagemap_ops-&gt;migrate_to_ram</c> (required for MEMORY_DEVICE_PRIVATE).</summary>
    public const string MigrateToRam = nameof(MigrateToRam);

    /// <summary><c>dev_pagemap_ops-&gt;memory_failure</c> (optional).</summary>
    public const string MemoryFailure = nameof(MemoryFailure);
}

/// <summary>The exact hook signatures of a <see cref="DevPagemapOpsAttribute"/> class, as C# source.</summary>
public static class DevPagemapHookSignatures
{
    /// <summary>
    /// <c>void page_free(struct page *page)</c>: the page's reference count reached 0; the driver takes it back (its free
    /// list, its counters) and reuses it later with <see cref="Folio.ZoneDevicePageInit"/>.
    /// </summary>
    public const string PageFree = "public static void PageFree(global::PluginMm.Folio page)";

    /// <summary>
    /// <c>vm_fault_t migrate_to_ram(struct vm_fault *vmf)</c>: the CPU faulted on a device-private entry; <c>vmf.Folio</c>
    /// is the device page (<c>vmf-&gt;page</c>) and <c>vmf.Vma.Owner</c> the runtime's VMA. Migrate at least that page to
    /// system memory (migrate_vma_* with <c>fault_page</c>) and return 0, or VM_FAULT_SIGBUS / VM_FAULT_OOM.
    /// </summary>
    public const string MigrateToRam = "public static global::PluginMm.VmFaultResult MigrateToRam(ref global::PluginMm.VmFault vmf)";

    /// <summary>
    /// <c>int memory_failure(struct dev_pagemap *pgmap, unsigned long pfn, unsigned long nr_pages, int mf_flags)</c>:
    /// pages of the range failed; 0, or -EOPNOTSUPP for the generic handler.
    /// </summary>
    public const string MemoryFailure = "public static int MemoryFailure(global::PluginMm.Hmm.DevPagemap pgmap, long pfn, long nrPages, int mfFlags)";
}
