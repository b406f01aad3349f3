/*
 * test_filter.c - the fmf filter language (src/fmf/filter.c).
 *
 * Two kinds of checks: the reference data of tests/conformance/fmf (every
 * filter case of every tree, evaluated on the unfiltered nodes of that
 * tree, must select exactly the nodes fmf 1.7 selected), and one unit case
 * per rule of the language, with expectations reasoned from the reference
 * code (see the top comment of filter.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/fmf.h"

/* The nodes of trees/own-filter as fmf 1.7 loads them. */
static const char own_filter_nodes[] =
	"{\"/a\": {\"component\": [\"openssh\"], \"priority\": \"high\","
	" \"tag\": [\"base\", \"security\", \"fast\"], \"test\": \"./t.sh\","
	" \"tier\": 1},"
	" \"/b\": {\"component\": [\"kernel\", \"glibc\"],"
	" \"tag\": [\"base\", \"slow\"], \"test\": \"./t.sh\", \"tier\": 2},"
	" \"/c\": {\"priority\": \"low\","
	" \"tag\": [\"base\", \"security\", \"slow\"], \"test\": \"./t.sh\","
	" \"tier\": 1},"
	" \"/d\": {\"component\": [\"openssh-server\"], \"tag\": [],"
	" \"test\": \"./t.sh\"},"
	" \"/e\": {\"enabled\": false, \"tag\": [\"base\", \"Security\"],"
	" \"test\": \"./t.sh\", \"tier\": 3},"
	" \"/f\": {\"priority\": \"high\", \"tag\": [\"base\", \"network\"],"
	" \"test\": \"./t.sh\", \"tier\": \"1\"}}";

/* Each line of trees/own-filter/.filters and the nodes fmf kept. */
static const struct {
	const char *filter;
	const char *nodes;
} own_filter_cases[] = {
	{"tier: 1", "/a /c /f"},
	{"tier: 1 | tier: 2", "/a /b /c /f"},
	{"tier: -1", "/b /e"},
	{"tag: security", "/a /c"},
	{"tag: -slow", "/a /d /e /f"},
	{"tag: security & tag: -slow", "/a"},
	{"tag: security | tag: network", "/a /c /f"},
	{"tag: sec.*", "/a /c"},
	{"tag: ^slow$", "/b /c"},
	{"component: openssh", "/a"},
	{"component: openssh.*", "/a /d"},
	{"component: -kernel", "/a /d"},
	{"priority: high & tier: 1", "/a /f"},
	{"priority: high | tier: 3", "/a /f"},
	{"tag: security & tier: 1 | tag: network", "/a /c /f"},
	{"tier: 1, 2", "/a /b /c /f"},
	{"tag: fast, network", "/a /f"},
	{"enabled: false", ""},
	{"tier: [12]", "/a /b /c /f"},
};

