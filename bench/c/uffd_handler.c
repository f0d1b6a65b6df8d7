// The minimal C userfaultfd handler the .NET handler is measured against (bench/, issue 7, part 4).
// Built by the benchmark with gcc at run time: gcc -O2 -pthread -o uffd_handler uffd_handler.c
//
// Same work as PluginMm.Bench's CopyServer on HostUserfaultfd: a uffd from /dev/userfaultfd (syscall fallback), an
// anonymous private region registered MISSING, one handler thread doing poll + read (up to BATCH messages) +
// UFFDIO_COPY (a WINDOW of pages from the faulting page, clamped to the faulter's slice; EEXIST -> UFFDIO_WAKE), while
// THREADS faulting threads each write one byte to every page of their slice, in order. "plain" mode touches plain
// anonymous memory (no uffd): the first-touch page-fault baseline.
//
// usage: uffd_handler uffd|plain PAGES THREADS WINDOW BATCH
// prints: pages=N threads=T window=W batch=B seconds=S pages_per_sec=P cpu_ns_per_page=C faults=F copies=C verified=1
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static long page_size;
static char *region, *source;
static long pages, threads, window_pages, batch;
static int uffd = -1;
static atomic_int stop_handler;
static long faults, copies;
static pthread_barrier_t start_barrier;

static void die(const char *what)
{
    fprintf(stderr, "uffd_handler: %s: %s\n", what, strerror(errno));
    exit(2);
}

// CPU time of the whole process (every thread, user + system), as the .NET side measures it with getrusage.
static double cpu_now(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_uffd(void)
{
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
        int fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        close(dev);
        if (fd >= 0)
            return fd;
    }
    return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
}

static void serve(const struct uffd_msg *msg)
{
    unsigned long slice = (unsigned long)(pages / threads) * page_size;
    unsigned long addr = msg->arg.pagefault.address & ~(page_size - 1);
    unsigned long off = addr - (unsigned long)region;
    unsigned long slice_end = (off / slice + 1) * slice;
    unsigned long len = window_pages * page_size;
    if (off + len > slice_end)
        len = slice_end - off;
    struct uffdio_copy copy = { .dst = addr, .src = (unsigned long)source, .len = len, .mode = 0 };
    faults++;
    if (ioctl(uffd, UFFDIO_COPY, &copy) == 0) {
        copies++;
        return;
    }
    if (errno == EEXIST || (errno == EAGAIN && copy.copy > 0)) {
        // Stale message (page already there) or a partial copy: wake the faulter, it retries.
        struct uffdio_range range = { .start = addr, .len = page_size };
        if (ioctl(uffd, UFFDIO_WAKE, &range) != 0)
            die("UFFDIO_WAKE");
        return;
    }
    die("UFFDIO_COPY");
}

static void *handler(void *arg)
{
    (void)arg;
    struct uffd_msg msgs[64];
    struct pollfd pfd = { .fd = uffd, .events = POLLIN };
    while (!atomic_load(&stop_handler)) {
        int n = poll(&pfd, 1, 100);
        if (n < 0 && errno != EINTR)
            die("poll");
        if (n <= 0)
            continue;
        ssize_t r = read(uffd, msgs, batch * sizeof(msgs[0]));
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            die("read");
        }
        for (long i = 0; i < r / (ssize_t)sizeof(msgs[0]); i++) {
            if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
                fprintf(stderr, "uffd_handler: unexpected event %u\n", msgs[i].event);
                exit(2);
            }
            serve(&msgs[i]);
        }
    }
    return NULL;
}

static void *toucher(void *arg)
{
    long t = (long)arg;
    long per = pages / threads;
    volatile char *p = region + t * per * page_size;
    pthread_barrier_wait(&start_barrier);
    for (long i = 0; i < per; i++)
        p[i * page_size] = 1;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s uffd|plain PAGES THREADS WINDOW BATCH\n", argv[0]);
        return 2;
    }
    int use_uffd = strcmp(argv[1], "uffd") == 0;
    pages = atol(argv[2]);
    threads = atol(argv[3]);
    window_pages = atol(argv[4]);
    batch = atol(argv[5]);
    if (pages <= 0 || threads <= 0 || threads > 64 || window_pages <= 0 || batch <= 0 || batch > 64 || pages % threads) {
        fprintf(stderr, "uffd_handler: bad arguments\n");
        return 2;
    }
    page_size = sysconf(_SC_PAGESIZE);
    size_t len = (size_t)pages * page_size;
    region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        die("mmap region");
    source = mmap(NULL, window_pages * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (source == MAP_FAILED)
        die("mmap source");
    memset(source, 0x5a, window_pages * page_size);

    pthread_t h = 0;
    if (use_uffd) {
        uffd = open_uffd();
        if (uffd < 0)
            die("userfaultfd");
        struct uffdio_api api = { .api = UFFD_API, .features = 0 };
        if (ioctl(uffd, UFFDIO_API, &api) != 0)
            die("UFFDIO_API");
        struct uffdio_register reg = { .range = { .start = (unsigned long)region, .len = len },
                                       .mode = UFFDIO_REGISTER_MODE_MISSING };
        if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
            die("UFFDIO_REGISTER");
        if (pthread_create(&h, NULL, handler, NULL) != 0)
            die("pthread_create handler");
    }

    pthread_t ts[64];
    pthread_barrier_init(&start_barrier, NULL, (unsigned)threads + 1);
    for (long t = 0; t < threads; t++)
        if (pthread_create(&ts[t], NULL, toucher, (void *)t) != 0)
            die("pthread_create toucher");
    double c0 = cpu_now();
    pthread_barrier_wait(&start_barrier);
    double t0 = now();
    for (long t = 0; t < threads; t++)
        pthread_join(ts[t], NULL);
    double seconds = now() - t0;
    double cpu = cpu_now() - c0;
    if (use_uffd) {
        atomic_store(&stop_handler, 1);
        pthread_join(h, NULL);
    }

    // Every page holds what the handler copied (0x5a) behind the byte the toucher wrote (1).
    int verified = 1;
    for (long i = 0; i < pages; i++) {
        char want0 = 1, want1 = use_uffd ? 0x5a : 0;
        if (region[i * page_size] != want0 || region[i * page_size + 1] != want1) {
            verified = 0;
            break;
        }
    }
    printf("pages=%ld threads=%ld window=%ld batch=%ld seconds=%.6f pages_per_sec=%.0f cpu_ns_per_page=%.1f faults=%ld copies=%ld verified=%d\n",
           pages, threads, window_pages, batch, seconds, pages / seconds, cpu * 1e9 / pages, faults, copies, verified);
    return verified ? 0 : 1;
}
