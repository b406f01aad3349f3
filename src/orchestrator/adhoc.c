/*
 * adhoc.c - the ad-hoc orchestrator: a pool of systems, each taking the
 * next test the moment it is free (DESIGN.md, "The idea that names it").
 *
 * Threads. The serving thread (serve_once) is the only one that talks to
 * provisioners: it asks for systems, waits in poll() on their ready
 * descriptors and on a wake-up eventfd, and starts one worker thread per
 * arriving system. A worker sets its system up (setup hook, executor
 * factory, executor start), then loops: take the next test from the shared
 * queue, run it, ingest it, decide (re-run? system broken?), until the
 * queue is empty or its system must go; then it stops the executor,
 * releases the remote and wakes the serving thread, which joins it. A
 * worker blocks only in run_test and the hooks, so one process drives
 * hundreds of systems with one thread each and no polling loop.
 *
 * Accounting. `wanted` systems = tests queued + tests running + spares;
 * `have` = live workers + requests not yet delivered. The serving thread
 * requests the difference and, once it has more coming than it can use,
 * clears the provisioners' pending requests, so that a released slot is
 * not refilled only to be released again. Surplus arrivals are released
 * at once.
 *
 * Locks. `lock` guards the queue, the counters and the worker list;
 * `hook_lock` serializes hooks and events (the header promises one call
 * at a time). Order: hook_lock, then lock, never the other way; a hook
 * never runs under `lock` except next_test, which needs the queue stable.
 * So an event callback may call abort (stop at the first failure).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/ingest.h"
#include "atex/orchestrator.h"
#include "executor/stage.h"
#include "util/process.h"
#include "util/util.h"

#define COMPONENT	       "orchestrator"
#define DEFAULT_INFRA_RETRIES  3
#define DEFAULT_SETUP_FAILURES 5

struct adhoc;

struct worker {
	struct adhoc *o;
	atex_remote *remote;
	char *name;	     /* the remote's name, for events after release */
	atex_executor *exec; /* guarded by o->lock (abort cancels it) */
	pthread_t thread;
	bool done;    /* the thread has ended: join it */
	bool idle;    /* set up, waiting for a test (a spare) */
	bool running; /* has a test */
	struct worker *next;
};

struct adhoc {
	struct atex_orchestrator_options opts; /* strings below owned */
	char *platform;
	char **env; /* opts.env + ATEX_TEST_ATTEMPT slot */
	size_t n_env;
	char **rerun_statuses;
	char *work_dir;
	bool own_work_dir;
	atomic_size_t kept; /* artifacts directories no aggregator took */

	pthread_mutex_t lock;
	pthread_cond_t changed; /* queue grew, or abort: idle workers look */
	pthread_mutex_t hook_lock;
	int wake_fd; /* eventfd: a worker ended or asked for attention */

	/* The queue of tests to run (discovery indices), re-runs in front. */
	size_t *queue;
	size_t n_queue;
	unsigned int *attempts; /* per discovery index: attempts started */
	unsigned int *infra;	/* per discovery index: systems lost */
	/* Per discovery index: NULL, or "NAME~K" for the K-th entry of a
	 * test the plan lists more than once (tmt runs repeats), so that
	 * each keeps its own results and files. */
	char **shown;
	size_t n_shown;
	size_t n_tests_total, n_done, n_running, n_not_run;
	unsigned long artifacts_seq;

	struct worker *workers;
	size_t n_workers; /* live: setting up, idle or running */
	size_t n_idle;
	long *requested; /* per provisioner: asked, not delivered */
	bool *prov_failed;
	unsigned int setup_failures; /* in a row */
	char *last_failure;

	bool aborted;
	bool finished; /* returned 0 or an error already */
	int result;
};

#define to_adhoc(o) ((struct adhoc *)(o))

struct atex_orchestrator {
	struct adhoc impl;
};

/* ------------------------------------------------------------------------
 * Small helpers.
 */

static void wake(struct adhoc *o)
{
	uint64_t one = 1;

	/* Never fails in a way that matters: the counter saturates far
	 * beyond anything a run writes. */
	if (write(o->wake_fd, &one, sizeof(one)) < 0)
		atex_debug(COMPONENT, "wake: %s", strerror(errno));
}

