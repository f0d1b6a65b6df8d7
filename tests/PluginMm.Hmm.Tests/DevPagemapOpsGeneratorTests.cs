using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CSharp;
using PluginMm.Generators.CodeFixes;
using PluginMm.Generators.Hmm;
using PluginMm.Runtime.Hmm;
using static PluginMm.Hmm.Tests.PluginHarness;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// The ZONE_DEVICE page-map plugin kind at compile time: a <c>[DevPagemapOps]</c> class gets a generated
/// <c>dev_pagemap_ops</c> table; a missing required hook is PMM0030 (with a code fix), a wrong signature PMM0031, a class
/// that cannot carry the table PMM0032, MigrateToRam on coherent-only memory PMM0033; the generator's steps are cached.
/// </summary>
[TestClass]
public sealed class DevPagemapOpsGeneratorTests
{
    private const string PageFreeOk = "    public static void PageFree(Folio page) { Freed++; }\n    public static int Freed;";
    private const string MigrateOk = "    public static VmFaultResult MigrateToRam(ref VmFault vmf) { Migrations++; return VmFaultResult.None; }\n    public static int Migrations;";

    private static string Driver(string members, string types = "DevPagemapTypes.Private", string modifiers = "public static partial", string name = "\"devmem\"") =>
        "using PluginMm;\nusing PluginMm.Hmm;\n" + $$"""
        namespace Sample;

        [DevPagemapOps({{name}}, {{types}})]
        {{modifiers}} class DeviceMemoryOps
        {
        {{members}}
        }
        """;

