using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using PluginMm.Generators.Helpers;
using PluginMm.Generators.Model;

namespace PluginMm.Generators;

/// <summary>
/// Emits, for each <c>[MemoryType]</c> partial class, its <c>Ops</c> table and <c>Has&lt;Hook&gt;</c> constants, and
/// for the assembly a <c>MemoryTypeRegistry</c> of all of them. Invalid declarations are skipped silently:
/// <see cref="Diagnostics.MemoryTypeAnalyzer"/> reports them (PMMxxxx).
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed partial class MemoryTypeGenerator : IIncrementalGenerator
{
    /// <summary>The MSBuild property (made visible with CompilerVisibleProperty) naming the registry's namespace.</summary>
    public const string RegistryNamespaceProperty = RegistryNamespace.Property;

    private readonly Lazy<Emitter> _emitter = new(() => new Emitter(), System.Threading.LazyThreadSafetyMode.ExecutionAndPublication);

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var canEmit = GenerationGate.Create(context);

        var specs = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                HookCatalog.AttributeMetadataName,
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
                static (ctx, ct) => Parser.Parse(ctx, ct))
            .WithTrackingName(StepNames.Parse)
            .Where(static spec => spec is not null)
            .Select(static (spec, _) => spec!)
            .WithTrackingName(StepNames.Specs);

        context.RegisterSourceOutput(specs.Combine(canEmit), (spc, pair) =>
        {
            if (pair.Right)
            {
                AddSource(spc, HintNames.ForType(pair.Left.FullyQualifiedName), _emitter.Value.EmitMemoryType(pair.Left));
            }
        });

        var registryNamespace = context.AnalyzerConfigOptionsProvider
            .Select(static (o, _) => RegistryNamespace.ReadProperty(o.GlobalOptions))
            .Combine(context.CompilationProvider.Select(static (c, _) => c.AssemblyName))
            .Select(static (pair, _) => RegistryNamespace.Resolve(pair.Left, pair.Right))
            .WithTrackingName(StepNames.RegistryNamespace);

        // PMM0014: a type named like the namespace (or a prefix of it) would make the registry CS0101 on the user's type.
        var registryNamespaceFree = context.CompilationProvider
            .Combine(registryNamespace)
            .Select(static (pair, _) => RegistryNamespace.ClashingType(pair.Left, pair.Right) is null)
            .WithTrackingName(StepNames.RegistryNamespaceFree);

        var registry = specs.Collect()
            .Combine(registryNamespace)
            .Select(static (pair, _) => Parser.BuildRegistry(pair.Left, pair.Right))
            .WithTrackingName(StepNames.Registry);

        context.RegisterSourceOutput(registry.Combine(canEmit.Combine(registryNamespaceFree)), (spc, pair) =>
        {
            if (pair.Right.Left && pair.Right.Right && pair.Left.Entries.Count > 0)
            {
                AddSource(spc, HintNames.Registry, _emitter.Value.EmitRegistry(pair.Left));
            }
        });
    }

    private static void AddSource(SourceProductionContext context, string hintName, string source)
    {
        try
        {
            context.AddSource(hintName, source);
        }
        catch (ArgumentException)
        {
            // The same hint twice means the same type was declared twice (CS0101 / CS0579 already report it):
            // never turn the user's error into a generator crash (CS8785).
        }
    }
}

/// <summary>Names of the tracked incremental steps (tests assert their run reasons).</summary>
public static class StepNames
{
    /// <summary>Attribute selection + symbol reading into a spec (null for invalid declarations).</summary>
    public const string Parse = nameof(Parse);

    /// <summary>The valid specs.</summary>
    public const string Specs = nameof(Specs);

    /// <summary>Whether the compilation allows unsafe code (tables take hook addresses).</summary>
    public const string UnsafeAllowed = nameof(UnsafeAllowed);

    /// <summary>The registry's namespace.</summary>
    public const string RegistryNamespace = nameof(RegistryNamespace);

    /// <summary>The registry spec (all memory types of the assembly).</summary>
    public const string Registry = nameof(Registry);

    /// <summary>Whether the registry's namespace is free of same-named types (PMM0014 when not).</summary>
    public const string RegistryNamespaceFree = nameof(RegistryNamespaceFree);

    /// <summary>Whether the project's C# version is new enough for the generated code (PMM0015 when not).</summary>
    public const string LanguageVersion = nameof(LanguageVersion);
}
