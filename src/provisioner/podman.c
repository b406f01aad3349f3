/*
 * podman.c - a provisioner of podman containers: each Remote is a fresh
 * container from one image, reached with a podman connection
 * (`podman exec`), and removed when released.
 *
 * Containers are `podman run -d --rm ... --name atex-XXXXXXXX IMAGE sleep
 * infinity` (or the caller's run_command), each started by its own
 * background thread so that provision() returns at once and a slow start
 * (an image pull) delays nothing else.
 *
 * With `systemd`, the container's init is systemd: `podman run -d
 * --systemd=always --restart=always --ulimit nofile=20000:20000 --ulimit
 * nproc=4096:4096 ... IMAGE /sbin/init`. --restart=always is what brings
 * the container back after a test's reboot (systemd exits, podman starts
 * it again); podman refuses it with --rm, so such a container is only
 * ever removed by `podman rm`, which release, stop and abort run anyway.
 * The ulimits are ones systemd accepts and a root without
 * CAP_SYS_RESOURCE (a nested host) may set: podman's defaults are higher.
 * The thread hands the container out only once the connection's connect
 * (can_reboot) saw `systemctl is-system-running` settle on running or
 * degraded, within SYSTEMD_SETTLE_MS, as Python ATEX's systemd
 * connection waits before its first command.
 * The name is chosen, and recorded under the provisioner's lock, before
 * podman is asked to create anything: whatever exists on the podman side
 * is always known here, so abort() and stop() can remove it.
 *
 * Who removes a container depends on its state, so that exactly one party
 * does it and nothing is left behind:
 *  - STARTING: its thread. abort/stop fire the cancel token, which kills
 *    the `podman run` client; only once that client is dead can nothing
 *    more be created, and the thread then runs `podman rm` itself.
 *  - READY (in the queue) or HANDED (given out): abort/stop, or release.
 * abort and stop wait (on a condition variable, not a sleep) for every
 * thread that may still be removing something, so when they return
 * `podman ps -a` shows nothing of ours.
 *
 * Memory: a handed-out remote belongs to the user until release(), even
 * after stop() removed its container (release then only frees it);
 * free() reclaims remotes never released. Everything else is freed by
 * stop() and free().
 *
 * podman's global and `run` arguments are the caller's: a host needing
 * "--runtime runc" or explicit ulimits says so, nothing is hard-coded.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/provisioner.h"
#include "provisioner/queue.h"
#include "util/process.h"
#include "util/util.h"

#define COMPONENT "podman"

/* `podman rm` of a few containers takes a second; a hung podman must not
 * hang stop or abort forever. */
#define RM_TIMEOUT_MS 60000
/* How long podman gets to finish or undo its work after SIGTERM. */
#define PODMAN_STOP_GRACE_MS 3000
/* systemd in a container is up in about a second; a machine busy with
 * other containers may take much longer, a broken image forever. */
#define SYSTEMD_SETTLE_MS 300000

enum ct_state {
	CT_STARTING, /* podman run in progress, by its thread */
	CT_READY,    /* running, in the queue */
	CT_HANDED,   /* running, given out by get_remote */
	CT_GONE,     /* removed or being removed */
};

struct podman_provisioner;
static const struct atex_remote_ops remote_ops;

/* One container; it is also the Remote handed out. */
struct podman_container {
	struct atex_remote base;
	struct podman_provisioner *prov;
	char *name;	       /* atex-XXXXXXXX */
	atex_connection *conn; /* set by the starter before CT_READY */
	enum ct_state state;
	bool discard; /* not wanted any more (clear, stop) once started */
	bool handed;  /* the user owns the memory: freed by release */
};

/* A starter thread; joined (by the next start, or stop) once done, so a
 * long run does not pile up finished threads. */
struct starter {
	pthread_t thread;
	struct podman_container *ct;
	bool done; /* about to return: a join will not block */
};

struct podman_provisioner {
	struct atex_provisioner base;
	pthread_mutex_t lock;
	pthread_cond_t idle; /* broadcast whenever busy drops */
	char *image;
	char *program;
	char *name;		  /* "podman:IMAGE" */
	struct atex_vec args;	  /* global podman args, owned */
	struct atex_vec run_args; /* extra run args, owned */
	struct atex_vec command;  /* the container's command, owned */
	bool systemd;		  /* systemd as init (see the top) */
	int max;		  /* containers at once */
	struct atex_remote_queue *queue;
	atex_cancel *cancel;	    /* fired by abort and by stop */
	struct atex_vec containers; /* every podman_container not freed */
	struct atex_vec threads;    /* struct starter *, joined when done */
	int wanted;		    /* requested, not started yet */
	int active;		    /* containers STARTING, READY or HANDED */
	int busy;		    /* threads that abort/stop must wait for */
	bool started;
	bool aborted;
};

static struct podman_provisioner *to_prov(const atex_provisioner *p)
{
	return (struct podman_provisioner *)p;
}

