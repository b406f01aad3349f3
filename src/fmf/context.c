/*
 * context.c - the fmf context (dimensions such as distro or arch, each with
 * one or more values) and the rule language adjust decides against it:
 * "distro < fedora-33 and arch == x86_64 or component ~ ^python3".
 *
 * The behaviour is that of the reference fmf 1.7 (fmf/context.py), whose
 * parser is a handful of Python regular expressions. They are not used
 * here: adjust decides a rule for every node of a tree, and a tree of
 * 10,000 nodes has to load in tens of milliseconds. Instead a small
 * hand-written scanner reproduces, step by step, what those expressions
 * accept, including their backtracking corners (each is explained where it
 * is handled). Deciding a rule allocates nothing unless the rule is longer
 * than a stack buffer or a regular expression operator is used.
 *
 * Outline of the reference, which this file follows:
 *  1. every lone "=" becomes "==" (re.sub over the whole rule, values too);
 *  2. the rule is split on the words "or", then each part on "and" (\b
 *     word boundaries, Unicode \w); an empty part is an invalid rule;
 *  3. every part must parse (true/false, "DIM OP VALUES" or "DIM is [not]
 *     defined") before anything is decided;
 *  4. parts are decided with three-valued logic: an undecidable part is
 *     neither true nor false, `false and X` is false, `true or X` true.
 * A comparison takes every (context value, rule value) pair: any true pair
 * makes it true, otherwise any decided pair makes it false, otherwise it
 * cannot be decided (as when the dimension is not set).
 *
 * Dimension values are compared as fmf's ContextValue: split on ':', '-'
 * and '.' into a name and version parts ("centos-8.4.0" is centos, 8, 4,
 * 0), parts compared as integers when both read as Python int(), else as
 * strings. The context is immutable while rules are decided, so a const
 * context may be shared by threads.
 *
 * A context can be made case-insensitive, as fmf's Context.case_sensitive
 * = False (tmt adjusts its trees so): names, majors and string version
 * parts are then compared after Python's str.casefold(), integer parts and
 * the regular expression operators stay as they are, and dimension names
 * are always case sensitive.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "atex/fmf.h"
#include "fmf/fmf_private.h"
#include "util/pyre.h"
#include "util/util.h"

struct dimension {
	char *name;
	size_t name_n;
	char **values; /* distinct as ContextValue tuples, in given order */
	size_t n_values;
};

struct atex_fmf_context {
	struct dimension *dims; /* in order of first setting */
	size_t n_dims;
	size_t cap;
	bool fold; /* compare values case-insensitively */
};

/* A piece of a longer string, not NUL-terminated. */
struct span {
	const char *p;
	size_t n;
};

/* ------------------------------------------------------------------------
 * Characters as Python's str patterns see them.
 */

/* Decodes the UTF-8 character at p (p < end) and stores its byte length.
 * A byte that does not start a valid sequence is returned as -1 with
 * length 1: it is neither a space nor a word character. */
static int32_t utf8_decode(const char *p, const char *end, size_t *len)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t avail = (size_t)(end - p), need, i;
	int32_t cp;

	*len = 1;
	if (s[0] < 0x80)
		return s[0];
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return -1;
	}
	if (avail < need)
		return -1;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return -1;
	*len = need;
	return cp;
}

/* Start of the character that ends just before `p` (p > start). */
static const char *utf8_prev(const char *start, const char *p)
{
	const char *q = p - 1;
	size_t len;

	while (q > start && p - q < 4 && ((unsigned char)*q & 0xc0) == 0x80)
		q--;
	if (utf8_decode(q, p, &len) >= 0 && q + len == p)
		return q;
	return p - 1;
}

/* Python's str.isspace(), which is also what \s and str.strip() use. */
static bool is_space_cp(int32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) ||
	       c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Length of the whitespace character at p, 0 when there is none. */
static size_t space_at(const char *p, const char *end)
{
	size_t len;

	if (p >= end)
		return 0;
	if ((unsigned char)*p < 0x80)
		return is_space_cp(*p);
	return is_space_cp(utf8_decode(p, end, &len)) ? len : 0;
}

/*
 * Length of the Unicode \w character at p (0 when there is none). `p` must
 * point into a NUL-terminated string. ASCII is decided here; the rare other
 * letters and digits are asked of the Python-compatible regex layer, which
 * carries the Unicode tables this file should not duplicate.
 */
static inline bool ascii_word(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '_';
}

static size_t word_at(const char *p, const char *end)
{
	size_t len;

	if (p >= end)
		return 0;
	if ((unsigned char)*p < 0x80)
		return ascii_word(*p);
	if (utf8_decode(p, end, &len) < 0)
		return 0;
	return atex_pyre_search_str("^\\w", p) == 1 ? len : 0;
}

