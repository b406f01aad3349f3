/*
 * report_private.h - what the renderers of the report block share: status
 * classes, escaping for HTML and XML, the order statuses are shown in,
 * and writing a whole output file atomically.
 */
#ifndef ATEX_REPORT_PRIVATE_H
#define ATEX_REPORT_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "atex/report.h"
#include "util/util.h"

#define REPORT_COMPONENT "report"

/* The longest duration taken as one (about 31 years): beyond it a value
 * is damage, and converting it to whole seconds would overflow. */
#define REPORT_MAX_DURATION 1e9

/* How a results file is stored (results.c). */
enum report_format {
	REPORT_FORMAT_JSONL,
	REPORT_FORMAT_GZIP,
	REPORT_FORMAT_XZ,
	REPORT_FORMAT_SQLITE,
};

/* A loaded results set (results.c; the run's metadata from run.c). */
struct atex_results {
	struct atex_result *items;
	size_t n, cap;
	size_t damaged; /* lines that were not results (kept as errors) */
	struct atex_run_info run;
	bool has_run;
};

/*
 * Reads `path` whole into `out`, decompressed as `format` says (not
 * SQLITE); *truncated tells a compressed stream cut short. Returns 0,
 * ATEX_ENOTFOUND, ATEX_EIO, ATEX_EFORMAT, ATEX_ENOMEM (results.c).
 */
int report_read_decoded(struct atex_buf *out, bool *truncated, const char *path,
			enum report_format format);

/* The format a name's suffix says (.gz, .xz, else plain JSON Lines). */
enum report_format report_format_of_name(const char *name);

/*
 * The file `stem`.jsonl in `dir` with the suffix of `format` first, then
 * plain, .gz, .xz: NULL when there is none (or ATEX_ENOMEM, which *rc
 * says). A copy.
 */
char *report_find_jsonl(const char *dir, const char *stem,
			enum report_format format, int *rc);

/*
 * run.c: the timings of attempts.jsonl (docs/PROTOCOL.md section 5) set
 * on the results of the JSON Lines file in `dir`: DIR/attempts.jsonl for
 * the final results (items before `n_final`), DIR/old/attempts.jsonl for
 * the earlier ones, matched by platform, test and attempt. A sidecar
 * missing where the run should have written one, or a damaged line, is
 * a warning naming it (file:line): never a failed load. Returns 0 or
 * ATEX_ENOMEM.
 */
int report_load_timings(atex_results *r, const char *dir,
			enum report_format format, size_t n_final);

/* run.c: the run's metadata from DIR/run.json, when it exists (a bad
 * one is a warning). Returns 0 or ATEX_ENOMEM. */
int report_load_run_json(atex_results *r, const char *dir);

/* run.c: the run's metadata from the `run` table of a SQLite database
 * (`db` is a sqlite3 *); 1 when it had one, 0 when not, ATEX_ENOMEM. */
int report_load_run_table(atex_results *r, void *db, const char *path);

/* run.c: frees the run's metadata. */
void report_run_clear(struct atex_run_info *run);

/* An ISO 8601 time ("2026-12-06T22:45:01.123+00:00", "...Z", without a
 * zone: UTC) as seconds since the epoch; false when it is not one. */
bool report_parse_time(const char *iso, double *out);

/* `seconds` for people: "0.42s", "3.4s", "1m02s", "1h02m03s" (buf of at
 * least 32 bytes). */
const char *report_format_duration(char *buf, size_t size, double seconds);

/*
 * The sum of the durations of every attempt (final and earlier; each
 * counted once, though all its results carry it), in seconds; *n gets
 * the number of attempts counted. < 0 when none has a duration.
 */
double report_test_time(const atex_results *r, size_t *n);

/* The number of earlier attempts of re-run tests: distinct (platform,
 * test, attempt) among the results that are not final (an attempt's
 * subtests are part of it, not attempts of their own). Returns 0 or
 * ATEX_ENOMEM. */
int report_earlier_attempts(const atex_results *r, size_t *n);

/* The path of `target` relative to the directory `base`, both absolute
 * and normalised ("../x/y"; "." for base itself). NULL: ATEX_ENOMEM. */
char *report_relative_path(const char *base, const char *target);

/* `path` with its symlinks resolved (realpath), so that a relative path
 * computed from it climbs ("..") where the kernel does; the normalised
 * absolute text when it does not exist (yet). NULL: ATEX_ENOMEM, or
 * ATEX_EIO (the working directory unknown; the error set). */
char *report_real_path(const char *path);

/* The results file a results folder of `atex run` stands for: its
 * results.jsonl, or its results.sqlite when that is all there is.
 * ATEX_ENOTFOUND (naming the folder) when it has neither, ATEX_ENOMEM. */
int report_results_in_dir(char **out, const char *dir);

/* The statuses of docs/PROTOCOL.md section 2, in the order every output
 * shows them; custom statuses follow in the order first seen. */
extern const char *const report_known_statuses[];
extern const size_t report_n_known_statuses;

/* true for pass, info, warn and skip: a result that does not fail a run.
 * Custom statuses fail it. */
bool report_status_ok(const char *status);

/*
 * The distinct statuses of the results (final ones only when
 * `final_only`), in display order: the known ones that occur (or all of
 * them when `all_known`), then the custom ones in the order first seen.
 * The vector borrows the strings. Returns 0 or ATEX_ENOMEM.
 */
int report_statuses(struct atex_vec *out, const atex_results *r,
		    bool final_only, bool all_known);

/* The distinct platforms in the order first seen (borrowed strings).
 * Returns 0 or ATEX_ENOMEM. */
int report_platforms(struct atex_vec *out, const atex_results *r);

/*
 * Appends `s` escaped for HTML or XML text and attribute values alike
 * (& < > " '). Bytes that are not valid UTF-8 and control characters XML
 * forbids become U+FFFD, so that a note with garbage in it still gives a
 * well-formed document. With `attribute`, tab, newline and carriage
 * return are written as character references, which attribute value
 * normalisation would otherwise turn into spaces.
 * Returns 0 or ATEX_ENOMEM.
 */
int report_escape(struct atex_buf *b, const char *s, bool attribute);

/* The number of characters (code points) of a UTF-8 string, for
 * aligning columns. */
size_t report_width(const char *s);

/* "TEST" or "TEST/SUBTEST" (malloc'ed; NULL: ATEX_ENOMEM). */
char *report_full_name(const struct atex_result *res);

/*
 * A document being built: calls after the first failure do nothing, so a
 * renderer checks `rc` once at the end instead of after every piece.
 */
struct report_out {
	struct atex_buf buf;
	int rc; /* 0, or the first error (ATEX_ENOMEM) */
};
#define REPORT_OUT_INIT                                                        \
	{                                                                      \
		ATEX_BUF_INIT, 0                                               \
	}

void report_puts(struct report_out *o, const char *s);
void report_printf(struct report_out *o, const char *fmt, ...)
	ATEX_PRINTF(2, 3);
/* report_escape into o. */
void report_esc(struct report_out *o, const char *s, bool attribute);

/* Writes all of data to fd. Returns 0 or -1 with errno set. */
int report_write_all(int fd, const char *data, size_t len);

/*
 * Writes `len` bytes to a temporary file next to `path` and renames it
 * over `path`, so that a reader never sees half a report. Returns 0 or
 * ATEX_EIO naming the path.
 */
int report_write_file(const char *path, const char *data, size_t len);

#endif /* ATEX_REPORT_PRIVATE_H */
