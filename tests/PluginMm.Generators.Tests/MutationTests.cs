using PluginMm.Generators.Mutation;

namespace PluginMm.Generators.Tests;

/// <summary>
/// Issue 13, part 6: random token-level mutations of the samples' and backends' memory types never crash the
/// generators (CS8785) or the analyzers (AD0001). CI runs a bounded count (PMM_MUTATIONS, default 400, at most
/// 90 s); tests/PluginMm.Generators.Mutate runs the same engine as long as asked.
/// </summary>
[TestClass]
public sealed class MutationTests
{
    [TestMethod]
    public void TokenLevelMutants_NeverCrashTheGeneratorsOrTheAnalyzers()
    {
        int count = int.TryParse(Environment.GetEnvironmentVariable("PMM_MUTATIONS"), out var n) ? n : 400;
        var engine = new MutationEngine(TestHarness.RepositoryRoot, TestHarness.References);
        Assert.IsGreaterThanOrEqualTo(7, engine.Files.Count, string.Join(", ", engine.Files));
        var (ran, failures) = engine.Run(seed: 13, first: 0, count, TimeSpan.FromSeconds(90));
        Assert.IsGreaterThan(0, ran);
        Assert.IsEmpty(failures, string.Join("\n\n", failures.Take(3).Select(f => $"case {f.Case} of seed 13 ({f.File}; {f.Edits}): {f.Problem}")));
    }
}
