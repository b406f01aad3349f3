/*
 * checks.c - tmt's test checks (the `check` key), the executor's part:
 * the test's checks read and refused when atex does not know them, the
 * check results the wrapper sends (remote/checks.sh) noted as they pass
 * by, and their verdict on the test's own result, as tmt's
 * interpret_check_result makes it. The snapshots themselves are taken on
 * the system, in the wrapper's process.
 */
#include <stdlib.h>
#include <string.h>

#include "executor/fmf_private.h"
#include "util/pyre.h"

/* The checks atex runs; tmt has more (coredump, journal, watchdog...),
 * which are refused by name rather than ignored. */
static const char *const known[] = {"avc", "dmesg"};

static bool is_known(const char *how)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(how, known[i]))
			return true;
	return false;
}

/* The check's patterns key (dmesg: failure-pattern, avc: ignore-pattern;
 * a string or a list of strings, tmt's regular expressions) into
 * c["patterns"]; missing: tmt's defaults (the wrapper's). */
static int patterns(json_t *c, json_t *entry, const char *name, const char *how)
{
	const char *key =
		!strcmp(how, "dmesg") ? "failure-pattern" : "ignore-pattern";
	json_t *p = json_is_object(entry) ? json_object_get(entry, key) : NULL;
	json_t *list, *item;
	size_t i;

	if (!p || json_is_null(p))
		return 0;
	list = json_is_string(p) ? json_pack("[O]", p) : json_incref(p);
	if (!list)
		return ATEX_ENOMEM;
	json_array_foreach(list, i, item)
	{
		struct atex_pyre *re = NULL;

		if (!json_is_string(item)) {
			json_decref(list);
			return atex_error_set(ATEX_EFORMAT,
					      "%s: check '%s': %s: not a "
					      "pattern or a list of patterns",
					      name, how, key);
		}
		/* tmt compiles them (Python's re) and refuses the metadata
		 * when one does not: a pattern grep cannot read would
		 * match nothing and hide the failures it is for. */
		if (atex_pyre_compile(&re, json_string_value(item), 0)) {
			json_decref(list);
			return atex_error_prefix("%s: check '%s': %s", name,
						 how, key);
		}
		atex_pyre_free(re);
	}
	if (!json_is_array(list)) {
		json_decref(list);
		return atex_error_set(ATEX_EFORMAT,
				      "%s: check '%s': %s: not a pattern or a "
				      "list of patterns",
				      name, how, key);
	}
	return json_object_set_new(c, "patterns", list) ? ATEX_ENOMEM : 0;
}

/* One entry of `check`: a name, or an object with `how`, `enabled`,
 * `result` and the check's patterns. Adds {"how", "result", "patterns"}
 * to `out` when enabled. */
static int parse_one(json_t *out, json_t *entry, const char *name, size_t i)
{
	json_t *how =
		json_is_string(entry) ? entry : json_object_get(entry, "how");
	json_t *enabled = json_object_get(entry, "enabled");
	json_t *result = json_object_get(entry, "result");
	const char *r = !result || json_is_null(result)
				? "respect"
				: json_string_value(result);
	const char *h = json_string_value(how);
	json_t *c;
	int rc;

	if (!json_is_string(entry) && !json_is_object(entry))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: check %zu: not a check name or an "
				      "object with 'how'",
				      name, i + 1);
	if (!h)
		return atex_error_set(
			ATEX_EFORMAT,
			"%s: check %zu: no 'how' naming the check", name,
			i + 1);
	if (!is_known(h))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: check '%s': atex has no such check "
				      "(it runs avc and dmesg)",
				      name, h);
	if (enabled && !json_is_boolean(enabled))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: check '%s': enabled: not true or "
				      "false",
				      name, h);
	if (!r ||
	    (strcmp(r, "respect") && strcmp(r, "xfail") && strcmp(r, "info")))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: check '%s': result: not respect, "
				      "xfail or info",
				      name, h);
	if (json_is_false(enabled))
		return 0;
	/* tmt runs one check once per test. */
	for (size_t k = 0; k < json_array_size(out); k++)
		if (!strcmp(h, json_string_value(json_object_get(
				       json_array_get(out, k), "how"))))
			return atex_error_set(ATEX_EFORMAT,
					      "%s: check '%s': listed twice",
					      name, h);
	c = json_pack("{s:s, s:s}", "how", h, "result", r);
	if (!c)
		return ATEX_ENOMEM;
	rc = patterns(c, entry, name, h);
	if (!rc && json_array_append(out, c))
		rc = ATEX_ENOMEM;
	json_decref(c);
	return rc;
}

