/*
 * http.c - HTTP exchanges over one libcurl multi handle (http.h says what
 * the client promises).
 *
 * Each exchange is one easy handle. A try is the handle in the multi
 * handle; between tries (the retry backoff) it is out of it, and its due
 * time is one of the client's timers: atex_http_run gives curl_multi_poll
 * the earliest of those as its timeout, next to the caller's descriptors,
 * so waiting costs one poll whatever the number of exchanges.
 *
 * Callbacks may start and cancel exchanges. So finished tries are first
 * only marked (their handles taken out of the multi handle), then handled
 * one at a time, the list walked again from its head after each callback:
 * nothing a callback does can leave us holding a freed exchange.
 *
 * HTTP/2 multiplexing is off: then a connection carries one request at a
 * time and CURLMOPT_MAX_HOST_CONNECTIONS bounds the requests in flight to
 * a host, which is what protects a service from us.
 */
#include <curl/curl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/http.h"
#include "util/util.h"

#define HTTP_MAX_REPLY		((size_t)64 << 20)
#define HTTP_TIMEOUT_MS		60000
#define HTTP_CONNECT_TIMEOUT_MS 30000
#define HTTP_RETRY_TOTAL_MS	(4 * 3600 * 1000)
#define HTTP_BACKOFF_FIRST_MS	2000
#define HTTP_BACKOFF_MAX_MS	120000
#define HTTP_MAX_REDIRS		5L
#define HTTP_HOST_CONNECTIONS	10
#define HTTP_URL_SHOWN		200
/* curl_multi_poll wants a finite timeout; "no limit" waits this long at a
 * time, which costs nothing. */
#define HTTP_IDLE_WAIT_MS 3600000

struct exchange {
	struct atex_http *h;
	struct exchange *prev, *next;
	uint64_t id;
	CURL *easy;
	curl_mime *mime; /* a multipart body, sent again at each try */
	struct curl_slist *headers;
	char *method;
	char *shown_url; /* atex_http_url_for_message */
	char *token;	 /* only to scrub it from curl's messages */
	atex_http_done_fn done;
	void *arg;

	bool retry;
	double total_ms; /* retry budget from the first try's start */
	double first_ms; /* when the first try started */
	double due_ms;	 /* out of the multi handle: next try's start */
	int backoff_ms;	 /* the next backoff delay */
	bool in_multi;
	bool finished; /* a try ended; result holds how */
	CURLcode result;
	int tries;

	struct atex_buf body; /* this try's reply */
	bool too_big;
	bool no_memory;
	/* The last complete reply: what the callback gets. */
	bool have_reply;
	long status;
	struct atex_buf reply;
	char *content_type;
	char *content_range;
	char errbuf[CURL_ERROR_SIZE];
};

struct atex_http {
	CURLM *multi;
	struct exchange *head;
	size_t pending;
	uint64_t next_id;
	int backoff_first_ms;
	int backoff_max_ms;
	int callbacks; /* callbacks run during this atex_http_run */
	bool closing;
	atomic_bool woken;
	/* Since when tries fail with an outage (0: they do not), and the
	 * last one's reason. */
	double outage_since;
	char outage_why[256];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------------------
 * Messages
 */

char *atex_http_url_for_message(const char *url)
{
	struct atex_buf b = ATEX_BUF_INIT;
	const char *scheme, *host, *end, *at = NULL;

	if (!url)
		url = "";
	scheme = strstr(url, "://");
	host = scheme ? scheme + 3 : url;
	end = host + strcspn(host, "/?#");
	for (const char *p = host; p < end; p++)
		if (*p == '@')
			at = p;
	if (atex_buf_put(&b, url, (size_t)(host - url)) < 0 ||
	    atex_buf_puts(&b, at ? at + 1 : host) < 0) {
		atex_buf_free(&b);
		return NULL;
	}
	if (b.len > HTTP_URL_SHOWN) {
		b.len = HTTP_URL_SHOWN - 3;
		memcpy(b.ptr + b.len, "...", 4);
		b.len += 3;
	}
	return atex_buf_detach(&b);
}

/* Replaces each occurrence of `secret` in s with "***", in place. Short
 * secrets are left: "***" must not make the string longer. */
static void scrub(char *s, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0;
	char *p;

	if (n < 3)
		return;
	while ((p = strstr(s, secret))) {
		memcpy(p, "***", 3);
		memmove(p + 3, p + n, strlen(p + n) + 1);
	}
}

/* The reason a try got no reply, for a message. */
static const char *try_error(struct exchange *x)
{
	if (x->too_big || x->result == CURLE_FILESIZE_EXCEEDED)
		return "reply too big (over 64 MiB)";
	if (x->no_memory)
		return "out of memory reading the reply";
	scrub(x->errbuf, x->token);
	return x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);
}

