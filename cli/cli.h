/*
 * cli.h - what the subcommand files of the atex tool share. Each file in
 * cli/ implements one subcommand group on top of the public API only.
 */
#ifndef ATEX_CLI_H
#define ATEX_CLI_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

/* Exit statuses shared by every subcommand. */
enum {
	CLI_OK = 0,
	CLI_FAILED = 1, /* the work ran and something in it failed */
	CLI_USAGE = 2,	/* usage, input or setup error */
};

/* Prints "atex: " + message and a newline to stderr, the message escaped
 * (atex_text_escape): every message of the tool, errors and notices. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes `text` (a name from a test, a tree, a host) to `out` escaped
 * with atex_text_escape, the one escaping of the project. */
void cli_put_escaped(FILE *out, const char *text);

/* Prints the last library error with a prefix and returns CLI_USAGE. */
int cli_fail(const char *what);

/* A subcommand's options, for cli_parse_options (main.c). */
struct option;
struct cli_options {
	const char *shortopts; /* "h", or "+h" to stop at the first operand */
	const struct option *longopts;
	void (*usage)(FILE *out);
	/* Takes one option (`text` is how it was written, for messages):
	 * CLI_OK, or CLI_USAGE with a message printed. */
	int (*take)(void *data, int opt, const char *arg, const char *text);
};

/* Whether long option `name` ("plan") sets one value, so that giving it
 * twice is an error (cli_parse_options says so). */
bool cli_option_once(const char *name);

/* Runs getopt_long over argv with messages naming the option at fault
 * (an option that sets one value given twice, cli_option_once, too):
 * CLI_OK with optind at the first operand, -1 after --help (usage on
 * stdout), CLI_USAGE (message and usage on stderr, or take's error). */
int cli_parse_options(const struct cli_options *o, void *data, int argc,
		      char **argv);

/* ------------------------------------------------------------------------
 * Provisioner options (provision.c), shared by every subcommand that needs
 * systems: exec now, test and run later. A subcommand adds
 * CLI_PROVISION_LONG_OPTIONS to its getopt_long table, hands every option
 * it does not know to cli_provision_option, and builds the provisioner
 * with cli_provision_build once parsing is done.
 */

struct atex_provisioner;

/* getopt_long values of the options, above any short option. */
enum {
	CLI_OPT_LOCAL = 0x100,
	CLI_OPT_SSH,
	CLI_OPT_IDENTITY,
	CLI_OPT_SSH_OPTION,
	CLI_OPT_PODMAN,
	CLI_OPT_COUNT,
	CLI_OPT_PODMAN_ARG,
	CLI_OPT_PODMAN_RUN_ARG,
	CLI_OPT_SYSTEMD,
	CLI_OPT_SSH_STRICT_HOST_KEYS,
	CLI_OPT_VM,
	CLI_OPT_VM_HOST,
	CLI_OPT_VM_MEMORY,
	CLI_OPT_VM_CPUS,
	CLI_OPT_VM_ACCEL,
	CLI_OPT_VM_ARG,
	CLI_OPT_VM_KERNEL,
	CLI_OPT_VM_INITRD,
	CLI_OPT_VM_CMDLINE,
	CLI_OPT_VM_BOOT_TIMEOUT,
	CLI_OPT_VM_FIRMWARE,
	CLI_OPT_VM_KEY,
	CLI_OPT_TF,
	CLI_OPT_TF_ARCH,
	CLI_OPT_TF_POOL,
	CLI_OPT_TF_TIMEOUT,
	CLI_OPT_TF_HARDWARE,
	CLI_OPT_TF_SOURCE,
	CLI_OPT_TF_POLL,
	CLI_OPT_TF_SKIP_GUEST_SETUP,
	CLI_OPT_TF_OS_CLEANING,
	CLI_OPT_TF_MAX_RETRIES,
};

