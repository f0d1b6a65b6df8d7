using PluginMm.Runtime.Linux.Interop;

namespace PluginMm.Runtime.Linux;

/// <summary><c>madvise(2)</c> advice values used around userfaultfd.</summary>
public enum HostAdvice
{
    /// <summary><c>MADV_DONTNEED</c>: zap the range (anon: pages and uffd-wp markers freed; file: page cache kept).</summary>
    DontNeed = 4,
    /// <summary><c>MADV_REMOVE</c>: punch the backing store (shmem/hugetlb) and zap.</summary>
    Remove = 9,
    /// <summary><c>MADV_DONTFORK</c>.</summary>
    DontFork = 10,
    /// <summary><c>MADV_HUGEPAGE</c>.</summary>
    HugePage = 14,
    /// <summary><c>MADV_NOHUGEPAGE</c>.</summary>
    NoHugePage = 15,
    /// <summary><c>MADV_PAGEOUT</c>.</summary>
    PageOut = 21,
}

/// <summary>A mapping of this process; <see cref="Dispose"/> unmaps it.</summary>
public sealed unsafe class HostMapping : IDisposable
{
    private nint _address;

    internal HostMapping(nint address, nuint length, int pageSize, bool shared)
    {
        _address = address;
        Length = length;
        PageSize = pageSize;
        Shared = shared;
    }

    /// <summary>Start address (0 after <see cref="Dispose"/>).</summary>
    public nint Address => _address;

    /// <summary>Start address as the <c>ulong</c> the uffd ioctls take.</summary>
    public ulong Start => (ulong)_address;

    /// <summary>Length in bytes.</summary>
    public nuint Length { get; }

    /// <summary>The page size of the mapping (the huge page size for hugetlb).</summary>
    public int PageSize { get; }

    /// <summary>Whether the mapping is <c>MAP_SHARED</c>.</summary>
    public bool Shared { get; }

    /// <summary>A byte pointer to <paramref name="offset"/>. Touching it may fault into a userfaultfd: do it on a thread
    /// that is not the handler's.</summary>
    public byte* Pointer(ulong offset) => (byte*)_address + offset;

    /// <summary>A span over [offset, offset+length).</summary>
    public Span<byte> Span(ulong offset, int length) => new((byte*)_address + offset, length);

    /// <summary>Forgets the address without unmapping (after the range was unmapped or moved by other means).</summary>
    public void Forget() => _address = 0;

    /// <summary><c>munmap(2)</c>.</summary>
    public void Dispose()
    {
        nint a = Interlocked.Exchange(ref _address, 0);
        if (a != 0)
            LibC.Munmap(a, Length);
    }
}

/// <summary>Real memory to fault on: anonymous mappings, madvise, mremap, and access through the kernel.</summary>
public static unsafe class HostMemory
{
    /// <summary>The default huge page size (<c>Hugepagesize</c> of /proc/meminfo), or 0 if unknown.</summary>
    public static int DefaultHugePageSize { get; } = ReadHugePageSize();

