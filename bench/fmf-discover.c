/*
 * fmf-discover - how fast atex_fmf_discover() reads a large fmf tree, and
 * how much memory it takes.
 *
 * The tree is generated fresh each time, shaped like a big real test
 * repository: 10,000 tests in 1,000 files over 100 suite directories, with
 * keys inherited through up to six levels (root, area, suite, sometimes a
 * nested suite, file, sometimes a group), merge suffixes (tag+, duration+,
 * environment+, adjust+: the rules of every level apply) and adjust rules
 * at every level. The adjust rules that
 * would drop tests (enabled: false) never match the benchmark context
 * (distro=fedora-40, arch=x86_64), so all 10,000 tests must be discovered;
 * anything else is a bug and the program exits 1.
 *
 * Each run happens in a forked child, so every run starts from the same
 * heap and the child's ru_maxrss (from wait4) is the peak of that run
 * alone. A forked child starts out with the parent's resident pages, so the
 * peak of a child that does nothing is printed as the baseline: the
 * difference is what discovery itself used.
 *
 * Usage: fmf-discover [--runs N] [--keep DIR]
 *   --keep DIR writes the tree into DIR and leaves it there, to compare
 *   with the Python fmf by hand (fmf ls --path DIR, tmt -r DIR tests ls).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atex/fmf.h"
#include "util/util.h"

#define AREAS		10
#define SUITES_PER_AREA 10
#define FILES_PER_SUITE 10
#define TESTS_PER_FILE	10
#define EXPECTED_TESTS                                                         \
	(AREAS * SUITES_PER_AREA * FILES_PER_SUITE * TESTS_PER_FILE)
/* The last suites of an area live inside the one before them. */
#define FIRST_NESTED_SUITE 7
#define NESTING_PARENT	   (FIRST_NESTED_SUITE - 1)

static const char *const file_names[FILES_PER_SUITE] = {
	"network", "storage", "login",	 "packages", "services",
	"kernel",  "selinux", "upgrade", "locale",   "smoke",
};

/* ------------------------------------------------------------------------
 * The tree generator. Every writer appends YAML to a buffer; write_file()
 * puts it on disk.
 */

static int write_file(const char *dir, const char *name,
		      const struct atex_buf *content)
{
	char *path = atex_path_join(dir, name);
	FILE *f = NULL;
	int rc = ATEX_ENOMEM;

	if (!path)
		goto out;
	rc = 0;
	f = fopen(path, "w");
	if (!f || fwrite(content->ptr, 1, content->len, f) != content->len)
		rc = atex_error_set(ATEX_EIO, "%s: cannot write: %s", path,
				    strerror(errno));
	if (f && fclose(f) != 0 && rc == 0)
		rc = atex_error_set(ATEX_EIO, "%s: cannot write: %s", path,
				    strerror(errno));
out:
	free(path);
	return rc;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	return atex_error_set(ATEX_EIO, "%s: cannot create: %s", path,
			      strerror(errno));
}

/* The root: the fmf marker and keys every test inherits. */
static int write_root(const char *root)
{
	struct atex_buf b = ATEX_BUF_INIT;
	char *marker = atex_path_join(root, ".fmf");
	int rc = ATEX_ENOMEM;

	if (!marker)
		goto out;
	rc = make_dir(marker);
	if (rc == 0)
		rc = atex_buf_puts(&b, "1\n");
	if (rc == 0)
		rc = write_file(marker, "version", &b);
	atex_buf_clear(&b);
	if (rc == 0)
		rc = atex_buf_puts(&b, "framework: shell\n"
				       "duration: 5m\n"
				       "tag: [bench]\n"
				       "require: [bash]\n"
				       "environment:\n"
				       "    BENCH: '1'\n");
	if (rc == 0)
		rc = write_file(root, "main.fmf", &b);
out:
	atex_buf_free(&b);
	free(marker);
	return rc;
}

