/*
 * bench/connection.c - the latency of one command over a connection: N
 * runs of `true` through atex_connection_run, reporting the median and
 * the 90th percentile in milliseconds.
 *
 * The per-command overhead is what decides how fine-grained a test's
 * setup can be (a test suite runs thousands of small commands), so it is
 * measured end to end through the public API: spawn, the poll loop, the
 * reap. Each connection is one function taking an atex_connection *, so
 * ssh and podman are added by writing a constructor and one line in
 * `benches`; a connection that cannot be set up here is skipped with the
 * reason printed, never reported as zero.
 *
 * With --ballast MIB every connection is measured again with MIB of
 * memory touched in this process, in small pages as a program's heap
 * mostly is: a spawn that copies the address space (fork) grows with it,
 * one that shares it until the exec does not.
 *
 * usage: connection [--runs N] [--only NAME] [--ballast MIB]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "atex/connection.h"
#include "connections.h"
#include "util/util.h"

struct bench {
	const char *name;
	/* Makes the connection, or returns an error whose message is the
	 * reason to skip. */
	int (*open)(atex_connection **out);
};

static const struct bench benches[] = {
	{"local", bench_open_local},
	{"ssh", bench_open_ssh},
	{"podman", bench_open_podman},
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Runs `true` `runs` times over c; prints the figures. Returns 0, or the
 * error of the first failed run. */
static int bench_connection(atex_connection *c, const char *name, int runs,
			    const char *label)
{
	const char *argv[] = {"true", NULL};
	double *ms = atex_calloc((size_t)runs, sizeof(*ms));
	struct atex_run_result r;
	int rc = 0;

	if (!ms)
		return ATEX_ENOMEM;
	rc = atex_connection_connect(c, 30000, NULL);
	if (rc)
		goto out;
	for (int i = 0; i < runs; i++) {
		double t0 = atex_monotonic_ms();

		rc = atex_connection_run(&r, c, argv, NULL, 0, 30000, NULL);
		ms[i] = atex_monotonic_ms() - t0;
		if (!rc && (!WIFEXITED(r.status) || WEXITSTATUS(r.status)))
			rc = atex_error_set(ATEX_EEXTERNAL,
					    "%s: `true` exited with status %d",
					    name, r.status);
		atex_run_result_clear(&r);
		if (rc)
			goto out;
	}
	qsort(ms, (size_t)runs, sizeof(*ms), cmp_double);
	printf("%-8s%-14s runs %-5d median %7.3f ms   p90 %7.3f ms   "
	       "min %7.3f ms   max %7.3f ms\n",
	       name, label, runs, ms[runs / 2], ms[(runs * 9) / 10], ms[0],
	       ms[runs - 1]);
out:
	free(ms);
	return rc;
}

static int usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--runs N] [--only NAME] [--ballast MIB]\n",
		prog);
	return 2;
}

/* Measures every connection (or `only`) once; returns 1 when one failed. */
static int bench_all(const char *only, int runs, const char *label)
{
	int failed = 0;

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(benches); i++) {
		const struct bench *b = &benches[i];
		atex_connection *c = NULL;

		if (only && strcmp(only, b->name) != 0)
			continue;
		if (b->open(&c)) {
			printf("%-8s skipped: %s\n", b->name,
			       atex_error_last());
			continue;
		}
		if (bench_connection(c, b->name, runs, label)) {
			printf("%-8s failed: %s\n", b->name, atex_error_last());
			failed = 1;
		}
		atex_connection_free(c);
	}
	return failed;
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	int runs = 500, ballast = 0, failed;
	char label[32], *mem;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--ballast") == 0 && i + 1 < argc)
			ballast = atoi(argv[++i]);
		else
			return usage(argv[0]);
	}
	if (runs < 1 || ballast < 0)
		return usage(argv[0]);
	failed = bench_all(only, runs, "");
	if (!ballast)
		return failed;
	mem = mmap(NULL, (size_t)ballast << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "cannot allocate %d MiB\n", ballast);
		return 1;
	}
	/* Huge pages would make the copy 512 times cheaper. */
	madvise(mem, (size_t)ballast << 20, MADV_NOHUGEPAGE);
	memset(mem, 1, (size_t)ballast << 20);
	snprintf(label, sizeof(label), " +%d MiB", ballast);
	failed |= bench_all(only, runs, label);
	munmap(mem, (size_t)ballast << 20);
	return failed;
}
