/*
 * fmf_private.h - private: what the three files of the fmf executor share.
 * fmf.c is the executor (start, stop, run_test and its restarts), setup.c
 * writes the setup a test start's wrapper reads, start.c runs one start
 * of a test (the wrapper process, the control channel, the clock).
 */
#ifndef ATEX_EXECUTOR_FMF_PRIVATE_H
#define ATEX_EXECUTOR_FMF_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "atex/executor.h"
#include "executor/reporter.h"
#include "util/util.h"

#define FMF_COMPONENT "executor"
/* The descriptor the test writes the control channel to. */
#define FMF_CONTROL_FD 9
/* A test's duration when its metadata has none (tmt's default). */
#define FMF_DEFAULT_DURATION "5m"
/* After `exitcode`, how long the wrapper gets to end and close the
 * channel; a leftover process holding it open is killed after that. */
#define FMF_EXIT_GRACE_MS 5000
/* After closing the wrapper's stdin, how long it gets to stop the test
 * and end by itself before it is killed. */
#define FMF_STOP_GRACE_MS 2000
/* How long connect may take per attempt while a system reboots, and the
 * pause between attempts. */
#define FMF_RECONNECT_TRY_MS   30000
#define FMF_RECONNECT_PAUSE_MS 1000
/* After a lost connection, how long a reconnected system may keep
 * showing the boot it had before it counts as not rebooted: a server can
 * still answer while its system goes down. */
#define FMF_REBOOT_SETTLE_MS 5000
/* Setup commands (mkdir, rm) and finish steps. */
#define FMF_COMMAND_MS (10 * 60 * 1000)
/* Making the work directory, which a cancel does not cut short (what
 * stop removes must be known): bounded tighter than the others, as a
 * Ctrl-C may wait for it. */
#define FMF_MKDIR_MS   30000
#define FMF_READ_CHUNK 65536
/* The wrapper's `exitcode` carries a random token of this many hex
 * digits, which the test never sees: only the wrapper's word counts. */
#define FMF_TOKEN_LEN 32
/* "exitcode 255 TOKEN\n": what the end of the stream holds back. */
#define FMF_TAIL_MAX (13 + FMF_TOKEN_LEN + 1)
/* How long held-back bytes wait for more before they are fed. */
#define FMF_TAIL_MS 200
/* At the deadline, how long what the channel holds may take to read. */
#define FMF_DRAIN_MS 1000

struct fmf_executor {
	struct atex_executor base;
	atex_connection *conn;
	atex_fmf_discovery *disc;
	struct atex_vec env; /* char *, owned */
	size_t json_limit;
	size_t memory_limit; /* 0: the reporter's default */
	char *remote_tmp;
	atex_cancel *cancel;

	bool started;
	/* The local staging directory: shared (the `stage` option, not
	 * ours) or own_stage, made by start and removed by stop. */
	const struct atex_fmf_stage *stage;
	struct atex_fmf_stage *own_stage;
	char *workdir;	      /* on the system */
	unsigned long starts; /* test starts, for metadata file names */
	/* The system's boot id (atex_connection_boot_id) as read before
	 * the test's first start or after its last reboot, on a connection
	 * that can reboot; NULL before or when unreadable. */
	char *boot_id;
	unsigned long runs; /* test runs, for TMT_TEST_DATA names */
	bool compat;	    /* compat_python_atex */
	/* Tests without a `framework` key run as BeakerLib (options). */
	bool beakerlib;
};

/* A staged copy of the trees and the remote scripts (executor.h). */
/* Where work directories go on a system, unless the options say. */
#define FMF_REMOTE_TMP "/var/tmp"

struct atex_fmf_stage {
	char *dir;	       /* $TMPDIR/atex-stage-OWNER-XXXXXX */
	int lock_fd;	       /* dir, flock()ed while we live; or -1 */
	struct atex_vec roots; /* char *, the local roots; index = tree-N */
	/* Test name -> its libraries' packages or error (library.h). */
	json_t *libs;
};

static inline const char *fmf_conn_name(const struct fmf_executor *fx)
{
	return atex_connection_name(fx->conn);
}

