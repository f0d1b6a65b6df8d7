using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using HandlebarsDotNet;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using PluginMm.Generators.Helpers;
using PluginMm.Generators.Model;

namespace PluginMm.Generators.Hmm;

/// <summary>
/// Emits, for each HMM driver's <c>[MmuIntervalNotifierOps]</c> partial class, its <c>Ops</c> table
/// (<c>struct mmu_interval_notifier_ops</c>, a function pointer to the static <c>Invalidate</c> hook) and
/// <c>HasInvalidate</c>. Invalid declarations get nothing; <see cref="NotifierOpsAnalyzer"/> reports them (PMM0011-PMM0013).
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class NotifierOpsGenerator : IIncrementalGenerator
{
    private static readonly string Version = typeof(NotifierOpsGenerator).Assembly.GetName().Version?.ToString() ?? "0.0.0.0";

    private readonly Lazy<HandlebarsTemplate<object, object>> _template = new(() =>
    {
        var handlebars = Handlebars.Create(new HandlebarsConfiguration { NoEscape = true });
        const string resource = "PluginMm.Generators.Templates.MmuIntervalNotifierOps.hbs";
        using var stream = typeof(NotifierOpsGenerator).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException("Missing embedded template " + resource);
        using var reader = new StreamReader(stream);
        return handlebars.Compile(reader.ReadToEnd());
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var unsafeAllowed = context.CompilationProvider
            .Select(static (c, _) => c.Options is CSharpCompilationOptions { AllowUnsafe: true });

        var specs = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                NotifierCatalog.AttributeMetadataName,
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
                static (ctx, _) => ctx.TargetSymbol is INamedTypeSymbol type && ctx.Attributes.Length == 1 ? Parse(type, ctx.Attributes[0]) : null)
            .Where(static spec => spec is not null)
            .Select(static (spec, _) => spec!)
            .Combine(unsafeAllowed)
            .Where(static pair => pair.Right)
            .Select(static (pair, _) => pair.Left);

        context.RegisterSourceOutput(specs, (spc, spec) =>
        {
            try
            {
                spc.AddSource(HintName(spec.FullyQualifiedName), Emit(spec));
            }
            catch (ArgumentException)
            {
                // The same type declared twice: the compiler reports it (CS0101); never crash the generator.
            }
        });
    }

    /// <summary>Reads the class into a spec, or null when the analyzer reports a problem (unsafe is checked separately).</summary>
    private static NotifierOpsSpec? Parse(INamedTypeSymbol type, AttributeData attribute)
    {
        var info = NotifierOpsReader.Read(type, attribute, unsafeAllowed: true);
        if (info.AttributeHasErrors || info.CarryProblems.Count > 0 || info.Invalidate != HookState.Valid)
        {
            return null;
        }

        var containers = new List<string>();
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            string kind = outer.TypeKind == TypeKind.Struct ? (outer.IsRecord ? "record struct" : "struct") : outer.IsRecord ? "record" : "class";
            containers.Insert(0, (outer.IsStatic ? "static " : string.Empty) + "partial " + kind + " " + Escape(outer.Name));
        }

        return new NotifierOpsSpec(
            Name: info.Name!,
            Namespace: type.ContainingNamespace is { IsGlobalNamespace: false } ns
                ? ns.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat.WithGlobalNamespaceStyle(SymbolDisplayGlobalNamespaceStyle.Omitted))
                : null,
            TypeName: Escape(type.Name),
            DeclarationKeyword: type.IsRecord ? "record" : "class",
            FullyQualifiedName: type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            ContainingTypes: new EquatableArray<string>(containers.ToArray()));
    }

    private string Emit(NotifierOpsSpec spec)
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

        string text = _template.Value(new Dictionary<string, object?>
        {
            ["Version"] = Version,
            ["Name"] = spec.Name,
            ["NameLiteral"] = SymbolDisplay.FormatLiteral(spec.Name, quote: true),
            ["DisplayName"] = spec.FullyQualifiedName.Replace("global::", string.Empty),
            ["Namespace"] = spec.Namespace,
            ["Containers"] = containers,
            ["Closings"] = closings,
            ["I"] = new string(' ', depth * 4),
            ["RBrace"] = "}",
            ["Keyword"] = spec.DeclarationKeyword,
            ["TypeName"] = spec.TypeName,
        });

        // One line ending and no trailing spaces, whatever the template file used.
        var builder = new StringBuilder(text.Length);
        foreach (var line in text.Replace("\r\n", "\n").Split('\n'))
        {
            builder.Append(line.TrimEnd()).Append('\n');
        }

        return builder.ToString().TrimEnd('\n') + "\n";
    }

    private static string HintName(string fullyQualifiedName)
    {
        var chars = fullyQualifiedName.Replace("global::", string.Empty).ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (!(char.IsLetterOrDigit(chars[i]) || chars[i] is '.' or '_'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars) + ".MmuIntervalNotifierOps" + MemoryTypeReader.GeneratedFileSuffix;
    }

    private static string Escape(string identifier) =>
        SyntaxFacts.GetKeywordKind(identifier) != SyntaxKind.None ? "@" + identifier : identifier;
}
