/*
 * test_qemu.c - the QEMU provisioner booting real VMs of the test image
 * (tests/integration/vm-image.sh; direct kernel boot, TCG here).
 *
 * Each VM boot costs ~30 s of a core under TCG, so the checks share
 * boots: two VMs at once (ready, commands, the accelerator probe picking
 * TCG, nothing left after release); a VM whose kernel cannot find its
 * root (retried, the error quoting its console); abort while booting; atex
 * SIGKILLed while booting; the orphan sweep (no boot); and QEMU on a
 * "virtualization host", the test sshd on 127.0.0.1 (run under
 * with-server.sh ssh), its VM (UEFI) reached through it as a jump host.
 *
 * Leftovers are counted under a private work directory: VM directories
 * (with their overlays, fifos and consoles) and processes whose command
 * line names the work directory (QEMU, the wrappers).
 *
 * ATEX_TEST_FILTER (a cmocka pattern) runs some of the tests only.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>

#include "../unit/helpers.h"

#include "atex/provisioner.h"
#include "util/util.h"

static char vm_image[4096], vm_kernel[4096], vm_initrd[4096], vm_cmdline[4096];

/* Runs vm-image.sh (built once, cached) and reads what it prints. */
static int find_image(void)
{
	const char *script = getenv("ATEX_VM_IMAGE_SH");
	char cmd[8192];
	FILE *f;
	char *fields[] = {vm_image, vm_kernel, vm_initrd, vm_cmdline};

	if (getenv("ATEX_TEST_VM_IMAGE")) {
		snprintf(vm_image, sizeof(vm_image), "%s",
			 getenv("ATEX_TEST_VM_IMAGE"));
		snprintf(vm_kernel, sizeof(vm_kernel), "%s",
			 getenv("ATEX_TEST_VM_KERNEL"));
		snprintf(vm_initrd, sizeof(vm_initrd), "%s",
			 getenv("ATEX_TEST_VM_INITRD"));
		snprintf(vm_cmdline, sizeof(vm_cmdline), "%s",
			 getenv("ATEX_TEST_VM_CMDLINE"));
		return 0;
	}
	if (!script) {
		fprintf(stderr, "test_qemu: ATEX_VM_IMAGE_SH is not set\n");
		return -1;
	}
	snprintf(cmd, sizeof(cmd),
		 "bash -c 'eval \"$(\"$0\")\" || exit 1; printf \"%%s\\n\" "
		 "\"$ATEX_TEST_VM_IMAGE\" \"$ATEX_TEST_VM_KERNEL\" "
		 "\"$ATEX_TEST_VM_INITRD\" \"$ATEX_TEST_VM_CMDLINE\"' '%s'",
		 script);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		if (!fgets(fields[i], 4096, f)) {
			pclose(f);
			return -1;
		}
		fields[i][strcspn(fields[i], "\n")] = '\0';
	}
	return pclose(f) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Logs: what the provisioner said, for the checks.
 */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct atex_buf log_text;

static void log_handler(int level, const char *component, const char *msg,
			void *userdata)
{
	pthread_mutex_lock(&log_lock);
	atex_buf_printf(&log_text, "%d %s: %s\n", level, component, msg);
	pthread_mutex_unlock(&log_lock);
	fprintf(stderr, "[%s] %s\n", component, msg);
	(void)userdata;
}

static int log_count(const char *part)
{
	int n = 0;

	pthread_mutex_lock(&log_lock);
	for (const char *s = atex_buf_cstr(&log_text);
	     (s = strstr(s, part)) != NULL; s++)
		n++;
	pthread_mutex_unlock(&log_lock);
	return n;
}

static void log_reset(void)
{
	pthread_mutex_lock(&log_lock);
	atex_buf_clear(&log_text);
	pthread_mutex_unlock(&log_lock);
}

/* ------------------------------------------------------------------------
 * Leftovers.
 */