/* The Testing Farm options (also `atex tf reserve`'s). */
#define CLI_TF_LONG_OPTIONS                                                    \
	{"testing-farm", required_argument, NULL, CLI_OPT_TF},                 \
		{"arch", required_argument, NULL, CLI_OPT_TF_ARCH},            \
		{"tf-pool", required_argument, NULL, CLI_OPT_TF_POOL},         \
		{"tf-timeout", required_argument, NULL, CLI_OPT_TF_TIMEOUT},   \
		{"tf-hardware", required_argument, NULL, CLI_OPT_TF_HARDWARE}, \
		{"tf-source", required_argument, NULL, CLI_OPT_TF_SOURCE},     \
		{"tf-poll", required_argument, NULL, CLI_OPT_TF_POLL},         \
		{"tf-skip-guest-setup", no_argument, NULL,                     \
		 CLI_OPT_TF_SKIP_GUEST_SETUP},                                 \
		{"tf-os-cleaning", no_argument, NULL, CLI_OPT_TF_OS_CLEANING}, \
	{                                                                      \
		"tf-max-retries", required_argument, NULL,                     \
			CLI_OPT_TF_MAX_RETRIES                                 \
	}

#define CLI_PROVISION_LONG_OPTIONS                                             \
	{"local", required_argument, NULL, CLI_OPT_LOCAL},                     \
		{"ssh", required_argument, NULL, CLI_OPT_SSH},                 \
		{"identity", required_argument, NULL, CLI_OPT_IDENTITY},       \
		{"ssh-option", required_argument, NULL, CLI_OPT_SSH_OPTION},   \
		{"podman", required_argument, NULL, CLI_OPT_PODMAN},           \
		{"count", required_argument, NULL, CLI_OPT_COUNT},             \
		{"podman-arg", required_argument, NULL, CLI_OPT_PODMAN_ARG},   \
		{"systemd", no_argument, NULL, CLI_OPT_SYSTEMD},               \
		{"ssh-strict-host-keys", no_argument, NULL,                    \
		 CLI_OPT_SSH_STRICT_HOST_KEYS},                                \
		{"vm", required_argument, NULL, CLI_OPT_VM},                   \
		{"vm-host", required_argument, NULL, CLI_OPT_VM_HOST},         \
		{"vm-memory", required_argument, NULL, CLI_OPT_VM_MEMORY},     \
		{"vm-cpus", required_argument, NULL, CLI_OPT_VM_CPUS},         \
		{"vm-accel", required_argument, NULL, CLI_OPT_VM_ACCEL},       \
		{"vm-arg", required_argument, NULL, CLI_OPT_VM_ARG},           \
		{"vm-kernel", required_argument, NULL, CLI_OPT_VM_KERNEL},     \
		{"vm-initrd", required_argument, NULL, CLI_OPT_VM_INITRD},     \
		{"vm-cmdline", required_argument, NULL, CLI_OPT_VM_CMDLINE},   \
		{"vm-boot-timeout", required_argument, NULL,                   \
		 CLI_OPT_VM_BOOT_TIMEOUT},                                     \
		{"vm-firmware", required_argument, NULL, CLI_OPT_VM_FIRMWARE}, \
		{"vm-key", required_argument, NULL, CLI_OPT_VM_KEY},           \
		CLI_TF_LONG_OPTIONS,                                           \
	{                                                                      \
		"podman-run-arg", required_argument, NULL,                     \
			CLI_OPT_PODMAN_RUN_ARG                                 \
	}

/* The usage text of the options, for a subcommand's --help. */
extern const char cli_provision_usage[];
/* The --testing-farm companions' part of it (`atex tf reserve`). */
extern const char cli_tf_usage[];

/* What the options said. The arrays are NULL-terminated; the strings
 * point into argv. */
