/*
 * pyre.c - Python `re` semantics (str patterns) on top of PCRE2.
 *
 * fmf users write Python regular expressions in filters, adjust rules and
 * node names, so atex must accept what Python accepts, reject what it
 * rejects, and give the same results. PCRE2 is close to Python but not
 * equal; a pattern is therefore first translated (translate_*), then
 * compiled with PCRE2_UTF | PCRE2_UCP (Unicode \w \d \s \b, as Python's
 * str patterns) | PCRE2_MATCH_INVALID_UTF (a subject that is not valid UTF-8
 * never crashes or errors: invalid bytes simply never match), newline LF
 * (Python's `.` and `$` only know "\n") and PCRE2_ALT_CIRCUMFLEX (Python's
 * multiline `^` also matches after a final newline).
 *
 * Differences bridged by the translation:
 *  - \Z (Python: end of string only) becomes \z; \v is the character
 *    U+000B in Python but a class in PCRE2; \xhh needs exactly two hex
 *    digits; \uXXXX and \UXXXXXXXX become \x{...}; \0 and three-digit
 *    escapes are octal, other \N and \NN are group references (never octal
 *    as in PCRE2); {,n} means {0,n} (PCRE2 10.42 takes it literally);
 *  - an escaped ASCII letter Python does not know (\e \h \K \p \Q \R \X
 *    ...) is an error, as in Python 3.7+, instead of a PCRE2 feature;
 *  - `[` inside a class is a literal (no POSIX [:alpha:] classes);
 *  - \s also matches U+001C..U+001F as Python's str.isspace() does;
 *  - PCRE2-only group syntax is rejected: (?|, (?R), (?1), (?&n), (?<n>,
 *    (?'n', (?P>n), (?C, (*VERB);
 *  - inline flags: `u` is dropped (the default), `L` is an error, `a`
 *    (ASCII) is honoured only at the start of the pattern, where Python
 *    3.11 requires global flags to be anyway;
 *  - re.sub() templates are parsed here with Python's rules (see
 *    parse_template), not PCRE2's substitute syntax, and empty matches
 *    follow Python 3.7+ (an empty match right after a non-empty one is
 *    replaced too).
 *
 * Differences left (rare in metadata; documented instead of bridged):
 *  - \N{NAME} named characters are rejected;
 *  - a scoped (?a:...) is rejected; (?x) is honoured by PCRE2 but an
 *    escape inside a verbose-mode comment is checked only when (?x) leads
 *    the pattern;
 *  - PCRE2 accepts some patterns Python refuses: lookbehinds with
 *    alternatives of different fixed lengths, repeated quantifiers
 *    (a{2}{3}), ranges such as [\w-z]; group names are ASCII, at most 32
 *    bytes (Python allows Unicode identifiers of any length);
 *  - \S inside a class ([\S]) still holds U+001C..U+001F; \w follows
 *    PCRE2 10.42 (letters, numbers, underscore), which equals Python's
 *    str.isalnum() or "_" for all but a few code points;
 *  - compile error messages are PCRE2's (with the position in the
 *    original pattern), not Python's wording.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "pyre.h"
#include "util.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

static bool running_on_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
	return RUNNING_ON_VALGRIND != 0;
#else
	return false;
#endif
}

struct atex_pyre {
	pcre2_code *code;
	char *pattern; /* the original, for messages and the cache key */
	int flags;
	uint32_t ngroups;
	atomic_int refs; /* the owner, plus the cache and its borrowers */
};

/* ------------------------------------------------------------------------
 * Pattern translation.
 */

struct tr {
	const char *pat;
	size_t pos;	     /* position in `pat` being translated */
	struct atex_buf out; /* the PCRE2 pattern */
	size_t *map;	     /* out offset -> pat offset, for messages */
	size_t map_cap;
	bool ascii;	  /* (?a) seen at the start */
	bool verbose;	  /* (?x) seen at the start */
	size_t flags_end; /* end of the leading global flags */
};

