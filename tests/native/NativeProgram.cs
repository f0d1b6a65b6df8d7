using System.Collections.Concurrent;
using System.Diagnostics;

namespace PluginMm.TestNative;

/// <summary>
/// A C test program compiled at test time with gcc (the uapi layout checker, <c>uffd_helper</c>): one build per source
/// file and test process, into the temp directory, deleted at process exit. When gcc or the kernel headers are missing
/// the build fails with a reason for <c>Assert.Inconclusive</c>, never silently.
/// </summary>
public static class NativeProgram
{
    private static readonly ConcurrentDictionary<string, Lazy<(string? Exe, string? Reason)>> s_built = new(StringComparer.Ordinal);

    /// <summary>
    /// Compiles <paramref name="source"/> (a path, or a file name next to the test assembly) once per process; returns the
    /// executable's path, or null with <paramref name="reason"/> saying why it could not be built.
    /// </summary>
    public static string? TryBuild(string source, out string? reason, string extraFlags = "")
    {
        string src = Path.IsPathRooted(source) ? source : Path.Combine(AppContext.BaseDirectory, source);
        var built = s_built.GetOrAdd(src + "\0" + extraFlags, _ => new Lazy<(string?, string?)>(() => Build(src, extraFlags))).Value;
        reason = built.Reason;
        return built.Exe;
    }

    private static (string?, string?) Build(string src, string extraFlags)
    {
        if (!File.Exists(src))
            return (null, $"native source {src} not found next to the test assembly");
        if (!File.Exists("/usr/include/linux/userfaultfd.h"))
            return (null, "kernel UAPI headers absent (/usr/include/linux/userfaultfd.h; install linux-libc-dev)");
        string exe = Path.Combine(Path.GetTempPath(), $"pluginmm-{Path.GetFileNameWithoutExtension(src)}-{Environment.ProcessId}");
        try
        {
            var (rc, output) = Run("gcc", $"-Wall -O1 {extraFlags} -o {exe} {src}", TimeSpan.FromSeconds(60));
            if (rc != 0)
                return (null, $"gcc failed ({rc}): {output}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (null, $"gcc not available: {e.Message}");
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(exe);
        return (exe, null);
    }

    /// <summary>Runs <paramref name="file"/> to completion (killed after <paramref name="timeout"/>); exit code and stdout+stderr.</summary>
    public static (int ExitCode, string Output) Run(string file, string args, TimeSpan timeout)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} hung");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
