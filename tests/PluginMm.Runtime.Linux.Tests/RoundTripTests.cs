using PluginMm.Userfaultfd;
using static PluginMm.Runtime.Linux.Tests.HostTestSupport;

namespace PluginMm.Runtime.Linux.Tests;

/// <summary>REGISTER / fault / read / COPY / wake on real anonymous memory, and how the kernel's results decode.</summary>
[TestClass]
public sealed class RoundTripTests
{
    private static readonly int Page = Environment.SystemPageSize;

    private static byte[] Pattern(byte seed)
    {
        var b = new byte[Page];
        for (int i = 0; i < b.Length; i++)
            b[i] = (byte)(seed + i * 7);
        return b;
    }

    [TestMethod(DisplayName = "missing read and write faults round trip on anon (REGISTER, read, COPY, wake)")]
    public void MissingRoundTrip()
    {
        using var uffd = OpenApi();
        using var area = HostMemory.MapAnonymous((nuint)(4 * Page));
        var r = uffd.Register(area.Start, (ulong)(4 * Page), UffdModes.Missing, out var ioctls);
        Assert.IsTrue(r.Succeeded, r.ToString());
        // fs/userfaultfd.c userfaultfd_register(): UFFD_API_RANGE_IOCTLS minus WRITEPROTECT (no MODE_WP) minus CONTINUE (no MODE_MINOR).
        Assert.AreEqual(UffdIoctls.Wake | UffdIoctls.Copy | UffdIoctls.ZeroPage | UffdIoctls.Move | UffdIoctls.Poison, ioctls);

        byte seen = 0;
        ulong page1 = area.Start + (ulong)Page;
        var reader = FaultingThread.Start("reader", () => seen = FaultingThread.ReadByte(page1 + 5));
        var msg = ReadOne(uffd);
        Assert.AreEqual(UffdEvent.Pagefault, msg.Event);
        Assert.AreEqual(UffdPagefaultFlags.None, msg.PagefaultFlags);
        Assert.AreEqual(page1, msg.PagefaultAddress, "page-aligned without EXACT_ADDRESS");
        Assert.IsFalse(reader.Finished, "the faulting thread waits for the handler");
        var data = Pattern(1);
        r = uffd.Copy(page1, data, UffdCopyMode.None);
        Assert.AreEqual(new UffdioResult(Errno.None, Page), r);
        JoinOrFail(reader, uffd, "read fault");
        Assert.AreEqual(data[5], seen);

        ulong page2 = page1 + (ulong)Page;
        var writer = FaultingThread.Start("writer", () => FaultingThread.WriteByte(page2 + 9, 0xEE));
        msg = ReadOne(uffd);
        Assert.AreEqual(UffdPagefaultFlags.Write, msg.PagefaultFlags);
        Assert.AreEqual(page2, msg.PagefaultAddress);
        Assert.IsTrue(uffd.Copy(page2, Pattern(2), UffdCopyMode.None).Succeeded);
        JoinOrFail(writer, uffd, "write fault");
        Assert.AreEqual(0xEE, area.Span((ulong)(2 * Page) + 9, 1)[0], "the write lands after the copy");
        Assert.AreEqual(Pattern(2)[10], area.Span((ulong)(2 * Page) + 10, 1)[0]);

        Assert.IsTrue(uffd.Unregister(area.Start, (ulong)(4 * Page)).Succeeded);
        Assert.AreEqual(0, area.Span((ulong)(3 * Page), 1)[0], "after UNREGISTER an untouched page reads zero without a fault");
        Assert.AreEqual(PollResult.Timeout, uffd.Poll(0));
    }

