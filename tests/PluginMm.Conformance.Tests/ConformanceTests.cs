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
    private static readonly ConcurrentBag<string> s_skipped = [];
    private static readonly ConcurrentBag<string> s_different = [];
    private static int s_run, s_identical;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void Init(TestContext _) => s_host = new HostTarget();

    [ClassCleanup]
    public static void Cleanup(TestContext context)
    {
        s_host?.Dispose();
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
            host = TraceRecorder.Record(s_host!, s, type);
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
}
