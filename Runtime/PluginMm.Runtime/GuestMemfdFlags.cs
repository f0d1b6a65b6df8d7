namespace PluginMm.Runtime;

/// <summary>guest_memfd creation flags (<c>include/uapi/linux/kvm.h</c>).</summary>
public static class GuestMemfdFlags
{
    /// <summary><c>GUEST_MEMFD_FLAG_MMAP</c>: the file may be mmapped.</summary>
    public const ulong Mmap = 1UL << 0;

    /// <summary><c>GUEST_MEMFD_FLAG_INIT_SHARED</c>: memory starts shared with the host (faultable, uffd-admissible).</summary>
    public const ulong InitShared = 1UL << 1;
}