/* Entries of `dir` (not . and ..). */
static int dir_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Processes whose command line contains `text` (and starts with
 * `start`, unless NULL), but not this one. */
static int procs_naming(const char *text, const char *start)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], buf[16384];
		ssize_t len;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9' ||
		    atoi(e->d_name) == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		for (ssize_t i = 0; i < len; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, text) &&
		    (!start || strncmp(buf, start, strlen(start)) == 0))
			n++;
	}
	closedir(d);
	return n;
}

/* Waits (up to `ms`) until nothing of ours is left under `work`. */
static void expect_clean(const char *work, int ms)
{
	double end = atex_monotonic_ms() + ms;

	while ((dir_count(work) || procs_naming(work, NULL)) &&
	       atex_monotonic_ms() < end) {
		struct timespec ts = {0, 100 * 1000000L};

		nanosleep(&ts, NULL);
	}
	assert_int_equal(dir_count(work), 0);
	assert_int_equal(procs_naming(work, NULL), 0);
}

/* Files named `name` anywhere under `dir` (one level of VM dirs). */
static int files_named(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[8192];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, e->d_name, name);
		if (access(path, F_OK) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------------
 * Helpers.
 */

static void base_options(struct atex_qemu_provisioner_options *o,
			 const char *work)
{
	struct atex_qemu_provisioner_options init =
		ATEX_QEMU_PROVISIONER_OPTIONS_INIT;

	*o = init;
	o->image = vm_image;
	o->kernel = vm_kernel;
	o->initrd = vm_initrd;
	o->cmdline = vm_cmdline;
	o->memory_mib = 512;
	o->key = ATEX_VM_KEY_CREDENTIAL;
	o->boot_timeout_s = 240;
	o->workdir = work;
}

/* Runs `cmd` on the remote; returns its stdout (caller frees). */
static char *run_on(atex_remote *r, const char *cmd)
{
	const char *argv[] = {"sh", "-c", cmd, NULL};
	struct atex_run_result res = {0};
	char *out;

	assert_int_equal(atex_connection_run(&res, atex_remote_connection(r),
					     argv, NULL, 0, 60000, NULL),
			 0);
	assert_true(WIFEXITED(res.status));
	assert_int_equal(WEXITSTATUS(res.status), 0);
	out = strdup(res.out);
	atex_run_result_clear(&res);
	return out;
}

/* ------------------------------------------------------------------------
 * Tests.
 */

/* Two VMs at once: both ready, each runs commands over its connection,
 * the probe picked TCG; release leaves no QEMU, directory or fifo. */
static void test_two_vms(void **state)
{
	struct atex_qemu_provisioner_options o;
	char *work = tmpdir_new();
	atex_provisioner *p = NULL;
	atex_remote *r[2] = {NULL, NULL};
	char *id[2];

	base_options(&o, work);
	o.count = 2;
	o.accel = ATEX_VM_ACCEL_AUTO;
	/* The image has no cloud-init: the credential logs in, the seed is
	 * only there (checked below). */
	o.key = ATEX_VM_KEY_BOTH;
	log_reset();
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, 2), 0);
	for (int i = 0; i < 2; i++) {
		int rc = atex_provisioner_get_remote(&r[i], p, 400000);

		if (rc)
			fail_msg("get_remote: %s", atex_error_last());
	}
	/* The probe booted the kernel under KVM, which hangs here. */
	assert_int_equal(log_count("using tcg"), 1);
	assert_int_equal(log_count("using kvm"), 0);
	/* Both VMs run, each in its own directory with its fifos. */
	assert_int_equal(dir_count(work), 2);
	assert_int_equal(files_named(work, "qmp.in"), 2);
	assert_int_equal(files_named(work, "overlay.qcow2"), 2);
	assert_int_equal(procs_naming(work, "qemu-system-x86_64 "), 2);
	for (int i = 0; i < 2; i++) {
		char *who = run_on(r[i], "id -un; uname -s");

		assert_string_equal(who, "root\nLinux\n");
		free(who);
		id[i] = run_on(r[i], "cat /proc/sys/kernel/random/boot_id");
		who = run_on(r[i], "blkid -o value -s LABEL /dev/vdb");
		assert_string_equal(who, "cidata\n");
		free(who);
		assert_true(strncmp(atex_remote_name(r[i]), "qemu:atex-vm-",
				    13) == 0);
	}
	/* Two systems, not one twice. */
	assert_string_not_equal(id[0], id[1]);
	free(id[0]);
	free(id[1]);

	atex_remote_release(r[0]);
	/* One VM gone at once, the other still running. */
	assert_int_equal(dir_count(work), 1);
	atex_remote_release(r[1]);
	expect_clean(work, 0);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	rmdir(work);
	free(work);
	(void)state;
}

