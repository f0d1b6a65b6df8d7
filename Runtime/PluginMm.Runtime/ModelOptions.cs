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
}