static struct podman_container *to_ct(const atex_remote *r)
{
	return (struct podman_container *)r;
}

/* ------------------------------------------------------------------------
 * Running podman here.
 */

/*
 * Runs argv here, capturing its output, as atex_connection_run does; but a
 * cancel or timeout sends SIGTERM first. A `podman run` SIGKILLed at the
 * wrong moment leaves a container the runtime has created and podman does
 * not know (`podman ps -a` and `podman rm` do not see it, its conmon lives
 * on); on SIGTERM podman finishes or undoes what it was doing, and the
 * container it made is then removed like any other.
 */
static int run_stoppable(struct atex_run_result *res, const char *const *argv,
			 int timeout_ms, atex_cancel *cancel)
{
	struct atex_buf out = ATEX_BUF_INIT, err = ATEX_BUF_INIT;
	atex_process *proc = NULL;
	int rc;

	rc = atex_process_spawn(&proc, argv, NULL, NULL, ATEX_STDIO_NULL,
				ATEX_STDIO_PIPE, ATEX_STDIO_PIPE);
	if (rc < 0)
		return rc;
	atex_process_set_stop_signal(proc, SIGTERM, PODMAN_STOP_GRACE_MS);
	rc = atex_process_communicate(&res->status, proc, NULL, 0, &out, &err,
				      timeout_ms, cancel);
	atex_process_free(proc);
	res->out_len = out.len;
	res->err_len = err.len;
	res->out = atex_buf_detach(&out);
	res->err = atex_buf_detach(&err);
	if (!rc && (!res->out || !res->err))
		rc = ATEX_ENOMEM;
	return rc;
}

/* Runs `podman ARGS... EXTRA...` to completion, capturing its output.
 * A non-zero exit is ATEX_EEXTERNAL quoting podman's stderr. */
static int run_podman(struct podman_provisioner *p,
		      const struct atex_vec *extra, int timeout_ms,
		      atex_cancel *cancel)
{
	struct atex_run_result res = {0};
	struct atex_vec argv = ATEX_VEC_INIT;
	size_t i;
	int rc;

	rc = atex_vec_push(&argv, p->program);
	for (i = 0; rc == 0 && i < p->args.len; i++)
		rc = atex_vec_push(&argv, p->args.items[i]);
	for (i = 0; rc == 0 && i < extra->len; i++)
		rc = atex_vec_push(&argv, extra->items[i]);
	if (rc == 0)
		rc = atex_vec_push(&argv, NULL);
	if (rc < 0)
		goto out;
	rc = run_stoppable(&res, (const char *const *)argv.items, timeout_ms,
			   cancel);
	if (rc < 0)
		goto out;
	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
		while (res.err_len > 0 && res.err[res.err_len - 1] == '\n')
			res.err[--res.err_len] = '\0';
		/* The common trap: podman raises the container's limits
		 * above what an unprivileged or nested host allows. */
		bool rlimit = strstr(res.err, "error setting rlimit") != NULL;

		rc = atex_error_set(
			ATEX_EEXTERNAL, "podman %s failed: %s%s",
			(const char *)extra->items[0], res.err,
			rlimit ? " (this host refuses podman's "
				 "default ulimits: pass lower ones, "
				 "e.g. --podman-run-arg="
				 "--ulimit=nofile=4096:4096 "
				 "--podman-run-arg="
				 "--ulimit=nproc=4096:4096)"
			       : "");
	}
out:
	atex_run_result_clear(&res);
	atex_vec_free(&argv);
	return rc;
}

/* `podman rm -f` of the names (strings not owned); no cancel token: this
 * is the cleanup that abort itself relies on. -i: a container that never
 * got created, or that --rm already removed, is no error. */
static int remove_names(struct podman_provisioner *p,
			const struct atex_vec *names)
{
	static const char *const rm[] = {"rm", "-f", "-i", "-t", "0"};
	struct atex_vec argv = ATEX_VEC_INIT;
	size_t i;
	int rc = 0;

	if (names->len == 0)
		return 0;
	for (i = 0; rc == 0 && i < ATEX_ARRAY_SIZE(rm); i++)
		rc = atex_vec_push(&argv, (void *)rm[i]);
	for (i = 0; rc == 0 && i < names->len; i++)
		rc = atex_vec_push(&argv, names->items[i]);
	if (rc == 0)
		rc = run_podman(p, &argv, RM_TIMEOUT_MS, NULL);
	if (rc < 0) {
		atex_error_prefix("%s: removing containers", p->name);
		atex_log(ATEX_LOG_WARNING, COMPONENT, "%s", atex_error_last());
	}
	atex_vec_free(&argv);
	return rc;
}

static int remove_one(struct podman_provisioner *p, const char *name)
{
	struct atex_vec names = ATEX_VEC_INIT;
	int rc;

	atex_debug(COMPONENT, "removing container %s", name);
	rc = atex_vec_push(&names, (void *)name);
	if (rc == 0)
		rc = remove_names(p, &names);
	atex_vec_free(&names);
	return rc;
}

