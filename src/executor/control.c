/*
 * control.c - the incremental parser of the test control channel
 * (control.h, docs/PROTOCOL.md sections 1 and 2).
 *
 * The executor owns the descriptor and its poll loop; this file only sees
 * bytes, in whatever pieces read() happened to return, and turns them into
 * handler calls. It is therefore a push parser, a small state machine:
 *
 *   LINE   a control line is collected in a fixed buffer (at most
 *          ATEX_CONTROL_LINE_MAX bytes, so a test can never make the
 *          executor allocate for a line) and run when its '\n' arrives;
 *   JSON   after `result N`, N bytes are collected (N is bounded by
 *          json_limit before anything is allocated) and parsed whole;
 *   FILES  the contents of the result's files are passed on exactly as
 *          they arrive, straight out of the caller's buffer, so a large
 *          upload costs no copy and no memory here;
 *   DEAD   the first fault ends the channel: its message is kept and every
 *          later call answers with it, so a caller that ignores one error
 *          cannot be handed anything from a stream already known broken.
 *
 * Every decision depends only on the bytes seen so far, never on where
 * one feed ends and the next begins: feeding a stream one byte at a time
 * produces the same calls and the same error as feeding it at once. That
 * is why a too-long line is refused as soon as its 4096th byte is not a
 * '\n', and why bytes are checked in stream order (a bad byte inside a
 * too-long line is reported as what comes first).
 *
 * Everything a test writes is hostile: names are checked so that no file
 * can land outside the test's artifacts directory, and messages quote the
 * test's text only escaped and shortened, so they stay one printable line.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor/control.h"
#include "util/util.h"

/* The longest message kept, as long as the thread's last error holds. */
#define ERROR_MAX 4096
/* How much of a test's text a message quotes. */
#define QUOTE_MAX 64

enum state {
	STATE_LINE,
	STATE_JSON,
	STATE_FILES,
	STATE_DEAD,
};

struct atex_control {
	struct atex_control_handler handler;
	void *userdata;
	size_t json_limit;
	enum state state;
	/* "" or the token the wrapper's `exitcode` carries */
	char token[ATEX_CONTROL_TOKEN_MAX + 1];

	/* STATE_LINE: the line so far, never its '\n'; NUL-terminated when
	 * run, which the length bound leaves room for. */
	char line[ATEX_CONTROL_LINE_MAX];
	size_t line_len;

	/* STATE_JSON: json_need bytes expected, json_len of them copied to
	 * json (allocated only when the text comes in several pieces). */
	char *json;
	size_t json_len;
	size_t json_need;

	/* STATE_FILES: the declared lengths, copied out of the result, since
	 * the handler owns the result and may change it; file is the index
	 * being read and left what remains of it. uint64_t: a length may
	 * exceed size_t on 32-bit systems. */
	uint64_t *lengths;
	size_t nfiles;
	size_t file;
	uint64_t left;

	/* STATE_DEAD */
	int code;
	char error[ERROR_MAX];
};

/* A test's text made fit for a one-line message. */
struct quoted {
	char s[QUOTE_MAX * 4 + 4];
};

static const char *quote(struct quoted *q, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = len < QUOTE_MAX ? len : QUOTE_MAX, o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)s[i];

		/* Escaping the backslash keeps the escapes unambiguous. */
		if (b < 0x20 || b >= 0x7f || b == '\\') {
			q->s[o++] = '\\';
			q->s[o++] = 'x';
			q->s[o++] = hex[b >> 4];
			q->s[o++] = hex[b & 15];
		} else {
			q->s[o++] = (char)b;
		}
	}
	if (n < len) {
		memcpy(q->s + o, "...", 3);
		o += 3;
	}
	q->s[o] = '\0';
	return q->s;
}

static const char *quote_str(struct quoted *q, const char *s)
{
	return quote(q, s, strlen(s));
}

static void drop_buffers(atex_control *c)
{
	free(c->json);
	c->json = NULL;
	c->json_len = c->json_need = 0;
	free(c->lengths);
	c->lengths = NULL;
	c->nfiles = c->file = 0;
	c->left = 0;
	c->line_len = 0;
}

