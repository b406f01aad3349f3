/*
 * test_process.c - local child processes (src/util/process.c) and
 * cancellation tokens (src/util/cancel.c): exit statuses, stdio modes,
 * environment and working directory, the pidfd-based waits with timeout,
 * cancel and kill from other threads, descriptor and signal-mask hygiene.
 *
 * Timing assertions use generous bounds (a loaded CI machine) but far below
 * what a sleeping loop or a missed wake-up would take.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>

#include "helpers.h"

#include "atex/connection.h"
#include "util/process.h"
#include "util/util.h"

/* Reads fd to EOF (at most 5 s) into a new string. */
static char *read_all(int fd)
{
	struct atex_buf b = ATEX_BUF_INIT;
	char chunk[4096];
	ssize_t n;

	for (;;) {
		assert_int_equal(atex_wait_fd(fd, POLLIN, 5000, NULL), 0);
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_int_equal(atex_buf_put(&b, chunk, (size_t)n), 0);
	}
	return atex_buf_detach(&b);
}

/* Spawns argv with stdout piped, returns its output and exit status. */
static char *capture(const char *const *argv, const char *cwd,
		     const char *const *env, int *status)
{
	atex_process *p;
	char *out;

	assert_int_equal(atex_process_spawn(&p, argv, cwd, env, ATEX_STDIO_NULL,
					    ATEX_STDIO_PIPE,
					    ATEX_STDIO_INHERIT),
			 0);
	out = read_all(atex_process_stdout(p));
	assert_int_equal(atex_process_wait(status, p, 5000, NULL), 0);
	atex_process_free(p);
	return out;
}

static int run_status(const char *const *argv)
{
	atex_process *p;
	int status = -1;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					    ATEX_STDIO_NULL),
			 0);
	assert_true(atex_process_pid(p) > 0);
	assert_int_equal(atex_process_wait(&status, p, 5000, NULL), 0);
	atex_process_free(p);
	return status;
}

static void test_exit_status(void **state)
{
	const char *t[] = {"true", NULL};
	const char *f[] = {"false", NULL};
	const char *seven[] = {"sh", "-c", "exit 7", NULL};
	int st;

	st = run_status(t);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = run_status(f);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	st = run_status(seven);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 7);
}

static void test_signal_status(void **state)
{
	const char *term[] = {"sh", "-c", "kill -TERM $$", NULL};
	const char *kill9[] = {"sh", "-c", "kill -KILL $$", NULL};
	int st;

	st = run_status(term);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGTERM);
	st = run_status(kill9);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void test_wait_again_after_reap(void **state)
{
	const char *argv[] = {"sh", "-c", "exit 3", NULL};
	atex_process *p;
	int st1 = -1, st2 = -1;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					    ATEX_STDIO_NULL),
			 0);
	assert_int_equal(atex_process_wait(&st1, p, -1, NULL), 0);
	assert_int_equal(atex_process_wait(&st2, p, 0, NULL), 0);
	assert_int_equal(WEXITSTATUS(st1), 3);
	assert_int_equal(st1, st2);
	/* Safe after exit: the pid is no longer ours to signal. */
	assert_int_equal(atex_process_kill(p, SIGKILL), 0);
	atex_process_free(p);
}

static void test_stdio_pipes(void **state)
{
	const char *argv[] = {"sh", "-c",
			      "read x; echo \"got $x\"; echo oops >&2", NULL};
	atex_process *p;
	char *out, *err;
	int st, in;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_PIPE, ATEX_STDIO_PIPE,
					    ATEX_STDIO_PIPE),
			 0);
	assert_true(atex_process_stdin(p) >= 0);
	/* Blocking ends, so they can be handed on to another process. */
	assert_false(fcntl(atex_process_stdout(p), F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(atex_process_stdout(p), F_GETFD) & FD_CLOEXEC);
	in = atex_process_take_fd(p, 0);
	assert_int_equal(atex_process_stdin(p), -1);
	assert_int_equal(atex_write_all(in, "hello\n", 6, NULL), 0);
	close(in);
	out = read_all(atex_process_stdout(p));
	err = read_all(atex_process_stderr(p));
	assert_string_equal(out, "got hello\n");
	assert_string_equal(err, "oops\n");
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(atex_process_take_fd(p, 3), -1);
	atex_process_free(p);
	free(out);
	free(err);
}

