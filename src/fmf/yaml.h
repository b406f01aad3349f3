/*
 * yaml.h - private: YAML text to jansson values, resolved the way the fmf
 * reference (ruamel.yaml, safe loader, YAML 1.2) resolves them, and source
 * positions ("marks") kept aside so later errors can name file:line:column.
 */
#ifndef ATEX_FMF_YAML_H
#define ATEX_FMF_YAML_H

#include <stddef.h>

#include <jansson.h>

/* A source position: 1-based line and column in `file`. */
struct atex_mark {
	const char *file; /* interned in the marks table; never NULL */
	unsigned int line;
	unsigned int column;
};

/*
 * A table of positions for the values a loader produced: for each mapping
 * (json object) the position of the mapping and of each of its keys, for
 * each sequence (json array) its position. Entries hold a reference to the
 * value so a pointer can never be reused while the table lives. Not
 * thread-safe.
 */
struct atex_marks;

struct atex_marks *atex_marks_new(void);
void atex_marks_free(struct atex_marks *marks);

/* Records the position of `value` itself (key NULL) or of one of its keys.
 * Returns 0 or ATEX_ENOMEM. */
int atex_marks_add(struct atex_marks *marks, const json_t *value,
		   const char *key, const char *file, unsigned int line,
		   unsigned int column);

/* The position of `value` (key NULL) or of its key `key`; NULL if unknown.
 * Accepts a NULL table. */
const struct atex_mark *atex_marks_find(const struct atex_marks *marks,
					const json_t *value, const char *key);

/*
 * Parses one YAML document from `text` (`len` bytes). An empty document
 * gives JSON null. `file` names the source in messages and marks. Marks of
 * every mapping, key and sequence go into `marks` (may be NULL).
 *
 * Scalars resolve as YAML 1.2 core (ruamel.yaml safe): true/false (any of
 * the three cases), null/~/empty, ints (decimal with leading zeros is
 * decimal, 0o octal, 0x hex, 0b binary, '_' separators), floats, .inf,
 * .nan, timestamps become ISO strings; yes/no/on/off stay strings. Anchors,
 * aliases, merge keys `<<` and explicit standard tags work. Duplicate keys,
 * several documents, unknown tags and bad syntax are errors.
 *
 * Returns 0 with a new reference in *out, or ATEX_EFORMAT with the message
 * "FILE:LINE:COLUMN: what" (ATEX_ENOMEM on allocation failure).
 */
int atex_yaml_load(json_t **out, const char *text, size_t len,
		   const char *file, struct atex_marks *marks);

/* Reads and parses a file. ATEX_EIO when it cannot be read. */
int atex_yaml_load_file(json_t **out, const char *path,
			struct atex_marks *marks);

#endif /* ATEX_FMF_YAML_H */
