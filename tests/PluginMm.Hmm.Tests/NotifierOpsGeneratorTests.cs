using System.Collections.Immutable;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using PluginMm.Generators.CodeFixes;
using PluginMm.Generators.Hmm;
using static PluginMm.Hmm.Tests.PluginHarness;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// The HMM driver plugin contract at compile time: an <c>[MmuIntervalNotifierOps]</c> class gets a generated ops table;
/// without <c>Invalidate</c> it fails with PMM0011 and the code fix repairs it; a wrong signature is PMM0012; a class that
/// cannot carry the table is PMM0013. (A minimal harness in the manner of tests/PluginMm.Generators.Tests.)
/// </summary>
[TestClass]
public sealed class NotifierOpsGeneratorTests
{
    private const string Usings = "using PluginMm;\nusing PluginMm.Hmm;\n";
    private const string InvalidateOk = "    public static bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq) { interval.SetSeq(curSeq); Calls++; return true; }\n    public static int Calls;";

    private static string Driver(string members, string modifiers = "public static partial", string name = "\"mirror\"") =>
        Usings + $$"""
        namespace Sample;

        [MmuIntervalNotifierOps({{name}})]
        {{modifiers}} class MirrorNotifier
        {
        {{members}}
        }
        """;

    private static (Compilation Output, ImmutableArray<Diagnostic> Pmm, GeneratorDriverRunResult Run) Build(Compilation input) =>
        PluginHarness.Build(input, new NotifierOpsGenerator(), new NotifierOpsAnalyzer());

    [TestMethod(DisplayName = "hmm plugin: a valid driver gets an ops table whose Invalidate pointer calls the hook")]
    public unsafe void GeneratesWorkingTable()
    {
        var (output, pmm, run) = Build(Compile(Driver(InvalidateOk)));
        Assert.IsEmpty(pmm);
        Assert.IsEmpty(Errors(output), string.Join("\n", Errors(output)));
        var generated = run.Results.Single().GeneratedSources.Single();
        StringAssert.Contains(generated.SourceText.ToString(), "invalidate: &Invalidate");

        using var stream = new MemoryStream();
        Assert.IsTrue(output.Emit(stream).Success);
        var assembly = Assembly.Load(stream.ToArray());
        var type = assembly.GetType("Sample.MirrorNotifier")!;
        var ops = (MmuIntervalNotifierOps)type.GetField("Ops")!.GetValue(null)!;
        Assert.AreEqual("mirror", ops.Name);
        Assert.IsTrue(ops.HasInvalidate);
        Assert.IsTrue((bool)type.GetField("HasInvalidate")!.GetValue(null)!);
        var view = new MmuNotifierRangeView(0, 0x1000, MmuNotifyEvent.Unmap, null, blockable: true);
        var sub = new TestNotifier(ops);
        Assert.IsTrue(ops.Invalidate(sub, in view, 7));
        Assert.AreEqual(7UL, sub.InvalidateSeq);
        Assert.AreEqual(1, (int)type.GetField("Calls")!.GetValue(null)!);
    }

    private sealed class TestNotifier(MmuIntervalNotifierOps ops) : MmuIntervalNotifier(0, 0x1000, ops, null)
    {
        public override ulong ReadBegin() => InvalidateSeq;
    }

    [TestMethod(DisplayName = "hmm plugin: PMM0011 when Invalidate is missing, on the class name, and no table")]
    public void MissingInvalidate()
    {
        var (output, pmm, run) = Build(Compile(Driver("    public static int Other;")));
        var d = pmm.Single();
        Assert.AreEqual("PMM0011", d.Id);
        Assert.AreEqual("MirrorNotifier", d.Location.SourceTree!.GetText().ToString(d.Location.SourceSpan));
        StringAssert.StartsWith(d.GetMessage(), "Interval notifier ops 'Sample.MirrorNotifier' is missing the required hook 'Invalidate': every interval notifier needs it");
        Assert.IsEmpty(run.Results.Single().GeneratedSources);
        Assert.IsEmpty(Errors(output));
    }

    [TestMethod(DisplayName = "hmm plugin: PMM0012 names the wrong part of Invalidate's signature and shows the contract's")]
    public void WrongSignature()
    {
        var (_, pmm, run) = Build(Compile(Driver("    public static bool Invalidate(MmuIntervalNotifier interval, MmuNotifierRangeView range, ulong curSeq) => true;")));
        var d = pmm.Single();
        Assert.AreEqual("PMM0012", d.Id);
        Assert.AreEqual("Invalidate", d.Location.SourceTree!.GetText().ToString(d.Location.SourceSpan));
        StringAssert.Contains(d.GetMessage(), "parameter 2 'range' is 'global::PluginMm.Hmm.MmuNotifierRangeView' instead of 'in global::PluginMm.Hmm.MmuNotifierRangeView'");
        StringAssert.EndsWith(d.GetMessage(), "expected '" + NotifierHookSignatures.Invalidate + "'", "the analyzer's copy of the signature agrees with Abstractions");
        Assert.IsEmpty(run.Results.Single().GeneratedSources);

        var (_, pmm2, _) = Build(Compile(Driver("    public bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq) => true;", "public partial")));
        StringAssert.Contains(pmm2.Single(x => x.Id == "PMM0012").GetMessage(), "it is not static");
    }

