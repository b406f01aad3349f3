/*
 * exec.c - `atex exec [PROVISIONER OPTIONS] -- COMMAND [ARG...]`: reserve
 * one system, run COMMAND there with this process's stdin, stdout and
 * stderr, give the system back and exit with COMMAND's status (128+N when
 * a signal N killed it), as a shell would.
 *
 * Signals (signals.c): the first SIGINT or SIGTERM fires the cancellation
 * token the main thread waits with, aborts the provisioner and terminates
 * the command; the main thread then releases everything and exits 128+N.
 * A second signal kills the command and exits at once. The library puts
 * the command in its own process group with an empty signal mask, so it
 * neither inherits our mask nor gets the terminal's Ctrl-C behind our
 * back.
 *
 * A terminal on stdin. The command runs in its own process group, which is
 * not the terminal's foreground group: reading the terminal would stop it
 * (SIGTTIN). When our stdin is the terminal and we are in the foreground,
 * a thread reads it for the command and writes what comes into a pipe, the
 * command's stdin; Ctrl-C still reaches only us. (Output needs nothing:
 * a background group may write to a terminal unless TOSTOP is set.)
 *
 * Exit statuses besides COMMAND's own: 2 for usage and setup errors
 * (including a system that could not be provisioned), 127 when COMMAND
 * does not exist and 126 when it cannot be run (not executable), as a
 * shell says (locally; remotely the remote shell says so itself).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atex/atex.h"
#include "cli.h"

#define EXIT_NOT_FOUND	127
#define EXIT_CANNOT_RUN 126
/* How long a command gets to end after SIGTERM before SIGKILL. */
#define TERM_GRACE_MS 2000

/* What the signal thread and the main thread share. */
struct exec_state {
	struct cli_signals signals;
	atex_cancel *cancel;  /* fired on the first signal */
	atomic_int pid;	      /* the command, for the second signal */
	pthread_mutex_t lock; /* guards prov and proc: the signal thread
			       * uses them while the main thread may be
			       * about to free them */
	atex_provisioner *prov;
	atex_process *proc;
};

/* The thread that feeds a terminal's input to the command. */
struct tty_pump {
	pthread_t thread;
	bool running;
	int pipe_fd;	   /* the write end; the thread closes it */
	atex_cancel *stop; /* fired when the command has ended */
};

