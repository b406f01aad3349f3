/*
 * testingfarm.c - machines reserved from Testing Farm (API v0.1): each
 * remote is one request of Testing Farm's reservation test, reached over
 * ssh as the user and host its pipeline.log names, with the provisioner's
 * key (sent as the request's TF_RESERVATION_AUTHORIZED_KEYS_BASE64
 * secret). docs/TESTINGFARM.md tells the whole story.
 *
 * One thread (the "HTTP thread") and one libcurl multi handle
 * (util/http.c) serve every request of a provisioner: it submits, polls
 * state and pipeline.log, and cancels. Polling intervals are due times;
 * the thread waits in atex_http_run with the shortest one as its timeout,
 * woken by other threads (provision, release, abort, stop, a finished
 * login) through atex_http_wake. No exchange blocks it and it never
 * sleeps: 50 waiting reservations cost one idle thread.
 *
 * ssh logins are blocking (an ssh master comes up or fails), so each
 * machine in its login phase has a short-lived thread that tries every
 * 1.5 s until a login works (then runs the OS-cleaning script when
 * asked), the request ends or it is canceled.
 *
 * Every request is recorded under the lock from its POST on: as soon as
 * the id exists, abort, stop, clear and release can cancel it. A DELETE
 * is only ever started by the HTTP thread (it owns the client); the other
 * threads set want_cancel and wake it. A POST still in flight when a
 * cancel comes is cancelled as soon as its id arrives.
 *
 * Memory: a request is freed by the HTTP thread (or stop) once nothing
 * refers to it any more: no exchange in flight, no login thread, and
 * either never handed out or released by the user.
 *
 * The token is copied once into memory and only ever handed to the HTTP
 * client for its Authorization header.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/provisioner.h"
#include "provisioner/keygen.h"
#include "provisioner/queue.h"
#include "provisioner/testingfarm_private.h"
#include "util/http.h"
#include "util/util.h"

#define COMPONENT "testingfarm"

#define DEFAULT_API_URL	    "https://api.testing-farm.io"
#define DEFAULT_COUNT	    50
#define DEFAULT_RETRIES	    10
#define DEFAULT_POLL_MS	    10000
#define DEFAULT_TIMEOUT_MIN 60
/* One ssh login attempt (the master's handshake, then `true`). */
#define LOGIN_CONNECT_S	 10
#define LOGIN_CONNECT_MS 15000
#define LOGIN_CMD_MS	 30000
/* Between login attempts: the reservation test installs the key a few
 * seconds after "starting tests execution". */
#define LOGIN_PAUSE_MS 1500
/* A login that keeps failing (the key never installed) is told after
 * this long, then at this interval. */
/* API failures for this long are told (once, and once when it is back),
 * not each retry. */
#define OUTAGE_WARN_MS	    30000
#define LOGIN_WARN_FIRST_MS (2 * 60 * 1000)
#define LOGIN_WARN_EVERY_MS (5 * 60 * 1000)
/* The cleaning script updates nothing big; a hung one must still end. */
#define CLEANING_MS (20 * 60 * 1000)
/* abort returns promptly; stop waits for the DELETEs with their retries. */
#define ABORT_WAIT_MS 4000
#define STOP_WAIT_MS  60000
/* Once abort or stop begins, a POST in flight gets this long for its
 * answer (its id, to DELETE it) before atex stops waiting for it. */
#define POST_GRACE_MS 3000
/* One POST try: the first byte of the answer is what matters. */
#define POST_TRY_MS (10 * 60 * 1000)
/* The last pipeline.log read of a request that ended. */
#define DYING_READ_MS 5000
/* pipeline.log reads in one poll when the server answers less than it
 * has (206 with B+1 < TOTAL). */
#define MAX_LOG_READS 64
/* State replies that are not JSON or name no state, in a row, before
 * the request is given up. */
#define MAX_BAD_REPLIES 10
/* How much of a reply quotes an error. */
#define QUOTE_MAX 200

enum rq_phase {
	RQ_SUBMITTING, /* POST in flight, no id yet */
	RQ_WAITING,    /* polling state and pipeline.log */
	RQ_LOGIN,      /* its login thread is trying ssh */
	RQ_READY,      /* in the queue */
	RQ_HANDED,     /* given out by get_remote */
	RQ_ENDED,      /* nothing of it is alive on the service any more */
};

struct tf_prov;
static const struct atex_remote_ops remote_ops;

/* One request; it is also the remote handed out. */
struct tf_request {
	struct atex_remote base;
	struct tf_prov *p;
	char *id; /* set once the POST answered */
	enum rq_phase phase;
	bool alive;	       /* the service has it in new/queued/running */
	bool want_cancel;      /* DELETE it (release, clear, stop, abort) */
	bool delete_busy;      /* DELETE in flight */
	bool post_busy;	       /* POST in flight */
	uint64_t post_xid;     /* its exchange */
	double post_end;       /* abort/stop: when to stop waiting for it */
	int bad_replies;       /* malformed state replies in a row */
	int log_reads;	       /* pipeline.log reads of this poll */
	bool http_busy;	       /* a GET (state or log) in flight */
	char *cancel_error;    /* why the DELETE failed */
	uint64_t delete_xid;   /* its exchange */
	bool delete_own_retry; /* abort/stop: retried here, not by the client */
	double delete_due;     /* then: the next try's time */
	char *delete_failure;  /* then: why the last try failed */
	double delete_since;   /* then: when the first try failed */
	double due;	       /* monotonic ms of the next poll */
	char *state;	       /* last state seen */
	char *dying; /* why it ended: reported once the last log lines are read
		      */
	char *artifacts;   /* run.artifacts */
	long long log_off; /* pipeline.log bytes read */
	struct atex_tf_log log;
	atex_connection *conn; /* made when the login phase starts */
	char *label;	       /* "tf:ID (USER@HOST)" */
	atex_cancel *login_cancel;
	pthread_t login_thread;
	bool login_running;  /* thread started, not joined */
	bool login_finished; /* its result below is set */
	int login_rc;
	char *login_msg;
	bool handed; /* the user owns it until release */
	bool released;
};

struct tf_prov {
	struct atex_provisioner base;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast whenever something ends */
	char *name;	     /* "testingfarm:COMPOSE/ARCH" */
	struct atex_testingfarm_provisioner_options o; /* strings below */
	char *api_url;		     /* without a trailing '/' */
	char *token;		     /* only ever in an Authorization header */
	struct atex_vec strings;     /* the owned copies of o's strings */
	struct atex_vec ssh_options; /* NULL-terminated */
	int max;
	int retries_left;
	int poll_ms;
	int retry_total_ms;
	int timeout_min;
	/* start(): */
	char *tmpdir;
	int tmpdir_lock;
	char *key_path;
	char *ingress_cidr; /* the rule's CIDR on the public ranch */
	char *body;	    /* the POST body (holds the secrets) */
	struct atex_http *http;
	pthread_t thread;
	bool thread_running;
	/* state: */
	struct atex_remote_queue *queue;
	atex_cancel *cancel;	  /* fired by abort: get_remote returns */
	struct atex_vec requests; /* every struct tf_request not freed */
	/* Exchange ids (uintptr_t) for the HTTP thread to act on unlocked:
	 * POSTs to try no more, POSTs to give up waiting for. */
	struct atex_vec no_retry_xids, cancel_xids;
	int wanted;  /* to submit */
	int getters; /* get_remote calls that may hold a popped
		      * request: collect frees nothing then */
	bool started, aborted, stopping, quit, failed;
	bool outage_told; /* "unreachable" said, "back" not yet */
	struct atex_testingfarm_stats stats;
};

/* atex_tf_set_test_backoff's values (0: the client's default). */
static int test_backoff_first_ms, test_backoff_max_ms;

void atex_tf_set_test_backoff(int first_ms, int max_ms)
{
	test_backoff_first_ms = first_ms;
	test_backoff_max_ms = max_ms;
}

/* atex_tf_set_test_try_timeouts's values (0: the defaults). */
static int test_try_ms, test_post_try_ms;

void atex_tf_set_test_try_timeouts(int try_ms, int post_try_ms)
{
	test_try_ms = try_ms;
	test_post_try_ms = post_try_ms;
}

/* atex_tf_set_test_login_warn's values (0: the defaults). */
static int test_login_warn_first_ms, test_login_warn_every_ms;

void atex_tf_set_test_login_warn(int first_ms, int every_ms)
{
	test_login_warn_first_ms = first_ms;
	test_login_warn_every_ms = every_ms;
}

/* atex_tf_set_test_outage_warn's value (0: the default). */
static int test_outage_warn_ms;

void atex_tf_set_test_outage_warn(int ms)
{
	test_outage_warn_ms = ms;
}

/* atex_tf_set_test_cleaning's script (NULL: the embedded one). */
static const char *test_cleaning;

void atex_tf_set_test_cleaning(const char *script)
{
	test_cleaning = script;
}

static struct tf_prov *to_prov(const atex_provisioner *p)
{
	return (struct tf_prov *)p;
}

static struct tf_request *to_rq(const atex_remote *r)
{
	return (struct tf_request *)r;
}

static void free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* ------------------------------------------------------------------------
 * The API: URLs, replies, one synchronous call.
 */

