/*
 * tmt.c - the final results as tmt's results.yaml (atex/report.h), so
 * that what reads tmt's results (Testing Farm's viewer, tmt's own report
 * plugins, a `result: custom` test) reads an atex run.
 *
 * How it is built, and why:
 *
 *  - One entry per platform and test, in the order of the results: tmt
 *    has one result per test, and a test's subtests are its `subresult`
 *    list (tmt's tmt-report-result and BeakerLib phases go there too).
 *    The entry's outcome is the test's own result's; a test without one
 *    takes the worst of its subtests, in tmt's order (error, fail, warn,
 *    pass, info, skip, pending). Earlier attempts are left out: tmt keeps
 *    the last run of a test.
 *  - Keys and their order are tmt's (tmt/result.py, Result.to_serialized)
 *    minus what atex does not know or tmt's schema refuses: `fmf-id`
 *    (not in tmt/schemas/results.yaml, whose entries allow no other
 *    keys; atex results do not keep it), `ids` and `web-link` (atex does
 *    not keep the test's metadata in its results), `original-result`
 *    (tmt's interpretation of the outcome; atex's is already applied).
 *    Subresults get no times: atex measures an attempt, not its parts.
 *  - atex's statuses that tmt has not: infra is tmt's error, custom ones
 *    fail (atex_results_passed fails on them); a note says which atex
 *    status it was, so nothing is lost.
 *  - Every string is a double-quoted YAML scalar with everything YAML
 *    cannot hold as is escaped: a test name or note with a colon, a
 *    newline or a stray byte must not make the file unreadable, and
 *    "10:00:00" must stay a string for YAML 1.1 readers too.
 *  - Paths (`log`, `data-path`) are relative to the file's real folder
 *    (symlinks resolved: ".." climbs where the kernel does), as
 *    tmt's are relative to its execute step's folder.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_private.h"

/* The final results of one platform and test. */
struct entry {
	const struct atex_result *own; /* NULL: only subtests */
	struct atex_vec subs;	       /* const struct atex_result * */
};

static void entry_free(void *p)
{
	struct entry *e = p;

	if (!e)
		return;
	atex_vec_free(&e->subs);
	free(e);
}

/* The entries of the final results, in order (*out owns them). */
static int collect(struct atex_vec *out, const atex_results *r)
{
	json_t *index = json_object();
	int rc = index ? 0 : atex_error_oom();

	for (size_t i = 0; i < atex_results_count(r) && !rc; i++) {
		const struct atex_result *res = atex_results_get(r, i);
		char *key;
		json_t *at;
		struct entry *e;

		if (!res->final)
			continue;
		key = atex_sprintf("%s\xff%s", res->platform, res->test);
		if (!key) {
			rc = ATEX_ENOMEM;
			break;
		}
		at = json_object_get(index, key);
		if (at) {
			e = out->items[json_integer_value(at)];
		} else {
			e = atex_calloc(1, sizeof(*e));
			if (!e || atex_vec_push(out, e) < 0 ||
			    json_object_set_new_nocheck(
				    index, key,
				    json_integer((json_int_t)out->len - 1)) <
				    0) {
				if (e && (!out->len ||
					  out->items[out->len - 1] != e))
					free(e);
				rc = atex_error_oom();
			}
		}
		free(key);
		if (rc)
			break;
		if (!res->subtest && !e->own)
			e->own = res;
		else if (atex_vec_push(&e->subs, (void *)res) < 0)
			rc = atex_error_oom();
	}
	json_decref(index);
	return rc;
}

/* tmt's outcome of an atex status. */
static const char *outcome(const char *status)
{
	static const char *const same[] = {"pass",  "fail", "info",   "warn",
					   "error", "skip", "pending"};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(same); i++)
		if (!strcmp(status, same[i]))
			return same[i];
	return strcmp(status, "infra") ? "fail" : "error";
}

/* tmt's severity order (ResultOutcome.reduce): lower is worse. */
static int severity(const char *tmt_outcome)
{
	static const char *const order[] = {"error", "fail", "warn",   "pass",
					    "info",  "skip", "pending"};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(order); i++)
		if (!strcmp(tmt_outcome, order[i]))
			return (int)i;
	return 0;
}

