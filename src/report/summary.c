/*
 * summary.c - the final results for a terminal (atex/report.h): a table
 * of counts, platforms as rows and statuses as columns, then the results
 * that fail the run, one a line, with their notes, then the slowest tests
 * and the run's times when the results have timings. Every text from the
 * results is shown escaped (atex_text_escape): one result, one line.
 *
 * Plain text with fixed-width columns, no colours: it goes to CI logs as
 * often as to a terminal, and a person greps it. The known statuses are
 * always columns, in the same order, so that summaries of two runs line
 * up; custom statuses follow. The text is built whole and written with
 * write(2), so it does not mix with stdio buffers of the caller.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_private.h"

/* How `s` is shown: escaped (atex_text_escape), since statuses,
 * platforms, names and notes come from tests and a newline or an escape
 * sequence in them must not forge a line or drive the terminal. The
 * result is in `tmp` (NULL on ENOMEM). */
static const char *shown(struct atex_buf *tmp, const char *s)
{
	atex_buf_clear(tmp);
	if (atex_buf_put_printable(tmp, s) < 0)
		return NULL;
	return atex_buf_cstr(tmp);
}

/* The width of `s` as shown, in characters. */
static size_t shown_width(const char *s)
{
	struct atex_buf tmp = ATEX_BUF_INIT;
	const char *t = shown(&tmp, s);
	size_t w = t ? report_width(t) : strlen(s);

	atex_buf_free(&tmp);
	return w;
}

/* `s`, escaped, padded with spaces to `width` characters. */
static void put_padded(struct report_out *o, const char *s, size_t width,
		       bool right)
{
	struct atex_buf tmp = ATEX_BUF_INIT;
	const char *t = shown(&tmp, s);
	size_t w;

	if (!t) {
		o->rc = ATEX_ENOMEM;
		return;
	}
	w = report_width(t);
	if (right)
		report_printf(o, "%*s", (int)(width > w ? width - w : 0), "");
	report_puts(o, t);
	if (!right)
		report_printf(o, "%*s", (int)(width > w ? width - w : 0), "");
	atex_buf_free(&tmp);
}

static size_t count(const atex_results *r, const char *platform,
		    const char *status)
{
	size_t n = 0;

	for (size_t i = 0; i < atex_results_count(r); i++) {
		const struct atex_result *res = atex_results_get(r, i);

		n += res->final &&
		     (!platform || !strcmp(res->platform, platform)) &&
		     (!status || !strcmp(res->status, status));
	}
	return n;
}

static void put_table_row(struct report_out *o, const atex_results *r,
			  const char *label, const char *platform,
			  const struct atex_vec *statuses, size_t label_width)
{
	put_padded(o, label, label_width, false);
	for (size_t s = 0; s < statuses->len; s++) {
		const char *status = statuses->items[s];
		size_t w = shown_width(status);

		report_printf(o, "  %*zu", (int)(w < 5 ? 5 : w),
			      count(r, platform, status));
	}
	report_printf(o, "  %5zu\n", count(r, platform, NULL));
}

static void put_table(struct report_out *o, const atex_results *r,
		      const struct atex_vec *statuses,
		      const struct atex_vec *platforms)
{
	size_t width = strlen("PLATFORM");

	for (size_t p = 0; p < platforms->len; p++)
		if (shown_width(platforms->items[p]) > width)
			width = shown_width(platforms->items[p]);
	put_padded(o, "PLATFORM", width, false);
	for (size_t s = 0; s < statuses->len; s++) {
		report_puts(o, "  ");
		put_padded(o, statuses->items[s], 5, true);
	}
	report_puts(o, "  total\n");
	for (size_t p = 0; p < platforms->len; p++)
		put_table_row(o, r, platforms->items[p], platforms->items[p],
			      statuses, width);
	if (platforms->len > 1)
		put_table_row(o, r, "total", NULL, statuses, width);
}

static void put_failures(struct report_out *o, const atex_results *r,
			 bool with_platform)
{
	size_t w_status = 0, w_platform = 0, w_name = 0, n = 0;
	size_t total = atex_results_count(r);

	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < total && !o->rc; i++) {
			const struct atex_result *res = atex_results_get(r, i);
			char *name;

			if (!res->final || report_status_ok(res->status))
				continue;
			name = report_full_name(res);
			if (!name) {
				o->rc = ATEX_ENOMEM;
				break;
			}
			if (pass == 0) {
				n++;
				if (shown_width(res->status) > w_status)
					w_status = shown_width(res->status);
				if (shown_width(res->platform) > w_platform)
					w_platform = shown_width(res->platform);
				if (shown_width(name) > w_name)
					w_name = shown_width(name);
			} else {
				put_padded(o, res->status, w_status, false);
				if (with_platform) {
					report_puts(o, "  ");
					put_padded(o, res->platform, w_platform,
						   false);
				}
				report_puts(o, "  ");
				put_padded(o, name, res->note ? w_name : 0,
					   false);
				if (res->note) {
					report_puts(o, "  ");
					put_padded(o, res->note, 0, false);
				}
				report_puts(o, "\n");
			}
			free(name);
		}
		if (pass == 0)
			report_puts(o,
				    n ? "\nFailures:\n" : "\nNo failures.\n");
	}
}