/* The base URL: given, $TESTING_FARM_API_URL, or the public service;
 * trailing '/' removed. */
static char *resolve_url(const char *url)
{
	const char *env = getenv("TESTING_FARM_API_URL");
	char *u;
	size_t n;

	if (!url || !*url)
		url = env && *env ? env : DEFAULT_API_URL;
	u = atex_strdup(url);
	if (!u)
		return NULL;
	n = strlen(u);
	while (n > 0 && u[n - 1] == '/')
		u[--n] = '\0';
	return u;
}

static const char *resolve_token(const char *token)
{
	const char *env = getenv("TESTING_FARM_API_TOKEN");

	if (token && *token)
		return token;
	return env && *env ? env : NULL;
}

bool atex_tf_valid_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 128 || !strcmp(id, ".") || !strcmp(id, ".."))
		return false;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789._-") == n;
}

char *atex_tf_redact(const char *s, size_t len, const char *token)
{
	struct atex_buf b = ATEX_BUF_INIT;
	size_t n = token ? strlen(token) : 0;
	const char *end = s + len, *hit;

	while (n > 0 && (hit = memmem(s, (size_t)(end - s), token, n))) {
		if (atex_buf_put(&b, s, (size_t)(hit - s)) < 0 ||
		    atex_buf_puts(&b, "***") < 0)
			goto oom;
		s = hit + n;
	}
	if (atex_buf_put(&b, s, (size_t)(end - s)) < 0 ||
	    atex_buf_puts(&b, "") < 0)
		goto oom;
	return atex_buf_detach(&b);
oom:
	atex_buf_free(&b);
	return NULL;
}

/* What an error reply says: its JSON "message", else its first
 * QUOTE_MAX characters, the token redacted (a server may echo it),
 * control characters escaped. Caller frees. */
