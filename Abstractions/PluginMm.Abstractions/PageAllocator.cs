namespace PluginMm;

/// <summary>
/// The page allocator a backend allocates folios from (stands for the buddy allocator plus memcg charging).
/// Counts every allocation and free so tests can prove that nothing leaks; an optional limit makes
/// allocation fail (the hook then returns null and the caller reports ENOMEM).
/// </summary>
public sealed class PageAllocator
{
    private long _allocated;
    private long _freed;

    /// <summary>Creates an allocator; <paramref name="limitPages"/> bounds live base pages (0 = unbounded).</summary>
    public PageAllocator(long limitPages = 0) => LimitPages = limitPages;

    /// <summary>Maximum live base pages (0 = unbounded).</summary>
    public long LimitPages { get; set; }

    /// <summary>Base pages allocated so far.</summary>
    public long AllocatedPages => Interlocked.Read(ref _allocated);

    /// <summary>Base pages freed so far.</summary>
    public long FreedPages => Interlocked.Read(ref _freed);

    /// <summary>Base pages currently live (allocated and not yet freed).</summary>
    public long LivePages => AllocatedPages - FreedPages;

    /// <summary>
    /// <c>folio_alloc</c>: a zero-filled folio of <paramref name="size"/> bytes (a power-of-two multiple of
    /// <see cref="Folio.BasePageSize"/>) with one reference, or null when the limit is reached.
    /// </summary>
    public Folio? Alloc(int size = Folio.BasePageSize)
    {
        if (size < Folio.BasePageSize || (size & (size - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "folio size must be a power of two of at least 4096 bytes");
        long pages = size / Folio.BasePageSize;
        long after = Interlocked.Add(ref _allocated, pages);
        if (LimitPages != 0 && after - Interlocked.Read(ref _freed) > LimitPages)
        {
            Interlocked.Add(ref _allocated, -pages);
            return null;
        }
        return new Folio(this, size);
    }

    internal void Free(int size) => Interlocked.Add(ref _freed, size / Folio.BasePageSize);
}
