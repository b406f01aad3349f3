/*
 * run.c - what a run recorded beside its results (docs/PROTOCOL.md
 * sections 5 to 7): the timings of every attempt from the
 * attempts.jsonl sidecars of JSON Lines results, and the run's metadata
 * from run.json or the SQLite database's `run` table.
 *
 * How it is built, and why:
 *
 *  - results.jsonl keeps Python ATEX's six fields, so the timings come
 *    from a sidecar with one line per ingest (the aggregator writes both
 *    under one lock). Its lines are matched to results by platform and
 *    test (the final results, DIR/attempts.jsonl) and by platform, test
 *    and attempt (the earlier ones, DIR/old/attempts.jsonl): every
 *    result of one ingest gets the same values.
 *  - Timings are an extra, never a reason to lose a report: a sidecar
 *    that is damaged, cut short or missing gives results without
 *    timings and a warning naming the file (and line). A missing sidecar
 *    is only worth a warning where the run says it is one of ours that
 *    writes it (run.json is there); results of older runs and of Python
 *    ATEX have none, which is normal.
 */
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_private.h"

/* Warnings per sidecar file; then one with the count of the rest. */
#define MAX_TIMING_WARNINGS 10

/* ------------------------------------------------------------------------
 * attempts.jsonl
 */

static int is_string(const json_t *v)
{
	return json_is_string(v);
}

static int is_duration(const json_t *v)
{
	return json_is_number(v) && json_number_value(v) >= 0 &&
	       json_number_value(v) <= REPORT_MAX_DURATION;
}

static int is_exit_code(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= INT_MIN &&
	       json_integer_value(v) <= INT_MAX;
}

static int is_attempt(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 1 &&
	       json_integer_value(v) <= UINT_MAX;
}

/* Whether `line` is a timing line; if not, why in `why`. With
 * `need_attempt`, it must have its attempt number. */
static bool timing_line(json_t *line, bool need_attempt, char *why, size_t size)
{
	static const struct {
		const char *key;
		int (*is)(const json_t *);
		const char *what;
	} fields[] = {
		{"start", is_string, "a string"},
		{"end", is_string, "a string"},
		{"system", is_string, "a string"},
		{"duration", is_duration, "a number of seconds"},
		{"exit_code", is_exit_code, "an integer"},
		{"attempt", is_attempt, "a number from 1"},
	};

	if (!json_is_object(line)) {
		snprintf(why, size, "not a JSON object");
		return false;
	}
	if (!json_is_string(json_object_get(line, "platform")) ||
	    !json_is_string(json_object_get(line, "test"))) {
		snprintf(why, size, "no \"platform\" and \"test\" strings");
		return false;
	}
	if (need_attempt && !is_attempt(json_object_get(line, "attempt"))) {
		snprintf(why, size,
			 "no \"attempt\" number (an earlier attempt is "
			 "matched by it)");
		return false;
	}
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(fields); i++) {
		json_t *v = json_object_get(line, fields[i].key);

		if (v && !json_is_null(v) && !fields[i].is(v)) {
			snprintf(why, size, "\"%s\" is not %s or null",
				 fields[i].key, fields[i].what);
			return false;
		}
	}
	return true;
}

/* A line without an attempt number nor any timing (what an ingest
 * without ARTIFACTS/attempt.json writes). */
static bool quiet_line(json_t *line)
{
	static const char *const keys[] = {"attempt",  "start",	 "end",
					   "duration", "system", "exit_code"};

	if (!json_is_object(line))
		return false;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(line, keys[i]);

		if (v && !json_is_null(v))
			return false;
	}
	return true;
}

/* "platform\xfftest[\xffattempt]": the key timings are matched by (0xff
 * is never in UTF-8). */
static char *timing_key(const char *platform, const char *test,
			unsigned long attempt)
{
	if (!attempt)
		return atex_sprintf("%s\xff%s", platform, test);
	return atex_sprintf("%s\xff%s\xff%lu", platform, test, attempt);
}

/* A start or end of timing line `line` that is not a time: a warning
 * naming PATH:LINE, and the value dropped (unknown). */
