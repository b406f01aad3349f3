/*
 * test_discover.c - tmt plans to test lists: which nodes are tests, the
 * discover sections (test, filter, exclude, names, url + ref, path), plan
 * environment, prepare, finish and context, and the discovery object's
 * accessors.
 */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>

#include "atex/atex.h"

static const char *plans =
	"/plans:\n"
	"  /all:\n"
	"    discover: {how: fmf}\n"
	"    execute: {how: tmt}\n"
	"  /sections:\n"
	"    discover:\n"
	"      - how: fmf\n"
	"        name: first\n"
	"        test: [/tests/c, /tests/a]\n"
	"      - how: fmf\n"
	"        name: second\n"
	"        filter: 'tier: 1'\n"
	"        exclude: [/tests/b]\n"
	"    execute: {how: tmt}\n"
	"  /steps:\n"
	"    discover: {how: fmf, test: /tests/a}\n"
	"    environment: [A=1, B=x=y]\n"
	"    prepare:\n"
	"      - {how: install, package: vim}\n"
	"      - {how: shell, script: [echo 1, echo 2]}\n"
	"    finish: {how: shell, script: echo done}\n"
	"    execute: {how: tmt}\n"
	"  /envdict:\n"
	"    environment: {N: 1, T: true, S: s}\n"
	"    execute: {how: tmt}\n"
	"  /context:\n"
	"    context: {distro: fedora-40}\n"
	"    adjust: {when: distro == fedora-40, enabled: false}\n"
	"    discover:\n"
	"      - {how: fmf, name: all}\n"
	"      - {how: fmf, name: f40, when: distro == fedora-40, test: "
	"/tests/a}\n"
	"    execute: {how: tmt}\n"
	"  /badprepare:\n"
	"    prepare: {how: artifact}\n"
	"    execute: {how: tmt}\n"
	"  /twins:\n"
	"    discover: [{how: fmf, name: same}, {how: fmf, name: same}]\n"
	"    execute: {how: tmt}\n"
	"  /imported:\n"
	"    plan: {import: {url: 'https://example.com/x', name: /p}}\n";

static const char *tests_fmf = "test: ./run.sh\n"
			       "tier: 2\n"
			       "adjust:\n"
			       "  when: distro == fedora\n"
			       "  tag: [fedora]\n"
			       "/a:\n  tier: 1\n"
			       "/b:\n  tier: 1\n"
			       "/c: {}\n"
			       "/manual:\n  manual: true\n"
			       "/disabled:\n  enabled: false\n"
			       "/story:\n  story: As a user...\n"
			       "/moved:\n  path: /elsewhere\n";

static char *tree;

static int setup(void **state)
{
	(void)state;
	tree = tree_new("main.fmf", plans, "tests/main.fmf", tests_fmf,
			"notatest.fmf", "summary: no test key\n",
			"elsewhere/.keep", "", NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tree_remove(tree);
	return 0;
}

static atex_fmf_discovery *
discover(const char *plan, const atex_fmf_context *ctx, const char *filter)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	o.plan = plan;
	o.context = ctx;
	o.filters = &filter;
	o.n_filters = filter ? 1 : 0;
	if (atex_fmf_discover(&d, tree, &o) < 0)
		fail_msg("discover failed: %s", atex_error_last());
	return d;
}

static char *names(const atex_fmf_discovery *d)
{
	static char buf[1024];

	buf[0] = '\0';
	for (size_t i = 0; i < atex_fmf_discovery_count(d); i++) {
		strcat(buf, i ? " " : "");
		strcat(buf, atex_fmf_discovery_test_name(d, i));
	}
	return buf;
}

static void without_plan(void **state)
{
	atex_fmf_discovery *d = discover(NULL, NULL, NULL);

	(void)state;
	/* A story with a `test` key is a test, as tmt takes it. */
	assert_string_equal(
		names(d),
		"/tests/a /tests/b /tests/c /tests/moved /tests/story");
	assert_null(atex_fmf_discovery_plan_name(d));
	assert_string_equal(atex_fmf_discovery_test_dir(d, 0), "tests");
	assert_string_equal(atex_fmf_discovery_test_dir(d, 3), "elsewhere");
	assert_string_equal(atex_fmf_discovery_test_root(d, 0), tree);
	assert_int_equal(atex_fmf_discovery_find(d, "/tests/c"), 2);
	assert_int_equal(atex_fmf_discovery_find(d, "/tests/x"), -1);
	assert_null(atex_fmf_discovery_test_name(d, 5));
	atex_fmf_discovery_free(d);
}

