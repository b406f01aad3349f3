/*
 * test_yaml.c - unit tests of the YAML loader (src/fmf/yaml.c): scalar
 * resolution as ruamel.yaml 0.17 safe/1.2 does it, keys, duplicates, merge
 * keys, anchors and aliases, limits, error positions and the marks table.
 *
 * Expected values were checked against ruamel.yaml 0.17.21 with
 * ruamel.yaml.clib (YAML(typ="safe").load) where ruamel has an answer;
 * the rest (infinity, big integers, ...) are atex's documented choices.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmf/yaml.h"
#include "util/util.h"

#define FILE_NAME "t.yaml"

/* Loads `text`, failing the test with the loader's message on error. */
static json_t *load_marks(const char *text, struct atex_marks *marks)
{
	json_t *v = NULL;
	int rc = atex_yaml_load(&v, text, strlen(text), FILE_NAME, marks);

	if (rc)
		fail_msg("unexpected error for <<%s>>: %s", text,
			 atex_error_last());
	assert_non_null(v);
	return v;
}

static json_t *load(const char *text)
{
	return load_marks(text, NULL);
}

/* Loads `len` bytes expecting ATEX_EFORMAT whose message starts with
 * `prefix` (normally "t.yaml:LINE:COL: ") and contains `part`. */
static void expect_error_n(const char *text, size_t len, const char *prefix,
			   const char *part)
{
	json_t *v = (json_t *)0x1;
	int rc = atex_yaml_load(&v, text, len, FILE_NAME, NULL);
	const char *msg = atex_error_last();

	if (rc != ATEX_EFORMAT)
		fail_msg("expected an error for <<%s>>, got rc %d", text, rc);
	assert_null(v);
	if (strncmp(msg, prefix, strlen(prefix)) || !strstr(msg, part))
		fail_msg("for <<%s>>: message \"%s\" lacks \"%s\"...\"%s\"",
			 text, msg, prefix, part);
}

static void expect_error(const char *text, const char *prefix, const char *part)
{
	expect_error_n(text, strlen(text), prefix, part);
}

/* The value of key "a" in the mapping `text` loads to, as compact JSON. */
static void expect_a(const char *text, const char *json)
{
	json_t *v = load(text);
	json_t *a = json_object_get(v, "a");
	char *dump;

	if (!a)
		fail_msg("<<%s>> has no key a", text);
	dump = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
	if (strcmp(dump, json))
		fail_msg("<<%s>> gave %s, expected %s", text, dump, json);
	free(dump);
	json_decref(v);
}

/* Like expect_a for a plain scalar `scalar` after "a: ". */
static void expect_scalar(const char *scalar, const char *json)
{
	char text[256];

	snprintf(text, sizeof(text), "a: %s", scalar);
	expect_a(text, json);
}

static void expect_json(const char *text, const char *json)
{
	json_t *v = load(text);
	char *dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

	if (strcmp(dump, json))
		fail_msg("<<%s>> gave %s, expected %s", text, dump, json);
	free(dump);
	json_decref(v);
}

/* ---------------------------------------------------------------------- */

static void test_bool(void **state)
{
	(void)state;
	expect_scalar("true", "true");
	expect_scalar("True", "true");
	expect_scalar("TRUE", "true");
	expect_scalar("false", "false");
	expect_scalar("False", "false");
	expect_scalar("FALSE", "false");
	/* YAML 1.1 words stay strings in 1.2 */
	expect_scalar("yes", "\"yes\"");
	expect_scalar("no", "\"no\"");
	expect_scalar("on", "\"on\"");
	expect_scalar("off", "\"off\"");
	expect_scalar("y", "\"y\"");
	expect_scalar("n", "\"n\"");
	expect_scalar("tRue", "\"tRue\"");
	expect_scalar("\"true\"", "\"true\"");
}

static void test_null(void **state)
{
	(void)state;
	expect_scalar("~", "null");
	expect_scalar("null", "null");
	expect_scalar("Null", "null");
	expect_scalar("NULL", "null");
	expect_scalar("", "null");
	expect_scalar("nUll", "\"nUll\"");
	expect_scalar("'~'", "\"~\"");
	expect_json("? a\n", "{\"a\":null}");
	expect_json("{a, b: 1}", "{\"a\":null,\"b\":1}");
}

static void test_empty_document(void **state)
{
	(void)state;
	expect_json("", "null");
	expect_json("# only a comment\n\n", "null");
	expect_json("---\n...\n", "null");
	expect_json("--- !!str\n", "\"\"");
}