struct cli_provision {
	int local;	  /* --local N; 0: not given */
	const char **ssh; /* --ssh, repeatable */
	const char *identity;
	const char **ssh_options;
	const char *podman; /* --podman IMAGE */
	int count;	    /* --count N; 0: not given */
	const char **podman_args;
	const char **podman_run_args;
	bool systemd; /* --systemd: systemd as the containers' init */
	bool ssh_strict_host_keys; /* --ssh-strict-host-keys */
	size_t n_ssh, n_ssh_options, n_podman_args, n_podman_run_args;
	/* --vm IMAGE and its companions; 0/NULL: not given. */
	const char *vm, *vm_host, *vm_kernel, *vm_initrd, *vm_cmdline;
	int vm_memory, vm_cpus, vm_boot_timeout;
	int vm_accel, vm_firmware, vm_key; /* enum value + 1; 0: not given */
	const char **vm_args;
	size_t n_vm_args;
	/* --testing-farm COMPOSE and its companions; 0/NULL: not given. */
	const char *tf, *tf_arch, *tf_pool, *tf_hardware, *tf_source;
	int tf_timeout, tf_poll_ms;
	int tf_max_retries; /* N + 1; 0: not given */
	bool tf_skip_guest_setup, tf_os_cleaning;
	/* Owned: --tf-hardware @FILE's text, --tf-source with its prefix. */
	char *tf_hardware_text, *tf_source_cidr;
};

/* Prepares room for the options of an argc-long command line. Returns
 * CLI_OK or CLI_USAGE (message printed). */
int cli_provision_init(struct cli_provision *p, int argc);

/* Takes one getopt_long result: 1 when it was a provisioner option, 0
 * when not, CLI_USAGE on a bad value (message naming the option printed;
 * `arg` is optarg). */
int cli_provision_option(struct cli_provision *p, int opt, const char *arg);

/* Builds (does not start) the provisioner the options describe: exactly
 * one kind. Returns CLI_OK with *out set, or CLI_USAGE (message printed,
 * naming the option). */
int cli_provision_build(struct atex_provisioner **out,
			const struct cli_provision *p);

void cli_provision_free(struct cli_provision *p);

struct cli_signals; /* below */

/* Starts the provisioner and waits for one system. The caller has made
 * `prov` visible to its signal handling first (the first signal aborts
 * it, which ends the wait). Returns CLI_OK with *out set, CLI_FAILED when
 * a signal ended the wait, CLI_USAGE (message printed, prefixed `what`). */
struct atex_remote;
/* CLI_USAGE (printed, prefixed `what`) when --count was given to a
 * subcommand that reserves one system (exec, test); else CLI_OK. */
int cli_provision_one_system(const struct cli_provision *p, const char *what);
int cli_provision_reserve(struct atex_remote **out,
			  struct atex_provisioner *prov,
			  const struct cli_signals *signals, const char *what);

/* ------------------------------------------------------------------------
 * Signals (signals.c): SIGINT/SIGTERM taken by one thread. On the first
 * signal that thread stops what the main thread published (below), then
 * runs on_first (may be NULL; fire cancel tokens: async-signal-safety is
 * not needed, it is a thread); on_second (may be NULL) on the second,
 * right before _exit(128+N).
 */
struct atex_executor;
struct atex_orchestrator;

struct cli_signals {
	sigset_t set;
	pthread_t thread;
	bool running;
	atomic_int signo; /* the first signal, 0 for none */
	void (*on_first)(int sig, void *data);
	void (*on_second)(int sig, void *data);
	void *data;
	/* Published objects: the first signal aborts the orchestrator,
	 * cancels the executor and aborts the provisioner. The lock keeps
	 * the main thread from freeing one while the signal thread uses
	 * it. */
	pthread_mutex_t lock;
	struct atex_provisioner *prov;
	struct atex_executor *exec;
	struct atex_orchestrator *orch;
	/* Called on a second (third...) signal before exiting: true when it
	 * took the signal (the process goes on). NULL: exit. */
	bool (*on_again)(int sig, void *data);
};

/* A struct cli_signals starts as this (publish works before start). */
#define CLI_SIGNALS_INIT                                                       \
	{                                                                      \
		.lock = PTHREAD_MUTEX_INITIALIZER                              \
	}

