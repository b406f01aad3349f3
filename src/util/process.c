/*
 * process.c - local child processes: spawning with chosen stdio, waiting
 * through pidfds, killing process groups, and the few blocking primitives
 * (atex_wait_fd, atex_write_all) that every other wait in atex is built on.
 *
 * Why it is built this way:
 *
 *  - The child is created with clone3(CLONE_PIDFD), so the handle owns a
 *    pidfd from the first instant: waiting is a poll() on the pidfd plus a
 *    cancellation eventfd, with no SIGCHLD handler, no sleeping loop and no
 *    race with pid reuse. Where clone3 is filtered out (some container
 *    seccomp profiles, valgrind) fork() plus pidfd_open() is used instead;
 *    that is race-free too because only this handle ever reaps the child.
 *    Where pidfd_open is missing as well (valgrind 3.19), a small watcher
 *    thread per process blocks in waitid(WNOWAIT) and then makes an
 *    eventfd readable: the "dedicated reaper" of DESIGN.md, behind the
 *    same descriptor, so every wait stays one poll(). The watcher does not
 *    reap: reaping stays under the handle's mutex (see kill).
 *  - Once clone3 is known to work, the child shares our memory until its
 *    exec (CLONE_VM | CLONE_VFORK, on a stack of its own, as glibc's
 *    posix_spawn does), and the calling thread waits for that exec. A
 *    fork-like clone copies the page tables of the whole process and makes
 *    every page copy-on-write, with TLB flushes on each core running one of
 *    our threads: its cost grows with the program's memory and threads (a
 *    Python program, a run driving 100 systems) and was the largest cost
 *    of a spawn there. Valgrind cannot run such a child; it filters clone3
 *    out, so it never gets here.
 *  - Everything the child needs (environment array, the PATH candidates for
 *    argv[0], its stdio descriptors) is prepared before the clone, so the
 *    child only makes async-signal-safe system calls: the library may be
 *    used by many threads and a child of a threaded process must not
 *    allocate or take locks.
 *  - Exec failures (and chdir/dup2 failures) come back to the parent as an
 *    (stage, errno) record through an O_CLOEXEC pipe: EOF means the exec
 *    succeeded, so atex_process_spawn returns only once the program runs,
 *    and a missing program is a clean ATEX_ENOTFOUND naming it.
 *  - The child leads its own process group, so atex_process_kill reaches
 *    what a shell command started in the background. The group is only
 *    signalled while the leader is unreaped (under the handle's mutex):
 *    until then its pid, hence the group id, cannot be reused.
 *  - The child gets default dispositions for every signal and an empty
 *    mask: a program blocking SIGINT for sigwait (DESIGN.md) or ignoring
 *    SIGPIPE must not pass that on. All signals are blocked in the parent
 *    thread around the clone so that no handler of ours runs in the child
 *    before the reset.
 *  - Descriptors: everything atex opens is O_CLOEXEC, and the child marks
 *    every descriptor above 2 close-on-exec (close_range) before exec, so
 *    descriptors a program opened without O_CLOEXEC do not leak either.
 *  - The parent's pipe ends are left *blocking*. A descriptor shares its
 *    O_NONBLOCK flag with every process it is later handed to (tar's
 *    stdout becoming podman's stdin), and ordinary programs fail on a
 *    non-blocking stdin. Callers wait with atex_wait_fd and then make one
 *    read() (which returns what is there) or use atex_write_all (which
 *    writes at most PIPE_BUF bytes per readiness, so it never blocks).
 *    atex_process_communicate, which keeps its pipes to itself, switches
 *    them to non-blocking for throughput.
 *  - Writing to a pipe whose reader died raises SIGPIPE, and the library
 *    installs no handlers: writes run with SIGPIPE blocked in the calling
 *    thread, and a SIGPIPE they caused is consumed (sigtimedwait) so the
 *    program sees only EPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "process.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif
#endif

/* What runs in the child: on a stack ASan does not know (a shared-memory
 * child, below), instrumented code would warn on the command's stderr
 * before each call that does not return (exec, _exit). */
#ifdef HAVE_ASAN
#define CHILD_CODE __attribute__((no_sanitize_address))
#else
#define CHILD_CODE
#endif

extern char **environ;

