/*
 * discover.c - from an fmf tree and a tmt plan to the ordered list of tests
 * to run, with the plan's environment, prepare and finish steps: the part
 * of tmt atex needs, read the way tmt reads it. This file holds the
 * discovery object, its entry point and its accessors; plan.c reads the
 * plan and its step phases, select.c selects each discover phase's tests
 * and fetch.c clones the repositories phases name.
 *
 * A plan is a node with `execute`, not `enabled: false`, after adjusting
 * with the caller's context. The plan's `context` key, under the caller's
 * context, then adjusts the tests (in a tree of their own when it adds a
 * dimension) and decides phases' `when`. The discover phases run in order,
 * each adding the tests it keeps.
 *
 * Test data shares values with other tests (inherited keys are the same
 * values); a test's data is deep-copied the first time a caller asks for it,
 * so a program may change anything in it without touching another test's
 * data, and a run that never looks pays neither the time nor the memory.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "atex/fmf.h"
#include "fmf/discover_private.h"
#include "fmf/fmf_private.h"
#include "util/util.h"

void atex_fmf_test_free(void *p)
{
	struct test *t = p;

	if (!t)
		return;
	free(t->own_name);
	free(t->own_dir);
	json_decref(t->data);
	free(t);
}

void atex_fmf_discovery_free(atex_fmf_discovery *d)
{
	if (!d)
		return;
	atex_vec_free_all(&d->tests, atex_fmf_test_free);
	atex_vec_free_all(&d->trees, (void (*)(void *))atex_fmf_tree_free);
	atex_vec_free_all(&d->roots, free);
	json_decref(d->plan);
	json_decref(d->environment);
	json_decref(d->prepare);
	json_decref(d->finish);
	free(d->plan_name);
	free(d);
}

/* The tree the plan's tests come from. tmt adjusts the plan with the
 * caller's context only (spec/plans/context.fmf: the plan's `context` is
 * not seen by its own adjust rules), and the tests with the plan's
 * context under the caller's: when the plan's context adds a dimension,
 * the tests need a tree of their own, adjusted with it. */
static int tests_tree(const atex_fmf_tree **out, atex_fmf_discovery *d,
		      atex_fmf_tree *plan_tree, const atex_fmf_context *ctx,
		      const struct atex_fmf_discover_options *o)
{
	json_t *keys = json_object_get(d->plan, "context"), *value;
	atex_fmf_tree *other = NULL;
	const char *key;
	bool own = false;
	int rc;

	*out = plan_tree;
	json_object_foreach(keys, key, value) own =
		own || !o->context || !atex_fmf_context_has(o->context, key);
	if (!own)
		return 0;
	rc = atex_fmf_select_load_adjusted(&other,
					   atex_fmf_tree_root(plan_tree), ctx);
	if (rc == 0 && (rc = atex_vec_push(&d->trees, other)) < 0)
		atex_fmf_tree_free(other);
	if (rc == 0)
		*out = other;
	return rc;
}

