/*
 * static.c - the static provisioner: a fixed pool of SSH machines, each
 * lent to one user at a time, connected before it is handed out.
 *
 * Every host has one connection (made at creation, so bad ssh options
 * fail early) and one thread, alive from start to stop. The thread sleeps
 * on a condition variable until its host is idle and a request is
 * pending, connects (the ssh master; cancelable through the provisioner's
 * abort token) and queues the host as a ready remote. Connecting in the
 * background is what lets ready_fd mean "a remote is ready now" and lets
 * a slow or dead host hold up nobody.
 *
 * A host that fails to connect: the request goes back to the pool (another
 * host may take it), a warning with ssh's reason is logged, and the host
 * retries after 2 s, then 4 s. After STATIC_ATTEMPTS failures in a row it
 * is dropped until the next start, with a warning; when every host has
 * been dropped, get_remote reports the last failure instead of waiting
 * forever. Retrying covers a machine still booting; giving up covers a
 * wrong host name or key, which no amount of waiting fixes.
 *
 * Remote handles are the hosts themselves, valid until the provisioner
 * is freed; a repeated or late release is ignored.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atex/provisioner.h"
#include "provisioner/queue.h"
#include "provisioner/static.h"
#include "util/util.h"

#define STATIC_ATTEMPTS 3
#define STATIC_RETRY_MS 2000

enum host_state {
	HOST_IDLE,	 /* disconnected, may be connected */
	HOST_CONNECTING, /* its thread is connecting */
	HOST_QUEUED,	 /* connected, in the ready queue */
	HOST_OUT,	 /* handed out */
	HOST_RELEASING,	 /* being disconnected by release */
	HOST_GONE,	 /* dropped after repeated failures */
};

struct static_provisioner;

struct static_host {
	struct atex_remote base; /* first: the remote handed out */
	struct static_provisioner *sp;
	char *entry;
	atex_connection *conn;
	enum host_state state;
	int failures;
	pthread_t thread;
	bool has_thread;
};

struct static_provisioner {
	struct atex_provisioner base;
	pthread_mutex_t lock; /* guards everything below but the queue */
	pthread_cond_t wake;  /* host threads wait for work here */
	struct atex_remote_queue *ready;
	atex_cancel *abort; /* interrupts connects; fired by abort/stop */
	bool started;
	bool stopping; /* host threads must end */
	long pending;  /* LONG_MAX: unlimited */
	int n_gone;
	int connect_limit_ms;
	int n_hosts;
	struct static_host *hosts;
};

#define to_sp(p) ((struct static_provisioner *)(p))

/* ------------------------------------------------------------------------
 * Host entries.
 */

static int bad_entry(const char *entry, const char *why)
{
	return atex_error_set(ATEX_EINVAL, "static: bad host '%s': %s", entry,
			      why);
}

/* Parses ":port" at s (or nothing); 0 or ATEX_EINVAL. */
static int parse_port(int *port, const char *s, const char *entry)
{
	char *end;
	long value;

	if (!*s)
		return 0;
	if (*s != ':' || s[1] < '0' || s[1] > '9')
		return bad_entry(entry, "expected ':PORT' after the host");
	value = strtol(s + 1, &end, 10);
	if (*end || value < 1 || value > 65535)
		return bad_entry(entry, "the port is not a number 1-65535");
	*port = (int)value;
	return 0;
}

/* Splits "host[:port]" or "[v6][:port]" into h->host and h->port. */
static int parse_hostport(struct atex_static_host *h, const char *s,
			  const char *entry)
{
	const char *end;

	if (*s == '[') {
		end = strchr(s, ']');
		if (!end)
			return bad_entry(entry,
					 "no ']' after the IPv6 address");
		if (end == s + 1)
			return bad_entry(entry, "no host");
		h->host = atex_strndup(s + 1, (size_t)(end - s - 1));
		if (!h->host)
			return ATEX_ENOMEM;
		return parse_port(&h->port, end + 1, entry);
	}
	end = strchr(s, ':');
	if (end && strchr(end + 1, ':'))
		return bad_entry(entry, "an IPv6 address goes in brackets: "
					"[ADDRESS]:PORT");
	if (!end)
		end = s + strlen(s);
	if (end == s)
		return bad_entry(entry, "no host");
	h->host = atex_strndup(s, (size_t)(end - s));
	if (!h->host)
		return ATEX_ENOMEM;
	return parse_port(&h->port, end, entry);
}

