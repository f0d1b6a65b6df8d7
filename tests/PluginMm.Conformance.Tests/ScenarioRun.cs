using System.Globalization;
using PluginMm.Userfaultfd;

namespace PluginMm.Conformance;

/// <summary>A scenario cannot run on a target (missing feature or memory type); the reason is reported, never a pass.</summary>
public sealed class ScenarioSkippedException(string reason) : Exception(reason);

/// <summary>A run's trace left its reference trace (the kernel's) at <see cref="Line"/>; the run stops there.</summary>
public sealed class TraceDivergedException(int line, string message) : Exception(message)
{
    /// <summary>The 0-based index of the first differing line.</summary>
    public int Line { get; } = line;
}

/// <summary>
/// One scenario on one target: performs every step through <see cref="IUffdTarget"/> and <see cref="IUserfaultfd"/>
/// and records the canonical trace — messages read (event, flags, page offset from area start), every ioctl's errno
/// and result field, access outcomes, and the final bytes of each page as a hash. Addresses are written relative to
/// the area (<c>p3</c>, or <c>a3</c> in the alias) so traces from different address spaces compare equal.
/// </summary>
public sealed class ScenarioRun : IDisposable
{
    /// <summary>Hang guard for every wait.</summary>
    public static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(20);

    private readonly List<string> _trace = [];
    private readonly List<ITargetArea> _areas = [];
    private readonly List<ITargetTask> _tasks = [];
    private readonly List<IUserfaultfd> _uffds = [];
    private readonly List<ITargetProcess> _children = [];
    private readonly HashSet<ITargetProcess> _live = [];

    private readonly IReadOnlyList<string>? _reference;

    /// <summary>
    /// Starts a run: opens the userfaultfd and maps the area. With a <paramref name="reference"/> trace (the kernel's),
    /// the run stops with <see cref="TraceDivergedException"/> at the first line that differs, so a target that
    /// disagrees never waits on a task the reference had already released.
    /// </summary>
    public ScenarioRun(IUffdTarget target, MemType type, int pages, IReadOnlyList<string>? reference = null)
    {
        _reference = reference;
        Target = target;
        Type = type;
        var reason = target.Unsupported(type);
        if (reason is not null)
            throw new ScenarioSkippedException($"{type.Name()} on {target.Name}: {reason}");
        Uffd = target.OpenUffd();
        _uffds.Add(Uffd);
        Area = MapExtra(type, pages);
    }

    /// <summary>The target.</summary>
    public IUffdTarget Target { get; }

    /// <summary>The memory type under test.</summary>
    public MemType Type { get; }

    /// <summary>The userfaultfd.</summary>
    public IUserfaultfd Uffd { get; private set; }

    /// <summary>The area under test.</summary>
    public ITargetArea Area { get; }

    /// <summary>Page size of the area.</summary>
    public int PageSize => Area.PageSize;

    /// <summary>The canonical trace so far.</summary>
    public IReadOnlyList<string> Trace => _trace;

    /// <summary>Maps another area (e.g. a UFFDIO_MOVE source); disposed with the run.</summary>
    public ITargetArea MapExtra(MemType type, int pages)
    {
        var a = Target.Map(type, pages);
        _areas.Add(a);
        return a;
    }

    /// <summary>Address of page <paramref name="page"/> of the area (or alias).</summary>
    public ulong P(int page, bool alias = false) => (alias ? Area.AliasStart : Area.Start) + (ulong)page * (ulong)PageSize;

    /// <summary>Records a free-form line.</summary>
    public void Note(string line) => Add(line);

    private void Add(string line)
    {
        int i = _trace.Count;
        _trace.Add(line);
        if (_reference is not null && (i >= _reference.Count || _reference[i] != line))
        {
            throw new TraceDivergedException(i, $"{Target.Name} trace diverges from the reference at line {i + 1} (- reference, + {Target.Name}):\n"
                + Golden.Diff(string.Join("\n", _reference.Take(i + 1)), string.Join("\n", _trace))
                + $"reference continues:\n   {string.Join("\n   ", _reference.Skip(i + 1))}");
        }
    }

    /// <summary>A deterministic page-sized pattern.</summary>
    public byte[] Pattern(int seed)
    {
        var b = new byte[PageSize];
        uint x = (uint)(seed * 2654435761u + 1);
        for (int i = 0; i < b.Length; i++)
        {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            b[i] = (byte)x;
        }
        return b;
    }

    private string Where(ulong address, bool end = false)
    {
        foreach (var (a, tag) in Bases())
        {
            ulong len = (ulong)a.Pages * (ulong)a.PageSize;
            if (a.start != 0 && (end ? address > a.start && address <= a.start + len : address >= a.start && address < a.start + len))
            {
                ulong off = address - a.start;
                ulong page = off / (ulong)a.PageSize, rest = off % (ulong)a.PageSize;
                return rest == 0 ? $"{tag}{page}" : $"{tag}{page}+0x{rest:x}";
            }
        }
        return $"0x{address:x}";
    }