static int discover_plan(atex_fmf_discovery *d, atex_fmf_tree *tree,
			 const struct atex_fmf_discover_options *o)
{
	const atex_fmf_node *node = atex_fmf_tree_find(tree, o->plan);
	const atex_fmf_tree *tests = tree;
	atex_fmf_context *ctx = NULL;
	json_t *phases = NULL, *phase;
	size_t i, total = 0;
	int rc;

	if (node && !atex_fmf_node_is_selected(node) && o->compat_python_atex)
		return atex_fmf_plan_not_found(
			tree, o->plan, " has children: it is not one plan");
	if (!node || !atex_fmf_node_is_selected(node))
		return atex_fmf_plan_not_found(tree, o->plan, NULL);
	d->plan_file = atex_fmf_node_file(node);
	rc = atex_fmf_plan_context(&ctx, NULL, o->context);
	if (rc == 0)
		rc = atex_fmf_tree_adjust(tree, ctx);
	atex_fmf_context_free(ctx);
	ctx = NULL;
	if (rc < 0)
		goto out;
	if (!atex_fmf_is_plan(atex_fmf_node_data(node)) &&
	    json_object_get(atex_fmf_node_data(node), "plan")) {
		/* tmt's other kind of plan (Tree.plans prunes by `plan` too):
		 * one imported from another repository. */
		rc = atex_fmf_plan_error(
			d, "imports its plan from another repository "
			   "('plan: import:'), which atex does not do");
		goto out;
	}
	if (o->compat_python_atex &&
	    json_object_get(atex_fmf_node_data(node), "test")) {
		rc = atex_fmf_plan_not_found(tree, o->plan,
					     " is a test, not a plan");
		goto out;
	}
	/* Python ATEX takes any leaf that is not a test as the plan, with
	 * or without `execute`, `enabled: false` or not. */
	if (!atex_fmf_is_plan(atex_fmf_node_data(node)) &&
	    !o->compat_python_atex) {
		rc = atex_fmf_plan_not_found(
			tree, o->plan,
			" is not a plan: it has no 'execute' "
			"(tmt's plans are the nodes with one)");
		goto out;
	}
	if (!o->compat_python_atex &&
	    json_is_false(
		    json_object_get(atex_fmf_node_data(node), "enabled"))) {
		rc = atex_fmf_plan_not_found(
			tree, o->plan,
			" is disabled (enabled: false) in this "
			"context");
		goto out;
	}
	d->plan = json_deep_copy(atex_fmf_node_data(node));
	if (!d->plan) {
		rc = atex_error_oom();
		goto out;
	}
	/* Everything below sees the plan's context under the caller's. */
	rc = atex_fmf_plan_context(&ctx, d->plan, o->context);
	if (rc == 0)
		rc = tests_tree(&tests, d, tree, ctx, o);
	if (rc == 0)
		rc = atex_fmf_plan_environment(
			&d->environment,
			json_object_get(d->plan, "environment"), d->plan_name);
	if (rc == 0)
		rc = atex_fmf_plan_steps(&d->prepare, d, "prepare", ctx,
					 !o->tests_only);
	if (rc == 0)
		rc = atex_fmf_plan_steps(&d->finish, d, "finish", ctx,
					 !o->tests_only);
	if (rc == 0 && !o->tests_only)
		rc = atex_fmf_plan_check_playbooks(d, atex_fmf_tree_root(tree));
	if (rc == 0)
		rc = atex_fmf_plan_check_execute(d, !o->tests_only);
	if (rc == 0)
		rc = atex_fmf_plan_discover_phases(&phases, &total, d, ctx);
	json_array_foreach(phases, i, phase)
	{
		if (rc < 0)
			break;
		rc = atex_fmf_select_phase(d, tests, phase, total, ctx, o);
	}
out:
	json_decref(phases);
	atex_fmf_context_free(ctx);
	return rc;
}

int atex_fmf_discover(atex_fmf_discovery **out, const char *path,
		      const struct atex_fmf_discover_options *opts)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d;
	atex_fmf_tree *tree = NULL;
	int rc;

	if (!out || !path)
		return atex_error_set(ATEX_EINVAL, "discover: %s is NULL",
				      out ? "path" : "out");
	*out = NULL;
	if (opts && (opts->version < 1 ||
		     opts->version > ATEX_FMF_DISCOVER_OPTIONS_VERSION))
		return atex_error_set(ATEX_EINVAL,
				      "atex_fmf_discover: options version %u "
				      "is not 1 to %u",
				      opts->version,
				      ATEX_FMF_DISCOVER_OPTIONS_VERSION);
	/* A version 1 struct ends before the name selection, a version 2
	 * one before compat_python_atex. */
	if (opts)
		memcpy(&o, opts,
		       opts->version == 1
			       ? offsetof(struct atex_fmf_discover_options,
					  tests)
		       : opts->version == 2
			       ? offsetof(struct atex_fmf_discover_options,
					  compat_python_atex)
			       : sizeof(o));
	o.version = ATEX_FMF_DISCOVER_OPTIONS_VERSION;
	d = atex_calloc(1, sizeof(*d));
	if (!d)
		return ATEX_ENOMEM;
	rc = atex_fmf_tree_load_lean(&tree, path);
	if (rc < 0)
		goto fail;
	if (o.plan) {
		d->plan_name = atex_strdup(o.plan);
		rc = d->plan_name ? discover_plan(d, tree, &o) : ATEX_ENOMEM;
	} else {
		rc = atex_fmf_select_all(d, tree, &o);
	}
	if (rc < 0)
		goto fail;
	rc = atex_vec_push(&d->trees, tree);
	if (rc < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	atex_fmf_tree_free(tree);
	atex_fmf_discovery_free(d);
	return rc;
}

