/*
 * tree.c - loading an fmf metadata tree, as the reference fmf does it.
 *
 * The tree root is the nearest directory holding `.fmf/`. Each directory is
 * a node; `main.fmf` holds its own data, any other `NAME.fmf` is the child
 * node NAME, and keys starting with '/' inside a file are child nodes too
 * ("/a/b:" nests). Hidden files and directories are skipped unless
 * `.fmf/config` lists them under explore.include; directories holding
 * their own `.fmf/` are separate trees and skipped. Once everything is
 * read, each node's data is merged over its parent's (merge.c), top down,
 * unless its `/` directive says `inherit: false`; directories that yielded
 * no data and no children disappear.
 *
 * Selection (fmf's climb): a node is selected when it is a leaf or its `/`
 * directive says `select: true`; nodes are visited depth first with
 * children sorted by name.
 *
 * Node data is an object owned by its node at the top level; values below
 * are shared by reference with the parent and with the YAML that produced
 * them (merge.c copies before it changes anything shared). Loading runs on
 * every core: files are parsed in parallel while the tree is built
 * (walk.c), sibling subtrees inherit in parallel, nodes adjust in
 * parallel. Error positions are found again from the files (locate.c).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atex/fmf.h"
#include "fmf/fmf_private.h"
#include "fmf/yaml.h"
#include "util/pyre.h"
#include "util/util.h"

#define DIRECTIVE_UNSET (-1)

/* A file of the tree and its directory relative to the root. */
struct source {
	char *path;
	char *dir; /* "." for the root directory */
};

struct atex_fmf_node {
	char *name;               /* "/a/b" */
	const char *short_name;   /* "b", points into name */
	struct atex_fmf_node *parent;
	struct atex_vec children; /* insertion order until sorted */
	json_t *data;             /* object, owned at the top level */
	struct atex_vec raws;     /* the YAML mappings data came from */
	const struct source *source; /* last file that defined it, or NULL */
	const char *file;         /* last file that gave it data (messages) */
	signed char select;       /* directive, or DIRECTIVE_UNSET */
	signed char inherit;
	bool updated;             /* got data (even empty) from a file */
	size_t position;          /* index in the tree's depth-first order */
	uint64_t hash;            /* of name, for the tree's index */
};

struct index {
	struct atex_fmf_node **slots; /* open addressing, power-of-two size */
	size_t cap, len;
};

struct atex_fmf_tree {
	char *root;
	struct atex_fmf_node *top;
	struct atex_locator *locator;
	struct index index;       /* full name -> node */
	json_t *explore_include;  /* hidden names to walk anyway, or NULL */
	struct atex_vec sources;  /* every file read (struct source) */
	struct atex_vec order;    /* every node, depth first, sorted */
	bool adjusted;
	/* Discovery's private trees: branches nobody selects drop their data
	 * once their children have merged it (see atex_fmf_tree_load_lean). */
	bool lean;
};

static void node_free(struct atex_fmf_node *node)
{
	if (!node)
		return;
	for (size_t i = 0; i < node->children.len; i++)
		node_free(node->children.items[i]);
	atex_vec_free(&node->children);
	for (size_t i = 0; i < node->raws.len; i++)
		json_decref(node->raws.items[i]);
	atex_vec_free(&node->raws);
	json_decref(node->data);
	free(node->name);
	free(node);
}

void atex_fmf_tree_free(atex_fmf_tree *tree)
{
	if (!tree)
		return;
	node_free(tree->top);
	free(tree->index.slots);
	json_decref(tree->explore_include);
	atex_locator_free(tree->locator);
	for (size_t i = 0; i < tree->sources.len; i++) {
		struct source *src = tree->sources.items[i];

		free(src->path);
		free(src->dir);
		free(src);
	}
	atex_vec_free(&tree->sources);
	atex_vec_free(&tree->order);
	free(tree->root);
	free(tree);
}

/* FNV-1a: node names are short and this runs once per node and lookup. */
static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static size_t index_slot(const struct index *ix, const char *name,
			 uint64_t hash)
{
	size_t mask = ix->cap - 1, i = hash & mask;

	while (ix->slots[i] && (ix->slots[i]->hash != hash ||
				strcmp(ix->slots[i]->name, name)))
		i = (i + 1) & mask;
	return i;
}

static struct atex_fmf_node *index_get(const atex_fmf_tree *tree,
				       const char *name)
{
	const struct index *ix = &tree->index;

	return ix->cap ? ix->slots[index_slot(ix, name, name_hash(name))]
		       : NULL;
}

static int index_put(struct index *ix, struct atex_fmf_node *node)
{
	if (2 * (ix->len + 1) > ix->cap) {
		struct index bigger = {.cap = ix->cap ? 2 * ix->cap : 1024};

		bigger.slots = atex_calloc(bigger.cap, sizeof(*bigger.slots));
		if (!bigger.slots)
			return ATEX_ENOMEM;
		for (size_t i = 0; i < ix->cap; i++) {
			struct atex_fmf_node *n = ix->slots[i];

			if (n)
				bigger.slots[index_slot(&bigger, n->name,
							n->hash)] = n;
		}
		bigger.len = ix->len;
		free(ix->slots);
		*ix = bigger;
	}
	ix->slots[index_slot(ix, node->name, node->hash)] = node;
	ix->len++;
	return 0;
}

