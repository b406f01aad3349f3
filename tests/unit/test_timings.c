/*
 * test_timings.c - issue 14's timings and provenance: ARTIFACTS/attempt.json
 * written and read (src/aggregator/attempt.c), the SQLite aggregator's
 * timing columns and `run` table, the JSON Lines attempts sidecar (plain,
 * compressed, taken back by the multi aggregator) and the YAML keys.
 */
#include <fcntl.h>
#include <jansson.h>
#include <lzma.h>
#include <pthread.h>
#include <sqlite3.h>
#include <zlib.h>

#include "helpers.h"

#include "aggregator/ingest.h"
#include "atex/aggregator.h"
#include "util/util.h"

struct fixture {
	char *tmp;
	char art[512]; /* an artifacts directory in tmp */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->tmp = tmpdir_new();
	snprintf(f->art, sizeof(f->art), "%s/art", f->tmp);
	assert_int_equal(mkdir(f->art, 0755), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tree_remove(f->tmp);
	free(f);
	return 0;
}

/* ---- helpers ---- */

/* Warnings logged, one per line, for the tests that expect them. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct atex_buf logged = ATEX_BUF_INIT;

static void log_handler(int level, const char *component, const char *msg,
			void *userdata)
{
	(void)component;
	(void)userdata;
	if (level > ATEX_LOG_WARNING)
		return;
	pthread_mutex_lock(&log_lock);
	atex_buf_printf(&logged, "%s\n", msg);
	pthread_mutex_unlock(&log_lock);
}

static char *path_in(const char *dir, const char *rel)
{
	char *p = atex_path_join(dir, rel);

	assert_non_null(p);
	return p;
}

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t n = 0;

	if (atex_file_read(&text, &n, path) < 0)
		fail_msg("%s", atex_error_last());
	return text;
}

static void ingest_ok(atex_aggregator *a, const char *platform,
		      const char *test, const char *art)
{
	int rc = atex_aggregator_ingest(a, platform, test, art);

	if (rc)
		fail_msg("ingest %s: %d: %s", test, rc, atex_error_last());
}

static void assert_json_text(const char *got, const char *expected)
{
	json_error_t err;
	json_t *g = json_loads(got, 0, &err), *w;

	if (!g)
		fail_msg("not JSON: %s: %s", got, err.text);
	w = json_loads(expected, 0, &err);
	assert_non_null(w);
	if (!json_equal(g, w))
		fail_msg("got %s\nwant %s", got, expected);
	json_decref(g);
	json_decref(w);
}

/* Two results of one test: its own and a subtest. */
static void write_results(const char *art)
{
	write_file(art, "results",
		   "{\"status\": \"pass\", \"files\": [\"out.log\"]}\n"
		   "{\"name\": \"sub\", \"status\": \"fail\"}\n");
	write_file(art, "files/out.log", "log\n");
}

static const char attempt1[] =
	"{\"start\": \"2026-12-06T22:45:01.123+00:00\","
	" \"end\": \"2026-12-06T22:45:04.567+00:00\", \"duration\": 3.444,"
	" \"system\": \"local-3\", \"attempt\": 1, \"exit_code\": 0}\n";

static void remove_in(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);

	assert_int_equal(unlink(p), 0);
	free(p);
}

/* ---- attempt.json ---- */

