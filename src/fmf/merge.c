/*
 * merge.c - fmf's attribute merging: how a child's data is laid over its
 * parent's, and how adjust rules change a node. The suffixes are those of
 * the reference fmf: `key+` extends (numbers add, strings and lists
 * concatenate, dicts merge recursively, a dict over a list of dicts updates
 * every item and a list of dicts over a dict multiplies it), `key+<`
 * prepends, `key-` reduces (numbers subtract, strings lose regex matches,
 * lists lose items, dicts lose keys), `key~` substitutes with
 * /PATTERN/REPLACEMENT/, `key-~` drops what matches a regex.
 *
 * Python semantics leak through (True + 1 == 2, "x" + 1 is a TypeError), so
 * the small Python value model is here too.
 *
 * Values are shared by reference between nodes instead of deep-copied as
 * the reference does: that keeps a 10,000-node tree cheap. The price is one
 * rule, kept by own_member(): a nested container is copied before it is
 * changed unless this merge holds the only reference to it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmf/fmf_private.h"
#include "util/pyre.h"
#include "util/util.h"

const char *atex_merge_where(char *buf, size_t size,
			     const struct atex_merge *m, const json_t *source,
			     const char *key)
{
	if (source == m->own && m->raws) {
		for (size_t i = m->n_raws; i-- > 0;)
			if (json_object_get(m->raws[i], key))
				return atex_locate(buf, size, m->locator,
						   m->hint, m->raws[i], key);
	}
	return atex_locate(buf, size, m->locator, m->hint, source, key);
}

const char *atex_py_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "dict";
	case JSON_ARRAY: return "list";
	case JSON_STRING: return "str";
	case JSON_INTEGER: return "int";
	case JSON_REAL: return "float";
	case JSON_TRUE:
	case JSON_FALSE: return "bool";
	case JSON_NULL: return "NoneType";
	}
	return "object";
}

/* Python counts bool as a number (a subclass of int). */
static bool is_number(const json_t *v)
{
	return json_is_number(v) || json_is_boolean(v);
}

static bool is_intlike(const json_t *v)
{
	return json_is_integer(v) || json_is_boolean(v);
}

static double number_value(const json_t *v)
{
	if (json_is_boolean(v))
		return json_is_true(v) ? 1.0 : 0.0;
	return json_number_value(v);
}

static json_int_t int_value(const json_t *v)
{
	if (json_is_boolean(v))
		return json_is_true(v) ? 1 : 0;
	return json_integer_value(v);
}

bool atex_py_equal(const json_t *a, const json_t *b)
{
	if (a == b)
		return true;
	if (is_number(a) && is_number(b)) {
		if (is_intlike(a) && is_intlike(b))
			return int_value(a) == int_value(b);
		return number_value(a) == number_value(b);
	}
	if (json_typeof(a) != json_typeof(b))
		return false;
	if (json_is_string(a))
		return json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b),
			       json_string_length(a));
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!atex_py_equal(json_array_get(a, i),
					   json_array_get(b, i)))
				return false;
		return true;
	}
	if (json_is_object(a)) {
		const char *key;
		json_t *value;

		if (json_object_size(a) != json_object_size(b))
			return false;
		json_object_foreach((json_t *)a, key, value) {
			json_t *other = json_object_get(b, key);

			if (!other || !atex_py_equal(value, other))
				return false;
		}
		return true;
	}
	return true; /* null == null */
}

/* Python's repr() of a float: the shortest text that reads back the same,
 * in exponent form outside 1e-4 <= |x| < 1e16, always with a dot or an
 * exponent. */
