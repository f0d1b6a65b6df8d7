namespace PluginMm.Runtime;

/// <summary><c>PROT_*</c>.</summary>
[Flags]
public enum Prot
{
    /// <summary><c>PROT_NONE</c>.</summary>
    None = 0,
    /// <summary><c>PROT_READ</c>.</summary>
    Read = 1,
    /// <summary><c>PROT_WRITE</c>.</summary>
    Write = 2,
    /// <summary><c>PROT_EXEC</c>.</summary>
    Exec = 4,
}
