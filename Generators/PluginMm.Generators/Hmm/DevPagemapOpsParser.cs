using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using PluginMm.Generators.Helpers;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Hmm;

/// <summary>
/// The ZONE_DEVICE page-map contract as the generator sees it (copied from <c>PluginMm.Hmm.DevPagemapHookSignatures</c>,
/// which a test compares): <c>struct dev_pagemap_ops</c> of Linux 6.18 (include/linux/memremap.h).
/// </summary>
internal static class DevPagemapCatalog
{
    public const string AttributeMetadataName = "PluginMm.Hmm.DevPagemapOpsAttribute";

    /// <summary><c>DevPagemapTypes.Private</c>.</summary>
    public const int TypePrivate = 1;

    /// <summary><c>DevPagemapTypes.Coherent</c>.</summary>
    public const int TypeCoherent = 2;

    /// <summary>Members the generator emits into the class.</summary>
    public static readonly string[] GeneratedMemberNames = { "Ops", "HasPageFree", "HasMigrateToRam", "HasMemoryFailure" };

    public static readonly DevPagemapHook PageFree = new(
        "PageFree", "dev_pagemap_ops->page_free", "void",
        "public static void PageFree(global::PluginMm.Folio page)",
        new[] { new HookParameter(RefKind.None, "global::PluginMm.Folio", "page") },
        "memremap_pages refuses a MEMORY_DEVICE_PRIVATE or MEMORY_DEVICE_COHERENT map without it: when a device page's last reference goes, free_zone_device_folio hands it back to the driver through page_free, or the driver never gets its memory back");

    public static readonly DevPagemapHook MigrateToRam = new(
        "MigrateToRam", "dev_pagemap_ops->migrate_to_ram", "global::PluginMm.VmFaultResult",
        "public static global::PluginMm.VmFaultResult MigrateToRam(ref global::PluginMm.VmFault vmf)",
        new[] { new HookParameter(RefKind.Ref, "global::PluginMm.VmFault", "vmf") },
        "the table serves MEMORY_DEVICE_PRIVATE memory, which the CPU cannot address: a CPU access to such a page faults and do_swap_page calls migrate_to_ram to bring it back to system memory; memremap_pages refuses a private map without it");

    public static readonly DevPagemapHook MemoryFailure = new(
        "MemoryFailure", "dev_pagemap_ops->memory_failure", "int",
        "public static int MemoryFailure(global::PluginMm.Hmm.DevPagemap pgmap, long pfn, long nrPages, int mfFlags)",
        new[]
        {
            new HookParameter(RefKind.None, "global::PluginMm.Hmm.DevPagemap", "pgmap"),
            new HookParameter(RefKind.None, "long", "pfn"),
            new HookParameter(RefKind.None, "long", "nrPages"),
            new HookParameter(RefKind.None, "int", "mfFlags"),
        },
        "optional");

    public static readonly DevPagemapHook[] All = { PageFree, MigrateToRam, MemoryFailure };

    public static bool IsAttribute(INamedTypeSymbol? attributeClass) =>
        attributeClass is
        {
            Name: "DevPagemapOpsAttribute",
            ContainingNamespace: { Name: "Hmm", ContainingNamespace: { Name: "PluginMm", ContainingNamespace.IsGlobalNamespace: true } },
        };
}

/// <summary>One hook of <c>struct dev_pagemap_ops</c>.</summary>
internal sealed class DevPagemapHook
{
    public DevPagemapHook(string name, string kernelName, string returnType, string signature, HookParameter[] parameters, string why)
    {
        Name = name;
        KernelName = kernelName;
        ReturnType = returnType;
        Signature = signature;
        Parameters = parameters;
        Why = why;
    }

    public string Name { get; }

    public string KernelName { get; }

    public string ReturnType { get; }

    public string Signature { get; }

    public HookParameter[] Parameters { get; }

    public string Why { get; }
}

/// <summary>The cached, equatable description of one page-map ops class (no Roslyn types).</summary>
internal sealed record DevPagemapOpsSpec(
    string Name,
    string? Namespace,
    string TypeName,
    string DeclarationKeyword,
    string FullyQualifiedName,
    EquatableArray<string> ContainingTypes,
    bool HasPageFree,
    bool HasMigrateToRam,
    bool HasMemoryFailure);

/// <summary>What a <c>[DevPagemapOps]</c> class declares and what is wrong with it, read from its symbol (transient).</summary>
internal sealed class DevPagemapOpsInfo
{
    public bool AttributeHasErrors { get; set; }

