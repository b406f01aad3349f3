/*
 * history.c - per-test timings of earlier runs (atex/history.h), and the
 * ready policy that schedules from them.
 *
 * Why these definitions:
 *  - "Successful" is "ran to its end", not "passed": a failing test
 *    usually runs all of its steps, so its time is the test's time; error
 *    and infra are the statuses of attempts cut short (a time limit, a
 *    crash, a lost system), whose durations say little of the next run.
 *  - The median of the last N (5) resists one slow attempt on a loaded
 *    system, and the newest attempts follow a test that changed.
 *  - A run is one database (or folder) and platform: attempts per run is
 *    what a test costs a run, re-runs included.
 *
 * Reading is read-only: SQLite opened with SQLITE_OPEN_READONLY, JSON
 * Lines through atex_results_load and gzread.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "atex/history.h"
#include "atex/orchestrator.h"
#include "atex/report.h"
#include "orchestrator/policy.h"
#include "util/util.h"

#define COMPONENT "history"

/* Status ranks, worst first, as the orchestrator orders them. */
enum {
	ST_INFRA,
	ST_ERROR,
	ST_FAIL,
	ST_CUSTOM,
	ST_WARN,
	ST_INFO,
	ST_PASS,
	ST_SKIP
};

static int status_rank(const char *s)
{
	static const char *const names[] = {"infra", "error", "fail", "",
					    "warn",  "info",  "pass", "skip"};

	for (int i = 0; s && i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		if (i != ST_CUSTOM && strcmp(names[i], s) == 0)
			return i;
	}
	return ST_CUSTOM;
}

/* One attempt as read. */
struct rec {
	char *test; /* "~K" of a repeat stripped */
	char *platform;
	size_t source; /* index of the path */
	long attempt;
	char started[40]; /* "" unknown: sorts as the oldest */
	double duration;
	int status; /* rank */
};

struct entry {
	char *test;
	struct atex_history_test t;
};

struct atex_history {
	struct entry *tests; /* sorted by name */
	size_t n;
	double typical;
	/* The policy's keys per discovery index, for one discovery at a
	 * time: the expected time, or for a test never seen -1 - its
	 * declared duration (parsed once: a pick is then linear in the
	 * queue with nothing parsed). */
	pthread_mutex_t lock;
	const atex_fmf_discovery *cached;
	double *keys;
	size_t n_keys;
};

struct reader {
	const struct atex_history_options *opts;
	struct rec *recs;
	size_t n, cap;
	size_t damaged; /* values warned about (up to MAX_WARNINGS) */
};

/* Warnings about damaged values per history; the rest are counted. */
#define MAX_WARNINGS 10
/* A duration beyond this (about 31 years) is damage, not a measure. */
#define MAX_DURATION 1e9

/* A damaged value: `where` (FILE:LINE, or the database, table and row)
 * and what is wrong with `key`. The value is then unknown. */
static void damaged(struct reader *rd, const char *where, const char *key,
		    const char *what, const char *value, const char *then)
{
	struct atex_buf v = ATEX_BUF_INIT;

	if (rd->damaged++ >= MAX_WARNINGS)
		return;
	atex_buf_put_printable(&v, value ? value : "");
	atex_log(ATEX_LOG_WARNING, COMPONENT,
		 "%s: \"%s\" is not %s ('%.40s%s'); %s", where, key, what,
		 v.ptr ? v.ptr : "", v.len > 40 ? "..." : "", then);
	atex_buf_free(&v);
}

static bool good_duration(double d)
{
	return d >= 0 && d <= MAX_DURATION;
}

static void rec_free(struct rec *r)
{
	free(r->test);
	free(r->platform);
}

/* "NAME~K" -> NAME: tmt's repeats are one test. */
static char *base_name(const char *test)
{
	const char *tilde = strrchr(test, '~');
	const char *p;

	if (!tilde || !tilde[1])
		return atex_strdup(test);
	for (p = tilde + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return atex_strdup(test);
	}
	return atex_strndup(test, (size_t)(tilde - test));
}

