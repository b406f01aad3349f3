/*
 * attempt.c - ARTIFACTS/attempt.json (ingest.h): when, where and how one
 * attempt of a test ran, written by the ad-hoc orchestrator and read by
 * every aggregator.
 *
 * How it is built, and why:
 *
 *  - The file is the orchestrator's, next to ARTIFACTS/results, so that
 *    every aggregator (and a program's own, through the same directory)
 *    sees the same values without a new argument to ingest.
 *  - It is optional and never fatal: artifacts a program made itself have
 *    none, and a broken one loses its values, not the test's results. A
 *    wrong key costs that key alone.
 *  - Times are ISO 8601 with milliseconds and "+00:00", the form tmt
 *    writes and Python's datetime.fromisoformat() reads; the duration is
 *    the monotonic clock's, rounded to the millisecond (a wall clock
 *    stepped by NTP during a test does not make it negative).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/ingest.h"
#include "util/util.h"

#define ATTEMPT_FILE "attempt.json"

void atex_ingest_iso_time(char out[40], const struct timespec *ts)
{
	struct tm tm;

	char date[24];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%.24s.%03u+00:00", date,
		 (unsigned)(ts->tv_nsec / 1000000) % 1000u);
}

void atex_ingest_attempt_release(struct atex_ingest_attempt *a)
{
	if (!a)
		return;
	free(a->system);
	*a = (struct atex_ingest_attempt)ATEX_INGEST_ATTEMPT_INIT;
}

/* ---- reading ---- */

/* "YYYY-MM-DDTHH:MM:SS" and then only fraction and offset characters. */
static bool iso_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	if (strlen(s) >= 40 || strlen(s) < sizeof(shape) - 1)
		return false;
	for (i = 0; shape[i]; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
				    : s[i] != shape[i])
			return false;
	}
	return strspn(s + i, "0123456789.:+-Z") == strlen(s + i);
}

static void bad_key(const char *path, const char *key, const char *why)
{
	atex_log(ATEX_LOG_WARNING, "aggregator", "%s: \"%s\" %s; ignored", path,
		 key, why);
}

/* A time key into `out` ("" when absent, null or bad). */
static void read_time(char out[40], json_t *obj, const char *key,
		      const char *path)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return;
	if (!json_is_string(v) || !iso_ok(json_string_value(v))) {
		bad_key(path, key, "is not an ISO 8601 time");
		return;
	}
	snprintf(out, 40, "%s", json_string_value(v));
}

/* An integer key in [min, max]; false when absent, null or bad. */
static bool read_int(long *out, json_t *obj, const char *key, long min,
		     long max, const char *path)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return false;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		bad_key(path, key, "is not a whole number in range");
		return false;
	}
	*out = (long)json_integer_value(v);
	return true;
}

static int read_fields(struct atex_ingest_attempt *out, json_t *obj,
		       const char *path)
{
	json_t *v;
	long n;

	read_time(out->start, obj, "start", path);
	read_time(out->end, obj, "end", path);
	v = json_object_get(obj, "duration");
	if (json_is_number(v) && json_number_value(v) >= 0 &&
	    isfinite(json_number_value(v)))
		out->duration = json_number_value(v);
	else if (v && !json_is_null(v))
		bad_key(path, "duration", "is not a number of seconds");
	v = json_object_get(obj, "system");
	if (json_is_string(v) && *json_string_value(v)) {
		out->system = atex_strdup(json_string_value(v));
		if (!out->system)
			return ATEX_ENOMEM;
	} else if (v && !json_is_null(v)) {
		bad_key(path, "system", "is not a name");
	}
	if (read_int(&n, obj, "attempt", 1, LONG_MAX, path))
		out->attempt = n;
	if (read_int(&n, obj, "exit_code", 0, INT_MAX, path)) {
		out->exit_code = (int)n;
		out->has_exit_code = true;
	}
	return 0;
}

int atex_ingest_read_attempt(struct atex_ingest_attempt *out,
			     const char *artifacts_dir)
{
	char *path = atex_path_join(artifacts_dir, ATTEMPT_FILE);
	json_error_t jerr;
	json_t *obj;
	int rc;

	*out = (struct atex_ingest_attempt)ATEX_INGEST_ATTEMPT_INIT;
	if (!path)
		return ATEX_ENOMEM;
	obj = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj && access(path, F_OK) < 0 && errno == ENOENT) {
		rc = ATEX_ENOTFOUND;
	} else if (!json_is_object(obj)) {
		atex_log(ATEX_LOG_WARNING, "aggregator",
			 "%s:%d: not a JSON object (%s); its times are "
			 "unknown",
			 path, obj ? 1 : jerr.line,
			 obj ? "another JSON value" : jerr.text);
		rc = ATEX_EFORMAT;
	} else {
		rc = read_fields(out, obj, path);
	}
	json_decref(obj);
	free(path);
	if (rc == ATEX_ENOMEM)
		atex_ingest_attempt_release(out);
	return rc;
}

/* ---- writing ---- */

/* Seconds rounded to the millisecond (no libm: the library links none). */
static double ms_round(double s)
{
	return (double)(long long)(s * 1e3 + 0.5) / 1e3;
}

int atex_ingest_attempt_fields(json_t *o, const struct atex_ingest_attempt *a)
{
	if (json_object_set_new(o, "start",
				*a->start ? json_string(a->start)
					  : json_null()) ||
	    json_object_set_new(o, "end",
				*a->end ? json_string(a->end) : json_null()) ||
	    json_object_set_new(o, "duration",
				a->duration >= 0
					? json_real(ms_round(a->duration))
					: json_null()) ||
	    json_object_set_new(o, "system",
				a->system ? json_string(a->system)
					  : json_null()))
		return -1;
	return 0;
}

static json_t *attempt_json(const struct atex_ingest_attempt *a)
{
	json_t *o = json_object();

	if (!o || atex_ingest_attempt_fields(o, a) < 0 ||
	    json_object_set_new(o, "attempt",
				a->attempt > 0 ? json_integer(a->attempt)
					       : json_null()) ||
	    json_object_set_new(o, "exit_code",
				a->has_exit_code ? json_integer(a->exit_code)
						 : json_null())) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

int atex_ingest_write_attempt(const char *artifacts_dir,
			      const struct atex_ingest_attempt *a)
{
	char *path = atex_path_join(artifacts_dir, ATTEMPT_FILE);
	char *tmp = atex_sprintf("%s/.%s.tmp", artifacts_dir, ATTEMPT_FILE);
	json_t *obj = attempt_json(a);
	char *text =
		obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15))
		    : NULL;
	int rc = 0, fd, err;
	bool ok;

	if (!path || !tmp || !text) {
		rc = atex_error_oom();
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	ok = fd >= 0 && write_all(fd, text, strlen(text)) == 0 &&
	     write_all(fd, "\n", 1) == 0;
	err = errno;
	if (fd >= 0 && close(fd) < 0 && ok) {
		ok = false;
		err = errno;
	}
	if (!ok) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot write: %s", tmp,
				    strerror(err));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot write: %s", path,
				    strerror(errno));
		unlink(tmp);
	}
out:
	free(text);
	json_decref(obj);
	free(tmp);
	free(path);
	return rc;
}
