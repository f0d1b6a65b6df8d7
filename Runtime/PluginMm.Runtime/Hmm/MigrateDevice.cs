using PluginMm.Hmm;

namespace PluginMm.Runtime.Hmm;

/// <summary>Which pages <c>migrate_vma_setup</c> collects (<c>enum migrate_vma_direction</c>, include/linux/migrate.h).</summary>
[Flags]
public enum MigrateVmaSelect
{
    /// <summary><c>MIGRATE_VMA_SELECT_SYSTEM</c>: system memory (and empty or zero-page entries of anonymous VMAs).</summary>
    System = 1 << 0,
    /// <summary><c>MIGRATE_VMA_SELECT_DEVICE_PRIVATE</c>: device-private pages of <see cref="MigrateVma.PgmapOwner"/>.</summary>
    DevicePrivate = 1 << 1,
    /// <summary><c>MIGRATE_VMA_SELECT_DEVICE_COHERENT</c>: device-coherent pages of <see cref="MigrateVma.PgmapOwner"/>.</summary>
    DeviceCoherent = 1 << 2,
}

/// <summary>The bits of a migrate pfn word (<c>MIGRATE_PFN_*</c>, include/linux/migrate.h); the page itself is beside it.</summary>
public static class MigratePfn
{
    /// <summary><c>MIGRATE_PFN_VALID</c>: a page is set (<see cref="MigrateVma.SrcPages"/> / <see cref="MigrateVma.DstPages"/>).</summary>
    public const ulong Valid = 1UL << 0;
    /// <summary><c>MIGRATE_PFN_MIGRATE</c>: the entry is (still) being migrated.</summary>
    public const ulong Migrate = 1UL << 1;
    /// <summary><c>MIGRATE_PFN_WRITE</c>: the mapping was (src) or is to be (dst) writable.</summary>
    public const ulong Write = 1UL << 3;
}

/// <summary>
/// A migration request (<c>struct migrate_vma</c>, include/linux/migrate.h): the driver fills Vma, Start, End, PgmapOwner,
/// Flags and FaultPage; <see cref="MigrateDevice.MigrateVmaSetup"/> fills <see cref="Src"/> / <see cref="SrcPages"/>; the
/// driver allocates and copies, filling <see cref="Dst"/> / <see cref="DstPages"/> with <see cref="SetDst"/>. The model
/// has no pfns: each word keeps the <see cref="MigratePfn"/> bits and the page sits at the same index beside it.
/// </summary>
public sealed class MigrateVma
{
    /// <summary>Creates a request with room for <paramref name="maxPages"/> pages (dmirror uses 64).</summary>
    public MigrateVma(int maxPages)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPages);
        Src = new ulong[maxPages];
        Dst = new ulong[maxPages];
        SrcPages = new Folio?[maxPages];
        DstPages = new Folio?[maxPages];
        Others = new (Mm, ulong)[]?[maxPages];
    }

    /// <summary><c>vma</c> (null for <c>migrate_device_range</c>).</summary>
    public Vma? Vma { get; set; }

    /// <summary><c>start</c>.</summary>
    public ulong Start { get; set; }

    /// <summary><c>end</c>.</summary>
    public ulong End { get; set; }

    /// <summary><c>pgmap_owner</c>.</summary>
    public object? PgmapOwner { get; set; }

    /// <summary><c>flags</c>.</summary>
    public MigrateVmaSelect Flags { get; set; }

    /// <summary><c>fault_page</c>: the locked device-private page a <c>migrate_to_ram</c> was called for, or null.</summary>
    public Folio? FaultPage { get; set; }

    /// <summary><c>src</c>.</summary>
    public ulong[] Src { get; }

    /// <summary><c>dst</c>.</summary>
    public ulong[] Dst { get; }

    /// <summary><c>migrate_pfn_to_page(src[i])</c>.</summary>
    public Folio?[] SrcPages { get; }

    /// <summary><c>migrate_pfn_to_page(dst[i])</c>.</summary>
    public Folio?[] DstPages { get; }

    /// <summary><c>cpages</c>: pages collected.</summary>
    public long CPages { get; internal set; }

    /// <summary><c>npages</c>: pages walked.</summary>
    public long NPages { get; internal set; }

    /// <summary>Migration entries <c>try_to_migrate</c> set in other places (other mms) for entry i.</summary>
    internal (Mm Mm, ulong Address)[]?[] Others { get; }

    /// <summary>Sets <c>dst[i] = migrate_pfn(page_to_pfn(page)) | (writable ? MIGRATE_PFN_WRITE : 0)</c>.</summary>
    public void SetDst(int i, Folio page, bool writable)
    {
        ArgumentNullException.ThrowIfNull(page);
        DstPages[i] = page;
        Dst[i] = MigratePfn.Valid | (writable ? MigratePfn.Write : 0);
    }

    /// <summary>Whether entry i is still being migrated (<c>src[i] &amp; MIGRATE_PFN_MIGRATE</c>).</summary>
    public bool IsMigrating(int i) => (Src[i] & MigratePfn.Migrate) != 0;

    internal void Reset(int n)
    {
        Array.Clear(Src, 0, n);
        Array.Clear(Dst, 0, n);
        Array.Clear(SrcPages, 0, n);
        Array.Clear(DstPages, 0, n);
        Array.Clear(Others, 0, n);
        CPages = 0;
        NPages = 0;
    }
}