/* ------------------------------------------------------------------------
 * Exchanges
 */

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * n;

	if (len > HTTP_MAX_REPLY - x->body.len) {
		x->too_big = true;
		return 0;
	}
	if (atex_buf_put(&x->body, data, len) < 0) {
		x->no_memory = true;
		return 0;
	}
	return len;
}

static void exchange_free(struct exchange *x)
{
	if (!x)
		return;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_mime_free(x->mime);
	curl_slist_free_all(x->headers);
	free(x->method);
	free(x->shown_url);
	if (x->token) {
		memset(x->token, 0, strlen(x->token));
		free(x->token);
	}
	atex_buf_free(&x->body);
	atex_buf_free(&x->reply);
	free(x->content_type);
	free(x->content_range);
	free(x);
}

static void link_exchange(struct atex_http *h, struct exchange *x)
{
	x->next = h->head;
	if (h->head)
		h->head->prev = x;
	h->head = x;
	h->pending++;
}

static void unlink_exchange(struct atex_http *h, struct exchange *x)
{
	if (x->in_multi)
		curl_multi_remove_handle(h->multi, x->easy);
	x->in_multi = false;
	if (x->prev)
		x->prev->next = x->next;
	else
		h->head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	h->pending--;
}

/* Ends an exchange: out of the client, its callback, freed. The thread's
 * error message is set by the caller when rc is not 0. */
static void finish(struct exchange *x, int rc)
{
	struct atex_http *h = x->h;
	struct atex_http_reply reply = {0};

	unlink_exchange(h, x);
	if (rc == 0) {
		reply.status = x->status;
		reply.body = atex_buf_cstr(&x->reply);
		reply.body_len = x->reply.len;
		reply.content_type = x->content_type ? x->content_type : "";
		reply.content_range = x->content_range ? x->content_range : "";
	}
	reply.tries = x->tries;
	h->callbacks++;
	x->done(x->arg, rc, rc == 0 ? &reply : NULL);
	exchange_free(x);
}

static bool valid_header_text(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

static int add_header(struct exchange *x, const char *fmt, const char *value)
{
	struct curl_slist *l;
	char *line = atex_sprintf(fmt, value);

	if (!line)
		return ATEX_ENOMEM;
	l = curl_slist_append(x->headers, line);
	free(line);
	if (!l)
		return atex_error_oom();
	x->headers = l;
	return 0;
}

static int build_headers(struct exchange *x, const struct atex_http_request *r)
{
	char range[64];
	int rc;

	rc = add_header(x, "%s", "Accept: application/json");
	/* No "Expect: 100-continue" wait before a larger body. */
	if (!rc)
		rc = add_header(x, "%s", "Expect:");
	if (!rc && r->body)
		rc = add_header(x, "%s", "Content-Type: application/json");
	if (!rc && r->token)
		rc = add_header(x, "Authorization: Bearer %s", r->token);
	if (!rc && r->range_from >= 0) {
		snprintf(range, sizeof(range), "Range: bytes=%lld-",
			 r->range_from);
		rc = add_header(x, "%s", range);
	}
	for (size_t i = 0; !rc && r->headers && r->headers[i]; i++)
		rc = add_header(x, "%s", r->headers[i]);
	return rc;
}

/* The multipart body: libcurl copies the data and reopens a file part at
 * every try (it rewinds the whole body before each send). */
static CURLcode build_mime(struct exchange *x,
			   const struct atex_http_request *r)
{
	CURLcode c = CURLE_OK;

	x->mime = curl_mime_init(x->easy);
	if (!x->mime)
		return CURLE_OUT_OF_MEMORY;
	for (size_t i = 0; c == CURLE_OK && i < r->n_parts; i++) {
		const struct atex_http_part *p = &r->parts[i];
		curl_mimepart *part = curl_mime_addpart(x->mime);

		if (!part)
			return CURLE_OUT_OF_MEMORY;
		c = curl_mime_name(part, p->name);
		if (c == CURLE_OK && p->data)
			c = curl_mime_data(part, p->data, p->len);
		else if (c == CURLE_OK)
			c = curl_mime_filedata(part, p->path);
		/* filedata sets the file's name: only ours is sent. */
		if (c == CURLE_OK)
			c = curl_mime_filename(part, p->filename);
		if (c == CURLE_OK && p->type)
			c = curl_mime_type(part, p->type);
	}
	if (c == CURLE_OK)
		c = curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, x->mime);
	return c;
}

