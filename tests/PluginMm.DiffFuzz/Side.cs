using System.Text;
using PluginMm.Userfaultfd;

using PluginMm.Conformance;

namespace PluginMm.DiffFuzz;

/// <summary>What one operation produced on one side: named fields in order (errno, field, masks, messages, outcomes).</summary>
public sealed class Rec
{
    private readonly List<(string Key, string Value)> _fields = [];

    /// <summary>The fields.</summary>
    public IReadOnlyList<(string Key, string Value)> Fields => _fields;

    /// <summary>Adds a field.</summary>
    public Rec Add(string key, string value)
    {
        _fields.Add((key, value));
        return this;
    }

    /// <summary>Adds errno and (when the ioctl has one) the signed result field.</summary>
    public Rec Add(UffdioResult r, bool hasField)
    {
        Add("errno", r.Errno.ToString());
        if (hasField)
            Add("field", r.Field.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return this;
    }

    /// <summary>The first field where <paramref name="a"/> and <paramref name="b"/> differ (a missing field counts), or null.</summary>
    public static string? FirstDifference(Rec a, Rec b)
    {
        int n = Math.Max(a._fields.Count, b._fields.Count);
        for (int i = 0; i < n; i++)
        {
            var fa = i < a._fields.Count ? a._fields[i] : ("<none>", "");
            var fb = i < b._fields.Count ? b._fields[i] : ("<none>", "");
            if (fa != fb)
                return fa.Item1 != "<none>" ? fa.Item1 : fb.Item1;
        }
        return null;
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var (k, v) in _fields)
            sb.Append(sb.Length == 0 ? "" : " ").Append(k).Append('=').Append(v);
        return sb.ToString();
    }
}

/// <summary>A task started by a case (a faulting access or a system call that may block on a userfaultfd event).</summary>
public sealed class Worker
{
    /// <summary>Creates the record of worker number <paramref name="index"/>.</summary>
    public Worker(int index, string what)
    {
        Index = index;
        What = what;
    }

    /// <summary>w1, w2, ... in start order (the same on both sides).</summary>
    public int Index { get; }

    /// <summary>What it does (for messages).</summary>
    public string What { get; }

    /// <summary>For an access: the page it touches (page-aligned address), else ulong.MaxValue.</summary>
    public ulong Page { get; init; } = ulong.MaxValue;

    /// <summary>For an access: whether it writes.</summary>
    public bool Writes { get; init; }

    /// <summary>The side's thread id of the task (host tid, or model task tid), for ptid.</summary>
    public uint Tid { get; set; }

    /// <summary>The host thread.</summary>
    public Thread? Thread { get; set; }

    /// <summary>Set when the body finished: its outcome.</summary>
    public volatile string? Outcome;

    /// <summary>Whether the outcome was reported in a record.</summary>
    public bool Reported { get; set; }

    /// <summary>Still running or blocked.</summary>
    public bool Alive => Outcome is null;

    /// <inheritdoc/>
    public override string ToString() => $"w{Index}";
}

/// <summary>
/// One side of the comparison (the model or the host kernel). The semantics of every operation — how arguments are
/// resolved, what is recorded, how faults are answered — live here once; the sides supply the primitives.
/// </summary>
public abstract class Side : IDisposable
{
    /// <summary>How long a worker may take to finish or block before it counts as running (a hang).</summary>
    public static int SettleMs { get; set; } = 2000;

    private readonly List<Worker> _workers = [];
    private readonly HashSet<ulong> _racedPages = [];

    /// <summary>"model" or "host".</summary>
    public abstract string Name { get; }

    /// <summary>The case's layout (after <see cref="Setup"/>).</summary>
    protected Layout Lay { get; private set; } = null!;

    /// <summary>The case.</summary>
    protected FuzzCase Case { get; private set; } = null!;

    /// <summary>The current userfaultfd (null after close).</summary>
    protected IUserfaultfd? Uffd { get; set; }

    /// <summary>Workers started so far.</summary>
    protected IReadOnlyList<Worker> Workers => _workers;

    /// <summary>Why this side cannot run <paramref name="type"/> (null if it can).</summary>
    public abstract string? Unsupported(MemType type);

