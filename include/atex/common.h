/*
 * atex/common.h - error codes, the thread-local last error, logging and
 * the small value helpers every block shares.
 *
 * Conventions for the whole public API (see DESIGN.md):
 *  - functions return int: 0 on success, a negative ATEX_E* code on failure;
 *    the human message for the calling thread is atex_error_last();
 *  - out-parameters come first, the object second;
 *  - every *_new has a *_free that accepts NULL.
 */
#ifndef ATEX_COMMON_H
#define ATEX_COMMON_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATEX_VERSION_MAJOR 0
#define ATEX_VERSION_MINOR 1
#define ATEX_VERSION_PATCH 0
#define ATEX_VERSION_STRING "0.1.0"

/* Error codes. Stable: callers branch on them. */
enum atex_error_code {
	ATEX_OK = 0,
	ATEX_ERROR = -1,      /* generic failure */
	ATEX_ENOMEM = -2,     /* out of memory */
	ATEX_EINVAL = -3,     /* invalid argument or usage */
	ATEX_ENOTFOUND = -4,  /* an object (file, node, key) does not exist */
	ATEX_EEXISTS = -5,    /* an object already exists */
	ATEX_EIO = -6,        /* an I/O or operating system error */
	ATEX_EFORMAT = -7,    /* malformed input (YAML, metadata layout) */
	ATEX_EMERGE = -8,     /* fmf: a merge suffix applied to a wrong type */
	ATEX_ERULE = -9,      /* fmf: a context rule or filter does not parse */
	ATEX_ETIMEDOUT = -10, /* a wait ran out of time */
	ATEX_ECANCELED = -11, /* aborted or canceled from another thread */
	ATEX_EEXTERNAL = -12, /* an external program (git, ssh...) failed */
	ATEX_EINFRA = -13,    /* the system or its connection failed under a
			       * test: not the test's fault */
};

/*
 * The calling thread's last error message; never NULL (an empty string when
 * no error was recorded). The pointer stays valid until the next atex call
 * made by the same thread. Thread-safe.
 */
const char *atex_error_last(void);

/* The calling thread's last error code (ATEX_OK when none). Thread-safe. */
int atex_error_last_code(void);

/* Forgets the calling thread's last error. Thread-safe. */
void atex_error_clear(void);

/*
 * Records `code` and `message` (copied; NULL: empty) as the calling
 * thread's last error and returns `code`: for a program's own aggregator,
 * provisioner or executor, whose ops report failures the way atex's own
 * do (`return atex_error_set_message(ATEX_EIO, "disk full");`). A
 * successful call does not clear the last error. Thread-safe.
 */
int atex_error_set_message(int code, const char *message);

/* A short static description of an error code ("invalid argument"). */
const char *atex_error_name(int code);

/* Logging. Levels grow in verbosity. */
enum atex_log_level {
	ATEX_LOG_ERROR = 0,
	ATEX_LOG_WARNING = 1,
	ATEX_LOG_INFO = 2,
	ATEX_LOG_DEBUG = 3,
};

/*
 * A log handler. `component` names the block ("fmf", "ssh"...), `message`
 * is one line without a trailing newline, its control characters escaped
 * as atex_text_escape does (names in it come from tests and metadata).
 * Both are valid only during the call. Handlers may be called from any atex thread at once.
 */
typedef void (*atex_log_handler)(int level, const char *component,
				 const char *message, void *userdata);

/*
 * Replaces the process-wide log handler (NULL restores the default, which
 * writes "atex[component] LEVEL: message" to stderr). Not thread-safe with
 * respect to concurrent logging: call it at program start.
 */
void atex_log_set_handler(atex_log_handler handler, void *userdata);

/*
 * Sets the maximum level passed to the handler. The default is
 * ATEX_LOG_WARNING, or what the ATEX_LOG environment variable names
 * ("error", "warning", "info", "debug") when it is set.
 */
void atex_log_set_level(int level);

/* The current maximum level. */
int atex_log_get_level(void);

/*
 * `text` made safe to print for a person, on a terminal or in a log: C0
 * and C1 control characters (newline, ESC, CSI...), DEL and bytes that
 * are not valid UTF-8 become \n, \t, \r or \xHH, and a backslash
 * becomes \\ (so the two characters '\' 'n' and a newline never look
 * alike); everything else is kept. A program's own log handler or
 * output uses it to show test, host and file names the way atex does. *out is a new string the caller
 * frees (NULL text: ""). Returns 0, ATEX_EINVAL (out NULL) or
 * ATEX_ENOMEM. Thread-safe.
 */
int atex_text_escape(char **out, const char *text);

/*
 * Parses a test `duration` into seconds exactly as tmt does
 * (tmt.utils.duration_to_seconds). The text is a sequence of terms,
 * optionally separated by whitespace:
 *  - a whole number with an optional unit s, m, h or d (none means
 *    seconds): "5", "30s", "5 m", "1h 30m", "1h30m"; the numbers are
 *    summed. A fraction ("1.5h") is invalid, as in tmt;
 *  - a multiplier "*FACTOR", where FACTOR may have a fraction and takes no
 *    unit: "5m*2", "1h *1.5". Multipliers may stand anywhere, also first
 *    ("*2 5m"), and all of them multiply the sum ("1h *2 *1.5" is 3h).
 * The result is rounded up to a whole second ("1s *3.3" is 4). Leading
 * whitespace is invalid, trailing whitespace is not.
 *
 * A text whose numbers sum to zero ("*2", "0") gives 0. When tmt runs a
 * test it then applies the multipliers to its default duration, 5m: to do
 * the same, parse "5m " followed by the text again when the result is 0.
 *
 * Returns 0, or ATEX_EINVAL with a message quoting the text on bad syntax
 * ("", "abc", "5x", "-5", "*2m", "1.5h"); *seconds is then unchanged.
 */
int atex_duration_parse(double *seconds, const char *text);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_COMMON_H */
