using System.Runtime.InteropServices;

namespace PluginMm.Userfaultfd;

/// <summary>Constants of <c>include/uapi/linux/userfaultfd.h</c>.</summary>
public static class Uapi
{
    /// <summary><c>UFFD_API</c>.</summary>
    public const ulong UFFD_API = 0xAA;
    /// <summary><c>UFFD_USER_MODE_ONLY</c> (userfaultfd(2) flag).</summary>
    public const int UFFD_USER_MODE_ONLY = 1;
    /// <summary><c>O_NONBLOCK</c> on x86-64/arm64.</summary>
    public const int O_NONBLOCK = 0x800;
    /// <summary><c>O_CLOEXEC</c> on x86-64/arm64.</summary>
    public const int O_CLOEXEC = 0x80000;

    /// <summary><c>UFFDIO_REGISTER</c>.</summary>
    public const uint UFFDIO_REGISTER = 0xC020AA00;
    /// <summary><c>UFFDIO_UNREGISTER</c>.</summary>
    public const uint UFFDIO_UNREGISTER = 0x8010AA01;
    /// <summary><c>UFFDIO_WAKE</c>.</summary>
    public const uint UFFDIO_WAKE = 0x8010AA02;
    /// <summary><c>UFFDIO_COPY</c>.</summary>
    public const uint UFFDIO_COPY = 0xC028AA03;
    /// <summary><c>UFFDIO_ZEROPAGE</c>.</summary>
    public const uint UFFDIO_ZEROPAGE = 0xC020AA04;
    /// <summary><c>UFFDIO_MOVE</c>.</summary>
    public const uint UFFDIO_MOVE = 0xC028AA05;
    /// <summary><c>UFFDIO_WRITEPROTECT</c>.</summary>
    public const uint UFFDIO_WRITEPROTECT = 0xC018AA06;
    /// <summary><c>UFFDIO_CONTINUE</c>.</summary>
    public const uint UFFDIO_CONTINUE = 0xC020AA07;
    /// <summary><c>UFFDIO_POISON</c>.</summary>
    public const uint UFFDIO_POISON = 0xC020AA08;
    /// <summary><c>UFFDIO_API</c>.</summary>
    public const uint UFFDIO_API = 0xC018AA3F;
    /// <summary><c>USERFAULTFD_IOC_NEW</c> on /dev/userfaultfd.</summary>
    public const uint USERFAULTFD_IOC_NEW = 0x0000AA00;

    /// <summary><c>UFFD_API_IOCTLS</c>: REGISTER | UNREGISTER | API.</summary>
    public const UffdIoctls UFFD_API_IOCTLS = UffdIoctls.Register | UffdIoctls.Unregister | UffdIoctls.Api;
    /// <summary><c>UFFD_API_RANGE_IOCTLS</c>.</summary>
    public const UffdIoctls UFFD_API_RANGE_IOCTLS = UffdIoctls.Wake | UffdIoctls.Copy | UffdIoctls.ZeroPage | UffdIoctls.Move
        | UffdIoctls.WriteProtect | UffdIoctls.Continue | UffdIoctls.Poison;
    /// <summary><c>UFFD_API_RANGE_IOCTLS_BASIC</c> (any hugetlb VMA in the range).</summary>
    public const UffdIoctls UFFD_API_RANGE_IOCTLS_BASIC = UffdIoctls.Wake | UffdIoctls.Copy | UffdIoctls.WriteProtect
        | UffdIoctls.Continue | UffdIoctls.Poison;
}

