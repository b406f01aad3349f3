/*
 * test_ssh.c - the ssh connection against a real sshd that the test starts
 * itself on 127.0.0.1, so the suite needs no network and no configured
 * server: keys are generated with ssh-keygen into a temporary directory,
 * sshd runs in the foreground (-D) as our child on a free port and is
 * killed at the end.
 *
 * Every master the library starts lives under TMPDIR, which the fixture
 * points into its own directory: after each test that frees its
 * connection, no atex-ssh-* directory may remain there and no process may
 * mention that directory on its command line. That is how "free leaves
 * nothing behind" is checked without confusing our ssh processes with
 * anyone else's.
 *
 * Needs openssh-server, openssh-client and rsync (scripts/install-deps.sh)
 * and root (sshd's privilege separation); fails loudly otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atex/connection.h"
#include "atex/provisioner.h"
#include "util/process.h"
#include "util/util.h"

#define SSHD "/usr/sbin/sshd"
#define HOST "127.0.0.1"

struct fixture {
	char dir[64];	   /* /tmp/atex-sshd-XXXXXX */
	char tmpdir[96];   /* dir/t: the library's TMPDIR */
	char key[128];	   /* the authorized user key */
	char bad_key[128]; /* a key the server does not know */
	char log[128];
	int port;
	atex_process *sshd;
};

static struct fixture fx;

/* ------------------------------------------------------------------------
 * Helpers.
 */

/* Runs a shell command line for the fixture; fails the test if it fails. */
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* A port nobody listens on (bound to 0 and released). */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* A socket listening on a free port that never answers (the kernel
 * accepts connections into the backlog): a server that hangs. */
