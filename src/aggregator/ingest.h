/*
 * ingest.h - private: what every aggregator does with an artifacts
 * directory before it writes anything (docs/PROTOCOL.md section 3):
 * checking the platform and test names, reading ARTIFACTS/results into
 * plain result records, and placing ARTIFACTS/files/ under
 * FILES_DIR/<platform>/<test name>/. Also the one helper that writes an
 * ingest's bytes to an output file.
 *
 * All of it runs before an aggregator takes its lock, so that tests
 * finishing at once read and copy in parallel and only their writes are
 * serialised.
 */
#ifndef ATEX_AGGREGATOR_INGEST_H
#define ATEX_AGGREGATOR_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "util/util.h"

/* One result of a test. The strings and `files` are borrowed from `obj`,
 * which is owned by the struct atex_ingest holding the record. */
struct atex_ingest_result {
	const char *status; /* NULL only with ATEX_INGEST_STRICT */
	const char *name;   /* the subtest; NULL: the test itself */
	const char *note;   /* NULL: none */
	json_t *files;	    /* a JSON array of strings (maybe empty) */
	json_t *obj;	    /* the whole result, other keys included */
};

/*
 * ARTIFACTS/attempt.json (docs/PROTOCOL.md section 3, issue 14's contract
 * section 1): when and where one attempt of a test ran, written by the
 * ad-hoc orchestrator before the ingest.
 *
 *     {"start": "2026-12-06T22:45:01.123+00:00", "end": "...",
 *      "duration": 3.444, "system": "local-3", "attempt": 1,
 *      "exit_code": 0}
 *
 * Each field is unknown on its own: start/end "", duration -1, system
 * NULL, attempt 0, exit_code -1 with has_exit_code false.
 */
struct atex_ingest_attempt {
	char start[40]; /* ISO 8601, UTC, ms, "+00:00"; "" unknown */
	char end[40];
	double duration; /* seconds, monotonic clock; -1 unknown */
	char *system;	 /* malloc'd; NULL unknown */
	long attempt;	 /* from 1; 0 unknown */
	int exit_code;	 /* -1 unknown */
	bool has_exit_code;
};

#define ATEX_INGEST_ATTEMPT_INIT                                               \
	{                                                                      \
		"", "", -1, NULL, 0, -1, false                                 \
	}

/*
 * Reads ARTIFACTS/attempt.json into *out (always set, to unknowns at
 * least; release it with atex_ingest_attempt_release). Returns 0 when it
 * was read, ATEX_ENOTFOUND when there is none (a program's own artifacts:
 * fine, no message), ATEX_EFORMAT when it is not a JSON object (a warning
 * naming the file; everything unknown), ATEX_ENOMEM. A key of the wrong
 * type or shape is a warning naming the file and key, and that value
 * alone unknown: an ingest never fails for this file.
 */
int atex_ingest_read_attempt(struct atex_ingest_attempt *out,
			     const char *artifacts_dir);

void atex_ingest_attempt_release(struct atex_ingest_attempt *a);

/*
 * Writes ARTIFACTS/attempt.json from `a` (unknown values as null), whole
 * or not at all (a temporary file renamed). Returns 0 or ATEX_EIO naming
 * the file, ATEX_ENOMEM.
 */
int atex_ingest_write_attempt(const char *artifacts_dir,
			      const struct atex_ingest_attempt *a);

/* Sets the keys start, end, duration (rounded to the millisecond) and
 * system of `obj` from `a`, null for the unknown ones. -1 on ENOMEM. */
int atex_ingest_attempt_fields(json_t *obj,
			       const struct atex_ingest_attempt *a);

/* Formats a wall-clock time as attempt.json does:
 * "2026-12-06T22:45:01.123+00:00" (UTC, milliseconds truncated). */
void atex_ingest_iso_time(char out[40], const struct timespec *ts);

/* The results of one ingested test, in the order of the results file. */
struct atex_ingest {
	const char *platform; /* borrowed from the caller of ingest */
	const char *test;
	struct atex_ingest_result *results;
	size_t n;
	/* ARTIFACTS/attempt.json, read by atex_ingest_prepare*(). */
	struct atex_ingest_attempt attempt;
};

#define ATEX_INGEST_INIT                                                       \
	{                                                                      \
		NULL, NULL, NULL, 0, ATEX_INGEST_ATTEMPT_INIT                  \
	}

/*
 * Checks the names of one ingest: `platform` non-empty, no "/", neither
 * "." nor ".."; `test_name` non-empty, with no "." or ".." component and
 * something besides slashes; both valid UTF-8 (they are written as JSON
 * strings). Returns 0 or ATEX_EINVAL naming the culprit.
 */
int atex_ingest_check_names(const char *platform, const char *test_name);

