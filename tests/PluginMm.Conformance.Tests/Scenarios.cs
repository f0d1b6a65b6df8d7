using PluginMm.Userfaultfd;

namespace PluginMm.Conformance;

/// <summary>A scenario: a name from uffd-unit-tests (or the uffd selftest it ports), the memory types it runs on, and its body.</summary>
public sealed record Scenario(string Name, MemType[] Types, int Pages, Action<ScenarioRun> Body)
{
    /// <summary>On the host, runs in uffd_helper (<see cref="HelperTarget"/>): it forks, or needs a real SIGBUS or a KVM VM.</summary>
    public bool InHelper { get; init; }

    /// <summary>Not run per memory type (UFFDIO_API): the display name has no "on &lt;type&gt;".</summary>
    public bool NoMemType { get; init; }

    /// <summary>The display name, as the selftest prints it: <c>"minor on shmem"</c>.</summary>
    public string DisplayName(MemType t) => NoMemType ? Name : $"{Name} on {t.Name()}";
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
        new("UFFDIO_API (with syscall)", [MemType.Anon], 1, r => UffdioApi(r, device: false)) { NoMemType = true },
        new("UFFDIO_API (with /dev/userfaultfd)", [MemType.Anon], 1, r => UffdioApi(r, device: true)) { NoMemType = true },
        new("register-ioctls", All, 1, RegisterIoctls),
        new("zeropage", All, 1, ZeroPage),
        new("missing", All, 2, Missing),
        new("minor", FileBacked, 2, Minor),
        new("minor-wp", FileBacked, 1, MinorWp),
        new("wp", All, 2, Wp),
        new("wp-unpopulated", [MemType.Anon], 1, WpUnpopulated),
        new("wp-fork", All, 4, r => WpFork(r, withEvent: false)) { InHelper = true },
        new("wp-fork-with-event", All, 4, r => WpFork(r, withEvent: true)) { InHelper = true },
        new("sigbus", All, 4, r => SigBus(r, wp: false)) { InHelper = true },
        new("sigbus-wp", All, 4, r => SigBus(r, wp: true)) { InHelper = true },
        new("events", All, 4, r => Events(r, wp: false)) { InHelper = true },
        new("events-wp", All, 4, r => Events(r, wp: true)) { InHelper = true },
        new("poison", All, 4, Poison),
        new("move", All, 2, Move),
        new("mmap-changing", All, 1, MmapChanging),
        new("close-wakes", All, 1, CloseWakes),
        new("guest_memfd-register", [MemType.GuestMemfd], 2, GuestMemfdRegister) { InHelper = true },
    ];

    /// <summary>
    /// uffd-unit-tests cases no target runs yet, with the reason: each is reported (Assert.Inconclusive), never passed.
    /// </summary>
    public static readonly (string Name, string Model, Func<string> Host)[] NotRun =
    [
        ("move-pmd", "the model has no THP (PMD-mapped anonymous huge pages)", HostThp),
        ("move-pmd-split", "the model has no THP (it splits PMD-mapped THPs while moving)", HostThp),
        ("wp-fork-pin", "the model has no GUP long-term pinning (gup_test)", HostGupTest),
        ("wp-fork-pin-with-event", "the model has no GUP long-term pinning (gup_test)", HostGupTest),
        ("minor-collapse", "the model has no THP, so MADV_COLLAPSE of shmem has nothing to collapse", HostThp),
    ];

    private static string HostThp()
    {
        const string path = "/sys/kernel/mm/transparent_hugepage/enabled";
        string mode = File.Exists(path) ? File.ReadAllText(path).Trim() : "absent";
        return $"host could run it (THP: {mode}), but with nothing to compare against it is not run";
    }

    private static string HostGupTest() => File.Exists("/sys/kernel/debug/gup_test")
        ? "host has /sys/kernel/debug/gup_test, but with nothing to compare against it is not run"
        : "host cannot either: /sys/kernel/debug/gup_test is absent (CONFIG_GUP_TEST=n)";

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
    /// uffd-unit-tests <c>UFFDIO_API (with syscall)</c> / <c>(with /dev/userfaultfd)</c> (<c>test_uffd_api</c>), opened with
    /// the selftest's UFFD_FLAGS (O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY): a wrong api and an unknown feature bit
    /// fail, the plain call succeeds (features and ioctls recorded in full), a second call on an initialised fd fails.
    /// </summary>
    public static void UffdioApi(ScenarioRun r, bool device)
    {
        r.OpenUffd(Uapi.O_CLOEXEC | Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY, device);
        r.RawApi(0xab, UffdFeatures.None);
        r.RawApi(Uapi.UFFD_API, (UffdFeatures)(1UL << 63));
        r.RawApi(Uapi.UFFD_API, UffdFeatures.None);
        r.RawApi(Uapi.UFFD_API, (UffdFeatures)(1UL << 0));
    }

    /// <summary><c>uffd_test_ops-&gt;release_pages</c>: MADV_REMOVE where the area is shared, MADV_DONTNEED otherwise.</summary>
    private static Zap Release(MemType t) => t.IsShared() ? Zap.Remove : Zap.DontNeed;

    /// <summary>
    /// uffd-unit-tests <c>wp-fork</c> / <c>wp-fork-with-event</c> (<c>uffd_wp_fork_test_common</c>): WP on the area, the
    /// first page touched and protected; a forked child's pagemap keeps PM_UFFD_WP with EVENT_FORK and drops it without,
    /// for the present PTE and again after a zap (DONTNEED for shared memory, PAGEOUT — result ignored — for private);
    /// unprotect clears the bit, and a write faults the page back in without it.
    /// </summary>
    public static void WpFork(ScenarioRun r, bool withEvent)
    {
        if (r.Target is HelperTarget { PageOutUnsupported: { } why } && !r.Type.IsShared())
            throw new ScenarioSkippedException(why);
        ulong ps = (ulong)r.PageSize;
        r.Api(WpFor(r.Type) | (withEvent ? UffdFeatures.EventFork : 0));
        r.Register(r.P(0), (ulong)r.Area.Pages * ps, UffdModes.Wp);
        r.Finish(r.Access(r.P(0), AccessKind.Write, 1));
        r.WriteProtect(r.P(0), ps, UffdWriteProtectMode.Wp);
        r.Pagemap(r.P(0));
        PagemapTestFork(r, withEvent);
        if (r.Type.IsShared())
            r.Finish(r.Zap(r.P(0), ps, Zap.DontNeed));
        else
            r.PageOut(r.P(0), ps);
        r.Pagemap(r.P(0));
        PagemapTestFork(r, withEvent);
        r.WriteProtect(r.P(0), ps, UffdWriteProtectMode.None);
        r.Pagemap(r.P(0));
        r.Finish(r.Access(r.P(0), AccessKind.Write, 2));
        r.Pagemap(r.P(0));
        r.Unregister(r.P(0), (ulong)r.Area.Pages * ps);
        r.FinalBytes();
    }

    /// <summary><c>pagemap_test_fork</c>: fork (the FORK event read by the handler, as <c>fork_event_consumer</c>), the
    /// child's pagemap entry of the first page, the child exits.</summary>
    private static void PagemapTestFork(ScenarioRun r, bool withEvent)
    {
        var parent = r.Uffd;
        var fork = r.Fork();
        if (withEvent)
            r.UseForked(r.ExpectMessage());
        r.Finish(fork);
        var child = r.Child(fork);
        r.Pagemap(r.P(0), child);
        r.Exit(child);
        if (withEvent)
            r.Use(parent, "parent");
    }

    /// <summary>
    /// uffd-unit-tests <c>sigbus</c> / <c>sigbus-wp</c> (<c>uffd_sigbus_test_common</c>, <c>faulting_process(1)</c> then
    /// <c>(2)</c>): with FEATURE_SIGBUS every first touch of the first half is a real SIGBUS with no message; the process
    /// COPYs the page (MODE_WP for -wp) and retries; with WP the write-back is a second SIGBUS, resolved by unprotecting.
    /// After release_pages a forked child (EVENT_FORK, the handler following the child's uffd) gets SIGBUS on every page
    /// and the handler sees no userfault.
    /// </summary>
    public static void SigBus(ScenarioRun r, bool wp)
    {
        ulong ps = (ulong)r.PageSize;
        int n = r.Area.Pages, split = (n + 1) / 2;
        r.Api(MissingFor(r.Type) | UffdFeatures.SigBus | UffdFeatures.EventFork | (wp ? WpFor(r.Type) : 0));
        r.Register(r.P(0), (ulong)n * ps, UffdModes.Missing | (wp ? UffdModes.Wp : 0));
        for (int nr = 0; nr < split; nr++)
        {
            r.Finish(r.Access(r.P(nr), AccessKind.Read));
            r.Copy(r.P(nr), r.Pattern(80 + nr), wp ? UffdCopyMode.Wp : UffdCopyMode.None);
            byte v = r.Finish(r.Access(r.P(nr), AccessKind.Read)).Value;
            if (r.Finish(r.Access(r.P(nr), AccessKind.Write, v)).Signal is not null)
            {
                r.WriteProtect(r.P(nr), ps, UffdWriteProtectMode.None);
                r.Finish(r.Access(r.P(nr), AccessKind.Write, v));
            }
        }
        r.Poll();
        r.Finish(r.Zap(r.P(0), (ulong)n * ps, Release(r.Type)));
        var fork = r.Fork();
        r.UseForked(r.ExpectMessage());
        r.Finish(fork);
        var child = r.Child(fork);
        for (int nr = 0; nr < split; nr++)
            r.Finish(r.Access(child, r.P(nr), AccessKind.Read));
        r.Poll();
        r.Exit(child);
        r.FinalBytes();
    }

    /// <summary>
    /// uffd-unit-tests <c>events</c> / <c>events-wp</c> (<c>uffd_events_test_common</c>, <c>faulting_process(0)</c>): the
    /// handler follows the FORK to the child's uffd; the child reads the first half (MISSING, COPY — MODE_WP for -wp, so
    /// its write-back is a WP fault resolved by unprotecting), mremaps the area onto area_src (REMAP: the handler's
    /// addresses move), reads the second half there, releases it (REMOVE: the handler unregisters the range, as
    /// uffd_poll_thread does) and finds every page zero.
    /// </summary>
    public static void Events(ScenarioRun r, bool wp)
    {
        ulong ps = (ulong)r.PageSize;
        int n = r.Area.Pages, split = (n + 1) / 2, nr;
        r.Api(MissingFor(r.Type) | UffdFeatures.EventFork | UffdFeatures.EventRemap | UffdFeatures.EventRemove | (wp ? WpFor(r.Type) : 0));
        var src = r.MapExtra(r.Type, n);
        r.Register(r.P(0), (ulong)n * ps, UffdModes.Missing | (wp ? UffdModes.Wp : 0));
        var fork = r.Fork();
        r.UseForked(r.ExpectMessage());
        r.Finish(fork);
        var child = r.Child(fork);
        for (nr = 0; nr < split; nr++)
            FaultAndWriteBack(r, child, r.P(nr), nr, wp);
        var m = r.Mremap(child, r.P(0), (ulong)n * ps, src.Start);
        r.ExpectMessage();
        r.Finish(m);
        for (; nr < n; nr++)
            FaultAndWriteBack(r, child, src.Start + (ulong)nr * ps, nr, wp);
        var release = r.Zap(child, src.Start, (ulong)n * ps, Release(r.Type));
        var msg = r.ExpectMessage();
        if (msg.Event == UffdEvent.Remove)
            r.Unregister(msg.RemoveStart, msg.RemoveEnd - msg.RemoveStart);
        r.Finish(release);
        for (nr = 0; nr < n; nr++)
            r.Finish(r.Access(child, src.Start + (ulong)nr * ps + (ulong)nr, AccessKind.Read));
        r.Poll();
        r.Exit(child);
        r.FinalBytes();
    }

    private static void FaultAndWriteBack(ScenarioRun r, ITargetProcess child, ulong page, int nr, bool wp)
    {
        var t = r.Access(child, page, AccessKind.Read);
        r.ExpectMessage();
        r.Copy(page, r.Pattern(90 + nr), wp ? UffdCopyMode.Wp : UffdCopyMode.None);
        byte v = r.Finish(t).Value;
        t = r.Access(child, page, AccessKind.Write, v);
        if (wp)
        {
            r.ExpectMessage();
            r.WriteProtect(page, (ulong)r.PageSize, UffdWriteProtectMode.None);
        }
        r.Finish(t);
    }

    /// <summary>
    /// guest_memfd (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED, from a KVM VM on the host): mapped, touched
    /// (written through the area), then UFFDIO_REGISTER with MISSING and with MINOR. Mainline refuses both with EINVAL
    /// (<c>vma_can_userfault</c>: not anonymous, shmem or hugetlb); the series' guest_memfd registers
    /// (<c>vm_uffd_ops</c>), which the model shows in its series setting.
    /// </summary>
    public static void GuestMemfdRegister(ScenarioRun r)
    {
        ulong len = (ulong)r.Area.Pages * (ulong)r.PageSize;
        r.Api(UffdFeatures.None);
        r.Populate(r.P(0), r.Pattern(70));
        r.Register(r.P(0), len, UffdModes.Missing);
        r.Register(r.P(0), len, UffdModes.Minor);
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