/* ------------------------------------------------------------------------
 * Containers.
 */

static void container_free(struct podman_container *ct)
{
	if (!ct)
		return;
	atex_connection_free(ct->conn);
	free(ct->name);
	free(ct);
}

static void vec_remove(struct atex_vec *v, void *item)
{
	size_t i;

	for (i = 0; i < v->len; i++) {
		if (v->items[i] != item)
			continue;
		memmove(v->items + i, v->items + i + 1,
			(v->len - i - 1) * sizeof(*v->items));
		v->len--;
		return;
	}
}

/* "atex-" and 8 random hex digits: unique enough among the containers of
 * one machine, and recognisable in `podman ps`. */
static char *random_name(void)
{
	unsigned int v;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (unsigned int)getpid() ^ (unsigned int)time(NULL) ^
		    (unsigned int)(atex_monotonic_ms() * 1000);
	return atex_sprintf("atex-%08x", v);
}

/* Appends a NULL-terminated list (strings not owned). */
static int push_list(struct atex_vec *v, const char *const *list)
{
	int rc = 0;

	for (; *list && rc == 0; list++)
		rc = atex_vec_push(v, (void *)*list);
	return rc;
}

/* `podman run -d [--rm | SYSTEMD ARGS] RUN_ARGS --name NAME IMAGE
 * COMMAND`: the caller's run args come after ours, so they may override
 * the ulimits. */
static int run_argv(struct atex_vec *argv, const struct podman_provisioner *p,
		    const char *name)
{
	static const char *const plain[] = {"run", "-d", "--rm", NULL};
	static const char *const systemd[] = {"run",
					      "-d",
					      "--systemd=always",
					      "--restart=always",
					      "--ulimit",
					      "nofile=20000:20000",
					      "--ulimit",
					      "nproc=4096:4096",
					      NULL};
	size_t i;
	int rc;

	rc = push_list(argv, p->systemd ? systemd : plain);
	for (i = 0; rc == 0 && i < p->run_args.len; i++)
		rc = atex_vec_push(argv, p->run_args.items[i]);
	if (rc == 0)
		rc = push_list(argv, (const char *const[]){"--name", name,
							   p->image, NULL});
	for (i = 0; rc == 0 && i < p->command.len; i++)
		rc = atex_vec_push(argv, p->command.items[i]);
	return rc;
}

/* The connection to a started container; a systemd one is ready once
 * connect has seen systemd settle (its message names the container and
 * the state otherwise). */
static int container_connect(struct podman_container *ct)
{
	struct podman_provisioner *p = ct->prov;
	struct atex_podman_options opts = ATEX_PODMAN_OPTIONS_INIT;
	int rc;

	opts.container = ct->name;
	opts.podman_args = (const char *const *)p->args.items;
	opts.podman_program = p->program;
	opts.can_reboot = p->systemd;
	rc = atex_podman_connection_new(&ct->conn, &opts);
	if (rc < 0 || !p->systemd)
		return rc;
	atex_debug(COMPONENT, "waiting for systemd in %s", ct->name);
	rc = atex_connection_connect(ct->conn, SYSTEMD_SETTLE_MS, p->cancel);
	if (rc < 0)
		atex_error_prefix("%s", p->name);
	return rc;
}

/* Starts the container, then makes the connection for it. Runs without
 * the lock, in the starter thread. */
static int container_start(struct podman_container *ct)
{
	struct podman_provisioner *p = ct->prov;
	struct atex_vec argv = ATEX_VEC_INIT;
	int rc;

	atex_debug(COMPONENT, "starting container %s from %s", ct->name,
		   p->image);
	rc = run_argv(&argv, p, ct->name);
	if (rc == 0)
		rc = run_podman(p, &argv, -1, p->cancel);
	if (rc < 0) {
		atex_error_prefix("%s: container %s", p->name, ct->name);
		goto out;
	}
	rc = container_connect(ct);
out:
	atex_vec_free(&argv);
	return rc;
}

/* Called with the lock held when a thread that abort/stop wait for is
 * done. */
static void busy_done(struct podman_provisioner *p)
{
	p->busy--;
	pthread_cond_broadcast(&p->idle);
}

/* After podman run: queue the container, or, if it failed or is no longer
 * wanted, take it off the books. Returns whether the caller must remove
 * (and free) it. Lock held. */
static bool container_arrived(struct podman_container *ct, int rc,
			      const char *message)
{
	struct podman_provisioner *p = ct->prov;

	if (rc == 0 && !ct->discard && !p->aborted && p->started) {
		rc = atex_remote_queue_push(p->queue, &ct->base);
		if (rc == 0) {
			atex_debug(COMPONENT, "container %s ready", ct->name);
			ct->state = CT_READY;
			return false;
		}
		message = "out of memory";
	}
	/* A failure nobody cancelled is one for good: get_remote reports
	 * it, and no more are started until the next provision(). */
	if (rc < 0 && !ct->discard && !p->aborted && p->started) {
		atex_remote_queue_fail(p->queue, rc, message);
		p->wanted = 0;
	}
	ct->state = CT_GONE;
	p->active--;
	vec_remove(&p->containers, ct);
	return true;
}

