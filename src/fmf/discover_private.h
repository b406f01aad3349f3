/*
 * discover_private.h - what the parts of discovery share: the discovery
 * object (discover.c), tmt plans and their step phases (plan.c), fetching
 * `url` with git (fetch.c) and selecting a phase's tests (select.c). None
 * of it is exported from libatex.so.
 */
#ifndef ATEX_FMF_DISCOVER_PRIVATE_H
#define ATEX_FMF_DISCOVER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "atex/fmf.h"
#include "util/util.h"

struct test {
	const char *name; /* the node's, or own_name with a section prefix */
	char *own_name;
	const char *root; /* the tree's, kept alive by the discovery */
	const char *dir;  /* the tree's, or own_dir */
	char *own_dir;	  /* from the test's `path` key */
	json_t *data;
	bool private; /* data is a deep copy nobody else holds */
};

struct atex_fmf_discovery {
	char *plan_name;
	json_t *plan;
	json_t *environment;
	json_t *prepare;
	json_t *finish;
	struct atex_vec tests; /* struct test * */
	/* The trees tests came from. Test data shares their values, so they
	 * are released with the discovery instead of while a caller waits
	 * for the list (freeing 10,000 nodes costs as much as adjusting). */
	struct atex_vec trees;
	/* Clones shell phases with `url` run their tests in (owned). */
	struct atex_vec roots;
	const char *plan_file; /* the plan node's file, for messages */
};

/* ------------------------------------------------------------------------
 * discover.c
 */

/* Frees a struct test (for atex_vec_free_all); NULL is fine. */
void atex_fmf_test_free(void *p);

/* ------------------------------------------------------------------------
 * plan.c: tmt plans and their step phases.
 */

/* "FILE: plan NAME: MESSAGE" as ATEX_EFORMAT. */
int atex_fmf_plan_error(const atex_fmf_discovery *d, const char *fmt, ...)
	ATEX_PRINTF(2, 3);

/* A string or a list of strings as a new list; NULL with an error
 * otherwise. `what` names the key for the message. */
json_t *atex_fmf_plan_string_list(const json_t *value, const char *what,
				  const char *plan);

/* Python's int() of an `order` value, null being tmt's default (50).
 * Returns 0, or -1 when int() would fail. */
int atex_fmf_order_value(long *out, const json_t *v);

/* Whether `s` is one of the NULL-terminated `list`. */
bool atex_fmf_in_list(const char *const *list, const char *s);

/* Whether a node's data is a plan: tmt's plans have `execute`. */
bool atex_fmf_is_plan(const json_t *data);

/* The plan's `environment` (a mapping or a list of "NAME=VALUE") as a new
 * mapping of strings in *out. Returns 0, ATEX_EFORMAT or ATEX_ENOMEM. */
int atex_fmf_plan_environment(json_t **out, const json_t *value,
			      const char *plan);

/* The caller's context (may be NULL) over the plan's own `context` key
 * (plan may be NULL), case-insensitive. */
int atex_fmf_plan_context(atex_fmf_context **out, const json_t *plan,
			  const atex_fmf_context *given);

/* ATEX_ENOTFOUND naming `plan` (and `why`, or "no plan") with the plans
 * `tree` has. */
int atex_fmf_plan_not_found(const atex_fmf_tree *tree, const char *plan,
			    const char *why);

/* The plan's prepare or finish phases (`step`) to run, in order, each
 * normalised to {"how", "package"|"script": [...], ...}. A phase atex
 * does not run is an error when `strict`, else a warning. */
int atex_fmf_plan_steps(json_t **out, const atex_fmf_discovery *d,
			const char *step, const atex_fmf_context *ctx,
			bool strict);

/* Refuses an execute method atex does not run (a warning when not
 * `strict`, for `upgrade`). */
int atex_fmf_plan_check_execute(const atex_fmf_discovery *d, bool strict);

/* Checks that the local playbooks of the ansible prepare and finish
 * phases are in the plan's tree `root` (or are a collection's), so that a
 * run fails before reserving systems. */
int atex_fmf_plan_check_playbooks(const atex_fmf_discovery *d,
				  const char *root);

/* The discover phases to run, in order; *total counts all of them. */
int atex_fmf_plan_discover_phases(json_t **out, size_t *total,
				  atex_fmf_discovery *d,
				  const atex_fmf_context *ctx);

/* ------------------------------------------------------------------------
 * fetch.c
 */

/* Clones (or updates) `url` at `ref` (NULL: the remote's HEAD) into
 * `cache_dir` (NULL: the user's cache); *out is the clone, malloc'ed.
 * Returns 0, ATEX_EEXTERNAL with git's message, ATEX_EIO or ATEX_ENOMEM. */
int atex_fmf_fetch_repo(char **out, const char *url, const char *ref,
			const char *cache_dir);

/* ------------------------------------------------------------------------
 * select.c: selecting tests.
 */

/* Loads the tree at `path` and adjusts it with `ctx`. */
int atex_fmf_select_load_adjusted(atex_fmf_tree **out, const char *path,
				  const atex_fmf_context *ctx);

/* Runs one discover phase of the plan (`total` phases in all: several
 * prefix their tests with "/<phase name>"), adding the tests it keeps to
 * d->tests. */
int atex_fmf_select_phase(atex_fmf_discovery *d, const atex_fmf_tree *plan_tree,
			  const json_t *phase, size_t total,
			  const atex_fmf_context *ctx,
			  const struct atex_fmf_discover_options *o);

/* Without a plan: every test of `tree`, as `tmt tests ls` lists them;
 * sets the plan, environment, prepare and finish empty. */
int atex_fmf_select_all(atex_fmf_discovery *d, atex_fmf_tree *tree,
			const struct atex_fmf_discover_options *o);

#endif /* ATEX_FMF_DISCOVER_PRIVATE_H */