    private IEnumerable<((ulong start, int Pages, int PageSize), string)> Bases()
    {
        for (int i = 0; i < _areas.Count; i++)
        {
            var a = _areas[i];
            string prefix = i == 0 ? "" : $"x{i}.";
            yield return ((a.Start, a.Pages, a.PageSize), prefix + "p");
            yield return ((a.AliasStart, a.Pages, a.PageSize), prefix + "a");
        }
    }

    private string Len(ulong len) => len % (ulong)PageSize == 0 ? $"{len / (ulong)PageSize}pg" : $"0x{len:x}";

    private static string R(UffdioResult r) => r.Errno == Errno.None ? $"ok field={F(r.Field)}" : $"{r.Errno} field={F(r.Field)}";

    private static string F(long field) => field < 0 ? $"-{(Errno)(int)-field}" : field.ToString(CultureInfo.InvariantCulture);

    /// <summary>UFFDIO_API; throws <see cref="ScenarioSkippedException"/> when the target lacks a required feature.</summary>
    public void Api(UffdFeatures features)
    {
        var r = Uffd.Api(Uapi.UFFD_API, features, out var available, out var ioctls);
        if (!r.Succeeded)
        {
            var probe = Target.OpenUffd();
            probe.Api(Uapi.UFFD_API, UffdFeatures.None, out available, out _);
            probe.Dispose();
            throw new ScenarioSkippedException($"{Target.Name} lacks features {features & ~available}");
        }
        Add($"api {features} -> {R(r)} ioctls={ioctls}");
    }

    /// <summary>UFFDIO_REGISTER.</summary>
    public UffdioResult Register(ulong start, ulong len, UffdModes modes)
    {
        var r = Uffd.Register(start, len, modes, out var ioctls);
        Add($"register {Where(start)} {Len(len)} {modes} -> {R(r)} ioctls={ioctls}");
        return r;
    }

    /// <summary>UFFDIO_UNREGISTER.</summary>
    public UffdioResult Unregister(ulong start, ulong len) => Log($"unregister {Where(start)} {Len(len)}", Uffd.Unregister(start, len));

    /// <summary>UFFDIO_WAKE.</summary>
    public UffdioResult Wake(ulong start, ulong len) => Log($"wake {Where(start)} {Len(len)}", Uffd.Wake(start, len));

    /// <summary>UFFDIO_COPY of <paramref name="data"/>.</summary>
    public UffdioResult Copy(ulong dst, ReadOnlySpan<byte> data, UffdCopyMode mode = UffdCopyMode.None)
        => Log($"copy {Where(dst)} {Len((ulong)data.Length)} {mode}", Uffd.Copy(dst, data, mode));

    /// <summary>UFFDIO_ZEROPAGE.</summary>
    public UffdioResult ZeroPage(ulong start, ulong len, UffdZeroPageMode mode = UffdZeroPageMode.None)
        => Log($"zeropage {Where(start)} {Len(len)} {mode}", Uffd.ZeroPage(start, len, mode));

    /// <summary>UFFDIO_CONTINUE.</summary>
    public UffdioResult Continue(ulong start, ulong len, UffdContinueMode mode = UffdContinueMode.None)
        => Log($"continue {Where(start)} {Len(len)} {mode}", Uffd.Continue(start, len, mode));

    /// <summary>UFFDIO_WRITEPROTECT.</summary>
    public UffdioResult WriteProtect(ulong start, ulong len, UffdWriteProtectMode mode)
        => Log($"writeprotect {Where(start)} {Len(len)} {mode}", Uffd.WriteProtect(start, len, mode));

    /// <summary>UFFDIO_POISON.</summary>
    public UffdioResult Poison(ulong start, ulong len, UffdPoisonMode mode = UffdPoisonMode.None)
        => Log($"poison {Where(start)} {Len(len)} {mode}", Uffd.Poison(start, len, mode));

    /// <summary>UFFDIO_MOVE.</summary>
    public UffdioResult Move(ulong dst, ulong src, ulong len, UffdMoveMode mode = UffdMoveMode.None)
        => Log($"move {Where(dst)} <- {Where(src)} {Len(len)} {mode}", Uffd.Move(dst, src, len, mode));

    private UffdioResult Log(string what, UffdioResult r)
    {
        Add($"{what} -> {R(r)}");
        return r;
    }

    /// <summary>Starts a faulting task touching <paramref name="address"/>.</summary>
    public ITargetTask Access(ulong address, AccessKind kind, byte value = 0)
    {
        Add(kind == AccessKind.Read ? $"task read {Where(address)}" : $"task write {Where(address)} 0x{value:x2}");
        var t = Area.StartAccess(address, kind, value);
        _tasks.Add(t);
        return t;
    }