static void drain(struct adhoc *o)
{
	uint64_t n;

	if (read(o->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		atex_debug(COMPONENT, "drain: %s", strerror(errno));
}

/* Fills the counts of an event. Lock held. */
static void event_counts(struct adhoc *o, struct atex_orchestrator_event *ev)
{
	ev->tests_total = o->n_tests_total;
	ev->tests_done = o->n_done;
	ev->tests_running = o->n_running;
	ev->systems = o->n_workers;
}

/* Calls the event callback, serialized with the hooks; not under `lock`,
 * so that it may call abort or the counters. Lock not held. */
static void emit(struct adhoc *o, struct atex_orchestrator_event *ev)
{
	if (!o->opts.event)
		return;
	pthread_mutex_lock(&o->hook_lock);
	pthread_mutex_lock(&o->lock);
	event_counts(o, ev);
	pthread_mutex_unlock(&o->lock);
	o->opts.event(ev, o->opts.userdata);
	pthread_mutex_unlock(&o->hook_lock);
}

static void emit_system(struct adhoc *o, int type, const char *remote,
			const char *message)
{
	struct atex_orchestrator_event ev = {
		.type = type, .remote = remote, .message = message};

	emit(o, &ev);
}

/* Records why systems could not be had, for the final error. Lock held. */
static void note_failure(struct adhoc *o, const char *message)
{
	char *copy = atex_strdup(message);

	if (copy) {
		free(o->last_failure);
		o->last_failure = copy;
	}
}

/* ------------------------------------------------------------------------
 * One attempt of one test.
 */

/* Severity of a status for "the worst one": higher is worse. */
static int status_rank(const char *s)
{
	static const char *const order[] = {
		"skip", "pass",	 "info", "warn", NULL /* custom */,
		"fail", "error", "infra"};

	for (int i = 0; i < (int)(sizeof(order) / sizeof(order[0])); i++) {
		if (order[i] && strcmp(order[i], s) == 0)
			return i;
	}
	return 4;
}

/* Reads ARTIFACTS/results into a JSON array (lines that do not parse are
 * skipped: the aggregator reports them) and finds the worst status. */
static json_t *read_results(const char *artifacts, const char **worst)
{
	char *path = atex_path_join(artifacts, "results");
	json_t *results = json_array();
	FILE *f = path ? fopen(path, "re") : NULL;
	char *line = NULL;
	size_t cap = 0;
	int best = -1;

	*worst = "error";
	while (f && results && getline(&line, &cap, f) > 0) {
		json_t *r = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
		const char *status =
			json_string_value(json_object_get(r, "status"));

		if (!json_is_object(r)) {
			json_decref(r);
			continue;
		}
		/* No status: an error (docs/PROTOCOL.md section 2). */
		if (!status)
			status = "error";
		if (status_rank(status) > best) {
			best = status_rank(status);
			*worst = status;
		}
		json_array_append_new(results, r);
	}
	/* *worst points into `results`, which the caller keeps alive. */
	free(line);
	free(path);
	if (f)
		fclose(f);
	return results;
}

/* A fresh artifacts directory for one attempt. NULL on error (set). */
static char *make_artifacts_dir(struct adhoc *o, size_t test)
{
	unsigned long seq;
	char *dir;

	pthread_mutex_lock(&o->lock);
	seq = ++o->artifacts_seq;
	pthread_mutex_unlock(&o->lock);
	dir = atex_sprintf("%s/%lu-%zu", o->work_dir, seq, test);
	if (!dir) {
		atex_error_oom();
		return NULL;
	}
	if (mkdir(dir, 0755) < 0) {
		atex_error_set(ATEX_EIO, "%s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

/* The environment of one attempt: the options' plus ATEX_TEST_ATTEMPT
 * (the last slot, written here). */
static char **attempt_env(struct adhoc *o, unsigned int attempt)
{
	char **env = atex_calloc(o->n_env + 2, sizeof(*env));

	if (!env)
		return NULL;
	memcpy(env, o->env, o->n_env * sizeof(*env));
	env[o->n_env] = atex_sprintf("ATEX_TEST_ATTEMPT=%u", attempt);
	if (!env[o->n_env]) {
		free(env);
		return NULL;
	}
	return env;
}

/* The name a test's attempts are reported and kept under. */
static const char *shown_name(const struct adhoc *o, size_t test)
{
	return o->shown[test]
		       ? o->shown[test]
		       : atex_fmf_discovery_test_name(o->opts.discovery, test);
}

static int by_name_then_index(const void *a, const void *b, void *d)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(atex_fmf_discovery_test_name(d, x),
		       atex_fmf_discovery_test_name(d, y));

	return c ? c : (x > y) - (x < y);
}

/* Names the second and later entries of a repeated test NAME~2, NAME~3
 * (as atex test names their artifacts directories). */
static int name_repeats(struct adhoc *o, size_t count)
{
	size_t *idx = atex_calloc(count + 1, sizeof(*idx));
	int rc = 0;

	if (!idx)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < count; i++)
		idx[i] = i;
	qsort_r(idx, count, sizeof(*idx), by_name_then_index,
		o->opts.discovery);
	for (size_t i = 1, k = 1; i < count && !rc; i++) {
		const char *name =
			atex_fmf_discovery_test_name(o->opts.discovery, idx[i]);

		k = strcmp(name, atex_fmf_discovery_test_name(o->opts.discovery,
							      idx[i - 1]))
			    ? 1
			    : k + 1;
		if (k == 1)
			continue;
		o->shown[idx[i]] = atex_sprintf("%s~%zu", name, k);
		if (!o->shown[idx[i]])
			rc = ATEX_ENOMEM;
	}
	free(idx);
	return rc;
}

static int ingest(struct adhoc *o, atex_aggregator *agg, size_t test,
		  const char *artifacts)
{
	const char *name = shown_name(o, test);
	int rc;

	if (!agg)
		return 0;
	rc = atex_aggregator_ingest(agg, o->platform, name, artifacts);
	if (rc < 0)
		atex_log(ATEX_LOG_ERROR, COMPONENT,
			 "%s: ingest: %s (its artifacts are kept in %s)", name,
			 atex_error_last(), artifacts);
	return rc;
}

/*
 * What happens to a test after an attempt; decided by the hooks (under
 * hook_lock) and the infra bound.
 */
struct verdict {
	bool rerun;   /* back to the queue; this attempt is an earlier one */
	bool release; /* the system goes */
	bool lost;    /* ... because it failed (infra) */
};

static struct verdict judge(struct adhoc *o, const struct atex_attempt *a)
{
	struct verdict v = {0};
	unsigned int max_infra = o->opts.max_infra_retries
					 ? o->opts.max_infra_retries
					 : DEFAULT_INFRA_RETRIES;

	if (a->rc == ATEX_ECANCELED) {
		v.release = true;
		return v;
	}
	if (a->rc == ATEX_EINFRA) {
		pthread_mutex_lock(&o->lock);
		v.rerun = ++o->infra[a->test] <= max_infra && !o->aborted;
		pthread_mutex_unlock(&o->lock);
		v.release = v.lost = true;
		return v;
	}
	pthread_mutex_lock(&o->hook_lock);
	if (o->opts.should_rerun)
		v.rerun = o->opts.should_rerun(o->opts.discovery, a,
					       o->opts.userdata);
	else
		v.rerun = atex_policy_rerun(
			a, o->opts.max_reruns,
			(const char *const *)o->rerun_statuses);
	if (o->opts.destructive)
		v.release = o->opts.destructive(o->opts.discovery, a,
						o->opts.userdata);
	else
		v.release =
			atex_policy_destructive_tag(o->opts.discovery, a, NULL);
	pthread_mutex_unlock(&o->hook_lock);
	/* A failure may be the system's state: the next attempt gets a
	 * clean system, unless the program says it does not matter. */
	if (v.rerun && !o->opts.rerun_on_same_system)
		v.release = true;
	return v;
}

/* Takes the next test for worker w, or returns false: nothing left for
 * it (queue empty and not needed as a spare, or abort). Waits as a spare
 * while tests still run elsewhere and spares are wanted. */
static bool take_test(struct adhoc *o, struct worker *w, size_t *test,
		      unsigned int *attempt)
{
	size_t pick;

	/* hook_lock before lock, as everywhere: next_test runs with both
	 * (the queue must hold still), so the wait for a test is made with
	 * `lock` alone and the queue looked at again after. */
	pthread_mutex_lock(&o->hook_lock);
	pthread_mutex_lock(&o->lock);
	while (!o->aborted && o->n_queue == 0) {
		/* Stay as a spare while others might still need a
		 * replacement or a re-run. */
		if (o->n_running == 0 || o->n_idle >= o->opts.max_spares)
			goto none;
		pthread_mutex_unlock(&o->hook_lock);
		w->idle = true;
		o->n_idle++;
		pthread_cond_wait(&o->changed, &o->lock);
		o->n_idle--;
		w->idle = false;
		pthread_mutex_unlock(&o->lock);
		pthread_mutex_lock(&o->hook_lock);
		pthread_mutex_lock(&o->lock);
	}
	if (o->aborted)
		goto none;
	pick = 0;
	if (o->opts.next_test) {
		pick = o->opts.next_test(o->opts.discovery, o->queue,
					 o->n_queue, o->opts.userdata);
		if (pick >= o->n_queue)
			pick = 0;
	} else if (o->opts.version >= 2 && o->opts.history) {
		pick = atex_policy_history(o->opts.discovery, o->queue,
					   o->n_queue, o->opts.history);
		if (pick >= o->n_queue)
			pick = 0;
	}
	*test = o->queue[pick];
	memmove(&o->queue[pick], &o->queue[pick + 1],
		(o->n_queue - pick - 1) * sizeof(*o->queue));
	o->n_queue--;
	o->n_running++;
	w->running = true;
	*attempt = ++o->attempts[*test];
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_unlock(&o->hook_lock);
	return true;
none:
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_unlock(&o->hook_lock);
	return false;
}

/* Books the end of an attempt: the test is done or queued again (in
 * front: a re-run should not wait behind the whole suite). */
static void finish_test(struct adhoc *o, struct worker *w, size_t test,
			bool rerun)
{
	pthread_mutex_lock(&o->lock);
	w->running = false;
	o->n_running--;
	if (rerun) {
		memmove(&o->queue[1], &o->queue[0],
			o->n_queue * sizeof(*o->queue));
		o->queue[0] = test;
		o->n_queue++;
	} else {
		o->n_done++;
	}
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
	wake(o);
}

/* ARTIFACTS/attempt.json (docs/PROTOCOL.md section 3) for every attempt,
 * before any aggregator reads the directory; taken right after the test
 * ended. Failing to write it costs the timings, never the results. */
static void write_attempt(const char *artifacts, const struct atex_attempt *a,
			  const struct timespec *started, double mono_started)
{
	struct atex_ingest_attempt rec = ATEX_INGEST_ATTEMPT_INIT;
	double mono_ended = atex_monotonic_ms();
	struct timespec ended;

	clock_gettime(CLOCK_REALTIME, &ended);
	atex_ingest_iso_time(rec.start, started);
	atex_ingest_iso_time(rec.end, &ended);
	rec.duration = (mono_ended - mono_started) / 1e3;
	rec.system = (char *)a->remote;
	rec.attempt = a->attempt;
	rec.exit_code = a->exit_code;
	rec.has_exit_code = a->exit_code >= 0;
	if (atex_ingest_write_attempt(artifacts, &rec) < 0)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: no timings for this attempt: %s", a->test_name,
			 atex_error_last());
}

/*
 * Runs one attempt of `test` on worker w and books it. Returns whether the
 * worker may go on with another test (false: its system must go; *lost
 * when it failed).
 */
static bool run_one(struct adhoc *o, struct worker *w, size_t test,
		    unsigned int attempt, bool *lost)
{
	const char *name =
		atex_fmf_discovery_test_name(o->opts.discovery, test);
	struct atex_orchestrator_event ev = {.type = ATEX_EVENT_TEST_STARTED,
					     .remote = w->name,
					     .test_name = shown_name(o, test),
					     .attempt = attempt};
	struct atex_attempt a = {.test = test,
				 .test_name = shown_name(o, test),
				 .attempt = attempt,
				 .remote = w->name,
				 .exit_code = -1};
	char *artifacts = make_artifacts_dir(o, test);
	char **env = attempt_env(o, attempt);
	char *why = NULL;
	struct verdict v;
	struct timespec started;
	double mono;

	emit(o, &ev);
	clock_gettime(CLOCK_REALTIME, &started);
	mono = atex_monotonic_ms();
	if (!artifacts || !env) {
		/* Local trouble (disk full): not the system's fault, not the
		 * test's; the attempt is an error result of its own. */
		a.rc = ATEX_EIO;
		why = atex_strdup(atex_error_last());
		atex_log(ATEX_LOG_ERROR, COMPONENT, "%s: %s", name,
			 atex_error_last());
	} else {
		a.rc = atex_executor_run_test(w->exec, name, artifacts,
					      (const char *const *)env,
					      &a.exit_code);
		if (a.rc < 0)
			why = atex_strdup(atex_error_last());
	}
	if (artifacts)
		write_attempt(artifacts, &a, &started, mono);
	a.artifacts_dir = artifacts;
	a.results = artifacts ? read_results(artifacts, &a.status) : NULL;
	if (!a.results)
		a.status = "error";
	v = judge(o, &a);
	if (artifacts)
		ev.ingest_rc = ingest(
			o, v.rerun ? o->opts.earlier : o->opts.aggregator, test,
			artifacts);

	if (v.lost)
		emit_system(o, ATEX_EVENT_SYSTEM_LOST, w->name,
			    why ? why : "the system failed under the test");
	/* Booked first, so that the event's counts include this test. */
	finish_test(o, w, test, v.rerun);
	ev.type = ATEX_EVENT_TEST_FINISHED;
	ev.ended = &a;
	ev.rerun = v.rerun;
	emit(o, &ev);

	/* Results no aggregator has are not thrown away. */
	if (artifacts && ev.ingest_rc == 0)
		atex_stage_remove(artifacts);
	else if (artifacts)
		atomic_fetch_add(&o->kept, 1);
	json_decref(a.results);
	if (env)
		free(env[o->n_env]);
	free(env);
	free(artifacts);
	free(why);
	*lost = v.lost;
	return !v.release && a.rc != ATEX_EIO;
}

/* ------------------------------------------------------------------------
 * Workers.
 */

/* Setup hook, executor, start. 0 or an error (set). */
static int setup_system(struct adhoc *o, struct worker *w)
{
	atex_executor *exec = NULL;
	int rc = 0;

	if (o->opts.setup) {
		/* Not under hook_lock: a setup may take minutes, and
		 * systems are set up in parallel (the header says so). */
		rc = o->opts.setup(w->remote, o->opts.userdata);
		if (rc < 0)
			return rc;
	}
	rc = o->opts.executor_new(&exec, w->remote, o->opts.userdata);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&o->lock);
	w->exec = exec;
	if (o->aborted)
		atex_executor_cancel(exec);
	pthread_mutex_unlock(&o->lock);
	return atex_executor_start(exec);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct adhoc *o = w->o;
	bool lost = false, ready;
	unsigned int attempt;
	size_t test;
	atex_executor *exec;
	int rc;

	rc = setup_system(o, w);
	pthread_mutex_lock(&o->lock);
	ready = rc == 0;
	if (ready) {
		o->setup_failures = 0;
	} else if (!o->aborted) {
		o->setup_failures++;
		note_failure(o, atex_error_last());
	}
	pthread_mutex_unlock(&o->lock);

	if (ready) {
		emit_system(o, ATEX_EVENT_SYSTEM_READY, w->name, NULL);
		while (!lost && take_test(o, w, &test, &attempt)) {
			if (!run_one(o, w, test, attempt, &lost))
				break;
		}
	} else if (rc != ATEX_ECANCELED) {
		/* A program with an event callback says it itself: once. */
		if (!o->opts.event)
			atex_log(ATEX_LOG_WARNING, COMPONENT,
				 "%s: setup failed: %s", w->name,
				 atex_error_last());
		emit_system(o, ATEX_EVENT_SYSTEM_FAILED, w->name,
			    atex_error_last());
	}

	pthread_mutex_lock(&o->lock);
	exec = w->exec;
	w->exec = NULL;
	pthread_mutex_unlock(&o->lock);
	/* stop cleans the system (finish steps, work directory); after a
	 * cancel only the removal is tried, which is all a lost system
	 * deserves (its finish steps would each wait on a dead link). */
	if (exec && lost)
		atex_executor_cancel(exec);
	if (exec && ready)
		atex_executor_stop(exec);
	atex_executor_free(exec);
	atex_remote_release(w->remote);
	w->remote = NULL;
	if (ready && !lost)
		emit_system(o, ATEX_EVENT_SYSTEM_RELEASED, w->name, NULL);

	pthread_mutex_lock(&o->lock);
	w->done = true;
	o->n_workers--;
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
	wake(o);
	return NULL;
}

/* How many systems the run can use now: one per test queued or running,
 * plus the spares while any test is left, at most max_systems. Lock
 * held. */
static size_t systems_wanted(const struct adhoc *o)
{
	size_t work = o->n_queue + o->n_running;
	size_t wanted = work ? work + o->opts.max_spares : 0;

	if (o->opts.max_systems && wanted > o->opts.max_systems)
		wanted = o->opts.max_systems;
	return wanted;
}

/* Takes a remote that arrived: a worker for it, or a release when it is
 * not needed. Lock held. */
static void take_remote(struct adhoc *o, atex_remote *r)
{
	struct worker *w;

	if (o->aborted || o->n_workers >= systems_wanted(o))
		goto release;
	w = atex_calloc(1, sizeof(*w));
	if (!w)
		goto release;
	w->o = o;
	w->remote = r;
	w->name = atex_strdup(atex_remote_name(r));
	if (!w->name || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		atex_log(ATEX_LOG_ERROR, COMPONENT, "%s: no worker thread",
			 atex_remote_name(r));
		free(w->name);
		free(w);
		goto release;
	}
	w->next = o->workers;
	o->workers = w;
	o->n_workers++;
	return;
release:
	/* A remote may take seconds to release (a container removed):
	 * fine here, it happens only for surplus arrivals. */
	atex_remote_release(r);
}

/* ------------------------------------------------------------------------
 * The serving thread.
 */

/* Joins and frees the workers that ended. Lock held (dropped around the
 * joins: an ended worker holds nothing). */
static void reap_workers(struct adhoc *o)
{
	struct worker **pp = &o->workers;

	while (*pp) {
		struct worker *w = *pp;

		if (!w->done) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		pthread_mutex_unlock(&o->lock);
		pthread_join(w->thread, NULL);
		free(w->name);
		free(w);
		pthread_mutex_lock(&o->lock);
		pp = &o->workers;
	}
}

static long requested_total(struct adhoc *o)
{
	long sum = 0;

	for (size_t i = 0; i < o->opts.n_provisioners; i++)
		sum += o->requested[i];
	return sum;
}

static size_t live_provisioners(struct adhoc *o)
{
	size_t n = 0;

	for (size_t i = 0; i < o->opts.n_provisioners; i++)
		n += !o->prov_failed[i];
	return n;
}

/* Asks for what is missing, spread over the provisioners still alive;
 * forgets pending requests once more is coming than can be used. Lock
 * held. */
static void balance_requests(struct adhoc *o)
{
	size_t wanted = systems_wanted(o);
	long have = (long)o->n_workers + requested_total(o);
	size_t alive = live_provisioners(o);
	long missing = (long)wanted - have;

	if (missing > 0 && alive > 0) {
		long share = missing / (long)alive,
		     extra = missing % (long)alive;

		for (size_t i = 0; i < o->opts.n_provisioners; i++) {
			long n = share + (extra > 0);

			if (o->prov_failed[i] || n == 0)
				continue;
			extra -= extra > 0;
			if (atex_provisioner_provision(o->opts.provisioners[i],
						       (int)n) == 0)
				o->requested[i] += n;
		}
	} else if (o->n_workers >= wanted && requested_total(o) > 0) {
		for (size_t i = 0; i < o->opts.n_provisioners; i++) {
			atex_provisioner_clear(o->opts.provisioners[i]);
			o->requested[i] = 0;
		}
	}
}

/* Takes every remote the provisioners have ready. Lock held (dropped
 * around get_remote, which a provisioner may serve slowly). */
static void collect_remotes(struct adhoc *o, const struct pollfd *fds)
{
	for (size_t i = 0; i < o->opts.n_provisioners; i++) {
		atex_provisioner *p = o->opts.provisioners[i];
		atex_remote *r = NULL;
		int rc;

		if (o->prov_failed[i] || !(fds[i].revents & (POLLIN | POLLERR)))
			continue;
		/* Every remote ready now, not one per wake-up: a pool of
		 * hundreds arrives in bursts. */
		do {
			pthread_mutex_unlock(&o->lock);
			rc = atex_provisioner_get_remote(&r, p, 0);
			pthread_mutex_lock(&o->lock);
			if (rc == 0) {
				if (o->requested[i] > 0)
					o->requested[i]--;
				take_remote(o, r);
			}
		} while (rc == 0);
		if (rc != ATEX_ETIMEDOUT && rc != ATEX_ECANCELED) {
			/* The message names the provisioner already. */
			atex_log(ATEX_LOG_ERROR, COMPONENT, "%s",
				 atex_error_last());
			note_failure(o, atex_error_last());
			o->prov_failed[i] = true;
			o->requested[i] = 0;
		}
	}
}

/* Why the run cannot go on, or 0. Lock held. */
static int stuck(struct adhoc *o)
{
	unsigned int max = o->opts.max_setup_failures
				   ? o->opts.max_setup_failures
				   : DEFAULT_SETUP_FAILURES;

	if (o->setup_failures >= max)
		return atex_error_set(ATEX_EINFRA,
				      "%u system setups failed in a row; the "
				      "last: %s",
				      o->setup_failures,
				      o->last_failure ? o->last_failure : "?");
	if (live_provisioners(o) == 0 && o->n_workers == 0 && o->n_queue > 0)
		return atex_error_set(ATEX_EINFRA,
				      "no provisioner can give systems; the "
				      "last failure: %s",
				      o->last_failure ? o->last_failure : "?");
	return 0;
}

/* Clears every provisioner's pending requests. Lock held. */
static void forget_requests(struct adhoc *o)
{
	for (size_t i = 0; i < o->opts.n_provisioners; i++) {
		atex_provisioner_clear(o->opts.provisioners[i]);
		o->requested[i] = 0;
	}
}

/* Ends the run: no more tests start, workers are told to finish, the
 * serving thread waits for them and clears the provisioners. Lock held. */
static int wind_down(struct adhoc *o, int result)
{
	o->n_not_run = o->n_queue;
	o->n_queue = 0;
	/* Before the workers end: their releases must not make room for
	 * requests nobody needs any more. */
	forget_requests(o);
	pthread_cond_broadcast(&o->changed);
	while (o->workers) {
		reap_workers(o);
		if (o->workers) {
			/* Woken by every worker's end. */
			pthread_mutex_unlock(&o->lock);
			atex_wait_fd(o->wake_fd, POLLIN, -1, NULL);
			drain(o);
			pthread_mutex_lock(&o->lock);
		}
	}
	o->finished = true;
	o->result = result;
	return result;
}

int atex_orchestrator_serve_once(atex_orchestrator *orch, int timeout_ms)
{
	struct adhoc *o = orch ? to_adhoc(orch) : NULL;
	struct pollfd *fds;
	size_t n;
	int rc;

	if (!o)
		return atex_error_set(ATEX_EINVAL, "orchestrator: NULL");
	if (o->finished)
		return o->result < 0 ? atex_error_set(o->result, "%s",
						      "orchestrator: the run "
						      "has ended")
				     : 0;
	n = o->opts.n_provisioners;
	fds = atex_calloc(n + 1, sizeof(*fds));
	if (!fds)
		return atex_error_oom();

	pthread_mutex_lock(&o->lock);
	reap_workers(o);
	if (o->aborted) {
		rc = wind_down(o, atex_error_set(ATEX_ECANCELED,
						 "orchestrator: aborted"));
		goto out;
	}
	if (o->n_queue == 0 && o->n_running == 0 && o->n_workers == 0) {
		rc = wind_down(o, 0);
		goto out;
	}
	rc = stuck(o);
	if (rc < 0) {
		char *msg = atex_strdup(atex_error_last());

		wind_down(o, rc);
		rc = atex_error_set(rc, "%s", msg ? msg : "systems failed");
		free(msg);
		goto out;
	}
	balance_requests(o);
	for (size_t i = 0; i < n; i++) {
		fds[i].fd = o->prov_failed[i]
				    ? -1
				    : atex_provisioner_ready_fd(
					      o->opts.provisioners[i]);
		fds[i].events = POLLIN;
	}
	fds[n].fd = o->wake_fd;
	fds[n].events = POLLIN;
	pthread_mutex_unlock(&o->lock);

	if (poll(fds, n + 1, timeout_ms) < 0 && errno != EINTR) {
		rc = atex_error_set(ATEX_EIO, "orchestrator: poll: %s",
				    strerror(errno));
		free(fds);
		return rc;
	}
	if (fds[n].revents & POLLIN)
		drain(o);

	pthread_mutex_lock(&o->lock);
	collect_remotes(o, fds);
	rc = 1;
out:
	pthread_mutex_unlock(&o->lock);
	free(fds);
	return rc;
}

int atex_orchestrator_serve_forever(atex_orchestrator *o)
{
	int rc;

	do
		rc = atex_orchestrator_serve_once(o, -1);
	while (rc == 1);
	return rc;
}

void atex_orchestrator_abort(atex_orchestrator *orch)
{
	struct adhoc *o = to_adhoc(orch);

	if (!orch)
		return;
	pthread_mutex_lock(&o->lock);
	o->aborted = true;
	/* Pending requests go first: the workers release their systems
	 * as they stop, and a provisioner bounded by a count would fill
	 * the freed slot with one it was still asked for (a new paid
	 * reservation after Ctrl-C). */
	forget_requests(o);
	for (struct worker *w = o->workers; w; w = w->next) {
		if (w->exec)
			atex_executor_cancel(w->exec);
	}
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
	wake(o);
}

size_t atex_orchestrator_done(const atex_orchestrator *orch)
{
	struct adhoc *o = (struct adhoc *)to_adhoc(orch);
	size_t n;

	pthread_mutex_lock(&o->lock);
	n = o->n_done;
	pthread_mutex_unlock(&o->lock);
	return n;
}

size_t atex_orchestrator_not_run(const atex_orchestrator *orch)
{
	struct adhoc *o = (struct adhoc *)to_adhoc(orch);
	size_t n;

	pthread_mutex_lock(&o->lock);
	n = o->n_not_run;
	pthread_mutex_unlock(&o->lock);
	return n;
}

/* ------------------------------------------------------------------------
 * Life cycle.
 */

void atex_orchestrator_free(atex_orchestrator *orch)
{
	struct adhoc *o = to_adhoc(orch);

	if (!orch)
		return;
	if (!o->finished && o->workers) {
		atex_orchestrator_abort(orch);
		pthread_mutex_lock(&o->lock);
		wind_down(o, ATEX_ECANCELED);
		pthread_mutex_unlock(&o->lock);
	}
	/* Not with results in it that no aggregator has. */
	if (o->own_work_dir && atomic_load(&o->kept) == 0)
		atex_stage_remove(o->work_dir);
	else if (o->own_work_dir)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%zu tests' artifacts no aggregator took are kept in "
			 "%s",
			 atomic_load(&o->kept), o->work_dir);
	for (size_t i = 0; i < o->n_env; i++)
		free(o->env[i]);
	free(o->env);
	for (size_t i = 0; o->rerun_statuses && o->rerun_statuses[i]; i++)
		free(o->rerun_statuses[i]);
	free(o->rerun_statuses);
	free(o->platform);
	free(o->work_dir);
	free(o->queue);
	free(o->attempts);
	free(o->infra);
	for (size_t i = 0; i < o->n_shown; i++)
		free(o->shown[i]);
	free(o->shown);
	free(o->requested);
	free(o->prov_failed);
	free(o->last_failure);
	if (o->wake_fd >= 0)
		close(o->wake_fd);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->hook_lock);
	pthread_cond_destroy(&o->changed);
	free(orch);
}

