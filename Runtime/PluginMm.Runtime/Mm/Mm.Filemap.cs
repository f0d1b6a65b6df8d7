namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// <see cref="DoFaultAround"/> under the file's <see cref="MemFile.InvalidateLock"/> (shared), so no folio it finds in
    /// the page cache can be punched out between the lookup and the mapping (<c>filemap_map_pages</c> re-checks
    /// <c>folio-&gt;mapping</c> under the folio lock for the same reason).
    /// </summary>
    private VmFaultResult DoFaultAroundInvalidateSafe(Vma vma, ulong address, PteTable table)
    {
        var l = vma.File!.InvalidateLock;
        l.EnterReadLock();
        try { return DoFaultAround(vma, address, table); }
        finally { l.ExitReadLock(); }
    }

    /// <summary>
    /// <see cref="FinishFault"/> for a folio <c>-&gt;fault</c> found in the page cache (read and shared faults of a page-cache
    /// type): under the file's <see cref="MemFile.InvalidateLock"/> (shared) and the folio lock, a folio that a hole punch,
    /// a truncate or a failed UFFDIO_COPY removed after <c>-&gt;fault</c> returned it is dropped and the access retried
    /// (VM_FAULT_NOPAGE), as the kernel's
    /// <c>finish_fault</c> never maps a folio whose <c>mapping</c> was cleared under its lock. The contract this relies on:
    /// a page-cache type's <c>Fault</c> hands back the cached folio (every type in this repository does).
    /// </summary>
    private VmFaultResult FinishPageCacheFault(Vma vma, ref VmFault vmf, PteTable table, Pte orig, VmFaultResult ret)
    {
        var folio = vmf.Folio!;
        var file = vma.File!;
        if (vma.Type.Backing != Backing.PageCache)
            return FinishFault(vma, ref vmf, table, orig, folio, ret);
        var l = file.InvalidateLock;
        l.EnterReadLock();
        try
        {
            // The folio lock orders this with a UFFDIO_COPY that added the folio and still installs it (and removes it from
            // the page cache again if that fails), as shmem_get_folio_gfp's folio_lock + mapping re-check does.
            if ((ret & VmFaultResult.Locked) == 0)
            {
                folio.Lock();
                ret |= VmFaultResult.Locked;
            }
            if (folio.Mapping != file.Inode)
            {
                folio.Unlock();
                folio.Put();
                vmf.Folio = null;
                return VmFaultResult.NoPage;
            }
            return FinishFault(vma, ref vmf, table, orig, folio, ret);
        }
        finally { l.ExitReadLock(); }
    }

    /// <summary>
    /// Models <c>do_fault_around</c> + <c>filemap_map_pages</c> (mm/memory.c, mm/filemap.c): maps, read-only unless the
    /// mapping is shared and writable, the folios already in the page cache around the faulting address, within the
    /// VMA, the page table and <c>i_size</c>. Returns <see cref="VmFaultResult.NoPage"/> when the faulting page got mapped.
    /// </summary>
    /// <remarks>
    /// Departure: Linux does this only for memory types with <c>vm_ops-&gt;map_pages</c> (shmem yes, guest_memfd no). The
    /// tables have no such hook, so the model applies it to every page-cache type; it only maps folios that are already
    /// cached and never allocates, so a type whose <c>Fault</c> refuses access (guest_memfd without INIT_SHARED) never has
    /// cached folios that fault-around could expose through a user mapping.
    /// </remarks>
    internal VmFaultResult DoFaultAround(Vma vma, ulong address, PteTable table)
    {
        ulong window = (ulong)Kernel.FaultAroundPages * Folio.BasePageSize;
        ulong start = Math.Max(address & ~(window - 1), vma.Start);
        ulong end = Math.Min((address & ~(window - 1)) + window, vma.End);
        ulong tableStart = address & ~(PteTable.Span - 1);
        start = Math.Max(start, tableStart);
        end = Math.Min(end, tableStart + PteTable.Span);
        var inode = vma.File!.Inode;
        long limit = inode.PageCount;
        bool writable = vma.IsShared && (vma.Flags & VmFlags.Write) != 0;
        bool mapped = false;
        for (ulong a = start; a < end; a += Folio.BasePageSize)
        {
            long idx = vma.PageIndex(a);
            if (idx >= limit)
                break;
            var folio = inode.Cache.Get(idx);
            if (folio is null)
                continue;
            if ((folio.Flags & (FolioFlags.Uptodate | FolioFlags.HwPoison)) != FolioFlags.Uptodate)
            {
                folio.Put();
                continue;
            }
            // filemap_map_pages: skip a locked folio (e.g. one UFFDIO_COPY is still installing, and may take back out of the
            // page cache if its install fails) and one no longer in this page cache.
            if (!folio.TryLock())
            {
                folio.Put();
                continue;
            }
            if (folio.Mapping != inode)
            {
                folio.Unlock();
                folio.Put();
                continue;
            }
            lock (table.Ptl)
            {
                if (!table[a].IsNone)
                {
                    folio.Unlock();
                    folio.Put();
                    continue;
                }
                table.Set(a, new Pte { Folio = folio, Flags = PteFlags.Present | (writable ? PteFlags.Writable : 0) });
            }
            folio.Unlock();
            if (a == address) mapped = true;
        }
        return mapped ? VmFaultResult.NoPage : VmFaultResult.None;
    }
}
