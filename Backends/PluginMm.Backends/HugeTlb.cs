namespace PluginMm.Backends;

/// <summary>
/// hugetlbfs (mm/hugetlb.c). As in the kernel's vm_uffd_ops series, hugetlb contributes only its admission hook: its
/// faults (<c>hugetlb_fault</c>), its fills (<c>mfill_atomic_hugetlb</c>) and its page cache stay in the core, at
/// huge-page granularity.
/// </summary>
[MemoryType("hugetlb", Backing = Backing.HugeTlb, Modes = UffdModes.Missing | UffdModes.Wp | UffdModes.Minor)]
public static partial class HugeTlb
{
    /// <summary>Models <c>hugetlb_can_userfault</c>: every mode.</summary>
    public static bool CanUserfault(in VmaView vma, UffdModes modes) => true;
}
