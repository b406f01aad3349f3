/*
 * html.c - the results as one self-contained HTML page (atex/report.h).
 *
 * How it is built, and why:
 *
 *  - One file, nothing fetched: the style and the script are inline, no
 *    font, no CDN, no absolute URL. The page is archived with the run's
 *    files and opened from disk years later, or from a CI artifact store
 *    that serves it as it is.
 *  - The table is built here, row by row; the script only hides rows
 *    (the `hidden` attribute), reading what a row is from its data-*
 *    attributes. Thousands of rows render as fast as the browser parses,
 *    the page reads without JavaScript, and a test (or a person with
 *    curl) finds every result in the file. No data goes into the script,
 *    so nothing a test writes can end it early: every string lands in
 *    text or a quoted attribute, escaped.
 *  - The filters live in the URL too: "?status=fail", "#status=fail,error
 *    &platform=X&test=net" (the fragment wins over the query) select the
 *    same as the controls, and changing a control rewrites the fragment,
 *    so a filtered view is a link to share. The counts at the top are
 *    such links.
 *  - An earlier attempt of a re-run test comes right under its test's
 *    final rows, most recent first, greyed and tagged "earlier attempt":
 *    visible, but never mistaken for the verdict. A checkbox (or
 *    "earlier=0") hides them.
 *  - A file link is relative to the page's folder, so the page and the
 *    files can move together; each path segment is percent-encoded.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_private.h"

static const char style[] =
	"body{font:14px/1.4 system-ui,-apple-system,\"Segoe UI\",sans-serif;"
	"margin:1em 2em;color:#222;background:#fff}\n"
	"h1{font-size:1.5em;margin:.2em 0}\n"
	".verdict{font-weight:bold;margin:.3em 0 .8em}\n"
	".verdict.passed{color:#1a7f37}.verdict.failed{color:#c62828}\n"
	"#counts{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:1em}\n"
	"#counts a{display:inline-block;padding:.3em .8em;border-radius:4px;"
	"text-decoration:none;color:#222;border:1px solid #bbb}\n"
	"#counts a b{font-size:1.3em;margin-right:.3em}\n"
	"#filters{display:flex;flex-wrap:wrap;gap:1em;align-items:center;"
	"margin-bottom:1em}\n"
	"#filters fieldset{border:1px solid #ccc;padding:.2em .6em;margin:0}\n"
	"#filters label{white-space:nowrap}\n"
	"#shown{color:#666}\n"
	"table{border-collapse:collapse;width:100%}\n"
	"th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;"
	"vertical-align:top}\n"
	"th{background:#f3f3f3;position:sticky;top:0}\n"
	"tr[hidden]{display:none}\n"
	"td.note{white-space:pre-wrap;word-break:break-word}\n"
	"td.files a{display:block}\n"
	".badge{display:inline-block;min-width:3.5em;text-align:center;"
	"border-radius:3px;padding:0 .3em;font-weight:bold;color:#fff;"
	"background:#757575}\n"
	".st-pass .badge,#counts a.st-pass{background:#2e7d32;color:#fff}\n"
	".st-fail .badge,#counts a.st-fail{background:#c62828;color:#fff}\n"
	".st-error .badge,#counts a.st-error{background:#6a1b9a;color:#fff}\n"
	".st-infra .badge,#counts a.st-infra{background:#ad1457;color:#fff}\n"
	".st-warn .badge,#counts a.st-warn{background:#ef6c00;color:#fff}\n"
	".st-info .badge,#counts a.st-info{background:#1565c0;color:#fff}\n"
	".st-skip .badge,#counts a.st-skip{background:#9e9e9e;color:#fff}\n"
	"tr.earlier td{background:#f7f7f7;color:#777;font-style:italic}\n"
	"tr.earlier td:first-child{border-left:4px solid #bbb}\n"
	"tr.earlier .badge{opacity:.6}\n"
	".tag{font-size:.8em;font-style:normal;color:#555;"
	"border:1px solid #bbb;border-radius:3px;padding:0 .3em;"
	"white-space:nowrap}\n"
	"tr.final.rerun .tag{border-color:#1a7f37;color:#1a7f37}\n"
	"#run{display:grid;grid-template-columns:max-content auto;"
	"gap:.1em 1em;margin:0 0 1em}\n"
	"#run dt{font-weight:bold;color:#555}#run dd{margin:0}\n"
	"td.duration,td.started{white-space:nowrap}\n"
	"td.duration{text-align:right;font-variant-numeric:tabular-nums}\n"
	"th button.sort{font:inherit;font-weight:bold;background:none;"
	"border:0;padding:0;cursor:pointer;color:inherit}\n"
	"th[aria-sort=ascending] button.sort::after{content:\" \\25B2\"}\n"
	"th[aria-sort=descending] button.sort::after{content:\" \\25BC\"}\n";

/* Reads the filters from the URL and the controls, and hides rows. */
static const char script[] =
	"(function () {\n"
	"\"use strict\";\n"
	"var rows = document.getElementById(\"results\").tBodies[0].rows;\n"
	"var boxes = document.querySelectorAll("
	"\"#filters input[name=status]\");\n"
	"var platform = document.getElementById(\"f-platform\");\n"
	"var test = document.getElementById(\"f-test\");\n"
	"var earlier = document.getElementById(\"f-earlier\");\n"
	"var shown = document.getElementById(\"shown\");\n"
	"var body = document.getElementById(\"results\").tBodies[0];\n"
	"var sorters = document.querySelectorAll(\"#results th[data-sort]\");\n"
	"var sorted = \"\";\n"
	"/* A test's rows (its final ones, then its earlier attempts) move\n"
	" * together; the file's order breaks ties. */\n"
	"var groups = [], last = null;\n"
	"Array.prototype.forEach.call(body.rows, function (row) {\n"
	"  var key = row.dataset.platform + \"\\u0000\" + row.dataset.test;\n"
	"  if (!last || last.key !== key) {\n"
	"    last = { key: key, rows: [], n: groups.length };\n"
	"    groups.push(last);\n"
	"  }\n"
	"  last.rows.push(row);\n"
	"});\n"
	"/* The value a group sorts by; null (unknown) always goes last. */\n"
	"function value(g, col) {\n"
	"  var rows = g.rows.filter(function (r) {\n"
	"    return r.dataset.final === \"1\"; });\n"
	"  if (!rows.length) rows = g.rows;\n"
	"  if (col === \"status\")\n"
	"    return Math.min.apply(null, rows.map(function (r) {\n"
	"      return +r.dataset.rank; }));\n"
	"  if (col === \"test\")\n"
	"    return (rows[0].dataset.test + \"\\u0000\" +\n"
	"      rows[0].dataset.platform).toLowerCase();\n"
	"  var v = rows[0].dataset[col];\n"
	"  if (!v) return null;\n"
	"  return col === \"duration\" ? +v : v;\n"
	"}\n"
	"/* col, or -col for descending; \"\" is the file's order. */\n"
	"function sortRows(spec) {\n"
	"  var desc = spec.charAt(0) === \"-\";\n"
	"  var col = spec.replace(/^-/, \"\");\n"
	"  var order = groups.slice(), i;\n"
	"  if (col) order.forEach(function (g) { g.v = value(g, col); });\n"
	"  if (col) order.sort(function (a, b) {\n"
	"    var x = a.v, y = b.v, c = 0;\n"
	"    if (x === null || y === null)\n"
	"      c = x === y ? 0 : (x === null ? 1 : -1);\n"
	"    else\n"
	"      c = (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);\n"
	"    return c || a.n - b.n;\n"
	"  });\n"
	"  var frag = document.createDocumentFragment();\n"
	"  order.forEach(function (g) {\n"
	"    g.rows.forEach(function (r) { frag.appendChild(r); }); });\n"
	"  body.appendChild(frag);\n"
	"  for (i = 0; i < sorters.length; i++)\n"
	"    sorters[i].setAttribute(\"aria-sort\",\n"
	"      sorters[i].dataset.sort !== col ? \"none\" :\n"
	"      desc ? \"descending\" : \"ascending\");\n"
	"  sorted = col ? spec : \"\";\n"
	"}\n"
	"function dec(s) {\n"
	"  try { return decodeURIComponent(s.replace(/\\+/g, \" \")); }\n"
	"  catch (e) { return s; }\n"
	"}\n"
	"/* key -> [values] of \"a=1&b=2\"; the fragment's keys win. */\n"
	"function params() {\n"
	"  var out = Object.create(null);\n"
	"  [location.search, location.hash].forEach(function (src) {\n"
	"    var seen = Object.create(null);\n"
	"    src.replace(/^[?#]/, \"\").split(\"&\").forEach(function (kv) {\n"
	"      if (!kv) return;\n"
	"      var i = kv.indexOf(\"=\");\n"
	"      var k = dec(i < 0 ? kv : kv.slice(0, i));\n"
	"      var v = i < 0 ? \"\" : dec(kv.slice(i + 1));\n"
	"      if (!seen[k]) { seen[k] = true; out[k] = []; }\n"
	"      out[k].push(v);\n"
	"    });\n"
	"  });\n"
	"  return out;\n"
	"}\n"
	"function apply() {\n"
	"  var want = Object.create(null), n = 0, i;\n"
	"  for (i = 0; i < boxes.length; i++)\n"
	"    if (boxes[i].checked) want[boxes[i].value] = true;\n"
	"  var pf = platform.value, t = test.value.toLowerCase();\n"
	"  var all = earlier.checked;\n"
	"  for (i = 0; i < rows.length; i++) {\n"
	"    var d = rows[i].dataset;\n"
	"    var show = want[d.status] === true &&\n"
	"      (!pf || d.platform === pf) &&\n"
	"      (!t || (d.test + (d.subtest ? \"/\" + d.subtest : \"\"))\n"
	"        .toLowerCase().indexOf(t) >= 0) &&\n"
	"      (all || d.final === \"1\");\n"
	"    rows[i].hidden = !show;\n"
	"    if (show) n++;\n"
	"  }\n"
	"  shown.textContent = n + \" of \" + rows.length + \" rows shown\";\n"
	"}\n"
	"function fromUrl() {\n"
	"  var p = params(), i;\n"
	"  var st = p.status ? p.status.join(\",\").split(\",\") : null;\n"
	"  for (i = 0; i < boxes.length; i++)\n"
	"    boxes[i].checked = !st || st.indexOf(boxes[i].value) >= 0;\n"
	"  var pf = p.platform ? p.platform[0] : \"\";\n"
	"  if (pf && !Array.prototype.some.call(platform.options,\n"
	"      function (o) { return o.value === pf; })) {\n"
	"    var o = document.createElement(\"option\");\n"
	"    o.value = o.textContent = pf;\n"
	"    platform.appendChild(o);\n"
	"  }\n"
	"  platform.value = pf;\n"
	"  test.value = p.test ? p.test[0] : (p.name ? p.name[0] : \"\");\n"
	"  earlier.checked = !p.earlier || p.earlier[0] !== \"0\";\n"
	"  var sp = p.sort ? p.sort[0] : \"\";\n"
	"  if (!Array.prototype.some.call(sorters, function (h) {\n"
	"      return h.dataset.sort === sp.replace(/^-/, \"\"); }))\n"
	"    sp = \"\";\n"
	"  if (sp !== sorted) sortRows(sp);\n"
	"  apply();\n"
	"}\n"
	"/* The fragment of the filters that are set; all of them when the\n"
	" * query has some, which the fragment must override. */\n"
	"function toUrl() {\n"
	"  var parts = [], st = [], i, every = location.search.length > 1;\n"
	"  for (i = 0; i < boxes.length; i++)\n"
	"    if (boxes[i].checked) st.push(boxes[i].value);\n"
	"  if (every || st.length !== boxes.length)\n"
	"    parts.push(\"status=\" + "
	"st.map(encodeURIComponent).join(\",\"));\n"
	"  if (every || platform.value)\n"
	"    parts.push(\"platform=\" + encodeURIComponent(platform.value));\n"
	"  if (every || test.value)\n"
	"    parts.push(\"test=\" + encodeURIComponent(test.value));\n"
	"  if (every || !earlier.checked)\n"
	"    parts.push(\"earlier=\" + (earlier.checked ? 1 : 0));\n"
	"  if (every || sorted)\n"
	"    parts.push(\"sort=\" + encodeURIComponent(sorted));\n"
	"  try {\n"
	"    history.replaceState(null, \"\", location.pathname +\n"
	"      location.search + \"#\" + parts.join(\"&\"));\n"
	"  } catch (e) { /* some file:// setups refuse it */ }\n"
	"}\n"
	"function changed() { apply(); toUrl(); }\n"
	"document.getElementById(\"filters\").addEventListener(\"input\", "
	"changed);\n"
	"document.getElementById(\"filters\").addEventListener(\"change\", "
	"changed);\n"
	"document.getElementById(\"filters\").addEventListener(\"submit\",\n"
	"  function (e) { e.preventDefault(); });\n"
	"/* Every key set: the query's filters must not come back. */\n"
	"document.getElementById(\"f-reset\").addEventListener(\"click\",\n"
	"  function () { location.hash = \"status=\" +\n"
	"    Array.prototype.map.call(boxes, function (b) {\n"
	"      return encodeURIComponent(b.value); }).join(\",\") +\n"
	"    \"&platform=&test=&earlier=1&sort=\" +\n"
	"    encodeURIComponent(sorted); });\n"
	"/* A first click sorts (duration: longest first), a second\n"
	" * reverses. */\n"
	"Array.prototype.forEach.call(sorters, function (h) {\n"
	"  var button = h.querySelector(\"button\");\n"
	"  button.addEventListener(\"click\", function () {\n"
	"    var col = h.dataset.sort, first = h.dataset.first || \"\";\n"
	"    var now = h.getAttribute(\"aria-sort\");\n"
	"    var desc = now === \"none\" ? first === \"-\" :\n"
	"      now === \"ascending\";\n"
	"    sortRows((desc ? \"-\" : \"\") + col);\n"
	"    toUrl();\n"
	"  });\n"
	"});\n"
	"window.addEventListener(\"hashchange\", fromUrl);\n"
	"fromUrl();\n"
	"})();\n";

