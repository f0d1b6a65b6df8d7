using System.Globalization;
using System.Text;
using PluginMm.Conformance;

namespace PluginMm.DiffFuzz;

/// <summary>Parsing of the memory type names (<see cref="MemType"/> and its names are shared with the conformance
/// suite: tests/PluginMm.Conformance.Tests/Target.cs is compiled into this program).</summary>
public static class MemTypeNames
{
    /// <summary>Parses a name of <see cref="MemTypes.Name"/>.</summary>
    public static MemType Parse(string s) => MemTypes.All.Where(t => t.Name() == s).Select(t => (MemType?)t).FirstOrDefault()
        ?? throw new FormatException($"unknown memory type '{s}' (anon, shmem, shmem-private, hugetlb, hugetlb-private)");
}

/// <summary>
/// One operation of a case: a kind and named arguments, one text line (<c>copy dst=A+0x1000 src=S+0x0 len=0x1000
/// mode=0x0 fill=0x5a</c>). Addresses are symbolic (<see cref="Layout.Resolve"/>), so the same line runs on both sides.
/// </summary>
public sealed class Op
{
    /// <summary>Creates an operation.</summary>
    public Op(string kind, params (string Key, string Value)[] args)
    {
        Kind = kind;
        Args = args;
    }

    /// <summary>The operation (<c>api</c>, <c>register</c>, <c>copy</c>, <c>access</c>, <c>madvise</c>, ...).</summary>
    public string Kind { get; }

    /// <summary>Arguments in order.</summary>
    public (string Key, string Value)[] Args { get; }

    /// <summary>An argument's text; throws if missing.</summary>
    public string this[string key] => Args.FirstOrDefault(a => a.Key == key).Value ?? throw new FormatException($"{Kind}: missing {key}=");

    /// <summary>An argument as a number (hex with 0x, else decimal).</summary>
    public ulong Num(string key) => ParseNum(this[key]);

    /// <summary>Parses 0x-hex or decimal.</summary>
    public static ulong ParseNum(string s) => s.StartsWith("0x", StringComparison.Ordinal)
        ? ulong.Parse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
        : ulong.Parse(s, CultureInfo.InvariantCulture);

    /// <summary>Hex text of a number.</summary>
    public static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder(Kind);
        foreach (var (k, v) in Args)
            sb.Append(' ').Append(k).Append('=').Append(v);
        return sb.ToString();
    }

    /// <summary>Parses <see cref="ToString"/>.</summary>
    public static Op Parse(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var args = parts.Skip(1).Select(p =>
        {
            int eq = p.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
                throw new FormatException($"bad argument '{p}' in '{line}'");
            return (p[..eq], p[(eq + 1)..]);
        }).ToArray();
        return new Op(parts[0], args);
    }
}

/// <summary>
/// A case: the memory type, the area (pages, placement of its start inside a 2 MiB page-table span), and the
/// operations. Its text form is the replayable case file.
/// </summary>
public sealed class FuzzCase
{
    /// <summary>Creates a case.</summary>
    public FuzzCase(MemType type, int pages, ulong placement, IReadOnlyList<Op> ops, ulong seed = 0)
    {
        Type = type;
        Pages = pages;
        Placement = placement;
        Ops = ops;
        Seed = seed;
    }

    /// <summary>Memory type.</summary>
    public MemType Type { get; }

    /// <summary>Pages in the area (huge pages for hugetlb).</summary>
    public int Pages { get; }

    /// <summary>Offset of the area's start from a 2 MiB boundary (0 for hugetlb).</summary>
    public ulong Placement { get; }

    /// <summary>The operations, run in order.</summary>
    public IReadOnlyList<Op> Ops { get; }

    /// <summary>The seed the case came from (0 when shrunk or hand-written).</summary>
    public ulong Seed { get; }

    /// <summary>The same area with other operations.</summary>
    public FuzzCase WithOps(IReadOnlyList<Op> ops) => new(Type, Pages, Placement, ops, Seed);

