using PluginMm.Hmm;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

public sealed partial class UserfaultfdCtx
{
    /// <summary>
    /// Models <c>userfaultfd_move</c> (fs/userfaultfd.c): mmap_changing → EAGAIN with field -EAGAIN; EINVAL before
    /// UFFDIO_API, for a bad source or destination range (both page-aligned) or a mode outside {DONTWAKE, ALLOW_SRC_HOLES};
    /// ESRCH when the mm has exited. Then <see cref="MovePages"/>; the field is bytes moved (holes skipped with
    /// ALLOW_SRC_HOLES count as moved) or -errno; a partial move returns EAGAIN; the moved range is woken unless DONTWAKE.
    /// The source is in the userfaultfd's own mm (the handler-side API has no other; the kernel's cross-mm EINVAL cannot
    /// arise here).
    /// </summary>
    public UffdioResult Move(ulong dst, ulong src, ulong len, UffdMoveMode mode)
    {
        bool argsOk = ValidateRange(src, len) == Errno.None && (mode & ~(UffdMoveMode.DontWake | UffdMoveMode.AllowSrcHoles)) == 0;
        if (RangeIoctlChecks(dst, len, argsOk) is { } fail)
            return fail;
        long ret = MovePages(dst, src, len, (mode & UffdMoveMode.AllowSrcHoles) != 0);
        return FinishFill(ret, dst, len, (mode & UffdMoveMode.DontWake) != 0);
    }

    /// <summary>
    /// Models <c>move_pages</c> (mm/userfaultfd.c): no VMA at dst or src → ENOENT; mmap_changing → EAGAIN; EINVAL when
    /// either VMA is shared, a range passes its VMA's end, or <c>validate_move_areas</c> refuses (different access flags or
    /// VM_LOCKED, source not writable, hugetlb, not anonymous, destination not registered to this userfaultfd). Then page by
    /// page (<c>move_pages_pte</c>): destination not none (markers included) → EEXIST; source none → ENOENT, or a hole that
    /// counts as moved with ALLOW_SRC_HOLES; a source marker → EFAULT; the zero page moves as the zero page; a page that is
    /// not exclusive to this mapping (shared after fork, page cache) → EBUSY; otherwise the folio moves and the destination
    /// entry is writable and dirty (no uffd-wp bit). Returns bytes moved if any, else -errno.
    /// </summary>
    private long MovePages(ulong dst, ulong src, ulong len, bool allowSrcHoles)
    {
        var mm = Mm;
        ulong moved = 0;
        Errno err = Errno.None;
        mm.MmapLock.EnterReadLock();
        MapChangingLock.EnterReadLock(); // held for the whole operation (map_changing_lock)
        try
        {
            var dv = mm.VmaLookup(dst);
            var sv = mm.VmaLookup(src);
            if (mm.Exited || dv is null || sv is null)
                err = Errno.ENOENT;
            else if (MmapChanging > 0)
                err = Errno.EAGAIN;
            else if (sv.IsShared || src + len > sv.End || dv.IsShared || dst + len > dv.End || !ValidateMoveAreas(sv, dv))
                err = Errno.EINVAL;
            if (err != Errno.None)
                return -(long)err;

            mm.InvalidateRangeStart(src, src + len, MmuNotifyEvent.Clear);
            try
            {
                while (moved < len)
                {
                    err = MovePagesPte(dst + moved, src + moved, allowSrcHoles);
                    if (err != Errno.None)
                        break;
                    moved += Folio.BasePageSize;
                }
            }
            finally { mm.InvalidateRangeEnd(src, src + len, MmuNotifyEvent.Clear); }
        }
        finally
        {
            MapChangingLock.ExitReadLock();
            mm.MmapLock.ExitReadLock();
        }
        return moved > 0 ? (long)moved : -(long)err;
    }

    /// <summary>Models <c>validate_move_areas</c> (mm/userfaultfd.c).</summary>
    private bool ValidateMoveAreas(Vma src, Vma dst)
    {
        const VmFlags access = VmFlags.Read | VmFlags.Write | VmFlags.Exec;
        if ((src.Flags & access) != (dst.Flags & access))
            return false;
        if ((src.Flags & VmFlags.Locked) != (dst.Flags & VmFlags.Locked))
            return false;
        if ((src.Flags & VmFlags.Write) == 0)
            return false;
        if (src.IsHugetlb || dst.IsHugetlb)
            return false;
        if (!ReferenceEquals(dst.UffdCtx, this))
            return false;
        return src.IsAnonymous && dst.IsAnonymous;
    }

    /// <summary>
    /// Models <c>move_pages_pte</c> + <c>move_present_pte</c> / <c>move_zeropage_pte</c> (mm/userfaultfd.c) for one page,
    /// under both page-table locks (taken in address order; one lock when both entries share a table).
    /// </summary>
    private Errno MovePagesPte(ulong dstAddr, ulong srcAddr, bool allowSrcHoles)
    {
        var pt = Mm.PageTable;
        var st = pt.Lookup(srcAddr);
        if (st is null)
        {
            // move_pages: a source pmd that is none is ENOENT, unless ALLOW_SRC_HOLES, where the source table is allocated
            // (__pte_alloc) and move_pages_pte still refuses a populated destination (EEXIST) before the hole counts as moved.
            if (!allowSrcHoles)
                return Errno.ENOENT;
            st = pt.Alloc(srcAddr);
        }
        var dt = pt.Alloc(dstAddr);
        bool srcFirst = srcAddr / PteTable.Span <= dstAddr / PteTable.Span;
        var first = srcFirst ? st : dt;
        var second = srcFirst ? dt : st;
        lock (first.Ptl)
        {
            if (ReferenceEquals(first, second))
                return MovePteLocked(dt, dstAddr, st, srcAddr, allowSrcHoles);
            lock (second.Ptl)
                return MovePteLocked(dt, dstAddr, st, srcAddr, allowSrcHoles);
        }
    }

    private static Errno MovePteLocked(PteTable dt, ulong dstAddr, PteTable st, ulong srcAddr, bool allowSrcHoles)
    {
        if (!dt[dstAddr].IsNone)
            return Errno.EEXIST;
        Pte s = st[srcAddr];
        if (s.IsNone)
            return allowSrcHoles ? Errno.None : Errno.ENOENT;
        if (!s.IsPresent)
            return Errno.EFAULT; // a marker: not a movable swap entry
        if (s.IsZeroPage)
        {
            st.Clear(srcAddr);
            dt.Set(dstAddr, new Pte { Flags = PteFlags.Present | PteFlags.ZeroPage });
            return Errno.None;
        }
        var folio = s.Folio!;
        // PageAnonExclusive and not pinned: an anonymous folio mapped only by this entry.
        if (folio.Mapping is not null || folio.RefCount != 1)
            return Errno.EBUSY;
        st.Clear(srcAddr);
        dt.Set(dstAddr, new Pte { Folio = folio, Flags = PteFlags.Present | PteFlags.Writable | PteFlags.Dirty });
        return Errno.None;
    }
}