static int tr_error(const struct tr *t, size_t pos, const char *what)
{
	return atex_error_set(ATEX_ERULE,
			      "bad regular expression '%s': %s at position %zu",
			      t->pat, what, pos);
}

/* Appends PCRE2 text that stands for the Python text at t->pos. */
static int emit(struct tr *t, const char *s, size_t len)
{
	size_t need = t->out.len + len + 1;

	if (need > t->map_cap) {
		size_t cap = need * 2;
		size_t *m = realloc(t->map, cap * sizeof(*m));

		if (!m)
			return atex_error_oom();
		t->map = m;
		t->map_cap = cap;
	}
	for (size_t i = 0; i < len; i++)
		t->map[t->out.len + i] = t->pos;
	t->map[t->out.len + len] = t->pos;
	return atex_buf_put(&t->out, s, len);
}

static int emits(struct tr *t, const char *s)
{
	return emit(t, s, strlen(s));
}

/* Emits `s` for the next `consumed` bytes of the Python pattern. */
static int emit_adv(struct tr *t, const char *s, size_t consumed)
{
	int rc = emits(t, s);

	t->pos += consumed;
	return rc;
}

static bool is_octal(char c)
{
	return c >= '0' && c <= '7';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ascii_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* \xhh, \uhhhh, \Uhhhhhhhh: exactly `n` hex digits after the letter. */
static int tr_hex(struct tr *t, int n)
{
	const char *p = t->pat + t->pos + 2;
	unsigned long v = 0;
	char text[32];

	for (int i = 0; i < n; i++) {
		int h = atex_hex_digit(p[i]);

		if (h < 0)
			return tr_error(t, t->pos, "incomplete escape");
		v = v * 16 + (unsigned long)h;
	}
	if (v > 0x10ffff)
		return tr_error(t, t->pos, "bad escape (code point too big)");
	snprintf(text, sizeof(text), "\\x{%lx}", v);
	return emit_adv(t, text, 2 + (size_t)n);
}

/* An octal escape of `n` digits starting at `p`. */
static int tr_octal(struct tr *t, const char *p, size_t n, size_t esc_len)
{
	unsigned v = 0;
	char text[32];

	for (size_t i = 0; i < n; i++)
		v = v * 8 + (unsigned)(p[i] - '0');
	if (v > 0377)
		return tr_error(t, t->pos,
				"octal escape value outside 0-0o377");
	snprintf(text, sizeof(text), "\\x{%x}", v);
	return emit_adv(t, text, esc_len);
}

/* \0.., \1.. outside a class: octal or a group reference, Python's way. */
static int tr_digits(struct tr *t)
{
	const char *p = t->pat + t->pos + 1;
	char text[32];
	int group;

	if (p[0] == '0') {
		size_t n = 1;

		while (n < 3 && is_octal(p[n]))
			n++;
		return tr_octal(t, p, n, n + 1);
	}
	if (is_digit(p[1])) {
		if (is_octal(p[0]) && is_octal(p[1]) && is_octal(p[2]))
			return tr_octal(t, p, 3, 4);
		group = (p[0] - '0') * 10 + (p[1] - '0');
		snprintf(text, sizeof(text), "\\g{%d}", group);
		return emit_adv(t, text, 3);
	}
	snprintf(text, sizeof(text), "\\g{%d}", p[0] - '0');
	return emit_adv(t, text, 2);
}

/* Python's \s also holds the separators U+001C..U+001F. */
#define PY_SPACE_EXTRA "\\x{1c}-\\x{1f}"

/* One escape sequence at t->pos (the backslash), inside a class or not. */
static int tr_escape(struct tr *t, bool in_class)
{
	char c = t->pat[t->pos + 1];
	char text[4] = {'\\', c, 0, 0};

	if (c == '\0')
		return tr_error(t, t->pos, "bad escape (end of pattern)");
	switch (c) {
	case 'x':
		return tr_hex(t, 2);
	case 'u':
		return tr_hex(t, 4);
	case 'U':
		return tr_hex(t, 8);
	case 'v':
		return emit_adv(t, "\\x{b}", 2);
	case 'Z':
		if (in_class)
			break;
		return emit_adv(t, "\\z", 2);
	case 's':
		if (in_class)
			return emit_adv(t, "\\s" PY_SPACE_EXTRA, 2);
		return emit_adv(t, "[\\s" PY_SPACE_EXTRA "]", 2);
	case 'S':
		return emit_adv(
			t, in_class ? "\\S" : "[^\\s" PY_SPACE_EXTRA "]", 2);
	case 'A':
	case 'B':
		if (in_class)
			break;
		/* fall through */
	case 'a':
	case 'b':
	case 'd':
	case 'D':
	case 'f':
	case 'n':
	case 'r':
	case 't':
	case 'w':
	case 'W':
		return emit_adv(t, text, 2);
	default:
		if (is_digit(c) && !in_class)
			return tr_digits(t);
		if (is_octal(c)) {
			const char *p = t->pat + t->pos + 1;
			size_t n = 1;

			while (n < 3 && is_octal(p[n]))
				n++;
			return tr_octal(t, p, n, n + 1);
		}
		if (is_digit(c) || is_ascii_letter(c))
			break;
		/* Any other character stands for itself. */
		return emit_adv(t, text, 2);
	}
	snprintf(text, sizeof(text), "\\%c", c);
	return atex_error_set(ATEX_ERULE,
			      "bad regular expression '%s': bad escape %s at "
			      "position %zu",
			      t->pat, text, t->pos);
}

/* A character class from `[` to its `]`. */
static int tr_class(struct tr *t)
{
	size_t start = t->pos;
	int rc;

	t->pos++;
	if ((rc = emits(t, "[")))
		return rc;
	if (t->pat[t->pos] == '^') {
		t->pos++;
		if ((rc = emits(t, "^")))
			return rc;
	}
	/* A `]` right at the start is a literal. */
	if (t->pat[t->pos] == ']') {
		t->pos++;
		if ((rc = emits(t, "\\]")))
			return rc;
	}
	for (;;) {
		char c = t->pat[t->pos];

		if (c == '\0')
			return tr_error(t, start, "unterminated character set");
		if (c == ']') {
			t->pos++;
			return emits(t, "]");
		}
		if (c == '\\') {
			rc = tr_escape(t, true);
		} else if (c == '[') {
			t->pos++;
			rc = emits(t, "\\[");
		} else {
			rc = emit(t, &t->pat[t->pos], 1);
			t->pos++;
		}
		if (rc)
			return rc;
	}
}

/* Copies `n` bytes of the pattern unchanged. */
static int tr_copy(struct tr *t, size_t n)
{
	int rc = emit(t, &t->pat[t->pos], n);

	t->pos += n;
	return rc;
}

/*
 * Inline flags "(?aiLmsux)" (global) or "(?imsx-imsx:" (scoped) at t->pos.
 * Global flags may only lead the pattern, as in Python 3.11.
 */
static int tr_flags(struct tr *t)
{
	struct atex_buf keep = ATEX_BUF_INIT;
	bool at_start = t->pos == t->flags_end;
	size_t start = t->pos;
	size_t i = t->pos + 2;
	bool ascii = false;
	bool global;
	int rc = 0;

	for (; t->pat[i] && strchr("aiLmsux-", t->pat[i]); i++) {
		char c = t->pat[i];

		if (c == 'L') {
			rc = tr_error(t, start,
				      "bad inline flag: cannot use "
				      "'L' flag with a str pattern");
			goto out;
		}
		if (c == 'a')
			ascii = true;
		else if (c != 'u' && (rc = atex_buf_putc(&keep, c)))
			goto out;
	}
	if (t->pat[i] != ')' && t->pat[i] != ':') {
		rc = tr_error(t, start, "missing -, : or )");
		goto out;
	}
	global = t->pat[i] == ')';
	if (global && strchr(atex_buf_cstr(&keep), '-')) {
		rc = tr_error(t, i, "missing :");
		goto out;
	}
	if (global && !at_start) {
		rc = tr_error(t, start,
			      "global flags not at the start of the "
			      "expression");
		goto out;
	}
	if (ascii && !global) {
		rc = tr_error(t, start, "scoped (?a:...) is not supported");
		goto out;
	}
	t->ascii |= ascii;
	if (global && strchr(atex_buf_cstr(&keep), 'x'))
		t->verbose = true;
	t->pos = i + 1;
	if (global)
		t->flags_end = t->pos;
	/* "(?a)" or "(?u)" alone leave nothing for PCRE2. */
	if (global && keep.len == 0)
		goto out;
	if ((rc = emits(t, "(?")) || (rc = emits(t, atex_buf_cstr(&keep))))
		goto out;
	rc = emit(t, global ? ")" : ":", 1);
out:
	atex_buf_free(&keep);
	return rc;
}

/* A group opening "(" at t->pos. */
static int tr_group(struct tr *t)
{
	const char *p = t->pat + t->pos;

	if (p[1] == '*')
		return tr_error(t, t->pos + 1, "nothing to repeat");
	if (p[1] != '?')
		return tr_copy(t, 1);
	switch (p[2]) {
	case '#': {
		const char *end = strchr(p, ')');

		if (!end)
			return tr_error(t, t->pos,
					"missing ), unterminated "
					"comment");
		t->pos += (size_t)(end - p) + 1;
		return 0;
	}
	case ':':
	case '=':
	case '!':
	case '>':
	case '(':
		return tr_copy(t, 3);
	case '<':
		if (p[3] == '=' || p[3] == '!')
			return tr_copy(t, 4);
		break;
	case 'P':
		if (p[3] == '<' || p[3] == '=')
			return tr_copy(t, 4);
		break;
	default:
		if (p[2] && strchr("aiLmsux-", p[2]))
			return tr_flags(t);
		break;
	}
	return tr_error(t, t->pos + 1, "unknown extension");
}

/* "{" at t->pos: Python's {,n} is {0,n}; anything else is copied. */
static int tr_brace(struct tr *t)
{
	const char *p = t->pat + t->pos;
	size_t n = 2;

	if (p[1] != ',' || !is_digit(p[2]))
		return tr_copy(t, 1);
	while (is_digit(p[n]))
		n++;
	if (p[n] != '}')
		return tr_copy(t, 1);
	return emit_adv(t, "{0", 1);
}

/* A verbose-mode comment, "#" to the end of the line, is copied as is. */
static int tr_comment(struct tr *t)
{
	size_t n = strcspn(t->pat + t->pos, "\n");

	return tr_copy(t, n);
}

static int translate(struct tr *t)
{
	int rc = 0;

	while (!rc && t->pat[t->pos]) {
		char c = t->pat[t->pos];

		if (c == '\\')
			rc = tr_escape(t, false);
		else if (c == '[')
			rc = tr_class(t);
		else if (c == '(')
			rc = tr_group(t);
		else if (c == '{')
			rc = tr_brace(t);
		else if (c == '#' && t->verbose)
			rc = tr_comment(t);
		else
			rc = tr_copy(t, 1);
	}
	if (!rc && !t->out.ptr)
		rc = atex_buf_puts(&t->out, "");
	return rc;
}

/* ------------------------------------------------------------------------
 * Compiling and matching.
 */

static int pcre_compile_error(const struct tr *t, int err, PCRE2_SIZE off)
{
	PCRE2_UCHAR msg[256];
	size_t pos = strlen(t->pat);

	pcre2_get_error_message(err, msg, sizeof(msg));
	if (off < t->out.len)
		pos = t->map[off];
	return atex_error_set(ATEX_ERULE,
			      "bad regular expression '%s': %s at position %zu",
			      t->pat, (const char *)msg, pos);
}

static int compile_translated(struct atex_pyre *re, struct tr *t)
{
	uint32_t opts =
		PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ALT_CIRCUMFLEX;
	pcre2_compile_context *cc;
	PCRE2_SIZE off = 0;
	int err = 0;
	int rc = 0;

	if (!t->ascii)
		opts |= PCRE2_UCP;
	if (re->flags & ATEX_PYRE_IGNORECASE)
		opts |= PCRE2_CASELESS;
	cc = pcre2_compile_context_create(NULL);
	if (!cc)
		return atex_error_oom();
	pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
	re->code = pcre2_compile((PCRE2_SPTR)t->out.ptr, t->out.len, opts, &err,
				 &off, cc);
	if (!re->code) {
		rc = pcre_compile_error(t, err, off);
		goto out;
	}
	/* JIT is an optimisation: when unavailable, the interpreter runs.
	 * Under valgrind it is skipped: valgrind cannot follow generated
	 * code and reports false errors in it. */
	if (!running_on_valgrind())
		pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
	pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &re->ngroups);
out:
	pcre2_compile_context_free(cc);
	return rc;
}

