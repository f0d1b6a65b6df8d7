namespace PluginMm.Runtime;

/// <summary>Which of the two fault-path designs the model runs (seeds 000, 001 and 003).</summary>
public enum FaultPathDesign
{
    /// <summary>
    /// Seed 000 (v3, the default): the generic <c>__do_userfault</c> in <c>__do_fault</c> calls the memory type's
    /// <c>GetFolioNoAlloc</c> before <c>-&gt;fault</c> and traps MINOR / MISSING itself.
    /// </summary>
    PreCheck = 0,

    /// <summary>
    /// Seed 001 (the RFC): <c>-&gt;fault</c> runs with <see cref="FaultFlags.UffdRetval"/> and reports a userfault by
    /// returning <see cref="VmFaultResult.UffdMinor"/> or <see cref="VmFaultResult.UffdMissing"/>; <c>__do_fault</c>
    /// then calls <c>handle_userfault</c> with that reason.
    /// </summary>
    RfcRetval = 1,
}
