using System.Text;
using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Seeds 001/003: the RFC design (<c>-&gt;fault</c> returns VM_FAULT_UFFD_MINOR/MISSING) and the pre-check design of seed
/// 000 must be observably identical. Every fault scenario below runs on every memory configuration under both designs;
/// the traces — access results, data, messages, ioctl results, task fault/retry counts, page tables, page caches and
/// allocator counts — must be equal line by line.
/// </summary>
[TestClass]
public sealed class DesignEquivalenceTests
{
    private sealed class Run
    {
        public required UffdTestEnv Env;
        public readonly List<string> Trace = new();
        public void Add(string s) => Trace.Add(s);
    }

    private delegate void Scenario(Run run);

    private static readonly (string Name, Scenario Body, bool NeedsPageCache)[] Scenarios =
    [
        ("unarmed read then write", UnarmedReadWrite, false),
        ("missing read resolved by COPY", r => MissingFault(r, write: false), false),
        ("missing write resolved by COPY", r => MissingFault(r, write: true), false),
        ("missing read resolved by ZEROPAGE", MissingZeroPage, false),
        ("wake without resolving refaults", WakeWithoutResolving, false),
        ("close with a blocked faulter", CloseWithBlocked, false),
        ("sigbus feature", SigBusFeature, false),
        ("missing-registered page already cached: no event", MissingButCached, true),
        ("minor read resolved by CONTINUE", r => MinorFault(r, write: false), true),
        ("minor write resolved by CONTINUE", r => MinorFault(r, write: true), true),
        ("minor-registered page absent: no event", MinorButAbsent, true),
        ("missing|minor on absent then cached pages", MissingAndMinor, true),
        ("unarmed access beyond EOF", BeyondEofUnarmed, true),
        ("unarmed fault-around over cached pages", FaultAround, true),
    ];

    public static IEnumerable<object[]> Cases
        => from cfg in MemConfig.Values from s in Scenarios where !s.NeedsPageCache || !cfg.IsAnon select new object[] { cfg.Name, s.Name };

    public static string CaseName(System.Reflection.MethodInfo m, object[] data) => $"designs agree: {data[1]} on {data[0]}";

    [TestMethod]
    [DynamicData(nameof(Cases), DynamicDataDisplayName = nameof(CaseName))]
    public void DesignsAgree(string mem, string scenario)
    {
        var body = Array.Find(Scenarios, s => s.Name == scenario).Body;
        var pre = RunScenario(mem, FaultPathDesign.PreCheck, body);
        var rfc = RunScenario(mem, FaultPathDesign.RfcRetval, body);
        Assert.IsTrue(pre.Count > 2, "the scenario recorded something");
        for (int i = 0; i < Math.Max(pre.Count, rfc.Count); i++)
        {
            string a = i < pre.Count ? pre[i] : "<end>", b = i < rfc.Count ? rfc[i] : "<end>";
            Assert.AreEqual(a, b, $"trace line {i} differs\n--- pre-check ---\n{string.Join('\n', pre)}\n--- rfc ---\n{string.Join('\n', rfc)}");
        }
    }

    private static List<string> RunScenario(string mem, FaultPathDesign design, Scenario body)
    {
        var alloc = new PageAllocator();
        var features = UffdFeatures.ThreadId | UffdFeatures.MinorShmem | UffdFeatures.MinorHugetlbfs;
        var run = new Run { Env = new UffdTestEnv(mem, nrPages: mem.StartsWith("hugetlb", StringComparison.Ordinal) ? 2 : 8, design: design, features: features, allocator: alloc) };
        try
        {
            body(run);
            run.Add("final " + Snapshot(run.Env));
        }
        finally
        {
            run.Env.Dispose();
        }
        run.Add($"after teardown live={alloc.LivePages}");
        return run.Trace;
    }

    /// <summary>A design-independent picture of memory: entries with flags, refcount and a digest of the bytes.</summary>
    private static string Snapshot(UffdTestEnv env)
    {
        var sb = new StringBuilder();
        foreach (var v in env.Mm.Vmas)
        {
            sb.Append('[').Append(v).Append(']');
            for (ulong a = v.Start; a < v.End; a += (ulong)v.PageSize)
            {
                var p = env.Mm.PageTable.Get(a);
                if (p.IsNone) continue;
                ulong digest = 0;
                if (p.Folio is { } f)
                    foreach (var b in f.Data) digest = digest * 31 + b;
                sb.Append($" {(a - v.Start) / (ulong)v.PageSize}:{p.Flags}/r{p.Folio?.RefCount ?? 0}/{digest:x}");
            }
        }
        if (env.DstFile is { } df) sb.Append($" dstcache={df.CachedFolios}");
        sb.Append($" live={env.Kernel.Allocator.LivePages}");
        return sb.ToString();
    }