    /// <summary>Maps the layout of <paramref name="c"/> and opens the userfaultfd.</summary>
    public void Setup(FuzzCase c)
    {
        Case = c;
        ulong ps = c.Type.IsHuge() ? Layout.Pmd : 4096;
        Lay = MapLayout(c, ps);
        Uffd = OpenUffd();
    }

    /// <summary>Reserves the span, maps guards, area, alias and source; returns the layout.</summary>
    protected abstract Layout MapLayout(FuzzCase c, ulong pageSize);

    /// <summary>A fresh O_NONBLOCK|O_CLOEXEC userfaultfd that also takes kernel-mode faults.</summary>
    protected abstract IUserfaultfd OpenUffd();

    /// <summary>UFFDIO_COPY from an address of this side's process.</summary>
    protected abstract UffdioResult CopyFrom(ulong dst, ulong src, ulong len, ulong mode);

    /// <summary>Writes <paramref name="value"/> over [addr, addr+len) of the source buffer from the harness.</summary>
    protected abstract void FillSource(ulong addr, ulong len, byte value);

    /// <summary>Starts <paramref name="body"/> on a new task; fills <see cref="Worker.Tid"/> and <see cref="Worker.Thread"/>.</summary>
    protected abstract void Start(Worker w, Func<string> body);

    /// <summary>A one-byte access by the current task: "ok 0xNN", "fault" (SIGBUS/SIGSEGV) or another outcome.</summary>
    protected abstract string Access(ulong address, bool write, byte value);

    /// <summary>Raw system calls on this side.</summary>
    protected abstract Errno Madvise(ulong a, ulong len, int advice);

    /// <inheritdoc cref="Madvise"/>
    protected abstract Errno Mprotect(ulong a, ulong len, int prot);

    /// <inheritdoc cref="Madvise"/>
    protected abstract Errno Munmap(ulong a, ulong len);

    /// <inheritdoc cref="Madvise"/>
    protected abstract Errno Mremap(ulong old, ulong oldLen, ulong newLen, int flags, ulong newAddr, out ulong result);

    /// <summary><c>fallocate(PUNCH_HOLE|KEEP_SIZE)</c> on the area's file.</summary>
    protected abstract Errno PunchHole(long offset, long len);

    /// <summary>Maps PROT_NONE guards into every hole of the span (after munmap/mremap), the same on both sides.</summary>
    protected abstract void PlugHoles();

    /// <summary>pagemap bits of the page at <paramref name="a"/>: present, uffd-wp, file.</summary>
    protected abstract (bool Present, bool Wp, bool File) Pagemap(ulong a);

    /// <summary>Whether page <paramref name="index"/> of the file is in the page cache ("1"/"0"), or null if not per page.</summary>
    protected abstract string? CachedPage(long index);

    /// <summary>Pages of the file in the page cache.</summary>
    protected abstract long CachedTotal();

    /// <summary>Reads memory from the harness (present pages only before close); false on a fault.</summary>
    protected abstract bool ReadMemory(ulong a, Span<byte> buffer);

    /// <summary>
    /// Waits until every alive worker is blocked in a userfaultfd (a fault or an event) or finished; false on
    /// timeout (some worker neither finished nor blocked).
    /// </summary>
    protected abstract bool Settle(int timeoutMs);

    /// <summary>Polls <paramref name="done"/> (spinning, then sleeping 1 ms) until it holds or <paramref name="timeoutMs"/> passes.</summary>
    protected static bool WaitUntil(Func<bool> done, int timeoutMs)
    {
        long deadline = Environment.TickCount64 + timeoutMs;
        var spin = new SpinWait();
        while (!done())
        {
            if (Environment.TickCount64 > deadline)
                return false;
            if (spin.NextSpinWillYield)
                Thread.Sleep(1);
            spin.SpinOnce();
        }
        return true;
    }

    /// <summary>Frees everything (unmaps, breaks livelocked workers, joins them).</summary>
    public abstract void Dispose();

