/*
 * fmf.c - the fmf executor: runs discovered fmf tests on one system
 * through the test control channel (docs/PROTOCOL.md).
 *
 * start() stages the tests trees (without .git) and the remote scripts
 * (src/executor/remote/, compiled in) into one local directory, makes a
 * private work directory on the system (under /var/tmp, which survives a
 * reboot) and uploads everything in one copy:
 *
 *   WORKDIR/tree, tree-1, ...   the trees (one per discovery root)
 *   WORKDIR/libs/REPO/NAME      fmf libraries the tests require (library.c)
 *   WORKDIR/atex/wrapper.sh     the test wrapper
 *   WORKDIR/atex/bin/           tmt-report-result, tmt-file-submit, ...
 *   WORKDIR/plan-env            TMT_PLAN_ENVIRONMENT_FILE
 *   WORKDIR/meta/N.yaml         each test start's metadata
 *
 * then runs the plan's prepare steps. run_test() runs the test as ONE
 * remote process per start: `bash wrapper.sh test SENTINEL`, its setup
 * (environment, metadata, packages, the test itself) written to its stdin
 * as bash code, every value shell-quoted. Over ssh each extra command is
 * another channel and round trip, so setup and run go together. The
 * wrapper's stdout is the control channel (parsed by control.c, written
 * out by reporter.c), its stderr the test's output, which goes straight
 * into a file: the ssh or podman client writes it there itself, and atex
 * never copies output bytes.
 *
 * The time limit is ours, on the monotonic clock: the deadline moves with
 * `duration` words, and when it passes the test is stopped: first by
 * closing the wrapper's stdin (its watcher kills the test's session), then,
 * if the wrapper is still there, by killing the client, which for ssh and
 * podman also signals every remote process carrying the command's run id
 * (src/connection/remote.h). A `disconnect` word makes the executor tell
 * the wrapper (a "disconnect" line on its stdin: the channel closes, the
 * test is left to reboot the system), wait for the wrapper to go,
 * reconnect until the deadline, and start the test again with
 * TMT_REBOOT_COUNT raised. On a connection that can reboot
 * (atex_connection_can_reboot) reconnecting is not enough: the boot id
 * read before the start must have changed. There, a start that lost its
 * connection (no exit code, no `disconnect`) is a reboot too when a new
 * boot shows up before the deadline (an unannounced reboot: the test
 * starts again, with a warning and a note), and an infrastructure
 * failure when the old boot is still there.
 *
 * A test that exits with a code its `restart-on-exit-code` lists is
 * started again (restart(), after a reboot for `restart-with-reboot`) on
 * the same clock, TMT_TEST_RESTART_COUNT raised; its `check` results, sent
 * by the wrapper, make the verdict checks.c gives the reporter.
 *
 * The setup code is written by setup.c, one start of a test is run by
 * start.c; fmf_private.h holds what the three share.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atex/executor.h"
#include "executor/fmf_private.h"
#include "executor/library.h"
#include "executor/remote_files.h"
#include "executor/stage.h"
#include "util/process.h"
#include "util/util.h"

static struct fmf_executor *to_fmf(atex_executor *e)
{
	return (struct fmf_executor *)e;
}

/* ------------------------------------------------------------------------
 * Small helpers.
 */

/* "tree" for the first root, "tree-N" for the others. */
static char *tree_dir(const struct fmf_executor *fx, size_t i)
{
	if (i == 0)
		return atex_sprintf("%s/tree", fx->workdir);
	return atex_sprintf("%s/tree-%zu", fx->workdir, i);
}

/* The index of a local root among the staged ones, or -1. */
static long root_index(const struct fmf_executor *fx, const char *root)
{
	for (size_t i = 0; i < fx->stage->roots.len; i++)
		if (!strcmp(fx->stage->roots.items[i], root))
			return (long)i;
	return -1;
}

/* Runs a command on the system; a non-zero exit is ATEX_EEXTERNAL with
 * the command's output (the last of it) in the message. */
static int remote_run(struct fmf_executor *fx, const char *what,
		      const char *const *argv, const char *const *env,
		      const char *cwd, atex_cancel *cancel)
{
	struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
	struct atex_buf out = ATEX_BUF_INIT;
	atex_process *p = NULL;
	int status = 0, rc;
	size_t len;
	const char *tail;

	o.argv = argv;
	o.env = env;
	o.cwd = cwd;
	o.stdin_fd = ATEX_STDIO_NULL;
	o.stdout_fd = ATEX_STDIO_PIPE;
	o.stderr_fd = ATEX_STDIO_PIPE;
	rc = atex_connection_spawn(&p, fx->conn, &o);
	if (rc)
		return atex_error_prefix("%s: %s", fmf_conn_name(fx), what);
	rc = atex_process_communicate(&status, p, NULL, 0, &out, &out,
				      FMF_COMMAND_MS, cancel);
	atex_process_free(p);
	if (rc) {
		atex_error_prefix("%s: %s", fmf_conn_name(fx), what);
		goto out;
	}
	len = out.len;
	tail = atex_buf_cstr(&out);
	/* The end of the output says why, in a message of bounded size. */
	if (len > 2000)
		tail += len - 2000;
	atex_debug(FMF_COMPONENT, "%s: %s: status %d:\n%s", fmf_conn_name(fx),
		   what, status, tail);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = atex_error_set(ATEX_EEXTERNAL,
				    "%s: %s failed (exit status %d)%s%s",
				    fmf_conn_name(fx), what,
				    WIFEXITED(status) ? WEXITSTATUS(status)
						      : 128 + WTERMSIG(status),
				    len ? ":\n" : "", tail);
out:
	atex_buf_free(&out);
	return rc;
}

/* Reads the output of a one-line command (mktemp), within timeout_ms,
 * cancel (may be NULL) cutting it short. */
static int remote_capture(char **line, struct fmf_executor *fx,
			  const char *const *argv, int timeout_ms,
			  atex_cancel *cancel)
{
	struct atex_run_result r = {0};
	int rc;

	*line = NULL;
	rc = atex_connection_run(&r, fx->conn, argv, NULL, 0, timeout_ms,
				 cancel);
	if (rc) {
		atex_error_prefix("%s", fmf_conn_name(fx));
		goto out;
	}
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
		rc = atex_error_set(ATEX_EEXTERNAL, "%s: %s failed: %s",
				    fmf_conn_name(fx), argv[0],
				    r.err ? r.err : "");
		goto out;
	}
	r.out[strcspn(r.out, "\n")] = '\0';
	*line = atex_strdup(r.out);
	rc = *line ? 0 : ATEX_ENOMEM;
out:
	atex_run_result_clear(&r);
	return rc;
}

/* ------------------------------------------------------------------------
 * start: staging, upload, prepare.
 */

/* Stages every distinct root of the discovered tests (the plan's own tree
 * first) and the remote scripts. */
/* The index of a local root in a stage being made, or -1. */
static long stage_root_index(const struct atex_fmf_stage *st, const char *root)
{
	for (size_t i = 0; i < st->roots.len; i++)
		if (!strcmp(st->roots.items[i], root))
			return (long)i;
	return -1;
}

