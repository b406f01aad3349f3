/*
 * atex/aggregator.h - collecting the results of many tests: an Aggregator
 * ingests the artifacts directory of each finished test (docs/PROTOCOL.md
 * section 3) into one place: a JSON Lines file (section 5), YAML
 * documents, a SQLite database, or several of those at once.
 *
 * The contract: ingest is atomic per test as far as the format allows (a
 * reader never sees half a test's line, row or document, even when the
 * program is killed in the middle), and it never destroys the artifacts
 * directory: files are hard-linked into the aggregator's files directory
 * when it is on the same filesystem, copied otherwise, so that several
 * aggregators can ingest the same directory and the caller removes it.
 *
 * Files of a result land in FILES_DIR/<platform>/<test name>/<subtest
 * name>/<file>, the test's own files in FILES_DIR/<platform>/<test
 * name>/<file>: the artifacts directory's files/ tree, placed under
 * <platform>/<test name>.
 *
 * Thread safety: ingest may be called from any thread at once; start,
 * stop and free by the owning thread. A program may implement its own
 * aggregator by filling in struct atex_aggregator_ops.
 */
#ifndef ATEX_AGGREGATOR_H
#define ATEX_AGGREGATOR_H

#include <stdbool.h>

#include "atex/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atex_aggregator atex_aggregator;

/*
 * An aggregator's operations, for a program's own aggregator: version
 * (ATEX_AGGREGATOR_OPS_VERSION), ingest and free are required; start and
 * stop may be NULL (nothing to do). Each op has the contract of the
 * atex_aggregator_* call of the same name below (ingest from any thread
 * at once); report errors with atex_error_set_message().
 */
struct atex_aggregator_ops {
	unsigned int version;
	int (*start)(atex_aggregator *a);
	int (*ingest)(atex_aggregator *a, const char *platform,
		      const char *test_name, const char *artifacts_dir);
	int (*stop)(atex_aggregator *a);
	void (*free)(atex_aggregator *a);
};

#define ATEX_AGGREGATOR_OPS_VERSION 1

struct atex_aggregator {
	const struct atex_aggregator_ops *ops;
};

/*
 * Opens the output (creating or truncating it: a new run) and the files
 * directory. Returns 0, ATEX_EIO (message names the path), ATEX_EINVAL
 * (started twice), ATEX_ENOMEM.
 */
int atex_aggregator_start(atex_aggregator *a);

/*
 * Ingests one finished test: every result in ARTIFACTS/results and the
 * files under ARTIFACTS/files. `platform` is a non-empty name without "/"
 * components that escape ("rhel-9.6@x86_64"); `test_name` the fmf name
 * ("/unit/syscalls"). A results line that does not parse is not fatal:
 * it is logged with file:line and replaced by an "error" result naming
 * it, so the other results are kept. Missing `results` (the test never
 * started) gives one "error" result saying so; so do files that cannot be
 * placed (a name longer than the file system allows, a full disk): the
 * results are written all the same.
 * Returns 0, ATEX_EINVAL (bad platform or name, not started), ATEX_EIO
 * (the output cannot be written: nothing of this test was written),
 * ATEX_ENOMEM. Any thread.
 */
int atex_aggregator_ingest(atex_aggregator *a, const char *platform,
			   const char *test_name, const char *artifacts_dir);

/* Flushes and closes the output. Returns 0 or ATEX_EIO. */
int atex_aggregator_stop(atex_aggregator *a);

/* Stops (if needed) and frees; NULL is accepted. */
void atex_aggregator_free(atex_aggregator *a);

/* ------------------------------------------------------------------------
 * Implementations.
 */

enum atex_compression {
	ATEX_COMPRESSION_NONE = 0,
	ATEX_COMPRESSION_GZIP = 1, /* zlib, .gz */
	ATEX_COMPRESSION_XZ = 2,   /* liblzma, .xz */
	ATEX_COMPRESSION_AUTO = 3, /* from the file name's suffix */
};