static int check_options(const struct atex_orchestrator_options *opts)
{
	size_t count;

	if (!opts)
		return atex_error_set(ATEX_EINVAL, "orchestrator: no options");
	if (opts->version < 1 ||
	    opts->version > ATEX_ORCHESTRATOR_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "orchestrator: options version %u "
				      "unknown",
				      opts->version);
	if (!opts->platform || !*opts->platform || !opts->discovery ||
	    !opts->executor_new || !opts->aggregator)
		return atex_error_set(ATEX_EINVAL,
				      "orchestrator: platform, discovery, "
				      "executor_new and aggregator are "
				      "required");
	if (!opts->provisioners || opts->n_provisioners == 0)
		return atex_error_set(ATEX_EINVAL,
				      "orchestrator: no provisioner");
	/* Systems are waited for on that descriptor: without it, none would
	 * ever be seen. */
	for (size_t i = 0; i < opts->n_provisioners; i++) {
		if (!opts->provisioners[i] ||
		    atex_provisioner_ready_fd(opts->provisioners[i]) < 0)
			return atex_error_set(
				ATEX_EINVAL,
				"orchestrator: provisioner %zu (%s) has no "
				"ready descriptor (ops ready_fd)",
				i + 1,
				opts->provisioners[i]
					? atex_provisioner_name(
						  opts->provisioners[i])
					: "NULL");
	}
	count = atex_fmf_discovery_count(opts->discovery);
	for (size_t i = 0; opts->tests && i < opts->n_tests; i++) {
		if (opts->tests[i] >= count)
			return atex_error_set(ATEX_EINVAL,
					      "orchestrator: test index %zu "
					      "out of range (%zu tests)",
					      opts->tests[i], count);
	}
	return 0;
}

