/*
 * atex/connection.h - a channel to one system: spawn processes there with
 * full stdio and an exit status, run and capture, copy directory trees.
 *
 * A Connection is an abstract object with an operations table (DESIGN.md):
 * local (this machine), ssh (the OpenSSH client through a private
 * ControlMaster) and podman (`podman exec` into a container) are built in;
 * a program may implement its own by filling in struct
 * atex_connection_ops.
 *
 * Every process a connection spawns is a process on *this* machine (the
 * command itself, or the ssh/podman client running it remotely), so one
 * process handle type serves all connections, and waiting is always a
 * poll() on a pidfd plus a cancellation descriptor.
 *
 * Thread safety: spawn and run may be called from several threads at once
 * on one connection (16 concurrent commands over one ssh master are
 * normal); connect, disconnect and free by the owning thread only. An
 * atex_cancel may be fired from any thread at any time.
 */
#ifndef ATEX_CONNECTION_H
#define ATEX_CONNECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "atex/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Cancellation: one token can cancel any number of waits, from any thread.
 */

typedef struct atex_cancel atex_cancel;

/* Creates a token (an eventfd). Returns 0, ATEX_EIO or ATEX_ENOMEM. */
int atex_cancel_new(atex_cancel **out);

/* Frees a token; NULL is accepted. No wait may still be using it. */
void atex_cancel_free(atex_cancel *cancel);

/* Fires the token: every wait using it returns ATEX_ECANCELED promptly,
 * now and later, until atex_cancel_reset. Async-signal-safe and
 * thread-safe. */
void atex_cancel_fire(atex_cancel *cancel);

/* Whether the token has fired. Thread-safe. */
bool atex_cancel_fired(const atex_cancel *cancel);

/* Re-arms a fired token. Only when no wait is using it. */
void atex_cancel_reset(atex_cancel *cancel);

/* The descriptor that becomes readable when the token fires, for a
 * program's own poll() loop. Owned by the token. */
int atex_cancel_fd(const atex_cancel *cancel);

/* ------------------------------------------------------------------------
 * Processes.
 */

typedef struct atex_process atex_process;

/* How a standard stream of a spawned process is connected: one of these,
 * or a descriptor >= 0 of the caller's (duplicated; the caller keeps it). */
enum atex_stdio {
	ATEX_STDIO_INHERIT = -1, /* this process's own stream */
	ATEX_STDIO_PIPE = -2,    /* a pipe; see atex_process_stdin/out/err */
	ATEX_STDIO_NULL = -3,    /* /dev/null */
};

struct atex_spawn_options {
	unsigned int version;
	/* The command: argv[0] is looked up in PATH on the system. */
	const char *const *argv;
	/* Working directory on the system; NULL: the connection's default. */
	const char *cwd;
	/* Extra environment "NAME=VALUE" for the command, NULL-terminated;
	 * NULL for none. */
	const char *const *env;
	int stdin_fd;  /* enum atex_stdio or a descriptor */
	int stdout_fd;
	int stderr_fd;
};

#define ATEX_SPAWN_OPTIONS_VERSION 1
#define ATEX_SPAWN_OPTIONS_INIT                                              \
	{ATEX_SPAWN_OPTIONS_VERSION, NULL, NULL, NULL, ATEX_STDIO_NULL,      \
	 ATEX_STDIO_INHERIT, ATEX_STDIO_INHERIT}

/*
 * Waits for the process to end, at most `timeout_ms` (-1: no limit), or
 * until `cancel` fires (NULL: never). On 0, *status holds the exit status
 * as waitpid() reports it (WIFEXITED...); the process is reaped.
 * Returns 0, ATEX_ETIMEDOUT (still running), ATEX_ECANCELED, ATEX_EIO.
 * Thread-safe against atex_process_kill.
 */
int atex_process_wait(int *status, atex_process *p, int timeout_ms,
		      atex_cancel *cancel);

/* Sends `signal` to the process (and for ssh/podman clients that is what
 * ends the remote command's channel). Returns 0 or ATEX_EIO. Any thread. */
