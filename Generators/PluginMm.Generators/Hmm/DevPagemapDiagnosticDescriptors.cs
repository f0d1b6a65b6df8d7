using Microsoft.CodeAnalysis;
using PluginMm.Generators.Diagnostics;

namespace PluginMm.Generators.Hmm;

/// <summary>The PMM diagnostics of ZONE_DEVICE page-map plugins (<c>[DevPagemapOps]</c> classes).</summary>
public static class DevPagemapDiagnosticDescriptors
{
    private const string HooksCategory = "PluginMm.Hooks";
    private const string DeclarationCategory = "PluginMm.Declaration";

    /// <summary>PMM0030: "Page-map ops '{0}' is missing the required hook '{1}': {2}".</summary>
    public static readonly DiagnosticDescriptor MissingHook = Create(
        DiagnosticIds.MissingDevPagemapHook, "A ZONE_DEVICE page map lacks a required hook",
        "Page-map ops '{0}' is missing the required hook '{1}': {2}",
        HooksCategory, DiagnosticSeverity.Error,
        "memremap_pages refuses a MEMORY_DEVICE_PRIVATE map without page_free and migrate_to_ram, and a MEMORY_DEVICE_COHERENT map without page_free; PluginMm refuses it at compile time.");

    /// <summary>PMM0031: "Hook '{1}' of page-map ops '{0}' has the wrong signature: {2}; expected '{3}'".</summary>
    public static readonly DiagnosticDescriptor SignatureMismatch = Create(
        DiagnosticIds.DevPagemapHookSignatureMismatch, "A ZONE_DEVICE page-map hook has the wrong signature",
        "Hook '{1}' of page-map ops '{0}' has the wrong signature: {2}; expected '{3}'",
        HooksCategory, DiagnosticSeverity.Error,
        "The generated table takes each hook's address as a typed function pointer, so the method must match the contract exactly.");

    /// <summary>PMM0032: "Page-map ops '{0}' cannot carry the generated ops table: {1}".</summary>
    public static readonly DiagnosticDescriptor CannotCarryGeneratedCode = Create(
        DiagnosticIds.DevPagemapOpsCannotCarryGeneratedCode, "A ZONE_DEVICE page-map class cannot carry generated code",
        "Page-map ops '{0}' cannot carry the generated ops table: {1}",
        DeclarationCategory, DiagnosticSeverity.Error,
        "The generator adds Ops and the Has* constants through a partial declaration built with the hooks' addresses: the class and its containers must be partial and non-generic, the name valid, the types a combination of Private and Coherent, and unsafe code allowed.");

    /// <summary>PMM0033: "Hook 'MigrateToRam' of page-map ops '{0}' is never called: {1}".</summary>
    public static readonly DiagnosticDescriptor UnreachableMigrateToRam = Create(
        DiagnosticIds.UnreachableDevPagemapHook, "A ZONE_DEVICE page-map hook can never be called",
        "Hook 'MigrateToRam' of page-map ops '{0}' is never called: {1}",
        HooksCategory, DiagnosticSeverity.Warning,
        "migrate_to_ram is called only for MEMORY_DEVICE_PRIVATE pages; device-coherent pages are mapped by the CPU directly.");

    private static DiagnosticDescriptor Create(string id, string title, string message, string category, DiagnosticSeverity severity, string description) =>
        new(id, title, message, category, severity, isEnabledByDefault: true, description: description, helpLinkUri: DiagnosticDescriptors.HelpLink(id));
}
