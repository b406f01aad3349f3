/*
 * process.h - private: starting local processes with chosen stdio, the
 * building block of every connection (local commands, ssh and podman
 * clients). The public half (atex_process_wait, _kill, _free, the stdio
 * accessors and atex_cancel) is declared in include/atex/connection.h.
 *
 * Implementation notes (process.c says why):
 *  - the parent's ends of ATEX_STDIO_PIPE streams are O_CLOEXEC and
 *    *blocking*, so they can be handed on to another process as its stdio;
 *    wait with atex_wait_fd, then one read() never blocks; write with
 *    atex_write_all (or set O_NONBLOCK yourself on a pipe you keep);
 *  - spawn returns once the program has been exec'ed (or failed to be);
 *  - atex_process_kill signals the whole process group of the command
 *    while it is unreaped, and does nothing (returns 0) once it is reaped:
 *    the pid may then belong to another process;
 *  - writes done by atex run with SIGPIPE blocked in the calling thread
 *    and consume the SIGPIPE they cause: the program sees EPIPE only.
 */
#ifndef ATEX_PROCESS_H
#define ATEX_PROCESS_H

#include "atex/connection.h"

struct atex_buf;

/*
 * Starts argv (argv[0] looked up in PATH) in `cwd` (NULL: inherited) with
 * the current environment plus `env` ("NAME=VALUE", NULL-terminated, may be
 * NULL), stdio as in struct atex_spawn_options (enum atex_stdio or a
 * descriptor, duplicated). The child gets a pidfd-backed handle, its own
 * process group (so a kill reaches what it started), no other descriptors
 * of ours (everything is O_CLOEXEC), and default signal dispositions and
 * an empty signal mask (a program blocking SIGINT for sigwait must not
 * pass that on).
 * Returns 0, ATEX_ENOTFOUND (no such program, message names it), ATEX_EIO,
 * ATEX_ENOMEM.
 */
int atex_process_spawn(atex_process **out, const char *const *argv,
		       const char *cwd, const char *const *env, int stdin_fd,
		       int stdout_fd, int stderr_fd);

/*
 * Feeds `input` (may be NULL) to the process's stdin pipe and drains its
 * stdout and stderr pipes into `out` and `err` (NULL: discarded) in one
 * poll loop, then reaps it into *status (may be NULL). Streams that are not
 * pipes of the handle are left alone; the handle's pipes are closed on
 * return. The loop ends when the process has exited (what it wrote is
 * taken; a background child still holding the pipes does not keep us
 * waiting) or all streams are at EOF. On timeout or cancel the process
 * group is killed (SIGKILL) and reaped, `out` and `err` keep what arrived.
 * Returns 0, ATEX_ETIMEDOUT, ATEX_ECANCELED, ATEX_EIO, ATEX_ENOMEM.
 */
/*
 * How atex_process_communicate stops the process on timeout or cancel:
 * `signal` first, `grace_ms` to end, then SIGKILL. For a program that a
 * SIGKILL would catch halfway through something it must finish or undo
 * (`podman run` creating a container). Set right after the spawn.
 */
void atex_process_set_stop_signal(atex_process *p, int signal, int grace_ms);

int atex_process_communicate(int *status, atex_process *p, const void *input,
			     size_t input_len, struct atex_buf *out,
			     struct atex_buf *err, int timeout_ms,
			     atex_cancel *cancel);

/*
 * A hook atex_process_kill calls (with the same signal, before signalling
 * the local process) for clients that run a command elsewhere: killing the
 * ssh or podman client closes the channel but does not stop the command,
 * so the connection signals it itself. Also called when a process still
 * running is freed (SIGKILL). It may block briefly (one more remote
 * command) and must not call back into the process. `data` is freed with
 * `data_free` (may be NULL) when the handle is. Set right after spawn,
 * before any other thread sees the handle.
 * Returns true when it signalled the command there: for any signal but
 * SIGKILL the client is then left alone, to end when the command does,
 * as a local command would (one that ignores SIGTERM keeps running until
 * the caller sends SIGKILL). false (nothing found, no channel): the
 * client is signalled too.
 */
typedef bool (*atex_process_kill_hook)(void *data, int signal);

void atex_process_set_kill_hook(atex_process *p, atex_process_kill_hook hook,
				void *data, void (*data_free)(void *data));

/*
 * A hook called exactly once when the process has ended: from the wait
 * that reaps it (in that thread, with no lock of the handle held), or from
 * atex_process_free when no wait did. The ssh connection counts its open
 * channels with it. The hook owns `data` and frees it. Set right after
 * spawn, before any other thread sees the handle.
 */
typedef void (*atex_process_exit_hook)(void *data);

void atex_process_set_exit_hook(atex_process *p, atex_process_exit_hook hook,
				void *data);

/*
 * Waits until `fd` is readable (events POLLIN) or writable (POLLOUT), at
 * most timeout_ms (-1: no limit), or until `cancel` fires. Returns 0,
 * ATEX_ETIMEDOUT, ATEX_ECANCELED. The one blocking primitive: nothing in
 * atex sleeps in a loop.
 */
int atex_wait_fd(int fd, short events, int timeout_ms, atex_cancel *cancel);

/* Writes all of buf to fd (EINTR and short writes handled), giving up at
 * cancel. Returns 0, ATEX_EIO (EPIPE...), ATEX_ECANCELED. */
int atex_write_all(int fd, const void *buf, size_t len, atex_cancel *cancel);

/* Quotes one argument for a POSIX shell ('...' with '\'' inside), appended
 * to b. Returns 0 or ATEX_ENOMEM. */
int atex_shell_quote(struct atex_buf *b, const char *arg);

#endif /* ATEX_PROCESS_H */
