using PluginMm.Userfaultfd;
using static PluginMm.Runtime.Linux.Tests.HostTestSupport;

namespace PluginMm.Runtime.Linux.Tests;

[TestClass]
public sealed class OpenAndApiTests
{
    [TestMethod(DisplayName = "open through /dev/userfaultfd")]
    public void OpenThroughDevice()
    {
        using var uffd = Open(UffdOpenFlags.CloseOnExec, UffdOpenPath.Device);
        Assert.IsGreaterThanOrEqualTo(0, uffd.Fd);
        Assert.IsFalse(uffd.NonBlocking);
    }

    [TestMethod(DisplayName = "open through the syscall with UFFD_USER_MODE_ONLY")]
    public void OpenThroughSyscall()
    {
        using var uffd = Open(UffdOpenFlags.UserModeOnly | UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec, UffdOpenPath.Syscall);
        Assert.IsTrue(uffd.NonBlocking);
        Assert.IsTrue(uffd.Api(Uapi.UFFD_API, UffdFeatures.None, out _, out _).Succeeded);
    }

    [TestMethod(DisplayName = "invalid creation flags fail with EINVAL on both paths and say why")]
    public void InvalidFlags()
    {
        Assert.IsFalse(HostUserfaultfd.TryOpen((UffdOpenFlags)0x4, UffdOpenPath.Auto, out var uffd, out var failure));
        Assert.IsNull(uffd);
        if (failure.DeviceErrno is Errno.ENOENT or Errno.EACCES or Errno.EPERM)
            Assert.Inconclusive(failure.Explanation);
        Assert.AreEqual(Errno.EINVAL, failure.DeviceErrno);
        Assert.AreEqual(Errno.EINVAL, failure.SyscallErrno);
        StringAssert.Contains(failure.Explanation, "only O_CLOEXEC, O_NONBLOCK and UFFD_USER_MODE_ONLY");
        var ex = Assert.ThrowsExactly<UserfaultfdUnavailableException>(() => HostUserfaultfd.Open((UffdOpenFlags)0x4));
        Assert.AreEqual(failure.Explanation, ex.Message);
    }

    [TestMethod(DisplayName = "EPERM/EACCES explanation names the sysctl, CAP_SYS_PTRACE, USER_MODE_ONLY and the device permissions")]
    public void PermissionExplanation()
    {
        string text = HostUserfaultfd.Explain(UffdOpenFlags.None, Errno.EACCES, Errno.EPERM);
        StringAssert.Contains(text, "/dev/userfaultfd: EACCES");
        StringAssert.Contains(text, "setfacl");
        StringAssert.Contains(text, "userfaultfd(2): EPERM");
        StringAssert.Contains(text, "vm.unprivileged_userfaultfd=1 (now ");
        StringAssert.Contains(text, "CAP_SYS_PTRACE");
        StringAssert.Contains(text, "UserModeOnly");
        StringAssert.Contains(HostUserfaultfd.Explain(UffdOpenFlags.None, Errno.ENOENT, Errno.ENOSYS), "seccomp");
    }

    [TestMethod(DisplayName = "UFFDIO_API (with syscall)")]
    public void ApiWithSyscall() => ApiScenario(UffdOpenPath.Syscall);

    [TestMethod(DisplayName = "UFFDIO_API (with /dev/userfaultfd)")]
    public void ApiWithDevice() => ApiScenario(UffdOpenPath.Device);

    // uffd-unit-tests.c uffd_api_test: a bad api and an unknown feature fail (struct zeroed), the real call succeeds
    // with ioctls ⊇ API_IOCTLS, a second call fails.
    private static void ApiScenario(UffdOpenPath path)
    {
        using var uffd = Open(UffdOpenFlags.CloseOnExec | UffdOpenFlags.NonBlocking, path);
        Span<UffdMsg> buf = stackalloc UffdMsg[1];
        Assert.AreEqual(Errno.EINVAL, uffd.Read(buf).Errno, "read before UFFDIO_API");
        Assert.AreEqual(PollResult.Error, uffd.Poll(0), "poll before UFFDIO_API");
        Assert.AreEqual(Errno.EINVAL, uffd.Register(0x10000, 0x1000, UffdModes.Missing, out _).Errno, "register before UFFDIO_API");

        var r = uffd.Api(0xab, UffdFeatures.None, out var available, out var ioctls);
        Assert.AreEqual(Errno.EINVAL, r.Errno);
        Assert.AreEqual((UffdFeatures.None, UffdIoctls.None), (available, ioctls), "the kernel zeroes the struct on error");

        r = uffd.Api(Uapi.UFFD_API, (UffdFeatures)(1UL << 63), out available, out ioctls);
        Assert.AreEqual(Errno.EINVAL, r.Errno);
        Assert.AreEqual((UffdFeatures.None, UffdIoctls.None), (available, ioctls));

        r = uffd.Api(Uapi.UFFD_API, UffdFeatures.None, out available, out ioctls);
        Assert.IsTrue(r.Succeeded, r.ToString());
        Assert.AreEqual(Uapi.UFFD_API_IOCTLS, ioctls & Uapi.UFFD_API_IOCTLS);
        Assert.AreNotEqual(UffdFeatures.None, available & UffdFeatures.MissingShmem, "a 6.x kernel advertises MISSING_SHMEM");

        Assert.AreEqual(Errno.EINVAL, uffd.Api(Uapi.UFFD_API, UffdFeatures.None, out _, out _).Errno, "UFFDIO_API should reject initialized uffd");
        Assert.AreEqual(Errno.EAGAIN, uffd.Read(buf).Errno, "non-blocking read with nothing queued");
        Assert.AreEqual(PollResult.Timeout, uffd.Poll(0));
    }

    [TestMethod(DisplayName = "UFFDIO_API with WP_ASYNC enables WP_UNPOPULATED on the context")]
    public void WpAsyncImpliesUnpopulated()
    {
        using var uffd = OpenApi(UffdFeatures.WpAsync | UffdFeatures.PagefaultFlagWp);
        Assert.AreEqual(UffdFeatures.WpAsync | UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated, uffd.Features);
    }

    [TestMethod(DisplayName = "calls after Dispose return EBADF, never throw")]
    public void AfterDispose()
    {
        var uffd = OpenApi();
        uffd.Dispose();
        uffd.Dispose();
        Assert.AreEqual(-1, uffd.Fd);
        Assert.AreEqual(Errno.EBADF, uffd.Copy(0x10000, new byte[4096], UffdCopyMode.None).Errno);
        Assert.AreEqual(Errno.EBADF, uffd.Read(new UffdMsg[1]).Errno);
        Assert.AreEqual(PollResult.HangUp, uffd.Poll(0));
    }
}
