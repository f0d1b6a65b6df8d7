using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace PluginMm.Generators.Model;

/// <summary>How a hook is declared on a memory type.</summary>
internal enum HookState
{
    /// <summary>No member with the hook's name.</summary>
    Absent,
    /// <summary>A static method with exactly the expected signature.</summary>
    Valid,
    /// <summary>Members with the name exist, none with the expected signature (PMM0002).</summary>
    Invalid,
    /// <summary>A candidate uses a type the compiler cannot resolve: the compiler reports it; we stay quiet.</summary>
    Unresolved,
}

/// <summary>Why a type cannot carry the generated partial declaration (PMM0004). The name is the diagnostic property.</summary>
internal enum CarryProblem
{
    NotPartial,
    ContainingNotPartial,
    Generic,
    ContainingGeneric,
    FileLocal,
    Inaccessible,
    MemberClash,
    // Notifier classes only (PMM0013 covers these too):
    InvalidName,
    UnsafeCode,
    LanguageVersion,
}

/// <summary>A member named like a hook whose signature is wrong.</summary>
internal readonly struct HookIssue
{
    public HookIssue(HookDefinition hook, ISymbol member, string reason)
    {
        Hook = hook;
        Member = member;
        Reason = reason;
    }

    public HookDefinition Hook { get; }

    public ISymbol Member { get; }

    public string Reason { get; }
}

/// <summary>
/// The transient result of reading one <c>[MemoryType]</c> class. It holds symbols, so it is never cached:
/// the generator turns it into a <see cref="MemoryTypeSpec"/> at once and the analyzer into diagnostics.
/// </summary>
internal sealed class MemoryTypeInfo
{
    public MemoryTypeInfo(INamedTypeSymbol type) => Type = type;

    public INamedTypeSymbol Type { get; }

    /// <summary>The attribute is malformed (wrong arguments, unresolved values): the compiler reports it.</summary>
    public bool AttributeHasErrors { get; set; }

    public string? Name { get; set; }

    public int Backing { get; set; }

    public ulong Modes { get; set; }

    public bool SharedAnonymous { get; set; }

    public bool BackingDefined => HookCatalog.IsDefinedBacking(Backing);

    public bool ModesDefined => (Modes & ~HookCatalog.AllModes) == 0;

    public List<(CarryProblem Kind, string Reason)> CarryProblems { get; } = new();

    public HookState[] HookStates { get; } = new HookState[HookCatalog.All.Length];

    /// <summary>The method used for each valid hook (null if not valid).</summary>
    public IMethodSymbol?[] HookMethods { get; } = new IMethodSymbol?[HookCatalog.All.Length];

    public List<HookIssue> HookIssues { get; } = new();

    /// <summary>Methods whose name is a near miss of an absent hook's (PMM0016; "did you mean" in PMM0001).</summary>
    public List<(IMethodSymbol Method, HookDefinition Hook)> Misspellings { get; } = new();

    public int HookMask
    {
        get
        {
            int mask = 0;
            for (int i = 0; i < HookStates.Length; i++)
            {
                if (HookStates[i] == HookState.Valid)
                {
                    mask |= 1 << i;
                }
            }

            return mask;
        }
    }

    /// <summary>Null if the name is usable, else why not.</summary>
    public string? NameProblem => MemoryTypeReader.NameProblem(Name);
}

/// <summary>Reads a <c>[MemoryType]</c> class: the attribute's values, whether it can carry generated code, its hooks.</summary>
internal static class MemoryTypeReader
{
    /// <summary>The suffix of every hint name the generator uses (so the analyzer can tell our output from user code).</summary>
    public const string GeneratedFileSuffix = ".PluginMm.g.cs";

    public static readonly SymbolDisplayFormat TypeFormat = SymbolDisplayFormat.FullyQualifiedFormat;

    /// <summary>Finds the <c>[MemoryType]</c> attribute on <paramref name="type"/>, or null.</summary>
    public static AttributeData? FindAttribute(INamedTypeSymbol type)
    {
        foreach (var attribute in type.GetAttributes())
        {
            if (IsMemoryTypeAttribute(attribute.AttributeClass))
            {
                return attribute;
            }
        }

        return null;
    }