struct atex_jsonl_aggregator_options {
	unsigned int version;
	const char *path;      /* the results file; required */
	const char *files_dir; /* where files go; NULL: no files kept */
	int compression;       /* enum atex_compression; 0: none */
	/* (Version 2.) true: the files of the Nth ingest of a platform and
	 * test go to FILES_DIR/N/<platform>/<test name>/..., so that a test
	 * ingested several times (the earlier attempts of a re-run test)
	 * keeps every attempt's files; false: FILES_DIR/<platform>/..., a
	 * later ingest replacing files of the same name. */
	bool attempt_dirs;
	/* (Version 3, for the Python API's Python ATEX semantics.)
	 * strict: a missing ARTIFACTS/results fails the ingest with
	 * ATEX_ENOTFOUND and a line that is not a result with ATEX_EFORMAT
	 * (PATH:LINE in the message; nothing of the test is written); a
	 * result without status is written with a null status; a results
	 * file without results writes no line; an empty ARTIFACTS/files/
	 * makes no directory; files that cannot be placed fail the ingest
	 * (ATEX_EIO) instead of adding an "error" result. */
	bool strict;
	/* exclusive: start() fails with ATEX_EEXISTS when `path` or
	 * `files_dir` exists already (a run never writes over another's
	 * results) instead of replacing them. */
	bool exclusive;
	/* The compression level: 0 the default (gzip 6, xz preset 1);
	 * gzip 1-9; xz preset 0-9, optionally ORed with
	 * LZMA_PRESET_EXTREME (1u << 31). ATEX_EINVAL otherwise. */
	unsigned int level;
	/* compress_files: ATEX_COMPRESSION_GZIP or _XZ writes every regular
	 * file a test uploaded compressed (at `level`) into the files
	 * directory, named name + files_suffix, instead of linking it, and
	 * adds files_suffix to the names in the results' "files" lists;
	 * symlinks, and files whose basename is in files_exclude (also in
	 * the lists), are kept as they are. ATEX_COMPRESSION_AUTO: the
	 * output's compression (none: off). 0: off. files_suffix NULL:
	 * ".gz" or ".xz"; "": compressed under the same name. The strings
	 * are copied. */
	int compress_files;
	const char *files_suffix;
	const char *const *files_exclude; /* NULL-terminated; NULL: none */
	/* (Version 4.) attempts_path: a sidecar JSON Lines file with one
	 * line per ingest, written in the same lock as the results and
	 * with the same whole-line rule (docs/PROTOCOL.md section 5):
	 *   {"platform": "p", "test": "/t", "attempt": 1, "final": true,
	 *    "start": ISO, "end": ISO, "duration": 3.444,
	 *    "system": "local-3", "exit_code": 0}
	 * from ARTIFACTS/attempt.json (null for what is unknown; a
	 * directory without one gives a line of nulls). The results lines
	 * keep Python ATEX's six fields. Compressed by its own name's suffix
	 * (.gz, .xz) at `level`. When it cannot be written, the ingest's
	 * results are taken back and the ingest fails; the multi
	 * aggregator's undo takes back both. NULL: none. attempts_earlier:
	 * its lines say "final": false (the home of earlier attempts). */
	const char *attempts_path;
	bool attempts_earlier;
};

#define ATEX_JSONL_AGGREGATOR_OPTIONS_VERSION 4
#define ATEX_JSONL_AGGREGATOR_OPTIONS_INIT                                     \
	{                                                                      \
		ATEX_JSONL_AGGREGATOR_OPTIONS_VERSION, NULL, NULL, 0, false,   \
			false, false, 0, 0, NULL, NULL, NULL, false            \
	}

/*
 * JSON Lines (docs/PROTOCOL.md section 5): one line per result,
 * [platform, status, test, subtest or null, [files], note or null].
 * Each ingest is written with one write(2) of whole lines; compressed
 * output is flushed to a decodable point after every ingest (a gzip or xz
 * decoder reads everything up to the last completed ingest of a killed
 * run). Options are copied. Returns 0, ATEX_EINVAL, ATEX_ENOMEM.
 */