/* Call before any other thread exists. CLI_OK or CLI_USAGE (printed). */
int cli_signals_start(struct cli_signals *s, const char *what,
		      void (*on_first)(int sig, void *data),
		      void (*on_second)(int sig, void *data), void *data);
void cli_signals_stop(struct cli_signals *s);
/* Makes objects (each may be NULL) the ones the first signal stops,
 * replacing those published before; publish NULLs before freeing them.
 * Returns false when a signal came first: nobody will stop these, so do
 * not wait on them. */
bool cli_signals_publish(struct cli_signals *s, struct atex_provisioner *prov,
			 struct atex_executor *exec,
			 struct atex_orchestrator *orch);

/* The first signal received, 0 for none. */
int cli_signals_received(const struct cli_signals *s);

/* ------------------------------------------------------------------------
 * Suite options (suite.c), shared by the subcommands that run tests:
 * which tests and how. A subcommand lists the ones it takes in its
 * getopt_long table and hands every option to cli_suite_option first.
 */

struct atex_fmf_context;
struct atex_fmf_discovery;

enum {
	CLI_OPT_CONTEXT = 0x180,
	CLI_OPT_PLAN,
	CLI_OPT_ENV,
	CLI_OPT_FILTER,
	CLI_OPT_TEST,
	CLI_OPT_EXCLUDE,
};

/* --test REGEX and --exclude REGEX, for a subcommand's getopt_long table. */
#define CLI_SUITE_NAME_OPTIONS                                                 \
	{"test", required_argument, NULL, CLI_OPT_TEST},                       \
	{                                                                      \
		"exclude", required_argument, NULL, CLI_OPT_EXCLUDE            \
	}

#define CLI_SUITE_LONG_OPTIONS                                                 \
	{"context", required_argument, NULL, CLI_OPT_CONTEXT},                 \
		{"plan", required_argument, NULL, CLI_OPT_PLAN},               \
	{                                                                      \
		"env", required_argument, NULL, CLI_OPT_ENV                    \
	}

/* What the options said; the arrays are NULL-terminated and point into
 * argv. */
struct cli_suite {
	struct atex_fmf_context *context; /* --context K=V */
	const char *plan;		  /* --plan NAME */
	const char **env;		  /* --env K=V */
	const char **filters;		  /* --filter EXPR */
	size_t n_env, n_filters;
	const char **tests, **excludes; /* --test REGEX, --exclude REGEX */
	size_t n_tests, n_excludes;
};

/* Room for an argc-long command line. CLI_OK or CLI_USAGE (printed). */
int cli_suite_init(struct cli_suite *s, int argc);

/* Takes one getopt_long result: 1 when it was a suite option, 0 when not,
 * CLI_USAGE on a bad value (message naming the option printed). */
int cli_suite_option(struct cli_suite *s, int opt, const char *arg);

/* Discovers TREE for the options. Without --plan, a tree with exactly one
 * plan runs in it; any other tree gives every test (with a notice when
 * plans were left out). A selection of no test is an error naming the
 * plan and filters (a mistyped filter must not pass). CLI_OK or CLI_USAGE
 * (message printed, prefixed `what`). */
int cli_suite_discover(struct atex_fmf_discovery **out,
		       const struct cli_suite *s, const char *tree,
		       const char *what);

void cli_suite_free(struct cli_suite *s);

/* A suite option, else a provisioner option: CLI_OK when one took it,
 * CLI_USAGE with a message printed (for an unknown option, `usage` too;
 * `text` is how the option was written). */
int cli_suite_or_provision_option(struct cli_suite *s, struct cli_provision *p,
				  int opt, const char *arg, const char *text,
				  void (*usage)(FILE *out));

/* results.c: whether a status counts as passed (pass, info, warn, skip;
 * NULL does not). */
bool cli_status_ok(const char *status);

/* Prints "STATUS TEST[/SUB][  NOTE][SUFFIX]" and a newline on stdout,
 * control characters in what the test gave escaped. `sub`, `note` and
 * `suffix` may be NULL; `suffix` is printed as it is. */
