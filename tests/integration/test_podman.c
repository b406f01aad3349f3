/*
 * test_podman.c - the podman connection and provisioner against real
 * containers.
 *
 * The group setup builds (or finds cached) the test image with
 * podman-image.sh and starts one long-lived container for the connection
 * tests; the provisioner tests make their own. Every container this run
 * makes carries the label atex-test=PID, so the tests can count exactly
 * their own containers and prove that release, stop and abort leave none.
 *
 * podman's arguments for this machine go through the library's options,
 * as a user would pass them: the library itself hard-codes none. Raising a
 * resource limit is not permitted here (podman's default nofile of 1048576
 * makes runc fail with EPERM), so containers get limits at or below the
 * current ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "atex/connection.h"
#include "atex/provisioner.h"
#include "util/util.h"

#define IMAGE "atex-test-minbase"
/* The same with systemd as /sbin/init (podman-image.sh --systemd). */
#define SYSTEMD_IMAGE "atex-test-systemd"

/* Global podman arguments this machine needs: runc (the only runtime
 * installed) and cgroupfs (no systemd to manage cgroups). */
static const char *const podman_args[] = {"--runtime", "runc",
					  "--cgroup-manager", "cgroupfs", NULL};

/* `podman run` arguments, filled in by the group setup. */
static char label[64];
static char ulimit_nofile[64];
static char ulimit_nproc[64];
/* clang-format off */
static const char *run_args[] = {
	"--network", "none",
	"--label", label,
	"--ulimit", ulimit_nofile,
	"--ulimit", ulimit_nproc,
	NULL,
};
/* clang-format on */

/* The container of the connection tests. */
static char conn_container[64];

static char podman_cmd[512]; /* "podman ARGS" for system() */

/* ------------------------------------------------------------------------
 * Helpers.
 */

/* How many containers of this test run exist, running or not. */
static int count_containers(void)
{
	char cmd[1024], line[256];
	int n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s ps -a -q --filter label=%s", podman_cmd,
		 label);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n++;
	assert_int_equal(pclose(f), 0);
	return n;
}

/* Containers the runtime (runc, as the tests run podman) has and podman
 * does not know: what a `podman run` killed halfway leaves, invisible to
 * count_containers. Waits up to 20 s for them to be gone (a container
 * being removed by anyone on the machine is briefly one too, longer on a
 * busy machine; a real orphan stays forever); returns how many are left. */
static int runtime_orphans(void)
{
	char cmd[2048], line[256];
	double end = atex_monotonic_ms() + 20000;
	int n;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "bash -c 'comm -23 <(runc list -q | sort) "
		 "<(%s ps -a -q --no-trunc | sort)'",
		 podman_cmd);
	for (;;) {
		n = 0;
		f = popen(cmd, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f))
			n++;
		assert_int_equal(pclose(f), 0);
		if (n == 0 || atex_monotonic_ms() > end)
			return n;
		usleep(200 * 1000);
	}
}

/* Waits (test code may poll) until `want` containers exist. */
static void wait_containers(int want, int timeout_ms)
{
	double end = atex_monotonic_ms() + timeout_ms;

	while (count_containers() < want) {
		if (atex_monotonic_ms() > end)
			fail_msg("%d containers did not appear", want);
		usleep(100 * 1000);
	}
}

static atex_connection *conn_new(const char *container)
{
	struct atex_podman_options opts = ATEX_PODMAN_OPTIONS_INIT;
	atex_connection *c = NULL;

	opts.container = container;
	opts.podman_args = podman_args;
	assert_int_equal(atex_podman_connection_new(&c, &opts), 0);
	return c;
}

/* Runs argv in the container and returns its output; checks the exit
 * status. */
static char *run_ok(atex_connection *c, const char *const *argv, int want_exit)
{
	struct atex_run_result r = {0};
	char *out;
	int rc;

	rc = atex_connection_run(&r, c, argv, NULL, 0, 60000, NULL);
	if (rc < 0)
		fail_msg("run %s: %s", argv[0], atex_error_last());
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != want_exit)
		fail_msg("run %s: status %d, stderr: %s", argv[0], r.status,
			 r.err);
	out = r.out;
	r.out = NULL;
	atex_run_result_clear(&r);
	return out;
}

