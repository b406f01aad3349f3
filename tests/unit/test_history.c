/*
 * test_history.c - atex/history.h: per-test timings read from results
 * databases and folders made here by hand from the formats of
 * docs/PROTOCOL.md (the SQLite columns, attempts.jsonl), and the order the
 * history policy picks tests in.
 */
#include <sqlite3.h>
#include <stdbool.h>

#include "helpers.h"
#include "history_db.h"

#include "atex/history.h"
#include "atex/orchestrator.h"
#include "util/util.h"

/* ---- fixtures ---- */

static const char *const old_schema =
	"CREATE TABLE results(id INTEGER PRIMARY KEY,"
	" platform TEXT NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL,"
	" subtest TEXT, note TEXT, files TEXT NOT NULL,"
	" ingested REAL NOT NULL, attempt INTEGER NOT NULL,"
	" final INTEGER NOT NULL);";

/* One row; subtest NULL is the test's own result; duration < 0: NULL. */
static void row(sqlite3 *db, const char *platform, const char *test,
		const char *subtest, const char *status, int attempt,
		bool final, const char *started, double duration)
{
	char value[32] = "NULL";
	char *sql;

	if (duration >= 0)
		snprintf(value, sizeof(value), "%.3f", duration);
	sql = sqlite3_mprintf(
		"INSERT INTO results(platform, status, test, subtest, files,"
		" ingested, attempt, final, started, duration) VALUES"
		" (%Q, %Q, %Q, %Q, '[]', 0, %d, %d, %Q, %s)",
		platform, status, test, subtest, attempt, final ? 1 : 0,
		started, value);
	db_exec(db, sql);
	sqlite3_free(sql);
}

/* "2026-12-0DTHH:00:00.000+00:00": K orders the starts. */
static const char *at(int k)
{
	static char buf[8][40];
	static int next;
	char *b = buf[next++ % 8];

	snprintf(b, 40, "2026-12-%02dT%02d:00:00.000+00:00", 1 + k / 24,
		 k % 24);
	return b;
}

/* ---- reading ---- */

static atex_history *open_paths(const char *const *paths, size_t n,
				unsigned int last_n)
{
	struct atex_history_options o = ATEX_HISTORY_OPTIONS_INIT;
	atex_history *h = NULL;

	o.paths = paths;
	o.n_paths = n;
	o.last_n = last_n;
	if (atex_history_open(&h, &o) < 0)
		fail_msg("history: %s", atex_error_last());
	return h;
}

static void test_median_last_n(void **state)
{
	char *dir = tmpdir_new();
	char *db_path = path_in(dir, "results.sqlite");
	sqlite3 *db = db_new(db_path, history_schema);
	struct atex_history_test t;
	atex_history *h;
	/* Oldest first: 100 and 90 are old; the last five successful are
	 * 10, 12, 11, 14, 13 (the error's 500 was cut short, the failure
	 * ran to its end). */
	static const double durations[] = {100, 90, 10, 12, 500, 11, 14, 13};
	static const char *const statuses[] = {"pass",	"pass", "pass", "warn",
					       "error", "pass", "info", "fail"};
	const char *paths[] = {db_path};

	(void)state;
	for (int i = 0; i < 8; i++)
		row(db, "p", "/a", NULL, statuses[i], i + 1, i == 7, at(i),
		    durations[i]);
	/* Another platform's run, newer, is also history (platform NULL). */
	row(db, "q", "/a", NULL, "error", 1, true, at(20), 1);
	/* A subtest row repeats the attempt: counted once. */
	row(db, "p", "/a", "sub", "fail", 8, true, at(7), 13);
	/* Results without timings are left out. */
	row(db, "p", "/none", NULL, "pass", 1, true, NULL, -1);
	sqlite3_close(db);

	h = open_paths(paths, 1, 0);
	assert_int_equal(atex_history_count(h), 1);
	assert_true(atex_history_lookup(h, "/a", &t));
	assert_int_equal(t.samples, 5);
	assert_int_equal(t.attempts, 9);
	assert_true(t.median == 12);
	assert_int_equal(t.runs, 2);
	/* An error (cut short) then passes: flaky. */
	assert_true(t.flaky);
	assert_true(t.expected == t.median * t.expected_attempts);
	assert_false(atex_history_lookup(h, "/none", NULL));
	/* A repeat of /a (tmt's NAME~K) is /a. */
	assert_true(atex_history_lookup(h, "/a~2", NULL));
	atex_history_free(h);

	/* last_n 2: the median of 13 and 14. */
	h = open_paths(paths, 1, 2);
	assert_true(atex_history_lookup(h, "/a", &t));
	assert_int_equal(t.samples, 2);
	assert_true(t.median == 13.5);
	atex_history_free(h);

	/* The database was not changed (nor its journal left). */
	{
		char *journal = path_in(dir, "results.sqlite-journal");

		assert_false(atex_path_exists(journal));
		free(journal);
	}
	free(db_path);
	tree_remove(dir);
}