    private static int ReadHugePageSize()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("Hugepagesize:", StringComparison.Ordinal))
                    return int.Parse(line.AsSpan(13).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }

    private static readonly nint MapFailed = -1;

    /// <summary>Maps private anonymous memory (<c>MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE</c>), read-write.</summary>
    public static Errno TryMapAnonymous(nuint length, out HostMapping? mapping, bool populate = false)
    {
        int flags = LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE | (populate ? LibC.MAP_POPULATE : 0);
        return TryMapRaw(0, length, flags, -1, 0, LibC.PageSize, out mapping);
    }

    /// <summary>Maps private anonymous memory or throws <see cref="IOException"/> with the errno.</summary>
    public static HostMapping MapAnonymous(nuint length, bool populate = false)
    {
        var e = TryMapAnonymous(length, out var m, populate);
        return e == Errno.None ? m! : throw new IOException($"mmap(anonymous, {length}) failed: {e}");
    }

    /// <summary>
    /// Maps a whole regular file read-only and private (e.g. a memory snapshot to serve pages from). The file is
    /// closed after mapping; the mapping keeps it alive.
    /// </summary>
    public static Errno TryMapFileReadOnly(string path, out HostMapping? mapping)
    {
        mapping = null;
        int fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0)
            return LibC.LastErrno;
        try
        {
            long length = new FileInfo(path).Length;
            if (length == 0)
                return Errno.EINVAL;
            nint p = LibC.Mmap(0, (nuint)length, LibC.PROT_READ, LibC.MAP_PRIVATE, fd, 0);
            if (p == MapFailed)
                return LibC.LastErrno;
            mapping = new HostMapping(p, (nuint)length, LibC.PageSize, shared: false);
            return Errno.None;
        }
        finally { LibC.Close(fd); }
    }

    internal static Errno TryMapRaw(nint hint, nuint length, int flags, int fd, long offset, int pageSize, out HostMapping? mapping)
    {
        nint p = LibC.Mmap(hint, length, LibC.PROT_READ | LibC.PROT_WRITE, flags, fd, offset);
        if (p == MapFailed)
        {
            mapping = null;
            return LibC.LastErrno;
        }
        mapping = new HostMapping(p, length, pageSize, (flags & LibC.MAP_SHARED) != 0);
        return Errno.None;
    }

    /// <summary><c>madvise(2)</c>.</summary>
    public static Errno Madvise(ulong start, ulong length, HostAdvice advice)
        => LibC.Madvise((nint)start, (nuint)length, (int)advice) < 0 ? LibC.LastErrno : Errno.None;

    /// <summary><c>munmap(2)</c> of part of a mapping.</summary>
    public static Errno Munmap(ulong start, ulong length)
        => LibC.Munmap((nint)start, (nuint)length) < 0 ? LibC.LastErrno : Errno.None;

    /// <summary><c>mprotect(2)</c>.</summary>
    public static Errno Mprotect(ulong start, ulong length, bool read, bool write)
        => LibC.Mprotect((nint)start, (nuint)length, (read ? LibC.PROT_READ : 0) | (write ? LibC.PROT_WRITE : 0)) < 0 ? LibC.LastErrno : Errno.None;

    /// <summary><c>mremap(old, len, len, MREMAP_MAYMOVE|MREMAP_FIXED, new)</c>.</summary>
    public static Errno MremapFixed(ulong oldStart, ulong length, ulong newStart)
        => LibC.Mremap((nint)oldStart, (nuint)length, (nuint)length, LibC.MREMAP_MAYMOVE | LibC.MREMAP_FIXED, (nint)newStart) == MapFailed
            ? LibC.LastErrno : Errno.None;

    /// <summary>
    /// Reads <paramref name="destination"/>.Length bytes at <paramref name="address"/> through the kernel
    /// (<c>copy_from_user</c> inside <c>pwrite(2)</c> to a scratch memfd). A fault the kernel cannot resolve — a
    /// poisoned PTE, a userfaultfd with SIGBUS, a USER_MODE_ONLY userfaultfd — surfaces as <see cref="Errno.EFAULT"/>
    /// instead of a signal (arch/x86/mm/fault.c: kernel-mode faults take the exception fixup), so a test can observe
    /// "this access would SIGBUS" without crashing the process. A missing fault on a registered range blocks in the
    /// kernel until the handler resolves it, exactly like a user-mode access.
    /// </summary>
    public static Errno ReadThroughKernel(ulong address, Span<byte> destination)
    {
        int fd = LibC.MemfdCreate("pluginmm-probe", LibC.MFD_CLOEXEC);
        if (fd < 0)
            return LibC.LastErrno;
        try
        {
            nint n = LibC.Pwrite(fd, (void*)address, (nuint)destination.Length, 0);
            if (n < 0)
                return LibC.LastErrno;
            if (n != destination.Length)
                return Errno.EFAULT;
            fixed (byte* d = destination)
                return LibC.Pread(fd, d, (nuint)destination.Length, 0) == destination.Length ? Errno.None : Errno.EIO;
        }
        finally { LibC.Close(fd); }
    }

    /// <summary>
    /// Writes <paramref name="source"/> at <paramref name="address"/> through the kernel (<c>copy_to_user</c> inside
    /// <c>pread(2)</c> from a scratch memfd): a write fault taken in kernel mode; unresolvable faults give EFAULT.
    /// </summary>
    public static Errno WriteThroughKernel(ulong address, ReadOnlySpan<byte> source)
    {
        int fd = LibC.MemfdCreate("pluginmm-probe", LibC.MFD_CLOEXEC);
        if (fd < 0)
            return LibC.LastErrno;
        try
        {
            fixed (byte* s = source)
            {
                if (LibC.Pwrite(fd, s, (nuint)source.Length, 0) != source.Length)
                    return Errno.EIO;
            }
            nint n = LibC.Pread(fd, (void*)address, (nuint)source.Length, 0);
            if (n < 0)
                return LibC.LastErrno;
            return n == source.Length ? Errno.None : Errno.EFAULT;
        }
        finally { LibC.Close(fd); }
    }
}

