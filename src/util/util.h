/*
 * util.h - private helpers shared by every block: error recording, logging,
 * growable string buffers, pointer vectors and path helpers.
 *
 * Nothing here is public API; the public face of errors and logging is
 * include/atex/common.h.
 */
#ifndef ATEX_UTIL_H
#define ATEX_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "atex/common.h"

#define ATEX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ATEX_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Records `code` and a formatted message as the thread's last error and
 * returns `code`, so callers can write `return atex_error_set(...)`. */
int atex_error_set(int code, const char *fmt, ...) ATEX_PRINTF(2, 3);
int atex_error_setv(int code, const char *fmt, va_list ap);

/* Prefixes the thread's current message with "prefix: " (keeps the code);
 * returns the current code. Used to add context while unwinding. */
int atex_error_prefix(const char *fmt, ...) ATEX_PRINTF(1, 2);

/* Records ATEX_ENOMEM with a fixed message and returns it. */
int atex_error_oom(void);

void atex_log(int level, const char *component, const char *fmt, ...)
	ATEX_PRINTF(3, 4);
#define atex_debug(comp, ...) \
	do { \
		if (atex_log_get_level() >= ATEX_LOG_DEBUG) \
			atex_log(ATEX_LOG_DEBUG, comp, __VA_ARGS__); \
	} while (0)

/* malloc wrappers that abort on failure are deliberately absent: callers
 * return ATEX_ENOMEM. These record the error for the caller. */
void *atex_malloc(size_t size);
void *atex_calloc(size_t n, size_t size);
char *atex_strdup(const char *s);
char *atex_strndup(const char *s, size_t n);
char *atex_sprintf(const char *fmt, ...) ATEX_PRINTF(1, 2);

/* A growable, always NUL-terminated byte buffer. Zero-initialise
 * (ATEX_BUF_INIT) before use. On allocation failure the functions return
 * ATEX_ENOMEM and leave the contents as they were. */
struct atex_buf {
	char *ptr;
	size_t len;
	size_t cap;
};
#define ATEX_BUF_INIT {NULL, 0, 0}

int atex_buf_grow(struct atex_buf *b, size_t extra);
int atex_buf_put(struct atex_buf *b, const void *data, size_t len);
int atex_buf_puts(struct atex_buf *b, const char *s);
int atex_buf_putc(struct atex_buf *b, char c);
int atex_buf_printf(struct atex_buf *b, const char *fmt, ...) ATEX_PRINTF(2, 3);
void atex_buf_clear(struct atex_buf *b);
/* The length of the valid UTF-8 sequence at s (1 to 4; s is
 * NUL-terminated), 0 when it is not one: overlong forms, surrogates and
 * code points past U+10FFFF are not valid. */
size_t atex_utf8_len(const unsigned char *s);
/* Appends `text` with its control characters and invalid UTF-8 escaped
 * (\n, \t, \r, \xHH, a backslash as \\; escape.c), to show a name to
 * a person on one line. NULL appends nothing. 0 or ATEX_ENOMEM. */
int atex_buf_put_printable(struct atex_buf *b, const char *text);
/* Returns the string (never NULL: "" for an empty buffer, caller frees)
 * and resets the buffer; NULL only on allocation failure. */
char *atex_buf_detach(struct atex_buf *b);
void atex_buf_free(struct atex_buf *b);
/* The contents as a C string ("" when empty; owned by the buffer). */
static inline const char *atex_buf_cstr(const struct atex_buf *b)
{
	return b->ptr ? b->ptr : "";
}

/* A growable array of pointers. Zero-initialise (ATEX_VEC_INIT). The vector
 * does not own its items unless the caller says so (atex_vec_free_all). */
struct atex_vec {
	void **items;
	size_t len;
	size_t cap;
};
#define ATEX_VEC_INIT {NULL, 0, 0}

int atex_vec_push(struct atex_vec *v, void *item);
void *atex_vec_pop(struct atex_vec *v);
void atex_vec_sort(struct atex_vec *v, int (*cmp)(const void *a, const void *b));
/* Pushes a copy of each string of a NULL-terminated list (NULL: none);
 * the vector owns them (free with atex_vec_free_all(v, free)). Returns 0
 * or ATEX_ENOMEM. */
