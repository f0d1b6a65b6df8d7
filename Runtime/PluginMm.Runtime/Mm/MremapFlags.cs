namespace PluginMm.Runtime;

/// <summary><c>MREMAP_*</c>.</summary>
[Flags]
public enum MremapFlags
{
    /// <summary>None: resize in place only.</summary>
    None = 0,
    /// <summary><c>MREMAP_MAYMOVE</c>.</summary>
    MayMove = 1,
    /// <summary><c>MREMAP_FIXED</c>.</summary>
    Fixed = 2,
    /// <summary><c>MREMAP_DONTUNMAP</c>.</summary>
    DontUnmap = 4,
}
