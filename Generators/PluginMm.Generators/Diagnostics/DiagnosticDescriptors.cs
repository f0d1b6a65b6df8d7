using Microsoft.CodeAnalysis;

namespace PluginMm.Generators.Diagnostics;

/// <summary>Every PMM diagnostic, in one place. Message arguments are always strings (never symbols).</summary>
public static class DiagnosticDescriptors
{
    private const string HooksCategory = "PluginMm.Hooks";
    private const string DeclarationCategory = "PluginMm.Declaration";
    private const string BuildCategory = "PluginMm.Build";

    /// <summary>Property carrying the hook name (PMM0001, PMM0002, PMM0009, PMM0010); the PMM0001 fix reads it.</summary>
    public const string HookProperty = "Hook";

    /// <summary>Property carrying the method a misspelled hook most likely is (PMM0001 "did you mean", PMM0016).</summary>
    public const string SuggestionProperty = "Suggestion";

    /// <summary>Property carrying the <c>CarryProblem</c> kind (PMM0004); the PMM0004 fix reads it.</summary>
    public const string ProblemProperty = "Problem";

    /// <summary>
    /// The help page of a diagnostic: <c>docs/diagnostics/&lt;id&gt;.md</c> in the repository whose address the build's
    /// <c>PluginMmRepositoryUrl</c> property gives (the packages' <c>RepositoryUrl</c>); the same pages ship inside the
    /// PluginMm package under <c>docs/diagnostics/</c>.
    /// </summary>
    public static string HelpLink(string id) => $"{ThisPackage.RepositoryUrl}/blob/main/docs/diagnostics/{id}.md";

    /// <summary>PMM0001: "Memory type '{0}' is missing the required hook '{1}': {2}".</summary>
    public static readonly DiagnosticDescriptor MissingRequiredHook = Create(
        DiagnosticIds.MissingRequiredHook, "A required hook is missing",
        "Memory type '{0}' is missing the required hook '{1}': {2}",
        HooksCategory, DiagnosticSeverity.Error,
        "Given its backing and modes, the memory type must declare this static hook; the kernel would find the gap only at run time (UFFDIO_REGISTER fails or a NULL op is called).");

    /// <summary>PMM0002: "Hook '{1}' of memory type '{0}' has the wrong signature: {2}; expected '{3}'".</summary>
    public static readonly DiagnosticDescriptor HookSignatureMismatch = Create(
        DiagnosticIds.HookSignatureMismatch, "A hook's signature does not match",
        "Hook '{1}' of memory type '{0}' has the wrong signature: {2}; expected '{3}'",
        HooksCategory, DiagnosticSeverity.Error,
        "A member named after a hook must be a static method with exactly the hook's signature (it may be public or internal), because the generated table takes its address as a typed function pointer.");

    /// <summary>PMM0003: "Memory type '{0}' declares {1} on {2} backing, which the kernel cannot support: {3}".</summary>
    public static readonly DiagnosticDescriptor ModeNotSupportedByBacking = Create(
        DiagnosticIds.ModeNotSupportedByBacking, "A declared mode the backing cannot support",
        "Memory type '{0}' declares {1} on {2} backing, which the kernel cannot support: {3}",
        DeclarationCategory, DiagnosticSeverity.Error,
        "Some userfaultfd modes need something the backing does not have; the kernel rejects such a registration with EINVAL.");

    /// <summary>PMM0004: "Memory type '{0}' cannot carry the generated ops table: {1}".</summary>
    public static readonly DiagnosticDescriptor TypeCannotCarryGeneratedCode = Create(
        DiagnosticIds.TypeCannotCarryGeneratedCode, "The type cannot carry generated code",
        "Memory type '{0}' cannot carry the generated ops table: {1}",
        DeclarationCategory, DiagnosticSeverity.Error,
        "The generator adds Ops and Has<Hook> to the class through a partial declaration, and lists it in the assembly's MemoryTypeRegistry: the class and every containing type must be partial and non-generic, and the class must be reachable from the assembly.");

    /// <summary>PMM0005: "Memory type name '{1}' of '{0}' is also used by '{2}'; names must be unique in a compilation".</summary>
    public static readonly DiagnosticDescriptor DuplicateMemoryTypeName = Create(
        DiagnosticIds.DuplicateMemoryTypeName, "Two memory types with one name",
        "Memory type name '{1}' of '{0}' is also used by '{2}'; names must be unique in a compilation",
        DeclarationCategory, DiagnosticSeverity.Error,
        "MemoryTypeRegistry.Find looks memory types up by name, so a name must identify one type.",
        WellKnownDiagnosticTags.CompilationEnd);

    /// <summary>PMM0006: "Memory type '{0}' has an invalid name: {1}".</summary>
    public static readonly DiagnosticDescriptor InvalidMemoryTypeName = Create(
        DiagnosticIds.InvalidMemoryTypeName, "Invalid memory type name",
        "Memory type '{0}' has an invalid name: {1}",
        DeclarationCategory, DiagnosticSeverity.Error,
        "A memory type name is how the registry and diagnostics refer to it: it must be a non-empty string without whitespace or control characters, e.g. \"shmem\".");

