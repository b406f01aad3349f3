/*
 * test_http.c - the HTTP client (src/util/http.c) against a tiny HTTP/1.1
 * server written here: a thread on 127.0.0.1 that accepts connections,
 * each served by its own thread, which reads one request, records it and
 * answers from the test's script (status, headers, body; a delay; or
 * closing the connection with no answer).
 *
 * Retries use the backoff knob (atex_http_set_backoff) so that a test of
 * five tries takes milliseconds, not a minute.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/http.h"
#include "util/util.h"

#define TOKEN	  "tok-SECRET-4242-xyz"
#define BIG_REPLY (((size_t)64 << 20) + 1)

/* ------------------------------------------------------------------------
 * The server
 */

struct step {
	int status;	     /* 0: close the connection without answering */
	const char *headers; /* extra header lines, each ending "\r\n" */
	const char *body;
	int delay_ms;	  /* before answering */
	size_t big;	  /* > 0: a body of this size instead */
	bool length_only; /* with big: announce it, send nothing */
};

struct seen {
	char method[16];
	char path[256];
	char headers[4096];
	char body[4096];
	double at_ms;
};

#define MAX_SEEN  128
#define MAX_CONNS 256

struct server {
	int lfd;
	int port;
	int stop_fd;
	pthread_t thread;
	pthread_mutex_t mu;
	const struct step *steps;
	size_t n_steps;
	size_t n_requests;
	struct seen seen[MAX_SEEN];
	int active, max_active;
	pthread_t conns[MAX_CONNS];
	size_t n_conns;
};

struct conn {
	struct server *s;
	int fd;
};

/* Waits for fd to be readable (or the server to stop): false on stop or
 * after 10 s. */
static bool wait_readable(struct server *s, int fd, int ms)
{
	struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};

	if (poll(p, 2, ms) <= 0)
		return false;
	return !p[1].revents && p[0].revents;
}

static void pause_ms(struct server *s, int ms)
{
	struct pollfd p = {s->stop_fd, POLLIN, 0};

	if (ms > 0)
		poll(&p, 1, ms);
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

/* Reads one request into *rq: false when it does not come. */
static bool read_request(struct server *s, int fd, struct seen *rq)
{
	char buf[16384];
	size_t len = 0, want;
	char *end = NULL, *cl;
	ssize_t n;

	while (!end) {
		if (len + 1 >= sizeof(buf) || !wait_readable(s, fd, 10000))
			return false;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	*end = '\0';
	sscanf(buf, "%15s %255s", rq->method, rq->path);
	snprintf(rq->headers, sizeof(rq->headers), "%s\r\n",
		 strstr(buf, "\r\n") + 2);
	cl = strcasestr(rq->headers, "\r\nContent-Length:");
	if (!cl && strncasecmp(rq->headers, "Content-Length:", 15) == 0)
		cl = rq->headers - 2;
	want = cl ? strtoul(cl + 17, NULL, 10) : 0;
	end += 4;
	len -= (size_t)(end - buf);
	memmove(buf, end, len);
	while (len < want && len + 1 < sizeof(buf)) {
		if (!wait_readable(s, fd, 10000))
			return false;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return false;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len >= sizeof(rq->body))
		len = sizeof(rq->body) - 1;
	memcpy(rq->body, buf, len);
	rq->body[len] = '\0';
	return true;
}

static void send_big(int fd, const struct step *st)
{
	static const char chunk[1 << 16];
	char head[256];
	size_t left = st->big;

	if (st->length_only) {
		snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 st->big);
		send_all(fd, head, strlen(head));
		return;
	}
	/* No length: the body ends when the connection does. */
	snprintf(head, sizeof(head),
		 "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
	send_all(fd, head, strlen(head));
	while (left > 0) {
		size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
		ssize_t w = send(fd, chunk, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		left -= (size_t)w;
	}
}

static void answer(struct conn *c, const struct step *st, const char *method)
{
	const char *body = st->body ? st->body : "";
	char head[1024];

	if (st->big) {
		send_big(c->fd, st);
		return;
	}
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n%s\r\n",
		 st->status, strlen(body), st->headers ? st->headers : "");
	send_all(c->fd, head, strlen(head));
	if (strcmp(method, "HEAD") != 0)
		send_all(c->fd, body, strlen(body));
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;
	struct seen rq = {0};
	const struct step *st;
	size_t i;

	if (!read_request(s, c->fd, &rq))
		goto out;
	rq.at_ms = atex_monotonic_ms();
	pthread_mutex_lock(&s->mu);
	i = s->n_requests++;
	if (i < MAX_SEEN)
		s->seen[i] = rq;
	st = &s->steps[i < s->n_steps ? i : s->n_steps - 1];
	if (++s->active > s->max_active)
		s->max_active = s->active;
	pthread_mutex_unlock(&s->mu);
	pause_ms(s, st->delay_ms);
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_mutex_unlock(&s->mu);
	if (st->status || st->big)
		answer(c, st, rq.method);
out:
	close(c->fd);
	free(c);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct server *s = arg;

	for (;;) {
		struct conn *c;
		int fd;

		if (!wait_readable(s, s->lfd, -1))
			return NULL;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		c = calloc(1, sizeof(*c));
		assert_non_null(c);
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->mu);
		assert_true(s->n_conns < MAX_CONNS);
		assert_int_equal(pthread_create(&s->conns[s->n_conns++], NULL,
						conn_main, c),
				 0);
		pthread_mutex_unlock(&s->mu);
	}
}

static struct server *server_start(const struct step *steps, size_t n_steps)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);

	assert_non_null(s);
	s->steps = steps;
	s->n_steps = n_steps;
	pthread_mutex_init(&s->mu, NULL);
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(s->stop_fd >= 0);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 128), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, accept_main, s), 0);
	return s;
}

