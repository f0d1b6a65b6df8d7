using PluginMm.Runtime.Linux;
using PluginMm.TestNative;
using PluginMm.Userfaultfd;

namespace PluginMm.Conformance;

/// <summary>
/// The real kernel through uffd_helper (tests/native): the areas, the faulting tasks and forked children live in the
/// helper process, this process is the handler (the helper's userfaultfd taken with pidfd_getfd). Accesses are real
/// user-mode loads and stores; SIGBUS is a real signal, caught in the helper.
/// </summary>
public sealed class HelperTarget : IUffdTarget
{
    private const int HugePagesReserved = 16;
    private const int MadvNoHugePage = 15, MadvDontNeed = 4, MadvRemove = 9, MadvPageOut = 21;
    private const int ProtRw = 3, MapShared = 0x01, MapPrivate = 0x02, MapAnonymous = 0x20, MapNoReserve = 0x4000;

    /// <summary><c>GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED</c> (include/uapi/linux/kvm.h, 6.18).</summary>
    public const ulong GuestMemfdMmapInitShared = 1UL << 0 | 1UL << 1;

    private readonly UffdHelper? _helper;
    private readonly HugeTlbReservation? _huge;
    private readonly string? _reason, _hugeReason, _swapReason;

    /// <summary>Starts the helper (building it with gcc once) and reserves huge pages (restored on <see cref="Dispose"/>).</summary>
    public HelperTarget()
    {
        if (!HostUserfaultfd.TryOpen(UffdOpenFlags.CloseOnExec, UffdOpenPath.Auto, out var probe, out var failure))
        {
            _reason = failure.Explanation;
            return;
        }
        probe.Dispose();
        _helper = UffdHelper.TryStart(out _reason);
        if (!HugeTlbReservation.TryReserve(HugePagesReserved, out _huge, out var reason))
            _hugeReason = reason;
        if (File.ReadAllLines("/proc/swaps").Length > 1)
            _swapReason = "this host has swap: MADV_PAGEOUT would page out, the model has no reclaim";
    }

    /// <inheritdoc/>
    public string Name => "host";

    /// <inheritdoc/>
    public string? Unsupported(MemType type) => _reason ?? (type.IsHuge() ? _hugeReason : null);

    /// <summary>Why MADV_PAGEOUT scenarios cannot compare here (null when they can).</summary>
    public string? PageOutUnsupported => _swapReason;

    private UffdHelper H => _helper ?? throw new ScenarioSkippedException(_reason ?? "uffd_helper unavailable");

    /// <inheritdoc/>
    public IUserfaultfd OpenUffd() => OpenUffd(Uapi.O_NONBLOCK | Uapi.O_CLOEXEC, device: false, out var e)
        ?? throw new InvalidOperationException($"userfaultfd in uffd_helper: {e}");

    /// <inheritdoc/>
    public IUserfaultfd? OpenUffd(int flags, bool device, out Errno errno)
    {
        int fd = H.Root.OpenUffd(flags, device, out errno);
        return fd < 0 ? null : HostUserfaultfd.Adopt(fd, ownsDescriptor: true, out var uffd) == Errno.None ? uffd : null;
    }

    /// <inheritdoc/>
    public IUserfaultfd AdoptForked(IUserfaultfd parent, in UffdMsg fork) =>
        HostUserfaultfd.FromForkMessage(fork, out var child) == Errno.None ? child! : throw new InvalidOperationException("not a FORK message with a userfaultfd");

    /// <inheritdoc/>
    public ITargetProcess? Main => new Proc(H.Root);

    /// <inheritdoc/>
    public ITargetArea Map(MemType type, int pages) => new Area(H.Root, type, pages);

    /// <inheritdoc/>
    public void Dispose()
    {
        _helper?.Dispose();
        _huge?.Dispose();
    }

    private static ulong Value(HelperOutcome r, string what)
        => r.Ok ? (ulong)r.Value : throw new ScenarioSkippedException($"uffd_helper {what}: {r.Errno}");

    private static AccessOutcome Outcome(HelperOutcome o, string errPrefix)
        => o.Ok ? AccessOutcome.Ok((byte)o.Value) : new AccessOutcome(o.Signal ?? $"{errPrefix}{o.Errno}", 0);

    private sealed class Proc(HelperProcess p) : ITargetProcess
    {
        public HelperProcess Process => p;