    [TestMethod(DisplayName = "COPY results decode: EEXIST (-17), partial EAGAIN (bytes done), ENOENT, EINVAL with the field unwritten")]
    public void CopyResultsDecode()
    {
        using var uffd = OpenApi();
        using var area = HostMemory.MapAnonymous((nuint)(4 * Page));
        Assert.IsTrue(uffd.Register(area.Start, (ulong)(3 * Page), UffdModes.Missing, out _).Succeeded);
        Assert.IsTrue(uffd.Copy(area.Start + (ulong)Page, Pattern(3), UffdCopyMode.DontWake).Succeeded);

        var r = uffd.Copy(area.Start + (ulong)Page, Pattern(4), UffdCopyMode.None);
        Assert.AreEqual(new UffdioResult(Errno.EEXIST, -17), r);
        Assert.AreEqual(Errno.EEXIST, r.FieldErrno);
        Assert.AreEqual(0, r.BytesDone);

        var two = new byte[2 * Page];
        r = uffd.Copy(area.Start, two, UffdCopyMode.None);
        Assert.AreEqual(new UffdioResult(Errno.EAGAIN, Page), r, "copy stops at the populated page: partial, field = bytes done");
        Assert.AreEqual(Errno.None, r.FieldErrno);
        Assert.AreEqual(Page, r.BytesDone);

        r = uffd.Copy(area.Start + (ulong)(3 * Page), Pattern(5), UffdCopyMode.None);
        Assert.AreEqual(new UffdioResult(Errno.ENOENT, -2), r, "dst outside the registered range");

        r = uffd.Copy(area.Start + 1, Pattern(5), UffdCopyMode.None);
        Assert.AreEqual(new UffdioResult(Errno.EINVAL, 0), r, "unaligned dst fails before the field is written");

        r = uffd.Copy(area.Start + (ulong)(2 * Page), Pattern(5), (UffdCopyMode)4);
        Assert.AreEqual(new UffdioResult(Errno.EINVAL, 0), r, "unknown mode bit");

        r = uffd.Copy(area.Start + (ulong)(2 * Page), Pattern(5), UffdCopyMode.Wp);
        Assert.AreEqual(new UffdioResult(Errno.EINVAL, -22), r, "MODE_WP on a range not registered WP (mm/userfaultfd.c mfill_atomic)");

        Assert.AreEqual(Errno.EINVAL, uffd.Wake(area.Start, 0).Errno, "WAKE with len 0");
        Assert.IsTrue(uffd.Wake(area.Start + (ulong)(8 * Page), (ulong)Page).Succeeded, "WAKE does not check registration");
    }

    [TestMethod(DisplayName = "batched read returns every queued fault in one read(2)")]
    public void BatchedRead()
    {
        using var uffd = OpenApi();
        using var area = HostMemory.MapAnonymous((nuint)(4 * Page));
        Assert.IsTrue(uffd.Register(area.Start, (ulong)(4 * Page), UffdModes.Missing, out _).Succeeded);
        var threads = new FaultingThread[3];
        for (int i = 0; i < threads.Length; i++)
        {
            ulong a = area.Start + (ulong)(i * Page);
            threads[i] = FaultingThread.Start($"f{i}", () => FaultingThread.ReadByte(a));
        }
        foreach (var t in threads)
            Assert.IsTrue(t.WaitUntilBlockedInUserfault(HangTimeout), $"thread blocked in {t.Wchan}");
        Span<UffdMsg> buf = stackalloc UffdMsg[8];
        var r = uffd.Read(buf);
        Assert.AreEqual(new UffdioResult(Errno.None, 3), r);
        var pages = new HashSet<ulong>();
        for (int i = 0; i < 3; i++)
            pages.Add((buf[i].PagefaultAddress - area.Start) / (ulong)Page);
        CollectionAssert.AreEquivalent(new ulong[] { 0, 1, 2 }, pages.ToArray());
        Assert.AreEqual(new UffdioResult(Errno.None, 3 * Page), uffd.ZeroPage(area.Start, (ulong)(3 * Page), UffdZeroPageMode.None));
        foreach (var t in threads)
            JoinOrFail(t, uffd, "batched");
        Assert.AreEqual(Errno.EINVAL, uffd.Read(Span<UffdMsg>.Empty).Errno, "read with a buffer smaller than one message");
    }

