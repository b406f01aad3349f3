/*
 * atex/report.h - aggregated results for people and CI: a results file
 * (JSON Lines, plain, gzip or xz, or a SQLite database from the
 * aggregators) loaded into memory, then rendered as a self-contained HTML
 * page, JUnit XML, or a terminal summary.
 *
 * Thread safety: a loaded results set is read-only; any number of threads
 * may render it at once.
 */
#ifndef ATEX_REPORT_H
#define ATEX_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "atex/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One result. Strings are UTF-8 and owned by the results set. */
struct atex_result {
	const char *platform;
	const char *status;
	const char *test;
	const char *subtest;	  /* NULL: the test's own result */
	const char *note;	  /* NULL: none */
	const char *const *files; /* n_files names, relative to files_dir */
	size_t n_files;
	/* The files directory of this result (the test's own, or the
	 * subtest's): FILES_DIR/<platform>/<test>[/<subtest>]. */
	const char *files_dir;
	unsigned int attempt; /* 1 for the first run of the test */
	bool final;	      /* false: an earlier attempt of a re-run test */
	/*
	 * When and where the attempt ran (docs/PROTOCOL.md sections 3, 5, 6:
	 * attempt.json); every result of one attempt (the test's own and
	 * its subtests) carries the same values. Unknown for results from
	 * before issue 14 or from other tools.
	 */
	const char *start;  /* UTC, ISO 8601 ("...T22:45:01.123+00:00"), NULL */
	const char *end;    /* the same; NULL unknown */
	double duration;    /* seconds of the attempt; < 0 unknown */
	const char *system; /* the system's name ("local-3"); NULL unknown */
	int exit_code;	    /* the test's exit code; -1 unknown */
	bool has_exit_code; /* false: exit_code is unknown */
};

typedef struct atex_results atex_results;

/*
 * Loads every result of `path`:
 *  - "*.jsonl", "*.jsonl.gz", "*.jsonl.xz" (docs/PROTOCOL.md section 5):
 *    the final results; earlier attempts of re-run tests are read from
 *    "old/results.jsonl[.gz|.xz]" next to it when that exists. Files are
 *    under "files/" next to the results file, those of earlier attempts
 *    under "old/files/N/" for attempt N (as `atex run` keeps them, with
 *    the JSON Lines aggregator's attempt_dirs) or "old/files/".
 *  - "*.sqlite": the database of the SQLite aggregator, every attempt;
 *    files found as for JSON Lines.
 *  - a folder: a results folder of `atex run`, which stands for its
 *    results.jsonl (its results.sqlite when that is all it has);
 *    ATEX_ENOTFOUND naming the folder when it has neither.
 * A file cut short by a killed run (a truncated last line, a compressed
 * stream without its end) loads what it has, with a warning logged.
 * A damaged JSON Lines file (a whole line that is not a result) loads
 * too: each such line becomes a final "error" result of platform
 * ATEX_RESULTS_DAMAGED_PLATFORM whose test is "FILE:LINE" and whose note
 * says why, a warning is logged naming it (the first 10; then one with
 * the count of the rest), and atex_results_damaged() counts them. A file
 * none of whose lines is a result (another format, random bytes) is not
 * results: ATEX_EFORMAT naming the file and its first bad line.
 * Returns 0, ATEX_ENOTFOUND, ATEX_EFORMAT (the message has file:line),
 * ATEX_EIO, ATEX_ENOMEM, ATEX_EINVAL (NULL).
 * *out is the caller's (atex_results_free); read-only use of it is
 * thread-safe.
 */
int atex_results_load(atex_results **out, const char *path);

/* The platform of the results standing for damaged lines. */
#define ATEX_RESULTS_DAMAGED_PLATFORM "(damaged)"

/* The number of lines of the loaded file(s) that were not results (each
 * is an "error" result, see atex_results_load); 0 for NULL. */
size_t atex_results_damaged(const atex_results *r);

/*
 * What a run recorded of itself (docs/PROTOCOL.md section 6): DIR/run.json
 * next to JSON Lines results, or the `run` table of a SQLite database
 * (run.json next to it when it has none). Every member may be NULL (or
 * -1) when unknown. Strings are UTF-8, owned by the results set.
 */