/// <summary><c>uffdio_api.features</c> bits.</summary>
[Flags]
public enum UffdFeatures : ulong
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary><c>UFFD_FEATURE_PAGEFAULT_FLAG_WP</c>.</summary>
    PagefaultFlagWp = 1 << 0,
    /// <summary><c>UFFD_FEATURE_EVENT_FORK</c>.</summary>
    EventFork = 1 << 1,
    /// <summary><c>UFFD_FEATURE_EVENT_REMAP</c>.</summary>
    EventRemap = 1 << 2,
    /// <summary><c>UFFD_FEATURE_EVENT_REMOVE</c>.</summary>
    EventRemove = 1 << 3,
    /// <summary><c>UFFD_FEATURE_MISSING_HUGETLBFS</c>.</summary>
    MissingHugetlbfs = 1 << 4,
    /// <summary><c>UFFD_FEATURE_MISSING_SHMEM</c>.</summary>
    MissingShmem = 1 << 5,
    /// <summary><c>UFFD_FEATURE_EVENT_UNMAP</c>.</summary>
    EventUnmap = 1 << 6,
    /// <summary><c>UFFD_FEATURE_SIGBUS</c>.</summary>
    SigBus = 1 << 7,
    /// <summary><c>UFFD_FEATURE_THREAD_ID</c>.</summary>
    ThreadId = 1 << 8,
    /// <summary><c>UFFD_FEATURE_MINOR_HUGETLBFS</c>.</summary>
    MinorHugetlbfs = 1 << 9,
    /// <summary><c>UFFD_FEATURE_MINOR_SHMEM</c>.</summary>
    MinorShmem = 1 << 10,
    /// <summary><c>UFFD_FEATURE_EXACT_ADDRESS</c>.</summary>
    ExactAddress = 1 << 11,
    /// <summary><c>UFFD_FEATURE_WP_HUGETLBFS_SHMEM</c>.</summary>
    WpHugetlbfsShmem = 1 << 12,
    /// <summary><c>UFFD_FEATURE_WP_UNPOPULATED</c>.</summary>
    WpUnpopulated = 1 << 13,
    /// <summary><c>UFFD_FEATURE_POISON</c>.</summary>
    Poison = 1 << 14,
    /// <summary><c>UFFD_FEATURE_WP_ASYNC</c>.</summary>
    WpAsync = 1 << 15,
    /// <summary><c>UFFD_FEATURE_MOVE</c>.</summary>
    Move = 1 << 16,
}

/// <summary>Bits of the <c>ioctls</c> masks returned by UFFDIO_API and UFFDIO_REGISTER (bit = ioctl number).</summary>
[Flags]
public enum UffdIoctls : ulong
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary><c>_UFFDIO_REGISTER</c>.</summary>
    Register = 1UL << 0x00,
    /// <summary><c>_UFFDIO_UNREGISTER</c>.</summary>
    Unregister = 1UL << 0x01,
    /// <summary><c>_UFFDIO_WAKE</c>.</summary>
    Wake = 1UL << 0x02,
    /// <summary><c>_UFFDIO_COPY</c>.</summary>
    Copy = 1UL << 0x03,
    /// <summary><c>_UFFDIO_ZEROPAGE</c>.</summary>
    ZeroPage = 1UL << 0x04,
    /// <summary><c>_UFFDIO_MOVE</c>.</summary>
    Move = 1UL << 0x05,
    /// <summary><c>_UFFDIO_WRITEPROTECT</c>.</summary>
    WriteProtect = 1UL << 0x06,
    /// <summary><c>_UFFDIO_CONTINUE</c>.</summary>
    Continue = 1UL << 0x07,
    /// <summary><c>_UFFDIO_POISON</c>.</summary>
    Poison = 1UL << 0x08,
    /// <summary><c>_UFFDIO_API</c>.</summary>
    Api = 1UL << 0x3F,
}

/// <summary><c>UFFDIO_COPY_MODE_*</c>.</summary>
[Flags]
public enum UffdCopyMode : ulong
{
    /// <summary>Wake the faulting threads afterwards.</summary>
    None = 0,
    /// <summary><c>UFFDIO_COPY_MODE_DONTWAKE</c>.</summary>
    DontWake = 1 << 0,
    /// <summary><c>UFFDIO_COPY_MODE_WP</c>: map write-protected.</summary>
    Wp = 1 << 1,
}