    /// <summary>Starts a task calling madvise.</summary>
    public ITargetTask Zap(ulong start, ulong len, Zap zap)
    {
        Add($"task madvise {Where(start)} {Len(len)} {zap}");
        var t = Area.StartZap(start, len, zap);
        _tasks.Add(t);
        return t;
    }

    /// <summary>UFFDIO_API as issued, success or not: errno, and the features and ioctls the kernel wrote back.</summary>
    public UffdioResult RawApi(ulong api, UffdFeatures features)
    {
        var r = Uffd.Api(api, features, out var available, out var ioctls);
        Add($"api 0x{api:x} {features} -> {R(r)} features={available} ioctls={ioctls}");
        return r;
    }

    /// <summary>Opens another userfaultfd (syscall or /dev/userfaultfd) and makes it the one the next steps use.</summary>
    public void OpenUffd(int flags, bool device)
    {
        var u = Target.OpenUffd(flags, device, out var e);
        Add($"open {(device ? "/dev/userfaultfd" : "userfaultfd(2)")} 0x{flags:x} -> {e}");
        if (u is null)
            throw new ScenarioSkippedException($"{Target.Name}: cannot open a userfaultfd: {e}");
        _uffds.Add(u);
        Uffd = u;
    }

    /// <summary>The process the areas live in; skips the scenario on a target that cannot fork.</summary>
    public ITargetProcess Main => _main ??= Target.Main ?? throw new ScenarioSkippedException($"{Target.Name} cannot fork (a .NET process); uffd_helper can");

    private string Who(ITargetProcess? p) => p is null || p == _main ? "" : $" (child {_children.IndexOf(p) + 1})";

    private ITargetProcess? _main;

    /// <summary>Starts a fork(2) of the main process (it may block on UFFD_EVENT_FORK until the message is read).</summary>
    public ITargetTask Fork()
    {
        Add("task fork");
        var t = Main.StartFork();
        _tasks.Add(t);
        return t;
    }

    /// <summary>The child of a finished fork task.</summary>
    public ITargetProcess Child(ITargetTask fork)
    {
        var c = Main.Child(fork);
        _children.Add(c);
        _live.Add(c);
        return c;
    }

    /// <summary>Makes the child's userfaultfd, carried by the FORK message <paramref name="fork"/>, the one the next
    /// steps use (as uffd-common.c's poll thread does: <c>uffd = msg.arg.fork.ufd</c>).</summary>
    public IUserfaultfd UseForked(in UffdMsg fork)
    {
        if (fork.Event != UffdEvent.Fork)
            Fail($"expected a FORK message, got {fork}");
        var u = Target.AdoptForked(Uffd, fork);
        _uffds.Add(u);
        Add("uffd = fork ufd");
        Uffd = u;
        return u;
    }

    /// <summary>Makes <paramref name="uffd"/> the one the next steps use.</summary>
    public void Use(IUserfaultfd uffd, string name)
    {
        Uffd = uffd;
        Add($"uffd = {name}");
    }

    /// <summary>Starts a faulting task in <paramref name="process"/> (a forked child).</summary>
    public ITargetTask Access(ITargetProcess process, ulong address, AccessKind kind, byte value = 0)
    {
        Add((kind == AccessKind.Read ? $"task read {Where(address)}" : $"task write {Where(address)} 0x{value:x2}") + Who(process));
        var t = process.StartAccess(address, kind, value);
        _tasks.Add(t);
        return t;
    }

    /// <summary>Starts a task calling madvise in <paramref name="process"/>.</summary>
    public ITargetTask Zap(ITargetProcess process, ulong start, ulong len, Zap zap)
    {
        Add($"task madvise {Where(start)} {Len(len)} {zap}{Who(process)}");
        var t = process.StartZap(start, len, zap);
        _tasks.Add(t);
        return t;
    }

    /// <summary>MADV_PAGEOUT in the main process, waited for; its result is not recorded (the selftest ignores it).</summary>
    public void PageOut(ulong start, ulong len)
    {
        var t = Main.StartZap(start, len, Conformance.Zap.PageOut);
        _tasks.Add(t);
        if (!t.Join(HangTimeout))
            Fail("MADV_PAGEOUT did not finish");
        Add($"madvise {Where(start)} {Len(len)} PageOut (result ignored)");
    }

    /// <summary>Starts <c>mremap(MAYMOVE|FIXED)</c> of <paramref name="len"/> bytes in <paramref name="process"/>.</summary>
    public ITargetTask Mremap(ITargetProcess process, ulong from, ulong len, ulong to)
    {
        Add($"task mremap {Where(from)} {Len(len)} -> {Where(to)}{Who(process)}");
        var t = process.StartMremap(from, len, to);
        _tasks.Add(t);
        return t;
    }

