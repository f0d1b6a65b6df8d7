using System.Collections.Concurrent;

namespace PluginMm.Conformance;

/// <summary>
/// The conformance suite: every scenario × memory type runs on the real kernel and on the model, and the two
/// canonical traces must be identical. A difference fails the test with the line diff; the model is then fixed, or the
/// difference is documented with the kernel source line that explains it.
/// </summary>
[TestClass]
public sealed class ConformanceTests
{
    private static HostTarget? s_host;
    private static HelperTarget? s_helper;
    private static readonly ConcurrentBag<string> s_skipped = [];
    private static readonly ConcurrentBag<string> s_different = [];
    private static int s_run, s_identical;

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
        s_host?.Dispose();
        s_helper?.Dispose();
        context.DisplayMessage(MessageLevel.Warning,
            $"conformance: {s_run} scenarios run on model and host, {s_identical} identical, {s_run - s_identical} different"
            + (s_different.IsEmpty ? "" : $" ({string.Join(", ", s_different.OrderBy(x => x, StringComparer.Ordinal))})")
            + $", {s_skipped.Count} skipped" + (s_skipped.IsEmpty ? "" : ": " + string.Join("; ", s_skipped.OrderBy(x => x, StringComparer.Ordinal))));
    }

    public static IEnumerable<object[]> Cases() => HostScenarioTests.Cases();

    public static string CaseName(System.Reflection.MethodInfo m, object[] data) => HostScenarioTests.CaseName(m, data) + " (model = host)";

    [TestMethod]
    [DynamicData(nameof(Cases), DynamicDataDisplayName = nameof(CaseName))]
    public void ModelEqualsHost(string scenario, MemType type)
    {
        var s = Scenarios.Catalogue.First(x => x.Name == scenario);
        IReadOnlyList<string> host, model;
        try
        {
            host = TraceRecorder.Record(HostFor(s), s, type);
        }
        catch (ScenarioSkippedException e)
        {
            s_skipped.Add($"{s.DisplayName(type)}: {e.Message}");
            Assert.Inconclusive(e.Message);
            return;
        }
        using (var target = new ModelTarget())
        {
            try
            {
                model = TraceRecorder.Record(target, s, type, reference: host);
            }
            catch (ScenarioSkippedException e)
            {
                s_skipped.Add($"{s.DisplayName(type)}: {e.Message}");
                Assert.Inconclusive(e.Message);
                return;
            }
            catch (TraceDivergedException e)
            {
                Interlocked.Increment(ref s_run);
                s_different.Add(s.DisplayName(type));
                Assert.Fail($"{s.DisplayName(type)}: {e.Message}");
                return;
            }
        }
        Interlocked.Increment(ref s_run);
        string h = string.Join("\n", host), m = string.Join("\n", model);
        if (h != m)
        {
            s_different.Add(s.DisplayName(type));
            Assert.Fail($"{s.DisplayName(type)}: the model's trace differs from the kernel's (- host, + model)\n{Golden.Diff(h, m)}");
        }
        Interlocked.Increment(ref s_identical);
        TestContext.WriteLine(h);
    }

    public static IEnumerable<object[]> NotRunCases() => Scenarios.NotRun.Select(n => new object[] { n.Name });

    /// <summary>The uffd-unit-tests cases that run on no target yet: each reports why, on the model and on the host.</summary>
    [TestMethod]
    [DynamicData(nameof(NotRunCases))]
    public void NotYetComparable(string name)
    {
        var (_, model, host) = Scenarios.NotRun.First(n => n.Name == name);
        string why = $"{name}: model: {model}; {host()}";
        s_skipped.Add(why);
        Assert.Inconclusive(why);
    }
}
