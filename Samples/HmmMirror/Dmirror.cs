using PluginMm;
using PluginMm.Hmm;
using PluginMm.Runtime;
using PluginMm.Runtime.Hmm;

namespace HmmMirror;

/// <summary>The dmirror ioctl commands (<c>HMM_DMIRROR_*</c>, lib/test_hmm_uapi.h; the <c>_IOWR('H', nr, ...)</c> numbers).</summary>
public enum HmmDmirrorCommand : uint
{
    /// <summary><c>HMM_DMIRROR_READ</c>: read through the device, faulting in what it lacks.</summary>
    Read = 0x00,
    /// <summary><c>HMM_DMIRROR_WRITE</c>: write through the device (write faults).</summary>
    Write = 0x01,
    /// <summary><c>HMM_DMIRROR_MIGRATE_TO_DEV</c>: migrate the range to the device's memory, then read it back.</summary>
    MigrateToDev = 0x02,
    /// <summary><c>HMM_DMIRROR_MIGRATE_TO_SYS</c>: migrate this device's pages of the range back to system memory.</summary>
    MigrateToSys = 0x03,
    /// <summary><c>HMM_DMIRROR_SNAPSHOT</c>: one permission byte per page, without faulting.</summary>
    Snapshot = 0x04,
    /// <summary><c>HMM_DMIRROR_EXCLUSIVE</c>: take atomic (device-exclusive) access to the range, then read it.</summary>
    Exclusive = 0x05,
    /// <summary><c>HMM_DMIRROR_CHECK_EXCLUSIVE</c>: EPERM while any page of the range is still mapped atomically.</summary>
    CheckExclusive = 0x06,
    /// <summary><c>HMM_DMIRROR_RELEASE</c>: evict all device memory back to system memory and unplug it.</summary>
    Release = 0x07,
    /// <summary><c>HMM_DMIRROR_FLAGS</c>: set the mirror's flags from <c>npages</c> (<see cref="DmirrorFlags"/>).</summary>
    Flags = 0x08,
    /// <summary><c>HMM_DMIRROR_READ_UNLOCKED</c> (the lock-drop series): READ through <c>hmm_range_fault_unlocked_timeout(range, 0)</c>.</summary>
    ReadUnlocked = 0x09,
    /// <summary><c>HMM_DMIRROR_READ_UNLOCKED_TIMEOUT</c>: the same with <c>HMM_RANGE_DEFAULT_TIMEOUT</c>.</summary>
    ReadUnlockedTimeout = 0x0a,
}

/// <summary>The ioctl argument (<c>struct hmm_dmirror_cmd</c>); <c>ptr</c> is the span passed beside it.</summary>
public struct HmmDmirrorCmd
{
    /// <summary><c>addr</c> (in): page-aligned start.</summary>
    public ulong Addr;

    /// <summary><c>npages</c> (in).</summary>
    public ulong NPages;

    /// <summary><c>cpages</c> (out): pages copied (or snapshot bytes written).</summary>
    public ulong CPages;

    /// <summary><c>faults</c> (out): device faults taken (<c>dmirror_fault</c> calls).</summary>
    public ulong Faults;
}

/// <summary>Snapshot bytes (<c>HMM_DMIRROR_PROT_*</c>, lib/test_hmm_uapi.h).</summary>
public static class DmirrorProt
{
    /// <summary><c>HMM_DMIRROR_PROT_ERROR</c>.</summary>
    public const byte Error = 0xFF;
    /// <summary><c>HMM_DMIRROR_PROT_NONE</c>.</summary>
    public const byte None = 0x00;
    /// <summary><c>HMM_DMIRROR_PROT_READ</c>.</summary>
    public const byte Read = 0x01;
    /// <summary><c>HMM_DMIRROR_PROT_WRITE</c>.</summary>
    public const byte Write = 0x02;
    /// <summary><c>HMM_DMIRROR_PROT_PMD</c>.</summary>
    public const byte Pmd = 0x04;
    /// <summary><c>HMM_DMIRROR_PROT_PUD</c>.</summary>
    public const byte Pud = 0x08;
    /// <summary><c>HMM_DMIRROR_PROT_ZERO</c>.</summary>
    public const byte Zero = 0x10;
    /// <summary><c>HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL</c>: a device-private page of this device.</summary>
    public const byte DevPrivateLocal = 0x20;
    /// <summary><c>HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE</c>: a device-private page of another device.</summary>
    public const byte DevPrivateRemote = 0x30;
    /// <summary><c>HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL</c>: a device-coherent page of this device.</summary>
    public const byte DevCoherentLocal = 0x40;
    /// <summary><c>HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE</c>: a device-coherent page of another device.</summary>
    public const byte DevCoherentRemote = 0x50;
}