static const struct option exec_options[] = {
	CLI_PROVISION_LONG_OPTIONS,
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static void exec_usage(FILE *out)
{
	fprintf(out,
		"usage: atex exec PROVISIONER -- COMMAND [ARG...]\n"
		"\n"
		"Reserves one system, runs COMMAND there with this terminal's\n"
		"stdin, stdout and stderr, releases the system and exits with\n"
		"COMMAND's exit status (128+N if signal N killed it).\n"
		"\n%s",
		cli_provision_usage);
}

/* ------------------------------------------------------------------------
 * Signals.
 */

/* The first signal: stop every wait, the provisioner and the command. */
static void interrupt(int sig, void *data)
{
	struct exec_state *st = data;

	(void)sig;
	atex_cancel_fire(st->cancel);
	pthread_mutex_lock(&st->lock);
	if (st->proc)
		atex_process_kill(st->proc, SIGTERM);
	if (st->prov)
		atex_provisioner_abort(st->prov);
	pthread_mutex_unlock(&st->lock);
}

/* The second signal: take the command along before exiting. */
static void insist(int sig, void *data)
{
	struct exec_state *st = data;
	int pid = atomic_load(&st->pid);

	(void)sig;
	if (pid > 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
}

/* ------------------------------------------------------------------------
 * Running.
 */

/* Makes the provisioner visible to the signal thread; false when a
 * signal came first (then it will not abort it, so we must not wait). */
static bool publish(struct exec_state *st, atex_provisioner *prov,
		    atex_process *proc)
{
	bool go_on;

	pthread_mutex_lock(&st->lock);
	st->prov = prov;
	st->proc = proc;
	go_on = !atex_cancel_fired(st->cancel);
	pthread_mutex_unlock(&st->lock);
	/* Cleared with the handle: a reaped pid may be reused. */
	atomic_store(&st->pid, proc ? (int)atex_process_pid(proc) : 0);
	return go_on;
}

/* The exit status a shell would give for a waitpid() status. */
static int exit_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return CLI_FAILED;
}

/* Waits for the command; on a signal, gives it TERM_GRACE_MS to end
 * after the SIGTERM the signal thread sent, then kills it. */
static int wait_command(struct exec_state *st, atex_process *proc)
{
	int status = 0, rc;

	rc = atex_process_wait(&status, proc, -1, st->cancel);
	if (rc == 0)
		return exit_status(status);
	if (rc != ATEX_ECANCELED)
		return cli_fail("exec");
	if (atex_process_wait(&status, proc, TERM_GRACE_MS, NULL) ==
	    ATEX_ETIMEDOUT) {
		atex_process_kill(proc, SIGKILL);
		atex_process_wait(&status, proc, -1, NULL);
	}
	return CLI_FAILED; /* replaced by 128+N by the caller */
}

/* Whether stdin is a terminal whose foreground group is ours. */
static bool stdin_is_our_terminal(void)
{
	return isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
}

/* Copies the terminal's input into the pipe until EOF (Ctrl-D), a closed
 * pipe (the command is not reading any more) or the stop token. */
static void *tty_pump_run(void *arg)
{
	struct tty_pump *t = arg;
	struct pollfd fds[2] = {
		{.fd = STDIN_FILENO, .events = POLLIN},
		{.fd = atex_cancel_fd(t->stop), .events = POLLIN},
	};
	char buf[4096];
	sigset_t pipe_set;

	/* A command that stops reading gives EPIPE here, not the SIGPIPE
	 * that would end atex; a thread's pending signal dies with it. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
	for (;;) {
		ssize_t n, done = 0;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (!fds[0].revents)
			continue;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		while (done < n) {
			ssize_t w = write(t->pipe_fd, buf + done,
					  (size_t)(n - done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			done += w;
		}
	}
out:
	close(t->pipe_fd);
	return NULL;
}

/* Makes the pipe and starts the thread; *in_fd gets the read end (the
 * command's stdin; ours to close). */
static int tty_pump_start(struct tty_pump *t, int *in_fd)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0) {
		cli_error("exec: pipe: %s", strerror(errno));
		return CLI_USAGE;
	}
	if (atex_cancel_new(&t->stop) < 0) {
		close(fds[0]);
		close(fds[1]);
		return cli_fail("exec");
	}
	t->pipe_fd = fds[1];
	if (pthread_create(&t->thread, NULL, tty_pump_run, t) != 0) {
		close(fds[0]);
		close(fds[1]);
		cli_error("exec: cannot start a thread");
		return CLI_USAGE;
	}
	t->running = true;
	*in_fd = fds[0];
	return CLI_OK;
}

static void tty_pump_stop(struct tty_pump *t)
{
	if (t->running) {
		atex_cancel_fire(t->stop);
		pthread_join(t->thread, NULL);
	}
	atex_cancel_free(t->stop);
	t->stop = NULL;
	t->running = false;
}

/* The error, prefixed with the system's name unless it says it already
 * (a podman system's connection has the same name). */
static void fail_on(atex_remote *remote)
{
	const char *name = atex_remote_name(remote);

	cli_fail(strncmp(atex_error_last(), name, strlen(name)) ? name : NULL);
}

