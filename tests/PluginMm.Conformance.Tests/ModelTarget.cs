using PluginMm.Runtime;
using PluginMm.Userfaultfd;
using ModelAdvice = PluginMm.Runtime.Advice;

namespace PluginMm.Conformance;

/// <summary>
/// The model kernel (PluginMm.Runtime with the generated PluginMm.Backends memory types): one process (an
/// <see cref="Mm"/>) whose tasks fault on model memory, served by the model's <see cref="UserfaultfdCtx"/>.
/// </summary>
public sealed class ModelTarget : IUffdTarget
{
    private readonly ModelKernel _kernel;
    private readonly Mm _mm;
    private readonly ModelTask _self;
    private UserfaultfdCtx? _ctx;
    private readonly List<UserfaultfdCtx> _ctxs = [];

    /// <summary>Creates the model process.</summary>
    public ModelTarget()
    {
        _kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        _mm = _kernel.CreateMm();
        _self = _mm.CreateTask("test");
    }

    /// <summary>The huge page size the model uses for hugetlb (the host's default, so traces compare).</summary>
    public static int HugePageSize => Runtime.Linux.HostMemory.DefaultHugePageSize is > 0 and var h ? h : 2 << 20;

    /// <inheritdoc/>
    public string Name => "model";

    /// <inheritdoc/>
    public string? Unsupported(MemType type) => null;

    /// <inheritdoc/>
    public IUserfaultfd OpenUffd()
    {
        var e = _mm.Userfaultfd(Uapi.O_NONBLOCK | Uapi.O_CLOEXEC, out var ctx);
        if (e != Errno.None)
            throw new InvalidOperationException($"model userfaultfd(2) failed: {e}");
        _ctx = ctx;
        return ctx!;
    }

    /// <inheritdoc/>
    public ITargetArea Map(MemType type, int pages) => new ModelArea(this, type, pages);

    /// <inheritdoc/>
    public IUserfaultfd? OpenUffd(int flags, bool device, out Errno errno)
    {
        UserfaultfdCtx? ctx;
        errno = device ? _kernel.DevUserfaultfdIoctl(_mm, Uapi.USERFAULTFD_IOC_NEW, flags, out ctx) : _mm.Userfaultfd(flags, out ctx);
        if (ctx is not null)
            _ctxs.Add(ctx);
        return ctx;
    }

    /// <inheritdoc/>
    public IUserfaultfd AdoptForked(IUserfaultfd parent, in UffdMsg fork)
    {
        var child = ((UserfaultfdCtx)parent).ForkedUserfaultfd(fork.ForkUfd)
            ?? throw new InvalidOperationException($"no forked context for ufd {fork.ForkUfd}");
        _ctxs.Add(child);
        return child;
    }

    /// <inheritdoc/>
    public ITargetProcess? Main => new ModelProcess(this, _mm);

    /// <inheritdoc/>
    public void Dispose() => _mm.Exit();

    private sealed class ModelArea : ITargetArea
    {
        private readonly ModelTarget _t;

        public ModelArea(ModelTarget t, MemType type, int pages)
        {
            _t = t;
            Type = type;
            Pages = pages;
            var mm = t._mm;
            Errno e;
            ulong start, alias = 0;
            if (type == MemType.Anon)
            {
                PageSize = Folio.BasePageSize;
                e = mm.Mmap(0, (ulong)(pages * PageSize), Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous | MapFlags.NoReserve, null, 0, out start);
                Check(e, "mmap anon");
            }
            else
            {
                MemFile? file;
                if (type == MemType.GuestMemfd)
                {
                    PageSize = Folio.BasePageSize;
                    e = t._kernel.GuestMemfdCreate("guest_memfd", (long)pages * PageSize, HelperTarget.GuestMemfdMmapInitShared, out file);
                }
                else if (type.IsHuge())
                {
                    PageSize = HugePageSize;
                    e = t._kernel.HugetlbfsCreate("hugetlb", (long)pages * PageSize, PageSize, out file);
                }
                else
                {
                    PageSize = Folio.BasePageSize;
                    e = t._kernel.MemfdCreate("shmem", (long)pages * PageSize, out file);
                }
                Check(e, "memfd_create");
                ulong len = (ulong)pages * (ulong)PageSize;
                e = mm.Mmap(0, len, Prot.Read | Prot.Write, type.IsShared() ? MapFlags.Shared : MapFlags.Private | (type.IsHuge() ? MapFlags.NoReserve : 0), file, 0, out start);
                Check(e, "mmap area");
                e = mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out alias);
                Check(e, "mmap alias");
            }
            Start = start;
            AliasStart = alias;
        }

        private static void Check(Errno e, string what)
        {
            if (e != Errno.None)
                throw new InvalidOperationException($"model {what} failed: {e}");
        }

        public MemType Type { get; }
        public int PageSize { get; }
        public int Pages { get; }
        public ulong Start { get; }
        public ulong AliasStart { get; }

