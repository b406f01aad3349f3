/*
 * podman.c - a connection into a running podman container.
 *
 * Every command is a local `podman [GLOBAL ARGS] exec -i CONTAINER ARGV...`
 * client process: podman passes stdin, stdout, stderr and the exit code of
 * the command through, so one atex_process handle (a pidfd on the client)
 * serves as for any other connection, and no shell is involved on either
 * side, so arguments need no quoting. The global arguments are the
 * caller's ("--runtime runc" on some machines): nothing about the host is
 * hard-coded here.
 *
 * Trees are copied as a tar stream, `tar -cf -` here piped straight into
 * `tar -xf -` run by podman exec in the container: podman cp would follow
 * podman's own rules for ownership and existing targets, while tar keeps
 * modes and symlinks as they are, streams without a temporary archive, and
 * needs nothing in the container beyond sh and tar.
 *
 * Limitation: killing the podman client (atex_process_kill) does not
 * reach the command inside the container, podman exec does not forward
 * signals; the command ends with the container (release, abort).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atex/connection.h"
#include "connection/remote.h"
#include "util/process.h"
#include "util/util.h"

/* `podman container inspect` answers at once; a hung podman must not
 * hang connect when the caller gave no limit. */
#define INSPECT_TIMEOUT_MS 60000

/* Unpacks stdin into $1, creating it. */
#define RECEIVE_SCRIPT                                                         \
	"mkdir -p \"$1\" && tar --no-same-owner -p -C \"$1\" -xf -"

/* Error output of tar kept for messages, at most. */
#define ERR_MAX 2048

struct podman_connection {
	struct atex_connection base;
	char *container;
	char *program;
	struct atex_vec args; /* global podman args, owned strings */
	char *name;	      /* "podman:CONTAINER" */
};

static struct podman_connection *to_podman(const atex_connection *c)
{
	return (struct podman_connection *)c;
}

/* Starts argv with the podman program and its global args; the strings
 * stay owned by the connection. Returns 0 or ATEX_ENOMEM. */
static int argv_start(struct atex_vec *argv, const struct podman_connection *pc)
{
	size_t i;
	int rc;

	rc = atex_vec_push(argv, pc->program);
	for (i = 0; rc == 0 && i < pc->args.len; i++)
		rc = atex_vec_push(argv, pc->args.items[i]);
	return rc;
}

/* Appends a NULL-terminated list of strings (NULL: nothing). */
static int argv_add_list(struct atex_vec *argv, const char *const *list)
{
	int rc = 0;

	for (; list && *list && rc == 0; list++)
		rc = atex_vec_push(argv, (void *)*list);
	return rc;
}

static int argv_add(struct atex_vec *argv, const char *arg)
{
	return atex_vec_push(argv, (void *)arg);
}

/* Closes argv with its NULL; the result is ready for atex_process_spawn. */
static const char *const *argv_finish(struct atex_vec *argv, int *rc)
{
	if (*rc == 0)
		*rc = atex_vec_push(argv, NULL);
	return *rc == 0 ? (const char *const *)argv->items : NULL;
}

static const char *podman_name(const atex_connection *c)
{
	return to_podman(c)->name;
}

/* Runs `podman inspect` locally and captures its output. */
static int inspect_running(struct atex_run_result *res,
			   struct podman_connection *pc, int timeout_ms,
			   atex_cancel *cancel)
{
	struct atex_vec argv = ATEX_VEC_INIT;
	atex_connection *local = NULL;
	const char *const *av;
	int rc;

	rc = atex_local_connection_new(&local, NULL);
	if (rc < 0)
		goto out;
	rc = argv_start(&argv, pc);
	if (rc == 0)
		rc = argv_add_list(
			&argv, (const char *const[]){"container", "inspect",
						     "-f", "{{.State.Running}}",
						     pc->container, NULL});
	av = argv_finish(&argv, &rc);
	if (rc < 0)
		goto out;
	if (timeout_ms < 0 || timeout_ms > INSPECT_TIMEOUT_MS)
		timeout_ms = INSPECT_TIMEOUT_MS;
	rc = atex_connection_run(res, local, av, NULL, 0, timeout_ms, cancel);
out:
	atex_vec_free(&argv);
	atex_connection_free(local);
	return rc;
}