/* What runs killed with SIGKILL left on this machine: staging directories
 * in `tmp` and the work directories of local systems in /var/tmp (those
 * of a local connection are this machine's). Once per process. */
static void reap_leftovers(const char *tmp)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static bool done;

	pthread_mutex_lock(&lock);
	if (!done) {
		atex_stage_reap(tmp, "atex-stage-");
		atex_stage_reap(FMF_REMOTE_TMP, "atex-");
		done = true;
	}
	pthread_mutex_unlock(&lock);
}

/* Stages the discovery's roots (the plan's first) and the remote scripts
 * into a new private directory. On failure the caller frees `st`. */
static int stage_make(struct atex_fmf_stage *st, atex_fmf_discovery *d)
{
	const char *main_root = atex_fmf_discovery_root(d);
	const char *tmp = getenv("TMPDIR");
	char *dir = NULL, *bin = NULL, *atex = NULL;
	int rc = 0;

	reap_leftovers(tmp && *tmp ? tmp : "/tmp");
	st->dir = atex_sprintf("%s/atex-stage-%s-XXXXXX",
			       tmp && *tmp ? tmp : "/tmp", atex_stage_owner());
	if (!st->dir)
		return ATEX_ENOMEM;
	if (!mkdtemp(st->dir)) {
		rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", st->dir,
				    strerror(errno));
		free(st->dir);
		st->dir = NULL;
		return rc;
	}
	/* Held while we live: see atex_stage_reap. */
	st->lock_fd = atex_stage_lock(st->dir);
	if (main_root &&
	    (rc = atex_vec_push_copies(&st->roots,
				       (const char *[]){main_root, NULL})))
		return rc;
	for (size_t i = 0; i < atex_fmf_discovery_count(d); i++) {
		const char *root = atex_fmf_discovery_test_root(d, i);

		if (stage_root_index(st, root) < 0 &&
		    (rc = atex_vec_push_copies(&st->roots,
					       (const char *[]){root, NULL})))
			return rc;
	}
	for (size_t i = 0; !rc && i < st->roots.len; i++) {
		dir = i ? atex_sprintf("%s/tree-%zu", st->dir, i)
			: atex_sprintf("%s/tree", st->dir);
		rc = dir ? atex_stage_tree(st->roots.items[i], dir)
			 : ATEX_ENOMEM;
		free(dir);
	}
	atex = atex_path_join(st->dir, "atex");
	bin = atex ? atex_path_join(atex, "bin") : NULL;
	if (!rc && (!bin || mkdir(atex, 0755) < 0 || mkdir(bin, 0755) < 0))
		rc = bin ? atex_error_set(ATEX_EIO, "cannot create %s: %s", bin,
					  strerror(errno))
			 : ATEX_ENOMEM;
	for (size_t i = 0; !rc && i < atex_remote_files_count; i++) {
		const struct atex_remote_file *f = &atex_remote_files[i];

		rc = atex_stage_file(f->mode & 0111 ? bin : atex, f->name,
				     f->contents, f->len, f->mode);
	}
	free(atex);
	free(bin);
	/* Fetched libraries go beside the trees: WORKDIR/libs. */
	return rc ? rc : fmf_libraries_stage(&st->libs, d, st->dir);
}

void atex_fmf_stage_free(atex_fmf_stage *st)
{
	if (!st)
		return;
	if (st->dir)
		atex_stage_remove(st->dir);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->dir);
	atex_vec_free_all(&st->roots, free);
	json_decref(st->libs);
	free(st);
}