    [TestMethod(DisplayName = "hmm plugin: PMM0013 for a non-partial class, unsafe code off, or a bad name")]
    public void CannotCarry()
    {
        var (_, notPartial, _) = Build(Compile(Driver(InvalidateOk, "public static")));
        StringAssert.Contains(notPartial.Single().GetMessage(), "it is not partial");
        Assert.AreEqual("PMM0013", notPartial.Single().Id);

        var (_, noUnsafe, run) = Build(Compile(Driver(InvalidateOk), allowUnsafe: false));
        StringAssert.Contains(noUnsafe.Single().GetMessage(), "AllowUnsafeBlocks");
        Assert.IsEmpty(run.Results.Single().GeneratedSources);

        var (_, badName, _) = Build(Compile(Driver(InvalidateOk, name: "\"my mirror\"")));
        StringAssert.Contains(badName.Single().GetMessage(), "whitespace");
    }

    [TestMethod(DisplayName = "hmm plugin: the PMM0011 code fix adds Invalidate; the fixed driver builds clean")]
    public async Task CodeFixAddsInvalidate()
    {
        var document = PluginHarness.Document(Driver("    public static int Other;"), out var documentId, out var projectId);

        var (_, pmm, _) = Build((await document.Project.GetCompilationAsync())!);
        var diagnostic = pmm.Single(d => d.Id == "PMM0011");
        var actions = await Fixes(new AddInvalidateHookCodeFixProvider(), document, diagnostic);
        Assert.HasCount(1, actions);
        Assert.AreEqual("Add hook 'Invalidate'", actions[0].Title);
        var changed = (await actions[0].GetOperationsAsync(CancellationToken.None)).OfType<ApplyChangesOperation>().Single().ChangedSolution;

        var fixedText = (await changed.GetDocument(documentId)!.GetTextAsync()).ToString();
        StringAssert.Contains(fixedText, "public static bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq)");
        StringAssert.Contains(fixedText, "interval.SetSeq(curSeq);");
        var (output, pmmAfter, run) = Build((await changed.GetProject(projectId)!.GetCompilationAsync())!);
        Assert.IsEmpty(pmmAfter, string.Join("\n", pmmAfter));
        Assert.IsEmpty(Errors(output), string.Join("\n", Errors(output)));
        Assert.HasCount(1, run.Results.Single().GeneratedSources);
    }

    [TestMethod(DisplayName = "hmm plugin: the sample driver's tables were generated by the build")]
    public void SampleDriverIsGenerated()
    {
        Assert.IsNotNull(typeof(global::HmmMirror.DmirrorMinOps).GetField("HasInvalidate"), "the generated constant exists");
        Assert.AreEqual("dmirror", global::HmmMirror.DmirrorMinOps.Ops.Name);
        Assert.IsTrue(global::HmmMirror.DmirrorMinOps.Ops.HasInvalidate);
        Assert.AreEqual("dmirror_snapshot", global::HmmMirror.DmirrorSnapshotOps.Ops.Name);
    }

    [TestMethod(DisplayName = "hmm plugin: PMM0011-PMM0013 have help pages and release-tracking rows")]
    public void DocsExist()
    {
        string root = RepoRoot();
        string releases = File.ReadAllText(Path.Combine(root, "Generators", "PluginMm.Generators", "AnalyzerReleases.Unshipped.md"));
        string index = File.ReadAllText(Path.Combine(root, "docs", "diagnostics", "README.md"));
        foreach (var d in new NotifierOpsAnalyzer().SupportedDiagnostics)
        {
            string page = Path.Combine(root, "docs", "diagnostics", d.Id + ".md");
            Assert.IsTrue(File.Exists(page), page);
            StringAssert.StartsWith(File.ReadAllText(page), $"# {d.Id}: {d.Title}");
            StringAssert.Contains(releases, d.Id + " |");
            StringAssert.Contains(index, $"[{d.Id}]({d.Id}.md)");
            Assert.AreEqual(typeof(NotifierOpsGeneratorTests).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
                .Cast<System.Reflection.AssemblyMetadataAttribute>().Single(a => a.Key == "PluginMmRepositoryUrl").Value
                + $"/blob/main/docs/diagnostics/{d.Id}.md", d.HelpLinkUri);
        }
    }
}