int atex_process_kill(atex_process *p, int signal);

/* The parent's ends of ATEX_STDIO_PIPE streams, or -1. Owned by the
 * process handle until taken with atex_process_take_fd (then the caller
 * closes it). */
int atex_process_stdin(const atex_process *p);
int atex_process_stdout(const atex_process *p);
int atex_process_stderr(const atex_process *p);
int atex_process_take_fd(atex_process *p, int which); /* 0, 1 or 2 */

/* The local process id (of the command, or of the ssh/podman client). */
pid_t atex_process_pid(const atex_process *p);

/* Frees the handle: a process still running is killed (SIGKILL) and
 * reaped first; pipes are closed. NULL is accepted. */
void atex_process_free(atex_process *p);

/* ------------------------------------------------------------------------
 * Connections.
 */

typedef struct atex_connection atex_connection;

struct atex_connection_ops {
	unsigned int version;
	/* Establishes the channel (ssh: starts the master). Idempotent. */
	int (*connect)(atex_connection *c, int timeout_ms, atex_cancel *cancel);
	/* Closes the channel (ssh: stops the master); processes already
	 * spawned may die. Safe on a dead or never-connected channel. */
	int (*disconnect)(atex_connection *c);
	/* Starts a command (see atex_connection_spawn). */
	int (*spawn)(atex_process **out, atex_connection *c,
		     const struct atex_spawn_options *opts);
	/* Copies the local directory tree `src` to `dst` on the system
	 * (created if needed; contents merged), keeping modes and symlinks. */
	int (*copy_to)(atex_connection *c, const char *src, const char *dst,
		       atex_cancel *cancel);
	/* A human name for messages ("root@10.0.0.5:22", "local"). */
	const char *(*name)(const atex_connection *c);
	/* Disconnects and frees. */
	void (*free)(atex_connection *c);
	/* (Version 2; a version 1 table lacks these, and the generic calls
	 * then do what their comments below say.) */
	/* Copies the file or directory tree `src` on the system to the local
	 * path `dst` (a tree is created or merged, a file replaced), keeping
	 * modes and symlinks. NULL: copy_from is not supported. */
	int (*copy_from)(atex_connection *c, const char *src, const char *dst,
			 atex_cancel *cancel);
	/* Whether the system can reboot and this connection survives it
	 * (reconnects to the same system). NULL: false. */
	bool (*can_reboot)(const atex_connection *c);
	/* An identifier of the system's current boot, a new string the caller
	 * frees: different after every reboot. NULL: the system's
	 * /proc/sys/kernel/random/boot_id, read with a spawned `cat`. */
	int (*boot_id)(char **out, atex_connection *c, int timeout_ms,
		       atex_cancel *cancel);
	/* (Version 3.) The local command line that runs opts->argv (with
	 * opts->cwd and opts->env) on the system when the caller spawns it
	 * itself (see atex_connection_command_argv): a NULL-terminated array
	 * of new strings in *out. NULL: not supported. */
	int (*command_argv)(char ***out, atex_connection *c,
			    const struct atex_spawn_options *opts);
};

#define ATEX_CONNECTION_OPS_VERSION 3

/* The base every implementation embeds as its first member. */
struct atex_connection {
	const struct atex_connection_ops *ops;
};

/*
 * Generic calls; each checks its arguments and forwards to the ops table.
 * Return 0 or a negative ATEX_E* code with a message naming the
 * connection: ATEX_ETIMEDOUT, ATEX_ECANCELED, ATEX_EIO (the channel is
 * down: a connection error, not the command's), ATEX_EINVAL.
 */
int atex_connection_connect(atex_connection *c, int timeout_ms,
			    atex_cancel *cancel);
int atex_connection_disconnect(atex_connection *c);
int atex_connection_spawn(atex_process **out, atex_connection *c,
			  const struct atex_spawn_options *opts);
int atex_connection_copy_to(atex_connection *c, const char *src,
			    const char *dst, atex_cancel *cancel);
const char *atex_connection_name(const atex_connection *c);
void atex_connection_free(atex_connection *c);

