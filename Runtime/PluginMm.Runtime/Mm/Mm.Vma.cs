namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>Models <c>vma_lookup</c> (include/linux/mm.h): the VMA containing <paramref name="address"/>, or null. Caller holds the mmap lock.</summary>
    public Vma? VmaLookup(ulong address) => VmaSet.Lookup(address);

    /// <summary>Models <c>find_vma</c> (mm/mmap.c): the first VMA with <c>vm_end &gt; address</c>, or null. Caller holds the mmap lock.</summary>
    public Vma? FindVma(ulong address) => VmaSet.Find(address);

    /// <summary>VMAs intersecting [start, end), in order (<c>for_each_vma_range</c>, as a snapshot). Caller holds the mmap lock.</summary>
    internal List<Vma> VmasIn(ulong start, ulong end) => VmaSet.Intersecting(start, end);

    /// <summary>Models <c>vma_link</c> (mm/vma.c): adds <paramref name="vma"/> to the set and to its file's <c>i_mmap</c>.</summary>
    private void InsertVma(Vma vma)
    {
        VmaSet.Insert(vma);
        vma.File?.AddMapping(vma);
    }

    /// <summary>Models <c>vma_iter_clear</c> + <c>unlink_file_vma</c> (mm/vma.c): takes <paramref name="vma"/> out of the set and its file's <c>i_mmap</c>.</summary>
    private void RemoveVma(Vma vma)
    {
        VmaSet.Remove(vma);
        vma.File?.RemoveMapping(vma);
    }

    /// <summary>
    /// Models <c>split_vma</c> (mm/vma.c): splits <paramref name="vma"/> at <paramref name="address"/> and returns the upper
    /// part. Caller holds the mmap write lock.
    /// </summary>
    internal Vma SplitVma(Vma vma, ulong address)
    {
        long pgoffDelta = (long)((address - vma.Start) >> Folio.BasePageShift);
        var upper = vma.CloneFor(this, address, vma.End, vma.PgOff + pgoffDelta);
        if (vma.File is { } f)
        {
            lock (f.IMmapLock) vma.End = address;
        }
        else
            vma.End = address;
        InsertVma(upper);
        return upper;
    }

    /// <summary>Splits VMAs so that [start, end) starts and ends on VMA boundaries. Caller holds the mmap write lock.</summary>
    internal void SplitAround(ulong start, ulong end)
    {
        var first = VmaLookup(start);
        if (first is not null && first.Start < start)
            SplitVma(first, start);
        var last = end > 0 ? VmaLookup(end - 1) : null;
        if (last is not null && last.End > end)
            SplitVma(last, end);
    }
}
