/*
 * atex/orchestrator.h - running a whole test suite on a pool of systems,
 * ad hoc: the next test goes to whichever system is free (DESIGN.md, "The
 * idea that names it").
 *
 * The ad-hoc orchestrator requests systems from one or more started
 * provisioners, sets each up as it arrives (the `setup` hook, then the
 * executor's start), and gives it the next test at once; tests start as
 * soon as the first system is ready. Every set-up system has a worker
 * thread that runs tests on it one after another, each into a private
 * artifacts directory, ingested into the aggregator when the test ends;
 * before the ingest it writes ARTIFACTS/attempt.json there (when the
 * attempt started and ended, its duration, system, attempt number and
 * exit code: docs/PROTOCOL.md section 3), which the aggregators record.
 *
 * A test whose system failed under it (run_test returned ATEX_EINFRA) goes
 * back to the queue and the system is released and replaced; its attempt
 * is kept as an earlier attempt. A test the `should_rerun` hook picks is
 * run again the same way (on a fresh system when `destructive` says so).
 * When no test is left every system is released and the provisioners are
 * cleared.
 *
 * Thread safety: serve_once, serve_forever and free by the owning thread;
 * abort from any thread at any time. The next_test, destructive and
 * should_rerun hooks and the event callback are called from orchestrator
 * threads (workers and the serving thread), one at a time: the
 * orchestrator serializes them. The event callback may call abort and
 * the counters (done, not_run); next_test must not call the orchestrator
 * (it runs under its lock). The setup hook and the executor factory
 * run in the worker of each arriving system, in parallel (setting a
 * system up may take minutes); they must be thread-safe.
 */
#ifndef ATEX_ORCHESTRATOR_H
#define ATEX_ORCHESTRATOR_H

#include <stdbool.h>

#include <jansson.h>

#include "atex/aggregator.h"
#include "atex/common.h"
#include "atex/executor.h"
#include "atex/fmf.h"
#include "atex/provisioner.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atex_orchestrator atex_orchestrator;

/* How one attempt of a test ended, as hooks and events see it. */
struct atex_attempt {
	size_t test;	       /* index in the discovery */
	/* Its fmf name; "NAME~K" for the K-th entry of a test the
	 * discovery lists more than once (results and files are kept
	 * under it: tmt runs repeats). */
	const char *test_name;
	unsigned int attempt;  /* 1 for the first run */
	const char *remote;    /* the system's name */
	int rc;		       /* atex_executor_run_test's return */
	int exit_code;	       /* the test's exit code, -1 when none */
	/* The results the test produced (a JSON array of objects, as in
	 * ARTIFACTS/results); borrowed, valid during the call. */
	json_t *results;
	/* The worst status among them: infra, error, fail, a custom
	 * status, warn, info, pass, skip, in that order ("error" when there
	 * are none). */
	const char *status;
	const char *artifacts_dir; /* still there during the call */
};

/*
 * Picks the next test for a free system: returns an index into
 * `queue[0..n-1]` (indices into the discovery, in queue order: fmf order,
 * re-runs in front). Anything out of range takes queue[0].
 */
typedef size_t (*atex_next_test_hook)(atex_fmf_discovery *d,
				      const size_t *queue, size_t n,
				      void *userdata);

/* Was the system broken by this attempt? true: it is released and a
 * fresh one replaces it. */
typedef bool (*atex_destructive_hook)(atex_fmf_discovery *d,
				      const struct atex_attempt *a,
				      void *userdata);

/* Should the test run again? true: this attempt becomes an earlier
 * attempt and the test goes back to the front of the queue (and its
 * system is replaced, unless rerun_on_same_system). */
typedef bool (*atex_should_rerun_hook)(atex_fmf_discovery *d,
				       const struct atex_attempt *a,
				       void *userdata);

/* Sets a fresh system up before the executor's start (install things,
 * register it...). Returns 0, or an error: the system is released as
 * broken and counts as a failed setup. */
typedef int (*atex_setup_hook)(atex_remote *r, void *userdata);

/* Makes a (not yet started) executor for a set-up system: the
 * orchestrator starts it, runs tests with it and frees it before it
 * releases the remote. Returns 0 or an error (a failed setup). */
