/*
 * test_context.c - the fmf context API (set, set_arg, set_json, to_json,
 * copy, match_json) and the corners of the rule language where the
 * reference fmf 1.7 behaves in ways one would not guess. The bulk of the
 * language is checked against the reference's own answers by
 * tests/conformance/test_context_rules.c; the cases here are the ones that
 * data does not reach, each with the reason it behaves as it does.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "atex/fmf.h"

#define T ATEX_FMF_TRUE
#define F ATEX_FMF_FALSE
#define U ATEX_FMF_UNDECIDED

static int setup(void **state)
{
	atex_fmf_context *ctx;

	if (atex_fmf_context_new(&ctx))
		return -1;
	*state = ctx;
	return 0;
}

static int teardown(void **state)
{
	atex_fmf_context_free(*state);
	return 0;
}

/* Decides `rule`, failing the test on an error. */
static int decide(const atex_fmf_context *ctx, const char *rule)
{
	int d = -1, rc = atex_fmf_context_match(&d, ctx, rule);

	if (rc)
		fail_msg("rule '%s': %d %s", rule, rc, atex_error_last());
	return d;
}

/* Expects `rule` to be refused, with the rule quoted in the message. */
static void assert_invalid(const atex_fmf_context *ctx, const char *rule)
{
	int d;

	assert_int_equal(atex_fmf_context_match(&d, ctx, rule), ATEX_ERULE);
	assert_non_null(strstr(atex_error_last(), rule));
}

/* The context as compact JSON text, for comparing. */
static void assert_json(const atex_fmf_context *ctx, const char *expected)
{
	json_t *j = atex_fmf_context_to_json(ctx);
	char *text;

	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, expected);
	free(text);
	json_decref(j);
}

static void test_set(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_false(atex_fmf_context_has(ctx, "arch"));
	assert_int_equal(atex_fmf_context_set(ctx, "arch", " s390x , x86_64"),
			 0);
	assert_true(atex_fmf_context_has(ctx, "arch"));
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora-40"), 0);
	/* Setting again replaces the values. */
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "centos-9"), 0);
	assert_json(ctx, "{\"arch\":[\"s390x\",\"x86_64\"],"
			 "\"distro\":[\"centos-9\"]}");
	assert_int_equal(atex_fmf_context_set(ctx, "x-y_1", "v"), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "", "v"), ATEX_EINVAL);
	assert_int_equal(atex_fmf_context_set(ctx, "a b", "v"), ATEX_EINVAL);
	/* A name no rule could name ([\w-]+) is refused. */
	assert_int_equal(atex_fmf_context_set(ctx, "a.b", "v"), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "a.b"));
	assert_int_equal(atex_fmf_context_set(ctx, "a", NULL), ATEX_EINVAL);
}

static void test_set_arg(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_int_equal(atex_fmf_context_set_arg(ctx, "distro=fedora-33"), 0);
	assert_int_equal(atex_fmf_context_set_arg(ctx, "arch=s390x,x86_64"), 0);
	/* Only the first "=" separates; the value may hold more. */
	assert_int_equal(atex_fmf_context_set_arg(ctx, "opt=a=b"), 0);
	assert_json(ctx, "{\"arch\":[\"s390x\",\"x86_64\"],"
			 "\"distro\":[\"fedora-33\"],\"opt\":[\"a=b\"]}");

	assert_int_equal(atex_fmf_context_set_arg(ctx, "distro"), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "'distro'"));
	assert_int_equal(atex_fmf_context_set_arg(ctx, "=fedora"), ATEX_EINVAL);
	assert_int_equal(atex_fmf_context_set_arg(ctx, "di stro=x"),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "'di stro=x'"));
}