    /// <summary>The case file text (comments start with #).</summary>
    public string ToText(IEnumerable<string>? comments = null)
    {
        var sb = new StringBuilder();
        foreach (var c in comments ?? [])
            sb.Append("# ").Append(c).Append('\n');
        sb.Append("type ").Append(Type.Name()).Append('\n');
        sb.Append("pages ").Append(Pages.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("placement ").Append(Op.Hex(Placement)).Append('\n');
        if (Seed != 0)
            sb.Append("seed ").Append(Op.Hex(Seed)).Append('\n');
        foreach (var op in Ops)
            sb.Append(op).Append('\n');
        return sb.ToString();
    }

    /// <summary>Parses a case file.</summary>
    public static FuzzCase Parse(string text)
    {
        MemType? type = null;
        int pages = 0;
        ulong placement = 0, seed = 0;
        var ops = new List<Op>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var word = line.Split(' ', 2);
            switch (word[0])
            {
                case "type": type = MemTypeNames.Parse(word[1].Trim()); break;
                case "pages": pages = int.Parse(word[1], CultureInfo.InvariantCulture); break;
                case "placement": placement = Op.ParseNum(word[1].Trim()); break;
                case "seed": seed = Op.ParseNum(word[1].Trim()); break;
                default: ops.Add(Op.Parse(line)); break;
            }
        }
        if (type is null || pages <= 0)
            throw new FormatException("a case file needs 'type' and 'pages' lines");
        return new FuzzCase(type.Value, pages, placement, ops, seed);
    }
}

/// <summary>
/// Where everything of a case lies, identical on model and host: from a 2 MiB aligned base, a guard span, the area
/// (A), a guard, the alias (L, file types), a guard, the COPY source buffer (S), a guard, a scratch span for mremap
/// targets (X), a guard. Every byte of [Base, End) not in A/L/S is a PROT_NONE anonymous guard mapping.
/// </summary>
public sealed class Layout
{
    /// <summary>2 MiB: one PMD's span, and the huge page size the model uses.</summary>
    public const ulong Pmd = 2UL << 20;

    /// <summary>Computes the layout of <paramref name="c"/> from a 2 MiB aligned base.</summary>
    public Layout(FuzzCase c, ulong pageSize, ulong baseAddress)
    {
        PageSize = pageSize;
        AreaLen = (ulong)c.Pages * pageSize;
        Base = baseAddress;
        A = Base + Pmd + c.Placement;
        L = Up(A + AreaLen) + Pmd + c.Placement;
        S = Up(L + AreaLen) + Pmd;
        X = Up(S + AreaLen) + Pmd;
        End = Up(X + AreaLen) + Pmd;
    }

    /// <summary>The span a layout needs for <paramref name="c"/> (to reserve before the base is known).</summary>
    public static ulong SpanFor(FuzzCase c, ulong pageSize) => new Layout(c, pageSize, 0).End;

    private static ulong Up(ulong a) => (a + Pmd - 1) & ~(Pmd - 1);

    /// <summary>Area page size.</summary>
    public ulong PageSize { get; }

    /// <summary>Bytes in the area (and in the alias, the source, the scratch span).</summary>
    public ulong AreaLen { get; }

    /// <summary>Start of the reserved span.</summary>
    public ulong Base { get; }

    /// <summary>End of the reserved span.</summary>
    public ulong End { get; }

    /// <summary>The area.</summary>
    public ulong A { get; }

    /// <summary>The alias of the area's file (file types).</summary>
    public ulong L { get; }

    /// <summary>The COPY source buffer (anonymous, never registered).</summary>
    public ulong S { get; }

    /// <summary>The scratch span (guard) that mremap moves into.</summary>
    public ulong X { get; }

    /// <summary>Resolves <c>A+0x..</c>, <c>A-0x..</c>, <c>L+..</c>, <c>S+..</c>, <c>X+..</c> or a plain number.</summary>
    public ulong Resolve(string s)
    {
        if (s.Length > 2 && s[0] is 'A' or 'L' or 'S' or 'X' && s[1] is '+' or '-')
        {
            ulong b = s[0] switch { 'A' => A, 'L' => L, 'S' => S, _ => X };
            ulong off = Op.ParseNum(s[2..]);
            return s[1] == '+' ? b + off : b - off;
        }
        return Op.ParseNum(s);
    }

    /// <summary>The symbolic form of an address: relative to the nearest region start at or below it, else absolute.</summary>
    public string Describe(ulong a)
    {
        if (a >= Base && a < End)
        {
            // The region whose start is the greatest at or below a (addresses below A are A-relative).
            var (n, b) = new[] { ('X', X), ('S', S), ('L', L), ('A', A) }.FirstOrDefault(r => a >= r.Item2, ('A', A));
            return a >= b ? $"{n}+{Op.Hex(a - b)}" : $"{n}-{Op.Hex(b - a)}";
        }
        return Op.Hex(a);
    }
}
