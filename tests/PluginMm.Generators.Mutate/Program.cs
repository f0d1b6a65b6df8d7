using System.Diagnostics;
using PluginMm.Generators.Mutation;

// dotnet run -c Release --project tests/PluginMm.Generators.Mutate -- [count] [seed] [minutes]
int count = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 10_000;
int seed = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 13;
double minutes = args.Length > 2 ? double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 600;

string root = AppContext.BaseDirectory;
while (!File.Exists(Path.Combine(root, "PluginMm.sln")))
    root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("run from inside the repository");

var engine = new MutationEngine(root, MutationEngine.DefaultReferences(typeof(PluginMm.MemoryTypeAttribute).Assembly.Location));
Console.WriteLine($"mutating {engine.Files.Count} files ({string.Join(", ", engine.Files)}), {count} cases, seed {seed}");
var clock = Stopwatch.StartNew();
var (ran, failures) = engine.Run(seed, 0, count, TimeSpan.FromMinutes(minutes), done =>
{
    if (done % 1000 == 0)
        Console.WriteLine($"  {done} cases, {clock.Elapsed.TotalSeconds:F0} s");
});
if (Environment.GetEnvironmentVariable("PMM_MUTATE_LIST") is not null) foreach (var i in Enumerable.Range(0, 40)) Console.WriteLine(engine.Describe(seed, i));
foreach (var f in failures.Take(20))
    Console.WriteLine($"FAIL case {f.Case} ({f.File}; {f.Edits}): {f.Problem}");
Console.WriteLine($"mutation: {ran} cases, {failures.Count} failures (CS8785/AD0001/exception), {clock.Elapsed.TotalSeconds:F0} s");
return failures.Count == 0 ? 0 : 1;