static void test_set_json(void **state)
{
	atex_fmf_context *ctx = *state;
	json_t *v;

	/* A JSON string is one value: commas are not separators here. */
	v = json_string("a,b");
	assert_int_equal(atex_fmf_context_set_json(ctx, "s", v), 0);
	json_decref(v);
	/* Numbers and booleans as Python's str() writes them: the
	 * reference builds every value with ContextValue(str(value)). */
	v = json_pack("[i, f, b, s]", 3, 1.5, 1, "x");
	assert_int_equal(atex_fmf_context_set_json(ctx, "l", v), 0);
	json_decref(v);
	v = json_real(1e16);
	assert_int_equal(atex_fmf_context_set_json(ctx, "r", v), 0);
	json_decref(v);
	assert_json(ctx, "{\"l\":[\"3\",\"1.5\",\"True\",\"x\"],"
			 "\"r\":[\"1e+16\"],\"s\":[\"a,b\"]}");
	assert_int_equal(decide(ctx, "l == True"), T);

	v = json_null();
	assert_int_equal(atex_fmf_context_set_json(ctx, "n", v), ATEX_EINVAL);
	json_decref(v);
	v = json_pack("[s, [s]]", "a", "b");
	assert_int_equal(atex_fmf_context_set_json(ctx, "n", v), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "'n'"));
	json_decref(v);
	v = json_object();
	assert_int_equal(atex_fmf_context_set_json(ctx, "n", v), ATEX_EINVAL);
	json_decref(v);
	assert_false(atex_fmf_context_has(ctx, "n"));

	/* An empty list defines the dimension without values: "is
	 * defined" holds, yet no comparison can be decided. */
	v = json_array();
	assert_int_equal(atex_fmf_context_set_json(ctx, "e", v), 0);
	json_decref(v);
	assert_int_equal(decide(ctx, "e is defined"), T);
	assert_int_equal(decide(ctx, "e == x"), U);
	assert_int_equal(decide(ctx, "e != x"), U);
}

/* The reference keeps values in a set of ContextValue, equal when their
 * split parts are: "fedora.33" is dropped next to "fedora-33", and a
 * regular expression only ever sees the first spelling. */
static void test_duplicates(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_int_equal(atex_fmf_context_set(ctx, "d", "fedora-33,fedora.33"),
			 0);
	assert_json(ctx, "{\"d\":[\"fedora-33\"]}");
	assert_int_equal(decide(ctx, "d ~ \\."), F);
}

static void test_copy(void **state)
{
	atex_fmf_context *ctx = *state, *copy;

	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora-40"), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "arch", "x86_64,s390x"), 0);
	assert_int_equal(atex_fmf_context_copy(&copy, ctx), 0);
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "rhel-9"), 0);
	assert_int_equal(atex_fmf_context_set(copy, "new", "x"), 0);
	assert_json(copy, "{\"arch\":[\"x86_64\",\"s390x\"],"
			  "\"distro\":[\"fedora-40\"],\"new\":[\"x\"]}");
	assert_json(ctx, "{\"arch\":[\"x86_64\",\"s390x\"],"
			 "\"distro\":[\"rhel-9\"]}");
	atex_fmf_context_free(copy);

	assert_int_equal(atex_fmf_context_new(&ctx), 0);
	assert_int_equal(atex_fmf_context_copy(&copy, ctx), 0);
	assert_json(copy, "{}");
	atex_fmf_context_free(copy);
	atex_fmf_context_free(ctx);
	atex_fmf_context_free(NULL);
}

static void test_match_json(void **state)
{
	atex_fmf_context *ctx = *state;
	json_t *v;
	int d;

	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora-40"), 0);
	v = json_string("distro > fedora-39");
	assert_int_equal(atex_fmf_context_match_json(&d, ctx, v), 0);
	assert_int_equal(d, T);
	json_decref(v);
	/* Context.matches(True/False) is the literal rule. */
	assert_int_equal(atex_fmf_context_match_json(&d, ctx, json_true()), 0);
	assert_int_equal(d, T);
	assert_int_equal(atex_fmf_context_match_json(&d, ctx, json_false()), 0);
	assert_int_equal(d, F);
	/* No `when` at all: fmf's adjust applies the rule. */
	assert_int_equal(atex_fmf_context_match_json(&d, ctx, NULL), 0);
	assert_int_equal(d, T);
	/* `when:` with nothing (null), numbers, lists: fmf asserts. */
	assert_int_equal(atex_fmf_context_match_json(&d, ctx, json_null()),
			 ATEX_ERULE);
	assert_non_null(strstr(atex_error_last(), "NoneType"));
	v = json_integer(1);
	assert_int_equal(atex_fmf_context_match_json(&d, ctx, v), ATEX_ERULE);
	assert_non_null(strstr(atex_error_last(), "'int'"));
	json_decref(v);
	v = json_pack("[s]", "distro == fedora");
	assert_int_equal(atex_fmf_context_match_json(&d, ctx, v), ATEX_ERULE);
	json_decref(v);
	v = json_string("distro ==");
	assert_int_equal(atex_fmf_context_match_json(&d, ctx, v), ATEX_ERULE);
	json_decref(v);
}

