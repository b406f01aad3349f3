/*
 * yaml.c - the YAML aggregator: one "---" document per ingested test,
 *
 *     ---
 *     platform: rhel-9.6@x86_64
 *     test: /unit/syscalls
 *     status: fail          # the test's own result; null when it
 *     note: null            #   reported subtests only
 *     files: [output.txt]
 *     start: '2026-12-06T22:45:01.123+00:00'   # ARTIFACTS/attempt.json:
 *     end: '2026-12-06T22:45:04.567+00:00'     #   start, end, duration,
 *     duration: 3.444                          #   system, attempt and
 *     system: local-3                          #   exit_code, each only
 *     attempt: 1                               #   when known
 *     exit_code: 0
 *     subtests:
 *     - name: connect
 *       status: fail
 *       note: Got ECONNABORTED
 *       files: []
 *
 * How it is built, and why:
 *
 *  - The document is emitted by libyaml into memory before the lock is
 *    taken, then written with one write(2) on an O_APPEND descriptor, as
 *    the JSON Lines aggregator does: a killed run leaves whole documents.
 *  - libyaml writes a plain scalar as it is told; a string such as "yes",
 *    "null" or "1.0" would read back as something else. Strings that
 *    could be taken for another type are therefore quoted (the emitter
 *    picks the quoting when plain style is ruled out).
 *  - The test's own result is the first result without a name; any other
 *    one (an error result for a malformed results line, say) is listed
 *    with the subtests, with a null name, so nothing is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "aggregator/ingest.h"
#include "atex/aggregator.h"
#include "util/util.h"

struct yamld {
	atex_aggregator base;
	char *path;
	char *files_dir;
	bool compact, strict, exclusive; /* the options */

	pthread_mutex_t lock;
	bool started; /* under the lock, with fd and size */
	int fd;
	off_t size;
};

/* ---- emitting ---- */

static int write_to_buf(void *data, unsigned char *buffer, size_t size)
{
	return atex_buf_put(data, buffer, size) == 0;
}

static int emit(yaml_emitter_t *e, yaml_event_t *ev, bool ok)
{
	if (!ok)
		return atex_error_oom();
	if (yaml_emitter_emit(e, ev))
		return 0;
	if (e->error == YAML_MEMORY_ERROR || e->error == YAML_WRITER_ERROR)
		return atex_error_oom();
	return atex_error_set(ATEX_EIO, "YAML emitter: %s",
			      e->problem ? e->problem : "error");
}

/* Whether `s` reads back as the same string when written plain. */
static bool plain_ok(const char *s)
{
	static const char *const words[] = {
		"null", "true", "false", "yes", "no", "on", "off", "y", "n"};
	unsigned char c = (unsigned char)s[0];

	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '/' ||
	      c == '_' || c >= 0x80))
		return false;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(words); i++)
		if (!strcasecmp(s, words[i]))
			return false;
	return true;
}

/* A string scalar, or null for NULL. */
static int scalar(yaml_emitter_t *e, const char *s)
{
	yaml_event_t ev;
	bool ok;

	if (!s)
		ok = yaml_scalar_event_initialize(&ev, NULL, NULL,
						  (yaml_char_t *)"null", 4, 1,
						  1, YAML_PLAIN_SCALAR_STYLE);
	else
		ok = yaml_scalar_event_initialize(
			&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s),
			plain_ok(s), 1, YAML_ANY_SCALAR_STYLE);
	return emit(e, &ev, ok);
}

static int pair(yaml_emitter_t *e, const char *key, const char *value)
{
	int rc = scalar(e, key);

	return rc ? rc : scalar(e, value);
}

static int mapping(yaml_emitter_t *e, bool start)
{
	yaml_event_t ev;
	bool ok = start ? yaml_mapping_start_event_initialize(
				  &ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)
			: yaml_mapping_end_event_initialize(&ev);

	return emit(e, &ev, ok);
}

