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
 * copy_from is the same stream the other way: one `podman exec` of a
 * small script that writes a type byte (D: a tree, F: a file, N: nothing
 * there) and then the tar stream, read here by a local `tar -xf -`; one
 * exec instead of a stat then a copy. A file goes through a temporary
 * directory next to dst and is renamed over it, so dst is replaced whole.
 *
 * Containers that reboot (can_reboot: systemd as init with
 * --restart=always): `systemctl reboot` inside makes the container exit
 * and podman start it again, so connect waits (`podman wait
 * --condition=running`, then a `podman exec` that works, then, when PID 1
 * is systemd, until `systemctl is-system-running` settles) before it
 * returns. Between the reboot request and the exit the old boot still
 * answers, so a reboot is confirmed by boot_id, the container's start
 * time: the kernel's boot_id in /proc is the host's in a container.
 *
 * Limitation: killing the podman client (atex_process_kill) does not
 * reach the command inside the container, podman exec does not forward
 * signals; the command ends with the container (release, abort).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atex/connection.h"
#include "connection/copy.h"
#include "connection/remote.h"
#include "util/process.h"
#include "util/util.h"

/* `podman container inspect` answers at once; a hung podman must not
 * hang connect when the caller gave no limit. */
#define INSPECT_TIMEOUT_MS 60000

/* Unpacks stdin into $1, creating it. */
#define RECEIVE_SCRIPT                                                         \
	"mkdir -p \"$1\" && tar --no-same-owner -p -C \"$1\" -xf -"

/* Sends $1 (a tree or a file) as a type byte and a tar stream; see the
 * top of the file. A file's top-level symlink is followed (tar -h on the
 * one name), as a directory's is by `-C`; a dangling one is nothing. */
#define SEND_SCRIPT                                                            \
	"if [ -d \"$1\" ]; then printf D; exec tar -C \"$1\" -cf - .; "        \
	"elif [ -e \"$1\" ]; then printf F; "                                  \
	"cd \"$(dirname \"$1\")\" && exec tar -chf - \"$(basename \"$1\")\"; " \
	"else printf N; fi"

/* Unpacks a tree stream into $1 here (made by atex_copy_from_prepare). */
#define RECEIVE_TREE_SCRIPT "tar --no-same-owner -p -C \"$1\" -xf -"

/* Unpacks a one-file stream here: into a new directory in $1 (dst's
 * parent), then renamed over $2; $3 is the file's name in the stream. */
#define RECEIVE_FILE_SCRIPT                                                    \
	"t=$(mktemp -d \"$1/.atex-copy.XXXXXX\") && "                          \
	"{ tar --no-same-owner -p -C \"$t\" -xf - && "                         \
	"mv -f -T \"$t/$3\" \"$2\"; r=$?; rm -rf \"$t\"; exit $r; }"

/*
 * Waits until systemd, when it is PID 1, has finished starting: prints
 * running or degraded and exits 0, or prints another final state and
 * exits 2. Right after a (re)start PID 1 may still be the runtime's init
 * (runc's binary, from a memfd) about to exec the container's command, so
 * the script first waits for that exec; then PID 1's program says whether
 * it is systemd (`/proc/1/exe`, not its name: /sbin/init is a link).
 * "offline" (no bus yet), "initializing" and "starting" are not final;
 * "stopping" is a reboot under way, and so is a PID 1 that is
 * systemd-shutdown (the last stage, which may wait long for processes
 * that are not its children, as `podman exec` ones are): the exec dies
 * with the old container and connect starts over. Without --wait (systemd <
 * 240) the first call prints nothing and the loop polls. Not systemd: exits 0
 * printing nothing.
 */
#define SETTLE_SCRIPT                                                          \
	"while e=$(readlink /proc/1/exe 2>/dev/null); "                        \
	"case $e in ''|*runc*|*memfd:*) true;; *) false;; esac; "              \
	"do sleep 0.1; done; "                                                 \
	"case $e in */systemd) ;; */systemd-shutdown) "                        \
	"while :; do sleep 1; done;; *) exit 0;; esac; "                       \
	"while :; do "                                                         \
	"s=$(systemctl is-system-running --wait 2>/dev/null) || [ -n \"$s\" "  \
	"] "                                                                   \
	"|| s=$(systemctl is-system-running 2>/dev/null); "                    \
	"case $s in running|degraded) echo \"$s\"; exit 0;; "                  \
	"''|offline|initializing|starting|stopping) sleep 0.2;; "              \
	"*) echo \"$s\"; exit 2;; esac; done"

/* A pause between tries while a container restarts: short, its restart
 * takes ~1.5 s. */
#define RESTART_PAUSE_MS 200

/* Error output of tar kept for messages, at most. */
#define ERR_MAX 2048