/* `s` as a double-quoted YAML scalar. */
static void put_quoted(struct report_out *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	report_puts(o, "\"");
	while (*p && !o->rc) {
		size_t n = atex_utf8_len(p);

		if (n == 0) {
			report_puts(o, "\xef\xbf\xbd"); /* not UTF-8 */
			p++;
			continue;
		}
		if (*p == '"' || *p == '\\')
			report_printf(o, "\\%c", *p);
		else if (*p == '\n')
			report_puts(o, "\\n");
		else if (*p == '\t')
			report_puts(o, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			report_printf(o, "\\x%02X", *p);
		else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			report_printf(o, "\\x%02X", p[1]); /* C1 controls */
		else if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
			 (p[2] == 0xa8 || p[2] == 0xa9))
			report_puts(o, p[2] == 0xa8 ? "\\L" : "\\P");
		else if (n == 3 &&
			 ((p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) ||
			  (p[0] == 0xef && p[1] == 0xbf && p[2] >= 0xbe)))
			report_printf(o, "\\u%s",
				      p[1] == 0xbb   ? "FEFF"
				      : p[2] == 0xbe ? "FFFE"
						     : "FFFF");
		else if (!o->rc)
			o->rc = atex_buf_put(&o->buf, p, n);
		p += n;
	}
	report_puts(o, "\"");
}

static void put_key_string(struct report_out *o, const char *indent,
			   const char *key, const char *value)
{
	report_printf(o, "%s%s: ", indent, key);
	put_quoted(o, value);
	report_puts(o, "\n");
}

/* tmt's duration: whole seconds as HH:MM:SS (tmt.utils.format_duration). */
static void put_duration(struct report_out *o, const char *indent,
			 double seconds)
{
	long s = (long)seconds; /* tmt truncates */

	report_printf(o, "%sduration: \"%02ld:%02ld:%02ld\"\n", indent,
		      s / 3600, s / 60 % 60, s % 60);
}

/*
 * `note` (NULL: none) as tmt's list, with a note naming the atex status
 * `status` when tmt's outcome is not the same (infra, custom statuses).
 */
static void put_notes(struct report_out *o, const char *indent,
		      const char *note, const char *status)
{
	char *extra = NULL;

	if (status && strcmp(outcome(status), status)) {
		extra = !strcmp(status, "infra")
				? atex_strdup("atex status: infra (the "
					      "infrastructure failed, not the "
					      "test)")
				: atex_sprintf("atex status: %s", status);
		if (!extra) {
			o->rc = ATEX_ENOMEM;
			return;
		}
	}
	if (!note && !extra) {
		report_printf(o, "%snote: []\n", indent);
		return;
	}
	report_printf(o, "%snote:\n", indent);
	if (note) {
		report_printf(o, "%s  - ", indent);
		put_quoted(o, note);
		report_puts(o, "\n");
	}
	if (extra) {
		report_printf(o, "%s  - ", indent);
		put_quoted(o, extra);
		report_puts(o, "\n");
	}
	free(extra);
}

/* The files of `res` relative to `base`, as tmt's `log` list. */
static void put_logs(struct report_out *o, const char *indent,
		     const struct atex_result *res, const char *base)
{
	char *dir;

	if (!res || res->n_files == 0) {
		report_printf(o, "%slog: []\n", indent);
		return;
	}
	report_printf(o, "%slog:\n", indent);
	dir = report_real_path(res->files_dir);
	for (size_t i = 0; i < res->n_files && !o->rc; i++) {
		char *path = dir ? atex_path_join(dir, res->files[i]) : NULL;
		char *rel = path ? report_relative_path(base, path) : NULL;

		if (!rel) {
			o->rc = ATEX_ENOMEM;
		} else {
			report_printf(o, "%s  - ", indent);
			put_quoted(o, rel);
			report_puts(o, "\n");
		}
		free(rel);
		free(path);
	}
	free(dir);
}

/* A timestamp as tmt's schema has them (with a fraction and a zone). */
static bool tmt_timestamp(const char *iso)
{
	double t;
	const char *dot = iso ? strchr(iso, '.') : NULL;

	return report_parse_time(iso, &t) && dot &&
	       (strchr(dot, '+') || strchr(dot, '-') || strchr(dot, 'Z'));
}

static void put_times(struct report_out *o, const char *indent,
		      const struct atex_result *res)
{
	if (!res)
		return;
	if (tmt_timestamp(res->start))
		put_key_string(o, indent, "start-time", res->start);
	if (tmt_timestamp(res->end))
		put_key_string(o, indent, "end-time", res->end);
	if (res->duration >= 0)
		put_duration(o, indent, res->duration);
}

/* A name tmt accepts ("/..."). */
static void put_name(struct report_out *o, const char *indent,
		     const char *prefix, const char *name)
{
	char *full =
		name[0] == '/' ? atex_strdup(name) : atex_sprintf("/%s", name);

	if (!full) {
		o->rc = ATEX_ENOMEM;
		return;
	}
	report_printf(o, "%s%sname: ", indent, prefix);
	put_quoted(o, full);
	report_puts(o, "\n");
	free(full);
}

