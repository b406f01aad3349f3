/*
 * atex/executor.h - running tests on one system: an Executor prepares a
 * system (start), runs one test at a time on it (run_test), each into its
 * own artifacts directory (docs/PROTOCOL.md section 3), and cleans up
 * (stop).
 *
 * The contract: run_test never loses what a test reported. Whatever ends
 * the test (its exit, its time limit, a lost connection, a cancel, a
 * broken control channel), the artifacts directory holds every result
 * received, plus the fallback result that says how it ended; the return
 * code says which of those it was, so that an orchestrator can tell "the
 * test failed" from "the system failed".
 *
 * Thread safety: start, run_test, stop and free by the owning thread;
 * cancel from any thread at any time (it is final: later calls return
 * ATEX_ECANCELED).
 */
#ifndef ATEX_EXECUTOR_H
#define ATEX_EXECUTOR_H

#include "atex/common.h"
#include "atex/connection.h"
#include "atex/fmf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atex_executor atex_executor;

struct atex_executor_ops {
	unsigned int version;
	int (*start)(atex_executor *e);
	int (*run_test)(atex_executor *e, const char *test_name,
			const char *artifacts_dir, const char *const *env,
			int *exit_code);
	void (*cancel)(atex_executor *e);
	int (*stop)(atex_executor *e);
	void (*free)(atex_executor *e);
};

#define ATEX_EXECUTOR_OPS_VERSION 1

struct atex_executor {
	const struct atex_executor_ops *ops;
};

/*
 * Prepares the system: for the fmf executor a private work directory on
 * it, the tests tree uploaded, the plan's prepare steps run. Returns 0,
 * ATEX_EIO or ATEX_EINFRA (the connection failed), ATEX_EEXTERNAL (a
 * prepare step failed: the message has its output), ATEX_ECANCELED,
 * ATEX_ENOMEM.
 */
int atex_executor_start(atex_executor *e);

/*
 * Runs the test `test_name` into `artifacts_dir` (created; an existing
 * `results` file there is replaced). `env` ("NAME=VALUE", NULL-terminated,
 * may be NULL) is the environment for this one run: it wins over every
 * other source. *exit_code (may be NULL) gets the test's exit code, or -1
 * when the test did not end by itself.
 * Returns:
 *   0               the test ended by itself (its results are whatever
 *                   it reported, or the fallback: pass/fail by exit code),
 *                   or it did not start because its required packages
 *                   cannot be installed (one "infra" result naming them,
 *                   *exit_code -1; the system is fine);
 *   ATEX_ETIMEDOUT  its duration ran out: killed, an "error" result
 *                   (results it had closed for itself become "error"
 *                   too, their note saying so);
 *   ATEX_EFORMAT    it broke the control channel protocol, or made the
 *                   executor hold more than memory_limit: killed, an
 *                   "error" result naming the fault;
 *   ATEX_EINFRA     the system failed under it (connection lost without
 *                   `disconnect`, wrapper failure, no exit code): an
 *                   "infra" result (results it had closed for itself
 *                   become "infra" too);
 *   ATEX_ECANCELED  canceled: an "infra" result;
 *   ATEX_ENOTFOUND  no such test (nothing written);
 *   ATEX_EIO        the artifacts directory cannot be written;
 *   ATEX_EINVAL     not started; ATEX_ENOMEM.
 */
int atex_executor_run_test(atex_executor *e, const char *test_name,
			   const char *artifacts_dir, const char *const *env,
			   int *exit_code);

/* Stops a running test and any later call (final). Any thread. */
void atex_executor_cancel(atex_executor *e);

/*
 * Cleans the system up: the plan's finish steps, then the work directory.
 * Tolerates a dead connection (errors are logged, not returned). Returns
 * 0 or ATEX_EINVAL (not started).
 */
int atex_executor_stop(atex_executor *e);

/* Frees the executor (stops it first if needed); NULL is accepted. */
void atex_executor_free(atex_executor *e);

/* ------------------------------------------------------------------------
 * The fmf executor: tests discovered by atex_fmf_discover(), run through
 * the test control channel (docs/PROTOCOL.md).
 */

