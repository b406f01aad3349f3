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
 * TMT_REBOOT_COUNT raised.
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
#include "executor/control.h"
#include "executor/remote_files.h"
#include "executor/reporter.h"
#include "executor/stage.h"
#include "util/process.h"
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
#define FMF_RECONNECT_TRY_MS 30000
#define FMF_RECONNECT_PAUSE_MS 1000
/* Setup commands (mkdir, rm) and finish steps. */
#define FMF_COMMAND_MS (10 * 60 * 1000)
#define FMF_READ_CHUNK 65536
/* "exitcode 255\n": what the end of the stream holds back. */
#define FMF_TAIL_MAX 13
/* How long held-back bytes wait for more before they are fed. */
#define FMF_TAIL_MS 200

struct fmf_executor {
	struct atex_executor base;
	atex_connection *conn;
	atex_fmf_discovery *disc;
	struct atex_vec env; /* char *, owned */
	size_t json_limit;
	char *remote_tmp;
	atex_cancel *cancel;

	bool started;
	char *stage;	     /* local staging directory */
	char *workdir;	     /* on the system */
	struct atex_vec roots; /* char *, the local roots; index = tree-N */
	unsigned long starts;  /* test starts, for metadata file names */
};

static struct fmf_executor *to_fmf(atex_executor *e)
{
	return (struct fmf_executor *)e;
}

static const char *conn_name(const struct fmf_executor *fx)
{
	return atex_connection_name(fx->conn);
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
	for (size_t i = 0; i < fx->roots.len; i++)
		if (!strcmp(fx->roots.items[i], root))
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
		return atex_error_prefix("%s: %s", conn_name(fx), what);
	rc = atex_process_communicate(&status, p, NULL, 0, &out, &out,
				      FMF_COMMAND_MS, cancel);
	atex_process_free(p);
	if (rc) {
		atex_error_prefix("%s: %s", conn_name(fx), what);
		goto out;
	}
	len = out.len;
	tail = atex_buf_cstr(&out);
	/* The end of the output says why, in a message of bounded size. */
	if (len > 2000)
		tail += len - 2000;
	atex_debug(FMF_COMPONENT, "%s: %s: status %d:\n%s", conn_name(fx),
		   what, status, tail);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = atex_error_set(ATEX_EEXTERNAL,
				    "%s: %s failed (exit status %d)%s%s",
				    conn_name(fx), what,
				    WIFEXITED(status) ? WEXITSTATUS(status)
						      : 128 + WTERMSIG(status),
				    len ? ":\n" : "", tail);
out:
	atex_buf_free(&out);
	return rc;
}