int atex_jsonl_aggregator_new(atex_aggregator **out,
			      const struct atex_jsonl_aggregator_options *opts);

/*
 * YAML documents: one "---" document per ingested test, with keys
 * platform, test, status, note, files (its own result), then start, end,
 * duration, system, attempt and exit_code from ARTIFACTS/attempt.json
 * (each only when known), and subtests (a list of {name, status, note,
 * files}). `files_dir` as for JSON Lines.
 * Both strings copied. Returns 0, ATEX_EINVAL, ATEX_ENOMEM.
 */
int atex_yaml_aggregator_new(atex_aggregator **out, const char *path,
			     const char *files_dir);

struct atex_yaml_aggregator_options {
	unsigned int version;
	const char *path;      /* the YAML file; required */
	const char *files_dir; /* where files go; NULL: no files kept */
	/* compact: Python ATEX's layout. Keys platform, name, status,
	 * files, note, subtests (items {name, status, files, note}), in
	 * that order; a key without a value (null, an empty list) is left
	 * out; the results without a name are the test's own, merged (the
	 * last status and note, the files of all). */
	bool compact;
	bool strict;	/* as the JSON Lines aggregator's */
	bool exclusive; /* as the JSON Lines aggregator's */
};

#define ATEX_YAML_AGGREGATOR_OPTIONS_VERSION 1
#define ATEX_YAML_AGGREGATOR_OPTIONS_INIT                                      \
	{                                                                      \
		ATEX_YAML_AGGREGATOR_OPTIONS_VERSION, NULL, NULL, false,       \
			false, false                                           \
	}

/* atex_yaml_aggregator_new with options (copied). Returns 0, ATEX_EINVAL,
 * ATEX_ENOMEM. */
int atex_yaml_aggregator_new_opts(
	atex_aggregator **out, const struct atex_yaml_aggregator_options *opts);

struct atex_sqlite_aggregator_options {
	unsigned int version;
	const char *path;      /* the database; required */
	const char *files_dir; /* where files go; NULL: names recorded only */
	/* (Version 2.) What the `run` table says about the run: a JSON
	 * object text with the keys platform, provisioner, tree,
	 * git_commit (strings) and context (an object of strings), each
	 * optional (NULL in the table), and started (an ISO 8601 time as
	 * attempt.json has them: the run's start, recorded instead of the
	 * moment start() is called, so that the program's own record of
	 * the run says the same). NULL: all of them NULL (started: at
	 * start()). ATEX_EINVAL when it is not such an object, names a key
	 * it does not know (a misspelt "git-commit" is not dropped
	 * silently) or a context value that is not a string. */
	const char *run_json;
};

#define ATEX_SQLITE_AGGREGATOR_OPTIONS_VERSION 2
#define ATEX_SQLITE_AGGREGATOR_OPTIONS_INIT                                    \
	{                                                                      \
		ATEX_SQLITE_AGGREGATOR_OPTIONS_VERSION, NULL, NULL, NULL       \
	}

/*
 * SQLite: table `results` with one row per result (id, platform, status,
 * test, subtest, note, files as a JSON array text, ingested as Unix
 * seconds with a fraction, attempt, final, started, ended, duration,
 * system, exit_code), indexed by status, test and platform; WAL mode, one
 * transaction per ingest; stop() leaves it in rollback-journal mode (one
 * file, readable without write access to its folder). `attempt` is
 * ARTIFACTS/attempt.json's number when the directory has one, else it
 * counts the ingests of the same
 * platform and test, from 1; `final` is 1 for rows ingested through this
 * aggregator and 0 for rows ingested through its earlier-attempts view
 * (below). started, ended (ISO 8601 UTC with milliseconds), duration
 * (seconds), system and exit_code come from attempt.json (NULL without
 * one, or for a value it lacks), the same for every row of an ingest.
 * Table `run`, one row: started (run_json's, else at start()), ended (at
 * stop(), or atex_sqlite_aggregator_set_ended's; NULL in the database of
 * a run that did not stop), atex_version, platform,
 * provisioner, tree, git_commit, context (JSON object text) from the
 * options' run_json, first_test (the earliest `started` of the results)
 * and systems (the number of distinct `system` values), both filled at
 * stop(). docs/PROTOCOL.md section 6 has the whole schema. start()
 * replaces an existing database. Options are copied (a version-1 struct
 * is accepted). Returns 0, ATEX_EINVAL, ATEX_ENOMEM.
 */