/* The easy handle's options for the whole exchange (every try). */
static int setup_easy(struct exchange *x, const struct atex_http_request *r)
{
	bool is_get = strcmp(r->method, "GET") == 0;
	bool is_head = strcmp(r->method, "HEAD") == 0;
	long timeout = r->timeout_ms > 0 ? r->timeout_ms : HTTP_TIMEOUT_MS;
	CURL *e = x->easy;
	CURLcode c = CURLE_OK;

#define SET(opt, val)                                                          \
	do {                                                                   \
		if (c == CURLE_OK)                                             \
			c = curl_easy_setopt(e, opt, val);                     \
	} while (0)
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HTTPHEADER, x->headers);
	SET(CURLOPT_USERAGENT, "atex/" ATEX_VERSION_STRING);
	SET(CURLOPT_TIMEOUT_MS, timeout);
	SET(CURLOPT_CONNECTTIMEOUT_MS, timeout < HTTP_CONNECT_TIMEOUT_MS
					       ? timeout
					       : HTTP_CONNECT_TIMEOUT_MS);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_REPLY);
	/* Reading is idempotent; a POST or DELETE redirected is not what
	 * the caller asked for. */
	SET(CURLOPT_FOLLOWLOCATION, (is_get || is_head) ? 1L : 0L);
	SET(CURLOPT_MAXREDIRS, HTTP_MAX_REDIRS);
	if (is_head) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (r->n_parts) {
		if (c == CURLE_OK)
			c = build_mime(x, r);
	} else if (r->body) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
		SET(CURLOPT_COPYPOSTFIELDS, r->body);
	} else if (strcmp(r->method, "POST") == 0) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		SET(CURLOPT_COPYPOSTFIELDS, "");
	}
	if (!is_get && !is_head && strcmp(r->method, "POST") != 0)
		SET(CURLOPT_CUSTOMREQUEST, r->method);
#undef SET
	if (c != CURLE_OK)
		return atex_error_set(ATEX_EIO, "%s %s: %s", r->method,
				      x->shown_url, curl_easy_strerror(c));
	return 0;
}

/* Refuses what would make a broken or injected request, naming it. */
static int check_request(const struct atex_http_request *r)
{
	const char *problem = NULL;
	char *shown;
	int rc;

	if (!r || !r->method || !r->url || !r->method[0] ||
	    strpbrk(r->method, " \t\r\n") || !valid_header_text(r->url))
		return atex_error_set(ATEX_EINVAL,
				      "HTTP request: no method or URL, or "
				      "spaces or line breaks in them");
	if (r->token && !valid_header_text(r->token))
		problem = "a line break in the token";
	if (r->n_parts && (r->body || !r->parts))
		problem = "both a body and parts, or no parts";
	for (size_t i = 0; !problem && i < r->n_parts; i++)
		if (!r->parts[i].name ||
		    (!r->parts[i].data && !r->parts[i].path))
			problem = "a part without a name or content";
	for (size_t i = 0; !problem && r->headers && r->headers[i]; i++)
		if (!valid_header_text(r->headers[i]) ||
		    !strchr(r->headers[i], ':'))
			problem = "an extra header that is not one "
				  "'Name: value' line";
	if (!problem)
		return 0;
	shown = atex_http_url_for_message(r->url);
	rc = atex_error_set(ATEX_EINVAL, "%s %s: %s", r->method,
			    shown ? shown : "", problem);
	free(shown);
	return rc;
}

