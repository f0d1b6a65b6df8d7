using System.Buffers.Binary;

namespace PluginMm.Runtime;

/// <summary>What a task sees after a memory access: success, or the signal the kernel would deliver.</summary>
public enum AccessResult
{
    /// <summary>The access completed.</summary>
    Ok = 0,
    /// <summary>SIGSEGV: no VMA, or the VMA forbids the access (or a guard marker).</summary>
    SigSegv = 1,
    /// <summary>SIGBUS: beyond the file's end, a poisoned page, or a userfault that may not wait (SIGBUS feature, ...).</summary>
    SigBus = 2,
    /// <summary>VM_FAULT_OOM: the page allocator is exhausted (Linux would run the OOM killer).</summary>
    OutOfMemory = 3,
    /// <summary>
    /// The kernel would livelock on this access (a named kernel bug, not a model failure): a write to a hugetlb entry that
    /// keeps its uffd-wp bit after the VMA stopped being WP-registered (e.g. re-registered MINOR) — <c>hugetlb_wp</c>
    /// returns 0 without resolving it and the fault repeats forever on Linux 6.18. The model reports it instead of spinning.
    /// </summary>
    KernelLivelock = 4,
}

/// <summary>
/// A task (a thread of a process): it accesses its mm's memory the way a CPU does, through the page tables, faulting
/// through <see cref="Mm.HandleMmFault"/> and retrying on <c>VM_FAULT_RETRY</c> as the architecture's fault handler
/// (<c>do_user_addr_fault</c>) does. A task is used by one host thread at a time; a faulting task blocks in
/// <c>handle_userfault</c> until a userfaultfd handler wakes it.
/// </summary>
public sealed class ModelTask
{
    internal ModelTask(Mm mm, string? name)
    {
        Mm = mm;
        Tid = mm.Kernel.NextTid();
        Name = name ?? $"task-{Tid}";
        Waiter = new UserfaultWaiter(this);
    }

    /// <summary>The task's address space.</summary>
    public Mm Mm { get; }

    /// <summary>The thread id (<c>task_pid_vnr</c>), reported as <c>ptid</c> with UFFD_FEATURE_THREAD_ID.</summary>
    public int Tid { get; }

    /// <summary>A name for diagnostics.</summary>
    public string Name { get; }

    /// <summary>The task's userfault wait-queue entry (the kernel's on-stack <c>userfaultfd_wait_queue</c>), reused.</summary>
    internal UserfaultWaiter Waiter { get; }

    /// <summary>Number of faults this task took (<c>handle_mm_fault</c> calls), for tests and benchmarks.</summary>
    public long Faults { get; private set; }

    /// <summary>Number of VM_FAULT_RETRY results this task retried.</summary>
    public long Retries { get; private set; }

    /// <summary>Reads <paramref name="buffer"/>.Length bytes at <paramref name="address"/>.</summary>
    public AccessResult Read(ulong address, Span<byte> buffer) => Access(address, buffer, write: false, FaultFlags.UserDefault);