static void filter_and_context(void **state)
{
	atex_fmf_context *ctx = NULL;
	atex_fmf_discovery *d;

	(void)state;
	assert_int_equal(atex_fmf_context_new(&ctx), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora"), 0);
	d = discover(NULL, ctx, "tag: fedora & tier: 1");
	assert_string_equal(names(d), "/tests/a /tests/b");
	atex_fmf_discovery_free(d);
	atex_fmf_context_free(ctx);
}

static void plan_sections(void **state)
{
	atex_fmf_discovery *d = discover("/plans/sections", NULL, NULL);

	(void)state;
	/* `test` order is kept; the second section filters and excludes. */
	assert_string_equal(names(d),
			    "/first/tests/c /first/tests/a /second/tests/a");
	assert_string_equal(atex_fmf_discovery_plan_name(d), "/plans/sections");
	atex_fmf_discovery_free(d);
}

static void plan_steps(void **state)
{
	atex_fmf_discovery *d = discover("/plans/steps", NULL, NULL);
	char *s;

	(void)state;
	assert_string_equal(names(d), "/tests/a");
	s = json_dumps(atex_fmf_discovery_environment(d), JSON_COMPACT);
	assert_string_equal(s, "{\"A\":\"1\",\"B\":\"x=y\"}");
	free(s);
	s = json_dumps(atex_fmf_discovery_prepare(d), JSON_COMPACT);
	assert_string_equal(
		s, "[{\"how\":\"install\",\"package\":[\"vim\"],"
		   "\"name\":\"default-0\"},"
		   "{\"how\":\"shell\",\"script\":[\"echo 1\",\"echo 2\"],"
		   "\"name\":\"default-1\"}]");
	free(s);
	s = json_dumps(atex_fmf_discovery_finish(d), JSON_COMPACT);
	assert_string_equal(s, "[{\"how\":\"shell\",\"script\":[\"echo done\"],"
			       "\"name\":\"default-0\"}]");
	free(s);
	atex_fmf_discovery_free(d);

	d = discover("/plans/envdict", NULL, NULL);
	s = json_dumps(atex_fmf_discovery_environment(d),
		       JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"N\":\"1\",\"S\":\"s\",\"T\":\"True\"}");
	free(s);
	atex_fmf_discovery_free(d);
}

static void plan_context(void **state)
{
	atex_fmf_context *ctx = NULL;
	atex_fmf_discovery *d = discover("/plans/context", NULL, NULL);
	json_t *tag =
		json_object_get(atex_fmf_discovery_test_data(d, 0), "tag");

	(void)state;
	/* The plan's distro=fedora-40 matches "distro == fedora" in the
	 * tests and the f40 phase's `when`, but not the plan's own adjust
	 * (spec/plans/context.fmf): the plan stays enabled. */
	assert_non_null(tag);
	assert_non_null(strstr(names(d), " /f40/tests/a"));
	atex_fmf_discovery_free(d);
	/* The caller's context wins over the plan's. */
	assert_int_equal(atex_fmf_context_new(&ctx), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "rhel-9"), 0);
	d = discover("/plans/context", ctx, NULL);
	assert_null(json_object_get(atex_fmf_discovery_test_data(d, 0), "tag"));
	assert_null(strstr(names(d), "/f40/"));
	atex_fmf_discovery_free(d);
	atex_fmf_context_free(ctx);
}

static void errors(void **state)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	(void)state;
	o.plan = "/plans/nope";
	assert_int_equal(atex_fmf_discover(&d, tree, &o), ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "/plans/sections"));
	assert_null(d);
	o.plan = "/tests/a"; /* a test is not a plan */
	assert_int_equal(atex_fmf_discover(&d, tree, &o), ATEX_ENOTFOUND);
	/* tmt's imported plans are plans atex cannot run, said so. */
	o.plan = "/plans/imported";
	assert_int_equal(atex_fmf_discover(&d, tree, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "('plan: import:')"));
	o.plan = "/plans/badprepare";
	assert_int_equal(atex_fmf_discover(&d, tree, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(),
			       "prepare phase 'default-0': unsupported "
			       "method 'how: artifact'"));
	o.plan = "/plans/twins";
	assert_int_equal(atex_fmf_discover(&d, tree, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(),
			       "plan /plans/twins: discover phases 1 and 2 "
			       "are both named 'same'"));
	assert_int_equal(atex_fmf_discover(NULL, tree, NULL), ATEX_EINVAL);
	assert_int_equal(atex_fmf_discover(&d, NULL, NULL), ATEX_EINVAL);
	assert_null(d);
	o.plan = NULL;
	o.version = 99;
	assert_int_equal(atex_fmf_discover(&d, tree, &o), ATEX_EINVAL);
}

/* Metadata atex reads is checked at discovery: the message names the
 * file, the test and the key. */
static void bad_metadata(void **state)
{
	static const char *const cases[][2] = {
		{"/t:\n  test: 5\n", "'test' must be a shell command string "
				     "(it is int)"},
		{"/t:\n  test: [a, b]\n", "(it is list)"},
		{"/t:\n  test: ' '\n", "'test' is empty"},
		{"/t:\n  test: x\n  duration: -1\n", "'duration' must not be"},
		{"/t:\n  test: x\n  duration: 5 parsecs\n", "'duration' must"},
		{"/t:\n  test: x\n  duration: [1]\n", "'duration' must"},
		{"/t:\n  test: x\n  tty: maybe\n", "'tty' must be true or"},
		{"/t:\n  test: x\n  environment: [A=1]\n",
		 "'environment' must"},
		{"/t:\n  test: x\n  environment: {A: [1]}\n", "values must"},
		{"/t:\n  test: x\n  path: /nope\n", "'path' /nope: no such"},
	};
	atex_fmf_discovery *d = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *root = tree_new("main.fmf", cases[i][0], NULL);

		assert_int_equal(atex_fmf_discover(&d, root, NULL),
				 ATEX_EFORMAT);
		assert_null(d);
		if (!strstr(atex_error_last(), cases[i][1]) ||
		    !strstr(atex_error_last(), "main.fmf: test /t: "))
			fail_msg("case %zu: '%s' not in '%s'", i, cases[i][1],
				 atex_error_last());
		tree_remove(root);
	}
}

