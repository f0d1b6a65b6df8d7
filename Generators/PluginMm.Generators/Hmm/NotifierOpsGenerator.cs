using System;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using PluginMm.Generators.Helpers;

namespace PluginMm.Generators.Hmm;

/// <summary>
/// Emits, for each HMM driver's <c>[MmuIntervalNotifierOps]</c> partial class, its <c>Ops</c> table
/// (<c>struct mmu_interval_notifier_ops</c>, a function pointer to the static <c>Invalidate</c> hook) and
/// <c>HasInvalidate</c>. Invalid declarations get nothing; <see cref="NotifierOpsAnalyzer"/> reports them (PMM0011-PMM0013).
/// The same shape as <see cref="MemoryTypeGenerator"/>: Parser → equatable <see cref="NotifierOpsSpec"/> → Emitter.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed partial class NotifierOpsGenerator : IIncrementalGenerator
{
    private readonly Lazy<Emitter> _emitter = new(() => new Emitter(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var canEmit = GenerationGate.Create(context);

        var specs = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                NotifierCatalog.AttributeMetadataName,
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
                static (ctx, _) => Parser.Parse(ctx))
            .WithTrackingName(NotifierStepNames.Parse)
            .Where(static spec => spec is not null)
            .Select(static (spec, _) => spec!)
            .WithTrackingName(NotifierStepNames.Specs);

        context.RegisterSourceOutput(specs.Combine(canEmit), (spc, pair) =>
        {
            if (pair.Right)
            {
                try
                {
                    spc.AddSource(HintNames.ForType(pair.Left.FullyQualifiedName, "MmuIntervalNotifierOps"), _emitter.Value.Emit(pair.Left));
                }
                catch (ArgumentException)
                {
                    // The same type declared twice: the compiler reports it (CS0101); never crash the generator.
                }
            }
        });
    }
}

/// <summary>Names of the notifier generator's tracked incremental steps (tests assert their run reasons).</summary>
public static class NotifierStepNames
{
    /// <summary>Attribute selection + symbol reading into a spec (null for invalid declarations).</summary>
    public const string Parse = "NotifierParse";

    /// <summary>The valid specs.</summary>
    public const string Specs = "NotifierSpecs";
}
