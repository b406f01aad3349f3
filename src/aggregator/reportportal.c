/*
 * reportportal.c - the ReportPortal aggregator: every ingested test goes
 * to a ReportPortal launch through its REST API v2 (the reporting calls
 * Python ATEX and tmt use):
 *
 *   launch (one per aggregator: the run)
 *     SUITE item per platform ("fedora-41")
 *       STEP item per test ("/unit/syscalls"), counted in the statistics
 *         nested STEP per subtest (hasStats false), or, with join_subtest,
 *         STEP items "TEST<sep>SUBTEST" beside the test
 *
 * A test ingested again (an earlier attempt, then the re-run) is posted
 * again as a retry of the same item (retry true, retryOf the earlier
 * item): ReportPortal then shows the last attempt with the earlier ones
 * under "retries". Logs: every file a result uploaded is attached (one log
 * per file, level ERROR for fail/error/infra, INFO otherwise), output.txt
 * also inline as the log message when small; a note is the item's
 * description; start and end come from ARTIFACTS/attempt.json.
 *
 * Robustness: every launch, item and log carries a UUID made here, so a
 * request retried after its first try reached the server (the connection
 * dropped before the answer) cannot make a second object: ReportPortal's
 * asynchronous v2 API answers such a repeated start 201 with the same id
 * and drops the copy; a synchronous server answers 409 (errorCode 4091,
 * "already exists") or 406 for an item or launch finished twice (4xx
 * "already finished"): both are taken as success. Outages (5xx, 408, 429,
 * connection errors, timeouts) are retried by util/http.c within the
 * options' budget; whatever ends an upload is an error naming the test,
 * the request and the HTTP status.
 *
 * Threads: ingest from any thread at once; the HTTP exchanges of one
 * ingest run in its thread (each on a private client). The lock guards
 * the maps (platform suites, the last item of each test for retries) and
 * is held across a platform suite's creation only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aggregator/ingest.h"
#include "atex/aggregator.h"
#include "util/http.h"
#include "util/util.h"

#define RP_UUID_LEN	  36
#define RP_MAX_FILE	  ((size_t)60 << 20) /* under RP's request limit */
#define RP_INLINE_DEFAULT ((size_t)1 << 20)  /* as Python ATEX */
#define RP_EXCERPT	  300
/* ReportPortal's ValidationConstraints (service-api, commons-model):
 * longer texts are refused with 400. */
#define RP_MAX_LAUNCH_NAME 256
#define RP_MAX_ITEM_NAME   1024
#define RP_MAX_LAUNCH_DESC 2048
#define RP_MAX_DESC	   65536
#define RP_MAX_ATTRIBUTE   512

/* A launch: the run's, or (launch_per_platform) a platform's. */
struct rp_launch {
	char uuid[RP_UUID_LEN + 1];
	char start[40];
	bool started;
};

/* The tests and platforms seen: a platform's suite item (and its launch
 * with launch_per_platform), and the last item posted for a test (or
 * joined subtest), which a later attempt retries. */
struct rp_entry {
	struct rp_entry *next;
	char *key; /* "platform\ntest" or "platform" for a suite */
	char uuid[RP_UUID_LEN + 1];
	bool started; /* suites: created on the server */
	struct rp_launch launch;
};

struct rp_agg {
	atex_aggregator base;
	char *url; /* without trailing '/' */
	char *project;
	char *token;
	char *launch_name;
	char *launch_rerun;
	char *join_subtest;
	char *description;
	char *start_time;
	char *end_time;
	char run_start[40]; /* start()'s time, or start_time */
	char **attributes;
	int retry_total_ms;
	int timeout_ms;
	int backoff_first_ms;
	size_t inline_max;

	bool per_platform;
	struct rp_launch launch; /* the run's (not per platform) */
	bool started, launched, stopped;
	pthread_mutex_t lock;
	struct rp_entry *suites, *tests;
	atomic_size_t failed, ingested;
	atomic_bool down;
	/* atex_reportportal_cancel: requests in flight end, later ones get
	 * one try (hurry); stop() resets the token for its last tries. */
	atex_cancel *cancel;
	atomic_bool hurry;
	/* The last answer's status (0: none) and whether it was JSON: for
	 * the probe, made before any other thread uses the aggregator
	 * (atomic: ingests in many threads write them too). */
	atomic_long last_status;
	atomic_bool last_json;
};

struct rp_earlier {
	atex_aggregator base;
	struct rp_agg *main;
};

static const struct atex_aggregator_ops rp_ops;

/* ------------------------------------------------------------------------
 * Small helpers
 */