/// <summary><c>UFFDIO_ZEROPAGE_MODE_*</c>.</summary>
[Flags]
public enum UffdZeroPageMode : ulong
{
    /// <summary>Wake.</summary>
    None = 0,
    /// <summary><c>UFFDIO_ZEROPAGE_MODE_DONTWAKE</c>.</summary>
    DontWake = 1 << 0,
}

/// <summary><c>UFFDIO_CONTINUE_MODE_*</c>.</summary>
[Flags]
public enum UffdContinueMode : ulong
{
    /// <summary>Wake.</summary>
    None = 0,
    /// <summary><c>UFFDIO_CONTINUE_MODE_DONTWAKE</c>.</summary>
    DontWake = 1 << 0,
    /// <summary><c>UFFDIO_CONTINUE_MODE_WP</c>.</summary>
    Wp = 1 << 1,
}

/// <summary><c>UFFDIO_WRITEPROTECT_MODE_*</c>.</summary>
[Flags]
public enum UffdWriteProtectMode : ulong
{
    /// <summary>Unprotect and wake.</summary>
    None = 0,
    /// <summary><c>UFFDIO_WRITEPROTECT_MODE_WP</c>.</summary>
    Wp = 1 << 0,
    /// <summary><c>UFFDIO_WRITEPROTECT_MODE_DONTWAKE</c>.</summary>
    DontWake = 1 << 1,
}

/// <summary><c>UFFDIO_POISON_MODE_*</c>.</summary>
[Flags]
public enum UffdPoisonMode : ulong
{
    /// <summary>Wake.</summary>
    None = 0,
    /// <summary><c>UFFDIO_POISON_MODE_DONTWAKE</c>.</summary>
    DontWake = 1 << 0,
}

/// <summary><c>UFFDIO_MOVE_MODE_*</c>.</summary>
[Flags]
public enum UffdMoveMode : ulong
{
    /// <summary>Wake.</summary>
    None = 0,
    /// <summary><c>UFFDIO_MOVE_MODE_DONTWAKE</c>.</summary>
    DontWake = 1 << 0,
    /// <summary><c>UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES</c>.</summary>
    AllowSrcHoles = 1 << 1,
}

/// <summary><c>uffd_msg.event</c>.</summary>
public enum UffdEvent : byte
{
    /// <summary>No event (a zeroed message).</summary>
    None = 0,
    /// <summary><c>UFFD_EVENT_PAGEFAULT</c>.</summary>
    Pagefault = 0x12,
    /// <summary><c>UFFD_EVENT_FORK</c>.</summary>
    Fork = 0x13,
    /// <summary><c>UFFD_EVENT_REMAP</c>.</summary>
    Remap = 0x14,
    /// <summary><c>UFFD_EVENT_REMOVE</c>.</summary>
    Remove = 0x15,
    /// <summary><c>UFFD_EVENT_UNMAP</c>.</summary>
    Unmap = 0x16,
}

/// <summary><c>UFFD_PAGEFAULT_FLAG_*</c>. Neither WP nor MINOR means a MISSING fault.</summary>
[Flags]
public enum UffdPagefaultFlags : ulong
{
    /// <summary>A MISSING read fault.</summary>
    None = 0,
    /// <summary><c>UFFD_PAGEFAULT_FLAG_WRITE</c>.</summary>
    Write = 1 << 0,
    /// <summary><c>UFFD_PAGEFAULT_FLAG_WP</c>.</summary>
    Wp = 1 << 1,
    /// <summary><c>UFFD_PAGEFAULT_FLAG_MINOR</c>.</summary>
    Minor = 1 << 2,
}

