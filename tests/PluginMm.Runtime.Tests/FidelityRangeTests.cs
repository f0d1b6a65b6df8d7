using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Issue 11 part 2, range checks where the model differed from this machine's kernel (Linux 6.18): the
/// <c>validate_range</c> floor (fs/userfaultfd.c <c>validate_unaligned_range</c>: no <c>mmap_min_addr</c> check since
/// "userfaultfd: allow registration of ranges below mmap_min_addr") and madvise's wrapping length (mm/madvise.c
/// <c>madvise_should_skip</c>/<c>do_madvise</c>: <c>len_in &amp;&amp; !len</c> → EINVAL). Each case was found by the
/// differential fuzzer (continue_low__errno_anon.case, madvise[wrap]).
/// </summary>
[TestClass]
public sealed class FidelityRangeTests
{
    [TestMethod(DisplayName = "validate_range: COPY from source address 0 is EFAULT with copy = -EFAULT (no mmap_min_addr floor)")]
    public void CopyFromAddressZeroIsEfault()
    {
        using var env = new UffdTestEnv("anon", nrPages: 2);
        env.RegisterDst(UffdModes.Missing);
        var r = env.Uffd.Copy(env.Main, env.Dst, 0, (ulong)env.PageSize, UffdCopyMode.None);
        Assert.AreEqual(Errno.EFAULT, r.Errno, r.ToString());
        Assert.AreEqual(-(long)Errno.EFAULT, r.Field);
    }

    [TestMethod(DisplayName = "validate_range: ranges below 64 KiB reach the ioctl (WAKE ok, COPY ENOENT, REGISTER EINVAL for no VMA)")]
    public void LowRangesAreNotRefusedByTheFloor()
    {
        using var env = new UffdTestEnv("anon", nrPages: 2);
        Assert.AreEqual(Errno.None, env.Uffd.Wake(0x1000, 0x1000).Errno, "WAKE has no VMA check");
        var c = env.Uffd.Copy(0x2000, new byte[Folio.BasePageSize], UffdCopyMode.None);
        Assert.AreEqual(Errno.ENOENT, c.Errno, "COPY into an unmapped low page: mfill_atomic finds no VMA");
        Assert.AreEqual(-(long)Errno.ENOENT, c.Field);
        Assert.AreEqual(Errno.EINVAL, env.Uffd.Register(0x1000, 0x1000, UffdModes.Missing, out _).Errno, "no VMA");
        Assert.AreEqual(Errno.None, env.Uffd.Wake(0, 0x1000).Errno, "WAKE at address 0 passes validate_range on this kernel");
    }

    [TestMethod(DisplayName = "validate_range: the floor an older kernel had is an option (ModelOptions.UffdRangeFloor)")]
    public void FloorOption()
    {
        var k = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All, new ModelOptions { UffdRangeFloor = 0x10000 });
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.O_NONBLOCK, out var uffd));
        Assert.IsTrue(uffd!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        Assert.AreEqual(Errno.EINVAL, uffd.Wake(0x1000, 0x1000).Errno, "below the configured floor");
        Assert.AreEqual(Errno.None, uffd.Wake(0x10000, 0x1000).Errno);
        Assert.AreEqual(0UL, new ModelOptions().UffdRangeFloor, "default: this kernel (no floor)");
    }

    [TestMethod(DisplayName = "madvise: a length that wraps when page-aligned is EINVAL (len_in && !len)")]
    [DataRow(Advice.DontNeed)]
    [DataRow(Advice.Remove)]
    [DataRow(Advice.DontFork)]
    public void MadviseWrappingLength(Advice advice)
    {
        using var env = new UffdTestEnv("shmem", nrPages: 2, openUffd: false);
        Assert.AreEqual(Errno.EINVAL, env.Mm.Madvise(env.Dst, ulong.MaxValue - 0x10, advice));
        Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst, 0, advice), "len 0 stays a no-op");
    }
}
