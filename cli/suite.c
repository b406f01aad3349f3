/*
 * suite.c - the options that say which tests to run and how (--context,
 * --plan, --env, --filter), shared by the subcommands that run tests
 * (test, run), and the discovery they lead to.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

/* A tree with several plans and no --plan: said, since their
 * environments, prepare and finish steps are then all left out. */
static void several_plans(const json_t *nodes, const char *path,
			  const char *what, int n)
{
	const char *name;
	json_t *data;
	int shown = 0;

	fprintf(stderr, "atex: %s: ", what);
	cli_put_escaped(stderr, path);
	fprintf(stderr, " has %d plans (", n);
	json_object_foreach((json_t *)nodes, name, data)
	{
		if (!json_object_get(data, "execute"))
			continue;
		if (shown < 5) {
			fputs(shown ? ", " : "", stderr);
			cli_put_escaped(stderr, name);
		}
		shown++;
	}
	fprintf(stderr,
		"%s) and no --plan: every test runs, without a "
		"plan's environment, prepare or finish\n",
		shown > 5 ? ", ..." : "");
}

/* Without --plan, a tree with exactly one plan (a node with `execute`, as
 * tmt defines it) runs in it, prepare and finish included: what a tmt user
 * expects of `tmt run test --name X`. Returns a copy or NULL. */
static char *only_plan(const char *path, const char *what)
{
	atex_fmf_tree *tree = NULL;
	json_t *nodes = NULL, *data;
	const char *name, *found = NULL;
	char *plan = NULL;
	int n = 0;

	if (atex_fmf_tree_load(&tree, path) < 0 ||
	    atex_fmf_tree_prune(&nodes, tree, NULL, 0, NULL, 0) < 0)
		goto out;
	json_object_foreach(nodes, name, data)
	{
		if (json_object_get(data, "execute")) {
			found = name;
			n++;
		}
	}
	if (n == 1)
		plan = strdup(found);
	else if (n > 1)
		several_plans(nodes, path, what, n);
out:
	json_decref(nodes);
	atex_fmf_tree_free(tree);
	return plan;
}

int cli_suite_init(struct cli_suite *s, int argc)
{
	memset(s, 0, sizeof(*s));
	s->env = calloc((size_t)argc + 1, sizeof(*s->env));
	s->filters = calloc((size_t)argc + 1, sizeof(*s->filters));
	s->tests = calloc((size_t)argc + 1, sizeof(*s->tests));
	s->excludes = calloc((size_t)argc + 1, sizeof(*s->excludes));
	if (!s->env || !s->filters || !s->tests || !s->excludes ||
	    atex_fmf_context_new(&s->context) < 0)
		return cli_fail("options");
	return CLI_OK;
}

int cli_suite_option(struct cli_suite *s, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_CONTEXT:
		return atex_fmf_context_set_arg(s->context, arg) < 0
			       ? cli_fail("--context")
			       : 1;
	case CLI_OPT_PLAN:
		s->plan = arg;
		return 1;
	case CLI_OPT_ENV:
		if (!strchr(arg, '=') || arg[0] == '=') {
			cli_error("--env: '%s' is not NAME=VALUE", arg);
			return CLI_USAGE;
		}
		s->env[s->n_env++] = arg;
		return 1;
	case CLI_OPT_FILTER:
		s->filters[s->n_filters++] = arg;
		return 1;
	case CLI_OPT_TEST:
		s->tests[s->n_tests++] = arg;
		return 1;
	case CLI_OPT_EXCLUDE:
		s->excludes[s->n_excludes++] = arg;
		return 1;
	}
	return 0;
}

/* Says what selected nothing: the plan, its discover filters, the
 * options. The discovery is freed. CLI_USAGE. */
static int nothing_selected(const struct cli_suite *s, atex_fmf_discovery *d,
			    const char *tree, const char *what)
{
	const char *plan = atex_fmf_discovery_plan_name(d);
	json_t *phases =
		json_object_get(atex_fmf_discovery_plan(d), "discover");
	json_t *phase, *f;
	size_t i, j;

	fprintf(stderr, "atex: %s: no test selected in %s%s%s", what, tree,
		plan ? " plan " : "", plan ? plan : "");
	if (json_is_object(phases))
		phases = json_pack("[O]", phases);
	else
		json_incref(phases);
	json_array_foreach(phases, i, phase)
	{
		f = json_object_get(phase, "filter");
		if (json_is_string(f))
			fprintf(stderr, ", plan filter '%s'",
				json_string_value(f));
		json_array_foreach(f, j, phase) fprintf(
			stderr, ", plan filter '%s'", json_string_value(phase));
	}
	json_decref(phases);
	for (i = 0; i < s->n_filters; i++)
		fprintf(stderr, ", --filter '%s'", s->filters[i]);
	for (i = 0; i < s->n_tests; i++)
		fprintf(stderr, ", --test '%s'", s->tests[i]);
	for (i = 0; i < s->n_excludes; i++)
		fprintf(stderr, ", --exclude '%s'", s->excludes[i]);
	fputc('\n', stderr);
	atex_fmf_discovery_free(d);
	return CLI_USAGE;
}

int cli_suite_discover(atex_fmf_discovery **out, const struct cli_suite *s,
		       const char *tree, const char *what)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	char *plan = s->plan ? NULL : only_plan(tree, what);
	int rc;

	o.context = s->context;
	o.plan = s->plan ? s->plan : plan;
	o.filters = s->filters;
	o.n_filters = s->n_filters;
	o.tests = s->tests;
	o.n_tests = s->n_tests;
	o.excludes = s->excludes;
	o.n_excludes = s->n_excludes;
	rc = atex_fmf_discover(out, tree, &o);
	free(plan);
	if (rc < 0)
		return cli_fail(what);
	if (atex_fmf_discovery_count(*out) == 0) {
		rc = nothing_selected(s, *out, tree, what);
		*out = NULL;
	}
	return rc;
}

void cli_suite_free(struct cli_suite *s)
{
	atex_fmf_context_free(s->context);
	free(s->env);
	free(s->filters);
	free(s->tests);
	free(s->excludes);
}

int cli_suite_or_provision_option(struct cli_suite *s, struct cli_provision *p,
				  int opt, const char *arg, const char *text,
				  void (*usage)(FILE *out))
{
	int rc = cli_suite_option(s, opt, arg);

	if (rc == 0)
		rc = cli_provision_option(p, opt, arg);
	if (rc == 1)
		return CLI_OK;
	if (rc == 0) {
		cli_error("unknown option '%s'", text);
		usage(stderr);
	}
	return CLI_USAGE;
}