/// <summary>The mirror's flags (<c>HMM_DMIRROR_FLAG_*</c>, lib/test_hmm_uapi.h).</summary>
public static class DmirrorFlags
{
    /// <summary><c>HMM_DMIRROR_FLAG_FAIL_ALLOC</c>: the next device-page allocation of a migration fails.</summary>
    public const ulong FailAlloc = 1UL << 0;
}

/// <summary>Which HMM fault path the device's READ and WRITE use (an explicit choice, like a module parameter).</summary>
public enum DmirrorFaultPath
{
    /// <summary>Mainline <c>hmm_range_fault</c>: a userfaultfd-registered page gives -EFAULT.</summary>
    Mainline,
    /// <summary>Seed 002's <c>hmm_range_fault</c>: ALLOW_RETRY|USER on MISSING-registered VMAs, -EBUSY after a lock drop.</summary>
    Seed002,
    /// <summary><c>hmm_range_fault_unlocked_timeout</c>: HMM takes and may drop the mmap lock itself.</summary>
    UnlockedTimeout,
}

/// <summary>
/// A dmirror character device (<c>/dev/hmm_dmirrorN</c>, lib/test_hmm.c) with its own ZONE_DEVICE memory
/// (<see cref="Memory"/>: device-private, as minors 0 and 1 have, or device-coherent, as minors 2 and 3). Each
/// <see cref="Open"/> mirrors the opener's address space.
/// </summary>
public sealed class DmirrorDevice
{
    /// <summary>Creates device <paramref name="minor"/> whose READ/WRITE use <paramref name="faultPath"/>.</summary>
    public DmirrorDevice(int minor, DmirrorFaultPath faultPath = DmirrorFaultPath.Mainline, int timeoutMs = HmmFaults.RangeDefaultTimeoutMs,
        MemoryDeviceType memoryType = MemoryDeviceType.Private)
    {
        Minor = minor;
        FaultPath = faultPath;
        TimeoutMs = timeoutMs;
        Memory = new DmirrorDeviceMemory(this, memoryType);
    }

    /// <summary>The device's memory (chunks, free list, counters).</summary>
    public DmirrorDeviceMemory Memory { get; }

    /// <summary>Models <c>dmirror_select_device</c>: which device pages migrations of this device collect.</summary>
    public MigrateVmaSelect SelectDevice => Memory.Type == MemoryDeviceType.Private ? MigrateVmaSelect.DevicePrivate : MigrateVmaSelect.DeviceCoherent;

    /// <summary>The device number (0 for <c>/dev/hmm_dmirror0</c>).</summary>
    public int Minor { get; }

    /// <summary>The HMM path READ and WRITE take.</summary>
    public DmirrorFaultPath FaultPath { get; }

    /// <summary><c>HMM_RANGE_DEFAULT_TIMEOUT</c> as the driver uses it (ms).</summary>
    public int TimeoutMs { get; }

    /// <summary>
    /// Models <c>dmirror_fops_open</c>: a mirror of <paramref name="mm"/> with an interval notifier over the whole address
    /// space. The caller must not hold the mmap lock.
    /// </summary>
    public Errno Open(Mm mm, out Dmirror? dmirror)
    {
        ArgumentNullException.ThrowIfNull(mm);
        dmirror = null;
        var d = new Dmirror(this, mm);
        var e = IntervalNotifier.Insert(mm, 0, ulong.MaxValue & ~((ulong)Folio.BasePageSize - 1), DmirrorMinOps.Ops, d, out var sub);
        if (e != Errno.None)
            return e;
        d.Notifier = sub!;
        dmirror = d;
        return Errno.None;
    }

    /// <inheritdoc/>
    public override string ToString() => $"/dev/hmm_dmirror{Minor} ({Memory.Type}, {FaultPath})";
}

/// <summary>Counters of one mirror, for the demo (not part of dmirror).</summary>
public sealed class DmirrorStats
{
    /// <summary><c>hmm_range_fault</c> results of -EBUSY that reached the driver's retry loop.</summary>
    public long EbusyRetries;
    /// <summary><c>mmu_interval_read_retry</c> true under the mutex (an invalidation raced the fault).</summary>
    public long ReadRetries;
    /// <summary><c>handle_mm_fault</c> calls made by HMM for this mirror.</summary>
    public long HmmFaults;
    /// <summary>Faults that dropped the mmap lock (userfaults served while HMM waited).</summary>
    public long LockDrops;
    /// <summary>Walk restarts inside <c>hmm_range_fault</c>.</summary>
    public long WalkRestarts;
}