/* Copies a NULL-terminated string list. 0 or ATEX_ENOMEM. */
static int copy_strings(char ***out, size_t *n_out, const char *const *list)
{
	size_t n = 0;
	char **copy;

	while (list && list[n])
		n++;
	copy = atex_calloc(n + 1, sizeof(*copy));
	if (!copy)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		copy[i] = atex_strdup(list[i]);
		if (!copy[i]) {
			while (i-- > 0)
				free(copy[i]);
			free(copy);
			return ATEX_ENOMEM;
		}
	}
	*out = copy;
	if (n_out)
		*n_out = n;
	return 0;
}

static int init_work_dir(struct adhoc *o, const char *dir)
{
	const char *tmp = getenv("TMPDIR");

	if (dir) {
		o->work_dir = atex_strdup(dir);
		if (!o->work_dir)
			return atex_error_oom();
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return atex_error_set(ATEX_EIO, "%s: %s", dir,
					      strerror(errno));
		return 0;
	}
	o->work_dir =
		atex_sprintf("%s/atex-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!o->work_dir)
		return atex_error_oom();
	if (!mkdtemp(o->work_dir))
		return atex_error_set(ATEX_EIO, "%s: %s", o->work_dir,
				      strerror(errno));
	o->own_work_dir = true;
	return 0;
}

/* Every system takes open files: the soft limit up to the hard one, once
 * per process (the header says so). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;

	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		atex_log(ATEX_LOG_DEBUG, COMPONENT,
			 "open files limit stays %llu: %s",
			 (unsigned long long)was, strerror(errno));
	else
		atex_log(ATEX_LOG_DEBUG, COMPONENT,
			 "open files limit raised from %llu to %llu",
			 (unsigned long long)was,
			 (unsigned long long)rl.rlim_cur);
}

int atex_adhoc_orchestrator_new(atex_orchestrator **out,
				const struct atex_orchestrator_options *opts)
{
	static pthread_once_t nofile_once = PTHREAD_ONCE_INIT;

	pthread_once(&nofile_once, raise_nofile);
	struct atex_orchestrator *orch;
	struct adhoc *o;
	size_t count;
	int rc;

	rc = check_options(opts);
	if (rc < 0)
		return rc;
	orch = atex_calloc(1, sizeof(*orch));
	if (!orch)
		return atex_error_oom();
	o = to_adhoc(orch);
	o->opts = *opts;
	o->wake_fd = -1;
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->hook_lock, NULL);
	pthread_cond_init(&o->changed, NULL);

	count = atex_fmf_discovery_count(opts->discovery);
	o->n_tests_total = opts->tests ? opts->n_tests : count;
	o->platform = atex_strdup(opts->platform);
	o->queue = atex_calloc(o->n_tests_total + 1, sizeof(*o->queue));
	o->attempts = atex_calloc(count + 1, sizeof(*o->attempts));
	o->infra = atex_calloc(count + 1, sizeof(*o->infra));
	o->shown = atex_calloc(count + 1, sizeof(*o->shown));
	o->n_shown = o->shown ? count : 0;
	o->requested = atex_calloc(opts->n_provisioners, sizeof(long));
	o->prov_failed = atex_calloc(opts->n_provisioners, sizeof(bool));
	if (!o->platform || !o->queue || !o->attempts || !o->infra ||
	    !o->shown || name_repeats(o, count) < 0 || !o->requested ||
	    !o->prov_failed ||
	    copy_strings(&o->env, &o->n_env, opts->env) < 0 ||
	    (opts->rerun_statuses && copy_strings(&o->rerun_statuses, NULL,
						  opts->rerun_statuses) < 0)) {
		rc = atex_error_oom();
		goto fail;
	}
	for (size_t i = 0; i < o->n_tests_total; i++)
		o->queue[i] = opts->tests ? opts->tests[i] : i;
	o->n_queue = o->n_tests_total;
	/* The options keep pointers the caller may free: only ours stay. */
	o->opts.platform = o->platform;
	o->opts.tests = NULL;
	o->opts.env = NULL;
	o->opts.rerun_statuses = NULL;
	o->opts.work_dir = NULL;

	o->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->wake_fd < 0) {
		rc = atex_error_set(ATEX_EIO, "orchestrator: eventfd: %s",
				    strerror(errno));
		goto fail;
	}
	rc = init_work_dir(o, opts->work_dir);
	if (rc < 0)
		goto fail;
	*out = orch;
	return 0;
fail:
	o->finished = true;
	atex_orchestrator_free(orch);
	return rc;
}
