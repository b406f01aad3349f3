/*
 * test_control.c - the control channel parser (src/executor/control.h).
 *
 * Every stream is run through a recording handler that writes what it is
 * handed as a text log, and every stream is fed several ways: whole, one
 * byte at a time, and in pieces of a few odd sizes. All of them must give
 * the same log, return code and message, since where read() splits the
 * stream is chance. After an error each run also feeds the rest again and
 * finishes, and checks that nothing more reaches the handler and the
 * same error comes back.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "executor/control.h"
#include "util/util.h"

/* A string literal with its length, NULs included. */
#define S(lit) lit, sizeof(lit) - 1

/* ------------------------------------------------------------------------
 * The recording handler
 */

struct rec {
	struct atex_buf log;
	long open_file;	  /* index whose data the log is in, or -1 */
	bool in_result;	  /* between result_begin and result_end */
	size_t pieces;	  /* file_data calls */
	const char *feed; /* the buffer being fed, to see data is not copied */
	size_t feed_len;
	bool copied;	  /* some file_data pointed outside it */
	const char *fail; /* the event to fail on, or NULL */
	int fail_code;	  /* what failing returns */
	bool fail_silent; /* fail without setting a message */
	bool dead;	  /* a failure was returned */
	bool called_dead; /* the handler was called after that */
	json_t *keep;	  /* the last result, when asked to keep it */
	bool keep_results;
};

static void rec_close_data(struct rec *r)
{
	if (r->open_file >= 0)
		assert_int_equal(atex_buf_putc(&r->log, '\n'), 0);
	r->open_file = -1;
}

/* Logs an event; returns what the handler should return. */
static int rec_event(struct rec *r, const char *name, const char *fmt, ...)
	ATEX_PRINTF(3, 4);

static int rec_event(struct rec *r, const char *name, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (r->dead)
		r->called_dead = true;
	rec_close_data(r);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	assert_int_equal(atex_buf_puts(&r->log, line), 0);
	if (!r->fail || strcmp(r->fail, name) != 0)
		return 0;
	r->dead = true;
	if (r->fail_silent)
		atex_error_clear();
	else
		atex_error_set(r->fail_code, "disk full at %s", name);
	return r->fail_code;
}

static int rec_begin(void *userdata, json_t *result)
{
	struct rec *r = userdata;
	char *text = json_dumps(result, JSON_COMPACT);
	int rc;

	assert_non_null(text);
	assert_false(r->in_result);
	r->in_result = true;
	rc = rec_event(r, "begin", "begin %s\n", text);
	free(text);
	if (r->keep_results) {
		json_decref(r->keep);
		r->keep = result;
	} else {
		json_decref(result);
	}
	return rc;
}

static int rec_data(void *userdata, size_t index, const void *data, size_t len)
{
	struct rec *r = userdata;
	const char *p = data;

	assert_true(r->in_result);
	/* Pieces are never empty, and are the caller's bytes. */
	assert_true(len > 0);
	if (p < r->feed || p + len > r->feed + r->feed_len)
		r->copied = true;
	r->pieces++;
	if (r->dead)
		r->called_dead = true;
	if (r->open_file != (long)index) {
		rec_close_data(r);
		assert_int_equal(atex_buf_printf(&r->log, "file %zu: ", index),
				 0);
		r->open_file = (long)index;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)p[i];

		if (b >= 0x20 && b < 0x7f && b != '\\')
			assert_int_equal(atex_buf_putc(&r->log, (char)b), 0);
		else
			assert_int_equal(atex_buf_printf(&r->log, "\\x%02x", b),
					 0);
	}
	if (r->fail && !strcmp(r->fail, "data")) {
		r->dead = true;
		atex_error_set(r->fail_code, "disk full at data");
		return r->fail_code;
	}
	return 0;
}

static int rec_end(void *userdata)
{
	struct rec *r = userdata;

	assert_true(r->in_result);
	r->in_result = false;
	return rec_event(r, "end", "end\n");
}

static int rec_exitcode(void *userdata, int code)
{
	return rec_event(userdata, "exitcode", "exitcode %d\n", code);
}

static int rec_duration(void *userdata, enum atex_control_duration_kind kind,
			double seconds)
{
	static const char *const names[] = {"set", "add", "sub", "save",
					    "restore"};

	assert_true((size_t)kind < ATEX_ARRAY_SIZE(names));
	return rec_event(userdata, "duration", "duration %s %.17g\n",
			 names[kind], seconds);
}

static int rec_disconnect(void *userdata)
{
	return rec_event(userdata, "disconnect", "disconnect\n");
}

static const struct atex_control_handler rec_handler = {
	.result_begin = rec_begin,
	.file_data = rec_data,
	.result_end = rec_end,
	.exitcode = rec_exitcode,
	.duration = rec_duration,
	.disconnect = rec_disconnect,
};

/* ------------------------------------------------------------------------
 * Running streams
 */

struct outcome {
	char *log;
	int rc;
	char *error; /* atex_control_error(), or NULL */
	size_t pieces;
};

static void outcome_free(struct outcome *o)
{
	free(o->log);
	free(o->error);
}