static int add_rec(struct reader *rd, const char *platform, const char *test,
		   size_t source, long attempt, const char *started,
		   double duration, int status)
{
	struct rec *r;

	if (rd->opts->platform && strcmp(rd->opts->platform, platform) != 0)
		return 0;
	if (rd->n == rd->cap) {
		size_t cap = rd->cap ? rd->cap * 2 : 256;
		struct rec *bigger = realloc(rd->recs, cap * sizeof(*rd->recs));

		if (!bigger)
			return atex_error_oom();
		rd->recs = bigger;
		rd->cap = cap;
	}
	r = &rd->recs[rd->n];
	memset(r, 0, sizeof(*r));
	r->test = base_name(test);
	r->platform = atex_strdup(platform);
	if (!r->test || !r->platform) {
		rec_free(r);
		return atex_error_oom();
	}
	r->source = source;
	r->attempt = attempt;
	snprintf(r->started, sizeof(r->started), "%s", started ? started : "");
	r->duration = duration;
	r->status = status;
	rd->n++;
	return 0;
}

/* 0 when `path` (followed through symlinks) is a regular file: opening a
 * FIFO or a device would wait for a writer for ever, whatever a signal
 * says. */
static int regular_file(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return atex_error_set(errno == ENOENT ? ATEX_ENOTFOUND
						      : ATEX_EIO,
				      "%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: not a regular file (a FIFO, a "
				      "device or a socket is not read as "
				      "history)",
				      path);
	return 0;
}

/* ------------------------------------------------------------------------
 * results.sqlite.
 */

static const char *const sqlite_query =
	"SELECT platform, test, attempt, subtest IS NULL, status, started,"
	" duration FROM results WHERE duration IS NOT NULL"
	" ORDER BY platform, test, attempt, id";

/* Which of the columns we need the table has: 0 none (no such table),
 * 1 the table without timings, 2 with. */
static int sqlite_columns(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int found = 0, has_table = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA table_info(results)", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(st, 1);

		has_table = 1;
		if (col &&
		    (!strcmp(col, "duration") || !strcmp(col, "started")))
			found++;
	}
	sqlite3_finalize(st);
	return has_table ? (found == 2 ? 2 : 1) : 0;
}

/* The attempt being gathered from its rows. */
struct pending {
	char *platform, *test;
	long attempt;
	char started[40];
	double duration;
	int own, worst; /* ranks; own -1: no row of the test itself */
	bool active;
};

static int flush_pending(struct reader *rd, struct pending *p, size_t source)
{
	int rc = 0;

	if (p->active)
		rc = add_rec(rd, p->platform, p->test, source, p->attempt,
			     p->started, p->duration,
			     p->own >= 0 ? p->own : p->worst);
	free(p->platform);
	free(p->test);
	memset(p, 0, sizeof(*p));
	return rc;
}

/* The attempt's started and duration from its first row, checked: a
 * started that is not a time is unknown, an attempt whose duration is
 * not a number of seconds is left out (p->active false). */
static int sqlite_timing(struct reader *rd, struct pending *p, sqlite3_stmt *st,
			 const char *path)
{
	const char *started = (const char *)sqlite3_column_text(st, 5);
	int type = sqlite3_column_type(st, 6);
	char *where = NULL;

	p->duration = sqlite3_column_double(st, 6);
	p->started[0] = '\0';
	if (sqlite3_column_type(st, 5) == SQLITE_TEXT &&
	    atex_iso_time_ok(started))
		snprintf(p->started, sizeof(p->started), "%s", started);
	if ((type == SQLITE_INTEGER || type == SQLITE_FLOAT) &&
	    good_duration(p->duration) &&
	    (p->started[0] || sqlite3_column_type(st, 5) == SQLITE_NULL))
		return 0;
	where = atex_sprintf("%s: table results (test %s, attempt %ld)", path,
			     p->test, p->attempt);
	if (!where)
		return atex_error_oom();
	if (!(type == SQLITE_INTEGER || type == SQLITE_FLOAT) ||
	    !good_duration(p->duration)) {
		damaged(rd, where, "duration", "a number of seconds",
			(const char *)sqlite3_column_text(st, 6),
			"the attempt is left out");
		p->active = false;
	} else {
		damaged(rd, where, "started", "an ISO 8601 time", started,
			"taken as unknown");
	}
	free(where);
	return 0;
}

/* ATEX_EIO saying so when SQLite failed on a lock another connection
 * holds (after the busy timeout); 0 otherwise. */
static int sqlite_locked(sqlite3 *db, const char *path)
{
	int code = sqlite3_errcode(db);

	if (code != SQLITE_BUSY && code != SQLITE_LOCKED)
		return 0;
	return atex_error_set(ATEX_EIO,
			      "%s: locked by another process (a run still "
			      "writing it?): %s; try again when it is done",
			      path, sqlite3_errmsg(db));
}

