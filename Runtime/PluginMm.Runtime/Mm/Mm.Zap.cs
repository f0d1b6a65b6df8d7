using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>zap_page_range_single</c> / <c>unmap_page_range</c> (mm/memory.c): clears the entries of
    /// [start, end) in <paramref name="vma"/> and drops their folio references. uffd-wp markers survive unless
    /// <paramref name="dropMarkers"/>.
    /// </summary>
    internal void ZapRange(Vma vma, ulong start, ulong end, bool dropMarkers)
    {
        var state = (vma, dropMarkers, step: (ulong)vma.PageSize);
        PageTable.ForEachTable(start, end, ref state, static (PteTable t, ulong s, ulong e, ref (Vma vma, bool drop, ulong step) st) =>
        {
            lock (t.Ptl)
            {
                for (ulong a = s; a < e; a += st.step)
                {
                    ref Pte p = ref t[a];
                    if (p.IsNone)
                        continue;
                    if (p.IsMarker)
                    {
                        if (st.drop || (p.Flags & PteFlags.MarkerUffdWp) == 0)
                            t.Clear(a);
                        continue;
                    }
                    var old = t.Clear(a);
                    if (!st.drop && (old.Flags & PteFlags.UffdWp) != 0 && !st.vma.IsAnonymous && st.vma.UffdWp)
                        t.Set(a, new Pte { Flags = PteFlags.MarkerUffdWp }); // file zaps keep the WP state as a marker
                    if (!old.IsZeroPage)
                        old.Folio?.Put();
                }
            }
        });
    }

    /// <summary>
    /// Models <c>unmap_mapping_range</c> for one VMA (mm/memory.c): zaps the entries mapping page-cache folios of file
    /// indexes [first, end) (private CoW copies stay, as with <c>even_cows = 0</c>). Called under the file's i_mmap lock.
    /// </summary>
    internal void ZapFileRange(Vma vma, long first, long end)
    {
        int shift = vma.File!.Inode.PageShift - Folio.BasePageShift;
        long vFirst = vma.PgOff >> shift;
        long vEnd = vFirst + (long)((vma.End - vma.Start) >> vma.File.Inode.PageShift);
        long s = Math.Max(first, vFirst), e = Math.Min(end, vEnd);
        if (s >= e)
            return;
        ulong start = vma.Start + ((ulong)(s - vFirst) << vma.File.Inode.PageShift);
        ulong stop = vma.Start + ((ulong)(e - vFirst) << vma.File.Inode.PageShift);
        InvalidateRangeStart(start, stop, MmuNotifyEvent.Clear);
        var inode = vma.File.Inode;
        var state = (inode, step: (ulong)vma.PageSize);
        PageTable.ForEachTable(start, stop, ref state, static (PteTable t, ulong s, ulong e, ref (Inode inode, ulong step) st) =>
        {
            lock (t.Ptl)
            {
                for (ulong a = s; a < e; a += st.step)
                {
                    ref Pte p = ref t[a];
                    if (!p.IsPresent || p.Folio is null || p.IsZeroPage || p.Folio.Mapping != st.inode)
                        continue;
                    t.Clear(a).Folio!.Put();
                }
            }
        });
        InvalidateRangeEnd(start, stop, MmuNotifyEvent.Clear);
    }
}