int atex_pyre_compile(struct atex_pyre **out, const char *pattern, int flags)
{
	struct tr t = {.pat = pattern, .out = ATEX_BUF_INIT};
	struct atex_pyre *re;
	int rc;

	*out = NULL;
	re = atex_calloc(1, sizeof(*re));
	if (!re)
		return ATEX_ENOMEM;
	atomic_init(&re->refs, 1);
	re->flags = flags;
	re->pattern = atex_strdup(pattern);
	if (!re->pattern) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	if ((rc = translate(&t)) || (rc = compile_translated(re, &t)))
		goto out;
	*out = re;
	re = NULL;
out:
	atex_pyre_free(re);
	atex_buf_free(&t.out);
	free(t.map);
	return rc;
}

void atex_pyre_free(struct atex_pyre *re)
{
	if (!re || atomic_fetch_sub(&re->refs, 1) != 1)
		return;
	pcre2_code_free(re->code);
	free(re->pattern);
	free(re);
}

static int match_error(const struct atex_pyre *re, int rc)
{
	PCRE2_UCHAR msg[256];

	pcre2_get_error_message(rc, msg, sizeof(msg));
	return atex_error_set(ATEX_ERROR, "regular expression '%s': %s",
			      re->pattern, (const char *)msg);
}

/* 1 on a match, 0 on none, negative on an error; groups are not needed. */
static int match_bool(const struct atex_pyre *re, const char *subject,
		      uint32_t opts)
{
	pcre2_match_data *md;
	int rc;

	md = pcre2_match_data_create(1, NULL);
	if (!md)
		return atex_error_oom();
	rc = pcre2_match(re->code, (PCRE2_SPTR)subject, strlen(subject), 0,
			 opts, md, NULL);
	pcre2_match_data_free(md);
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc < 0)
		return match_error(re, rc);
	return 1;
}

