using System.Reflection;
using PluginMm.Generators.Diagnostics;
using PluginMm.Generators.Model;
using static PluginMm.Generators.Tests.TestHarness;

namespace PluginMm.Generators.Tests;

/// <summary>The generator's copies of the Abstractions contract agree with it; descriptors, docs and release tracking agree with each other.</summary>
[TestClass]
public sealed class ContractTests
{
    [TestMethod]
    public void HookCatalogAgreesWithHookNamesAndHookSignatures()
    {
        var names = typeof(HookNames).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetRawConstantValue()!).ToArray();
        CollectionAssert.AreEquivalent(names, HookCatalog.Names);
        foreach (var hook in HookCatalog.All)
        {
            var field = typeof(HookSignatures).GetField(hook.Name, BindingFlags.Public | BindingFlags.Static);
            Assert.IsNotNull(field, hook.Name);
            Assert.AreEqual((string)field.GetRawConstantValue()!, hook.Signature, hook.Name);
        }

        Assert.AreEqual(typeof(HookSignatures).GetFields().Length, HookCatalog.All.Length);
    }

    [TestMethod]
    public void EnumNumbersAndAttributeNameAgree()
    {
        var backings = new Dictionary<string, int>
        {
            ["Anonymous"] = HookCatalog.BackingAnonymous,
            ["PageCache"] = HookCatalog.BackingPageCache,
            ["HugeTlb"] = HookCatalog.BackingHugeTlb,
        };
        CollectionAssert.AreEquivalent(backings.Keys.ToArray(), Enum.GetNames<Backing>(), "a new Backing needs rules in HookRules");
        foreach (var (name, value) in backings)
        {
            Assert.AreEqual(value, (int)Enum.Parse<Backing>(name), name);
            Assert.AreEqual(name, HookCatalog.BackingName(value));
        }

        var modes = new Dictionary<string, ulong> { ["Missing"] = HookCatalog.ModeMissing, ["Wp"] = HookCatalog.ModeWp, ["Minor"] = HookCatalog.ModeMinor };
        foreach (var (name, value) in modes)
        {
            Assert.AreEqual(value, (ulong)Enum.Parse<UffdModes>(name), name);
        }

        ulong allModes = Enum.GetValues<UffdModes>().Aggregate(0UL, (all, m) => all | (ulong)m);
        Assert.AreEqual(HookCatalog.AllModes, allModes);
        var attributeType = typeof(MemoryTypeAttribute);
        Assert.AreEqual(HookCatalog.AttributeMetadataName, attributeType.FullName);
    }

    [TestMethod]
    public void MethodsWrittenFromHookSignaturesAreValidHooks()
    {
        // The expected parameter/return types in HookCatalog must describe the same signatures as the texts.
        string body(string signature) => signature.Contains(" void ", StringComparison.Ordinal) ? signature + " { }" : signature + " => default!;";
        var members = string.Join("\n", typeof(HookSignatures).GetFields().Select(f => "    " + body((string)f.GetRawConstantValue()!)));
        var run = Run(Samples.Type("\"all\", Backing = Backing.PageCache, Modes = UffdModes.Missing | UffdModes.Minor", members));
        Assert.IsEmpty(Analyze(run.Output), Describe(Analyze(run.Output)));
        Assert.IsEmpty(run.CompilerDiagnostics, Describe(run.CompilerDiagnostics));
        var text = run.Source("Sample.Backend.PluginMm.g.cs");
        foreach (var hook in HookCatalog.Names)
        {
            StringAssert.Contains(text, $"public const bool Has{hook} = true;");
        }
    }

    [TestMethod]
    public void DescriptorsHaveStableIdsHelpLinksDocsAndReleaseTracking()
    {
        // Every analyzer of the generator assembly; every descriptor's ID is a DiagnosticIds constant (IDs may be
        // claimed there before their analyzer exists, so the reverse is not required).
        var descriptors = typeof(MemoryTypeAnalyzer).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && typeof(Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer).IsAssignableFrom(t))
            .SelectMany(t => ((Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer)Activator.CreateInstance(t)!).SupportedDiagnostics)
            .ToList();
        var ids = typeof(DiagnosticIds).GetFields().Select(f => (string)f.GetRawConstantValue()!).ToArray();
        CollectionAssert.AllItemsAreUnique(ids);
        CollectionAssert.AllItemsAreUnique(descriptors.Select(d => d.Id).ToArray());
        CollectionAssert.IsSubsetOf(descriptors.Select(d => d.Id).ToArray(), ids);
        CollectionAssert.IsSubsetOf(
            new[] { "PMM0001", "PMM0002", "PMM0003", "PMM0004", "PMM0005", "PMM0006", "PMM0007", "PMM0008", "PMM0009", "PMM0010" },
            descriptors.Select(d => d.Id).ToArray());
        string root = RepositoryRoot;
        string unshipped = File.ReadAllText(Path.Combine(root, "Generators", "PluginMm.Generators", "AnalyzerReleases.Unshipped.md"));
        foreach (var d in descriptors)
        {
            StringAssert.Matches(d.Id, new System.Text.RegularExpressions.Regex("^PMM[0-9]{4}$"));
            Assert.AreEqual(ExpectedHelpLink(d.Id), d.HelpLinkUri);
            string doc = Path.Combine(root, "docs", "diagnostics", d.Id + ".md");
            Assert.IsTrue(File.Exists(doc), doc);
            string text = File.ReadAllText(doc);
            StringAssert.Contains(text, "## Wrong");
            StringAssert.Contains(text, "## Right");
            StringAssert.Contains(text, d.MessageFormat.ToString(), $"{d.Id}.md quotes the message format");
            StringAssert.Contains(text, "| Severity | " + d.DefaultSeverity + " |");
            StringAssert.Contains(unshipped, $"{d.Id} | {d.Category} | {d.DefaultSeverity} |");
        }
    }
}
