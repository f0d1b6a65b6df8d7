// SPDX-License-Identifier: MIT
/*
 * uffd_helper: a process for userfaultfd scenarios that a .NET process cannot run in itself (fork, real user-mode
 * SIGBUS). The .NET side is the handler: it takes this process's userfaultfd with pidfd_getfd(2), reads its messages
 * and issues its ioctls; this process owns the memory and the faulting threads, and forks children that do the same.
 *
 * Protocol: one command a line on stdin, one reply a line on stdout (for process 0; "@N <command>" is relayed to the
 * child process N over a socketpair). Numbers are decimal or 0x-hex. Replies: "ok [values]", "err <errno>", or for
 * task commands "task <id> <tid>". Every call that may block in the kernel (an access that faults, madvise, mremap,
 * munmap, fork: each may wait for the handler) runs as a task on its own thread, so the command loop never blocks.
 *
 *   ready <pid> <xfer-fd> <xfer-size>    printed once at start; <xfer-fd> is a shared memfd for bulk data
 *   uffd <flags>                         userfaultfd(2)                      -> ok <fd>
 *   uffddev <flags>                      /dev/userfaultfd USERFAULTFD_IOC_NEW -> ok <fd>
 *   close <fd>                           close(2)                            -> ok
 *   memfd <size> <huge>                  memfd_create + ftruncate            -> ok <fd>
 *   gmem <size> <flags>                  KVM_CREATE_VM + KVM_CREATE_GUEST_MEMFD -> ok <fd>
 *   mmap <len> <prot> <flags> <fd> <off> mmap(2)                             -> ok <addr>
 *   pagemap <addr>                       /proc/self/pagemap entry            -> ok <entry>
 *   run <op> <args...>                   start a task                        -> task <id> <tid>
 *       read <addr> | write <addr> <byte>     one user-mode access; outcome "ok <byte>" or "sig <signo>"
 *       copyin <addr> <len> | copyout <addr> <len>  memcpy between <addr> and the xfer buffer; "ok 0" or "sig <signo>"
 *       madvise <addr> <len> <advice> | munmap <addr> <len> | mremap <old> <len> <new> (MAYMOVE|FIXED)
 *       fork                                  outcome "ok <N>": the child is process N
 *   join <id> <ms>                       -> done <outcome> | running
 *   blocked <id> <wchan-fragment> <ms>   -> yes | no   (the task sleeps in a kernel function containing the fragment)
 *   exit                                 a child exits; process 0 kills its children and exits
 *
 * Watchdogs: every process has PR_SET_PDEATHSIG (SIGKILL), so nothing outlives the .NET side; EOF on the command
 * channel ends the process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
/* include/uapi/linux/kvm.h (6.18); the installed header may predate guest_memfd. */
#define KVM_CREATE_VM_ _IO(0xAE, 0x01)
struct kvm_create_guest_memfd_ {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD_ _IOWR(0xAE, 0xd4, struct kvm_create_guest_memfd_)

#define XFER_SIZE (4UL << 20)
#define MAX_TASKS 4096
#define MAX_CHILDREN 4096

enum op { OP_READ, OP_WRITE, OP_COPYIN, OP_COPYOUT, OP_MADVISE, OP_MUNMAP, OP_MREMAP, OP_FORK };

struct task {
	pthread_t thread;
	enum op op;
	uint64_t a, b, c;
	volatile pid_t tid;
	volatile int done;
	char outcome[64];
};

static struct task tasks[MAX_TASKS];
static int ntasks;
static pthread_mutex_t tasks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { pid_t pid; int sock; } children[MAX_CHILDREN];
static int nchildren;
static unsigned char *xfer;
static int xfer_fd;
static int is_child;

static __thread sigjmp_buf fault_jmp;
static __thread volatile int fault_armed;

static void on_fault(int sig)
{
	if (fault_armed) {
		fault_armed = 0;
		siglongjmp(fault_jmp, sig);
	}
	_exit(128 + sig);
}

static uint64_t num(const char *s)
{
	return s ? strtoull(s, NULL, 0) : 0;
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void *task_main(void *arg);

static int start_task(enum op op, uint64_t a, uint64_t b, uint64_t c, char *reply, size_t n)
{
	pthread_mutex_lock(&tasks_lock);
	if (ntasks == MAX_TASKS) {
		pthread_mutex_unlock(&tasks_lock);
		snprintf(reply, n, "err %d", ENOSPC);
		return -1;
	}
	int id = ntasks++;
	pthread_mutex_unlock(&tasks_lock);
	struct task *t = &tasks[id];
	memset(t, 0, sizeof(*t));
	t->op = op;
	t->a = a;
	t->b = b;
	t->c = c;
	if (pthread_create(&t->thread, NULL, task_main, t)) {
		snprintf(reply, n, "err %d", errno);
		return -1;
	}
	pthread_detach(t->thread);
	while (!t->tid)
		sched_yield();
	snprintf(reply, n, "task %d %d", id, t->tid);
	return id;
}

static void serve(int in, int out);

static void do_fork(struct task *t)
{
	int sv[2];
	if (is_child || nchildren == MAX_CHILDREN) {
		snprintf(t->outcome, sizeof(t->outcome), "err %d", EINVAL);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		snprintf(t->outcome, sizeof(t->outcome), "err %d", errno);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(t->outcome, sizeof(t->outcome), "err %d", errno);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0) {
		/* Only this thread exists in the child: a fresh task table, commands from the socket. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		is_child = 1;
		pthread_mutex_init(&tasks_lock, NULL);
		ntasks = 0;
		nchildren = 0;
		serve(sv[1], sv[1]);
		_exit(0);
	}
	close(sv[1]);
	int n = nchildren;
	children[n].pid = pid;
	children[n].sock = sv[0];
	nchildren = n + 1;
	snprintf(t->outcome, sizeof(t->outcome), "ok %d", n + 1);
	t->done = 1;
	/* PR_SET_PDEATHSIG follows the thread that forked: stay until the child is gone. */
	waitpid(pid, NULL, 0);
}

static void *task_main(void *arg)
{
	struct task *t = arg;
	t->tid = gettid_();
	int sig;
	if (t->op == OP_FORK) {
		do_fork(t);
		t->done = 1;
		return NULL;
	}
	if (t->op <= OP_COPYOUT) {
		sig = sigsetjmp(fault_jmp, 1);
		if (sig) {
			snprintf(t->outcome, sizeof(t->outcome), "sig %d", sig);
			t->done = 1;
			return NULL;
		}
		fault_armed = 1;
	}
	long r = 0;
	unsigned v = 0;
	switch (t->op) {
	case OP_READ:
		v = *(volatile uint8_t *)(uintptr_t)t->a;
		break;
	case OP_WRITE:
		*(volatile uint8_t *)(uintptr_t)t->a = (uint8_t)t->b;
		v = (uint8_t)t->b;
		break;
	case OP_COPYIN:
		if (t->b > XFER_SIZE) { r = -1; errno = EINVAL; break; }
		memcpy((void *)(uintptr_t)t->a, xfer, t->b);
		break;
	case OP_COPYOUT:
		if (t->b > XFER_SIZE) { r = -1; errno = EINVAL; break; }
		memcpy(xfer, (void *)(uintptr_t)t->a, t->b);
		break;
	case OP_MADVISE:
		r = madvise((void *)(uintptr_t)t->a, t->b, (int)t->c);
		break;
	case OP_MUNMAP:
		r = munmap((void *)(uintptr_t)t->a, t->b);
		break;
	case OP_MREMAP: {
		void *p = mremap((void *)(uintptr_t)t->a, t->b, t->b, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)t->c);
		r = p == MAP_FAILED ? -1 : 0;
		v = 0;
		break;
	}
	default:
		break;
	}
	fault_armed = 0;
	if (r < 0)
		snprintf(t->outcome, sizeof(t->outcome), "err %d", errno);
	else
		snprintf(t->outcome, sizeof(t->outcome), "ok %u", v);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static struct task *task_of(const char *id)
{
	long i = id ? strtol(id, NULL, 0) : -1;
	return i >= 0 && i < ntasks ? &tasks[i] : NULL;
}

static int wchan_has(pid_t tid, const char *fragment)
{
	char path[64], buf[128];
	snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strstr(buf, fragment) != NULL;
}

static uint64_t pagemap(uint64_t addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), (off_t)(addr / (uint64_t)sysconf(_SC_PAGESIZE) * 8)) != sizeof(e))
		e = 0;
	close(fd);
	return e;
}