static int write_area_main(const char *dir, int area)
{
	struct atex_buf b = ATEX_BUF_INIT;
	int rc;

	rc = atex_buf_printf(&b,
			     "contact: [Team %d <team-%d@example.com>]\n"
			     "component: [component-%d]\n"
			     "tag+: [area-%d]\n"
			     "environment+:\n"
			     "    AREA: area-%d\n"
			     "adjust:\n"
			     "  - when: distro == fedora-40\n"
			     "    tag+: [f40]\n"
			     "  - when: distro == rhel-8\n"
			     "    enabled: false\n"
			     "    because: not shipped there\n",
			     area, area, area, area, area);
	if (rc == 0)
		rc = write_file(dir, "main.fmf", &b);
	atex_buf_free(&b);
	return rc;
}

static int write_suite_main(const char *dir, int area, int suite)
{
	struct atex_buf b = ATEX_BUF_INIT;
	int rc;

	rc = atex_buf_printf(
		&b,
		"summary: Suite %d of area %d\n"
		"tag+: [suite-%d]\n"
		"tier: '%d'\n"
		"duration: %dm\n"
		"require+: [coreutils, suite-%d-tools]\n"
		"environment+:\n"
		"    SUITE: suite-%d-%d\n"
		"    MODE: fast\n"
		"adjust+:\n"
		"  - when: distro == fedora and arch == x86_64\n"
		"    tag+: [fedora-x86]\n"
		"    environment+:\n"
		"        FEDORA: '1'\n"
		"  - when: arch != x86_64\n"
		"    enabled: false\n"
		"    because: only x86_64 machines in the lab\n"
		"    continue: false\n"
		"  - when: distro < fedora-41 or distro == centos-stream-9\n"
		"    duration+: ' *2'\n",
		suite, area, suite, suite % 3 + 1, 10 + suite, suite, area,
		suite);
	if (rc == 0)
		rc = write_file(dir, "main.fmf", &b);
	atex_buf_free(&b);
	return rc;
}

/* One test node, indented by `indent` spaces. */
static int put_test(struct atex_buf *b, int indent, int file, int test)
{
	int rc;

	rc = atex_buf_printf(b,
			     "%*s/test-%d:\n"
			     "%*s    summary: Check %s feature %d\n"
			     "%*s    test: ./runtest.sh %d\n"
			     "%*s    tag+: [%s-%d, %s]\n",
			     indent, "", test, indent, "", file_names[file],
			     test, indent, "", test, indent, "",
			     file_names[file], test, test % 2 ? "odd" : "even");
	if (rc == 0 && test % 4 == 1)
		rc = atex_buf_printf(b, "%*s    duration: %dm\n", indent, "",
				     5 * test);
	if (rc == 0 && test % 5 == 2)
		rc = atex_buf_printf(b,
				     "%*s    adjust+:\n"
				     "%*s      - when: arch == x86_64\n"
				     "%*s        tag+: [x86]\n"
				     "%*s        environment+:\n"
				     "%*s            ARCH_ONLY: '1'\n",
				     indent, "", indent, "", indent, "", indent,
				     "", indent, "");
	return rc;
}

/*
 * A NAME.fmf file with TESTS_PER_FILE tests. In every third file the second
 * half sits under a /group node, one more level of inheritance.
 */
static int write_test_file(const char *dir, int file)
{
	struct atex_buf b = ATEX_BUF_INIT;
	char *name = atex_sprintf("%s.fmf", file_names[file]);
	bool grouped = file % 3 == 0;
	int rc = ATEX_ENOMEM;

	if (!name)
		goto out;
	rc = atex_buf_printf(&b, "summary: The %s tests\ntag+: [%s]\n",
			     file_names[file], file_names[file]);
	for (int t = 0; rc == 0 && t < TESTS_PER_FILE; t++) {
		bool in_group = grouped && t >= TESTS_PER_FILE / 2;

		if (in_group && t == TESTS_PER_FILE / 2)
			rc = atex_buf_puts(&b, "/group:\n"
					       "    tag+: [grouped]\n"
					       "    environment+:\n"
					       "        GROUP: '1'\n");
		if (rc == 0)
			rc = put_test(&b, in_group ? 4 : 0, file, t);
	}
	if (rc == 0)
		rc = write_file(dir, name, &b);
out:
	atex_buf_free(&b);
	free(name);
	return rc;
}

static int write_suite(const char *dir, int area, int suite)
{
	int rc = make_dir(dir);

	if (rc == 0)
		rc = write_suite_main(dir, area, suite);
	for (int f = 0; rc == 0 && f < FILES_PER_SUITE; f++)
		rc = write_test_file(dir, f);
	return rc;
}