/// <summary>
/// mm/migrate_device.c: migrating a range of one VMA between system and device memory
/// (<c>migrate_vma_setup</c> → driver copies → <c>migrate_vma_pages</c> → <c>migrate_vma_finalize</c>) and evicting a
/// page map's pages (<c>migrate_device_range</c> / <c>migrate_device_pages</c> / <c>migrate_device_finalize</c>).
/// </summary>
/// <remarks>
/// Departures: no THP (every page is a base page); the model keeps a reverse map only for device pages
/// (<see cref="DeviceRmap"/>), so a system page still referenced elsewhere (mapped in a forked child, pinned) fails
/// <c>migrate_vma_check_page</c> and is restored, where the kernel's <c>try_to_migrate</c> would unmap the other mappings;
/// only anonymous memory migrates to device memory (as in the kernel: <c>__migrate_device_pages</c> refuses page-cache
/// folios).
/// </remarks>
public static class MigrateDevice
{
    /// <summary>
    /// Models <c>migrate_vma_setup</c>: checks the request (EINVAL for no VMA, a hugetlb or VM_IO/VM_PFNMAP VMA, an empty
    /// range or one outside the VMA, a range larger than the arrays, a fault page that is not a locked device-private
    /// page), then collects (<c>migrate_vma_collect</c>: an MMU_NOTIFY_MIGRATE invalidation with the owner, each selected
    /// page referenced, locked and replaced by a migration entry) and unmaps (<c>migrate_vma_unmap</c>: other mappings of
    /// device pages too; pages that cannot migrate are restored). The caller holds the mmap read lock.
    /// </summary>
    public static Errno MigrateVmaSetup(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        const ulong mask = Folio.BasePageSize - 1;
        var vma = args.Vma;
        args.Start &= ~mask;
        args.End &= ~mask;
        if (vma is null || vma.IsHugetlb || (vma.Flags & (VmFlags.IO | VmFlags.PfnMap)) != 0)
            return Errno.EINVAL;
        if (args.End <= args.Start)
            return Errno.EINVAL;
        if (args.Start < vma.Start || args.Start >= vma.End || args.End <= vma.Start || args.End > vma.End)
            return Errno.EINVAL;
        long nrPages = (long)((args.End - args.Start) >> Folio.BasePageShift);
        if (nrPages > args.Src.Length)
            return Errno.EINVAL; // args->src / args->dst too small
        if (args.FaultPage is { } fp && (!fp.IsDevicePrivate || !fp.IsLocked))
            return Errno.EINVAL;
        if (!vma.Mm.MmapLock.IsReadLockHeld && !vma.Mm.MmapLock.IsWriteLockHeld)
            return Errno.EINVAL; // mmap_assert_locked
        args.Reset((int)nrPages);
        Collect(args);
        if (args.CPages != 0)
            Unmap(args, args.FaultPage);
        return Errno.None;
    }

