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
}
