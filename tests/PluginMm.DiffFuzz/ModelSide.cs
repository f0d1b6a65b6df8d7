using PluginMm.Runtime;
using PluginMm.Userfaultfd;

using PluginMm.Conformance;

namespace PluginMm.DiffFuzz;

/// <summary>
/// The model: a fresh <see cref="ModelKernel"/> with the generated PluginMm.Backends memory types per case, one
/// <see cref="Mm"/> laid out at the host's addresses, a harness task, and a task per worker.
/// </summary>
public sealed class ModelSide : Side
{
    private readonly ModelKernel _kernel = new(PluginMm.Backends.MemoryTypeRegistry.All);
    private readonly Mm _mm;
    private readonly ModelTask _self;
    private readonly List<UserfaultfdCtx> _ctxs = [];
    private MemFile? _file;

    /// <summary>Creates the model process. <paramref name="baseAddress"/> is where the host placed its span (so
    /// addresses, page-table and fault-around boundaries match); 0 picks a fixed 2 MiB aligned address.</summary>
    public ModelSide(ulong baseAddress)
    {
        _mm = _kernel.CreateMm();
        _self = _mm.CreateTask("harness");
        BaseAddress = baseAddress != 0 ? baseAddress : 0x7f00_0000_0000UL;
    }

    /// <summary>Where the span starts.</summary>
    public ulong BaseAddress { get; }

    /// <inheritdoc/>
    public override string Name => "model";

    /// <inheritdoc/>
    public override string? Unsupported(MemType type) => null;

    /// <inheritdoc/>
    protected override Layout MapLayout(FuzzCase c, ulong pageSize)
    {
        var lay = new Layout(c, pageSize, BaseAddress);
        Check(_mm.Mmap(lay.Base, lay.End - lay.Base, Prot.None, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed | MapFlags.NoReserve, null, 0, out _), "mmap span");
        const Prot rw = Prot.Read | Prot.Write;
        if (c.Type == MemType.Anon)
            Check(_mm.Mmap(lay.A, lay.AreaLen, rw, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed | MapFlags.NoReserve, null, 0, out _), "mmap area");
        else
        {
            var e = c.Type.IsHuge()
                ? _kernel.HugetlbfsCreate("hugetlb", (long)lay.AreaLen, (int)pageSize, out _file)
                : _kernel.MemfdCreate("shmem", (long)lay.AreaLen, out _file);
            Check(e, "memfd_create");
            var flags = (c.Type.IsShared() ? MapFlags.Shared : MapFlags.Private | (c.Type.IsHuge() ? MapFlags.NoReserve : 0)) | MapFlags.Fixed;
            Check(_mm.Mmap(lay.A, lay.AreaLen, rw, flags, _file, 0, out _), "mmap area");
            Check(_mm.Mmap(lay.L, lay.AreaLen, rw, MapFlags.Shared | MapFlags.Fixed, _file, 0, out _), "mmap alias");
        }
        Check(_mm.Mmap(lay.S, lay.AreaLen, rw, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed | MapFlags.NoReserve, null, 0, out _), "mmap source");
        return lay;
    }

    private static void Check(Errno e, string what)
    {
        if (e != Errno.None)
            throw new InvalidOperationException($"model {what}: {e}");
    }

    /// <inheritdoc/>
    protected override IUserfaultfd OpenUffd()
    {
        Check(_mm.Userfaultfd(Uapi.O_NONBLOCK | Uapi.O_CLOEXEC, out var ctx), "userfaultfd");
        _ctxs.Add(ctx!);
        return ctx!;
    }

    /// <inheritdoc/>
    protected override UffdioResult CopyFrom(ulong dst, ulong src, ulong len, ulong mode)
        => ((UserfaultfdCtx)Uffd!).Copy(_self, dst, src, len, (UffdCopyMode)mode);

    /// <inheritdoc/>
    protected override void FillSource(ulong addr, ulong len, byte value)
    {
        var b = new byte[len];
        b.AsSpan().Fill(value);
        _self.Write(addr, b);
    }