static void test_invalid_rules(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_invalid(ctx, "");
	assert_invalid(ctx, "   ");
	assert_invalid(ctx, "distro == x and");
	assert_invalid(ctx, "or distro == x");
	assert_invalid(ctx, "distro == x or or arch == y");
	assert_invalid(ctx, "distro === fedora");
	assert_invalid(ctx, "distro");
	assert_invalid(ctx, "distro is  defined"); /* one space only */
	assert_invalid(ctx, "dis.tro == x");
	assert_invalid(ctx, "True"); /* case matters */
	/* Splitting on the word "and" ignores everything else: '-' is not
	 * a word character, so this value is cut in two. */
	assert_invalid(ctx, "distro == fedora-and-more");
	/* Every part must parse, even one that would never be decided. */
	assert_invalid(ctx, "true or ??");
}

static void test_logic(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora-40"), 0);
	/* Three-valued logic: an undecidable part (no "arch") is neither
	 * true nor false. */
	assert_int_equal(decide(ctx, "false and arch == x86_64"), F);
	assert_int_equal(decide(ctx, "arch == x86_64 and false"), F);
	assert_int_equal(decide(ctx, "true and arch == x86_64"), U);
	assert_int_equal(decide(ctx, "arch == x86_64 or true"), T);
	assert_int_equal(decide(ctx, "arch == x86_64 or false"), U);
	assert_int_equal(decide(ctx, "false or false"), F);
	/* "and" binds tighter than "or". */
	assert_int_equal(decide(ctx, "true or false and false"), T);
	assert_int_equal(decide(ctx, "false and true or true"), T);
	assert_int_equal(decide(ctx, "false and true or false"), F);
	/* Parts after a decided group are never evaluated: a bad regular
	 * expression there is no error. */
	assert_int_equal(decide(ctx, "true or distro ~ ("), T);
	assert_int_equal(decide(ctx, "false and distro ~ ("), F);
	/* An unknown dimension is undecided before its regex is read. */
	assert_int_equal(decide(ctx, "arch ~ ("), U);
	{
		int d;

		assert_int_equal(atex_fmf_context_match(&d, ctx, "distro ~ ("),
				 ATEX_ERULE);
		assert_non_null(strstr(atex_error_last(), "distro ~ ("));
	}
}

/* What the reference's regular expressions accept, corner by corner. */
static void test_syntax(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_int_equal(atex_fmf_context_set(ctx, "distro", "fedora-40"), 0);
	/* re.match("(true|false)") has no end anchor. */
	assert_int_equal(decide(ctx, "trueish == 1"), T);
	assert_int_equal(decide(ctx, "falsehood is defined"), F);
	/* ([\w-]+)\s*(is defined|...) backtracks into the name. */
	assert_int_equal(decide(ctx, "distrois defined"), T);
	assert_int_equal(decide(ctx, "distrois not defined"), F);
	/* ... and ignores whatever follows. */
	assert_int_equal(decide(ctx, "distro is defined, really"), T);
	/* "=" is "==", the words must stand alone, spacing is free. */
	assert_int_equal(decide(ctx, "distro=fedora"), T);
	assert_int_equal(decide(ctx, "distro==fedora-40 and true"), T);
	/* No boundary between "0" and "and": one value, "40and true". */
	assert_int_equal(decide(ctx, "distro == fedora-40and true"), F);
	assert_int_equal(decide(ctx, "order is not defined"), T);
	/* `.*` stops at a newline: the rest of the line is dropped. */
	assert_int_equal(decide(ctx, "distro == fedora\nwhatever"), T);
	assert_int_equal(decide(ctx, "distro ==\n  fedora"), T);
	/* "~<" is the minor-version operator, not a regex "<..."; but with
	 * nothing after it the longer operators fail and "~" takes "<=". */
	assert_int_equal(decide(ctx, "distro ~< fedora-41"), T);
	assert_int_equal(atex_fmf_context_set(ctx, "op", "x<=y"), 0);
	assert_int_equal(decide(ctx, "op ~<="), T);
	/* A value must not start with "=", but \s* gives its last space
	 * back: "distro == =x" becomes "distro == ==x" (the lone "=" is
	 * doubled too) and the value is " ==x", stripped "==x". */
	assert_int_equal(atex_fmf_context_set(ctx, "eq", "==x"), 0);
	assert_int_equal(decide(ctx, "eq == =x"), T);
	/* The doubling reaches regular expressions as well. */
	assert_int_equal(atex_fmf_context_set(ctx, "kv", "a==b"), 0);
	assert_int_equal(decide(ctx, "kv ~ ^a=b$"), T);
	assert_int_equal(atex_fmf_context_set(ctx, "kv", "a=b"), 0);
	assert_int_equal(decide(ctx, "kv ~ ^a=b$"), F);
	/* Commas always separate values, even inside a regex. */
	assert_int_equal(decide(ctx, "distro ~ ^x{1,2}$, ^fedora"), T);
}

