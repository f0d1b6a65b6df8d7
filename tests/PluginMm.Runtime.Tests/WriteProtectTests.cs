using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Write-protect ports from tools/testing/selftests/mm/uffd-unit-tests.c (wp-fork, wp-fork-with-event, wp-unpopulated,
/// minor-wp), uffd-missing-wp.c and uffd-wp-mremap.c, over the memory types each applies to and both fault-path designs;
/// plus WP_ASYNC and the WRITEPROTECT errno rules (kernel-uffd.md §1 row 14, §5.2).
/// </summary>
[TestClass]
public sealed class WriteProtectTests
{
    private const UffdFeatures WpFeatures = UffdFeatures.PagefaultFlagWp | UffdFeatures.WpHugetlbfsShmem;

    private static int Pages(string mem) => mem.StartsWith("hugetlb", StringComparison.Ordinal) ? 2 : 4;

    private static void Ok(UffdioResult r, string what) => Assert.IsTrue(r.Succeeded, $"{what}: {r}");

    private static void WpRange(UserfaultfdCtx u, ulong start, ulong len, bool wp)
        => Ok(u.WriteProtect(start, len, wp ? UffdWriteProtectMode.Wp : UffdWriteProtectMode.None), wp ? "protect" : "unprotect");

    /// <summary>
    /// <c>pagemap_test_fork</c>: fork (with a thread consuming the FORK event when <paramref name="withEvent"/>) and check
    /// the child's pagemap WP bit at area_dst: kept with EVENT_FORK, dropped without.
    /// </summary>
    private static void PagemapTestFork(UffdTestEnv env, bool withEvent, string what)
    {
        UserfaultfdCtx? childUffd = null;
        (Thread, Func<Exception?>) consumer = default;
        if (withEvent)
        {
            consumer = Issue4.Start(env.Mm.CreateTask("fork-event-consumer"), _ =>
            {
                Assert.AreEqual(PollResult.Readable, env.Uffd.Poll((int)Threads.HangGuard.TotalMilliseconds), "FORK event");
                var r = env.Uffd.ReadOne(out var msg);
                Assert.IsTrue(r.Succeeded, r.ToString());
                Assert.AreEqual(UffdEvent.Fork, msg.Event, "wrong message");
                childUffd = env.Uffd.ForkedUserfaultfd(msg.ForkUfd);
            });
        }
        Mm? child = null;
        Issue4.Join(Issue4.Start(env.Mm.CreateTask("forker"), _ => child = env.Mm.Fork()), "fork");
        bool wp = Issue4.PagemapWp(child!, env.Dst);
        child!.Exit();
        if (withEvent)
        {
            Issue4.Join(consumer, "FORK consumer");
            Assert.IsNotNull(childUffd, "Didn't receive child uffd");
            childUffd.Dispose();
        }
        Assert.AreEqual(withEvent, wp, $"Detected {(withEvent ? "missing" : "stall")} uffd-wp bit in child in {what}");
    }

    private static void WpForkCommon(string mem, bool withEvent)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, Pages(mem), design, WpFeatures | (withEvent ? UffdFeatures.EventFork : 0));
            env.RegisterDst(UffdModes.Wp);
            ulong ps = (ulong)env.PageSize;
            Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.Dst, [1]), "touch the page");
            WpRange(env.Uffd, env.Dst, ps, true);
            Assert.IsTrue(Issue4.PagemapWp(env.Mm, env.Dst), $"WP bit after protect ({design})");
            PagemapTestFork(env, withEvent, "present pte");

            // Zap to expose the markers: DONTNEED for shared memory; private memory would be paged out (MADV_PAGEOUT), which
            // the model has no swap for, so its entry stays present and keeps its bit.
            if (env.Config.MapShared)
                Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst, ps, Advice.DontNeed));
            Assert.IsTrue(Issue4.PagemapWp(env.Mm, env.Dst), "uffd-wp should persist after the zap");
            PagemapTestFork(env, withEvent, "zapped pte");

            WpRange(env.Uffd, env.Dst, ps, false);
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.Dst), "unprotect clears the bit");
            Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.Dst, [2]), "fault the page in again");
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.Dst));
            Assert.AreEqual(AccessResult.Ok, env.Main.ReadByte(env.Dst, out var b));
            Assert.AreEqual(2, b);
            Ok(env.Uffd.Unregister(env.Dst, env.Bytes), "unregister");
        }
    }

    [TestMethod(DisplayName = "wp-fork")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void WpFork(string mem) => WpForkCommon(mem, withEvent: false);

    [TestMethod(DisplayName = "wp-fork-with-event")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void WpForkWithEvent(string mem) => WpForkCommon(mem, withEvent: true);

    [TestMethod(DisplayName = "wp-fork-pin")]
    public void WpForkPin()
        => Assert.Inconclusive("skipped: needs a long-term RO pin through gup_test (fork's early CoW of pinned pages, unsharing); the model has no GUP pinning");

    [TestMethod(DisplayName = "wp-fork-pin-with-event")]
    public void WpForkPinWithEvent()
        => Assert.Inconclusive("skipped: needs a long-term RO pin through gup_test; the model has no GUP pinning");

    [TestMethod(DisplayName = "minor-collapse")]
    public void MinorCollapse()
        => Assert.Inconclusive("skipped: MADV_COLLAPSE (THP collapse of shmem) has no meaning in the model, which has no THP");

    [TestMethod(DisplayName = "wp-unpopulated")]
    [DynamicData(nameof(Issue4.AnonOnly), typeof(Issue4), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void WpUnpopulated(string mem)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, 4, design, UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated);
            env.RegisterDst(UffdModes.Wp);
            ulong ps = (ulong)env.PageSize;
            // Applying a marker to an unpopulated anonymous entry.
            WpRange(env.Uffd, env.Dst, ps, true);
            Assert.IsTrue(Issue4.PagemapWp(env.Mm, env.Dst), "marker on an empty entry");
            Assert.IsTrue(env.Mm.PageTable.Get(env.Dst).IsUffdWpMarker);
            // Unprotect on the marker.
            WpRange(env.Uffd, env.Dst, ps, false);
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.Dst));
            Assert.IsTrue(env.Mm.PageTable.Get(env.Dst).IsNone, "unprotect drops the marker");
            // Zap on an anonymous marker drops it.
            WpRange(env.Uffd, env.Dst, ps, true);
            Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst, ps, Advice.DontNeed));
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.Dst));
            // Fault in after the marker was removed: no WP bit, no message.
            Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.Dst, [1]));
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.Dst));
            Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst, ps, Advice.DontNeed));
            // A read over a marker maps the zero page (write-protected) and does not hang.
            WpRange(env.Uffd, env.Dst, ps, true);
            var reader = Issue4.Start(env.Mm.CreateTask("reader"), t => Assert.AreEqual(AccessResult.Ok, t.ReadByte(env.Dst, out _)));
            Issue4.Join(reader, "read over a marker");
            var pte = env.Mm.PageTable.Get(env.Dst);
            Assert.IsTrue(pte.IsZeroPage && pte.IsUffdWp, $"zero page inherits the uffd-wp bit: {pte}");
            Assert.AreEqual(0, env.Uffd.PendingCount, "no message for a read");
            Assert.AreEqual(Errno.None, env.Mm.Madvise(env.Dst, ps, Advice.DontNeed));
        }
    }

    [TestMethod(DisplayName = "minor-wp")]
    [DynamicData(nameof(MemConfig.MinorCapable), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void MinorWp(string mem)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, Pages(mem), design, UffdFeatures.MinorShmem | UffdFeatures.MinorHugetlbfs
                | WpFeatures | UffdFeatures.WpUnpopulated);
            Ok(env.Uffd.Register(env.DstAlias, env.Bytes, UffdModes.Minor | UffdModes.Wp, out var ioctls), "register MINOR|WP");
            Assert.AreEqual(UffdIoctls.Continue | UffdIoctls.WriteProtect, ioctls & (UffdIoctls.Continue | UffdIoctls.WriteProtect));
            // Populate through the non-registered mapping: no faults.
            for (int i = 0; i < env.NrPages; i++)
            {
                var b = new byte[env.PageSize];
                Array.Fill(b, (byte)i);
                Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(i), b));
            }
            using var mon = new UffdMonitor(env, applyWp: true);
            var reader = Issue4.Start(env.Mm.CreateTask("reader"), t =>
            {
                for (int i = 0; i < env.NrPages; i++)
                {
                    var (r, data) = env.ReadPage(t, env.DstAlias, i);
                    Assert.AreEqual(AccessResult.Ok, r);
                    Assert.IsTrue(data.All(x => x == (byte)~i), $"page {i} bit-flipped by the handler");
                }
            });
            Issue4.Join(reader, "minor-wp reader");
            // CONTINUE with MODE_WP left every page write-protected: a write is a WP fault the monitor resolves.
            for (int i = 0; i < env.NrPages; i++)
                Assert.IsTrue(Issue4.PagemapWp(env.Mm, env.DstAlias + (ulong)i * (ulong)env.PageSize), $"page {i} WP after CONTINUE(WP)");
            var writer = Issue4.Start(env.Mm.CreateTask("writer"), t => Assert.AreEqual(AccessResult.Ok, t.Write(env.DstAlias, [0x5a])));
            Issue4.Join(writer, "write to a CONTINUE(WP) page");
            mon.Stop();
            mon.AssertClean();
            Assert.AreEqual(env.NrPages, mon.MinorFaults, "stats check: minor");
            Assert.AreEqual(0, mon.MissingFaults, "stats check: missing");
            Assert.AreEqual(1, mon.WpFaults, "one WP fault for the write");
        }
    }

    /// <summary>Reads the next message as the handler (hang-guarded poll + read).</summary>
    private static UffdMsg NextMsg(UserfaultfdCtx u)
    {
        Assert.AreEqual(PollResult.Readable, u.Poll((int)Threads.HangGuard.TotalMilliseconds), "a message within the hang guard");
        var r = u.ReadOne(out var msg);
        Assert.IsTrue(r.Succeeded, r.ToString());
        return msg;
    }

    [TestMethod(DisplayName = "uffd-missing-wp")]
    [DynamicData(nameof(Issue4.AnonOnly), typeof(Issue4), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void UffdMissingWp(string mem)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, 4, design, UffdFeatures.PagefaultFlagWp);
            env.RegisterDst(UffdModes.Missing | UffdModes.Wp);
            ulong ps = (ulong)env.PageSize;
            var src = Enumerable.Range(0, env.NrPages).Select(env.SrcPage).ToArray();

            // A read of a missing page: flags 0, and the fill is what the reader sees.
            var rd = Issue4.Start(env.Mm.CreateTask("read"), t =>
            {
                var (r, data) = env.ReadPage(t, env.Dst, 0);
                Assert.AreEqual(AccessResult.Ok, r);
                CollectionAssert.AreEqual(src[0], data);
            });
            var m = NextMsg(env.Uffd);
            Assert.AreEqual(UffdPagefaultFlags.None, m.PagefaultFlags, "read-missing flags");
            Assert.AreEqual(env.DstPage(0), m.PagefaultAddress);
            Ok(env.Uffd.Copy(env.DstPage(0), src[0], UffdCopyMode.None), "COPY page 0");
            Issue4.Join(rd, "read-missing");

            // A write to a missing page: flags WRITE; the fill lands before the write.
            var wr = Issue4.Start(env.Mm.CreateTask("write"), t => Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(env.DstPage(1), 0xfeedUL)));
            m = NextMsg(env.Uffd);
            Assert.AreEqual(UffdPagefaultFlags.Write, m.PagefaultFlags, "write-missing flags");
            Ok(env.Uffd.Copy(env.DstPage(1), src[1], UffdCopyMode.None), "COPY page 1");
            Issue4.Join(wr, "write-missing");
            var (_, p1) = env.ReadPage(env.Main, env.Dst, 1);
            Assert.AreEqual(0xfeedUL, BitConverter.ToUInt64(p1, 0), "the write landed on the filled page");
            CollectionAssert.AreEqual(src[1][8..], p1[8..], "the rest is the fill");

            // Protect the whole range; a write is WRITE|WP and completes only after the unprotect.
            WpRange(env.Uffd, env.Dst, env.Bytes, true);
            var wp = Issue4.Start(env.Mm.CreateTask("wp-write"), t => Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(env.DstPage(0), 0xbeefUL)));
            m = NextMsg(env.Uffd);
            Assert.AreEqual(UffdPagefaultFlags.Write | UffdPagefaultFlags.Wp, m.PagefaultFlags, "WP fault flags");
            Assert.AreEqual(1, env.Uffd.WaitingCount, "the writer waits for the unprotect");
            WpRange(env.Uffd, env.DstPage(0), ps, false);
            Issue4.Join(wp, "WP write");
            Assert.AreEqual(AccessResult.Ok, env.Main.ReadUInt64(env.DstPage(0), out var v0));
            Assert.AreEqual(0xbeefUL, v0);

            // Protection is per page: page 0 is writable now, page 1 is still protected.
            Assert.AreEqual(AccessResult.Ok, env.Main.WriteUInt64(env.DstPage(0) + 8, 1), "page 0 no longer protected");
            Assert.AreEqual(0, env.Uffd.PendingCount);
            var wp1 = Issue4.Start(env.Mm.CreateTask("wp-write-1"), t => Assert.AreEqual(AccessResult.Ok, t.WriteUInt64(env.DstPage(1), 2)));
            m = NextMsg(env.Uffd);
            Assert.AreEqual(env.DstPage(1), m.PagefaultAddress);
            Assert.AreEqual(UffdPagefaultFlags.Write | UffdPagefaultFlags.Wp, m.PagefaultFlags);
            WpRange(env.Uffd, env.DstPage(1), ps, false);
            Issue4.Join(wp1, "WP write page 1");

            // COPY over a populated page: EEXIST with the field, then WAKE (a stale message's handling).
            var ee = env.Uffd.Copy(env.DstPage(0), src[0], UffdCopyMode.None);
            Assert.AreEqual(Errno.EEXIST, ee.Errno);
            Assert.AreEqual(-(long)Errno.EEXIST, ee.Field);
            Ok(env.Uffd.Wake(env.DstPage(0), ps), "WAKE after EEXIST");

            // After UNREGISTER the contents survive and an untouched page reads as zero with no fault delivered.
            Ok(env.Uffd.Unregister(env.Dst, env.Bytes), "unregister");
            Assert.AreEqual(AccessResult.Ok, env.Main.ReadUInt64(env.DstPage(0), out v0));
            Assert.AreEqual(0xbeefUL, v0);
            var (r3, p3) = env.ReadPage(env.Main, env.Dst, 3);
            Assert.AreEqual(AccessResult.Ok, r3);
            Assert.IsTrue(p3.All(x => x == 0), "untouched page reads zero");
            Assert.AreEqual(PollResult.Timeout, env.Uffd.Poll(0), "no fault delivered after unregister");
        }
    }

    [TestMethod(DisplayName = "uffd-wp-mremap")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void UffdWpMremap(string mem)
    {
        foreach (var design in Issue4.Designs)
        {
            foreach (bool withEvent in new[] { false, true })
            {
                using var env = new UffdTestEnv(mem, Pages(mem), design, WpFeatures | (withEvent ? UffdFeatures.EventRemap : 0));
                ulong ps = (ulong)env.PageSize;
                for (int i = 0; i < env.NrPages; i++)
                    Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(i), env.Expected(i)), "populate");
                env.RegisterDst(UffdModes.Wp);
                WpRange(env.Uffd, env.Dst, env.Bytes, true);
                for (int i = 0; i < env.NrPages; i++)
                    Assert.IsTrue(Issue4.PagemapWp(env.Mm, env.DstPage(i)), $"page {i} protected");

                (Thread, Func<Exception?>) consumer = default;
                if (withEvent)
                    consumer = Issue4.Start(env.Mm.CreateTask("remap-consumer"), _ =>
                    {
                        var msg = NextMsg(env.Uffd);
                        Assert.AreEqual(UffdEvent.Remap, msg.Event);
                        Assert.AreEqual(env.Dst, msg.RemapFrom);
                        Assert.AreEqual(env.Bytes, msg.RemapLen);
                    });
                ulong moved = 0;
                var mover = Issue4.Start(env.Mm.CreateTask("mremap"), _ =>
                    Assert.AreEqual(Errno.None, env.Mm.Mremap(env.Dst, env.Bytes, env.Bytes, MremapFlags.MayMove | MremapFlags.Fixed,
                        NewPlace(env), out moved)));
                Issue4.Join(mover, "mremap");
                if (withEvent) Issue4.Join(consumer, "REMAP consumer");
                for (int i = 0; i < env.NrPages; i++)
                {
                    ulong a = moved + (ulong)i * ps;
                    Assert.AreEqual(withEvent, Issue4.PagemapWp(env.Mm, a),
                        withEvent ? $"page {i}: EVENT_REMAP keeps the uffd-wp bit" : $"page {i}: uffd-wp bit must be cleared by mremap");
                    var b = new byte[ps];
                    Assert.AreEqual(AccessResult.Ok, env.Main.Read(a, b));
                    CollectionAssert.AreEqual(env.Expected(i), b, "contents moved");
                }
            }
        }

        // A free, huge-page-aligned place above everything mapped so far.
        static ulong NewPlace(UffdTestEnv env)
        {
            ulong top = env.Mm.Vmas.Max(v => v.End);
            return (top + (ulong)MemConfig.HugePageSize * 4) & ~((ulong)MemConfig.HugePageSize - 1);
        }
    }

    [TestMethod(DisplayName = "wp-async (WP_ASYNC clears the bit in place)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void WpAsync(string mem)
    {
        foreach (var design in Issue4.Designs)
        {
            using var env = new UffdTestEnv(mem, Pages(mem), design, UffdFeatures.WpAsync | WpFeatures);
            Assert.IsTrue((env.Uffd.Features & UffdFeatures.WpUnpopulated) != 0, "WP_ASYNC implies WP_UNPOPULATED");
            env.RegisterDst(UffdModes.Wp);
            Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(0), env.Expected(0)));
            WpRange(env.Uffd, env.Dst, env.Bytes, true);
            for (int i = 0; i < env.NrPages; i++)
                Assert.IsTrue(Issue4.PagemapWp(env.Mm, env.DstPage(i)), $"page {i}: bit or marker");
            // Writes never block and never queue a message; each clears only its own page's bit.
            Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(0), [7]));
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.DstPage(0)));
            Assert.IsTrue(Issue4.PagemapWp(env.Mm, env.DstPage(1)));
            Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(1), [9]), "write over a marker");
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.DstPage(1)));
            Assert.AreEqual(0, env.Uffd.PendingCount, "WP_ASYNC queues nothing");
            Assert.AreEqual(AccessResult.Ok, env.Main.ReadByte(env.DstPage(1), out var b));
            Assert.AreEqual(9, b);
            Assert.AreEqual(AccessResult.Ok, env.Main.ReadByte(env.DstPage(0) + 1, out b));
            Assert.AreEqual(env.Expected(0)[1], b, "the rest of page 0 kept");
        }
    }

    [TestMethod(DisplayName = "unregister and close clear uffd-wp bits and markers")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void UnregisterClearsWp(string mem)
    {
        using var env = new UffdTestEnv(mem, Pages(mem), features: WpFeatures | UffdFeatures.WpUnpopulated);
        Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(0), [1]));
        env.RegisterDst(UffdModes.Wp);
        WpRange(env.Uffd, env.Dst, env.Bytes, true);
        Assert.IsTrue(Issue4.PagemapWp(env.Mm, env.DstPage(0)) && Issue4.PagemapWp(env.Mm, env.DstPage(1)), "bit and marker set");
        Ok(env.Uffd.Unregister(env.Dst, env.Bytes), "unregister");
        for (int i = 0; i < env.NrPages; i++)
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.DstPage(i)), $"page {i} still write-protected after UNREGISTER");
        Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(0), [2]), "writable again without a message");

        env.RegisterDst(UffdModes.Wp);
        WpRange(env.Uffd, env.Dst, env.Bytes, true);
        env.Uffd.Dispose();
        for (int i = 0; i < env.NrPages; i++)
            Assert.IsFalse(Issue4.PagemapWp(env.Mm, env.DstPage(i)), $"page {i} still write-protected after close");
        Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(1), [3]));
    }

    [TestMethod(DisplayName = "WRITEPROTECT errno (checklist row 14)")]
    [DataRow("anon")]
    [DataRow("hugetlb")]
    public void WriteProtectErrno(string mem)
    {
        using var env = new UffdTestEnv(mem, 2, features: WpFeatures);
        ulong ps = (ulong)env.PageSize;
        env.RegisterDst(UffdModes.Missing, ps);
        Assert.AreEqual(Errno.ENOENT, env.Uffd.WriteProtect(env.Dst, ps, UffdWriteProtectMode.Wp).Errno, "MISSING-only range");
        Assert.AreEqual(Errno.ENOENT, env.Uffd.WriteProtect(env.Src, ps, UffdWriteProtectMode.Wp).Errno, "unregistered range");
        Assert.AreEqual(Errno.ENOENT, env.Uffd.WriteProtect(0x20000, 0x1000, UffdWriteProtectMode.Wp).Errno, "no VMA");
        Ok(env.Uffd.Register(env.Dst + ps, ps, UffdModes.Wp, out _), "register WP");
        Assert.AreEqual(Errno.EINVAL, env.Uffd.WriteProtect(env.Dst + ps, ps, UffdWriteProtectMode.Wp | UffdWriteProtectMode.DontWake).Errno);
        Assert.AreEqual(Errno.EINVAL, env.Uffd.WriteProtect(env.Dst + ps, ps, (UffdWriteProtectMode)4).Errno);
        Assert.AreEqual(Errno.EINVAL, env.Uffd.WriteProtect(env.Dst + ps + 1, ps, UffdWriteProtectMode.Wp).Errno);
        Assert.AreEqual(Errno.ENOENT, env.Uffd.WriteProtect(env.Dst, 2 * ps, UffdWriteProtectMode.Wp).Errno, "one VMA of the range not WP");
        if (env.Config.IsHugetlb)
            Assert.AreEqual(Errno.EINVAL, env.Uffd.WriteProtect(env.Dst + ps, 4096, UffdWriteProtectMode.Wp).Errno, "hugetlb needs huge alignment");

        // DONTWAKE: an unprotect resolves the entry but leaves the WP faulter asleep until UFFDIO_WAKE.
        ulong page = env.Dst + ps;
        Assert.AreEqual(AccessResult.Ok, env.Main.Write(page, [1]));
        Ok(env.Uffd.WriteProtect(page, ps, UffdWriteProtectMode.Wp), "protect");
        var w = Issue4.Start(env.Mm.CreateTask("wp-writer"), t => Assert.AreEqual(AccessResult.Ok, t.Write(page, [2])));
        Assert.AreEqual(UffdPagefaultFlags.Write | UffdPagefaultFlags.Wp, NextMsg(env.Uffd).PagefaultFlags);
        Ok(env.Uffd.WriteProtect(page, ps, UffdWriteProtectMode.DontWake), "unprotect DONTWAKE");
        Assert.AreEqual(1, env.Uffd.WaitingCount, "DONTWAKE leaves the faulter queued");
        Ok(env.Uffd.Wake(page, ps), "wake");
        Issue4.Join(w, "writer after WAKE");
        Assert.AreEqual(AccessResult.Ok, env.Main.ReadByte(page, out var b));
        Assert.AreEqual(2, b);
    }
}