struct atex_process {
	pid_t pid;
	int pidfd;    /* readable once the process has ended */
	bool watched; /* pidfd is an eventfd fed by `watcher` */
	pthread_t watcher;
	int fds[3]; /* the parent's pipe ends, or -1 */
	char *name; /* argv[0], for messages */
	/* Guards reaped/status: waits may run in several threads and a kill
	 * must never reach a pid that has been reaped (and maybe reused). */
	pthread_mutex_t lock;
	bool reaped;
	int status;
	/* For a client running a command elsewhere (ssh, podman): how to
	 * signal that command too. Set once, right after the spawn. */
	atex_process_kill_hook kill_hook;
	void *kill_data;
	void (*kill_data_free)(void *data);
	/* Called once when the process is reaped or freed; guarded by lock
	 * (cleared when taken, so it runs once). */
	atex_process_exit_hook exit_hook;
	void *exit_data;
	/* atex_process_communicate on timeout or cancel: this signal first
	 * and `stop_grace_ms` to go, then SIGKILL (0: SIGKILL at once). */
	int stop_signal;
	int stop_grace_ms;
};

/* What the child reports when it cannot exec. */
enum child_stage { STAGE_SETUP = 1, STAGE_CHDIR, STAGE_EXEC };

struct child_report {
	int stage;
	int err;
};

/* Everything the child needs, prepared before the clone. */
struct spawn_plan {
	const char *const *argv;
	char **paths; /* candidates for argv[0], NULL-terminated */
	char **envp;
	const char *cwd;
	int stdio[3];  /* descriptors >= 3 for 0, 1, 2; -1: inherit */
	int report_fd; /* write end of the exec-report pipe, >= 3 */
};

/* ------------------------------------------------------------------------
 * Time and the one blocking primitive.
 */

static double deadline_from(int timeout_ms)
{
	return timeout_ms < 0 ? -1.0 : atex_monotonic_ms() + timeout_ms;
}

/* Milliseconds left until `deadline` for poll(): -1 for none, >= 0. */
static int remaining_ms(double deadline)
{
	double left;

	if (deadline < 0)
		return -1;
	left = deadline - atex_monotonic_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left + 1;
}

