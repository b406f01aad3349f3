/*
 * plan.c - tmt plans and their step phases, read the way tmt reads them:
 * which node is a plan, the context its tests see, its environment, and
 * the phases of its discover, prepare, finish and execute steps.
 *
 * As tmt does (tmt/base/core.py, tmt/steps/__init__.py): a plan is a node
 * with `execute`. The plan's `context` key, under the caller's context,
 * adjusts the tests and decides phases' `when` (not the plan's own adjust
 * rules, as spec/plans/context.fmf says). Step phases get tmt's default
 * names and `how: shell`, run sorted by `order`, and only when their
 * `when` matches. A plan without `discover` has a bare shell phase, which
 * `execute: script` fills. A phase key or method atex does not act on is
 * refused: a run doing less than its plan says must not pass silently.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atex/fmf.h"
#include "fmf/discover_private.h"
#include "fmf/fmf_private.h"
#include "util/util.h"

/* A string or a list of strings as a new list; NULL with an error
 * otherwise. `what` names the key for the message. */
json_t *atex_fmf_plan_string_list(const json_t *value, const char *what,
				  const char *plan)
{
	json_t *list, *item;
	size_t i;

	if (!value)
		return json_array();
	if (json_is_string(value))
		return json_pack("[O]", value);
	if (!json_is_array(value))
		goto bad;
	json_array_foreach(value, i, item) if (!json_is_string(item)) goto bad;
	list = json_copy((json_t *)value);
	if (!list)
		atex_error_oom();
	return list;
bad:
	atex_error_set(ATEX_EFORMAT,
		       "plan %s: '%s' must be a string or a list of strings",
		       plan, what);
	return NULL;
}

/* A dict or a list of dicts (tmt's step forms) as a new list. */
static json_t *step_list(const json_t *value, const char *step,
			 const char *plan)
{
	json_t *item;
	size_t i;

	if (!value || json_is_null(value)) /* `discover:` left empty */
		return json_array();
	if (json_is_object(value))
		return json_pack("[O]", value);
	if (json_is_array(value)) {
		json_array_foreach(value, i,
				   item) if (!json_is_object(item)) goto bad;
		return json_copy((json_t *)value);
	}
bad:
	atex_error_set(ATEX_EFORMAT,
		       "plan %s: '%s' must be a mapping or a list of mappings",
		       plan, step);
	return NULL;
}

/* tmt accepts `environment` as a dict or as a list of "NAME=VALUE". */
int atex_fmf_plan_environment(json_t **out, const json_t *value,
			      const char *plan)
{
	json_t *env = json_object(), *item;
	const char *key;
	size_t i;

	*out = env;
	if (!env)
		return atex_error_oom();
	if (!value || json_is_null(value))
		return 0;
	if (json_is_object(value)) {
		json_object_foreach((json_t *)value, key, item)
		{
			char *text =
				json_is_string(item)
					? atex_strdup(json_string_value(item))
					: atex_py_str(item);

			if (!text || json_object_set_new(
					     env, key, json_string(text)) < 0) {
				free(text);
				return atex_error_oom();
			}
			free(text);
		}
		return 0;
	}
	if (!json_is_array(value))
		goto bad;
	json_array_foreach(value, i, item)
	{
		const char *s = json_string_value(item);
		const char *eq = s ? strchr(s, '=') : NULL;
		char *name;
		int rc;

		if (!eq || eq == s)
			goto bad;
		name = atex_strndup(s, (size_t)(eq - s));
		rc = name ? json_object_set_new(env, name, json_string(eq + 1))
			  : -1;
		free(name);
		if (rc < 0)
			return atex_error_oom();
	}
	return 0;
bad:
	return atex_error_set(ATEX_EFORMAT,
			      "plan %s: 'environment' must be a mapping or a "
			      "list of NAME=VALUE strings",
			      plan);
}

/* ------------------------------------------------------------------------
 * Step phases, as tmt reads them.
 */

/* "FILE: plan NAME: MESSAGE" as ATEX_EFORMAT. */
int atex_fmf_plan_error(const atex_fmf_discovery *d, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return atex_error_set(ATEX_EFORMAT, "%s%splan %s: %s",
			      d->plan_file ? d->plan_file : "",
			      d->plan_file ? ": " : "", d->plan_name, msg);
}

