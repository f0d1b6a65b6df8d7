using System.Collections.Concurrent;

namespace PluginMm.Runtime;

/// <summary>
/// Bits of a modelled page-table entry. A present entry has <see cref="Present"/>; a non-present entry is either none
/// (all zero) or a PTE marker (<c>pte_marker</c>, one of the <c>Marker*</c> bits, see <c>include/linux/swapops.h</c>).
/// </summary>
[Flags]
public enum PteFlags : uint
{
    /// <summary><c>pte_none</c>: nothing mapped.</summary>
    None = 0,
    /// <summary><c>_PAGE_PRESENT</c>.</summary>
    Present = 1 << 0,
    /// <summary><c>_PAGE_RW</c>: writable.</summary>
    Writable = 1 << 1,
    /// <summary><c>_PAGE_DIRTY</c>.</summary>
    Dirty = 1 << 2,
    /// <summary><c>_PAGE_UFFD_WP</c>: the uffd-wp bit (on a present PTE, or kept on a marker).</summary>
    UffdWp = 1 << 3,
    /// <summary>A huge (hugetlb) entry covering <see cref="Vma.PageSize"/> bytes, stored at its aligned address.</summary>
    Huge = 1 << 4,
    /// <summary><c>pte_special</c> to the shared zero page (<c>my_zero_pfn</c>): no folio reference is held.</summary>
    ZeroPage = 1 << 5,
    /// <summary><c>PTE_MARKER_UFFD_WP</c>: a write-protected empty entry.</summary>
    MarkerUffdWp = 1 << 8,
    /// <summary><c>PTE_MARKER_POISONED</c> (UFFDIO_POISON): an access gets VM_FAULT_HWPOISON.</summary>
    MarkerPoisoned = 1 << 9,
    /// <summary><c>PTE_MARKER_GUARD</c> (MADV_GUARD_INSTALL): an access gets VM_FAULT_SIGSEGV.</summary>
    MarkerGuard = 1 << 10,

    /// <summary>All marker bits.</summary>
    MarkerMask = MarkerUffdWp | MarkerPoisoned | MarkerGuard,

    /// <summary>A device-private entry (<c>SWP_DEVICE_READ/WRITE</c>): the page lives in device memory (see <c>Hmm.DevicePte</c>).</summary>
    DevicePrivate = 1 << 12,
    /// <summary>A migration entry (<c>SWP_MIGRATION_READ/WRITE</c>): the page is being migrated; it holds no reference.</summary>
    Migration = 1 << 13,
    /// <summary>A device-exclusive entry (<c>SWP_DEVICE_EXCLUSIVE</c>): a device has atomic access to the page.</summary>
    DeviceExclusive = 1 << 14,
}

/// <summary>One page-table entry (<c>pte_t</c>): flags and, when present, the folio it maps (the entry owns one reference).</summary>
public struct Pte
{
    /// <summary>The mapped folio (null for none, markers and the zero page).</summary>
    public Folio? Folio;

    /// <summary>The entry's bits.</summary>
    public PteFlags Flags;

    /// <summary><c>pte_none</c>.</summary>
    public readonly bool IsNone => Flags == PteFlags.None;

    /// <summary><c>pte_present</c>.</summary>
    public readonly bool IsPresent => (Flags & PteFlags.Present) != 0;

    /// <summary><c>pte_write</c>.</summary>
    public readonly bool IsWritable => (Flags & PteFlags.Writable) != 0;

    /// <summary><c>is_pte_marker</c>.</summary>
    public readonly bool IsMarker => !IsPresent && (Flags & PteFlags.MarkerMask) != 0;

    /// <summary><c>pte_marker_uffd_wp</c>.</summary>
    public readonly bool IsUffdWpMarker => !IsPresent && (Flags & PteFlags.MarkerUffdWp) != 0;

    /// <summary><c>pte_uffd_wp</c> on a present entry.</summary>
    public readonly bool IsUffdWp => IsPresent && (Flags & PteFlags.UffdWp) != 0;

    /// <summary><c>is_zero_pfn(pte_pfn(pte))</c>.</summary>
    public readonly bool IsZeroPage => IsPresent && (Flags & PteFlags.ZeroPage) != 0;

    /// <inheritdoc/>
    public override readonly string ToString() => IsNone ? "none" : $"{Flags}{(Folio is null ? "" : $" folio@{Folio.GetHashCode():x}")}";
}

/// <summary>
/// One last-level page table (512 entries = 2 MiB) with its split page-table lock (<c>pte_lockptr</c>).
/// Hugetlb entries are stored at the entry of their aligned address.
/// </summary>
public sealed class PteTable
{
    /// <summary>Entries per table (<c>PTRS_PER_PTE</c>).</summary>
    public const int Entries = 512;

