using System;
using System.Collections.Generic;
using System.Globalization;
using PluginMm.Generators.Helpers;
using Scriban.Runtime;
using Microsoft.CodeAnalysis.CSharp;
using PluginMm.Generators.Model;

namespace PluginMm.Generators;

public sealed partial class MemoryTypeGenerator
{
    /// <summary>
    /// Spec in, C# text out, through the Scriban templates embedded in this assembly (Templates/*.scriban),
    /// parsed once per generator instance (the generator holds one lazily created Emitter).
    /// </summary>
    internal sealed class Emitter
    {
        private readonly EmbeddedTemplate _memoryType = EmbeddedTemplate.Load("MemoryType.scriban");
        private readonly EmbeddedTemplate _registry = EmbeddedTemplate.Load("Registry.scriban");

        /// <summary>The partial declaration with <c>Has&lt;Hook&gt;</c> constants and the <c>Ops</c> table.</summary>
        public string EmitMemoryType(MemoryTypeSpec spec)
        {
            var model = Nesting(spec.Namespace, spec.ContainingTypes);
            var hooks = new ScriptArray();
            var slots = new ScriptObject();
            foreach (var hook in HookCatalog.All)
            {
                bool has = spec.Has(hook.Id);
                hooks.Add(new ScriptObject
                {
                    ["Name"] = hook.Name,
                    ["Value"] = has ? "true" : "false",
                    ["Doc"] = has
                        ? $"this type declares <c>{hook.Name}</c> (<c>{hook.KernelName.Replace(">", "&gt;")}</c>) and its table points to it."
                        : $"this type declares no <c>{hook.Name}</c> (<c>{hook.KernelName.Replace(">", "&gt;")}</c>); its table slot is null.",
                });
                slots[hook.Name] = has ? "&" + hook.Name : "null";
            }

            model["Name"] = spec.Name;
            model["NameLiteral"] = Literal(spec.Name);
            model["DisplayName"] = spec.FullyQualifiedName.Replace("global::", string.Empty);
            model["Keyword"] = spec.DeclarationKeyword;
            model["TypeName"] = spec.TypeName;
            model["Hooks"] = hooks;
            model["Slots"] = slots;
            model["BackingExpression"] = BackingExpression(spec.Backing);
            model["ModesExpression"] = ModesExpression(spec.Modes);
            model["SharedAnonymous"] = spec.SharedAnonymous ? "true" : "false";
            return _memoryType.Render(model);
        }

        /// <summary>The assembly's <c>MemoryTypeRegistry</c>.</summary>
        public string EmitRegistry(RegistrySpec spec)
        {
            var entries = new ScriptArray();
            var cases = new ScriptArray();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in spec.Entries)
            {
                var item = new ScriptObject
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

            return _registry.Render(new ScriptObject
            {
                ["Version"] = EmbeddedTemplate.GeneratorVersion,
                ["Namespace"] = spec.Namespace,
                ["Entries"] = entries,
                ["Cases"] = cases,
            });
        }

        /// <summary>
        /// The model's namespace and containing-type wrappers shared by every per-type template: <c>Namespace</c>,
        /// <c>Containers</c> (indent + header, outermost first), <c>Closings</c>, the member indent <c>I</c>, <c>Version</c>.
        /// </summary>
        internal static ScriptObject Nesting(string? @namespace, EquatableArray<string> containingTypes)
        {
            int outer = @namespace is null ? 0 : 1;
            int depth = outer + containingTypes.Count;
            var containers = new ScriptArray();
            for (int i = 0; i < containingTypes.Count; i++)
            {
                containers.Add(new ScriptObject { ["Indent"] = Indent(outer + i), ["Header"] = containingTypes[i] });
            }

            var closings = new ScriptArray();
            for (int level = depth - 1; level >= 0; level--)
            {
                closings.Add(Indent(level) + "}");
            }

            return new ScriptObject
            {
                ["Version"] = EmbeddedTemplate.GeneratorVersion,
                ["Namespace"] = @namespace,
                ["Containers"] = containers,
                ["Closings"] = closings,
                ["I"] = Indent(depth),
                ["RBrace"] = "}",
            };
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

        internal static string Literal(string value) => SymbolDisplay.FormatLiteral(value, quote: true);

        internal static string Indent(int level) => new(' ', level * 4);
    }
}
