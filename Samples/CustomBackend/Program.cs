using CustomBackend;
using PluginMm;

// The generator turned ImageFile's static hooks into a vm_uffd_ops table, Has<Hook> constants and a registry entry.
Console.WriteLine("Memory types in this assembly (CustomBackend.MemoryTypeRegistry.All):");
foreach (MemoryTypeOps t in CustomBackend.MemoryTypeRegistry.All)
{
    Console.WriteLine($"  {t.Name}: backing={t.Backing}, modes={t.Modes}");
    Console.WriteLine($"    vm_ops:      fault={Slot(t.HasFault)}");
    Console.WriteLine($"    vm_uffd_ops: can_userfault={Slot(t.HasCanUserfault)} get_folio_noalloc={Slot(t.HasGetFolioNoAlloc)} " +
                      $"alloc_folio={Slot(t.HasAllocFolio)} filemap_add={Slot(t.HasFilemapAdd)} filemap_remove={Slot(t.HasFilemapRemove)}");
}
Console.WriteLine($"ImageFile.HasGetFolioNoAlloc = {ImageFile.HasGetFolioNoAlloc}");

// Call the hooks through the table, as the runtime's fault path does.
var allocator = new PageAllocator();
var image = new byte[4 * Folio.BasePageSize];
for (int i = 0; i < image.Length; i++) image[i] = (byte)(i / Folio.BasePageSize + 'A');
var inode = new Inode("imagefile", image.Length, Folio.BasePageSize, allocator) { PrivateData = image };
var vma = new VmaView(0x7f0000000000, 0x7f0000004000, VmFlags.Read | VmFlags.Shared | VmFlags.MayWrite, 0, inode, Folio.BasePageShift, allocator);
var ops = ImageFile.Ops;
unsafe
{
    Console.WriteLine($"can_userfault(shared vma, MINOR) = {ops.UffdOps.CanUserfault(in vma, UffdModes.Minor)}");
    Console.WriteLine($"get_folio_noalloc(pgoff 2) before a fault = {(ops.UffdOps.GetFolioNoAlloc(inode, 2) is null ? "null (a MINOR-armed fault would be MISSING)" : "folio")}");
    var vmf = new VmFault(in vma, vma.Start + 2 * Folio.BasePageSize, vma.Start + 2 * Folio.BasePageSize + 17, 2, FaultFlags.UserDefault);
    VmFaultResult r = ops.VmOps.Fault(ref vmf);
    Console.WriteLine($"fault(pgoff 2) = {r}, page starts with '{(char)vmf.Folio!.Data[0]}'");
    vmf.Folio.Put();
    Folio? cached = ops.UffdOps.GetFolioNoAlloc(inode, 2);
    Console.WriteLine($"get_folio_noalloc(pgoff 2) after the fault = {(cached is null ? "null" : "folio (a MINOR-armed fault would be MINOR)")}");
    cached?.Put();
}
Console.WriteLine($"page cache holds {inode.Cache.Count} folio(s); live pages {allocator.LivePages}");

static string Slot(bool present) => present ? "set" : "NULL";
