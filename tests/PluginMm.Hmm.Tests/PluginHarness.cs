using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// A minimal in-process build for the HMM plugin kinds (in the manner of tests/PluginMm.Generators.Tests): compile a
/// driver source against Abstractions, run a generator, then its analyzer on the result; apply a code fix.
/// </summary>
internal static class PluginHarness
{
    private static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(() =>
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        return tpa.Where(p => Path.GetFileName(p) is { } n && (n.StartsWith("System.", StringComparison.Ordinal) || n is "netstandard.dll" or "mscorlib.dll"))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .Append(MetadataReference.CreateFromFile(typeof(MmuIntervalNotifierOpsAttribute).Assembly.Location))
            .ToImmutableArray();
    });

    public static ImmutableArray<MetadataReference> References => s_references.Value;

    public static CSharpCompilationOptions Options(bool allowUnsafe) =>
        new(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: allowUnsafe);

    public static CSharpCompilation Compile(string source, bool allowUnsafe = true) =>
        CSharpCompilation.Create("Sample.Driver",
            new[] { CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest), path: "Source0.cs") },
            References, Options(allowUnsafe));

    /// <summary>As a build: the generator, then the analyzer on the result.</summary>
    public static (Compilation Output, ImmutableArray<Diagnostic> Pmm, GeneratorDriverRunResult Run) Build(
        Compilation input, IIncrementalGenerator generator, DiagnosticAnalyzer analyzer)
    {
        var driver = CSharpGeneratorDriver.Create(generator).RunGeneratorsAndUpdateCompilation(input, out var output, out var generatorDiagnostics);
        Assert.IsEmpty(generatorDiagnostics, "the generator itself reports nothing");
        var pmm = output.WithAnalyzers(ImmutableArray.Create(analyzer)).GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        return (output, pmm, driver.GetRunResult());
    }

    public static ImmutableArray<Diagnostic> Errors(Compilation c) =>
        c.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToImmutableArray();

    /// <summary>A workspace document holding <paramref name="source"/>, for code fixes.</summary>
    public static Document Document(string source, out DocumentId documentId, out ProjectId projectId)
    {
        var workspace = new AdhocWorkspace();
        projectId = ProjectId.CreateNewId();
        var solution = workspace.CurrentSolution.AddProject(ProjectInfo.Create(
            projectId, VersionStamp.Create(), "Sample", "Sample.Driver", LanguageNames.CSharp,
            compilationOptions: Options(allowUnsafe: true), parseOptions: new CSharpParseOptions(LanguageVersion.Latest), metadataReferences: References));
        documentId = DocumentId.CreateNewId(projectId);
        solution = solution.AddDocument(documentId, "Source0.cs", SourceText.From(source), filePath: "Source0.cs");
        return solution.GetDocument(documentId)!;
    }

    /// <summary>The code actions <paramref name="provider"/> offers for <paramref name="diagnostic"/>.</summary>
    public static async Task<List<CodeAction>> Fixes(CodeFixProvider provider, Document document, Diagnostic diagnostic)
    {
        var actions = new List<CodeAction>();
        await provider.RegisterCodeFixesAsync(new CodeFixContext(document, diagnostic, (a, _) => actions.Add(a), CancellationToken.None));
        return actions;
    }

    /// <summary>The repository root (the directory holding PluginMm.sln).</summary>
    public static string RepoRoot()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "PluginMm.sln")))
            root = Path.GetDirectoryName(root) ?? throw new AssertFailedException("repository root not found");
        return root;
    }
}
