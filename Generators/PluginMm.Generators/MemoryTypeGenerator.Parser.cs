using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using PluginMm.Generators.Helpers;
using PluginMm.Generators.Model;

namespace PluginMm.Generators;

public sealed partial class MemoryTypeGenerator
{
    /// <summary>Roslyn symbols in, equatable specs out. Nothing of Roslyn survives past this class.</summary>
    internal static class Parser
    {
        /// <summary>The spec for one attributed class, or null when it cannot (or need not) get generated code.</summary>
        public static MemoryTypeSpec? Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            if (context.TargetSymbol is not INamedTypeSymbol type || context.Attributes.Length != 1)
            {
                return null;
            }

            // [MemoryType] on two partial parts is CS0579; emit nothing rather than the same file twice.
            int count = 0;
            foreach (var attribute in type.GetAttributes())
            {
                if (MemoryTypeReader.IsMemoryTypeAttribute(attribute.AttributeClass))
                {
                    count++;
                }
            }

            if (count != 1)
            {
                return null;
            }

            var info = MemoryTypeReader.Read(type, context.Attributes[0], cancellationToken);
            if (info.AttributeHasErrors || info.NameProblem is not null || info.CarryProblems.Count > 0)
            {
                return null;
            }

            var containers = new List<string>();
            for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
            {
                containers.Insert(0, Declarations.Header(outer));
            }

            return new MemoryTypeSpec(
                Name: info.Name!,
                Backing: info.Backing,
                Modes: info.Modes,
                Namespace: Declarations.Namespace(type),
                TypeName: Declarations.Escape(type.Name),
                DeclarationKeyword: type.IsRecord ? "record" : "class",
                FullyQualifiedName: type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
                ContainingTypes: new EquatableArray<string>(containers.ToArray()),
                HookMask: info.HookMask,
                SharedAnonymous: info.SharedAnonymous);
        }

        /// <summary>The registry: every spec, sorted by name then type (ordinal).</summary>
        public static RegistrySpec BuildRegistry(ImmutableArray<MemoryTypeSpec> specs, string @namespace)
        {
            var entries = new List<RegistryEntry>(specs.Length);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var spec in specs)
            {
                // A type whose attribute sits on two syntax nodes is never parsed twice (see Parse), but be safe.
                if (seen.Add(spec.FullyQualifiedName))
                {
                    entries.Add(new RegistryEntry(spec.Name, spec.FullyQualifiedName));
                }
            }

            entries.Sort(static (a, b) =>
            {
                int byName = string.CompareOrdinal(a.Name, b.Name);
                return byName != 0 ? byName : string.CompareOrdinal(a.FullyQualifiedName, b.FullyQualifiedName);
            });
            return new RegistrySpec(@namespace, new EquatableArray<RegistryEntry>(entries.ToArray()));
        }
    }
}
