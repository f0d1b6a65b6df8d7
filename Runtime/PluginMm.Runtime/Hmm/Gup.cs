namespace PluginMm.Runtime.Hmm;

/// <summary>
/// The slice of mm/gup.c that HMM tests need: <c>get_user_pages_remote</c> / <c>pin_user_pages</c> on one page, faulting
/// it in (device-private pages come back to system memory through <c>migrate_to_ram</c>) and, for FOLL_LONGTERM,
/// migrating a device-coherent page out first (<c>check_and_migrate_movable_folios</c>).
/// </summary>
public static class Gup
{
    /// <summary>
    /// Models <c>get_user_page_vma_remote</c>: the page at <paramref name="address"/> with a reference, faulting it in
    /// (writable when <paramref name="write"/>) until <c>follow_page</c> finds it. EFAULT for no VMA, a VMA without the
    /// access, or a fault that fails. The caller holds the mmap read lock (it is held again on return).
    /// </summary>
    public static Errno GetUserPageVmaRemote(Mm mm, ulong address, bool write, ModelTask task, out Folio? page, out Vma? vma)
    {
        ArgumentNullException.ThrowIfNull(mm);
        page = null;
        address &= ~((ulong)Folio.BasePageSize - 1);
        for (int attempt = 0; ; attempt++)
        {
            vma = mm.VmaLookup(address);
            if (vma is null || (vma.Flags & (write ? VmFlags.Write : VmFlags.Read)) == 0)
                return Errno.EFAULT;
            ulong slot = address & ~((ulong)vma.PageSize - 1);
            var table = mm.PageTable.Lookup(slot);
            if (table is not null)
            {
                lock (table.Ptl)
                {
                    Pte pte = table[slot];
                    if (pte.IsPresent && (!write || pte.IsWritable) && !(write && pte.IsZeroPage))
                    {
                        page = pte.IsZeroPage ? mm.Kernel.ZeroFolio.Get() : pte.Folio!.Get();
                        return Errno.None;
                    }
                }
            }
            if (attempt > 64)
                return Errno.EFAULT; // the kernel would loop; a fault that never maps the page is a model bug
            var ret = mm.HandleMmFault(vma, address, FaultFlags.Remote | (write ? FaultFlags.Write : 0), task);
            if ((ret & (VmFaultResult.Retry | VmFaultResult.Completed)) != 0 && !mm.MmapLock.IsReadLockHeld)
                mm.MmapLock.EnterReadLock();
            if ((ret & VmFaultResult.Error) != 0)
                return (ret & VmFaultResult.Oom) != 0 ? Errno.ENOMEM : Errno.EFAULT;
        }
    }

    /// <summary>
    /// Models <c>get_user_pages</c> (<paramref name="longterm"/> false) and <c>pin_user_pages(FOLL_LONGTERM)</c> for one
    /// page: a long-term pin of a device-coherent page first migrates it to system memory
    /// (<c>migrate_device_coherent_folio</c>), since such memory must stay evictable. The page is returned with a reference.
    /// </summary>
    public static Errno GetUserPage(Mm mm, ulong address, bool write, bool longterm, ModelTask task, out Folio? page)
    {
        while (true)
        {
            var e = GetUserPageVmaRemote(mm, address, write, task, out page, out var vma);
            if (e != Errno.None || !longterm || !page!.IsDeviceCoherent)
                return e;
            var coherent = page;
            page = null;
            coherent.Put();
            e = MigrateDeviceCoherentFolio(vma!, address & ~((ulong)Folio.BasePageSize - 1));
            if (e != Errno.None)
                return e;
        }
    }

    /// <summary>
    /// Models <c>migrate_device_coherent_folio</c> (mm/migrate_device.c) for the page mapped at <paramref name="address"/>:
    /// collect it with MIGRATE_VMA_SELECT_DEVICE_COHERENT as its owner would, copy it to a new system page, and finish.
    /// </summary>
    private static Errno MigrateDeviceCoherentFolio(Vma vma, ulong address)
    {
        var pte = vma.Mm.PageTable.Get(address);
        if (!pte.IsPresent || pte.Folio is not { IsDeviceCoherent: true } coherent)
            return Errno.None;
        var args = new MigrateVma(1)
        {
            Vma = vma,
            Start = address,
            End = address + Folio.BasePageSize,
            PgmapOwner = coherent.Pgmap!.Owner,
            Flags = MigrateVmaSelect.DeviceCoherent,
        };
        var e = MigrateDevice.MigrateVmaSetup(args);
        if (e != Errno.None)
            return e;
        if (args.SrcPages[0] is { } src && args.IsMigrating(0))
        {
            var dst = vma.Mm.Kernel.Allocator.Alloc();
            if (dst is null)
                return Errno.ENOMEM;
            dst.Lock();
            src.Data.CopyTo(dst.Data);
            args.SetDst(0, dst, (args.Src[0] & MigratePfn.Write) != 0);
        }
        MigrateDevice.MigrateVmaPages(args);
        MigrateDevice.MigrateVmaFinalize(args);
        return Errno.None;
    }
}