static void drop_bad_times(json_t *line, const char *path, size_t lineno)
{
	static const char *const keys[] = {"start", "end"};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(keys); i++) {
		const char *v =
			json_string_value(json_object_get(line, keys[i]));
		struct atex_buf shown = ATEX_BUF_INIT;

		if (!v || atex_iso_time_ok(v))
			continue;
		atex_buf_put_printable(&shown, v);
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s:%zu: \"%s\" is not an ISO 8601 time "
			 "('%.40s%s'); taken as unknown",
			 path, lineno, keys[i], shown.ptr ? shown.ptr : "",
			 shown.len > 40 ? "..." : "");
		atex_buf_free(&shown);
		json_object_del(line, keys[i]);
	}
}

/*
 * Every timing line of the sidecar `path` into `map` (key -> line; a
 * later line of the same key wins, with a warning), keyed with the attempt when
 * `by_attempt`. Bad lines are warnings naming path:line. Returns 0 or
 * ATEX_ENOMEM; a file that cannot be read is a warning.
 */
static int load_sidecar(json_t *map, const char *path, bool by_attempt)
{
	struct atex_buf data = ATEX_BUF_INIT;
	size_t lineno = 0, pos = 0, bad = 0;
	bool truncated = false;
	int rc;

	rc = report_read_decoded(&data, &truncated, path,
				 report_format_of_name(path));
	if (rc == ATEX_ENOMEM)
		goto out;
	if (rc) {
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s; the results have no timings from it",
			 atex_error_last());
		atex_error_clear();
		rc = 0;
		goto out;
	}
	while (pos < data.len && !rc) {
		const char *start = data.ptr + pos;
		const char *nl = memchr(start, '\n', data.len - pos);
		size_t len = nl ? (size_t)(nl - start) : data.len - pos;
		json_error_t jerr;
		json_t *line;
		char why[200], *key = NULL;

		lineno++;
		pos += len + (nl ? 1 : 0);
		if (strspn(start, " \t\r") >= len)
			continue;
		line = json_loadb(start, len, 0, &jerr);
		if (!line && !nl) {
			truncated = true; /* the last line, cut short */
			break;
		}
		if (!line)
			snprintf(why, sizeof(why), "not JSON: %s", jerr.text);
		if (line && by_attempt && quiet_line(line)) {
			/* An ingest without attempt.json: nothing to match. */
		} else if (!line ||
			   !timing_line(line, by_attempt, why, sizeof(why))) {
			if (bad++ < MAX_TIMING_WARNINGS)
				atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
					 "%s:%zu: not a timing line (%s); "
					 "its results have no timings",
					 path, lineno, why);
		} else {
			json_t *a = json_object_get(line, "attempt");

			drop_bad_times(line, path, lineno);
			key = timing_key(
				json_string_value(
					json_object_get(line, "platform")),
				json_string_value(
					json_object_get(line, "test")),
				by_attempt
					? (unsigned long)json_integer_value(a)
					: 0);
			if (key && json_object_get(map, key))
				atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
					 "%s:%zu: a second line for the same "
					 "platform, test and attempt; it "
					 "replaces the earlier one",
					 path, lineno);
			if (!key || json_object_set_nocheck(map, key, line) < 0)
				rc = atex_error_oom();
		}
		free(key);
		json_decref(line);
	}
	if (bad > MAX_TIMING_WARNINGS)
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%zu more lines of %s are not timing lines",
			 bad - MAX_TIMING_WARNINGS, path);
	if (truncated)
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s: cut short (a killed run?); the timings of its "
			 "whole lines are kept",
			 path);
out:
	atex_buf_free(&data);
	return rc;
}

/* A copy of string `key` of `obj` into *out (left NULL when absent).
 * Returns 0 or ATEX_ENOMEM. */
static int dup_member(const char **out, json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));

	*out = NULL;
	if (!v)
		return 0;
	*out = atex_strdup(v);
	return *out ? 0 : ATEX_ENOMEM;
}

/* The timings of line `t` on `res`. Returns 0 or ATEX_ENOMEM. */
static int set_timings(struct atex_result *res, json_t *t)
{
	json_t *d = json_object_get(t, "duration");
	json_t *x = json_object_get(t, "exit_code");

	if (dup_member(&res->start, t, "start") ||
	    dup_member(&res->end, t, "end") ||
	    dup_member(&res->system, t, "system"))
		return ATEX_ENOMEM;
	if (json_is_number(d))
		res->duration = json_number_value(d);
	if (json_is_integer(x)) {
		res->exit_code = (int)json_integer_value(x);
		res->has_exit_code = true;
	}
	return 0;
}

/* The timings of `map` on results [from, to), the earlier ones matched
 * with their attempt. */