/* ------------------------------------------------------------------------
 * Links.
 */

static bool url_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("-._~@+,=!$()*;", c);
}

/* Appends segment [s, s+len) percent-encoded. */
static int put_segment(struct atex_buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int rc = url_safe(c) && c ? atex_buf_putc(b, (char)c)
					  : atex_buf_printf(b, "%%%02X", c);

		if (rc)
			return rc;
	}
	return 0;
}

/* The next component of an absolute normalised path after *p ("" at the
 * end); *p moves past it. */
static const char *next_component(const char **p, size_t *len)
{
	const char *s = *p;

	while (*s == '/')
		s++;
	*len = strcspn(s, "/");
	*p = s + *len;
	return s;
}

/*
 * The URL of `target` relative to the directory `base`, both absolute
 * and normalised: "../" for each of base's components past the common
 * ones, then target's remaining components, percent-encoded.
 */
static char *relative_url(const char *base, const char *target)
{
	struct atex_buf b = ATEX_BUF_INIT;
	const char *pb = base, *pt = target, *cb, *ct;
	size_t lb, lt;
	int rc = 0;

	for (;;) {
		const char *save_b = pb, *save_t = pt;

		cb = next_component(&pb, &lb);
		ct = next_component(&pt, &lt);
		if (lb == 0 || lb != lt || memcmp(cb, ct, lb)) {
			pb = save_b;
			pt = save_t;
			break;
		}
	}
	while (!rc && (cb = next_component(&pb, &lb), lb > 0))
		rc = atex_buf_puts(&b, "../");
	for (bool first = true; !rc && (ct = next_component(&pt, &lt), lt > 0);
	     first = false) {
		if (!first)
			rc = atex_buf_putc(&b, '/');
		if (!rc)
			rc = put_segment(&b, ct, lt);
	}
	if (rc) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

/* ------------------------------------------------------------------------
 * The page.
 */

/* `s` percent-encoded as one segment, in an attribute. */
static void put_url_segment(struct report_out *o, const char *s)
{
	struct atex_buf b = ATEX_BUF_INIT;

	if (!o->rc && put_segment(&b, s, strlen(s)) < 0)
		o->rc = ATEX_ENOMEM;
	report_esc(o, atex_buf_cstr(&b), true);
	atex_buf_free(&b);
}

static void put_cell(struct report_out *o, const char *class, const char *s)
{
	report_printf(o, "<td class=\"%s\">", class);
	if (s)
		report_esc(o, s, false);
	report_puts(o, "</td>");
}

static void put_files(struct report_out *o, const struct atex_result *res,
		      const char *base)
{
	report_puts(o, "<td class=\"files\">");
	for (size_t i = 0; i < res->n_files && !o->rc; i++) {
		char *path =
			atex_sprintf("%s/%s", res->files_dir, res->files[i]);
		char *abs = path ? atex_path_abspath(path) : NULL;
		char *url = abs ? relative_url(base, abs) : NULL;

		if (!url) {
			o->rc = ATEX_ENOMEM;
		} else {
			report_puts(o, "<a href=\"");
			report_esc(o, url, true);
			report_puts(o, "\">");
			report_esc(o, res->files[i], false);
			report_puts(o, "</a>");
		}
		free(path);
		free(abs);
		free(url);
	}
	report_puts(o, "</td>");
}

/* A status as a class name: letters, digits, '-' and '_' kept, the rest
 * '_' (a custom status may hold anything). */
static void put_status_class(struct report_out *o, const char *status)
{
	report_puts(o, "st-");
	for (const char *p = status; *p && !o->rc; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_';

		report_printf(o, "%c", ok ? c : '_');
	}
}

/* Where a status sorts: errors and failures first, skips last. */
static int status_rank(const char *status)
{
	static const char *const order[] = {"error", "infra", "fail", "",
					    "warn",  "info",  "pass", "skip"};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(order); i++)
		if (!strcmp(status, order[i]))
			return (int)i;
	return 3; /* a custom status fails the run */
}

