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
	/* (Version 2.) systemd as the container's init: `podman run
	 * --systemd=always --restart=always` with the image's /sbin/init (or
	 * run_command), ulimits systemd needs without CAP_SYS_RESOURCE; a
	 * container is handed out once `systemctl is-system-running --wait`
	 * settles (running or degraded), and tests may reboot it. */
	bool systemd;
	/* The container's command, NULL-terminated; NULL: `sleep infinity`
	 * (with systemd: /sbin/init). Python ATEX's run_command. */
	const char *const *run_command;
};

#define ATEX_PODMAN_PROVISIONER_OPTIONS_VERSION 2
#define ATEX_PODMAN_PROVISIONER_OPTIONS_INIT \
	{ATEX_PODMAN_PROVISIONER_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL, \
	 false, NULL}

/* Containers from an image (`podman run -d --rm ... sleep infinity`),
 * started in background threads, removed on release. Returns 0,
 * ATEX_EINVAL (no image, an image starting with '-' or holding spaces,
 * control characters or shell metacharacters, a negative count, an unknown options version;
 * the message quotes the image) or ATEX_ENOMEM. */
int atex_podman_provisioner_new(
	atex_provisioner **out,
	const struct atex_podman_provisioner_options *opts);

/*
 * Builds the image `tag` from the image `base` with `packages`
 * (NULL-terminated; NULL: none) plus what atex needs on a system (bash,
 * coreutils, util-linux, rsync; with `systemd`, also systemd as init
 * unless the base has /sbin/init already)
 * installed by the base's own package manager (dnf, yum, apt-get or
 * zypper), through `podman build`. podman_args: global podman arguments.
 * Returns 0, ATEX_EINVAL (a bad tag, base or package name, quoted) or
 * ATEX_EEXTERNAL (the build failed; the message ends with its last lines).
 */
int atex_podman_image_build(const char *tag, const char *base,
			    const char *const *packages, bool systemd,
			    const char *const *podman_args,
			    atex_cancel *cancel);

/* ------------------------------------------------------------------------
 * Virtual machines on QEMU.
 */

enum atex_vm_accel {
	ATEX_VM_ACCEL_AUTO = 0, /* KVM when a boot probe shows it works */
	ATEX_VM_ACCEL_KVM,
	ATEX_VM_ACCEL_TCG,
};

enum atex_vm_firmware {
	ATEX_VM_FIRMWARE_BIOS = 0,
	ATEX_VM_FIRMWARE_UEFI, /* OVMF, when installed on the host */
};

/* How the provisioner's ssh public key reaches the guest (bit set). */
enum atex_vm_key {
	ATEX_VM_KEY_CREDENTIAL = 1, /* systemd credential over SMBIOS */
	ATEX_VM_KEY_SEED = 2,       /* cloud-init NoCloud seed (ISO) */
	ATEX_VM_KEY_BOTH = 3,
};

struct atex_qemu_provisioner_options {
	unsigned int version;
	/* The base image, a path on the host, qcow2 or raw (detected); never
	 * written: each VM runs on a qcow2 overlay. Required. */
	const char *image;
	int count;             /* VMs at once at most; 0: 1 */
	int memory_mib;        /* 0: 1024 */
	int cpus;              /* 0: 1 */
	enum atex_vm_accel accel;
	enum atex_vm_firmware firmware;
	unsigned int key;      /* enum atex_vm_key bits; 0: both */
	/* Direct kernel boot (paths on the host); NULL: boot the image. */
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *const *qemu_args;  /* extra QEMU arguments; NULL-term. */
	const char *qemu_program;      /* NULL: qemu-system-x86_64 */
	int boot_timeout_s;    /* until ssh login works; 0: 300 */
	int boot_attempts;     /* tries per VM before an error; 0: 2 */
	const char *user;      /* login user; NULL: root */
	/* Private key file whose .pub goes into the guest; NULL: a key
	 * generated per provisioner (ssh-keygen -t ed25519). */
	const char *identity;
	/* The machine that runs QEMU: NULL for this machine, or an ssh host
	 * (then the VMs are reached with that host as a jump host). */
	const struct atex_ssh_options *host;
	/* Where VM files live on the host; NULL: $TMPDIR or /var/tmp. */
	const char *workdir;
};

