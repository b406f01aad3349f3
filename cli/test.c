/*
 * test.c - `atex test [PROVISIONER] [--context K=V]... [--plan NAME]
 * [--env K=V]... --artifacts DIR TREE TEST_NAME...`: discover, reserve one
 * system, prepare it, run the named tests one after another (each into
 * DIR/<test name>/), clean up, and print every result as its test ends.
 *
 * Exit status: 0 when every result is pass, info, warn or skip, 1 when
 * any is something else (fail, error, infra, a custom status, no status),
 * 2 on usage and setup errors, 128+N after signal N. The first
 * signal (signals.c) cancels the executor and aborts the provisioner; the
 * main thread then cleans up.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

enum { OPT_ARTIFACTS = 0x200 };

static const struct option test_options[] = {
	CLI_PROVISION_LONG_OPTIONS,
	CLI_SUITE_LONG_OPTIONS,
	{"filter", required_argument, NULL, CLI_OPT_FILTER},
	CLI_SUITE_NAME_OPTIONS,
	{"artifacts", required_argument, NULL, OPT_ARTIFACTS},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct test_args {
	struct cli_provision prov;
	struct cli_suite suite;
	const char *artifacts;
	const char *tree;
	char **tests;
	int n_tests;
	char **slashed;	 /* names we completed with a "/" (owned) */
	char **selected; /* without TEST_NAME: every discovered test */
	int n_named;	 /* TEST_NAMEs given (slashed has room for them) */
};

/* What the signal thread and the main thread share: the signals, which
 * stop the provisioner and executor published there. */
struct test_state {
	struct cli_signals signals;
	atex_provisioner *prov;
};

static void test_usage(FILE *out)
{
	fprintf(out,
		"usage: atex test PROVISIONER [--context K=V]... [--plan "
		"NAME]\n"
		"                 [--filter EXPR]... [--test REGEX]... "
		"[--exclude REGEX]...\n"
		"                 [--env K=V]... --artifacts DIR TREE "
		"[TEST_NAME...]\n"
		"\n"
		"Reserves one system, runs the plan's prepare steps and the "
		"named\n"
		"tests one after another (each into DIR/<test name>/), the "
		"plan's\n"
		"finish steps, and prints every result. --filter, --test and "
		"--exclude\n"
		"narrow the plan's tests; without TEST_NAME (needs one of "
		"them) "
		"every\n"
		"test they leave runs, in the plan's order (a test the plan "
		"lists twice\n"
		"runs twice, the second time into DIR/<test name>~2/).\n"
		"Exit status: 0 when every result is pass/info/warn/skip, 1 "
		"when any is\n"
		"fail/error/infra (a result without status is an error), 2 on "
		"usage and\n"
		"setup errors and when nothing is selected, 130 after Ctrl-C.\n"
		"\n%s",
		cli_provision_usage);
}

/* ------------------------------------------------------------------------
 * Results.
 */

/* Prints the results of one test; returns whether all were fine. */
static bool print_results(const char *name, const char *dir)
{
	char *path = malloc(strlen(dir) + sizeof("/results"));
	char *line = NULL;
	size_t cap = 0;
	bool ok = true;
	FILE *f;

	if (!path)
		return false;
	sprintf(path, "%s/results", dir);
	f = fopen(path, "r");
	if (!f) {
		cli_error("%s: no results in %s", name, path);
		free(path);
		return false;
	}
	while (getline(&line, &cap, f) > 0) {
		json_t *r = json_loads(line, 0, NULL);
		const char *status =
			json_string_value(json_object_get(r, "status"));
		const char *sub = json_string_value(json_object_get(r, "name"));
		const char *note =
			json_string_value(json_object_get(r, "note"));

		if (!r) {
			cli_error("%s: unreadable line in %s", name, path);
			ok = false;
			continue;
		}
		ok &= cli_status_ok(status);
		cli_print_result(status, name, sub, note, NULL);
		json_decref(r);
	}
	fflush(stdout);
	free(line);
	fclose(f);
	free(path);
	return ok;
}

/* ------------------------------------------------------------------------
 * Running.
 */

/* What an earlier run of the test left in its artifacts directory: its
 * uploads would otherwise be appended to. Tests below it (/a/b in
 * DIR/a/b) keep theirs. */
static int clear_artifacts(const char *dir)
{
	static const char *const ours[] = {"results", "files"};

	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		char *p = malloc(strlen(dir) + strlen(ours[i]) + 2);
		int rc;

		if (!p)
			return cli_fail("test");
		sprintf(p, "%s/%s", dir, ours[i]);
		rc = cli_remove_tree(p, "test");
		free(p);
		if (rc < 0)
			return CLI_USAGE;
	}
	return CLI_OK;
}

