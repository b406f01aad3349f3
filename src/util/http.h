/*
 * http.h - private: HTTP exchanges over one libcurl multi handle, for the
 * clients of web services (Testing Farm, ReportPortal).
 *
 * A client (struct atex_http) is one multi handle driven by one thread:
 * that thread starts exchanges and calls atex_http_run, which waits in one
 * poll for the sockets, libcurl's timers, the client's retry timers and
 * the caller's own descriptors (a cancel token, a wake-up eventfd), and
 * calls each finished exchange's callback. There is no thread per
 * exchange and no sleeping loop: 50 exchanges waiting cost one thread.
 *
 * Outages are retried inside the client: connection errors, timeouts,
 * 408, 429 and 5xx, with a backoff from 2 s doubling to 2 min (a
 * Retry-After header is honoured within that cap) until retry_total_ms
 * is spent; POST included, as Python ATEX does. Other statuses end the
 * exchange and go to the callback as they are.
 *
 * The bearer token is only ever put in an Authorization header: never in
 * a log line, an error message or a process argument. URLs in messages
 * are shown without userinfo.
 *
 * Thread safety: a client is used by one thread at a time (its owner),
 * except atex_http_wake, which any thread may call.
 */
#ifndef ATEX_UTIL_HTTP_H
#define ATEX_UTIL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atex/connection.h" /* atex_cancel */

struct atex_http;

/* One part of a multipart/form-data body (a ReportPortal log upload):
 * `data` (`len` bytes, copied) or the file at `path` (read again at each
 * try, so that a retry sends it whole). */
struct atex_http_part {
	const char *name;     /* the form field's name */
	const char *filename; /* NULL: none */
	const char *type;     /* the part's Content-Type; NULL: libcurl's */
	const char *data;     /* NULL: `path` */
	size_t len;
	const char *path;
};

struct atex_http_request {
	const char *method;    /* "GET", "POST", "DELETE", "HEAD"... */
	const char *url;       /* absolute */
	const char *body;      /* sent as application/json; NULL: none */
	const char *token;     /* NULL: no Authorization header */
	/* Extra "Name: value" headers, NULL-terminated; NULL: none. */
	const char *const *headers;
	/* >= 0: ask for the bytes from this offset on (Range: bytes=N-). */
	long long range_from;
	bool retry;            /* retry outages as above */
	int retry_total_ms;    /* 0: 4 hours */
	int timeout_ms;        /* one try, connect to last byte; 0: 60 s */
	/* A multipart/form-data body of n_parts parts (strings and data
	 * copied); `body` must then be NULL. */
	const struct atex_http_part *parts;
	size_t n_parts;
	/* > 0: this exchange's first retry waits this long (doubling up to
	 * the client's cap) instead of the client's backoff: for tests. */
	int backoff_first_ms;
};

#define ATEX_HTTP_REQUEST_INIT                                                 \
	{NULL, NULL, NULL, NULL, NULL, -1, true, 0, 0, NULL, 0, 0}

/* A finished exchange: valid only during the callback. */
struct atex_http_reply {
	long status;              /* 0 when no answer came at all */
	const char *body;         /* NUL-terminated; "" when empty */
	size_t body_len;
	const char *content_type; /* "" when absent */
	int tries;                /* how many attempts it took */
	/* The Content-Range header's value ("bytes A-B/TOTAL"); "" when
	 * absent. atex_http_content_range reads it. */
	const char *content_range;
};

/* Reads a Content-Range value "bytes A-B/TOTAL" (TOTAL may be "*": -1):
 * true with *first, *last and *total set, false when it is not one. */
bool atex_http_content_range(const char *value, long long *first,
			     long long *last, long long *total);

/* Called by atex_http_run on the owner's thread when an exchange ends:
 * rc 0 with the final reply (any status that was not retried, or the last
 * retried one when retries ran out: then reply->status says which), or
 * ATEX_EIO when no answer ever came (the thread's error message says
 * why, naming method and URL), or ATEX_ECANCELED (atex_http_cancel, or
 * atex_http_free with the exchange pending). */