static void test_attempt_written(void **state)
{
	struct fixture *f = *state;
	struct atex_ingest_attempt a = ATEX_INGEST_ATTEMPT_INIT, r;
	struct timespec ts = {.tv_sec = 1796597101, .tv_nsec = 123999999};
	char *path = path_in(f->art, "attempt.json"), *text;

	atex_ingest_iso_time(a.start, &ts);
	assert_string_equal(a.start, "2026-12-06T22:45:01.123+00:00");
	ts.tv_sec += 3;
	ts.tv_nsec = 567000000;
	atex_ingest_iso_time(a.end, &ts);
	a.duration = 3.4443999;
	a.system = (char *)"local-3";
	a.attempt = 2;
	a.exit_code = 1;
	a.has_exit_code = true;
	assert_int_equal(atex_ingest_write_attempt(f->art, &a), 0);
	text = slurp(path);
	/* Milliseconds, printed as such (not 3.4440000000000002). */
	assert_non_null(strstr(text, "\"duration\":3.444,"));
	assert_json_text(text, "{\"start\":\"2026-12-06T22:45:01.123+00:00\","
			       "\"end\":\"2026-12-06T22:45:04.567+00:00\","
			       "\"duration\":3.444,\"system\":\"local-3\","
			       "\"attempt\":2,\"exit_code\":1}");
	free(text);
	assert_int_equal(atex_ingest_read_attempt(&r, f->art), 0);
	assert_string_equal(r.start, "2026-12-06T22:45:01.123+00:00");
	assert_string_equal(r.end, "2026-12-06T22:45:04.567+00:00");
	assert_true(r.duration > 3.4439 && r.duration < 3.4441);
	assert_string_equal(r.system, "local-3");
	assert_int_equal(r.attempt, 2);
	assert_int_equal(r.exit_code, 1);
	assert_true(r.has_exit_code);
	atex_ingest_attempt_release(&r);

	/* Unknown values are nulls, and read back unknown. */
	a = (struct atex_ingest_attempt)ATEX_INGEST_ATTEMPT_INIT;
	assert_int_equal(atex_ingest_write_attempt(f->art, &a), 0);
	text = slurp(path);
	assert_json_text(text, "{\"start\":null,\"end\":null,\"duration\":null,"
			       "\"system\":null,\"attempt\":null,"
			       "\"exit_code\":null}");
	free(text);
	assert_int_equal(atex_ingest_read_attempt(&r, f->art), 0);
	assert_string_equal(r.start, "");
	assert_true(r.duration < 0);
	assert_null(r.system);
	assert_int_equal(r.attempt, 0);
	assert_false(r.has_exit_code);
	atex_ingest_attempt_release(&r);
	free(path);
}

static void test_attempt_read_bad(void **state)
{
	struct fixture *f = *state;
	struct atex_ingest_attempt r;

	/* None: fine, silent. */
	atex_buf_clear(&logged);
	assert_int_equal(atex_ingest_read_attempt(&r, f->art), ATEX_ENOTFOUND);
	assert_true(r.duration < 0);
	assert_null(r.system);
	assert_int_equal(logged.len, 0);

	/* Not JSON: a warning naming the file, everything unknown. */
	write_file(f->art, "attempt.json", "{\"start\": \"2026-");
	assert_int_equal(atex_ingest_read_attempt(&r, f->art), ATEX_EFORMAT);
	assert_string_equal(r.start, "");
	assert_null(r.system);
	assert_non_null(strstr(atex_buf_cstr(&logged), "art/attempt.json"));
	write_file(f->art, "attempt.json", "[1]");
	assert_int_equal(atex_ingest_read_attempt(&r, f->art), ATEX_EFORMAT);

	/* A bad key costs that key alone, with a warning naming it. */
	atex_buf_clear(&logged);
	write_file(f->art, "attempt.json",
		   "{\"start\": \"yesterday\", \"end\": "
		   "\"2026-12-06T22:45:04.567+00:00\", \"duration\": \"3\","
		   " \"system\": 7, \"attempt\": 0, \"exit_code\": 3}");
	assert_int_equal(atex_ingest_read_attempt(&r, f->art), 0);
	assert_string_equal(r.start, "");
	assert_string_equal(r.end, "2026-12-06T22:45:04.567+00:00");
	assert_true(r.duration < 0);
	assert_null(r.system);
	assert_int_equal(r.attempt, 0);
	assert_int_equal(r.exit_code, 3);
	assert_true(r.has_exit_code);
	assert_non_null(strstr(atex_buf_cstr(&logged), "\"start\""));
	assert_non_null(strstr(atex_buf_cstr(&logged), "\"duration\""));
	assert_non_null(strstr(atex_buf_cstr(&logged), "\"system\""));
	assert_non_null(strstr(atex_buf_cstr(&logged), "\"attempt\""));
	assert_non_null(strstr(atex_buf_cstr(&logged), "attempt.json"));
	atex_ingest_attempt_release(&r);
}

