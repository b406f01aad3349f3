/*
 * test_report_timings.c - issue 14 in the report block: the timings of
 * every attempt loaded from the attempts.jsonl sidecars (final and earlier
 * attempts, compressed, damaged, missing) and from the SQLite columns (a
 * database from before them still loads), the run's metadata (run.json,
 * the `run` table), and what the renderers make of them: HTML (duration,
 * system, start, sortable headers, the run in the header), JUnit (time,
 * timestamp, hostname), the summary (slowest tests, wall and test time)
 * and tmt's results.yaml (atex_report_tmt), read back with atex's YAML
 * parser. Fixtures follow docs/PROTOCOL.md section 5 by hand, and once
 * through the real aggregators.
 */
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <zlib.h>

#include "helpers.h"

#include "atex/aggregator.h"
#include "atex/report.h"
#include "fmf/yaml.h"
#include "util/util.h"

/* ---- helpers ---- */

static char warnings[16384];

static void capture(int level, const char *component, const char *message,
		    void *userdata)
{
	size_t used = strlen(warnings);

	(void)userdata;
	if (level <= ATEX_LOG_WARNING)
		snprintf(warnings + used, sizeof(warnings) - used, "%s: %s\n",
			 component, message);
}

static int setup(void **state)
{
	warnings[0] = '\0';
	atex_log_set_handler(capture, NULL);
	*state = tmpdir_new();
	return 0;
}

static int teardown(void **state)
{
	atex_log_set_handler(NULL, NULL);
	tree_remove(*state);
	return 0;
}

static char *path_in(const char *dir, const char *rel)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
	return p;
}

static char *read_whole(const char *path)
{
	char *text = NULL;
	size_t len = 0;

	if (atex_file_read(&text, &len, path) < 0)
		fail_msg("%s", atex_error_last());
	return text;
}

static atex_results *load_ok(const char *dir, const char *rel)
{
	atex_results *r = NULL;
	char *p = path_in(dir, rel);

	if (atex_results_load(&r, p))
		fail_msg("loading %s: %s", p, atex_error_last());
	free(p);
	return r;
}

/* The result of `test` [/`subtest`], final or not. */
static const struct atex_result *find(const atex_results *r, const char *test,
				      const char *subtest, bool final)
{
	for (size_t i = 0; i < atex_results_count(r); i++) {
		const struct atex_result *res = atex_results_get(r, i);

		if (!strcmp(res->test, test) && res->final == final &&
		    (subtest ? res->subtest && !strcmp(res->subtest, subtest)
			     : !res->subtest))
			return res;
	}
	fail_msg("no result %s %s", test, subtest ? subtest : "");
	return NULL;
}

static void assert_contains(const char *text, const char *part)
{
	assert_non_null(text);
	if (!strstr(text, part))
		fail_msg("'%s' not in:\n%s", part, text);
}

static void assert_lacks(const char *text, const char *part)
{
	assert_non_null(text);
	if (strstr(text, part))
		fail_msg("'%s' in:\n%s", part, text);
}

/* A run of three tests: /a (own result and subtest s1) and /c final on
 * attempt 1, /b final on attempt 2 after an earlier error. */
static const char results_jsonl[] =
	"[\"local\", \"pass\", \"/a\", null, [\"out.txt\"], null]\n"
	"[\"local\", \"fail\", \"/a\", \"s1\", [\"s.log\"], \"bad\"]\n"
	"[\"local\", \"infra\", \"/b\", null, [], \"lost\"]\n"
	"[\"local\", \"pass\", \"/c\", null, [], null]\n";
static const char old_results_jsonl[] =
	"[\"local\", \"error\", \"/b\", null, [], \"first\"]\n";
static const char attempts_jsonl[] =
	"{\"platform\": \"local\", \"test\": \"/a\", \"attempt\": 1, "
	"\"final\": true, \"start\": \"2026-12-06T22:45:01.123+00:00\", "
	"\"end\": \"2026-12-06T22:45:04.567+00:00\", \"duration\": 3.444, "
	"\"system\": \"local-3\", \"exit_code\": 0}\n"
	"{\"platform\": \"local\", \"test\": \"/b\", \"attempt\": 2, "
	"\"final\": true, \"start\": \"2026-12-06T22:45:05.000+00:00\", "
	"\"end\": \"2026-12-06T22:46:10.000+00:00\", \"duration\": 65.0, "
	"\"system\": \"local-1\", \"exit_code\": null}\n"
	/* /c: an ingest without attempt.json. */
	"{\"platform\": \"local\", \"test\": \"/c\", \"attempt\": null, "
	"\"final\": true, \"start\": null, \"end\": null, \"duration\": null, "
	"\"system\": null, \"exit_code\": null}\n";
static const char old_attempts_jsonl[] =
	"{\"platform\": \"local\", \"test\": \"/b\", \"attempt\": 1, "
	"\"final\": false, \"start\": \"2026-12-06T22:45:00.000+00:00\", "
	"\"end\": \"2026-12-06T22:45:01.000+00:00\", \"duration\": 1.0, "
	"\"system\": \"local-2\", \"exit_code\": 1}\n";
