/*
 * test_executor.c - the fmf executor end to end, on fixture trees:
 * docs/PROTOCOL.md sections 1-4, each rule by a test that fails when the
 * rule breaks, over one kind of connection chosen by the environment:
 *
 *   ATEX_EXECUTOR_CONNECTION=local (default): this machine.
 *   ATEX_EXECUTOR_CONNECTION=ssh: ATEX_TEST_SSH_HOST, _PORT, _USER, _KEY
 *     (and ATEX_TEST_SSH_BIN, a directory first on the sessions' PATH),
 *     as tests/integration/with-server.sh sets them for its private sshd
 *     on 127.0.0.1 (this same machine).
 *   ATEX_EXECUTOR_CONNECTION=podman: a container of our own, started at
 *     setup and removed at the end, from atex-test-minbase (or
 *     ATEX_TEST_PODMAN_IMAGE).
 *
 * Whatever is checked on the system under test (the work directory, what
 * prepare scripts wrote, the processes a test left) is checked through the
 * connection itself, or, for processes over local and ssh, in this
 * machine's /proc; the artifacts are on this machine.
 *
 * Trees: the conformance trees of the Python ATEX project
 * ($ATEX_CONFORMANCE/fmf/trees/atex-*: results, env, cwd, misc, pty) and our
 * own ($ATEX_TEST_TREES/executor-*: hostile streams and processes, the
 * rules the conformance trees do not reach, tmt's helpers, a reboot that
 * keeps the connection, packages; over ssh also a reboot and a drop that
 * take the server side of the connection down).
 *
 * The artifacts are checked exactly: every line of ARTIFACTS/results is
 * compared with json_equal to an expected object (a "note" of "*" means
 * any non-empty string, "~a|b" a string containing a or b), files byte by
 * byte, the listing of files/ where it matters, run_test's return code and
 * exit code.
 *
 * Around every session (discover, executor, start ... stop, free): the work
 * directory start made on the system (/var/tmp/atex-*, recognised as the
 * new one holding our tree) must be gone after stop, the local staging
 * directory ($TMPDIR/atex-stage-*) after free. After every run, no process may
 * be left on the system whose working directory is in the work directory
 * (only a process that left the test's session on purpose is exempt, and
 * killed by the test).
 *
 * `apt-get` is found first on the system's PATH in a directory of ours
 * (local: our PATH; ssh: ATEX_TEST_SSH_BIN; podman: /usr/local/sbin in our
 * container): a wrapper that logs its arguments and runs the real one, so
 * that a package step that must be a no-op can be seen to be one. (The
 * environment given to the executor cannot do it: packages are installed
 * before it is applied.)
 *
 * Needs root (apt-get), bash, coreutils, util-linux (setsid, script, more)
 * on the system.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/connection.h"
#include "atex/executor.h"
#include "atex/fmf.h"
#include "helpers.h"
#include "fmf/yaml.h"

#define GIB	     (1024LL * 1024 * 1024)
#define NO_EXIT_CODE 12345 /* what exit_code holds before run_test */

enum kind {
	KIND_LOCAL,
	KIND_SSH,
	KIND_PODMAN,
};

/* What podman needs on this machine, before every subcommand. */
static const char *const podman_global[] = {
	"--runtime", "runc", "--cgroup-manager", "cgroupfs", NULL};
#define PODMAN_GLOBAL "--runtime runc --cgroup-manager cgroupfs"
#define PODMAN_RUN                                                             \
	"--ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --network none"

static struct {
	char conformance[PATH_MAX]; /* .../tests/conformance/fmf/trees */
	char trees[PATH_MAX];	    /* .../tests/integration/trees */
	/* /tmp/atex-exectest-XXXXXX, on this machine (the artifacts) and on
	 * the system (scratch directories; for local and ssh the same one) */
	char base[64];
	char apt_log[128]; /* on the system: what our apt-get was asked */
	enum kind kind;
	const char *kind_name;
	char container[64]; /* podman: ours, or "" */
	atex_connection *conn;
	/* What sessions run on when set (a connection of our own wrapping
	 * conn, see "fake boot"); NULL: conn. */
	atex_connection *session_conn;
	unsigned long runs;
} g;

/* ------------------------------------------------------------------------
 * Small helpers.
 */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/*
 * Failures of the checks on artifacts are soft: printed and counted, so
 * that one run shows every difference; each test ends with
 * soft_check(), which fails it when any check did. Failures of the
 * harness itself (a session that does not start) are hard.
 */
static int soft_failed;

static void soft_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void soft_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAILED: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	soft_failed++;
}

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			soft_fail("%s:%d: %s", __FILE__, __LINE__, #cond);     \
	} while (0)

static void soft_check(void)
{
	int n = soft_failed;

	soft_failed = 0;
	if (n)
		fail_msg("%d checks failed (above)", n);
}

/* strcmp for strings that may be missing (NULL). */
static bool streq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* Whether `text` holds the whole line `line` (without its '\n'). */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || !p[n]))
			return true;
	}
	return false;
}

/* The value of the line "NAME=..." of an `env` dump, or NULL (static). */
static const char *env_value(const char *text, const char *name)
{
	static char value[PATH_MAX];
	size_t n = strlen(name);

	for (const char *p = text; p && *p;
	     p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (!strncmp(p, name, n) && p[n] == '=') {
			size_t len = strcspn(p + n + 1, "\n");

			assert_true(len < sizeof(value));
			memcpy(value, p + n + 1, len);
			value[len] = '\0';
			return value;
		}
	}
	return NULL;
}

/* Names in `dir` starting with `prefix`, NULL-terminated. */
static char **names_of(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = calloc(1, sizeof(*v));
	size_t n = 0;

	assert_non_null(d);
	assert_non_null(v);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		v = realloc(v, (n + 2) * sizeof(*v));
		assert_non_null(v);
		v[n++] = strdup(de->d_name);
		v[n] = NULL;
	}
	closedir(d);
	return v;
}

static bool names_have(char **v, const char *name)
{
	for (; *v; v++)
		if (!strcmp(*v, name))
			return true;
	return false;
}

static void names_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* ------------------------------------------------------------------------
 * The system under test, through the connection (the local connection:
 * this machine).
 */

/* Runs `sh -c SCRIPT sh ARGS...` (ARGS up to a NULL) on the system with
 * `in` (may be NULL) on its stdin; returns its exit status, and its stdout
 * in *out when `out` (the caller frees it). A connection failure fails the
 * test. */
static int sys_sh(char **out, size_t *out_len, const char *in,
		  const char *script, ...) __attribute__((sentinel));