static int create_gmem(uint64_t size, uint64_t flags)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return -1;
	int vm = ioctl(kvm, KVM_CREATE_VM_, 0);
	close(kvm);
	if (vm < 0)
		return -1;
	struct kvm_create_guest_memfd_ g = { .size = size, .flags = flags };
	int fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD_, &g);
	int e = errno;
	close(vm); /* the guest_memfd keeps the VM alive */
	errno = e;
	return fd;
}

static int read_line(int fd, char *buf, size_t n)
{
	size_t i = 0;
	while (i + 1 < n) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[i++] = c;
	}
	buf[i] = 0;
	return (int)i;
}

static void write_line(int fd, const char *s)
{
	size_t len = strlen(s);
	char nl = '\n';
	while (len) {
		ssize_t w = write(fd, s, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(3);
		s += w;
		len -= (size_t)w;
	}
	while (write(fd, &nl, 1) < 0 && errno == EINTR)
		;
}

static void command(char *line, char *reply, size_t n)
{
	char *save = NULL, *argv[8] = { 0 };
	int argc = 0;
	for (char *p = strtok_r(line, " ", &save); p && argc < 8; p = strtok_r(NULL, " ", &save))
		argv[argc++] = p;
	const char *c = argv[0] ? argv[0] : "";
	long r;
	snprintf(reply, n, "err %d", EINVAL);
	if (!strcmp(c, "uffd")) {
		r = syscall(SYS_userfaultfd, (int)num(argv[1]));
		if (r < 0)
			snprintf(reply, n, "err %d", errno);
		else
			snprintf(reply, n, "ok %ld", r);
	} else if (!strcmp(c, "uffddev")) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		r = dev < 0 ? -1 : ioctl(dev, USERFAULTFD_IOC_NEW, (int)num(argv[1]));
		int e = errno;
		if (dev >= 0)
			close(dev);
		if (r < 0)
			snprintf(reply, n, "err %d", e);
		else
			snprintf(reply, n, "ok %ld", r);
	} else if (!strcmp(c, "close")) {
		if (close((int)num(argv[1])))
			snprintf(reply, n, "err %d", errno);
		else
			snprintf(reply, n, "ok");
	} else if (!strcmp(c, "memfd")) {
		int fd = memfd_create("uffd-helper", MFD_CLOEXEC | (num(argv[2]) ? MFD_HUGETLB : 0));
		if (fd < 0 || ftruncate(fd, (off_t)num(argv[1])))
			snprintf(reply, n, "err %d", errno);
		else
			snprintf(reply, n, "ok %d", fd);
	} else if (!strcmp(c, "gmem")) {
		int fd = create_gmem(num(argv[1]), num(argv[2]));
		if (fd < 0)
			snprintf(reply, n, "err %d", errno);
		else
			snprintf(reply, n, "ok %d", fd);
	} else if (!strcmp(c, "mmap")) {
		void *p = mmap(NULL, num(argv[1]), (int)num(argv[2]), (int)num(argv[3]), (int)(int64_t)num(argv[4]), (off_t)num(argv[5]));
		if (p == MAP_FAILED)
			snprintf(reply, n, "err %d", errno);
		else
			snprintf(reply, n, "ok %" PRIu64, (uint64_t)(uintptr_t)p);
	} else if (!strcmp(c, "pagemap")) {
		snprintf(reply, n, "ok %" PRIu64, pagemap(num(argv[1])));
	} else if (!strcmp(c, "run")) {
		static const char *ops[] = { "read", "write", "copyin", "copyout", "madvise", "munmap", "mremap", "fork" };
		for (int i = 0; i < 8; i++)
			if (argv[1] && !strcmp(argv[1], ops[i]))
				start_task((enum op)i, num(argv[2]), num(argv[3]), num(argv[4]), reply, n);
	} else if (!strcmp(c, "join")) {
		struct task *t = task_of(argv[1]);
		if (t) {
			long ms = (long)num(argv[2]);
			for (long w = 0; !__atomic_load_n(&t->done, __ATOMIC_ACQUIRE) && w < ms; w++)
				sleep_ms(1);
			if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE))
				snprintf(reply, n, "done %s", t->outcome);
			else
				snprintf(reply, n, "running");
		}
	} else if (!strcmp(c, "blocked")) {
		struct task *t = task_of(argv[1]);
		if (t && argv[2]) {
			long ms = (long)num(argv[3]);
			int yes = 0;
			for (long w = 0; w <= ms && !__atomic_load_n(&t->done, __ATOMIC_ACQUIRE); w++) {
				if ((yes = wchan_has(t->tid, argv[2])))
					break;
				sleep_ms(1);
			}
			snprintf(reply, n, yes ? "yes" : "no");
		}
	} else if (!strcmp(c, "pid")) {
		snprintf(reply, n, "ok %d", getpid());
	}
}

