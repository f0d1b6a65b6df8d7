using PluginMm.Hmm;
namespace PluginMm.Runtime;

/// <summary><c>PROT_*</c>.</summary>
[Flags]
public enum Prot
{
    /// <summary><c>PROT_NONE</c>.</summary>
    None = 0,
    /// <summary><c>PROT_READ</c>.</summary>
    Read = 1,
    /// <summary><c>PROT_WRITE</c>.</summary>
    Write = 2,
    /// <summary><c>PROT_EXEC</c>.</summary>
    Exec = 4,
}

/// <summary><c>MAP_*</c> flags (x86-64 values).</summary>
[Flags]
public enum MapFlags
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary><c>MAP_SHARED</c>.</summary>
    Shared = 0x01,
    /// <summary><c>MAP_PRIVATE</c>.</summary>
    Private = 0x02,
    /// <summary><c>MAP_FIXED</c>.</summary>
    Fixed = 0x10,
    /// <summary><c>MAP_ANONYMOUS</c>.</summary>
    Anonymous = 0x20,
    /// <summary><c>MAP_NORESERVE</c>.</summary>
    NoReserve = 0x4000,
    /// <summary><c>MAP_POPULATE</c>.</summary>
    Populate = 0x8000,
}

/// <summary><c>MADV_*</c> advice values handled by the model.</summary>
public enum Advice
{
    /// <summary><c>MADV_DONTNEED</c> (4): zap the range; anonymous memory reads back as zero, file memory refaults from the page cache.</summary>
    DontNeed = 4,
    /// <summary><c>MADV_REMOVE</c> (9): punch the range out of a shared file mapping's backing store.</summary>
    Remove = 9,
    /// <summary><c>MADV_DONTFORK</c> (10).</summary>
    DontFork = 10,
    /// <summary><c>MADV_DOFORK</c> (11).</summary>
    DoFork = 11,
}

/// <summary><c>MREMAP_*</c>.</summary>
[Flags]
public enum MremapFlags
{
    /// <summary>None: resize in place only.</summary>
    None = 0,
    /// <summary><c>MREMAP_MAYMOVE</c>.</summary>
    MayMove = 1,
    /// <summary><c>MREMAP_FIXED</c>.</summary>
    Fixed = 2,
    /// <summary><c>MREMAP_DONTUNMAP</c>.</summary>
    DontUnmap = 4,
}

/// <summary>
/// An address space (<c>struct mm_struct</c>): VMAs, page tables, the mmap lock, MMU notifiers. The system calls
/// (<see cref="Mmap"/>, <see cref="Munmap"/>, <see cref="Madvise"/>, <see cref="Mremap"/>, <see cref="Fork"/>) return
/// the errno Linux would; tasks (<see cref="CreateTask"/>) access memory through the fault path.
/// </summary>
public sealed partial class Mm
{
    private const ulong MmapBase = 0x0000_1000_0000_0000UL;

    private readonly List<Vma> _vmas = new();
    private readonly Lock _notifierLock = new();
    private IMmuNotifier[] _notifiers = Array.Empty<IMmuNotifier>();
    private volatile bool _exited;

    internal Mm(ModelKernel kernel)
    {
        Kernel = kernel;
    }

    /// <summary>The kernel this mm lives in.</summary>
    public ModelKernel Kernel { get; }

    /// <summary>The page tables.</summary>
    public PageTable PageTable { get; } = new();

    /// <summary><c>mmap_lock</c>: a reader-writer lock. The fault path holds it for reading; VMA changes for writing.</summary>
    public ReaderWriterLockSlim MmapLock { get; } = new(LockRecursionPolicy.NoRecursion);

    /// <summary>Whether the process has CAP_SYS_PTRACE (checked by userfaultfd(2) and EVENT_FORK). Default: true (root).</summary>
    public bool HasCapSysPtrace { get; set; } = true;

    /// <summary>The mm has exited (<c>mm_users</c> dropped to 0): <c>mmget_not_zero</c> fails.</summary>
    public bool Exited => _exited;

    /// <summary>Snapshot of the VMAs, in address order (takes the mmap read lock).</summary>
    public IReadOnlyList<Vma> Vmas
    {
        get
        {
            MmapLock.EnterReadLock();
            try { return _vmas.ToArray(); }
            finally { MmapLock.ExitReadLock(); }
        }
    }

    /// <summary>Creates a task (a thread of this process) with its own thread id.</summary>
    public ModelTask CreateTask(string? name = null) => new(this, name);