static void test_int_decimal(void **state)
{
	(void)state;
	expect_scalar("0", "0");
	expect_scalar("-0", "0");
	expect_scalar("+5", "5");
	expect_scalar("-17", "-17");
	expect_scalar("010", "10"); /* leading zeros stay decimal in 1.2 */
	expect_scalar("09", "9");
	expect_scalar("0_10", "10");
	expect_scalar("1_000", "1000");
	expect_scalar("1__0", "10");
	expect_scalar("1_", "1");
	expect_scalar("_1", "\"_1\"");
	expect_scalar("_", "\"_\"");
	expect_scalar("1,000", "\"1,000\"");
	expect_scalar("1:30", "\"1:30\""); /* no sexagesimals in 1.2 */
	expect_scalar("'12'", "\"12\"");
}

static void test_int_bases(void **state)
{
	(void)state;
	expect_scalar("0o17", "15");
	expect_scalar("0o10", "8");
	expect_scalar("0o1_0", "8");
	expect_scalar("+0o10", "8");
	expect_scalar("0x1F", "31");
	expect_scalar("0x_1F", "31");
	expect_scalar("-0x10", "-16");
	expect_scalar("0b101", "5");
	expect_scalar("0b1_01", "5");
	expect_scalar("0o8", "\"0o8\"");
	expect_scalar("0o", "\"0o\"");
	expect_scalar("0x", "\"0x\"");
	expect_scalar("0b", "\"0b\"");
	expect_scalar("0b2", "\"0b2\"");
	expect_scalar("0X1F", "\"0X1F\"");
}

static void test_int_limits(void **state)
{
	(void)state;
	expect_scalar("9223372036854775807", "9223372036854775807");
	expect_scalar("-9223372036854775808", "-9223372036854775808");
	expect_scalar("0x7fffffffffffffff", "9223372036854775807");
	expect_scalar("-0x8000000000000000", "-9223372036854775808");
	expect_error("a: 9223372036854775808",
		     "t.yaml:1:4: ", "out of the 64-bit range");
	expect_error("a: -9223372036854775809",
		     "t.yaml:1:4: ", "out of the 64-bit range");
	expect_error("a:\n  - 0x8000000000000000",
		     "t.yaml:2:5: ", "out of the 64-bit range");
	/* these match ruamel's int pattern but do not convert, there too */
	expect_error("a: +_", "t.yaml:1:4: ", "invalid integer");
	expect_error("a: 0x_", "t.yaml:1:4: ", "invalid integer");
}

static void expect_real(const char *scalar, double want)
{
	char text[128];
	json_t *v, *a;

	snprintf(text, sizeof(text), "a: %s", scalar);
	v = load(text);
	a = json_object_get(v, "a");
	if (!json_is_real(a) || json_real_value(a) != want)
		fail_msg("%s did not give the real %g", scalar, want);
	json_decref(v);
}

static void test_float(void **state)
{
	(void)state;
	expect_real("1.5", 1.5);
	expect_real("1.", 1.0);
	expect_real("3.", 3.0);
	expect_real("1e3", 1000.0);
	expect_real("1E+3", 1000.0);
	expect_real("1.e5", 100000.0);
	expect_real(".5", 0.5);
	expect_real("+.5", 0.5);
	expect_real("-._5", -0.5);
	expect_real("._5", 0.5);
	expect_real("1._5", 1.5);
	expect_real("1_0.5", 10.5);
	expect_real("-1.5E-3", -0.0015);
	expect_real(".5e+3", 500.0);
	expect_real("0.1", 0.1);
	expect_real("1e-400", 0.0);
	expect_real("6.02e23", 6.02e23);
	/* not floats in ruamel's 1.2 patterns */
	expect_scalar(".5e3", "\".5e3\""); /* exponent sign required here */
	expect_scalar("1e_3", "\"1e_3\"");
	expect_scalar("1.5e", "\"1.5e\"");
	expect_scalar(".", "\".\"");
	expect_scalar("-.nan", "\"-.nan\"");
	expect_scalar(".iNf", "\".iNf\"");
	expect_scalar(".Nan", "\".Nan\"");
	expect_scalar("1e3_", "\"1e3_\"");
	expect_error("a: ._", "t.yaml:1:4: ", "cannot convert");
}

static void test_inf_nan_are_errors(void **state)
{
	(void)state;
	expect_error("a: .inf", "t.yaml:1:4: ", "infinity or NaN");
	expect_error("a: -.Inf", "t.yaml:1:4: ", "infinity or NaN");
	expect_error("a: +.INF", "t.yaml:1:4: ", "infinity or NaN");
	expect_error("a: .nan", "t.yaml:1:4: ", "infinity or NaN");
	expect_error("a: .NaN", "t.yaml:1:4: ", "infinity or NaN");
	expect_error("x: 1\na: [1, 1e400]", "t.yaml:2:8: ", "infinity or NaN");
	expect_error("a: !!float .inf", "t.yaml:1:4: ", "infinity or NaN");
}