int atex_fmf_stage_new(atex_fmf_stage **out, atex_fmf_discovery *d)
{
	struct atex_fmf_stage *st;
	int rc;

	*out = NULL;
	if (!d)
		return atex_error_set(ATEX_EINVAL, "fmf stage: no discovery");
	st = atex_calloc(1, sizeof(*st));
	if (!st)
		return ATEX_ENOMEM;
	st->lock_fd = -1;
	rc = stage_make(st, d);
	if (rc) {
		atex_fmf_stage_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* The plan environment and the built-in variables of the plan's steps, as
 * "NAME=VALUE" strings (prepare and finish run with these). */
static int plan_env(struct atex_vec *env, struct fmf_executor *fx)
{
	json_t *plan = atex_fmf_discovery_environment(fx->disc);
	const char *key;
	json_t *value;
	char *s;

	json_object_foreach(plan, key, value)
	{
		if (!json_is_string(value))
			continue;
		s = atex_sprintf("%s=%s", key, json_string_value(value));
		if (!s || atex_vec_push(env, s)) {
			free(s);
			return ATEX_ENOMEM;
		}
	}
	/* Python ATEX's prepare and finish get the executor's environment
	 * too, over the plan's. */
	for (size_t i = 0; fx->compat && i < fx->env.len; i++) {
		const char *item = fx->env.items[i];

		s = item ? atex_strdup(item) : NULL;
		if (item && (!s || atex_vec_push(env, s))) {
			free(s);
			return ATEX_ENOMEM;
		}
	}
	s = atex_sprintf("TMT_TREE=%s/tree", fx->workdir);
	if (!s || atex_vec_push(env, s))
		goto oom;
	s = atex_sprintf("TMT_PLAN_ENVIRONMENT_FILE=%s/plan-env", fx->workdir);
	if (!s || atex_vec_push(env, s))
		goto oom;
	return atex_vec_push(env, NULL);
oom:
	free(s);
	return ATEX_ENOMEM;
}

/* Runs the plan's `shell` scripts of one step, in the tree, with the plan
 * environment and the plan-environment file read as tmt reads it (never
 * sourced: remote/lib.sh). */
static int run_scripts(struct fmf_executor *fx, const char *step,
		       json_t *scripts, const char *const *env)
{
	static const char runner[] =
		". \"$1\" || exit; atex_plan_env_load "
		"\"$TMT_PLAN_ENVIRONMENT_FILE\" || { echo "
		"\"TMT_PLAN_ENVIRONMENT_FILE: $REPLY\" >&2; exit 1; }; "
		"exec bash -e -o pipefail -c \"$2\"";
	char *tree = tree_dir(fx, 0), *what = NULL;
	char *lib = atex_sprintf("%s/atex/lib.sh", fx->workdir);
	size_t i;
	json_t *script;
	int rc = tree && lib ? 0 : ATEX_ENOMEM;

	json_array_foreach(scripts, i, script)
	{
		const char *argv[] = {"bash",
				      "--norc",
				      "-c",
				      runner,
				      "atex-prepare",
				      lib,
				      json_string_value(script),
				      NULL};

		if (rc || !argv[6])
			continue;
		what = atex_sprintf("%s script %zu", step, i + 1);
		rc = what ? remote_run(fx, what, argv, env, tree, fx->cancel)
			  : ATEX_ENOMEM;
		free(what);
	}
	free(tree);
	free(lib);
	return rc;
}

/* Installs the packages of a prepare `install` step with the wrapper. */
static int run_install(struct fmf_executor *fx, json_t *packages)
{
	struct atex_vec argv = ATEX_VEC_INIT;
	char *wrapper = atex_sprintf("%s/atex/wrapper.sh", fx->workdir);
	size_t i;
	json_t *pkg;
	int rc = wrapper ? 0 : ATEX_ENOMEM;

	rc = rc ? rc : atex_vec_push(&argv, "bash");
	rc = rc ? rc : atex_vec_push(&argv, "--norc");
	rc = rc ? rc : atex_vec_push(&argv, wrapper);
	rc = rc ? rc : atex_vec_push(&argv, "install");
	json_array_foreach(packages, i, pkg)
	{
		if (!rc && json_is_string(pkg))
			rc = atex_vec_push(&argv,
					   (void *)json_string_value(pkg));
	}
	rc = rc ? rc : atex_vec_push(&argv, NULL);
	if (!rc && argv.len > 5)
		rc = remote_run(fx, "prepare install",
				(const char *const *)argv.items, NULL, NULL,
				fx->cancel);
	atex_vec_free(&argv);
	free(wrapper);
	return rc;
}

/* A phase whose method atex does not run: discovery refuses these unless
 * it only listed tests, and such a discovery must not run either. */
static int unknown_method(struct fmf_executor *fx, const char *step,
			  json_t *phase)
{
	const char *how = json_string_value(json_object_get(phase, "how"));
	const char *name = json_string_value(json_object_get(phase, "name"));

	return atex_error_set(ATEX_EFORMAT,
			      "%s: plan %s: %s phase '%s': unsupported "
			      "method 'how: %s'",
			      fmf_conn_name(fx),
			      atex_fmf_discovery_plan_name(fx->disc), step,
			      name ? name : "?", how ? how : "(none)");
}

static int run_prepare(struct fmf_executor *fx)
{
	struct atex_vec env = ATEX_VEC_INIT;
	json_t *steps = atex_fmf_discovery_prepare(fx->disc), *step;
	size_t i;
	int rc = plan_env(&env, fx);

	json_array_foreach(steps, i, step)
	{
		const char *how =
			json_string_value(json_object_get(step, "how"));

		if (rc)
			continue;
		if (how && !strcmp(how, "install"))
			rc = run_install(fx, json_object_get(step, "package"));
		else if (how && !strcmp(how, "shell"))
			rc = run_scripts(fx, "prepare",
					 json_object_get(step, "script"),
					 (const char *const *)env.items);
		else if (how && !strcmp(how, "ansible"))
			rc = atex_fmf_run_ansible(fx, "prepare", step);
		else
			rc = unknown_method(fx, "prepare", step);
	}
	atex_vec_free_all(&env, free);
	return rc;
}

static int fmf_start(atex_executor *e)
{
	struct fmf_executor *fx = to_fmf(e);
	char *tmpl = NULL;
	int rc;

	if (fx->started)
		return atex_error_set(ATEX_EINVAL,
				      "%s: executor already "
				      "started",
				      fmf_conn_name(fx));
	rc = atex_connection_connect(fx->conn, FMF_RECONNECT_TRY_MS,
				     fx->cancel);
	if (rc)
		return rc == ATEX_ECANCELED ? rc : ATEX_EINFRA;
	if (!fx->stage) {
		rc = atex_fmf_stage_new(&fx->own_stage, fx->disc);
		if (rc)
			goto out;
		fx->stage = fx->own_stage;
	}
	/* Named after its owner: a later run on this machine removes it
	 * when we were killed (atex_stage_reap). */
	tmpl = atex_sprintf("%s/atex-%s-XXXXXX", fx->remote_tmp,
			    atex_stage_owner());
	rc = tmpl ? 0 : ATEX_ENOMEM;
	/* The command below is not canceled: no directory after one. */
	if (!rc && atex_cancel_fired(fx->cancel))
		rc = atex_error_set(ATEX_ECANCELED, "%s: start: canceled",
				    fmf_conn_name(fx));
	if (!rc) {
		/* One command: the directory, its plan-environment file, the
		 * metadata folder and the parent of the tests' TMT_TEST_DATA.
		 */
		const char *argv[] = {"bash",
				      "-c",
				      "d=$(mktemp -d \"$1\") && "
				      "mkdir \"$d/meta\" \"$d/data\" && "
				      ": >\"$d/plan-env\" && echo \"$d\"",
				      "atex",
				      tmpl,
				      NULL};

		/* Not canceled: a cancel that killed the client after the
		 * system made the directory would leave it there, unnamed
		 * (an ssh client killed under Ctrl-C while a fresh system
		 * started). Once it is known, stop removes it; the cancel
		 * then ends the start at the copy below. */
		rc = remote_capture(&fx->workdir, fx, argv, FMF_MKDIR_MS, NULL);
	}
	if (rc)
		goto out;
	atex_debug(FMF_COMPONENT, "%s: work directory %s", fmf_conn_name(fx),
		   fx->workdir);
	fx->started = true;
	rc = atex_connection_copy_to(fx->conn, fx->stage->dir, fx->workdir,
				     fx->cancel);
	if (!rc)
		rc = run_prepare(fx);
out:
	free(tmpl);
	if (rc == ATEX_EIO && fx->workdir)
		rc = ATEX_EINFRA;
	return rc;
}

/* ------------------------------------------------------------------------
 * stop
 */

/* One finish phase; a failure is only a warning (the tests ran). */
static int run_finish(struct fmf_executor *fx, json_t *phase,
		      const struct atex_vec *env)
{
	const char *how = json_string_value(json_object_get(phase, "how"));

	if (how && !strcmp(how, "shell"))
		return run_scripts(fx, "finish",
				   json_object_get(phase, "script"),
				   (const char *const *)env->items);
	if (how && !strcmp(how, "ansible"))
		return atex_fmf_run_ansible(fx, "finish", phase);
	return unknown_method(fx, "finish", phase);
}

static int fmf_stop(atex_executor *e)
{
	struct fmf_executor *fx = to_fmf(e);
	struct atex_vec env = ATEX_VEC_INIT;
	json_t *steps, *step;
	size_t i;

	if (!fx->started && !fx->own_stage)
		return atex_error_set(ATEX_EINVAL, "%s: executor not started",
				      fmf_conn_name(fx));
	if (fx->workdir && !atex_cancel_fired(fx->cancel)) {
		steps = atex_fmf_discovery_finish(fx->disc);
		if (plan_env(&env, fx) == 0) {
			json_array_foreach(steps, i, step)
			{
				if (run_finish(fx, step, &env))
					atex_log(ATEX_LOG_WARNING,
						 FMF_COMPONENT, "%s",
						 atex_error_last());
			}
		}
		atex_vec_free_all(&env, free);
	}
	if (fx->workdir) {
		const char *argv[] = {"rm", "-rf", "--", fx->workdir, NULL};

		/* No cancel token: cleanup must still happen after one. A
		 * dead connection only costs a warning. */
		if (remote_run(fx, "removing the work directory", argv, NULL,
			       NULL, NULL))
			atex_log(ATEX_LOG_WARNING, FMF_COMPONENT, "%s",
				 atex_error_last());
	}
	if (fx->own_stage) {
		atex_fmf_stage_free(fx->own_stage);
		fx->own_stage = NULL;
		fx->stage = NULL;
	}
	free(fx->workdir);
	fx->workdir = NULL;
	free(fx->boot_id);
	fx->boot_id = NULL;
	fx->started = false;
	return 0;
}

/* ------------------------------------------------------------------------
 * run_test: starts, reboots, the outcome.
 */

/* A pause between attempts that a cancel cuts short: 0 or
 * ATEX_ECANCELED. */
static int pause_attempt(struct fmf_executor *fx)
{
	if (atex_wait_fd(atex_cancel_fd(fx->cancel), POLLIN,
			 FMF_RECONNECT_PAUSE_MS, NULL) == 0)
		return ATEX_ECANCELED;
	return 0;
}

/* Reconnects after a reboot until the deadline, on a connection that
 * cannot reboot (the test acts its reboot out). 0, ATEX_ETIMEDOUT or
 * ATEX_ECANCELED. */
static int reconnect(struct run *r)
{
	struct fmf_executor *fx = r->fx;

	atex_connection_disconnect(fx->conn);
	for (;;) {
		double left = r->deadline - atex_monotonic_ms();
		int rc;

		if (left <= 0)
			return ATEX_ETIMEDOUT;
		rc = atex_connection_connect(fx->conn,
					     left < FMF_RECONNECT_TRY_MS
						     ? (int)left
						     : FMF_RECONNECT_TRY_MS,
					     fx->cancel);
		if (rc == 0 || rc == ATEX_ECANCELED)
			return rc;
		atex_debug(FMF_COMPONENT, "%s: reconnecting: %s",
			   fmf_conn_name(fx), atex_error_last());
		if (pause_attempt(fx))
			return ATEX_ECANCELED;
	}
}

/* The system's boot id, read before each test's clock starts on a
 * connection that can reboot (the next starts have the one read after
 * the reboot). One that cannot be read is left unknown: a reboot is then
 * only a reconnect, and a lost connection an infrastructure failure. */
static void boot_id_known(struct fmf_executor *fx)
{
	if (fx->boot_id || !atex_connection_can_reboot(fx->conn))
		return;
	if (atex_connection_boot_id(&fx->boot_id, fx->conn, FMF_COMMAND_MS,
				    fx->cancel))
		atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
			 "%s: reboots cannot be confirmed: %s",
			 fmf_conn_name(fx), atex_error_last());
}

/*
 * After the system went down (`announced` by `disconnect`, or the
 * connection lost), on a connection that can reboot: reconnects and
 * reads the boot id until it differs from the one before, or the
 * deadline. Reconnecting is not enough: a server can still answer while
 * its system goes down. A lost connection whose system still shows the
 * old boot FMF_REBOOT_SETTLE_MS after the loss did not reboot:
 * ATEX_EEXISTS. Otherwise 0 (fx->boot_id is the new boot's),
 * ATEX_ETIMEDOUT or ATEX_ECANCELED.
 */
static int await_boot(struct run *r, bool announced)
{
	struct fmf_executor *fx = r->fx;
	double settle = atex_monotonic_ms() + FMF_REBOOT_SETTLE_MS;
	char *id = NULL;

	atex_connection_disconnect(fx->conn);
	for (;;) {
		double now = atex_monotonic_ms(), left = r->deadline - now;
		int try = left < FMF_RECONNECT_TRY_MS ? (int)left
						      : FMF_RECONNECT_TRY_MS;
		int rc;

		if (left <= 0)
			return ATEX_ETIMEDOUT;
		rc = atex_connection_connect(fx->conn, try, fx->cancel);
		if (rc == 0)
			rc = atex_connection_boot_id(&id, fx->conn, try,
						     fx->cancel);
		if (rc == ATEX_ECANCELED)
			return rc;
		if (rc == 0 && (!fx->boot_id || strcmp(id, fx->boot_id))) {
			atex_log(ATEX_LOG_INFO, FMF_COMPONENT,
				 "%s: a new boot: %s (was %s)",
				 fmf_conn_name(fx), id,
				 fx->boot_id ? fx->boot_id : "unknown");
			free(fx->boot_id);
			fx->boot_id = id;
			return 0;
		}
		if (rc == 0) {
			free(id);
			id = NULL;
			if (!announced && atex_monotonic_ms() >= settle)
				return ATEX_EEXISTS;
			/* Connected to the old boot: connect is a no-op
			 * until that connection dies with its system. */
			atex_debug(FMF_COMPONENT,
				   "%s: still the boot %s; waiting",
				   fmf_conn_name(fx), fx->boot_id);
		} else {
			atex_debug(FMF_COMPONENT, "%s: reconnecting: %s",
				   fmf_conn_name(fx), atex_error_last());
		}
		if (pause_attempt(fx))
			return ATEX_ECANCELED;
	}
}

/* After a start that lost its connection, on a system that can reboot:
 * whether the system rebooted under the test (a new boot before the
 * deadline). 0: it did; ATEX_EEXISTS: the same boot; ATEX_ETIMEDOUT,
 * ATEX_ECANCELED. */
static int unannounced_reboot(struct run *r, const char *name)
{
	struct fmf_executor *fx = r->fx;
	int rc;

	if (!r->lost || !fx->boot_id || !atex_connection_can_reboot(fx->conn))
		return ATEX_EEXISTS;
	atex_log(ATEX_LOG_INFO, FMF_COMPONENT,
		 "%s: %s: the connection was lost; reconnecting to see "
		 "whether the system rebooted",
		 fmf_conn_name(fx), name);
	rc = await_boot(r, false);
	if (rc == 0)
		atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
			 "%s: %s: the system rebooted without tmt-reboot "
			 "(no disconnect); starting the test again",
			 fmf_conn_name(fx), name);
	return rc;
}