/* A message is one printable line. */
static void assert_one_line(const char *message)
{
	for (const char *p = message; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			fail_msg("control char in message: %s", message);
}

static int feed(atex_control *c, struct rec *r, const char *data, size_t len)
{
	r->feed = data;
	r->feed_len = len;
	return atex_control_feed(c, data, len);
}

/* After an error: more data and the end change nothing. */
static void check_dead(atex_control *c, struct rec *r, int rc, const char *data,
		       size_t len)
{
	size_t log_len = r->log.len;
	char *error = strdup(atex_control_error(c));

	assert_non_null(error);
	assert_true(rc < 0);
	assert_string_equal(atex_error_last(), error);
	assert_int_equal(atex_error_last_code(), rc);
	assert_one_line(error);
	assert_false(atex_control_idle(c));
	atex_error_clear();
	assert_int_equal(feed(c, r, data, len), rc);
	assert_int_equal(feed(c, r, "noop\n", 5), rc);
	assert_int_equal(feed(c, r, "", 0), rc);
	/* The message comes back with the code, each time. */
	assert_string_equal(atex_error_last(), error);
	assert_int_equal(atex_control_finish(c), rc);
	assert_string_equal(atex_control_error(c), error);
	assert_int_equal(r->log.len, log_len);
	assert_false(r->called_dead);
	free(error);
}

/*
 * Feeds `data` in pieces of `chunk` bytes (0: at once) and finishes, with
 * the handler of `r` (filled in by the caller for failures). Stops at the
 * first error, then checks the channel stays dead.
 */
static struct outcome run_with(struct rec *r, const char *data, size_t len,
			       size_t chunk, size_t limit)
{
	struct outcome o = {.rc = 0};
	atex_control *c;
	size_t off = 0;

	r->open_file = -1;
	assert_int_equal(atex_control_new(&c, &rec_handler, r, limit), 0);
	assert_true(atex_control_idle(c));
	assert_null(atex_control_error(c));
	while (off < len && o.rc == 0) {
		size_t n = chunk && len - off > chunk ? chunk : len - off;

		o.rc = feed(c, r, data + off, n);
		off += n;
	}
	if (o.rc == 0) {
		assert_null(atex_control_error(c));
		o.rc = atex_control_finish(c);
	}
	if (o.rc != 0) {
		o.error = strdup(atex_control_error(c));
		assert_non_null(o.error);
		check_dead(c, r, o.rc, data, len);
	} else {
		assert_true(atex_control_idle(c));
		assert_false(r->in_result);
	}
	assert_false(r->copied);
	rec_close_data(r);
	o.log = atex_buf_detach(&r->log);
	assert_non_null(o.log);
	o.pieces = r->pieces;
	atex_control_free(c);
	return o;
}

static struct outcome run(const char *data, size_t len, size_t chunk,
			  size_t limit)
{
	struct rec r = {.open_file = -1};

	return run_with(&r, data, len, chunk, limit);
}

/*
 * Runs `data` whole and in pieces of several sizes: all the same, and as
 * expected. `error` NULL: must succeed; otherwise the message must
 * contain it (exact when `exact`).
 */
static void check_limit(const char *data, size_t len, size_t limit,
			const char *log, const char *error, bool exact)
{
	static const size_t chunks[] = {1, 2, 3, 5, 7, 64, 4095, 4096, 4097};
	struct outcome whole = run(data, len, 0, limit);

	assert_string_equal(whole.log, log);
	if (!error) {
		if (whole.rc != 0)
			fail_msg("unexpected error: %s", whole.error);
	} else {
		assert_int_equal(whole.rc, ATEX_EFORMAT);
		if (exact)
			assert_string_equal(whole.error, error);
		else if (!strstr(whole.error, error))
			fail_msg("'%s' does not contain '%s'", whole.error,
				 error);
	}
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(chunks); i++) {
		struct outcome o = run(data, len, chunks[i], limit);

		assert_string_equal(o.log, whole.log);
		assert_int_equal(o.rc, whole.rc);
		if (whole.error)
			assert_string_equal(o.error, whole.error);
		else
			assert_null(o.error);
		outcome_free(&o);
	}
	outcome_free(&whole);
}

static void check(const char *data, size_t len, const char *log,
		  const char *error)
{
	check_limit(data, len, 0, log, error, false);
}

static void check_exact(const char *data, size_t len, const char *log,
			const char *error)
{
	check_limit(data, len, 0, log, error, true);
}

/* A stream of one line: refused with a message containing `error`. */
static void refuse_line(const char *line, const char *error)
{
	char buf[8192];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s\n", line);

	check(buf, n, "", error);
}

/* `result N\n` + json + contents; the caller frees. */
static char *result_stream(const char *json, const char *contents, size_t *len)
{
	struct atex_buf b = ATEX_BUF_INIT;

	assert_int_equal(atex_buf_printf(&b, "result %zu\n%s%s", strlen(json),
					 json, contents),
			 0);
	*len = b.len;
	return atex_buf_detach(&b);
}

/* A result with no contents that must be refused for `error`. */
static void refuse_result(const char *json, const char *error)
{
	size_t len;
	char *s = result_stream(json, "", &len);

	check(s, len, "", error);
	free(s);
}

/* A result with no contents that must be accepted as `logged`. */
static void accept_result(const char *json, const char *logged)
{
	char log[1024];
	size_t len;
	char *s = result_stream(json, "", &len);

	snprintf(log, sizeof(log), "begin %s\nend\n", logged);
	check(s, len, log, NULL);
	free(s);
}

/* ------------------------------------------------------------------------
 * Words
 */

static void test_noop_and_empty_stream(void **state)
{
	check(S(""), "", NULL);
	check(S("noop\n"), "", NULL);
	check(S("noop\nnoop\nnoop\n"), "", NULL);
	refuse_line("noop x", "'noop' takes no arguments");
	refuse_line("noop ", "'noop' takes no arguments");
}

static void test_disconnect(void **state)
{
	check(S("disconnect\n"), "disconnect\n", NULL);
	check(S("disconnect\nnoop\ndisconnect\n"), "disconnect\ndisconnect\n",
	      NULL);
	refuse_line("disconnect now", "'disconnect' takes no arguments");
	refuse_line("disconnect ", "'disconnect' takes no arguments");
}

static void test_exitcode(void **state)
{
	check(S("exitcode 0\n"), "exitcode 0\n", NULL);
	check(S("exitcode 1\n"), "exitcode 1\n", NULL);
	check(S("exitcode 255\n"), "exitcode 255\n", NULL);
	check(S("exitcode 042\n"), "exitcode 42\n", NULL);
	check(S("exitcode 3\nexitcode 4\n"), "exitcode 3\nexitcode 4\n", NULL);
}

static void test_exitcode_bad(void **state)
{
	static const char *const bad[] = {
		"exitcode 256",
		"exitcode -1",
		"exitcode +1",
		"exitcode 1 ",
		"exitcode  1",
		"exitcode 1.0",
		"exitcode abc",
		"exitcode 0x10",
		"exitcode 1e2",
		"exitcode 99999999999999999999999999",
		/* the characters either side of the digits */
		"exitcode 1/",
		"exitcode 1:",
	};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(bad); i++)
		refuse_line(bad[i], "'exitcode': invalid exit code");
	refuse_line("exitcode", "'exitcode' needs an argument");
	refuse_line("exitcode ", "'exitcode' needs an argument");
	check_exact(S("exitcode 256\n"), "",
		    "'exitcode': invalid exit code '256' (expected 0 to 255)");
}