/* Python's int() of an `order` value, null being tmt's default (50).
 * Returns 0, or -1 when int() would fail. */
int atex_fmf_order_value(long *out, const json_t *v)
{
	const char *s;
	char *end;

	*out = 50;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v)) {
		*out = json_is_boolean(v)   ? json_is_true(v)
		       : json_is_integer(v) ? (long)json_integer_value(v)
					    : (long)json_real_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	errno = 0;
	*out = strtol(s, &end, 10);
	end += strspn(end, " \t\n\r");
	return end != s && !*end && !errno && s[strspn(s, " \t\n\r")] ? 0 : -1;
}

/* The keys each method atex runs reads, besides the ones every phase may
 * have. A key outside these is refused: tmt would act on it, atex would
 * not, and a run doing less than its plan says must not pass silently. */
static const char *const phase_keys[] = {"name", "how",	    "order",
					 "when", "summary", NULL};
static const char *const fmf_keys[] = {
	"url",	   "ref",     "path",	      "test",  "link", "filter",
	"include", "exclude", "adjust-tests", "prune", NULL};
static const char *const shell_discover_keys[] = {"tests", "url", "ref",
						  "keep-git-metadata", NULL};
static const char *const script_keys[] = {"script", NULL};
static const char *const install_keys[] = {"package", NULL};
static const char *const ansible_keys[] = {"playbook", "playbooks",
					   "extra-args", NULL};

static const struct method {
	const char *step, *how;
	const char *const *keys;
} methods[] = {
	{"discover", "fmf", fmf_keys},
	{"discover", "shell", shell_discover_keys},
	{"prepare", "shell", script_keys},
	{"prepare", "install", install_keys},
	{"prepare", "ansible", ansible_keys},
	{"finish", "shell", script_keys},
	{"finish", "ansible", ansible_keys},
};

bool atex_fmf_in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static int check_phase(const atex_fmf_discovery *d, const char *step,
		       const json_t *phase)
{
	const char *how = json_string_value(json_object_get(phase, "how"));
	const char *name = json_string_value(json_object_get(phase, "name"));
	const struct method *m = NULL;
	struct atex_buf known = ATEX_BUF_INIT;
	const char *key;
	json_t *v;
	int rc = 0;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(methods[i].step, step) &&
		    !strcmp(methods[i].how, how))
			m = &methods[i];
	if (!m)
		return atex_fmf_plan_error(
			d,
			"%s phase '%s': unsupported method 'how: "
			"%s' (atex runs %s)",
			step, name, how,
			!strcmp(step, "discover") ? "'fmf' and 'shell'"
			: !strcmp(step, "prepare")
				? "'ansible', 'install' and 'shell'"
				: "'ansible' and 'shell'");
	json_object_foreach((json_t *)phase, key, v)
	{
		if (atex_fmf_in_list(phase_keys, key) ||
		    atex_fmf_in_list(m->keys, key))
			continue;
		for (const char *const *k = phase_keys; *k; k++)
			atex_buf_printf(&known, "%s, ", *k);
		for (const char *const *k = m->keys; *k; k++)
			atex_buf_printf(&known, "%s%s", *k, k[1] ? ", " : "");
		rc = atex_fmf_plan_error(
			d,
			"%s phase '%s' (how: %s): key '%s' is not one "
			"atex reads (it reads %s)",
			step, name, how, key, known.ptr ? known.ptr : "");
		break;
	}
	atex_buf_free(&known);
	return rc;
}

/*
 * tmt's multihost key `where` (spec/plans/guest-topology: the guests or
 * roles a phase runs on) is refused by name, with its position in the
 * plan's file: atex runs a plan on one system at a time, so a phase meant
 * for some guests only would run where its author did not mean it to.
 * `raw` is the phase as written, for the position. Phases of every step,
 * execute too, where no other key is checked.
 */