static int sequence(yaml_emitter_t *e, bool start)
{
	yaml_event_t ev;
	bool ok = start ? yaml_sequence_start_event_initialize(
				  &ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE)
			: yaml_sequence_end_event_initialize(&ev);

	return emit(e, &ev, ok);
}

/* status, note and files of one result (`r` NULL: all null). */
static int result_keys(yaml_emitter_t *e, const struct atex_ingest_result *r)
{
	json_t *file;
	size_t i;
	int rc;

	rc = pair(e, "status", r ? r->status : NULL);
	if (!rc)
		rc = pair(e, "note", r ? r->note : NULL);
	if (!rc)
		rc = scalar(e, "files");
	if (!rc)
		rc = sequence(e, true);
	json_array_foreach(r ? r->files : NULL, i, file)
	{
		if (!rc)
			rc = scalar(e, json_string_value(file));
	}
	return rc ? rc : sequence(e, false);
}

static int subtests(yaml_emitter_t *e, const struct atex_ingest *in,
		    const struct atex_ingest_result *own)
{
	int rc = scalar(e, "subtests");

	if (!rc)
		rc = sequence(e, true);
	for (size_t i = 0; i < in->n && !rc; i++) {
		const struct atex_ingest_result *r = &in->results[i];

		if (r == own)
			continue;
		rc = mapping(e, true);
		if (!rc)
			rc = pair(e, "name", r->name);
		if (!rc)
			rc = result_keys(e, r);
		if (!rc)
			rc = mapping(e, false);
	}
	return rc ? rc : sequence(e, false);
}

/* A number, plain: it reads back as one. */
static int number(yaml_emitter_t *e, const char *key, const char *fmt, ...)
	ATEX_PRINTF(3, 4);
static int number(yaml_emitter_t *e, const char *key, const char *fmt, ...)
{
	yaml_event_t ev;
	char text[64];
	va_list ap;
	int rc = scalar(e, key);

	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return emit(e, &ev,
		    yaml_scalar_event_initialize(
			    &ev, NULL, NULL, (yaml_char_t *)text,
			    (int)strlen(text), 1, 0, YAML_PLAIN_SCALAR_STYLE));
}

/* ARTIFACTS/attempt.json's values, those that are known. */
static int attempt_keys(yaml_emitter_t *e, const struct atex_ingest_attempt *a)
{
	int rc = 0;

	if (*a->start)
		rc = pair(e, "start", a->start);
	if (!rc && *a->end)
		rc = pair(e, "end", a->end);
	if (!rc && a->duration >= 0)
		rc = number(e, "duration", "%.3f", a->duration);
	if (!rc && a->system)
		rc = pair(e, "system", a->system);
	if (!rc && a->attempt > 0)
		rc = number(e, "attempt", "%ld", a->attempt);
	if (!rc && a->has_exit_code)
		rc = number(e, "exit_code", "%d", a->exit_code);
	return rc;
}

static int document_body(yaml_emitter_t *e, const struct atex_ingest *in)
{
	const struct atex_ingest_result *own = NULL;
	int rc;

	for (size_t i = 0; i < in->n && !own; i++)
		if (!in->results[i].name)
			own = &in->results[i];
	rc = mapping(e, true);
	if (!rc)
		rc = pair(e, "platform", in->platform);
	if (!rc)
		rc = pair(e, "test", in->test);
	if (!rc)
		rc = result_keys(e, own);
	if (!rc)
		rc = attempt_keys(e, &in->attempt);
	if (!rc)
		rc = subtests(e, in, own);
	return rc ? rc : mapping(e, false);
}

/* ---- the compact layout (Python ATEX's) ---- */

static bool is_subtest(const struct atex_ingest_result *r)
{
	return r->name && *r->name;
}

static int files_key(yaml_emitter_t *e, json_t *files)
{
	json_t *file;
	size_t i;
	int rc = scalar(e, "files");

	if (!rc)
		rc = sequence(e, true);
	json_array_foreach(files, i, file)
	{
		if (!rc)
			rc = scalar(e, json_string_value(file));
	}
	return rc ? rc : sequence(e, false);
}