static void test_duration_forms(void **state)
{
	check(S("duration 15m\n"), "duration set 900\n", NULL);
	check(S("duration 5\n"), "duration set 5\n", NULL);
	check(S("duration 5s\n"), "duration set 5\n", NULL);
	check(S("duration 5m\n"), "duration set 300\n", NULL);
	check(S("duration 2h\n"), "duration set 7200\n", NULL);
	check(S("duration 1d\n"), "duration set 86400\n", NULL);
	check(S("duration 1h 30m\n"), "duration set 5400\n", NULL);
	check(S("duration 0\n"), "duration set 0\n", NULL);
	check(S("duration +60\n"), "duration add 60\n", NULL);
	check(S("duration +1h 30m\n"), "duration add 5400\n", NULL);
	/* SUB carries the amount; the kind says which way. */
	check(S("duration -30\n"), "duration sub 30\n", NULL);
	check(S("duration -2m\n"), "duration sub 120\n", NULL);
	check(S("duration save\n"), "duration save 0\n", NULL);
	check(S("duration restore\n"), "duration restore 0\n", NULL);
	check(S("duration save\nduration 1m\nduration restore\n"),
	      "duration save 0\nduration set 60\nduration restore 0\n", NULL);
}

static void test_duration_bad(void **state)
{
	static const char *const bad[] = {
		"duration abc",	 "duration 5x",	       "duration +",
		"duration -",	 "duration ++5",       "duration +-5",
		"duration --5",	 "duration  5",	       "duration save now",
		"duration Save", "duration restore 1", "duration 1.5h",
		"duration + 5",	 "duration saved",
	};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(bad); i++)
		refuse_line(bad[i], "'duration': invalid duration");
	refuse_line("duration", "'duration' needs an argument");
	refuse_line("duration ", "'duration' needs an argument");
	check_exact(S("duration 1h 30x\n"), "",
		    "'duration': invalid duration '1h 30x': unexpected "
		    "character at 'x'");
}

static void test_unknown_word(void **state)
{
	check_exact(S("foo\n"), "", "unknown control word 'foo'");
	check_exact(S("foo bar\n"), "", "unknown control word 'foo'");
	refuse_line("NOOP", "unknown control word 'NOOP'");
	refuse_line("results 5", "unknown control word 'results'");
	refuse_line(" noop", "unknown control word ''");
	/* A stray '\r' is part of the word, and shown escaped. */
	check_exact(S("noop\r\n"), "", "unknown control word 'noop\\x0d'");
	check_exact(S("a\tb\n"), "", "unknown control word 'a\\x09b'");
	/* The words before run, nothing after. */
	check(S("exitcode 1\nbogus\nexitcode 2\n"), "exitcode 1\n",
	      "unknown control word 'bogus'");
}

static void test_long_word_is_shortened(void **state)
{
	char line[300];

	memset(line, 'w', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	refuse_line(line, "unknown control word 'www");
	refuse_line(line, "...'");
}

/* ------------------------------------------------------------------------
 * Lines
 */

static void test_empty_line(void **state)
{
	check_exact(S("\n"), "", "empty control line");
	check_exact(S("noop\n\nexitcode 1\n"), "", "empty control line");
	check(S("exitcode 1\n\n"), "exitcode 1\n", "empty control line");
}

static void test_non_ascii(void **state)
{
	check_exact(S("noop\xc3\xa9\n"), "",
		    "non-ASCII byte 0xc3 in a control line");
	check_exact(S("\x80"), "", "non-ASCII byte 0x80 in a control line");
	check_exact(S("exitcode 1\xff\n"), "",
		    "non-ASCII byte 0xff in a control line");
	/* Refused when it arrives, not at the end of the line. */
	check_exact(S("exitcode 1\nexit\xff"), "exitcode 1\n",
		    "non-ASCII byte 0xff in a control line");
	check_exact(S("noop\0\n"), "", "NUL byte in a control line");
	check_exact(S("exitcode 1\0\n"), "", "NUL byte in a control line");
}

/* "exitcode 000...07\n" of exactly `total` bytes, '\n' included. */
static char *exitcode_line(size_t total)
{
	char *s = malloc(total + 1);

	assert_non_null(s);
	memcpy(s, "exitcode ", 9);
	memset(s + 9, '0', total - 9 - 2);
	s[total - 2] = '7';
	s[total - 1] = '\n';
	s[total] = '\0';
	return s;
}

static void test_line_max(void **state)
{
	char *ok = exitcode_line(ATEX_CONTROL_LINE_MAX);
	char *over = exitcode_line(ATEX_CONTROL_LINE_MAX + 1);

	assert_int_equal(strlen(ok), 4096);
	check(ok, strlen(ok), "exitcode 7\n", NULL);
	check_exact(over, strlen(over), "",
		    "control line longer than 4096 bytes");
	/* Two maximal lines in a row. */
	{
		char *two = malloc(2 * 4096);

		assert_non_null(two);
		memcpy(two, ok, 4096);
		memcpy(two + 4096, ok, 4096);
		check(two, 2 * 4096, "exitcode 7\nexitcode 7\n", NULL);
		free(two);
	}
	free(ok);
	free(over);
}

/* The line is refused as soon as it cannot end in time. */
static void test_line_refused_early(void **state)
{
	char buf[5000];
	atex_control *c;

	memset(buf, 'a', sizeof(buf));
	assert_int_equal(atex_control_new(&c, NULL, NULL, 0), 0);
	assert_int_equal(atex_control_feed(c, buf, 4095), 0);
	assert_false(atex_control_idle(c));
	assert_int_equal(atex_control_feed(c, buf, 1), ATEX_EFORMAT);
	assert_string_equal(atex_control_error(c),
			    "control line longer than 4096 bytes");
	atex_control_free(c);

	/* The same line, whole and without its end: the same error. */
	check_exact(buf, sizeof(buf), "",
		    "control line longer than 4096 "
		    "bytes");
	/* 4095 bytes and the end of the stream: only the end is wrong. */
	check_exact(buf, 4095, "", "EOF in a control line");
	/* A bad byte before the limit is what comes first. */
	buf[4000] = '\xfe';
	check_exact(buf, sizeof(buf), "",
		    "non-ASCII byte 0xfe in a control line");
	/* ... after it, the length is. */
	buf[4000] = 'a';
	buf[4096] = '\xfe';
	check_exact(buf, sizeof(buf), "",
		    "control line longer than 4096 bytes");
}

static void test_partial_lines(void **state)
{
	atex_control *c;
	struct rec r = {.open_file = -1};

	assert_int_equal(atex_control_new(&c, &rec_handler, &r, 0), 0);
	assert_int_equal(feed(c, &r, S("exitc")), 0);
	assert_false(atex_control_idle(c));
	assert_int_equal(r.log.len, 0);
	assert_int_equal(feed(c, &r, S("ode 1")), 0);
	assert_int_equal(r.log.len, 0);
	assert_int_equal(feed(c, &r, S("2")), 0);
	assert_int_equal(feed(c, &r, S("\ndura")), 0);
	assert_string_equal(atex_buf_cstr(&r.log), "exitcode 12\n");
	assert_int_equal(feed(c, &r, S("tion save\n")), 0);
	assert_true(atex_control_idle(c));
	assert_string_equal(atex_buf_cstr(&r.log),
			    "exitcode 12\nduration save 0\n");
	assert_int_equal(atex_control_finish(c), 0);
	atex_control_free(c);
	atex_buf_free(&r.log);
}

/* ------------------------------------------------------------------------
 * Results
 */

static void test_result_simple(void **state)
{
	check(S("result 17\n{\"status\":\"pass\"}"),
	      "begin {\"status\":\"pass\"}\nend\n", NULL);
	/* White space around the object is part of the N bytes. */
	check(S("result 21\n {\"status\": \"pass\"}\n\n"),
	      "begin {\"status\":\"pass\"}\nend\n", NULL);
	check(S("result 2\n{}noop\nexitcode 0\n"),
	      "begin {}\nend\nexitcode 0\n", NULL);
	check(S("result 2\n{}result 2\n{}"), "begin {}\nend\nbegin {}\nend\n",
	      NULL);
	/* The bytes after `result N\n` are JSON, never a line. */
	check(S("result 12\n{\"a\":\"\\n\\n\"}exitcode 1\n"),
	      "begin {\"a\":\"\\n\\n\"}\nend\nexitcode 1\n", NULL);
}

static void test_result_keys(void **state)
{
	accept_result("{\"status\":\"pass\",\"name\":\"sub/test\","
		      "\"note\":\"ok\",\"partial\":true,\"custom\":[1,{}]}",
		      "{\"status\":\"pass\",\"name\":\"sub/test\","
		      "\"note\":\"ok\",\"partial\":true,\"custom\":[1,{}]}");
	accept_result("{\"note\":null,\"partial\":false}",
		      "{\"note\":null,\"partial\":false}");
	accept_result("{\"status\":\"my-own\"}", "{\"status\":\"my-own\"}");
	refuse_result("{\"status\":1}", "'status' must be a string");
	refuse_result("{\"status\":null}", "'status' must be a string");
	refuse_result("{\"name\":5}", "'name' must be a string");
	refuse_result("{\"name\":null}", "'name' must be a string");
	refuse_result("{\"name\":\"\"}", "'name' '' is empty");
	refuse_result("{\"note\":5}", "'note' must be a string or null");
	refuse_result("{\"note\":[]}", "'note' must be a string or null");
	refuse_result("{\"partial\":\"yes\"}",
		      "'partial' must be true or false");
	refuse_result("{\"partial\":1}", "'partial' must be true or false");
}

/* A result of exactly the default limit is read, whole or in pieces. */
static void check_default_limit(void)
{
	static const size_t chunks[] = {0, 1000, 65536};
	size_t max = ATEX_CONTROL_JSON_MAX, len;
	char *s = malloc(max + 32);
	int n;

	assert_non_null(s);
	n = snprintf(s, 32, "result %zu\n", max);
	s[n] = '{';
	memset(s + n + 1, ' ', max - 2);
	s[(size_t)n + max - 1] = '}';
	len = (size_t)n + max;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(chunks); i++) {
		struct outcome o = run(s, len, chunks[i], 0);

		assert_int_equal(o.rc, 0);
		assert_string_equal(o.log, "begin {}\nend\n");
		outcome_free(&o);
	}
	free(s);
}