static const char run_json[] =
	"{\"started\": \"2026-12-06T22:44:59.000+00:00\", "
	"\"ended\": \"2026-12-06T22:46:11.500+00:00\", \"atex_version\": "
	"\"0.1.0\", \"platform\": \"local\", \"provisioner\": \"local\", "
	"\"tree\": \"/abs/tree\", \"git_commit\": "
	"\"0123456789abcdef0123456789abcdef01234567\", \"context\": "
	"{\"distro\": \"fedora-41\", \"arch\": [\"x86_64\"]}, \"systems\": 3, "
	"\"history\": [\"/old/r1\", \"/old/r2.sqlite\"]}\n";

static void write_run(const char *dir)
{
	write_file(dir, "run/results.jsonl", results_jsonl);
	write_file(dir, "run/old/results.jsonl", old_results_jsonl);
	write_file(dir, "run/attempts.jsonl", attempts_jsonl);
	write_file(dir, "run/old/attempts.jsonl", old_attempts_jsonl);
	write_file(dir, "run/run.json", run_json);
	write_file(dir, "run/files/local/a/out.txt", "out\n");
	write_file(dir, "run/files/local/a/s1/s.log", "sub\n");
}

/* ---- loading ---- */

static void test_jsonl_sidecars(void **state)
{
	char *dir = *state;
	atex_results *r;
	const struct atex_result *res;
	const struct atex_run_info *run;

	write_run(dir);
	r = load_ok(dir, "run/results.jsonl");
	assert_int_equal(atex_results_count(r), 5);
	/* Both results of /a's attempt carry its timings. */
	for (int sub = 0; sub < 2; sub++) {
		res = find(r, "/a", sub ? "s1" : NULL, true);
		assert_string_equal(res->start,
				    "2026-12-06T22:45:01.123+00:00");
		assert_string_equal(res->end, "2026-12-06T22:45:04.567+00:00");
		assert_true(res->duration > 3.443 && res->duration < 3.445);
		assert_string_equal(res->system, "local-3");
		assert_true(res->has_exit_code);
		assert_int_equal(res->exit_code, 0);
	}
	res = find(r, "/b", NULL, true);
	assert_int_equal(res->attempt, 2);
	assert_string_equal(res->system, "local-1");
	assert_false(res->has_exit_code);
	assert_int_equal(res->exit_code, -1);
	/* The earlier attempt, from old/attempts.jsonl by its number. */
	res = find(r, "/b", NULL, false);
	assert_int_equal(res->attempt, 1);
	assert_string_equal(res->system, "local-2");
	assert_true(res->duration == 1.0);
	assert_int_equal(res->exit_code, 1);
	/* A line of nulls: unknown. */
	res = find(r, "/c", NULL, true);
	assert_null(res->start);
	assert_null(res->end);
	assert_null(res->system);
	assert_true(res->duration < 0);
	assert_false(res->has_exit_code);
	run = atex_results_run(r);
	assert_non_null(run);
	assert_string_equal(run->started, "2026-12-06T22:44:59.000+00:00");
	assert_string_equal(run->ended, "2026-12-06T22:46:11.500+00:00");
	assert_string_equal(run->atex_version, "0.1.0");
	assert_string_equal(run->provisioner, "local");
	assert_string_equal(run->tree, "/abs/tree");
	assert_string_equal(run->git_commit,
			    "0123456789abcdef0123456789abcdef01234567");
	assert_string_equal(run->context,
			    "{\"distro\":\"fedora-41\",\"arch\":[\"x86_64\"]}");
	assert_int_equal(run->systems, 3);
	assert_string_equal(run->history, "[\"/old/r1\",\"/old/r2.sqlite\"]");
	/* 22:44:59.000 to 22:46:11.500. */
	assert_true(atex_results_wall_time(r) > 72.49 &&
		    atex_results_wall_time(r) < 72.51);
	assert_string_equal(warnings, "");
	atex_results_free(r);
}

/* Without run.json, the wall time spans the results' starts and ends. */
static void test_wall_time_from_results(void **state)
{
	char *dir = *state, *p;
	atex_results *r;

	write_run(dir);
	p = path_in(dir, "run/run.json");
	assert_int_equal(unlink(p), 0);
	free(p);
	r = load_ok(dir, "run/results.jsonl");
	assert_null(atex_results_run(r));
	/* 22:45:00.000 (earlier /b) to 22:46:10.000 (final /b). */
	assert_true(atex_results_wall_time(r) > 69.99 &&
		    atex_results_wall_time(r) < 70.01);
	atex_results_free(r);
	assert_true(atex_results_wall_time(NULL) < 0);
	assert_null(atex_results_run(NULL));
}

static void gzip_to(const char *dir, const char *rel, const char *text)
{
	char *p = path_in(dir, rel);
	gzFile gz;

	write_file(dir, rel, "");
	gz = gzopen(p, "wb");
	assert_non_null(gz);
	assert_int_equal(gzputs(gz, text), (int)strlen(text));
	gzclose(gz);
	free(p);
}

/* results.jsonl.gz takes attempts.jsonl.gz first. */
static void test_compressed_sidecar(void **state)
{
	char *dir = *state;
	atex_results *r;

	gzip_to(dir, "run/results.jsonl.gz", results_jsonl);
	gzip_to(dir, "run/attempts.jsonl.gz", attempts_jsonl);
	/* A plain one with other values must not be taken first. */
	write_file(dir, "run/attempts.jsonl",
		   "{\"platform\": \"local\", \"test\": \"/a\", \"system\": "
		   "\"wrong\"}\n");
	r = load_ok(dir, "run/results.jsonl.gz");
	assert_string_equal(find(r, "/a", NULL, true)->system, "local-3");
	assert_string_equal(warnings, "");
	atex_results_free(r);
}