static void test_timestamps(void **state)
{
	(void)state;
	expect_scalar("2024-03-01", "\"2024-03-01\"");
	expect_scalar("2024-02-29", "\"2024-02-29\"");
	expect_scalar("2000-02-29", "\"2000-02-29\"");
	/* a bare date needs two-digit month and day; with a time, not */
	expect_scalar("2024-3-1", "\"2024-3-1\"");
	expect_scalar("2024-3-1 1:02:03", "\"2024-03-01T01:02:03\"");
	expect_scalar("2001-12-14 21:59:43.10",
		      "\"2001-12-14T21:59:43.100000\"");
	expect_scalar("2001-12-14\t21:59:43", "\"2001-12-14T21:59:43\"");
	expect_scalar("2001-12-14T21:59:43Z", "\"2001-12-14T21:59:43\"");
	expect_scalar("2001-12-14T21:59:43.000000", "\"2001-12-14T21:59:43\"");
	/* ruamel 0.17 converts to UTC and drops the offset */
	expect_scalar("2001-12-14t21:59:43.10-05:00",
		      "\"2001-12-15T02:59:43.100000\"");
	expect_scalar("2001-12-14T21:59:43 +5", "\"2001-12-14T16:59:43\"");
	expect_scalar("2001-12-14  21:59:43.   -1:30",
		      "\"2001-12-14T23:29:43\"");
	expect_scalar("2001-12-14T21:59:43+14:99", "\"2001-12-14T06:20:43\"");
	expect_scalar("2001-12-14T21:59:43.1234567+05:30",
		      "\"2001-12-14T16:29:43.123457\"");
	/* rounding to a whole second, ruamel's sign quirk included */
	expect_scalar("2001-12-14T21:59:43.9999996", "\"2001-12-14T21:59:44\"");
	expect_scalar("2001-12-14T21:59:43.9999996-01:00",
		      "\"2001-12-14T22:59:44\"");
	expect_scalar("2001-12-14T21:59:43.9999996+01:00",
		      "\"2001-12-14T20:59:42\"");
	expect_scalar("2001-12-31T23:30:00-01:00", "\"2002-01-01T00:30:00\"");
	/* not timestamps */
	expect_scalar("2001-12-14T21:59", "\"2001-12-14T21:59\"");
	expect_scalar("2001-12-14T21:59:43+123", "\"2001-12-14T21:59:43+123\"");
	expect_scalar("'2024-03-01'", "\"2024-03-01\"");
	expect_scalar("!!timestamp 2024-3-1", "\"2024-03-01\"");
	expect_scalar("!!timestamp '2001-12-14 21:59:43'",
		      "\"2001-12-14T21:59:43\"");
	expect_json("2024-01-01: a", "{\"2024-01-01\":\"a\"}");
}

static void test_bad_timestamps(void **state)
{
	(void)state;
	expect_error("a: 2024-13-45", "t.yaml:1:4: ", "month must be in 1..12");
	expect_error("x: 1\ny: [2023-02-29]",
		     "t.yaml:2:5: ", "day is out of range for month");
	expect_error("a: 1900-02-29", "t.yaml:1:4: ", "day is out of range");
	expect_error("a: 0000-01-01", "t.yaml:1:4: ", "year 0 is out of range");
	expect_error("a: 2001-12-14T25:00:00",
		     "t.yaml:1:4: ", "hour must be in 0..23");
	expect_error("a: 2001-12-14T21:60:00",
		     "t.yaml:1:4: ", "minute must be in 0..59");
	expect_error("a: 2001-12-14T21:59:60",
		     "t.yaml:1:4: ", "second must be in 0..59");
	expect_error("a: 0001-01-01T00:30:00+01:00",
		     "t.yaml:1:4: ", "date value out of range");
	expect_error("a: 9999-12-31T23:59:59-01:00",
		     "t.yaml:1:4: ", "date value out of range");
	expect_error("a: !!timestamp x",
		     "t.yaml:1:4: ", "failed to construct timestamp");
	expect_error("a: !!timestamp '2001-12-14 21:59:43 '",
		     "t.yaml:1:4: ", "failed to construct timestamp");
}

static void test_quoted_and_block_scalars(void **state)
{
	(void)state;
	expect_json("a: \"1\"\nb: '1.5'\nc: |\n  true\nd: >\n  null\n"
		    "e: \"\"\nf: ''",
		    "{\"a\":\"1\",\"b\":\"1.5\",\"c\":\"true\\n\","
		    "\"d\":\"null\\n\",\"e\":\"\",\"f\":\"\"}");
	/* "!" is the non-specific tag: ruamel resolves even quoted text */
	expect_scalar("! '12'", "12");
	expect_scalar("! 1.5", "1.5");
	expect_scalar("\"a\\x41\\u00e9\"", "\"aA\xc3\xa9\"");
}

