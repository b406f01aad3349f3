/*
 * fmf_private.h - private interfaces shared by the fmf sources: the merge
 * engine (merge.c) and the Python value semantics it and the filters need.
 */
#ifndef ATEX_FMF_PRIVATE_H
#define ATEX_FMF_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "atex/fmf.h"
#include "fmf/yaml.h"
#include "util/util.h"

/* What a merge needs besides its two values: who is merging (for messages)
 * and where the source's keys were written. */
struct atex_merge {
	const char *node;                     /* node name, "/tests/smoke" */
	const struct atex_locator *locator;   /* may be NULL */
	const char *hint;                     /* the file to search first */
	/* A node's own data is built from one or more YAML mappings; when a
	 * merge source is `own`, positions are looked up in those mappings
	 * (`raws`, latest last) instead. Both may be NULL. */
	const json_t *own;
	json_t *const *raws;
	size_t n_raws;
	/* Adjust rules are merged as they are written: skip their control
	 * keys (when, because, continue) instead of copying the rule. */
	bool skip_adjust_keys;
	/* A node's raw mapping also holds its children ("/name" keys) and
	 * directives ("/"): skip them at the top level. */
	bool skip_child_keys;
};

/*
 * fmf's _merge_special: merges `source` (an object whose keys may carry the
 * suffixes + +< - ~ -~) into `data`. `data` must be owned by the caller at
 * its top level (not shared); nested containers shared with other values
 * are copied before they are changed, never changed in place, so parent
 * data and raw YAML values can be shared by reference between nodes.
 * Returns 0, ATEX_EMERGE / ATEX_EFORMAT with a message "FILE:LINE:COL:
 * ..." naming the key and node, or ATEX_ENOMEM.
 */
int atex_fmf_merge(json_t *data, const json_t *source,
		   const struct atex_merge *m);

/* Python's == on JSON values: numbers compare by value across int, float
 * and bool (True == 1), containers deeply. */
bool atex_py_equal(const json_t *a, const json_t *b);

/* Python's str() of a JSON value ("True", "None", "1.5", "['a', 1]"),
 * malloc'ed; NULL on allocation failure. */
char *atex_py_str(const json_t *value);

/* Python's str.casefold() of one code point (casefold.c): stores the 1 to
 * 3 code points it folds to in `out` and returns how many. */
size_t atex_casefold(uint32_t cp, uint32_t out[3]);

/* Python's type name of a JSON value: "int", "float", "str", "list",
 * "dict", "bool", "NoneType". */
const char *atex_py_type(const json_t *value);

/* ------------------------------------------------------------------------
 * locate.c: positions for error messages, found when an error happens.
 */

struct atex_locator;

struct atex_locator *atex_locator_new(void);
void atex_locator_free(struct atex_locator *loc);

/* Remembers a file of the tree (the string must outlive the locator).
 * Returns 0 or ATEX_ENOMEM. */
int atex_locator_add(struct atex_locator *loc, const char *file);

/*
 * "FILE:LINE:COL: " of `key` in a mapping equal to `container` (or of the
 * container itself when key is NULL or has no position), searching `hint`
 * first (may be NULL), then every file of the tree; "HINT: " or "" when
 * nothing is found. Written into `buf`; the thread's last error is left as
 * it was. Costs a parse per file searched: for error paths only.
 */
const char *atex_locate(char *buf, size_t size,
			const struct atex_locator *loc, const char *hint,
			const json_t *container, const char *key);

/* atex_locate() for a key of a merge source (see struct atex_merge.own). */
const char *atex_merge_where(char *buf, size_t size,
			     const struct atex_merge *m, const json_t *source,
			     const char *key);

/* ------------------------------------------------------------------------
 * tree.c
 */

/*
 * atex_fmf_tree_load for a tree nobody else sees (discovery's): branches
 * that are not selected drop their data once their children have it, so
 * their atex_fmf_node_data is NULL. Saves a copy of every directory's data
 * at the peak of a big load.
 */
int atex_fmf_tree_load_lean(atex_fmf_tree **out, const char *path);

/* The last file that gave `node` data, for messages; NULL for a node no
 * file defined. */
const char *atex_fmf_node_file(const atex_fmf_node *node);

/*
 * Refuses a test name that cannot name a directory below a results
 * directory: one with an empty, "." or ".." component ("/../../x", "/a/."
 * and "/a/", which fmf accepts). The root "/" is fine. Returns 0, or
 * ATEX_EFORMAT with "FILE:LINE:COL: test NAME: ..." pointing at the key of
 * `node`'s file (NULL: no position) that made the name.
 */
int atex_fmf_check_test_name(const atex_fmf_node *node, const char *name);

/* ------------------------------------------------------------------------
 * walk.c: the files of a tree, listed in fmf's order and parsed in
 * parallel.
 */

enum atex_walk_kind {
	ATEX_WALK_FILE,  /* a metadata file of the current directory */
	ATEX_WALK_ENTER, /* a subdirectory node begins */
	ATEX_WALK_LEAVE, /* ... and ends */
};

struct atex_walk_step {
	enum atex_walk_kind kind;
	char *path;       /* FILE, ENTER: the full path (owned) */
	const char *name; /* its last component, inside path */
	json_t *data;     /* FILE: the parsed document */
	int rc;           /* FILE: < 0 when it could not be read or parsed */
	char *error;      /* FILE: the message for rc */
	atomic_bool ready; /* parsed (or nothing to parse) */
};

struct atex_walk {
	struct atex_walk_step *steps;
	size_t len, cap;
	struct atex_vec symlinks; /* real paths of symlinked dirs entered */
};

/* Called for each step in walk order, once it is parsed; may run on any
 * one thread (always the same during a walk). Returns 0 or an error that
 * stops the walk. A FILE step that failed to parse carries rc < 0. */
typedef int (*atex_walk_apply_fn)(struct atex_walk_step *step, void *ctx);

/*
 * Lists the tree under `root` (`include`: .fmf/config's explore.include,
 * may be NULL), parses every file in parallel and hands each step to
 * `apply` in order. Returns 0, ATEX_ENOMEM, or apply's first error (with
 * its message, on the calling thread). Free with atex_walk_free either
 * way.
 */
int atex_walk_tree(struct atex_walk *w, const char *root,
		   const json_t *include, atex_walk_apply_fn apply, void *ctx);
void atex_walk_free(struct atex_walk *w);

#endif /* ATEX_FMF_PRIVATE_H */