void cli_print_result(const char *status, const char *test, const char *sub,
		      const char *note, const char *suffix);

/* Removes `path` and everything below it (nothing there is fine). 0, or
 * -1 with a message prefixed `what` printed. */
int cli_remove_tree(const char *path, const char *what);

/* Makes sure that no component of REL under the directory `base` is a
 * symlink or a non-directory: the first such entry is removed (the entry,
 * never what it points to), so that what atex then makes or removes
 * under base/REL stays under base. Missing components (and base) are
 * made; one that another user made is refused.
 * 0, or -1 with a message prefixed `what` printed. */
int cli_confine(const char *base, const char *rel, const char *what);

/* 0 when `dir` is missing or belongs to us or root; -1 (printed, prefixed
 * `what`) when another user owns it or a symlink on the way to it, or it
 * is writable by every user: they could plant links in it. */
int cli_check_owner(const char *dir, const char *what);

/* Makes the directory `path` (its parent exists) and checks that it is a
 * directory of ours, not a link or one another user made first in a
 * sticky parent. 0, or -1 printed, prefixed `what`. */
int cli_own_dir(const char *path, const char *what);

/* With --testing-farm (log.c): the provisioner's info lines (request
 * ids) shown unless ATEX_LOG is set, and its requests tracked. Call
 * before the provisioner's threads exist. */
void cli_log_testingfarm(void);
/* For one-shot API calls (`atex tf whoami`...): the client's first retry
 * shown as a warning naming `what`, the URL and the error, saying it
 * goes on for retry_for_s. */
void cli_log_api_retries(const char *what, int retry_for_s);
/* The API token, read once from TESTING_FARM_API_TOKEN, which is then
 * removed from the environment (no child process inherits it); NULL
 * when unset or empty. Call before other threads exist. */
const char *cli_tf_token(void);
/* CLI_OK, or CLI_USAGE after a message prefixed `what` when
 * TESTING_FARM_API_URL is set but empty or there is no token. */
int cli_tf_check_env(const char *what);
/* Names on stderr the requests submitted and not seen canceled (nothing
 * when none); any thread. */
void cli_log_print_alive(void);

/* ------------------------------------------------------------------------
 * ReportPortal upload of a run (reportportal.c): `atex run --reportportal
 * URL --rp-project P ...`.
 */

enum {
	CLI_OPT_RP_URL = 0x300,
	CLI_OPT_RP_PROJECT,
	CLI_OPT_RP_LAUNCH,
	CLI_OPT_RP_RERUN,
	CLI_OPT_RP_JOIN,
	CLI_OPT_RP_DESCRIPTION,
	CLI_OPT_RP_ATTRIBUTE,
	CLI_OPT_RP_RETRY_TIME,
	CLI_OPT_RP_TIMEOUT,
	CLI_OPT_RP_PER_PLATFORM,
};

#define CLI_RP_LONG_OPTIONS                                                    \
	{"reportportal", required_argument, NULL, CLI_OPT_RP_URL},             \
		{"rp-project", required_argument, NULL, CLI_OPT_RP_PROJECT},   \
		{"rp-launch", required_argument, NULL, CLI_OPT_RP_LAUNCH},     \
		{"rp-rerun", required_argument, NULL, CLI_OPT_RP_RERUN},       \
		{"rp-join-subtest", required_argument, NULL, CLI_OPT_RP_JOIN}, \
		{"rp-description", required_argument, NULL,                    \
		 CLI_OPT_RP_DESCRIPTION},                                      \
		{"rp-attribute", required_argument, NULL,                      \
		 CLI_OPT_RP_ATTRIBUTE},                                        \
		{"rp-retry-time", required_argument, NULL,                     \
		 CLI_OPT_RP_RETRY_TIME},                                       \
		{"rp-timeout", required_argument, NULL, CLI_OPT_RP_TIMEOUT},   \
		{"rp-launch-per-platform", no_argument, NULL,                  \
		 CLI_OPT_RP_PER_PLATFORM}

