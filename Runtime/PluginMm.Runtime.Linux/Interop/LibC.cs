using System.Runtime.InteropServices;

namespace PluginMm.Runtime.Linux.Interop;

/// <summary>
/// The libc entry points the host target needs, declared with <see cref="LibraryImportAttribute"/> (source-generated,
/// blittable, no runtime marshalling). Every call sets the last error, read back with
/// <see cref="Marshal.GetLastPInvokeError"/>. Values are Linux x86-64/arm64 (asm-generic) numbers.
/// </summary>
internal static unsafe partial class LibC
{
    private const string Lib = "libc";

    /// <summary><c>PROT_NONE</c>.</summary>
    public const int PROT_NONE = 0;
    /// <summary><c>PROT_READ</c>.</summary>
    public const int PROT_READ = 1;
    /// <summary><c>PROT_WRITE</c>.</summary>
    public const int PROT_WRITE = 2;
    /// <summary><c>MAP_SHARED</c>.</summary>
    public const int MAP_SHARED = 0x01;
    /// <summary><c>MAP_PRIVATE</c>.</summary>
    public const int MAP_PRIVATE = 0x02;
    /// <summary><c>MAP_FIXED</c>.</summary>
    public const int MAP_FIXED = 0x10;
    /// <summary><c>MAP_ANONYMOUS</c>.</summary>
    public const int MAP_ANONYMOUS = 0x20;
    /// <summary><c>MAP_NORESERVE</c>.</summary>
    public const int MAP_NORESERVE = 0x4000;
    /// <summary><c>MAP_POPULATE</c>.</summary>
    public const int MAP_POPULATE = 0x8000;
    /// <summary><c>MAP_HUGETLB</c>.</summary>
    public const int MAP_HUGETLB = 0x40000;
    /// <summary><c>MREMAP_MAYMOVE</c>.</summary>
    public const int MREMAP_MAYMOVE = 1;
    /// <summary><c>MREMAP_FIXED</c>.</summary>
    public const int MREMAP_FIXED = 2;

    /// <summary><c>MFD_CLOEXEC</c>.</summary>
    public const uint MFD_CLOEXEC = 0x0001;
    /// <summary><c>MFD_HUGETLB</c>.</summary>
    public const uint MFD_HUGETLB = 0x0004;

    /// <summary><c>FALLOC_FL_KEEP_SIZE</c>.</summary>
    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    /// <summary><c>FALLOC_FL_PUNCH_HOLE</c>.</summary>
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;

    /// <summary><c>O_RDONLY</c>.</summary>
    public const int O_RDONLY = 0;
    /// <summary><c>O_RDWR</c>.</summary>
    public const int O_RDWR = 2;
    /// <summary><c>O_CLOEXEC</c>.</summary>
    public const int O_CLOEXEC = 0x80000;

    /// <summary><c>POLLIN</c>.</summary>
    public const short POLLIN = 0x001;
    /// <summary><c>POLLERR</c>.</summary>
    public const short POLLERR = 0x008;
    /// <summary><c>POLLHUP</c>.</summary>
    public const short POLLHUP = 0x010;
    /// <summary><c>POLLNVAL</c>.</summary>
    public const short POLLNVAL = 0x020;

    /// <summary><c>EPOLL_CLOEXEC</c>.</summary>
    public const int EPOLL_CLOEXEC = 0x80000;
    /// <summary><c>EPOLL_CTL_ADD</c>.</summary>
    public const int EPOLL_CTL_ADD = 1;
    /// <summary><c>EPOLL_CTL_DEL</c>.</summary>
    public const int EPOLL_CTL_DEL = 2;
    /// <summary><c>EPOLLIN</c>.</summary>
    public const uint EPOLLIN = 0x001;
    /// <summary><c>EPOLLERR</c>.</summary>
    public const uint EPOLLERR = 0x008;
    /// <summary><c>EPOLLHUP</c>.</summary>
    public const uint EPOLLHUP = 0x010;

    /// <summary><c>EFD_CLOEXEC</c>.</summary>
    public const int EFD_CLOEXEC = 0x80000;
    /// <summary><c>EFD_NONBLOCK</c>.</summary>
    public const int EFD_NONBLOCK = 0x800;

