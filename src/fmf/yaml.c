/*
 * yaml.c - YAML text to jansson values, the way the fmf reference loads
 * metadata (ruamel.yaml 0.17, YAML(typ="safe"), YAML 1.2 resolution), and
 * the table of source positions ("marks") that later messages use.
 *
 * Why it is built this way:
 *
 *  - libyaml's event API, not its document API: values are built while the
 *    events arrive, with no node graph in between, so loading thousands of
 *    small files stays cheap and the limits below are enforced before any
 *    expensive work is done.
 *  - Scalar resolution is hand-written, not a regex library: each rule of
 *    ruamel's 1.2 resolver is a small check of the text, tried in ruamel's
 *    order and dispatched on the first character as ruamel does, so a plain
 *    string costs a handful of comparisons.
 *  - ruamel's observable behaviour is followed, quirks included; each is
 *    noted where it is reproduced. Where JSON cannot hold what ruamel builds
 *    (infinity, NaN, bytes, integers beyond 64 bits, sets) loading fails
 *    with the position instead of guessing.
 *  - Timestamps become text: "2024-03-01" for a date, Python's isoformat()
 *    of the naive datetime ruamel builds otherwise (ruamel 0.17 converts an
 *    offset to UTC and drops it).
 *  - Aliases share values: an alias is another reference to the json_t its
 *    anchor built. Callers copy before they mutate (the tree code does).
 *  - Two limits stop hostile input: nesting depth, and the number of nodes
 *    aliases stand for ("billion laughs": sharing makes loading cheap, but
 *    anything that later walks or copies the tree pays the expanded size).
 *  - The marks table is an open-addressing hash keyed by (value pointer,
 *    key); key copies and file names live in an arena, so recording a key
 *    costs no malloc of its own. Each entry holds a reference to its value,
 *    so the address cannot be reused by another value while the table lives.
 */
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "fmf/yaml.h"
#include "util/util.h"

/* No fmf metadata comes close; a fuzzer's "[[[[..." would otherwise only
 * cost memory. */
#define YAML_MAX_DEPTH 512
/* Nodes that aliases may stand for, summed over every alias of a file. */
#define YAML_MAX_ALIAS_NODES 1000000
/* Key copies and file names are carved out of chunks this large. */
#define ARENA_CHUNK 16384
/* How much of a scalar or key a message quotes. */
#define QUOTE_MAX 64

#define TAG_PREFIX     "tag:yaml.org,2002:"
#define TAG_PREFIX_LEN (sizeof(TAG_PREFIX) - 1)

/* ---------------------------------------------------------------------- */
/* Hashing, arena, string table                                            */