    /// <summary>Writes <paramref name="data"/> at <paramref name="address"/>.</summary>
    public AccessResult Write(ulong address, ReadOnlySpan<byte> data)
        => Access(address, System.Runtime.InteropServices.MemoryMarshal.CreateSpan(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data), data.Length), write: true, FaultFlags.UserDefault);

    /// <summary>Reads a little-endian 64-bit value.</summary>
    public AccessResult ReadUInt64(ulong address, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        var r = Read(address, b);
        value = r == AccessResult.Ok ? BinaryPrimitives.ReadUInt64LittleEndian(b) : 0;
        return r;
    }

    /// <summary>Writes a little-endian 64-bit value.</summary>
    public AccessResult WriteUInt64(ulong address, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return Write(address, b);
    }

    /// <summary>Reads one byte.</summary>
    public AccessResult ReadByte(ulong address, out byte value)
    {
        Span<byte> b = stackalloc byte[1];
        var r = Read(address, b);
        value = b[0];
        return r;
    }

    /// <summary>
    /// Starts a host thread that runs <paramref name="body"/> as this task (tasks are threads). Join it with
    /// <see cref="Thread.Join(int)"/>.
    /// </summary>
    public Thread Start(Action<ModelTask> body)
    {
        var t = new Thread(() => body(this)) { IsBackground = true, Name = Name };
        t.Start();
        return t;
    }

    /// <summary>Faults in [address, address+len) (MAP_POPULATE / <c>populate_vma_page_range</c>), ignoring errors.</summary>
    internal void Populate(ulong address, ulong len, bool write)
    {
        Span<byte> one = stackalloc byte[1];
        for (ulong a = address; a < address + len; a += Folio.BasePageSize)
        {
            if (write)
            {
                if (Access(a, one, false, FaultFlags.UserDefault) != AccessResult.Ok) return;
                if (Access(a, one, true, FaultFlags.UserDefault) != AccessResult.Ok) return;
            }
            else if (Access(a, one, false, FaultFlags.UserDefault) != AccessResult.Ok)
                return;
        }
    }

    /// <summary>
    /// Models the architecture's fault handler around an access (<c>do_user_addr_fault</c>, arch/x86/mm/fault.c): per
    /// page, take the mmap read lock, find the VMA (none → SIGSEGV), check the access against VM_READ/VM_WRITE
    /// (<c>access_error</c> → SIGSEGV), copy if the page table already allows it, else call <c>handle_mm_fault</c>;
    /// on VM_FAULT_RETRY retake the lock and retry with FAULT_FLAG_TRIED; an error result becomes the signal.
    /// <paramref name="baseFlags"/> is <see cref="FaultFlags.UserDefault"/> for user accesses; a kernel-mode access on a
    /// user address (<c>copy_from_user</c>) passes flags without <see cref="FaultFlags.User"/>.
    /// </summary>
    internal AccessResult Access(ulong address, Span<byte> buffer, bool write, FaultFlags baseFlags)
    {
        int done = 0;
        var mm = Mm;
        while (done < buffer.Length)
        {
            ulong a = address + (ulong)done;
            int inPage = (int)(a & (Folio.BasePageSize - 1));
            int n = Math.Min(Folio.BasePageSize - inPage, buffer.Length - done);
            var chunk = buffer.Slice(done, n);
            FaultFlags flags = baseFlags | (write ? FaultFlags.Write : 0);
            while (true)
            {
                mm.MmapLock.EnterReadLock();
                var vma = mm.VmaLookup(a);
                if (vma is null || (write ? (vma.Flags & VmFlags.Write) == 0 : (vma.Flags & (VmFlags.Read | VmFlags.Write | VmFlags.Exec)) == 0))
                {
                    mm.MmapLock.ExitReadLock();
                    return AccessResult.SigSegv;
                }
                if (TryAccessMapped(mm, vma, a, chunk, write))
                {
                    mm.MmapLock.ExitReadLock();
                    break;
                }
                Faults++;
                VmFaultResult ret;
                try
                {
                    ret = mm.HandleMmFault(vma, a, flags, this);
                }
                catch (Exception e) when (e is not ThreadInterruptedException)
                {
                    // A backend hook threw (a bug in the memory type, the model's oops): contain it. The task gets SIGBUS,
                    // the exception is reported on the kernel, and the mmap lock is released if this thread still holds
                    // it (handle_userfault may already have dropped it), so later writers do not hang.
                    if (mm.MmapLock.IsReadLockHeld)
                        mm.MmapLock.ExitReadLock();
                    mm.Kernel.ReportHookException(e);
                    return AccessResult.SigBus;
                }
                if ((ret & Mm.KernelLivelock) != 0)
                {
                    mm.MmapLock.ExitReadLock();
                    return AccessResult.KernelLivelock;
                }
                if ((ret & VmFaultResult.Retry) != 0)
                {
                    if ((flags & FaultFlags.RetryNoWait) != 0)
                        mm.MmapLock.ExitReadLock();
                    Retries++;
                    flags |= FaultFlags.Tried;
                    continue;
                }
                if ((ret & VmFaultResult.Completed) != 0)
                    continue;
                mm.MmapLock.ExitReadLock();
                if ((ret & VmFaultResult.Error) != 0)
                {
                    if ((ret & VmFaultResult.Oom) != 0) return AccessResult.OutOfMemory;
                    if ((ret & VmFaultResult.SigSegv) != 0) return AccessResult.SigSegv;
                    return AccessResult.SigBus;
                }
            }
            done += n;
        }
        return AccessResult.Ok;
    }

    /// <summary>
    /// The CPU's view: if the entry for <paramref name="address"/> is present and allows the access, copies under the
    /// page-table lock and returns true. No allocation.
    /// </summary>
    internal static bool TryAccessMapped(Mm mm, Vma vma, ulong address, Span<byte> chunk, bool write)
    {
        ulong size = (ulong)vma.PageSize;
        ulong baseAddr = address & ~(size - 1);
        var table = mm.PageTable.Lookup(baseAddr);
        if (table is null)
            return false;
        lock (table.Ptl)
        {
            ref Pte p = ref table[baseAddr];
            if (!p.IsPresent || (write && !p.IsWritable))
                return false;
            int off = (int)(address - baseAddr);
            if (p.IsZeroPage)
            {
                chunk.Clear();
                return true;
            }
            var data = p.Folio!.Data.Slice(off, chunk.Length);
            if (write)
            {
                chunk.CopyTo(data);
                p.Flags |= PteFlags.Dirty;
            }
            else
                data.CopyTo(chunk);
            return true;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (tid {Tid})";
}