/* Discovery refuses a test without a command string, but a program may
 * change the metadata afterwards. */
static int test_script_check(json_t *data, const char *name)
{
	if (json_is_string(json_object_get(data, "test")))
		return 0;
	return atex_error_set(ATEX_EFORMAT,
			      "%s: 'test' is not a shell command string", name);
}

/* The test's `result` key (tmt's result interpretation), "respect" when
 * missing. */
static int test_result_key(enum atex_result_interpret *how, json_t *data,
			   const char *name)
{
	json_t *v = json_object_get(data, "result");
	int i;

	*how = ATEX_RESULT_RESPECT;
	if (!v)
		return 0;
	i = atex_result_interpret_parse(json_string_value(v));
	if (i >= 0) {
		*how = (enum atex_result_interpret)i;
		return 0;
	}
	return atex_error_set(ATEX_EFORMAT,
			      "%s: invalid 'result' %s%s%s (one of respect, "
			      "xfail, pass, info, warn, error, fail, custom, "
			      "restraint)",
			      name, json_is_string(v) ? "'" : "",
			      json_is_string(v) ? json_string_value(v)
						: "(not a string)",
			      json_is_string(v) ? "'" : "");
}

/* A library the test requires could not be fetched, or its entry is
 * wrong (library.c said which). */