static void *starter_main(void *arg)
{
	struct starter *s = arg;
	struct podman_container *ct = s->ct;
	struct podman_provisioner *p = ct->prov;
	char *message = NULL;
	bool remove;
	int rc;

	rc = container_start(ct);
	if (rc < 0)
		message = strdup(atex_error_last());
	pthread_mutex_lock(&p->lock);
	remove = container_arrived(ct, rc, message ? message : "failed");
	pthread_mutex_unlock(&p->lock);
	/* Only now is the podman run client dead (or done), so nothing can
	 * create the container behind the back of this rm. */
	if (remove) {
		remove_one(p, ct->name);
		container_free(ct);
	}
	free(message);
	pthread_mutex_lock(&p->lock);
	s->done = true;
	busy_done(p);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Joins the starter threads that are done (all of them with `all`: the
 * caller waited for them). Lock held, or no other thread left. */
static void join_starters(struct podman_provisioner *p, bool all)
{
	size_t i, kept = 0;

	for (i = 0; i < p->threads.len; i++) {
		struct starter *s = p->threads.items[i];

		if (!s->done && !all) {
			p->threads.items[kept++] = s;
			continue;
		}
		pthread_join(s->thread, NULL);
		free(s);
	}
	p->threads.len = kept;
}

/* Records a new container and starts its thread. Lock held. */
static int spawn_starter(struct podman_provisioner *p)
{
	struct podman_container *ct;
	struct starter *s = NULL;
	int rc = ATEX_ENOMEM, err;

	join_starters(p, false);
	ct = atex_calloc(1, sizeof(*ct));
	if (!ct)
		return ATEX_ENOMEM;
	ct->base.ops = &remote_ops;
	ct->prov = p;
	ct->name = random_name();
	s = atex_calloc(1, sizeof(*s));
	if (!ct->name || !s)
		goto fail;
	s->ct = ct;
	if (atex_vec_push(&p->containers, ct) < 0)
		goto fail;
	if (atex_vec_push(&p->threads, s) < 0)
		goto fail_unlist;
	err = pthread_create(&s->thread, NULL, starter_main, s);
	if (err) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot start a thread: %s",
				    p->name, strerror(err));
		atex_vec_pop(&p->threads);
		goto fail_unlist;
	}
	p->busy++;
	return 0;
fail_unlist:
	vec_remove(&p->containers, ct);
fail:
	free(s);
	container_free(ct);
	return rc;
}

/* Starts as many containers as are wanted and allowed. Lock held. */
static int start_more(struct podman_provisioner *p)
{
	int rc;

	while (p->started && !p->aborted && p->wanted > 0 &&
	       p->active < p->max) {
		rc = spawn_starter(p);
		if (rc < 0) {
			p->wanted = 0;
			return rc;
		}
		p->wanted--;
		p->active++;
	}
	return 0;
}

/*
 * Takes every running container off the books (queued ones out of the
 * queue too) and collects copies of their names for one `podman rm`.
 * STARTING ones are left to their threads, marked as not wanted. Lock held.
 */
static int take_all(struct podman_provisioner *p, struct atex_vec *names)
{
	size_t i;
	int rc = 0;

	while (atex_remote_queue_take(p->queue))
		;
	for (i = 0; i < p->containers.len; i++) {
		struct podman_container *ct = p->containers.items[i];
		char *name;

		if (ct->state == CT_STARTING)
			ct->discard = true;
		if (ct->state != CT_READY && ct->state != CT_HANDED)
			continue;
		ct->state = CT_GONE;
		p->active--;
		name = atex_strdup(ct->name);
		if (!name || atex_vec_push(names, name) < 0) {
			/* That container is left behind: report it. */
			free(name);
			rc = ATEX_ENOMEM;
		}
	}
	return rc;
}

/* Waits until no thread may still be removing or creating anything. */
static void wait_idle(struct podman_provisioner *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->busy > 0)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------------------
 * Remote operations.
 */

static atex_connection *remote_connection(atex_remote *r)
{
	return to_ct(r)->conn;
}

static const char *remote_name(const atex_remote *r)
{
	return atex_connection_name(to_ct(r)->conn);
}

static void remote_release(atex_remote *r)
{
	struct podman_container *ct = to_ct(r);
	struct podman_provisioner *p = ct->prov;
	bool remove;

	pthread_mutex_lock(&p->lock);
	/* After stop or abort the container is already gone. */
	remove = ct->state == CT_HANDED;
	if (remove) {
		ct->state = CT_GONE;
		p->active--;
		p->busy++;
	}
	vec_remove(&p->containers, ct);
	/* A pool kept full (provision(UNLIMITED)) gets a replacement. */
	if (start_more(p) < 0)
		atex_log(ATEX_LOG_WARNING, COMPONENT, "%s", atex_error_last());
	pthread_mutex_unlock(&p->lock);
	if (remove) {
		remove_one(p, ct->name);
		pthread_mutex_lock(&p->lock);
		busy_done(p);
		pthread_mutex_unlock(&p->lock);
	}
	container_free(ct);
}

