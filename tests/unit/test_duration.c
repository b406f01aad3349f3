/*
 * test_duration.c - atex_duration_parse against tmt's duration_to_seconds.
 *
 * The expected values are what tmt computes for the same text (its own unit
 * tests are among them), so a change here is a divergence from tmt, not a
 * matter of taste.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/util.h"

struct valid_case {
	const char *text;
	double seconds;
};

static void assert_parses(const char *text, double expected)
{
	double seconds = -1;
	int rc = atex_duration_parse(&seconds, text);

	if (rc != 0)
		fail_msg("'%s' did not parse: %s", text, atex_error_last());
	if (seconds != expected)
		fail_msg("'%s' gave %.17g, expected %.17g", text, seconds,
			 expected);
}

static void assert_rejects(const char *text)
{
	double seconds = 42;
	int rc;

	atex_error_clear();
	rc = atex_duration_parse(&seconds, text);
	if (rc != ATEX_EINVAL)
		fail_msg("'%s' gave %d (%.17g), expected ATEX_EINVAL", text, rc,
			 seconds);
	assert_int_equal(atex_error_last_code(), ATEX_EINVAL);
	/* The message quotes the text so a user can find it in metadata. */
	if (!strstr(atex_error_last(), text))
		fail_msg("message for '%s' does not quote it: %s", text,
			 atex_error_last());
	assert_true(seconds == 42);
}

static void check_all(const struct valid_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_parses(cases[i].text, cases[i].seconds);
}

static void test_units(void **state)
{
	static const struct valid_case cases[] = {
		{"5", 5},	    {"0", 0},	  {"30s", 30},	 {"5s", 5},
		{"5m", 300},	    {"2h", 7200}, {"5h", 18000}, {"1d", 86400},
		{"5d", 432000},	    {"05m", 300}, {"5 m", 300},	 {"5\tm", 300},
		{"123456", 123456},
	};

	check_all(cases, ATEX_ARRAY_SIZE(cases));
}

static void test_sums(void **state)
{
	static const struct valid_case cases[] = {
		{"1h 30m", 5400},
		{"1s 2s", 3},
		{"1h 2 3m", 3600 + 2 + 180},
		/* tmt splits a unit from a following number: no space needed */
		{"1h30m", 5400},
		{"1s2s", 3},
		{"1d2h3m4s", 86400 + 7200 + 180 + 4},
		{"1 m2   m", 180},
		{"2 1m 4", 66},
		{"1h\n30m", 5400},
		/* trailing whitespace is fine, leading is not (see errors) */
		{"5m ", 300},
		{"5m\n", 300},
	};

	check_all(cases, ATEX_ARRAY_SIZE(cases));
}

static void test_multipliers(void **state)
{
	static const struct valid_case cases[] = {
		{"5m*2", 600},
		{"5m *2", 600},
		{"5m * 2", 600},
		{"5*2", 10},
		{"1h *1.5", 5400},
		/* several multipliers multiply one another... */
		{"1h *2 *1.5", 10800},
		{"1h*2*3", 21600},
		/* ...and the whole sum, wherever they stand */
		{"*2 5m", 600},
		{"*2 1m *3 4", 384},
		{"*2 *3 1m4", 384},
		{"1h *2 30m", 10800},
		{"*0.5 1m", 30},
		{"*2 ", 0},
		/* nothing to multiply: zero (tmt's executor then uses 5m) */
		{"*2", 0},
		{"0 *2", 0},
	};

	check_all(cases, ATEX_ARRAY_SIZE(cases));
}

/* tmt rounds the final product up to a whole second. */
static void test_rounding(void **state)
{
	static const struct valid_case cases[] = {
		{"1s *3.3", 4},
		{"1 *1.5", 2},
		{"*0.5 3", 2},
		{"1m *0.001", 1},
		/* 100 * 1.1 is 110.00000000000001 in binary: tmt says 111 */
		{"100 *1.1", 111},
		{"3 *1.1", 4},
		{"10 *0.3", 3},
		{"5m *1.0", 300},
	};

	check_all(cases, ATEX_ARRAY_SIZE(cases));
}

/* The injection tmt's executor does for "*N" alone, as the header says. */
static void test_default_injection(void **state)
{
	double seconds = -1;

	assert_int_equal(atex_duration_parse(&seconds, "*2"), 0);
	assert_true(seconds == 0);
	assert_int_equal(atex_duration_parse(&seconds, "5m *2"), 0);
	assert_true(seconds == 600);
}

static void test_errors(void **state)
{
	static const char *const texts[] = {
		"",    " ",	 "abc",	    "bad",   "5x",   "-5",     "+5",
		"10w", "1sm",	 "1 1ss 5", "5 m m", "1.5h", "1.5",    ".5",
		"5.",  "1,5h",	 "*10m",    "*2m",   "*2 m", "**10",   "*",
		"* ",  "*10m 3", "3 *10m",  "*.5",   "*2.",  "*1.5.2", "1h 30x",
		" 5m", "\t5",	 "5m,",	    "0x10",  "1e3",  "5_m",    "5m*",
		"5mm", "1h-30m", "inf",	    "nan",
	};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(texts); i++)
		assert_rejects(texts[i]);
}

static void test_error_message(void **state)
{
	double seconds;

	assert_int_equal(atex_duration_parse(&seconds, "1h 30x"), ATEX_EINVAL);
	assert_string_equal(atex_error_last(),
			    "invalid duration '1h 30x': unexpected character "
			    "at 'x'");
	assert_int_equal(atex_duration_parse(&seconds, "1.5h"), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "multiplier"));
	assert_int_equal(atex_duration_parse(&seconds, NULL), ATEX_EINVAL);
}

/* Beyond what a double holds: an error, as tmt's OverflowError is. */
static void test_too_large(void **state)
{
	char text[400];
	double seconds;

	memset(text, '9', sizeof(text) - 2);
	text[sizeof(text) - 2] = 'd';
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(atex_duration_parse(&seconds, text), ATEX_EINVAL);
	text[0] = '*';
	text[sizeof(text) - 2] = '\0';
	assert_int_equal(atex_duration_parse(&seconds, text), ATEX_EINVAL);
}

/*
 * A program's locale must not change how "*1.5" reads. The test needs a
 * locale with a decimal comma; machines rarely have one compiled, so it
 * compiles de_DE itself with localedef (Debian's `locales` package, which
 * scripts/install-deps.sh installs) into a temporary LOCPATH.
 */
static void test_locale(void **state)
{
	char dir[] = "/tmp/atex-locale-XXXXXX", cmd[512];
	const char *set;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 2>/dev/null", dir);
	if (system(cmd) != 0)
		fail_msg("cannot compile the de_DE locale with localedef "
			 "(install Debian's locales package)");
	setenv("LOCPATH", dir, 1);
	set = setlocale(LC_NUMERIC, "de_DE.UTF-8");
	unsetenv("LOCPATH");
	if (!set)
		fail_msg("setlocale(de_DE.UTF-8) failed with LOCPATH=%s", dir);
	assert_string_equal(localeconv()->decimal_point, ",");
	assert_parses("1h *1.5", 5400);
	setlocale(LC_NUMERIC, "C");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_sums),
		cmocka_unit_test(test_multipliers),
		cmocka_unit_test(test_rounding),
		cmocka_unit_test(test_default_injection),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_message),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_locale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