static int silent_server(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static bool port_accepts(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static const char *const client_options[] = {
	"StrictHostKeyChecking=no",
	"UserKnownHostsFile=/dev/null",
	/* Sessions in a UTF-8 locale, as on users' systems (the server
	 * accepts it): bash reads bytes differently there. */
	"SetEnv=LC_ALL=C.UTF-8",
	NULL,
};

/* A connection to our sshd (or to `port` when not 0), not connected. */
static atex_connection *conn_new_port(int port, const char *key)
{
	struct atex_ssh_options o = ATEX_SSH_OPTIONS_INIT;
	atex_connection *c = NULL;

	o.host = HOST;
	o.port = port ? port : fx.port;
	o.user = "root";
	o.identity = key ? key : fx.key;
	o.options = client_options;
	o.connect_timeout_s = 5;
	assert_int_equal(atex_ssh_connection_new(&c, &o), 0);
	return c;
}

static atex_connection *conn_open(void)
{
	atex_connection *c = conn_new_port(0, NULL);
	int rc = atex_connection_connect(c, 10000, NULL);

	if (rc)
		fail_msg("connect: %s", atex_error_last());
	return c;
}

/* Runs argv, returns the exit code (fails on anything but an exit). */
static int run(atex_connection *c, struct atex_run_result *r,
	       const char *const *argv, const void *in, size_t in_len)
{
	int rc = atex_connection_run(r, c, argv, in, in_len, 60000, NULL);

	if (rc)
		fail_msg("run %s: %s", argv[0], atex_error_last());
	assert_true(WIFEXITED(r->status));
	return WEXITSTATUS(r->status);
}

/* Whether any process's command line mentions `needle`. */
static bool process_mentions(const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool found = false;

	assert_non_null(d);
	while (!found && (e = readdir(d))) {
		char path[300], cmd[8192];
		ssize_t n;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		for (ssize_t i = 0; i < n; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		cmd[n > 0 ? n : 0] = '\0';
		found = strstr(cmd, needle) != NULL;
	}
	closedir(d);
	return found;
}

/* The parent of `pid`, or -1. */
static pid_t parent_of(pid_t pid)
{
	char path[64], stat[512], *close_paren;
	ssize_t n;
	int fd, ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	stat[n > 0 ? n : 0] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces. */
	close_paren = strrchr(stat, ')');
	if (close_paren)
		sscanf(close_paren + 1, " %*c %d", &ppid);
	return ppid;
}

/* Pids of processes whose cmdline contains `needle` (max n). */
static size_t pids_of(pid_t *pids, size_t n, const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	size_t found = 0;

	while (found < n && (e = readdir(d))) {
		char path[300], cmd[8192];
		ssize_t len;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		for (ssize_t i = 0; i < len; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		cmd[len > 0 ? len : 0] = '\0';
		if (strstr(cmd, needle))
			pids[found++] = atoi(e->d_name);
	}
	closedir(d);
	return found;
}

/* Nothing of ours is left: no master directory, no ssh process. */
static void assert_clean(void)
{
	DIR *d = opendir(fx.tmpdir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "atex-ssh-", 9))
			fail_msg("left behind: %s/%s", fx.tmpdir, e->d_name);
	closedir(d);
	if (process_mentions(fx.tmpdir))
		fail_msg("an ssh process of ours survived free");
}

static void conn_free(atex_connection *c)
{
	atex_connection_free(c);
	assert_clean();
}

/* ------------------------------------------------------------------------
 * The sshd fixture.
 */

static void write_config(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f,
		"ListenAddress " HOST "\n"
		"Port %d\n"
		"HostKey %s/host_key\n"
		"AuthorizedKeysFile %s.pub\n"
		"PidFile %s/sshd.pid\n"
		"UsePAM no\n"
		"StrictModes no\n"
		"PermitRootLogin yes\n"
		"PasswordAuthentication no\n"
		"KbdInteractiveAuthentication no\n"
		"AcceptEnv LC_ALL\n"
		/* MaxSessions stays at its default (10): the connection
		 * must open more masters for more concurrent commands. */
		"LogLevel VERBOSE\n",
		fx.port, fx.dir, fx.key, fx.dir);
	fclose(f);
}

static int sshd_start(void **state)
{
	const char *argv[] = {SSHD, "-D", "-f", NULL, "-E", fx.log, NULL};
	char config[128];
	double deadline;

	(void)state;
	strcpy(fx.dir, "/tmp/atex-sshd-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.tmpdir, sizeof(fx.tmpdir), "%s/t", fx.dir);
	snprintf(fx.key, sizeof(fx.key), "%s/user_key", fx.dir);
	snprintf(fx.bad_key, sizeof(fx.bad_key), "%s/bad_key", fx.dir);
	snprintf(fx.log, sizeof(fx.log), "%s/sshd.log", fx.dir);
	snprintf(config, sizeof(config), "%s/sshd_config", fx.dir);
	mkdir(fx.tmpdir, 0700);
	/* sshd's privilege separation directory. */
	mkdir("/run/sshd", 0755);
	sh("ssh-keygen -q -t ed25519 -N '' -f %s/host_key", fx.dir);
	sh("ssh-keygen -q -t ed25519 -N '' -f %s", fx.key);
	sh("ssh-keygen -q -t ed25519 -N '' -f %s", fx.bad_key);
	fx.port = free_port();
	write_config(config);
	argv[3] = config;
	if (atex_process_spawn(&fx.sshd, argv, NULL, NULL, ATEX_STDIO_NULL,
			       ATEX_STDIO_INHERIT, ATEX_STDIO_INHERIT))
		return -1;
	/* sshd has no readiness notification in -D mode: try the port. */
	deadline = atex_monotonic_ms() + 10000;
	while (!port_accepts(fx.port)) {
		if (atex_monotonic_ms() > deadline ||
		    atex_process_wait(NULL, fx.sshd, 10, NULL) == 0) {
			sh("cat %s >&2", fx.log);
			return -1;
		}
	}
	setenv("TMPDIR", fx.tmpdir, 1);
	return 0;
}

static int sshd_stop(void **state)
{
	pid_t pids[64];
	size_t n;

	(void)state;
	atex_process_free(fx.sshd);
	/* A failed test may not have freed its connection: do not leave
	 * its master running after the suite. */
	n = pids_of(pids, 64, fx.dir);
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	if (fx.dir[0])
		sh("rm -rf %s", fx.dir);
	return 0;
}

/* ------------------------------------------------------------------------
 * Commands.
 */

static void test_exit_codes(void **state)
{
	const char *ok[] = {"true", NULL};
	const char *three[] = {"sh", "-c", "exit 3", NULL};
	const char *missing[] = {"no-such-program-atex", NULL};
	struct atex_run_result r = {0};
	atex_connection *c = conn_open();

	(void)state;
	assert_int_equal(run(c, &r, ok, NULL, 0), 0);
	atex_run_result_clear(&r);
	assert_int_equal(run(c, &r, three, NULL, 0), 3);
	atex_run_result_clear(&r);
	assert_int_equal(run(c, &r, missing, NULL, 0), 127);
	atex_run_result_clear(&r);
	assert_true(atex_ssh_connection_alive(c));
	conn_free(c);
}

static void test_name(void **state)
{
	atex_connection *c = conn_new_port(0, NULL);
	char want[64];

	(void)state;
	snprintf(want, sizeof(want), "root@" HOST ":%d", fx.port);
	assert_string_equal(atex_connection_name(c), want);
	assert_false(atex_ssh_connection_alive(c));
	conn_free(c);
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void test_binary_roundtrip(void **state)
{
	const size_t size = 10 << 20;
	const char *cat[] = {"cat", NULL};
	struct atex_run_result r = {0};
	unsigned char *data = malloc(size);
	atex_connection *c = conn_open();
	uint64_t x = 88172645463325252ULL;
	double t0;

	(void)state;
	/* Every byte value, NULs and \r\n included (xorshift). */
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		data[i] = (unsigned char)(i < 256 ? i : x);
	}
	t0 = atex_monotonic_ms();
	assert_int_equal(run(c, &r, cat, data, size), 0);
	print_message("10 MiB through cat and back: %.0f ms\n",
		      atex_monotonic_ms() - t0);
	assert_int_equal(r.out_len, size);
	assert_true(fnv1a((unsigned char *)r.out, r.out_len) ==
		    fnv1a(data, size));
	assert_memory_equal(r.out, data, size);
	atex_run_result_clear(&r);
	free(data);
	conn_free(c);
}

static void test_stderr_separate(void **state)
{
	const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 4",
			      NULL};
	struct atex_run_result r = {0};
	atex_connection *c = conn_open();

	(void)state;
	assert_int_equal(run(c, &r, argv, NULL, 0), 4);
	assert_string_equal(r.out, "out\n");
	/* The remote login shell may add its own noise; ours is there. */
	assert_non_null(strstr(r.err, "err\n"));
	assert_null(strstr(r.err, "out"));
	atex_run_result_clear(&r);
	conn_free(c);
}

static void test_arguments(void **state)
{
	const char *args[] = {
		"a b",		"it's",	    "\"dq\"",	 "$HOME `id` $(id)",
		"line1\nline2", "",	    "*",	 "-n",
		"\\",		"; exit 9", "tab\there", NULL};
	const char *argv[16] = {"printf", "%s\\0"};
	struct atex_run_result r = {0};
	struct atex_buf want = ATEX_BUF_INIT;
	atex_connection *c = conn_open();
	size_t n = 2;

	(void)state;
	for (const char **a = args; *a; a++) {
		argv[n++] = *a;
		atex_buf_put(&want, *a, strlen(*a) + 1);
	}
	argv[n] = NULL;
	assert_int_equal(run(c, &r, argv, NULL, 0), 0);
	assert_int_equal(r.out_len, want.len);
	assert_memory_equal(r.out, want.ptr, want.len);
	atex_run_result_clear(&r);
	atex_buf_free(&want);
	conn_free(c);
}

static void test_cwd_env(void **state)
{
	const char *argv[] = {"sh", "-c",
			      "pwd; printf '%s|%s|%s\\n' \"$FOO\" \"$Q\" "
			      "\"${EMPTY-unset}\"",
			      NULL};
	const char *env[] = {"FOO=bar baz", "Q='x' $y", "EMPTY=", NULL};
	struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
	struct atex_buf out = ATEX_BUF_INIT;
	atex_connection *c = conn_open();
	atex_process *p = NULL;
	char want[256];
	int status;

	(void)state;
	o.argv = argv;
	o.cwd = fx.dir;
	o.env = env;
	o.stdout_fd = ATEX_STDIO_PIPE;
	o.stderr_fd = ATEX_STDIO_NULL;
	assert_int_equal(atex_connection_spawn(&p, c, &o), 0);
	assert_int_equal(atex_process_communicate(&status, p, NULL, 0, &out,
						  NULL, 30000, NULL),
			 0);
	assert_int_equal(status, 0);
	snprintf(want, sizeof(want), "%s\nbar baz|'x' $y|\n", fx.dir);
	assert_string_equal(atex_buf_cstr(&out), want);
	atex_process_free(p);
	atex_buf_free(&out);
	conn_free(c);
}

/* ------------------------------------------------------------------------
 * Copying trees.
 */

static void make_tree(const char *src)
{
	sh("mkdir -p '%s/sub dir/deeper' && cd '%s' && "
	   "printf 'x' > plain && chmod 0640 plain && "
	   "printf '#!/bin/sh\\n' > run.sh && chmod 0755 run.sh && "
	   "printf 'y' > 'sub dir/secret' && chmod 0600 'sub dir/secret' && "
	   "chmod 0711 'sub dir/deeper' && "
	   "ln -s 'sub dir/secret' link && ln -s /nonexistent dangling",
	   src, src);
}

static void check_tree(const char *dst)
{
	char path[512], target[512];
	struct stat st;
	ssize_t n;

#define MODE_OF(rel, mode)                                                     \
	do {                                                                   \
		snprintf(path, sizeof(path), "%s/%s", dst, rel);               \
		assert_int_equal(lstat(path, &st), 0);                         \
		assert_int_equal(st.st_mode & 07777, mode);                    \
	} while (0)
	MODE_OF("plain", 0640);
	MODE_OF("run.sh", 0755);
	MODE_OF("sub dir/secret", 0600);
	MODE_OF("sub dir/deeper", 0711);
#undef MODE_OF
	snprintf(path, sizeof(path), "%s/link", dst);
	n = readlink(path, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "sub dir/secret");
	snprintf(path, sizeof(path), "%s/dangling", dst);
	n = readlink(path, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "/nonexistent");
}

/* Copies with PATH set to `path` (NULL: unchanged), restoring it before
 * any assertion can jump out of the test. */
static int copy_with_path(atex_connection *c, const char *src, const char *dst,
			  const char *path)
{
	char *old = strdup(getenv("PATH"));
	int rc;

	if (path)
		setenv("PATH", path, 1);
	rc = atex_connection_copy_to(c, src, dst, NULL);
	setenv("PATH", old, 1);
	free(old);
	return rc;
}

static void copy_and_check(const char *name, const char *path)
{
	char src[256], dst[256];
	atex_connection *c = conn_open();
	int rc;

	snprintf(src, sizeof(src), "%s/%s-src", fx.dir, name);
	/* A destination that does not exist yet, with a space. */
	snprintf(dst, sizeof(dst), "%s/%s dst/a/b", fx.dir, name);
	make_tree(src);
	rc = copy_with_path(c, src, dst, path);
	if (rc)
		fail_msg("copy_to: %s", atex_error_last());
	check_tree(dst);
	/* Contents are merged into an existing destination. */
	sh("printf z > '%s/plain' && chmod 0604 '%s/plain'", src, src);
	assert_int_equal(copy_with_path(c, src, dst, path), 0);
	{
		char plain[300];
		struct stat st;

		snprintf(plain, sizeof(plain), "%s/plain", dst);
		assert_int_equal(stat(plain, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0604);
	}
	conn_free(c);
}

static void test_copy_rsync(void **state)
{
	(void)state;
	copy_and_check("rsync", NULL);
}

/* rsync missing locally: a PATH holding only ssh and tar forces the tar
 * stream. */
static void test_copy_tar(void **state)
{
	char bin[128];

	(void)state;
	snprintf(bin, sizeof(bin), "%s/bin", fx.dir);
	sh("mkdir -p %s && ln -sf /usr/bin/ssh /usr/bin/tar %s/", bin, bin);
	copy_and_check("tar", bin);
}

static void test_copy_missing_source(void **state)
{
	atex_connection *c = conn_open();

	(void)state;
	assert_int_equal(
		atex_connection_copy_to(c, "/nonexistent-atex", "/tmp/x", NULL),
		ATEX_EINVAL);
	conn_free(c);
}

/* copy_from with PATH set to `path` (NULL: unchanged), as above. */
static int copy_from_with_path(atex_connection *c, const char *src,
			       const char *dst, const char *path)
{
	char *old = strdup(getenv("PATH"));
	int rc;

	if (path)
		setenv("PATH", path, 1);
	rc = atex_connection_copy_from(c, src, dst, NULL);
	setenv("PATH", old, 1);
	free(old);
	return rc;
}

/* Downloads a tree (modes, symlinks, merged) and a file (its mode, then
 * replaced) from the system, which is this machine. */
static void copy_from_and_check(const char *name, const char *path)
{
	char src[256], dst[256], file_src[300], file_dst[300];
	atex_connection *c = conn_open();
	struct stat st;
	char *text = NULL;
	size_t len;

	snprintf(src, sizeof(src), "%s/%s-from-src", fx.dir, name);
	snprintf(dst, sizeof(dst), "%s/%s from dst/a/b", fx.dir, name);
	make_tree(src);
	if (copy_from_with_path(c, src, dst, path))
		fail_msg("copy_from: %s", atex_error_last());
	check_tree(dst);
	sh("printf z > '%s/plain' && chmod 0604 '%s/plain' && "
	   "printf k > '%s/kept'",
	   src, src, dst);
	assert_int_equal(copy_from_with_path(c, src, dst, path), 0);
	snprintf(file_dst, sizeof(file_dst), "%s/plain", dst);
	assert_int_equal(stat(file_dst, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0604);
	snprintf(file_dst, sizeof(file_dst), "%s/kept", dst);
	assert_int_equal(stat(file_dst, &st), 0);

	/* A file: into a new directory, its mode kept; then replaced. */
	snprintf(file_src, sizeof(file_src), "%s/sub dir/secret", src);
	snprintf(file_dst, sizeof(file_dst), "%s/%s file/got it", fx.dir, name);
	if (copy_from_with_path(c, file_src, file_dst, path))
		fail_msg("copy_from a file: %s", atex_error_last());
	assert_int_equal(stat(file_dst, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(atex_file_read(&text, &len, file_dst), 0);
	assert_string_equal(text, "y");
	free(text);
	sh("printf 'second' > '%s'", file_src);
	assert_int_equal(copy_from_with_path(c, file_src, file_dst, path), 0);
	assert_int_equal(atex_file_read(&text, &len, file_dst), 0);
	assert_string_equal(text, "second");
	free(text);
	/* A top-level symlink to a file is followed. */
	snprintf(file_src, sizeof(file_src), "%s/link", src);
	assert_int_equal(copy_from_with_path(c, file_src, file_dst, path), 0);
	assert_int_equal(lstat(file_dst, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	conn_free(c);
}

static void test_copy_from_rsync(void **state)
{
	(void)state;
	copy_from_and_check("rsync", NULL);
}

/* rsync missing locally: a tree comes as a tar stream, a file by cat. */
static void test_copy_from_tar(void **state)
{
	char bin[128];

	(void)state;
	snprintf(bin, sizeof(bin), "%s/bin", fx.dir);
	sh("mkdir -p %s && ln -sf /usr/bin/ssh /usr/bin/tar %s/", bin, bin);
	copy_from_and_check("tar", bin);
}

static void test_copy_from_errors(void **state)
{
	atex_connection *c = conn_open();
	char dir[128], file[160];

	(void)state;
	assert_int_equal(atex_connection_copy_from(c, "/nonexistent-atex",
						   "/tmp/x", NULL),
			 ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "/nonexistent-atex"));
	/* A file does not replace a directory. */
	snprintf(dir, sizeof(dir), "%s/from-errors", fx.dir);
	snprintf(file, sizeof(file), "%s/f", dir);
	sh("mkdir -p '%s' && printf x > '%s'", dir, file);
	assert_int_equal(atex_connection_copy_from(c, file, dir, NULL),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "is a directory"));
	/* The system can reboot; its boot id is the kernel's. */
	assert_true(atex_connection_can_reboot(c));
	{
		char *id = NULL, *mine = NULL;
		size_t len;

		assert_int_equal(atex_connection_boot_id(&id, c, 10000, NULL),
				 0);
		assert_int_equal(atex_file_read(&mine, &len,
						"/proc/sys/kernel/random/"
						"boot_id"),
				 0);
		mine[strcspn(mine, "\n")] = '\0';
		assert_string_equal(id, mine);
		free(id);
		free(mine);
	}
	conn_free(c);
	/* Not connected: the channel's error. */
	c = conn_new_port(fx.port, NULL);
	assert_int_equal(atex_connection_copy_from(c, file, "/tmp/x", NULL),
			 ATEX_EIO);
	atex_connection_free(c);
}

/* ------------------------------------------------------------------------
 * Connection failures.
 */

static void test_closed_port(void **state)
{
	int port = free_port();
	atex_connection *c = conn_new_port(port, NULL);
	char where[64];
	double t0 = atex_monotonic_ms();
	int rc;

	(void)state;
	rc = atex_connection_connect(c, 5000, NULL);
	assert_int_equal(rc, ATEX_EIO);
	assert_true(atex_monotonic_ms() - t0 < 5000);
	snprintf(where, sizeof(where), "root@" HOST ":%d", port);
	assert_non_null(strstr(atex_error_last(), where));
	assert_non_null(strstr(atex_error_last(), "refused"));
	/* Not connected: commands fail as connection errors. */
	{
		const char *argv[] = {"true", NULL};
		struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
		atex_process *p = NULL;

		o.argv = argv;
		assert_int_equal(atex_connection_spawn(&p, c, &o), ATEX_EIO);
		assert_null(p);
	}
	conn_free(c);
}

/* A server that accepts TCP but never speaks: the timeout applies. */
static void test_connect_timeout(void **state)
{
	int port, fd = silent_server(&port);
	atex_connection *c = conn_new_port(port, NULL);
	double t0 = atex_monotonic_ms(), took;

	(void)state;
	assert_int_equal(atex_connection_connect(c, 700, NULL), ATEX_ETIMEDOUT);
	took = atex_monotonic_ms() - t0;
	assert_true(took >= 650 && took < 3000);
	assert_non_null(strstr(atex_error_last(), HOST));
	close(fd);
	conn_free(c);
}

static void test_wrong_key(void **state)
{
	atex_connection *c = conn_new_port(0, fx.bad_key);

	(void)state;
	assert_int_equal(atex_connection_connect(c, 10000, NULL), ATEX_EIO);
	assert_non_null(strstr(atex_error_last(), "Permission denied"));
	assert_non_null(strstr(atex_error_last(), "root@" HOST));
	conn_free(c);
}

/* ------------------------------------------------------------------------
 * Host keys: pinned per connection by default, the user's known_hosts in
 * strict mode. These tests pass no StrictHostKeyChecking or
 * UserKnownHostsFile option of their own.
 */

/* Another sshd of ours on `port` with the host key `key`, for a system
 * that is reprovisioned (same address, new key). */
static atex_process *sshd_with_key(int port, const char *key)
{
	const char *argv[] = {SSHD, "-D", "-f", NULL, "-E", NULL, NULL};
	char config[160], log[160];
	atex_process *p = NULL;
	double deadline = atex_monotonic_ms() + 10000;
	FILE *f;

	snprintf(config, sizeof(config), "%s/sshd_config_%d", fx.dir, port);
	snprintf(log, sizeof(log), "%s/sshd_%d.log", fx.dir, port);
	f = fopen(config, "w");
	assert_non_null(f);
	fprintf(f,
		"ListenAddress " HOST "\nPort %d\nHostKey %s\n"
		"AuthorizedKeysFile %s.pub\nPidFile none\nUsePAM no\n"
		"StrictModes no\nPermitRootLogin yes\n"
		"PasswordAuthentication no\n",
		port, key, fx.key);
	fclose(f);
	argv[3] = config;
	argv[5] = log;
	assert_int_equal(atex_process_spawn(&p, argv, NULL, NULL,
					    ATEX_STDIO_NULL, ATEX_STDIO_INHERIT,
					    ATEX_STDIO_INHERIT),
			 0);
	while (!port_accepts(port)) {
		if (atex_monotonic_ms() > deadline ||
		    atex_process_wait(NULL, p, 10, NULL) == 0)
			fail_msg("sshd on port %d did not start", port);
	}
	return p;
}

static void sshd_end(atex_process *p)
{
	atex_process_kill(p, SIGTERM);
	atex_process_wait(NULL, p, 5000, NULL);
	atex_process_free(p);
}

/* The user's own known_hosts (ssh finds it through the password
 * database, not $HOME), whole, or "" when there is none. */
static char *user_known_hosts(void)
{
	char path[512], *text = NULL;
	size_t len;
	struct passwd *pw = getpwuid(getuid());
	const char *home = pw ? pw->pw_dir : "/";

	snprintf(path, sizeof(path), "%s/.ssh/known_hosts", home);
	if (atex_file_read(&text, &len, path) < 0)
		text = atex_strdup("");
	return text;
}

static atex_connection *conn_pinning(int port, bool strict,
				     const char *const *options)
{
	struct atex_ssh_options o = ATEX_SSH_OPTIONS_INIT;
	atex_connection *c = NULL;

	o.host = HOST;
	o.port = port;
	o.user = "root";
	o.identity = fx.key;
	o.options = options;
	o.connect_timeout_s = 5;
	o.strict_host_keys = strict;
	assert_int_equal(atex_ssh_connection_new(&c, &o), 0);
	return c;
}

/* A system in nobody's known_hosts is accepted at the first connect, its
 * key pinned; a reconnect of the same connection (after a reboot) to a
 * system showing another key is refused; a new connection pins anew. The
 * user's known_hosts is neither needed nor touched. */
static void test_host_key_pinned(void **state)
{
	const char *echo[] = {"echo", "up", NULL};
	struct atex_run_result r = {0};
	char key1[160], key2[160];
	int port = free_port();
	char *before = user_known_hosts(), *after;
	atex_process *sshd;
	atex_connection *c, *c2;

	(void)state;
	snprintf(key1, sizeof(key1), "%s/pin_key1", fx.dir);
	snprintf(key2, sizeof(key2), "%s/pin_key2", fx.dir);
	sh("ssh-keygen -q -t ed25519 -N '' -f %s", key1);
	sh("ssh-keygen -q -t ed25519 -N '' -f %s", key2);
	sshd = sshd_with_key(port, key1);
	c = conn_pinning(port, false, NULL);
	if (atex_connection_connect(c, 10000, NULL))
		fail_msg("first connect: %s", atex_error_last());
	assert_int_equal(run(c, &r, echo, NULL, 0), 0);
	assert_string_equal(r.out, "up\n");
	atex_run_result_clear(&r);

	/* A reboot: the same key again is fine. */
	atex_connection_disconnect(c);
	sshd_end(sshd);
	sshd = sshd_with_key(port, key1);
	if (atex_connection_connect(c, 10000, NULL))
		fail_msg("reconnect, same key: %s", atex_error_last());
	atex_connection_disconnect(c);
	sshd_end(sshd);

	/* Another system at the address: refused. */
	sshd = sshd_with_key(port, key2);
	assert_int_equal(atex_connection_connect(c, 10000, NULL), ATEX_EIO);
	assert_non_null(strstr(atex_error_last(), "host key changed since the "
						  "first connect pinned it"));
	assert_false(atex_ssh_connection_alive(c));

	/* A new connection (a reprovisioned system) pins the new key. */
	c2 = conn_pinning(port, false, NULL);
	if (atex_connection_connect(c2, 10000, NULL))
		fail_msg("new connection: %s", atex_error_last());
	assert_int_equal(run(c2, &r, echo, NULL, 0), 0);
	atex_run_result_clear(&r);
	conn_free(c2);
	conn_free(c);
	sshd_end(sshd);
	after = user_known_hosts();
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* Strict mode checks the user's known_hosts (here an option pointing at
 * a file of ours): an unknown host is refused, a known one accepted. */
static void test_host_key_strict(void **state)
{
	char known[160], opt[200];
	const char *options[] = {opt, NULL};
	atex_connection *c;

	(void)state;
	snprintf(known, sizeof(known), "%s/strict_known_hosts", fx.dir);
	snprintf(opt, sizeof(opt), "UserKnownHostsFile=%s", known);
	sh(": >%s", known);
	c = conn_pinning(fx.port, true, options);
	assert_int_equal(atex_connection_connect(c, 10000, NULL), ATEX_EIO);
	assert_non_null(strstr(atex_error_last(), "host key is known"));
	conn_free(c);

	sh("printf '[%s]:%d ' >%s && cat %s/host_key.pub >>%s", HOST, fx.port,
	   known, fx.dir, known);
	c = conn_pinning(fx.port, true, options);
	if (atex_connection_connect(c, 10000, NULL))
		fail_msg("strict, known: %s", atex_error_last());
	conn_free(c);
}

/* ------------------------------------------------------------------------
 * Concurrency, dropped connections, cancellation.
 */

struct worker {
	atex_connection *c;
	int index;
	int rc;
	bool ok;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	char index[16], want[32];
	const char *argv[] = {"sh", "-c", "sleep 0.3; echo $0", index, NULL};
	struct atex_run_result r = {0};

	snprintf(index, sizeof(index), "%d", w->index);
	snprintf(want, sizeof(want), "%d\n", w->index);
	w->rc = atex_connection_run(&r, w->c, argv, NULL, 0, 60000, NULL);
	w->ok = !w->rc && WIFEXITED(r.status) && !WEXITSTATUS(r.status) &&
		!strcmp(r.out, want);
	if (!w->ok)
		fprintf(stderr,
			"worker %d: rc %d status %d out '%s' err '%s'\n",
			w->index, w->rc, r.status, r.out ? r.out : "",
			r.err ? r.err : "");
	atex_run_result_clear(&r);
	return NULL;
}

/* 32 commands at once on one connection, past the server's default
 * MaxSessions of 10: the connection spreads them over more masters. */
#define CONCURRENT 32

static void test_concurrent(void **state)
{
	struct worker w[CONCURRENT];
	pthread_t t[CONCURRENT];
	atex_connection *c = conn_open();
	double t0 = atex_monotonic_ms();

	(void)state;
	for (int i = 0; i < CONCURRENT; i++) {
		w[i] = (struct worker){.c = c, .index = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]),
				 0);
	}
	for (int i = 0; i < CONCURRENT; i++)
		pthread_join(t[i], NULL);
	print_message("%d concurrent 0.3 s commands: %.0f ms\n", CONCURRENT,
		      atex_monotonic_ms() - t0);
	for (int i = 0; i < CONCURRENT; i++)
		assert_true(w[i].ok);
	conn_free(c);
}

/* Starts `sleep 60` on c. */
static atex_process *start_sleep(atex_connection *c)
{
	const char *argv[] = {"sleep", "60", NULL};
	struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
	atex_process *p = NULL;

	o.argv = argv;
	assert_int_equal(atex_connection_spawn(&p, c, &o), 0);
	return p;
}

/* The command ends with 255 and the connection reports itself dead;
 * connect() brings it back. */
static void expect_drop_then_reconnect(atex_connection *c, atex_process *p)
{
	const char *argv[] = {"echo", "back", NULL};
	struct atex_run_result r = {0};
	int status;

	assert_int_equal(atex_process_wait(&status, p, 20000, NULL), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 255);
	assert_false(atex_ssh_connection_alive(c));
	assert_int_equal(atex_connection_connect(c, 10000, NULL), 0);
	assert_true(atex_ssh_connection_alive(c));
	assert_int_equal(run(c, &r, argv, NULL, 0), 0);
	assert_string_equal(r.out, "back\n");
	atex_run_result_clear(&r);
}

static void test_master_killed(void **state)
{
	atex_connection *c = conn_open();
	atex_process *p = start_sleep(c);
	char needle[160];
	pid_t pids[4];

	(void)state;
	/* Our master: the ssh with -M whose socket is under our TMPDIR. */
	snprintf(needle, sizeof(needle), "-M -N -T -S %s/", fx.tmpdir);
	assert_int_equal(pids_of(pids, 4, needle), 1);
	kill(pids[0], SIGKILL);
	expect_drop_then_reconnect(c, p);
	atex_process_free(p);
	conn_free(c);
}

/* The server side of the connection dies (sshd's session process, as in
 * a reboot): the master notices and so does the running command. */
static void test_server_session_killed(void **state)
{
	atex_connection *c = conn_open();
	atex_process *p = start_sleep(c);
	pid_t pids[16];
	size_t n, killed = 0;

	(void)state;
	/* Our sshd's per-connection processes are its children. */
	n = pids_of(pids, 16, "sshd: root");
	for (size_t i = 0; i < n; i++) {
		if (parent_of(pids[i]) != atex_process_pid(fx.sshd))
			continue;
		kill(pids[i], SIGKILL);
		killed++;
	}
	assert_true(killed >= 1);
	expect_drop_then_reconnect(c, p);
	atex_process_free(p);
	conn_free(c);
}

struct firing {
	atex_cancel *cancel;
	int delay_ms;
};

static void *fire_later(void *arg)
{
	struct firing *f = arg;

	poll(NULL, 0, f->delay_ms);
	atex_cancel_fire(f->cancel);
	return NULL;
}

static void test_cancel_command(void **state)
{
	atex_connection *c = conn_open();
	atex_process *p = start_sleep(c);
	struct firing f = {.delay_ms = 200};
	double t0 = atex_monotonic_ms();
	pthread_t t;
	int status;

	(void)state;
	assert_int_equal(atex_cancel_new(&f.cancel), 0);
	pthread_create(&t, NULL, fire_later, &f);
	assert_int_equal(atex_process_wait(&status, p, -1, f.cancel),
			 ATEX_ECANCELED);
	assert_true(atex_monotonic_ms() - t0 < 1500);
	/* Killing the client ends the channel; the master lives on. */
	atex_process_free(p);
	pthread_join(t, NULL);
	assert_true(atex_ssh_connection_alive(c));
	atex_cancel_free(f.cancel);
	conn_free(c);
}

static void test_cancel_connect(void **state)
{
	int port, fd = silent_server(&port);
	atex_connection *c = conn_new_port(port, NULL);
	struct firing f = {.delay_ms = 200};
	double t0 = atex_monotonic_ms();
	pthread_t t;

	(void)state;
	assert_int_equal(atex_cancel_new(&f.cancel), 0);
	pthread_create(&t, NULL, fire_later, &f);
	assert_int_equal(atex_connection_connect(c, -1, f.cancel),
			 ATEX_ECANCELED);
	assert_true(atex_monotonic_ms() - t0 < 1500);
	pthread_join(t, NULL);
	atex_cancel_free(f.cancel);
	close(fd);
	conn_free(c);
}

/* connect twice is one master; disconnect twice is harmless. */
static void test_idempotent(void **state)
{
	atex_connection *c = conn_open();

	(void)state;
	assert_int_equal(atex_connection_connect(c, 10000, NULL), 0);
	assert_int_equal(atex_connection_disconnect(c), 0);
	assert_false(atex_ssh_connection_alive(c));
	assert_clean();
	assert_int_equal(atex_connection_disconnect(c), 0);
	assert_int_equal(atex_connection_connect(c, 10000, NULL), 0);
	conn_free(c);
}

/* Figures for bench/README.md: a multiplexed `true` against a fresh
 * connection. Printed, not asserted (machines differ). */
static void test_latency(void **state)
{
	const char *argv[] = {"true", NULL};
	struct atex_run_result r = {0};
	atex_connection *c;
	double t0 = atex_monotonic_ms(), fresh, mux;

	(void)state;
	c = conn_open();
	fresh = atex_monotonic_ms() - t0;
	t0 = atex_monotonic_ms();
	for (int i = 0; i < 10; i++) {
		assert_int_equal(run(c, &r, argv, NULL, 0), 0);
		atex_run_result_clear(&r);
	}
	mux = (atex_monotonic_ms() - t0) / 10;
	print_message("connect (handshake): %.1f ms, multiplexed true: "
		      "%.1f ms\n",
		      fresh, mux);
	conn_free(c);
}

/* Waits up to `ms` for process_mentions(needle) to become `want`. */
static bool mentions_within(const char *needle, bool want, int ms)
{
	double end = atex_monotonic_ms() + ms;

	while (process_mentions(needle) != want) {
		if (atex_monotonic_ms() > end)
			return false;
		usleep(20000);
	}
	return true;
}

/* Killing the client also stops the command on the system, children
 * included, even when the connection goes down right after (as Ctrl-C on
 * `atex exec` does): sshd itself leaves a command without a terminal
 * running when its connection drops. The server is local, so its
 * processes can be seen here. */
static void test_kill_reaches_remote(void **state)
{
	/* The numbers are computed remotely, so only the remote processes
	 * (not our ssh client's command line) show "sleep 4242.5". */
	const char *argv[] = {
		"sh", "-c", "n=4242; sleep $((n+1)).5 & exec sleep $n.5", NULL};
	struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
	atex_connection *c = conn_open();
	atex_process *p = NULL;
	int status;

	(void)state;
	o.argv = argv;
	o.stdout_fd = o.stderr_fd = ATEX_STDIO_NULL;
	assert_int_equal(atex_connection_spawn(&p, c, &o), 0);
	assert_true(mentions_within("sleep 4242.5", true, 10000));
	assert_true(mentions_within("sleep 4243.5", true, 10000));
	assert_int_equal(atex_process_kill(p, SIGTERM), 0);
	assert_int_equal(atex_connection_disconnect(c), 0);
	assert_int_equal(atex_process_wait(&status, p, 10000, NULL), 0);
	assert_true(mentions_within("sleep 4242.5", false, 5000));
	assert_true(mentions_within("sleep 4243.5", false, 5000));
	atex_process_free(p);
	conn_free(c);
}

/* A command whose environment has a value ending in a byte that is not
 * UTF-8 just before ATEX_RUN_ID is still found and killed: the killing
 * script reads environments as bytes (in the session's UTF-8 locale bash
 * took that byte and the NUL after it as one character, hiding the id). */
static void test_kill_latin1_environment(void **state)
{
	/* A number of this run's own: a sleep some earlier run left must
	 * not count. */
	int n = 5000 + (int)(getpid() % 4000);
	char script[256], needle[32];
	const char *argv[] = {"sh", "-c", script, NULL};
	struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
	atex_connection *c = conn_open();
	atex_process *p = NULL;
	int status;

	(void)state;
	snprintf(script, sizeof(script),
		 "a=$(printf 'caf\\351'); n=%d; "
		 "exec env -i A=\"$a\" ATEX_RUN_ID=\"$ATEX_RUN_ID\" "
		 "sleep $n.5",
		 n);
	snprintf(needle, sizeof(needle), "sleep %d.5", n);
	o.argv = argv;
	o.stdout_fd = o.stderr_fd = ATEX_STDIO_NULL;
	assert_int_equal(atex_connection_spawn(&p, c, &o), 0);
	assert_true(mentions_within(needle, true, 10000));
	assert_int_equal(atex_process_kill(p, SIGTERM), 0);
	assert_int_equal(atex_process_wait(&status, p, 10000, NULL), 0);
	assert_true(mentions_within(needle, false, 5000));
	atex_process_free(p);
	conn_free(c);
}

/* ------------------------------------------------------------------------
 * The static provisioner against the real server.
 */

static atex_provisioner *static_new(const char *const *hosts)
{
	struct atex_ssh_options base = ATEX_SSH_OPTIONS_INIT;
	atex_provisioner *p = NULL;

	base.identity = fx.key;
	base.options = client_options;
	base.connect_timeout_s = 5;
	if (atex_static_provisioner_new(&p, hosts, &base) < 0)
		fail_msg("static provisioner: %s", atex_error_last());
	assert_int_equal(atex_provisioner_start(p), 0);
	return p;
}

/* A pool of our sshd and a dead port: the live host is handed out, runs
 * commands, comes back on release, and nothing is left after stop. */
static void test_static_pool(void **state)
{
	char good[64], dead[64], want[32];
	const char *hosts[] = {good, dead, NULL};
	const char *const echo[] = {"echo", "pooled", NULL};
	struct atex_run_result r = {0};
	atex_provisioner *p;
	atex_remote *remote = NULL;

	(void)state;
	snprintf(good, sizeof(good), "root@" HOST ":%d", fx.port);
	snprintf(dead, sizeof(dead), "root@" HOST ":%d", free_port());
	snprintf(want, sizeof(want), ":%d", fx.port);
	p = static_new(hosts);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(atex_provisioner_provision(p, 1), 0);
		if (atex_provisioner_get_remote(&remote, p, 30000) < 0)
			fail_msg("get_remote: %s", atex_error_last());
		assert_non_null(strstr(atex_remote_name(remote), want));
		assert_int_equal(
			atex_connection_run(&r, atex_remote_connection(remote),
					    echo, NULL, 0, 30000, NULL),
			0);
		assert_true(WIFEXITED(r.status) && !WEXITSTATUS(r.status));
		assert_string_equal(r.out, "pooled\n");
		atex_run_result_clear(&r);
		atex_remote_release(remote);
	}
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	assert_clean();
}

struct aborter {
	atex_provisioner *p;
	int delay_ms;
};

static void *abort_later(void *arg)
{
	struct aborter *a = arg;

	usleep((useconds_t)a->delay_ms * 1000);
	atex_provisioner_abort(a->p);
	return NULL;
}

/* A host that accepts but never answers: abort from another thread ends
 * the wait (and the connect behind it) promptly. */
static void test_static_abort(void **state)
{
	int port, fd = silent_server(&port);
	char hang[64];
	const char *hosts[] = {hang, NULL};
	struct aborter a = {.delay_ms = 300};
	atex_remote *remote = NULL;
	double t0;
	pthread_t t;

	(void)state;
	snprintf(hang, sizeof(hang), "root@" HOST ":%d", port);
	a.p = static_new(hosts);
	assert_int_equal(atex_provisioner_provision(a.p, 1), 0);
	t0 = atex_monotonic_ms();
	pthread_create(&t, NULL, abort_later, &a);
	assert_int_equal(atex_provisioner_get_remote(&remote, a.p, 20000),
			 ATEX_ECANCELED);
	assert_true(atex_monotonic_ms() - t0 < 1300);
	pthread_join(t, NULL);
	atex_provisioner_stop(a.p);
	atex_provisioner_free(a.p);
	close(fd);
	assert_clean();
}

/* The only atex-ssh-* directory under our TMPDIR, or "" (none, or more). */
static void only_dir(char *out, size_t size)
{
	DIR *d = opendir(fx.tmpdir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	out[0] = '\0';
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "atex-ssh-", 9) && n++ == 0)
			snprintf(out, size, "%s/%s", fx.tmpdir, e->d_name);
	closedir(d);
	if (n != 1)
		out[0] = '\0';
}

/* A child that connects and then waits for SIGKILL: an atex killed with
 * its master running. */
static pid_t connected_child(void)
{
	int ready[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		atex_connection *conn = conn_new_port(0, NULL);

		if (atex_connection_connect(conn, 10000, NULL) ||
		    write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

/* A child holding flock on `path` until `*release` is closed. */
static pid_t lock_holder(const char *path, int *release)
{
	int ready[2], hold[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_RDONLY);

		close(hold[1]);
		if (fd < 0 || flock(fd, LOCK_EX) < 0 ||
		    write(ready[1], "x", 1) != 1)
			_exit(1);
		while (read(hold[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release = hold[1];
	return pid;
}

/* The user's options come before libatex's defaults (ssh keeps the first
 * value it sees), on the master and on a caller's client (command_argv),
 * so that they win: a longer keepalive, a TTY (RequestTTY, no -T there). */
static void test_user_options_win(void **state)
{
	const char *opts[] = {
		"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null",
		"ServerAliveInterval=17", "RequestTTY=force", NULL};
	const char *argv[] = {"true", NULL};
	struct atex_ssh_options o = ATEX_SSH_OPTIONS_INIT;
	struct atex_spawn_options so = ATEX_SPAWN_OPTIONS_INIT;
	atex_connection *c = NULL;
	char **out = NULL;
	int user = -1, ours = -1, tty_flag = -1;

	(void)state;
	o.host = HOST;
	o.port = fx.port;
	o.user = "root";
	o.identity = fx.key;
	o.options = opts;
	assert_int_equal(atex_ssh_connection_new(&c, &o), 0);
	assert_int_equal(atex_connection_connect(c, 10000, NULL), 0);
	assert_true(process_mentions("-o ServerAliveInterval=17 -o "
				     "RequestTTY=force -o BatchMode=yes"));
	so.argv = argv;
	assert_int_equal(atex_connection_command_argv(&out, c, &so), 0);
	for (int i = 0; out[i]; i++) {
		if (!strcmp(out[i], "RequestTTY=force"))
			user = i;
		else if (!strcmp(out[i], "RequestTTY=no"))
			ours = i;
		else if (!strcmp(out[i], "-T"))
			tty_flag = i;
	}
	assert_true(user > 0 && ours > user);
	assert_int_equal(tty_flag, -1);
	atex_command_argv_free(out);
	conn_free(c);
}

/* A SIGKILLed atex leaves its private directory and its master: the next
 * connection made stops that master and removes the directory (its lock
 * is free), but leaves one whose lock is held by a live process. */
static void test_orphan_swept(void **state)
{
	char orphan[400], held[256], path[420];
	atex_connection *c;
	int release, status;
	pid_t pid, holder;

	(void)state;
	pid = connected_child();
	only_dir(orphan, sizeof(orphan));
	assert_string_not_equal(orphan, "");
	snprintf(path, sizeof(path), "%s/lock", orphan);
	assert_int_equal(access(path, F_OK), 0);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(process_mentions(orphan)); /* its master runs on */

	snprintf(held, sizeof(held), "%s/atex-ssh-held01", fx.tmpdir);
	sh("mkdir %s && touch %s/lock %s/known_hosts", held, held, held);
	snprintf(path, sizeof(path), "%s/lock", held);
	holder = lock_holder(path, &release);

	c = conn_open();
	assert_false(atex_path_exists(orphan));
	assert_false(process_mentions(orphan));
	assert_true(atex_path_exists(path));
	atex_connection_free(c);

	close(release);
	assert_int_equal(waitpid(holder, &status, 0), holder);
	sh("rm -r %s", held);
	assert_clean();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_binary_roundtrip),
		cmocka_unit_test(test_stderr_separate),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_cwd_env),
		cmocka_unit_test(test_copy_rsync),
		cmocka_unit_test(test_copy_tar),
		cmocka_unit_test(test_copy_missing_source),
		cmocka_unit_test(test_copy_from_rsync),
		cmocka_unit_test(test_copy_from_tar),
		cmocka_unit_test(test_copy_from_errors),
		cmocka_unit_test(test_closed_port),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_host_key_pinned),
		cmocka_unit_test(test_host_key_strict),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_master_killed),
		cmocka_unit_test(test_server_session_killed),
		cmocka_unit_test(test_cancel_command),
		cmocka_unit_test(test_cancel_connect),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_latency),
		cmocka_unit_test(test_kill_reaches_remote),
		cmocka_unit_test(test_kill_latin1_environment),
		cmocka_unit_test(test_static_pool),
		cmocka_unit_test(test_static_abort),
		cmocka_unit_test(test_orphan_swept),
		cmocka_unit_test(test_user_options_win),
	};

	/* A missing server is a failure, not a skip: make check must not
	 * pass without having tested ssh. */
	if (geteuid() != 0 || access(SSHD, X_OK) != 0 ||
	    access("/usr/bin/rsync", X_OK) != 0) {
		fprintf(stderr, "FAILED: the ssh suite needs root, " SSHD
				" and rsync (scripts/install-deps.sh)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, sshd_start, sshd_stop);
}