typedef int (*atex_executor_factory)(atex_executor **out, atex_remote *r,
				     void *userdata);

enum atex_orchestrator_event_type {
	ATEX_EVENT_SYSTEM_READY,    /* set up, takes tests */
	ATEX_EVENT_SYSTEM_FAILED,   /* setup failed; message says why */
	ATEX_EVENT_SYSTEM_LOST,	    /* failed under a test (infra) */
	ATEX_EVENT_SYSTEM_RELEASED, /* given back (done, destructive) */
	ATEX_EVENT_TEST_STARTED,
	ATEX_EVENT_TEST_FINISHED, /* attempt set; final or re-run */
};

struct atex_orchestrator_event {
	int type;	       /* enum atex_orchestrator_event_type */
	const char *remote;    /* the system's name */
	const char *message;   /* SYSTEM_FAILED/LOST: why; else NULL */
	const char *test_name; /* TEST_*: the test */
	unsigned int attempt;  /* TEST_*: from 1 */
	const struct atex_attempt *ended; /* TEST_FINISHED, else NULL */
	bool rerun;			  /* TEST_FINISHED: it will run again */
	/* Counts at the time of the event. */
	size_t tests_total, tests_done, tests_running, systems;
	/* TEST_FINISHED: 0, or the aggregator's error code when it could
	 * not take this attempt (a full disk...): the results are then not
	 * in it, and the artifacts directory (ended->artifacts_dir) is kept
	 * for the program to save instead of being removed (also a private
	 * work directory that holds it, when the orchestrator is freed). */
	int ingest_rc;
};

typedef void (*atex_orchestrator_event_cb)(
	const struct atex_orchestrator_event *ev, void *userdata);

struct atex_orchestrator_options {
	unsigned int version;
	/* The platform name results are ingested under; copied. */
	const char *platform;
	/* The tests; borrowed, must outlive the orchestrator. The hooks may
	 * read it; nothing may change it while serving. */
	atex_fmf_discovery *discovery;
	/* Indices of the tests to run, in order; NULL: every test of the
	 * discovery. Copied. */
	const size_t *tests;
	size_t n_tests;
	/* Started provisioners; borrowed. Requests are spread over them. */
	atex_provisioner *const *provisioners;
	size_t n_provisioners;
	atex_executor_factory executor_new; /* required */
	/* Final attempts; borrowed, started, required. */
	atex_aggregator *aggregator;
	/* Earlier attempts of re-run tests; borrowed, started; NULL: they
	 * are not kept. */
	atex_aggregator *earlier;
	/* Where artifacts of running tests are made (one directory each,
	 * removed after ingest); NULL: a private directory in $TMPDIR. Use
	 * the aggregators' filesystem so that ingest hard-links. */
	const char *work_dir;
	/* Hooks; NULL takes the default: fmf order, the destructive tag
	 * (atex_policy_destructive_tag), atex_policy_rerun with max_reruns
	 * below, no setup. */
	atex_next_test_hook next_test;
	atex_destructive_hook destructive;
	atex_should_rerun_hook should_rerun;
	atex_setup_hook setup;
	atex_orchestrator_event_cb event;
	void *userdata; /* passed to every hook, factory and event */
	/* Re-runs of the default should_rerun hook (atex_policy_rerun):
	 * attempts beyond the first, 0: none; statuses that trigger one
	 * (NULL-terminated, copied; NULL: fail, error, infra). */
	unsigned int max_reruns;
	const char *const *rerun_statuses;
	/* false (the default): a test that will run again gives up its
	 * system, and the next attempt gets a clean one (the failure may
	 * have been the system's state); true: the system stays. */
	bool rerun_on_same_system;
	/* Set-up systems kept idle beyond those running tests, ready to
	 * replace a lost or destroyed one at once. */
	size_t max_spares;
	/* Systems held or requested at once, at most; 0: one per test
	 * (the provisioners' own limits still apply). */
	size_t max_systems;
	/* A test whose system fails under it this many times has its last
	 * infra result kept as final. 0: 3. */
	unsigned int max_infra_retries;
	/* This many failed setups in a row (no system set up in between)
	 * end the run with ATEX_EINFRA. 0: 5. */
	unsigned int max_setup_failures;
	/* Extra environment for every test ("NAME=VALUE", NULL-terminated,
	 * may be NULL); copied. ATEX_TEST_ATTEMPT is added. */
	const char *const *env;
};