static atex_provisioner *prov_new(int count, const char *program)
{
	struct atex_podman_provisioner_options opts =
		ATEX_PODMAN_PROVISIONER_OPTIONS_INIT;
	atex_provisioner *p = NULL;

	opts.image = IMAGE;
	opts.count = count;
	opts.podman_args = podman_args;
	opts.run_args = run_args;
	opts.podman_program = program;
	assert_int_equal(atex_podman_provisioner_new(&p, &opts), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	return p;
}

static atex_remote *get_remote_ok(atex_provisioner *p)
{
	atex_remote *r = NULL;
	int rc;

	rc = atex_provisioner_get_remote(&r, p, 120000);
	if (rc < 0)
		fail_msg("get_remote: %s", atex_error_last());
	assert_non_null(r);
	return r;
}

/* ------------------------------------------------------------------------
 * Setup: the image, and one container for the connection tests.
 */

/* The directory of this source file. meson compiles with paths relative
 * to the build root, which is the parent of this executable's directory. */
static void source_dir(char *dir, size_t size)
{
	char exe[PATH_MAX - 64] = "";
	char *slash;
	ssize_t n;

	if (__FILE__[0] != '/') {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		for (int i = 0; i < 2; i++) {
			slash = strrchr(exe, '/');
			if (slash)
				*slash = '\0';
		}
	}
	snprintf(dir, size, "%s%s%s", exe, *exe ? "/" : "", __FILE__);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
}

/* The image script: next to the conformance data in the source tree
 * (the test environment names that), or next to this file. */
static int image_script(char *path, size_t size)
{
	const char *conf = getenv("ATEX_CONFORMANCE");
	char dir[PATH_MAX - 32];

	if (conf)
		snprintf(path, size, "%s/../integration/podman-image.sh", conf);
	if (conf && access(path, X_OK) == 0)
		return 0;
	source_dir(dir, sizeof(dir));
	snprintf(path, size, "%s/podman-image.sh", dir);
	return access(path, X_OK);
}

/* Limits at or below ours: a container may not raise them here. */
static void set_ulimit(char *buf, size_t size, const char *what, int res)
{
	struct rlimit rl;
	rlim_t v = 4096;

	if (getrlimit(res, &rl) == 0 && rl.rlim_cur < v)
		v = rl.rlim_cur;
	snprintf(buf, size, "%s=%llu:%llu", what, (unsigned long long)v,
		 (unsigned long long)v);
}

static int group_setup(void **state)
{
	char script[PATH_MAX], cmd[3 * PATH_MAX];
	const char *const *a;
	int n = 0;

	(void)state;
	n = snprintf(podman_cmd, sizeof(podman_cmd), "podman");
	for (a = podman_args; *a; a++)
		n += snprintf(podman_cmd + n, sizeof(podman_cmd) - n, " %s",
			      *a);
	snprintf(label, sizeof(label), "atex-test=%ld", (long)getpid());
	set_ulimit(ulimit_nofile, sizeof(ulimit_nofile), "nofile",
		   RLIMIT_NOFILE);
	set_ulimit(ulimit_nproc, sizeof(ulimit_nproc), "nproc", RLIMIT_NPROC);

	if (image_script(script, sizeof(script)) != 0) {
		fprintf(stderr, "podman tests: cannot find podman-image.sh "
				"(set ATEX_CONFORMANCE to the source tree's "
				"tests/conformance)\n");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "%s %s && %s --systemd %s", script,
		 podman_cmd + 6, script, podman_cmd + 6);
	if (system(cmd) != 0) {
		fprintf(stderr,
			"podman tests: %s failed: podman cannot "
			"provide the test image on this machine\n",
			cmd);
		return -1;
	}
	snprintf(conn_container, sizeof(conn_container), "atex-test-conn-%ld",
		 (long)getpid());
	snprintf(cmd, sizeof(cmd),
		 "%s run -d --rm --network none --label %s --ulimit %s "
		 "--ulimit %s --name %s %s sleep infinity >/dev/null",
		 podman_cmd, label, ulimit_nofile, ulimit_nproc, conn_container,
		 IMAGE);
	if (system(cmd) != 0) {
		fprintf(stderr,
			"podman tests: podman cannot run a container "
			"here: %s\n",
			cmd);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[2048];

	(void)state;
	if (!conn_container[0])
		return 0;
	/* Also whatever a failed test left (its container has our label). */
	snprintf(cmd, sizeof(cmd),
		 "%s rm -f -i -t 0 %s $(%s ps -a -q --filter label=%s) "
		 ">/dev/null",
		 podman_cmd, conn_container, podman_cmd, label);
	return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Connection tests.
 */

static void test_connect(void **state)
{
	atex_connection *c = conn_new(conn_container), *bad;
	char name[128];

	(void)state;
	assert_int_equal(atex_connection_connect(c, 30000, NULL), 0);
	snprintf(name, sizeof(name), "podman:%s", conn_container);
	assert_string_equal(atex_connection_name(c), name);
	atex_connection_free(c);

	bad = conn_new("atex-test-no-such-container");
	assert_int_equal(atex_connection_connect(bad, 30000, NULL), ATEX_EIO);
	assert_non_null(strstr(atex_error_last(),
			       "podman:atex-test-no-such-container"));
	atex_connection_free(bad);
}

static void test_exit_codes(void **state)
{
	atex_connection *c = conn_new(conn_container);

	(void)state;
	free(run_ok(c, (const char *const[]){"true", NULL}, 0));
	free(run_ok(c, (const char *const[]){"false", NULL}, 1));
	free(run_ok(c, (const char *const[]){"sh", "-c", "exit 42", NULL}, 42));
	/* podman's own code for a command that does not exist. */
	free(run_ok(c, (const char *const[]){"atex-no-such-command", NULL},
		    127));
	atex_connection_free(c);
}

/* sha256sum of data, computed by `sha256sum` on connection c. */
static void sha256(char out[65], atex_connection *c, const char *data,
		   size_t len)
{
	const char *const argv[] = {"sha256sum", NULL};
	struct atex_run_result r = {0};

	assert_int_equal(
		atex_connection_run(&r, c, argv, data, len, 60000, NULL), 0);
	assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
	assert_true(r.out_len >= 64);
	memcpy(out, r.out, 64);
	out[64] = '\0';
	atex_run_result_clear(&r);
}

static void test_binary_roundtrip(void **state)
{
	const size_t len = 10 << 20;
	const char *const cat[] = {"cat", NULL};
	atex_connection *c = conn_new(conn_container), *local = NULL;
	struct atex_run_result r = {0};
	char here[65], there[65];
	char *data = malloc(len);
	size_t i;

	(void)state;
	assert_non_null(data);
	srand(42);
	for (i = 0; i < len; i++)
		data[i] = (char)(rand() >> 7); /* every byte value, NULs too */

	assert_int_equal(
		atex_connection_run(&r, c, cat, data, len, 120000, NULL), 0);
	assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
	assert_int_equal(r.out_len, len);
	assert_memory_equal(r.out, data, len);
	atex_run_result_clear(&r);

	/* The checksum computed inside the container equals ours. */
	assert_int_equal(atex_local_connection_new(&local, NULL), 0);
	sha256(here, local, data, len);
	sha256(there, c, data, len);
	assert_string_equal(here, there);

	atex_connection_free(local);
	atex_connection_free(c);
	free(data);
}

/* Reads a pipe to its end. */
static char *read_all(int fd)
{
	struct atex_buf b = ATEX_BUF_INIT;
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(atex_buf_put(&b, buf, (size_t)n), 0);
	assert_true(n == 0);
	return atex_buf_detach(&b);
}

static void test_cwd_env(void **state)
{
	const char *const argv[] = {"sh", "-c", "pwd; echo \"$A|$B\"", NULL};
	const char *const env[] = {"A=one two", "B=x=y", NULL};
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	atex_connection *c = conn_new(conn_container);
	atex_process *p = NULL;
	char *out;
	int status;

	(void)state;
	opts.argv = argv;
	opts.cwd = "/usr/share";
	opts.env = env;
	opts.stdout_fd = ATEX_STDIO_PIPE;
	assert_int_equal(atex_connection_spawn(&p, c, &opts), 0);
	out = read_all(atex_process_stdout(p));
	assert_int_equal(atex_process_wait(&status, p, 60000, NULL), 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_string_equal(out, "/usr/share\none two|x=y\n");
	free(out);
	atex_process_free(p);
	atex_connection_free(c);
}

static void test_copy_to(void **state)
{
	char dir[] = "/tmp/atex-test-copy-XXXXXX", path[PATH_MAX];
	const char *const stat_argv[] = {
		"sh", "-c",
		"cd /tmp/atex-copy/deep/dst && "
		"stat -c '%n %a %F' * sub/* | sort && "
		"readlink link && cat sub/data && cat 'with space'",
		NULL};
	atex_connection *c = conn_new(conn_container);
	char *out;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/script", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\necho hi\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0705), 0);
	snprintf(path, sizeof(path), "%s/sub/data", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("payload\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0604), 0);
	snprintf(path, sizeof(path), "%s/with space", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("spaced\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
	snprintf(path, sizeof(path), "%s/link", dir);
	assert_int_equal(symlink("sub/data", path), 0);
	snprintf(path, sizeof(path), "%s/dangling", dir);
	assert_int_equal(symlink("/nowhere/at/all", path), 0);

	assert_int_equal(atex_connection_copy_to(
				 c, dir, "/tmp/atex-copy/deep/dst", NULL),
			 0);
	/* A second copy merges into what is there. */
	assert_int_equal(atex_connection_copy_to(
				 c, dir, "/tmp/atex-copy/deep/dst", NULL),
			 0);
	out = run_ok(c, stat_argv, 0);
	assert_string_equal(out, "dangling 777 symbolic link\n"
				 "link 777 symbolic link\n"
				 "script 750 regular file\n"
				 "sub 705 directory\n"
				 "sub/data 604 regular file\n"
				 "with space 644 regular file\n"
				 "sub/data\n"
				 "payload\n"
				 "spaced\n");
	free(out);

	/* Errors name the container. */
	assert_int_equal(
		atex_connection_copy_to(c, "/nonexistent/dir", "/tmp", NULL),
		ATEX_ENOTFOUND);
	assert_true(atex_connection_copy_to(c, dir, "/proc/atex-no/x", NULL) <
		    0);
	assert_non_null(strstr(atex_error_last(), conn_container));

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	atex_connection_free(c);
}

/* A file and a tree out of the container: modes and symlinks kept, a
 * tree merged into what is there, a file replaced, a missing source
 * ATEX_ENOTFOUND naming it. */
static void test_copy_from(void **state)
{
	const char *const make[] = {
		"sh", "-c",
		"rm -rf /tmp/cf && mkdir -p /tmp/cf/sub && "
		"echo payload >/tmp/cf/sub/data && chmod 604 /tmp/cf/sub/data "
		"&& "
		"printf '#!/bin/sh\\n' >/tmp/cf/script && "
		"chmod 750 /tmp/cf/script && chmod 705 /tmp/cf/sub && "
		"ln -s sub/data /tmp/cf/link && echo spaced >'/tmp/cf/with "
		"space'",
		NULL};
	char dir[] = "/tmp/atex-test-copy-from-XXXXXX", cmd[PATH_MAX + 256];
	atex_connection *c = conn_new(conn_container);
	char path[PATH_MAX], *out;
	struct stat st;
	FILE *f;

	(void)state;
	free(run_ok(c, make, 0));
	assert_non_null(mkdtemp(dir));
	/* A tree into a new directory, its parents created... */
	snprintf(path, sizeof(path), "%s/deep/tree", dir);
	assert_int_equal(atex_connection_copy_from(c, "/tmp/cf", path, NULL),
			 0);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s/deep/tree' && stat -c '%%n %%a %%F' * sub/* | sort "
		 "&& readlink link && cat sub/data 'with space'",
		 dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	char buf[1024] = "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	assert_int_equal(pclose(f), 0);
	assert_string_equal(buf, "link 777 symbolic link\n"
				 "script 750 regular file\n"
				 "sub 705 directory\n"
				 "sub/data 604 regular file\n"
				 "with space 644 regular file\n"
				 "sub/data\n"
				 "payload\n"
				 "spaced\n");
	/* ...and merged into one that has other files. */
	snprintf(path, sizeof(path), "%s/deep/tree/mine", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/deep/tree", dir);
	assert_int_equal(atex_connection_copy_from(c, "/tmp/cf/", path, NULL),
			 0);
	snprintf(path, sizeof(path), "%s/deep/tree/mine", dir);
	assert_int_equal(stat(path, &st), 0);

	/* A file replaces the local one, keeping its mode. */
	snprintf(path, sizeof(path), "%s/file", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("old content, longer than the new\n", f);
	fclose(f);
	assert_int_equal(
		atex_connection_copy_from(c, "/tmp/cf/sub/data", path, NULL),
		0);
	assert_int_equal(atex_file_read(&out, NULL, path), 0);
	assert_string_equal(out, "payload\n");
	free(out);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0604);
	/* A new file in a new directory; no temporary left beside it. */
	snprintf(path, sizeof(path), "%s/new/script", dir);
	assert_int_equal(
		atex_connection_copy_from(c, "/tmp/cf/script", path, NULL), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	snprintf(cmd, sizeof(cmd), "ls -A '%s/new'", dir);
	f = popen(cmd, "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	pclose(f);
	assert_string_equal(buf, "script\n");

	/* A file's top-level symlink is followed; a directory where the
	 * file should go is refused, naming both. */
	snprintf(path, sizeof(path), "%s/followed", dir);
	assert_int_equal(
		atex_connection_copy_from(c, "/tmp/cf/link", path, NULL), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(
		atex_connection_copy_from(c, "/tmp/cf/script", dir, NULL),
		ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), dir));
	assert_non_null(strstr(atex_error_last(), "/tmp/cf/script"));

	/* Nothing there. */
	assert_int_equal(
		atex_connection_copy_from(c, "/tmp/cf/no-such", path, NULL),
		ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "/tmp/cf/no-such"));
	assert_non_null(strstr(atex_error_last(), conn_container));

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	atex_connection_free(c);
}

/* A plain container cannot reboot; its boot_id is its start time (the
 * kernel's is the host's), stable while it runs. */
static void test_plain_boot_id(void **state)
{
	atex_connection *c = conn_new(conn_container);
	char *a = NULL, *b = NULL, cmd[1024], want[128] = "";
	FILE *f;

	(void)state;
	assert_false(atex_connection_can_reboot(c));
	assert_int_equal(atex_connection_boot_id(&a, c, 30000, NULL), 0);
	assert_int_equal(atex_connection_boot_id(&b, c, 30000, NULL), 0);
	assert_string_equal(a, b);
	snprintf(cmd, sizeof(cmd), "%s inspect -f '{{.State.StartedAt}}' %s",
		 podman_cmd, conn_container);
	f = popen(cmd, "r");
	assert_non_null(fgets(want, sizeof(want), f));
	pclose(f);
	want[strcspn(want, "\n")] = '\0';
	assert_string_equal(a, want);
	free(a);
	free(b);
	atex_connection_free(c);
}

/* ------------------------------------------------------------------------
 * Provisioner tests.
 */

static void test_provision_two(void **state)
{
	const char *const argv[] = {"cat", "/etc/hostname", NULL};
	atex_provisioner *p = prov_new(2, NULL);
	atex_remote *r[2];
	char *out[2];
	int i, before = count_containers();

	(void)state;
	assert_int_equal(atex_provisioner_provision(p, 2), 0);
	for (i = 0; i < 2; i++) {
		r[i] = get_remote_ok(p);
		assert_non_null(strstr(atex_remote_name(r[i]), "podman:atex-"));
		out[i] = run_ok(atex_remote_connection(r[i]), argv, 0);
	}
	/* Two different systems. */
	assert_string_not_equal(out[0], out[1]);
	assert_int_equal(count_containers(), before + 2);
	for (i = 0; i < 2; i++) {
		atex_remote_release(r[i]);
		free(out[i]);
	}
	assert_int_equal(count_containers(), before);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	assert_int_equal(count_containers(), before);
}

/* provision(UNLIMITED) keeps the pool full: a released container is
 * replaced, until clear(). */
static void test_unlimited_refills(void **state)
{
	atex_provisioner *p = prov_new(1, NULL);
	atex_remote *r1, *r2, *r3 = NULL;
	char *name1;
	int before = count_containers();

	(void)state;
	assert_int_equal(
		atex_provisioner_provision(p, ATEX_PROVISION_UNLIMITED), 0);
	r1 = get_remote_ok(p);
	name1 = strdup(atex_remote_name(r1));
	/* At most `count` at once: nothing else comes while r1 is out. */
	assert_int_equal(atex_provisioner_get_remote(&r3, p, 1000),
			 ATEX_ETIMEDOUT);
	atex_remote_release(r1);
	r2 = get_remote_ok(p);
	assert_string_not_equal(atex_remote_name(r2), name1);
	assert_int_equal(atex_provisioner_clear(p), 0);
	atex_remote_release(r2);
	assert_int_equal(atex_provisioner_get_remote(&r3, p, 1000),
			 ATEX_ETIMEDOUT);
	assert_int_equal(count_containers(), before);
	atex_provisioner_free(p);
	free(name1);
}

/* stop() removes what it handed out, and the remote can still be
 * released afterwards. */
static void test_stop_removes_handed_out(void **state)
{
	atex_provisioner *p = prov_new(1, NULL);
	atex_remote *r;
	int before = count_containers();

	(void)state;
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get_remote_ok(p);
	assert_int_equal(count_containers(), before + 1);
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_int_equal(count_containers(), before);
	atex_remote_release(r);
	atex_provisioner_free(p);
}

struct aborter {
	atex_provisioner *p;
	int delay_ms;
	double took_ms;	 /* how long abort itself took */
	double fired_ms; /* the monotonic time abort was called at */
};

static void *abort_main(void *arg)
{
	struct aborter *a = arg;
	double t;

	if (a->delay_ms > 0)
		usleep((useconds_t)a->delay_ms * 1000);
	t = atex_monotonic_ms();
	a->fired_ms = t;
	atex_provisioner_abort(a->p);
	a->took_ms = atex_monotonic_ms() - t;
	return NULL;
}

/* A podman wrapper whose `run` creates the container and then lingers, so
 * that abort finds containers that exist while their start is still in
 * progress. Returns the path (caller frees and removes). */
static char *slow_podman(void)
{
	char dir[] = "/tmp/atex-test-podman-XXXXXX";
	char *path;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	path = atex_path_join(dir, "podman");
	assert_non_null(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\n"
	      "for a; do\n"
	      "  if [ \"$a\" = run ]; then\n"
	      "    podman \"$@\" || exit\n"
	      "    exec sleep 60\n"
	      "  fi\n"
	      "done\n"
	      "exec podman \"$@\"\n",
	      f);
	fclose(f);
	assert_int_equal(chmod(path, 0755), 0);
	return path;
}

static void remove_slow_podman(char *path)
{
	char cmd[PATH_MAX];

	snprintf(cmd, sizeof(cmd), "rm -rf \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	free(path);
}

/* A podman wrapper that logs each `run` command line to `log` (one line,
 * arguments separated by '|') before running it. Returns the path
 * (caller frees and removes with remove_slow_podman). */
static char *logging_podman(const char *log)
{
	char dir[] = "/tmp/atex-test-podman-XXXXXX";
	char *path;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	path = atex_path_join(dir, "podman");
	assert_non_null(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"#!/bin/sh\n"
		"for a; do\n"
		"  if [ \"$a\" = run ]; then\n"
		"    (IFS='|'; echo \"$*\") >>'%s'\n"
		"  fi\n"
		"done\n"
		"exec podman \"$@\"\n",
		log);
	fclose(f);
	assert_int_equal(chmod(path, 0755), 0);
	return path;
}

/* The `podman run` command lines: a systemd container has systemd's
 * options and /sbin/init, and no --rm (podman refuses it with
 * --restart); the caller's run args come after ours (to override the
 * ulimits); version 1 options end before `systemd`, which is not read. */
static void test_run_argv(void **state)
{
	char log[] = "/tmp/atex-test-runlog-XXXXXX", want[1024], *text;
	struct atex_podman_provisioner_options opts =
		ATEX_PODMAN_PROVISIONER_OPTIONS_INIT;
	char *program;
	atex_provisioner *p = NULL;
	atex_remote *r;
	int fd;

	(void)state;
	fd = mkstemp(log);
	assert_true(fd >= 0);
	close(fd);
	program = logging_podman(log);
	opts.podman_args = podman_args;
	opts.run_args = run_args;
	opts.podman_program = program;
	opts.image = SYSTEMD_IMAGE;
	opts.systemd = true;
	assert_int_equal(atex_podman_provisioner_new(&p, &opts), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get_remote_ok(p);
	atex_remote_release(r);
	atex_provisioner_free(p);
	/* The same options as version 1. */
	opts.version = 1;
	assert_int_equal(atex_podman_provisioner_new(&p, &opts), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get_remote_ok(p);
	atex_remote_release(r);
	atex_provisioner_free(p);

	assert_int_equal(atex_file_read(&text, NULL, log), 0);
	snprintf(want, sizeof(want),
		 "--runtime|runc|--cgroup-manager|cgroupfs|run|-d|"
		 "--systemd=always|--restart=always|--ulimit|"
		 "nofile=20000:20000|--ulimit|nproc=4096:4096|--network|none|"
		 "--label|%s|--ulimit|%s|--ulimit|%s|--name|atex-",
		 label, ulimit_nofile, ulimit_nproc);
	if (strncmp(text, want, strlen(want)) != 0)
		fail_msg("systemd run: %s\nwant: %s...", text, want);
	assert_non_null(strstr(text, "|" SYSTEMD_IMAGE "|/sbin/init\n"));
	snprintf(want, sizeof(want),
		 "--runtime|runc|--cgroup-manager|cgroupfs|run|-d|--rm|"
		 "--network|none|");
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "|" SYSTEMD_IMAGE "|sleep|infinity\n"));
	free(text);
	unlink(log);
	remove_slow_podman(program);
}

/* get_remote blocks in this thread; abort comes from another. */
static void abort_during_get_remote(atex_provisioner *p, int delay_ms)
{
	struct aborter a = {p, delay_ms, 0, 0};
	atex_remote *r = NULL;
	pthread_t t;
	double start, waited, returned;
	int rc;

	assert_int_equal(pthread_create(&t, NULL, abort_main, &a), 0);
	start = atex_monotonic_ms();
	rc = atex_provisioner_get_remote(&r, p, -1);
	returned = atex_monotonic_ms();
	waited = returned - start;
	assert_int_equal(pthread_join(t, NULL), 0);
	/* A container may be ready before a late abort comes (podman
	 * starts one in ~140 ms here): then the system is ours, released
	 * before abort's cleanup is checked. Never after the abort (the
	 * aborter's sleep is not in step with `start`: compare with when
	 * abort was really called; a remote taken just as abort came may
	 * return a moment after it). */
	if (rc == 0 && returned <= a.fired_ms + 20) {
		atex_remote_release(r);
		r = NULL;
		rc = ATEX_ECANCELED;
	}
	if (rc != ATEX_ECANCELED)
		fail_msg("get_remote: %d after %.0f ms, abort at %d ms", rc,
			 waited, delay_ms);
	assert_null(r);
	/* Prompt: the blocked call right away, abort itself once the few
	 * `podman rm` are done. */
	assert_true(waited < delay_ms + 3000);
	assert_true(a.took_ms < 15000);
}

static void test_abort_while_starting(void **state)
{
	char *slow = slow_podman();
	atex_provisioner *p;
	int before = count_containers();

	(void)state;
	/* Containers exist but their `podman run` has not returned. */
	p = prov_new(3, slow);
	assert_int_equal(atex_provisioner_provision(p, 3), 0);
	wait_containers(before + 3, 60000);
	abort_during_get_remote(p, 100);
	assert_int_equal(count_containers(), before);
	assert_int_equal(atex_provisioner_provision(p, 1), ATEX_ECANCELED);
	atex_provisioner_free(p);
	remove_slow_podman(slow);

	/* Abort at once, while podman is still creating them; and a few
	 * moments into the creation, where a SIGKILLed `podman run` left a
	 * container only the runtime knew. */
	for (int delay = 0; delay <= 150; delay += 50) {
		p = prov_new(3, NULL);
		assert_int_equal(atex_provisioner_provision(p, 3), 0);
		abort_during_get_remote(p, delay);
		assert_int_equal(count_containers(), before);
		atex_provisioner_free(p);
		assert_int_equal(count_containers(), before);
	}
	assert_int_equal(runtime_orphans(), 0);
}

static void test_abort_while_command_runs(void **state)
{
	const char *const argv[] = {"sleep", "1000", NULL};
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	atex_provisioner *p = prov_new(1, NULL);
	struct aborter a;
	atex_process *proc = NULL;
	atex_remote *r;
	pthread_t t;
	double start;
	int status, before = count_containers();

	(void)state;
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get_remote_ok(p);
	opts.argv = argv;
	opts.stderr_fd = ATEX_STDIO_NULL; /* podman: "container removed" */
	assert_int_equal(
		atex_connection_spawn(&proc, atex_remote_connection(r), &opts),
		0);
	/* The command is running in the container before the abort. */
	assert_int_equal(atex_process_wait(&status, proc, 500, NULL),
			 ATEX_ETIMEDOUT);

	a = (struct aborter){p, 0, 0, 0};
	start = atex_monotonic_ms();
	assert_int_equal(pthread_create(&t, NULL, abort_main, &a), 0);
	/* The container goes away under the command: it ends promptly. */
	assert_int_equal(atex_process_wait(&status, proc, 20000, NULL), 0);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(atex_monotonic_ms() - start < 15000);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(count_containers(), before);

	atex_process_free(proc);
	atex_remote_release(r); /* after abort: only frees */
	atex_provisioner_free(p);
}

/* How many processes of the container run `sleep SECONDS` (the container's
 * own /proc, read through a command in it). */
static int sleepers(atex_connection *c, const char *seconds)
{
	char script[256];
	const char *const argv[] = {"sh", "-c", script, NULL};
	struct atex_run_result res = {0};
	int n;

	snprintf(script, sizeof(script),
		 "n=0; for f in /proc/[0-9]*/cmdline; do "
		 "case \"$(tr '\\0' ' ' < $f 2>/dev/null)\" in "
		 "'sleep %s '*) n=$((n+1));; esac; done; echo $n",
		 seconds);
	assert_int_equal(
		atex_connection_run(&res, c, argv, NULL, 0, 30000, NULL), 0);
	n = atoi(res.out);
	atex_run_result_clear(&res);
	return n;
}

/* podman exec forwards no signal: killing the client must still stop the
 * command in the container, children included. */
static void test_kill_reaches_container(void **state)
{
	const char *const argv[] = {"sh", "-c", "sleep 4243 & exec sleep 4242",
				    NULL};
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	atex_provisioner *p = prov_new(1, NULL);
	atex_process *proc = NULL;
	atex_connection *c;
	atex_remote *r;
	int status;

	(void)state;
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get_remote_ok(p);
	c = atex_remote_connection(r);
	opts.argv = argv;
	opts.stdout_fd = opts.stderr_fd = ATEX_STDIO_NULL;
	assert_int_equal(atex_connection_spawn(&proc, c, &opts), 0);
	assert_int_equal(atex_process_wait(&status, proc, 1000, NULL),
			 ATEX_ETIMEDOUT);
	assert_int_equal(sleepers(c, "4242") + sleepers(c, "4243"), 2);
	assert_int_equal(atex_process_kill(proc, SIGTERM), 0);
	assert_int_equal(atex_process_wait(&status, proc, 20000, NULL), 0);
	assert_int_equal(sleepers(c, "4242") + sleepers(c, "4243"), 0);
	atex_process_free(proc);
	atex_remote_release(r);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

static void test_get_remote_timeout(void **state)
{
	atex_provisioner *p = prov_new(1, NULL);
	atex_remote *r = NULL;
	double start, took;

	(void)state;
	/* Nothing was asked for: nothing can arrive. */
	start = atex_monotonic_ms();
	assert_int_equal(atex_provisioner_get_remote(&r, p, 300),
			 ATEX_ETIMEDOUT);
	took = atex_monotonic_ms() - start;
	assert_true(took >= 290 && took < 3000);
	assert_null(r);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 0), ATEX_ETIMEDOUT);
	assert_non_null(strstr(atex_error_last(), "podman:" IMAGE));
	atex_provisioner_free(p);
}

static void test_ready_fd(void **state)
{
	atex_provisioner *p = prov_new(1, NULL);
	struct pollfd pfd;
	atex_remote *r;

	(void)state;
	pfd.fd = atex_provisioner_ready_fd(p);
	pfd.events = POLLIN;
	assert_true(pfd.fd >= 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(poll(&pfd, 1, 120000), 1);
	assert_true(pfd.revents & POLLIN);
	/* Readable means get_remote returns at once. */
	assert_int_equal(atex_provisioner_get_remote(&r, p, 0), 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	atex_remote_release(r);
	atex_provisioner_free(p);
}

/* A start that fails is reported by get_remote and leaves nothing. */
static void test_start_failure(void **state)
{
	static const char *const bad_args[] = {"--pull", "never", "--label",
					       label, NULL};
	struct atex_podman_provisioner_options opts =
		ATEX_PODMAN_PROVISIONER_OPTIONS_INIT;
	atex_provisioner *p = NULL;
	atex_remote *r = NULL;
	int before = count_containers();

	(void)state;
	opts.image = "localhost/atex-test-no-such-image";
	opts.podman_args = podman_args;
	opts.run_args = bad_args;
	assert_int_equal(atex_podman_provisioner_new(&p, &opts), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 60000),
			 ATEX_EEXTERNAL);
	assert_non_null(strstr(atex_error_last(), "atex-test-no-such-image"));
	assert_null(r);
	atex_provisioner_free(p);
	assert_int_equal(count_containers(), before);
}

/* ------------------------------------------------------------------------
 * Options v2: run_command, systemd containers that reboot.
 */

static void image_rm(const char *image);

static atex_provisioner *prov_new_v2(const char *image, bool systemd,
				     const char *const *command)
{
	struct atex_podman_provisioner_options opts =
		ATEX_PODMAN_PROVISIONER_OPTIONS_INIT;
	atex_provisioner *p = NULL;

	opts.image = image;
	opts.podman_args = podman_args;
	opts.run_args = run_args;
	opts.systemd = systemd;
	opts.run_command = command;
	assert_int_equal(atex_podman_provisioner_new(&p, &opts), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	return p;
}

/* The container runs the given command instead of `sleep infinity`. */
static void test_run_command(void **state)
{
	static const char *const command[] = {"sleep", "31337", NULL};
	atex_provisioner *p = prov_new_v2(IMAGE, false, command);
	int before = count_containers();
	atex_remote *r;
	char *out;

	(void)state;
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get_remote_ok(p);
	out = run_ok(atex_remote_connection(r),
		     (const char *const[]){
			     "sh", "-c", "tr '\\0' ' ' </proc/1/cmdline", NULL},
		     0);
	assert_string_equal(out, "sleep 31337 ");
	free(out);
	atex_remote_release(r);
	assert_int_equal(count_containers(), before);
	atex_provisioner_free(p);
}

/* systemd's state in the container, chomped; "" when it cannot say. */
static char *systemd_state(atex_connection *c)
{
	const char *const argv[] = {"systemctl", "is-system-running", NULL};
	struct atex_run_result r = {0};
	char *out;

	assert_int_equal(atex_connection_run(&r, c, argv, NULL, 0, 30000, NULL),
			 0);
	out = r.out;
	out[strcspn(out, "\n")] = '\0';
	r.out = NULL;
	atex_run_result_clear(&r);
	return out;
}

/*
 * A systemd container: handed out once systemd runs (not still
 * starting), it can reboot, a reboot brings it back (connect waits for
 * it) with a new boot_id, and release removes it.
 */
static void test_systemd_reboot(void **state)
{
	atex_provisioner *p = prov_new_v2(SYSTEMD_IMAGE, true, NULL);
	int before = count_containers();
	char *a = NULL, *b = NULL, *st, *out;
	atex_connection *c;
	atex_remote *r;
	double start;

	(void)state;
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get_remote_ok(p);
	c = atex_remote_connection(r);
	st = systemd_state(c);
	if (strcmp(st, "running") != 0 && strcmp(st, "degraded") != 0)
		fail_msg("handed out with systemd %s", st);
	free(st);
	out = run_ok(c, (const char *const[]){"cat", "/proc/1/comm", NULL}, 0);
	assert_string_equal(out, "systemd\n");
	free(out);
	assert_true(atex_connection_can_reboot(c));
	assert_int_equal(atex_connection_boot_id(&a, c, 30000, NULL), 0);

	free(run_ok(c, (const char *const[]){"systemctl", "reboot", NULL}, 0));
	start = atex_monotonic_ms();
	assert_int_equal(atex_connection_connect(c, 120000, NULL), 0);
	fprintf(stderr, "# reboot: up again in %.1f s\n",
		(atex_monotonic_ms() - start) / 1000);
	assert_int_equal(atex_connection_boot_id(&b, c, 30000, NULL), 0);
	assert_string_not_equal(a, b);
	st = systemd_state(c);
	if (strcmp(st, "running") != 0 && strcmp(st, "degraded") != 0)
		fail_msg("after the reboot systemd is %s", st);
	free(st);
	free(a);
	free(b);

	atex_remote_release(r);
	assert_int_equal(count_containers(), before);
	atex_provisioner_free(p);
}

/* Builds `tag` FROM the systemd image with one more unit, enabled, whose
 * ExecStart is `exec` (Type=oneshot: the boot waits for it). */
static void systemd_unit_image(const char *tag, const char *exec)
{
	char dir[] = "/tmp/atex-test-unit-XXXXXX", path[PATH_MAX],
	     cmd[PATH_MAX * 2];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/Containerfile", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"FROM %s\n"
		"RUN [\"/bin/sh\", \"-c\", \"printf '[Service]\\\\n"
		"Type=oneshot\\\\nExecStart=%s\\\\n[Install]\\\\n"
		"WantedBy=multi-user.target\\\\n' "
		">/etc/systemd/system/atex-test.service && "
		"systemctl -q enable atex-test.service\"]\n",
		SYSTEMD_IMAGE, exec);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s build -q -t %s -f %s %s >/dev/null",
		 podman_cmd, tag, path, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A failed unit leaves systemd "degraded": still handed out. One that
 * never ends keeps it "starting": connect gives up at its timeout with
 * a message naming the container and the state. */
static void test_systemd_states(void **state)
{
	struct atex_podman_options opts = ATEX_PODMAN_OPTIONS_INIT;
	char image[64], name[64], cmd[1024], *st;
	atex_connection *c = NULL;
	atex_provisioner *p;
	atex_remote *r;
	double start;

	(void)state;
	snprintf(image, sizeof(image), "localhost/atex-test-unit-%ld",
		 (long)getpid());
	systemd_unit_image(image, "/bin/false");
	p = prov_new_v2(image, true, NULL);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get_remote_ok(p);
	st = systemd_state(atex_remote_connection(r));
	assert_string_equal(st, "degraded");
	free(st);
	atex_remote_release(r);
	atex_provisioner_free(p);
	image_rm(image);

	systemd_unit_image(image, "/bin/sleep infinity");
	snprintf(name, sizeof(name), "atex-test-starting-%ld", (long)getpid());
	snprintf(cmd, sizeof(cmd),
		 "%s run -d --systemd=always --network none --label %s "
		 "--ulimit %s --ulimit %s --name %s %s >/dev/null",
		 podman_cmd, label, ulimit_nofile, ulimit_nproc, name, image);
	assert_int_equal(system(cmd), 0);
	opts.container = name;
	opts.podman_args = podman_args;
	opts.can_reboot = true;
	assert_int_equal(atex_podman_connection_new(&c, &opts), 0);
	start = atex_monotonic_ms();
	assert_int_equal(atex_connection_connect(c, 3000, NULL),
			 ATEX_ETIMEDOUT);
	assert_true(atex_monotonic_ms() - start < 20000);
	assert_non_null(strstr(atex_error_last(), name));
	assert_non_null(strstr(atex_error_last(), "state: starting"));
	atex_connection_free(c);
	snprintf(cmd, sizeof(cmd), "%s rm -f -t 0 %s >/dev/null", podman_cmd,
		 name);
	assert_int_equal(system(cmd), 0);
	image_rm(image);
}

/* connect on a container that reboots waits for it to run again, and a
 * timeout or a cancel ends the wait with a message naming it. */
static void test_reboot_connect_waits(void **state)
{
	struct atex_podman_options opts = ATEX_PODMAN_OPTIONS_INIT;
	char name[64], cmd[1024];
	atex_connection *c = NULL;
	atex_cancel *cancel;
	double start;

	(void)state;
	snprintf(name, sizeof(name), "atex-test-stopped-%ld", (long)getpid());
	snprintf(cmd, sizeof(cmd),
		 "%s create --network none --label %s --ulimit %s --ulimit %s "
		 "--name %s %s sleep infinity >/dev/null",
		 podman_cmd, label, ulimit_nofile, ulimit_nproc, name, IMAGE);
	assert_int_equal(system(cmd), 0);
	opts.container = name;
	opts.podman_args = podman_args;
	opts.can_reboot = true;
	assert_int_equal(atex_podman_connection_new(&c, &opts), 0);

	/* Created, not running: a plain connection fails at once, one that
	 * reboots waits until its timeout... */
	start = atex_monotonic_ms();
	assert_int_equal(atex_connection_connect(c, 1500, NULL),
			 ATEX_ETIMEDOUT);
	assert_true(atex_monotonic_ms() - start >= 1400);
	assert_non_null(strstr(atex_error_last(), name));
	/* ...or a cancel... */
	assert_int_equal(atex_cancel_new(&cancel), 0);
	atex_cancel_fire(cancel);
	assert_int_equal(atex_connection_connect(c, 60000, cancel),
			 ATEX_ECANCELED);
	atex_cancel_free(cancel);
	/* ...or until it runs. */
	snprintf(cmd, sizeof(cmd), "(sleep 1; %s start %s >/dev/null) &",
		 podman_cmd, name);
	assert_int_equal(system(cmd), 0);
	start = atex_monotonic_ms();
	assert_int_equal(atex_connection_connect(c, 60000, NULL), 0);
	assert_true(atex_monotonic_ms() - start >= 500);
	free(run_ok(c, (const char *const[]){"true", NULL}, 0));
	atex_connection_free(c);

	/* A container that is gone is an error at once. */
	snprintf(cmd, sizeof(cmd), "%s rm -f -t 0 %s >/dev/null", podman_cmd,
		 name);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(atex_podman_connection_new(&c, &opts), 0);
	start = atex_monotonic_ms();
	assert_int_equal(atex_connection_connect(c, 60000, NULL), ATEX_EIO);
	assert_true(atex_monotonic_ms() - start < 10000);
	assert_non_null(strstr(atex_error_last(), name));
	atex_connection_free(c);
}

/* ------------------------------------------------------------------------
 * atex_podman_image_build, without the network: bases whose package
 * managers are fakes logging their arguments.
 */

/* Builds `tag` FROM IMAGE with a fake `tool` in /usr/local/sbin (ahead
 * of the real ones in PATH) that logs its arguments and exits `status`. */
static void fake_base(const char *tag, const char *tool, int status)
{
	char dir[] = "/tmp/atex-test-base-XXXXXX", path[PATH_MAX],
	     cmd[PATH_MAX * 2];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/Containerfile", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"FROM %s\n"
		"RUN [\"/bin/sh\", \"-c\", \"printf '#!/bin/sh\\\\necho %s "
		"\\\"$*\\\" >>/var/log/fake-pm.log\\\\necho fake %s says "
		"no >&2\\\\nexit %d\\\\n' >/usr/local/sbin/%s && "
		"chmod +x /usr/local/sbin/%s\"]\n",
		IMAGE, tool, tool, status, tool, tool);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s build -q -t %s -f %s %s >/dev/null",
		 podman_cmd, tag, path, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A file of an image, through a throw-away container. */
static char *image_file(const char *image, const char *file)
{
	char cmd[1024], buf[4096];
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "%s run --rm --network none --ulimit %s --ulimit %s %s cat %s "
		 "2>/dev/null",
		 podman_cmd, ulimit_nofile, ulimit_nproc, image, file);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	pclose(f);
	return strdup(buf);
}

static void image_rm(const char *image)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s rmi -f %s >/dev/null 2>&1", podman_cmd,
		 image);
	(void)!system(cmd);
}

static void test_image_build(void **state)
{
	static const char *const pkgs[] = {"foo", "libstdc++-dev", "bar=1.2-3",
					   NULL};
	char *log, *conf, base[64], built[64], cmd[1024], out[256] = "";
	FILE *f;

	(void)state;
	snprintf(base, sizeof(base), "localhost/atex-test-apt-%ld",
		 (long)getpid());
	snprintf(built, sizeof(built), "localhost/atex-test-built-%ld",
		 (long)getpid());
	fake_base(base, "apt-get", 0);
	/* apt-get: the packages and systemd as init; the test image has
	 * everything else atex needs, so nothing more. */
	assert_int_equal(atex_podman_image_build(built, base, pkgs, true,
						 podman_args, NULL),
			 0);
	log = image_file(built, "/var/log/fake-pm.log");
	assert_string_equal(log, "apt-get update\n"
				 "apt-get install -y --no-install-recommends "
				 "foo libstdc++-dev bar=1.2-3 systemd-sysv\n"
				 "apt-get clean\n");
	free(log);
	conf = image_file(built,
			  "/etc/systemd/system.conf.d/atex-container.conf");
	assert_non_null(strstr(conf, "DefaultTimeoutStopSec=30s"));
	free(conf);
	snprintf(cmd, sizeof(cmd), "%s image inspect -f '{{.Config.Cmd}}' %s",
		 podman_cmd, built);
	f = popen(cmd, "r");
	assert_non_null(fgets(out, sizeof(out), f));
	pclose(f);
	assert_string_equal(out, "[/sbin/init]\n");
	image_rm(built);

	/* Without packages or systemd there is nothing to install. */
	assert_int_equal(atex_podman_image_build(built, base, NULL, false,
						 podman_args, NULL),
			 0);
	log = image_file(built, "/var/log/fake-pm.log");
	assert_string_equal(log, "");
	free(log);
	image_rm(built);
	image_rm(base);

	/* systemd on a base that has /sbin/init already: nothing to
	 * install (no package manager, no network), the config still
	 * written. */
	assert_int_equal(atex_podman_image_build(built, SYSTEMD_IMAGE, NULL,
						 true, podman_args, NULL),
			 0);
	conf = image_file(built,
			  "/etc/systemd/system.conf.d/atex-container.conf");
	assert_non_null(strstr(conf, "DefaultTimeoutStopSec=30s"));
	free(conf);
	image_rm(built);

	/* dnf comes first when the base has it. */
	fake_base(base, "dnf", 0);
	assert_int_equal(atex_podman_image_build(built, base, pkgs, false,
						 podman_args, NULL),
			 0);
	log = image_file(built, "/var/log/fake-pm.log");
	assert_string_equal(log,
			    "dnf -y --setopt=install_weak_deps=False install "
			    "foo libstdc++-dev bar=1.2-3\n"
			    "dnf clean all\n");
	free(log);
	image_rm(built);
	image_rm(base);

	/* A failing install: EEXTERNAL ending with the build's output. */
	fake_base(base, "apt-get", 100);
	assert_int_equal(atex_podman_image_build(built, base, pkgs, false,
						 podman_args, NULL),
			 ATEX_EEXTERNAL);
	assert_non_null(strstr(atex_error_last(), built));
	assert_non_null(strstr(atex_error_last(), "fake apt-get says no"));
	image_rm(base);
}

static void test_image_build_refuses(void **state)
{
	static const char *const bad_pkgs[][2] = {
		{"foo;rm -rf /", NULL}, {"-oDebug::pkgProblemResolver=1", NULL},
		{"two words", NULL},	{"$(reboot)", NULL},
		{"quote'", NULL},	{"", NULL},
	};
	atex_cancel *cancel;
	size_t i;

	(void)state;
	for (i = 0; i < ATEX_ARRAY_SIZE(bad_pkgs); i++) {
		const char *const pkgs[] = {"fine", bad_pkgs[i][0], NULL};

		assert_int_equal(atex_podman_image_build("localhost/t", IMAGE,
							 pkgs, false,
							 podman_args, NULL),
				 ATEX_EINVAL);
		assert_non_null(strstr(atex_error_last(), "package"));
		assert_non_null(strstr(atex_error_last(), bad_pkgs[i][0]));
	}
	assert_int_equal(atex_podman_image_build("bad tag", IMAGE, NULL, false,
						 podman_args, NULL),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "\"bad tag\""));
	assert_int_equal(atex_podman_image_build("localhost/t", "--privileged",
						 NULL, false, podman_args,
						 NULL),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "--privileged"));
	assert_int_equal(atex_podman_image_build(NULL, IMAGE, NULL, false,
						 podman_args, NULL),
			 ATEX_EINVAL);
	/* A cancel fired before: nothing is built. */
	assert_int_equal(atex_cancel_new(&cancel), 0);
	atex_cancel_fire(cancel);
	assert_int_equal(atex_podman_image_build("localhost/atex-test-canceled",
						 IMAGE, NULL, false,
						 podman_args, cancel),
			 ATEX_ECANCELED);
	atex_cancel_free(cancel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_binary_roundtrip),
		cmocka_unit_test(test_cwd_env),
		cmocka_unit_test(test_copy_to),
		cmocka_unit_test(test_copy_from),
		cmocka_unit_test(test_plain_boot_id),
		cmocka_unit_test(test_provision_two),
		cmocka_unit_test(test_unlimited_refills),
		cmocka_unit_test(test_stop_removes_handed_out),
		cmocka_unit_test(test_abort_while_starting),
		cmocka_unit_test(test_abort_while_command_runs),
		cmocka_unit_test(test_kill_reaches_container),
		cmocka_unit_test(test_get_remote_timeout),
		cmocka_unit_test(test_ready_fd),
		cmocka_unit_test(test_start_failure),
		cmocka_unit_test(test_run_command),
		cmocka_unit_test(test_systemd_reboot),
		cmocka_unit_test(test_reboot_connect_waits),
		cmocka_unit_test(test_systemd_states),
		cmocka_unit_test(test_run_argv),
		cmocka_unit_test(test_image_build),
		cmocka_unit_test(test_image_build_refuses),
	};

	/* ATEX_TEST_FILTER: run only the tests matching a pattern. */
	if (getenv("ATEX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("ATEX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