/* Reads the output of a one-line command (mktemp). */
static int remote_capture(char **line, struct fmf_executor *fx,
			  const char *const *argv)
{
	struct atex_run_result r = {0};
	int rc;

	*line = NULL;
	rc = atex_connection_run(&r, fx->conn, argv, NULL, 0, FMF_COMMAND_MS,
				 fx->cancel);
	if (rc) {
		atex_error_prefix("%s", conn_name(fx));
		goto out;
	}
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
		rc = atex_error_set(ATEX_EEXTERNAL, "%s: %s failed: %s",
				    conn_name(fx), argv[0],
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
static int stage_all(struct fmf_executor *fx)
{
	const char *main_root = atex_fmf_discovery_root(fx->disc);
	char *dir = NULL, *bin = NULL, *atex = NULL;
	int rc = 0;

	fx->stage = atex_strdup("/tmp/atex-stage-XXXXXX");
	if (!fx->stage)
		return ATEX_ENOMEM;
	if (!mkdtemp(fx->stage)) {
		rc = atex_error_set(ATEX_EIO, "cannot create %s: %s",
				    fx->stage, strerror(errno));
		free(fx->stage);
		fx->stage = NULL;
		return rc;
	}
	if (main_root && (rc = atex_vec_push_copies(&fx->roots,
						    (const char *[]){main_root,
								     NULL})))
		return rc;
	for (size_t i = 0; i < atex_fmf_discovery_count(fx->disc); i++) {
		const char *root = atex_fmf_discovery_test_root(fx->disc, i);

		if (root_index(fx, root) < 0 &&
		    (rc = atex_vec_push_copies(&fx->roots,
					       (const char *[]){root, NULL})))
			return rc;
	}
	for (size_t i = 0; !rc && i < fx->roots.len; i++) {
		dir = i ? atex_sprintf("%s/tree-%zu", fx->stage, i)
			: atex_sprintf("%s/tree", fx->stage);
		rc = dir ? atex_stage_tree(fx->roots.items[i], dir)
			 : ATEX_ENOMEM;
		free(dir);
	}
	atex = atex_path_join(fx->stage, "atex");
	bin = atex ? atex_path_join(atex, "bin") : NULL;
	if (!rc && (!bin || mkdir(atex, 0755) < 0 || mkdir(bin, 0755) < 0))
		rc = bin ? atex_error_set(ATEX_EIO, "cannot create %s: %s",
					  bin, strerror(errno))
			 : ATEX_ENOMEM;
	for (size_t i = 0; !rc && i < atex_remote_files_count; i++) {
		const struct atex_remote_file *f = &atex_remote_files[i];

		rc = atex_stage_file(f->mode & 0111 ? bin : atex, f->name,
				     f->contents, f->len, f->mode);
	}
	free(atex);
	free(bin);
	return rc;
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
 * environment and the plan-environment file sourced. */
static int run_scripts(struct fmf_executor *fx, const char *step,
		       json_t *scripts, const char *const *env)
{
	static const char runner[] =
		"set -a; . \"$TMT_PLAN_ENVIRONMENT_FILE\"; set +a; "
		"exec bash -e -o pipefail -c \"$1\"";
	char *tree = tree_dir(fx, 0), *what = NULL;
	size_t i;
	json_t *script;
	int rc = tree ? 0 : ATEX_ENOMEM;

	json_array_foreach(scripts, i, script)
	{
		const char *argv[] = {"bash", "--norc", "-c", runner,
				      "atex-prepare", json_string_value(script),
				      NULL};

		if (rc || !argv[5])
			continue;
		what = atex_sprintf("%s script %zu", step, i + 1);
		rc = what ? remote_run(fx, what, argv, env, tree, fx->cancel)
			  : ATEX_ENOMEM;
		free(what);
	}
	free(tree);
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
			rc = atex_vec_push(&argv, (void *)json_string_value(pkg));
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

static int run_prepare(struct fmf_executor *fx)
{
	struct atex_vec env = ATEX_VEC_INIT;
	json_t *steps = atex_fmf_discovery_prepare(fx->disc), *step;
	size_t i;
	int rc = plan_env(&env, fx);

	json_array_foreach(steps, i, step)
	{
		const char *how = json_string_value(json_object_get(step, "how"));

		if (rc || !how)
			continue;
		if (!strcmp(how, "install"))
			rc = run_install(fx, json_object_get(step, "package"));
		else if (!strcmp(how, "shell"))
			rc = run_scripts(fx, "prepare",
					 json_object_get(step, "script"),
					 (const char *const *)env.items);
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
		return atex_error_set(ATEX_EINVAL, "%s: executor already "
						   "started",
				      conn_name(fx));
	rc = atex_connection_connect(fx->conn, FMF_RECONNECT_TRY_MS,
				     fx->cancel);
	if (rc)
		return rc == ATEX_ECANCELED ? rc : ATEX_EINFRA;
	rc = stage_all(fx);
	if (rc)
		goto out;
	tmpl = atex_sprintf("%s/atex-XXXXXX", fx->remote_tmp);
	rc = tmpl ? 0 : ATEX_ENOMEM;
	if (!rc) {
		/* One command: the directory, its plan-environment file and
		 * the metadata folder. */
		const char *argv[] = {"bash", "-c",
				      "d=$(mktemp -d \"$1\") && "
				      "mkdir \"$d/meta\" && "
				      ": >\"$d/plan-env\" && echo \"$d\"",
				      "atex", tmpl, NULL};

		rc = remote_capture(&fx->workdir, fx, argv);
	}
	if (rc)
		goto out;
	atex_debug(FMF_COMPONENT, "%s: work directory %s", conn_name(fx),
		   fx->workdir);
	fx->started = true;
	rc = atex_connection_copy_to(fx->conn, fx->stage, fx->workdir,
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

static int fmf_stop(atex_executor *e)
{
	struct fmf_executor *fx = to_fmf(e);
	struct atex_vec env = ATEX_VEC_INIT;
	json_t *steps, *step;
	size_t i;

	if (!fx->started && !fx->stage)
		return atex_error_set(ATEX_EINVAL, "%s: executor not started",
				      conn_name(fx));
	if (fx->workdir && !atex_cancel_fired(fx->cancel)) {
		steps = atex_fmf_discovery_finish(fx->disc);
		if (plan_env(&env, fx) == 0) {
			json_array_foreach(steps, i, step)
			{
				if (run_scripts(fx, "finish",
						json_object_get(step, "script"),
						(const char *const *)
							env.items))
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
	atex_stage_remove(fx->stage);
	free(fx->stage);
	free(fx->workdir);
	fx->stage = NULL;
	fx->workdir = NULL;
	fx->started = false;
	return 0;
}

/* ------------------------------------------------------------------------
 * run_test: the setup the wrapper reads.
 */

/* A `require`/`recommend` value: a string or a list; only strings are
 * packages (objects are fmf libraries, not handled here). */
static int put_packages(struct atex_buf *b, const char *var, json_t *value)
{
	size_t i;
	json_t *pkg;
	int rc = atex_buf_printf(b, "%s=(", var);

	if (json_is_string(value)) {
		rc |= atex_shell_quote(b, json_string_value(value));
	} else {
		json_array_foreach(value, i, pkg)
		{
			if (!json_is_string(pkg))
				continue;
			rc |= atex_buf_putc(b, ' ');
			rc |= atex_shell_quote(b, json_string_value(pkg));
		}
	}
	return rc | atex_buf_puts(b, ")\n");
}

static int put_var(struct atex_buf *b, const char *name, const char *value)
{
	int rc = atex_buf_printf(b, "%s=", name);

	rc |= atex_shell_quote(b, value);
	return rc | atex_buf_putc(b, '\n');
}

/* Whether `name` can be a shell variable (others would break `export`). */
static bool valid_name(const char *name, size_t len)
{
	if (!len || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}

static int put_export(struct atex_buf *b, const char *name, size_t name_len,
		      const char *value)
{
	int rc;

	if (!valid_name(name, name_len)) {
		atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
			 "environment variable '%.*s': not a valid name, "
			 "left out",
			 (int)name_len, name);
		return 0;
	}
	rc = atex_buf_printf(b, "\texport %.*s=", (int)name_len, name);
	rc |= atex_shell_quote(b, value);
	return rc | atex_buf_putc(b, '\n');
}

/* An fmf `environment` object: strings, numbers and booleans. */
static int put_env_object(struct atex_buf *b, json_t *obj)
{
	const char *key;
	json_t *value;
	char num[64];
	int rc = 0;

	json_object_foreach(obj, key, value)
	{
		const char *s = json_string_value(value);

		if (json_is_integer(value))
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(value));
		else if (json_is_real(value))
			snprintf(num, sizeof(num), "%g", json_real_value(value));
		else if (json_is_boolean(value))
			snprintf(num, sizeof(num), "%s",
				 json_is_true(value) ? "True" : "False");
		if (!s && (json_is_number(value) || json_is_boolean(value)))
			s = num;
		if (s)
			rc |= put_export(b, key, strlen(key), s);
	}
	return rc;
}

/* A "NAME=VALUE" list. */
static int put_env_list(struct atex_buf *b, const char *const *list)
{
	int rc = 0;

	for (; list && *list; list++) {
		const char *eq = strchr(*list, '=');

		if (eq)
			rc |= put_export(b, *list, (size_t)(eq - *list),
					 eq + 1);
	}
	return rc;
}

struct test_start {
	const char *name;
	json_t *data;
	const char *test_dir; /* on the system */
	const char *tree;     /* on the system */
	const char *meta;     /* on the system */
	const char *const *run_env;
	int reboots;
};

static int put_builtins(struct atex_buf *b, const struct fmf_executor *fx,
			const struct test_start *t)
{
	char n[32], fd[16];
	int rc = 0;

	snprintf(n, sizeof(n), "%d", t->reboots);
	snprintf(fd, sizeof(fd), "%d", FMF_CONTROL_FD);
	rc |= put_export(b, "ATEX_TEST_CONTROL", 17, fd);
	rc |= put_export(b, "TMT_TREE", 8, t->tree);
	rc |= atex_buf_printf(b, "\texport TMT_PLAN_ENVIRONMENT_FILE=");
	rc |= atex_shell_quote(b, fx->workdir);
	rc |= atex_buf_puts(b, "/plan-env\n");
	rc |= put_export(b, "TMT_TEST_NAME", 13, t->name);
	rc |= put_export(b, "TMT_TEST_METADATA", 17, t->meta);
	rc |= put_export(b, "TMT_REBOOT_COUNT", 16, n);
	rc |= put_export(b, "TMT_TEST_RESTART_COUNT", 22, n);
	return rc;
}

/* The bash code the wrapper evaluates (remote/wrapper.sh lists what it
 * expects), ended by the sentinel line. */
static int build_setup(struct atex_buf *b, const struct fmf_executor *fx,
		       const struct test_start *t, const char *sentinel)
{
	json_t *script = json_object_get(t->data, "test");
	char *meta = json_dumps(t->data, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc = meta ? 0 : ATEX_ENOMEM;

	rc |= atex_buf_printf(b, "ATEX_FD=%d\n", FMF_CONTROL_FD);
	rc |= atex_buf_puts(b, "ATEX_PLAN_ENV_FILE=");
	rc |= atex_shell_quote(b, fx->workdir);
	rc |= atex_buf_puts(b, "/plan-env\nATEX_BIN=");
	rc |= atex_shell_quote(b, fx->workdir);
	rc |= atex_buf_puts(b, "/atex/bin\n");
	rc |= put_var(b, "ATEX_TEST_DIR", t->test_dir);
	rc |= atex_buf_printf(b, "ATEX_TTY=%d\n",
			      json_is_true(json_object_get(t->data, "tty")));
	rc |= put_var(b, "ATEX_TEST_SCRIPT", json_string_value(script));
	rc |= put_var(b, "ATEX_METADATA_FILE", t->meta);
	rc |= put_var(b, "ATEX_METADATA", meta ? meta : "");
	rc |= put_packages(b, "ATEX_REQUIRE",
			   json_object_get(t->data, "require"));
	rc |= put_packages(b, "ATEX_RECOMMEND",
			   json_object_get(t->data, "recommend"));
	/* Lowest first: plan environment, (the plan-environment file,
	 * sourced by the wrapper), built-ins, test environment, executor
	 * environment, this run's environment. */
	rc |= atex_buf_puts(b, "atex_env_plan() {\n\t:\n");
	rc |= put_env_object(b, atex_fmf_discovery_environment(fx->disc));
	rc |= atex_buf_puts(b, "}\natex_env_test() {\n\t:\n");
	rc |= put_builtins(b, fx, t);
	rc |= put_env_object(b, json_object_get(t->data, "environment"));
	rc |= put_env_list(b, (const char *const *)fx->env.items);
	rc |= put_env_list(b, t->run_env);
	rc |= atex_buf_printf(b, "}\n%s\n", sentinel);
	free(meta);
	return rc ? ATEX_ENOMEM : 0;
}

/* ------------------------------------------------------------------------
 * run_test: the channel and the clock.
 */

/* Saved remaining times (`duration save`) nest at most this deep. */
#define FMF_SAVED_MAX 64

struct run {
	struct fmf_executor *fx;
	atex_reporter *rep;
	double deadline; /* monotonic ms */
	double saved[FMF_SAVED_MAX];
	size_t n_saved;
	int exitcode; /* -1 until `exitcode` */
	bool disconnect;
};

/* The result events go to the reporter. */
static int on_result_begin(void *data, json_t *result)
{
	return atex_reporter_result_begin(((struct run *)data)->rep, result);
}

static int on_file_data(void *data, size_t index, const void *buf,
			size_t len)
{
	return atex_reporter_file_data(((struct run *)data)->rep, index, buf,
				       len);
}

static int on_result_end(void *data)
{
	return atex_reporter_result_end(((struct run *)data)->rep);
}

static int on_exitcode(void *data, int code)
{
	((struct run *)data)->exitcode = code;
	return 0;
}

static int on_duration(void *data, enum atex_control_duration_kind kind,
		       double seconds)
{
	struct run *r = data;
	double now = atex_monotonic_ms();

	switch (kind) {
	case ATEX_CONTROL_DURATION_SET:
		r->deadline = now + seconds * 1000;
		break;
	case ATEX_CONTROL_DURATION_ADD:
		r->deadline += seconds * 1000;
		break;
	case ATEX_CONTROL_DURATION_SUB:
		r->deadline -= seconds * 1000;
		break;
	case ATEX_CONTROL_DURATION_SAVE:
		if (r->n_saved == FMF_SAVED_MAX)
			return atex_error_set(ATEX_EFORMAT,
					      "duration save: more than %d "
					      "saved",
					      FMF_SAVED_MAX);
		r->saved[r->n_saved++] = r->deadline - now;
		break;
	case ATEX_CONTROL_DURATION_RESTORE:
		if (!r->n_saved)
			return atex_error_set(ATEX_EFORMAT,
					      "duration restore without save");
		r->deadline = now + r->saved[--r->n_saved];
		break;
	}
	atex_debug(FMF_COMPONENT, "duration: %.1f s left",
		   (r->deadline - now) / 1000);
	return 0;
}

static int on_disconnect(void *data)
{
	struct run *r = data;

	r->disconnect = true;
	/* What the test's exit code would be belongs to the next boot. */
	r->exitcode = -1;
	return 0;
}

/* How one start of the test ended. */
enum start_end {
	START_EXITED,	  /* exitcode received, the wrapper ended */
	START_DISCONNECT, /* the test asked to reboot */
	START_TIMED_OUT,
	START_CANCELED,
	START_CHANNEL_ERROR,
	START_INFRA,
};

struct start_state {
	atex_process *p;
	atex_control *ctl;
	int in_fd; /* the wrapper's stdin, ours; -1 once closed */
	int out_fd;
	double grace; /* after exitcode: when the channel must have ended */
	bool eof;
	/* The stream's last bytes, held back: they may be the wrapper's
	 * "exitcode N\n", which must not be taken as data the test owed. */
	char tail[FMF_TAIL_MAX];
	size_t tail_len;
	double tail_at;
	char *note;
};

static void close_stdin(struct start_state *s)
{
	if (s->in_fd >= 0)
		close(s->in_fd);
	s->in_fd = -1;
}

/* Stops the test: the wrapper's watcher kills it when its stdin ends;
 * what is still there after FMF_STOP_GRACE_MS is killed (the client, and
 * over ssh and podman every remote process of the run). */
static void stop_test(struct start_state *s)
{
	int status;

	close_stdin(s);
	if (atex_process_wait(&status, s->p, FMF_STOP_GRACE_MS, NULL) == 0)
		return;
	atex_process_kill(s->p, SIGKILL);
	atex_process_wait(&status, s->p, -1, NULL);
}

/* Feeds bytes of the stream, unless the test disconnected. */
static int feed(struct start_state *s, struct run *r, const char *buf,
		size_t n)
{
	bool was_disconnect = r->disconnect;
	int rc;

	if (r->disconnect || n == 0)
		return 0;
	rc = atex_control_feed(s->ctl, buf, n);
	if (!rc && r->disconnect && !was_disconnect) {
		/* Tell the wrapper: it closes the channel under the test
		 * (whose `noop` writes then fail) and stops watching. */
		static const char line[] = "disconnect\n";

		atex_write_all(s->in_fd, line, sizeof(line) - 1, NULL);
	}
	if (!rc && r->exitcode >= 0 && s->grace == 0)
		s->grace = atex_monotonic_ms() + FMF_EXIT_GRACE_MS;
	if (r->exitcode < 0)
		s->grace = 0;
	return rc;
}

static int flush_tail(struct start_state *s, struct run *r)
{
	size_t n = s->tail_len;

	s->tail_len = 0;
	return feed(s, r, s->tail, n);
}

/* Where the held-back bytes end with a line "exitcode N\n" (the
 * wrapper's last words), with N in *code; -1 when they do not. */
static long tail_exitcode(const struct start_state *s, int *code)
{
	static const char word[] = "exitcode ";
	size_t w = sizeof(word) - 1;

	for (size_t k = 0; k + w + 2 <= s->tail_len; k++) {
		size_t i;
		int c = 0;

		if (memcmp(s->tail + k, word, w) ||
		    s->tail[s->tail_len - 1] != '\n')
			continue;
		for (i = k + w; i < s->tail_len - 1; i++) {
			if (s->tail[i] < '0' || s->tail[i] > '9')
				break;
			c = c * 10 + (s->tail[i] - '0');
		}
		if (i == s->tail_len - 1 && i > k + w && c <= 255) {
			*code = c;
			return (long)k;
		}
	}
	return -1;
}

/* Reads what the channel has; feeds it, all but its last FMF_TAIL_MAX
 * bytes (fed when more comes, after FMF_TAIL_MS, or at the end). Returns
 * 0, or the parser's error code. */
static int read_channel(struct start_state *s, struct run *r)
{
	char buf[FMF_TAIL_MAX + FMF_READ_CHUNK];
	ssize_t n;
	size_t total, keep;
	int rc, code;
	long at;

	memcpy(buf, s->tail, s->tail_len);
	n = read(s->out_fd, buf + s->tail_len, FMF_READ_CHUNK);
	if (n < 0) {
		/* A broken stream ends like EOF; the exit code decides. */
		if (errno != EAGAIN && errno != EINTR)
			s->eof = true;
		return 0;
	}
	if (n == 0) {
		s->eof = true;
		if (r->disconnect)
			return 0;
		/* The test ended owing bytes (inside a result's JSON or
		 * files): the wrapper's last line is not part of them. */
		at = tail_exitcode(s, &code);
		if (at >= 0) {
			rc = feed(s, r, s->tail, (size_t)at);
			if (rc)
				return rc;
			if (!atex_control_idle(s->ctl)) {
				r->exitcode = code;
				return atex_control_finish(s->ctl);
			}
			memmove(s->tail, s->tail + at, s->tail_len - (size_t)at);
			s->tail_len -= (size_t)at;
		}
		rc = flush_tail(s, r);
		return rc ? rc : atex_control_finish(s->ctl);
	}
	total = s->tail_len + (size_t)n;
	keep = total < FMF_TAIL_MAX ? total : FMF_TAIL_MAX;
	s->tail_len = 0;
	rc = feed(s, r, buf, total - keep);
	memcpy(s->tail, buf + total - keep, keep);
	s->tail_len = keep;
	s->tail_at = atex_monotonic_ms();
	return rc;
}

/* The channel loop of one start: until EOF (START_EXITED with s->eof),
 * the exit grace running out (START_EXITED without eof), an error, the
 * deadline or a cancel. */
static enum start_end pump(struct start_state *s, struct run *r)
{
	struct pollfd fds[2] = {
		{.fd = s->out_fd, .events = POLLIN},
		{.fd = atex_cancel_fd(r->fx->cancel), .events = POLLIN},
	};

	while (!s->eof) {
		double now = atex_monotonic_ms(), until;
		int rc;

		if (atex_cancel_fired(r->fx->cancel))
			return START_CANCELED;
		/* Once the test has ended, only the grace counts. */
		if (r->exitcode >= 0 && now >= s->grace)
			return START_EXITED;
		if (r->exitcode < 0 && now >= r->deadline)
			return START_TIMED_OUT;
		until = r->exitcode >= 0 ? s->grace : r->deadline;
		if (s->tail_len && s->tail_at + FMF_TAIL_MS < until)
			until = s->tail_at + FMF_TAIL_MS;
		rc = poll(fds, 2, (int)(until - now) + 1);
		if (rc < 0 && errno != EINTR)
			return START_INFRA;
		if (rc == 0 && s->tail_len &&
		    atex_monotonic_ms() >= s->tail_at + FMF_TAIL_MS &&
		    flush_tail(s, r)) {
			s->note = atex_strdup(atex_control_error(s->ctl));
			return START_CHANNEL_ERROR;
		}
		if (rc <= 0 || !fds[0].revents)
			continue;
		if (read_channel(s, r)) {
			s->note = atex_strdup(atex_control_error(s->ctl));
			return START_CHANNEL_ERROR;
		}
	}
	return START_EXITED;
}

/* Why a wrapper that ended with `status` failed the test. The wrapper's
 * own failures (remote/wrapper.sh): 70 it could not set the test up, 71
 * required packages could not be installed. */
static char *wrapper_failure(const struct run *r, const char *name,
			     int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status)
				     : 128 + WTERMSIG(status);

	if (r->exitcode < 0 && code == 71)
		return atex_sprintf("%s: required packages could not be "
				    "installed on %s",
				    name, conn_name(r->fx));
	if (r->exitcode < 0 && code == 70)
		return atex_sprintf("%s: the test wrapper on %s could not set "
				    "the test up (its message is in the "
				    "test's output)",
				    name, conn_name(r->fx));
	if (r->exitcode >= 0)
		return atex_sprintf("%s: the test wrapper on %s exited with "
				    "status %d",
				    name, conn_name(r->fx), code);
	return atex_sprintf("%s: the test ended without an exit code: the "
			    "connection to %s was lost or the system went "
			    "down (disconnect was not sent), wrapper status %d",
			    name, conn_name(r->fx), code);
}

/* After the channel ended: waits for the wrapper and tells how it went. */
static enum start_end wrapper_end(struct start_state *s, struct run *r,
				  const char *name)
{
	double left = r->deadline - atex_monotonic_ms();
	int status = 0, rc;

	/* Rebooting: the wrapper ends with the system (or the connection),
	 * whenever that is within the test's time. */
	rc = atex_process_wait(&status, s->p,
			       r->disconnect ? (left > 0 ? (int)left : 0)
					     : FMF_EXIT_GRACE_MS,
			       r->fx->cancel);
	if (rc == ATEX_ECANCELED)
		return START_CANCELED;
	if (rc) {
		/* Still there: a leftover holds the channel or the system
		 * does not go down. */
		stop_test(s);
		if (r->disconnect)
			return START_TIMED_OUT;
		if (r->exitcode >= 0)
			return START_EXITED;
		s->note = atex_sprintf("the test wrapper on %s did not end",
				       conn_name(r->fx));
		return START_INFRA;
	}
	if (r->disconnect)
		return START_DISCONNECT;
	if (r->exitcode >= 0 && WIFEXITED(status) && !WEXITSTATUS(status))
		return START_EXITED;
	s->note = wrapper_failure(r, name, status);
	return START_INFRA;
}

/* The exit code came, the channel did not end within the grace: a
 * wrapper that ended badly is still an infrastructure failure; one that
 * is still there (a leftover holds the channel) is stopped. */
static enum start_end grace_end(struct start_state *s, struct run *r,
				const char *name)
{
	int status = 0;

	if (atex_process_wait(&status, s->p, 0, NULL) != 0) {
		stop_test(s);
		return START_EXITED;
	}
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return START_EXITED;
	s->note = wrapper_failure(r, name, status);
	return START_INFRA;
}

/* Starts the wrapper with its setup written to its stdin. */
static int start_wrapper(struct start_state *s, struct run *r,
			 const struct test_start *t, int output_fd)
{
	struct fmf_executor *fx = r->fx;
	struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
	struct atex_buf setup = ATEX_BUF_INIT;
	char sentinel[40], *wrapper;
	unsigned long long rnd = 0;
	int rc;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (unsigned long long)atex_monotonic_ms();
	snprintf(sentinel, sizeof(sentinel), "ATEX-END-OF-SETUP-%016llx", rnd);
	wrapper = atex_sprintf("%s/atex/wrapper.sh", fx->workdir);
	rc = wrapper ? build_setup(&setup, fx, t, sentinel) : ATEX_ENOMEM;
	if (rc)
		goto out;
	/* --norc: bash sources ~/.bashrc when its stdin is the ssh
	 * connection, even for a script; the login shell that sshd starts
	 * already did, and on some systems it costs more than the test. */
	o.argv = (const char *const[]){"bash", "--norc", wrapper, "test",
				       sentinel, NULL};
	o.stdin_fd = ATEX_STDIO_PIPE;
	o.stdout_fd = ATEX_STDIO_PIPE;
	o.stderr_fd = output_fd;
	rc = atex_connection_spawn(&s->p, fx->conn, &o);
	if (rc)
		goto out;
	s->in_fd = atex_process_take_fd(s->p, 0);
	s->out_fd = atex_process_stdout(s->p);
	fcntl(s->out_fd, F_SETFL, fcntl(s->out_fd, F_GETFL) | O_NONBLOCK);
	/* A wrapper that dies at once shows as EPIPE here and as a missing
	 * exit code later; that later report is the clearer one. */
	atex_write_all(s->in_fd, atex_buf_cstr(&setup), setup.len, fx->cancel);
out:
	atex_buf_free(&setup);
	free(wrapper);
	return rc;
}

static enum start_end run_start(struct run *r, const struct test_start *t,
				int output_fd, char **note)
{
	const struct atex_control_handler handler = {
		.result_begin = on_result_begin,
		.file_data = on_file_data,
		.result_end = on_result_end,
		.exitcode = on_exitcode,
		.duration = on_duration,
		.disconnect = on_disconnect,
	};
	struct start_state s = {.in_fd = -1, .out_fd = -1};
	enum start_end end;

	r->exitcode = -1;
	r->disconnect = false;
	*note = NULL;
	if (atex_control_new(&s.ctl, &handler, r, r->fx->json_limit))
		return START_INFRA;
	if (start_wrapper(&s, r, t, output_fd)) {
		*note = atex_strdup(atex_error_last());
		atex_control_free(s.ctl);
		return START_INFRA;
	}
	end = pump(&s, r);
	if (end == START_EXITED && s.eof)
		end = wrapper_end(&s, r, t->name);
	else if (end == START_EXITED)
		end = grace_end(&s, r, t->name);
	else
		stop_test(&s);
	close_stdin(&s);
	atex_process_free(s.p);
	atex_control_free(s.ctl);
	*note = s.note;
	return end;
}

/* ------------------------------------------------------------------------
 * run_test: starts, reboots, the outcome.
 */

/* Reconnects after a reboot until the deadline. 0, ATEX_ETIMEDOUT or
 * ATEX_ECANCELED. */
static int reconnect(struct run *r)
{
	struct fmf_executor *fx = r->fx;
	int cancel_fd = atex_cancel_fd(fx->cancel);

	atex_connection_disconnect(fx->conn);
	for (;;) {
		double left = r->deadline - atex_monotonic_ms();
		int rc;

		if (left <= 0)
			return ATEX_ETIMEDOUT;
		rc = atex_connection_connect(
			fx->conn,
			left < FMF_RECONNECT_TRY_MS ? (int)left
						    : FMF_RECONNECT_TRY_MS,
			fx->cancel);
		if (rc == 0 || rc == ATEX_ECANCELED)
			return rc;
		atex_debug(FMF_COMPONENT, "%s: reconnecting: %s",
			   conn_name(fx), atex_error_last());
		/* A pause that a cancel cuts short. */
		if (atex_wait_fd(cancel_fd, POLLIN, FMF_RECONNECT_PAUSE_MS,
				 NULL) == 0)
			return ATEX_ECANCELED;
	}
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
	if (atex_duration_parse(seconds, text) == 0)
		return 0;
	return atex_error_prefix("%s: duration", name);
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

static int open_output(int *fd, const atex_reporter *rep)
{
	const char *path = atex_reporter_output_path(rep);

	*fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (*fd >= 0)
		return 0;
	return atex_error_set(ATEX_EIO, "cannot open %s: %s", path,
			      strerror(errno));
}

/* Runs the starts of the test (more than one when it reboots the system)
 * and says how the last one ended. */
static enum start_end run_starts(struct run *r, struct test_start *t,
				 int output_fd, char **note)
{
	enum start_end end;
	int rc;

	for (;;) {
		free((char *)t->meta);
		t->meta = atex_sprintf("%s/meta/%lu.yaml", r->fx->workdir,
				       ++r->fx->starts);
		if (!t->meta)
			return START_INFRA;
		end = run_start(r, t, output_fd, note);
		if (end != START_DISCONNECT)
			return end;
		atex_log(ATEX_LOG_INFO, FMF_COMPONENT,
			 "%s: %s: rebooting (%d), reconnecting",
			 conn_name(r->fx), t->name, t->reboots + 1);
		rc = reconnect(r);
		if (rc == ATEX_ECANCELED)
			return START_CANCELED;
		if (rc) {
			*note = atex_sprintf("%s did not come back after a "
					     "reboot before the test's "
					     "duration ran out",
					     conn_name(r->fx));
			return START_INFRA;
		}
		t->reboots++;
	}
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
};

static int fmf_run_test(atex_executor *e, const char *name,
			const char *artifacts, const char *const *env,
			int *exit_code)
{
	struct fmf_executor *fx = to_fmf(e);
	struct run r = {.fx = fx, .exitcode = -1};
	struct test_start t = {.name = name, .run_env = env};
	struct atex_test_outcome outcome = {0};
	char *tree = NULL, *dir = NULL, *note = NULL;
	enum start_end end;
	double seconds = 0;
	long i;
	int output_fd = -1, rc;

	if (!fx->started)
		return atex_error_set(ATEX_EINVAL, "%s: run_test: executor not "
						   "started",
				      conn_name(fx));
	if (atex_cancel_fired(fx->cancel))
		return atex_error_set(ATEX_ECANCELED, "%s: %s: canceled",
				      conn_name(fx), name);
	i = atex_fmf_discovery_find(fx->disc, name);
	if (i < 0)
		return atex_error_set(ATEX_ENOTFOUND, "no test named '%s'",
				      name);
	t.data = atex_fmf_discovery_test_data(fx->disc, (size_t)i);
	if (!t.data)
		return ATEX_ENOMEM;
	rc = test_duration(&seconds, t.data, name);
	rc = rc ? rc : test_paths(&tree, &dir, fx, (size_t)i);
	rc = rc ? rc : atex_reporter_new(&r.rep, artifacts);
	rc = rc ? rc : open_output(&output_fd, r.rep);
	if (rc)
		goto out;
	t.tree = tree;
	t.test_dir = dir;
	atex_debug(FMF_COMPONENT, "%s: %s: starting (duration %.0f s)",
		   conn_name(fx), name, seconds);
	r.deadline = atex_monotonic_ms() + seconds * 1000;
	end = run_starts(&r, &t, output_fd, &note);
	outcome.end = start_outcomes[end].end;
	outcome.exit_code = r.exitcode;
	outcome.note = note ? note : start_outcomes[end].note;
	rc = atex_reporter_finish(r.rep, &outcome);
	if (rc)
		goto out;
	rc = start_outcomes[end].rc;
	if (rc)
		atex_error_set(rc, "%s: %s: %s", conn_name(fx), name,
			       outcome.note);
	if (exit_code && end == START_EXITED)
		*exit_code = r.exitcode;
out:
	if (output_fd >= 0)
		close(output_fd);
	atex_reporter_free(r.rep);
	free((char *)t.meta);
	free(note);
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
	if (fx->started || fx->stage)
		fmf_stop(e);
	atex_vec_free_all(&fx->env, free);
	atex_vec_free_all(&fx->roots, free);
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
	struct fmf_executor *fx;
	int rc;

	*out = NULL;
	if (!opts || opts->version != ATEX_FMF_EXECUTOR_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "fmf executor: options missing or of "
				      "another version");
	if (!opts->connection || !opts->discovery)
		return atex_error_set(ATEX_EINVAL,
				      "fmf executor: no connection or "
				      "discovery");
	fx = atex_calloc(1, sizeof(*fx));
	if (!fx)
		return ATEX_ENOMEM;
	fx->base.ops = &fmf_ops;
	fx->conn = opts->connection;
	fx->disc = opts->discovery;
	fx->json_limit = opts->json_limit;
	fx->remote_tmp =
		atex_strdup(opts->remote_tmp ? opts->remote_tmp : "/var/tmp");
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