/* data-rank, data-duration (seconds), data-started, data-system,
 * data-exit-code: what the script sorts by and a test reads. */
static void put_timing_data(struct report_out *o, const struct atex_result *res)
{
	report_printf(o, " data-rank=\"%d\" data-duration=\"",
		      status_rank(res->status));
	if (res->duration >= 0)
		report_printf(o, "%.3f", res->duration);
	report_puts(o, "\" data-started=\"");
	if (res->start)
		report_esc(o, res->start, true);
	report_puts(o, "\" data-system=\"");
	if (res->system)
		report_esc(o, res->system, true);
	report_puts(o, "\" data-exit-code=\"");
	if (res->has_exit_code)
		report_printf(o, "%d", res->exit_code);
	report_puts(o, "\"");
}

/* A time as people read it: "2026-12-06 22:45:01" of an ISO one. */
static void put_time_text(struct report_out *o, const char *iso)
{
	char shown[20];
	double t;

	if (!report_parse_time(iso, &t) || strlen(iso) < 19) {
		report_esc(o, iso, false);
		return;
	}
	memcpy(shown, iso, 19);
	shown[10] = ' ';
	shown[19] = '\0';
	report_puts(o, shown);
}

/* The duration (its title: start, end, exit code), system and start. */
static void put_timing_cells(struct report_out *o,
			     const struct atex_result *res)
{
	char buf[32];

	report_puts(o, "<td class=\"duration\"");
	if (res->start || res->end || res->has_exit_code) {
		report_puts(o, " title=\"");
		if (res->start || res->end) {
			report_esc(o, res->start ? res->start : "?", true);
			report_puts(o, " to ");
			report_esc(o, res->end ? res->end : "?", true);
		}
		if (res->has_exit_code)
			report_printf(o, "%sexit code %d",
				      res->start || res->end ? ", " : "",
				      res->exit_code);
		report_puts(o, "\"");
	}
	report_puts(o, ">");
	if (res->duration >= 0)
		report_puts(o, report_format_duration(buf, sizeof(buf),
						      res->duration));
	report_puts(o, "</td>");
	put_cell(o, "system", res->system);
	report_puts(o, "<td class=\"started\">");
	if (res->start) {
		report_puts(o, "<time datetime=\"");
		report_esc(o, res->start, true);
		report_puts(o, "\">");
		put_time_text(o, res->start);
		report_puts(o, "</time>");
	}
	report_puts(o, "</td>");
}

