/*
 * reporter.h - private: turns what one test reports into its artifacts
 * directory (docs/PROTOCOL.md sections 2 and 3):
 *
 *   ARTIFACTS/results     one closed result per line (JSON Lines), written
 *                         whole as each result closes
 *   ARTIFACTS/files/      the files of every result, under the result's
 *                         name ("sub/test" -> files/sub/test/log)
 *   ARTIFACTS/output.raw  (transient) the test's stdout+stderr as it runs;
 *                         gone after atex_reporter_finish
 *
 * The executor feeds it the events of the control parser (control.h) and
 * finally the outcome of the test; the reporter applies the rules:
 *  - results with "partial": true stay open per name and later results of
 *    that name merge into them (new keys added, null removes, scalars
 *    replaced, arrays appended, objects merged recursively, a change of
 *    type replaces); a result without partial closes it; open results
 *    keep their first-seen order;
 *  - file contents go to disk as they arrive, appended when a name
 *    repeats (within one result and across results of one name);
 *  - at finish: open results are closed in first-seen order; the test's
 *    own result (no name) gets the fallback when it has none closed
 *    (status from the open partial, else pass for exit 0, else fail; for
 *    a killed test "error" (timeout, channel error) or "infra" (lost
 *    connection, wrapper failure, cancel) with a note; testout
 *    "output.txt" unless it has a testout or an output.txt file); a
 *    channel error always adds an "error" result for the test itself;
 *    other kills turn the results the test closed for itself into the
 *    kill's status, in place, the note keeping what it said; every
 *    testout becomes a copy of the whole output of the test.
 *  - what the test makes it hold (open results, file names) is bounded
 *    (atex_reporter_set_memory_limit); open results are found by name in
 *    constant time.
 *
 * In a result line "partial" and "testout" are gone and "files" is the
 * plain list of names: the testout first, then the files sorted by name,
 * each once. Other keys keep their order and values.
 *
 * Not thread-safe: used by the thread that runs the test.
 */
#ifndef ATEX_EXECUTOR_REPORTER_H
#define ATEX_EXECUTOR_REPORTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct atex_reporter atex_reporter;

/* How a test ended, for the fallback result. */
enum atex_test_end {
	ATEX_TEST_EXITED,	 /* the wrapper reported an exit code */
	ATEX_TEST_TIMED_OUT,	 /* duration exceeded: killed ("error") */
	ATEX_TEST_CHANNEL_ERROR, /* the control channel broke ("error") */
	ATEX_TEST_INFRA,	 /* connection lost, wrapper failed ("infra") */
	ATEX_TEST_CANCELED,	 /* canceled from outside ("infra") */
};

struct atex_test_outcome {
	enum atex_test_end end;
	int exit_code; /* for ATEX_TEST_EXITED */
	/* Why, for the other ends (NULL: a default); for EXITED, NULL or
	 * what the test's fallback result's note gains (a reboot without
	 * tmt-reboot). */
	const char *note;
	/* For EXITED: what the test's checks make of its fallback result
	 * (tmt's check interpretation): a status it is reduced with (the
	 * worse wins) and what its note gains; NULL: nothing. */
	const char *checks_status;
	const char *checks_note;
};

/*
 * Creates ARTIFACTS (and parents) and files/ in it; `results` is created
 * empty (an existing one is truncated: a directory is one run of a test).
 * Returns 0, ATEX_EIO (message names the path), ATEX_ENOMEM.
 */
int atex_reporter_new(atex_reporter **out, const char *artifacts_dir);

/*
 * Bounds what the test makes the reporter hold in memory: its open
 * partial results and the names of its files, counted about in bytes (0:
 * the default, 64 MiB). A result event that goes over it fails with
 * ATEX_EFORMAT and a message saying so (the executor then stops the test
 * as for any channel error).
 */
void atex_reporter_set_memory_limit(atex_reporter *r, size_t bytes);

/*
 * Python ATEX's results for a killed test (the fmf executor's
 * compat_python_atex): every kill is "infra" with the outcome's note, the
 * test's own fallback is added only when the test closed no result for
 * itself (a channel error too), and what the test closed is left as it
 * is. Off by default.
 */
void atex_reporter_set_compat_python_atex(atex_reporter *r, bool on);

/*
 * The test's `result` key (tmt's result interpretation; docs/PROTOCOL.md
 * section 2): how the test's own result is settled at finish.
 */
enum atex_result_interpret {
	ATEX_RESULT_RESPECT, /* the default */
	ATEX_RESULT_XFAIL,
	ATEX_RESULT_PASS,
	ATEX_RESULT_INFO,
	ATEX_RESULT_WARN,
	ATEX_RESULT_ERROR,
	ATEX_RESULT_FAIL,
	ATEX_RESULT_CUSTOM,
	ATEX_RESULT_RESTRAINT,
};

/* The interpretation named `value`, or -1 when it names none. */
int atex_result_interpret_parse(const char *value);

/* Sets the test's interpretation (ATEX_RESULT_RESPECT by default). */
void atex_reporter_set_interpret(atex_reporter *r,
				 enum atex_result_interpret how);

/* What it holds now, in the units of the limit. */
size_t atex_reporter_held(const atex_reporter *r);

/* The file the test's stdout+stderr go to (the executor opens it with
 * O_APPEND, also across restarts after a reboot). */
const char *atex_reporter_output_path(const atex_reporter *r);

/*
 * The control parser's result events (control.h; the reporter's handler
 * functions can be used as they are, with the reporter as userdata).
 * result_begin takes the reference to `result`. Return 0, or ATEX_EIO
 * (a file could not be written; message names it), ATEX_EFORMAT (a rule
 * that needs state: testout repeated in files of the merged result),
 * ATEX_ENOMEM.
 */
int atex_reporter_result_begin(void *reporter, json_t *result);
int atex_reporter_file_data(void *reporter, size_t index, const void *data,
			    size_t len);
int atex_reporter_result_end(void *reporter);

/*
 * The test has ended: closes open results, adds the fallback (and for a
 * channel error the error result), writes the testout copies and removes
 * the raw output. Call once; later result events fail with ATEX_EINVAL.
 * Returns 0, ATEX_EIO, ATEX_ENOMEM.
 */
int atex_reporter_finish(atex_reporter *r,
			 const struct atex_test_outcome *outcome);

/* Number of result lines written so far. */
size_t atex_reporter_count(const atex_reporter *r);

/* Whether a result written so far has the status fail, warn or error
 * (Python ATEX's BeakerlibExecutor makes that exit code 1). */
bool atex_reporter_failing(const atex_reporter *r);

/* Frees the reporter; NULL is accepted. Does not finish it. */
void atex_reporter_free(atex_reporter *r);

#endif /* ATEX_EXECUTOR_REPORTER_H */