struct atex_run_info {
	const char *started;	  /* UTC, ISO 8601 as in struct atex_result */
	const char *ended;	  /* NULL: the run did not end (killed) */
	const char *atex_version; /* the atex that ran it */
	const char *platform;
	const char *provisioner; /* "local", "ssh", "podman", "vm"... */
	const char *tree;	 /* the fmf tree, absolute */
	const char *git_commit;	 /* the tree's commit (40 hex) */
	const char *context;	 /* a JSON object's text ({"distro": ...}) */
	long systems;		 /* systems that ran tests; -1 unknown */
	/* The earlier results it scheduled from (--history): a JSON array
	 * text of paths; NULL without (only run.json has it). */
	const char *history;
};

/*
 * The run's metadata, borrowed (valid while r lives); NULL when the
 * results have none (older runs, other tools, or r NULL). A run.json
 * that cannot be read is a warning naming it, never a failed load.
 */
const struct atex_run_info *atex_results_run(const atex_results *r);

/*
 * The run's wall time in seconds: from the run's start (else the earliest
 * start of the results) to its end (else the latest end of the results:
 * a run that did not end); < 0 when either is unknown.
 */
double atex_results_wall_time(const atex_results *r);

/* Frees the results; NULL is accepted. */
void atex_results_free(atex_results *r);

/* The number of results (final and earlier attempts). */
size_t atex_results_count(const atex_results *r);

/* Result i, in the order of the file (earlier attempts after the final
 * ones for JSON Lines). Borrowed; valid while r lives. */
const struct atex_result *atex_results_get(const atex_results *r, size_t i);

/*
 * true when every final result is pass, info, warn or skip (what makes
 * `atex run`, and `atex report --exit-code`, exit 0). Custom statuses count as
 * failing; NULL gives false.
 */
bool atex_results_passed(const atex_results *r);

/*
 * One self-contained HTML file (styles and script inline, nothing loaded
 * from the network): counts per status, a table filterable by status,
 * platform and test name, links to each result's files (relative to the
 * HTML file's folder), earlier attempts of re-run tests marked; each
 * attempt's duration, system and start, the table sortable by duration,
 * status, test and start, the run's metadata and times at the top. `title`
 * may be NULL. Written to a temporary file renamed over `path`.
 * Returns 0, ATEX_EIO, ATEX_ENOMEM, ATEX_EINVAL (r or path NULL).
 */
int atex_report_html(const atex_results *r, const char *path,
		     const char *title);

/*
 * JUnit XML as GitLab and Jenkins read it: one <testsuite> per platform,
 * one <testcase> per final result (classname the test, name the subtest
 * or the test), fail -> <failure>, error and infra -> <error>, skip ->
 * <skipped>, the note as the message; `time` on a test's own testcase
 * (its attempt's duration; none on subtests), `time`, `timestamp` and
 * `hostname` (one system) on a testsuite when known. Returns 0, ATEX_EIO,
 * ATEX_ENOMEM, ATEX_EINVAL (r or path NULL).
 */
int atex_report_junit(const atex_results *r, const char *path);

/*
 * A terminal summary to descriptor `fd`: a table of counts per platform
 * and status of the final results, then every final result that is not
 * pass/info/warn/skip with its note, then (when known) the ten slowest
 * tests with their durations and systems, the run's wall time and the sum
 * of its attempts' durations. Returns 0, ATEX_EIO or ATEX_EINVAL (r
 * NULL).
 */
int atex_report_summary(const atex_results *r, int fd);

/*
 * tmt's results.yaml (tmt/schemas/results.yaml, as `tmt run` writes it)
 * of the final results: one entry per platform and test (its subtests as
 * `subresult`), statuses as tmt's outcomes (infra and custom statuses
 * become error and fail, a note naming the atex status), `log` and
 * `data-path` relative to the folder of `path`, start-time, end-time,
 * duration ("HH:MM:SS"), guest {name: the system (else the platform),
 * role: the platform}, the run's context. Written to a temporary file
 * renamed over `path`. Returns 0, ATEX_EIO, ATEX_ENOMEM, ATEX_EINVAL (r
 * or path NULL).
 */
int atex_report_tmt(const atex_results *r, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_REPORT_H */
