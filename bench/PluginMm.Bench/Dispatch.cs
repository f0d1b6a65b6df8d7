using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using PluginMm.Backends;

namespace PluginMm.Bench;

/// <summary>
/// Part 1: a hook called through the generated table (<c>Shmem.Ops</c>, a <c>calli</c> through a function pointer, as the
/// runtime calls it) against the same hook called directly. Three hooks: <c>GetFolioNoAlloc</c> and <c>Fault</c> on a
/// cached page (real work: a page-cache lookup, folio reference and lock), and the trivial <c>CanUserfault</c>, whose
/// direct call the JIT inlines to a constant, so that pair shows the bare cost of an indirect call.
/// </summary>
[BenchmarkCategory("dispatch")]
public unsafe class DispatchBenchmarks
{
    private const int N = 1024;
    private Inode _inode = null!;
    private VmaView _vma;
    private MemoryTypeOps _ops = null!;

    [GlobalSetup]
    public void Setup()
    {
        var alloc = new PageAllocator();
        _inode = new Inode("shmem", 16 * Folio.BasePageSize, Folio.BasePageSize, alloc);
        for (int i = 0; i < 16; i++)
        {
            var f = alloc.Alloc()!;
            f.SetFlags(FolioFlags.Uptodate);
            _inode.Cache.Add(f, i);
            f.Put();
        }
        _vma = new VmaView(0x10_0000, 0x10_0000 + 16 * Folio.BasePageSize, VmFlags.Read | VmFlags.Write | VmFlags.Shared, 0, _inode, Folio.BasePageShift, alloc);
        _ops = Shmem.Ops;
    }

    [Benchmark(OperationsPerInvoke = N, Description = "GetFolioNoAlloc direct")]
    public void GetFolioDirect()
    {
        for (int i = 0; i < N; i++)
        {
            var f = Shmem.GetFolioNoAlloc(_inode, i & 15)!;
            f.Unlock();
            f.Put();
        }
    }

    [Benchmark(OperationsPerInvoke = N, Description = "GetFolioNoAlloc through table")]
    public void GetFolioTable()
    {
        var ops = _ops;
        for (int i = 0; i < N; i++)
        {
            var f = ops.UffdOps.GetFolioNoAlloc(_inode, i & 15)!;
            f.Unlock();
            f.Put();
        }
    }

    [Benchmark(OperationsPerInvoke = N, Description = "Fault direct")]
    public void FaultDirect()
    {
        for (int i = 0; i < N; i++)
        {
            var vmf = new VmFault(in _vma, _vma.Start + (ulong)(i & 15) * Folio.BasePageSize, 0, i & 15, FaultFlags.UserDefault);
            Shmem.Fault(ref vmf);
            vmf.Folio!.Put();
        }
    }

    [Benchmark(OperationsPerInvoke = N, Description = "Fault through table")]
    public void FaultTable()
    {
        var ops = _ops;
        for (int i = 0; i < N; i++)
        {
            var vmf = new VmFault(in _vma, _vma.Start + (ulong)(i & 15) * Folio.BasePageSize, 0, i & 15, FaultFlags.UserDefault);
            ops.VmOps.Fault(ref vmf);
            vmf.Folio!.Put();
        }
    }

    /// <summary>
    /// The direct call as one call, the way the table makes it: the wrapper cannot be inlined into the loop (the hook may
    /// be inlined into the wrapper), so the pair "this / through table" isolates the indirection from lost inlining.
    /// </summary>
    [Benchmark(OperationsPerInvoke = N, Description = "Fault direct, not inlined into the caller")]
    public void FaultDirectNoInline()
    {
        for (int i = 0; i < N; i++)
        {
            var vmf = new VmFault(in _vma, _vma.Start + (ulong)(i & 15) * Folio.BasePageSize, 0, i & 15, FaultFlags.UserDefault);
            CallFault(ref vmf);
            vmf.Folio!.Put();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static VmFaultResult CallFault(ref VmFault vmf) => Shmem.Fault(ref vmf);

    [Benchmark(OperationsPerInvoke = N, Description = "CanUserfault direct (inlined)")]
    public int CanUserfaultDirect()
    {
        int n = 0;
        for (int i = 0; i < N; i++)
            n += Shmem.CanUserfault(in _vma, (UffdModes)(i & 7)) ? 1 : 0;
        return n;
    }

    [Benchmark(OperationsPerInvoke = N, Description = "CanUserfault through table")]
    public int CanUserfaultTable()
    {
        var ops = _ops;
        int n = 0;
        for (int i = 0; i < N; i++)
            n += ops.UffdOps.CanUserfault(in _vma, (UffdModes)(i & 7)) ? 1 : 0;
        return n;
    }
}
