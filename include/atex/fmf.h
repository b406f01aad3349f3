/*
 * atex/fmf.h - reading fmf metadata trees and tmt plans.
 *
 * Behaviour follows the reference Python fmf (1.7) exactly, so that a tree
 * gives atex the same data it gives tmt: tree loading with inheritance and
 * merge suffixes, context + adjust, filters, and on top of those the tmt
 * plan keys atex needs to run tests (discover, environment, prepare,
 * finish, context).
 *
 * Metadata values are jansson json_t. Unless said otherwise a returned
 * json_t is borrowed: it belongs to the object it came from and lives as
 * long as that object; a caller may change it (for example double every
 * `duration`) but must not free it.
 *
 * Thread safety: the objects here are not internally locked. Different
 * objects may be used from different threads at once; one object from one
 * thread at a time. Read-only calls (`const` objects) may run concurrently.
 */
#ifndef ATEX_FMF_H
#define ATEX_FMF_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "atex/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Context: the dimensions (distro, arch, ...) adjust rules are decided on.
 */

typedef struct atex_fmf_context atex_fmf_context;

/* Creates an empty context. Free with atex_fmf_context_free.
 * Returns 0 or ATEX_ENOMEM. */
int atex_fmf_context_new(atex_fmf_context **out);

/* Frees a context; NULL is accepted. */
void atex_fmf_context_free(atex_fmf_context *ctx);

/* Deep copy of `ctx` into *out. Returns 0 or ATEX_ENOMEM. */
int atex_fmf_context_copy(atex_fmf_context **out, const atex_fmf_context *ctx);

/*
 * Sets a dimension, replacing earlier values. `values` is one value or
 * several separated by commas ("s390x,x86_64"); whitespace around each is
 * dropped. Strings are copied. Returns 0, ATEX_EINVAL (empty or malformed
 * dimension name) or ATEX_ENOMEM.
 */
int atex_fmf_context_set(atex_fmf_context *ctx, const char *dimension,
			 const char *values);

/*
 * fmf's Context.case_sensitive. A new context is case sensitive, as fmf's
 * Tree.adjust is by default (`atex fmf dump`). When not, rules compare
 * values after Python's str.casefold() (`distro == Fedora-41` matches
 * fedora-41): the name, the major of the "~" operators and non-numeric
 * version parts; the regular expression operators "~" and "!~" and the
 * dimension names stay case sensitive. tmt adjusts its trees (tests, plans,
 * `adjust-tests`) so, and atex_fmf_discover does the same; tmt decides a
 * phase's `when` case-sensitively. Copies keep the setting. Not
 * thread-safe against rules being decided with the same context.
 */
void atex_fmf_context_set_case_sensitive(atex_fmf_context *ctx, bool sensitive);
bool atex_fmf_context_case_sensitive(const atex_fmf_context *ctx);

/* Parses "NAME=VALUE[,VALUE...]" (the --context argument) and sets it.
 * Returns 0 or ATEX_EINVAL naming the argument. */
int atex_fmf_context_set_arg(atex_fmf_context *ctx, const char *assignment);

/*
 * Sets a dimension from a JSON value: a string, a number or boolean (taken
 * as its text), or a list of those. Used for a plan's `context` key.
 * Returns 0 or ATEX_EINVAL naming the dimension.
 */
int atex_fmf_context_set_json(atex_fmf_context *ctx, const char *dimension,
			      const json_t *value);

/* True when the dimension has been set. */
bool atex_fmf_context_has(const atex_fmf_context *ctx, const char *dimension);

/* The context as a new JSON object {"dim": ["value", ...]}; the caller owns
 * the reference. NULL on allocation failure. */
json_t *atex_fmf_context_to_json(const atex_fmf_context *ctx);

/* The outcome of deciding a rule against a context. */
enum atex_fmf_decision {
	ATEX_FMF_FALSE = 0,
	ATEX_FMF_TRUE = 1,
	ATEX_FMF_UNDECIDED = 2, /* a dimension the rule needs is not set */
};

/*
 * Decides the fmf rule `rule` ("distro < fedora-33 and arch == x86_64")
 * against the context, storing an atex_fmf_decision in *decision.
 * Returns 0, or ATEX_ERULE with a message quoting the rule when it does not
 * parse. Thread-safe for a const context.
 */
int atex_fmf_context_match(int *decision, const atex_fmf_context *ctx,
			   const char *rule);

/*
 * Like atex_fmf_context_match, for the `when` value of an adjust rule as
 * found in metadata: a string rule, or a boolean (true always applies,
 * false never does). Other types are ATEX_ERULE.
 */
int atex_fmf_context_match_json(int *decision, const atex_fmf_context *ctx,
				const json_t *when);

