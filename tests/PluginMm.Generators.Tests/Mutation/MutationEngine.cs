using System.Collections.Immutable;
using System.Diagnostics;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using PluginMm.Generators.Diagnostics;
using PluginMm.Generators.Hmm;

namespace PluginMm.Generators.Mutation;

/// <summary>One mutated source that made the generator or an analyzer fail, with what reproduces it.</summary>
public sealed record MutationFailure(int Case, string File, string Edits, string Problem, string Source);

/// <summary>
/// Robustness by mutation (issue 13, part 6): takes the memory types and notifier classes of the samples and the backends,
/// applies random token-level edits (delete, duplicate or swap tokens; change attribute arguments, parameter types,
/// modifiers, names), compiles each mutant with both generators and both analyzers, and records every CS8785 (a
/// generator threw), AD0001 (an analyzer threw) or exception. Deterministic: case <c>i</c> of seed <c>s</c> is always the
/// same mutant. Shared by the bounded CI test (MutationTests) and the console (tests/PluginMm.Generators.Mutate).
/// </summary>
public sealed class MutationEngine
{
    private static readonly string[] AttributeArguments =
    {
        "Backing.Anonymous", "Backing.PageCache", "Backing.HugeTlb", "(Backing)7", "(Backing)(-1)", "UffdModes.None", "UffdModes.Minor",
        "UffdModes.Missing | UffdModes.Wp | UffdModes.Minor", "(UffdModes)64", "\"\"", "\"a b\"", "null", "\"shmem\"", "\"SHMEM\"", "1", "default",
    };

    private static readonly string[] Types =
    {
        "Folio", "Folio?", "Inode", "VmaView", "in VmaView", "ref VmaView", "ref VmFault", "VmFault", "out VmFault", "UffdModes", "int", "long",
        "ulong", "bool", "void", "Errno", "VmFaultResult", "object", "dynamic", "T", "Folio[]", "Missing", "MmuIntervalNotifier",
        "in MmuNotifierRangeView", "MmuNotifierRangeView", "delegate*<void>", "ref readonly VmaView", "scoped ref VmFault",
    };

    private static readonly string[] Modifiers =
    {
        "static", "partial", "public", "internal", "private", "protected", "file", "unsafe", "ref", "in", "out", "readonly", "record", "struct",
        "abstract", "sealed", "extern", "async", "new", "params", "this", "class", "interface", "enum", "virtual", "override", "const",
    };

    private static readonly string[] Names =
    {
        "CanUserfault", "GetFolioNoAlloc", "GetFolioNoalloc", "AllocFolio", "FilemapAdd", "FilemapRemove", "Fault", "Invalidate", "Ops",
        "HasFault", "HasInvalidate", "MemoryTypeRegistry", "@class", "@event", "PluginMm", "global", "Shmem", "SHMEM", "MemoryType",
        "MmuIntervalNotifierOps", "Backing", "UffdModes", "T", "_", "\u00e9t\u00e9", "value",
    };

    private readonly ImmutableArray<MetadataReference> _references;
    private readonly (string Path, string Text, ImmutableArray<SyntaxToken> Tokens)[] _inputs;
    private readonly CSharpParseOptions _parse = new(LanguageVersion.Latest);

    public MutationEngine(string repositoryRoot, ImmutableArray<MetadataReference> references)
    {
        _references = references;
        var files = new[] { "Backends", "Samples" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(repositoryRoot, d), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(f => (Path: f, Text: File.ReadAllText(f)))
            .Where(f => f.Text.Contains("[MemoryType(", StringComparison.Ordinal) || f.Text.Contains("[MmuIntervalNotifierOps(", StringComparison.Ordinal))
            .OrderBy(f => f.Path, StringComparer.Ordinal)
            .ToArray();
        _inputs = files
            .Select(f => (Path.GetRelativePath(repositoryRoot, f.Path), f.Text, CSharpSyntaxTree.ParseText(f.Text, _parse).GetRoot().DescendantTokens().ToImmutableArray()))
            .ToArray();
        if (_inputs.Length == 0)
        {
            throw new InvalidOperationException("no [MemoryType] or [MmuIntervalNotifierOps] sources under " + repositoryRoot);
        }
    }

    /// <summary>The files mutated (relative to the repository).</summary>
    public IReadOnlyList<string> Files => _inputs.Select(i => i.Path).ToArray();

    /// <summary>Metadata references for a mutant: the runtime's System.* assemblies and PluginMm.Abstractions.</summary>
    public static ImmutableArray<MetadataReference> DefaultReferences(string abstractionsPath)
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        return tpa
            .Where(p => Path.GetFileName(p) is { } f && (f.StartsWith("System.", StringComparison.Ordinal) || f is "netstandard.dll" or "mscorlib.dll"))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .Append(MetadataReference.CreateFromFile(abstractionsPath))
            .ToImmutableArray();
    }

