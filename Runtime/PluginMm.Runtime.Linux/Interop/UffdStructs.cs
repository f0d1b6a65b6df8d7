using System.Runtime.InteropServices;

namespace PluginMm.Runtime.Linux.Interop;

// The argument structures of include/uapi/linux/userfaultfd.h, laid out as the kernel reads them (all members 64-bit,
// so sequential layout equals the C layout on every 64-bit Linux ABI). Output members (ioctls, copy, zeropage,
// mapped, updated, move) are written by the kernel and never read by it. Sizes are checked against the kernel's
// headers at test time (UapiLayoutTests), and every size is encoded in the request code (_IOC_SIZE).

/// <summary><c>struct uffdio_api</c> (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioApi
{
    /// <summary><c>api</c>: must be <c>UFFD_API</c>.</summary>
    public ulong Api;
    /// <summary><c>features</c>: requested in, available out.</summary>
    public ulong Features;
    /// <summary><c>ioctls</c> (out).</summary>
    public ulong Ioctls;
}

/// <summary><c>struct uffdio_range</c> (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRange
{
    /// <summary><c>start</c>.</summary>
    public ulong Start;
    /// <summary><c>len</c>.</summary>
    public ulong Len;
}

/// <summary><c>struct uffdio_register</c> (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRegister
{
    /// <summary><c>range</c>.</summary>
    public UffdioRange Range;
    /// <summary><c>mode</c>: <c>UFFDIO_REGISTER_MODE_*</c>.</summary>
    public ulong Mode;
    /// <summary><c>ioctls</c> (out): the range ioctls the registered range supports.</summary>
    public ulong Ioctls;
}

/// <summary><c>struct uffdio_copy</c> (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioCopy
{
    /// <summary><c>dst</c>.</summary>
    public ulong Dst;
    /// <summary><c>src</c>.</summary>
    public ulong Src;
    /// <summary><c>len</c>.</summary>
    public ulong Len;
    /// <summary><c>mode</c>.</summary>
    public ulong Mode;
    /// <summary><c>copy</c> (out, signed): bytes copied or <c>-errno</c>.</summary>
    public long Copy;
}

/// <summary><c>struct uffdio_zeropage</c> (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioZeropage
{
    /// <summary><c>range</c>.</summary>
    public UffdioRange Range;
    /// <summary><c>mode</c>.</summary>
    public ulong Mode;
    /// <summary><c>zeropage</c> (out, signed).</summary>
    public long Zeropage;
}

/// <summary><c>struct uffdio_writeprotect</c> (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioWriteprotect
{
    /// <summary><c>range</c>.</summary>
    public UffdioRange Range;
    /// <summary><c>mode</c>.</summary>
    public ulong Mode;
}

/// <summary><c>struct uffdio_continue</c> (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioContinue
{
    /// <summary><c>range</c>.</summary>
    public UffdioRange Range;
    /// <summary><c>mode</c>.</summary>
    public ulong Mode;
    /// <summary><c>mapped</c> (out, signed).</summary>
    public long Mapped;
}

/// <summary><c>struct uffdio_poison</c> (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioPoison
{
    /// <summary><c>range</c>.</summary>
    public UffdioRange Range;
    /// <summary><c>mode</c>.</summary>
    public ulong Mode;
    /// <summary><c>updated</c> (out, signed).</summary>
    public long Updated;
}

/// <summary><c>struct uffdio_move</c> (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioMove
{
    /// <summary><c>dst</c>.</summary>
    public ulong Dst;
    /// <summary><c>src</c>.</summary>
    public ulong Src;
    /// <summary><c>len</c>.</summary>
    public ulong Len;
    /// <summary><c>mode</c>.</summary>
    public ulong Mode;
    /// <summary><c>move</c> (out, signed).</summary>
    public long Move;
}

/// <summary>
/// Linux <c>_IOC</c> request-code encoding (asm-generic/ioctl.h: nr bits 0-7, type 8-15, size 16-29, dir 30-31), used to
/// derive every UFFDIO request code from its number and argument size, so a wrong struct size cannot hide behind a
/// hand-written constant.
/// </summary>
internal static class IoctlCodes
{
    /// <summary><c>_IOC_NONE</c>.</summary>
    public const uint None = 0;
    /// <summary><c>_IOC_WRITE</c>.</summary>
    public const uint Write = 1;
    /// <summary><c>_IOC_READ</c>.</summary>
    public const uint Read = 2;

    /// <summary><c>_IOC(dir, type, nr, size)</c>.</summary>
    public static uint Ioc(uint dir, uint type, uint nr, int size) => (dir << 30) | ((uint)size << 16) | (type << 8) | nr;

    /// <summary><c>_IOWR(0xAA, nr, T)</c>.</summary>
    public static unsafe uint Iowr<T>(uint nr) where T : unmanaged => Ioc(Read | Write, 0xAA, nr, sizeof(T));

    /// <summary><c>_IOR(0xAA, nr, T)</c>.</summary>
    public static unsafe uint Ior<T>(uint nr) where T : unmanaged => Ioc(Read, 0xAA, nr, sizeof(T));
}
