using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using PluginMm.Generators.Helpers;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Hmm;

/// <summary>
/// The HMM driver contract as the generator sees it (copied from <c>PluginMm.Hmm.NotifierHookSignatures</c>, which a
/// test compares): an <c>[MmuIntervalNotifierOps]</c> class must declare <c>Invalidate</c>, the
/// <c>mmu_interval_notifier_ops-&gt;invalidate</c> callback.
/// </summary>
internal static class NotifierCatalog
{
    public const string AttributeMetadataName = "PluginMm.Hmm.MmuIntervalNotifierOpsAttribute";
    public const string InvalidateName = "Invalidate";
    public const string InvalidateKernelName = "mmu_interval_notifier_ops->invalidate";
    public const string InvalidateSignature = "public static bool Invalidate(global::PluginMm.Hmm.MmuIntervalNotifier interval, in global::PluginMm.Hmm.MmuNotifierRangeView range, ulong curSeq)";
    public const string InvalidateWhy = "every interval notifier needs it: the mm calls mmu_interval_notifier_ops->invalidate before it changes the CPU page table in the range, and the driver must bump the sequence (SetSeq) and drop its device mappings there, or the device keeps reading stale pages";

    /// <summary>Members the generator emits into the class.</summary>
    public static readonly string[] GeneratedMemberNames = { "Ops", "HasInvalidate" };

    public static readonly HookParameter[] Parameters =
    {
        new(RefKind.None, "global::PluginMm.Hmm.MmuIntervalNotifier", "interval"),
        new(RefKind.In, "global::PluginMm.Hmm.MmuNotifierRangeView", "range"),
        new(RefKind.None, "ulong", "curSeq"),
    };

    public static bool IsAttribute(INamedTypeSymbol? attributeClass) =>
        attributeClass is
        {
            Name: "MmuIntervalNotifierOpsAttribute",
            ContainingNamespace: { Name: "Hmm", ContainingNamespace: { Name: "PluginMm", ContainingNamespace.IsGlobalNamespace: true } },
        };
}

/// <summary>The cached, equatable description of one notifier ops class (no Roslyn types).</summary>
internal sealed record NotifierOpsSpec(
    string Name,
    string? Namespace,
    string TypeName,
    string DeclarationKeyword,
    string FullyQualifiedName,
    EquatableArray<string> ContainingTypes);

/// <summary>What is wrong with an <c>[MmuIntervalNotifierOps]</c> class, read from its symbol (transient, never cached).</summary>
internal sealed class NotifierOpsInfo
{
    public NotifierOpsInfo(INamedTypeSymbol type) => Type = type;

    public INamedTypeSymbol Type { get; }

    public bool AttributeHasErrors { get; set; }

    public string? Name { get; set; }

    public HookState Invalidate { get; set; }

    public List<(ISymbol Member, string Reason)> SignatureIssues { get; } = new();

    public List<(CarryProblem Kind, string Reason)> CarryProblems { get; } = new();
}

/// <summary>Reads an <c>[MmuIntervalNotifierOps]</c> class with the same rules as memory types.</summary>
internal static class NotifierOpsReader
{
    public static AttributeData? FindAttribute(INamedTypeSymbol type)
    {
        foreach (var attribute in type.GetAttributes())
        {
            if (NotifierCatalog.IsAttribute(attribute.AttributeClass))
            {
                return attribute;
            }
        }

        return null;
    }