/* Damaged sidecar lines cost only themselves, with a warning naming
 * file:line; the load succeeds. */
static void test_damaged_sidecar(void **state)
{
	char *dir = *state;
	atex_results *r;

	write_file(dir, "run/results.jsonl", results_jsonl);
	write_file(dir, "run/attempts.jsonl",
		   "{\"platform\": \"local\", \"test\": \"/a\", \"duration\": "
		   "\"long\"}\n"
		   "not json\n"
		   "[1, 2]\n"
		   "{\"platform\": \"local\", \"test\": \"/b\", \"duration\": "
		   "2.5, "
		   "\"system\": \"s\"}\n"
		   "{\"platform\": \"local\", \"test\": \"/d\", \"duration\": "
		   "1e300}\n"
		   "{\"platform\": \"local\", \"test\": \"/c\", \"dur");
	r = load_ok(dir, "run/results.jsonl");
	assert_int_equal(atex_results_count(r), 4);
	assert_true(find(r, "/a", NULL, true)->duration < 0);
	assert_true(find(r, "/b", NULL, true)->duration == 2.5);
	assert_contains(warnings, "run/attempts.jsonl:1: not a timing line "
				  "(\"duration\" is not a number of seconds "
				  "or null)");
	assert_contains(warnings, "run/attempts.jsonl:2: not a timing line "
				  "(not JSON");
	assert_contains(warnings, "run/attempts.jsonl:3: not a timing line "
				  "(not a JSON object)");
	assert_contains(warnings, "run/attempts.jsonl:5: not a timing line "
				  "(\"duration\" is not a number of seconds "
				  "or null)");
	assert_contains(warnings, "run/attempts.jsonl: cut short");
	atex_results_free(r);
}

/* A missing sidecar is a warning only where run.json says the run wrote
 * one; results of other tools have none. */
static void test_missing_sidecar(void **state)
{
	char *dir = *state;
	atex_results *r;

	write_file(dir, "run/results.jsonl", results_jsonl);
	r = load_ok(dir, "run/results.jsonl");
	assert_string_equal(warnings, "");
	assert_true(find(r, "/a", NULL, true)->duration < 0);
	atex_results_free(r);
	write_file(dir, "run/run.json", run_json);
	r = load_ok(dir, "run/results.jsonl");
	assert_contains(warnings, "run/attempts.jsonl: missing");
	assert_non_null(atex_results_run(r));
	atex_results_free(r);
}

/* A run.json that is not one is a warning; the results still load. */
static void test_bad_run_json(void **state)
{
	char *dir = *state;
	atex_results *r;

	write_file(dir, "run/results.jsonl", results_jsonl);
	write_file(dir, "run/run.json", "{\"started\": ");
	r = load_ok(dir, "run/results.jsonl");
	assert_null(atex_results_run(r));
	assert_contains(warnings, "run/run.json:1: ");
	assert_contains(warnings, "the run's metadata is left out");
	atex_results_free(r);
	warnings[0] = '\0';
	write_file(dir, "run/run.json",
		   "{\"started\": 5, \"platform\": \"p\", \"context\": [1]}");
	r = load_ok(dir, "run/results.jsonl");
	assert_non_null(atex_results_run(r));
	assert_null(atex_results_run(r)->started);
	assert_string_equal(atex_results_run(r)->platform, "p");
	assert_null(atex_results_run(r)->context);
	assert_null(atex_results_run(r)->history);
	assert_contains(warnings, "\"started\" is not a string");
	assert_contains(warnings, "\"context\" is not an object");
	atex_results_free(r);
}

