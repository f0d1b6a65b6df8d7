using System.Text.RegularExpressions;

namespace PluginMm.DiffFuzz.Tests;

/// <summary>One row of the README's divergence table: a class pattern (<c>*</c> matches anything), its status, why.</summary>
public sealed record KnownDivergence(string Pattern, string Status, string Explanation)
{
    /// <summary>Still expected to diverge (status starts with "open" or "explained").</summary>
    public bool Expected => Status.StartsWith("open", StringComparison.OrdinalIgnoreCase) || Status.StartsWith("explained", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether <paramref name="cls"/> is this row's class.</summary>
    public bool Matches(string cls) => Regex.IsMatch(cls, "^" + string.Join(".*", Pattern.Split('*').Select(Regex.Escape)) + "$");
}

/// <summary>The table of known divergence classes in tests/PluginMm.DiffFuzz/README.md (the one place they are listed).</summary>
public static class KnownDivergences
{
    /// <summary>Rows of the table under the heading "Known divergences".</summary>
    public static IReadOnlyList<KnownDivergence> Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "README.md");
        var rows = new List<KnownDivergence>();
        bool inTable = false;
        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
                inTable = line.Contains("Known divergences", StringComparison.Ordinal);
            if (!inTable || !line.StartsWith("| `", StringComparison.Ordinal))
                continue;
            var cells = line.Split('|').Select(c => c.Trim()).ToArray();
            if (cells.Length >= 5)
                rows.Add(new KnownDivergence(cells[1].Trim('`'), cells[2], cells[3]));
        }
        return rows;
    }

    /// <summary>The row explaining <paramref name="cls"/>, or null.</summary>
    public static KnownDivergence? Find(IReadOnlyList<KnownDivergence> rows, string cls) => rows.FirstOrDefault(r => r.Matches(cls));
}
