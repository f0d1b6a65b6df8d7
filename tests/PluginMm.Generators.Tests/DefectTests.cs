using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using PluginMm.Generators.Diagnostics;
using static PluginMm.Generators.Tests.Samples;
using static PluginMm.Generators.Tests.TestHarness;

namespace PluginMm.Generators.Tests;

/// <summary>
/// Issue 13, part 2: ordinary consumer code that made the generator fail in the wrong place. Each test failed on the
/// generator before the fix (checked by running it against the old generator); IDs are strings so they compile there.
/// </summary>
[TestClass]
public sealed class DefectTests
{
    private static string Complete(string ns, string typeName, string name) => TestHarness.Usings + $$"""
        namespace {{ns}};

        [MemoryType("{{name}}", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
        public static partial class {{typeName}}
        {
        {{CanUserfault}}
        {{AllocFolio}}
        }
        """;

    private static void AssertGeneratedAndCompiles(GeneratorRun run, int files)
    {
        Assert.IsNull(run.Single.Exception, "generator exception: " + run.Single.Exception);
        Assert.IsEmpty(run.GeneratorDiagnostics, "CS8785 or another generator diagnostic: " + Describe(run.GeneratorDiagnostics));
        Assert.HasCount(files, run.Sources.ToArray(), string.Join(", ", run.Sources.Select(s => s.HintName)));
        var errors = run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.IsEmpty(errors, Describe(errors));
    }

    [TestMethod]
    public void TypesWhoseNamesDifferOnlyInCase_EachGetTheirTable()
    {
        string user = "namespace Consumer; public static class Use { public static object[] Both => new object[] { Shmem.Ops, SHMEM.Ops }; }";
        var run = Run(Complete("Consumer", "Shmem", "lower"), Complete("Consumer", "SHMEM", "upper"), user);
        AssertGeneratedAndCompiles(run, files: 3);
        var hints = run.Sources.Select(s => s.HintName).ToArray();
        Assert.AreEqual(hints.Length, hints.Distinct(StringComparer.OrdinalIgnoreCase).Count(), string.Join(", ", hints));
    }

    [TestMethod]
    public void AMemoryTypeNamedMemoryTypeRegistryInTheGlobalNamespace_DoesNotClashWithTheRegistry()
    {
        string source = TestHarness.Usings + $$"""
            [MemoryType("registry", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
            public static partial class MemoryTypeRegistry
            {
            {{CanUserfault}}
            {{AllocFolio}}
            }

            public static class Use { public static object Table => global::MemoryTypeRegistry.Ops; public static int Count => Sample.Backends.MemoryTypeRegistry.All.Count; }
            """;
        AssertGeneratedAndCompiles(Run(source), files: 2);
    }

    [TestMethod]
    public void AnAssemblyNamedLikeOneOfItsTypes_GetsPmm0014NamingTheProperty_NotCs0101()
    {
        var input = Compile(new[] { Complete("MyLib", "Shmem", "shmem") }, assemblyName: "MyLib.Shmem");
        var run = Run(input);
        var errors = run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.IsEmpty(errors, "no CS0101 on the user's own class: " + Describe(errors));
        Assert.IsFalse(run.Sources.Any(s => s.HintName.StartsWith("MemoryTypeRegistry", StringComparison.Ordinal)), "no registry in a namespace that clashes");
        var pmm = Analyze(run.Output).Single(d => d.Id == "PMM0014");
        StringAssert.Contains(pmm.GetMessage(), "PluginMmRegistryNamespace");
        StringAssert.Contains(pmm.GetMessage(), "'MyLib.Shmem'");
        Assert.AreEqual("Shmem", LocatedText(pmm), "reported on the type that clashes");

        // The property the message names fixes it: the registry is generated and the whole compiles.
        var withProperty = Run(input, CreateDriver(new Dictionary<string, string> { ["build_property.PluginMmRegistryNamespace"] = "MyLib.Registry" }));
        AssertGeneratedAndCompiles(withProperty, files: 2);
    }

