using System.Runtime.InteropServices;
using PluginMm.Userfaultfd;

namespace PluginMm.DiffFuzz;

/// <summary>
/// The raw system calls the host side needs with arbitrary arguments (fixed placement, any prot/advice/flags), which
/// the typed wrappers of PluginMm.Runtime.Linux deliberately do not offer. Each returns the errno.
/// </summary>
internal static unsafe partial class Native
{
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
    public const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    public const int MAP_FIXED_NOREPLACE = 0x100000;
    private const long SYS_cachestat = 451;

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mmap(nint addr, nuint len, int prot, int flags, int fd, long off);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(nint addr, nuint len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mprotect(nint addr, nuint len, int prot);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint addr, nuint len, int advice);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mremap(nint old, nuint oldLen, nuint newLen, int flags, nint newAddr);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fallocate(int fd, int mode, long off, long len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstat(int fd, byte* buf);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long n, long a1, long a2, long a3, long a4);

    private static Errno Last => (Errno)Marshal.GetLastPInvokeError();

    public static Errno Mmap(ulong addr, ulong len, int prot, int flags, int fd, long off, out ulong result)
    {
        nint r = mmap((nint)addr, (nuint)len, prot, flags, fd, off);
        result = r == -1 ? 0 : (ulong)r;
        return r == -1 ? Last : Errno.None;
    }

    public static Errno Munmap(ulong addr, ulong len) => munmap((nint)addr, (nuint)len) < 0 ? Last : Errno.None;

    public static Errno Mprotect(ulong addr, ulong len, int prot) => mprotect((nint)addr, (nuint)len, prot) < 0 ? Last : Errno.None;

    public static Errno Madvise(ulong addr, ulong len, int advice) => madvise((nint)addr, (nuint)len, advice) < 0 ? Last : Errno.None;

    public static Errno Mremap(ulong old, ulong oldLen, ulong newLen, int flags, ulong newAddr, out ulong result)
    {
        nint r = mremap((nint)old, (nuint)oldLen, (nuint)newLen, flags, (nint)newAddr);
        result = r == -1 ? 0 : (ulong)r;
        return r == -1 ? Last : Errno.None;
    }

    /// <summary><c>fallocate(PUNCH_HOLE|KEEP_SIZE)</c>.</summary>
    public static Errno PunchHole(int fd, long off, long len) => fallocate(fd, 0x02 | 0x01, off, len) < 0 ? Last : Errno.None;

    /// <summary><c>st_blocks</c> of <c>fstat</c> (512-byte units), -1 on error.</summary>
    public static long Blocks(int fd)
    {
        byte* st = stackalloc byte[256];
        return fstat(fd, st) < 0 ? -1 : *(long*)(st + 64);
    }

    /// <summary><c>cachestat(2)</c> (Linux 6.5): pages of [off, off+len) in the page cache, or -1 (e.g. hugetlbfs: EOPNOTSUPP).</summary>
    public static long CachedPages(int fd, long off, long len)
    {
        long* range = stackalloc long[2];
        long* cs = stackalloc long[5];
        range[0] = off;
        range[1] = len;
        return syscall(SYS_cachestat, fd, (long)range, (long)cs, 0) < 0 ? -1 : cs[0];
    }
}