int atex_vec_push_copies(struct atex_vec *v, const char *const *list);
/* Frees the array only. */
void atex_vec_free(struct atex_vec *v);
/* Calls free_fn on each item, then frees the array. */
void atex_vec_free_all(struct atex_vec *v, void (*free_fn)(void *));
/* qsort comparator for a vector of C strings (byte order). */
int atex_vec_cmp_str(const void *a, const void *b);

/* Paths. All returned strings are malloc'ed; NULL means ATEX_ENOMEM. */
char *atex_path_join(const char *a, const char *b);
/* The part after the last '/' (pointer into `path`). */
const char *atex_path_basename(const char *path);
bool atex_path_is_dir(const char *path);
bool atex_path_exists(const char *path);
/* Absolute, normalised (no ".", "..", "//"), without resolving symlinks,
 * like Python's os.path.abspath. */
char *atex_path_abspath(const char *path);
/* Whether a relative path stays inside its root, read lexically (a ".."
 * never climbs above where it starts). */
bool atex_path_stays_inside(const char *rel);
/* A plan's Ansible playbook entry (prepare/finish `how: ansible`) as tmt
 * reads it: NULL for an http(s) URL, else the path relative to the tree
 * root (a leading file:// and slashes dropped; a pointer into raw). */
const char *atex_playbook_relative(const char *raw);
/* Whether an entry is a collection's playbook: namespace.collection.name,
 * tmt's pattern matched whole (tmt matches only the start, which makes
 * "roles.v2.setup.yml" one). */
bool atex_playbook_is_collection(const char *s);
/* Reads a whole file into a NUL-terminated buffer. ATEX_EIO on failure
 * with a message naming the path. */
int atex_file_read(char **out, size_t *len, const char *path);

/* Checks an operations table's version (1 up to `known`) for the generic
 * calls of a block; ATEX_EINVAL naming the call and the block otherwise. */
int atex_check_ops_version(unsigned int version, unsigned int known,
			   const char *block, const char *call);

/* The value of a hexadecimal digit, or -1. */
static inline int atex_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Milliseconds on the monotonic clock (for durations, not dates). */
double atex_monotonic_ms(void);

/* Whether `iso` is a time as attempt.json has them:
 * YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM|-HH:MM] (no zone: UTC), under
 * 40 bytes. */
bool atex_iso_time_ok(const char *iso);

/* The number of CPUs online, between 1 and 8. */
size_t atex_cpu_count(void);

/* Runs fn(arg) on n threads at once, the calling thread being one of them,
 * and returns when all are done. Fewer run if threads cannot be started:
 * fn must share the work out through `arg` so that all of it gets done. */
void atex_run_parallel(size_t n, void (*fn)(void *arg), void *arg);

/* Opens the SQLite database `path` read-only for reading, also where it
 * cannot be written (a WAL database in a read-only folder is opened
 * immutable: src/util/sqlite.c). Never writes. Returns 0, ATEX_EIO
 * (named by path), ATEX_ENOMEM. */
struct sqlite3;
int atex_sqlite_open_read(struct sqlite3 **out, const char *path);

/* Private temporary directories (tmpdir.c). atex_tmpdir_make first sweeps
 * TMP/PREFIX-XXXXXX directories of the current user whose owner is gone
 * (its flock on DIR/lock is free; no lock file: a day old), calling
 * before(dir, arg) on each before removing it (NULL: nothing), then
 * makes TMP/PREFIX-XXXXXX (0700) with DIR/lock locked on *lock_fd
 * (O_CLOEXEC): the caller keeps that open for the directory's whole life,
 * removes the directory (atex_tmpdir_remove) and then closes it. *out is
 * the caller's to free. 0, ATEX_ENOMEM or ATEX_EIO. */
int atex_tmpdir_make(char **out, int *lock_fd, const char *tmp,
		     const char *prefix,
		     void (*before)(const char *dir, void *arg), void *arg);
/* The sweep alone; returns how many directories it removed. */
int atex_tmpdir_sweep(const char *tmp, const char *prefix,
		      void (*before)(const char *dir, void *arg), void *arg);
/* Removes a directory holding no subdirectories, best effort. */
void atex_tmpdir_remove(const char *dir);

#endif /* ATEX_UTIL_H */