/* Linear-probing removal: the rest of the cluster moves up so lookups
 * never stop at the hole. */
static void index_del(struct index *ix, const struct atex_fmf_node *node)
{
	size_t mask = ix->cap - 1, i, j;

	if (!ix->cap)
		return;
	i = index_slot(ix, node->name, node->hash);
	if (ix->slots[i] != node)
		return;
	ix->slots[i] = NULL;
	ix->len--;
	for (j = (i + 1) & mask; ix->slots[j]; j = (j + 1) & mask) {
		struct atex_fmf_node *n = ix->slots[j];

		ix->slots[j] = NULL;
		ix->slots[index_slot(ix, n->name, n->hash)] = n;
	}
}

static struct atex_fmf_node *node_new(atex_fmf_tree *tree,
				      struct atex_fmf_node *parent,
				      const char *name)
{
	struct atex_fmf_node *node = atex_calloc(1, sizeof(*node));

	if (!node)
		return NULL;
	node->select = node->inherit = DIRECTIVE_UNSET;
	node->parent = parent;
	if (!parent)
		node->name = atex_strdup("/");
	else if (!strcmp(parent->name, "/"))
		node->name = atex_sprintf("/%s", name);
	else
		node->name = atex_sprintf("%s/%s", parent->name, name);
	if (!node->name)
		goto fail;
	node->short_name = parent ? node->name + strlen(node->name) -
					    strlen(name)
				  : node->name;
	node->hash = name_hash(node->name);
	if (index_put(&tree->index, node) < 0)
		goto fail;
	if (parent && atex_vec_push(&parent->children, node) < 0) {
		index_del(&tree->index, node);
		goto fail;
	}
	return node;
fail:
	atex_error_oom();
	json_decref(node->data);
	free(node->name);
	free(node);
	return NULL;
}

/* "FILE:LINE:COL: " of a value or key, looked for in `file` first; "FILE: "
 * when it cannot be found. */
static const char *where(char *buf, size_t size, const atex_fmf_tree *tree,
			 const json_t *value, const char *key,
			 const char *file)
{
	atex_locate(buf, size, tree->locator, file, value, key);
	if (!buf[0] && file)
		snprintf(buf, size, "%s: ", file);
	return buf;
}

static int directives(atex_fmf_tree *tree, struct atex_fmf_node *node,
		      json_t *raw, const char *file)
{
	json_t *dir = json_object_get(raw, "/");
	const char *key;
	json_t *value;
	char at[512];

	if (!json_is_object(dir))
		return atex_error_set(ATEX_EFORMAT,
				      "%sFormatError: invalid fmf directive in "
				      "'%s': should be a 'dict', got a '%s' "
				      "instead",
				      where(at, sizeof(at), tree, raw, "/",
					    file),
				      node->name, atex_py_type(dir));
	json_object_foreach(dir, key, value) {
		signed char *slot = !strcmp(key, "inherit") ? &node->inherit
				    : !strcmp(key, "select") ? &node->select
							     : NULL;

		if (!slot)
			return atex_error_set(
				ATEX_EFORMAT,
				"%sFormatError: unknown fmf directive '%s' in "
				"'%s'",
				where(at, sizeof(at), tree, dir, key, file),
				key, node->name);
		if (!json_is_boolean(value))
			return atex_error_set(
				ATEX_EFORMAT,
				"%sFormatError: invalid fmf directive '%s' in "
				"'%s': should be a 'bool', got a '%s' instead",
				where(at, sizeof(at), tree, dir, key, file),
				key, node->name, atex_py_type(value));
		*slot = json_is_true(value) ? 1 : 0;
	}
	return 0;
}

static int node_update(atex_fmf_tree *tree, struct atex_fmf_node *node,
		       json_t *raw, const char *file);

/* The existing child `name` of `parent`, or a new one; NULL on ENOMEM. */
static struct atex_fmf_node *child_get(atex_fmf_tree *tree,
				       struct atex_fmf_node *parent,
				       const char *name)
{
	size_t lp = strlen(parent->name), ln = strlen(name);
	struct atex_fmf_node *child;
	char small[512], *full = small;

	if (lp == 1) /* the root "/" */
		lp = 0;
	if (lp + ln + 2 > sizeof(small) && !(full = atex_malloc(lp + ln + 2)))
		return NULL;
	memcpy(full, parent->name, lp);
	full[lp] = '/';
	memcpy(full + lp + 1, name, ln + 1);
	child = index_get(tree, full);
	if (full != small)
		free(full);
	return child ? child : node_new(tree, parent, name);
}

/* fmf's Tree.child() for data from a file: create or update child `name`. */
static int child_update(atex_fmf_tree *tree, struct atex_fmf_node *parent,
			const char *name, json_t *raw, const char *file,
			const struct source *source)
{
	struct atex_fmf_node *child = child_get(tree, parent, name);
	int rc;

	if (!child)
		return ATEX_ENOMEM;
	rc = node_update(tree, child, raw, file);
	if (rc == 0 && source)
		child->source = source;
	return rc;
}

