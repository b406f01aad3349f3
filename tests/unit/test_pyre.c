/*
 * test_pyre.c - Python `re` semantics on PCRE2 (src/util/pyre.c).
 *
 * Every expected value here was produced by CPython 3.11's `re` module;
 * the cases aim at the places where PCRE2 and Python differ, so that a
 * translation slip shows up as a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atex/common.h"
#include "util/pyre.h"

static int search(const char *pattern, const char *subject)
{
	return atex_pyre_search_str(pattern, subject);
}

static int fullmatch(const char *pattern, const char *subject, int flags)
{
	struct atex_pyre *re;
	int rc = atex_pyre_compile(&re, pattern, flags);

	if (rc)
		return rc;
	rc = atex_pyre_fullmatch(re, subject);
	atex_pyre_free(re);
	return rc;
}

/* re.sub() through the cache; returns the result or "ERROR". */
static char *sub(const char *pattern, const char *repl, const char *subject)
{
	char *out = NULL;
	int rc = atex_pyre_sub_str(&out, pattern, repl, subject);

	if (rc) {
		assert_null(out);
		return strdup("ERROR");
	}
	return out;
}

static void check_sub(const char *pattern, const char *repl,
		      const char *subject, const char *expected)
{
	char *got = sub(pattern, repl, subject);

	if (strcmp(got, expected))
		fail_msg("re.sub('%s', '%s', '%s') gave '%s', expected '%s' "
			 "(%s)",
			 pattern, repl, subject, got, expected,
			 atex_error_last());
	free(got);
}

/* The pattern must be refused with a message containing `part`. */
static void check_bad_pattern(const char *pattern, const char *part)
{
	struct atex_pyre *re = (struct atex_pyre *)&re;
	int rc = atex_pyre_compile(&re, pattern, 0);

	if (rc != ATEX_ERULE)
		fail_msg("pattern '%s' gave %d, expected ATEX_ERULE", pattern,
			 rc);
	assert_null(re);
	if (!strstr(atex_error_last(), part))
		fail_msg("message for '%s' is '%s', lacks '%s'", pattern,
			 atex_error_last(), part);
	assert_int_equal(atex_pyre_search_str(pattern, "x"), ATEX_ERULE);
}

static void test_search(void **state)
{
	assert_int_equal(search("b+", "abbc"), 1);
	assert_int_equal(search("^b", "abc"), 0);
	assert_int_equal(search("", ""), 1);
	assert_int_equal(search("a.b", "a\nb"), 0);
	assert_int_equal(search("(?s)a.b", "a\nb"), 1);
	assert_int_equal(search("^b", "a\nb"), 0);
	assert_int_equal(search("(?m)^b", "a\nb"), 1);
	/* $ matches before a final newline, \Z only at the very end. */
	assert_int_equal(search("a$", "a\n"), 1);
	assert_int_equal(search("a\\Z", "a\n"), 0);
	assert_int_equal(search("a\\Z", "a"), 1);
	assert_int_equal(search("\\Aa", "ba"), 0);
	assert_int_equal(search("a$", "a\r\n"), 0);
	assert_int_equal(search("(?i)ABC", "xabcx"), 1);
}

static void test_fullmatch(void **state)
{
	assert_int_equal(fullmatch("a|ab", "ab", 0), 1);
	assert_int_equal(fullmatch("a", "ab", 0), 0);
	assert_int_equal(fullmatch("b", "ab", 0), 0);
	assert_int_equal(fullmatch("a", "a\n", 0), 0);
	assert_int_equal(fullmatch("a*", "", 0), 1);
	assert_int_equal(fullmatch("abc", "ABC", 0), 0);
	assert_int_equal(fullmatch("abc", "ABC", ATEX_PYRE_IGNORECASE), 1);
	assert_int_equal(
		fullmatch("caf\xc3\xa9", "CAF\xc3\x89", ATEX_PYRE_IGNORECASE),
		1);
}

