/*
 * filter.c - fmf filter expressions ("tag: foo & tier: 1 | tier: 2").
 *
 * Behaves like fmf 1.7's utils.filter(filter, data, sensitive=True,
 * regexp=True, name=NAME) as Tree.prune calls it, where a FilterError
 * makes the node not match. The language, as the reference parses it:
 *
 *  - the expression is split into clauses on "|" (OR), each clause into
 *    literals on "&" (AND); a backslash before either ("\|", "\&") keeps
 *    it, and the backslash is dropped afterwards, so "tag: Tier(1\|2)" is
 *    the regex Tier(1|2). Whitespace around the operators is dropped,
 *    whitespace at the very start and end of the expression is not
 *    (" tier: 1" asks for a key " tier", which no node has). There is no
 *    precedence beyond "&" binding tighter than "|", and no parentheses;
 *  - a literal is "key: value": the key is everything before the first
 *    colon, kept as it is (so "tier : 1" asks for "tier "); whitespace
 *    after the colon is dropped, trailing whitespace is kept. A `name`
 *    key is the data's `name` key like any other, not the node name;
 *  - a literal without a colon is a regular expression searched anywhere
 *    in the node name (re.search: "/a/b" matches "/a/bc" and "/x/a/b",
 *    "b$" names ending in b). One that does not match makes its clause
 *    false before the clause's keys are looked at. Without a node name
 *    (name NULL, as tmt evaluates plan filters) the reference raises
 *    FilterError, so a filter with such a literal in any clause matches
 *    nothing;
 *  - a value is split on "," into alternatives (any may match); an
 *    alternative starting with "-" is negated: it matches when no data item
 *    matches the rest (so "tag: -x" matches an empty list);
 *  - an alternative is a Python regular expression matched against the
 *    whole of each data item: re.match("^" + alt + "$", item), so a final
 *    newline in the item is allowed and matching is case sensitive;
 *  - data items are Python str() of the key's value: each item of a list,
 *    or the one scalar: true -> "True", null -> "None", 1.5 -> "1.5", a
 *    nested list or object -> its Python repr;
 *  - every key a clause names must be present in the data once the
 *    clause's name literals have matched: the reference evaluates all
 *    clauses eagerly, so one missing key in such a clause raises
 *    FilterError and the node does not match, even when another clause
 *    would match ("/a | tag: x" drops "/a/b" when it has no tag);
 *  - an empty expression matches everything.
 *
 * The reference only notices a bad regular expression when it first uses
 * it (and then fails the whole run with re.error); here every alternative
 * is compiled in atex_fmf_filter_new, which returns ATEX_ERULE quoting the
 * expression. Whitespace here is the ASCII set plus U+001C..U+001F and
 * U+0085, U+00A0 (Python's \s also has the other Unicode spaces).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atex/fmf.h"
#include "util/pyre.h"
#include "util/util.h"

struct alt {
	bool negated;
	struct atex_pyre *re;
};

struct literal {
	char *key;		/* NULL: a node name search */
	struct atex_pyre *name; /* the search when key is NULL */
	struct alt *alts;
	size_t n_alts;
};

struct clause {
	struct literal *lits;
	size_t n_lits;
};

struct atex_fmf_filter {
	char *expression;
	struct clause *clauses;
	size_t n_clauses;
};

/* ------------------------------------------------------------------------
 * Splitting, with Python's re.split(r"\s*SEP\s*") whitespace rules.
 */

/* Length of the whitespace character at `p` (Python \s), or 0. */
static size_t space_len(const char *p)
{
	unsigned char c = (unsigned char)p[0];

	if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f))
		return 1;
	if (c == 0xc2 &&
	    ((unsigned char)p[1] == 0x85 || (unsigned char)p[1] == 0xa0))
		return 2;
	return 0;
}

/*
 * Splits `text` on `sep` (unless preceded by a backslash when `escapable`),
 * dropping whitespace on both sides of each separator. The pieces are
 * malloc'ed strings pushed to `out`.
 */