    public string? Name { get; set; }

    public int Types { get; set; }

    public Dictionary<string, HookState> Hooks { get; } = new();

    public List<(string Hook, ISymbol Member, string Reason)> SignatureIssues { get; } = new();

    public List<string> CarryProblems { get; } = new();

    public bool ServesPrivate => (Types & DevPagemapCatalog.TypePrivate) != 0;

    public HookState State(DevPagemapHook hook) => Hooks.TryGetValue(hook.Name, out var s) ? s : HookState.Absent;

    /// <summary>The required hooks that are absent (PMM0030).</summary>
    public IEnumerable<DevPagemapHook> MissingRequired()
    {
        if (State(DevPagemapCatalog.PageFree) == HookState.Absent)
        {
            yield return DevPagemapCatalog.PageFree;
        }

        if (ServesPrivate && State(DevPagemapCatalog.MigrateToRam) == HookState.Absent)
        {
            yield return DevPagemapCatalog.MigrateToRam;
        }
    }
}

/// <summary>The parser: reads a <c>[DevPagemapOps]</c> class into <see cref="DevPagemapOpsInfo"/> and, when valid, a spec.</summary>
internal static class DevPagemapOpsParser
{
    public static AttributeData? FindAttribute(INamedTypeSymbol type)
    {
        foreach (var attribute in type.GetAttributes())
        {
            if (DevPagemapCatalog.IsAttribute(attribute.AttributeClass))
            {
                return attribute;
            }
        }

        return null;
    }

    /// <summary>Reads the class into a spec, or null when the analyzer reports a problem (unsafe is checked separately).</summary>
    public static DevPagemapOpsSpec? Parse(INamedTypeSymbol type, AttributeData attribute)
    {
        var info = Read(type, attribute, unsafeAllowed: true);
        if (info.AttributeHasErrors || info.CarryProblems.Count > 0 || info.SignatureIssues.Count > 0)
        {
            return null;
        }

        foreach (var _ in info.MissingRequired())
        {
            return null;
        }

        foreach (var state in info.Hooks.Values)
        {
            if (state is HookState.Invalid or HookState.Unresolved)
            {
                return null;
            }
        }

        var containers = new List<string>();
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            string kind = outer.TypeKind == TypeKind.Struct ? (outer.IsRecord ? "record struct" : "struct") : outer.IsRecord ? "record" : "class";
            containers.Insert(0, (outer.IsStatic ? "static " : string.Empty) + "partial " + kind + " " + Escape(outer.Name));
        }

