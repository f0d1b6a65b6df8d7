namespace PluginMm.Runtime;

/// <summary>
/// The VMAs of one address space in address order (the kernel's <c>mm-&gt;mm_mt</c> maple tree, lib/maple_tree.c, as
/// the VMA iterator of mm/vma.h uses it). Non-overlapping; every operation runs under the owning mm's mmap lock
/// (read for <see cref="Lookup"/>, <see cref="Find"/>, <see cref="Intersecting"/>, <see cref="FindGap"/> and enumeration;
/// write for <see cref="Insert"/> and <see cref="Remove"/>). Callers go through this interface only, so the storage
/// (today a sorted list with binary search) can change without touching them.
/// </summary>
internal sealed class VmaSet
{
    private readonly List<Vma> _list = new();

    /// <summary>Number of VMAs (<c>mm-&gt;map_count</c>).</summary>
    public int Count => _list.Count;

    /// <summary>Models <c>vma_lookup</c>: the VMA containing <paramref name="address"/>, or null.</summary>
    public Vma? Lookup(ulong address)
    {
        int i = FirstEndingAfter(address);
        return i < _list.Count && _list[i].Start <= address ? _list[i] : null;
    }

    /// <summary>Models <c>find_vma</c>: the first VMA with <c>vm_end &gt; address</c>, or null.</summary>
    public Vma? Find(ulong address)
    {
        int i = FirstEndingAfter(address);
        return i < _list.Count ? _list[i] : null;
    }

    /// <summary>
    /// Models a <c>for_each_vma_range</c> walk: the VMAs intersecting [<paramref name="start"/>, <paramref name="end"/>), in
    /// order, as a snapshot the caller may change the set under (split, remove) while it walks.
    /// </summary>
    public List<Vma> Intersecting(ulong start, ulong end)
    {
        var list = new List<Vma>();
        for (int i = FirstEndingAfter(start); i < _list.Count && _list[i].Start < end; i++)
            list.Add(_list[i]);
        return list;
    }

    /// <summary>Models <c>vma_iter_store</c> for a new VMA: <paramref name="vma"/> must not overlap any VMA in the set.</summary>
    public void Insert(Vma vma) => _list.Insert(FirstEndingAfter(vma.Start), vma);

    /// <summary>Models <c>vma_iter_clear</c> for a whole VMA.</summary>
    public void Remove(Vma vma) => _list.Remove(vma);

    /// <summary>
    /// Models <c>vma_iter_area_lowest</c> / <c>mas_empty_area</c> (as <c>unmapped_area</c> uses it): the lowest address
    /// at or above <paramref name="low"/>, aligned to <paramref name="align"/> (a power of two), where <paramref name="len"/>
    /// bytes fit below <paramref name="high"/> without touching a VMA; 0 when there is none.
    /// </summary>
    public ulong FindGap(ulong low, ulong high, ulong len, ulong align)
    {
        ulong candidate = low;
        foreach (var v in _list)
        {
            candidate = (candidate + align - 1) & ~(align - 1);
            if (v.End <= candidate)
                continue;
            if (candidate + len <= v.Start)
                return candidate;
            candidate = v.End;
        }
        candidate = (candidate + align - 1) & ~(align - 1);
        return candidate + len <= high ? candidate : 0;
    }

    /// <summary>A copy of the whole set, in address order (for walks that remove as they go, and for snapshots).</summary>
    public Vma[] ToArray() => _list.ToArray();

    /// <summary>Walks the whole set in address order (<c>for_each_vma</c>); the set must not change during the walk.</summary>
    public List<Vma>.Enumerator GetEnumerator() => _list.GetEnumerator();

    private int FirstEndingAfter(ulong address)
    {
        int lo = 0, hi = _list.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (_list[mid].End <= address) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