static int check_where(const atex_fmf_discovery *d, const char *step,
		       const char *phase, const json_t *raw)
{
	struct atex_locator *loc;
	char at[1024] = "";

	if (!json_is_object(raw) || !json_object_get(raw, "where"))
		return 0;
	loc = atex_locator_new();
	if (loc && d->plan_file && atex_locator_add(loc, d->plan_file) == 0)
		atex_locate(at, sizeof(at), loc, d->plan_file, raw, "where");
	atex_locator_free(loc);
	if (!at[0] && d->plan_file)
		snprintf(at, sizeof(at), "%s: ", d->plan_file);
	return atex_error_set(ATEX_EFORMAT,
			      "%splan %s: %s phase %s: key 'where' (tmt's "
			      "multihost: the guests a phase runs on) is not "
			      "supported: atex runs a plan on one system at a "
			      "time, without guest roles",
			      at, d->plan_name, step, phase);
}

/*
 * A plan whose `provision` is a list of two or more guests (tmt's
 * multihost: roles client/server...) is refused as `where` is: atex runs
 * a plan on one system, and the plan's author meant several.
 */
static int check_multihost(const atex_fmf_discovery *d)
{
	/* The list itself is located: the plan is merged (inherited keys),
	 * its node in the file is not equal to it. */
	const json_t *prov = json_object_get(d->plan, "provision");
	struct atex_locator *loc;
	char at[1024] = "";

	if (!json_is_array(prov) || json_array_size(prov) < 2)
		return 0;
	loc = atex_locator_new();
	if (loc && d->plan_file && atex_locator_add(loc, d->plan_file) == 0)
		atex_locate(at, sizeof(at), loc, d->plan_file, prov, NULL);
	atex_locator_free(loc);
	if (!at[0] && d->plan_file)
		snprintf(at, sizeof(at), "%s: ", d->plan_file);
	return atex_error_set(ATEX_EFORMAT,
			      "%splan %s: provision: %zu guests: tmt's "
			      "multihost is not supported: atex runs a plan "
			      "on one system at a time, without guest roles",
			      at, d->plan_name, json_array_size(prov));
}

/* Whether a phase's `when` (a rule or a list of rules) lets it run: any
 * matching rule does; a rule the context cannot decide does not. Unlike
 * adjust, tmt matches `when` with fmf's default, case-sensitive context
 * (tmt/steps/__init__.py enabled_by_when): `distro == fedora-41` does
 * not hold for Fedora-41 there. */
static int phase_enabled(const atex_fmf_discovery *d, const json_t *phase,
			 const atex_fmf_context *ctx)
{
	json_t *rules = atex_fmf_plan_string_list(
		       json_object_get(phase, "when"), "when", d->plan_name),
	       *rule;
	atex_fmf_context *exact = NULL;
	size_t i;
	int rc = 1, decision = ATEX_FMF_FALSE;

	if (!rules)
		return atex_error_last_code();
	if (json_array_size(rules) == 0)
		goto out;
	rc = atex_fmf_context_copy(&exact, ctx);
	if (rc < 0)
		goto out;
	atex_fmf_context_set_case_sensitive(exact, true);
	json_array_foreach(rules, i, rule)
	{
		rc = atex_fmf_context_match(&decision, exact,
					    json_string_value(rule));
		if (rc < 0 || decision == ATEX_FMF_TRUE)
			break;
	}
	if (rc == 0)
		rc = decision == ATEX_FMF_TRUE;
out:
	atex_fmf_context_free(exact);
	json_decref(rules);
	return rc;
}

/* Gives each phase without a name tmt's default-0, default-1... (skipping
 * names taken) and refuses two phases with one name: tmt refuses them,
 * and several discover phases prefix their tests with their names. */
static int name_phases(const atex_fmf_discovery *d, json_t *list,
		       const char *step)
{
	size_t n = json_array_size(list), next = 0;

	for (size_t i = 0; i < n; i++) {
		json_t *phase = json_array_get(list, i);
		char name[64];
		bool taken;

		if (json_object_get(phase, "name"))
			continue;
		do {
			snprintf(name, sizeof(name), "default-%zu", next++);
			taken = false;
			for (size_t j = 0; j < n && !taken; j++) {
				const char *other = json_string_value(
					json_object_get(json_array_get(list, j),
							"name"));

				taken = other && !strcmp(other, name);
			}
		} while (taken);
		if (json_object_set_new(phase, "name", json_string(name)) < 0)
			return atex_error_oom();
	}
	for (size_t i = 0; i < n; i++) {
		const char *a = json_string_value(
			json_object_get(json_array_get(list, i), "name"));

		for (size_t j = i + 1; j < n; j++)
			if (!strcmp(a,
				    json_string_value(json_object_get(
					    json_array_get(list, j), "name"))))
				return atex_fmf_plan_error(
					d,
					"%s phases %zu and %zu are "
					"both named '%s'",
					step, i + 1, j + 1, a);
	}
	return 0;
}