static int apply_timings(atex_results *r, json_t *map, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		struct atex_result *res = &r->items[i];
		char *key = timing_key(res->platform, res->test,
				       res->final ? 0 : res->attempt);
		json_t *t;
		int rc;

		if (!key)
			return ATEX_ENOMEM;
		t = json_object_get(map, key);
		free(key);
		if (t && (rc = set_timings(res, t)))
			return rc;
	}
	return 0;
}

/* One sidecar, when there is one, onto results [from, to) (the earlier
 * attempts when `earlier`). A missing one is a warning when `expected`. */
static int sidecar(atex_results *r, const char *dir, enum report_format format,
		   size_t from, size_t to, bool earlier, bool expected)
{
	json_t *map = NULL;
	char *path;
	int rc;

	if (from == to)
		return 0;
	path = report_find_jsonl(dir, "attempts", format, &rc);
	if (rc)
		return rc;
	if (!path) {
		if (!expected)
			return 0;
		path = atex_path_join(dir, "attempts.jsonl");
		if (!path)
			return ATEX_ENOMEM;
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s: missing (the run wrote run.json); %zu results "
			 "have no timings",
			 path, to - from);
		free(path);
		return 0;
	}
	map = json_object();
	rc = map ? load_sidecar(map, path, earlier) : atex_error_oom();
	if (!rc)
		rc = apply_timings(r, map, from, to);
	json_decref(map);
	free(path);
	return rc;
}

int report_load_timings(atex_results *r, const char *dir,
			enum report_format format, size_t n_final)
{
	char *old_dir = atex_path_join(dir, "old");
	int rc;

	if (!old_dir)
		return ATEX_ENOMEM;
	rc = sidecar(r, dir, format, 0, n_final, false, r->has_run);
	if (!rc)
		rc = sidecar(r, old_dir, format, n_final, r->n, true,
			     r->has_run);
	free(old_dir);
	return rc;
}

/* ------------------------------------------------------------------------
 * The run's metadata.
 */

void report_run_clear(struct atex_run_info *run)
{
	free((char *)run->started);
	free((char *)run->ended);
	free((char *)run->atex_version);
	free((char *)run->platform);
	free((char *)run->provisioner);
	free((char *)run->tree);
	free((char *)run->git_commit);
	free((char *)run->context);
	free((char *)run->history);
	memset(run, 0, sizeof(*run));
	run->systems = -1;
}

/* The string members of struct atex_run_info, by their run.json keys. */
static const char **run_member(struct atex_run_info *run, size_t i,
			       const char **key)
{
	static const char *const keys[] = {
		"started",     "ended", "atex_version", "platform",
		"provisioner", "tree",	"git_commit",
	};
	const char **members[] = {
		&run->started,	  &run->ended,	     &run->atex_version,
		&run->platform,	  &run->provisioner, &run->tree,
		&run->git_commit,
	};

	if (i >= ATEX_ARRAY_SIZE(keys))
		return NULL;
	*key = keys[i];
	return members[i];
}

/* `v` (a JSON object) as its text in *out; a warning naming `where` when
 * it is not one. Returns 0 or ATEX_ENOMEM. */
static int take_context(const char **out, json_t *v, const char *where)
{
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s: \"context\" is not an object; left out", where);
		return 0;
	}
	*out = json_dumps(v, JSON_COMPACT);
	return *out ? 0 : atex_error_oom();
}

/* The run's `key` (started, ended) is not a time: unknown. */
static void warn_time(const char *where, const char *key, const char *value)
{
	struct atex_buf v = ATEX_BUF_INIT;

	atex_buf_put_printable(&v, value ? value : "");
	atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
		 "%s: \"%s\" is not an ISO 8601 time ('%.40s%s'); taken as "
		 "unknown",
		 where, key, v.ptr ? v.ptr : "", v.len > 40 ? "..." : "");
	atex_buf_free(&v);
}

static int run_from_json(struct atex_run_info *run, json_t *obj,
			 const char *path)
{
	const char **member, *key;
	json_t *systems = json_object_get(obj, "systems");
	json_t *history = json_object_get(obj, "history");

	for (size_t i = 0; (member = run_member(run, i, &key)); i++) {
		json_t *v = json_object_get(obj, key);

		if (v && !json_is_null(v) && !json_is_string(v))
			atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
				 "%s: \"%s\" is not a string; left out", path,
				 key);
		else if (i < 2 && json_is_string(v) &&
			 !atex_iso_time_ok(json_string_value(v)))
			warn_time(path, key, json_string_value(v));
		else if (dup_member(member, obj, key))
			return ATEX_ENOMEM;
	}
	if (json_is_integer(systems) && json_integer_value(systems) >= 0)
		run->systems = (long)json_integer_value(systems);
	if (json_is_array(history) && json_array_size(history) &&
	    !(run->history = json_dumps(history, JSON_COMPACT)))
		return atex_error_oom();
	return take_context(&run->context, json_object_get(obj, "context"),
			    path);
}