/* ------------------------------------------------------------------------
 * Filters: "tag: foo & tier: 1 | tier: 2" expressions over node data.
 */

typedef struct atex_fmf_filter atex_fmf_filter;

/*
 * Compiles a filter expression (fmf's utils.filter language, regular
 * expressions with Python `re` semantics). Returns 0, ATEX_ERULE with a
 * message quoting the expression when it does not parse, or ATEX_ENOMEM.
 */
int atex_fmf_filter_new(atex_fmf_filter **out, const char *expression);

/* Frees a filter; NULL is accepted. */
void atex_fmf_filter_free(atex_fmf_filter *filter);

/*
 * Evaluates the filter against a node's data (a JSON object), as fmf's
 * utils.filter(regexp=True) inside Tree.prune does. `name` is the node name
 * (borrowed, may be NULL):
 *  - a term without a key ("/tests/core", "core$") is a regular expression
 *    searched anywhere in `name` (Python re.search); one that does not
 *    match makes its "&" group false before the group's keys are checked;
 *  - when `name` is NULL a term without a key matches nothing: like fmf's
 *    FilterError (and so tmt's plan filters, which pass no name), a filter
 *    with such a term in any "|" group matches no node;
 *  - `name: VALUE` is the data's own `name` key, never the node name.
 * A key missing from the data, in any group whose name terms matched,
 * makes the whole filter not match (fmf's FilterError), even when another
 * group matches. Returns 1 (match), 0 (no match) or a negative code.
 * Thread-safe.
 */
int atex_fmf_filter_match(const atex_fmf_filter *filter, const json_t *data,
			  const char *name);

/* ------------------------------------------------------------------------
 * Trees.
 */

typedef struct atex_fmf_tree atex_fmf_tree;
typedef struct atex_fmf_node atex_fmf_node;

/*
 * Loads the metadata tree containing `path`: the root is the nearest
 * directory at or above `path` holding `.fmf/`. All files are read,
 * inheritance and merge suffixes are applied. Errors name file:line:column
 * where there is one: ATEX_ENOTFOUND (no root), ATEX_EIO (unreadable file),
 * ATEX_EFORMAT (bad YAML, layout or directive), ATEX_EMERGE (a merge
 * suffix on a wrong type), ATEX_ENOMEM.
 */
int atex_fmf_tree_load(atex_fmf_tree **out, const char *path);

/* Frees a tree and every node and value it holds; NULL is accepted. */
void atex_fmf_tree_free(atex_fmf_tree *tree);

/* The absolute path of the tree root (owned by the tree). */
const char *atex_fmf_tree_root(const atex_fmf_tree *tree);

/*
 * Applies the `adjust` rules of every node for `ctx` (an empty context is
 * allowed: every rule needing a dimension is then undecided and skipped).
 * Call at most once per tree. Returns 0, ATEX_EFORMAT (malformed adjust),
 * ATEX_ERULE (a `when` that does not parse) or ATEX_EMERGE.
 */
int atex_fmf_tree_adjust(atex_fmf_tree *tree, const atex_fmf_context *ctx);

/* The root node "/". */
const atex_fmf_node *atex_fmf_tree_top(const atex_fmf_tree *tree);

/* The node with the given full name ("/tests/smoke"), or NULL. */
const atex_fmf_node *atex_fmf_tree_find(const atex_fmf_tree *tree,
					const char *name);

/*
 * Iterates over every node in name order (depth first, children sorted):
 * pass NULL to get the first (the root node), then the previous node.
 * Returns NULL after the last one.
 */
const atex_fmf_node *atex_fmf_tree_next(const atex_fmf_tree *tree,
					const atex_fmf_node *prev);

/* The full node name, "/" for the root. */
const char *atex_fmf_node_name(const atex_fmf_node *node);

/* The node's final data (a JSON object, borrowed and mutable). */
json_t *atex_fmf_node_data(const atex_fmf_node *node);

/* True for nodes fmf selects: leaves, and branches whose `/` directive
 * says `select: true` (a leaf saying `select: false` is not selected). */
bool atex_fmf_node_is_selected(const atex_fmf_node *node);

/*
 * The directory of the last file that defined the node, relative to the
 * tree root ("." for the root directory). This is where tmt runs a test.
 */
const char *atex_fmf_node_dir(const atex_fmf_node *node);

/*
 * Selects nodes as fmf's prune does: selected nodes in name order whose
 * name matches one of `names` (Python re.search; none given: all), and
 * matching every filter. Returns a new JSON object {name: data, ...}
 * (data shared with the tree, by reference) in *out. Returns 0, ATEX_ERULE
 * (a bad name regex or filter) or ATEX_ENOMEM.
 */