static char *reply_quote(const char *body, size_t len, const char *token)
{
	struct atex_buf b = ATEX_BUF_INIT;
	json_t *v = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *msg = json_is_object(v) ? json_object_get(v, "message") : NULL;
	char *clean, *cut;
	int rc;

	if (json_is_string(msg))
		clean = atex_tf_redact(json_string_value(msg),
				       json_string_length(msg), token);
	else if (body && len)
		clean = atex_tf_redact(body, len, token);
	else
		clean = atex_strdup("(empty reply)");
	json_decref(v);
	cut = clean ? atex_strndup(clean, QUOTE_MAX) : NULL;
	free(clean);
	rc = cut ? atex_buf_put_printable(&b, cut) : ATEX_ENOMEM;
	if (rc == 0)
		rc = atex_buf_puts(&b, "");
	free(cut);
	if (rc < 0) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

static bool status_ok(long status)
{
	return status >= 200 && status < 300;
}

/* Sets the error for a reply that is not 2xx: method, URL (no token, no
 * userinfo), status, what the reply says. */
static int reply_error(const char *method, const char *url, long status,
		       const char *body, size_t len, const char *token)
{
	char *shown = atex_http_url_for_message(url);
	char *quote = reply_quote(body, len, token);
	int rc = atex_error_set(
		ATEX_EIO, "Testing Farm API: %s %s: HTTP %ld: %s", method,
		shown ? shown : "(URL)", status, quote ? quote : "");

	free(shown);
	free(quote);
	return rc;
}

/* The exchange of atex_testingfarm_call, its status in *status also on
 * ATEX_EIO for an error reply (0 when none came). */
static int api_call(char **reply, long *status,
		    const struct atex_testingfarm_api_options *api,
		    const char *method, const char *path, const char *body,
		    atex_cancel *cancel)
{
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http_result res = {0};
	char *base = NULL, *url = NULL, *shown = NULL;
	json_t *v;
	int rc;

	*status = 0;
	if (!method || !*method || !path || path[0] != '/' ||
	    strpbrk(path, " \t\r\n"))
		return atex_error_set(ATEX_EINVAL,
				      "Testing Farm API: invalid method or "
				      "path \"%s\" (it starts with '/')",
				      path ? path : "");
	base = resolve_url(api ? api->url : NULL);
	url = base ? atex_sprintf("%s%s", base, path) : NULL;
	if (!url) {
		rc = atex_error_oom();
		goto out;
	}
	r.method = method;
	r.url = url;
	r.body = body;
	r.token = resolve_token(api ? api->token : NULL);
	r.retry = true;
	r.retry_total_ms =
		api && api->retry_total_s > 0 ? api->retry_total_s * 1000 : 0;
	rc = atex_http_call(&res, &r, cancel);
	if (rc < 0)
		goto out;
	*status = res.status;
	if (!status_ok(res.status)) {
		rc = reply_error(method, url, res.status, res.body,
				 res.body_len, r.token);
		goto out;
	}
	v = json_loadb(res.body ? res.body : "", res.body_len, JSON_DECODE_ANY,
		       NULL);
	if (!v) {
		struct atex_buf b = ATEX_BUF_INIT;
		char *clean = atex_tf_redact(res.body ? res.body : "",
					     res.body_len, r.token);
		char *cut = clean ? atex_strndup(clean, QUOTE_MAX) : NULL;

		free(clean);

		shown = atex_http_url_for_message(url);
		atex_buf_put_printable(&b, cut ? cut : "");
		rc = atex_error_set(ATEX_EFORMAT,
				    "Testing Farm API: %s %s: HTTP %ld: the "
				    "reply is not JSON: %s",
				    method, shown ? shown : "(URL)", res.status,
				    atex_buf_cstr(&b));
		atex_buf_free(&b);
		free(cut);
		goto out;
	}
	json_decref(v);
	*reply = res.body;
	res.body = NULL;
out:
	atex_http_result_clear(&res);
	free(shown);
	free(url);
	free(base);
	return rc;
}

int atex_testingfarm_call(char **reply, long *http_status,
			  const struct atex_testingfarm_api_options *api,
			  const char *method, const char *path,
			  const char *json_body, atex_cancel *cancel)
{
	long status = 0;
	int rc;

	if (!reply)
		return atex_error_set(ATEX_EINVAL, "Testing Farm API: no reply "
						   "pointer");
	*reply = NULL;
	if (api && (api->version < 1 ||
		    api->version > ATEX_TESTINGFARM_API_OPTIONS_VERSION))
		return atex_error_set(ATEX_EINVAL,
				      "Testing Farm API: options version %u "
				      "unknown",
				      api->version);
	rc = api_call(reply, &status, api, method, path, json_body, cancel);
	if (http_status)
		*http_status = status;
	return rc;
}

/* ------------------------------------------------------------------------
 * Requests.
 */

/* Requests that count against `count` (lock held): being submitted, or
 * alive on the service, including those whose DELETE is on its way (with
 * count 1 the next machine is asked for once the last one is gone), but
 * not one whose DELETE failed (the service frees it at its timeout). */
static int count_active(const struct tf_prov *p)
{
	int n = 0;

	for (size_t i = 0; i < p->requests.len; i++) {
		const struct tf_request *rq = p->requests.items[i];

		n += rq->phase == RQ_SUBMITTING ||
		     (rq->alive && !rq->cancel_error);
	}
	return n;
}

static void request_free(struct tf_request *rq)
{
	if (!rq)
		return;
	atex_connection_free(rq->conn);
	atex_cancel_free(rq->login_cancel);
	atex_tf_log_clear(&rq->log);
	free(rq->id);
	free(rq->state);
	free(rq->dying);
	free(rq->artifacts);
	free(rq->label);
	free(rq->login_msg);
	free(rq->cancel_error);
	free(rq->delete_failure);
	free(rq);
}

static void vec_remove(struct atex_vec *v, void *item)
{
	for (size_t i = 0; i < v->len; i++) {
		if (v->items[i] != item)
			continue;
		memmove(v->items + i, v->items + i + 1,
			(v->len - i - 1) * sizeof(*v->items));
		v->len--;
		return;
	}
}

/* Whether nothing refers to rq any more (lock held). One that could not
 * be canceled stays on the books, for stop() to name it. */
static bool request_idle(const struct tf_request *rq)
{
	return !rq->post_busy && !rq->http_busy && !rq->delete_busy &&
	       !rq->login_running && !rq->alive;
}

/* Stops a login thread's attempts (lock held). */
static void stop_login(struct tf_request *rq)
{
	if (rq->login_cancel)
		atex_cancel_fire(rq->login_cancel);
}

/* Wants rq gone on the service (lock held). */
static void want_cancel(struct tf_request *rq)
{
	rq->want_cancel = true;
	stop_login(rq);
}

/* The provisioner fails for good: get_remote returns this (lock held). */
static void prov_fail(struct tf_prov *p, int code, const char *message)
{
	if (p->failed)
		return;
	p->failed = true;
	p->wanted = 0;
	atex_log(ATEX_LOG_ERROR, COMPONENT, "%s", message);
	atex_remote_queue_fail(p->queue, code, message);
}

/*
 * A request that died, or a machine that failed, before it was ready
 * (lock held): logged with the request id, its state and the last
 * pipeline.log lines, counted, and replaced unless max_retries is used
 * up, in which case the provisioner fails for good with the same words.
 */
/* "a\nb\n" as "a | b": one log line reads well (the log layer would
 * show each newline as a literal \n). Caller frees; NULL: ENOMEM. */
static char *join_lines(const char *text)
{
	struct atex_buf b = ATEX_BUF_INIT;
	int rc = atex_buf_puts(&b, "");

	for (const char *s = text; rc == 0 && *s; s++) {
		if (*s != '\n')
			rc = atex_buf_put(&b, s, 1);
		else if (s[1])
			rc = atex_buf_puts(&b, " | ");
	}
	if (rc < 0) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

static void request_failed(struct tf_request *rq, const char *why)
{
	struct tf_prov *p = rq->p;
	char *tail = atex_tf_log_tail(&rq->log), *msg, *joined;

	stop_login(rq);
	/* Given up: not left running on the service. */
	if (rq->alive)
		want_cancel(rq);
	p->stats.failed++;
	joined = tail && *tail ? join_lines(tail) : NULL;
	msg = atex_sprintf("%s: request %s %s; last pipeline.log lines: %s",
			   p->name, rq->id ? rq->id : "(no id)", why,
			   joined ? joined : "(none read)");
	free(joined);
	free(tail);
	if (!msg) {
		prov_fail(p, ATEX_ENOMEM, "out of memory");
		return;
	}
	if (p->retries_left > 0) {
		p->retries_left--;
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s (replacing it, %d "
			 "retries left)",
			 msg, p->retries_left);
		if (!p->aborted && !p->stopping && !p->failed)
			p->wanted++;
	} else if (!p->aborted && !p->stopping) {
		char *final = atex_sprintf("%s (max_retries used up)", msg);

		prov_fail(p, ATEX_EINFRA, final ? final : msg);
		free(final);
	}
	free(msg);
}

/* The state is not new/queued/running any more. */
static bool state_alive(const char *state)
{
	return !strcmp(state, "new") || !strcmp(state, "queued") ||
	       !strcmp(state, "running");
}

/* ------------------------------------------------------------------------
 * Exchanges (HTTP thread; the callbacks run in atex_http_run, unlocked).
 */

static void post_done(void *arg, int rc, const struct atex_http_reply *r);
static void state_done(void *arg, int rc, const struct atex_http_reply *r);
static void log_done(void *arg, int rc, const struct atex_http_reply *r);
static void delete_done(void *arg, int rc, const struct atex_http_reply *r);

/* Starts an exchange with the API (token) or the artifacts server (no
 * token). Lock held; atex_http_start never calls back before it
 * returns. */
static int start_exchange(struct tf_request *rq, const char *method,
			  const char *url, const char *body, bool api,
			  long long range_from, atex_http_done_fn done,
			  uint64_t *xid)
{
	struct tf_prov *p = rq->p;
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	int rc;

	r.method = method;
	r.url = url;
	r.body = body;
	r.token = api ? p->token : NULL;
	r.range_from = range_from;
	/* Once abort or stop began, a DELETE's failures are retried here, so
	 * that each one is told at once. */
	r.retry = strcmp(method, "DELETE") || !(p->aborted || p->stopping);
	r.retry_total_ms = p->retry_total_ms;
	/* A slow POST is not tried again: the try that timed out may have
	 * made a reservation nobody would know of. abort and stop still
	 * end it (stop_post). */
	if (!strcmp(method, "POST"))
		r.timeout_ms =
			test_post_try_ms > 0 ? test_post_try_ms : POST_TRY_MS;
	else if (test_try_ms > 0)
		r.timeout_ms = test_try_ms;
	/* The last read of a dead request's log: its words are worth a few
	 * seconds, not an outage's hours. */
	if (rq->dying && done == log_done) {
		r.retry_total_ms = DYING_READ_MS;
		r.timeout_ms = DYING_READ_MS;
	}
	if (!p->http)
		return atex_error_set(ATEX_ECANCELED, "%s: stopped", p->name);
	rc = atex_http_start(p->http, &r, done, rq, xid);
	if (rc < 0)
		atex_log(ATEX_LOG_WARNING, COMPONENT, "%s: %s %s: %s", p->name,
			 method, rq->id ? rq->id : "request",
			 atex_error_last());
	return rc;
}

static char *request_url(const struct tf_prov *p, const char *id)
{
	return id ? atex_sprintf("%s/v0.1/requests/%s", p->api_url, id)
		  : atex_sprintf("%s/v0.1/requests", p->api_url);
}

static void submit(struct tf_prov *p)
{
	struct tf_request *rq = atex_calloc(1, sizeof(*rq));
	char *url = request_url(p, NULL);

	if (!rq || !url || atex_cancel_new(&rq->login_cancel) < 0 ||
	    atex_vec_push(&p->requests, rq) < 0) {
		request_free(rq);
		free(url);
		prov_fail(p, ATEX_ENOMEM, "out of memory");
		return;
	}
	rq->base.ops = &remote_ops;
	rq->p = p;
	rq->phase = RQ_SUBMITTING;
	rq->post_busy = true;
	if (start_exchange(rq, "POST", url, p->body, true, -1, post_done,
			   &rq->post_xid) < 0) {
		rq->post_busy = false;
		rq->phase = RQ_ENDED;
		prov_fail(p, atex_error_last_code(), atex_error_last());
	}
	free(url);
}

static void post_done(void *arg, int rc, const struct atex_http_reply *r)
{
	struct tf_request *rq = arg;
	struct tf_prov *p = rq->p;
	json_t *v = NULL, *id = NULL;
	char *url = request_url(p, NULL);
	bool bad_id = false;

	if (rc == 0 && status_ok(r->status)) {
		v = json_loadb(r->body, r->body_len, 0, NULL);
		id = json_object_get(v, "id");
		if (!json_is_string(id)) {
			rc = atex_error_set(ATEX_EFORMAT,
					    "Testing Farm API: POST %s: HTTP "
					    "%ld: the reply has no request id",
					    url ? url : "", r->status);
		} else if (!atex_tf_valid_id(json_string_value(id))) {
			char *quote =
				reply_quote(json_string_value(id),
					    json_string_length(id), p->token);

			bad_id = true;
			rc = atex_error_set(
				ATEX_EFORMAT,
				"the API answered request id \"%s\": "
				"not an id",
				quote ? quote : "?");
			free(quote);
		}
	} else if (rc == 0) {
		rc = reply_error("POST", url ? url : "", r->status, r->body,
				 r->body_len, p->token);
	}
	pthread_mutex_lock(&p->lock);
	rq->post_busy = false;
	if (rc == 0) {
		rq->id = atex_strdup(json_string_value(id));
		rq->alive = rq->id != NULL;
		p->stats.submitted++;
		atex_log(ATEX_LOG_INFO, COMPONENT, "%s: submitted request %s",
			 p->name, rq->id ? rq->id : "?");
		rq->phase = rq->id ? RQ_WAITING : RQ_ENDED;
		rq->due = atex_monotonic_ms() + p->poll_ms;
	} else {
		rq->phase = RQ_ENDED;
		if (rc == ATEX_ECANCELED && rq->post_end > 0 &&
		    atex_monotonic_ms() < rq->post_end)
			/* No try was in flight: nothing was created. */
			atex_debug(COMPONENT,
				   "%s: a request waiting to be submitted "
				   "again was dropped",
				   p->name);
		else if (rc == ATEX_ECANCELED)
			atex_log(ATEX_LOG_WARNING, COMPONENT,
				 "%s: a request being submitted may be left "
				 "alive; Testing Farm frees it at the pipeline "
				 "timeout of %d min",
				 p->name, p->timeout_min);
		else if (bad_id)
			request_failed(rq, atex_error_last());
		else if (!p->aborted && !p->stopping)
			prov_fail(p, rc, atex_error_last());
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	json_decref(v);
	free(url);
}

/* The next poll in poll_ms (lock held). */
static void poll_later(struct tf_request *rq)
{
	rq->due = atex_monotonic_ms() + rq->p->poll_ms;
}

static void start_log(struct tf_request *rq)
{
	rq->log_reads++;
	char *url = atex_sprintf("%s/pipeline.log", rq->artifacts);

	if (url && start_exchange(rq, "GET", url, NULL, false, rq->log_off,
				  log_done, NULL) == 0)
		rq->http_busy = true;
	else
		poll_later(rq);
	free(url);
}

static void *login_main(void *arg);

/* The guest is known and the reservation test runs: the login phase
 * (lock held). */
static void start_login(struct tf_request *rq)
{
	struct tf_prov *p = rq->p;
	struct atex_ssh_options o = ATEX_SSH_OPTIONS_INIT;
	int rc;

	o.host = rq->log.host;
	o.user = rq->log.user;
	o.identity = p->key_path;
	o.options = (const char *const *)p->ssh_options.items;
	o.connect_timeout_s = LOGIN_CONNECT_S;
	rc = atex_ssh_connection_new(&rq->conn, &o);
	if (rc == 0) {
		rq->label =
			atex_sprintf("tf:%s (%s@%s)", rq->id, o.user, o.host);
		rc = rq->label ? 0 : ATEX_ENOMEM;
	}
	if (rc == 0) {
		rc = pthread_create(&rq->login_thread, NULL, login_main, rq)
			     ? atex_error_set(ATEX_EIO, "pthread_create: %s",
					      strerror(errno))
			     : 0;
	}
	if (rc < 0) {
		char *why = atex_sprintf("cannot be logged in to: %s",
					 atex_error_last());

		want_cancel(rq);
		request_failed(rq, why ? why : "cannot be logged in to");
		free(why);
		return;
	}
	atex_log(ATEX_LOG_INFO, COMPONENT,
		 "%s: request %s: guest %s@%s, "
		 "logging in",
		 p->name, rq->id, o.user, o.host);
	rq->login_running = true;
	rq->phase = RQ_LOGIN;
}

/* Where pipeline.log is (lock held). */
static void set_artifacts(struct tf_request *rq, const char *url)
{
	rq->artifacts = atex_strdup(url);
	/* "URL/" + "/pipeline.log" would make a "//". */
	for (size_t n = rq->artifacts ? strlen(rq->artifacts) : 0;
	     n > 0 && rq->artifacts[n - 1] == '/'; n--)
		rq->artifacts[n - 1] = '\0';
	atex_debug(COMPONENT, "%s: request %s: artifacts %s", rq->p->name,
		   rq->id, rq->artifacts ? rq->artifacts : "");
}

static void state_done(void *arg, int rc, const struct atex_http_reply *r)
{
	struct tf_request *rq = arg;
	struct tf_prov *p = rq->p;
	json_t *v = NULL, *state, *artifacts;
	char *url = request_url(p, rq->id), *why = NULL;

	if (rc == 0 && r->status != 404 && !status_ok(r->status))
		rc = reply_error("GET", url ? url : "", r->status, r->body,
				 r->body_len, p->token);
	if (rc == 0 && r->status != 404)
		v = json_loadb(r->body, r->body_len, 0, NULL);
	state = json_object_get(v, "state");
	artifacts = json_object_get(json_object_get(v, "run"), "artifacts");
	pthread_mutex_lock(&p->lock);
	rq->http_busy = false;
	if (rc == ATEX_ECANCELED || rq->want_cancel || !rq->alive ||
	    (rq->phase != RQ_WAITING && rq->phase != RQ_LOGIN)) {
		/* Nothing to learn any more. */
	} else if (rc < 0) {
		prov_fail(p, rc, atex_error_last());
	} else if (r->status == 404) {
		rq->alive = false;
		rq->phase = RQ_ENDED;
		request_failed(rq, "is gone (HTTP 404)");
	} else if (!json_is_string(state) &&
		   ++rq->bad_replies < MAX_BAD_REPLIES) {
		/* A passing fault (a proxy's page, a cut reply): ask again. */
		atex_debug(COMPONENT,
			   "%s: request %s: its state reply is not JSON or "
			   "has no state (%d in a row)",
			   p->name, rq->id, rq->bad_replies);
		poll_later(rq);
	} else if (!json_is_string(state)) {
		rq->phase = RQ_ENDED;
		why = atex_sprintf("has no state in its last %d replies",
				   rq->bad_replies);
		request_failed(rq, why ? why : "has no state in its replies");
	} else if (!state_alive(json_string_value(state))) {
		rq->alive = false;
		/* It may have ended within one poll, artifacts and all. */
		if (!rq->artifacts && json_is_string(artifacts))
			set_artifacts(rq, json_string_value(artifacts));
		free(rq->state);
		rq->state = atex_strdup(json_string_value(state));
		why = atex_sprintf("ended in state \"%s\" before its machine "
				   "was ready",
				   json_string_value(state));
		/* Its last words are in pipeline.log: read them first. */
		if (why && rq->artifacts &&
		    (rq->phase == RQ_WAITING || rq->phase == RQ_LOGIN)) {
			rq->dying = why;
			why = NULL;
			rq->log_reads = 0;
			start_log(rq);
		} else {
			rq->phase = RQ_ENDED;
			request_failed(rq, why ? why : "ended");
		}
	} else {
		rq->bad_replies = 0;
		if (!rq->state || strcmp(rq->state, json_string_value(state)))
			atex_debug(COMPONENT, "%s: request %s: %s", p->name,
				   rq->id, json_string_value(state));
		free(rq->state);
		rq->state = atex_strdup(json_string_value(state));
		if (!rq->artifacts && json_is_string(artifacts))
			set_artifacts(rq, json_string_value(artifacts));
		rq->log_reads = 0;
		if (rq->phase == RQ_WAITING && rq->artifacts &&
		    !strcmp(rq->state, "running"))
			start_log(rq);
		else
			poll_later(rq);
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	json_decref(v);
	free(why);
	free(url);
}

/* New pipeline.log bytes of a reply (lock held). */
static void log_take(struct tf_request *rq, const struct atex_http_reply *r)
{
	const char *data = r->body;
	size_t len = r->body_len;

	if (r->status == 200) {
		/* The server ignored Range: the bytes past those read. */
		if ((long long)len <= rq->log_off)
			return;
		data += rq->log_off;
		len -= (size_t)rq->log_off;
	}
	size_t before = rq->log.n_lines;

	rq->log_off += (long long)len;
	if (atex_tf_log_feed(&rq->log, data, len) < 0)
		prov_fail(rq->p, ATEX_ENOMEM, "out of memory");
	if (atex_log_get_level() < ATEX_LOG_DEBUG)
		return;
	if (rq->log.n_lines - before > ATEX_TF_TAIL_LINES)
		before = rq->log.n_lines - ATEX_TF_TAIL_LINES;
	for (size_t i = before; i < rq->log.n_lines; i++)
		atex_debug(COMPONENT, "%s: %s", rq->id,
			   rq->log.tail[i % ATEX_TF_TAIL_LINES]);
}

/* Whether a 206 reply covers less than the file (Content-Range "bytes
 * A-B/TOTAL" with B+1 < TOTAL). */
static bool log_more(const struct atex_http_reply *r)
{
	long long first, last, total;

	return r->status == 206 &&
	       atex_http_content_range(r->content_range, &first, &last,
				       &total) &&
	       total >= 0 && last + 1 < total;
}

static void log_done(void *arg, int rc, const struct atex_http_reply *r)
{
	struct tf_request *rq = arg;
	struct tf_prov *p = rq->p;

	pthread_mutex_lock(&p->lock);
	rq->http_busy = false;
	if (rc == 0 && (r->status == 200 || r->status == 206))
		log_take(rq, r);
	/* The server sent less than it has: the rest now, not a poll later
	 * (a login would wait for it). */
	if (rc == 0 && log_more(r) && rq->log_reads < MAX_LOG_READS &&
	    !rq->want_cancel && !p->failed &&
	    (rq->dying || rq->phase == RQ_WAITING)) {
		start_log(rq);
		if (rq->http_busy) {
			pthread_mutex_unlock(&p->lock);
			return;
		}
	}
	if (rq->dying) {
		rq->phase = RQ_ENDED;
		request_failed(rq, rq->dying);
		free(rq->dying);
		rq->dying = NULL;
	} else if (rc == 0 && rq->phase == RQ_WAITING && !rq->want_cancel) {
		if (r->status != 200 && r->status != 206 && r->status != 416 &&
		    r->status != 404 && r->status != 403)
			atex_log(ATEX_LOG_WARNING, COMPONENT,
				 "%s: request %s: pipeline.log: HTTP %ld",
				 p->name, rq->id, r->status);
		if (rq->log.no_guest)
			request_failed(rq, "started its tests with no \"Guest "
					   "is ready\" line atex could parse");
		else if (rq->log.user && rq->log.tests_started && !p->failed)
			start_login(rq);
	} else if (rc < 0 && rc != ATEX_ECANCELED) {
		atex_log(ATEX_LOG_WARNING, COMPONENT, "%s: request %s: %s",
			 p->name, rq->id, atex_error_last());
	}
	poll_later(rq);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* Between the DELETE tries of abort and stop. */
static int delete_pause_ms(void)
{
	return test_backoff_first_ms > 0 ? test_backoff_first_ms : 1000;
}

/* How long abort and stop retry a DELETE: stop's bound, or the API
 * option's retry time when shorter. */
static int delete_budget_ms(const struct tf_prov *p)
{
	return p->retry_total_ms > 0 && p->retry_total_ms < STOP_WAIT_MS
		       ? p->retry_total_ms
		       : STOP_WAIT_MS;
}

static void start_delete(struct tf_request *rq)
{
	char *url = request_url(rq->p, rq->id);

	atex_debug(COMPONENT, "%s: canceling request %s", rq->p->name, rq->id);
	if (url && start_exchange(rq, "DELETE", url, NULL, true, -1,
				  delete_done, &rq->delete_xid) == 0) {
		rq->delete_busy = true;
		rq->delete_own_retry = rq->p->aborted || rq->p->stopping;
	} else {
		free(rq->cancel_error);
		rq->cancel_error = atex_strdup(atex_error_last());
	}
	free(url);
}

static void delete_done(void *arg, int rc, const struct atex_http_reply *r)
{
	struct tf_request *rq = arg;
	struct tf_prov *p = rq->p;
	char *url = request_url(p, rq->id);

	if (rc == 0 && !status_ok(r->status) && r->status != 404 &&
	    r->status != 409)
		rc = reply_error("DELETE", url ? url : "", r->status, r->body,
				 r->body_len, p->token);
	else if (rc == ATEX_ECANCELED)
		atex_error_set(rc, "atex stopped waiting for the DELETE");
	pthread_mutex_lock(&p->lock);
	rq->delete_busy = false;
	if (rc == ATEX_ECANCELED && (p->aborted || p->stopping) && p->http) {
		/* Its client's retries were stopped (schedule): tried
		 * again here at once. */
		rq->delete_due = 0;
	} else if (rc == 0) {
		rq->alive = false;
		if (status_ok(r->status)) {
			p->stats.canceled++;
			atex_log(ATEX_LOG_INFO, COMPONENT,
				 "%s: canceled request %s", p->name, rq->id);
		} else {
			atex_debug(COMPONENT, "%s: request %s already ended",
				   p->name, rq->id);
		}
	} else if ((p->aborted || p->stopping) && p->http &&
		   (!rq->delete_since ||
		    atex_monotonic_ms() - rq->delete_since <
			    delete_budget_ms(p))) {
		/* Tried again until abort's or stop's time is up; told at
		 * once (stop may wait a minute), not at each try. */
		if (!rq->delete_failure && p->stopping && !p->aborted)
			atex_log(ATEX_LOG_WARNING, COMPONENT,
				 "%s: canceling %s: %s; retrying for up to "
				 "%d s",
				 p->name, rq->id, atex_error_last(),
				 delete_budget_ms(p) / 1000);
		else
			atex_debug(COMPONENT, "%s: canceling %s: %s", p->name,
				   rq->id, atex_error_last());
		free(rq->delete_failure);
		rq->delete_failure = atex_strdup(atex_error_last());
		if (!rq->delete_since)
			rq->delete_since = atex_monotonic_ms();
		rq->delete_due = atex_monotonic_ms() + delete_pause_ms();
	} else {
		free(rq->cancel_error);
		rq->cancel_error = atex_strdup(atex_error_last());
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: request %s could not be canceled: %s", p->name,
			 rq->id, atex_error_last());
	}
	if (rq->phase != RQ_HANDED || rq->released)
		rq->phase = RQ_ENDED;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	free(url);
}

/* ------------------------------------------------------------------------
 * Logins (their own threads).
 */

/* Waits LOGIN_PAUSE_MS unless the attempt is canceled; false then. */
static bool login_pause(struct tf_request *rq)
{
	struct pollfd pfd = {atex_cancel_fd(rq->login_cancel), POLLIN, 0};

	if (atex_cancel_fired(rq->login_cancel))
		return false;
	while (poll(&pfd, 1, LOGIN_PAUSE_MS) < 0 && errno == EINTR)
		;
	return !atex_cancel_fired(rq->login_cancel);
}

/* A working connection: the master is up and runs `true`. */
static int login_once(struct tf_request *rq)
{
	static const char *const argv[] = {"true", NULL};
	struct atex_run_result res = {0};
	int rc;

	rc = atex_connection_connect(rq->conn, LOGIN_CONNECT_MS,
				     rq->login_cancel);
	if (rc == 0)
		rc = atex_connection_run(&res, rq->conn, argv, NULL, 0,
					 LOGIN_CMD_MS, rq->login_cancel);
	if (rc == 0 && (!WIFEXITED(res.status) || WEXITSTATUS(res.status)))
		rc = atex_error_set(ATEX_EEXTERNAL, "`true` failed");
	atex_run_result_clear(&res);
	return rc;
}

/* The last (up to 10) lines of a script's output, for a message; trailing
 * newlines cut off (in place). */
static const char *output_tail(char *out, size_t len)
{
	char *s;
	int lines = 0;

	if (!out)
		return "";
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	for (s = out + len; s > out; s--)
		if (s[-1] == '\n' && ++lines == 10)
			break;
	return s;
}

/* atex's OS-cleaning script, with bash over the connection; its output
 * goes to the log. */
static int clean_os(struct tf_request *rq)
{
	static const char *const root[] = {"bash", "-s", NULL};
	static const char *const sudo[] = {"sudo", "-n", "bash", "-s", NULL};
	const struct atex_remote_file *f = &atex_tf_files[0];
	const char *text = test_cleaning ? test_cleaning : f->contents;
	size_t len = test_cleaning ? strlen(test_cleaning) : f->len;
	struct atex_run_result res = {0};
	bool is_root = !strcmp(rq->log.user, "root");
	char *save = NULL;
	int rc;

	atex_log(ATEX_LOG_INFO, COMPONENT, "%s: cleaning the OS", rq->label);
	rc = atex_connection_run(&res, rq->conn, is_root ? root : sudo, text,
				 len, CLEANING_MS, rq->login_cancel);
	if (rc < 0)
		return atex_error_prefix("%s: OS cleaning", rq->label);
	for (char *line = strtok_r(res.out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		atex_log(ATEX_LOG_INFO, COMPONENT, "%s: %s", rq->label, line);
	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
		rc = atex_error_set(
			ATEX_EEXTERNAL,
			"%s: the OS-cleaning script failed (status %d): %s",
			rq->label,
			WIFEXITED(res.status) ? WEXITSTATUS(res.status) : -1,
			output_tail(res.err, res.err_len));
	atex_run_result_clear(&res);
	return rc;
}

static void *login_main(void *arg)
{
	struct tf_request *rq = arg;
	struct tf_prov *p = rq->p;
	double start = atex_monotonic_ms();
	double warn_at =
		start + (test_login_warn_first_ms > 0 ? test_login_warn_first_ms
						      : LOGIN_WARN_FIRST_MS);
	int rc, tries = 0;

	for (;;) {
		rc = login_once(rq);
		tries++;
		if (rc == 0)
			break;
		atex_debug(COMPONENT, "%s: login %d: %s", rq->label, tries,
			   atex_error_last());
		/* Not silent for the whole pipeline timeout. */
		if (atex_monotonic_ms() >= warn_at) {
			atex_log(ATEX_LOG_WARNING, COMPONENT,
				 "%s: still cannot log in after %.0f s (%d "
				 "attempts): %s",
				 rq->label,
				 (atex_monotonic_ms() - start) / 1000, tries,
				 atex_error_last());
			warn_at = atex_monotonic_ms() +
				  (test_login_warn_every_ms > 0
					   ? test_login_warn_every_ms
					   : LOGIN_WARN_EVERY_MS);
		}
		atex_connection_disconnect(rq->conn);
		if (!login_pause(rq)) {
			rc = ATEX_ECANCELED;
			break;
		}
	}
	if (rc == 0)
		atex_log(ATEX_LOG_INFO, COMPONENT,
			 "%s: logged in (%d "
			 "attempts)",
			 rq->label, tries);
	if (rc == 0 && p->o.os_cleaning)
		rc = clean_os(rq);
	pthread_mutex_lock(&p->lock);
	rq->login_rc = rc;
	if (rc < 0 && rc != ATEX_ECANCELED)
		rq->login_msg = atex_strdup(atex_error_last());
	rq->login_finished = true;
	pthread_mutex_unlock(&p->lock);
	atex_http_wake(p->http);
	return NULL;
}

/* A login thread is done (lock held; it set login_finished as its last
 * act under the lock, so the join does not wait long). */
static void login_joined(struct tf_request *rq)
{
	struct tf_prov *p = rq->p;
	int rc;

	pthread_join(rq->login_thread, NULL);
	rq->login_running = false;
	rq->login_finished = false;
	if (rq->phase != RQ_LOGIN || rq->want_cancel || !rq->alive)
		return;
	if (rq->login_rc == 0) {
		rc = atex_remote_queue_push(p->queue, &rq->base);
		if (rc < 0) {
			want_cancel(rq);
			prov_fail(p, rc, "out of memory");
			return;
		}
		rq->phase = RQ_READY;
		p->stats.ready++;
		atex_log(ATEX_LOG_INFO, COMPONENT, "%s: ready", rq->label);
		return;
	}
	if (rq->login_rc == ATEX_ECANCELED)
		return;
	/* The cleaning failed: this machine is not used. */
	want_cancel(rq);
	request_failed(rq, rq->login_msg ? rq->login_msg : "failed");
}

/* ------------------------------------------------------------------------
 * The HTTP thread.
 */

/* Frees the requests nothing refers to (lock held). */
static void collect(struct tf_prov *p)
{
	size_t i, kept = 0;

	if (p->getters > 0)
		return;
	for (i = 0; i < p->requests.len; i++) {
		struct tf_request *rq = p->requests.items[i];

		if (rq->phase == RQ_ENDED && request_idle(rq) &&
		    (!rq->handed || rq->released))
			request_free(rq);
		else
			p->requests.items[kept++] = rq;
	}
	p->requests.len = kept;
}

/* abort or stop with rq's POST pending (lock held): no more tries (one
 * waiting for its next try ends), then POST_GRACE_MS for an answer in
 * flight; the HTTP thread does it unlocked (the callback locks). Returns
 * when to look again (0: not needed). */
static double stop_post(struct tf_prov *p, struct tf_request *rq, double now)
{
	struct atex_vec *v = NULL;

	if (rq->post_end == 0) {
		rq->post_end = now + POST_GRACE_MS;
		v = &p->no_retry_xids;
	} else if (now >= rq->post_end) {
		v = &p->cancel_xids;
	}
	if (v && atex_vec_push(v, (void *)(uintptr_t)rq->post_xid) < 0)
		atex_log(ATEX_LOG_WARNING, COMPONENT, "%s: out of memory",
			 p->name);
	return v == &p->cancel_xids ? 0 : rq->post_end;
}

/* Acts on the POSTs stop_post listed (lock held, released meanwhile). */
static void stop_posts(struct tf_prov *p)
{
	struct atex_vec no_retry = p->no_retry_xids, cancel = p->cancel_xids;

	if (!no_retry.len && !cancel.len)
		return;
	memset(&p->no_retry_xids, 0, sizeof(p->no_retry_xids));
	memset(&p->cancel_xids, 0, sizeof(p->cancel_xids));
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < no_retry.len; i++)
		atex_http_no_retry(p->http, (uintptr_t)no_retry.items[i]);
	for (size_t i = 0; i < cancel.len; i++)
		atex_http_cancel(p->http, (uintptr_t)cancel.items[i]);
	pthread_mutex_lock(&p->lock);
	atex_vec_free(&no_retry);
	atex_vec_free(&cancel);
}

/* An API outage is told when it passes OUTAGE_WARN_MS and when it ends
 * (lock held; HTTP thread). Returns when to look again (0: no need). */
static double tell_outage(struct tf_prov *p, double now)
{
	int limit =
		test_outage_warn_ms > 0 ? test_outage_warn_ms : OUTAGE_WARN_MS;
	const char *why = NULL;
	double out = p->http ? atex_http_outage(p->http, &why) : 0;

	if (out > 0 && !p->outage_told && out >= limit) {
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: Testing Farm API unreachable for %.0f s: %s; "
			 "retrying",
			 p->name, out / 1000, why ? why : "?");
		p->outage_told = true;
	} else if (out == 0 && p->outage_told) {
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: Testing Farm API reachable again", p->name);
		p->outage_told = false;
	}
	if (out > 0 && !p->outage_told)
		return now + (limit - out) + 1;
	/* An outage starts inside atex_http_run without returning from
	 * it: looked at every quarter of the limit while exchanges are
	 * pending. */
	if (!p->outage_told && p->http && atex_http_pending(p->http) > 0)
		return now + limit / 4;
	return 0;
}

/* Starts what is due and returns how long until the next due time (ms,
 * -1: none). Lock held. */
static int schedule(struct tf_prov *p)
{
	double now = atex_monotonic_ms(), next = -1, outage_due;
	size_t i;

	for (i = 0; i < p->requests.len; i++) {
		struct tf_request *rq = p->requests.items[i];

		if (rq->post_busy && (p->aborted || p->stopping)) {
			double end = stop_post(p, rq, now);

			if (end > 0 && (next < 0 || end < next))
				next = end;
			continue;
		}
		if (rq->login_running && rq->login_finished)
			login_joined(rq);
		if (rq->delete_busy && !rq->delete_own_retry &&
		    (p->aborted || p->stopping)) {
			/* Its client retries would be silent: here now. */
			rq->delete_own_retry = true;
			if (atex_vec_push(&p->no_retry_xids,
					  (void *)(uintptr_t)rq->delete_xid) <
			    0)
				rq->delete_own_retry = false;
		}
		if (rq->want_cancel && rq->alive && rq->id &&
		    !rq->delete_busy && !rq->cancel_error) {
			if (rq->delete_due <= now)
				start_delete(rq);
			else if (next < 0 || rq->delete_due < next)
				next = rq->delete_due;
			continue;
		}
		if (rq->want_cancel && !rq->alive && !rq->delete_busy &&
		    rq->phase != RQ_SUBMITTING &&
		    (rq->phase != RQ_HANDED || rq->released))
			rq->phase = RQ_ENDED;
		if ((rq->phase != RQ_WAITING && rq->phase != RQ_LOGIN) ||
		    rq->http_busy || rq->want_cancel)
			continue;
		if (rq->due <= now) {
			char *url = request_url(p, rq->id);

			if (url && start_exchange(rq, "GET", url, NULL, true,
						  -1, state_done, NULL) == 0)
				rq->http_busy = true;
			else
				poll_later(rq);
			free(url);
		} else if (next < 0 || rq->due < next) {
			next = rq->due;
		}
	}
	outage_due = tell_outage(p, now);
	if (outage_due > 0 && (next < 0 || outage_due < next))
		next = outage_due;
	while (p->wanted > 0 && !p->failed && !p->aborted && !p->stopping &&
	       count_active(p) < p->max) {
		p->wanted--;
		submit(p);
	}
	collect(p);
	pthread_cond_broadcast(&p->cond);
	if (next < 0)
		return -1;
	return next - now < 1 ? 1 : (int)(next - now + 1);
}

static void *http_main(void *arg)
{
	struct tf_prov *p = arg;
	struct atex_http *h;

	pthread_mutex_lock(&p->lock);
	while (!p->quit) {
		int timeout = schedule(p);
		int fd = atex_cancel_fd(p->cancel);
		/* Once aborted the token stays fired: waking on it again
		 * would spin. */
		size_t n = p->aborted ? 0 : 1;

		if (p->no_retry_xids.len || p->cancel_xids.len) {
			stop_posts(p);
			continue;
		}

		pthread_mutex_unlock(&p->lock);
		if (atex_http_run(p->http, timeout, &fd, n) == ATEX_EIO)
			atex_log(ATEX_LOG_WARNING, COMPONENT, "%s: %s", p->name,
				 atex_error_last());
		pthread_mutex_lock(&p->lock);
	}
	/* Login threads end at their cancel; they wake p->http, so it lives
	 * until they are joined. */
	for (size_t i = 0; i < p->requests.len; i++)
		stop_login(p->requests.items[i]);
	for (size_t i = 0; i < p->requests.len; i++) {
		struct tf_request *rq = p->requests.items[i];

		if (!rq->login_running)
			continue;
		pthread_mutex_unlock(&p->lock);
		pthread_join(rq->login_thread, NULL);
		pthread_mutex_lock(&p->lock);
		rq->login_running = false;
	}
	/* Unpublished first: release and clear may call wake() meanwhile. */
	h = p->http;
	p->http = NULL;
	pthread_mutex_unlock(&p->lock);
	/* Exchanges still pending end with ATEX_ECANCELED (their callbacks
	 * start nothing new: p->http is NULL). */
	atex_http_free(h);
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void wake(struct tf_prov *p)
{
	if (p->http)
		atex_http_wake(p->http);
}

/* Whether cancel work is still going on (lock held): a POST whose id may
 * come, a DELETE in flight or still to start. */
static bool canceling(const struct tf_prov *p)
{
	for (size_t i = 0; i < p->requests.len; i++) {
		const struct tf_request *rq = p->requests.items[i];

		if (rq->post_busy || rq->delete_busy ||
		    (rq->want_cancel && rq->alive && !rq->cancel_error))
			return true;
	}
	return false;
}

/* Waits (lock held) at most ms for the cancels to end. */
static void wait_cancels(struct tf_prov *p, int ms)
{
	double end = atex_monotonic_ms() + ms;

	while (p->http && canceling(p)) {
		double left = end - atex_monotonic_ms();
		struct timespec ts;

		if (left <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)((long long)left % 1000 * 1000000);
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
}

/* Every request to be canceled, the queue emptied (lock held). */
static void cancel_all(struct tf_prov *p)
{
	p->wanted = 0;
	while (atex_remote_queue_take(p->queue))
		;
	for (size_t i = 0; i < p->requests.len; i++) {
		struct tf_request *rq = p->requests.items[i];

		if (rq->phase != RQ_ENDED)
			want_cancel(rq);
		/* A DELETE that failed earlier (release during an outage)
		 * gets one more go. */
		if (rq->alive && rq->cancel_error && !rq->delete_busy) {
			free(rq->cancel_error);
			rq->cancel_error = NULL;
			want_cancel(rq);
		}
	}
}

/* ------------------------------------------------------------------------
 * start(): the key, whoami, the body, the thread.
 */

static const char *local_tmp(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp && *tmp ? tmp : "/tmp";
}

static void remove_tmpdir(struct tf_prov *p)
{
	char *pub;

	if (!p->tmpdir)
		return;
	if (!p->o.identity && p->key_path) {
		unlink(p->key_path);
		pub = atex_sprintf("%s.pub", p->key_path);
		if (pub)
			unlink(pub);
		free(pub);
	}
	atex_tmpdir_remove(p->tmpdir);
	if (p->tmpdir_lock >= 0)
		close(p->tmpdir_lock);
	p->tmpdir_lock = -1;
	free(p->tmpdir);
	p->tmpdir = NULL;
}

/* The key (opts.identity, or ed25519 generated in the private dir) and
 * its public half's text. */
static int setup_key(struct tf_prov *p, char **pubkey)
{
	char *pub = NULL;
	size_t len;
	int rc;

	free(p->key_path);
	p->key_path = NULL;
	if (p->o.identity) {
		p->key_path = atex_strdup(p->o.identity);
	} else {
		if (atex_tmpdir_make(&p->tmpdir, &p->tmpdir_lock, local_tmp(),
				     "atex-tfkey", NULL, NULL))
			return atex_error_prefix("%s", p->name);
		p->key_path = atex_path_join(p->tmpdir, "id");
		if (!p->key_path)
			return ATEX_ENOMEM;
		rc = atex_provisioner_keygen(p->key_path, "atex@tf", p->name);
		if (rc)
			return rc;
	}
	if (!p->key_path)
		return ATEX_ENOMEM;
	pub = atex_sprintf("%s.pub", p->key_path);
	if (!pub)
		return ATEX_ENOMEM;
	rc = atex_file_read(pubkey, &len, pub);
	if (rc)
		atex_error_prefix("%s: identity: no public key", p->name);
	free(pub);
	return rc;
}

/* whoami did not say the ranch: the rule the user gave is sent (it may be
 * the public ranch, where a machine needs it); without one, none. */
static int unknown_ranch(struct tf_prov *p, const char *why)
{
	if (!p->o.source_cidr) {
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: %s: no ingress rule sent (on the public ranch a "
			 "machine needs one: source_cidr, --tf-source)",
			 p->name, why);
		return 0;
	}
	atex_log(ATEX_LOG_INFO, COMPONENT,
		 "%s: %s: the ingress rule for %s is sent as given", p->name,
		 why, p->o.source_cidr);
	p->ingress_cidr = atex_strdup(p->o.source_cidr);
	return p->ingress_cidr ? 0 : ATEX_ENOMEM;
}

/* The token's ranch: on "public" a reservation needs the ingress rule. */
static int check_ranch(struct tf_prov *p)
{
	struct atex_testingfarm_api_options api = p->o.api;
	char *reply = NULL;
	long status = 0;
	json_t *v = NULL, *ranch;
	int rc;

	api.url = p->api_url;
	api.token = p->token;
	rc = api_call(&reply, &status, &api, "GET", "/v0.1/whoami", NULL,
		      p->cancel);
	if (rc == ATEX_EIO && status == 401)
		return atex_error_set(ATEX_EINVAL,
				      "%s: the API token was rejected (HTTP "
				      "401 on whoami): check the token "
				      "(TESTING_FARM_API_TOKEN)",
				      p->name);
	if (rc == ATEX_EIO && status == 404)
		return unknown_ranch(p, "the API has no whoami (HTTP 404)");
	if (rc < 0)
		return atex_error_prefix("%s", p->name);
	v = json_loads(reply, 0, NULL);
	ranch = json_object_get(json_object_get(v, "token"), "ranch");
	if (!ranch)
		ranch = json_object_get(v, "ranch");
	free(reply);
	if (!json_is_string(ranch)) {
		rc = unknown_ranch(p, "whoami names no ranch");
	} else if (!strcmp(json_string_value(ranch), "public")) {
		atex_debug(COMPONENT, "%s: ranch public", p->name);
		if (!p->o.source_cidr)
			rc = atex_error_set(
				ATEX_EINVAL,
				"%s: the token is on the public ranch, where a "
				"machine accepts connections only from the "
				"address given: set source_cidr (CLI "
				"--tf-source CIDR) to the address atex "
				"connects from, e.g. 203.0.113.7/32",
				p->name);
		else
			p->ingress_cidr = atex_strdup(p->o.source_cidr);
		if (rc == 0 && !p->ingress_cidr)
			rc = ATEX_ENOMEM;
	} else if (p->o.source_cidr) {
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: the token is on the %s ranch: source_cidr "
			 "(--tf-source) is not sent, only the public ranch "
			 "takes an ingress rule",
			 p->name, json_string_value(ranch));
	} else {
		atex_debug(COMPONENT, "%s: ranch %s", p->name,
			   json_string_value(ranch));
	}
	json_decref(v);
	return rc;
}

static int prov_start(atex_provisioner *base)
{
	struct tf_prov *p = to_prov(base);
	char *pubkey = NULL;
	int rc;

	if (p->started)
		return 0;
	if (p->aborted)
		return atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name);
	if (!p->token)
		return atex_error_set(ATEX_EINVAL,
				      "%s: no API token: set "
				      "TESTING_FARM_API_TOKEN (or the "
				      "api.token option)",
				      p->name);
	free(p->ingress_cidr);
	p->ingress_cidr = NULL;
	rc = check_ranch(p);
	if (rc == 0)
		rc = setup_key(p, &pubkey);
	if (rc == 0) {
		free_secret(p->body);
		p->body = atex_tf_request_body(&p->o, pubkey, p->ingress_cidr);
		if (!p->body)
			rc = atex_error_prefix("%s", p->name);
	}
	if (rc == 0)
		rc = atex_http_new(&p->http, p->o.api.max_connections);
	if (rc == 0 && test_backoff_first_ms > 0)
		atex_http_set_backoff(p->http, test_backoff_first_ms,
				      test_backoff_max_ms);
	free(pubkey);
	if (rc < 0)
		goto fail;
	atex_remote_queue_fail(p->queue, 0, NULL);
	p->quit = p->stopping = p->failed = false;
	p->retries_left = p->o.max_retries == 0	 ? DEFAULT_RETRIES
			  : p->o.max_retries < 0 ? 0
						 : p->o.max_retries;
	if (pthread_create(&p->thread, NULL, http_main, p)) {
		rc = atex_error_set(ATEX_EIO, "%s: pthread_create: %s", p->name,
				    strerror(errno));
		goto fail;
	}
	p->thread_running = true;
	p->started = true;
	atex_debug(COMPONENT, "%s: started (API %s)", p->name, p->api_url);
	return 0;
fail:
	atex_http_free(p->http);
	p->http = NULL;
	remove_tmpdir(p);
	return rc;
}

/* ------------------------------------------------------------------------
 * The other operations.
 */

static int prov_provision(atex_provisioner *base, int count)
{
	struct tf_prov *p = to_prov(base);
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (!p->started)
		rc = atex_error_set(ATEX_EINVAL, "%s: not started", p->name);
	else if (count == ATEX_PROVISION_UNLIMITED) {
		int room = p->max - count_active(p);

		if (p->wanted < room)
			p->wanted = room;
	} else if (count > 0) {
		p->wanted += count;
	}
	if (rc == 0)
		wake(p);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int prov_get_remote(atex_remote **out, atex_provisioner *base,
			   int timeout_ms)
{
	struct tf_prov *p = to_prov(base);
	atex_remote *r = NULL;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->aborted)
		rc = atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name);
	else if (!p->started)
		rc = atex_error_set(ATEX_EINVAL, "%s: not started", p->name);
	else
		p->getters++;
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		return rc;
	rc = atex_remote_queue_pop(&r, p->queue, timeout_ms, p->cancel);
	pthread_mutex_lock(&p->lock);
	p->getters--;
	if (rc == 0 && to_rq(r)->phase == RQ_READY && !to_rq(r)->want_cancel) {
		to_rq(r)->phase = RQ_HANDED;
		to_rq(r)->handed = true;
		*out = r;
	} else if (rc == 0) {
		rc = atex_error_set(ATEX_ECANCELED, "%s: %s", p->name,
				    p->aborted ? "aborted" : "stopped");
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int prov_clear(atex_provisioner *base)
{
	struct tf_prov *p = to_prov(base);

	pthread_mutex_lock(&p->lock);
	p->wanted = 0;
	for (size_t i = 0; i < p->requests.len; i++) {
		struct tf_request *rq = p->requests.items[i];

		if (rq->phase == RQ_SUBMITTING || rq->phase == RQ_WAITING ||
		    rq->phase == RQ_LOGIN)
			want_cancel(rq);
	}
	wake(p);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* The ids of the requests still alive, ", "-separated ("" when none;
 * NULL: ENOMEM). Lock held. */
static char *alive_ids(const struct tf_prov *p)
{
	struct atex_buf b = ATEX_BUF_INIT;
	int rc = atex_buf_puts(&b, "");

	for (size_t i = 0; rc == 0 && i < p->requests.len; i++) {
		const struct tf_request *rq = p->requests.items[i];

		if (rq->alive && rq->id)
			rc = atex_buf_printf(&b, "%s%s", b.len ? ", " : "",
					     rq->id);
	}
	if (rc < 0) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

/* "ID, ID" as "ID ID" for a command line (in place). */
static const char *left_args(char *ids)
{
	char *w = ids;

	for (const char *r = ids; *r; r++)
		if (!(r[0] == ',' && r[1] == ' '))
			*w++ = *r;
		else
			*w++ = ' ', r++;
	*w = '\0';
	return ids;
}

static void prov_abort(atex_provisioner *base)
{
	struct tf_prov *p = to_prov(base);
	char *left, *args;

	pthread_mutex_lock(&p->lock);
	p->aborted = true;
	cancel_all(p);
	atex_cancel_fire(p->cancel);
	wake(p);
	wait_cancels(p, ABORT_WAIT_MS);
	left = alive_ids(p);
	pthread_mutex_unlock(&p->lock);
	args = left ? atex_strdup(left) : NULL;
	if (left && *left)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: requests that could not be canceled: %s; "
			 "Testing Farm frees them at the pipeline timeout "
			 "(%d min), or `atex tf cancel %s`",
			 p->name, left, p->timeout_min,
			 args ? left_args(args) : "ID...");
	free(args);
	free(left);
	atex_debug(COMPONENT, "%s: aborted", p->name);
}

/* The error of stop: requests that could not be canceled, each with
 * why, in one message (lock held). */
static int stop_errors(struct tf_prov *p)
{
	struct atex_buf b = ATEX_BUF_INIT, ids = ATEX_BUF_INIT;
	int rc = 0;

	for (size_t i = 0; i < p->requests.len; i++) {
		struct tf_request *rq = p->requests.items[i];
		const char *why = rq->delete_failure ? rq->delete_failure
				  : rq->cancel_error ? rq->cancel_error
						     : "no answer in time";

		if (!rq->alive)
			continue;
		atex_buf_printf(&b, "%s%s (%s)", b.len ? ", " : "", rq->id,
				why);
		atex_buf_printf(&ids, " %s", rq->id);
		rq->alive = false;
	}
	if (b.len) {
		rc = atex_error_set(
			ATEX_EIO,
			"%s: could not be canceled: %s; Testing Farm frees "
			"them at the pipeline timeout (%d min), or `atex tf "
			"cancel%s`",
			p->name, atex_buf_cstr(&b), p->timeout_min,
			atex_buf_cstr(&ids));
		atex_log(ATEX_LOG_ERROR, COMPONENT, "%s", atex_error_last());
	}
	atex_buf_free(&b);
	atex_buf_free(&ids);
	return rc;
}

static int prov_stop(atex_provisioner *base)
{
	struct tf_prov *p = to_prov(base);
	int rc;

	pthread_mutex_lock(&p->lock);
	if (!p->thread_running) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	p->stopping = true;
	cancel_all(p);
	wake(p);
	/* After abort, which waited and told already, stop does not wait
	 * again. */
	wait_cancels(p, p->aborted ? 0 : STOP_WAIT_MS);
	p->quit = true;
	wake(p);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	/* Wakes get_remote callers (the thread is gone: its wait on this
	 * token cannot spin). */
	atex_cancel_fire(p->cancel);
	pthread_mutex_lock(&p->lock);
	p->thread_running = false;
	p->started = false;
	rc = stop_errors(p);
	for (size_t i = 0; i < p->requests.len; i++) {
		struct tf_request *rq = p->requests.items[i];

		rq->post_busy = rq->http_busy = rq->delete_busy = false;
		rq->phase = RQ_ENDED;
	}
	collect(p);
	pthread_mutex_unlock(&p->lock);
	remove_tmpdir(p);
	atex_remote_queue_fail(p->queue, 0, NULL);
	if (!p->aborted)
		atex_cancel_reset(p->cancel);
	return rc;
}

static int prov_ready_fd(const atex_provisioner *base)
{
	return atex_remote_queue_fd(to_prov(base)->queue);
}

static const char *prov_name(const atex_provisioner *base)
{
	return to_prov(base)->name;
}

static void prov_free(atex_provisioner *base)
{
	struct tf_prov *p = to_prov(base);

	if (!p)
		return;
	if (p->queue && p->cancel)
		prov_stop(base);
	/* Remotes the user never released. */
	for (size_t i = 0; i < p->requests.len; i++)
		request_free(p->requests.items[i]);
	atex_vec_free(&p->requests);
	atex_vec_free(&p->no_retry_xids);
	atex_vec_free(&p->cancel_xids);
	atex_remote_queue_free(p->queue);
	atex_cancel_free(p->cancel);
	atex_vec_free_all(&p->strings, free);
	atex_vec_free_all(&p->ssh_options, free);
	free_secret(p->token);
	free_secret(p->body);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->ingress_cidr);
	free(p->key_path);
	free(p->api_url);
	free(p->name);
	free(p);
}

static const struct atex_provisioner_ops tf_ops = {
	.version = ATEX_PROVISIONER_OPS_VERSION,
	.start = prov_start,
	.stop = prov_stop,
	.provision = prov_provision,
	.get_remote = prov_get_remote,
	.clear = prov_clear,
	.abort = prov_abort,
	.ready_fd = prov_ready_fd,
	.name = prov_name,
	.free = prov_free,
};

/* ------------------------------------------------------------------------
 * Remotes.
 */

static atex_connection *rq_connection(atex_remote *r)
{
	return to_rq(r)->conn;
}

static const char *rq_name(const atex_remote *r)
{
	return to_rq(r)->label;
}

/* Hands the DELETE to the HTTP thread and returns; after stop (no
 * thread) the request is already canceled and only memory is left. */
static void rq_release(atex_remote *r)
{
	struct tf_request *rq = to_rq(r);
	struct tf_prov *p = rq->p;

	if (rq->conn)
		atex_connection_disconnect(rq->conn);
	pthread_mutex_lock(&p->lock);
	rq->released = true;
	if (p->thread_running) {
		if (rq->phase != RQ_ENDED)
			want_cancel(rq);
		wake(p);
	} else {
		vec_remove(&p->requests, rq);
		request_free(rq);
	}
	pthread_mutex_unlock(&p->lock);
}

static const struct atex_remote_ops remote_ops = {
	.version = ATEX_REMOTE_OPS_VERSION,
	.connection = rq_connection,
	.name = rq_name,
	.release = rq_release,
};

/* ------------------------------------------------------------------------
 * Construction and inspection.
 */

/* A copy owned by p (NULL stays NULL). */
static int own(struct tf_prov *p, const char **field)
{
	char *copy;

	if (!*field)
		return 0;
	copy = atex_strdup(*field);
	if (!copy || atex_vec_push(&p->strings, copy) < 0) {
		free(copy);
		return ATEX_ENOMEM;
	}
	*field = copy;
	return 0;
}

static int prov_init(struct tf_prov *p,
		     const struct atex_testingfarm_provisioner_options *opts)
{
	const char *token;
	int rc = 0;

	p->o = *opts;
	p->o.api.token = NULL;
	p->o.ssh_options = NULL;
	if (own(p, &p->o.compose) || own(p, &p->o.arch) || own(p, &p->o.pool) ||
	    own(p, &p->o.hardware) || own(p, &p->o.kickstart) ||
	    own(p, &p->o.variables) || own(p, &p->o.secrets) ||
	    own(p, &p->o.tags) || own(p, &p->o.identity) ||
	    own(p, &p->o.source_cidr) ||
	    atex_vec_push_copies(&p->ssh_options, opts->ssh_options) < 0 ||
	    atex_vec_push(&p->ssh_options, NULL) < 0)
		return ATEX_ENOMEM;
	p->ssh_options.len--; /* the terminator stays, for ssh options */
	p->o.api.url = NULL;
	p->api_url = resolve_url(opts->api.url);
	token = resolve_token(opts->api.token);
	p->token = token ? atex_strdup(token) : NULL;
	p->name = atex_sprintf("testingfarm:%s/%s", p->o.compose,
			       p->o.arch ? p->o.arch : "x86_64");
	if (!p->api_url || (token && !p->token) || !p->name)
		return ATEX_ENOMEM;
	p->max = opts->count > 0 ? opts->count : DEFAULT_COUNT;
	p->poll_ms = opts->poll_ms > 0 ? opts->poll_ms : DEFAULT_POLL_MS;
	p->timeout_min =
		opts->timeout_min > 0 ? opts->timeout_min : DEFAULT_TIMEOUT_MIN;
	p->retry_total_ms = opts->api.retry_total_s > 0
				    ? opts->api.retry_total_s * 1000
				    : 0;
	rc = atex_remote_queue_new(&p->queue, p->name);
	if (rc == 0)
		rc = atex_cancel_new(&p->cancel);
	return rc;
}

int atex_testingfarm_provisioner_new(
	atex_provisioner **out,
	const struct atex_testingfarm_provisioner_options *opts)
{
	struct tf_prov *p;
	int rc;

	if (!out)
		return atex_error_set(ATEX_EINVAL, "Testing Farm: no out");
	rc = atex_tf_options_check(opts);
	if (rc < 0)
		return rc;
	p = atex_calloc(1, sizeof(*p));
	if (!p)
		return ATEX_ENOMEM;
	p->base.ops = &tf_ops;
	p->tmpdir_lock = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	rc = prov_init(p, opts);
	if (rc < 0) {
		prov_free(&p->base);
		return rc == ATEX_ENOMEM ? atex_error_oom() : rc;
	}
	*out = &p->base;
	return 0;
}

int atex_testingfarm_provisioner_stats(struct atex_testingfarm_stats *out,
				       atex_provisioner *base)
{
	struct tf_prov *p = to_prov(base);

	if (!out || !base || base->ops != &tf_ops)
		return atex_error_set(ATEX_EINVAL,
				      "not a Testing Farm provisioner");
	pthread_mutex_lock(&p->lock);
	*out = p->stats;
	out->alive = 0;
	for (size_t i = 0; i < p->requests.len; i++)
		out->alive +=
			((struct tf_request *)p->requests.items[i])->alive;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int atex_testingfarm_remote_login(struct atex_testingfarm_login *out,
				  atex_remote *r)
{
	struct tf_request *rq = to_rq(r);

	if (!out || !r || r->ops != &remote_ops)
		return atex_error_set(ATEX_EINVAL, "not a Testing Farm remote");
	out->request_id = rq->id;
	out->user = rq->log.user;
	out->host = rq->log.host;
	out->identity = rq->p->key_path;
	return 0;
}
