/*
 * test_beakerlib.c - tmt's `framework: beakerlib` end to end over the
 * local connection (docs/PROTOCOL.md, "BeakerLib"), on
 * $ATEX_TEST_TREES/beakerlib with the fake BeakerLib of
 * tests/integration/beakerlib-fake (BEAKERLIB points there): the test's
 * result from TestResults (pass, fail, warn; an unfinished journal or none
 * is an error), each phase a subtest with its part of the journal as its
 * log, rlReport and rlFileSubmit through tmt's helpers, the journal files
 * uploaded, BEAKERLIB_DIR kept across a reboot (acted out: the local
 * connection cannot reboot; and over a connection of our own around it
 * that can, whose boot id is a file), rlImport, an unknown framework, and
 * BeakerLib missing (BEAKERLIB wrong; not installable).
 *
 * The results are compared exactly (json_equal, line by line; a "note" of
 * "~TEXT" means a note containing TEXT), files byte by byte or by a line
 * they must hold.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/connection.h"
#include "atex/executor.h"
#include "atex/fmf.h"
#include "helpers.h"

static struct {
	char tree[PATH_MAX];
	char fake[PATH_MAX]; /* BEAKERLIB=... */
	char base[64];	     /* the artifacts */
	atex_connection *conn;
	atex_fmf_discovery *disc;
	atex_executor *e;
	unsigned long runs;
} g;

/* Runs `test` on `e` (with BEAKERLIB=`beakerlib` unless NULL, and
 * `extra`, a NAME=VALUE); returns its artifacts directory (freed by the
 * caller) and its return code. */
static char *run_on(atex_executor *e, const char *test, const char *beakerlib,
		    const char *extra, int *rc)
{
	char *dir = xsprintf("%s/%lu", g.base, ++g.runs);
	char *var = beakerlib ? xsprintf("BEAKERLIB=%s", beakerlib) : NULL;
	const char *env[] = {var ? var : extra, var ? extra : NULL, NULL};
	int code = -1;

	*rc = atex_executor_run_test(e, test, dir, env, &code);
	free(var);
	return dir;
}

static char *run(const char *test, const char *beakerlib, int *rc)
{
	return run_on(g.e, test, beakerlib, NULL, rc);
}

/* The results of `dir` are exactly `want` (JSON lines, in order). */
static void results_are(const char *dir, const char *const *want)
{
	char *path = xsprintf("%s/results", dir);
	char *text = slurp(path, NULL);
	char *line, *save = NULL;
	size_t n = 0;

	if (!text)
		fail_msg("no %s", path);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++) {
		json_error_t err;
		json_t *got = json_loads(line, 0, &err), *exp;
		json_t *note;

		if (!want[n])
			fail_msg("%s: more results than expected: %s", path,
				 line);
		exp = json_loads(want[n], 0, &err);
		assert_non_null(got);
		if (!exp)
			fail_msg("bad expectation %s: %s", want[n], err.text);
		note = json_object_get(exp, "note");
		if (json_is_string(note) && json_string_value(note)[0] == '~') {
			const char *part = json_string_value(note) + 1;
			const char *have =
				json_string_value(json_object_get(got, "note"));

			if (!have || !strstr(have, part))
				fail_msg("%s: line %zu: note without '%s': %s",
					 path, n + 1, part, line);
			json_object_del(exp, "note");
			json_object_del(got, "note");
		}
		if (!json_equal(got, exp))
			fail_msg("%s: line %zu: got %s, want %s", path, n + 1,
				 line, want[n]);
		json_decref(got);
		json_decref(exp);
	}
	if (want[n])
		fail_msg("%s: %zu results, want more (%s)", path, n, want[n]);
	free(text);
	free(path);
}

/* File `name` of `dir` holds `part` (or is exactly `part`). */
static void file_has(const char *dir, const char *name, const char *part,
		     bool exact)
{
	char *path = xsprintf("%s/files/%s", dir, name);
	char *text = slurp(path, NULL);

	if (!text)
		fail_msg("no file %s", path);
	if (exact ? strcmp(text, part) != 0 : !strstr(text, part))
		fail_msg("%s: '%s' %s; it holds:\n%s", path, part,
			 exact ? "is not what it holds" : "is not in it", text);
	free(text);
	free(path);
}