    private static (Compilation Output, System.Collections.Immutable.ImmutableArray<Diagnostic> Pmm, GeneratorDriverRunResult Run) Build(Compilation c) =>
        PluginHarness.Build(c, new DevPagemapOpsGenerator(), new DevPagemapOpsAnalyzer());

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: a valid driver gets a table whose pointers call its hooks, and memremap_pages accepts it")]
    public unsafe void GeneratesWorkingTable()
    {
        var (output, pmm, run) = Build(Compile(Driver(PageFreeOk + "\n" + MigrateOk)));
        Assert.IsEmpty(pmm, string.Join("\n", pmm));
        Assert.IsEmpty(Errors(output), string.Join("\n", Errors(output)));
        string text = run.Results.Single().GeneratedSources.Single().SourceText.ToString();
        StringAssert.Contains(text, "pageFree: &PageFree");
        StringAssert.Contains(text, "migrateToRam: &MigrateToRam");
        StringAssert.Contains(text, "memoryFailure: null");

        using var stream = new MemoryStream();
        Assert.IsTrue(output.Emit(stream).Success);
        var type = Assembly.Load(stream.ToArray()).GetType("Sample.DeviceMemoryOps")!;
        var ops = (DevPagemapOps)type.GetField("Ops")!.GetValue(null)!;
        Assert.AreEqual("devmem", ops.Name);
        Assert.IsTrue(ops.HasPageFree && ops.HasMigrateToRam && !ops.HasMemoryFailure);
        Assert.IsTrue((bool)type.GetField("HasMigrateToRam")!.GetValue(null)!);
        Assert.IsFalse((bool)type.GetField("HasMemoryFailure")!.GetValue(null)!);

        // The table works where the kernel uses it: memremap_pages accepts it, and a page's last put calls page_free.
        var pgmap = new DevPagemap(MemoryDeviceType.Private, ops, owner: this, nrPages: 2);
        Assert.AreEqual(Errno.None, Memremap.MemremapPages(pgmap));
        var page = pgmap.Pages[0];
        page.ZoneDevicePageInit();
        page.Unlock();
        page.Put();
        Assert.AreEqual(1, (int)type.GetField("Freed")!.GetValue(null)!);
        Assert.AreEqual(0, page.RefCount);
        var vmf = new VmFault();
        Assert.AreEqual(VmFaultResult.None, ops.MigrateToRam(ref vmf));
        Assert.AreEqual(1, (int)type.GetField("Migrations")!.GetValue(null)!);
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: memremap_pages refuses hand-built tables the generator would refuse (EINVAL)")]
    public unsafe void MemremapRefusesIncompleteTables()
    {
        var none = new DevPagemapOps("none", null, null, null);
        Assert.AreEqual(Errno.EINVAL, Memremap.MemremapPages(new DevPagemap(MemoryDeviceType.Private, none, this, 1)));
        Assert.AreEqual(Errno.EINVAL, Memremap.MemremapPages(new DevPagemap(MemoryDeviceType.Coherent, none, this, 1)));
        var freeOnly = new DevPagemapOps("free-only", &FreeNothing, null, null);
        Assert.AreEqual(Errno.EINVAL, Memremap.MemremapPages(new DevPagemap(MemoryDeviceType.Private, freeOnly, this, 1)), "private needs migrate_to_ram");
        Assert.AreEqual(Errno.EINVAL, Memremap.MemremapPages(new DevPagemap(MemoryDeviceType.Coherent, freeOnly, owner: null, 1)), "an owner is required");
        var ok = new DevPagemap(MemoryDeviceType.Coherent, freeOnly, this, 1);
        Assert.AreEqual(Errno.None, Memremap.MemremapPages(ok));
        Assert.AreEqual(Errno.EEXIST, Memremap.MemremapPages(ok));
    }

    private static void FreeNothing(Folio page) { }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: PMM0030 names each missing required hook and why; no table")]
    public void MissingHooks()
    {
        var (output, pmm, run) = Build(Compile(Driver("    public static int Other;")));
        Assert.HasCount(2, pmm);
        Assert.IsTrue(pmm.All(d => d.Id == "PMM0030"));
        Assert.AreEqual("DeviceMemoryOps", pmm[0].Location.SourceTree!.GetText().ToString(pmm[0].Location.SourceSpan));
        var messages = pmm.Select(d => d.GetMessage()).OrderBy(m => m).ToArray();
        StringAssert.StartsWith(messages[0], "Page-map ops 'Sample.DeviceMemoryOps' is missing the required hook 'MigrateToRam': the table serves MEMORY_DEVICE_PRIVATE memory");
        StringAssert.StartsWith(messages[1], "Page-map ops 'Sample.DeviceMemoryOps' is missing the required hook 'PageFree': memremap_pages refuses");
        Assert.IsEmpty(run.Results.Single().GeneratedSources);
        Assert.IsEmpty(Errors(output));

        // Coherent memory needs only PageFree.
        var (_, coherent, coherentRun) = Build(Compile(Driver(PageFreeOk, "DevPagemapTypes.Coherent")));
        Assert.IsEmpty(coherent);
        Assert.HasCount(1, coherentRun.Results.Single().GeneratedSources);
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: PMM0031 names the wrong part of a hook's signature and shows the contract's")]
    public void WrongSignature()
    {
        var (_, pmm, run) = Build(Compile(Driver(PageFreeOk + "\n    public static VmFaultResult MigrateToRam(VmFault vmf) => VmFaultResult.None;")));
        var d = pmm.Single();
        Assert.AreEqual("PMM0031", d.Id);
        Assert.AreEqual("MigrateToRam", d.Location.SourceTree!.GetText().ToString(d.Location.SourceSpan));
        StringAssert.Contains(d.GetMessage(), "parameter 1 'vmf' is 'global::PluginMm.VmFault' instead of 'ref global::PluginMm.VmFault'");
        StringAssert.EndsWith(d.GetMessage(), "expected '" + DevPagemapHookSignatures.MigrateToRam + "'", "the analyzer's copy of the signature agrees with Abstractions");
        Assert.IsEmpty(run.Results.Single().GeneratedSources);

        var (_, pmm2, _) = Build(Compile(Driver(PageFreeOk + "\n" + MigrateOk + "\n    public static long MemoryFailure(DevPagemap pgmap, long pfn, long nrPages, int mfFlags) => 0;")));
        StringAssert.Contains(pmm2.Single(x => x.Id == "PMM0031").GetMessage(), "it returns 'long' instead of 'int'");
        StringAssert.EndsWith(pmm2.Single(x => x.Id == "PMM0031").GetMessage(), "expected '" + DevPagemapHookSignatures.MemoryFailure + "'");
        var (_, pmm3, _) = Build(Compile(Driver(MigrateOk + "\n    public static void PageFree(object page) { }")));
        StringAssert.EndsWith(pmm3.Single(x => x.Id == "PMM0031").GetMessage(), "expected '" + DevPagemapHookSignatures.PageFree + "'");
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: PMM0032 for a non-partial class, unsafe code off, a bad name or types value")]
    public void CannotCarry()
    {
        string ok = PageFreeOk + "\n" + MigrateOk;
        var (_, notPartial, _) = Build(Compile(Driver(ok, modifiers: "public static")));
        Assert.AreEqual("PMM0032", notPartial.Single().Id);
        StringAssert.Contains(notPartial.Single().GetMessage(), "it is not partial");
        var (_, noUnsafe, run) = Build(Compile(Driver(ok), allowUnsafe: false));
        StringAssert.Contains(noUnsafe.Single().GetMessage(), "AllowUnsafeBlocks");
        Assert.IsEmpty(run.Results.Single().GeneratedSources);
        var (_, badName, _) = Build(Compile(Driver(ok, name: "\"dev mem\"")));
        StringAssert.Contains(badName.Single().GetMessage(), "whitespace");
        var (_, badTypes, _) = Build(Compile(Driver(ok, types: "(DevPagemapTypes)8")));
        StringAssert.Contains(badTypes.Single(d => d.Id == "PMM0032").GetMessage(), "types value 8");
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: PMM0033 warns that MigrateToRam is never called for coherent-only memory; the table is still built")]
    public void UnreachableMigrateToRam()
    {
        var (_, pmm, run) = Build(Compile(Driver(PageFreeOk + "\n" + MigrateOk, "DevPagemapTypes.Coherent")));
        var d = pmm.Single();
        Assert.AreEqual("PMM0033", d.Id);
        Assert.AreEqual(DiagnosticSeverity.Warning, d.Severity);
        Assert.AreEqual("MigrateToRam", d.Location.SourceTree!.GetText().ToString(d.Location.SourceSpan));
        Assert.HasCount(1, run.Results.Single().GeneratedSources);
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: the PMM0030 code fix adds the missing hooks; the fixed driver builds clean")]
    public async Task CodeFixAddsHooks()
    {
        var document = PluginHarness.Document(Driver("    public static int Other;"), out var documentId, out var projectId);
        var (_, pmm, _) = Build((await document.Project.GetCompilationAsync())!);
        Assert.HasCount(2, pmm);
        var solution = document.Project.Solution;
        foreach (var diagnostic in pmm)
        {
            var current = solution.GetDocument(documentId)!;
            var (_, again, _) = Build((await current.Project.GetCompilationAsync())!);
            var target = again.First(d => d.Id == "PMM0030");
            var actions = await Fixes(new AddDevPagemapHookCodeFixProvider(), current, target);
            Assert.HasCount(1, actions);
            StringAssert.StartsWith(actions[0].Title, "Add hook '");
            solution = (await actions[0].GetOperationsAsync(CancellationToken.None)).OfType<ApplyChangesOperation>().Single().ChangedSolution;
        }
        var fixedText = (await solution.GetDocument(documentId)!.GetTextAsync()).ToString();
        StringAssert.Contains(fixedText, "public static void PageFree(Folio page)");
        StringAssert.Contains(fixedText, "public static VmFaultResult MigrateToRam(ref VmFault vmf)");
        var (output, pmmAfter, run) = Build((await solution.GetProject(projectId)!.GetCompilationAsync())!);
        Assert.IsEmpty(pmmAfter, string.Join("\n", pmmAfter));
        Assert.IsEmpty(Errors(output), string.Join("\n", Errors(output)));
        Assert.HasCount(1, run.Results.Single().GeneratedSources);
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: the PMM0030 code fix keeps a CRLF document's line endings")]
    public async Task CodeFixKeepsCrlf()
    {
        var source = Driver("    public static int Other;").Replace("\r\n", "\n").Replace("\n", "\r\n");
        var document = PluginHarness.Document(source, out var documentId, out _);
        var (_, pmm, _) = Build((await document.Project.GetCompilationAsync())!);
        var actions = await Fixes(new AddDevPagemapHookCodeFixProvider(), document, pmm.First(d => d.Id == "PMM0030"));
        var solution = (await actions[0].GetOperationsAsync(CancellationToken.None)).OfType<ApplyChangesOperation>().Single().ChangedSolution;
        var fixedText = (await solution.GetDocument(documentId)!.GetTextAsync()).ToString();
        StringAssert.Contains(fixedText, "// TODO:");
        Assert.AreEqual(fixedText.Split('\n').Length - 1, fixedText.Split("\r\n").Length - 1, "every line break is CRLF:\n" + fixedText);
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: an edit elsewhere leaves every tracked step cached")]
    public void StepsAreCached()
    {
        var input = Compile(Driver(PageFreeOk + "\n" + MigrateOk));
        GeneratorDriver driver = CSharpGeneratorDriver.Create(new[] { new DevPagemapOpsGenerator().AsSourceGenerator() },
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));
        driver = driver.RunGenerators(input);
        var edited = input.AddSyntaxTrees(CSharpSyntaxTree.ParseText("namespace Sample; public static class Unrelated { public static int X; }",
            new CSharpParseOptions(LanguageVersion.Latest), path: "Source1.cs"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
        foreach (var step in new[] { DevPagemapOpsGenerator.StepNames.Parse, DevPagemapOpsGenerator.StepNames.Specs })
        {
            var reasons = result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();
            Assert.IsNotEmpty(reasons, step);
            Assert.IsTrue(reasons.All(r => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged), step + ": " + string.Join(",", reasons));
        }
        Assert.IsTrue(result.TrackedOutputSteps.SelectMany(kv => kv.Value).SelectMany(s => s.Outputs).All(o => o.Reason == IncrementalStepRunReason.Cached), "nothing re-emitted");
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: the sample driver's table was generated by the build")]
    public void SampleDriverIsGenerated()
    {
        Assert.AreEqual("dmirror_devmem", global::HmmMirror.DmirrorDevmemOps.Ops.Name);
        var ops = global::HmmMirror.DmirrorDevmemOps.Ops;
        Assert.IsTrue(ops.HasPageFree && ops.HasMigrateToRam && !ops.HasMemoryFailure);
        Assert.IsNotNull(typeof(global::HmmMirror.DmirrorDevmemOps).GetField("HasMemoryFailure"), "the generated constants exist");
    }

    [TestMethod(DisplayName = "hmm dev_pagemap plugin: PMM0030-PMM0033 have help pages and release-tracking rows")]
    public void DocsExist()
    {
        string root = RepoRoot();
        string releases = File.ReadAllText(Path.Combine(root, "Generators", "PluginMm.Generators", "AnalyzerReleases.Unshipped.md"));
        string index = File.ReadAllText(Path.Combine(root, "docs", "diagnostics", "README.md"));
        foreach (var d in new DevPagemapOpsAnalyzer().SupportedDiagnostics)
        {
            string page = Path.Combine(root, "docs", "diagnostics", d.Id + ".md");
            Assert.IsTrue(File.Exists(page), page);
            StringAssert.StartsWith(File.ReadAllText(page), $"# {d.Id}: {d.Title}");
            StringAssert.Contains(releases, d.Id + " |");
            StringAssert.Contains(index, $"[{d.Id}]({d.Id}.md)");
            Assert.AreEqual($"https://github.com/pluginmm/pluginmm/blob/main/docs/diagnostics/{d.Id}.md", d.HelpLinkUri);
        }
    }
}
