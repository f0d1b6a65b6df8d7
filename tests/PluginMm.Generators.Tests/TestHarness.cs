using System.Collections.Immutable;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using PluginMm.Generators;
using PluginMm.Generators.Diagnostics;

namespace PluginMm.Generators.Tests;

/// <summary>The result of running the generator (and optionally the analyzer) over some sources.</summary>
internal sealed record GeneratorRun(
    GeneratorDriver Driver,
    Compilation Input,
    Compilation Output,
    GeneratorDriverRunResult Result,
    ImmutableArray<Diagnostic> GeneratorDiagnostics)
{
    public GeneratorRunResult Single => Result.Results.Single();

    public IEnumerable<GeneratedSourceResult> Sources => Single.GeneratedSources;

    public string Source(string hintNameEnd) =>
        Sources.Single(s => TestHarness.Readable(s.HintName).EndsWith(hintNameEnd, StringComparison.Ordinal)).SourceText.ToString();

    /// <summary>Errors and warnings of the output compilation (user code + generated code).</summary>
    public ImmutableArray<Diagnostic> CompilerDiagnostics =>
        Output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToImmutableArray();
}

internal static class TestHarness
{
    public const string Usings = "using PluginMm;\n";

    /// <summary>A hint name without its hash segment (<c>Sample.Shmem.0123456789abcdef.PluginMm.g.cs</c> → <c>Sample.Shmem.PluginMm.g.cs</c>).</summary>
    public static string Readable(string hintName) =>
        System.Text.RegularExpressions.Regex.Replace(hintName, @"\.[0-9a-f]{16}(?=\.)", string.Empty);

    private static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(() =>
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var references = tpa
            .Where(p => Path.GetFileName(p) is { } f && (f.StartsWith("System.", StringComparison.Ordinal) || f is "netstandard.dll" or "mscorlib.dll"))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToList();
        references.Add(MetadataReference.CreateFromFile(typeof(MemoryTypeAttribute).Assembly.Location));
        return references.ToImmutableArray();
    });

    public static ImmutableArray<MetadataReference> References => s_references.Value;

    public static CSharpParseOptions ParseOptions { get; } = new(LanguageVersion.Latest);

    public static CSharpCompilationOptions Options(bool allowUnsafe = true) =>
        new(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: allowUnsafe);

    public static CSharpCompilation Compile(string[] sources, bool allowUnsafe = true, string assemblyName = "Sample.Backends") =>
        CSharpCompilation.Create(
            assemblyName,
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Source{i}.cs")),
            References,
            Options(allowUnsafe));

    public static GeneratorDriver CreateDriver(IDictionary<string, string>? globalOptions = null) =>
        CSharpGeneratorDriver.Create(
            new[] { new MemoryTypeGenerator().AsSourceGenerator() },
            parseOptions: ParseOptions,
            optionsProvider: new TestOptionsProvider(globalOptions ?? new Dictionary<string, string>()),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorRun Run(Compilation input, GeneratorDriver? driver = null)
    {
        driver ??= CreateDriver();
        driver = driver.RunGeneratorsAndUpdateCompilation(input, out var output, out var diagnostics);
        return new GeneratorRun(driver, input, output, driver.GetRunResult(), diagnostics);
    }

    public static GeneratorRun Run(params string[] sources) => Run(Compile(sources));

    /// <summary>Runs the analyzer on <paramref name="compilation"/> (normally the generator's output, as in a build).</summary>
    public static ImmutableArray<Diagnostic> Analyze(Compilation compilation, List<Exception>? analyzerExceptions = null)
    {
        var exceptions = analyzerExceptions ?? new List<Exception>();
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty),
            onAnalyzerException: (e, _, _) => { lock (exceptions) { exceptions.Add(e); } },
            concurrentAnalysis: false,
            logAnalyzerExecutionTime: false,
            reportSuppressedDiagnostics: false);
        var withAnalyzers = compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new MemoryTypeAnalyzer()), options);
        var diagnostics = withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        if (analyzerExceptions is null && exceptions.Count > 0)
        {
            throw new AssertFailedException("The analyzer threw: " + exceptions[0]);
        }

        return diagnostics.OrderBy(d => d.Location.SourceSpan.Start).ThenBy(d => d.Id, StringComparer.Ordinal).ToImmutableArray();
    }

    /// <summary>Generator, then analyzer on its output: the PMM diagnostics a build would show.</summary>
    public static ImmutableArray<Diagnostic> Pmm(params string[] sources) => Analyze(Run(sources).Output);

    /// <summary>The text the diagnostic's location covers.</summary>
    public static string LocatedText(Diagnostic diagnostic) =>
        diagnostic.Location.SourceTree!.GetText().ToString(diagnostic.Location.SourceSpan);

    public static int Line(Diagnostic diagnostic) => diagnostic.Location.GetLineSpan().StartLinePosition.Line + 1;

    public static string Describe(IEnumerable<Diagnostic> diagnostics) =>
        string.Join(Environment.NewLine, diagnostics.Select(d => d.ToString()));

    /// <summary>The diagnostics' help page for <paramref name="id"/>, from the build's PluginMmRepositoryUrl property.</summary>
    public static string ExpectedHelpLink(string id) =>
        typeof(TestHarness).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "PluginMmRepositoryUrl").Value + $"/blob/main/docs/diagnostics/{id}.md";

    public static string RepositoryRoot
    {
        get
        {
            var fromBuild = typeof(TestHarness).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "RepositoryRoot")?.Value;
            if (!string.IsNullOrEmpty(fromBuild) && Directory.Exists(Path.Combine(fromBuild, "docs")))
            {
                return fromBuild;
            }

            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "PluginMm.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("Repository root not found");
        }
    }

    private sealed class TestOptionsProvider(IDictionary<string, string> global) : AnalyzerConfigOptionsProvider
    {
        public override AnalyzerConfigOptions GlobalOptions { get; } = new DictionaryOptions(global);

        public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => DictionaryOptions.Empty;

        public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) => DictionaryOptions.Empty;
    }

    private sealed class DictionaryOptions(IDictionary<string, string> values) : AnalyzerConfigOptions
    {
        public static readonly DictionaryOptions Empty = new(new Dictionary<string, string>());

        public override bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value) =>
            values.TryGetValue(key, out value);
    }
}

