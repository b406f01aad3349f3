/*
 * test_orchestrator.c - the ad-hoc orchestrator end to end over the local
 * provisioner, with the fixture tree integration/trees/orchestrator.
 *
 * The aggregator here is the test's own, written against the public ops
 * table (as a user program would): it records every ingest, so each test
 * can check that every test has exactly one final result, which attempts
 * went to the earlier-attempts aggregator, and in which order things
 * happened. Events are recorded the same way.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "atex/atex.h"

/* ------------------------------------------------------------------------
 * A recording aggregator.
 */

#define MAX_RECORDS 256

struct record {
	char test[128];
	char status[16]; /* of the test's own result */
	int n_results;
};

struct recorder {
	struct atex_aggregator base;
	bool fail; /* every ingest fails, as on a full disk */
	pthread_mutex_t lock;
	struct record records[MAX_RECORDS];
	int n;
};

static int rec_start(atex_aggregator *a)
{
	(void)a;
	return 0;
}

static int rec_stop(atex_aggregator *a)
{
	(void)a;
	return 0;
}

static void rec_free(atex_aggregator *a)
{
	(void)a;
}

static int rec_ingest(atex_aggregator *a, const char *platform,
		      const char *test, const char *dir)
{
	struct recorder *r = (struct recorder *)a;
	struct record rec = {0};
	char path[4096], line[8192];
	FILE *f;

	if (r->fail)
		return atex_error_set_message(ATEX_EIO, "recorder: disk full");
	assert_string_equal(platform, "test-platform");
	snprintf(rec.test, sizeof(rec.test), "%s", test);
	snprintf(rec.status, sizeof(rec.status), "none");
	snprintf(path, sizeof(path), "%s/results", dir);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL);

		rec.n_results++;
		if (j && !json_object_get(j, "name"))
			snprintf(rec.status, sizeof(rec.status), "%s",
				 json_string_value(
					 json_object_get(j, "status")));
		json_decref(j);
	}
	if (f)
		fclose(f);
	pthread_mutex_lock(&r->lock);
	assert_true(r->n < MAX_RECORDS);
	r->records[r->n++] = rec;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static const struct atex_aggregator_ops rec_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = rec_start,
	.ingest = rec_ingest,
	.stop = rec_stop,
	.free = rec_free,
};

static void rec_init(struct recorder *r)
{
	memset(r, 0, sizeof(*r));
	r->base.ops = &rec_ops;
	pthread_mutex_init(&r->lock, NULL);
}

/* How many records of `test`; the last one's status in *status. */
static int rec_count(struct recorder *r, const char *test, const char **status)
{
	int n = 0;

	for (int i = 0; i < r->n; i++) {
		if (strcmp(r->records[i].test, test) == 0) {
			n++;
			if (status)
				*status = r->records[i].status;
		}
	}
	return n;
}

/* ------------------------------------------------------------------------
 * The fixture: a discovery, a started local provisioner, events.
 */

#define MAX_EVENTS 1024