/* Shuts the channel down with the thread's current message. */
static int die_last(atex_control *c, int code)
{
	const char *message = atex_error_last();

	/* A handler may forget the message or return a positive value:
	 * the caller still gets a negative code and a reason. */
	if (code > 0)
		code = ATEX_ERROR;
	if (!message[0])
		message = "control handler failed";
	snprintf(c->error, sizeof(c->error), "%s", message);
	/* One line, whatever a quoted text or a handler put in. */
	for (char *e = c->error; *e; e++) {
		if ((unsigned char)*e < 0x20 || *e == 0x7f)
			*e = '?';
	}
	c->code = code;
	c->state = STATE_DEAD;
	drop_buffers(c);
	return atex_error_set(code, "%s", c->error);
}

static int die(atex_control *c, int code, const char *fmt, ...)
	ATEX_PRINTF(3, 4);

static int die(atex_control *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	atex_error_setv(code, fmt, ap);
	va_end(ap);
	return die_last(c, code);
}

/* Digits only, no sign or space: 0 with the value, -1 for bad syntax, 1
 * for a value over max (noted as digits come, so nothing can wrap). */
static int parse_decimal(uint64_t *out, const char *s, uint64_t max)
{
	uint64_t value = 0;
	bool over = false;

	if (!*s)
		return -1;
	for (; *s; s++) {
		uint64_t digit;

		if (*s < '0' || *s > '9')
			return -1;
		digit = (uint64_t)(*s - '0');
		if (over || value > (UINT64_MAX - digit) / 10)
			over = true;
		else
			value = value * 10 + digit;
		if (value > max)
			over = true;
	}
	if (over)
		return 1;
	*out = value;
	return 0;
}

/* ---- the words ---- */

static int word_result(atex_control *c, const char *args)
{
	struct quoted q;
	uint64_t n;
	int rc = parse_decimal(&n, args, c->json_limit);

	if (rc > 0)
		return die(c, ATEX_EFORMAT,
			   "'result': length '%s' exceeds the limit of %zu "
			   "bytes",
			   quote_str(&q, args), c->json_limit);
	if (rc < 0 || n == 0)
		return die(c, ATEX_EFORMAT,
			   "'result': invalid length '%s' (expected 1 to %zu)",
			   quote_str(&q, args), c->json_limit);
	c->json_need = (size_t)n;
	c->json_len = 0;
	c->state = STATE_JSON;
	return 0;
}

/* Letters and digits only, 1 to ATEX_CONTROL_TOKEN_MAX of them. */
static bool token_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') ||
		      (s[n] >= 'a' && s[n] <= 'z') ||
		      (s[n] >= 'A' && s[n] <= 'Z')))
			return false;
	return n > 0 && n <= ATEX_CONTROL_TOKEN_MAX;
}

/* "CODE" or, with an exit token set, "CODE TOKEN". A well-formed word
 * without the right token is the test's own: it does not count. */
static int word_exitcode(atex_control *c, const char *args)
{
	char code_text[ATEX_CONTROL_LINE_MAX];
	const char *space = c->token[0] ? strchr(args, ' ') : NULL;
	const char *token = space ? space + 1 : NULL;
	struct quoted q;
	uint64_t code;
	int rc = 0;

	snprintf(code_text, sizeof(code_text), "%.*s",
		 (int)(space ? (size_t)(space - args) : strlen(args)), args);
	if (parse_decimal(&code, code_text, 255) != 0 ||
	    (token && !token_ok(token)))
		return die(c, ATEX_EFORMAT,
			   "'exitcode': invalid exit code '%s' (expected 0 to "
			   "255)",
			   quote_str(&q, args));
	if (c->token[0] && (!token || strcmp(token, c->token))) {
		if (c->handler.forged_exitcode)
			rc = c->handler.forged_exitcode(c->userdata, (int)code);
	} else if (c->handler.exitcode) {
		rc = c->handler.exitcode(c->userdata, (int)code);
	}
	return rc ? die_last(c, rc) : 0;
}

