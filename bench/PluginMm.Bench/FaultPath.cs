using BenchmarkDotNet.Attributes;
using PluginMm.Runtime;
using PluginMm.Userfaultfd;

namespace PluginMm.Bench;

/// <summary>Which fault path a <see cref="FaultFixture"/> runs (seed 003).</summary>
public enum PathVariant
{
    /// <summary>The path built with no userfault code (<see cref="FaultPathDesign.NoUserfault"/>) on <see cref="ShmemPlain"/>.</summary>
    NoUserfault,

    /// <summary>Seed 000's pre-check on <see cref="ShmemPlain"/> (a <c>-&gt;fault</c> without any userfault line, as seed 000 proposes).</summary>
    PreCheckPlain,

    /// <summary>Seed 000's pre-check on the shipped shmem (whose <c>Fault</c> keeps the RFC's one dead retval test).</summary>
    PreCheck,

    /// <summary>Seed 001's RFC design: shmem's <c>-&gt;fault</c> returns VM_FAULT_UFFD_MINOR / _MISSING.</summary>
    RfcRetval,
}

/// <summary>The three seed-003 scenarios.</summary>
public enum FaultScenario
{
    /// <summary>(a) a page-cache fault (write to a MAP_SHARED shmem page that is cached) with no userfaultfd armed.</summary>
    CachedNoUffd,

    /// <summary>(b) a sequential MINOR trap on shmem: fault → message → UFFDIO_CONTINUE → retry.</summary>
    MinorTrap,

    /// <summary>(c) a MINOR-armed fault whose page is not in the page cache (->fault allocates it; no trap).</summary>
    MinorArmedNotCached,
}

/// <summary>
/// One model kernel set up for one seed-003 scenario: a 64-page shmem file mapped MAP_SHARED, one task that writes one
/// byte to every page in order (each a fault through <c>__do_fault</c>: writes to a shared mapping always go through
/// <c>do_shared_fault</c>, whatever fault-around does for reads), then the reset that makes the next pass fault again:
/// MADV_DONTNEED (zap, the page cache stays) for (a) and (b), MADV_REMOVE (zap and punch the page cache) for (c).
/// The reset's share is inside every figure, equally for every design.
/// </summary>
public sealed class FaultFixture : IDisposable
{
    public const int Pages = 64;
    private const ulong Len = Pages * Folio.BasePageSize;

    private readonly Mm _mm;
    private readonly ModelTask _task;
    private readonly ulong _addr;
    private readonly Advice _reset;
    private readonly UserfaultfdCtx? _ctx;
    private readonly Thread? _handler;
    private long _continues;

    public FaultFixture(PathVariant variant, FaultScenario scenario)
    {
        Variant = variant;
        Scenario = scenario;
        var design = variant switch
        {
            PathVariant.NoUserfault => FaultPathDesign.NoUserfault,
            PathVariant.RfcRetval => FaultPathDesign.RfcRetval,
            _ => FaultPathDesign.PreCheck,
        };
        if (variant == PathVariant.NoUserfault && scenario != FaultScenario.CachedNoUffd)
            throw new ArgumentException("the path without userfault code cannot arm a userfaultfd", nameof(scenario));
        var kernel = new ModelKernel(ShmemPlain.RegistryWithBackends, new ModelOptions { Design = design });
        _mm = kernel.CreateMm();
        _task = _mm.CreateTask("bench");
        string type = variant is PathVariant.NoUserfault or PathVariant.PreCheckPlain ? ShmemPlain.Name : "shmem";
        Check(kernel.MemfdCreate(type, (long)Len, out var file), "memfd_create");
        Check(_mm.Mmap(0, Len, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out _addr), "mmap");
        _reset = scenario == FaultScenario.MinorArmedNotCached ? Advice.Remove : Advice.DontNeed;
        if (scenario != FaultScenario.MinorArmedNotCached)
        {
            TouchAll(); // fills the page cache
            Check(_mm.Madvise(_addr, Len, Advice.DontNeed), "madvise");
        }
        if (scenario != FaultScenario.CachedNoUffd)
        {
            Check(_mm.Userfaultfd(Uapi.O_NONBLOCK, out _ctx), "userfaultfd");
            if (!_ctx!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded)
                throw new InvalidOperationException("UFFDIO_API failed");
            var reg = _ctx.Register(_addr, Len, UffdModes.Minor, out _);
            if (!reg.Succeeded)
                throw new InvalidOperationException("UFFDIO_REGISTER(MINOR): " + reg);
            if (scenario == FaultScenario.MinorTrap)
            {
                _handler = new Thread(ServeMinor) { IsBackground = true, Name = "minor-handler" };
                _handler.Start();
            }
        }
    }

    public PathVariant Variant { get; }

    public FaultScenario Scenario { get; }

    /// <summary>UFFDIO_CONTINUEs done by the handler (scenario b): one per fault, checked by <see cref="Verify"/>.</summary>
    public long Continues => Interlocked.Read(ref _continues);