/// <summary>
/// <c>struct uffd_msg</c>: 32 bytes, laid out exactly as the kernel writes it, so a host handler reads it straight
/// from <c>read(2)</c>.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct UffdMsg : IEquatable<UffdMsg>
{
    /// <summary>The event.</summary>
    [FieldOffset(0)] public UffdEvent Event;
    [FieldOffset(8)] private ulong _a0;
    [FieldOffset(16)] private ulong _a1;
    [FieldOffset(24)] private ulong _a2;

    /// <summary>A PAGEFAULT message.</summary>
    public static UffdMsg Pagefault(UffdPagefaultFlags flags, ulong address, uint ptid)
        => new() { Event = UffdEvent.Pagefault, _a0 = (ulong)flags, _a1 = address, _a2 = ptid };

    /// <summary>A FORK message carrying the new userfaultfd's number.</summary>
    public static UffdMsg Fork(uint ufd) => new() { Event = UffdEvent.Fork, _a0 = ufd };

    /// <summary>A REMAP message.</summary>
    public static UffdMsg Remap(ulong from, ulong to, ulong len) => new() { Event = UffdEvent.Remap, _a0 = from, _a1 = to, _a2 = len };

    /// <summary>A REMOVE or UNMAP message.</summary>
    public static UffdMsg Remove(UffdEvent ev, ulong start, ulong end) => new() { Event = ev, _a0 = start, _a1 = end };

    /// <summary><c>arg.pagefault.flags</c>.</summary>
    public readonly UffdPagefaultFlags PagefaultFlags => (UffdPagefaultFlags)_a0;
    /// <summary><c>arg.pagefault.address</c>.</summary>
    public readonly ulong PagefaultAddress => _a1;
    /// <summary><c>arg.pagefault.feat.ptid</c> (THREAD_ID only).</summary>
    public readonly uint PagefaultPtid => (uint)_a2;
    /// <summary><c>arg.fork.ufd</c>.</summary>
    public readonly uint ForkUfd => (uint)_a0;
    /// <summary><c>arg.remap.from</c>.</summary>
    public readonly ulong RemapFrom => _a0;
    /// <summary><c>arg.remap.to</c>.</summary>
    public readonly ulong RemapTo => _a1;
    /// <summary><c>arg.remap.len</c>.</summary>
    public readonly ulong RemapLen => _a2;
    /// <summary><c>arg.remove.start</c> (REMOVE and UNMAP).</summary>
    public readonly ulong RemoveStart => _a0;
    /// <summary><c>arg.remove.end</c> (REMOVE and UNMAP).</summary>
    public readonly ulong RemoveEnd => _a1;

    /// <inheritdoc/>
    public readonly bool Equals(UffdMsg other) => Event == other.Event && _a0 == other._a0 && _a1 == other._a1 && _a2 == other._a2;
    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is UffdMsg m && Equals(m);
    /// <inheritdoc/>
    public override readonly int GetHashCode() => HashCode.Combine(Event, _a0, _a1, _a2);
    /// <summary>Equality.</summary>
    public static bool operator ==(UffdMsg a, UffdMsg b) => a.Equals(b);
    /// <summary>Inequality.</summary>
    public static bool operator !=(UffdMsg a, UffdMsg b) => !a.Equals(b);

    /// <inheritdoc/>
    public override readonly string ToString() => Event switch
    {
        UffdEvent.Pagefault => $"PAGEFAULT flags={PagefaultFlags} address=0x{PagefaultAddress:x} ptid={PagefaultPtid}",
        UffdEvent.Fork => $"FORK ufd={ForkUfd}",
        UffdEvent.Remap => $"REMAP from=0x{RemapFrom:x} to=0x{RemapTo:x} len=0x{RemapLen:x}",
        UffdEvent.Remove or UffdEvent.Unmap => $"{Event.ToString().ToUpperInvariant()} start=0x{RemoveStart:x} end=0x{RemoveEnd:x}",
        _ => $"event=0x{(byte)Event:x}",
    };
}
