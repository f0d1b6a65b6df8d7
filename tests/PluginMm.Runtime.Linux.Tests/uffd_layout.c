/* Prints the kernel's userfaultfd ABI (sizes, offsets, request codes, constants) from <linux/userfaultfd.h>,
 * one "kind name value" per line, for UapiLayoutTests. Items the installed header predates are reported as absent. */
#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/userfaultfd.h>

#define SZ(t) printf("sizeof %s %zu\n", #t, sizeof(struct t));
#define OF(t, f) printf("offsetof %s.%s %zu\n", #t, #f, offsetof(struct t, f));
#define K(n) printf("const %s %llu\n", #n, (unsigned long long)(n));
#define ABSENT(n) printf("absent %s\n", #n);

int main(void)
{
    SZ(uffd_msg) OF(uffd_msg, event) OF(uffd_msg, arg) OF(uffd_msg, arg.pagefault.flags)
    OF(uffd_msg, arg.pagefault.address) OF(uffd_msg, arg.pagefault.feat.ptid) OF(uffd_msg, arg.fork.ufd)
    OF(uffd_msg, arg.remap.from) OF(uffd_msg, arg.remap.to) OF(uffd_msg, arg.remap.len)
    OF(uffd_msg, arg.remove.start) OF(uffd_msg, arg.remove.end)
    SZ(uffdio_api) OF(uffdio_api, api) OF(uffdio_api, features) OF(uffdio_api, ioctls)
    SZ(uffdio_range) OF(uffdio_range, start) OF(uffdio_range, len)
    SZ(uffdio_register) OF(uffdio_register, range) OF(uffdio_register, mode) OF(uffdio_register, ioctls)
    SZ(uffdio_copy) OF(uffdio_copy, dst) OF(uffdio_copy, src) OF(uffdio_copy, len) OF(uffdio_copy, mode) OF(uffdio_copy, copy)
    SZ(uffdio_zeropage) OF(uffdio_zeropage, range) OF(uffdio_zeropage, mode) OF(uffdio_zeropage, zeropage)
    SZ(uffdio_writeprotect) OF(uffdio_writeprotect, range) OF(uffdio_writeprotect, mode)
    SZ(uffdio_continue) OF(uffdio_continue, range) OF(uffdio_continue, mode) OF(uffdio_continue, mapped)
#ifdef UFFDIO_POISON
    SZ(uffdio_poison) OF(uffdio_poison, range) OF(uffdio_poison, mode) OF(uffdio_poison, updated)
    K(UFFDIO_POISON) K(UFFDIO_POISON_MODE_DONTWAKE) K(UFFD_FEATURE_POISON)
#else
    ABSENT(UFFDIO_POISON)
#endif
#ifdef UFFDIO_MOVE
    SZ(uffdio_move) OF(uffdio_move, dst) OF(uffdio_move, src) OF(uffdio_move, len) OF(uffdio_move, mode) OF(uffdio_move, move)
    K(UFFDIO_MOVE) K(UFFDIO_MOVE_MODE_DONTWAKE) K(UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES) K(UFFD_FEATURE_MOVE)
#else
    ABSENT(UFFDIO_MOVE)
#endif
#ifdef UFFD_FEATURE_WP_UNPOPULATED
    K(UFFD_FEATURE_WP_UNPOPULATED)
#else
    ABSENT(UFFD_FEATURE_WP_UNPOPULATED)
#endif
#ifdef UFFD_FEATURE_WP_ASYNC
    K(UFFD_FEATURE_WP_ASYNC)
#else
    ABSENT(UFFD_FEATURE_WP_ASYNC)
#endif
    K(UFFD_API) K(USERFAULTFD_IOC_NEW)
    K(UFFDIO_API) K(UFFDIO_REGISTER) K(UFFDIO_UNREGISTER) K(UFFDIO_WAKE) K(UFFDIO_COPY) K(UFFDIO_ZEROPAGE)
    K(UFFDIO_WRITEPROTECT) K(UFFDIO_CONTINUE)
    K(UFFD_API_IOCTLS)
    K(UFFDIO_REGISTER_MODE_MISSING) K(UFFDIO_REGISTER_MODE_WP) K(UFFDIO_REGISTER_MODE_MINOR)
    K(UFFDIO_COPY_MODE_DONTWAKE) K(UFFDIO_COPY_MODE_WP) K(UFFDIO_ZEROPAGE_MODE_DONTWAKE)
    K(UFFDIO_WRITEPROTECT_MODE_WP) K(UFFDIO_WRITEPROTECT_MODE_DONTWAKE)
    K(UFFDIO_CONTINUE_MODE_DONTWAKE)
#ifdef UFFDIO_CONTINUE_MODE_WP
    K(UFFDIO_CONTINUE_MODE_WP)
#else
    ABSENT(UFFDIO_CONTINUE_MODE_WP)
#endif
    K(UFFD_EVENT_PAGEFAULT) K(UFFD_EVENT_FORK) K(UFFD_EVENT_REMAP) K(UFFD_EVENT_REMOVE) K(UFFD_EVENT_UNMAP)
    K(UFFD_PAGEFAULT_FLAG_WRITE) K(UFFD_PAGEFAULT_FLAG_WP) K(UFFD_PAGEFAULT_FLAG_MINOR)
    K(UFFD_FEATURE_PAGEFAULT_FLAG_WP) K(UFFD_FEATURE_EVENT_FORK) K(UFFD_FEATURE_EVENT_REMAP) K(UFFD_FEATURE_EVENT_REMOVE)
    K(UFFD_FEATURE_MISSING_HUGETLBFS) K(UFFD_FEATURE_MISSING_SHMEM) K(UFFD_FEATURE_EVENT_UNMAP) K(UFFD_FEATURE_SIGBUS)
    K(UFFD_FEATURE_THREAD_ID) K(UFFD_FEATURE_MINOR_HUGETLBFS) K(UFFD_FEATURE_MINOR_SHMEM) K(UFFD_FEATURE_EXACT_ADDRESS)
    K(UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
    return 0;
}