static void test_flaky_and_failures(void **state)
{
	char *dir = tmpdir_new();
	char *one = path_in(dir, "one.sqlite"),
	     *two = path_in(dir, "two.sqlite");
	sqlite3 *db = db_new(one, history_schema);
	struct atex_history_test t;
	atex_history *h;
	const char *paths[] = {one, two};

	(void)state;
	/* Re-run in one run: fail then pass. */
	row(db, "p", "/flaky", NULL, "fail", 1, false, at(1), 20);
	row(db, "p", "/flaky", NULL, "pass", 2, true, at(2), 22);
	/* Always cut short: its own durations are all there is. */
	row(db, "p", "/timeout", NULL, "error", 1, true, at(1), 60);
	/* Its subtest failed, its own result passed: not failed. */
	row(db, "p", "/sub", NULL, "pass", 1, true, at(1), 5);
	row(db, "p", "/sub", "x", "fail", 1, true, at(1), 5);
	/* Across runs: fails in the older database... */
	row(db, "p", "/across", NULL, "fail", 1, true, at(1), 8);
	/* Passes in the first path, fails later in time in the second:
	 * not flaky (order is by start, not by path). */
	row(db, "p", "/fixed", NULL, "pass", 1, true, at(1), 3);
	sqlite3_close(db);
	db = db_new(two, history_schema);
	row(db, "p", "/flaky", NULL, "pass", 1, true, at(10), 24);
	row(db, "p", "/across", NULL, "pass", 1, true, at(10), 10);
	row(db, "p", "/fixed", NULL, "fail", 1, true, at(2), 3);
	sqlite3_close(db);

	h = open_paths(paths, 2, 0);
	assert_true(atex_history_lookup(h, "/flaky", &t));
	assert_true(t.flaky);
	assert_int_equal(t.runs, 2);
	assert_true(t.expected_attempts == 1.5); /* 3 attempts, 2 runs */
	assert_true(t.median == 22);
	assert_true(t.expected == 33);

	assert_true(atex_history_lookup(h, "/timeout", &t));
	assert_false(t.flaky);
	assert_true(t.median == 60);

	assert_true(atex_history_lookup(h, "/sub", &t));
	assert_false(t.flaky);

	/* Flaky across runs without re-runs: 1 + the failed share. */
	assert_true(atex_history_lookup(h, "/across", &t));
	assert_true(t.flaky);
	assert_true(t.expected_attempts == 1.5);
	assert_true(t.median == 9);

	assert_true(atex_history_lookup(h, "/fixed", &t));
	assert_false(t.flaky);
	assert_true(atex_history_typical(h) > 0);
	atex_history_free(h);
	free(one);
	free(two);
	tree_remove(dir);
}

static void expect_error(const char *path, int code, const char *words)
{
	struct atex_history_options o = ATEX_HISTORY_OPTIONS_INIT;
	atex_history *h = (atex_history *)1;
	const char *paths[] = {path};

	o.paths = paths;
	o.n_paths = 1;
	assert_int_equal(atex_history_open(&h, &o), code);
	assert_null(h);
	if (!strstr(atex_error_last(), path) ||
	    !strstr(atex_error_last(), words))
		fail_msg("'%s' does not name %s and say '%s'",
			 atex_error_last(), path, words);
}