static int word_duration(atex_control *c, const char *args)
{
	enum atex_control_duration_kind kind = ATEX_CONTROL_DURATION_SET;
	const char *text = args;
	double seconds = 0;
	int rc = 0;

	if (!strcmp(args, "save")) {
		kind = ATEX_CONTROL_DURATION_SAVE;
	} else if (!strcmp(args, "restore")) {
		kind = ATEX_CONTROL_DURATION_RESTORE;
	} else {
		if (*text == '+' || *text == '-') {
			kind = *text == '+' ? ATEX_CONTROL_DURATION_ADD
					    : ATEX_CONTROL_DURATION_SUB;
			text++;
		}
		/* The duration parser quotes the text (it is ASCII here and
		 * a line long at most) and says what is wrong with it. */
		if (atex_duration_parse(&seconds, text) != 0)
			return die(c, ATEX_EFORMAT, "'duration': %s",
				   atex_error_last());
	}
	if (c->handler.duration)
		rc = c->handler.duration(c->userdata, kind, seconds);
	return rc ? die_last(c, rc) : 0;
}

static int word_disconnect(atex_control *c, const char *args)
{
	int rc = 0;

	if (c->handler.disconnect)
		rc = c->handler.disconnect(c->userdata);
	return rc ? die_last(c, rc) : 0;
}

static int word_noop(atex_control *c, const char *args)
{
	return 0;
}

static const struct word {
	const char *name;
	bool takes_args;
	int (*run)(atex_control *c, const char *args);
} words[] = {
	{"result", true, word_result},
	{"exitcode", true, word_exitcode},
	{"duration", true, word_duration},
	{"disconnect", false, word_disconnect},
	{"noop", false, word_noop},
};

/* Runs the line in c->line: a word, optionally one space and arguments.
 * "word " (a space and nothing) counts as an empty argument, which no
 * word accepts: the syntax has no place for a trailing space. */
static int run_line(atex_control *c)
{
	const char *space, *args = NULL;
	size_t word_len = c->line_len;
	struct quoted q;

	c->line[c->line_len] = '\0';
	c->line_len = 0;
	space = memchr(c->line, ' ', word_len);
	if (space) {
		word_len = (size_t)(space - c->line);
		args = space + 1;
	}
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(words); i++) {
		const struct word *w = &words[i];

		if (strlen(w->name) != word_len ||
		    memcmp(w->name, c->line, word_len) != 0)
			continue;
		if (w->takes_args && (!args || !*args))
			return die(c, ATEX_EFORMAT, "'%s' needs an argument",
				   w->name);
		if (!w->takes_args && args)
			return die(c, ATEX_EFORMAT, "'%s' takes no arguments",
				   w->name);
		return w->run(c, args);
	}
	return die(c, ATEX_EFORMAT, "unknown control word '%s'",
		   quote(&q, c->line, word_len));
}

/* Reads line bytes from data up to and including a '\n'; *used says how
 * many were taken. The bytes are checked as if one came at a time: ASCII
 * first, then whether the line still has room for its '\n'. */
static int feed_line(atex_control *c, const char *data, size_t len,
		     size_t *used)
{
	const char *nl = memchr(data, '\n', len);
	size_t n = nl ? (size_t)(nl - data) : len;
	size_t room = ATEX_CONTROL_LINE_MAX - 1 - c->line_len;
	size_t check = n < room + 1 ? n : room + 1;

	for (size_t i = 0; i < check; i++) {
		unsigned char b = (unsigned char)data[i];

		if (b == 0)
			return die(c, ATEX_EFORMAT,
				   "NUL byte in a control line");
		if (b >= 0x80)
			return die(c, ATEX_EFORMAT,
				   "non-ASCII byte 0x%02x in a control line",
				   b);
	}
	if (n > room)
		return die(c, ATEX_EFORMAT, "control line longer than %d bytes",
			   ATEX_CONTROL_LINE_MAX);
	memcpy(c->line + c->line_len, data, n);
	c->line_len += n;
	*used = n;
	if (!nl)
		return 0;
	*used = n + 1;
	if (c->line_len == 0)
		return die(c, ATEX_EFORMAT, "empty control line");
	return run_line(c);
}