static void py_float(struct atex_buf *b, double x)
{
	char digits[64];
	int prec, exp10;

	if (isnan(x)) {
		atex_buf_puts(b, "nan");
		return;
	}
	if (isinf(x)) {
		atex_buf_puts(b, x < 0 ? "-inf" : "inf");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(digits, sizeof(digits), "%.*e", prec - 1, x);
		if (strtod(digits, NULL) == x)
			break;
	}
	exp10 = atoi(strchr(digits, 'e') + 1);
	if (exp10 < -4 || exp10 >= 16) {
		/* Python writes 1e+16 and 1.5e-05: mantissa without a
		 * trailing ".0", exponent with at least two digits. */
		char *e = strchr(digits, 'e');

		*e = '\0';
		atex_buf_printf(b, "%se%c%02d", digits, exp10 < 0 ? '-' : '+',
				abs(exp10));
		return;
	}
	snprintf(digits, sizeof(digits), "%.*f",
		 prec - 1 - exp10 > 0 ? prec - 1 - exp10 : 0, x);
	atex_buf_puts(b, digits);
	if (!strchr(digits, '.'))
		atex_buf_puts(b, ".0");
}

/* Python's repr() of a str, close enough for messages and for regex
 * matching against str(list): single quotes unless the text has one. */
static void py_repr_str(struct atex_buf *b, const char *s)
{
	char quote = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';

	atex_buf_putc(b, quote);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\' || c == (unsigned char)quote)
			atex_buf_printf(b, "\\%c", c);
		else if (c == '\n')
			atex_buf_puts(b, "\\n");
		else if (c == '\t')
			atex_buf_puts(b, "\\t");
		else if (c == '\r')
			atex_buf_puts(b, "\\r");
		else if (c < 0x20 || c == 0x7f)
			atex_buf_printf(b, "\\x%02x", c);
		else
			atex_buf_putc(b, (char)c);
	}
	atex_buf_putc(b, quote);
}

static void py_format(struct atex_buf *b, const json_t *v, bool repr)
{
	const char *key;
	json_t *item;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		if (repr)
			py_repr_str(b, json_string_value(v));
		else
			atex_buf_put(b, json_string_value(v),
				     json_string_length(v));
		break;
	case JSON_INTEGER:
		atex_buf_printf(b, "%" JSON_INTEGER_FORMAT,
				json_integer_value(v));
		break;
	case JSON_REAL:
		py_float(b, json_real_value(v));
		break;
	case JSON_TRUE:
		atex_buf_puts(b, "True");
		break;
	case JSON_FALSE:
		atex_buf_puts(b, "False");
		break;
	case JSON_NULL:
		atex_buf_puts(b, "None");
		break;
	case JSON_ARRAY:
		atex_buf_putc(b, '[');
		json_array_foreach(v, i, item) {
			if (i)
				atex_buf_puts(b, ", ");
			py_format(b, item, true);
		}
		atex_buf_putc(b, ']');
		break;
	case JSON_OBJECT:
		atex_buf_putc(b, '{');
		i = 0;
		json_object_foreach((json_t *)v, key, item) {
			if (i++)
				atex_buf_puts(b, ", ");
			py_repr_str(b, key);
			atex_buf_puts(b, ": ");
			py_format(b, item, true);
		}
		atex_buf_putc(b, '}');
		break;
	}
}

char *atex_py_str(const json_t *value)
{
	struct atex_buf b = ATEX_BUF_INIT;

	py_format(&b, value, false);
	return atex_buf_detach(&b);
}

/* ------------------------------------------------------------------------
 * Merging.
 */

static int merge_error(const struct atex_merge *m, const json_t *source,
		       const char *key, const char *fmt, ...)
	ATEX_PRINTF(4, 5);

static int merge_error(const struct atex_merge *m, const json_t *source,
		       const char *key, const char *fmt, ...)
{
	char where[512], why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	atex_merge_where(where, sizeof(where), m, source, key);
	return atex_error_set(ATEX_EMERGE,
			      "%sMergeError: key '%s' in %s: %s", where, key,
			      m->node, why);
}

/* Whether `v` is held by one reference only (ours): then nobody else can
 * see it and it may change in place. Other threads may be taking and
 * dropping references to shared values meanwhile, hence the atomic read. */
static bool only_ours(const json_t *v)
{
	return __atomic_load_n(&v->refcount, __ATOMIC_ACQUIRE) == 1;
}

/*
 * Makes data[key] (a container) safe to change: when something else may
 * hold a reference to it, it is replaced by a shallow copy first. Returns
 * the member to change, or NULL on allocation failure.
 */