int atex_static_host_parse(struct atex_static_host *out, const char *entry)
{
	struct atex_static_host h = {0};
	const char *at, *rest = entry;
	int rc;

	if (!entry || !*entry)
		return atex_error_set(ATEX_EINVAL, "static: empty host entry");
	if (strpbrk(entry, " \t\r\n")) {
		rc = bad_entry(entry, "whitespace");
		goto out;
	}
	at = strchr(entry, '@');
	if (at) {
		if (at == entry || strchr(at + 1, '@')) {
			rc = bad_entry(entry, "expected USER@HOST");
			goto out;
		}
		h.user = atex_strndup(entry, (size_t)(at - entry));
		if (!h.user) {
			rc = ATEX_ENOMEM;
			goto out;
		}
		rest = at + 1;
	}
	rc = parse_hostport(&h, rest, entry);
	if (rc == 0 && (h.host[0] == '-' || (h.user && h.user[0] == '-')))
		rc = bad_entry(entry, "a user or host may not start with '-'");
out:
	if (rc < 0) {
		atex_static_host_clear(&h);
		return rc;
	}
	*out = h;
	return 0;
}

void atex_static_host_clear(struct atex_static_host *h)
{
	free(h->user);
	free(h->host);
	h->user = NULL;
	h->host = NULL;
	h->port = 0;
}

/* ------------------------------------------------------------------------
 * Remotes.
 */

static atex_connection *host_connection(atex_remote *r)
{
	return ((struct static_host *)r)->conn;
}

static const char *host_name(const atex_remote *r)
{
	return atex_connection_name(((const struct static_host *)r)->conn);
}

static void host_release(atex_remote *r)
{
	struct static_host *h = (struct static_host *)r;
	struct static_provisioner *sp = h->sp;

	pthread_mutex_lock(&sp->lock);
	if (h->state != HOST_OUT) {
		pthread_mutex_unlock(&sp->lock);
		return;
	}
	/* Nobody else touches the connection while it is releasing. */
	h->state = HOST_RELEASING;
	pthread_mutex_unlock(&sp->lock);

	if (atex_connection_disconnect(h->conn) < 0)
		atex_log(ATEX_LOG_WARNING, "static", "%s: %s", h->entry,
			 atex_error_last());

	pthread_mutex_lock(&sp->lock);
	if (h->state == HOST_RELEASING)
		h->state = HOST_IDLE;
	pthread_cond_broadcast(&sp->wake);
	pthread_mutex_unlock(&sp->lock);
}

static const struct atex_remote_ops host_ops = {
	.version = ATEX_REMOTE_OPS_VERSION,
	.connection = host_connection,
	.name = host_name,
	.release = host_release,
};

/* ------------------------------------------------------------------------
 * Host threads.
 */

/* Waits on the condition variable for at most ms, or until stopping.
 * Lock held. */
static void wait_retry(struct static_provisioner *sp, int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!sp->stopping &&
	       pthread_cond_timedwait(&sp->wake, &sp->lock, &until) == 0)
		;
}

/* Books a failed connect: the request goes back, the host waits or is
 * dropped. `why` is ssh's message. Lock held. */