/// <summary>
/// A memfd (tmpfs, or hugetlbfs with <c>MFD_HUGETLB</c>): the page cache behind shmem and hugetlb mappings. Map it
/// shared or private, any number of times (an alias mapping sees the same page cache), punch holes.
/// </summary>
public sealed unsafe class HostMemFile : IDisposable
{
    private int _fd;

    private HostMemFile(int fd, long size, bool hugeTlb, int pageSize)
    {
        _fd = fd;
        Size = size;
        HugeTlb = hugeTlb;
        PageSize = pageSize;
    }

    /// <summary>The file descriptor.</summary>
    public int Fd => _fd;

    /// <summary>Size in bytes.</summary>
    public long Size { get; }

    /// <summary>Whether this is a hugetlbfs memfd.</summary>
    public bool HugeTlb { get; }

    /// <summary>Page size of the file (huge page size for hugetlb).</summary>
    public int PageSize { get; }

    /// <summary>
    /// <c>memfd_create</c> + <c>ftruncate</c>. For hugetlb, <paramref name="size"/> must be a multiple of the default huge
    /// page size and pages must be reserved (raise <c>/proc/sys/vm/nr_hugepages</c>; the tests use PluginMm.Linux.Testing's HugeTlbReservation) before they are faulted.
    /// </summary>
    public static Errno TryCreate(string name, long size, bool hugeTlb, out HostMemFile? file)
    {
        file = null;
        int fd = LibC.MemfdCreate(name, LibC.MFD_CLOEXEC | (hugeTlb ? LibC.MFD_HUGETLB : 0));
        if (fd < 0)
            return LibC.LastErrno;
        if (LibC.Ftruncate(fd, size) < 0)
        {
            var e = LibC.LastErrno;
            LibC.Close(fd);
            return e;
        }
        file = new HostMemFile(fd, size, hugeTlb, hugeTlb ? HostMemory.DefaultHugePageSize : LibC.PageSize);
        return Errno.None;
    }

    /// <summary>Creates the memfd or throws <see cref="IOException"/>.</summary>
    public static HostMemFile Create(string name, long size, bool hugeTlb = false)
    {
        var e = TryCreate(name, size, hugeTlb, out var f);
        return e == Errno.None ? f! : throw new IOException($"memfd_create/ftruncate({name}, {size}, hugetlb={hugeTlb}) failed: {e}");
    }

    /// <summary>Maps [offset, offset+length) of the file, <c>MAP_SHARED</c> or <c>MAP_PRIVATE</c>.</summary>
    public Errno TryMap(bool shared, nuint length, long offset, out HostMapping? mapping)
        => HostMemory.TryMapRaw(0, length, (shared ? LibC.MAP_SHARED : LibC.MAP_PRIVATE) | (HugeTlb && !shared ? LibC.MAP_NORESERVE : 0),
            _fd, offset, PageSize, out mapping);

    /// <summary>Maps the file or throws <see cref="IOException"/>.</summary>
    public HostMapping Map(bool shared, nuint length, long offset = 0)
    {
        var e = TryMap(shared, length, offset, out var m);
        return e == Errno.None ? m! : throw new IOException($"mmap(memfd, shared={shared}, {length}) failed: {e}");
    }

    /// <summary><c>fallocate(FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE)</c>: drops the page cache of the range.</summary>
    public Errno PunchHole(long offset, long length)
        => LibC.Fallocate(_fd, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length) < 0 ? LibC.LastErrno : Errno.None;

    /// <summary><c>pwrite(2)</c> into the page cache (populates it without touching any mapping).</summary>
    public Errno Write(long offset, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            nint n = LibC.Pwrite(_fd, p, (nuint)data.Length, offset);
            return n < 0 ? LibC.LastErrno : n == data.Length ? Errno.None : Errno.EIO;
        }
    }

    /// <summary>Closes the memfd (mappings stay valid).</summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
            LibC.Close(fd);
    }
}