static int sys_sh(char **out, size_t *out_len, const char *in,
		  const char *script, ...)
{
	const char *argv[16] = {"sh", "-c", script, "sh"};
	struct atex_run_result r = {0};
	size_t n = 4;
	const char *a;
	va_list ap;
	int rc, status;

	va_start(ap, script);
	while ((a = va_arg(ap, const char *))) {
		assert_true(n < 15);
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	rc = atex_connection_run(&r, g.conn, argv, in, in ? strlen(in) : 0,
				 60000, NULL);
	if (rc)
		fail_msg("on %s: sh -c '%s': %d: %s",
			 atex_connection_name(g.conn), script, rc,
			 atex_error_last());
	status = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
	/* Our scripts never exit 255: over ssh, that is the connection. */
	if (status == 255 || status < 0)
		fail_msg("on %s: sh -c '%s': status %d: %s",
			 atex_connection_name(g.conn), script, r.status,
			 r.err ? r.err : "");
	if (out) {
		*out = r.out ? r.out : strdup("");
		r.out = NULL;
		if (out_len)
			*out_len = r.out_len;
	}
	atex_run_result_clear(&r);
	return status;
}

/* A file on the system, NUL-terminated, or NULL when it cannot be read. */
static char *sys_read(const char *path, size_t *len)
{
	char *out;

	if (sys_sh(&out, len, NULL, "exec cat -- \"$1\" 2>/dev/null", path,
		   NULL) == 0)
		return out;
	free(out);
	return NULL;
}

static bool sys_exists(const char *path)
{
	return sys_sh(NULL, NULL, NULL, "[ -e \"$1\" ] || [ -L \"$1\" ]", path,
		      NULL) == 0;
}

static void sys_rm(const char *path)
{
	assert_int_equal(
		sys_sh(NULL, NULL, NULL, "rm -f -- \"$1\"", path, NULL), 0);
}

/* Writes `text` to `path` on the system, mode `mode` ("0755"). */
static void sys_write(const char *path, const char *text, const char *mode)
{
	if (sys_sh(NULL, NULL, text, "cat >\"$1\" && chmod \"$2\" \"$1\"", path,
		   mode, NULL))
		fail_msg("cannot write %s on %s", path,
			 atex_connection_name(g.conn));
}

/* Names in `dir` on the system starting with `prefix`, NULL-terminated. */
static char **sys_names(const char *dir, const char *prefix)
{
	char *out, *p, *nl;
	char **v = calloc(1, sizeof(*v));
	size_t n = 0;

	assert_non_null(v);
	assert_int_equal(sys_sh(&out, NULL, NULL,
				"cd \"$1\" || exit 0; for f in \"$2\"*; do "
				"[ -e \"$f\" ] || [ -L \"$f\" ] || continue; "
				"printf '%s\\n' \"$f\"; done",
				dir, prefix, NULL),
			 0);
	for (p = out; (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		v = realloc(v, (n + 2) * sizeof(*v));
		assert_non_null(v);
		v[n++] = strdup(p);
		v[n] = NULL;
	}
	free(out);
	return v;
}

/* Whether dir/rel on the system holds the same bytes as the local file
 * `path`. */
static bool sys_same_file(const char *dir, const char *rel, const char *path)
{
	char *p = xsprintf("%s/%s", dir, rel);
	size_t la, lb;
	char *a = sys_read(p, &la), *b = slurp(path, &lb);
	bool same = a && b && la == lb && !memcmp(a, b, la);

	free(a);
	free(b);
	free(p);
	return same;
}

/* ------------------------------------------------------------------------
 * Processes on the system: for local and ssh (127.0.0.1) found in our own
 * /proc, for podman in the container's, through the connection.
 */

/* The system's processes whose command line contains the needle (read
 * from stdin, so that the script's own command line does not hold it):
 * one pid a line; killed with SIGKILL when $1 is "kill". */
static const char sys_procs_arg_script[] =
	"IFS= read -r n; for p in /proc/[0-9]*; do "
	"c=$(tr '\\0' ' ' <\"$p/cmdline\" 2>/dev/null) || continue; "
	"case $c in *\"$n\"*) echo \"${p#/proc/}\"; "
	"[ \"$1\" = kill ] && kill -KILL \"${p#/proc/}\" 2>/dev/null;; "
	"esac; done; exit 0";

/* The system's processes working in $2 or under it: "PID CMDLINE" a line;
 * killed with SIGKILL when $1 is "kill". */
static const char sys_procs_dir_script[] =
	"for p in /proc/[0-9]*; do "
	"c=$(readlink \"$p/cwd\" 2>/dev/null) || continue; "
	"case $c in \"$2\"|\"$2\"/*) printf '%s %s\\n' \"${p#/proc/}\" "
	"\"$(tr '\\0' ' ' <\"$p/cmdline\" 2>/dev/null)\"; "
	"[ \"$1\" = kill ] && kill -KILL \"${p#/proc/}\" 2>/dev/null;; "
	"esac; done; exit 0";

static int count_lines(const char *text)
{
	int n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

static int sys_procs(const char *script, const char *in, const char *arg,
		     bool kill_them, char *which, size_t which_len)
{
	char *out, *line = xsprintf("%s\n", in ? in : "");
	int n;

	assert_int_equal(sys_sh(&out, NULL, line, script,
				kill_them ? "kill" : "list", arg ? arg : "",
				NULL),
			 0);
	n = count_lines(out);
	if (which_len)
		snprintf(which, which_len, "%s", out);
	free(out);
	free(line);
	return n;
}

/* Processes (not us) whose command line contains `needle`; killed with
 * SIGKILL when `kill_them`. */
static int procs_with_arg(const char *needle, bool kill_them)
{
	DIR *d;
	struct dirent *de;
	int count = 0;

	if (g.kind == KIND_PODMAN)
		return sys_procs(sys_procs_arg_script, needle, NULL, kill_them,
				 NULL, 0);
	d = opendir("/proc");
	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[64], *cmd;
		size_t len;
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		cmd = slurp(path, &len);
		if (!cmd)
			continue;
		for (size_t i = 0; i < len; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		if (strstr(cmd, needle)) {
			count++;
			if (kill_them)
				kill(pid, SIGKILL);
		}
		free(cmd);
	}
	closedir(d);
	return count;
}

/* Processes whose working directory is `dir` or under it. */
static int procs_in_dir(const char *dir, char *which, size_t which_len)
{
	DIR *d;
	struct dirent *de;
	size_t n = strlen(dir);
	int count = 0;

	if (g.kind == KIND_PODMAN)
		return sys_procs(sys_procs_dir_script, NULL, dir, false, which,
				 which_len);
	d = opendir("/proc");
	assert_non_null(d);
	if (which_len)
		which[0] = '\0';
	while ((de = readdir(d))) {
		char path[64], cwd[PATH_MAX], *cmd;
		pid_t pid = (pid_t)atoi(de->d_name);
		ssize_t len;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
		len = readlink(path, cwd, sizeof(cwd) - 1);
		if (len < 0)
			continue;
		cwd[len] = '\0';
		if (strncmp(cwd, dir, n) || (cwd[n] && cwd[n] != '/'))
			continue;
		count++;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		cmd = slurp(path, NULL);
		if (which_len && cmd)
			snprintf(which + strlen(which),
				 which_len - strlen(which), "[%d %s] ",
				 (int)pid, cmd);
		free(cmd);
	}
	closedir(d);
	return count;
}

/* Kills the processes working in `dir`. */
static void kill_procs_in_dir(const char *dir)
{
	DIR *d;
	struct dirent *de;
	size_t n = strlen(dir);

	if (g.kind == KIND_PODMAN) {
		sys_procs(sys_procs_dir_script, NULL, dir, true, NULL, 0);
		return;
	}
	d = opendir("/proc");
	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[64], cwd[PATH_MAX];
		pid_t pid = (pid_t)atoi(de->d_name);
		ssize_t len;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
		len = readlink(path, cwd, sizeof(cwd) - 1);
		if (len < 0)
			continue;
		cwd[len] = '\0';
		if (!strncmp(cwd, dir, n) && (!cwd[n] || cwd[n] == '/'))
			kill(pid, SIGKILL);
	}
	closedir(d);
}

/* Waits up to `ms` for the processes with `needle` to be gone. */
static bool procs_gone(const char *needle, int ms)
{
	double end = now_ms() + ms;

	while (procs_with_arg(needle, false) > 0) {
		if (now_ms() > end)
			return false;
		usleep(50 * 1000);
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Sessions: discovery, executor, start ... stop, free, with the checks
 * around them.
 */

struct session {
	char root[PATH_MAX];
	atex_fmf_discovery *disc;
	atex_executor *e;
	char workdir[PATH_MAX]; /* found after start */
	char stage[PATH_MAX];	/* found after start, or "" */
	char **stage_before;
};

/* The executor's memory_limit for the sessions opened next (0: its
 * default). */
static size_t session_memory_limit;
/* compat_python_atex of the executors session_open makes. */
static bool session_compat;

/* Open sessions, for the teardown of a test that failed half-way. */
static struct session *open_sessions[4];

static void remember(struct session *s, bool on)
{
	for (size_t i = 0; i < 4; i++) {
		if (on && !open_sessions[i]) {
			open_sessions[i] = s;
			return;
		}
		if (!on && open_sessions[i] == s) {
			open_sessions[i] = NULL;
			return;
		}
	}
	assert_false(on);
}

/* Whether dir/rel holds the same bytes as the file `path`. */
static bool same_file(const char *dir, const char *rel, const char *path)
{
	char *p = xsprintf("%s/%s", dir, rel);
	size_t la, lb;
	char *a = slurp(p, &la), *b = slurp(path, &lb);
	bool same = a && b && la == lb && !memcmp(a, b, la);

	free(a);
	free(b);
	free(p);
	return same;
}

/* The new directory `prefix`* of `dir` (not in `before`) that holds our
 * tree as `tree/` (fmf.c's layout, also checked through TMT_TREE); on the
 * system when `on_system`, else on this machine. */
static bool find_new(char *out, size_t out_len, const char *dir,
		     const char *prefix, char **before, const char *root,
		     bool on_system)
{
	char **now = on_system ? sys_names(dir, prefix) : names_of(dir, prefix);
	char *main_fmf = xsprintf("%s/main.fmf", root);
	int found = 0;

	for (char **p = now; *p; p++) {
		char *path = xsprintf("%s/%s", dir, *p);

		if (!names_have(before, *p) &&
		    (on_system ? sys_same_file(path, "tree/main.fmf", main_fmf)
			       : same_file(path, "tree/main.fmf", main_fmf))) {
			snprintf(out, out_len, "%s", path);
			found++;
		}
		free(path);
	}
	names_free(now);
	free(main_fmf);
	if (found > 1)
		fail_msg("%d new %s/%s* directories hold %s", found, dir,
			 prefix, root);
	return found == 1;
}

/* Where the executor stages: $TMPDIR, as it does (with-server.sh gives
 * each run its own, so that runs side by side do not see each other's). */
static const char *tmp_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp && *tmp ? tmp : "/tmp";
}

static struct session *session_open(const char *root, const char *plan,
				    const char *const *env)
{
	struct session *s = calloc(1, sizeof(*s));
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	char **var_before;
	int rc;

	assert_non_null(s);
	snprintf(s->root, sizeof(s->root), "%s", root);
	dopts.plan = plan;
	rc = atex_fmf_discover(&s->disc, root, &dopts);
	if (rc)
		fail_msg("discover %s %s: %s", root, plan, atex_error_last());
	eopts.connection = g.session_conn ? g.session_conn : g.conn;
	eopts.discovery = s->disc;
	eopts.env = env;
	eopts.memory_limit = session_memory_limit;
	eopts.compat_python_atex = session_compat;
	assert_int_equal(atex_fmf_executor_new(&s->e, &eopts), 0);
	remember(s, true);
	var_before = sys_names("/var/tmp", "atex-");
	s->stage_before = names_of(tmp_dir(), "atex-stage-");
	rc = atex_executor_start(s->e);
	if (rc)
		fail_msg("start %s: %d: %s", root, rc, atex_error_last());
	if (!find_new(s->workdir, sizeof(s->workdir), "/var/tmp", "atex-",
		      var_before, root, true))
		fail_msg("no work directory for %s in /var/tmp on %s", root,
			 atex_connection_name(g.conn));
	/* The staging directory may be gone already: that is fine. */
	find_new(s->stage, sizeof(s->stage), tmp_dir(), "atex-stage-",
		 s->stage_before, root, false);
	names_free(var_before);
	return s;
}

/* Stop: the work directory is gone. Free: the staging directory too. */
static void session_close(struct session *s)
{
	char stage[PATH_MAX];
	int rc;

	rc = atex_executor_stop(s->e);
	if (rc)
		fail_msg("stop: %d: %s", rc, atex_error_last());
	if (sys_exists(s->workdir))
		fail_msg("the work directory %s is still there on %s after "
			 "stop",
			 s->workdir, atex_connection_name(g.conn));
	atex_executor_free(s->e);
	s->e = NULL;
	if (s->stage[0] && exists(s->stage))
		fail_msg("the staging directory %s is still there after free",
			 s->stage);
	if (find_new(stage, sizeof(stage), tmp_dir(), "atex-stage-",
		     s->stage_before, s->root, false))
		fail_msg("a staging directory %s is left after free", stage);
	atex_fmf_discovery_free(s->disc);
	s->disc = NULL;
	names_free(s->stage_before);
	remember(s, false);
	free(s);
}

/* After a failed test: whatever is still open goes, without checks. */
static int teardown(void **state)
{
	for (size_t i = 0; i < 4; i++) {
		struct session *s = open_sessions[i];

		if (!s)
			continue;
		atex_executor_free(s->e);
		atex_fmf_discovery_free(s->disc);
		names_free(s->stage_before);
		free(s);
		open_sessions[i] = NULL;
	}
	/* A fake boot connection of a test that failed half-way. */
	atex_connection_free(g.session_conn);
	g.session_conn = NULL;
	/* Only our own marks: other runs of this program may be going on. */
	{
		char needle[64];

		snprintf(needle, sizeof(needle), "atex-mark-%dx",
			 (int)getpid());
		procs_with_arg(needle, true);
	}
	soft_failed = 0;
	session_compat = false;
	return 0;
}

/* Changes a test's duration (its data is read at run time). */
static void set_duration(struct session *s, const char *test,
			 const char *duration)
{
	long i = atex_fmf_discovery_find(s->disc, test);
	json_t *data;

	assert_true(i >= 0);
	data = atex_fmf_discovery_test_data(s->disc, (size_t)i);
	assert_non_null(data);
	assert_int_equal(
		json_object_set_new(data, "duration", json_string(duration)),
		0);
}

/* ------------------------------------------------------------------------
 * Runs and their artifacts.
 */

struct run {
	char dir[PATH_MAX];
	char art[PATH_MAX]; /* ART: a scratch directory on the system */
	char mark[64];	    /* ATEX_MARK of the run: "atex-mark-<mark>..." */
	int rc;
	int exit_code;
	double ms;
};

enum run_flags {
	RUN_LEFTOVERS_OK = 1, /* the test leaves a process out of reach */
};

/* Runs `test` into `dir` (NULL: a new one under g.base), with ATEX_MARK
 * and ART (a scratch directory on the system, g.base/sys-N there, which
 * the test makes if it wants it) added to `env`. */
static void run_in(struct session *s, struct run *r, const char *test,
		   const char *dir, const char *const *env, int flags)
{
	const char *all[16];
	char mark_var[96], art_var[PATH_MAX + 8], which[2048];
	size_t n = 0;
	double t0;

	memset(r, 0, sizeof(*r));
	g.runs++;
	if (dir) {
		snprintf(r->dir, sizeof(r->dir), "%s", dir);
	} else {
		int len = snprintf(r->dir, sizeof(r->dir), "%s/%lu-", g.base,
				   g.runs);

		for (const char *p = test; *p && len < PATH_MAX - 1; p++)
			r->dir[len++] = *p == '/' ? '_' : *p;
		r->dir[len] = '\0';
	}
	snprintf(r->mark, sizeof(r->mark), "%dx%lu", (int)getpid(), g.runs);
	snprintf(mark_var, sizeof(mark_var), "ATEX_MARK=%s", r->mark);
	snprintf(r->art, sizeof(r->art), "%s/sys-%lu", g.base, g.runs);
	snprintf(art_var, sizeof(art_var), "ART=%s", r->art);
	all[n++] = mark_var;
	all[n++] = art_var;
	for (; env && *env; env++) {
		assert_true(n < 15);
		all[n++] = *env;
	}
	all[n] = NULL;
	r->exit_code = NO_EXIT_CODE;
	t0 = now_ms();
	r->rc = atex_executor_run_test(s->e, test, r->dir, all, &r->exit_code);
	r->ms = now_ms() - t0;
	print_message("  %-40s rc %d, exit code %d, %.0f ms%s%s\n", test, r->rc,
		      r->exit_code, r->ms, r->rc ? ": " : "",
		      r->rc ? atex_error_last() : "");
	if (flags & RUN_LEFTOVERS_OK)
		return;
	/* Killed processes may take a moment to go. */
	for (double end = now_ms() + 3000;;) {
		if (!procs_in_dir(s->workdir, which, sizeof(which)))
			break;
		if (now_ms() > end) {
			soft_fail("%s: processes left in %s: %s", test,
				  s->workdir, which);
			kill_procs_in_dir(s->workdir);
			break;
		}
		usleep(50 * 1000);
	}
}

static void run(struct session *s, struct run *r, const char *test,
		const char *const *env, int flags)
{
	run_in(s, r, test, NULL, env, flags);
}

static void expect_rc(const struct run *r, int rc, int exit_code)
{
	if (r->rc != rc || r->exit_code != exit_code)
		soft_fail("%s: rc %d, exit code %d; expected rc %d, exit code "
			  "%d",
			  r->dir, r->rc, r->exit_code, rc, exit_code);
}

/* Whether a note matches "*" (any), "~a|b" (contains a or b). */
static bool note_matches(const char *note, const char *pattern)
{
	const char *alt = pattern + 1;

	if (!note || !*note)
		return false;
	if (!strcmp(pattern, "*"))
		return true;
	while (*alt) {
		size_t n = strcspn(alt, "|");
		char *want = strndup(alt, n);
		bool found = strstr(note, want) != NULL;

		free(want);
		if (found)
			return true;
		alt += n;
		if (*alt)
			alt++;
	}
	return false;
}

static bool result_matches(json_t *actual, json_t *expected)
{
	json_t *note = json_object_get(expected, "note");
	const char *pattern = json_string_value(note);
	json_t *a, *x;
	bool same;

	if (!pattern || (pattern[0] != '*' && pattern[0] != '~'))
		return json_equal(actual, expected);
	if (!json_is_object(actual) ||
	    !note_matches(json_string_value(json_object_get(actual, "note")),
			  pattern))
		return false;
	a = json_deep_copy(actual);
	x = json_deep_copy(expected);
	json_object_del(a, "note");
	json_object_del(x, "note");
	same = json_equal(a, x);
	json_decref(a);
	json_decref(x);
	return same;
}

/* ARTIFACTS/results: exactly these lines (JSON texts, NULL-terminated). */
static void expect_results(const struct run *r, const char *const *lines)
{
	char *path = xsprintf("%s/results", r->dir);
	char *text = slurp(path, NULL), *p, *nl;
	size_t n = 0, want = 0;
	bool ok = true;

	if (!text) {
		soft_fail("%s: no results file", r->dir);
		free(path);
		return;
	}
	while (lines[want])
		want++;
	for (p = text; *p; p = nl + 1, n++) {
		json_error_t err;
		json_t *actual, *expected;

		nl = strchr(p, '\n');
		if (!nl) {
			print_error("line %zu has no newline\n", n + 1);
			ok = false;
			break;
		}
		*nl = '\0';
		if (n >= want) {
			ok = false;
			continue;
		}
		actual = json_loads(p, JSON_REJECT_DUPLICATES, &err);
		expected = json_loads(lines[n], 0, &err);
		if (!expected)
			fail_msg("bad expected JSON %s: %s", lines[n],
				 err.text);
		if (!actual || !result_matches(actual, expected)) {
			print_error("line %zu: %s\n     expected: %s\n", n + 1,
				    p, lines[n]);
			ok = false;
		}
		*nl = '\n';
		json_decref(actual);
		json_decref(expected);
	}
	if (n != want) {
		print_error("%zu lines, expected %zu\n", n, want);
		ok = false;
	}
	if (!ok) {
		print_error("%s:\n%s", path, text);
		for (size_t i = 0; i < want; i++)
			print_error("expected %s\n", lines[i]);
		soft_fail("%s: unexpected results", r->dir);
	}
	free(text);
	free(path);
}

#define RESULTS(r, ...)                                                        \
	expect_results(r, (const char *const[]){__VA_ARGS__, NULL})

/* The last line of ARTIFACTS/results, parsed. */
static json_t *last_result(const struct run *r)
{
	char *path = xsprintf("%s/results", r->dir);
	char *text = slurp(path, NULL), *last;
	size_t len;
	json_t *j;

	len = text ? strlen(text) : 0;
	if (len && text[len - 1] == '\n')
		text[len - 1] = '\0';
	last = len ? strrchr(text, '\n') : NULL;
	j = len ? json_loads(last ? last + 1 : text, 0, NULL) : NULL;
	if (!j) {
		soft_fail("%s: no last result", r->dir);
		j = json_object();
	}
	free(text);
	free(path);
	return j;
}

/* The contents of files/<rel> (NULL when missing). */
static char *artifact(const struct run *r, const char *rel, size_t *len)
{
	char *path = xsprintf("%s/files/%s", r->dir, rel);
	char *data = slurp(path, len);

	free(path);
	return data;
}

static void expect_file(const struct run *r, const char *rel, const void *data,
			size_t len)
{
	size_t got_len;
	char *got = artifact(r, rel, &got_len);

	if (!got) {
		soft_fail("%s: files/%s is missing", r->dir, rel);
		return;
	}
	if (got_len != len || memcmp(got, data, len)) {
		print_error("files/%s: %zu bytes:\n", rel, got_len);
		for (size_t i = 0; i < got_len && i < 512; i++)
			print_error(got[i] >= 0x20 && got[i] < 0x7f ? "%c"
								    : "\\x%02x",
				    (unsigned char)got[i]);
		print_error("\nexpected %zu bytes\n", len);
		soft_fail("%s: files/%s differs", r->dir, rel);
	}
	free(got);
}

#define EXPECT_TEXT(r, rel, text) expect_file(r, rel, text, sizeof(text) - 1)

/* Every path under `dir` (directories too when `dirs`), sorted, one per
 * line. */
static struct {
	char **v;
	size_t n;
	size_t skip;
	bool dirs;
} walk;

static int walk_one(const char *path, const struct stat *st, int type,
		    struct FTW *f)
{
	if (f->level == 0 || (type != FTW_F && !(walk.dirs && type == FTW_D)))
		return 0;
	walk.v = realloc(walk.v, (walk.n + 1) * sizeof(*walk.v));
	assert_non_null(walk.v);
	walk.v[walk.n++] = strdup(path + walk.skip);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *listing(const char *dir, bool dirs)
{
	size_t len = 0;
	char *out;

	memset(&walk, 0, sizeof(walk));
	walk.skip = strlen(dir) + 1;
	walk.dirs = dirs;
	if (exists(dir))
		assert_int_equal(nftw(dir, walk_one, 16, FTW_PHYS), 0);
	if (walk.n)
		qsort(walk.v, walk.n, sizeof(*walk.v), cmp_str);
	for (size_t i = 0; i < walk.n; i++)
		len += strlen(walk.v[i]) + 1;
	out = calloc(1, len + 1);
	assert_non_null(out);
	for (size_t i = 0; i < walk.n; i++) {
		strcat(out, walk.v[i]);
		strcat(out, "\n");
		free(walk.v[i]);
	}
	free(walk.v);
	return out;
}

/* The files under files/, exactly. */
static void expect_listing(const struct run *r, const char *want)
{
	char *dir = xsprintf("%s/files", r->dir);
	char *got = listing(dir, false);

	if (strcmp(got, want))
		soft_fail("%s: files/ holds:\n%s-- expected:\n%s", r->dir, got,
			  want);
	free(got);
	free(dir);
}

/* output.txt is the text (used where the test's output matters). */
static char *output_of(const struct run *r)
{
	char *out = artifact(r, "output.txt", NULL);

	if (!out) {
		soft_fail("%s: no files/output.txt", r->dir);
		out = strdup("");
	}
	return out;
}

/* ------------------------------------------------------------------------
 * 1. The conformance tree atex-results: every test, exactly.
 */

struct file_expect {
	const char *rel;
	const char *data; /* NULL: the tree's randfile */
	size_t len;
};

#define F(rel, s)                                                              \
	{                                                                      \
		rel, s, sizeof(s) - 1                                          \
	}

struct results_case {
	const char *test;
	bool shorten; /* duration 5 -> 2 */
	int rc;
	int exit_code;
	const char *lines[4];
	struct file_expect files[3];
	const char *listing; /* files/, exactly; NULL: not checked */
};

#define PASS_OUT "{\"status\": \"pass\", \"files\": [\"output.txt\"]}"
#define FAIL_OUT "{\"status\": \"fail\", \"files\": [\"output.txt\"]}"
#define BYTES5	 "\x00\x10\x20\x30\x40"

static const struct results_case results_cases[] = {
	{"/test_noresult_pass",
	 false,
	 0,
	 0,
	 {PASS_OUT},
	 {F("output.txt", "passing the script\n")},
	 "output.txt\n"},
	{"/test_noresult_fail",
	 false,
	 0,
	 1,
	 {FAIL_OUT},
	 {F("output.txt", "failing the script\n")},
	 "output.txt\n"},
	{"/test_noresult_abort",
	 true,
	 ATEX_ETIMEDOUT,
	 -1,
	 {"{\"status\": \"error\", \"note\": \"*\", \"files\": "
	  "[\"output.txt\"]}"},
	 {F("output.txt", "sleeping forever-ish\n")},
	 "output.txt\n"},

	{"/test_trivial", false, 0, 0, {"{\"status\": \"pass\"}"}, {}, ""},
	{"/test_trivial_multiline",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\"}"},
	 {},
	 ""},
	{"/test_trivial_repeated",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\"}", "{\"status\": \"fail\"}"},
	 {},
	 ""},
	{"/test_trivial_exit_mismatch",
	 false,
	 0,
	 1,
	 {"{\"status\": \"pass\"}"},
	 {},
	 ""},
	/* Python ATEX keeps the "pass" (and raises to its caller); here the
	 * test's own result says it was killed (docs/PROTOCOL.md). */
	{"/test_trivial_abort",
	 true,
	 ATEX_ETIMEDOUT,
	 -1,
	 {"{\"status\": \"error\", \"note\": \"~(it had reported "
	  "'pass')\"}"},
	 {},
	 ""},

	{"/test_subtest",
	 false,
	 0,
	 0,
	 {"{\"status\": \"fail\", \"name\": \"subtest\"}",
	  "{\"status\": \"pass\"}"},
	 {},
	 ""},
	{"/test_subtest_nested",
	 false,
	 0,
	 0,
	 {"{\"status\": \"fail\", \"name\": \"sub/res/ult\"}",
	  "{\"status\": \"pass\"}"},
	 {},
	 ""},
	{"/test_subtest_no_status",
	 false,
	 0,
	 0,
	 {"{\"name\": \"subtest\"}", PASS_OUT},
	 {F("output.txt", "")},
	 "output.txt\n"},
	{"/test_subtest_testout",
	 false,
	 0,
	 0,
	 {"{\"status\": \"fail\", \"name\": \"subtest\", \"files\": "
	  "[\"out.txt\"]}",
	  "{\"status\": \"pass\"}"},
	 {F("subtest/out.txt", "")},
	 "subtest/out.txt\n"},

	{"/test_files",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"some_file\"]}"},
	 {F("some_file", BYTES5)},
	 "some_file\n"},
	{"/test_files_upload",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"rand_file\"]}"},
	 {{"rand_file", NULL, 0}},
	 "rand_file\n"},
	{"/test_files_subpath",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"some/file\"]}"},
	 {F("some/file", BYTES5)},
	 "some/file\n"},
	{"/test_files_multiple",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"first_file\", "
	  "\"second_file\"]}"},
	 {F("first_file", "\x00\x10"), F("second_file", "\x20\x30\x40")},
	 "first_file\nsecond_file\n"},
	{"/test_files_multiple_results",
	 false,
	 0,
	 0,
	 {"{\"status\": \"fail\", \"files\": [\"first_file\"]}",
	  "{\"status\": \"pass\", \"files\": [\"second_file\"]}"},
	 {F("first_file", "\x00\x10"), F("second_file", "\x20\x30\x40")},
	 "first_file\nsecond_file\n"},
	{"/test_files_append",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"one_file\"]}"},
	 {F("one_file", BYTES5)},
	 "one_file\n"},
	{"/test_files_subtest",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"name\": \"sub/res/ult\", \"files\": "
	  "[\"some_file\"]}",
	  PASS_OUT},
	 {F("sub/res/ult/some_file", BYTES5), F("output.txt", "")},
	 "output.txt\nsub/res/ult/some_file\n"},
	{"/test_files_sorted",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"file_A\", \"file_B\", "
	  "\"file_C\"]}"},
	 {F("file_B", "\x00\x10"), F("file_C", "\x20\x30"),
	  F("file_A", "\x40\x50")},
	 "file_A\nfile_B\nfile_C\n"},

	{"/test_custom_keys",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"custom_string\": \"some string\", "
	  "\"custom_number\": 123, \"custom_list\": [1, 2, 3], "
	  "\"custom_object\": {\"some key\": \"some value\"}}"},
	 {},
	 ""},

	{"/test_partial", false, 0, 0, {"{\"status\": \"pass\"}"}, {}, ""},
	{"/test_partial_false",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\"}"},
	 {},
	 ""},
	{"/test_partial_abrupt",
	 false,
	 0,
	 0,
	 {FAIL_OUT},
	 {F("output.txt", "")},
	 "output.txt\n"},
	{"/test_partial_abrupt_nostatus",
	 false,
	 0,
	 1,
	 {FAIL_OUT},
	 {F("output.txt", "")},
	 "output.txt\n"},
	{"/test_partial_abrupt_files",
	 false,
	 0,
	 1,
	 {PASS_OUT},
	 {F("output.txt", "custom output")},
	 "output.txt\n"},
	{"/test_partial_abrupt_nofiles",
	 false,
	 0,
	 1,
	 {"{\"status\": \"pass\", \"files\": [\"output.txt\", "
	  "\"custom.txt\"]}"},
	 {F("custom.txt", "custom output"), F("output.txt", "stdout output\n")},
	 "custom.txt\noutput.txt\n"},
	{"/test_partial_abrupt_fileonly",
	 false,
	 0,
	 1,
	 {"{\"status\": \"fail\", \"files\": [\"output.txt\", "
	  "\"custom.txt\"]}"},
	 {F("custom.txt", "custom output"), F("output.txt", "stdout output\n")},
	 "custom.txt\noutput.txt\n"},
	{"/test_partial_abrupt_abort",
	 true,
	 ATEX_ETIMEDOUT,
	 -1,
	 {"{\"status\": \"error\", \"note\": \"*\", \"files\": "
	  "[\"output.txt\"]}"},
	 {F("output.txt", "sleeping forever-ish\n")},
	 "output.txt\n"},
	{"/test_partial_merging",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"attr1\": \"value1\", \"attr2\": "
	  "\"value2\"}"},
	 {},
	 ""},
	{"/test_partial_deleting",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\"}"},
	 {},
	 ""},
	{"/test_partial_overwriting",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"custom_string\": \"second string\", "
	  "\"custom_number\": 456, \"custom_list\": [1, 2, 3, 4, 5, 6], "
	  "\"custom_object\": {\"first key\": \"first value\", "
	  "\"second key\": \"second value\"}}"},
	 {},
	 ""},
	{"/test_partial_subtests",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"name\": \"sub1\"}",
	  "{\"status\": \"pass\"}",
	  "{\"status\": \"error\", \"name\": \"sub2\"}"},
	 {},
	 ""},
	{"/test_partial_files",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"first_file\", "
	  "\"second_file\"]}"},
	 {F("first_file", "\x00\x10"), F("second_file", "\x20\x30\x40")},
	 "first_file\nsecond_file\n"},
	{"/test_partial_files_append",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"one_file\"]}"},
	 {F("one_file", BYTES5)},
	 "one_file\n"},

	{"/test_testout",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"here.txt\"]}"},
	 {F("here.txt", "first line\nsecond line\n")},
	 "here.txt\n"},
	{"/test_testout_partial",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": [\"there.txt\"]}"},
	 {F("there.txt", "some line\n")},
	 "there.txt\n"},
	{"/test_testout_multiple",
	 false,
	 0,
	 0,
	 {"{\"status\": \"fail\", \"files\": [\"here.txt\"]}",
	  "{\"status\": \"pass\", \"files\": [\"there.txt\"]}"},
	 {F("here.txt", "some line\n"), F("there.txt", "some line\n")},
	 "here.txt\nthere.txt\n"},
	{"/test_testout_fallback",
	 false,
	 0,
	 0,
	 {PASS_OUT},
	 {F("output.txt", "some line\n")},
	 "output.txt\n"},
	{"/test_testout_fallback_partial",
	 false,
	 0,
	 1,
	 {"{\"status\": \"fail\", \"files\": [\"here.txt\"]}"},
	 {F("here.txt", "some line\n")},
	 "here.txt\n"},

	/* Channel errors: the error result names the fault. */
	{"/test_bad_json",
	 false,
	 ATEX_EFORMAT,
	 -1,
	 {"{\"status\": \"error\", \"note\": \"~JSON\", \"files\": "
	  "[\"output.txt\"]}"},
	 {F("output.txt", "")},
	 "output.txt\n"},
	{"/test_empty_json", false, 0, 0, {"{}"}, {}, ""},
	{"/test_no_status", false, 0, 0, {"{\"attr1\": \"value1\"}"}, {}, ""},
	{"/test_empty_files",
	 false,
	 0,
	 0,
	 {"{\"status\": \"pass\", \"files\": []}"},
	 {},
	 ""},
	/* The stream ends inside the promised file data. */
	{"/test_no_file_data",
	 false,
	 ATEX_EFORMAT,
	 -1,
	 {"{\"status\": \"error\", \"note\": \"~the stream ended inside file 1 "
	  "of 1\", \"files\": "
	  "[\"output.txt\"]}"},
	 {F("output.txt", "")},
	 NULL},
	{"/test_some_file_data",
	 false,
	 ATEX_EFORMAT,
	 -1,
	 {"{\"status\": \"error\", \"note\": \"~the stream ended inside file 1 "
	  "of 1\", \"files\": "
	  "[\"output.txt\"]}"},
	 {F("output.txt", "")},
	 NULL},
	{"/test_empty_testout",
	 false,
	 ATEX_EFORMAT,
	 -1,
	 {"{\"status\": \"error\", \"note\": \"~testout\", \"files\": "
	  "[\"output.txt\"]}"},
	 {F("output.txt", "")},
	 "output.txt\n"},
};

