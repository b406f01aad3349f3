/*
 * fmf.c - `atex fmf discover|dump|match`: the fmf block from the command
 * line. `dump` and `match` are the contract the conformance data is checked
 * through (tests/conformance/fmf/README.md); `discover` shows what a run
 * would execute.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

struct fmf_args {
	atex_fmf_context *context;
	const char **filters;
	size_t n_filters;
	const char **tests, **excludes; /* --test, --exclude */
	size_t n_tests, n_excludes;
	const char *plan;
	int json;
	const char *positional;
};

static const struct option long_options[] = {
	{"context", required_argument, NULL, 'c'},
	{"filter", required_argument, NULL, 'f'},
	{"plan", required_argument, NULL, 'p'},
	{"test", required_argument, NULL, 't'},
	{"exclude", required_argument, NULL, 'x'},
	{"json", no_argument, NULL, 'j'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static void fmf_usage(FILE *out)
{
	fprintf(out,
		"usage: atex fmf discover [--context K=V]... [--plan NAME] "
		"[--filter EXPR]...\n"
		"                         [--test REGEX]... [--exclude "
		"REGEX]... [--json] TREE\n"
		"       atex fmf dump [--context K=V]... [--filter EXPR]... "
		"TREE\n"
		"       atex fmf match [--context K=V]... RULE\n"
		"\n"
		"  discover  list the tests a plan (or the whole tree) runs\n"
		"  dump      print every selected node's final data as JSON\n"
		"  match     decide an adjust rule: true, false, "
		"cannot-decide or invalid-rule\n");
}

/* Parses options shared by the fmf subcommands; returns CLI_OK or the
 * exit status to return right away. */
static int parse_args(struct fmf_args *a, int argc, char **argv,
		      const char *allowed)
{
	int opt, rc;

	if (atex_fmf_context_new(&a->context) < 0)
		return cli_fail("fmf");
	a->filters = calloc((size_t)argc, sizeof(*a->filters));
	a->tests = calloc((size_t)argc, sizeof(*a->tests));
	a->excludes = calloc((size_t)argc, sizeof(*a->excludes));
	if (!a->filters || !a->tests || !a->excludes)
		return cli_fail("fmf");
	optind = 1;
	opterr = 0; /* our own messages, naming the option */
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		if (opt == 'h') {
			fmf_usage(stdout);
			return -1;
		}
		if (opt == '?' || !strchr(allowed, opt)) {
			if (opt != '?')
				cli_error("%s: option not accepted here",
					  argv[optind - 1]);
			else if (optopt)
				cli_error("option '%s' needs a value",
					  argv[optind - 1]);
			else
				cli_error("unknown option '%s'",
					  argv[optind - 1]);
			fmf_usage(stderr);
			return CLI_USAGE;
		}
		switch (opt) {
		case 'c':
			rc = atex_fmf_context_set_arg(a->context, optarg);
			if (rc < 0)
				return cli_fail("--context");
			break;
		case 'f':
			a->filters[a->n_filters++] = optarg;
			break;
		case 'p':
			if (a->plan) {
				cli_error("--plan given twice");
				return CLI_USAGE;
			}
			a->plan = optarg;
			break;
		case 't':
			a->tests[a->n_tests++] = optarg;
			break;
		case 'x':
			a->excludes[a->n_excludes++] = optarg;
			break;
		case 'j':
			a->json = 1;
			break;
		}
	}
	if (optind + 1 != argc) {
		cli_error(optind == argc ? "missing argument"
					 : "too many arguments");
		fmf_usage(stderr);
		return CLI_USAGE;
	}
	a->positional = argv[optind];
	return CLI_OK;
}

static int print_json(json_t *value)
{
	int rc =
		json_dumpf(value, stdout,
			   JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);

	fputc('\n', stdout);
	return rc == 0 ? CLI_OK : CLI_USAGE;
}

static int cmd_dump(struct fmf_args *a)
{
	atex_fmf_tree *tree = NULL;
	json_t *nodes = NULL, *out = NULL;
	int rc = CLI_USAGE;

	if (atex_fmf_tree_load(&tree, a->positional) < 0 ||
	    atex_fmf_tree_adjust(tree, a->context) < 0 ||
	    atex_fmf_tree_prune(&nodes, tree, NULL, 0, a->filters,
				a->n_filters) < 0) {
		cli_fail(NULL);
		goto out;
	}
	out = json_pack("{sO}", "nodes", nodes);
	rc = out ? print_json(out) : cli_fail(NULL);
out:
	json_decref(out);
	json_decref(nodes);
	atex_fmf_tree_free(tree);
	return rc;
}

static int cmd_match(struct fmf_args *a)
{
	static const char *const names[] = {"false", "true", "cannot-decide"};
	int decision;

	if (atex_fmf_context_match(&decision, a->context, a->positional) < 0) {
		if (getenv("ATEX_LOG"))
			cli_error("%s", atex_error_last());
		puts("invalid-rule");
		return CLI_OK;
	}
	puts(names[decision]);
	return CLI_OK;
}

static int cmd_discover(struct fmf_args *a)
{
	struct atex_fmf_discover_options opts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d = NULL;
	int rc = CLI_OK;

	opts.context = a->context;
	opts.plan = a->plan;
	opts.filters = a->filters;
	opts.n_filters = a->n_filters;
	opts.tests = a->tests;
	opts.n_tests = a->n_tests;
	opts.excludes = a->excludes;
	opts.n_excludes = a->n_excludes;
	opts.tests_only = true; /* a listing: prepare is not run */
	if (atex_fmf_discover(&d, a->positional, &opts) < 0)
		return cli_fail(NULL);
	if (a->json) {
		json_t *all = atex_fmf_discovery_to_json(d);

		rc = all ? print_json(all) : cli_fail(NULL);
		json_decref(all);
	} else {
		/* Names may hold anything fmf accepts: one a line. */
		for (size_t i = 0; i < atex_fmf_discovery_count(d); i++) {
			cli_put_escaped(stdout,
					atex_fmf_discovery_test_name(d, i));
			putchar('\n');
		}
	}
	atex_fmf_discovery_free(d);
	return rc;
}

int cli_fmf(int argc, char **argv)
{
	struct fmf_args a = {0};
	const char *sub = argc > 1 ? argv[1] : NULL;
	int rc;

	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		fmf_usage(sub ? stdout : stderr);
		return sub ? CLI_OK : CLI_USAGE;
	}
	if (!strcmp(sub, "dump"))
		rc = parse_args(&a, argc - 1, argv + 1, "cf");
	else if (!strcmp(sub, "match"))
		rc = parse_args(&a, argc - 1, argv + 1, "c");
	else if (!strcmp(sub, "discover"))
		rc = parse_args(&a, argc - 1, argv + 1, "cfpjtx");
	else {
		cli_error("unknown fmf command '%s'", sub);
		fmf_usage(stderr);
		rc = CLI_USAGE;
	}
	if (rc == CLI_OK) {
		if (!strcmp(sub, "dump"))
			rc = cmd_dump(&a);
		else if (!strcmp(sub, "match"))
			rc = cmd_match(&a);
		else
			rc = cmd_discover(&a);
	} else if (rc < 0) {
		rc = CLI_OK; /* --help */
	}
	atex_fmf_context_free(a.context);
	free(a.filters);
	free(a.tests);
	free(a.excludes);
	return rc;
}