static int test_libraries(json_t *libs)
{
	const char *error = json_string_value(json_object_get(libs, "error"));

	return error ? atex_error_set(ATEX_EFORMAT, "%s", error) : 0;
}

/* tmt's `framework`: how the test's result is read. `shell` (the
 * default, unless the executor's options say `beakerlib`): from its exit
 * code; `beakerlib`: from its journal (remote/beakerlib.sh). tmt refuses
 * any other value, and so do we. */
static int test_framework(bool *beakerlib, const struct fmf_executor *fx,
			  json_t *data, const char *name)
{
	json_t *f = json_object_get(data, "framework");
	const char *s = json_string_value(f);

	*beakerlib = fx->beakerlib;
	if (!f || json_is_null(f))
		return 0;
	if (s && (!strcmp(s, "shell") || !strcmp(s, "beakerlib"))) {
		*beakerlib = !strcmp(s, "beakerlib");
		return 0;
	}
	return atex_error_set(ATEX_EFORMAT,
			      "%s: framework '%s' is not supported (shell or "
			      "beakerlib)",
			      name, s ? s : "(not a string)");
}

/* The test's duration in seconds (tmt's default when missing). */
static int test_duration(double *seconds, json_t *data, const char *name)
{
	json_t *d = json_object_get(data, "duration");
	char num[64];
	const char *text = json_string_value(d);

	if (json_is_integer(d)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(d));
		text = num;
	}
	if (!text)
		text = FMF_DEFAULT_DURATION;
	if (atex_duration_parse(seconds, text) < 0)
		return atex_error_prefix("%s: duration", name);
	/* A sum of zero ("*2"): tmt's default, with the multipliers. */
	if (*seconds == 0) {
		char *with_default =
			atex_sprintf(FMF_DEFAULT_DURATION " %s", text);
		int rc = with_default
				 ? atex_duration_parse(seconds, with_default)
				 : ATEX_ENOMEM;

		free(with_default);
		if (rc < 0)
			return atex_error_prefix("%s: duration", name);
	}
	return 0;
}

/* Where a test runs on the system and which tree it belongs to. */
static int test_paths(char **tree, char **dir, struct fmf_executor *fx,
		      size_t i)
{
	long k = root_index(fx, atex_fmf_discovery_test_root(fx->disc, i));
	const char *rel = atex_fmf_discovery_test_dir(fx->disc, i);

	*tree = tree_dir(fx, k < 0 ? 0 : (size_t)k);
	if (!*tree)
		return ATEX_ENOMEM;
	*dir = strcmp(rel, ".") ? atex_sprintf("%s/%s", *tree, rel)
				: atex_strdup(*tree);
	return *dir ? 0 : ATEX_ENOMEM;
}

/* Python ATEX's ATEX_DEBUG_TEST_OUTPUT_FD=N (compat): the test's output
 * goes to descriptor N of this process. -1 when not asked or not open. */
static int debug_output_fd(const struct fmf_executor *fx)
{
	const char *v = fx->compat ? getenv("ATEX_DEBUG_TEST_OUTPUT_FD") : NULL;
	char *end;
	long n;

	if (!v || !*v)
		return -1;
	n = strtol(v, &end, 10);
	if (*end || n < 0 || n > 65535)
		return -1;
	return fcntl((int)n, F_DUPFD_CLOEXEC, 3);
}

static bool debug_switch(const struct fmf_executor *fx, const char *name)
{
	const char *v = fx->compat ? getenv(name) : NULL;

	return v && !strcmp(v, "1");
}

static int open_output(int *fd, const struct fmf_executor *fx,
		       const atex_reporter *rep)
{
	const char *path = atex_reporter_output_path(rep);

	*fd = debug_output_fd(fx);
	if (*fd >= 0)
		return 0;

	*fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (*fd >= 0)
		return 0;
	return atex_error_set(ATEX_EIO, "cannot open %s: %s", path,
			      strerror(errno));
}

/* ------------------------------------------------------------------------
 * Restarts (tmt's restart-on-exit-code, restart-max-count,
 * restart-with-reboot).
 */

/* tmt's default and upper bound of restart-max-count. */
#define FMF_RESTART_MAX_DEFAULT 1
#define FMF_RESTART_MAX_LIMIT	10
/* What reboots the system for restart-with-reboot, unless the executor's
 * environment sets ATEX_REBOOT_COMMAND; detached, so that our command
 * ends before the connection goes down with the system. */
#define FMF_REBOOT_COMMAND "reboot || systemctl reboot || shutdown -r now"

struct restart_keys {
	json_t *codes; /* an integer or an array of them; NULL: none */
	long max;
	bool reboot;
};

/* The test's restart keys, as tmt's schema has them. */
static int restart_keys(struct restart_keys *k, json_t *data, const char *name)
{
	json_t *codes = json_object_get(data, "restart-on-exit-code");
	json_t *max = json_object_get(data, "restart-max-count");
	json_t *reboot = json_object_get(data, "restart-with-reboot");
	json_t *code;
	size_t i;

	k->codes = json_is_null(codes) ? NULL : codes;
	k->max = FMF_RESTART_MAX_DEFAULT;
	k->reboot = json_is_true(reboot);
	if (json_is_array(codes)) {
		json_array_foreach(codes, i, code)
		{
			if (!json_is_integer(code))
				codes = NULL;
		}
	}
	if (k->codes && !json_is_integer(codes) && !json_is_array(codes))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: restart-on-exit-code: not an exit "
				      "code or a list of exit codes",
				      name);
	if (max && !json_is_null(max)) {
		if (!json_is_integer(max) || json_integer_value(max) < 1 ||
		    json_integer_value(max) > FMF_RESTART_MAX_LIMIT)
			return atex_error_set(ATEX_EFORMAT,
					      "%s: restart-max-count: not an "
					      "integer from 1 to %d",
					      name, FMF_RESTART_MAX_LIMIT);
		k->max = (long)json_integer_value(max);
	}
	if (reboot && !json_is_null(reboot) && !json_is_boolean(reboot))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: restart-with-reboot: not true or "
				      "false",
				      name);
	return 0;
}

static bool restart_asked(const struct restart_keys *k, int code)
{
	json_t *c;
	size_t i;

	if (json_is_integer(k->codes))
		return json_integer_value(k->codes) == code;
	json_array_foreach(k->codes, i, c)
	{
		if (json_integer_value(c) == code)
			return true;
	}
	return false;
}