/* One start of a test: what the wrapper needs to know. */
struct test_start {
	const char *name;
	json_t *data;
	const char *test_dir; /* on the system */
	const char *tree;     /* on the system */
	const char *meta;     /* on the system */
	const char *data_dir; /* on the system: TMT_TEST_DATA */
	bool beakerlib;	      /* its framework (the key or the default) */
	/* Its libraries' {"require", "recommend"} packages (library.h), or
	 * NULL when it has none. */
	json_t *libs;
	const char *const *run_env;
	int reboots; /* TMT_REBOOT_COUNT */
	/* TMT_TEST_RESTART_COUNT: as in tmt, raised by every start again,
	 * a reboot's (tmt-reboot, unannounced) as a restart's
	 * (restart-on-exit-code). */
	int restarts;
	/* restart-max-count, and restart-with-reboot where this system
	 * cannot reboot: whether this start may be restarted at all. */
	long restart_max;
	bool restart_refused;
	/* The enabled checks, [{"how", "result"}] (checks.c). */
	json_t *checks;
	/* Python ATEX's debug switches (compat_python_atex). */
	bool no_exitcode, no_bg_kill;
};

/* Saved remaining times (`duration save`) nest at most this deep. */
#define FMF_SAVED_MAX 64

/* One run of a test (its starts share the clock and the reporter). */
struct run {
	struct fmf_executor *fx;
	const char *test_name;
	atex_reporter *rep;
	double deadline; /* monotonic ms */
	double saved[FMF_SAVED_MAX];
	size_t n_saved;
	int exitcode; /* -1 until `exitcode` */
	bool disconnect;
	/* The last start ended without an exit code or a `disconnect`:
	 * the connection was lost (or the wrapper killed). */
	bool lost;
	int unannounced; /* reboots without `disconnect` so far */
	/* The last start's wrapper exit status (128+N for signal N), -1
	 * when not known. */
	int wrapper_code;
	/* Why the test's restart failed (restart-on-exit-code): over
	 * restart-max-count, or no reboot for restart-with-reboot; the
	 * test's result is then an error saying so, as in tmt. NULL: none. */
	char *restart_error;
	/* The check results of the last start, {HOW: worst status}: tmt
	 * keeps those of the test's last start. */
	json_t *checks_seen;
	json_t *checks; /* the test's enabled checks (test_start's) */
};

/* How one start of the test ended. */
enum start_end {
	START_EXITED,	  /* exitcode received, the wrapper ended */
	START_DISCONNECT, /* the test asked to reboot */
	START_TIMED_OUT,
	START_CANCELED,
	START_CHANNEL_ERROR,
	START_INFRA,
	START_NO_PACKAGES, /* required packages missing: reported, not run */
};

/* Writes the bash code the wrapper evaluates, ended by the sentinel line
 * (setup.c). Returns 0 or ATEX_ENOMEM. */
int fmf_build_setup(struct atex_buf *b, const struct fmf_executor *fx,
		    const struct test_start *t, const char *sentinel);

/* Runs one start of the test and says how it ended; *note (caller frees)
 * says why when it did not end by itself (start.c). */
enum start_end fmf_run_start(struct run *r, const struct test_start *t,
			     int output_fd, char **note);

/* Runs the playbooks of one `how: ansible` prepare or finish phase
 * (`step`) against the system (ansible.c). Returns 0, ATEX_EEXTERNAL (a
 * playbook failed: the message has the end of its output), ATEX_ENOTFOUND
 * (no ansible-playbook, no such playbook), ATEX_EFORMAT, ATEX_EIO,
 * ATEX_ECANCELED or ATEX_ENOMEM; every message names the plan and the
 * phase. */
int atex_fmf_run_ansible(struct fmf_executor *fx, const char *step,
			 json_t *phase);

/* Splits `s` into words as Python's shlex.split does, pushing new strings
 * onto `out` (ansible.c). Returns 0, ATEX_EFORMAT or ATEX_ENOMEM. */
int atex_fmf_shell_split(struct atex_vec *out, const char *s);

/* The test's `check` key as [{"how", "result"}] in *out (the enabled
 * checks); a check atex does not run, or a bad key, is ATEX_EFORMAT with
 * a message naming the test and the check (checks.c). */
int fmf_checks_parse(json_t **out, json_t *data, const char *name);

/* Notes a check result the wrapper sent (name check/HOW/EVENT with the
 * keys "check" and "event") in r->checks_seen; others are left alone. */
void fmf_checks_seen(struct run *r, json_t *result);

/* What the checks make of the test's own result, as tmt interprets them
 * (respect, xfail, info): a status to reduce it with (NULL: none; valid
 * while `seen` is) and notes (NULL: none; the caller frees). */
int fmf_checks_verdict(const char **status, char **note, json_t *checks,
		       json_t *seen);

/* The worse of two statuses, in tmt's order (NULL: the other). */
const char *fmf_status_worse(const char *a, const char *b);

#endif /* ATEX_EXECUTOR_FMF_PRIVATE_H */