static void test_explicit_tags(void **state)
{
	(void)state;
	expect_scalar("!!str 12", "\"12\"");
	expect_scalar("!!str", "\"\"");
	expect_scalar("!!str true", "\"true\"");
	expect_scalar("!<tag:yaml.org,2002:str> 5", "\"5\"");
	expect_scalar("!!int \"12\"", "12");
	expect_scalar("!!int 0x1f", "31");
	expect_scalar("!!int '+0x_1'", "1");
	expect_scalar("!!int ' 7 '", "7");
	expect_scalar("!!float 12", "12.0");
	expect_scalar("!!float \"1e3\"", "1000.0");
	expect_scalar("!!float 1_0", "10.0");
	expect_scalar("!!bool yes", "true");
	expect_scalar("!!bool OFF", "false");
	expect_scalar("!!bool \"true\"", "true");
	expect_scalar("!!null x", "null");
	expect_scalar("!!null", "null");
	expect_scalar("!!map {b: 1}", "{\"b\":1}");
	expect_scalar("!!seq [1]", "[1]");
	expect_json("%TAG !e! tag:yaml.org,2002:\n---\n- !e!int \"12\"",
		    "[12]");
}

static void test_tag_errors(void **state)
{
	(void)state;
	expect_error("a: !foo x", "t.yaml:1:4: ",
		     "could not determine a constructor for the tag '!foo'");
	expect_error("a: !foo {b: 1}", "t.yaml:1:4: ",
		     "could not determine a constructor for the tag '!foo'");
	expect_error("- !!python/str x",
		     "t.yaml:1:3: ", "tag 'tag:yaml.org,2002:python/str'");
	expect_error("a: !!binary aGVsbG8=", "t.yaml:1:4: ",
		     "!!binary is not supported");
	expect_error("a: !!map [1]", "t.yaml:1:4: ",
		     "expected a mapping node, but found sequence");
	expect_error("a: !!seq x", "t.yaml:1:4: ",
		     "expected a sequence node, but found scalar");
	expect_error("a: !!str {b: 1}", "t.yaml:1:4: ",
		     "expected a scalar node, but found mapping");
	expect_error("a: !!set {x}", "t.yaml:1:4: ", "not supported");
	expect_error("a: !!omap [b: 1]", "t.yaml:1:4: ", "not supported");
	expect_error("a: !!int 1.5", "t.yaml:1:4: ", "invalid integer");
	expect_error("a: !!int", "t.yaml:1:4: ", "invalid integer");
	expect_error("a: !!float abc", "t.yaml:1:4: ", "cannot convert");
	expect_error("a: !!bool maybe", "t.yaml:1:4: ", "invalid boolean");
	expect_error("a: <<", "t.yaml:1:4: ", "tag:yaml.org,2002:merge");
	expect_error("- =", "t.yaml:1:3: ", "tag:yaml.org,2002:value");
}

static void test_keys_converted(void **state)
{
	(void)state;
	expect_json("2: a\ntrue: b\n~: c\n1.5: d\n0x10: e\n=: f\nfalse: g",
		    "{\"2\":\"a\",\"true\":\"b\",\"null\":\"c\",\"1.5\":\"d\","
		    "\"16\":\"e\",\"=\":\"f\",\"false\":\"g\"}");
	/* float keys as Python's repr writes them */
	expect_json("1e20: a", "{\"1e+20\":\"a\"}");
	expect_json("1e16: a", "{\"1e+16\":\"a\"}");
	expect_json("1e15: a", "{\"1000000000000000.0\":\"a\"}");
	expect_json("0.0001: a", "{\"0.0001\":\"a\"}");
	expect_json("0.00001: a", "{\"1e-05\":\"a\"}");
	expect_json("1.5e-7: a", "{\"1.5e-07\":\"a\"}");
	expect_json("-0.0: a", "{\"-0.0\":\"a\"}");
	expect_json("0.1: a", "{\"0.1\":\"a\"}");
	expect_json("123456.789: a", "{\"123456.789\":\"a\"}");
	expect_json("1.: a", "{\"1.0\":\"a\"}");
	expect_json(".inf: a\n-.inf: b\n.nan: c",
		    "{\"Infinity\":\"a\",\"-Infinity\":\"b\",\"NaN\":\"c\"}");
	expect_json("\"\": a", "{\"\":\"a\"}");
	expect_json("? !!str\n: 1", "{\"\":1}");
}

static void test_key_order_kept(void **state)
{
	(void)state;
	expect_json("z: 1\na: 2\nm: 3\nb: 4",
		    "{\"z\":1,\"a\":2,\"m\":3,\"b\":4}");
}

