namespace PluginMm.Generators.Diagnostics;

/// <summary>The stable PMM diagnostic IDs. Never reuse or renumber one; add new ones at the end.</summary>
public static class DiagnosticIds
{
    /// <summary>A required hook is missing.</summary>
    public const string MissingRequiredHook = "PMM0001";

    /// <summary>A hook exists but its signature does not match.</summary>
    public const string HookSignatureMismatch = "PMM0002";

    /// <summary>A declared mode the backing cannot support.</summary>
    public const string ModeNotSupportedByBacking = "PMM0003";

    /// <summary>The type cannot carry generated code.</summary>
    public const string TypeCannotCarryGeneratedCode = "PMM0004";

    /// <summary>Two memory types with one name in a compilation.</summary>
    public const string DuplicateMemoryTypeName = "PMM0005";

    /// <summary>The memory type name is null, empty or contains whitespace/control characters.</summary>
    public const string InvalidMemoryTypeName = "PMM0006";

    /// <summary>The declared backing or modes are not values the enums define.</summary>
    public const string UndefinedBackingOrModes = "PMM0007";

    /// <summary>The project does not allow unsafe code, which the generated tables need.</summary>
    public const string UnsafeCodeRequired = "PMM0008";

    /// <summary>FilemapAdd without FilemapRemove or the other way round.</summary>
    public const string UnpairedFilemapHook = "PMM0009";

    /// <summary>A hook that can never be called given the declared backing and modes.</summary>
    public const string UnreachableHook = "PMM0010";

    /// <summary>An <c>[MmuIntervalNotifierOps]</c> class (an HMM driver's notifier) has no <c>Invalidate</c> hook.</summary>
    public const string MissingNotifierInvalidate = "PMM0011";

    /// <summary>An <c>[MmuIntervalNotifierOps]</c> class's <c>Invalidate</c> has the wrong signature.</summary>
    public const string NotifierHookSignatureMismatch = "PMM0012";

    /// <summary>An <c>[MmuIntervalNotifierOps]</c> class cannot carry its generated ops table.</summary>
    public const string NotifierOpsCannotCarryGeneratedCode = "PMM0013";

    /// <summary>The registry's namespace is also the name of a type of the assembly (CS0101 on the user's type otherwise).</summary>
    public const string RegistryNamespaceClash = "PMM0014";

    /// <summary>The project's C# version is older than the generated code needs.</summary>
    public const string LanguageVersionTooLow = "PMM0015";

    /// <summary>A static method whose name is a near miss of a hook's (a misspelled hook the table never points to).</summary>
    public const string MisspelledHook = "PMM0016";

    /// <summary>A <c>[DevPagemapOps]</c> class (a ZONE_DEVICE page map's ops) lacks a hook its memory types require.</summary>
    public const string MissingDevPagemapHook = "PMM0030";

    /// <summary>A <c>[DevPagemapOps]</c> hook has the wrong signature.</summary>
    public const string DevPagemapHookSignatureMismatch = "PMM0031";

    /// <summary>A <c>[DevPagemapOps]</c> class cannot carry its generated ops table.</summary>
    public const string DevPagemapOpsCannotCarryGeneratedCode = "PMM0032";

    /// <summary>A <c>[DevPagemapOps]</c> hook that can never be called (MigrateToRam on device-coherent-only memory).</summary>
    public const string UnreachableDevPagemapHook = "PMM0033";
}