static void server_stop(struct server *s)
{
	uint64_t one = 1;

	assert_int_equal(write(s->stop_fd, &one, sizeof(one)), sizeof(one));
	pthread_join(s->thread, NULL);
	for (size_t i = 0; i < s->n_conns; i++)
		pthread_join(s->conns[i], NULL);
	close(s->lfd);
	close(s->stop_fd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static size_t server_requests(struct server *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->n_requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* A port nothing listens on (bound, then closed). */
static int closed_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static char *url_of(struct server *s, const char *path)
{
	char *url = atex_sprintf("http://127.0.0.1:%d%s", s->port, path);

	assert_non_null(url);
	return url;
}

/* ------------------------------------------------------------------------
 * The client side
 */

struct done {
	bool done;
	int rc;
	long status;
	int tries;
	char *body;
	size_t body_len;
	char *content_type;
	char *content_range;
	char error[1024];
	double at_ms;
};

static void on_done(void *arg, int rc, const struct atex_http_reply *r)
{
	struct done *d = arg;

	assert_false(d->done); /* exactly once */
	d->done = true;
	d->rc = rc;
	d->at_ms = atex_monotonic_ms();
	if (rc) {
		assert_null(r);
		snprintf(d->error, sizeof(d->error), "%s", atex_error_last());
		return;
	}
	d->status = r->status;
	d->tries = r->tries;
	d->body_len = r->body_len;
	d->body = strdup(r->body);
	d->content_type = strdup(r->content_type);
	d->content_range = strdup(r->content_range);
}

static void done_clear(struct done *d)
{
	free(d->body);
	free(d->content_type);
	free(d->content_range);
	memset(d, 0, sizeof(*d));
}

/* Runs the client until d is done (10 s at most). */
static void run_until(struct atex_http *h, struct done *d)
{
	double end = atex_monotonic_ms() + 10000;

	while (!d->done) {
		int rc = atex_http_run(h, 1000, NULL, 0);

		assert_true(rc == 0 || rc == ATEX_ETIMEDOUT);
		assert_true(atex_monotonic_ms() < end);
	}
}

static struct atex_http *fast_client(int max_host)
{
	struct atex_http *h;

	assert_int_equal(atex_http_new(&h, max_host), 0);
	atex_http_set_backoff(h, 10, 40);
	return h;
}

/* One exchange on a fast-retrying client. */
static void exchange(const struct atex_http_request *r, struct done *d)
{
	struct atex_http *h = fast_client(0);

	memset(d, 0, sizeof(*d));
	assert_int_equal(atex_http_start(h, r, on_done, d, NULL), 0);
	assert_false(d->done); /* never before start returns */
	run_until(h, d);
	assert_int_equal(atex_http_pending(h), 0);
	atex_http_free(h);
}

/* ------------------------------------------------------------------------
 * Methods, bodies, headers
 */

static void test_get_headers(void **state)
{
	static const struct step steps[] = {
		{200, "Content-Type: application/json\r\n", "{\"a\": 1}", 0, 0,
		 false},
	};
	static const char *const extra[] = {"X-Extra: yes", NULL};
	struct server *s = server_start(steps, 1);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http_result res;

	r.method = "GET";
	r.url = url_of(s, "/v0.1/requests/abc?x=1");
	r.token = TOKEN;
	r.headers = extra;
	r.range_from = 1234;
	assert_int_equal(atex_http_call(&res, &r, NULL), 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "{\"a\": 1}");
	assert_int_equal(res.body_len, 8);
	assert_string_equal(res.content_type, "application/json");
	assert_int_equal(res.tries, 1);
	assert_int_equal(server_requests(s), 1);
	assert_string_equal(s->seen[0].method, "GET");
	assert_string_equal(s->seen[0].path, "/v0.1/requests/abc?x=1");
	assert_non_null(strstr(s->seen[0].headers,
			       "Authorization: Bearer " TOKEN "\r\n"));
	assert_non_null(strstr(s->seen[0].headers, "Range: bytes=1234-\r\n"));
	assert_non_null(strstr(s->seen[0].headers, "X-Extra: yes\r\n"));
	assert_non_null(
		strstr(s->seen[0].headers, "Accept: application/json\r\n"));
	assert_non_null(strstr(s->seen[0].headers,
			       "User-Agent: atex/" ATEX_VERSION_STRING "\r\n"));
	atex_http_result_clear(&res);
	assert_null(res.body);
	free((char *)r.url);
	server_stop(s);
}

static void test_post_delete_head(void **state)
{
	static const struct step steps[] = {
		{201, NULL, "{\"id\": \"x\"}", 0, 0, false},
		{204, NULL, "", 0, 0, false},
		{200, "Content-Type: text/plain\r\n", "not sent", 0, 0, false},
	};
	struct server *s = server_start(steps, 3);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http_result res;

	r.method = "POST";
	r.url = url_of(s, "/v0.1/requests");
	r.body = "{\"api_key\": \"k\"}";
	assert_int_equal(atex_http_call(&res, &r, NULL), 0);
	assert_int_equal(res.status, 201);
	assert_string_equal(res.body, "{\"id\": \"x\"}");
	atex_http_result_clear(&res);
	assert_string_equal(s->seen[0].method, "POST");
	assert_string_equal(s->seen[0].body, "{\"api_key\": \"k\"}");
	assert_non_null(strstr(s->seen[0].headers,
			       "Content-Type: application/json\r\n"));
	assert_null(strstr(s->seen[0].headers, "Authorization"));
	free((char *)r.url);

	r.method = "DELETE";
	r.url = url_of(s, "/v0.1/requests/x");
	r.body = NULL;
	r.token = TOKEN;
	assert_int_equal(atex_http_call(&res, &r, NULL), 0);
	assert_int_equal(res.status, 204);
	assert_string_equal(res.body, "");
	assert_int_equal(res.body_len, 0);
	atex_http_result_clear(&res);
	assert_string_equal(s->seen[1].method, "DELETE");
	assert_string_equal(s->seen[1].path, "/v0.1/requests/x");
	assert_non_null(strstr(s->seen[1].headers,
			       "Authorization: Bearer " TOKEN "\r\n"));

	r.method = "HEAD";
	assert_int_equal(atex_http_call(&res, &r, NULL), 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "");
	assert_string_equal(res.content_type, "text/plain");
	atex_http_result_clear(&res);
	assert_string_equal(s->seen[2].method, "HEAD");
	assert_int_equal(server_requests(s), 3);
	free((char *)r.url);
	server_stop(s);
}

static void test_bad_request(void **state)
{
	static const char *const bad[] = {"X-A: b\r\nX-Injected: 1", NULL};
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http_result res;

	r.method = "GET";
	assert_int_equal(atex_http_call(&res, &r, NULL), ATEX_EINVAL);
	r.url = "http://127.0.0.1:1/";
	r.headers = bad;
	assert_int_equal(atex_http_call(&res, &r, NULL), ATEX_EINVAL);
	assert_string_equal(atex_error_last(),
			    "GET http://127.0.0.1:1/: an extra header that is "
			    "not one 'Name: value' line");
	r.headers = NULL;
	r.token = "a\nb";
	assert_int_equal(atex_http_call(&res, &r, NULL), ATEX_EINVAL);
	assert_null(strstr(atex_error_last(), "a\nb"));
}

/* ------------------------------------------------------------------------
 * Retries
 */

static void test_retry_503_post(void **state)
{
	static const struct step steps[] = {
		{503, NULL, "busy", 0, 0, false},
		{503, NULL, "busy", 0, 0, false},
		{503, NULL, "busy", 0, 0, false},
		{200, NULL, "{}", 0, 0, false},
	};
	struct server *s = server_start(steps, 4);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct done d;

	r.method = "POST";
	r.url = url_of(s, "/v0.1/requests");
	r.body = "{\"n\": 1}";
	exchange(&r, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.status, 200);
	assert_int_equal(d.tries, 4);
	assert_string_equal(d.body, "{}");
	assert_int_equal(server_requests(s), 4);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(s->seen[i].method, "POST");
		assert_string_equal(s->seen[i].body, "{\"n\": 1}");
	}
	/* The backoff doubles: 10, 20, 40 ms between the tries. */
	assert_true(s->seen[1].at_ms - s->seen[0].at_ms >= 9);
	assert_true(s->seen[3].at_ms - s->seen[2].at_ms >= 39);
	done_clear(&d);
	free((char *)r.url);
	server_stop(s);
}

static void test_no_retry_4xx(void **state)
{
	static const struct step steps[] = {
		{404, NULL, "{\"detail\": \"no\"}", 0, 0, false},
		{401, NULL, "{\"detail\": \"who\"}", 0, 0, false},
		{200, NULL, "", 0, 0, false},
	};
	struct server *s = server_start(steps, 3);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct done d;

	r.method = "GET";
	r.url = url_of(s, "/x");
	exchange(&r, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.status, 404);
	assert_int_equal(d.tries, 1);
	assert_string_equal(d.body, "{\"detail\": \"no\"}");
	done_clear(&d);
	exchange(&r, &d);
	assert_int_equal(d.status, 401);
	assert_int_equal(d.tries, 1);
	done_clear(&d);
	assert_int_equal(server_requests(s), 2);
	free((char *)r.url);
	server_stop(s);
}

static void test_retry_dropped(void **state)
{
	static const struct step steps[] = {
		{0, NULL, NULL, 0, 0, false},
		{408, NULL, "", 0, 0, false},
		{429, NULL, "", 0, 0, false},
		{200, NULL, "ok", 0, 0, false},
	};
	struct server *s = server_start(steps, 4);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct done d;

	r.method = "POST";
	r.url = url_of(s, "/x");
	exchange(&r, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.status, 200);
	assert_int_equal(d.tries, 4);
	done_clear(&d);

	/* retry off: the dropped connection is the end. */
	r.retry = false;
	s->n_requests = 0;
	exchange(&r, &d);
	assert_int_equal(d.rc, ATEX_EIO);
	assert_non_null(strstr(d.error, "POST http://127.0.0.1:"));
	assert_non_null(strstr(d.error, "(1 try)"));
	done_clear(&d);
	free((char *)r.url);
	server_stop(s);
}

static void test_retry_total(void **state)
{
	static const struct step steps[] = {
		{503, NULL, "still down", 0, 0, false},
	};
	struct server *s = server_start(steps, 1);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct done d;
	double t0;
	char url[128];

	/* Replies all along: the last one is the answer. */
	r.method = "GET";
	r.url = url_of(s, "/x");
	r.token = TOKEN;
	r.retry_total_ms = 300;
	t0 = atex_monotonic_ms();
	exchange(&r, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.status, 503);
	assert_string_equal(d.body, "still down");
	assert_true(d.tries >= 3);
	assert_int_equal((size_t)d.tries, server_requests(s));
	assert_true(d.at_ms - t0 >= 250);
	assert_true(d.at_ms - t0 < 2000);
	done_clear(&d);
	free((char *)r.url);
	server_stop(s);

	/* No server at all: ATEX_EIO naming the URL, never the token. */
	snprintf(url, sizeof(url), "http://user:pw@127.0.0.1:%d/v0.1/x",
		 closed_port());
	r.url = url;
	t0 = atex_monotonic_ms();
	exchange(&r, &d);
	assert_int_equal(d.rc, ATEX_EIO);
	assert_true(d.at_ms - t0 >= 250);
	assert_non_null(strstr(d.error, "GET http://127.0.0.1:"));
	assert_non_null(strstr(d.error, "/v0.1/x: "));
	assert_non_null(strstr(d.error, "tries)"));
	assert_null(strstr(d.error, "pw"));
	assert_null(strstr(d.error, TOKEN));
	done_clear(&d);
}

static void test_retry_after(void **state)
{
	static const struct step steps[] = {
		{429, "Retry-After: 1\r\n", "", 0, 0, false},
		{503, "Retry-After: 3600\r\n", "", 0, 0, false},
		{200, NULL, "", 0, 0, false},
	};
	struct server *s = server_start(steps, 3);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http *h;
	struct done d = {0};
	double gap;

	r.method = "GET";
	r.url = url_of(s, "/x");
	assert_int_equal(atex_http_new(&h, 0), 0);
	atex_http_set_backoff(h, 10, 1500);
	assert_int_equal(atex_http_start(h, &r, on_done, &d, NULL), 0);
	run_until(h, &d);
	assert_int_equal(d.status, 200);
	assert_int_equal(d.tries, 3);
	/* Retry-After: 1 waited 1 s, not the 10 ms backoff... */
	gap = s->seen[1].at_ms - s->seen[0].at_ms;
	assert_true(gap >= 990);
	/* ...and an hour was capped at the maximum backoff. */
	gap = s->seen[2].at_ms - s->seen[1].at_ms;
	assert_true(gap >= 1490 && gap < 3000);
	done_clear(&d);
	atex_http_free(h);
	free((char *)r.url);
	server_stop(s);
}

static void test_try_timeout_retried(void **state)
{
	static const struct step steps[] = {
		{200, NULL, "too late", 1000, 0, false},
		{200, NULL, "in time", 0, 0, false},
	};
	struct server *s = server_start(steps, 2);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct done d;

	r.method = "GET";
	r.url = url_of(s, "/x");
	r.timeout_ms = 200;
	exchange(&r, &d);
	assert_int_equal(d.rc, 0);
	assert_string_equal(d.body, "in time");
	assert_int_equal(d.tries, 2);
	done_clear(&d);
	free((char *)r.url);
	server_stop(s);
}

static void test_redirects(void **state)
{
	static const struct step steps[] = {
		{302, "Location: /there\r\n", "", 0, 0, false},
		{200, NULL, "here", 0, 0, false},
		{302, "Location: /there\r\n", "", 0, 0, false},
	};
	struct server *s = server_start(steps, 3);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct done d;

	/* GET follows... */
	r.method = "GET";
	r.url = url_of(s, "/x");
	exchange(&r, &d);
	assert_int_equal(d.status, 200);
	assert_string_equal(d.body, "here");
	assert_string_equal(s->seen[1].path, "/there");
	done_clear(&d);
	/* ...a POST is not sent again elsewhere. */
	r.method = "POST";
	r.body = "{}";
	exchange(&r, &d);
	assert_int_equal(d.status, 302);
	assert_int_equal(server_requests(s), 3);
	done_clear(&d);
	free((char *)r.url);
	server_stop(s);
}

/* Callbacks start and cancel exchanges: the client keeps its footing. */
struct chain {
	struct atex_http *h;
	const struct atex_http_request *r;
	uint64_t victim;
	struct done *victim_done, *next_done;
	struct done own;
};

static void on_chain(void *arg, int rc, const struct atex_http_reply *reply)
{
	struct chain *c = arg;

	on_done(&c->own, rc, reply);
	atex_http_cancel(c->h, c->victim);
	assert_true(c->victim_done->done);
	assert_int_equal(
		atex_http_start(c->h, c->r, on_done, c->next_done, NULL), 0);
}

static void test_callback_reentry(void **state)
{
	static const struct step steps[] = {
		{200, NULL, "slow", 3000, 0, false},
		{200, NULL, "first", 100, 0, false},
		{200, NULL, "next", 0, 0, false},
	};
	struct server *s = server_start(steps, 3);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http *h = fast_client(0);
	struct done victim = {0}, next = {0};
	struct chain c = {h, &r, 0, &victim, &next, {0}};

	r.method = "GET";
	r.url = url_of(s, "/x");
	assert_int_equal(atex_http_start(h, &r, on_done, &victim, &c.victim),
			 0);
	while (server_requests(s) < 1)
		atex_http_run(h, 10, NULL, 0);
	assert_int_equal(atex_http_start(h, &r, on_chain, &c, NULL), 0);
	run_until(h, &c.own);
	assert_string_equal(c.own.body, "first");
	assert_int_equal(victim.rc, ATEX_ECANCELED);
	run_until(h, &next);
	assert_int_equal(next.rc, 0);
	assert_string_equal(next.body, "next");
	assert_int_equal(atex_http_pending(h), 0);
	done_clear(&c.own);
	done_clear(&next);
	done_clear(&victim);
	atex_http_free(h);
	free((char *)r.url);
	server_stop(s);
}

/* ------------------------------------------------------------------------
 * Concurrency, cancel, waking up
 */

static void test_max_host_connections(void **state)
{
	static const struct step steps[] = {
		{200, NULL, "slow", 150, 0, false},
	};
	struct server *s = server_start(steps, 1);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http *h = fast_client(2);
	struct done d[6] = {{0}};

	r.method = "GET";
	r.url = url_of(s, "/x");
	for (int i = 0; i < 6; i++)
		assert_int_equal(atex_http_start(h, &r, on_done, &d[i], NULL),
				 0);
	assert_int_equal(atex_http_pending(h), 6);
	for (int i = 0; i < 6; i++)
		run_until(h, &d[i]);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(d[i].status, 200);
		assert_int_equal(d[i].tries, 1);
		done_clear(&d[i]);
	}
	assert_int_equal(server_requests(s), 6);
	assert_int_equal(s->max_active, 2);
	atex_http_free(h);
	free((char *)r.url);
	server_stop(s);
}

static void test_cancel_and_free(void **state)
{
	static const struct step steps[] = {
		{200, NULL, "late", 5000, 0, false},
	};
	struct server *s = server_start(steps, 1);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http *h = fast_client(0);
	struct done d[4] = {{0}};
	uint64_t id[4];

	r.method = "GET";
	r.url = url_of(s, "/x");
	for (int i = 0; i < 4; i++)
		assert_int_equal(atex_http_start(h, &r, on_done, &d[i], &id[i]),
				 0);
	/* Let them reach the server. */
	while (server_requests(s) < 4)
		assert_int_equal(atex_http_run(h, 20, NULL, 0), ATEX_ETIMEDOUT);
	atex_http_cancel(h, id[1]);
	assert_true(d[1].done);
	assert_int_equal(d[1].rc, ATEX_ECANCELED);
	assert_int_equal(atex_http_pending(h), 3);
	atex_http_cancel(h, id[1]); /* already gone: ignored */
	atex_http_cancel(h, 9999);
	assert_int_equal(atex_http_pending(h), 3);
	assert_false(d[0].done);
	atex_http_free(h);
	for (int i = 0; i < 4; i++) {
		assert_true(d[i].done);
		assert_int_equal(d[i].rc, ATEX_ECANCELED);
		done_clear(&d[i]);
	}
	free((char *)r.url);
	server_stop(s);
}

struct poke {
	int fd;		     /* eventfd to write, or -1 */
	struct atex_http *h; /* or wake this */
	atex_cancel *cancel; /* or fire this */
	int after_ms;
	double at_ms;
};

static void *poke_main(void *arg)
{
	struct poke *p = arg;
	uint64_t one = 1;

	usleep((useconds_t)p->after_ms * 1000);
	p->at_ms = atex_monotonic_ms();
	if (p->fd >= 0)
		assert_int_equal(write(p->fd, &one, sizeof(one)), sizeof(one));
	if (p->h)
		atex_http_wake(p->h);
	if (p->cancel)
		atex_cancel_fire(p->cancel);
	return NULL;
}

static void test_run_returns(void **state)
{
	static const struct step steps[] = {
		{200, NULL, "late", 5000, 0, false},
	};
	struct server *s = server_start(steps, 1);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http *h = fast_client(0);
	struct done d = {0};
	struct poke p = {-1, NULL, NULL, 100, 0};
	pthread_t t;
	double t0;
	int efd = eventfd(0, EFD_CLOEXEC);

	r.method = "GET";
	r.url = url_of(s, "/x");
	assert_int_equal(atex_http_start(h, &r, on_done, &d, NULL), 0);

	/* Nothing happens: the timeout. */
	t0 = atex_monotonic_ms();
	assert_int_equal(atex_http_run(h, 50, &efd, 1), ATEX_ETIMEDOUT);
	assert_true(atex_monotonic_ms() - t0 >= 49);

	/* A caller's descriptor. */
	p.fd = efd;
	assert_int_equal(pthread_create(&t, NULL, poke_main, &p), 0);
	assert_int_equal(atex_http_run(h, 3000, &efd, 1), 0);
	assert_true(atex_monotonic_ms() - p.at_ms < 1000);
	pthread_join(t, NULL);
	assert_false(d.done);

	/* atex_http_wake from another thread. */
	p.fd = -1;
	p.h = h;
	assert_int_equal(pthread_create(&t, NULL, poke_main, &p), 0);
	assert_int_equal(atex_http_run(h, 3000, NULL, 0), 0);
	assert_true(atex_monotonic_ms() - p.at_ms < 1000);
	pthread_join(t, NULL);
	/* A wake before the run: that run returns at once. */
	atex_http_wake(h);
	t0 = atex_monotonic_ms();
	assert_int_equal(atex_http_run(h, 3000, NULL, 0), 0);
	assert_true(atex_monotonic_ms() - t0 < 1000);
	assert_false(d.done);
	assert_int_equal(atex_http_pending(h), 1);

	atex_http_free(h);
	assert_int_equal(d.rc, ATEX_ECANCELED);
	close(efd);
	free((char *)r.url);
	server_stop(s);
}

static void test_call_canceled(void **state)
{
	static const struct step steps[] = {
		{200, NULL, "late", 5000, 0, false},
	};
	struct server *s = server_start(steps, 1);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http_result res;
	struct poke p = {-1, NULL, NULL, 200, 0};
	pthread_t t;
	double end;

	r.method = "POST";
	r.url = url_of(s, "/x");
	r.body = "{}";
	assert_int_equal(atex_cancel_new(&p.cancel), 0);
	assert_int_equal(pthread_create(&t, NULL, poke_main, &p), 0);
	assert_int_equal(atex_http_call(&res, &r, p.cancel), ATEX_ECANCELED);
	end = atex_monotonic_ms();
	pthread_join(t, NULL);
	assert_true(end - p.at_ms < 100);
	assert_non_null(strstr(atex_error_last(), "canceled"));
	assert_null(res.body);
	/* Already fired: no request at all. (The first call's may not
	 * have reached the server before the cancel on a slow machine, under
	 * valgrind: at most that one.) */
	assert_int_equal(atex_http_call(&res, &r, p.cancel), ATEX_ECANCELED);
	assert_true(server_requests(s) <= 1);
	atex_cancel_free(p.cancel);
	free((char *)r.url);
	server_stop(s);
}

/* ------------------------------------------------------------------------
 * Messages, logs, limits
 */

static struct atex_buf captured;

static void capture(int level, const char *component, const char *message,
		    void *userdata)
{
	atex_buf_printf(&captured, "%s: %s\n", component, message);
}

static void test_token_never_shown(void **state)
{
	static const struct step steps[] = {
		{503, "Retry-After: 0\r\n", "", 0, 0, false},
		{0, NULL, NULL, 0, 0, false},
		{500, NULL, "", 0, 0, false},
	};
	struct server *s = server_start(steps, 3);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	char *url =
		atex_sprintf("http://me:" TOKEN "@127.0.0.1:%d/x?k=v", s->port);
	struct done d;
	int level = atex_log_get_level();

	atex_log_set_handler(capture, NULL);
	atex_log_set_level(ATEX_LOG_DEBUG);
	r.method = "PUT";
	r.url = url;
	r.token = TOKEN;
	r.body = "{}";
	/* Room for the three tries under valgrind on a busy machine; the
	 * server repeats its last answer (500) after them. */
	r.retry_total_ms = 2000;
	exchange(&r, &d);
	assert_int_equal(d.status, 500);
	done_clear(&d);
	server_stop(s);
	/* And with no answer ever: the error message. */
	free(url);
	url = atex_sprintf("http://me:" TOKEN "@127.0.0.1:%d/x", closed_port());
	r.url = url;
	r.retry_total_ms = 50;
	exchange(&r, &d);
	assert_int_equal(d.rc, ATEX_EIO);
	atex_log_set_handler(NULL, NULL);
	atex_log_set_level(level);

	/* The log says what was retried... */
	assert_non_null(strstr(atex_buf_cstr(&captured), "HTTP 503, try 2 in"));
	assert_non_null(
		strstr(atex_buf_cstr(&captured), "PUT http://127.0.0.1:"));
	assert_non_null(strstr(atex_buf_cstr(&captured), "/x?k=v"));
	/* ...never with the token. */
	assert_null(strstr(atex_buf_cstr(&captured), TOKEN));
	assert_null(strstr(d.error, TOKEN));
	assert_non_null(strstr(d.error, "PUT http://127.0.0.1:"));
	done_clear(&d);
	atex_buf_free(&captured);
	free(url);
}

static void test_url_for_message(void **state)
{
	char long_url[400];
	char *m;

	m = atex_http_url_for_message("https://user:pw@api.example/v0.1/x");
	assert_string_equal(m, "https://api.example/v0.1/x");
	free(m);
	m = atex_http_url_for_message("https://tok@host?a=b@c");
	assert_string_equal(m, "https://host?a=b@c");
	free(m);
	m = atex_http_url_for_message("https://host/path@x");
	assert_string_equal(m, "https://host/path@x");
	free(m);
	m = atex_http_url_for_message("u:p@host:80/x");
	assert_string_equal(m, "host:80/x");
	free(m);
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	memcpy(long_url, "https://h/", 10);
	m = atex_http_url_for_message(long_url);
	assert_int_equal(strlen(m), 200);
	assert_string_equal(m + 197, "...");
	assert_memory_equal(m, long_url, 197);
	free(m);
}

static void test_reply_too_big(void **state)
{
	static const struct step steps[] = {
		{200, NULL, NULL, 0, BIG_REPLY, true},
		{200, NULL, NULL, 0, BIG_REPLY, false},
		{200, NULL, NULL, 0, BIG_REPLY - 1, false},
	};
	struct server *s = server_start(steps, 3);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct done d;

	r.method = "GET";
	r.url = url_of(s, "/big");
	/* Announced by Content-Length. */
	exchange(&r, &d);
	assert_int_equal(d.rc, ATEX_EIO);
	assert_non_null(strstr(d.error, "reply too big"));
	assert_non_null(strstr(d.error, "/big"));
	done_clear(&d);
	/* Streamed with no length. */
	exchange(&r, &d);
	assert_int_equal(d.rc, ATEX_EIO);
	assert_non_null(strstr(d.error, "reply too big"));
	done_clear(&d);
	/* 64 MiB exactly is fine. */
	exchange(&r, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.body_len, BIG_REPLY - 1);
	done_clear(&d);
	assert_int_equal(server_requests(s), 3);
	free((char *)r.url);
	server_stop(s);
}

static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* 50 exchanges waiting for a slow server cost one poll, not a busy loop:
 * the thread's CPU time over the wait stays small. */
static void test_idle_cpu(void **state)
{
	static const struct step steps[] = {
		/* Long enough that starting the 50 (slow under valgrind on a
		 * busy machine) ends well before the first answer. */
		{200, NULL, "{}", 6000, 0, false},
	};
	struct server *s = server_start(steps, 1);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http *h = fast_client(64);
	struct done d[50] = {{0}};
	double cpu, t0, waited, end = atex_monotonic_ms() + 15000;

	r.method = "GET";
	r.url = url_of(s, "/x");
	for (int i = 0; i < 50; i++)
		assert_int_equal(atex_http_start(h, &r, on_done, &d[i], NULL),
				 0);
	while (server_requests(s) < 50) {
		atex_http_run(h, 20, NULL, 0);
		assert_true(atex_monotonic_ms() < end);
	}
	/* All 50 wait now: until the first answer, nothing is to be done. */
	t0 = atex_monotonic_ms();
	cpu = thread_cpu_ms();
	while (!d[0].done && atex_http_run(h, 5000, NULL, 0) == ATEX_ETIMEDOUT)
		;
	cpu = thread_cpu_ms() - cpu;
	waited = atex_monotonic_ms() - t0;
	print_message("waited %.0f ms, %.1f ms of CPU\n", waited, cpu);
	/* A busy loop would burn about the whole wait, even on a loaded
	 * machine more than a quarter of it. */
	assert_true(waited >= 300);
	assert_true(cpu < 200);
	assert_true(cpu < waited / 4);
	for (int i = 0; i < 50; i++) {
		run_until(h, &d[i]);
		assert_int_equal(d[i].status, 200);
		done_clear(&d[i]);
	}
	atex_http_free(h);
	free((char *)r.url);
	server_stop(s);
}

/* atex_http_no_retry: an exchange waiting for its next try ends at once
 * (ECANCELED, no try more); one in flight ends with that try. */
static void test_no_retry(void **state)
{
	static const struct step steps[] = {
		{503, NULL, "busy", 0, 0, false},
		{503, NULL, "busy", 300, 0, false},
		{200, NULL, "{}", 0, 0, false},
	};
	struct server *s = server_start(steps, 3);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http *h;
	struct done d = {0};
	uint64_t id;
	double end;

	(void)state;
	assert_int_equal(atex_http_new(&h, 0), 0);
	atex_http_set_backoff(h, 400, 400);
	r.method = "POST";
	r.url = url_of(s, "/v0.1/requests");
	assert_int_equal(atex_http_start(h, &r, on_done, &d, &id), 0);
	for (end = atex_monotonic_ms() + 200; atex_monotonic_ms() < end;)
		atex_http_run(h, 50, NULL, 0);
	assert_int_equal(server_requests(s), 1);
	assert_false(d.done);
	atex_http_no_retry(h, id);
	assert_true(d.done);
	assert_int_equal(d.rc, ATEX_ECANCELED);
	for (end = atex_monotonic_ms() + 600; atex_monotonic_ms() < end;)
		atex_http_run(h, 50, NULL, 0);
	assert_int_equal(server_requests(s), 1);
	done_clear(&d);

	/* In flight (the server answers in 300 ms): that answer is final. */
	assert_int_equal(atex_http_start(h, &r, on_done, &d, &id), 0);
	for (end = atex_monotonic_ms() + 100; atex_monotonic_ms() < end;)
		atex_http_run(h, 20, NULL, 0);
	atex_http_no_retry(h, id);
	assert_false(d.done);
	run_until(h, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.status, 503);
	assert_int_equal(d.tries, 1);
	assert_int_equal(server_requests(s), 2);
	done_clear(&d);
	atex_http_free(h);
	free((char *)r.url);
	server_stop(s);
}

/* Content-Range: in the reply, and read. */
static void test_content_range(void **state)
{
	static const struct step steps[] = {
		{206, "Content-Range: bytes 4-7/20\r\n", "abcd", 0, 0, false},
		{200, NULL, "whole", 0, 0, false},
	};
	struct server *s = server_start(steps, 2);
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	long long a, b, t;
	struct done d;

	(void)state;
	r.method = "GET";
	r.url = url_of(s, "/artifacts/x/pipeline.log");
	r.range_from = 4;
	exchange(&r, &d);
	assert_int_equal(d.status, 206);
	assert_string_equal(d.content_range, "bytes 4-7/20");
	done_clear(&d);
	exchange(&r, &d);
	assert_string_equal(d.content_range, "");
	done_clear(&d);
	free((char *)r.url);
	server_stop(s);

	assert_true(atex_http_content_range("bytes 4-7/20", &a, &b, &t));
	assert_true(a == 4 && b == 7 && t == 20);
	assert_true(atex_http_content_range("bytes 0-0/*", &a, &b, &t));
	assert_true(a == 0 && b == 0 && t == -1);
	assert_false(atex_http_content_range("bytes */20", &a, &b, &t));
	assert_false(atex_http_content_range("bytes 7-4/20", &a, &b, &t));
	assert_false(atex_http_content_range("bytes 4-20/20", &a, &b, &t));
	assert_false(atex_http_content_range("bytes 4-7/20x", &a, &b, &t));
	assert_false(atex_http_content_range("items 4-7/20", &a, &b, &t));
	assert_false(atex_http_content_range("", &a, &b, &t));
	assert_false(atex_http_content_range(NULL, &a, &b, &t));
	assert_false(atex_http_content_range("bytes 1-99999999999999999999/9",
					     &a, &b, &t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_headers),
		cmocka_unit_test(test_post_delete_head),
		cmocka_unit_test(test_bad_request),
		cmocka_unit_test(test_retry_503_post),
		cmocka_unit_test(test_no_retry_4xx),
		cmocka_unit_test(test_no_retry),
		cmocka_unit_test(test_content_range),
		cmocka_unit_test(test_retry_dropped),
		cmocka_unit_test(test_retry_total),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_try_timeout_retried),
		cmocka_unit_test(test_redirects),
		cmocka_unit_test(test_callback_reentry),
		cmocka_unit_test(test_max_host_connections),
		cmocka_unit_test(test_cancel_and_free),
		cmocka_unit_test(test_run_returns),
		cmocka_unit_test(test_call_canceled),
		cmocka_unit_test(test_token_never_shown),
		cmocka_unit_test(test_url_for_message),
		cmocka_unit_test(test_reply_too_big),
		cmocka_unit_test(test_idle_cpu),
	};

	/* libcurl honours proxy variables: the server is here. */
	setenv("no_proxy", "127.0.0.1", 1);
	setenv("NO_PROXY", "127.0.0.1", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