static json_t *own_member(json_t *data, const char *key)
{
	json_t *v = json_object_get(data, key);
	json_t *copy;

	if (only_ours(v))
		return v;
	copy = json_copy(v);
	if (!copy || json_object_set_new(data, key, copy) < 0) {
		atex_error_oom();
		return NULL;
	}
	return copy;
}

/* Sets data[key] = value (a new reference is taken). */
static int set_member(json_t *data, const char *key, json_t *value)
{
	if (json_object_set(data, key, value) < 0)
		return atex_error_oom();
	return 0;
}

static int set_member_new(json_t *data, const char *key, json_t *value)
{
	if (!value || json_object_set_new(data, key, value) < 0)
		return atex_error_oom();
	return 0;
}

/* Python's `a + b` for the values + can join; NULL with *why set when
 * Python would raise TypeError. */
static json_t *py_add(const json_t *a, const json_t *b, char *why, size_t size)
{
	if (is_number(a) && is_number(b)) {
		json_int_t sum;

		if (is_intlike(a) && is_intlike(b) &&
		    !__builtin_add_overflow(int_value(a), int_value(b), &sum))
			return json_integer(sum);
		return json_real(number_value(a) + number_value(b));
	}
	if (json_is_string(a) && json_is_string(b)) {
		struct atex_buf s = ATEX_BUF_INIT;
		json_t *joined;

		atex_buf_put(&s, json_string_value(a), json_string_length(a));
		atex_buf_put(&s, json_string_value(b), json_string_length(b));
		joined = json_stringn(atex_buf_cstr(&s), s.len);
		atex_buf_free(&s);
		return joined;
	}
	if (json_is_array(a) && json_is_array(b)) {
		json_t *joined = json_copy((json_t *)a);

		if (joined && json_array_extend(joined, (json_t *)b) < 0) {
			json_decref(joined);
			return NULL;
		}
		return joined;
	}
	if (json_is_string(a) || json_is_array(a))
		snprintf(why, size, "can only concatenate %s (not \"%s\") to %s",
			 atex_py_type(a), atex_py_type(b), atex_py_type(a));
	else
		snprintf(why, size,
			 "unsupported operand type(s) for +: '%s' and '%s'",
			 atex_py_type(a), atex_py_type(b));
	return NULL;
}

/* A dict merged into a list (or a list of dicts into a dict) needs dicts. */
static int not_a_dict(const struct atex_merge *m, const json_t *source,
		      const char *skey, const json_t *item)
{
	char *s = atex_py_str(item);
	int rc = merge_error(m, source, skey, "item '%s' must be a dictionary",
			     s ? s : "?");

	free(s);
	return rc;
}

static int merge_plus(json_t *data, const char *key, json_t *value,
		      bool prepend, const json_t *source, const char *skey,
		      const struct atex_merge *m)
{
	json_t *old = json_object_get(data, key);
	json_t *result;
	char why[256] = "";
	size_t i;
	int rc;

	/* A value for a key the parent lacks is taken as written, suffixes
	 * in nested keys included (fmf keeps them for later adjust rules). */
	if (!old)
		return set_member(data, key, value);

	if (json_is_array(old) && json_is_object(value)) {
		json_t *list = own_member(data, key);

		if (!list)
			return ATEX_ENOMEM;
		for (i = 0; i < json_array_size(list); i++) {
			json_t *item = json_array_get(list, i);
			json_t *copy;

			if (!json_is_object(item))
				return not_a_dict(m, source, skey, item);
			copy = only_ours(item) ? json_incref(item)
					       : json_copy(item);
			if (!copy)
				return atex_error_oom();
			rc = atex_fmf_merge(copy, value, m);
			if (rc == 0 && json_array_set(list, i, copy) < 0)
				rc = atex_error_oom();
			json_decref(copy);
			if (rc < 0)
				return rc;
		}
		return 0;
	}

	if (json_is_object(old) && json_is_array(value)) {
		json_t *list = json_array();
		json_t *item;

		if (!list)
			return atex_error_oom();
		json_array_foreach(value, i, item) {
			json_t *copy;

			if (!json_is_object(item)) {
				json_decref(list);
				return not_a_dict(m, source, skey, item);
			}
			copy = json_copy(old);
			rc = copy ? atex_fmf_merge(copy, item, m)
				  : atex_error_oom();
			if (rc == 0 && json_array_append(list, copy) < 0)
				rc = atex_error_oom();
			json_decref(copy);
			if (rc < 0) {
				json_decref(list);
				return rc;
			}
		}
		return set_member_new(data, key, list);
	}

	if (json_is_object(old) && json_is_object(value)) {
		json_t *dict = own_member(data, key);

		return dict ? atex_fmf_merge(dict, value, m) : ATEX_ENOMEM;
	}

	result = prepend ? py_add(value, old, why, sizeof(why))
			 : py_add(old, value, why, sizeof(why));
	if (!result) {
		if (!why[0])
			return atex_error_oom();
		return merge_error(m, source, skey, "%s", why);
	}
	return set_member_new(data, key, result);
}