/* Downloads `src` (a file or a tree on the system) to the local path
 * `dst`. ATEX_EINVAL when the connection has no copy_from; ATEX_ENOTFOUND
 * (message naming src) when src does not exist on the system. */
int atex_connection_copy_from(atex_connection *c, const char *src,
			      const char *dst, atex_cancel *cancel);

/* Whether tests may reboot the system: false for the local connection
 * (the system is the machine atex runs on) and for containers without an
 * init that restarts them; true for ssh and for systemd containers. */
bool atex_connection_can_reboot(const atex_connection *c);

/* The current boot's identifier (see boot_id above) in *out, which the
 * caller frees. Returns 0 or the codes of atex_connection_run. */
int atex_connection_boot_id(char **out, atex_connection *c, int timeout_ms,
			    atex_cancel *cancel);

/*
 * The local command line (argv[0] looked up in PATH) that runs
 * opts->argv on the system, with opts->cwd (NULL: the connection's
 * default) and opts->env added to its environment; its stdio fds are not
 * used: the caller spawns the line itself with whatever stdio it likes
 * (the Python binding hands it to subprocess, as Python ATEX does). local:
 * the argv itself, behind `env -C CWD -- NAME=VALUE...` when a cwd or env
 * is given; podman: `podman [ARGS] exec -i [-w CWD] [-e ...] CONTAINER
 * ARGV`; ssh: the ssh client through the first master's socket (the
 * connection must be connected; the command does not count against
 * max_sessions, and atex_process_kill semantics do not apply: killing the
 * local client may leave the remote command running). *out is a
 * NULL-terminated array of new strings; free it with
 * atex_command_argv_free. Any thread.
 * Returns 0, ATEX_EINVAL (no argv, or the connection has no
 * command_argv: a version 1 or 2 table, or NULL in a version 3 one),
 * ATEX_EIO (ssh not connected) or ATEX_ENOMEM.
 */
int atex_connection_command_argv(char ***out, atex_connection *c,
				 const struct atex_spawn_options *opts);

/* Frees an array from atex_connection_command_argv; NULL is accepted. */
void atex_command_argv_free(char **argv);

/* What atex_connection_run captured. */
struct atex_run_result {
	int status;     /* waitpid() status of the command */
	char *out;      /* stdout, NUL-terminated (may contain NULs before) */
	size_t out_len;
	char *err;      /* stderr, likewise */
	size_t err_len;
};

/* Frees the buffers of a result (not the struct). */
void atex_run_result_clear(struct atex_run_result *r);

/*
 * Runs argv to completion, feeding `input` (may be NULL) to its stdin and
 * capturing stdout and stderr. timeout_ms -1: no limit; on timeout or
 * cancel the command is killed. Returns 0 (whatever the command's exit
 * status; see r->status), or the codes of atex_process_wait.
 */
int atex_connection_run(struct atex_run_result *r, atex_connection *c,
			const char *const *argv, const void *input,
			size_t input_len, int timeout_ms, atex_cancel *cancel);

/* ------------------------------------------------------------------------
 * Implementations.
 */

/* This machine. `cwd` (may be NULL: the current directory) is the default
 * working directory of spawned commands. Returns 0 or ATEX_ENOMEM. */
int atex_local_connection_new(atex_connection **out, const char *cwd);

/*
 * Whether `c` was made by atex_local_connection_new(): its commands run
 * on the machine atex itself runs on, so rebooting "the system" would take
 * atex (and whatever else runs here) down. The fmf executor therefore
 * makes `tmt-reboot` refuse a real reboot there. Any thread.
 */
bool atex_connection_is_local(const atex_connection *c);