static int run_command(struct exec_state *st, atex_remote *remote,
		       char **command)
{
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	struct tty_pump pump = {.pipe_fd = -1};
	atex_process *proc = NULL;
	int in_fd = -1, rc;

	opts.argv = (const char *const *)command;
	/* Our own descriptors, as they are: bytes flow without a copy. */
	opts.stdin_fd = ATEX_STDIO_INHERIT;
	opts.stdout_fd = ATEX_STDIO_INHERIT;
	opts.stderr_fd = ATEX_STDIO_INHERIT;
	if (stdin_is_our_terminal()) {
		rc = tty_pump_start(&pump, &in_fd);
		if (rc != CLI_OK)
			goto out;
		opts.stdin_fd = in_fd;
	}
	rc = atex_connection_spawn(&proc, atex_remote_connection(remote),
				   &opts);
	/* The command has its own copy now. */
	if (in_fd >= 0)
		close(in_fd);
	if (rc == ATEX_ENOTFOUND) {
		fail_on(remote);
		rc = EXIT_NOT_FOUND;
		goto out;
	}
	if (rc < 0) {
		/* The system is there: it is COMMAND that cannot run. */
		fail_on(remote);
		rc = EXIT_CANNOT_RUN;
		goto out;
	}
	publish(st, st->prov, proc);
	rc = wait_command(st, proc);
	publish(st, st->prov, NULL);
out:
	tty_pump_stop(&pump);
	atex_process_free(proc);
	return rc;
}

static int reserve_and_run(struct exec_state *st, atex_provisioner *prov,
			   char **command)
{
	atex_remote *remote = NULL;
	int rc;

	if (!publish(st, prov, NULL))
		return CLI_FAILED;
	rc = cli_provision_reserve(&remote, prov, &st->signals, "exec");
	if (rc != CLI_OK)
		return rc;
	rc = run_command(st, remote, command);
	atex_remote_release(remote);
	return rc;
}

static int exec_run(struct exec_state *st, const struct cli_provision *opts,
		    char **command)
{
	atex_provisioner *prov = NULL;
	int rc;

	rc = cli_provision_build(&prov, opts);
	if (rc != CLI_OK)
		return rc;
	rc = reserve_and_run(st, prov, command);
	publish(st, NULL, NULL);
	if (atex_provisioner_stop(prov) < 0)
		cli_fail("exec");
	atex_provisioner_free(prov);
	return rc;
}

/* ------------------------------------------------------------------------
 * The command line.
 */

static int take_option(void *data, int opt, const char *arg, const char *text)
{
	(void)text;
	return cli_provision_option(data, opt, arg) == 1 ? CLI_OK : CLI_USAGE;
}

/* Returns CLI_OK with *command set, -1 for --help, or CLI_USAGE. */
static int parse_args(struct cli_provision *p, char ***command, int argc,
		      char **argv)
{
	static const struct cli_options opts = {"+h", exec_options, exec_usage,
						take_option};
	int rc = cli_parse_options(&opts, p, argc, argv);

	if (rc != CLI_OK)
		return rc;
	if (optind >= argc) {
		cli_error("exec: no COMMAND given (atex exec PROVISIONER -- "
			  "COMMAND [ARG...])");
		return CLI_USAGE;
	}
	*command = argv + optind;
	return cli_provision_one_system(p, "exec");
}

int cli_exec(int argc, char **argv)
{
	struct exec_state st = {.signals = CLI_SIGNALS_INIT,
				.lock = PTHREAD_MUTEX_INITIALIZER};
	struct cli_provision opts;
	char **command = NULL;
	int rc;

	rc = cli_provision_init(&opts, argc);
	if (rc == CLI_OK)
		rc = parse_args(&opts, &command, argc, argv);
	if (rc != CLI_OK)
		goto out;
	if (atex_cancel_new(&st.cancel) < 0) {
		rc = cli_fail("exec");
		goto out;
	}
	rc = cli_signals_start(&st.signals, "exec", interrupt, insist, &st);
	if (rc == CLI_OK)
		rc = exec_run(&st, &opts, command);
	cli_signals_stop(&st.signals);
	if (cli_signals_received(&st.signals))
		rc = 128 + cli_signals_received(&st.signals);
out:
	atex_cancel_free(st.cancel);
	cli_provision_free(&opts);
	return rc < 0 ? CLI_OK : rc;
}
