using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using PluginMm.Generators.Model;
using static PluginMm.Generators.Tests.Samples;
using static PluginMm.Generators.Tests.TestHarness;

namespace PluginMm.Generators.Tests;

/// <summary>Incremental caching: the generator re-emits only when a memory type's table would change.</summary>
[TestClass]
public sealed class IncrementalTests
{
    private const string SourceOutput = "SourceOutput";

    private static string Shmem(string canUserfaultBody = "true", bool withAllocFolio = false) => Type(
        "\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor",
        Hooks(
            $"    public static bool CanUserfault(in VmaView vma, UffdModes modes) => {canUserfaultBody};",
            GetFolioNoAlloc,
            Fault,
            withAllocFolio ? AllocFolio : string.Empty),
        name: "Shmem");

    private static readonly string Anon = Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing", Hooks(CanUserfault, AllocFolio), name: "Anon");

    private static (GeneratorRunResult First, GeneratorRunResult Second) RunTwice(Compilation first, Func<Compilation, Compilation> edit)
    {
        var driver = CreateDriver().RunGenerators(first);
        var firstResult = driver.GetRunResult().Results.Single();
        driver = driver.RunGenerators(edit(first));
        return (firstResult, driver.GetRunResult().Results.Single());
    }

    private static Compilation ReplaceTree(Compilation compilation, int index, string newSource)
    {
        var old = compilation.SyntaxTrees.ElementAt(index);
        return compilation.ReplaceSyntaxTree(old, CSharpSyntaxTree.ParseText(newSource, TestHarness.ParseOptions, path: old.FilePath));
    }

    private static IncrementalStepRunReason[] Reasons(GeneratorRunResult result, string step) =>
        result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    private static IncrementalStepRunReason[] OutputReasons(GeneratorRunResult result) =>
        result.TrackedOutputSteps[SourceOutput].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    private static string Show(GeneratorRunResult result) => string.Join(
        "; ",
        result.TrackedSteps.Concat(result.TrackedOutputSteps).Select(kv => kv.Key + "=" + string.Join(",", kv.Value.SelectMany(s => s.Outputs).Select(o => o.Reason))));

    private static void AssertNothingReEmitted(GeneratorRunResult result)
    {
        var reasons = OutputReasons(result);
        Assert.IsNotEmpty(reasons);
        Assert.IsTrue(reasons.All(r => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged), "re-emitted: " + Show(result));
    }

    [TestMethod]
    public void SameInputTwice_EverythingCached()
    {
        var (_, second) = RunTwice(Compile(new[] { Shmem(), Anon }), c => c);
        foreach (var step in new[] { StepNames.Parse, StepNames.Specs, StepNames.Registry, StepNames.RegistryNamespace, StepNames.UnsafeAllowed })
        {
            Assert.IsTrue(Reasons(second, step).All(r => r == IncrementalStepRunReason.Cached), $"{step}: {Show(second)}");
        }

        Assert.IsTrue(OutputReasons(second).All(r => r == IncrementalStepRunReason.Cached), Show(second));
    }

    [TestMethod]
    public void UnrelatedEdit_SpecsUnchangedAndNothingReEmitted()
    {
        var (_, second) = RunTwice(
            Compile(new[] { Shmem(), Anon, "namespace Other; public static class Helper { public static int X => 1; }" }),
            c => ReplaceTree(c, 2, "namespace Other; public static class Helper { public static int X => 2; public static int Y => 3; }"));
        Assert.IsTrue(Reasons(second, StepNames.Specs).All(r => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged), Show(second));
        Assert.IsTrue(Reasons(second, StepNames.Registry).All(r => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged), Show(second));
        AssertNothingReEmitted(second);
    }

    [TestMethod]
    public void EditInsideAHookBody_ReParsedButNotReEmitted()
    {
        var (_, second) = RunTwice(Compile(new[] { Shmem(), Anon }), c => ReplaceTree(c, 0, Shmem(canUserfaultBody: "modes != UffdModes.None")));
        CollectionAssert.Contains(Reasons(second, StepNames.Parse), IncrementalStepRunReason.Unchanged, "the edited type is re-read and found equal: " + Show(second));
        Assert.IsFalse(Reasons(second, StepNames.Parse).Contains(IncrementalStepRunReason.Modified), Show(second));
        AssertNothingReEmitted(second);
    }

    [TestMethod]
    public void AddingAHook_ModifiesThatTypesTableOnly()
    {
        var (_, second) = RunTwice(Compile(new[] { Shmem(), Anon }), c => ReplaceTree(c, 0, Shmem(withAllocFolio: true)));
        CollectionAssert.Contains(Reasons(second, StepNames.Parse), IncrementalStepRunReason.Modified, Show(second));
        var outputs = OutputReasons(second);
        Assert.AreEqual(1, outputs.Count(r => r == IncrementalStepRunReason.Modified), "only Shmem's file is re-emitted: " + Show(second));
        Assert.IsTrue(Reasons(second, StepNames.Registry).All(r => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged),
            "the registry does not depend on hooks: " + Show(second));
        StringAssert.Contains(
            second.GeneratedSources.Single(s => Readable(s.HintName) == "Sample.Shmem.PluginMm.g.cs").SourceText.ToString(),
            "allocFolio: &AllocFolio,");
    }