/*
 * Everything an aggregator does before it takes its lock: checks the
 * names, reads ARTIFACTS/results into `in` and, when `files_dir` is not
 * NULL, places ARTIFACTS/files/ under FILES_DIR/<platform>/<test name>/
 * (hard links, copies across filesystems; existing files replaced;
 * symlinks copied as symlinks and never followed). A malformed results
 * line becomes an "error" result naming PATH:LINE (and a warning); a
 * missing results file one "error" result saying so, and files that
 * cannot be placed (a name too long for the file system, a full disk) one
 * more "error" result for the test itself (and a warning): the results
 * are never dropped for their files.
 * Returns 0, ATEX_EINVAL (names), ATEX_EIO (the results file cannot be
 * read), ATEX_ENOMEM. `in` is empty on failure.
 */
int atex_ingest_prepare(struct atex_ingest *in, const char *files_dir,
			const char *platform, const char *test_name,
			const char *artifacts_dir);

/*
 * ATEX_INGEST_STRICT: the results as Python ATEX's aggregators read them
 * (the jsonl aggregator's `strict` option): a missing results file is
 * ATEX_ENOTFOUND and a line that is not a result ATEX_EFORMAT naming
 * PATH:LINE (nothing of the test is kept), a result without status keeps
 * a NULL status, a results file without results gives no results, an
 * empty ARTIFACTS/files/ makes no directory, and files that cannot be
 * placed fail the ingest (ATEX_EIO).
 */
#define ATEX_INGEST_STRICT 1u

/*
 * Compression of the files placed (the jsonl aggregator's compress_files):
 * every regular file whose basename is not in `exclude` is written
 * compressed (gzip or xz at `level`, 0 the default) to its name +
 * `suffix` ("": the same name) instead of linked; symlinks and excluded
 * files are placed as they are.
 */
struct atex_ingest_compress {
	int compression;	    /* ATEX_COMPRESSION_GZIP or _XZ */
	unsigned int level;	    /* 0: zlib's default, xz preset 1 */
	const char *suffix;	    /* never NULL */
	const char *const *exclude; /* NULL-terminated; NULL: none */
};

/* Whether `path`'s basename is in cz->exclude. */
bool atex_ingest_excluded(const struct atex_ingest_compress *cz,
			  const char *path);

int atex_ingest_prepare_flags(struct atex_ingest *in, const char *files_dir,
			      const char *platform, const char *test_name,
			      const char *artifacts_dir, unsigned int flags,
			      const struct atex_ingest_compress *cz);

void atex_ingest_release(struct atex_ingest *in);

/* The files placement alone (part of atex_ingest_prepare). */
int atex_ingest_files(const char *files_dir, const char *platform,
		      const char *test_name, const char *artifacts_dir);

/* true when the directory `path` has no entries (or cannot be read). */
bool atex_ingest_dir_empty(const char *path);

/* ATEX_EEXISTS when `path` exists (a dangling symlink too): the
 * aggregators' exclusive start. */
int atex_ingest_check_absent(const char *path);

/* Creates `path` and its missing parents (mode 0755). ATEX_EIO naming the
 * path when one cannot be made or is not a directory. */
int atex_ingest_mkdirs(const char *path);

/*
 * Opens the output file `path` of a new run (O_WRONLY | O_APPEND) into
 * *out, emptied: a symlink there is removed and never followed, and so is
 * a regular file with other hard links (a file of our own is made in its
 * place, O_EXCL); our own regular file is truncated; a FIFO being read or
 * a device is opened as it is, a FIFO nobody reads is replaced (never a
 * blocking open). ATEX_EIO naming `path`.
 */
int atex_ingest_open_output(int *out, const char *path);

/*
 * Appends `len` bytes to the O_APPEND descriptor `fd` with one write(2)
 * (more only after a short write). `*size` is the file's length before;
 * on failure the file is cut back to it, so that a reader never sees part
 * of this write, and on success it grows by `len`. `path` names the file
 * in the ATEX_EIO message.
 */
int atex_ingest_write(int fd, const void *data, size_t len, off_t *size,
		      const char *path);

/*
 * Taking back the last ingest of a JSON Lines aggregator (multi.c keeps
 * its outputs in agreement with it). atex_jsonl_mark() records where the
 * file is; false when `a` is not a JSON Lines aggregator.
 * atex_jsonl_undo() cuts the file back to the mark when exactly one ingest
 * was written since (a compressed stream cannot go on after that: later
 * ingests are refused).
 */
struct atex_jsonl_mark {
	off_t size;
	off_t attempts_size; /* the attempts sidecar's */
	unsigned long writes;
};

struct atex_aggregator;
bool atex_jsonl_mark(struct atex_aggregator *a, struct atex_jsonl_mark *mark);
void atex_jsonl_undo(struct atex_aggregator *a,
		     const struct atex_jsonl_mark *mark);

/* Seconds since the epoch, with a fraction. */
double atex_ingest_now(void);

#endif /* ATEX_AGGREGATOR_INGEST_H */