/* ---- a result's JSON ---- */

/* Why a relative name would not stay under its directory, or NULL. */
static const char *path_fault(const char *s, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return "is empty";
	if (memchr(s, '\0', len))
		return "contains a NUL byte";
	if (s[0] == '/')
		return "is absolute";
	/* Each component ends at a '/' or at the end; a trailing '/' leaves
	 * an empty last one. */
	for (size_t i = 0; i <= len; i++) {
		size_t n = i - start;

		if (i < len && s[i] != '/')
			continue;
		if (n == 0)
			return "has an empty component";
		if (n == 1 && s[start] == '.')
			return "has a '.' component";
		if (n == 2 && s[start] == '.' && s[start + 1] == '.')
			return "has a '..' component";
		start = i + 1;
	}
	return NULL;
}

/*
 * Checks a file name of the result, alone and joined to the result's name
 * (what the reporter will create): the parts being safe implies the join
 * is, but the join is what reaches the disk, so it is what gets checked
 * last.
 */
static int check_file_name(atex_control *c, const char *what, json_t *value,
			   const char *name)
{
	const char *s = json_string_value(value), *fault;
	size_t len = json_string_length(value);
	char *joined = NULL;
	struct quoted q;
	int rc = 0;

	fault = path_fault(s, len);
	if (fault) {
		rc = die(c, ATEX_EFORMAT, "result: %s '%s' %s", what,
			 quote(&q, s, len), fault);
		goto out;
	}
	if (!name)
		goto out;
	joined = atex_sprintf("%s/%s", name, s);
	if (!joined) {
		rc = die_last(c, ATEX_ENOMEM);
		goto out;
	}
	fault = path_fault(joined, strlen(joined));
	if (fault)
		rc = die(c, ATEX_EFORMAT, "result: %s '%s' %s", what,
			 quote_str(&q, joined), fault);
out:
	free(joined);
	return rc;
}

/* The result's `name`: NULL in *name when absent. */
static int check_name(atex_control *c, json_t *result, const char **name)
{
	json_t *value = json_object_get(result, "name");
	const char *fault;
	struct quoted q;

	*name = NULL;
	if (!value)
		return 0;
	if (!json_is_string(value))
		return die(c, ATEX_EFORMAT, "result: 'name' must be a string");
	fault = path_fault(json_string_value(value), json_string_length(value));
	if (fault)
		return die(c, ATEX_EFORMAT, "result: 'name' '%s' %s",
			   quote(&q, json_string_value(value),
				 json_string_length(value)),
			   fault);
	*name = json_string_value(value);
	return 0;
}

/* The keys whose check is their type alone. */
static int check_types(atex_control *c, json_t *result)
{
	json_t *value;

	value = json_object_get(result, "status");
	if (value && !json_is_string(value))
		return die(c, ATEX_EFORMAT,
			   "result: 'status' must be a string");
	value = json_object_get(result, "note");
	if (value && !json_is_string(value) && !json_is_null(value))
		return die(c, ATEX_EFORMAT,
			   "result: 'note' must be a string or null");
	value = json_object_get(result, "partial");
	if (value && !json_is_boolean(value))
		return die(c, ATEX_EFORMAT,
			   "result: 'partial' must be true or false");
	return 0;
}

static int check_file(atex_control *c, json_t *file, size_t i, const char *name)
{
	json_t *fname = json_object_get(file, "name");
	json_t *length = json_object_get(file, "length");
	char what[64];

	if (!json_is_object(file))
		return die(c, ATEX_EFORMAT,
			   "result: 'files'[%zu] must be an object", i);
	if (!json_is_string(fname))
		return die(c, ATEX_EFORMAT,
			   "result: 'files'[%zu]: 'name' must be a string", i);
	if (!json_is_integer(length) || json_integer_value(length) < 0)
		return die(c, ATEX_EFORMAT,
			   "result: 'files'[%zu]: 'length' must be an integer "
			   ">= 0",
			   i);
	snprintf(what, sizeof(what), "'files'[%zu]: 'name'", i);
	return check_file_name(c, what, fname, name);
}

