using PluginMm;

namespace BrokenBackend;

// A page-cache memory type that declares MINOR but has no GetFolioNoAlloc: the kernel would only find out at
// UFFDIO_REGISTER (EINVAL); PluginMm stops the build with PMM0001 and offers "Add missing hook".
[MemoryType("imagefile", Backing = Backing.PageCache, Modes = UffdModes.Minor)]
public static partial class ImageFile
{
    public static bool CanUserfault(in VmaView vma, UffdModes modes) => vma.IsShared;

    public static VmFaultResult Fault(ref VmFault vmf)
    {
        vmf.Folio = vmf.Vma.File?.Cache.Get(vmf.PgOff);
        return vmf.Folio is null ? VmFaultResult.SigBus : VmFaultResult.None;
    }
}
