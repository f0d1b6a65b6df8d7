using System;
using System.IO;
using System.Text;
using Scriban;
using Scriban.Runtime;

namespace PluginMm.Generators.Helpers;

/// <summary>
/// The Scriban templates embedded in this assembly (<c>Templates/*.scriban</c>): each is parsed once, on first use, and
/// checked for errors; rendering gets a fresh <see cref="TemplateContext"/> that keeps member names as written.
/// </summary>
internal sealed class EmbeddedTemplate
{
    /// <summary>The generator's version, stamped into every <c>[GeneratedCode]</c>.</summary>
    public static readonly string GeneratorVersion =
        typeof(EmbeddedTemplate).Assembly.GetName().Version?.ToString() ?? "0.0.0.0";

    private static readonly MemberRenamerDelegate KeepNames = static member => member.Name;

    private readonly Template _template;

    private EmbeddedTemplate(Template template) => _template = template;

    /// <summary>Parses <c>PluginMm.Generators.Templates.&lt;fileName&gt;</c>; a parse error is a bug in this assembly.</summary>
    public static EmbeddedTemplate Load(string fileName)
    {
        string resource = "PluginMm.Generators.Templates." + fileName;
        using var stream = typeof(EmbeddedTemplate).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException("Missing embedded template " + resource);
        using var reader = new StreamReader(stream);
        var template = Template.Parse(reader.ReadToEnd(), fileName);
        if (template.HasErrors)
        {
            throw new InvalidOperationException($"Template {fileName} does not parse: {string.Join("; ", template.Messages)}");
        }

        return new EmbeddedTemplate(template);
    }

    /// <summary>Renders with <paramref name="model"/> as the global scope; one line ending (\n), no trailing spaces.</summary>
    public string Render(ScriptObject model)
    {
        var context = new TemplateContext
        {
            MemberRenamer = KeepNames,
            StrictVariables = true,
            EnableRelaxedMemberAccess = false,
            LoopLimit = 0,
            RecursiveLimit = 0,
        };
        context.PushGlobal(model);
        return Normalize(_template.Render(context));
    }

    /// <summary>One line ending (\n) and no trailing spaces, whatever the template file used.</summary>
    private static string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var line in text.Replace("\r\n", "\n").Split('\n'))
        {
            builder.Append(line.TrimEnd()).Append('\n');
        }

        return builder.ToString().TrimEnd('\n') + "\n";
    }
}