int atex_fmf_discovery_new_names(atex_fmf_discovery **out,
				 const char *const *names, size_t n)
{
	atex_fmf_discovery *d;

	if (!out || (!names && n))
		return atex_error_set(ATEX_EINVAL,
				      "discovery from names: %s is NULL",
				      out ? "names" : "out");
	*out = NULL;
	d = atex_calloc(1, sizeof(*d));
	if (!d)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct test *t;

		if (!names[i] || !*names[i]) {
			atex_fmf_discovery_free(d);
			return atex_error_set(ATEX_EINVAL,
					      "discovery from names: name %zu "
					      "is %s",
					      i + 1,
					      names[i] ? "empty" : "NULL");
		}
		t = atex_calloc(1, sizeof(*t));
		if (t) {
			t->own_name = atex_strdup(names[i]);
			t->data = json_object();
		}
		if (!t || !t->own_name || !t->data ||
		    atex_vec_push(&d->tests, t) < 0) {
			atex_fmf_test_free(t);
			atex_fmf_discovery_free(d);
			return atex_error_oom();
		}
		/* No tree: the test has no files of its own. */
		t->name = t->own_name;
		t->root = "";
		t->dir = "";
		t->private = true;
	}
	*out = d;
	return 0;
}

/* ------------------------------------------------------------------------
 * Access.
 */

const char *atex_fmf_discovery_plan_name(const atex_fmf_discovery *d)
{
	return d->plan_name;
}

const char *atex_fmf_discovery_root(const atex_fmf_discovery *d)
{
	/* The plan's tree went in last (see atex_fmf_discover). */
	return d->trees.len
		       ? atex_fmf_tree_root(d->trees.items[d->trees.len - 1])
		       : NULL;
}

json_t *atex_fmf_discovery_plan(const atex_fmf_discovery *d)
{
	return d->plan;
}

json_t *atex_fmf_discovery_environment(const atex_fmf_discovery *d)
{
	return d->environment;
}

json_t *atex_fmf_discovery_prepare(const atex_fmf_discovery *d)
{
	return d->prepare;
}

json_t *atex_fmf_discovery_finish(const atex_fmf_discovery *d)
{
	return d->finish;
}

size_t atex_fmf_discovery_count(const atex_fmf_discovery *d)
{
	return d->tests.len;
}

static const struct test *test_at(const atex_fmf_discovery *d, size_t i)
{
	return i < d->tests.len ? d->tests.items[i] : NULL;
}

long atex_fmf_discovery_find(const atex_fmf_discovery *d, const char *name)
{
	for (size_t i = 0; i < d->tests.len; i++)
		if (!strcmp(test_at(d, i)->name, name))
			return (long)i;
	return -1;
}

const char *atex_fmf_discovery_test_name(const atex_fmf_discovery *d, size_t i)
{
	const struct test *t = test_at(d, i);

	return t ? t->name : NULL;
}

/* Guards every test's `data` pointer (and its first private copy) so a
 * program may replace a test's data while orchestrator or executor threads
 * read it: readers take their own reference under it. One lock for every
 * discovery: it is held for a pointer swap or a json_incref only. */
