/*
 * bench/vm.c - what the QEMU provisioner adds to a VM: the time from
 * atex_provisioner_provision(N) to N ready remotes against N bare QEMU
 * boots of the same image answering ssh (bench/vm-bare.sh, no atex), for
 * N = 1 and 2; atex's own CPU time and memory per VM while the VMs boot and
 * while they wait; and the cost of a trivial test over ssh into a VM.
 *
 * Why: a VM under TCG takes ~25 s to boot and KVM ~5 s; atex must not add
 * to that more than 10% (or 2 s), and an orchestrator holding 100 VMs must
 * not spend more than 2 MiB and 1% of a core on each one that waits.
 *
 * The image comes from the environment as tests/integration/vm-image.sh
 * prints it: ATEX_BENCH_VM_IMAGE, _KERNEL, _INITRD, _CMDLINE (bench/run-all.sh
 * sets them). Both sides boot the same image with the same key, memory and
 * accelerator, each VM on its own overlay, the key as a systemd credential.
 *
 * "atex CPU" is getrusage(RUSAGE_SELF) of this process (every thread; QEMU
 * and ssh are other processes); "helpers" is the CPU of atex's other
 * child processes (ssh logins and masters, qemu-img), QEMU excluded:
 * those that ended (RUSAGE_CHILDREN) plus those alive (/proc).
 *
 * usage: vm [--runs1 N] [--runs2 N] [--wait S] [--tests N] [--accel tcg|kvm]
 *           [--memory MIB] [--bare PATH]
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atex/atex.h"
#include "util/util.h"

#ifndef BENCH_SOURCE_DIR
#define BENCH_SOURCE_DIR "bench"
#endif

struct conf {
	const char *image, *kernel, *initrd, *cmdline, *bare, *accel;
	char key[4096];
	int runs1, runs2, wait_s, tests, memory;
};

/* One provisioning run of N VMs. */
struct sample {
	double boot_s;
	double self_boot_ms, helpers_boot_ms;
	long rss_boot_kib;
	double self_wait_ms, helpers_wait_ms;
	long rss_wait_kib;
	bool waited;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[64];

	if (n > (int)ATEX_ARRAY_SIZE(s))
		n = ATEX_ARRAY_SIZE(s);
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double rusage_ms(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
	       ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* pid, parent, name and CPU ticks of one process, from /proc/PID/stat. */
struct proc {
	int pid, ppid;
	char comm[32];
	unsigned long long ticks;
};

static int read_proc(struct proc *p, const char *pid)
{
	char path[64], buf[1024], *close_paren;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The name may hold spaces and parentheses: it ends at the last ')'. */
	close_paren = strrchr(buf, ')');
	if (!close_paren || sscanf(buf, "%d (", &p->pid) != 1)
		return -1;
	snprintf(p->comm, sizeof(p->comm), "%.*s",
		 (int)(close_paren - strchr(buf, '(') - 1),
		 strchr(buf, '(') + 1);
	/* After ") ": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime. */
	if (sscanf(close_paren + 2,
		   "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &p->ppid, &ut, &st) != 3)
		return -1;
	p->ticks = ut + st;
	return 0;
}

/* Whether the process runs QEMU: its name is the VM's (-name
 * ...,process=NAME), its program is not. */
static bool is_qemu(int pid)
{
	char path[64], argv0[256] = "";
	const char *base;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(argv0, sizeof(argv0), f))
		argv0[0] = '\0';
	fclose(f);
	base = strrchr(argv0, '/');
	return !strncmp(base ? base + 1 : argv0, "qemu-system", 11);
}

/* CPU ms of the live descendants of this process that are not QEMU. */
static double helpers_alive_ms(void)
{
	static struct proc procs[4096];
	int n = 0, self = getpid();
	double ms = 0;
	struct dirent *e;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < (int)ATEX_ARRAY_SIZE(procs))
		if (isdigit((unsigned char)e->d_name[0]) &&
		    !read_proc(&procs[n], e->d_name))
			n++;
	closedir(d);
	for (int i = 0; i < n; i++) {
		int pid = procs[i].ppid, depth = 0;

		if (procs[i].pid == self || is_qemu(procs[i].pid))
			continue;
		while (pid > 1 && pid != self && depth++ < 32) {
			int j = 0;

			while (j < n && procs[j].pid != pid)
				j++;
			pid = j < n ? procs[j].ppid : 0;
		}
		if (pid == self)
			ms += procs[i].ticks * 1e3 / sysconf(_SC_CLK_TCK);
	}
	return ms;
}

static double helpers_ms(void)
{
	return rusage_ms(RUSAGE_CHILDREN) + helpers_alive_ms();
}

/* The bare baseline: vm-bare.sh's seconds, or a negative number. */
static double bare_boot(const struct conf *c, int n)
{
	char cmd[8192], out[64] = "";
	double s = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' %d '%s' '%s' '%s' '%s' '%s' %d %s",
		 c->bare, n, c->image, c->kernel, c->initrd, c->cmdline, c->key,
		 c->memory, c->accel);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fgets(out, sizeof(out), p))
		s = strtod(out, NULL);
	if (pclose(p) != 0)
		return -1;
	return s;
}