static void test_container_keys(void **state)
{
	(void)state;
	expect_error("? [1, 2]\n: a",
		     "t.yaml:1:3: ", "a sequence cannot be a mapping key");
	expect_error("x: 1\n? {a: 1}\n: b",
		     "t.yaml:2:3: ", "a mapping cannot be a mapping key");
	expect_error("[1]: 2", "t.yaml:1:1: ", "a sequence cannot be");
	expect_error("a: &m {b: 1}\n*m : 2",
		     "t.yaml:2:1: ", "a mapping cannot be a mapping key");
	expect_error_n("\"a\\0b\": 1", 9, "t.yaml:1:1: ", "NUL character");
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	expect_error("a: 1\na: 2", "t.yaml:2:1: ", "found duplicate key \"a\"");
	expect_error(
		"a: 1\nb:\n  c: 1\n  d: 2\n  c: 3", "t.yaml:5:3: ",
		"duplicate key \"c\" (in the mapping at line 3, column 3)");
	expect_error("{a: 1, b: 2, a: 3}",
		     "t.yaml:1:14: ", "found duplicate key \"a\"");
	expect_error("- x\n- {k: 1, k: 1}",
		     "t.yaml:2:10: ", "found duplicate key \"k\"");
	/* keys equal under Python's ==, as in ruamel */
	expect_error("1: a\n1.0: b", "t.yaml:2:1: ", "duplicate key \"1.0\"");
	expect_error("true: a\n1: b", "t.yaml:2:1: ", "duplicate key \"1\"");
	expect_error("1: a\n0x1: b", "t.yaml:2:1: ", "duplicate key \"1\"");
	expect_error("0: a\n-0.0: b", "t.yaml:2:1: ", "duplicate key \"-0.0\"");
	expect_error("null: a\n~: b", "t.yaml:2:1: ", "duplicate key \"null\"");
	/* same JSON key from different types */
	expect_error("1: a\n\"1\": b", "t.yaml:2:1: ", "duplicate key \"1\"");
	/* via aliases */
	expect_error("&a a: &b b\n*a : *b",
		     "t.yaml:2:1: ", "duplicate key \"a\"");
	/* distinct */
	expect_json("1: a\n1.5: b\n\"2\": c", "{\"1\":\"a\",\"1.5\":\"b\","
					      "\"2\":\"c\"}");
}

static void test_merge_keys(void **state)
{
	(void)state;
	expect_json(
		"b: &b {x: 1, y: 2}\nd:\n  <<: *b\n  z: 3",
		"{\"b\":{\"x\":1,\"y\":2},\"d\":{\"x\":1,\"y\":2,\"z\":3}}");
	/* earlier mappings of a list win; the later ones' keys come first */
	expect_json("b: &b {x: 1, y: 2}\nc: &c {x: 3, z: 4}\n"
		    "d:\n  <<: [*b, *c]\n  y: 9\n  w: 0",
		    "{\"b\":{\"x\":1,\"y\":2},\"c\":{\"x\":3,\"z\":4},"
		    "\"d\":{\"x\":1,\"z\":4,\"y\":9,\"w\":0}}");
	/* explicit keys win wherever "<<" stands; no duplicate error */
	expect_json("a: &a {k: 1, j: 2}\nb:\n  k: 5\n  <<: *a",
		    "{\"a\":{\"k\":1,\"j\":2},\"b\":{\"k\":5,\"j\":2}}");
	/* an inline mapping and nested merges */
	expect_json("y:\n  <<: {a: 1, <<: {b: 2, a: 3}}\n  c: 4",
		    "{\"y\":{\"b\":2,\"a\":1,\"c\":4}}");
	expect_json("y: {!!merge <<: {a: 1}}", "{\"y\":{\"a\":1}}");
	/* a quoted "<<" is an ordinary key */
	expect_json("b: &b {x: 1}\nd:\n  \"<<\": *b",
		    "{\"b\":{\"x\":1},\"d\":{\"<<\":{\"x\":1}}}");
	/* ruamel checks no duplicates at all in a mapping that merged
	 * something; later values win */
	expect_json("<<: {x: 1}\na: 1\na: 2", "{\"x\":1,\"a\":2}");
	/* ...but does when nothing was merged */
	expect_error("<<: {}\na: 1\na: 2",
		     "t.yaml:3:1: ", "duplicate key \"a\"");
	/* the mapping "<<" names is not checked either, unless used again */
	expect_json("k: {<<: {null: 1, ~: 2}}", "{\"k\":{\"null\":2}}");
	expect_error("k: {<<: [&m {a: 1, a: 2}]}\nj: *m",
		     "t.yaml:1:20: ", "duplicate key \"a\"");
}

static void test_merge_errors(void **state)
{
	(void)state;
	expect_error("b: &b {x: 1}\nd:\n  <<: *b\n  <<: *b",
		     "t.yaml:4:3: ", "found duplicate key \"<<\"");
	expect_error("d:\n  <<: 5", "t.yaml:2:7: ",
		     "expected a mapping or list of mappings for merging");
	expect_error("d:\n  <<: [{a: 1}, 3]", "t.yaml:2:7: ",
		     "expected a mapping for merging, but found scalar");
	expect_error("d:\n  <<: [[1]]", "t.yaml:2:7: ",
		     "expected a mapping for merging, but found sequence");
}

