/*
 * select.c - the tests a discover phase selects, in tmt's order, as tmt
 * selects them (tmt/base/core.py Tree.tests, tmt/steps/discover/fmf.py
 * and shell.py).
 *
 * An fmf phase selects tests from the plan's tree, from `path` inside it,
 * or from a git repository (`url`, `ref`, see fetch.c): nodes with a
 * `test` key, their data after `adjust-tests`, per `test` name (repeats
 * kept) sorted by `order`, then kept by `filter` (over tmt's exported test
 * data), `link`, `exclude`, `include`, keeping only those whose `manual`
 * is false and `enabled` true (absent, or exactly the boolean, as tmt
 * tests with `is`). A shell phase lists its tests. With several phases,
 * each test name is prefixed with "/<phase name>". Without a plan, every
 * test of the tree is selected, as `tmt tests ls` lists them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atex/fmf.h"
#include "fmf/discover_private.h"
#include "fmf/fmf_private.h"
#include "util/pyre.h"
#include "util/util.h"

/* ------------------------------------------------------------------------
 * Selecting tests.
 */

static char *concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = atex_malloc(la + lb + 1);

	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

/* "FILE: test NAME: 'KEY' WHAT (it is TYPE)" for a test's metadata; no
 * type without `value`. */
static int bad_key(const char *file, const char *name, const char *key,
		   const char *what, const json_t *value)
{
	return atex_error_set(
		ATEX_EFORMAT, "%s%stest %s: '%s' %s%s%s%s", file ? file : "",
		file ? ": " : "", name, key, what, value ? " (it is " : "",
		value ? atex_py_type(value) : "", value ? ")" : "");
}

/* The keys atex itself reads, checked once here: a wrong type would
 * otherwise surface only on a system, after one was provisioned for it,
 * or not at all (a list where a mapping belongs is silently ignored). */
static int check_test(const char *file, const char *name, const json_t *data,
		      const char *root)
{
	json_t *v, *item;
	const char *key;
	double seconds;
	struct stat sb;
	char *dir;
	int rc;

	v = json_object_get(data, "test");
	if (!json_is_string(v))
		return bad_key(file, name, "test",
			       "must be a shell command string", v);
	if (!json_string_value(v)[strspn(json_string_value(v), " \t\n")])
		return bad_key(file, name, "test", "is empty", NULL);
	v = json_object_get(data, "duration");
	if (v && !json_is_string(v) && !json_is_integer(v))
		return bad_key(file, name, "duration",
			       "must be a duration such as "
			       "'5m' or '1h 30m'",
			       v);
	/* A sum of zero ("*2", "0") is tmt's default, 5m, multiplied: only
	 * the syntax can be wrong. */
	if (json_is_string(v) &&
	    atex_duration_parse(&seconds, json_string_value(v)) < 0)
		return bad_key(file, name, "duration",
			       "must be a duration such as '5m', '1h 30m' or "
			       "'*2'",
			       NULL);
	if (json_is_integer(v) && json_integer_value(v) < 0)
		return bad_key(file, name, "duration", "must not be negative",
			       v);
	v = json_object_get(data, "tty");
	if (v && !json_is_boolean(v))
		return bad_key(file, name, "tty", "must be true or false", v);
	v = json_object_get(data, "environment");
	if (v && !json_is_object(v))
		return bad_key(file, name, "environment",
			       "must be a mapping of "
			       "variable names to values",
			       v);
	json_object_foreach(v, key, item)
	{
		if (json_is_object(item) || json_is_array(item) ||
		    json_is_null(item))
			return bad_key(file, name, "environment",
				       "values must be "
				       "strings, numbers or booleans",
				       item);
	}
	v = json_object_get(data, "path");
	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad_key(file, name, "path",
			       "must be a directory of the tree", v);
	dir = atex_sprintf("%s/%s", root, json_string_value(v));
	if (!dir)
		return ATEX_ENOMEM;
	rc = stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)
		     ? 0
		     : atex_error_set(ATEX_EFORMAT,
				      "%s%stest %s: 'path' %s: no such "
				      "directory in the tree",
				      file ? file : "", file ? ": " : "", name,
				      json_string_value(v));
	free(dir);
	return rc;
}

/* A test found by a phase, before it is kept or not. */
struct cand {
	const atex_fmf_node *node; /* NULL for a shell phase's test */
	const char *name;	   /* the node's, or the shell test's */
	const char *file;	   /* for messages; may be NULL */
	const char *dir;	   /* relative to the tree root */
	json_t *data;		   /* a reference */
	long order;
};