static void relay(int child, const char *cmd, char *reply, size_t n)
{
	if (child < 1 || child > nchildren || children[child - 1].sock < 0) {
		snprintf(reply, n, "err %d", ESRCH);
		return;
	}
	int s = children[child - 1].sock;
	write_line(s, cmd);
	if (read_line(s, reply, n) < 0) {
		close(s);
		children[child - 1].sock = -1;
		snprintf(reply, n, "err %d", ESRCH);
	}
}

static void serve(int in, int out)
{
	static char line[4096], reply[4096];
	while (read_line(in, line, sizeof(line)) >= 0) {
		if (!strcmp(line, "exit"))
			break;
		if (line[0] == '@') {
			char *rest = strchr(line, ' ');
			if (!rest) {
				write_line(out, "err 22");
				continue;
			}
			*rest++ = 0;
			relay(atoi(line + 1), rest, reply, sizeof(reply));
		} else {
			command(line, reply, sizeof(reply));
		}
		write_line(out, reply);
	}
}

int main(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	xfer_fd = memfd_create("uffd-helper-xfer", 0);
	if (xfer_fd < 0 || ftruncate(xfer_fd, XFER_SIZE))
		return 2;
	xfer = mmap(NULL, XFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, xfer_fd, 0);
	if (xfer == MAP_FAILED)
		return 2;
	char ready[96];
	snprintf(ready, sizeof(ready), "ready %d %d %lu", getpid(), xfer_fd, XFER_SIZE);
	write_line(1, ready);
	serve(0, 1);
	for (int i = 0; i < nchildren; i++)
		if (children[i].pid > 0)
			kill(children[i].pid, SIGKILL);
	for (int i = 0; i < nchildren; i++)
		if (children[i].pid > 0)
			waitpid(children[i].pid, NULL, 0);
	return 0;
}