static void data_is_private(void **state)
{
	atex_fmf_discovery *d = discover(NULL, NULL, NULL);
	json_t *a = atex_fmf_discovery_test_data(d, 0);
	json_t *b = atex_fmf_discovery_test_data(d, 1);
	json_t *rule = json_object_get(json_object_get(a, "adjust"), "when");

	(void)state;
	/* Nested values are not shared between tests. */
	assert_ptr_not_equal(json_object_get(a, "adjust"),
			     json_object_get(b, "adjust"));
	json_string_set(rule, "changed");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(b, "adjust"), "when")),
			    "distro == fedora");
	assert_int_equal(atex_fmf_discovery_remove(d, 0), 0);
	assert_string_equal(atex_fmf_discovery_test_name(d, 0), "/tests/b");
	assert_int_equal(atex_fmf_discovery_remove(d, 9), ATEX_EINVAL);
	json_t *all = atex_fmf_discovery_to_json(d);
	assert_int_equal(json_array_size(json_object_get(all, "tests")), 4);
	assert_true(json_is_null(json_object_get(all, "plan")));
	json_decref(all);
	atex_fmf_discovery_free(d);
}

struct reader {
	atex_fmf_discovery *d;
	volatile int *stop;
	unsigned long reads;
};

/* What an executor does: take the test's data and dump it. */
static void *read_data(void *arg)
{
	struct reader *r = arg;

	while (!*r->stop) {
		json_t *data = atex_fmf_discovery_test_data_ref(r->d, 0);
		char *text = json_dumps(data, JSON_SORT_KEYS);

		if (!text || !strstr(text, "\"k\": "))
			abort();
		free(text);
		json_decref(data);
		__atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void data_replaced(void **state)
{
	atex_fmf_discovery *d = discover(NULL, NULL, NULL);
	json_t *old = atex_fmf_discovery_test_data_ref(d, 0);
	json_t *repl = json_pack("{s:i}", "k", 1);
	volatile int stop = 0;
	struct reader readers[3];
	pthread_t threads[3];

	(void)state;
	assert_non_null(old);
	assert_int_equal(atex_fmf_discovery_set_test_data(d, 0, repl), 0);
	/* The reader's object is untouched and alive; the test has the new. */
	assert_non_null(json_object_get(old, "adjust"));
	json_decref(old);
	assert_ptr_equal(atex_fmf_discovery_test_data(d, 0), repl);
	json_decref(repl);
	assert_int_equal(atex_fmf_discovery_set_test_data(d, 0, json_null()),
			 ATEX_EINVAL);
	repl = json_object();
	assert_int_equal(atex_fmf_discovery_set_test_data(d, 99, repl),
			 ATEX_EINVAL);
	json_decref(repl);
	/* Replaced 20,000 times while three threads read and dump it. */
	for (int i = 0; i < 3; i++) {
		readers[i] = (struct reader){d, &stop, 0};
		assert_int_equal(pthread_create(&threads[i], NULL, read_data,
						&readers[i]),
				 0);
	}
	for (int i = 0; i < 20000; i++) {
		json_t *data = json_object();

		for (int k = 0; k < 50; k++) {
			char key[16];

			snprintf(key, sizeof(key), "k%d", k);
			json_object_set_new(data, key, json_integer(i));
		}
		json_object_set_new(data, "k", json_integer(i));
		assert_int_equal(atex_fmf_discovery_set_test_data(d, 0, data),
				 0);
		json_decref(data);
	}
	for (int i = 0; i < 3; i++) /* each read at least once */
		while (!__atomic_load_n(&readers[i].reads, __ATOMIC_RELAXED))
			sched_yield();
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(threads[i], NULL);
	atex_fmf_discovery_free(d);
}

static void git_url(void **state)
{
	char *repo =
		tree_new("main.fmf", "test: ./t.sh\n/remote-a: {}\n", NULL);
	char *cache = tmpdir_new();
	char *local = tree_new("plans.fmf", "", NULL);
	char cmd[8192], plan[4096];
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	(void)state;
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && git init -q && git add -A && "
		 "git -c user.email=a@b -c user.name=t commit -qm one && "
		 "git tag v1 && printf 'test: ./t.sh\\n/remote-b: {}\\n' > "
		 "main.fmf && "
		 "git -c user.email=a@b -c user.name=t commit -qam two",
		 repo);
	assert_int_equal(system(cmd), 0);
	snprintf(plan, sizeof(plan),
		 "/p:\n  execute: {how: tmt}\n  discover:\n"
		 "    - {how: fmf, name: old, url: '%s', ref: v1}\n"
		 "    - {how: fmf, name: new, url: '%s'}\n",
		 repo, repo);
	write_file(local, "plans.fmf", plan);
	o.plan = "/plans/p";
	o.cache_dir = cache;
	assert_int_equal(atex_fmf_discover(&d, local, &o), 0);
	assert_string_equal(names(d), "/old/remote-a /new/remote-b");
	assert_non_null(strstr(atex_fmf_discovery_test_root(d, 0), cache));
	atex_fmf_discovery_free(d);
	/* A second run reuses the clone. */
	assert_int_equal(atex_fmf_discover(&d, local, &o), 0);
	assert_int_equal(atex_fmf_discovery_count(d), 2);
	atex_fmf_discovery_free(d);
	/* A ref that does not exist names the url. */
	snprintf(plan, sizeof(plan),
		 "/p:\n  execute: {how: tmt}\n  discover: {how: fmf, url: "
		 "'%s', ref: nope}\n",
		 repo);
	write_file(local, "plans.fmf", plan);
	assert_int_equal(atex_fmf_discover(&d, local, &o), ATEX_EEXTERNAL);
	assert_non_null(strstr(atex_error_last(), repo));
	tree_remove(repo);
	tree_remove(cache);
	tree_remove(local);
}

/* ------------------------------------------------------------------------
 * Selection as tmt does it (issue 9, section 1).
 */

static const char *sel_plans =
	"/plans:\n"
	"  execute: {how: tmt}\n"
	"  /untagged:\n"
	"    discover: {how: fmf, filter: 'tag: -slow'}\n"
	"  /bools:\n"
	"    discover: {how: fmf, filter: 'enabled: true & tty: false & "
	"tier: None & name: /t/b'}\n"
	"  /nameonly:\n"
	"    discover: {how: fmf, filter: '/t/a'}\n"
	"  /ordered:\n"
	"    discover: {how: fmf}\n"
	"  /twice:\n"
	"    discover: {how: fmf, test: [/t/b, /t/a, '^/t/b$']}\n"
	"  /shell:\n"
	"    discover:\n"
	"      tests:\n"
	"        - {name: one, test: echo 1, order: 60}\n"
	"        - {name: /two, test: echo 2}\n"
	"    prepare: {script: echo prepared}\n"
	"  /disabled:\n"
	"    enabled: false\n"
	"    adjust: {when: distro == fedora, enabled: true}\n"
	"    discover: {how: fmf}\n"
	"  /nodiscover: {}\n"
	"  /script:\n"
	"    execute: {how: tmt, script: [echo a, echo b]}\n"
	"  /both:\n"
	"    discover: {how: fmf, filter: 'tier: 1'}\n"
	"    execute: {how: tmt, script: echo a}\n"
	"  /keys:\n"
	"    discover:\n"
	"      - {how: fmf, name: inc, include: ['/t/c', '/t/a'], exclude: "
	"/t/c}\n"
	"      - {how: fmf, link: 'verifies:issue/1$'}\n"
	"      - {how: fmf, name: fedora, when: distro == fedora, test: /t/a}\n"
	"      - how: fmf\n"
	"        name: adj\n"
	"        adjust-tests: {duration+: ' *2', when: distro == fedora}\n"
	"        test: [/t/a, {name: /t/b, tag+: [extra]}]\n"
	"  /unknown:\n"
	"    discover: {how: fmf, modified-only: true}\n"
	"  /unknownprep:\n"
	"    prepare: {how: shell, script: x, where: guest}\n"
	"  /prefix:\n"
	"    discover: {how: fm, test: /t/a}\n"
	"    prepare: {how: sh, script: x}\n"
	"    execute: {how: tm}\n"
	"  /upgrade:\n"
	"    discover: {how: fmf, test: /t/a}\n"
	"    execute: {how: upgrade}\n"
	"  /execbad:\n"
	"    discover: {how: fmf, test: /t/a}\n"
	"    execute: {how: dependency}\n"
	"/noexec:\n"
	"  discover: {how: fmf}\n";

static const char *sel_tests = "test: ./run.sh\n"
			       "duration: 5m\n"
			       "/a:\n  order: 70\n  link: "
			       "[{verifies: 'https://x/issue/1'}]\n"
			       "/b:\n  tier: null\n"
			       "/c:\n  tag: [slow]\n  order: 10\n"
			       "/d:\n  story: a story with a test is a test\n";

static char *sel_names(const char *root, const char *plan,
		       const atex_fmf_context *ctx, const char *const *tests,
		       size_t n_tests, const char *exclude)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;
	char *s;

	o.plan = plan;
	o.context = ctx;
	o.tests = tests;
	o.n_tests = n_tests;
	o.excludes = &exclude;
	o.n_excludes = exclude ? 1 : 0;
	if (atex_fmf_discover(&d, root, &o) < 0)
		fail_msg("discover %s: %s", plan, atex_error_last());
	s = strdup(names(d));
	atex_fmf_discovery_free(d);
	return s;
}