static int read_sqlite(struct reader *rd, const char *path, size_t source)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct pending p = {0};
	int rc = 0, step, cols;

	rc = atex_sqlite_open_read(&db, path);
	if (rc)
		goto out;
	sqlite3_busy_timeout(db, 5000);
	cols = sqlite_columns(db);
	if (cols < 0) {
		rc = sqlite_locked(db, path);
		if (rc == 0)
			rc = atex_error_set(ATEX_EFORMAT,
					    "%s: not a results database: %s",
					    path, sqlite3_errmsg(db));
		goto out;
	}
	if (cols == 0) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s: not a results database (no table "
				    "'results')",
				    path);
		goto out;
	}
	if (cols == 1) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s: a results database from before "
				    "timings were recorded (no 'started' and "
				    "'duration' columns): it has no history; "
				    "runs of this atex record them",
				    path);
		goto out;
	}
	if (sqlite3_prepare_v2(db, sqlite_query, -1, &st, NULL) != SQLITE_OK) {
		rc = atex_error_set(ATEX_EFORMAT, "%s: %s", path,
				    sqlite3_errmsg(db));
		goto out;
	}
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *platform = (const char *)sqlite3_column_text(st, 0);
		const char *test = (const char *)sqlite3_column_text(st, 1);
		long attempt = (long)sqlite3_column_int64(st, 2);
		bool own = sqlite3_column_int(st, 3) != 0;
		int status =
			status_rank((const char *)sqlite3_column_text(st, 4));

		if (!platform || !test)
			continue;
		if (!p.active || strcmp(p.platform, platform) != 0 ||
		    strcmp(p.test, test) != 0 || p.attempt != attempt) {
			rc = flush_pending(rd, &p, source);
			if (rc < 0)
				break;
			p.platform = atex_strdup(platform);
			p.test = atex_strdup(test);
			p.active = true;
			p.attempt = attempt;
			p.own = -1;
			p.worst = status;
			if (!p.platform || !p.test) {
				rc = atex_error_oom();
				break;
			}
			rc = sqlite_timing(rd, &p, st, path);
			if (rc < 0)
				break;
		}
		if (status < p.worst)
			p.worst = status;
		if (own)
			p.own = status;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sqlite_locked(db, path);
	if (rc == 0 && step != SQLITE_DONE)
		rc = atex_error_set(ATEX_EIO, "%s: %s", path,
				    sqlite3_errmsg(db));
	if (rc == 0)
		rc = flush_pending(rd, &p, source);
out:
	free(p.platform);
	free(p.test);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* ------------------------------------------------------------------------
 * A results folder without a database: results.jsonl (+ old/) for the
 * statuses, attempts.jsonl (+ old/) for the timings (PROTOCOL.md).
 */

static const char *const suffixes[] = {"", ".gz", ".xz"};

/* DIR/NAME with the first suffix that exists; NULL if none (or no
 * memory: then the error is set). */
static char *find_variant(const char *dir, const char *name)
{
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *p = atex_sprintf("%s/%s%s", dir, name, suffixes[i]);

		if (!p || atex_path_exists(p))
			return p;
		free(p);
	}
	return NULL;
}

static char *status_key(const char *platform, const char *test, long attempt)
{
	return atex_sprintf("%s\xff%s\xff%ld", platform, test, attempt);
}

/* key -> [own rank or -1, worst rank] of every attempt in the results. */
static int load_statuses(json_t *map, const char *results_path)
{
	atex_results *res = NULL;
	int rc = atex_results_load(&res, results_path);

	for (size_t i = 0; rc == 0 && i < atex_results_count(res); i++) {
		const struct atex_result *r = atex_results_get(res, i);
		char *key = status_key(r->platform, r->test, r->attempt);
		json_t *v = key ? json_object_get(map, key) : NULL;
		int rank = status_rank(r->status);

		if (!key) {
			rc = atex_error_oom();
			break;
		}
		if (!v) {
			v = json_pack("[ii]", -1, rank);
			if (!v || json_object_set_new_nocheck(map, key, v) < 0)
				rc = atex_error_oom();
		}
		if (v && rank < json_integer_value(json_array_get(v, 1)))
			json_array_set_new(v, 1, json_integer(rank));
		if (v && !r->subtest)
			json_array_set_new(v, 0, json_integer(rank));
		free(key);
	}
	atex_results_free(res);
	return rc;
}

