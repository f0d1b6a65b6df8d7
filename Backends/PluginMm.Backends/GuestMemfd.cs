namespace PluginMm.Backends;

/// <summary>
/// guest_memfd (virt/kvm/guest_memfd.c with the uffd ops, kernel-uffd.md §10). Mappable only MAP_SHARED and only when
/// created with GUEST_MEMFD_FLAG_MMAP (<see cref="Mmap"/>, as <c>kvm_gmem_mmap</c>); admitted to
/// userfaultfd only when created with GUEST_MEMFD_FLAG_INIT_SHARED. MINOR and MISSING are trapped by the runtime's
/// generic <c>__do_userfault</c> pre-check through <see cref="GetFolioNoAlloc"/>: <see cref="Fault"/> contains no userfault
/// logic of its own. Its one generic <see cref="VmFault.UserfaultRetval"/> call exists only for the RFC design (seed 001,
/// where <c>-&gt;fault</c> reported VM_FAULT_UFFD_MINOR/MISSING) and returns None under the default design.
/// </summary>
[MemoryType("guest_memfd", Backing = Backing.PageCache, Modes = UffdModes.Missing | UffdModes.Minor)]
public static partial class GuestMemfd
{
    /// <summary>
    /// Models <c>kvm_gmem_mmap</c> (virt/kvm/guest_memfd.c): ENODEV unless the file was created with
    /// GUEST_MEMFD_FLAG_MMAP; EINVAL unless the mapping is shared (VM_SHARED | VM_MAYSHARE).
    /// </summary>
    public static Errno Mmap(in VmaView vma)
    {
        if (vma.File is not { } inode || (inode.Flags & GuestMemfdFlags.Mmap) == 0)
            return Errno.ENODEV;
        const VmFlags shared = VmFlags.Shared | VmFlags.MayShare;
        return (vma.Flags & shared) != shared ? Errno.EINVAL : Errno.None;
    }

    /// <summary>Models <c>kvm_gmem_can_userfault</c>: only memory created shared with the host.</summary>
    public static bool CanUserfault(in VmaView vma, UffdModes modes)
        => vma.File is { } inode && (inode.Flags & GuestMemfdFlags.InitShared) != 0;

    /// <summary>
    /// Models <c>kvm_gmem_get_folio_noalloc</c>: <c>__filemap_get_folio(FGP_LOCK | FGP_ACCESSED)</c>, locked and referenced,
    /// or null when absent.
    /// </summary>
    public static Folio? GetFolioNoAlloc(Inode inode, long pgoff)
        => PageCacheHooks.GetLocked(inode, pgoff);

    /// <summary>Models <c>kvm_gmem_alloc_folio</c>: null beyond <c>i_size</c>, else an order-0 folio.</summary>
    public static Folio? AllocFolio(in VmaView vma, ulong address)
    {
        var inode = vma.File!;
        if (vma.PageIndex(address) >= inode.PageCount)
            return null;
        return inode.Allocator.Alloc();
    }

    /// <summary>Models <c>kvm_gmem_filemap_add</c>: lock and add to the page cache (unlocked again on error).</summary>
    public static Errno FilemapAdd(Folio folio, in VmaView vma, ulong address)
        => PageCacheHooks.AddLocked(folio, in vma, address);

    /// <summary>Models <c>kvm_gmem_filemap_remove</c>: remove from the page cache and unlock.</summary>
    public static void FilemapRemove(Folio folio, in VmaView vma)
        => PageCacheHooks.RemoveAndUnlock(folio, in vma);

    /// <summary>
    /// Models <c>kvm_gmem_fault_user_mapping</c>: SIGBUS beyond <c>i_size</c> or without INIT_SHARED; get or allocate the
    /// folio (zeroed, marked uptodate) and return it locked.
    /// </summary>
    public static VmFaultResult Fault(ref VmFault vmf)
    {
        var inode = vmf.Vma.File!;
        if (vmf.PgOff >= inode.PageCount)
            return VmFaultResult.SigBus;
        if ((inode.Flags & GuestMemfdFlags.InitShared) == 0)
            return VmFaultResult.SigBus;
        var folio = inode.Cache.Get(vmf.PgOff);
        // RFC design only (seed 001); None under the default pre-check design. Not userfault logic of guest_memfd's own.
        var uffd = vmf.UserfaultRetval(folio is not null);
        if (uffd != VmFaultResult.None)
        {
            folio?.Put();
            return uffd;
        }
        if (folio is null)
        {
            var r = PageCacheHooks.AddNewFolio(inode, vmf.PgOff, out folio);
            if (folio is null)
                return r;
        }
        folio.Lock();
        if ((folio.Flags & FolioFlags.Uptodate) == 0)
        {
            folio.Data.Clear();
            folio.SetFlags(FolioFlags.Uptodate);
        }
        vmf.Folio = folio;
        return VmFaultResult.Locked;
    }
}