/* A tree of n tests `true` in dir. */
static int make_tree(const char *dir, int n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/.fmf", dir);
	if (mkdir(path, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/.fmf/version", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs("1\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/main.fmf", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	for (int i = 0; i < n; i++)
		fprintf(f, "/t%04d:\n  test: \"true\"\n", i);
	fclose(f);
	return 0;
}

/* A fresh `ssh true` to the VM when its connection's name says its port
 * ("...:PORT"): ms, or a negative number. */
static double fresh_ssh_ms(const struct conf *c, atex_connection *conn)
{
	const char *name = atex_connection_name(conn), *colon;
	char cmd[8192];
	double t0;
	int port;

	colon = name ? strrchr(name, ':') : NULL;
	if (!colon || (port = atoi(colon + 1)) <= 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "ssh -q -i '%s' -p %d -o BatchMode=yes "
		 "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
		 "root@127.0.0.1 true </dev/null",
		 c->key, port);
	t0 = atex_monotonic_ms();
	if (system(cmd) != 0)
		return -1;
	return atex_monotonic_ms() - t0;
}

static char per_test[1024];

/* The per-test cost on a ready VM: the fmf executor running `true` tests
 * against `true` run through the same (multiplexed) connection. */
static int bench_tests(const struct conf *c, atex_connection *conn,
		       const char *work)
{
	const char *const argv[] = {"true", NULL};
	struct atex_fmf_executor_options o = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	atex_fmf_discovery *disc = NULL;
	atex_executor *exec = NULL;
	double test_ms[256], run_ms[256], fresh = -1;
	int n = c->tests, rc, code;
	char tree[2048], art[4200], fresh_text[32] = "(port unknown)";

	if (n > (int)ATEX_ARRAY_SIZE(test_ms))
		n = ATEX_ARRAY_SIZE(test_ms);
	snprintf(tree, sizeof(tree), "%s/tree", work);
	if (mkdir(tree, 0755) < 0 || make_tree(tree, n) < 0)
		return atex_error_set(ATEX_EIO, "cannot write %s", tree);
	rc = atex_fmf_discover(&disc, tree, NULL);
	o.connection = conn;
	o.discovery = disc;
	if (!rc)
		rc = atex_fmf_executor_new(&exec, &o);
	if (!rc)
		rc = atex_executor_start(exec);
	for (int i = 0; i < n && !rc; i++) {
		double t0 = atex_monotonic_ms();

		snprintf(art, sizeof(art), "%s/art/%d", work, i);
		rc = atex_executor_run_test(
			exec, atex_fmf_discovery_test_name(disc, (size_t)i),
			art, NULL, &code);
		test_ms[i] = atex_monotonic_ms() - t0;
	}
	for (int i = 0; i < n && !rc; i++) {
		struct atex_run_result r = {0};
		double t0 = atex_monotonic_ms();

		rc = atex_connection_run(&r, conn, argv, NULL, 0, 30000, NULL);
		run_ms[i] = atex_monotonic_ms() - t0;
		atex_run_result_clear(&r);
	}
	if (!rc)
		fresh = fresh_ssh_ms(c, conn);
	atex_executor_free(exec);
	atex_fmf_discovery_free(disc);
	if (rc)
		return rc;
	if (fresh >= 0)
		snprintf(fresh_text, sizeof(fresh_text), "%.0f ms", fresh);
	qsort(test_ms, (size_t)n, sizeof(*test_ms), cmp_double);
	/* Printed after the boot figures, which it would otherwise split. */
	snprintf(per_test, sizeof(per_test),
		 "per test (%d `true` tests, one VM): executor median %.1f ms "
		 "(p90 %.1f); `true` on the same ssh connection median %.1f "
		 "ms; a fresh `ssh true` %s\n"
		 "  overhead per test: %.1f ms over a multiplexed `ssh true`\n",
		 n, test_ms[n / 2], test_ms[n * 9 / 10], median(run_ms, n),
		 fresh_text, test_ms[n / 2] - median(run_ms, n));
	return 0;
}

static int atex_boot(struct sample *s, const struct conf *c, int n, bool wait,
		     bool tests, const char *work)
{
	struct atex_qemu_provisioner_options o =
		ATEX_QEMU_PROVISIONER_OPTIONS_INIT;
	atex_remote *remotes[8] = {0};
	atex_provisioner *p = NULL;
	double t0, self0, help0;
	long rss0;
	int rc, got = 0;

	o.image = c->image;
	o.kernel = c->kernel;
	o.initrd = c->initrd;
	o.cmdline = c->cmdline;
	o.count = n;
	o.memory_mib = c->memory;
	o.accel =
		strcmp(c->accel, "kvm") ? ATEX_VM_ACCEL_TCG : ATEX_VM_ACCEL_KVM;
	o.key = ATEX_VM_KEY_CREDENTIAL;
	o.identity = c->key;
	rc = atex_qemu_provisioner_new(&p, &o);
	if (!rc)
		rc = atex_provisioner_start(p);
	if (rc)
		goto out;
	memset(s, 0, sizeof(*s));
	rss0 = rss_kib();
	self0 = rusage_ms(RUSAGE_SELF);
	help0 = helpers_ms();
	t0 = atex_monotonic_ms();
	rc = atex_provisioner_provision(p, n);
	while (!rc && got < n)
		rc = atex_provisioner_get_remote(&remotes[got++], p, -1);
	if (rc) {
		got--;
		goto out;
	}
	s->boot_s = (atex_monotonic_ms() - t0) / 1e3;
	s->self_boot_ms = rusage_ms(RUSAGE_SELF) - self0;
	s->helpers_boot_ms = helpers_ms() - help0;
	s->rss_boot_kib = rss_kib() - rss0;
	if (wait) {
		self0 = rusage_ms(RUSAGE_SELF);
		help0 = helpers_ms();
		sleep((unsigned)c->wait_s);
		s->self_wait_ms = rusage_ms(RUSAGE_SELF) - self0;
		s->helpers_wait_ms = helpers_ms() - help0;
		s->rss_wait_kib = rss_kib() - rss0;
		s->waited = true;
	}
	if (tests)
		rc = bench_tests(c, atex_remote_connection(remotes[0]), work);
out:
	for (int i = 0; i < got; i++)
		atex_remote_release(remotes[i]);
	if (p && atex_provisioner_stop(p) && !rc)
		rc = ATEX_EEXTERNAL;
	atex_provisioner_free(p);
	return rc;
}

static void report_boot(int n, const double *bare, const double *ours, int runs)
{
	double b = median(bare, runs), a = median(ours, runs);
	double added = a - b, allowed = b * 0.1 > 2 ? b * 0.1 : 2;

	printf("boot to ssh, N=%d (%d run%s, median): bare QEMU %.1f s, atex "
	       "%.1f s: ratio %.3f, atex adds %+.1f s (%+.1f%%) [target: at "
	       "most +10%% or +2 s: %s]\n",
	       n, runs, runs > 1 ? "s" : "", b, a, a / b, added,
	       100 * added / b, added <= allowed ? "met" : "NOT met");
	printf("  runs: bare");
	for (int i = 0; i < runs; i++)
		printf(" %.1f", bare[i]);
	printf(" s; atex");
	for (int i = 0; i < runs; i++)
		printf(" %.1f", ours[i]);
	printf(" s\n");
}

static void report_cost(int n, const struct sample *s, int wait_s)
{
	printf("atex per VM, N=%d, while booting (%.1f s): CPU %.0f ms "
	       "(%.2f%% of a core), helper processes %.0f ms; RSS %+ld KiB\n",
	       n, s->boot_s, s->self_boot_ms / n,
	       100 * s->self_boot_ms / n / (s->boot_s * 1e3),
	       s->helpers_boot_ms / n, s->rss_boot_kib / n);
	if (!s->waited)
		return;
	double core = 100 * s->self_wait_ms / n / (wait_s * 1e3);
	double help = 100 * s->helpers_wait_ms / n / (wait_s * 1e3);
	double mib = s->rss_wait_kib / 1024.0 / n;

	printf("atex per VM, N=%d, while waiting (%d s): CPU %.2f%% of a core "
	       "[target < 1%%: %s], helper processes %.2f%%; RSS %+.2f MiB "
	       "[target < 2 MiB: %s]\n",
	       n, wait_s, core, core < 1 ? "met" : "NOT met", help, mib,
	       mib < 2 ? "met" : "NOT met");
}

static int usage(void)
{
	fprintf(stderr, "usage: vm [--runs1 N] [--runs2 N] [--wait S] "
			"[--tests N] [--accel tcg|kvm] [--memory MIB] "
			"[--bare PATH]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct conf c = {.bare = BENCH_SOURCE_DIR "/vm-bare.sh",
			 .accel = "tcg",
			 .runs1 = 3,
			 .runs2 = 1,
			 .wait_s = 10,
			 .tests = 20,
			 .memory = 1024};
	double bare1[16], ours1[16], bare2[16], ours2[16];
	struct sample s, first1 = {0}, first2 = {0};
	char work[] = "/tmp/atex-bench-vm-XXXXXX", cmd[4200];
	int rc = 1;

	/* Options come in pairs: NAME VALUE. */
	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return usage();
		if (!strcmp(argv[i], "--runs1"))
			c.runs1 = atoi(v);
		else if (!strcmp(argv[i], "--runs2"))
			c.runs2 = atoi(v);
		else if (!strcmp(argv[i], "--wait"))
			c.wait_s = atoi(v);
		else if (!strcmp(argv[i], "--tests"))
			c.tests = atoi(v);
		else if (!strcmp(argv[i], "--accel"))
			c.accel = v;
		else if (!strcmp(argv[i], "--memory"))
			c.memory = atoi(v);
		else if (!strcmp(argv[i], "--bare"))
			c.bare = v;
		else
			return usage();
	}
	if (c.runs1 < 1 || c.runs1 > 16 || c.runs2 < 0 || c.runs2 > 16 ||
	    c.wait_s < 1 || c.tests < 1 || c.memory < 128 ||
	    (strcmp(c.accel, "tcg") && strcmp(c.accel, "kvm")))
		return usage();
	c.image = getenv("ATEX_BENCH_VM_IMAGE");
	c.kernel = getenv("ATEX_BENCH_VM_KERNEL");
	c.initrd = getenv("ATEX_BENCH_VM_INITRD");
	c.cmdline = getenv("ATEX_BENCH_VM_CMDLINE");
	if (!c.image || !c.kernel || !c.initrd || !c.cmdline) {
		printf("vm skipped: ATEX_BENCH_VM_IMAGE, _KERNEL, _INITRD and "
		       "_CMDLINE are not set (eval the output of "
		       "tests/integration/vm-image.sh with ATEX_TEST_ renamed "
		       "ATEX_BENCH_, as bench/run-all.sh does)\n");
		return 0;
	}
	if (!mkdtemp(work))
		return 1;
	snprintf(c.key, sizeof(c.key), "%s/key", work);
	snprintf(cmd, sizeof(cmd), "ssh-keygen -q -t ed25519 -N '' -f '%s'",
		 c.key);
	if (system(cmd) != 0) {
		fprintf(stderr, "vm: ssh-keygen failed\n");
		goto out;
	}
	printf("vm: %s, accel %s, %d MiB per VM; runs: N=1 %d, N=2 %d "
	       "(bare and atex alternating); waiting measured over %d s\n",
	       c.image, c.accel, c.memory, c.runs1, c.runs2, c.wait_s);
	fflush(stdout);
	for (int i = 0; i < c.runs1; i++) {
		bare1[i] = bare_boot(&c, 1);
		if (bare1[i] < 0) {
			fprintf(stderr, "vm: the bare boot failed\n");
			goto out;
		}
		if (atex_boot(&s, &c, 1, i == 0, i == 0, work)) {
			fprintf(stderr, "vm: atex failed: %s\n",
				atex_error_last());
			goto out;
		}
		ours1[i] = s.boot_s;
		if (i == 0)
			first1 = s;
		fflush(stdout);
	}
	report_boot(1, bare1, ours1, c.runs1);
	for (int i = 0; i < c.runs2; i++) {
		bare2[i] = bare_boot(&c, 2);
		if (bare2[i] < 0) {
			fprintf(stderr, "vm: the bare boot failed\n");
			goto out;
		}
		if (atex_boot(&s, &c, 2, i == 0, false, work)) {
			fprintf(stderr, "vm: atex failed: %s\n",
				atex_error_last());
			goto out;
		}
		ours2[i] = s.boot_s;
		if (i == 0)
			first2 = s;
	}
	if (c.runs2)
		report_boot(2, bare2, ours2, c.runs2);
	report_cost(1, &first1, c.wait_s);
	if (c.runs2)
		report_cost(2, &first2, c.wait_s);
	fputs(per_test, stdout);
	rc = 0;
out:
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
	if (system(cmd) != 0)
		fprintf(stderr, "vm: cannot remove %s\n", work);
	return rc;
}