    /// <summary>Faults the task took.</summary>
    public long Faults => _task.Faults;

    /// <summary>One pass: <see cref="Pages"/> faults, then the reset.</summary>
    public void Pass()
    {
        TouchAll();
        _mm.Madvise(_addr, Len, _reset);
    }

    private void TouchAll()
    {
        for (ulong a = _addr; a < _addr + Len; a += Folio.BasePageSize)
        {
            if (_task.WriteUInt64(a, a) != AccessResult.Ok)
                throw new InvalidOperationException($"access at 0x{a:x} failed");
        }
    }

    /// <summary>After <paramref name="passes"/> passes: every fault of (b) was a MINOR trap served by one CONTINUE.</summary>
    public string? Verify(long passes)
    {
        if (Scenario == FaultScenario.MinorTrap && Continues < passes * Pages)
            return $"{Variant}/{Scenario}: {Continues} CONTINUEs for {passes * Pages} faults";
        return null;
    }

    // The handler of (b): poll + read + UFFDIO_CONTINUE, as a MINOR-fault server does (QEMU postcopy with shared memory).
    private void ServeMinor()
    {
        Span<UffdMsg> msgs = stackalloc UffdMsg[16];
        var ctx = _ctx!;
        while (true)
        {
            var p = ctx.Poll(-1);
            if (p == PollResult.HangUp || p == PollResult.Error)
                return;
            var r = ctx.Read(msgs);
            if (!r.Succeeded)
                continue;
            for (int i = 0; i < r.Field; i++)
            {
                ulong page = msgs[i].PagefaultAddress & ~((ulong)Folio.BasePageSize - 1);
                var c = ctx.Continue(page, Folio.BasePageSize, UffdContinueMode.None);
                if (c.Succeeded)
                    Interlocked.Increment(ref _continues);
                else if (c.Errno == Errno.EEXIST)
                    ctx.Wake(page, Folio.BasePageSize);
            }
        }
    }

    private static void Check(Errno e, string what)
    {
        if (e != Errno.None)
            throw new InvalidOperationException($"{what}: {e}");
    }

    public void Dispose()
    {
        _ctx?.Dispose();
        _handler?.Join(TimeSpan.FromSeconds(10));
    }
}

/// <summary>
/// Seed 003 under BenchmarkDotNet: one fault (of a 64-fault pass, reset included) per operation, for every design and
/// scenario. The same fixtures also run interleaved (<see cref="SideBySide"/>) for the ratios.
/// </summary>
[BenchmarkCategory("seed003")]
public class FaultPathBenchmarks
{
    private readonly Dictionary<string, FaultFixture> _f = new();

    [GlobalSetup]
    public void Setup()
    {
        foreach (var (v, s) in Seed003Cases.Cases)
            _f[Seed003Cases.Key(v, s)] = new FaultFixture(v, s);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var f in _f.Values) f.Dispose();
    }

    [Benchmark(OperationsPerInvoke = FaultFixture.Pages, Description = "(a) cached, no uffd: no userfault code")]
    public void A_NoUserfault() => _f["NoUserfault/CachedNoUffd"].Pass();

    [Benchmark(OperationsPerInvoke = FaultFixture.Pages, Description = "(a) cached, no uffd: pre-check, plain ->fault")]
    public void A_PreCheckPlain() => _f["PreCheckPlain/CachedNoUffd"].Pass();

    [Benchmark(OperationsPerInvoke = FaultFixture.Pages, Description = "(a) cached, no uffd: pre-check, shipped shmem")]
    public void A_PreCheck() => _f["PreCheck/CachedNoUffd"].Pass();

    [Benchmark(OperationsPerInvoke = FaultFixture.Pages, Description = "(a) cached, no uffd: RFC retval")]
    public void A_RfcRetval() => _f["RfcRetval/CachedNoUffd"].Pass();

    [Benchmark(OperationsPerInvoke = FaultFixture.Pages, Description = "(b) MINOR trap + CONTINUE: pre-check")]
    public void B_PreCheck() => _f["PreCheck/MinorTrap"].Pass();

    [Benchmark(OperationsPerInvoke = FaultFixture.Pages, Description = "(b) MINOR trap + CONTINUE: RFC retval")]
    public void B_RfcRetval() => _f["RfcRetval/MinorTrap"].Pass();

    [Benchmark(OperationsPerInvoke = FaultFixture.Pages, Description = "(c) MINOR-armed, not cached: pre-check")]
    public void C_PreCheck() => _f["PreCheck/MinorArmedNotCached"].Pass();

    [Benchmark(OperationsPerInvoke = FaultFixture.Pages, Description = "(c) MINOR-armed, not cached: RFC retval")]
    public void C_RfcRetval() => _f["RfcRetval/MinorArmedNotCached"].Pass();
}
