/*
 * bench/executor.c - what one test costs the executor: N trivial tests
 * (`true`) run one after another through atex_executor_run_test, reporting
 * the median and 90th percentile wall time per test and the CPU time per
 * test spent by this process and by its children.
 *
 * Why: an orchestrator driving 100+ systems from one 2-core machine is
 * bound by what atex spends per test locally (processes spawned, bytes
 * copied, parsing), not by the systems. Over ssh the children are exactly
 * atex's local cost (one mux client per test; the test runs on the
 * server); over the local connection they also include the test itself
 * and its wrapper.
 *
 * Over the local connection also N BeakerLib-framework tests
 * (`framework: beakerlib`, one phase with one rlRun, against the fake
 * BeakerLib of tests/integration/beakerlib-fake): what reading the
 * journal and reporting the phase adds to a test.
 *
 * usage: executor [--tests N] [--only local|ssh|podman] [--compat]
 * (--compat: compat_python_atex, as the Python package's FMFExecutor)
 * ssh and podman use the server and container named by the environment,
 * as bench/connection does (bench/connections.h); without them they are
 * skipped, with the reason printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atex/atex.h"
#include "connections.h"
#include "util/util.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double cpu_ms(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
	       ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}

/* A tree of n tests /t0000 ... in one file, and n BeakerLib tests
 * /bl/t0000 ... after them. */
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
	fputs("/bl:\n  framework: beakerlib\n  test: ./bl.sh\n", f);
	for (int i = 0; i < n; i++)
		fprintf(f, "  /t%04d:\n", i);
	fclose(f);
	snprintf(path, sizeof(path), "%s/bl.sh", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs("#!/bin/bash\n. \"$BEAKERLIB/beakerlib.sh\" || exit 1\n"
	      "rlJournalStart\nrlPhaseStartTest\nrlRun true\nrlPhaseEnd\n"
	      "rlJournalEnd\n",
	      f);
	fclose(f);
	return chmod(path, 0755);
}

/* --compat: Python ATEX's results rules, as the Python package runs. */
static bool compat;

/* Runs the tests PREFIX/t0000 ... of disc with env. */
static int bench(const char *name, int (*open)(atex_connection **),
		 atex_fmf_discovery *disc, const char *work, int n,
		 const char *prefix, const char *const *env)
{
	char test[64];
	struct atex_fmf_executor_options o = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	atex_connection *conn = NULL;
	atex_executor *exec = NULL;
	double *ms = calloc((size_t)n, sizeof(*ms));
	double self0, kids0, self, kids;
	char art[4096];
	int rc, code;

	rc = ms ? open(&conn) : ATEX_ENOMEM;
	if (!rc)
		rc = atex_connection_connect(conn, 30000, NULL);
	o.connection = conn;
	o.discovery = disc;
	o.compat_python_atex = compat;
	if (!rc)
		rc = atex_fmf_executor_new(&exec, &o);
	if (!rc)
		rc = atex_executor_start(exec);
	if (rc) {
		printf("%-9s skipped: %s\n", name, atex_error_last());
		goto out;
	}
	self0 = cpu_ms(RUSAGE_SELF);
	kids0 = cpu_ms(RUSAGE_CHILDREN);
	for (int i = 0; i < n && !rc; i++) {
		double t0 = atex_monotonic_ms();

		snprintf(art, sizeof(art), "%s/art-%s/%d", work, name, i);
		snprintf(test, sizeof(test), "%s/t%04d", prefix, i);
		rc = atex_executor_run_test(exec, test, art, env, &code);
		ms[i] = atex_monotonic_ms() - t0;
	}
	self = cpu_ms(RUSAGE_SELF) - self0;
	kids = cpu_ms(RUSAGE_CHILDREN) - kids0;
	if (rc) {
		printf("%-9s failed: %s\n", name, atex_error_last());
		goto out;
	}
	qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
	printf("%-9s %d tests: wall median %.1f ms, p90 %.1f ms; CPU per "
	       "test: atex %.2f ms, children %.2f ms\n",
	       name, n, ms[n / 2], ms[n * 9 / 10], self / n, kids / n);
out:
	atex_executor_free(exec);
	atex_connection_free(conn);
	free(ms);
	return rc;
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	char work[] = "/tmp/atex-bench-exec-XXXXXX", cmd[4200];
	atex_fmf_discovery *disc = NULL;
	const char *bl_env[] = {"BEAKERLIB=" BENCH_SOURCE_DIR
				"/../tests/integration/beakerlib-fake",
				NULL};
	int n = 200, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tests") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--compat"))
			compat = true;
		else {
			fprintf(stderr,
				"usage: executor [--tests N] "
				"[--only local|ssh|podman] [--compat]\n");
			return 2;
		}
	}
	if (n < 1 || !mkdtemp(work) || make_tree(work, n) < 0 ||
	    atex_fmf_discover(&disc, work, NULL) < 0) {
		fprintf(stderr, "executor: setup failed: %s\n",
			atex_error_last());
		return 1;
	}
	if (!only || !strcmp(only, "local"))
		rc |= bench("local", bench_open_local, disc, work, n, "", NULL);
	if (!only || !strcmp(only, "local"))
		rc |= bench("local-bl", bench_open_local, disc, work, n, "/bl",
			    bl_env);
	if (!only || !strcmp(only, "ssh"))
		bench("ssh", bench_open_ssh, disc, work, n, "", NULL);
	if (!only || !strcmp(only, "podman"))
		bench("podman", bench_open_podman, disc, work, n, "", NULL);
	atex_fmf_discovery_free(disc);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", work);
	if (system(cmd) != 0)
		fprintf(stderr, "executor: cannot remove %s\n", work);
	return rc ? 1 : 0;
}