/* How many of the slowest tests the summary lists. */
#define SLOWEST 10

/* Longest first; the file's order breaks ties. */
static int cmp_slowest(const void *a, const void *b)
{
	const struct atex_result *x = *(const struct atex_result *const *)a;
	const struct atex_result *y = *(const struct atex_result *const *)b;

	if (x->duration != y->duration)
		return x->duration > y->duration ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* The final results with a duration, one per platform and test (its own
 * result, else its first), slowest first. */
static int slowest(struct atex_vec *out, const atex_results *r)
{
	json_t *index = json_object();
	int rc = index ? 0 : atex_error_oom();

	for (size_t i = 0; i < atex_results_count(r) && !rc; i++) {
		const struct atex_result *res = atex_results_get(r, i);
		char *key;
		json_t *at;

		if (!res->final || res->duration < 0)
			continue;
		key = atex_sprintf("%s\xff%s", res->platform, res->test);
		if (!key) {
			rc = ATEX_ENOMEM;
			break;
		}
		at = json_object_get(index, key);
		if (at) {
			const struct atex_result **o =
				(const struct atex_result **)&out
					->items[json_integer_value(at)];

			if ((*o)->subtest && !res->subtest)
				*o = res;
		} else if (atex_vec_push(out, (void *)res) < 0 ||
			   json_object_set_new_nocheck(
				   index, key,
				   json_integer((json_int_t)out->len - 1)) <
				   0) {
			rc = atex_error_oom();
		}
		free(key);
	}
	json_decref(index);
	if (!rc)
		atex_vec_sort(out, cmp_slowest);
	return rc;
}

/* "Slowest tests:" (up to SLOWEST) and the wall and test times. */
static void put_times(struct report_out *o, const atex_results *r,
		      bool with_platform)
{
	struct atex_vec v = ATEX_VEC_INIT;
	double wall = atex_results_wall_time(r), sum;
	size_t n, w_name = 0, w_platform = 0, w_time = 0, shown_n;
	char buf[32];

	sum = report_test_time(r, &n);
	o->rc = o->rc ? o->rc : slowest(&v, r);
	shown_n = v.len < SLOWEST ? v.len : SLOWEST;
	for (size_t i = 0; i < shown_n; i++) {
		const struct atex_result *res = v.items[i];

		if (shown_width(res->test) > w_name)
			w_name = shown_width(res->test);
		if (shown_width(res->platform) > w_platform)
			w_platform = shown_width(res->platform);
		report_format_duration(buf, sizeof(buf), res->duration);
		if (strlen(buf) > w_time)
			w_time = strlen(buf);
	}
	if (shown_n)
		report_printf(o, "\nSlowest tests:\n");
	for (size_t i = 0; i < shown_n && !o->rc; i++) {
		const struct atex_result *res = v.items[i];

		put_padded(
			o,
			report_format_duration(buf, sizeof(buf), res->duration),
			w_time, true);
		if (with_platform) {
			report_puts(o, "  ");
			put_padded(o, res->platform, w_platform, false);
		}
		report_puts(o, "  ");
		put_padded(o, res->test, res->system ? w_name : 0, false);
		if (res->system) {
			report_puts(o, "  ");
			put_padded(o, res->system, 0, false);
		}
		report_puts(o, "\n");
	}
	if (wall >= 0 || sum >= 0)
		report_puts(o, "\n");
	if (wall >= 0)
		report_printf(o, "Wall time %s",
			      report_format_duration(buf, sizeof(buf), wall));
	if (sum >= 0)
		report_printf(o, "%s %s (%zu attempt%s)",
			      wall >= 0 ? ", test time" : "Test time",
			      report_format_duration(buf, sizeof(buf), sum), n,
			      n == 1 ? "" : "s");
	if (wall >= 0 || sum >= 0)
		report_puts(o, "\n");
	atex_vec_free(&v);
}

int atex_report_summary(const atex_results *r, int fd)
{
	struct report_out o = REPORT_OUT_INIT;
	struct atex_vec statuses = ATEX_VEC_INIT, platforms = ATEX_VEC_INIT;
	size_t earlier;
	int rc;

	if (!r)
		return atex_error_set(ATEX_EINVAL,
				      "report: summary: the results are NULL");
	o.rc = report_earlier_attempts(r, &earlier);
	if (!o.rc)
		o.rc = report_statuses(&statuses, r, true, true);
	if (!o.rc)
		o.rc = report_platforms(&platforms, r);
	if (!o.rc)
		put_table(&o, r, &statuses, &platforms);
	if (earlier)
		report_printf(&o,
			      "(and %zu earlier attempt%s of re-run tests, not "
			      "counted)\n",
			      earlier, earlier == 1 ? "" : "s");
	if (!o.rc)
		put_failures(&o, r, platforms.len > 1);
	if (!o.rc)
		put_times(&o, r, platforms.len > 1);
	rc = o.rc;
	if (!rc && report_write_all(fd, o.buf.ptr, o.buf.len) < 0)
		rc = atex_error_set(ATEX_EIO,
				    "cannot write the summary to descriptor "
				    "%d: %s",
				    fd, strerror(errno));
	atex_vec_free(&statuses);
	atex_vec_free(&platforms);
	atex_buf_free(&o.buf);
	return rc;
}