int atex_pyre_search(const struct atex_pyre *re, const char *subject)
{
	return match_bool(re, subject, 0);
}

int atex_pyre_fullmatch(const struct atex_pyre *re, const char *subject)
{
	return match_bool(re, subject, PCRE2_ANCHORED | PCRE2_ENDANCHORED);
}

/* ------------------------------------------------------------------------
 * re.sub() templates.
 *
 * A template is parsed once into literal text and group references, with
 * Python's rules (re._parser.parse_template): \g<N> and \g<name>, \N and
 * \NN groups, \0 and three-digit octal escapes, the escapes \a \b \f \n \r
 * \t \v \\; any other escaped ASCII letter is an error; any other escaped
 * character keeps its backslash.
 */

struct tpl_item {
	int group;  /* -1 for literal text */
	size_t off; /* literal: offset in tpl.lit */
	size_t len;
};

struct tpl {
	struct atex_buf lit;
	struct tpl_item *items;
	size_t n, cap;
	const char *repl;
	const struct atex_pyre *re;
};

static int tpl_error(const struct tpl *tp, size_t pos, const char *what)
{
	return atex_error_set(ATEX_ERULE,
			      "bad replacement template '%s' for '%s': %s at "
			      "position %zu",
			      tp->repl, tp->re->pattern, what, pos);
}