/* Names of the nodes of `nodes` the filter keeps, space separated. */
static char *select_nodes(const char *expression, json_t *nodes)
{
	atex_fmf_filter *f;
	const char *name;
	json_t *data;
	char buf[4096] = "";

	if (atex_fmf_filter_new(&f, expression))
		fail_msg("filter '%s' refused: %s", expression,
			 atex_error_last());
	json_object_foreach(nodes, name, data)
	{
		int rc = atex_fmf_filter_match(f, data, name);

		assert_true(rc == 0 || rc == 1);
		if (!rc)
			continue;
		if (buf[0])
			strncat(buf, " ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, name, sizeof(buf) - strlen(buf) - 1);
	}
	atex_fmf_filter_free(f);
	return strdup(buf);
}

static void test_own_filter_lines(void **state)
{
	json_t *nodes = json_loads(own_filter_nodes, 0, NULL);

	assert_non_null(nodes);
	for (size_t i = 0;
	     i < sizeof(own_filter_cases) / sizeof(own_filter_cases[0]); i++) {
		char *got = select_nodes(own_filter_cases[i].filter, nodes);

		if (strcmp(got, own_filter_cases[i].nodes))
			fail_msg("'%s' selected '%s', fmf selected '%s'",
				 own_filter_cases[i].filter, got,
				 own_filter_cases[i].nodes);
		free(got);
	}
	json_decref(nodes);
}

/* Space-separated keys of an object, in its order. */
static char *object_keys(json_t *obj)
{
	char buf[8192] = "";
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		if (buf[0])
			strncat(buf, " ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, key, sizeof(buf) - strlen(buf) - 1);
	}
	return strdup(buf);
}

/* The same lines through the tree loader and prune, as `atex fmf dump`. */
static void test_own_filter_prune(void **state)
{
	const char *root = getenv("ATEX_CONFORMANCE");
	atex_fmf_tree *tree;
	char path[4096];

	if (!root)
		root = "tests/conformance";
	snprintf(path, sizeof(path), "%s/fmf/trees/own-filter", root);
	if (atex_fmf_tree_load(&tree, path))
		fail_msg("loading %s: %s", path, atex_error_last());
	for (size_t i = 0;
	     i < sizeof(own_filter_cases) / sizeof(own_filter_cases[0]); i++) {
		const char *filter = own_filter_cases[i].filter;
		json_t *nodes;
		char *got;

		if (atex_fmf_tree_prune(&nodes, tree, NULL, 0, &filter, 1))
			fail_msg("prune '%s': %s", filter, atex_error_last());
		got = object_keys(nodes);
		if (strcmp(got, own_filter_cases[i].nodes))
			fail_msg("prune '%s' kept '%s', fmf kept '%s'", filter,
				 got, own_filter_cases[i].nodes);
		free(got);
		json_decref(nodes);
	}
	atex_fmf_tree_free(tree);
}

/* Checks expected/TREE.0.N.json (N >= 1) against TREE.0.0.json. */
static int check_tree_case(const char *dir, const char *file, json_t *all)
{
	char path[8192];
	json_t *c, *filters, *want;
	json_t *nodes = json_deep_copy(all);
	const char *name;
	json_t *data, *tmp;
	char *got, *exp;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	c = json_load_file(path, 0, NULL);
	assert_non_null(c);
	filters = json_object_get(c, "filters");
	want = json_object_get(c, "nodes");
	assert_non_null(want);
	/* Every filter must match, as with several --filter options. */
	for (size_t i = 0; i < json_array_size(filters); i++) {
		const char *expr =
			json_string_value(json_array_get(filters, i));
		atex_fmf_filter *f;

		assert_int_equal(atex_fmf_filter_new(&f, expr), 0);
		json_object_foreach_safe(nodes, tmp, name, data)
		{
			if (atex_fmf_filter_match(f, data, name) != 1)
				json_object_del(nodes, name);
		}
		atex_fmf_filter_free(f);
	}
	got = object_keys(nodes);
	exp = object_keys(want);
	if (strcmp(got, exp))
		fail_msg("%s: selected '%s', fmf selected '%s'", file, got,
			 exp);
	free(got);
	free(exp);
	json_decref(nodes);
	json_decref(c);
	return 1;
}

/* Every filter case of every tree in the conformance data. */
static void test_conformance_filters(void **state)
{
	const char *root = getenv("ATEX_CONFORMANCE");
	char dir[2048], path[8192];
	struct dirent *de;
	int checked = 0;
	DIR *d;

	if (!root)
		root = "tests/conformance";
	snprintf(dir, sizeof(dir), "%s/fmf/expected", root);
	d = opendir(dir);
	if (!d)
		fail_msg("no conformance data in %s (set ATEX_CONFORMANCE)",
			 dir);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char base[512];
		json_t *top, *all;

		/* TREE.0.0.json holds the unfiltered nodes of TREE. */
		if (n < 12 || strcmp(de->d_name + n - 9, ".0.0.json"))
			continue;
		snprintf(base, sizeof(base), "%.*s", (int)(n - 9), de->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		top = json_load_file(path, 0, NULL);
		all = json_object_get(top, "nodes");
		for (int k = 1; all && k < 100; k++) {
			char file[1024];

			snprintf(file, sizeof(file), "%s.0.%d.json", base, k);
			snprintf(path, sizeof(path), "%s/%s", dir, file);
			if (access(path, R_OK))
				break;
			checked += check_tree_case(dir, file, all);
		}
		json_decref(top);
	}
	closedir(d);
	/* 24 own-filter lines and general cases of about 25 trees. */
	assert_true(checked >= 100);
}

/* ------------------------------------------------------------------------
 * Unit cases: `filter` on `json` data for node `name` must give `want`.
 */

static void check(const char *filter, const char *json, const char *name,
		  int want)
{
	json_t *data = json_loads(json, 0, NULL);
	atex_fmf_filter *f;
	int got;

	if (!data)
		fail_msg("bad test JSON %s", json);
	if (atex_fmf_filter_new(&f, filter))
		fail_msg("filter '%s' refused: %s", filter, atex_error_last());
	got = atex_fmf_filter_match(f, data, name);
	if (got != want)
		fail_msg("filter '%s' on %s (name %s) gave %d, expected %d",
			 filter, json, name ? name : "NULL", got, want);
	atex_fmf_filter_free(f);
	json_decref(data);
}

static void test_or_and(void **state)
{
	const char *d = "{\"tag\": [\"a\", \"b\"], \"tier\": 1}";

	check("tag: a & tier: 1", d, NULL, 1);
	check("tag: a & tier: 2", d, NULL, 0);
	check("tag: c | tier: 1", d, NULL, 1);
	check("tag: c | tier: 2", d, NULL, 0);
	/* & binds tighter than |. */
	check("tag: c & tier: 2 | tag: b", d, NULL, 1);
	check("tag: b | tag: c & tier: 2", d, NULL, 1);
	check("tag: c & tier: 1 | tag: d", d, NULL, 0);
	check("tag: a & tag: b & tag: -c", d, NULL, 1);
	check("tag: a & tag: c", d, NULL, 0);
}

static void test_missing_key(void **state)
{
	const char *d = "{\"tier\": 1, \"tag\": []}";

	check("tier: 1", d, NULL, 1);
	check("priority: high", d, NULL, 0);
	check("priority: -high", d, NULL, 0);
	/* All clauses are evaluated: a missing key anywhere fails. */
	check("tier: 1 | priority: high", d, NULL, 0);
	check("priority: high | tier: 1", d, NULL, 0);
	check("tier: 1 & priority: high", d, NULL, 0);
	check("tier: 1", "[1]", NULL, 0);
}

static void test_negation_and_commas(void **state)
{
	const char *d = "{\"tag\": [\"a\", \"b\"], \"empty\": []}";

	check("tag: -c", d, NULL, 1);
	check("tag: -a", d, NULL, 0);
	check("empty: -x", d, NULL, 1);
	check("empty: x", d, NULL, 0);
	check("empty: .*", d, NULL, 0);
	/* Alternatives: any may match, a negated one when absent. */
	check("tag: c, a", d, NULL, 1);
	check("tag: c, d", d, NULL, 0);
	check("tag: -a, -b", d, NULL, 0);
	check("tag: -a, -c", d, NULL, 1);
	check("tag: c,-a , -b,d", d, NULL, 0);
	check("tag: c,-d", d, NULL, 1);
	/* "- a" negates " a", which no item is. */
	check("tag: - a", d, NULL, 1);
	/* A "-" inside an alternative is part of the regex. */
	check("tag: a-b", "{\"tag\": \"a-b\"}", NULL, 1);
}

static void test_escapes(void **state)
{
	check("tag: Tier(1\\|2)", "{\"tag\": [\"Tier2\"]}", NULL, 1);
	check("tag: Tier(1\\|2)", "{\"tag\": [\"Tier3\"]}", NULL, 0);
	check("tag: a\\&b", "{\"tag\": [\"a&b\"]}", NULL, 1);
	check("tag: a\\&b & tag: -c", "{\"tag\": [\"a&b\"]}", NULL, 1);
	check("tag: x \\| tag: y", "{\"tag\": [\"x | tag: y\"]}", NULL, 1);
}

static void test_whitespace(void **state)
{
	const char *d = "{\"tier\": 1}";

	check("tier:1", d, NULL, 1);
	check("tier:    1", d, NULL, 1);
	check("tier: 1   |   tier: 2", d, NULL, 1);
	check("tier: 2|tier: 1", d, NULL, 1);
	check("tier: 2 &tier: 1", d, NULL, 0);
	/* The key keeps its spaces, the value its trailing ones. */
	check("tier : 1", d, NULL, 0);
	check(" tier: 1", d, NULL, 0);
	check("tier: 1 ", d, NULL, 0);
	check("tier: 1 ", "{\"tier\": \"1 \"}", NULL, 1);
}

/* Items are Python str() of the data, matched as ^pattern$. */
static void test_values(void **state)
{
	check("x: True", "{\"x\": true}", NULL, 1);
	check("x: true", "{\"x\": true}", NULL, 0);
	check("x: False", "{\"x\": [false]}", NULL, 1);
	check("x: None", "{\"x\": null}", NULL, 1);
	check("x: 1", "{\"x\": 1}", NULL, 1);
	check("x: 1", "{\"x\": 1.0}", NULL, 0);
	check("x: 1\\.0", "{\"x\": 1.0}", NULL, 1);
	check("x: 1\\.5", "{\"x\": 1.5}", NULL, 1);
	check("x: 0\\.1", "{\"x\": 0.1}", NULL, 1);
	check("x: 0\\.0001", "{\"x\": 0.0001}", NULL, 1);
	check("x: 1e-05", "{\"x\": 0.00001}", NULL, 1);
	check("x: 1e\\+16", "{\"x\": 1e16}", NULL, 1);
	check("x: 1234567890123456\\.0", "{\"x\": 1234567890123456.0}", NULL,
	      1);
	check("x: 123456789012345\\.0", "{\"x\": 123456789012345.0}", NULL, 1);
	check("x: -2\\.5e-07", "{\"x\": -2.5e-7}", NULL, 1);
	check("x: \\['a'. 1. True. None\\]",
	      "{\"x\": [[\"a\", 1, true, null]]}", NULL, 1);
	check("x: \\{'k': \\[\\]. 'q': \"it's\"\\}",
	      "{\"x\": {\"k\": [], \"q\": \"it's\"}}", NULL, 1);
	/* Whole-item match, case sensitive, a final newline allowed. */
	check("x: sec", "{\"x\": \"security\"}", NULL, 0);
	check("x: sec.*", "{\"x\": \"security\"}", NULL, 1);
	check("x: .*cur.*", "{\"x\": \"security\"}", NULL, 1);
	check("x: Security", "{\"x\": \"security\"}", NULL, 0);
	check("x: a", "{\"x\": \"a\\n\"}", NULL, 1);
	check("x: ", "{\"x\": \"\"}", NULL, 1);
	check("x:", "{\"x\": [\"\"]}", NULL, 1);
	check("x: caf\xc3\xa9", "{\"x\": \"caf\xc3\xa9\"}", NULL, 1);
	check("x: \\w+", "{\"x\": \"caf\xc3\xa9\"}", NULL, 1);
}

/*
 * A literal without "key:" is a regular expression searched anywhere in
 * the node name (re.search); `name:` is the data's own `name` key.
 */
static void test_name(void **state)
{
	const char *d = "{\"tag\": [\"quick\"]}";

	check("/tests/core", d, "/tests/core", 1);
	check("/tests/core", d, "/tests/core/x", 1);
	check("/tests/core", d, "/tests/corex", 1);
	check("/tests/core", d, "/x/tests/core", 1);
	check("/tests/core", d, "/tests/cor", 0);
	check("core$", d, "/tests/core", 1);
	check("core$", d, "/tests/core/x", 0);
	check("^/tests", d, "/x/tests/core", 0);
	check("/tests/core/.* & tag: quick", d, "/tests/core/x", 1);
	check("/tests/core/.* & tag: slow", d, "/tests/core/x", 0);
	check("/a | /b", d, "/b", 1);
	check("/a\\|/b", d, "/b", 1);
	check("/c | /d", d, "/b", 0);
	/* `name:` is a key of the data, matched whole. */
	check("name: /tests/.*", d, "/tests/x", 0);
	check("name: given", "{\"name\": \"given\"}", "/node", 1);
	check("name: /node", "{\"name\": \"given\"}", "/node", 0);
	check("name: giv", "{\"name\": \"given\"}", "/node", 0);
	check("name: -x", "{\"name\": \"given\"}", "/node", 1);
	/* A failing name ends its clause before its keys are looked at... */
	check("/x & nokey: 1 | tag: quick", d, "/a", 1);
	check("nokey: 1 & /x | tag: quick", d, "/a", 1);
	/* ...but a missing key in a clause whose names match drops the
	 * node, even when another clause matches. */
	check("/a | nokey: 1", d, "/a", 0);
	check("nokey: 1 | /a", d, "/a", 0);
	check("/a & nokey: 1 | tag: quick", d, "/a", 0);
	check("/a | tag: quick", "{}", "/a/b", 0);
	check("tag: -slow & /deep", "{}", "/deep/a", 0);
	/* Without a node name (tmt's plan filters) a name literal anywhere
	 * makes the whole filter fail, as fmf's FilterError does. */
	check("/tests/core", d, NULL, 0);
	check(".*", d, NULL, 0);
	check("tag: quick | /x", d, NULL, 0);
	check("/x | tag: quick", d, NULL, 0);
	check("name: given", "{\"name\": \"given\"}", NULL, 1);
	check("tag: quick", d, NULL, 1);
}

static void test_empty_filter(void **state)
{
	check("", "{}", NULL, 1);
	check("", "{\"tier\": 1}", "/x", 1);
}

static void check_refused(const char *filter, const char *part)
{
	atex_fmf_filter *f = (atex_fmf_filter *)&f;
	int rc = atex_fmf_filter_new(&f, filter);

	if (rc != ATEX_ERULE)
		fail_msg("filter '%s' gave %d, expected ATEX_ERULE", filter,
			 rc);
	assert_null(f);
	if (!strstr(atex_error_last(), part))
		fail_msg("message for '%s' is '%s', lacks '%s'", filter,
			 atex_error_last(), part);
}

static void test_errors(void **state)
{
	check_refused("tag: (", "invalid filter 'tag: ('");
	check_refused("tier: 1 | tag: a[",
		      "invalid filter 'tier: 1 | tag: a['");
	check_refused("tag: a[", "^a[$");
	/* Python refuses global flags after the "^" fmf puts first. */
	check_refused("tag: (?i)abc", "global flags");
	check_refused("tag: x, \\q", "bad escape \\q");
	/* Split on "|" first: a regex alternation breaks the pattern. */
	check_refused("tag: (a|b)", "invalid filter 'tag: (a|b)'");
	/* A name search is compiled up front too. */
	check_refused("/a/[", "invalid filter '/a/['");
	check_refused("tier: 1 & /a(", "invalid filter 'tier: 1 & /a('");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_filter_lines),
		cmocka_unit_test(test_conformance_filters),
		cmocka_unit_test(test_own_filter_prune),
		cmocka_unit_test(test_or_and),
		cmocka_unit_test(test_missing_key),
		cmocka_unit_test(test_negation_and_commas),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_empty_filter),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
