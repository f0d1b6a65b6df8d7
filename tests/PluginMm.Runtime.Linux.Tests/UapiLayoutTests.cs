using System.Globalization;
using System.Runtime.InteropServices;
using PluginMm.Runtime.Linux.Interop;
using PluginMm.TestNative;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Linux.Tests;

/// <summary>
/// Compares every C# layout and request code with the kernel's, as printed by a C program compiled at test time
/// against the installed &lt;linux/userfaultfd.h&gt;. Items newer than the installed header (POISON and MOVE on a 6.1
/// header) are listed; those are checked against the running kernel by the ioctl tests (a wrong size changes the
/// request code and the kernel rejects it).
/// </summary>
[TestClass]
public sealed class UapiLayoutTests
{
    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, ulong>? s_values;
    private static List<string> s_absent = [];
    private static string? s_skip;

    [ClassInitialize]
    public static void Compile(TestContext _)
    {
        string? exe = NativeProgram.TryBuild("uffd_layout.c", out s_skip);
        if (exe is null)
            return;
        var (rc, output) = NativeProgram.Run(exe, "", TimeSpan.FromSeconds(60));
        if (rc != 0)
            throw new InvalidOperationException($"layout program failed: {output}");
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = line.Split(' ');
            if (parts[0] == "absent")
                s_absent.Add(parts[1]);
            else
                values[parts[0] + " " + parts[1]] = ulong.Parse(parts[2], CultureInfo.InvariantCulture);
        }
        s_values = values;
    }

    private Dictionary<string, ulong> Values()
    {
        if (s_skip is not null)
            Assert.Inconclusive(s_skip);
        if (s_absent.Count > 0)
            TestContext.WriteLine($"not in the installed header (checked against the running kernel by the ioctl tests instead): {string.Join(", ", s_absent)}");
        return s_values!;
    }

    private static void Check(Dictionary<string, ulong> v, string key, ulong actual, List<string> errors, ref int checkedCount)
    {
        if (!v.TryGetValue(key, out var expected))
            return;
        checkedCount++;
        if (expected != actual)
            errors.Add($"{key}: kernel {expected} (0x{expected:x}), C# {actual} (0x{actual:x})");
    }

    [TestMethod(DisplayName = "uapi struct sizes and offsets match <linux/userfaultfd.h>")]
    public unsafe void StructLayouts()
    {
        var v = Values();
        var errors = new List<string>();
        int n = 0;
        void Struct<T>(string c, params (string cField, string csField)[] fields) where T : unmanaged
        {
            Check(v, $"sizeof {c}", (ulong)sizeof(T), errors, ref n);
            foreach (var (cf, csf) in fields)
                Check(v, $"offsetof {c}.{cf}", (ulong)Marshal.OffsetOf<T>(csf), errors, ref n);
        }
        Struct<UffdioApi>("uffdio_api", ("api", "Api"), ("features", "Features"), ("ioctls", "Ioctls"));
        Struct<UffdioRange>("uffdio_range", ("start", "Start"), ("len", "Len"));
        Struct<UffdioRegister>("uffdio_register", ("range", "Range"), ("mode", "Mode"), ("ioctls", "Ioctls"));
        Struct<UffdioCopy>("uffdio_copy", ("dst", "Dst"), ("src", "Src"), ("len", "Len"), ("mode", "Mode"), ("copy", "Copy"));
        Struct<UffdioZeropage>("uffdio_zeropage", ("range", "Range"), ("mode", "Mode"), ("zeropage", "Zeropage"));
        Struct<UffdioWriteprotect>("uffdio_writeprotect", ("range", "Range"), ("mode", "Mode"));
        Struct<UffdioContinue>("uffdio_continue", ("range", "Range"), ("mode", "Mode"), ("mapped", "Mapped"));
        Struct<UffdioPoison>("uffdio_poison", ("range", "Range"), ("mode", "Mode"), ("updated", "Updated"));
        Struct<UffdioMove>("uffdio_move", ("dst", "Dst"), ("src", "Src"), ("len", "Len"), ("mode", "Mode"), ("move", "Move"));
        Check(v, "sizeof uffd_msg", (ulong)sizeof(UffdMsg), errors, ref n);

        // uffd_msg: write distinct values at the kernel's offsets and read them back through the C# accessors.
        var raw = new byte[32];
        void Put(string field, ulong value, int width)
        {
            int off = (int)v[$"offsetof uffd_msg.{field}"];
            for (int i = 0; i < width; i++)
                raw[off + i] = (byte)(value >> (8 * i));
        }
        Array.Clear(raw);
        Put("event", 0x12, 1);
        Put("arg.pagefault.flags", 0x0102030405060708, 8);
        Put("arg.pagefault.address", 0x1112131415161718, 8);
        Put("arg.pagefault.feat.ptid", 0x21222324, 4);
        var m = MemoryMarshal.Read<UffdMsg>(raw);
        Assert.AreEqual(UffdEvent.Pagefault, m.Event);
        Assert.AreEqual(0x0102030405060708UL, (ulong)m.PagefaultFlags);
        Assert.AreEqual(0x1112131415161718UL, m.PagefaultAddress);
        Assert.AreEqual(0x21222324U, m.PagefaultPtid);
        Array.Clear(raw);
        Put("arg.remap.from", 1, 8); Put("arg.remap.to", 2, 8); Put("arg.remap.len", 3, 8);
        m = MemoryMarshal.Read<UffdMsg>(raw);
        Assert.AreEqual((1UL, 2UL, 3UL), (m.RemapFrom, m.RemapTo, m.RemapLen));
        Array.Clear(raw);
        Put("arg.remove.start", 4, 8); Put("arg.remove.end", 5, 8);
        m = MemoryMarshal.Read<UffdMsg>(raw);
        Assert.AreEqual((4UL, 5UL), (m.RemoveStart, m.RemoveEnd));
        Array.Clear(raw);
        Put("arg.fork.ufd", 77, 4);
        Assert.AreEqual(77U, MemoryMarshal.Read<UffdMsg>(raw).ForkUfd);

        Assert.IsEmpty(errors, string.Join("\n", errors));
        TestContext.WriteLine($"{n} sizes/offsets checked against the header");
        Assert.IsGreaterThanOrEqualTo(25, n, "a 6.1+ header has at least 25 of them");
    }

    [TestMethod(DisplayName = "uapi request codes and constants match <linux/userfaultfd.h>")]
    public void RequestCodesAndConstants()
    {
        var v = Values();
        var errors = new List<string>();
        int n = 0;
        void C(string name, ulong actual) => Check(v, "const " + name, actual, errors, ref n);
        C("UFFD_API", Uapi.UFFD_API);
        C("USERFAULTFD_IOC_NEW", Uapi.USERFAULTFD_IOC_NEW);
        C("UFFDIO_API", Uapi.UFFDIO_API);
        C("UFFDIO_REGISTER", Uapi.UFFDIO_REGISTER);
        C("UFFDIO_UNREGISTER", Uapi.UFFDIO_UNREGISTER);
        C("UFFDIO_WAKE", Uapi.UFFDIO_WAKE);
        C("UFFDIO_COPY", Uapi.UFFDIO_COPY);
        C("UFFDIO_ZEROPAGE", Uapi.UFFDIO_ZEROPAGE);
        C("UFFDIO_WRITEPROTECT", Uapi.UFFDIO_WRITEPROTECT);
        C("UFFDIO_CONTINUE", Uapi.UFFDIO_CONTINUE);
        C("UFFDIO_POISON", Uapi.UFFDIO_POISON);
        C("UFFDIO_MOVE", Uapi.UFFDIO_MOVE);
        C("UFFD_API_IOCTLS", (ulong)Uapi.UFFD_API_IOCTLS);
        C("UFFDIO_REGISTER_MODE_MISSING", (ulong)UffdModes.Missing);
        C("UFFDIO_REGISTER_MODE_WP", (ulong)UffdModes.Wp);
        C("UFFDIO_REGISTER_MODE_MINOR", (ulong)UffdModes.Minor);
        C("UFFDIO_COPY_MODE_DONTWAKE", (ulong)UffdCopyMode.DontWake);
        C("UFFDIO_COPY_MODE_WP", (ulong)UffdCopyMode.Wp);
        C("UFFDIO_ZEROPAGE_MODE_DONTWAKE", (ulong)UffdZeroPageMode.DontWake);
        C("UFFDIO_WRITEPROTECT_MODE_WP", (ulong)UffdWriteProtectMode.Wp);
        C("UFFDIO_WRITEPROTECT_MODE_DONTWAKE", (ulong)UffdWriteProtectMode.DontWake);
        C("UFFDIO_CONTINUE_MODE_DONTWAKE", (ulong)UffdContinueMode.DontWake);
        C("UFFDIO_CONTINUE_MODE_WP", (ulong)UffdContinueMode.Wp);
        C("UFFDIO_POISON_MODE_DONTWAKE", (ulong)UffdPoisonMode.DontWake);
        C("UFFDIO_MOVE_MODE_DONTWAKE", (ulong)UffdMoveMode.DontWake);
        C("UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES", (ulong)UffdMoveMode.AllowSrcHoles);
        C("UFFD_EVENT_PAGEFAULT", (ulong)UffdEvent.Pagefault);
        C("UFFD_EVENT_FORK", (ulong)UffdEvent.Fork);
        C("UFFD_EVENT_REMAP", (ulong)UffdEvent.Remap);
        C("UFFD_EVENT_REMOVE", (ulong)UffdEvent.Remove);
        C("UFFD_EVENT_UNMAP", (ulong)UffdEvent.Unmap);
        C("UFFD_PAGEFAULT_FLAG_WRITE", (ulong)UffdPagefaultFlags.Write);
        C("UFFD_PAGEFAULT_FLAG_WP", (ulong)UffdPagefaultFlags.Wp);
        C("UFFD_PAGEFAULT_FLAG_MINOR", (ulong)UffdPagefaultFlags.Minor);
        foreach (var (name, f) in new (string, UffdFeatures)[]
        {
            ("PAGEFAULT_FLAG_WP", UffdFeatures.PagefaultFlagWp), ("EVENT_FORK", UffdFeatures.EventFork), ("EVENT_REMAP", UffdFeatures.EventRemap),
            ("EVENT_REMOVE", UffdFeatures.EventRemove), ("MISSING_HUGETLBFS", UffdFeatures.MissingHugetlbfs), ("MISSING_SHMEM", UffdFeatures.MissingShmem),
            ("EVENT_UNMAP", UffdFeatures.EventUnmap), ("SIGBUS", UffdFeatures.SigBus), ("THREAD_ID", UffdFeatures.ThreadId),
            ("MINOR_HUGETLBFS", UffdFeatures.MinorHugetlbfs), ("MINOR_SHMEM", UffdFeatures.MinorShmem), ("EXACT_ADDRESS", UffdFeatures.ExactAddress),
            ("WP_HUGETLBFS_SHMEM", UffdFeatures.WpHugetlbfsShmem), ("WP_UNPOPULATED", UffdFeatures.WpUnpopulated), ("POISON", UffdFeatures.Poison),
            ("WP_ASYNC", UffdFeatures.WpAsync), ("MOVE", UffdFeatures.Move),
        })
            C("UFFD_FEATURE_" + name, (ulong)f);
        Assert.IsEmpty(errors, string.Join("\n", errors));
        TestContext.WriteLine($"{n} constants checked against the header");
        Assert.IsGreaterThanOrEqualTo(40, n);
    }

    [TestMethod(DisplayName = "uapi request codes equal _IOC(dir, 0xAA, nr, sizeof(struct))")]
    public void RequestCodesEncodeTheStructSizes()
    {
        Assert.AreEqual(Uapi.UFFDIO_API, IoctlCodes.Iowr<UffdioApi>(0x3F));
        Assert.AreEqual(Uapi.UFFDIO_REGISTER, IoctlCodes.Iowr<UffdioRegister>(0x00));
        Assert.AreEqual(Uapi.UFFDIO_UNREGISTER, IoctlCodes.Ior<UffdioRange>(0x01));
        Assert.AreEqual(Uapi.UFFDIO_WAKE, IoctlCodes.Ior<UffdioRange>(0x02));
        Assert.AreEqual(Uapi.UFFDIO_COPY, IoctlCodes.Iowr<UffdioCopy>(0x03));
        Assert.AreEqual(Uapi.UFFDIO_ZEROPAGE, IoctlCodes.Iowr<UffdioZeropage>(0x04));
        Assert.AreEqual(Uapi.UFFDIO_MOVE, IoctlCodes.Iowr<UffdioMove>(0x05));
        Assert.AreEqual(Uapi.UFFDIO_WRITEPROTECT, IoctlCodes.Iowr<UffdioWriteprotect>(0x06));
        Assert.AreEqual(Uapi.UFFDIO_CONTINUE, IoctlCodes.Iowr<UffdioContinue>(0x07));
        Assert.AreEqual(Uapi.UFFDIO_POISON, IoctlCodes.Iowr<UffdioPoison>(0x08));
        Assert.AreEqual(Uapi.USERFAULTFD_IOC_NEW, IoctlCodes.Ioc(IoctlCodes.None, 0xAA, 0, 0));
    }
}