/* A key "/a/b/c" names child "a" holding {"/b/c": value}. */
static int virtual_child(atex_fmf_tree *tree, struct atex_fmf_node *node,
			 const char *key, json_t *value, const char *file)
{
	const char *name = key + strspn(key, "/");
	const char *slash = strchr(name, '/');
	json_t *wrapped;
	char *first;
	int rc;

	if (!slash)
		return child_update(tree, node, name, value, file, NULL);
	first = atex_strndup(name, (size_t)(slash - name));
	wrapped = json_object();
	if (!first || !wrapped || json_object_set(wrapped, slash, value) < 0) {
		free(first);
		json_decref(wrapped);
		return atex_error_oom();
	}
	rc = child_update(tree, node, first, wrapped, file, NULL);
	free(first);
	json_decref(wrapped);
	return rc;
}

/* fmf's Tree.update(): own keys into data, '/' keys into children. */
static int node_update(atex_fmf_tree *tree, struct atex_fmf_node *node,
		       json_t *raw, const char *file)
{
	const char *key;
	json_t *value;
	char at[512];
	int rc;

	node->updated = true;
	node->file = file;
	if (json_is_null(raw))
		return 0;
	if (!json_is_object(raw))
		return atex_error_set(ATEX_EFORMAT,
				      "%sFormatError: node '%s' must be a "
				      "mapping, got a '%s'",
				      where(at, sizeof(at), tree, raw, NULL,
					    file),
				      node->name, atex_py_type(raw));
	if (json_object_get(raw, "/") &&
	    (rc = directives(tree, node, raw, file)) < 0)
		return rc;
	if (atex_vec_push(&node->raws, json_incref(raw)) < 0) {
		json_decref(raw);
		return ATEX_ENOMEM;
	}
	/* Own keys stay in the raw mapping until inherit() merges them. */
	json_object_foreach(raw, key, value) {
		if (key[0] != '/' || !strcmp(key, "/"))
			continue;
		if (!json_is_object(value) && !json_is_null(value))
			return atex_error_set(
				ATEX_EFORMAT,
				"%sFormatError: child node '%s' in '%s' must "
				"be a mapping, got a '%s'",
				where(at, sizeof(at), tree, raw, key, file),
				key, node->name, atex_py_type(value));
		rc = virtual_child(tree, node, key, value, file);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Drops children that got neither data nor children of their own. */
static void prune_empty(atex_fmf_tree *tree, struct atex_fmf_node *node)
{
	size_t kept = 0;

	for (size_t i = 0; i < node->children.len; i++) {
		struct atex_fmf_node *c = node->children.items[i];

		if (!c->children.len && !c->updated) {
			index_del(&tree->index, c);
			node_free(c);
			continue;
		}
		node->children.items[kept++] = c;
	}
	node->children.len = kept;
}

/* fmf's handling of one file: main.fmf is the directory node's own data,
 * NAME.fmf the child NAME. The tree takes over the path. */
/* Records a file of the tree (taking over `path`). */
static struct source *add_source(atex_fmf_tree *tree, char *path)
{
	struct source *src = atex_calloc(1, sizeof(*src));
	size_t root_len = strlen(tree->root);
	size_t end = (size_t)(strrchr(path, '/') - path);

	if (!src) {
		free(path);
		return NULL;
	}
	src->path = path;
	src->dir = end > root_len ? atex_strndup(path + root_len + 1,
						 end - root_len - 1)
				  : atex_strdup(".");
	if (!src->dir || atex_vec_push(&tree->sources, src) < 0) {
		free(src->dir);
		free(src);
		free(path);
		return NULL;
	}
	/* From here on src belongs to the tree, even on failure. */
	if (atex_locator_add(tree->locator, path) < 0)
		return NULL;
	return src;
}

static int apply_file(atex_fmf_tree *tree, struct atex_fmf_node *node,
		      struct atex_walk_step *step)
{
	struct source *src;
	char *stem;
	int rc;

	if (step->rc < 0)
		return atex_error_set(step->rc, "%s",
				      step->error ? step->error
						  : "cannot read a file");
	src = add_source(tree, step->path);
	step->path = NULL;
	if (!src)
		return ATEX_ENOMEM;
	if (!strcmp(step->name, "main.fmf")) {
		node->source = src;
		return node_update(tree, node, step->data, src->path);
	}
	stem = atex_strndup(step->name, strlen(step->name) - 4);
	if (!stem)
		return ATEX_ENOMEM;
	rc = child_update(tree, node, stem, step->data, src->path, src);
	free(stem);
	return rc;
}

/* fmf's grow(), replayed from the walk one step at a time: the same nodes
 * in the same order as a sequential walk would make them. */
struct replay {
	atex_fmf_tree *tree;
	struct atex_fmf_node *node; /* the directory being filled */
	struct atex_vec stack;      /* its ancestors */
};

static int replay_step(struct atex_walk_step *step, void *ctx)
{
	struct replay *r = ctx;

	switch (step->kind) {
	case ATEX_WALK_FILE:
		return apply_file(r->tree, r->node, step);
	case ATEX_WALK_ENTER:
		if (atex_vec_push(&r->stack, r->node) < 0)
			return ATEX_ENOMEM;
		r->node = child_get(r->tree, r->node, step->name);
		return r->node ? 0 : ATEX_ENOMEM;
	case ATEX_WALK_LEAVE:
		prune_empty(r->tree, r->node);
		r->node = atex_vec_pop(&r->stack);
		return 0;
	}
	return 0;
}

static int grow(atex_fmf_tree *tree)
{
	struct replay r = {.tree = tree, .node = tree->top};
	struct atex_walk walk;
	int rc;

	rc = atex_walk_tree(&walk, tree->root, tree->explore_include,
			    replay_step, &r);
	if (rc == 0)
		prune_empty(tree, tree->top);
	atex_vec_free(&r.stack);
	atex_walk_free(&walk);
	return rc;
}

/* ------------------------------------------------------------------------
 * Inheritance.
 */

static struct atex_merge merge_of(const atex_fmf_tree *tree,
				  const struct atex_fmf_node *node)
{
	struct atex_merge m = {
		.node = node->name,
		.locator = tree->locator,
		.hint = node->file,
		.own = node->data,
		.raws = (json_t *const *)node->raws.items,
		.n_raws = node->raws.len,
	};

	return m;
}

/*
 * A node's own data: fmf's update() copies every file's keys into one dict,
 * later files overriding earlier ones. Nearly every node comes from one
 * mapping, which then serves as it is (its child keys skipped by the merge);
 * only nodes defined in several places get a combined copy.
 */
static json_t *own_data(struct atex_fmf_node *node)
{
	json_t *own, *value;
	const char *key;

	if (node->raws.len == 1)
		return json_incref(node->raws.items[0]);
	own = json_object();
	if (!own) {
		atex_error_oom();
		return NULL;
	}
	for (size_t i = 0; i < node->raws.len; i++) {
		json_object_foreach((json_t *)node->raws.items[i], key, value) {
			if (key[0] == '/')
				continue;
			if (json_object_set(own, key, value) < 0) {
				json_decref(own);
				atex_error_oom();
				return NULL;
			}
		}
	}
	return own;
}

/* Merges a node's own data over its parent's, or over nothing for the root
 * and for `inherit: false` (so their merge suffixes are resolved too). */
static int inherit_node(atex_fmf_tree *tree, struct atex_fmf_node *node)
{
	struct atex_fmf_node *parent = node->inherit != 0 ? node->parent : NULL;
	struct atex_merge m = merge_of(tree, node);
	json_t *own = own_data(node);
	json_t *data = parent ? json_copy(parent->data) : json_object();
	int rc;

	if (!own || !data) {
		json_decref(own);
		json_decref(data);
		return atex_error_oom();
	}
	m.own = own;
	m.skip_child_keys = true;
	rc = atex_fmf_merge(data, own, &m);
	json_decref(own);
	node->data = data;
	/* The YAML mappings are not needed any more (locate.c finds positions
	 * in the files); dropping them as soon as each node is merged keeps
	 * the peak down to one copy of the data. */
	for (size_t i = 0; i < node->raws.len; i++)
		json_decref(node->raws.items[i]);
	atex_vec_free(&node->raws);
	if (rc == 0 && !node->source && parent)
		node->source = parent->source;
	return rc;
}

/* A lean tree keeps data only where someone can ask for it. */
static void drop_branch_data(const atex_fmf_tree *tree,
			     struct atex_fmf_node *node)
{
	if (tree->lean && !atex_fmf_node_is_selected(node)) {
		json_decref(node->data);
		node->data = NULL;
	}
}

static int inherit_subtree(atex_fmf_tree *tree, struct atex_fmf_node *node)
{
	int rc = inherit_node(tree, node);

	for (size_t i = 0; i < node->children.len && rc == 0; i++)
		rc = inherit_subtree(tree, node->children.items[i]);
	drop_branch_data(tree, node);
	return rc;
}

/*
 * Work for the threads of a parallel phase: units handed out in order
 * through `next`; each unit's result is kept so that the error reported is
 * the first in unit order, whichever thread met it.
 */
struct phase {
	atex_fmf_tree *tree;
	const atex_fmf_context *ctx; /* adjust only */
	void **units;
	size_t n_units;
	atomic_size_t next;
	int *rcs;
	char **errors;
};

#define PARALLEL_MIN_UNITS 8

static int phase_init(struct phase *p, atex_fmf_tree *tree, void **units,
		      size_t n)
{
	memset(p, 0, sizeof(*p));
	p->tree = tree;
	p->units = units;
	p->n_units = n;
	atomic_init(&p->next, 0);
	p->rcs = atex_calloc(n, sizeof(*p->rcs));
	p->errors = atex_calloc(n, sizeof(*p->errors));
	if (p->rcs && p->errors)
		return 0;
	free(p->rcs);
	free(p->errors);
	return ATEX_ENOMEM;
}

static void phase_note(struct phase *p, size_t i, int rc)
{
	p->rcs[i] = rc;
	if (rc < 0)
		p->errors[i] = strdup(atex_error_last());
}

/* Runs fn on every unit, in parallel when there are enough of them, and
 * returns the first unit's error (with its message) or 0. */
static int phase_run(struct phase *p, void (*fn)(void *))
{
	int rc = 0;

	atex_run_parallel(p->n_units < PARALLEL_MIN_UNITS ? 1
							  : atex_cpu_count(),
			  fn, p);
	for (size_t i = 0; i < p->n_units; i++) {
		if (p->rcs[i] < 0 && rc == 0)
			rc = atex_error_set(p->rcs[i], "%s",
					    p->errors[i] ? p->errors[i]
							 : "out of memory");
		free(p->errors[i]);
	}
	free(p->rcs);
	free(p->errors);
	return rc;
}

static void inherit_units(void *arg)
{
	struct phase *p = arg;
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n_units)
		phase_note(p, i, inherit_subtree(p->tree, p->units[i]));
}

/* The levels inherit() merged itself, above the parallel subtrees. */
static void drop_top_data(const atex_fmf_tree *tree, struct atex_fmf_node *node)
{
	if (!node->data)
		return;
	for (size_t i = 0; i < node->children.len; i++)
		drop_top_data(tree, node->children.items[i]);
	drop_branch_data(tree, node);
}

/*
 * Inheritance runs top down, but sibling subtrees are independent: the top
 * levels are merged here until there are enough subtrees to keep every
 * core busy, then the subtrees are merged in parallel (parents' data is
 * only read by then, and jansson's reference counts are atomic).
 */
static int inherit(atex_fmf_tree *tree)
{
	struct atex_vec level = ATEX_VEC_INIT, next = ATEX_VEC_INIT;
	struct phase p;
	int rc;

	rc = inherit_node(tree, tree->top);
	if (rc == 0)
		rc = atex_vec_push(&level, tree->top);
	while (rc == 0) {
		for (size_t i = 0; i < level.len && rc == 0; i++) {
			struct atex_fmf_node *n = level.items[i];

			for (size_t j = 0; j < n->children.len && rc == 0; j++)
				rc = atex_vec_push(&next, n->children.items[j]);
		}
		if (rc < 0 || next.len == 0 || next.len >= 4 * PARALLEL_MIN_UNITS)
			break;
		for (size_t i = 0; i < next.len && rc == 0; i++)
			rc = inherit_node(tree, next.items[i]);
		atex_vec_free(&level);
		level = next;
		next = (struct atex_vec)ATEX_VEC_INIT;
	}
	if (rc == 0 && next.len) {
		rc = phase_init(&p, tree, next.items, next.len);
		if (rc == 0)
			rc = phase_run(&p, inherit_units);
	}
	atex_vec_free(&level);
	atex_vec_free(&next);
	if (rc == 0 && tree->lean)
		drop_top_data(tree, tree->top);
	return rc;
}

static int cmp_node(const void *a, const void *b)
{
	const struct atex_fmf_node *x = *(struct atex_fmf_node *const *)a;
	const struct atex_fmf_node *y = *(struct atex_fmf_node *const *)b;

	return strcmp(x->short_name, y->short_name);
}

/* Sorts children and records the depth-first order. */
static int finish_node(atex_fmf_tree *tree, struct atex_fmf_node *node)
{
	int rc;

	atex_vec_sort(&node->children, cmp_node);
	node->position = tree->order.len;
	if (atex_vec_push(&tree->order, node) < 0)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < node->children.len; i++) {
		rc = finish_node(tree, node->children.items[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Finding the root, reading .fmf/version and .fmf/config.
 */

static int find_root(char **root, const char *path)
{
	char *dir = atex_path_abspath(path), *probe = NULL;

	if (!dir)
		return atex_error_last_code();
	if (!atex_path_is_dir(dir)) {
		int rc = atex_error_set(ATEX_ENOTFOUND,
					"%s: not a directory (looking for an fmf "
					"tree root)",
					path);
		free(dir);
		return rc;
	}
	for (;;) {
		char *slash;

		probe = atex_path_join(dir, ".fmf");
		if (!probe)
			goto oom;
		if (atex_path_is_dir(probe))
			break;
		free(probe);
		probe = NULL;
		if (!strcmp(dir, "/")) {
			free(dir);
			return atex_error_set(ATEX_ENOTFOUND,
					      "%s: no fmf tree root (a directory "
					      "with .fmf/) here or above; create "
					      "one with 'mkdir .fmf && echo 1 > "
					      ".fmf/version'",
					      path);
		}
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free(probe);
	*root = dir;
	return 0;
oom:
	free(dir);
	return ATEX_ENOMEM;
}

static int read_version(const char *root)
{
	char *path = atex_path_join(root, ".fmf/version"), *text = NULL, *end;
	long version;
	int rc = 0;

	if (!path)
		return ATEX_ENOMEM;
	if (atex_file_read(&text, NULL, path) < 0) {
		atex_error_prefix("FormatError: unable to detect the format "
				  "version");
		rc = atex_error_set(ATEX_EFORMAT, "%s", atex_error_last());
		goto out;
	}
	errno = 0;
	version = strtol(text, &end, 10);
	while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
		end++;
	if (errno || end == text || *end || version < 0) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s:1:1: FormatError: invalid version "
				    "format (expected an integer)",
				    path);
		goto out;
	}
out:
	free(text);
	free(path);
	return rc;
}

static int read_config(atex_fmf_tree *tree)
{
	char *path = atex_path_join(tree->root, ".fmf/config");
	json_t *config = NULL, *include;
	int rc = 0;

	if (!path)
		return ATEX_ENOMEM;
	if (!atex_path_exists(path))
		goto out;
	rc = atex_yaml_load_file(&config, path, NULL);
	if (rc < 0)
		goto out;
	include = json_object_get(json_object_get(config, "explore"),
				  "include");
	if (!include)
		goto out;
	if (!json_is_array(include)) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s: the 'include' config section should "
				    "be a list",
				    path);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(include); i++) {
		json_t *item = json_array_get(include, i);

		if (json_is_string(item) &&
		    !strcmp(json_string_value(item), ".fmf")) {
			rc = atex_error_set(ATEX_EFORMAT,
					    "%s: the '.fmf' directory cannot be "
					    "used for storing fmf metadata",
					    path);
			goto out;
		}
	}
	tree->explore_include = json_incref(include);
out:
	json_decref(config);
	free(path);
	return rc;
}

static int tree_load(atex_fmf_tree **out, const char *path, bool lean)
{
	double start = atex_monotonic_ms(), grown, inherited;
	atex_fmf_tree *tree;
	int rc;

	if (!out || !path)
		return atex_error_set(ATEX_EINVAL, "fmf: %s is NULL",
				      out ? "path" : "out");
	*out = NULL;
	tree = atex_calloc(1, sizeof(*tree));
	if (!tree)
		return ATEX_ENOMEM;
	tree->lean = lean;
	tree->locator = atex_locator_new();
	if (!tree->locator) {
		rc = atex_error_oom();
		goto fail;
	}
	rc = find_root(&tree->root, path);
	if (rc < 0)
		goto fail;
	rc = read_version(tree->root);
	if (rc < 0)
		goto fail;
	rc = read_config(tree);
	if (rc < 0)
		goto fail;
	tree->top = node_new(tree, NULL, "/");
	if (!tree->top) {
		rc = ATEX_ENOMEM;
		goto fail;
	}
	rc = grow(tree);
	if (rc < 0)
		goto fail;
	grown = atex_monotonic_ms();
	rc = inherit(tree);
	if (rc < 0)
		goto fail;
	inherited = atex_monotonic_ms();
	rc = finish_node(tree, tree->top);
	if (rc < 0)
		goto fail;
	atex_debug("fmf", "%s: %zu files, %zu nodes in %.1f ms (read %.1f, "
		   "inherit %.1f)",
		   tree->root, tree->sources.len, tree->order.len,
		   atex_monotonic_ms() - start, grown - start,
		   inherited - grown);
	*out = tree;
	return 0;
fail:
	atex_fmf_tree_free(tree);
	return rc;
}

int atex_fmf_tree_load(atex_fmf_tree **out, const char *path)
{
	return tree_load(out, path, false);
}

int atex_fmf_tree_load_lean(atex_fmf_tree **out, const char *path)
{
	return tree_load(out, path, true);
}

/* ------------------------------------------------------------------------
 * Adjust.
 */

/*
 * Decisions already made in one adjust pass, by the address of the `when`
 * value: inherited rules are shared values, so the nodes of a big tree ask
 * about the same few rules over and over. Each key holds a reference, so an
 * address cannot be reused by another value while it is cached.
 */
struct decisions {
	json_t **keys;
	signed char *values;
	size_t cap, len;
};

static size_t decision_slot(const struct decisions *c, const json_t *key)
{
	size_t i = ((uintptr_t)key >> 4) * 0x9E3779B97F4A7C15ull;

	for (i &= c->cap - 1; c->keys[i] && c->keys[i] != key;
	     i = (i + 1) & (c->cap - 1))
		;
	return i;
}

static int decisions_grow(struct decisions *c)
{
	struct decisions bigger = {.cap = c->cap ? c->cap * 2 : 64};

	bigger.keys = atex_calloc(bigger.cap, sizeof(*bigger.keys));
	bigger.values = atex_calloc(bigger.cap, sizeof(*bigger.values));
	if (!bigger.keys || !bigger.values) {
		free(bigger.keys);
		free(bigger.values);
		return ATEX_ENOMEM;
	}
	for (size_t i = 0; i < c->cap; i++) {
		if (c->keys[i]) {
			size_t j = decision_slot(&bigger, c->keys[i]);

			bigger.keys[j] = c->keys[i];
			bigger.values[j] = c->values[i];
		}
	}
	bigger.len = c->len;
	free(c->keys);
	free(c->values);
	*c = bigger;
	return 0;
}

static void decisions_free(struct decisions *c)
{
	for (size_t i = 0; i < c->cap; i++)
		json_decref(c->keys[i]);
	free(c->keys);
	free(c->values);
}

static int decide(struct decisions *c, int *decision,
		  const atex_fmf_context *ctx, json_t *when)
{
	size_t i;
	int rc;

	if (c->cap && c->keys[i = decision_slot(c, when)]) {
		*decision = c->values[i];
		return 0;
	}
	rc = atex_fmf_context_match_json(decision, ctx, when);
	if (rc < 0)
		return rc;
	if (2 * (c->len + 1) > c->cap && decisions_grow(c) < 0)
		return 0; /* no memory to remember it: still decided */
	i = decision_slot(c, when);
	c->keys[i] = json_incref(when);
	c->values[i] = (signed char)*decision;
	c->len++;
	return 0;
}

static int adjust_node(atex_fmf_tree *tree, struct atex_fmf_node *node,
		       const atex_fmf_context *ctx, struct decisions *cache)
{
	json_t *rules = node->data ? json_object_get(node->data, "adjust")
				   : NULL;
	json_t *rule;
	char at[512];
	size_t i;
	int rc;

	if (!rules)
		return 0;
	json_incref(rules); /* merging may replace data["adjust"] */
	if (json_is_object(rules)) {
		json_t *list = json_array();

		if (!list || json_array_append(list, rules) < 0) {
			json_decref(list);
			json_decref(rules);
			return atex_error_oom();
		}
		json_decref(rules);
		rules = list;
	}
	if (!json_is_array(rules)) {
		struct atex_merge m = merge_of(tree, node);

		rc = atex_error_set(
			ATEX_EFORMAT,
			"%sFormatError: invalid adjust rule format in '%s': "
			"should be a dictionary or a list of dictionaries, "
			"got '%s'",
			atex_merge_where(at, sizeof(at), &m, node->data,
					 "adjust"),
			node->name, atex_py_type(rules));
		goto out;
	}
	rc = 0;
	json_array_foreach(rules, i, rule) {
		struct atex_merge m = merge_of(tree, node);
		json_t *when, *cont;
		int decision;

		if (!json_is_object(rule)) {
			rc = atex_error_set(ATEX_EFORMAT,
					    "%sFormatError: adjust rule in '%s' "
					    "should be a dictionary, got '%s'",
					    where(at, sizeof(at), tree, rules,
						  NULL, node->file),
					    node->name, atex_py_type(rule));
			break;
		}
		cont = json_object_get(rule, "continue");
		if (cont && !json_is_boolean(cont)) {
			rc = atex_error_set(ATEX_EFORMAT,
					    "%sFormatError: the 'continue' value "
					    "in '%s' should be bool, got '%s'",
					    where(at, sizeof(at), tree, rule,
						  "continue", node->file),
					    node->name, atex_py_type(cont));
			break;
		}
		when = json_object_get(rule, "when");
		if (!when) {
			decision = ATEX_FMF_TRUE;
		} else if ((rc = decide(cache, &decision, ctx, when)) < 0) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", atex_error_last());
			rc = atex_error_set(rc, "%s%s (adjust rule in '%s')",
					    where(at, sizeof(at), tree, rule,
						  "when", node->file),
					    msg, node->name);
			break;
		}
		if (decision != ATEX_FMF_TRUE)
			continue;
		m.own = NULL;
		m.skip_adjust_keys = true;
		rc = atex_fmf_merge(node->data, rule, &m);
		if (rc < 0 || (cont && json_is_false(cont)))
			break;
	}
out:
	json_decref(rules);
	return rc;
}