static int try_start(struct exchange *x)
{
	CURLMcode mc;

	atex_buf_clear(&x->body);
	x->too_big = false;
	x->no_memory = false;
	x->finished = false;
	x->errbuf[0] = '\0';
	mc = curl_multi_add_handle(x->h->multi, x->easy);
	if (mc != CURLM_OK)
		return atex_error_set(ATEX_EIO, "%s %s: %s", x->method,
				      x->shown_url, curl_multi_strerror(mc));
	x->in_multi = true;
	x->tries++;
	return 0;
}

int atex_http_start(struct atex_http *h, const struct atex_http_request *r,
		    atex_http_done_fn done, void *arg, uint64_t *id)
{
	struct exchange *x;
	int rc;

	if (!h || !done || h->closing)
		return atex_error_set(ATEX_EINVAL,
				      "HTTP request: no client (or it is being "
				      "freed) or no callback");
	rc = check_request(r);
	if (rc)
		return rc;
	x = atex_calloc(1, sizeof(*x));
	if (!x)
		return ATEX_ENOMEM;
	x->h = h;
	x->done = done;
	x->arg = arg;
	x->retry = r->retry;
	x->total_ms =
		r->retry_total_ms > 0 ? r->retry_total_ms : HTTP_RETRY_TOTAL_MS;
	x->backoff_ms = r->backoff_first_ms > 0 ? r->backoff_first_ms
						: h->backoff_first_ms;
	x->method = atex_strdup(r->method);
	x->shown_url = atex_http_url_for_message(r->url);
	x->token = r->token ? atex_strdup(r->token) : NULL;
	rc = ATEX_ENOMEM;
	if (!x->method || !x->shown_url || (r->token && !x->token))
		goto fail;
	rc = build_headers(x, r);
	if (rc)
		goto fail;
	x->easy = curl_easy_init();
	if (!x->easy) {
		rc = atex_error_set(ATEX_EIO, "%s %s: libcurl could not start",
				    r->method, x->shown_url);
		goto fail;
	}
	rc = setup_easy(x, r);
	if (rc)
		goto fail;
	x->first_ms = atex_monotonic_ms();
	rc = try_start(x);
	if (rc)
		goto fail;
	x->id = ++h->next_id;
	link_exchange(h, x);
	if (id)
		*id = x->id;
	return 0;
fail:
	exchange_free(x);
	return rc;
}

/* ------------------------------------------------------------------------
 * Retries
 */

static bool retryable_status(long status)
{
	return status == 408 || status == 429 ||
	       (status >= 500 && status <= 599);
}

static bool retryable_error(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_QUIC_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

/* Keeps the try's complete reply as the exchange's reply. */
static int keep_reply(struct exchange *x)
{
	struct atex_buf tmp = x->reply;
	long status = 0;
	char *type = NULL;
	struct curl_header *range = NULL;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &type);
	free(x->content_type);
	x->content_type = atex_strdup(type ? type : "");
	if (!x->content_type)
		return ATEX_ENOMEM;
	free(x->content_range);
	x->content_range = NULL;
	if (curl_easy_header(x->easy, "Content-Range", 0, CURLH_HEADER, -1,
			     &range) == CURLHE_OK)
		x->content_range = atex_strdup(range->value);
	else
		x->content_range = atex_strdup("");
	if (!x->content_range)
		return ATEX_ENOMEM;
	x->reply = x->body;
	x->body = tmp;
	x->status = status;
	x->have_reply = true;
	return 0;
}

