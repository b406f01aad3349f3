/*
 * remote.h - private: signalling a command that runs on another system.
 *
 * Killing the ssh or podman client of a command closes its channel but
 * does not stop the command (sshd signals only commands with a terminal;
 * podman exec forwards no signals). So every remote command is started
 * with ATEX_RUN_ID=<random id> in its environment, which its children
 * inherit, and killing the client first runs one more short command on the
 * system that signals every process carrying that id. When that reached
 * the command, a signal other than SIGKILL stops there: the client ends
 * when the command does, so a command that handles or ignores SIGTERM
 * behaves as it would locally, and SIGKILL is the caller's escalation.
 * (A kill sent before the command has even started on the system finds
 * nothing to signal; the client is signalled then, and the closing
 * channel is all that stops the command.)
 */
#ifndef ATEX_CONNECTION_REMOTE_H
#define ATEX_CONNECTION_REMOTE_H

#include <stdbool.h>

#include "util/process.h"

#define ATEX_RUN_ID_VAR "ATEX_RUN_ID"
#define ATEX_RUN_ID_SIZE 17 /* 16 hex digits and the NUL */

/* A fresh random id. */
void atex_run_id_new(char id[ATEX_RUN_ID_SIZE]);

/*
 * Arranges for atex_process_kill(p, SIG) to signal the processes marked
 * with `id` on the system first. `prefix` is the client's argv up to where
 * the remote command goes (ssh: "... -- host"; podman: "podman ... exec
 * CONTAINER"): its first n_prefix words are copied. `one_string`: the
 * client takes the
 * remote command as one shell command line (ssh) rather than an argv.
 * Returns 0 or ATEX_ENOMEM.
 */
int atex_remote_kill_hook(atex_process *p, const char *const *prefix,
			  size_t n_prefix, bool one_string, const char *id);

/* A NULL-terminated copy of the first n strings of `v` (each copied), for
 * command_argv results. Returns 0 or ATEX_ENOMEM. */
int atex_argv_copy(char ***out, const char *const *v, size_t n);

#endif /* ATEX_CONNECTION_REMOTE_H */