static void test_result_length(void **state)
{
	refuse_line("result", "'result' needs an argument");
	refuse_line("result ", "'result' needs an argument");
	refuse_line("result 0", "'result': invalid length '0' (expected 1 to "
				"1048576)");
	refuse_line("result -1", "'result': invalid length '-1'");
	refuse_line("result +1", "'result': invalid length '+1'");
	refuse_line("result 1x", "'result': invalid length '1x'");
	refuse_line("result  1", "'result': invalid length ' 1'");
	refuse_line("result 1 ", "'result': invalid length '1 '");
	refuse_line("result 0x10", "'result': invalid length '0x10'");
	refuse_line("result 1:", "'result': invalid length '1:'");
	refuse_line("result /", "'result': invalid length '/'");
	refuse_line("result 1048577", "'result': length '1048577' exceeds "
				      "the limit of 1048576 bytes");
	refuse_line("result 99999999999999999999999999999",
		    "exceeds the limit of 1048576 bytes");
	check_default_limit();
}

static void test_json_limit(void **state)
{
	check_limit(S("result 10\n{\"a\":\"12\"}"), 10,
		    "begin {\"a\":\"12\"}\nend\n", NULL, false);
	check_limit(S("result 11\n{\"a\":\"123\"}"), 10, "",
		    "'result': length '11' exceeds the limit of 10 bytes",
		    true);
	check_limit(S("result 0\n"), 10, "",
		    "'result': invalid length '0' (expected 1 to 10)", true);
	/* A limit of SIZE_MAX must not wrap anything. */
	check_limit(S("result 99999999999999999999999999\n"), SIZE_MAX, "",
		    "exceeds the limit", false);
}

static void test_invalid_json(void **state)
{
	check(S("result 5\n{abc}"), "", "invalid JSON in result: ");
	check_exact(S("result 1\n{"), "",
		    "invalid JSON in result: string or '}' expected near end "
		    "of file");
	/* Nothing but the object in the N bytes. */
	check(S("result 4\n{}xx"), "", "invalid JSON in result: ");
	check(S("result 4\n{}{}"), "", "invalid JSON in result: ");
	/* A NUL escape: jansson refuses it, so no name can hold one. */
	check(S("result 18\n{\"name\":\"a\\u0000\"}"), "",
	      "invalid JSON in result: ");
	/* Raw bytes inside the N are not a line: no ASCII rule. */
	check(S("result 3\n\xff\xfe\n"), "", "invalid JSON in result: ");
	/* Not UTF-8. */
	check(S("result 9\n{\"a\":\"\xff\"}"), "", "invalid JSON in result: ");
}

static void test_json_not_object(void **state)
{
	check_exact(S("result 2\n[]"), "", "result: the JSON is not an object");
	check_exact(S("result 7\n[{},{}]"), "",
		    "result: the JSON is not an object");
	/* Scalars: jansson itself wants an array or object. */
	check(S("result 3\n\"x\""), "", "invalid JSON in result: ");
	check(S("result 1\n5"), "", "invalid JSON in result: ");
	check(S("result 4\nnull"), "", "invalid JSON in result: ");
}

