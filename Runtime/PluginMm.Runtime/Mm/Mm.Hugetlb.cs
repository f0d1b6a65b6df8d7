using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>hugetlb_fault</c> (mm/hugetlb.c): the whole fault at huge-page granularity, under the hugetlb fault mutex
    /// of (file, index). The fault address reported to userfaultfd is the huge-page-aligned address.
    /// </summary>
    private VmFaultResult HugetlbFault(Vma vma, ulong address, FaultFlags flags, ModelTask task)
    {
        ulong hsize = (ulong)vma.PageSize;
        ulong haddr = address & ~(hsize - 1);
        var view = vma.View;
        var vmf = new VmFault(in view, haddr, address, vma.PageIndex(haddr), flags);
        var inode = vma.File!.Inode;
        var mutex = Kernel.HugetlbFaultMutex(inode, vmf.PgOff);
        var table = PageTable.Alloc(haddr);
        mutex.Enter();
        bool held = true;
        try
        {
            Pte orig;
            lock (table.Ptl) orig = table[haddr];
            if ((orig.Flags & PteFlags.MarkerPoisoned) != 0)
                return VmFaultResult.HwPoisonLarge;
            if (orig.IsNone || orig.IsUffdWpMarker)
            {
                if (orig.IsUffdWpMarker && !vma.UffdWp)
                {
                    lock (table.Ptl) table.Clear(haddr);
                    return VmFaultResult.None;
                }
                return HugetlbNoPage(vma, ref vmf, table, orig, task, mutex, ref held);
            }
            if (vmf.IsWrite && orig.IsPresent && !orig.IsWritable)
                return HugetlbWp(vma, ref vmf, table, orig, task, mutex, ref held);
            return VmFaultResult.None;
        }
        finally
        {
            if (held) mutex.Exit();
        }
    }

    /// <summary>
    /// Models <c>hugetlb_no_page</c> (mm/hugetlb.c): absent from the page cache and MISSING-armed → (after re-checking the
    /// entry under the lock, so a completed UFFDIO_COPY does not produce a spurious event) <c>hugetlb_handle_userfault</c>
    /// (MISSING); cached and MINOR-armed → the same for MINOR; otherwise allocate (shared: into the page cache; private:
    /// an anonymous huge folio) or map the cached folio (private write: a CoW copy).
    /// </summary>
    private VmFaultResult HugetlbNoPage(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task, Lock mutex, ref bool held)
    {
        var inode = vma.File!.Inode;
        long idx = vmf.PgOff;
        ulong haddr = vmf.Address;
        if (idx >= inode.PageCount)
            return VmFaultResult.SigBus;

        var folio = inode.Cache.Get(idx);
        bool newAnon = false;
        if (folio is null)
        {
            if (vma.UffdMissing)
                return HugetlbHandleUserfault(vma, ref vmf, table, orig, VmFlags.UffdMissing, task, mutex, ref held);
            folio = Kernel.Allocator.Alloc(vma.PageSize);
            if (folio is null)
                return VmFaultResult.SigBus; // no huge page available: -ENOSPC → VM_FAULT_SIGBUS
            folio.SetFlags(FolioFlags.Uptodate);
            if (vma.IsShared)
            {
                if (inode.Cache.Add(folio, idx) != Errno.None)
                {
                    folio.Put();
                    return VmFaultResult.None; // someone else added it: retry
                }
            }
            else
                newAnon = true;
        }
        else if (vma.UffdMinor)
        {
            folio.Put();
            return HugetlbHandleUserfault(vma, ref vmf, table, orig, VmFlags.UffdMinor, task, mutex, ref held);
        }

        bool vmWrite = (vma.Flags & VmFlags.Write) != 0;
        if (!vma.IsShared && vmf.IsWrite && !newAnon)
        {
            // Private write to a page-cache huge page: copy it (hugetlb_wp on the freshly mapped entry).
            var copy = Kernel.Allocator.Alloc(vma.PageSize);
            if (copy is null)
            {
                folio.Put();
                return VmFaultResult.SigBus;
            }
            folio.Data.CopyTo(copy.Data);
            copy.SetFlags(FolioFlags.Uptodate);
            folio.Put();
            folio = copy;
            newAnon = true;
        }
        var f = PteFlags.Present | PteFlags.Huge;
        if (vmWrite && (vma.IsShared || (newAnon && vmf.IsWrite)))
            f |= PteFlags.Writable;
        if (vmf.IsWrite) f |= PteFlags.Dirty;
        if (orig.IsUffdWpMarker)
            f = (f | PteFlags.UffdWp) & ~PteFlags.Writable;
        // Under the invalidate lock a page-cache folio punched out meanwhile is not mapped (the access retries).
        var invalidate = vma.File!.InvalidateLock;
        invalidate.EnterReadLock();
        try
        {
            lock (table.Ptl)
            {
                if (!SamePte(table[haddr], orig) || (!newAnon && folio.Mapping != inode))
                {
                    folio.Put();
                    return VmFaultResult.None;
                }
                table.Set(haddr, new Pte { Folio = folio, Flags = f });
            }
        }
        finally { invalidate.ExitReadLock(); }
        return VmFaultResult.None;
    }

    /// <summary>
    /// Models <c>hugetlb_handle_userfault</c> (mm/hugetlb.c): re-check the entry under the lock (changed → 0, the
    /// access retries), drop the fault mutex, then <c>handle_userfault</c> with the huge-aligned address.
    /// </summary>
    private VmFaultResult HugetlbHandleUserfault(Vma vma, ref VmFault vmf, PteTable table, Pte orig, VmFlags reason, ModelTask task, Lock mutex, ref bool held)
    {
        lock (table.Ptl)
        {
            if (!SamePte(table[vmf.Address], orig))
                return VmFaultResult.None;
        }
        held = false;
        mutex.Exit();
        return UserfaultfdCtx.HandleUserfault(this, vma, ref vmf, reason, task);
    }

    /// <summary>
    /// Models <c>hugetlb_wp</c> (mm/hugetlb.c): uffd-wp protected → <c>handle_userfault(VM_UFFD_WP)</c> (WP_ASYNC: the bit
    /// is cleared in place instead); shared or an
    /// exclusive anonymous huge folio → make writable; otherwise copy.
    /// </summary>
    private VmFaultResult HugetlbWp(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task, Lock mutex, ref bool held)
    {
        ulong haddr = vmf.Address;
        if (vma.UffdWp && orig.IsUffdWp)
        {
            if (!UserfaultfdCtx.WpAsync(vma))
            {
                held = false;
                mutex.Exit();
                return UserfaultfdCtx.HandleUserfault(this, vma, ref vmf, VmFlags.UffdWp, task);
            }
            // WP_ASYNC: clear the uffd-wp bit in place, then the normal write-fault handling.
            if (!ClearUffdWpAsync(table, haddr, ref orig))
                return VmFaultResult.None;
        }
        var old = orig.Folio!;
        if (vma.IsShared || (old.Mapping is null && old.RefCount == 1))
        {
            lock (table.Ptl)
            {
                ref Pte cur = ref table[haddr];
                if (SamePte(cur, orig) && (vma.IsShared || old.RefCount == 1))
                    cur.Flags |= PteFlags.Writable | PteFlags.Dirty;
            }
            return VmFaultResult.None;
        }
        var copy = Kernel.Allocator.Alloc(vma.PageSize);
        if (copy is null)
            return VmFaultResult.SigBus;
        old.Data.CopyTo(copy.Data);
        copy.SetFlags(FolioFlags.Uptodate);
        InvalidateRangeStart(haddr, haddr + (ulong)vma.PageSize, MmuNotifyEvent.Clear);
        lock (table.Ptl)
        {
            if (!SamePte(table[haddr], orig))
                copy.Put();
            else
            {
                table.Set(haddr, new Pte { Folio = copy, Flags = PteFlags.Present | PteFlags.Huge | PteFlags.Writable | PteFlags.Dirty });
                old.Put();
            }
        }
        InvalidateRangeEnd(haddr, haddr + (ulong)vma.PageSize, MmuNotifyEvent.Clear);
        return VmFaultResult.None;
    }
}
