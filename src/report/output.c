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
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

bool report_parse_time(const char *iso, double *out)
{
	/* d: a digit; anything else: itself. */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	const char *p = iso;
	int v[6] = {0}, k = 0;
	double frac = 0, scale = 0.1;
	long offset = 0;
	struct tm tm = {0};
	time_t t;

	if (!iso || strlen(iso) < sizeof(shape) - 1)
		return false;
	for (size_t i = 0; i < sizeof(shape) - 1; i++, p++) {
		if (shape[i] != 'd' && *p != shape[i])
			return false;
		if (shape[i] == 'd' && !isdigit((unsigned char)*p))
			return false;
		if (shape[i] == 'd')
			v[k] = v[k] * 10 + (*p - '0');
		else
			k++;
	}
	if (*p == '.' && isdigit((unsigned char)p[1]))
		for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
			frac += (*p - '0') * scale;
	if (*p == 'Z') {
		p++;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
		   isdigit((unsigned char)p[2]) && p[3] == ':' &&
		   isdigit((unsigned char)p[4]) &&
		   isdigit((unsigned char)p[5])) {
		offset = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
			 ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
		offset = *p == '-' ? -offset : offset;
		p += 6;
	}
	if (*p || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return false;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*out = (double)t - (double)offset + frac;
	return true;
}

const char *report_format_duration(char *buf, size_t size, double seconds)
{
	long s = seconds >= 0 && seconds <= REPORT_MAX_DURATION
			 ? (long)(seconds + 0.5)
			 : 0;

	if (seconds < 0 || seconds > REPORT_MAX_DURATION)
		snprintf(buf, size, "?");
	else if (seconds < 0.995)
		snprintf(buf, size, "%.2fs", seconds);
	else if (seconds < 59.95)
		snprintf(buf, size, "%.1fs", seconds);
	else if (s < 3600)
		snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, size, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60,
			 s % 60);
	return buf;
}

char *report_relative_path(const char *base, const char *target)
{
	struct atex_buf b = ATEX_BUF_INIT;
	const char *pb = base, *pt = target;
	int rc = 0;

	/* Past the components both share. */
	for (;;) {
		size_t lb, lt;

		while (*pb == '/')
			pb++;
		while (*pt == '/')
			pt++;
		lb = strcspn(pb, "/");
		lt = strcspn(pt, "/");
		if (lb == 0 || lb != lt || memcmp(pb, pt, lb))
			break;
		pb += lb;
		pt += lt;
	}
	for (; !rc && *pb; pb += strcspn(pb, "/")) {
		while (*pb == '/')
			pb++;
		if (*pb)
			rc = atex_buf_puts(&b, "../");
	}
	while (*pt == '/')
		pt++;
	if (!rc)
		rc = atex_buf_puts(&b, *pt || b.len ? pt : ".");
	if (rc) {
		atex_buf_free(&b);
		return NULL;
	}
	if (b.len > 1 && b.ptr[b.len - 1] == '/')
		b.ptr[--b.len] = '\0';
	return atex_buf_detach(&b);
}

int report_earlier_attempts(const atex_results *r, size_t *n)
{
	json_t *seen = json_object();
	int rc = seen ? 0 : ATEX_ENOMEM;

	*n = 0;
	for (size_t i = 0; !rc && i < atex_results_count(r); i++) {
		const struct atex_result *res = atex_results_get(r, i);
		char *key;

		if (res->final)
			continue;
		key = atex_sprintf("%s\xff%s\xff%u", res->platform, res->test,
				   res->attempt);
		if (!key) {
			rc = ATEX_ENOMEM;
		} else if (!json_object_get(seen, key)) {
			if (json_object_set_new_nocheck(seen, key,
							json_true()) < 0)
				rc = ATEX_ENOMEM;
			else
				(*n)++;
		}
		free(key);
	}
	json_decref(seen);
	return rc;
}

int report_results_in_dir(char **out, const char *dir)
{
	static const char *const names[] = {"results.jsonl", "results.sqlite"};

	*out = NULL;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(names); i++) {
		char *path = atex_path_join(dir, names[i]);

		if (!path)
			return ATEX_ENOMEM;
		if (atex_path_exists(path) && !atex_path_is_dir(path)) {
			*out = path;
			return 0;
		}
		free(path);
	}
	return atex_error_set(ATEX_ENOTFOUND,
			      "%s: a folder without results.jsonl or "
			      "results.sqlite (not a results folder of atex "
			      "run)",
			      dir);
}

char *report_real_path(const char *path)
{
	char *real = realpath(path, NULL);

	return real ? real : atex_path_abspath(path);
}

double report_test_time(const atex_results *r, size_t *n)
{
	json_t *seen = json_object();
	double sum = 0;

	*n = 0;
	for (size_t i = 0; seen && i < atex_results_count(r); i++) {
		const struct atex_result *res = atex_results_get(r, i);
		char *key;

		if (res->duration < 0)
			continue;
		/* Every result of one attempt carries its timings. */
		key = atex_sprintf("%s\xff%s\xff%u\xff%d", res->platform,
				   res->test, res->attempt, res->final);
		if (!key)
			break;
		if (!json_object_get(seen, key)) {
			if (json_object_set_new_nocheck(seen, key,
							json_true()) < 0) {
				free(key);
				break;
			}
			sum += res->duration;
			(*n)++;
		}
		free(key);
	}
	json_decref(seen);
	return *n ? sum : -1;
}
