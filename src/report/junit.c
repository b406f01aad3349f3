/*
 * junit.c - the final results as JUnit XML (atex/report.h), the dialect
 * GitLab and Jenkins both read: <testsuites> with the totals, one
 * <testsuite> per platform, one <testcase> per final result.
 *
 * Earlier attempts are left out: CI shows a verdict per test, and a test
 * that passed on its re-run passed. A custom status fails a run (as in
 * atex_results_passed), so it is a <failure> whose type names it; warn
 * and info pass, their note going to <system-out> so it is not lost. The
 * files are listed in <system-out> as paths, which GitLab turns into
 * links when they are artifacts of the job.
 */
#include <string.h>

#include "report/report_private.h"

enum kind {
	KIND_PASS,
	KIND_FAILURE,
	KIND_ERROR,
	KIND_SKIPPED,
};

static enum kind kind_of(const char *status)
{
	if (!strcmp(status, "error") || !strcmp(status, "infra"))
		return KIND_ERROR;
	if (!strcmp(status, "skip"))
		return KIND_SKIPPED;
	if (report_status_ok(status))
		return KIND_PASS;
	return KIND_FAILURE;
}

struct counts {
	size_t tests, failures, errors, skipped;
};

static void count(struct counts *c, const atex_results *r, const char *platform)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < atex_results_count(r); i++) {
		const struct atex_result *res = atex_results_get(r, i);

		if (!res->final ||
		    (platform && strcmp(res->platform, platform)))
			continue;
		c->tests++;
		switch (kind_of(res->status)) {
		case KIND_FAILURE:
			c->failures++;
			break;
		case KIND_ERROR:
			c->errors++;
			break;
		case KIND_SKIPPED:
			c->skipped++;
			break;
		case KIND_PASS:
			break;
		}
	}
}

static void put_counts(struct report_out *o, const struct counts *c)
{
	report_printf(o,
		      " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
		      "skipped=\"%zu\"",
		      c->tests, c->failures, c->errors, c->skipped);
}

static void put_testcase(struct report_out *o, const struct atex_result *res)
{
	static const char *const elements[] = {
		[KIND_FAILURE] = "failure",
		[KIND_ERROR] = "error",
		[KIND_SKIPPED] = "skipped",
	};
	enum kind kind = kind_of(res->status);
	const char *note = res->note ? res->note : "";

	report_puts(o, "    <testcase classname=\"");
	report_esc(o, res->test, true);
	report_puts(o, "\" name=\"");
	report_esc(o, res->subtest ? res->subtest : res->test, true);
	report_puts(o, "\">\n");
	if (kind != KIND_PASS) {
		report_printf(o, "      <%s message=\"", elements[kind]);
		report_esc(o, note, true);
		report_puts(o, "\"");
		if (kind != KIND_SKIPPED) {
			report_puts(o, " type=\"");
			report_esc(o, res->status, true);
			report_puts(o, "\"");
		}
		if (*note) {
			report_puts(o, ">");
			report_esc(o, note, false);
			report_printf(o, "</%s>\n", elements[kind]);
		} else {
			report_puts(o, "/>\n");
		}
	}
	if ((kind == KIND_PASS && res->note) || res->n_files > 0) {
		report_puts(o, "      <system-out>");
		if (kind == KIND_PASS && res->note) {
			report_esc(o, res->status, false);
			report_puts(o, ": ");
			report_esc(o, res->note, false);
			report_puts(o, "\n");
		}
		for (size_t i = 0; i < res->n_files; i++) {
			report_esc(o, res->files_dir, false);
			report_puts(o, "/");
			report_esc(o, res->files[i], false);
			report_puts(o, "\n");
		}
		report_puts(o, "</system-out>\n");
	}
	report_puts(o, "    </testcase>\n");
}

int atex_report_junit(const atex_results *r, const char *path)
{
	struct report_out o = REPORT_OUT_INIT;
	struct atex_vec platforms = ATEX_VEC_INIT;
	struct counts c;
	int rc;

	if (!r || !path)
		return atex_error_set(ATEX_EINVAL, "report: junit: %s is NULL",
				      r ? "path" : "the results");
	o.rc = report_platforms(&platforms, r);
	count(&c, r, NULL);
	report_puts(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<testsuites name=\"atex\"");
	put_counts(&o, &c);
	report_puts(&o, ">\n");
	for (size_t p = 0; p < platforms.len; p++) {
		const char *platform = platforms.items[p];

		count(&c, r, platform);
		/* Every result of a platform may be an earlier attempt. */
		if (c.tests == 0)
			continue;
		report_puts(&o, "  <testsuite name=\"");
		report_esc(&o, platform, true);
		report_puts(&o, "\"");
		put_counts(&o, &c);
		report_puts(&o, ">\n");
		for (size_t i = 0; i < atex_results_count(r); i++) {
			const struct atex_result *res = atex_results_get(r, i);

			if (res->final && !strcmp(res->platform, platform))
				put_testcase(&o, res);
		}
		report_puts(&o, "  </testsuite>\n");
	}
	report_puts(&o, "</testsuites>\n");
	rc = o.rc;
	if (!rc)
		rc = report_write_file(path, o.buf.ptr, o.buf.len);
	atex_vec_free(&platforms);
	atex_buf_free(&o.buf);
	return rc;
}
