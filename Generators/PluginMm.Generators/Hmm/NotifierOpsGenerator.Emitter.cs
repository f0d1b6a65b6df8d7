using PluginMm.Generators.Helpers;
using Scriban.Runtime;

namespace PluginMm.Generators.Hmm;

public sealed partial class NotifierOpsGenerator
{
    /// <summary>Spec in, C# text out, through the embedded <c>Templates/MmuIntervalNotifierOps.scriban</c> (parsed once).</summary>
    internal sealed class Emitter
    {
        private readonly EmbeddedTemplate _template = EmbeddedTemplate.Load("MmuIntervalNotifierOps.scriban");

        public string Emit(NotifierOpsSpec spec)
        {
            var model = MemoryTypeGenerator.Emitter.Nesting(spec.Namespace, spec.ContainingTypes);
            model["Name"] = spec.Name;
            model["NameLiteral"] = MemoryTypeGenerator.Emitter.Literal(spec.Name);
            model["DisplayName"] = spec.FullyQualifiedName.Replace("global::", string.Empty);
            model["Keyword"] = spec.DeclarationKeyword;
            model["TypeName"] = spec.TypeName;
            return _template.Render(model);
        }
    }
}
