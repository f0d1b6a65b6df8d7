using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using PluginMm.Generators.Diagnostics;
using PluginMm.Generators.Helpers;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Hmm;

/// <summary>
/// Reports what is wrong with an HMM driver's <c>[MmuIntervalNotifierOps]</c> class (PMM0011-PMM0013), as
/// <see cref="MemoryTypeAnalyzer"/> does for memory types: the driver gets its generated table or a compile error.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class NotifierOpsAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        NotifierDiagnosticDescriptors.MissingInvalidate,
        NotifierDiagnosticDescriptors.InvalidateSignatureMismatch,
        NotifierDiagnosticDescriptors.CannotCarryGeneratedCode);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(static start =>
        {
            // A compilation that cannot see the attribute has no notifier classes: do not look at any of its types.
            if (start.Compilation.GetTypeByMetadataName(NotifierCatalog.AttributeMetadataName) is null)
            {
                return;
            }

            bool unsafeAllowed = GenerationGate.UnsafeAllowed(start.Compilation);
            bool languageVersionSupported = start.Compilation is not CSharpCompilation c || c.LanguageVersion >= GenerationGate.MinimumLanguageVersion;
            start.RegisterSymbolAction(ctx => Analyze(ctx, unsafeAllowed, languageVersionSupported), SymbolKind.NamedType);
        });
    }

    private static void Analyze(SymbolAnalysisContext context, bool unsafeAllowed, bool languageVersionSupported)
    {
        if (context.Symbol is not INamedTypeSymbol { TypeKind: TypeKind.Class } type || NotifierOpsReader.FindAttribute(type) is not { } attribute)
        {
            return;
        }

        var info = NotifierOpsReader.Read(type, attribute, unsafeAllowed, languageVersionSupported);
        if (info.AttributeHasErrors)
        {
            return;
        }

        string typeName = type.ToDisplayString();
        var location = MemoryTypeReader.IdentifierLocation(type);
        foreach (var (kind, reason) in info.CarryProblems)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                NotifierDiagnosticDescriptors.CannotCarryGeneratedCode, location,
                ImmutableDictionary<string, string?>.Empty.Add(DiagnosticDescriptors.ProblemProperty, kind.ToString()),
                typeName, reason));
        }

        var properties = ImmutableDictionary<string, string?>.Empty.Add(DiagnosticDescriptors.HookProperty, NotifierCatalog.InvalidateName);
        switch (info.Invalidate)
        {
            case HookState.Absent:
                context.ReportDiagnostic(Diagnostic.Create(
                    NotifierDiagnosticDescriptors.MissingInvalidate, location, properties, typeName, NotifierCatalog.InvalidateWhy));
                break;
            case HookState.Invalid:
                foreach (var (member, reason) in info.SignatureIssues)
                {
                    context.ReportDiagnostic(Diagnostic.Create(
                        NotifierDiagnosticDescriptors.InvalidateSignatureMismatch, MemoryTypeReader.IdentifierLocation(member), properties,
                        typeName, reason, NotifierCatalog.InvalidateSignature));
                }

                break;
        }
    }
}