/* ---- SQLite ---- */

static atex_aggregator *sqlite_new(const char *path, const char *run_json)
{
	struct atex_sqlite_aggregator_options o =
		ATEX_SQLITE_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = NULL;

	o.path = path;
	o.run_json = run_json;
	assert_int_equal(atex_sqlite_aggregator_new(&a, &o), 0);
	return a;
}

/* The rows of `sql` as one line per row, columns separated by "|". */
static char *query(const char *path, const char *sql)
{
	struct atex_buf b = ATEX_BUF_INIT;
	sqlite3_stmt *st;
	sqlite3 *db;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const unsigned char *v = sqlite3_column_text(st, i);

			atex_buf_printf(&b, "%s%s", i ? "|" : "",
					v ? (const char *)v : "NULL");
		}
		atex_buf_putc(&b, '\n');
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (!b.len)
		return strdup("");
	return atex_buf_detach(&b);
}

static void assert_query(const char *db, const char *sql, const char *want)
{
	char *got = query(db, sql);

	if (strcmp(got, want))
		fail_msg("%s:\ngot  %s\nwant %s", sql, got, want);
	free(got);
}

static void test_sqlite_timings(void **state)
{
	struct fixture *f = *state;
	char *db = path_in(f->tmp, "r.sqlite");
	atex_aggregator *a =
		sqlite_new(db, "{\"platform\": \"fedora-41\", \"provisioner\":"
			       " \"local\", \"tree\": \"/src/tests\","
			       " \"git_commit\": null, \"context\":"
			       " {\"distro\": \"fedora-41\", \"arch\": "
			       "\"x86_64\"}}");
	atex_aggregator *e = NULL;

	assert_int_equal(atex_sqlite_aggregator_earlier(&e, a), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	assert_query(db,
		     "SELECT started IS NOT NULL, ended, atex_version,"
		     " platform, provisioner, tree, git_commit, context,"
		     " first_test, systems FROM run",
		     "1|NULL|" ATEX_VERSION_STRING "|fedora-41|local|"
		     "/src/tests|NULL|{\"arch\":\"x86_64\","
		     "\"distro\":\"fedora-41\"}|NULL|NULL\n");

	/* An earlier attempt (attempt.json says 1) and the final one (2),
	 * each on its own system. */
	write_results(f->art);
	write_file(f->art, "attempt.json",
		   "{\"start\": \"2026-12-06T22:45:05.000+00:00\","
		   " \"end\": \"2026-12-06T22:45:06.500+00:00\","
		   " \"duration\": 1.5, \"system\": \"local-2\","
		   " \"attempt\": 2, \"exit_code\": 1}");
	ingest_ok(a, "p", "/t", f->art);
	write_file(f->art, "attempt.json", attempt1);
	ingest_ok(e, "p", "/t", f->art);
	/* A program's own artifacts: no attempt.json, counted as before. */
	remove_in(f->art, "attempt.json");
	ingest_ok(a, "p", "/u", f->art);
	/* A malformed one: a warning, the results kept, the values NULL. */
	write_file(f->art, "attempt.json", "not json");
	atex_buf_clear(&logged);
	ingest_ok(a, "p", "/v", f->art);
	assert_non_null(strstr(atex_buf_cstr(&logged), "attempt.json"));

	assert_query(db,
		     "SELECT test, subtest, status, attempt, final, started,"
		     " ended, duration, system, exit_code FROM results"
		     " ORDER BY id",
		     "/t|NULL|pass|2|1|2026-12-06T22:45:05.000+00:00|"
		     "2026-12-06T22:45:06.500+00:00|1.5|local-2|1\n"
		     "/t|sub|fail|2|1|2026-12-06T22:45:05.000+00:00|"
		     "2026-12-06T22:45:06.500+00:00|1.5|local-2|1\n"
		     "/t|NULL|pass|1|0|2026-12-06T22:45:01.123+00:00|"
		     "2026-12-06T22:45:04.567+00:00|3.444|local-3|0\n"
		     "/t|sub|fail|1|0|2026-12-06T22:45:01.123+00:00|"
		     "2026-12-06T22:45:04.567+00:00|3.444|local-3|0\n"
		     "/u|NULL|pass|1|1|NULL|NULL|NULL|NULL|NULL\n"
		     "/u|sub|fail|1|1|NULL|NULL|NULL|NULL|NULL\n"
		     "/v|NULL|pass|1|1|NULL|NULL|NULL|NULL|NULL\n"
		     "/v|sub|fail|1|1|NULL|NULL|NULL|NULL|NULL\n");
	assert_query(db,
		     "SELECT typeof(duration), typeof(exit_code) FROM"
		     " results WHERE id = 1",
		     "real|integer\n");
	assert_int_equal(atex_aggregator_stop(a), 0);
	assert_query(db,
		     "SELECT ended IS NOT NULL, ended >= started,"
		     " first_test, systems FROM run",
		     "1|1|2026-12-06T22:45:01.123+00:00|2\n");
	atex_aggregator_free(e);
	atex_aggregator_free(a);
	free(db);
}

static void test_sqlite_options(void **state)
{
	struct fixture *f = *state;
	char *db = path_in(f->tmp, "v1.sqlite");
	/* A program built against version 1 of the options. */
	struct {
		unsigned int version;
		const char *path, *files_dir;
	} v1 = {1, db, NULL};
	struct atex_sqlite_aggregator_options o =
		ATEX_SQLITE_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = NULL;

	assert_int_equal(
		atex_sqlite_aggregator_new(
			&a, (const struct atex_sqlite_aggregator_options *)&v1),
		0);
	assert_int_equal(atex_aggregator_start(a), 0);
	write_results(f->art);
	write_file(f->art, "attempt.json", attempt1);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	assert_query(db,
		     "SELECT atex_version, platform, context, systems FROM run",
		     ATEX_VERSION_STRING "|NULL|NULL|1\n");
	assert_query(db, "SELECT DISTINCT system, duration FROM results",
		     "local-3|3.444\n");
	atex_aggregator_free(a);

	/* A bad run_json is refused, naming the key. */
	o.path = db;
	o.run_json = "[]";
	assert_int_equal(atex_sqlite_aggregator_new(&a, &o), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "run_json"));
	o.run_json = "{\"tree\": 1}";
	assert_int_equal(atex_sqlite_aggregator_new(&a, &o), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "tree"));
	o.run_json = "{\"context\": \"a=b\"}";
	assert_int_equal(atex_sqlite_aggregator_new(&a, &o), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "context"));
	assert_null(a);
	free(db);
}