    /// <summary>Runs one operation and records what it did.</summary>
    public Rec Execute(Op op)
    {
        var r = new Rec();
        switch (op.Kind)
        {
            case "api":
                {
                    if (Uffd is null) { r.Add("errno", "EBADF"); break; }
                    var res = Uffd.Api(op.Num("api"), (UffdFeatures)op.Num("features"), out var avail, out var ioctls);
                    r.Add(res, false).Add("features", Op.Hex((ulong)avail)).Add("ioctls", Op.Hex((ulong)ioctls));
                    break;
                }
            case "register":
                {
                    if (Uffd is null) { r.Add("errno", "EBADF"); break; }
                    var res = Uffd.Register(A(op, "start"), op.Num("len"), (UffdModes)op.Num("mode"), out var ioctls);
                    r.Add(res, false).Add("ioctls", Op.Hex((ulong)ioctls));
                    break;
                }
            case "unregister":
                r.Add(Uffd?.Unregister(A(op, "start"), op.Num("len")) ?? UffdioResult.Fail(Errno.EBADF), false);
                break;
            case "wake":
                r.Add(Uffd?.Wake(A(op, "start"), op.Num("len")) ?? UffdioResult.Fail(Errno.EBADF), false);
                break;
            case "copy":
                {
                    ulong src = A(op, "src"), len = op.Num("len");
                    if (src >= Lay.S && src < Lay.S + Lay.AreaLen)
                        FillSource(src, Math.Min(len, Lay.S + Lay.AreaLen - src), (byte)op.Num("fill"));
                    r.Add(Uffd is null ? UffdioResult.Fail(Errno.EBADF) : CopyFrom(A(op, "dst"), src, len, op.Num("mode")), true);
                    break;
                }
            case "zeropage":
                r.Add(Uffd?.ZeroPage(A(op, "start"), op.Num("len"), (UffdZeroPageMode)op.Num("mode")) ?? UffdioResult.Fail(Errno.EBADF), true);
                break;
            case "continue":
                r.Add(Uffd?.Continue(A(op, "start"), op.Num("len"), (UffdContinueMode)op.Num("mode")) ?? UffdioResult.Fail(Errno.EBADF), true);
                break;
            case "wp":
                r.Add(Uffd?.WriteProtect(A(op, "start"), op.Num("len"), (UffdWriteProtectMode)op.Num("mode")) ?? UffdioResult.Fail(Errno.EBADF), false);
                break;
            case "poison":
                r.Add(Uffd?.Poison(A(op, "start"), op.Num("len"), (UffdPoisonMode)op.Num("mode")) ?? UffdioResult.Fail(Errno.EBADF), true);
                break;
            case "move":
                r.Add(Uffd?.Move(A(op, "dst"), A(op, "src"), op.Num("len"), (UffdMoveMode)op.Num("mode")) ?? UffdioResult.Fail(Errno.EBADF), true);
                break;
            case "read":
                ReadMessages(r, (int)op.Num("max"), resolve: false);
                break;
            case "resolve":
                for (int round = 0; round < 4; round++)
                {
                    if (!ReadMessages(r, 16, resolve: true))
                        break;
                    Settled(r);
                }
                break;
            case "access":
                {
                    ulong a = A(op, "at");
                    bool write = op["rw"] == "w";
                    byte v = (byte)op.Num("val");
                    StartWorker(r, $"{op}", () => Access(a, write, v), a & ~(Lay.PageSize - 1), write);
                    break;
                }
            case "madvise":
                {
                    ulong a = A(op, "start"), len = op.Num("len");
                    int adv = (int)op.Num("advice");
                    StartWorker(r, $"{op}", () => Madvise(a, len, adv).ToString());
                    break;
                }
            case "mprotect":
                {
                    ulong a = A(op, "start"), len = op.Num("len");
                    int prot = (int)op.Num("prot");
                    StartWorker(r, $"{op}", () => Mprotect(a, len, prot).ToString());
                    break;
                }
            case "munmap":
                {
                    ulong a = A(op, "start"), len = op.Num("len");
                    StartWorker(r, $"{op}", () => Munmap(a, len).ToString());
                    break;
                }
            case "mremap":
                {
                    ulong a = A(op, "old"), oldLen = op.Num("oldlen"), newLen = op.Num("newlen"), to = A(op, "new");
                    int flags = (int)op.Num("flags");
                    StartWorker(r, $"{op}", () =>
                    {
                        var e = Mremap(a, oldLen, newLen, flags, to, out ulong res);
                        return e == Errno.None ? $"ok@{Lay.Describe(res)}" : e.ToString();
                    });
                    break;
                }
            case "punch":
                {
                    long off = (long)op.Num("off"), len = (long)op.Num("len");
                    StartWorker(r, $"{op}", () => Case.Type.HasPageCache() ? PunchHole(off, len).ToString() : "ENODEV");
                    break;
                }
            case "close":
                Uffd?.Dispose();
                Uffd = null;
                Settled(r);
                break;
            case "open":
                if (Uffd is null)
                    Uffd = OpenUffd();
                r.Add("errno", "None");
                break;
            case "summary":
                Summary(r, op["when"] == "after");
                break;
            default:
                throw new FormatException($"unknown operation '{op.Kind}'");
        }
        if (op.Kind is not ("access" or "madvise" or "mprotect" or "munmap" or "mremap" or "punch" or "close" or "resolve"))
            Settled(r);
        if (op.Kind is "munmap" or "mremap")
            PlugHoles();
        return r;
    }