        return new DevPagemapOpsSpec(
            Name: info.Name!,
            Namespace: type.ContainingNamespace is { IsGlobalNamespace: false } ns
                ? ns.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat.WithGlobalNamespaceStyle(SymbolDisplayGlobalNamespaceStyle.Omitted))
                : null,
            TypeName: Escape(type.Name),
            DeclarationKeyword: type.IsRecord ? "record" : "class",
            FullyQualifiedName: type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            ContainingTypes: new EquatableArray<string>(containers.ToArray()),
            HasPageFree: info.State(DevPagemapCatalog.PageFree) == HookState.Valid,
            HasMigrateToRam: info.State(DevPagemapCatalog.MigrateToRam) == HookState.Valid,
            HasMemoryFailure: info.State(DevPagemapCatalog.MemoryFailure) == HookState.Valid);
    }

    public static DevPagemapOpsInfo Read(INamedTypeSymbol type, AttributeData attribute, bool unsafeAllowed)
    {
        var info = new DevPagemapOpsInfo();
        if (attribute.ConstructorArguments.Length != 2
            || attribute.ConstructorArguments[0].Kind == TypedConstantKind.Error
            || attribute.ConstructorArguments[1].Kind == TypedConstantKind.Error)
        {
            info.AttributeHasErrors = true;
            return info;
        }

        info.Name = attribute.ConstructorArguments[0].Value as string;
        if (MemoryTypeReader.NameProblem(info.Name) is { } nameProblem)
        {
            info.CarryProblems.Add("its name is invalid: " + nameProblem);
        }

        info.Types = attribute.ConstructorArguments[1].Value is int t ? t : 0;
        if (info.Types == 0 || (info.Types & ~(DevPagemapCatalog.TypePrivate | DevPagemapCatalog.TypeCoherent)) != 0)
        {
            info.CarryProblems.Add($"its types value {info.Types} is not a combination of DevPagemapTypes.Private and DevPagemapTypes.Coherent");
        }

        ReadCarryProblems(info, type, unsafeAllowed);
        foreach (var hook in DevPagemapCatalog.All)
        {
            ReadHook(info, type, hook);
        }

        return info;
    }

    private static void ReadCarryProblems(DevPagemapOpsInfo info, INamedTypeSymbol type, bool unsafeAllowed)
    {
        if (type.TypeParameters.Length > 0)
        {
            info.CarryProblems.Add("it is generic; its table of function pointers needs one closed type");
        }

        if (!MemoryTypeReader.IsPartialEverywhere(type))
        {
            info.CarryProblems.Add("it is not partial; add the 'partial' modifier so the generator can add Ops and the Has* constants");
        }

        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            if (outer.TypeParameters.Length > 0 || !MemoryTypeReader.IsPartialEverywhere(outer))
            {
                info.CarryProblems.Add($"its containing type '{outer.ToDisplayString()}' must be partial and non-generic");
            }
        }

        if (!unsafeAllowed)
        {
            info.CarryProblems.Add("its generated table takes the hooks' addresses (&PageFree); set <AllowUnsafeBlocks>true</AllowUnsafeBlocks> in the project");
        }

        foreach (var memberName in DevPagemapCatalog.GeneratedMemberNames)
        {
            foreach (var member in type.GetMembers(memberName))
            {
                if (!MemoryTypeReader.IsGeneratedByUs(member))
                {
                    info.CarryProblems.Add($"it declares a member named '{memberName}', which the generator emits; rename it");
                    break;
                }
            }
        }
    }

    private static void ReadHook(DevPagemapOpsInfo info, INamedTypeSymbol type, DevPagemapHook hook)
    {
        var members = type.GetMembers(hook.Name);
        if (members.IsEmpty)
        {
            info.Hooks[hook.Name] = HookState.Absent;
            return;
        }

        var issues = new List<(string, ISymbol, string)>();
        foreach (var member in members)
        {
            if (member is not IMethodSymbol { MethodKind: MethodKind.Ordinary } method)
            {
                issues.Add((hook.Name, member, "it is not a method"));
                continue;
            }

            if (MemoryTypeReader.UsesErrorType(method))
            {
                info.Hooks[hook.Name] = HookState.Unresolved;
                return;
            }

            string? reason = SignatureProblem(method, hook);
            if (reason is null)
            {
                info.Hooks[hook.Name] = HookState.Valid;
                return;
            }

            issues.Add((hook.Name, member, reason));
        }

        info.Hooks[hook.Name] = HookState.Invalid;
        info.SignatureIssues.AddRange(issues);
    }

    private static string? SignatureProblem(IMethodSymbol method, DevPagemapHook hook)
    {
        if (!method.IsStatic)
        {
            return "it is not static";
        }

        if (method.DeclaredAccessibility is not (Accessibility.Public or Accessibility.Internal))
        {
            return "it must be public or internal";
        }

        if (method.IsGenericMethod)
        {
            return "it is generic";
        }

        string returnType = method.ReturnsVoid ? "void" : method.ReturnType.ToDisplayString(MemoryTypeReader.TypeFormat);
        if (method.ReturnsByRef || method.ReturnsByRefReadonly || returnType != hook.ReturnType)
        {
            return $"it returns '{returnType}' instead of '{hook.ReturnType}'";
        }

        var expected = hook.Parameters;
        if (method.Parameters.Length != expected.Length)
        {
            return $"it takes {method.Parameters.Length} parameter(s) instead of {expected.Length}";
        }

        for (int i = 0; i < expected.Length; i++)
        {
            var actual = method.Parameters[i];
            string actualType = actual.Type.ToDisplayString(MemoryTypeReader.TypeFormat);
            if (actual.RefKind != expected[i].RefKind || actualType != expected[i].Type)
            {
                return $"parameter {i + 1} '{actual.Name}' is '{MemoryTypeReader.RefKindText(actual.RefKind)}{actualType}' instead of '{MemoryTypeReader.RefKindText(expected[i].RefKind)}{expected[i].Type}'";
            }
        }

        return null;
    }

    internal static string Escape(string identifier) =>
        SyntaxFacts.GetKeywordKind(identifier) != SyntaxKind.None ? "@" + identifier : identifier;
}
