namespace PluginMm.Generators.Model;

/// <summary>
/// The compile-time rules (architecture.md, "Compile-time rules"): which hooks a memory type must declare given its
/// backing and modes, which it may not declare usefully, and which mode/backing pairs the kernel rejects.
/// </summary>
internal static class HookRules
{
    /// <summary>Why <paramref name="hook"/> is required for this declaration, or null if it is not.</summary>
    public static string? RequiredBecause(HookId hook, int backing, ulong modes)
    {
        bool missing = (modes & HookCatalog.ModeMissing) != 0;
        bool minor = (modes & HookCatalog.ModeMinor) != 0;
        bool pageCache = backing == HookCatalog.BackingPageCache;
        return hook switch
        {
            HookId.CanUserfault =>
                "every memory type needs it: UFFDIO_REGISTER admits a VMA through vm_uffd_ops->can_userfault (vma_can_userfault)",
            HookId.GetFolioNoAlloc when pageCache && (missing || minor) =>
                "a page-cache memory type with MISSING or MINOR needs it: the userfault pre-check in __do_fault (__do_userfault) looks the folio up with get_folio_noalloc on every armed fault, and UFFDIO_CONTINUE uses it; the kernel refuses UFFDIO_REGISTER with EINVAL without it",
            HookId.AllocFolio when missing && backing != HookCatalog.BackingHugeTlb =>
                "MISSING needs it: UFFDIO_COPY and UFFDIO_ZEROPAGE allocate the new folio through vm_uffd_ops->alloc_folio",
            HookId.FilemapAdd when pageCache && missing =>
                "a page-cache memory type with MISSING needs it: UFFDIO_COPY inserts the filled folio into the page cache with filemap_add (always paired with FilemapRemove)",
            HookId.FilemapRemove when pageCache && missing =>
                "a page-cache memory type with MISSING needs it: UFFDIO_COPY takes the folio out of the page cache with filemap_remove when the PTE cannot be installed (always paired with FilemapAdd)",
            HookId.Fault when pageCache =>
                "a page-cache memory type needs it: vm_ops->fault is the genuine fault handler that runs when no userfault traps",
            _ => null,
        };
    }

    /// <summary>Why a declared <paramref name="hook"/> can never be called for this declaration, or null if it can.</summary>
    public static string? UnreachableBecause(HookId hook, int backing, ulong modes)
    {
        bool anon = backing == HookCatalog.BackingAnonymous;
        bool huge = backing == HookCatalog.BackingHugeTlb;
        return hook switch
        {
            HookId.GetFolioNoAlloc when anon =>
                "anonymous memory has no page cache to look folios up in",
            HookId.GetFolioNoAlloc when huge =>
                "hugetlb keeps its own fault and UFFDIO_CONTINUE paths (hugetlb_fault, mfill_atomic_hugetlb)",
            HookId.GetFolioNoAlloc when (modes & (HookCatalog.ModeMissing | HookCatalog.ModeMinor)) == 0 =>
                "only the MISSING/MINOR userfault pre-check and UFFDIO_CONTINUE call it, and the type declares neither MISSING nor MINOR",
            HookId.AllocFolio when huge =>
                "hugetlb allocates huge folios in its own fill path (mfill_atomic_hugetlb)",
            HookId.FilemapAdd or HookId.FilemapRemove when anon =>
                "anonymous memory has no page cache",
            HookId.FilemapAdd or HookId.FilemapRemove when huge =>
                "hugetlb adds to its page cache in its own fill path (mfill_atomic_hugetlb)",
            HookId.Fault when anon =>
                "anonymous VMAs have no vm_ops; their faults go to do_anonymous_page",
            HookId.Fault when huge =>
                "hugetlb faults go to hugetlb_fault; hugetlb's vm_ops->fault is never called",
            HookId.Mmap when anon =>
                "anonymous memory has no file, so no file_operations->mmap is ever called",
            _ => null,
        };
    }

    /// <summary>Why the kernel cannot support <paramref name="modes"/> on <paramref name="backing"/> (the offending mode and reason), or null.</summary>
    public static (string Mode, string Reason)? UnsupportedMode(int backing, ulong modes)
    {
        if (backing == HookCatalog.BackingAnonymous && (modes & HookCatalog.ModeMinor) != 0)
        {
            return ("MINOR", "anonymous memory has no page cache, so a page can never be present but unmapped; vma_can_userfault rejects MINOR on anonymous VMAs (UFFDIO_REGISTER fails with EINVAL)");
        }

        return null;
    }
}
