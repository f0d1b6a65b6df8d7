namespace PluginMm.Runtime;

/// <summary>Which fault-path design the model runs: the two userfault designs of seeds 000 and 001, or none (seed 003's baseline).</summary>
public enum FaultPathDesign
{
    /// <summary>
    /// Seed 000 (v3, the default): the generic <c>__do_userfault</c> in <c>__do_fault</c> calls the memory type's
    /// <c>GetFolioNoAlloc</c> before <c>-&gt;fault</c> and traps MINOR / MISSING itself.
    /// </summary>
    PreCheck = 0,

    /// <summary>
    /// Seed 001 (the RFC): <c>-&gt;fault</c> is told so (<see cref="VmFault.UserfaultRetval"/>) and reports a userfault by
    /// returning <see cref="VmFaultResult.UffdMinor"/> or <see cref="VmFaultResult.UffdMissing"/>; <c>__do_fault</c>
    /// then calls <c>handle_userfault</c> with that reason.
    /// </summary>
    RfcRetval = 1,

    /// <summary>
    /// The fault path built with no userfault code, as with <c>CONFIG_USERFAULTFD=n</c>: <c>__do_fault</c> runs no
    /// <c>__do_userfault</c> pre-check and <c>-&gt;fault</c> is never asked to report a userfault; <c>userfaultfd(2)</c> and
    /// <c>/dev/userfaultfd</c> fail with ENOSYS, so no VMA can be registered. The baseline of seed 003 (a)'s benchmark
    /// (bench/PluginMm.Bench): what the fault path costs without userfaultfd at all.
    /// </summary>
    NoUserfault = 2,
}