static int compact_subtest(yaml_emitter_t *e,
			   const struct atex_ingest_result *r)
{
	int rc = mapping(e, true);

	if (!rc)
		rc = pair(e, "name", r->name);
	if (!rc && r->status)
		rc = pair(e, "status", r->status);
	if (!rc && json_array_size(r->files))
		rc = files_key(e, r->files);
	if (!rc && r->note)
		rc = pair(e, "note", r->note);
	return rc ? rc : mapping(e, false);
}

static int compact_body(yaml_emitter_t *e, const struct atex_ingest *in)
{
	const char *status = NULL, *note = NULL;
	json_t *files = json_array();
	bool any_subtest = false;
	int rc;

	if (!files)
		return atex_error_oom();
	for (size_t i = 0; i < in->n; i++) {
		const struct atex_ingest_result *r = &in->results[i];

		if (is_subtest(r)) {
			any_subtest = true;
			continue;
		}
		status = r->status ? r->status : status;
		note = r->note ? r->note : note;
		json_array_extend(files, r->files);
	}
	rc = mapping(e, true);
	if (!rc)
		rc = pair(e, "platform", in->platform);
	if (!rc)
		rc = pair(e, "name", in->test);
	if (!rc && status)
		rc = pair(e, "status", status);
	if (!rc && json_array_size(files))
		rc = files_key(e, files);
	if (!rc && note)
		rc = pair(e, "note", note);
	json_decref(files);
	if (!rc && any_subtest) {
		rc = scalar(e, "subtests");
		if (!rc)
			rc = sequence(e, true);
		for (size_t i = 0; i < in->n && !rc; i++)
			if (is_subtest(&in->results[i]))
				rc = compact_subtest(e, &in->results[i]);
		if (!rc)
			rc = sequence(e, false);
	}
	return rc ? rc : mapping(e, false);
}

/* The whole document of one ingest, appended to `b`. */
static int document(struct atex_buf *b, const struct atex_ingest *in,
		    bool compact)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	int rc;

	if (!yaml_emitter_initialize(&e))
		return atex_error_oom();
	yaml_emitter_set_output(&e, write_to_buf, b);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	rc = emit(&e, &ev,
		  yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	if (!rc)
		rc = emit(&e, &ev,
			  yaml_document_start_event_initialize(&ev, NULL, NULL,
							       NULL, 0));
	if (!rc)
		rc = compact ? compact_body(&e, in) : document_body(&e, in);
	if (!rc)
		rc = emit(&e, &ev, yaml_document_end_event_initialize(&ev, 1));
	if (!rc)
		rc = emit(&e, &ev, yaml_stream_end_event_initialize(&ev));
	if (!rc && !yaml_emitter_flush(&e))
		rc = atex_error_oom();
	yaml_emitter_delete(&e);
	return rc;
}

/* ---- operations ---- */

static int yamld_start(atex_aggregator *a)
{
	struct yamld *y = (struct yamld *)a;
	int rc = 0;

	pthread_mutex_lock(&y->lock);
	if (y->started) {
		rc = atex_error_set(ATEX_EINVAL, "%s: started twice", y->path);
		goto out;
	}
	if (y->exclusive) {
		rc = atex_ingest_check_absent(y->path);
		if (!rc && y->files_dir)
			rc = atex_ingest_check_absent(y->files_dir);
		if (rc)
			goto out;
	}
	if (y->files_dir) {
		rc = atex_ingest_mkdirs(y->files_dir);
		if (rc)
			goto out;
	}
	rc = atex_ingest_open_output(&y->fd, y->path);
	if (rc)
		goto out;
	y->size = 0;
	y->started = true;
out:
	pthread_mutex_unlock(&y->lock);
	return rc;
}