struct podman_connection {
	struct atex_connection base;
	char *container;
	char *program;
	struct atex_vec args; /* global podman args, owned strings */
	char *name;	      /* "podman:CONTAINER" */
	bool can_reboot;
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

/* Runs `podman CMD... CONTAINER` here and captures its output; the
 * commands used (inspect, wait) answer at once or wait for a state. */
static int run_local(struct atex_run_result *res, struct podman_connection *pc,
		     const char *const *cmd, int timeout_ms,
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
		rc = argv_add_list(&argv, cmd);
	if (rc == 0)
		rc = argv_add(&argv, pc->container);
	av = argv_finish(&argv, &rc);
	if (rc < 0)
		goto out;
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

/* `podman container inspect -f FORMAT`: its output, chomped, in *out
 * (the caller frees). A container that does not exist (removed) is
 * ATEX_EIO, like any channel that is gone. */
static int inspect(char **out, struct podman_connection *pc, const char *format,
		   int timeout_ms, atex_cancel *cancel)
{
	const char *const cmd[] = {"container", "inspect", "-f", format, NULL};
	struct atex_run_result res = {0};
	int rc;

	if (timeout_ms < 0 || timeout_ms > INSPECT_TIMEOUT_MS)
		timeout_ms = INSPECT_TIMEOUT_MS;
	rc = run_local(&res, pc, cmd, timeout_ms, cancel);
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
	*out = res.out;
	res.out = NULL;
out:
	atex_run_result_clear(&res);
	return rc;
}

/* Milliseconds left until `deadline` (< 0: none) for a wait: -1 for no
 * limit, else at least 0. */
static int left_ms(double deadline)
{
	double left;

	if (deadline < 0)
		return -1;
	left = deadline - atex_monotonic_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits, bounded, until the container runs (it may be restarting):
 * `podman wait --condition=running`, which returns at once when it
 * runs and fails at once when the container is gone. */
static int wait_running(struct podman_connection *pc, double deadline,
			atex_cancel *cancel)
{
	const char *const cmd[] = {"wait", "--condition=running", NULL};
	struct atex_run_result res = {0};
	int rc;

	rc = run_local(&res, pc, cmd, left_ms(deadline), cancel);
	if (rc == ATEX_ETIMEDOUT)
		rc = atex_error_set(ATEX_ETIMEDOUT,
				    "%s: the container did not run again in "
				    "time",
				    pc->name);
	else if (rc < 0)
		atex_error_prefix("%s: podman wait", pc->name);
	else if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
		chomp(res.err, res.err_len);
		rc = atex_error_set(ATEX_EIO, "%s: podman wait failed: %s",
				    pc->name, res.err);
	}
	atex_run_result_clear(&res);
	return rc;
}

/* The state systemd is in, for a message; "unknown" when it cannot be
 * read. The caller frees. */
static char *systemd_state(struct podman_connection *pc)
{
	const char *const argv[] = {"systemctl", "is-system-running", NULL};
	struct atex_run_result res = {0};
	char *state;

	if (atex_connection_run(&res, &pc->base, argv, NULL, 0, 5000, NULL) ==
		    0 &&
	    res.out_len > 0) {
		chomp(res.out, res.out_len);
		state = res.out;
		res.out = NULL;
	} else {
		state = atex_strdup("unknown");
	}
	atex_run_result_clear(&res);
	return state;
}

/*
 * One try of a container that may be rebooting: it runs, an exec works,
 * and systemd (if it is PID 1) has settled. Returns 0, 1 (the exec
 * failed: the container went down under us, try again), or an error.
 */
static int settle_once(struct podman_connection *pc, double deadline,
		       atex_cancel *cancel)
{
	const char *const argv[] = {"sh", "-c", SETTLE_SCRIPT, NULL};
	struct atex_run_result res = {0};
	char *state = NULL;
	int rc;

	rc = wait_running(pc, deadline, cancel);
	if (rc < 0)
		return rc;
	rc = atex_connection_run(&res, &pc->base, argv, NULL, 0,
				 left_ms(deadline), cancel);
	if (rc == ATEX_ETIMEDOUT) {
		state = systemd_state(pc);
		rc = atex_error_set(ATEX_ETIMEDOUT,
				    "%s: systemd did not finish starting in "
				    "time (state: %s)",
				    pc->name, state ? state : "unknown");
		goto out;
	}
	if (rc < 0) {
		atex_error_prefix("%s", pc->name);
		goto out;
	}
	chomp(res.out, res.out_len);
	if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0)
		goto out;
	if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 2) {
		rc = atex_error_set(ATEX_EIO,
				    "%s: systemd is \"%s\", not running or "
				    "degraded",
				    pc->name, res.out);
		goto out;
	}
	/* The exec failed: the container stopped (a reboot) or is still
	 * being set up. Kept for the message if it never works. */
	chomp(res.err, res.err_len);
	atex_error_set(ATEX_EIO, "podman exec: exit status %d: %s",
		       WIFEXITED(res.status) ? WEXITSTATUS(res.status) : -1,
		       res.err);
	rc = 1;
out:
	free(state);
	atex_run_result_clear(&res);
	return rc;
}