static void sql(sqlite3 *db, const char *text)
{
	char *err = NULL;

	if (sqlite3_exec(db, text, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", text, err);
}

static sqlite3 *db_new(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);
	sqlite3 *db = NULL;

	write_file(dir, rel, "");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	free(p);
	return db;
}

/* The SQLite aggregator's columns and run table (PROTOCOL.md). */
static void test_sqlite_columns(void **state)
{
	char *dir = *state;
	sqlite3 *db = db_new(dir, "db/results.sqlite");
	atex_results *r;
	const struct atex_result *res;

	sql(db, "CREATE TABLE results(id INTEGER PRIMARY KEY, platform TEXT "
		"NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL, subtest "
		"TEXT, note TEXT, files TEXT NOT NULL, ingested REAL NOT NULL, "
		"attempt INTEGER NOT NULL, final INTEGER NOT NULL, started "
		"TEXT, ended TEXT, duration REAL, system TEXT, exit_code "
		"INTEGER);"
		"CREATE TABLE run(started TEXT NOT NULL, ended TEXT, "
		"atex_version TEXT NOT NULL, platform TEXT, provisioner TEXT, "
		"tree TEXT, git_commit TEXT, context TEXT, first_test TEXT, "
		"systems INTEGER);"
		"INSERT INTO results VALUES(1, 'p', 'pass', '/a', NULL, NULL, "
		"'[]', 1, 2, 1, '2026-12-06T22:45:01.123+00:00', "
		"'2026-12-06T22:45:04.567+00:00', 3.444, 'local-3', 0);"
		"INSERT INTO results VALUES(2, 'p', 'fail', '/a', NULL, NULL, "
		"'[]', 1, 1, 0, '2026-12-06T22:44:01.000+00:00', NULL, 1.5, "
		"'local-1', 2);"
		"INSERT INTO results VALUES(3, 'p', 'pass', '/b', NULL, NULL, "
		"'[]', 1, 1, 1, NULL, NULL, NULL, NULL, NULL);"
		/* Damage: durations that are not ones. */
		"INSERT INTO results VALUES(4, 'p', 'pass', '/c', NULL, NULL, "
		"'[]', 1, 1, 1, NULL, NULL, 1e300, NULL, NULL);"
		"INSERT INTO results VALUES(5, 'p', 'pass', '/d', NULL, NULL, "
		"'[]', 1, 1, 1, NULL, NULL, 'long', NULL, NULL);"
		"INSERT INTO results VALUES(6, 'p', 'pass', '/e', NULL, NULL, "
		"'[]', 1, 1, 1, NULL, NULL, -3, NULL, NULL);"
		"INSERT INTO run VALUES('2026-12-06T22:44:00.000+00:00', NULL, "
		"'0.1.0', 'p', 'podman', '/t', NULL, '{\"distro\": "
		"\"fedora-41\"}', NULL, 2);");
	sqlite3_close(db);
	r = load_ok(dir, "db/results.sqlite");
	res = find(r, "/a", NULL, true);
	assert_string_equal(res->start, "2026-12-06T22:45:01.123+00:00");
	assert_string_equal(res->end, "2026-12-06T22:45:04.567+00:00");
	assert_true(res->duration == 3.444);
	assert_string_equal(res->system, "local-3");
	assert_true(res->has_exit_code);
	res = find(r, "/a", NULL, false);
	assert_int_equal(res->exit_code, 2);
	assert_null(res->end);
	res = find(r, "/b", NULL, true);
	assert_null(res->start);
	assert_true(res->duration < 0);
	assert_false(res->has_exit_code);
	assert_true(find(r, "/c", NULL, true)->duration < 0);
	assert_true(find(r, "/d", NULL, true)->duration < 0);
	assert_true(find(r, "/e", NULL, true)->duration < 0);
	assert_non_null(atex_results_run(r));
	assert_string_equal(atex_results_run(r)->provisioner, "podman");
	assert_null(atex_results_run(r)->ended);
	assert_null(atex_results_run(r)->git_commit);
	assert_string_equal(atex_results_run(r)->context,
			    "{\"distro\":\"fedora-41\"}");
	assert_int_equal(atex_results_run(r)->systems, 2);
	/* The run did not end: from its start (22:44:00) to the last end
	 * of its results (22:45:04.567). */
	assert_true(atex_results_wall_time(r) > 64.566 &&
		    atex_results_wall_time(r) < 64.568);
	atex_results_free(r);
}

/* A database from before issue 14 loads, without timings. */
static void test_sqlite_before_timings(void **state)
{
	char *dir = *state;
	sqlite3 *db = db_new(dir, "db/results.sqlite");
	atex_results *r;

	sql(db, "CREATE TABLE results(id INTEGER PRIMARY KEY, platform TEXT "
		"NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL, subtest "
		"TEXT, note TEXT, files TEXT NOT NULL, ingested REAL NOT NULL, "
		"attempt INTEGER NOT NULL, final INTEGER NOT NULL);"
		"INSERT INTO results VALUES(1, 'p', 'pass', '/a', NULL, NULL, "
		"'[]', 1, 1, 1);");
	sqlite3_close(db);
	r = load_ok(dir, "db/results.sqlite");
	assert_int_equal(atex_results_count(r), 1);
	assert_null(atex_results_get(r, 0)->start);
	assert_true(atex_results_get(r, 0)->duration < 0);
	assert_null(atex_results_run(r));
	assert_string_equal(warnings, "");
	atex_results_free(r);
}

/* What the aggregators write (attempt.json in the artifacts) loads. */
static void test_real_aggregators(void **state)
{
	char *dir = *state;
	struct atex_jsonl_aggregator_options jo =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	struct atex_sqlite_aggregator_options so =
		ATEX_SQLITE_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *j = NULL, *s = NULL;
	char *art = path_in(dir, "art");
	char *out = path_in(dir, "out/results.jsonl");
	char *files = path_in(dir, "out/files");
	char *side = path_in(dir, "out/attempts.jsonl");
	char *db = path_in(dir, "out/results.sqlite");
	atex_results *r;
	const struct atex_result *res;

	write_file(dir, "art/results",
		   "{\"status\": \"pass\", \"files\": [\"out.log\"]}\n"
		   "{\"name\": \"sub\", \"status\": \"fail\"}\n");
	write_file(dir, "art/files/out.log", "log\n");
	write_file(
		dir, "art/attempt.json",
		"{\"start\": \"2026-12-06T22:45:01.123+00:00\", \"end\": "
		"\"2026-12-06T22:45:04.567+00:00\", \"duration\": 3.444, "
		"\"system\": \"local-3\", \"attempt\": 1, \"exit_code\": 0}\n");
	jo.path = out;
	jo.files_dir = files;
	jo.attempts_path = side;
	so.path = db;
	so.run_json = "{\"platform\": \"local\", \"provisioner\": \"local\"}";
	assert_int_equal(atex_jsonl_aggregator_new(&j, &jo), 0);
	assert_int_equal(atex_sqlite_aggregator_new(&s, &so), 0);
	assert_int_equal(atex_aggregator_start(j), 0);
	assert_int_equal(atex_aggregator_start(s), 0);
	assert_int_equal(atex_aggregator_ingest(j, "local", "/t", art), 0);
	assert_int_equal(atex_aggregator_ingest(s, "local", "/t", art), 0);
	assert_int_equal(atex_aggregator_stop(j), 0);
	assert_int_equal(atex_aggregator_stop(s), 0);
	atex_aggregator_free(j);
	atex_aggregator_free(s);
	for (int k = 0; k < 2; k++) {
		r = load_ok(dir,
			    k ? "out/results.sqlite" : "out/results.jsonl");
		res = find(r, "/t", "sub", true);
		assert_string_equal(res->start,
				    "2026-12-06T22:45:01.123+00:00");
		assert_string_equal(res->system, "local-3");
		assert_true(res->duration == 3.444);
		assert_true(res->has_exit_code);
		if (k) {
			assert_non_null(atex_results_run(r));
			assert_string_equal(atex_results_run(r)->provisioner,
					    "local");
			assert_non_null(atex_results_run(r)->ended);
		}
		atex_results_free(r);
	}
	assert_string_equal(warnings, "");
	free(art);
	free(out);
	free(files);
	free(side);
	free(db);
}

/* ---- renderers ---- */

static char *render(const char *dir, atex_results *r, const char *kind)
{
	char *p = path_in(dir, kind), *text;

	if (!strcmp(kind, "page.html"))
		assert_int_equal(atex_report_html(r, p, "t"), 0);
	else if (!strcmp(kind, "junit.xml"))
		assert_int_equal(atex_report_junit(r, p), 0);
	else if (!strcmp(kind, "results.yaml"))
		assert_int_equal(atex_report_tmt(r, p), 0);
	else {
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		assert_true(fd >= 0);
		assert_int_equal(atex_report_summary(r, fd), 0);
		close(fd);
	}
	text = read_whole(p);
	free(p);
	return text;
}

static void test_html(void **state)
{
	char *dir = *state, *html;
	atex_results *r;

	write_run(dir);
	r = load_ok(dir, "run/results.jsonl");
	html = render(dir, r, "page.html");
	/* Sortable headers; rows carry what they sort by. */
	assert_contains(html, "<th data-sort=\"duration\" data-first=\"-\" "
			      "aria-sort=\"none\"><button type=\"button\" "
			      "class=\"sort\">Duration</button></th>");
	assert_contains(html, "<th data-sort=\"status\"");
	assert_contains(html, "<th data-sort=\"test\"");
	assert_contains(html, "data-test=\"/a\" data-subtest=\"\" "
			      "data-attempt=\"1\" data-final=\"1\" "
			      "data-rank=\"6\" data-duration=\"3.444\" "
			      "data-started=\"2026-12-06T22:45:01.123+00:00\" "
			      "data-system=\"local-3\" data-exit-code=\"0\"");
	assert_contains(html, "<td class=\"duration\" "
			      "title=\"2026-12-06T22:45:01.123+00:00 to "
			      "2026-12-06T22:45:04.567+00:00, exit code "
			      "0\">3.4s</td><td class=\"system\">local-3</td>");
	assert_contains(html, "<time datetime=\"2026-12-06T22:45:01.123+00:00\""
			      ">2026-12-06 22:45:01</time>");
	assert_contains(html, "<td class=\"duration\" title=\"2026-12-06T22:45:"
			      "05.000+00:00 to 2026-12-06T22:46:10.000+00:00\">"
			      "1m05s</td>");
	/* Unknown: empty. */
	assert_contains(html, "data-test=\"/c\" data-subtest=\"\" "
			      "data-attempt=\"1\" data-final=\"1\" "
			      "data-rank=\"6\" data-duration=\"\" "
			      "data-started=\"\" data-system=\"\" "
			      "data-exit-code=\"\"");
	/* The run in the header. */
	assert_contains(html, "<dt>Started</dt><dd>2026-12-06T22:44:59.000"
			      "+00:00</dd>");
	assert_contains(html, "<dt>Wall time</dt><dd>1m13s</dd>");
	assert_contains(html, "<dt>Test time</dt><dd>1m09s (3 attempts)</dd>");
	assert_contains(html, "<dt>atex</dt><dd>0.1.0</dd>");
	assert_contains(html, "<dt>Provisioner</dt><dd>local</dd>");
	assert_contains(html, "<dt>Git commit</dt><dd>0123456789abcdef0123456"
			      "789abcdef01234567</dd>");
	assert_contains(html, "<dt>Context</dt><dd>distro=fedora-41, "
			      "arch=x86_64</dd>");
	assert_contains(html, "<dt>Systems</dt><dd>3</dd>");
	assert_contains(html, "<dt>History</dt><dd>/old/r1, "
			      "/old/r2.sqlite</dd>");
	assert_lacks(html, "http://");
	assert_lacks(html, "https://");
	free(html);
	atex_results_free(r);
}

/* Results without timings: no run block, empty cells. */
static void test_html_without_timings(void **state)
{
	char *dir = *state, *html;
	atex_results *r;

	write_file(dir, "run/results.jsonl", results_jsonl);
	r = load_ok(dir, "run/results.jsonl");
	html = render(dir, r, "page.html");
	assert_lacks(html, "<dl id=\"run\">");
	assert_contains(html, "<td class=\"duration\"></td><td "
			      "class=\"system\"></td><td class=\"started\">"
			      "</td>");
	free(html);
	atex_results_free(r);
}

static void test_junit(void **state)
{
	char *dir = *state, *xml;
	atex_results *r;

	write_run(dir);
	r = load_ok(dir, "run/results.jsonl");
	xml = render(dir, r, "junit.xml");
	assert_contains(xml, "<testcase classname=\"/a\" name=\"/a\" "
			     "time=\"3.444\">");
	/* A subtest has no time of its own. */
	assert_contains(xml, "<testcase classname=\"/a\" name=\"s1\">");
	assert_contains(xml, "<testcase classname=\"/b\" name=\"/b\" "
			     "time=\"65.000\">");
	assert_contains(xml, "<testcase classname=\"/c\" name=\"/c\">");
	/* 3.444 + 65: the earlier attempt is not in the suite. */
	assert_contains(xml, "<testsuite name=\"local\" tests=\"4\" "
			     "failures=\"1\" errors=\"1\" skipped=\"0\" "
			     "time=\"68.444\" "
			     "timestamp=\"2026-12-06T22:45:01\">");
	assert_contains(xml, "<property name=\"system\" value=\"local-3\"/>");
	assert_contains(xml, "<property name=\"exit_code\" value=\"0\"/>");
	free(xml);
	atex_results_free(r);
	/* One system for the whole suite: its hostname. */
	write_file(dir, "one/results.jsonl",
		   "[\"p\", \"pass\", \"/x\", null, [], null]\n");
	write_file(dir, "one/attempts.jsonl",
		   "{\"platform\": \"p\", \"test\": \"/x\", \"duration\": 0.5, "
		   "\"system\": \"host-1\", \"start\": "
		   "\"2026-12-06T23:59:59.900-01:00\"}\n");
	r = load_ok(dir, "one/results.jsonl");
	xml = render(dir, r, "junit.xml");
	/* The timestamp in UTC. */
	assert_contains(xml, "time=\"0.500\" timestamp=\"2026-12-07T00:59:59\" "
			     "hostname=\"host-1\">");
	free(xml);
	atex_results_free(r);
}

static void test_summary(void **state)
{
	char *dir = *state, *text;
	struct atex_buf lines = ATEX_BUF_INIT, side = ATEX_BUF_INIT;
	atex_results *r;

	write_run(dir);
	r = load_ok(dir, "run/results.jsonl");
	text = render(dir, r, "summary.txt");
	assert_contains(text, "\nSlowest tests:\n"
			      "1m05s  /b  local-1\n"
			      " 3.4s  /a  local-3\n"
			      "\nWall time 1m13s, test time 1m09s (3 "
			      "attempts)\n");
	free(text);
	atex_results_free(r);
	/* Twelve tests: the ten slowest, longest first. */
	for (int i = 1; i <= 12; i++) {
		atex_buf_printf(
			&lines,
			"[\"p\", \"pass\", \"/t%02d\", null, [], null]\n", i);
		atex_buf_printf(&side,
				"{\"platform\": \"p\", \"test\": \"/t%02d\", "
				"\"duration\": %d, \"system\": \"s%d\"}\n",
				i, i * 10, i % 3);
	}
	write_file(dir, "many/results.jsonl", atex_buf_cstr(&lines));
	write_file(dir, "many/attempts.jsonl", atex_buf_cstr(&side));
	r = load_ok(dir, "many/results.jsonl");
	text = render(dir, r, "summary.txt");
	assert_contains(text, "Slowest tests:\n2m00s  /t12  s0\n1m50s  /t11  "
			      "s2\n");
	assert_contains(text, "\n30.0s  /t03  s0\n\nTest time 13m00s (12 "
			      "attempts)\n");
	assert_lacks(text, "/t02");
	free(text);
	atex_results_free(r);
	atex_buf_free(&lines);
	atex_buf_free(&side);
}

/* Without timings the summary is as before. */
static void test_summary_without_timings(void **state)
{
	char *dir = *state, *text;
	atex_results *r;

	write_file(dir, "run/results.jsonl", results_jsonl);
	r = load_ok(dir, "run/results.jsonl");
	text = render(dir, r, "summary.txt");
	assert_lacks(text, "Slowest");
	assert_lacks(text, "Wall time");
	free(text);
	atex_results_free(r);
}

/* ---- tmt ---- */

static json_t *tmt_yaml(const char *dir, atex_results *r)
{
	char *text = render(dir, r, "results.yaml");
	json_t *doc = NULL;

	if (atex_yaml_load(&doc, text, strlen(text), "results.yaml", NULL))
		fail_msg("%s\n%s", atex_error_last(), text);
	free(text);
	assert_true(json_is_array(doc));
	return doc;
}

static void assert_json(json_t *got, const char *want)
{
	json_error_t err;
	json_t *w = json_loads(want, JSON_DECODE_ANY, &err);

	if (!w)
		fail_msg("bad expectation %s: %s", want, err.text);
	if (!json_equal(got, w)) {
		char *g = json_dumps(got, JSON_INDENT(2));

		fail_msg("got %s\nwant %s", g, want);
	}
	json_decref(w);
}

static void test_tmt(void **state)
{
	char *dir = *state;
	atex_results *r;
	json_t *doc;

	write_run(dir);
	r = load_ok(dir, "run/results.jsonl");
	doc = tmt_yaml(dir, r);
	assert_int_equal(json_array_size(doc), 3);
	assert_json(json_array_get(doc, 0),
		    "{\"name\": \"/a\", \"result\": \"pass\", \"note\": [],"
		    " \"log\": [\"run/files/local/a/out.txt\"],"
		    " \"start-time\": \"2026-12-06T22:45:01.123+00:00\","
		    " \"end-time\": \"2026-12-06T22:45:04.567+00:00\","
		    " \"duration\": \"00:00:03\", \"serial-number\": 1,"
		    " \"context\": {\"distro\": \"fedora-41\","
		    "   \"arch\": [\"x86_64\"]},"
		    " \"guest\": {\"name\": \"local-3\", \"role\": \"local\"},"
		    " \"subresult\": [{\"name\": \"/s1\", \"result\": \"fail\","
		    "   \"note\": [\"bad\"],"
		    "   \"log\": [\"run/files/local/a/s1/s.log\"],"
		    "   \"check\": []}],"
		    " \"check\": [], \"data-path\": \"run/files/local/a\"}");
	/* infra is tmt's error, with a note; the earlier attempt is out. */
	assert_json(json_object_get(json_array_get(doc, 1), "note"),
		    "[\"lost\", \"atex status: infra (the infrastructure "
		    "failed, not the test)\"]");
	assert_json(json_object_get(json_array_get(doc, 1), "result"),
		    "\"error\"");
	assert_json(json_object_get(json_array_get(doc, 1), "duration"),
		    "\"00:01:05\"");
	/* No timings: no times, the platform as the guest's name. */
	assert_json(json_array_get(doc, 2),
		    "{\"name\": \"/c\", \"result\": \"pass\", \"note\": [],"
		    " \"log\": [], \"serial-number\": 3,"
		    " \"context\": {\"distro\": \"fedora-41\","
		    "   \"arch\": [\"x86_64\"]},"
		    " \"guest\": {\"name\": \"local\", \"role\": \"local\"},"
		    " \"subresult\": [], \"check\": [],"
		    " \"data-path\": \"run/files/local/c\"}");
	json_decref(doc);
	atex_results_free(r);
}

/* Custom statuses, names without '/', hostile strings, tests with only
 * subtests, long durations. */
static void test_tmt_edges(void **state)
{
	char *dir = *state;
	atex_results *r;
	json_t *doc, *e;

	write_file(dir, "x/results.jsonl",
		   "[\"p\", \"mine\", \"t: 1\", null, [], \"a\\nb \\\"q\\\" "
		   "\\u0001 \\u0085 \\u2028 \\ufeff: #x\"]\n"
		   "[\"p\", \"pass\", \"/only\", \"s: a\", [], null]\n"
		   "[\"p\", \"error\", \"/only\", \"s2\", [], null]\n"
		   "[\"p\", \"warn\", \"/only\", \"s3\", [], null]\n");
	write_file(dir, "x/attempts.jsonl",
		   "{\"platform\": \"p\", \"test\": \"t: 1\", \"duration\": "
		   "3665.9, \"start\": \"not a time\"}\n");
	r = load_ok(dir, "x/results.jsonl");
	doc = tmt_yaml(dir, r);
	assert_int_equal(json_array_size(doc), 2);
	e = json_array_get(doc, 0);
	assert_json(json_object_get(e, "name"), "\"/t: 1\"");
	assert_json(json_object_get(e, "result"), "\"fail\"");
	assert_json(json_object_get(e, "note"),
		    "[\"a\\nb \\\"q\\\" \\u0001 \\u0085 \\u2028 \\ufeff: #x\", "
		    "\"atex status: mine\"]");
	/* tmt truncates to whole seconds. */
	assert_json(json_object_get(e, "duration"), "\"01:01:05\"");
	assert_null(json_object_get(e, "start-time"));
	e = json_array_get(doc, 1);
	/* The worst of its subtests, in tmt's order. */
	assert_json(json_object_get(e, "result"), "\"error\"");
	assert_json(json_object_get(e, "note"), "[]");
	assert_null(json_object_get(e, "data-path"));
	assert_int_equal(json_array_size(json_object_get(e, "subresult")), 3);
	assert_json(json_object_get(
			    json_array_get(json_object_get(e, "subresult"), 0),
			    "name"),
		    "\"/s: a\"");
	json_decref(doc);
	atex_results_free(r);
	/* Nothing final: an empty list. */
	write_file(dir, "e/results.jsonl", "");
	r = load_ok(dir, "e/results.jsonl");
	doc = tmt_yaml(dir, r);
	assert_int_equal(json_array_size(doc), 0);
	json_decref(doc);
	assert_int_equal(atex_report_tmt(NULL, "x"), ATEX_EINVAL);
	assert_int_equal(atex_report_tmt(r, NULL), ATEX_EINVAL);
	atex_results_free(r);
}

/* Damaged timing data is a warning naming where it is, and unknown:
 * SQLite values of the wrong type or range, run.json times that are not
 * times, a sidecar with two lines for one attempt. */
static void test_damaged_values(void **state)
{
	char *dir = *state, *xml, *html;
	sqlite3 *db = db_new(dir, "db/results.sqlite");
	atex_results *r;
	const struct atex_result *res;

	sql(db, "CREATE TABLE results(id INTEGER PRIMARY KEY, platform TEXT "
		"NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL, subtest "
		"TEXT, note TEXT, files TEXT NOT NULL, ingested REAL NOT NULL, "
		"attempt INTEGER NOT NULL, final INTEGER NOT NULL, started "
		"TEXT, ended TEXT, duration REAL, system TEXT, exit_code "
		"INTEGER);"
		"CREATE TABLE run(started TEXT NOT NULL, ended TEXT, "
		"atex_version TEXT NOT NULL, platform TEXT, provisioner TEXT, "
		"tree TEXT, git_commit TEXT, context TEXT, first_test TEXT, "
		"systems INTEGER);"
		"INSERT INTO results VALUES(1, 'p', 'pass', '/d', NULL, NULL, "
		"'[]', 1, 1, 1, NULL, NULL, 'abc', NULL, NULL);"
		"INSERT INTO results VALUES(2, 'p', 'pass', '/e', NULL, NULL, "
		"'[]', 1, 2, 1, NULL, NULL, -3, NULL, NULL);"
		"INSERT INTO results VALUES(3, 'p', 'pass', '/s', NULL, NULL, "
		"'[]', 1, 1, 1, 42, 'soon', 1.5, NULL, 'x');"
		"INSERT INTO run VALUES(42, 'later', '0.1.0', 'p', NULL, NULL, "
		"NULL, '[1', NULL, 'two');");
	sqlite3_close(db);
	r = load_ok(dir, "db/results.sqlite");
	assert_contains(warnings, "db/results.sqlite: table results, row 1 "
				  "(test /d, attempt 1): \"duration\" is not "
				  "a number of seconds");
	assert_contains(warnings, "db/results.sqlite: table results, row 2 "
				  "(test /e, attempt 2): \"duration\" is not "
				  "a number of seconds");
	assert_contains(warnings, "row 3 (test /s, attempt 1): \"started\" is "
				  "not an ISO 8601 time ('42')");
	assert_contains(warnings, "row 3 (test /s, attempt 1): \"ended\" is "
				  "not an ISO 8601 time ('soon')");
	assert_contains(warnings, "row 3 (test /s, attempt 1): \"exit_code\" "
				  "is not an integer");
	assert_contains(warnings, "db/results.sqlite: table run: \"started\" "
				  "is not an ISO 8601 time");
	assert_contains(warnings, "db/results.sqlite: table run: \"ended\" "
				  "is not an ISO 8601 time");
	assert_contains(warnings, "db/results.sqlite: table run: \"context\" "
				  "is not JSON");
	assert_contains(warnings, "db/results.sqlite: table run: \"systems\" "
				  "is not a count");
	res = find(r, "/s", NULL, true);
	assert_null(res->start);
	assert_null(res->end);
	assert_false(res->has_exit_code);
	assert_true(res->duration == 1.5);
	assert_true(find(r, "/d", NULL, true)->duration < 0);
	assert_true(find(r, "/e", NULL, true)->duration < 0);
	assert_null(atex_results_run(r)->started);
	assert_null(atex_results_run(r)->ended);
	assert_int_equal(atex_results_run(r)->systems, -1);
	xml = render(dir, r, "junit.xml");
	assert_lacks(xml, "\"42\"");
	assert_lacks(xml, "soon");
	free(xml);
	atex_results_free(r);

	/* run.json's times; a sidecar line twice. */
	warnings[0] = '\0';
	write_run(dir);
	write_file(dir, "run/run.json",
		   "{\"started\": \"junk\", \"ended\": "
		   "\"2026-12-06T22:46:11.500+00:00\", \"platform\": \"p\"}");
	write_file(dir, "run/attempts.jsonl",
		   "{\"platform\": \"local\", \"test\": \"/a\", \"attempt\": 1, "
		   "\"duration\": 1.0}\n"
		   "{\"platform\": \"local\", \"test\": \"/b\", \"attempt\": 2, "
		   "\"duration\": 2.0, \"start\": \"yesterday\"}\n"
		   "{\"platform\": \"local\", \"test\": \"/a\", \"attempt\": 1, "
		   "\"duration\": 3.0}\n");
	r = load_ok(dir, "run/results.jsonl");
	assert_contains(warnings, "run/run.json: \"started\" is not an ISO "
				  "8601 time ('junk')");
	assert_lacks(warnings, "\"ended\" is not");
	assert_null(atex_results_run(r)->started);
	assert_string_equal(atex_results_run(r)->ended,
			    "2026-12-06T22:46:11.500+00:00");
	assert_contains(warnings, "run/attempts.jsonl:3: a second line for "
				  "the same platform, test and attempt");
	assert_contains(warnings, "run/attempts.jsonl:2: \"start\" is not an "
				  "ISO 8601 time ('yesterday')");
	assert_true(find(r, "/a", NULL, true)->duration == 3.0);
	assert_null(find(r, "/b", NULL, true)->start);
	assert_true(find(r, "/b", NULL, true)->duration == 2.0);
	html = render(dir, r, "page.html");
	assert_lacks(html, "junk");
	assert_lacks(html, "yesterday");
	free(html);
	atex_results_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_jsonl_sidecars, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wall_time_from_results,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_sidecar, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_sidecar, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_sidecar, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_run_json, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_columns, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_before_timings,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_aggregators, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_html, setup, teardown),
		cmocka_unit_test_setup_teardown(test_html_without_timings,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_junit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_without_timings,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmt_edges, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_values, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