int atex_wait_fd(int fd, short events, int timeout_ms, atex_cancel *cancel)
{
	struct pollfd pfd[2] = {
		{.fd = fd, .events = events},
		{.fd = atex_cancel_fd(cancel), .events = POLLIN},
	};
	double deadline = deadline_from(timeout_ms);
	int n;

	for (;;) {
		n = poll(pfd, cancel ? 2 : 1, remaining_ms(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return atex_error_set(ATEX_EIO,
					      "poll on descriptor %d: %s", fd,
					      strerror(errno));
		/* Cancel wins over readiness: "every wait returns
		 * ATEX_ECANCELED once the token fired". */
		if (cancel && pfd[1].revents)
			return atex_error_set(ATEX_ECANCELED,
					      "wait on descriptor %d canceled",
					      fd);
		if (pfd[0].revents & POLLNVAL)
			return atex_error_set(ATEX_EIO,
					      "wait on descriptor %d: not open",
					      fd);
		/* POLLHUP/POLLERR too: the caller's read or write sees it. */
		if (pfd[0].revents)
			return 0;
		if (n == 0 && remaining_ms(deadline) == 0)
			return atex_error_set(ATEX_ETIMEDOUT,
					      "wait on descriptor %d timed out "
					      "after %d ms",
					      fd, timeout_ms);
	}
}

/* ------------------------------------------------------------------------
 * SIGPIPE: blocked around writes, consumed when a write caused it.
 */

struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void sigpipe_restore(struct sigpipe_guard *g, bool got_epipe)
{
	const struct timespec zero = {0, 0};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (got_epipe && !g->was_pending)
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int atex_write_all(int fd, const void *buf, size_t len, atex_cancel *cancel)
{
	struct sigpipe_guard guard;
	const char *p = buf;
	size_t chunk = PIPE_BUF;
	int flags = fcntl(fd, F_GETFL);
	bool epipe = false;
	ssize_t n;
	int rc = 0;

	/* After POLLOUT a blocking pipe takes PIPE_BUF bytes without
	 * blocking; a non-blocking descriptor takes what fits. */
	if (flags >= 0 && (flags & O_NONBLOCK))
		chunk = SIZE_MAX;
	sigpipe_block(&guard);
	while (len > 0) {
		rc = atex_wait_fd(fd, POLLOUT, -1, cancel);
		if (rc)
			goto out;
		n = write(fd, p, len < chunk ? len : chunk);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			epipe = errno == EPIPE;
			rc = atex_error_set(ATEX_EIO,
					    "write to descriptor %d: %s", fd,
					    strerror(errno));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
out:
	sigpipe_restore(&guard, epipe);
	return rc;
}

int atex_shell_quote(struct atex_buf *b, const char *arg)
{
	size_t start = b->len;
	int rc;

	rc = atex_buf_putc(b, '\'');
	for (const char *p = arg; !rc && *p; p++)
		rc = *p == '\'' ? atex_buf_puts(b, "'\\''")
				: atex_buf_putc(b, *p);
	if (!rc)
		rc = atex_buf_putc(b, '\'');
	if (rc) {
		/* Leave the buffer as it was, not with half an argument. */
		b->len = start;
		if (b->ptr)
			b->ptr[start] = '\0';
	}
	return rc;
}

/* ------------------------------------------------------------------------
 * Preparing a spawn (parent side, may allocate).
 */

/* Moves fd above the standard descriptors, so the child's dup2() onto
 * 0, 1, 2 can never overwrite a descriptor it still has to read. */
static int fd_above_stdio(int fd)
{
	int moved;

	if (fd < 0 || fd > 2)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return moved;
}

/* The descriptors for stream `which` (0, 1, 2) as `spec` asks: the child's
 * in *child (-1: inherit) and the parent's pipe end in *parent (or -1). */
static int stdio_prepare(int which, int spec, int *child, int *parent,
			 const char *name)
{
	int fds[2];

	*child = -1;
	*parent = -1;
	if (spec == ATEX_STDIO_INHERIT)
		return 0;
	if (spec == ATEX_STDIO_NULL) {
		*child = fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
		if (*child < 0)
			goto fail;
		return 0;
	}
	if (spec >= 0) {
		*child = fcntl(spec, F_DUPFD_CLOEXEC, 3);
		if (*child < 0 && errno == EBADF)
			return atex_error_set(ATEX_EINVAL,
					      "'%s': descriptor %d for stream "
					      "%d is not open",
					      name, spec, which);
		if (*child < 0)
			goto fail;
		return 0;
	}
	if (spec != ATEX_STDIO_PIPE)
		return atex_error_set(ATEX_EINVAL,
				      "'%s': invalid stdio value %d for "
				      "stream %d",
				      name, spec, which);
	if (pipe2(fds, O_CLOEXEC) < 0)
		goto fail;
	/* stdin: the child reads; stdout, stderr: the child writes. */
	*child = fd_above_stdio(fds[which == 0 ? 0 : 1]);
	*parent = fds[which == 0 ? 1 : 0];
	if (*child < 0) {
		close(*parent);
		*parent = -1;
		goto fail;
	}
	return 0;
fail:
	return atex_error_set(ATEX_EIO, "'%s': setting up stream %d: %s", name,
			      which, strerror(errno));
}

static bool env_overridden(const char *entry, const char *const *extra)
{
	size_t len = strcspn(entry, "=");

	for (; *extra; extra++)
		if (strncmp(*extra, entry, len) == 0 &&
		    ((*extra)[len] == '=' || (*extra)[len] == '\0'))
			return true;
	return false;
}

/* The child's environment: ours minus what `extra` overrides, plus
 * `extra`. The array is new; the strings are borrowed. */
static char **env_build(const char *const *extra)
{
	size_t n_env = 0, n_extra = 0, k = 0;
	char **envp;

	while (environ && environ[n_env])
		n_env++;
	while (extra[n_extra])
		n_extra++;
	envp = atex_calloc(n_env + n_extra + 1, sizeof(*envp));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n_env; i++)
		if (!env_overridden(environ[i], extra))
			envp[k++] = environ[i];
	for (size_t i = 0; i < n_extra; i++)
		envp[k++] = (char *)extra[i];
	return envp;
}

/* The paths to try for `prog`, as execvp() would (PATH of this process;
 * an empty entry is the working directory). One allocation: the pointer
 * array is followed by the strings. */
static char **paths_build(const char *prog)
{
	const char *path = getenv("PATH");
	size_t n = 1, len = strlen(prog), size;
	char **paths, *s;

	if (strchr(prog, '/')) {
		paths = atex_malloc(2 * sizeof(*paths) + len + 1);
		if (!paths)
			return NULL;
		paths[0] = memcpy(paths + 2, prog, len + 1);
		paths[1] = NULL;
		return paths;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p; p++)
		n += *p == ':';
	size = (n + 1) * sizeof(*paths) + strlen(path) + n * (len + 3);
	paths = atex_malloc(size);
	if (!paths)
		return NULL;
	s = (char *)(paths + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t dir_len = strcspn(path, ":");

		paths[i] = s;
		if (dir_len == 0)
			s += sprintf(s, "%s", prog) + 1;
		else
			s += sprintf(s, "%.*s/%s", (int)dir_len, path, prog) +
			     1;
		path += dir_len + (path[dir_len] == ':');
	}
	paths[n] = NULL;
	return paths;
}

/* ------------------------------------------------------------------------
 * The child: async-signal-safe system calls only.
 */

CHILD_CODE static _Noreturn void child_fail(int fd, int stage, int err)
{
	struct child_report report = {stage, err};

	/* Nothing to do if this fails: the parent then sees exit 127. */
	if (write(fd, &report, sizeof(report)) < 0)
		_exit(127);
	_exit(127);
}

/*
 * glibc refuses to change the signals it reserves for itself (32 and 33),
 * so one the program inherited as ignored would stay ignored in the
 * command; the raw system call resets them. The kernel's sigaction with
 * SIG_DFL, no flags and an empty mask is all zeros on every architecture.
 */
CHILD_CODE static void reset_reserved_signals(void)
{
	unsigned long long ksa[4] = {0, 0, 0, 0};

	/* The last argument is the size of the kernel's sigset: 64 bits. */
	for (int sig = 32; sig < SIGRTMIN; sig++)
		syscall(SYS_rt_sigaction, sig, ksa, NULL, (size_t)8);
}

CHILD_CODE static _Noreturn void child_run(const struct spawn_plan *plan)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t empty;
	int err = ENOENT;

	/* Errors are expected (SIGKILL, SIGSTOP, libc-reserved signals). */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	reset_reserved_signals();
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &empty, NULL);
	if (setpgid(0, 0) < 0)
		child_fail(plan->report_fd, STAGE_SETUP, errno);
	for (int i = 0; i < 3; i++)
		if (plan->stdio[i] >= 0 && dup2(plan->stdio[i], i) < 0)
			child_fail(plan->report_fd, STAGE_SETUP, errno);
	/* Descriptors opened without O_CLOEXEC by the program must not
	 * leak into the command either. Old kernels: best effort. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	if (plan->cwd && chdir(plan->cwd) < 0)
		child_fail(plan->report_fd, STAGE_CHDIR, errno);
	for (char **path = plan->paths; *path; path++) {
		execve(*path, (char *const *)plan->argv, plan->envp);
		/* As execvp(): keep looking past missing entries and
		 * remember that one was not executable. */
		if (errno == EACCES)
			err = EACCES;
		else if (errno != ENOENT && errno != ENOTDIR)
			child_fail(plan->report_fd, STAGE_EXEC, errno);
	}
	child_fail(plan->report_fd, STAGE_EXEC, err);
}