/* The methods tmt has for each step, in the order it tries them
 * (tmt/steps/__init__.py delegate): `how` names the first one it is a
 * prefix of, so `how: sh` is shell. atex runs only some of them; the
 * others resolve all the same, to be refused by name. */
static const char *const tmt_discover[] = {"fmf", "shell", NULL};
static const char *const tmt_prepare[] = {"ansible", "artifact",
					  "feature", "install",
					  "shell",   "verify-installation",
					  NULL};
static const char *const tmt_finish[] = {"ansible", "shell", NULL};
static const char *const tmt_execute[] = {"tmt", "upgrade", NULL};

static const char *tmt_method(const char *step, const char *how)
{
	const char *const *m = !strcmp(step, "discover")  ? tmt_discover
			       : !strcmp(step, "prepare") ? tmt_prepare
			       : !strcmp(step, "finish")  ? tmt_finish
							  : tmt_execute;

	for (; *how && *m; m++)
		if (!strncmp(*m, how, strlen(how)))
			return *m;
	return how;
}

/* One phase as written, with `how` defaulted to shell (tmt for execute)
 * and completed as tmt completes it, checked. */
static int phase_copy(json_t **out, long *order, const atex_fmf_discovery *d,
		      const json_t *raw, const char *step, size_t index)
{
	json_t *phase = json_copy((json_t *)raw), *v;

	*out = phase;
	if (!phase)
		return atex_error_oom();
	v = json_object_get(phase, "name");
	if (v && !json_is_string(v))
		return atex_fmf_plan_error(
			d, "%s phase %zu: 'name' must be a string", step,
			index + 1);
	v = json_object_get(phase, "how");
	if (v && !json_is_null(v) && !json_is_string(v))
		return atex_fmf_plan_error(
			d, "%s phase %zu: 'how' must be a string", step,
			index + 1);
	if (json_object_set_new(
		    phase, "how",
		    json_string(tmt_method(
			    step, v && json_is_string(v) ? json_string_value(v)
				  : !strcmp(step, "execute") ? "tmt"
							     : "shell"))) < 0)
		return atex_error_oom();
	if (atex_fmf_order_value(order, json_object_get(phase, "order")) < 0)
		return atex_fmf_plan_error(
			d, "%s phase %zu: 'order' must be a number", step,
			index + 1);
	return 0;
}

/*
 * The phases of `step` as tmt reads them: a mapping or a list of
 * mappings, named, `how: shell` unless said, checked, sorted by `order`
 * (ties as written), without those whose `when` does not match. *total
 * counts every phase (tmt prefixes test names when there are several,
 * enabled or not).
 */
static int step_phases(json_t **out, size_t *total, const atex_fmf_discovery *d,
		       const char *step, const atex_fmf_context *ctx,
		       bool strict)
{
	json_t *raw =
		step_list(json_object_get(d->plan, step), step, d->plan_name);
	json_t *list = json_array(), *phase;
	size_t n = json_array_size(raw), i;
	long *orders = atex_calloc(n + 1, sizeof(*orders));
	int rc = 0;

	*out = NULL;
	*total = n;
	if (!raw || !list || !orders) {
		rc = raw ? atex_error_oom() : atex_error_last_code();
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++) {
		rc = phase_copy(&phase, &orders[i], d, json_array_get(raw, i),
				step, i);
		if (json_array_append_new(list, phase) < 0 && rc == 0)
			rc = atex_error_oom();
	}
	if (rc == 0)
		rc = name_phases(d, list, step);
	for (i = 0; i < n && rc == 0; i++) {
		char which[512];

		snprintf(which, sizeof(which), "'%s'",
			 json_string_value(json_object_get(
				 json_array_get(list, i), "name")));
		rc = check_where(d, step, which, json_array_get(raw, i));
		if (!rc)
			rc = check_phase(d, step, json_array_get(list, i));
		if (rc == ATEX_EFORMAT && !strict) {
			atex_log(ATEX_LOG_WARNING, "fmf",
				 "%s (listing the tests anyway)",
				 atex_error_last());
			rc = 0;
		}
	}
	/* Stable: insertion sort on a handful of phases. */
	for (i = 1; i < n && rc == 0; i++)
		for (size_t j = i; j > 0 && orders[j - 1] > orders[j]; j--) {
			long o = orders[j];
			json_t *a = json_incref(json_array_get(list, j - 1));

			orders[j] = orders[j - 1];
			orders[j - 1] = o;
			json_array_set(list, j - 1, json_array_get(list, j));
			json_array_set_new(list, j, a);
		}
	for (i = 0; i < json_array_size(list) && rc == 0;) {
		rc = phase_enabled(d, json_array_get(list, i), ctx);
		if (rc == 0)
			json_array_remove(list, i);
		else if (rc > 0)
			i++;
		rc = rc > 0 ? 0 : rc;
	}
	if (rc == 0)
		*out = json_incref(list);
out:
	free(orders);
	json_decref(list);
	json_decref(raw);
	return rc;
}