    /// <summary>Records the pagemap bits uffd-unit-tests checks (PM_PRESENT, PM_SWAP, PM_UFFD_WP) of
    /// <paramref name="address"/> in <paramref name="process"/> (the main process when null).</summary>
    public void Pagemap(ulong address, ITargetProcess? process = null)
    {
        ulong e = (process ?? Main).Pagemap(address);
        Add($"pagemap {Where(address)}{Who(process)} present={e >> 63 & 1} swap={e >> 62 & 1} uffd-wp={e >> 57 & 1}");
    }

    /// <summary>A child exits.</summary>
    public void Exit(ITargetProcess child)
    {
        Add($"exit{Who(child)}");
        if (_live.Remove(child))
            child.Exit();
    }

    /// <summary>Waits (hang-guarded) for one message and records it.</summary>
    public UffdMsg ExpectMessage()
    {
        var p = Uffd.Poll((int)HangTimeout.TotalMilliseconds);
        if (p != PollResult.Readable)
            Fail($"expected a message, poll returned {p}");
        Span<UffdMsg> one = stackalloc UffdMsg[1];
        var r = Uffd.Read(one);
        if (!r.Succeeded || r.Field != 1)
            Fail($"read after POLLIN returned {r}");
        var m = one[0];
        Add(m.Event switch
        {
            UffdEvent.Fork => "msg FORK",
            UffdEvent.Pagefault => $"msg PAGEFAULT {m.PagefaultFlags} {Where(m.PagefaultAddress)}",
            UffdEvent.Remove or UffdEvent.Unmap => $"msg {m.Event} {Where(m.RemoveStart)}..{Where(m.RemoveEnd, end: true)}",
            UffdEvent.Remap => $"msg REMAP {Where(m.RemapFrom)} -> {Where(m.RemapTo)} {Len(m.RemapLen)}",
            _ => $"msg {m.Event}",
        });
        return m;
    }

    /// <summary>Records whether a message is queued right now (poll with timeout 0).</summary>
    public void Poll() => Add($"poll -> {Uffd.Poll(0)}");

    /// <summary>Records whether the task is (still) blocked in the userfault path.</summary>
    public void Blocked(ITargetTask task) => Add($"task blocked={(task.WaitBlocked(HangTimeout) ? "yes" : "no")}");

    /// <summary>Waits (hang-guarded) for the task and records its outcome.</summary>
    public AccessOutcome Finish(ITargetTask task)
    {
        if (!task.Join(HangTimeout))
            Fail("a faulting task did not finish");
        Add($"task done {task.Outcome}");
        return task.Outcome;
    }

    /// <summary>Closes the userfaultfd (releasing blocked tasks).</summary>
    public void CloseUffd()
    {
        Uffd.Dispose();
        Add("close uffd");
    }

    /// <summary>Writes from the test's own task where nothing can trap (recorded).</summary>
    public void Populate(ulong address, ReadOnlySpan<byte> data)
    {
        var e = Area.Write(address, data);
        Add($"populate {Where(address)} {Len((ulong)data.Length)} -> {e}");
    }

    /// <summary>Records the final content of each page of the area (and alias): a hash, "zero", or SIGBUS.</summary>
    public void FinalBytes()
    {
        DisposeUffds();
        foreach (var (a, tag) in Bases())
        {
            if (a.start == 0)
                continue;
            var buf = new byte[a.PageSize];
            for (int i = 0; i < a.Pages; i++)
            {
                var e = Area.Read(a.start + (ulong)i * (ulong)a.PageSize, buf);
                Add($"final {tag}{i} {(e != Errno.None ? "SIGBUS" : Describe(buf))}");
            }
        }
    }

    private static string Describe(ReadOnlySpan<byte> page)
    {
        if (!page.ContainsAnyExcept((byte)0))
            return "zero";
        ulong h = 14695981039346656037UL;
        foreach (byte b in page)
            h = (h ^ b) * 1099511628211UL;
        return $"fnv={h:x16}";
    }

    /// <summary>Fails the scenario: closes the uffd so no task stays blocked, then throws.</summary>
    public void Fail(string why)
    {
        DisposeUffds();
        foreach (var t in _tasks)
            t.Join(HangTimeout);
        throw new InvalidOperationException($"{why}\ntrace so far:\n  {string.Join("\n  ", _trace)}");
    }

    /// <summary>Closes the uffd, waits for tasks (released by the close), unmaps.</summary>
    private void DisposeUffds()
    {
        foreach (var u in _uffds)
            u.Dispose();
    }

    public void Dispose()
    {
        DisposeUffds();
        foreach (var c in _live)
            c.Exit();
        _live.Clear();
        foreach (var t in _tasks)
            t.Join(HangTimeout);
        foreach (var a in _areas)
            a.Dispose();
    }
}
