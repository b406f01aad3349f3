/*
 * duration.c - the fmf/tmt `duration` syntax ("5m", "1h 30m", "5m *2").
 *
 * tmt validates durations with a regular expression and then sums the terms
 * (tmt.utils.duration_to_seconds). Rather than embed a regex engine, this is
 * a small hand-written scanner that accepts exactly the language that
 * expression accepts, worked out case by case:
 *
 *  - a term is either a whole number with an optional unit, whitespace
 *    allowed in between ("5", "5m", "5 m"), or a multiplier: '*', optional
 *    whitespace, a number with an optional fraction ("*2", "* 1.5");
 *  - a number with a fraction is only valid in a multiplier ("1.5h" is
 *    rejected, as tmt rejects it), and a multiplier takes no unit ("*2m");
 *  - terms follow one another with optional whitespace; a unit may be
 *    directly followed by the next number ("1h30m"), and any term by '*';
 *  - leading whitespace is invalid, trailing whitespace is not;
 *  - the numbers are summed, the product of all multipliers (wherever they
 *    stand) is applied to the sum, and the result is rounded up to a whole
 *    second.
 *
 * Digits and whitespace are ASCII only; Python's regex would also take other
 * Unicode digits and spaces, which nobody writes in metadata.
 *
 * Fractions are converted by strtod() on a copy rewritten as "DIGITSe-N",
 * which has no decimal point: strtod() honours the program's locale, and
 * "1.5" would read as 1 under a locale whose decimal separator is ','. The
 * conversion must be the correctly rounded one Python does, because the
 * final rounding up makes the last bit visible: "100 *1.1" is 111 seconds
 * in tmt.
 */
#include <math.h> /* isfinite, a macro */
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct scanner {
	const char *text; /* the whole input, for messages */
	const char *p;	  /* the next character to read */
	double sum;	  /* of the number terms, in seconds */
	double factor;	  /* product of the multipliers */
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Python's \s restricted to ASCII. */
static bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static void skip_space(struct scanner *s)
{
	while (is_space(*s->p))
		s->p++;
}

static bool is_unit(char c)
{
	return c == 's' || c == 'm' || c == 'h' || c == 'd';
}

/* Names the text and, when it does not end there, where it went wrong. */
static int syntax_error(const struct scanner *s, const char *why)
{
	if (*s->p == '\0' || s->p == s->text)
		return atex_error_set(ATEX_EINVAL, "invalid duration '%s': %s",
				      s->text, why);
	return atex_error_set(ATEX_EINVAL, "invalid duration '%s': %s at '%s'",
			      s->text, why, s->p);
}

/*
 * Reads digits, and with `fraction` an optional ".DIGITS", converting them
 * correctly rounded and independently of the locale (see the top comment).
 */
static int scan_number(struct scanner *s, bool fraction, double *value)
{
	struct atex_buf digits = ATEX_BUF_INIT;
	size_t n_int, n_frac = 0;
	int rc;

	n_int = strspn(s->p, "0123456789");
	if (n_int == 0)
		return syntax_error(s, "a number is missing");
	if (fraction && s->p[n_int] == '.' && is_digit(s->p[n_int + 1]))
		n_frac = strspn(s->p + n_int + 1, "0123456789");
	rc = atex_buf_put(&digits, s->p, n_int);
	if (rc == 0 && n_frac)
		rc = atex_buf_put(&digits, s->p + n_int + 1, n_frac);
	if (rc == 0)
		rc = atex_buf_printf(&digits, "e-%zu", n_frac);
	if (rc < 0)
		goto out;
	*value = strtod(digits.ptr, NULL);
	s->p += n_int + (n_frac ? n_frac + 1 : 0);
out:
	atex_buf_free(&digits);
	return rc;
}

static int scan_multiplier(struct scanner *s)
{
	double value;
	int rc;

	s->p++; /* the '*' */
	skip_space(s);
	rc = scan_number(s, true, &value);
	if (rc < 0)
		return rc;
	if (is_unit(*s->p))
		return syntax_error(s, "a multiplier takes no unit");
	s->factor *= value;
	return 0;
}

static double unit_seconds(char unit)
{
	switch (unit) {
	case 's':
		return 1;
	case 'm':
		return 60;
	case 'h':
		return 60 * 60;
	case 'd':
		return 24 * 60 * 60;
	}
	return 0;
}

static int scan_time(struct scanner *s)
{
	const char *after;
	double value, unit = 1;
	int rc;

	rc = scan_number(s, false, &value);
	if (rc < 0)
		return rc;
	after = s->p;
	while (is_space(*after))
		after++;
	if (is_unit(*after)) {
		unit = unit_seconds(*after);
		s->p = after + 1;
	}
	s->sum += value * unit;
	return 0;
}

/*
 * After a term: whitespace, then the end or the next term. A digit may
 * directly follow a unit ("1h30m": tmt splits it before validating); it
 * cannot directly follow a number, which scan_number read whole.
 */
static int scan_separator(struct scanner *s)
{
	skip_space(s);
	if (*s->p == '\0' || *s->p == '*' || is_digit(*s->p))
		return 0;
	if (s->p[0] == '.' && is_digit(s->p[1]))
		return syntax_error(s, "only a multiplier ('*1.5') may have a "
				       "fraction");
	return syntax_error(s, "unexpected character");
}

/*
 * ceil() for the non-negative values summed here, written out because the
 * library does not link libm (gcc only inlines ceil() when optimising).
 * From 2^52 up every double is a whole number already.
 */
static double round_up(double x)
{
	long long whole;

	if (!(x < 4503599627370496.0))
		return x;
	whole = (long long)x;
	return (double)whole < x ? (double)(whole + 1) : (double)whole;
}

int atex_duration_parse(double *seconds, const char *text)
{
	struct scanner s = {text, text, 0, 1};
	double total;
	int rc;

	if (!text)
		return atex_error_set(ATEX_EINVAL, "no duration given");
	if (*text == '\0')
		return syntax_error(&s, "empty");
	while (*s.p) {
		if (*s.p == '*')
			rc = scan_multiplier(&s);
		else if (is_digit(*s.p))
			rc = scan_time(&s);
		else
			rc = syntax_error(&s, "expected a number or '*'");
		if (rc == 0)
			rc = scan_separator(&s);
		if (rc < 0)
			return rc;
	}
	total = round_up(s.sum * s.factor);
	if (!isfinite(total))
		return syntax_error(&s, "too large");
	*seconds = total;
	return 0;
}