static void test_aliases_share_values(void **state)
{
	json_t *v, *a, *b;

	(void)state;
	v = load("a: &x {k: [1, 2]}\nb: *x\nc: &s str\nd: *s");
	a = json_object_get(v, "a");
	b = json_object_get(v, "b");
	assert_non_null(a);
	assert_ptr_equal(a, b); /* shared, not copied */
	assert_string_equal(json_string_value(json_object_get(v, "d")), "str");
	json_decref(v);
	expect_json("- &a [1, 2]\n- *a\n- *a", "[[1,2],[1,2],[1,2]]");
	expect_json("&k key: v\nother: *k",
		    "{\"key\":\"v\",\"other\":\"key\"}");
	expect_json("a: &n 5\n*n : six", "{\"a\":5,\"5\":\"six\"}");
}

static void test_alias_errors(void **state)
{
	(void)state;
	expect_error("a: *x", "t.yaml:1:4: ", "found undefined alias *x");
	expect_error("- &a 1\n- &a 2", "t.yaml:2:3: ",
		     "found duplicate anchor &a (first at line 1, column 3)");
	expect_error("- &a [&a 1]", "t.yaml:1:7: ", "duplicate anchor &a");
	expect_error("a: {b: &r [*r]}",
		     "t.yaml:1:12: ", "alias *r is inside the node it names");
}

static void test_alias_bomb(void **state)
{
	static const char bomb[] =
		"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		"h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
		"i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	json_t *v;

	(void)state;
	expect_error(bomb, "t.yaml:", "aliases expand to more than 1000000");
	/* the first lines alone stay under the limit */
	v = load("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		 "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		 "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n");
	assert_int_equal(json_array_size(json_object_get(v, "c")), 10);
	json_decref(v);
}

static char *nested(int depth)
{
	char *s = malloc((size_t)depth * 2 + 1);
	int i;

	assert_non_null(s);
	for (i = 0; i < depth; i++) {
		s[i] = '[';
		s[depth + i] = ']';
	}
	s[depth * 2] = '\0';
	return s;
}

static void test_depth_limit(void **state)
{
	char *s;
	json_t *v;

	(void)state;
	s = nested(512);
	v = load(s);
	assert_true(json_is_array(v));
	json_decref(v);
	free(s);
	s = nested(513);
	expect_error(s, "t.yaml:1:513: ", "nesting deeper than 512 levels");
	free(s);
	s = nested(100000);
	expect_error(s, "t.yaml:1:513: ", "nesting deeper than 512 levels");
	free(s);
}

static void test_documents(void **state)
{
	json_t *v;

	(void)state;
	expect_error("a: 1\n---\nb: 2", "t.yaml:2:1: ",
		     "expected a single document in the stream");
	expect_error("--- 1\n--- 2", "t.yaml:2:1: ", "single document");
	v = load("--- 5\n");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), 5);
	json_decref(v);
	expect_json("[1, b]", "[1,\"b\"]");
	expect_json("%YAML 1.1\n---\na: yes\nb: 010",
		    "{\"a\":\"yes\",\"b\":10}");
	expect_json("a: 1\n...\n", "{\"a\":1}");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	expect_error("a: [1", "t.yaml:2:1: ",
		     "did not find expected ',' or ']' (while parsing a flow "
		     "sequence)");
	expect_error("key: \"unterminated", "t.yaml:1:19: ",
		     "found unexpected end of stream (while scanning a quoted "
		     "scalar)");
	expect_error("a: b: c", "t.yaml:1:5: ",
		     "mapping values are not allowed in this context");
	expect_error("a: 1\n b: 2", "t.yaml:2:3: ", "mapping values");
	expect_error("a:\n\t- b", "t.yaml:2:1: ",
		     "found character that cannot start any token");
	expect_error("a: \"\\ud800\"", "t.yaml:1:", "escape");
}

static void test_flow_colon(void **state)
{
	(void)state;
	/* the libyaml in ruamel.yaml.clib refuses these */
	expect_error("[a:b]", "t.yaml:1:3: ", "found unexpected ':'");
	expect_error("x: [a, http://x]",
		     "t.yaml:1:12: ", "found unexpected ':'");
	expect_error("{a: b:c}", "t.yaml:1:6: ", "found unexpected ':'");
	/* fine: a pair in a flow sequence, quoted, or block context */
	expect_json("[a: b]", "[{\"a\":\"b\"}]");
	expect_json("['a:b', \"c:d\"]", "[\"a:b\",\"c:d\"]");
	expect_json("a: b:c\nu: http://x",
		    "{\"a\":\"b:c\",\"u\":\"http://x\"}");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	expect_error("a: \xff", "t.yaml:1:4: ", "invalid leading UTF-8 octet");
	expect_error("a: b\n\xc3",
		     "t.yaml:2:1: ", "incomplete UTF-8 octet sequence");
	expect_error("a: \xc3\xa9\xc3\x28",
		     "t.yaml:1:6: ", "invalid trailing UTF-8 octet");
	expect_error("a: \xed\xa0\x80", "t.yaml:1:4: ", "");
	expect_error_n("a: b\0c", 6,
		       "t.yaml:1:5: ", "control characters are not allowed");
	expect_error("a: \x01", "t.yaml:1:4: ", "control characters");
}