/* A result split across many feeds of its JSON. */
static void test_json_in_pieces(void **state)
{
	static const char json[] = "{\"status\":\"fail\",\"note\":\"a b c\"}";
	struct atex_buf s = ATEX_BUF_INIT;
	struct outcome o;

	assert_int_equal(
		atex_buf_printf(&s, "result %zu\n%s", strlen(json), json), 0);
	for (size_t chunk = 1; chunk <= s.len; chunk++) {
		o = run(s.ptr, s.len, chunk, 0);
		assert_int_equal(o.rc, 0);
		assert_string_equal(o.log, "begin {\"status\":\"fail\","
					   "\"note\":\"a b c\"}\nend\n");
		outcome_free(&o);
	}
	atex_buf_free(&s);
}

/* ------------------------------------------------------------------------
 * Files
 */

static void test_files(void **state)
{
	static const char json[] =
		"{\"files\":[{\"name\":\"log\",\"length\":5},"
		"{\"name\":\"sub/b.bin\",\"length\":3}]}";
	struct atex_buf b = ATEX_BUF_INIT;

	/* Binary contents, NUL included, then the next line. */
	assert_int_equal(
		atex_buf_printf(&b, "result %zu\n%s", strlen(json), json), 0);
	assert_int_equal(atex_buf_put(&b, S("hello\x00\n\xffnoop\n")), 0);
	check(b.ptr, b.len,
	      "begin {\"files\":[{\"name\":\"log\",\"length\":5},"
	      "{\"name\":\"sub/b.bin\",\"length\":3}]}\n"
	      "file 0: hello\n"
	      "file 1: \\x00\\x0a\\xff\n"
	      "end\n",
	      NULL);
	atex_buf_free(&b);
}

/* Contents look like lines: they are data all the same. */
static void test_file_contents_are_not_lines(void **state)
{
	size_t len;
	char *s = result_stream("{\"files\":[{\"name\":\"x\",\"length\":22}]}",
				"exitcode 1\ndisconnect\nexitcode 2\n", &len);

	check(s, len,
	      "begin {\"files\":[{\"name\":\"x\",\"length\":22}]}\n"
	      "file 0: exitcode 1\\x0adisconnect\\x0a\nend\nexitcode 2\n",
	      NULL);
	free(s);
}

static void test_zero_length_files(void **state)
{
	size_t len;
	char *s;

	/* No data call for an empty file, not even at the end. */
	s = result_stream("{\"files\":[{\"name\":\"a\",\"length\":0},"
			  "{\"name\":\"b\",\"length\":2},"
			  "{\"name\":\"c\",\"length\":0},"
			  "{\"name\":\"d\",\"length\":1},"
			  "{\"name\":\"e\",\"length\":0}]}",
			  "bbdnoop\n", &len);
	check(s, len,
	      "begin {\"files\":[{\"name\":\"a\",\"length\":0},"
	      "{\"name\":\"b\",\"length\":2},"
	      "{\"name\":\"c\",\"length\":0},"
	      "{\"name\":\"d\",\"length\":1},"
	      "{\"name\":\"e\",\"length\":0}]}\n"
	      "file 1: bb\nfile 3: d\nend\n",
	      NULL);
	free(s);
	/* Only empty files: the result ends with its JSON. */
	s = result_stream("{\"files\":[{\"name\":\"a\",\"length\":0}]}", "",
			  &len);
	check(s, len,
	      "begin {\"files\":[{\"name\":\"a\",\"length\":0}]}\nend\n", NULL);
	free(s);
	accept_result("{\"files\":[]}", "{\"files\":[]}");
}

/* A repeated name is two entries: both get their bytes, in order. */
static void test_repeated_file(void **state)
{
	size_t len;
	char *s = result_stream("{\"files\":[{\"name\":\"a\",\"length\":1},"
				"{\"name\":\"a\",\"length\":2}]}",
				"xyz", &len);

	check(s, len,
	      "begin {\"files\":[{\"name\":\"a\",\"length\":1},"
	      "{\"name\":\"a\",\"length\":2}]}\nfile 0: x\nfile 1: yz\nend\n",
	      NULL);
	free(s);
}

/* One large file in many feeds: one call per feed, the caller's bytes. */
static void test_file_many_feeds(void **state)
{
	static const char head[] =
		"result 38\n{\"files\":[{\"name\":\"f\",\"length\":1000}]}";
	char data[1000];
	struct rec r = {.open_file = -1};
	atex_control *c;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	assert_int_equal(atex_control_new(&c, &rec_handler, &r, 0), 0);
	assert_int_equal(feed(c, &r, S(head)), 0);
	assert_true(r.in_result);
	assert_false(atex_control_idle(c));
	for (size_t off = 0; off < sizeof(data); off += 10) {
		assert_int_equal(feed(c, &r, data + off, 10), 0);
		assert_int_equal(r.pieces, off / 10 + 1);
	}
	assert_false(r.in_result);
	assert_true(atex_control_idle(c));
	assert_false(r.copied);
	assert_int_equal(atex_control_finish(c), 0);
	rec_close_data(&r);
	assert_int_equal(r.log.len,
			 strlen("begin {\"files\":[{\"name\":\"f\","
				"\"length\":1000}]}\nfile 0: \nend\n") +
				 1000);
	atex_control_free(c);
	atex_buf_free(&r.log);
}

/* All of a stream in one feed: one call per file. */
static void test_file_one_piece(void **state)
{
	size_t len;
	char *s = result_stream("{\"files\":[{\"name\":\"a\",\"length\":3},"
				"{\"name\":\"b\",\"length\":4}]}",
				"abcdefg", &len);
	struct outcome o = run(s, len, 0, 0);

	assert_int_equal(o.rc, 0);
	assert_int_equal(o.pieces, 2);
	outcome_free(&o);
	o = run(s, len, 1, 0);
	assert_int_equal(o.pieces, 7);
	outcome_free(&o);
	free(s);
}

static void test_files_shape(void **state)
{
	refuse_result("{\"files\":{}}", "'files' must be an array");
	refuse_result("{\"files\":null}", "'files' must be an array");
	refuse_result("{\"files\":\"a\"}", "'files' must be an array");
	refuse_result("{\"files\":[1]}", "'files'[0] must be an object");
	refuse_result("{\"files\":[{\"name\":\"a\",\"length\":1},[]]}",
		      "'files'[1] must be an object");
	refuse_result("{\"files\":[{\"length\":1}]}",
		      "'files'[0]: 'name' must be a string");
	refuse_result("{\"files\":[{\"name\":1,\"length\":1}]}",
		      "'files'[0]: 'name' must be a string");
	refuse_result("{\"files\":[{\"name\":\"\",\"length\":1}]}",
		      "'files'[0]: 'name' '' is empty");
	refuse_result("{\"files\":[{\"name\":\"a\"}]}",
		      "'files'[0]: 'length' must be an integer >= 0");
	refuse_result("{\"files\":[{\"name\":\"a\",\"length\":-1}]}",
		      "'files'[0]: 'length' must be an integer >= 0");
	refuse_result("{\"files\":[{\"name\":\"a\",\"length\":1.0}]}",
		      "'files'[0]: 'length' must be an integer >= 0");
	refuse_result("{\"files\":[{\"name\":\"a\",\"length\":\"1\"}]}",
		      "'files'[0]: 'length' must be an integer >= 0");
	refuse_result("{\"files\":[{\"name\":\"a\",\"length\":null}]}",
		      "'files'[0]: 'length' must be an integer >= 0");
	/* Other keys of an entry are kept. */
	accept_result("{\"files\":[{\"name\":\"a\",\"length\":0,\"x\":1}]}",
		      "{\"files\":[{\"name\":\"a\",\"length\":0,\"x\":1}]}");
}