struct atex_fmf_executor_options {
	unsigned int version;
	/* The system; borrowed, must outlive the executor. Connected by
	 * start() if it is not. */
	atex_connection *connection;
	/* The tests, plan, environment, prepare and finish steps; borrowed,
	 * must outlive the executor. Tests' data is read at run time, so a
	 * program may change it between tests. */
	atex_fmf_discovery *discovery;
	/* The executor's environment for every test, "NAME=VALUE",
	 * NULL-terminated, may be NULL; copied. */
	const char *const *env;
	/* Bound of one result's JSON text in bytes; 0: 1 MiB. */
	size_t json_limit;
	/* Where the work directory is made on the system; NULL: /var/tmp
	 * (survives reboots, unlike /tmp on many systems). */
	const char *remote_tmp;
	/* (Version 2.) A stage made by atex_fmf_stage_new for the same
	 * discovery, shared by many executors; borrowed, must outlive the
	 * executor. NULL: start() stages on its own and stop() removes it. */
	const struct atex_fmf_stage *stage;
	/* (Version 3.) What one test may make the executor hold in memory,
	 * about in bytes: its open partial results (which grow as later
	 * results merge into them) and the names of its files. A test that
	 * goes over it is stopped as for a protocol violation: run_test
	 * returns ATEX_EFORMAT, its result is "error" with a note saying
	 * so. 0: 64 MiB. */
	size_t memory_limit;
	/* (Version 4.) Python ATEX's semantics, for its API (the atex
	 * Python package): a test that does not end by itself (out of
	 * time, canceled, the channel broken, the system lost) gets one
	 * "infra" result whose note is the exception Python ATEX raises,
	 * "Class(message)" ("TestAbortedError(test duration timeout
	 * reached)", "TestAbortedError(cancel requested)",
	 * "BadControlError(EOF when reading data)",
	 * "BadReportJSONError(...)"), only when the test closed no result
	 * for itself; results it closed are left as they are; a reboot
	 * without `disconnect` is not followed, and after `disconnect` the
	 * test starts again as soon as the connection is back (no wait for
	 * a new boot); `env` reaches the plan's
	 * prepare and finish steps too; run_test's error message
	 * ends with that note. The return codes stay as above. The
	 * controller's environment is read at each run_test:
	 * ATEX_DEBUG_NO_EXITCODE=1 (the wrapper sends no exit code),
	 * ATEX_DEBUG_NO_BG_KILL=1 (what the test left running is not
	 * killed), ATEX_DEBUG_TEST_OUTPUT_FD=N (the test's output goes to
	 * descriptor N of this process; output.txt stays empty). */
	bool compat_python_atex;
	/* (Version 5.) The framework of tests whose metadata has no
	 * `framework` key: "shell" or "beakerlib" (Python ATEX's
	 * BeakerlibExecutor runs every test as BeakerLib); copied. NULL:
	 * "shell", as tmt. A test's own key always wins. */
	const char *framework;
};

#define ATEX_FMF_EXECUTOR_OPTIONS_VERSION 5
#define ATEX_FMF_EXECUTOR_OPTIONS_INIT                                         \
	{                                                                      \
		ATEX_FMF_EXECUTOR_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL,  \
			NULL, 0, false, NULL                                   \
	}

/*
 * A new fmf executor. Returns 0, ATEX_EINVAL (no connection or
 * discovery, an unknown options version or framework), ATEX_ENOMEM.
 */
int atex_fmf_executor_new(atex_executor **out,
			  const struct atex_fmf_executor_options *opts);

/*
 * What the fmf executor uploads to a system, staged once: the discovery's
 * trees (hard-linked, without .git) and atex's remote scripts, in a
 * private directory ($TMPDIR/atex-stage-*). Each executor stages on its
 * own unless given one in its options; a pool of many systems shares one
 * stage, so the tree is linked once, not once per system. Read-only once
 * made: any number of executors in any threads may use it.
 */
typedef struct atex_fmf_stage atex_fmf_stage;

/* Stages `d` now (it is read, not kept). Returns 0, ATEX_EIO (message
 * names the path), ATEX_EINVAL, ATEX_ENOMEM. */
int atex_fmf_stage_new(atex_fmf_stage **out, atex_fmf_discovery *d);

/* Removes the directory and frees; after every executor using it is
 * stopped. NULL is accepted. */
void atex_fmf_stage_free(atex_fmf_stage *stage);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_EXECUTOR_H */
