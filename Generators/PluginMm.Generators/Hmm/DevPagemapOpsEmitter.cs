using PluginMm.Generators.Helpers;
using Scriban.Runtime;

namespace PluginMm.Generators.Hmm;

/// <summary>
/// The emitter: a <see cref="DevPagemapOpsSpec"/> to the partial class holding <c>Ops</c> and the <c>Has*</c> constants,
/// through the embedded <c>Templates/DevPagemapOps.scriban</c> (parsed once).
/// </summary>
internal sealed class DevPagemapOpsEmitter
{
    private readonly EmbeddedTemplate _template = EmbeddedTemplate.Load("DevPagemapOps.scriban");

    /// <summary>The hint name: unique whatever the type names' case, never the registry's.</summary>
    public static string HintName(DevPagemapOpsSpec spec) => HintNames.ForType(spec.FullyQualifiedName, "DevPagemapOps");

    public string Emit(DevPagemapOpsSpec spec)
    {
        var model = MemoryTypeGenerator.Emitter.Nesting(spec.Namespace, spec.ContainingTypes);
        var hooks = new ScriptArray();
        foreach (var (hook, present) in new[]
        {
            (DevPagemapCatalog.PageFree, spec.HasPageFree),
            (DevPagemapCatalog.MigrateToRam, spec.HasMigrateToRam),
            (DevPagemapCatalog.MemoryFailure, spec.HasMemoryFailure),
        })
        {
            hooks.Add(new ScriptObject
            {
                ["Name"] = hook.Name,
                ["KernelName"] = hook.KernelName.Replace("->", "-&gt;"),
                ["Verb"] = present ? "declares" : "does not declare",
                ["Literal"] = present ? "true" : "false",
            });
        }

        model["Name"] = spec.Name;
        model["NameLiteral"] = MemoryTypeGenerator.Emitter.Literal(spec.Name);
        model["DisplayName"] = spec.FullyQualifiedName.Replace("global::", string.Empty);
        model["Keyword"] = spec.DeclarationKeyword;
        model["TypeName"] = spec.TypeName;
        model["Hooks"] = hooks;
        model["PageFree"] = spec.HasPageFree ? "&PageFree" : "null";
        model["MigrateToRam"] = spec.HasMigrateToRam ? "&MigrateToRam" : "null";
        model["MemoryFailure"] = spec.HasMemoryFailure ? "&MemoryFailure" : "null";
        return _template.Render(model);
    }
}