/* The wait before the next try: the backoff, or longer when the server
 * asked for it (Retry-After), never more than the cap. */
static int next_delay(struct exchange *x, bool replied)
{
	int max = x->h->backoff_max_ms;
	double delay = x->backoff_ms;
	curl_off_t after = 0;

	x->backoff_ms = x->backoff_ms > max / 2 ? max : x->backoff_ms * 2;
	if (replied &&
	    curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &after) ==
		    CURLE_OK &&
	    after > 0 && (double)after * 1000 > delay)
		delay = (double)after * 1000;
	return delay > max ? max : (int)delay;
}

/* What ends the exchange when there is no retry left. */
static void give_up(struct exchange *x, const char *why)
{
	if (x->have_reply) {
		finish(x, 0);
		return;
	}
	atex_error_set(ATEX_EIO, "%s %s: %s (%d %s)", x->method, x->shown_url,
		       why, x->tries, x->tries == 1 ? "try" : "tries");
	finish(x, ATEX_EIO);
}

/* A try ended (its handle is out of the multi handle): retry or finish. */
static void handle_try(struct exchange *x)
{
	bool replied = x->result == CURLE_OK;
	char status_text[32];
	const char *why;
	double now;
	int delay;

	if (replied && keep_reply(x) < 0) {
		x->no_memory = true;
		replied = false;
	}
	if (!replied && !retryable_error(x->result)) {
		x->have_reply = false; /* the reply is not the last answer */
		give_up(x, try_error(x));
		return;
	}
	if (replied && !retryable_status(x->status)) {
		x->h->outage_since = 0;
		finish(x, 0);
		return;
	}
	snprintf(status_text, sizeof(status_text), "HTTP %ld", x->status);
	why = replied ? status_text : try_error(x);
	now = atex_monotonic_ms();
	if (x->h->outage_since == 0)
		x->h->outage_since = now;
	snprintf(x->h->outage_why, sizeof(x->h->outage_why), "%s %s: %s",
		 x->method, x->shown_url, why);
	delay = next_delay(x, replied);
	if (!x->retry || now + delay > x->first_ms + x->total_ms) {
		atex_debug("http", "%s %s: %s, no more tries after %d",
			   x->method, x->shown_url, why, x->tries);
		give_up(x, why);
		return;
	}
	atex_debug("http", "%s %s: %s, try %d in %.3g s", x->method,
		   x->shown_url, why, x->tries + 1, delay / 1000.0);
	x->due_ms = now + delay;
}

/* Takes every finished try out of the multi handle, marked. */
static void collect(struct atex_http *h)
{
	struct exchange *x;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
				  (char **)&x);
		if (!x)
			continue;
		x->result = m->data.result;
		curl_multi_remove_handle(h->multi, x->easy);
		x->in_multi = false;
		x->finished = true;
	}
}

/* Handles marked tries and starts due retries, one at a time: a callback
 * may change the list under us, so each step looks again from the head. */
static void dispatch(struct atex_http *h)
{
	struct exchange *x;
	double now;

	collect(h);
	for (;;) {
		for (x = h->head; x && !x->finished; x = x->next)
			;
		if (!x)
			break;
		x->finished = false;
		handle_try(x);
	}
	for (;;) {
		now = atex_monotonic_ms();
		for (x = h->head; x && (x->in_multi || x->due_ms > now);
		     x = x->next)
			;
		if (!x)
			break;
		if (try_start(x) < 0) {
			x->have_reply = false;
			finish(x, ATEX_EIO);
		}
	}
}

/* Milliseconds until the earliest retry, -1 when none waits. */
static int next_timer(struct atex_http *h)
{
	double now = atex_monotonic_ms(), first = -1;

	for (struct exchange *x = h->head; x; x = x->next)
		if (!x->in_multi && (first < 0 || x->due_ms < first))
			first = x->due_ms;
	if (first < 0)
		return -1;
	return first <= now ? 0 : (int)ceil(first - now);
}