/* damaged() for `key` of PATH:LINE, its value `v` as JSON. */
static int damaged_json(struct reader *rd, const char *path, size_t line,
			const char *key, json_t *v, const char *what,
			const char *then)
{
	char *where = atex_sprintf("%s:%zu", path, line);
	char *value = json_dumps(v, JSON_ENCODE_ANY);
	int rc = 0;

	if (!where || !value)
		rc = atex_error_oom();
	else
		damaged(rd, where, key, what, value, then);
	free(where);
	free(value);
	return rc;
}

static int take_attempt_line(struct reader *rd, json_t *map, const char *path,
			     size_t line, const char *text, size_t source)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	const char *platform =
		json_string_value(json_object_get(j, "platform"));
	const char *test = json_string_value(json_object_get(j, "test"));
	json_t *attempt = json_object_get(j, "attempt");
	json_t *duration = json_object_get(j, "duration");
	const char *start;
	json_t *status;
	char *key;
	int rc = 0, rank = ST_PASS;

	if (!json_is_object(j) || !platform || !test ||
	    !json_is_integer(attempt)) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s:%zu: not an attempt line (an object "
				    "with platform, test and attempt)",
				    path, line);
		goto out;
	}
	if (!duration || json_is_null(duration))
		goto out; /* unknown: nothing to learn */
	if (!json_is_number(duration) ||
	    !good_duration(json_number_value(duration))) {
		rc = damaged_json(rd, path, line, "duration", duration,
				  "a number of seconds",
				  "the attempt is left out");
		goto out;
	}
	start = json_string_value(json_object_get(j, "start"));
	if (json_object_get(j, "start") &&
	    !json_is_null(json_object_get(j, "start")) &&
	    !atex_iso_time_ok(start)) {
		rc = damaged_json(rd, path, line, "start",
				  json_object_get(j, "start"),
				  "an ISO 8601 time", "taken as unknown");
		start = NULL;
		if (rc)
			goto out;
	}
	key = status_key(platform, test, (long)json_integer_value(attempt));
	if (!key) {
		rc = atex_error_oom();
		goto out;
	}
	status = json_object_get(map, key);
	free(key);
	if (status) {
		json_int_t own = json_integer_value(json_array_get(status, 0));

		rank = own >= 0 ? (int)own
				: (int)json_integer_value(
					  json_array_get(status, 1));
	}
	rc = add_rec(rd, platform, test, source,
		     (long)json_integer_value(attempt), start,
		     json_number_value(duration), rank);
out:
	json_decref(j);
	return rc;
}

static int read_attempts_file(struct reader *rd, json_t *map, const char *path,
			      size_t source)
{
	struct atex_buf line = ATEX_BUF_INIT;
	char chunk[4096];
	gzFile f;
	size_t lineno = 0;
	int rc = 0;

	if (strlen(path) > 3 && !strcmp(path + strlen(path) - 3, ".xz"))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: xz-compressed attempts are not read "
				      "as history; decompress it (or give "
				      "results.sqlite)",
				      path);
	/* gzread reads plain files as they are. */
	f = gzopen(path, "rb");
	if (!f)
		return atex_error_set(ATEX_EIO, "%s: cannot open: %s", path,
				      strerror(errno));
	while (rc == 0 && gzgets(f, chunk, sizeof(chunk))) {
		size_t len = strlen(chunk);

		rc = atex_buf_put(&line, chunk, len);
		if (rc < 0 || len == 0 || chunk[len - 1] != '\n')
			continue;
		lineno++;
		line.ptr[line.len - 1] = '\0';
		if (line.len > 1)
			rc = take_attempt_line(rd, map, path, lineno, line.ptr,
					       source);
		atex_buf_clear(&line);
	}
	/* A last line without its newline: a run killed mid-write. */
	if (rc == 0 && line.len > 0)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s:%zu: cut short, left out", path, lineno + 1);
	gzclose(f);
	atex_buf_free(&line);
	return rc;
}

/* The files of a folder read without its database are regular files (the
 * results loader also reads old/results.jsonl and run.json). */
