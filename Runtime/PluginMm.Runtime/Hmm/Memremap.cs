using PluginMm.Hmm;

namespace PluginMm.Runtime.Hmm;

/// <summary>mm/memremap.c: hot-plugging a driver's ZONE_DEVICE range (<c>memremap_pages</c>) and its checks.</summary>
public static class Memremap
{
    /// <summary>
    /// Models <c>memremap_pages</c> (mm/memremap.c): validates <paramref name="pgmap"/> as the kernel does (a device-private
    /// map needs <c>page_free</c>, <c>migrate_to_ram</c> and an owner; a device-coherent one <c>page_free</c> and an owner:
    /// EINVAL otherwise, where the kernel WARNs) and creates its pages, each free with reference count 0. EEXIST when the
    /// map was already populated.
    /// </summary>
    public static Errno MemremapPages(DevPagemap pgmap)
    {
        ArgumentNullException.ThrowIfNull(pgmap);
        if (pgmap.IsMapped)
            return Errno.EEXIST;
        switch (pgmap.Type)
        {
            case MemoryDeviceType.Private:
                if (!pgmap.Ops.HasPageFree || !pgmap.Ops.HasMigrateToRam || pgmap.Owner is null)
                    return Errno.EINVAL;
                break;
            case MemoryDeviceType.Coherent:
                if (!pgmap.Ops.HasPageFree || pgmap.Owner is null)
                    return Errno.EINVAL;
                break;
            default:
                return Errno.EINVAL;
        }
        pgmap.InitPages();
        return Errno.None;
    }

    /// <summary>The page's owner (<c>page_pgmap(page)-&gt;owner</c>), or null for system memory.</summary>
    public static object? PgmapOwner(Folio page) => page.Pgmap?.Owner;
}
