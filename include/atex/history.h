/*
 * atex/history.h - what earlier runs measured, for scheduling and
 * estimates: per test, how long it takes (the median of its last N
 * successful attempts), whether it is flaky, how many attempts a run
 * gives it.
 *
 * A history is read once from one or more earlier runs' results
 * (docs/PROTOCOL.md, "Timings"): a SQLite database of the SQLite
 * aggregator (results.sqlite, with the timing columns), or a results
 * folder as `atex run` writes it (its results.sqlite, or without one its
 * results.jsonl + attempts.jsonl and old/). The files are opened read-only
 * and never changed; the history keeps nothing open.
 *
 * Definitions (the reasons are in src/orchestrator/history.c):
 *  - an attempt's status is its test's own result (the result without a
 *    subtest), or the worst of its results when there is none;
 *  - a successful attempt is one that ran to its end: any status but
 *    error and infra (those may have been cut short: a time limit, a lost
 *    system). Its duration is what the test takes;
 *  - a test's time: the median duration of its last N successful
 *    attempts, newest first by start time; a test with none has the
 *    median of its error attempts (a test that always errors out takes as
 *    long as it did). Infra attempts never give a time: they measured the
 *    incident (a lost system, a canceled run), not the test; a test with
 *    only infra attempts is not in the history at all, so the policy
 *    starts it with the tests never seen (by declared duration) and the
 *    estimate takes the typical time, rather than the few seconds a
 *    Ctrl-C left it, which would start a long test last;
 *  - flaky: an attempt that failed (fail or error) followed, later by
 *    start time, by one that passed (pass, info, warn), in the same run
 *    (a re-run) or in a later one;
 *  - expected attempts: the attempts per run, averaged over the runs
 *    (one database or folder and platform is a run) that have the test.
 *    A flaky test that never had a re-run (runs without --reruns) expects
 *    1 + the share of its attempts that failed.
 *  - A repeated test's results ("NAME~2", tmt's repeats) count for NAME.
 *
 * Thread safety: a history is immutable once open, except for a cache of
 * the ready policy that a lock guards: any number of threads may look up
 * and run the policy at once. Free it when nothing uses it any more.
 */
#ifndef ATEX_HISTORY_H
#define ATEX_HISTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "atex/common.h"
#include "atex/fmf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atex_history atex_history;

struct atex_history_options {
	unsigned int version;
	/* results.sqlite files or results folders (or a results.jsonl,
	 * meaning its folder); read in order, all of them count. */
	const char *const *paths;
	size_t n_paths;
	/* The median is over this many newest successful attempts; 0: 5. */
	unsigned int last_n;
	/* Only results of this platform; NULL: every platform. */
	const char *platform;
};

#define ATEX_HISTORY_OPTIONS_VERSION 1
#define ATEX_HISTORY_OPTIONS_INIT                                              \
	{                                                                      \
		.version = ATEX_HISTORY_OPTIONS_VERSION                        \
	}

/*
 * Reads the history of `paths`. Attempts without a duration (results
 * from programs that do not write attempt.json) are left out; a path
 * that gives none is warned about (naming it), as a history whose every
 * attempt ended in infra. A path that reads the same results as an
 * earlier one (the same path again, another spelling, a folder and its
 * results.sqlite) is read once, with a warning. Only regular files
 * (symlinks followed) and folders are opened: a FIFO, device or socket,
 * given or in a folder, is ATEX_EFORMAT naming it (opening it could wait
 * for ever). A database locked by another process (still after 5 s) is
 * ATEX_EIO saying so.
 * Returns 0, ATEX_EINVAL (no path, bad options), ATEX_ENOTFOUND (a path
 * that does not exist, a folder without results), ATEX_EFORMAT (not a
 * results database or folder; a database or folder from before timings
 * were recorded, which says so; a damaged attempts.jsonl: file:line),
 * ATEX_EIO, ATEX_ENOMEM. Every message names the path. *out is the
 * caller's (atex_history_free).
 */