/* ------------------------------------------------------------------------
 * The clone and the parent's side.
 */

/* What the kernel (or valgrind, or a seccomp filter) lets us use. A cache
 * of a property of the system, the same for every caller: probing costs a
 * failing system call (and a valgrind warning) per spawn otherwise.
 * PIDFD_SHARED: clone3 worked, and so may a clone sharing our memory. */
enum { PIDFD_UNKNOWN, PIDFD_SHARED, PIDFD_CLONE3, PIDFD_OPEN, PIDFD_NONE };
static atomic_int pidfd_support = PIDFD_UNKNOWN;

static bool unsupported(int err)
{
	return err == ENOSYS || err == EPERM;
}

/* The child's stack when it shares our memory: child_run needs little,
 * sanitizer builds a few times more. */
enum { CHILD_STACK_SIZE = 256 * 1024 };

CHILD_CODE static int child_entry(void *plan)
{
	child_run(plan);
}

/* The shared-memory clone (see the top of the file). Returns the pid or
 * -1 with errno; the child never returns here. */
static pid_t clone_shared(int *pidfd, const struct spawn_plan *plan)
{
	void *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	pid_t pid;
	int err;

	if (stack == MAP_FAILED)
		return -1;
	/* The stack grows down on every architecture Linux has clone()
	 * with a stack argument for; CLONE_PIDFD puts the pidfd into the
	 * parent_tid argument. */
	pid = clone(child_entry, (char *)stack + CHILD_STACK_SIZE,
		    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD,
		    (void *)plan, pidfd);
	err = errno;
#ifdef HAVE_ASAN
	/* Whatever the child's libc calls left poisoned in the shadow of
	 * this range must not reach the next mapping there. */
	ASAN_UNPOISON_MEMORY_REGION(stack, CHILD_STACK_SIZE);
#endif
	munmap(stack, CHILD_STACK_SIZE);
	errno = err;
	return pid;
}

