using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace PluginMm.Generators.Helpers;

/// <summary>
/// The compilation-wide conditions under which generated code compiles at all. Where one fails, the generators emit
/// nothing and the analyzers report it (PMM0008 unsafe code, PMM0015 language version; PMM0013 for notifiers), so the build fails on a PMM
/// error that names the fix, never inside generated code.
/// </summary>
internal static class GenerationGate
{
    /// <summary>
    /// The oldest C# the generated code compiles with: C# 8, for its <c>#nullable</c> directives and <c>MemoryTypeOps?</c>
    /// (CS8370 below). Taking <c>&amp;Hook</c> for the tables' <c>delegate*</c> parameters, whose types come from
    /// metadata, compiles under C# 8 (the consumer matrix builds and runs a LangVersion 8 consumer).
    /// </summary>
    public const Microsoft.CodeAnalysis.CSharp.LanguageVersion MinimumLanguageVersion = Microsoft.CodeAnalysis.CSharp.LanguageVersion.CSharp8;

    /// <summary>"9.0", as the compiler's own messages write it.</summary>
    public static string MinimumLanguageVersionText => MinimumLanguageVersion.ToDisplayString();

    public static bool UnsafeAllowed(Compilation compilation) => compilation.Options is CSharpCompilationOptions { AllowUnsafe: true };

    public static bool LanguageVersionSupported(ParseOptions? options) =>
        options is not CSharpParseOptions parse || parse.LanguageVersion >= MinimumLanguageVersion;

    /// <summary>Whether the language version is new enough (tracked: it changes only with the project's LangVersion).</summary>
    public static IncrementalValueProvider<bool> LanguageVersionOk(IncrementalGeneratorInitializationContext context) =>
        context.ParseOptionsProvider.Select(static (o, _) => LanguageVersionSupported(o)).WithTrackingName(StepNames.LanguageVersion);

    /// <summary>Both conditions.</summary>
    public static IncrementalValueProvider<bool> Create(IncrementalGeneratorInitializationContext context) =>
        context.CompilationProvider.Select(static (c, _) => UnsafeAllowed(c)).WithTrackingName(StepNames.UnsafeAllowed)
            .Combine(LanguageVersionOk(context))
            .Select(static (pair, _) => pair.Left && pair.Right);
}