static void put_row(struct report_out *o, const struct atex_result *res,
		    const char *base, bool rerun)
{
	report_printf(o, "<tr class=\"%s%s ", res->final ? "final" : "earlier",
		      res->final && rerun ? " rerun" : "");
	put_status_class(o, res->status);
	report_puts(o, "\" data-status=\"");
	report_esc(o, res->status, true);
	report_puts(o, "\" data-platform=\"");
	report_esc(o, res->platform, true);
	report_puts(o, "\" data-test=\"");
	report_esc(o, res->test, true);
	report_puts(o, "\" data-subtest=\"");
	if (res->subtest)
		report_esc(o, res->subtest, true);
	report_printf(o, "\" data-attempt=\"%u\" data-final=\"%d\"",
		      res->attempt, res->final ? 1 : 0);
	put_timing_data(o, res);
	report_puts(o, ">\n");
	report_puts(o, "<td class=\"status\"><span class=\"badge\">");
	report_esc(o, res->status, false);
	report_puts(o, "</span>");
	if (!res->final)
		report_puts(o, " <span class=\"tag\">earlier attempt</span>");
	report_puts(o, "</td>");
	put_cell(o, "platform", res->platform);
	put_cell(o, "test", res->test);
	put_cell(o, "subtest", res->subtest);
	put_cell(o, "note", res->note);
	put_files(o, res, base);
	if (!res->final)
		report_printf(o,
			      "<td class=\"attempt\">%u <span "
			      "class=\"tag\">earlier attempt</span></td>",
			      res->attempt);
	else if (rerun)
		report_printf(o,
			      "<td class=\"attempt\">%u <span "
			      "class=\"tag\">final</span></td>",
			      res->attempt);
	else
		report_printf(o, "<td class=\"attempt\">%u</td>", res->attempt);
	put_timing_cells(o, res);
	report_puts(o, "</tr>\n");
}