/* Whether a Unicode \w character ends just before p. */
static bool word_before(const char *start, const char *p)
{
	const char *q;

	if (p <= start)
		return false;
	if ((unsigned char)p[-1] < 0x80)
		return word_at(p - 1, p) == 1;
	q = utf8_prev(start, p);
	return word_at(q, p) == (size_t)(p - q);
}

static const char *skip_space(const char *p, const char *end)
{
	size_t n;

	while ((n = space_at(p, end)))
		p += n;
	return p;
}

/* Python's str.strip(). */
static struct span strip(struct span s)
{
	const char *p = skip_space(s.p, s.p + s.n), *end = s.p + s.n;

	while (end > p) {
		const char *q = utf8_prev(p, end);

		if (space_at(q, end) != (size_t)(end - q))
			break;
		end = q;
	}
	return (struct span){p, (size_t)(end - p)};
}

static bool has_prefix(const char *p, const char *end, const char *text,
		       size_t n)
{
	return (size_t)(end - p) >= n && memcmp(p, text, n) == 0;
}

/* has_prefix() of a string literal, its length known when compiling. */
#define starts_with(p, end, lit) has_prefix(p, end, lit, sizeof(lit) - 1)

/* ------------------------------------------------------------------------
 * Values: fmf's ContextValue and its version_cmp().
 */

static bool is_version_sep(char c)
{
	return c == ':' || c == '-' || c == '.';
}

/* Number of parts re.split(r":|-|\.") gives: empty parts count. */
static size_t count_parts(struct span s)
{
	size_t n = 1, i;

	for (i = 0; i < s.n; i++)
		n += is_version_sep(s.p[i]);
	return n;
}

/* The part starting at `p`, which must be inside `s` or at its end. */
static struct span part_at(const char *p, struct span s)
{
	const char *end = s.p + s.n, *q = p;

	while (q < end && !is_version_sep(*q))
		q++;
	return (struct span){p, (size_t)(q - p)};
}

/* The part after `part` (there must be one). */
static struct span next_part(struct span part, struct span s)
{
	return part_at(part.p + part.n + 1, s);
}

/* Two values are the same ContextValue when their part tuples are equal,
 * which is when they are equal byte for byte up to which separator ends
 * each part. Python keeps a dimension's values in a set, so duplicates in
 * this sense collapse into the first one given. */
static bool same_value(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		if (*a != *b && !(is_version_sep(*a) && is_version_sep(*b)))
			return false;
	}
	return *a == *b;
}

/*
 * Reads a part as Python's int() would: surrounding whitespace, an
 * optional sign, decimal digits with single underscores between them.
 * Only '+' can occur as a sign, '-' being a separator. On success the
 * digits (with underscores, leading zeros kept) are stored in *digits.
 * Non-ASCII decimal digits, which int() also accepts, are not recognised.
 */
static bool py_int(struct span s, struct span *digits)
{
	const char *p, *end;
	bool prev_digit = false;

	s = strip(s);
	p = s.p;
	end = s.p + s.n;
	if (p < end && *p == '+')
		p++;
	*digits = (struct span){p, (size_t)(end - p)};
	if (p == end)
		return false;
	for (; p < end; p++) {
		if (*p >= '0' && *p <= '9') {
			prev_digit = true;
		} else if (*p == '_' && prev_digit && p + 1 < end) {
			prev_digit = false;
		} else {
			return false;
		}
	}
	return prev_digit;
}

/* Significant digits of a py_int() digit string: no underscores and no
 * leading zeros. */
static size_t int_width(struct span d, const char **first)
{
	size_t i, width = 0;

	*first = NULL;
	for (i = 0; i < d.n; i++) {
		if (d.p[i] == '_' || (d.p[i] == '0' && !*first))
			continue;
		if (!*first)
			*first = d.p + i;
		width++;
	}
	return width;
}

/* Compares two non-negative integers of any size. */
static int int_cmp(struct span a, struct span b)
{
	const char *pa, *pb, *ea = a.p + a.n, *eb = b.p + b.n;
	size_t wa = int_width(a, &pa), wb = int_width(b, &pb);

	if (wa != wb)
		return wa < wb ? -1 : 1;
	for (; wa; wa--, pa++, pb++) {
		while (pa < ea && *pa == '_')
			pa++;
		while (pb < eb && *pb == '_')
			pb++;
		if (*pa != *pb)
			return *pa < *pb ? -1 : 1;
	}
	return 0;
}

/* The code points of str.casefold() of a span, one at a time. */
struct folder {
	const char *p, *end;
	uint32_t pending[3];
	size_t n_pending, next;
};

/* The next folded code point, or -1 at the end. A byte that is not UTF-8
 * stands for U+DC80..U+DCFF, as Python's surrogateescape reads it. */
static int32_t fold_next(struct folder *f)
{
	size_t len;
	int32_t cp;

	if (f->next < f->n_pending)
		return (int32_t)f->pending[f->next++];
	if (f->p >= f->end)
		return -1;
	cp = utf8_decode(f->p, f->end, &len);
	if (cp < 0)
		cp = 0xdc00 + (unsigned char)*f->p;
	f->p += len;
	f->n_pending = atex_casefold((uint32_t)cp, f->pending);
	f->next = 1;
	return (int32_t)f->pending[0];
}

