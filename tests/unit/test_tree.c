/*
 * test_tree.c - loading trees: files and nodes, directives, inheritance,
 * every merge suffix, adjust, selection, pruning and the error messages.
 * The reference data (tests/conformance) checks whole trees; these pin each
 * rule down on its own so a failure says which one broke.
 */
#include "helpers.h"

#include "atex/atex.h"
#include "fmf/fmf_private.h"

static atex_fmf_tree *load(const char *dir)
{
	atex_fmf_tree *tree = NULL;

	if (atex_fmf_tree_load(&tree, dir) < 0)
		fail_msg("load failed: %s", atex_error_last());
	return tree;
}

/* The node's data as compact sorted JSON, for short assertions. */
static char *data_of(const atex_fmf_tree *tree, const char *name)
{
	const atex_fmf_node *node = atex_fmf_tree_find(tree, name);

	if (!node)
		fail_msg("no node %s", name);
	return json_dumps(atex_fmf_node_data(node),
			  JSON_COMPACT | JSON_SORT_KEYS);
}

#define assert_data(tree, name, want) \
	do { \
		char *got_ = data_of(tree, name); \
		assert_string_equal(got_, want); \
		free(got_); \
	} while (0)

/* Loads a one-file tree and expects an error matching all fragments. */
static void expect_error(int code, const char *main_fmf, const char *frag1,
			 const char *frag2)
{
	char *dir = tree_new("main.fmf", main_fmf, NULL);
	atex_fmf_tree *tree = NULL;
	int rc = atex_fmf_tree_load(&tree, dir);

	if (rc == 0) {
		atex_fmf_context *ctx = NULL;

		assert_int_equal(atex_fmf_context_new(&ctx), 0);
		assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora"), 0);
		rc = atex_fmf_tree_adjust(tree, ctx);
		atex_fmf_context_free(ctx);
	}
	assert_int_equal(rc, code);
	if (!strstr(atex_error_last(), frag1) ||
	    (frag2 && !strstr(atex_error_last(), frag2)))
		fail_msg("message '%s' lacks '%s' / '%s'", atex_error_last(),
			 frag1, frag2 ? frag2 : "");
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void files_and_nodes(void **state)
{
	char *dir = tree_new(
		"main.fmf", "a: 1\n/virtual:\n  b: 2\n/deep/er:\n  c: 3\n",
		"other.fmf", "d: 4\n",
		"sub/main.fmf", "e: 5\n",
		"sub/leaf.fmf", "f: 6\n",
		"empty/nothing.txt", "not metadata\n",
		".hidden.fmf", "h: 1\n",
		".hiddendir/main.fmf", "h: 2\n",
		"subtree/.fmf/version", "1\n",
		"subtree/main.fmf", "s: 1\n",
		NULL);
	atex_fmf_tree *tree = load(dir);
	const atex_fmf_node *node = NULL;
	const char *want[] = {"/", "/deep", "/deep/er", "/other", "/sub",
			      "/sub/leaf", "/virtual"};
	size_t n = 0;

	(void)state;
	while ((node = atex_fmf_tree_next(tree, node))) {
		assert_true(n < 7);
		assert_string_equal(atex_fmf_node_name(node), want[n]);
		n++;
	}
	assert_int_equal(n, 7);
	assert_data(tree, "/deep/er", "{\"a\":1,\"c\":3}");
	assert_data(tree, "/sub/leaf", "{\"a\":1,\"e\":5,\"f\":6}");
	assert_null(atex_fmf_tree_find(tree, "/empty"));
	assert_null(atex_fmf_tree_find(tree, "/hidden"));
	assert_null(atex_fmf_tree_find(tree, "/subtree"));
	/* Directories: where the last defining file is. */
	assert_string_equal(atex_fmf_node_dir(atex_fmf_tree_find(tree, "/sub/leaf")),
			    "sub");
	assert_string_equal(atex_fmf_node_dir(atex_fmf_tree_find(tree, "/virtual")),
			    ".");
	assert_true(atex_fmf_node_is_selected(atex_fmf_tree_find(tree, "/other")));
	assert_false(atex_fmf_node_is_selected(atex_fmf_tree_find(tree, "/sub")));
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void root_found_from_below(void **state)
{
	char *dir = tree_new("a/b/main.fmf", "x: 1\n", NULL);
	char sub[4200];
	atex_fmf_tree *tree;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	tree = load(sub);
	assert_string_equal(atex_fmf_tree_root(tree), dir);
	assert_non_null(atex_fmf_tree_find(tree, "/a/b"));
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void explore_include(void **state)
{
	char *dir = tree_new(".fmf/config", "explore:\n  include: [.plans]\n",
			     ".plans/basic.fmf", "execute: {how: tmt}\n",
			     ".other/main.fmf", "x: 1\n", NULL);
	atex_fmf_tree *tree = load(dir);

	(void)state;
	assert_non_null(atex_fmf_tree_find(tree, "/.plans/basic"));
	assert_null(atex_fmf_tree_find(tree, "/.other"));
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void symlink_loop(void **state)
{
	char *dir = tree_new("a/main.fmf", "x: 1\n", NULL);
	char link[4200];

	(void)state;
	snprintf(link, sizeof(link), "%s/a/loop", dir);
	assert_int_equal(symlink(dir, link), 0);
	atex_fmf_tree *tree = load(dir);
	assert_non_null(atex_fmf_tree_find(tree, "/a"));
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void directives(void **state)
{
	char *dir = tree_new("main.fmf",
			     "x: 1\n"
			     "/no-inherit:\n  /: {inherit: false}\n  y: 2\n"
			     "/branch:\n  /: {select: true}\n  /leaf:\n    z: 3\n"
			     "/unselected:\n  /: {select: false}\n",
			     NULL);
	atex_fmf_tree *tree = load(dir);

	(void)state;
	assert_data(tree, "/no-inherit", "{\"y\":2}");
	assert_true(atex_fmf_node_is_selected(atex_fmf_tree_find(tree, "/branch")));
	assert_true(atex_fmf_node_is_selected(atex_fmf_tree_find(tree, "/branch/leaf")));
	assert_false(atex_fmf_node_is_selected(atex_fmf_tree_find(tree, "/unselected")));
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void merge_suffixes(void **state)
{
	char *dir = tree_new(
		"main.fmf",
		"n: 10\nf: 1.5\ns: abc\nl: [a, b, c]\nd: {k1: 1, k2: 2}\n"
		"b: true\nld: [{x: 1}, {x: 2}]\n"
		"/plus:\n  n+: 5\n  f+: 1\n  s+: d\n  l+: [d]\n  d+: {k3: 3}\n"
		"  b+: 1\n  ld+: {y: 0}\n  new+: {a+: 1}\n"
		"/prepend:\n  s+<: z\n  l+<: [z]\n"
		"/minus:\n  n-: 3\n  s-: b\n  l-: [b]\n  d-: [k1]\n  missing-: 1\n"
		"/regexp:\n  s~: /b/B/\n  l~: [/^(.)$/<\\1>/]\n"
		"/minus-regexp:\n  s-~: ^a\n  l-~: [a, c]\n  d-~: '2$'\n"
		"/dict-to-list:\n  d+: [{k1: 9}, {k4: 4}]\n",
		NULL);
	atex_fmf_tree *tree = load(dir);

	(void)state;
	assert_data(tree, "/plus",
		    "{\"b\":2,\"d\":{\"k1\":1,\"k2\":2,\"k3\":3},\"f\":2.5,"
		    "\"l\":[\"a\",\"b\",\"c\",\"d\"],"
		    "\"ld\":[{\"x\":1,\"y\":0},{\"x\":2,\"y\":0}],\"n\":15,"
		    "\"new\":{\"a+\":1},\"s\":\"abcd\"}");
	assert_data(tree, "/prepend",
		    "{\"b\":true,\"d\":{\"k1\":1,\"k2\":2},\"f\":1.5,"
		    "\"l\":[\"z\",\"a\",\"b\",\"c\"],\"ld\":[{\"x\":1},{\"x\":2}],"
		    "\"n\":10,\"s\":\"zabc\"}");
	assert_data(tree, "/minus",
		    "{\"b\":true,\"d\":{\"k2\":2},\"f\":1.5,\"l\":[\"a\",\"c\"],"
		    "\"ld\":[{\"x\":1},{\"x\":2}],\"n\":7,\"s\":\"ac\"}");
	assert_data(tree, "/regexp",
		    "{\"b\":true,\"d\":{\"k1\":1,\"k2\":2},\"f\":1.5,"
		    "\"l\":[\"<a>\",\"<b>\",\"<c>\"],\"ld\":[{\"x\":1},{\"x\":2}],"
		    "\"n\":10,\"s\":\"aBc\"}");
	assert_data(tree, "/minus-regexp",
		    "{\"b\":true,\"d\":{\"k1\":1},\"f\":1.5,\"l\":[\"b\"],"
		    "\"ld\":[{\"x\":1},{\"x\":2}],\"n\":10,\"s\":\"\"}");
	assert_data(tree, "/dict-to-list",
		    "{\"b\":true,\"d\":[{\"k1\":9,\"k2\":2},"
		    "{\"k1\":1,\"k2\":2,\"k4\":4}],\"f\":1.5,"
		    "\"l\":[\"a\",\"b\",\"c\"],\"ld\":[{\"x\":1},{\"x\":2}],"
		    "\"n\":10,\"s\":\"abc\"}");
	/* The parent was not changed by any child's merge. */
	assert_data(tree, "/",
		    "{\"b\":true,\"d\":{\"k1\":1,\"k2\":2},\"f\":1.5,"
		    "\"l\":[\"a\",\"b\",\"c\"],\"ld\":[{\"x\":1},{\"x\":2}],"
		    "\"n\":10,\"s\":\"abc\"}");
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

/* The root merges over nothing: its suffixes are resolved, but a nested
 * dict under a key nobody had keeps its own suffixes (for adjust). */
static void root_suffixes(void **state)
{
	char *dir = tree_new("main.fmf", "tag+: [a]\nd+: {e+: 1}\n", NULL);
	atex_fmf_tree *tree = load(dir);

	(void)state;
	assert_data(tree, "/", "{\"d\":{\"e+\":1},\"tag\":[\"a\"]}");
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void merge_errors(void **state)
{
	(void)state;
	expect_error(ATEX_EMERGE, "tag: [a]\n/c:\n  tag+: x\n",
		     "main.fmf:3:3: ", "can only concatenate list (not \"str\") to list");
	expect_error(ATEX_EMERGE, "x: 1\n/c:\n  x+: [1]\n", "main.fmf:3:3: ",
		     "unsupported operand type(s) for +: 'int' and 'list'");
	expect_error(ATEX_EMERGE, "x: null\n/c:\n  x+: 1\n", "'NoneType' and 'int'",
		     "/c");
	expect_error(ATEX_EMERGE, "x: [1]\n/c:\n  x-: 1\n", "main.fmf:3:3: ",
		     "wrong type");
	expect_error(ATEX_EMERGE, "x: [1, a]\n/c:\n  x+: {k: 1}\n",
		     "main.fmf:3:3: ", "must be a dictionary");
	expect_error(ATEX_EMERGE, "x: abc\n/c:\n  x~: nodelim\n",
		     "main.fmf:3:3: ", "PATTERN");
	expect_error(ATEX_EMERGE, "x: [1]\n/c:\n  x~: /a/b/\n", "main.fmf:3:3: ",
		     "not a string");
}

static void format_errors(void **state)
{
	(void)state;
	expect_error(ATEX_EFORMAT, "- a\n- b\n", "main.fmf:1:1: ", "mapping");
	expect_error(ATEX_EFORMAT, "/child: [1]\n", "main.fmf:1:1: ", "/child");
	expect_error(ATEX_EFORMAT, "/: nope\n", "main.fmf:1:1: ", "directive");
	expect_error(ATEX_EFORMAT, "/: {inherit: 1}\n", "main.fmf:1:5: ",
		     "should be a 'bool'");
	expect_error(ATEX_EFORMAT, "/: {bogus: true}\n", "main.fmf:1:5: ",
		     "unknown fmf directive 'bogus'");
	expect_error(ATEX_EFORMAT, "a: [1\n", "main.fmf:", NULL);
	expect_error(ATEX_EFORMAT, "adjust: 5\n", "invalid adjust rule", "'int'");
	expect_error(ATEX_EFORMAT, "adjust: [5]\n", "main.fmf:1:9: ",
		     "should be a dictionary");
	expect_error(ATEX_EFORMAT, "adjust:\n  when: distro == x\n  continue: 1\n",
		     "main.fmf:3:3: ", "'continue'");
	expect_error(ATEX_ERULE, "adjust:\n  when: distro ==\n  x: 1\n",
		     "main.fmf:2:3: ", "distro ==");
}

static void adjust_rules(void **state)
{
	char *dir = tree_new(
		"main.fmf",
		"tier: 1\n"
		"adjust:\n"
		"  - when: distro == fedora\n    tag+: [f]\n    because: why\n"
		"  - when: distro >= fedora-40\n    tier: 2\n    continue: false\n"
		"  - when: distro == fedora\n    tier: 3\n"
		"  - when: arch == x86_64\n    tier: 4\n"
		"  - tag+: [always]\n"
		"/child:\n  tag: [c]\n",
		"single.fmf", "adjust:\n  when: distro == fedora\n  single: true\n",
		NULL);
	atex_fmf_tree *tree = load(dir);
	atex_fmf_context *ctx = NULL;
	json_t *data;
	char *got;

	(void)state;
	assert_int_equal(atex_fmf_context_new(&ctx), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora-40"), 0);
	assert_int_equal(atex_fmf_tree_adjust(tree, ctx), 0);
	/* Rule 2 stops the list: no tier 3, no "always"; arch is undecided.
	 * Control keys (because, when) are not merged into the data. */
	data = atex_fmf_node_data(atex_fmf_tree_find(tree, "/child"));
	got = json_dumps(json_object_get(data, "tag"), JSON_COMPACT);
	assert_string_equal(got, "[\"c\",\"f\"]");
	free(got);
	assert_int_equal(json_integer_value(json_object_get(data, "tier")), 2);
	assert_null(json_object_get(data, "because"));
	assert_null(json_object_get(data, "when"));
	/* The rules stay in the data, as the reference keeps them. */
	assert_int_equal(json_array_size(json_object_get(data, "adjust")), 5);
	got = data_of(tree, "/single");
	assert_non_null(strstr(got, "\"single\":true"));
	free(got);
	/* Adjusting twice is refused. */
	assert_int_equal(atex_fmf_tree_adjust(tree, ctx), ATEX_EINVAL);
	atex_fmf_context_free(ctx);
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void prune(void **state)
{
	char *dir = tree_new("main.fmf",
			     "/one:\n  tier: 1\n/two:\n  tier: 2\n"
			     "/three:\n  tier: 1\n",
			     NULL);
	atex_fmf_tree *tree = load(dir);
	const char *names[] = {"t"}, *filters[] = {"tier: 1"}, *bad[] = {"tier: ("};
	json_t *out = NULL;

	(void)state;
	assert_int_equal(atex_fmf_tree_prune(&out, tree, names, 1, filters, 1), 0);
	assert_int_equal(json_object_size(out), 1);
	assert_non_null(json_object_get(out, "/three"));
	json_decref(out);
	assert_int_equal(atex_fmf_tree_prune(&out, tree, NULL, 0, NULL, 0), 0);
	assert_int_equal(json_object_size(out), 3);
	json_decref(out);
	assert_int_equal(atex_fmf_tree_prune(&out, tree, NULL, 0, bad, 1), ATEX_ERULE);
	assert_null(out);
	atex_fmf_tree_free(tree);
	tree_remove(dir);
}

static void python_values(void **state)
{
	const char *cases[][2] = {
		{"1.5", "1.5"}, {"10.0", "10.0"}, {"1e16", "1e+16"},
		{"1e15", "1000000000000000.0"}, {"0.0001", "0.0001"},
		{"0.00001", "1e-05"}, {"0.1", "0.1"}, {"true", "True"},
		{"null", "None"}, {"[1, \"a\", null]", "[1, 'a', None]"},
		{"{\"k\": false}", "{'k': False}"}, {"\"it's\"", "it's"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *v = json_loads(cases[i][0], JSON_DECODE_ANY, NULL);
		char *s = atex_py_str(v);

		assert_non_null(v);
		assert_string_equal(s, cases[i][1]);
		free(s);
		json_decref(v);
	}
	json_t *one = json_integer(1), *t = json_true(), *f1 = json_real(1.0);
	json_t *l1 = json_pack("[i]", 1), *l2 = json_pack("[b]", 1);
	json_t *s1 = json_string("1");

	assert_true(atex_py_equal(one, t));
	assert_true(atex_py_equal(one, f1));
	assert_true(atex_py_equal(l1, l2));
	assert_false(atex_py_equal(one, s1));
	json_decref(s1);
	json_decref(one);
	json_decref(f1);
	json_decref(l1);
	json_decref(l2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(files_and_nodes),
		cmocka_unit_test(root_found_from_below),
		cmocka_unit_test(explore_include),
		cmocka_unit_test(symlink_loop),
		cmocka_unit_test(directives),
		cmocka_unit_test(merge_suffixes),
		cmocka_unit_test(root_suffixes),
		cmocka_unit_test(merge_errors),
		cmocka_unit_test(format_errors),
		cmocka_unit_test(adjust_rules),
		cmocka_unit_test(prune),
		cmocka_unit_test(python_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