#define ATEX_QEMU_PROVISIONER_OPTIONS_VERSION 1
#define ATEX_QEMU_PROVISIONER_OPTIONS_INIT                                  \
	{ATEX_QEMU_PROVISIONER_OPTIONS_VERSION, NULL, 0, 0, 0,              \
	 ATEX_VM_ACCEL_AUTO, ATEX_VM_FIRMWARE_BIOS, 0, NULL, NULL, NULL,    \
	 NULL, NULL, 0, 0, NULL, NULL, NULL, NULL}

/*
 * Throw-away VMs: each remote is one QEMU process (user-mode network with
 * restrict=on, ssh forwarded from a free port on the host's 127.0.0.1) on
 * its own overlay, reached with ssh as `user` with the provisioner's key;
 * handed out once an ssh login works. Release quits QEMU and removes its
 * files; stop, abort and a killed atex leave nothing behind (the next run
 * removes orphans). Remotes can reboot. Returns 0, ATEX_EINVAL (a missing
 * image, bad values; the message names the option) or ATEX_ENOMEM.
 */
int atex_qemu_provisioner_new(
	atex_provisioner **out,
	const struct atex_qemu_provisioner_options *opts);

/* ------------------------------------------------------------------------
 * Testing Farm (API v0.1): machines reserved from the service.
 */

/* Where and as whom to talk to a Testing Farm API. Strings are copied. */
struct atex_testingfarm_api_options {
	unsigned int version;
	/* The API's base URL, without "/v0.1"; NULL: $TESTING_FARM_API_URL,
	 * else https://api.testing-farm.io. */
	const char *url;
	/* NULL: $TESTING_FARM_API_TOKEN. Sent only as an Authorization
	 * header: never in a log, an error message or a process argument. */
	const char *token;
	/* How long an exchange is retried through outages (connection
	 * errors, 408, 429, 5xx; backoff from 2 s doubling to 2 min);
	 * 0: 4 hours. */
	int retry_total_s;
	/* HTTP requests in flight to the API host at once; 0: 10. */
	int max_connections;
};

#define ATEX_TESTINGFARM_API_OPTIONS_VERSION 1
#define ATEX_TESTINGFARM_API_OPTIONS_INIT \
	{ATEX_TESTINGFARM_API_OPTIONS_VERSION, NULL, NULL, 0, 0}

/*
 * One synchronous API call, retried through outages as above:
 * `method` ("GET", "POST", "DELETE") on `path` (from the version on:
 * "/v0.1/whoami"), with `json_body` (may be NULL). On 0, *reply is the
 * reply's JSON text (caller frees) and *http_status its status (2xx).
 * Returns 0, ATEX_EINVAL (bad options or path), ATEX_EIO (the API answered
 * an error that is not retried, e.g. 401 or 404, or retries ran out: the
 * message names method, URL (no token) and status, and quotes the reply),
 * ATEX_EFORMAT (a reply that is not JSON), ATEX_ECANCELED or
 * ATEX_ENOMEM. Any thread. For `atex tf` and scripts.
 */
int atex_testingfarm_call(char **reply, long *http_status,
			  const struct atex_testingfarm_api_options *api,
			  const char *method, const char *path,
			  const char *json_body, atex_cancel *cancel);

