/*
 * control.h - private: the incremental parser of the test control channel
 * (docs/PROTOCOL.md section 1).
 *
 * The executor reads the channel as bytes arrive and feeds them here; the
 * parser never blocks and never buffers more than one control line (4096
 * bytes) or one result's JSON (json_limit bytes): the contents of files
 * that follow a result are handed to the handler in pieces, as they come,
 * to be written straight to disk.
 *
 * The parser checks everything that can be checked without the disk:
 * line syntax and length, ASCII, known words and their arguments, the
 * JSON (an object, its known keys of the right types), the `files` array
 * (objects with a string `name` and an integer `length` >= 0), every file
 * name and the result `name` (relative, no `..` component, no empty
 * component, never escaping: "a/../../x", "/etc/x", "../x" are refused),
 * `testout` (a non-empty safe name, not also in `files`).
 *
 * On the first violation, or when a handler returns an error, the channel
 * is shut down: atex_control_feed returns ATEX_EFORMAT (or the handler's
 * code) now and for every later call, and atex_control_error() says why
 * in one line that names the offending word or key. Nothing is ever
 * handed to the handler after that.
 *
 * Not thread-safe: one parser per running test, used by one thread.
 */
#ifndef ATEX_EXECUTOR_CONTROL_H
#define ATEX_EXECUTOR_CONTROL_H

#include <jansson.h>
#include <stddef.h>

/* A control line holds at most this many bytes, the '\n' included. */
#define ATEX_CONTROL_LINE_MAX 4096
/* The default bound of one result's JSON text. */
#define ATEX_CONTROL_JSON_MAX (1024 * 1024)
/* The longest exit token (atex_control_set_exit_token). */
#define ATEX_CONTROL_TOKEN_MAX 64

enum atex_control_duration_kind {
	ATEX_CONTROL_DURATION_SET,     /* "15m": new maximum, clock at 0 */
	ATEX_CONTROL_DURATION_ADD,     /* "+60": maximum moves up */
	ATEX_CONTROL_DURATION_SUB,     /* "-30": maximum moves down */
	ATEX_CONTROL_DURATION_SAVE,    /* push the remaining time */
	ATEX_CONTROL_DURATION_RESTORE, /* pop it: the new remaining time */
};

/*
 * What the parser hands on. Every callback returns 0 to go on, or a
 * negative ATEX_E* code with a message set (atex_error_set) to shut the
 * channel down with that message. Any member may be NULL (ignored).
 */
struct atex_control_handler {
	/* A result's JSON object, validated. The handler takes the
	 * reference. Its files' contents follow: file_data for each file of
	 * `files` in order (index into that array; never called for a
	 * file of length 0), then result_end. */
	int (*result_begin)(void *userdata, json_t *result);
	int (*file_data)(void *userdata, size_t index, const void *data,
			 size_t len);
	int (*result_end)(void *userdata);
	/* `exitcode CODE`: the wrapper's report of the test's exit code,
	 * 0..255. With an exit token set (atex_control_set_exit_token),
	 * only `exitcode CODE TOKEN` with that token comes here. */
	int (*exitcode)(void *userdata, int code);
	/* `duration ARG`; seconds is >= 0 (the kind gives the direction of
	 * ADD and SUB), 0 for SAVE and RESTORE. */
	int (*duration)(void *userdata, enum atex_control_duration_kind kind,
			double seconds);
	/* `disconnect`: the test is about to reboot the system. */
	int (*disconnect)(void *userdata);
	/* With an exit token set: an `exitcode` without it (or with another
	 * one), which the test wrote itself. It does not end the test; this
	 * only lets the executor say so. */
	int (*forged_exitcode)(void *userdata, int code);
};

typedef struct atex_control atex_control;

/*
 * A new parser calling `handler` (copied) with `userdata` (borrowed).
 * json_limit bounds one result's JSON text in bytes (0: the default,
 * ATEX_CONTROL_JSON_MAX). Returns 0 or ATEX_ENOMEM.
 */
int atex_control_new(atex_control **out,
		     const struct atex_control_handler *handler, void *userdata,
		     size_t json_limit);

/*
 * From now on `exitcode` counts only as `exitcode CODE TOKEN` with this
 * token (copied; at most ATEX_CONTROL_TOKEN_MAX letters and digits): the
 * wrapper knows it, the test does not, so a test cannot end itself early
 * by writing the word. Without a token (the default), `exitcode CODE` is
 * the only form. Returns 0 or ATEX_EINVAL (a bad token).
 */
int atex_control_set_exit_token(atex_control *c, const char *token);

/* Feeds `len` bytes of the stream. Returns 0, or the code that shut the
 * channel down (ATEX_EFORMAT for the stream's own faults, ATEX_ENOMEM, or
 * a handler's code), also for every call after that. */
int atex_control_feed(atex_control *c, const void *data, size_t len);

/* The end of the stream. A stream may end only between control lines:
 * inside a line, a result's JSON or file data it is an error ("EOF when
 * reading data", "EOF in a control line"). Returns 0 or the error code. */
int atex_control_finish(atex_control *c);

/* Why the channel was shut down, or NULL while it is fine. Valid until
 * the parser is freed. */
const char *atex_control_error(const atex_control *c);

/* Whether the parser is between control lines (no line, JSON or file
 * data half-read): where a stream may end cleanly. */
int atex_control_idle(const atex_control *c);

/* Frees the parser; NULL is accepted. */
void atex_control_free(atex_control *c);

#endif /* ATEX_EXECUTOR_CONTROL_H */
