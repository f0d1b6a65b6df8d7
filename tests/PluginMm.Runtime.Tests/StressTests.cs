using System.Collections.Concurrent;
using PluginMm.Runtime.Tests.Support;
using PluginMm.UffdStress;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// The uffd-stress port (tests/PluginMm.UffdStress, kernel-uffd.md §9.3) at CI size: every memory type, both fault-path
/// designs, 16 bounces (all sixteen combinations of RANDOM, RACINGFAULTS, VERIFY and POLL), locking, fault and
/// background COPY threads on two CPUs, write-protect on, every counter verified after every bounce, the EEXIST-then-WAKE
/// race and the alias EEXIST retry exercised, no page leaked. Run the program itself for larger or longer runs.
/// </summary>
[TestClass]
public sealed class StressTests
{
    private static readonly ConcurrentBag<StressResult> s_results = [];

    [ClassCleanup]
    public static void Cleanup(TestContext context)
    {
        long bounces = 0, pages = 0, missing = 0, wp = 0, eexist = 0;
        bool ok = !s_results.IsEmpty;
        foreach (var r in s_results)
        {
            bounces += r.Bounces; pages += r.Pages * r.Bounces; missing += r.MissingFaults; wp += r.WpFaults; eexist += r.EexistWakes;
            ok &= r.Ok;
        }
        context.DisplayMessage(MessageLevel.Warning, $"uffd-stress: {(ok ? "ok" : "FAILED")} runs={s_results.Count} bounces={bounces} pages={pages} "
            + $"faults={missing + wp} (missing={missing} wp={wp}) eexist-wake={eexist}");
    }

    [TestMethod(DisplayName = "uffd-stress")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void UffdStress(string mem)
    {
        long missing = 0, wp = 0, eexistWakes = 0;
        foreach (var design in Issue4.Designs)
        {
            var r = UffdStressRunner.Run(new StressOptions
            {
                MemType = mem, MiB = mem.StartsWith("hugetlb", StringComparison.Ordinal) ? 16 : 8, Bounces = 16, Cpus = 2, Design = design,
                HangGuard = TimeSpan.FromSeconds(90),
            });
            s_results.Add(r);
            Assert.IsTrue(r.Ok, $"{r}\n{string.Join("\n", r.Errors)}");
            Assert.AreEqual(16, r.Bounces);
            Assert.AreEqual(0, r.LeakedPages, "pages leaked");
            Assert.IsTrue(r.EexistRetries > 0, $"the alias EEXIST retry ran (it needs a background COPY that filled a page): {r}");
            missing += r.MissingFaults; wp += r.WpFaults; eexistWakes += r.EexistWakes;
        }
        // Scheduling decides how many faults a run takes; over 32 bounces none of these can plausibly stay zero, and every
        // page a handler filled is one the background thread then met with -EEXIST and a WAKE.
        Assert.IsTrue(missing > 0 && wp > 0, $"both fault kinds exercised: missing={missing} wp={wp}");
        Assert.IsTrue(eexistWakes >= missing, $"each handler-filled page raced a background COPY: eexist-wake={eexistWakes} missing={missing}");
    }
}