/* Python's str comparison is by code point, which for UTF-8 is byte
 * order; with `fold`, of the casefolded strings. */
static int str_cmp(struct span a, struct span b, bool fold)
{
	struct folder fa = {.p = a.p, .end = a.p + a.n};
	struct folder fb = {.p = b.p, .end = b.p + b.n};
	int32_t ca, cb;
	int c;

	if (!fold) {
		c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
		if (c)
			return c < 0 ? -1 : 1;
		return (a.n > b.n) - (a.n < b.n);
	}
	do {
		ca = fold_next(&fa);
		cb = fold_next(&fb);
		if (ca != cb)
			return ca < cb ? -1 : 1;
	} while (ca >= 0);
	return 0;
}

/* ContextValue.compare(): one version part against another. */
static int part_cmp(struct span a, struct span b, bool fold)
{
	struct span da, db;

	if (py_int(a, &da) && py_int(b, &db))
		return int_cmp(da, db);
	return str_cmp(a, b, fold);
}

/* ContextValue._compare_with_case(). */
static bool part_eq(struct span a, struct span b, bool fold)
{
	if (fold)
		return str_cmp(a, b, true) == 0;
	return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

#define CMP_UNDECIDED 2 /* version_cmp() raised CannotDecide */

/*
 * ContextValue.version_cmp(): the context value `l` against the rule value
 * `r`, which sets the precision ("centos" compares names only, "centos-8"
 * the major version too). Returns -1, 0, 1 or CMP_UNDECIDED. `ordered`
 * asks for an order (else 0 means equal, 1 different); `minor` is the "~"
 * family, which compares minor versions only within the same major;
 * `fold` is case_sensitive=False.
 */
static int version_cmp(struct span l, struct span r, bool minor, bool ordered,
		       bool fold)
{
	size_t nl = count_parts(l), nr = count_parts(r), i;
	struct span lp = part_at(l.p, l), rp = part_at(r.p, r);
	int c;

	if (!part_eq(lp, rp, fold))
		return ordered ? CMP_UNDECIDED : 1;
	if (minor && nr > 1) {
		if (nl < 2)
			return CMP_UNDECIDED; /* no major version on the left */
		/* Majors are compared as strings here ("08" != "8"). */
		if (!part_eq(next_part(lp, l), next_part(rp, r), fold)) {
			if (!ordered)
				return 1;
			/* Minors of different majors cannot be ordered. */
			if (nr > 2)
				return CMP_UNDECIDED;
		}
	}
	for (i = 1; i < nl && i < nr; i++) {
		lp = next_part(lp, l);
		rp = next_part(rp, r);
		c = part_cmp(lp, rp, fold);
		if (c)
			return c;
	}
	if (nr <= nl)
		return 0; /* everything the right side asks for is equal */
	if (minor)
		return CMP_UNDECIDED;
	if (!ordered)
		return 1;
	if (nl == 1)
		return CMP_UNDECIDED; /* no version on the left at all */
	return -1;
}

/* ------------------------------------------------------------------------
 * Rule syntax.
 */

enum op {
	OP_EQ,
	OP_NE,
	OP_LT,
	OP_LE,
	OP_GT,
	OP_GE,
	OP_MINOR_EQ,
	OP_MINOR_NE,
	OP_MINOR_LT,
	OP_MINOR_LE,
	OP_MINOR_GT,
	OP_MINOR_GE,
	OP_MATCH,
	OP_NOT_MATCH,
};

/*
 * The operators in the order the reference's alternation tries them. The
 * order matters only for "~", a prefix of other operators whose remainder
 * ("<x", "!= x") could be taken as its value: those are tried first. The
 * other prefixes ("<" of "<=") cannot be confused because a value must not
 * start with "=".
 */
static const struct {
	const char *text;
	size_t len;
	enum op op;
} operators[] = {
	{"==", 2, OP_EQ},	{"!=", 2, OP_NE},
	{"<", 1, OP_LT},	{"<=", 2, OP_LE},
	{">", 1, OP_GT},	{">=", 2, OP_GE},
	{"~=", 2, OP_MINOR_EQ}, {"~!=", 3, OP_MINOR_NE},
	{"~<", 2, OP_MINOR_LT}, {"~<=", 3, OP_MINOR_LE},
	{"~>", 2, OP_MINOR_GT}, {"~>=", 3, OP_MINOR_GE},
	{"~", 1, OP_MATCH},	{"!~", 2, OP_NOT_MATCH},
};

enum expr_kind {
	EXPR_TRUE,
	EXPR_FALSE,
	EXPR_DEFINED,
	EXPR_NOT_DEFINED,
	EXPR_COMPARE,
};

struct expr {
	enum expr_kind kind;
	enum op op;
	struct span dim;
	struct span values; /* raw, comma-separated */
};

/* Length of the leading [\w-]+ run. */
static size_t name_len(const char *p, const char *end)
{
	const char *q = p;
	size_t n;

	while (q < end) {
		unsigned char c = *q;

		if (c < 0x80)
			n = ascii_word(c) || c == '-';
		else
			n = word_at(q, end);
		if (!n)
			break;
		q += n;
	}
	return (size_t)(q - p);
}

/*
 * Where the value of a triple expression starts after an operator ending
 * at p, as `\s*([^=].*)` finds it; NULL when it does not match. \s* is
 * greedy but gives characters back: when the spaces are followed by "=" or
 * nothing, the last space itself becomes the value's first character.
 */
static const char *value_start(const char *p, const char *end)
{
	const char *q = skip_space(p, end), *last;

	if (q < end && *q != '=')
		return q;
	if (q == p)
		return NULL;
	last = p;
	while (last + space_at(last, end) < q)
		last += space_at(last, end);
	return last;
}

/* `DIM OP VALUES`: re.match of ([\w-]+)\s*(OPS)\s*([^=].*). */
static bool parse_triple(struct span s, struct expr *e)
{
	const char *end = s.p + s.n, *p, *v, *nl;
	size_t n = name_len(s.p, end), i, len;

	if (!n)
		return false;
	p = skip_space(s.p + n, end);
	if (p == end || !strchr("=!<>~", *p))
		return false;
	for (i = 0; i < ATEX_ARRAY_SIZE(operators); i++) {
		if (*p != operators[i].text[0] ||
		    !has_prefix(p, end, operators[i].text, operators[i].len))
			continue;
		v = value_start(p + operators[i].len, end);
		if (!v)
			continue;
		/* [^=] takes one character (even a newline), then `.*`
		 * stops at the first newline. */
		utf8_decode(v, end, &len);
		nl = memchr(v + len, '\n', (size_t)(end - v - len));
		e->kind = EXPR_COMPARE;
		e->op = operators[i].op;
		e->dim = (struct span){s.p, n};
		e->values = (struct span){v, (size_t)((nl ? nl : end) - v)};
		return true;
	}
	return false;
}

/*
 * `DIM is defined`, `DIM is not defined`: re.match of
 * ([\w-]+)\s*(is defined|is not defined), so anything may follow. The name
 * can backtrack: in "distrois defined" the name is "distro" and the "is"
 * is its last two letters.
 */
static bool parse_double(struct span s, struct expr *e)
{
	const char *end = s.p + s.n, *p;
	size_t n = name_len(s.p, end);

	if (!n)
		return false;
	p = skip_space(s.p + n, end);
	if (!starts_with(p, end, "is defined") &&
	    !starts_with(p, end, "is not defined")) {
		p = s.p + n - 2;
		if (n < 3 || !starts_with(p, end, "is"))
			return false;
		if (!starts_with(p, end, "is defined") &&
		    !starts_with(p, end, "is not defined"))
			return false;
		n -= 2;
	}
	e->kind = starts_with(p, end, "is defined") ? EXPR_DEFINED
						    : EXPR_NOT_DEFINED;
	e->dim = (struct span){s.p, n};
	return true;
}

/* split_expression(): `s` is a stripped, non-empty part. The reference
 * checks re.match("(true|false)") first, so "trueish == 1" is true. */
static bool parse_expr(struct span s, struct expr *e)
{
	const char *end = s.p + s.n;

	if (starts_with(s.p, end, "true") || starts_with(s.p, end, "false")) {
		e->kind = *s.p == 't' ? EXPR_TRUE : EXPR_FALSE;
		return true;
	}
	return parse_triple(s, e) || parse_double(s, e);
}

/* A rule after "=" became "==", walked part by part. */
struct scanner {
	const char *start;
	const char *end;
	const char *pos; /* NULL after the last part */
};

enum part_end {
	END_RULE,
	END_AND,
	END_OR,
};

/* Whether the word "or" / "and" (`n` bytes) stands at p: \bWORD\b. */
static bool keyword_at(const struct scanner *sc, const char *p,
		       const char *word, size_t n)
{
	if (!has_prefix(p, sc->end, word, n) || word_at(p + n, sc->end))
		return false;
	return !word_before(sc->start, p);
}

/*
 * Stores the next part (unstripped) in *part and returns what ends it.
 * Splitting on "or" first and each piece on "and" gives the same cuts as
 * one scan for both words: they cannot overlap, and a piece boundary next
 * to "and" would need a word boundary that the "or" split excludes.
 */
static enum part_end scan_part(struct scanner *sc, struct span *part)
{
	const char *p;

	for (p = sc->pos; p < sc->end; p++) {
		enum part_end kind;
		size_t skip;

		if (*p == 'o' && keyword_at(sc, p, "or", 2)) {
			kind = END_OR;
			skip = 2;
		} else if (*p == 'a' && keyword_at(sc, p, "and", 3)) {
			kind = END_AND;
			skip = 3;
		} else {
			continue;
		}
		*part = (struct span){sc->pos, (size_t)(p - sc->pos)};
		sc->pos = p + skip;
		return kind;
	}
	*part = (struct span){sc->pos, (size_t)(sc->end - sc->pos)};
	sc->pos = NULL;
	return END_RULE;
}

/* re.sub(r"(?<!=|!|~|<|>)=(?!=)", "==", rule) into `out` (room for twice
 * the rule). The lookbehind sees the original text. */
static size_t double_equals(char *out, const char *rule)
{
	const char *p = rule, *eq;
	size_t n = 0, len;

	while ((eq = strchr(p, '='))) {
		len = (size_t)(eq - p) + 1;
		memcpy(out + n, p, len);
		n += len;
		if (eq[1] != '=' && (eq == rule || !strchr("=!~<>", eq[-1])))
			out[n++] = '=';
		p = eq + 1;
	}
	len = strlen(p);
	memcpy(out + n, p, len + 1);
	return n + len;
}

/* A parsed rule: its expressions and what follows each. Short rules
 * (nearly all) fit in `stack`. */
struct parsed {
	struct expr *e;
	enum part_end *end;
	size_t n, cap;
	struct expr stack_e[16];
	enum part_end stack_end[16];
};

static int parsed_push(struct parsed *r, const struct expr *e,
		       enum part_end end)
{
	if (r->n == r->cap) {
		size_t cap = 2 * r->cap;
		struct expr *ne = atex_malloc(cap * sizeof(*ne));
		enum part_end *nend = atex_malloc(cap * sizeof(*nend));

		if (!ne || !nend) {
			free(ne);
			free(nend);
			return ATEX_ENOMEM;
		}
		memcpy(ne, r->e, r->n * sizeof(*ne));
		memcpy(nend, r->end, r->n * sizeof(*nend));
		if (r->e != r->stack_e) {
			free(r->e);
			free(r->end);
		}
		r->e = ne;
		r->end = nend;
		r->cap = cap;
	}
	r->e[r->n] = *e;
	r->end[r->n++] = end;
	return 0;
}

static void parsed_init(struct parsed *r)
{
	r->e = r->stack_e;
	r->end = r->stack_end;
	r->n = 0;
	r->cap = ATEX_ARRAY_SIZE(r->stack_e);
}

static void parsed_free(struct parsed *r)
{
	if (r->e != r->stack_e) {
		free(r->e);
		free(r->end);
	}
}

/* Every part must parse before anything is decided. */
static int parse_rule(struct parsed *r, const char *buf, size_t len,
		      const char *original)
{
	struct scanner sc = {buf, buf + len, buf};
	struct span part;
	struct expr e;
	enum part_end kind;
	int rc;

	do {
		kind = scan_part(&sc, &part);
		part = strip(part);
		if (!part.n)
			return atex_error_set(ATEX_ERULE,
					      "invalid rule '%s': empty "
					      "expression before or after "
					      "'and' / 'or'",
					      original);
		if (!parse_expr(part, &e))
			return atex_error_set(ATEX_ERULE,
					      "invalid rule '%s': cannot "
					      "parse expression '%.*s'",
					      original, (int)part.n, part.p);
		rc = parsed_push(r, &e, kind);
		if (rc)
			return rc;
	} while (kind != END_RULE);
	return 0;
}

/* ------------------------------------------------------------------------
 * Deciding.
 */

static const struct dimension *find_dim(const atex_fmf_context *ctx,
					struct span name)
{
	size_t i;

	/* NULL is taken as an empty context. */
	for (i = 0; ctx && i < ctx->n_dims; i++) {
		const struct dimension *d = &ctx->dims[i];

		if (d->name_n == name.n && memcmp(d->name, name.p, name.n) == 0)
			return &ctx->dims[i];
	}
	return NULL;
}

/* re.search(pattern, value) for the regex operators: the pattern needs a
 * terminating NUL, so it is copied (on the stack when short). */
static int regex_search(struct span pattern, const char *value)
{
	char stack[256], *buf = stack;
	int rc;

	if (pattern.n >= sizeof(stack)) {
		buf = atex_malloc(pattern.n + 1);
		if (!buf)
			return ATEX_ENOMEM;
	}
	memcpy(buf, pattern.p, pattern.n);
	buf[pattern.n] = '\0';
	rc = atex_pyre_search_str(buf, value);
	if (buf != stack)
		free(buf);
	return rc;
}

/* One (context value, rule value) pair: ATEX_FMF_TRUE, ATEX_FMF_FALSE,
 * ATEX_FMF_UNDECIDED, or a negative code (a bad regular expression). */
static int decide_pair(enum op op, const char *value, struct span other,
		       bool fold)
{
	struct span v = {value, strlen(value)};
	bool minor = op >= OP_MINOR_EQ && op <= OP_MINOR_GE;
	bool ordered = op != OP_EQ && op != OP_NE && op != OP_MINOR_EQ &&
		       op != OP_MINOR_NE;
	bool yes;
	int c;

	if (op == OP_MATCH || op == OP_NOT_MATCH) {
		c = regex_search(other, value);
		if (c < 0)
			return c;
		return (c == 1) == (op == OP_MATCH);
	}
	c = version_cmp(v, other, minor, ordered, fold);
	if (c == CMP_UNDECIDED)
		return ATEX_FMF_UNDECIDED;
	switch (op) {
	case OP_EQ:
	case OP_MINOR_EQ:
		yes = c == 0;
		break;
	case OP_NE:
	case OP_MINOR_NE:
		yes = c != 0;
		break;
	case OP_LT:
	case OP_MINOR_LT:
		yes = c < 0;
		break;
	case OP_LE:
	case OP_MINOR_LE:
		yes = c <= 0;
		break;
	case OP_GT:
	case OP_MINOR_GT:
		yes = c > 0;
		break;
	default:
		yes = c >= 0;
		break;
	}
	return yes ? ATEX_FMF_TRUE : ATEX_FMF_FALSE;
}

/* _op_core(): every context value against every comma-separated rule
 * value, stopping at the first true pair. */
static int decide_compare(const atex_fmf_context *ctx, const struct expr *e)
{
	const struct dimension *dim = find_dim(ctx, e->dim);
	const char *end = e->values.p + e->values.n;
	bool decided = false;
	size_t i;

	if (!dim)
		return ATEX_FMF_UNDECIDED;
	for (i = 0; i < dim->n_values; i++) {
		const char *p = e->values.p;

		for (;;) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *stop = comma ? comma : end;
			struct span other = {p, (size_t)(stop - p)};
			int rc;

			rc = decide_pair(e->op, dim->values[i], strip(other),
					 ctx->fold);
			if (rc < 0 || rc == ATEX_FMF_TRUE)
				return rc;
			if (rc == ATEX_FMF_FALSE)
				decided = true;
			if (!comma)
				break;
			p = comma + 1;
		}
	}
	return decided ? ATEX_FMF_FALSE : ATEX_FMF_UNDECIDED;
}