static void cand_free(void *p)
{
	struct cand *c = p;

	if (c)
		json_decref(c->data);
	free(c);
}

/* What narrows a phase's tests: from the phase, the caller's options. */
struct selector {
	const char *prefix; /* "" or "/phase" */
	const char *root;   /* the tree root tests run from */
	json_t *entries;    /* `test`: [{"name": RE[, "rule": {...}]}] */
	atex_fmf_filter **filters;
	size_t n_filters;
	json_t *links, *includes, *excludes;
	json_t *rules; /* adjust-tests */
	const atex_fmf_context *ctx;
	const struct atex_fmf_discover_options *o;
};

/* Whether `name` matches a regex of `list` (re.search); negative on a
 * bad regex. */
static int any_search(const json_t *list, const char *name)
{
	json_t *item;
	size_t i;
	int rc;

	json_array_foreach(list, i, item)
	{
		rc = atex_pyre_search_str(json_string_value(item), name);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int any_search_c(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		int rc = atex_pyre_search_str(list[i], name);

		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Adds a [True, "true"] form for every boolean, as tmt does before
 * filtering, so "enabled: true" matches. */
static int bools_lowercase(json_t *vars)
{
	const char *key;
	json_t *v;

	json_object_foreach(vars, key, v)
	{
		if (!json_is_boolean(v))
			continue;
		if (json_object_set_new(
			    vars, key,
			    json_pack("[Os]", v,
				      json_is_true(v) ? "true" : "false")) < 0)
			return atex_error_oom();
	}
	return 0;
}

/* A string as a one-item list, for tmt's string-list keys. */
static int listify(json_t *vars, const char *key)
{
	json_t *v = json_object_get(vars, key);

	if (!v || json_is_array(v))
		return 0;
	return json_object_set_new(vars, key,
				   json_is_null(v) ? json_array()
						   : json_pack("[O]", v));
}

/*
 * The test's metadata as tmt filters it: its data with every key tmt
 * defines for a test set to its default when missing (tmt exports them
 * all), string lists as lists, `tier` as a string, `name` the test's
 * name, and booleans also in lowercase text. A new object.
 */
static json_t *filter_vars(const struct cand *c)
{
	static const char *const lists[] = {"author",	 "contact",
					    "component", "require",
					    "recommend", "tag",
					    "link",	 "where",
					    "check",	 "restart-on-exit-code",
					    NULL};
	json_t *vars = json_copy(c->data), *v;
	char *path = NULL, *tier = NULL;
	int rc;

	if (!vars)
		return NULL;
	path = strcmp(c->dir, ".") ? atex_sprintf("/%s", c->dir)
				   : atex_strdup("/");
	rc = path ? 0 : -1;
	for (const char *const *k = lists; *k && rc == 0; k++)
		if (!json_object_get(vars, *k))
			rc = json_object_set_new(vars, *k, json_array());
		else
			rc = listify(vars, *k);
	v = json_object_get(vars, "tier");
	if (rc == 0 && v && !json_is_null(v) && !json_is_string(v)) {
		tier = atex_py_str(v);
		rc = tier ? json_object_set_new(vars, "tier", json_string(tier))
			  : -1;
	}
	if (rc == 0)
		rc = json_object_set_new(vars, "name", json_string(c->name));
	if (rc == 0) {
		json_t *defaults = json_pack(
			"{sn sn sn sn ss sb sb so ss sb si ss sb si ss so}",
			"summary", "description", "id", "tier", "path", path,
			"manual", 0, "tty", 0, "environment", json_object(),
			"framework", "shell", "enabled", 1, "order", 50,
			"duration", "5m", "restart-with-reboot", 0,
			"restart-max-count", 1, "result", "respect", "sources",
			c->file ? json_pack("[s]", c->file) : json_array());
		rc = defaults ? json_object_update_missing(vars, defaults) : -1;
		json_decref(defaults);
	}
	if (rc == 0)
		rc = bools_lowercase(vars);
	free(path);
	free(tier);
	if (rc < 0) {
		json_decref(vars);
		atex_error_oom();
		return NULL;
	}
	return vars;
}

/* Link relations of tmt's spec (a mapping with none of them is an fmf
 * id, related). */
static const char *const relations[] = {
	"verifies",   "verified-by",   "implements", "implemented-by",
	"documents",  "documented-by", "blocks",     "blocked-by",
	"duplicates", "duplicated-by", "parent",     "child",
	"relates",    "test-script",   NULL};

/* Whether one link of the test matches the needle "[RELATION:]TARGET"
 * (both regexes, re.search; an fmf id target by its `name`). */
static int link_matches(const json_t *link, const char *needle)
{
	const char *colon = strchr(needle, ':'), *relation = "relates";
	const json_t *target = link;
	char *rel_re = colon ? atex_strndup(needle, (size_t)(colon - needle))
			     : atex_strdup(".*");
	const char *target_re = colon ? colon + 1 : needle;
	const char *key;
	json_t *v;
	int rc;

	if (!rel_re)
		return atex_error_oom();
	if (json_is_object(link)) {
		json_object_foreach((json_t *)link, key, v)
		{
			if (atex_fmf_in_list(relations, key)) {
				relation = key;
				target = v;
			}
		}
	}
	if (json_is_object(target))
		target = json_object_get(target, "name");
	rc = json_is_string(target) ? atex_pyre_search_str(rel_re, relation)
				    : 0;
	if (rc > 0)
		rc = atex_pyre_search_str(target_re, json_string_value(target));
	free(rel_re);
	return rc;
}

/* tmt's `link` selection: any needle matching any link of the test. */
static int links_match(const json_t *needles, const json_t *data)
{
	json_t *links = json_object_get(data, "link"), *link, *needle;
	size_t i, j;
	int rc = 0;

	if (!json_array_size(needles))
		return 1;
	json_array_foreach(needles, i, needle)
	{
		/* A single link (a string or a mapping) is a list of one. */
		if (!json_is_array(links)) {
			rc = link_matches(links, json_string_value(needle));
			if (rc != 0)
				return rc;
			continue;
		}
		json_array_foreach(links, j, link)
		{
			rc = link_matches(link, json_string_value(needle));
			if (rc != 0)
				return rc;
		}
	}
	return rc;
}

/* Whether tmt keeps a test found by a phase: filters over its exported
 * metadata (no node name: a term without a key matches nothing), links,
 * exclude and include by name, not manual, enabled. tmt tests `manual is
 * False` and `enabled is True`: a value other than the boolean (null,
 * "false", 1) drops the test. */
static int keep(const struct selector *s, const struct cand *c)
{
	json_t *v = json_object_get(c->data, "manual"), *vars = NULL;
	int rc = 1;

	if (v && !json_is_false(v))
		return 0;
	v = json_object_get(c->data, "enabled");
	if (v && !json_is_true(v))
		return 0;
	if (s->n_filters && !(vars = filter_vars(c)))
		return ATEX_ENOMEM;
	for (size_t i = 0; i < s->n_filters && rc > 0; i++)
		rc = atex_fmf_filter_match(s->filters[i], vars, NULL);
	json_decref(vars);
	if (rc > 0)
		rc = links_match(s->links, c->data);
	if (rc > 0 && (rc = any_search(s->excludes, c->name)) >= 0)
		rc = !rc;
	if (rc > 0 &&
	    (rc = any_search_c(s->o->excludes, s->o->n_excludes, c->name)) >= 0)
		rc = !rc;
	if (rc > 0 && json_array_size(s->includes))
		rc = any_search(s->includes, c->name);
	return rc;
}

/* Applies adjust rules given by the plan (`adjust-tests`, a test
 * entry's own rule) to a copy of a node's data, after its own adjust as
 * fmf applies additional rules. A new reference in *out. */
static int adjust_extra(json_t **out, const atex_fmf_node *node,
			const json_t *rules, const atex_fmf_context *ctx,
			const char *plan)
{
	struct atex_merge m = {.node = atex_fmf_node_name(node),
			       .skip_adjust_keys = true};
	json_t *data = json_copy(atex_fmf_node_data(node)), *rule;
	size_t i;
	int rc = data ? 0 : atex_error_oom(), decision;

	json_array_foreach(rules, i, rule)
	{
		json_t *cont = json_object_get(rule, "continue"),
		       *when = json_object_get(rule, "when");

		if (rc < 0)
			break;
		decision = ATEX_FMF_TRUE;
		if (when && (rc = atex_fmf_context_match_json(&decision, ctx,
							      when)) < 0)
			break;
		if (decision != ATEX_FMF_TRUE)
			continue;
		rc = atex_fmf_merge(data, rule, &m);
		if (cont && json_is_false(cont))
			break;
	}
	if (rc < 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", atex_error_last());
		rc = atex_error_set(rc, "plan %s: adjust-tests: %s", plan, msg);
		json_decref(data);
		data = NULL;
	}
	*out = data;
	return rc;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = *(struct cand *const *)a,
			  *y = *(struct cand *const *)b;

	return (x->order > y->order) - (x->order < y->order);
}

/* Stable sort by `order`: qsort is not stable, so ties fall back to the
 * position, kept in `seq`. */
static void sort_by_order(struct atex_vec *v)
{
	/* Insertion sort: stable, and lists are in tree order already, so
	 * it is linear unless `order` says otherwise. */
	for (size_t i = 1; i < v->len; i++)
		for (size_t j = i;
		     j > 0 && cand_cmp(&v->items[j - 1], &v->items[j]) > 0;
		     j--) {
			void *t = v->items[j];

			v->items[j] = v->items[j - 1];
			v->items[j - 1] = t;
		}
}

static int new_cand(struct atex_vec *out, const atex_fmf_node *node,
		    const char *name, const char *file, const char *dir,
		    json_t *data)
{
	struct cand *c = atex_calloc(1, sizeof(*c));

	if (!c) {
		json_decref(data);
		return ATEX_ENOMEM;
	}
	*c = (struct cand){node, name, file, dir, data, 50};
	if (atex_fmf_order_value(&c->order, json_object_get(data, "order")) <
	    0) {
		cand_free(c);
		return bad_key(file, name, "order", "must be a whole number",
			       json_object_get(data, "order"));
	}
	if (atex_vec_push(out, c) < 0) {
		cand_free(c);
		return atex_error_oom();
	}
	return 0;
}

/* Whether a node named `name` is taken, and the rule of the `test` entry
 * that took it (NULL: none) in *rule. tmt's way: `entry` (NULL: any name)
 * and one of the caller's names must match. Python ATEX's way
 * (compat_python_atex): one of the phase's entries or of the caller's
 * names (none at all: any name). Negative on a bad regex. */
static int name_taken(const struct selector *s, const json_t *entry,
		      const char *name, const json_t **rule)
{
	const char *re = json_string_value(json_object_get(entry, "name"));
	json_t *e;
	size_t i;
	int rc;

	*rule = NULL;
	if (s->o->compat_python_atex) {
		if (!json_array_size(s->entries) && !s->o->n_tests)
			return 1;
		json_array_foreach(s->entries, i, e)
		{
			rc = atex_pyre_search_str(
				json_string_value(json_object_get(e, "name")),
				name);
			if (rc != 0) {
				*rule = json_object_get(e, "rule");
				return rc;
			}
		}
		return any_search_c(s->o->tests, s->o->n_tests, name);
	}
	rc = re ? atex_pyre_search_str(re, name) : 1;
	if (rc > 0 && s->o->n_tests)
		rc = any_search_c(s->o->tests, s->o->n_tests, name);
	if (rc > 0)
		*rule = json_object_get(entry, "rule");
	return rc;
}

/* The nodes of `tree` with a `test` key (stories too) that name_taken()
 * takes for `entry`, each with its data after the phase's `adjust-tests`
 * and the entry's rule, sorted by `order`. */
static int fmf_cands(struct atex_vec *out, const atex_fmf_tree *tree,
		     const json_t *entry, const struct selector *s,
		     const char *plan)
{
	const atex_fmf_node *node = NULL;
	int rc = 0;

	while (rc == 0 && (node = atex_fmf_tree_next(tree, node))) {
		const char *name = atex_fmf_node_name(node);
		const json_t *rule;
		json_t *data = NULL, *rules;
		int match;

		if (!atex_fmf_node_is_selected(node))
			continue;
		match = name_taken(s, entry, name, &rule);
		if (match <= 0) {
			rc = match;
			continue;
		}
		rules = rule ? json_copy(s->rules) : json_incref(s->rules);
		if (!rules ||
		    (rule && json_array_append(rules, (json_t *)rule) < 0))
			rc = atex_error_oom();
		if (rc == 0 && json_array_size(rules))
			rc = adjust_extra(&data, node, rules, s->ctx, plan);
		json_decref(rules);
		if (rc < 0)
			break;
		if (!data)
			data = json_incref(atex_fmf_node_data(node));
		if (!json_object_get(data, "test")) {
			json_decref(data);
			continue;
		}
		rc = new_cand(out, node, name, atex_fmf_node_file(node),
			      atex_fmf_node_dir(node), data);
	}
	sort_by_order(out);
	return rc;
}

/* Adds a kept test under the phase prefix. */
static int add_test(atex_fmf_discovery *d, const struct selector *s,
		    const struct cand *c)
{
	const char *path = json_string_value(json_object_get(c->data, "path"));
	struct test *t;
	int rc = check_test(c->file, c->name, c->data, s->root);

	if (rc < 0)
		return rc;
	t = atex_calloc(1, sizeof(*t));
	if (!t)
		return ATEX_ENOMEM;
	t->name = t->own_name = concat(s->prefix, c->name);
	/* A name is a path below the results directory: never "..". */
	rc = atex_fmf_check_test_name(c->node, c->name);
	if (rc < 0 && !c->node)
		atex_error_prefix("plan %s", d->plan_name);
	if (rc == 0 && s->prefix[0] && t->name &&
	    (rc = atex_fmf_check_test_name(NULL, t->name)) < 0)
		atex_error_prefix("plan %s: discover phase '%s'", d->plan_name,
				  s->prefix + 1);
	if (rc < 0) {
		atex_fmf_test_free(t);
		return rc;
	}
	t->root = s->root;
	t->dir = t->own_dir = atex_strdup(c->dir);
	/* tmt lets a test say where it runs with `path` (from the root). */
	if (path) {
		path += strspn(path, "/");
		free(t->own_dir);
		t->dir = t->own_dir = atex_strdup(*path ? path : ".");
	}
	t->data = json_incref(c->data);
	if (!t->name || !t->dir || atex_vec_push(&d->tests, t) < 0) {
		atex_fmf_test_free(t);
		return atex_error_oom();
	}
	return 0;
}

/* Keeps and adds what `cands` holds, in order. */
static int add_kept(atex_fmf_discovery *d, const struct selector *s,
		    const struct atex_vec *cands)
{
	int rc = 0;

	for (size_t i = 0; i < cands->len && rc >= 0; i++) {
		const struct cand *c = cands->items[i];

		/* tmt builds every test its names select before filtering,
		 * and refuses one whose `test` is null even if a filter
		 * would drop it: a broken test never passes silently. */
		if (json_is_null(json_object_get(c->data, "test")))
			return bad_key(c->file, c->name, "test",
				       "must be a shell command string",
				       json_null());
		rc = keep(s, cands->items[i]);
		if (rc > 0)
			rc = add_test(d, s, cands->items[i]);
	}
	return rc < 0 ? rc : 0;
}

/* An fmf phase on `tree`: per `test` entry (or once for all), the
 * matching tests sorted by `order`, then kept or not. A test an entry
 * names twice comes twice, as tmt runs it. Python ATEX's way takes every
 * test once, in one pass over all entries. */
static int select_fmf(atex_fmf_discovery *d, const atex_fmf_tree *tree,
		      const struct selector *s)
{
	size_t n = json_array_size(s->entries), i;
	int rc = 0;

	if (s->o->compat_python_atex)
		n = 1;
	for (i = 0; rc == 0 && i < (n ? n : 1); i++) {
		const json_t *entry = s->o->compat_python_atex
					      ? NULL
					      : json_array_get(s->entries, i);
		struct atex_vec cands = ATEX_VEC_INIT;

		rc = fmf_cands(&cands, tree, entry, s, d->plan_name);
		if (rc == 0)
			rc = add_kept(d, s, &cands);
		atex_vec_free_all(&cands, cand_free);
	}
	return rc;
}

/* A shell phase's test: a mapping with `name` and `test`; its node name
 * is the name under "/" (os.path.join, as tmt grows its tree), its data
 * the rest, with tmt's duration for such tests (1h) unless given. */
static int shell_cand(struct atex_vec *out, atex_fmf_discovery *d,
		      const json_t *item, size_t index, char **name)
{
	const char *given = json_string_value(json_object_get(item, "name"));
	json_t *data;

	*name = NULL;
	if (!json_is_object(item) || !given || !*given)
		return atex_fmf_plan_error(
			d,
			"discover 'tests' item %zu must be a "
			"mapping with a 'name'",
			index + 1);
	*name = given[0] == '/' ? atex_strdup(given)
				: atex_sprintf("/%s", given);
	data = json_copy((json_t *)item);
	if (!*name || !data || json_object_del(data, "name") < 0 ||
	    (!json_object_get(data, "duration") &&
	     json_object_set_new(data, "duration", json_string("1h")) < 0)) {
		json_decref(data);
		return atex_error_oom();
	}
	return new_cand(out, NULL, *name, d->plan_file, ".", data);
}

/* tmt grows a shell phase's tests as children of an fmf tree: a name
 * listed again updates the first test of that name (its keys win) instead
 * of adding one. Merges the last candidate into an earlier one of its
 * name and drops it; false when the name is new. */
static bool shell_merge(struct atex_vec *cands)
{
	struct cand *last = cands->items[cands->len - 1], *c;

	for (size_t i = 0; i + 1 < cands->len; i++) {
		c = cands->items[i];
		if (strcmp(c->name, last->name))
			continue;
		json_object_update(c->data, last->data);
		/* Both orders were checked: the merged one is valid. */
		atex_fmf_order_value(&c->order,
				     json_object_get(c->data, "order"));
		cand_free(atex_vec_pop(cands));
		return true;
	}
	return false;
}

/* A shell phase: the tests it lists, with the caller's --test names,
 * sorted by `order`, then kept or not. */
static int select_shell(atex_fmf_discovery *d, const json_t *phase,
			const struct selector *s)
{
	json_t *tests = json_object_get(phase, "tests"), *item;
	struct atex_vec cands = ATEX_VEC_INIT, names = ATEX_VEC_INIT;
	size_t i;
	int rc = 0;

	if (tests && !json_is_array(tests))
		return atex_fmf_plan_error(
			d,
			"discover phase '%s': 'tests' must be a "
			"list of mappings",
			json_string_value(json_object_get(phase, "name")));
	json_array_foreach(tests, i, item)
	{
		char *name = NULL;
		int match;

		rc = shell_cand(&cands, d, item, i, &name);
		if (name && atex_vec_push(&names, name) < 0) {
			free(name);
			rc = atex_error_oom();
		}
		if (rc < 0)
			break;
		if (shell_merge(&cands))
			continue;
		match = s->o->n_tests
				? any_search_c(s->o->tests, s->o->n_tests, name)
				: 1;
		if (match <= 0) {
			cand_free(atex_vec_pop(&cands));
			rc = match;
			if (rc < 0)
				break;
		}
	}
	sort_by_order(&cands);
	if (rc == 0)
		rc = add_kept(d, s, &cands);
	atex_vec_free_all(&cands, cand_free);
	/* Names are copied by add_test: free them only now. */
	atex_vec_free_all(&names, free);
	return rc;
}

/* A `test` value of an fmf phase as entries {"name": RE[, "rule": R]}:
 * names, or mappings whose other keys are an adjust rule for the tests
 * they select. */
static json_t *test_entries(const atex_fmf_discovery *d, const json_t *value)
{
	json_t *list = json_array(), *item, *single = NULL;
	size_t i;

	if (!list)
		return NULL;
	if (value && !json_is_array(value))
		value = single = json_pack("[O]", value);
	json_array_foreach(value, i, item)
	{
		json_t *name = json_is_object(item)
				       ? json_object_get(item, "name")
				       : item;
		json_t *entry = json_is_string(name)
					? json_pack("{sO}", "name", name)
					: NULL;

		if (!entry) {
			atex_fmf_plan_error(
				d,
				"discover 'test' item %zu must be a "
				"name or a mapping with a 'name'",
				i + 1);
			goto fail;
		}
		if (json_is_object(item)) {
			json_t *rule = json_copy(item);

			if (!rule || json_object_del(rule, "name") < 0 ||
			    json_object_set_new(entry, "rule", rule) < 0) {
				json_decref(entry);
				atex_error_oom();
				goto fail;
			}
		}
		if (json_array_append_new(list, entry) < 0)
			goto fail;
	}
	json_decref(single);
	return list;
fail:
	json_decref(single);
	json_decref(list);
	return NULL;
}

/* adjust-tests: a rule or a list of rules, each a mapping. */
static json_t *adjust_rules(const atex_fmf_discovery *d, const json_t *value)
{
	json_t *item;
	size_t i;

	if (!value || json_is_null(value))
		return json_array();
	if (json_is_object(value))
		return json_pack("[O]", value);
	if (!json_is_array(value))
		goto bad;
	json_array_foreach(value, i, item) if (!json_is_object(item)) goto bad;
	return json_copy((json_t *)value);
bad:
	atex_fmf_plan_error(
		d, "'adjust-tests' must be an adjust rule or a list of "
		   "rules");
	return NULL;
}

static void selector_free(struct selector *s)
{
	for (size_t i = 0; i < s->n_filters; i++)
		atex_fmf_filter_free(s->filters[i]);
	free(s->filters);
	json_decref(s->entries);
	json_decref(s->links);
	json_decref(s->includes);
	json_decref(s->excludes);
	json_decref(s->rules);
}

/* Compiles the filters: the caller's when given (they replace the
 * phase's, as `tmt run tests --filter` does), else the phase's; with
 * compat_python_atex both (all must match, as Python ATEX merges them). */
static int selector_filters(struct selector *s, const json_t *own)
{
	bool both = s->o->compat_python_atex;
	size_t n_own = both || !s->o->n_filters ? json_array_size(own) : 0;
	size_t n_caller = both || s->o->n_filters ? s->o->n_filters : 0;
	size_t n = n_own + n_caller;
	int rc = 0;

	s->filters = atex_calloc(n + 1, sizeof(*s->filters));
	if (!s->filters)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++, s->n_filters++)
		rc = atex_fmf_filter_new(
			&s->filters[i],
			i < n_own ? json_string_value(json_array_get(own, i))
				  : s->o->filters[i - n_own]);
	return rc;
}

/* The selector of a phase (an fmf phase's keys; a shell phase has only
 * the caller's). */
static int selector_init(struct selector *s, const atex_fmf_discovery *d,
			 const json_t *phase, bool fmf)
{
	const char *plan = d->plan_name ? d->plan_name : "-";
	json_t *filters = NULL;
	int rc;

	if (fmf) {
		s->entries = test_entries(d, json_object_get(phase, "test"));
		s->rules =
			adjust_rules(d, json_object_get(phase, "adjust-tests"));
		filters = atex_fmf_plan_string_list(
			json_object_get(phase, "filter"), "filter", plan);
		s->links = atex_fmf_plan_string_list(
			json_object_get(phase, "link"), "link", plan);
		s->includes = atex_fmf_plan_string_list(
			json_object_get(phase, "include"), "include", plan);
		s->excludes = atex_fmf_plan_string_list(
			json_object_get(phase, "exclude"), "exclude", plan);
	} else {
		s->entries = json_array();
		s->rules = json_array();
		filters = json_array();
		s->links = json_array();
		s->includes = json_array();
		s->excludes = json_array();
	}
	if (!s->entries || !s->rules || !filters || !s->links || !s->includes ||
	    !s->excludes)
		rc = atex_error_last_code() ? atex_error_last_code()
					    : ATEX_ENOMEM;
	else
		rc = selector_filters(s, filters);
	json_decref(filters);
	return rc;
}

/* Loads and adjusts a tree for a phase whose tests live elsewhere. */
int atex_fmf_select_load_adjusted(atex_fmf_tree **out, const char *path,
				  const atex_fmf_context *ctx)
{
	int rc = atex_fmf_tree_load_lean(out, path);

	if (rc == 0 && (rc = atex_fmf_tree_adjust(*out, ctx)) < 0) {
		atex_fmf_tree_free(*out);
		*out = NULL;
	}
	return rc;
}

/* Where a phase's tests live: the plan's tree, `path` in it, or a clone
 * of `url` (at `ref`), `path` in that. *tree is NULL for the plan's own
 * tree; otherwise the discovery owns it. */
static int phase_tree(atex_fmf_discovery *d, const atex_fmf_tree **tree,
		      const atex_fmf_tree *plan_tree, const json_t *phase,
		      const atex_fmf_context *ctx,
		      const struct atex_fmf_discover_options *o)
{
	const char *url = json_string_value(json_object_get(phase, "url"));
	const char *ref = json_string_value(json_object_get(phase, "ref"));
	const char *path = json_string_value(json_object_get(phase, "path"));
	atex_fmf_tree *other = NULL;
	char *repo = NULL, *where = NULL;
	int rc = 0;

	*tree = plan_tree;
	if (url) {
		rc = atex_fmf_fetch_repo(&repo, url, ref, o->cache_dir);
		if (rc < 0)
			return rc;
		where = atex_path_join(repo,
				       path ? path + strspn(path, "/") : ".");
	} else if (path) {
		where = atex_path_join(atex_fmf_tree_root(plan_tree), path);
	}
	if ((url || path) && !where)
		rc = ATEX_ENOMEM;
	if (rc == 0 && where &&
	    (rc = atex_fmf_select_load_adjusted(&other, where, ctx)) == 0) {
		/* Tests point into their tree: the discovery owns it. */
		rc = atex_vec_push(&d->trees, other);
		if (rc < 0)
			atex_fmf_tree_free(other);
		else
			*tree = other;
	}
	free(repo);
	free(where);
	return rc;
}

/* A shell phase with `url` runs its tests in a clone of it. */
static int shell_root(atex_fmf_discovery *d, const char **root,
		      const json_t *phase,
		      const struct atex_fmf_discover_options *o)
{
	char *repo = NULL;
	int rc = atex_fmf_fetch_repo(
		&repo, json_string_value(json_object_get(phase, "url")),
		json_string_value(json_object_get(phase, "ref")), o->cache_dir);

	if (rc == 0 && atex_vec_push(&d->roots, repo) < 0) {
		free(repo);
		rc = atex_error_oom();
	}
	if (rc == 0)
		*root = repo;
	return rc;
}

/* Whether the plan names a discover phase `name` itself (tmt gives the
 * others default-0, default-1... under names no phase has). */
static bool named_phase(const json_t *plan, const char *name)
{
	json_t *raw = json_object_get(plan, "discover"), *item;
	size_t i;

	if (json_is_object(raw))
		return json_is_string(json_object_get(raw, "name"));
	json_array_foreach(raw, i, item)
	{
		const char *given =
			json_string_value(json_object_get(item, "name"));

		if (given && !strcmp(given, name))
			return true;
	}
	return false;
}

int atex_fmf_select_phase(atex_fmf_discovery *d, const atex_fmf_tree *plan_tree,
			  const json_t *phase, size_t total,
			  const atex_fmf_context *ctx,
			  const struct atex_fmf_discover_options *o)
{
	const char *how = json_string_value(json_object_get(phase, "how"));
	const char *name = json_string_value(json_object_get(phase, "name"));
	bool fmf = !strcmp(how, "fmf");
	struct selector s = {.ctx = ctx, .o = o};
	const atex_fmf_tree *tree = plan_tree;
	char *prefix = total > 1 || (o->compat_python_atex &&
				     named_phase(d->plan, name))
			       ? atex_sprintf("/%s", name)
			       : atex_strdup("");
	int rc = prefix ? selector_init(&s, d, phase, fmf) : ATEX_ENOMEM;

	s.prefix = prefix;
	if (rc == 0 && fmf)
		rc = phase_tree(d, &tree, plan_tree, phase, ctx, o);
	s.root = atex_fmf_tree_root(tree);
	if (rc == 0 && !fmf && json_object_get(phase, "url"))
		rc = shell_root(d, &s.root, phase, o);
	if (rc == 0)
		rc = fmf ? select_fmf(d, tree, &s) : select_shell(d, phase, &s);
	selector_free(&s);
	free(prefix);
	return rc;
}

/* Without a plan: every test of the tree, as `tmt tests ls` lists them
 * (sorted by `order`), without manual and disabled ones. */
int atex_fmf_select_all(atex_fmf_discovery *d, atex_fmf_tree *tree,
			const struct atex_fmf_discover_options *o)
{
	struct selector s = {.prefix = "", .o = o};
	atex_fmf_context *ctx = NULL;
	int rc;

	rc = atex_fmf_plan_context(&ctx, NULL, o->context);
	if (rc == 0)
		rc = atex_fmf_tree_adjust(tree, ctx);
	s.ctx = ctx;
	if (rc < 0) {
		atex_fmf_context_free(ctx);
		return rc;
	}
	d->plan = json_object();
	d->environment = json_object();
	d->prepare = json_array();
	d->finish = json_array();
	if (!d->plan || !d->environment || !d->prepare || !d->finish)
		rc = atex_error_oom();
	if (rc == 0)
		rc = selector_init(&s, d, NULL, false);
	s.root = atex_fmf_tree_root(tree);
	if (rc == 0)
		rc = select_fmf(d, tree, &s);
	selector_free(&s);
	atex_fmf_context_free(ctx);
	return rc;
}