int atex_sqlite_aggregator_new(
	atex_aggregator **out,
	const struct atex_sqlite_aggregator_options *opts);

/*
 * The end of the run that stop() records in the `run` table (an ISO 8601
 * time as attempt.json has them, "2026-12-06T22:52:13.004+00:00"), instead
 * of the moment stop() is called: a program keeping its own record of the
 * run gives both the same end (atex run takes the time once, sets it here,
 * stops, and writes it to run.json). The start is the same through
 * run_json's "started". Copied; NULL: stop()'s moment again. Call it
 * before stop(); thread-safe. Returns 0, ATEX_EINVAL (not a SQLite
 * aggregator, or not such a time).
 */
int atex_sqlite_aggregator_set_ended(atex_aggregator *sqlite,
				     const char *ended);

/*
 * A second aggregator writing into the same database as `sqlite` (made by
 * atex_sqlite_aggregator_new), with final = 0: hand it to an orchestrator
 * as the home of earlier attempts of re-run tests, so one database holds
 * every attempt. Its start and stop do nothing (the database is
 * `sqlite`'s); free it before `sqlite`. Returns 0, ATEX_EINVAL (not a
 * SQLite aggregator), ATEX_ENOMEM.
 */
int atex_sqlite_aggregator_earlier(atex_aggregator **out,
				   atex_aggregator *sqlite);

/*
 * Fans every call out to `n` aggregators, in order: start starts all (and
 * stops those started when one fails), ingest ingests into each in turn,
 * one test at a time, and at the first error stops and takes the test
 * back out of the JSON Lines aggregators before it (a cut of the file;
 * a compressed one refuses later ingests after that), so that the outputs
 * agree about which tests they hold: put JSON Lines first, those that
 * cannot take a test back (SQLite, YAML, your own) last. It returns that
 * error; the test is in none of the outputs, and the caller keeps its
 * artifacts. stop stops all. The
 * array is copied; the aggregators are owned by the multi aggregator when
 * `owned` is true (freed with it), borrowed otherwise.
 * Returns 0, ATEX_EINVAL (n == 0), ATEX_ENOMEM.
 */
int atex_multi_aggregator_new(atex_aggregator **out,
			      atex_aggregator *const *aggregators, size_t n,
			      bool owned);

/* ------------------------------------------------------------------------
 * ReportPortal (src/aggregator/README.md, "ReportPortal", has the mapping).
 */