        public ITargetTask StartAccess(ulong address, AccessKind kind, byte value)
            => new Task(kind == AccessKind.Read ? p.Run("read", address) : p.Run("write", address, value), "handle_userfault", "");

        public ITargetTask StartZap(ulong start, ulong length, Zap zap)
            => new Task(p.Run("madvise", start, length, zap switch { Zap.Remove => MadvRemove, Zap.PageOut => MadvPageOut, _ => MadvDontNeed }),
                "userfaultfd", "madvise ");

        public ITargetTask StartMremap(ulong oldAddress, ulong length, ulong newAddress)
            => new Task(p.Run("mremap", oldAddress, length, newAddress), "userfaultfd", "mremap ");

        public ITargetTask StartFork() => new Task(p.Run("fork"), "userfaultfd", "fork ");

        public ITargetProcess Child(ITargetTask fork) => new Proc(p.Child(((Task)fork).Helper));

        public ulong Pagemap(ulong address) => p.Pagemap(address);

        public void Exit() => p.Exit();
    }

    private sealed class Task(HelperTask t, string wchan, string errPrefix) : ITargetTask
    {
        public HelperTask Helper => t;

        // A fork's outcome carries the helper's child number; the trace records only that it succeeded.
        public AccessOutcome Outcome => errPrefix == "fork " && t.Outcome.Ok ? AccessOutcome.Ok(0) : HelperTarget.Outcome(t.Outcome, errPrefix);

        public bool WaitBlocked(TimeSpan timeout) => t.WaitBlocked(wchan, timeout);

        public bool Join(TimeSpan timeout) => t.Join(timeout);
    }

    private sealed class Area : ITargetArea
    {
        private readonly HelperProcess _p;
        private readonly Proc _proc;
        private readonly int _fd = -1;

        public Area(HelperProcess p, MemType type, int pages)
        {
            _p = p;
            _proc = new Proc(p);
            Type = type;
            Pages = pages;
            PageSize = type.IsHuge() ? HugeTlbReservation.DefaultHugePageSize : Environment.SystemPageSize;
            ulong len = (ulong)pages * (ulong)PageSize;
            if (type == MemType.Anon)
            {
                Start = Value(p.Mmap(len, ProtRw, MapPrivate | MapAnonymous, -1, 0), "mmap anon");
                Finish(p.Run("madvise", Start, len, MadvNoHugePage), "MADV_NOHUGEPAGE");
                return;
            }
            _fd = (int)Value(type == MemType.GuestMemfd ? p.GuestMemfd((long)len, GuestMemfdMmapInitShared) : p.Memfd((long)len, type.IsHuge()),
                type == MemType.GuestMemfd ? "KVM_CREATE_GUEST_MEMFD" : "memfd_create");
            Start = Value(p.Mmap(len, ProtRw, type.IsShared() ? MapShared : MapPrivate | (type.IsHuge() ? MapNoReserve : 0), _fd, 0), "mmap area");
            AliasStart = Value(p.Mmap(len, ProtRw, MapShared, _fd, 0), "mmap alias");
        }

        private static void Finish(HelperTask t, string what)
        {
            if (!t.Join(UffdHelper.CommandTimeout) || !t.Outcome.Ok)
                throw new InvalidOperationException($"uffd_helper {what}: {t.Outcome}");
        }

        public MemType Type { get; }
        public int PageSize { get; }
        public int Pages { get; }
        public ulong Start { get; }
        public ulong AliasStart { get; }

        public ITargetTask StartAccess(ulong address, AccessKind kind, byte value) => _proc.StartAccess(address, kind, value);

        public ITargetTask StartZap(ulong start, ulong length, Zap zap) => _proc.StartZap(start, length, zap);

        public Errno Write(ulong address, ReadOnlySpan<byte> data) => _p.Write(address, data) is { Ok: true } ? Errno.None : Errno.EFAULT;

        public Errno Read(ulong address, Span<byte> destination) => _p.Read(address, destination) is { Ok: true } ? Errno.None : Errno.EFAULT;

        public void Dispose()
        {
            ulong len = (ulong)Pages * (ulong)PageSize;
            try
            {
                _p.Run("munmap", Start, len).Join(UffdHelper.CommandTimeout);
                if (AliasStart != 0)
                    _p.Run("munmap", AliasStart, len).Join(UffdHelper.CommandTimeout);
                if (_fd >= 0)
                    _p.CloseFd(_fd);
            }
            catch (InvalidOperationException)
            {
                // the helper is gone (killed by a hang guard): its memory went with it
            }
        }
    }
}