/// <summary>
/// One open dmirror file (<c>struct dmirror</c>): the device page table (virtual page → page, read-only or writable),
/// its mutex, the interval notifier, and the commands (<see cref="Ioctl"/>). Device entries hold no page references:
/// the notifier erases them before the CPU page table changes (<see cref="DmirrorMinOps.Invalidate"/>).
/// </summary>
public sealed class Dmirror : IDisposable
{
    private const int ChunkPages = 32; // dmirror's on-stack pfns[32]
    private readonly Dictionary<ulong, DptEntry> _pt = new(); // dmirror->pt (xarray keyed by addr >> PAGE_SHIFT)
    private readonly HmmRange _range = new(ChunkPages);

    internal Dmirror(DmirrorDevice device, Mm mm)
    {
        Device = device;
        Mm = mm;
    }

    /// <summary>The device (<c>dmirror-&gt;mdevice</c>).</summary>
    public DmirrorDevice Device { get; }

    /// <summary>The mirrored address space (<c>dmirror-&gt;notifier.mm</c>).</summary>
    public Mm Mm { get; }

    /// <summary><c>dmirror-&gt;mutex</c>: protects the device page table; the notifier takes it.</summary>
    public object Mutex { get; } = new();

    /// <summary><c>dmirror-&gt;notifier</c>.</summary>
    public IntervalNotifier Notifier { get; internal set; } = null!;

    /// <summary>Counters (demo only).</summary>
    public DmirrorStats Stats { get; } = new();

    /// <summary><c>dmirror-&gt;flags</c> (<see cref="DmirrorFlags"/>).</summary>
    public ulong Flags { get; private set; }

    /// <summary>Entries in the device page table.</summary>
    public int DeviceEntries { get { lock (Mutex) return _pt.Count; } }

    /// <summary>The device's entry for the page at <paramref name="address"/> (for tests): its page and whether it is writable.</summary>
    public bool TryGetDeviceEntry(ulong address, out Folio? page, out bool writable)
    {
        lock (Mutex)
        {
            bool found = _pt.TryGetValue(address >> Folio.BasePageShift, out var e);
            page = found ? e.Page : null;
            writable = found && e.Writable;
            return found;
        }
    }

    /// <summary>
    /// Models <c>dmirror_fops_unlocked_ioctl</c>: EINVAL for an unaligned address, an empty or wrapping range, or an
    /// unknown command; cpages/faults start at 0; on
    /// error <paramref name="cmd"/> is left as it was (the kernel does not copy it back). <paramref name="buffer"/> is the
    /// user buffer <c>ptr</c> points to (too small = EFAULT, as a failing <c>copy_to_user</c>); <paramref name="caller"/> is
    /// the task making the call (HMM faults on its behalf).
    /// </summary>
    public Errno Ioctl(HmmDmirrorCommand command, ref HmmDmirrorCmd cmd, Span<byte> buffer, ModelTask caller)
    {
        ArgumentNullException.ThrowIfNull(caller);
        var c = cmd;
        if ((c.Addr & (Folio.BasePageSize - 1)) != 0)
            return Errno.EINVAL;
        if (c.Addr >= c.Addr + (c.NPages << Folio.BasePageShift))
            return Errno.EINVAL;
        c.CPages = 0;
        c.Faults = 0;
        Errno ret = command switch
        {
            HmmDmirrorCommand.Read => DmirrorRead(ref c, buffer, caller, Device.FaultPath, Device.TimeoutMs),
            HmmDmirrorCommand.ReadUnlocked => DmirrorRead(ref c, buffer, caller, DmirrorFaultPath.UnlockedTimeout, unlockedTimeoutMs: 0),
            HmmDmirrorCommand.ReadUnlockedTimeout => DmirrorRead(ref c, buffer, caller, DmirrorFaultPath.UnlockedTimeout, Device.TimeoutMs),
            HmmDmirrorCommand.Write => DmirrorWrite(ref c, buffer, caller),
            HmmDmirrorCommand.Snapshot => DmirrorSnapshot(ref c, buffer, caller),
            HmmDmirrorCommand.MigrateToDev => DmirrorMigrateToDev(ref c, buffer),
            HmmDmirrorCommand.MigrateToSys => DmirrorMigrateToSystem(ref c),
            HmmDmirrorCommand.Exclusive => DmirrorExclusive(ref c, buffer, caller),
            HmmDmirrorCommand.CheckExclusive => DmirrorCheckExclusive(c.Addr, c.Addr + (c.NPages << Folio.BasePageShift)),
            HmmDmirrorCommand.Release => DmirrorRelease(),
            HmmDmirrorCommand.Flags => SetFlags(c.NPages),
            _ => Errno.EINVAL,
        };
        if (ret != Errno.None)
            return ret;
        cmd = c;
        return Errno.None;
    }