static const struct atex_remote_ops remote_ops = {
	.version = ATEX_REMOTE_OPS_VERSION,
	.connection = remote_connection,
	.name = remote_name,
	.release = remote_release,
};

/* ------------------------------------------------------------------------
 * Provisioner operations.
 */

static int prov_start(atex_provisioner *base)
{
	struct podman_provisioner *p = to_prov(base);
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->aborted)
		rc = atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name);
	else
		p->started = true;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int prov_provision(atex_provisioner *base, int count)
{
	struct podman_provisioner *p = to_prov(base);
	int rc;

	if (count < 0 && count != ATEX_PROVISION_UNLIMITED)
		return atex_error_set(ATEX_EINVAL, "%s: provision(%d)", p->name,
				      count);
	pthread_mutex_lock(&p->lock);
	if (p->aborted) {
		rc = atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name);
		goto out;
	}
	if (!p->started) {
		rc = atex_error_set(ATEX_EINVAL, "%s: not started", p->name);
		goto out;
	}
	/* A new request is a new chance after a failure. */
	atex_remote_queue_fail(p->queue, 0, NULL);
	if (count == ATEX_PROVISION_UNLIMITED || count > INT_MAX - p->wanted)
		p->wanted = INT_MAX;
	else
		p->wanted += count;
	rc = start_more(p);
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int prov_get_remote(atex_remote **out, atex_provisioner *base,
			   int timeout_ms)
{
	struct podman_provisioner *p = to_prov(base);
	atex_remote *r = NULL;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->aborted)
		rc = atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name);
	else if (!p->started)
		rc = atex_error_set(ATEX_EINVAL, "%s: not started", p->name);
	else
		p->busy++; /* stop must not free what we may pop */
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		return rc;

	rc = atex_remote_queue_pop(&r, p->queue, timeout_ms, p->cancel);

	pthread_mutex_lock(&p->lock);
	if (rc == 0 && to_ct(r)->state == CT_READY) {
		to_ct(r)->state = CT_HANDED;
		to_ct(r)->handed = true;
		*out = r;
	} else if (rc == 0 || (rc == ATEX_ECANCELED && !p->aborted)) {
		/* Popped as abort or stop took it away; stop/free frees it. */
		rc = atex_error_set(ATEX_ECANCELED, "%s: %s", p->name,
				    p->aborted ? "aborted" : "stopped");
	}
	busy_done(p);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int prov_clear(atex_provisioner *base)
{
	struct podman_provisioner *p = to_prov(base);
	size_t i;

	pthread_mutex_lock(&p->lock);
	p->wanted = 0;
	for (i = 0; i < p->containers.len; i++) {
		struct podman_container *ct = p->containers.items[i];

		if (ct->state == CT_STARTING)
			ct->discard = true;
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void prov_abort(atex_provisioner *base)
{
	struct podman_provisioner *p = to_prov(base);
	struct atex_vec names = ATEX_VEC_INIT;

	pthread_mutex_lock(&p->lock);
	p->aborted = true;
	p->wanted = 0;
	take_all(p, &names);
	pthread_mutex_unlock(&p->lock);
	/* Wakes get_remote and kills the podman run clients, whose threads
	 * then remove what those clients made. */
	atex_cancel_fire(p->cancel);
	remove_names(p, &names);
	atex_vec_free_all(&names, free);
	wait_idle(p);
	atex_debug(COMPONENT, "%s: aborted", p->name);
}

/* Joins the starter threads (all done: wait_idle came first) and frees
 * the containers nobody holds. Under the lock: a release may run in
 * another thread. */
static void reap(struct podman_provisioner *p)
{
	size_t i, kept = 0;

	pthread_mutex_lock(&p->lock);
	join_starters(p, true);
	atex_vec_free(&p->threads);
	for (i = 0; i < p->containers.len; i++) {
		struct podman_container *ct = p->containers.items[i];

		if (ct->handed)
			p->containers.items[kept++] = ct;
		else
			container_free(ct);
	}
	p->containers.len = kept;
	pthread_mutex_unlock(&p->lock);
}

static int prov_stop(atex_provisioner *base)
{
	struct podman_provisioner *p = to_prov(base);
	struct atex_vec names = ATEX_VEC_INIT;
	int rc;

	pthread_mutex_lock(&p->lock);
	p->started = false;
	p->wanted = 0;
	rc = take_all(p, &names);
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		atex_error_set(rc, "%s: out of memory while stopping", p->name);
	/* As in abort, but the token is re-armed for a later start. */
	atex_cancel_fire(p->cancel);
	if (remove_names(p, &names) < 0 && rc == 0)
		rc = atex_error_last_code();
	atex_vec_free_all(&names, free);
	wait_idle(p);
	reap(p);
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
	struct podman_provisioner *p = to_prov(base);
	size_t i;

	if (!p)
		return;
	/* Without them (a failed new) nothing was ever started. */
	if (p->queue && p->cancel)
		prov_stop(base);
	/* Remotes the user never released. */
	for (i = 0; i < p->containers.len; i++)
		container_free(p->containers.items[i]);
	atex_vec_free(&p->containers);
	atex_remote_queue_free(p->queue);
	atex_cancel_free(p->cancel);
	atex_vec_free_all(&p->args, free);
	atex_vec_free_all(&p->run_args, free);
	atex_vec_free_all(&p->command, free);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p->image);
	free(p->program);
	free(p->name);
	free(p);
}

static const struct atex_provisioner_ops podman_ops = {
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
 * Construction.
 */

/* The owned parts, each checked; on failure the caller frees p. */
static int prov_init(struct podman_provisioner *p,
		     const struct atex_podman_provisioner_options *opts)
{
	int rc;

	p->image = atex_strdup(opts->image);
	p->program = atex_strdup(opts->podman_program ? opts->podman_program
						      : "podman");
	p->name = atex_sprintf("podman:%s", opts->image);
	if (!p->image || !p->program || !p->name)
		return ATEX_ENOMEM;
	/* NULL-terminated, to pass on as a podman connection's args. */
	if (atex_vec_push_copies(&p->args, opts->podman_args) < 0 ||
	    atex_vec_push(&p->args, NULL) < 0 ||
	    atex_vec_push_copies(&p->run_args, opts->run_args) < 0 ||
	    atex_vec_push(&p->run_args, NULL) < 0)
		return ATEX_ENOMEM;
	/* The terminators are for podman connections, not for argv. */
	p->args.len--;
	p->run_args.len--;
	if (opts->version >= 2) {
		p->systemd = opts->systemd;
		if (atex_vec_push_copies(&p->command, opts->run_command) < 0)
			return ATEX_ENOMEM;
	}
	if (p->command.len == 0) {
		static const char *const sleep[] = {"sleep", "infinity", NULL};
		static const char *const init[] = {"/sbin/init", NULL};

		if (atex_vec_push_copies(&p->command,
					 p->systemd ? init : sleep) < 0)
			return ATEX_ENOMEM;
	}
	rc = atex_remote_queue_new(&p->queue, p->name);
	if (rc == 0)
		rc = atex_cancel_new(&p->cancel);
	return rc;
}

/* `podman run` takes a word starting with '-' for an option (a
 * --privileged given as the image must not become one), and no image
 * reference (name, tag, digest, transport:path) has spaces, control
 * characters or shell metacharacters: "img;rm" is a mistake or an attack
 * (a program passing it through a shell), refused before podman runs. */
static bool image_ok(const char *image)
{
	if (image[0] == '-')
		return false;
	for (const unsigned char *p = (const unsigned char *)image; *p; p++)
		if (*p <= ' ' || *p == 0x7f ||
		    strchr(";&|`$()<>'\"\\*?!{}#", *p))
			return false;
	return true;
}

int atex_podman_provisioner_new(
	atex_provisioner **out,
	const struct atex_podman_provisioner_options *opts)
{
	struct podman_provisioner *p;
	int rc;

	if (!out || !opts || !opts->image || !*opts->image)
		return atex_error_set(ATEX_EINVAL,
				      "podman provisioner: no image given");
	if (opts->version < 1 ||
	    opts->version > ATEX_PODMAN_PROVISIONER_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "podman provisioner %s: options version "
				      "%u unknown",
				      opts->image, opts->version);
	if (!image_ok(opts->image))
		return atex_error_set(ATEX_EINVAL,
				      "podman provisioner: invalid image "
				      "\"%s\": an image reference starts "
				      "with no '-' and has no spaces, "
				      "control characters or shell "
				      "metacharacters",
				      opts->image);
	if (opts->count < 0)
		return atex_error_set(ATEX_EINVAL,
				      "podman provisioner %s: count %d",
				      opts->image, opts->count);
	p = atex_calloc(1, sizeof(*p));
	if (!p)
		return ATEX_ENOMEM;
	p->base.ops = &podman_ops;
	p->max = opts->count > 0 ? opts->count : 1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	rc = prov_init(p, opts);
	if (rc < 0) {
		prov_free(&p->base);
		return rc;
	}
	*out = &p->base;
	return 0;
}

/* ------------------------------------------------------------------------
 * Building an image for atex (atex_podman_image_build).
 *
 * A Containerfile made here: FROM the base, one RUN that installs, with
 * whichever of dnf, yum, apt-get and zypper the base has, what atex needs
 * and the base lacks (looked up by command, not by package: a Fedora
 * minimal image has coreutils-single, which a "coreutils" would conflict
 * with), plus the caller's packages; with systemd also systemd as init,
 * and Python ATEX's shorter stop timeout (a `podman exec` process is no
 * child of systemd, so a reboot would otherwise wait 90 s for it).
 * Package names go into the script as words, so they are checked first:
 * no shell syntax can reach it.
 */

/* How much of the build's output ends a failure message. */
#define BUILD_TAIL_LINES 10
#define BUILD_TAIL_MAX	 4096
/* How long podman build gets to clean up after SIGTERM. */
#define BUILD_STOP_GRACE_MS 10000

/* Package names and specs of dnf, yum, apt-get and zypper ("vim-enhanced",
 * "libstdc++", "python3:amd64", "pkg=1.2-3", "/usr/bin/ls"): no spaces,
 * quotes or shell syntax, no leading '-' (an option). */
static bool package_ok(const char *name)
{
	if (!*name || *name == '-')
		return false;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
		    !(*c >= '0' && *c <= '9') && !strchr(".+-_:~@=/", *c))
			return false;
	return true;
}

/* The RUN script: $1 is "systemd" or "", the caller's packages (checked)
 * follow. systemd is installed only when /sbin/init is missing: a base
 * that has it (a prebuilt image, offline) needs no package manager. */
static const char build_script[] =
	"set -e; sd=$1; shift; need=\"$*\"; sdpkg=; "
	"[ -z \"$sd\" ] || [ -x /sbin/init ] || sdpkg=1; "
	"for c in bash:bash env:coreutils setsid:util-linux tar:tar "
	"rsync:rsync; do "
	"command -v \"${c%%:*}\" >/dev/null 2>&1 || need=\"$need ${c#*:}\"; "
	"done; "
	"if command -v dnf >/dev/null 2>&1; then "
	"[ -z \"$sdpkg\" ] || need=\"$need systemd\"; "
	"[ -z \"$need\" ] || "
	"{ dnf -y --setopt=install_weak_deps=False install $need; "
	"dnf clean all; }; "
	"elif command -v yum >/dev/null 2>&1; then "
	"[ -z \"$sdpkg\" ] || need=\"$need systemd\"; "
	"[ -z \"$need\" ] || { yum -y install $need; yum clean all; }; "
	"elif command -v apt-get >/dev/null 2>&1; then "
	"[ -z \"$sdpkg\" ] || need=\"$need systemd-sysv\"; "
	"[ -z \"$need\" ] || "
	"{ export DEBIAN_FRONTEND=noninteractive; apt-get update; "
	"apt-get install -y --no-install-recommends $need; "
	"apt-get clean; rm -rf /var/lib/apt/lists/*; }; "
	"elif command -v zypper >/dev/null 2>&1; then "
	"[ -z \"$sdpkg\" ] || need=\"$need systemd\"; "
	"[ -z \"$need\" ] || "
	"{ zypper --non-interactive install --no-recommends $need; "
	"zypper clean -a; }; "
	"elif [ -n \"$need$sdpkg\" ]; then "
	"echo \"atex: no dnf, yum, apt-get or zypper to install: $need $sd\" "
	">&2; exit 1; fi; "
	"if [ -n \"$sd\" ]; then "
	"mkdir -p /etc/systemd/system.conf.d; "
	"printf '[Manager]\\nDefaultTimeoutStopSec=30s\\n' "
	">/etc/systemd/system.conf.d/atex-container.conf; fi";

/* The Containerfile's text: RUN in its exec form (a JSON array), so the
 * script and the packages reach sh as they are, with no quoting of
 * either by the Containerfile or a shell. */
static char *containerfile(const char *base, const char *const *packages,
			   bool systemd)
{
	struct atex_buf b = ATEX_BUF_INIT;
	json_t *run;
	char *run_json = NULL;
	int rc = -1;

	run = json_pack("[sssss]", "/bin/sh", "-c", build_script, "sh",
			systemd ? "systemd" : "");
	for (; run && packages && *packages; packages++)
		if (json_array_append_new(run, json_string(*packages)) < 0)
			goto out;
	run_json = run ? json_dumps(run, JSON_COMPACT) : NULL;
	if (!run_json)
		goto out;
	rc = atex_buf_printf(&b, "FROM %s\nRUN %s\n%s", base, run_json,
			     systemd ? "CMD [\"/sbin/init\"]\n" : "");
out:
	if (rc < 0)
		atex_buf_free(&b);
	json_decref(run);
	free(run_json);
	return rc < 0 ? NULL : atex_buf_detach(&b);
}

/* The last BUILD_TAIL_LINES lines of what the build wrote to `fd`. */
static char *build_tail(int fd)
{
	char buf[BUILD_TAIL_MAX + 1], *p;
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > BUILD_TAIL_MAX ? size - BUILD_TAIL_MAX : 0;
	ssize_t n = pread(fd, buf, BUILD_TAIL_MAX, from);
	int lines = 0;

	if (n < 0)
		n = 0;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (p = buf + n; p > buf; p--)
		if (p[-1] == '\n' && ++lines == BUILD_TAIL_LINES)
			break;
	return atex_strdup(p);
}

/* Writes the Containerfile into a new directory (the build context,
 * empty otherwise); *dir is then set and the caller removes both. */
static int write_context(char **dir, const char *text)
{
	const char *tmp = getenv("TMPDIR");
	char *path = NULL;
	int fd = -1, rc = ATEX_EIO;
	size_t len = strlen(text);

	*dir = atex_sprintf("%s/atex-build-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!*dir)
		return ATEX_ENOMEM;
	if (!mkdtemp(*dir)) {
		rc = atex_error_set(ATEX_EIO, "podman build: mkdtemp %s: %s",
				    *dir, strerror(errno));
		free(*dir);
		*dir = NULL;
		return rc;
	}
	path = atex_path_join(*dir, "Containerfile");
	if (!path)
		return ATEX_ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || atex_write_all(fd, text, len, NULL) < 0)
		atex_error_set(ATEX_EIO, "podman build: writing %s: %s", path,
			       strerror(errno));
	else
		rc = 0;
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

static void remove_context(char *dir)
{
	char *path;

	if (!dir)
		return;
	path = atex_path_join(dir, "Containerfile");
	if (path)
		unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
}

/* Runs `podman ARGS build -t TAG -f DIR/Containerfile DIR`, its output in
 * `out_fd`. A cancel stops it with SIGTERM (podman then removes its
 * intermediate containers), SIGKILL after a grace time. */
static int build_run(int *status, const char *tag, const char *dir,
		     const char *const *podman_args, int out_fd,
		     atex_cancel *cancel)
{
	struct atex_vec argv = ATEX_VEC_INIT;
	atex_process *proc = NULL;
	char *file = atex_path_join(dir, "Containerfile");
	int rc;

	rc = file ? atex_vec_push(&argv, "podman") : ATEX_ENOMEM;
	for (; rc == 0 && podman_args && *podman_args; podman_args++)
		rc = atex_vec_push(&argv, (void *)*podman_args);
	if (rc == 0)
		rc = push_list(&argv,
			       (const char *const[]){"build", "-t", tag, "-f",
						     file, dir, NULL});
	if (rc == 0)
		rc = atex_vec_push(&argv, NULL);
	if (rc == 0)
		rc = atex_process_spawn(&proc, (const char *const *)argv.items,
					NULL, NULL, ATEX_STDIO_NULL, out_fd,
					out_fd);
	if (rc < 0)
		goto out;
	rc = atex_process_wait(status, proc, -1, cancel);
	if (rc == ATEX_ECANCELED) {
		atex_process_kill(proc, SIGTERM);
		if (atex_process_wait(status, proc, BUILD_STOP_GRACE_MS, NULL) <
		    0)
			atex_process_kill(proc, SIGKILL);
		rc = atex_error_set(ATEX_ECANCELED, "podman build %s: canceled",
				    tag);
	}
out:
	atex_process_free(proc);
	atex_vec_free(&argv);
	free(file);
	return rc;
}

int atex_podman_image_build(const char *tag, const char *base,
			    const char *const *packages, bool systemd,
			    const char *const *podman_args, atex_cancel *cancel)
{
	char *text = NULL, *dir = NULL, *tail = NULL;
	const char *const *pkg;
	int rc, status = 0, out_fd = -1;

	if (!tag || !*tag || !image_ok(tag))
		return atex_error_set(ATEX_EINVAL,
				      "podman build: invalid tag \"%s\"",
				      tag ? tag : "");
	if (!base || !*base || !image_ok(base))
		return atex_error_set(ATEX_EINVAL,
				      "podman build %s: invalid base image "
				      "\"%s\"",
				      tag, base ? base : "");
	for (pkg = packages; pkg && *pkg; pkg++)
		if (!package_ok(*pkg))
			return atex_error_set(ATEX_EINVAL,
					      "podman build %s: invalid "
					      "package name \"%s\"",
					      tag, *pkg);
	text = containerfile(base, packages, systemd);
	if (!text)
		return atex_error_oom();
	rc = write_context(&dir, text);
	if (rc < 0)
		goto out;
	out_fd = memfd_create("atex-podman-build", MFD_CLOEXEC);
	if (out_fd < 0) {
		rc = atex_error_set(ATEX_EIO, "podman build: memfd_create: %s",
				    strerror(errno));
		goto out;
	}
	atex_debug(COMPONENT, "building %s from %s", tag, base);
	rc = build_run(&status, tag, dir, podman_args, out_fd, cancel);
	if (rc < 0) {
		if (rc != ATEX_ECANCELED)
			atex_error_prefix("podman build %s", tag);
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		tail = build_tail(out_fd);
		rc = atex_error_set(ATEX_EEXTERNAL,
				    "podman build %s from %s failed:\n%s", tag,
				    base, tail ? tail : "");
	}
out:
	if (out_fd >= 0)
		close(out_fd);
	remove_context(dir);
	free(tail);
	free(text);
	return rc;
}