static void test_versions(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_int_equal(atex_fmf_context_set(ctx, "d", "fedora-10"), 0);
	/* Parts compare as integers when both are Python ints ... */
	assert_int_equal(decide(ctx, "d > fedora-9"), T);
	assert_int_equal(decide(ctx, "d == fedora-1_0"), T);
	assert_int_equal(decide(ctx, "d == fedora-+10"), T);
	assert_int_equal(decide(ctx, "d < fedora-100000000000000000000000"), T);
	/* ... else as strings: "10" < "9a". */
	assert_int_equal(decide(ctx, "d > fedora-9a"), F);
	/* Fewer parts on the right: only those are compared. */
	assert_int_equal(decide(ctx, "d == fedora"), T);
	assert_int_equal(decide(ctx, "d <= fedora"), T);
	assert_int_equal(decide(ctx, "d < fedora"), F);
	/* More parts on the right: smaller, but never equal. */
	assert_int_equal(decide(ctx, "d < fedora-10.1"), T);
	assert_int_equal(decide(ctx, "d == fedora-10.1"), F);
	/* Different names cannot be ordered; no version on the left
	 * cannot be either. */
	assert_int_equal(decide(ctx, "d < centos-9"), U);
	assert_int_equal(decide(ctx, "d != centos-9"), T);
	assert_int_equal(atex_fmf_context_set(ctx, "n", "fedora"), 0);
	assert_int_equal(decide(ctx, "n < fedora-33"), U);
	assert_int_equal(decide(ctx, "n == fedora-33"), F);
	/* Case sensitive, as the reference by default. */
	assert_int_equal(decide(ctx, "d == Fedora"), F);

	/* Minor mode: the major must match before minors are compared. */
	assert_int_equal(atex_fmf_context_set(ctx, "c", "centos-8.4"), 0);
	assert_int_equal(decide(ctx, "c ~= centos-8"), T);
	assert_int_equal(decide(ctx, "c ~< centos-9"), T);
	assert_int_equal(decide(ctx, "c ~< centos-9.2"), U);
	assert_int_equal(decide(ctx, "c ~< centos-8.5"), T);
	assert_int_equal(decide(ctx, "c ~= centos-8.4.1"), U);
	assert_int_equal(decide(ctx, "c ~!= centos-7"), T);
	/* The majors are compared as strings there: "08" is not "8". */
	assert_int_equal(atex_fmf_context_set(ctx, "z", "centos-08.2"), 0);
	assert_int_equal(decide(ctx, "z == centos-8"), T);
	assert_int_equal(decide(ctx, "z ~= centos-8"), F);
	assert_int_equal(decide(ctx, "z ~= centos"), T);
}

/* A dimension with several values: any (value, rule value) pair decides
 * for the operator, whichever it is. */
static void test_multi(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_int_equal(atex_fmf_context_set(ctx, "arch", "x86_64,s390x"), 0);
	assert_int_equal(decide(ctx, "arch == s390x"), T);
	assert_int_equal(decide(ctx, "arch != x86_64"), T);
	assert_int_equal(decide(ctx, "arch != x86_64, s390x"), T);
	assert_int_equal(decide(ctx, "arch == ppc64le, aarch64"), F);
	assert_int_equal(decide(ctx, "arch !~ ^x86"), T);
	assert_int_equal(decide(ctx, "arch ~ ^(x86_64|s390x)$"), T);
	/* One undecidable pair does not hide a decided one. */
	assert_int_equal(atex_fmf_context_set(ctx, "d", "fedora-40,centos-9"),
			 0);
	assert_int_equal(decide(ctx, "d > fedora-39"), T);
	assert_int_equal(decide(ctx, "d > fedora-41"), F);
	assert_int_equal(decide(ctx, "d > rhel-8"), U);
}

