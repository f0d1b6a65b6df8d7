namespace PluginMm.Runtime;

/// <summary><c>MADV_*</c> advice values handled by the model.</summary>
public enum Advice
{
    /// <summary><c>MADV_DONTNEED</c> (4): zap the range; anonymous memory reads back as zero, file memory refaults from the page cache.</summary>
    DontNeed = 4,
    /// <summary><c>MADV_REMOVE</c> (9): punch the range out of a shared file mapping's backing store.</summary>
    Remove = 9,
    /// <summary><c>MADV_DONTFORK</c> (10).</summary>
    DontFork = 10,
    /// <summary><c>MADV_DOFORK</c> (11).</summary>
    DoFork = 11,
}