#define assert_selects(root, plan, want)                                       \
	do {                                                                   \
		char *got_ = sel_names(root, plan, NULL, NULL, 0, NULL);       \
		assert_string_equal(got_, want);                               \
		free(got_);                                                    \
	} while (0)

/* 1.1, 1.3, 1.10: filters over tmt's exported metadata; `order`. */
static void select_normalized(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);

	(void)state;
	/* Tests without `tag` have tmt's default [], which no "slow"
	 * is in; order: c (10), b, d (50), a (70). */
	assert_selects(root, "/plans/untagged", "/t/b /t/d /t/a");
	assert_selects(root, "/plans/ordered", "/t/c /t/b /t/d /t/a");
	/* Defaults, lowercase booleans and `name` as tmt exports them. */
	assert_selects(root, "/plans/bools", "/t/b");
	tree_remove(root);
}

/* 1.2: a term without a key matches nothing in a plan filter (tmt gives
 * fmf no node name). Passes once filter.c takes name == NULL so. */
static void select_name_term(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	(void)state;
	o.plan = "/plans/nameonly";
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "");
	atex_fmf_discovery_free(d);
	tree_remove(root);
}

/* 1.4: a test listed twice comes twice, each name's tests by order. */
static void select_repeats(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);

	(void)state;
	assert_selects(root, "/plans/twice", "/t/b /t/a /t/b");
	tree_remove(root);
}