static int tpl_push(struct tpl *tp, int group, size_t off, size_t len)
{
	/* Adjacent literal text is merged into one item. */
	if (group < 0 && tp->n && tp->items[tp->n - 1].group < 0) {
		tp->items[tp->n - 1].len += len;
		return 0;
	}
	if (tp->n == tp->cap) {
		size_t cap = tp->cap ? tp->cap * 2 : 8;
		struct tpl_item *it = realloc(tp->items, cap * sizeof(*it));

		if (!it)
			return atex_error_oom();
		tp->items = it;
		tp->cap = cap;
	}
	tp->items[tp->n++] = (struct tpl_item){group, off, len};
	return 0;
}

static int tpl_literal(struct tpl *tp, const char *s, size_t len)
{
	size_t off = tp->lit.len;
	int rc = atex_buf_put(&tp->lit, s, len);

	return rc ? rc : tpl_push(tp, -1, off, len);
}

/* A code point (octal escapes reach U+00FF) as UTF-8. */
static int tpl_codepoint(struct tpl *tp, unsigned v)
{
	char s[2];

	if (v < 0x80) {
		s[0] = (char)v;
		return tpl_literal(tp, s, 1);
	}
	s[0] = (char)(0xc0 | (v >> 6));
	s[1] = (char)(0x80 | (v & 0x3f));
	return tpl_literal(tp, s, 2);
}