    /// <summary>Models <c>dmirror_read</c>: copy from device entries; on a missing one fault from there to the end and go on.</summary>
    private Errno DmirrorRead(ref HmmDmirrorCmd cmd, Span<byte> buffer, ModelTask caller, DmirrorFaultPath path, int unlockedTimeoutMs = 0)
    {
        ulong size = cmd.NPages << Folio.BasePageShift;
        ulong start = cmd.Addr, end = start + size;
        var bounce = new byte[size]; // dmirror_bounce_init
        ulong cpages = 0;
        Errno ret;
        while (true)
        {
            lock (Mutex)
                ret = DoRead(start, end, bounce, cmd.Addr, ref cpages);
            if (ret != Errno.ENOENT)
                break;
            start = cmd.Addr + (cpages << Folio.BasePageShift);
            ret = DmirrorFault(start, end, write: false, caller, path, unlockedTimeoutMs);
            if (ret != Errno.None)
                break;
            cmd.Faults++;
        }
        if (ret == Errno.None)
        {
            if ((ulong)buffer.Length < size)
                ret = Errno.EFAULT;
            else
                bounce.CopyTo(buffer);
        }
        cmd.CPages = cpages;
        return ret;
    }

    /// <summary>Models <c>dmirror_do_read</c> (mutex held).</summary>
    private Errno DoRead(ulong start, ulong end, byte[] bounce, ulong bounceAddr, ref ulong cpages)
    {
        for (ulong a = start; a < end; a += Folio.BasePageSize)
        {
            if (!_pt.TryGetValue(a >> Folio.BasePageShift, out var e))
                return Errno.ENOENT;
            e.Page.Data.Slice((int)(e.Subpage << Folio.BasePageShift), Folio.BasePageSize)
                .CopyTo(bounce.AsSpan((int)(a - bounceAddr), Folio.BasePageSize));
            cpages++;
        }
        return Errno.None;
    }

    /// <summary>Models <c>dmirror_write</c>: copy from the user buffer, then into writable device entries, write-faulting the rest.</summary>
    private Errno DmirrorWrite(ref HmmDmirrorCmd cmd, Span<byte> buffer, ModelTask caller)
    {
        ulong size = cmd.NPages << Folio.BasePageShift;
        if ((ulong)buffer.Length < size)
            return Errno.EFAULT; // copy_from_user
        var bounce = buffer.Slice(0, (int)size).ToArray();
        ulong start = cmd.Addr, end = start + size;
        ulong cpages = 0;
        Errno ret;
        while (true)
        {
            lock (Mutex)
                ret = DoWrite(start, end, bounce, cmd.Addr, ref cpages);
            if (ret != Errno.ENOENT)
                break;
            start = cmd.Addr + (cpages << Folio.BasePageShift);
            ret = DmirrorFault(start, end, write: true, caller, Device.FaultPath, Device.TimeoutMs);
            if (ret != Errno.None)
                break;
            cmd.Faults++;
        }
        cmd.CPages = cpages;
        return ret;
    }

    /// <summary>Models <c>dmirror_do_write</c> (mutex held): only entries tagged writable count.</summary>
    private Errno DoWrite(ulong start, ulong end, byte[] bounce, ulong bounceAddr, ref ulong cpages)
    {
        for (ulong a = start; a < end; a += Folio.BasePageSize)
        {
            if (!_pt.TryGetValue(a >> Folio.BasePageShift, out var e) || !e.Writable || e.Atomic)
                return Errno.ENOENT;
            bounce.AsSpan((int)(a - bounceAddr), Folio.BasePageSize)
                .CopyTo(e.Page.Data.Slice((int)(e.Subpage << Folio.BasePageShift), Folio.BasePageSize));
            cpages++;
        }
        return Errno.None;
    }

    /// <summary>Models <c>dmirror_fault</c>: fault [start, end) into the device 32 pages at a time.</summary>
    private Errno DmirrorFault(ulong start, ulong end, bool write, ModelTask caller, DmirrorFaultPath path, int unlockedTimeoutMs = 0)
    {
        if (Mm.Exited)
            return Errno.EINVAL; // mmget_not_zero failed (the kernel returns 0 and would loop; the model reports it)
        var range = _range;
        range.Notifier = Notifier;
        range.PfnFlagsMask = 0;
        range.DefaultFlags = HmmPfn.ReqFault | (write ? HmmPfn.ReqWrite : 0);
        range.DevPrivateOwner = Device;
        for (ulong addr = start; addr < end; addr = range.End)
        {
            range.Start = addr;
            range.End = Math.Min(addr + ((ulong)ChunkPages << Folio.BasePageShift), end);
            var ret = DmirrorRangeFault(range, caller, path, unlockedTimeoutMs);
            if (ret != Errno.None)
                return ret;
        }
        return Errno.None;
    }