static void test_bad_paths(void **state)
{
	char *dir = tmpdir_new();
	char *missing = path_in(dir, "nope.sqlite");
	char *old = path_in(dir, "old.sqlite");
	char *text = path_in(dir, "text.sqlite");
	char *empty_dir = path_in(dir, "empty");
	char *no_table = path_in(dir, "other.sqlite");
	char *jsonl_only = path_in(dir, "jsonl-only");
	sqlite3 *db;
	struct atex_history_options o = ATEX_HISTORY_OPTIONS_INIT;
	atex_history *h = NULL;

	(void)state;
	expect_error(missing, ATEX_ENOTFOUND, "No such file");
	db = db_new(old, old_schema);
	db_exec(db, "INSERT INTO results VALUES (1, 'p', 'pass', '/a', NULL,"
		    " NULL, '[]', 0, 1, 1)");
	sqlite3_close(db);
	expect_error(old, ATEX_EFORMAT, "before timings");
	write_file(dir, "text.sqlite", "this is not a database, at all.\n");
	expect_error(text, ATEX_EFORMAT, "not a results database");
	db = db_new(no_table, "CREATE TABLE other(x);");
	sqlite3_close(db);
	expect_error(no_table, ATEX_EFORMAT, "no table 'results'");
	assert_int_equal(mkdir(empty_dir, 0755), 0);
	expect_error(empty_dir, ATEX_ENOTFOUND, "not a results folder");
	write_file(dir, "jsonl-only/results.jsonl",
		   "[\"p\", \"pass\", \"/a\", null, [], null]\n");
	expect_error(jsonl_only, ATEX_EFORMAT, "before timings");
	/* No path at all. */
	assert_int_equal(atex_history_open(&h, &o), ATEX_EINVAL);
	free(missing);
	free(old);
	free(text);
	free(empty_dir);
	free(no_table);
	free(jsonl_only);
	tree_remove(dir);
}

/* A results folder of `atex run` without results.sqlite: the statuses
 * from results.jsonl (+ old/), the timings from the sidecars. */
static void test_jsonl_folder(void **state)
{
	char *dir = tmpdir_new();
	char *res = path_in(dir, "res");
	char *jsonl = path_in(dir, "res/results.jsonl");
	struct atex_history_test t;
	atex_history *h;
	const char *paths[] = {res};

	(void)state;
	write_file(dir, "res/results.jsonl",
		   "[\"p\", \"pass\", \"/a\", null, [], null]\n"
		   "[\"p\", \"pass\", \"/b\", null, [], null]\n"
		   "[\"p\", \"pass\", \"/b\", \"s\", [], null]\n");
	write_file(dir, "res/old/results.jsonl",
		   "[\"p\", \"fail\", \"/b\", null, [], null]\n");
	write_file(dir, "res/attempts.jsonl",
		   "{\"platform\": \"p\", \"test\": \"/a\", \"attempt\": 1,"
		   " \"final\": true, \"start\": "
		   "\"2026-12-06T10:00:00.000+00:00\","
		   " \"end\": null, \"duration\": 4.5, \"system\": \"local-1\","
		   " \"exit_code\": 0}\n"
		   "{\"platform\": \"p\", \"test\": \"/b\", \"attempt\": 2,"
		   " \"final\": true, \"start\": "
		   "\"2026-12-06T10:01:00.000+00:00\","
		   " \"end\": null, \"duration\": 7, \"system\": null,"
		   " \"exit_code\": null}\n"
		   "{\"platform\": \"p\", \"test\": \"/c\", \"attempt\": 1,"
		   " \"final\": true, \"start\": null, \"end\": null,"
		   " \"duration\": null, \"system\": null, \"exit_code\": "
		   "null}\n");
	write_file(dir, "res/old/attempts.jsonl",
		   "{\"platform\": \"p\", \"test\": \"/b\", \"attempt\": 1,"
		   " \"final\": false, \"start\": "
		   "\"2026-12-06T10:00:00.000+00:00\","
		   " \"end\": null, \"duration\": 3, \"system\": \"local-2\","
		   " \"exit_code\": 1}\n");

	h = open_paths(paths, 1, 0);
	assert_int_equal(atex_history_count(h), 2);
	assert_true(atex_history_lookup(h, "/a", &t));
	assert_true(t.median == 4.5);
	assert_true(atex_history_lookup(h, "/b", &t));
	assert_true(t.flaky);
	assert_int_equal(t.attempts, 2);
	assert_true(t.expected_attempts == 2);
	/* Both ran to their end (a failure is not cut short). */
	assert_true(t.median == 5);
	assert_false(atex_history_lookup(h, "/c", NULL));
	atex_history_free(h);

	/* The results.jsonl names its folder. */
	paths[0] = jsonl;
	h = open_paths(paths, 1, 0);
	assert_int_equal(atex_history_count(h), 2);
	atex_history_free(h);

	/* A damaged sidecar line is an error naming file:line. */
	write_file(dir, "res/attempts.jsonl", "{\"platform\": \"p\"}\n");
	expect_error(res, ATEX_EFORMAT, "attempts.jsonl:1");
	free(res);
	free(jsonl);
	tree_remove(dir);
}