static int yamld_ingest(atex_aggregator *a, const char *platform,
			const char *test_name, const char *artifacts_dir)
{
	struct yamld *y = (struct yamld *)a;
	struct atex_buf doc = ATEX_BUF_INIT;
	struct atex_ingest in;
	bool started;
	int rc;

	pthread_mutex_lock(&y->lock);
	started = y->started;
	pthread_mutex_unlock(&y->lock);
	if (!started)
		return atex_error_set(ATEX_EINVAL, "%s: ingest before start",
				      y->path);
	rc = atex_ingest_prepare_flags(
		&in, y->files_dir, platform, test_name, artifacts_dir,
		y->strict ? ATEX_INGEST_STRICT : 0, NULL);
	if (rc)
		return rc;
	rc = document(&doc, &in, y->compact);
	if (rc)
		goto out;
	pthread_mutex_lock(&y->lock);
	if (!y->started)
		rc = atex_error_set(ATEX_EINVAL, "%s: stopped during ingest",
				    y->path);
	else
		rc = atex_ingest_write(y->fd, doc.ptr, doc.len, &y->size,
				       y->path);
	pthread_mutex_unlock(&y->lock);
	if (rc)
		atex_error_prefix("%s on %s", test_name, platform);
out:
	atex_buf_free(&doc);
	atex_ingest_release(&in);
	return rc;
}

static int yamld_stop(atex_aggregator *a)
{
	struct yamld *y = (struct yamld *)a;
	int rc = 0;

	pthread_mutex_lock(&y->lock);
	if (y->started && close(y->fd) < 0)
		rc = atex_error_set(ATEX_EIO, "%s: cannot close: %s", y->path,
				    strerror(errno));
	y->fd = -1;
	y->started = false;
	pthread_mutex_unlock(&y->lock);
	return rc;
}

static void yamld_free(atex_aggregator *a)
{
	struct yamld *y = (struct yamld *)a;

	if (yamld_stop(a) < 0)
		atex_log(ATEX_LOG_ERROR, "aggregator", "%s", atex_error_last());
	pthread_mutex_destroy(&y->lock);
	free(y->path);
	free(y->files_dir);
	free(y);
}

static const struct atex_aggregator_ops yamld_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = yamld_start,
	.ingest = yamld_ingest,
	.stop = yamld_stop,
	.free = yamld_free,
};

int atex_yaml_aggregator_new(atex_aggregator **out, const char *path,
			     const char *files_dir)
{
	struct atex_yaml_aggregator_options o =
		ATEX_YAML_AGGREGATOR_OPTIONS_INIT;

	o.path = path;
	o.files_dir = files_dir;
	return atex_yaml_aggregator_new_opts(out, &o);
}

int atex_yaml_aggregator_new_opts(
	atex_aggregator **out, const struct atex_yaml_aggregator_options *opts)
{
	const char *path = opts ? opts->path : NULL;
	const char *files_dir = opts ? opts->files_dir : NULL;
	struct yamld *y;

	if (!out)
		return atex_error_set(ATEX_EINVAL,
				      "atex_yaml_aggregator_new: no out "
				      "pointer");
	*out = NULL;
	if (!opts || opts->version != ATEX_YAML_AGGREGATOR_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "atex_yaml_aggregator_new: no options "
				      "or unknown options version");
	if (!path || !*path)
		return atex_error_set(ATEX_EINVAL,
				      "atex_yaml_aggregator_new: no path");
	y = atex_calloc(1, sizeof(*y));
	if (!y)
		return ATEX_ENOMEM;
	y->base.ops = &yamld_ops;
	y->compact = opts->compact;
	y->strict = opts->strict;
	y->exclusive = opts->exclusive;
	y->fd = -1;
	y->path = atex_strdup(path);
	y->files_dir = files_dir ? atex_strdup(files_dir) : NULL;
	if (!y->path || (files_dir && !y->files_dir)) {
		free(y->path);
		free(y->files_dir);
		free(y);
		return ATEX_ENOMEM;
	}
	pthread_mutex_init(&y->lock, NULL);
	*out = &y->base;
	return 0;
}