typedef void (*atex_http_done_fn)(void *arg, int rc,
				  const struct atex_http_reply *reply);

/* A client; max_host_connections bounds the exchanges in flight to one
 * host (0: 10; the others queue). Returns 0, ATEX_EIO (libcurl could not
 * start) or ATEX_ENOMEM. */
int atex_http_new(struct atex_http **out, int max_host_connections);

/* Cancels every pending exchange (callbacks run with ATEX_ECANCELED) and
 * frees the client. NULL is accepted. Owner's thread. */
void atex_http_free(struct atex_http *h);

/* Starts an exchange (all strings are copied). *id (may be NULL) names
 * it for atex_http_cancel. Returns 0, ATEX_EINVAL or ATEX_ENOMEM; the
 * callback is called exactly once when 0 is returned, never before this
 * returns. */
int atex_http_start(struct atex_http *h, const struct atex_http_request *r,
		    atex_http_done_fn done, void *arg, uint64_t *id);

/* Ends a pending exchange now: its callback runs with ATEX_ECANCELED
 * before this returns. An unknown id (already finished) is ignored. */
void atex_http_cancel(struct atex_http *h, uint64_t id);

/* No more tries for a pending exchange: one waiting for its next try
 * ends now (its callback runs with ATEX_ECANCELED before this returns),
 * one in flight ends with this try's outcome. An unknown id is ignored.
 * Owner's thread. */
void atex_http_no_retry(struct atex_http *h, uint64_t id);

/* How long (ms) the client's tries have been failing with an outage
 * (connection errors, timeouts, 408, 429, 5xx) with no other answer
 * since; 0 when they are not. *why (may be NULL) is then the last
 * failure ("METHOD URL: reason"), valid until the next atex_http_run.
 * Owner's thread. */
double atex_http_outage(const struct atex_http *h, const char **why);

/* How many exchanges are pending (in flight or waiting to retry). */
size_t atex_http_pending(const struct atex_http *h);

/*
 * Waits until something happens and handles it: returns after at least
 * one callback ran, after one of `fds` (n_fds descriptors, may be 0;
 * POLLIN) became readable, after atex_http_wake, or after timeout_ms
 * (-1: no limit). Returns 0, ATEX_ETIMEDOUT (nothing happened in time),
 * or ATEX_EIO (poll or libcurl failed). Owner's thread.
 */
int atex_http_run(struct atex_http *h, int timeout_ms, const int *fds,
		  size_t n_fds);

/* Makes a concurrent or later atex_http_run return. Any thread. */
void atex_http_wake(struct atex_http *h);

/*
 * One exchange from start to end on a private client, waiting for it
 * (or `cancel`, may be NULL). On 0, out->body (caller frees with free())
 * and the rest hold the final reply.
 * Returns 0, ATEX_EIO (no answer ever came), ATEX_ECANCELED, ATEX_EINVAL
 * or ATEX_ENOMEM. Any thread.
 */
struct atex_http_result {
	long status;
	char *body;
	size_t body_len;
	char *content_type;   /* caller frees; may be NULL */
	int tries;
};
int atex_http_call(struct atex_http_result *out,
		   const struct atex_http_request *r, atex_cancel *cancel);
void atex_http_result_clear(struct atex_http_result *r);

/* For tests and benches only: the retry backoff starts at first_ms and
 * doubles up to max_ms (instead of 2 s and 2 min), so that a test of
 * retries need not wait seconds per try. Owner's thread, before starting
 * exchanges. */
void atex_http_set_backoff(struct atex_http *h, int first_ms, int max_ms);

/* The URL for messages: userinfo removed, cut at 200 characters (the
 * last 3 being "..." when it was longer); caller
 * frees (NULL on ENOMEM). */
char *atex_http_url_for_message(const char *url);

#endif /* ATEX_UTIL_HTTP_H */
