using PluginMm.Hmm;
namespace PluginMm.Runtime;

public sealed partial class Mm
{
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

    /// <summary>The bottom of the model's mmap area (<c>mm-&gt;mmap_base</c>, bottom-up here).</summary>
    private const ulong MmapBase = 0x0000_1000_0000_0000UL;

    /// <summary>Models <c>get_unmapped_area</c> (mm/mmap.c): the lowest free gap of <paramref name="len"/> bytes aligned to <paramref name="align"/>.</summary>
    private ulong GetUnmappedArea(ulong len, ulong align) => VmaSet.FindGap(MmapBase, ModelKernel.TaskSize, len, align);
}