struct atex_testingfarm_provisioner_options {
	unsigned int version;
	struct atex_testingfarm_api_options api;
	const char *compose;        /* required: "Fedora-41", "CentOS-Stream-9" */
	const char *arch;           /* NULL: x86_64 */
	const char *pool;           /* NULL: the service chooses */
	/* JSON object texts, passed into the request's environment as they
	 * are (checked by _new: the message names the option); NULL: none.
	 * `secrets` gets TF_RESERVATION_AUTHORIZED_KEYS_BASE64 added; `tags`
	 * go under settings.provisioning.tags (ArtemisUseSpot=false unless
	 * given). */
	const char *hardware;
	const char *kickstart;
	const char *variables;
	const char *secrets;
	const char *tags;
	/* The pipeline timeout (the service frees the machine after it,
	 * whatever happens to atex), minutes; 0: 60. */
	int timeout_min;
	/* Reservations alive at once (pending and handed out); 0: 50. */
	int count;
	/* Reservations that died before their machine was ready, replaced
	 * before the provisioner fails for good; 0: 10, -1: none. */
	int max_retries;
	/* Private key whose .pub goes in; NULL: one generated per
	 * provisioner. */
	const char *identity;
	/* The CIDR atex connects from ("1.2.3.4/32"), sent as an ingress rule
	 * on the public ranch (whoami says the ranch); never looked up on the
	 * internet. NULL on the public ranch: start() fails and says so. */
	const char *source_cidr;
	bool skip_guest_setup;      /* settings.pipeline.skip_guest_setup */
	/* Runs atex's OS-cleaning script (removes Testing Farm and Beaker
	 * leftovers; docs/TESTINGFARM.md) once after the first login. */
	bool os_cleaning;
	/* Extra ssh "-o" options for the remotes, NULL-terminated; NULL:
	 * none (a "Port=N" here reaches a guest not on port 22). */
	const char *const *ssh_options;
	/* How often a pending request's state and pipeline.log are polled,
	 * ms; 0: 10000. */
	int poll_ms;
};

#define ATEX_TESTINGFARM_PROVISIONER_OPTIONS_VERSION 1
#define ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT                          \
	{ATEX_TESTINGFARM_PROVISIONER_OPTIONS_VERSION,                     \
	 ATEX_TESTINGFARM_API_OPTIONS_INIT, NULL, NULL, NULL, NULL, NULL,  \
	 NULL, NULL, NULL, 0, 0, 0, NULL, NULL, false, false, NULL, 0}

/*
 * Machines reserved from Testing Farm: each remote is one request of the
 * reservation test, reached over ssh (the ssh connection's host-key
 * policy) as the user and host its pipeline.log names, with the
 * provisioner's key. One thread and one libcurl multi handle serve every
 * request of the provisioner. Release cancels the remote's request; stop,
 * abort and destroying the provisioner cancel every request it made. A
 * request that dies before its machine is ready is logged with its id and
 * the last pipeline.log lines and replaced, up to max_retries. Returns 0,
 * ATEX_EINVAL (no compose, bad JSON or values; the message names the
 * option) or ATEX_ENOMEM.
 */
int atex_testingfarm_provisioner_new(
	atex_provisioner **out,
	const struct atex_testingfarm_provisioner_options *opts);

/* What a provisioner did so far; any thread. */
struct atex_testingfarm_stats {
	int submitted;  /* requests created */
	int failed;     /* died before their machine was ready */
	int ready;      /* handed out as remotes (or queued for that) */
	int canceled;   /* canceled by atex (release, stop, abort) */
	int alive;      /* requests not yet canceled or ended */
};

/* Fills *out; ATEX_EINVAL when p is not a Testing Farm provisioner. */
int atex_testingfarm_provisioner_stats(struct atex_testingfarm_stats *out,
				       atex_provisioner *p);

/* How to log in to a Testing Farm remote (owned by the remote). */
struct atex_testingfarm_login {
	const char *request_id;
	const char *user;
	const char *host;
	const char *identity;   /* the private key file */
};

/* Fills *out; ATEX_EINVAL when r is not a Testing Farm remote. */
int atex_testingfarm_remote_login(struct atex_testingfarm_login *out,
				  atex_remote *r);

#ifdef __cplusplus
}
#endif

#endif /* ATEX_PROVISIONER_H */