/* An ansible phase as tmt reads it: `playbook` (a string or a list)
 * followed by `playbooks`, in one `playbook` list; `extra-args` a string
 * (tmt splits it as a shell would). */
static int ansible_phase(json_t *phase, const atex_fmf_discovery *d,
			 const char *step)
{
	json_t *one = atex_fmf_plan_string_list(
		json_object_get(phase, "playbook"), "playbook", d->plan_name);
	json_t *more = one ? atex_fmf_plan_string_list(
				     json_object_get(phase, "playbooks"),
				     "playbooks", d->plan_name)
			   : NULL;
	json_t *args = json_object_get(phase, "extra-args");
	int rc = 0;

	if (!more) {
		rc = atex_error_last_code();
		goto out;
	}
	if (args && !json_is_null(args) && !json_is_string(args)) {
		rc = atex_fmf_plan_error(
			d,
			"%s phase '%s' (how: ansible): 'extra-args' must be "
			"a string",
			step,
			json_string_value(json_object_get(phase, "name")));
		goto out;
	}
	json_object_del(phase, "playbooks");
	if (json_array_extend(one, more) < 0 ||
	    json_object_set(phase, "playbook", one) < 0)
		rc = atex_error_oom();
out:
	json_decref(one);
	json_decref(more);
	return rc;
}

static int check_playbooks(const atex_fmf_discovery *d, const char *root,
			   const char *step, json_t *phases)
{
	json_t *phase, *book;
	size_t i, j;

	json_array_foreach(phases, i, phase)
	{
		const char *how =
			json_string_value(json_object_get(phase, "how"));
		const char *name =
			json_string_value(json_object_get(phase, "name"));

		if (!how || strcmp(how, "ansible"))
			continue;
		json_array_foreach(json_object_get(phase, "playbook"), j, book)
		{
			const char *raw = json_string_value(book);
			const char *rel = atex_playbook_relative(raw);
			char *path;
			bool ok, dir;

			if (raw && !*raw)
				return atex_fmf_plan_error(
					d,
					"%s phase '%s' (how: ansible): "
					"playbook '' (empty)",
					step, name);
			if (!rel)
				continue;
			if (!atex_path_stays_inside(rel))
				return atex_fmf_plan_error(
					d,
					"%s phase '%s' (how: ansible): "
					"playbook '%s' is not inside the tree",
					step, name, raw);
			path = atex_path_join(root, rel);
			if (!path)
				return atex_error_oom();
			ok = atex_path_exists(path) ||
			     (rel == raw && atex_playbook_is_collection(raw));
			dir = atex_path_is_dir(path);
			free(path);
			if (dir)
				return atex_fmf_plan_error(
					d,
					"%s phase '%s' (how: ansible): "
					"playbook '%s' is a directory in %s",
					step, name, raw, root);
			if (!ok)
				return atex_fmf_plan_error(
					d,
					"%s phase '%s' (how: ansible): "
					"playbook '%s' does not exist in %s",
					step, name, raw, root);
		}
	}
	return 0;
}

int atex_fmf_plan_check_playbooks(const atex_fmf_discovery *d, const char *root)
{
	int rc = check_playbooks(d, root, "prepare", d->prepare);

	return rc ? rc : check_playbooks(d, root, "finish", d->finish);
}