int report_load_run_json(atex_results *r, const char *dir)
{
	char *path = atex_path_join(dir, "run.json");
	json_error_t jerr;
	json_t *obj = NULL;
	int rc = 0;

	if (!path)
		return ATEX_ENOMEM;
	if (!atex_path_exists(path))
		goto out;
	obj = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj || !json_is_object(obj)) {
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s:%d: %s%s; the run's metadata is left out", path,
			 obj ? 1 : jerr.line, obj ? "not a JSON object" : "",
			 obj ? "" : jerr.text);
		goto out;
	}
	report_run_clear(&r->run);
	rc = run_from_json(&r->run, obj, path);
	r->has_run = !rc;
out:
	json_decref(obj);
	free(path);
	return rc;
}

int report_load_run_table(atex_results *r, void *handle, const char *path)
{
	static const char query[] =
		"SELECT started, ended, atex_version, platform, provisioner, "
		"tree, git_commit, context, systems FROM run LIMIT 1";
	sqlite3 *db = handle;
	sqlite3_stmt *st = NULL;
	struct atex_run_info *run = &r->run;
	const char **member, *key;
	json_t *context = NULL;
	char *where = NULL;
	int rc = 0;

	/* No table: a database from before issue 14. */
	if (sqlite3_prepare_v2(db, query, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto out;
	report_run_clear(run);
	where = atex_sprintf("%s: table run", path);
	if (!where) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (size_t i = 0; (member = run_member(run, i, &key)); i++) {
		const unsigned char *v = sqlite3_column_text(st, (int)i);

		/* started, ended: times in text, else damage. */
		if (v && i < 2 &&
		    (sqlite3_column_type(st, (int)i) != SQLITE_TEXT ||
		     !atex_iso_time_ok((const char *)v))) {
			warn_time(where, key, (const char *)v);
			continue;
		}
		if (v && !(*member = atex_strdup((const char *)v))) {
			rc = ATEX_ENOMEM;
			goto out;
		}
	}
	if (sqlite3_column_type(st, 8) == SQLITE_INTEGER &&
	    sqlite3_column_int64(st, 8) >= 0)
		run->systems = (long)sqlite3_column_int64(st, 8);
	else if (sqlite3_column_type(st, 8) != SQLITE_NULL)
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s: \"systems\" is not a count; taken as unknown",
			 where);
	if (sqlite3_column_text(st, 7)) {
		context = json_loads((const char *)sqlite3_column_text(st, 7),
				     0, NULL);
		if (!context)
			atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
				 "%s: \"context\" is not JSON; left out",
				 where);
		rc = context ? take_context(&run->context, context, where) : 0;
		if (rc)
			goto out;
	}
	r->has_run = true;
	rc = 1;
out:
	free(where);
	json_decref(context);
	sqlite3_finalize(st);
	return rc;
}

const struct atex_run_info *atex_results_run(const atex_results *r)
{
	return r && r->has_run ? &r->run : NULL;
}

double atex_results_wall_time(const atex_results *r)
{
	double first = 0, last = 0, t;
	bool run_first, run_last, have_first, have_last;

	if (!r)
		return -1;
	/* The run's own times, else the results' (a run that did not end:
	 * from its start to the last result's end). */
	run_first = have_first =
		r->has_run && report_parse_time(r->run.started, &first);
	run_last = have_last =
		r->has_run && report_parse_time(r->run.ended, &last);
	for (size_t i = 0; i < r->n && !(run_first && run_last); i++) {
		const struct atex_result *res = &r->items[i];

		if (!run_first && report_parse_time(res->start, &t) &&
		    (!have_first || t < first)) {
			first = t;
			have_first = true;
		}
		if (!run_last && report_parse_time(res->end, &t) &&
		    (!have_last || t > last)) {
			last = t;
			have_last = true;
		}
	}
	return have_first && have_last && last >= first ? last - first : -1;
}