static void test_hostile_file_names(void **state)
{
	static const struct {
		const char *name;
		const char *fault;
	} cases[] = {
		{"../../x", "has a '..' component"},
		{"..", "has a '..' component"},
		{"a/..", "has a '..' component"},
		{"a/../../x", "has a '..' component"},
		{"a/../b", "has a '..' component"},
		{"/etc/x", "is absolute"},
		{"/", "is absolute"},
		{".", "has a '.' component"},
		{"./x", "has a '.' component"},
		{"a/./b", "has a '.' component"},
		{"a//b", "has an empty component"},
		{"a/", "has an empty component"},
	};
	char json[256], error[256];

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(cases); i++) {
		snprintf(json, sizeof(json),
			 "{\"files\":[{\"name\":\"%s\",\"length\":0}]}",
			 cases[i].name);
		snprintf(error, sizeof(error),
			 "result: 'files'[0]: 'name' '%s' %s", cases[i].name,
			 cases[i].fault);
		refuse_result(json, error);
	}
	/* Names that only look suspicious. */
	accept_result("{\"files\":[{\"name\":\"...\",\"length\":0},"
		      "{\"name\":\"..a/.b/a..\",\"length\":0}]}",
		      "{\"files\":[{\"name\":\"...\",\"length\":0},"
		      "{\"name\":\"..a/.b/a..\",\"length\":0}]}");
	/* A control character in a name is shown escaped. */
	refuse_result("{\"files\":[{\"name\":\"\\n/../x\",\"length\":0}]}",
		      "'\\x0a/../x' has a '..' component");
}

static void test_hostile_result_names(void **state)
{
	refuse_result("{\"name\":\"a/..\",\"files\":[{\"name\":\"x\","
		      "\"length\":0}]}",
		      "result: 'name' 'a/..' has a '..' component");
	refuse_result("{\"name\":\"../../x\"}", "'name' '../../x' has a '..'");
	refuse_result("{\"name\":\"a/../../x\"}", "has a '..' component");
	refuse_result("{\"name\":\"/etc\"}", "'name' '/etc' is absolute");
	refuse_result("{\"name\":\"a//b\"}", "has an empty component");
	refuse_result("{\"name\":\"a/\"}", "has an empty component");
	refuse_result("{\"name\":\".\"}", "has a '.' component");
	/* A good name and a bad file: the join is refused too. */
	refuse_result("{\"name\":\"sub/t\",\"files\":[{\"name\":\"../../x\","
		      "\"length\":0}]}",
		      "'files'[0]: 'name' '../../x' has a '..' component");
	accept_result("{\"name\":\"sub/t\",\"files\":[{\"name\":\"d/x\","
		      "\"length\":0}]}",
		      "{\"name\":\"sub/t\",\"files\":[{\"name\":\"d/x\","
		      "\"length\":0}]}");
}

static void test_testout(void **state)
{
	accept_result("{\"testout\":\"out.txt\"}", "{\"testout\":\"out.txt\"}");
	accept_result("{\"name\":\"s\",\"testout\":\"d/out.txt\","
		      "\"files\":[{\"name\":\"d/other\",\"length\":0}]}",
		      "{\"name\":\"s\",\"testout\":\"d/out.txt\","
		      "\"files\":[{\"name\":\"d/other\",\"length\":0}]}");
	refuse_result("{\"testout\":\"\"}", "'testout' specified, but empty");
	{
		size_t len;
		char *s = result_stream("{\"testout\":\"\"}", "", &len);

		check_exact(s, len, "", "'testout' specified, but empty");
		free(s);
	}
	refuse_result("{\"testout\":5}", "'testout' must be a string");
	refuse_result("{\"testout\":null}", "'testout' must be a string");
	refuse_result("{\"testout\":\"../x\"}",
		      "'testout' '../x' has a '..' component");
	refuse_result("{\"testout\":\"/etc/passwd\"}",
		      "'testout' '/etc/passwd' is absolute");
	refuse_result("{\"testout\":\"a//b\"}", "has an empty component");
	refuse_result("{\"testout\":\"log\",\"files\":["
		      "{\"name\":\"other\",\"length\":0},"
		      "{\"name\":\"log\",\"length\":0}]}",
		      "result: 'testout' 'log' is also in 'files'");
}

/* ------------------------------------------------------------------------
 * The end of the stream
 */

static void test_eof(void **state)
{
	size_t len;
	char *s;

	check_exact(S("noop"), "", "EOF in a control line");
	check_exact(S("exitcode 1\nexitcode 2"), "exitcode 1\n",
		    "EOF in a control line");
	check_exact(S("result 5\n"), "",
		    "the stream ended inside a result: 0 of its 5 bytes came");
	check_exact(S("result 5\n{}"), "",
		    "the stream ended inside a result: 2 of its 5 bytes came");
	s = result_stream("{\"files\":[{\"name\":\"a\",\"length\":5}]}", "ab",
			  &len);
	check_exact(s, len,
		    "begin {\"files\":[{\"name\":\"a\",\"length\":5}]}\n"
		    "file 0: ab\n",
		    "the stream ended inside file 1 of 1 of a result: 2 of "
		    "its 5 bytes came");
	free(s);
	/* Between a result's JSON and its first, not yet sent, byte. */
	s = result_stream("{\"files\":[{\"name\":\"a\",\"length\":5}]}", "",
			  &len);
	check_exact(s, len,
		    "begin {\"files\":[{\"name\":\"a\",\"length\":5}]}\n",
		    "the stream ended inside file 1 of 1 of a result: 0 of "
		    "its 5 bytes came");
	free(s);
}

