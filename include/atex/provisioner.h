/*
 * atex/provisioner.h - getting systems: provisioners hand out Remotes (a
 * Connection plus release) as they become ready.
 *
 * The contract (DESIGN.md): provision(count) is a polite request, not a
 * promise; get_remote() returns a ready Remote or "not yet"; remotes
 * arrive over time (minutes or hours for real services). Every provisioner
 * records the resources it creates (containers, masters, reservations,
 * temp dirs) under its own lock as soon as they exist, so that abort() from
 * any thread frees them at once, and stop() releases everything it ever
 * handed out. A program may implement its own provisioner by filling in
 * struct atex_provisioner_ops.
 *
 * Thread safety: provision, get_remote, clear and abort may be called from
 * any thread at any time; start, stop and free by the owning thread.
 * A Remote is used by one thread at a time (its connection's spawn is
 * thread-safe); release may be called from any thread, once.
 */
#ifndef ATEX_PROVISIONER_H
#define ATEX_PROVISIONER_H

#include "atex/common.h"
#include "atex/connection.h"

#ifdef __cplusplus
extern "C" {
#endif

/* provision() as many as the provisioner can. */
#define ATEX_PROVISION_UNLIMITED (-1)

typedef struct atex_remote atex_remote;
typedef struct atex_provisioner atex_provisioner;

struct atex_remote_ops {
	unsigned int version;
	/* The connection to the system; owned by the remote. */
	atex_connection *(*connection)(atex_remote *r);
	/* A human name for logs ("podman:atex-3f2a", "root@host:22"). */
	const char *(*name)(const atex_remote *r);
	/* Gives the system back (destroyed or returned to a pool) and frees
	 * the remote. */
	void (*release)(atex_remote *r);
};

#define ATEX_REMOTE_OPS_VERSION 1

struct atex_remote {
	const struct atex_remote_ops *ops;
};

atex_connection *atex_remote_connection(atex_remote *r);
const char *atex_remote_name(const atex_remote *r);
/* Releases the remote; NULL is accepted. */
void atex_remote_release(atex_remote *r);

/*
 * A provisioner's operations, for a program's own provisioner: version
 * (ATEX_PROVISIONER_OPS_VERSION), provision, get_remote, ready_fd and
 * free are required; start, stop, clear, abort and name may be NULL (they
 * then do nothing, and the name is "provisioner"). Each op has the
 * contract of the atex_provisioner_* call of the same name below; report
 * errors with atex_error_set_message(). The orchestrator waits on
 * ready_fd, and treats a get_remote error other than ATEX_ETIMEDOUT and
 * ATEX_ECANCELED as "this provisioner failed for good".
 */
struct atex_provisioner_ops {
	unsigned int version;
	int (*start)(atex_provisioner *p);
	int (*stop)(atex_provisioner *p);
	int (*provision)(atex_provisioner *p, int count);
	int (*get_remote)(atex_remote **out, atex_provisioner *p,
			  int timeout_ms);
	int (*clear)(atex_provisioner *p);
	void (*abort)(atex_provisioner *p);
	/* A descriptor readable while a remote is ready (see below). */
	int (*ready_fd)(const atex_provisioner *p);
	const char *(*name)(const atex_provisioner *p);
	void (*free)(atex_provisioner *p);
};

#define ATEX_PROVISIONER_OPS_VERSION 1

struct atex_provisioner {
	const struct atex_provisioner_ops *ops;
};

/* Prepares the provisioner (no systems yet). Returns 0 or an error. */
int atex_provisioner_start(atex_provisioner *p);

/* Releases every remote it handed out and everything still being made;
 * leaves nothing behind. Returns 0 or the first error met (it goes on). */
int atex_provisioner_stop(atex_provisioner *p);

/* Asks for `count` more systems (ATEX_PROVISION_UNLIMITED: as many as it
 * can). Returns 0, or ATEX_EINVAL when not started. Any thread. */
int atex_provisioner_provision(atex_provisioner *p, int count);

/*
 * A ready remote: waits at most timeout_ms (0: just look, -1: no limit).
 * Returns 0 with *out set, ATEX_ETIMEDOUT (none ready yet), ATEX_ECANCELED
 * (aborted), or the error that made provisioning fail for good (e.g. a
 * container that cannot start). Any thread.
 */
int atex_provisioner_get_remote(atex_remote **out, atex_provisioner *p,
				int timeout_ms);

/* Forgets pending requests (systems being made are released when they
 * arrive). Any thread. */
int atex_provisioner_clear(atex_provisioner *p);

/* Frees everything now, from any thread: blocked calls return
 * ATEX_ECANCELED promptly. */
void atex_provisioner_abort(atex_provisioner *p);

/* Readable (poll POLLIN) while get_remote would return a remote at once;
 * lets an orchestrator wait on many provisioners. Owned by p. */
int atex_provisioner_ready_fd(const atex_provisioner *p);

const char *atex_provisioner_name(const atex_provisioner *p);

/* Stops (if needed) and frees; NULL is accepted. */
void atex_provisioner_free(atex_provisioner *p);

/* ------------------------------------------------------------------------
 * Implementations.
 */

/* `slots` systems on this machine, each a local connection. */
int atex_local_provisioner_new(atex_provisioner **out, int slots);

/* A fixed pool of SSH machines: `hosts` are "[user@]host[:port]",
 * NULL-terminated; `base` supplies identity, options, timeouts for all (its
 * host/port/user are ignored). One user per machine; release returns it. */
int atex_static_provisioner_new(atex_provisioner **out,
				const char *const *hosts,
				const struct atex_ssh_options *base);

struct atex_podman_provisioner_options {
	unsigned int version;
	const char *image;                 /* required */
	int count;                         /* containers at most; 0: 1 */
	const char *const *podman_args;    /* global args, NULL-terminated */
	const char *const *run_args;       /* extra `podman run` args */
	const char *podman_program;        /* NULL: "podman" */
};

#define ATEX_PODMAN_PROVISIONER_OPTIONS_VERSION 1
#define ATEX_PODMAN_PROVISIONER_OPTIONS_INIT \
	{ATEX_PODMAN_PROVISIONER_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL}

/* Containers from an image (`podman run -d --rm ... sleep infinity`),
 * started in background threads, removed on release. Returns 0,
 * ATEX_EINVAL (no image, an image starting with '-' or holding spaces,
 * control characters or shell metacharacters, a negative count, an unknown options version;
 * the message quotes the image) or ATEX_ENOMEM. */
int atex_podman_provisioner_new(
	atex_provisioner **out,
	const struct atex_podman_provisioner_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_PROVISIONER_H */
