using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace PluginMm.Generators.Helpers;

/// <summary>Where the generated <c>MemoryTypeRegistry</c> lives, and whether that namespace clashes with a type (PMM0014).</summary>
internal static class RegistryNamespace
{
    /// <summary>The MSBuild property (made visible with CompilerVisibleProperty) naming the registry's namespace.</summary>
    public const string Property = "build_property.PluginMmRegistryNamespace";

    /// <summary>The registry namespace: the property if set, else the assembly name, made a valid C# namespace.</summary>
    public static string Resolve(string? property, string? assemblyName) =>
        NamespaceHelper.Sanitize(string.IsNullOrWhiteSpace(property) ? assemblyName : property);

    public static string? ReadProperty(AnalyzerConfigOptions globalOptions) =>
        globalOptions.TryGetValue(Property, out var ns) ? ns : null;

    /// <summary>
    /// A type of this assembly whose full name is the namespace or one of its prefixes (<c>MyLib.Shmem</c> against the
    /// namespace <c>MyLib.Shmem</c>): declaring the registry there is CS0101 on that type. Null when there is none.
    /// </summary>
    public static INamedTypeSymbol? ClashingType(Compilation compilation, string @namespace)
    {
        string prefix = string.Empty;
        foreach (var segment in @namespace.Split('.'))
        {
            prefix = prefix.Length == 0 ? segment.TrimStart('@') : prefix + "." + segment.TrimStart('@');
            if (compilation.Assembly.GetTypeByMetadataName(prefix) is { } type)
            {
                return type;
            }
        }

        return null;
    }
}