    /// <summary>Models <c>userfaultfd(2)</c> (fs/userfaultfd.c) called by a task of this process.</summary>
    public Errno Userfaultfd(int flags, out UserfaultfdCtx? ctx) => UserfaultfdCtx.Create(this, flags, checkPrivilege: true, out ctx);

    // ---------------------------------------------------------------- VMA tree

    /// <summary>Models <c>vma_lookup</c>: the VMA containing <paramref name="address"/>, or null. Caller holds the mmap lock.</summary>
    public Vma? VmaLookup(ulong address)
    {
        int lo = 0, hi = _vmas.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            var v = _vmas[mid];
            if (address < v.Start) hi = mid - 1;
            else if (address >= v.End) lo = mid + 1;
            else return v;
        }
        return null;
    }

    /// <summary>Models <c>find_vma</c>: the first VMA with <c>vm_end &gt; address</c>, or null. Caller holds the mmap lock.</summary>
    public Vma? FindVma(ulong address)
    {
        int i = FirstIndexEndingAfter(address);
        return i < _vmas.Count ? _vmas[i] : null;
    }

    private int FirstIndexEndingAfter(ulong address)
    {
        int lo = 0, hi = _vmas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (_vmas[mid].End <= address) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <summary>VMAs intersecting [start, end), in order. Caller holds the mmap lock.</summary>
    internal List<Vma> VmasIn(ulong start, ulong end)
    {
        var list = new List<Vma>();
        for (int i = FirstIndexEndingAfter(start); i < _vmas.Count && _vmas[i].Start < end; i++)
            list.Add(_vmas[i]);
        return list;
    }

    private void InsertVma(Vma vma)
    {
        int i = FirstIndexEndingAfter(vma.Start);
        _vmas.Insert(i, vma);
        vma.File?.AddMapping(vma);
    }

    private void RemoveVma(Vma vma)
    {
        _vmas.Remove(vma);
        vma.File?.RemoveMapping(vma);
    }

    /// <summary>
    /// Models <c>split_vma</c> (mm/vma.c): splits <paramref name="vma"/> at <paramref name="address"/> and returns the upper
    /// part. Caller holds the mmap write lock.
    /// </summary>
    internal Vma SplitVma(Vma vma, ulong address)
    {
        long pgoffDelta = (long)((address - vma.Start) >> Folio.BasePageShift);
        var upper = vma.CloneFor(this, address, vma.End, vma.PgOff + pgoffDelta);
        if (vma.File is { } f)
        {
            lock (f.IMmapLock) vma.End = address;
        }
        else
            vma.End = address;
        InsertVma(upper);
        return upper;
    }

    /// <summary>Splits VMAs so that [start, end) starts and ends on VMA boundaries. Caller holds the mmap write lock.</summary>
    internal void SplitAround(ulong start, ulong end)
    {
        var first = VmaLookup(start);
        if (first is not null && first.Start < start)
            SplitVma(first, start);
        var last = end > 0 ? VmaLookup(end - 1) : null;
        if (last is not null && last.End > end)
            SplitVma(last, end);
    }

    /// <summary>Models <c>get_unmapped_area</c>: the lowest free gap of <paramref name="len"/> bytes aligned to <paramref name="align"/>.</summary>
    private ulong GetUnmappedArea(ulong len, ulong align)
    {
        ulong candidate = MmapBase;
        foreach (var v in _vmas)
        {
            candidate = (candidate + align - 1) & ~(align - 1);
            if (v.End <= candidate)
                continue;
            if (candidate + len <= v.Start)
                return candidate;
            candidate = v.End;
        }
        candidate = (candidate + align - 1) & ~(align - 1);
        return candidate + len <= ModelKernel.TaskSize ? candidate : 0;
    }

    // ---------------------------------------------------------------- notifiers

    /// <summary>Models <c>mmu_notifier_register</c>.</summary>
    public void RegisterMmuNotifier(IMmuNotifier notifier)
    {
        lock (_notifierLock)
        {
            var n = new IMmuNotifier[_notifiers.Length + 1];
            _notifiers.CopyTo(n, 0);
            n[^1] = notifier;
            _notifiers = n;
        }
    }

    /// <summary>Models <c>mmu_notifier_unregister</c>.</summary>
    public void UnregisterMmuNotifier(IMmuNotifier notifier)
    {
        lock (_notifierLock)
            _notifiers = Array.FindAll(_notifiers, x => !ReferenceEquals(x, notifier));
    }

    /// <summary>Models <c>mmu_notifier_invalidate_range_start</c>.</summary>
    internal void InvalidateRangeStart(ulong start, ulong end, MmuNotifyEvent ev)
    {
        var n = Volatile.Read(ref _notifiers);
        if (n.Length == 0) return;
        var r = new MmuNotifierRange(this, start, end, ev);
        foreach (var s in n) s.InvalidateRangeStart(in r);
    }

    /// <summary>Models <c>mmu_notifier_invalidate_range_end</c>.</summary>
    internal void InvalidateRangeEnd(ulong start, ulong end, MmuNotifyEvent ev)
    {
        var n = Volatile.Read(ref _notifiers);
        if (n.Length == 0) return;
        var r = new MmuNotifierRange(this, start, end, ev);
        foreach (var s in n) s.InvalidateRangeEnd(in r);
    }

    // ---------------------------------------------------------------- mmap

    /// <summary>
    /// Models <c>do_mmap</c> (mm/mmap.c): maps <paramref name="len"/> bytes of anonymous memory (<paramref name="file"/>
    /// null, <see cref="MapFlags.Anonymous"/>) or of <paramref name="file"/> at <paramref name="offset"/>. Returns EINVAL for
    /// a zero length, an unaligned offset or address, not exactly one of SHARED/PRIVATE, or a hugetlb length that is not
    /// a multiple of the huge page size; ENOMEM when no room; EACCES for a writable shared mapping of a read-only file;
    /// the file's own errors (guest_memfd: ENODEV, EINVAL).
    /// </summary>
    public Errno Mmap(ulong addr, ulong len, Prot prot, MapFlags flags, MemFile? file, long offset, out ulong mapped)
    {
        mapped = 0;
        bool shared = (flags & MapFlags.Shared) != 0, priv = (flags & MapFlags.Private) != 0;
        if (len == 0 || shared == priv || offset < 0 || (offset & (Folio.BasePageSize - 1)) != 0)
            return Errno.EINVAL;
        if ((flags & MapFlags.Anonymous) != 0 != (file is null))
            return Errno.EINVAL;
        if (_exited)
            return Errno.ENOMEM;

        MemoryTypeOps? type;
        int pageShift = Folio.BasePageShift;
        if (file is null)
        {
            if (shared)
            {
                // MAP_SHARED|MAP_ANONYMOUS is a shmem file in Linux (shmem_zero_setup).
                var e = Kernel.MemfdCreate("shmem", (long)len, out file);
                if (e != Errno.None || file is null)
                    return Errno.EINVAL;
                type = file.Type;
            }
            else
            {
                type = Kernel.AnonymousType;
                if (type is null)
                    return Errno.ENODEV;
            }
        }
        else
            type = file.Type;

        if (file is not null)
        {
            var e = file.MmapCheck(shared, offset);
            if (e != Errno.None)
                return e;
            if (file.Type.Backing == Backing.HugeTlb)
                pageShift = file.Inode.PageShift;
            if (shared && file.ReadOnly && (prot & Prot.Write) != 0)
                return Errno.EACCES;
        }

        ulong pageSize = 1UL << pageShift;
        if (pageShift != Folio.BasePageShift && (len & (pageSize - 1)) != 0)
            return Errno.EINVAL;
        len = (len + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        if (len > ModelKernel.TaskSize)
            return Errno.ENOMEM;

        VmFlags vmFlags = VmFlags.MayRead | VmFlags.MayExec;
        if ((prot & Prot.Read) != 0) vmFlags |= VmFlags.Read;
        if ((prot & Prot.Write) != 0) vmFlags |= VmFlags.Write;
        if ((prot & Prot.Exec) != 0) vmFlags |= VmFlags.Exec;
        if (shared)
        {
            vmFlags |= VmFlags.MayShare | VmFlags.Shared;
            if (file is null || !file.ReadOnly) vmFlags |= VmFlags.MayWrite;
        }
        else
            vmFlags |= VmFlags.MayWrite;
        if (pageShift != Folio.BasePageShift)
            vmFlags |= VmFlags.HugeTlb;

        MmapLock.EnterWriteLock();
        try
        {
            if ((flags & MapFlags.Fixed) != 0)
            {
                if ((addr & (pageSize - 1)) != 0 || addr + len > ModelKernel.TaskSize || addr + len < addr)
                    return Errno.EINVAL;
                UnmapLocked(addr, addr + len);
            }
            else
            {
                addr = GetUnmappedArea(len, Math.Max(pageSize, (ulong)Folio.BasePageSize));
                if (addr == 0)
                    return Errno.ENOMEM;
            }
            long pgoff = file is null ? (long)(addr >> Folio.BasePageShift) : offset >> Folio.BasePageShift;
            InsertVma(new Vma(this, addr, addr + len, vmFlags, pgoff, file, type, pageShift));
            mapped = addr;
        }
        finally
        {
            MmapLock.ExitWriteLock();
            CompleteUserfaultfdEvents(); // MAP_FIXED over registered memory: UNMAP events
        }

        if ((flags & MapFlags.Populate) != 0)
        {
            var t = CreateTask("populate");
            t.Populate(mapped, len, (prot & Prot.Write) != 0);
        }
        return Errno.None;
    }

    /// <summary>
    /// Models <c>do_vmi_munmap</c> (mm/vma.c): unmaps [addr, addr+len). EINVAL for an unaligned address, zero length
    /// or a range beyond TASK_SIZE, or a hugetlb VMA cut off its huge-page boundaries.
    /// </summary>
    public Errno Munmap(ulong addr, ulong len)
    {
        if ((addr & (Folio.BasePageSize - 1)) != 0 || len == 0 || addr > ModelKernel.TaskSize || len > ModelKernel.TaskSize - addr)
            return Errno.EINVAL;
        len = (len + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        MmapLock.EnterWriteLock();
        try
        {
            foreach (var v in VmasIn(addr, addr + len))
            {
                if (v.IsHugetlb)
                {
                    ulong m = (ulong)v.PageSize - 1;
                    if ((v.Start < addr && (addr & m) != 0) || (v.End > addr + len && ((addr + len) & m) != 0))
                        return Errno.EINVAL;
                }
            }
            UnmapLocked(addr, addr + len);
            return Errno.None;
        }
        finally
        {
            MmapLock.ExitWriteLock();
            CompleteUserfaultfdEvents(); // userfaultfd_unmap_complete
        }
    }

    /// <summary>Unmaps [start, end): splits, zaps (dropping markers) and removes the VMAs. Caller holds the mmap write lock.</summary>
    private void UnmapLocked(ulong start, ulong end)
    {
        if (VmasIn(start, end).Count == 0)
            return;
        UserfaultfdUnmapPrep(start, end);
        SplitAround(start, end);
        InvalidateRangeStart(start, end, MmuNotifyEvent.Unmap);
        foreach (var v in VmasIn(start, end))
        {
            ZapRange(v, v.Start, v.End, dropMarkers: true);
            RemoveVma(v);
        }
        InvalidateRangeEnd(start, end, MmuNotifyEvent.Unmap);
    }

    /// <summary>
    /// Models <c>do_madvise</c> (mm/madvise.c) for DONTNEED, REMOVE, DONTFORK and DOFORK. EINVAL for an unaligned start,
    /// unknown advice, or (DONTNEED) a VMA that is VM_LOCKED or a hugetlb range not on huge-page boundaries; ENOMEM when
    /// part of the range is unmapped (after advising the mapped part, as Linux does); REMOVE: EINVAL on anonymous memory,
    /// EACCES on a private mapping.
    /// </summary>
    public Errno Madvise(ulong addr, ulong len, Advice advice)
    {
        if ((addr & (Folio.BasePageSize - 1)) != 0 || addr > ModelKernel.TaskSize)
            return Errno.EINVAL;
        if (advice is not (Advice.DontNeed or Advice.Remove or Advice.DontFork or Advice.DoFork))
            return Errno.EINVAL;
        len = (len + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        if (len == 0)
            return Errno.None;
        ulong end = addr + len;
        if (end < addr || end > ModelKernel.TaskSize)
            return Errno.EINVAL;

        bool write = advice is Advice.DontFork or Advice.DoFork;
        if (write) MmapLock.EnterWriteLock(); else MmapLock.EnterReadLock();
        try
        {
            var vmas = VmasIn(addr, end);
            bool hole = vmas.Count == 0 || vmas[0].Start > addr || vmas[^1].End < end;
            for (int i = 1; i < vmas.Count; i++)
                if (vmas[i - 1].End != vmas[i].Start) hole = true;
            foreach (var v0 in vmas)
            {
                var v = v0;
                ulong s = Math.Max(addr, v.Start), e = Math.Min(end, v.End);
                // The checks come before userfaultfd_remove, as in the kernel: a refused madvise raises no REMOVE event.
                var invalid = MadviseValidVma(v, advice, s, ref e);
                if (invalid != Errno.None)
                    return invalid;
                if (s == e)
                    continue;
                if (advice is Advice.DontNeed or Advice.Remove && !UserfaultfdRemove(v, s, e))
                {
                    // userfaultfd_remove dropped the mmap lock while the REMOVE event was read: look the VMA up again
                    // and check it again (madvise_dontneed_free).
                    var again = VmaLookup(s);
                    if (again is null)
                        return Errno.ENOMEM;
                    v = again;
                    invalid = MadviseValidVma(v, advice, s, ref e);
                    if (invalid != Errno.None)
                        return invalid;
                    e = Math.Min(e, v.End);
                }
                switch (advice)
                {
                    case Advice.DontNeed:
                        InvalidateRangeStart(s, e, MmuNotifyEvent.Clear);
                        // Anonymous zaps drop uffd-wp markers; file zaps keep them (zap_details, ZAP_FLAG_DROP_MARKER).
                        ZapRange(v, s, e, dropMarkers: v.IsAnonymous);
                        InvalidateRangeEnd(s, e, MmuNotifyEvent.Clear);
                        break;
                    case Advice.Remove:
                        // MadviseValidVma made sure there is a file.
                        long off = (long)((s - v.Start) >> Folio.BasePageShift) + v.PgOff;
                        var err = v.File!.PunchHole(off << Folio.BasePageShift, (long)(e - s));
                        if (err != Errno.None)
                            return err;
                        break;
                    default:
                        SplitAround(s, e);
                        foreach (var p in VmasIn(s, e))
                            p.Flags = advice == Advice.DontFork ? p.Flags | VmFlags.DontCopy : p.Flags & ~VmFlags.DontCopy;
                        break;
                }
            }
            return hole ? Errno.ENOMEM : Errno.None;
        }
        finally
        {
            if (write) MmapLock.ExitWriteLock(); else MmapLock.ExitReadLock();
        }
    }

    /// <summary>
    /// Models <c>madvise_dontneed_free_valid_vma</c> and <c>madvise_remove</c>'s checks (mm/madvise.c): DONTNEED refuses
    /// VM_LOCKED (and VM_PFNMAP) VMAs; on hugetlb it needs a huge-aligned start and rounds the end down to a huge page
    /// (so a short range frees nothing rather than failing); REMOVE needs an unlocked file VMA (EINVAL) mapped shared and
    /// writable (EACCES). Other advice is not checked here.
    /// </summary>
    private static Errno MadviseValidVma(Vma v, Advice advice, ulong start, ref ulong end)
    {
        switch (advice)
        {
            case Advice.DontNeed:
                if (!v.IsHugetlb)
                    return (v.Flags & (VmFlags.Locked | VmFlags.PfnMap)) != 0 ? Errno.EINVAL : Errno.None;
                ulong mask = (ulong)v.PageSize - 1;
                if ((start & mask) != 0)
                    return Errno.EINVAL;
                end = Math.Max(start, end & ~mask);
                return Errno.None;
            case Advice.Remove:
                if (v.File is null || (v.Flags & VmFlags.Locked) != 0)
                    return Errno.EINVAL;
                return (v.Flags & (VmFlags.Shared | VmFlags.MayWrite)) != (VmFlags.Shared | VmFlags.MayWrite) ? Errno.EACCES : Errno.None;
            default:
                return Errno.None;
        }
    }

    /// <summary>
    /// Models <c>mremap</c> (mm/mremap.c): shrink, grow in place, or move (MAYMOVE, FIXED, DONTUNMAP). The moved VMA
    /// loses its userfaultfd registration unless the userfaultfd has EVENT_REMAP (<c>mremap_userfaultfd_prep</c>); REMAP and
    /// UNMAP events are delivered after the lock is dropped, and mremap returns once they were read.
    /// EINVAL for bad flags/alignment/lengths, EFAULT when the old range is not inside one VMA, ENOMEM when it cannot grow.
    /// </summary>
    public Errno Mremap(ulong oldAddr, ulong oldLen, ulong newLen, MremapFlags flags, ulong newAddr, out ulong result)
    {
        result = 0;
        if ((flags & ~(MremapFlags.MayMove | MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0)
            return Errno.EINVAL;
        if ((flags & (MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0 && (flags & MremapFlags.MayMove) == 0)
            return Errno.EINVAL;
        if ((oldAddr & (Folio.BasePageSize - 1)) != 0 || newLen == 0)
            return Errno.EINVAL;
        oldLen = (oldLen + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        newLen = (newLen + Folio.BasePageSize - 1) & ~((ulong)Folio.BasePageSize - 1);
        if ((flags & MremapFlags.DontUnmap) != 0 && oldLen != newLen)
            return Errno.EINVAL;
        if ((flags & MremapFlags.Fixed) != 0 && ((newAddr & (Folio.BasePageSize - 1)) != 0 || newAddr + newLen > ModelKernel.TaskSize
            || (newAddr < oldAddr + oldLen && newAddr + newLen > oldAddr)))
            return Errno.EINVAL;

        MmapLock.EnterWriteLock();
        try
        {
            var vma = VmaLookup(oldAddr);
            if (vma is null || oldAddr + Math.Max(oldLen, (ulong)Folio.BasePageSize) > vma.End)
                return Errno.EFAULT;
            if (vma.IsHugetlb)
            {
                ulong m = (ulong)vma.PageSize - 1;
                if (((oldAddr | oldLen | newLen) & m) != 0 || ((flags & MremapFlags.Fixed) != 0 && (newAddr & m) != 0))
                    return Errno.EINVAL;
            }
            if (oldLen == 0)
                return Errno.EINVAL; // duplicating shared mappings (old_len 0) is not modelled
            if ((flags & MremapFlags.Fixed) == 0 && (flags & MremapFlags.DontUnmap) == 0)
            {
                if (newLen <= oldLen)
                {
                    if (newLen < oldLen)
                        UnmapLocked(oldAddr + newLen, oldAddr + oldLen);
                    result = oldAddr;
                    return Errno.None;
                }
                if (oldAddr + oldLen == vma.End)
                {
                    var next = FindVma(vma.End);
                    ulong want = oldAddr + newLen;
                    if ((next is null || next.Start >= want) && want <= ModelKernel.TaskSize)
                    {
                        if (vma.File is { } f) { lock (f.IMmapLock) vma.End = want; }
                        else vma.End = want;
                        result = oldAddr;
                        return Errno.None;
                    }
                }
                if ((flags & MremapFlags.MayMove) == 0)
                    return Errno.ENOMEM;
            }

            ulong align = Math.Max((ulong)vma.PageSize, (ulong)Folio.BasePageSize);
            if ((flags & MremapFlags.Fixed) != 0)
                UnmapLocked(newAddr, newAddr + newLen);
            else
            {
                newAddr = GetUnmappedArea(newLen, align);
                if (newAddr == 0)
                    return Errno.ENOMEM;
            }
            MoveVmaLocked(oldAddr, oldLen, newAddr, newLen, (flags & MremapFlags.DontUnmap) != 0);
            result = newAddr;
            return Errno.None;
        }
        finally
        {
            MmapLock.ExitWriteLock();
            CompleteUserfaultfdEvents(); // mremap_userfaultfd_complete, userfaultfd_unmap_complete
        }
    }

    /// <summary>Models <c>move_vma</c> + <c>move_page_tables</c> (mm/mremap.c). Caller holds the mmap write lock.</summary>
    private void MoveVmaLocked(ulong oldAddr, ulong oldLen, ulong newAddr, ulong newLen, bool dontUnmap)
    {
        SplitAround(oldAddr, oldAddr + oldLen);
        var old = VmaLookup(oldAddr)!;
        var moved = old.CloneFor(this, newAddr, newAddr + newLen, old.PgOff);
        bool keepUffd = MremapUserfaultfdPrep(moved, oldAddr, newAddr, oldLen);
        if (old.IsAnonymous)
            moved.PgOff = old.PgOff; // anon rmap index follows the pages
        InsertVma(moved);

        InvalidateRangeStart(oldAddr, oldAddr + oldLen, MmuNotifyEvent.Unmap);
        ulong n = Math.Min(oldLen, newLen);
        ulong step = (ulong)old.PageSize;
        for (ulong off = 0; off < n; off += step)
        {
            var src = PageTable.Lookup(oldAddr + off);
            if (src is null)
                continue;
            Pte pte;
            lock (src.Ptl) pte = src.Clear(oldAddr + off);
            if (pte.IsNone)
                continue;
            // Unless EVENT_REMAP kept the registration, drop the uffd-wp bit and markers (move_ptes, uffd-wp-mremap).
            if (!keepUffd || !moved.UffdWp)
            {
                if (pte.IsUffdWpMarker)
                    continue;
                pte.Flags &= ~PteFlags.UffdWp;
            }
            var dst = PageTable.Alloc(newAddr + off);
            lock (dst.Ptl) dst.Set(newAddr + off, pte);
        }
        if (!dontUnmap)
        {
            ZapRange(old, old.Start, old.End, dropMarkers: true);
            RemoveVma(old);
        }
        InvalidateRangeEnd(oldAddr, oldAddr + oldLen, MmuNotifyEvent.Unmap);
    }

    // ---------------------------------------------------------------- zap

    /// <summary>
    /// Models <c>zap_page_range_single</c> / <c>unmap_page_range</c> (mm/memory.c): clears the entries of
    /// [start, end) in <paramref name="vma"/> and drops their folio references. uffd-wp markers survive unless
    /// <paramref name="dropMarkers"/>.
    /// </summary>
    internal void ZapRange(Vma vma, ulong start, ulong end, bool dropMarkers)
    {
        var state = (vma, dropMarkers, step: (ulong)vma.PageSize);
        PageTable.ForEachTable(start, end, ref state, static (PteTable t, ulong s, ulong e, ref (Vma vma, bool drop, ulong step) st) =>
        {
            lock (t.Ptl)
            {
                for (ulong a = s; a < e; a += st.step)
                {
                    ref Pte p = ref t[a];
                    if (p.IsNone)
                        continue;
                    if (p.IsMarker)
                    {
                        if (st.drop || (p.Flags & PteFlags.MarkerUffdWp) == 0)
                            t.Clear(a);
                        continue;
                    }
                    var old = t.Clear(a);
                    if (!st.drop && (old.Flags & PteFlags.UffdWp) != 0 && !st.vma.IsAnonymous && st.vma.UffdWp)
                        t.Set(a, new Pte { Flags = PteFlags.MarkerUffdWp }); // file zaps keep the WP state as a marker
                    if (!old.IsZeroPage)
                        old.Folio?.Put();
                }
            }
        });
    }

    /// <summary>
    /// Models <c>unmap_mapping_range</c> for one VMA (mm/memory.c): zaps the entries mapping page-cache folios of file
    /// indexes [first, end) (private CoW copies stay, as with <c>even_cows = 0</c>). Called under the file's i_mmap lock.
    /// </summary>
    internal void ZapFileRange(Vma vma, long first, long end)
    {
        int shift = vma.File!.Inode.PageShift - Folio.BasePageShift;
        long vFirst = vma.PgOff >> shift;
        long vEnd = vFirst + (long)((vma.End - vma.Start) >> vma.File.Inode.PageShift);
        long s = Math.Max(first, vFirst), e = Math.Min(end, vEnd);
        if (s >= e)
            return;
        ulong start = vma.Start + ((ulong)(s - vFirst) << vma.File.Inode.PageShift);
        ulong stop = vma.Start + ((ulong)(e - vFirst) << vma.File.Inode.PageShift);
        InvalidateRangeStart(start, stop, MmuNotifyEvent.Clear);
        var inode = vma.File.Inode;
        var state = (inode, step: (ulong)vma.PageSize);
        PageTable.ForEachTable(start, stop, ref state, static (PteTable t, ulong s, ulong e, ref (Inode inode, ulong step) st) =>
        {
            lock (t.Ptl)
            {
                for (ulong a = s; a < e; a += st.step)
                {
                    ref Pte p = ref t[a];
                    if (!p.IsPresent || p.Folio is null || p.IsZeroPage || p.Folio.Mapping != st.inode)
                        continue;
                    t.Clear(a).Folio!.Put();
                }
            }
        });
        InvalidateRangeEnd(start, stop, MmuNotifyEvent.Clear);
    }

    /// <summary>
    /// Models <c>uffd_wp_range(vma, start, len, false)</c> (mm/userfaultfd.c) as used by unregister and release: clears the
    /// uffd-wp bit of present entries and drops uffd-wp markers. Caller holds the mmap lock.
    /// </summary>
    internal void ClearUffdWp(Vma vma, ulong start, ulong end)
    {
        int dummy = 0;
        PageTable.ForEachTable(start, end, ref dummy, static (PteTable t, ulong s, ulong e, ref int _) =>
        {
            lock (t.Ptl)
            {
                for (ulong a = s; a < e; a += Folio.BasePageSize)
                {
                    ref Pte p = ref t[a];
                    if (p.IsUffdWpMarker) t.Clear(a);
                    else if (p.IsPresent) p.Flags &= ~PteFlags.UffdWp;
                }
            }
        });
    }

    /// <summary>The VMA list itself (caller holds the mmap lock).</summary>
    internal List<Vma> VmaList => _vmas;

    // ---------------------------------------------------------------- fork / exit

    /// <summary>
    /// Models <c>dup_mmap</c> + <c>copy_page_range</c> (kernel/fork.c, mm/memory.c): a child address space with the
    /// same VMAs (except MADV_DONTFORK ones). Private pages become copy-on-write in both. Without EVENT_FORK the child's
    /// VMAs lose their userfaultfd registration (<c>dup_userfaultfd</c>) and their uffd-wp bits; with it they keep both on
    /// a new child userfaultfd, and fork returns only after the FORK message was read.
    /// </summary>
    public Mm Fork()
    {
        var child = new Mm(Kernel) { HasCapSysPtrace = HasCapSysPtrace };
        MmapLock.EnterWriteLock();
        try
        {
            foreach (var v in _vmas)
            {
                if ((v.Flags & VmFlags.DontCopy) != 0)
                    continue;
                var cv = v.CloneFor(child, v.Start, v.End, v.PgOff);
                DupUserfaultfd(cv, child);
                child.InsertVma(cv);
                // vma_needs_copy: shared file mappings refault in the child, unless uffd-wp state must be copied.
                if (v.IsShared && !v.IsAnonymous && !cv.UffdWp)
                    continue;
                CopyPageRange(child, v, cv);
            }
        }
        finally
        {
            MmapLock.ExitWriteLock();
            CompleteUserfaultfdEvents(); // dup_userfaultfd_complete: FORK events
        }
        return child;
    }

    private void CopyPageRange(Mm child, Vma src, Vma dst)
    {
        bool cow = !src.IsShared;
        if (cow) InvalidateRangeStart(src.Start, src.End, MmuNotifyEvent.ProtectionPage);
        var state = (child, src, dst, cow);
        PageTable.ForEachTable(src.Start, src.End, ref state, static (PteTable t, ulong s, ulong e, ref (Mm child, Vma src, Vma dst, bool cow) st) =>
        {
            PteTable? ct = null;
            lock (t.Ptl)
            {
                for (ulong a = s; a < e; a += (ulong)st.src.PageSize)
                {
                    ref Pte p = ref t[a];
                    if (p.IsNone)
                        continue;
                    Pte c = p;
                    if (p.IsMarker)
                    {
                        if (p.IsUffdWpMarker && !st.dst.UffdWp)
                            continue;
                    }
                    else
                    {
                        if (!p.IsZeroPage)
                            p.Folio!.Get();
                        if (st.cow && p.IsWritable)
                        {
                            p.Flags &= ~PteFlags.Writable; // copy_present_pte: wrprotect the parent too
                            c.Flags &= ~PteFlags.Writable;
                        }
                        if (!st.dst.UffdWp)
                            c.Flags &= ~PteFlags.UffdWp;
                    }
                    ct ??= st.child.PageTable.Alloc(a);
                    lock (ct.Ptl) ct.Set(a, c);
                }
            }
        });
        if (cow) InvalidateRangeEnd(src.Start, src.End, MmuNotifyEvent.ProtectionPage);
    }

    /// <summary>
    /// Models <c>exit_mmap</c> (mm/mmap.c): the process exits; every VMA is unmapped, every folio reference dropped, and
    /// later userfaultfd ioctls on this mm fail (<c>mmget_not_zero</c>: ESRCH / ENOMEM).
    /// </summary>
    public void Exit()
    {
        IMmuNotifier[] notifiers;
        MmapLock.EnterWriteLock();
        try
        {
            if (_exited)
                return;
            _exited = true;
            notifiers = Volatile.Read(ref _notifiers);
            foreach (var n in notifiers) n.Release(this);
            foreach (var v in _vmas.ToArray())
            {
                ZapRange(v, v.Start, v.End, dropMarkers: true);
                RemoveVma(v);
            }
            PageTable.Clear();
        }
        finally { MmapLock.ExitWriteLock(); }
    }

    /// <inheritdoc/>
    public override string ToString() => $"mm ({_vmas.Count} vmas{(_exited ? ", exited" : "")})";
}