/* `files`: each entry checked, the lengths kept in c->lengths. */
static int check_files(atex_control *c, json_t *result, const char *name)
{
	json_t *files = json_object_get(result, "files");
	size_t n;
	int rc;

	if (!files)
		return 0;
	if (!json_is_array(files))
		return die(c, ATEX_EFORMAT, "result: 'files' must be an array");
	n = json_array_size(files);
	for (size_t i = 0; i < n; i++) {
		rc = check_file(c, json_array_get(files, i), i, name);
		if (rc)
			return rc;
	}
	if (n == 0)
		return 0;
	c->lengths = atex_calloc(n, sizeof(*c->lengths));
	if (!c->lengths)
		return die_last(c, ATEX_ENOMEM);
	c->nfiles = n;
	for (size_t i = 0; i < n; i++) {
		json_t *file = json_array_get(files, i);

		c->lengths[i] = (uint64_t)json_integer_value(
			json_object_get(file, "length"));
	}
	return 0;
}

/* `testout`, after `files` is known good. The names are safe, so equal
 * files are equal strings: no "./x" can pose as "x". */
static int check_testout(atex_control *c, json_t *result, const char *name)
{
	json_t *value = json_object_get(result, "testout");
	json_t *files = json_object_get(result, "files");
	struct quoted q;
	size_t i;
	json_t *file;
	int rc;

	if (!value)
		return 0;
	if (!json_is_string(value))
		return die(c, ATEX_EFORMAT,
			   "result: 'testout' must be a string");
	if (json_string_length(value) == 0)
		return die(c, ATEX_EFORMAT, "'testout' specified, but empty");
	rc = check_file_name(c, "'testout'", value, name);
	if (rc)
		return rc;
	json_array_foreach(files, i, file)
	{
		if (json_equal(json_object_get(file, "name"), value))
			return die(c, ATEX_EFORMAT,
				   "result: 'testout' '%s' is also in 'files'",
				   quote_str(&q, json_string_value(value)));
	}
	return 0;
}

static int check_result(atex_control *c, json_t *result)
{
	const char *name = NULL;
	int rc;

	if (!json_is_object(result))
		return die(c, ATEX_EFORMAT,
			   "result: the JSON is not an object");
	rc = check_types(c, result);
	if (!rc)
		rc = check_name(c, result, &name);
	if (!rc)
		rc = check_files(c, result, name);
	if (!rc)
		rc = check_testout(c, result, name);
	return rc;
}

/* Moves to the next file with contents to read, or ends the result. */
static int next_file(atex_control *c)
{
	int rc = 0;

	while (c->file < c->nfiles && c->lengths[c->file] == 0)
		c->file++;
	if (c->file < c->nfiles) {
		c->left = c->lengths[c->file];
		c->state = STATE_FILES;
		return 0;
	}
	drop_buffers(c);
	c->state = STATE_LINE;
	if (c->handler.result_end)
		rc = c->handler.result_end(c->userdata);
	return rc ? die_last(c, rc) : 0;
}

/* The whole JSON text is in: parse, check, hand it on. */
static int run_result(atex_control *c, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *result;
	int rc = 0;

	/* No JSON_DISABLE_EOF_CHECK: the N bytes must be the object and
	 * nothing but white space. */
	result = json_loadb(text, len, 0, &jerr);
	free(c->json);
	c->json = NULL;
	c->json_len = c->json_need = 0;
	if (!result) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return die_last(c, atex_error_oom());
		return die(c, ATEX_EFORMAT, "invalid JSON in result: %s",
			   jerr.text);
	}
	rc = check_result(c, result);
	if (rc)
		goto out;
	c->file = 0;
	if (c->handler.result_begin) {
		/* The handler owns the reference now, whatever it says. */
		rc = c->handler.result_begin(c->userdata, result);
		result = NULL;
		if (rc) {
			rc = die_last(c, rc);
			goto out;
		}
	}
	rc = next_file(c);
out:
	json_decref(result);
	return rc;
}

