using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>uffd_wp_range</c> (mm/userfaultfd.c) → <c>change_protection</c> with MM_CP_UFFD_WP / MM_CP_UFFD_WP_RESOLVE
    /// (mm/mprotect.c, <c>change_pte_range</c>; mm/hugetlb.c, <c>hugetlb_change_protection</c>) over [start, end) of
    /// <paramref name="vma"/>. Protect: present entries lose write permission and gain the uffd-wp bit; empty entries get a
    /// uffd-wp PTE marker where <see cref="UserfaultfdCtx.WpUseMarkers"/> says so (page tables are allocated for it).
    /// Resolve: the bit is cleared and uffd-wp markers dropped; a private exclusive anonymous page becomes writable again
    /// (<c>can_change_pte_writable</c>), shared mappings stay read-only until the next write fault makes them writable.
    /// Poison and guard markers are left alone. Caller holds the mmap lock.
    /// </summary>
    internal void UffdWpRange(Vma vma, ulong start, ulong end, bool enableWp)
    {
        ulong step = (ulong)vma.PageSize;
        bool markers = enableWp && UserfaultfdCtx.WpUseMarkers(vma);
        InvalidateRangeStart(start, end, MmuNotifyEvent.ProtectionVma);
        if (markers)
        {
            // change_pmd_prepare / huge_pte_alloc: tables must exist to hold the markers.
            for (ulong a = start; a < end; a = (a & ~(PteTable.Span - 1)) + PteTable.Span)
                PageTable.Alloc(a);
        }
        var state = (vma, enableWp, markers, step);
        PageTable.ForEachTable(start, end, ref state,
            static (PteTable t, ulong s, ulong e, ref (Vma vma, bool wp, bool markers, ulong step) st) =>
            {
                lock (t.Ptl)
                {
                    for (ulong a = s; a < e; a += st.step)
                    {
                        ref Pte p = ref t[a];
                        if (p.IsPresent)
                        {
                            if (st.wp)
                                p.Flags = (p.Flags | PteFlags.UffdWp) & ~PteFlags.Writable;
                            else
                            {
                                p.Flags &= ~PteFlags.UffdWp;
                                if (CanChangePteWritable(st.vma, p))
                                    p.Flags |= PteFlags.Writable;
                            }
                        }
                        else if (p.IsNone)
                        {
                            if (st.markers)
                                t.Set(a, new Pte { Flags = PteFlags.MarkerUffdWp });
                        }
                        else if (p.IsUffdWpMarker && !st.wp)
                            t.Clear(a);
                    }
                }
            });
        InvalidateRangeEnd(start, end, MmuNotifyEvent.ProtectionVma);
    }

    /// <summary>
    /// The WP_ASYNC branch of <c>do_wp_page</c> / <c>hugetlb_wp</c> (mm/memory.c, mm/hugetlb.c): clears the uffd-wp bit of
    /// the entry in place, so the write goes on as a normal write fault. False (nothing done) when the entry changed since
    /// <paramref name="orig"/> was read; otherwise <paramref name="orig"/> is updated.
    /// </summary>
    private static bool ClearUffdWpAsync(PteTable table, ulong addr, ref Pte orig)
    {
        lock (table.Ptl)
        {
            ref Pte cur = ref table[addr];
            if (!SamePte(cur, orig))
                return false;
            cur.Flags &= ~PteFlags.UffdWp;
            orig = cur;
            return true;
        }
    }

    /// <summary>
    /// Models <c>can_change_pte_writable</c> (mm/mprotect.c) as <c>uffd_wp_range</c> uses it (MM_CP_TRY_CHANGE_WRITABLE is
    /// set only for private writable mappings): VM_WRITE, and an exclusive anonymous page (not the zero page, not a
    /// page-cache page, mapped once).
    /// </summary>
    private static bool CanChangePteWritable(Vma vma, in Pte p)
        => (vma.Flags & VmFlags.Write) != 0 && !vma.IsShared && !p.IsZeroPage
           && p.Folio is { Mapping: null } f && f.RefCount == 1;

    /// <summary>
    /// Models <c>uffd_wp_range(vma, start, len, false)</c> (mm/userfaultfd.c) as used by unregister and release: clears the
    /// uffd-wp bit of present entries and drops uffd-wp markers. Caller holds the mmap lock.
    /// </summary>
    internal void ClearUffdWp(Vma vma, ulong start, ulong end)
    {
        int dummy = 0;
        PageTable.ForEachTable(start, end, ref dummy, static (PteTable t, ulong s, ulong e, ref int _) =>
        {
            lock (t.Ptl)
            {
                for (ulong a = s; a < e; a += Folio.BasePageSize)
                {
                    ref Pte p = ref t[a];
                    if (p.IsUffdWpMarker) t.Clear(a);
                    else if (p.IsPresent) p.Flags &= ~PteFlags.UffdWp;
                }
            }
        });
    }
}
