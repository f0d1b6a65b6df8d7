using System.Diagnostics;
using PluginMm;
using PluginMm.Runtime;
using PluginMm.Userfaultfd;

namespace HmmMirror;

/// <summary>What one run of seed 002's scenario observed.</summary>
/// <param name="Path">The HMM path the device used.</param>
/// <param name="Result">The READ ioctl's errno (None = success).</param>
/// <param name="Pages">Pages in the region.</param>
/// <param name="PagesCorrect">Pages the device read back with the handler's bytes.</param>
/// <param name="UffdFaultsServed">Page faults the userfaultfd handler resolved with UFFDIO_COPY.</param>
/// <param name="Stats">The mirror's counters (lock drops, walk restarts, -EBUSY retries).</param>
/// <param name="Elapsed">Wall time of the READ ioctl (reported, never asserted).</param>
public sealed record Seed002Result(DmirrorFaultPath Path, Errno Result, int Pages, int PagesCorrect, long UffdFaultsServed, DmirrorStats Stats, TimeSpan Elapsed);

/// <summary>
/// Seed 002's scenario (the series' <c>userfaultfd_read</c> selftest, scaled up): an anonymous region registered with
/// userfaultfd MISSING, a handler thread that fills each faulting page (every byte = <see cref="PatternByte"/> of its page
/// index) with UFFDIO_COPY, and a dmirror device reading the whole region through HMM.
/// </summary>
public static class Seed002Demo
{
    /// <summary>The byte the handler fills page <paramref name="index"/> with.</summary>
    public static byte PatternByte(int index) => (byte)(0xAB ^ index);

    /// <summary>Runs the scenario once on a fresh address space with the device using <paramref name="path"/>.</summary>
    public static Seed002Result Run(ModelKernel kernel, DmirrorFaultPath path, int pages)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var mm = kernel.CreateMm();
        ulong len = (ulong)pages * Folio.BasePageSize;
        Check(mm.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out ulong addr), "mmap");
        Check(mm.Userfaultfd(0, out var uffd), "userfaultfd");
        Check(uffd!.Api(Uapi.UFFD_API, 0, out _, out _).Errno, "UFFDIO_API");
        Check(uffd.Register(addr, len, UffdModes.Missing, out _).Errno, "UFFDIO_REGISTER");

        long served = 0;
        var handler = new Thread(() => served = ServeFaults(uffd, addr)) { IsBackground = true, Name = "uffd-handler" };
        handler.Start();

        var device = new DmirrorDevice(0, path);
        Check(device.Open(mm, out var dmirror), "open /dev/hmm_dmirror0");
        var caller = mm.CreateTask("hmm-tests");
        var buffer = new byte[len];
        var cmd = new HmmDmirrorCmd { Addr = addr, NPages = (ulong)pages };
        var command = path == DmirrorFaultPath.UnlockedTimeout ? HmmDmirrorCommand.ReadUnlocked : HmmDmirrorCommand.Read;
        var clock = Stopwatch.StartNew();
        var result = dmirror!.Ioctl(command, ref cmd, buffer, caller);
        clock.Stop();

        uffd.Dispose(); // wakes the handler's blocking read with EBADF
        if (!handler.Join(TimeSpan.FromSeconds(30)))
            throw new InvalidOperationException("the userfaultfd handler thread did not stop");
        int correct = 0;
        if (result == Errno.None)
        {
            for (int i = 0; i < pages; i++)
            {
                if (buffer.AsSpan(i * Folio.BasePageSize, Folio.BasePageSize).IndexOfAnyExcept(PatternByte(i)) < 0)
                    correct++;
            }
        }
        dmirror.Dispose();
        mm.Exit();
        return new Seed002Result(path, result, pages, correct, Interlocked.Read(ref served), dmirror.Stats, clock.Elapsed);
    }

    /// <summary>
    /// The handler thread: read a fault, fill the page with its pattern, UFFDIO_COPY it; until the fd closes.
    /// <paramref name="live"/>, if given, counts the faults served as they happen.
    /// </summary>
    internal static long ServeFaults(IUserfaultfd uffd, ulong regionStart, System.Runtime.CompilerServices.StrongBox<long>? live = null)
    {
        var page = new byte[uffd.PageSize];
        long served = 0;
        Span<UffdMsg> msgs = stackalloc UffdMsg[16];
        while (true)
        {
            var r = uffd.Read(msgs);
            if (!r.Succeeded)
                return served; // EBADF: the fd was closed
            for (int i = 0; i < r.Field; i++)
            {
                if (msgs[i].Event != UffdEvent.Pagefault)
                    continue;
                ulong a = msgs[i].PagefaultAddress & ~((ulong)uffd.PageSize - 1);
                page.AsSpan().Fill(PatternByte((int)((a - regionStart) / (ulong)uffd.PageSize)));
                var c = uffd.Copy(a, page, UffdCopyMode.None);
                if (c.Succeeded || c.Errno == Errno.EEXIST)
                {
                    served++;
                    if (live is not null)
                        Interlocked.Increment(ref live.Value);
                }
            }
        }
    }

    internal static void Check(Errno e, string what)
    {
        if (e != Errno.None)
            throw new InvalidOperationException($"{what} failed: {e}");
    }
}
