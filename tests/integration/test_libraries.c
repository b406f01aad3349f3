/*
 * test_libraries.c - fmf (BeakerLib) libraries in `require`/`recommend`
 * (src/executor/library.c), over the local connection.
 *
 * The fixtures are $ATEX_TEST_TREES/libraries: copied into a temporary
 * directory, where repos/openssl and repos/helpers become git repositories
 * (openssl with a "devel" branch) and @REPOS@ in the tests trees becomes
 * their path. Nothing touches the network: `library(REPO/LIB)` means
 * https://github.com/beakerlib/REPO, which a git configuration of the
 * test's own (GIT_CONFIG_GLOBAL, url.<base>.insteadOf) turns into a local
 * file:// url. Each fixture test finds its libraries as BeakerLib's
 * rlImport would ($BEAKERLIB_LIBRARY_PATH/REPO/LIB/lib.sh) and fails
 * otherwise.
 *
 * Needs git, and root for apt-get (a library requiring a package that
 * does not exist must end its test as "infra" naming the package).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/connection.h"
#include "atex/executor.h"
#include "atex/fmf.h"
#include "helpers.h"

static struct {
	char base[64]; /* /tmp/atex-libtest-XXXXXX */
	char tmp[128]; /* BASE/tmp: TMPDIR (stages, caches) */
	char trees[PATH_MAX];
	atex_connection *conn;
	unsigned long runs;
} g;

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL;
	int rc;

	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fail_msg("command failed (%d): %s", rc, cmd);
	free(cmd);
}

/* Entries of `dir` starting with `prefix` (and not ending in .lock or
 * .done when `clones`). */
static int count_entries(const char *dir, const char *prefix, bool clones)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (strncmp(e->d_name, prefix, strlen(prefix)) ||
		    !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (clones && len > 5 &&
		    (!strcmp(e->d_name + len - 5, ".lock") ||
		     !strcmp(e->d_name + len - 5, ".done")))
			continue;
		n++;
	}
	closedir(d);
	return n;
}

