using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using PluginMm.Generators.Helpers;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Hmm;

public sealed partial class NotifierOpsGenerator
{
    /// <summary>Roslyn symbols in, an equatable <see cref="NotifierOpsSpec"/> out. Nothing of Roslyn survives past this class.</summary>
    internal static class Parser
    {
        /// <summary>The spec, or null when the analyzer reports a problem (unsafe code and language version are gated apart).</summary>
        public static NotifierOpsSpec? Parse(GeneratorAttributeSyntaxContext context)
        {
            if (context.TargetSymbol is not INamedTypeSymbol type || context.Attributes.Length != 1)
            {
                return null;
            }

            var info = NotifierOpsReader.Read(type, context.Attributes[0], unsafeAllowed: true);
            if (info.AttributeHasErrors || info.CarryProblems.Count > 0 || info.Invalidate != HookState.Valid)
            {
                return null;
            }

            var containers = new List<string>();
            for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
            {
                containers.Insert(0, Declarations.Header(outer));
            }

            return new NotifierOpsSpec(
                Name: info.Name!,
                Namespace: Declarations.Namespace(type),
                TypeName: Declarations.Escape(type.Name),
                DeclarationKeyword: type.IsRecord ? "record" : "class",
                FullyQualifiedName: type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
                ContainingTypes: new EquatableArray<string>(containers.ToArray()));
        }
    }
}
