using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.Text;
using PluginMm.Generators.CodeFixes;
using static PluginMm.Generators.Tests.Samples;
using static PluginMm.Generators.Tests.TestHarness;

namespace PluginMm.Generators.Tests;

/// <summary>Code fixes, driven through an AdhocWorkspace: the fixed code compiles and has no PMM diagnostic.</summary>
[TestClass]
public sealed class CodeFixTests
{
    private static Project CreateProject(params string[] sources)
    {
        var workspace = new AdhocWorkspace();
        var projectId = ProjectId.CreateNewId();
        var solution = workspace.CurrentSolution.AddProject(ProjectInfo.Create(
            projectId, VersionStamp.Create(), "Sample", "Sample.Backends", LanguageNames.CSharp,
            compilationOptions: Options(), parseOptions: TestHarness.ParseOptions, metadataReferences: References));
        for (int i = 0; i < sources.Length; i++)
        {
            solution = solution.AddDocument(DocumentId.CreateNewId(projectId), $"Source{i}.cs", SourceText.From(sources[i]), filePath: $"Source{i}.cs");
        }

        return solution.GetProject(projectId)!;
    }

    /// <summary>As a build would: generator first, then the analyzer on the result. Also returns compiler errors.</summary>
    private static async Task<(ImmutableArray<Diagnostic> Pmm, ImmutableArray<Diagnostic> Compiler)> DiagnoseAsync(Project project)
    {
        var compilation = await project.GetCompilationAsync();
        var run = Run(compilation!);
        return (Analyze(run.Output), run.CompilerDiagnostics);
    }

    private static async Task<Solution> ApplySingleAsync(CodeFixProvider provider, Project project, Diagnostic diagnostic)
    {
        var document = project.GetDocument(diagnostic.Location.SourceTree)!;
        var actions = new List<CodeAction>();
        await provider.RegisterCodeFixesAsync(new CodeFixContext(document, diagnostic, (a, _) => actions.Add(a), CancellationToken.None));
        Assert.HasCount(1, actions, "one action per diagnostic");
        var operations = await actions[0].GetOperationsAsync(CancellationToken.None);
        return operations.OfType<ApplyChangesOperation>().Single().ChangedSolution;
    }

    private static async Task<Solution> ApplyFixAllAsync(CodeFixProvider provider, Project project, ImmutableArray<Diagnostic> diagnostics, string equivalenceKey)
    {
        var fixable = diagnostics.Where(d => provider.FixableDiagnosticIds.Contains(d.Id)).ToImmutableArray();
        var document = project.GetDocument(fixable[0].Location.SourceTree)!;
        var context = new FixAllContext(
            document, provider, FixAllScope.Solution, equivalenceKey, provider.FixableDiagnosticIds,
            new FixedDiagnosticProvider(fixable), CancellationToken.None);
        var action = await provider.GetFixAllProvider()!.GetFixAsync(context);
        Assert.IsNotNull(action);
        var operations = await action.GetOperationsAsync(CancellationToken.None);
        return operations.OfType<ApplyChangesOperation>().Single().ChangedSolution;
    }

    private static async Task AssertCleanAsync(Project project)
    {
        var (pmm, compiler) = await DiagnoseAsync(project);
        Assert.IsFalse(pmm.Any(d => d.Severity == DiagnosticSeverity.Error || d.Id.StartsWith("PMM", StringComparison.Ordinal)), Describe(pmm));
        Assert.IsEmpty(compiler.Where(d => d.Severity == DiagnosticSeverity.Error), Describe(compiler));
    }

