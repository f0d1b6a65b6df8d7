using PluginMm.Backends;
using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Every bad argument of the checklist rows 1–13, 17, 24 and 25 (kernel-uffd.md §1, validation order of §5) returns
/// the kernel's errno and result field, and leaves memory exactly as it was.
/// </summary>
[TestClass]
public sealed class ErrnoTests
{
    private const int Ps = Folio.BasePageSize;
    private const ulong TaskSize = ModelKernel.TaskSize;

    private static void Expect(UffdTestEnv env, string what, Func<UffdioResult> call, Errno errno, long? field = null)
    {
        var before = MemorySnapshot.Take(env.Mm);
        var r = call();
        Assert.AreEqual(errno, r.Errno, $"{what} on {env.Config.Name}: {r}");
        if (field is { } f)
            Assert.AreEqual(f, r.Field, $"{what} on {env.Config.Name}: field");
        Assert.AreEqual(before, MemorySnapshot.Take(env.Mm), $"{what} on {env.Config.Name} changed memory");
    }

    [TestMethod(DisplayName = "userfaultfd(2) and /dev/userfaultfd flags (rows 1, 2)")]
    public void CreationFlags()
    {
        var k = new ModelKernel(MemoryTypeRegistry.All);
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.EINVAL, mm.Userfaultfd(0x4, out var c));
        Assert.IsNull(c);
        mm.HasCapSysPtrace = false;
        Assert.AreEqual(Errno.EPERM, mm.Userfaultfd(Uapi.O_CLOEXEC, out _), "kernel faults need CAP_SYS_PTRACE or the sysctl");
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out c));
        c!.Dispose();
        k.UnprivilegedUserfaultfd = true;
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.O_NONBLOCK, out c));
        Assert.IsTrue(c!.NonBlocking);
        c.Dispose();
        k.UnprivilegedUserfaultfd = false;
        // /dev/userfaultfd: no privilege check; other commands and bad flags → EINVAL.
        Assert.AreEqual(Errno.None, k.DevUserfaultfdIoctl(mm, Uapi.USERFAULTFD_IOC_NEW, Uapi.O_CLOEXEC, out c));
        c!.Dispose();
        Assert.AreEqual(Errno.EINVAL, k.DevUserfaultfdIoctl(mm, 0xAA01, 0, out _));
        Assert.AreEqual(Errno.EINVAL, k.DevUserfaultfdIoctl(mm, Uapi.USERFAULTFD_IOC_NEW, 0x4, out _));
        // UFFDIO_API: EVENT_FORK without CAP_SYS_PTRACE → EPERM (row 4).
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out c));
        Assert.AreEqual(Errno.EPERM, c!.Api(Uapi.UFFD_API, UffdFeatures.EventFork, out var avail, out _).Errno);
        Assert.AreEqual(UffdFeatures.None, avail);
        Assert.IsTrue(c.Api(Uapi.UFFD_API, UffdFeatures.SigBus, out _, out _).Succeeded, "an error does not initialise the ctx");
    }

    [TestMethod(DisplayName = "ioctls, read and poll before UFFDIO_API (row 3)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void BeforeApi(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, openUffd: false);
        Assert.AreEqual(Errno.None, env.Mm.Userfaultfd(Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY, out var u));
        using (u)
        {
            ulong ps = (ulong)env.PageSize;
            Expect(env, "REGISTER", () => u!.Register(env.Dst, ps, UffdModes.Missing, out _), Errno.EINVAL);
            Expect(env, "UNREGISTER", () => u!.Unregister(env.Dst, ps), Errno.EINVAL);
            Expect(env, "WAKE", () => u!.Wake(env.Dst, ps), Errno.EINVAL);
            Expect(env, "COPY", () => u!.Copy(env.Dst, new byte[ps], UffdCopyMode.None), Errno.EINVAL);
            Expect(env, "ZEROPAGE", () => u!.ZeroPage(env.Dst, ps, UffdZeroPageMode.None), Errno.EINVAL);
            Expect(env, "CONTINUE", () => u!.Continue(env.Dst, ps, UffdContinueMode.None), Errno.EINVAL);
            Assert.AreEqual(Errno.EINVAL, u!.Read(new UffdMsg[1]).Errno);
            Assert.AreEqual(PollResult.Error, u.Poll(0));
        }
    }

    [TestMethod(DisplayName = "REGISTER errors (rows 5, 7, 8)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void RegisterErrors(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: UffdFeatures.MinorShmem | UffdFeatures.MinorHugetlbfs);
        var u = env.Uffd;
        ulong ps = (ulong)env.PageSize, d = env.Dst;
        Expect(env, "mode 0", () => u.Register(d, ps, 0, out _), Errno.EINVAL);
        Expect(env, "unknown mode bit", () => u.Register(d, ps, (UffdModes)(1 << 5), out _), Errno.EINVAL);
        Expect(env, "unaligned start", () => u.Register(d + 1, ps, UffdModes.Missing, out _), Errno.EINVAL);
        Expect(env, "len 0", () => u.Register(d, 0, UffdModes.Missing, out _), Errno.EINVAL);
        Expect(env, "unaligned len", () => u.Register(d, 100, UffdModes.Missing, out _), Errno.EINVAL);
        Expect(env, "below mmap_min_addr", () => u.Register(0, Ps, UffdModes.Missing, out _), Errno.EINVAL);
        Expect(env, "start at TASK_SIZE", () => u.Register(TaskSize, Ps, UffdModes.Missing, out _), Errno.EINVAL);
        Expect(env, "len past TASK_SIZE", () => u.Register(d, TaskSize, UffdModes.Missing, out _), Errno.EINVAL);
        Expect(env, "no VMA", () => u.Register(0x10000, Ps, UffdModes.Missing, out _), Errno.EINVAL);
        if (env.Config.IsAnon)
            Expect(env, "MINOR on anon", () => u.Register(d, ps, UffdModes.Minor, out _), Errno.EINVAL);
        else
            Assert.IsTrue(u.Register(d, ps, UffdModes.Minor, out _).Succeeded && u.Unregister(d, ps).Succeeded, "MINOR on page-cache memory");
        if (env.Config.IsHugetlb)
        {
            Expect(env, "hugetlb start not huge-aligned", () => u.Register(d + Ps, ps - Ps, UffdModes.Missing, out _), Errno.EINVAL);
            Expect(env, "hugetlb end not huge-aligned", () => u.Register(d, ps + Ps, UffdModes.Missing, out _), Errno.EINVAL);
        }
        // Owned by another userfaultfd → EBUSY; the owner can re-register (a superset is left as it is).
        Assert.IsTrue(u.Register(d, ps, UffdModes.Missing, out _).Succeeded);
        Assert.AreEqual(Errno.None, env.Mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var other));
        using (other)
        {
            Assert.IsTrue(other!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
            Expect(env, "VMA of another uffd", () => other.Register(d, ps, UffdModes.Missing, out _), Errno.EBUSY);
            Expect(env, "UNREGISTER of another uffd's VMA", () => other.Unregister(d, ps), Errno.EINVAL);
        }
        Assert.IsTrue(u.Register(d, ps, UffdModes.Missing, out _).Succeeded);
        // Mm gone → ENOMEM for REGISTER/UNREGISTER (row 17).
        env.Mm.Exit();
        Assert.AreEqual(Errno.ENOMEM, u.Register(d, ps, UffdModes.Missing, out _).Errno);
        Assert.AreEqual(Errno.ENOMEM, u.Unregister(d, ps).Errno);
    }

    [TestMethod(DisplayName = "REGISTER without VM_MAYWRITE is EPERM (row 5)")]
    public void RegisterReadOnlyFileEperm()
    {
        var k = new ModelKernel(MemoryTypeRegistry.All);
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, k.MemfdCreate("shmem", 4 * Ps, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read, MapFlags.Shared, f, 0, out var rw));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        // PROT_READ of a read-write file still has VM_MAYWRITE: allowed.
        Assert.IsTrue(u.Register(rw, 4 * Ps, UffdModes.Missing, out _).Succeeded);
        Assert.IsTrue(u.Unregister(rw, 4 * Ps).Succeeded);
        // A shared mapping of a read-only open file lacks VM_MAYWRITE: EPERM.
        var rofile = MemFileReadOnly(k);
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read, MapFlags.Shared, rofile, 0, out var roMap));
        var before = MemorySnapshot.Take(mm);
        Assert.AreEqual(Errno.EPERM, u.Register(roMap, 4 * Ps, UffdModes.Missing, out _).Errno);
        Assert.AreEqual(before, MemorySnapshot.Take(mm));
        Assert.AreEqual(Errno.EACCES, mm.Mmap(0, 4 * Ps, Prot.Read | Prot.Write, MapFlags.Shared, rofile, 0, out _));
    }

    private static MemFile MemFileReadOnly(ModelKernel k)
    {
        Assert.AreEqual(Errno.None, k.MemfdCreate("shmem", 4 * Ps, out var f));
        return f!.OpenReadOnly();
    }

    [TestMethod(DisplayName = "UNREGISTER and WAKE errors (rows 9, 10)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void UnregisterAndWakeErrors(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2);
        var u = env.Uffd;
        ulong ps = (ulong)env.PageSize, d = env.Dst;
        env.RegisterDst(UffdModes.Missing);
        Expect(env, "UNREGISTER unaligned", () => u.Unregister(d + 1, ps), Errno.EINVAL);
        Expect(env, "UNREGISTER len 0", () => u.Unregister(d, 0), Errno.EINVAL);
        Expect(env, "UNREGISTER no VMA", () => u.Unregister(0x10000, Ps), Errno.EINVAL);
        if (env.Config.IsHugetlb)
            Expect(env, "UNREGISTER hugetlb misaligned start", () => u.Unregister(d + Ps, ps - Ps), Errno.EINVAL);
        Expect(env, "WAKE unaligned", () => u.Wake(d + 1, ps), Errno.EINVAL);
        Expect(env, "WAKE len 0", () => u.Wake(d, 0), Errno.EINVAL);
        Expect(env, "WAKE at TASK_SIZE", () => u.Wake(TaskSize, Ps), Errno.EINVAL);
        Expect(env, "WAKE wrapping", () => u.Wake(d, ulong.MaxValue - Ps + 1), Errno.EINVAL);
        Assert.IsTrue(u.Wake(env.Src, ps).Succeeded, "WAKE does not check registration");
        Assert.IsTrue(u.Unregister(env.Src, ps).Succeeded, "unregistered VMAs in the range are skipped");
    }

    [TestMethod(DisplayName = "COPY errors (row 11)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void CopyErrors(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2);
        var u = env.Uffd;
        int ps = env.PageSize;
        ulong d = env.Dst;
        var page = new byte[ps];
        Expect(env, "COPY unregistered dst", () => u.Copy(d, page, UffdCopyMode.None), Errno.ENOENT, -(long)Errno.ENOENT);
        env.RegisterDst(UffdModes.Missing);
        Expect(env, "COPY bad mode", () => u.Copy(d, page, (UffdCopyMode)4), Errno.EINVAL);
        Expect(env, "COPY MODE_WP without WP registration", () => u.Copy(d, page, UffdCopyMode.Wp), Errno.EINVAL, -(long)Errno.EINVAL);
        Expect(env, "COPY unaligned dst", () => u.Copy(d + 1, page, UffdCopyMode.None), Errno.EINVAL);
        Expect(env, "COPY empty src", () => u.Copy(d, ReadOnlySpan<byte>.Empty, UffdCopyMode.None), Errno.EINVAL);
        Expect(env, "COPY src not a page multiple", () => u.Copy(d, new byte[100], UffdCopyMode.None), Errno.EINVAL);
        Expect(env, "COPY past the VMA", () => u.Copy(d + (ulong)ps, new byte[2 * ps], UffdCopyMode.None), Errno.ENOENT, -(long)Errno.ENOENT);
        Expect(env, "COPY no VMA", () => u.Copy(0x10000, new byte[ps], UffdCopyMode.None), Errno.ENOENT);
        if (env.Config.IsHugetlb)
            Expect(env, "COPY hugetlb len not huge", () => u.Copy(d, new byte[Ps], UffdCopyMode.None), Errno.EINVAL, -(long)Errno.EINVAL);
        // mmap_changing → EAGAIN with field -EAGAIN.
        u.MmapChangingBegin();
        Expect(env, "COPY while mmap_changing", () => u.Copy(d, page, UffdCopyMode.None), Errno.EAGAIN, -(long)Errno.EAGAIN);
        u.MmapChangingEnd();
        // Out of memory → ENOMEM.
        env.Kernel.Allocator.LimitPages = env.Kernel.Allocator.LivePages;
        Expect(env, "COPY with no memory", () => u.Copy(d, page, UffdCopyMode.None), Errno.ENOMEM, -(long)Errno.ENOMEM);
        env.Kernel.Allocator.LimitPages = 0;
        // Populate page 1; a 2-page copy does page 0, then stops: partial → EAGAIN with the bytes done.
        Assert.IsTrue(u.Copy(d + (ulong)ps, page, UffdCopyMode.None).Succeeded);
        var r = u.Copy(d, new byte[2 * ps], UffdCopyMode.None);
        Assert.AreEqual(Errno.EAGAIN, r.Errno);
        Assert.AreEqual(ps, r.Field, "a partial copy reports the bytes done, not an error");
        Assert.AreEqual((long)ps, r.BytesDone);
        Expect(env, "COPY populated dst", () => u.Copy(d, page, UffdCopyMode.None), Errno.EEXIST, -(long)Errno.EEXIST);
        if (env.Config.MapShared)
            Expect(env, "COPY on the alias of a cached page", () =>
            {
                Assert.IsTrue(u.Register(env.DstAlias, env.Bytes, UffdModes.Missing, out _).Succeeded);
                var before = MemorySnapshot.Take(env.Mm);
                var res = u.Copy(env.DstAlias, page, UffdCopyMode.None);
                Assert.AreEqual(before, MemorySnapshot.Take(env.Mm));
                Assert.IsTrue(u.Unregister(env.DstAlias, env.Bytes).Succeeded);
                return res;
            }, Errno.EEXIST, -(long)Errno.EEXIST);
        // Mm gone → ESRCH, field not written.
        env.Mm.Exit();
        var gone = u.Copy(d, page, UffdCopyMode.None);
        Assert.AreEqual(Errno.ESRCH, gone.Errno);
        Assert.AreEqual(0, gone.Field);
    }

    [TestMethod(DisplayName = "COPY beyond i_size is EFAULT, and FilemapRemove undoes FilemapAdd")]
    public void CopyBeyondEofIsEfault()
    {
        var k = new ModelKernel(MemoryTypeRegistry.All);
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, k.MemfdCreate("shmem", 4 * Ps, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var m));
        Assert.AreEqual(Errno.None, f!.Truncate(2 * Ps));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        Assert.IsTrue(u.Register(m, 4 * Ps, UffdModes.Missing, out _).Succeeded);
        long live = k.Allocator.LivePages;
        var r = u.Copy(m + 3 * Ps, new byte[Ps], UffdCopyMode.None);
        Assert.AreEqual(Errno.EFAULT, r.Errno);
        Assert.AreEqual(-(long)Errno.EFAULT, r.Field);
        Assert.AreEqual(0, f.CachedFolios, "the folio added to the page cache was removed again");
        Assert.AreEqual(live, k.Allocator.LivePages, "and freed");
        // Zeropage into a private file mapping beyond EOF is EFAULT too.
        Assert.AreEqual(Errno.None, mm.Mmap(0, 4 * Ps, Prot.Read | Prot.Write, MapFlags.Private, f, 0, out var p));
        Assert.IsTrue(u.Register(p, 4 * Ps, UffdModes.Missing, out _).Succeeded);
        Assert.AreEqual(Errno.EFAULT, u.ZeroPage(p + 3 * Ps, Ps, UffdZeroPageMode.None).Errno);
    }

    [TestMethod(DisplayName = "COPY from an unreadable user source is EFAULT")]
    public void CopyFromUnreadableSource()
    {
        using var env = new UffdTestEnv("anon", nrPages: 2);
        env.RegisterDst(UffdModes.Missing);
        var before = MemorySnapshot.Take(env.Mm);
        var r = env.Uffd.Copy(env.Main, env.Dst, 0x20000, Ps, UffdCopyMode.None);
        Assert.AreEqual(Errno.EFAULT, r.Errno);
        Assert.AreEqual(-(long)Errno.EFAULT, r.Field);
        Assert.AreEqual(before, MemorySnapshot.Take(env.Mm));
    }

    [TestMethod(DisplayName = "ZEROPAGE errors (row 12)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void ZeroPageErrors(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2);
        var u = env.Uffd;
        ulong ps = (ulong)env.PageSize, d = env.Dst;
        Expect(env, "ZEROPAGE unregistered", () => u.ZeroPage(d, ps, UffdZeroPageMode.None), Errno.ENOENT, -(long)Errno.ENOENT);
        env.RegisterDst(UffdModes.Missing);
        Expect(env, "ZEROPAGE bad mode", () => u.ZeroPage(d, ps, (UffdZeroPageMode)2), Errno.EINVAL);
        Expect(env, "ZEROPAGE len 0", () => u.ZeroPage(d, 0, UffdZeroPageMode.None), Errno.EINVAL);
        u.MmapChangingBegin();
        Expect(env, "ZEROPAGE while mmap_changing", () => u.ZeroPage(d, ps, UffdZeroPageMode.None), Errno.EAGAIN, -(long)Errno.EAGAIN);
        u.MmapChangingEnd();
        if (env.Config.IsHugetlb)
        {
            Expect(env, "ZEROPAGE on hugetlb", () => u.ZeroPage(d, ps, UffdZeroPageMode.None), Errno.EINVAL, -(long)Errno.EINVAL);
            return;
        }
        Assert.IsTrue(u.ZeroPage(d, ps, UffdZeroPageMode.None).Succeeded);
        Expect(env, "ZEROPAGE populated", () => u.ZeroPage(d, ps, UffdZeroPageMode.None), Errno.EEXIST, -(long)Errno.EEXIST);
        env.Mm.Exit();
        Assert.AreEqual(Errno.ESRCH, u.ZeroPage(d, ps, UffdZeroPageMode.None).Errno);
    }

    [TestMethod(DisplayName = "CONTINUE errors (row 13)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void ContinueErrors(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: UffdFeatures.MinorShmem | UffdFeatures.MinorHugetlbfs);
        var u = env.Uffd;
        ulong ps = (ulong)env.PageSize, d = env.Dst;
        env.RegisterDst(env.Config.IsAnon ? UffdModes.Missing : UffdModes.Minor);
        Expect(env, "CONTINUE bad mode", () => u.Continue(d, ps, (UffdContinueMode)4), Errno.EINVAL);
        if (env.Config.IsAnon)
        {
            Expect(env, "CONTINUE on anon", () => u.Continue(d, ps, UffdContinueMode.None), Errno.EINVAL, -(long)Errno.EINVAL);
            return;
        }
        Expect(env, "CONTINUE MODE_WP without WP registration", () => u.Continue(d, ps, UffdContinueMode.Wp), Errno.EINVAL, -(long)Errno.EINVAL);
        Expect(env, "CONTINUE absent from the page cache", () => u.Continue(d, ps, UffdContinueMode.None), Errno.EFAULT, -(long)Errno.EFAULT);
        // Populate the page cache (through the alias for shared configurations, else through the file itself).
        Assert.IsTrue(env.DstFile is not null);
        var t = env.Mm.CreateTask();
        Assert.AreEqual(Errno.None, env.Mm.Mmap(0, env.Bytes, Prot.Read | Prot.Write, MapFlags.Shared, env.DstFile, 0, out var other));
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(other, 0x1234));
        Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(other + ps, 0x5678));
        var r = u.Continue(d, ps, UffdContinueMode.None);
        Assert.IsTrue(r.Succeeded, r.ToString());
        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(d, out var v));
        Assert.AreEqual(0x1234UL, v);
        Expect(env, "CONTINUE mapped", () => u.Continue(d, ps, UffdContinueMode.None), Errno.EEXIST, -(long)Errno.EEXIST);
        // HWPoison → EIO.
        var f = env.DstFile!.Inode.Cache.Get(env.Config.IsHugetlb ? 1 : 1)!;
        f.SetFlags(FolioFlags.HwPoison);
        f.Put();
        Expect(env, "CONTINUE on a HWPoison folio", () => u.Continue(d + ps, ps, UffdContinueMode.None), Errno.EIO, -(long)Errno.EIO);
        env.Mm.Exit();
        var gone = u.Continue(d, ps, UffdContinueMode.None);
        Assert.AreEqual(Errno.ESRCH, gone.Errno);
        Assert.AreEqual(0, gone.Field);
    }

    [TestMethod(DisplayName = "read(2) with a short buffer and non-blocking read when empty (rows 24, 25)")]
    public void ReadErrors()
    {
        using var env = new UffdTestEnv("anon", nrPages: 1);
        Assert.AreEqual(Errno.EINVAL, env.Uffd.Read(Span<UffdMsg>.Empty).Errno, "buffer smaller than one uffd_msg");
        Assert.AreEqual(Errno.EAGAIN, env.Uffd.Read(new UffdMsg[4]).Errno, "non-blocking, nothing pending");
        Assert.AreEqual(PollResult.Timeout, env.Uffd.Poll(0));
        // A blocking fd cannot be polled (EPOLLERR).
        Assert.AreEqual(Errno.None, env.Mm.Userfaultfd(0, out var blocking));
        using (blocking)
        {
            Assert.IsTrue(blocking!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
            Assert.AreEqual(PollResult.Error, blocking.Poll(0));
        }
        env.Uffd.Dispose();
        Assert.AreEqual(Errno.EBADF, env.Uffd.Read(new UffdMsg[1]).Errno);
        Assert.AreEqual(PollResult.HangUp, env.Uffd.Poll(0));
    }
}