/* ---- the JSON Lines attempts sidecar ---- */

static atex_aggregator *jsonl_new(const char *path, const char *attempts,
				  bool earlier)
{
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = NULL;

	o.path = path;
	o.compression = ATEX_COMPRESSION_AUTO;
	o.attempts_path = attempts;
	o.attempts_earlier = earlier;
	if (atex_jsonl_aggregator_new(&a, &o) < 0)
		fail_msg("%s", atex_error_last());
	return a;
}

/* A whole gzip or xz file decoded with its library. */
static char *decode(const char *path)
{
	char *raw = NULL, *text = calloc(1, 1 << 20);
	size_t len = 0, out = 0;

	assert_non_null(text);
	assert_int_equal(atex_file_read(&raw, &len, path), 0);
	if (strstr(path, ".gz")) {
		z_stream z = {0};

		assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
		z.next_in = (Bytef *)raw;
		z.avail_in = (uInt)len;
		z.next_out = (Bytef *)text;
		z.avail_out = (1 << 20) - 1;
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		out = z.total_out;
		inflateEnd(&z);
	} else {
		size_t in_pos = 0;
		uint64_t memlimit = UINT64_MAX;

		assert_int_equal(lzma_stream_buffer_decode(
					 &memlimit, 0, NULL, (uint8_t *)raw,
					 &in_pos, len, (uint8_t *)text, &out,
					 (1 << 20) - 1),
				 LZMA_OK);
	}
	text[out] = '\0';
	free(raw);
	return text;
}

