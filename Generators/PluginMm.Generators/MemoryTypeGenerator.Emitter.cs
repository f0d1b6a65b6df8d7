using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using HandlebarsDotNet;
using Microsoft.CodeAnalysis.CSharp;
using PluginMm.Generators.Model;

namespace PluginMm.Generators;

public sealed partial class MemoryTypeGenerator
{
    /// <summary>
    /// Spec in, C# text out, through the Handlebars templates embedded in this assembly (Templates/*.hbs).
    /// The templates are compiled once per generator instance (the generator holds one lazily created Emitter).
    /// </summary>
    internal sealed class Emitter
    {
        private static readonly string Version =
            typeof(MemoryTypeGenerator).Assembly.GetName().Version?.ToString() ?? "0.0.0.0";

        private readonly HandlebarsTemplate<object, object> _memoryType;
        private readonly HandlebarsTemplate<object, object> _registry;

        public Emitter()
        {
            // NoEscape: the output is C#, not HTML ('&Hook', '<summary>' must pass through unchanged).
            var handlebars = Handlebars.Create(new HandlebarsConfiguration { NoEscape = true });
            _memoryType = handlebars.Compile(ReadTemplate("MemoryType.hbs"));
            _registry = handlebars.Compile(ReadTemplate("Registry.hbs"));
        }

        /// <summary>The partial declaration with <c>Has&lt;Hook&gt;</c> constants and the <c>Ops</c> table.</summary>
        public string EmitMemoryType(MemoryTypeSpec spec)
        {
            int depth = (spec.Namespace is null ? 0 : 1) + spec.ContainingTypes.Count;
            var containers = new List<object>();
            for (int i = 0; i < spec.ContainingTypes.Count; i++)
            {
                containers.Add(new Dictionary<string, object?>
                {
                    ["Indent"] = Indent((spec.Namespace is null ? 0 : 1) + i),
                    ["Header"] = spec.ContainingTypes[i],
                });
            }

            var closings = new List<object>();
            for (int level = depth - 1; level >= 0; level--)
            {
                closings.Add(Indent(level) + "}");
            }

            var hooks = new List<object>();
            var model = new Dictionary<string, object?>
            {
                ["Version"] = Version,
                ["Name"] = spec.Name,
                ["NameLiteral"] = Literal(spec.Name),
                ["DisplayName"] = spec.FullyQualifiedName.Replace("global::", string.Empty),
                ["Namespace"] = spec.Namespace,
                ["Containers"] = containers,
                ["Closings"] = closings,
                ["I"] = Indent(depth),
                ["Modifiers"] = string.Empty,
                ["RBrace"] = "}",
                ["Keyword"] = spec.DeclarationKeyword,
                ["TypeName"] = spec.TypeName,
                ["Hooks"] = hooks,
                ["BackingExpression"] = BackingExpression(spec.Backing),
                ["ModesExpression"] = ModesExpression(spec.Modes),
                ["SharedAnonymous"] = spec.SharedAnonymous ? "true" : "false",
            };

            foreach (var hook in HookCatalog.All)
            {
                bool has = spec.Has(hook.Id);
                hooks.Add(new Dictionary<string, object?>
                {
                    ["Name"] = hook.Name,
                    ["Value"] = has ? "true" : "false",
                    ["Doc"] = has
                        ? $"this type declares <c>{hook.Name}</c> (<c>{hook.KernelName.Replace(">", "&gt;")}</c>) and its table points to it."
                        : $"this type declares no <c>{hook.Name}</c> (<c>{hook.KernelName.Replace(">", "&gt;")}</c>); its table slot is null.",
                });
                model[hook.Name] = has ? "&" + hook.Name : "null";
            }

            return Normalize(_memoryType(model));
        }

        /// <summary>The assembly's <c>MemoryTypeRegistry</c>.</summary>
        public string EmitRegistry(RegistrySpec spec)
        {
            var entries = new List<object>();
            var cases = new List<object>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in spec.Entries)
            {
                var item = new Dictionary<string, object?>
                {
                    ["FullyQualifiedName"] = entry.FullyQualifiedName,
                    ["NameLiteral"] = Literal(entry.Name),
                };
                entries.Add(item);

                // Two types with one name are PMM0005; Find keeps the first so the switch stays valid C#.
                if (names.Add(entry.Name))
                {
                    cases.Add(item);
                }
            }

            return Normalize(_registry(new Dictionary<string, object?>
            {
                ["Version"] = Version,
                ["Namespace"] = spec.Namespace,
                ["Entries"] = entries,
                ["Cases"] = cases,
            }));
        }

        private static string BackingExpression(int backing) =>
            HookCatalog.IsDefinedBacking(backing)
                ? "global::PluginMm.Backing." + HookCatalog.BackingName(backing)
                : "(global::PluginMm.Backing)(" + backing.ToString(CultureInfo.InvariantCulture) + ")";

        private static string ModesExpression(ulong modes)
        {
            if (modes == 0)
            {
                return "global::PluginMm.UffdModes.None";
            }

            var parts = new List<string>();
            if ((modes & HookCatalog.ModeMissing) != 0)
            {
                parts.Add("global::PluginMm.UffdModes.Missing");
            }

            if ((modes & HookCatalog.ModeWp) != 0)
            {
                parts.Add("global::PluginMm.UffdModes.Wp");
            }

            if ((modes & HookCatalog.ModeMinor) != 0)
            {
                parts.Add("global::PluginMm.UffdModes.Minor");
            }

            ulong unknown = modes & ~HookCatalog.AllModes;
            if (unknown != 0)
            {
                parts.Add("(global::PluginMm.UffdModes)" + unknown.ToString(CultureInfo.InvariantCulture) + "UL");
            }

            return string.Join(" | ", parts);
        }

        private static string Literal(string value) => SymbolDisplay.FormatLiteral(value, quote: true);

        private static string Indent(int level) => new(' ', level * 4);

        /// <summary>One line ending (\n) and no trailing spaces, whatever the template file used.</summary>
        private static string Normalize(string text)
        {
            var lines = text.Replace("\r\n", "\n").Split('\n');
            var builder = new StringBuilder(text.Length);
            foreach (var line in lines)
            {
                builder.Append(line.TrimEnd()).Append('\n');
            }

            return builder.ToString().TrimEnd('\n') + "\n";
        }

        private static string ReadTemplate(string fileName)
        {
            string resource = "PluginMm.Generators.Templates." + fileName;
            using var stream = typeof(Emitter).Assembly.GetManifestResourceStream(resource)
                ?? throw new InvalidOperationException("Missing embedded template " + resource);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
    }
}