static int feed_json(atex_control *c, const char *data, size_t len,
		     size_t *used)
{
	size_t n = c->json_need - c->json_len;

	/* Whole in this piece: parsed in place, no copy. */
	if (c->json_len == 0 && len >= n) {
		*used = n;
		return run_result(c, data, n);
	}
	if (!c->json) {
		c->json = atex_malloc(c->json_need);
		if (!c->json)
			return die_last(c, ATEX_ENOMEM);
	}
	if (n > len)
		n = len;
	memcpy(c->json + c->json_len, data, n);
	c->json_len += n;
	*used = n;
	if (c->json_len < c->json_need)
		return 0;
	return run_result(c, c->json, c->json_len);
}

static int feed_files(atex_control *c, const char *data, size_t len,
		      size_t *used)
{
	size_t n = c->left < len ? (size_t)c->left : len;
	int rc = 0;

	if (c->handler.file_data)
		rc = c->handler.file_data(c->userdata, c->file, data, n);
	if (rc)
		return die_last(c, rc);
	*used = n;
	c->left -= n;
	if (c->left > 0)
		return 0;
	c->file++;
	return next_file(c);
}

/* ---- the API ---- */

int atex_control_new(atex_control **out,
		     const struct atex_control_handler *handler, void *userdata,
		     size_t json_limit)
{
	atex_control *c = atex_calloc(1, sizeof(*c));

	if (!c)
		return ATEX_ENOMEM;
	if (handler)
		c->handler = *handler;
	c->userdata = userdata;
	c->json_limit = json_limit ? json_limit : ATEX_CONTROL_JSON_MAX;
	c->state = STATE_LINE;
	*out = c;
	return 0;
}

int atex_control_set_exit_token(atex_control *c, const char *token)
{
	if (!token || !token_ok(token))
		return atex_error_set(ATEX_EINVAL,
				      "control: an exit token is 1 to %d "
				      "letters and digits",
				      ATEX_CONTROL_TOKEN_MAX);
	snprintf(c->token, sizeof(c->token), "%s", token);
	return 0;
}

/* The answer of a dead channel, its message again the thread's. */
static int replay(const atex_control *c)
{
	return atex_error_set(c->code, "%s", c->error);
}

int atex_control_feed(atex_control *c, const void *data, size_t len)
{
	const char *p = data;
	size_t used;
	int rc = 0;

	if (c->state == STATE_DEAD)
		return replay(c);
	/* Each step takes at least one byte or kills the channel. */
	while (len > 0 && rc == 0) {
		used = 0;
		if (c->state == STATE_LINE)
			rc = feed_line(c, p, len, &used);
		else if (c->state == STATE_JSON)
			rc = feed_json(c, p, len, &used);
		else
			rc = feed_files(c, p, len, &used);
		p += used;
		len -= used;
	}
	return rc;
}

int atex_control_finish(atex_control *c)
{
	switch (c->state) {
	case STATE_LINE:
		if (c->line_len == 0)
			return 0;
		return die(c, ATEX_EFORMAT, "EOF in a control line");
	case STATE_JSON:
		return die(c, ATEX_EFORMAT,
			   "the stream ended inside a result: %zu of its %zu "
			   "bytes came",
			   c->json_len, c->json_need);
	case STATE_FILES:
		return die(c, ATEX_EFORMAT,
			   "the stream ended inside file %zu of %zu of a "
			   "result: %" PRIu64 " of its %" PRIu64 " bytes came",
			   c->file + 1, c->nfiles,
			   c->lengths[c->file] - c->left, c->lengths[c->file]);
	case STATE_DEAD:
		break;
	}
	return replay(c);
}

const char *atex_control_error(const atex_control *c)
{
	return c->state == STATE_DEAD ? c->error : NULL;
}

/* A dead channel is not idle: the stream already broke somewhere. */
int atex_control_idle(const atex_control *c)
{
	return c->state == STATE_LINE && c->line_len == 0;
}

void atex_control_free(atex_control *c)
{
	if (!c)
		return;
	drop_buffers(c);
	free(c);
}