int fmf_checks_parse(json_t **out, json_t *data, const char *name)
{
	json_t *check = json_object_get(data, "check");
	json_t *entry;
	size_t i;
	int rc = 0;

	*out = json_array();
	if (!*out)
		return ATEX_ENOMEM;
	if (!check || json_is_null(check))
		return 0;
	if (json_is_array(check)) {
		json_array_foreach(check, i, entry)
		{
			rc = parse_one(*out, entry, name, i);
			if (rc)
				break;
		}
	} else {
		rc = parse_one(*out, check, name, 0);
	}
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* tmt's order, worst first (ResultOutcome.reduce); atex's infra above
 * all, unknown statuses below. */
static int severity(const char *status)
{
	static const char *const order[] = {"infra", "error",  "fail",
					    "warn",  "pass",   "info",
					    "skip",  "pending"};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (status && !strcmp(status, order[i]))
			return (int)i;
	return (int)(sizeof(order) / sizeof(order[0]));
}

const char *fmf_status_worse(const char *a, const char *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return severity(b) < severity(a) ? b : a;
}

/* The check's `result` key on its own result line, so that what atex's
 * commands count (a failed line fails `atex test`) agrees with the
 * test's verdict: `info` makes a failure or an error "info", `xfail` a
 * failure "pass"; the check's own outcome stays in the note. */
static void interpret_line(json_t *result, const char *interpret,
			   const char *status)
{
	const char *note = json_string_value(json_object_get(result, "note"));
	const char *to = NULL, *why = NULL;
	char *text;

	if (!strcmp(interpret, "info") && strcmp(status, "pass") &&
	    strcmp(status, "info") && strcmp(status, "skip")) {
		to = "info";
		why = "informational (result: info)";
	} else if (!strcmp(interpret, "xfail") && !strcmp(status, "fail")) {
		to = "pass";
		why = "failed as expected (result: xfail)";
	}
	if (!to)
		return;
	text = note && *note ? atex_sprintf("%s; the check's outcome: %s, %s",
					    note, status, why)
			     : atex_sprintf("the check's outcome: %s, %s",
					    status, why);
	if (!text)
		return;
	json_object_set_new(result, "note", json_string(text));
	json_object_set_new(result, "status", json_string(to));
	free(text);
}

static const char *interpretation(json_t *checks, const char *how)
{
	json_t *c;
	size_t i;

	json_array_foreach(checks, i, c)
	{
		if (!strcmp(how, json_string_value(json_object_get(c, "how"))))
			return json_string_value(json_object_get(c, "result"));
	}
	return NULL;
}

void fmf_checks_seen(struct run *r, json_t *result)
{
	const char *interpret;
	const char *how = json_string_value(json_object_get(result, "check"));
	const char *event = json_string_value(json_object_get(result, "event"));
	const char *name = json_string_value(json_object_get(result, "name"));
	const char *status =
		json_string_value(json_object_get(result, "status"));
	const char *had;
	char *want;

	if (!r->checks_seen || !how || !event || !name || !status)
		return;
	want = atex_sprintf("check/%s/%s", how, event);
	if (!want || strcmp(want, name)) {
		free(want);
		return;
	}
	free(want);
	had = json_string_value(json_object_get(r->checks_seen, how));
	json_object_set_new(r->checks_seen, how,
			    json_string(fmf_status_worse(had, status)));
	interpret = interpretation(r->checks, how);
	if (interpret)
		interpret_line(result, interpret, status);
}

static int add_note(struct atex_buf *b, const char *fmt, const char *how)
{
	int rc = b->len ? atex_buf_puts(b, "; ") : 0;

	return rc | atex_buf_printf(b, fmt, how);
}

int fmf_checks_verdict(const char **status, char **note, json_t *checks,
		       json_t *seen)
{
	struct atex_buf b = ATEX_BUF_INIT;
	json_t *c;
	size_t i;
	int rc = 0;

	*status = NULL;
	*note = NULL;
	json_array_foreach(checks, i, c)
	{
		const char *how = json_string_value(json_object_get(c, "how"));
		const char *interpret =
			json_string_value(json_object_get(c, "result"));
		const char *got = json_string_value(json_object_get(seen, how));

		if (!got)
			continue;
		if (!strcmp(interpret, "info")) {
			got = "info";
			rc |= add_note(&b, "check '%s' is informational", how);
		} else if (!strcmp(interpret, "xfail")) {
			if (!strcmp(got, "pass")) {
				got = "fail";
				rc |= add_note(&b,
					       "check '%s' did not fail as "
					       "expected",
					       how);
			} else if (!strcmp(got, "fail")) {
				got = "pass";
				rc |= add_note(&b,
					       "check '%s' failed as expected",
					       how);
			}
		} else if (!strcmp(got, "fail")) {
			rc |= add_note(&b, "check '%s' failed", how);
		}
		*status = fmf_status_worse(*status, got);
	}
	if (rc) {
		atex_buf_free(&b);
		return ATEX_ENOMEM;
	}
	*note = b.len ? atex_buf_detach(&b) : NULL;
	atex_buf_free(&b);
	return 0;
}
