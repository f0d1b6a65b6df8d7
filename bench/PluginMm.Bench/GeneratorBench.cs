using System.Collections.Immutable;
using System.Diagnostics;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using PluginMm.Generators;

namespace PluginMm.Bench;

/// <summary>
/// Part 5: the generator in-process (<see cref="CSharpGeneratorDriver"/> with tracked incremental steps) over a synthetic
/// project of 1,000 [MemoryType] classes, one per file. Times the first run and one-line edits re-run incrementally,
/// and counts from the tracked steps what was re-parsed and re-emitted.
/// </summary>
public static class GeneratorBench
{
    public sealed record EditResult(string Edit, double MedianMs, int Reparsed, int ReEmittedTypes, int TotalTypes, string Registry);

    public sealed record Result(int Types, double FirstRunMs, double FullCompileMs, EditResult[] Edits, int GeneratedFiles, int Errors);

    private static readonly CSharpParseOptions Parse = new(LanguageVersion.Latest);

    private static string TypeSource(int i, string modes, string canUserfaultBody) => $$"""
        using PluginMm;

        namespace Synthetic.Backends;

        /// <summary>Synthetic page-cache memory type {{i}}.</summary>
        [MemoryType("type{{i:D4}}", Backing = Backing.PageCache, Modes = {{modes}})]
        public static partial class Type{{i:D4}}
        {
            public static bool CanUserfault(in VmaView vma, UffdModes modes) => {{canUserfaultBody}};
            public static Folio? GetFolioNoAlloc(Inode inode, long pgoff) { var f = inode.Cache.Get(pgoff); f?.Lock(); return f; }
            public static VmFaultResult Fault(ref VmFault vmf) => VmFaultResult.SigBus;
        }
        """;

    public static Result Run(int types, int editRounds)
    {
        var refs = References();
        var trees = new SyntaxTree[types];
        for (int i = 0; i < types; i++)
            trees[i] = CSharpSyntaxTree.ParseText(TypeSource(i, "UffdModes.Minor", "true"), Parse, path: $"Type{i:D4}.cs", encoding: Encoding.UTF8);
        var compilation = CSharpCompilation.Create("Synthetic.Backends", trees, refs,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Enable));

        GeneratorDriver driver = CSharpGeneratorDriver.Create(
            [new MemoryTypeGenerator().AsSourceGenerator()],
            parseOptions: Parse,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

        long t0 = Stopwatch.GetTimestamp();
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var genDiags);
        double firstMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        var run = driver.GetRunResult();
        int generated = run.GeneratedTrees.Length;

        // The generated code compiles with the user code (tables take the hooks' addresses).
        t0 = Stopwatch.GetTimestamp();
        var errors = output.GetDiagnostics().Count(d => d.Severity == DiagnosticSeverity.Error) + genDiags.Count(d => d.Severity == DiagnosticSeverity.Error);
        double compileMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;

        int target = types / 2;
        var edits = new List<EditResult>
        {
            Edit(ref driver, ref compilation, target, editRounds, "hook body (CanUserfault => true / modes != 0)",
                v => TypeSource(target, "UffdModes.Minor", v ? "modes != 0" : "true")),
            Edit(ref driver, ref compilation, target, editRounds, "declaration (Modes = Minor / Minor | Wp)",
                v => TypeSource(target, v ? "UffdModes.Minor | UffdModes.Wp" : "UffdModes.Minor", "true")),
        };
        return new Result(types, firstMs, compileMs, edits.ToArray(), generated, errors);
    }

    private static EditResult Edit(ref GeneratorDriver driver, ref CSharpCompilation compilation, int index, int rounds, string what, Func<bool, string> source)
    {
        var times = new double[rounds];
        int reparsed = 0, reEmitted = 0, total = 0;
        string registry = "";
        for (int r = 0; r < rounds; r++)
        {
            var old = compilation.SyntaxTrees.First(t => t.FilePath == $"Type{index:D4}.cs");
            var edited = compilation.ReplaceSyntaxTree(old, CSharpSyntaxTree.ParseText(source(r % 2 == 0), Parse, path: old.FilePath, encoding: Encoding.UTF8));
            long t0 = Stopwatch.GetTimestamp();
            driver = driver.RunGenerators(edited);
            times[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            compilation = edited;
            var res = driver.GetRunResult().Results[0];
            reparsed = res.TrackedSteps[StepNames.Parse].SelectMany(s => s.Outputs).Count(o => o.Reason is IncrementalStepRunReason.New or IncrementalStepRunReason.Modified);
            reEmitted = 0;
            total = 0;
            registry = "not run";
            foreach (var step in res.TrackedOutputSteps["SourceOutput"])
            {
                foreach (var (value, reason) in step.Outputs)
                {
                    _ = value;
                    if (IsRegistryInput(step))
                    {
                        registry = reason.ToString();
                        continue;
                    }
                    total++;
                    if (reason is IncrementalStepRunReason.New or IncrementalStepRunReason.Modified)
                        reEmitted++;
                }
            }
        }
        return new EditResult(what, SideBySide.Median(times), reparsed, reEmitted, total, registry);
    }

    // The registry output's input is Combine(registry, unsafeAllowed), whose first input is the Registry step.
    private static bool IsRegistryInput(IncrementalGeneratorRunStep step)
    {
        var stack = new Stack<IncrementalGeneratorRunStep>();
        stack.Push(step);
        int depth = 0;
        while (stack.Count > 0 && depth++ < 64)
        {
            var s = stack.Pop();
            if (s.Name == StepNames.Registry) return true;
            if (s.Name == StepNames.Specs) return false;
            foreach (var (src, _) in s.Inputs) stack.Push(src);
        }
        return false;
    }

    private static ImmutableArray<MetadataReference> References()
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var list = tpa
            .Where(p => Path.GetFileName(p) is { } f && (f.StartsWith("System.", StringComparison.Ordinal) || f is "netstandard.dll" or "mscorlib.dll"))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToList();
        list.Add(MetadataReference.CreateFromFile(typeof(MemoryTypeAttribute).Assembly.Location));
        return list.ToImmutableArray();
    }
}