static int folder_files_regular(const char *dir, const char *results,
				const char *attempts)
{
	char *old = atex_path_join(dir, "old");
	char *old_results = old ? find_variant(old, "results.jsonl") : NULL;
	char *run_json = atex_path_join(dir, "run.json");
	int rc = old && run_json ? 0 : atex_error_oom();

	if (rc == 0)
		rc = regular_file(results);
	if (rc == 0)
		rc = regular_file(attempts);
	if (rc == 0 && old_results)
		rc = regular_file(old_results);
	if (rc == 0 && atex_path_exists(run_json))
		rc = regular_file(run_json);
	free(old);
	free(old_results);
	free(run_json);
	return rc;
}

static int read_folder(struct reader *rd, const char *dir, size_t source)
{
	char *db = atex_path_join(dir, "results.sqlite");
	char *old = atex_path_join(dir, "old");
	char *results = NULL, *attempts = NULL, *old_attempts = NULL;
	json_t *map = json_object();
	int rc = 0;

	if (!db || !old || !map) {
		rc = atex_error_oom();
		goto out;
	}
	if (atex_path_exists(db)) {
		rc = regular_file(db);
		if (rc == 0)
			rc = read_sqlite(rd, db, source);
		goto out;
	}
	results = find_variant(dir, "results.jsonl");
	if (!results) {
		rc = atex_error_set(ATEX_ENOTFOUND,
				    "%s: not a results folder (no "
				    "results.sqlite, no results.jsonl)",
				    dir);
		goto out;
	}
	attempts = find_variant(dir, "attempts.jsonl");
	if (!attempts) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s: results from before timings were "
				    "recorded (results.jsonl without "
				    "attempts.jsonl): it has no history; runs "
				    "of this atex record them",
				    dir);
		goto out;
	}
	rc = folder_files_regular(dir, results, attempts);
	if (rc == 0)
		rc = load_statuses(map, results);
	if (rc == 0)
		rc = read_attempts_file(rd, map, attempts, source);
	old_attempts = rc == 0 ? find_variant(old, "attempts.jsonl") : NULL;
	if (rc == 0 && old_attempts)
		rc = regular_file(old_attempts);
	if (rc == 0 && old_attempts)
		rc = read_attempts_file(rd, map, old_attempts, source);
out:
	json_decref(map);
	free(db);
	free(old);
	free(results);
	free(attempts);
	free(old_attempts);
	return rc;
}

static int read_path(struct reader *rd, const char *path, size_t source)
{
	struct stat sb;
	size_t len = strlen(path);

	if (stat(path, &sb) < 0)
		return atex_error_set(errno == ENOENT ? ATEX_ENOTFOUND
						      : ATEX_EIO,
				      "%s: %s", path, strerror(errno));
	if (S_ISDIR(sb.st_mode))
		return read_folder(rd, path, source);
	if (!S_ISREG(sb.st_mode))
		return regular_file(path);
	/* A results.jsonl stands for its folder. */
	if (len > 6 && strstr(atex_path_basename(path), ".jsonl")) {
		char *dir = atex_strdup(path);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		int rc;

		if (!dir)
			return atex_error_oom();
		if (slash)
			*slash = '\0';
		rc = read_folder(rd, slash ? (*dir ? dir : "/") : ".", source);
		free(dir);
		return rc;
	}
	return read_sqlite(rd, path, source);
}