    /// <inheritdoc/>
    protected override void Start(Worker w, Func<string> body)
    {
        var task = _mm.CreateTask($"w{w.Index}");
        w.Tid = (uint)task.Tid;
        w.Thread = task.Start(t =>
        {
            t_current = t;
            w.Outcome = body();
        });
    }

    [ThreadStatic]
    private static ModelTask? t_current;

    /// <inheritdoc/>
    protected override string Access(ulong address, bool write, byte value)
    {
        var task = t_current!;
        Span<byte> one = [value];
        var r = write ? task.Write(address, one) : task.Read(address, one);
        return r switch
        {
            AccessResult.Ok => $"ok:{Op.Hex(one[0])}",
            AccessResult.SigBus or AccessResult.SigSegv => "fault",
            _ => r.ToString(),
        };
    }

    // The system calls run on the worker's thread as that task of the same mm.
    private Mm TaskMm => t_current?.Mm ?? _mm;

    /// <inheritdoc/>
    protected override Errno Madvise(ulong a, ulong len, int advice) => TaskMm.Madvise(a, len, (Advice)advice);

    /// <inheritdoc/>
    protected override Errno Mprotect(ulong a, ulong len, int prot) => TaskMm.Mprotect(a, len, (Prot)prot);

    /// <inheritdoc/>
    protected override Errno Munmap(ulong a, ulong len) => TaskMm.Munmap(a, len);

    /// <inheritdoc/>
    protected override Errno Mremap(ulong old, ulong oldLen, ulong newLen, int flags, ulong newAddr, out ulong result)
        => TaskMm.Mremap(old, oldLen, newLen, (MremapFlags)flags, newAddr, out result);

    /// <inheritdoc/>
    protected override Errno PunchHole(long offset, long len) => _file!.PunchHole(offset, len);

    /// <inheritdoc/>
    protected override void PlugHoles()
    {
        ulong at = Lay.Base;
        var gaps = new List<(ulong, ulong)>();
        foreach (var v in _mm.Vmas)
        {
            if (v.End <= Lay.Base || v.Start >= Lay.End)
                continue;
            if (v.Start > at)
                gaps.Add((at, v.Start));
            at = Math.Max(at, v.End);
        }
        if (at < Lay.End)
            gaps.Add((at, Lay.End));
        foreach (var (s, e) in gaps)
            _mm.Mmap(s, e - s, Prot.None, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed | MapFlags.NoReserve, null, 0, out _);
    }

    /// <inheritdoc/>
    protected override (bool Present, bool Wp, bool File) Pagemap(ulong a)
    {
        var f = _mm.Pagemap(a);
        return ((f & PagemapFlags.Present) != 0, (f & PagemapFlags.UffdWp) != 0, (f & PagemapFlags.File) != 0);
    }

    /// <inheritdoc/>
    protected override string? CachedPage(long index)
        => Case.Type.IsHuge() || _file is null ? null : _file.Inode.Cache.Contains(index) ? "1" : "0";

    /// <inheritdoc/>
    protected override long CachedTotal() => _file?.CachedFolios ?? 0;

    /// <inheritdoc/>
    protected override bool ReadMemory(ulong a, Span<byte> buffer) => _self.Read(a, buffer) == AccessResult.Ok;

    /// <inheritdoc/>
    protected override bool Settle(int timeoutMs) => WaitUntil(() =>
    {
        int alive = Workers.Count(w => w.Thread!.IsAlive);
        int blocked = 0;
        // A released context's queues are emptied by the waiters themselves as they wake: not counted.
        foreach (var c in _ctxs)
            if (!c.Released)
                blocked += c.WaitingCount + c.PendingEventCount;
        return alive <= blocked;
    }, timeoutMs);

    /// <inheritdoc/>
    public override void Dispose()
    {
        foreach (var c in _ctxs)
            c.Dispose();
        _mm.Exit();
        foreach (var w in Workers)
            w.Thread?.Join(1000);
    }
}
