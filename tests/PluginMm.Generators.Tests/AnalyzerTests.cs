using Microsoft.CodeAnalysis;
using PluginMm.Generators.Diagnostics;
using static PluginMm.Generators.Tests.Samples;
using static PluginMm.Generators.Tests.TestHarness;

namespace PluginMm.Generators.Tests;

/// <summary>Every PMM diagnostic: exact ID, location (the identifier), message (and so its arguments), and its absence on valid code.</summary>
[TestClass]
public sealed class AnalyzerTests
{
    private static Diagnostic Single(IEnumerable<Diagnostic> diagnostics, string id)
    {
        var matching = diagnostics.Where(d => d.Id == id).ToList();
        Assert.HasCount(1, matching, $"expected exactly one {id}, got:{Environment.NewLine}{Describe(diagnostics)}");
        return matching[0];
    }

    private static void AssertOnly(IEnumerable<Diagnostic> diagnostics, params string[] ids) =>
        CollectionAssert.AreEquivalent(ids, diagnostics.Select(d => d.Id).ToArray(), Describe(diagnostics));

    [TestMethod]
    public void ValidCodeHasNoDiagnosticsAndCompiles()
    {
        var run = Run(Valid);
        Assert.IsEmpty(Analyze(run.Output), Describe(Analyze(run.Output)));
        Assert.IsEmpty(run.CompilerDiagnostics, Describe(run.CompilerDiagnostics));
    }

