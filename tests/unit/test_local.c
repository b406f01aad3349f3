/*
 * test_local.c - the local Connection and the generic connection calls:
 * atex_connection_run (exit statuses, large binary stdin/stdout without
 * deadlock, separate stderr, timeout and cancel, concurrency), copy_to
 * (modes, symlinks, timestamps, nested and merged directories), copy_from
 * (a tree or a file), can_reboot and boot_id (also for a version 1 ops
 * table), the default working directory and the argument checks of the
 * dispatchers.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "helpers.h"

#include "atex/connection.h"
#include "util/process.h"
#include "util/util.h"

static atex_connection *local_new(const char *cwd)
{
	atex_connection *c = NULL;

	assert_int_equal(atex_local_connection_new(&c, cwd), 0);
	assert_non_null(c);
	return c;
}

static void test_name_and_noops(void **state)
{
	atex_connection *c = local_new(NULL);

	assert_string_equal(atex_connection_name(c), "local");
	assert_int_equal(atex_connection_connect(c, 1000, NULL), 0);
	assert_int_equal(atex_connection_connect(c, 1000, NULL), 0);
	assert_int_equal(atex_connection_disconnect(c), 0);
	assert_int_equal(atex_connection_disconnect(c), 0);
	atex_connection_free(c);
	atex_connection_free(NULL);
}

static void test_run_exit_codes(void **state)
{
	const char *ok[] = {"true", NULL};
	const char *code[] = {"sh", "-c", "exit 42", NULL};
	const char *sig[] = {"sh", "-c", "kill -INT $$", NULL};
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;

	assert_int_equal(atex_connection_run(&r, c, ok, NULL, 0, -1, NULL), 0);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	/* Never NULL on success, so callers can compare at once. */
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "");
	assert_int_equal(r.out_len, 0);
	atex_run_result_clear(&r);
	assert_null(r.out);

	assert_int_equal(atex_connection_run(&r, c, code, NULL, 0, 5000, NULL),
			 0);
	assert_int_equal(WEXITSTATUS(r.status), 42);
	atex_run_result_clear(&r);

	assert_int_equal(atex_connection_run(&r, c, sig, NULL, 0, 5000, NULL),
			 0);
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(WTERMSIG(r.status), SIGINT);
	atex_run_result_clear(&r);
	atex_connection_free(c);
}

static void test_run_missing_program(void **state)
{
	const char *argv[] = {"atex-no-such-program", NULL};
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;

	assert_int_equal(atex_connection_run(&r, c, argv, NULL, 0, -1, NULL),
			 ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "atex-no-such-program"));
	assert_non_null(strstr(atex_error_last(), "local"));
	assert_null(r.out);
	atex_connection_free(c);
}

static uint64_t fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void test_run_10mib_roundtrip(void **state)
{
	const char *argv[] = {"cat", NULL};
	size_t len = 10 << 20;
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;
	unsigned char *data = malloc(len);
	uint32_t x = 12345;

	assert_non_null(data);
	/* Binary, NULs included: a xorshift stream. */
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (unsigned char)(i % 97 == 0 ? 0 : x);
	}
	assert_int_equal(
		atex_connection_run(&r, c, argv, data, len, 60000, NULL), 0);
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_int_equal(r.out_len, len);
	assert_true(fnv1a(r.out, r.out_len) == fnv1a(data, len));
	assert_memory_equal(r.out, data, len);
	assert_int_equal(r.out[r.out_len], '\0');
	atex_run_result_clear(&r);
	free(data);
	atex_connection_free(c);
}

static void test_run_big_both_streams(void **state)
{
	/* 10 MiB on stdout and on stderr while stdin is still being fed:
	 * any blocking order in the loop would deadlock here. */
	const char *argv[] = {
		"sh", "-c", "head -c 10485760 /dev/zero >&2 & cat; wait", NULL};
	size_t len = 10 << 20;
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;
	char *data = malloc(len);

	assert_non_null(data);
	memset(data, 'a', len);
	assert_int_equal(
		atex_connection_run(&r, c, argv, data, len, 60000, NULL), 0);
	assert_int_equal(r.out_len, len);
	assert_int_equal(r.err_len, len);
	assert_memory_equal(r.out, data, len);
	atex_run_result_clear(&r);
	free(data);
	atex_connection_free(c);
}