static void test_stdio_null(void **state)
{
	/* $(...) runs in a subshell: the shell's own fd 1 stays put. */
	const char *argv[] = {"sh", "-c",
			      "a=$(readlink /proc/$$/fd/0 /proc/$$/fd/1); "
			      "echo \"$a\" >&2; cat",
			      NULL};
	atex_process *p;
	char *err;
	int st;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					    ATEX_STDIO_PIPE),
			 0);
	assert_int_equal(atex_process_stdout(p), -1);
	assert_int_equal(atex_process_stdin(p), -1);
	err = read_all(atex_process_stderr(p));
	assert_string_equal(err, "/dev/null\n/dev/null\n");
	/* cat read EOF from /dev/null at once. */
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	atex_process_free(p);
	free(err);
}

static void test_stdio_inherit(void **state)
{
	const char *argv[] = {"sh", "-c", "readlink /proc/$$/fd/2", NULL};
	char mine[4096] = "";
	char *out;
	ssize_t n;
	int st;

	n = readlink("/proc/self/fd/2", mine, sizeof(mine) - 2);
	assert_true(n > 0);
	mine[n] = '\n';
	mine[n + 1] = '\0';
	out = capture(argv, NULL, NULL, &st);
	assert_string_equal(out, mine);
	free(out);
}

static void test_stdio_caller_fd(void **state)
{
	const char *argv[] = {"sh", "-c", "echo to-file; echo err-too >&2",
			      NULL};
	char path[] = "/tmp/atex-test-out-XXXXXX";
	char *content;
	atex_process *p;
	size_t len;
	int fd, st;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, fd, fd),
			 0);
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	atex_process_free(p);
	/* The caller keeps its descriptor. */
	assert_true(fcntl(fd, F_GETFD) >= 0);
	close(fd);
	assert_int_equal(atex_file_read(&content, &len, path), 0);
	assert_string_equal(content, "to-file\nerr-too\n");
	free(content);
	unlink(path);
}

static void test_stdio_bad_fd(void **state)
{
	const char *argv[] = {"true", NULL};
	atex_process *p = (atex_process *)1;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL, 987,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL),
			 ATEX_EINVAL);
	assert_null(p);
	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL, -7,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL),
			 ATEX_EINVAL);
}

static void test_env_and_cwd(void **state)
{
	const char *argv[] = {"sh", "-c",
			      "echo \"$ATEX_T1 $ATEX_OVR\"; pwd; "
			      "env | grep -c '^ATEX_OVR='",
			      NULL};
	const char *env[] = {"ATEX_T1=hello", "ATEX_OVR=new", NULL};
	char *dir = tmpdir_new(), *want, *out;
	int st;

	setenv("ATEX_OVR", "old", 1);
	out = capture(argv, dir, env, &st);
	want = atex_sprintf("hello new\n%s\n1\n", dir);
	assert_string_equal(out, want);
	free(out);
	free(want);
	/* Without extras the environment is ours, cwd is ours. */
	const char *argv2[] = {"sh", "-c", "echo \"$ATEX_OVR\"; pwd", NULL};
	char cwd[4096];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	out = capture(argv2, NULL, NULL, &st);
	want = atex_sprintf("old\n%s\n", cwd);
	assert_string_equal(out, want);
	free(out);
	free(want);
	unsetenv("ATEX_OVR");
	tree_remove(dir);
}

static void test_missing_program(void **state)
{
	const char *argv[] = {"atex-no-such-program", "x", NULL};
	const char *abs[] = {"/nonexistent/atex-prog", NULL};
	const char *t[] = {"true", NULL};
	atex_process *p = (atex_process *)1;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					    ATEX_STDIO_NULL),
			 ATEX_ENOTFOUND);
	assert_null(p);
	assert_non_null(strstr(atex_error_last(), "atex-no-such-program"));
	assert_int_equal(atex_process_spawn(&p, abs, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					    ATEX_STDIO_NULL),
			 ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "/nonexistent/atex-prog"));
	assert_int_equal(atex_process_spawn(&p, t, "/nonexistent-dir", NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					    ATEX_STDIO_NULL),
			 ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "/nonexistent-dir"));
}

static void test_not_executable(void **state)
{
	const char *argv[] = {"/etc/hostname", NULL};
	atex_process *p;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					    ATEX_STDIO_NULL),
			 ATEX_EIO);
	assert_non_null(strstr(atex_error_last(), "/etc/hostname"));
}