    /// <summary>Bytes one table covers (<c>PMD_SIZE</c>).</summary>
    public const ulong Span = (ulong)Entries * Folio.BasePageSize;

    private readonly Pte[] _entries = new Pte[Entries];

    /// <summary>The page-table lock (<c>ptl</c>). Every read or write of an entry of this table holds it.</summary>
    public Lock Ptl { get; } = new();

    /// <summary>Number of entries that are not none (for tests and teardown).</summary>
    internal int Used;

    /// <summary>The entry for <paramref name="address"/>; the caller holds <see cref="Ptl"/>.</summary>
    public ref Pte this[ulong address] => ref _entries[(int)((address >> Folio.BasePageShift) & (Entries - 1))];

    /// <summary>Stores <paramref name="pte"/> at <paramref name="address"/> (caller holds <see cref="Ptl"/>), keeping <see cref="Used"/>.</summary>
    internal void Set(ulong address, Pte pte)
    {
        ref Pte slot = ref this[address];
        if (slot.IsNone && !pte.IsNone) Used++;
        else if (!slot.IsNone && pte.IsNone) Used--;
        slot = pte;
    }

    /// <summary>Clears the entry at <paramref name="address"/> and returns the old one (<c>ptep_get_and_clear</c>).</summary>
    internal Pte Clear(ulong address)
    {
        ref Pte slot = ref this[address];
        Pte old = slot;
        if (!old.IsNone) Used--;
        slot = default;
        return old;
    }
}

/// <summary>
/// A process's page tables: a sparse map from 2 MiB-aligned regions to <see cref="PteTable"/>s (the PGD/PUD/PMD levels
/// collapsed into one concurrent dictionary), so mappings of millions of pages cost only what is populated.
/// Tables are allocated on first use (<c>pte_alloc</c>) and freed when the mm goes away (<c>free_pgtables</c>).
/// </summary>
public sealed class PageTable
{
    private readonly ConcurrentDictionary<ulong, PteTable> _tables = new();

    /// <summary>Number of allocated last-level tables.</summary>
    public int TableCount => _tables.Count;

    /// <summary><c>pte_offset_map</c>: the table covering <paramref name="address"/>, or null when none was allocated.</summary>
    public PteTable? Lookup(ulong address) => _tables.TryGetValue(address / PteTable.Span, out var t) ? t : null;

    /// <summary><c>pte_alloc</c>: the table covering <paramref name="address"/>, allocating it if needed.</summary>
    public PteTable Alloc(ulong address)
    {
        ulong key = address / PteTable.Span;
        if (_tables.TryGetValue(key, out var t))
            return t;
        var fresh = new PteTable();
        return _tables.TryAdd(key, fresh) ? fresh : _tables[key];
    }

    /// <summary>Reads the entry at <paramref name="address"/> under its lock (none when no table exists).</summary>
    public Pte Get(ulong address)
    {
        var t = Lookup(address);
        if (t is null)
            return default;
        lock (t.Ptl)
            return t[address];
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for every table intersecting [<paramref name="start"/>, <paramref name="end"/>),
    /// visiting only allocated tables (so a sparse terabyte range costs what is populated).
    /// </summary>
    internal void ForEachTable<TState>(ulong start, ulong end, ref TState state, TableVisitor<TState> visit)
    {
        if (end <= start)
            return;
        ulong first = start / PteTable.Span, last = (end - 1) / PteTable.Span;
        if (last - first + 1 <= (ulong)_tables.Count * 2)
        {
            for (ulong k = first; k <= last; k++)
                if (_tables.TryGetValue(k, out var t))
                    visit(t, Math.Max(start, k * PteTable.Span), Math.Min(end, (k + 1) * PteTable.Span), ref state);
        }
        else
        {
            var keys = new List<ulong>();
            foreach (var kv in _tables)
                if (kv.Key >= first && kv.Key <= last) keys.Add(kv.Key);
            keys.Sort();
            foreach (var k in keys)
                visit(_tables[k], Math.Max(start, k * PteTable.Span), Math.Min(end, (k + 1) * PteTable.Span), ref state);
        }
    }

    /// <summary>Drops every table (after all entries were zapped).</summary>
    internal void Clear() => _tables.Clear();
}

/// <summary>Callback of <see cref="PageTable.ForEachTable{TState}"/> for the part [start, end) of one table.</summary>
internal delegate void TableVisitor<TState>(PteTable table, ulong start, ulong end, ref TState state);