/* Trailing newlines off, for quoting program output in messages. */
static void chomp(char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
}

/* There is no channel to set up: "connected" means the container runs. */
static int podman_connect(atex_connection *c, int timeout_ms,
			  atex_cancel *cancel)
{
	struct podman_connection *pc = to_podman(c);
	struct atex_run_result res = {0};
	int rc;

	rc = inspect_running(&res, pc, timeout_ms, cancel);
	if (rc < 0) {
		atex_error_prefix("%s: podman container inspect", pc->name);
		goto out;
	}
	chomp(res.out, res.out_len);
	chomp(res.err, res.err_len);
	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
		rc = atex_error_set(ATEX_EIO,
				    "%s: podman container inspect failed: %s",
				    pc->name, res.err);
		goto out;
	}
	if (strcmp(res.out, "true") != 0) {
		rc = atex_error_set(ATEX_EIO, "%s: container is not running",
				    pc->name);
		goto out;
	}
	rc = 0;
out:
	atex_run_result_clear(&res);
	return rc;
}

static int podman_disconnect(atex_connection *c)
{
	(void)c;
	return 0;
}

/* podman exec -i [-w CWD] [-e K=V...] CONTAINER ARGV... */
static int exec_argv(struct atex_vec *argv, const struct podman_connection *pc,
		     const struct atex_spawn_options *opts, const char *run_env)
{
	const char *const *e;
	int rc;

	rc = argv_start(argv, pc);
	if (rc == 0)
		rc = argv_add_list(argv,
				   (const char *const[]){"exec", "-i", NULL});
	/* The run id lets a kill find the command (connection/remote.h). */
	if (rc == 0)
		rc = argv_add_list(argv,
				   (const char *const[]){"-e", run_env, NULL});
	if (rc == 0 && opts->cwd)
		rc = argv_add_list(
			argv, (const char *const[]){"-w", opts->cwd, NULL});
	for (e = opts->env; rc == 0 && e && *e; e++)
		rc = argv_add_list(argv, (const char *const[]){"-e", *e, NULL});
	if (rc == 0)
		rc = argv_add(argv, pc->container);
	if (rc == 0)
		rc = argv_add_list(argv, opts->argv);
	return rc;
}

static int podman_spawn(atex_process **out, atex_connection *c,
			const struct atex_spawn_options *opts)
{
	struct podman_connection *pc = to_podman(c);
	struct atex_vec argv = ATEX_VEC_INIT, kill = ATEX_VEC_INIT;
	char id[ATEX_RUN_ID_SIZE], run_env[64];
	const char *const *av;
	int rc;

	if (!opts || !opts->argv || !opts->argv[0])
		return atex_error_set(ATEX_EINVAL,
				      "%s: spawn without a command", pc->name);
	atex_run_id_new(id);
	snprintf(run_env, sizeof(run_env), ATEX_RUN_ID_VAR "=%s", id);
	rc = exec_argv(&argv, pc, opts, run_env);
	av = argv_finish(&argv, &rc);
	/* How a kill reaches the command: `podman ... exec CONTAINER`. */
	if (rc == 0)
		rc = argv_start(&kill, pc);
	if (rc == 0)
		rc = argv_add_list(&kill, (const char *const[]){
						  "exec", pc->container, NULL});
	if (rc < 0)
		goto out;
	/* podman's own environment stays ours; the command's extra
	 * variables went to -e above. */
	rc = atex_process_spawn(out, av, NULL, NULL, opts->stdin_fd,
				opts->stdout_fd, opts->stderr_fd);
	if (rc < 0) {
		atex_error_prefix("%s", pc->name);
		goto out;
	}
	rc = atex_remote_kill_hook(*out, (const char *const *)kill.items,
				   kill.len, false, id);
	if (rc < 0) {
		atex_process_free(*out);
		*out = NULL;
	}
out:
	atex_vec_free(&kill);
	atex_vec_free(&argv);
	return rc;
}

