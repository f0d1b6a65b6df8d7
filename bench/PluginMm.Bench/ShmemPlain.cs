namespace PluginMm.Bench;

/// <summary>
/// Benchmark-only memory type for seed 003 (a): shmem with no userfault line in its <c>-&gt;fault</c> (the shipped
/// <see cref="PluginMm.Backends.Shmem.Fault"/> minus the RFC's <see cref="VmFault.UserfaultRetval"/> test), i.e. what
/// <c>shmem_fault</c> is in a kernel without userfaultfd. The hooks are the shipped ones otherwise, and the table is
/// built by hand (the runtime accepts hand-built tables; the generator is measured in part 5).
/// </summary>
public static unsafe class ShmemPlain
{
    public const string Name = "shmem-plain";

    public static readonly MemoryTypeOps Ops = new(
        Name,
        Backing.PageCache,
        UffdModes.Missing | UffdModes.Wp | UffdModes.Minor,
        new VmOperations(&Fault),
        new VmUffdOps(
            &PluginMm.Backends.Shmem.CanUserfault,
            &PluginMm.Backends.Shmem.GetFolioNoAlloc,
            &PluginMm.Backends.Shmem.AllocFolio,
            &PluginMm.Backends.Shmem.FilemapAdd,
            &PluginMm.Backends.Shmem.FilemapRemove));

    /// <summary>The shipped backends plus this type.</summary>
    public static readonly IReadOnlyList<MemoryTypeOps> RegistryWithBackends =
        [.. PluginMm.Backends.MemoryTypeRegistry.All, Ops];

    /// <summary><c>shmem_fault</c> without userfaultfd: the cached folio, or a new zeroed one added to the page cache.</summary>
    public static VmFaultResult Fault(ref VmFault vmf)
    {
        var inode = vmf.Vma.File!;
        if (vmf.PgOff >= inode.PageCount)
            return VmFaultResult.SigBus;
        var folio = inode.Cache.Get(vmf.PgOff);
        if (folio is null)
        {
            var fresh = inode.Allocator.Alloc();
            if (fresh is null)
                return VmFaultResult.Oom;
            fresh.SetFlags(FolioFlags.Uptodate);
            if (inode.Cache.Add(fresh, vmf.PgOff) == Errno.None)
            {
                folio = fresh;
            }
            else
            {
                fresh.Put();
                folio = inode.Cache.Get(vmf.PgOff);
                if (folio is null)
                    return VmFaultResult.NoPage;
            }
        }
        vmf.Folio = folio;
        return VmFaultResult.None;
    }
}