static void put_subresult(struct report_out *o, const struct atex_result *res,
			  const char *base)
{
	put_name(o, "    ", "- ", res->subtest);
	report_printf(o, "      result: %s\n", outcome(res->status));
	put_notes(o, "      ", res->note, res->status);
	put_logs(o, "      ", res, base);
	report_puts(o, "      check: []\n");
}

/* The run's context as a YAML mapping (strings, or lists of them). */
static void put_context(struct report_out *o, const atex_results *r)
{
	const struct atex_run_info *run = atex_results_run(r);
	json_t *ctx =
		run && run->context ? json_loads(run->context, 0, NULL) : NULL;
	const char *key;
	json_t *v;

	if (!json_is_object(ctx) || !json_object_size(ctx)) {
		json_decref(ctx);
		return;
	}
	report_puts(o, "  context:\n");
	json_object_foreach(ctx, key, v)
	{
		size_t i;
		json_t *item;

		report_puts(o, "    ");
		put_quoted(o, key);
		report_puts(o, ":");
		if (!json_is_array(v)) {
			char *text = json_is_string(v)
					     ? atex_strdup(json_string_value(v))
					     : json_dumps(v, JSON_ENCODE_ANY);

			report_puts(o, " ");
			put_quoted(o, text ? text : "");
			free(text);
		}
		json_array_foreach(v, i, item)
		{
			char *text =
				json_is_string(item)
					? atex_strdup(json_string_value(item))
					: json_dumps(item, JSON_ENCODE_ANY);

			report_puts(o, "\n      - ");
			put_quoted(o, text ? text : "");
			free(text);
		}
		report_puts(o, "\n");
	}
	json_decref(ctx);
}

static void put_entry(struct report_out *o, const atex_results *r,
		      const struct entry *e, size_t serial, const char *base)
{
	const struct atex_result *first =
		e->own ? e->own : (const struct atex_result *)e->subs.items[0];
	const char *tmt_outcome = outcome(first->status);

	/* Without its own result, the worst of its subtests (their notes
	 * say why). */
	for (size_t i = 0; !e->own && i < e->subs.len; i++) {
		const struct atex_result *s = e->subs.items[i];

		if (severity(outcome(s->status)) < severity(tmt_outcome))
			tmt_outcome = outcome(s->status);
	}
	put_name(o, "", "- ", first->test);
	report_printf(o, "  result: %s\n", tmt_outcome);
	put_notes(o, "  ", e->own ? e->own->note : NULL,
		  e->own ? e->own->status : NULL);
	put_logs(o, "  ", e->own, base);
	put_times(o, "  ", first);
	report_printf(o, "  serial-number: %zu\n", serial);
	put_context(o, r);
	report_puts(o, "  guest:\n");
	put_key_string(o, "    ", "name",
		       first->system ? first->system : first->platform);
	put_key_string(o, "    ", "role", first->platform);
	if (e->subs.len) {
		report_puts(o, "  subresult:\n");
		for (size_t i = 0; i < e->subs.len && !o->rc; i++)
			put_subresult(o, e->subs.items[i], base);
	} else {
		report_puts(o, "  subresult: []\n");
	}
	report_puts(o, "  check: []\n");
	if (e->own) {
		char *dir = report_real_path(e->own->files_dir);
		char *rel = dir ? report_relative_path(base, dir) : NULL;

		if (!rel)
			o->rc = ATEX_ENOMEM;
		else
			put_key_string(o, "  ", "data-path", rel);
		free(rel);
		free(dir);
	}
}

int atex_report_tmt(const atex_results *r, const char *path)
{
	struct report_out o = REPORT_OUT_INIT;
	struct atex_vec entries = ATEX_VEC_INIT;
	char *folder = NULL, *base = NULL;
	int rc;

	if (!r || !path)
		return atex_error_set(ATEX_EINVAL, "report: tmt: %s is NULL",
				      r ? "path" : "the results");
	/* tmt opens Path(workdir) / log: the ".." of a path climb from the
	 * real folder, not from the path's text (a symlinked folder). */
	folder = atex_strndup(path, (size_t)(atex_path_basename(path) - path));
	base = folder ? report_real_path(*folder ? folder : ".") : NULL;
	if (!base) {
		rc = atex_error_last_code() == ATEX_EIO ? ATEX_EIO
							: ATEX_ENOMEM;
		goto out;
	}
	o.rc = collect(&entries, r);
	/* An empty list, not an empty document: tmt reads a list. */
	if (!entries.len)
		report_puts(&o, "[]\n");
	for (size_t i = 0; i < entries.len && !o.rc; i++)
		put_entry(&o, r, entries.items[i], i + 1, base);
	rc = o.rc;
	if (!rc)
		rc = report_write_file(path, o.buf.ptr, o.buf.len);
out:
	atex_vec_free_all(&entries, entry_free);
	atex_buf_free(&o.buf);
	free(folder);
	free(base);
	return rc;
}