static void test_run_input_not_read(void **state)
{
	/* The command ignores its stdin: no SIGPIPE, no error. */
	const char *argv[] = {"true", NULL};
	size_t len = 4 << 20;
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;
	char *data = calloc(1, len);

	assert_int_equal(
		atex_connection_run(&r, c, argv, data, len, 10000, NULL), 0);
	assert_int_equal(WEXITSTATUS(r.status), 0);
	atex_run_result_clear(&r);
	free(data);
	atex_connection_free(c);
}

static void test_run_stderr_separate(void **state)
{
	const char *argv[] = {"sh", "-c",
			      "echo out1; echo err1 >&2; echo out2; "
			      "printf 'e\\0f' >&2; exit 3",
			      NULL};
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;

	assert_int_equal(atex_connection_run(&r, c, argv, NULL, 0, 5000, NULL),
			 0);
	assert_string_equal(r.out, "out1\nout2\n");
	assert_int_equal(r.err_len, 8);
	assert_memory_equal(r.err, "err1\ne\0f", 8);
	assert_int_equal(WEXITSTATUS(r.status), 3);
	atex_run_result_clear(&r);
	atex_connection_free(c);
}

static void test_run_timeout(void **state)
{
	const char *argv[] = {"sleep", "100", NULL};
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;
	double t0 = atex_monotonic_ms(), dt;

	assert_int_equal(atex_connection_run(&r, c, argv, NULL, 0, 300, NULL),
			 ATEX_ETIMEDOUT);
	dt = atex_monotonic_ms() - t0;
	assert_true(dt >= 299 && dt < 1000);
	assert_non_null(strstr(atex_error_last(), "sleep"));
	assert_null(r.out);
	atex_connection_free(c);
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

static void test_run_timeout_kills_group(void **state)
{
	/* The sleep is a grandchild; it must die with its shell. Its pid is
	 * written to a file since the run's output is dropped on timeout. */
	char *dir = tmpdir_new();
	char *pidfile = atex_path_join(dir, "pid");
	char *script = atex_sprintf("sleep 100 & echo $! > %s; wait", pidfile);
	const char *argv[] = {"sh", "-c", script, NULL};
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;
	size_t len;
	char *text;
	pid_t pid;

	assert_int_equal(atex_connection_run(&r, c, argv, NULL, 0, 500, NULL),
			 ATEX_ETIMEDOUT);
	assert_int_equal(atex_file_read(&text, &len, pidfile), 0);
	pid = (pid_t)atoi(text);
	assert_true(pid > 0);
	assert_true(ends_within(pid, 2000));
	free(text);
	free(script);
	free(pidfile);
	tree_remove(dir);
	atex_connection_free(c);
}

struct firer {
	atex_cancel *cancel;
	double fired_at;
};

static void *fire_after_100ms(void *arg)
{
	struct firer *f = arg;

	usleep(100000);
	f->fired_at = atex_monotonic_ms();
	atex_cancel_fire(f->cancel);
	return NULL;
}

static void test_run_cancel(void **state)
{
	const char *argv[] = {"sleep", "100", NULL};
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;
	struct firer f;
	pthread_t th;

	assert_int_equal(atex_cancel_new(&f.cancel), 0);
	assert_int_equal(pthread_create(&th, NULL, fire_after_100ms, &f), 0);
	assert_int_equal(atex_connection_run(&r, c, argv, "x", 1, -1, f.cancel),
			 ATEX_ECANCELED);
	assert_true(atex_monotonic_ms() - f.fired_at < 100);
	pthread_join(th, NULL);
	assert_non_null(strstr(atex_error_last(), "local"));
	atex_cancel_free(f.cancel);
	atex_connection_free(c);
}

static void test_run_background_child(void **state)
{
	/* A daemon left holding stdout must not keep run waiting. */
	const char *argv[] = {"sh", "-c", "sleep 100 & echo $!", NULL};
	atex_connection *c = local_new(NULL);
	struct atex_run_result r;
	double t0 = atex_monotonic_ms();
	pid_t pid;

	assert_int_equal(atex_connection_run(&r, c, argv, NULL, 0, 10000, NULL),
			 0);
	assert_true(atex_monotonic_ms() - t0 < 2000);
	pid = (pid_t)atoi(r.out);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	atex_run_result_clear(&r);
	atex_connection_free(c);
}

struct concurrent {
	atex_connection *c;
	pthread_mutex_t lock;
	int next;
	int failures;
};

static void *run_many(void *arg)
{
	struct concurrent *cc = arg;
	char want[32], id[16];
	int me;

	pthread_mutex_lock(&cc->lock);
	me = cc->next++;
	pthread_mutex_unlock(&cc->lock);
	snprintf(id, sizeof(id), "%d", me);
	for (int i = 0; i < 20; i++) {
		const char *argv[] = {"sh", "-c", "cat; echo \"$1\" >&2",
				      "sh", id,	  NULL};
		struct atex_run_result r;
		int rc;

		snprintf(want, sizeof(want), "%d-%d", me, i);
		rc = atex_connection_run(&r, cc->c, argv, want, strlen(want),
					 20000, NULL);
		if (rc || strcmp(r.out, want) != 0 ||
		    strncmp(r.err, id, strlen(id)) != 0 ||
		    WEXITSTATUS(r.status) != 0) {
			pthread_mutex_lock(&cc->lock);
			cc->failures++;
			pthread_mutex_unlock(&cc->lock);
		}
		atex_run_result_clear(&r);
	}
	return NULL;
}

static void test_run_concurrent(void **state)
{
	struct concurrent cc = {.c = local_new(NULL),
				.lock = PTHREAD_MUTEX_INITIALIZER};
	pthread_t th[16];

	for (int i = 0; i < 16; i++)
		assert_int_equal(pthread_create(&th[i], NULL, run_many, &cc),
				 0);
	for (int i = 0; i < 16; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(cc.next, 16);
	assert_int_equal(cc.failures, 0);
	atex_connection_free(cc.c);
}

static void test_cwd_default(void **state)
{
	const char *argv[] = {"pwd", NULL};
	char *dir = tmpdir_new(), *want;
	atex_connection *c = local_new(dir);
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	struct atex_run_result r;
	atex_process *p;
	char line[256] = "";
	int st;

	assert_int_equal(atex_connection_run(&r, c, argv, NULL, 0, 5000, NULL),
			 0);
	want = atex_sprintf("%s\n", dir);
	assert_string_equal(r.out, want);
	atex_run_result_clear(&r);
	/* An explicit cwd wins over the connection's. */
	opts.argv = argv;
	opts.cwd = "/";
	opts.stdout_fd = ATEX_STDIO_PIPE;
	assert_int_equal(atex_connection_spawn(&p, c, &opts), 0);
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	assert_true(read(atex_process_stdout(p), line, sizeof(line) - 1) > 0);
	assert_string_equal(line, "/\n");
	atex_process_free(p);
	free(want);
	atex_connection_free(c);
	tree_remove(dir);
}

static void test_spawn_env(void **state)
{
	const char *argv[] = {"sh", "-c", "printf %s \"$ATEX_X\"", NULL};
	const char *env[] = {"ATEX_X=from opts", NULL};
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	atex_connection *c = local_new(NULL);
	atex_process *p;
	char buf[64] = "";
	int st;

	opts.argv = argv;
	opts.env = env;
	opts.stdout_fd = ATEX_STDIO_PIPE;
	assert_int_equal(atex_connection_spawn(&p, c, &opts), 0);
	assert_int_equal(atex_process_wait(&st, p, 5000, NULL), 0);
	assert_true(read(atex_process_stdout(p), buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "from opts");
	atex_process_free(p);
	atex_connection_free(c);
}

static void stat_ok(const char *dir, const char *rel, struct stat *st)
{
	char *path = atex_path_join(dir, rel);

	assert_int_equal(lstat(path, st), 0);
	free(path);
}

static void test_copy_to(void **state)
{
	char *src = tmpdir_new(), *top = tmpdir_new();
	char *dst = atex_path_join(top, "new/parents/dst");
	atex_connection *c = local_new("/");
	struct timeval times[2] = {{1000000000, 0}, {1000000000, 0}};
	char path[4096], link[256];
	struct stat st;
	ssize_t n;

	write_file(src, "top.sh", "#!/bin/sh\n");
	write_file(src, "a/b/c/deep.txt", "deep\n");
	write_file(src, "secret", "s\n");
	snprintf(path, sizeof(path), "%s/top.sh", src);
	assert_int_equal(chmod(path, 0751), 0);
	assert_int_equal(utimes(path, times), 0);
	snprintf(path, sizeof(path), "%s/secret", src);
	assert_int_equal(chmod(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/a/b", src);
	assert_int_equal(chmod(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/link", src);
	assert_int_equal(symlink("a/b/c/deep.txt", path), 0);
	snprintf(path, sizeof(path), "%s/dangling", src);
	assert_int_equal(symlink("/nonexistent/target", path), 0);

	assert_int_equal(atex_connection_copy_to(c, src, dst, NULL), 0);

	stat_ok(dst, "top.sh", &st);
	assert_int_equal(st.st_mode & 07777, 0751);
	assert_int_equal(st.st_mtime, 1000000000);
	stat_ok(dst, "secret", &st);
	assert_int_equal(st.st_mode & 07777, 0600);
	stat_ok(dst, "a/b", &st);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	stat_ok(dst, "link", &st);
	assert_true(S_ISLNK(st.st_mode));
	snprintf(path, sizeof(path), "%s/link", dst);
	n = readlink(path, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, "a/b/c/deep.txt");
	stat_ok(dst, "dangling", &st);
	assert_true(S_ISLNK(st.st_mode));
	snprintf(path, sizeof(path), "%s/a/b/c/deep.txt", dst);
	char *content;
	size_t len;

	assert_int_equal(atex_file_read(&content, &len, path), 0);
	assert_string_equal(content, "deep\n");
	free(content);

	/* A second copy merges: files already there stay. */
	write_file(dst, "extra", "kept\n");
	write_file(src, "added", "new\n");
	assert_int_equal(atex_connection_copy_to(c, src, dst, NULL), 0);
	stat_ok(dst, "extra", &st);
	stat_ok(dst, "added", &st);

	atex_connection_free(c);
	free(dst);
	tree_remove(src);
	tree_remove(top);
}

static void test_copy_to_relative_src(void **state)
{
	/* src is relative to the program, not to the connection's cwd. */
	char *top = tmpdir_new();
	char *dst = atex_path_join(top, "dst");
	char cwd[4096];
	atex_connection *c = local_new("/");
	struct stat st;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	write_file(top, "src/file", "x\n");
	assert_int_equal(chdir(top), 0);
	assert_int_equal(atex_connection_copy_to(c, "src", dst, NULL), 0);
	assert_int_equal(chdir(cwd), 0);
	stat_ok(dst, "file", &st);
	atex_connection_free(c);
	free(dst);
	tree_remove(top);
}

static void test_copy_to_errors(void **state)
{
	atex_connection *c = local_new(NULL);
	char *top = tmpdir_new();
	char *file = atex_path_join(top, "file");
	char *dst = atex_path_join(file, "below");

	write_file(top, "file", "x\n");
	assert_int_equal(
		atex_connection_copy_to(c, "/nonexistent-src", top, NULL),
		ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "/nonexistent-src"));
	/* The destination cannot be created under a regular file. */
	assert_int_equal(atex_connection_copy_to(c, top, dst, NULL),
			 ATEX_EEXTERNAL);
	assert_non_null(strstr(atex_error_last(), dst));
	assert_int_equal(atex_connection_copy_to(c, "", top, NULL),
			 ATEX_EINVAL);
	free(file);
	free(dst);
	tree_remove(top);
	atex_connection_free(c);
}

static void test_copy_to_canceled(void **state)
{
	atex_connection *c = local_new(NULL);
	char *src = tmpdir_new(), *top = tmpdir_new();
	atex_cancel *cancel;

	assert_int_equal(atex_cancel_new(&cancel), 0);
	atex_cancel_fire(cancel);
	assert_int_equal(atex_connection_copy_to(c, src, top, cancel),
			 ATEX_ECANCELED);
	atex_cancel_free(cancel);
	tree_remove(src);
	tree_remove(top);
	atex_connection_free(c);
}

/* The text of dir/rel, which the caller frees. */
static char *text_of(const char *dir, const char *rel)
{
	char *path = atex_path_join(dir, rel), *content = NULL;
	size_t len;

	assert_int_equal(atex_file_read(&content, &len, path), 0);
	free(path);
	return content;
}

static void assert_text(const char *dir, const char *rel, const char *want)
{
	char *got = text_of(dir, rel);

	assert_string_equal(got, want);
	free(got);
}

/* copy_from: a tree into a new directory (made with its parents), modes
 * and symlinks kept, merged on a second copy; a file replacing dst. */
static void test_copy_from(void **state)
{
	char *src = tmpdir_new(), *top = tmpdir_new();
	char *dst = atex_path_join(top, "new/parents/dst");
	char *file_dst = atex_path_join(top, "new/file/copy.txt");
	char *src_file = atex_path_join(src, "a/deep.txt");
	atex_connection *c = local_new("/");
	char path[4096], link[256];
	struct stat st;
	ssize_t n;

	write_file(src, "run.sh", "#!/bin/sh\n");
	write_file(src, "a/deep.txt", "deep\n");
	snprintf(path, sizeof(path), "%s/run.sh", src);
	assert_int_equal(chmod(path, 0751), 0);
	snprintf(path, sizeof(path), "%s/link", src);
	assert_int_equal(symlink("a/deep.txt", path), 0);

	assert_int_equal(atex_connection_copy_from(c, src, dst, NULL), 0);
	stat_ok(dst, "run.sh", &st);
	assert_int_equal(st.st_mode & 07777, 0751);
	stat_ok(dst, "link", &st);
	assert_true(S_ISLNK(st.st_mode));
	snprintf(path, sizeof(path), "%s/link", dst);
	n = readlink(path, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, "a/deep.txt");
	assert_text(dst, "a/deep.txt", "deep\n");

	/* Merged: what is there stays, what is new comes. */
	write_file(dst, "extra", "kept\n");
	write_file(src, "added", "new\n");
	assert_int_equal(atex_connection_copy_from(c, src, dst, NULL), 0);
	assert_text(dst, "extra", "kept\n");
	assert_text(dst, "added", "new\n");

	/* A file: its parents made, its mode kept, then replaced. */
	assert_int_equal(chmod(src_file, 0640), 0);
	assert_int_equal(atex_connection_copy_from(c, src_file, file_dst, NULL),
			 0);
	assert_int_equal(stat(file_dst, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_text(top, "new/file/copy.txt", "deep\n");
	write_file(src, "a/deep.txt", "changed\n");
	assert_int_equal(atex_connection_copy_from(c, src_file, file_dst, NULL),
			 0);
	assert_text(top, "new/file/copy.txt", "changed\n");

	atex_connection_free(c);
	free(dst);
	free(file_dst);
	free(src_file);
	tree_remove(src);
	tree_remove(top);
}

/* src is a path on the system: relative to the connection's directory;
 * dst one of this program: relative to ours. */
static void test_copy_from_relative(void **state)
{
	char *sys = tmpdir_new(), *top = tmpdir_new();
	char cwd[4096];
	atex_connection *c = local_new(sys);

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	write_file(sys, "logs/a.log", "a\n");
	assert_int_equal(chdir(top), 0);
	assert_int_equal(atex_connection_copy_from(c, "logs", "got", NULL), 0);
	assert_int_equal(
		atex_connection_copy_from(c, "logs/a.log", "one.log", NULL), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_text(top, "got/a.log", "a\n");
	assert_text(top, "one.log", "a\n");
	atex_connection_free(c);
	tree_remove(sys);
	tree_remove(top);
}

static void test_copy_from_errors(void **state)
{
	atex_connection *c = local_new(NULL);
	char *top = tmpdir_new();
	char *file = atex_path_join(top, "file");
	char *below = atex_path_join(file, "below");
	char *missing = atex_path_join(top, "missing");
	atex_cancel *cancel;

	write_file(top, "file", "x\n");
	write_file(top, "dir/x", "x\n");
	/* A missing source names itself. */
	assert_int_equal(atex_connection_copy_from(c, missing, top, NULL),
			 ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), missing));
	/* A file does not replace a directory. */
	assert_int_equal(atex_connection_copy_from(c, file, top, NULL),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "is a directory"));
	/* A tree cannot go under a regular file. */
	assert_int_equal(atex_connection_copy_from(c, top, below, NULL),
			 ATEX_EIO);
	assert_non_null(strstr(atex_error_last(), file));
	assert_int_equal(atex_connection_copy_from(c, "", top, NULL),
			 ATEX_EINVAL);
	assert_int_equal(atex_connection_copy_from(c, file, NULL, NULL),
			 ATEX_EINVAL);
	assert_int_equal(atex_cancel_new(&cancel), 0);
	atex_cancel_fire(cancel);
	assert_int_equal(atex_connection_copy_from(c, file, missing, cancel),
			 ATEX_ECANCELED);
	atex_cancel_free(cancel);
	free(file);
	free(below);
	free(missing);
	tree_remove(top);
	atex_connection_free(c);
}

/* The local system is the machine atex runs on: no reboots; its boot id
 * is this machine's. */
static void test_reboot_and_boot_id(void **state)
{
	atex_connection *c = local_new(NULL);
	char *id = NULL, *mine = NULL;
	size_t len;

	assert_false(atex_connection_can_reboot(c));
	assert_false(atex_connection_can_reboot(NULL));
	assert_int_equal(atex_connection_boot_id(&id, c, 10000, NULL), 0);
	assert_int_equal(
		atex_file_read(&mine, &len, "/proc/sys/kernel/random/boot_id"),
		0);
	mine[strcspn(mine, "\n")] = '\0';
	/* Trimmed: no newline. */
	assert_string_equal(id, mine);
	free(id);
	free(mine);
	assert_int_equal(atex_connection_boot_id(NULL, c, 10000, NULL),
			 ATEX_EINVAL);
	atex_connection_free(c);
}

/* A version 1 table: its fields end before copy_from, which must not be
 * read (here the struct really ends there). boot_id then runs `cat`
 * through its spawn, can_reboot is false, copy_from unsupported. */
struct v1_ops {
	unsigned int version;
	int (*connect)(atex_connection *, int, atex_cancel *);
	int (*disconnect)(atex_connection *);
	int (*spawn)(atex_process **, atex_connection *,
		     const struct atex_spawn_options *);
	int (*copy_to)(atex_connection *, const char *, const char *,
		       atex_cancel *);
	const char *(*name)(const atex_connection *);
	void (*free)(atex_connection *);
};

static atex_connection *v1_inner;

static int v1_spawn(atex_process **out, atex_connection *c,
		    const struct atex_spawn_options *opts)
{
	/* Shows it is our spawn that ran the default's command. */
	assert_string_equal(opts->argv[0], "cat");
	assert_string_equal(opts->argv[1], "/proc/sys/kernel/random/boot_id");
	return atex_connection_spawn(
		out, v1_inner,
		&(struct atex_spawn_options){
			.version = 1,
			.argv = (const char *const[]){"printf", "v1-boot \n",
						      NULL},
			.stdin_fd = opts->stdin_fd,
			.stdout_fd = opts->stdout_fd,
			.stderr_fd = opts->stderr_fd});
}

static const char *v1_name(const atex_connection *c)
{
	return "v1";
}

static void test_ops_version_1(void **state)
{
	/* Followed by bytes that would crash if taken for pointers. */
	static struct {
		struct v1_ops ops;
		unsigned char poison[3 * sizeof(void *)];
	} table = {{1, NULL, NULL, v1_spawn, NULL, v1_name, NULL},
		   {0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
		    0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
		    0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5}};
	atex_connection v1 = {(const struct atex_connection_ops *)&table.ops};
	char *id = NULL;

	memset(table.poison, 0xa5, sizeof(table.poison));
	v1_inner = local_new(NULL);
	assert_false(atex_connection_can_reboot(&v1));
	assert_int_equal(atex_connection_copy_from(&v1, "/a", "/b", NULL),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "v1"));
	assert_int_equal(atex_connection_boot_id(&id, &v1, 10000, NULL), 0);
	assert_string_equal(id, "v1-boot");
	free(id);
	atex_connection_free(v1_inner);
}

/* A user's own connection compiled against a future header. */
static const struct atex_connection_ops future_ops = {
	.version = ATEX_CONNECTION_OPS_VERSION + 1,
};

/* A minimal one with only the required operations... and no spawn. */
static const struct atex_connection_ops bare_ops = {
	.version = ATEX_CONNECTION_OPS_VERSION,
};

static void test_dispatch_checks(void **state)
{
	const char *argv[] = {"true", NULL};
	const char *empty[] = {NULL};
	atex_connection future = {&future_ops}, bare = {&bare_ops};
	atex_connection *c = local_new(NULL);
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	atex_process *p = (atex_process *)1;

	assert_int_equal(atex_connection_connect(NULL, -1, NULL), ATEX_EINVAL);
	assert_int_equal(atex_connection_connect(&future, -1, NULL),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "version"));
	assert_int_equal(atex_connection_spawn(&p, &future, &opts),
			 ATEX_EINVAL);
	assert_null(p);
	/* Optional operations absent: connect is a success, spawn not. */
	assert_int_equal(atex_connection_connect(&bare, -1, NULL), 0);
	opts.argv = argv;
	assert_int_equal(atex_connection_spawn(&p, &bare, &opts), ATEX_EINVAL);
	assert_int_equal(atex_connection_copy_to(&bare, "/a", "/b", NULL),
			 ATEX_EINVAL);
	assert_string_equal(atex_connection_name(&bare), "connection");
	atex_connection_free(&bare);

	assert_int_equal(atex_connection_spawn(&p, c, NULL), ATEX_EINVAL);
	opts.argv = empty;
	assert_int_equal(atex_connection_spawn(&p, c, &opts), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "local"));
	opts.argv = argv;
	opts.stdout_fd = -42;
	assert_int_equal(atex_connection_spawn(&p, c, &opts), ATEX_EINVAL);
	opts.stdout_fd = ATEX_STDIO_NULL;
	opts.version = 0;
	assert_int_equal(atex_connection_spawn(&p, c, &opts), ATEX_EINVAL);
	assert_int_equal(atex_connection_run(NULL, c, argv, NULL, 0, -1, NULL),
			 ATEX_EINVAL);
	atex_connection_free(c);
}

/* Joins a command_argv result with spaces, for one comparison. */
static char *joined(char **argv)
{
	struct atex_buf b = ATEX_BUF_INIT;

	for (size_t i = 0; argv[i]; i++) {
		if (i)
			atex_buf_putc(&b, ' ');
		atex_buf_puts(&b, argv[i]);
	}
	return atex_buf_detach(&b);
}

static void check_argv(atex_connection *c, const char *cwd,
		       const char *const *env, const char *want)
{
	const char *argv[] = {"printf", "%s\\n", "a b", NULL};
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	char **out = NULL, *s;

	opts.argv = argv;
	opts.cwd = cwd;
	opts.env = env;
	assert_int_equal(atex_connection_command_argv(&out, c, &opts), 0);
	s = joined(out);
	assert_string_equal(s, want);
	free(s);
	atex_command_argv_free(out);
}

/* The local line that runs a command: the argv, behind env when a cwd or
 * environment is set; podman's exec line; errors for no argv and for a
 * table without the operation. And the line really runs there. */
static void test_command_argv(void **state)
{
	const char *env[] = {"A=1", "B=x y", NULL};
	const char *podargs[] = {"--runtime", "runc", NULL};
	const char *sh[] = {"sh", "-c", "pwd; echo \"$A $B\"", NULL};
	struct atex_podman_options po = ATEX_PODMAN_OPTIONS_INIT;
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	atex_connection *c = local_new(NULL), *d = local_new("/tmp");
	atex_connection *p = NULL, bare = {&bare_ops};
	struct atex_run_result r = {0};
	char **out = (char **)1;

	(void)state;
	check_argv(c, NULL, NULL, "printf %s\\n a b");
	check_argv(c, "/", env, "env -C / -- A=1 B=x y printf %s\\n a b");
	check_argv(d, NULL, NULL, "env -C /tmp -- printf %s\\n a b");
	po.container = "box";
	po.podman_args = podargs;
	assert_int_equal(atex_podman_connection_new(&p, &po), 0);
	check_argv(p, "/srv", env,
		   "podman --runtime runc exec -i -w /srv -e A=1 -e B=x y box "
		   "printf %s\\n a b");
	check_argv(p, NULL, NULL,
		   "podman --runtime runc exec -i box printf "
		   "%s\\n a b");

	/* It runs: through the local connection's own spawn. */
	opts.argv = sh;
	opts.cwd = "/";
	opts.env = env;
	assert_int_equal(atex_connection_command_argv(&out, c, &opts), 0);
	assert_int_equal(atex_connection_run(&r, c, (const char *const *)out,
					     NULL, 0, 10000, NULL),
			 0);
	assert_string_equal(r.out, "/\n1 x y\n");
	atex_run_result_clear(&r);
	atex_command_argv_free(out);

	opts.argv = NULL;
	assert_int_equal(atex_connection_command_argv(&out, c, &opts),
			 ATEX_EINVAL);
	assert_null(out);
	opts.argv = sh;
	assert_int_equal(atex_connection_command_argv(&out, &bare, &opts),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "not implemented"));
	atex_command_argv_free(NULL);
	atex_connection_free(p);
	atex_connection_free(d);
	atex_connection_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_and_noops),
		cmocka_unit_test(test_run_exit_codes),
		cmocka_unit_test(test_run_missing_program),
		cmocka_unit_test(test_run_10mib_roundtrip),
		cmocka_unit_test(test_run_big_both_streams),
		cmocka_unit_test(test_run_input_not_read),
		cmocka_unit_test(test_run_stderr_separate),
		cmocka_unit_test(test_run_timeout),
		cmocka_unit_test(test_run_timeout_kills_group),
		cmocka_unit_test(test_run_cancel),
		cmocka_unit_test(test_run_background_child),
		cmocka_unit_test(test_run_concurrent),
		cmocka_unit_test(test_cwd_default),
		cmocka_unit_test(test_spawn_env),
		cmocka_unit_test(test_copy_to),
		cmocka_unit_test(test_copy_to_relative_src),
		cmocka_unit_test(test_copy_to_errors),
		cmocka_unit_test(test_copy_to_canceled),
		cmocka_unit_test(test_dispatch_checks),
		cmocka_unit_test(test_copy_from),
		cmocka_unit_test(test_copy_from_relative),
		cmocka_unit_test(test_copy_from_errors),
		cmocka_unit_test(test_reboot_and_boot_id),
		cmocka_unit_test(test_ops_version_1),
		cmocka_unit_test(test_command_argv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