static void connect_failed(struct static_host *h, int code, const char *why)
{
	struct static_provisioner *sp = h->sp;
	char *message;
	bool permanent;

	if (sp->pending != LONG_MAX)
		sp->pending++;
	pthread_cond_broadcast(&sp->wake);
	h->failures++;
	/* Authentication does not heal by waiting: drop the host now. */
	permanent = strstr(why, "Permission denied") ||
		    strstr(why, "Host key verification failed");
	if (!permanent && h->failures < STATIC_ATTEMPTS) {
		int ms = STATIC_RETRY_MS << (h->failures - 1);

		atex_log(ATEX_LOG_WARNING, "static",
			 "%s: cannot connect (attempt %d of %d), retrying in "
			 "%d s: %s",
			 h->entry, h->failures, STATIC_ATTEMPTS, ms / 1000,
			 why);
		wait_retry(sp, ms);
		h->state = HOST_IDLE;
		return;
	}
	atex_log(ATEX_LOG_WARNING, "static",
		 "%s: dropped after %d failed connect%s: %s", h->entry,
		 h->failures, h->failures == 1 ? "" : "s", why);
	h->state = HOST_GONE;
	if (++sp->n_gone < sp->n_hosts)
		return;
	message = atex_sprintf("static: no host could be connected; last: "
			       "%s: %s",
			       h->entry, why);
	atex_remote_queue_fail(sp->ready, code, message ? message : why);
	free(message);
}

/* Connects the host with the lock released; 0 or an error code with the
 * message in *why (a copy, caller frees). */
static int connect_host(struct static_host *h, char **why)
{
	struct static_provisioner *sp = h->sp;
	int rc;

	pthread_mutex_unlock(&sp->lock);
	rc = atex_connection_connect(h->conn, sp->connect_limit_ms, sp->abort);
	if (rc < 0) {
		*why = strdup(atex_error_last());
		/* A half-started master must not linger. */
		atex_connection_disconnect(h->conn);
	}
	pthread_mutex_lock(&sp->lock);
	return rc;
}

static void *host_thread(void *arg)
{
	struct static_host *h = arg;
	struct static_provisioner *sp = h->sp;
	char *why = NULL;
	int rc;

	pthread_mutex_lock(&sp->lock);
	for (;;) {
		while (!sp->stopping &&
		       !(h->state == HOST_IDLE && sp->pending > 0))
			pthread_cond_wait(&sp->wake, &sp->lock);
		if (sp->stopping)
			break;
		h->state = HOST_CONNECTING;
		if (sp->pending != LONG_MAX)
			sp->pending--;
		rc = connect_host(h, &why);
		if (rc == 0 && !sp->stopping)
			rc = atex_remote_queue_push(sp->ready, &h->base);
		if (rc == 0) {
			/* When stopping, stop() disconnects it. */
			h->state = sp->stopping ? HOST_IDLE : HOST_QUEUED;
			h->failures = 0;
			continue;
		}
		if (sp->stopping)
			break;
		connect_failed(h, rc, why ? why : atex_error_last());
		free(why);
		why = NULL;
		if (h->state == HOST_GONE)
			break;
	}
	pthread_mutex_unlock(&sp->lock);
	free(why);
	return NULL;
}

/* ------------------------------------------------------------------------
 * The provisioner.
 */

/* Ends and joins every host thread. Not with the lock held. */
static void stop_threads(struct static_provisioner *sp)
{
	pthread_mutex_lock(&sp->lock);
	sp->stopping = true;
	atex_cancel_fire(sp->abort);
	pthread_cond_broadcast(&sp->wake);
	pthread_mutex_unlock(&sp->lock);
	for (int i = 0; i < sp->n_hosts; i++) {
		if (!sp->hosts[i].has_thread)
			continue;
		pthread_join(sp->hosts[i].thread, NULL);
		sp->hosts[i].has_thread = false;
	}
}

static int static_stop(atex_provisioner *p)
{
	struct static_provisioner *sp = to_sp(p);
	int rc = 0;

	if (!sp->started)
		return 0;
	stop_threads(sp);
	while (atex_remote_queue_take(sp->ready))
		;
	/* Every host, handed out or not: stop leaves no master behind. */
	for (int i = 0; i < sp->n_hosts; i++) {
		struct static_host *h = &sp->hosts[i];

		if (atex_connection_disconnect(h->conn) < 0 && rc == 0)
			rc = atex_error_last_code();
		h->state = HOST_IDLE;
		h->failures = 0;
	}
	sp->started = false;
	return rc;
}