/* A kernel that cannot find its root panics: each attempt times out,
 * and the error quotes the console. */
static void test_broken_boot(void **state)
{
	struct atex_qemu_provisioner_options o;
	char *work = tmpdir_new();
	atex_provisioner *p = NULL;
	atex_remote *r = NULL;
	double t0;
	int rc;

	base_options(&o, work);
	o.initrd = NULL; /* no initramfs waiting for a root device */
	/* No panic=: the kernel stays at its panic, the last lines of the
	 * console, however slow a loaded machine makes the boot. */
	o.cmdline = "root=/dev/nonexistent console=ttyS0";
	o.accel = ATEX_VM_ACCEL_TCG;
	o.boot_timeout_s = 30;
	o.boot_attempts = 2;
	log_reset();
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	t0 = atex_monotonic_ms();
	rc = atex_provisioner_get_remote(&r, p, 300000);
	assert_int_equal(rc, ATEX_EEXTERNAL);
	assert_null(r);
	/* Two boots of 30 s each, no more. */
	assert_true(atex_monotonic_ms() - t0 > 2 * 30000);
	assert_true(atex_monotonic_ms() - t0 < 3 * 30000);
	assert_int_equal(log_count("(attempt 1 of 2)"), 1);
	assert_int_equal(log_count("(attempt 2 of 2)"), 1);
	assert_int_equal(log_count("attempt 3"), 0);
	/* Each attempt's warning quotes the console a line per message:
	 * no newline escaped into one long line. */
	assert_int_equal(log_count("\\n"), 0);
	assert_true(log_count(" | [") >= 2);
	{
		const char *msg = atex_error_last();

		if (!strstr(msg, "did not answer ssh") ||
		    !strstr(msg, "its console ends with:") ||
		    !strstr(msg, "Kernel panic") || !strstr(msg, vm_image))
			fail_msg("unexpected error: %s", msg);
	}
	expect_clean(work, 5000);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	rmdir(work);
	free(work);
	(void)state;
}

struct aborter {
	atex_provisioner *p;
	const char *work;
	double aborted_at;
};

/* Aborts once the VM's QEMU runs (its pid file exists). */
static void *abort_when_booting(void *arg)
{
	struct aborter *a = arg;
	double end = atex_monotonic_ms() + 60000;

	while (files_named(a->work, "qemu.pid") == 0 &&
	       atex_monotonic_ms() < end) {
		struct timespec ts = {0, 50 * 1000000L};

		nanosleep(&ts, NULL);
	}
	/* Well into the boot: the guest is running, ssh not up yet. */
	{
		struct timespec ts = {3, 0};

		nanosleep(&ts, NULL);
	}
	a->aborted_at = atex_monotonic_ms();
	atex_provisioner_abort(a->p);
	return NULL;
}

