using Microsoft.CodeAnalysis;
using PluginMm.Generators.Diagnostics;

namespace PluginMm.Generators.Hmm;

/// <summary>The PMM diagnostics of HMM driver plugins (<c>[MmuIntervalNotifierOps]</c> classes).</summary>
public static class NotifierDiagnosticDescriptors
{
    private const string HooksCategory = "PluginMm.Hooks";
    private const string DeclarationCategory = "PluginMm.Declaration";

    /// <summary>PMM0011: "Interval notifier ops '{0}' is missing the required hook 'Invalidate': {1}".</summary>
    public static readonly DiagnosticDescriptor MissingInvalidate = Create(
        DiagnosticIds.MissingNotifierInvalidate, "An HMM interval notifier has no Invalidate hook",
        "Interval notifier ops '{0}' is missing the required hook 'Invalidate': {1}",
        HooksCategory, DiagnosticSeverity.Error,
        "mmu_interval_notifier_ops->invalidate is how a device driver learns that the CPU page table is about to change; the kernel has no default and calls it unconditionally.");

    /// <summary>PMM0012: "Hook 'Invalidate' of interval notifier ops '{0}' has the wrong signature: {1}; expected '{2}'".</summary>
    public static readonly DiagnosticDescriptor InvalidateSignatureMismatch = Create(
        DiagnosticIds.NotifierHookSignatureMismatch, "An HMM interval notifier's Invalidate has the wrong signature",
        "Hook 'Invalidate' of interval notifier ops '{0}' has the wrong signature: {1}; expected '{2}'",
        HooksCategory, DiagnosticSeverity.Error,
        "The generated table takes the hook's address as a typed function pointer, so the method must match the contract exactly.");

    /// <summary>PMM0013: "Interval notifier ops '{0}' cannot carry the generated ops table: {1}".</summary>
    public static readonly DiagnosticDescriptor CannotCarryGeneratedCode = Create(
        DiagnosticIds.NotifierOpsCannotCarryGeneratedCode, "An HMM interval notifier class cannot carry generated code",
        "Interval notifier ops '{0}' cannot carry the generated ops table: {1}",
        DeclarationCategory, DiagnosticSeverity.Error,
        "The generator adds Ops and HasInvalidate through a partial declaration built with '&Invalidate': the class and its containers must be partial and non-generic, the name valid, and unsafe code allowed.");

    private static DiagnosticDescriptor Create(string id, string title, string message, string category, DiagnosticSeverity severity, string description) =>
        new(id, title, message, category, severity, isEnabledByDefault: true, description: description, helpLinkUri: DiagnosticDescriptors.HelpLink(id));
}