static int static_start(atex_provisioner *p)
{
	struct static_provisioner *sp = to_sp(p);
	int rc;

	if (sp->started)
		return 0;
	atex_cancel_reset(sp->abort);
	atex_remote_queue_fail(sp->ready, 0, NULL);
	sp->stopping = false;
	sp->pending = 0;
	sp->n_gone = 0;
	sp->started = true;
	for (int i = 0; i < sp->n_hosts; i++) {
		struct static_host *h = &sp->hosts[i];

		rc = pthread_create(&h->thread, NULL, host_thread, h);
		if (rc != 0) {
			static_stop(p);
			return atex_error_set(
				ATEX_EIO, "static: no thread for %s", h->entry);
		}
		h->has_thread = true;
	}
	return 0;
}

static int static_provision(atex_provisioner *p, int count)
{
	struct static_provisioner *sp = to_sp(p);
	int rc = 0;

	pthread_mutex_lock(&sp->lock);
	if (!sp->started)
		rc = atex_error_set(ATEX_EINVAL, "static: not started");
	else if (sp->stopping)
		rc = atex_error_set(ATEX_ECANCELED, "static: aborted");
	else if (count == ATEX_PROVISION_UNLIMITED ||
		 sp->pending > LONG_MAX - count)
		sp->pending = LONG_MAX;
	else
		sp->pending += count;
	pthread_cond_broadcast(&sp->wake);
	pthread_mutex_unlock(&sp->lock);
	return rc;
}

static int static_get_remote(atex_remote **out, atex_provisioner *p,
			     int timeout_ms)
{
	struct static_provisioner *sp = to_sp(p);
	struct static_host *h;
	atex_remote *r;
	int rc;

	if (!sp->started)
		return atex_error_set(ATEX_EINVAL, "static: not started");
	rc = atex_remote_queue_pop(&r, sp->ready, timeout_ms, sp->abort);
	if (rc < 0)
		return rc;
	h = (struct static_host *)r;
	pthread_mutex_lock(&sp->lock);
	if (h->state == HOST_QUEUED && !sp->stopping) {
		h->state = HOST_OUT;
		*out = r;
	} else {
		rc = atex_error_set(ATEX_ECANCELED, "static: aborted");
	}
	pthread_mutex_unlock(&sp->lock);
	return rc;
}

static int static_clear(atex_provisioner *p)
{
	struct static_provisioner *sp = to_sp(p);

	pthread_mutex_lock(&sp->lock);
	sp->pending = 0;
	pthread_mutex_unlock(&sp->lock);
	return 0;
}

/*
 * Ends every wait and connect at once. The masters of hosts that are
 * connected are processes on this machine, not outside reservations:
 * those in the queue are disconnected here, those handed out by their
 * release or by stop, which the owner calls next.
 */
static void static_abort(atex_provisioner *p)
{
	struct static_provisioner *sp = to_sp(p);
	struct atex_vec drained = ATEX_VEC_INIT;
	atex_remote *r;

	pthread_mutex_lock(&sp->lock);
	sp->stopping = true;
	atex_cancel_fire(sp->abort);
	pthread_cond_broadcast(&sp->wake);
	while ((r = atex_remote_queue_take(sp->ready))) {
		struct static_host *h = (struct static_host *)r;

		h->state = HOST_RELEASING;
		if (atex_vec_push(&drained, h) < 0)
			h->state = HOST_IDLE; /* stop disconnects it */
	}
	pthread_mutex_unlock(&sp->lock);
	for (size_t i = 0; i < drained.len; i++) {
		struct static_host *h = drained.items[i];

		atex_connection_disconnect(h->conn);
		pthread_mutex_lock(&sp->lock);
		h->state = HOST_IDLE;
		pthread_mutex_unlock(&sp->lock);
	}
	atex_vec_free(&drained);
}

static int static_ready_fd(const atex_provisioner *p)
{
	return atex_remote_queue_fd(to_sp(p)->ready);
}

static const char *static_name(const atex_provisioner *p)
{
	return "static";
}

static void static_free(atex_provisioner *p)
{
	struct static_provisioner *sp = to_sp(p);

	static_stop(p);
	for (int i = 0; sp->hosts && i < sp->n_hosts; i++) {
		atex_connection_free(sp->hosts[i].conn);
		free(sp->hosts[i].entry);
	}
	free(sp->hosts);
	atex_remote_queue_free(sp->ready);
	atex_cancel_free(sp->abort);
	pthread_cond_destroy(&sp->wake);
	pthread_mutex_destroy(&sp->lock);
	free(sp);
}

