using PluginMm.Backends;
using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Issue 11 part 2: userfaultfd ioctls where the model differed from this machine's kernel, each a case the differential
/// fuzzer found (the case file is named in each test's comment), with the kernel function that explains the kernel's result.
/// </summary>
[TestClass]
public sealed unsafe class FidelityUffdTests
{
    private static List<Vma> VmasIn(Mm mm, ulong start, ulong end) => mm.Vmas.Where(v => v.Start < end && v.End > start).ToList();

    /// <summary>
    /// copy_errno_anon.case: REGISTER of two halves one after the other leaves one VMA in the kernel
    /// (<c>userfaultfd_register_range</c> → <c>vma_modify_flags_uffd</c> merges a neighbour that became identical), so a COPY
    /// across both halves works; the model only split, and the COPY was ENOENT.
    /// </summary>
    [TestMethod(DisplayName = "VMA merge: REGISTER of two halves merges them; COPY across the seam succeeds")]
    [DataRow("anon")]
    [DataRow("shmem")]
    [DataRow("shmem-private")]
    public void RegisterMergesNeighbours(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 4);
        ulong half = env.Bytes / 2;
        Assert.IsTrue(env.Uffd.Register(env.Dst, half, UffdModes.Missing, out _).Succeeded);
        Assert.AreEqual(2, VmasIn(env.Mm, env.Dst, env.Dst + env.Bytes).Count, "split by the first REGISTER");
        Assert.IsTrue(env.Uffd.Register(env.Dst + half, half, UffdModes.Missing, out _).Succeeded);
        Assert.AreEqual(1, VmasIn(env.Mm, env.Dst, env.Dst + env.Bytes).Count, "merged by the second");
        var src = new byte[env.Bytes];
        var c = env.Uffd.Copy(env.Dst, src, UffdCopyMode.None);
        Assert.AreEqual(Errno.None, c.Errno, c.ToString());
        Assert.AreEqual((long)env.Bytes, c.Field);
    }

    [TestMethod(DisplayName = "VMA merge: UNREGISTER of the rest merges back into one unregistered VMA")]
    [DataRow("anon")]
    [DataRow("shmem")]
    public void UnregisterMergesNeighbours(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 4);
        ulong q = env.Bytes / 4;
        env.RegisterDst(UffdModes.Missing);
        Assert.IsTrue(env.Uffd.Unregister(env.Dst + q, q).Succeeded);
        Assert.AreEqual(3, VmasIn(env.Mm, env.Dst, env.Dst + env.Bytes).Count);
        Assert.IsTrue(env.Uffd.Register(env.Dst + q, q, UffdModes.Missing, out _).Succeeded);
        Assert.AreEqual(1, VmasIn(env.Mm, env.Dst, env.Dst + env.Bytes).Count, "re-registering the hole merges all three");
        Assert.IsTrue(env.Uffd.Unregister(env.Dst, env.Bytes).Succeeded);
        var all = VmasIn(env.Mm, env.Dst, env.Dst + env.Bytes);
        Assert.AreEqual(1, all.Count);
        Assert.IsNull(all[0].UffdCtx);
    }

    /// <summary>
    /// hugetlb VMAs carry VM_DONTEXPAND (hugetlbfs_file_mmap), part of VM_SPECIAL, so the kernel never merges them
    /// (vma_merge_existing_range); a COPY across the seam stays ENOENT, as on the host.
    /// </summary>
    [TestMethod(DisplayName = "VMA merge: hugetlb VMAs do not merge (VM_DONTEXPAND)")]
    public void HugetlbDoesNotMerge()
    {
        using var env = new UffdTestEnv("hugetlb", nrPages: 2);
        ulong half = env.Bytes / 2;
        Assert.IsTrue(env.Uffd.Register(env.Dst, half, UffdModes.Missing, out _).Succeeded);
        Assert.IsTrue(env.Uffd.Register(env.Dst + half, half, UffdModes.Missing, out _).Succeeded);
        Assert.AreEqual(2, VmasIn(env.Mm, env.Dst, env.Dst + env.Bytes).Count);
    }

    /// <summary>
    /// resolve_answers_hugetlb-private.case: COPY (and CONTINUE) install over any PTE marker, a poison marker included
    /// (<c>mfill_atomic_install_pte</c> / <c>hugetlb_mfill_atomic_pte</c>: <c>pte_none_mostly</c>); the model said EEXIST.
    /// </summary>
    [TestMethod(DisplayName = "COPY installs over a poison marker (pte_none_mostly)")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void CopyOverPoison(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: UffdFeatures.Poison);
        env.RegisterDst(UffdModes.Missing);
        Assert.IsTrue(env.Uffd.Poison(env.Dst, (ulong)env.PageSize, UffdPoisonMode.None).Succeeded);
        var c = env.Uffd.Copy(env.Dst, env.SrcPage(0), UffdCopyMode.None);
        Assert.AreEqual(Errno.None, c.Errno, c.ToString());
        var (r, data) = env.ReadPage(env.Main, env.Dst, 0);
        Assert.AreEqual(AccessResult.Ok, r, "the poison is gone");
        CollectionAssert.AreEqual(env.Expected(0), data);
    }

    [TestMethod(DisplayName = "CONTINUE installs over a poison marker (pte_none_mostly)")]
    [DataRow("shmem")]
    [DataRow("hugetlb")]
    public void ContinueOverPoison(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: UffdFeatures.Poison | MemConfig.Get(mem).MinorFeature);
        Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstAlias, env.SrcPage(0)), "populate the page cache through the alias");
        env.RegisterDst(UffdModes.Minor);
        Assert.IsTrue(env.Uffd.Poison(env.Dst, (ulong)env.PageSize, UffdPoisonMode.None).Succeeded);
        var c = env.Uffd.Continue(env.Dst, (ulong)env.PageSize, UffdContinueMode.None);
        Assert.AreEqual(Errno.None, c.Errno, c.ToString());
        var (r, data) = env.ReadPage(env.Main, env.Dst, 0);
        Assert.AreEqual(AccessResult.Ok, r);
        CollectionAssert.AreEqual(env.Expected(0), data);
    }

    /// <summary>
    /// <c>mwriteprotect_range</c> (mm/userfaultfd.c) walks VMA by VMA (<c>for_each_vma_range</c>) and stops with ENOENT at
    /// the first VMA without VM_UFFD_WP: the VMAs before it stay protected. The model validated all first and protected none.
    /// </summary>
    [TestMethod(DisplayName = "WRITEPROTECT across a WP VMA then a non-WP VMA: ENOENT, the first stays protected")]
    [DataRow("anon")]
    [DataRow("shmem")]
    public void WriteProtectStopsAtFirstNonWpVma(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 4);
        ulong half = env.Bytes / 2;
        for (int i = 0; i < env.NrPages; i++)
            Assert.AreEqual(AccessResult.Ok, env.Main.Write(env.DstPage(i), env.SrcPage(i)));
        Assert.IsTrue(env.Uffd.Register(env.Dst, half, UffdModes.Wp, out _).Succeeded);
        Assert.IsTrue(env.Uffd.Register(env.Dst + half, half, UffdModes.Missing, out _).Succeeded);
        var r = env.Uffd.WriteProtect(env.Dst, env.Bytes, UffdWriteProtectMode.Wp);
        Assert.AreEqual(Errno.ENOENT, r.Errno);
        Assert.AreEqual(PagemapFlags.UffdWp, env.Mm.Pagemap(env.DstPage(0)) & PagemapFlags.UffdWp, "first VMA protected");
        Assert.AreEqual(PagemapFlags.None, env.Mm.Pagemap(env.DstPage(env.NrPages - 1)) & PagemapFlags.UffdWp);
    }

    /// <summary>
    /// MOVE with ALLOW_SRC_HOLES whose source has no page table: <c>move_pages</c> allocates it and <c>move_pages_pte</c>
    /// refuses a populated destination (EEXIST) before it counts the hole as moved. The model counted the hole first.
    /// </summary>
    [TestMethod(DisplayName = "MOVE ALLOW_SRC_HOLES: a populated destination is EEXIST even over a source hole")]
    public void MoveChecksDestinationBeforeHole()
    {
        using var env = new UffdTestEnv("anon", nrPages: 2, features: UffdFeatures.Move);
        Assert.AreEqual(AccessResult.Ok, env.Main.WriteUInt64(env.Dst, 7), "populate the destination");
        env.RegisterDst(UffdModes.Missing);
        // A fresh source far from anything mapped before: no page table at all.
        Assert.AreEqual(Errno.None, env.Mm.Mmap(0, 4UL << 20, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, null, 0, out var far));
        ulong src = (far + (2UL << 20) - 1) & ~((2UL << 20) - 1);
        Assert.IsNull(env.Mm.PageTable.Lookup(src), "the source has no page table");
        var r = env.Uffd.Move(env.Dst, src, Folio.BasePageSize, UffdMoveMode.AllowSrcHoles);
        Assert.AreEqual(Errno.EEXIST, r.Errno, r.ToString());
        Assert.AreEqual(-(long)Errno.EEXIST, r.Field);
    }

    /// <summary>
    /// resolve_done_anon.case: mremap moving a registered VMA with EVENT_REMAP | EVENT_UNMAP delivers REMAP, then the
    /// source's UNMAP (<c>move_vma</c> → <c>do_vmi_munmap</c> → <c>userfaultfd_unmap_prep</c>; <c>mremap_userfaultfd_complete</c>
    /// before <c>userfaultfd_unmap_complete</c>). The model delivered REMAP only.
    /// </summary>
    [TestMethod(DisplayName = "mremap with EVENT_REMAP|EVENT_UNMAP: REMAP then the source's UNMAP")]
    [DataRow("anon")]
    [DataRow("shmem")]
    public void MremapRemapThenUnmap(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2, features: UffdFeatures.EventRemap | UffdFeatures.EventUnmap);
        env.RegisterDst(UffdModes.Missing);
        ulong to = 0;
        Errno e = Errno.None;
        Assert.AreEqual(Errno.None, env.Mm.Mmap(0, env.Bytes, Prot.Read, MapFlags.Private | MapFlags.Anonymous, null, 0, out var scratch));
        var th = env.Mm.CreateTask("mremap").RunChecked(_ =>
            e = env.Mm.Mremap(env.Dst, env.Bytes, env.Bytes, MremapFlags.MayMove | MremapFlags.Fixed, scratch, out to));
        var msgs = DrainEvents(env.Uffd, th);
        Threads.JoinOrFail(th, "mremap");
        Assert.AreEqual(Errno.None, e);
        Assert.AreEqual(2, msgs.Count, string.Join("; ", msgs));
        Assert.AreEqual(UffdEvent.Remap, msgs[0].Event);
        Assert.AreEqual(env.Dst, msgs[0].RemapFrom);
        Assert.AreEqual(to, msgs[0].RemapTo);
        Assert.AreEqual(UffdEvent.Unmap, msgs[1].Event);
        Assert.AreEqual(env.Dst, msgs[1].RemoveStart);
        Assert.AreEqual(env.Dst + env.Bytes, msgs[1].RemoveEnd);
    }

    /// <summary>Reads every message until <paramref name="th"/> has finished and nothing is left.</summary>
    internal static List<UffdMsg> DrainEvents(UserfaultfdCtx uffd, Thread th)
    {
        var msgs = new List<UffdMsg>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            bool done = !th.IsAlive;
            while (uffd.ReadOne(out var m).Succeeded)
                msgs.Add(m);
            if (done) return msgs;
            if (sw.Elapsed > Threads.HangGuard) Assert.Fail("events never completed");
            uffd.Poll(10);
        }
    }

    /// <summary>
    /// read_msgs_anon.case: UNREGISTER wakes <c>[max(start, vm_start), min(end, vm_end))</c> of each MISSING VMA
    /// (<c>userfaultfd_unregister</c>); a faulter beyond the unregistered part stays asleep. The model woke up to the VMA end.
    /// </summary>
    [TestMethod(DisplayName = "UNREGISTER wakes only the unregistered part of the VMA")]
    [DataRow("anon")]
    [DataRow("shmem")]
    public void UnregisterWakesOnlyItsRange(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 4);
        env.RegisterDst(UffdModes.Missing);
        AccessResult result = AccessResult.SigSegv;
        var th = env.Mm.CreateTask("faulter").RunChecked(t => result = t.ReadUInt64(env.DstPage(3), out _));
        Threads.WaitUntil(() => env.Uffd.PendingCount == 1, "the fault is queued");
        Assert.IsTrue(env.Uffd.ReadOne(out var m).Succeeded);
        Assert.AreEqual(env.DstPage(3), m.PagefaultAddress);
        Assert.IsTrue(env.Uffd.Unregister(env.Dst, 2UL * (ulong)env.PageSize).Succeeded);
        // Not woken: still on the read queue, and no new message (a woken faulter would refault and queue one).
        Assert.AreEqual(1, env.Uffd.WaitingCount, "the faulter at page 3 must still sleep");
        Assert.AreEqual(0, env.Uffd.PendingCount);
        Assert.IsTrue(env.Uffd.Copy(env.DstPage(3), env.SrcPage(3), UffdCopyMode.None).Succeeded);
        Threads.JoinOrFail(th, "faulter");
        Assert.AreEqual(AccessResult.Ok, result);
    }

    /// <summary>
    /// A PROT_NONE source: <c>copy_from_user</c> fails with page faults disabled and again with them enabled
    /// (<c>access_error</c>), so <c>mfill_atomic</c> returns EFAULT. The model read the still-present page.
    /// </summary>
    [TestMethod(DisplayName = "COPY from a PROT_NONE source is EFAULT")]
    [DataRow("anon")]
    [DataRow("shmem")]
    public void CopyFromProtNoneSource(string mem)
    {
        using var env = new UffdTestEnv(mem, nrPages: 2);
        env.RegisterDst(UffdModes.Missing);
        Assert.AreEqual(Errno.None, env.Mm.Mprotect(env.Src, (ulong)env.PageSize, Prot.None));
        var r = env.Uffd.Copy(env.Main, env.Dst, env.Src, (ulong)env.PageSize, UffdCopyMode.None);
        Assert.AreEqual(Errno.EFAULT, r.Errno, r.ToString());
        Assert.AreEqual(-(long)Errno.EFAULT, r.Field);
        Assert.AreEqual(PagemapFlags.None, env.Mm.Pagemap(env.Dst) & PagemapFlags.Present);
    }

    private static MemoryTypeOps WithoutFilemapHooks(bool add, bool remove) => new(
        "nofilemap", Backing.PageCache, UffdModes.Missing | UffdModes.Minor,
        new VmOperations(&Shmem.Fault),
        new VmUffdOps(&Shmem.CanUserfault, &Shmem.GetFolioNoAlloc, &Shmem.AllocFolio,
            add ? &Shmem.FilemapAdd : null, remove ? &Shmem.FilemapRemove : null));

    /// <summary>
    /// A hand-built page-cache table without <c>filemap_add</c> / <c>filemap_remove</c> (or with only one of them) is refused
    /// at REGISTER with EINVAL, the run-time twin of PMM0001/PMM0009: UFFDIO_COPY into it would call a null hook (the model
    /// process crashed).
    /// </summary>
    [TestMethod(DisplayName = "hand-built table without FilemapAdd/FilemapRemove is refused at REGISTER (EINVAL)")]
    [DataRow(false, false, UffdModes.Missing)]
    [DataRow(true, false, UffdModes.Missing)]
    [DataRow(false, true, UffdModes.Missing)]
    [DataRow(true, false, UffdModes.Minor)]
    public void HandBuiltWithoutFilemapHooks(bool add, bool remove, UffdModes mode)
    {
        var k = new ModelKernel([Anonymous.Ops, WithoutFilemapHooks(add, remove)]);
        var mm = k.CreateMm();
        Assert.AreEqual(Errno.None, k.MemfdCreate("nofilemap", 2 * Folio.BasePageSize, out var f));
        Assert.AreEqual(Errno.None, mm.Mmap(0, 2 * Folio.BasePageSize, Prot.Read | Prot.Write, MapFlags.Shared, f, 0, out var mem));
        Assert.AreEqual(Errno.None, mm.Userfaultfd(Uapi.UFFD_USER_MODE_ONLY, out var u));
        Assert.IsTrue(u!.Api(Uapi.UFFD_API, 0, out _, out _).Succeeded);
        var r = u.Register(mem, 2 * Folio.BasePageSize, mode, out _);
        if (r.Succeeded)
            u.Dispose(); // (old model) nothing serves the range: unregister it so the access below cannot block
        Assert.AreEqual(Errno.EINVAL, r.Errno, "COPY would have no filemap hook to call");
        Assert.AreEqual(AccessResult.Ok, mm.CreateTask().WriteUInt64(mem, 1), "the memory stays usable");
    }
}