    private ulong A(Op op, string key) => Lay.Resolve(op[key]);

    private void StartWorker(Rec r, string what, Func<string> body, ulong page = ulong.MaxValue, bool writes = false)
    {
        var w = new Worker(_workers.Count + 1, what) { Page = page, Writes = writes };
        _workers.Add(w);
        Start(w, () =>
        {
            try { return body(); }
            catch (Exception e) { return $"exception:{e.GetType().Name}"; }
        });
        bool settled = Settle(SettleMs);
        if (w.Alive)
        {
            r.Add(w.ToString(), settled ? "blocked" : "running");
        }
        else
        {
            r.Add(w.ToString(), w.Outcome!);
            w.Reported = true;
        }
        Settled(r, settle: false);
    }

    /// <summary>Settles the workers and records those that finished since the last record (and any that run on).</summary>
    private void Settled(Rec r, bool settle = true)
    {
        bool ok = !settle || Settle(SettleMs);
        var done = new StringBuilder();
        var batch = _workers.Where(w => !w.Alive && !w.Reported).ToList();
        // Two writers of one page woken together write in either order: that page's content is not compared.
        foreach (var g in batch.Where(w => w.Writes).GroupBy(w => w.Page).Where(g => g.Count() > 1))
            _racedPages.Add(g.Key);
        foreach (var w in batch)
        {
            w.Reported = true;
            // Workers woken together run in any order: a read of a page that a writer woken with it also wrote may see
            // the value from before or after the write, on either side. Such a value is not compared.
            bool raced = !w.Writes && w.Page != ulong.MaxValue && w.Outcome!.StartsWith("ok:", StringComparison.Ordinal)
                && batch.Any(o => o.Writes && o.Page == w.Page);
            done.Append(done.Length == 0 ? "" : ",").Append(w).Append(':').Append(raced ? "ok:raced" : w.Outcome);
        }
        if (done.Length > 0)
            r.Add("done", done.ToString());
        if (!ok)
            r.Add("running", string.Join(",", _workers.Where(w => w.Alive)));
    }

    /// <summary>Non-blocking reads of up to <paramref name="max"/> messages; with <paramref name="resolve"/>, answers each
    /// page fault properly. False when nothing was read.</summary>
    private bool ReadMessages(Rec r, int max, bool resolve)
    {
        if (Uffd is null)
        {
            r.Add("read", "EBADF");
            return false;
        }
        var buf = new UffdMsg[Math.Max(1, max)];
        var res = Uffd.Read(buf);
        if (!res.Succeeded)
        {
            r.Add("read", res.Errno.ToString());
            return false;
        }
        // Reading completed any non-cooperative events: let their tasks finish (mmap_changing drops when they do)
        // before answering, so the answers do not race them.
        if (resolve)
            Settle(SettleMs);
        var msgs = new StringBuilder();
        var answers = new StringBuilder();
        for (int i = 0; i < res.Field; i++)
        {
            var m = buf[i];
            msgs.Append(msgs.Length == 0 ? "" : ",").Append(Describe(m));
            if (resolve && m.Event == UffdEvent.Pagefault)
                answers.Append(answers.Length == 0 ? "" : ",").Append(Answer(m));
        }
        r.Add("msgs", msgs.ToString());
        if (answers.Length > 0)
            r.Add("answers", answers.ToString());
        return res.Field > 0;
    }