/* 1.5, 1.7: a phase without `how` is shell (prepare too); no discover:
 * only execute's scripts, as /script-00... */
static void select_shell_and_scripts(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	(void)state;
	o.plan = "/plans/shell";
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/two /one");
	assert_string_equal(
		json_string_value(json_object_get(
			atex_fmf_discovery_test_data(d, 0), "test")),
		"echo 2");
	assert_string_equal(
		json_string_value(json_object_get(
			atex_fmf_discovery_test_data(d, 0), "duration")),
		"1h");
	assert_string_equal(atex_fmf_discovery_test_dir(d, 0), ".");
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(atex_fmf_discovery_prepare(d), 0),
			"how")),
		"shell");
	atex_fmf_discovery_free(d);
	assert_selects(root, "/plans/nodiscover", "");
	assert_selects(root, "/plans/script", "/script-00 /script-01");
	o.plan = "/plans/both";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "either 'discover' or "));
	tree_remove(root);
}

/* 1.6: disabled plans and nodes without execute are not plans. */
static void select_plans(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_context *ctx = NULL;
	atex_fmf_discovery *d = NULL;
	char *got;

	(void)state;
	o.plan = "/plans/disabled";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(),
			       "'/plans/disabled' is disabled (enabled: "
			       "false)"));
	assert_null(strstr(strstr(atex_error_last(), "plans here"),
			   "/plans/disabled"));
	o.plan = "/noexec";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(),
			       "'/noexec' is not a plan: it has no "
			       "'execute'"));
	assert_int_equal(atex_fmf_context_new(&ctx), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora"), 0);
	got = sel_names(root, "/plans/disabled", ctx, NULL, 0, NULL);
	assert_string_equal(got, "/t/c /t/b /t/d /t/a");
	free(got);
	atex_fmf_context_free(ctx);
	tree_remove(root);
}

/* Python ATEX's discover() (compat_python_atex) takes any leaf that is
 * not a test as the plan: without `execute`, disabled too; a test or a
 * node with children is refused, saying which. */
static void select_plans_compat(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	(void)state;
	o.compat_python_atex = true;
	o.plan = "/noexec";
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/c /t/b /t/d /t/a");
	assert_non_null(atex_fmf_discovery_plan(d));
	assert_null(json_object_get(atex_fmf_discovery_plan(d), "execute"));
	atex_fmf_discovery_free(d);
	d = NULL;
	o.plan = "/plans/disabled";
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/c /t/b /t/d /t/a");
	atex_fmf_discovery_free(d);
	d = NULL;
	o.plan = "/t/a";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_ENOTFOUND);
	assert_non_null(
		strstr(atex_error_last(), "'/t/a' is a test, not a plan"));
	assert_null(d);
	o.plan = "/plans";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(),
			       "'/plans' has children: it is not one plan"));
	o.plan = "/nope";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "no plan '/nope'"));
	/* The CLI's rule (tmt's) is unchanged. */
	o.compat_python_atex = false;
	o.plan = "/noexec";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_ENOTFOUND);
	tree_remove(root);
}

/* 1.8: include, exclude, link, a phase's `when`, adjust-tests and a test
 * entry's own rule; keys atex does not read are refused. */