static int decide_expr(const atex_fmf_context *ctx, const struct expr *e)
{
	switch (e->kind) {
	case EXPR_TRUE:
		return ATEX_FMF_TRUE;
	case EXPR_FALSE:
		return ATEX_FMF_FALSE;
	case EXPR_DEFINED:
		return find_dim(ctx, e->dim) ? ATEX_FMF_TRUE : ATEX_FMF_FALSE;
	case EXPR_NOT_DEFINED:
		return find_dim(ctx, e->dim) ? ATEX_FMF_FALSE : ATEX_FMF_TRUE;
	default:
		return decide_compare(ctx, e);
	}
}

/* Kleene's "and": false wins, true needs both. */
static int and3(int a, int b)
{
	if (a == ATEX_FMF_FALSE || b == ATEX_FMF_FALSE)
		return ATEX_FMF_FALSE;
	if (a == ATEX_FMF_TRUE && b == ATEX_FMF_TRUE)
		return ATEX_FMF_TRUE;
	return ATEX_FMF_UNDECIDED;
}

/*
 * Context.matches(): "and" groups left to right, each stopping at its
 * first false part; the first true group decides the rule. Parts that are
 * skipped are never decided, so a bad regular expression there is no
 * error, as in the reference. Returns a decision or a negative code.
 */