int atex_fmf_tree_prune(json_t **out, const atex_fmf_tree *tree,
			const char *const *names, size_t n_names,
			const char *const *filters, size_t n_filters);

/* ------------------------------------------------------------------------
 * Discovery: a tmt plan (or the whole tree) turned into the ordered list of
 * tests to run, with everything an executor needs.
 */

typedef struct atex_fmf_discovery atex_fmf_discovery;

struct atex_fmf_discover_options {
	unsigned int version;
	/* Context for adjust; NULL is an empty context. It alone adjusts
	 * the plan (as in tmt); merged over the plan's own `context` key
	 * (these values win), it adjusts the tests and decides phases'
	 * `when`. Borrowed. */
	const atex_fmf_context *context;
	/* Name of the plan ("/plans/smoke"); NULL takes every test of the
	 * tree, without a plan. */
	const char *plan;
	/* Filter expressions, all must match (tmt's `tmt run tests --filter`):
	 * evaluated over each test's metadata as tmt exports it (every tmt
	 * test key with its default, `name` the test's name, booleans also
	 * as "true"/"false"); a term without a key matches nothing. With a
	 * plan they replace the `filter` of its fmf discover phases, as in
	 * tmt. */
	const char *const *filters;
	size_t n_filters;
	/* Where `discover` sections with `url` are cloned; NULL uses
	 * $XDG_CACHE_HOME/atex/git (or ~/.cache/atex/git). */
	const char *cache_dir;
	/* Version 2. Test name regular expressions (Python re.search over
	 * the name a test has in its tree, before any phase prefix): a test
	 * is kept when one matches (tmt's `tmt run tests --name`); none
	 * given: every test. */
	const char *const *tests;
	size_t n_tests;
	/* Test name regular expressions (re.search) whose tests are left
	 * out, on top of the plan's own `exclude`. */
	const char *const *excludes;
	size_t n_excludes;
	/* Only the tests are wanted (listing them): a prepare or finish
	 * phase atex cannot run (a method or key it does not act on) is kept
	 * as written, with a warning logged, instead of refused. Discover
	 * phases are checked either way: they decide the tests. */
	bool tests_only;
	/* Version 3. Python ATEX's selection (its `discover()`), instead of
	 * tmt's: in an fmf phase `tests` are added to the phase's `test`
	 * names (a test is taken once when any of them matches, not once
	 * per name; no names at all: every test), `filters` must hold
	 * together with the phase's `filter` (they do not replace it), and
	 * a phase the plan names itself prefixes its tests with "/<name>"
	 * even when it is the only one. The plan is any node without
	 * children that has no `test` key (`execute` not needed, `enabled`
	 * not read); a test or a node with children is ATEX_ENOTFOUND,
	 * said. Shell phases and discovery without a plan are as without
	 * it. */
	bool compat_python_atex;
};

#define ATEX_FMF_DISCOVER_OPTIONS_VERSION 3
#define ATEX_FMF_DISCOVER_OPTIONS_INIT                                         \
	{ATEX_FMF_DISCOVER_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL,         \
	 NULL, 0, NULL, 0, false, false}

/*
 * Discovers the tests of the tree at `path` for the plan and context in
 * `opts` (NULL: defaults; version 1 and 2 structs are accepted), selecting,
 * ordering and naming them as tmt does. A plan is a node with `execute`
 * that is not `enabled: false`. Its discover phases (a phase without `how`
 * is tmt's `shell` discover: the tests listed in its `tests`; a plan
 * without `discover` has only the tests tmt makes of `execute: script`,
 * named /script-00...) run in `order`, each only when its `when` matches
 * the context. An fmf phase takes nodes with a `test` key (stories too),
 * applies `adjust-tests`, and keeps, per name in its `test` list (a name
 * listed twice gives its tests twice), the tests sorted by `order`
 * (default 50, ties in tree order), then narrows them by `filter`,
 * `link`, `include` and `exclude`; `manual: true` and `enabled: false`
 * tests are left out. Several phases prefix their tests with "/<phase
 * name>". Without a plan every test of the tree is taken, sorted by
 * `order`. Returns 0, any code of atex_fmf_tree_load, ATEX_ENOTFOUND (no
 * such plan, or the node is not a plan or is disabled: said), ATEX_EFORMAT
 * (malformed plan, a phase key atex does not read, two phases with one
 * name, or a test whose `test`, `duration`, `tty`, `environment`, `order`
 * or `path` cannot be used: the message names the file, plan, test and
 * key), ATEX_ERULE (a bad regular expression or filter), ATEX_EEXTERNAL
 * (git failed).
 */