static pthread_mutex_t data_lock = PTHREAD_MUTEX_INITIALIZER;

/* The i-th test's private data, or NULL; with data_lock held. */
static json_t *private_data(atex_fmf_discovery *d, size_t i)
{
	struct test *t = i < d->tests.len ? d->tests.items[i] : NULL;
	json_t *copy;

	if (!t)
		return NULL;
	if (!t->private) {
		copy = json_deep_copy(t->data);
		if (!copy) {
			atex_error_oom();
			return NULL;
		}
		json_decref(t->data);
		t->data = copy;
		t->private = true;
	}
	return t->data;
}

json_t *atex_fmf_discovery_test_data(atex_fmf_discovery *d, size_t i)
{
	json_t *data;

	pthread_mutex_lock(&data_lock);
	data = private_data(d, i);
	pthread_mutex_unlock(&data_lock);
	return data;
}

json_t *atex_fmf_discovery_test_data_ref(atex_fmf_discovery *d, size_t i)
{
	json_t *data;

	pthread_mutex_lock(&data_lock);
	data = json_incref(private_data(d, i));
	pthread_mutex_unlock(&data_lock);
	return data;
}

int atex_fmf_discovery_set_test_data(atex_fmf_discovery *d, size_t i,
				     json_t *data)
{
	struct test *t;
	json_t *old;

	if (!json_is_object(data))
		return atex_error_set(ATEX_EINVAL,
				      "test data must be a JSON object");
	pthread_mutex_lock(&data_lock);
	t = i < d->tests.len ? d->tests.items[i] : NULL;
	if (!t) {
		pthread_mutex_unlock(&data_lock);
		return atex_error_set(ATEX_EINVAL,
				      "test index %zu out of range (%zu tests)",
				      i, d->tests.len);
	}
	old = t->data;
	t->data = json_incref(data);
	t->private = true;
	pthread_mutex_unlock(&data_lock);
	/* Readers that took a reference keep the old object alive. */
	json_decref(old);
	return 0;
}

const char *atex_fmf_discovery_test_root(const atex_fmf_discovery *d, size_t i)
{
	const struct test *t = test_at(d, i);

	return t ? t->root : NULL;
}

const char *atex_fmf_discovery_test_dir(const atex_fmf_discovery *d, size_t i)
{
	const struct test *t = test_at(d, i);

	return t ? t->dir : NULL;
}

int atex_fmf_discovery_remove(atex_fmf_discovery *d, size_t i)
{
	if (i >= d->tests.len)
		return atex_error_set(ATEX_EINVAL,
				      "test index %zu out of range (%zu tests)",
				      i, d->tests.len);
	atex_fmf_test_free(d->tests.items[i]);
	memmove(&d->tests.items[i], &d->tests.items[i + 1],
		(d->tests.len - i - 1) * sizeof(*d->tests.items));
	d->tests.len--;
	return 0;
}

json_t *atex_fmf_discovery_to_json(const atex_fmf_discovery *d)
{
	json_t *tests = json_array(), *all;

	if (!tests)
		return NULL;
	/* The data references are taken under the lock: a test's data may
	 * be replaced meanwhile (atex_fmf_discovery_set_test_data). */
	pthread_mutex_lock(&data_lock);
	for (size_t i = 0; i < d->tests.len; i++) {
		const struct test *t = test_at(d, i);

		if (json_array_append_new(
			    tests, json_pack("{ss ss ss sO}", "name", t->name,
					     "root", t->root, "dir", t->dir,
					     "data", t->data)) < 0) {
			pthread_mutex_unlock(&data_lock);
			json_decref(tests);
			return NULL;
		}
	}
	pthread_mutex_unlock(&data_lock);
	all = json_pack("{s s? sO sO sO sO so}", "plan", d->plan_name,
			"plan_data", d->plan, "environment", d->environment,
			"prepare", d->prepare, "finish", d->finish, "tests",
			tests);
	if (!all)
		atex_error_oom();
	return all;
}