/* Escapes and syntax Python reads differently from PCRE2. */
static void test_python_syntax(void **state)
{
	assert_int_equal(fullmatch("a{,2}", "aa", 0), 1);
	assert_int_equal(fullmatch("a{,2}", "a{,2}", 0), 0);
	assert_int_equal(fullmatch("a{,x}", "a{,x}", 0), 1);
	assert_int_equal(fullmatch("\\v", "\v", 0), 1);
	assert_int_equal(fullmatch("\\v", "\n", 0), 0);
	assert_int_equal(fullmatch("[\\v]", "\n", 0), 0);
	assert_int_equal(fullmatch("\\x41\\101\\0", "AA", 0), 0);
	assert_int_equal(fullmatch("\\x41\\101", "AA", 0), 1);
	assert_int_equal(fullmatch("[\\101]", "A", 0), 1);
	assert_int_equal(
		fullmatch("\\u00e9\\U0001F600", "\xc3\xa9\xf0\x9f\x98\x80", 0),
		1);
	assert_int_equal(fullmatch("(a)\\1", "aa", 0), 1);
	assert_int_equal(fullmatch("(?P<n>a)(?P=n)", "aa", 0), 1);
	assert_int_equal(fullmatch("(?P<n>a)(?(n)b|c)", "ab", 0), 1);
	assert_int_equal(fullmatch("a(?#comment \\q)b", "ab", 0), 1);
	assert_int_equal(fullmatch("(?x) a b # c \\q\n c", "abc", 0), 1);
	assert_int_equal(fullmatch("(?i)(?s)a.", "A\n", 0), 1);
	assert_int_equal(fullmatch("(?i:a)b", "Ab", 0), 1);
	assert_int_equal(fullmatch("(?i:a)b", "AB", 0), 0);
	assert_int_equal(fullmatch("(?u)a", "a", 0), 1);
	assert_int_equal(fullmatch("(?>a+)b", "aab", 0), 1);
	assert_int_equal(fullmatch("\\-\\.\\*", "-.*", 0), 1);
	/* `[` in a class is a literal, not a POSIX class. */
	assert_int_equal(search("[[:alpha:]]", "a]"), 1);
	assert_int_equal(search("[[:alpha:]]", "b"), 0);
	assert_int_equal(search("[]a]", "]"), 1);
	assert_int_equal(search("[^]a]", "]"), 0);
	assert_int_equal(search("(?<=a)b", "ab"), 1);
	assert_int_equal(search("(?<!a)b", "ab"), 0);
}

static void test_bad_patterns(void **state)
{
	check_bad_pattern("a(", "bad regular expression 'a('");
	check_bad_pattern("a(", "position");
	check_bad_pattern("a)", "position 1");
	check_bad_pattern("[a", "unterminated character set at position 0");
	check_bad_pattern("\\q", "bad escape \\q at position 0");
	check_bad_pattern("ab\\e", "bad escape \\e at position 2");
	check_bad_pattern("\\p{L}", "bad escape \\p");
	check_bad_pattern("\\Qa\\E", "bad escape \\Q");
	check_bad_pattern("a\\K", "bad escape \\K");
	check_bad_pattern("[\\Z]", "bad escape \\Z at position 1");
	check_bad_pattern("\\x4", "incomplete escape");
	check_bad_pattern("\\8", "at position 0");
	check_bad_pattern("(a)\\2", "bad regular expression");
	check_bad_pattern("a\\", "end of pattern");
	check_bad_pattern("(?<n>a)", "unknown extension");
	check_bad_pattern("(?|a)", "unknown extension");
	check_bad_pattern("(?R)", "unknown extension");
	check_bad_pattern("(*FAIL)", "nothing to repeat");
	check_bad_pattern("a(?i)", "global flags not at the start");
	check_bad_pattern("(?L)a", "'L' flag");
	check_bad_pattern("(?i-s)a", "missing :");
	check_bad_pattern("*a", "position 0");
	check_bad_pattern("\\400", "octal escape");
	check_bad_pattern("\xff", "bad regular expression");
}