/* Runs every test; CLI_OK, CLI_FAILED (a result not fine), CLI_USAGE. */
static int run_tests(struct test_state *st, atex_executor *exec,
		     const struct test_args *a)
{
	bool all_ok = true;

	for (int i = 0; i < a->n_tests; i++) {
		const char *name = a->tests[i];
		char *dir = malloc(strlen(a->artifacts) + strlen(name) + 16);
		int rc, code, seen = 0;

		if (!dir)
			return cli_fail("test");
		/* A test run twice keeps both results: DIR/NAME~2/... */
		for (int j = 0; j < i; j++)
			seen += !strcmp(a->tests[j], name);
		sprintf(dir, "%s%s%s", a->artifacts, name[0] == '/' ? "" : "/",
			name);
		if (seen)
			sprintf(dir + strlen(dir), "~%d", seen + 1);
		/* DIR/<test> must not lead out of DIR through a link
		 * planted there. */
		rc = cli_confine(a->artifacts, dir + strlen(a->artifacts),
				 "test") < 0
			     ? CLI_USAGE
			     : clear_artifacts(dir);
		if (rc != CLI_OK) {
			free(dir);
			return rc;
		}
		rc = atex_executor_run_test(exec, name, dir, a->suite.env,
					    &code);
		if (rc == ATEX_ENOTFOUND || rc == ATEX_EIO ||
		    rc == ATEX_EINVAL || rc == ATEX_ENOMEM) {
			free(dir);
			return cli_fail(name);
		}
		/* Shown as atex run shows it: NAME~2 for the second run. */
		all_ok &= print_results(dir + strlen(a->artifacts) +
						(name[0] == '/' ? 0 : 1),
					dir);
		free(dir);
		if (rc == ATEX_ECANCELED || cli_signals_received(&st->signals))
			return CLI_FAILED;
	}
	return all_ok ? CLI_OK : CLI_FAILED;
}

static int run_on(struct test_state *st, atex_remote *remote,
		  atex_fmf_discovery *disc, const struct test_args *a)
{
	struct atex_fmf_executor_options o = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	atex_executor *exec = NULL;
	int rc;

	o.connection = atex_remote_connection(remote);
	o.discovery = disc;
	if (atex_fmf_executor_new(&exec, &o) < 0)
		return cli_fail("test");
	if (!cli_signals_publish(&st->signals, st->prov, exec, NULL)) {
		rc = CLI_FAILED;
		goto out;
	}
	if (atex_executor_start(exec) < 0) {
		rc = cli_signals_received(&st->signals) ? CLI_FAILED
							: cli_fail("test");
		goto out;
	}
	rc = run_tests(st, exec, a);
	atex_executor_stop(exec);
out:
	cli_signals_publish(&st->signals, st->prov, NULL, NULL);
	atex_executor_free(exec);
	return rc;
}

static int reserve_and_run(struct test_state *st, atex_provisioner *prov,
			   atex_fmf_discovery *disc, const struct test_args *a)
{
	atex_remote *remote = NULL;
	int rc;

	st->prov = prov;
	if (!cli_signals_publish(&st->signals, prov, NULL, NULL))
		return CLI_FAILED;
	rc = cli_provision_reserve(&remote, prov, &st->signals, "test");
	if (rc != CLI_OK)
		return rc;
	rc = run_on(st, remote, disc, a);
	atex_remote_release(remote);
	return rc;
}

/* The first discovered test whose name ends with "/NAME" (the way people
 * shorten test names), for a "did you mean"; NULL when none does. */
static const char *similar_test(const atex_fmf_discovery *disc,
				const char *name)
{
	size_t len;

	while (*name == '/')
		name++;
	len = strlen(name);
	if (!len)
		return NULL;
	for (size_t i = 0; i < atex_fmf_discovery_count(disc); i++) {
		const char *t = atex_fmf_discovery_test_name(disc, i);
		size_t tlen = strlen(t);

		if (tlen > len && t[tlen - len - 1] == '/' &&
		    !strcmp(t + tlen - len, name))
			return t;
	}
	return NULL;
}

/* Without TEST_NAME: every test the selection options left, in order. */
static int select_all(atex_fmf_discovery *disc, struct test_args *a)
{
	size_t n = atex_fmf_discovery_count(disc);

	a->selected = calloc(n + 1, sizeof(*a->selected));
	if (!a->selected || n > 100000000)
		return cli_fail("test");
	for (size_t i = 0; i < n; i++)
		a->selected[i] = (char *)atex_fmf_discovery_test_name(disc, i);
	a->tests = a->selected;
	a->n_tests = (int)n;
	return CLI_OK;
}

/* Discovers and checks that every named test is there (a leading "/" may
 * be left out). */