static void test_bom_and_unicode(void **state)
{
	(void)state;
	expect_json("\xef\xbb\xbf"
		    "a: 1",
		    "{\"a\":1}");
	expect_json("\xc3\xa9t\xc3\xa9: caf\xc3\xa9",
		    "{\"\xc3\xa9t\xc3\xa9\":\"caf\xc3\xa9\"}");
	/* columns count characters, not bytes */
	expect_error("\xc3\xa9: 1\n\xc3\xa9: 2",
		     "t.yaml:2:1: ", "duplicate key");
	expect_error("\xc3\xa9\xc3\xa9: &a 1\nb: &a 2", "t.yaml:2:4: ",
		     "duplicate anchor &a (first at line 1, column 5)");
}

static void test_value_key(void **state)
{
	(void)state;
	expect_json("=: 1", "{\"=\":1}");
	expect_json("{!!value x: 1}", "{\"x\":1}");
	expect_error("a: =", "t.yaml:1:4: ", "tag:yaml.org,2002:value");
}

static void test_marks(void **state)
{
	struct atex_marks *marks = atex_marks_new();
	const struct atex_mark *m;
	json_t *v, *b, *list;

	(void)state;
	assert_non_null(marks);
	v = load_marks(
		"# comment\na: 1\nb:\n  c: x\n  d:\n    - 1\n    - [2]\n",
		marks);
	b = json_object_get(v, "b");
	list = json_object_get(b, "d");

	m = atex_marks_find(marks, v, NULL);
	assert_non_null(m);
	assert_string_equal(m->file, FILE_NAME);
	assert_int_equal(m->line, 2);
	assert_int_equal(m->column, 1);

	m = atex_marks_find(marks, v, "b");
	assert_non_null(m);
	assert_int_equal(m->line, 3);
	assert_int_equal(m->column, 1);

	m = atex_marks_find(marks, b, "d");
	assert_non_null(m);
	assert_int_equal(m->line, 5);
	assert_int_equal(m->column, 3);

	m = atex_marks_find(marks, b, NULL);
	assert_non_null(m);
	assert_int_equal(m->line, 4);
	assert_int_equal(m->column, 3);

	m = atex_marks_find(marks, list, NULL);
	assert_non_null(m);
	assert_int_equal(m->line, 6);
	assert_int_equal(m->column, 5);

	m = atex_marks_find(marks, json_array_get(list, 1), NULL);
	assert_non_null(m);
	assert_int_equal(m->line, 7);
	assert_int_equal(m->column, 7);

	assert_null(atex_marks_find(marks, v, "nope"));
	assert_null(atex_marks_find(marks, b, "b"));
	assert_null(atex_marks_find(marks, json_object_get(v, "a"), NULL));
	assert_null(atex_marks_find(NULL, v, NULL));
	json_decref(v);
	atex_marks_free(marks);
}

static void test_marks_outlive_values(void **state)
{
	struct atex_marks *marks = atex_marks_new();
	const struct atex_mark *m;
	json_t *v, *inner;

	(void)state;
	v = load_marks("x:\n  y: 1\n", marks);
	inner = json_incref(json_object_get(v, "x"));
	json_decref(v); /* the table keeps its own references */
	m = atex_marks_find(marks, inner, "y");
	assert_non_null(m);
	assert_int_equal(m->line, 2);
	assert_int_equal(m->column, 3);
	json_decref(inner);
	atex_marks_free(marks);
}

static void test_marks_flow_and_merge(void **state)
{
	struct atex_marks *marks = atex_marks_new();
	const struct atex_mark *m;
	json_t *v, *d;

	(void)state;
	v = load_marks("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", marks);
	d = json_object_get(v, "d");
	m = atex_marks_find(marks, d, "x"); /* where the merged key is */
	assert_non_null(m);
	assert_int_equal(m->line, 1);
	assert_int_equal(m->column, 11);
	m = atex_marks_find(marks, d, "y"); /* the explicit one wins */
	assert_non_null(m);
	assert_int_equal(m->line, 4);
	assert_int_equal(m->column, 3);
	m = atex_marks_find(marks, d, NULL);
	assert_non_null(m);
	assert_int_equal(m->line, 3);
	assert_int_equal(m->column, 3);
	json_decref(v);
	atex_marks_free(marks);
}