    private string Describe(UffdMsg m) => m.Event switch
    {
        UffdEvent.Pagefault => $"PF[{Op.Hex((ulong)m.PagefaultFlags)}]{Lay.Describe(m.PagefaultAddress)}{Ptid(m.PagefaultPtid)}",
        UffdEvent.Remap => $"REMAP:{Lay.Describe(m.RemapFrom)}>{Lay.Describe(m.RemapTo)}:{Op.Hex(m.RemapLen)}",
        UffdEvent.Remove => $"REMOVE:{Lay.Describe(m.RemoveStart)}..{Lay.Describe(m.RemoveEnd)}",
        UffdEvent.Unmap => $"UNMAP:{Lay.Describe(m.RemoveStart)}..{Lay.Describe(m.RemoveEnd)}",
        UffdEvent.Fork => "FORK",
        _ => $"EVENT{(int)m.Event}",
    };

    private string Ptid(uint ptid)
    {
        if (ptid == 0)
            return "";
        var w = _workers.FirstOrDefault(w => w.Tid == ptid);
        return w is null ? ":tid?" : $":{w}";
    }

    /// <summary>The proper answer to a page fault: WP → unprotect, MINOR → CONTINUE, MISSING → COPY (a wake if it exists).</summary>
    private string Answer(UffdMsg m)
    {
        ulong ps = Lay.PageSize, page = m.PagefaultAddress & ~(ps - 1);
        var f = m.PagefaultFlags;
        if ((f & UffdPagefaultFlags.Wp) != 0)
            return "wp:" + Uffd!.WriteProtect(page, ps, 0).Errno;
        if ((f & UffdPagefaultFlags.Minor) != 0)
            return "continue:" + Uffd!.Continue(page, ps, 0);
        FillSource(Lay.S, ps, 0xa5);
        var c = CopyFrom(page, Lay.S, ps, 0);
        if (c.Errno == Errno.EEXIST)
            return "copy:EEXIST+wake:" + Uffd!.Wake(page, ps).Errno;
        return "copy:" + c;
    }

    /// <summary>The per-page summary of the area and the scratch span: pagemap bits, page-cache residency, content.</summary>
    private void Summary(Rec r, bool after)
    {
        ulong ps = Lay.PageSize;
        var buf = new byte[ps];
        foreach (var (name, start) in new[] { ("p", Lay.A), ("x", Lay.X) })
        {
            for (int i = 0; i < Case.Pages; i++)
            {
                ulong a = start + (ulong)i * ps;
                var (present, wp, file) = Pagemap(a);
                var sb = new StringBuilder();
                sb.Append(present ? 'P' : '-').Append(wp ? 'W' : '-').Append(file ? 'F' : '-');
                if (name == "p" && Case.Type.HasPageCache() && CachedPage(i) is { } cached)
                    sb.Append(cached == "1" ? 'C' : '-');
                if (present || after)
                    sb.Append(' ').Append(!ReadMemory(a, buf) ? "fault" : _racedPages.Contains(a) ? "raced" : Hash(buf));
                r.Add($"{name}{i}", sb.ToString());
            }
        }
        if (Case.Type.HasPageCache())
            r.Add("cached", CachedTotal().ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static string Hash(ReadOnlySpan<byte> b)
    {
        bool same = true;
        foreach (var x in b)
            if (x != b[0]) { same = false; break; }
        if (same)
            return $"all{b[0]:x2}";
        ulong h = 14695981039346656037;
        foreach (var x in b)
            h = (h ^ x) * 1099511628211;
        return h.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }
}