static atex_process *spawn_sleep(const char *seconds)
{
	const char *argv[] = {"sleep", seconds, NULL};
	atex_process *p;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					    ATEX_STDIO_NULL),
			 0);
	return p;
}

static void test_wait_timeout(void **state)
{
	atex_process *p = spawn_sleep("100");
	double t0 = atex_monotonic_ms(), dt;
	int st;

	assert_int_equal(atex_process_wait(&st, p, 100, NULL), ATEX_ETIMEDOUT);
	dt = atex_monotonic_ms() - t0;
	assert_true(dt >= 99 && dt < 600);
	assert_non_null(strstr(atex_error_last(), "sleep"));
	assert_int_equal(atex_process_wait(&st, p, 0, NULL), ATEX_ETIMEDOUT);
	/* Still there, and can be waited again. */
	assert_int_equal(atex_process_kill(p, SIGTERM), 0);
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGTERM);
	atex_process_free(p);
}

struct delayed {
	atex_cancel *cancel;
	atex_process *p;
	int delay_ms;
	double fired_at;
};

static void *fire_later(void *arg)
{
	struct delayed *d = arg;

	usleep((useconds_t)d->delay_ms * 1000);
	d->fired_at = atex_monotonic_ms();
	if (d->cancel)
		atex_cancel_fire(d->cancel);
	else
		atex_process_kill(d->p, SIGKILL);
	return NULL;
}

static void test_cancel_from_thread(void **state)
{
	struct delayed d = {.p = spawn_sleep("100"), .delay_ms = 100};
	pthread_t th;
	double done;
	int st;

	assert_int_equal(atex_cancel_new(&d.cancel), 0);
	assert_int_equal(pthread_create(&th, NULL, fire_later, &d), 0);
	assert_int_equal(atex_process_wait(&st, d.p, -1, d.cancel),
			 ATEX_ECANCELED);
	done = atex_monotonic_ms();
	pthread_join(th, NULL);
	assert_true(done - d.fired_at < 100);
	/* Still fired: later waits are canceled at once too. */
	assert_int_equal(atex_process_wait(&st, d.p, 5000, d.cancel),
			 ATEX_ECANCELED);
	atex_cancel_reset(d.cancel);
	assert_int_equal(atex_process_wait(&st, d.p, 50, d.cancel),
			 ATEX_ETIMEDOUT);
	atex_process_free(d.p);
	atex_cancel_free(d.cancel);
}

static void test_kill_from_thread(void **state)
{
	struct delayed d = {.p = spawn_sleep("100"), .delay_ms = 100};
	pthread_t th;
	double t0 = atex_monotonic_ms();
	int st;

	assert_int_equal(pthread_create(&th, NULL, fire_later, &d), 0);
	assert_int_equal(atex_process_wait(&st, d.p, 10000, NULL), 0);
	pthread_join(th, NULL);
	assert_true(atex_monotonic_ms() - t0 < 2000);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	atex_process_free(d.p);
}

/* Whether `pid` (not our child) ends within `ms`: through its pidfd, or
 * where pidfd_open is missing (valgrind) by watching /proc for it to go
 * or turn zombie. */
static bool ends_within(pid_t pid, int ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	char path[64], *st;
	size_t len;

	if (fd >= 0) {
		bool ended = atex_wait_fd(fd, POLLIN, ms, NULL) == 0;

		close(fd);
		return ended;
	}
	if (errno == ESRCH)
		return true;
	assert_int_equal(errno, ENOSYS);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i <= ms / 10; i++) {
		bool zombie;

		if (atex_file_read(&st, &len, path) < 0)
			return true;
		zombie = strstr(st, ") Z ") != NULL;
		free(st);
		if (zombie)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_kill_reaches_group(void **state)
{
	const char *argv[] = {"sh", "-c", "sleep 100 & echo $!; wait", NULL};
	atex_process *p;
	char line[64] = "";
	pid_t grandchild;
	int st;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_PIPE,
					    ATEX_STDIO_NULL),
			 0);
	/* Its own process group. */
	assert_int_equal(getpgid(atex_process_pid(p)), atex_process_pid(p));
	assert_int_equal(
		atex_wait_fd(atex_process_stdout(p), POLLIN, 5000, NULL), 0);
	assert_true(read(atex_process_stdout(p), line, sizeof(line) - 1) > 0);
	grandchild = (pid_t)atoi(line);
	assert_true(grandchild > 0);
	assert_false(ends_within(grandchild, 0));
	assert_int_equal(atex_process_kill(p, SIGTERM), 0);
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	assert_true(ends_within(grandchild, 5000));
	atex_process_free(p);
}

