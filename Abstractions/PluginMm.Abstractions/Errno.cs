namespace PluginMm;

/// <summary>Linux errno values, numbered as on x86-64/arm64 Linux (<c>include/uapi/asm-generic/errno-base.h</c>, <c>errno.h</c>).</summary>
public enum Errno
{
    /// <summary>Success.</summary>
    None = 0,
    /// <summary>Operation not permitted.</summary>
    EPERM = 1,
    /// <summary>No such file or directory (uffd: no registered VMA at dst).</summary>
    ENOENT = 2,
    /// <summary>No such process (uffd: the mm has exited).</summary>
    ESRCH = 3,
    /// <summary>Interrupted system call.</summary>
    EINTR = 4,
    /// <summary>I/O error (uffd CONTINUE on a HWPoison folio).</summary>
    EIO = 5,
    /// <summary>Bad file descriptor.</summary>
    EBADF = 9,
    /// <summary>Try again (uffd: mmap_changing, partial copy, non-blocking read with nothing queued).</summary>
    EAGAIN = 11,
    /// <summary>Out of memory.</summary>
    ENOMEM = 12,
    /// <summary>Permission denied (e.g. opening a device node without access).</summary>
    EACCES = 13,
    /// <summary>Bad address.</summary>
    EFAULT = 14,
    /// <summary>Device or resource busy.</summary>
    EBUSY = 16,
    /// <summary>File exists (uffd: destination already populated).</summary>
    EEXIST = 17,
    /// <summary>No such device.</summary>
    ENODEV = 19,
    /// <summary>Invalid argument.</summary>
    EINVAL = 22,
    /// <summary>Too many open files.</summary>
    EMFILE = 24,
    /// <summary>Inappropriate ioctl for device.</summary>
    ENOTTY = 25,
    /// <summary>No space left on device.</summary>
    ENOSPC = 28,
    /// <summary>Function not implemented.</summary>
    ENOSYS = 38,
    /// <summary>Value too large for defined data type (<c>mmu_interval_notifier_insert</c>: empty or wrapping range).</summary>
    EOVERFLOW = 75,
    /// <summary>Operation not supported.</summary>
    EOPNOTSUPP = 95,
    /// <summary>Connection timed out.</summary>
    ETIMEDOUT = 110,
}