    /// <summary>Runs cases <paramref name="first"/> .. until <paramref name="count"/> ran or <paramref name="deadline"/> passed.</summary>
    public (int Ran, List<MutationFailure> Failures) Run(int seed, int first, int count, TimeSpan deadline, Action<int>? progress = null)
    {
        var failures = new List<MutationFailure>();
        var clock = Stopwatch.StartNew();
        int ran = 0;
        for (int i = first; ran < count && clock.Elapsed < deadline; i++, ran++)
        {
            if (RunCase(seed, i) is { } failure)
            {
                failures.Add(failure);
            }

            progress?.Invoke(ran + 1);
        }

        return (ran, failures);
    }

    /// <summary>The file and edits of case <paramref name="index"/> (to reproduce a failure by hand).</summary>
    public string Describe(int seed, int index)
    {
        var random = new Random(unchecked(seed * 1_000_003 + index));
        var input = _inputs[random.Next(_inputs.Length)];
        return $"case {index}: {input.Path}: {Mutate(input.Tokens, random).Edits}";
    }

    /// <summary>Builds and checks mutant <paramref name="index"/> of <paramref name="seed"/>; null when nothing crashed.</summary>
    public MutationFailure? RunCase(int seed, int index)
    {
        var random = new Random(unchecked(seed * 1_000_003 + index));
        var input = _inputs[random.Next(_inputs.Length)];
        var (source, edits) = Mutate(input.Tokens, random);
        try
        {
            return Check(source) is { } problem ? new MutationFailure(index, input.Path, edits, problem, source) : null;
        }
        catch (Exception e)
        {
            return new MutationFailure(index, input.Path, edits, "exception: " + e, source);
        }
    }