static void test_abort_while_booting(void **state)
{
	struct atex_qemu_provisioner_options o;
	char *work = tmpdir_new();
	struct aborter a = {.work = work};
	atex_provisioner *p = NULL;
	atex_remote *r = NULL;
	pthread_t t;
	double returned;

	base_options(&o, work);
	o.accel = ATEX_VM_ACCEL_TCG;
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	a.p = p;
	assert_int_equal(pthread_create(&t, NULL, abort_when_booting, &a), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 120000),
			 ATEX_ECANCELED);
	returned = atex_monotonic_ms();
	pthread_join(t, NULL);
	assert_true(a.aborted_at > 0);
	/* The blocked call returned promptly, and abort left nothing. */
	assert_true(returned - a.aborted_at < 5000);
	expect_clean(work, 0);
	atex_provisioner_free(p);
	rmdir(work);
	free(work);
	(void)state;
}

/* atex SIGKILLed while its VM boots: the wrapper sees EOF on its stdin
 * and removes QEMU and the directory; nothing waits for a next run. */
static void test_killed_atex(void **state)
{
	struct atex_qemu_provisioner_options o;
	char *work = tmpdir_new();
	double end = atex_monotonic_ms() + 60000;
	int status;
	pid_t child;

	base_options(&o, work);
	o.accel = ATEX_VM_ACCEL_TCG;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		atex_provisioner *p = NULL;
		atex_remote *r = NULL;

		if (atex_qemu_provisioner_new(&p, &o) ||
		    atex_provisioner_start(p) ||
		    atex_provisioner_provision(p, 1))
			_exit(1);
		atex_provisioner_get_remote(&r, p, 120000);
		_exit(2);
	}
	while (files_named(work, "qemu.pid") == 0 &&
	       atex_monotonic_ms() < end) {
		struct timespec ts = {0, 50 * 1000000L};

		nanosleep(&ts, NULL);
	}
	assert_int_equal(files_named(work, "qemu.pid"), 1);
	assert_int_equal(procs_naming(work, "qemu-system-x86_64 "), 1);
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	expect_clean(work, 10000);
	rmdir(work);
	free(work);
	(void)state;
}

/* A process whose command line names `name` (argv[0]), like QEMU's. */
static pid_t fake_qemu(const char *name)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sleep", name, "600", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void write_pid(const char *work, const char *vm, pid_t pid)
{
	char text[32], rel[256];

	snprintf(text, sizeof(text), "%d\n", (int)pid);
	snprintf(rel, sizeof(rel), "%s/qemu.pid", vm);
	write_file(work, rel, text);
}

/* start() removes orphaned VM directories: the lock free, the QEMU of
 * qemu.pid killed when it names the directory (only then); a directory
 * whose wrapper lives (lock held) stays. No boot. */
static void test_orphans(void **state)
{
	struct atex_qemu_provisioner_options o;
	char *work = tmpdir_new();
	char orphan[512], live[512], other[512], arg0[1024];
	atex_provisioner *p = NULL;
	pid_t q, unrelated;
	int status, lock;

	snprintf(orphan, sizeof(orphan), "%s/atex-vm-0rphan00", work);
	snprintf(live, sizeof(live), "%s/atex-vm-11ve0000", work);
	snprintf(other, sizeof(other), "%s/atex-vm-0ther000", work);
	snprintf(arg0, sizeof(arg0), "%s/qemu.pid", orphan);
	q = fake_qemu(arg0);
	unrelated = fake_qemu("not-a-vm");
	write_pid(work, "atex-vm-0rphan00", q);
	write_file(work, "atex-vm-0rphan00/overlay.qcow2", "");
	write_file(work, "atex-vm-0rphan00/lock", "");
	write_pid(work, "atex-vm-0ther000", unrelated);
	write_file(work, "atex-vm-11ve0000/lock", "");
	write_pid(work, "atex-vm-11ve0000", q);
	{
		char path[8192];

		snprintf(path, sizeof(path), "%s/lock", live);
		lock = open(path, O_RDWR);
		assert_true(lock >= 0);
		assert_int_equal(flock(lock, LOCK_EX), 0);
	}

	base_options(&o, work);
	o.accel = ATEX_VM_ACCEL_TCG;
	log_reset();
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	/* The orphan's QEMU was killed and its directory removed. */
	assert_int_equal(waitpid(q, &status, 0), q);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(access(orphan, F_OK), -1);
	assert_int_equal(log_count("removed the orphaned VM"), 2);
	/* A pid that is not a QEMU of that directory is left alone. */
	assert_int_equal(access(other, F_OK), -1);
	assert_int_equal(kill(unrelated, 0), 0);
	/* A directory in use stays. */
	assert_int_equal(access(live, F_OK), 0);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);

	kill(unrelated, SIGKILL);
	waitpid(unrelated, &status, 0);
	close(lock);
	{
		char cmd[8192];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
		assert_int_equal(system(cmd), 0);
	}
	free(work);
	(void)state;
}