    /// <summary>
    /// Models <c>dmirror_range_fault</c>: until the deadline, take a sequence, fault under the mmap read lock (or let
    /// <c>hmm_range_fault_unlocked_timeout</c> take it), then under the mutex check the sequence and store the entries.
    /// </summary>
    private Errno DmirrorRangeFault(HmmRange range, ModelTask caller, DmirrorFaultPath path, int unlockedTimeoutMs)
    {
        long deadline = Environment.TickCount64 + Device.TimeoutMs;
        range.ResetCounters();
        Errno ret;
        try
        {
            while (true)
            {
                if (path == DmirrorFaultPath.UnlockedTimeout)
                {
                    ret = HmmFaults.HmmRangeFaultUnlockedTimeout(range, unlockedTimeoutMs, caller);
                    if (ret != Errno.None)
                        return ret; // -EBUSY here means its own deadline passed
                }
                else
                {
                    if (Environment.TickCount64 > deadline)
                        return Errno.EBUSY;
                    range.NotifierSeq = Notifier.ReadBegin();
                    Mm.MmapLock.EnterReadLock();
                    try
                    {
                        ret = HmmFaults.HmmRangeFault(range, caller, path == DmirrorFaultPath.Seed002 ? HmmFaultVariant.Seed002 : HmmFaultVariant.Mainline);
                    }
                    finally { Mm.MmapLock.ExitReadLock(); }
                    if (ret == Errno.EBUSY)
                    {
                        Stats.EbusyRetries++;
                        continue;
                    }
                    if (ret != Errno.None)
                        return ret;
                }
                Monitor.Enter(Mutex);
                if (Notifier.ReadRetry(range.NotifierSeq))
                {
                    Monitor.Exit(Mutex);
                    Stats.ReadRetries++;
                    continue;
                }
                break;
            }
            try
            {
                return DoFault(range);
            }
            finally { Monitor.Exit(Mutex); }
        }
        finally
        {
            Stats.HmmFaults += range.Faults;
            Stats.LockDrops += range.LockDrops;
            Stats.WalkRestarts += range.WalkRestarts;
        }
    }

    /// <summary>Models <c>dmirror_do_fault</c> (mutex held): store each page, tagged writable iff HMM_PFN_WRITE.</summary>
    private Errno DoFault(HmmRange range)
    {
        for (int i = 0, n = range.PageCount; i < n; i++)
        {
            ulong pfn = range.HmmPfns[i];
            // hmm_range_fault populated every page it was asked to: an error or invalid entry is a model bug (WARN_ON).
            if ((pfn & HmmPfn.Error) != 0 || (pfn & HmmPfn.Valid) == 0 || range.Pages[i] is not { } page)
                return Errno.EFAULT;
            bool writable = (pfn & HmmPfn.Write) != 0;
            if (!writable && (range.DefaultFlags & HmmPfn.ReqWrite) != 0)
                return Errno.EFAULT;
            ulong vpfn = (range.Start >> Folio.BasePageShift) + (ulong)i;
            _pt[vpfn] = new DptEntry(page, HmmPfn.ToSubpage(pfn), writable);
        }
        return Errno.None;
    }

    /// <summary>Models <c>dmirror_do_update</c> (mutex held): erase the device entries of [start, end).</summary>
    internal void DoUpdate(ulong start, ulong end)
    {
        ulong first = start >> Folio.BasePageShift;
        ulong last = end == 0 ? ulong.MaxValue : (end - 1) >> Folio.BasePageShift;
        if (last - first < (ulong)_pt.Count * 2)
        {
            for (ulong p = first; p <= last; p++)
                _pt.Remove(p);
            return;
        }
        foreach (var key in _pt.Keys.ToArray())
        {
            if (key >= first && key <= last)
                _pt.Remove(key);
        }
    }

