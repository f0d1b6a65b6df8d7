using PluginMm.Userfaultfd;

namespace PluginMm.Conformance;

/// <summary>A scenario: a name from uffd-unit-tests (or the uffd selftest it ports), the memory types it runs on, and its body.</summary>
public sealed record Scenario(string Name, MemType[] Types, int Pages, Action<ScenarioRun> Body)
{
    /// <summary>The display name, as the selftest prints it: <c>"minor on shmem"</c>.</summary>
    public string DisplayName(MemType t) => $"{Name} on {t.Name()}";
}

/// <summary>
/// The ported scenarios, each written once against <see cref="ScenarioRun"/> (so once against
/// <see cref="IUffdTarget"/> and <see cref="IUserfaultfd"/>). Sources: tools/testing/selftests/mm/uffd-unit-tests.c
/// (test names), uffd-common.c (handler behaviour), uffd-missing-wp.c.
/// </summary>
public static class Scenarios
{
    private static readonly MemType[] All = MemTypes.All;
    private static readonly MemType[] FileBacked = [MemType.Shmem, MemType.ShmemPrivate, MemType.HugeTlb, MemType.HugeTlbPrivate];

    /// <summary>Every scenario.</summary>
    public static readonly Scenario[] Catalogue =
    [
        new("register-ioctls", All, 1, RegisterIoctls),
        new("zeropage", All, 1, ZeroPage),
        new("missing", All, 2, Missing),
        new("minor", FileBacked, 2, Minor),
        new("minor-wp", FileBacked, 1, MinorWp),
        new("wp", All, 2, Wp),
        new("wp-unpopulated", [MemType.Anon], 1, WpUnpopulated),
        new("sigbus", All, 1, SigBus),
        new("poison", All, 4, Poison),
        new("move", All, 2, Move),
        new("mmap-changing", All, 1, MmapChanging),
        new("close-wakes", All, 1, CloseWakes),
    ];

    private static UffdFeatures MissingFor(MemType t) => t switch
    {
        MemType.Anon => UffdFeatures.None,
        MemType.Shmem or MemType.ShmemPrivate => UffdFeatures.MissingShmem,
        _ => UffdFeatures.MissingHugetlbfs,
    };

    private static UffdFeatures MinorFor(MemType t) => t.IsHuge() ? UffdFeatures.MinorHugetlbfs : UffdFeatures.MinorShmem;

    private static UffdFeatures WpFor(MemType t) => UffdFeatures.PagefaultFlagWp | (t == MemType.Anon ? 0 : UffdFeatures.WpHugetlbfsShmem);

