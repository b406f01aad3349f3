/*
 * test_where.c - tmt's multihost key `where` in a plan's discover,
 * prepare, finish and execute phases is refused, naming the plan, the
 * phase and where in the plan's file the key is (issue 13): a phase meant
 * for some guests only must not run on atex's one system unnoticed.
 */
#include "helpers.h"

#include "atex/atex.h"

static const char *plans = "/plans:\n"
			   "  /discover:\n"
			   "    execute: {how: tmt}\n"
			   "    discover:\n"
			   "      how: fmf\n"
			   "      where: client\n"
			   "  /prepare:\n"
			   "    execute: {how: tmt}\n"
			   "    discover: {how: fmf}\n"
			   "    prepare:\n"
			   "      - how: shell\n"
			   "        script: 'true'\n"
			   "      - name: on-server\n"
			   "        how: shell\n"
			   "        script: 'true'\n"
			   "        where: [server]\n"
			   "  /finish:\n"
			   "    execute: {how: tmt}\n"
			   "    discover: {how: fmf}\n"
			   "    finish:\n"
			   "      how: shell\n"
			   "      script: 'true'\n"
			   "      where: client\n"
			   "  /execute:\n"
			   "    discover: {how: fmf}\n"
			   "    execute:\n"
			   "      how: tmt\n"
			   "      where: client\n"
			   "  /multi:\n"
			   "    discover: {how: fmf}\n"
			   "    execute: {how: tmt}\n"
			   "    provision:\n"
			   "      - name: client\n"
			   "        role: client\n"
			   "      - name: server\n"
			   "        role: server\n"
			   "  /one-guest:\n"
			   "    discover: {how: fmf}\n"
			   "    execute: {how: tmt}\n"
			   "    provision:\n"
			   "      - how: virtual\n"
			   "  /inherited:\n"
			   "    discover: {how: fmf}\n"
			   "    execute: {how: tmt}\n"
			   "    /multi:\n"
			   "      provision: [{role: a}, {role: b}]\n"
			   "  /plain:\n"
			   "    discover: {how: fmf}\n"
			   "    execute: {how: tmt}\n"
			   "/t:\n"
			   "  test: 'true'\n";

static char *tree;

static int setup(void **state)
{
	(void)state;
	tree = tree_new("main.fmf", plans, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tree_remove(tree);
	return 0;
}

/* Discovering `plan` fails (or, listing only, succeeds) with `want` in
 * the message: the file, line and column, the plan and the phase. */
static void refused(const char *plan, bool tests_only, const char *want)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;
	char *full = NULL;

	o.plan = plan;
	o.tests_only = tests_only;
	assert_int_equal(atex_fmf_discover(&d, tree, &o), ATEX_EFORMAT);
	assert_true(asprintf(&full, "%s/main.fmf:%s", tree, want) > 0);
	if (!strstr(atex_error_last(), full))
		fail_msg("'%s' not in '%s'", full, atex_error_last());
	if (!strstr(want, "provision"))
		assert_non_null(strstr(atex_error_last(), "key 'where'"));
	assert_non_null(strstr(atex_error_last(), "multihost"));
	free(full);
}

static void test_where_refused(void **state)
{
	(void)state;
	refused("/plans/discover", false,
		"6:7: plan /plans/discover: discover phase 'default-0'");
	/* Listing only: a discover phase is never a warning. */
	refused("/plans/discover", true, "6:7: plan /plans/discover");
	refused("/plans/prepare", false,
		"16:9: plan /plans/prepare: prepare phase 'on-server'");
	refused("/plans/finish", false,
		"23:7: plan /plans/finish: finish phase 'default-0'");
	refused("/plans/execute", false,
		"28:7: plan /plans/execute: execute phase 1");
	/* Two guests or more: tmt's multihost, refused the same way. */
	refused("/plans/multi", false,
		"33:7: plan /plans/multi: provision: 2 guests: tmt's "
		"multihost is not supported");
	/* Steps inherited: the plan is not as written, the list is. */
	refused("/plans/inherited/multi", false,
		"46:18: plan /plans/inherited/multi: provision: 2 guests");
}

/* One guest in a list is not multihost; listing tests, two are a
 * warning. */
static void test_multihost_listing(void **state)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;

	(void)state;
	o.plan = "/plans/one-guest";
	if (atex_fmf_discover(&d, tree, &o))
		fail_msg("%s", atex_error_last());
	atex_fmf_discovery_free(d);
	o.plan = "/plans/multi";
	o.tests_only = true;
	if (atex_fmf_discover(&d, tree, &o))
		fail_msg("%s", atex_error_last());
	assert_int_equal(atex_fmf_discovery_count(d), 1);
	atex_fmf_discovery_free(d);
}

/* Listing tests only: prepare, finish and execute phases are not run, so
 * `where` there is a warning, as any key atex does not run is. */
static void test_where_listing(void **state)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	const char *const plans_listed[] = {"/plans/prepare", "/plans/finish",
					    "/plans/execute", "/plans/plain"};
	atex_fmf_discovery *d = NULL;

	(void)state;
	o.tests_only = true;
	for (size_t i = 0; i < 4; i++) {
		o.plan = plans_listed[i];
		if (atex_fmf_discover(&d, tree, &o))
			fail_msg("%s: %s", plans_listed[i], atex_error_last());
		assert_int_equal(atex_fmf_discovery_count(d), 1);
		atex_fmf_discovery_free(d);
	}
	o.tests_only = false;
	o.plan = "/plans/plain";
	assert_int_equal(atex_fmf_discover(&d, tree, &o), 0);
	atex_fmf_discovery_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_where_refused),
		cmocka_unit_test(test_where_listing),
		cmocka_unit_test(test_multihost_listing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
