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
