namespace PluginMm.Runtime;

/// <summary><c>MAP_*</c> flags (x86-64 values).</summary>
[Flags]
public enum MapFlags
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary><c>MAP_SHARED</c>.</summary>
    Shared = 0x01,
    /// <summary><c>MAP_PRIVATE</c>.</summary>
    Private = 0x02,
    /// <summary><c>MAP_FIXED</c>.</summary>
    Fixed = 0x10,
    /// <summary><c>MAP_ANONYMOUS</c>.</summary>
    Anonymous = 0x20,
    /// <summary><c>MAP_NORESERVE</c>.</summary>
    NoReserve = 0x4000,
    /// <summary><c>MAP_POPULATE</c>.</summary>
    Populate = 0x8000,
}