    [TestMethod]
    public void AddingAMemoryType_OldTablesNotReEmitted_RegistryModified()
    {
        var (_, second) = RunTwice(Compile(new[] { Shmem() }), c => c.AddSyntaxTrees(CSharpSyntaxTree.ParseText(Anon, TestHarness.ParseOptions, path: "Source1.cs")));
        var outputs = OutputReasons(second);
        Assert.AreEqual(1, outputs.Count(r => r == IncrementalStepRunReason.New), "Anon's table is new: " + Show(second));
        CollectionAssert.Contains(Reasons(second, StepNames.Registry), IncrementalStepRunReason.Modified, Show(second));
        Assert.IsFalse(Reasons(second, StepNames.Specs).Contains(IncrementalStepRunReason.Modified), Show(second));
    }

    [TestMethod]
    public void SpecModelHoldsNoRoslynTypes()
    {
        var result = Run(Valid).Single;
        var specs = result.TrackedSteps[StepNames.Specs].SelectMany(s => s.Outputs).Select(o => o.Value).ToList();
        var registry = result.TrackedSteps[StepNames.Registry].SelectMany(s => s.Outputs).Select(o => o.Value).ToList();
        Assert.HasCount(2, specs);
        Assert.HasCount(1, registry);

        // Declared shape: no member of any model type (recursively) is a Roslyn type, an object, or a reference-equality collection.
        var visited = new HashSet<Type>();
        foreach (var type in new[] { typeof(MemoryTypeSpec), typeof(RegistrySpec), typeof(RegistryEntry) })
        {
            AssertNoRoslynTypes(type, visited, type.Name);
        }

        // Actual values: walk the object graph of what the pipeline cached.
        foreach (var value in specs.Concat(registry))
        {
            AssertNoRoslynValues(value, new HashSet<object>(ReferenceEqualityComparer.Instance), value.GetType().Name);
        }
    }

    [TestMethod]
    public void SpecsHaveValueEquality()
    {
        var first = Run(Valid).Single.TrackedSteps[StepNames.Specs].SelectMany(s => s.Outputs).Select(o => o.Value).ToList();
        var second = Run(Valid).Single.TrackedSteps[StepNames.Specs].SelectMany(s => s.Outputs).Select(o => o.Value).ToList();
        CollectionAssert.AreEqual(first, second);
        Assert.AreNotSame(first[0], second[0]);
        Assert.AreEqual(first[0].GetHashCode(), second[0].GetHashCode());
    }

    private static bool IsRoslyn(Type type) =>
        type.Assembly.GetName().Name!.StartsWith("Microsoft.CodeAnalysis", StringComparison.Ordinal);

    private static void AssertNoRoslynTypes(Type type, HashSet<Type> visited, string path)
    {
        if (!visited.Add(type) || type.IsPrimitive || type.IsEnum || type == typeof(string))
        {
            return;
        }

        Assert.IsFalse(IsRoslyn(type), $"{path} is a Roslyn type ({type.FullName})");
        Assert.AreNotEqual(typeof(object), type, $"{path} is typed object");
        Assert.IsFalse(type.IsArray, $"{path} is an array (reference equality)");
        Assert.IsFalse(type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ImmutableArray<>), $"{path} is an ImmutableArray (reference equality)");
        Assert.IsFalse(type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>), $"{path} is a List (reference equality)");
        if (type.IsGenericType)
        {
            foreach (var argument in type.GetGenericArguments())
            {
                AssertNoRoslynTypes(argument, visited, path + "<" + argument.Name + ">");
            }
        }

        if (type.Namespace?.StartsWith("PluginMm.Generators", StringComparison.Ordinal) == true && !type.IsGenericType)
        {
            Assert.IsTrue(typeof(IEquatable<>).MakeGenericType(type).IsAssignableFrom(type), $"{path} ({type.Name}) is not IEquatable");
            foreach (var property in type.GetProperties(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            {
                if (property.GetIndexParameters().Length == 0 && property.Name != "EqualityContract")
                {
                    AssertNoRoslynTypes(property.PropertyType, visited, path + "." + property.Name);
                }
            }
        }
    }

    private static void AssertNoRoslynValues(object? value, HashSet<object> seen, string path)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum || !seen.Add(value))
        {
            return;
        }

        Assert.IsFalse(IsRoslyn(value.GetType()), $"{path} holds a {value.GetType().FullName}");
        if (value is IEnumerable items)
        {
            int i = 0;
            foreach (var item in items)
            {
                AssertNoRoslynValues(item, seen, $"{path}[{i++}]");
            }

            return;
        }

        foreach (var field in value.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            AssertNoRoslynValues(field.GetValue(value), seen, path + "." + field.Name);
        }
    }
}