    /// <summary>Models <c>migrate_vma_collect</c> + <c>migrate_vma_collect_pmd</c>.</summary>
    private static void Collect(MigrateVma args)
    {
        var vma = args.Vma!;
        var mm = vma.Mm;
        OwnedInvalidation.Start(mm, args.Start, args.End, MmuNotifyEvent.Migrate, args.PgmapOwner);
        for (ulong addr = args.Start; addr < args.End; addr += Folio.BasePageSize)
        {
            int i = (int)args.NPages++;
            var table = mm.PageTable.Lookup(addr);
            if (table is null)
            {
                if (vma.IsAnonymous && !vma.IsShared)
                {
                    args.Src[i] = MigratePfn.Migrate;
                    args.CPages++;
                }
                continue;
            }
            lock (table.Ptl)
                CollectPte(args, vma, table, addr, i);
        }
        OwnedInvalidation.End(mm, args.Start, args.End, MmuNotifyEvent.Migrate, args.PgmapOwner);
        args.End = args.Start + ((ulong)args.NPages << Folio.BasePageShift);
    }

    /// <summary>One entry of <c>migrate_vma_collect_pmd</c> (page-table lock held).</summary>
    private static void CollectPte(MigrateVma args, Vma vma, PteTable table, ulong addr, int i)
    {
        Pte pte = table[addr];
        ulong mpfn;
        if (pte.IsNone)
        {
            // MAP_SHARED|MAP_ANONYMOUS is shmem in the kernel: not vma_is_anonymous, so nothing to collect.
            if (vma.IsAnonymous && !vma.IsShared)
            {
                args.Src[i] = MigratePfn.Migrate;
                args.CPages++;
            }
            return;
        }
        Folio page;
        if (!pte.IsPresent)
        {
            // Only device-private entries are migratable; markers and other swap entries are skipped.
            if (!DevicePte.IsDevicePrivate(pte))
                return;
            page = pte.Folio!;
            if ((args.Flags & MigrateVmaSelect.DevicePrivate) == 0 || !ReferenceEquals(page.Pgmap!.Owner, args.PgmapOwner))
                return;
            mpfn = MigratePfn.Valid | MigratePfn.Migrate | (DevicePte.IsWritableEntry(pte) ? MigratePfn.Write : 0);
        }
        else
        {
            if (pte.IsZeroPage)
            {
                if ((args.Flags & MigrateVmaSelect.System) != 0)
                {
                    args.Src[i] = MigratePfn.Migrate;
                    args.CPages++;
                }
                return;
            }
            page = pte.Folio!;
            if (!page.IsZoneDevice && (args.Flags & MigrateVmaSelect.System) == 0)
                return;
            if (page.IsDeviceCoherent && ((args.Flags & MigrateVmaSelect.DeviceCoherent) == 0 || !ReferenceEquals(page.Pgmap!.Owner, args.PgmapOwner)))
                return;
            if (vma.IsShared)
                return; // shared pages are page-cache pages (shmem): the kernel collects them, then __migrate_device_pages refuses them; the model skips them here
            mpfn = MigratePfn.Valid | MigratePfn.Migrate | (pte.IsWritable ? MigratePfn.Write : 0);
        }

        // folio_get pins the folio (and freezes the entry); folio_trylock avoids deadlocks between migrations.
        page.Get();
        if (!ReferenceEquals(page, args.FaultPage) && !page.TryLock())
        {
            page.Put();
            return;
        }
        table.Set(addr, DevicePte.MakeMigration(page, (mpfn & MigratePfn.Write) != 0, DevicePte.UffdWp(pte), (pte.Flags & PteFlags.Dirty) != 0));
        if ((pte.Flags & PteFlags.Dirty) != 0)
            page.SetFlags(FolioFlags.Dirty);
        DeviceRmap.Remove(page, vma.Mm, addr);
        page.Put(); // the entry's reference: the migration entry holds none
        args.CPages++;
        args.Src[i] = mpfn;
        args.SrcPages[i] = page;
    }