static int decide_rule(const atex_fmf_context *ctx, const struct parsed *rule)
{
	int group = -1, result = -1, r;
	size_t i;

	for (i = 0; i < rule->n; i++) {
		if (group != ATEX_FMF_FALSE) {
			r = decide_expr(ctx, &rule->e[i]);
			if (r < 0)
				return r;
			group = group < 0 ? r : and3(group, r);
		}
		if (rule->end[i] == END_AND)
			continue;
		if (group == ATEX_FMF_TRUE)
			return ATEX_FMF_TRUE;
		/* Between groups: false only when all were false. */
		if (result < 0)
			result = group;
		else if (result != group || group != ATEX_FMF_FALSE)
			result = ATEX_FMF_UNDECIDED;
		group = -1;
	}
	return result == ATEX_FMF_FALSE ? ATEX_FMF_FALSE : ATEX_FMF_UNDECIDED;
}

int atex_fmf_context_match(int *decision, const atex_fmf_context *ctx,
			   const char *rule)
{
	char stack[512], *buf = stack;
	size_t len = strlen(rule);
	struct parsed parsed;
	int rc;

	*decision = ATEX_FMF_UNDECIDED;
	parsed_init(&parsed);
	if (len >= sizeof(stack) / 2) {
		buf = atex_malloc(2 * len + 1);
		if (!buf)
			return ATEX_ENOMEM;
	}
	len = double_equals(buf, rule);
	rc = parse_rule(&parsed, buf, len, rule);
	if (rc)
		goto out;
	rc = decide_rule(ctx, &parsed);
	if (rc < 0) {
		atex_error_prefix("rule '%s'", rule);
		goto out;
	}
	*decision = rc;
	rc = 0;
out:
	parsed_free(&parsed);
	if (buf != stack)
		free(buf);
	return rc;
}