/* area-A/suite-S, or area-A/suite-6/suite-S for the nested suites. */
static char *suite_dir(const char *area_dir, int suite)
{
	if (suite < FIRST_NESTED_SUITE)
		return atex_sprintf("%s/suite-%d", area_dir, suite);
	return atex_sprintf("%s/suite-%d/suite-%d", area_dir, NESTING_PARENT,
			    suite);
}

static int write_area(const char *root, int area)
{
	char *dir = atex_sprintf("%s/area-%d", root, area);
	int rc = ATEX_ENOMEM;

	if (!dir)
		goto out;
	rc = make_dir(dir);
	if (rc == 0)
		rc = write_area_main(dir, area);
	/* In order: a nested suite's parent directory must exist first. */
	for (int s = 0; rc == 0 && s < SUITES_PER_AREA; s++) {
		char *sdir = suite_dir(dir, s);

		rc = sdir ? write_suite(sdir, area, s) : ATEX_ENOMEM;
		free(sdir);
	}
out:
	free(dir);
	return rc;
}

static int generate_tree(const char *root)
{
	int rc = write_root(root);

	for (int a = 0; rc == 0 && a < AREAS; a++)
		rc = write_area(root, a);
	return rc;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	if (remove(path) != 0)
		fprintf(stderr, "fmf-discover: cannot remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

static void remove_tree(const char *root)
{
	nftw(root, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------------
 * The measurement.
 */

/* What a child reports through its pipe: one write, below PIPE_BUF. */
struct run_result {
	int rc;
	size_t tests;
	double ms;
	char error[1024];
};

struct run {
	struct run_result result;
	long maxrss_kib;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The child's work: one discovery, timed, reported through `fd`. */
static void discover_once(int fd, const char *root, const atex_fmf_context *ctx)
{
	struct atex_fmf_discover_options opts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct run_result r = {0};
	atex_fmf_discovery *d = NULL;
	double start;

	opts.context = ctx;
	start = now_ms();
	r.rc = atex_fmf_discover(&d, root, &opts);
	r.ms = now_ms() - start;
	if (r.rc == 0)
		r.tests = atex_fmf_discovery_count(d);
	else
		snprintf(r.error, sizeof(r.error), "%s", atex_error_last());
	atex_fmf_discovery_free(d);
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(2);
}

/*
 * Forks a child running discovery (or nothing, for the baseline, when
 * `root` is NULL) and collects its result and peak memory.
 */
static int measure(struct run *run, const char *root,
		   const atex_fmf_context *ctx)
{
	struct rusage usage;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	memset(run, 0, sizeof(*run));
	if (pipe(fds) != 0)
		return atex_error_set(ATEX_EIO, "pipe: %s", strerror(errno));
	fflush(NULL); /* the child must not flush the parent's output too */
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return atex_error_set(ATEX_EIO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		if (root)
			discover_once(fds[1], root, ctx);
		_exit(0);
	}
	close(fds[1]);
	n = root ? read(fds[0], &run->result, sizeof(run->result)) : 0;
	close(fds[0]);
	if (wait4(pid, &status, 0, &usage) != pid)
		return atex_error_set(ATEX_EIO, "wait4: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    (root && n != (ssize_t)sizeof(run->result)))
		return atex_error_set(ATEX_ERROR, "the child died (status %#x)",
				      status);
	run->maxrss_kib = usage.ru_maxrss;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *values, int n)
{
	qsort(values, (size_t)n, sizeof(*values), cmp_double);
	return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

static int make_context(atex_fmf_context **out)
{
	int rc = atex_fmf_context_new(out);

	if (rc == 0)
		rc = atex_fmf_context_set(*out, "distro", "fedora-40");
	if (rc == 0)
		rc = atex_fmf_context_set(*out, "arch", "x86_64");
	return rc;
}

/* Runs the benchmark; 0 when every run found every test. */
static int bench(const char *root, int runs)
{
	atex_fmf_context *ctx = NULL;
	struct run baseline = {0}, run = {0};
	double *ms = calloc((size_t)runs, sizeof(*ms));
	long peak_kib = 0;
	int rc = ATEX_ENOMEM;

	if (!ms)
		goto out;
	rc = make_context(&ctx);
	if (rc == 0)
		rc = measure(&baseline, NULL, NULL);
	for (int i = 0; rc == 0 && i < runs; i++) {
		rc = measure(&run, root, ctx);
		if (rc == 0 && run.result.rc != 0)
			rc = atex_error_set(run.result.rc < 0 ? run.result.rc
							      : ATEX_ERROR,
					    "%s", run.result.error);
		if (rc < 0)
			break;
		printf("run %d: %8.1f ms  %zu tests  maxrss %ld KiB\n", i + 1,
		       run.result.ms, run.result.tests, run.maxrss_kib);
		ms[i] = run.result.ms;
		if (run.maxrss_kib > peak_kib)
			peak_kib = run.maxrss_kib;
		if (run.result.tests != EXPECTED_TESTS)
			rc = atex_error_set(ATEX_ERROR,
					    "discovered %zu tests, expected %d",
					    run.result.tests, EXPECTED_TESTS);
	}
	if (rc < 0)
		goto out;
	printf("tests discovered: %zu\n", run.result.tests);
	printf("median wall time: %.1f ms over %d runs\n", median(ms, runs),
	       runs);
	printf("peak memory (ru_maxrss): %ld KiB; a child doing nothing: "
	       "%ld KiB; discovery: %ld KiB\n",
	       peak_kib, baseline.maxrss_kib, peak_kib - baseline.maxrss_kib);
out:
	atex_fmf_context_free(ctx);
	free(ms);
	return rc;
}

/* ------------------------------------------------------------------------
 * Command line.
 */

struct options {
	int runs;
	const char *keep;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: fmf-discover [--runs N] [--keep DIR]\n"
		   "  --runs N    discovery runs to time (default 7)\n"
		   "  --keep DIR  generate the tree in DIR and keep it\n");
}

static int parse_args(struct options *o, int argc, char **argv)
{
	o->runs = 7;
	o->keep = NULL;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(arg, "--runs") && strcmp(arg, "--keep"))
			return atex_error_set(ATEX_EINVAL, "unknown option %s",
					      arg);
		if (!value)
			return atex_error_set(ATEX_EINVAL, "%s needs a value",
					      arg);
		i++;
		if (!strcmp(arg, "--keep")) {
			o->keep = value;
			continue;
		}
		errno = 0;
		o->runs = (int)strtol(value, &end, 10);
		if (errno || *end || end == value || o->runs < 1 ||
		    o->runs > 1000)
			return atex_error_set(ATEX_EINVAL,
					      "--runs: bad count '%s'", value);
	}
	return 0;
}

/* The tree's root: DIR for --keep, else a new temporary directory. */
static char *prepare_root(const struct options *o)
{
	char *root;

	if (!o->keep) {
		const char *tmp = getenv("TMPDIR");

		root = atex_sprintf("%s/atex-bench-XXXXXX", tmp ? tmp : "/tmp");
		if (root && !mkdtemp(root)) {
			atex_error_set(ATEX_EIO, "%s: %s", root,
				       strerror(errno));
			free(root);
			return NULL;
		}
		return root;
	}
	if (make_dir(o->keep) < 0)
		return NULL;
	return atex_path_abspath(o->keep);
}

int main(int argc, char **argv)
{
	struct options o;
	char *root = NULL;
	double start;
	int rc;

	rc = parse_args(&o, argc, argv);
	if (rc < 0) {
		fprintf(stderr, "fmf-discover: %s\n", atex_error_last());
		usage(stderr);
		return 2;
	}
	root = prepare_root(&o);
	if (!root) {
		rc = atex_error_last_code();
		goto out;
	}
	start = now_ms();
	rc = generate_tree(root);
	if (rc < 0)
		goto out;
	printf("tree: %s (%d suites, %d files, %d tests; generated in "
	       "%.0f ms)\n",
	       root, AREAS * SUITES_PER_AREA,
	       AREAS * SUITES_PER_AREA * FILES_PER_SUITE, EXPECTED_TESTS,
	       now_ms() - start);
	rc = bench(root, o.runs);
out:
	if (rc < 0)
		fprintf(stderr, "fmf-discover: %s\n", atex_error_last());
	if (root && !o.keep)
		remove_tree(root);
	free(root);
	return rc < 0 ? 1 : 0;
}