    /// <summary>
    /// Models <c>migrate_device_unmap</c>: <c>try_to_migrate</c> the remaining mappings of device pages, then
    /// <c>migrate_vma_check_page</c>; what cannot migrate is restored (<c>remove_migration_ptes(folio, folio)</c>).
    /// </summary>
    private static void Unmap(MigrateVma args, Folio? faultPage)
    {
        int n = (int)args.NPages;
        bool restore = false;
        for (int i = 0; i < n; i++)
        {
            var page = args.SrcPages[i];
            if (page is null)
                continue;
            if (page.IsZoneDevice)
                TryToMigrate(args, i, page);
            int extra = 1 + (ReferenceEquals(page, faultPage) ? 1 : 0);
            if (page.RefCount - extra > 0)
            {
                // Still referenced elsewhere (another mapping the model cannot unmap, a pin): not migratable.
                args.Src[i] &= ~MigratePfn.Migrate;
                restore = true;
            }
        }
        if (!restore)
            return;
        for (int i = 0; i < n; i++)
        {
            var page = args.SrcPages[i];
            if (page is null || (args.Src[i] & MigratePfn.Migrate) != 0)
                continue;
            RemoveMigrationPtes(args, i, page, page);
            args.Src[i] = 0;
            args.SrcPages[i] = null;
            if (!ReferenceEquals(page, faultPage))
                page.Unlock();
            page.Put();
        }
    }

    /// <summary>
    /// Models <c>try_to_migrate</c> (mm/rmap.c) for a device page: every other mapping becomes a migration entry, each
    /// under an MMU_NOTIFY_MIGRATE invalidation without owner (so every mirror, the owner's too, drops it).
    /// </summary>
    private static void TryToMigrate(MigrateVma args, int i, Folio page)
    {
        var others = DeviceRmap.Mappings(page);
        if (others.Length == 0)
            return;
        var done = new List<(Mm, ulong)>();
        foreach (var (mm, addr) in others)
        {
            var table = mm.PageTable.Lookup(addr);
            if (table is null)
                continue;
            OwnedInvalidation.Start(mm, addr, addr + Folio.BasePageSize, MmuNotifyEvent.Migrate, null);
            lock (table.Ptl)
            {
                Pte pte = table[addr];
                if (ReferenceEquals(pte.Folio, page) && (pte.IsPresent || DevicePte.IsDevicePrivate(pte)))
                {
                    bool writable = pte.IsPresent ? pte.IsWritable : DevicePte.IsWritableEntry(pte);
                    table.Set(addr, DevicePte.MakeMigration(page, writable, DevicePte.UffdWp(pte), (pte.Flags & PteFlags.Dirty) != 0));
                    DeviceRmap.Remove(page, mm, addr);
                    page.Put();
                    done.Add((mm, addr));
                }
            }
            OwnedInvalidation.End(mm, addr, addr + Folio.BasePageSize, MmuNotifyEvent.Migrate, null);
        }
        args.Others[i] = done.ToArray();
    }

    /// <summary>
    /// Models <c>migrate_vma_pages</c> / <c>migrate_device_pages</c> (<c>__migrate_device_pages</c>): for each entry still
    /// migrating, an empty or zero-page source gets <c>migrate_vma_insert_page</c>; a page-cache source going to device
    /// memory, a missing destination, or a source referenced since the unmap (<c>folio_migrate_mapping</c>: -EAGAIN) stops
    /// migrating. The caller copied the data already.
    /// </summary>
    public static void MigrateVmaPages(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        bool notified = false;
        ulong notifyStart = 0;
        int n = (int)args.NPages;
        for (int i = 0; i < n; i++)
        {
            var newPage = args.DstPages[i];
            var page = args.SrcPages[i];
            if (newPage is null)
            {
                args.Src[i] &= ~MigratePfn.Migrate;
                continue;
            }
            if (page is null)
            {
                if ((args.Src[i] & MigratePfn.Migrate) == 0)
                    continue;
                var vma = args.Vma!;
                ulong addr = args.Start + ((ulong)i << Folio.BasePageShift);
                if (!notified)
                {
                    notified = true;
                    notifyStart = addr;
                    OwnedInvalidation.Start(vma.Mm, addr, args.End, MmuNotifyEvent.Migrate, args.PgmapOwner);
                }
                InsertPage(args, vma, addr, newPage, i);
                continue;
            }
            if ((args.Src[i] & MigratePfn.Migrate) == 0)
                continue;
            if (newPage.IsZoneDevice && page.Mapping is not null)
            {
                args.Src[i] &= ~MigratePfn.Migrate; // only anonymous memory migrates to device memory
                continue;
            }
            int extra = args.FaultPage is not null && ReferenceEquals(args.FaultPage, page) ? 1 : 0;
            if (page.RefCount != 1 + extra)
            {
                args.Src[i] &= ~MigratePfn.Migrate; // folio_migrate_mapping: -EAGAIN
                continue;
            }
            // folio_migrate_flags
            if ((page.Flags & FolioFlags.Dirty) != 0)
                newPage.SetFlags(FolioFlags.Dirty);
            newPage.SetFlags(FolioFlags.Uptodate);
        }
        if (notified)
            OwnedInvalidation.End(args.Vma!.Mm, notifyStart, args.End, MmuNotifyEvent.Migrate, args.PgmapOwner);
    }