static int setup(void **state)
{
	const char *trees = getenv("ATEX_TEST_TREES");
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;

	(void)state;
	if (!trees)
		return -1;
	snprintf(g.tree, sizeof(g.tree), "%s/beakerlib", trees);
	snprintf(g.fake, sizeof(g.fake), "%s/../beakerlib-fake", trees);
	snprintf(g.base, sizeof(g.base), "/tmp/atex-bltest-XXXXXX");
	if (!mkdtemp(g.base))
		return -1;
	dopts.plan = "/plan";
	if (atex_local_connection_new(&g.conn, NULL) ||
	    atex_connection_connect(g.conn, 10000, NULL) ||
	    atex_fmf_discover(&g.disc, g.tree, &dopts)) {
		fprintf(stderr, "setup: %s\n", atex_error_last());
		return -1;
	}
	eopts.connection = g.conn;
	eopts.discovery = g.disc;
	if (atex_fmf_executor_new(&g.e, &eopts) || atex_executor_start(g.e)) {
		fprintf(stderr, "start: %s\n", atex_error_last());
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char *rm;

	(void)state;
	if (g.e && atex_executor_stop(g.e))
		fprintf(stderr, "stop: %s\n", atex_error_last());
	atex_executor_free(g.e);
	atex_fmf_discovery_free(g.disc);
	atex_connection_free(g.conn);
	rm = xsprintf("rm -rf '%s'", g.base);
	if (system(rm) != 0)
		fprintf(stderr, "cannot remove %s\n", g.base);
	free(rm);
	return 0;
}

#define PHASE(status, name)                                                    \
	"{\"status\": \"" status "\", \"name\": \"" name                       \
	"\", \"files\": [\"resultoutputfile.log\"]}"
#define OWN(status)                                                            \
	"{\"status\": \"" status "\", \"files\": [\"output.txt\", "            \
	"\"TestResults\", \"journal.txt\", \"journal.xml\"]}"

/* All phases pass: pass; each phase a subtest with its asserts as its
 * log; the journal files and the output with the test's own result. */
static void test_pass(void **state)
{
	const char *want[] = {PHASE("pass", "Setup"),
			      PHASE("pass", "the-main-phase"),
			      PHASE("pass", "Cleanup"), OWN("pass"), NULL};
	int rc;
	char *dir = run("/pass", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, want);
	file_has(dir, "Setup/resultoutputfile.log",
		 "] :: [   PASS   ] :: Setting up (Expected 0, got 0)\n",
		 false);
	file_has(dir, "Setup/resultoutputfile.log", "::   RESULT: PASS (Setup)",
		 false);
	file_has(dir, "the-main-phase/resultoutputfile.log",
		 "] :: [   PASS   ] :: one is one (Assert: '1' should equal "
		 "'1')\n",
		 false);
	file_has(dir, "TestResults", "\nTESTRESULT_STATE=complete\n", false);
	file_has(dir, "journal.txt", "::   OVERALL RESULT: PASS (/pass)",
		 false);
	file_has(dir, "output.txt", "::   OVERALL RESULT: PASS (/pass)", false);
	free(dir);
}

/* The test's status is BeakerLib's overall result, not its exit code. */
static void test_fail_warn(void **state)
{
	const char *fail[] = {PHASE("pass", "Setup"),
			      PHASE("fail", "the-main-phase"),
			      PHASE("pass", "Cleanup"), OWN("fail"), NULL};
	const char *warn[] = {PHASE("warn", "Setup"),
			      PHASE("pass", "the-main-phase"),
			      PHASE("pass", "Cleanup"), OWN("warn"), NULL};
	int rc;
	char *dir = run("/fail", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, fail);
	file_has(dir, "the-main-phase/resultoutputfile.log",
		 "] :: [   FAIL   ] :: Running false (Expected 0, got 1)\n",
		 false);
	free(dir);
	dir = run("/warn", g.fake, &rc);
	assert_int_equal(rc, 0);
	results_are(dir, warn);
	free(dir);
}

/* No rlJournalEnd: the state is not "complete", an error saying so, as
 * tmt's; no TestResults at all: an error too. */
static void test_unfinished(void **state)
{
	const char *want[] = {
		PHASE("pass", "Setup"), PHASE("pass", "the-main-phase"),
		"{\"status\": \"error\", \"note\": \"beakerlib: State "
		"'incomplete'\", \"files\": [\"output.txt\", \"TestResults\", "
		"\"journal.txt\"]}",
		NULL};
	const char *none[] = {"{\"status\": \"error\", \"note\": \"beakerlib: "
			      "TestResults FileError\", \"files\": "
			      "[\"output.txt\"]}",
			      NULL};
	int rc;
	char *dir = run("/unfinished", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, want);
	file_has(dir, "TestResults", "\nTESTRESULT_STATE=incomplete\n", false);
	free(dir);
	dir = run("/no_journal", g.fake, &rc);
	assert_int_equal(rc, 0);
	results_are(dir, none);
	free(dir);
}

/* rlReport: a subtest, with its log; rlFileSubmit: files of the test's
 * own result, under their names. */
static void test_report_submit(void **state)
{
	const char *report[] = {"{\"status\": \"fail\", \"name\": \"some "
				"result name\"}",
				PHASE("pass", "result name with log"),
				PHASE("pass", "Test"), OWN("pass"), NULL};
	const char *submit[] = {
		PHASE("pass", "Test"),
		"{\"status\": \"pass\", \"files\": [\"output.txt\", "
		"\"TestResults\", \"custom log name.txt\", \"journal.txt\", "
		"\"journal.xml\", \"log.txt\"]}",
		NULL};
	int rc;
	char *dir = run("/report", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, report);
	file_has(dir, "result name with log/resultoutputfile.log",
		 "some log content\n", true);
	free(dir);
	dir = run("/submit", g.fake, &rc);
	assert_int_equal(rc, 0);
	results_are(dir, submit);
	file_has(dir, "log.txt", "some log content\n", true);
	file_has(dir, "custom log name.txt", "some log content\n", true);
	free(dir);
}

/* rhts-reboot between two phases: the test starts again with the same
 * BEAKERLIB_DIR (the second phase checks a file the first left there),
 * and one journal holds both. */
static void test_reboot(void **state)
{
	const char *want[] = {PHASE("pass", "before"), PHASE("pass", "after"),
			      OWN("pass"), NULL};
	int rc;
	char *dir = run("/reboot", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, want);
	file_has(dir, "journal.txt", "Marking before reboot (Expected 0",
		 false);
	file_has(dir, "journal.txt",
		 "] :: [   PASS   ] :: Same BEAKERLIB_DIR after reboot", false);
	free(dir);
}

/* The same reboot where the connection can reboot: BEAKERLIB_DIR is kept
 * until the new boot shows up and the test starts again. */
static void test_reboot_new_boot(void **state)
{
	const char *want[] = {PHASE("pass", "before"), PHASE("pass", "after"),
			      OWN("pass"), NULL};
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	char *file = xsprintf("%s/boot-id", g.base);
	struct fake_boot_conn *f = fake_boot_conn_new(g.conn, true, file);
	atex_executor *e = NULL;
	char *boot_cmd, *dir;
	FILE *bf;
	int rc;

	(void)state;
	free(file);
	bf = fopen(f->boot_file, "w");
	assert_non_null(bf);
	fputs("boot-1\n", bf);
	fclose(bf);
	eopts.connection = &f->base;
	eopts.discovery = g.disc;
	assert_int_equal(atex_fmf_executor_new(&e, &eopts), 0);
	if (atex_executor_start(e))
		fail_msg("start: %s", atex_error_last());
	boot_cmd = xsprintf("BL_BOOT_CMD=echo boot-2 > '%s'", f->boot_file);
	dir = run_on(e, "/reboot", g.fake, boot_cmd, &rc);
	assert_int_equal(rc, 0);
	results_are(dir, want);
	file_has(dir, "journal.txt",
		 "] :: [   PASS   ] :: Same BEAKERLIB_DIR after reboot", false);
	/* Before the first start, then until the new boot. */
	assert_true(f->boot_reads >= 2);
	assert_int_equal(atex_executor_stop(e), 0);
	atex_executor_free(e);
	atex_connection_free(&f->base);
	free(boot_cmd);
	free(dir);
}

static void test_import(void **state)
{
	const char *want[] = {PHASE("pass", "Test"), OWN("pass"), NULL};
	int rc;
	char *dir = run("/import", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, want);
	file_has(dir, "journal.txt", "the library's function", false);
	free(dir);
}

/* `shell` is the default, named; another framework: an error naming the
 * test, the test not run. */
static void test_frameworks(void **state)
{
	const char *shell[] = {"{\"status\": \"pass\", \"files\": "
			       "[\"output.txt\"]}",
			       NULL};
	const char *bad[] = {"{\"status\": \"error\", \"note\": "
			     "\"~/bad_framework: framework 'restraint' is not "
			     "supported\", \"files\": [\"output.txt\"]}",
			     NULL};
	int rc;
	char *dir = run("/shell", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, shell);
	free(dir);
	dir = run("/bad_framework", g.fake, &rc);
	assert_int_equal(rc, ATEX_EFORMAT);
	results_are(dir, bad);
	free(dir);
}

/* A result string of 2 MB: an error quoting its first 200 bytes, with
 * TestResults kept (the whole string in the note was over the 1 MiB a
 * result may have, and the journal files were lost with it). */
static void test_huge_result(void **state)
{
	const char *want[] = {
		"{\"status\": \"error\", \"note\": \"~unknown result 'XXXX\", "
		"\"files\": [\"output.txt\", \"TestResults\"]}",
		NULL};
	int rc;
	char *dir = run("/huge_result", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, want);
	free(dir);
}

/* Restarts run out (restart-max-count 1): the last start's journal is
 * read all the same (one result of the test itself, with BeakerLib's
 * files), and the test is an error saying why, as in tmt. */
static void test_restart_out(void **state)
{
	const char *want[] = {
		PHASE("pass", "first"), PHASE("pass", "first"),
		"{\"status\": \"error\", \"note\": \"~restart-max-count 1\", "
		"\"files\": [\"output.txt\", \"TestResults\", "
		"\"journal.txt\"]}",
		NULL};
	int rc;
	char *dir = run("/restart_out", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, want);
	free(dir);
}

/* A phase whose name BeakerLib cleans down to nothing is a subtest
 * still, never a second result of the test itself. */
static void test_empty_phase(void **state)
{
	const char *want[] = {PHASE("pass", "Setup"),
			      PHASE("pass", "the-main-phase"),
			      PHASE("pass", "unnamed phase"),
			      PHASE("pass", "Cleanup"),
			      OWN("pass"),
			      NULL};
	int rc;
	char *dir = run("/empty_phase", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, want);
	free(dir);
}

/* A BeakerLib test restarted (restart-on-exit-code) after a phase: the
 * first start sends no result of its own (its journal goes on), the last
 * one sends the only one, from both starts' phases. */
static void test_restart(void **state)
{
	const char *want[] = {PHASE("pass", "first"), PHASE("pass", "second"),
			      OWN("pass"), NULL};
	int rc;
	char *dir = run("/restart", g.fake, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, want);
	free(dir);
}

/* The executor's default framework (options version 5: Python ATEX's
 * BeakerlibExecutor) for tests without the key; a test's own key wins;
 * an unknown default is refused. */
static void test_default_framework(void **state)
{
	const char *bl[] = {PHASE("pass", "only"), OWN("pass"), NULL};
	const char *shell[] = {"{\"status\": \"pass\", \"files\": "
			       "[\"output.txt\"]}",
			       NULL};
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	atex_fmf_discovery *disc = NULL;
	atex_executor *e = NULL;
	char *tree = xsprintf("%s/../beakerlib-default", g.tree);
	char *dir;
	int rc;

	(void)state;
	dopts.plan = "/plan";
	assert_int_equal(atex_fmf_discover(&disc, tree, &dopts), 0);
	eopts.connection = g.conn;
	eopts.discovery = disc;
	eopts.framework = "restraint";
	assert_int_equal(atex_fmf_executor_new(&e, &eopts), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "'restraint'"));
	eopts.framework = "beakerlib";
	assert_int_equal(atex_fmf_executor_new(&e, &eopts), 0);
	assert_int_equal(atex_executor_start(e), 0);
	dir = run_on(e, "/no_key", g.fake, NULL, &rc);
	assert_int_equal(rc, 0);
	results_are(dir, bl);
	free(dir);
	dir = run_on(e, "/shell", g.fake, NULL, &rc);
	assert_int_equal(rc, 0);
	results_are(dir, shell);
	free(dir);
	assert_int_equal(atex_executor_stop(e), 0);
	atex_executor_free(e);
	atex_fmf_discovery_free(disc);
	free(tree);
}

