using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using HandlebarsDotNet;
using Microsoft.CodeAnalysis.CSharp;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Hmm;

/// <summary>The emitter: a <see cref="DevPagemapOpsSpec"/> to the partial class holding <c>Ops</c> and the <c>Has*</c> constants.</summary>
internal static class DevPagemapOpsEmitter
{
    private static readonly string Version = typeof(DevPagemapOpsEmitter).Assembly.GetName().Version?.ToString() ?? "0.0.0.0";

    private static readonly Lazy<HandlebarsTemplate<object, object>> Template = new(() =>
    {
        var handlebars = Handlebars.Create(new HandlebarsConfiguration { NoEscape = true });
        const string resource = "PluginMm.Generators.Templates.DevPagemapOps.hbs";
        using var stream = typeof(DevPagemapOpsEmitter).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException("Missing embedded template " + resource);
        using var reader = new StreamReader(stream);
        return handlebars.Compile(reader.ReadToEnd());
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string HintName(DevPagemapOpsSpec spec)
    {
        var chars = spec.FullyQualifiedName.Replace("global::", string.Empty).ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (!(char.IsLetterOrDigit(chars[i]) || chars[i] is '.' or '_'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars) + ".DevPagemapOps" + MemoryTypeReader.GeneratedFileSuffix;
    }

    public static string Emit(DevPagemapOpsSpec spec)
    {
        int outerLevels = spec.Namespace is null ? 0 : 1;
        int depth = outerLevels + spec.ContainingTypes.Count;
        var containers = new List<object>();
        for (int i = 0; i < spec.ContainingTypes.Count; i++)
        {
            containers.Add(new Dictionary<string, object?> { ["Indent"] = new string(' ', (outerLevels + i) * 4), ["Header"] = spec.ContainingTypes[i] });
        }

        var closings = new List<object>();
        for (int level = depth - 1; level >= 0; level--)
        {
            closings.Add(new string(' ', level * 4) + "}");
        }

        var hooks = new List<object>();
        foreach (var (hook, present) in new[]
        {
            (DevPagemapCatalog.PageFree, spec.HasPageFree),
            (DevPagemapCatalog.MigrateToRam, spec.HasMigrateToRam),
            (DevPagemapCatalog.MemoryFailure, spec.HasMemoryFailure),
        })
        {
            hooks.Add(new Dictionary<string, object?>
            {
                ["Name"] = hook.Name,
                ["KernelName"] = hook.KernelName.Replace("->", "-&gt;"),
                ["Present"] = present,
                ["Literal"] = present ? "true" : "false",
            });
        }

        string text = Template.Value(new Dictionary<string, object?>
        {
            ["Version"] = Version,
            ["Name"] = spec.Name,
            ["NameLiteral"] = SymbolDisplay.FormatLiteral(spec.Name, quote: true),
            ["DisplayName"] = spec.FullyQualifiedName.Replace("global::", string.Empty),
            ["Namespace"] = spec.Namespace,
            ["Containers"] = containers,
            ["Closings"] = closings,
            ["Hooks"] = hooks,
            ["I"] = new string(' ', depth * 4),
            ["RBrace"] = "}",
            ["Keyword"] = spec.DeclarationKeyword,
            ["TypeName"] = spec.TypeName,
            ["PageFree"] = spec.HasPageFree ? "&PageFree" : "null",
            ["MigrateToRam"] = spec.HasMigrateToRam ? "&MigrateToRam" : "null",
            ["MemoryFailure"] = spec.HasMemoryFailure ? "&MemoryFailure" : "null",
        });

        var builder = new StringBuilder(text.Length);
        foreach (var line in text.Replace("\r\n", "\n").Split('\n'))
        {
            builder.Append(line.TrimEnd()).Append('\n');
        }

        return builder.ToString().TrimEnd('\n') + "\n";
    }
}