static int split(struct atex_vec *out, const char *text, char sep,
		 bool escapable)
{
	size_t start = 0, i = 0;
	size_t ws = (size_t)-1; /* start of the whitespace run before i */
	char *piece;

	for (;;) {
		size_t n = space_len(text + i);
		bool at_sep = text[i] == sep &&
			      !(escapable && i > 0 && text[i - 1] == '\\');

		if (text[i] && !at_sep) {
			if (n && ws == (size_t)-1)
				ws = i;
			else if (!n)
				ws = (size_t)-1;
			i += n ? n : 1;
			continue;
		}
		if (!text[i])
			ws = (size_t)-1;
		piece = atex_strndup(text + start,
				     (ws == (size_t)-1 ? i : ws) - start);
		if (!piece || atex_vec_push(out, piece)) {
			free(piece);
			return ATEX_ENOMEM;
		}
		if (!text[i])
			return 0;
		for (i++; (n = space_len(text + i)); i += n)
			;
		start = i;
		ws = (size_t)-1;
	}
}

/* Drops the backslash of "\|" and "\&" in place. */
static void unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (r[0] == '\\' && (r[1] == '|' || r[1] == '&'))
			r++;
		*w++ = *r;
	}
	*w = '\0';
}

/* ------------------------------------------------------------------------
 * Compiling.
 */

static void literal_fini(struct literal *lit)
{
	for (size_t i = 0; i < lit->n_alts; i++)
		atex_pyre_free(lit->alts[i].re);
	atex_pyre_free(lit->name);
	free(lit->alts);
	free(lit->key);
}

void atex_fmf_filter_free(atex_fmf_filter *filter)
{
	if (!filter)
		return;
	for (size_t c = 0; c < filter->n_clauses; c++) {
		for (size_t l = 0; l < filter->clauses[c].n_lits; l++)
			literal_fini(&filter->clauses[c].lits[l]);
		free(filter->clauses[c].lits);
	}
	free(filter->clauses);
	free(filter->expression);
	free(filter);
}

/*
 * The value part of "key: value" after the colon, as the reference's
 * r"\s*(.*)$" takes it: leading whitespace dropped, no newline inside
 * except one final newline, which is left out. NULL when it does not match.
 */
static char *literal_value(const char *rest)
{
	const char *nl;
	size_t n;

	while ((n = space_len(rest)))
		rest += n;
	nl = strchr(rest, '\n');
	if (nl && nl[1])
		return NULL;
	return atex_strndup(rest, nl ? (size_t)(nl - rest) : strlen(rest));
}

static int compile_alt(struct alt *alt, const char *text)
{
	char *pattern;
	int rc;

	alt->negated = text[0] == '-';
	if (alt->negated)
		text++;
	pattern = atex_sprintf("^%s$", text);
	if (!pattern)
		return ATEX_ENOMEM;
	rc = atex_pyre_compile(&alt->re, pattern, 0);
	free(pattern);
	return rc;
}

/* Splits "key: A, -B" into the key and compiled alternatives. */
static int compile_literal(struct literal *lit, char *text)
{
	struct atex_vec alts = ATEX_VEC_INIT;
	const char *colon = strchr(text, ':');
	char *value = NULL;
	int rc;

	if (colon)
		value = literal_value(colon + 1);
	if (!value) {
		/* No "key: value": a search in the node name, as fmf 1.4+
		 * reads it. */
		unescape(text);
		return atex_pyre_compile(&lit->name, text, 0);
	}
	lit->key = atex_strndup(text, (size_t)(colon - text));
	if (!lit->key) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	unescape(lit->key);
	unescape(value);
	if ((rc = split(&alts, value, ',', false)))
		goto out;
	lit->alts = atex_calloc(alts.len, sizeof(*lit->alts));
	if (!lit->alts) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < alts.len; i++) {
		if ((rc = compile_alt(&lit->alts[i], alts.items[i])))
			goto out;
		lit->n_alts++;
	}
out:
	atex_vec_free_all(&alts, free);
	free(value);
	return rc;
}

static int compile_clause(struct clause *cl, const char *text)
{
	struct atex_vec lits = ATEX_VEC_INIT;
	int rc;

	if ((rc = split(&lits, text, '&', true)))
		goto out;
	cl->lits = atex_calloc(lits.len, sizeof(*cl->lits));
	if (!cl->lits) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < lits.len; i++) {
		rc = compile_literal(&cl->lits[i], lits.items[i]);
		cl->n_lits++;
		if (rc)
			goto out;
	}
out:
	atex_vec_free_all(&lits, free);
	return rc;
}

