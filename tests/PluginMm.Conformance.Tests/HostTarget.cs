using PluginMm.Runtime.Linux;
using PluginMm.Userfaultfd;

namespace PluginMm.Conformance;

/// <summary>The real kernel: <see cref="HostUserfaultfd"/> and real mappings of this process.</summary>
public sealed class HostTarget : IUffdTarget
{
    private const int HugePagesReserved = 16;
    private readonly HugeTlbReservation? _huge;
    private readonly string? _hugeReason;
    private readonly string? _uffdReason;

    /// <summary>Reserves huge pages (restored on <see cref="Dispose"/>) and checks /dev/userfaultfd.</summary>
    public HostTarget()
    {
        if (!HostUserfaultfd.TryOpen(UffdOpenFlags.CloseOnExec, UffdOpenPath.Auto, out var probe, out var failure))
            _uffdReason = failure.Explanation;
        probe?.Dispose();
        if (!HugeTlbReservation.TryReserve(HugePagesReserved, out _huge, out var reason))
            _hugeReason = reason;
    }

    /// <inheritdoc/>
    public string Name => "host";

    /// <inheritdoc/>
    public string? Unsupported(MemType type) => _uffdReason ?? (type.IsHuge() ? _hugeReason
        : type == MemType.GuestMemfd ? "guest_memfd runs in uffd_helper (HelperTarget)" : null);

    /// <inheritdoc/>
    public IUserfaultfd OpenUffd() => HostUserfaultfd.Open(UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec);

    /// <inheritdoc/>
    public ITargetArea Map(MemType type, int pages) => new HostArea(type, pages);

    /// <inheritdoc/>
    public IUserfaultfd? OpenUffd(int flags, bool device, out Errno errno)
    {
        bool ok = HostUserfaultfd.TryOpen((UffdOpenFlags)flags, device ? UffdOpenPath.Device : UffdOpenPath.Syscall, out var u, out var failure);
        errno = ok ? Errno.None : device ? failure.DeviceErrno : failure.SyscallErrno;
        return u;
    }

    /// <inheritdoc/>
    public IUserfaultfd AdoptForked(IUserfaultfd parent, in UffdMsg fork) =>
        HostUserfaultfd.FromForkMessage(fork, out var child) == Errno.None ? child! : throw new InvalidOperationException("not a FORK message with a userfaultfd");

    /// <inheritdoc/>
    public ITargetProcess? Main => null;

    /// <inheritdoc/>
    public void Dispose() => _huge?.Dispose();

    private sealed class HostArea : ITargetArea
    {
        private readonly HostMapping _area;
        private readonly HostMapping? _alias;
        private readonly HostMemFile? _file;

        public HostArea(MemType type, int pages)
        {
            Type = type;
            Pages = pages;
            if (type == MemType.Anon)
            {
                _area = HostMemory.MapAnonymous((nuint)(pages * Environment.SystemPageSize));
                // Keep pages exclusive to this process (UFFDIO_MOVE needs PageAnonExclusive), as uffd-unit-tests does.
                HostMemory.Madvise(_area.Start, _area.Length, HostAdvice.DontFork);
                HostMemory.Madvise(_area.Start, _area.Length, HostAdvice.NoHugePage);
                PageSize = Environment.SystemPageSize;
                return;
            }
            bool huge = type.IsHuge();
            PageSize = huge ? HugeTlbReservation.DefaultHugePageSize : Environment.SystemPageSize;
            long size = (long)pages * PageSize;
            _file = HostMemFile.Create($"pluginmm-{type.Name()}", size, huge);
            _area = _file.Map(type.IsShared(), (nuint)size);
            _alias = _file.Map(shared: true, (nuint)size);
        }

        public MemType Type { get; }
        public int PageSize { get; }
        public int Pages { get; }
        public ulong Start => _area.Start;
        public ulong AliasStart => _alias?.Start ?? 0;

        public ITargetTask StartAccess(ulong address, AccessKind kind, byte value) => HostTask.Access(address, kind, value);

        public ITargetTask StartZap(ulong start, ulong length, Zap zap)
            => HostTask.Zap(start, length, zap == Conformance.Zap.Remove ? HostAdvice.Remove : HostAdvice.DontNeed);

        public unsafe Errno Write(ulong address, ReadOnlySpan<byte> data)
        {
            data.CopyTo(new Span<byte>((void*)address, data.Length));
            return Errno.None;
        }

        public Errno Read(ulong address, Span<byte> destination) => HostMemory.ReadThroughKernel(address, destination);

        public void Dispose()
        {
            _alias?.Dispose();
            _area.Dispose();
            _file?.Dispose();
        }
    }

    private sealed class HostTask : ITargetTask
    {
        private FaultingThread _thread = null!;
        private string _wchan = "handle_userfault";

        public AccessOutcome Outcome { get; private set; }

        // Accesses go through the kernel (copy_from_user / copy_to_user): a fault that would SIGBUS the process
        // (UFFD_FEATURE_SIGBUS, a poisoned PTE) comes back as EFAULT, while a userfault blocks exactly as a user-mode
        // access does (handle_userfault with FAULT_FLAG_ALLOW_RETRY). The PAGEFAULT message is the same.
        public static HostTask Access(ulong address, AccessKind kind, byte value)
        {
            var t = new HostTask();
            t._thread = FaultingThread.Start("uffd-access", () =>
            {
                Span<byte> one = [value];
                Errno e = kind == AccessKind.Read ? HostMemory.ReadThroughKernel(address, one) : HostMemory.WriteThroughKernel(address, one);
                // EFAULT from a kernel-mode access is the fixup of a fault that would SIGBUS a user-mode access.
                t.Outcome = e == Errno.None ? AccessOutcome.Ok(one[0]) : new AccessOutcome(e == Errno.EFAULT ? "SIGBUS" : e.ToString(), 0);
            });
            return t;
        }

        public static HostTask Zap(ulong start, ulong length, HostAdvice advice)
        {
            var t = new HostTask { _wchan = "userfaultfd" };
            t._thread = FaultingThread.Start("uffd-zap", () =>
            {
                var e = HostMemory.Madvise(start, length, advice);
                t.Outcome = e == Errno.None ? AccessOutcome.Ok(0) : new AccessOutcome($"madvise {e}", 0);
            });
            return t;
        }

        public bool WaitBlocked(TimeSpan timeout) => _thread.WaitUntilBlockedInUserfault(timeout, _wchan);

        public bool Join(TimeSpan timeout) => _thread.Join(timeout);
    }
}