    [TestMethod]
    public async Task Pmm0001_AddsTheMissingHookWithTheExactSignature()
    {
        var project = CreateProject(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(CanUserfault, Fault), name: "Shmem"));
        var diagnostic = (await DiagnoseAsync(project)).Pmm.Single(d => d.Id == "PMM0001");
        var fixedProject = (await ApplySingleAsync(new AddMissingHookCodeFixProvider(), project, diagnostic)).GetProject(project.Id)!;
        string text = (await fixedProject.Documents.Single().GetTextAsync()).ToString();
        StringAssert.Contains(text, "    public static Folio? GetFolioNoAlloc(Inode inode, long pgoff)\n    {\n        // TODO: implement vm_uffd_ops->get_folio_noalloc.\n        throw new System.NotImplementedException();\n    }");
        await AssertCleanAsync(fixedProject);
    }

    [TestMethod]
    public async Task Pmm0001_FixAll_AddsEveryMissingHookOfEveryType()
    {
        var project = CreateProject(
            Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Missing", Hooks(Fault), name: "Shmem"),
            Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing", string.Empty, name: "Anon"));
        var diagnostics = (await DiagnoseAsync(project)).Pmm;
        Assert.AreEqual(7, diagnostics.Count(d => d.Id == "PMM0001"), Describe(diagnostics));
        var fixedProject = (await ApplyFixAllAsync(new AddMissingHookCodeFixProvider(), project, diagnostics, AddMissingHookCodeFixProvider.Key)).GetProject(project.Id)!;
        await AssertCleanAsync(fixedProject);
        string shmem = (await fixedProject.Documents.First().GetTextAsync()).ToString();
        foreach (var hook in new[] { "CanUserfault", "GetFolioNoAlloc", "AllocFolio", "FilemapAdd", "FilemapRemove" })
        {
            Assert.AreEqual(1, CountOccurrences(shmem, $" {hook}("), hook);
        }
    }

    [TestMethod]
    public async Task Pmm0004_MakesTheTypeAndItsContainersPartial()
    {
        string source = Usings + $$"""
            namespace Sample;

            public class Outer
            {
                [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
                internal static class Anon
                {
                {{CanUserfault}}
                {{AllocFolio}}
                }
            }
            """;
        var project = CreateProject(source);
        var diagnostics = (await DiagnoseAsync(project)).Pmm.Where(d => d.Id == "PMM0004").ToList();
        Assert.HasCount(2, diagnostics, "not partial + containing type not partial");
        var fixedProject = (await ApplySingleAsync(new MakePartialCodeFixProvider(), project, diagnostics[0])).GetProject(project.Id)!;
        string text = (await fixedProject.Documents.Single().GetTextAsync()).ToString();
        StringAssert.Contains(text, "public partial class Outer\n");
        StringAssert.Contains(text, "    internal static partial class Anon\n");
        await AssertCleanAsync(fixedProject);
    }

    [TestMethod]
    public async Task Pmm0004_FixAll_AcrossDocuments_NoModifiers()
    {
        var project = CreateProject(
            Type("\"a\", Backing = Backing.HugeTlb", Hooks(CanUserfault), name: "A", modifiers: "static"),
            Usings + "namespace Sample;\n[MemoryType(\"b\", Backing = Backing.HugeTlb)]\nclass B\n{\n" + CanUserfault + "\n}\n");
        var diagnostics = (await DiagnoseAsync(project)).Pmm;
        Assert.AreEqual(2, diagnostics.Count(d => d.Id == "PMM0004"));
        var fixedProject = (await ApplyFixAllAsync(new MakePartialCodeFixProvider(), project, diagnostics, MakePartialCodeFixProvider.Key)).GetProject(project.Id)!;
        StringAssert.Contains((await fixedProject.Documents.Last().GetTextAsync()).ToString(), "]\npartial class B\n");
        await AssertCleanAsync(fixedProject);
    }

    [TestMethod]
    public async Task Pmm0004_NoFixOfferedForAGenericType()
    {
        var project = CreateProject(Type("\"a\", Backing = Backing.HugeTlb", Hooks(CanUserfault), name: "A<T>", modifiers: "public partial"));
        var diagnostic = (await DiagnoseAsync(project)).Pmm.Single(d => d.Id == "PMM0004");
        var actions = new List<CodeAction>();
        await new MakePartialCodeFixProvider().RegisterCodeFixesAsync(
            new CodeFixContext(project.GetDocument(diagnostic.Location.SourceTree)!, diagnostic, (a, _) => actions.Add(a), CancellationToken.None));
        Assert.IsEmpty(actions);
    }

    private static int CountOccurrences(string text, string value)
    {
        int count = 0;
        for (int i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + 1, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    private sealed class FixedDiagnosticProvider(ImmutableArray<Diagnostic> diagnostics) : FixAllContext.DiagnosticProvider
    {
        public override async Task<IEnumerable<Diagnostic>> GetDocumentDiagnosticsAsync(Document document, CancellationToken cancellationToken)
        {
            var tree = await document.GetSyntaxTreeAsync(cancellationToken);
            return diagnostics.Where(d => d.Location.SourceTree == tree);
        }

        public override Task<IEnumerable<Diagnostic>> GetProjectDiagnosticsAsync(Project project, CancellationToken cancellationToken) =>
            Task.FromResult(Enumerable.Empty<Diagnostic>());

        public override Task<IEnumerable<Diagnostic>> GetAllDiagnosticsAsync(Project project, CancellationToken cancellationToken) =>
            Task.FromResult<IEnumerable<Diagnostic>>(diagnostics);
    }
}
