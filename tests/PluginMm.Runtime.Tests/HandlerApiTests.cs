using PluginMm.Backends;
using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// "Done when": one handler written against <see cref="IUserfaultfd"/> only (<see cref="PageServer"/>) serves MISSING
/// and MINOR faults for all four backends, under both fault-path designs.
/// </summary>
[TestClass]
public sealed class HandlerApiTests
{
    public static IEnumerable<object[]> Cases =>
        from type in new[] { "anon", "shmem", "hugetlb", "guest_memfd" }
        from mode in new[] { "MISSING", "MINOR" }
        where !(type == "anon" && mode == "MINOR")
        from design in new[] { FaultPathDesign.PreCheck, FaultPathDesign.RfcRetval }
        select new object[] { type, mode, design };

    public static string CaseName(System.Reflection.MethodInfo m, object[] d) => $"handler-side API serves {d[1]} on {d[0]} ({d[2]})";

    [TestMethod]
    [DynamicData(nameof(Cases), DynamicDataDisplayName = nameof(CaseName))]
    public void ServesFaults(string type, string mode, FaultPathDesign design)
    {
        var alloc = new PageAllocator();
        var k = new ModelKernel(MemoryTypeRegistry.All, new ModelOptions { Design = design, Allocator = alloc });
        var mm = k.CreateMm();
        int ps = type == "hugetlb" ? MemConfig.HugePageSize : Folio.BasePageSize;
        int pages = type == "hugetlb" ? 2 : 8;
        ulong len = (ulong)(pages * ps);
        MemFile? file = null;
        Errno e = type switch
        {
            "anon" => Errno.None,
            "shmem" => k.MemfdCreate("shmem", (long)len, out file),
            "hugetlb" => k.HugetlbfsCreate("hugetlb", (long)len, ps, out file),
            _ => k.GuestMemfdCreate("guest_memfd", (long)len, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared, out file),
        };
        Assert.AreEqual(Errno.None, e);
        ulong area, other = 0;
        if (file is null)
            Assert.AreEqual(Errno.None, mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out area));
        else
        {
            Assert.AreEqual(Errno.None, mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out area));
            Assert.AreEqual(Errno.None, mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Shared, file, 0, out other));
        }
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY, out var ctx));
        IUserfaultfd uffd = ctx!;
        var main = mm.CreateTask();
        byte[] Content(int i) => Enumerable.Range(0, ps).Select(j => (byte)(i * 7 + j)).ToArray();
        bool minor = mode == "MINOR";
        try
        {
            Assert.IsTrue(uffd.Api(Uapi.UFFD_API, UffdFeatures.None, out _, out _).Succeeded);
            if (minor)
                for (int i = 0; i < pages; i++)
                    Assert.AreEqual(AccessResult.Ok, main.Write(other + (ulong)(i * ps), Content(i)));
            Assert.IsTrue(uffd.Register(area, len, minor ? UffdModes.Minor : UffdModes.Missing, out _).Succeeded);
            using var server = new PageServer(uffd, ps, p => Content((int)((p - area) / (ulong)ps)));
            var th = mm.CreateTask("guest").RunChecked(t =>
            {
                var buf = new byte[ps];
                for (int i = pages - 1; i >= 0; i--)
                {
                    Assert.AreEqual(AccessResult.Ok, t.Read(area + (ulong)(i * ps), buf));
                    CollectionAssert.AreEqual(Content(i), buf, $"page {i}");
                }
            });
            Threads.JoinOrFail(th, "faulting task");
            server.Stop();
            Assert.AreEqual(0, server.Errors.Count, string.Join("; ", server.Errors));
            Assert.AreEqual(minor ? 0 : pages, server.MissingFaults);
            Assert.AreEqual(minor ? pages : 0, server.MinorFaults);
        }
        finally
        {
            uffd.Dispose();
            mm.Exit();
            file?.Release();
        }
        Assert.AreEqual(0, alloc.LivePages, "no folio leaked");
    }
}