        public ITargetTask StartAccess(ulong address, AccessKind kind, byte value) => new ModelProcess(_t, _t._mm).StartAccess(address, kind, value);

        public ITargetTask StartZap(ulong start, ulong length, Zap zap) => new ModelProcess(_t, _t._mm).StartZap(start, length, zap);

        public Errno Write(ulong address, ReadOnlySpan<byte> data)
            => _t._self.Write(address, data) == AccessResult.Ok ? Errno.None : Errno.EFAULT;

        public Errno Read(ulong address, Span<byte> destination)
            => _t._self.Read(address, destination) == AccessResult.Ok ? Errno.None : Errno.EFAULT;

        public void Dispose()
        {
            _t._mm.Munmap(Start, (ulong)Pages * (ulong)PageSize);
            if (AliasStart != 0)
                _t._mm.Munmap(AliasStart, (ulong)Pages * (ulong)PageSize);
        }

    }

    private sealed class ModelProcess(ModelTarget target, Mm mm) : ITargetProcess
    {
        private static string Signal(AccessResult r) => r switch
        {
            AccessResult.SigBus => "SIGBUS",
            AccessResult.SigSegv => "SIGSEGV",
            AccessResult.OutOfMemory => "OOM",
            _ => r.ToString(),
        };

        private ModelTaskHandle Start(Func<ModelTask, AccessOutcome> body)
        {
            var task = new ModelTaskHandle(target);
            task.Start(mm, body);
            return task;
        }

        public ITargetTask StartAccess(ulong address, AccessKind kind, byte value) => Start(t =>
        {
            Span<byte> one = [value];
            var r = kind == AccessKind.Read ? t.Read(address, one) : t.Write(address, one);
            return r == AccessResult.Ok ? AccessOutcome.Ok(one[0]) : new AccessOutcome(Signal(r), 0);
        });

        // MADV_PAGEOUT: the model has no reclaim; without swap (HelperTarget checks) the kernel cannot page anonymous
        // memory out either and leaves the entry as it is, and the selftest ignores the result.
        public ITargetTask StartZap(ulong start, ulong length, Zap zap) => Start(t =>
        {
            var e = zap == Zap.PageOut ? Errno.None : t.Mm.Madvise(start, length, zap == Zap.Remove ? ModelAdvice.Remove : ModelAdvice.DontNeed);
            return e == Errno.None ? AccessOutcome.Ok(0) : new AccessOutcome($"madvise {e}", 0);
        });

        public ITargetTask StartMremap(ulong oldAddress, ulong length, ulong newAddress) => Start(t =>
        {
            var e = t.Mm.Mremap(oldAddress, length, length, MremapFlags.MayMove | MremapFlags.Fixed, newAddress, out _);
            return e == Errno.None ? AccessOutcome.Ok(0) : new AccessOutcome($"mremap {e}", 0);
        });

        public ITargetTask StartFork()
        {
            var task = new ModelTaskHandle(target);
            task.Start(mm, t =>
            {
                task.Child = new ModelProcess(target, t.Mm.Fork());
                return AccessOutcome.Ok(0);
            });
            return task;
        }

        public ITargetProcess Child(ITargetTask fork) => ((ModelTaskHandle)fork).Child ?? throw new InvalidOperationException("fork did not finish");

        public ulong Pagemap(ulong address) => (ulong)mm.Pagemap(address);

        public void Exit()
        {
            if (mm != target._mm)
                mm.Exit();
        }
    }

    private sealed class ModelTaskHandle(ModelTarget target) : ITargetTask
    {
        private Thread? _thread;

        public AccessOutcome Outcome { get; private set; }

        public ModelProcess? Child { get; set; }

        public void Start(Mm mm, Func<ModelTask, AccessOutcome> body)
        {
            var task = mm.CreateTask();
            _thread = task.Start(t => Outcome = body(t));
        }

        // A model task blocked in handle_userfault sleeps on its waiter's event (WaitSleepJoin) while the ctx holds it
        // queued; a task delivering a non-cooperative event sleeps until the event is read, which the public surface
        // does not count, so there a sleep that lasts 100 ms is taken as blocked.
        public bool WaitBlocked(TimeSpan timeout)
        {
            long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            int asleep = 0;
            while (Environment.TickCount64 < deadline)
            {
                if (!_thread!.IsAlive)
                    return false;
                bool sleeping = (_thread.ThreadState & ThreadState.WaitSleepJoin) != 0;
                if (sleeping && (target._ctx is { WaitingCount: > 0 } || target._ctxs.Exists(c => c.WaitingCount > 0)))
                    return true;
                asleep = sleeping ? asleep + 1 : 0;
                if (asleep >= 100)
                    return true;
                Thread.Sleep(1);
            }
            return false;
        }

        public bool Join(TimeSpan timeout) => _thread!.Join(timeout);
    }
}
