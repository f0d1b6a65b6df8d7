using PluginMm.Hmm;

namespace PluginMm.Runtime.Hmm;

/// <summary><c>make_device_exclusive</c> (mm/rmap.c): giving a device atomic access to one anonymous page.</summary>
public static class DeviceExclusive
{
    /// <summary>
    /// Models <c>make_device_exclusive</c> (Linux 6.18): fault the page in writable (GUP with FOLL_WRITE, which also
    /// restores another device's exclusive entry), refuse non-anonymous and hugetlb folios (EOPNOTSUPP), lock the folio,
    /// raise MMU_NOTIFY_EXCLUSIVE with <paramref name="owner"/>, and replace the still-writable present entry by a
    /// device-exclusive entry (keeping the folio mapped and referenced). Returns the folio locked and with a reference the
    /// caller drops (<c>*foliop</c>). The caller holds the mmap read lock.
    /// </summary>
    public static Errno MakeDeviceExclusive(Mm mm, ulong address, object? owner, ModelTask task, out Folio? folio)
    {
        ArgumentNullException.ThrowIfNull(mm);
        folio = null;
        if (!mm.MmapLock.IsReadLockHeld && !mm.MmapLock.IsWriteLockHeld)
            return Errno.EINVAL;
        address &= ~((ulong)Folio.BasePageSize - 1);
        while (true)
        {
            var e = Gup.GetUserPageVmaRemote(mm, address, write: true, task, out var page, out var vma);
            if (e != Errno.None)
                return e;
            if (page!.Mapping is not null || !vma!.IsAnonymous || vma.IsShared || vma.IsHugetlb || page.IsZoneDevice)
            {
                page.Put();
                return Errno.EOPNOTSUPP;
            }
            page.Lock();
            OwnedInvalidation.Start(mm, address, address + Folio.BasePageSize, MmuNotifyEvent.Exclusive, owner);
            var table = mm.PageTable.Lookup(address);
            bool done = false;
            if (table is not null)
            {
                lock (table.Ptl)
                {
                    Pte pte = table[address];
                    if (pte.IsPresent && ReferenceEquals(pte.Folio, page) && pte.IsWritable)
                    {
                        if ((pte.Flags & PteFlags.Dirty) != 0)
                            page.SetFlags(FolioFlags.Dirty);
                        table.Set(address, DevicePte.MakeDeviceExclusive(page, writable: true, dirty: (pte.Flags & PteFlags.Dirty) != 0));
                        done = true;
                    }
                }
            }
            OwnedInvalidation.End(mm, address, address + Folio.BasePageSize, MmuNotifyEvent.Exclusive, owner);
            if (done)
            {
                folio = page;
                return Errno.None;
            }
            page.Unlock();
            page.Put(); // the entry changed under us: retry
        }
    }
}