/* ------------------------------------------------------------------------
 * Per test.
 */

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c = strcmp(x->test, y->test);

	if (c)
		return c;
	c = strcmp(x->started, y->started);
	if (c)
		return c;
	if (x->source != y->source)
		return x->source < y->source ? -1 : 1;
	return (x->attempt > y->attempt) - (x->attempt < y->attempt);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_of(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool is_ok(int status)
{
	return status != ST_ERROR && status != ST_INFRA;
}

static bool is_passed(int status)
{
	return status == ST_PASS || status == ST_INFO || status == ST_WARN;
}

static bool is_failed(int status)
{
	return status == ST_FAIL || status == ST_ERROR;
}

/* recs[0..n-1]: one test, oldest first. */
static void summarize(struct atex_history_test *t, const struct rec *recs,
		      size_t n, unsigned int last_n, double *scratch)
{
	size_t k = 0, runs = 0, failed = 0, most_in_run = 0, j_fallback = 0;
	bool seen_failure = false;

	memset(t, 0, sizeof(*t));
	for (size_t i = n; i-- > 0 && k < last_n;) {
		if (is_ok(recs[i].status))
			scratch[k++] = recs[i].duration;
	}
	/* Nothing ran to its end: what the errors took is all we know
	 * (infra attempts say nothing of the test: build() left out a test
	 * that has only those). */
	for (size_t i = n; k == 0 && i-- > 0 && j_fallback < last_n;) {
		if (recs[i].status != ST_INFRA)
			scratch[j_fallback++] = recs[i].duration;
	}
	if (k == 0)
		k = j_fallback;
	t->samples = (unsigned int)k;
	t->median = median_of(scratch, k);
	t->attempts = (unsigned int)n;
	for (size_t i = 0; i < n; i++) {
		size_t in_run = 0;
		bool first = true;

		for (size_t j = 0; j < n; j++) {
			bool same = recs[j].source == recs[i].source &&
				    !strcmp(recs[j].platform, recs[i].platform);

			if (same && j < i)
				first = false;
			in_run += same;
		}
		runs += first;
		if (in_run > most_in_run)
			most_in_run = in_run;
		if (is_failed(recs[i].status)) {
			seen_failure = true;
			failed++;
		} else if (seen_failure && is_passed(recs[i].status)) {
			t->flaky = true;
		}
	}
	t->runs = (unsigned int)runs;
	t->expected_attempts = (double)n / (double)(runs ? runs : 1);
	/* Flaky, but never re-run: a re-run now costs its failure rate. */
	if (t->flaky && most_in_run <= 1)
		t->expected_attempts = 1 + (double)failed / (double)n;
	if (t->expected_attempts < 1)
		t->expected_attempts = 1;
	t->expected = t->median * t->expected_attempts;
}

/* Attempts of a test that all ended in infra (a lost system, a canceled
 * run) measured the incident, not the test: the test counts as never
 * seen rather than as short. */
static bool only_infra(const struct rec *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (recs[i].status != ST_INFRA)
			return false;
	}
	return true;
}

static int build(atex_history *h, struct reader *rd, unsigned int last_n)
{
	double *scratch = NULL, *medians = NULL;
	size_t count = 0;
	int rc = 0;

	if (rd->n) /* qsort(NULL, 0) is undefined */
		qsort(rd->recs, rd->n, sizeof(*rd->recs), cmp_rec);
	for (size_t i = 0; i < rd->n; i++)
		count += i == 0 ||
			 strcmp(rd->recs[i].test, rd->recs[i - 1].test);
	h->tests = atex_calloc(count ? count : 1, sizeof(*h->tests));
	scratch = atex_calloc(rd->n ? rd->n : 1, sizeof(*scratch));
	medians = atex_calloc(count ? count : 1, sizeof(*medians));
	if (!h->tests || !scratch || !medians) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (size_t i = 0, j; i < rd->n; i = j) {
		struct entry *e = &h->tests[h->n];

		for (j = i + 1;
		     j < rd->n && !strcmp(rd->recs[j].test, rd->recs[i].test);
		     j++)
			;
		if (only_infra(&rd->recs[i], j - i))
			continue; /* never seen (history.h) */
		/* The name moves to the entry. */
		e->test = rd->recs[i].test;
		rd->recs[i].test = NULL;
		summarize(&e->t, &rd->recs[i], j - i, last_n, scratch);
		medians[h->n++] = e->t.median;
		/* summarize() compared names; the rest keep theirs. */
	}
	h->typical = median_of(medians, h->n);
out:
	free(scratch);
	free(medians);
	return rc;
}

/* What reading `path` reads, as a real path: a folder with a database is
 * its database, a .jsonl file its folder. NULL if it does not resolve
 * (read_path then says why). */
static char *read_key(const char *path)
{
	char *real = realpath(path, NULL);
	char *inner = NULL, *slash;
	struct stat sb;

	if (!real || stat(real, &sb) < 0)
		return real;
	if (S_ISDIR(sb.st_mode)) {
		char *db = atex_path_join(real, "results.sqlite");

		inner = db ? realpath(db, NULL) : NULL;
		free(db);
	} else if (strstr(atex_path_basename(real), ".jsonl") &&
		   (slash = strrchr(real, '/'))) {
		*slash = '\0';
		inner = read_key(*real ? real : "/");
	}
	if (!inner)
		return real;
	free(real);
	return inner;
}

/* Path i, unless an earlier path reads the same (the same path twice,
 * a folder and its database): counted once, or its attempts would weigh
 * twice. Warns when it gave nothing to learn from. */