struct fixture {
	atex_fmf_discovery *disc;
	atex_provisioner *prov;
	struct recorder final, earlier;
	struct atex_orchestrator_options opts;
	size_t tests[64];
	/* Events as "TYPE remote test attempt" strings, in order. */
	char *events[MAX_EVENTS];
	int n_events;
	int ready, lost, released, failed;
	double started_ms[64]; /* per discovery index: first start */
	size_t max_running;
	int factory_calls;
	bool factory_fails;
	atex_orchestrator *abort_on_fail; /* abort from the event callback */
	atex_fmf_stage *stage;		  /* shared by the executors when set */
	int max_stages; /* atex-stage-* seen at test starts, or -1 */
	/* Systems by generation: "remote#N" where N counts SYSTEM_READY of
	 * that remote name, and the system each test attempt started on. */
	char system_of[64][4][64]; /* [discovery index][attempt - 1] */
	int generation[16];	   /* by slot number of "local:N" */
	int options_version;	   /* of the executor options; 0: current */
	/* TEST_FINISHED with ingest_rc < 0: how many, and the kept
	 * artifacts directory that has its results file. */
	int not_ingested;
	char kept[4096];
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int count_stages(void);

static void on_event(const struct atex_orchestrator_event *ev, void *data)
{
	struct fixture *f = data;
	char buf[512];

	switch (ev->type) {
	case ATEX_EVENT_SYSTEM_READY:
		f->ready++;
		f->generation[atoi(strchr(ev->remote, ':') + 1) % 16]++;
		break;
	case ATEX_EVENT_SYSTEM_LOST:
		f->lost++;
		break;
	case ATEX_EVENT_SYSTEM_RELEASED:
		f->released++;
		break;
	case ATEX_EVENT_SYSTEM_FAILED:
		f->failed++;
		break;
	case ATEX_EVENT_TEST_FINISHED:
		if (ev->ingest_rc < 0) {
			f->not_ingested++;
			snprintf(f->kept, sizeof(f->kept), "%s/results",
				 ev->ended->artifacts_dir);
		}
		break;
	case ATEX_EVENT_TEST_STARTED:
		if (f->max_stages >= 0 && count_stages() > f->max_stages)
			f->max_stages = count_stages();
		/* The counts include the test starting. */
		if (ev->tests_running > f->max_running)
			f->max_running = ev->tests_running;
		break;
	}
	/* Stop at the first failure, as a program may. */
	if (f->abort_on_fail && ev->type == ATEX_EVENT_TEST_FINISHED &&
	    strcmp(ev->ended->status, "fail") == 0) {
		atex_orchestrator_abort(f->abort_on_fail);
		/* Others may have finished since the event's counts. */
		assert_true(atex_orchestrator_done(f->abort_on_fail) >=
			    ev->tests_done);
	}
	snprintf(buf, sizeof(buf), "%d %s %s %u%s", ev->type, ev->remote,
		 ev->test_name ? ev->test_name : "-", ev->attempt,
		 ev->rerun ? " rerun" : "");
	if (f->n_events < MAX_EVENTS)
		f->events[f->n_events++] = strdup(buf);
	if (ev->type == ATEX_EVENT_TEST_STARTED) {
		long i = atex_fmf_discovery_find(f->disc, ev->test_name);
		int slot = atoi(strchr(ev->remote, ':') + 1) % 16;

		if (i >= 0 && f->started_ms[i] == 0)
			f->started_ms[i] = now_ms();
		if (i >= 0 && i < 64 && ev->attempt >= 1 && ev->attempt <= 4)
			snprintf(f->system_of[i][ev->attempt - 1], 64, "%s#%d",
				 ev->remote, f->generation[slot]);
	}
}

static int make_executor(atex_executor **out, atex_remote *r, void *data)
{
	struct fixture *f = data;
	struct atex_fmf_executor_options o = ATEX_FMF_EXECUTOR_OPTIONS_INIT;

	f->factory_calls++;
	if (f->factory_fails)
		return ATEX_EIO; /* no message: the orchestrator copes */
	o.connection = atex_remote_connection(r);
	o.discovery = f->disc;
	o.stage = f->stage;
	if (f->options_version)
		o.version = (unsigned int)f->options_version;
	return atex_fmf_executor_new(out, &o);
}

static struct fixture *fixture_new(int slots, const char *const *names)
{
	struct atex_fmf_discover_options d = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct fixture *f = calloc(1, sizeof(*f));
	char tree[4096];
	size_t n = 0;

