/*
 * output.c - what the three renderers (html.c, junit.c, summary.c) share:
 * the order statuses are shown in, escaping, column widths, and writing a
 * report file whole.
 *
 * Escaping is one function for HTML and XML: the five characters both
 * treat specially, plus what a results file may hold that a document may
 * not. Notes come from tests and SQLite text is not checked for UTF-8, so
 * a stray byte or a control character must not make the JUnit file
 * unreadable to the CI that parses it: those become U+FFFD.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report_private.h"

const char *const report_known_statuses[] = {
	"pass", "fail", "error", "infra", "warn", "info", "skip",
};
const size_t report_n_known_statuses = ATEX_ARRAY_SIZE(report_known_statuses);

bool report_status_ok(const char *status)
{
	return !strcmp(status, "pass") || !strcmp(status, "info") ||
	       !strcmp(status, "warn") || !strcmp(status, "skip");
}

static bool vec_has(const struct atex_vec *v, const char *s)
{
	for (size_t i = 0; i < v->len; i++)
		if (!strcmp(v->items[i], s))
			return true;
	return false;
}

int report_statuses(struct atex_vec *out, const atex_results *r,
		    bool final_only, bool all_known)
{
	size_t n = atex_results_count(r);

	for (size_t k = 0; k < report_n_known_statuses; k++) {
		const char *s = report_known_statuses[k];
		bool present = all_known;

		for (size_t i = 0; i < n && !present; i++) {
			const struct atex_result *res = atex_results_get(r, i);

			present = (res->final || !final_only) &&
				  !strcmp(res->status, s);
		}
		if (present && atex_vec_push(out, (void *)s) < 0)
			return ATEX_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct atex_result *res = atex_results_get(r, i);

		if ((!res->final && final_only) || vec_has(out, res->status))
			continue;
		if (atex_vec_push(out, (void *)res->status) < 0)
			return ATEX_ENOMEM;
	}
	return 0;
}

int report_platforms(struct atex_vec *out, const atex_results *r)
{
	for (size_t i = 0; i < atex_results_count(r); i++) {
		const char *p = atex_results_get(r, i)->platform;

		if (!vec_has(out, p) && atex_vec_push(out, (void *)p) < 0)
			return ATEX_ENOMEM;
	}
	return 0;
}

/* The length of the UTF-8 sequence at s that XML may hold (1 to 4), 0
 * when it is not valid UTF-8 or is U+FFFE or U+FFFF, which are not XML
 * characters either. */
static size_t xml_utf8_len(const unsigned char *s)
{
	if (s[0] == 0xef && s[1] == 0xbf && s[2] >= 0xbe)
		return 0;
	return atex_utf8_len(s);
}

int report_escape(struct atex_buf *b, const char *s, bool attribute)
{
	const unsigned char *p = (const unsigned char *)s;
	int rc = 0;

	while (*p && rc == 0) {
		size_t n = xml_utf8_len(p);

		if (n == 0) {
			rc = atex_buf_puts(b, "\xef\xbf\xbd");
			p++;
			continue;
		}
		switch (*p) {
		case '&':
			rc = atex_buf_puts(b, "&amp;");
			break;
		case '<':
			rc = atex_buf_puts(b, "&lt;");
			break;
		case '>':
			rc = atex_buf_puts(b, "&gt;");
			break;
		case '"':
			rc = atex_buf_puts(b, "&quot;");
			break;
		case '\'':
			rc = atex_buf_puts(b, "&#39;");
			break;
		case '\t':
		case '\n':
		case '\r':
			if (attribute)
				rc = atex_buf_printf(b, "&#%d;", *p);
			else
				rc = atex_buf_putc(b, (char)*p);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				rc = atex_buf_puts(b, "\xef\xbf\xbd");
			else
				rc = atex_buf_put(b, p, n);
		}
		p += n;
	}
	return rc;
}

size_t report_width(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	return n;
}

char *report_full_name(const struct atex_result *res)
{
	if (!res->subtest)
		return atex_strdup(res->test);
	return atex_sprintf("%s/%s", res->test, res->subtest);
}

void report_puts(struct report_out *o, const char *s)
{
	if (!o->rc)
		o->rc = atex_buf_puts(&o->buf, s);
}

void report_printf(struct report_out *o, const char *fmt, ...)
{
	struct atex_buf *b = &o->buf;
	va_list ap;
	int n;

	if (o->rc)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || atex_buf_grow(b, (size_t)n + 1) < 0) {
		o->rc = atex_error_oom();
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void report_esc(struct report_out *o, const char *s, bool attribute)
{
	if (!o->rc)
		o->rc = report_escape(&o->buf, s, attribute);
}

int report_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int report_write_file(const char *path, const char *data, size_t len)
{
	char *tmp = atex_sprintf("%s.XXXXXX", path);
	int fd = -1, rc = 0;

	if (!tmp)
		return ATEX_ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot create: %s", path,
				    strerror(errno));
		goto out;
	}
	/* mkstemp makes it 0600; a report is for others to read. */
	if (fchmod(fd, 0644) < 0 || report_write_all(fd, data, len) < 0) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot write: %s", path,
				    strerror(errno));
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc < 0) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot write: %s", path,
				    strerror(errno));
		goto out;
	}
	if (rename(tmp, path) < 0)
		rc = atex_error_set(ATEX_EIO,
				    "%s: cannot rename %s over it: %s", path,
				    tmp, strerror(errno));
out:
	if (rc && tmp)
		unlink(tmp);
	if (fd >= 0)
		close(fd);
	free(tmp);
	return rc;
}
