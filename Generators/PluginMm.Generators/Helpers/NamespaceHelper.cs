using System.Text;
using Microsoft.CodeAnalysis.CSharp;

namespace PluginMm.Generators.Helpers;

/// <summary>Turns an MSBuild property or assembly name into a valid C# namespace.</summary>
internal static class NamespaceHelper
{
    public const string Fallback = "PluginMm.Generated";

    public static string Sanitize(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return Fallback;
        }

        var result = new StringBuilder();
        foreach (var rawSegment in name!.Trim().Split('.'))
        {
            var segment = new StringBuilder();
            foreach (char c in rawSegment)
            {
                segment.Append(char.IsLetterOrDigit(c) || c == '_' ? c : '_');
            }

            if (segment.Length == 0)
            {
                continue;
            }

            if (char.IsDigit(segment[0]))
            {
                segment.Insert(0, '_');
            }

            var text = segment.ToString();
            if (SyntaxFacts.GetKeywordKind(text) != SyntaxKind.None || SyntaxFacts.GetContextualKeywordKind(text) == SyntaxKind.GlobalKeyword)
            {
                text = "@" + text;
            }

            if (result.Length > 0)
            {
                result.Append('.');
            }

            result.Append(text);
        }

        return result.Length == 0 ? Fallback : result.ToString();
    }
}