    [TestMethod]
    public void AMemoryTypeInAFileLocalClass_GetsPmm0004_AndNothingFailsInGeneratedCode()
    {
        string source = TestHarness.Usings + $$"""
            namespace Sample;

            file partial class Outer
            {
                [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
                internal static partial class Anon
                {
                {{CanUserfault}}
                {{AllocFolio}}
                }
            }
            """;
        var run = Run(source);
        var errors = run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.IsEmpty(errors, "no error inside generated code: " + Describe(errors));
        var pmm = Analyze(run.Output);
        var pmm0004 = pmm.Single(d => d.Id == "PMM0004");
        StringAssert.Contains(pmm0004.GetMessage(), "'Sample.Outer' is file-local");
    }

    [TestMethod]
    [DataRow(LanguageVersion.CSharp7_3, true)]
    [DataRow(LanguageVersion.CSharp8, false)]
    public void ALanguageVersionBelow8_GetsPmm0015_AndNothingFailsInGeneratedCode(LanguageVersion version, bool tooOld)
    {
        var parse = new CSharpParseOptions(version);
        // No nullable annotations: C# 7.3 has none, and the hook signatures match without them.
        string source = TestHarness.Usings + """
            namespace Sample
            {
                [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
                public static partial class Anon
                {
                    public static bool CanUserfault(in VmaView vma, UffdModes modes) { return true; }
                    public static Folio AllocFolio(in VmaView vma, ulong address) { return vma.Allocator.Alloc(); }
                }
            }
            """;
        var input = CSharpCompilation.Create("Sample.Backends", new[] { CSharpSyntaxTree.ParseText(source, parse, path: "Source0.cs") },
            References, Options().WithNullableContextOptions(NullableContextOptions.Disable));
        var driver = CSharpGeneratorDriver.Create(new[] { new MemoryTypeGenerator().AsSourceGenerator() }, parseOptions: parse);
        var run = Run(input, driver);
        Assert.IsEmpty(run.GeneratorDiagnostics, Describe(run.GeneratorDiagnostics));
        var errors = run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.IsEmpty(errors, "no CS8370 inside generated code: " + Describe(errors));
        var pmm = Analyze(run.Output);
        if (!tooOld)
        {
            Assert.IsEmpty(pmm, Describe(pmm));
            Assert.HasCount(2, run.Sources.ToArray(), "C# 8 gets the table and the registry");
            return;
        }

        var pmm0015 = pmm.Single(d => d.Id == "PMM0015");
        StringAssert.Contains(pmm0015.GetMessage(), "needs C# 8.0 or later");
        StringAssert.Contains(pmm0015.GetMessage(), "<LangVersion>8.0</LangVersion>");
        Assert.IsEmpty(run.Sources.ToArray(), "nothing is generated that cannot compile");
    }

    [TestMethod]
    public void TheAnalyzer_RegistersNothingPerType_InACompilationWithoutTheAttribute()
    {
        // A compilation that does not reference PluginMm.Abstractions (the analyzer still runs in every project of a
        // solution that has the package): no symbol action may run on its types.
        var sources = Enumerable.Range(0, 50).Select(i => $"namespace Other; public class C{i} {{ public int M() => {i}; }}");
        var tpaRefs = References.Where(r => !(r.Display ?? string.Empty).Contains("PluginMm", StringComparison.Ordinal)).ToList();
        var compilation = CSharpCompilation.Create("Other", sources.Select(s => CSharpSyntaxTree.ParseText(s, TestHarness.ParseOptions)), tpaRefs, Options());
        foreach (var analyzer in new DiagnosticAnalyzer[] { new MemoryTypeAnalyzer(), new Hmm.NotifierOpsAnalyzer() })
        {
            var withAnalyzers = compilation.WithAnalyzers(ImmutableArray.Create(analyzer),
                new CompilationWithAnalyzersOptions(new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), null, concurrentAnalysis: false, logAnalyzerExecutionTime: true));
            Assert.IsEmpty(withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult());
            var telemetry = withAnalyzers.GetAnalyzerTelemetryInfoAsync(analyzer, CancellationToken.None).GetAwaiter().GetResult();
            Assert.AreEqual(0, telemetry.SymbolActionsCount, analyzer.GetType().Name + " registered a symbol action");
            Assert.AreEqual(0, telemetry.CompilationEndActionsCount, analyzer.GetType().Name + " registered a compilation end action");
        }
    }
}