static void test_marks_files_interned(void **state)
{
	struct atex_marks *marks = atex_marks_new();
	const struct atex_mark *m1, *m2;
	json_t *v1, *v2;
	char name[32];

	(void)state;
	strcpy(name, "one.fmf");
	assert_int_equal(atex_yaml_load(&v1, "a: 1", 4, name, marks), 0);
	strcpy(name, "two.fmf"); /* the caller's buffer changes */
	assert_int_equal(atex_yaml_load(&v2, "b: 1", 4, name, marks), 0);
	m1 = atex_marks_find(marks, v1, "a");
	m2 = atex_marks_find(marks, v2, "b");
	assert_non_null(m1);
	assert_non_null(m2);
	assert_string_equal(m1->file, "one.fmf");
	assert_string_equal(m2->file, "two.fmf");
	assert_int_equal(atex_marks_add(marks, v1, "z", "two.fmf", 9, 8), 0);
	assert_ptr_equal(atex_marks_find(marks, v1, "z")->file, m2->file);
	/* add replaces */
	assert_int_equal(atex_marks_add(marks, v1, "a", "one.fmf", 5, 6), 0);
	assert_int_equal(atex_marks_find(marks, v1, "a")->line, 5);
	assert_int_equal(atex_marks_find(marks, v1, "a")->column, 6);
	json_decref(v1);
	json_decref(v2);
	atex_marks_free(marks);
	atex_marks_free(NULL);
}

static void test_marks_many(void **state)
{
	struct atex_marks *marks = atex_marks_new();
	struct atex_buf b = ATEX_BUF_INIT;
	const struct atex_mark *m;
	char key[32];
	json_t *v;
	int i;

	(void)state;
	for (i = 0; i < 20000; i++)
		assert_int_equal(atex_buf_printf(&b, "k%d: [%d]\n", i, i), 0);
	v = load_marks(b.ptr, marks);
	assert_int_equal(json_object_size(v), 20000);
	for (i = 0; i < 20000; i += 997) {
		snprintf(key, sizeof(key), "k%d", i);
		m = atex_marks_find(marks, v, key);
		assert_non_null(m);
		assert_int_equal(m->line, i + 1);
		m = atex_marks_find(marks, json_object_get(v, key), NULL);
		assert_non_null(m);
		assert_int_equal(m->column, (int)strlen(key) + 3);
	}
	json_decref(v);
	atex_buf_free(&b);
	atex_marks_free(marks);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/atex-test-yaml-XXXXXX";
	struct atex_marks *marks = atex_marks_new();
	json_t *v = NULL;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a: [1, 2]\nb: x\nb: y\n", 20), 20);
	close(fd);
	assert_int_equal(atex_yaml_load_file(&v, path, marks), ATEX_EFORMAT);
	assert_null(v);
	assert_true(strncmp(atex_error_last(), path, strlen(path)) == 0);
	assert_non_null(strstr(atex_error_last(), ":3:1: found duplicate key"));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a: [1, 2]\n", 10), 10);
	close(fd);
	assert_int_equal(atex_yaml_load_file(&v, path, marks), 0);
	assert_int_equal(json_array_size(json_object_get(v, "a")), 2);
	assert_string_equal(atex_marks_find(marks, v, "a")->file, path);
	json_decref(v);
	unlink(path);
	assert_int_equal(atex_yaml_load_file(&v, path, marks), ATEX_EIO);
	assert_null(v);
	assert_non_null(strstr(atex_error_last(), path));
	atex_marks_free(marks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_empty_document),
		cmocka_unit_test(test_int_decimal),
		cmocka_unit_test(test_int_bases),
		cmocka_unit_test(test_int_limits),
		cmocka_unit_test(test_float),
		cmocka_unit_test(test_inf_nan_are_errors),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_bad_timestamps),
		cmocka_unit_test(test_quoted_and_block_scalars),
		cmocka_unit_test(test_explicit_tags),
		cmocka_unit_test(test_tag_errors),
		cmocka_unit_test(test_keys_converted),
		cmocka_unit_test(test_key_order_kept),
		cmocka_unit_test(test_container_keys),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_merge_keys),
		cmocka_unit_test(test_merge_errors),
		cmocka_unit_test(test_aliases_share_values),
		cmocka_unit_test(test_alias_errors),
		cmocka_unit_test(test_alias_bomb),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_documents),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_flow_colon),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_bom_and_unicode),
		cmocka_unit_test(test_value_key),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_marks_outlive_values),
		cmocka_unit_test(test_marks_flow_and_merge),
		cmocka_unit_test(test_marks_files_interned),
		cmocka_unit_test(test_marks_many),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