/* Normalises prepare/finish phases to {"how", "package"|"script"|
 * "playbook": [...], ...}. */
int atex_fmf_plan_steps(json_t **out, const atex_fmf_discovery *d,
			const char *step, const atex_fmf_context *ctx,
			bool strict)
{
	json_t *steps = NULL, *item;
	size_t i, total;
	int rc = step_phases(&steps, &total, d, step, ctx, strict);

	*out = NULL;
	if (rc < 0)
		return rc;
	json_array_foreach(steps, i, item)
	{
		const char *how =
			json_string_value(json_object_get(item, "how"));
		const char *key =
			!strcmp(how, "install") ? "package" : "script";
		json_t *list;

		if (!strcmp(how, "ansible")) {
			rc = ansible_phase(item, d, step);
			if (rc)
				break;
			continue;
		}
		list = atex_fmf_plan_string_list(json_object_get(item, key),
						 key, d->plan_name);
		if (!list) {
			rc = atex_error_last_code();
			break;
		}
		if (json_object_set_new(item, key, list) < 0) {
			rc = atex_error_oom();
			break;
		}
	}
	if (rc == 0)
		*out = json_incref(steps);
	json_decref(steps);
	return rc;
}

/* ------------------------------------------------------------------------
 * The plan: which node is one, its context, its execute and discover
 * steps.
 */

bool atex_fmf_is_plan(const json_t *data)
{
	return json_object_get(data, "execute") != NULL;
}

/* The caller's context over the plan's own `context` key (plan may be
 * NULL). Case-insensitive, as tmt adjusts its trees. */
int atex_fmf_plan_context(atex_fmf_context **out, const json_t *plan,
			  const atex_fmf_context *given)
{
	json_t *keys = json_object_get(plan, "context"), *value, *mine = NULL;
	const char *key;
	int rc;

	rc = atex_fmf_context_new(out);
	if (rc < 0)
		return rc;
	atex_fmf_context_set_case_sensitive(*out, false);
	json_object_foreach(keys, key, value)
	{
		rc = atex_fmf_context_set_json(*out, key, value);
		if (rc < 0)
			return rc;
	}
	mine = given ? atex_fmf_context_to_json(given) : NULL;
	json_object_foreach(mine, key, value)
	{
		rc = atex_fmf_context_set_json(*out, key, value);
		if (rc < 0)
			break;
	}
	json_decref(mine);
	return rc;
}

int atex_fmf_plan_not_found(const atex_fmf_tree *tree, const char *plan,
			    const char *why)
{
	struct atex_buf names = ATEX_BUF_INIT;
	const atex_fmf_node *node = NULL;

	while ((node = atex_fmf_tree_next(tree, node)))
		if (atex_fmf_node_is_selected(node) &&
		    atex_fmf_is_plan(atex_fmf_node_data(node)) &&
		    !json_is_false(json_object_get(atex_fmf_node_data(node),
						   "enabled")))
			atex_buf_printf(&names, "%s%s", names.len ? ", " : "",
					atex_fmf_node_name(node));
	atex_error_set(ATEX_ENOTFOUND, "%s: %s'%s'%s (plans here: %s)",
		       atex_fmf_tree_root(tree), why ? "" : "no plan ", plan,
		       why ? why : "", names.len ? names.ptr : "none");
	atex_buf_free(&names);
	return ATEX_ENOTFOUND;
}

/* A plan without `discover` tests what `execute: script` says: tmt makes
 * a shell discover phase of it with tests /script-00, /script-01... (the
 * execute step's duration, 1h by default). A plan with both is refused,
 * as tmt refuses it. */