    /// <summary>
    /// Models <c>dmirror_snapshot</c> + <c>dmirror_range_snapshot</c>: per 32-page chunk, a temporary interval notifier,
    /// <c>hmm_range_fault</c> with no request flags, and one <see cref="DmirrorProt"/> byte per page.
    /// </summary>
    private Errno DmirrorSnapshot(ref HmmDmirrorCmd cmd, Span<byte> buffer, ModelTask caller)
    {
        if (Mm.Exited)
            return Errno.EINVAL;
        ulong start = cmd.Addr, end = start + (cmd.NPages << Folio.BasePageShift);
        var range = new HmmRange(ChunkPages) { DevPrivateOwner = Device };
        Span<byte> perm = stackalloc byte[ChunkPages];
        int offset = 0;
        for (ulong addr = start; addr < end;)
        {
            ulong next = Math.Min(addr + ((ulong)ChunkPages << Folio.BasePageShift), end);
            range.Start = addr;
            range.End = next;
            var ret = RangeSnapshot(range, perm, caller);
            if (ret != Errno.None)
                return ret;
            int n = range.PageCount;
            if (buffer.Length < offset + n)
                return Errno.EFAULT;
            perm.Slice(0, n).CopyTo(buffer.Slice(offset));
            cmd.CPages += (ulong)n;
            offset += n;
            addr = next;
        }
        return Errno.None;
    }

    private Errno RangeSnapshot(HmmRange range, Span<byte> perm, ModelTask caller)
    {
        var e = IntervalNotifier.Insert(Mm, range.Start, range.End - range.Start, DmirrorSnapshotOps.Ops, this, out var notifier);
        if (e != Errno.None)
            return e;
        range.Notifier = notifier;
        long deadline = Environment.TickCount64 + Device.TimeoutMs;
        try
        {
            while (true)
            {
                if (Environment.TickCount64 > deadline)
                    return Errno.EBUSY;
                range.NotifierSeq = notifier!.ReadBegin();
                Mm.MmapLock.EnterReadLock();
                try { e = HmmFaults.HmmRangeFault(range, caller); }
                finally { Mm.MmapLock.ExitReadLock(); }
                if (e == Errno.EBUSY)
                    continue;
                if (e != Errno.None)
                    return e;
                lock (Mutex)
                {
                    if (notifier.ReadRetry(range.NotifierSeq))
                        continue;
                    for (int i = 0, n = range.PageCount; i < n; i++)
                        perm[i] = MkEntry(range, i);
                }
                return Errno.None;
            }
        }
        finally { notifier!.Remove(); }
    }

    /// <summary>Models <c>dmirror_mkentry</c>.</summary>
    private byte MkEntry(HmmRange range, int i)
    {
        ulong entry = range.HmmPfns[i];
        if ((entry & HmmPfn.Error) != 0)
            return DmirrorProt.Error;
        if ((entry & HmmPfn.Valid) == 0)
            return DmirrorProt.None;
        byte perm;
        var page = range.Pages[i];
        if (page is { IsDevicePrivate: true })
            perm = ReferenceEquals(page.Pgmap!.Owner, Device) ? DmirrorProt.DevPrivateLocal : DmirrorProt.DevPrivateRemote;
        else if (page is { IsDeviceCoherent: true })
            perm = ReferenceEquals(page.Pgmap!.Owner, Device) ? DmirrorProt.DevCoherentLocal : DmirrorProt.DevCoherentRemote;
        else
            perm = range.IsZeroPfn(i) ? DmirrorProt.Zero : DmirrorProt.None;
        perm |= (entry & HmmPfn.Write) != 0 ? DmirrorProt.Write : DmirrorProt.Read;
        int order = HmmPfn.ToMapOrder(entry);
        if (order + Folio.BasePageShift == 21)
            perm |= DmirrorProt.Pmd;
        else if (order + Folio.BasePageShift == 30)
            perm |= DmirrorProt.Pud;
        return perm;
    }

    private const int MigrateChunkPages = 64; // dmirror's src_pfns[64] / dst_pfns[64]

    /// <summary>
    /// Models <c>dmirror_migrate_to_dev</c>: per VMA piece of at most 64 pages (no VMA or no VM_READ: EINVAL),
    /// <c>migrate_vma_setup</c> with MIGRATE_VMA_SELECT_SYSTEM and this device as owner, allocate and copy, pages, map into
    /// the device page table, finalize; then read the range back through the device (ENOENT where a page did not move).
    /// </summary>
    private Errno DmirrorMigrateToDev(ref HmmDmirrorCmd cmd, Span<byte> buffer)
    {
        ulong start = cmd.Addr, end = start + (cmd.NPages << Folio.BasePageShift);
        var ret = ForEachMigratePiece(start, end, MigrateVmaSelect.System, args =>
        {
            MigrateAllocAndCopy(args);
            MigrateDevice.MigrateVmaPages(args);
            MigrateFinalizeAndMap(args);
            MigrateDevice.MigrateVmaFinalize(args);
        });
        return ret != Errno.None ? ret : ReadBack(ref cmd, buffer); // the migrated data, for verification
    }