/// <summary>Sample memory types shared by the tests.</summary>
internal static class Samples
{
    /// <summary>A complete page-cache type (every hook) and a minimal anonymous type: valid, no diagnostics.</summary>
    public const string Valid = TestHarness.Usings + """
        namespace Sample;

        [MemoryType("shmem", Backing = Backing.PageCache, Modes = UffdModes.Missing | UffdModes.Wp | UffdModes.Minor)]
        public static partial class Shmem
        {
            public static int Calls;

            public static bool CanUserfault(in VmaView vma, UffdModes modes) { Calls++; return modes != UffdModes.None; }

            public static Folio? GetFolioNoAlloc(Inode inode, long pgoff) => inode.Cache.Get(pgoff);

            public static Folio? AllocFolio(in VmaView vma, ulong address) => vma.Allocator.Alloc();

            public static Errno FilemapAdd(Folio folio, in VmaView vma, ulong address) => vma.File!.Cache.Add(folio, vma.PageIndex(address));

            internal static void FilemapRemove(Folio folio, in VmaView vma) => vma.File!.Cache.Remove(folio);

            public static VmFaultResult Fault(ref VmFault vmf) => VmFaultResult.SigBus;
        }

        public partial class Outer
        {
            [MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing | UffdModes.Wp)]
            internal partial class Anon
            {
                public static bool CanUserfault(in VmaView vma, UffdModes modes) => (modes & UffdModes.Minor) == 0;

                public static Folio? AllocFolio(in VmaView vma, ulong address) => vma.Allocator.Alloc();
            }
        }
        """;

    /// <summary>Wraps hook members in a memory type declaration.</summary>
    public static string Type(string attributeArgs, string members, string name = "Backend", string modifiers = "public static partial") =>
        TestHarness.Usings + $$"""
        namespace Sample;

        [MemoryType({{attributeArgs}})]
        {{modifiers}} class {{name}}
        {
        {{members}}
        }
        """;

    public const string CanUserfault = "    public static bool CanUserfault(in VmaView vma, UffdModes modes) => true;";
    public const string GetFolioNoAlloc = "    public static Folio? GetFolioNoAlloc(Inode inode, long pgoff) => inode.Cache.Get(pgoff);";
    public const string AllocFolio = "    public static Folio? AllocFolio(in VmaView vma, ulong address) => vma.Allocator.Alloc();";
    public const string FilemapAdd = "    public static Errno FilemapAdd(Folio folio, in VmaView vma, ulong address) => 0;";
    public const string FilemapRemove = "    public static void FilemapRemove(Folio folio, in VmaView vma) { }";
    public const string Fault = "    public static VmFaultResult Fault(ref VmFault vmf) => VmFaultResult.SigBus;";

    public static string Hooks(params string[] hooks) => string.Join("\n", hooks);
}