static int execute_scripts(atex_fmf_discovery *d, json_t *phases)
{
	json_t *exec = json_object_get(d->plan, "execute"), *scripts, *phase,
	       *tests;
	const json_t *duration;
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_array(exec))
		exec = json_array_get(exec, 0);
	scripts = atex_fmf_plan_string_list(json_object_get(exec, "script"),
					    "script", d->plan_name);
	if (!scripts)
		return atex_error_last_code();
	if (!json_array_size(scripts)) {
		json_decref(scripts);
		return 0;
	}
	phase = json_array_get(phases, 0);
	json_object_foreach(phase, key, v)
	{
		if (strcmp(key, "name") && strcmp(key, "how")) {
			json_decref(scripts);
			return atex_fmf_plan_error(
				d, "use either 'discover' or 'execute' "
				   "to define tests, not both");
		}
	}
	if (strcmp(json_string_value(json_object_get(phase, "how")), "shell")) {
		json_decref(scripts);
		return atex_fmf_plan_error(
			d, "tests of 'execute: script' need a 'shell' "
			   "discover phase");
	}
	duration = json_object_get(exec, "duration");
	tests = json_array();
	json_array_foreach(scripts, i, v)
	{
		char name[32];

		snprintf(name, sizeof(name), "script-%02zu", i);
		json_array_append_new(
			tests,
			json_pack("{ss sO so}", "name", name, "test", v,
				  "duration",
				  duration ? json_incref((json_t *)duration)
					   : json_string("1h")));
	}
	json_decref(scripts);
	return json_object_set_new(phase, "tests", tests) < 0 ? atex_error_oom()
							      : 0;
}

/* tmt refuses a plan whose execute method it does not have. atex runs
 * only tmt's own (`how: tmt`): `upgrade` is refused too, except when only
 * listing tests, where it is a warning as prepare phases are. */
int atex_fmf_plan_check_execute(const atex_fmf_discovery *d, bool strict)
{
	const json_t *value = json_object_get(d->plan, "execute");
	json_t *raw, *phase, *how;
	const char *method;
	size_t i;
	int rc = 0;

	rc = check_multihost(d);
	if (rc && strict)
		return rc;
	if (rc) {
		atex_log(ATEX_LOG_WARNING, "fmf",
			 "%s (listing the tests anyway)", atex_error_last());
		rc = 0;
	}
	if (json_is_null(value))
		return 0;
	raw = step_list(value, "execute", d->plan_name);
	if (!raw)
		return atex_error_last_code();
	json_array_foreach(raw, i, phase)
	{
		char which[32];

		snprintf(which, sizeof(which), "%zu", i + 1);
		rc = check_where(d, "execute", which, phase);
		if (rc && strict)
			break;
		if (rc) {
			atex_log(ATEX_LOG_WARNING, "fmf",
				 "%s (listing the tests anyway)",
				 atex_error_last());
			rc = 0;
		}
		how = json_object_get(phase, "how");
		if (how && !json_is_null(how) && !json_is_string(how)) {
			rc = atex_fmf_plan_error(
				d,
				"execute phase %zu: 'how' must be a "
				"string",
				i + 1);
			break;
		}
		method = tmt_method("execute", json_is_string(how)
						       ? json_string_value(how)
						       : "tmt");
		if (!atex_fmf_in_list(tmt_execute, method)) {
			rc = atex_fmf_plan_error(
				d,
				"execute phase %zu: unsupported method "
				"'how: %s' (tmt has 'tmt' and "
				"'upgrade')",
				i + 1, method);
			break;
		}
		if (!strcmp(method, "tmt"))
			continue;
		rc = atex_fmf_plan_error(
			d,
			"execute phase %zu: unsupported method 'how: "
			"%s' (atex runs 'tmt')",
			i + 1, method);
		if (strict)
			break;
		atex_log(ATEX_LOG_WARNING, "fmf",
			 "%s (listing the tests anyway)", atex_error_last());
		rc = 0;
	}
	json_decref(raw);
	return rc;
}

/* The discover phases to run, in order; *total counts all of them. */
int atex_fmf_plan_discover_phases(json_t **out, size_t *total,
				  atex_fmf_discovery *d,
				  const atex_fmf_context *ctx)
{
	json_t *phases = NULL;
	int rc;

	if (json_is_null(json_object_get(d->plan, "discover")) ||
	    !json_object_get(d->plan, "discover")) {
		/* tmt's default: a bare shell phase, which lists nothing
		 * unless `execute` has scripts. */
		phases = json_pack("[{ss ss}]", "name", "default-0", "how",
				   "shell");
		*total = 1;
		rc = phases ? 0 : atex_error_oom();
	} else {
		rc = step_phases(&phases, total, d, "discover", ctx, true);
	}
	if (rc == 0 && json_array_size(phases))
		rc = execute_scripts(d, phases);
	*out = phases;
	return rc;
}
