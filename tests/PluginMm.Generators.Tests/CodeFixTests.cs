using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.Diagnostics;
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
        StringAssert.Contains(text, "    public static Folio? GetFolioNoAlloc(Inode inode, long pgoff)\n    {\n        // The standard page-cache lookup (shmem_get_folio_noalloc)");
        StringAssert.Contains(text, "        return PageCacheHooks.GetLocked(inode, pgoff);\n    }");
        Assert.DoesNotContain("NotImplementedException", text);
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

    [TestMethod]
    public async Task Pmm0001_FixAll_OnAnEmptyPageCacheType_GivesHooksThatServeFaults()
    {
        // Every stub calls the public PageCacheHooks: the fixed type builds and its table works (no NotImplementedException
        // on the first armed fault, as the stubs used to throw).
        var project = CreateProject(Type("\"cache\", Backing = Backing.PageCache, Modes = UffdModes.Missing | UffdModes.Minor", string.Empty, name: "Cache"));
        var diagnostics = (await DiagnoseAsync(project)).Pmm;
        Assert.AreEqual(6, diagnostics.Count(d => d.Id == "PMM0001"), Describe(diagnostics));
        var fixedProject = (await ApplyFixAllAsync(new AddMissingHookCodeFixProvider(), project, diagnostics, AddMissingHookCodeFixProvider.Key)).GetProject(project.Id)!;
        await AssertCleanAsync(fixedProject);

        var assembly = GeneratorTests.EmitAndLoad(Run((await fixedProject.GetCompilationAsync())!).Output, out var context);
        try
        {
            var ops = (MemoryTypeOps)assembly.GetType("Sample.Cache", throwOnError: true)!.GetField("Ops")!.GetValue(null)!;
            var allocator = new PageAllocator();
            var inode = new Inode("cache", 16 * Folio.BasePageSize, Folio.BasePageSize, allocator);
            var vma = new VmaView(0x10000, 0x10000 + 16 * Folio.BasePageSize, VmFlags.Read | VmFlags.Write | VmFlags.Shared, 0, inode, Folio.BasePageShift, allocator);
            unsafe
            {
                var u = ops.UffdOps;
                Assert.IsTrue(u.CanUserfault(in vma, UffdModes.Missing));
                Assert.IsNull(u.GetFolioNoAlloc(inode, 3), "nothing cached yet");
                var folio = u.AllocFolio(in vma, 0x10000 + 3 * Folio.BasePageSize)!;
                Assert.AreEqual(Errno.None, u.FilemapAdd(folio, in vma, 0x10000 + 3 * Folio.BasePageSize));
                Assert.IsTrue(folio.IsLocked, "added locked, as shmem_mfill_filemap_add leaves it");
                folio.Unlock();
                var found = u.GetFolioNoAlloc(inode, 3);
                Assert.AreSame(folio, found);
                Assert.IsTrue(found!.IsLocked);
                u.FilemapRemove(found, in vma);
                Assert.IsFalse(found.IsLocked);
                Assert.IsNull(u.GetFolioNoAlloc(inode, 3));
                Assert.IsTrue(ops.VmOps.Fault is not null, "the Fault stub is in the table");
            }
        }
        finally
        {
            context.Unload();
        }
    }

    [TestMethod]
    public async Task Pmm0001_InACrlfDocument_AddsCrlfLines()
    {
        string source = Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(CanUserfault, Fault), name: "Shmem").Replace("\n", "\r\n");
        var project = CreateProject(source);
        var diagnostic = (await DiagnoseAsync(project)).Pmm.Single(d => d.Id == "PMM0001");
        var fixedProject = (await ApplySingleAsync(new AddMissingHookCodeFixProvider(), project, diagnostic)).GetProject(project.Id)!;
        string text = (await fixedProject.Documents.Single().GetTextAsync()).ToString();
        StringAssert.Contains(text, "GetFolioNoAlloc(Inode inode, long pgoff)\r\n");
        Assert.AreEqual(0, CountBareLineFeeds(text), "mixed line endings:\n" + text.Replace("\r", "\\r"));
        await AssertCleanAsync(fixedProject);
    }

    [TestMethod]
    public async Task Pmm0011_InACrlfDocument_AddsCrlfLines()
    {
        string source = TestHarness.Usings + "using PluginMm.Hmm;\nnamespace Sample;\n[MmuIntervalNotifierOps(\"m\")]\npublic static partial class M\n{\n    public static int Other;\n}\n";
        var project = CreateProject(source.Replace("\n", "\r\n"));
        var compilation = (await project.GetCompilationAsync())!;
        var withAnalyzers = compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new Hmm.NotifierOpsAnalyzer()));
        var diagnostic = (await withAnalyzers.GetAnalyzerDiagnosticsAsync()).Single(d => d.Id == "PMM0011");
        var fixedProject = (await ApplySingleAsync(new AddInvalidateHookCodeFixProvider(), project, diagnostic)).GetProject(project.Id)!;
        string text = (await fixedProject.Documents.Single().GetTextAsync()).ToString();
        StringAssert.Contains(text, "interval.SetSeq(curSeq);\r\n");
        Assert.AreEqual(0, CountBareLineFeeds(text), "mixed line endings:\n" + text.Replace("\r", "\\r"));
    }

    [TestMethod]
    public async Task Pmm0002_RewritesTheSignature_KeepsTheBodyAndTheParameterNames()
    {
        string members = Hooks(
            CanUserfault,
            "    /// <summary>Looks up.</summary>\n    public Folio GetFolioNoAlloc(Inode node, int index) => node.Cache.Get(index);",
            "    private static Folio? AllocFolio<T>(VmaView vma, ulong address) { return vma.Allocator.Alloc(); }",
            Fault);
        var project = CreateProject(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Missing | UffdModes.Minor", Hooks(members, FilemapAdd, FilemapRemove), name: "Shmem", modifiers: "public partial"));
        var diagnostics = (await DiagnoseAsync(project)).Pmm;
        Assert.AreEqual(2, diagnostics.Count(d => d.Id == "PMM0002"), Describe(diagnostics));
        var fixedProject = (await ApplyFixAllAsync(new FixHookSignatureCodeFixProvider(), project, diagnostics, FixHookSignatureCodeFixProvider.Key)).GetProject(project.Id)!;
        string text = (await fixedProject.Documents.Single().GetTextAsync()).ToString();
        StringAssert.Contains(text, "    /// <summary>Looks up.</summary>\n    public static Folio? GetFolioNoAlloc(Inode node, long index) => node.Cache.Get(index);\n");
        StringAssert.Contains(text, "    public static Folio? AllocFolio(in VmaView vma, ulong address) { return vma.Allocator.Alloc(); }\n");
        await AssertCleanAsync(fixedProject);
    }

    [TestMethod]
    [DataRow("UffdModes.Missing | UffdModes.Minor", "Modes = UffdModes.Missing)]")]
    [DataRow("UffdModes.Minor | UffdModes.Wp | UffdModes.Missing", "Modes = UffdModes.Wp | UffdModes.Missing)]")]
    [DataRow("UffdModes.Minor", "Modes = UffdModes.None)]")]
    public async Task Pmm0003_DropsMinorFromModes(string modes, string expected)
    {
        var project = CreateProject(Type("\"anon\", Backing = Backing.Anonymous, Modes = " + modes, Hooks(CanUserfault, AllocFolio), name: "Anon"));
        var diagnostic = (await DiagnoseAsync(project)).Pmm.Single(d => d.Id == "PMM0003");
        var fixedProject = (await ApplySingleAsync(new DropMinorCodeFixProvider(), project, diagnostic)).GetProject(project.Id)!;
        StringAssert.Contains((await fixedProject.Documents.Single().GetTextAsync()).ToString(), expected);
        await AssertCleanAsync(fixedProject);
    }

    [TestMethod]
    public async Task Pmm0009_AddsTheMissingHalfOfThePair()
    {
        var project = CreateProject(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(CanUserfault, GetFolioNoAlloc, FilemapAdd, Fault), name: "Shmem"));
        var diagnostic = (await DiagnoseAsync(project)).Pmm.Single(d => d.Id == "PMM0009");
        var fixedProject = (await ApplySingleAsync(new AddMissingHookCodeFixProvider(), project, diagnostic)).GetProject(project.Id)!;
        StringAssert.Contains((await fixedProject.Documents.Single().GetTextAsync()).ToString(), "PageCacheHooks.RemoveAndUnlock(folio, in vma);");
        await AssertCleanAsync(fixedProject);
    }

    private static int CountBareLineFeeds(string text)
    {
        int count = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
            {
                count++;
            }
        }

        return count;
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