static void test_sidecar(void **state)
{
	struct fixture *f = *state;
	char *main_path = path_in(f->tmp, "results.jsonl");
	char *side = path_in(f->tmp, "attempts.jsonl");
	char *old_main = path_in(f->tmp, "old.jsonl");
	char *old_side = path_in(f->tmp, "old-attempts.jsonl");
	atex_aggregator *a = jsonl_new(main_path, side, false);
	atex_aggregator *e = jsonl_new(old_main, old_side, true);
	char *text;

	assert_int_equal(atex_aggregator_start(a), 0);
	assert_int_equal(atex_aggregator_start(e), 0);
	write_results(f->art);
	write_file(f->art, "attempt.json", attempt1);
	ingest_ok(e, "p", "/t", f->art);
	write_file(f->art, "attempt.json",
		   "{\"start\": \"2026-12-06T22:45:05.000+00:00\","
		   " \"end\": null, \"duration\": 0.2,"
		   " \"system\": \"local-1\", \"attempt\": 2,"
		   " \"exit_code\": null}");
	ingest_ok(a, "p", "/t", f->art);
	remove_in(f->art, "attempt.json");
	ingest_ok(a, "p", "/u", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	assert_int_equal(atex_aggregator_stop(e), 0);

	/* The results lines keep their six fields. */
	text = slurp(main_path);
	assert_string_equal(text,
			    "[\"p\",\"pass\",\"/t\",null,[\"out.log\"],null]\n"
			    "[\"p\",\"fail\",\"/t\",\"sub\",[],null]\n"
			    "[\"p\",\"pass\",\"/u\",null,[\"out.log\"],null]\n"
			    "[\"p\",\"fail\",\"/u\",\"sub\",[],null]\n");
	free(text);
	/* One line per ingest, in the contract's key order. */
	text = slurp(side);
	assert_string_equal(
		text,
		"{\"platform\":\"p\",\"test\":\"/t\",\"attempt\":2,"
		"\"final\":true,\"start\":\"2026-12-06T22:45:05.000+00:00\","
		"\"end\":null,\"duration\":0.2,\"system\":\"local-1\","
		"\"exit_code\":null}\n"
		"{\"platform\":\"p\",\"test\":\"/u\",\"attempt\":null,"
		"\"final\":true,\"start\":null,\"end\":null,"
		"\"duration\":null,\"system\":null,\"exit_code\":null}\n");
	free(text);
	text = slurp(old_side);
	assert_string_equal(
		text,
		"{\"platform\":\"p\",\"test\":\"/t\",\"attempt\":1,"
		"\"final\":false,\"start\":\"2026-12-06T22:45:01.123+00:00\","
		"\"end\":\"2026-12-06T22:45:04.567+00:00\","
		"\"duration\":3.444,\"system\":\"local-3\","
		"\"exit_code\":0}\n");
	free(text);
	atex_aggregator_free(a);
	atex_aggregator_free(e);
	free(main_path);
	free(side);
	free(old_main);
	free(old_side);
}

/* The sidecar compressed by its own suffix, whatever the results file. */
static void test_sidecar_compressed(void **state)
{
	struct fixture *f = *state;
	static const char *const names[][2] = {
		{"r1.jsonl", "a1.jsonl.gz"},
		{"r2.jsonl.gz", "a2.jsonl.xz"},
		{"r3.jsonl.xz", "a3.jsonl"},
	};

	write_results(f->art);
	write_file(f->art, "attempt.json", attempt1);
	for (size_t i = 0; i < 3; i++) {
		char *rp = path_in(f->tmp, names[i][0]);
		char *ap = path_in(f->tmp, names[i][1]);
		atex_aggregator *a = jsonl_new(rp, ap, false);
		char *text;

		assert_int_equal(atex_aggregator_start(a), 0);
		ingest_ok(a, "p", "/t", f->art);
		ingest_ok(a, "p", "/u", f->art);
		assert_int_equal(atex_aggregator_stop(a), 0);
		text = i == 2 ? slurp(ap) : decode(ap);
		assert_non_null(strstr(text, "\"test\":\"/t\",\"attempt\":1,"));
		assert_non_null(strstr(text, "\"test\":\"/u\",\"attempt\":1,"));
		assert_int_equal(strlen(text),
				 2 * strlen(strchr(text, '\n') + 1));
		free(text);
		text = i == 0 ? slurp(rp) : decode(rp);
		assert_non_null(strstr(text, "[\"p\",\"fail\",\"/u\",\"sub\""));
		free(text);
		atex_aggregator_free(a);
		free(rp);
		free(ap);
	}
}

/* An aggregator that refuses every ingest (a full disk). */
static int refuse_ingest(atex_aggregator *a, const char *platform,
			 const char *test_name, const char *artifacts_dir)
{
	(void)a;
	(void)platform;
	(void)artifacts_dir;
	if (!strcmp(test_name, "/bad"))
		return atex_error_set(ATEX_EIO, "disk full");
	return 0;
}

static void refuse_free(atex_aggregator *a)
{
	(void)a;
}

static void test_sidecar_undo(void **state)
{
	struct fixture *f = *state;
	static const struct atex_aggregator_ops ops = {
		.version = ATEX_AGGREGATOR_OPS_VERSION,
		.ingest = refuse_ingest,
		.free = refuse_free,
	};
	atex_aggregator refusing = {&ops};
	char *rp = path_in(f->tmp, "results.jsonl");
	char *ap = path_in(f->tmp, "attempts.jsonl");
	atex_aggregator *j = jsonl_new(rp, ap, false), *m = NULL;
	atex_aggregator *parts[] = {j, &refusing};
	char *text;

	assert_int_equal(atex_multi_aggregator_new(&m, parts, 2, false), 0);
	assert_int_equal(atex_aggregator_start(m), 0);
	write_results(f->art);
	write_file(f->art, "attempt.json", attempt1);
	ingest_ok(m, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_ingest(m, "p", "/bad", f->art),
			 ATEX_EIO);
	ingest_ok(m, "p", "/u", f->art);
	assert_int_equal(atex_aggregator_stop(m), 0);
	text = slurp(ap);
	/* /bad's line went with its results. */
	assert_null(strstr(text, "/bad"));
	assert_non_null(strstr(text, "\"test\":\"/t\""));
	assert_non_null(strstr(text, "\"test\":\"/u\""));
	free(text);
	text = slurp(rp);
	assert_null(strstr(text, "/bad"));
	free(text);
	atex_aggregator_free(m);
	atex_aggregator_free(j);

	/* A sidecar that cannot be written takes the results back. */
	j = jsonl_new(rp, "/dev/full", false);
	assert_int_equal(atex_aggregator_start(j), 0);
	assert_int_equal(atex_aggregator_ingest(j, "p", "/t", f->art),
			 ATEX_EIO);
	assert_non_null(strstr(atex_error_last(), "/dev/full"));
	assert_int_equal(atex_aggregator_stop(j), 0);
	text = slurp(rp);
	assert_string_equal(text, "");
	free(text);
	atex_aggregator_free(j);
	free(rp);
	free(ap);
}

/* ---- YAML ---- */

static void test_yaml_keys(void **state)
{
	struct fixture *f = *state;
	struct atex_yaml_aggregator_options o =
		ATEX_YAML_AGGREGATOR_OPTIONS_INIT;
	char *path = path_in(f->tmp, "r.yaml");
	atex_aggregator *a = NULL;
	char *text;

	write_results(f->art);
	write_file(f->art, "attempt.json", attempt1);
	o.path = path;
	for (int compact = 0; compact < 2; compact++) {
		o.compact = compact;
		assert_int_equal(atex_yaml_aggregator_new_opts(&a, &o), 0);
		assert_int_equal(atex_aggregator_start(a), 0);
		ingest_ok(a, "p", "/t", f->art);
		write_file(f->art, "attempt.json",
			   "{\"system\": \"local-1\", \"exit_code\": null}");
		ingest_ok(a, "p", "/u", f->art);
		write_file(f->art, "attempt.json", attempt1);
		assert_int_equal(atex_aggregator_stop(a), 0);
		atex_aggregator_free(a);
		text = slurp(path);
		if (compact) {
			/* Python ATEX's layout stays as it was. */
			assert_null(strstr(text, "start"));
			assert_null(strstr(text, "system"));
			assert_null(strstr(text, "duration"));
		} else {
			assert_non_null(strstr(
				text, "files:\n- out.log\n"
				      "start: '2026-12-06T22:45:01.123+00:00'\n"
				      "end: '2026-12-06T22:45:04.567+00:00'\n"
				      "duration: 3.444\nsystem: local-3\n"
				      "attempt: 1\nexit_code: 0\nsubtests:\n"));
			/* Only what is known. */
			assert_non_null(strstr(text, "files:\n- out.log\n"
						     "system: local-1\n"
						     "subtests:\n"));
		}
		free(text);
	}
	free(path);
}

/* One run, one start and one end: run_json's "started" and
 * atex_sqlite_aggregator_set_ended's end are what `run` records (atex run
 * writes the same two in run.json). */
static void test_sqlite_run_times(void **state)
{
	struct fixture *f = *state;
	char *db = path_in(f->tmp, "times.sqlite");
	struct atex_sqlite_aggregator_options o =
		ATEX_SQLITE_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = sqlite_new(
		db, "{\"started\": \"2026-12-06T22:45:00.912+00:00\"}");
	char *jsonl = path_in(f->tmp, "r.jsonl");
	atex_aggregator *j = NULL;

	assert_int_equal(atex_aggregator_start(a), 0);
	assert_query(db, "SELECT started, ended FROM run",
		     "2026-12-06T22:45:00.912+00:00|NULL\n");
	assert_int_equal(
		atex_sqlite_aggregator_set_ended(a, "2026-12-06T22:52:13.004Z"),
		0);
	/* Not a time: refused, the one set kept. */
	assert_int_equal(atex_sqlite_aggregator_set_ended(a, "soon"),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "soon"));
	assert_int_equal(atex_aggregator_stop(a), 0);
	assert_query(db, "SELECT started, ended FROM run",
		     "2026-12-06T22:45:00.912+00:00|"
		     "2026-12-06T22:52:13.004Z\n");
	/* A finished database is one file in rollback-journal mode. */
	assert_query(db, "PRAGMA journal_mode", "delete\n");
	atex_aggregator_free(a);

	/* Not a SQLite aggregator; a bad "started". */
	j = jsonl_new(jsonl, NULL, false);
	assert_int_equal(atex_sqlite_aggregator_set_ended(j, NULL),
			 ATEX_EINVAL);
	atex_aggregator_free(j);
	o.path = db;
	a = NULL;
	o.run_json = "{\"started\": \"junk\"}";
	assert_int_equal(atex_sqlite_aggregator_new(&a, &o), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "started"));
	o.run_json = "{\"started\": 5}";
	assert_int_equal(atex_sqlite_aggregator_new(&a, &o), ATEX_EINVAL);
	assert_null(a);
	free(jsonl);
	free(db);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_attempt_written), T(test_attempt_read_bad),
		T(test_sqlite_timings),	 T(test_sqlite_options),
		T(test_sidecar),	 T(test_sidecar_compressed),
		T(test_sidecar_undo),	 T(test_yaml_keys),
		T(test_sqlite_run_times),
	};
	int rc;

	atex_log_set_handler(log_handler, NULL);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	atex_buf_free(&logged);
	return rc;
}