static int tpl_group(struct tpl *tp, int group, size_t pos)
{
	char what[64];

	if (group < 0 || (uint32_t)group > tp->re->ngroups) {
		snprintf(what, sizeof(what), "invalid group reference %d",
			 group);
		return tpl_error(tp, pos, what);
	}
	return tpl_push(tp, group, 0, 0);
}

static bool is_ident(const char *s, size_t len)
{
	if (!len || is_digit(s[0]))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c >= 0x80 || c == '_' || is_digit((char)c) ||
		      is_ascii_letter((char)c)))
			return false;
	}
	return true;
}

/* \g<...> at `i` (the backslash); returns the length consumed or < 0. */
static int tpl_named(struct tpl *tp, size_t i, size_t *used)
{
	const char *p = tp->repl + i + 2;
	const char *end;
	char *name = NULL;
	size_t len;
	int group;
	int rc;

	if (*p != '<')
		return tpl_error(tp, i + 2, "missing <");
	end = strchr(p + 1, '>');
	if (!end)
		return tpl_error(tp, i + 3, "missing >, unterminated name");
	len = (size_t)(end - p - 1);
	if (!len)
		return tpl_error(tp, i + 3, "missing group name");
	*used = len + 4;
	if (strspn(p + 1, "0123456789") >= len) {
		if (len > 9)
			return tpl_group(tp, -1, i + 3);
		return tpl_group(tp, atoi(p + 1), i + 3);
	}
	name = atex_strndup(p + 1, len);
	if (!name)
		return ATEX_ENOMEM;
	if (!is_ident(name, len)) {
		rc = tpl_error(tp, i + 3, "bad character in group name");
		goto out;
	}
	group = pcre2_substring_number_from_name(tp->re->code,
						 (PCRE2_SPTR)name);
	if (group < 0) {
		rc = tpl_error(tp, i + 3, "unknown group name");
		goto out;
	}
	rc = tpl_group(tp, group, i + 3);
out:
	free(name);
	return rc;
}

/* \d... at `i`: a group of one or two digits, or a three-digit octal. */
static int tpl_digits(struct tpl *tp, size_t i, size_t *used)
{
	const char *p = tp->repl + i + 1;
	unsigned v = 0;
	size_t n = 1;

	if (p[0] == '0') {
		while (n < 3 && is_octal(p[n]))
			n++;
	} else if (is_digit(p[1]) && is_octal(p[0]) && is_octal(p[1]) &&
		   is_octal(p[2])) {
		n = 3;
	} else {
		*used = is_digit(p[1]) ? 3 : 2;
		v = (unsigned)(p[0] - '0');
		if (*used == 3)
			v = v * 10 + (unsigned)(p[1] - '0');
		return tpl_group(tp, (int)v, i + 1);
	}
	for (size_t k = 0; k < n; k++)
		v = v * 8 + (unsigned)(p[k] - '0');
	if (v > 0377)
		return tpl_error(tp, i,
				 "octal escape value outside of range "
				 "0-0o377");
	*used = n + 1;
	return tpl_codepoint(tp, v);
}