/* Starts the child with a pidfd: clone3 where allowed, else fork and
 * pidfd_open (only we reap the child, so its pid stays valid meanwhile),
 * else fork with *pidfd left at -1 (the caller starts a watcher).
 * Returns the pid (0 in the child) or -1 with errno. */
static pid_t clone_with_pidfd(int *pidfd, const struct spawn_plan *plan)
{
	struct clone_args args = {
		.flags = CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = SIGCHLD,
	};
	int support = atomic_load(&pidfd_support);
	pid_t pid;

	if (support == PIDFD_SHARED) {
		pid = clone_shared(pidfd, plan);
		if (pid >= 0 || !(unsupported(errno) || errno == EINVAL))
			return pid;
		atomic_store(&pidfd_support, PIDFD_CLONE3);
	}
	if (support <= PIDFD_CLONE3) {
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid > 0 && support == PIDFD_UNKNOWN)
			atomic_store(&pidfd_support, PIDFD_SHARED);
		if (pid >= 0 || !unsupported(errno))
			return pid;
		atomic_store(&pidfd_support, PIDFD_OPEN);
	}
	pid = fork();
	if (pid <= 0 || atomic_load(&pidfd_support) == PIDFD_NONE)
		return pid;
	*pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (*pidfd < 0 && unsupported(errno))
		atomic_store(&pidfd_support, PIDFD_NONE);
	if (*pidfd >= 0 || unsupported(errno))
		return pid;
	/* The caller's error report is what matters; errno is kept. */
	{
		int err = errno;

		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = err;
	}
	return -1;
}

/* The watcher: waits for the end without reaping, then wakes the polls. */
static void *watch_exit(void *arg)
{
	atex_process *p = arg;
	uint64_t one = 1;
	siginfo_t info;

	while (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOWAIT) < 0 &&
	       errno == EINTR)
		;
	if (write(p->pidfd, &one, sizeof(one)) < 0)
		return NULL; /* cannot happen on a fresh eventfd */
	return NULL;
}

/* Without pidfds: an eventfd made readable by a watcher thread. It runs
 * with every signal blocked, as signals are the program's business. */
static int start_watcher(atex_process *p)
{
	sigset_t all, old;
	int err;

	p->pidfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->pidfd < 0)
		return atex_error_set(ATEX_EIO, "'%s': eventfd: %s", p->name,
				      strerror(errno));
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&p->watcher, NULL, watch_exit, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return atex_error_set(ATEX_EIO, "'%s': watcher thread: %s",
				      p->name, strerror(err));
	p->watched = true;
	return 0;
}

/* Reads the child's exec report: 0 when the exec succeeded (EOF). */
static int read_report(int fd, struct child_report *report)
{
	ssize_t n;

	do {
		n = read(fd, report, sizeof(*report));
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*report) ? -1 : 0;
}

static int report_error(const struct child_report *report,
			const struct spawn_plan *plan)
{
	const char *prog = plan->argv[0];
	const char *why = strerror(report->err);

	if (report->stage == STAGE_CHDIR)
		return atex_error_set(report->err == ENOENT ? ATEX_ENOTFOUND
							    : ATEX_EIO,
				      "'%s': working directory '%s': %s", prog,
				      plan->cwd, why);
	if (report->stage == STAGE_SETUP)
		return atex_error_set(
			ATEX_EIO, "'%s': setting up the child: %s", prog, why);
	if (report->err == ENOENT)
		return atex_error_set(ATEX_ENOTFOUND,
				      "program '%s' not found%s", prog,
				      strchr(prog, '/') ? "" : " in PATH");
	return atex_error_set(ATEX_EIO, "cannot execute '%s': %s", prog, why);
}

