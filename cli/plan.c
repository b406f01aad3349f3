/*
 * plan.c - choosing the plan when the user names none, shared by the
 * subcommands that run tests (test, run).
 */
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

/* Without --plan, a tree with exactly one plan (a node with `execute`, as
 * tmt defines it) runs in it, prepare and finish included: what a tmt user
 * expects of `tmt run test --name X`. Returns a copy or NULL. */
char *cli_only_plan(const char *path)
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
out:
	json_decref(nodes);
	atex_fmf_tree_free(tree);
	return plan;
}