    /// <summary>
    /// The loop <c>dmirror_migrate_to_dev</c> and <c>dmirror_migrate_to_system</c> share: under the mmap read lock, per VMA
    /// piece of at most 64 pages (no VMA or no VM_READ: EINVAL), <c>migrate_vma_setup</c> with this device as owner and
    /// <paramref name="select"/>, then <paramref name="body"/> (copy, pages, finalize).
    /// </summary>
    private Errno ForEachMigratePiece(ulong start, ulong end, MigrateVmaSelect select, Action<MigrateVma> body)
    {
        if (Mm.Exited)
            return Errno.EINVAL;
        var args = new MigrateVma(MigrateChunkPages);
        Mm.MmapLock.EnterReadLock();
        try
        {
            for (ulong addr = start; addr < end;)
            {
                var vma = Mm.VmaLookup(addr);
                if (vma is null || (vma.Flags & VmFlags.Read) == 0)
                    return Errno.EINVAL;
                ulong next = Math.Min(end, Math.Min(addr + ((ulong)MigrateChunkPages << Folio.BasePageShift), vma.End));
                args.Vma = vma;
                args.Start = addr;
                args.End = next;
                args.PgmapOwner = Device;
                args.Flags = select;
                args.FaultPage = null;
                var ret = MigrateDevice.MigrateVmaSetup(args);
                if (ret != Errno.None)
                    return ret;
                body(args);
                addr = next;
            }
            return Errno.None;
        }
        finally { Mm.MmapLock.ExitReadLock(); }
    }

    /// <summary>
    /// The read-back of <c>dmirror_migrate_to_dev</c> and <c>dmirror_exclusive</c>: <c>dmirror_do_read</c> of the range from
    /// the device page table (ENOENT at the first page the device does not map), copied to the user buffer; cpages = pages read.
    /// </summary>
    private Errno ReadBack(ref HmmDmirrorCmd cmd, Span<byte> buffer)
    {
        ulong start = cmd.Addr, size = cmd.NPages << Folio.BasePageShift;
        var bounce = new byte[size];
        ulong cpages = 0;
        Errno ret;
        lock (Mutex)
            ret = DoRead(start, start + size, bounce, start, ref cpages);
        if (ret == Errno.None)
        {
            if ((ulong)buffer.Length < size)
                ret = Errno.EFAULT;
            else
                bounce.CopyTo(buffer);
        }
        cmd.CPages = cpages;
        return ret;
    }

    /// <summary>
    /// Models <c>dmirror_migrate_alloc_and_copy</c>: a device page for each collected entry (a source already in device
    /// memory is skipped, as the kernel WARNs), the source copied or, for an empty or zero page, cleared; writable if the
    /// source was, or if it was empty in a VM_WRITE VMA. With <see cref="DmirrorFlags.FailAlloc"/> set the allocation fails once.
    /// </summary>
    private void MigrateAllocAndCopy(MigrateVma args)
    {
        for (int i = 0; i < args.NPages; i++)
        {
            if (!args.IsMigrating(i))
                continue;
            var spage = args.SrcPages[i];
            if (spage is { IsZoneDevice: true })
                continue;
            if ((Flags & DmirrorFlags.FailAlloc) != 0)
            {
                Flags &= ~DmirrorFlags.FailAlloc;
                continue;
            }
            var dpage = Device.Memory.Alloc(this);
            if (dpage is null)
                continue;
            if (spage is not null)
                spage.Data.CopyTo(dpage.Data);
            else
                dpage.Data.Clear();
            bool write = (args.Src[i] & MigratePfn.Write) != 0 || (spage is null && (args.Vma!.Flags & VmFlags.Write) != 0);
            args.SetDst(i, dpage, write);
        }
    }

    /// <summary>Models <c>dmirror_migrate_finalize_and_map</c>: the migrated pages enter the device page table (tagged WRITE if so).</summary>
    private void MigrateFinalizeAndMap(MigrateVma args)
    {
        lock (Mutex)
        {
            for (int i = 0; i < args.NPages; i++)
            {
                if (!args.IsMigrating(i) || args.DstPages[i] is not { } dpage)
                    continue;
                ulong vpfn = (args.Start >> Folio.BasePageShift) + (ulong)i;
                _pt[vpfn] = new DptEntry(dpage, 0, (args.Dst[i] & MigratePfn.Write) != 0);
            }
        }
    }