static void test_unicode(void **state)
{
	assert_int_equal(search("\\w", "\xc3\xa9"), 1); /* é */
	assert_int_equal(search("(?a)\\w", "\xc3\xa9"), 0);
	assert_int_equal(search("\\d", "\xd9\xa3"), 1); /* ٣ */
	assert_int_equal(search("\\s", "\xc2\xa0"), 1); /* NBSP */
	assert_int_equal(search("\\s", "\x1c"), 1);
	assert_int_equal(search("[\\s]", "\x1f"), 1);
	assert_int_equal(search("[^\\s]", "\x1c"), 0);
	assert_int_equal(search("\\S", "\x1c"), 0);
	assert_int_equal(search("\\bcaf\xc3\xa9\\b", "un caf\xc3\xa9."), 1);
	assert_int_equal(search("\\bcaf\\b", "caf\xc3\xa9"), 0);
	assert_int_equal(fullmatch(".", "\xc3\xa9", 0), 1);
	assert_int_equal(fullmatch("..", "\xc3\xa9", 0), 0);
	check_sub(".", "-",
		  "\xc3\xa9"
		  "a",
		  "--");
	check_sub("", "-", "\xc3\xa9", "-\xc3\xa9-");
	check_sub("\\s+", "_",
		  "a \t\nb\xc2\xa0"
		  "c\xe2\x80\x83"
		  "d",
		  "a_b_c_d");
}

/* A subject that is not UTF-8 must neither crash nor error. */
static void test_invalid_utf8_subject(void **state)
{
	assert_int_equal(search("b", "a\xff"
				     "b"),
			 1);
	assert_int_equal(search(".", "\xff"), 0);
	assert_int_equal(search("a", "\xc3"), 0);
	assert_int_equal(fullmatch("a\xc3\xa9", "a\xc3", 0), 0);
	check_sub("x", "-", "\xffx\xfe", "\xff-\xfe");
	check_sub("", "-", "a\xff", "-a-\xff-");
}

static void test_sub_templates(void **state)
{
	check_sub("(a)(b)?", "[\\1|\\2]", "ac", "[a|]c");
	check_sub("(a)|b", "[\\1]", "ab", "[a][]");
	check_sub("(?P<w>\\w+)", "<\\g<w>:\\g<0>:\\g<1>>", "hi yo",
		  "<hi:hi:hi> <yo:yo:yo>");
	check_sub("b", "\\n\\t\\\\\\101\\-", "abc", "a\n\t\\A\\-c");
	check_sub("b", "\\a\\b\\f\\r\\v", "abc", "a\a\b\f\r\vc");
	check_sub("b", "\\351", "abc",
		  "a\xc3\xa9"
		  "c");
	check_sub("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)", "\\10\\1", "abcdefghij",
		  "ja");
	check_sub("(a)", "\\g<1>0", "a", "a0");
	check_sub("a", "", "banana", "bnn");
	check_sub("z", "y", "banana", "banana");
}

static void check_bad_template(const char *pattern, const char *repl,
			       const char *part)
{
	char *out = (char *)&out;
	int rc = atex_pyre_sub_str(&out, pattern, repl, "no match here");

	/* Python refuses a bad template even when nothing matches. */
	if (rc != ATEX_ERULE)
		fail_msg("template '%s' gave %d, expected ATEX_ERULE", repl,
			 rc);
	assert_null(out);
	if (!strstr(atex_error_last(), part))
		fail_msg("message for '%s' is '%s', lacks '%s'", repl,
			 atex_error_last(), part);
}

static void test_sub_bad_templates(void **state)
{
	check_bad_template("x", "\\q", "bad escape \\q at position 0");
	check_bad_template("x", "ab\\x41", "bad escape \\x at position 2");
	check_bad_template("x", "\\5", "invalid group reference 5");
	check_bad_template("(b)", "\\10", "invalid group reference 10");
	check_bad_template("x", "\\", "end of pattern");
	check_bad_template("x", "\\g<a", "missing >");
	check_bad_template("x", "\\g", "missing <");
	check_bad_template("(x)", "\\g<>", "missing group name");
	check_bad_template("(x)", "\\g<2>", "invalid group reference 2");
	check_bad_template("(x)", "\\g<b>", "unknown group name");
	check_bad_template("(x)", "\\g<1a>", "bad character in group name");
	check_bad_template("(x)", "\\400", "octal escape");
	check_bad_template("x", "\\", "'x'");
}

