/*
 * fuzz_control.c - libFuzzer target for the control channel parser
 * (src/executor/control.h).
 *
 * The first bytes of the input say how the rest is cut into feeds, so
 * the fuzzer explores splits as well as streams: byte 0 is a seed for a
 * small generator of piece sizes (0 feeds the stream whole). The stream
 * is then fed once in those pieces and once whole; both runs must call
 * the handler identically and end with the same code and message.
 *
 * The handlers check the contract as they are called: file_data only
 * between result_begin and result_end, never empty, files in order with
 * exactly their declared length in total, each validated name safe,
 * nothing at all after an error, and a result_end for every begin unless
 * the channel died. Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor/control.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct check {
	json_t *result;	 /* the result being read, or NULL */
	size_t file;	 /* the file being read */
	uint64_t got;	 /* bytes of it so far */
	uint64_t digest; /* of every call, to compare two runs */
	bool dead;	 /* the parser returned an error */
};

static void mix(struct check *k, uint64_t value)
{
	k->digest = (k->digest ^ value) * 0x100000001b3ULL;
}

static void mix_bytes(struct check *k, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		mix(k, p[i]);
}

static uint64_t file_length(json_t *result, size_t i)
{
	json_t *files = json_object_get(result, "files");

	return (uint64_t)json_integer_value(
		json_object_get(json_array_get(files, i), "length"));
}

/* A checked name: relative, no empty, "." or ".." component. */
static void check_safe(const char *s)
{
	size_t len = strlen(s), start = 0;

	if (len == 0 || s[0] == '/')
		abort();
	for (size_t i = 0; i <= len; i++) {
		size_t n = i - start;

		if (i < len && s[i] != '/')
			continue;
		if (n == 0 || (n == 1 && s[start] == '.') ||
		    (n == 2 && s[start] == '.' && s[start + 1] == '.'))
			abort();
		start = i + 1;
	}
}

static void check_names(json_t *result)
{
	json_t *value = json_object_get(result, "name"), *file;
	size_t i;

	if (value)
		check_safe(json_string_value(value));
	value = json_object_get(result, "testout");
	if (value)
		check_safe(json_string_value(value));
	json_array_foreach(json_object_get(result, "files"), i, file)
	{
		check_safe(json_string_value(json_object_get(file, "name")));
		if (json_equal(json_object_get(file, "name"), value))
			abort();
	}
}

static int on_begin(void *userdata, json_t *result)
{
	struct check *k = userdata;
	char *text;

	if (k->dead || k->result || !json_is_object(result))
		abort();
	check_names(result);
	text = json_dumps(result, JSON_COMPACT);
	if (text)
		mix_bytes(k, text, strlen(text));
	free(text);
	mix(k, 1);
	k->result = result;
	k->file = 0;
	k->got = 0;
	return 0;
}

/* Moves past the files that are complete (or empty). */
static void skip_done(struct check *k)
{
	size_t n = json_array_size(json_object_get(k->result, "files"));

	while (k->file < n && k->got == file_length(k->result, k->file)) {
		k->file++;
		k->got = 0;
	}
}

static int on_data(void *userdata, size_t index, const void *data, size_t len)
{
	struct check *k = userdata;

	if (k->dead || !k->result || len == 0)
		abort();
	skip_done(k);
	if (index != k->file || k->got + len > file_length(k->result, k->file))
		abort();
	/* The digest must not see where the pieces were cut. */
	if (k->got == 0) {
		mix(k, 2);
		mix(k, index);
	}
	k->got += len;
	mix_bytes(k, data, len);
	return 0;
}

static int on_end(void *userdata)
{
	struct check *k = userdata;

	if (k->dead || !k->result)
		abort();
	skip_done(k);
	if (k->file != json_array_size(json_object_get(k->result, "files")))
		abort();
	json_decref(k->result);
	k->result = NULL;
	mix(k, 3);
	return 0;
}

static int on_exitcode(void *userdata, int code)
{
	struct check *k = userdata;

	if (k->dead || k->result || code < 0 || code > 255)
		abort();
	mix(k, 4);
	mix(k, (uint64_t)code);
	return 0;
}

static int on_duration(void *userdata, enum atex_control_duration_kind kind,
		       double seconds)
{
	struct check *k = userdata;

	if (k->dead || k->result || !(seconds >= 0))
		abort();
	if ((kind == ATEX_CONTROL_DURATION_SAVE ||
	     kind == ATEX_CONTROL_DURATION_RESTORE) &&
	    seconds != 0)
		abort();
	mix(k, 5);
	mix(k, (uint64_t)kind);
	mix_bytes(k, &seconds, sizeof(seconds));
	return 0;
}

static int on_disconnect(void *userdata)
{
	struct check *k = userdata;

	if (k->dead || k->result)
		abort();
	mix(k, 6);
	return 0;
}

static const struct atex_control_handler handler = {
	.result_begin = on_begin,
	.file_data = on_data,
	.result_end = on_end,
	.exitcode = on_exitcode,
	.duration = on_duration,
	.disconnect = on_disconnect,
};

struct outcome {
	uint64_t digest;
	int rc;
	char error[4096];
};

/* The next piece size: a small generator seeded by the input. */
static size_t next_piece(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	switch ((*state >> 16) & 3) {
	case 0:
		return 1;
	case 1:
		return 1 + ((*state >> 8) & 7);
	case 2:
		return 1 + ((*state >> 4) & 255);
	}
	return 1 + ((*state >> 4) & 8191);
}

static void run(struct outcome *o, const uint8_t *data, size_t size,
		uint8_t seed)
{
	struct check k = {NULL, 0, 0, 0xcbf29ce484222325ULL, false};
	uint32_t state = seed;
	atex_control *c;
	size_t off = 0;
	int rc = 0;

	/* A small limit, so that the fuzzer reaches it. */
	if (atex_control_new(&c, &handler, &k, 512))
		abort();
	while (off < size && rc == 0) {
		size_t n = seed ? next_piece(&state) : size;

		if (n > size - off)
			n = size - off;
		rc = atex_control_feed(c, data + off, n);
		off += n;
	}
	if (rc == 0)
		rc = atex_control_finish(c);
	if (rc == 0) {
		/* A clean end is between lines, with no result open. */
		if (!atex_control_idle(c) || k.result || atex_control_error(c))
			abort();
	} else {
		const char *error = atex_control_error(c);

		if (rc != ATEX_EFORMAT || !error || !*error)
			abort();
		if (strcmp(error, atex_error_last()) != 0)
			abort();
		for (const char *p = error; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		k.dead = true;
		/* Dead for good: the same code, nothing to the handler. */
		if (atex_control_feed(c, data, size) != rc ||
		    atex_control_feed(c, "noop\n", 5) != rc ||
		    atex_control_finish(c) != rc)
			abort();
		snprintf(o->error, sizeof(o->error), "%s", error);
	}
	o->digest = k.digest;
	o->rc = rc;
	json_decref(k.result);
	atex_control_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outcome split, whole;

	if (size == 0)
		return 0;
	memset(&split, 0, sizeof(split));
	memset(&whole, 0, sizeof(whole));
	run(&split, data + 1, size - 1, data[0]);
	run(&whole, data + 1, size - 1, 0);
	if (split.digest != whole.digest || split.rc != whole.rc ||
	    strcmp(split.error, whole.error) != 0)
		abort();
	return 0;
}
