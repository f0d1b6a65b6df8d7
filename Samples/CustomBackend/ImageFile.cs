using PluginMm;

namespace CustomBackend;

/// <summary>
/// A memory type a third party might write: a read-mostly file whose pages are read on demand from an image
/// (think of a VM snapshot file in a page cache). It supports MISSING and MINOR userfaults, so the rules require
/// CanUserfault, GetFolioNoAlloc, AllocFolio, FilemapAdd + FilemapRemove and Fault — the generator builds its table.
/// </summary>
[MemoryType("imagefile", Backing = Backing.PageCache, Modes = UffdModes.Missing | UffdModes.Minor)]
public static partial class ImageFile
{
    /// <summary>Admits only shared mappings: a private mapping of the image would be CoW anonymous memory.</summary>
    public static bool CanUserfault(in VmaView vma, UffdModes modes) => vma.IsShared;

    /// <summary>Page-cache lookup without allocation: the userfault pre-check and UFFDIO_CONTINUE use it.</summary>
    public static Folio? GetFolioNoAlloc(Inode inode, long pgoff) => inode.Cache.Get(pgoff);

    /// <summary>A folio for UFFDIO_COPY; null (ENOMEM) beyond the end of the file.</summary>
    public static Folio? AllocFolio(in VmaView vma, ulong address)
        => vma.File is { } f && vma.PageIndex(address) < f.PageCount ? vma.Allocator.Alloc(f.PageSize) : null;

    /// <summary>Inserts a folio that UFFDIO_COPY filled.</summary>
    public static Errno FilemapAdd(Folio folio, in VmaView vma, ulong address)
        => vma.File is { } f ? f.Cache.Add(folio, vma.PageIndex(address)) : Errno.EINVAL;

    /// <summary>Undoes FilemapAdd when the PTE cannot be installed.</summary>
    public static void FilemapRemove(Folio folio, in VmaView vma) => vma.File?.Cache.Remove(folio);

    /// <summary>The genuine fault handler: read the page from the image into the page cache.</summary>
    public static VmFaultResult Fault(ref VmFault vmf)
    {
        Inode file = vmf.Vma.File!;
        if (vmf.PgOff >= file.PageCount)
            return VmFaultResult.SigBus;
        Folio? folio = file.Cache.Get(vmf.PgOff);
        if (folio is null)
        {
            folio = vmf.Vma.Allocator.Alloc(file.PageSize);
            if (folio is null)
                return VmFaultResult.Oom;
            if (file.PrivateData is byte[] image)
            {
                long offset = vmf.PgOff * file.PageSize;
                int n = (int)Math.Min(file.PageSize, Math.Max(0, image.Length - offset));
                if (n > 0)
                    image.AsSpan((int)offset, n).CopyTo(folio.Data);
            }
            folio.SetFlags(FolioFlags.Uptodate);
            if (file.Cache.Add(folio, vmf.PgOff) != Errno.None)
            {
                // Lost a race with another fault: use the folio that won.
                folio.Put();
                folio = file.Cache.Get(vmf.PgOff);
                if (folio is null)
                    return VmFaultResult.Retry;
            }
        }
        vmf.Folio = folio;
        return VmFaultResult.None;
    }
}