static char *group_key(const struct atex_result *res)
{
	return atex_sprintf("%s\xff%s", res->platform, res->test);
}

/* Earlier attempts, most recent first, file order within one. */
static int cmp_earlier(const void *a, const void *b)
{
	const struct atex_result *x = *(const struct atex_result *const *)a;
	const struct atex_result *y = *(const struct atex_result *const *)b;

	if (x->attempt != y->attempt)
		return x->attempt > y->attempt ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* key -> JSON array of the indices of the earlier results of a test. */
static int index_earlier(json_t **out, const atex_results *r)
{
	json_t *groups = json_object();
	int rc = 0;

	if (!groups)
		return atex_error_oom();
	for (size_t i = 0; i < atex_results_count(r) && !rc; i++) {
		const struct atex_result *res = atex_results_get(r, i);
		char *key;
		json_t *list;

		if (res->final)
			continue;
		key = group_key(res);
		if (!key) {
			rc = ATEX_ENOMEM;
			break;
		}
		list = json_object_get(groups, key);
		if (!list) {
			list = json_array();
			if (!list ||
			    json_object_set_new_nocheck(groups, key, list) < 0)
				rc = atex_error_oom();
		}
		if (!rc && json_array_append_new(
				   list, json_integer((json_int_t)i)) < 0)
			rc = atex_error_oom();
		free(key);
	}
	if (rc) {
		json_decref(groups);
		return rc;
	}
	*out = groups;
	return 0;
}

/* The rows of the earlier results listed in `list` (removed from the
 * index once written), most recent first. */
static void put_earlier(struct report_out *o, const atex_results *r,
			json_t *list, const char *base)
{
	struct atex_vec v = ATEX_VEC_INIT;
	size_t i;
	json_t *idx;

	json_array_foreach(list, i, idx)
	{
		if (atex_vec_push(&v, (void *)atex_results_get(
					      r, (size_t)json_integer_value(
							 idx))) < 0) {
			o->rc = ATEX_ENOMEM;
			break;
		}
	}
	atex_vec_sort(&v, cmp_earlier);
	for (i = 0; i < v.len && !o->rc; i++)
		put_row(o, v.items[i], base, true);
	atex_vec_free(&v);
	json_array_clear(list);
}

static void put_rows(struct report_out *o, const atex_results *r,
		     const char *base)
{
	size_t n = atex_results_count(r);
	json_t *groups = NULL, *list;
	const char *key;

	o->rc = index_earlier(&groups, r);
	if (o->rc)
		return;
	for (size_t i = 0; i < n && !o->rc; i++) {
		const struct atex_result *res = atex_results_get(r, i);
		const struct atex_result *next = atex_results_get(r, i + 1);
		char *k;

		if (!res->final)
			continue;
		k = group_key(res);
		if (!k) {
			o->rc = ATEX_ENOMEM;
			break;
		}
		list = json_object_get(groups, k);
		put_row(o, res, base, list != NULL);
		/* After the last final row of its test. */
		if (list && (!next || !next->final ||
			     strcmp(next->platform, res->platform) ||
			     strcmp(next->test, res->test)))
			put_earlier(o, r, list, base);
		free(k);
	}
	/* Earlier attempts of tests without a final result. */
	json_object_foreach(groups, key, list)
	{
		if (!o->rc)
			put_earlier(o, r, list, base);
	}
	json_decref(groups);
}

static void put_counts(struct report_out *o, const atex_results *r,
		       const struct atex_vec *statuses)
{
	size_t n = atex_results_count(r), n_final = 0, n_earlier = 0;

	report_puts(o, "<div id=\"counts\">\n");
	for (size_t s = 0; s < statuses->len; s++) {
		size_t count = 0;

		for (size_t i = 0; i < n; i++) {
			const struct atex_result *res = atex_results_get(r, i);

			count += res->final &&
				 !strcmp(res->status, statuses->items[s]);
		}
		n_final += count;
		report_puts(o, "<a class=\"count ");
		put_status_class(o, statuses->items[s]);
		report_puts(o, "\" data-status=\"");
		report_esc(o, statuses->items[s], true);
		report_printf(o,
			      "\" data-count=\"%zu\" href=\"#status=", count);
		put_url_segment(o, statuses->items[s]);
		report_printf(o, "\"><b>%zu</b>", count);
		report_esc(o, statuses->items[s], false);
		report_puts(o, "</a>\n");
	}
	/* Attempts, as the run facts count them: an earlier attempt's
	 * subtests are part of it. */
	if (!o->rc)
		o->rc = report_earlier_attempts(r, &n_earlier);
	report_printf(o,
		      "</div>\n<p class=\"totals\">%zu results, %zu earlier "
		      "attempts of re-run tests</p>\n",
		      n_final, n_earlier);
}

static void put_filters(struct report_out *o, const atex_results *r,
			const struct atex_vec *statuses)
{
	struct atex_vec platforms = ATEX_VEC_INIT;

	report_puts(o, "<form id=\"filters\">\n<fieldset><legend>Status"
		       "</legend>\n");
	for (size_t s = 0; s < statuses->len; s++) {
		report_puts(o,
			    "<label><input type=\"checkbox\" name=\"status\" "
			    "value=\"");
		report_esc(o, statuses->items[s], true);
		report_puts(o, "\" checked> ");
		report_esc(o, statuses->items[s], false);
		report_puts(o, "</label>\n");
	}
	report_puts(o, "</fieldset>\n<label>Platform <select id=\"f-platform\" "
		       "name=\"platform\">\n<option value=\"\">all</option>\n");
	if (!o->rc)
		o->rc = report_platforms(&platforms, r);
	for (size_t i = 0; i < platforms.len; i++) {
		report_puts(o, "<option value=\"");
		report_esc(o, platforms.items[i], true);
		report_puts(o, "\">");
		report_esc(o, platforms.items[i], false);
		report_puts(o, "</option>\n");
	}
	atex_vec_free(&platforms);
	report_puts(o,
		    "</select></label>\n"
		    "<label>Test <input type=\"search\" id=\"f-test\" "
		    "name=\"test\" "
		    "placeholder=\"part of the name\"></label>\n"
		    "<label><input type=\"checkbox\" id=\"f-earlier\" "
		    "name=\"earlier\" checked> earlier attempts</label>\n"
		    "<button type=\"button\" id=\"f-reset\">show all</button>\n"
		    "<span id=\"shown\"></span>\n</form>\n");
}

static void put_fact(struct report_out *o, const char *name, const char *value)
{
	if (!value)
		return;
	report_printf(o, "<dt>%s</dt><dd>", name);
	report_esc(o, value, false);
	report_puts(o, "</dd>\n");
}

/* "k=v, k=v1 v2" of the context's JSON text (NULL: none, or bad). */
static char *context_text(const char *json)
{
	json_t *ctx = json ? json_loads(json, 0, NULL) : NULL;
	struct atex_buf b = ATEX_BUF_INIT;
	const char *key;
	json_t *v, *item;
	size_t i;
	int rc = 0;

	json_object_foreach(ctx, key, v)
	{
		rc |= atex_buf_printf(&b, "%s%s=", b.len ? ", " : "", key);
		if (json_is_string(v))
			rc |= atex_buf_puts(&b, json_string_value(v));
		json_array_foreach(v, i, item)
		{
			rc |= atex_buf_printf(&b, "%s%s", i ? " " : "",
					      json_is_string(item)
						      ? json_string_value(item)
						      : "?");
		}
	}
	json_decref(ctx);
	if (rc || !b.len) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

/* "a, b" of the history's JSON array text (NULL: none, or bad). */
static char *history_text(const char *json)
{
	json_t *list = json ? json_loads(json, 0, NULL) : NULL, *v;
	struct atex_buf b = ATEX_BUF_INIT;
	size_t i;
	int rc = 0;

	json_array_foreach(list, i, v)
	{
		if (json_is_string(v))
			rc |= atex_buf_printf(&b, "%s%s", b.len ? ", " : "",
					      json_string_value(v));
	}
	json_decref(list);
	if (rc || !b.len) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

/* What the run recorded of itself, and its times. */
static void put_run(struct report_out *o, const atex_results *r)
{
	const struct atex_run_info *run = atex_results_run(r);
	double wall = atex_results_wall_time(r), sum;
	char buf[32], *text = NULL;
	size_t n;

	sum = report_test_time(r, &n);
	if (!run && wall < 0 && sum < 0)
		return;
	report_puts(o, "<dl id=\"run\">\n");
	if (run) {
		put_fact(o, "Started", run->started);
		put_fact(o, "Ended",
			 run->ended	? run->ended
			 : run->started ? "not recorded (still running, or "
					  "killed)"
					: NULL);
	}
	if (wall >= 0)
		put_fact(o, "Wall time",
			 report_format_duration(buf, sizeof(buf), wall));
	if (sum >= 0) {
		text = atex_sprintf(
			"%s (%zu attempts)",
			report_format_duration(buf, sizeof(buf), sum), n);
		if (!text)
			o->rc = ATEX_ENOMEM;
		put_fact(o, "Test time", text);
		free(text);
	}
	if (run) {
		put_fact(o, "atex", run->atex_version);
		put_fact(o, "Platform", run->platform);
		put_fact(o, "Provisioner", run->provisioner);
		if (run->systems >= 0) {
			snprintf(buf, sizeof(buf), "%ld", run->systems);
			put_fact(o, "Systems", buf);
		}
		put_fact(o, "Tree", run->tree);
		put_fact(o, "Git commit", run->git_commit);
		text = context_text(run->context);
		put_fact(o, "Context", text);
		free(text);
		text = history_text(run->history);
		put_fact(o, "History", text);
		free(text);
	}
	report_puts(o, "</dl>\n");
}

int atex_report_html(const atex_results *r, const char *path, const char *title)
{
	struct report_out o = REPORT_OUT_INIT;
	struct atex_vec statuses = ATEX_VEC_INIT;
	char *abs = NULL, *base = NULL;
	int rc;

	if (!r || !path)
		return atex_error_set(ATEX_EINVAL, "report: html: %s is NULL",
				      r ? "path" : "the results");
	if (!title)
		title = "atex results";
	abs = atex_path_abspath(path);
	base = abs ? atex_strndup(abs, (size_t)(atex_path_basename(abs) - abs))
		   : NULL;
	if (!base) {
		rc = atex_error_last_code() == ATEX_EIO ? ATEX_EIO
							: ATEX_ENOMEM;
		goto out;
	}
	o.rc = report_statuses(&statuses, r, false, false);
	report_puts(&o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
			"<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
			"content=\"width=device-width, initial-scale=1\">\n"
			"<title>");
	report_esc(&o, title, false);
	report_puts(&o, "</title>\n<style>\n");
	report_puts(&o, style);
	report_puts(&o, "</style>\n</head>\n<body>\n<h1>");
	report_esc(&o, title, false);
	report_printf(&o, "</h1>\n<p class=\"verdict %s\">%s</p>\n",
		      atex_results_passed(r) ? "passed" : "failed",
		      atex_results_passed(r) ? "Passed" : "Failed");
	put_run(&o, r);
	put_counts(&o, r, &statuses);
	put_filters(&o, r, &statuses);
	report_puts(&o, "<table id=\"results\">\n<thead><tr>"
			"<th data-sort=\"status\" aria-sort=\"none\"><button "
			"type=\"button\" class=\"sort\">Status</button></th>"
			"<th>Platform</th>"
			"<th data-sort=\"test\" aria-sort=\"none\"><button "
			"type=\"button\" class=\"sort\">Test</button></th>"
			"<th>Subtest</th><th>Note</th><th>Files</th>"
			"<th>Attempt</th>"
			"<th data-sort=\"duration\" data-first=\"-\" "
			"aria-sort=\"none\"><button type=\"button\" "
			"class=\"sort\">Duration</button></th>"
			"<th>System</th>"
			"<th data-sort=\"started\" aria-sort=\"none\"><button "
			"type=\"button\" class=\"sort\">Started</button></th>"
			"</tr></thead>\n<tbody>\n");
	if (!o.rc)
		put_rows(&o, r, base);
	report_puts(&o, "</tbody>\n</table>\n<script>\n");
	report_puts(&o, script);
	report_puts(&o, "</script>\n</body>\n</html>\n");
	rc = o.rc;
	if (!rc)
		rc = report_write_file(path, o.buf.ptr, o.buf.len);
out:
	atex_vec_free(&statuses);
	atex_buf_free(&o.buf);
	free(abs);
	free(base);
	return rc;
}
