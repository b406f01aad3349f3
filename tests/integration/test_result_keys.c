/*
 * test_result_keys.c - the fmf executor settles a test's results as tmt
 * does (docs/PROTOCOL.md section 2): exit codes (0 pass, 1 fail, else
 * error), the `result` key (respect, xfail, the outcomes, custom,
 * restraint) and the tmt-report-result family. Over the local
 * connection, on integration/trees/result-keys.
 *
 * Each case runs one test and compares ARTIFACTS/results line by line
 * with what is expected: a note "~text" matches a note containing text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/connection.h"
#include "atex/executor.h"
#include "atex/fmf.h"

static struct {
	atex_connection *conn;
	char base[PATH_MAX];
	char tree[PATH_MAX];
	unsigned long runs;
} g;

struct session {
	atex_fmf_discovery *disc;
	atex_executor *e;
};

static void session_open(struct session *s, bool compat)
{
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;

	if (atex_fmf_discover(&s->disc, g.tree, &dopts))
		fail_msg("discover %s: %s", g.tree, atex_error_last());
	eopts.connection = g.conn;
	eopts.discovery = s->disc;
	eopts.compat_python_atex = compat;
	assert_int_equal(atex_fmf_executor_new(&s->e, &eopts), 0);
	if (atex_executor_start(s->e))
		fail_msg("start: %s", atex_error_last());
}

static void session_close(struct session *s)
{
	assert_int_equal(atex_executor_stop(s->e), 0);
	atex_executor_free(s->e);
	atex_fmf_discovery_free(s->disc);
}

/* Whether `actual` is `expected`, whose "note" may be "~TEXT" (the
 * actual note contains TEXT). */
