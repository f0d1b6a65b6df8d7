using PluginMm.Hmm;

namespace PluginMm.Runtime.Hmm;

/// <summary>
/// The CPU side of device memory in the fault path (mm/memory.c <c>do_swap_page</c>'s non-swap branches): a fault on a
/// device-private entry calls the page map's <c>migrate_to_ram</c>; on a migration entry it waits for the migration
/// (<c>migration_entry_wait</c>); on a device-exclusive entry it restores the present entry
/// (<c>remove_device_exclusive_entry</c>). <c>handle_pte_fault</c> calls <see cref="TryHandle"/> for every non-present
/// entry.
/// </summary>
public static class DeviceFault
{
    /// <summary>
    /// The device-entry branches of <c>do_swap_page</c>: true (with the result) when the entry at
    /// <paramref name="address"/> is device-private, migration or device-exclusive; false for anything else.
    /// </summary>
    public static bool TryHandle(Vma vma, ulong address, FaultFlags flags, out VmFaultResult result)
    {
        result = VmFaultResult.None;
        if (vma.IsHugetlb)
            return false;
        ulong page = address & ~((ulong)Folio.BasePageSize - 1);
        var table = vma.Mm.PageTable.Lookup(page);
        if (table is null)
            return false;
        Pte orig;
        lock (table.Ptl) orig = table[page];
        if (!DevicePte.IsDeviceOrMigration(orig))
            return false;
        if (DevicePte.IsMigration(orig))
            MigrationEntryWait(table, page, orig);
        else if (DevicePte.IsDeviceExclusive(orig))
            result = RemoveDeviceExclusiveEntry(vma, table, page, orig);
        else
            result = DevicePrivateFault(vma, table, page, address, flags, orig);
        return true;
    }

    /// <summary>
    /// Models <c>migration_entry_wait</c> (mm/migrate.c): sleep until the migrating folio is unlocked (the migration
    /// finished or backed off), then return so the access retries.
    /// </summary>
    private static void MigrationEntryWait(PteTable table, ulong address, Pte orig)
    {
        var folio = orig.Folio!;
        var spin = new SpinWait();
        while (true)
        {
            lock (table.Ptl)
            {
                Pte cur = table[address];
                if (!DevicePte.IsMigration(cur) || !ReferenceEquals(cur.Folio, folio))
                    return;
            }
            if (!folio.IsLocked)
                return;
            spin.SpinOnce();
        }
    }

    /// <summary>
    /// Models the device-private branch of <c>do_swap_page</c>: under the page-table lock re-check the entry, trylock the
    /// page (busy → retry), take a reference, and call <c>pgmap-&gt;ops-&gt;migrate_to_ram(vmf)</c> with <c>vmf-&gt;page</c> set;
    /// then unlock and release the page.
    /// </summary>
    private static unsafe VmFaultResult DevicePrivateFault(Vma vma, PteTable table, ulong page, ulong address, FaultFlags flags, Pte orig)
    {
        var dpage = orig.Folio!;
        lock (table.Ptl)
        {
            if (!SamePte(table[page], orig))
                return VmFaultResult.None;
            if (!dpage.TryLock())
                return VmFaultResult.None;
            dpage.Get();
        }
        var view = new VmaView(vma.Start, vma.End, vma.Flags, vma.PgOff, vma.File?.Inode, vma.PageShift, vma.Mm.Kernel.Allocator, vma);
        var vmf = new VmFault(in view, page, address, vma.PageIndex(page), flags) { Folio = dpage };
        VmFaultResult ret;
        try
        {
            ret = dpage.Pgmap!.Ops.MigrateToRam(ref vmf);
        }
        finally
        {
            dpage.Unlock();
            dpage.Put();
        }
        return ret;
    }

    /// <summary>
    /// Models <c>remove_device_exclusive_entry</c> + <c>restore_exclusive_pte</c> (mm/memory.c): under an
    /// MMU_NOTIFY_CLEAR invalidation (so the device drops its atomic mapping) and the folio lock, the entry becomes the
    /// present entry again: uffd-wp kept, writable when the VMA is and the folio exclusively ours.
    /// </summary>
    private static VmFaultResult RemoveDeviceExclusiveEntry(Vma vma, PteTable table, ulong page, Pte orig)
    {
        var folio = orig.Folio!;
        if (folio.RefCount == 0)
            return VmFaultResult.None;
        folio.Get();
        folio.Lock();
        var mm = vma.Mm;
        OwnedInvalidation.Start(mm, page, page + Folio.BasePageSize, MmuNotifyEvent.Clear, null);
        lock (table.Ptl)
        {
            if (SamePte(table[page], orig))
                table.Set(page, RestoredExclusivePte(vma, folio, orig));
        }
        folio.Unlock();
        folio.Put();
        OwnedInvalidation.End(mm, page, page + Folio.BasePageSize, MmuNotifyEvent.Clear, null);
        return VmFaultResult.None;
    }

    /// <summary>
    /// Models <c>restore_exclusive_pte</c>: the present entry for a device-exclusive one (the entry's reference carries over).
    /// Writable when the VMA has VM_WRITE, the exclusive entry was writable and the folio has no other user
    /// (<c>can_change_pte_writable</c>).
    /// </summary>
    internal static Pte RestoredExclusivePte(Vma vma, Folio folio, in Pte orig)
    {
        var f = PteFlags.Present;
        if (DevicePte.UffdWp(orig))
            f |= PteFlags.UffdWp;
        else if ((vma.Flags & VmFlags.Write) != 0 && DevicePte.IsWritableEntry(orig) && folio.RefCount <= 2)
        {
            f |= PteFlags.Writable;
            if ((orig.Flags & PteFlags.Dirty) != 0 || (folio.Flags & FolioFlags.Dirty) != 0)
                f |= PteFlags.Dirty;
        }
        return new Pte { Folio = folio, Flags = f };
    }

    internal static bool SamePte(in Pte a, in Pte b) => a.Flags == b.Flags && ReferenceEquals(a.Folio, b.Folio);
}