#define ATEX_ORCHESTRATOR_OPTIONS_VERSION 1
#define ATEX_ORCHESTRATOR_OPTIONS_INIT                                         \
	{                                                                      \
		.version = ATEX_ORCHESTRATOR_OPTIONS_VERSION                   \
	}

/*
 * A new ad-hoc orchestrator. Nothing happens before the first serve call.
 * Each system costs a few open files (pipes, sockets, log files), so the
 * first orchestrator of a process raises the process's RLIMIT_NOFILE
 * soft limit to its hard limit (a soft limit of 1024 ends a run of ~170
 * local systems with "Too many open files"); a program that needs the
 * lower limit (select() on descriptors) sets it back after this call.
 * Returns 0, ATEX_EINVAL (a required option missing, a test index out of
 * range, no provisioner), ATEX_EIO (work_dir), ATEX_ENOMEM.
 */
int atex_adhoc_orchestrator_new(atex_orchestrator **out,
				const struct atex_orchestrator_options *opts);

/*
 * Does what is due (takes arriving systems, starts workers, requests
 * systems, collects finished workers), waiting at most timeout_ms (-1: no
 * limit) for something to happen. Returns 1 while work remains, 0 once
 * every test has its final result and every system is released,
 * ATEX_ECANCELED after abort (systems released, every finished test
 * ingested), ATEX_EINFRA when systems cannot be had (every provisioner
 * failed, or max_setup_failures in a row: the message has the last
 * reason; tests not run have no results), ATEX_ENOMEM.
 */
int atex_orchestrator_serve_once(atex_orchestrator *o, int timeout_ms);

/* serve_once until it returns 0 or an error; returns that. */
int atex_orchestrator_serve_forever(atex_orchestrator *o);

/*
 * Stops the run from any thread: running tests are canceled (their
 * results so far are ingested, with an infra result), no test starts, and
 * the serving call releases every system and returns ATEX_ECANCELED
 * promptly. The caller still owns the provisioners (abort them too to
 * stop systems being made).
 */
void atex_orchestrator_abort(atex_orchestrator *o);

/* How many tests have a final result / were not run (after an error or
 * abort). */
size_t atex_orchestrator_done(const atex_orchestrator *o);
size_t atex_orchestrator_not_run(const atex_orchestrator *o);

/* Aborts if serving has not ended, releases everything and frees; NULL is
 * accepted. */
void atex_orchestrator_free(atex_orchestrator *o);

/* ------------------------------------------------------------------------
 * Ready policies, to plug into the hooks above.
 */

/* next_test: fmf order (the default). */
size_t atex_policy_fmf_order(atex_fmf_discovery *d, const size_t *queue,
			     size_t n, void *userdata);

/* next_test: the longest `duration` first (ties in queue order); a
 * missing or bad duration counts as tmt's default, 5m. */
size_t atex_policy_longest_first(atex_fmf_discovery *d, const size_t *queue,
				 size_t n, void *userdata);

/* next_test: the highest `extra-priority` (an integer, default 0) first,
 * ties by longest duration, then queue order. */
size_t atex_policy_priority(atex_fmf_discovery *d, const size_t *queue,
			    size_t n, void *userdata);

/* destructive: the test has the tag "destructive" (the default), or the
 * attempt's rc is not 0 and the system may be in any state (ETIMEDOUT,
 * EFORMAT). */
bool atex_policy_destructive_tag(atex_fmf_discovery *d,
				 const struct atex_attempt *a, void *userdata);

/*
 * The limited re-run policy the default should_rerun hook applies with the
 * options' max_reruns and rerun_statuses; a program's own hook may call
 * it. true when the attempt's worst status is one of `statuses`
 * (NULL-terminated; NULL: fail, error and infra) and the test has had
 * fewer than 1 + max_reruns attempts.
 */
bool atex_policy_rerun(const struct atex_attempt *a, unsigned int max_reruns,
		       const char *const *statuses);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_ORCHESTRATOR_H */
