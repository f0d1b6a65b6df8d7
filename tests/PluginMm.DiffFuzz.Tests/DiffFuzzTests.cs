using PluginMm.DiffFuzz;

using PluginMm.Conformance;

namespace PluginMm.DiffFuzz.Tests;

/// <summary>
/// The differential fuzzer in CI: a fixed seed for a bounded budget (900 cases, at most 110 s, no shrinking; about 60-80 s
/// on the shared 2-core development machine) on every memory type
/// the host can run; no divergence outside the README's table of known classes. Plus the saved minimal cases replayed
/// as regression tests, and the case format's round trip.
/// </summary>
[TestClass]
public sealed class DiffFuzzTests
{
    /// <summary>The CI seed.</summary>
    public const ulong CiSeed = 0xC1;

    /// <summary>The CI budget.</summary>
    public static readonly TimeSpan CiBudget = TimeSpan.FromSeconds(110);

    /// <summary>The CI case count (the budget above is only the hang guard of a slow machine).</summary>
    public const int CiCases = 900;

    private static string? s_summary;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void Init(TestContext _) => HostSide.ReserveHugePages(16);

    [ClassCleanup]
    public static void Cleanup(TestContext context)
    {
        HostSide.ReleaseHugePages();
        if (s_summary is not null)
            context.DisplayMessage(MessageLevel.Warning, s_summary);
    }

    private static void RequireHost()
    {
        if (new HostSide().Unsupported(MemType.Anon) is { } why)
            Assert.Inconclusive($"the host cannot run the fuzzer: {why}");
    }

    [TestMethod]
    [Timeout(170_000, CooperativeCancellation = true)]
    public void FixedSeedDivergesOnlyInKnownClasses()
    {
        RequireHost();
        var types = MemTypes.All.Where(t => !t.IsHuge() || HostSide.HugeReason is null).ToList();
        var log = new StringWriter();
        var sum = Fuzzer.Run(new FuzzOptions { Seed = CiSeed, Cases = CiCases, Duration = CiBudget, Types = types, Shrink = false, ProgressSeconds = 15 }, log);
        s_summary = sum.Line + (types.Count < MemTypes.All.Length ? $" [hugetlb skipped: {HostSide.HugeReason}]" : "");
        TestContext.WriteLine(log.ToString());
        TestContext.WriteLine(s_summary);
        var known = KnownDivergences.Load();
        Assert.IsNotEmpty(known, "README.md has no 'Known divergences' table");
        var unknown = sum.Classes.Keys.Where(c => KnownDivergences.Find(known, c) is not { Expected: true }).ToList();
        Assert.IsTrue(sum.Cases > 20, $"only {sum.Cases} cases ran in {CiBudget.TotalSeconds} s");
        Assert.IsEmpty(unknown, $"divergences outside the README table (or marked fixed): {string.Join(", ", unknown)}\n{sum.Line}\n"
            + string.Join("\n", unknown.Where(sum.Minimal.ContainsKey).Select(c => Runner.CaseFile(sum.Minimal[c].Case, sum.Minimal[c].Divergence))));
    }

    public static IEnumerable<object[]> SavedCases()
        => Directory.EnumerateFiles(Path.Combine(AppContext.BaseDirectory, "cases"), "*.case").Order(StringComparer.Ordinal)
            .Select(f => new object[] { Path.GetFileName(f) });

    /// <summary>
    /// Every saved minimal case: a class whose README row is "fixed" must now replay identical; one still "open" may
    /// diverge only in its own class.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(SavedCases))]
    public void SavedCaseReplays(string file)
    {
        RequireHost();
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "cases", file));
        var c = FuzzCase.Parse(text);
        if (c.Type.IsHuge() && HostSide.HugeReason is { } why)
            Assert.Inconclusive($"hugetlb on the host: {why}");
        string cls = text.Split('\n').First(l => l.StartsWith("# difffuzz divergence class ", StringComparison.Ordinal))["# difffuzz divergence class ".Length..].Trim();
        var row = KnownDivergences.Find(KnownDivergences.Load(), cls);
        Assert.IsNotNull(row, $"{file}: class {cls} has no row in the README table");
        var run = Runner.Run(c);
        Assert.IsNull(run.Error, run.Error);
        if (!row.Expected)
            Assert.IsNull(run.Divergence, $"{file}: class {cls} is marked '{row.Status}' but still diverges:\n{Runner.Trace(run)}");
        else if (run.Divergence is { } d)
            Assert.AreEqual(cls, d.Class, $"{file}: diverges in another class:\n{Runner.Trace(run)}");
        TestContext.WriteLine(Runner.Trace(run));
    }

    [TestMethod]
    public void CaseFilesRoundTrip()
    {
        for (ulong s = 1; s < 200; s++)
        {
            var c = Generator.Generate(Generator.CaseSeed(7, (long)s), MemTypes.All);
            string text = c.ToText(["comment"]);
            Assert.AreEqual(text[(text.IndexOf('\n') + 1)..], FuzzCase.Parse(text).ToText());
        }
    }

    [TestMethod]
    public void ClassNamesTheOpTheFieldAndTheType()
    {
        var op = Op.Parse("wp start=0xa000 len=0x1000 mode=0x0");
        var m = new Rec().Add("errno", "EINVAL");
        var h = new Rec().Add("errno", "ENOENT");
        Assert.AreEqual("errno", Rec.FirstDifference(m, h));
        Assert.AreEqual("wp[low]:errno:anon", Runner.Classify(op, "errno", m, h, MemType.Anon));
        var sum = Op.Parse("summary when=before");
        var pm = new Rec().Add("p0", "P-F- all00");
        var ph = new Rec().Add("p0", "PWF- all00");
        Assert.AreEqual("summary-before:page.uffd-wp:shmem", Runner.Classify(sum, "p0", pm, ph, MemType.Shmem));
    }
}