/* Python 3.7+: empty matches, also right after a non-empty match. */
static void test_sub_empty_matches(void **state)
{
	check_sub("x*", "-", "abxd", "-a-b--d-");
	check_sub("", "-", "ab", "-a-b-");
	check_sub("a|", "-", "baac", "-b---c-");
	check_sub("x*", "-", "", "-");
	check_sub("(?:x|)", "-", "xax", "--a--");
	check_sub("\\b", "|", "ab cd", "|ab| |cd|");
	check_sub("$", "E", "a\n", "aE\nE");
	check_sub("(?m)^", ">", "a\nb\n", ">a\n>b\n>");
	check_sub("(?<=a)b", "X", "abab", "aXaX");
	check_sub("\\bx", "Y", "xx x", "Yx Y");
}

static void test_cache_same_result(void **state)
{
	for (int i = 0; i < 3; i++) {
		assert_int_equal(search("^t[0-9]+$", "t42"), 1);
		assert_int_equal(search("^t[0-9]+$", "t4x"), 0);
		check_sub("^t([0-9]+)$", "n\\1", "t42", "n42");
	}
	atex_pyre_cache_clear();
	assert_int_equal(search("^t[0-9]+$", "t42"), 1);
	/* A refused pattern stays refused. */
	assert_int_equal(search("(", "x"), ATEX_ERULE);
	assert_int_equal(search("(", "x"), ATEX_ERULE);
}

/* More patterns than cache slots: every one still gives its own result. */
static void test_cache_many_patterns(void **state)
{
	char pat[64], subj[64];

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 2000; i++) {
			snprintf(pat, sizeof(pat), "^p%d$", i);
			snprintf(subj, sizeof(subj), "p%d", i);
			assert_int_equal(search(pat, subj), 1);
			snprintf(subj, sizeof(subj), "p%d", i + 1);
			assert_int_equal(search(pat, subj), 0);
		}
	}
	atex_pyre_cache_clear();
}

struct worker {
	int id;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	char pat[64], subj[64], want[64];

	for (int i = 0; i < 3000; i++) {
		int k = (i * 7 + w->id) % 400;
		char *out = NULL;

		snprintf(pat, sizeof(pat), "(w)(%d)", k);
		snprintf(subj, sizeof(subj), "<w%d>", k);
		snprintf(want, sizeof(want), "<%d-w>", k);
		if (atex_pyre_search_str(pat, subj) != 1)
			w->failures++;
		if (atex_pyre_sub_str(&out, pat, "\\2-\\1", subj) ||
		    strcmp(out, want))
			w->failures++;
		free(out);
		if (i % 500 == 0)
			atex_pyre_cache_clear();
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[4];
	struct worker w[4];

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.id = i};
		assert_int_equal(
			pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	atex_pyre_cache_clear();
}

/* One compiled pattern shared by threads (the atex_pyre_compile form). */
static struct atex_pyre *shared_re;

static void *shared_run(void *arg)
{
	int *failures = arg;

	for (int i = 0; i < 2000; i++) {
		char *out = NULL;

		if (atex_pyre_search(shared_re, "key: val") != 1 ||
		    atex_pyre_search(shared_re, "nothing") != 0)
			(*failures)++;
		if (atex_pyre_sub(&out, shared_re, "\\g<k>=\\2", "key: val") ||
		    strcmp(out, "key=val"))
			(*failures)++;
		free(out);
	}
	return NULL;
}

static void test_threads_shared_pattern(void **state)
{
	pthread_t th[4];
	int failures[4] = {0};

	assert_int_equal(
		atex_pyre_compile(&shared_re, "(?P<k>\\w+): (\\w+)", 0), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, shared_run, &failures[i]),
			0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(failures[i], 0);
	}
	atex_pyre_free(shared_re);
}

static int teardown(void **state)
{
	atex_pyre_cache_clear();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_fullmatch),
		cmocka_unit_test(test_python_syntax),
		cmocka_unit_test(test_bad_patterns),
		cmocka_unit_test(test_unicode),
		cmocka_unit_test(test_invalid_utf8_subject),
		cmocka_unit_test(test_sub_templates),
		cmocka_unit_test(test_sub_bad_templates),
		cmocka_unit_test(test_sub_empty_matches),
		cmocka_unit_test(test_cache_same_result),
		cmocka_unit_test(test_cache_many_patterns),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_threads_shared_pattern),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