static int compile_expression(atex_fmf_filter *f)
{
	struct atex_vec clauses = ATEX_VEC_INIT;
	int rc;

	/* An empty expression matches everything: no clauses at all. */
	if (!f->expression[0])
		return 0;
	if ((rc = split(&clauses, f->expression, '|', true)))
		goto out;
	f->clauses = atex_calloc(clauses.len, sizeof(*f->clauses));
	if (!f->clauses) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < clauses.len; i++) {
		rc = compile_clause(&f->clauses[i], clauses.items[i]);
		f->n_clauses++;
		if (rc)
			goto out;
	}
out:
	atex_vec_free_all(&clauses, free);
	return rc;
}

int atex_fmf_filter_new(atex_fmf_filter **out, const char *expression)
{
	atex_fmf_filter *f;
	int rc;

	*out = NULL;
	if (!expression)
		expression = "";
	f = atex_calloc(1, sizeof(*f));
	if (!f)
		return ATEX_ENOMEM;
	f->expression = atex_strdup(expression);
	if (!f->expression) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	rc = compile_expression(f);
	if (rc == ATEX_ERULE)
		atex_error_prefix("invalid filter '%s'", expression);
	if (rc)
		goto out;
	*out = f;
	f = NULL;
out:
	atex_fmf_filter_free(f);
	return rc;
}

/* ------------------------------------------------------------------------
 * Python str() and repr() of metadata values.
 */

static int py_repr(struct atex_buf *b, const json_t *v);

/* repr(float): the shortest digits that read back, Python's layout. */
static int py_float(struct atex_buf *b, double d)
{
	char buf[40], digits[24];
	int prec, exp, ndig = 0;
	char *e;

	if (isnan(d))
		return atex_buf_puts(b, "nan");
	if (isinf(d))
		return atex_buf_puts(b, d < 0 ? "-inf" : "inf");
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* buf is "-d.ddde+XX": collect the digits and the exponent. */
	for (e = buf; *e && *e != 'e'; e++)
		if (*e >= '0' && *e <= '9')
			digits[ndig++] = *e;
	digits[ndig] = '\0';
	exp = atoi(e + 1);
	if (d < 0 || (d == 0 && signbit(d)))
		atex_buf_putc(b, '-');
	while (ndig > 1 && digits[ndig - 1] == '0')
		digits[--ndig] = '\0';
	if (exp < -4 || exp >= 16) {
		atex_buf_putc(b, digits[0]);
		if (ndig > 1)
			atex_buf_printf(b, ".%s", digits + 1);
		return atex_buf_printf(b, "e%c%02d", exp < 0 ? '-' : '+',
				       abs(exp));
	}
	if (exp < 0) {
		atex_buf_puts(b, "0.");
		for (int i = 0; i < -exp - 1; i++)
			atex_buf_putc(b, '0');
		return atex_buf_puts(b, digits);
	}
	for (int i = 0; i <= exp; i++)
		atex_buf_putc(b, i < ndig ? digits[i] : '0');
	return atex_buf_printf(b, ".%s",
			       ndig > exp + 1 ? digits + exp + 1 : "0");
}

/* repr(str): quotes and escapes as Python picks them. */
static int py_repr_str(struct atex_buf *b, const char *s)
{
	char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';

	atex_buf_putc(b, q);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\' || *p == (unsigned char)q)
			atex_buf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			atex_buf_puts(b, "\\n");
		else if (*p == '\r')
			atex_buf_puts(b, "\\r");
		else if (*p == '\t')
			atex_buf_puts(b, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			atex_buf_printf(b, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 &&
			 (p[1] < 0xa1 || p[1] == 0xad))
			atex_buf_printf(b, "\\x%02x", *++p);
		else
			atex_buf_putc(b, (char)*p);
	}
	return atex_buf_putc(b, q);
}

static int py_repr_container(struct atex_buf *b, const json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;
	bool first = true;

	if (json_is_array(v)) {
		atex_buf_putc(b, '[');
		json_array_foreach(v, i, item)
		{
			if (i)
				atex_buf_puts(b, ", ");
			py_repr(b, item);
		}
		return atex_buf_putc(b, ']');
	}
	atex_buf_putc(b, '{');
	json_object_foreach((json_t *)v, key, item)
	{
		if (!first)
			atex_buf_puts(b, ", ");
		first = false;
		py_repr_str(b, key);
		atex_buf_puts(b, ": ");
		py_repr(b, item);
	}
	return atex_buf_putc(b, '}');
}