static int merge_minus(json_t *data, const char *key, json_t *value,
		       const json_t *source, const char *skey,
		       const struct atex_merge *m)
{
	json_t *old = json_object_get(data, key);
	json_t *item;
	size_t i;
	int rc;

	if (!old)
		return 0;
	if (is_number(old) && is_number(value)) {
		json_int_t diff;

		if (is_intlike(old) && is_intlike(value) &&
		    !__builtin_sub_overflow(int_value(old), int_value(value),
					    &diff))
			return set_member_new(data, key, json_integer(diff));
		return set_member_new(data, key,
				      json_real(number_value(old) -
						number_value(value)));
	}
	if (json_is_string(old) && json_is_string(value)) {
		char *out = NULL;

		rc = atex_pyre_sub_str(&out, json_string_value(value), "",
				       json_string_value(old));
		if (rc < 0)
			return atex_error_prefix("%s: key '%s' in %s", "regex",
						 skey, m->node);
		rc = set_member_new(data, key, json_string(out));
		free(out);
		return rc;
	}
	if (json_is_array(old) && json_is_array(value)) {
		json_t *kept = json_array();

		if (!kept)
			return atex_error_oom();
		json_array_foreach(old, i, item) {
			bool drop = false;
			json_t *other;
			size_t j;

			json_array_foreach(value, j, other)
				if ((drop = atex_py_equal(item, other)))
					break;
			if (!drop && json_array_append(kept, item) < 0) {
				json_decref(kept);
				return atex_error_oom();
			}
		}
		return set_member_new(data, key, kept);
	}
	if (json_is_object(old) && json_is_array(value)) {
		json_t *dict = own_member(data, key);

		if (!dict)
			return ATEX_ENOMEM;
		json_array_foreach(value, i, item)
			if (json_is_string(item))
				json_object_del(dict, json_string_value(item));
		return 0;
	}
	return merge_error(m, source, skey, "wrong type (%s minus %s)",
			   atex_py_type(old), atex_py_type(value));
}

/*
 * Splits "/PATTERN/REPLACEMENT/" (any first character is the delimiter,
 * which a backslash escapes) as fmf's split_pattern_replacement does.
 */
static int split_pattern(char **pattern, char **replacement, const char *src,
			 const json_t *source, const char *skey,
			 const struct atex_merge *m)
{
	struct atex_buf part[2] = {ATEX_BUF_INIT, ATEX_BUF_INIT};
	size_t len = strlen(src), n = 0;
	char delim = src[0];
	const char *p;
	int rc = 0;

	if (len < 3 || delim == '\\')
		return merge_error(m, source, skey,
				   "'%s' is not /PATTERN/REPLACEMENT/", src);
	for (p = src + 1; *p; p++) {
		if (*p == '\\' && p[1] == delim) {
			atex_buf_putc(&part[n], delim);
			p++;
		} else if (*p == delim) {
			if (++n == 2)
				break;
		} else {
			atex_buf_putc(&part[n], *p);
		}
	}
	if (n != 2 || p[1] != '\0') {
		rc = merge_error(m, source, skey,
				 "'%s' is not /PATTERN/REPLACEMENT/", src);
		goto out;
	}
	*pattern = atex_buf_detach(&part[0]);
	*replacement = atex_buf_detach(&part[1]);
	if (!*pattern || !*replacement) {
		free(*pattern);
		free(*replacement);
		rc = atex_error_oom();
	}
out:
	atex_buf_free(&part[0]);
	atex_buf_free(&part[1]);
	return rc;
}

