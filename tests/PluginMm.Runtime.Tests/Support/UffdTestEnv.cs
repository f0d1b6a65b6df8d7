using System.Reflection;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests.Support;

/// <summary>
/// One selftest setup (uffd-common.c <c>uffd_test_ctx_init</c>): a model kernel with the generated backends, one mm,
/// <c>area_src</c> and <c>area_dst</c> of <see cref="NrPages"/> pages each (plus MAP_SHARED aliases where the
/// configuration has them), the source filled with a per-page pattern, and a userfaultfd opened as the selftests open it
/// (<c>O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY</c>, UFFDIO_API with the requested features).
/// Reusable by later issues' tests (write-protect, poison, move, events, stress).
/// </summary>
public sealed class UffdTestEnv : IDisposable
{
    /// <summary>Opens an environment; <paramref name="openUffd"/> false leaves <see cref="Uffd"/> null.</summary>
    public UffdTestEnv(string memConfig, int nrPages = 8, FaultPathDesign design = FaultPathDesign.PreCheck,
        UffdFeatures features = UffdFeatures.None, bool openUffd = true, int uffdFlags = Uapi.O_CLOEXEC | Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY,
        PageAllocator? allocator = null)
    {
        Config = MemConfig.Get(memConfig);
        NrPages = nrPages;
        Kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All, new ModelOptions { Design = design, Allocator = allocator });
        Mm = Kernel.CreateMm();
        Main = Mm.CreateTask("main");
        Bytes = (ulong)nrPages * (ulong)PageSize;
        (Src, SrcAlias, SrcFile) = AllocateArea(isSrc: true);
        (Dst, DstAlias, DstFile) = AllocateArea(isSrc: false);
        // Fill the source (uffd_test_ctx_init: area_src pages get distinct, non-zero contents).
        var page = new byte[PageSize];
        for (int i = 0; i < nrPages; i++)
        {
            FillPattern(page, i);
            Check(Main.Write(Src + (ulong)i * (ulong)PageSize, page) == AccessResult.Ok, "filling area_src");
        }
        if (openUffd)
        {
            Check(Mm.Userfaultfd(uffdFlags, out var ctx) == Errno.None && ctx is not null, "userfaultfd()");
            Uffd = ctx!;
            var r = Uffd.Api(Uapi.UFFD_API, features, out _, out _);
            Check(r.Succeeded, $"UFFDIO_API: {r}");
        }
    }

    public MemConfig Config { get; }
    public ModelKernel Kernel { get; }
    public Mm Mm { get; }
    public ModelTask Main { get; }
    public int NrPages { get; }
    public int PageSize => Config.PageSize;
    public ulong Bytes { get; }
    public ulong Src { get; }
    public ulong SrcAlias { get; }
    public ulong Dst { get; }

    /// <summary>A MAP_SHARED alias of <see cref="Dst"/> (0 when the configuration has none).</summary>
    public ulong DstAlias { get; }

    public MemFile? SrcFile { get; }
    public MemFile? DstFile { get; }
    public UserfaultfdCtx Uffd { get; } = null!;

    /// <summary>The byte pattern of source page <paramref name="index"/>.</summary>
    public static void FillPattern(Span<byte> page, int index)
    {
        for (int j = 0; j < page.Length; j += 8)
        {
            ulong v = ((ulong)(index + 1) << 32) | (uint)j;
            BitConverter.TryWriteBytes(page.Slice(j, 8), v);
        }
    }

    /// <summary>Expected contents of page <paramref name="index"/> after a COPY from the source.</summary>
    public byte[] Expected(int index)
    {
        var b = new byte[PageSize];
        FillPattern(b, index);
        return b;
    }

    private (ulong Area, ulong Alias, MemFile? File) AllocateArea(bool isSrc)
    {
        ulong bytes = Bytes;
        if (Config.IsAnon)
        {
            Check(Mm.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var a) == Errno.None, "mmap anon");
            return (a, 0, null);
        }
        MemFile? file;
        if (Config.IsShmem)
            Check(Kernel.MemfdCreate("shmem", (long)bytes, out file) == Errno.None, "memfd_create");
        else
            Check(Kernel.HugetlbfsCreate("hugetlb", (long)bytes, MemConfig.HugePageSize, out file) == Errno.None, "memfd_create(MFD_HUGETLB)");
        var mapFlags = Config.MappedShared ? MapFlags.Shared : MapFlags.Private;
        Check(Mm.Mmap(0, bytes, Prot.Read | Prot.Write, mapFlags, file, 0, out var area) == Errno.None, "mmap file");
        ulong alias = 0;
        if (Config.HasAlias)
            Check(Mm.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out alias) == Errno.None, "mmap alias");
        return (area, alias, file);
    }

    /// <summary>Registers [<see cref="Dst"/>, +len) (whole area by default) and returns the ioctls mask.</summary>
    public UffdIoctls RegisterDst(UffdModes modes, ulong len = 0)
    {
        var r = Uffd.Register(Dst, len == 0 ? Bytes : len, modes, out var ioctls);
        Check(r.Succeeded, $"UFFDIO_REGISTER: {r}");
        return ioctls;
    }

    /// <summary>uffd_test_ops->release_pages: anon DONTNEED, shmem REMOVE, hugetlb shared REMOVE / private DONTNEED.</summary>
    public void ReleasePages(ulong area)
    {
        var advice = Config.IsAnon || Name == "hugetlb-private" ? Advice.DontNeed : Advice.Remove;
        Check(Mm.Madvise(area, Bytes, advice) == Errno.None, "release_pages");
    }

    private string Name => Config.Name;

    /// <summary>Address of page <paramref name="i"/> of the destination area.</summary>
    public ulong DstPage(int i) => Dst + (ulong)i * (ulong)PageSize;

    /// <summary>Reads page <paramref name="i"/> of <paramref name="area"/> through <paramref name="task"/>.</summary>
    public (AccessResult Result, byte[] Data) ReadPage(ModelTask task, ulong area, int i)
    {
        var b = new byte[PageSize];
        var r = task.Read(area + (ulong)i * (ulong)PageSize, b);
        return (r, b);
    }

    /// <summary>Reads source page <paramref name="i"/> (the handler's copy buffer).</summary>
    public byte[] SrcPage(int i)
    {
        var (r, b) = ReadPage(Main, Src, i);
        Check(r == AccessResult.Ok, "reading area_src");
        return b;
    }

    private static void Check(bool ok, string what)
    {
        if (!ok) throw new InvalidOperationException("test setup failed: " + what);
    }

    /// <summary>Closes the userfaultfd, unmaps everything, drops the files and exits the mm.</summary>
    public void Dispose()
    {
        Uffd?.Dispose();
        Mm.Exit();
        SrcFile?.Release();
        if (!ReferenceEquals(SrcFile, DstFile)) DstFile?.Release();
    }

    /// <summary>For DynamicData display names: "<c>{test} on {mem}</c>".</summary>
    public static string DisplayName(MethodInfo method, object[] data)
    {
        var attr = method.GetCustomAttribute<TestMethodAttribute>();
        return MemConfig.DisplayName(attr?.DisplayName ?? method.Name, data);
    }
}