static void test_idle(void **state)
{
	atex_control *c;

	assert_int_equal(atex_control_new(&c, NULL, NULL, 0), 0);
	assert_true(atex_control_idle(c));
	assert_int_equal(atex_control_feed(c, S("noop\nresult 2")), 0);
	assert_false(atex_control_idle(c));
	assert_int_equal(atex_control_feed(c, S("\n")), 0);
	assert_false(atex_control_idle(c));
	assert_int_equal(atex_control_feed(c, S("{")), 0);
	assert_false(atex_control_idle(c));
	assert_int_equal(atex_control_feed(c, S("}")), 0);
	assert_true(atex_control_idle(c));
	assert_int_equal(atex_control_finish(c), 0);
	atex_control_free(c);
}

/* ------------------------------------------------------------------------
 * Handler failures and a dead channel
 */

static void check_failure(const char *event, const char *data, size_t len,
			  const char *log)
{
	static const size_t chunks[] = {0, 1, 3};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(chunks); i++) {
		struct rec r = {.open_file = -1};
		struct outcome o;
		char expected[64];

		r.fail = event;
		r.fail_code = ATEX_EIO;
		o = run_with(&r, data, len, chunks[i], 0);
		assert_int_equal(o.rc, ATEX_EIO);
		snprintf(expected, sizeof(expected), "disk full at %s", event);
		assert_string_equal(o.error, expected);
		assert_string_equal(o.log, log);
		outcome_free(&o);
	}
}

static void test_handler_failures(void **state)
{
	size_t len;
	char *s = result_stream("{\"files\":[{\"name\":\"a\",\"length\":3},"
				"{\"name\":\"b\",\"length\":2}]}",
				"xyzvwexitcode 1\n", &len);
	const char *begin = "begin {\"files\":[{\"name\":\"a\",\"length\":3},"
			    "{\"name\":\"b\",\"length\":2}]}\n";
	char log[512];

	check_failure("exitcode", S("exitcode 3\nexitcode 4\n"),
		      "exitcode 3\n");
	check_failure("duration", S("duration 1m\nnoop\nexitcode 4\n"),
		      "duration set 60\n");
	check_failure("disconnect", S("disconnect\ndisconnect\n"),
		      "disconnect\n");
	/* result_begin keeps the reference even when it fails (ASan and
	 * the leak checker see to the rest). */
	check_failure("begin", s, len, begin);
	snprintf(log, sizeof(log), "%sfile 0: xyz\nfile 1: vw\nend\n", begin);
	check_failure("end", s, len, log);
	free(s);
}

/* A failing file_data: the piece it was given is its last. */
static void test_handler_data_failure(void **state)
{
	size_t len;
	char *s = result_stream("{\"files\":[{\"name\":\"a\",\"length\":3}]}",
				"xyzexitcode 1\n", &len);
	struct rec r = {.open_file = -1};
	struct outcome o;

	r.fail = "data";
	r.fail_code = ATEX_EIO;
	o = run_with(&r, s, len, 1, 0);
	assert_int_equal(o.rc, ATEX_EIO);
	assert_string_equal(o.error, "disk full at data");
	assert_string_equal(o.log, "begin {\"files\":[{\"name\":\"a\","
				   "\"length\":3}]}\nfile 0: x\n");
	assert_int_equal(o.pieces, 1);
	outcome_free(&o);
	free(s);
}

/* A handler that forgets its message or returns a positive number. */
static void test_handler_sloppy_failure(void **state)
{
	struct rec r = {.open_file = -1};
	struct outcome o;

	r.fail = "exitcode";
	r.fail_code = 1;
	r.fail_silent = true;
	o = run_with(&r, S("exitcode 0\n"), 0, 0);
	assert_int_equal(o.rc, ATEX_ERROR);
	assert_string_equal(o.error, "control handler failed");
	outcome_free(&o);
}

static void test_feed_after_error(void **state)
{
	atex_control *c;
	struct rec r = {.open_file = -1};
	char *error;

	assert_int_equal(atex_control_new(&c, &rec_handler, &r, 0), 0);
	assert_int_equal(feed(c, &r, S("exitcode 1\nbad\nexitcode 2\n")),
			 ATEX_EFORMAT);
	error = strdup(atex_control_error(c));
	assert_string_equal(error, "unknown control word 'bad'");
	assert_string_equal(atex_error_last(), error);
	atex_error_set(ATEX_EIO, "something else");
	assert_int_equal(feed(c, &r, S("exitcode 3\n")), ATEX_EFORMAT);
	assert_string_equal(atex_error_last(), error);
	assert_int_equal(feed(c, &r, S("\xff\xff")), ATEX_EFORMAT);
	assert_int_equal(atex_control_finish(c), ATEX_EFORMAT);
	assert_int_equal(atex_control_finish(c), ATEX_EFORMAT);
	assert_string_equal(atex_control_error(c), error);
	assert_string_equal(atex_buf_cstr(&r.log), "exitcode 1\n");
	assert_false(atex_control_idle(c));
	free(error);
	atex_control_free(c);
	atex_buf_free(&r.log);
}

/* A parser freed mid-result, and one with no handler at all. */
static void test_free_anywhere(void **state)
{
	static const char stream[] =
		"noop\nresult "
		"38\n{\"files\":[{\"name\":\"f\",\"length\":1000}]}"
		"abc";
	atex_control *c;

	for (size_t n = 0; n <= sizeof(stream) - 1; n++) {
		assert_int_equal(atex_control_new(&c, NULL, NULL, 0), 0);
		assert_int_equal(atex_control_feed(c, stream, n), 0);
		atex_control_free(c);
	}
	atex_control_free(NULL);
}

/* A result kept by the handler outlives the parser. */
static void test_handler_keeps_result(void **state)
{
	struct rec r = {.open_file = -1};
	struct outcome o;

	r.keep_results = true;
	o = run_with(&r, S("result 17\n{\"status\":\"pass\"}"), 0, 0);
	assert_int_equal(o.rc, 0);
	assert_non_null(r.keep);
	assert_string_equal(
		json_string_value(json_object_get(r.keep, "status")), "pass");
	json_decref(r.keep);
	outcome_free(&o);
}

