using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>dup_mmap</c> + <c>copy_page_range</c> (kernel/fork.c, mm/memory.c): a child address space with the
    /// same VMAs (except MADV_DONTFORK ones). Private pages become copy-on-write in both. Without EVENT_FORK the child's
    /// VMAs lose their userfaultfd registration (<c>dup_userfaultfd</c>) and their uffd-wp bits; with it they keep both on
    /// a new child userfaultfd, and fork returns only after the FORK message was read.
    /// </summary>
    public Mm Fork()
    {
        var child = new Mm(Kernel) { HasCapSysPtrace = HasCapSysPtrace };
        MmapLock.EnterWriteLock();
        try
        {
            foreach (var v in VmaSet)
            {
                if ((v.Flags & VmFlags.DontCopy) != 0)
                    continue;
                var cv = v.CloneFor(child, v.Start, v.End, v.PgOff);
                DupUserfaultfd(cv, child);
                child.InsertVma(cv);
                // vma_needs_copy: shared file mappings refault in the child, unless uffd-wp state must be copied.
                if (v.IsShared && !v.IsAnonymous && !cv.UffdWp)
                    continue;
                CopyPageRange(child, v, cv);
            }
        }
        finally
        {
            MmapLock.ExitWriteLock();
            CompleteUserfaultfdEvents(); // dup_userfaultfd_complete: FORK events
        }
        return child;
    }

    private void CopyPageRange(Mm child, Vma src, Vma dst)
    {
        bool cow = !src.IsShared;
        if (cow) InvalidateRangeStart(src.Start, src.End, MmuNotifyEvent.ProtectionPage);
        var state = (child, src, dst, cow);
        PageTable.ForEachTable(src.Start, src.End, ref state, static (PteTable t, ulong s, ulong e, ref (Mm child, Vma src, Vma dst, bool cow) st) =>
        {
            PteTable? ct = null;
            lock (t.Ptl)
            {
                for (ulong a = s; a < e; a += (ulong)st.src.PageSize)
                {
                    ref Pte p = ref t[a];
                    if (p.IsNone)
                        continue;
                    Pte c = p;
                    if (p.IsMarker)
                    {
                        if (p.IsUffdWpMarker && !st.dst.UffdWp)
                            continue;
                    }
                    else
                    {
                        if (!p.IsZeroPage)
                            p.Folio!.Get();
                        if (st.cow && p.IsWritable)
                        {
                            p.Flags &= ~PteFlags.Writable; // copy_present_pte: wrprotect the parent too
                            c.Flags &= ~PteFlags.Writable;
                        }
                        if (!st.dst.UffdWp)
                            c.Flags &= ~PteFlags.UffdWp;
                    }
                    ct ??= st.child.PageTable.Alloc(a);
                    lock (ct.Ptl) ct.Set(a, c);
                }
            }
        });
        if (cow) InvalidateRangeEnd(src.Start, src.End, MmuNotifyEvent.ProtectionPage);
    }
}