static int tpl_escape(struct tpl *tp, size_t i, size_t *used)
{
	static const char from[] = "abfnrtv\\";
	static const char to[] = "\a\b\f\n\r\t\v\\";
	char c = tp->repl[i + 1];
	const char *e;
	char what[32];

	*used = 2;
	if (c == '\0')
		return tpl_error(tp, i, "bad escape (end of pattern)");
	if (c == 'g')
		return tpl_named(tp, i, used);
	if (is_digit(c))
		return tpl_digits(tp, i, used);
	e = strchr(from, c);
	if (e)
		return tpl_literal(tp, &to[e - from], 1);
	if (is_ascii_letter(c)) {
		snprintf(what, sizeof(what), "bad escape \\%c", c);
		return tpl_error(tp, i, what);
	}
	return tpl_literal(tp, tp->repl + i, 2);
}

static int tpl_parse(struct tpl *tp)
{
	size_t i = 0;
	int rc = 0;

	while (!rc && tp->repl[i]) {
		size_t used;

		if (tp->repl[i] == '\\') {
			rc = tpl_escape(tp, i, &used);
			i += used;
			continue;
		}
		used = strcspn(tp->repl + i, "\\");
		rc = tpl_literal(tp, tp->repl + i, used);
		i += used;
	}
	return rc;
}

static void tpl_free(struct tpl *tp)
{
	atex_buf_free(&tp->lit);
	free(tp->items);
}

/* Appends the expansion of the template for the match in `ov`. */
static int tpl_expand(struct atex_buf *b, const struct tpl *tp,
		      const char *subject, const PCRE2_SIZE *ov)
{
	int rc = 0;

	for (size_t k = 0; !rc && k < tp->n; k++) {
		const struct tpl_item *it = &tp->items[k];
		PCRE2_SIZE s, e;

		if (it->group < 0) {
			rc = atex_buf_put(b, tp->lit.ptr + it->off, it->len);
			continue;
		}
		s = ov[2 * it->group];
		e = ov[2 * it->group + 1];
		/* A group that did not take part expands to nothing. */
		if (s == PCRE2_UNSET || e < s)
			continue;
		rc = atex_buf_put(b, subject + s, e - s);
	}
	return rc;
}

/* The offset of the character after the one at `pos` (invalid bytes count
 * as one character each). */
static size_t next_char(const char *s, size_t len, size_t pos)
{
	pos++;
	while (pos < len && ((unsigned char)s[pos] & 0xc0) == 0x80)
		pos++;
	return pos;
}

/*
 * Python 3.7+ semantics: after an empty match, a non-empty match may still
 * start at the same place (tried anchored there); failing that the search
 * moves on one character, where an empty match counts again. Done by hand
 * rather than with PCRE2_NOTEMPTY_ATSTART alone, so the JIT and the
 * interpreter behave the same on subjects that are not valid UTF-8.
 */
static int sub_loop(struct atex_buf *b, const struct atex_pyre *re,
		    const struct tpl *tp, const char *subject,
		    pcre2_match_data *md)
{
	size_t len = strlen(subject);
	size_t pos = 0, copied = 0;
	uint32_t opts = 0;
	int rc;

	while (pos <= len) {
		PCRE2_SIZE *ov;

		rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, pos, opts,
				 md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH && opts) {
			if (pos == len)
				break;
			pos = next_char(subject, len, pos);
			opts = 0;
			continue;
		}
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0)
			return match_error(re, rc);
		ov = pcre2_get_ovector_pointer(md);
		if ((rc = atex_buf_put(b, subject + copied, ov[0] - copied)) ||
		    (rc = tpl_expand(b, tp, subject, ov)))
			return rc;
		copied = ov[1];
		pos = ov[1];
		opts = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED
				      : 0;
	}
	return atex_buf_put(b, subject + copied, len - copied);
}