    [TestMethod(DisplayName = "PMM0001 seed-000 rule: page cache with MINOR and no GetFolioNoAlloc")]
    public void Pmm0001_Seed000_PageCacheMinorWithoutGetFolioNoAlloc()
    {
        var diagnostics = Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(CanUserfault, Fault), name: "Shmem"));
        var d = Single(diagnostics, "PMM0001");
        AssertOnly(diagnostics, "PMM0001");
        Assert.AreEqual("Shmem", LocatedText(d));
        Assert.AreEqual(DiagnosticSeverity.Error, d.Severity);
        Assert.AreEqual(
            "Memory type 'Sample.Shmem' is missing the required hook 'GetFolioNoAlloc': a page-cache memory type with MISSING or MINOR needs it: "
            + "the userfault pre-check in __do_fault (__do_userfault) looks the folio up with get_folio_noalloc on every armed fault, and UFFDIO_CONTINUE uses it; "
            + "the kernel refuses UFFDIO_REGISTER with EINVAL without it",
            d.GetMessage());
        Assert.AreEqual("GetFolioNoAlloc", d.Properties[DiagnosticDescriptors.HookProperty]);
        Assert.AreEqual(ExpectedHelpLink("PMM0001"), d.Descriptor.HelpLinkUri);
    }

    [TestMethod]
    public void Pmm0001_PageCacheMissing_NamesEveryMissingHook()
    {
        var diagnostics = Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Missing", Hooks(Fault), name: "Shmem"));
        AssertOnly(diagnostics, "PMM0001", "PMM0001", "PMM0001", "PMM0001", "PMM0001");
        CollectionAssert.AreEquivalent(
            new[] { "CanUserfault", "GetFolioNoAlloc", "AllocFolio", "FilemapAdd", "FilemapRemove" },
            diagnostics.Select(d => d.Properties[DiagnosticDescriptors.HookProperty]).ToArray());
        Assert.IsTrue(diagnostics.All(d => LocatedText(d) == "Shmem"));
        StringAssert.Contains(diagnostics.Single(d => d.Properties[DiagnosticDescriptors.HookProperty] == "AllocFolio").GetMessage(),
            "Memory type 'Sample.Shmem' is missing the required hook 'AllocFolio': MISSING needs it: UFFDIO_COPY and UFFDIO_ZEROPAGE allocate");
    }

    [TestMethod]
    public void Pmm0001_AnonymousMissing_NeedsAllocFolio()
    {
        var d = Single(Pmm(Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing", Hooks(CanUserfault))), "PMM0001");
        Assert.AreEqual("AllocFolio", d.Properties[DiagnosticDescriptors.HookProperty]);
    }

    [TestMethod]
    public void Pmm0001_PageCacheWpOnly_NeedsFault()
    {
        var diagnostics = Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Wp", Hooks(CanUserfault)));
        var d = Single(diagnostics, "PMM0001");
        AssertOnly(diagnostics, "PMM0001");
        Assert.AreEqual("Fault", d.Properties[DiagnosticDescriptors.HookProperty]);
    }

    [TestMethod]
    public void Pmm0001_Absent_HugeTlbMissingNeedsOnlyCanUserfault()
    {
        Assert.IsEmpty(Pmm(Type("\"hugetlb\", Backing = Backing.HugeTlb, Modes = UffdModes.Missing | UffdModes.Wp | UffdModes.Minor", Hooks(CanUserfault))));
    }

    [TestMethod]
    public void Pmm0002_WrongRefKind_ShowsExpectedSignature()
    {
        var diagnostics = Pmm(Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing",
            Hooks("    public static bool CanUserfault(VmaView vma, UffdModes modes) => true;", AllocFolio)));
        var d = Single(diagnostics, "PMM0002");
        AssertOnly(diagnostics, "PMM0002");
        Assert.AreEqual("CanUserfault", LocatedText(d));
        Assert.AreEqual(7, Line(d));
        Assert.AreEqual(
            "Hook 'CanUserfault' of memory type 'Sample.Backend' has the wrong signature: parameter 1 'vma' is 'global::PluginMm.VmaView' instead of "
            + "'in global::PluginMm.VmaView'; expected 'public static bool CanUserfault(in global::PluginMm.VmaView vma, global::PluginMm.UffdModes modes)'",
            d.GetMessage());
    }

    [TestMethod]
    [DataRow("    public bool CanUserfault(in VmaView vma, UffdModes modes) => true;", "it is not static", DisplayName = "instance method")]
    [DataRow("    private static bool CanUserfault(in VmaView vma, UffdModes modes) => true;", "it is private; hooks must be public or internal", DisplayName = "private")]
    [DataRow("    public static int CanUserfault(in VmaView vma, UffdModes modes) => 1;", "it returns 'int' instead of 'bool'", DisplayName = "return type")]
    [DataRow("    public static bool CanUserfault(in VmaView vma) => true;", "it takes 1 parameter(s) instead of 2", DisplayName = "parameter count")]
    [DataRow("    public static bool CanUserfault<T>(in VmaView vma, UffdModes modes) => true;", "it is generic", DisplayName = "generic")]
    [DataRow("    public static bool CanUserfault => true;", "it is a property, not a method", DisplayName = "property")]
    [DataRow("    public static bool CanUserfault(in VmaView vma, ulong modes) => true;", "parameter 2 'modes' is 'ulong' instead of 'global::PluginMm.UffdModes'", DisplayName = "parameter type")]
    public void Pmm0002_Reasons(string hook, string reason)
    {
        var diagnostics = Pmm(Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing", Hooks(hook, AllocFolio)));
        var d = Single(diagnostics, "PMM0002");
        Assert.AreEqual("CanUserfault", LocatedText(d));
        StringAssert.Contains(d.GetMessage(), $"has the wrong signature: {reason}; expected 'public static bool CanUserfault(");
        Assert.IsFalse(diagnostics.Any(x => x.Id == "PMM0001"), "a wrong hook is reported as PMM0002, not also as missing");
    }

    [TestMethod]
    [DataRow("    public static Errno Mmap(VmaView vma) => 0;", "parameter 1 'vma' is 'global::PluginMm.VmaView' instead of 'in global::PluginMm.VmaView'", DisplayName = "Mmap by value")]
    [DataRow("    public static int Mmap(in VmaView vma) => 0;", "it returns 'int' instead of 'global::PluginMm.Errno'", DisplayName = "Mmap return type")]
    public void Pmm0002_OptionalMmapHook(string hook, string reason)
    {
        var diagnostics = Pmm(Type("\"file\", Backing = Backing.PageCache, Modes = UffdModes.Wp", Hooks(CanUserfault, Fault, hook)));
        var d = Single(diagnostics, "PMM0002");
        AssertOnly(diagnostics, "PMM0002");
        Assert.AreEqual("Mmap", LocatedText(d));
        StringAssert.Contains(d.GetMessage(), $"has the wrong signature: {reason}; expected 'public static global::PluginMm.Errno Mmap(in global::PluginMm.VmaView vma)'");
    }

    [TestMethod]
    public void OptionalMmapHook_NotRequired_AndUnreachableOnAnonymous()
    {
        Assert.IsEmpty(Pmm(Type("\"file\", Backing = Backing.PageCache, Modes = UffdModes.Wp", Hooks(CanUserfault, Fault))), "Mmap is optional");
        Assert.IsEmpty(Pmm(Type("\"file\", Backing = Backing.PageCache, Modes = UffdModes.Wp, SharedAnonymous = true",
            Hooks(CanUserfault, Fault, "    public static Errno Mmap(in VmaView vma) => Errno.ENODEV;"))));
        var diagnostics = Pmm(Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing",
            Hooks(CanUserfault, AllocFolio, "    public static Errno Mmap(in VmaView vma) => 0;")));
        var d = Single(diagnostics, "PMM0010");
        Assert.AreEqual("Mmap", LocatedText(d));
        StringAssert.Contains(d.GetMessage(), "no file_operations->mmap");
    }

    [TestMethod]
    public void Pmm0002_Absent_WhenAnOverloadMatchesAndForInternalAndNullabilityVariants()
    {
        Assert.IsEmpty(Pmm(Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing", Hooks(
            CanUserfault,
            "    public static bool CanUserfault(string unrelatedOverload) => false;",
            "    internal static Folio AllocFolio(in VmaView vma, ulong address) => vma.Allocator.Alloc()!;"))));
    }

    [TestMethod]
    public void Pmm0003_MinorOnAnonymous()
    {
        var diagnostics = Pmm(Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing | UffdModes.Minor", Hooks(CanUserfault, AllocFolio), name: "Anon"));
        var d = Single(diagnostics, "PMM0003");
        AssertOnly(diagnostics, "PMM0003");
        Assert.AreEqual("Anon", LocatedText(d));
        Assert.AreEqual(
            "Memory type 'Sample.Anon' declares MINOR on Anonymous backing, which the kernel cannot support: anonymous memory has no page cache, "
            + "so a page can never be present but unmapped; vma_can_userfault rejects MINOR on anonymous VMAs (UFFDIO_REGISTER fails with EINVAL)",
            d.GetMessage());
    }

    [TestMethod]
    public void Pmm0003_Absent_MinorOnHugeTlbAndPageCache()
    {
        Assert.IsEmpty(Pmm(Type("\"hugetlb\", Backing = Backing.HugeTlb, Modes = UffdModes.Minor", Hooks(CanUserfault))));
        Assert.IsEmpty(Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(CanUserfault, GetFolioNoAlloc, Fault))));
    }

    [TestMethod]
    public void Pmm0004_NotPartial()
    {
        var run = Run(Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing", Hooks(CanUserfault, AllocFolio), name: "Anon", modifiers: "public static"));
        var diagnostics = Analyze(run.Output);
        var d = Single(diagnostics, "PMM0004");
        AssertOnly(diagnostics, "PMM0004");
        Assert.AreEqual("Anon", LocatedText(d));
        Assert.AreEqual(
            "Memory type 'Sample.Anon' cannot carry the generated ops table: it is not partial; add the 'partial' modifier so the generator can add Ops and the Has<Hook> constants",
            d.GetMessage());
        Assert.AreEqual("NotPartial", d.Properties[DiagnosticDescriptors.ProblemProperty]);
        Assert.IsFalse(run.Sources.Any(s => s.HintName.Contains("Anon", StringComparison.Ordinal)), "no table for a type that cannot carry one");
        Assert.IsEmpty(run.CompilerDiagnostics, "the generator adds no compiler error of its own");
    }

    [TestMethod]
    [DataRow("""
        public class Outer
        {
            [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
            public static partial class Anon { HOOKS }
        }
        """, "its containing type 'Sample.Outer' is not partial", "ContainingNotPartial", DisplayName = "containing type not partial")]
    [DataRow("""
        [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
        public partial class Anon<T> { HOOKS }
        """, "it is generic; its table of function pointers needs one closed type", "Generic", DisplayName = "generic")]
    [DataRow("""
        public partial class Outer<T>
        {
            [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
            public static partial class Anon { HOOKS }
        }
        """, "its containing type 'Sample.Outer<T>' is generic", "ContainingGeneric", DisplayName = "containing type generic")]
    [DataRow("""
        public partial class Outer
        {
            [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
            private static partial class Anon { HOOKS }
        }
        """, "'Sample.Outer.Anon' is private, so the assembly's MemoryTypeRegistry cannot reach its table; make it internal or public", "Inaccessible", DisplayName = "private nested")]
    [DataRow("""
        [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
        file static partial class Anon { HOOKS }
        """, "it is a file-local type, which the assembly's MemoryTypeRegistry in another file cannot name", "FileLocal", DisplayName = "file-local")]
    [DataRow("""
        [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
        public static partial class Anon { HOOKS public static int Ops; }
        """, "it declares a member named 'Ops', which the generator emits; rename it", "MemberClash", DisplayName = "member clash")]
    public void Pmm0004_Reasons(string declaration, string reason, string problem)
    {
        string source = Usings + "namespace Sample;\n" + declaration.Replace("HOOKS", CanUserfault + "\n" + AllocFolio, StringComparison.Ordinal);
        var run = Run(source);
        var diagnostics = Analyze(run.Output);
        var d = Single(diagnostics, "PMM0004");
        Assert.AreEqual("Anon", LocatedText(d));
        Assert.AreEqual($"Memory type '{d.GetMessage().Split('\'')[1]}' cannot carry the generated ops table: {reason}", d.GetMessage());
        Assert.AreEqual(problem, d.Properties[DiagnosticDescriptors.ProblemProperty]);
        Assert.IsFalse(run.Sources.Any(s => s.HintName.Contains("Anon", StringComparison.Ordinal)));
        Assert.IsFalse(run.GeneratorDiagnostics.Any(x => x.Id == "CS8785"));
    }

    [TestMethod]
    public void Pmm0004_Absent_NestedInPartialRecordAndStruct()
    {
        string source = Usings + "namespace Sample;\n" + $$"""
            public partial record Outer
            {
                internal readonly partial struct Middle
                {
                    [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing)]
                    public sealed partial record Anon { {{CanUserfault}} {{AllocFolio}} }
                }
            }
            """;
        var run = Run(source);
        Assert.IsEmpty(Analyze(run.Output), Describe(Analyze(run.Output)));
        Assert.IsEmpty(run.CompilerDiagnostics, Describe(run.CompilerDiagnostics));
    }

    [TestMethod]
    public void Pmm0005_DuplicateNames_ReportedOnBoth()
    {
        var run = Run(
            Type("\"shmem\", Backing = Backing.HugeTlb, Modes = UffdModes.Missing", Hooks(CanUserfault), name: "First"),
            Type("\"shmem\", Backing = Backing.HugeTlb, Modes = UffdModes.Missing", Hooks(CanUserfault), name: "Second"));
        var diagnostics = Analyze(run.Output).Where(d => d.Id == "PMM0005").OrderBy(d => LocatedText(d), StringComparer.Ordinal).ToList();
        Assert.HasCount(2, diagnostics);
        Assert.AreEqual("First", LocatedText(diagnostics[0]));
        Assert.AreEqual("Memory type name 'shmem' of 'Sample.First' is also used by 'Sample.Second'; names must be unique in a compilation", diagnostics[0].GetMessage());
        Assert.AreEqual("Second", LocatedText(diagnostics[1]));
        Assert.AreEqual("Memory type name 'shmem' of 'Sample.Second' is also used by 'Sample.First'; names must be unique in a compilation", diagnostics[1].GetMessage());
        Assert.IsEmpty(run.CompilerDiagnostics, "the registry stays valid C# with duplicate names: " + Describe(run.CompilerDiagnostics));
    }

    [TestMethod]
    public void Pmm0005_Absent_NamesDifferOnlyInCase()
    {
        Assert.IsEmpty(Pmm(
            Type("\"shmem\", Backing = Backing.HugeTlb", Hooks(CanUserfault), name: "First"),
            Type("\"Shmem\", Backing = Backing.HugeTlb", Hooks(CanUserfault), name: "Second")));
    }

    [TestMethod]
    [DataRow("\"\"", "it is empty")]
    [DataRow("\"guest memfd\"", "it contains whitespace or control characters")]
    [DataRow("null", "it is null")]
    public void Pmm0006_InvalidName(string name, string reason)
    {
        var run = Run(Type(name + ", Backing = Backing.HugeTlb", Hooks(CanUserfault), name: "Gmem"));
        var d = Single(Analyze(run.Output), "PMM0006");
        Assert.AreEqual("Gmem", LocatedText(d));
        Assert.AreEqual($"Memory type 'Sample.Gmem' has an invalid name: {reason}", d.GetMessage());
        Assert.IsFalse(run.Sources.Any(), "no table for an unusable name");
    }

    [TestMethod]
    public void Pmm0007_UndefinedBackingAndModes()
    {
        var diagnostics = Pmm(Type("\"odd\", Backing = (Backing)7, Modes = (UffdModes)9", Hooks(CanUserfault), name: "Odd"));
        AssertOnly(diagnostics, "PMM0007", "PMM0007");
        Assert.IsTrue(diagnostics.All(d => LocatedText(d) == "Odd"));
        CollectionAssert.AreEquivalent(
            new[]
            {
                "Memory type 'Sample.Odd' declares Backing = (Backing)7, which is not defined: Backing must be Anonymous, PageCache or HugeTlb",
                "Memory type 'Sample.Odd' declares Modes = (UffdModes)9, which is not defined: Modes must be a combination of Missing (1), Wp (2) and Minor (4)",
            },
            diagnostics.Select(d => d.GetMessage()).ToArray());
    }

    [TestMethod]
    public void Pmm0008_UnsafeNotAllowed_GeneratorEmitsNothing()
    {
        var run = Run(Compile(new[] { Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing", Hooks(CanUserfault, AllocFolio), name: "Anon") }, allowUnsafe: false));
        var diagnostics = Analyze(run.Output);
        var d = Single(diagnostics, "PMM0008");
        AssertOnly(diagnostics, "PMM0008");
        Assert.AreEqual("Anon", LocatedText(d));
        Assert.AreEqual(
            "Memory type 'Sample.Anon' needs unsafe code: its generated table takes the hooks' addresses (&CanUserfault); set <AllowUnsafeBlocks>true</AllowUnsafeBlocks> in the project",
            d.GetMessage());
        Assert.IsFalse(run.Sources.Any());
        Assert.IsFalse(run.CompilerDiagnostics.Any(x => x.Id == "CS0227"), Describe(run.CompilerDiagnostics));
    }

    [TestMethod]
    public void Pmm0009_FilemapAddWithoutRemove()
    {
        var diagnostics = Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(CanUserfault, GetFolioNoAlloc, Fault, FilemapAdd), name: "Shmem"));
        var d = Single(diagnostics, "PMM0009");
        AssertOnly(diagnostics, "PMM0009");
        Assert.AreEqual("FilemapAdd", LocatedText(d));
        Assert.AreEqual(
            "Memory type 'Sample.Shmem' declares 'FilemapAdd' without 'FilemapRemove': the two are always used as a pair "
            + "(UFFDIO_COPY removes with filemap_remove what filemap_add inserted when the PTE cannot be installed)",
            d.GetMessage());
    }

    [TestMethod]
    public void Pmm0009_Absent_WhenPmm0001AlreadyNamesTheMissingHalf_OrBothPresent()
    {
        var missing = Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Missing", Hooks(CanUserfault, GetFolioNoAlloc, AllocFolio, Fault, FilemapRemove)));
        AssertOnly(missing, "PMM0001");
        Assert.AreEqual("FilemapAdd", missing[0].Properties[DiagnosticDescriptors.HookProperty]);
        Assert.IsEmpty(Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(CanUserfault, GetFolioNoAlloc, Fault, FilemapAdd, FilemapRemove))));
    }

    [TestMethod]
    public void Pmm0010_FaultOnAnonymousIsUnreachable()
    {
        var diagnostics = Pmm(Type("\"anon\", Backing = Backing.Anonymous, Modes = UffdModes.Missing", Hooks(CanUserfault, AllocFolio, Fault), name: "Anon"));
        var d = Single(diagnostics, "PMM0010");
        AssertOnly(diagnostics, "PMM0010");
        Assert.AreEqual(DiagnosticSeverity.Warning, d.Severity);
        Assert.AreEqual("Fault", LocatedText(d));
        Assert.AreEqual("Hook 'Fault' of memory type 'Sample.Anon' can never be called: anonymous VMAs have no vm_ops; their faults go to do_anonymous_page", d.GetMessage());
    }

    [TestMethod]
    public void Pmm0010_GetFolioNoAllocWithoutMissingOrMinor()
    {
        var d = Single(Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Wp", Hooks(CanUserfault, Fault, GetFolioNoAlloc))), "PMM0010");
        Assert.AreEqual("GetFolioNoAlloc", LocatedText(d));
    }

    [TestMethod]
    public void OneBadTypeDoesNotStopTheOthers()
    {
        var run = Run(
            Valid,
            Type("\"broken\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(CanUserfault), name: "Broken", modifiers: "public static"));
        Assert.IsTrue(run.Sources.Any(s => Readable(s.HintName) == "Sample.Shmem.PluginMm.g.cs"));
        Assert.IsTrue(run.Sources.Any(s => Readable(s.HintName) == "Sample.Outer.Anon.PluginMm.g.cs"));
        StringAssert.Contains(run.Source("MemoryTypeRegistry.PluginMm.g.cs"), "global::Sample.Shmem.Ops");
        Assert.IsFalse(run.Source("MemoryTypeRegistry.PluginMm.g.cs").Contains("Broken", StringComparison.Ordinal));
        AssertOnly(Analyze(run.Output), "PMM0001", "PMM0001", "PMM0004");
        Assert.IsEmpty(run.CompilerDiagnostics, Describe(run.CompilerDiagnostics));
    }

    [TestMethod]
    public void AMisspelledHook_GetsDidYouMeanInPmm0001_AndAWarningOfItsOwn()
    {
        var pmm = Pmm(Type("\"shmem\", Backing = Backing.PageCache, Modes = UffdModes.Minor", Hooks(
            CanUserfault,
            "    public static Folio? GetFolioNoalloc(Inode inode, long pgoff) => inode.Cache.Get(pgoff);",
            "    public static int Helper() => 0;",
            "    public static int Default() => 0;",
            Fault), name: "Shmem"));
        AssertOnly(pmm, "PMM0001", "PMM0016");
        var missing = pmm.Single(d => d.Id == "PMM0001");
        StringAssert.EndsWith(missing.GetMessage(), "; 'GetFolioNoalloc' is declared: did you mean 'GetFolioNoAlloc'?");
        Assert.AreEqual("GetFolioNoalloc", missing.Properties[DiagnosticDescriptors.SuggestionProperty]);
        var stray = pmm.Single(d => d.Id == "PMM0016");
        Assert.AreEqual(DiagnosticSeverity.Warning, stray.Severity);
        Assert.AreEqual("GetFolioNoalloc", LocatedText(stray));
        Assert.AreEqual("Method 'GetFolioNoalloc' of memory type 'Sample.Shmem' is not a hook and the table never calls it; did you mean 'GetFolioNoAlloc'?", stray.GetMessage());
    }

    [TestMethod]
    [DataRow("CanUserFault", "CanUserfault")]
    [DataRow("AlocFolio", "AllocFolio")]
    [DataRow("FilemapRmove", "FilemapRemove")]
    [DataRow("Falut", "Fault")]
    [DataRow("Default", null)]
    [DataRow("Faults2", null)]
    [DataRow("AllocFolios", "AllocFolio")]
    [DataRow("Alloc", null)]
    public void NearestHook(string name, string? hook) =>
        Assert.AreEqual(hook, Model.MemoryTypeReader.NearestHook(name)?.Name);
}