    /// <summary>
    /// Runs <paramref name="access"/> on a new task; whenever the task blocks in handle_userfault, reads the messages,
    /// records them and lets <paramref name="resolve"/> act. Deterministic: nothing else resolves faults meanwhile.
    /// </summary>
    private static void Drive(Run run, string what, Func<ModelTask, string> access, Action<UffdMsg> resolve)
    {
        var env = run.Env;
        string? result = null;
        var task = env.Mm.CreateTask(what);
        var th = task.RunChecked(t => result = access(t));
        var buf = new UffdMsg[8];
        while (true)
        {
            Threads.WaitUntil(() => !th.IsAlive || (env.Uffd is { Released: false } u && u.WaitingCount > 0), $"{what} finishes or blocks");
            if (!th.IsAlive) break;
            var r = env.Uffd.Read(buf);
            run.Add($"read {r}");
            if (r.Errno == Errno.EAGAIN && env.Uffd.WaitingCount > 0)
                Assert.Fail($"{what}: a read message was left unresolved\n{string.Join('\n', run.Trace)}");
            for (int i = 0; i < r.Field; i++)
            {
                var m = buf[i];
                run.Add($"msg {m.Event} flags={m.PagefaultFlags} off=0x{m.PagefaultAddress - env.Dst:x} alias={(env.DstAlias != 0 && m.PagefaultAddress >= env.DstAlias && m.PagefaultAddress < env.DstAlias + env.Bytes)} ptid={m.PagefaultPtid - (uint)task.Tid}");
                resolve(m);
            }
        }
        Threads.JoinOrFail(th, what);
        run.Add($"{what}: {result} faults={task.Faults} retries={task.Retries}");
        run.Add("  " + Snapshot(env));
    }

    private static string ReadAt(ModelTask t, ulong addr)
    {
        var r = t.ReadUInt64(addr, out var v);
        return $"{r} {v:x}";
    }

    private static string WriteAt(ModelTask t, ulong addr, ulong v) => t.WriteUInt64(addr, v).ToString();

    private static void Copy(Run run, UffdMsg m)
    {
        var env = run.Env;
        ulong page = m.PagefaultAddress & ~((ulong)env.PageSize - 1);
        int idx = (int)((page - env.Dst) / (ulong)env.PageSize);
        run.Add("COPY " + env.Uffd.Copy(page, env.Expected(idx % env.NrPages), UffdCopyMode.None));
    }

    private static void UnarmedReadWrite(Run run)
    {
        var env = run.Env;
        Drive(run, "read", t => ReadAt(t, env.DstPage(1) + 16), _ => Assert.Fail("no message expected"));
        Drive(run, "write", t => WriteAt(t, env.DstPage(1) + 16, 0xfeed), _ => Assert.Fail("no message expected"));
        Drive(run, "write other page", t => WriteAt(t, env.DstPage(0), 0xbeef), _ => Assert.Fail("no message expected"));
    }