int atex_pyre_sub(char **out, const struct atex_pyre *re, const char *repl,
		  const char *subject)
{
	struct tpl tp = {.lit = ATEX_BUF_INIT, .repl = repl, .re = re};
	struct atex_buf b = ATEX_BUF_INIT;
	pcre2_match_data *md = NULL;
	int rc;

	*out = NULL;
	if ((rc = tpl_parse(&tp)))
		goto out;
	md = pcre2_match_data_create_from_pattern(re->code, NULL);
	if (!md) {
		rc = atex_error_oom();
		goto out;
	}
	if ((rc = sub_loop(&b, re, &tp, subject, md)))
		goto out;
	*out = atex_buf_detach(&b);
	if (!*out)
		rc = atex_error_oom();
out:
	pcre2_match_data_free(md);
	atex_buf_free(&b);
	tpl_free(&tp);
	return rc;
}

/* ------------------------------------------------------------------------
 * The process-wide cache (documented in pyre.h).
 *
 * Direct-mapped: a pattern's hash picks one slot; a different pattern
 * hashing there replaces it. Entries are reference counted so a pattern
 * replaced while another thread still matches with it stays alive until
 * that thread is done. Compiling happens outside the lock.
 */

#define CACHE_SLOTS 256

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct atex_pyre *cache[CACHE_SLOTS];

static size_t cache_slot(const char *pattern)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)pattern; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % CACHE_SLOTS;
}

/* A borrowed reference from the cache, or NULL. Called with the lock. */
static struct atex_pyre *cache_peek(size_t slot, const char *pattern)
{
	struct atex_pyre *re = cache[slot];

	if (!re || strcmp(re->pattern, pattern))
		return NULL;
	atomic_fetch_add(&re->refs, 1);
	return re;
}

/* Gets a reference to the compiled `pattern`; release with atex_pyre_free. */
static int cache_get(struct atex_pyre **out, const char *pattern)
{
	size_t slot = cache_slot(pattern);
	struct atex_pyre *re, *old = NULL;
	int rc;

	pthread_mutex_lock(&cache_lock);
	*out = cache_peek(slot, pattern);
	pthread_mutex_unlock(&cache_lock);
	if (*out)
		return 0;
	if ((rc = atex_pyre_compile(&re, pattern, 0)))
		return rc;
	pthread_mutex_lock(&cache_lock);
	*out = cache_peek(slot, pattern);
	if (!*out) {
		old = cache[slot];
		atomic_fetch_add(&re->refs, 1);
		cache[slot] = re;
		*out = re;
		re = NULL;
	}
	pthread_mutex_unlock(&cache_lock);
	atex_pyre_free(old);
	atex_pyre_free(re);
	return 0;
}

void atex_pyre_cache_clear(void)
{
	struct atex_pyre *old[CACHE_SLOTS];

	pthread_mutex_lock(&cache_lock);
	memcpy(old, cache, sizeof(old));
	memset(cache, 0, sizeof(cache));
	pthread_mutex_unlock(&cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		atex_pyre_free(old[i]);
}

int atex_pyre_search_str(const char *pattern, const char *subject)
{
	struct atex_pyre *re;
	int rc = cache_get(&re, pattern);

	if (rc)
		return rc;
	rc = atex_pyre_search(re, subject);
	atex_pyre_free(re);
	return rc;
}

int atex_pyre_sub_str(char **out, const char *pattern, const char *repl,
		      const char *subject)
{
	struct atex_pyre *re;
	int rc;

	*out = NULL;
	if ((rc = cache_get(&re, pattern)))
		return rc;
	rc = atex_pyre_sub(out, re, repl, subject);
	atex_pyre_free(re);
	return rc;
}