int atex_history_open(atex_history **out,
		      const struct atex_history_options *opts);

/* Frees; NULL is accepted. */
void atex_history_free(atex_history *h);

/* What the history knows of one test. */
struct atex_history_test {
	double median;		  /* seconds (see above) */
	unsigned int samples;	  /* attempts the median is over */
	unsigned int attempts;	  /* every attempt with a duration */
	unsigned int runs;	  /* runs that have it */
	double expected_attempts; /* >= 1 */
	bool flaky;
	double expected; /* median x expected_attempts: the policy's key */
};

/* true and *out filled when the history has `test` (an fmf name; a
 * "NAME~K" of a repeated test is looked up as NAME); false otherwise. */
bool atex_history_lookup(const atex_history *h, const char *test,
			 struct atex_history_test *out);

/* The number of tests the history has. */
size_t atex_history_count(const atex_history *h);

/* The median of every test's `median`: what a test never seen is
 * expected to take in estimates (0 when the history is empty). */
double atex_history_typical(const atex_history *h);

/*
 * next_test (atex/orchestrator.h) from history; userdata is the
 * atex_history. Tests the history has never seen first, longest
 * declared `duration` first (as atex_policy_longest_first reads it):
 * nothing is known of them and their declared time is an upper bound,
 * so they go first while the pool has room. Then the longest expected
 * time first (the LPT rule on measured times), the expected time being
 * median x expected attempts: a flaky test's re-runs go to the front of
 * the queue when it fails, so the test and its re-runs are one chain of
 * that length, and starting the chain by its whole length ends it, like
 * any long test, before the short tests run out. Ties in queue order.
 * The orchestrator's `history` option makes it the default; a program's
 * own hook may call it.
 */
size_t atex_policy_history(atex_fmf_discovery *d, const size_t *queue, size_t n,
			   void *userdata);

/*
 * A test's expected time for an estimate: its history's `expected`, or
 * for a test never seen atex_history_typical (or `fallback` seconds when
 * the history is empty). The test is a discovery index.
 */
double atex_history_estimate(const atex_history *h, atex_fmf_discovery *d,
			     size_t test, double fallback);

/*
 * The estimate of a run's time left is a simulation of the rest of the
 * run: the queued tests handed out in the order the run's next_test hook
 * would hand them out, each to the system that frees first (its running
 * test's expected time left, or 0 when idle); the estimate is when the
 * last one ends. So an explicit order that starts the long tests last
 * (--order fmf) is estimated as the longer run it is.
 *
 * atex_history_order sorts `queue` (discovery indices, in the queue's
 * order) in place into the order `next_test` (an atex_next_test_hook of
 * atex/orchestrator.h; atex_policy_history with the history as userdata
 * for the history's order) would hand them out: a stable merge sort whose
 * comparison asks the hook to pick from the two tests, in queue order.
 * That is exact for every policy that picks the best of a key, ties in
 * queue order (all of atex's), in O(n log n) calls of two tests each
 * instead of n calls over the whole queue. The order of the rest stays
 * right while tests are handed out, so a caller computes it once and
 * again when a test goes back to the queue (a re-run: to its front).
 * Returns 0, ATEX_EINVAL, ATEX_ENOMEM. Thread safety: the hook's.
 */
typedef size_t (*atex_history_pick_hook)(atex_fmf_discovery *d,
					 const size_t *queue, size_t n,
					 void *userdata);
int atex_history_order(atex_fmf_discovery *d, size_t *queue, size_t n,
		       atex_history_pick_hook next_test, void *userdata);

/*
 * The simulation: queued[0..n-1] are the expected seconds of the queued
 * tests in hand-out order (atex_history_estimate of each), busy[0..
 * systems-1] when each system is free (seconds from now); busy is used as
 * scratch (reordered, changed). Returns the seconds until the last test
 * ends (0 without systems). O(n log systems): cheap enough per event.
 */
double atex_history_estimate_run(const double *queued, size_t n, double *busy,
				 size_t systems);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_HISTORY_H */
