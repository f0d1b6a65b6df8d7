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

    /// <summary>
    /// Models the merge half of <c>vma_modify</c> → <c>vma_merge_existing_range</c> (mm/vma.c) after <paramref name="vma"/>'s
    /// flags or userfaultfd context changed (<c>vma_modify_flags_uffd</c>): merges it with the previous and the next VMA
    /// when they touch it and are identical (<c>is_mergeable_vma</c>: flags, file, memory type, userfaultfd context;
    /// <c>is_mergeable_anon_vma</c>; contiguous <c>vm_pgoff</c>). hugetlb VMAs never merge (VM_DONTEXPAND, part of
    /// VM_SPECIAL, set by <c>hugetlbfs_file_mmap</c>). Returns the VMA that now covers <paramref name="vma"/>'s range.
    /// Caller holds the mmap write lock.
    /// </summary>
    internal Vma MergeWithNeighbours(Vma vma)
    {
        var prev = vma.Start > 0 ? VmaLookup(vma.Start - 1) : null;
        if (prev is not null && CanMerge(prev, vma))
        {
            ExtendOver(prev, vma);
            vma = prev;
        }
        var next = VmaLookup(vma.End);
        if (next is not null && CanMerge(vma, next))
            ExtendOver(vma, next);
        return vma;
    }

    private static bool CanMerge(Vma a, Vma b)
        => a.End == b.Start && a.Flags == b.Flags && !a.IsHugetlb && ReferenceEquals(a.File, b.File)
           && ReferenceEquals(a.Type, b.Type) && ReferenceEquals(a.UffdCtx, b.UffdCtx)
           && (a.IsShared || ReferenceEquals(a.AnonVma, b.AnonVma))
           && a.PgOff + (long)((a.End - a.Start) >> Folio.BasePageShift) == b.PgOff;

    /// <summary><c>commit_merge</c>: <paramref name="keep"/> grows over <paramref name="gone"/>, which is unlinked.</summary>
    private void ExtendOver(Vma keep, Vma gone)
    {
        RemoveVma(gone);
        if (keep.File is { } f)
        {
            lock (f.IMmapLock) keep.End = gone.End;
        }
        else
            keep.End = gone.End;
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