static void select_discover_keys(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_context *ctx = NULL;
	atex_fmf_discovery *d = NULL;
	json_t *data;
	char *got;

	(void)state;
	/* Phases without a name are default-0, default-1...; the `when`
	 * phase is off without distro=fedora but still counts. */
	assert_selects(root, "/plans/keys",
		       "/inc/t/a /default-0/t/a /adj/t/a /adj/t/b");
	assert_int_equal(atex_fmf_context_new(&ctx), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora"), 0);
	got = sel_names(root, "/plans/keys", ctx, NULL, 0, NULL);
	assert_string_equal(
		got, "/inc/t/a /default-0/t/a /fedora/t/a /adj/t/a /adj/t/b");
	free(got);
	o.plan = "/plans/keys";
	o.context = ctx;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	data = atex_fmf_discovery_test_data(d, 3);
	assert_string_equal(
		json_string_value(json_object_get(data, "duration")), "5m *2");
	data = atex_fmf_discovery_test_data(d, 4);
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(data, "tag"), 0)),
			    "extra");
	assert_null(json_object_get(atex_fmf_discovery_test_data(d, 2), "tag"));
	atex_fmf_discovery_free(d);
	/* tmt matches a phase's `when` case-sensitively (fmf's default),
	 * unlike adjust and adjust-tests: Fedora turns the fedora phase
	 * off but still doubles the duration. */
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "Fedora"), 0);
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d),
			    "/inc/t/a /default-0/t/a /adj/t/a /adj/t/b");
	data = atex_fmf_discovery_test_data(d, 2);
	assert_string_equal(
		json_string_value(json_object_get(data, "duration")), "5m *2");
	atex_fmf_discovery_free(d);
	atex_fmf_context_free(ctx);
	o.context = NULL;
	o.plan = "/plans/unknown";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "main.fmf: plan "
						  "/plans/unknown: discover "
						  "phase 'default-0' (how: "
						  "fmf): key 'modified-only'"));
	o.plan = "/plans/unknownprep";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "key 'where'"));
	/* Listing tests only: a prepare phase atex cannot run is a warning
	 * (a discover phase never is). */
	o.tests_only = true;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	atex_fmf_discovery_free(d);
	o.plan = "/plans/unknown";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_EFORMAT);
	/* An execute method tmt does not have is an error even then;
	 * `upgrade`, which atex does not run, only when running. */
	o.plan = "/plans/execbad";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(),
			       "plan /plans/execbad: execute phase 1: "
			       "unsupported method 'how: dependency'"));
	o.plan = "/plans/upgrade";
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/a");
	atex_fmf_discovery_free(d);
	o.tests_only = false;
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "'how: upgrade'"));
	tree_remove(root);
}

/* tmt keeps a test when `manual is False` and `enabled is True`: any
 * other value, even "false", 1 or null, drops it. */
static void select_strict_bools(void **state)
{
	char *root = tree_new(
		"main.fmf",
		"/plan:\n  execute: {how: tmt}\n  discover: {how: fmf}\n",
		"t/main.fmf",
		"test: ./run.sh\n"
		"/m-str: {manual: 'false'}\n/m-zero: {manual: 0}\n"
		"/m-null: {manual: null}\n/m-false: {manual: false}\n"
		"/e-str: {enabled: 'true'}\n/e-one: {enabled: 1}\n"
		"/e-null: {enabled: null}\n/e-true: {enabled: true}\n"
		"/plain: {}\n",
		NULL);
	char *got;

	(void)state;
	got = sel_names(root, "/plan", NULL, NULL, 0, NULL);
	assert_string_equal(got, "/t/e-true /t/m-false /t/plain");
	free(got);
	tree_remove(root);
}

/* `discover:` left empty (null) is no discover at all, as in tmt: the
 * plan runs what `execute: script` says; `prepare:` empty is no phase. */
static void select_null_steps(void **state)
{
	char *root = tree_new("main.fmf",
			      "/plan:\n  execute: {how: tmt, script: echo}\n"
			      "  discover:\n  prepare:\n",
			      "t/main.fmf", "test: ./run.sh\n", NULL);
	char *got;

	(void)state;
	got = sel_names(root, "/plan", NULL, NULL, 0, NULL);
	assert_string_equal(got, "/script-00");
	free(got);
	tree_remove(root);
}

/* Needles of `link` are in OR, whatever shape a test's `link` has: a
 * list, a single string or a single mapping. */
static void select_links_any(void **state)
{
	char *root = tree_new(
		"main.fmf",
		"/plan:\n  execute: {how: tmt}\n"
		"  discover:\n    how: fmf\n"
		"    link: ['verifies:/r/1', '/r/2', 'relates:/r/3']\n",
		"t/main.fmf",
		"test: ./run.sh\n/a: {link: [{verifies: /r/1}]}\n"
		"/b: {link: /r/2}\n/c: {link: {relates: /r/3}}\n"
		"/d: {link: /r/4}\n",
		NULL);
	char *got;

	(void)state;
	got = sel_names(root, "/plan", NULL, NULL, 0, NULL);
	assert_string_equal(got, "/t/a /t/b /t/c");
	free(got);
	tree_remove(root);
}

/* A name a shell phase lists twice is one test, at its first place, with
 * the later keys winning (tmt grows these tests as fmf children). */
