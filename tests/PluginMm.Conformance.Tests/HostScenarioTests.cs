using System.Collections.Concurrent;

namespace PluginMm.Conformance;

/// <summary>
/// Every scenario × memory type on the real kernel. Each trace must equal the reviewed golden trace in
/// <c>golden/host/</c> (recorded on Linux 6.18; regenerate with PLUGINMM_UPDATE_GOLDEN=1 and review the diff). The
/// model is held to these same traces by the conformance tests.
/// </summary>
[TestClass]
public sealed class HostScenarioTests
{
    private static HostTarget? s_host;
    private static HelperTarget? s_helper;
    private static readonly ConcurrentBag<string> s_skipped = [];
    private static int s_run, s_matched;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void Init(TestContext _)
    {
        s_host = new HostTarget();
        s_helper = new HelperTarget();
    }

    private static IUffdTarget HostFor(Scenario s) => s.InHelper ? s_helper! : s_host!;

    [ClassCleanup]
    public static void Cleanup(TestContext context)
    {
        // Each target restores nr_hugepages to what it found: dispose in reverse order of creation.
        s_helper?.Dispose();
        s_host?.Dispose();
        context.DisplayMessage(MessageLevel.Warning, $"conformance: host {s_run} scenarios run, {s_matched} identical to the reviewed kernel trace, {s_skipped.Count} skipped"
            + (s_skipped.IsEmpty ? "" : ": " + string.Join("; ", s_skipped.Distinct())));
    }

    public static IEnumerable<object[]> Cases()
    {
        foreach (var s in Scenarios.Catalogue)
            foreach (var t in s.Types)
                yield return [s.Name, t];
    }

    public static string CaseName(System.Reflection.MethodInfo _, object[] data)
        => Scenarios.Catalogue.First(s => s.Name == (string)data[0]).DisplayName((MemType)data[1]);

    [TestMethod]
    [DynamicData(nameof(Cases), DynamicDataDisplayName = nameof(CaseName))]
    public void OnHost(string scenario, MemType type)
    {
        var s = Scenarios.Catalogue.First(x => x.Name == scenario);
        IReadOnlyList<string> trace;
        try
        {
            trace = TraceRecorder.Record(HostFor(s), s, type);
        }
        catch (ScenarioSkippedException e)
        {
            s_skipped.Add($"{s.DisplayName(type)}: {e.Message}");
            Assert.Inconclusive(e.Message);
            return;
        }
        Interlocked.Increment(ref s_run);
        TestContext.WriteLine(string.Join("\n", trace));
        Golden.AssertMatches("host", s.DisplayName(type), trace);
        Interlocked.Increment(ref s_matched);
    }
}

/// <summary>Runs one scenario on one target and returns its trace.</summary>
public static class TraceRecorder
{
    /// <summary>Runs <paramref name="s"/> on <paramref name="target"/> for <paramref name="type"/>.</summary>
    public static IReadOnlyList<string> Record(IUffdTarget target, Scenario s, MemType type, IReadOnlyList<string>? reference = null)
    {
        using var run = new ScenarioRun(target, type, s.Pages, reference);
        s.Body(run);
        return [.. run.Trace];
    }
}

/// <summary>Golden traces under <c>golden/&lt;target&gt;/</c>, in the source tree.</summary>
public static class Golden
{
    // The project directory, recorded at build time: CallerFilePath is mapped to "/_/" by ContinuousIntegrationBuild (CI=true).
    private static readonly string s_projectDir = typeof(Golden).Assembly
        .GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
        .OfType<System.Reflection.AssemblyMetadataAttribute>().Single(a => a.Key == "ConformanceProjectDir").Value!;

    private static string Dir(string target) => Path.Combine(s_projectDir, "golden", target);

    /// <summary>The file of a scenario's golden trace.</summary>
    public static string PathOf(string target, string displayName) => Path.Combine(Dir(target), displayName.Replace(' ', '_').Replace('/', '_') + ".trace");

    /// <summary>Asserts the trace equals the golden one (or writes it when PLUGINMM_UPDATE_GOLDEN=1).</summary>
    public static void AssertMatches(string target, string displayName, IReadOnlyList<string> trace)
    {
        string path = PathOf(target, displayName);
        string text = string.Join("\n", trace) + "\n";
        if (Environment.GetEnvironmentVariable("PLUGINMM_UPDATE_GOLDEN") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, text);
            return;
        }
        if (!File.Exists(path))
            Assert.Fail($"no golden trace {path}; run with PLUGINMM_UPDATE_GOLDEN=1 and review it. Trace:\n{text}");
        string expected = File.ReadAllText(path);
        if (expected != text)
            Assert.Fail($"{displayName}: trace differs from {path}\n{Diff(expected, text)}");
    }

    /// <summary>A line diff of two traces.</summary>
    public static string Diff(string expected, string actual)
    {
        var e = expected.Split('\n');
        var a = actual.Split('\n');
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < Math.Max(e.Length, a.Length); i++)
        {
            string x = i < e.Length ? e[i] : "<none>", y = i < a.Length ? a[i] : "<none>";
            sb.AppendLine(x == y ? $"   {x}" : $" - {x}\n + {y}");
        }
        return sb.ToString();
    }
}