static void test_background_grandchild(void **state)
{
	const char *argv[] = {"sh", "-c", "sleep 100 & echo $!", NULL};
	double t0 = atex_monotonic_ms();
	atex_process *p;
	char line[64] = "";
	pid_t grandchild;
	int st;

	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_PIPE,
					    ATEX_STDIO_PIPE),
			 0);
	/* The sleep holds stdout and stderr open; the pidfd ends the
	 * wait anyway. */
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	assert_true(atex_monotonic_ms() - t0 < 2000);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(read(atex_process_stdout(p), line, sizeof(line) - 1) > 0);
	grandchild = (pid_t)atoi(line);
	assert_true(grandchild > 0);
	atex_process_free(p);
	assert_int_equal(kill(grandchild, SIGKILL), 0);
}

static void test_free_kills_running(void **state)
{
	atex_process *p = spawn_sleep("100");
	pid_t pid = atex_process_pid(p);

	assert_int_equal(kill(pid, 0), 0);
	atex_process_free(p);
	/* Killed and reaped: the pid is gone (our child, nobody else could
	 * have reaped it, and a reuse this fast is not plausible). */
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	atex_process_free(NULL);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_no_fd_leak(void **state)
{
	const char *t[] = {"true", NULL};
	const char *missing[] = {"atex-no-such-program", NULL};
	int before = count_fds();
	atex_process *p;
	int st;

	for (int i = 0; i < 1000; i++) {
		assert_int_equal(
			atex_process_spawn(&p, t, NULL, NULL, ATEX_STDIO_PIPE,
					   ATEX_STDIO_PIPE, ATEX_STDIO_PIPE),
			0);
		assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
		atex_process_free(p);
		if (i % 100 == 0)
			assert_int_equal(atex_process_spawn(&p, missing, NULL,
							    NULL,
							    ATEX_STDIO_PIPE,
							    ATEX_STDIO_NULL,
							    ATEX_STDIO_PIPE),
					 ATEX_ENOTFOUND);
	}
	assert_int_equal(count_fds(), before);
}

static void test_fds_not_inherited(void **state)
{
	/* A descriptor the program opened without O_CLOEXEC. */
	int fd = open("/dev/null", O_RDONLY);
	char script[128];
	int st;

	assert_true(fd >= 3);
	snprintf(script, sizeof(script), "test -e /proc/$$/fd/%d", fd);
	const char *argv[] = {"sh", "-c", script, NULL};

	st = run_status(argv);
	assert_int_equal(WEXITSTATUS(st), 1);
	/* Positive control: the test sees a descriptor that is there. */
	snprintf(script, sizeof(script), "test -e /proc/$$/fd/2");
	st = run_status(argv);
	assert_int_equal(WEXITSTATUS(st), 0);
	close(fd);
}

static void test_signals_reset(void **state)
{
	const char *argv[] = {"grep", "-E", "^Sig(Blk|Ign)",
			      "/proc/self/status", NULL};
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_pipe;
	sigset_t set, old;
	char *out;
	int st;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGPIPE, &ign, &old_pipe);
	out = capture(argv, NULL, NULL, &st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	assert_string_equal(out, "SigBlk:\t0000000000000000\n"
				 "SigIgn:\t0000000000000000\n");
	free(out);
}

static void test_write_epipe(void **state)
{
	const char *t[] = {"true", NULL};
	size_t len = 1 << 20;
	char *big = calloc(1, len);
	sigset_t pending;
	atex_process *p;
	int st;

	assert_int_equal(atex_process_spawn(&p, t, NULL, NULL, ATEX_STDIO_PIPE,
					    ATEX_STDIO_NULL, ATEX_STDIO_NULL),
			 0);
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	/* Would kill the test with SIGPIPE if not handled. */
	assert_int_equal(atex_write_all(atex_process_stdin(p), big, len, NULL),
			 ATEX_EIO);
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE));
	atex_process_free(p);
	free(big);
}