/* Everything at once, checked whole against every piece size. */
static void test_mixed_stream(void **state)
{
	static const char json1[] =
		"{\"name\":\"a/b\",\"status\":\"fail\",\"partial\":true,"
		"\"testout\":\"t\",\"files\":[{\"name\":\"x\",\"length\":4},"
		"{\"name\":\"e\",\"length\":0},{\"name\":\"y/z\",\"length\":"
		"6}]}";
	static const char json2[] = "{\"status\":\"pass\"}";
	struct atex_buf b = ATEX_BUF_INIT;
	struct atex_buf log = ATEX_BUF_INIT;

	assert_int_equal(
		atex_buf_printf(&b,
				"duration 5m\nnoop\nresult %zu\n%s"
				"x\ny\n\n\n\n\nz\nduration +1m\n"
				"result %zu\n%sdisconnect\nexitcode 0\n",
				strlen(json1), json1, strlen(json2), json2),
		0);
	assert_int_equal(
		atex_buf_printf(&log,
				"duration set 300\nbegin %s\n"
				"file 0: x\\x0ay\\x0a\nfile 2: \\x0a\\x0a"
				"\\x0a\\x0az\\x0a\nend\nduration add 60\n"
				"begin %s\nend\ndisconnect\nexitcode 0\n",
				json1, json2),
		0);
	check(b.ptr, b.len, atex_buf_cstr(&log), NULL);
	/* Every prefix of it: the same, or the same EOF error. */
	for (size_t n = 0; n < b.len; n += 7) {
		struct outcome whole = run(b.ptr, n, 0, 0);
		struct outcome bytes = run(b.ptr, n, 1, 0);

		assert_string_equal(whole.log, bytes.log);
		assert_int_equal(whole.rc, bytes.rc);
		if (whole.rc)
			assert_string_equal(whole.error, bytes.error);
		outcome_free(&whole);
		outcome_free(&bytes);
	}
	atex_buf_free(&b);
	atex_buf_free(&log);
}

/* ------------------------------------------------------------------------
 * The exit token: only the wrapper's `exitcode` counts.
 */

struct token_rec {
	int real, forged; /* calls */
	int last_real, last_forged;
};

static int tok_exitcode(void *userdata, int code)
{
	struct token_rec *t = userdata;

	t->real++;
	t->last_real = code;
	return 0;
}

static int tok_forged(void *userdata, int code)
{
	struct token_rec *t = userdata;

	t->forged++;
	t->last_forged = code;
	return 0;
}

static int token_feed(struct token_rec *t, const char *token, const char *text)
{
	const struct atex_control_handler h = {
		.exitcode = tok_exitcode,
		.forged_exitcode = tok_forged,
	};
	atex_control *c;
	int rc;

	memset(t, 0, sizeof(*t));
	assert_int_equal(atex_control_new(&c, &h, t, 0), 0);
	if (token)
		assert_int_equal(atex_control_set_exit_token(c, token), 0);
	rc = atex_control_feed(c, text, strlen(text));
	if (!rc)
		rc = atex_control_finish(c);
	atex_control_free(c);
	return rc;
}

static void test_exit_token(void **state)
{
	struct token_rec t;
	atex_control *c;

	/* The wrapper's word, with the token: the exit code. */
	assert_int_equal(token_feed(&t, "abc123", "exitcode 7 abc123\n"), 0);
	assert_int_equal(t.real, 1);
	assert_int_equal(t.last_real, 7);
	assert_int_equal(t.forged, 0);
	/* The test's own: without the token, with another, with a longer or
	 * shorter one. They do not count, and break nothing. */
	assert_int_equal(token_feed(&t, "abc123",
				    "exitcode 0\nexitcode 0 abc124\n"
				    "exitcode 0 abc1234\nexitcode 0 abc12\n"
				    "noop\n"),
			 0);
	assert_int_equal(t.real, 0);
	assert_int_equal(t.forged, 4);
	assert_int_equal(t.last_forged, 0);
	/* Forged first, then the wrapper's. */
	assert_int_equal(
		token_feed(&t, "abc123", "exitcode 0\nexitcode 3 abc123\n"), 0);
	assert_int_equal(t.real, 1);
	assert_int_equal(t.last_real, 3);
	assert_int_equal(t.forged, 1);
	/* Malformed is still malformed. */
	assert_int_equal(token_feed(&t, "abc123", "exitcode 0 \n"),
			 ATEX_EFORMAT);
	assert_int_equal(token_feed(&t, "abc123", "exitcode 0 a-b\n"),
			 ATEX_EFORMAT);
	assert_int_equal(token_feed(&t, "abc123", "exitcode 256 abc123\n"),
			 ATEX_EFORMAT);
	assert_int_equal(t.real + t.forged, 0);
	/* Without a token, a second argument is a fault, as it was. */
	assert_int_equal(token_feed(&t, NULL, "exitcode 0 abc123\n"),
			 ATEX_EFORMAT);
	assert_int_equal(token_feed(&t, NULL, "exitcode 4\n"), 0);
	assert_int_equal(t.last_real, 4);
	/* Tokens are letters and digits, 1 to 64. */
	assert_int_equal(atex_control_new(&c, NULL, NULL, 0), 0);
	assert_int_equal(atex_control_set_exit_token(c, ""), ATEX_EINVAL);
	assert_int_equal(atex_control_set_exit_token(c, "a b"), ATEX_EINVAL);
	assert_int_equal(atex_control_set_exit_token(
				 c, "0123456789012345678901234567890123456789"
				    "01234567890123456789012345"),
			 ATEX_EINVAL);
	assert_int_equal(atex_control_set_exit_token(c, "aZ09"), 0);
	atex_control_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noop_and_empty_stream),
		cmocka_unit_test(test_disconnect),
		cmocka_unit_test(test_exitcode),
		cmocka_unit_test(test_exitcode_bad),
		cmocka_unit_test(test_duration_forms),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_unknown_word),
		cmocka_unit_test(test_long_word_is_shortened),
		cmocka_unit_test(test_empty_line),
		cmocka_unit_test(test_non_ascii),
		cmocka_unit_test(test_line_max),
		cmocka_unit_test(test_line_refused_early),
		cmocka_unit_test(test_partial_lines),
		cmocka_unit_test(test_result_simple),
		cmocka_unit_test(test_result_keys),
		cmocka_unit_test(test_result_length),
		cmocka_unit_test(test_json_limit),
		cmocka_unit_test(test_exit_token),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_json_not_object),
		cmocka_unit_test(test_json_in_pieces),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_file_contents_are_not_lines),
		cmocka_unit_test(test_zero_length_files),
		cmocka_unit_test(test_repeated_file),
		cmocka_unit_test(test_file_many_feeds),
		cmocka_unit_test(test_file_one_piece),
		cmocka_unit_test(test_files_shape),
		cmocka_unit_test(test_hostile_file_names),
		cmocka_unit_test(test_hostile_result_names),
		cmocka_unit_test(test_testout),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_handler_failures),
		cmocka_unit_test(test_handler_data_failure),
		cmocka_unit_test(test_handler_sloppy_failure),
		cmocka_unit_test(test_feed_after_error),
		cmocka_unit_test(test_free_anywhere),
		cmocka_unit_test(test_handler_keeps_result),
		cmocka_unit_test(test_mixed_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