    public static NotifierOpsInfo Read(INamedTypeSymbol type, AttributeData attribute, bool unsafeAllowed, bool languageVersionSupported = true)
    {
        var info = new NotifierOpsInfo(type);
        if (attribute.ConstructorArguments.Length != 1 || attribute.ConstructorArguments[0].Kind == TypedConstantKind.Error)
        {
            info.AttributeHasErrors = true;
            return info;
        }

        info.Name = attribute.ConstructorArguments[0].Value as string;
        if (MemoryTypeReader.NameProblem(info.Name) is { } nameProblem)
        {
            info.CarryProblems.Add((CarryProblem.InvalidName, "its name is invalid: " + nameProblem));
        }

        ReadCarryProblems(info, type, unsafeAllowed);
        if (!languageVersionSupported)
        {
            info.CarryProblems.Add((CarryProblem.LanguageVersion, $"its generated code needs C# {GenerationGate.MinimumLanguageVersionText} or later (nullable reference types); set <LangVersion>{GenerationGate.MinimumLanguageVersionText}</LangVersion> or later"));
        }

        ReadInvalidate(info, type);
        return info;
    }

    private static void ReadCarryProblems(NotifierOpsInfo info, INamedTypeSymbol type, bool unsafeAllowed)
    {
        if (type.TypeParameters.Length > 0)
        {
            info.CarryProblems.Add((CarryProblem.Generic, "it is generic; its table of function pointers needs one closed type"));
        }

        if (!MemoryTypeReader.IsPartialEverywhere(type))
        {
            info.CarryProblems.Add((CarryProblem.NotPartial, "it is not partial; add the 'partial' modifier so the generator can add Ops and HasInvalidate"));
        }

        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            if (outer.TypeParameters.Length > 0 || !MemoryTypeReader.IsPartialEverywhere(outer))
            {
                info.CarryProblems.Add((
                    MemoryTypeReader.IsPartialEverywhere(outer) ? CarryProblem.ContainingGeneric : CarryProblem.ContainingNotPartial,
                    $"its containing type '{outer.ToDisplayString()}' must be partial and non-generic"));
            }
        }

        for (INamedTypeSymbol? t = type; t is not null; t = t.ContainingType)
        {
            if (t.IsFileLocal)
            {
                info.CarryProblems.Add((CarryProblem.FileLocal, $"'{t.ToDisplayString()}' is file-local, so the generated partial declaration (another file) cannot name it"));
                break;
            }
        }

        if (!unsafeAllowed)
        {
            info.CarryProblems.Add((CarryProblem.UnsafeCode, "its generated table takes the hook's address (&Invalidate); set <AllowUnsafeBlocks>true</AllowUnsafeBlocks> in the project"));
        }

        foreach (var memberName in NotifierCatalog.GeneratedMemberNames)
        {
            foreach (var member in type.GetMembers(memberName))
            {
                if (!MemoryTypeReader.IsGeneratedByUs(member))
                {
                    info.CarryProblems.Add((CarryProblem.MemberClash, $"it declares a member named '{memberName}', which the generator emits; rename it"));
                    break;
                }
            }
        }
    }

    private static void ReadInvalidate(NotifierOpsInfo info, INamedTypeSymbol type)
    {
        var members = type.GetMembers(NotifierCatalog.InvalidateName);
        if (members.IsEmpty)
        {
            info.Invalidate = HookState.Absent;
            return;
        }

        foreach (var member in members)
        {
            if (member is not IMethodSymbol { MethodKind: MethodKind.Ordinary } method)
            {
                info.SignatureIssues.Add((member, "it is not a method"));
                continue;
            }

            if (MemoryTypeReader.UsesErrorType(method))
            {
                info.Invalidate = HookState.Unresolved;
                return;
            }

            string? reason = SignatureProblem(method);
            if (reason is null)
            {
                info.Invalidate = HookState.Valid;
                return;
            }

            info.SignatureIssues.Add((member, reason));
        }

        info.Invalidate = HookState.Invalid;
    }

    private static string? SignatureProblem(IMethodSymbol method)
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

        if (method.ReturnsByRef || method.ReturnsByRefReadonly || method.ReturnType.SpecialType != SpecialType.System_Boolean)
        {
            return $"it returns '{method.ReturnType.ToDisplayString(MemoryTypeReader.TypeFormat)}' instead of 'bool'";
        }

        var expected = NotifierCatalog.Parameters;
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
}
