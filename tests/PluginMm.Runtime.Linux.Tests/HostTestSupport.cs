using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Linux.Tests;

internal static class HostTestSupport
{
    /// <summary>Hang guard for everything that waits on the kernel.</summary>
    public static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(20);

    /// <summary>A userfaultfd, or the test is inconclusive with the reason it cannot be created.</summary>
    public static HostUserfaultfd Open(UffdOpenFlags flags = UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec, UffdOpenPath path = UffdOpenPath.Auto)
    {
        if (!HostUserfaultfd.TryOpen(flags, path, out var uffd, out var failure))
            Assert.Inconclusive(failure.Explanation);
        return uffd;
    }

    /// <summary>A userfaultfd with UFFDIO_API done for <paramref name="features"/> (inconclusive if the kernel lacks them).</summary>
    public static HostUserfaultfd OpenApi(UffdFeatures features = UffdFeatures.None, UffdOpenFlags flags = UffdOpenFlags.NonBlocking | UffdOpenFlags.CloseOnExec)
    {
        var uffd = Open(flags);
        var r = uffd.Api(Uapi.UFFD_API, features, out var available, out _);
        if (!r.Succeeded)
        {
            uffd.Dispose();
            using var probe = Open(flags);
            probe.Api(Uapi.UFFD_API, UffdFeatures.None, out available, out _);
            Assert.Inconclusive($"kernel lacks features {features & ~available} (UFFDIO_API: {r})");
        }
        return uffd;
    }

    /// <summary>Waits for the faulting thread; on timeout closes the uffd (which releases it) and fails.</summary>
    public static void JoinOrFail(FaultingThread t, IUserfaultfd uffd, string what)
    {
        if (!t.Join(HangTimeout))
        {
            uffd.Dispose();
            t.Join(HangTimeout);
            Assert.Fail($"{what}: the faulting thread did not finish within {HangTimeout.TotalSeconds}s (wchan {t.Wchan}); closed the uffd to release it");
        }
        if (t.Error is not null)
            throw new AssertFailedException($"{what}: faulting thread threw", t.Error);
    }

    /// <summary>Reads exactly one message (after poll), failing on timeout.</summary>
    public static UffdMsg ReadOne(IUserfaultfd uffd)
    {
        Assert.AreEqual(PollResult.Readable, uffd.Poll((int)HangTimeout.TotalMilliseconds), "no message before the timeout");
        Span<UffdMsg> buf = stackalloc UffdMsg[1];
        var r = uffd.Read(buf);
        Assert.IsTrue(r.Succeeded, r.ToString());
        Assert.AreEqual(1, r.Field);
        return buf[0];
    }
}