    /// <summary>
    /// uffd-unit-tests <c>register-ioctls</c>: every combination of MISSING/WP/MINOR on one page; no mode, and MINOR on
    /// anon, fail with EINVAL; otherwise the returned ioctls (recorded in full) are checked by the trace.
    /// </summary>
    public static void RegisterIoctls(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type) | WpFor(r.Type) | (r.Type == MemType.Anon ? 0 : MinorFor(r.Type)));
        for (int m = 0; m < 8; m++)
        {
            var res = r.Register(r.P(0), (ulong)r.PageSize, (UffdModes)m);
            if (res.Succeeded)
                r.Unregister(r.P(0), (ulong)r.PageSize);
        }
        r.Register(r.P(0) + 1, (ulong)r.PageSize, UffdModes.Missing);
        r.Register(r.P(0), 0, UffdModes.Missing);
        r.Register(r.P(0), (ulong)r.PageSize, (UffdModes)8);
    }

    /// <summary>
    /// uffd-unit-tests <c>zeropage</c>: MISSING on one page (and the alias); ZEROPAGE maps zeros (hugetlb: EINVAL, field
    /// -EINVAL); a second ZEROPAGE (on the alias for shared memory) gives EEXIST, field -EEXIST.
    /// </summary>
    public static void ZeroPage(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type));
        r.Register(r.P(0), (ulong)r.PageSize, UffdModes.Missing);
        if (r.Type.HasPageCache())
            r.Register(r.P(0, alias: true), (ulong)r.PageSize, UffdModes.Missing);
        r.ZeroPage(r.P(0), (ulong)r.PageSize);
        r.ZeroPage(r.Type.HasPageCache() ? r.P(0, alias: true) : r.P(0), (ulong)r.PageSize);
        r.ZeroPage(r.P(0), (ulong)r.PageSize);
        r.FinalBytes();
    }

    /// <summary>
    /// MISSING faults served by COPY (the core of uffd-stress and uffd-missing-wp): a read fault has flags 0, a write
    /// fault WRITE; the write lands after the copy; COPY DONTWAKE leaves the task asleep until WAKE; a second COPY gives
    /// EEXIST (-EEXIST); a COPY into the unregistered alias gives ENOENT.
    /// </summary>
    public static void Missing(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type));
        r.Register(r.P(0), 2 * (ulong)r.PageSize, UffdModes.Missing);
        var t = r.Access(r.P(0) + 100, AccessKind.Read);
        r.ExpectMessage();
        r.Copy(r.P(0), r.Pattern(1));
        r.Finish(t);

        t = r.Access(r.P(1) + 7, AccessKind.Write, 0x5a);
        r.ExpectMessage();
        r.Copy(r.P(1), r.Pattern(2), UffdCopyMode.DontWake);
        r.Blocked(t);
        r.Wake(r.P(1), (ulong)r.PageSize);
        r.Finish(t);
        r.Copy(r.P(1), r.Pattern(3));
        if (r.Type.HasPageCache())
            r.Copy(r.P(1, alias: true), r.Pattern(3));
        r.Poll();
        r.FinalBytes();
    }

    /// <summary>
    /// uffd-unit-tests <c>minor</c>: MINOR on the area, page cache populated through the alias (no fault there); each
    /// read of the area gives a MINOR fault; the handler bit-flips the page through the alias and CONTINUEs; a second
    /// CONTINUE gives EEXIST (uffd-common.c uffd_handle_page_fault).
    /// </summary>
    public static void Minor(ScenarioRun r)
    {
        r.Api(MinorFor(r.Type));
        for (int i = 0; i < 2; i++)
            r.Populate(r.P(i, alias: true), r.Pattern(10 + i));
        r.Register(r.P(0), 2 * (ulong)r.PageSize, UffdModes.Minor);
        for (int i = 0; i < 2; i++)
        {
            var t = r.Access(r.P(i) + 3, AccessKind.Read);
            r.ExpectMessage();
            var flipped = r.Pattern(10 + i);
            for (int j = 0; j < flipped.Length; j++)
                flipped[j] = (byte)~flipped[j];
            r.Populate(r.P(i, alias: true), flipped);
            r.Continue(r.P(i), (ulong)r.PageSize);
            r.Continue(r.P(i), (ulong)r.PageSize);
            r.Finish(t);
        }
        r.Poll();
        r.FinalBytes();
    }

    /// <summary>
    /// uffd-unit-tests <c>minor-wp</c>: MINOR|WP; CONTINUE with MODE_WP maps the page write-protected, so the next write
    /// gives a WP fault (WRITE|WP) that unprotecting resolves.
    /// </summary>
    public static void MinorWp(ScenarioRun r)
    {
        r.Api(MinorFor(r.Type) | WpFor(r.Type));
        r.Populate(r.P(0, alias: true), r.Pattern(20));
        r.Register(r.P(0), (ulong)r.PageSize, UffdModes.Minor | UffdModes.Wp);
        var t = r.Access(r.P(0), AccessKind.Read);
        r.ExpectMessage();
        r.Continue(r.P(0), (ulong)r.PageSize, UffdContinueMode.Wp);
        r.Finish(t);
        t = r.Access(r.P(0) + 1, AccessKind.Write, 0x77);
        r.ExpectMessage();
        r.WriteProtect(r.P(0), (ulong)r.PageSize, UffdWriteProtectMode.None);
        r.Finish(t);
        r.Poll();
        r.FinalBytes();
    }

    /// <summary>
    /// WP on populated and missing pages (uffd-missing-wp.c): MISSING|WP; a write to a missing page gives a MISSING
    /// fault (WRITE); COPY with MODE_WP installs it protected, so the retried write gives a WP fault (WRITE|WP);
    /// a read of a protected page does not fault; unprotect resolves and wakes.
    /// </summary>
    public static void Wp(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type) | WpFor(r.Type));
        r.Register(r.P(0), 2 * (ulong)r.PageSize, UffdModes.Missing | UffdModes.Wp);
        var t = r.Access(r.P(0) + 5, AccessKind.Write, 0x42);
        r.ExpectMessage();
        r.Copy(r.P(0), r.Pattern(30), UffdCopyMode.Wp);
        r.ExpectMessage();
        r.WriteProtect(r.P(0), (ulong)r.PageSize, UffdWriteProtectMode.None);
        r.Finish(t);

        r.Copy(r.P(1), r.Pattern(31), UffdCopyMode.DontWake);
        r.WriteProtect(r.P(1), (ulong)r.PageSize, UffdWriteProtectMode.Wp);
        r.Finish(r.Access(r.P(1) + 9, AccessKind.Read));
        t = r.Access(r.P(1) + 9, AccessKind.Write, 0x43);
        r.ExpectMessage();
        r.WriteProtect(r.P(1), (ulong)r.PageSize, UffdWriteProtectMode.Wp | UffdWriteProtectMode.DontWake);
        r.WriteProtect(r.P(1), (ulong)r.PageSize, UffdWriteProtectMode.DontWake);
        r.Blocked(t);
        r.Wake(r.P(1), (ulong)r.PageSize);
        r.Finish(t);
        r.Unregister(r.P(0), 2 * (ulong)r.PageSize);
        r.WriteProtect(r.P(0), (ulong)r.PageSize, UffdWriteProtectMode.Wp);
        r.Poll();
        r.FinalBytes();
    }

    /// <summary>
    /// uffd-unit-tests <c>wp-unpopulated</c>: with WP_UNPOPULATED, protecting an empty anon PTE installs a marker: a write
    /// faults (WRITE|WP); a read over a marker gets the zero page without a fault; MADV_DONTNEED drops the marker.
    /// </summary>
    public static void WpUnpopulated(ScenarioRun r)
    {
        r.Api(UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated);
        r.Register(r.P(0), (ulong)r.PageSize, UffdModes.Wp);
        r.WriteProtect(r.P(0), (ulong)r.PageSize, UffdWriteProtectMode.Wp);
        var t = r.Access(r.P(0), AccessKind.Write, 0x11);
        r.ExpectMessage();
        r.WriteProtect(r.P(0), (ulong)r.PageSize, UffdWriteProtectMode.None);
        r.Finish(t);

        r.Finish(r.Zap(r.P(0), (ulong)r.PageSize, Zap.DontNeed));
        r.WriteProtect(r.P(0), (ulong)r.PageSize, UffdWriteProtectMode.Wp);
        r.Finish(r.Access(r.P(0), AccessKind.Read));
        r.Finish(r.Zap(r.P(0), (ulong)r.PageSize, Zap.DontNeed));
        r.Finish(r.Access(r.P(0), AccessKind.Write, 0x12));
        r.Poll();
        r.FinalBytes();
    }

    /// <summary>
    /// uffd-unit-tests <c>sigbus</c>: with FEATURE_SIGBUS a fault on a missing page raises SIGBUS and queues nothing;
    /// after a COPY the access succeeds.
    /// </summary>
    public static void SigBus(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type) | UffdFeatures.SigBus);
        r.Register(r.P(0), (ulong)r.PageSize, UffdModes.Missing);
        r.Finish(r.Access(r.P(0), AccessKind.Read));
        r.Finish(r.Access(r.P(0), AccessKind.Write, 1));
        r.Poll();
        r.Copy(r.P(0), r.Pattern(40));
        r.Finish(r.Access(r.P(0) + 1, AccessKind.Read));
        r.FinalBytes();
    }

    /// <summary>
    /// uffd-unit-tests <c>poison</c>: four MISSING pages; the handler COPYs zeros into odd pages and POISONs even ones
    /// (field = page size); accesses to poisoned pages SIGBUS; POISON over a present or poisoned PTE gives EEXIST.
    /// </summary>
    public static void Poison(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type) | UffdFeatures.Poison);
        r.Register(r.P(0), 4 * (ulong)r.PageSize, UffdModes.Missing);
        var zero = new byte[r.PageSize];
        for (int i = 0; i < 4; i++)
        {
            var t = r.Access(r.P(i), AccessKind.Read);
            r.ExpectMessage();
            if (i % 2 == 0)
                r.Poison(r.P(i), (ulong)r.PageSize);
            else
                r.Copy(r.P(i), zero);
            r.Finish(t);
        }
        r.Poison(r.P(0), (ulong)r.PageSize);
        r.Poison(r.P(1), (ulong)r.PageSize);
        r.Poll();
        r.FinalBytes();
    }

    /// <summary>
    /// uffd-unit-tests <c>move</c>: MISSING on the destination; the handler MOVEs a page from an anon source; the
    /// destination holds the data and the source is a hole. MOVE over a populated page gives EEXIST, from a hole ENOENT
    /// (or success with ALLOW_SRC_HOLES). On non-anon destinations MOVE fails and the fault is resolved by COPY.
    /// </summary>
    public static void Move(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type) | UffdFeatures.Move);
        var src = r.MapExtra(MemType.Anon, 2);
        src.Write(src.Start, r.Pattern(50).AsSpan(0, src.PageSize));
        src.Write(src.Start + (ulong)src.PageSize, r.Pattern(51).AsSpan(0, src.PageSize));
        r.Register(r.P(0), 2 * (ulong)r.PageSize, UffdModes.Missing);
        var t = r.Access(r.P(0) + 8, AccessKind.Read);
        r.ExpectMessage();
        if (!r.Move(r.P(0), src.Start, (ulong)r.PageSize).Succeeded)
            r.Copy(r.P(0), r.Pattern(50));
        r.Finish(t);
        r.Move(r.P(0), src.Start + (ulong)src.PageSize, (ulong)r.PageSize);
        r.Move(r.P(1), src.Start, (ulong)r.PageSize);
        r.Move(r.P(1), src.Start, (ulong)r.PageSize, UffdMoveMode.AllowSrcHoles);
        r.Move(r.P(1), src.Start + 1, (ulong)r.PageSize);
        r.Poll();
        r.FinalBytes();
    }

    /// <summary>
    /// uffd-unit-tests <c>mmap-changing</c>: a task blocked delivering a REMOVE event (MADV_REMOVE, or MADV_DONTNEED on
    /// private memory) makes COPY/ZEROPAGE/MOVE/POISON/CONTINUE fail with EAGAIN and field -EAGAIN, and WRITEPROTECT with
    /// EAGAIN, until the event is read.
    /// </summary>
    public static void MmapChanging(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type) | UffdFeatures.EventRemove | UffdFeatures.Move | UffdFeatures.Poison);
        r.Register(r.P(0), (ulong)r.PageSize, UffdModes.Missing);
        var zap = r.Zap(r.P(0), (ulong)r.PageSize, r.Type.IsShared() ? Zap.Remove : Zap.DontNeed);
        r.Blocked(zap);
        var page = r.Pattern(60);
        r.Copy(r.P(0), page);
        r.ZeroPage(r.P(0), (ulong)r.PageSize);
        r.Move(r.P(0), r.P(0), (ulong)r.PageSize);
        r.Poison(r.P(0), (ulong)r.PageSize);
        r.Continue(r.P(0), (ulong)r.PageSize);
        r.WriteProtect(r.P(0), (ulong)r.PageSize, UffdWriteProtectMode.Wp);
        r.ExpectMessage();
        r.Finish(zap);
        r.Copy(r.P(0), page);
        r.FinalBytes();
    }

    /// <summary>
    /// Closing the userfaultfd with a blocked faulter (fs/userfaultfd.c userfaultfd_release): the task is woken and
    /// refaults as if the range were not registered.
    /// </summary>
    public static void CloseWakes(ScenarioRun r)
    {
        r.Api(MissingFor(r.Type));
        r.Register(r.P(0), (ulong)r.PageSize, UffdModes.Missing);
        var t = r.Access(r.P(0) + 3, AccessKind.Write, 0x99);
        r.ExpectMessage();
        r.CloseUffd();
        r.Finish(t);
        r.FinalBytes();
    }
}