static void make_uuid(char out[RP_UUID_LEN + 1])
{
	unsigned char b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno != EINTR)
			break;
	}
	/* getrandom cannot really fail; should it, mix the clock in. */
	if (got < sizeof(b)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] ^= (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) +
						i * 37 + (size_t)rand());
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, RP_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Now, UTC, as attempt.json has it: 2026-12-06T22:45:01.123+00:00. */
static void iso_now(char out[40])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* The length of the valid UTF-8 sequence at s (at most `left` bytes), 0
 * when it is not one. Strict as jansson is: no overlong forms, no
 * surrogates (U+D800..DFFF), nothing above U+10FFFF, no NUL. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if (n > left || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* A copy of `s` (len bytes) that is valid UTF-8 without NULs: each bad
 * byte becomes '?', so that any log can go into a JSON string. */
static char *utf8_clean(const char *s, size_t len)
{
	char *out = atex_malloc(len + 1);
	size_t i = 0, o = 0;

	if (!out)
		return NULL;
	while (i < len) {
		size_t n = utf8_seq((const unsigned char *)s + i, len - i);

		if (!n) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* A copy of s cut to at most max bytes (max > 3) on a character
 * boundary, "…" ending it when cut: ReportPortal refuses longer names
 * (its ValidationConstraints count UTF-16 units, never more than bytes). */
static char *fit_text(const char *s, size_t max)
{
	size_t len = strlen(s), i = 0;
	char *out;

	if (len <= max)
		return atex_strdup(s);
	while (i < len) {
		size_t n = utf8_seq((const unsigned char *)s + i, len - i);

		if (!n)
			n = 1;
		if (i + n > max - 3)
			break;
		i += n;
	}
	out = atex_malloc(i + 4);
	if (!out)
		return NULL;
	memcpy(out, s, i);
	memcpy(out + i, "\xe2\x80\xa6", 4);
	return out;
}

/* A request body could not be made: a text jansson refused (not UTF-8)
 * or memory; named, never a bare "out of memory". */
static int build_failed(const char *what)
{
	return atex_error_set(ATEX_EINVAL,
			      "ReportPortal: %s: the request could not be "
			      "built (a text that is not UTF-8, or no memory)",
			      what ? what : "request");
}

static struct rp_entry *find_entry(struct rp_entry *head, const char *key)
{
	for (; head; head = head->next)
		if (!strcmp(head->key, key))
			return head;
	return NULL;
}

static struct rp_entry *add_entry(struct rp_entry **head, const char *key)
{
	struct rp_entry *e = atex_calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->key = atex_strdup(key);
	if (!e->key) {
		free(e);
		return NULL;
	}
	e->next = *head;
	*head = e;
	return e;
}

static void free_entries(struct rp_entry *e)
{
	while (e) {
		struct rp_entry *next = e->next;

		free(e->key);
		free(e);
		e = next;
	}
}

/* ------------------------------------------------------------------------
 * Requests
 */

/* Whether a reply that is not 2xx still means the object is there: a
 * repeated start (409, errorCode 4091, "already exists") or a repeated
 * finish (406 or 409, "already finished"). */
static bool already_done(long status, const char *body)
{
	if (status == 409)
		return true;
	return status == 406 && body && strstr(body, "already finished");
}

/* One request. `what` names it for messages ("test /a on P: start
 * item"). On 0, *reply (may be NULL) holds the decoded answer (or NULL
 * when it was "already done" or not JSON). ATEX_EIO with a message
 * naming what, method, URL, and the status or why no answer came. */
static int rp_request_try(struct rp_agg *rp, const char *method,
			  const char *path, json_t *body,
			  const struct atex_http_part *parts, size_t n_parts,
			  const char *what, json_t **reply, bool retry)
{
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http_result res;
	char *url = atex_sprintf("%s/api/v2/%s%s", rp->url, rp->project, path);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	char *shown = NULL, *excerpt = NULL;
	int rc;

	if (reply)
		*reply = NULL;
	if (!url || (body && !text)) {
		free(url);
		free(text);
		return atex_error_oom();
	}
	r.method = method;
	r.url = url;
	r.body = text;
	r.token = rp->token;
	/* While the server is down (a request outlasted its retries), one
	 * try each: a run does not wait the whole budget for every test;
	 * the first answer ends it. */
	r.retry = retry && !atomic_load(&rp->down) && !atomic_load(&rp->hurry);
	r.retry_total_ms = rp->retry_total_ms;
	r.timeout_ms = rp->timeout_ms;
	r.backoff_first_ms = rp->backoff_first_ms;
	r.parts = parts;
	r.n_parts = n_parts;
	rc = atex_http_call(&res, &r, rp->cancel);
	free(text);
	rp->last_status = rc < 0 ? 0 : res.status;
	rp->last_json = false;
	if (rc < 0) {
		if (rc == ATEX_EIO)
			atomic_store(&rp->down, true);
		atex_error_prefix("ReportPortal: %s", what);
		free(url);
		return rc == ATEX_ENOMEM || rc == ATEX_ECANCELED ? rc
								 : ATEX_EIO;
	}
	if (res.status < 500 && res.status != 408 && res.status != 429)
		atomic_store(&rp->down, false);
	if (res.status == 200 || res.status == 201 ||
	    already_done(res.status, res.body)) {
		if (res.tries > 1 || res.status >= 300)
			atex_debug("reportportal",
				   "%s: %s %s: HTTP %ld after %d tries", what,
				   method, path, res.status, res.tries);
		if (reply && res.status < 300)
			*reply = json_loads(res.body, 0, NULL);
		rp->last_json = reply && json_is_object(*reply);
		atex_http_result_clear(&res);
		free(url);
		return 0;
	}
	shown = atex_http_url_for_message(url);
	excerpt = utf8_clean(res.body, res.body_len < RP_EXCERPT ? res.body_len
								 : RP_EXCERPT);
	/* A server quoting the Authorization header back must not make us
	 * print the token. */
	if (excerpt && rp->token && rp->token[0] &&
	    strstr(excerpt, rp->token)) {
		free(excerpt);
		excerpt = atex_strdup("(the answer quotes the token: not "
				      "shown)");
	}
	/* Outages that outlasted the budget: the server is down. */
	if (res.status == 408 || res.status == 429 || res.status >= 500)
		atomic_store(&rp->down, true);
	rc = atex_error_set(
		ATEX_EIO, "ReportPortal: %s: %s %s: HTTP %ld after %d %s%s%s",
		what, method, shown ? shown : "", res.status, res.tries,
		res.tries == 1 ? "try" : "tries",
		excerpt && excerpt[0] ? ": " : "", excerpt ? excerpt : "");
	free(shown);
	free(excerpt);
	free(url);
	atex_http_result_clear(&res);
	return rc;
}

static int rp_request(struct rp_agg *rp, const char *method, const char *path,
		      json_t *body, const struct atex_http_part *parts,
		      size_t n_parts, const char *what, json_t **reply)
{
	return rp_request_try(rp, method, path, body, parts, n_parts, what,
			      reply, true);
}

/* A text cut to `max` bytes as a JSON string (NULL when it cannot be). */
static json_t *json_fit(const char *s, size_t max)
{
	char *cut = s ? fit_text(s, max) : NULL;
	json_t *j = cut ? json_string(cut) : NULL;

	free(cut);
	return j;
}

static void attr_add(json_t *list, const char *key, const char *value)
{
	json_t *a = json_object();

	if (!a)
		return;
	if (key)
		json_object_set_new(a, "key", json_fit(key, RP_MAX_ATTRIBUTE));
	json_object_set_new(a, "value", json_fit(value, RP_MAX_ATTRIBUTE));
	json_array_append_new(list, a);
}

/* "key:value" or "value" into the attribute list. */
static json_t *launch_attributes(struct rp_agg *rp)
{
	json_t *list = json_array();

	for (size_t i = 0; list && rp->attributes && rp->attributes[i]; i++) {
		char *copy = atex_strdup(rp->attributes[i]);
		char *colon = copy ? strchr(copy, ':') : NULL;

		if (!copy)
			continue;
		if (colon) {
			*colon = '\0';
			attr_add(list, copy, colon + 1);
		} else {
			attr_add(list, NULL, copy);
		}
		free(copy);
	}
	return list;
}

/* Starts launch `l` (its UUID made at the first try and kept: a try
 * after one that did reach the server makes no second launch). `platform`
 * is the platform of a launch per platform, NULL for the run's. */
static int start_launch_try(struct rp_agg *rp, struct rp_launch *l,
			    const char *platform, bool retry)
{
	json_t *body, *reply = NULL;
	char *name = NULL, *what = NULL;
	const char *id;
	int rc;

	/* Every launch starts with the run (a launch per platform too,
	 * made at its first upload): its tests' real times fit in it. */
	if (!l->uuid[0]) {
		make_uuid(l->uuid);
		if (rp->run_start[0])
			snprintf(l->start, sizeof(l->start), "%s",
				 rp->run_start);
		else
			iso_now(l->start);
	}
	if (rp->launch_rerun)
		/* The name is the rerun launch's; any string will do. */
		body = json_pack("{s:s, s:s, s:b, s:s, s:s}", "name",
				 rp->launch_rerun, "startTime", l->start,
				 "rerun", 1, "rerunOf", rp->launch_rerun,
				 "uuid", l->uuid);
	else {
		char *full = platform ? atex_sprintf("%s %s", rp->launch_name,
						     platform)
				      : atex_strdup(rp->launch_name);

		name = full ? fit_text(full, RP_MAX_LAUNCH_NAME) : NULL;
		free(full);
		body = name ? json_pack("{s:s, s:s, s:s, s:s, s:o}", "name",
					name, "startTime", l->start, "uuid",
					l->uuid, "mode", "DEFAULT",
					"attributes", launch_attributes(rp))
			    : NULL;
		if (body && platform)
			attr_add(json_object_get(body, "attributes"),
				 "platform", platform);
	}
	free(name);
	what = platform ? atex_sprintf("platform %s: start launch", platform)
			: atex_strdup("start launch");
	if (!body || !what) {
		json_decref(body);
		free(what);
		return build_failed(what);
	}
	if (rp->description)
		json_object_set_new(
			body, "description",
			json_fit(rp->description, RP_MAX_LAUNCH_DESC));
	rc = rp_request_try(rp, "POST", "/launch", body, NULL, 0, what, &reply,
			    retry);
	json_decref(body);
	free(what);
	/* A rerun continues the launch it names: its id is the answer. */
	id = json_string_value(json_object_get(reply, "id"));
	if (!rc && id && strlen(id) <= RP_UUID_LEN)
		snprintf(l->uuid, sizeof(l->uuid), "%s", id);
	json_decref(reply);
	l->started = rc == 0;
	return rc;
}

static int start_launch(struct rp_agg *rp, struct rp_launch *l,
			const char *platform)
{
	return start_launch_try(rp, l, platform, true);
}

/* A name too long for ReportPortal is cut; the full one is then the
 * item's description at its start (and its codeRef for a test). */
static json_t *item_body(const struct rp_launch *l, const char *uuid,
			 const char *name, const char *type, const char *start,
			 bool has_stats)
{
	char *cut = fit_text(name, RP_MAX_ITEM_NAME);
	json_t *body =
		cut ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "launchUuid",
				l->uuid, "uuid", uuid, "name", cut, "type",
				type, "startTime", start, "hasStats", has_stats)
		    : NULL;

	if (body && strcmp(cut, name))
		json_object_set_new(body, "description",
				    json_fit(name, RP_MAX_DESC));
	free(cut);
	return body;
}

/* A server that did not take our UUID names the object in its answer
 * ({"id": ...}): that name is used from then on. */
static void take_id(char uuid[RP_UUID_LEN + 1], json_t *reply)
{
	const char *id = json_string_value(json_object_get(reply, "id"));

	if (id && id[0] && strlen(id) <= RP_UUID_LEN)
		snprintf(uuid, RP_UUID_LEN + 1, "%s", id);
}

/* The platform's suite item, created once (under the lock: other
 * ingests of the platform wait for it). */
static int platform_suite(struct rp_agg *rp, const char *platform,
			  char uuid[RP_UUID_LEN + 1],
			  const struct rp_launch **launch)
{
	json_t *reply = NULL;
	struct rp_launch *l;
	struct rp_entry *e;
	json_t *body;
	char *what;
	int rc = 0;

	pthread_mutex_lock(&rp->lock);
	e = find_entry(rp->suites, platform);
	if (!e) {
		e = add_entry(&rp->suites, platform);
		if (e)
			make_uuid(e->uuid);
	}
	if (!e) {
		pthread_mutex_unlock(&rp->lock);
		return atex_error_oom();
	}
	l = rp->per_platform ? &e->launch : &rp->launch;
	*launch = l;
	if (!l->started)
		rc = start_launch(rp, l, platform);
	if (!rc && !e->started) {
		/* A failed try keeps the UUID: the next one cannot make a
		 * second suite if this one did reach the server. */
		body = item_body(l, e->uuid, platform, "SUITE", l->start, true);
		what = atex_sprintf("platform %s: start suite", platform);
		if (body) {
			json_object_set_new(body, "attributes", json_array());
			attr_add(json_object_get(body, "attributes"),
				 "platform", platform);
		}
		rc = body && what ? rp_request(rp, "POST", "/item", body, NULL,
					       0, what, &reply)
				  : build_failed(what);
		json_decref(body);
		free(what);
		take_id(e->uuid, reply);
		json_decref(reply);
		e->started = rc == 0;
	}
	memcpy(uuid, e->uuid, RP_UUID_LEN + 1);
	pthread_mutex_unlock(&rp->lock);
	return rc;
}

/* The item a new attempt of `key` retries ("" when none), in *prev. */
static void last_attempt(struct rp_agg *rp, const char *key,
			 char prev[RP_UUID_LEN + 1])
{
	struct rp_entry *e;

	pthread_mutex_lock(&rp->lock);
	e = find_entry(rp->tests, key);
	memcpy(prev, e ? e->uuid : "", e ? RP_UUID_LEN + 1 : 1);
	pthread_mutex_unlock(&rp->lock);
}

static int set_last_attempt(struct rp_agg *rp, const char *key,
			    const char *uuid)
{
	struct rp_entry *e;

	pthread_mutex_lock(&rp->lock);
	e = find_entry(rp->tests, key);
	if (!e)
		e = add_entry(&rp->tests, key);
	if (e)
		memcpy(e->uuid, uuid, RP_UUID_LEN + 1);
	pthread_mutex_unlock(&rp->lock);
	return e ? 0 : atex_error_oom();
}

/* ------------------------------------------------------------------------
 * One test
 */

struct rp_test {
	struct rp_agg *rp;
	const char *platform;
	const char *test;
	const char *artifacts;
	char *files_real; /* realpath of ARTIFACTS/files, or NULL */
	char start[40], end[40];
	char *system; /* attempt.json's, or NULL */
	long attempt; /* attempt.json's, 0 unknown */
	const struct rp_launch *launch;
	char *what; /* "test /t on P" */
};

static const char *rp_status(const char *status)
{
	static const char *const map[][2] = {
		{"pass", "passed"},	  {"fail", "failed"},
		{"error", "failed"},	  {"warn", "warn"},
		{"infra", "interrupted"}, {"skip", "skipped"},
		{"info", "info"},
	};

	for (size_t i = 0; status && i < ATEX_ARRAY_SIZE(map); i++)
		if (!strcmp(status, map[i][0]))
			return map[i][1];
	return "info"; /* as Python ATEX: anything else */
}

static bool failing(const char *status)
{
	return status && (!strcmp(status, "fail") || !strcmp(status, "error") ||
			  !strcmp(status, "infra"));
}

/* start/end of the attempt from ARTIFACTS/attempt.json (contract section
 * 1), the ingest's time when absent; never before the launch started
 * (ReportPortal refuses a child older than its parent). */
static void attempt_times(struct rp_test *t)
{
	struct atex_ingest_attempt at = ATEX_INGEST_ATTEMPT_INIT;

	iso_now(t->end);
	snprintf(t->start, sizeof(t->start), "%s", t->end);
	/* A malformed attempt.json is a warning (the reader's), not fatal. */
	if (atex_ingest_read_attempt(&at, t->artifacts) == 0) {
		if (at.start[0])
			snprintf(t->start, sizeof(t->start), "%s", at.start);
		if (at.end[0])
			snprintf(t->end, sizeof(t->end), "%s", at.end);
		t->system = at.system;
		t->attempt = at.attempt;
		at.system = NULL;
	}
	atex_ingest_attempt_release(&at);
	if (strcmp(t->start, t->launch->start) < 0)
		snprintf(t->start, sizeof(t->start), "%s", t->launch->start);
	if (strcmp(t->end, t->start) < 0)
		snprintf(t->end, sizeof(t->end), "%s", t->start);
}

/* Reads one uploaded file (a regular file inside ARTIFACTS/files: a
 * symlink, or a path that leads out, is not read: it could be any file of
 * this machine). *why says why not when NULL is returned. */
static char *read_artifact(struct rp_test *t, const char *subtest,
			   const char *name, size_t *len, const char **why)
{
	char *dir = NULL, *path = NULL, *real = NULL, *data = NULL;
	struct stat sb;
	int fd = -1;

	*why = "cannot be read";
	if (!t->files_real)
		return NULL;
	/* files/NAME/FILE, NAME's leading '/' dropped ("/first"). */
	while (subtest && *subtest == '/')
		subtest++;
	dir = subtest && *subtest ? atex_path_join(t->files_real, subtest)
				  : atex_strdup(t->files_real);
	path = dir ? atex_path_join(dir, name) : NULL;
	if (!path)
		goto out;
	real = realpath(path, NULL);
	if (!real || strncmp(real, t->files_real, strlen(t->files_real)) ||
	    real[strlen(t->files_real)] != '/' || strcmp(real, path)) {
		*why = "is not a file of the test (a link, or missing)";
		goto out;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		*why = "is not a regular file";
		goto out;
	}
	if ((size_t)sb.st_size > RP_MAX_FILE) {
		*why = "is too big for ReportPortal (over 60 MiB)";
		goto out;
	}
	data = atex_malloc((size_t)sb.st_size + 1);
	*len = 0;
	while (data && *len < (size_t)sb.st_size) {
		ssize_t n = read(fd, data + *len, (size_t)sb.st_size - *len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	free(path);
	free(real);
	return data;
}

static int post_log(struct rp_test *t, const char *item, const char *level,
		    const char *message, const char *file_name,
		    const char *data, size_t len)
{
	struct atex_http_part parts[2] = {{0}};
	char uuid[RP_UUID_LEN + 1], *list_text, *what, *safe;
	json_t *entry, *list;
	int rc;

	make_uuid(uuid);
	entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "launchUuid",
			  t->launch->uuid, "itemUuid", item, "uuid", uuid,
			  "time", t->end, "level", level, "message", message);
	if (!entry)
		return build_failed(t->what);
	what = atex_sprintf("%s: log %s", t->what,
			    file_name ? file_name : "(inline)");
	if (!file_name) {
		rc = what ? rp_request(t->rp, "POST", "/log", entry, NULL, 0,
				       what, NULL)
			  : atex_error_oom();
		json_decref(entry);
		free(what);
		return rc;
	}
	/* ReportPortal matches the part to the entry by file name: one safe
	 * name in both (curl would escape '"' in the part's header, and
	 * line breaks or '\\' have no portable form there); the real name
	 * is the log's message. */
	safe = atex_strdup(file_name);
	for (char *c = safe; c && *c; c++)
		if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 ||
		    *c == 0x7f)
			*c = '_';
	json_object_set_new(entry, "file",
			    safe ? json_pack("{s:s}", "name", safe) : NULL);
	list = json_pack("[o]", entry);
	list_text = list ? json_dumps(list, JSON_COMPACT) : NULL;
	json_decref(list);
	if (!list_text || !what || !safe) {
		free(list_text);
		free(safe);
		rc = build_failed(what ? what : t->what);
		free(what);
		return rc;
	}
	parts[0] = (struct atex_http_part){"json_request_part", NULL,
					   "application/json",	list_text,
					   strlen(list_text),	NULL};
	parts[1] = (struct atex_http_part){
		"file", safe, "application/octet-stream", data, len, NULL};
	rc = rp_request(t->rp, "POST", "/log", NULL, parts, 2, what, NULL);
	free(list_text);
	free(safe);
	free(what);
	return rc;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Every file of one result attached to `item`; output.txt also inline
 * when small. A file that cannot be read is a log line saying so. */
static int upload_files(struct rp_test *t, const char *item,
			const struct atex_ingest_result *r)
{
	const char *level = failing(r->status) ? "ERROR" : "INFO";
	size_t i;
	json_t *f;
	int rc = 0;

	json_array_foreach(r->files, i, f)
	{
		const char *name = json_string_value(f), *why;
		size_t len = 0;
		char *data, *msg;

		if (!name)
			continue;
		data = read_artifact(t, r->name, name, &len, &why);
		if (!data) {
			msg = atex_sprintf("%s: %s, not uploaded", name, why);
			rc = msg ? post_log(t, item, "WARN", msg, NULL, NULL, 0)
				 : atex_error_oom();
			free(msg);
		} else {
			rc = post_log(t, item, level, name, base_name(name),
				      data, len);
			/* Only the test's own output inline, and not empty. */
			if (!rc && !r->name && !strcmp(name, "output.txt") &&
			    len > 0 && len <= t->rp->inline_max) {
				msg = utf8_clean(data, len);
				rc = msg ? post_log(t, item, level, msg, NULL,
						    NULL, 0)
					 : atex_error_oom();
				free(msg);
			}
			free(data);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int finish_item(struct rp_test *t, const char *uuid, const char *status,
		       const char *note, const char *what, bool retry)
{
	json_t *body =
		json_pack("{s:s, s:s, s:s}", "launchUuid", t->launch->uuid,
			  "endTime", t->end, "status", status);
	char *path = atex_sprintf("/item/%s", uuid);
	int rc;

	if (body && note)
		json_object_set_new(body, "description",
				    json_fit(note, RP_MAX_DESC));
	rc = body && path ? rp_request_try(t->rp, "PUT", path, body, NULL, 0,
					   what, NULL, retry)
			  : build_failed(what);
	json_decref(body);
	free(path);
	return rc;
}

/* After an upload failed midway: the started item finished as
 * interrupted, saying why, with one try (the server may be down); the
 * first error is the one kept. */
static void abandon_item(struct rp_test *t, const char *uuid)
{
	char *why = atex_strdup(atex_error_last());
	int code = atex_error_last_code();
	char *note =
		why ? atex_sprintf("atex could not upload all of it: %s", why)
		    : NULL;

	finish_item(t, uuid, "interrupted", note, t->what, false);
	free(note);
	atex_error_set(code, "%s", why ? why : "");
	free(why);
}

/* Starts an item under `parent`: a retry of the last item of `key` when
 * there is one (key NULL: never a retry). */
static int start_item(struct rp_test *t, const char *parent, const char *key,
		      const char *name, const char *code_ref, bool has_stats,
		      char uuid[RP_UUID_LEN + 1], const char *what)
{
	char prev[RP_UUID_LEN + 1] = "", *path;
	json_t *body, *reply = NULL;
	int rc;

	make_uuid(uuid);
	if (key)
		last_attempt(t->rp, key, prev);
	body = item_body(t->launch, uuid, name, "STEP", t->start, has_stats);
	path = atex_sprintf("/item/%s", parent);
	if (!body || !path) {
		json_decref(body);
		free(path);
		return build_failed(what);
	}
	json_object_set_new(body, "codeRef", json_string(code_ref));
	json_object_set_new(body, "attributes", json_array());
	attr_add(json_object_get(body, "attributes"), "platform", t->platform);
	if (t->system)
		attr_add(json_object_get(body, "attributes"), "system",
			 t->system);
	if (prev[0]) {
		json_object_set_new(body, "retry", json_true());
		json_object_set_new(body, "retryOf", json_string(prev));
	}
	rc = rp_request(t->rp, "POST", path, body, NULL, 0, what, &reply);
	take_id(uuid, reply);
	json_decref(reply);
	json_decref(body);
	free(path);
	if (!rc && key)
		rc = set_last_attempt(t->rp, key, uuid);
	return rc;
}

/* One result as an item of its own: started, files, finished. */
static int post_result(struct rp_test *t, const char *parent, const char *key,
		       const char *name, bool has_stats,
		       const struct atex_ingest_result *r)
{
	char uuid[RP_UUID_LEN + 1];
	char *what = atex_sprintf("%s: %s", t->what, name);
	const char *sub = r->name;
	char *code_ref;
	int rc;

	/* A code reference of its own (TEST/SUBTEST, as tmt names it), so
	 * that ReportPortal's testCaseId tells subtests apart. */
	while (*sub == '/')
		sub++;
	code_ref = atex_sprintf("%s/%s", t->test, sub);
	if (!what || !code_ref) {
		free(what);
		free(code_ref);
		return atex_error_oom();
	}
	rc = start_item(t, parent, key, name, code_ref, has_stats, uuid, what);
	free(code_ref);
	if (rc) {
		free(what);
		return rc;
	}
	rc = upload_files(t, uuid, r);
	if (!rc)
		rc = finish_item(t, uuid, rp_status(r->status), r->note, what,
				 true);
	if (rc)
		abandon_item(t, uuid);
	free(what);
	return rc;
}

static char *test_key(const char *platform, const char *name)
{
	return atex_sprintf("%s\n%s", platform, name);
}

static int post_test(struct rp_test *t, const struct atex_ingest *in,
		     const char *suite)
{
	struct rp_agg *rp = t->rp;
	const char *status = NULL, *note = NULL;
	char uuid[RP_UUID_LEN + 1], *key = NULL, *name = NULL;
	bool own = false, started = false;
	int rc = 0;

	/* The test's own results: the last status and note (as YAML's
	 * compact layout merges them). */
	for (size_t i = 0; i < in->n; i++)
		if (!in->results[i].name) {
			own = true;
			status = in->results[i].status;
			note = in->results[i].note;
		}
	key = test_key(t->platform, t->test);
	if (!key)
		return atex_error_oom();
	if (!rp->join_subtest) {
		rc = start_item(t, suite, key, t->test, t->test, true, uuid,
				t->what);
		started = !rc;
	}
	for (size_t i = 0; !rc && i < in->n; i++) {
		const struct atex_ingest_result *r = &in->results[i];

		if (!r->name) {
			if (!rp->join_subtest)
				rc = upload_files(t, uuid, r);
			continue;
		}
		if (!rp->join_subtest) {
			rc = post_result(t, uuid, NULL, r->name, false, r);
			continue;
		}
		name = atex_sprintf("%s%s%s", t->test, rp->join_subtest,
				    r->name);
		free(key);
		key = name ? test_key(t->platform, name) : NULL;
		rc = name && key ? post_result(t, suite, key, name, true, r)
				 : atex_error_oom();
		free(name);
	}
	if (!rc && rp->join_subtest) {
		/* The test's own item, with the files of its own results. */
		free(key);
		key = test_key(t->platform, t->test);
		rc = key ? start_item(t, suite, key, t->test, t->test, true,
				      uuid, t->what)
			 : atex_error_oom();
		started = !rc;
		for (size_t i = 0; !rc && i < in->n; i++)
			if (!in->results[i].name)
				rc = upload_files(t, uuid, &in->results[i]);
	}
	if (!rc)
		rc = finish_item(
			t, uuid, own ? rp_status(status) : "interrupted",
			own ? note : "no result reported for the test itself",
			t->what, true);
	if (rc && started)
		abandon_item(t, uuid);
	free(key);
	return rc;
}

static int rp_ingest_one(struct rp_agg *rp, const char *platform,
			 const char *test_name, const char *artifacts_dir)
{
	struct atex_ingest in = ATEX_INGEST_INIT;
	struct rp_test t = {.rp = rp,
			    .platform = platform,
			    .test = test_name,
			    .artifacts = artifacts_dir};
	char suite[RP_UUID_LEN + 1], *files;
	int rc;

	if (!rp->started || rp->stopped)
		return atex_error_set(ATEX_EINVAL,
				      "ReportPortal: %s on %s: the aggregator "
				      "is not started",
				      test_name, platform);
	if (!rp->launched)
		return atex_error_set(ATEX_EIO,
				      "ReportPortal: %s on %s: not uploaded, "
				      "the launch could not be started",
				      test_name, platform);
	rc = atex_ingest_prepare(&in, NULL, platform, test_name, artifacts_dir);
	if (rc < 0)
		return rc;
	t.what = atex_sprintf("test %s on %s", test_name, platform);
	files = atex_path_join(artifacts_dir, "files");
	t.files_real = files ? realpath(files, NULL) : NULL;
	free(files);
	if (!t.what) {
		rc = atex_error_oom();
		goto out;
	}
	rc = platform_suite(rp, platform, suite, &t.launch);
	if (!rc) {
		attempt_times(&t);
		if (t.attempt > 0) {
			/* Messages name the attempt: re-runs are told apart. */
			char *w = atex_sprintf("test %s on %s (attempt %ld)",
					       test_name, platform, t.attempt);

			if (w) {
				free(t.what);
				t.what = w;
			}
		}
		rc = post_test(&t, &in, suite);
	}
out:
	atomic_fetch_add(&rp->ingested, 1);
	if (rc)
		atomic_fetch_add(&rp->failed, 1);
	free(t.what);
	free(t.system);
	free(t.files_real);
	atex_ingest_release(&in);
	return rc;
}

/* ------------------------------------------------------------------------
 * The aggregator
 */

static int rp_start(atex_aggregator *a)
{
	struct rp_agg *rp = (struct rp_agg *)a;
	int rc;

	if (rp->started)
		return atex_error_set(ATEX_EINVAL,
				      "ReportPortal: started twice");
	rp->started = true;
	if (rp->start_time)
		snprintf(rp->run_start, sizeof(rp->run_start), "%s",
			 rp->start_time);
	else if (!rp->launch.started)
		iso_now(rp->run_start);
	else
		snprintf(rp->run_start, sizeof(rp->run_start), "%s",
			 rp->launch.start);
	/* A launch per platform starts with its platform's first test. */
	if (rp->per_platform) {
		rp->launched = true;
		return 0;
	}
	rc = rp->launch.started ? 0 : start_launch(rp, &rp->launch, NULL);
	rp->launched = rc == 0;
	return rc;
}

static int rp_ingest(atex_aggregator *a, const char *platform,
		     const char *test_name, const char *artifacts_dir)
{
	return rp_ingest_one((struct rp_agg *)a, platform, test_name,
			     artifacts_dir);
}

static int finish_launch(struct rp_agg *rp, const struct rp_launch *l,
			 const char *end, const char *platform)
{
	json_t *body = json_pack("{s:s}", "endTime", end);
	char *path = atex_sprintf("/launch/%s/finish", l->uuid);
	char *what =
		platform ? atex_sprintf("platform %s: finish launch", platform)
			 : atex_strdup("finish launch");
	int rc = body && path && what ? rp_request(rp, "PUT", path, body, NULL,
						   0, what, NULL)
				      : atex_error_oom();

	json_decref(body);
	free(path);
	free(what);
	return rc;
}

/* Finishes every platform suite, then the launch(es): whatever failed
 * before, a launch we started is never left in progress. */
static int rp_stop(atex_aggregator *a)
{
	struct rp_agg *rp = (struct rp_agg *)a;
	char end[40], *path, *what;
	json_t *body;
	int rc = 0, one;

	if (!rp->launched || rp->stopped)
		return 0;
	rp->stopped = true;
	/* After a cancel: one try each to finish what was started. */
	if (atomic_load(&rp->hurry))
		atex_cancel_reset(rp->cancel);
	if (rp->end_time)
		snprintf(end, sizeof(end), "%s", rp->end_time);
	else
		iso_now(end);
	for (struct rp_entry *e = rp->suites; e; e = e->next) {
		const struct rp_launch *l =
			rp->per_platform ? &e->launch : &rp->launch;

		if (!e->started)
			continue;
		body = json_pack("{s:s, s:s}", "launchUuid", l->uuid, "endTime",
				 end);
		path = atex_sprintf("/item/%s", e->uuid);
		what = atex_sprintf("platform %s: finish suite", e->key);
		one = body && path && what ? rp_request(rp, "PUT", path, body,
							NULL, 0, what, NULL)
					   : atex_error_oom();
		if (one && !rc)
			rc = one;
		json_decref(body);
		free(path);
		free(what);
	}
	for (struct rp_entry *e = rp->suites; rp->per_platform && e;
	     e = e->next) {
		one = e->launch.started
			      ? finish_launch(rp, &e->launch, end, e->key)
			      : 0;
		if (one && !rc)
			rc = one;
	}
	if (!rp->per_platform) {
		one = finish_launch(rp, &rp->launch, end, NULL);
		if (one)
			rc = one;
	}
	return rc;
}

static void rp_free(atex_aggregator *a)
{
	struct rp_agg *rp = (struct rp_agg *)a;

	rp_stop(a);
	free(rp->url);
	free(rp->project);
	if (rp->token) {
		memset(rp->token, 0, strlen(rp->token));
		free(rp->token);
	}
	free(rp->launch_name);
	free(rp->launch_rerun);
	free(rp->join_subtest);
	free(rp->description);
	free(rp->start_time);
	free(rp->end_time);
	for (size_t i = 0; rp->attributes && rp->attributes[i]; i++)
		free(rp->attributes[i]);
	free(rp->attributes);
	free_entries(rp->suites);
	free_entries(rp->tests);
	atex_cancel_free(rp->cancel);
	pthread_mutex_destroy(&rp->lock);
	free(rp);
}

static const struct atex_aggregator_ops rp_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = rp_start,
	.ingest = rp_ingest,
	.stop = rp_stop,
	.free = rp_free,
};

static int copy_opt(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = atex_strdup(src);
	return *dst ? 0 : ATEX_ENOMEM;
}

/* Whether s (NULL: fine) can go into a JSON string: valid UTF-8. */
static bool json_text(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	json_decref(j);
	return !s || j;
}

static int check_options(const struct atex_reportportal_aggregator_options *o,
			 const char **token)
{
	const char *why = NULL;
	bool text = json_text(o->launch_name) && json_text(o->description) &&
		    json_text(o->join_subtest);

	bool blank = false;

	for (size_t i = 0; text && o->attributes && o->attributes[i]; i++) {
		const char *colon = strchr(o->attributes[i], ':');
		const char *value = colon ? colon + 1 : o->attributes[i];

		text = json_text(o->attributes[i]);
		blank |= !value[strspn(value, " \t")];
	}

	*token = o->token;
	if (!*token || !**token)
		*token = getenv("ATEX_REPORTPORTAL_TOKEN");
	if (!*token || !**token)
		*token = getenv("TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN");
	if (o->version < 1 ||
	    o->version > ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_VERSION)
		why = "unknown options version";
	else if (!o->url || strncmp(o->url, "http", 4) ||
		 !strstr(o->url, "://"))
		why = "the URL must be http:// or https://";
	else if (!o->project || !o->project[0] || strpbrk(o->project, "/?#% "))
		why = "no project, or one with '/', '?', '#', '%' or a space";
	else if (!o->launch_name == !o->launch_rerun)
		why = "give a launch name or a launch to rerun (one of them)";
	else if (!text)
		why = "the launch name, description, attributes or subtest "
		      "separator are not UTF-8";
	else if (blank)
		why = "an attribute with a blank value (ReportPortal refuses "
		      "it): \"key:value\" or \"value\"";
	else if (o->launch_rerun && o->launch_per_platform)
		why = "a launch per platform cannot rerun one launch";
	else if (o->launch_rerun &&
		 strspn(o->launch_rerun, "0123456789abcdefABCDEF-") !=
			 strlen(o->launch_rerun))
		why = "the launch to rerun is not a UUID";
	else if (!*token || !**token)
		why = "no token: set ATEX_REPORTPORTAL_TOKEN (or tmt's "
		      "TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN)";
	else if (o->start_time &&
		 (strlen(o->start_time) < 19 || strlen(o->start_time) > 39))
		why = "start_time is not an ISO 8601 time";
	else if (o->version >= 2 && o->end_time &&
		 (strlen(o->end_time) < 19 || strlen(o->end_time) > 39))
		why = "end_time is not an ISO 8601 time";
	else if (strpbrk(*token, "\r\n"))
		why = "a line break in the token";
	if (why)
		return atex_error_set(ATEX_EINVAL, "ReportPortal: %s", why);
	return 0;
}

int atex_reportportal_aggregator_new(
	atex_aggregator **out,
	const struct atex_reportportal_aggregator_options *o)
{
	struct rp_agg *rp;
	const char *token;
	size_t n = 0;
	int rc;

	if (!out || !o)
		return atex_error_set(ATEX_EINVAL,
				      "atex_reportportal_aggregator_new: no "
				      "out pointer or options");
	*out = NULL;
	rc = check_options(o, &token);
	if (rc)
		return rc;
	rp = atex_calloc(1, sizeof(*rp));
	if (!rp)
		return ATEX_ENOMEM;
	rp->base.ops = &rp_ops;
	pthread_mutex_init(&rp->lock, NULL);
	rp->retry_total_ms = o->retry_total_ms;
	rp->timeout_ms = o->timeout_ms;
	rp->backoff_first_ms = o->backoff_first_ms;
	rp->per_platform = o->launch_per_platform;
	rp->inline_max = o->inline_max ? o->inline_max : RP_INLINE_DEFAULT;
	while (o->attributes && o->attributes[n])
		n++;
	rc = atex_cancel_new(&rp->cancel);
	rc = rc ? rc : copy_opt(&rp->url, o->url);
	rc = rc ? rc : copy_opt(&rp->project, o->project);
	rc = rc ? rc : copy_opt(&rp->token, token);
	rc = rc ? rc : copy_opt(&rp->launch_name, o->launch_name);
	rc = rc ? rc : copy_opt(&rp->launch_rerun, o->launch_rerun);
	rc = rc ? rc : copy_opt(&rp->join_subtest, o->join_subtest);
	rc = rc ? rc : copy_opt(&rp->description, o->description);
	rc = rc ? rc : copy_opt(&rp->start_time, o->start_time);
	if (o->version >= 2)
		rc = rc ? rc : copy_opt(&rp->end_time, o->end_time);
	if (!rc && n) {
		rp->attributes = atex_calloc(n + 1, sizeof(char *));
		rc = rp->attributes ? 0 : ATEX_ENOMEM;
		for (size_t i = 0; !rc && i < n; i++)
			rc = copy_opt(&rp->attributes[i], o->attributes[i]);
	}
	if (rc) {
		rp_free(&rp->base);
		return rc;
	}
	while (strlen(rp->url) > 8 && rp->url[strlen(rp->url) - 1] == '/')
		rp->url[strlen(rp->url) - 1] = '\0';
	*out = &rp->base;
	return 0;
}

/* ---- the earlier-attempts view ---- */

static int earlier_ingest(atex_aggregator *a, const char *platform,
			  const char *test_name, const char *artifacts_dir)
{
	return rp_ingest_one(((struct rp_earlier *)a)->main, platform,
			     test_name, artifacts_dir);
}

static void earlier_free(atex_aggregator *a)
{
	free(a);
}

static const struct atex_aggregator_ops earlier_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.ingest = earlier_ingest,
	.free = earlier_free,
};

static struct rp_agg *as_rp(atex_aggregator *a)
{
	if (a && a->ops == &earlier_ops)
		return ((struct rp_earlier *)a)->main;
	return a && a->ops == &rp_ops ? (struct rp_agg *)a : NULL;
}

int atex_reportportal_aggregator_earlier(atex_aggregator **out,
					 atex_aggregator *rp)
{
	struct rp_earlier *e;

	if (!out || !rp || rp->ops != &rp_ops)
		return atex_error_set(ATEX_EINVAL,
				      "atex_reportportal_aggregator_earlier: "
				      "not a ReportPortal aggregator");
	e = atex_calloc(1, sizeof(*e));
	if (!e)
		return ATEX_ENOMEM;
	e->base.ops = &earlier_ops;
	e->main = (struct rp_agg *)rp;
	*out = &e->base;
	return 0;
}

const char *atex_reportportal_launch_uuid(atex_aggregator *a)
{
	struct rp_agg *rp = as_rp(a);

	return rp && rp->launch.started ? rp->launch.uuid : NULL;
}

size_t atex_reportportal_failed(atex_aggregator *a)
{
	struct rp_agg *rp = as_rp(a);

	return rp ? atomic_load(&rp->failed) : 0;
}

int atex_reportportal_probe(atex_aggregator *a, int timeout_ms)
{
	struct rp_agg *rp = as_rp(a);
	int saved, rc;

	if (!rp || a->ops != &rp_ops || rp->started)
		return atex_error_set(ATEX_EINVAL,
				      "atex_reportportal_probe: not a "
				      "ReportPortal aggregator, or started");
	/* A launch per platform starts with its platform: nothing to try. */
	if (rp->per_platform || rp->launch.started)
		return 0;
	if (rp->start_time)
		snprintf(rp->run_start, sizeof(rp->run_start), "%s",
			 rp->start_time);
	saved = rp->timeout_ms;
	if (timeout_ms > 0)
		rp->timeout_ms = timeout_ms;
	rc = start_launch_try(rp, &rp->launch, NULL, false);
	rp->timeout_ms = saved;
	if (!rc && !rp->last_json) {
		rp->launch.started = false;
		rc = atex_error_set(ATEX_EIO,
				    "ReportPortal: start launch: "
				    "HTTP %ld",
				    rp->last_status);
	}
	if (!rc || rc == ATEX_ENOMEM || rc == ATEX_ECANCELED)
		return rc;
	/* An answer that is not an outage is the user's to fix. */
	if (rp->last_status && rp->last_status < 500 &&
	    rp->last_status != 408 && rp->last_status != 429) {
		char *why = atex_strdup(atex_error_last());

		rp->launch.uuid[0] = '\0';
		rc = atex_error_set(
			ATEX_EINVAL, "%s%s",
			why ? why : "ReportPortal: start launch",
			rp->last_status < 300 ? ": not ReportPortal's answer"
			: rp->last_status == 401 || rp->last_status == 403
				? " (a wrong token?)"
			: rp->last_status == 404 ? " (an unknown project?)"
						 : "");
		free(why);
		return rc;
	}
	/* An outage: start() retries; the probe's one try does not make the
	 * server "down" (one try each) for it. */
	atomic_store(&rp->down, false);
	return ATEX_EIO;
}

void atex_reportportal_cancel(atex_aggregator *a)
{
	struct rp_agg *rp = as_rp(a);

	if (!rp)
		return;
	atomic_store(&rp->hurry, true);
	atex_cancel_fire(rp->cancel);
}