    [TestMethod(DisplayName = "epoll: a handler sleeps until a fault arrives, and Stop wakes it")]
    public void EpollWaits()
    {
        using var uffd = OpenApi();
        using var area = HostMemory.MapAnonymous((nuint)Page);
        using var ep = new UffdEpoll();
        Assert.AreEqual(Errno.None, ep.Add(uffd, 42));
        Assert.IsTrue(uffd.Register(area.Start, (ulong)Page, UffdModes.Missing, out _).Succeeded);
        Span<ulong> ready = stackalloc ulong[4];
        Assert.AreEqual(new EpollWaitResult(Errno.None, 0, false), ep.Wait(ready, 0));

        var t = FaultingThread.Start("f", () => FaultingThread.ReadByte(area.Start));
        var w = ep.Wait(ready, (int)HangTimeout.TotalMilliseconds);
        Assert.AreEqual(new EpollWaitResult(Errno.None, 1, false), w);
        Assert.AreEqual(42UL, ready[0]);
        var msg = ReadOne(uffd);
        Assert.IsTrue(uffd.Copy(msg.PagefaultAddress, new byte[Page], UffdCopyMode.None).Succeeded);
        JoinOrFail(t, uffd, "epoll");

        var waiter = Task.Run(() => ep.Wait(new ulong[4], -1));
        ep.Stop();
        Assert.IsTrue(waiter.Wait(HangTimeout), "Stop wakes a waiter blocked forever");
        Assert.IsTrue(waiter.Result.Stopped);
    }

    [TestMethod(DisplayName = "closing the userfaultfd releases a blocked faulter, which refaults as unregistered memory")]
    public void CloseReleasesFaulters()
    {
        var uffd = OpenApi();
        using var area = HostMemory.MapAnonymous((nuint)Page);
        Assert.IsTrue(uffd.Register(area.Start, (ulong)Page, UffdModes.Missing, out _).Succeeded);
        byte seen = 0xFF;
        var t = FaultingThread.Start("f", () => seen = FaultingThread.ReadByte(area.Start));
        Assert.IsTrue(t.WaitUntilBlockedInUserfault(HangTimeout), t.Wchan);
        uffd.Dispose();
        Assert.IsTrue(t.Join(HangTimeout), "released by close");
        Assert.AreEqual(0, seen);
    }

    [TestMethod(DisplayName = "a kernel-mode access (ReadThroughKernel) faults into the userfaultfd and is served like a user access")]
    public void KernelModeAccess()
    {
        using var uffd = OpenApi();
        using var area = HostMemory.MapAnonymous((nuint)Page);
        Assert.IsTrue(uffd.Register(area.Start, (ulong)Page, UffdModes.Missing, out _).Succeeded);
        var got = new byte[16];
        Errno e = Errno.EIO;
        var t = FaultingThread.Start("k", () => e = HostMemory.ReadThroughKernel(area.Start + 16, got));
        var msg = ReadOne(uffd);
        Assert.AreEqual(area.Start, msg.PagefaultAddress);
        Assert.IsTrue(uffd.Copy(area.Start, Pattern(9), UffdCopyMode.None).Succeeded);
        JoinOrFail(t, uffd, "kernel read");
        Assert.AreEqual(Errno.None, e);
        CollectionAssert.AreEqual(Pattern(9).AsSpan(16, 16).ToArray(), got);
    }

    [TestMethod(DisplayName = "USER_MODE_ONLY: a kernel-mode fault gets EFAULT and no message")]
    public void UserModeOnlyRejectsKernelFaults()
    {
        using var uffd = Open(UffdOpenFlags.UserModeOnly | UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec, UffdOpenPath.Syscall);
        Assert.IsTrue(uffd.Api(Uapi.UFFD_API, UffdFeatures.None, out _, out _).Succeeded);
        using var area = HostMemory.MapAnonymous((nuint)Page);
        Assert.IsTrue(uffd.Register(area.Start, (ulong)Page, UffdModes.Missing, out _).Succeeded);
        Errno e = Errno.None;
        var t = FaultingThread.Start("k", () => e = HostMemory.ReadThroughKernel(area.Start, new byte[8]));
        JoinOrFail(t, uffd, "user-mode-only");
        Assert.AreEqual(Errno.EFAULT, e, "fs/userfaultfd.c handle_userfault: !FAULT_FLAG_USER with UFFD_USER_MODE_ONLY → VM_FAULT_SIGBUS");
        Assert.AreEqual(PollResult.Timeout, uffd.Poll(0));
    }
}
