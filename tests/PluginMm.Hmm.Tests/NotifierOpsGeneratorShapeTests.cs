using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using PluginMm.Generators.CodeFixes;
using PluginMm.Generators.Hmm;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// Issue 13 for the notifier generator: unique hint names whatever the case, file-local containers reported (PMM0013),
/// the PMM0013 make-partial fix, and the Parser → spec → Emitter pipeline's tracked steps caching across edits.
/// </summary>
[TestClass]
public sealed class NotifierOpsGeneratorShapeTests
{
    private const string Invalidate = "    public static bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq) { interval.SetSeq(curSeq); return true; }";

    private static readonly CSharpParseOptions Parse = new(LanguageVersion.Latest);

    private static Lazy<ImmutableArray<MetadataReference>> s_references { get; } = new(() => PluginHarness.References);

    private static string Notifier(string typeName, string name, string modifiers = "public static partial", string ns = "Sample") =>
        "using PluginMm;\nusing PluginMm.Hmm;\n" + $$"""
        namespace {{ns}};

        [MmuIntervalNotifierOps("{{name}}")]
        {{modifiers}} class {{typeName}}
        {
        {{Invalidate}}
        }
        """;

    private static CSharpCompilation Compile(params string[] sources) =>
        CSharpCompilation.Create("Sample.Driver",
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, Parse, path: $"Source{i}.cs")),
            s_references.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));

    private static GeneratorDriver Driver() => CSharpGeneratorDriver.Create(
        new[] { new NotifierOpsGenerator().AsSourceGenerator() }, parseOptions: Parse,
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    private static ImmutableArray<Diagnostic> Pmm(Compilation output) =>
        output.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new NotifierOpsAnalyzer())).GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();

    [TestMethod(DisplayName = "hmm plugin: notifier classes whose names differ only in case each get their table (no CS8785)")]
    public void CaseCollidingNames()
    {
        var input = Compile(Notifier("Mirror", "lower"), Notifier("MIRROR", "upper"),
            "namespace Sample; public static class Use { public static object[] Both => new object[] { Mirror.Ops, MIRROR.Ops }; }");
        var driver = Driver().RunGeneratorsAndUpdateCompilation(input, out var output, out var diagnostics);
        var result = driver.GetRunResult().Results.Single();
        Assert.IsNull(result.Exception);
        Assert.IsEmpty(diagnostics, string.Join("\n", diagnostics));
        Assert.HasCount(2, result.GeneratedSources);
        var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.IsEmpty(errors, string.Join("\n", errors));
    }

    [TestMethod(DisplayName = "hmm plugin: a notifier class in a file-local class is PMM0013, not an error in generated code")]
    public void FileLocalContainer()
    {
        string source = "using PluginMm;\nusing PluginMm.Hmm;\nnamespace Sample;\nfile partial class Outer\n{\n    [MmuIntervalNotifierOps(\"m\")]\n    internal static partial class M\n    {\n" + Invalidate + "\n    }\n}\n";
        Driver().RunGeneratorsAndUpdateCompilation(Compile(source), out var output, out _);
        var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.IsEmpty(errors, string.Join("\n", errors));
        StringAssert.Contains(Pmm(output).Single(d => d.Id == "PMM0013").GetMessage(), "'Sample.Outer' is file-local");
    }

    [TestMethod(DisplayName = "hmm plugin: LangVersion 7.3 is PMM0013 naming LangVersion, not CS8370 in generated code")]
    public void OldLanguageVersion()
    {
        var parse = new CSharpParseOptions(LanguageVersion.CSharp7_3);
        string source = "using PluginMm;\nusing PluginMm.Hmm;\nnamespace Sample\n{\n    [MmuIntervalNotifierOps(\"m\")]\n    public static partial class M\n    {\n" + Invalidate + "\n    }\n}\n";
        var input = CSharpCompilation.Create("Sample.Driver", new[] { CSharpSyntaxTree.ParseText(source, parse) }, s_references.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true));
        CSharpGeneratorDriver.Create(new[] { new NotifierOpsGenerator().AsSourceGenerator() }, parseOptions: parse)
            .RunGeneratorsAndUpdateCompilation(input, out var output, out _);
        var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.IsEmpty(errors, string.Join("\n", errors));
        StringAssert.Contains(Pmm(output).Single(d => d.Id == "PMM0013").GetMessage(), "<LangVersion>8.0</LangVersion>");
    }

    [TestMethod(DisplayName = "hmm plugin: the PMM0013 code fix makes the class and its containers partial")]
    public async Task MakePartialFix()
    {
        string source = "using PluginMm;\nusing PluginMm.Hmm;\nnamespace Sample;\npublic class Outer\n{\n    [MmuIntervalNotifierOps(\"m\")]\n    public static class M\n    {\n" + Invalidate + "\n    }\n}\n";
        var workspace = new AdhocWorkspace();
        var projectId = ProjectId.CreateNewId();
        var documentId = DocumentId.CreateNewId(projectId);
        var solution = workspace.CurrentSolution.AddProject(ProjectInfo.Create(
                projectId, VersionStamp.Create(), "Sample", "Sample.Driver", LanguageNames.CSharp,
                compilationOptions: new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true),
                parseOptions: Parse, metadataReferences: s_references.Value))
            .AddDocument(documentId, "Source0.cs", SourceText.From(source), filePath: "Source0.cs");
        var document = solution.GetDocument(documentId)!;
        var diagnostics = Pmm((await document.Project.GetCompilationAsync())!).Where(d => d.Id == "PMM0013").ToList();
        Assert.HasCount(2, diagnostics, string.Join("\n", diagnostics));
        var actions = new List<CodeAction>();
        await new MakePartialCodeFixProvider().RegisterCodeFixesAsync(new CodeFixContext(document, diagnostics[0], (a, _) => actions.Add(a), CancellationToken.None));
        Assert.HasCount(1, actions);
        var changed = (await actions[0].GetOperationsAsync(CancellationToken.None)).OfType<ApplyChangesOperation>().Single().ChangedSolution;
        var text = (await changed.GetDocument(documentId)!.GetTextAsync()).ToString();
        StringAssert.Contains(text, "public partial class Outer\n");
        StringAssert.Contains(text, "    public static partial class M\n");
        var input = (await changed.GetProject(projectId)!.GetCompilationAsync())!;
        Driver().RunGeneratorsAndUpdateCompilation(input, out var output, out _);
        Assert.IsEmpty(Pmm(output));
        Assert.IsEmpty(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
    }

    [TestMethod(DisplayName = "hmm plugin: an edit elsewhere re-emits nothing; an edit of one notifier re-emits only it")]
    public void TrackedStepsCache()
    {
        var input = Compile(Notifier("A", "a"), Notifier("B", "b"), "namespace Sample; public static class Other { public static int X => 1; }");
        var driver = Driver().RunGenerators(input);

        // 1. An unrelated file changes: the notifiers' specs come out equal (the transform re-runs on a new compilation and
        //    is found Unchanged), nothing downstream runs and nothing is re-emitted.
        var third = input.SyntaxTrees.ElementAt(2);
        var edited = input.ReplaceSyntaxTree(third, CSharpSyntaxTree.ParseText("namespace Sample; public static class Other { public static int X => 2; }", Parse, path: third.FilePath));
        driver = driver.RunGenerators(edited);
        var run = driver.GetRunResult().Results.Single();
        AssertAll(run, NotifierStepNames.Parse, IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged);
        AssertAll(run, NotifierStepNames.Specs, IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged);
        Assert.IsTrue(OutputReasons(run).All(r => r == IncrementalStepRunReason.Cached), string.Join(",", OutputReasons(run)));

        // 2. A's hook body changes: A is re-read and found equal (Unchanged), nothing is re-emitted.
        var a = edited.SyntaxTrees.First();
        var bodyEdit = edited.ReplaceSyntaxTree(a, CSharpSyntaxTree.ParseText(Notifier("A", "a").Replace("return true;", "return curSeq != 0;"), Parse, path: a.FilePath));
        driver = driver.RunGenerators(bodyEdit);
        run = driver.GetRunResult().Results.Single();
        CollectionAssert.Contains(Reasons(run, NotifierStepNames.Parse), IncrementalStepRunReason.Unchanged);
        Assert.IsFalse(OutputReasons(run).Contains(IncrementalStepRunReason.Modified), string.Join(",", OutputReasons(run)));

        // 3. A's name changes: only A's file is re-emitted.
        var a2 = bodyEdit.SyntaxTrees.First();
        var nameEdit = bodyEdit.ReplaceSyntaxTree(a2, CSharpSyntaxTree.ParseText(Notifier("A", "a2"), Parse, path: a2.FilePath));
        driver = driver.RunGenerators(nameEdit);
        run = driver.GetRunResult().Results.Single();
        CollectionAssert.Contains(Reasons(run, NotifierStepNames.Parse), IncrementalStepRunReason.Modified);
        Assert.AreEqual(1, OutputReasons(run).Count(r => r == IncrementalStepRunReason.Modified), string.Join(",", OutputReasons(run)));
        StringAssert.Contains(run.GeneratedSources.Single(s => s.HintName.StartsWith("Sample.A.", StringComparison.Ordinal)).SourceText.ToString(), "name: \"a2\"");
    }

    [TestMethod(DisplayName = "hmm plugin: the notifier spec holds no Roslyn type and compares by value")]
    public void SpecIsEquatable()
    {
        var first = Specs(Driver().RunGenerators(Compile(Notifier("A", "a"))));
        var second = Specs(Driver().RunGenerators(Compile(Notifier("A", "a"))));
        Assert.HasCount(1, first);
        Assert.AreEqual(first[0], second[0], "a fresh compilation gives an equal spec");
        foreach (var property in first[0].GetType().GetProperties())
        {
            Assert.IsFalse(property.PropertyType.Namespace?.StartsWith("Microsoft.CodeAnalysis", StringComparison.Ordinal) ?? false, property.Name);
        }
    }

    private static List<object> Specs(GeneratorDriver driver) =>
        driver.GetRunResult().Results.Single().TrackedSteps[NotifierStepNames.Specs].SelectMany(s => s.Outputs).Select(o => o.Value).ToList();

    private static IncrementalStepRunReason[] Reasons(GeneratorRunResult result, string step) =>
        result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    private static IncrementalStepRunReason[] OutputReasons(GeneratorRunResult result) =>
        result.TrackedOutputSteps.SelectMany(kv => kv.Value).SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    private static void AssertAll(GeneratorRunResult result, string step, params IncrementalStepRunReason[] allowed)
    {
        var reasons = Reasons(result, step);
        Assert.IsTrue(reasons.Length > 0 && reasons.All(allowed.Contains), step + ": " + string.Join(",", reasons));
    }
}