    private (string Source, string Edits) Mutate(ImmutableArray<SyntaxToken> tokens, Random random)
    {
        // Work on a list of token texts with their trivia, so every edit is a token-level edit of the original file.
        var parts = tokens.Select(t => (Leading: t.LeadingTrivia.ToFullString(), Text: t.Text, Trailing: t.TrailingTrivia.ToFullString(), Kind: t.Kind())).ToList();
        int editCount = 1 + random.Next(3);
        var edits = new List<string>();
        for (int e = 0; e < editCount && parts.Count > 2; e++)
        {
            int at = random.Next(parts.Count - 1);
            var p = parts[at];
            switch (random.Next(8))
            {
                case 0:
                    edits.Add($"delete '{p.Text}'@{at}");
                    parts.RemoveAt(at);
                    break;
                case 1:
                    edits.Add($"duplicate '{p.Text}'@{at}");
                    parts.Insert(at, (p.Leading, p.Text, " ", p.Kind));
                    break;
                case 2:
                    edits.Add($"swap '{p.Text}' '{parts[at + 1].Text}'@{at}");
                    (parts[at], parts[at + 1]) = (parts[at + 1], parts[at]);
                    break;
                case 3:
                {
                    // An attribute argument: the token after '=' or '(' inside [MemoryType(...)]/[MmuIntervalNotifierOps(...)].
                    int arg = FindAfter(parts, random, k => k is SyntaxKind.EqualsToken or SyntaxKind.OpenParenToken, inAttribute: true);
                    if (arg >= 0)
                    {
                        // The whole argument expression: up to the ',' or ')' that ends it.
                        int end = arg;
                        for (int depth = 0; end < parts.Count; end++)
                        {
                            var k = parts[end].Kind;
                            if (depth == 0 && k is SyntaxKind.CommaToken or SyntaxKind.CloseParenToken)
                            {
                                break;
                            }

                            depth += k == SyntaxKind.OpenParenToken ? 1 : k == SyntaxKind.CloseParenToken ? -1 : 0;
                        }

                        string value = AttributeArguments[random.Next(AttributeArguments.Length)];
                        string was = string.Concat(parts.Skip(arg).Take(end - arg).Select(x => x.Text));
                        edits.Add($"attribute argument '{was}'->'{value}'@{arg}");
                        var last = parts[Math.Max(arg, end - 1)];
                        parts.RemoveRange(arg, Math.Max(1, end - arg));
                        parts.Insert(arg, (string.Empty, value, last.Trailing, SyntaxKind.None));
                    }

                    break;
                }

                case 4:
                {
                    // A parameter or return type: a predefined-type or identifier token before an identifier and '(' ',' ')'.
                    int type = FindType(parts, random);
                    if (type >= 0)
                    {
                        string value = Types[random.Next(Types.Length)];
                        edits.Add($"type '{parts[type].Text}'->'{value}'@{type}");
                        parts[type] = (parts[type].Leading, value, parts[type].Trailing, SyntaxKind.None);
                    }

                    break;
                }

                case 5:
                {
                    int modifier = Find(parts, random, k => SyntaxFacts.IsKeywordKind(k));
                    string value = Modifiers[random.Next(Modifiers.Length)];
                    if (modifier >= 0 && random.Next(2) == 0)
                    {
                        edits.Add($"modifier '{parts[modifier].Text}'->'{value}'@{modifier}");
                        parts[modifier] = (parts[modifier].Leading, value, parts[modifier].Trailing, SyntaxKind.None);
                    }
                    else if (modifier >= 0)
                    {
                        edits.Add($"insert modifier '{value}'@{modifier}");
                        parts.Insert(modifier, (parts[modifier].Leading, value, " ", SyntaxKind.None));
                        parts[modifier + 1] = (string.Empty, parts[modifier + 1].Text, parts[modifier + 1].Trailing, parts[modifier + 1].Kind);
                    }

                    break;
                }

                case 6:
                {
                    int name = Find(parts, random, k => k == SyntaxKind.IdentifierToken);
                    if (name >= 0)
                    {
                        string value = RenameIdentifier(parts[name].Text, random);
                        edits.Add($"name '{parts[name].Text}'->'{value}'@{name}");
                        parts[name] = (parts[name].Leading, value, parts[name].Trailing, SyntaxKind.IdentifierToken);
                    }

                    break;
                }

                default:
                {
                    // Change a string or numeric literal (memory type names, flags).
                    int literal = Find(parts, random, k => k is SyntaxKind.StringLiteralToken or SyntaxKind.NumericLiteralToken);
                    if (literal >= 0)
                    {
                        string value = AttributeArguments[random.Next(AttributeArguments.Length)];
                        edits.Add($"literal '{parts[literal].Text}'->'{value}'@{literal}");
                        parts[literal] = (parts[literal].Leading, value, parts[literal].Trailing, SyntaxKind.None);
                    }

                    break;
                }
            }
        }

        var builder = new StringBuilder();
        foreach (var p in parts)
        {
            builder.Append(p.Leading).Append(p.Text).Append(p.Trailing);
        }

        return (builder.ToString(), string.Join("; ", edits));
    }

    private static string RenameIdentifier(string name, Random random)
    {
        switch (random.Next(4))
        {
            case 0: return Names[random.Next(Names.Length)];
            case 1: return name.ToUpperInvariant();
            case 2: return name.Length > 1 ? name.Remove(random.Next(name.Length), 1) : name + "x";
            default:
                var chars = name.ToCharArray();
                int i = random.Next(chars.Length);
                chars[i] = char.IsUpper(chars[i]) ? char.ToLowerInvariant(chars[i]) : char.ToUpperInvariant(chars[i]);
                return new string(chars);
        }
    }

