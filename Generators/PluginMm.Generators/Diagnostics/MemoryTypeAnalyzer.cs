using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using PluginMm.Generators.Helpers;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Diagnostics;

/// <summary>
/// Reports everything wrong with a <c>[MemoryType]</c> class (PMM0001-PMM0010). The generator skips what this reports,
/// so the author gets either the generated table or an error that names the type, the hook and the reason.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class MemoryTypeAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.MissingRequiredHook,
        DiagnosticDescriptors.HookSignatureMismatch,
        DiagnosticDescriptors.ModeNotSupportedByBacking,
        DiagnosticDescriptors.TypeCannotCarryGeneratedCode,
        DiagnosticDescriptors.DuplicateMemoryTypeName,
        DiagnosticDescriptors.InvalidMemoryTypeName,
        DiagnosticDescriptors.UndefinedBackingOrModes,
        DiagnosticDescriptors.UnsafeCodeRequired,
        DiagnosticDescriptors.UnpairedFilemapHook,
        DiagnosticDescriptors.UnreachableHook,
        DiagnosticDescriptors.RegistryNamespaceClash,
        DiagnosticDescriptors.LanguageVersionTooLow,
        DiagnosticDescriptors.MisspelledHook);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(static start =>
        {
            // A compilation that cannot see the attribute has no memory types: do not look at any of its types.
            if (start.Compilation.GetTypeByMetadataName(HookCatalog.AttributeMetadataName) is null)
            {
                return;
            }

            var gate = new Gate(
                GenerationGate.UnsafeAllowed(start.Compilation),
                start.Compilation is CSharpCompilation c ? c.LanguageVersion : LanguageVersion.Latest);
            var byName = new ConcurrentDictionary<string, ConcurrentBag<(string Type, Location Location)>>(StringComparer.Ordinal);
            string registryNamespace = RegistryNamespace.Resolve(
                RegistryNamespace.ReadProperty(start.Options.AnalyzerConfigOptionsProvider.GlobalOptions), start.Compilation.AssemblyName);
            bool namespaceFromProperty = !string.IsNullOrWhiteSpace(RegistryNamespace.ReadProperty(start.Options.AnalyzerConfigOptionsProvider.GlobalOptions));
            start.RegisterSymbolAction(ctx => AnalyzeType(ctx, gate, byName), SymbolKind.NamedType);
            start.RegisterCompilationEndAction(end =>
            {
                ReportDuplicates(end, byName);
                ReportRegistryNamespaceClash(end, byName, registryNamespace, namespaceFromProperty);
            });
        });
    }

    /// <summary>The compilation-wide conditions of <see cref="GenerationGate"/>, read once per compilation.</summary>
    private sealed record Gate(bool UnsafeAllowed, LanguageVersion LanguageVersion);

    private static void AnalyzeType(
        SymbolAnalysisContext context,
        Gate gate,
        ConcurrentDictionary<string, ConcurrentBag<(string Type, Location Location)>> byName)
    {
        if (context.Symbol is not INamedTypeSymbol { TypeKind: TypeKind.Class } type || MemoryTypeReader.FindAttribute(type) is not { } attribute)
        {
            return;
        }

        var info = MemoryTypeReader.Read(type, attribute, context.CancellationToken);
        if (info.AttributeHasErrors)
        {
            return; // the compiler already reports the malformed attribute
        }

        string typeName = type.ToDisplayString();
        var location = MemoryTypeReader.IdentifierLocation(type);

        foreach (var (kind, reason) in info.CarryProblems)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.TypeCannotCarryGeneratedCode, location,
                ImmutableDictionary<string, string?>.Empty.Add(DiagnosticDescriptors.ProblemProperty, kind.ToString()),
                typeName, reason));
        }

        if (info.NameProblem is { } nameProblem)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InvalidMemoryTypeName, location, typeName, nameProblem));
        }
        else
        {
            byName.GetOrAdd(info.Name!, static _ => new ConcurrentBag<(string, Location)>()).Add((typeName, location));
        }

        if (gate.LanguageVersion < GenerationGate.MinimumLanguageVersion)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.LanguageVersionTooLow, location, typeName,
                GenerationGate.MinimumLanguageVersionText, gate.LanguageVersion.ToDisplayString()));
        }

        if (!gate.UnsafeAllowed)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.UnsafeCodeRequired, location, typeName, FirstDeclaredHook(info)));
        }

        if (!info.BackingDefined)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.UndefinedBackingOrModes, location, typeName,
                "Backing = (Backing)" + info.Backing.ToString(CultureInfo.InvariantCulture),
                "Backing must be Anonymous, PageCache or HugeTlb"));
        }

        if (!info.ModesDefined)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.UndefinedBackingOrModes, location, typeName,
                "Modes = (UffdModes)" + info.Modes.ToString(CultureInfo.InvariantCulture),
                "Modes must be a combination of Missing (1), Wp (2) and Minor (4)"));
        }

        foreach (var issue in info.HookIssues)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.HookSignatureMismatch, MemoryTypeReader.IdentifierLocation(issue.Member),
                HookProperties(issue.Hook.Name),
                typeName, issue.Hook.Name, issue.Reason, issue.Hook.Signature));
        }

        if (!info.BackingDefined || !info.ModesDefined)
        {
            return; // the hook rules are defined only for the known backings and modes
        }

        string backingName = HookCatalog.BackingName(info.Backing);
        if (HookRules.UnsupportedMode(info.Backing, info.Modes) is { } unsupported)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.ModeNotSupportedByBacking, location, typeName, unsupported.Mode, backingName, unsupported.Reason));
        }

        var missingReported = new bool[HookCatalog.All.Length];
        foreach (var hook in HookCatalog.All)
        {
            int i = (int)hook.Id;
            if (info.HookStates[i] == HookState.Absent && HookRules.RequiredBecause(hook.Id, info.Backing, info.Modes) is { } why)
            {
                missingReported[i] = true;
                var properties = HookProperties(hook.Name);
                foreach (var (method, misspelled) in info.Misspellings)
                {
                    if (misspelled.Id == hook.Id)
                    {
                        why += $"; '{method.Name}' is declared: did you mean '{hook.Name}'?";
                        properties = properties.SetItem(DiagnosticDescriptors.SuggestionProperty, method.Name);
                        break;
                    }
                }

                context.ReportDiagnostic(Diagnostic.Create(
                    DiagnosticDescriptors.MissingRequiredHook, location, properties, typeName, hook.Name, why));
            }
        }

        foreach (var (method, hook) in info.Misspellings)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.MisspelledHook, MemoryTypeReader.IdentifierLocation(method),
                HookProperties(hook.Name), typeName, method.Name, hook.Name));
        }

        ReportUnpaired(context, info, typeName, HookId.FilemapAdd, HookId.FilemapRemove, missingReported);
        ReportUnpaired(context, info, typeName, HookId.FilemapRemove, HookId.FilemapAdd, missingReported);

        foreach (var hook in HookCatalog.All)
        {
            if (info.HookMethods[(int)hook.Id] is { } method && HookRules.UnreachableBecause(hook.Id, info.Backing, info.Modes) is { } why)
            {
                context.ReportDiagnostic(Diagnostic.Create(
                    DiagnosticDescriptors.UnreachableHook, MemoryTypeReader.IdentifierLocation(method), HookProperties(hook.Name), typeName, hook.Name, why));
            }
        }
    }

    private static void ReportUnpaired(SymbolAnalysisContext context, MemoryTypeInfo info, string typeName, HookId present, HookId other, bool[] missingReported)
    {
        if (info.HookStates[(int)present] == HookState.Absent || info.HookStates[(int)other] != HookState.Absent || missingReported[(int)other])
        {
            return;
        }

        string presentName = HookCatalog.Names[(int)present];
        string otherName = HookCatalog.Names[(int)other];
        var members = info.Type.GetMembers(presentName);
        var location = members.IsEmpty ? MemoryTypeReader.IdentifierLocation(info.Type) : MemoryTypeReader.IdentifierLocation(members[0]);
        context.ReportDiagnostic(Diagnostic.Create(
            DiagnosticDescriptors.UnpairedFilemapHook, location, HookProperties(otherName), typeName, presentName, otherName));
    }

    private static void ReportDuplicates(
        CompilationAnalysisContext context,
        ConcurrentDictionary<string, ConcurrentBag<(string Type, Location Location)>> byName)
    {
        foreach (var pair in byName)
        {
            var types = pair.Value.ToArray();
            if (types.Length < 2)
            {
                continue;
            }

            Array.Sort(types, static (a, b) => string.CompareOrdinal(a.Type, b.Type));
            for (int i = 0; i < types.Length; i++)
            {
                var (type, location) = types[i];
                var others = new List<string>();
                for (int j = 0; j < types.Length; j++)
                {
                    if (j != i)
                    {
                        others.Add(types[j].Type);
                    }
                }

                context.ReportDiagnostic(Diagnostic.Create(
                    DiagnosticDescriptors.DuplicateMemoryTypeName, location, type, pair.Key, string.Join("', '", others)));
            }
        }
    }

    private static void ReportRegistryNamespaceClash(
        CompilationAnalysisContext context,
        ConcurrentDictionary<string, ConcurrentBag<(string Type, Location Location)>> byName,
        string registryNamespace,
        bool fromProperty)
    {
        if (byName.IsEmpty || RegistryNamespace.ClashingType(context.Compilation, registryNamespace) is not { } type)
        {
            return; // no registry is generated without memory types
        }

        context.ReportDiagnostic(Diagnostic.Create(
            DiagnosticDescriptors.RegistryNamespaceClash, MemoryTypeReader.IdentifierLocation(type),
            registryNamespace, fromProperty ? "the PluginMmRegistryNamespace property" : "the assembly name, the default", type.ToDisplayString()));
    }

    private static string FirstDeclaredHook(MemoryTypeInfo info)
    {
        for (int i = 0; i < info.HookStates.Length; i++)
        {
            if (info.HookStates[i] != HookState.Absent)
            {
                return HookCatalog.Names[i];
            }
        }

        return HookCatalog.Names[(int)HookId.CanUserfault];
    }

    private static ImmutableDictionary<string, string?> HookProperties(string hook) =>
        ImmutableDictionary<string, string?>.Empty.Add(DiagnosticDescriptors.HookProperty, hook);
}