/* The last try's exec failure, as a timeout. */
static int exec_timeout(struct podman_connection *pc)
{
	char *why = atex_strdup(atex_error_last());
	int rc = atex_error_set(ATEX_ETIMEDOUT, "%s: not up in time: %s",
				pc->name, why ? why : "podman exec failed");

	free(why);
	return rc;
}

/* A container that reboots: tries until it is up, the deadline, or a
 * cancel. */
static int connect_rebooting(struct podman_connection *pc, int timeout_ms,
			     atex_cancel *cancel)
{
	double deadline =
		timeout_ms < 0 ? -1 : atex_monotonic_ms() + timeout_ms;
	int rc, cancel_fd = cancel ? atex_cancel_fd(cancel) : -1;

	for (;;) {
		rc = settle_once(pc, deadline, cancel);
		if (rc <= 0)
			return rc;
		if (deadline >= 0 && left_ms(deadline) == 0)
			return exec_timeout(pc);
		/* A pause that a cancel cuts short (the restart is podman's,
		 * nothing here can be waited on). */
		if (atex_wait_fd(cancel_fd, POLLIN, RESTART_PAUSE_MS, NULL) ==
		    0)
			return atex_error_set(ATEX_ECANCELED, "%s: canceled",
					      pc->name);
	}
}

/* There is no channel to set up: "connected" means the container runs
 * (and, for one that reboots, that it is up again). */
static int podman_connect(atex_connection *c, int timeout_ms,
			  atex_cancel *cancel)
{
	struct podman_connection *pc = to_podman(c);
	char *running = NULL;
	int rc;

	if (pc->can_reboot)
		return connect_rebooting(pc, timeout_ms, cancel);
	rc = inspect(&running, pc, "{{.State.Running}}", timeout_ms, cancel);
	if (rc == 0 && strcmp(running, "true") != 0)
		rc = atex_error_set(ATEX_EIO, "%s: container is not running",
				    pc->name);
	free(running);
	return rc;
}

static bool podman_can_reboot(const atex_connection *c)
{
	return to_podman(c)->can_reboot;
}

/* The container's start time: a restart (a reboot) changes it, while
 * /proc/sys/kernel/random/boot_id is the host's. */