/* BEAKERLIB set to where there is none; none installed and the package
 * not installable (a Debian system: BeakerLib is no Debian package). */
static void test_missing(void **state)
{
	const char *wrong[] = {"{\"status\": \"error\", \"note\": \"~BEAKERLIB "
			       "is /nonexistent, which has no readable "
			       "beakerlib.sh\"}",
			       NULL};
	const char *uninstallable[] = {
		"{\"status\": \"error\", \"note\": \"~the package beakerlib "
		"could not be installed\", \"files\": "
		"[\"beakerlib-install.txt\"]}",
		NULL};
	int rc;
	char *dir = run("/pass", "/nonexistent", &rc);

	(void)state;
	assert_int_equal(rc, 0);
	results_are(dir, wrong);
	free(dir);
	if (access("/usr/share/beakerlib/beakerlib.sh", F_OK) == 0) {
		printf("# BeakerLib is installed here: not-installable case "
		       "skipped\n");
		return;
	}
	dir = run("/pass", NULL, &rc);
	assert_int_equal(rc, 0);
	results_are(dir, uninstallable);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_fail_warn),
		cmocka_unit_test(test_unfinished),
		cmocka_unit_test(test_report_submit),
		cmocka_unit_test(test_reboot),
		cmocka_unit_test(test_reboot_new_boot),
		cmocka_unit_test(test_import),
		cmocka_unit_test(test_frameworks),
		cmocka_unit_test(test_default_framework),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_empty_phase),
		cmocka_unit_test(test_restart_out),
		cmocka_unit_test(test_huge_result),
		cmocka_unit_test(test_missing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
