using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace PluginMm.Generators.Helpers;

/// <summary>How the parsers write a type's namespace, name and containing-type re-declarations (one place for both generators).</summary>
internal static class Declarations
{
    private static readonly SymbolDisplayFormat NamespaceFormat =
        SymbolDisplayFormat.FullyQualifiedFormat.WithGlobalNamespaceStyle(SymbolDisplayGlobalNamespaceStyle.Omitted);

    /// <summary>The type's namespace as C# text, or null for the global namespace.</summary>
    public static string? Namespace(INamedTypeSymbol type) =>
        type.ContainingNamespace is { IsGlobalNamespace: false } ns ? ns.ToDisplayString(NamespaceFormat) : null;

    /// <summary>A partial re-declaration of a containing type, e.g. <c>static partial class Outer</c>.</summary>
    public static string Header(INamedTypeSymbol type)
    {
        string kind = type.TypeKind switch
        {
            TypeKind.Struct => type.IsRecord ? "record struct" : "struct",
            TypeKind.Interface => "interface",
            _ => type.IsRecord ? "record" : "class",
        };
        string modifiers = (type.IsStatic ? "static " : string.Empty)
            + (type.TypeKind == TypeKind.Struct && type.IsReadOnly ? "readonly " : string.Empty)
            + (type.IsRefLikeType ? "ref " : string.Empty);
        return $"{modifiers}partial {kind} {Escape(type.Name)}";
    }

    /// <summary>The identifier, with <c>@</c> if it is a keyword.</summary>
    public static string Escape(string identifier) =>
        SyntaxFacts.GetKeywordKind(identifier) != SyntaxKind.None ? "@" + identifier : identifier;
}