/* Applies one /PATTERN/REPLACEMENT/ to data[key]. */
static int substitute_one(json_t *data, const char *key, const char *spec,
			  const json_t *source, const char *skey,
			  const struct atex_merge *m)
{
	json_t *old = json_object_get(data, key);
	char *pattern = NULL, *repl = NULL, *out = NULL;
	json_t *result = NULL, *item;
	size_t i;
	int rc;

	rc = split_pattern(&pattern, &repl, spec, source, skey, m);
	if (rc < 0)
		return rc;
	if (json_is_string(old)) {
		rc = atex_pyre_sub_str(&out, pattern, repl,
				       json_string_value(old));
		if (rc == 0)
			result = json_string(out);
	} else if (json_is_array(old)) {
		result = json_array();
		json_array_foreach(old, i, item) {
			if (!json_is_string(item)) {
				rc = merge_error(m, source, skey,
						 "not a string");
				break;
			}
			free(out);
			out = NULL;
			rc = atex_pyre_sub_str(&out, pattern, repl,
					       json_string_value(item));
			if (rc < 0)
				break;
			json_array_append_new(result, json_string(out));
		}
	} else {
		rc = merge_error(m, source, skey, "wrong type (%s)",
				 atex_py_type(old));
	}
	if (rc == 0)
		rc = set_member_new(data, key, result);
	else
		json_decref(result);
	if (rc == ATEX_ERULE)
		atex_error_prefix("key '%s' in %s", skey, m->node);
	free(pattern);
	free(repl);
	free(out);
	return rc;
}

/* A string or a list of strings, as ~ and -~ accept them. */
static int each_pattern(const json_t *value, size_t i, const char **out)
{
	const json_t *item = json_is_array(value) ? json_array_get(value, i)
						  : (i == 0 ? value : NULL);

	*out = NULL;
	if (!item)
		return 0;
	if (!json_is_string(item))
		return -1;
	*out = json_string_value(item);
	return 1;
}