static const struct atex_provisioner_ops static_ops = {
	.version = ATEX_PROVISIONER_OPS_VERSION,
	.start = static_start,
	.stop = static_stop,
	.provision = static_provision,
	.get_remote = static_get_remote,
	.clear = static_clear,
	.abort = static_abort,
	.ready_fd = static_ready_fd,
	.name = static_name,
	.free = static_free,
};

/* Makes host i from its entry and the base options. */
static int host_init(struct static_provisioner *sp, int i, const char *entry,
		     const struct atex_ssh_options *base)
{
	struct static_host *h = &sp->hosts[i];
	struct atex_ssh_options opts = ATEX_SSH_OPTIONS_INIT;
	struct atex_static_host addr = {0};
	int rc;

	/* A program built against an older header passed a shorter struct:
	 * only the fields of its version are read. */
	opts.identity = base->identity;
	opts.options = base->options;
	opts.connect_timeout_s = base->connect_timeout_s;
	opts.keepalive_s = base->keepalive_s;
	opts.ssh_program = base->ssh_program;
	opts.max_sessions = base->max_sessions;
	if (base->version >= 2)
		opts.strict_host_keys = base->strict_host_keys;

	h->base.ops = &host_ops;
	h->sp = sp;
	h->entry = atex_strdup(entry);
	if (!h->entry)
		return ATEX_ENOMEM;
	rc = atex_static_host_parse(&addr, entry);
	if (rc < 0)
		return rc;
	opts.host = addr.host;
	opts.user = addr.user;
	opts.port = addr.port;
	rc = atex_ssh_connection_new(&h->conn, &opts);
	atex_static_host_clear(&addr);
	return rc;
}

static int hosts_init(struct static_provisioner *sp, const char *const *hosts,
		      const struct atex_ssh_options *base)
{
	int rc;

	while (hosts[sp->n_hosts])
		sp->n_hosts++;
	if (sp->n_hosts == 0)
		return atex_error_set(ATEX_EINVAL, "static: no hosts");
	sp->hosts = atex_calloc((size_t)sp->n_hosts, sizeof(*sp->hosts));
	if (!sp->hosts)
		return ATEX_ENOMEM;
	for (int i = 0; i < sp->n_hosts; i++) {
		rc = host_init(sp, i, hosts[i], base);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static struct static_provisioner *static_alloc(void)
{
	struct static_provisioner *sp = atex_calloc(1, sizeof(*sp));
	pthread_condattr_t attr;

	if (!sp)
		return NULL;
	sp->base.ops = &static_ops;
	pthread_mutex_init(&sp->lock, NULL);
	/* Retry waits are durations: immune to clock changes. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&sp->wake, &attr);
	pthread_condattr_destroy(&attr);
	return sp;
}

int atex_static_provisioner_new(atex_provisioner **out,
				const char *const *hosts,
				const struct atex_ssh_options *base)
{
	static const struct atex_ssh_options defaults = ATEX_SSH_OPTIONS_INIT;
	struct static_provisioner *sp;
	int rc;

	if (!out || !hosts)
		return atex_error_set(ATEX_EINVAL, "static: no hosts");
	if (!base)
		base = &defaults;
	if (base->version < 1 || base->version > ATEX_SSH_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "static: ssh options version %u unknown",
				      base->version);
	sp = static_alloc();
	if (!sp)
		return ATEX_ENOMEM;
	/* ssh's ConnectTimeout covers the TCP connect only: leave room for
	 * authentication, but do not let a hung server hold a host. */
	sp->connect_limit_ms =
		3 * 1000 *
		(base->connect_timeout_s > 0 ? base->connect_timeout_s : 10);
	rc = atex_remote_queue_new(&sp->ready, "static");
	if (rc == 0)
		rc = atex_cancel_new(&sp->abort);
	if (rc == 0)
		rc = hosts_init(sp, hosts, base);
	if (rc < 0) {
		static_free(&sp->base);
		return rc;
	}
	*out = &sp->base;
	return 0;
}