#define CLI_RP_MAX_ATTRIBUTES 33

struct cli_rp {
	const char *url, *project, *launch, *rerun, *join, *description;
	const char *attributes[CLI_RP_MAX_ATTRIBUTES]; /* NULL-terminated */
	size_t n_attributes;
	int retry_s, timeout_s;
	bool per_platform;
	char *token; /* cli_rp_check: from the environment */
};

extern const char cli_rp_usage[];

/* One option of CLI_RP_LONG_OPTIONS: CLI_OK, CLI_USAGE (printed), or -1
 * when `opt` is not one. */
int cli_rp_option(struct cli_rp *o, int opt, const char *arg);
/* After parsing: the options agree, and the token is taken out of the
 * environment (CLI_OK, or CLI_USAGE printed). Before threads exist. */
int cli_rp_check(struct cli_rp *o);
/* With --reportportal, puts ReportPortal behind *final and *earlier (the
 * local aggregators, not started yet; then owned by the new ones): local
 * first, then the upload queued (the artifacts linked into
 * DIR/.rp-spool) for one uploader thread, so that uploads never hold a
 * system; upload failures printed and counted, never an ingest's error;
 * stopping *final waits for the queue, then finishes the launch. *out is
 * NULL without --reportportal. */
struct cli_rp_upload;
struct atex_aggregator;
int cli_rp_wrap(struct cli_rp_upload **out, const struct cli_rp *o,
		const char *default_launch, const char *dir,
		struct atex_aggregator **final,
		struct atex_aggregator **earlier);
/* After the aggregators are stopped: how many results were not uploaded
 * (printed); CLI_USAGE when any, or the launch could not be finished.
 * Frees `up` (NULL: CLI_OK). */
int cli_rp_finish(struct cli_rp_upload *up);
/* For cli_signals (on_first, on_again) of `atex run`: the first signal
 * stops waiting for a launch not started yet (the uploads abandoned),
 * or, while the last uploads drain, says how to abandon them; the next
 * one abandons them (true: taken, the run then ends by itself, the
 * launch finished with one try each; false: nothing to abandon). */
void cli_rp_on_first(int sig, void *data);
bool cli_rp_on_again(int sig, void *data);
/* `atex report --reportportal ... DIR`: uploads a results folder of
 * `atex run` (earlier attempts first, as retries); CLI_OK, or CLI_USAGE
 * (printed) when it cannot be read or a test was not uploaded. */
int cli_rp_upload_dir(const struct cli_rp *o, const char *dir);
void cli_rp_free(struct cli_rp *o);

int cli_fmf(int argc, char **argv);
int cli_exec(int argc, char **argv);
int cli_test(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_tf(int argc, char **argv);

/* ------------------------------------------------------------------------
 * DIR/run.json of `atex run` (runinfo.c; docs/PROTOCOL.md "run.json").
 */

/* The run's record at its start (ended and systems null): the tree made
 * absolute, its git commit when it is in a git work tree (else null),
 * the context's dimensions as strings. NULL (printed) on ENOMEM. */
json_t *cli_runinfo_new(const char *platform, const char *provisioner,
			const char *tree, const struct atex_fmf_context *ctx);

/* The SQLite aggregator's run_json from it, with its "started": one
 * start for both records (malloc'd; NULL on ENOMEM). */
char *cli_runinfo_sqlite_json(const json_t *info);

/* Writes DIR/run.json atomically (a temporary file renamed). CLI_OK or
 * CLI_USAGE (printed, naming the file). */
int cli_runinfo_write(const json_t *info, const char *dir);

/* Sets ended (`ended`, NULL: now) and systems, and writes it again. */
int cli_runinfo_finish(json_t *info, const char *dir, size_t systems,
		       const char *ended);

/* The wall clock as run.json and attempt.json have it
 * ("2026-12-06T22:45:01.123+00:00"). */
void cli_runinfo_now(char out[40]);

#endif /* ATEX_CLI_H */