    /// <summary>Models <c>migrate_device_pages</c>: <see cref="MigrateVmaPages"/> without a VMA (eviction).</summary>
    public static void MigrateDevicePages(MigrateVma args) => MigrateVmaPages(args);

    /// <summary>
    /// Models <c>migrate_vma_insert_page</c>: map a new page where the entry was empty or the zero page, in an anonymous
    /// VMA; backs off (stops migrating) if the entry changed, or when the VMA is userfaultfd-MISSING-registered
    /// ("check for userfaultfd but do not deliver the fault").
    /// </summary>
    private static void InsertPage(MigrateVma args, Vma vma, ulong addr, Folio page, int i)
    {
        if (!vma.IsAnonymous || vma.IsShared || (page.IsZoneDevice && !page.IsDevicePrivate && !page.IsDeviceCoherent))
        {
            args.Src[i] &= ~MigratePfn.Migrate;
            return;
        }
        bool vmWrite = (vma.Flags & VmFlags.Write) != 0;
        Pte entry = page.IsDevicePrivate
            ? DevicePte.MakeDevicePrivate(page, vmWrite, uffdWp: false)
            : new Pte { Folio = page, Flags = PteFlags.Present | (vmWrite ? PteFlags.Writable | PteFlags.Dirty : 0) };
        var mm = vma.Mm;
        var table = mm.PageTable.Alloc(addr);
        lock (table.Ptl)
        {
            Pte orig = table[addr];
            bool ok = orig.IsPresent ? orig.IsZeroPage : orig.IsNone;
            if (!ok || mm.Exited || vma.UffdMissing)
            {
                args.Src[i] &= ~MigratePfn.Migrate;
                return;
            }
            page.Get();
            table.Set(addr, entry);
            DeviceRmap.Add(page, mm, addr);
        }
        args.Src[i] = MigratePfn.Migrate;
    }

    /// <summary>
    /// Models <c>migrate_vma_finalize</c> / <c>migrate_device_finalize</c>: replace each migration entry with the new page
    /// (or the old one where the migration stopped), unlock and release both.
    /// </summary>
    public static void MigrateVmaFinalize(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        int n = (int)args.NPages;
        for (int i = 0; i < n; i++)
        {
            var dst = args.DstPages[i];
            var src = args.SrcPages[i];
            if (src is null)
            {
                if (dst is not null)
                {
                    dst.Unlock();
                    dst.Put();
                }
                continue;
            }
            if ((args.Src[i] & MigratePfn.Migrate) == 0 || dst is null)
            {
                if (dst is not null)
                {
                    dst.Unlock();
                    dst.Put();
                }
                dst = src;
            }
            RemoveMigrationPtes(args, i, src, dst);
            if (!ReferenceEquals(src, args.FaultPage))
                src.Unlock();
            src.Put();
            if (!ReferenceEquals(dst, src))
            {
                dst.Unlock();
                dst.Put();
            }
        }
    }

    /// <summary>Models <c>migrate_device_finalize</c>.</summary>
    public static void MigrateDeviceFinalize(MigrateVma args) => MigrateVmaFinalize(args);

