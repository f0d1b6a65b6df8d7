using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace PluginMm.Generators.Hmm;

/// <summary>
/// Emits, for each <c>[DevPagemapOps]</c> partial class (a device driver's <c>struct dev_pagemap_ops</c>), its <c>Ops</c>
/// table of function pointers and the <c>HasPageFree</c> / <c>HasMigrateToRam</c> / <c>HasMemoryFailure</c> constants:
/// Parser (<see cref="DevPagemapOpsParser"/>) → equatable <see cref="DevPagemapOpsSpec"/> → Emitter
/// (<see cref="DevPagemapOpsEmitter"/>). Invalid declarations get nothing; <see cref="DevPagemapOpsAnalyzer"/> reports
/// them (PMM0030-PMM0033).
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class DevPagemapOpsGenerator : IIncrementalGenerator
{
    private readonly System.Lazy<DevPagemapOpsEmitter> _emitter = new(() => new DevPagemapOpsEmitter(), System.Threading.LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Tracked step names (for caching tests).</summary>
    public static class StepNames
    {
        /// <summary>Whether the compilation allows unsafe code.</summary>
        public const string UnsafeAllowed = "DevPagemapOps.UnsafeAllowed";

        /// <summary>The parsed specs (null for invalid classes).</summary>
        public const string Parse = "DevPagemapOps.Parse";

        /// <summary>The specs that are emitted.</summary>
        public const string Specs = "DevPagemapOps.Specs";
    }

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var unsafeAllowed = context.CompilationProvider
            .Select(static (c, _) => c.Options is CSharpCompilationOptions { AllowUnsafe: true })
            .WithTrackingName(StepNames.UnsafeAllowed);

        var specs = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                DevPagemapCatalog.AttributeMetadataName,
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
                static (ctx, _) => ctx.TargetSymbol is INamedTypeSymbol type && ctx.Attributes.Length == 1 ? DevPagemapOpsParser.Parse(type, ctx.Attributes[0]) : null)
            .WithTrackingName(StepNames.Parse)
            .Where(static spec => spec is not null)
            .Select(static (spec, _) => spec!)
            .Combine(unsafeAllowed)
            .Where(static pair => pair.Right)
            .Select(static (pair, _) => pair.Left)
            .WithTrackingName(StepNames.Specs);

        context.RegisterSourceOutput(specs, (spc, spec) =>
        {
            try
            {
                spc.AddSource(DevPagemapOpsEmitter.HintName(spec), _emitter.Value.Emit(spec));
            }
            catch (ArgumentException)
            {
                // The same type declared twice: the compiler reports it (CS0101); never crash the generator.
            }
        });
    }
}