static void select_shell_repeats(void **state)
{
	char *root = tree_new("main.fmf",
			      "/plan:\n  execute: {how: tmt}\n"
			      "  discover:\n    tests:\n"
			      "      - {name: /a, test: echo a, order: 90}\n"
			      "      - {name: /b, test: echo b}\n"
			      "      - {name: /a, test: echo a2}\n"
			      "      - {name: /c, test: echo c, order: 60}\n"
			      "      - {name: /c, test: echo c2, order: 10}\n",
			      NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	(void)state;
	o.plan = "/plan";
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/c /b /a");
	assert_string_equal(
		json_string_value(json_object_get(
			atex_fmf_discovery_test_data(d, 2), "test")),
		"echo a2");
	atex_fmf_discovery_free(d);
	tree_remove(root);
}

/* tmt refuses a test whose `test` is null once the phase's names select
 * it, even when a filter would then drop it. */
static void select_null_test(void **state)
{
	char *root = tree_new("main.fmf",
			      "/plan:\n  execute: {how: tmt}\n"
			      "  discover: {how: fmf, filter: 'tag: x'}\n",
			      "t/main.fmf",
			      "test: ./run.sh\n/a: {tag: [x]}\n"
			      "/null: {test: null}\n",
			      NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	(void)state;
	o.plan = "/plan";
	assert_int_equal(atex_fmf_discover(&d, root, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(),
			       "t/main.fmf: test /t/null: 'test' must be"));
	tree_remove(root);
}

/* `how` names the first of tmt's methods it is a prefix of. */
static void select_method_prefix(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;
	json_t *prepare;

	(void)state;
	o.plan = "/plans/prefix";
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/a");
	prepare = json_array_get(atex_fmf_discovery_prepare(d), 0);
	assert_string_equal(json_string_value(json_object_get(prepare, "how")),
			    "shell");
	atex_fmf_discovery_free(d);
	tree_remove(root);
}

/* 1.11: --test and --exclude over the names tests have in their tree. */
static void select_names(void **state)
{
	char *root =
		tree_new("main.fmf", sel_plans, "t/main.fmf", sel_tests, NULL);
	const char *const want[] = {"/t/[ab]$", "^/two"};
	char *got;

	(void)state;
	got = sel_names(root, "/plans/twice", NULL, want, 1, "b");
	assert_string_equal(got, "/t/a");
	free(got);
	got = sel_names(root, "/plans/shell", NULL, want, 2, NULL);
	assert_string_equal(got, "/two");
	free(got);
	got = sel_names(root, NULL, NULL, want, 1, NULL);
	assert_string_equal(got, "/t/b /t/a");
	free(got);
	got = sel_names(root, "/plans/keys", NULL, want + 1, 1, NULL);
	assert_string_equal(got, "");
	free(got);
	tree_remove(root);
}

/* Discovery adjusts as tmt does, comparing context values
 * case-insensitively (`distro == fedora` holds for Fedora); the fmf tree
 * API keeps fmf's default, case sensitive. */
static void context_case(void **state)
{
	const char *filter = "tag: fedora";
	atex_fmf_context *ctx = NULL;
	atex_fmf_discovery *d;
	atex_fmf_tree *t;
	json_t *nodes;

	(void)state;
	assert_int_equal(atex_fmf_context_new(&ctx), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "FEDORA"), 0);
	d = discover(NULL, ctx, filter);
	assert_string_equal(
		names(d),
		"/tests/a /tests/b /tests/c /tests/moved /tests/story");
	atex_fmf_discovery_free(d);
	d = discover("/plans/all", ctx, filter);
	assert_string_equal(
		names(d),
		"/tests/a /tests/b /tests/c /tests/moved /tests/story");
	atex_fmf_discovery_free(d);
	/* The caller's context is not changed. */
	assert_true(atex_fmf_context_case_sensitive(ctx));
	assert_int_equal(atex_fmf_tree_load(&t, tree), 0);
	assert_int_equal(atex_fmf_tree_adjust(t, ctx), 0);
	assert_int_equal(atex_fmf_tree_prune(&nodes, t, NULL, 0, &filter, 1),
			 0);
	assert_int_equal(json_object_size(nodes), 0);
	json_decref(nodes);
	atex_fmf_tree_free(t);
	atex_fmf_context_free(ctx);
}

/* Test names are paths below a results directory: a name with an
 * empty, "." or ".." component, from the tree or from a phase name, is
 * refused with the file, line and node named. The root "/" is fine. */
static void unsafe_names(void **state)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;
	char *t;

	(void)state;
	t = tree_new("main.fmf",
		     "/ok:\n  test: 'true'\n/x/../../v:\n"
		     "  test: 'true'\n",
		     NULL);
	assert_int_equal(atex_fmf_discover(&d, t, NULL), ATEX_EFORMAT);
	assert_null(d);
	assert_non_null(strstr(atex_error_last(),
			       "/main.fmf:3:1: test /x/../../v: the name has "
			       "a '..' component"));
	tree_remove(t);
	t = tree_new("main.fmf",
		     "/p:\n  execute: {how: tmt}\n  discover:\n"
		     "    - {how: fmf, name: '..', test: /t}\n"
		     "    - {how: fmf, name: b, test: /t}\n"
		     "/t:\n  test: 'true'\n",
		     NULL);
	o.plan = "/p";
	assert_int_equal(atex_fmf_discover(&d, t, &o), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(),
			       "plan /p: discover phase '..': test /../t: "));
	tree_remove(t);
	t = tree_new("main.fmf", "test: 'true'\n", NULL);
	assert_int_equal(atex_fmf_discover(&d, t, NULL), 0);
	assert_string_equal(names(d), "/");
	atex_fmf_discovery_free(d);
	tree_remove(t);
}

/* Plain names, no tree: what an orchestrator takes for a program's own
 * executor (the Python API's AdHocOrchestrator with any test names). */