static int read_one(struct reader *rd, size_t i)
{
	const char *const *paths = rd->opts->paths;
	char *key = read_key(paths[i]);
	size_t before = rd->n, same = i;
	int rc;

	for (size_t j = 0; key && j < i && same == i; j++) {
		char *other = read_key(paths[j]);

		if (other && !strcmp(other, key))
			same = j;
		free(other);
	}
	free(key);
	if (same < i) {
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: the same results as %s, read once", paths[i],
			 paths[same]);
		return 0;
	}
	rc = read_path(rd, paths[i], i);
	if (rc == 0 && rd->n == before)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: no attempt with a duration%s%s (results "
			 "from before timings, or of a program that does "
			 "not record them): nothing to learn from it",
			 paths[i], rd->opts->platform ? " on platform " : "",
			 rd->opts->platform ? rd->opts->platform : "");
	return rc;
}

int atex_history_open(atex_history **out,
		      const struct atex_history_options *opts)
{
	struct reader rd = {opts, NULL, 0, 0, 0};
	atex_history *h = NULL;
	int rc = 0;

	if (out)
		*out = NULL;
	if (!out || !opts || !opts->paths || opts->n_paths == 0)
		return atex_error_set(ATEX_EINVAL,
				      "history: no results to read");
	if (opts->version < 1 || opts->version > ATEX_HISTORY_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "history: options version %u is not "
				      "supported (this library knows 1 to %u)",
				      opts->version,
				      ATEX_HISTORY_OPTIONS_VERSION);
	for (size_t i = 0; i < opts->n_paths; i++) {
		if (!opts->paths[i] || !*opts->paths[i])
			return atex_error_set(ATEX_EINVAL,
					      "history: path %zu is empty", i);
	}
	h = atex_calloc(1, sizeof(*h));
	if (!h)
		return ATEX_ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	for (size_t i = 0; rc == 0 && i < opts->n_paths; i++)
		rc = read_one(&rd, i);
	if (rd.damaged > MAX_WARNINGS)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%zu more damaged values in the history",
			 rd.damaged - MAX_WARNINGS);
	if (rc == 0)
		rc = build(h, &rd, opts->last_n ? opts->last_n : 5);
	if (rc == 0 && h->n == 0 && rd.n > 0)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "history: every attempt read ended in infra (a "
			 "canceled run, lost systems): no test has a time");
	for (size_t i = 0; i < rd.n; i++)
		rec_free(&rd.recs[i]);
	free(rd.recs);
	if (rc < 0) {
		atex_history_free(h);
		return rc;
	}
	atex_debug(COMPONENT, "%zu tests from %zu paths", h->n, opts->n_paths);
	*out = h;
	return 0;
}

void atex_history_free(atex_history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->tests[i].test);
	free(h->tests);
	free(h->keys);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static int cmp_entry_name(const void *key, const void *e)
{
	return strcmp(key, ((const struct entry *)e)->test);
}

static const struct entry *find(const atex_history *h, const char *test)
{
	const struct entry *e;
	char *base;

	if (!h || !test || h->n == 0)
		return NULL;
	e = bsearch(test, h->tests, h->n, sizeof(*h->tests), cmp_entry_name);
	if (e)
		return e;
	base = base_name(test);
	if (base && strcmp(base, test) != 0)
		e = bsearch(base, h->tests, h->n, sizeof(*h->tests),
			    cmp_entry_name);
	free(base);
	return e;
}

bool atex_history_lookup(const atex_history *h, const char *test,
			 struct atex_history_test *out)
{
	const struct entry *e = find(h, test);

	if (e && out)
		*out = e->t;
	return e != NULL;
}

size_t atex_history_count(const atex_history *h)
{
	return h ? h->n : 0;
}

double atex_history_typical(const atex_history *h)
{
	return h ? h->typical : 0;
}

double atex_history_estimate(const atex_history *h, atex_fmf_discovery *d,
			     size_t test, double fallback)
{
	const struct entry *e =
		d && test < atex_fmf_discovery_count(d)
			? find(h, atex_fmf_discovery_test_name(d, test))
			: NULL;

	if (e)
		return e->t.expected;
	return h && h->n ? h->typical : fallback;
}

/* ------------------------------------------------------------------------
 * The policy.
 */

