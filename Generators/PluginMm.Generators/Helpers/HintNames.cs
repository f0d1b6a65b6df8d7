using System.Globalization;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Helpers;

/// <summary>
/// Hint names of the generated files. Roslyn compares hint names ignoring case and rejects a repeat of one for the whole
/// generator (CS8785, and then every generated file is dropped), so a hint name must be unique whatever the case of
/// the names it comes from: each carries the 64-bit FNV-1a hash of the exact (ordinal) fully qualified type name,
/// which differs for <c>Consumer.Shmem</c> and <c>Consumer.SHMEM</c>. The registry's hint has no hash segment, so no
/// type's hint can equal it (not even a global <c>MemoryTypeRegistry</c>'s).
/// </summary>
internal static class HintNames
{
    /// <summary>The registry's hint name (one per compilation).</summary>
    public const string Registry = "MemoryTypeRegistry" + MemoryTypeReader.GeneratedFileSuffix;

    /// <summary><c>Readable.Name.&lt;16 hex&gt;[.kind]</c> + <see cref="MemoryTypeReader.GeneratedFileSuffix"/>.</summary>
    public static string ForType(string fullyQualifiedName, string? kind = null)
    {
        string name = fullyQualifiedName.Replace("global::", string.Empty);
        var chars = name.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (!((chars[i] is >= 'a' and <= 'z') || (chars[i] is >= 'A' and <= 'Z') || (chars[i] is >= '0' and <= '9') || chars[i] is '.' or '_'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars) + "." + Fnv1a64(name).ToString("x16", CultureInfo.InvariantCulture)
            + (kind is null ? string.Empty : "." + kind) + MemoryTypeReader.GeneratedFileSuffix;
    }

    private static ulong Fnv1a64(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in text)
        {
            hash = (hash ^ (c & 0xFFu)) * 1099511628211UL;
            hash = (hash ^ (uint)(c >> 8)) * 1099511628211UL;
        }

        return hash;
    }
}
