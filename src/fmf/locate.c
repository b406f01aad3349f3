/*
 * locate.c - file:line:column for error messages, found after the fact.
 *
 * Keeping the position of every key of a big tree costs as much memory and
 * time as a third of the loading itself, and positions are only ever read
 * when something is wrong. So the locator only remembers which document
 * came from which file; asked about a mapping, it finds the path to it
 * inside one of those documents (by address), parses that one file again
 * with positions kept, and follows the same path there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmf/fmf_private.h"
#include "util/util.h"

struct doc {
	json_t *root;
	const char *file; /* owned by the caller (the tree's sources) */
};

struct atex_locator {
	struct doc *docs;
	size_t len, cap;
};

/* One step from a container to a child: a key or an index. */
struct step {
	const char *key; /* NULL for an array index */
	size_t index;
};

#define MAX_DEPTH 512

struct atex_locator *atex_locator_new(void)
{
	return atex_calloc(1, sizeof(struct atex_locator));
}

void atex_locator_free(struct atex_locator *loc)
{
	if (!loc)
		return;
	for (size_t i = 0; i < loc->len; i++)
		json_decref(loc->docs[i].root);
	free(loc->docs);
	free(loc);
}

int atex_locator_add(struct atex_locator *loc, json_t *root, const char *file)
{
	if (!json_is_object(root) && !json_is_array(root))
		return 0; /* nothing inside to point at */
	if (loc->len == loc->cap) {
		size_t cap = loc->cap ? loc->cap * 2 : 64;
		struct doc *p = realloc(loc->docs, cap * sizeof(*p));

		if (!p)
			return atex_error_oom();
		loc->docs = p;
		loc->cap = cap;
	}
	loc->docs[loc->len].root = json_incref(root);
	loc->docs[loc->len].file = file;
	loc->len++;
	return 0;
}

/* Depth-first search for `target` by address; fills path[0..*depth). */
static bool find_path(const json_t *at, const json_t *target,
		      struct step *path, size_t *depth)
{
	const char *key;
	json_t *child;
	size_t i, d = *depth;

	if (at == target)
		return true;
	if (d >= MAX_DEPTH)
		return false;
	if (json_is_object(at)) {
		json_object_foreach((json_t *)at, key, child) {
			path[d] = (struct step){.key = key};
			*depth = d + 1;
			if (find_path(child, target, path, depth))
				return true;
		}
	} else if (json_is_array(at)) {
		json_array_foreach(at, i, child) {
			path[d] = (struct step){.index = i};
			*depth = d + 1;
			if (find_path(child, target, path, depth))
				return true;
		}
	}
	*depth = d;
	return false;
}

static const json_t *follow(const json_t *at, const struct step *path,
			    size_t depth)
{
	for (size_t i = 0; i < depth && at; i++)
		at = path[i].key ? json_object_get(at, path[i].key)
				 : json_array_get(at, path[i].index);
	return at;
}

/* Parses `file` again with positions and formats the one asked for. */
static const char *from_file(char *buf, size_t size, const char *file,
			     const struct step *path, size_t depth,
			     const char *key)
{
	struct atex_marks *marks = atex_marks_new();
	const struct atex_mark *mark = NULL;
	json_t *again = NULL;
	const json_t *target;

	snprintf(buf, size, "%s: ", file);
	if (!marks || atex_yaml_load_file(&again, file, marks) < 0)
		goto out;
	target = follow(again, path, depth);
	if (target && key)
		mark = atex_marks_find(marks, target, key);
	if (target && !mark)
		mark = atex_marks_find(marks, target, NULL);
	if (mark)
		snprintf(buf, size, "%s:%u:%u: ", file, mark->line,
			 mark->column);
out:
	json_decref(again);
	atex_marks_free(marks);
	return buf;
}

const char *atex_locate(char *buf, size_t size,
			const struct atex_locator *loc,
			const json_t *container, const char *key)
{
	int saved_code = atex_error_last_code();
	struct step *path;
	char saved[4096];

	buf[0] = '\0';
	if (!loc || !container)
		return buf;
	path = calloc(MAX_DEPTH, sizeof(*path));
	if (!path)
		return buf;
	/* Re-parsing must not replace the error being reported. */
	snprintf(saved, sizeof(saved), "%s", atex_error_last());
	for (size_t i = loc->len; i-- > 0;) {
		size_t depth = 0;

		if (find_path(loc->docs[i].root, container, path, &depth)) {
			from_file(buf, size, loc->docs[i].file, path, depth,
				  key);
			break;
		}
	}
	atex_error_set(saved_code, "%s", saved);
	free(path);
	return buf;
}