/* Nodes are adjusted independently: threads take chunks of them, each
 * with a decision cache of its own. */
#define ADJUST_CHUNK 64

static void adjust_units(void *arg)
{
	struct phase *p = arg;
	struct decisions cache = {0};
	size_t start;

	while ((start = atomic_fetch_add(&p->next, ADJUST_CHUNK)) < p->n_units) {
		size_t end = start + ADJUST_CHUNK;

		for (size_t i = start; i < end && i < p->n_units; i++)
			phase_note(p, i, adjust_node(p->tree, p->units[i],
						     p->ctx, &cache));
	}
	decisions_free(&cache);
}

int atex_fmf_tree_adjust(atex_fmf_tree *tree, const atex_fmf_context *ctx)
{
	atex_fmf_context *empty = NULL;
	struct phase p;
	double start;
	int rc = 0;

	if (tree->adjusted)
		return atex_error_set(ATEX_EINVAL,
				      "the tree at %s is adjusted already",
				      tree->root);
	if (!ctx) {
		rc = atex_fmf_context_new(&empty);
		if (rc < 0)
			return rc;
		ctx = empty;
	}
	tree->adjusted = true;
	start = atex_monotonic_ms();
	rc = phase_init(&p, tree, tree->order.items, tree->order.len);
	p.ctx = ctx;
	if (rc == 0)
		rc = phase_run(&p, adjust_units);
	atex_debug("fmf", "%s: adjusted in %.1f ms", tree->root,
		   atex_monotonic_ms() - start);
	atex_fmf_context_free(empty);
	return rc;
}