static bool matches(json_t *actual, json_t *expected)
{
	const char *want = json_string_value(json_object_get(expected, "note"));
	const char *note = json_string_value(json_object_get(actual, "note"));
	json_t *a, *x;
	bool same;

	if (!want || want[0] != '~')
		return json_equal(actual, expected);
	if (!note || !strstr(note, want + 1))
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

/* Runs `test` and checks its rc and results (JSON texts, NULL-ended). */
static void check(struct session *s, const char *test, int want_rc,
		  const char *const *lines)
{
	char dir[PATH_MAX * 2], path[PATH_MAX * 3], *text = NULL;
	int code = -1, rc, n = 0;
	bool ok = true;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/%lu%s", g.base, ++g.runs, test);
	rc = atex_executor_run_test(s->e, test, dir, NULL, &code);
	print_message("  %-20s rc %d, exit code %d%s%s\n", test, rc, code,
		      rc ? ": " : "", rc ? atex_error_last() : "");
	if (rc != want_rc) {
		print_error("%s: rc %d, want %d\n", test, rc, want_rc);
		ok = false;
	}
	snprintf(path, sizeof(path), "%s/results", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	while ((len = getline(&text, &cap, f)) > 0) {
		json_t *a = json_loadb(text, (size_t)len, 0, NULL);
		json_t *x = lines[n] ? json_loads(lines[n], 0, NULL) : NULL;

		if (lines[n] && !x)
			fail_msg("bad expected JSON: %s", lines[n]);
		if (!x || !matches(a, x)) {
			print_error("%s: line %d: %s     expected: %s\n", test,
				    n + 1, text, x ? lines[n] : "(none)");
			ok = false;
		}
		json_decref(a);
		json_decref(x);
		if (lines[n])
			n++;
	}
	if (lines[n]) {
		print_error("%s: missing line: %s\n", test, lines[n]);
		ok = false;
	}
	fclose(f);
	free(text);
	if (!ok)
		fail_msg("%s: unexpected results", test);
}

#define CHECK(s, test, rc, ...)                                                \
	check(s, test, rc, (const char *const[]){__VA_ARGS__, NULL})

#define OUT "\"files\": [\"output.txt\"]"

/* Exit codes: 0 pass, 1 fail, anything else an error saying which. */
static void test_exit_codes(void **state)
{
	struct session s;

	(void)state;
	session_open(&s, false);
	CHECK(&s, "/exit2", 0,
	      "{\"status\": \"error\", \"note\": \"exit code 2\", " OUT "}");
	CHECK(&s, "/exit1", 0, "{\"status\": \"fail\", " OUT "}");
	session_close(&s);

	/* Python ATEX's rule in its compatibility mode: not 0 is fail. */
	session_open(&s, true);
	CHECK(&s, "/exit2", 0, "{\"status\": \"fail\", " OUT "}");
	session_close(&s);
}

/* xfail swaps pass and fail; an outcome replaces the status; notes as
 * tmt's. */
static void test_interpret(void **state)
{
	struct session s;

	(void)state;
	session_open(&s, false);
	CHECK(&s, "/xfail_fail", 0,
	      "{\"status\": \"pass\", \"note\": \"test failed as expected; "
	      "original test result: fail\", " OUT "}");
	CHECK(&s, "/xfail_pass", 0,
	      "{\"status\": \"fail\", \"note\": \"test was expected to fail; "
	      "original test result: pass\", " OUT "}");
	CHECK(&s, "/xfail_error", 0,
	      "{\"status\": \"error\", \"note\": \"exit code 2\", " OUT "}");
	CHECK(&s, "/info_fail", 0,
	      "{\"status\": \"info\", \"note\": \"test result overridden: "
	      "info; original test result: fail\", " OUT "}");
	CHECK(&s, "/pass_pass", 0,
	      "{\"status\": \"pass\", \"note\": \"test result overridden: "
	      "pass\", " OUT "}");
	/* A result the test closed for itself is settled too. */
	CHECK(&s, "/warn_own", 0,
	      "{\"status\": \"warn\", \"note\": \"test result overridden: "
	      "warn; original test result: pass\"}");
	/* A timeout is the test's error, which the key overrides, as in
	 * tmt; the note keeps why. */
	CHECK(&s, "/pass_timeout", -10,
	      "{\"status\": \"pass\", \"note\": \"~and was killed; test "
	      "result overridden: pass; original test result: error\", " OUT
	      "}");
	CHECK(&s, "/invalid", -7,
	      "{\"status\": \"error\", \"note\": \"~/invalid: invalid "
	      "'result' 'maybe'\", " OUT "}");
	session_close(&s);
}

/* tmt-report-result calls: the test's own result is the worst of them,
 * its exit code ignored; in restraint mode each is its own result and
 * the test keeps its exit code's. */
static void test_reported(void **state)
{
	struct session s;

	(void)state;
	session_open(&s, false);
	CHECK(&s, "/reported", 0, "{\"status\": \"pass\", \"name\": \"a\"}",
	      "{\"status\": \"fail\", \"name\": \"b\"}",
	      "{\"status\": \"fail\", " OUT "}");
	CHECK(&s, "/reported_skip", 0,
	      "{\"status\": \"skip\", \"name\": \"a\"}",
	      "{\"status\": \"pass\", \"name\": \"b\"}",
	      "{\"status\": \"pass\", " OUT "}");
	CHECK(&s, "/reported_xfail", 0,
	      "{\"status\": \"fail\", \"name\": \"a\"}",
	      "{\"status\": \"pass\", \"note\": \"test failed as expected; "
	      "original test result: fail\", " OUT "}");
	CHECK(&s, "/restraint", 0,
	      "{\"status\": \"pass\", \"name\": \"a\", \"files\": "
	      "[\"log.txt\"]}",
	      "{\"status\": \"fail\", \"name\": \"b\", \"files\": "
	      "[\"resultoutputfile.log\"]}",
	      "{\"status\": \"warn\", \"name\": \"c\"}",
	      "{\"status\": \"pass\", " OUT "}");
	session_close(&s);
}

/* result: custom: TMT_TEST_DATA/results.yaml or results.json. */
static void test_custom(void **state)
{
	struct session s;

	(void)state;
	session_open(&s, false);
	CHECK(&s, "/custom_yaml", 0,
	      "{\"status\": \"pass\", \"name\": \"sub/one\", \"note\": "
	      "\"log 'missing.log' not found in TMT_TEST_DATA\", \"files\": "
	      "[\"one.log\"]}",
	      "{\"status\": \"warn\", \"name\": \"two\", \"note\": \"a note; "
	      "custom test result name should start with '/'\"}",
	      "{\"status\": \"fail\", \"note\": \"own note\", \"files\": "
	      "[\"output.txt\", \"data/one.log\", \"data/results.yaml\"]}");
	CHECK(&s, "/custom_json", 0, "{\"status\": \"info\", \"name\": \"x\"}",
	      "{\"status\": \"info\", \"files\": [\"output.txt\", "
	      "\"data/results.json\"]}");
	CHECK(&s, "/custom_missing", 0,
	      "{\"status\": \"error\", \"note\": \"~custom results file not "
	      "found\", " OUT "}");
	CHECK(&s, "/custom_bad", 0,
	      "{\"status\": \"error\", \"note\": "
	      "\"~TMT_TEST_DATA/results.yaml:3: '/b': invalid 'result'\", "
	      "\"files\": [\"output.txt\", \"data/results.yaml\"]}");
	CHECK(&s, "/custom_syntax", 0,
	      "{\"status\": \"error\", \"note\": "
	      "\"~TMT_TEST_DATA/results.yaml:2:1: \", \"files\": "
	      "[\"output.txt\", \"data/results.yaml\"]}");
	CHECK(&s, "/custom_json_bad", 0,
	      "{\"status\": \"error\", \"note\": "
	      "\"~TMT_TEST_DATA/results.json:2: \", \"files\": "
	      "[\"output.txt\", \"data/results.json\"]}");
	CHECK(&s, "/custom_empty", 0,
	      "{\"status\": \"error\", \"note\": \"no custom results were "
	      "provided\", \"files\": [\"output.txt\", "
	      "\"data/results.yaml\"]}");
	session_close(&s);
}

/* Whether the file PATH of the last run's artifacts (under files/) holds
 * exactly `want`. */
static void check_file(const char *test, const char *path, const char *want)
{
	char full[PATH_MAX * 3], buf[4096];
	size_t n;
	FILE *f;

	snprintf(full, sizeof(full), "%s/%lu%s/files/%s", g.base, g.runs, test,
		 path);
	f = fopen(full, "r");
	if (!f)
		fail_msg("%s: no file %s", test, full);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	if (strcmp(buf, want))
		fail_msg("%s: %s holds '%s', not '%s'", test, path, buf, want);
}

/* A result whose files cannot be stored is kept, with a note, and the
 * test's status does not improve; subtests' files never land on the
 * test's own; repeated logs of one name are all kept. */
static void test_stored(void **state)
{
	struct session s;
	char name[301], line[1000];

	(void)state;
	memset(name, 'L', 300);
	name[300] = '\0';
	/* The path under files/, not where the artifacts happen to be. */
	snprintf(line, sizeof(line),
		 "{\"status\": \"fail\", \"name\": \"%s\", \"note\": \"log "
		 "'log.txt' could not be stored: files/%s: cannot create "
		 "directory: File name too long\"}",
		 name, name);
	session_open(&s, false);
	CHECK(&s, "/custom_long", 0, line,
	      "{\"status\": \"fail\", \"files\": [\"output.txt\", "
	      "\"data/log.txt\", \"data/results.yaml\"]}");
	CHECK(&s, "/custom_clash", 0,
	      "{\"status\": \"pass\", \"name\": \"output.txt\", \"note\": "
	      "\"log 'log.txt' could not be stored: files/output.txt/log.txt "
	      "would land on the test's own 'output.txt'\"}",
	      "{\"status\": \"pass\", \"name\": \"data/sub\", \"note\": "
	      "\"log 'log.txt' could not be stored: files/data/sub/log.txt "
	      "would land on the test's own 'data'\"}",
	      "{\"status\": \"pass\", \"files\": [\"output.txt\", "
	      "\"data/log.txt\", \"data/results.yaml\", "
	      "\"data/sub/log.txt\"]}");
	check_file("/custom_clash", "output.txt", "my-output\n");
	check_file("/custom_clash", "data/sub/log.txt", "ORIGINAL\n");
	CHECK(&s, "/rr_clash", -7,
	      "{\"status\": \"error\", \"note\": \"result 'output.txt': file "
	      "not stored: files/output.txt/log would land on the test's own "
	      "'output.txt'\", " OUT "}");
	check_file("/rr_clash", "output.txt", "my-output\n");
	CHECK(&s, "/restraint_dup", 0,
	      "{\"status\": \"pass\", \"name\": \"a\", \"files\": [\"f1\"]}",
	      "{\"status\": \"fail\", \"name\": \"a\", \"files\": [\"f1\"]}",
	      "{\"status\": \"pass\", " OUT "}");
	check_file("/restraint_dup", "a/f1", "first\nsecond\n");
	session_close(&s);
}

/* Names and paths: custom logs joined to TMT_TEST_DATA as tmt joins
 * them, NUL bytes refused aloud, '..' in a tmt-report-result name
 * refused by the helper with the channel kept. */
static void test_names(void **state)
{
	struct session s;

	(void)state;
	session_open(&s, false);
	CHECK(&s, "/custom_log_paths", 0,
	      "{\"status\": \"pass\", \"name\": \"x\", \"files\": "
	      "[\"log.txt\"]}",
	      "{\"status\": \"pass\", \"files\": [\"output.txt\", "
	      "\"data/log.txt\", \"data/results.yaml\"]}");
	check_file("/custom_log_paths", "x/log.txt", "one\n");
	CHECK(&s, "/custom_log_escape", 0,
	      "{\"status\": \"error\", \"note\": "
	      "\"TMT_TEST_DATA/results.yaml:1: log entry 2 of result '/x' is "
	      "not a relative path inside TMT_TEST_DATA\", \"files\": "
	      "[\"output.txt\", \"data/log.txt\", \"data/results.yaml\"]}");
	CHECK(&s, "/custom_nul", 0,
	      "{\"status\": \"error\", \"note\": "
	      "\"TMT_TEST_DATA/results.yaml:1: '/a\\\\0...': the name holds "
	      "a NUL byte\", \"files\": [\"output.txt\", "
	      "\"data/results.yaml\"]}");
	CHECK(&s, "/rr_dotdot", 0,
	      "{\"status\": \"pass\", \"name\": \"atex/refused-name\", "
	      "\"note\": \"result '/a/../../x' left out: a subtest name "
	      "cannot have a '..' component\"}",
	      "{\"status\": \"fail\", \"name\": \"later\"}",
	      "{\"status\": \"fail\", " OUT "}");
	CHECK(&s, "/rr_dots", 0, "{\"status\": \"pass\", \"name\": \"a/b\"}",
	      "{\"status\": \"pass\"}");
	session_close(&s);
}

/* Output file FILE of the last run of `test` (under files/) holds `want`. */
static bool output_has(const char *test, const char *want)
{
	char full[PATH_MAX * 3], buf[8192];
	size_t n;
	FILE *f;

	snprintf(full, sizeof(full), "%s/%lu%s/files/output.txt", g.base,
		 g.runs, test);
	f = fopen(full, "r");
	if (!f)
		fail_msg("%s: no file %s", test, full);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	if (!strstr(buf, want))
		print_error("%s: output.txt: no '%s' in:\n%s\n", test, want,
			    buf);
	return strstr(buf, want) != NULL;
}

/* Issue 14: tmt keeps start-time, end-time and duration of the entries
 * other than "/" (whose times are the attempt's): so do subtests; an
 * invalid one is a warning naming file:line (tmt's "Result format
 * violation"), the results kept. */
static void test_custom_times(void **state)
{
	struct session s;

	(void)state;
	session_open(&s, false);
	CHECK(&s, "/custom_times", 0,
	      "{\"status\": \"pass\", \"name\": \"a\", \"start-time\": "
	      "\"2026-12-06T22:45:01.123456+00:00\", \"end-time\": "
	      "\"2026-12-06T22:45:03.5Z\", \"duration\": \"00:00:02\"}",
	      "{\"status\": \"info\", \"name\": \"a/deep\", "
	      "\"duration\": \"100:59:59\"}",
	      "{\"status\": \"fail\", \"name\": \"b\"}",
	      "{\"status\": \"pass\", \"files\": [\"output.txt\", "
	      "\"data/results.yaml\"]}");
	assert_true(output_has("/custom_times", "my-output\n"));
	/* Unquoted, YAML makes it a timestamp (tmt's schema wants a
	 * string): said too. */
	assert_true(output_has("/custom_times",
			       "results.yaml:13: '/deep': result format "
			       "violation: 'start-time' "
			       "\"2026-12-06T22:45:01.123456\" is not"));
	assert_true(output_has(
		"/custom_times",
		"atex: TMT_TEST_DATA/results.yaml:17: '/b': result format "
		"violation: 'duration' 12 is not HH:MM:SS (left out)\n"));
	assert_true(output_has("/custom_times",
			       "results.yaml:18: '/b': result format "
			       "violation: 'start-time' \"bogus\" is not a "
			       "timestamp"));
	assert_true(
		output_has("/custom_times",
			   "results.yaml:19: '/b': result format "
			   "violation: 'end-time' \"2026-12-06 22:45:03\""));
	session_close(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_interpret),
		cmocka_unit_test(test_reported),
		cmocka_unit_test(test_custom),
		cmocka_unit_test(test_stored),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_custom_times),
	};
	const char *trees = getenv("ATEX_TEST_TREES");
	int failed;

	if (!trees) {
		fprintf(stderr, "ATEX_TEST_TREES is not set\n");
		return 1;
	}
	snprintf(g.tree, sizeof(g.tree), "%s/result-keys", trees);
	snprintf(g.base, sizeof(g.base), "/tmp/atex-resultkeys-XXXXXX");
	if (!mkdtemp(g.base) || atex_local_connection_new(&g.conn, NULL)) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	atex_connection_free(g.conn);
	if (!failed) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g.base);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", g.base);
	}
	return failed;
}