    /// <summary>
    /// Models <c>remove_migration_ptes(src, dst)</c> / <c>remove_migration_pte</c> for the places entry i was migrated from:
    /// each migration entry for <paramref name="src"/> becomes a mapping of <paramref name="dst"/>: device-private entry,
    /// or present entry (writable if the migration entry was; else keeping uffd-wp), with a reference.
    /// </summary>
    private static void RemoveMigrationPtes(MigrateVma args, int i, Folio src, Folio dst)
    {
        if (args.Vma is { } vma)
            RemoveMigrationPte(vma.Mm, args.Start + ((ulong)i << Folio.BasePageShift), src, dst);
        if (args.Others[i] is { } others)
            foreach (var (mm, addr) in others)
                RemoveMigrationPte(mm, addr, src, dst);
        // Copies fork made of those entries meanwhile (registered under the copied entry's page-table lock, so before the
        // replacement above); a copy of a copy registers too, hence the loop.
        for (var copies = DeviceRmap.TakeMigrationCopies(src); copies.Length != 0; copies = DeviceRmap.TakeMigrationCopies(src))
            foreach (var (mm, addr) in copies)
                RemoveMigrationPte(mm, addr, src, dst);
    }

    private static void RemoveMigrationPte(Mm mm, ulong addr, Folio src, Folio dst)
    {
        var table = mm.PageTable.Lookup(addr);
        if (table is null)
            return;
        lock (table.Ptl)
        {
            Pte old = table[addr];
            if (!DevicePte.IsMigration(old) || !ReferenceEquals(old.Folio, src))
                return; // zapped meanwhile
            bool writable = DevicePte.IsWritableEntry(old);
            bool uffdWp = DevicePte.UffdWp(old);
            Pte entry;
            if (dst.IsDevicePrivate)
                entry = DevicePte.MakeDevicePrivate(dst, writable, uffdWp);
            else
            {
                var f = PteFlags.Present;
                if (writable)
                    f |= PteFlags.Writable;
                else if (uffdWp)
                    f |= PteFlags.UffdWp;
                if ((old.Flags & PteFlags.Dirty) != 0 && (dst.Flags & FolioFlags.Dirty) != 0)
                    f |= PteFlags.Dirty;
                entry = new Pte { Folio = dst, Flags = f };
            }
            dst.Get();
            table.Set(addr, entry);
            DeviceRmap.Add(dst, mm, addr);
        }
    }

    /// <summary>
    /// Models <c>migrate_device_range</c> (+ <c>migrate_device_pfn_lock</c>): select pages [<paramref name="first"/>,
    /// <paramref name="first"/> + <paramref name="count"/>) of <paramref name="pgmap"/> that are in use, lock them and unmap
    /// them everywhere (<c>migrate_device_unmap</c>). Free pages are skipped.
    /// </summary>
    public static Errno MigrateDeviceRange(MigrateVma args, DevPagemap pgmap, int first, int count)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(pgmap);
        if (first < 0 || count <= 0 || first + count > pgmap.NrPages || count > args.Src.Length)
            return Errno.EINVAL;
        args.Vma = null;
        args.FaultPage = null;
        args.Reset(count);
        args.NPages = count;
        var pages = pgmap.Pages;
        for (int i = 0; i < count; i++)
        {
            var page = pages[first + i];
            if (!TryGet(page))
                continue; // free: folio_try_get failed
            page.Lock();
            args.Src[i] = MigratePfn.Valid | MigratePfn.Migrate;
            args.SrcPages[i] = page;
            args.CPages++;
        }
        Unmap(args, null);
        return Errno.None;
    }

    /// <summary><c>folio_try_get</c>: a reference unless the page is free (count 0).</summary>
    private static bool TryGet(Folio page)
    {
        if (page.RefCount == 0)
            return false;
        try
        {
            page.Get();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false; // freed concurrently
        }
    }

    /// <summary>Pages whose migration completed (dmirror's <c>dmirror_successful_migrated_pages</c>: VALID and MIGRATE).</summary>
    public static long SuccessfullyMigrated(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        long c = 0;
        for (int i = 0; i < args.NPages; i++)
            if ((args.Src[i] & (MigratePfn.Valid | MigratePfn.Migrate)) == (MigratePfn.Valid | MigratePfn.Migrate))
                c++;
        return c;
    }
}