static int py_repr(struct atex_buf *b, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return py_repr_str(b, json_string_value(v));
	case JSON_INTEGER:
		return atex_buf_printf(b, "%" JSON_INTEGER_FORMAT,
				       json_integer_value(v));
	case JSON_REAL:
		return py_float(b, json_real_value(v));
	case JSON_TRUE:
		return atex_buf_puts(b, "True");
	case JSON_FALSE:
		return atex_buf_puts(b, "False");
	case JSON_NULL:
		return atex_buf_puts(b, "None");
	default:
		return py_repr_container(b, v);
	}
}

/* str(v): a string is itself, anything else its repr. */
static char *py_str(const json_t *v)
{
	struct atex_buf b = ATEX_BUF_INIT;

	if (json_is_string(v))
		return atex_strdup(json_string_value(v));
	if (py_repr(&b, v)) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

/* ------------------------------------------------------------------------
 * Matching.
 */

/* The strings a literal's key stands for in the data (the reference's
 * list of str()). */
static int data_items(struct atex_vec *out, const json_t *data, const char *key)
{
	const json_t *v;
	size_t i;
	char *s;

	v = json_object_get(data, key);
	if (json_is_array(v)) {
		for (i = 0; i < json_array_size(v); i++) {
			s = py_str(json_array_get(v, i));
			if (!s || atex_vec_push(out, s)) {
				free(s);
				return ATEX_ENOMEM;
			}
		}
		return 0;
	}
	s = py_str(v);
	return s && !atex_vec_push(out, s) ? 0 : ATEX_ENOMEM;
}

/* 1 when any item matches the alternative's pattern, 0, or < 0. */
static int alt_hits(const struct alt *alt, const struct atex_vec *items)
{
	for (size_t i = 0; i < items->len; i++) {
		int rc = atex_pyre_search(alt->re, items->items[i]);

		if (rc)
			return rc;
	}
	return 0;
}

static int literal_match(const struct literal *lit, const json_t *data)
{
	struct atex_vec items = ATEX_VEC_INIT;
	int rc;

	if ((rc = data_items(&items, data, lit->key)))
		goto out;
	for (size_t i = 0; i < lit->n_alts; i++) {
		rc = alt_hits(&lit->alts[i], &items);
		if (rc < 0)
			goto out;
		if (rc != lit->alts[i].negated) {
			rc = 1;
			goto out;
		}
	}
	rc = 0;
out:
	atex_vec_free_all(&items, free);
	return rc;
}

/* What evaluating a clause may find besides true and false: the
 * reference's FilterError, which makes the whole filter not match. */
enum { FILTER_ERROR = 2 };

/*
 * 1 when the clause matches, 0 when not, FILTER_ERROR, or < 0. Its name
 * searches come first: one that fails ends the clause before its keys are
 * looked at, as the reference returns from the clause at that literal and
 * checks the keys only after all literals.
 */
static int clause_match(const struct clause *cl, const json_t *data,
			const char *name)
{
	size_t l;
	int rc;

	for (l = 0; l < cl->n_lits; l++) {
		if (cl->lits[l].key)
			continue;
		if (!name)
			return FILTER_ERROR;
		if ((rc = atex_pyre_search(cl->lits[l].name, name)) != 1)
			return rc;
	}
	for (l = 0; l < cl->n_lits; l++)
		if (cl->lits[l].key && !json_object_get(data, cl->lits[l].key))
			return FILTER_ERROR;
	for (l = 0; l < cl->n_lits; l++) {
		if (!cl->lits[l].key)
			continue;
		if ((rc = literal_match(&cl->lits[l], data)) != 1)
			return rc;
	}
	return 1;
}

int atex_fmf_filter_match(const atex_fmf_filter *filter, const json_t *data,
			  const char *name)
{
	int match = 0;

	if (!filter->n_clauses)
		return 1;
	if (!json_is_object(data))
		return 0;
	/* Every clause, even after one matched: a later one may raise. */
	for (size_t c = 0; c < filter->n_clauses; c++) {
		int rc = clause_match(&filter->clauses[c], data, name);

		if (rc < 0)
			return rc;
		if (rc == FILTER_ERROR)
			return 0;
		match |= rc;
	}
	return match;
}