    /// <summary>
    /// Models <c>dmirror_migrate_to_system</c>: per VMA piece, collect this device's pages (<c>dmirror_select_device</c>),
    /// copy each to a new system page (<see cref="DevmemFaultAllocAndCopy"/>), pages, finalize; <c>cpages</c> counts the
    /// pages that moved.
    /// </summary>
    private Errno DmirrorMigrateToSystem(ref HmmDmirrorCmd cmd)
    {
        long cpages = 0;
        var ret = ForEachMigratePiece(cmd.Addr, cmd.Addr + (cmd.NPages << Folio.BasePageShift), Device.SelectDevice, args =>
        {
            DevmemFaultAllocAndCopy(args);
            MigrateDevice.MigrateVmaPages(args);
            cpages += MigrateDevice.SuccessfullyMigrated(args);
            MigrateDevice.MigrateVmaFinalize(args);
        });
        cmd.CPages = (ulong)cpages;
        return ret;
    }

    /// <summary>
    /// Models <c>dmirror_devmem_fault_alloc_and_copy</c>: for each collected device page, a locked system page, the device
    /// entry erased, the data copied back; VM_FAULT_OOM when no system page can be had.
    /// </summary>
    internal VmFaultResult DevmemFaultAllocAndCopy(MigrateVma args)
    {
        var allocator = Mm.Kernel.Allocator;
        for (int i = 0; i < args.NPages; i++)
        {
            if (!args.IsMigrating(i) || args.SrcPages[i] is not { } spage)
                continue;
            var dpage = allocator.Alloc();
            if (dpage is null)
                return VmFaultResult.Oom;
            dpage.Lock();
            lock (Mutex)
                _pt.Remove((args.Start >> Folio.BasePageShift) + (ulong)i);
            spage.Data.CopyTo(dpage.Data);
            args.SetDst(i, dpage, (args.Src[i] & MigratePfn.Write) != 0);
        }
        return VmFaultResult.None;
    }

    /// <summary>
    /// Models <c>dmirror_exclusive</c>: <c>make_device_exclusive</c> on each page (the range must lie in one readable VMA:
    /// EINVAL), store it in the device page table tagged ATOMIC, then read the range back through the device.
    /// </summary>
    private Errno DmirrorExclusive(ref HmmDmirrorCmd cmd, Span<byte> buffer, ModelTask caller)
    {
        ulong start = cmd.Addr, size = cmd.NPages << Folio.BasePageShift, end = start + size;
        if (Mm.Exited)
            return Errno.EINVAL;
        Errno ret = Errno.None;
        Mm.MmapLock.EnterReadLock();
        try
        {
            var vma = Mm.VmaLookup(start);
            if (vma is null || end > vma.End || (vma.Flags & VmFlags.Read) == 0)
                ret = Errno.EINVAL;
            for (ulong addr = start; ret == Errno.None && addr < end; addr += Folio.BasePageSize)
            {
                ret = DeviceExclusive.MakeDeviceExclusive(Mm, addr, Device, caller, out var folio);
                if (ret != Errno.None)
                    break;
                lock (Mutex) // dmirror_atomic_map
                    _pt[addr >> Folio.BasePageShift] = new DptEntry(folio!, 0, Writable: false, Atomic: true);
                folio!.Unlock();
                folio.Put();
            }
        }
        finally { Mm.MmapLock.ExitReadLock(); }
        return ret != Errno.None ? ret : ReadBack(ref cmd, buffer);
    }

    /// <summary>Models <c>dmirror_check_atomic</c>: EPERM if any page of the range is still mapped ATOMIC.</summary>
    private Errno DmirrorCheckExclusive(ulong start, ulong end)
    {
        lock (Mutex)
        {
            for (ulong a = start; a < end; a += Folio.BasePageSize)
                if (_pt.TryGetValue(a >> Folio.BasePageShift, out var e) && e.Atomic)
                    return Errno.EPERM;
        }
        return Errno.None;
    }

    /// <summary>Models HMM_DMIRROR_RELEASE: <c>dmirror_device_remove_chunks</c> on this device.</summary>
    private Errno DmirrorRelease()
    {
        Device.Memory.RemoveChunks();
        return Errno.None;
    }

    /// <summary>Models HMM_DMIRROR_FLAGS: <c>dmirror-&gt;flags = cmd.npages</c>.</summary>
    private Errno SetFlags(ulong flags)
    {
        Flags = flags;
        return Errno.None;
    }

    /// <summary>Models <c>dmirror_fops_release</c>: remove the notifier and drop the device page table.</summary>
    public void Dispose()
    {
        Notifier.Remove();
        lock (Mutex)
            _pt.Clear();
    }

    /// <summary>A device page-table entry: the page, the subpage, and the xarray tag (<c>DPT_XA_TAG_WRITE</c> or <c>DPT_XA_TAG_ATOMIC</c>).</summary>
    private readonly record struct DptEntry(Folio Page, long Subpage, bool Writable, bool Atomic = false);
}