int atex_fmf_context_match_json(int *decision, const atex_fmf_context *ctx,
				const json_t *when)
{
	*decision = ATEX_FMF_UNDECIDED;
	/* A rule without `when` always applies (fmf's adjust). */
	if (!when) {
		*decision = ATEX_FMF_TRUE;
		return 0;
	}
	if (json_is_string(when))
		return atex_fmf_context_match(decision, ctx,
					      json_string_value(when));
	/* Context.matches() takes a bool as the literal rule true/false;
	 * fmf's adjust asserts anything else away. */
	if (json_is_boolean(when)) {
		*decision = json_is_true(when) ? ATEX_FMF_TRUE : ATEX_FMF_FALSE;
		return 0;
	}
	return atex_error_set(ATEX_ERULE,
			      "invalid adjust condition: 'when' must be a "
			      "string or a boolean, got '%s'",
			      atex_py_type(when));
}

/* ------------------------------------------------------------------------
 * The context object.
 */

static void dimension_clear(struct dimension *d)
{
	size_t i;

	for (i = 0; i < d->n_values; i++)
		free(d->values[i]);
	free(d->values);
	free(d->name);
	d->values = NULL;
	d->name = NULL;
	d->n_values = 0;
}

int atex_fmf_context_new(atex_fmf_context **out)
{
	*out = atex_calloc(1, sizeof(**out));
	return *out ? 0 : ATEX_ENOMEM;
}