/* An OpenSSH connection. Strings and arrays are copied. */
struct atex_ssh_options {
	unsigned int version;
	const char *host;          /* required */
	int port;                  /* 0: 22 */
	const char *user;          /* NULL: ssh's default */
	const char *identity;      /* private key file; NULL: ssh's default */
	/* Extra "-o" values ("StrictHostKeyChecking=no"), NULL-terminated;
	 * NULL for none. */
	const char *const *options;
	int connect_timeout_s;     /* 0: 10 */
	int keepalive_s;           /* ServerAliveInterval; 0: 5 */
	const char *ssh_program;   /* NULL: "ssh" from PATH */
	/* The server's MaxSessions; 0: 10, sshd's default. */
	int max_sessions;
	/* (Version 2.) Host keys. false (the default): the key the system
	 * shows at the connection's first connect is accepted and pinned
	 * in the connection's own known-hosts file, and every later connect
	 * (after a reboot) must show that key; ~/.ssh/known_hosts and the
	 * system-wide file are neither read nor written. Freshly
	 * provisioned systems are in no known_hosts, and a reprovisioned
	 * one reuses its address with a new key. true: the key must already
	 * be in the user's known_hosts (StrictHostKeyChecking=yes). An
	 * `options` entry for StrictHostKeyChecking or UserKnownHostsFile
	 * overrides either. */
	bool strict_host_keys;
};

#define ATEX_SSH_OPTIONS_VERSION 2
#define ATEX_SSH_OPTIONS_INIT {ATEX_SSH_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL, 0, 0, NULL, 0, false}

/*
 * A connection through the OpenSSH client with a private ControlMaster
 * socket (in a private temporary directory removed by disconnect), so each
 * command is one multiplexed channel. BatchMode, no TTY, keepalives.
 * connect() after the master died (a reboot) starts a new one.
 * Every running command is one session of a server connection, and a
 * server refuses sessions beyond its MaxSessions (sshd's default 10,
 * `max_sessions` here): past max_sessions - 1 concurrent commands on one
 * master (one session stays free to kill a command) the connection starts
 * another master, a new handshake, up to 16 masters. The extra masters
 * live until disconnect. Host keys: see strict_host_keys; a pinned key
 * lives as long as the connection (disconnect and connect keep it).
 * The host, user and port are checked here, not at connect: a host is
 * a name or an address (letters, digits, . - _ : %), a user a login
 * name (letters, digits, . - _ $), neither starting with '-'; the port
 * 0 to 65535.
 * Returns 0, ATEX_EINVAL (no host, a bad host, user or port, an unknown
 * options version; the message quotes the value) or ATEX_ENOMEM.
 */
int atex_ssh_connection_new(atex_connection **out,
			    const struct atex_ssh_options *opts);

/*
 * Whether the ssh connection's master process is running (false for a
 * connection that is not ssh, never connected or disconnected). A local
 * check of our own child process, no network traffic; any thread.
 *
 * How to tell "the command failed" from "the connection died": a command
 * whose ssh client exited with status 255 either exited 255 itself or lost
 * its channel; if this returns false afterwards, it was the connection
 * (call connect again, e.g. after a reboot). The master notices a dead
 * server within ServerAliveInterval * 3 seconds (keepalive_s).
 * copy_to returns ATEX_EIO when the connection dropped and ATEX_EEXTERNAL
 * when rsync/tar failed over a working connection.
 */
bool atex_ssh_connection_alive(atex_connection *c);

/* A podman container. Strings and arrays are copied. */
struct atex_podman_options {
	unsigned int version;
	const char *container;      /* name or id; required */
	/* Global podman arguments ("--runtime", "runc"), NULL-terminated;
	 * NULL for none. */
	const char *const *podman_args;
	const char *podman_program; /* NULL: "podman" from PATH */
	/* (Version 2.) The container runs an init that restarts it
	 * (systemd with --restart=always): tests may reboot it, connect
	 * waits until it runs again, and boot_id is its start time. */
	bool can_reboot;
};

#define ATEX_PODMAN_OPTIONS_VERSION 2
#define ATEX_PODMAN_OPTIONS_INIT {ATEX_PODMAN_OPTIONS_VERSION, NULL, NULL, NULL, false}

/* Commands run with `podman exec -i`; trees are copied as a tar stream.
 * Returns 0, ATEX_EINVAL (no container, an unknown options version) or
 * ATEX_ENOMEM. */
int atex_podman_connection_new(atex_connection **out,
			       const struct atex_podman_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_CONNECTION_H */