    /// <summary>PMM0007: "Memory type '{0}' declares {1}, which is not defined: {2}".</summary>
    public static readonly DiagnosticDescriptor UndefinedBackingOrModes = Create(
        DiagnosticIds.UndefinedBackingOrModes, "Undefined backing or mode value",
        "Memory type '{0}' declares {1}, which is not defined: {2}",
        DeclarationCategory, DiagnosticSeverity.Error,
        "Backing must be Anonymous, PageCache or HugeTlb, and Modes a combination of Missing, Wp and Minor; other values (casts of numbers) have no meaning to the kernel.");

    /// <summary>PMM0008: "Memory type '{0}' needs unsafe code: ...".</summary>
    public static readonly DiagnosticDescriptor UnsafeCodeRequired = Create(
        DiagnosticIds.UnsafeCodeRequired, "Unsafe code is not allowed in the project",
        "Memory type '{0}' needs unsafe code: its generated table takes the hooks' addresses (&{1}); set <AllowUnsafeBlocks>true</AllowUnsafeBlocks> in the project",
        BuildCategory, DiagnosticSeverity.Error,
        "The generated tables are structs of function pointers built with '&Hook', which C# allows only with AllowUnsafeBlocks. The PluginMm package sets it; a project referencing the generator directly must set it itself.");

    /// <summary>PMM0009: "Memory type '{0}' declares '{1}' without '{2}': the two are always used as a pair".</summary>
    public static readonly DiagnosticDescriptor UnpairedFilemapHook = Create(
        DiagnosticIds.UnpairedFilemapHook, "FilemapAdd and FilemapRemove must be declared as a pair",
        "Memory type '{0}' declares '{1}' without '{2}': the two are always used as a pair (UFFDIO_COPY removes with filemap_remove what filemap_add inserted when the PTE cannot be installed)",
        HooksCategory, DiagnosticSeverity.Error,
        "The fill path that calls filemap_add must be able to undo it with filemap_remove; one without the other leaves a folio in the page cache that nothing maps.");

    /// <summary>PMM0010: "Hook '{1}' of memory type '{0}' can never be called: {2}".</summary>
    public static readonly DiagnosticDescriptor UnreachableHook = Create(
        DiagnosticIds.UnreachableHook, "A hook that can never be called",
        "Hook '{1}' of memory type '{0}' can never be called: {2}",
        HooksCategory, DiagnosticSeverity.Warning,
        "Given the declared backing and modes, no kernel path calls this hook; it is probably meant for another backing or a mode the attribute does not declare.");

    /// <summary>PMM0014: "The MemoryTypeRegistry namespace '{0}' ({1}) is also the name of the type '{2}'; ...".</summary>
    public static readonly DiagnosticDescriptor RegistryNamespaceClash = Create(
        DiagnosticIds.RegistryNamespaceClash, "The registry's namespace is the name of a type",
        "The MemoryTypeRegistry namespace '{0}' ({1}) is also the name of the type '{2}', which C# does not allow (CS0101); set the MSBuild property <PluginMmRegistryNamespace> to another namespace, e.g. <PluginMmRegistryNamespace>{0}.Registry</PluginMmRegistryNamespace>",
        BuildCategory, DiagnosticSeverity.Error,
        "The generated MemoryTypeRegistry lives in the namespace named by the PluginMmRegistryNamespace property, by default the assembly name. A namespace and a type of one name cannot coexist, so the generator emits no registry and reports this instead of letting the build fail on the user's own type.",
        WellKnownDiagnosticTags.CompilationEnd);

    /// <summary>PMM0015: "Memory type '{0}' needs C# {1} or later ...".</summary>
    public static readonly DiagnosticDescriptor LanguageVersionTooLow = Create(
        DiagnosticIds.LanguageVersionTooLow, "The project's C# version is too old for the generated code",
        "Memory type '{0}' needs C# {1} or later: its generated table and the registry use nullable reference types; the project uses C# {2}, set <LangVersion>{1}</LangVersion> or later (or remove LangVersion to use the SDK's default)",
        BuildCategory, DiagnosticSeverity.Error,
        "The generated code uses C# 8 (#nullable, nullable reference annotations). With an older LangVersion the generator emits nothing and reports this, instead of the build failing inside generated code (CS8370).");

    /// <summary>PMM0016: "Method '{1}' of memory type '{0}' is not a hook and the table never calls it; did you mean '{2}'?".</summary>
    public static readonly DiagnosticDescriptor MisspelledHook = Create(
        DiagnosticIds.MisspelledHook, "A method named like a misspelled hook",
        "Method '{1}' of memory type '{0}' is not a hook and the table never calls it; did you mean '{2}'?",
        HooksCategory, DiagnosticSeverity.Warning,
        "Hooks are found by their exact name. A static method whose name differs from a hook's only in case or by a letter or two is almost always that hook misspelled: the table's slot stays null and the method is dead code.");

    private static DiagnosticDescriptor Create(
        string id, string title, string message, string category, DiagnosticSeverity severity, string description, params string[] tags) =>
        new(id, title, message, category, severity, isEnabledByDefault: true, description: description, helpLinkUri: HelpLink(id), customTags: tags);
}