void atex_fmf_context_set_case_sensitive(atex_fmf_context *ctx, bool sensitive)
{
	ctx->fold = !sensitive;
}

bool atex_fmf_context_case_sensitive(const atex_fmf_context *ctx)
{
	return !ctx->fold;
}

void atex_fmf_context_free(atex_fmf_context *ctx)
{
	size_t i;

	if (!ctx)
		return;
	for (i = 0; i < ctx->n_dims; i++)
		dimension_clear(&ctx->dims[i]);
	free(ctx->dims);
	free(ctx);
}

/* A dimension name must be usable in a rule: [\w-]+. */
static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (len && name_len(name, name + len) == len)
		return 0;
	return atex_error_set(ATEX_EINVAL,
			      "invalid context dimension name '%s': expected "
			      "letters, digits, '_' or '-'",
			      name);
}

/* Names a new, empty dimension. */
static int dimension_start(struct dimension *d, const char *name)
{
	int rc = check_name(name);

	if (rc)
		return rc;
	d->name = atex_strdup(name);
	if (!d->name)
		return ATEX_ENOMEM;
	d->name_n = strlen(name);
	return 0;
}

/* Adds `value` (taking it) to a dimension under construction unless an
 * equal ContextValue is already there. */
static int add_value(struct dimension *d, char *value, size_t *cap)
{
	size_t i;

	for (i = 0; i < d->n_values; i++) {
		if (same_value(d->values[i], value)) {
			free(value);
			return 0;
		}
	}
	if (d->n_values == *cap) {
		size_t n = *cap ? 2 * *cap : 4;
		char **v = realloc(d->values, n * sizeof(*v));

		if (!v) {
			free(value);
			return atex_error_oom();
		}
		d->values = v;
		*cap = n;
	}
	d->values[d->n_values++] = value;
	return 0;
}

/* Puts the finished dimension `d` (taken) into the context, replacing one
 * of the same name in place. */
static int put_dimension(atex_fmf_context *ctx, struct dimension *d)
{
	size_t i;

	for (i = 0; i < ctx->n_dims; i++) {
		if (strcmp(ctx->dims[i].name, d->name) == 0) {
			dimension_clear(&ctx->dims[i]);
			ctx->dims[i] = *d;
			return 0;
		}
	}
	if (ctx->n_dims == ctx->cap) {
		size_t n = ctx->cap ? 2 * ctx->cap : 8;
		struct dimension *dims = realloc(ctx->dims, n * sizeof(*dims));

		if (!dims) {
			dimension_clear(d);
			return atex_error_oom();
		}
		ctx->dims = dims;
		ctx->cap = n;
	}
	ctx->dims[ctx->n_dims++] = *d;
	return 0;
}

