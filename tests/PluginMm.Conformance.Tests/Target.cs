using PluginMm.Userfaultfd;

namespace PluginMm.Conformance;

/// <summary>The memory types of uffd-unit-tests (<c>mem_type_t</c>).</summary>
public enum MemType
{
    /// <summary><c>anon</c>: MAP_PRIVATE|MAP_ANONYMOUS, no alias.</summary>
    Anon,
    /// <summary><c>shmem</c>: a memfd mapped MAP_SHARED, plus a MAP_SHARED alias of the same pages.</summary>
    Shmem,
    /// <summary><c>shmem-private</c>: a memfd mapped MAP_PRIVATE (unlike the selftest, which maps it shared), plus a
    /// MAP_SHARED alias that sees the page cache.</summary>
    ShmemPrivate,
    /// <summary><c>hugetlb</c>: an MFD_HUGETLB memfd mapped MAP_SHARED, plus a MAP_SHARED alias.</summary>
    HugeTlb,
    /// <summary><c>hugetlb-private</c>: an MFD_HUGETLB memfd mapped MAP_PRIVATE, plus a MAP_SHARED alias.</summary>
    HugeTlbPrivate,
    /// <summary><c>guest_memfd</c>: a KVM guest_memfd created with GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    /// mapped MAP_SHARED, plus a MAP_SHARED alias (not a uffd-unit-tests type; see the conformance scenario <c>guest_memfd-register</c>).</summary>
    GuestMemfd,
}

/// <summary>Names and properties of <see cref="MemType"/>.</summary>
public static class MemTypes
{
    /// <summary>All memory types, in the selftest's order.</summary>
    public static readonly MemType[] All = [MemType.Anon, MemType.Shmem, MemType.ShmemPrivate, MemType.HugeTlb, MemType.HugeTlbPrivate];

    /// <summary>The selftest's name (<c>anon</c>, <c>shmem</c>, <c>shmem-private</c>, <c>hugetlb</c>, <c>hugetlb-private</c>).</summary>
    public static string Name(this MemType t) => t switch
    {
        MemType.Anon => "anon",
        MemType.Shmem => "shmem",
        MemType.ShmemPrivate => "shmem-private",
        MemType.HugeTlb => "hugetlb",
        MemType.HugeTlbPrivate => "hugetlb-private",
        _ => "guest_memfd",
    };

    /// <summary>hugetlb or hugetlb-private.</summary>
    public static bool IsHuge(this MemType t) => t is MemType.HugeTlb or MemType.HugeTlbPrivate;

    /// <summary>Whether the area itself is MAP_SHARED.</summary>
    public static bool IsShared(this MemType t) => t is MemType.Shmem or MemType.HugeTlb or MemType.GuestMemfd;

    /// <summary>Whether the area is file-backed (has a page cache and an alias mapping).</summary>
    public static bool HasPageCache(this MemType t) => t != MemType.Anon;
}

/// <summary>How a faulting task touches memory.</summary>
public enum AccessKind
{
    /// <summary>A read of one byte.</summary>
    Read,
    /// <summary>A write of one byte.</summary>
    Write,
}

/// <summary>The zap a scenario asks for (<c>madvise</c>).</summary>
public enum Zap
{
    /// <summary><c>MADV_DONTNEED</c>.</summary>
    DontNeed,
    /// <summary><c>MADV_REMOVE</c>.</summary>
    Remove,
    /// <summary><c>MADV_PAGEOUT</c> (reclaim; the targets need no swap, see <see cref="IUffdTarget.Main"/>).</summary>
    PageOut,
}

/// <summary>What a faulting task's access ended with: a byte value, or the signal the process would get
/// (<c>SIGBUS</c>, <c>SIGSEGV</c>, <c>OOM</c>), or for a zap the errno of madvise.</summary>
public readonly record struct AccessOutcome(string? Signal, byte Value)
{
    /// <summary>A completed access.</summary>
    public static AccessOutcome Ok(byte value) => new(null, value);

    /// <inheritdoc/>
    public override string ToString() => Signal ?? $"ok 0x{Value:x2}";
}

/// <summary>
/// What a conformance scenario needs from a target (the real kernel, or the model): a userfaultfd, memory of a type
/// with its alias, tasks that touch memory and block in the userfault path, madvise, and the final bytes.
/// </summary>
public interface IUffdTarget : IDisposable
{
    /// <summary><c>host</c> or <c>model</c>.</summary>
    string Name { get; }

    /// <summary>Why <paramref name="type"/> cannot run on this target (null when it can).</summary>
    string? Unsupported(MemType type);

