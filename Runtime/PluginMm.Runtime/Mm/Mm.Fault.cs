using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>handle_mm_fault</c> (mm/memory.c): resolves a fault at <paramref name="address"/> in <paramref name="vma"/>
    /// on behalf of <paramref name="task"/>. The caller holds the mmap read lock. When the result has
    /// <see cref="VmFaultResult.Retry"/> (and <paramref name="flags"/> lacks <see cref="FaultFlags.RetryNoWait"/>) or
    /// <see cref="VmFaultResult.Completed"/>, the lock has been released, as in the kernel.
    /// </summary>
    /// <remarks>
    /// This is the hook point for callers that choose their own flags: the user-mode access path passes
    /// <see cref="FaultFlags.UserDefault"/>; HMM (<c>hmm_vma_fault</c>) passes <see cref="FaultFlags.Remote"/> without
    /// <see cref="FaultFlags.AllowRetry"/>, so an armed userfault returns <see cref="VmFaultResult.SigBus"/> instead of blocking.
    /// </remarks>
    public VmFaultResult HandleMmFault(Vma vma, ulong address, FaultFlags flags, ModelTask task)
    {
        // sanitize_fault_flags + the arch access_error check: a write needs VM_WRITE.
        if ((flags & FaultFlags.Write) != 0 && (vma.Flags & VmFlags.Write) == 0)
            return VmFaultResult.SigSegv;
        if (Kernel.Design == FaultPathDesign.RfcRetval)
            flags |= FaultFlags.UffdRetval;
        if (vma.IsHugetlb)
            return HugetlbFault(vma, address, flags, task);
        return HandlePteFault(vma, address, flags, task);
    }

    /// <summary>Models <c>handle_pte_fault</c> (mm/memory.c).</summary>
    private VmFaultResult HandlePteFault(Vma vma, ulong address, FaultFlags flags, ModelTask task)
    {
        ulong page = address & ~((ulong)Folio.BasePageSize - 1);
        var table = PageTable.Alloc(page);
        Pte orig;
        lock (table.Ptl) orig = table[page];
        var view = vma.View;
        var vmf = new VmFault(in view, page, address, vma.PageIndex(page), flags);

        if (orig.IsNone)
            return DoPteMissing(vma, ref vmf, table, orig, task);
        if (!orig.IsPresent)
            return HandlePteMarker(vma, ref vmf, table, orig, task);

        bool write = (flags & FaultFlags.Write) != 0;
        lock (table.Ptl)
        {
            ref Pte cur = ref table[page];
            if (!SamePte(cur, orig))
                return VmFaultResult.None; // raced: let the access retry
            if (!write)
                return VmFaultResult.None; // spurious
            if (orig.IsWritable)
            {
                cur.Flags |= PteFlags.Dirty;
                return VmFaultResult.None;
            }
        }
        return DoWpPage(vma, ref vmf, table, orig, task);
    }

    private static bool SamePte(in Pte a, in Pte b) => a.Flags == b.Flags && ReferenceEquals(a.Folio, b.Folio);

    /// <summary>Models <c>do_pte_missing</c> (mm/memory.c).</summary>
    private VmFaultResult DoPteMissing(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task)
        => vma.IsAnonymous ? DoAnonymousPage(vma, ref vmf, table, orig, task) : DoFault(vma, ref vmf, table, orig, task);

    /// <summary>
    /// Models <c>handle_pte_marker</c> (mm/memory.c): POISONED → VM_FAULT_HWPOISON; GUARD → SIGSEGV; a uffd-wp marker
    /// in a VMA no longer WP-registered is cleared and the fault retried, else it is handled as a missing entry
    /// (the new entry inherits the uffd-wp bit).
    /// </summary>
    private VmFaultResult HandlePteMarker(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task)
    {
        if ((orig.Flags & PteFlags.MarkerPoisoned) != 0)
            return VmFaultResult.HwPoison;
        if ((orig.Flags & PteFlags.MarkerGuard) != 0)
            return VmFaultResult.SigSegv;
        if (orig.IsUffdWpMarker && !vma.UffdWp)
        {
            lock (table.Ptl)
            {
                if (SamePte(table[vmf.Address], orig))
                    table.Clear(vmf.Address);
            }
            return VmFaultResult.None;
        }
        return DoPteMissing(vma, ref vmf, table, orig, task);
    }

    /// <summary>
    /// Models <c>do_anonymous_page</c> (mm/memory.c): a read maps the shared zero page unless the VMA is MISSING-armed;
    /// a write allocates a zeroed folio, then under the page-table lock traps to userfaultfd (freeing the folio) when
    /// MISSING-armed, else maps it.
    /// </summary>
    private VmFaultResult DoAnonymousPage(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task)
    {
        if (vma.IsShared)
            return VmFaultResult.SigBus; // VM_SHARED without vm_ops
        ulong addr = vmf.Address;
        PteFlags wp = orig.IsUffdWpMarker ? PteFlags.UffdWp : PteFlags.None;

        if (!vmf.IsWrite)
        {
            bool trap = false;
            lock (table.Ptl)
            {
                if (!SamePte(table[addr], orig))
                    return VmFaultResult.None;
                if (vma.UffdMissing)
                    trap = true;
                else
                    table.Set(addr, new Pte { Flags = PteFlags.Present | PteFlags.ZeroPage | wp });
            }
            return trap ? UserfaultfdCtx.HandleUserfault(this, vma, ref vmf, VmFlags.UffdMissing, task) : VmFaultResult.None;
        }

        var folio = Kernel.Allocator.Alloc();
        if (folio is null)
            return VmFaultResult.Oom;
        folio.SetFlags(FolioFlags.Uptodate);
        bool armed = false;
        lock (table.Ptl)
        {
            if (!SamePte(table[addr], orig))
            {
                folio.Put();
                return VmFaultResult.None;
            }
            if (vma.UffdMissing)
                armed = true;
            else
            {
                var f = PteFlags.Present | PteFlags.Dirty | wp;
                if ((vma.Flags & VmFlags.Write) != 0 && wp == 0) f |= PteFlags.Writable;
                table.Set(addr, new Pte { Folio = folio, Flags = f });
            }
        }
        if (armed)
        {
            folio.Put();
            return UserfaultfdCtx.HandleUserfault(this, vma, ref vmf, VmFlags.UffdMissing, task);
        }
        return VmFaultResult.None;
    }

    /// <summary>Models <c>do_fault</c> (mm/memory.c): dispatches to the read, CoW or shared fault.</summary>
    private VmFaultResult DoFault(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task)
    {
        if (vma.Type.VmOps.FaultIsNull())
            return VmFaultResult.SigBus;
        if (!vmf.IsWrite)
            return DoReadFault(vma, ref vmf, table, orig, task);
        if (!vma.IsShared)
            return DoCowFault(vma, ref vmf, table, orig, task);
        return DoSharedFault(vma, ref vmf, table, orig, task);
    }

    /// <summary>Models <c>do_read_fault</c> (mm/memory.c).</summary>
    private VmFaultResult DoReadFault(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task)
    {
        if (ShouldFaultAround(vma) && orig.IsNone)
        {
            var r = DoFaultAroundInvalidateSafe(vma, vmf.Address, table);
            if (r != VmFaultResult.None)
                return r;
        }
        var ret = DoFaultCore(vma, ref vmf, task);
        if ((ret & (VmFaultResult.Error | VmFaultResult.NoPage | VmFaultResult.Retry | VmFaultResult.Completed)) != 0)
            return ret;
        return FinishPageCacheFault(vma, ref vmf, table, orig, ret);
    }

    /// <summary>Models <c>do_cow_fault</c> (mm/memory.c): a write to a private file mapping copies the page-cache folio.</summary>
    private VmFaultResult DoCowFault(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task)
    {
        var cow = Kernel.Allocator.Alloc();
        if (cow is null)
            return VmFaultResult.Oom;
        var ret = DoFaultCore(vma, ref vmf, task);
        if ((ret & (VmFaultResult.Error | VmFaultResult.NoPage | VmFaultResult.Retry | VmFaultResult.Completed)) != 0)
        {
            cow.Put();
            return ret;
        }
        var src = vmf.Folio!;
        src.Data.Slice(0, Folio.BasePageSize).CopyTo(cow.Data);
        cow.SetFlags(FolioFlags.Uptodate);
        if ((ret & VmFaultResult.Locked) != 0) src.Unlock();
        src.Put();
        vmf.Folio = cow;
        return FinishFault(vma, ref vmf, table, orig, cow, ret & ~VmFaultResult.Locked);
    }

    /// <summary>Models <c>do_shared_fault</c> (mm/memory.c) (no <c>page_mkwrite</c>: shmem-like types have none).</summary>
    private VmFaultResult DoSharedFault(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task)
    {
        var ret = DoFaultCore(vma, ref vmf, task);
        if ((ret & (VmFaultResult.Error | VmFaultResult.NoPage | VmFaultResult.Retry | VmFaultResult.Completed)) != 0)
            return ret;
        return FinishPageCacheFault(vma, ref vmf, table, orig, ret);
    }

    /// <summary>
    /// Models <c>__do_fault</c> (mm/memory.c) with both designs: under <see cref="FaultPathDesign.PreCheck"/> the generic
    /// <see cref="DoUserfault"/> runs before <c>-&gt;fault</c>; under <see cref="FaultPathDesign.RfcRetval"/> the memory
    /// type's <c>Fault</c> reports <see cref="VmFaultResult.UffdMinor"/> / <see cref="VmFaultResult.UffdMissing"/> and this
    /// function calls <c>handle_userfault</c> with that reason (seed 001's hunk in <c>__do_fault</c>).
    /// </summary>
    private unsafe VmFaultResult DoFaultCore(Vma vma, ref VmFault vmf, ModelTask task)
    {
        if (Kernel.Design == FaultPathDesign.PreCheck)
        {
            var u = DoUserfault(vma, ref vmf, task);
            if (u != VmFaultResult.None)
                return u;
        }
        vmf.Folio = null;
        var ret = vma.Type.VmOps.Fault(ref vmf);
        if ((ret & (VmFaultResult.UffdMinor | VmFaultResult.UffdMissing)) != 0)
        {
            if (vmf.Folio is { } stray)
            {
                // A ->fault that reports a userfault must not hand back a folio; drop it rather than leak it.
                if ((ret & VmFaultResult.Locked) != 0) stray.Unlock();
                stray.Put();
                vmf.Folio = null;
            }
            var reason = (ret & VmFaultResult.UffdMinor) != 0 ? VmFlags.UffdMinor : VmFlags.UffdMissing;
            return UserfaultfdCtx.HandleUserfault(this, vma, ref vmf, reason, task);
        }
        if ((ret & (VmFaultResult.Error | VmFaultResult.NoPage | VmFaultResult.Retry | VmFaultResult.DoneCow | VmFaultResult.Completed)) != 0)
            return ret;
        var folio = vmf.Folio;
        if (folio is null)
            return VmFaultResult.SigBus; // a ->fault that returns 0 must supply the page
        if ((folio.Flags & FolioFlags.HwPoison) != 0)
        {
            if ((ret & VmFaultResult.Locked) != 0) folio.Unlock();
            folio.Put();
            vmf.Folio = null;
            return VmFaultResult.HwPoison;
        }
        return ret;
    }

    /// <summary>
    /// Models <c>__do_userfault</c> (mm/memory.c, seed 000): for a MISSING- or MINOR-armed VMA, looks the folio up with
    /// the memory type's <c>GetFolioNoAlloc</c>; present and MINOR-armed → <c>handle_userfault(VM_UFFD_MINOR)</c>; absent and
    /// MISSING-armed → <c>handle_userfault(VM_UFFD_MISSING)</c>; otherwise 0 and the genuine <c>-&gt;fault</c> runs.
    /// </summary>
    private unsafe VmFaultResult DoUserfault(Vma vma, ref VmFault vmf, ModelTask task)
    {
        if (!(vma.UffdMissing || vma.UffdMinor))
            return VmFaultResult.None;
        var getFolio = vma.Type.UffdOps.GetFolioNoAlloc;
        if (getFolio == null)
            return VmFaultResult.None; // unreachable: vma_can_userfault refuses such a table at UFFDIO_REGISTER
        var folio = getFolio(vma.File!.Inode, vmf.PgOff);
        if (folio is not null)
        {
            // The hook returns the folio locked and referenced (as get_folio_noalloc does); only its presence matters here.
            folio.Unlock();
            folio.Put();
            if (vma.UffdMinor)
                return UserfaultfdCtx.HandleUserfault(this, vma, ref vmf, VmFlags.UffdMinor, task);
        }
        else if (vma.UffdMissing)
            return UserfaultfdCtx.HandleUserfault(this, vma, ref vmf, VmFlags.UffdMissing, task);
        return VmFaultResult.None;
    }

    /// <summary>
    /// Models <c>finish_fault</c> + <c>set_pte_range</c> (mm/memory.c): maps one page (never more when
    /// <c>userfaultfd_armed</c>; the model always maps the single faulting page here). The entry takes the folio reference
    /// <c>-&gt;fault</c> returned. Writable when the access writes (or the mapping is shared and writable: shmem-like types
    /// have no write-notify); a page-cache folio in a private mapping is mapped read-only.
    /// </summary>
    private VmFaultResult FinishFault(Vma vma, ref VmFault vmf, PteTable table, Pte orig, Folio folio, VmFaultResult ret)
    {
        ulong addr = vmf.Address;
        bool locked = (ret & VmFaultResult.Locked) != 0;
        bool anon = folio.Mapping is null;
        var f = PteFlags.Present;
        bool vmWrite = (vma.Flags & VmFlags.Write) != 0;
        if (vmf.IsWrite)
            f |= PteFlags.Dirty | (vmWrite ? PteFlags.Writable : 0);
        else if (vmWrite && (vma.IsShared || anon))
            f |= PteFlags.Writable;
        if (orig.IsUffdWpMarker)
            f = (f | PteFlags.UffdWp) & ~PteFlags.Writable;
        lock (table.Ptl)
        {
            if (!SamePte(table[addr], orig))
            {
                if (locked) folio.Unlock();
                folio.Put();
                vmf.Folio = null;
                return VmFaultResult.NoPage;
            }
            table.Set(addr, new Pte { Folio = folio, Flags = f });
        }
        if (locked) folio.Unlock();
        vmf.Folio = null;
        return ret & ~VmFaultResult.Locked;
    }

    /// <summary>
    /// Models <c>should_fault_around</c> (mm/memory.c): not when <c>uffd_disable_fault_around</c> (WP- or MINOR-armed), and
    /// only when the window is larger than a page.
    /// </summary>
    private bool ShouldFaultAround(Vma vma)
        => Kernel.FaultAroundPages > 1 && (vma.Flags & (VmFlags.UffdWp | VmFlags.UffdMinor)) == 0 && !vma.IsAnonymous;

    /// <summary>
    /// Models <c>do_wp_page</c> (mm/memory.c): a write to a present read-only entry. uffd-wp protected →
    /// <c>handle_userfault(VM_UFFD_WP)</c>, or with WP_ASYNC the bit is cleared in place and the write proceeds; shared mapping → make writable (<c>wp_page_shared</c>); an exclusive anonymous
    /// folio → reuse (<c>wp_page_reuse</c>); otherwise copy (<c>wp_page_copy</c>: zero page, page-cache page in a private
    /// mapping, or a folio shared after fork).
    /// </summary>
    private VmFaultResult DoWpPage(Vma vma, ref VmFault vmf, PteTable table, Pte orig, ModelTask task)
    {
        ulong addr = vmf.Address;
        if (vma.UffdWp && orig.IsUffdWp)
        {
            if (!UserfaultfdCtx.WpAsync(vma))
                return UserfaultfdCtx.HandleUserfault(this, vma, ref vmf, VmFlags.UffdWp, task);
            // WP_ASYNC: clear the uffd-wp bit in place and carry on with the normal reuse / copy.
            if (!ClearUffdWpAsync(table, addr, ref orig))
                return VmFaultResult.None;
        }

        var old = orig.Folio;
        if (vma.IsShared || (!orig.IsZeroPage && old is not null && old.Mapping is null && old.RefCount == 1))
        {
            lock (table.Ptl)
            {
                ref Pte cur = ref table[addr];
                if (!SamePte(cur, orig))
                    return VmFaultResult.None;
                // Re-check exclusivity under the lock: a concurrent fork could have shared it.
                if (vma.IsShared || old!.RefCount == 1)
                {
                    cur.Flags |= PteFlags.Writable | PteFlags.Dirty;
                    return VmFaultResult.None;
                }
            }
        }

        var copy = Kernel.Allocator.Alloc();
        if (copy is null)
            return VmFaultResult.Oom;
        if (!orig.IsZeroPage && old is not null)
            old.Data.Slice(0, Folio.BasePageSize).CopyTo(copy.Data);
        copy.SetFlags(FolioFlags.Uptodate);
        InvalidateRangeStart(addr, addr + Folio.BasePageSize, MmuNotifyEvent.Clear);
        lock (table.Ptl)
        {
            ref Pte cur = ref table[addr];
            if (!SamePte(cur, orig))
            {
                copy.Put();
            }
            else
            {
                table.Set(addr, new Pte { Folio = copy, Flags = PteFlags.Present | PteFlags.Writable | PteFlags.Dirty });
                if (!orig.IsZeroPage)
                    old?.Put();
            }
        }
        InvalidateRangeEnd(addr, addr + Folio.BasePageSize, MmuNotifyEvent.Clear);
        return VmFaultResult.None;
    }
}

internal static class VmOperationsExtensions
{
    public static unsafe bool FaultIsNull(this in VmOperations ops) => ops.Fault == null;
}