static int podman_boot_id(char **out, atex_connection *c, int timeout_ms,
			  atex_cancel *cancel)
{
	struct podman_connection *pc = to_podman(c);
	char *started = NULL;
	int rc;

	rc = inspect(&started, pc, "{{.State.StartedAt}}", timeout_ms, cancel);
	if (rc == 0 && !*started)
		rc = atex_error_set(ATEX_EIO, "%s: no start time", pc->name);
	if (rc < 0) {
		free(started);
		return rc;
	}
	*out = started;
	return 0;
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
	if (rc == 0 && run_env)
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

/* What podman_spawn runs, without the run id (no kill hook: the caller
 * spawns it). */
static int podman_command_argv(char ***out, atex_connection *c,
			       const struct atex_spawn_options *opts)
{
	struct atex_vec argv = ATEX_VEC_INIT;
	int rc;

	rc = exec_argv(&argv, to_podman(c), opts, NULL);
	if (rc == 0)
		rc = atex_argv_copy(out, (const char *const *)argv.items,
				    argv.len);
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
 * first, since it makes the sender fail too (EPIPE), not the other way.
 * `to_container`: which side runs in the container, for the message. */
static int copy_finish(atex_process *sender, int send_err,
		       atex_process *receiver, int recv_err,
		       const struct podman_connection *pc, bool to_container,
		       atex_cancel *cancel)
{
	const char *here = "local tar", *there = "tar in the container";

	bool send_failed = false, recv_failed = false;
	int rc;

	rc = copy_wait(&send_failed, sender, cancel);
	if (rc == 0)
		rc = copy_wait(&recv_failed, receiver, cancel);
	if (rc < 0)
		return atex_error_prefix("%s: copy", pc->name);
	if (recv_failed)
		return copy_error(pc, to_container ? there : here, recv_err);
	if (send_failed)
		return copy_error(pc, to_container ? here : there, send_err);
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
	rc = copy_finish(sender, send_err, receiver, recv_err, pc, true,
			 cancel);
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

/* The container's side of copy_from: SEND_SCRIPT, its stdout a pipe. */
static int from_sender(atex_process **out, const struct podman_connection *pc,
		       const char *src, int err_fd)
{
	struct atex_vec argv = ATEX_VEC_INIT;
	const char *const *av;
	int rc;

	rc = argv_start(&argv, pc);
	if (rc == 0)
		rc = argv_add_list(&argv, (const char *const[]){"exec", NULL});
	if (rc == 0)
		rc = argv_add(&argv, pc->container);
	if (rc == 0)
		rc = argv_add_list(
			&argv, (const char *const[]){"sh", "-c", SEND_SCRIPT,
						     "sh", src, NULL});
	av = argv_finish(&argv, &rc);
	if (rc == 0)
		rc = atex_process_spawn(out, av, NULL, NULL, ATEX_STDIO_NULL,
					ATEX_STDIO_PIPE, err_fd);
	atex_vec_free(&argv);
	return rc;
}

/* Reads the type byte the sender writes first; 0 at end of file. */
static int read_type(char *type, atex_process *sender,
		     const struct podman_connection *pc, atex_cancel *cancel)
{
	int fd = atex_process_stdout(sender), rc;
	ssize_t n;

	for (;;) {
		rc = atex_wait_fd(fd, POLLIN, -1, cancel);
		if (rc < 0)
			return atex_error_prefix("%s: copy", pc->name);
		n = read(fd, type, 1);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0)
		return atex_error_set(ATEX_EIO, "%s: copy: read: %s", pc->name,
				      strerror(errno));
	if (n == 0)
		*type = 0;
	return 0;
}

/* The local side: tar reads the rest of the sender's stdout. A tree is
 * merged into dst; a file goes to dst's directory and is renamed. */
static int from_receiver(atex_process **out, char type, const char *src,
			 const char *dst, int in_fd, int err_fd)
{
	char *dir = NULL, *slash;
	int rc;

	if (type == 'D') {
		const char *const av[] = {"sh", "-c", RECEIVE_TREE_SCRIPT,
					  "sh", dst,  NULL};

		return atex_process_spawn(out, av, NULL, NULL, in_fd,
					  ATEX_STDIO_NULL, err_fd);
	}
	dir = atex_strdup(dst);
	if (!dir)
		return ATEX_ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	const char *const av[] = {"sh", "-c", RECEIVE_FILE_SCRIPT,     "sh",
				  dir,	dst,  atex_path_basename(src), NULL};
	rc = atex_process_spawn(out, av, NULL, NULL, in_fd, ATEX_STDIO_NULL,
				err_fd);
	free(dir);
	return rc;
}

static int podman_copy_from(atex_connection *c, const char *src,
			    const char *dst, atex_cancel *cancel)
{
	struct podman_connection *pc = to_podman(c);
	atex_process *sender = NULL, *receiver = NULL;
	int send_err = -1, recv_err = -1, in_fd = -1, status;
	char type = 0, err[ERR_MAX];
	int rc;

	if (!src || !*src || !dst || !*dst)
		return atex_error_set(ATEX_EINVAL, "%s: copy without a path",
				      pc->name);
	rc = ATEX_EIO;
	send_err = err_file(pc);
	recv_err = err_file(pc);
	if (send_err < 0 || recv_err < 0)
		goto out;
	rc = from_sender(&sender, pc, src, send_err);
	if (rc < 0) {
		atex_error_prefix("%s: copy", pc->name);
		goto out;
	}
	rc = read_type(&type, sender, pc, cancel);
	if (rc < 0)
		goto out;
	if (type != 'D' && type != 'F') {
		/* Nothing there, or the exec itself failed. */
		rc = atex_process_wait(&status, sender, -1, cancel);
		if (rc < 0) {
			atex_error_prefix("%s: copy", pc->name);
			goto out;
		}
		err_text(err, sizeof(err), send_err);
		if (type == 'N')
			rc = atex_error_set(ATEX_ENOTFOUND,
					    "%s: copy: %s does not exist",
					    pc->name, src);
		else
			rc = atex_error_set(ATEX_EIO,
					    "%s: copy: podman exec failed: %s",
					    pc->name, err);
		goto out;
	}
	rc = atex_copy_from_prepare(pc->name, src, dst, type == 'D');
	if (rc < 0)
		goto out;
	in_fd = atex_process_take_fd(sender, 1);
	rc = from_receiver(&receiver, type, src, dst, in_fd, recv_err);
	/* Only the receiver may hold the pipe now (see copy_to). */
	close(in_fd);
	if (rc < 0) {
		atex_error_prefix("%s: copy", pc->name);
		goto out;
	}
	rc = copy_finish(sender, send_err, receiver, recv_err, pc, false,
			 cancel);
out:
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
	.copy_from = podman_copy_from,
	.can_reboot = podman_can_reboot,
	.boot_id = podman_boot_id,
	.command_argv = podman_command_argv,
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
	pc->can_reboot = opts->version >= 2 && opts->can_reboot;
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