/* ------------------------------------------------------------------------
 * Access and selection.
 */

const char *atex_fmf_tree_root(const atex_fmf_tree *tree)
{
	return tree->root;
}

const atex_fmf_node *atex_fmf_tree_top(const atex_fmf_tree *tree)
{
	return tree->top;
}

const atex_fmf_node *atex_fmf_tree_find(const atex_fmf_tree *tree,
					const char *name)
{
	return index_get(tree, name);
}

const atex_fmf_node *atex_fmf_tree_next(const atex_fmf_tree *tree,
					const atex_fmf_node *prev)
{
	size_t next = prev ? prev->position + 1 : 0;

	return next < tree->order.len ? tree->order.items[next] : NULL;
}

const char *atex_fmf_node_name(const atex_fmf_node *node)
{
	return node->name;
}

json_t *atex_fmf_node_data(const atex_fmf_node *node)
{
	return node->data;
}

bool atex_fmf_node_is_selected(const atex_fmf_node *node)
{
	if (node->select != DIRECTIVE_UNSET)
		return node->select == 1;
	return node->children.len == 0;
}

const char *atex_fmf_node_file(const atex_fmf_node *node)
{
	return node->file;
}

/* ------------------------------------------------------------------------
 * Test names that cannot name a directory.
 */

/* What makes `name` ("/a/b") unfit to be a path below a results
 * directory, or NULL. The root "/" has no components and is fine. */