static int setup_all(void **state)
{
	const char *trees = getenv("ATEX_TEST_TREES");
	char *path;

	(void)state;
	assert_non_null(trees);
	snprintf(g.base, sizeof(g.base), "/tmp/atex-libtest-XXXXXX");
	assert_non_null(mkdtemp(g.base));
	snprintf(g.tmp, sizeof(g.tmp), "%s/tmp", g.base);
	assert_int_equal(mkdir(g.tmp, 0755), 0);
	setenv("TMPDIR", g.tmp, 1);
	unsetenv("ATEX_LIBRARY_CACHE");
	unsetenv("BEAKERLIB_LIBRARY_PATH");
	sh("cp -a '%s/libraries/.' '%s/'", trees, g.base);
	/* Git repositories of the library fixtures; openssl's "devel"
	 * branch changes certgen's version. */
	sh("cd '%s/repos' && for r in openssl helpers; do "
	   "git -C $r init -q -b main && git -C $r add -A && "
	   "git -C $r -c user.name=t -c user.email=t@t commit -q -m one "
	   "|| exit 1; done && ln -s helpers helpers.git && "
	   "git -C openssl checkout -q -b devel && "
	   "echo certgen_version=devel >openssl/certgen/lib.sh && "
	   "git -C openssl -c user.name=t -c user.email=t@t "
	   "commit -q -am devel && git -C openssl checkout -q main",
	   g.base);
	/* A chain of 40 libraries, l0 requiring l1 and so on. */
	sh("cd '%s/repos' && mkdir -p chain/.fmf && echo 1 >chain/.fmf/version "
	   "&& for i in $(seq 0 39); do mkdir chain/l$i && "
	   "echo \"require: [library(chain/l$((i + 1)))]\" "
	   ">chain/l$i/main.fmf || exit 1; done && git -C chain init -q -b "
	   "main "
	   "&& git -C chain add -A && "
	   "git -C chain -c user.name=t -c user.email=t@t commit -q -m one",
	   g.base);
	sh("sed -i 's|@REPOS@|%s/repos|g' '%s/tests/main.fmf'", g.base, g.base);
	/* library(REPO/LIB) is fetched from these, not from GitHub. */
	path = xsprintf("%s/gitconfig", g.base);
	sh("git config -f '%s' url.'file://%s/repos/'.insteadOf "
	   "https://github.com/beakerlib/",
	   path, g.base);
	setenv("GIT_CONFIG_GLOBAL", path, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	free(path);
	snprintf(g.trees, sizeof(g.trees), "%s", g.base);
	assert_int_equal(atex_local_connection_new(&g.conn, NULL), 0);
	return 0;
}

static int teardown_all(void **state)
{
	(void)state;
	atex_connection_free(g.conn);
	if (g.base[0])
		sh("rm -rf '%s'", g.base);
	return 0;
}

struct session {
	atex_fmf_discovery *disc;
	atex_executor *e;
};

static void session_open(struct session *s, const char *tree,
			 const atex_fmf_stage *stage)
{
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	char *root = xsprintf("%s/%s", g.base, tree);
	int rc;

	dopts.plan = "/plan";
	rc = atex_fmf_discover(&s->disc, root, &dopts);
	if (rc)
		fail_msg("discover %s: %s", root, atex_error_last());
	eopts.connection = g.conn;
	eopts.discovery = s->disc;
	eopts.stage = stage;
	assert_int_equal(atex_fmf_executor_new(&s->e, &eopts), 0);
	rc = atex_executor_start(s->e);
	if (rc)
		fail_msg("start %s: %d: %s", root, rc, atex_error_last());
	free(root);
}

static void session_close(struct session *s)
{
	assert_int_equal(atex_executor_stop(s->e), 0);
	atex_executor_free(s->e);
	atex_fmf_discovery_free(s->disc);
}

/* Runs one test; its one result (the last line of ARTIFACTS/results). */
static json_t *run(struct session *s, const char *name)
{
	char *dir = xsprintf("%s/art-%lu", g.base, ++g.runs);
	char *results = xsprintf("%s/results", dir);
	char line[65536], last[65536] = "";
	json_t *result;
	FILE *f;

	assert_int_equal(mkdir(dir, 0755), 0);
	/* 0 even for a library that cannot be fetched: the test's
	 * requirement failed, not the system. */
	if (atex_executor_run_test(s->e, name, dir, NULL, NULL) != 0)
		fail_msg("%s: run_test: %s", name, atex_error_last());
	f = fopen(results, "r");
	if (!f)
		fail_msg("%s: no results file", name);
	while (fgets(line, sizeof(line), f))
		memcpy(last, line, sizeof(line));
	fclose(f);
	result = json_loads(last, 0, NULL);
	if (!result)
		fail_msg("%s: bad result line: %s", name, last);
	free(dir);
	free(results);
	return result;
}

static void expect(struct session *s, const char *name, const char *status,
		   const char *const *in_note)
{
	json_t *r = run(s, name);
	const char *got = json_string_value(json_object_get(r, "status"));
	const char *note = json_string_value(json_object_get(r, "note"));

	if (!got || strcmp(got, status))
		fail_msg("%s: status %s, expected %s (note: %s)", name, got,
			 status, note ? note : "none");
	for (; in_note && *in_note; in_note++)
		if (!note || !strstr(note, *in_note))
			fail_msg("%s: note '%s' does not say '%s'", name,
				 note ? note : "", *in_note);
	json_decref(r);
}

#define NOTE(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Every form, recursion, refs, paths, and errors that fail their test
 * only, the others going on; the temporary clone cache is gone after. */
static void test_forms_and_errors(void **state)
{
	struct session s;

	(void)state;
	session_open(&s, "tests", NULL);
	expect(&s, "/simple", "pass", NULL);
	expect(&s, "/simple_string", "pass", NULL);
	expect(&s, "/recommended", "pass", NULL);
	expect(&s, "/recommended_missing", "pass", NULL);
	expect(&s, "/fmf_id_ref", "pass", NULL);
	expect(&s, "/fmf_id_url", "pass", NULL);
	expect(&s, "/path", "pass", NULL);
	expect(&s, "/nick_only", "pass", NULL);
	expect(&s, "/no_libraries", "pass", NULL);
	expect(&s, "/loop", "pass", NULL);
	expect(&s, "/conflict", "pass", NULL);
	{
		/* The local connection passes our environment on. */
		char *fake = xsprintf("%s/../beakerlib-fake",
				      getenv("ATEX_TEST_TREES"));

		setenv("BEAKERLIB", fake, 1);
		expect(&s, "/rlimport", "pass", NULL);
		unsetenv("BEAKERLIB");
		free(fake);
	}
	/* openssl/broken -> helpers/needs-missing -> a missing package. */
	expect(&s, "/missing_package", "infra",
	       NOTE("atex-no-such-package-xyz"));
	expect(&s, "/missing_repo", "error",
	       NOTE("/missing_repo: ", "library 'nope/x'", "git clone failed",
		    "repos/nope"));
	expect(&s, "/missing_ref", "error",
	       NOTE("/missing_ref: ", "library 'openssl-other/certgen'",
		    "git checkout failed", "no-such-ref"));
	expect(&s, "/missing_node", "error",
	       NOTE("library 'openssl/nonexistent'", "/nonexistent"));
	expect(&s, "/bad_type", "error",
	       NOTE("/bad_type: require: unknown type 'banana'"));
	expect(&s, "/bad_nothing", "error",
	       NOTE("/bad_nothing: require: needs 'url', 'path' or 'nick'"));
	expect(&s, "/bad_key", "error",
	       NOTE("/bad_key: recommend: unknown key 'destination'"));
	expect(&s, "/bad_scalar", "error",
	       NOTE("/bad_scalar: require: entry 42 is neither"));
	expect(&s, "/bad_simple", "error",
	       NOTE("/bad_simple: 'library(nolibrary)': not a library"));
	expect(&s, "/bad_simple_dotdot", "error",
	       NOTE("/bad_simple_dotdot: 'library(../x)': bad library name"));
	expect(&s, "/bad_nick", "error",
	       NOTE("/bad_nick: require: bad nick '../../esc'"));
	expect(&s, "/missing_path", "error",
	       NOTE("/missing_path: library 'nothere/x': path '",
		    "repos/nothere' is not a directory"));
	expect(&s, "/too_deep", "error",
	       NOTE("/too_deep: libraries nest deeper than 32: chain/l0 -> "
		    "chain/l1 -> ",
		    "-> chain/l32 -> chain/l33"));
	expect(&s, "/bad_name", "error",
	       NOTE("/bad_name: require: name 'thing' does not start"));
	/* Still fine after the failures. */
	expect(&s, "/simple", "pass", NULL);
	session_close(&s);
	if (count_entries(g.tmp, "", false) != 0)
		fail_msg("%s is not empty after the session (a stage or a "
			 "clone cache left)",
			 g.tmp);
}

/* Libraries are staged with the tests: a shared stage serves many
 * executors with one fetch. */
static void test_shared_stage(void **state)
{
	atex_fmf_discovery *d;
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_stage *st = NULL;
	char *root = xsprintf("%s/parallel", g.base);
	struct session a, b;

	(void)state;
	dopts.plan = "/plan";
	assert_int_equal(atex_fmf_discover(&d, root, &dopts), 0);
	if (atex_fmf_stage_new(&st, d))
		fail_msg("stage: %s", atex_error_last());
	session_open(&a, "parallel", NULL);
	session_close(&a);
	/* Two executors on one stage (the same discovery). */
	{
		struct atex_fmf_executor_options eopts =
			ATEX_FMF_EXECUTOR_OPTIONS_INIT;

		eopts.connection = g.conn;
		eopts.discovery = d;
		eopts.stage = st;
		b.disc = NULL;
		assert_int_equal(atex_fmf_executor_new(&b.e, &eopts), 0);
		assert_int_equal(atex_executor_start(b.e), 0);
		expect(&b, "/uses", "pass", NULL);
		assert_int_equal(atex_executor_stop(b.e), 0);
		atex_executor_free(b.e);
		assert_int_equal(atex_fmf_executor_new(&b.e, &eopts), 0);
		assert_int_equal(atex_executor_start(b.e), 0);
		expect(&b, "/uses", "pass", NULL);
		assert_int_equal(atex_executor_stop(b.e), 0);
		atex_executor_free(b.e);
	}
	atex_fmf_stage_free(st);
	atex_fmf_discovery_free(d);
	free(root);
}

/* Two executors staging on their own at the same time, with one clone
 * cache ($ATEX_LIBRARY_CACHE): a git that clones slowly (a shim first on
 * PATH, logging each clone) must still clone once, the other waiting on
 * the lock and reusing the clone. */
struct starter {
	struct session s;
	int rc;
};

static void *start_one(void *arg)
{
	struct starter *st = arg;
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	char root[PATH_MAX];

	snprintf(root, sizeof(root), "%s/parallel", g.base);
	dopts.plan = "/plan";
	st->rc = atex_fmf_discover(&st->s.disc, root, &dopts);
	if (st->rc)
		return NULL;
	eopts.connection = g.conn;
	eopts.discovery = st->s.disc;
	st->rc = atex_fmf_executor_new(&st->s.e, &eopts);
	if (!st->rc)
		st->rc = atex_executor_start(st->s.e);
	return NULL;
}

static void test_parallel_cache(void **state)
{
	char *cache = xsprintf("%s/cache", g.base);
	char *bin = xsprintf("%s/bin", g.base);
	char *log = xsprintf("%s/clones.log", g.base);
	char *path = xsprintf("%s:%s", bin, getenv("PATH"));
	char *old_path = strdup(getenv("PATH"));
	struct starter st[2] = {0};
	pthread_t th[2];
	char line[4096];
	int clones = 0;
	FILE *f;

	(void)state;
	sh("mkdir -p '%s' && real=$(command -v git) && "
	   "printf '#!/bin/sh\\ncase \" $* \" in *\" clone \"*) "
	   "echo \"$*\" >>%s; sleep 1;; esac\\nexec %%s \"$@\"\\n' "
	   "\"$real\" >'%s/git' && chmod +x '%s/git'",
	   bin, log, bin, bin);
	setenv("PATH", path, 1);
	setenv("ATEX_LIBRARY_CACHE", cache, 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, start_one, &st[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	setenv("PATH", old_path, 1);
	unsetenv("ATEX_LIBRARY_CACHE");
	for (int i = 0; i < 2; i++) {
		if (st[i].rc)
			fail_msg("start %d: %s", i, atex_error_last());
		expect(&st[i].s, "/uses", "pass", NULL);
		session_close(&st[i].s);
	}
	f = fopen(log, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		clones += !!strstr(line, "beakerlib/openssl ");
	fclose(f);
	if (clones != 1)
		fail_msg("openssl cloned %d times, expected once", clones);
	/* The cache stays (it is the user's), one clone per repository. */
	if (count_entries(cache, "openssl-", true) != 1 ||
	    count_entries(cache, "helpers-", true) != 1)
		fail_msg("%s: expected one openssl and one helpers clone",
			 cache);
	/* A cache pruned by hand (clones gone, KEY.done kept): fetched
	 * again, not "no directory" for ever. */
	sh("for d in '%s'/*; do [ -d \"$d\" ] && rm -rf \"$d\"; done; true",
	   cache);
	setenv("ATEX_LIBRARY_CACHE", cache, 1);
	{
		struct session s;

		session_open(&s, "parallel", NULL);
		expect(&s, "/uses", "pass", NULL);
		session_close(&s);
	}
	unsetenv("ATEX_LIBRARY_CACHE");
	free(cache);
	free(bin);
	free(log);
	free(path);
	free(old_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms_and_errors),
		cmocka_unit_test(test_shared_stage),
		cmocka_unit_test(test_parallel_cache),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