/* ---- the policy ---- */

static void test_policy_order(void **state)
{
	char *dir = tree_new("main.fmf",
			     "/plan:\n"
			     "    discover:\n"
			     "        how: fmf\n"
			     "    execute:\n"
			     "        how: tmt\n"
			     "/short:\n    test: 'true'\n    duration: 1h\n"
			     "/long:\n    test: 'true'\n    duration: 5m\n"
			     "/new-small:\n    test: 'true'\n    duration: 2m\n"
			     "/flaky:\n    test: 'true'\n"
			     "/mid:\n    test: 'true'\n"
			     "/new-big:\n    test: 'true'\n    duration: 10m\n",
			     NULL);
	char *db_path = path_in(dir, "h.sqlite");
	sqlite3 *db = db_new(db_path, history_schema);
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;
	const char *paths[] = {db_path};
	const char *expected[] = {"/new-big", "/new-small", "/flaky",
				  "/long",    "/mid",	    "/short"};
	size_t queue[6], n = 6;
	atex_history *h;

	(void)state;
	row(db, "p", "/short", NULL, "pass", 1, true, at(1), 5);
	row(db, "p", "/long", NULL, "pass", 1, true, at(1), 100);
	row(db, "p", "/mid", NULL, "pass", 1, true, at(1), 60);
	/* Failed once and re-run: median 55 x 2 attempts = 110 s of the
	 * run, more than /long's 100 though each attempt is shorter. */
	row(db, "p", "/flaky", NULL, "fail", 1, false, at(1), 40);
	row(db, "p", "/flaky", NULL, "pass", 2, true, at(2), 70);
	sqlite3_close(db);
	h = open_paths(paths, 1, 0);
	dopts.plan = "/plan";
	assert_int_equal(atex_fmf_discover(&d, dir, &dopts), 0);
	assert_int_equal(atex_fmf_discovery_count(d), 6);
	for (size_t i = 0; i < n; i++)
		queue[i] = i;
	/* Never seen first by declared duration (/new-big 10m, /new-small
	 * 2m; /short's declared hour does not count: it was measured),
	 * then by expected time. */
	for (size_t k = 0; k < 6; k++) {
		size_t pick = atex_policy_history(d, queue, n, h);
		const char *name;

		assert_true(pick < n);
		name = atex_fmf_discovery_test_name(d, queue[pick]);
		if (strcmp(name, expected[k]) != 0)
			fail_msg("pick %zu: %s, expected %s", k, name,
				 expected[k]);
		memmove(&queue[pick], &queue[pick + 1],
			(n - pick - 1) * sizeof(*queue));
		n--;
	}
	/* The estimate: measured, or the typical time when never seen. */
	for (size_t i = 0; i < 6; i++) {
		const char *name = atex_fmf_discovery_test_name(d, i);
		double e = atex_history_estimate(h, d, i, 0);

		if (!strcmp(name, "/mid"))
			assert_true(e == 60);
		if (!strcmp(name, "/new-big"))
			assert_true(e == atex_history_typical(h));
	}
	/* Without a history: longest declared first. */
	for (size_t i = 0; i < 6; i++)
		queue[i] = i;
	assert_string_equal(
		atex_fmf_discovery_test_name(
			d, queue[atex_policy_history(d, queue, 6, NULL)]),
		"/short");
	atex_history_free(h);
	atex_fmf_discovery_free(d);
	free(db_path);
	tree_remove(dir);
}

/* ---- damaged values ---- */

static char warnings[8192];