struct atex_reportportal_aggregator_options {
	unsigned int version;
	const char *url;     /* https://reportportal.example.com; required */
	const char *project; /* required */
	/* The API token; NULL: $ATEX_REPORTPORTAL_TOKEN, else tmt's
	 * $TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN. Sent only in the
	 * Authorization header, never in a message. */
	const char *token;
	/* A new launch of this name, or (launch_rerun, a launch UUID) a
	 * rerun of an existing launch: exactly one of them. */
	const char *launch_name;
	const char *launch_rerun;
	/* NULL: subtests are nested steps of their test (without
	 * statistics); a separator ("/", "::"): subtests are steps of their
	 * own named TEST<sep>SUBTEST beside the test. */
	const char *join_subtest;
	const char *description;	/* of the launch; NULL: none */
	const char *const *attributes;	/* "key:value" or "value",
					   NULL-terminated; NULL: none */
	/* Each request's retry budget for outages (5xx, 408, 429, no
	 * answer), from its first try: 0 is util/http.c's 4 hours; and the
	 * time one try may take (0: 60 s). */
	int retry_total_ms;
	int timeout_ms;
	/* output.txt is also sent inline (as the log message) up to this
	 * size; 0: 1 MiB. */
	size_t inline_max;
	/* The first retry's wait, doubling up to 2 min; 0: 2 s. (Tests
	 * make it short.) */
	int backoff_first_ms;
	/* The launch's startTime ("2026-12-06T22:45:01.123+00:00", as
	 * attempt.json has it): for results uploaded after the run, whose
	 * tests started before now. NULL: when start() is called. Every
	 * launch starts then (a launch per platform too, though made at its
	 * platform's first upload). */
	const char *start_time;
	/* A launch per platform, "LAUNCH_NAME PLATFORM" (each with the
	 * platform's suite), started with the platform's first test, instead
	 * of one launch for everything; not with launch_rerun. */
	bool launch_per_platform;
	/* Version 2: the launches' (and suites') endTime, for results
	 * uploaded after the run (its end); NULL: when stop() is called. */
	const char *end_time;
};

#define ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_VERSION 2
#define ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_INIT                              \
	{                                                                      \
		ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_VERSION, NULL, NULL,      \
			NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, NULL,  \
			false, NULL                                            \
	}

/*
 * ReportPortal (REST API v2): start() starts the launch, each ingest posts
 * the test (a suite per platform, a step per test, its subtests, a log
 * with every uploaded file), stop() finishes the suites and the launch.
 * A platform and test ingested again is posted as a retry of the earlier
 * item. Every object carries a UUID made by the client, so that a request
 * retried after an answer was lost makes no duplicate. Ingest returns
 * ATEX_EIO naming the test, the request and the HTTP status when an
 * upload fails for good (the test may then be partly on the server); it
 * cannot take a test back: in a multi aggregator put it last, or keep it
 * out of the multi so that its failures do not cost local results (what
 * `atex run` does). start() fails with ATEX_EIO when the launch cannot be
 * started; later ingests then fail at once. Options are copied.
 * Returns 0, ATEX_EINVAL (bad options, no token), ATEX_ENOMEM.
 */
int atex_reportportal_aggregator_new(
	atex_aggregator **out,
	const struct atex_reportportal_aggregator_options *opts);

/* The earlier-attempts view of `rp` (as atex_sqlite_aggregator_earlier):
 * hand it to an orchestrator as `earlier`, so that re-runs show as
 * retries. Start and stop do nothing; free it before `rp`. Returns 0,
 * ATEX_EINVAL, ATEX_ENOMEM. */
int atex_reportportal_aggregator_earlier(atex_aggregator **out,
					 atex_aggregator *rp);

/* The launch's UUID once started (NULL before, with a launch per
 * platform, or when not a ReportPortal aggregator or view); valid until
 * freed. */
const char *atex_reportportal_launch_uuid(atex_aggregator *a);

/* How many ingests (through the aggregator and its view) failed. Any
 * thread. */
size_t atex_reportportal_failed(atex_aggregator *a);

/* Before start(), from the thread that will start it: one try of the
 * launch's start, each try at most timeout_ms (0: the options'), so that
 * a run can tell at once whether ReportPortal is there. 0: the launch is
 * started (start() then sends nothing; a launch per platform is not
 * tried: 0). ATEX_EINVAL: the server answered and refused (401/403: the
 * token, 404: the project, other 4xx) or did not answer as ReportPortal
 * (a 2xx that is not JSON): the message names the request and status.
 * ATEX_EIO: no answer, or 5xx/408/429: start() will retry as usual. */
int atex_reportportal_probe(atex_aggregator *a, int timeout_ms);

/* Any thread (not a signal handler): requests in flight end now
 * (ATEX_ECANCELED), later requests get one try each, and stop() finishes
 * what was started with one try each: for a user who stops waiting. `a`
 * may be the aggregator or its earlier view. */
void atex_reportportal_cancel(atex_aggregator *a);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_AGGREGATOR_H */