    /// <summary><c>F_GETFL</c>.</summary>
    public const int F_GETFL = 3;
    /// <summary><c>F_SETFL</c>.</summary>
    public const int F_SETFL = 4;

    /// <summary><c>_SC_PAGESIZE</c>.</summary>
    public const int _SC_PAGESIZE = 30;

    /// <summary>The <c>userfaultfd</c> system call number of this architecture (x86-64: 323, arm64: 282), or -1.</summary>
    public static readonly long SYS_userfaultfd = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 323,
        Architecture.Arm64 => 282,
        _ => -1,
    };

    /// <summary><c>syscall(2)</c> with one integer argument.</summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall1(long number, long arg0);

    /// <summary><c>open(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    /// <summary><c>close(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    /// <summary><c>ioctl(2)</c> with a pointer argument.</summary>
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* arg);

    /// <summary><c>ioctl(2)</c> with an integer argument.</summary>
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int IoctlInt(int fd, nuint request, nint arg);

    /// <summary><c>read(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buf, nuint count);

    /// <summary><c>write(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buf, nuint count);

    /// <summary><c>pread(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "pread64", SetLastError = true)]
    public static partial nint Pread(int fd, void* buf, nuint count, long offset);

    /// <summary><c>pwrite(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "pwrite64", SetLastError = true)]
    public static partial nint Pwrite(int fd, void* buf, nuint count, long offset);

    /// <summary><c>fcntl(2)</c> with an integer argument.</summary>
    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int cmd, nint arg);

    /// <summary><c>poll(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint nfds, int timeout);

    /// <summary><c>epoll_create1(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    /// <summary><c>epoll_ctl(2)</c>; <paramref name="ev"/> points to a native <c>struct epoll_event</c> (see <see cref="EpollEvent"/>).</summary>
    [LibraryImport(Lib, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epfd, int op, int fd, void* ev);

    /// <summary><c>epoll_wait(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, void* events, int maxevents, int timeout);

    /// <summary><c>eventfd(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    /// <summary><c>mmap(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    /// <summary><c>munmap(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint addr, nuint length);

    /// <summary><c>mremap(2)</c> with a new address (MREMAP_FIXED).</summary>
    [LibraryImport(Lib, EntryPoint = "mremap", SetLastError = true)]
    public static partial nint Mremap(nint oldAddress, nuint oldSize, nuint newSize, int flags, nint newAddress);

    /// <summary><c>madvise(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint addr, nuint length, int advice);

    /// <summary><c>mprotect(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(nint addr, nuint length, int prot);

    /// <summary><c>memfd_create(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MemfdCreate(string name, uint flags);

    /// <summary><c>ftruncate(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "ftruncate64", SetLastError = true)]
    public static partial int Ftruncate(int fd, long length);

    /// <summary><c>fallocate(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "fallocate64", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    /// <summary><c>sysconf(3)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "sysconf", SetLastError = true)]
    public static partial long Sysconf(int name);

    /// <summary><c>gettid(2)</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "gettid")]
    public static partial int GetTid();

    /// <summary>The errno of the last call above, as <see cref="Errno"/>.</summary>
    public static Errno LastErrno => (Errno)Marshal.GetLastPInvokeError();

    /// <summary>System page size.</summary>
    public static readonly int PageSize = (int)Sysconf(_SC_PAGESIZE);
}

/// <summary><c>struct pollfd</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    /// <summary>File descriptor.</summary>
    public int Fd;
    /// <summary>Requested events.</summary>
    public short Events;
    /// <summary>Returned events.</summary>
    public short REvents;
}

/// <summary>
/// <c>struct epoll_event</c>: packed (12 bytes) on x86-64 (<c>__EPOLL_PACKED</c>), naturally aligned (16 bytes) on
/// other 64-bit architectures; the data word's offset differs accordingly.
/// </summary>
internal static class EpollEvent
{
    /// <summary>Size of one native event.</summary>
    public static readonly int Size = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    /// <summary>Offset of the 64-bit <c>data</c> member.</summary>
    public static readonly int DataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;
}
