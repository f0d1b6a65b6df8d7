using System.Text;

namespace PluginMm.Runtime.Tests.Support;

/// <summary>
/// Everything observable about an mm's memory (VMAs with flags and registration, every page-table entry over the VMAs,
/// the page caches of mapped files, live pages of the allocator), so a test can assert that a failed call changed nothing.
/// </summary>
public static class MemorySnapshot
{
    public static string Take(Mm mm)
    {
        var sb = new StringBuilder();
        var files = new HashSet<MemFile>();
        foreach (var v in mm.Vmas)
        {
            sb.Append(v).Append(" pgoff=").Append(v.PgOff).AppendLine();
            for (ulong a = v.Start; a < v.End; a += (ulong)v.PageSize)
            {
                var p = mm.PageTable.Get(a);
                if (!p.IsNone)
                    sb.Append("  0x").Append(a.ToString("x")).Append(' ').Append(p.Flags).Append(' ')
                      .Append(p.Folio is null ? "-" : System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(p.Folio).ToString("x"))
                      .Append(" ref=").Append(p.Folio?.RefCount ?? 0).AppendLine();
            }
            if (v.File is not null) files.Add(v.File);
        }
        foreach (var f in files.OrderBy(f => f.GetHashCode()))
            sb.Append("file ").Append(f).Append(" cached=").Append(f.CachedFolios).AppendLine();
        sb.Append("live pages=").Append(mm.Kernel.Allocator.LivePages).AppendLine();
        return sb.ToString();
    }
}