static void from_names(void **state)
{
	const char *const list[] = {"/b", "/a", "/b", "x y"};
	const char *const bad[] = {"/a", ""};
	atex_fmf_discovery *d = NULL;

	(void)state;
	assert_int_equal(atex_fmf_discovery_new_names(&d, list, 4), 0);
	assert_string_equal(names(d), "/b /a /b x y");
	assert_null(atex_fmf_discovery_plan(d));
	assert_null(atex_fmf_discovery_plan_name(d));
	assert_null(atex_fmf_discovery_root(d));
	assert_string_equal(atex_fmf_discovery_test_root(d, 1), "");
	assert_string_equal(atex_fmf_discovery_test_dir(d, 1), "");
	assert_true(json_is_object(atex_fmf_discovery_test_data(d, 3)));
	assert_int_equal(json_object_size(atex_fmf_discovery_test_data(d, 3)),
			 0);
	assert_int_equal(atex_fmf_discovery_find(d, "/a"), 1);
	assert_int_equal(atex_fmf_discovery_remove(d, 0), 0);
	assert_string_equal(names(d), "/a /b x y");
	atex_fmf_discovery_free(d);

	assert_int_equal(atex_fmf_discovery_new_names(&d, NULL, 0), 0);
	assert_int_equal(atex_fmf_discovery_count(d), 0);
	atex_fmf_discovery_free(d);

	assert_int_equal(atex_fmf_discovery_new_names(&d, bad, 2), ATEX_EINVAL);
	assert_null(d);
	assert_non_null(strstr(atex_error_last(), "name 2 is empty"));
}

/* compat_python_atex: Python ATEX's discover() semantics. The caller's
 * names add to the phase's `test` names (each test once), filters hold
 * together with the phase's, a phase the plan names prefixes its tests
 * even alone; tmt's way intersects names and replaces filters. */
static void select_compat_python_atex(void **state)
{
	static const char *plans_fmf =
		"/plans:\n"
		"  /filtered:\n"
		"    discover:\n"
		"      how: fmf\n"
		"      filter: ['tier: 1']\n"
		"      test: [/t/a, /t/c, /t/a]\n"
		"      exclude: [/t/c]\n"
		"    execute: {how: tmt}\n"
		"  /named:\n"
		"    discover: {how: fmf, name: sec, test: /t/b}\n"
		"    execute: {how: tmt}\n";
	static const char *tests_tree = "test: ./run.sh\n"
					"tier: 1\n"
					"/a: {}\n"
					"/b: {}\n"
					"/c: {}\n"
					"/d:\n  tier: 2\n";
	char *root =
		tree_new("main.fmf", plans_fmf, "t/main.fmf", tests_tree, NULL);
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	const char *names_b[] = {"/t/b"}, *names_d[] = {"/t/d"};
	const char *tier1[] = {"tier: 1"};
	atex_fmf_discovery *d = NULL;

	(void)state;
	/* tmt: names narrow the phase's (a listed twice comes twice). */
	o.plan = "/plans/filtered";
	o.tests = names_b;
	o.n_tests = 1;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "");
	atex_fmf_discovery_free(d);
	o.tests = NULL;
	o.n_tests = 0;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/a /t/a");
	atex_fmf_discovery_free(d);
	/* Python ATEX: the union, once each, c still excluded. */
	o.compat_python_atex = true;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/a");
	atex_fmf_discovery_free(d);
	o.tests = names_b;
	o.n_tests = 1;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/a /t/b");
	atex_fmf_discovery_free(d);
	/* The phase's filter still holds: d (tier 2) is not taken. */
	o.tests = names_d;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/a");
	atex_fmf_discovery_free(d);
	/* Filters add up: tmt's replace the phase's (d is then taken). */
	o.filters = tier1;
	o.n_filters = 1;
	o.compat_python_atex = false;
	o.tests = NULL;
	o.n_tests = 0;
	o.plan = NULL;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/a /t/b /t/c");
	atex_fmf_discovery_free(d);
	o.filters = NULL;
	o.n_filters = 0;
	/* A named single phase prefixes only in Python ATEX's way. */
	o.plan = "/plans/named";
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/b");
	atex_fmf_discovery_free(d);
	o.compat_python_atex = true;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/sec/t/b");
	assert_string_equal(atex_fmf_discovery_test_dir(d, 0), "t");
	atex_fmf_discovery_free(d);
	/* A version 2 struct ends before the field: tmt's way. */
	o.version = 2;
	assert_int_equal(atex_fmf_discover(&d, root, &o), 0);
	assert_string_equal(names(d), "/t/b");
	atex_fmf_discovery_free(d);
	tree_remove(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(without_plan),
		cmocka_unit_test(filter_and_context),
		cmocka_unit_test(plan_sections),
		cmocka_unit_test(plan_steps),
		cmocka_unit_test(plan_context),
		cmocka_unit_test(errors),
		cmocka_unit_test(bad_metadata),
		cmocka_unit_test(data_is_private),
		cmocka_unit_test(git_url),
		cmocka_unit_test(select_normalized),
		cmocka_unit_test(select_name_term),
		cmocka_unit_test(select_repeats),
		cmocka_unit_test(select_shell_and_scripts),
		cmocka_unit_test(select_plans),
		cmocka_unit_test(select_plans_compat),
		cmocka_unit_test(select_discover_keys),
		cmocka_unit_test(select_method_prefix),
		cmocka_unit_test(select_strict_bools),
		cmocka_unit_test(select_null_test),
		cmocka_unit_test(select_shell_repeats),
		cmocka_unit_test(select_links_any),
		cmocka_unit_test(select_compat_python_atex),
		cmocka_unit_test(select_null_steps),
		cmocka_unit_test(select_names),
		cmocka_unit_test(context_case),
		cmocka_unit_test(unsafe_names),
		cmocka_unit_test(from_names),
		cmocka_unit_test(data_replaced),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