/* Words and spaces are Unicode, as in Python's str patterns. */
static void test_unicode(void **state)
{
	atex_fmf_context *ctx = *state;

	assert_int_equal(atex_fmf_context_set(ctx, "příchuť", "vanilka"), 0);
	assert_int_equal(decide(ctx, "příchuť == vanilka"), T);
	/* U+00A0 (no-break space) is whitespace to \s and strip(). */
	assert_int_equal(decide(ctx, "příchuť\xc2\xa0==\xc2\xa0vanilka"), T);
	/* "é" is a word character: no "and" boundary here, so this is
	 * one comparison with the value "éand x". */
	assert_int_equal(decide(ctx, "příchuť == éand x"), F);
}

/* Decides `rule` for a context of one dimension set to `value`, as fmf
 * does with Context.case_sensitive set to `sensitive`. */
static int decide_case(const char *dim, const char *value, const char *rule,
		       bool sensitive)
{
	atex_fmf_context *ctx;
	int d;

	assert_int_equal(atex_fmf_context_new(&ctx), 0);
	assert_int_equal(atex_fmf_context_set(ctx, dim, value), 0);
	atex_fmf_context_set_case_sensitive(ctx, sensitive);
	d = decide(ctx, rule);
	atex_fmf_context_free(ctx);
	return d;
}

/*
 * fmf's case_sensitive=False (tmt's adjust): names, majors and string
 * version parts compare after str.casefold(); integers, regular
 * expressions and dimension names do not change. The pairs are
 * (case sensitive, insensitive) as the reference decides them.
 */
static void test_case_sensitivity(void **state)
{
	static const struct {
		const char *dim, *value, *rule;
		int sensitive, insensitive;
	} cases[] = {
		{"distro", "fedora-41", "distro == Fedora-41", F, T},
		{"distro", "Fedora-41", "distro == fedora", F, T},
		{"distro", "fedora-41", "distro < FEDORA-42", U, T},
		{"distro", "fedora-41", "distro ~= FEDORA-41", F, T},
		{"distro", "fedora-41", "distro ~ ^Fedora", F, F},
		{"distro", "fedora-41", "distro !~ ^Fedora", T, T},
		{"distro", "fedora-41", "DISTRO == fedora-41", U, U},
		{"x", "foo-1.a", "x < foo-1.B", F, T},
		{"x", "foo-1.a", "x > foo-1.B", T, F},
		{"x", "foo-RC1.a", "x ~< foo-rc1.b", U, T},
		{"x", "bash-5.0.FC32", "x == bash-5.0.fc32", F, T},
		{"x", "bash-5.0.fc32", "x != BASH-5.0.fc32", T, F},
		/* Full case folding, not just ASCII. */
		{"x",
		 "stra\xc3\x9f"
		 "e",
		 "x == STRASSE", F, T},
		{"x", "\xce\xa3\xce\x91\xce\xa3",
		 "x == \xcf\x83\xce\xb1\xcf\x82", F, T},
		{"x", "foo-\xc3\x9f", "x < foo-st", F, T},
		{"x", "foo-ss", "x == foo-\xc3\x9f", F, T},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int s = decide_case(cases[i].dim, cases[i].value, cases[i].rule,
				    true);
		int n = decide_case(cases[i].dim, cases[i].value, cases[i].rule,
				    false);

		if (s != cases[i].sensitive || n != cases[i].insensitive)
			fail_msg("%s=%s, '%s': %d/%d, expected %d/%d",
				 cases[i].dim, cases[i].value, cases[i].rule, s,
				 n, cases[i].sensitive, cases[i].insensitive);
	}
}

/* A new context is case sensitive (fmf's default); copies keep the
 * setting. */
static void test_case_setting(void **state)
{
	atex_fmf_context *ctx = *state, *copy;

	assert_true(atex_fmf_context_case_sensitive(ctx));
	assert_int_equal(atex_fmf_context_set(ctx, "distro", "Fedora-41"), 0);
	assert_int_equal(decide(ctx, "distro == fedora-41"), F);
	atex_fmf_context_set_case_sensitive(ctx, false);
	assert_false(atex_fmf_context_case_sensitive(ctx));
	assert_int_equal(decide(ctx, "distro == fedora-41"), T);
	assert_int_equal(atex_fmf_context_copy(&copy, ctx), 0);
	assert_false(atex_fmf_context_case_sensitive(copy));
	assert_int_equal(decide(copy, "distro == fedora-41"), T);
	atex_fmf_context_free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_arg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_json, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_invalid_rules, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_logic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unicode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_case_sensitivity, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_case_setting, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