static void test_wait_fd(void **state)
{
	atex_cancel *cancel;
	int fds[2];
	double t0;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(atex_cancel_new(&cancel), 0);
	t0 = atex_monotonic_ms();
	assert_int_equal(atex_wait_fd(fds[0], POLLIN, 50, cancel),
			 ATEX_ETIMEDOUT);
	assert_true(atex_monotonic_ms() - t0 >= 49);
	assert_int_equal(atex_wait_fd(fds[1], POLLOUT, 0, cancel), 0);
	atex_cancel_fire(cancel);
	assert_int_equal(atex_wait_fd(fds[0], POLLIN, -1, cancel),
			 ATEX_ECANCELED);
	assert_int_equal(atex_write_all(fds[1], "x", 1, cancel),
			 ATEX_ECANCELED);
	atex_cancel_reset(cancel);
	assert_int_equal(atex_write_all(fds[1], "x", 1, cancel), 0);
	assert_int_equal(atex_wait_fd(fds[0], POLLIN, 0, cancel), 0);
	close(fds[0]);
	close(fds[1]);
	atex_cancel_free(cancel);
}

static void test_cancel_token(void **state)
{
	atex_cancel *cancel;
	struct pollfd pfd;

	assert_int_equal(atex_cancel_new(&cancel), 0);
	pfd.fd = atex_cancel_fd(cancel);
	pfd.events = POLLIN;
	assert_true(fcntl(pfd.fd, F_GETFD) & FD_CLOEXEC);
	assert_false(atex_cancel_fired(cancel));
	assert_int_equal(poll(&pfd, 1, 0), 0);
	atex_cancel_fire(cancel);
	atex_cancel_fire(cancel);
	assert_true(atex_cancel_fired(cancel));
	assert_int_equal(poll(&pfd, 1, 0), 1);
	/* Stays readable: nobody but reset consumes it. */
	assert_int_equal(poll(&pfd, 1, 0), 1);
	atex_cancel_reset(cancel);
	assert_false(atex_cancel_fired(cancel));
	assert_int_equal(poll(&pfd, 1, 0), 0);
	atex_cancel_reset(cancel);
	atex_cancel_free(cancel);
	atex_cancel_free(NULL);
	assert_false(atex_cancel_fired(NULL));
}

static void test_shell_quote(void **state)
{
	const char *words[] = {"plain",		  "a b", "it's",     "",
			       "$HOME `x` \"q\"", "'",	 "new\nline"};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(words); i++) {
		struct atex_buf cmd = ATEX_BUF_INIT;
		char *out;
		int st;

		assert_int_equal(atex_buf_puts(&cmd, "printf %s "), 0);
		assert_int_equal(atex_shell_quote(&cmd, words[i]), 0);
		const char *argv[] = {"sh", "-c", atex_buf_cstr(&cmd), NULL};

		out = capture(argv, NULL, NULL, &st);
		assert_int_equal(WEXITSTATUS(st), 0);
		assert_string_equal(out, words[i]);
		free(out);
		atex_buf_free(&cmd);
	}

	struct atex_buf b = ATEX_BUF_INIT;

	assert_int_equal(atex_shell_quote(&b, "it's"), 0);
	assert_string_equal(atex_buf_cstr(&b), "'it'\\''s'");
	atex_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_signal_status),
		cmocka_unit_test(test_wait_again_after_reap),
		cmocka_unit_test(test_stdio_pipes),
		cmocka_unit_test(test_stdio_null),
		cmocka_unit_test(test_stdio_inherit),
		cmocka_unit_test(test_stdio_caller_fd),
		cmocka_unit_test(test_stdio_bad_fd),
		cmocka_unit_test(test_env_and_cwd),
		cmocka_unit_test(test_missing_program),
		cmocka_unit_test(test_not_executable),
		cmocka_unit_test(test_wait_timeout),
		cmocka_unit_test(test_cancel_from_thread),
		cmocka_unit_test(test_kill_from_thread),
		cmocka_unit_test(test_kill_reaches_group),
		cmocka_unit_test(test_background_grandchild),
		cmocka_unit_test(test_free_kills_running),
		cmocka_unit_test(test_no_fd_leak),
		cmocka_unit_test(test_fds_not_inherited),
		cmocka_unit_test(test_signals_reset),
		cmocka_unit_test(test_write_epipe),
		cmocka_unit_test(test_wait_fd),
		cmocka_unit_test(test_cancel_token),
		cmocka_unit_test(test_shell_quote),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