    public static bool IsMemoryTypeAttribute(INamedTypeSymbol? attributeClass) =>
        attributeClass is { Name: "MemoryTypeAttribute", ContainingNamespace: { Name: "PluginMm", ContainingNamespace.IsGlobalNamespace: true } };

    public static MemoryTypeInfo Read(INamedTypeSymbol type, AttributeData attribute, CancellationToken cancellationToken)
    {
        var info = new MemoryTypeInfo(type);
        ReadAttribute(info, attribute);
        ReadCarryProblems(info, type);
        for (int i = 0; i < HookCatalog.All.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ReadHook(info, type, HookCatalog.All[i]);
        }

        ReadMisspellings(info, type);
        return info;
    }

    private static void ReadMisspellings(MemoryTypeInfo info, INamedTypeSymbol type)
    {
        foreach (var member in type.GetMembers())
        {
            if (member is IMethodSymbol { MethodKind: MethodKind.Ordinary } method
                && !HookCatalog.TryGetHook(method.Name, out _)
                && NearestHook(method.Name) is { } hook
                && info.HookStates[(int)hook.Id] == HookState.Absent)
            {
                info.Misspellings.Add((method, hook));
            }
        }
    }

    /// <summary>
    /// The hook <paramref name="name"/> most likely misspells: one equal ignoring case, or within two edits
    /// (insert, delete, substitute, swap two neighbours) of a hook's name; null when none is that close.
    /// </summary>
    public static HookDefinition? NearestHook(string name)
    {
        HookDefinition? best = null;
        int bestDistance = int.MaxValue;
        foreach (var hook in HookCatalog.All)
        {
            if (string.Equals(name, hook.Name, StringComparison.OrdinalIgnoreCase))
            {
                return hook;
            }

            if (Math.Abs(name.Length - hook.Name.Length) > 2)
            {
                continue;
            }

            int d = EditDistance(name.ToLowerInvariant(), hook.Name.ToLowerInvariant());
            if (d < bestDistance)
            {
                bestDistance = d;
                best = hook;
            }
        }

        // Short hook names (Fault) are too close to ordinary words for two edits: allow one edit per five letters.
        return best is not null && bestDistance <= Math.Min(2, best.Name.Length / 5) ? best : null;
    }

    /// <summary>Optimal string alignment distance (Levenshtein plus swaps of adjacent characters).</summary>
    private static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (int j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                int v = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    v = Math.Min(v, d[i - 2, j - 2] + 1);
                }