/* QEMU on a virtualization host reached over ssh (the test sshd on
 * 127.0.0.1): the probe runs there, the VM is reached through the host. */
static void test_host(void **state)
{
	struct atex_qemu_provisioner_options o;
	struct atex_ssh_options host = ATEX_SSH_OPTIONS_INIT;
	static const char *const host_opts[] = {"StrictHostKeyChecking=no",
						"UserKnownHostsFile=/dev/null",
						NULL};
	const char *port = getenv("ATEX_TEST_SSH_PORT");
	char *work = tmpdir_new();
	atex_provisioner *p = NULL;
	atex_remote *r = NULL;
	char *out;
	int rc;

	if (!port)
		fail_msg(
			"run under with-server.sh ssh (no ATEX_TEST_SSH_PORT)");
	host.host = getenv("ATEX_TEST_SSH_HOST");
	host.port = atoi(port);
	host.user = getenv("ATEX_TEST_SSH_USER");
	host.identity = getenv("ATEX_TEST_SSH_KEY");
	host.options = host_opts;
	base_options(&o, work);
	o.host = &host;
	o.firmware = ATEX_VM_FIRMWARE_UEFI;
	o.accel = ATEX_VM_ACCEL_AUTO;
	log_reset();
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	rc = atex_provisioner_start(p);
	if (rc)
		fail_msg("start: %s", atex_error_last());
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	rc = atex_provisioner_get_remote(&r, p, 400000);
	if (rc)
		fail_msg("get_remote: %s", atex_error_last());
	assert_int_equal(log_count("using tcg"), 1);
	assert_non_null(strstr(atex_remote_name(r), " via "));
	/* The VM's master goes through the host: ssh -W to the VM's port
	 * on the host's loopback (its ProxyCommand, running here). */
	assert_int_equal(procs_naming(" -W 127.0.0.1:", "ssh "), 1);
	out = run_on(r, "uname -n; test -d /sys/firmware/efi && echo uefi");
	assert_string_equal(out, "atex-vm\nuefi\n");
	free(out);
	/* QEMU runs on the host: a child of its sshd, not of ours. */
	assert_int_equal(dir_count(work), 1);
	/* stop takes back what was handed out: QEMU ends now, the remote
	 * is only freed by its release. */
	assert_int_equal(atex_provisioner_stop(p), 0);
	expect_clean(work, 5000);
	atex_remote_release(r);
	atex_provisioner_free(p);
	rmdir(work);
	free(work);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orphans),
		cmocka_unit_test(test_abort_while_booting),
		cmocka_unit_test(test_killed_atex),
		cmocka_unit_test(test_broken_boot),
		cmocka_unit_test(test_two_vms),
		cmocka_unit_test(test_host),
	};
	const char *filter = getenv("ATEX_TEST_FILTER");

	if (find_image() < 0) {
		fprintf(stderr, "test_qemu: no test VM image\n");
		return 1;
	}
	fprintf(stderr, "test_qemu: image %s, kernel %s\n", vm_image,
		vm_kernel);
	atex_log_set_handler(log_handler, NULL);
	atex_log_set_level(ATEX_LOG_INFO);
	if (filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