int atex_fmf_discover(atex_fmf_discovery **out, const char *path,
		      const struct atex_fmf_discover_options *opts);

/*
 * A discovery of plain test names, for tests that have no fmf tree (an
 * orchestrator running a program's own executor): `n` tests named
 * `names` (copied; duplicates are kept, as a plan listing a test twice),
 * each with data `{}`, root and directory "" (no tree), no plan
 * (plan, environment, prepare and finish NULL). Returns 0, ATEX_EINVAL
 * (a NULL or empty name: its position said), ATEX_ENOMEM. Free with
 * atex_fmf_discovery_free.
 */
int atex_fmf_discovery_new_names(atex_fmf_discovery **out,
				 const char *const *names, size_t n);

/* Frees a discovery result; NULL is accepted. */
void atex_fmf_discovery_free(atex_fmf_discovery *d);

/* The plan name, or NULL when discovery ran without a plan. */
const char *atex_fmf_discovery_plan_name(const atex_fmf_discovery *d);

/* The absolute path of the tree root discovery was given (where the
 * plan's prepare and finish scripts run). */
const char *atex_fmf_discovery_root(const atex_fmf_discovery *d);

/* The plan's adjusted data (an empty object without a plan). Borrowed. */
json_t *atex_fmf_discovery_plan(const atex_fmf_discovery *d);

/* The plan `environment` as an object of strings (lists "K=V" and scalar
 * values are normalised). Borrowed, mutable. */
json_t *atex_fmf_discovery_environment(const atex_fmf_discovery *d);

/* Plan `prepare` steps atex runs, in order, as a list of objects
 * {"how": "install", "package": [...]} or {"how": "shell", "script":
 * [...]}. Borrowed, mutable. */
json_t *atex_fmf_discovery_prepare(const atex_fmf_discovery *d);

/* Plan `finish` steps: a list of {"how": "shell", "script": [...]}. */
json_t *atex_fmf_discovery_finish(const atex_fmf_discovery *d);

/* Number of discovered tests. */
size_t atex_fmf_discovery_count(const atex_fmf_discovery *d);

/* Index of the named test, or -1. */
long atex_fmf_discovery_find(const atex_fmf_discovery *d, const char *name);

/* The i-th test's name ("/tests/smoke"), NULL when out of range. */
const char *atex_fmf_discovery_test_name(const atex_fmf_discovery *d,
					 size_t i);

/* The i-th test's data (an object, borrowed and mutable: the test's own
 * copy, made on the first call, so changing it never affects another
 * test). NULL when out of range or out of memory. */
json_t *atex_fmf_discovery_test_data(atex_fmf_discovery *d, size_t i);

/* The i-th test's data as a new reference (json_decref it), or NULL when
 * out of range or out of memory. Thread safe against
 * atex_fmf_discovery_set_test_data(): what a reader got stays alive and
 * unchanged while the test's data is replaced. libatex's orchestrator and
 * FMF executor read test data only this way. */
json_t *atex_fmf_discovery_test_data_ref(atex_fmf_discovery *d, size_t i);

/* Replaces the i-th test's data with `data` (an object; the discovery
 * takes its own reference, so the caller must not change `data`
 * afterwards). Safe while an orchestrator or executor runs on the
 * discovery: a test started before sees the old data, one started after
 * the new. Changing the object atex_fmf_discovery_test_data() returned is
 * not safe then. Returns 0 or ATEX_EINVAL (out of range, not an object). */
int atex_fmf_discovery_set_test_data(atex_fmf_discovery *d, size_t i,
				     json_t *data);

/* The absolute path of the tree root the i-th test comes from (differs
 * from the plan's tree for `discover` sections with `url` or `path`). */
const char *atex_fmf_discovery_test_root(const atex_fmf_discovery *d,
					 size_t i);

/* The i-th test's directory relative to its tree root ("." or
 * "tests/smoke"). */
const char *atex_fmf_discovery_test_dir(const atex_fmf_discovery *d,
					size_t i);

/* Removes the i-th test (a program's own selection): the tests after it
 * move down one index, and what atex_fmf_discovery_test_data() returned
 * for it is freed. Not while an orchestrator or executor uses the
 * discovery. Returns 0 or ATEX_EINVAL when out of range. */
int atex_fmf_discovery_remove(atex_fmf_discovery *d, size_t i);

/*
 * Everything as one new JSON object (the caller owns it):
 * {"plan": NAME|null, "plan_data": {...}, "environment": {...},
 *  "prepare": [...], "finish": [...],
 *  "tests": [{"name": N, "root": R, "dir": D, "data": {...}}, ...]}
 */
json_t *atex_fmf_discovery_to_json(const atex_fmf_discovery *d);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_FMF_H */
