using System.Runtime.CompilerServices;
using PluginMm.Hmm;

namespace PluginMm.Runtime.Hmm;

/// <summary>
/// The reverse map of ZONE_DEVICE pages (the part of mm/rmap.c that <c>try_to_migrate</c> and
/// <c>remove_migration_ptes</c> walk): where, in which mm, each device page is mapped by a device-private or present
/// (device-coherent) entry. The model keeps no reverse map for system memory. Entries are checked against the page
/// table when used, so a location that a zap cleared is dropped then.
/// </summary>
internal static class DeviceRmap
{
    private static readonly ConditionalWeakTable<Folio, List<(Mm Mm, ulong Address)>> s_maps = new();

    /// <summary><c>folio_add_anon_rmap_pte</c> for a device page (no-op for system memory).</summary>
    public static void Add(Folio page, Mm mm, ulong address)
    {
        if (page.Pgmap is null)
            return;
        var list = s_maps.GetValue(page, static _ => new List<(Mm, ulong)>());
        lock (list)
        {
            if (!list.Contains((mm, address)))
                list.Add((mm, address));
        }
    }

    /// <summary><c>folio_remove_rmap_pte</c> for a device page.</summary>
    public static void Remove(Folio page, Mm mm, ulong address)
    {
        if (page.Pgmap is null || !s_maps.TryGetValue(page, out var list))
            return;
        lock (list)
            list.Remove((mm, address));
    }

    /// <summary>The page's current mappings other than (<paramref name="except"/>, <paramref name="exceptAddress"/>), as a snapshot.</summary>
    public static (Mm Mm, ulong Address)[] Mappings(Folio page, Mm? except = null, ulong exceptAddress = 0)
    {
        if (page.Pgmap is null || !s_maps.TryGetValue(page, out var list))
            return [];
        lock (list)
        {
            list.RemoveAll(m => !StillMaps(m.Mm, m.Address, page));
            return list.Where(m => !(ReferenceEquals(m.Mm, except) && m.Address == exceptAddress)).ToArray();
        }
    }

    private static readonly ConditionalWeakTable<Folio, List<(Mm Mm, ulong Address)>> s_migrationCopies = new();

    /// <summary>
    /// Records that fork copied a migration entry for <paramref name="page"/> into <paramref name="mm"/> (the kernel's
    /// <c>remove_migration_ptes</c> finds such copies by walking the rmap of the child VMAs). Called under the parent's
    /// page-table lock, so it happens before the migration's <c>remove_migration_pte</c> of that entry.
    /// </summary>
    public static void AddMigrationCopy(Folio page, Mm mm, ulong address)
    {
        var list = s_migrationCopies.GetValue(page, static _ => new List<(Mm, ulong)>());
        lock (list)
            list.Add((mm, address));
    }

    /// <summary>Takes the recorded migration-entry copies of <paramref name="page"/> (each resolved once).</summary>
    public static (Mm Mm, ulong Address)[] TakeMigrationCopies(Folio page)
    {
        if (!s_migrationCopies.TryGetValue(page, out var list))
            return [];
        lock (list)
        {
            var copies = list.ToArray();
            list.Clear();
            return copies;
        }
    }

    private static bool StillMaps(Mm mm, ulong address, Folio page)
    {
        if (mm.Exited)
            return false;
        var pte = mm.PageTable.Get(address);
        return ReferenceEquals(pte.Folio, page) && (pte.IsPresent || DevicePte.IsDevicePrivate(pte) || DevicePte.IsDeviceExclusive(pte));
    }
}

/// <summary>Raising an mmu-notifier invalidation that carries an owner (<c>mmu_notifier_range_init_owner</c>).</summary>
internal static class OwnedInvalidation
{
    /// <summary><c>mmu_notifier_invalidate_range_start</c> of an owned range to the mm's interval notifiers.</summary>
    public static void Start(Mm mm, ulong start, ulong end, MmuNotifyEvent ev, object? owner)
    {
        if (MmuNotifierSubscriptions.Of(mm) is IMmuNotifier subs)
            subs.InvalidateRangeStart(new MmuNotifierRange(mm, start, end, ev, owner));
    }

    /// <summary><c>mmu_notifier_invalidate_range_end</c>.</summary>
    public static void End(Mm mm, ulong start, ulong end, MmuNotifyEvent ev, object? owner)
    {
        if (MmuNotifierSubscriptions.Of(mm) is IMmuNotifier subs)
            subs.InvalidateRangeEnd(new MmuNotifierRange(mm, start, end, ev, owner));
    }
}
