using PluginMm.Hmm;

namespace PluginMm.Runtime.Hmm;

/// <summary>
/// The HMM PFN word (<c>enum hmm_pfn_flags</c>, include/linux/hmm.h, 64-bit): output flags in the top bits, the map order
/// in 5 bits at <see cref="OrderShift"/>, the pfn below. Input requests reuse the top bits.
/// </summary>
/// <remarks>
/// The model has no physical frame numbers: the pfn field holds the index of the 4 KiB subpage inside the folio that
/// <see cref="HmmRange.Pages"/> reports for the entry (<c>hmm_pfn_to_page</c>), 0 for base pages.
/// </remarks>
public static class HmmPfn
{
    /// <summary><c>HMM_PFN_VALID</c> (bit 63): the CPU can read the page.</summary>
    public const ulong Valid = 1UL << 63;

    /// <summary><c>HMM_PFN_WRITE</c> (bit 62): the CPU can write the page.</summary>
    public const ulong Write = 1UL << 62;

    /// <summary><c>HMM_PFN_ERROR</c> (bit 61): the address is not accessible (no VMA, no VM_READ, VM_IO/VM_PFNMAP).</summary>
    public const ulong Error = 1UL << 61;

    /// <summary><c>HMM_PFN_ORDER_SHIFT</c> (<c>BITS_PER_LONG - 11</c>).</summary>
    public const int OrderShift = 64 - 11;

    /// <summary><c>HMM_PFN_REQ_FAULT</c> (= <see cref="Valid"/>): fault the page in if it is not present.</summary>
    public const ulong ReqFault = Valid;

    /// <summary><c>HMM_PFN_REQ_WRITE</c> (= <see cref="Write"/>): fault it in writable.</summary>
    public const ulong ReqWrite = Write;

    /// <summary><c>HMM_PFN_FLAGS</c>: every bit above the pfn.</summary>
    public const ulong Flags = ~((1UL << OrderShift) - 1);

    /// <summary>Models <c>hmm_pfn_to_map_order</c>: log2 of the CPU mapping size in pages (9 for a 2 MiB entry).</summary>
    public static int ToMapOrder(ulong hmmPfn) => (int)((hmmPfn >> OrderShift) & 0x1F);

    /// <summary>Models <c>hmm_pfn_flags_order</c>.</summary>
    public static ulong FlagsOrder(int order) => (ulong)order << OrderShift;

    /// <summary>The pfn field: here the subpage index inside the entry's folio.</summary>
    public static long ToSubpage(ulong hmmPfn) => (long)(hmmPfn & ~Flags);
}

/// <summary>Which <c>hmm_range_fault</c> a driver gets when it holds the mmap lock itself.</summary>
public enum HmmFaultVariant
{
    /// <summary>
    /// Mainline <c>hmm_range_fault</c>: <c>handle_mm_fault(FAULT_FLAG_REMOTE)</c> without ALLOW_RETRY, so a page of a
    /// userfaultfd-registered VMA makes <c>handle_userfault</c> return SIGBUS and the call fails with -EFAULT.
    /// </summary>
    Mainline = 0,

    /// <summary>
    /// Seed 002 (RFC "mm/hmm: Add userfaultfd support to fault handling"): <c>hmm_handle_mm_fault</c> adds
    /// ALLOW_RETRY|USER on MISSING-registered VMAs; when the fault dropped the mmap lock it retakes it and returns -EBUSY,
    /// which restarts the walk at that page (one page per lock drop).
    /// </summary>
    Seed002 = 1,
}

/// <summary>
/// One HMM request (<c>struct hmm_range</c>, include/linux/hmm.h): the notifier and its sequence, [Start, End), the
/// in/out PFN words, the request flags, the device-private owner; plus the model's page array and counters. A driver
/// reuses one per chunk, as dmirror's 32-entry on-stack arrays.
/// </summary>
public sealed class HmmRange
{
    /// <summary>Creates a range with room for <paramref name="maxPages"/> entries.</summary>
    public HmmRange(int maxPages)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPages);
        HmmPfns = new ulong[maxPages];
        Pages = new Folio?[maxPages];
    }

    /// <summary><c>notifier</c>: the interval notifier covering the range.</summary>
    public IntervalNotifier? Notifier { get; set; }

    /// <summary><c>notifier_seq</c>: from <see cref="MmuIntervalNotifier.ReadBegin"/>.</summary>
    public ulong NotifierSeq { get; set; }

    /// <summary><c>start</c> (page aligned).</summary>
    public ulong Start { get; set; }

    /// <summary><c>end</c> (page aligned, exclusive).</summary>
    public ulong End { get; set; }

    /// <summary><c>hmm_pfns</c>: per page, the request on input, the result on output (see <see cref="HmmPfn"/>).</summary>
    public ulong[] HmmPfns { get; }

    /// <summary><c>hmm_pfn_to_page(hmm_pfns[i])</c> for valid entries (null otherwise); the shared zero page for zero-page entries.</summary>
    public Folio?[] Pages { get; }

    /// <summary><c>default_flags</c>: request bits applied to every page.</summary>
    public ulong DefaultFlags { get; set; }

    /// <summary><c>pfn_flags_mask</c>: which request bits of each <see cref="HmmPfns"/> entry count.</summary>
    public ulong PfnFlagsMask { get; set; }

    /// <summary>
    /// <c>dev_private_owner</c>: device-private pages whose page map has this owner are reported (VALID, WRITE if the entry
    /// is writable, <see cref="Pages"/> = the device page) instead of being faulted back to system memory.
    /// </summary>
    public object? DevPrivateOwner { get; set; }

    /// <summary>Pages in the range.</summary>
    public int PageCount => (int)((End - Start) >> Folio.BasePageShift);

    /// <summary>Calls of <c>handle_mm_fault</c> made for this range (cumulative).</summary>
    public long Faults { get; internal set; }

    /// <summary>Faults that dropped the mmap lock (VM_FAULT_RETRY / COMPLETED: a userfault was served).</summary>
    public long LockDrops { get; internal set; }

    /// <summary>Walk restarts after -EBUSY inside <c>hmm_range_fault</c> (each fault, and each lock drop, restarts it).</summary>
    public long WalkRestarts { get; internal set; }

    /// <summary>Whether entry <paramref name="i"/> maps the shared zero page (<c>is_zero_pfn</c>).</summary>
    public bool IsZeroPfn(int i) => Pages[i] is { } f && Notifier is { } n && ReferenceEquals(f, n.Mm.Kernel.ZeroFolio);

    /// <summary>Resets the counters.</summary>
    public void ResetCounters()
    {
        Faults = 0;
        LockDrops = 0;
        WalkRestarts = 0;
    }
}
