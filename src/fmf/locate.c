/*
 * locate.c - file:line:column for error messages, found after the fact.
 *
 * Keeping the position of every key of a big tree costs as much memory and
 * time as a third of the loading itself, and positions are only ever read
 * when something is wrong. Keeping the parsed documents around just to
 * point into them would cost most of that memory too. So the locator only
 * remembers the files of a tree; asked about a mapping (or sequence), it
 * parses files again with positions kept — the file the caller suspects
 * first — and looks for a mapping equal to the one at fault. Two equal
 * mappings in one file are reported at the first; both read the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmf/fmf_private.h"
#include "util/util.h"

struct atex_locator {
	const char **files; /* owned by the caller (the tree's sources) */
	size_t len, cap;
};

struct atex_locator *atex_locator_new(void)
{
	return atex_calloc(1, sizeof(struct atex_locator));
}

void atex_locator_free(struct atex_locator *loc)
{
	if (!loc)
		return;
	free(loc->files);
	free(loc);
}

int atex_locator_add(struct atex_locator *loc, const char *file)
{
	if (loc->len == loc->cap) {
		size_t cap = loc->cap ? loc->cap * 2 : 64;
		const char **p = realloc(loc->files, cap * sizeof(*p));

		if (!p)
			return atex_error_oom();
		loc->files = p;
		loc->cap = cap;
	}
	loc->files[loc->len++] = file;
	return 0;
}

/* A container in `at` equal to `target` (holding `key`, if given). */
static const json_t *find_equal(const json_t *at, const json_t *target,
				const char *key, int depth)
{
	const json_t *found = NULL, *child;
	const char *k;
	size_t i;

	if (json_typeof(at) == json_typeof(target) &&
	    (!key || json_object_get(at, key)) && json_equal(at, target))
		return at;
	if (depth > 512)
		return NULL;
	if (json_is_object(at)) {
		json_object_foreach((json_t *)at, k, child)
			if ((found = find_equal(child, target, key, depth + 1)))
				return found;
	} else if (json_is_array(at)) {
		json_array_foreach(at, i, child)
			if ((found = find_equal(child, target, key, depth + 1)))
				return found;
	}
	return NULL;
}

/* Parses `file` with positions; formats the one asked for if the file
 * holds the container. Returns true when found. */
static bool from_file(char *buf, size_t size, const char *file,
		      const json_t *container, const char *key)
{
	struct atex_marks *marks = atex_marks_new();
	const struct atex_mark *mark = NULL;
	const json_t *target = NULL;
	json_t *again = NULL;

	if (marks && atex_yaml_load_file(&again, file, marks) == 0)
		target = find_equal(again, container, key, 0);
	if (target && key)
		mark = atex_marks_find(marks, target, key);
	if (target && !mark)
		mark = atex_marks_find(marks, target, NULL);
	if (mark)
		snprintf(buf, size, "%s:%u:%u: ", file, mark->line,
			 mark->column);
	json_decref(again);
	atex_marks_free(marks);
	return mark != NULL;
}

const char *atex_locate(char *buf, size_t size,
			const struct atex_locator *loc, const char *hint,
			const json_t *container, const char *key)
{
	int saved_code = atex_error_last_code();
	char saved[4096];
	bool found = false;

	buf[0] = '\0';
	if (!loc || !container ||
	    !(json_is_object(container) || json_is_array(container)))
		return buf;
	/* Parsing again must not replace the error being reported. */
	snprintf(saved, sizeof(saved), "%s", atex_error_last());
	if (hint)
		found = from_file(buf, size, hint, container, key);
	for (size_t i = loc->len; !found && i-- > 0;)
		if (!hint || strcmp(loc->files[i], hint))
			found = from_file(buf, size, loc->files[i], container,
					  key);
	if (!found && hint)
		snprintf(buf, size, "%s: ", hint);
	atex_error_set(saved_code, "%s", saved);
	return buf;
}