    private static int Find(List<(string Leading, string Text, string Trailing, SyntaxKind Kind)> parts, Random random, Func<SyntaxKind, bool> match)
    {
        for (int tries = 0; tries < 64; tries++)
        {
            int i = random.Next(parts.Count);
            if (match(parts[i].Kind))
            {
                return i;
            }
        }

        return -1;
    }

    private static int FindAfter(List<(string Leading, string Text, string Trailing, SyntaxKind Kind)> parts, Random random, Func<SyntaxKind, bool> before, bool inAttribute)
    {
        var candidates = new List<int>();
        bool inside = false;
        for (int i = 1; i < parts.Count; i++)
        {
            if (parts[i - 1].Text is "MemoryType" or "MmuIntervalNotifierOps")
            {
                inside = true;
            }
            else if (parts[i].Kind == SyntaxKind.CloseBracketToken)
            {
                inside = false;
            }

            if ((!inAttribute || inside) && before(parts[i - 1].Kind) && parts[i].Kind != SyntaxKind.CloseParenToken)
            {
                candidates.Add(i);
            }
        }

        return candidates.Count == 0 ? -1 : candidates[random.Next(candidates.Count)];
    }

    private static int FindType(List<(string Leading, string Text, string Trailing, SyntaxKind Kind)> parts, Random random)
    {
        var candidates = new List<int>();
        for (int i = 0; i + 1 < parts.Count; i++)
        {
            bool typeLike = parts[i].Kind == SyntaxKind.IdentifierToken || SyntaxFacts.IsPredefinedType(parts[i].Kind);
            if (typeLike && parts[i + 1].Kind == SyntaxKind.IdentifierToken)
            {
                candidates.Add(i);
            }
        }

        return candidates.Count == 0 ? -1 : candidates[random.Next(candidates.Count)];
    }

    /// <summary>Generators, then analyzers on their output, as a build; the problem found, or null.</summary>
    private string? Check(string source)
    {
        var tree = CSharpSyntaxTree.ParseText(source, _parse, path: "Mutant.cs");
        var input = CSharpCompilation.Create("Mutant.Backends", new[] { tree }, _references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Enable));
        GeneratorDriver driver = CSharpGeneratorDriver.Create(
            new[] { new MemoryTypeGenerator().AsSourceGenerator(), new NotifierOpsGenerator().AsSourceGenerator() }, parseOptions: _parse);
        driver = driver.RunGeneratorsAndUpdateCompilation(input, out var output, out var generatorDiagnostics);
        foreach (var result in driver.GetRunResult().Results)
        {
            if (result.Exception is { } e)
            {
                return $"CS8785: {result.Generator.GetGeneratorType().Name} threw {e}";
            }
        }

        if (generatorDiagnostics.FirstOrDefault(d => d.Id is "CS8785" or "CS8784") is { } crash)
        {
            return crash.ToString();
        }

        var exceptions = new List<string>();
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty),
            onAnalyzerException: (e, analyzer, _) => { lock (exceptions) { exceptions.Add($"AD0001: {analyzer.GetType().Name} threw {e}"); } },
            concurrentAnalysis: false, logAnalyzerExecutionTime: false, reportSuppressedDiagnostics: false);
        var analyzers = ImmutableArray.Create<DiagnosticAnalyzer>(new MemoryTypeAnalyzer(), new NotifierOpsAnalyzer());
        var diagnostics = output.WithAnalyzers(analyzers, options).GetAllDiagnosticsAsync().GetAwaiter().GetResult();
        if (exceptions.Count > 0)
        {
            return exceptions[0];
        }

        if (diagnostics.FirstOrDefault(d => d.Id == "AD0001") is { } ad)
        {
            return ad.ToString();
        }

        // The analyzer's promise: whatever the generator emitted compiles (errors point at user code, never at ours),
        // unless the user code itself is broken to the point where generated code cannot bind (reported as user errors).
        return null;
    }
}