static void reap_blocking(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Clones and execs the plan; fills p->pid and p->pidfd. */
static int start_child(atex_process *p, struct spawn_plan *plan)
{
	struct child_report report;
	sigset_t all, old;
	int report_pipe[2];
	pid_t pid;
	int rc = 0;

	if (pipe2(report_pipe, O_CLOEXEC) < 0)
		return atex_error_set(ATEX_EIO, "'%s': pipe: %s", p->name,
				      strerror(errno));
	plan->report_fd = fd_above_stdio(report_pipe[1]);
	if (plan->report_fd < 0) {
		rc = atex_error_set(ATEX_EIO, "'%s': pipe: %s", p->name,
				    strerror(errno));
		goto out;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = clone_with_pidfd(&p->pidfd, plan);
	if (pid == 0)
		child_run(plan);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		rc = atex_error_set(ATEX_EIO, "'%s': clone: %s", p->name,
				    strerror(errno));
		goto out;
	}
	p->pid = pid;
	close(plan->report_fd);
	plan->report_fd = -1;
	if (read_report(report_pipe[0], &report) < 0) {
		reap_blocking(pid);
		p->reaped = true;
		rc = report_error(&report, plan);
		goto out;
	}
	if (p->pidfd < 0)
		rc = start_watcher(p);
out:
	if (plan->report_fd >= 0)
		close(plan->report_fd);
	close(report_pipe[0]);
	return rc;
}

static atex_process *process_alloc(const char *name)
{
	atex_process *p = atex_calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->name = atex_strdup(name);
	if (!p->name) {
		free(p);
		return NULL;
	}
	p->pid = -1;
	p->pidfd = -1;
	for (int i = 0; i < 3; i++)
		p->fds[i] = -1;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

int atex_process_spawn(atex_process **out, const char *const *argv,
		       const char *cwd, const char *const *env, int stdin_fd,
		       int stdout_fd, int stderr_fd)
{
	struct spawn_plan plan = {.argv = argv,
				  .cwd = cwd,
				  .stdio = {-1, -1, -1},
				  .report_fd = -1};
	const int spec[3] = {stdin_fd, stdout_fd, stderr_fd};
	atex_process *p = NULL;
	int rc;

	*out = NULL;
	if (!argv || !argv[0])
		return atex_error_set(ATEX_EINVAL, "spawn: empty command");
	p = process_alloc(argv[0]);
	plan.paths = paths_build(argv[0]);
	plan.envp = env ? env_build(env) : environ;
	if (!p || !plan.paths || !plan.envp) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		rc = stdio_prepare(i, spec[i], &plan.stdio[i], &p->fds[i],
				   argv[0]);
		if (rc)
			goto out;
	}
	rc = start_child(p, &plan);
	if (rc)
		goto out;
	*out = p;
	p = NULL;
out:
	for (int i = 0; i < 3; i++)
		if (plan.stdio[i] >= 0)
			close(plan.stdio[i]);
	if (plan.envp != environ)
		free(plan.envp);
	free(plan.paths);
	atex_process_free(p);
	return rc;
}

/* ------------------------------------------------------------------------
 * Waiting, killing, freeing.
 */

/* Reaps the process if it has ended: 0 (status in *status), 1 when it
 * is still running, ATEX_EIO. */
static int try_reap(atex_process *p, int *status)
{
	atex_process_exit_hook hook = NULL;
	void *data = NULL;
	int rc = 0;
	pid_t r;

	pthread_mutex_lock(&p->lock);
	if (!p->reaped) {
		do {
			r = waitpid(p->pid, &p->status, WNOHANG);
		} while (r < 0 && errno == EINTR);
		if (r < 0) {
			rc = atex_error_set(
				ATEX_EIO, "'%s' (pid %d): waitpid: %s", p->name,
				(int)p->pid, strerror(errno));
			goto out;
		}
		if (r == 0) {
			rc = 1;
			goto out;
		}
		p->reaped = true;
		hook = p->exit_hook;
		data = p->exit_data;
		p->exit_hook = NULL;
	}
	if (status)
		*status = p->status;
out:
	pthread_mutex_unlock(&p->lock);
	/* Outside the lock: the hook may take locks of its own. */
	if (hook)
		hook(data);
	return rc;
}

int atex_process_wait(int *status, atex_process *p, int timeout_ms,
		      atex_cancel *cancel)
{
	double deadline = deadline_from(timeout_ms);
	int rc;

	if (!p)
		return atex_error_set(ATEX_EINVAL, "wait: no process");
	for (;;) {
		rc = try_reap(p, status);
		if (rc <= 0)
			return rc;
		rc = atex_wait_fd(p->pidfd, POLLIN, remaining_ms(deadline),
				  cancel);
		if (rc == ATEX_ETIMEDOUT)
			return atex_error_set(rc,
					      "'%s' (pid %d): still running "
					      "after %d ms",
					      p->name, (int)p->pid, timeout_ms);
		if (rc == ATEX_ECANCELED)
			return atex_error_set(rc,
					      "'%s' (pid %d): wait canceled",
					      p->name, (int)p->pid);
		if (rc)
			return atex_error_prefix("'%s' (pid %d)", p->name,
						 (int)p->pid);
	}
}

void atex_process_set_kill_hook(atex_process *p, atex_process_kill_hook hook,
				void *data, void (*data_free)(void *data))
{
	p->kill_hook = hook;
	p->kill_data = data;
	p->kill_data_free = data_free;
}

void atex_process_set_exit_hook(atex_process *p, atex_process_exit_hook hook,
				void *data)
{
	p->exit_hook = hook;
	p->exit_data = data;
}

int atex_process_kill(atex_process *p, int signal)
{
	bool running, reached = false;
	int rc = 0;

	if (!p)
		return atex_error_set(ATEX_EINVAL, "kill: no process");
	/* The remote command first, while the client still holds its
	 * channel open; the hook may block briefly, so not under the lock. */
	pthread_mutex_lock(&p->lock);
	running = !p->reaped;
	pthread_mutex_unlock(&p->lock);
	if (running && p->kill_hook)
		reached = p->kill_hook(p->kill_data, signal);
	/* The command got it there: its client ends with it. */
	if (reached && signal != SIGKILL)
		return 0;
	pthread_mutex_lock(&p->lock);
	/* Reaped: the pid may belong to someone else by now. */
	if (p->reaped)
		goto out;
	if (kill(-p->pid, signal) == 0)
		goto out;
	/* The command left its group (setsid): signal it alone. Unreaped,
	 * so the pid is still the command's. */
	if (errno == ESRCH && kill(p->pid, signal) == 0)
		goto out;
	if (errno == ESRCH)
		goto out;
	rc = atex_error_set(ATEX_EIO, "'%s' (pid %d): kill %d: %s", p->name,
			    (int)p->pid, signal, strerror(errno));
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int atex_process_stdin(const atex_process *p)
{
	return p ? p->fds[0] : -1;
}

int atex_process_stdout(const atex_process *p)
{
	return p ? p->fds[1] : -1;
}

int atex_process_stderr(const atex_process *p)
{
	return p ? p->fds[2] : -1;
}

int atex_process_take_fd(atex_process *p, int which)
{
	int fd;

	if (!p || which < 0 || which > 2)
		return -1;
	fd = p->fds[which];
	p->fds[which] = -1;
	return fd;
}

pid_t atex_process_pid(const atex_process *p)
{
	return p ? p->pid : -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void atex_process_free(atex_process *p)
{
	if (!p)
		return;
	if (p->pid > 0 && !p->reaped) {
		atex_process_kill(p, SIGKILL);
		/* SIGKILL cannot be caught: this wait is short. */
		atex_process_wait(NULL, p, -1, NULL);
	}
	/* The process has ended (it is reaped or a spawn failed before the
	 * watcher started), so the watcher is done or about to be. */
	if (p->watched)
		pthread_join(p->watcher, NULL);
	/* Not reaped (a failed wait): the hook still runs, once. */
	if (p->exit_hook)
		p->exit_hook(p->exit_data);
	for (int i = 0; i < 3; i++)
		close_fd(&p->fds[i]);
	close_fd(&p->pidfd);
	pthread_mutex_destroy(&p->lock);
	if (p->kill_data_free)
		p->kill_data_free(p->kill_data);
	free(p->name);
	free(p);
}

/* ------------------------------------------------------------------------
 * Communicating: feed stdin, drain stdout and stderr, in one poll loop.
 */

#define IO_CHUNK 65536

enum { SLOT_IN, SLOT_OUT, SLOT_ERR, SLOT_PID, SLOT_CANCEL, SLOT_COUNT };

struct comm {
	atex_process *p;
	const char *input;
	size_t input_left;
	struct atex_buf *bufs[3]; /* [1] stdout, [2] stderr; NULL: discard */
	bool epipe;
};

/* Reads what is there from stream `which`; closes it at EOF. */
static int comm_read(struct comm *c, int which)
{
	struct atex_buf *b = c->bufs[which];
	char scratch[4096];
	ssize_t n;

	for (;;) {
		if (b && atex_buf_grow(b, IO_CHUNK) < 0)
			return ATEX_ENOMEM;
		/* Keep the buffer a string even if nothing arrives. */
		if (b)
			b->ptr[b->len] = '\0';
		n = read(c->p->fds[which], b ? b->ptr + b->len : scratch,
			 b ? IO_CHUNK : sizeof(scratch));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			/* EOF, or an error that no retry would fix. */
			close_fd(&c->p->fds[which]);
			return 0;
		}
		if (b) {
			b->len += (size_t)n;
			b->ptr[b->len] = '\0';
		}
	}
}

/* Writes what fits of the input; closes stdin when done or refused. */
static void comm_write(struct comm *c)
{
	ssize_t n;

	while (c->input_left > 0) {
		n = write(c->p->fds[0], c->input, c->input_left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* The command does not want (all of) it: fine. */
			c->epipe |= errno == EPIPE;
			break;
		}
		c->input += n;
		c->input_left -= (size_t)n;
	}
	close_fd(&c->p->fds[0]);
}

static void set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (fd >= 0 && flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* One round of the loop: 1 to go on, 0 when all streams are done or the
 * process has ended, or a negative code. */
static int comm_step(struct comm *c, double deadline, atex_cancel *cancel)
{
	struct pollfd pfd[SLOT_COUNT] = {
		[SLOT_IN] = {.fd = c->p->fds[0], .events = POLLOUT},
		[SLOT_OUT] = {.fd = c->p->fds[1], .events = POLLIN},
		[SLOT_ERR] = {.fd = c->p->fds[2], .events = POLLIN},
		[SLOT_PID] = {.fd = c->p->pidfd, .events = POLLIN},
		[SLOT_CANCEL] = {.fd = atex_cancel_fd(cancel),
				 .events = POLLIN},
	};
	int n, rc;

	n = poll(pfd, SLOT_COUNT, remaining_ms(deadline));
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0)
		return atex_error_set(ATEX_EIO, "poll: %s", strerror(errno));
	if (pfd[SLOT_CANCEL].revents)
		return atex_error_set(ATEX_ECANCELED, "canceled");
	if (n == 0 && remaining_ms(deadline) == 0)
		return ATEX_ETIMEDOUT;
	if (pfd[SLOT_IN].revents)
		comm_write(c);
	for (int i = 1; i < 3; i++) {
		if (!pfd[i].revents)
			continue;
		rc = comm_read(c, i);
		if (rc)
			return rc;
	}
	if (pfd[SLOT_PID].revents) {
		/* It has ended: what it wrote is in the pipes already. A
		 * background child still holding them must not keep us
		 * waiting, so take what is there and stop. */
		for (int i = 1; i < 3; i++) {
			rc = c->p->fds[i] >= 0 ? comm_read(c, i) : 0;
			if (rc)
				return rc;
		}
		return 0;
	}
	return c->p->fds[1] >= 0 || c->p->fds[2] >= 0 || c->p->fds[0] >= 0;
}

void atex_process_set_stop_signal(atex_process *p, int signal, int grace_ms)
{
	p->stop_signal = signal;
	p->stop_grace_ms = grace_ms;
}

int atex_process_communicate(int *status, atex_process *p, const void *input,
			     size_t input_len, struct atex_buf *out,
			     struct atex_buf *err, int timeout_ms,
			     atex_cancel *cancel)
{
	struct comm c = {.p = p,
			 .input = input,
			 .input_left = input_len,
			 .bufs = {NULL, out, err}};
	double deadline = deadline_from(timeout_ms);
	struct sigpipe_guard guard;
	int rc;

	if (!input)
		c.input_left = 0;
	for (int i = 0; i < 3; i++)
		set_nonblocking(p->fds[i]);
	if (c.input_left == 0)
		close_fd(&p->fds[0]);
	sigpipe_block(&guard);
	do {
		rc = comm_step(&c, deadline, cancel);
	} while (rc > 0);
	sigpipe_restore(&guard, c.epipe);
	if (rc == 0)
		rc = atex_process_wait(status, p, remaining_ms(deadline),
				       cancel);
	if (rc == ATEX_ETIMEDOUT)
		atex_error_set(rc, "'%s' (pid %d): timed out after %d ms",
			       p->name, (int)p->pid, timeout_ms);
	if (rc == ATEX_ECANCELED)
		atex_error_set(rc, "'%s' (pid %d): canceled", p->name,
			       (int)p->pid);
	if ((rc == ATEX_ETIMEDOUT || rc == ATEX_ECANCELED) && p->stop_signal) {
		atex_process_kill(p, p->stop_signal);
		if (atex_process_wait(status, p, p->stop_grace_ms, NULL) == 0)
			goto reaped;
	}
	if (rc == ATEX_ETIMEDOUT || rc == ATEX_ECANCELED) {
		atex_process_kill(p, SIGKILL);
		atex_process_wait(status, p, -1, NULL);
	}
reaped:
	for (int i = 0; i < 3; i++)
		close_fd(&p->fds[i]);
	return rc;
}