/* An anonymous file for a child's stderr: unlike a pipe it cannot fill up
 * and block the child while we wait for something else. */
static int err_file(const struct podman_connection *pc)
{
	int fd = memfd_create("atex-podman-stderr", MFD_CLOEXEC);

	if (fd < 0)
		atex_error_set(ATEX_EIO, "%s: memfd_create: %s", pc->name,
			       strerror(errno));
	return fd;
}

/* The start of what a child wrote to its err_file, for a message. */
static void err_text(char *buf, size_t size, int fd)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	if (n < 0)
		n = 0;
	buf[n] = '\0';
	chomp(buf, (size_t)n);
}

/* Waits for one side of the copy to end. Returns 0 with *failed telling
 * whether it failed, or the wait's error (cancel). */
static int copy_wait(bool *failed, atex_process *p, atex_cancel *cancel)
{
	int rc, status;

	rc = atex_process_wait(&status, p, -1, cancel);
	if (rc < 0)
		return rc;
	*failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	return 0;
}

/* Records why the copy failed, quoting the side's stderr. */
static int copy_error(const struct podman_connection *pc, const char *what,
		      int err_fd)
{
	char err[ERR_MAX];

	err_text(err, sizeof(err), err_fd);
	return atex_error_set(ATEX_EIO, "%s: copy: %s failed: %s", pc->name,
			      what, err);
}

/* Both sides end by themselves once one does (end of file or a broken
 * pipe), so both are waited for; the receiver's failure is reported
 * first, since it makes the sender fail too (EPIPE), not the other way. */
static int copy_finish(atex_process *sender, int send_err,
		       atex_process *receiver, int recv_err,
		       const struct podman_connection *pc, atex_cancel *cancel)
{
	bool send_failed = false, recv_failed = false;
	int rc;

	rc = copy_wait(&send_failed, sender, cancel);
	if (rc == 0)
		rc = copy_wait(&recv_failed, receiver, cancel);
	if (rc < 0)
		return atex_error_prefix("%s: copy", pc->name);
	if (recv_failed)
		return copy_error(pc, "tar in the container", recv_err);
	if (send_failed)
		return copy_error(pc, "local tar", send_err);
	return 0;
}

/* The receiving side: the destination is $1 of an inline script, so it is
 * passed as data, never parsed by the shell. --no-same-owner: the files
 * belong to the container's user, as after any copy onto a new system;
 * -p keeps the modes whatever the umask there. */
static int copy_receiver(atex_process **out, const struct podman_connection *pc,
			 const char *dst, int in_fd, int err_fd)
{
	struct atex_vec argv = ATEX_VEC_INIT;
	const char *const *av;
	int rc;

	rc = argv_start(&argv, pc);
	if (rc == 0)
		rc = argv_add_list(&argv,
				   (const char *const[]){"exec", "-i", NULL});
	if (rc == 0)
		rc = argv_add(&argv, pc->container);
	if (rc == 0)
		rc = argv_add_list(
			&argv, (const char *const[]){"sh", "-c", RECEIVE_SCRIPT,
						     "sh", dst, NULL});
	av = argv_finish(&argv, &rc);
	if (rc == 0)
		rc = atex_process_spawn(out, av, NULL, NULL, in_fd,
					ATEX_STDIO_NULL, err_fd);
	atex_vec_free(&argv);
	return rc;
}