/* Checks one case, after the session: the artifacts outlive it. */
static void check_results_case(const struct results_case *c,
			       const struct run *r, const char *root)
{
	expect_rc(r, c->rc, c->exit_code);
	expect_results(r, c->lines);
	for (size_t i = 0; i < 3 && c->files[i].rel; i++) {
		const struct file_expect *f = &c->files[i];

		if (f->data) {
			expect_file(r, f->rel, f->data, f->len);
		} else {
			char *path = xsprintf("%s/randfile", root);
			size_t len;
			char *data = slurp(path, &len);

			assert_non_null(data);
			expect_file(r, f->rel, data, len);
			free(data);
			free(path);
		}
	}
	if (c->listing)
		expect_listing(r, c->listing);
}

static void test_results_tree(void **state)
{
	struct session *s;
	char *root = xsprintf("%s/atex-results", g.conformance);
	size_t n = sizeof(results_cases) / sizeof(results_cases[0]);
	struct run *runs = calloc(n, sizeof(*runs));

	assert_non_null(runs);
	s = session_open(root, "/plan", NULL);
	/* The table covers the tree: a test added there must be added
	 * here. */
	assert_int_equal(atex_fmf_discovery_count(s->disc), n);
	for (size_t i = 0; i < n; i++) {
		const struct results_case *c = &results_cases[i];

		if (c->shorten)
			set_duration(s, c->test, "2");
		run(s, &runs[i], c->test, NULL, 0);
		if (c->shorten && runs[i].ms > 6000)
			soft_fail(
				"%s: killed after %.0f ms, its duration is 2 s",
				c->test, runs[i].ms);
	}
	session_close(s);
	/* The artifacts outlive the executor. */
	for (size_t i = 0; i < n; i++) {
		print_message("  checking %s\n", results_cases[i].test);
		check_results_case(&results_cases[i], &runs[i], root);
	}
	/* The notes name the cause: for the timeouts, the duration. */
	for (size_t i = 0; i < n; i++) {
		const struct results_case *c = &results_cases[i];
		json_t *last;

		if (c->rc != ATEX_ETIMEDOUT)
			continue;
		last = last_result(&runs[i]);
		if (!note_matches(
			    json_string_value(json_object_get(last, "note")),
			    "~duration|time"))
			soft_fail("%s: the note does not say the duration ran "
				  "out: %s",
				  c->test,
				  json_string_value(
					  json_object_get(last, "note")));
		json_decref(last);
	}
	free(runs);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * 2. The conformance trees atex-env, atex-cwd, atex-misc, atex-pty.
 */

/* The metadata file of the test on the system: YAML (JSON is YAML) with
 * its data. */
static void expect_metadata(const char *path, const char *test_key)
{
	json_t *meta = NULL;
	size_t len;
	char *text = sys_read(path, &len);
	int rc;

	if (!text) {
		soft_fail("TMT_TEST_METADATA %s: cannot be read", path);
		return;
	}
	rc = atex_yaml_load(&meta, text, len, path, NULL);
	free(text);
	if (rc) {
		soft_fail("TMT_TEST_METADATA %s: %s", path, atex_error_last());
		return;
	}
	CHECK(json_is_object(meta));
	CHECK(streq(json_string_value(json_object_get(meta, "test")),
		    test_key));
	json_decref(meta);
}

static void test_env_tree(void **state)
{
	const char *exec_env[] = {"EXEC_VAR=from executor", NULL};
	const char *param[] = {"VAR_FROM_PARAM=foo bar", NULL};
	const char *over[] = {"VAR_FROM_PLAN=from run",
			      "VAR_FROM_TEST=from run", "EXEC_VAR=from run",
			      "TMT_TEST_NAME=from run", NULL};
	char *root = xsprintf("%s/atex-env", g.conformance);
	char *plan_env, *out, *tree, *envfile;
	const char *v;
	struct session *s;
	struct run r;

	sys_rm("/tmp/plan_env");
	s = session_open(root, "/plan", exec_env);
	tree = xsprintf("%s/tree", s->workdir);

	/* The prepare script got the plan environment. */
	plan_env = sys_read("/tmp/plan_env", NULL);
	if (!plan_env)
		fail_msg("the prepare script did not write /tmp/plan_env");
	CHECK(has_line(plan_env, "VAR_FROM_PLAN=foo bar"));
	v = env_value(plan_env, "TMT_PLAN_ENVIRONMENT_FILE");
	assert_non_null(v);
	envfile = strdup(v);
	CHECK(strncmp(envfile, s->workdir, strlen(s->workdir)) == 0);
	sys_rm("/tmp/plan_env");

	/* Plan environment, executor environment, this run's environment
	 * and the built-in variables reach the test. */
	run(s, &r, "/test_env", param, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	expect_listing(&r, "output.txt\n");
	out = output_of(&r);
	CHECK(has_line(out, "VAR_FROM_PLAN=foo bar"));
	CHECK(has_line(out, "VAR_FROM_PARAM=foo bar"));
	CHECK(has_line(out, "EXEC_VAR=from executor"));
	CHECK(has_line(out, "TMT_TEST_NAME=/test_env"));
	CHECK(has_line(out, "TMT_REBOOT_COUNT=0"));
	CHECK(has_line(out, "TMT_TEST_RESTART_COUNT=0"));
	CHECK(!env_value(out, "VAR_FROM_TEST"));
	/* The plan-environment file is the one prepare scripts see. */
	CHECK(streq(env_value(out, "TMT_PLAN_ENVIRONMENT_FILE"), envfile));
	/* The uploaded tree. */
	v = env_value(out, "TMT_TREE");
	CHECK(streq(v, tree));
	{
		char *main_fmf = xsprintf("%s/main.fmf", root);

		CHECK(sys_same_file(tree, "main.fmf", main_fmf));
		free(main_fmf);
	}
	/* The control descriptor: a number. */
	v = env_value(out, "ATEX_TEST_CONTROL");
	CHECK(v && v[0] && strspn(v, "0123456789") == strlen(v));
	/* The metadata: a YAML file with the test's data. */
	v = env_value(out, "TMT_TEST_METADATA");
	CHECK(v && strncmp(v, s->workdir, strlen(s->workdir)) == 0);
	if (v)
		expect_metadata(v, "env");
	free(out);

	/* The plan-environment file written by one test is sourced before
	 * the next (allexport: the quotes are gone). */
	run(s, &r, "/test_write_env", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "");
	run(s, &r, "/test_env", NULL, 0);
	expect_rc(&r, 0, 0);
	out = output_of(&r);
	CHECK(has_line(out, "VAR_FROM_TEST=foo bar"));
	CHECK(has_line(out, "VAR_FROM_PLAN=foo bar"));
	free(out);

	/* This run's environment wins over every other source: plan, file,
	 * executor, built-ins. */
	run(s, &r, "/test_env", over, 0);
	expect_rc(&r, 0, 0);
	out = output_of(&r);
	CHECK(has_line(out, "VAR_FROM_PLAN=from run"));
	CHECK(has_line(out, "VAR_FROM_TEST=from run"));
	CHECK(has_line(out, "EXEC_VAR=from run"));
	CHECK(has_line(out, "TMT_TEST_NAME=from run"));
	CHECK(!(has_line(out, "VAR_FROM_PLAN=foo bar")));
	CHECK(!(has_line(out, "VAR_FROM_TEST=foo bar")));
	CHECK(!(has_line(out, "EXEC_VAR=from executor")));
	free(out);

	session_close(s);
	free(plan_env);
	free(envfile);
	free(tree);
	free(root);
	soft_check();
}

static void test_cwd_tree(void **state)
{
	char *root = xsprintf("%s/atex-cwd", g.conformance);
	char *in_root = xsprintf("%s/file_in_fmfdir", root);
	char *in_sub = xsprintf("%s/subdir/file_in_subdir", root);
	char *want_root = slurp(in_root, NULL), *want_sub = slurp(in_sub, NULL);
	char *got;
	struct session *s;
	struct run r;

	assert_non_null(want_root);
	assert_non_null(want_sub);
	/* The prepare script runs in the tree's root. */
	sys_rm("/tmp/file_contents");
	s = session_open(root, "/plan", NULL);
	got = sys_read("/tmp/file_contents", NULL);
	assert_non_null(got);
	CHECK(!strcmp(got, want_root));
	free(got);
	sys_rm("/tmp/file_contents");
	/* A test runs in its fmf node's directory. */
	run(s, &r, "/test_cwd", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	expect_file(&r, "output.txt", want_root, strlen(want_root));
	run(s, &r, "/subdir/test_subdir_cwd", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	expect_file(&r, "output.txt", want_sub, strlen(want_sub));
	session_close(s);

	/* Named discover sections prefix the names, not the directories. */
	s = session_open(root, "/plan_two_sections", NULL);
	run(s, &r, "/root_tests/test_cwd", NULL, 0);
	expect_rc(&r, 0, 0);
	expect_file(&r, "output.txt", want_root, strlen(want_root));
	run(s, &r, "/sub_tests/subdir/test_subdir_cwd", NULL, 0);
	expect_rc(&r, 0, 0);
	expect_file(&r, "output.txt", want_sub, strlen(want_sub));
	session_close(s);

	free(want_root);
	free(want_sub);
	free(in_root);
	free(in_sub);
	free(root);
	soft_check();
}

static void test_misc_output(void **state)
{
	static const char want[] = "test output \x00\x01\x02\x03";
	char *root = xsprintf("%s/atex-misc", g.conformance);
	char *dir = xsprintf("%s/misc-output", g.base);
	struct session *s;
	struct run r;

	s = session_open(root, "/plan", NULL);
	/* Binary-safe output, nothing added; a second run into the same
	 * directory replaces the first. */
	for (int i = 0; i < 2; i++) {
		run_in(s, &r, "/test_output", dir, NULL, 0);
		expect_rc(&r, 0, 0);
		RESULTS(&r, PASS_OUT);
		expect_file(&r, "output.txt", want, sizeof(want) - 1);
		expect_listing(&r, "output.txt\n");
	}
	session_close(s);
	free(dir);
	free(root);
	soft_check();
}

struct canceler {
	atex_executor *e;
	int delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceler *c = arg;

	usleep((useconds_t)c->delay_ms * 1000);
	atex_executor_cancel(c->e);
	return NULL;
}

static void test_misc_cancel(void **state)
{
	char *root = xsprintf("%s/atex-misc", g.conformance);
	struct session *s;
	struct run r;
	struct canceler c;
	pthread_t t;

	s = session_open(root, "/plan", NULL);
	c.e = s->e;
	c.delay_ms = 1000;
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
	run(s, &r, "/test_cancel", NULL, 0);
	pthread_join(t, NULL);
	expect_rc(&r, ATEX_ECANCELED, -1);
	if (r.ms < 900 || r.ms > 5000)
		soft_fail("canceled after 1 s, run_test took %.0f ms", r.ms);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": \"*\", \"files\": "
		    "[\"output.txt\"]}");
	EXPECT_TEXT(&r, "output.txt", "");
	/* Final: later runs are refused. */
	run(s, &r, "/test_output", NULL, 0);
	CHECK(r.rc == ATEX_ECANCELED);
	/* And stop still cleans up. */
	session_close(s);
	free(root);
	soft_check();
}

/* compat_python_atex: Python ATEX's results and notes for tests that do
 * not end by themselves, what they closed left alone, its debug
 * switches; return codes as without it. */
static void test_compat_python_atex(void **state)
{
	static const char want_out[] = "test output \x00\x01\x02\x03";
	char *root = xsprintf("%s/atex-results", g.conformance);
	char *misc = xsprintf("%s/atex-misc", g.conformance);
	const char *const debug_fd[] = {"ATEX_DEBUG_TEST_OUTPUT_FD", NULL};
	struct session *s;
	struct run r;
	struct canceler c;
	pthread_t t;
	int devnull;

	(void)state;
	session_compat = true;
	s = session_open(root, "/plan", NULL);
	set_duration(s, "/test_noresult_abort", "2");
	set_duration(s, "/test_trivial_abort", "2");
	set_duration(s, "/test_partial_abrupt_abort", "2");
	run(s, &r, "/test_noresult_abort", NULL, 0);
	expect_rc(&r, ATEX_ETIMEDOUT, -1);
	CHECK(strstr(atex_error_last(), "TestAbortedError(test duration "
					"timeout reached)") != NULL);
	RESULTS(&r,
		"{\"status\": \"infra\", \"note\": \"TestAbortedError(test "
		"duration timeout reached)\", \"files\": [\"output.txt\"]}");
	EXPECT_TEXT(&r, "output.txt", "sleeping forever-ish\n");
	/* A result the test closed stays; nothing is added. */
	run(s, &r, "/test_trivial_abort", NULL, 0);
	expect_rc(&r, ATEX_ETIMEDOUT, -1);
	RESULTS(&r, "{\"status\": \"pass\"}");
	expect_listing(&r, "");
	run(s, &r, "/test_partial_abrupt_abort", NULL, 0);
	RESULTS(&r,
		"{\"status\": \"infra\", \"note\": \"TestAbortedError(test "
		"duration timeout reached)\", \"files\": [\"output.txt\"]}");
	run(s, &r, "/test_bad_json", NULL, 0);
	expect_rc(&r, ATEX_EFORMAT, -1);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": \"~BadReportJSONError("
		    "invalid JSON in result\", \"files\": [\"output.txt\"]}");
	run(s, &r, "/test_empty_testout", NULL, 0);
	expect_rc(&r, ATEX_EFORMAT, -1);
	CHECK(strstr(atex_error_last(), ": BadReportJSONError('testout' "
					"specified, but empty)") != NULL);
	/* ATEX_DEBUG_NO_EXITCODE: the channel ends inside the file data. */
	setenv("ATEX_DEBUG_NO_EXITCODE", "1", 1);
	run(s, &r, "/test_no_file_data", NULL, 0);
	unsetenv("ATEX_DEBUG_NO_EXITCODE");
	expect_rc(&r, ATEX_EFORMAT, -1);
	CHECK(strstr(atex_error_last(),
		     "BadControlError(EOF when reading data)") != NULL);
	/* Without an exit code a test that ended is a wrapper fault. */
	setenv("ATEX_DEBUG_NO_EXITCODE", "1", 1);
	run(s, &r, "/test_noresult_pass", NULL, 0);
	unsetenv("ATEX_DEBUG_NO_EXITCODE");
	expect_rc(&r, ATEX_EINFRA, -1);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": \"TestAbortedError("
		    "exitcode not reported, wrapper bug?)\", \"files\": "
		    "[\"output.txt\"]}");
	run(s, &r, "/test_noresult_pass", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	session_close(s);

	s = session_open(misc, "/plan", NULL);
	/* ATEX_DEBUG_TEST_OUTPUT_FD: the output goes there, not to the
	 * artifacts. */
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(devnull >= 0);
	{
		char num[16];

		snprintf(num, sizeof(num), "%d", devnull);
		setenv(debug_fd[0], num, 1);
	}
	run(s, &r, "/test_output", NULL, 0);
	unsetenv(debug_fd[0]);
	close(devnull);
	expect_rc(&r, 0, 0);
	EXPECT_TEXT(&r, "output.txt", "");
	run(s, &r, "/test_output", NULL, 0);
	expect_file(&r, "output.txt", want_out, sizeof(want_out) - 1);
	c.e = s->e;
	c.delay_ms = 1000;
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
	run(s, &r, "/test_cancel", NULL, 0);
	pthread_join(t, NULL);
	expect_rc(&r, ATEX_ECANCELED, -1);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": \"TestAbortedError("
		    "cancel requested)\", \"files\": [\"output.txt\"]}");
	session_close(s);
	session_compat = false;
	free(root);
	free(misc);
	soft_check();
}

static void test_pty_tree(void **state)
{
	char *root = xsprintf("%s/atex-pty", g.conformance);
	char *log, *out, *testfile;
	struct session *s;
	struct run r;

	sys_write(g.apt_log, "", "0644");
	s = session_open(root, "/plan", NULL);
	/* util-linux is installed: the install step asked apt-get nothing. */
	log = sys_read(g.apt_log, NULL);
	assert_non_null(log);
	if (*log)
		soft_fail("apt-get was run for an installed package: %s", log);
	free(log);
	/* The prepare script wrote testfile in the tree. */
	testfile = xsprintf("%s/tree/testfile", s->workdir);
	out = sys_read(testfile, NULL);
	assert_non_null(out);
	CHECK(has_line(out, "test1") && has_line(out, "test200"));
	free(out);
	free(testfile);

	/* `more` on a terminal prompts. */
	run(s, &r, "/test_more_with_pty", NULL, 0);
	CHECK(r.rc == 0);
	out = output_of(&r);
	CHECK(strstr(out, "--More--"));
	CHECK(strstr(out, "test1"));
	free(out);
	run(s, &r, "/test_with_pty", NULL, 0);
	CHECK(r.rc == 0);
	out = output_of(&r);
	CHECK(strstr(out, "test1"));
	CHECK(strstr(out, "test10"));
	free(out);
	/* Not on a terminal, it writes straight through. */
	run(s, &r, "/test_without_pty", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	out = output_of(&r);
	CHECK(!(strstr(out, "--More--")));
	CHECK(has_line(out, "test1") && has_line(out, "test200"));
	free(out);
	run(s, &r, "/test_with_pty_false", NULL, 0);
	expect_rc(&r, 0, 0);
	out = output_of(&r);
	CHECK(!(strstr(out, "--More--")));
	CHECK(has_line(out, "test1") && has_line(out, "test200"));
	free(out);
	session_close(s);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * 3. Our trees. executor-hostile: the channel.
 */

#define ERROR_OUT(note)                                                        \
	"{\"status\": \"error\", \"note\": \"" note "\", \"files\": "          \
	"[\"output.txt\"]}"

struct channel_case {
	const char *test;
	const char *lines[3];
};

static const struct channel_case channel_cases[] = {
	/* What came before the error is kept. */
	{"/long_line",
	 {"{\"status\": \"pass\", \"name\": \"before\"}", ERROR_OUT("~4096")}},
	{"/line_4097", {ERROR_OUT("~4096")}},
	{"/malformed_line", {ERROR_OUT("~result")}},
	{"/empty_line", {ERROR_OUT("~empty")}},
	{"/non_ascii_line", {ERROR_OUT("~ASCII|ascii")}},
	{"/unknown_word", {ERROR_OUT("~frobnicate")}},
	{"/invalid_json", {ERROR_OUT("~JSON")}},
	{"/json_not_object", {ERROR_OUT("~object")}},
	{"/file_entry_bad", {ERROR_OUT("~length")}},
	{"/result_beyond_end",
	 {ERROR_OUT("~the stream ended inside a result")}},
	{"/result_too_long", {ERROR_OUT("~result")}},
	{"/duration_invalid", {ERROR_OUT("~duration")}},
};

static void test_hostile_channel(void **state)
{
	char *root = xsprintf("%s/executor-hostile", g.trees);
	size_t n = sizeof(channel_cases) / sizeof(channel_cases[0]);
	struct session *s;
	struct run r;

	s = session_open(root, "/plan", NULL);
	for (size_t i = 0; i < n; i++) {
		const struct channel_case *c = &channel_cases[i];
		char needle[96];

		run(s, &r, c->test, NULL, 0);
		expect_rc(&r, ATEX_EFORMAT, -1);
		expect_results(&r, c->lines);
		expect_listing(&r, "output.txt\n");
		/* The test is stopped at once, not waited for. */
		if (r.ms > 5000)
			soft_fail("%s: took %.0f ms", c->test, r.ms);
		snprintf(needle, sizeof(needle), "atex-mark-%s", r.mark);
		CHECK(procs_gone(needle, 3000));
	}

	/* The longest line allowed is fine. */
	run(s, &r, "/line_4096", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"note\": \"line of 4096\"}");
	expect_listing(&r, "");
	/* noop does nothing. */
	run(s, &r, "/noop", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "noops sent\n");
	/* Nothing else of the run was affected. */
	run(s, &r, "/after_errors", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "fine\n");
	session_close(s);
	free(root);
	soft_check();
}

/* File names that would leave the artifacts directory. */
static void test_hostile_names(void **state)
{
	static const struct {
		const char *test, *note;
	} cases[] = {
		{"/file_dotdot", "~../../x"},
		{"/file_absolute", "~/etc/x"},
		{"/file_escape", "~a/../../x"},
		{"/name_escape", "~../x"},
	};
	char *root = xsprintf("%s/executor-hostile", g.trees);
	bool etc_x = exists("/etc/x");
	struct session *s;
	struct run r;

	s = session_open(root, "/plan", NULL);
	for (size_t i = 0; i < 4; i++) {
		char *top = xsprintf("%s/names-%zu", g.base, i);
		char *dir = xsprintf("%s/a/b/art", top);
		char *all,
			*line = xsprintf("{\"status\": \"error\", \"note\": "
					 "\"%s\", \"files\": [\"output.txt\"]}",
					 cases[i].note);

		run_in(s, &r, cases[i].test, dir, NULL, 0);
		expect_rc(&r, ATEX_EFORMAT, -1);
		RESULTS(&r, line);
		/* Nothing anywhere but the results and the output. */
		all = listing(top, true);
		if (strcmp(all, "a\na/b\na/b/art\na/b/art/files\n"
				"a/b/art/files/output.txt\na/b/art/results\n"))
			soft_fail("%s: written under %s:\n%s", cases[i].test,
				  top, all);
		CHECK(exists("/etc/x") == etc_x);
		free(all);
		free(line);
		free(dir);
		free(top);
	}
	session_close(s);
	free(root);
	soft_check();
}

static void test_hostile_big_file(void **state)
{
	char *root = xsprintf("%s/executor-hostile", g.trees);
	char *path;
	struct session *s;
	struct run r;
	struct stat st;
	char buf[4096];
	int fd;

	s = session_open(root, "/plan", NULL);
	run(s, &r, "/big_file", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"files\": [\"big\"]}");
	expect_listing(&r, "big\n");
	path = xsprintf("%s/files/big", r.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, GIB);
	/* Zeros at both ends. */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(pread(fd, buf, sizeof(buf), GIB - sizeof(buf)),
			 sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	close(fd);
	assert_int_equal(unlink(path), 0);
	if (r.ms > 30000)
		soft_fail("1 GiB took %.0f ms", r.ms);
	session_close(s);
	free(path);
	free(root);
	soft_check();
}

/* executor-hostile: processes. */
static void test_hostile_processes(void **state)
{
	char *root = xsprintf("%s/executor-hostile", g.trees);
	char needle[96];
	struct session *s;
	struct run r;
	struct stat st;
	char *path, *out;

	s = session_open(root, "/plan", NULL);

	/* Never exits: killed at its duration (2 s), with everything it
	 * started. */
	run(s, &r, "/never_exits", NULL, 0);
	expect_rc(&r, ATEX_ETIMEDOUT, -1);
	RESULTS(&r, ERROR_OUT("*"));
	EXPECT_TEXT(&r, "output.txt", "started\n");
	expect_listing(&r, "output.txt\n");
	if (r.ms < 1500 || r.ms > 6000)
		soft_fail("/never_exits: duration 2 s, took %.0f ms", r.ms);
	snprintf(needle, sizeof(needle), "atex-mark-%s", r.mark);
	if (!procs_gone(needle, 3000))
		soft_fail("/never_exits: its sleep is still running");

	/* A closed stdout or control channel is the test's own business. */
	run(s, &r, "/close_stdout", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "before\nafter\n");
	run(s, &r, "/close_control", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "closed\n");

	/* A leftover in the test's process group is killed when the test
	 * ends, and does not hold the run up. */
	run(s, &r, "/leftover_group", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "leaving\n");
	if (r.ms > 4000)
		soft_fail("/leftover_group: took %.0f ms", r.ms);
	snprintf(needle, sizeof(needle), "atex-mark-%s", r.mark);
	CHECK(procs_gone(needle, 2000));

	/* Leftovers holding the output and the channel open, one in its own
	 * session: run_test still returns, soon, with the test's result. */
	run(s, &r, "/leftover_session", NULL, RUN_LEFTOVERS_OK);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"note\": \"left two sleeps\"}");
	expect_listing(&r, "");
	if (r.ms > 20000)
		soft_fail("/leftover_session: took %.0f ms", r.ms);
	snprintf(needle, sizeof(needle), "atex-mark-%s-group", r.mark);
	if (!procs_gone(needle, 2000))
		soft_fail("/leftover_session: the sleep in the test's group "
			  "is still running");
	snprintf(needle, sizeof(needle), "atex-mark-%s-setsid", r.mark);
	procs_with_arg(needle, true);
	CHECK(procs_gone(needle, 2000));

	/* 50 MB of stderr, all of it. */
	run(s, &r, "/flood_stderr", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	expect_listing(&r, "output.txt\n");
	path = xsprintf("%s/files/output.txt", r.dir);
	CHECK(stat(path, &st) == 0 && st.st_size == 52428800);
	free(path);

	/* The wrapper dies: no exit code, an infrastructure failure. */
	run(s, &r, "/no_exitcode", NULL, 0);
	expect_rc(&r, ATEX_EINFRA, -1);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": \"*\", \"files\": "
		    "[\"output.txt\"]}");
	out = output_of(&r);
	CHECK(has_line(out, "dying"));
	free(out);

	/* The wrapper dies after a forged exit code (which does not count):
	 * infra too. */
	run(s, &r, "/wrapper_fails", NULL, 0);
	expect_rc(&r, ATEX_EINFRA, -1);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": \"*\", \"files\": "
		    "[\"output.txt\"]}");

	run(s, &r, "/after_errors", NULL, 0);
	expect_rc(&r, 0, 0);
	session_close(s);
	free(root);
	soft_check();
}

/* executor-hostile: the `duration` word. */
static void test_durations(void **state)
{
	static const struct {
		const char *test;
		int rc;
		double min_ms, max_ms;
	} cases[] = {
		/* New maximum... */
		{"/duration_set", ATEX_ETIMEDOUT, 800, 2800},
		/* ...and the clock restarts. */
		{"/duration_restart", 0, 3300, 6000},
		{"/duration_plus", 0, 2800, 6000},
		{"/duration_minus", ATEX_ETIMEDOUT, 800, 2800},
		{"/duration_save_restore", 0, 3800, 7000},
		{"/duration_restore_limits", ATEX_ETIMEDOUT, 1500, 3800},
		/* "*0.01" alone: 5m * 0.01. */
		{"/duration_multiplier", ATEX_ETIMEDOUT, 2500, 5500},
		/* fmf units and sums: 1m 5s, not 1 s. */
		{"/duration_units", 0, 2800, 6000},
	};
	char *root = xsprintf("%s/executor-hostile", g.trees);
	struct session *s;
	struct run r;

	s = session_open(root, "/plan", NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run(s, &r, cases[i].test, NULL, 0);
		if (cases[i].rc) {
			expect_rc(&r, cases[i].rc, -1);
			RESULTS(&r, ERROR_OUT("*"));
			EXPECT_TEXT(&r, "output.txt", "");
		} else {
			expect_rc(&r, 0, 0);
			RESULTS(&r, PASS_OUT);
			EXPECT_TEXT(&r, "output.txt", "done\n");
		}
		if (r.ms < cases[i].min_ms || r.ms > cases[i].max_ms)
			soft_fail("%s: took %.0f ms, expected %.0f to %.0f",
				  cases[i].test, r.ms, cases[i].min_ms,
				  cases[i].max_ms);
	}
	/* Metadata a program broke after discovery: an error result that
	 * says why, not a crash. */
	assert_int_equal(
		json_object_set_new(
			atex_fmf_discovery_test_data(
				s->disc, (size_t)atex_fmf_discovery_find(
						 s->disc, "/duration_units")),
			"test", json_integer(5)),
		0);
	run(s, &r, "/duration_units", NULL, 0);
	expect_rc(&r, ATEX_EFORMAT, -1);
	RESULTS(&r, ERROR_OUT("~'test' is not a shell command string"));
	session_close(s);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * executor-hostile: verdicts that hold under forgery and stalls.
 */

/* Only the wrapper's exitcode counts; a test killed at its duration says
 * so even when it had reported a pass for itself; a test holding too much
 * in the executor's memory is stopped, named in the error. */
static void test_verdicts(void **state)
{
	char *root = xsprintf("%s/executor-hostile", g.trees);
	char needle[96];
	struct session *s;
	struct run r;
	json_t *last;

	session_memory_limit = 4 * 1024 * 1024;
	s = session_open(root, "/plan", NULL);
	session_memory_limit = 0;

	run(s, &r, "/forged_exitcode", NULL, 0);
	expect_rc(&r, ATEX_ETIMEDOUT, -1);
	RESULTS(&r, ERROR_OUT("~did not end within its duration"));
	EXPECT_TEXT(&r, "output.txt", "forged\n");
	if (r.ms < 1500)
		soft_fail("/forged_exitcode: ended after %.0f ms, before its "
			  "duration (2 s)",
			  r.ms);
	snprintf(needle, sizeof(needle), "atex-mark-%s", r.mark);
	if (!procs_gone(needle, 3000))
		soft_fail("/forged_exitcode: its sleep is still running");

	/* Exit code 3: an error, as tmt reads a shell test's exit code. */
	run(s, &r, "/forged_exitcode_fails", NULL, 0);
	expect_rc(&r, 0, 3);
	RESULTS(&r, ERROR_OUT("exit code 3"));

	run(s, &r, "/flood_channel", NULL, 0);
	expect_rc(&r, ATEX_ETIMEDOUT, -1);
	RESULTS(&r, ERROR_OUT("~did not end within its duration"));
	if (r.ms > 6000)
		soft_fail("/flood_channel: killed after %.0f ms, its duration "
			  "is 2 s",
			  r.ms);

	/* Its own result becomes "error", in its place, keeping what it
	 * said; the subtest stays. */
	run(s, &r, "/killed_after_pass", NULL, 0);
	expect_rc(&r, ATEX_ETIMEDOUT, -1);
	RESULTS(&r,
		"{\"status\": \"error\", \"note\": \"~did not end within its "
		"duration and was killed (it had reported 'pass': all "
		"good)\"}",
		"{\"status\": \"pass\", \"name\": \"sub\"}");

	run(s, &r, "/file_then_dir", NULL, 0);
	expect_rc(&r, ATEX_EFORMAT, -1);
	RESULTS(&r, "{\"files\": [\"a\"]}", ERROR_OUT("~files/a: "));
	last = last_result(&r);
	CHECK(!strstr(json_string_value(json_object_get(last, "note")), r.dir));
	json_decref(last);

	/* 4 MiB: stopped after a few sends of about 1 MB, with an error
	 * naming the test. */
	run(s, &r, "/memory_hog", NULL, 0);
	expect_rc(&r, ATEX_EFORMAT, -1);
	CHECK(r.rc != ATEX_EFORMAT ||
	      (strstr(atex_error_last(), "/memory_hog") &&
	       strstr(atex_error_last(), "memory limit")));
	last = last_result(&r);
	CHECK(streq(json_string_value(json_object_get(last, "status")),
		    "error"));
	CHECK(note_matches(json_string_value(json_object_get(last, "note")),
			   "~4194304 bytes"));
	CHECK(!json_object_get(last, "name"));
	json_decref(last);
	{
		char *out = output_of(&r);

		CHECK(!has_line(out, "not stopped"));
		free(out);
	}
	session_close(s);
	free(root);
	soft_check();
}

/* Stops this process (SIGSTOP) once a process whose command line holds
 * `needle` runs, for `ms`, then continues it (SIGCONT). A child does the
 * stopping: nothing in this process can while it is stopped; a thread of
 * ours watches for the process and tells the child through a pipe. */
struct stopper {
	pthread_t thread;
	pid_t child;
	int pipe[2];
	char needle[96];
	atomic_bool seen, quit;
};

static void *stopper_watch(void *data)
{
	struct stopper *st = data;

	for (double end = now_ms() + 20000; now_ms() < end && !st->quit;) {
		if (procs_with_arg(st->needle, false) > 0) {
			st->seen = true;
			if (write(st->pipe[1], "x", 1) != 1)
				break;
			return NULL;
		}
		usleep(20 * 1000);
	}
	return NULL;
}

static void stopper_start(struct stopper *st, const char *needle, int ms)
{
	pid_t parent = getpid();

	memset(st, 0, sizeof(*st));
	snprintf(st->needle, sizeof(st->needle), "%s", needle);
	assert_int_equal(pipe(st->pipe), 0);
	st->child = fork();
	assert_true(st->child >= 0);
	if (st->child == 0) {
		/* Only async-signal-safe calls: the parent has threads. */
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
		char c;

		close(st->pipe[1]);
		if (read(st->pipe[0], &c, 1) == 1) {
			kill(parent, SIGSTOP);
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			kill(parent, SIGCONT);
		}
		_exit(0);
	}
	close(st->pipe[0]);
	assert_int_equal(pthread_create(&st->thread, NULL, stopper_watch, st),
			 0);
}

static void stopper_end(struct stopper *st)
{
	st->quit = true;
	pthread_join(st->thread, NULL);
	close(st->pipe[1]);
	/* The library may reap children of its own; ours may be gone. */
	waitpid(st->child, NULL, 0);
}

/* The executor is stopped for 5 s past the test's duration (3 s) while
 * the test ends within 1 s: when it runs again, the exit code is waiting
 * in the channel, and the test passed. */
static void test_stalled_executor(void **state)
{
	char *root = xsprintf("%s/executor-hostile", g.trees);
	char needle[96];
	struct stopper st;
	struct session *s;
	struct run r;

	s = session_open(root, "/plan", NULL);
	/* The mark run() will give this run. */
	snprintf(needle, sizeof(needle), "atex-mark-%dx%lu-stall",
		 (int)getpid(), g.runs + 1);
	stopper_start(&st, needle, 5000);
	run(s, &r, "/stalled_executor", NULL, 0);
	stopper_end(&st);
	CHECK(st.seen);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "done\n");
	if (r.ms < 5000)
		soft_fail("/stalled_executor: took %.0f ms: the executor was "
			  "not stopped for 5 s",
			  r.ms);
	session_close(s);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * executor-helpers: tmt-report-result, tmt-file-submit, exit codes.
 */

/* executor-helpers /parallel: 100 results p1..p100 (pass, big.log each,
 * as the test wrote it), /last, and the test's own result with s1..s20.log,
 * in any order: every message arrived whole. */
static void expect_parallel(const struct run *r)
{
	char *path = xsprintf("%s/results", r->dir);
	char *text = slurp(path, NULL), *p, *nl, *big;
	size_t n = 0, pass = 0, own = 0, last = 0, len = 0;

	big = artifact(r, "s1.log", &len);
	CHECK(text && big && len > 15000);
	for (p = text; text && *p; p = nl + 1, n++) {
		json_t *j = json_loads(p, JSON_DISABLE_EOF_CHECK, NULL);
		const char *name =
			json_string_value(json_object_get(j, "name"));
		const char *st =
			json_string_value(json_object_get(j, "status"));
		size_t files = json_array_size(json_object_get(j, "files"));

		nl = strchr(p, '\n');
		if (!j || !nl || !st) {
			soft_fail("%s: line %zu is not a result", path, n + 1);
			json_decref(j);
			break;
		}
		if (name && name[0] == 'p' && !strcmp(st, "pass") &&
		    files == 1) {
			char *rel = xsprintf("%s/big.log", name);

			pass++;
			expect_file(r, rel, big, len);
			free(rel);
		} else if (name && !strcmp(name, "last") && !strcmp(st, "fail"))
			last++;
		else if (!name && !strcmp(st, "fail") && files == 21)
			own++;
		else
			soft_fail("%s: unexpected line %zu", path, n + 1);
		json_decref(j);
	}
	if (pass != 100 || last != 1 || own != 1 || n != 102)
		soft_fail("%s: %zu lines, %zu of p1..p100, %zu last, %zu own",
			  path, n, pass, last, own);
	for (int i = 1; i <= 20; i++) {
		char *rel = xsprintf("s%d.log", i);

		expect_file(r, rel, big, len);
		free(rel);
	}
	free(big);
	free(text);
	free(path);
}

static void test_helpers(void **state)
{
	char *root = xsprintf("%s/executor-helpers", g.trees);
	struct session *s;
	struct run r;

	s = session_open(root, "/plan", NULL);
	run(s, &r, "/report", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"name\": \"first\"}",
		"{\"status\": \"fail\", \"name\": \"second\"}",
		"{\"status\": \"pass\", \"name\": \"third\", \"files\": "
		"[\"log.txt\"]}",
		"{\"status\": \"warn\", \"name\": \"fourth\"}",
		/* tmt: the calls are the test's verdict, the worst. */
		FAIL_OUT);
	expect_listing(&r, "output.txt\nthird/log.txt\n");
	EXPECT_TEXT(&r, "third/log.txt", "log content\n");
	EXPECT_TEXT(&r, "output.txt", "");

	/* The file goes with the test's own result, the status still from
	 * the exit code. */
	run(s, &r, "/submit", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"files\": [\"output.txt\", "
		    "\"report.log\"]}");
	expect_listing(&r, "output.txt\nreport.log\n");
	EXPECT_TEXT(&r, "report.log", "submitted\n");
	EXPECT_TEXT(&r, "output.txt", "submitted it\n");
	run(s, &r, "/submit_fail", NULL, 0);
	expect_rc(&r, 0, 1);
	RESULTS(&r, "{\"status\": \"fail\", \"files\": [\"output.txt\", "
		    "\"report.log\"]}");
	EXPECT_TEXT(&r, "report.log", "submitted\n");

	run(s, &r, "/report_utf8", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"name\": \"žluťoučký kůň\"}",
		"{\"status\": \"fail\", \"name\": \"sub ž\", \"files\": "
		"[\"ž.log\"]}",
		"{\"status\": \"fail\", \"files\": [\"output.txt\", "
		"\"ť.log\"]}");
	EXPECT_TEXT(&r, "sub ž/ž.log", "ž\n");
	EXPECT_TEXT(&r, "ť.log", "ť\n");

	run(s, &r, "/test_data", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"files\": [\"output.txt\", "
		    "\"data/a.txt\", \"data/sub dir/b.txt\"]}");
	EXPECT_TEXT(&r, "data/a.txt", "one\n");
	EXPECT_TEXT(&r, "data/sub dir/b.txt", "two\n");
	run(s, &r, "/test_data_empty", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);

	run(s, &r, "/parallel", NULL, 0);
	expect_rc(&r, 0, 0);
	expect_parallel(&r);

	run(s, &r, "/exit0", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	run(s, &r, "/exit3", NULL, 0);
	expect_rc(&r, 0, 3);
	RESULTS(&r, "{\"status\": \"error\", \"note\": \"exit code 3\", "
		    "\"files\": [\"output.txt\"]}");

	/* A log streamed and also written to TMT_TEST_DATA: stored once
	 * (what is not a copy comes as data/: /test_data). */
	run(s, &r, "/stream_and_test_data", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"files\": [\"output.txt\", "
		    "\"scan.log\"]}");
	expect_listing(&r, "output.txt\nscan.log\n");
	EXPECT_TEXT(&r, "scan.log", "one\ntwo\n");

	/* Names that are not UTF-8: each left out alone, said so; control
	 * characters kept, so "a\x01b" and "ab" stay two files. In a UTF-8
	 * locale (the wrapper's, on a local system: ours), where bash reads
	 * names byte by byte only when told to. */
	{
		char *lc = getenv("LC_ALL") ? strdup(getenv("LC_ALL")) : NULL;

		setenv("LC_ALL", "C.UTF-8", 1);
		run(s, &r, "/names_not_utf8", NULL, 0);
		if (lc)
			setenv("LC_ALL", lc, 1);
		else
			unsetenv("LC_ALL");
		free(lc);
	}
	expect_rc(&r, 0, 0);
	RESULTS(&r,
		"{\"status\": \"warn\", \"name\": \"atex/refused-name\", "
		"\"note\": \"~file 'l\\\\xE9.log' left out: its name is not "
		"UTF-8\"}",
		"{\"status\": \"fail\", \"name\": \"atex/refused-name\", "
		"\"note\": \"~result 'sub\\\\xE9' left out\"}",
		"{\"status\": \"warn\", \"name\": \"atex/refused-name\", "
		"\"note\": \"~file 'l\\\\xE9.log' left out\"}",
		"{\"status\": \"pass\", \"name\": \"named\"}",
		"{\"status\": \"pass\", \"name\": \"ctl\\u0002x\"}",
		"{\"status\": \"pass\", \"name\": \"ctlx\"}",
		"{\"status\": \"warn\", \"name\": \"atex/refused-name\", "
		"\"note\": \"~file 'data/caf\\\\xE9' left out\"}",
		/* The refused call's fail still counts (as tmt's would). */
		"{\"status\": \"fail\", \"files\": [\"output.txt\", "
		"\"data/a\\u0001b\", \"data/ab\", \"data/good.log\"]}");
	expect_listing(&r, "data/a\001b\ndata/ab\ndata/good.log\noutput.txt\n");
	EXPECT_TEXT(&r, "data/a\001b", "c1");
	EXPECT_TEXT(&r, "data/ab", "c2");
	EXPECT_TEXT(&r, "data/good.log", "good\n");

	/* A file still growing while it is sent: exactly the bytes
	 * announced, lines "line 1".."line K" as the logger wrote them when
	 * the wrapper measured the file (the last one may be cut: the
	 * logger's writes need not end at a line), and the channel intact.
	 * The logger outlives the test by design (a session of its own);
	 * on a loaded machine it may still write for seconds: stopped
	 * below, not counted as a leftover of the executor's. */
	run(s, &r, "/data_growing", NULL, RUN_LEFTOVERS_OK);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"files\": [\"output.txt\", "
		    "\"data/grow.log\"]}");
	{
		size_t len = 0, k = 0;
		char *got = artifact(&r, "data/grow.log", &len), *p, want[32];

		CHECK(got && len >= 1000);
		for (p = got; got && p < got + len; p += strlen(want)) {
			size_t left = (size_t)(got + len - p);

			snprintf(want, sizeof(want), "line %zu\n", ++k);
			if (strncmp(p, want,
				    left < strlen(want) ? left
							: strlen(want))) {
				soft_fail("data/grow.log: line %zu is not %s",
					  k, want);
				break;
			}
		}
		free(got);
	}
	kill_procs_in_dir(s->workdir);

	/* A logger left running that reopens its file: the next test's
	 * TMT_TEST_DATA is another directory, still empty. */
	run(s, &r, "/data_leftover_writer", NULL, RUN_LEFTOVERS_OK);
	expect_rc(&r, 0, 0);
	run(s, &r, "/data_leftover_next", NULL, RUN_LEFTOVERS_OK);
	kill_procs_in_dir(s->workdir);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "");

	/* More data files than one result can name: all of them, with
	 * the test's own result. */
	run(s, &r, "/data_many", NULL, 0);
	expect_rc(&r, 0, 0);
	{
		json_t *last = last_result(&r);
		json_t *files = json_object_get(last, "files");

		CHECK(json_is_string(json_object_get(last, "status")) &&
		      streq(json_string_value(json_object_get(last, "status")),
			    "pass"));
		CHECK(json_array_size(files) == 451);
		json_decref(last);
	}

	/* TMT_PLAN_ENVIRONMENT_FILE: NAME=VALUE words as tmt reads them
	 * (shlex, comments), nothing run. */
	run(s, &r, "/env_file_write", NULL, 0);
	expect_rc(&r, 0, 0);
	run(s, &r, "/env_file_read", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	{
		char *want = xsprintf("ENV_CMD=$(touch${IFS}%s/tree/pwned)\n"
				      "ENV_Q=two words\nENV_S=$HOME x\n"
				      "ENV_E=a b\nENV_D=q\"u\\o\\te\n"
				      "ENV_C=1\nENV_NOT=unset\nENV_EMPTY=\n",
				      s->workdir);

		expect_file(&r, "output.txt", want, strlen(want));
		free(want);
	}
	/* A file tmt would refuse: the test does not run, and says why. */
	run(s, &r, "/env_file_bad", NULL, 0);
	expect_rc(&r, 0, 0);
	run(s, &r, "/env_file_bad_read", NULL, 0);
	expect_rc(&r, 0, -1);
	RESULTS(&r, "{\"status\": \"error\", \"note\": "
		    "\"~TMT_PLAN_ENVIRONMENT_FILE: line 5: 'export' is not "
		    "NAME=VALUE\"}");
	expect_listing(&r, "");

	session_close(s);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * Fake boot: a connection of our own around g.conn (as a program may
 * write), whose can_reboot we say and whose boot id is the content of a
 * file on the system, so that reboots can be acted out and their
 * confirmation seen without rebooting anything.
 */

static struct fake_boot_conn *fake_new(bool can_reboot)
{
	char *file = xsprintf("%s/boot-id", g.base);
	struct fake_boot_conn *f = fake_boot_conn_new(g.conn, can_reboot, file);

	free(file);
	return f;
}

/* ------------------------------------------------------------------------
 * A cancel while start makes the work directory (Ctrl-C as a fresh system
 * starts): the system made it, so it must not be left there unnamed. The
 * fake connection lets the command make the directory, then cancels the
 * executor while the command still runs.
 */

static struct {
	atex_executor *target;
	char mark[PATH_MAX];   /* on the system: the directory was made */
	char prefix[PATH_MAX]; /* "atex-OWNER-": the names it makes */
	atomic_int seen;
} mk;

static int mkdir_spawn(struct fake_boot_conn *f, atex_process **out,
		       const struct atex_spawn_options *o)
{
	struct atex_spawn_options late = *o;
	const char *argv[6];
	char *script;
	int rc;

	if (!o->argv[0] || strcmp(o->argv[0], "bash") || !o->argv[2] ||
	    !strstr(o->argv[2], "mktemp -d") || !o->argv[3] || !o->argv[4])
		return atex_connection_spawn(out, f->inner, o);
	mk.seen++;
	snprintf(mk.prefix, sizeof(mk.prefix), "%s",
		 strrchr(o->argv[4], '/') + 1);
	mk.prefix[strlen(mk.prefix) - strlen("XXXXXX")] = '\0';
	script = xsprintf("%s && touch %s && sleep 1", o->argv[2], mk.mark);
	argv[0] = o->argv[0];
	argv[1] = o->argv[1];
	argv[2] = script;
	argv[3] = o->argv[3];
	argv[4] = o->argv[4];
	argv[5] = NULL;
	late.argv = argv;
	rc = atex_connection_spawn(out, f->inner, &late);
	free(script);
	for (int i = 0; rc == 0 && i < 200 && !sys_exists(mk.mark); i++)
		usleep(50 * 1000);
	atex_executor_cancel(mk.target);
	return rc;
}

static void test_cancel_while_making_workdir(void **state)
{
	char *root = xsprintf("%s/atex-misc", g.conformance);
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	struct fake_boot_conn *f = fake_new(false);
	atex_fmf_discovery *disc = NULL;
	atex_executor *e = NULL;
	char **left;
	int rc;

	(void)state;
	f->spawn = mkdir_spawn;
	g.session_conn = &f->base;
	memset(&mk, 0, sizeof(mk));
	snprintf(mk.mark, sizeof(mk.mark), "%s/made-workdir", g.base);
	dopts.plan = "/plan";
	assert_int_equal(atex_fmf_discover(&disc, root, &dopts), 0);
	eopts.connection = &f->base;
	eopts.discovery = disc;
	assert_int_equal(atex_fmf_executor_new(&e, &eopts), 0);
	mk.target = e;
	rc = atex_executor_start(e);
	assert_int_equal(mk.seen, 1);
	assert_true(sys_exists(mk.mark));
	/* Canceled: the copy after it is not made. */
	assert_int_equal(rc, ATEX_ECANCELED);
	/* free stops the executor: the directory goes. */
	atex_executor_free(e);
	left = sys_names("/var/tmp", mk.prefix);
	if (left[0])
		fail_msg("canceled while made, /var/tmp/%s is left on %s",
			 left[0], atex_connection_name(g.conn));
	names_free(left);
	atex_fmf_discovery_free(disc);
	atex_connection_free(g.session_conn);
	g.session_conn = NULL;
	free(root);
}

/* ------------------------------------------------------------------------
 * executor-reboot-local: disconnect, reconnect, start again.
 */

static void test_reboot_local(void **state)
{
	char *root = xsprintf("%s/executor-reboot-local", g.trees);
	char needle[96];
	struct session *s;
	struct run r;

	/* Over ssh the system is this machine, whose boot id never changes:
	 * these reboots are acted out on a connection that says it cannot
	 * reboot, where `disconnect` is followed by a reconnect alone. */
	if (g.kind == KIND_SSH)
		g.session_conn = &fake_new(false)->base;
	s = session_open(root, "/plan", NULL);
	run(s, &r, "/reboot", NULL, 0);
	expect_rc(&r, 0, 0);
	/* TMT_TEST_DATA kept across the reboot, uploaded at the end. */
	RESULTS(&r, "{\"status\": \"pass\", \"files\": [\"output.txt\", "
		    "\"data/boot0.log\"]}");
	EXPECT_TEXT(&r, "data/boot0.log", "before\n");
	/* The output of both starts, in one file. */
	EXPECT_TEXT(&r, "output.txt", "first\nsecond\n");

	run(s, &r, "/reboot_keeps_results", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"name\": \"boot0\"}",
		"{\"status\": \"pass\", \"name\": \"boot1\"}", PASS_OUT);

	/* tmt-reboot: disconnect, wait for the channel to close, "reboot". */
	run(s, &r, "/tmt_reboot", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "before\nafter\n");

	/* tmt-reboot refuses at once, before disconnecting: on this very
	 * machine (local), and in a container that cannot reboot (podman
	 * without systemd; its image has no reboot command either). Over
	 * ssh the system is this machine too, refused only by the fake
	 * connection's word: not run there (test_fake_boot_refused is,
	 * with reboot commands that do nothing). */
	if (g.kind != KIND_SSH) {
		const char *why =
			atex_connection_is_local(g.conn)
				? "tmt-reboot: not rebooting: the "
				  "system is the machine atex runs on"
			: atex_connection_can_reboot(g.conn)
				? "tmt-reboot: no reboot, systemctl or "
				  "shutdown command"
				: "cannot reboot (its connection does not "
				  "survive a reboot)";
		char *out;

		run(s, &r, "/tmt_reboot_refused", NULL, 0);
		expect_rc(&r, 0, 0);
		RESULTS(&r, PASS_OUT);
		out = output_of(&r);
		CHECK(strstr(out, why));
		CHECK(strstr(out, "still here, reboots: 0\n"));
		if (r.ms > 10000)
			soft_fail("/tmt_reboot_refused: took %.0f ms", r.ms);
		free(out);
	}

	/* The system never goes down: the duration runs out, and the test
	 * is stopped. */
	run(s, &r, "/reboot_hang", NULL, RUN_LEFTOVERS_OK);
	snprintf(needle, sizeof(needle), "atex-mark-%s", r.mark);
	{
		bool gone = procs_gone(needle, 3000);

		procs_with_arg(needle, true);
		expect_rc(&r, ATEX_ETIMEDOUT, -1);
		RESULTS(&r, ERROR_OUT("*"));
		if (r.ms < 2500 || r.ms > 9000)
			soft_fail("/reboot_hang: duration 3 s, took %.0f ms",
				  r.ms);
		if (!gone)
			soft_fail("/reboot_hang: the test is still running "
				  "after run_test returned");
	}
	session_close(s);
	atex_connection_free(g.session_conn);
	g.session_conn = NULL;
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * executor-reboot-ssh (ssh only): the server side of the connection goes
 * away under the test, the way a reboot takes it.
 */

/* The number in the file ART/name on the system, or 0. */
static long sys_number(const struct run *r, const char *name)
{
	char *path = xsprintf("%s/%s", r->art, name);
	char *text = sys_read(path, NULL);
	long n = text ? atol(text) : 0;

	free(text);
	free(path);
	return n;
}

/* Waits up to `ms` for the process `pid` (of this machine) to be gone. */
static bool pid_gone(long pid, int ms)
{
	char path[64];
	double end = now_ms() + ms;

	for (;;) {
		char *stat;
		bool zombie;

		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		stat = slurp(path, NULL);
		/* A zombie is gone too: it only waits for its parent. */
		zombie = stat && strstr(stat, ") Z ");
		free(stat);
		if (!stat || zombie)
			return true;
		if (now_ms() > end)
			return false;
		usleep(50 * 1000);
	}
}

/* Waits up to `ms` for the ssh connection's master to be `alive`. */
static bool master_alive_is(bool alive, int ms)
{
	double end = now_ms() + ms;

	while (atex_ssh_connection_alive(g.conn) != alive) {
		if (now_ms() > end)
			return false;
		usleep(50 * 1000);
	}
	return true;
}

/* After `disconnect` the test kills the sshd that serves its connection:
 * the executor reconnects (a new connection) and starts it again. */
static void test_reboot_ssh(void **state)
{
	char *root = xsprintf("%s/executor-reboot-ssh", g.trees);
	struct session *s;
	struct run r;
	long sshd0, sshd1;

	/* This machine does not reboot: see test_reboot_local. */
	g.session_conn = &fake_new(false)->base;
	s = session_open(root, "/plan", NULL);
	run(s, &r, "/reboot_kill_sshd", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	/* Both starts, the second with TMT_REBOOT_COUNT=1 (and
	 * TMT_TEST_RESTART_COUNT=1, or it exits 5). */
	EXPECT_TEXT(&r, "output.txt", "first\nsecond TMT_REBOOT_COUNT=1\n");
	/* Each start was served by its own sshd: the first one's was
	 * killed, the second came through a new connection. */
	sshd0 = sys_number(&r, "sshd-0");
	sshd1 = sys_number(&r, "sshd-1");
	if (sshd0 <= 0 || sshd1 <= 0 || sshd0 == sshd1)
		soft_fail("/reboot_kill_sshd: sshd %ld, then sshd %ld", sshd0,
			  sshd1);
	if (sshd0 > 0 && !pid_gone(sshd0, 3000))
		soft_fail("/reboot_kill_sshd: sshd %ld is still there", sshd0);
	CHECK(atex_ssh_connection_alive(g.conn));
	/* The executor goes on over the new connection. */
	run(s, &r, "/after", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "fine\n");
	session_close(s);
	atex_connection_free(g.session_conn);
	g.session_conn = NULL;
	free(root);
	soft_check();
}

/* The test kills the sshd that serves its connection without sending
 * `disconnect`: the system failed under it. ssh can reboot, so the
 * executor reconnects to look for a new boot, finds the old one, and
 * leaves it an infrastructure failure. */
static void test_drop_ssh(void **state)
{
	char *root = xsprintf("%s/executor-reboot-ssh", g.trees);
	char needle[96];
	struct session *s;
	struct run r;
	long sshd0;

	s = session_open(root, "/plan", NULL);
	run(s, &r, "/drop", NULL, 0);
	expect_rc(&r, ATEX_EINFRA, -1);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": \"~connection\", "
		    "\"files\": [\"output.txt\"]}");
	{
		json_t *res = last_result(&r);
		const char *note =
			json_string_value(json_object_get(res, "note"));

		CHECK(note && strstr(note, "the system did not reboot"));
		json_decref(res);
	}
	/* Soon, not at the end of the test's duration (1 m): once the old
	 * boot has been seen for 5 s. */
	if (r.ms > 20000)
		soft_fail("/drop: took %.0f ms", r.ms);
	/* The test went with its connection. */
	snprintf(needle, sizeof(needle), "atex-mark-%s", r.mark);
	if (!procs_gone(needle, 3000))
		soft_fail("/drop: the test is still running");
	/* The master went with the server's side, and the executor
	 * started a new one to read the boot id. */
	CHECK(master_alive_is(true, 3000));
	/* What an orchestrator does next: connect (a no-op now), go on. */
	if (atex_connection_connect(g.conn, 30000, NULL))
		fail_msg("reconnecting: %s", atex_error_last());
	/* Its sshd was killed (read now: ART is on the system). */
	sshd0 = sys_number(&r, "sshd-0");
	if (sshd0 <= 0 || !pid_gone(sshd0, 3000))
		soft_fail("/drop: its sshd (%ld) is still there", sshd0);
	run(s, &r, "/after", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "fine\n");
	session_close(s);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * executor-reboot-boot: reboots on the fake boot connection.
 */

/* Warnings logged while a test runs, one per line. */
static struct {
	pthread_mutex_t lock;
	char text[8192];
} warnings = {PTHREAD_MUTEX_INITIALIZER, ""};

static void log_warnings(int level, const char *component, const char *message,
			 void *userdata)
{
	(void)component;
	(void)userdata;
	if (level > ATEX_LOG_WARNING)
		return;
	pthread_mutex_lock(&warnings.lock);
	strncat(warnings.text, message,
		sizeof(warnings.text) - strlen(warnings.text) - 2);
	strcat(warnings.text, "\n");
	pthread_mutex_unlock(&warnings.lock);
}

/* Where fake reboot commands are on the system: tmt-reboot finds them
 * before the real ones. */
static char *fake_bin(void)
{
	char *bin = xsprintf("%s/fake-bin", g.base);
	const char *names[] = {"reboot", "systemctl", "shutdown"};

	assert_int_equal(
		sys_sh(NULL, NULL, NULL, "mkdir -p -- \"$1\"", bin, NULL), 0);
	for (size_t i = 0; i < 3; i++) {
		char *path = xsprintf("%s/%s", bin, names[i]);

		sys_write(path,
			  "#!/bin/sh\necho \"fake $0 called\" >&2\nexit 1\n",
			  "0755");
		free(path);
	}
	return bin;
}

/* tmt-reboot on a connection that cannot reboot and is not the local
 * one: refused at once, with the connection's reason. */
static void test_fake_boot_refused(void **state)
{
	char *root = xsprintf("%s/executor-reboot-boot", g.trees);
	char *bin = fake_bin(), *bin_var = xsprintf("FAKE_BIN=%s", bin);
	const char *env[] = {bin_var, NULL};
	struct fake_boot_conn *f = fake_new(false);
	struct session *s;
	struct run r;
	char *out;

	g.session_conn = &f->base;
	s = session_open(root, "/plan", NULL);
	run(s, &r, "/refused", env, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	out = output_of(&r);
	CHECK(strstr(out, "tmt-reboot: not rebooting: ") &&
	      strstr(out, "cannot reboot"));
	CHECK(strstr(out, "still here, reboots: 0\n"));
	CHECK(!strstr(out, "fake"));
	if (r.ms > 10000)
		soft_fail("/refused: took %.0f ms", r.ms);
	/* Nothing to confirm where nothing reboots. */
	CHECK(f->boot_reads == 0);
	free(out);
	session_close(s);
	g.session_conn = NULL;
	atex_connection_free(&f->base);
	free(bin_var);
	free(bin);
	free(root);
	soft_check();
}

/* A connection that can reboot: after `disconnect` the boot id must
 * change (at once, or after a while during which the old one is still
 * there); an unannounced reboot starts the test again with a warning and
 * a note; a lost connection without a new boot is an infrastructure
 * failure. */
static void test_fake_boot_reboots(void **state)
{
	char *root = xsprintf("%s/executor-reboot-boot", g.trees);
	struct fake_boot_conn *f = fake_new(true);
	char *boot_var = xsprintf("BOOT_FILE=%s", f->boot_file);
	const char *env[] = {boot_var, NULL};
	const char *env_new[] = {boot_var, "NEW_BOOT=boot-4", NULL};
	struct session *s;
	struct run r;
	char *out;

	g.session_conn = &f->base;
	sys_write(f->boot_file, "boot-1\n", "0644");
	s = session_open(root, "/plan", NULL);

	/* Confirmed: read before the start, read again after. */
	run(s, &r, "/confirmed", env, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "first\nsecond boot-2\n");
	if (f->boot_reads < 2)
		soft_fail("/confirmed: the boot id was read %d times",
			  (int)f->boot_reads);

	/* Still the old boot for 3 s: the second start waits for the new
	 * one (a reconnect alone would start it at once). */
	sys_write(f->boot_file, "boot-1\n", "0644");
	f->boot_reads = 0;
	run(s, &r, "/waiting", env, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "first\nsecond boot-3\n");
	if (r.ms < 2500)
		soft_fail("/waiting: started again after %.0f ms", r.ms);
	if (f->boot_reads < 3)
		soft_fail("/waiting: the boot id was read %d times",
			  (int)f->boot_reads);

	/* Unannounced: the connection lost, a new boot: started again,
	 * TMT_REBOOT_COUNT raised, a warning and the note. */
	sys_write(f->boot_file, "boot-1\n", "0644");
	warnings.text[0] = '\0';
	atex_log_set_handler(log_warnings, NULL);
	run(s, &r, "/unannounced", env_new, 0);
	atex_log_set_handler(NULL, NULL);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"note\": \"the system rebooted "
		    "without tmt-reboot\", \"files\": [\"output.txt\"]}");
	/* (Over ssh the login shell also says its wrapper was killed.) */
	out = output_of(&r);
	CHECK(!strncmp(out, "first\n", 6));
	CHECK(strlen(out) >= 33 &&
	      !strcmp(out + strlen(out) - 33,
		      "second boot-4 TMT_REBOOT_COUNT=1\n"));
	free(out);
	CHECK(strstr(warnings.text, "rebooted without tmt-reboot"));

	/* Lost without a new boot: infra, as before, once the system has
	 * shown its old boot for FMF_REBOOT_SETTLE_MS (5 s). */
	run(s, &r, "/unannounced", env, 0);
	expect_rc(&r, ATEX_EINFRA, -1);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": \"~did not reboot\", "
		    "\"files\": [\"output.txt\"]}");
	out = output_of(&r);
	CHECK(!strstr(out, "second"));
	free(out);
	if (r.ms < 4500 || r.ms > 20000)
		soft_fail("/unannounced (lost): took %.0f ms", r.ms);

	session_close(s);

	/* compat_python_atex: after `disconnect` the test starts again as
	 * soon as the connection is back (the old boot then), and a reboot
	 * without it is not followed. */
	session_compat = true;
	s = session_open(root, "/plan", NULL);
	sys_write(f->boot_file, "boot-1\n", "0644");
	run(s, &r, "/waiting", env, 0);
	expect_rc(&r, 0, 0);
	EXPECT_TEXT(&r, "output.txt", "first\nsecond boot-1\n");
	if (r.ms > 2500)
		soft_fail("/waiting (compat): started again after %.0f ms",
			  r.ms);
	sys_write(f->boot_file, "boot-1\n", "0644");
	run(s, &r, "/unannounced", env_new, 0);
	expect_rc(&r, ATEX_EINFRA, -1);
	RESULTS(&r,
		"{\"status\": \"infra\", \"note\": \"~TestAbortedError(test "
		"wrapper unexpectedly exited with\", \"files\": "
		"[\"output.txt\"]}");
	CHECK(strstr(atex_error_last(), "disconnect was not sent via test "
					"control") != NULL);
	session_compat = false;
	session_close(s);
	g.session_conn = NULL;
	atex_connection_free(&f->base);
	free(boot_var);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * executor-pkgs: require and recommend with apt-get.
 */

static void test_pkgs(void **state)
{
	char *root = xsprintf("%s/executor-pkgs", g.trees);
	char *log, *out;
	json_t *last;
	struct session *s;
	struct run r;

	sys_write(g.apt_log, "", "0644");
	s = session_open(root, "/plan", NULL);

	/* Installed: nothing to install, the test runs. */
	run(s, &r, "/require_installed", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "body ran\n");
	run(s, &r, "/require_installed_string", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "body ran\n");
	log = sys_read(g.apt_log, NULL);
	assert_non_null(log);
	if (*log)
		soft_fail("apt-get was run for installed packages: %s", log);
	free(log);

	/* A required package that does not exist: one "infra" result
	 * naming it, and the test does not run. */
	run(s, &r, "/require_missing", NULL, 0);
	if (r.ms > 20000)
		soft_fail("/require_missing: took %.0f ms", r.ms);
	RESULTS(&r, "{\"status\": \"infra\", \"note\": "
		    "\"~atex-no-such-package-xyz\", \"files\": "
		    "[\"packages.txt\"]}");
	/* The package manager's output is in packages.txt, which the note
	 * names, not in the test's output. */
	last = last_result(&r);
	out = (char *)json_string_value(json_object_get(last, "note"));
	CHECK(out && strstr(out, "see packages.txt"));
	json_decref(last);
	out = artifact(&r, "packages.txt", NULL);
	CHECK(out && strstr(out, "atex-no-such-package-xyz"));
	free(out);
	expect_listing(&r, "packages.txt\n");
	{
		char *mark = xsprintf("%s/body-ran", r.art);

		CHECK(!sys_exists(mark));
		free(mark);
	}
	/* The test's metadata failed, not the system (executor.h): rc 0,
	 * and no exit code. */
	expect_rc(&r, 0, -1);
	log = sys_read(g.apt_log, NULL);
	CHECK(log && strstr(log, "atex-no-such-package-xyz"));
	free(log);

	/* A recommended one: tried, tolerated. */
	sys_write(g.apt_log, "", "0644");
	run(s, &r, "/recommend_missing", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"files\": [\"output.txt\", "
		    "\"packages.txt\"]}");
	/* Only the test's own output in output.txt. */
	EXPECT_TEXT(&r, "output.txt", "body ran\n");
	out = artifact(&r, "packages.txt", NULL);
	CHECK(out && strstr(out, "atex-no-such-package-xyz") &&
	      strstr(out, "recommended package atex-no-such-package-xyz not "
			  "installed"));
	free(out);
	log = sys_read(g.apt_log, NULL);
	CHECK(log && strstr(log, "atex-no-such-package-xyz"));
	free(log);
	session_close(s);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * executor-rules: sections 2-4 beyond the conformance trees.
 */

/* Watches a local artifact while a test runs: once it holds `want`,
 * creates the file `sys` on the system (through the connection, from this
 * thread: no cmocka checks here). */
struct watcher {
	char *local;
	const char *want;
	char *sys;
	atomic_bool stop;
	atomic_bool seen;
};

static void *watch_artifact(void *arg)
{
	struct watcher *w = arg;
	size_t want_len = strlen(w->want);

	while (!atomic_load(&w->stop)) {
		char buf[64];
		int fd = open(w->local, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

		if (fd >= 0)
			close(fd);
		if (n == (ssize_t)want_len && !memcmp(buf, w->want, want_len)) {
			const char *argv[] = {"touch", w->sys, NULL};
			struct atex_run_result r = {0};

			if (atex_connection_run(&r, g.conn, argv, NULL, 0,
						30000, NULL) == 0 &&
			    WIFEXITED(r.status) && !WEXITSTATUS(r.status))
				atomic_store(&w->seen, true);
			atex_run_result_clear(&r);
			break;
		}
		usleep(20 * 1000);
	}
	return NULL;
}

static void test_rules_results(void **state)
{
	const char *exec_env[] = {"PREC_EXEC=exec", "PREC_RUN=exec", NULL};
	char *root = xsprintf("%s/executor-rules", g.trees);
	struct session *s;
	struct run r;

	s = session_open(root, "/plan", exec_env);

	/* Custom status, note and other keys are kept as they are. */
	run(s, &r, "/custom_status", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r,
		"{\"status\": \"custom-status\", \"name\": \"sub\", \"note\": "
		"\"some note\", \"extra\": {\"k\": [1, \"two\"]}}",
		PASS_OUT);

	/* testout must not be one of the files: in one result, or in the
	 * merged one. */
	run(s, &r, "/testout_in_files", NULL, 0);
	expect_rc(&r, ATEX_EFORMAT, -1);
	RESULTS(&r, ERROR_OUT("~testout"));
	run(s, &r, "/testout_in_files_merged", NULL, 0);
	expect_rc(&r, ATEX_EFORMAT, -1);
	/* The open result is the test's own: it closes as the error, with
	 * its testout. */
	RESULTS(&r, "{\"status\": \"error\", \"note\": \"~testout\", "
		    "\"files\": [\"a.txt\"]}");
	expect_listing(&r, "a.txt\n");

	/* Repeated names append, within a result and across results. */
	run(s, &r, "/append_across_results", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r,
		"{\"status\": \"pass\", \"name\": \"s\", \"files\": "
		"[\"log\"]}",
		"{\"status\": \"fail\", \"name\": \"s\", \"files\": [\"log\"]}",
		PASS_OUT);
	expect_listing(&r, "output.txt\ns/log\n");
	EXPECT_TEXT(&r, "s/log", "abcde");

	/* The merge rules. */
	run(s, &r, "/merge_types", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, "{\"status\": \"pass\", \"x\": \"now a string\", \"o\": "
		    "{\"a\": {\"b\": 1, \"d\": 3}}, \"s\": [1], \"n\": 2.5, "
		    "\"l\": [1, 2]}");

	/* Open results close in first-seen order. */
	run(s, &r, "/open_order", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r,
		"{\"status\": \"fail\", \"name\": \"b\", \"note\": "
		"\"updated\"}",
		"{\"status\": \"info\", \"name\": \"a\"}", PASS_OUT);

	/* A partial result's file is on disk before the result closes: the
	 * test waits, its result open, until we have seen the file. */
	{
		char *dir = xsprintf("%s/partial-immediate", g.base);
		char *seen = xsprintf("%s/partial-immediate-seen", g.base);
		char *seen_var = xsprintf("SEEN=%s", seen);
		const char *env[] = {seen_var, NULL};
		struct watcher w = {.want = "early", .sys = seen};
		pthread_t t;

		w.local = xsprintf("%s/files/early/f", dir);
		atomic_init(&w.stop, false);
		atomic_init(&w.seen, false);
		assert_int_equal(pthread_create(&t, NULL, watch_artifact, &w),
				 0);
		run_in(s, &r, "/partial_files_immediate", dir, env, 0);
		atomic_store(&w.stop, true);
		pthread_join(t, NULL);
		CHECK(atomic_load(&w.seen));
		expect_rc(&r, 0, 0);
		RESULTS(&r,
			"{\"status\": \"pass\", \"name\": \"early\", "
			"\"files\": [\"f\"]}",
			PASS_OUT);
		EXPECT_TEXT(&r, "early/f", "early");
		free(w.local);
		free(seen_var);
		free(seen);
		free(dir);
	}
	session_close(s);
	free(root);
	soft_check();
}

static void test_rules_environment(void **state)
{
	const char *exec_env[] = {"PREC_EXEC=exec", "PREC_RUN=exec", NULL};
	const char *run_env[] = {"PREC_RUN=run", NULL};
	char *root = xsprintf("%s/executor-rules", g.trees);
	char *want, *out, *dir;
	struct session *s;
	struct run r;

	s = session_open(root, "/plan", exec_env);

	/* Lowest first: plan, built-ins, test, executor, run (and the
	 * plan-environment file a prepare script wrote). */
	run(s, &r, "/env_precedence", run_env, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt",
		    "PREC_EXEC=exec\nPREC_FILE=from prepare\nPREC_PLAN=plan\n"
		    "PREC_RUN=run\nPREC_TEST=test\n"
		    "TMT_TEST_NAME=/env_precedence\n");
	run(s, &r, "/env_test_over_builtin", NULL, 0);
	expect_rc(&r, 0, 0);
	EXPECT_TEXT(&r, "output.txt", "TMT_TEST_NAME=from-test\n");

	/* In its fmf directory of the uploaded tree. */
	run(s, &r, "/sub/where", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	want = xsprintf("PWD=%s/tree/sub\nTREE=%s/tree\ntree-ok\n", s->workdir,
			s->workdir);
	expect_file(&r, "output.txt", want, strlen(want));
	free(want);

	/* stdin is /dev/null. */
	run(s, &r, "/stdin_null", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "/dev/null\n");

	/* bash with set -e -o pipefail. */
	run(s, &r, "/bash_errexit", NULL, 0);
	expect_rc(&r, 0, 1);
	RESULTS(&r, FAIL_OUT);
	EXPECT_TEXT(&r, "output.txt", "one\n");
	run(s, &r, "/bash_pipefail", NULL, 0);
	expect_rc(&r, 0, 1);
	RESULTS(&r, FAIL_OUT);
	EXPECT_TEXT(&r, "output.txt", "");

	/* stdout and stderr, one output, in order. */
	run(s, &r, "/output_interleave", NULL, 0);
	expect_rc(&r, 0, 0);
	EXPECT_TEXT(&r, "output.txt", "out1\nerr1\nout2\n");

	/* A new session. */
	run(s, &r, "/new_session", NULL, 0);
	expect_rc(&r, 0, 0);
	EXPECT_TEXT(&r, "output.txt", "session-leader\ngroup-leader\n");

	/* tty: true: a terminal of 80x24, TERM set. */
	run(s, &r, "/tty", NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	out = output_of(&r);
	if (!strstr(out, "24 80") || !strstr(out, "is-a-tty") ||
	    !strstr(out, "TERM=") || strchr("\r\n", strstr(out, "TERM=")[5]))
		soft_fail("/tty: output: %s", out);
	free(out);

	/* A directory is one run: its results are replaced. */
	dir = xsprintf("%s/replaced", g.base);
	run_in(s, &r, "/custom_status", dir, NULL, 0);
	run_in(s, &r, "/output_interleave", dir, NULL, 0);
	expect_rc(&r, 0, 0);
	RESULTS(&r, PASS_OUT);
	EXPECT_TEXT(&r, "output.txt", "out1\nerr1\nout2\n");
	free(dir);

	/* No such test: nothing written. */
	dir = xsprintf("%s/not-found", g.base);
	CHECK(atex_executor_run_test(s->e, "/no/such/test", dir, NULL, NULL) ==
	      ATEX_ENOTFOUND);
	CHECK(!(exists(dir)));
	free(dir);
	session_close(s);
	free(root);
	soft_check();
}

/* run_test before start. */
static void test_not_started(void **state)
{
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	char *root = xsprintf("%s/executor-helpers", g.trees);
	char *dir = xsprintf("%s/not-started", g.base);
	atex_fmf_discovery *d;
	atex_executor *e;

	dopts.plan = "/plan";
	assert_int_equal(atex_fmf_discover(&d, root, &dopts), 0);
	eopts.connection = g.conn;
	eopts.discovery = d;
	assert_int_equal(atex_fmf_executor_new(&e, &eopts), 0);
	assert_int_equal(atex_executor_run_test(e, "/exit0", dir, NULL, NULL),
			 ATEX_EINVAL);
	CHECK(!(exists(dir)));
	assert_int_equal(atex_executor_stop(e), ATEX_EINVAL);
	atex_executor_free(e);
	atex_fmf_discovery_free(d);
	free(dir);
	free(root);
	soft_check();
}

/* ------------------------------------------------------------------------
 * Setup.
 */

static void setup_paths(void)
{
	const char *conf = getenv("ATEX_CONFORMANCE");
	const char *trees = getenv("ATEX_TEST_TREES");

	if (!conf || !trees) {
		fprintf(stderr, "ATEX_CONFORMANCE and ATEX_TEST_TREES must be "
				"set (meson test sets them)\n");
		exit(1);
	}
	snprintf(g.conformance, sizeof(g.conformance), "%s/fmf/trees", conf);
	snprintf(g.trees, sizeof(g.trees), "%s", trees);
}

/* Removes our container, if any. */
static void podman_remove(void)
{
	char cmd[256];

	if (!g.container[0])
		return;
	snprintf(cmd, sizeof(cmd),
		 "podman " PODMAN_GLOBAL " rm -f -t 0 %s >/dev/null 2>&1",
		 g.container);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove the container %s\n",
			g.container);
	g.container[0] = '\0';
}

/* Killed (a meson timeout, ^C): the container goes too. */
static void on_signal(int sig)
{
	podman_remove();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Starts our container: `sleep infinity` in the test image. */
static int podman_start(void)
{
	const char *image = getenv("ATEX_TEST_PODMAN_IMAGE");
	char *cmd;
	int rc;

	if (!image || !*image)
		image = "atex-test-minbase";
	if (strchr(image, '\''))
		return -1;
	snprintf(g.container, sizeof(g.container), "atex-exectest-%d",
		 (int)getpid());
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	cmd = xsprintf("podman " PODMAN_GLOBAL " run -d --rm " PODMAN_RUN
		       " --name %s '%s' sleep infinity >/dev/null",
		       g.container, image);
	rc = system(cmd);
	free(cmd);
	if (rc != 0) {
		fprintf(stderr, "cannot start a container of %s\n", image);
		g.container[0] = '\0';
		return -1;
	}
	return 0;
}

/* The connection ATEX_EXECUTOR_CONNECTION asks for. */
static int setup_connection(void)
{
	const char *kind = getenv("ATEX_EXECUTOR_CONNECTION");

	if (!kind || !*kind)
		kind = "local";
	g.kind_name = kind;
	if (!strcmp(kind, "local")) {
		g.kind = KIND_LOCAL;
		return atex_local_connection_new(&g.conn, NULL);
	}
	if (!strcmp(kind, "ssh")) {
		static const char *const options[] = {
			"StrictHostKeyChecking=no",
			"UserKnownHostsFile=/dev/null", NULL};
		struct atex_ssh_options o = ATEX_SSH_OPTIONS_INIT;
		const char *port = getenv("ATEX_TEST_SSH_PORT");

		g.kind = KIND_SSH;
		o.host = getenv("ATEX_TEST_SSH_HOST");
		o.port = port ? atoi(port) : 0;
		o.user = getenv("ATEX_TEST_SSH_USER");
		o.identity = getenv("ATEX_TEST_SSH_KEY");
		o.options = options;
		if (!o.host || !o.identity || !getenv("ATEX_TEST_SSH_BIN")) {
			fprintf(stderr,
				"ssh: ATEX_TEST_SSH_HOST, _PORT, _USER, _KEY "
				"and _BIN must be set (run through "
				"tests/integration/with-server.sh ssh)\n");
			return -1;
		}
		return atex_ssh_connection_new(&g.conn, &o);
	}
	if (!strcmp(kind, "podman")) {
		struct atex_podman_options o = ATEX_PODMAN_OPTIONS_INIT;

		g.kind = KIND_PODMAN;
		if (podman_start())
			return -1;
		o.container = g.container;
		o.podman_args = podman_global;
		return atex_podman_connection_new(&g.conn, &o);
	}
	fprintf(stderr,
		"ATEX_EXECUTOR_CONNECTION=%s: local, ssh or podman, please\n",
		kind);
	return -1;
}

/* Our apt-get first on the system's PATH: it logs, then runs the real
 * one. Local: a directory of ours first on our PATH (the connection's
 * commands inherit it); ssh: ATEX_TEST_SSH_BIN, which the server puts first
 * on its sessions' PATH; podman: /usr/local/sbin of our own container. */
static void setup_fake_apt(void)
{
	char *dir, *path, *script, *found;

	switch (g.kind) {
	case KIND_LOCAL: {
		const char *old = getenv("PATH");

		dir = xsprintf("%s/bin", g.base);
		assert_int_equal(mkdir(dir, 0755), 0);
		path = xsprintf("%s:%s", dir, old ? old : "/usr/bin:/bin");
		setenv("PATH", path, 1);
		free(path);
		break;
	}
	case KIND_SSH:
		dir = strdup(getenv("ATEX_TEST_SSH_BIN"));
		break;
	default:
		dir = strdup("/usr/local/sbin");
		break;
	}
	snprintf(g.apt_log, sizeof(g.apt_log), "%s/apt.log", g.base);
	sys_write(g.apt_log, "", "0644");
	script = xsprintf("#!/bin/sh\necho \"$*\" >> '%s'\n"
			  "exec /usr/bin/apt-get \"$@\"\n",
			  g.apt_log);
	path = xsprintf("%s/apt-get", dir);
	sys_write(path, script, "0755");
	/* The one a command on the system finds. */
	assert_int_equal(sys_sh(&found, NULL, NULL, "command -v apt-get", NULL),
			 0);
	if (strcmp(found, path) && (strncmp(found, path, strlen(path)) ||
				    strcmp(found + strlen(path), "\n")))
		fail_msg("apt-get on %s is %s, not ours (%s)",
			 atex_connection_name(g.conn), found, path);
	free(found);
	free(path);
	free(script);
	free(dir);
}

/* The connection, the scratch directory on the system, our apt-get. */
static int group_setup(void **state)
{
	int rc = atex_connection_connect(g.conn, 60000, NULL);

	if (rc)
		fail_msg("connecting to %s: %s", atex_connection_name(g.conn),
			 atex_error_last());
	assert_int_equal(
		sys_sh(NULL, NULL, NULL, "mkdir -p \"$1\"", g.base, NULL), 0);
	setup_fake_apt();
	return 0;
}

int main(void)
{
	const struct CMUnitTest all[] = {
		cmocka_unit_test(test_not_started),
		cmocka_unit_test_teardown(test_results_tree, teardown),
		cmocka_unit_test_teardown(test_env_tree, teardown),
		cmocka_unit_test_teardown(test_cwd_tree, teardown),
		cmocka_unit_test_teardown(test_misc_output, teardown),
		cmocka_unit_test_teardown(test_misc_cancel, teardown),
		cmocka_unit_test_teardown(test_cancel_while_making_workdir,
					  teardown),
		cmocka_unit_test_teardown(test_compat_python_atex, teardown),
		cmocka_unit_test_teardown(test_pty_tree, teardown),
		cmocka_unit_test_teardown(test_hostile_channel, teardown),
		cmocka_unit_test_teardown(test_hostile_names, teardown),
		cmocka_unit_test_teardown(test_hostile_big_file, teardown),
		cmocka_unit_test_teardown(test_hostile_processes, teardown),
		cmocka_unit_test_teardown(test_durations, teardown),
		cmocka_unit_test_teardown(test_verdicts, teardown),
		cmocka_unit_test_teardown(test_helpers, teardown),
		cmocka_unit_test_teardown(test_reboot_local, teardown),
		cmocka_unit_test_teardown(test_fake_boot_refused, teardown),
		cmocka_unit_test_teardown(test_fake_boot_reboots, teardown),
		cmocka_unit_test_teardown(test_pkgs, teardown),
		cmocka_unit_test_teardown(test_rules_results, teardown),
		cmocka_unit_test_teardown(test_rules_environment, teardown),
	};
	/* Over local and ssh: the test's processes are this machine's. */
	const struct CMUnitTest here_only[] = {
		cmocka_unit_test_teardown(test_stalled_executor, teardown),
	};
	/* Over ssh only: the server side of the connection goes away. */
	const struct CMUnitTest ssh_only[] = {
		cmocka_unit_test_teardown(test_reboot_ssh, teardown),
		cmocka_unit_test_teardown(test_drop_ssh, teardown),
	};
	const size_t n_all = sizeof(all) / sizeof(all[0]);
	const size_t n_ssh = sizeof(ssh_only) / sizeof(ssh_only[0]);
	const size_t n_here = sizeof(here_only) / sizeof(here_only[0]);
	struct CMUnitTest tests[sizeof(all) / sizeof(all[0]) +
				sizeof(here_only) / sizeof(here_only[0]) +
				sizeof(ssh_only) / sizeof(ssh_only[0])];
	size_t n = 0;
	char group[64];
	int failed;

	setup_paths();
	snprintf(g.base, sizeof(g.base), "/tmp/atex-exectest-XXXXXX");
	if (!mkdtemp(g.base)) {
		perror("mkdtemp");
		return 1;
	}
	if (setup_connection()) {
		fprintf(stderr, "%s connection: %s\n",
			g.kind_name ? g.kind_name : "?", atex_error_last());
		podman_remove();
		return 1;
	}
	for (size_t i = 0; i < n_all; i++)
		tests[n++] = all[i];
	if (g.kind != KIND_PODMAN)
		for (size_t i = 0; i < n_here; i++)
			tests[n++] = here_only[i];
	if (g.kind == KIND_SSH)
		for (size_t i = 0; i < n_ssh; i++)
			tests[n++] = ssh_only[i];
	snprintf(group, sizeof(group), "executor over %s",
		 atex_connection_name(g.conn));
	/* One test by hand: ATEX_TEST_FILTER=test_helpers. */
	if (getenv("ATEX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("ATEX_TEST_FILTER"));
	failed = _cmocka_run_group_tests(group, tests, n, group_setup, NULL);
	atex_connection_free(g.conn);
	podman_remove();
	/* The artifacts are kept when something failed, for a look. */
	if (!failed)
		sh("rm -rf '%s'", g.base);
	else
		fprintf(stderr, "artifacts kept in %s\n", g.base);
	return failed;
}