/* A line in the test's output, so that a restart shows where it is. */
static void output_line(int fd, const char *line)
{
	size_t n = strlen(line);

	while (n) {
		ssize_t w = write(fd, line, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		line += w;
		n -= (size_t)w;
	}
}

/* The executor environment's ATEX_REBOOT_COMMAND, or the default. */
static const char *reboot_command(const struct fmf_executor *fx)
{
	static const char var[] = "ATEX_REBOOT_COMMAND=";

	for (size_t i = 0; i < fx->env.len && fx->env.items[i]; i++) {
		const char *e = fx->env.items[i];

		if (!strncmp(e, var, sizeof(var) - 1))
			return e + sizeof(var) - 1;
	}
	return FMF_REBOOT_COMMAND;
}

/* Reboots the system for restart-with-reboot and waits for the new boot
 * (the test's clock runs on). 0; otherwise r->restart_error says why, or
 * ATEX_ECANCELED. */
static int restart_reboot(struct run *r)
{
	struct fmf_executor *fx = r->fx;
	char *script = NULL;
	int rc;

	if (atex_connection_is_local(fx->conn) ||
	    !atex_connection_can_reboot(fx->conn)) {
		r->restart_error = atex_sprintf(
			"restart-with-reboot: %s cannot reboot (%s); the test "
			"was not restarted",
			fmf_conn_name(fx),
			atex_connection_is_local(fx->conn)
				? "the system is the machine atex runs on"
				: "its connection does not survive a reboot");
		return r->restart_error ? ATEX_EINVAL : ATEX_ENOMEM;
	}
	/* Detached, HUP ignored: the session our command ran in may end
	 * (and be hung up) before the reboot starts. */
	script = atex_sprintf("trap '' HUP; (sleep 1; sync; %s) </dev/null "
			      ">/dev/null 2>&1 &",
			      reboot_command(fx));
	if (!script)
		return ATEX_ENOMEM;
	rc = remote_run(fx, "reboot",
			(const char *const[]){"bash", "-c", script, NULL}, NULL,
			NULL, fx->cancel);
	free(script);
	if (rc == ATEX_ECANCELED)
		return rc;
	if (rc) {
		r->restart_error = atex_sprintf("restart-with-reboot: %s",
						atex_error_last());
		return r->restart_error ? ATEX_EINVAL : ATEX_ENOMEM;
	}
	/* A new boot, also under compat_python_atex (Python ATEX has no
	 * restarts to be compatible with). */
	rc = await_boot(r, true);
	if (rc == ATEX_ECANCELED)
		return rc;
	if (rc) {
		r->restart_error = atex_sprintf(
			"restart-with-reboot: %s did not come back after a "
			"reboot before the test's duration ran out",
			fmf_conn_name(fx));
		return r->restart_error ? ATEX_EINVAL : ATEX_ENOMEM;
	}
	return 0;
}

/* After a start that exited: whether the test starts again (1), as its
 * restart keys ask; 0: the outcome stands (r->restart_error may say it
 * is an error); ATEX_ECANCELED. The clock runs on, as in tmt. */
static int restart(struct run *r, struct test_start *t,
		   const struct restart_keys *k, int output_fd)
{
	char *line;
	int code = r->exitcode, rc;

	if (!k->codes || !restart_asked(k, code))
		return 0;
	/* tmt counts reboots in it too. */
	if (t->restarts >= k->max) {
		r->restart_error = atex_sprintf(
			"exit code %d asks for a restart, but the test was "
			"restarted %d times already (restart-max-count %ld)",
			code, t->restarts, k->max);
		atex_log(ATEX_LOG_WARNING, FMF_COMPONENT, "%s: %s: %s",
			 fmf_conn_name(r->fx), t->name,
			 r->restart_error ? r->restart_error : "");
		return 0;
	}
	atex_log(ATEX_LOG_INFO, FMF_COMPONENT,
		 "%s: %s: exit code %d, restarting (%d of %ld)%s",
		 fmf_conn_name(r->fx), t->name, code, t->restarts + 1, k->max,
		 k->reboot ? " after a reboot" : "");
	line = atex_sprintf("atex: exit code %d: restarting the test (%d of "
			    "%ld)%s\n",
			    code, t->restarts + 1, k->max,
			    k->reboot ? " after a reboot" : "");
	if (line)
		output_line(output_fd, line);
	free(line);
	if (k->reboot) {
		rc = restart_reboot(r);
		if (rc == ATEX_ECANCELED)
			return rc;
		if (rc)
			return 0;
		t->reboots++;
	}
	t->restarts++;
	r->exitcode = -1;
	return 1;
}

/* Runs the starts of the test (more than one when it reboots the system)
 * and says how the last one ended. */
static enum start_end run_starts(struct run *r, struct test_start *t,
				 const struct restart_keys *k, int output_fd,
				 char **note)
{
	bool can_reboot = atex_connection_can_reboot(r->fx->conn);
	enum start_end end;
	int rc;

	for (;;) {
		free((char *)t->meta);
		t->meta = atex_sprintf("%s/meta/%lu.yaml", r->fx->workdir,
				       ++r->fx->starts);
		if (!t->meta)
			return START_INFRA;
		/* tmt keeps the checks of the last start. */
		json_object_clear(r->checks_seen);
		end = fmf_run_start(r, t, output_fd, note);
		/* Python ATEX does not follow a reboot without disconnect. */
		if (end == START_INFRA && r->lost && can_reboot &&
		    !r->fx->compat) {
			rc = unannounced_reboot(r, t->name);
			if (rc == ATEX_ECANCELED) {
				free(*note);
				*note = NULL;
				return START_CANCELED;
			}
			if (rc == 0) {
				free(*note);
				*note = NULL;
				r->unannounced++;
				t->reboots++;
				t->restarts++;
				continue;
			}
			/* Not rebooted (or not back in time): the
			 * infrastructure failure it was. */
			if (rc == ATEX_EEXISTS && r->fx->boot_id && *note) {
				char *more = atex_sprintf(
					"%s; reconnected, the system did not "
					"reboot",
					*note);

				if (more) {
					free(*note);
					*note = more;
				}
			}
			return end;
		}
		if (end == START_EXITED) {
			rc = restart(r, t, k, output_fd);
			if (rc == ATEX_ECANCELED)
				return START_CANCELED;
			if (rc == 1)
				continue;
		}
		if (end != START_DISCONNECT)
			return end;
		atex_log(ATEX_LOG_INFO, FMF_COMPONENT,
			 "%s: %s: rebooting (%d), reconnecting",
			 fmf_conn_name(r->fx), t->name, t->reboots + 1);
		/* Python ATEX reconnects and starts the test again at once,
		 * without waiting for a new boot. */
		rc = can_reboot && !r->fx->compat ? await_boot(r, true)
						  : reconnect(r);
		if (rc == ATEX_ECANCELED)
			return START_CANCELED;
		if (rc) {
			*note = atex_sprintf("%s did not come back after a "
					     "reboot before the test's "
					     "duration ran out",
					     fmf_conn_name(r->fx));
			return START_INFRA;
		}
		/* tmt raises both after its reboot. */
		t->reboots++;
		t->restarts++;
	}
}

/* The outcome's note, saying when the system rebooted without
 * tmt-reboot: a new string, or NULL for none. */
static char *outcome_note(const struct run *r, const char *note)
{
	static const char unannounced[] = "the system rebooted without "
					  "tmt-reboot";

	if (!r->unannounced)
		return note ? atex_strdup(note) : NULL;
	if (!note)
		return atex_strdup(unannounced);
	return atex_sprintf("%s (%s)", note, unannounced);
}

/* `text` without the artifacts directory `dir` in front of the paths it
 * names: a note says "files/a", never where the artifacts are while the
 * test runs (`atex run` keeps them in a temporary directory). */
static char *without_dir(const char *text, const char *dir)
{
	struct atex_buf b = ATEX_BUF_INIT;
	size_t n = strlen(dir);
	const char *at;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	while (n && (at = memmem(text, strlen(text), dir, n))) {
		/* "DIR/x" loses "DIR/"; anything else stays as it is. */
		size_t keep = at[n] == '/' ? (size_t)(at - text)
					   : (size_t)(at - text) + n;

		if (atex_buf_put(&b, text, keep) < 0)
			goto oom;
		text = at + n + (at[n] == '/');
	}
	if (atex_buf_puts(&b, text) < 0)
		goto oom;
	return atex_buf_detach(&b);
oom:
	atex_buf_free(&b);
	return NULL;
}

/* A channel fault as the exception Python ATEX raises for it. */
static char *compat_channel_note(const char *m)
{
	static const char *const report[] = {
		"result:",
		"invalid JSON in result",
		"'testout'",
		"'result':",
	};

	if (!m)
		m = "test control channel error";
	if (!strncmp(m, "the stream ended inside", 23))
		return atex_strdup("BadControlError(EOF when reading data)");
	for (size_t i = 0; i < sizeof(report) / sizeof(report[0]); i++)
		if (!strncmp(m, report[i], strlen(report[i])))
			return atex_sprintf("BadReportJSONError(%s)", m);
	return atex_sprintf("BadControlError(%s)", m);
}

/* How the test ended, as the exception Python ATEX raises: a new
 * "Class(message)", or NULL for a test that ended by itself. */
static char *compat_note(enum start_end end, const char *note,
			 const struct run *r)
{
	switch (end) {
	case START_EXITED:
	case START_NO_PACKAGES:
		return NULL;
	case START_TIMED_OUT:
		return atex_strdup(
			"TestAbortedError(test duration timeout reached)");
	case START_CANCELED:
		return atex_strdup("TestAbortedError(cancel requested)");
	case START_CHANNEL_ERROR:
		return compat_channel_note(note);
	case START_DISCONNECT:
	case START_INFRA:
		break;
	}
	if (r->lost && r->wrapper_code == 0)
		return atex_strdup("TestAbortedError(exitcode not reported, "
				   "wrapper bug?)");
	if (r->lost && r->wrapper_code > 0)
		return atex_sprintf(
			"TestAbortedError(test wrapper unexpectedly "
			"exited with %d and disconnect was not "
			"sent via test control)",
			r->wrapper_code);
	return atex_sprintf("TestAbortedError(%s)",
			    note ? note : "infrastructure failure");
}

static const struct {
	enum atex_test_end end;
	int rc;
	const char *note;
} start_outcomes[] = {
	[START_EXITED] = {ATEX_TEST_EXITED, 0, NULL},
	[START_DISCONNECT] = {ATEX_TEST_INFRA, ATEX_EINFRA, NULL},
	[START_TIMED_OUT] = {ATEX_TEST_TIMED_OUT, ATEX_ETIMEDOUT,
			     "the test did not end within its duration and "
			     "was killed"},
	[START_CANCELED] = {ATEX_TEST_CANCELED, ATEX_ECANCELED,
			    "the run was canceled"},
	[START_CHANNEL_ERROR] = {ATEX_TEST_CHANNEL_ERROR, ATEX_EFORMAT, NULL},
	[START_INFRA] = {ATEX_TEST_INFRA, ATEX_EINFRA,
			 "infrastructure failure"},
	/* The wrapper's "infra" result says which packages, and why. */
	[START_NO_PACKAGES] = {ATEX_TEST_EXITED, 0, NULL},
};

static int fmf_run_test(atex_executor *e, const char *name,
			const char *artifacts, const char *const *env,
			int *exit_code)
{
	struct fmf_executor *fx = to_fmf(e);
	struct run r = {.fx = fx,
			.test_name = name,
			.exitcode = -1,
			.wrapper_code = -1};
	struct test_start t = {.name = name, .run_env = env};
	struct atex_test_outcome outcome = {0};
	struct restart_keys keys;
	char *tree = NULL, *dir = NULL, *note = NULL, *data_dir = NULL;
	char *full_note = NULL, *checks_note = NULL;
	enum start_end end;
	enum atex_result_interpret how;
	double seconds = 0;
	long i;
	int output_fd = -1, rc;

	if (!fx->started)
		return atex_error_set(ATEX_EINVAL,
				      "%s: run_test: executor not "
				      "started",
				      fmf_conn_name(fx));
	if (atex_cancel_fired(fx->cancel))
		return atex_error_set(ATEX_ECANCELED, "%s: %s: canceled",
				      fmf_conn_name(fx), name);
	i = atex_fmf_discovery_find(fx->disc, name);
	if (i < 0)
		return atex_error_set(ATEX_ENOTFOUND, "no test named '%s'",
				      name);
	/* Our own reference: a program may replace the test's data while
	 * we run (atex_fmf_discovery_set_test_data). */
	t.data = atex_fmf_discovery_test_data_ref(fx->disc, (size_t)i);
	if (!t.data)
		return ATEX_ENOMEM;
	rc = test_paths(&tree, &dir, fx, (size_t)i);
	rc = rc ? rc : atex_reporter_new(&r.rep, artifacts);
	if (!rc) {
		atex_reporter_set_memory_limit(r.rep, fx->memory_limit);
		atex_reporter_set_compat_python_atex(r.rep, fx->compat);
	}
	rc = rc ? rc : open_output(&output_fd, fx, r.rep);
	if (rc)
		goto out;
	t.libs = json_object_get(fx->stage->libs, name);
	if (test_libraries(t.libs)) {
		/* As for a package that cannot be installed: the test's
		 * requirement failed, not the system (run_test returns 0, an
		 * orchestrator keeps the system). */
		struct atex_test_outcome bad = {.end = ATEX_TEST_CHANNEL_ERROR,
						.exit_code = -1};

		note = atex_strdup(atex_error_last());
		bad.note = note ? note : "a library could not be fetched";
		rc = atex_reporter_finish(r.rep, &bad);
		goto out;
	}
	if (test_script_check(t.data, name) ||
	    test_framework(&t.beakerlib, fx, t.data, name) ||
	    test_duration(&seconds, t.data, name) ||
	    test_result_key(&how, t.data, name) ||
	    restart_keys(&keys, t.data, name) ||
	    fmf_checks_parse(&t.checks, t.data, name)) {
		/* The test's own metadata is wrong: an "error" result that
		 * says so, as for a test that breaks the protocol. */
		struct atex_test_outcome bad = {.end = ATEX_TEST_CHANNEL_ERROR,
						.exit_code = -1,
						.note = atex_error_last()};

		note = atex_strdup(atex_error_last());
		bad.note = note ? note : "invalid duration";
		rc = atex_reporter_finish(r.rep, &bad);
		if (!rc)
			rc = atex_error_set(ATEX_EFORMAT, "%s", bad.note);
		goto out;
	}
	atex_reporter_set_interpret(r.rep, how);
	t.restart_max = keys.max;
	t.restart_refused = keys.reboot &&
			    (atex_connection_is_local(fx->conn) ||
			     !atex_connection_can_reboot(fx->conn));
	r.checks_seen = json_object();
	if (!r.checks_seen) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	r.checks = t.checks;
	t.tree = tree;
	t.test_dir = dir;
	t.no_exitcode = debug_switch(fx, "ATEX_DEBUG_NO_EXITCODE");
	t.no_bg_kill = debug_switch(fx, "ATEX_DEBUG_NO_BG_KILL");
	/* TMT_TEST_DATA: one per run (its starts after reboots share it),
	 * so what a process the last test left running still writes
	 * never reaches the next test's files. */
	data_dir = atex_sprintf("%s/data/%lu", fx->workdir, ++fx->runs);
	if (!data_dir) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	t.data_dir = data_dir;
	atex_debug(FMF_COMPONENT, "%s: %s: starting (duration %.0f s)",
		   fmf_conn_name(fx), name, seconds);
	/* Read afresh (the system may have rebooted after the last test's
	 * exit code), and before the clock starts: not on the test's time. */
	free(fx->boot_id);
	fx->boot_id = NULL;
	boot_id_known(fx);
	r.deadline = atex_monotonic_ms() + seconds * 1000;
	end = run_starts(&r, &t, &keys, output_fd, &note);
	if (note) {
		char *shorter = without_dir(note, artifacts);

		if (shorter) {
			free(note);
			note = shorter;
		}
	}
	outcome.end = start_outcomes[end].end;
	outcome.exit_code = r.exitcode;
	rc = fmf_checks_verdict(&outcome.checks_status, &checks_note, t.checks,
				r.checks_seen);
	if (rc)
		goto out;
	/* A restart that could not happen (over restart-max-count, no
	 * reboot): as in tmt, a failed check of the test's own result,
	 * whoever made it (the exit code, a BeakerLib journal): an error,
	 * the exit code kept. */
	if (end == START_EXITED && r.restart_error) {
		char *both = checks_note ? atex_sprintf("%s; %s", checks_note,
							r.restart_error)
					 : atex_strdup(r.restart_error);

		if (!both) {
			rc = ATEX_ENOMEM;
			goto out;
		}
		free(checks_note);
		checks_note = both;
		outcome.checks_status = "error";
	}
	outcome.checks_note = checks_note;
	full_note = fx->compat
			    ? compat_note(end, note, &r)
			    : outcome_note(&r, note ? note
						    : start_outcomes[end].note);
	outcome.note = full_note ? full_note
		       : note	 ? note
				 : start_outcomes[end].note;
	rc = atex_reporter_finish(r.rep, &outcome);
	if (rc)
		goto out;
	rc = start_outcomes[end].rc;
	if (rc)
		atex_error_set(rc, "%s: %s: %s", fmf_conn_name(fx), name,
			       outcome.note);
	if (exit_code && end == START_EXITED)
		*exit_code = r.exitcode;
	/* Python ATEX's BeakerlibExecutor: a BeakerLib test exits 0 whatever
	 * its asserts said, so its results decide (any fail, warn, error:
	 * 1), which is what its orchestrator's hooks look at. */
	if (exit_code && end == START_EXITED && fx->compat && t.beakerlib &&
	    atex_reporter_failing(r.rep))
		*exit_code = 1;
out:
	if (output_fd >= 0)
		close(output_fd);
	atex_reporter_free(r.rep);
	json_decref(t.data);
	free((char *)t.meta);
	free(data_dir);
	free(note);
	free(full_note);
	free(r.restart_error);
	free(checks_note);
	json_decref(r.checks_seen);
	json_decref(t.checks);
	free(tree);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------------------
 * Life cycle.
 */

static void fmf_cancel(atex_executor *e)
{
	atex_cancel_fire(to_fmf(e)->cancel);
}

static void fmf_free(atex_executor *e)
{
	struct fmf_executor *fx = to_fmf(e);

	if (!fx)
		return;
	if (fx->started || fx->own_stage)
		fmf_stop(e);
	atex_vec_free_all(&fx->env, free);
	free(fx->boot_id);
	atex_cancel_free(fx->cancel);
	free(fx->remote_tmp);
	free(fx);
}

static const struct atex_executor_ops fmf_ops = {
	.version = ATEX_EXECUTOR_OPS_VERSION,
	.start = fmf_start,
	.run_test = fmf_run_test,
	.cancel = fmf_cancel,
	.stop = fmf_stop,
	.free = fmf_free,
};

int atex_fmf_executor_new(atex_executor **out,
			  const struct atex_fmf_executor_options *opts)
{
	const char *framework;
	struct fmf_executor *fx;
	int rc;

	*out = NULL;
	if (!opts || opts->version < 1 ||
	    opts->version > ATEX_FMF_EXECUTOR_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "fmf executor: options missing or of "
				      "another version");
	if (!opts->connection || !opts->discovery)
		return atex_error_set(ATEX_EINVAL,
				      "fmf executor: no connection or "
				      "discovery");
	framework = opts->version >= 5 ? opts->framework : NULL;
	if (framework && strcmp(framework, "shell") &&
	    strcmp(framework, "beakerlib"))
		return atex_error_set(ATEX_EINVAL,
				      "fmf executor: framework '%s' is not "
				      "supported (shell or beakerlib)",
				      framework);
	fx = atex_calloc(1, sizeof(*fx));
	if (!fx)
		return ATEX_ENOMEM;
	fx->base.ops = &fmf_ops;
	fx->conn = opts->connection;
	fx->disc = opts->discovery;
	fx->json_limit = opts->json_limit;
	/* Version 1 callers' structs end before `stage`. */
	fx->stage = opts->version >= 2 ? opts->stage : NULL;
	fx->memory_limit = opts->version >= 3 ? opts->memory_limit : 0;
	fx->compat = opts->version >= 4 && opts->compat_python_atex;
	fx->beakerlib = framework && !strcmp(framework, "beakerlib");
	fx->remote_tmp = atex_strdup(opts->remote_tmp ? opts->remote_tmp
						      : FMF_REMOTE_TMP);
	rc = fx->remote_tmp ? atex_cancel_new(&fx->cancel) : ATEX_ENOMEM;
	rc = rc ? rc : atex_vec_push_copies(&fx->env, opts->env);
	/* NULL-terminated, for put_env_list. */
	rc = rc ? rc : atex_vec_push(&fx->env, NULL);
	if (rc) {
		fmf_free(&fx->base);
		return rc;
	}
	*out = &fx->base;
	return 0;
}
