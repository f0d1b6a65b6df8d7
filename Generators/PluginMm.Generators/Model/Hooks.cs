using Microsoft.CodeAnalysis;

namespace PluginMm.Generators.Model;

/// <summary>The hooks, in table order (Mmap, the optional <c>file_operations->mmap</c>, last). The number is the bit in <see cref="MemoryTypeSpec.HookMask"/>.</summary>
internal enum HookId
{
    CanUserfault = 0,
    GetFolioNoAlloc = 1,
    AllocFolio = 2,
    FilemapAdd = 3,
    FilemapRemove = 4,
    Fault = 5,
    Mmap = 6,
}

/// <summary>One expected hook parameter: how it is passed and its fully qualified type.</summary>
internal readonly struct HookParameter
{
    public HookParameter(RefKind refKind, string type, string name)
    {
        RefKind = refKind;
        Type = type;
        Name = name;
    }

    public RefKind RefKind { get; }

    /// <summary>The type as <see cref="SymbolDisplayFormat.FullyQualifiedFormat"/> prints it (no nullable annotation).</summary>
    public string Type { get; }

    public string Name { get; }
}

/// <summary>What the generator knows about one hook: name, kernel member, expected signature.</summary>
internal sealed class HookDefinition
{
    public HookDefinition(HookId id, string kernelName, string returnType, string signature, params HookParameter[] parameters)
    {
        Id = id;
        KernelName = kernelName;
        ReturnType = returnType;
        Signature = signature;
        Parameters = parameters;
    }

    public HookId Id { get; }

    public string Name => HookCatalog.Names[(int)Id];

    /// <summary>The kernel member, e.g. <c>vm_uffd_ops->get_folio_noalloc</c>.</summary>
    public string KernelName { get; }

    /// <summary>The return type as <see cref="SymbolDisplayFormat.FullyQualifiedFormat"/> prints it (no nullable annotation).</summary>
    public string ReturnType { get; }

    /// <summary>The exact signature as C# text (identical to <c>PluginMm.HookSignatures</c>).</summary>
    public string Signature { get; }

    public HookParameter[] Parameters { get; }
}

/// <summary>
/// The hook contract, as the generator sees it. The generator cannot reference PluginMm.Abstractions (netstandard2.0
/// vs net10.0), so the names, numbers and signature texts are copied here; a test checks they agree with
/// <c>PluginMm.HookNames</c>, <c>PluginMm.HookSignatures</c>, <c>PluginMm.Backing</c> and <c>PluginMm.UffdModes</c>.
/// </summary>
internal static class HookCatalog
{
    public const string AttributeMetadataName = "PluginMm.MemoryTypeAttribute";
    public const string AttributeFullName = "global::PluginMm.MemoryTypeAttribute";

    public const int BackingAnonymous = 0;
    public const int BackingPageCache = 1;
    public const int BackingHugeTlb = 2;

    public const ulong ModeMissing = 1;
    public const ulong ModeWp = 2;
    public const ulong ModeMinor = 4;
    public const ulong AllModes = ModeMissing | ModeWp | ModeMinor;

    /// <summary>Copies of <c>PluginMm.HookSignatures</c>.</summary>
    public const string CanUserfaultSignature = "public static bool CanUserfault(in global::PluginMm.VmaView vma, global::PluginMm.UffdModes modes)";
    public const string GetFolioNoAllocSignature = "public static global::PluginMm.Folio? GetFolioNoAlloc(global::PluginMm.Inode inode, long pgoff)";
    public const string AllocFolioSignature = "public static global::PluginMm.Folio? AllocFolio(in global::PluginMm.VmaView vma, ulong address)";
    public const string FilemapAddSignature = "public static global::PluginMm.Errno FilemapAdd(global::PluginMm.Folio folio, in global::PluginMm.VmaView vma, ulong address)";
    public const string FilemapRemoveSignature = "public static void FilemapRemove(global::PluginMm.Folio folio, in global::PluginMm.VmaView vma)";
    public const string FaultSignature = "public static global::PluginMm.VmFaultResult Fault(ref global::PluginMm.VmFault vmf)";
    public const string MmapSignature = "public static global::PluginMm.Errno Mmap(in global::PluginMm.VmaView vma)";

    private const string VmaView = "global::PluginMm.VmaView";
    private const string Folio = "global::PluginMm.Folio";

    public static readonly string[] Names =
    {
        "CanUserfault", "GetFolioNoAlloc", "AllocFolio", "FilemapAdd", "FilemapRemove", "Fault", "Mmap",
    };

    /// <summary>All hooks, indexed by <see cref="HookId"/>.</summary>
    public static readonly HookDefinition[] All =
    {
        new(HookId.CanUserfault, "vm_uffd_ops->can_userfault", "bool", CanUserfaultSignature,
            new HookParameter(RefKind.In, VmaView, "vma"), new HookParameter(RefKind.None, "global::PluginMm.UffdModes", "modes")),
        new(HookId.GetFolioNoAlloc, "vm_uffd_ops->get_folio_noalloc", Folio, GetFolioNoAllocSignature,
            new HookParameter(RefKind.None, "global::PluginMm.Inode", "inode"), new HookParameter(RefKind.None, "long", "pgoff")),
        new(HookId.AllocFolio, "vm_uffd_ops->alloc_folio", Folio, AllocFolioSignature,
            new HookParameter(RefKind.In, VmaView, "vma"), new HookParameter(RefKind.None, "ulong", "address")),
        new(HookId.FilemapAdd, "vm_uffd_ops->filemap_add", "global::PluginMm.Errno", FilemapAddSignature,
            new HookParameter(RefKind.None, Folio, "folio"), new HookParameter(RefKind.In, VmaView, "vma"), new HookParameter(RefKind.None, "ulong", "address")),
        new(HookId.FilemapRemove, "vm_uffd_ops->filemap_remove", "void", FilemapRemoveSignature,
            new HookParameter(RefKind.None, Folio, "folio"), new HookParameter(RefKind.In, VmaView, "vma")),
        new(HookId.Fault, "vm_operations_struct->fault", "global::PluginMm.VmFaultResult", FaultSignature,
            new HookParameter(RefKind.Ref, "global::PluginMm.VmFault", "vmf")),
        new(HookId.Mmap, "file_operations->mmap", "global::PluginMm.Errno", MmapSignature,
            new HookParameter(RefKind.In, VmaView, "vma")),
    };

    /// <summary>Members the generator emits into every memory type (a user declaration of one would clash).</summary>
    public static readonly string[] GeneratedMemberNames =
    {
        "Ops", "HasCanUserfault", "HasGetFolioNoAlloc", "HasAllocFolio", "HasFilemapAdd", "HasFilemapRemove", "HasFault", "HasMmap",
    };

    public static bool TryGetHook(string name, out HookDefinition hook)
    {
        for (int i = 0; i < All.Length; i++)
        {
            if (All[i].Name == name)
            {
                hook = All[i];
                return true;
            }
        }

        hook = null!;
        return false;
    }

    public static string BackingName(int backing) => backing switch
    {
        BackingAnonymous => "Anonymous",
        BackingPageCache => "PageCache",
        BackingHugeTlb => "HugeTlb",
        _ => backing.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static bool IsDefinedBacking(int backing) => backing is >= BackingAnonymous and <= BackingHugeTlb;
}