static int discover(atex_fmf_discovery **disc, struct test_args *a)
{
	int rc = cli_suite_discover(disc, &a->suite, a->tree, "test");

	if (rc != CLI_OK)
		return rc;
	if (a->n_tests == 0)
		return select_all(*disc, a);
	for (int i = 0; i < a->n_tests; i++) {
		const char *similar;
		char *slashed;

		if (atex_fmf_discovery_find(*disc, a->tests[i]) >= 0)
			continue;
		slashed = malloc(strlen(a->tests[i]) + 2);
		if (slashed) {
			sprintf(slashed, "/%s", a->tests[i]);
			if (a->tests[i][0] != '/' &&
			    atex_fmf_discovery_find(*disc, slashed) >= 0) {
				a->tests[i] = a->slashed[i] = slashed;
				continue;
			}
			free(slashed);
		}
		similar = similar_test(*disc, a->tests[i]);
		cli_error("test: no test named '%s' in %s%s%s%s%s%s",
			  a->tests[i], a->tree, a->suite.plan ? " plan " : "",
			  a->suite.plan ? a->suite.plan : "",
			  similar ? " (did you mean '" : "",
			  similar ? similar : "", similar ? "'?)" : "");
		return CLI_USAGE;
	}
	return CLI_OK;
}

static int test_run(struct test_args *a)
{
	struct test_state st = {.signals = CLI_SIGNALS_INIT};
	atex_fmf_discovery *disc = NULL;
	atex_provisioner *prov = NULL;
	int rc;

	rc = cli_provision_one_system(&a->prov, "test");
	if (rc == CLI_OK)
		rc = cli_check_owner(a->artifacts, "test: --artifacts") < 0
			     ? CLI_USAGE
			     : discover(&disc, a);
	if (rc == CLI_OK)
		rc = cli_provision_build(&prov, &a->prov);
	if (rc == CLI_OK)
		rc = cli_signals_start(&st.signals, "test", NULL, NULL, NULL);
	if (rc == CLI_OK)
		rc = reserve_and_run(&st, prov, disc, a);
	cli_signals_publish(&st.signals, NULL, NULL, NULL);
	if (prov && atex_provisioner_stop(prov) < 0)
		cli_fail("test");
	atex_provisioner_free(prov);
	cli_signals_stop(&st.signals);
	if (cli_signals_received(&st.signals))
		rc = 128 + cli_signals_received(&st.signals);
	atex_fmf_discovery_free(disc);
	return rc;
}

/* ------------------------------------------------------------------------
 * The command line.
 */

static int take_option(void *data, int opt, const char *arg, const char *text)
{
	struct test_args *a = data;

	if (opt == OPT_ARTIFACTS) {
		a->artifacts = arg;
		return CLI_OK;
	}
	return cli_suite_or_provision_option(&a->suite, &a->prov, opt, arg,
					     text, test_usage);
}

/* CLI_OK, -1 for --help, or CLI_USAGE. */
static int parse_args(struct test_args *a, int argc, char **argv)
{
	static const struct cli_options opts = {"h", test_options, test_usage,
						take_option};
	int rc = cli_parse_options(&opts, a, argc, argv);

	if (rc != CLI_OK)
		return rc;
	if (!a->artifacts) {
		cli_error("test: --artifacts DIR is required");
		return CLI_USAGE;
	}
	if (argc - optind < 2 &&
	    !(argc - optind == 1 && (a->suite.n_tests || a->suite.n_excludes ||
				     a->suite.n_filters))) {
		cli_error("test: missing %s (atex test PROVISIONER "
			  "--artifacts DIR TREE TEST_NAME..., or --test, "
			  "--exclude or --filter instead of TEST_NAME)",
			  argc == optind ? "TREE and TEST_NAME" : "TEST_NAME");
		return CLI_USAGE;
	}
	a->tree = argv[optind];
	a->tests = argv + optind + 1;
	a->n_tests = argc - optind - 1;
	a->n_named = a->n_tests;
	a->slashed = calloc((size_t)a->n_tests + 1, sizeof(*a->slashed));
	if (!a->slashed)
		return cli_fail("test");
	return CLI_OK;
}

int cli_test(int argc, char **argv)
{
	struct test_args a = {0};
	int rc;

	rc = cli_provision_init(&a.prov, argc);
	if (rc == CLI_OK)
		rc = cli_suite_init(&a.suite, argc);
	if (rc == CLI_OK)
		rc = parse_args(&a, argc, argv);
	if (rc == CLI_OK)
		rc = test_run(&a);
	for (int i = 0; a.slashed && i < a.n_named; i++)
		free(a.slashed[i]);
	free(a.slashed);
	free(a.selected);
	cli_suite_free(&a.suite);
	cli_provision_free(&a.prov);
	return rc < 0 ? CLI_OK : rc;
}