static uint64_t hash_str(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t hash_ptr(const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t cap;
	char data[];
};

/* Copies `len` bytes plus a NUL into the arena. Large strings get a chunk
 * of their own behind the current one, so the current one stays in use. */
static char *arena_strndup(struct arena_chunk **head, const char *s, size_t len)
{
	struct arena_chunk *c = *head;
	char *p;

	if (!c || c->cap - c->used < len + 1) {
		bool own = len + 1 > ARENA_CHUNK / 4;
		size_t cap = own ? len + 1 : ARENA_CHUNK;

		c = atex_malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		if (own && *head) {
			c->next = (*head)->next;
			(*head)->next = c;
		} else {
			c->next = *head;
			*head = c;
		}
	}
	p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	return p;
}

static void arena_free(struct arena_chunk *c)
{
	while (c) {
		struct arena_chunk *next = c->next;

		free(c);
		c = next;
	}
}

/* A set of NUL-terminated strings with a pointer each, open addressing. */
struct strtab_slot {
	const char *key; /* NULL: empty slot */
	uint64_t hash;
	void *value;
};

struct strtab {
	struct strtab_slot *slots;
	size_t cap; /* 0 or a power of two */
	size_t count;
};

/* The slot holding `key`, or the empty slot where it would go. */
static struct strtab_slot *strtab_slot(const struct strtab *t, const char *key,
				       uint64_t hash)
{
	size_t mask = t->cap - 1;
	size_t i = hash & mask;

	while (t->slots[i].key &&
	       (t->slots[i].hash != hash || strcmp(t->slots[i].key, key)))
		i = (i + 1) & mask;
	return &t->slots[i];
}

static struct strtab_slot *strtab_find(const struct strtab *t, const char *key)
{
	struct strtab_slot *s;

	if (!t->count)
		return NULL;
	s = strtab_slot(t, key, hash_str(key, strlen(key)));
	return s->key ? s : NULL;
}

/* Makes room for one more entry, keeping the table at most half full. */
static int strtab_reserve(struct strtab *t)
{
	struct strtab_slot *old = t->slots;
	size_t old_cap = t->cap, cap, i;

	if ((t->count + 1) * 2 <= t->cap)
		return 0;
	cap = t->cap ? t->cap * 2 : 16;
	t->slots = atex_calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return ATEX_ENOMEM;
	}
	t->cap = cap;
	for (i = 0; i < old_cap; i++)
		if (old[i].key)
			*strtab_slot(t, old[i].key, old[i].hash) = old[i];
	free(old);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The marks table                                                         */

struct mark_entry {
	const json_t *value; /* NULL: empty slot; else one reference held */
	const char *key;     /* arena copy; NULL for the value's own mark */
	uint64_t hash;
	struct atex_mark mark;
};

struct atex_marks {
	struct mark_entry *entries;
	size_t cap; /* 0 or a power of two */
	size_t count;
	struct strtab files; /* interned file names (arena strings) */
	struct arena_chunk *arena;
};

static uint64_t mark_hash(const json_t *value, const char *key)
{
	uint64_t h = hash_ptr(value);

	if (key)
		h ^= hash_str(key, strlen(key)) * 0x9e3779b97f4a7c15ULL;
	return h;
}

static struct mark_entry *marks_slot(const struct atex_marks *m,
				     const json_t *value, const char *key,
				     uint64_t hash)
{
	size_t mask = m->cap - 1;
	size_t i = hash & mask;

	for (;; i = (i + 1) & mask) {
		struct mark_entry *e = &m->entries[i];

		if (!e->value)
			return e;
		if (e->hash != hash || e->value != value)
			continue;
		if (!e->key && !key)
			return e;
		if (e->key && key && !strcmp(e->key, key))
			return e;
	}
}

static int marks_grow(struct atex_marks *m)
{
	struct mark_entry *old = m->entries;
	size_t old_cap = m->cap, cap, i;

	cap = m->cap ? m->cap * 2 : 256;
	m->entries = atex_calloc(cap, sizeof(*m->entries));
	if (!m->entries) {
		m->entries = old;
		return ATEX_ENOMEM;
	}
	m->cap = cap;
	for (i = 0; i < old_cap; i++) {
		struct mark_entry *e = &old[i];

		if (e->value)
			*marks_slot(m, e->value, e->key, e->hash) = *e;
	}
	free(old);
	return 0;
}

static const char *marks_intern(struct atex_marks *m, const char *file)
{
	struct strtab_slot *s = strtab_find(&m->files, file);
	size_t len = strlen(file);
	char *copy;

	if (s)
		return s->key;
	if (strtab_reserve(&m->files) < 0)
		return NULL;
	copy = arena_strndup(&m->arena, file, len);
	if (!copy)
		return NULL;
	s = strtab_slot(&m->files, copy, hash_str(copy, len));
	s->key = copy;
	s->hash = hash_str(copy, len);
	m->files.count++;
	return copy;
}

/* Records or replaces a mark; `file` is already interned. */
static int marks_put(struct atex_marks *m, const json_t *value, const char *key,
		     const char *file, unsigned int line, unsigned int column)
{
	struct mark_entry *e;
	uint64_t hash;

	if ((m->count + 1) * 2 > m->cap && marks_grow(m) < 0)
		return ATEX_ENOMEM;
	hash = mark_hash(value, key);
	e = marks_slot(m, value, key, hash);
	if (!e->value) {
		const char *copy = NULL;

		if (key && !(copy = arena_strndup(&m->arena, key, strlen(key))))
			return ATEX_ENOMEM;
		e->value = json_incref((json_t *)value);
		e->key = copy;
		e->hash = hash;
		m->count++;
	}
	e->mark.file = file;
	e->mark.line = line;
	e->mark.column = column;
	return 0;
}

struct atex_marks *atex_marks_new(void)
{
	return atex_calloc(1, sizeof(struct atex_marks));
}

void atex_marks_free(struct atex_marks *marks)
{
	size_t i;

	if (!marks)
		return;
	for (i = 0; i < marks->cap; i++)
		json_decref((json_t *)marks->entries[i].value);
	free(marks->entries);
	free(marks->files.slots);
	arena_free(marks->arena);
	free(marks);
}

int atex_marks_add(struct atex_marks *marks, const json_t *value,
		   const char *key, const char *file, unsigned int line,
		   unsigned int column)
{
	const char *interned;

	if (!marks || !value || !file)
		return atex_error_set(ATEX_EINVAL, "atex_marks_add: bad args");
	interned = marks_intern(marks, file);
	if (!interned)
		return ATEX_ENOMEM;
	return marks_put(marks, value, key, interned, line, column);
}

const struct atex_mark *atex_marks_find(const struct atex_marks *marks,
					const json_t *value, const char *key)
{
	struct mark_entry *e;

	if (!marks || !marks->count || !value)
		return NULL;
	e = marks_slot(marks, value, key, mark_hash(value, key));
	return e->value ? &e->mark : NULL;
}

/* ---------------------------------------------------------------------- */
/* The loader's state                                                      */

enum frame_kind { FRAME_SEQ, FRAME_MAP };

/* One open sequence or mapping. Frames are reused as depth goes up and
 * down, so their buffers are allocated once per load, not once per node. */
struct frame {
	enum frame_kind kind;
	json_t *value;	   /* the array or object being filled */
	char *anchor;	   /* its anchor name (owned), or NULL */
	yaml_mark_t start; /* where it starts */
	uint64_t size;	   /* nodes it stands for, aliases expanded */
	bool flow;	   /* inside a flow collection ("[...]", "{...}") */
	bool merge_src;	   /* the value of "<<" or an item of it */
	/* mappings only */
	bool have_key;	   /* a key waits for its value */
	bool key_is_merge; /* ... and it is "<<" */
	bool key_numeric;  /* ... and `canon` holds its numeric identity */
	bool has_merge;	   /* a "<<" key was seen */
	size_t merged;	   /* keys in the mappings "<<" named so far */
	bool dup;	   /* a duplicate key was seen (see map_finish) */
	yaml_mark_t key_at;
	yaml_mark_t dup_at;
	struct atex_buf key;   /* the pending key, as its JSON text */
	struct atex_buf canon; /* its identity under Python's == */
	struct atex_buf dup_key;
	json_t *numeric; /* identities of the numeric keys so far, or NULL */
	json_t *merges;	 /* the mappings "<<" named, in order, or NULL */
};

struct anchor {
	json_t *value;
	uint64_t size;
	yaml_mark_t at; /* where the anchored node starts */
	/* A duplicate key left unchecked because the mapping was merged with
	 * "<<" (see map_finish); ruamel reports it if an alias uses the
	 * mapping anywhere else. NULL when none. */
	char *dup_key;
	yaml_mark_t dup_at;
};

struct loader {
	const char *file;	  /* for messages */
	const char *mfile;	  /* `file` interned in `marks` */
	struct atex_marks *marks; /* may be NULL */
	const char *text;
	size_t len;
	struct frame *frames;
	size_t depth;	       /* frames in use */
	size_t nframes;	       /* frames allocated */
	struct strtab anchors; /* name -> struct anchor */
	uint64_t alias_nodes;
	unsigned int documents;
	json_t *root;
	locale_t c_locale;   /* for strtod/printf of floats; lazy */
	struct atex_buf tmp; /* scratch for numbers */
};

static int fail(struct loader *ld, const yaml_mark_t *at, const char *fmt, ...)
	ATEX_PRINTF(3, 4);

static int fail(struct loader *ld, const yaml_mark_t *at, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return atex_error_set(ATEX_EFORMAT, "%s:%zu:%zu: %s", ld->file,
			      at->line + 1, at->column + 1, what);
}

static int quote_len(size_t len)
{
	return len > QUOTE_MAX ? QUOTE_MAX : (int)len;
}

/* Float text must not depend on the program's LC_NUMERIC. */
static locale_t loader_locale(struct loader *ld)
{
	if (!ld->c_locale)
		ld->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (!ld->c_locale)
		atex_error_oom();
	return ld->c_locale;
}

/* Copies the text to ld->tmp without '_' (ruamel drops them all before
 * converting a number), lower-cased when asked. */
static int strip_underscores(struct loader *ld, const char *s, size_t n,
			     bool lower)
{
	size_t i;

	atex_buf_clear(&ld->tmp);
	if (atex_buf_grow(&ld->tmp, n) < 0)
		return ATEX_ENOMEM;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '_')
			continue;
		if (lower && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		ld->tmp.ptr[ld->tmp.len++] = c;
	}
	ld->tmp.ptr[ld->tmp.len] = '\0';
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Scalars: the 1.2 rules of ruamel's VersionedResolver                    */

enum scalar_type {
	SC_STR,
	SC_NULL,
	SC_BOOL,
	SC_INT,
	SC_FLOAT,
	SC_TIME,
	SC_MERGE, /* "<<": only meaningful as a mapping key */
	SC_VALUE, /* "=": a string as a key, refused as a value */
};

struct scalar {
	enum scalar_type type;
	const char *text; /* as written; the value of SC_STR */
	size_t len;
	bool b;
	json_int_t i;
	double d;
	char iso[32]; /* SC_TIME */
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_eq(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && !memcmp(s, lit, n);
}

/* Whether every byte is in `set` (and there is at least one). */
static bool all_in(const char *s, const char *end, const char *set)
{
	if (s == end)
		return false;
	for (; s < end; s++)
		if (!*s || !strchr(set, *s))
			return false;
	return true;
}

static bool match_null(const char *s, size_t n)
{
	return n == 0 || is_eq(s, n, "~") || is_eq(s, n, "null") ||
	       is_eq(s, n, "Null") || is_eq(s, n, "NULL");
}

/* 1.2 knows only these six: yes/no/on/off/y/n stay strings. */
static bool match_bool(const char *s, size_t n, bool *val)
{
	if (is_eq(s, n, "true") || is_eq(s, n, "True") || is_eq(s, n, "TRUE"))
		return *val = true;
	if (is_eq(s, n, "false") || is_eq(s, n, "False") ||
	    is_eq(s, n, "FALSE"))
		return !(*val = false);
	return false;
}

/* "[eE][-+]?[0-9]+" to the end; the sign is mandatory after ".5"-style
 * mantissas in ruamel's regex, hence `sign_required`. */
static bool match_exponent(const char *p, const char *end, bool sign_required)
{
	if (p == end || (*p != 'e' && *p != 'E'))
		return false;
	p++;
	if (p < end && (*p == '-' || *p == '+'))
		p++;
	else if (sign_required)
		return false;
	return all_in(p, end, "0123456789");
}

/*
 * ruamel 1.2 float:
 *   [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+]?[0-9]+)?    "1.", "1_0.5e3"
 *   [-+]?[0-9][0-9_]*[eE][-+]?[0-9]+                "1e3"
 *   [-+]?\.[0-9_]+([eE][-+][0-9]+)?                 ".5", ".5e+3" (not .5e3)
 *   [-+]?\.(inf|Inf|INF)  and  \.(nan|NaN|NAN)      (no sign on NaN)
 */
static bool match_float(const char *s, size_t n)
{
	const char *p = s, *end = s + n;
	bool sign = false;

	if (p < end && (*p == '-' || *p == '+')) {
		p++;
		sign = true;
	}
	if (p < end && is_digit(*p)) {
		while (p < end && (is_digit(*p) || *p == '_'))
			p++;
		if (p < end && *p == '.') {
			for (p++; p < end && (is_digit(*p) || *p == '_'); p++)
				;
			return p == end || match_exponent(p, end, false);
		}
		return match_exponent(p, end, false);
	}
	if (p == end || *p != '.')
		return false;
	p++;
	if (is_eq(p, (size_t)(end - p), "inf") ||
	    is_eq(p, (size_t)(end - p), "Inf") ||
	    is_eq(p, (size_t)(end - p), "INF"))
		return true;
	if (is_eq(p, (size_t)(end - p), "nan") ||
	    is_eq(p, (size_t)(end - p), "NaN") ||
	    is_eq(p, (size_t)(end - p), "NAN"))
		return !sign;
	if (p == end || !(is_digit(*p) || *p == '_'))
		return false;
	while (p < end && (is_digit(*p) || *p == '_'))
		p++;
	return p == end || match_exponent(p, end, true);
}

/*
 * ruamel 1.2 int: [-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?[0-9_]+ |
 * [-+]?0x[0-9a-fA-F_]+. So "010" is decimal 10, "1_" is 1, and "+_"
 * matches but then fails to convert (an error in ruamel too).
 */
static bool match_int(const char *s, size_t n)
{
	const char *p = s, *end = s + n;

	if (p < end && (*p == '-' || *p == '+'))
		p++;
	if (end - p > 2 && p[0] == '0') {
		if (p[1] == 'b')
			return all_in(p + 2, end, "01_");
		if (p[1] == 'x')
			return all_in(p + 2, end, "0123456789abcdefABCDEF_");
		if (p[1] == 'o')
			return all_in(p + 2, end, "01234567_");
	}
	return all_in(p, end, "0123456789_");
}

/* Python's int() and float() ignore surrounding whitespace; only an
 * explicitly tagged quoted scalar can have any. */
static void trim_blanks(const char **p, const char **end)
{
	while (*p < *end && strchr(" \t\n\r\v\f", **p) && **p)
		(*p)++;
	while (*end > *p && (*end)[-1] && strchr(" \t\n\r\v\f", (*end)[-1]))
		(*end)--;
}

/*
 * ruamel's construct_yaml_int: drop every '_', take one sign, then 0b, 0x
 * or 0o select the base, else decimal (leading zeros stay decimal in 1.2).
 * Python has big integers, JSON here has int64: beyond it is an error.
 */
static int convert_int(struct loader *ld, struct scalar *sc,
		       const yaml_mark_t *at)
{
	unsigned long long mag = 0, limit = LLONG_MAX;
	const char *p, *end;
	bool neg = false;
	int base = 10, rc;

	if ((rc = strip_underscores(ld, sc->text, sc->len, false)))
		return rc;
	p = ld->tmp.ptr;
	end = p + ld->tmp.len;
	if (p < end && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	if (end - p >= 2 && p[0] == '0' && p[1] && strchr("bxo", p[1])) {
		base = p[1] == 'b' ? 2 : p[1] == 'x' ? 16 : 8;
		p += 2;
	}
	if (neg)
		limit = (unsigned long long)LLONG_MAX + 1;
	trim_blanks(&p, &end);
	if (p == end)
		goto bad;
	for (; p < end; p++) {
		int d = atex_hex_digit(*p);

		if (d < 0 || d >= base)
			goto bad;
		if (mag > (limit - (unsigned)d) / (unsigned)base)
			return fail(ld, at,
				    "integer %.*s is out of the 64-bit range",
				    quote_len(sc->len), sc->text);
		mag = mag * (unsigned)base + (unsigned)d;
	}
	sc->type = SC_INT;
	if (neg)
		sc->i = mag > LLONG_MAX ? LLONG_MIN : -(json_int_t)mag;
	else
		sc->i = (json_int_t)mag;
	return 0;
bad:
	return fail(ld, at, "invalid integer \"%.*s\"", quote_len(sc->len),
		    sc->text);
}

/* Python's float() of what is left after the sign: a decimal number. */
static bool decimal_ok(const char *p, const char *end)
{
	size_t digits = 0;

	for (; p < end && is_digit(*p); p++)
		digits++;
	if (p < end && *p == '.')
		for (p++; p < end && is_digit(*p); p++)
			digits++;
	if (!digits)
		return false;
	return p == end || match_exponent(p, end, false);
}

/*
 * ruamel's construct_yaml_float: drop '_', lower-case, take one sign;
 * ".inf" and ".nan" are special, the rest goes to Python's float(), which
 * rounds correctly like strtod. Infinity (also from overflow: 1e400) and
 * NaN are kept here and refused only when they would become a JSON value.
 */
static int convert_float(struct loader *ld, struct scalar *sc,
			 const yaml_mark_t *at)
{
	const char *p, *end;
	double sign = 1.0;
	locale_t loc;
	int rc;

	if ((rc = strip_underscores(ld, sc->text, sc->len, true)))
		return rc;
	p = ld->tmp.ptr;
	end = p + ld->tmp.len;
	if (p < end && (*p == '-' || *p == '+'))
		sign = *p++ == '-' ? -1.0 : 1.0;
	sc->type = SC_FLOAT;
	if (is_eq(p, (size_t)(end - p), ".inf")) {
		sc->d = sign * INFINITY;
		return 0;
	}
	if (is_eq(p, (size_t)(end - p), ".nan")) {
		sc->d = NAN;
		return 0;
	}
	trim_blanks(&p, &end);
	if (!decimal_ok(p, end))
		return fail(ld, at, "cannot convert \"%.*s\" to a float",
			    quote_len(sc->len), sc->text);
	if (!(loc = loader_locale(ld)))
		return ATEX_ENOMEM;
	sc->d = sign * strtod_l(p, NULL, loc);
	return 0;
}

/* The SafeConstructor's bool_values: explicit !!bool takes the 1.1 words
 * too, in any case. */
static int convert_bool(struct loader *ld, struct scalar *sc,
			const yaml_mark_t *at)
{
	static const struct {
		const char *word;
		bool value;
	} words[] = {
		{"yes", true},	{"no", false},	  {"y", true},	{"n", false},
		{"true", true}, {"false", false}, {"on", true}, {"off", false},
	};
	char lower[8];
	size_t i;

	if (sc->len >= sizeof(lower))
		goto bad;
	for (i = 0; i < sc->len; i++) {
		char c = sc->text[i];

		lower[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	for (i = 0; i < ATEX_ARRAY_SIZE(words); i++) {
		if (is_eq(lower, sc->len, words[i].word)) {
			sc->type = SC_BOOL;
			sc->b = words[i].value;
			return 0;
		}
	}
bad:
	return fail(ld, at, "invalid boolean \"%.*s\"", quote_len(sc->len),
		    sc->text);
}

/* ---------------------------------------------------------------------- */
/* Timestamps                                                              */

struct timestamp {
	int year, month, day;
	bool has_time;
	int hour, minute, second;
	const char *frac; /* digits after '.', maybe none */
	size_t frac_len;
	int tz_sign; /* 0: no offset (none or Z), else +1 or -1 */
	int tz_hour, tz_minute;
};

/* Reads min..max digits (greedy); NULL when fewer than `min`. */
static const char *take_digits(const char *p, const char *end, int min, int max,
			       int *val)
{
	int n = 0;

	*val = 0;
	while (n < max && p < end && is_digit(*p)) {
		*val = *val * 10 + (*p++ - '0');
		n++;
	}
	return n >= min ? p : NULL;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* The offset: Z, or [-+]H[H][:MM], after optional blanks. */
static bool parse_tz(const char *p, const char *end, struct timestamp *ts)
{
	p = skip_blanks(p, end);
	if (p < end && *p == 'Z')
		return p + 1 == end;
	if (p == end || (*p != '+' && *p != '-'))
		return false;
	ts->tz_sign = *p++ == '-' ? -1 : 1;
	if (!(p = take_digits(p, end, 1, 2, &ts->tz_hour)))
		return false;
	if (p < end && *p == ':') {
		p = take_digits(p + 1, end, 2, 2, &ts->tz_minute);
		if (!p)
			return false;
	}
	return p == end;
}

/*
 * ruamel's timestamp regex (util.timestamp_regexp):
 *   YYYY-M[M]-D[D] ([Tt]|[ \t]+) H[H]:MM:SS(.F*)? ([ \t]*(Z|[-+]H[H](:MM)?))?
 * with the time part optional. The implicit resolver is stricter for a
 * bare date: exactly YYYY-MM-DD ("2024-3-1" stays a string).
 */
static bool parse_timestamp(const char *s, size_t n, bool implicit,
			    struct timestamp *ts)
{
	const char *p = s, *q, *end = s + n;
	ptrdiff_t mlen, dlen;

	memset(ts, 0, sizeof(*ts));
	if (!(p = take_digits(p, end, 4, 4, &ts->year)) || p == end ||
	    *p++ != '-')
		return false;
	if (!(q = take_digits(p, end, 1, 2, &ts->month)) || q == end ||
	    *q != '-')
		return false;
	mlen = q - p;
	p = q + 1;
	if (!(q = take_digits(p, end, 1, 2, &ts->day)))
		return false;
	dlen = q - p;
	p = q;
	if (p == end)
		return !implicit || (mlen == 2 && dlen == 2);
	if (*p == 'T' || *p == 't')
		p++;
	else if (*p == ' ' || *p == '\t')
		p = skip_blanks(p, end);
	else
		return false;
	ts->has_time = true;
	if (!(p = take_digits(p, end, 1, 2, &ts->hour)) || p == end ||
	    *p++ != ':')
		return false;
	if (!(p = take_digits(p, end, 2, 2, &ts->minute)) || p == end ||
	    *p++ != ':')
		return false;
	if (!(p = take_digits(p, end, 2, 2, &ts->second)))
		return false;
	if (p < end && *p == '.') {
		ts->frac = ++p;
		while (p < end && is_digit(*p))
			p++;
		ts->frac_len = (size_t)(p - ts->frac);
	}
	return p == end || parse_tz(p, end, ts);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back
 * (H. Hinnant's civil calendar algorithms). */
static long long days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
	long long era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* Python's date/datetime argument checks, with Python's wording. */
static const char *timestamp_check(const struct timestamp *ts)
{
	if (ts->year < 1)
		return "year 0 is out of range";
	if (ts->month < 1 || ts->month > 12)
		return "month must be in 1..12";
	if (ts->day < 1 || ts->day > days_in_month(ts->year, ts->month))
		return "day is out of range for month";
	if (!ts->has_time)
		return NULL;
	if (ts->hour > 23)
		return "hour must be in 0..23";
	if (ts->minute > 59)
		return "minute must be in 0..59";
	if (ts->second > 59)
		return "second must be in 0..59";
	return NULL;
}

/*
 * ruamel's create_timestamp, then isoformat(). Fractions keep 6 digits,
 * rounded up when the 7th is 5 or more; a round-up to 1000000 becomes an
 * extra second, which ruamel folds into the offset with the offset's sign,
 * so with a '+' offset it is subtracted (a ruamel bug, reproduced). An
 * offset is applied (local minus offset = UTC) and dropped.
 */
static const char *timestamp_iso(const struct timestamp *ts, char *out,
				 size_t size)
{
	long long y, total, days, sod, delta = 0;
	const char *problem = timestamp_check(ts);
	int frac = 0, extra = 0, m, d;
	size_t i;

	if (problem)
		return problem;
	if (!ts->has_time) {
		snprintf(out, size, "%04d-%02d-%02d", ts->year, ts->month,
			 ts->day);
		return NULL;
	}
	for (i = 0; i < 6; i++)
		frac = frac * 10 + (i < ts->frac_len ? ts->frac[i] - '0' : 0);
	if (ts->frac_len > 6 && ts->frac[6] > '4')
		frac++;
	if (frac > 999999) {
		frac = 0;
		extra = 1;
	}
	if (ts->tz_sign)
		delta = ts->tz_sign * ((long long)ts->tz_hour * 3600 +
				       (long long)ts->tz_minute * 60 + extra);
	else if (extra)
		delta = -1;
	total = days_from_civil(ts->year, ts->month, ts->day) * 86400 +
		ts->hour * 3600 + ts->minute * 60 + ts->second - delta;
	days = total >= 0 ? total / 86400 : -((-total + 86399) / 86400);
	sod = total - days * 86400;
	civil_from_days(days, &y, &m, &d);
	if (y < 1 || y > 9999)
		return "date value out of range";
	i = (size_t)snprintf(out, size, "%04lld-%02d-%02dT%02lld:%02lld:%02lld",
			     y, m, d, sod / 3600, sod / 60 % 60, sod % 60);
	if (frac && i < size)
		snprintf(out + i, size - i, ".%06d", frac);
	return NULL;
}

static int convert_timestamp(struct loader *ld, struct scalar *sc,
			     bool implicit, const yaml_mark_t *at)
{
	struct timestamp ts;
	const char *problem;

	if (!parse_timestamp(sc->text, sc->len, implicit, &ts))
		return fail(ld, at,
			    "failed to construct timestamp from "
			    "\"%.*s\"",
			    quote_len(sc->len), sc->text);
	problem = timestamp_iso(&ts, sc->iso, sizeof(sc->iso));
	if (problem)
		return fail(ld, at, "invalid timestamp \"%.*s\": %s",
			    quote_len(sc->len), sc->text, problem);
	sc->type = SC_TIME;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Scalar resolution and tags                                              */

/* A plain scalar: ruamel tries the resolvers registered for its first
 * character, in order (bool, float, int, merge, null, timestamp, value). */
static int resolve_plain(struct loader *ld, struct scalar *sc,
			 const yaml_mark_t *at)
{
	const char *s = sc->text;
	size_t n = sc->len;

	if (n == 0) {
		sc->type = SC_NULL;
		return 0;
	}
	switch (s[0]) {
	case '~':
	case 'n':
	case 'N':
		if (match_null(s, n))
			sc->type = SC_NULL;
		return 0;
	case 't':
	case 'T':
	case 'f':
	case 'F':
		if (match_bool(s, n, &sc->b))
			sc->type = SC_BOOL;
		return 0;
	case '<':
		if (is_eq(s, n, "<<"))
			sc->type = SC_MERGE;
		return 0;
	case '=':
		if (n == 1)
			sc->type = SC_VALUE;
		return 0;
	}
	if (!is_digit(s[0]) && !(s[0] && strchr("+-.", s[0])))
		return 0;
	if (match_float(s, n))
		return convert_float(ld, sc, at);
	if (s[0] != '.' && match_int(s, n))
		return convert_int(ld, sc, at);
	if (is_digit(s[0])) {
		struct timestamp ts;

		if (parse_timestamp(s, n, true, &ts))
			return convert_timestamp(ld, sc, true, at);
	}
	return 0;
}

/* Tags of the standard schema that a scalar may carry. */
static int resolve_tagged(struct loader *ld, struct scalar *sc, const char *tag,
			  const yaml_mark_t *at)
{
	const char *name;

	if (strncmp(tag, TAG_PREFIX, TAG_PREFIX_LEN))
		goto unknown;
	name = tag + TAG_PREFIX_LEN;
	if (!strcmp(name, "str"))
		return 0;
	if (!strcmp(name, "null")) {
		sc->type = SC_NULL;
		return 0;
	}
	if (!strcmp(name, "bool"))
		return convert_bool(ld, sc, at);
	if (!strcmp(name, "int"))
		return convert_int(ld, sc, at);
	if (!strcmp(name, "float"))
		return convert_float(ld, sc, at);
	if (!strcmp(name, "timestamp"))
		return convert_timestamp(ld, sc, false, at);
	if (!strcmp(name, "merge")) {
		sc->type = SC_MERGE;
		return 0;
	}
	if (!strcmp(name, "value")) {
		sc->type = SC_VALUE;
		return 0;
	}
	if (!strcmp(name, "binary"))
		return fail(ld, at,
			    "!!binary is not supported (JSON has no "
			    "byte strings)");
	if (!strcmp(name, "map") || !strcmp(name, "omap") ||
	    !strcmp(name, "pairs") || !strcmp(name, "set") ||
	    !strcmp(name, "seq"))
		return fail(ld, at, "expected a %s node, but found scalar",
			    strcmp(name, "seq") ? "mapping" : "sequence");
unknown:
	return fail(ld, at,
		    "could not determine a constructor for the tag "
		    "'%s'",
		    tag);
}

static int resolve_scalar(struct loader *ld, const yaml_event_t *ev,
			  struct scalar *sc)
{
	const char *tag = (const char *)ev->data.scalar.tag;

	memset(sc, 0, sizeof(*sc));
	sc->type = SC_STR;
	sc->text = (const char *)ev->data.scalar.value;
	sc->len = ev->data.scalar.length;
	/* Quoted and block scalars are strings. "!" is the non-specific
	 * tag: libyaml flags such scalars plain_implicit even when quoted,
	 * and ruamel resolves them like plain ones ("! '12'" is 12). */
	if (!tag || !strcmp(tag, "!")) {
		if (ev->data.scalar.plain_implicit)
			return resolve_plain(ld, sc, &ev->start_mark);
		return 0;
	}
	return resolve_tagged(ld, sc, tag, &ev->start_mark);
}

/* A tag on a mapping or sequence start. */
static int check_container_tag(struct loader *ld, const char *tag,
			       enum frame_kind kind, const yaml_mark_t *at)
{
	static const char *const scalar_tags[] = {
		"str", "int", "float", "bool", "null", "timestamp", "binary",
	};
	const char *found = kind == FRAME_MAP ? "mapping" : "sequence";
	const char *name;
	size_t i;

	if (!tag || !strcmp(tag, "!"))
		return 0;
	if (strncmp(tag, TAG_PREFIX, TAG_PREFIX_LEN))
		goto unknown;
	name = tag + TAG_PREFIX_LEN;
	if (!strcmp(name, kind == FRAME_MAP ? "map" : "seq"))
		return 0;
	if (!strcmp(name, kind == FRAME_MAP ? "seq" : "map"))
		return fail(ld, at, "expected a %s node, but found %s",
			    kind == FRAME_MAP ? "sequence" : "mapping", found);
	for (i = 0; i < ATEX_ARRAY_SIZE(scalar_tags); i++)
		if (!strcmp(name, scalar_tags[i]))
			return fail(ld, at,
				    "expected a scalar node, but found %s",
				    found);
	if (!strcmp(name, "omap") || !strcmp(name, "pairs") ||
	    !strcmp(name, "set"))
		return fail(ld, at, "the tag '%s' is not supported", tag);
unknown:
	return fail(ld, at,
		    "could not determine a constructor for the tag "
		    "'%s'",
		    tag);
}

static int scalar_json(struct loader *ld, const struct scalar *sc,
		       const yaml_mark_t *at, json_t **out)
{
	*out = NULL;
	switch (sc->type) {
	case SC_STR:
		*out = json_stringn(sc->text, sc->len);
		break;
	case SC_NULL:
		*out = json_null();
		break;
	case SC_BOOL:
		*out = json_boolean(sc->b);
		break;
	case SC_INT:
		*out = json_integer(sc->i);
		break;
	case SC_FLOAT:
		if (!isfinite(sc->d))
			return fail(ld, at,
				    "%.*s: JSON cannot hold infinity "
				    "or NaN",
				    quote_len(sc->len), sc->text);
		*out = json_real(sc->d);
		break;
	case SC_TIME:
		*out = json_string(sc->iso);
		break;
	case SC_MERGE:
	case SC_VALUE:
		return fail(ld, at,
			    "could not determine a constructor for the "
			    "tag '" TAG_PREFIX "%s'",
			    sc->type == SC_MERGE ? "merge" : "value");
	}
	return *out ? 0 : atex_error_oom();
}

/* The scalar a json value came from, for an alias used as a key. */
static bool scalar_from_json(const json_t *v, struct scalar *sc)
{
	memset(sc, 0, sizeof(*sc));
	switch (json_typeof(v)) {
	case JSON_STRING:
		sc->type = SC_STR;
		sc->text = json_string_value(v);
		sc->len = json_string_length(v);
		return true;
	case JSON_INTEGER:
		sc->type = SC_INT;
		sc->i = json_integer_value(v);
		return true;
	case JSON_REAL:
		sc->type = SC_FLOAT;
		sc->d = json_real_value(v);
		return true;
	case JSON_TRUE:
	case JSON_FALSE:
		sc->type = SC_BOOL;
		sc->b = json_is_true(v);
		return true;
	case JSON_NULL:
		sc->type = SC_NULL;
		return true;
	default:
		return false;
	}
}

/* ---------------------------------------------------------------------- */
/* Keys                                                                    */

/*
 * Python's repr() of a finite double, as json.dumps writes float keys: the
 * shortest digits that read back to the same value, in fixed notation when
 * the decimal point falls in [-4, 16), else d.ddde+XX.
 */
static int float_repr(struct loader *ld, double d, struct atex_buf *out)
{
	char buf[48], digits[24];
	size_t nd = 0, i;
	int prec, exp10, decpt;
	locale_t loc = loader_locale(ld), old;
	const char *p;

	if (!loc)
		return ATEX_ENOMEM;
	old = uselocale(loc);
	for (prec = 0; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec, fabs(d));
		if (strtod(buf, NULL) == fabs(d))
			break;
	}
	uselocale(old);
	for (p = buf; *p && *p != 'e'; p++)
		if (is_digit(*p))
			digits[nd++] = *p;
	exp10 = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	decpt = exp10 + 1;
	if (signbit(d) && atex_buf_putc(out, '-') < 0)
		return ATEX_ENOMEM;
	if (decpt <= -4 || decpt > 16) {
		atex_buf_putc(out, digits[0]);
		if (nd > 1) {
			atex_buf_putc(out, '.');
			atex_buf_put(out, digits + 1, nd - 1);
		}
		return atex_buf_printf(out, "e%+03d", exp10);
	}
	if (decpt <= 0) {
		atex_buf_puts(out, "0.");
		for (i = 0; i < (size_t)-decpt; i++)
			atex_buf_putc(out, '0');
		return atex_buf_put(out, digits, nd);
	}
	if ((size_t)decpt >= nd) {
		atex_buf_put(out, digits, nd);
		for (i = nd; i < (size_t)decpt; i++)
			atex_buf_putc(out, '0');
		return atex_buf_puts(out, ".0");
	}
	atex_buf_put(out, digits, (size_t)decpt);
	atex_buf_putc(out, '.');
	return atex_buf_put(out, digits + decpt, nd - (size_t)decpt);
}

/* A float key's JSON text (json.dumps: Infinity, -Infinity, NaN, repr)
 * and its identity under Python's == (integral values equal ints). */
static int float_key(struct loader *ld, struct frame *f, double d)
{
	if (isnan(d))
		return atex_buf_puts(&f->key, "NaN"); /* never equal */
	f->key_numeric = true;
	if (isinf(d)) {
		if (atex_buf_puts(&f->canon, d < 0 ? "-inf" : "inf") < 0)
			return ATEX_ENOMEM;
		return atex_buf_puts(&f->key, d < 0 ? "-Infinity" : "Infinity");
	}
	if (d == floor(d)) {
		if (atex_buf_printf(&f->canon, "%.0f", d == 0 ? 0.0 : d) < 0)
			return ATEX_ENOMEM;
	} else if (float_repr(ld, d, &f->canon) < 0) {
		return ATEX_ENOMEM;
	}
	return float_repr(ld, d, &f->key);
}

/*
 * Stores the pending key of mapping `f` as the string JSON needs: what
 * json.dumps writes for a non-string key (1 -> "1", true -> "true", null ->
 * "null", 1.5 -> "1.5"); timestamps, which json.dumps refuses, give their
 * ISO text. Numbers and booleans also get their identity under Python's ==,
 * so "1", "1.0" and "true" as keys of one mapping are duplicates, as in
 * ruamel.
 */
static int key_set(struct loader *ld, struct frame *f, const struct scalar *sc,
		   const yaml_mark_t *at)
{
	struct atex_buf *k = &f->key;
	int rc = 0;

	atex_buf_clear(k);
	atex_buf_clear(&f->canon);
	f->key_is_merge = f->key_numeric = false;
	f->have_key = true;
	f->key_at = *at;
	switch (sc->type) {
	case SC_MERGE:
		/* A second "<<" is a duplicate even though merges switch the
		 * other duplicate checks off, but only once something was
		 * merged (ruamel's flatten_mapping tests its merge list). */
		if (f->has_merge && f->merged)
			return fail(ld, at, "found duplicate key \"<<\"");
		f->key_is_merge = f->has_merge = true;
		return 0;
	case SC_STR:
	case SC_VALUE: /* ruamel turns a "=" key into the string "=" */
		rc = atex_buf_put(k, sc->text, sc->len);
		break;
	case SC_TIME:
		rc = atex_buf_puts(k, sc->iso);
		break;
	case SC_NULL:
		rc = atex_buf_puts(k, "null");
		break;
	case SC_BOOL:
		f->key_numeric = true;
		rc = atex_buf_puts(&f->canon, sc->b ? "1" : "0");
		if (!rc)
			rc = atex_buf_puts(k, sc->b ? "true" : "false");
		break;
	case SC_INT:
		f->key_numeric = true;
		rc = atex_buf_printf(&f->canon, "%lld", (long long)sc->i);
		if (!rc)
			rc = atex_buf_printf(k, "%lld", (long long)sc->i);
		break;
	case SC_FLOAT:
		rc = float_key(ld, f, sc->d);
		break;
	}
	if (!rc && !k->ptr)
		rc = atex_buf_grow(k, 0); /* so the key is never a NULL ptr */
	return rc < 0 ? ATEX_ENOMEM : 0;
}

/* ---------------------------------------------------------------------- */
/* Mappings                                                                */

static void note_dup(struct frame *f)
{
	if (f->dup)
		return;
	f->dup = true;
	f->dup_at = f->key_at;
	atex_buf_clear(&f->dup_key);
	atex_buf_put(&f->dup_key, f->key.ptr,
		     f->key.len > QUOTE_MAX ? QUOTE_MAX : f->key.len);
}

/*
 * Whether the pending key is already in the mapping (noted as a duplicate
 * here or by the caller). Numeric keys are compared as Python compares
 * them (1, 1.0 and true are one key); a dict keeps the first spelling, so
 * the key text becomes the first one's.
 */
static int key_seen(struct frame *f, bool *seen)
{
	json_t *first;

	*seen = json_object_get(f->value, f->key.ptr) != NULL;
	if (*seen || !f->key_numeric || !f->numeric)
		return 0;
	first = json_object_get(f->numeric, f->canon.ptr);
	if (!first)
		return 0;
	*seen = true;
	note_dup(f); /* named as written */
	atex_buf_clear(&f->key);
	return atex_buf_puts(&f->key, json_string_value(first));
}

/* Remembers a new numeric key's identity and spelling for key_seen(). */
static int remember_numeric(struct frame *f)
{
	json_t *text;

	if (!f->key_numeric)
		return 0;
	if (!f->numeric && !(f->numeric = json_object()))
		return atex_error_oom();
	text = json_string(f->key.ptr);
	if (!text || json_object_set_new(f->numeric, f->canon.ptr, text))
		return atex_error_oom();
	return 0;
}

/*
 * Adds the pending key with value `v` (stolen). A duplicate is only noted:
 * ruamel skips duplicate checks in a mapping that has a "<<" key, and that
 * key may still come; map_finish decides. Later values win, as in ruamel.
 */
static int map_set(struct loader *ld, struct frame *f, json_t *v)
{
	const char *key;
	bool seen;
	int rc = 0;

	if (strlen(f->key.ptr) != f->key.len) {
		rc = fail(ld, &f->key_at, "a key contains a NUL character");
		goto out;
	}
	if ((rc = key_seen(f, &seen)))
		goto out;
	if (seen)
		note_dup(f);
	key = f->key.ptr;
	rc = json_object_set_new_nocheck(f->value, key, v);
	v = NULL; /* stolen even on failure */
	if (rc) {
		rc = atex_error_oom();
		goto out;
	}
	if (!seen && (rc = remember_numeric(f)))
		goto out;
	if (ld->marks)
		rc = marks_put(ld->marks, f->value, key, ld->mfile,
			       (unsigned int)f->key_at.line + 1,
			       (unsigned int)f->key_at.column + 1);
out:
	json_decref(v);
	return rc;
}

/* The value of "<<": a mapping or a sequence of mappings (stolen). */
static int map_merge(struct loader *ld, struct frame *f, json_t *v,
		     const yaml_mark_t *at)
{
	size_t i;
	json_t *item;
	int rc = 0;

	if (!f->merges && !(f->merges = json_array())) {
		rc = atex_error_oom();
		goto out;
	}
	if (json_is_object(v)) {
		f->merged += json_object_size(v);
		if (json_array_append(f->merges, v))
			rc = atex_error_oom();
		goto out;
	}
	if (!json_is_array(v)) {
		rc = fail(ld, at,
			  "expected a mapping or list of mappings for "
			  "merging, but found scalar");
		goto out;
	}
	json_array_foreach(v, i, item)
	{
		if (!json_is_object(item)) {
			rc = fail(ld, at,
				  "expected a mapping for merging, but "
				  "found %s",
				  json_is_array(item) ? "sequence" : "scalar");
			goto out;
		}
		f->merged += json_object_size(item);
		if (json_array_append(f->merges, item)) {
			rc = atex_error_oom();
			goto out;
		}
	}
out:
	json_decref(v);
	return rc;
}

static int rebuild_put(struct loader *ld, json_t *res, const char *key,
		       json_t *v, const json_t *from)
{
	const struct atex_mark *m;

	if (json_object_set_nocheck(res, key, v))
		return atex_error_oom();
	m = atex_marks_find(ld->marks, from, key);
	if (!m)
		return 0;
	return marks_put(ld->marks, res, key, m->file, m->line, m->column);
}

/*
 * ruamel's merge order: the merged mappings' pairs first, a list's later
 * mappings before its earlier ones (earlier ones win), then the mapping's
 * own keys, which win over all merged ones. Key order is that of first
 * appearance.
 */
static int map_rebuild(struct loader *ld, struct frame *f)
{
	json_t *res = json_object(), *src, *v;
	const char *key;
	size_t i;
	int rc = 0;

	if (!res)
		return atex_error_oom();
	for (i = json_array_size(f->merges); i-- > 0;) {
		src = json_array_get(f->merges, i);
		json_object_foreach(src, key,
				    v) if ((rc = rebuild_put(ld, res, key, v,
							     src))) goto out;
	}
	json_object_foreach(
		f->value, key,
		v) if ((rc = rebuild_put(ld, res, key, v, f->value))) goto out;
	if (ld->marks && (rc = marks_put(ld->marks, res, NULL, ld->mfile,
					 (unsigned int)f->start.line + 1,
					 (unsigned int)f->start.column + 1)))
		goto out;
	json_decref(f->value);
	f->value = res;
	res = NULL;
out:
	json_decref(res);
	return rc;
}

static int dup_error(struct loader *ld, const char *key, const yaml_mark_t *at,
		     const yaml_mark_t *map_at)
{
	return fail(ld, at,
		    "found duplicate key \"%s\" (in the mapping at "
		    "line %zu, column %zu)",
		    key, map_at->line + 1, map_at->column + 1);
}

/* Whether a mapping about to start or be aliased under `parent` is the
 * value of "<<" or an item of it: ruamel flattens those, unchecked. */
static bool merge_context(const struct frame *parent, bool is_map)
{
	if (!parent)
		return false;
	if (parent->kind == FRAME_MAP)
		return parent->have_key && parent->key_is_merge;
	return parent->merge_src && is_map;
}

static int map_finish(struct loader *ld, struct frame *f)
{
	/* Merging switches duplicate checks off, if anything was merged. */
	if (f->merged)
		return map_rebuild(ld, f);
	if (f->dup && !f->merge_src)
		return dup_error(ld, f->dup_key.ptr, &f->dup_at, &f->start);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Frames, anchors and the tree being built                                */

static struct frame *top(struct loader *ld)
{
	return ld->depth ? &ld->frames[ld->depth - 1] : NULL;
}

static bool wants_key(const struct frame *f)
{
	return f && f->kind == FRAME_MAP && !f->have_key;
}

static int push_frame(struct loader *ld, struct frame **out)
{
	if (ld->depth == ld->nframes) {
		size_t n = ld->nframes ? ld->nframes * 2 : 16;
		struct frame *p = realloc(ld->frames, n * sizeof(*p));

		if (!p)
			return atex_error_oom();
		memset(p + ld->nframes, 0, (n - ld->nframes) * sizeof(*p));
		ld->frames = p;
		ld->nframes = n;
	}
	*out = &ld->frames[ld->depth++];
	return 0;
}

/* Empties the top frame for reuse; its buffers stay allocated. */
static void pop_frame(struct loader *ld)
{
	struct frame *f = &ld->frames[--ld->depth];

	json_decref(f->value);
	json_decref(f->numeric);
	json_decref(f->merges);
	free(f->anchor);
	f->value = f->numeric = f->merges = NULL;
	f->anchor = NULL;
	f->have_key = f->key_is_merge = f->key_numeric = false;
	f->has_merge = f->dup = f->flow = f->merge_src = false;
	f->merged = 0;
}

/*
 * An anchor name may be used once per file: the C composer that ruamel's
 * safe loader uses refuses a second "&a" (the pure-Python one would only
 * warn). A container's anchor counts from its start, as there.
 */
static int anchor_check(struct loader *ld, const char *name,
			const yaml_mark_t *at)
{
	const yaml_mark_t *first = NULL;
	struct strtab_slot *s;
	size_t i;

	for (i = 0; i < ld->depth && !first; i++)
		if (ld->frames[i].anchor && !strcmp(ld->frames[i].anchor, name))
			first = &ld->frames[i].start;
	if (!first && (s = strtab_find(&ld->anchors, name)))
		first = &((struct anchor *)s->value)->at;
	if (!first)
		return 0;
	return fail(ld, at,
		    "found duplicate anchor &%s (first at line %zu, "
		    "column %zu)",
		    name, first->line + 1, first->column + 1);
}

/* Registers a finished anchored node (a container when `f` is not NULL);
 * anchor_check ran at its start. */
static int anchor_define(struct loader *ld, const char *name, json_t *value,
			 uint64_t size, const yaml_mark_t *at,
			 const struct frame *f)
{
	struct strtab_slot *s;
	struct anchor *a;
	size_t len = strlen(name);

	if (strtab_reserve(&ld->anchors) < 0)
		return ATEX_ENOMEM;
	a = atex_calloc(1, sizeof(*a));
	if (!a)
		return ATEX_ENOMEM;
	if (f && f->dup && f->merge_src && !f->merged) {
		a->dup_key = atex_strdup(f->dup_key.ptr);
		if (!a->dup_key) {
			free(a);
			return ATEX_ENOMEM;
		}
		a->dup_at = f->dup_at;
	}
	s = strtab_slot(&ld->anchors, name, hash_str(name, len));
	s->key = atex_strndup(name, len);
	if (!s->key) {
		free(a->dup_key);
		free(a);
		return ATEX_ENOMEM;
	}
	s->hash = hash_str(name, len);
	s->value = a;
	a->value = json_incref(value);
	a->size = size;
	a->at = *at;
	ld->anchors.count++;
	return 0;
}

/*
 * Hands a finished value (stolen) to whatever contains it. `size` is the
 * number of nodes it stands for; `at` where it starts.
 */
static int put_value(struct loader *ld, json_t *v, uint64_t size,
		     const yaml_mark_t *at)
{
	struct frame *f = top(ld);

	if (!f) {
		ld->root = v;
		return 0;
	}
	f->size += size;
	if (f->kind == FRAME_SEQ) {
		if (json_array_append_new(f->value, v))
			return atex_error_oom();
		return 0;
	}
	f->have_key = false;
	if (f->key_is_merge)
		return map_merge(ld, f, v, at);
	return map_set(ld, f, v);
}

/*
 * The libyaml inside ruamel.yaml.clib (which the safe loader uses) predates
 * 0.2.2 and refuses "x:y" in a plain scalar inside a flow collection
 * ("[a:b]", "[http://x]"); the system libyaml accepts it. Refused here
 * too, or atex would accept metadata the reference rejects. Any ':' left
 * in such a scalar was followed by a non-blank, the case it refused.
 */
static int check_flow_colon(struct loader *ld, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	const char *colon;
	yaml_mark_t at = ev->start_mark;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	colon = memchr(s, ':', ev->data.scalar.length);
	if (!colon)
		return 0;
	if (ev->end_mark.line == at.line)
		for (; s < colon; s++)
			at.column += (*s & 0xc0) != 0x80;
	return fail(ld, &at,
		    "found unexpected ':' (while scanning a plain "
		    "scalar in a flow collection; quote it)");
}

static int on_scalar(struct loader *ld, const yaml_event_t *ev)
{
	const char *anchor = (const char *)ev->data.scalar.anchor;
	const yaml_mark_t *at = &ev->start_mark;
	struct frame *f = top(ld);
	struct scalar sc;
	json_t *v = NULL;
	int rc;

	if (anchor && (rc = anchor_check(ld, anchor, at)))
		return rc;
	if (f && f->flow && (rc = check_flow_colon(ld, ev)))
		return rc;
	if ((rc = resolve_scalar(ld, ev, &sc)))
		return rc;
	if (wants_key(f) &&
	    (!anchor || sc.type == SC_MERGE || sc.type == SC_VALUE)) {
		f->size++;
		return key_set(ld, f, &sc, at);
	}
	if ((rc = scalar_json(ld, &sc, at, &v)))
		return rc;
	if (anchor && (rc = anchor_define(ld, anchor, v, 1, at, NULL)))
		goto out;
	if (wants_key(f)) {
		f->size++;
		rc = key_set(ld, f, &sc, at);
		goto out;
	}
	rc = put_value(ld, v, 1, at);
	v = NULL;
out:
	json_decref(v);
	return rc;
}

static bool anchor_is_open(const struct loader *ld, const char *name)
{
	size_t i;

	for (i = 0; i < ld->depth; i++)
		if (ld->frames[i].anchor && !strcmp(ld->frames[i].anchor, name))
			return true;
	return false;
}

static int on_alias(struct loader *ld, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const yaml_mark_t *at = &ev->start_mark;
	struct frame *f = top(ld);
	struct strtab_slot *s;
	struct anchor *a;
	struct scalar sc;

	if (anchor_is_open(ld, name))
		return fail(ld, at,
			    "alias *%s is inside the node it names "
			    "(recursive structures are not supported)",
			    name);
	s = strtab_find(&ld->anchors, name);
	if (!s)
		return fail(ld, at, "found undefined alias *%s", name);
	a = s->value;
	ld->alias_nodes += a->size;
	if (ld->alias_nodes > YAML_MAX_ALIAS_NODES)
		return fail(ld, at,
			    "aliases expand to more than %d nodes "
			    "(an alias bomb?)",
			    YAML_MAX_ALIAS_NODES);
	if (a->dup_key && !merge_context(f, true))
		return dup_error(ld, a->dup_key, &a->dup_at, &a->at);
	if (!wants_key(f))
		return put_value(ld, json_incref(a->value), a->size, at);
	if (!scalar_from_json(a->value, &sc))
		return fail(ld, at, "a %s cannot be a mapping key",
			    json_is_object(a->value) ? "mapping" : "sequence");
	f->size += a->size;
	return key_set(ld, f, &sc, at);
}

static int on_start(struct loader *ld, const yaml_event_t *ev,
		    enum frame_kind kind)
{
	const yaml_mark_t *at = &ev->start_mark;
	struct frame *f = NULL, *parent = top(ld);
	const char *tag, *anchor;
	bool flow, merge_src;
	int rc;

	if (kind == FRAME_MAP) {
		tag = (const char *)ev->data.mapping_start.tag;
		anchor = (const char *)ev->data.mapping_start.anchor;
		flow = ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
	} else {
		tag = (const char *)ev->data.sequence_start.tag;
		anchor = (const char *)ev->data.sequence_start.anchor;
		flow = ev->data.sequence_start.style ==
		       YAML_FLOW_SEQUENCE_STYLE;
	}
	merge_src = merge_context(parent, kind == FRAME_MAP);
	if ((rc = check_container_tag(ld, tag, kind, at)))
		return rc;
	if (anchor && (rc = anchor_check(ld, anchor, at)))
		return rc;
	/* ruamel: "found unhashable key" (a sequence would become a tuple,
	 * which JSON cannot hold either). */
	if (wants_key(top(ld)))
		return fail(ld, at, "a %s cannot be a mapping key",
			    kind == FRAME_MAP ? "mapping" : "sequence");
	if (ld->depth >= YAML_MAX_DEPTH)
		return fail(ld, at, "nesting deeper than %d levels",
			    YAML_MAX_DEPTH);
	if ((rc = push_frame(ld, &f)))
		return rc;
	f->kind = kind;
	f->start = *at;
	f->size = 1;
	f->flow = flow || (parent && parent->flow);
	f->merge_src = merge_src;
	f->value = kind == FRAME_MAP ? json_object() : json_array();
	if (!f->value)
		return atex_error_oom();
	if (anchor && !(f->anchor = atex_strdup(anchor)))
		return ATEX_ENOMEM;
	if (!ld->marks)
		return 0;
	return marks_put(ld->marks, f->value, NULL, ld->mfile,
			 (unsigned int)at->line + 1,
			 (unsigned int)at->column + 1);
}

static int on_end(struct loader *ld)
{
	struct frame *f = top(ld);
	yaml_mark_t start = f->start;
	uint64_t size = f->size;
	json_t *v;
	int rc;

	if (f->kind == FRAME_MAP && (rc = map_finish(ld, f)))
		return rc;
	/* Registered only now: an alias inside its own anchor's node would
	 * be a recursive structure (see on_alias). */
	if (f->anchor &&
	    (rc = anchor_define(ld, f->anchor, f->value, size, &start, f)))
		return rc;
	v = json_incref(f->value);
	pop_frame(ld);
	return put_value(ld, v, size, &start);
}

static int on_event(struct loader *ld, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (ld->documents++)
			return fail(ld, &ev->start_mark,
				    "expected a single document in the stream, "
				    "but found another document");
		return 0;
	case YAML_SCALAR_EVENT:
		return on_scalar(ld, ev);
	case YAML_ALIAS_EVENT:
		return on_alias(ld, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(ld, ev, FRAME_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(ld, ev, FRAME_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(ld);
	default:
		return 0;
	}
}

/* libyaml's reader errors carry a byte offset, not a line and column. */
static void offset_to_mark(const struct loader *ld, size_t offset,
			   yaml_mark_t *m)
{
	size_t i;

	m->line = m->column = 0;
	if (offset > ld->len)
		offset = ld->len;
	for (i = 0; i < offset; i++) {
		unsigned char c = (unsigned char)ld->text[i];

		if (c == '\n' || (c == '\r' && (i + 1 == ld->len ||
						ld->text[i + 1] != '\n'))) {
			m->line++;
			m->column = 0;
		} else if ((c & 0xc0) != 0x80) {
			m->column++;
		}
	}
}

static int parser_error(struct loader *ld, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "syntax error";
	yaml_mark_t at = p->problem_mark;

	if (p->error == YAML_MEMORY_ERROR)
		return atex_error_oom();
	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(ld, p->problem_offset, &at);
		if (p->problem_value >= 0)
			return fail(ld, &at, "%s (byte 0x%02x)", problem,
				    (unsigned int)p->problem_value);
		return fail(ld, &at, "%s", problem);
	}
	if (p->context)
		return fail(ld, &at, "%s (%s)", problem, p->context);
	return fail(ld, &at, "%s", problem);
}

static void loader_free(struct loader *ld)
{
	size_t i;

	while (ld->depth)
		pop_frame(ld);
	for (i = 0; i < ld->nframes; i++) {
		atex_buf_free(&ld->frames[i].key);
		atex_buf_free(&ld->frames[i].canon);
		atex_buf_free(&ld->frames[i].dup_key);
	}
	free(ld->frames);
	for (i = 0; i < ld->anchors.cap; i++) {
		struct strtab_slot *s = &ld->anchors.slots[i];
		struct anchor *a = s->value;

		if (!s->key)
			continue;
		json_decref(a->value);
		free(a->dup_key);
		free(a);
		free((char *)s->key);
	}
	free(ld->anchors.slots);
	atex_buf_free(&ld->tmp);
	json_decref(ld->root);
	if (ld->c_locale)
		freelocale(ld->c_locale);
}

int atex_yaml_load(json_t **out, const char *text, size_t len, const char *file,
		   struct atex_marks *marks)
{
	struct loader ld = {
		.file = file ? file : "<string>",
		.marks = marks,
		.text = text ? text : "",
		.len = text ? len : 0,
	};
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;
	int rc = 0;

	*out = NULL;
	if (!yaml_parser_initialize(&parser))
		return atex_error_oom();
	yaml_parser_set_input_string(&parser, (const unsigned char *)ld.text,
				     ld.len);
	/* fmf reads files as UTF-8 text; a UTF-16 file is an error there. */
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	if (marks && !(ld.mfile = marks_intern(marks, ld.file))) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = parser_error(&ld, &parser);
			goto out;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = on_event(&ld, &ev);
		yaml_event_delete(&ev);
		if (rc)
			goto out;
	}
	*out = ld.root ? ld.root : json_null();
	ld.root = NULL;
out:
	loader_free(&ld);
	yaml_parser_delete(&parser);
	return rc;
}

int atex_yaml_load_file(json_t **out, const char *path,
			struct atex_marks *marks)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = atex_file_read(&text, &len, path);
	if (rc == 0)
		rc = atex_yaml_load(out, text, len, path, marks);
	free(text);
	return rc;
}