static void capture(int level, const char *component, const char *message,
		    void *userdata)
{
	size_t used = strlen(warnings);

	(void)userdata;
	if (level <= ATEX_LOG_WARNING)
		snprintf(warnings + used, sizeof(warnings) - used, "%s: %s\n",
			 component, message);
}

static void assert_warned(const char *part)
{
	if (!strstr(warnings, part))
		fail_msg("'%s' not in:\n%s", part, warnings);
}

/* Durations that are not ones (text, negative, huge) and starts that are
 * not times: a warning naming where, the attempt left out (a duration)
 * or its start unknown; never a median of garbage. */
static void test_damaged_values(void **state)
{
	char *dir = tmpdir_new();
	char *db_path = path_in(dir, "results.sqlite");
	char *res = path_in(dir, "res");
	sqlite3 *db = db_new(db_path, history_schema);
	struct atex_history_test t;
	const char *paths[] = {db_path};
	atex_history *h;

	(void)state;
	warnings[0] = '\0';
	atex_log_set_handler(capture, NULL);
	row(db, "p", "/t", NULL, "pass", 1, true, at(1), 10);
	row(db, "p", "/t", NULL, "pass", 2, true, at(2), 20);
	db_exec(db, "INSERT INTO results(platform, status, test, files,"
		    " ingested, attempt, final, started, duration) VALUES"
		    " ('p', 'pass', '/t', '[]', 0, 3, 1, 'x', 'abc'),"
		    " ('p', 'pass', '/t', '[]', 0, 4, 1, 'x', -3),"
		    " ('p', 'pass', '/t', '[]', 0, 5, 1, 'x', 1e300),"
		    " ('p', 'pass', '/u', '[]', 0, 1, 1, 42, 7)");
	sqlite3_close(db);
	h = open_paths(paths, 1, 0);
	assert_true(atex_history_lookup(h, "/t", &t));
	assert_int_equal(t.attempts, 2);
	assert_true(t.median == 15);
	assert_true(atex_history_lookup(h, "/u", &t));
	assert_true(t.median == 7);
	atex_history_free(h);
	assert_warned("results.sqlite: table results (test /t, attempt 3): "
		      "\"duration\" is not a number of seconds ('abc'); the "
		      "attempt is left out");
	assert_warned("(test /t, attempt 4): \"duration\" is not a number");
	assert_warned("(test /t, attempt 5): \"duration\" is not a number");
	assert_warned("(test /u, attempt 1): \"started\" is not an ISO 8601 "
		      "time ('42'); taken as unknown");

	warnings[0] = '\0';
	write_file(dir, "res/results.jsonl",
		   "[\"p\", \"pass\", \"/a\", null, [], null]\n");
	write_file(dir, "res/attempts.jsonl",
		   "{\"platform\": \"p\", \"test\": \"/a\", \"attempt\": 1,"
		   " \"duration\": \"long\"}\n"
		   "{\"platform\": \"p\", \"test\": \"/b\", \"attempt\": 1,"
		   " \"duration\": -1}\n"
		   "{\"platform\": \"p\", \"test\": \"/c\", \"attempt\": 1,"
		   " \"duration\": 2, \"start\": 5}\n");
	paths[0] = res;
	h = open_paths(paths, 1, 0);
	assert_false(atex_history_lookup(h, "/a", NULL));
	assert_false(atex_history_lookup(h, "/b", NULL));
	assert_true(atex_history_lookup(h, "/c", &t));
	assert_true(t.median == 2);
	atex_history_free(h);
	assert_warned("res/attempts.jsonl:1: \"duration\" is not a number of "
		      "seconds ('\"long\"'); the attempt is left out");
	assert_warned("res/attempts.jsonl:2: \"duration\" is not a number");
	assert_warned("res/attempts.jsonl:3: \"start\" is not an ISO 8601 "
		      "time ('5')");
	atex_log_set_handler(NULL, NULL);
	free(db_path);
	free(res);
	tree_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_median_last_n),
		cmocka_unit_test(test_flaky_and_failures),
		cmocka_unit_test(test_bad_paths),
		cmocka_unit_test(test_jsonl_folder),
		cmocka_unit_test(test_policy_order),
		cmocka_unit_test(test_damaged_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
