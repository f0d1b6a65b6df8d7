using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using PluginMm.Generators.Diagnostics;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Hmm;

/// <summary>
/// Reports what is wrong with a <c>[DevPagemapOps]</c> class (PMM0030-PMM0033): a driver gets its generated
/// <c>dev_pagemap_ops</c> table or a compile error naming the hook and why the kernel needs it.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class DevPagemapOpsAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DevPagemapDiagnosticDescriptors.MissingHook,
        DevPagemapDiagnosticDescriptors.SignatureMismatch,
        DevPagemapDiagnosticDescriptors.CannotCarryGeneratedCode,
        DevPagemapDiagnosticDescriptors.UnreachableMigrateToRam);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(static start =>
        {
            bool unsafeAllowed = start.Compilation.Options is CSharpCompilationOptions { AllowUnsafe: true };
            start.RegisterSymbolAction(ctx => Analyze(ctx, unsafeAllowed), SymbolKind.NamedType);
        });
    }

    private static void Analyze(SymbolAnalysisContext context, bool unsafeAllowed)
    {
        if (context.Symbol is not INamedTypeSymbol { TypeKind: TypeKind.Class } type || DevPagemapOpsParser.FindAttribute(type) is not { } attribute)
        {
            return;
        }

        var info = DevPagemapOpsParser.Read(type, attribute, unsafeAllowed);
        if (info.AttributeHasErrors)
        {
            return;
        }

        string typeName = type.ToDisplayString();
        var location = MemoryTypeReader.IdentifierLocation(type);
        foreach (var problem in info.CarryProblems)
        {
            context.ReportDiagnostic(Diagnostic.Create(DevPagemapDiagnosticDescriptors.CannotCarryGeneratedCode, location, typeName, problem));
        }

        foreach (var hook in info.MissingRequired())
        {
            var properties = ImmutableDictionary<string, string?>.Empty.Add(DiagnosticDescriptors.HookProperty, hook.Name);
            context.ReportDiagnostic(Diagnostic.Create(DevPagemapDiagnosticDescriptors.MissingHook, location, properties, typeName, hook.Name, hook.Why));
        }

        foreach (var (hookName, member, reason) in info.SignatureIssues)
        {
            var hook = System.Array.Find(DevPagemapCatalog.All, h => h.Name == hookName)!;
            var properties = ImmutableDictionary<string, string?>.Empty.Add(DiagnosticDescriptors.HookProperty, hookName);
            context.ReportDiagnostic(Diagnostic.Create(
                DevPagemapDiagnosticDescriptors.SignatureMismatch, MemoryTypeReader.IdentifierLocation(member), properties,
                typeName, hookName, reason, hook.Signature));
        }

        if (!info.ServesPrivate && info.Types != 0 && info.State(DevPagemapCatalog.MigrateToRam) == HookState.Valid)
        {
            foreach (var member in type.GetMembers(DevPagemapCatalog.MigrateToRam.Name))
            {
                context.ReportDiagnostic(Diagnostic.Create(
                    DevPagemapDiagnosticDescriptors.UnreachableMigrateToRam, MemoryTypeReader.IdentifierLocation(member), typeName,
                    "the table serves only DevPagemapTypes.Coherent memory, which the CPU maps directly; a CPU access never calls migrate_to_ram"));
                break;
            }
        }
    }
}
