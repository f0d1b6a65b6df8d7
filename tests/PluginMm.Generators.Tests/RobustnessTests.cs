using Microsoft.CodeAnalysis;
using static PluginMm.Generators.Tests.TestHarness;

namespace PluginMm.Generators.Tests;

/// <summary>Malformed and half-typed declarations: no exception from the generator or the analyzer, no CS8785, no error in generated code.</summary>
[TestClass]
public sealed class RobustnessTests
{
    private const string Hook = "public static bool CanUserfault(in VmaView vma, UffdModes modes) => true;";

    [TestMethod]
    [DataRow("[MemoryType] public static partial class A { }", DisplayName = "no arguments")]
    [DataRow("[MemoryType(42)] public static partial class A { }", DisplayName = "int name")]
    [DataRow("[MemoryType(\"a\", \"b\")] public static partial class A { }", DisplayName = "two arguments")]
    [DataRow("[MemoryType(\"a\", Backing = \"PageCache\")] public static partial class A { }", DisplayName = "string backing")]
    [DataRow("[MemoryType(\"a\", Modes = Missing)] public static partial class A { }", DisplayName = "unresolved mode")]
    [DataRow("[MemoryType(\"a\", Nope = 1)] public static partial class A { }", DisplayName = "unknown named argument")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A { " + Hook + " } [MemoryType(\"b\")] public static partial class A { }", DisplayName = "attribute on two parts")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb), MemoryType(\"b\")] public static partial class A { " + Hook + " }", DisplayName = "attribute twice")]
    [DataRow("[MemoryType(", DisplayName = "half-typed attribute")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A { public static bool CanUserfault(in VmaView vma, UffdMod", DisplayName = "half-typed hook")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A { public static bool CanUserfault(in Nope vma, UffdModes modes) => true; }", DisplayName = "unresolved parameter type")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A { public static Nope CanUserfault(in VmaView vma, UffdModes modes) => default; }", DisplayName = "unresolved return type")]
    [DataRow("[MemoryType(\"a\")] public partial struct S { }", DisplayName = "on a struct")]
    [DataRow("[MemoryType(\"a\")] public partial interface I { }", DisplayName = "on an interface")]
    [DataRow("[MemoryType(\"a\")] public static partial class A { public static partial bool CanUserfault(in VmaView vma, UffdModes modes); }", DisplayName = "partial hook without implementation")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A { " + Hook + " public static void Fault() { } public static int GetFolioNoAlloc; }", DisplayName = "hook-named members of all kinds")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A { " + Hook + " public static int HasFault = 1; }", DisplayName = "clash with generated constant")]
    [DataRow("[MemoryType(\"\\u0000\\n\\\"quoted\\\"\", Backing = Backing.HugeTlb)] public static partial class A { " + Hook + " }", DisplayName = "control characters in name")]
    [DataRow("[MemoryType(\"quo\\\"te\\\\\", Backing = Backing.HugeTlb)] public static partial class A { " + Hook + " }", DisplayName = "quote and backslash in name")]
    [DataRow("[MemoryType(\"a\", Backing = (Backing)(-1), Modes = (UffdModes)ulong.MaxValue)] public static partial class A { " + Hook + " }", DisplayName = "extreme enum values")]
    [DataRow("public static partial class G<T> { [MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A { " + Hook + " } }", DisplayName = "nested in generic")]
    [DataRow("class X { void M() { [MemoryType(\"a\")] static void Local() { } } }", DisplayName = "on a local function")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A { " + Hook + " } public static partial class A { }", DisplayName = "partial parts, attribute on one")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static class A { " + Hook + " } public static class A { }", DisplayName = "duplicate non-partial declarations")]
    [DataRow("[MemoryType(\"a\", Backing = Backing.HugeTlb)] public static partial class A : Nope { " + Hook + " }", DisplayName = "unresolved base")]
    [DataRow("[MemoryType(Name)] public static partial class A { const string Name = \"a\"; " + Hook + " }", DisplayName = "constant name")]
    public void MalformedInputNeverThrows(string declaration)
    {
        var run = Run(Usings + "namespace Sample;\n" + declaration);
        Assert.IsNull(run.Single.Exception, run.Single.Exception?.ToString());
        Assert.IsFalse(run.GeneratorDiagnostics.Any(d => d.Id == "CS8785"), Describe(run.GeneratorDiagnostics));

        var exceptions = new List<Exception>();
        Analyze(run.Output, exceptions);
        Assert.IsEmpty(exceptions, string.Join(Environment.NewLine, exceptions));

        var generatedTrees = run.Sources.Select(s => s.SyntaxTree).ToHashSet();
        var inGenerated = run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error && generatedTrees.Contains(d.Location.SourceTree!)).ToList();
        Assert.IsEmpty(inGenerated, "generated code adds no errors of its own: " + Describe(inGenerated));
    }
}