static int merge_regexp(json_t *data, const char *key, json_t *value,
			const json_t *source, const char *skey,
			const struct atex_merge *m)
{
	const char *spec;
	int more, rc;

	if (!json_object_get(data, key))
		return 0;
	for (size_t i = 0; (more = each_pattern(value, i, &spec)) != 0; i++) {
		if (more < 0)
			return merge_error(m, source, skey,
					   "patterns must be strings");
		rc = substitute_one(data, key, spec, source, skey, m);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* 1 when str(item) matches any of the patterns in `value`. */
static int matches_any(const json_t *item, const json_t *value,
		       const json_t *source, const char *skey,
		       const struct atex_merge *m)
{
	const char *pattern;
	char *text = atex_py_str(item);
	int more, rc = 0;

	if (!text)
		return ATEX_ENOMEM;
	for (size_t i = 0; (more = each_pattern(value, i, &pattern)) != 0; i++) {
		if (more < 0) {
			rc = merge_error(m, source, skey,
					 "patterns must be strings");
			break;
		}
		rc = atex_pyre_search_str(pattern, text);
		if (rc != 0)
			break;
	}
	free(text);
	if (rc < 0 && rc != ATEX_EMERGE)
		atex_error_prefix("key '%s' in %s", skey, m->node);
	return rc;
}

static int merge_minus_regexp(json_t *data, const char *key, json_t *value,
			      const json_t *source, const char *skey,
			      const struct atex_merge *m)
{
	json_t *old = json_object_get(data, key);
	json_t *item;
	const char *k;
	void *tmp;
	size_t i;
	int rc;

	if (!old)
		return 0;
	if (json_is_string(old)) {
		rc = matches_any(old, value, source, skey, m);
		return rc > 0 ? set_member_new(data, key, json_string("")) : rc;
	}
	if (json_is_array(old)) {
		json_t *kept = json_array();

		if (!kept)
			return atex_error_oom();
		json_array_foreach(old, i, item) {
			rc = matches_any(item, value, source, skey, m);
			if (rc == 0 && json_array_append(kept, item) < 0)
				rc = atex_error_oom();
			if (rc < 0) {
				json_decref(kept);
				return rc;
			}
		}
		return set_member_new(data, key, kept);
	}
	if (json_is_object(old)) {
		json_t *dict = own_member(data, key);

		if (!dict)
			return ATEX_ENOMEM;
		json_object_foreach_safe(dict, tmp, k, item) {
			json_t *name = json_string(k);

			rc = name ? matches_any(name, value, source, skey, m)
				  : atex_error_oom();
			json_decref(name);
			if (rc < 0)
				return rc;
			if (rc > 0)
				json_object_del(dict, k);
		}
		return 0;
	}
	return merge_error(m, source, skey, "wrong type (%s)",
			   atex_py_type(old));
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && !memcmp(s + len - n, suffix, n);
}

/* Python's str.rstrip(chars): the length of `s` without trailing chars
 * from the set. */
static size_t rstrip_len(const char *s, size_t len, const char *chars)
{
	while (len && strchr(chars, s[len - 1]))
		len--;
	return len;
}

enum merge_op { OP_SET, OP_PLUS, OP_PREPEND, OP_MINUS_REGEXP, OP_MINUS,
		OP_REGEXP };

/* The operation a key's suffix asks for, in the reference's order of
 * checks, and the length of the bare key (every trailing suffix character
 * is stripped, as rstrip does). */
static enum merge_op key_op(const char *key, size_t len, size_t *bare)
{
	if (ends_with(key, len, "+")) {
		*bare = rstrip_len(key, len, "+");
		return OP_PLUS;
	}
	if (ends_with(key, len, "+<")) {
		*bare = rstrip_len(key, len, "+<");
		return OP_PREPEND;
	}
	if (ends_with(key, len, "-~")) {
		*bare = rstrip_len(key, len, "-~");
		return OP_MINUS_REGEXP;
	}
	if (ends_with(key, len, "-")) {
		*bare = rstrip_len(key, len, "-");
		return OP_MINUS;
	}
	if (ends_with(key, len, "~")) {
		*bare = rstrip_len(key, len, "~");
		return OP_REGEXP;
	}
	*bare = len;
	return OP_SET;
}

int atex_fmf_merge(json_t *data, const json_t *source,
		   const struct atex_merge *m)
{
	struct atex_merge inner = *m;
	const char *skey;
	json_t *value;
	char small[256];
	int rc = 0;

	/* Control and child keys are skipped at the top level only. */
	inner.skip_adjust_keys = false;
	inner.skip_child_keys = false;

	json_object_foreach((json_t *)source, skey, value) {
		size_t len = strlen(skey), bare;
		enum merge_op op = key_op(skey, len, &bare);
		char *key = small;

		if (m->skip_child_keys && skey[0] == '/')
			continue;
		if (m->skip_adjust_keys &&
		    (!strcmp(skey, "when") || !strcmp(skey, "because") ||
		     !strcmp(skey, "continue")))
			continue;
		if (op == OP_SET) {
			rc = set_member(data, skey, value);
			if (rc < 0)
				return rc;
			continue;
		}
		if (bare >= sizeof(small) && !(key = atex_malloc(bare + 1)))
			return ATEX_ENOMEM;
		memcpy(key, skey, bare);
		key[bare] = '\0';
		switch (op) {
		case OP_PLUS:
		case OP_PREPEND:
			rc = merge_plus(data, key, value, op == OP_PREPEND,
					source, skey, &inner);
			break;
		case OP_MINUS:
			rc = merge_minus(data, key, value, source, skey, &inner);
			break;
		case OP_MINUS_REGEXP:
			rc = merge_minus_regexp(data, key, value, source, skey,
						&inner);
			break;
		case OP_REGEXP:
			rc = merge_regexp(data, key, value, source, skey, &inner);
			break;
		case OP_SET:
			break;
		}
		if (key != small)
			free(key);
		if (rc < 0)
			return rc;
	}
	return 0;
}