	assert_non_null(f);
	snprintf(tree, sizeof(tree), "%s/orchestrator",
		 getenv("ATEX_TEST_TREES"));
	d.plan = "/plan";
	assert_int_equal(atex_fmf_discover(&f->disc, tree, &d), 0);
	for (; names[n]; n++) {
		long i = atex_fmf_discovery_find(f->disc, names[n]);

		assert_true(i >= 0);
		f->tests[n] = (size_t)i;
	}
	assert_int_equal(atex_local_provisioner_new(&f->prov, slots), 0);
	assert_int_equal(atex_provisioner_start(f->prov), 0);
	rec_init(&f->final);
	rec_init(&f->earlier);
	f->opts = (struct atex_orchestrator_options)
		ATEX_ORCHESTRATOR_OPTIONS_INIT;
	f->opts.platform = "test-platform";
	f->opts.discovery = f->disc;
	f->opts.tests = f->tests;
	f->opts.n_tests = n;
	f->opts.provisioners = &f->prov;
	f->opts.n_provisioners = 1;
	f->opts.executor_new = make_executor;
	f->opts.aggregator = &f->final.base;
	f->opts.earlier = &f->earlier.base;
	f->opts.event = on_event;
	f->opts.userdata = f;
	f->max_stages = -1;
	return f;
}

static void fixture_free(struct fixture *f)
{
	assert_int_equal(atex_provisioner_stop(f->prov), 0);
	atex_provisioner_free(f->prov);
	atex_fmf_discovery_free(f->disc);
	for (int i = 0; i < f->n_events; i++)
		free(f->events[i]);
	free(f);
}

/* Runs to the end; returns serve_forever's code. */
static int run(struct fixture *f)
{
	atex_orchestrator *o = NULL;
	int rc;

	assert_int_equal(atex_adhoc_orchestrator_new(&o, &f->opts), 0);
	rc = atex_orchestrator_serve_forever(o);
	if (rc < 0)
		printf("# serve: %s\n", atex_error_last());
	atex_orchestrator_free(o);
	return rc;
}

/* ------------------------------------------------------------------------
 * Tests.
 */

/* 8 one-second tests on 4 slots: all run, each ingested once, 4 at a
 * time (about 2 s, not 8), and the pool is released at the end. */
static void test_pool(void **state)
{
	static const char *const names[] = {"/quick/1", "/quick/2", "/quick/3",
					    "/quick/4", "/quick/5", "/quick/6",
					    "/quick/7", "/quick/8", NULL};
	struct fixture *f = fixture_new(4, names);
	double t0 = now_ms(), took;
	const char *status = NULL;

	(void)state;
	assert_int_equal(run(f), 0);
	took = now_ms() - t0;
	assert_int_equal(f->final.n, 8);
	assert_int_equal(f->earlier.n, 0);
	for (int i = 0; names[i]; i++) {
		assert_int_equal(rec_count(&f->final, names[i], &status), 1);
		assert_string_equal(status, "pass");
	}
	assert_int_equal(f->max_running, 4);
	assert_int_equal(f->ready, 4);
	assert_int_equal(f->released, 4);
	printf("# 8 x 1 s on 4 slots: %.0f ms\n", took);
	assert_true(took < 4500);
	fixture_free(f);
}

/* An aggregator that cannot take a test (a full disk): the event says
 * so, and the test's artifacts are kept, not removed with the rest. */
static void test_ingest_fails(void **state)
{
	static const char *const names[] = {"/quick/1", NULL};
	struct fixture *f = fixture_new(1, names);
	char work[] = "/tmp/atex-orch-kept-XXXXXX", cmd[128];

	(void)state;
	assert_non_null(mkdtemp(work));
	f->opts.work_dir = work;
	f->final.fail = true;
	atex_log_set_level(-1); /* the error is expected: silence */
	assert_int_equal(run(f), 0);
	atex_log_set_level(ATEX_LOG_WARNING);
	assert_int_equal(f->not_ingested, 1);
	assert_int_equal(f->final.n, 0);
	assert_int_equal(access(f->kept, F_OK), 0);
	assert_non_null(strstr(f->kept, work));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
	assert_int_equal(system(cmd), 0);
	fixture_free(f);
}

/* --reruns: the flaky test passes on its second attempt, the first kept
 * as an earlier attempt; a test that always fails runs 1 + 2 times and
 * its last attempt is final. */
static void test_reruns(void **state)
{
	static const char *const names[] = {"/flaky", "/always-fail", NULL};
	struct fixture *f = fixture_new(2, names);
	const char *status = NULL;

	(void)state;
	f->opts.max_reruns = 2;
	assert_int_equal(run(f), 0);
	assert_int_equal(rec_count(&f->final, "/flaky", &status), 1);
	assert_string_equal(status, "pass");
	assert_int_equal(rec_count(&f->earlier, "/flaky", &status), 1);
	assert_string_equal(status, "fail");
	assert_int_equal(rec_count(&f->final, "/always-fail", &status), 1);
	assert_string_equal(status, "fail");
	assert_int_equal(rec_count(&f->earlier, "/always-fail", NULL), 2);
	/* Every re-run on a clean system: never where the attempt before
	 * failed. */
	for (int t = 0; names[t]; t++) {
		long i = atex_fmf_discovery_find(f->disc, names[t]);

		for (int n = 1; n < 4 && f->system_of[i][n][0]; n++) {
			printf("# %s attempt %d on %s, then %s\n", names[t], n,
			       f->system_of[i][n - 1], f->system_of[i][n]);
			assert_string_not_equal(f->system_of[i][n - 1],
						f->system_of[i][n]);
		}
	}
	assert_true(f->factory_calls >= 4);
	fixture_free(f);
}

/* rerun_on_same_system: the flaky test's second attempt runs where the
 * first failed (one slot, one system set up). max_systems caps the pool
 * below the provisioner's slots. */
static void test_rerun_same_system(void **state)
{
	static const char *const names[] = {"/flaky", "/quick/1", "/quick/2",
					    NULL};
	struct fixture *f = fixture_new(3, names);
	const char *status = NULL;

	(void)state;
	f->opts.max_reruns = 1;
	f->opts.rerun_on_same_system = true;
	f->opts.max_systems = 1;
	assert_int_equal(run(f), 0);
	assert_int_equal(rec_count(&f->final, "/flaky", &status), 1);
	assert_string_equal(status, "pass");
	assert_int_equal(f->factory_calls, 1);
	assert_int_equal(f->max_running, 1);
	fixture_free(f);
}

/* Without reruns, a failure is final at once. */
static void test_no_reruns(void **state)
{
	static const char *const names[] = {"/flaky", NULL};
	struct fixture *f = fixture_new(1, names);
	const char *status = NULL;

	(void)state;
	assert_int_equal(run(f), 0);
	assert_int_equal(rec_count(&f->final, "/flaky", &status), 1);
	assert_string_equal(status, "fail");
	assert_int_equal(f->earlier.n, 0);
	fixture_free(f);
}

/* A destructive test's system is released right after it, and the next
 * test runs on a fresh one (one slot: released, then handed out again). */
static void test_destructive(void **state)
{
	static const char *const names[] = {"/destroy", "/quick/1", NULL};
	struct fixture *f = fixture_new(1, names);

	(void)state;
	assert_int_equal(run(f), 0);
	assert_int_equal(f->final.n, 2);
	assert_int_equal(f->ready, 2);
	assert_int_equal(f->released, 2);
	assert_int_equal(f->factory_calls, 2);
	fixture_free(f);
}

/* A system that dies under a test (the wrapper killed: no exit code) is
 * lost and replaced, and the test runs again on the replacement: one
 * final pass, the infra attempt kept as an earlier one, nothing else
 * lost or duplicated. */
static void test_lost_system(void **state)
{
	static const char *const names[] = {"/lose-system", "/quick/1",
					    "/quick/2", NULL};
	struct fixture *f = fixture_new(2, names);
	const char *status = NULL;

	(void)state;
	assert_int_equal(run(f), 0);
	assert_int_equal(f->lost, 1);
	assert_int_equal(rec_count(&f->final, "/lose-system", &status), 1);
	assert_string_equal(status, "pass");
	assert_int_equal(rec_count(&f->earlier, "/lose-system", &status), 1);
	assert_string_equal(status, "infra");
	assert_int_equal(rec_count(&f->final, "/quick/1", NULL), 1);
	assert_int_equal(rec_count(&f->final, "/quick/2", NULL), 1);
	assert_int_equal(f->final.n, 3);
	fixture_free(f);
}

/* The order hooks: on one slot, tests start in the order the policy
 * picks. */
static void check_order(atex_next_test_hook hook, const char *const *want)
{
	static const char *const names[] = {"/order/short", "/order/longest",
					    "/order/middle", NULL};
	struct fixture *f = fixture_new(1, names);

	f->opts.next_test = hook;
	assert_int_equal(run(f), 0);
	for (int i = 0; want[i + 1]; i++) {
		long a = atex_fmf_discovery_find(f->disc, want[i]);
		long b = atex_fmf_discovery_find(f->disc, want[i + 1]);

		assert_true(f->started_ms[a] <= f->started_ms[b]);
	}
	fixture_free(f);
}

static void test_order(void **state)
{
	static const char *const fmf[] = {"/order/short", "/order/longest",
					  "/order/middle", NULL};
	static const char *const longest[] = {"/order/longest", "/order/middle",
					      "/order/short", NULL};
	static const char *const priority[] = {
		"/order/middle", "/order/longest", "/order/short", NULL};

	(void)state;
	check_order(NULL, fmf);
	check_order(atex_policy_longest_first, longest);
	check_order(atex_policy_priority, priority);
}

/* Setups that always fail end the run with ATEX_EINFRA after the bound,
 * naming the reason, with no test run. */
static void test_setup_failures(void **state)
{
	static const char *const names[] = {"/quick/1", NULL};
	struct fixture *f = fixture_new(2, names);
	atex_orchestrator *o = NULL;

	(void)state;
	f->factory_fails = true;
	f->opts.max_setup_failures = 3;
	assert_int_equal(atex_adhoc_orchestrator_new(&o, &f->opts), 0);
	assert_int_equal(atex_orchestrator_serve_forever(o), ATEX_EINFRA);
	assert_non_null(strstr(atex_error_last(), "3 system setups failed"));
	assert_int_equal(atex_orchestrator_not_run(o), 1);
	assert_int_equal(f->final.n, 0);
	assert_true(f->factory_calls >= 3);
	atex_orchestrator_free(o);
	fixture_free(f);
}

struct aborter {
	atex_orchestrator *o;
	int delay_ms;
};

static void *abort_later(void *arg)
{
	struct aborter *a = arg;

	usleep((useconds_t)a->delay_ms * 1000);
	atex_orchestrator_abort(a->o);
	return NULL;
}

/* Abort from another thread while a 60 s test runs: serve returns
 * ECANCELED within seconds, the canceled test's results are ingested
 * (an infra result), the other queued tests are not run, and every
 * system is released. */
static void test_abort(void **state)
{
	static const char *const names[] = {"/long", "/quick/1", "/quick/2",
					    NULL};
	struct fixture *f = fixture_new(1, names);
	struct aborter ab = {.delay_ms = 1500};
	const char *status = NULL;
	pthread_t t;
	double t0;

	(void)state;
	assert_int_equal(atex_adhoc_orchestrator_new(&ab.o, &f->opts), 0);
	assert_int_equal(pthread_create(&t, NULL, abort_later, &ab), 0);
	t0 = now_ms();
	assert_int_equal(atex_orchestrator_serve_forever(ab.o), ATEX_ECANCELED);
	printf("# aborted after %.0f ms\n", now_ms() - t0);
	assert_true(now_ms() - t0 < 6000);
	pthread_join(t, NULL);
	assert_int_equal(rec_count(&f->final, "/long", &status), 1);
	assert_string_equal(status, "infra");
	assert_int_equal(atex_orchestrator_not_run(ab.o), 2);
	assert_int_equal(f->released, f->ready);
	atex_orchestrator_free(ab.o);
	fixture_free(f);
}

/* The event callback may call the orchestrator: abort at the first
 * failure, read the counters. Three systems, so other workers are busy
 * in the queue while it does. */
static void test_abort_from_event(void **state)
{
	static const char *const names[] = {
		"/always-fail", "/quick/1", "/quick/2", "/quick/3",
		"/quick/4",	"/quick/5", "/quick/6", NULL};
	struct fixture *f = fixture_new(3, names);
	atex_orchestrator *o = NULL;

	(void)state;
	/* A next_test hook too: it runs under the orchestrator's lock,
	 * which the callback's abort takes. */
	f->opts.next_test = atex_policy_longest_first;
	assert_int_equal(atex_adhoc_orchestrator_new(&o, &f->opts), 0);
	f->abort_on_fail = o;
	assert_int_equal(atex_orchestrator_serve_forever(o), ATEX_ECANCELED);
	assert_int_equal(rec_count(&f->final, "/always-fail", NULL), 1);
	assert_true(atex_orchestrator_not_run(o) >= 1);
	assert_int_equal(f->released, f->ready);
	atex_orchestrator_free(o);
	fixture_free(f);
}

/* Spares: with room for them, max_spares systems beyond the running
 * tests are set up. */
static void test_spares(void **state)
{
	static const char *const names[] = {"/quick/1", NULL};
	struct fixture *f = fixture_new(3, names);

	(void)state;
	f->opts.max_spares = 2;
	assert_int_equal(run(f), 0);
	assert_int_equal(f->final.n, 1);
	/* The test takes 1 s, setting a system up a few ms: both spares
	 * are ready (idle) before it ends. */
	assert_int_equal(f->factory_calls, 3);
	assert_int_equal(f->ready, 3);
	assert_int_equal(f->released, f->ready);
	fixture_free(f);
}

/* Counts $TMPDIR/atex-stage-* directories. */
static int count_stages(void)
{
	char cmd[4096];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -d %s/atex-stage-* 2>/dev/null | wc -l",
		 getenv("TMPDIR"));
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* One stage shared by every executor: nothing staged per system, the
 * shared one left in place until freed. Version 1 executor options (no
 * `stage` field) still work and stage on their own. */
static void test_shared_stage(void **state)
{
	static const char *const names[] = {"/quick/1", "/quick/2", "/quick/3",
					    NULL};
	char tmp[] = "/tmp/atex-orch-stage-XXXXXX";
	char *old_tmp = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	struct fixture *f;

	(void)state;
	assert_non_null(mkdtemp(tmp));
	setenv("TMPDIR", tmp, 1);
	f = fixture_new(3, names);
	assert_int_equal(atex_fmf_stage_new(&f->stage, f->disc), 0);
	assert_int_equal(count_stages(), 1);
	f->max_stages = 0;
	assert_int_equal(run(f), 0);
	assert_int_equal(f->final.n, 3);
	assert_int_equal(f->factory_calls, 3);
	/* Three systems running at once, one stage. */
	assert_int_equal(f->max_stages, 1);
	assert_int_equal(count_stages(), 1);
	atex_fmf_stage_free(f->stage);
	assert_int_equal(count_stages(), 0);

	f->stage = NULL;
	f->options_version = 1;
	f->final.n = 0;
	f->max_stages = 0;
	assert_int_equal(run(f), 0);
	assert_int_equal(f->final.n, 3);
	/* Each system staged on its own, and removed it. */
	assert_true(f->max_stages >= 2);
	assert_int_equal(count_stages(), 0);
	f->options_version = 99;
	f->final.n = 0;
	assert_int_equal(run(f), ATEX_EINFRA);
	assert_int_equal(f->final.n, 0);
	fixture_free(f);
	if (old_tmp)
		setenv("TMPDIR", old_tmp, 1);
	else
		unsetenv("TMPDIR");
	free(old_tmp);
	rmdir(tmp);
}

/* Bad options name what is wrong. */
static void test_bad_options(void **state)
{
	static const char *const names[] = {"/quick/1", NULL};
	struct fixture *f = fixture_new(1, names);
	atex_orchestrator *o = NULL;

	(void)state;
	f->opts.aggregator = NULL;
	assert_int_equal(atex_adhoc_orchestrator_new(&o, &f->opts),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "aggregator"));
	f->opts.aggregator = &f->final.base;
	f->tests[0] = 100000;
	assert_int_equal(atex_adhoc_orchestrator_new(&o, &f->opts),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "out of range"));
	f->tests[0] = 0;
	/* A program's own provisioner without a ready descriptor would
	 * never be seen to have systems: refused at once. */
	{
		static const struct atex_provisioner_ops blind_ops = {
			.version = ATEX_PROVISIONER_OPS_VERSION,
		};
		struct atex_provisioner blind = {.ops = &blind_ops};
		atex_provisioner *provs[] = {&blind};

		f->opts.provisioners = provs;
		assert_int_equal(atex_adhoc_orchestrator_new(&o, &f->opts),
				 ATEX_EINVAL);
		assert_non_null(
			strstr(atex_error_last(), "has no ready descriptor"));
		f->opts.provisioners = &f->prov;
	}
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_reruns),
		cmocka_unit_test(test_rerun_same_system),
		cmocka_unit_test(test_no_reruns),
		cmocka_unit_test(test_destructive),
		cmocka_unit_test(test_lost_system),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_setup_failures),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_abort_from_event),
		cmocka_unit_test(test_spares),
		cmocka_unit_test(test_shared_stage),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_ingest_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
