namespace PluginMm.Hmm;

/// <summary>
/// Declares an HMM device driver's interval-notifier callbacks (<c>struct mmu_interval_notifier_ops</c>,
/// include/linux/mmu_notifier.h): a partial class with a static <see cref="NotifierHookNames.Invalidate"/> hook, from
/// which the PluginMm generator emits <c>public static readonly global::PluginMm.Hmm.MmuIntervalNotifierOps Ops</c>
/// and <c>public const bool HasInvalidate</c>. A class without the hook fails to compile (PMM0011, with a code fix);
/// a hook with the wrong signature is PMM0012; a class that cannot carry the generated part is PMM0013.
/// </summary>
/// <remarks>
/// A driver may declare several, as <c>lib/test_hmm.c</c> does (<c>dmirror_min_ops</c> for the mirror,
/// <c>dmirror_mrn_ops</c> for a snapshot's temporary notifier).
/// </remarks>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class MmuIntervalNotifierOpsAttribute : Attribute
{
    /// <summary>Declares notifier callbacks called <paramref name="name"/> (shown in diagnostics and in <see cref="MmuIntervalNotifierOps.Name"/>).</summary>
    public MmuIntervalNotifierOpsAttribute(string name) => Name = name;

    /// <summary>The name, e.g. <c>"dmirror"</c>.</summary>
    public string Name { get; }
}

/// <summary>The hook names of an <see cref="MmuIntervalNotifierOpsAttribute"/> class.</summary>
public static class NotifierHookNames
{
    /// <summary><c>mmu_interval_notifier_ops-&gt;invalidate</c> (required).</summary>
    public const string Invalidate = nameof(Invalidate);
}

/// <summary>The exact hook signatures of an <see cref="MmuIntervalNotifierOpsAttribute"/> class, as C# source.</summary>
public static class NotifierHookSignatures
{
    /// <summary>
    /// <c>invalidate(interval_sub, range, cur_seq)</c>: called before the CPU page table changes in
    /// [<c>range.Start</c>, <c>range.End</c>); under the driver's own lock it must call
    /// <see cref="MmuIntervalNotifier.SetSeq"/> with <c>curSeq</c> and drop its device mappings of the range. Returns false
    /// only when the range is not blockable and the driver would have to sleep.
    /// </summary>
    public const string Invalidate = "public static bool Invalidate(global::PluginMm.Hmm.MmuIntervalNotifier interval, in global::PluginMm.Hmm.MmuNotifierRangeView range, ulong curSeq)";
}