                d[i, j] = v;
            }
        }

        return d[a.Length, b.Length];
    }

    /// <summary>Why a memory type name is not usable, or null if it is.</summary>
    public static string? NameProblem(string? name)
    {
        if (name is null)
        {
            return "it is null";
        }

        if (name.Length == 0)
        {
            return "it is empty";
        }

        foreach (char c in name)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                return "it contains whitespace or control characters";
            }
        }

        return null;
    }

    private static void ReadAttribute(MemoryTypeInfo info, AttributeData attribute)
    {
        if (attribute.AttributeConstructor is null || attribute.ConstructorArguments.Length != 1)
        {
            info.AttributeHasErrors = true;
            return;
        }

        var nameArg = attribute.ConstructorArguments[0];
        if (nameArg.Kind == TypedConstantKind.Error)
        {
            info.AttributeHasErrors = true;
            return;
        }

        info.Name = nameArg.Value as string;
        foreach (var named in attribute.NamedArguments)
        {
            if (named.Value.Kind == TypedConstantKind.Error || named.Value.Value is null)
            {
                info.AttributeHasErrors = true;
                continue;
            }

            try
            {
                switch (named.Key)
                {
                    case "Backing":
                        info.Backing = Convert.ToInt32(named.Value.Value, CultureInfo.InvariantCulture);
                        break;
                    case "Modes":
                        info.Modes = Convert.ToUInt64(named.Value.Value, CultureInfo.InvariantCulture);
                        break;
                    case "SharedAnonymous":
                        info.SharedAnonymous = named.Value.Value is true;
                        break;
                }
            }
            catch (Exception e) when (e is OverflowException or InvalidCastException or FormatException)
            {
                info.AttributeHasErrors = true;
            }
        }
    }

    private static void ReadCarryProblems(MemoryTypeInfo info, INamedTypeSymbol type)
    {
        if (type.TypeParameters.Length > 0)
        {
            info.CarryProblems.Add((CarryProblem.Generic, "it is generic; its table of function pointers needs one closed type"));
        }

        if (type.IsFileLocal)
        {
            info.CarryProblems.Add((CarryProblem.FileLocal, "it is a file-local type, which the assembly's MemoryTypeRegistry in another file cannot name"));
        }

        if (!IsPartialEverywhere(type))
        {
            info.CarryProblems.Add((CarryProblem.NotPartial, "it is not partial; add the 'partial' modifier so the generator can add Ops and the Has<Hook> constants"));
        }

        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            if (outer.TypeParameters.Length > 0)
            {
                info.CarryProblems.Add((CarryProblem.ContainingGeneric, $"its containing type '{outer.ToDisplayString()}' is generic"));
            }

            if (!IsPartialEverywhere(outer))
            {
                info.CarryProblems.Add((CarryProblem.ContainingNotPartial, $"its containing type '{outer.ToDisplayString()}' is not partial"));
            }

            if (outer.IsFileLocal)
            {
                info.CarryProblems.Add((CarryProblem.FileLocal, $"its containing type '{outer.ToDisplayString()}' is file-local, so neither the generated partial declaration nor the assembly's MemoryTypeRegistry (other files) can name it"));
            }
        }

        for (INamedTypeSymbol? t = type; t is not null; t = t.ContainingType)
        {
            if (t.DeclaredAccessibility is Accessibility.Private or Accessibility.Protected or Accessibility.ProtectedAndInternal)
            {
                info.CarryProblems.Add((CarryProblem.Inaccessible, $"'{t.ToDisplayString()}' is {AccessibilityText(t.DeclaredAccessibility)}, so the assembly's MemoryTypeRegistry cannot reach its table; make it internal or public"));
                break;
            }
        }

        foreach (var memberName in HookCatalog.GeneratedMemberNames)
        {
            foreach (var member in type.GetMembers(memberName))
            {
                if (!IsGeneratedByUs(member))
                {
                    info.CarryProblems.Add((CarryProblem.MemberClash, $"it declares a member named '{memberName}', which the generator emits; rename it"));
                    break;
                }
            }
        }
    }

    private static void ReadHook(MemoryTypeInfo info, INamedTypeSymbol type, HookDefinition hook)
    {
        var members = type.GetMembers(hook.Name);
        if (members.IsEmpty)
        {
            info.HookStates[(int)hook.Id] = HookState.Absent;
            return;
        }

        var issues = new List<HookIssue>();
        bool unresolved = false;
        foreach (var member in members)
        {
            if (member is IMethodSymbol { MethodKind: MethodKind.Ordinary } method)
            {
                if (UsesErrorType(method))
                {
                    unresolved = true;
                    continue;
                }

                string? reason = SignatureProblem(method, hook);
                if (reason is null)
                {
                    info.HookStates[(int)hook.Id] = HookState.Valid;
                    info.HookMethods[(int)hook.Id] = method;
                    return;
                }

                issues.Add(new HookIssue(hook, member, reason));
            }
            else
            {
                issues.Add(new HookIssue(hook, member, $"it is a {KindText(member)}, not a method"));
            }
        }

        if (unresolved)
        {
            info.HookStates[(int)hook.Id] = HookState.Unresolved;
            return;
        }

        info.HookStates[(int)hook.Id] = HookState.Invalid;
        info.HookIssues.AddRange(issues);
    }

    /// <summary>Why <paramref name="method"/> cannot be the hook, or null if it matches exactly.</summary>
    public static string? SignatureProblem(IMethodSymbol method, HookDefinition hook)
    {
        if (!method.IsStatic)
        {
            return "it is not static";
        }

        if (method.DeclaredAccessibility is not (Accessibility.Public or Accessibility.Internal))
        {
            return $"it is {AccessibilityText(method.DeclaredAccessibility)}; hooks must be public or internal";
        }

        if (method.IsGenericMethod)
        {
            return "it is generic";
        }

        if (method.IsPartialDefinition && method.PartialImplementationPart is null)
        {
            return "it is a partial method without an implementation";
        }

        if (method.IsVararg)
        {
            return "it takes __arglist";
        }

        if (method.ReturnsByRef || method.ReturnsByRefReadonly)
        {
            return "it returns by reference";
        }

        string returnType = method.ReturnType.ToDisplayString(TypeFormat);
        if (returnType != hook.ReturnType)
        {
            return $"it returns '{returnType}' instead of '{hook.ReturnType}'";
        }

        if (method.Parameters.Length != hook.Parameters.Length)
        {
            return $"it takes {method.Parameters.Length} parameter(s) instead of {hook.Parameters.Length}";
        }

        for (int i = 0; i < hook.Parameters.Length; i++)
        {
            var actual = method.Parameters[i];
            var expected = hook.Parameters[i];
            string actualType = actual.Type.ToDisplayString(TypeFormat);
            if (actual.RefKind != expected.RefKind || actualType != expected.Type)
            {
                return $"parameter {i + 1} '{actual.Name}' is '{RefKindText(actual.RefKind)}{actualType}' instead of '{RefKindText(expected.RefKind)}{expected.Type}'";
            }
        }

        foreach (var attribute in method.GetAttributes())
        {
            if (attribute.AttributeClass is { Name: "UnmanagedCallersOnlyAttribute" })
            {
                return "it is [UnmanagedCallersOnly] and cannot be called through a managed function pointer";
            }
        }

        return null;
    }

    /// <summary>True if <paramref name="member"/> is declared only in a file this generator produced.</summary>
    public static bool IsGeneratedByUs(ISymbol member)
    {
        var refs = member.DeclaringSyntaxReferences;
        if (refs.IsEmpty)
        {
            return false;
        }

        foreach (var r in refs)
        {
            if (!r.SyntaxTree.FilePath.EndsWith(GeneratedFileSuffix, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The identifier token of the type's first declaration (where type-level diagnostics go).</summary>
    public static Location IdentifierLocation(ISymbol symbol)
    {
        foreach (var r in symbol.DeclaringSyntaxReferences)
        {
            var node = r.GetSyntax();
            switch (node)
            {
                case BaseTypeDeclarationSyntax t when !r.SyntaxTree.FilePath.EndsWith(GeneratedFileSuffix, StringComparison.Ordinal):
                    return t.Identifier.GetLocation();
                case MethodDeclarationSyntax m:
                    return m.Identifier.GetLocation();
                case PropertyDeclarationSyntax p:
                    return p.Identifier.GetLocation();
                case VariableDeclaratorSyntax v:
                    return v.Identifier.GetLocation();
                case EventDeclarationSyntax e:
                    return e.Identifier.GetLocation();
            }
        }

        return symbol.Locations.IsEmpty ? Location.None : symbol.Locations[0];
    }

    internal static bool IsPartialEverywhere(INamedTypeSymbol type)
    {
        var refs = type.DeclaringSyntaxReferences;
        if (refs.IsEmpty)
        {
            return false;
        }

        foreach (var r in refs)
        {
            if (r.GetSyntax() is not TypeDeclarationSyntax declaration || !declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
            {
                return false;
            }
        }

        return true;
    }

    internal static bool UsesErrorType(IMethodSymbol method)
    {
        if (method.ReturnType.TypeKind == TypeKind.Error)
        {
            return true;
        }

        foreach (var p in method.Parameters)
        {
            if (p.Type.TypeKind == TypeKind.Error)
            {
                return true;
            }
        }

        return false;
    }

    public static string RefKindText(RefKind refKind) => refKind switch
    {
        RefKind.In => "in ",
        RefKind.Ref => "ref ",
        RefKind.Out => "out ",
        RefKind.RefReadOnlyParameter => "ref readonly ",
        _ => string.Empty,
    };

    private static string AccessibilityText(Accessibility accessibility) => accessibility switch
    {
        Accessibility.Private => "private",
        Accessibility.Protected => "protected",
        Accessibility.ProtectedAndInternal => "private protected",
        Accessibility.ProtectedOrInternal => "protected internal",
        Accessibility.Internal => "internal",
        Accessibility.Public => "public",
        _ => "inaccessible",
    };

    private static string KindText(ISymbol member) => member switch
    {
        IPropertySymbol => "property",
        IFieldSymbol => "field",
        IEventSymbol => "event",
        INamedTypeSymbol => "nested type",
        _ => member.Kind.ToString().ToLowerInvariant(),
    };
}