int atex_fmf_context_set(atex_fmf_context *ctx, const char *dimension,
			 const char *values)
{
	struct dimension d = {0};
	const char *p = values, *comma;
	size_t cap = 0;
	int rc;

	if (!values)
		return atex_error_set(ATEX_EINVAL,
				      "context dimension '%s' has no value",
				      dimension);
	rc = dimension_start(&d, dimension);
	if (rc)
		return rc;
	do {
		struct span v;
		char *value;

		comma = strchr(p, ',');
		v.p = p;
		v.n = comma ? (size_t)(comma - p) : strlen(p);
		v = strip(v);
		value = atex_strndup(v.p, v.n);
		rc = value ? add_value(&d, value, &cap) : ATEX_ENOMEM;
		if (rc)
			goto fail;
		if (comma)
			p = comma + 1;
	} while (comma);
	return put_dimension(ctx, &d);
fail:
	dimension_clear(&d);
	return rc;
}

int atex_fmf_context_set_arg(atex_fmf_context *ctx, const char *assignment)
{
	const char *eq = strchr(assignment, '=');
	struct span name;
	char *dim;
	int rc;

	if (!eq || eq == assignment)
		return atex_error_set(ATEX_EINVAL,
				      "invalid context '%s': expected "
				      "NAME=VALUE[,VALUE...]",
				      assignment);
	name = strip((struct span){assignment, (size_t)(eq - assignment)});
	dim = atex_strndup(name.p, name.n);
	if (!dim)
		return ATEX_ENOMEM;
	rc = atex_fmf_context_set(ctx, dim, eq + 1);
	free(dim);
	if (rc == ATEX_EINVAL)
		atex_error_prefix("invalid context '%s'", assignment);
	return rc;
}

/* A scalar context value from JSON, as Python's str() writes it ("True",
 * "1.5"); NULL (with an error) for anything else. */
static char *json_value_text(const char *dimension, const json_t *v)
{
	char *text;

	if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v)) {
		atex_error_set(ATEX_EINVAL,
			       "context dimension '%s': a value must be a "
			       "string, number or boolean, got '%s'",
			       dimension, atex_py_type(v));
		return NULL;
	}
	text = atex_py_str(v);
	if (!text)
		atex_error_oom();
	return text;
}

int atex_fmf_context_set_json(atex_fmf_context *ctx, const char *dimension,
			      const json_t *value)
{
	struct dimension d = {0};
	size_t cap = 0, i, n = 1;
	int rc;

	rc = dimension_start(&d, dimension);
	if (rc)
		return rc;
	if (json_is_array(value))
		n = json_array_size(value);
	for (i = 0; i < n; i++) {
		const json_t *v =
			json_is_array(value) ? json_array_get(value, i) : value;
		char *text = json_value_text(dimension, v);

		rc = text ? add_value(&d, text, &cap) : atex_error_last_code();
		if (rc)
			goto fail;
	}
	return put_dimension(ctx, &d);
fail:
	dimension_clear(&d);
	return rc;
}

bool atex_fmf_context_has(const atex_fmf_context *ctx, const char *dimension)
{
	struct span name = {dimension, strlen(dimension)};

	return find_dim(ctx, name) != NULL;
}

json_t *atex_fmf_context_to_json(const atex_fmf_context *ctx)
{
	json_t *obj = json_object(), *list;
	size_t i, j;

	if (!obj)
		return NULL;
	for (i = 0; i < ctx->n_dims; i++) {
		const struct dimension *d = &ctx->dims[i];

		list = json_array();
		if (!list || json_object_set_new(obj, d->name, list))
			goto fail;
		for (j = 0; j < d->n_values; j++) {
			if (json_array_append_new(list,
						  json_string(d->values[j])))
				goto fail;
		}
	}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

static int copy_dimension(struct dimension *to, const struct dimension *from)
{
	size_t i;

	*to = (struct dimension){0};
	to->name = atex_strdup(from->name);
	to->name_n = from->name_n;
	if (from->n_values)
		to->values = atex_calloc(from->n_values, sizeof(char *));
	if (!to->name || (from->n_values && !to->values))
		goto fail;
	for (; to->n_values < from->n_values; to->n_values++) {
		i = to->n_values;
		to->values[i] = atex_strdup(from->values[i]);
		if (!to->values[i])
			goto fail;
	}
	return 0;
fail:
	dimension_clear(to);
	return ATEX_ENOMEM;
}

int atex_fmf_context_copy(atex_fmf_context **out, const atex_fmf_context *ctx)
{
	atex_fmf_context *c;
	int rc;

	*out = NULL;
	rc = atex_fmf_context_new(&c);
	if (rc)
		return rc;
	if (ctx->n_dims) {
		c->dims = atex_calloc(ctx->n_dims, sizeof(*c->dims));
		if (!c->dims)
			goto fail;
		c->cap = ctx->n_dims;
	}
	for (; c->n_dims < ctx->n_dims; c->n_dims++) {
		if (copy_dimension(&c->dims[c->n_dims], &ctx->dims[c->n_dims]))
			goto fail;
	}
	c->fold = ctx->fold;
	*out = c;
	return 0;
fail:
	atex_fmf_context_free(c);
	return ATEX_ENOMEM;
}