static int copy_sender(atex_process **out, const char *src, int out_fd,
		       int err_fd)
{
	const char *const av[] = {"tar", "-C", src, "-cf", "-", ".", NULL};

	return atex_process_spawn(out, av, NULL, NULL, ATEX_STDIO_NULL, out_fd,
				  err_fd);
}

static int podman_copy_to(atex_connection *c, const char *src, const char *dst,
			  atex_cancel *cancel)
{
	struct podman_connection *pc = to_podman(c);
	atex_process *sender = NULL, *receiver = NULL;
	int pipefd[2] = {-1, -1}, send_err = -1, recv_err = -1;
	int rc;

	if (!src || !dst || !*dst)
		return atex_error_set(ATEX_EINVAL, "%s: copy without a path",
				      pc->name);
	if (!atex_path_is_dir(src))
		return atex_error_set(ATEX_ENOTFOUND,
				      "%s: copy: %s is not a directory",
				      pc->name, src);
	rc = ATEX_EIO;
	send_err = err_file(pc);
	recv_err = err_file(pc);
	if (send_err < 0 || recv_err < 0)
		goto out;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		atex_error_set(ATEX_EIO, "%s: pipe: %s", pc->name,
			       strerror(errno));
		goto out;
	}
	rc = copy_receiver(&receiver, pc, dst, pipefd[0], recv_err);
	if (rc == 0)
		rc = copy_sender(&sender, src, pipefd[1], send_err);
	/* Only the children may hold the pipe now, so that the receiver
	 * sees end of file when the sender is done (or dies). */
	close(pipefd[0]);
	close(pipefd[1]);
	if (rc < 0) {
		atex_error_prefix("%s: copy", pc->name);
		goto out;
	}
	rc = copy_finish(sender, send_err, receiver, recv_err, pc, cancel);
out:
	/* On failure, free kills whichever side still runs. */
	atex_process_free(sender);
	atex_process_free(receiver);
	if (send_err >= 0)
		close(send_err);
	if (recv_err >= 0)
		close(recv_err);
	return rc;
}

static void podman_free(atex_connection *c)
{
	struct podman_connection *pc = to_podman(c);

	if (!pc)
		return;
	atex_vec_free_all(&pc->args, free);
	free(pc->container);
	free(pc->program);
	free(pc->name);
	free(pc);
}

static const struct atex_connection_ops podman_ops = {
	.version = ATEX_CONNECTION_OPS_VERSION,
	.connect = podman_connect,
	.disconnect = podman_disconnect,
	.spawn = podman_spawn,
	.copy_to = podman_copy_to,
	.name = podman_name,
	.free = podman_free,
};

int atex_podman_connection_new(atex_connection **out,
			       const struct atex_podman_options *opts)
{
	struct podman_connection *pc;

	if (!out || !opts || !opts->container || !*opts->container)
		return atex_error_set(ATEX_EINVAL,
				      "podman connection: no container given");
	if (opts->version < 1 || opts->version > ATEX_PODMAN_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "podman connection %s: options version "
				      "%u unknown",
				      opts->container, opts->version);
	/* podman exec would take it for an option. */
	if (opts->container[0] == '-')
		return atex_error_set(ATEX_EINVAL,
				      "podman connection: invalid container "
				      "\"%s\" (starts with '-')",
				      opts->container);
	pc = atex_calloc(1, sizeof(*pc));
	if (!pc)
		return ATEX_ENOMEM;
	pc->base.ops = &podman_ops;
	pc->container = atex_strdup(opts->container);
	pc->program = atex_strdup(opts->podman_program ? opts->podman_program
						       : "podman");
	pc->name = atex_sprintf("podman:%s", opts->container);
	if (!pc->container || !pc->program || !pc->name)
		goto fail;
	if (atex_vec_push_copies(&pc->args, opts->podman_args) < 0)
		goto fail;
	*out = &pc->base;
	return 0;
fail:
	podman_free(&pc->base);
	return atex_error_oom();
}
