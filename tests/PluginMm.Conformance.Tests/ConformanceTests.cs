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
        // Each target restores nr_hugepages to what it found: dispose in reverse order of creation.
        s_helper?.Dispose();
        s_host?.Dispose();
        context.DisplayMessage(MessageLevel.Warning,
            $"conformance: {s_run} scenarios run on model and host, {s_identical} identical, {s_run - s_identical} different, {s_skipped.Count} skipped");
        foreach (var d in s_different.OrderBy(x => x, StringComparer.Ordinal))
            context.DisplayMessage(MessageLevel.Warning, $"conformance: different: {d}");
        foreach (var d in s_skipped.OrderBy(x => x, StringComparer.Ordinal))
            context.DisplayMessage(MessageLevel.Warning, $"conformance: skipped: {d}");
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
            catch (TraceDivergedException e) when (Known.TryGetValue(s.DisplayName(type), out var known) && e.Message.Contains(known.Line, StringComparison.Ordinal))
            {
                Interlocked.Increment(ref s_run);
                s_different.Add($"{s.DisplayName(type)} [known: {known.Why}]");
                Assert.Inconclusive($"known model divergence, fix pending: {known.Why}\n{e.Message}");
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
        if (Known.TryGetValue(s.DisplayName(type), out var fixedNow))
            Assert.Fail($"{s.DisplayName(type)}: the known divergence ({fixedNow.Why}) is gone: remove it from ConformanceTests.Known");
        Interlocked.Increment(ref s_identical);
        TestContext.WriteLine(h);
    }

    /// <summary>
    /// Divergences this suite found whose model fix is pending: the host's trace line,
    /// and the kernel source that explains it. A known divergence is reported (Inconclusive, with the diff); a case
    /// that becomes identical fails until its entry is removed, so the list cannot go stale.
    /// </summary>
    private static readonly Dictionary<string, (string Line, string Why)> Known = new(StringComparer.Ordinal)
    {
        ["guest_memfd-register on guest_memfd"] = ("- register p0 2pg Missing -> EINVAL", "the model has only the series' guest_memfd, which registers; "
            + "mainline refuses it (fs/userfaultfd.c vma_can_userfault: not anonymous, shmem or hugetlb): a model 'mainline' setting is pending"),
    };

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