/* ------------------------------------------------------------------------
 * The client
 */

int atex_http_new(struct atex_http **out, int max_host_connections)
{
	struct atex_http *h;

	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return atex_error_set(ATEX_EIO, "libcurl: %s",
				      curl_easy_strerror(global_rc));
	h = atex_calloc(1, sizeof(*h));
	if (!h)
		return ATEX_ENOMEM;
	h->backoff_first_ms = HTTP_BACKOFF_FIRST_MS;
	h->backoff_max_ms = HTTP_BACKOFF_MAX_MS;
	atomic_init(&h->woken, false);
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		return atex_error_set(ATEX_EIO, "libcurl could not start");
	}
	if (max_host_connections <= 0)
		max_host_connections = HTTP_HOST_CONNECTIONS;
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			  (long)max_host_connections);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
	*out = h;
	return 0;
}

void atex_http_set_backoff(struct atex_http *h, int first_ms, int max_ms)
{
	h->backoff_first_ms = first_ms > 0 ? first_ms : 1;
	h->backoff_max_ms =
		max_ms > h->backoff_first_ms ? max_ms : h->backoff_first_ms;
}

static void cancel_one(struct exchange *x)
{
	atex_error_set(ATEX_ECANCELED, "%s %s: canceled", x->method,
		       x->shown_url);
	x->have_reply = false;
	finish(x, ATEX_ECANCELED);
}

void atex_http_free(struct atex_http *h)
{
	if (!h)
		return;
	h->closing = true;
	while (h->head)
		cancel_one(h->head);
	curl_multi_cleanup(h->multi);
	free(h);
}

void atex_http_cancel(struct atex_http *h, uint64_t id)
{
	for (struct exchange *x = h ? h->head : NULL; x; x = x->next) {
		if (x->id == id) {
			cancel_one(x);
			return;
		}
	}
}

void atex_http_no_retry(struct atex_http *h, uint64_t id)
{
	for (struct exchange *x = h ? h->head : NULL; x; x = x->next) {
		if (x->id != id)
			continue;
		x->retry = false;
		/* Between tries: the next one must not start. */
		if (!x->in_multi && !x->finished)
			cancel_one(x);
		return;
	}
}

/* A decimal number at *s (digits only), *s moved past it; -1: none. */
static long long read_number(const char **s)
{
	long long n = 0;

	if (**s < '0' || **s > '9')
		return -1;
	for (; **s >= '0' && **s <= '9'; (*s)++) {
		if (n > (LLONG_MAX - 9) / 10)
			return -1;
		n = n * 10 + (**s - '0');
	}
	return n;
}

bool atex_http_content_range(const char *value, long long *first,
			     long long *last, long long *total)
{
	const char *s = value;
	long long a, b, t = -1;

	if (!s || strncmp(s, "bytes ", 6))
		return false;
	s += 6;
	a = read_number(&s);
	if (a < 0 || *s++ != '-')
		return false;
	b = read_number(&s);
	if (b < a || *s++ != '/')
		return false;
	if (*s == '*')
		s++;
	else if ((t = read_number(&s)) < 0 || b >= t)
		return false;
	if (*s)
		return false;
	*first = a;
	*last = b;
	*total = t;
	return true;
}

double atex_http_outage(const struct atex_http *h, const char **why)
{
	if (!h || h->outage_since == 0)
		return 0;
	if (why)
		*why = h->outage_why;
	return atex_monotonic_ms() - h->outage_since;
}

size_t atex_http_pending(const struct atex_http *h)
{
	return h ? h->pending : 0;
}

void atex_http_wake(struct atex_http *h)
{
	atomic_store(&h->woken, true);
	curl_multi_wakeup(h->multi);
}