/* Under h->lock: the keys of d's tests, computed once per discovery. */
static const double *keys_for(atex_history *h, atex_fmf_discovery *d)
{
	size_t n = atex_fmf_discovery_count(d);

	if (h->cached == d && h->n_keys == n)
		return h->keys;
	free(h->keys);
	h->keys = atex_calloc(n ? n : 1, sizeof(*h->keys));
	h->cached = h->keys ? d : NULL;
	h->n_keys = h->keys ? n : 0;
	for (size_t i = 0; h->keys && i < n; i++) {
		const struct entry *e =
			find(h, atex_fmf_discovery_test_name(d, i));

		h->keys[i] = e ? e->t.expected
			       : -1 - atex_policy_declared_duration(d, i);
	}
	return h->keys;
}

size_t atex_policy_history(atex_fmf_discovery *d, const size_t *queue, size_t n,
			   void *userdata)
{
	atex_history *h = userdata;
	const double *keys;
	size_t best = 0, best_unseen = 0;
	double best_key = -1, best_declared = -1;

	if (!h || n == 0)
		return atex_policy_longest_first(d, queue, n, NULL);
	pthread_mutex_lock(&h->lock);
	keys = keys_for(h, d);
	for (size_t i = 0; keys && i < n; i++) {
		double key = queue[i] < h->n_keys ? keys[queue[i]] : -1;

		/* Never seen: longest declared first, before any other. */
		if (key < 0 && -1 - key > best_declared) {
			best_unseen = i;
			best_declared = -1 - key;
		} else if (key >= 0 && key > best_key) {
			best = i;
			best_key = key;
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (!keys) /* no memory for the cache: as without history */
		return atex_policy_longest_first(d, queue, n, NULL);
	return best_declared >= 0 ? best_unseen : best;
}

/* ------------------------------------------------------------------------
 * The estimate of a run's time left.
 */

/* Merges the runs src[lo..mid) and src[mid..hi) into dst: the left one's
 * test first when the hook, given the two in queue order, picks it. */
static void merge_picks(atex_fmf_discovery *d, const size_t *src, size_t *dst,
			size_t lo, size_t mid, size_t hi,
			atex_history_pick_hook next_test, void *userdata)
{
	size_t i = lo, j = mid, k = lo;

	while (i < mid && j < hi) {
		size_t pair[2] = {src[i], src[j]};

		if (next_test(d, pair, 2, userdata) == 0)
			dst[k++] = src[i++];
		else
			dst[k++] = src[j++];
	}
	while (i < mid)
		dst[k++] = src[i++];
	while (j < hi)
		dst[k++] = src[j++];
}

int atex_history_order(atex_fmf_discovery *d, size_t *queue, size_t n,
		       atex_history_pick_hook next_test, void *userdata)
{
	size_t *tmp, *src = queue, *dst;

	if ((!queue && n) || !next_test)
		return atex_error_set(ATEX_EINVAL,
				      "history order: no queue or no hook");
	if (n < 2)
		return 0;
	tmp = atex_calloc(n, sizeof(*tmp));
	if (!tmp)
		return ATEX_ENOMEM;
	dst = tmp;
	/* Bottom-up and stable: ties keep queue order, as the policies'. */
	for (size_t width = 1; width < n; width *= 2) {
		size_t *swap;

		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;

			merge_picks(d, src, dst, lo, mid, hi, next_test,
				    userdata);
		}
		swap = src;
		src = dst;
		dst = swap;
	}
	if (src != queue)
		memcpy(queue, src, n * sizeof(*queue));
	free(tmp);
	return 0;
}

/* The min-heap of the systems' free times: sifts heap[i] down. */
static void sift_down(double *heap, size_t m, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, low = i;
		double swap;

		if (l < m && heap[l] < heap[low])
			low = l;
		if (r < m && heap[r] < heap[low])
			low = r;
		if (low == i)
			return;
		swap = heap[i];
		heap[i] = heap[low];
		heap[low] = swap;
		i = low;
	}
}

double atex_history_estimate_run(const double *queued, size_t n, double *busy,
				 size_t systems)
{
	double end = 0;

	if (systems == 0 || !busy)
		return 0;
	/* Heapify (bottom-up), then each test to the system free first. */
	for (size_t i = systems / 2 + 1; i-- > 0;)
		sift_down(busy, systems, i);
	for (size_t i = 0; queued && i < n; i++) {
		busy[0] += queued[i] > 0 ? queued[i] : 0;
		sift_down(busy, systems, 0);
	}
	for (size_t i = 0; i < systems; i++) {
		if (busy[i] > end)
			end = busy[i];
	}
	return end;
}
