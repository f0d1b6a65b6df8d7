namespace PluginMm;

/// <summary>VMA flags (<c>vm_flags_t</c>), numbered as in <c>include/linux/mm.h</c> on 64-bit.</summary>
[Flags]
public enum VmFlags : ulong
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary><c>VM_READ</c>.</summary>
    Read = 0x1,
    /// <summary><c>VM_WRITE</c>.</summary>
    Write = 0x2,
    /// <summary><c>VM_EXEC</c>.</summary>
    Exec = 0x4,
    /// <summary><c>VM_SHARED</c>.</summary>
    Shared = 0x8,
    /// <summary><c>VM_MAYREAD</c>.</summary>
    MayRead = 0x10,
    /// <summary><c>VM_MAYWRITE</c>: without it UFFDIO_REGISTER fails with EPERM.</summary>
    MayWrite = 0x20,
    /// <summary><c>VM_MAYEXEC</c>.</summary>
    MayExec = 0x40,
    /// <summary><c>VM_MAYSHARE</c>.</summary>
    MayShare = 0x80,
    /// <summary><c>VM_UFFD_MISSING</c>: registered with UFFDIO_REGISTER_MODE_MISSING.</summary>
    UffdMissing = 0x200,
    /// <summary><c>VM_PFNMAP</c>.</summary>
    PfnMap = 0x400,
    /// <summary><c>VM_UFFD_WP</c>: registered with UFFDIO_REGISTER_MODE_WP.</summary>
    UffdWp = 0x1000,
    /// <summary><c>VM_LOCKED</c>.</summary>
    Locked = 0x2000,
    /// <summary><c>VM_IO</c>.</summary>
    IO = 0x4000,
    /// <summary><c>VM_DONTCOPY</c> (MADV_DONTFORK).</summary>
    DontCopy = 0x20000,
    /// <summary><c>VM_HUGETLB</c>.</summary>
    HugeTlb = 0x400000,
    /// <summary><c>VM_MIXEDMAP</c>.</summary>
    MixedMap = 0x10000000,
    /// <summary><c>VM_DROPPABLE</c>: never admitted by <c>vma_can_userfault</c>.</summary>
    Droppable = 1UL << 40,
    /// <summary><c>VM_UFFD_MINOR</c>: registered with UFFDIO_REGISTER_MODE_MINOR.</summary>
    UffdMinor = 1UL << 41,

    /// <summary><c>__VM_UFFD_FLAGS</c>: every userfaultfd registration bit.</summary>
    UffdFlags = UffdMissing | UffdWp | UffdMinor,
}

/// <summary>Fault flags (<c>enum fault_flag</c>, <c>include/linux/mm_types.h</c>).</summary>
[Flags]
public enum FaultFlags : uint
{
    /// <summary>No flags: a read fault from kernel mode that cannot drop the mmap lock.</summary>
    None = 0,
    /// <summary><c>FAULT_FLAG_WRITE</c>.</summary>
    Write = 1 << 0,
    /// <summary><c>FAULT_FLAG_MKWRITE</c>.</summary>
    MkWrite = 1 << 1,
    /// <summary><c>FAULT_FLAG_ALLOW_RETRY</c>: the handler may drop mmap_lock and return VM_FAULT_RETRY.</summary>
    AllowRetry = 1 << 2,
    /// <summary><c>FAULT_FLAG_RETRY_NOWAIT</c>: retry, but do not wait.</summary>
    RetryNoWait = 1 << 3,
    /// <summary><c>FAULT_FLAG_KILLABLE</c>.</summary>
    Killable = 1 << 4,
    /// <summary><c>FAULT_FLAG_TRIED</c>: this is a retry.</summary>
    Tried = 1 << 5,
    /// <summary><c>FAULT_FLAG_USER</c>: the fault came from user mode.</summary>
    User = 1 << 6,
    /// <summary><c>FAULT_FLAG_REMOTE</c>: fault on another mm (GUP, HMM).</summary>
    Remote = 1 << 7,
    /// <summary><c>FAULT_FLAG_INSTRUCTION</c>.</summary>
    Instruction = 1 << 8,
    /// <summary><c>FAULT_FLAG_INTERRUPTIBLE</c>.</summary>
    Interruptible = 1 << 9,
    /// <summary><c>FAULT_FLAG_UNSHARE</c>.</summary>
    Unshare = 1 << 10,
    /// <summary><c>FAULT_FLAG_ORIG_PTE_VALID</c>.</summary>
    OrigPteValid = 1 << 11,
    /// <summary><c>FAULT_FLAG_VMA_LOCK</c>.</summary>
    VmaLock = 1 << 12,

    /// <summary>What the architecture's user-mode fault handler passes (<c>FAULT_FLAG_DEFAULT | FAULT_FLAG_USER</c>).</summary>
    UserDefault = AllowRetry | Killable | Interruptible | User,
}

/// <summary>Fault results (<c>vm_fault_t</c>, <c>enum vm_fault_reason</c> in <c>include/linux/mm_types.h</c>).</summary>
[Flags]
public enum VmFaultResult : uint
{
    /// <summary>Done; the page is in <see cref="VmFault.Folio"/> (for <c>-&gt;fault</c>) or mapped.</summary>
    None = 0,
    /// <summary><c>VM_FAULT_OOM</c>.</summary>
    Oom = 0x000001,
    /// <summary><c>VM_FAULT_SIGBUS</c>.</summary>
    SigBus = 0x000002,
    /// <summary><c>VM_FAULT_MAJOR</c>.</summary>
    Major = 0x000004,
    /// <summary><c>VM_FAULT_HWPOISON</c>.</summary>
    HwPoison = 0x000010,
    /// <summary><c>VM_FAULT_HWPOISON_LARGE</c>.</summary>
    HwPoisonLarge = 0x000020,
    /// <summary><c>VM_FAULT_SIGSEGV</c>.</summary>
    SigSegv = 0x000040,
    /// <summary><c>VM_FAULT_NOPAGE</c>: the handler installed the PTE itself (or nothing to do).</summary>
    NoPage = 0x000100,
    /// <summary><c>VM_FAULT_LOCKED</c>: the returned folio is locked.</summary>
    Locked = 0x000200,
    /// <summary><c>VM_FAULT_RETRY</c>: the mmap lock was dropped; retry the fault.</summary>
    Retry = 0x000400,
    /// <summary><c>VM_FAULT_FALLBACK</c>.</summary>
    Fallback = 0x000800,
    /// <summary><c>VM_FAULT_DONE_COW</c>.</summary>
    DoneCow = 0x001000,
    /// <summary><c>VM_FAULT_NEEDDSYNC</c>.</summary>
    NeedDsync = 0x002000,
    /// <summary><c>VM_FAULT_COMPLETED</c>: the fault completed with the mmap lock released.</summary>
    Completed = 0x004000,
    /// <summary>RFC design (seed 001, P-gmem3): <c>VM_FAULT_UFFD_MINOR</c> — the folio is cached and the VMA is MINOR-registered.</summary>
    UffdMinor = 0x008000,
    /// <summary>RFC design (seed 001): <c>VM_FAULT_UFFD_MISSING</c> — the folio is absent and the VMA is MISSING-registered.</summary>
    UffdMissing = 0x010000,

    /// <summary><c>VM_FAULT_ERROR</c>: any error bit.</summary>
    Error = Oom | SigBus | SigSegv | HwPoison | HwPoisonLarge,
}