static const char *name_flaw(const char *name)
{
	const char *p = name + (name[0] == '/');

	if (!strcmp(name, "/"))
		return NULL;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0)
			return "an empty component";
		if (n == 1 && p[0] == '.')
			return "a '.' component";
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "a '..' component";
		if (!p[n])
			return NULL;
		p += n + 1;
	}
}

/* Whether a child key ("/x/../y", "//") gives a node such a name, as fmf
 * splits it: leading slashes dropped, one trailing slash a directive, two
 * an empty name. */
static bool key_flawed(const char *key)
{
	const char *p = key + strspn(key, "/");
	size_t n = strlen(key);

	if (key[0] != '/' || !strcmp(key, "/"))
		return false;
	if (!*p || (n >= 2 && key[n - 1] == '/' && key[n - 2] == '/'))
		return true;
	while (*p) {
		size_t len = strcspn(p, "/");

		if ((len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return true;
		p += len + strspn(p + len, "/");
	}
	return false;
}

/* The first mapping below `map` with a flawed child key, which is stored
 * in *key. */
static const json_t *find_flawed(const json_t *map, const char **key,
				 int depth)
{
	const json_t *found, *value;
	const char *k;

	if (!json_is_object(map) || depth > 512)
		return NULL;
	json_object_foreach((json_t *)map, k, value) {
		if (key_flawed(k)) {
			*key = k;
			return map;
		}
		if ((found = find_flawed(value, key, depth + 1)))
			return found;
	}
	return NULL;
}

/* "FILE:LINE:COL: " of the key in `file` that made a flawed name, "FILE: "
 * when none is found (the name may come from elsewhere). */
static void locate_flaw(char *buf, size_t size, const char *file)
{
	struct atex_marks *marks = atex_marks_new();
	const struct atex_mark *mark = NULL;
	const json_t *map = NULL;
	const char *key = NULL;
	json_t *doc = NULL;
	int code = atex_error_last_code();
	char saved[1024];

	snprintf(saved, sizeof(saved), "%s", atex_error_last());
	if (marks && atex_yaml_load_file(&doc, file, marks) == 0)
		map = find_flawed(doc, &key, 0);
	if (map)
		mark = atex_marks_find(marks, map, key);
	if (mark)
		snprintf(buf, size, "%s:%u:%u: ", file, mark->line,
			 mark->column);
	else
		snprintf(buf, size, "%s: ", file);
	json_decref(doc);
	atex_marks_free(marks);
	atex_error_set(code, "%s", saved);
}

int atex_fmf_check_test_name(const atex_fmf_node *node, const char *name)
{
	const char *flaw = name_flaw(name);
	char at[1024] = "";

	if (!flaw)
		return 0;
	if (node && node->file)
		locate_flaw(at, sizeof(at), node->file);
	return atex_error_set(ATEX_EFORMAT,
			      "%stest %s: the name has %s; a test name must "
			      "not have empty, '.' or '..' components (it "
			      "names the test's directory of results)",
			      at, name, flaw);
}

const char *atex_fmf_node_dir(const atex_fmf_node *node)
{
	return node->source ? node->source->dir : ".";
}

int atex_fmf_tree_prune(json_t **out, const atex_fmf_tree *tree,
			const char *const *names, size_t n_names,
			const char *const *filters, size_t n_filters)
{
	struct atex_pyre **name_re = NULL;
	atex_fmf_filter **filter = NULL;
	json_t *result = NULL;
	size_t i, j;
	int rc = 0;

	*out = NULL;
	name_re = atex_calloc(n_names + 1, sizeof(*name_re));
	filter = atex_calloc(n_filters + 1, sizeof(*filter));
	result = json_object();
	if (!name_re || !filter || !result) {
		rc = atex_error_oom();
		goto out;
	}
	for (i = 0; i < n_names && rc == 0; i++)
		rc = atex_pyre_compile(&name_re[i], names[i], 0);
	for (i = 0; i < n_filters && rc == 0; i++)
		rc = atex_fmf_filter_new(&filter[i], filters[i]);
	if (rc < 0)
		goto out;
	for (i = 0; i < tree->order.len; i++) {
		const struct atex_fmf_node *node = tree->order.items[i];
		bool keep = atex_fmf_node_is_selected(node);

		if (keep && n_names) {
			keep = false;
			for (j = 0; j < n_names && !keep; j++)
				keep = atex_pyre_search(name_re[j],
							node->name) > 0;
		}
		for (j = 0; j < n_filters && keep; j++) {
			rc = atex_fmf_filter_match(filter[j], node->data,
						   node->name);
			if (rc < 0)
				goto out;
			keep = rc > 0;
		}
		rc = 0;
		if (keep && json_object_set(result, node->name, node->data) < 0) {
			rc = atex_error_oom();
			goto out;
		}
	}
	*out = json_incref(result);
out:
	for (i = 0; name_re && i < n_names; i++)
		atex_pyre_free(name_re[i]);
	for (i = 0; filter && i < n_filters; i++)
		atex_fmf_filter_free(filter[i]);
	free(name_re);
	free(filter);
	json_decref(result);
	return rc;
}