    /// <summary>A fresh non-blocking userfaultfd that also catches kernel-mode faults (no USER_MODE_ONLY), before UFFDIO_API.</summary>
    IUserfaultfd OpenUffd();

    /// <summary>Maps <paramref name="pages"/> pages (of the type's page size) of <paramref name="type"/> with an empty page cache.</summary>
    ITargetArea Map(MemType type, int pages);

    /// <summary>A userfaultfd opened with <paramref name="flags"/> (O_* and UFFD_USER_MODE_ONLY) through the syscall or
    /// /dev/userfaultfd, before UFFDIO_API; null with <paramref name="errno"/> when the open fails.</summary>
    IUserfaultfd? OpenUffd(int flags, bool device, out Errno errno);

    /// <summary>The child's userfaultfd that a UFFD_EVENT_FORK message <paramref name="fork"/>, read from
    /// <paramref name="parent"/>, carries.</summary>
    IUserfaultfd AdoptForked(IUserfaultfd parent, in UffdMsg fork);

    /// <summary>
    /// The process the areas live in, for scenarios that fork, mremap or read pagemap; null where the target cannot fork
    /// (fork(2) in a .NET process is unsafe: those scenarios run in uffd_helper). MADV_PAGEOUT: the model has no reclaim,
    /// so it leaves entries as they are, which is what the host does without swap (a target with swap cannot run it).
    /// </summary>
    ITargetProcess? Main { get; }
}

/// <summary>A process of a target (the one the areas were mapped in, or a forked child).</summary>
public interface ITargetProcess
{
    /// <summary>Starts a task touching <paramref name="address"/> (see <see cref="ITargetArea.StartAccess"/>).</summary>
    ITargetTask StartAccess(ulong address, AccessKind kind, byte value);

    /// <summary>Starts a task calling madvise.</summary>
    ITargetTask StartZap(ulong start, ulong length, Zap zap);

    /// <summary>Starts a task calling <c>mremap(old, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, new)</c>.</summary>
    ITargetTask StartMremap(ulong oldAddress, ulong length, ulong newAddress);

    /// <summary>Starts a task calling fork(2) (it may block on UFFD_EVENT_FORK); <see cref="Child"/> after it finished.</summary>
    ITargetTask StartFork();

    /// <summary>The child a finished fork task created.</summary>
    ITargetProcess Child(ITargetTask fork);

    /// <summary>The <c>/proc/pid/pagemap</c> entry of <paramref name="address"/>.</summary>
    ulong Pagemap(ulong address);

    /// <summary>The child exits (exit_mmap); nothing for the first process.</summary>
    void Exit();
}

/// <summary>A mapped area (and, for file-backed types, a MAP_SHARED alias of the same file pages).</summary>
public interface ITargetArea : IDisposable
{
    /// <summary>The memory type.</summary>
    MemType Type { get; }

    /// <summary>Page size of the area (huge page size for hugetlb).</summary>
    int PageSize { get; }

    /// <summary>Pages in the area.</summary>
    int Pages { get; }

    /// <summary>Start of the area.</summary>
    ulong Start { get; }

    /// <summary>Start of the alias (0 for anon).</summary>
    ulong AliasStart { get; }

    /// <summary>
    /// Starts a task that touches <paramref name="address"/> (a byte read, or a write of <paramref name="value"/>). It may
    /// block in the userfault path until the handler (never this task) resolves it. On the host, an access that would
    /// raise SIGBUS is taken through the kernel (EFAULT instead of a signal), so the outcome is observable.
    /// </summary>
    ITargetTask StartAccess(ulong address, AccessKind kind, byte value);

    /// <summary>Starts a task that calls <c>madvise</c> on the range (it may block on a non-cooperative event).</summary>
    ITargetTask StartZap(ulong start, ulong length, Zap zap);

    /// <summary>Writes bytes from the test's own task where no userfault can trap (an unregistered alias or a source
    /// area). Returns the errno.</summary>
    Errno Write(ulong address, ReadOnlySpan<byte> data);

    /// <summary>Reads bytes where no userfault can block (after the uffd is closed); EFAULT where the access would SIGBUS.</summary>
    Errno Read(ulong address, Span<byte> destination);
}

/// <summary>A task started by <see cref="ITargetArea"/>.</summary>
public interface ITargetTask
{
    /// <summary>Waits until the task sleeps in the userfault path (a fault, or a non-cooperative event); false if it
    /// finished or the timeout passed first.</summary>
    bool WaitBlocked(TimeSpan timeout);

    /// <summary>Waits for the task to finish; false on timeout.</summary>
    bool Join(TimeSpan timeout);

    /// <summary>How the access ended (valid after <see cref="Join"/>).</summary>
    AccessOutcome Outcome { get; }
}