    private static void MissingFault(Run run, bool write)
    {
        var env = run.Env;
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Missing, out var io) + $" {io}");
        if (write)
            Drive(run, "write", t => WriteAt(t, env.DstPage(1) + 24, 0x77), m => Copy(run, m));
        else
            Drive(run, "read", t => ReadAt(t, env.DstPage(1) + 24), m => Copy(run, m));
        Drive(run, "read back", t => ReadAt(t, env.DstPage(1) + 24), _ => Assert.Fail("resolved page faulted again"));
        run.Add("COPY again " + env.Uffd.Copy(env.DstPage(1), env.Expected(1), UffdCopyMode.None));
    }

    private static void MissingZeroPage(Run run)
    {
        var env = run.Env;
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Missing, out _));
        Drive(run, "read", t => ReadAt(t, env.DstPage(0) + 8), m =>
        {
            var z = env.Uffd.ZeroPage(m.PagefaultAddress, (ulong)env.PageSize, UffdZeroPageMode.None);
            run.Add("ZEROPAGE " + z);
            if (!z.Succeeded) run.Add("COPY instead " + env.Uffd.Copy(m.PagefaultAddress, new byte[env.PageSize], UffdCopyMode.None));
        });
    }

    private static void WakeWithoutResolving(Run run)
    {
        var env = run.Env;
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Missing, out _));
        int wakes = 0;
        Drive(run, "read", t => ReadAt(t, env.DstPage(1)), m =>
        {
            if (wakes++ == 0)
                run.Add("WAKE " + env.Uffd.Wake(m.PagefaultAddress, (ulong)env.PageSize));
            else
                Copy(run, m);
        });
    }

    private static void CloseWithBlocked(Run run)
    {
        var env = run.Env;
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Missing, out _));
        Drive(run, "read", t => ReadAt(t, env.DstPage(0) + 8), _ => env.Uffd.Dispose());
        run.Add("vmas armed after close: " + env.Mm.Vmas.Count(v => v.UffdArmed));
    }

    private static void SigBusFeature(Run run)
    {
        var env = run.Env;
        Assert.AreEqual(Errno.None, env.Mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var sig));
        using (sig)
        {
            run.Add("api " + sig!.Api(Uapi.UFFD_API, UffdFeatures.SigBus, out _, out _));
            run.Add("register " + sig.Register(env.Dst, env.Bytes, UffdModes.Missing, out _));
            Drive(run, "read", t => ReadAt(t, env.DstPage(0)), _ => Assert.Fail("SIGBUS mode queues nothing"));
            run.Add($"pending {sig.PendingCount}");
        }
    }

    private static void Populate(Run run, int page, ulong value)
    {
        var env = run.Env;
        ulong via = env.DstAlias;
        if (via == 0)
        {
            Assert.AreEqual(Errno.None, env.Mm.Mmap(0, env.Bytes, Prot.Read | Prot.Write, MapFlags.Shared, env.DstFile, 0, out via));
        }
        run.Add($"populate {page}: " + env.Main.WriteUInt64(via + (ulong)page * (ulong)env.PageSize, value));
    }

    private static void MissingButCached(Run run)
    {
        var env = run.Env;
        Populate(run, 1, 0x1111);
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Missing, out _));
        Drive(run, "read", t => ReadAt(t, env.DstPage(1)), _ => Assert.Fail("cached page must not trap MISSING"));
        Drive(run, "write", t => WriteAt(t, env.DstPage(1) + 8, 0x2222), _ => Assert.Fail("cached page must not trap MISSING"));
    }

    private static void MinorFault(Run run, bool write)
    {
        var env = run.Env;
        Populate(run, 1, 0x3333);
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Minor, out var io) + $" {io}");
        Action<UffdMsg> cont = m => run.Add("CONTINUE " + env.Uffd.Continue(m.PagefaultAddress & ~((ulong)env.PageSize - 1), (ulong)env.PageSize, UffdContinueMode.None));
        if (write)
            Drive(run, "write", t => WriteAt(t, env.DstPage(1) + 8, 0x4444), cont);
        else
            Drive(run, "read", t => ReadAt(t, env.DstPage(1)), cont);
        Drive(run, "read back", t => ReadAt(t, env.DstPage(1)), _ => Assert.Fail("resolved page faulted again"));
    }

    private static void MinorButAbsent(Run run)
    {
        var env = run.Env;
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Minor, out _));
        Drive(run, "read", t => ReadAt(t, env.DstPage(0)), _ => Assert.Fail("absent page must not trap MINOR"));
    }

    private static void MissingAndMinor(Run run)
    {
        var env = run.Env;
        Populate(run, 1, 0x5555);
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Missing | UffdModes.Minor, out _));
        Action<UffdMsg> resolve = m =>
        {
            ulong page = m.PagefaultAddress & ~((ulong)env.PageSize - 1);
            if ((m.PagefaultFlags & UffdPagefaultFlags.Minor) != 0)
                run.Add("CONTINUE " + env.Uffd.Continue(page, (ulong)env.PageSize, UffdContinueMode.None));
            else
                Copy(run, m);
        };
        Drive(run, "read absent", t => ReadAt(t, env.DstPage(0)), resolve);
        Drive(run, "read cached", t => ReadAt(t, env.DstPage(1)), resolve);
    }

    private static void BeyondEofUnarmed(Run run)
    {
        var env = run.Env;
        run.Add("truncate " + env.DstFile!.Truncate(env.PageSize));
        Drive(run, "read beyond EOF", t => ReadAt(t, env.DstPage(1)), _ => Assert.Fail("unarmed"));
        run.Add("register " + env.Uffd.Register(env.Dst, env.Bytes, UffdModes.Minor, out _));
        Drive(run, "read beyond EOF, MINOR-armed", t => ReadAt(t, env.DstPage(1)), _ => Assert.Fail("no folio beyond EOF: no MINOR"));
    }

    /// <summary>
    /// The one place the designs differ observably (found by this suite): a MISSING-armed access beyond <c>i_size</c> of
    /// a page-cache type. Seed 000's <c>__do_userfault</c> runs before <c>-&gt;fault</c> and only asks
    /// <c>get_folio_noalloc</c>, which finds nothing there (shmem's SGP_NOALLOC lookup fails beyond EOF), so the fault is
    /// reported as MISSING; the handler's COPY then fails with EFAULT and the task stays blocked until the range is woken
    /// or unregistered, after which it gets SIGBUS. Under the RFC design (and mainline shmem) <c>-&gt;fault</c> checks
    /// <c>i_size</c> first and the task gets SIGBUS at once. hugetlb checks the size before its userfault in both.
    /// </summary>
    [TestMethod(DisplayName = "designs differ: MISSING-armed access beyond EOF (pre-check reports MISSING, RFC gives SIGBUS)")]
    [DataRow("shmem")]
    [DataRow("hugetlb")]
    public void BeyondEofDivergence(string mem)
    {
        foreach (var design in new[] { FaultPathDesign.PreCheck, FaultPathDesign.RfcRetval })
        {
            using var env = new UffdTestEnv(mem, nrPages: 2, design: design);
            Assert.AreEqual(Errno.None, env.DstFile!.Truncate(env.PageSize));
            env.RegisterDst(UffdModes.Missing);
            AccessResult result = AccessResult.Ok;
            var th = env.Mm.CreateTask().RunChecked(t => result = t.ReadUInt64(env.DstPage(1), out _));
            bool reportsMissing = design == FaultPathDesign.PreCheck && !env.Config.IsHugetlb;
            if (reportsMissing)
            {
                Threads.WaitUntil(() => env.Uffd.WaitingCount == 1, "the fault beyond EOF is reported");
                Assert.IsTrue(env.Uffd.ReadOne(out var m).Succeeded);
                Assert.AreEqual(env.DstPage(1), m.PagefaultAddress);
                var c = env.Uffd.Copy(env.DstPage(1), new byte[env.PageSize], UffdCopyMode.None);
                Assert.AreEqual(Errno.EFAULT, c.Errno, "COPY beyond i_size");
                Assert.IsTrue(env.Uffd.Unregister(env.Dst, env.Bytes).Succeeded, "unregister wakes the MISSING waiter");
            }
            Threads.JoinOrFail(th, "access beyond EOF");
            Assert.AreEqual(AccessResult.SigBus, result, design.ToString());
            Assert.AreEqual(0, env.Uffd.WaitingCount);
        }
    }

    /// <summary>
    /// Issue 11 part 5: the fix for the divergence above, behind <see cref="ModelOptions.PreCheckRespectsISize"/>. With it the
    /// pre-check leaves a page beyond <c>i_size</c> to <c>-&gt;fault</c>, no message is queued, and the task gets SIGBUS at once,
    /// as under the RFC design and mainline.
    /// </summary>
    [TestMethod(DisplayName = "pre-check option PreCheckRespectsISize restores SIGBUS beyond EOF")]
    [DataRow("shmem")]
    [DataRow("shmem-private")]
    public void PreCheckISizeOptionRestoresSigBus(string mem)
    {
        var cfg = MemConfig.Get(mem);
        var k = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All, new ModelOptions { PreCheckRespectsISize = true });
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, k.MemfdCreate("shmem", 2 * Folio.BasePageSize, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Folio.BasePageSize, Prot.Read | Prot.Write, cfg.MapShared ? MapFlags.Shared : MapFlags.Private, f, 0, out var mem0));
        Assert.AreEqual(Errno.None, f!.Truncate(Folio.BasePageSize));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY, out var uffd));
        Assert.IsTrue(uffd!.Api(Uapi.UFFD_API, UffdFeatures.MissingShmem, out _, out _).Succeeded);
        Assert.IsTrue(uffd.Register(mem0, 2 * Folio.BasePageSize, UffdModes.Missing, out _).Succeeded);
        AccessResult result = AccessResult.Ok;
        var th = mm.CreateTask().RunChecked(t => result = t.ReadUInt64(mem0 + Folio.BasePageSize, out _));
        Threads.JoinOrFail(th, "access beyond EOF (a MISSING message would block it)");
        Assert.AreEqual(AccessResult.SigBus, result);
        Assert.AreEqual(0, uffd.PendingCount, "no message");
        uffd.Dispose();
    }

    private static void FaultAround(Run run)
    {
        var env = run.Env;
        for (int i = 0; i < env.NrPages; i += 2)
            Populate(run, i, 0x6000UL + (ulong)i);
        Drive(run, "read", t => ReadAt(t, env.DstPage(0)), _ => Assert.Fail("unarmed"));
        Drive(run, "read other", t => ReadAt(t, env.DstPage(env.NrPages - 2)), _ => Assert.Fail("unarmed"));
    }
}