int atex_http_run(struct atex_http *h, int timeout_ms, const int *fds,
		  size_t n_fds)
{
	struct curl_waitfd small[4], *wfds = small;
	double deadline = -1;
	bool fd_ready = false, timed_out = false;
	int running, wait, timer, rc;
	CURLMcode mc;

	if (n_fds > ATEX_ARRAY_SIZE(small)) {
		wfds = atex_calloc(n_fds, sizeof(*wfds));
		if (!wfds)
			return ATEX_ENOMEM;
	}
	if (timeout_ms >= 0)
		deadline = atex_monotonic_ms() + timeout_ms;
	h->callbacks = 0;
	for (;;) {
		mc = curl_multi_perform(h->multi, &running);
		if (mc != CURLM_OK) {
			rc = atex_error_set(ATEX_EIO, "libcurl: %s",
					    curl_multi_strerror(mc));
			break;
		}
		dispatch(h);
		rc = 0;
		if (h->callbacks || fd_ready ||
		    atomic_exchange(&h->woken, false))
			break;
		rc = ATEX_ETIMEDOUT;
		if (timed_out)
			break;
		wait = HTTP_IDLE_WAIT_MS;
		if (deadline >= 0) {
			double left = deadline - atex_monotonic_ms();

			wait = left <= 0 ? 0 : (int)ceil(left);
		}
		timer = next_timer(h);
		if (timer >= 0 && timer < wait)
			wait = timer;
		for (size_t i = 0; i < n_fds; i++)
			wfds[i] = (struct curl_waitfd){fds[i], CURL_WAIT_POLLIN,
						       0};
		/* libcurl shortens the wait to its own next timeout. */
		mc = curl_multi_poll(h->multi, wfds, (unsigned)n_fds, wait,
				     NULL);
		if (mc != CURLM_OK) {
			rc = atex_error_set(ATEX_EIO, "libcurl: %s",
					    curl_multi_strerror(mc));
			break;
		}
		for (size_t i = 0; i < n_fds; i++)
			if (fds[i] >= 0 && wfds[i].revents)
				fd_ready = true;
		if (deadline >= 0 && atex_monotonic_ms() >= deadline)
			timed_out = true;
	}
	if (wfds != small)
		free(wfds);
	return rc;
}

/* ------------------------------------------------------------------------
 * One exchange, waited for
 */

struct call_state {
	bool done;
	int rc;
	struct atex_http_result *out;
};

static void call_done(void *arg, int rc, const struct atex_http_reply *reply)
{
	struct call_state *st = arg;
	struct atex_http_result *out = st->out;

	st->done = true;
	st->rc = rc;
	if (rc)
		return;
	out->status = reply->status;
	out->tries = reply->tries;
	out->body_len = reply->body_len;
	out->body = atex_malloc(reply->body_len + 1);
	out->content_type = atex_strdup(reply->content_type);
	if (!out->body || !out->content_type) {
		atex_http_result_clear(out);
		st->rc = ATEX_ENOMEM;
		return;
	}
	memcpy(out->body, reply->body, reply->body_len + 1);
}

int atex_http_call(struct atex_http_result *out,
		   const struct atex_http_request *r, atex_cancel *cancel)
{
	struct call_state st = {false, 0, out};
	struct atex_http *h = NULL;
	int fd = atex_cancel_fd(cancel);
	uint64_t id;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_request(r);
	if (rc)
		return rc;
	if (atex_cancel_fired(cancel))
		return atex_error_set(ATEX_ECANCELED, "%s: canceled",
				      r->method);
	rc = atex_http_new(&h, 0);
	if (rc)
		return rc;
	rc = atex_http_start(h, r, call_done, &st, &id);
	while (!rc && !st.done) {
		if (atex_cancel_fired(cancel)) {
			atex_http_cancel(h, id);
			break;
		}
		rc = atex_http_run(h, -1, &fd, fd >= 0 ? 1 : 0);
	}
	if (rc && !st.done) {
		/* Freeing the client cancels the exchange: keep the message
		 * of what really failed. */
		char *why = atex_strdup(atex_error_last());

		atex_http_free(h);
		atex_error_set(rc, "%s", why ? why : "");
		free(why);
		return rc;
	}
	atex_http_free(h);
	return rc ? rc : st.rc;
}

void atex_http_result_clear(struct atex_http_result *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}
