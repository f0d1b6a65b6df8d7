namespace PluginMm.Runtime.Hmm;

/// <summary>
/// The non-present page-table entries of ZONE_DEVICE and migration (include/linux/swapops.h): each keeps the page in
/// <see cref="Pte.Folio"/>, <see cref="PteFlags.Writable"/> for the writable variant and <see cref="PteFlags.UffdWp"/> for
/// <c>pte_swp_uffd_wp</c>. A device-private or device-exclusive entry owns a reference and a mapping of its page, as a
/// present entry does; a migration entry owns none (the migration holds the page).
/// </summary>
public static class DevicePte
{
    /// <summary><c>SWP_DEVICE_READ</c> / <c>SWP_DEVICE_WRITE</c>: the page lives in device-private memory.</summary>
    public const PteFlags DevicePrivate = PteFlags.DevicePrivate;

    /// <summary><c>SWP_MIGRATION_READ</c> / <c>SWP_MIGRATION_WRITE</c>: the page is being migrated; an access waits.</summary>
    public const PteFlags Migration = PteFlags.Migration;

    /// <summary><c>SWP_DEVICE_EXCLUSIVE</c>: a device has atomic access; a CPU access restores the present entry.</summary>
    public const PteFlags DeviceExclusive = PteFlags.DeviceExclusive;

    /// <summary>The three kinds.</summary>
    public const PteFlags KindMask = DevicePrivate | Migration | DeviceExclusive;

    /// <summary><c>is_device_private_entry(pte_to_swp_entry(pte))</c>.</summary>
    public static bool IsDevicePrivate(in Pte pte) => !pte.IsPresent && (pte.Flags & DevicePrivate) != 0;

    /// <summary><c>is_migration_entry</c>.</summary>
    public static bool IsMigration(in Pte pte) => !pte.IsPresent && (pte.Flags & Migration) != 0;

    /// <summary><c>is_device_exclusive_entry</c>.</summary>
    public static bool IsDeviceExclusive(in Pte pte) => !pte.IsPresent && (pte.Flags & DeviceExclusive) != 0;

    /// <summary>Any of the three (a non-present entry with a page).</summary>
    public static bool IsDeviceOrMigration(in Pte pte) => !pte.IsPresent && (pte.Flags & KindMask) != 0;

    /// <summary><c>is_writable_device_private_entry</c> / <c>is_writable_migration_entry</c>.</summary>
    public static bool IsWritableEntry(in Pte pte) => (pte.Flags & PteFlags.Writable) != 0;

    /// <summary><c>make_{readable,writable}_device_private_entry</c>, keeping <paramref name="uffdWp"/>.</summary>
    public static Pte MakeDevicePrivate(Folio page, bool writable, bool uffdWp)
        => new() { Folio = page, Flags = DevicePrivate | (writable ? PteFlags.Writable : 0) | (uffdWp ? PteFlags.UffdWp : 0) };

    /// <summary><c>make_{readable,writable}_migration_entry</c>, keeping <paramref name="uffdWp"/> and the dirty bit.</summary>
    public static Pte MakeMigration(Folio page, bool writable, bool uffdWp, bool dirty)
        => new()
        {
            Folio = page,
            Flags = Migration | (writable ? PteFlags.Writable : 0) | (uffdWp ? PteFlags.UffdWp : 0) | (dirty ? PteFlags.Dirty : 0),
        };

    /// <summary><c>make_device_exclusive_entry</c> (writable: the page was mapped writable).</summary>
    public static Pte MakeDeviceExclusive(Folio page, bool writable, bool dirty)
        => new() { Folio = page, Flags = DeviceExclusive | (writable ? PteFlags.Writable : 0) | (dirty ? PteFlags.Dirty : 0) };

    /// <summary><c>pte_swp_uffd_wp</c> of a non-present entry, <c>pte_uffd_wp</c> of a present one.</summary>
    public static bool UffdWp(in Pte pte) => (pte.Flags & PteFlags.UffdWp) != 0;
}
