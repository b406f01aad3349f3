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
 *
 * Timings: a test's own result has `time`, its attempt's duration; a
 * subtest has none (atex measures the attempt, not its parts, and the
 * test's time again on each subtest would count it several times in the
 * totals CI computes; JUnit readers take a missing time as 0). A
 * testsuite has `time`, the sum of its tests' times, `timestamp`, its
 * first test's start (UTC, without a zone, as Ant's schema has it), and
 * `hostname` when all its tests ran on one system. Each testcase's
 * system, start and exit code are <properties>.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

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
	double time;	    /* the sum of the tests' durations; < 0 none */
	double first;	    /* the earliest start (epoch) */
	bool has_first;	    /* first is known */
	const char *system; /* the one system of every test, or NULL */
	bool many_systems;  /* tests ran on several systems */
};

/* The timings of final result `res` into the counts. */
static void count_time(struct counts *c, const struct atex_result *res)
{
	double t;

	if (!res->subtest && res->duration >= 0)
		c->time = (c->time < 0 ? 0 : c->time) + res->duration;
	if (report_parse_time(res->start, &t) &&
	    (!c->has_first || t < c->first)) {
		c->first = t;
		c->has_first = true;
	}
	if (res->system && !c->system && !c->many_systems)
		c->system = res->system;
	else if (res->system && c->system && strcmp(c->system, res->system)) {
		c->system = NULL;
		c->many_systems = true;
	}
}

static void count(struct counts *c, const atex_results *r, const char *platform)
{
	memset(c, 0, sizeof(*c));
	c->time = -1;
	for (size_t i = 0; i < atex_results_count(r); i++) {
		const struct atex_result *res = atex_results_get(r, i);

		if (!res->final ||
		    (platform && strcmp(res->platform, platform)))
			continue;
		count_time(c, res);
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

/* time, timestamp and hostname of a testsuite, when known. */
static void put_suite_times(struct report_out *o, const struct counts *c)
{
	if (c->time >= 0)
		report_printf(o, " time=\"%.3f\"", c->time);
	if (c->has_first) {
		time_t t = (time_t)c->first;
		struct tm tm;
		char buf[32];

		if (gmtime_r(&t, &tm) &&
		    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm))
			report_printf(o, " timestamp=\"%s\"", buf);
	}
	if (c->system) {
		report_puts(o, " hostname=\"");
		report_esc(o, c->system, true);
		report_puts(o, "\"");
	}
}

static void put_property(struct report_out *o, const char *name,
			 const char *value)
{
	report_printf(o, "        <property name=\"%s\" value=\"", name);
	report_esc(o, value, true);
	report_puts(o, "\"/>\n");
}

/* The attempt's system, start, end and exit code, when known. */
static void put_properties(struct report_out *o, const struct atex_result *res)
{
	char code[16];

	if (!res->system && !res->start && !res->end && !res->has_exit_code)
		return;
	report_puts(o, "      <properties>\n");
	if (res->system)
		put_property(o, "system", res->system);
	if (res->start)
		put_property(o, "start", res->start);
	if (res->end)
		put_property(o, "end", res->end);
	if (res->has_exit_code) {
		snprintf(code, sizeof(code), "%d", res->exit_code);
		put_property(o, "exit_code", code);
	}
	report_puts(o, "      </properties>\n");
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
	report_puts(o, "\"");
	if (!res->subtest && res->duration >= 0)
		report_printf(o, " time=\"%.3f\"", res->duration);
	report_puts(o, ">\n");
	put_properties(o, res);
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
		put_suite_times(&o, &c);
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
