namespace PluginMm.Runtime;

/// <summary>Options of a <see cref="ModelKernel"/>.</summary>
public sealed class ModelOptions
{
    /// <summary>The fault-path design (default <see cref="FaultPathDesign.PreCheck"/>).</summary>
    public FaultPathDesign Design { get; init; } = FaultPathDesign.PreCheck;

    /// <summary>The page allocator every folio comes from (default: a fresh unbounded one).</summary>
    public PageAllocator? Allocator { get; init; }

    /// <summary>The sysctl <c>vm.unprivileged_userfaultfd</c> (default 0, as in current kernels).</summary>
    public bool UnprivilegedUserfaultfd { get; init; }

    /// <summary>
    /// <c>fault_around_bytes / PAGE_SIZE</c> (default 16). 1 disables fault-around. See <see cref="Mm.DoFaultAround"/>.
    /// </summary>
    public int FaultAroundPages { get; init; } = 16;

    /// <summary>
    /// The lowest address a userfaultfd range may start at (<c>validate_unaligned_range</c>, fs/userfaultfd.c). Default 0:
    /// this machine's kernel (6.18) has no floor since "userfaultfd: allow registration of ranges below mmap_min_addr";
    /// older kernels refused <c>start &lt; mmap_min_addr</c> (set 0x10000, the usual <c>vm.mmap_min_addr</c>, to model them).
    /// </summary>
    public ulong UffdRangeFloor { get; init; }

    /// <summary>
    /// The fix offered for seed 000's pre-check (issue 11 part 5): when set, <c>__do_userfault</c> treats a page beyond
    /// <c>i_size</c> as not missing and lets <c>-&gt;fault</c> give SIGBUS, as mainline and the RFC design do. Default false:
    /// the series as posted, where such an access is reported as MISSING and no UFFDIO_COPY can resolve it (EFAULT) — the
    /// named expected divergence of the design-equivalence tests.
    /// </summary>
    public bool PreCheckRespectsISize { get; init; }
}
