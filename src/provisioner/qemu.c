/*
 * qemu.c - a provisioner of throw-away virtual machines: each Remote is
 * one QEMU process on its own qcow2 overlay of a base image, reached with
 * ssh, on this machine or on a virtualization host reached over ssh.
 *
 * Every host operation goes through one atex_connection to the host (the
 * local connection, or ssh when opts.host is set): files on the host are
 * made by spawned commands (mkdir, qemu-img, `sh -c 'cat > FILE'`), so
 * the same code serves both.
 *
 * Where things live on the host: each VM has WORKDIR/atex-vm-XXXXXXXX
 * (WORKDIR: opts.workdir, else the host's $TMPDIR or /var/tmp) holding
 * overlay.qcow2, console.log (the serial console), seed.iso (cloud-init
 * NoCloud), vars.fd (a copy of OVMF's variables for UEFI), qemu.pid, the
 * fifos qmp.in/qmp.out (QEMU's QMP monitor on a pipe chardev) and `lock`.
 * Here: a private temp dir with the generated key (when none is given)
 * and the known_hosts file of the virtualization host; start() holds
 * flock on its `lock` while it lives and first sweeps those a killed
 * atex left (lock free), as util/tmpdir.c describes.
 *
 * Lifetime: QEMU is started by a small sh wrapper (WRAPPER below) spawned
 * through the host connection with stdin and stdout pipes. The wrapper
 * makes the VM's directory, holds flock on DIR/lock for its whole life,
 * starts QEMU when told to, copies its stdin to QMP and QMP's output to
 * its stdout, and when its stdin reaches EOF (release, abort, or atex
 * killed: the writer is gone; over ssh the channel closes) or it gets
 * TERM/HUP/INT, it stops QEMU (TERM, KILL after 5 s) and removes the
 * directory. So QMP works through any connection, and a dead atex leaves
 * no QEMU behind. Orphans (a wrapper SIGKILLed, a host that rebooted):
 * start() sweeps WORKDIR/atex-vm-* directories of the current user whose
 * lock is free, kills the QEMU named in qemu.pid when that process's
 * command line names the directory, and removes the directory.
 *
 * Readiness is an ssh login that runs a command, retried until the boot
 * timeout (QEMU's user network accepts TCP while the guest is down, so an
 * open port means nothing); the same command says whether the guest has
 * cloud-init, and then `cloud-init status --wait` runs before the VM is
 * handed out (within the boot timeout; an error status only warns). A VM
 * that does not answer (or whose QEMU exits) is destroyed and booted
 * again, boot_attempts times in all; the error then quotes the end of its
 * console. Failures before QEMU starts (qemu-img, the seed) are not
 * retried: they would fail the same way. Between logins the thread waits in
 * poll() on the wrapper's stdout (EOF: QEMU died) and the cancel token, so a
 * dead VM or an abort ends the wait at once. The accelerator (AUTO) is chosen
 * once per provisioner by a boot probe: KVM only when a kernel booted under KVM
 * panics on schedule (a nested /dev/kvm may hang a guest), TCG otherwise.
 *
 * Ownership follows podman.c: a VM being booted belongs to its starter
 * thread (abort fires the cancel token and the thread destroys it); a
 * queued or handed-out VM is destroyed by whoever takes it off the books
 * under the lock (release, abort, stop). A handed-out VM's connection is
 * freed only by release or free(), never under a user still holding it.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atex/provisioner.h"
#include "provisioner/keygen.h"
#include "provisioner/qemu_private.h"
#include "provisioner/queue.h"
#include "util/process.h"
#include "util/util.h"

#define COMPONENT "qemu"
#define STR_(x)	  #x
#define STR(x)	  STR_(x)

/* Host commands (checks, qemu-img, the seed) are quick; a hung one must
 * not hang a start. */
#define HOST_CMD_MS 120000
/* The wrapper answers "locked" at once, QMP's greeting follows QEMU's
 * start. */
#define WRAPPER_MS 60000
/* The wrapper stops QEMU (TERM, then KILL after 5 s) and removes DIR. */
#define WRAPPER_EXIT_MS 15000
/* One ssh connect to a VM; retried until the boot timeout. Before the
 * guest's sshd listens, QEMU's user network accepts the TCP connection
 * and then holds it without a banner: ssh's ConnectTimeout (which also
 * bounds the banner exchange) is what ends such a try, so it is short
 * for a VM on this machine (bare `ssh` loops use the same 5 s). */
#define SSH_TRY_MS	     30000
#define SSH_RETRY_MS	     250
#define SSH_CONNECT_LOCAL_S  5
#define SSH_CONNECT_REMOTE_S 10
/* The KVM probe: a kernel panics within seconds under working KVM. */
#define PROBE_KERNEL_MS 15000
#define PROBE_IMAGE_MS	60000
#define CONSOLE_LINES	15
/* Console lines quoted are cut at this many characters. */
#define CONSOLE_WIDTH 200
/* How much of the console's end is read to find those lines: escape
 * sequences and blank lines may make up most of it. */
#define CONSOLE_BYTES 16384
/* The wrapper's line before the console's end on its stderr. */
#define CONSOLE_MARK "--- atex: console.log ---"

/* ------------------------------------------------------------------------
 * Host-side scripts (sh), run as `sh -c SCRIPT sh ARGS...`.
 */

/* $1 the VM's directory (made here), then the QEMU command. Prints
 * "locked" once it holds DIR/lock, starts QEMU on the line "start". */
static const char WRAPPER[] =
	"set -u\n"
	"dir=$1; shift\n"
	"umask 077\n"
	"mkdir -- \"$dir\" || exit 1\n"
	"exec 9>\"$dir/lock\" || exit 1\n"
	"flock -n 9 || { echo \"$dir: locked by another process\" >&2; "
	"exit 1; }\n"
	"qpid= inpid= outpid=\n"
	"finish() {\n"
	"  trap '' TERM HUP INT PIPE\n"
	"  if [ -n \"$qpid\" ]; then\n"
	"    kill -TERM \"$qpid\" 2>/dev/null\n"
	"    ( trap 'kill $s 2>/dev/null; exit 0' TERM\n"
	"      sleep 5 & s=$!; wait $s; kill -KILL \"$qpid\" 2>/dev/null\n"
	"    ) </dev/null >/dev/null 2>&1 9>&- &\n"
	"    killer=$!\n"
	"    wait \"$qpid\"\n"
	"    kill \"$killer\" 2>/dev/null\n"
	"  fi\n"
	"  [ -z \"$inpid\" ] || kill \"$inpid\" 2>/dev/null\n"
	"  [ -z \"$outpid\" ] || kill \"$outpid\" 2>/dev/null\n"
	"  rm -rf -- \"$dir\"\n"
	"  exit \"$1\"\n"
	"}\n"
	"trap 'finish 143' TERM\n"
	"trap 'finish 129' HUP\n"
	"trap 'finish 130' INT\n"
	"echo locked\n"
	"read -r go || finish 0\n"
	"[ \"$go\" = start ] || finish 0\n"
	"mkfifo \"$dir/qmp.in\" \"$dir/qmp.out\" || finish 1\n"
	"\"$@\" </dev/null >/dev/null 9>&- &\n"
	"qpid=$!\n"
	/* An asynchronous list's stdin is /dev/null unless redirected
	 * from a descriptor saved before. */
	"exec 3<&0\n"
	"( cat 1<>\"$dir/qmp.in\"; kill -TERM $$ ) <&3 >/dev/null 2>&1 "
	"3<&- 9>&- &\n"
	"inpid=$!\n"
	"exec 3<&-\n"
	"cat \"$dir/qmp.out\" </dev/null 9>&- &\n"
	"outpid=$!\n"
	"wait \"$qpid\"\n"
	"st=$?\n"
	"qpid=\n"
	"echo \"QEMU exited with status $st\" >&2\n"
	"echo '" CONSOLE_MARK "' >&2\n"
	"tail -c " STR(
		CONSOLE_BYTES) " -- \"$dir/console.log\" >&2 2>/dev/null\n"
			       "finish \"$st\"\n";

/* Checks the host and resolves paths; prints key=value lines, then
 * "json" and `qemu-img info` of the image. Also sweeps orphans. */
static const char HOST_CHECK[] =
	"set -u\n"
	"img=$1 kernel=$2 initrd=$3 workdir=$4 qemu=$5 uefi=$6 seed=$7\n"
	"fail() { printf '%s\\n' \"$*\" >&2; exit 1; }\n"
	"for prog in \"$qemu\" qemu-img flock mkfifo realpath; do\n"
	"  command -v \"$prog\" >/dev/null 2>&1 ||"
	" fail \"$prog: not found on the host\"\n"
	"done\n"
	"[ -n \"$workdir\" ] || workdir=${TMPDIR:-/var/tmp}\n"
	"{ [ -d \"$workdir\" ] && [ -w \"$workdir\" ]; } ||"
	" fail \"work directory $workdir: not a writable directory\"\n"
	"workdir=$(cd -- \"$workdir\" && pwd -P) || exit 1\n"
	"echo \"workdir=$workdir\"\n"
	"abs() {\n"
	"  { [ -f \"$2\" ] && [ -r \"$2\" ]; } ||"
	" fail \"$1 $2: no readable file on the host\"\n"
	"  echo \"$1=$(realpath -- \"$2\")\"\n"
	"}\n"
	"abs image \"$img\"\n"
	"[ -z \"$kernel\" ] || abs kernel \"$kernel\"\n"
	"[ -z \"$initrd\" ] || abs initrd \"$initrd\"\n"
	"if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then echo kvm=1;"
	" else echo kvm=0; fi\n"
	"for k in \"/boot/vmlinuz-$(uname -r)\" /boot/vmlinuz; do\n"
	"  if [ -f \"$k\" ] && [ -r \"$k\" ]; then"
	" echo \"hostkernel=$k\"; break; fi\n"
	"done\n"
	"if [ \"$uefi\" = 1 ]; then\n"
	"  tried=\n"
	"  for c in /usr/share/OVMF/OVMF_CODE_4M.fd"
	" /usr/share/OVMF/OVMF_CODE.fd /usr/share/edk2/ovmf/OVMF_CODE.fd"
	" /usr/share/edk2/x64/OVMF_CODE.4m.fd"
	" /usr/share/edk2/x64/OVMF_CODE.fd; do\n"
	"    v=$(printf '%s' \"$c\" | sed 's/CODE/VARS/g')\n"
	"    if [ -r \"$c\" ] && [ -r \"$v\" ]; then\n"
	"      echo \"ovmf_code=$c\"; echo \"ovmf_vars=$v\"; tried=; break\n"
	"    fi\n"
	"    tried=\"$tried $c\"\n"
	"  done\n"
	"  [ -z \"$tried\" ] || fail \"UEFI firmware: no OVMF on the host"
	" (tried$tried, each with its VARS file)\"\n"
	"fi\n"
	"if [ \"$seed\" = 1 ]; then\n"
	"  iso=\n"
	"  for t in genisoimage mkisofs xorriso; do\n"
	"    if command -v $t >/dev/null 2>&1; then iso=$t; break; fi\n"
	"  done\n"
	"  [ -n \"$iso\" ] || fail \"the cloud-init seed needs genisoimage,"
	" mkisofs or xorriso on the host\"\n"
	"  echo \"iso=$iso\"\n"
	"fi\n"
	"for d in \"$workdir\"/atex-vm-*; do\n"
	"  { [ -d \"$d\" ] && [ ! -L \"$d\" ] && [ -O \"$d\" ]; } || continue\n"
	"  flock -n -E 75 \"$d/lock\" sh -c '\n"
	"    pid=$(cat \"$1/qemu.pid\" 2>/dev/null)\n"
	"    case $pid in \"\"|*[!0-9]*) ;; *)\n"
	"      if tr \"\\0\" \"\\n\" <\"/proc/$pid/cmdline\" 2>/dev/null |\n"
	"         grep -qF -- \"$1/\"; then kill -KILL \"$pid\"; fi;;\n"
	"    esac\n"
	"    rm -rf -- \"$1\"' sh \"$d\" 2>/dev/null &&"
	" echo \"swept=$d\"\n"
	"done\n"
	"echo json\n"
	"qemu-img info -U --output=json \"$(realpath -- \"$img\")\"\n";

/* $1 DIR, $2 base image, $3 its format, $4 OVMF vars (or ""), $5 the ISO
 * tool (or "": no seed), $6 meta-data; user-data on stdin. */
static const char PREPARE[] =
	"set -u\n"
	"dir=$1 image=$2 format=$3 vars=$4 iso=$5 meta=$6\n"
	"qemu-img create -q -f qcow2 -b \"$image\" -F \"$format\""
	" \"$dir/overlay.qcow2\" >&2 || exit 1\n"
	"[ -z \"$vars\" ] || cp -- \"$vars\" \"$dir/vars.fd\" || exit 1\n"
	"[ -n \"$iso\" ] || exit 0\n"
	"mkdir \"$dir/seed\" && printf '%s' \"$meta\" >\"$dir/seed/meta-data\""
	" && cat >\"$dir/seed/user-data\" || exit 1\n"
	"case $iso in xorriso) set -- xorriso -as mkisofs;;"
	" *) set -- \"$iso\";; esac\n"
	"\"$@\" -quiet -output \"$dir/seed.iso\" -volid cidata -joliet -rock"
	" \"$dir/seed/user-data\" \"$dir/seed/meta-data\" >&2\n";

/* A console never written (QEMU not started yet) counts as empty. */
static const char CONSOLE_TAIL[] =
	"[ ! -e \"$1/console.log\" ] || "
	"tail -c " STR(CONSOLE_BYTES) " -- \"$1/console.log\"";

static const char CONSOLE_BOOTED[] =
	"grep -q -a -e 'Linux version' -e 'login:' -- \"$1/console.log\"";

/* ------------------------------------------------------------------------
 * Types.
 */

enum vm_state {
	VM_STARTING, /* being booted by its thread */
	VM_READY,    /* answering ssh, in the queue */
	VM_HANDED,   /* given out by get_remote */
	VM_GONE,     /* destroyed or being destroyed */
};

enum accel_choice { ACCEL_UNKNOWN, ACCEL_KVM, ACCEL_TCG };

struct qemu_provisioner;
static const struct atex_remote_ops remote_ops;

/* One VM; it is also the Remote handed out. */
struct qemu_vm {
	struct atex_remote base;
	struct qemu_provisioner *prov;
	char *name;  /* atex-vm-XXXXXXXX */
	char *dir;   /* WORKDIR/name on the host */
	char *label; /* the remote's name */
	atex_process *wrapper;
	int qmp_in;	      /* the wrapper's stdin, -1 when closed */
	int qmp_out;	      /* its stdout */
	int err_fd;	      /* its stderr: an unlinked local file */
	struct atex_buf rbuf; /* what was read from qmp_out, not used yet */
	int port;
	atex_connection *conn;
	enum vm_state state;
	bool discard; /* not wanted any more once booted */
	bool handed;  /* the user owns the memory: freed by release */
};

struct starter {
	pthread_t thread;
	struct qemu_vm *vm;
	bool done;
};

struct qemu_provisioner {
	struct atex_provisioner base;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	pthread_mutex_t probe_lock; /* one accelerator probe at a time */
	char *name;		    /* "qemu:IMAGE" */
	/* Options, copied. */
	char *image_opt, *kernel_opt, *initrd_opt, *cmdline, *user;
	char *identity_opt, *workdir_opt, *program;
	struct atex_vec qemu_args; /* NULL-terminated, owned */
	int max, memory_mib, cpus, boot_timeout_s, boot_attempts;
	enum atex_vm_accel accel_opt;
	bool uefi, key_credential, key_seed;
	atex_connection *host;		   /* where QEMU runs */
	struct atex_ssh_options host_opts; /* valid with host_ssh */
	bool host_ssh;
	char *host_name;
	/* Found by start(). */
	char *tmpdir;	 /* private, here: the generated key, known_hosts */
	int tmpdir_lock; /* flock held on tmpdir/lock while it lives */
	char *key_path;	 /* private key used to log in */
	char *pubkey;	 /* "TYPE BASE64" */
	char *proxy;	 /* ProxyCommand through the host, or NULL */
	char *image, *format, *kernel, *initrd, *workdir;
	char *ovmf_code, *ovmf_vars, *iso_tool, *host_kernel;
	bool host_kvm;
	enum accel_choice accel; /* under probe_lock */
	/* Books, under lock. */
	struct atex_remote_queue *queue;
	atex_cancel *cancel;
	struct atex_vec vms;
	struct atex_vec threads;
	int wanted, active, busy;
	bool started, aborted;
};

static struct qemu_provisioner *to_prov(const atex_provisioner *p)
{
	return (struct qemu_provisioner *)p;
}

static struct qemu_vm *to_vm(const atex_remote *r)
{
	return (struct qemu_vm *)r;
}

/* ------------------------------------------------------------------------
 * The pure parts (qemu_private.h).
 */

/* A QEMU option value with its commas doubled (QEMU's escaping). */
static int put_escaped(struct atex_buf *b, const char *s)
{
	int rc = 0;

	for (; *s && !rc; s++)
		rc = *s == ',' ? atex_buf_puts(b, ",,") : atex_buf_putc(b, *s);
	return rc;
}

/* Pushes a formatted argument; the format's %s are given already
 * escaped where needed. */
static int push_fmt(struct atex_vec *out, int rc, char *arg)
{
	if (rc) {
		free(arg);
		return rc;
	}
	if (!arg || atex_vec_push(out, arg) < 0) {
		free(arg);
		return ATEX_ENOMEM;
	}
	return 0;
}

static int push(struct atex_vec *out, int rc, const char *arg)
{
	return push_fmt(out, rc, rc ? NULL : atex_strdup(arg));
}

/* "PREFIX" + escaped(path) + "SUFFIX". */
static char *opt_path(const char *prefix, const char *path, const char *suffix)
{
	struct atex_buf b = ATEX_BUF_INIT;

	if (atex_buf_puts(&b, prefix) || put_escaped(&b, path) ||
	    atex_buf_puts(&b, suffix)) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

static char *dir_path(const char *prefix, const char *dir, const char *file,
		      const char *suffix)
{
	char *path = atex_sprintf("%s/%s", dir, file);
	char *arg = path ? opt_path(prefix, path, suffix) : NULL;

	free(path);
	return arg;
}

int atex_qemu_argv(struct atex_vec *out, const struct atex_qemu_cmd *c)
{
	int rc = 0;

	rc = push(out, rc, c->program);
	rc = push(out, rc, "-name");
	/* NAME,process=NAME: ps shows it too. Names have no commas. */
	rc = push_fmt(out, rc,
		      rc ? NULL
			 : atex_sprintf("%s,process=%s", c->name, c->name));
	rc = push(out, rc, "-nodefaults");
	rc = push(out, rc, "-display");
	rc = push(out, rc, "none");
	rc = push(out, rc, "-accel");
	rc = push(out, rc, c->kvm ? "kvm" : "tcg,thread=multi");
	/* Every feature there is: current distributions need more than
	 * QEMU's default CPU model (RHEL 9: x86-64-v2). */
	rc = push(out, rc, "-cpu");
	rc = push(out, rc, c->kvm ? "host" : "max");
	rc = push(out, rc, "-m");
	rc = push_fmt(out, rc, rc ? NULL : atex_sprintf("%d", c->memory_mib));
	rc = push(out, rc, "-smp");
	rc = push_fmt(out, rc, rc ? NULL : atex_sprintf("%d", c->cpus));
	rc = push(out, rc, "-pidfile");
	rc = push_fmt(out, rc, rc ? NULL : atex_sprintf("%s/qemu.pid", c->dir));
	rc = push(out, rc, "-serial");
	rc = push_fmt(out, rc,
		      rc ? NULL : atex_sprintf("file:%s/console.log", c->dir));
	rc = push(out, rc, "-chardev");
	rc = push_fmt(out, rc,
		      rc ? NULL
			 : dir_path("pipe,id=qmp,path=", c->dir, "qmp", ""));
	rc = push(out, rc, "-mon");
	rc = push(out, rc, "chardev=qmp,mode=control");
	if (c->ovmf_code) {
		rc = push(out, rc, "-drive");
		rc = push_fmt(out, rc,
			      rc ? NULL
				 : opt_path("if=pflash,format=raw,unit=0,"
					    "readonly=on,file=",
					    c->ovmf_code, ""));
		rc = push(out, rc, "-drive");
		rc = push_fmt(out, rc,
			      rc ? NULL
				 : dir_path("if=pflash,format=raw,unit=1,"
					    "file=",
					    c->dir, "vars.fd", ""));
	}
	if (c->disk) {
		rc = push(out, rc, "-drive");
		rc = push_fmt(out, rc,
			      rc ? NULL
				 : dir_path("if=virtio,format=qcow2,"
					    "discard=unmap,file=",
					    c->dir, "overlay.qcow2", ""));
	}
	if (c->seed) {
		rc = push(out, rc, "-drive");
		rc = push_fmt(out, rc,
			      rc ? NULL
				 : dir_path("if=virtio,format=raw,"
					    "readonly=on,file=",
					    c->dir, "seed.iso", ""));
	}
	if (c->net) {
		rc = push(out, rc, "-nic");
		rc = push(out, rc,
			  "user,model=virtio-net-pci,restrict=on,"
			  "hostfwd=tcp:127.0.0.1:0-:22");
		rc = push(out, rc, "-device");
		rc = push(out, rc, "virtio-rng-pci");
	}
	if (c->kernel) {
		rc = push(out, rc, "-kernel");
		rc = push(out, rc, c->kernel);
		if (c->initrd) {
			rc = push(out, rc, "-initrd");
			rc = push(out, rc, c->initrd);
		}
		if (c->cmdline) {
			rc = push(out, rc, "-append");
			rc = push(out, rc, c->cmdline);
		}
	}
	if (c->credential_key) {
		rc = push(out, rc, "-smbios");
		rc = push_fmt(out, rc,
			      rc ? NULL
				 : opt_path("type=11,value=io.systemd."
					    "credential:ssh.authorized_keys."
					    "root=",
					    c->credential_key, ""));
	}
	if (c->no_reboot)
		rc = push(out, rc, "-no-reboot");
	for (size_t i = 0; c->extra && c->extra[i]; i++)
		rc = push(out, rc, c->extra[i]);
	return rc;
}

char *atex_qemu_user_data(const char *user, const char *key)
{
	struct atex_buf b = ATEX_BUF_INIT;
	int rc;

	/* Keys are "TYPE BASE64" (atex_qemu_key_text): nothing to quote. */
	rc = atex_buf_printf(&b,
			     "#cloud-config\n"
			     "disable_root: false\n"
			     "ssh_pwauth: false\n"
			     "ssh_authorized_keys:\n"
			     "  - %s\n",
			     key);
	if (!rc && user && strcmp(user, "root") != 0)
		rc = atex_buf_printf(&b,
				     "users:\n"
				     "  - default\n"
				     "  - name: %s\n"
				     "    sudo: ALL=(ALL) NOPASSWD:ALL\n"
				     "    shell: /bin/bash\n"
				     "    lock_passwd: true\n"
				     "    ssh_authorized_keys:\n"
				     "      - %s\n",
				     user, key);
	if (rc) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

char *atex_qemu_meta_data(const char *name)
{
	return atex_sprintf("instance-id: %s\nlocal-hostname: %s\n", name,
			    name);
}

int atex_qemu_usernet_port(int *port, const char *info)
{
	const char *line = info;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		char src[64], dst[64];
		int sport, dport;

		if (strstr(line, "HOST_FORWARD") &&
		    (!end || strstr(line, "HOST_FORWARD") < end) &&
		    sscanf(line, " %*s %*s %63s %d %63s %d", src, &sport, dst,
			   &dport) == 4 &&
		    dport == 22 && sport > 0 && sport < 65536) {
			*port = sport;
			return 0;
		}
		line = end ? end + 1 : NULL;
	}
	return atex_error_set(ATEX_ENOTFOUND,
			      "no ssh forwarding in QEMU's \"info usernet\"");
}

char *atex_qemu_key_text(const char *pub)
{
	const char *p = pub, *type, *data;
	size_t tlen, dlen;

	while (*p == ' ' || *p == '\t')
		p++;
	type = p;
	while (*p && *p != ' ' && *p != '\t' && *p != '\n')
		p++;
	tlen = (size_t)(p - type);
	while (*p == ' ' || *p == '\t')
		p++;
	data = p;
	while (*p && *p != ' ' && *p != '\t' && *p != '\n')
		p++;
	dlen = (size_t)(p - data);
	if (tlen == 0 || dlen == 0 ||
	    (strncmp(type, "ssh-", 4) != 0 && strncmp(type, "ecdsa-", 6) != 0 &&
	     strncmp(type, "sk-", 3) != 0)) {
		atex_error_set(ATEX_EINVAL, "not an OpenSSH public key");
		return NULL;
	}
	for (size_t i = 0; i < dlen; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
			    "yz"
			    "0123456789+/=",
			    data[i])) {
			atex_error_set(ATEX_EINVAL,
				       "not an OpenSSH public key");
			return NULL;
		}
	return atex_sprintf("%.*s %.*s", (int)tlen, type, (int)dlen, data);
}

/* A path given to the host: no control characters (they would break the
 * host scripts' line-based output), not empty. */
/* Where an escape sequence that starts at s[0] == ESC ends (the byte
 * after it): CSI (ESC [ ... final byte), OSC and other strings (ESC ] P
 * X ^ _ ... BEL or ESC \), or ESC, intermediate bytes and one more. */
static size_t escape_len(const char *s, size_t len)
{
	size_t i = 2;

	if (len < 2)
		return len;
	if (s[1] == '[') {
		while (i < len && !(s[i] >= 0x40 && s[i] <= 0x7e))
			i++;
		return i < len ? i + 1 : len;
	}
	if (strchr("]PX^_", s[1])) {
		for (; i < len; i++) {
			if (s[i] == '\a')
				return i + 1;
			if (s[i] == 0x1b && i + 1 < len && s[i + 1] == '\\')
				return i + 2;
		}
		return len;
	}
	/* nF sequences (ESC ( B: a charset): intermediates, then one. */
	for (i = 1; i < len && s[i] >= 0x20 && s[i] <= 0x2f; i++)
		;
	return i < len ? i + 1 : len;
}

/* Appends `line` (no newline in it) cut at `width` characters when it
 * has any, with "\n" before it unless it is the first. */
static int put_line(struct atex_buf *b, const char *line, size_t len, int width)
{
	size_t n = 0, chars = 0;
	int rc = 0;

	while (n < len && chars < (size_t)width) {
		size_t k = atex_utf8_len((const unsigned char *)line + n);

		n += k ? k : 1;
		chars++;
	}
	if (b->len)
		rc = atex_buf_putc(b, '\n');
	if (!rc)
		rc = atex_buf_put(b, line, n > len ? len : n);
	if (!rc && n < len)
		rc = atex_buf_puts(b, " [...]");
	return rc;
}

char *atex_qemu_console_clean(const char *raw, size_t len, int lines, int width)
{
	struct atex_buf text = ATEX_BUF_INIT, out = ATEX_BUF_INIT;
	struct atex_vec starts = ATEX_VEC_INIT;
	char *result = NULL;
	size_t from, i;

	/* The text without escapes and control characters but newlines
	 * (tabs become spaces); bytes that are no UTF-8 become '?'. */
	for (i = 0; i < len;) {
		unsigned char c = (unsigned char)raw[i];
		size_t k;

		if (c == 0x1b) {
			i += escape_len(raw + i, len - i);
			continue;
		}
		if (c == '\t')
			c = ' ';
		if (c == '\n' || c == ' ' || (c > 0x20 && c < 0x7f)) {
			if (atex_buf_putc(&text, (char)c))
				goto out;
			i++;
			continue;
		}
		if (c < 0x80) { /* other control characters: \r, \b, ... */
			i++;
			continue;
		}
		/* raw need not be NUL-terminated: a copy of the sequence. */
		{
			char seq[5] = {0};

			memcpy(seq, raw + i, len - i < 4 ? len - i : 4);
			k = atex_utf8_len((const unsigned char *)seq);
		}
		if (k ? atex_buf_put(&text, raw + i, k)
		      : atex_buf_putc(&text, '?'))
			goto out;
		i += k ? k : 1;
	}
	/* The last `lines` lines that hold more than blanks. */
	for (i = 0, from = 0; i <= text.len; i++) {
		if (i < text.len && text.ptr[i] != '\n')
			continue;
		size_t end = i;

		while (end > from && text.ptr[end - 1] == ' ')
			end--;
		if (end > from &&
		    (atex_vec_push(&starts, (void *)(text.ptr + from)) ||
		     atex_vec_push(&starts, (void *)(text.ptr + end))))
			goto out;
		from = i + 1;
	}
	for (i = starts.len > 2 * (size_t)lines ? starts.len - 2 * (size_t)lines
						: 0;
	     i < starts.len; i += 2) {
		const char *a = starts.items[i], *z = starts.items[i + 1];

		if (put_line(&out, a, (size_t)(z - a), width))
			goto out;
	}
	result = atex_buf_detach(&out);
out:
	if (!result)
		atex_error_oom();
	atex_buf_free(&text);
	atex_buf_free(&out);
	atex_vec_free(&starts);
	return result;
}

static bool path_ok(const char *s)
{
	if (!*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < ' ' || *p == 0x7f)
			return false;
	return true;
}

static bool login_ok(const char *s)
{
	if (!*s || *s == '-')
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
			    "YZ"
			    "0123456789._-",
			    *s))
			return false;
	return true;
}

int atex_qemu_options_check(const struct atex_qemu_provisioner_options *o)
{
	const char *n = "qemu provisioner";

	if (!o || !o->image || !*o->image)
		return atex_error_set(ATEX_EINVAL,
				      "%s: no image given (option image)", n);
	if (o->version < 1 ||
	    o->version > ATEX_QEMU_PROVISIONER_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "%s %s: options version %u unknown", n,
				      o->image, o->version);
	if (!path_ok(o->image))
		return atex_error_set(ATEX_EINVAL,
				      "%s: option image: control characters "
				      "in the path",
				      n);
#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			return atex_error_set(ATEX_EINVAL,                     \
					      "%s %s: " __VA_ARGS__);          \
	} while (0)
	CHECK(o->count >= 0, "option count: %d is negative", n, o->image,
	      o->count);
	CHECK(o->memory_mib == 0 || o->memory_mib >= 64,
	      "option memory_mib: %d (at least 64 MiB)", n, o->image,
	      o->memory_mib);
	CHECK(o->cpus >= 0 && o->cpus <= 1024, "option cpus: %d", n, o->image,
	      o->cpus);
	CHECK(o->accel >= ATEX_VM_ACCEL_AUTO && o->accel <= ATEX_VM_ACCEL_TCG,
	      "option accel: unknown value %d", n, o->image, (int)o->accel);
	CHECK(o->firmware >= ATEX_VM_FIRMWARE_BIOS &&
		      o->firmware <= ATEX_VM_FIRMWARE_UEFI,
	      "option firmware: unknown value %d", n, o->image,
	      (int)o->firmware);
	CHECK(o->key <= ATEX_VM_KEY_BOTH, "option key: unknown bits %#x", n,
	      o->image, o->key);
	CHECK(o->boot_timeout_s >= 0, "option boot_timeout_s: %d", n, o->image,
	      o->boot_timeout_s);
	CHECK(o->boot_attempts >= 0, "option boot_attempts: %d", n, o->image,
	      o->boot_attempts);
	CHECK(!o->kernel || path_ok(o->kernel),
	      "option kernel: empty or control characters", n, o->image);
	CHECK(!o->initrd || path_ok(o->initrd),
	      "option initrd: empty or control characters", n, o->image);
	CHECK(!o->workdir || path_ok(o->workdir),
	      "option workdir: empty or control characters", n, o->image);
	CHECK(o->kernel || (!o->initrd && !o->cmdline),
	      "options initrd and cmdline need option kernel", n, o->image);
	CHECK(!o->user || login_ok(o->user),
	      "option user: \"%s\" is no login name", n, o->image,
	      o->user ? o->user : "");
	CHECK(!o->identity || path_ok(o->identity),
	      "option identity: empty or control characters", n, o->image);
	CHECK(!o->qemu_program || path_ok(o->qemu_program),
	      "option qemu_program: empty or control characters", n, o->image);
	CHECK(!o->host || o->host->host, "option host: no host name", n,
	      o->image);
#undef CHECK
	return 0;
}

/* ------------------------------------------------------------------------
 * Running things on the host.
 */

/* `sh -c SCRIPT sh ARGS...` on the host (args NULL-terminated), feeding
 * `input` (may be NULL). A non-zero exit is ATEX_EEXTERNAL quoting its
 * stderr, prefixed with `what`. */
static int host_sh(struct atex_run_result *res, struct qemu_provisioner *p,
		   const char *what, const char *script,
		   const char *const *args, const char *input,
		   atex_cancel *cancel)
{
	struct atex_vec argv = ATEX_VEC_INIT;
	int rc;

	rc = atex_vec_push(&argv, "sh");
	if (!rc)
		rc = atex_vec_push(&argv, "-c");
	if (!rc)
		rc = atex_vec_push(&argv, (void *)script);
	if (!rc)
		rc = atex_vec_push(&argv, "sh");
	for (size_t i = 0; !rc && args[i]; i++)
		rc = atex_vec_push(&argv, (void *)args[i]);
	if (!rc)
		rc = atex_vec_push(&argv, NULL);
	if (rc)
		goto out;
	rc = atex_connection_run(res, p->host, (const char *const *)argv.items,
				 input, input ? strlen(input) : 0, HOST_CMD_MS,
				 cancel);
	if (rc) {
		atex_error_prefix("%s: %s", p->name, what);
		goto out;
	}
	if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0) {
		while (res->err_len && res->err[res->err_len - 1] == '\n')
			res->err[--res->err_len] = '\0';
		rc = atex_error_set(ATEX_EEXTERNAL, "%s: %s: %s", p->name, what,
				    *res->err ? res->err
					      : "failed on the host");
	}
out:
	atex_vec_free(&argv);
	return rc;
}

/* "atex-vm-" and 8 random hex digits. */
static char *random_name(void)
{
	unsigned int v;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (unsigned int)getpid() ^ (unsigned int)time(NULL) ^
		    (unsigned int)(atex_monotonic_ms() * 1000);
	return atex_sprintf("atex-vm-%08x", v);
}

/* ------------------------------------------------------------------------
 * One VM: the wrapper and QMP.
 */

/* Reads one line from the wrapper's stdout (QMP) into *line (caller
 * frees), waiting until `deadline` (monotonic ms). ATEX_EIO at EOF: the
 * wrapper, and so QEMU, ended. */
static int vm_read_line(char **line, struct qemu_vm *vm, double deadline,
			atex_cancel *cancel)
{
	for (;;) {
		char *nl = vm->rbuf.ptr
				   ? memchr(vm->rbuf.ptr, '\n', vm->rbuf.len)
				   : NULL;
		char buf[4096];
		ssize_t n;
		int rc, left;

		if (nl) {
			size_t len = (size_t)(nl - vm->rbuf.ptr);

			*line = atex_strndup(vm->rbuf.ptr, len);
			memmove(vm->rbuf.ptr, nl + 1, vm->rbuf.len - len - 1);
			vm->rbuf.len -= len + 1;
			vm->rbuf.ptr[vm->rbuf.len] = '\0';
			return *line ? 0 : ATEX_ENOMEM;
		}
		left = (int)(deadline - atex_monotonic_ms());
		if (left <= 0)
			return ATEX_ETIMEDOUT;
		rc = atex_wait_fd(vm->qmp_out, POLLIN, left, cancel);
		if (rc)
			return rc;
		n = read(vm->qmp_out, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ATEX_EIO;
		if (atex_buf_put(&vm->rbuf, buf, (size_t)n))
			return ATEX_ENOMEM;
	}
}

/* The console's end for an error, from its raw bytes: its last lines
 * cleaned up, or a note that it is empty. Caller frees. */
static char *console_text(const char *raw, size_t len)
{
	char *lines =
		atex_qemu_console_clean(raw, len, CONSOLE_LINES, CONSOLE_WIDTH);
	char *text;

	if (!lines)
		return NULL;
	if (*lines)
		text = atex_sprintf("its console ends with:\n%s", lines);
	else
		text = atex_strdup(
			"the serial console is empty (no firmware or boot "
			"loader output: is the image bootable with this "
			"firmware, BIOS or UEFI?)");
	free(lines);
	return text;
}

/* What the wrapper wrote to stderr (QEMU's errors, then the console's
 * end when QEMU exited, cleaned up), trimmed. Caller frees. */
static char *vm_stderr(const struct qemu_vm *vm)
{
	char buf[CONSOLE_BYTES + 4096];
	off_t size = vm->err_fd >= 0 ? lseek(vm->err_fd, 0, SEEK_END) : -1;
	off_t from = size > (off_t)sizeof(buf) - 1
			     ? size - (off_t)sizeof(buf) + 1
			     : 0;
	ssize_t n =
		size > 0 ? pread(vm->err_fd, buf, sizeof(buf) - 1, from) : 0;
	char *mark, *console, *text;
	size_t head;

	if (n < 0)
		n = 0;
	buf[n] = '\0';
	mark = memmem(buf, (size_t)n, CONSOLE_MARK "\n",
		      strlen(CONSOLE_MARK) + 1);
	head = mark ? (size_t)(mark - buf) : (size_t)n;
	while (head > 0 && (buf[head - 1] == '\n' || buf[head - 1] == '\r'))
		head--;
	if (!mark)
		return atex_strndup(buf, head);
	mark += strlen(CONSOLE_MARK) + 1;
	console = console_text(mark, (size_t)(buf + n - mark));
	text = console ? atex_sprintf("%.*s; %s", (int)head, buf, console)
		       : NULL;
	free(console);
	return text;
}

/* Records an error for a wrapper that ended (or misbehaved) with what it
 * said. */
static int vm_fail(struct qemu_vm *vm, int rc, const char *what)
{
	char *why;

	if (rc == ATEX_ECANCELED)
		return atex_error_set(rc, "%s: %s: canceled", vm->prov->name,
				      vm->name);
	why = vm_stderr(vm);
	rc = atex_error_set(rc == ATEX_ETIMEDOUT ? rc : ATEX_EEXTERNAL,
			    "%s: VM %s: %s%s%s", vm->prov->name, vm->name, what,
			    why && *why ? ":\n" : "", why ? why : "");
	free(why);
	return rc;
}

/* Sends one QMP command and returns its "return" value in *ret (may be
 * NULL), skipping events. */
static int vm_qmp(json_t **ret, struct qemu_vm *vm, const char *command,
		  int timeout_ms, atex_cancel *cancel)
{
	double deadline = atex_monotonic_ms() + timeout_ms;
	char *line = NULL;
	int rc;

	rc = atex_write_all(vm->qmp_in, command, strlen(command), cancel);
	if (!rc)
		rc = atex_write_all(vm->qmp_in, "\n", 1, cancel);
	while (!rc) {
		json_t *msg, *val;

		rc = vm_read_line(&line, vm, deadline, cancel);
		if (rc)
			break;
		msg = json_loads(line, 0, NULL);
		free(line);
		line = NULL;
		if (!msg)
			continue;
		if ((val = json_object_get(msg, "return"))) {
			if (ret)
				*ret = json_incref(val);
			json_decref(msg);
			return 0;
		}
		if ((val = json_object_get(msg, "error"))) {
			const char *desc =
				json_string_value(json_object_get(val, "desc"));

			rc = atex_error_set(ATEX_EEXTERNAL,
					    "%s: VM %s: QMP %s: %s",
					    vm->prov->name, vm->name, command,
					    desc ? desc : "error");
			json_decref(msg);
			return rc;
		}
		json_decref(msg);
	}
	return vm_fail(vm, rc, "no answer on QMP");
}

/* Starts the wrapper for argv (QEMU's command) and waits until it holds
 * the directory's lock. The process is recorded under the lock before
 * anything else can fail. */
static int vm_spawn(struct qemu_vm *vm, const struct atex_vec *qemu,
		    atex_cancel *cancel)
{
	struct qemu_provisioner *p = vm->prov;
	struct atex_spawn_options so = ATEX_SPAWN_OPTIONS_INIT;
	struct atex_vec argv = ATEX_VEC_INIT;
	atex_process *proc = NULL;
	char *errpath = NULL, *line = NULL;
	int rc;

	errpath = atex_sprintf("%s/%s.err", p->tmpdir, vm->name);
	if (!errpath)
		return ATEX_ENOMEM;
	vm->err_fd =
		open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (vm->err_fd < 0) {
		rc = atex_error_set(ATEX_EIO, "%s: %s: %s", p->name, errpath,
				    strerror(errno));
		goto out;
	}
	unlink(errpath);
	rc = atex_vec_push(&argv, "sh");
	if (!rc)
		rc = atex_vec_push(&argv, "-c");
	if (!rc)
		rc = atex_vec_push(&argv, (void *)WRAPPER);
	if (!rc)
		rc = atex_vec_push(&argv, "sh");
	if (!rc)
		rc = atex_vec_push(&argv, vm->dir);
	for (size_t i = 0; !rc && i < qemu->len; i++)
		rc = atex_vec_push(&argv, qemu->items[i]);
	if (!rc)
		rc = atex_vec_push(&argv, NULL);
	if (rc)
		goto out;
	so.argv = (const char *const *)argv.items;
	so.stdin_fd = ATEX_STDIO_PIPE;
	so.stdout_fd = ATEX_STDIO_PIPE;
	so.stderr_fd = vm->err_fd;
	atex_debug(COMPONENT, "%s: starting VM %s", p->name, vm->dir);
	rc = atex_connection_spawn(&proc, p->host, &so);
	if (rc) {
		atex_error_prefix("%s: VM %s", p->name, vm->name);
		goto out;
	}
	pthread_mutex_lock(&p->lock);
	vm->wrapper = proc;
	vm->qmp_in = atex_process_take_fd(proc, 0);
	vm->qmp_out = atex_process_take_fd(proc, 1);
	pthread_mutex_unlock(&p->lock);
	rc = vm_read_line(&line, vm, atex_monotonic_ms() + WRAPPER_MS, cancel);
	if (rc || strcmp(line, "locked") != 0)
		rc = vm_fail(vm, rc ? rc : ATEX_EIO,
			     "the wrapper did not start");
out:
	free(line);
	free(errpath);
	atex_vec_free(&argv);
	return rc;
}

/* Ends the VM: QMP quit (when asked), EOF on the wrapper's stdin, and
 * waits for the wrapper, which stops QEMU and removes the directory. */
static void vm_close(struct qemu_vm *vm, bool quit)
{
	if (vm->qmp_in < 0)
		return;
	if (quit) {
		static const char q[] = "{\"execute\": \"quit\"}\n";

		/* Best effort, never blocking (EOF follows anyway): a pipe
		 * with room takes these few bytes at once. */
		if (atex_wait_fd(vm->qmp_in, POLLOUT, 0, NULL) == 0)
			atex_write_all(vm->qmp_in, q, sizeof(q) - 1, NULL);
	}
	close(vm->qmp_in);
	vm->qmp_in = -1;
	if (vm->wrapper)
		atex_process_kill(vm->wrapper, SIGTERM);
}

static void vm_reap(struct qemu_vm *vm)
{
	int status;

	vm_close(vm, false);
	if (vm->wrapper) {
		if (atex_process_wait(&status, vm->wrapper, WRAPPER_EXIT_MS,
				      NULL) == ATEX_ETIMEDOUT) {
			atex_log(ATEX_LOG_WARNING, COMPONENT,
				 "%s: VM %s: the wrapper did not end; killing "
				 "it (%s may be left on the host)",
				 vm->prov->name, vm->name, vm->dir);
			atex_process_kill(vm->wrapper, SIGKILL);
			atex_process_wait(&status, vm->wrapper, -1, NULL);
		}
		atex_process_free(vm->wrapper);
		vm->wrapper = NULL;
	}
	if (vm->qmp_out >= 0)
		close(vm->qmp_out);
	vm->qmp_out = -1;
	if (vm->err_fd >= 0)
		close(vm->err_fd);
	vm->err_fd = -1;
	atex_buf_free(&vm->rbuf);
}

/* Destroys what one boot attempt made (not the memory). The connection
 * goes first, while the guest still answers its goodbye. */
static void vm_destroy(struct qemu_vm *vm)
{
	atex_connection_free(vm->conn);
	vm->conn = NULL;
	vm_close(vm, true);
	vm_reap(vm);
}

static void vm_free(struct qemu_vm *vm)
{
	if (!vm)
		return;
	atex_connection_free(vm->conn);
	free(vm->name);
	free(vm->dir);
	free(vm->label);
	atex_buf_free(&vm->rbuf);
	free(vm);
}

/* The last lines of the console, quoted for an error (or a note that
 * there is none). Caller frees. */
static char *vm_console(struct qemu_vm *vm)
{
	struct atex_run_result res = {0};
	const char *args[] = {vm->dir, NULL};
	char *text;

	if (host_sh(&res, vm->prov, "console", CONSOLE_TAIL, args, NULL,
		    NULL) == 0) {
		text = console_text(res.out ? res.out : "", res.out_len);
	} else {
		text = atex_sprintf("its console could not be read: %s",
				    atex_error_last());
	}
	atex_run_result_clear(&res);
	return text;
}

/* Waits `ms` for nothing but QEMU's end or the token; QMP events read
 * meanwhile are dropped. Returns ATEX_ETIMEDOUT (the normal case),
 * ATEX_ECANCELED, or an error when QEMU ended. */
static int vm_pause(struct qemu_vm *vm, int ms, atex_cancel *cancel)
{
	double deadline = atex_monotonic_ms() + ms;
	char *line = NULL;
	int rc;

	while ((rc = vm_read_line(&line, vm, deadline, cancel)) == 0) {
		free(line);
		line = NULL;
	}
	if (rc == ATEX_EIO)
		return vm_fail(vm, rc, "QEMU ended while booting");
	return rc;
}

/* The ssh connection to the VM's forwarded port (through the host when
 * QEMU runs elsewhere). */
static int vm_connection(struct qemu_vm *vm)
{
	struct qemu_provisioner *p = vm->prov;
	struct atex_ssh_options o = ATEX_SSH_OPTIONS_INIT;
	const char *options[2] = {NULL, NULL};
	char *proxy = NULL;
	atex_connection *conn = NULL;
	int rc;

	if (p->proxy) {
		proxy = atex_sprintf("ProxyCommand=%s", p->proxy);
		if (!proxy)
			return ATEX_ENOMEM;
		options[0] = proxy;
	}
	o.host = "127.0.0.1";
	o.port = vm->port;
	o.user = p->user;
	o.identity = p->key_path;
	o.options = options;
	o.connect_timeout_s =
		p->host_ssh ? SSH_CONNECT_REMOTE_S : SSH_CONNECT_LOCAL_S;
	rc = atex_ssh_connection_new(&conn, &o);
	free(proxy);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	vm->conn = conn;
	free(vm->label); /* an earlier attempt's */
	vm->label = atex_sprintf("qemu:%s (%s@127.0.0.1:%d%s%s)", vm->name,
				 p->user, vm->port, p->host_ssh ? " via " : "",
				 p->host_ssh ? p->host_name : "");
	pthread_mutex_unlock(&p->lock);
	return vm->label ? 0 : ATEX_ENOMEM;
}

/* Retries an ssh login running `true` until `deadline`. */
static int vm_wait_ssh(struct qemu_vm *vm, double deadline, char **last,
		       bool *cloud_init)
{
	struct qemu_provisioner *p = vm->prov;
	/* Readiness, and whether cloud-init is there to wait for, in one
	 * command: images without it pay nothing more. */
	static const char *const true_argv[] = {
		"sh", "-c",
		"command -v cloud-init >/dev/null 2>&1 && echo cloud-init; "
		"exit 0",
		NULL};
	int rc;

	for (;;) {
		struct atex_run_result res = {0};
		int left = (int)(deadline - atex_monotonic_ms());

		if (left <= 0)
			return ATEX_ETIMEDOUT;
		rc = atex_connection_connect(
			vm->conn, left < SSH_TRY_MS ? left : SSH_TRY_MS,
			p->cancel);
		if (!rc) {
			left = (int)(deadline - atex_monotonic_ms());
			rc = atex_connection_run(
				&res, vm->conn, true_argv, NULL, 0,
				left > 1000 ? left : 1000, p->cancel);
			if (!rc && WIFEXITED(res.status) &&
			    WEXITSTATUS(res.status) == 0) {
				*cloud_init = res.out &&
					      strstr(res.out, "cloud-init");
				atex_run_result_clear(&res);
				return 0;
			}
			if (!rc)
				atex_error_set(ATEX_EIO, "login ran `sh`: %s",
					       res.err_len ? res.err
							   : "it failed");
			atex_run_result_clear(&res);
			atex_connection_disconnect(vm->conn);
		}
		if (rc == ATEX_ECANCELED || rc == ATEX_ENOMEM)
			return rc;
		free(*last);
		*last = atex_strdup(atex_error_last());
		left = (int)(deadline - atex_monotonic_ms());
		rc = vm_pause(vm, left < SSH_RETRY_MS ? left : SSH_RETRY_MS,
			      p->cancel);
		if (rc != ATEX_ETIMEDOUT)
			return rc;
	}
}

/* Waits for cloud-init to finish (its config stage could otherwise race
 * the first test), within what is left of the boot timeout. Not fatal:
 * an error status or a wait cut short is logged as a warning and the VM
 * is handed out. Only a cancel (or no memory) fails. (No test boots an
 * image with cloud-init here: the test image has none.) */
static int vm_wait_cloud_init(struct qemu_vm *vm, double deadline)
{
	struct qemu_provisioner *p = vm->prov;
	static const char *const argv[] = {"cloud-init", "status", "--wait",
					   NULL};
	struct atex_run_result res = {0};
	int left = (int)(deadline - atex_monotonic_ms());
	int rc;

	atex_debug(COMPONENT, "%s: %s: waiting for cloud-init", p->name,
		   vm->name);
	rc = atex_connection_run(&res, vm->conn, argv, NULL, 0,
				 left > 1000 ? left : 1000, p->cancel);
	if (rc == ATEX_ECANCELED || rc == ATEX_ENOMEM)
		goto out;
	if (rc)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: %s: cloud-init did not finish within the boot "
			 "timeout of %d s (%s); handing the VM out anyway",
			 p->name, vm->name, p->boot_timeout_s,
			 atex_error_last());
	else if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
		atex_log(ATEX_LOG_WARNING, COMPONENT,
			 "%s: %s: `cloud-init status --wait` exited %d: %s%s",
			 p->name, vm->name,
			 WIFEXITED(res.status) ? WEXITSTATUS(res.status) : -1,
			 res.out ? res.out : "", res.err ? res.err : "");
	rc = 0;
out:
	atex_run_result_clear(&res);
	return rc;
}

/* Gives the VM a fresh name and directory (each attempt its own). */
static int vm_rename(struct qemu_vm *vm)
{
	struct qemu_provisioner *p = vm->prov;
	char *name = random_name();
	char *dir = name ? atex_sprintf("%s/%s", p->workdir, name) : NULL;

	if (!dir) {
		free(name);
		return ATEX_ENOMEM;
	}
	pthread_mutex_lock(&p->lock);
	free(vm->name);
	free(vm->dir);
	vm->name = name;
	vm->dir = dir;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* The common part of a QEMU command line. */
static void cmd_init(struct atex_qemu_cmd *c, struct qemu_vm *vm)
{
	struct qemu_provisioner *p = vm->prov;

	memset(c, 0, sizeof(*c));
	c->program = p->program;
	c->dir = vm->dir;
	c->name = vm->name;
	c->memory_mib = p->memory_mib;
	c->cpus = p->cpus;
}

/* Makes the overlay, the UEFI variables and the seed in DIR. */
static int vm_prepare(struct qemu_vm *vm, bool seed)
{
	struct qemu_provisioner *p = vm->prov;
	struct atex_run_result res = {0};
	char *user_data = NULL, *meta = NULL;
	int rc = ATEX_ENOMEM;

	if (seed) {
		user_data = atex_qemu_user_data(p->user, p->pubkey);
		meta = atex_qemu_meta_data(vm->name);
		if (!user_data || !meta)
			goto out;
	}
	{
		const char *args[] = {vm->dir,
				      p->image,
				      p->format,
				      p->ovmf_vars ? p->ovmf_vars : "",
				      seed ? p->iso_tool : "",
				      meta ? meta : "",
				      NULL};

		rc = host_sh(&res, p, "preparing the VM's disk", PREPARE, args,
			     user_data, p->cancel);
	}
out:
	atex_run_result_clear(&res);
	free(user_data);
	free(meta);
	return rc;
}

/* After "start": QMP's greeting, capabilities, and the forwarded port. */
static int vm_qmp_setup(struct qemu_vm *vm, bool need_port)
{
	atex_cancel *cancel = vm->prov->cancel;
	json_t *info = NULL;
	char *greeting = NULL;
	int rc;

	rc = atex_write_all(vm->qmp_in, "start\n", 6, cancel);
	if (!rc)
		rc = vm_read_line(&greeting, vm,
				  atex_monotonic_ms() + WRAPPER_MS, cancel);
	free(greeting);
	if (rc)
		return vm_fail(vm, rc, "QEMU did not start");
	rc = vm_qmp(NULL, vm, "{\"execute\": \"qmp_capabilities\"}", WRAPPER_MS,
		    cancel);
	if (rc || !need_port)
		return rc;
	rc = vm_qmp(&info, vm,
		    "{\"execute\": \"human-monitor-command\", \"arguments\": "
		    "{\"command-line\": \"info usernet\"}}",
		    WRAPPER_MS, cancel);
	if (!rc) {
		rc = atex_qemu_usernet_port(
			&vm->port,
			json_string_value(info) ? json_string_value(info) : "");
		if (rc)
			atex_error_prefix("%s: VM %s", vm->prov->name,
					  vm->name);
	}
	json_decref(info);
	return rc;
}

/* One boot: wrapper, files, QEMU, ssh. On failure the caller destroys. */
static int vm_boot_once(struct qemu_vm *vm, bool kvm, char **last, bool *retry)
{
	struct qemu_provisioner *p = vm->prov;
	struct atex_qemu_cmd c;
	struct atex_vec argv = ATEX_VEC_INIT;
	bool cloud_init = false;
	double deadline;
	int rc;

	cmd_init(&c, vm);
	c.kvm = kvm;
	c.ovmf_code = p->ovmf_code;
	c.kernel = p->kernel;
	c.initrd = p->initrd;
	c.cmdline = p->cmdline;
	c.credential_key = p->key_credential ? p->pubkey : NULL;
	c.seed = p->key_seed;
	c.disk = true;
	c.net = true;
	c.extra = (const char *const *)p->qemu_args.items;
	rc = atex_qemu_argv(&argv, &c);
	if (!rc)
		rc = vm_spawn(vm, &argv, p->cancel);
	if (!rc)
		rc = vm_prepare(vm, c.seed);
	deadline = atex_monotonic_ms() + p->boot_timeout_s * 1000.0;
	/* Only the boot itself is worth another attempt (QEMU exited, the
	 * guest did not answer): the steps before fail the same way on
	 * every attempt (qemu-img on a broken image, the seed tool...). */
	*retry = false;
	if (!rc) {
		rc = vm_qmp_setup(vm, true);
		*retry = rc != 0;
	}
	if (!rc)
		rc = vm_connection(vm);
	if (!rc) {
		rc = vm_wait_ssh(vm, deadline, last, &cloud_init);
		*retry = rc != 0;
	}
	if (!rc && cloud_init)
		rc = vm_wait_cloud_init(vm, deadline);
	atex_vec_free_all(&argv, free);
	return rc;
}

/* ------------------------------------------------------------------------
 * The accelerator probe.
 */

/* Boots a kernel (no disk) under KVM with -no-reboot: working KVM panics
 * ("Kernel panic" on the console) and QEMU exits within seconds. Or,
 * without a kernel, boots the image and looks for the kernel's banner or
 * a login prompt on the console. true: KVM works. */
static bool probe_kvm(struct qemu_provisioner *p, char *why, size_t size)
{
	struct qemu_vm vm = {
		.prov = p, .qmp_in = -1, .qmp_out = -1, .err_fd = -1};
	const char *kernel = p->kernel ? p->kernel : p->host_kernel;
	struct atex_qemu_cmd c;
	struct atex_vec argv = ATEX_VEC_INIT;
	bool ok = false;
	int rc;

	snprintf(why, size, "KVM boot probe failed");
	if (vm_rename(&vm))
		return false;
	cmd_init(&c, &vm);
	c.kvm = true;
	c.memory_mib = 256;
	c.cpus = 1;
	c.no_reboot = true;
	if (kernel) {
		c.kernel = kernel;
		c.cmdline = "console=ttyS0 panic=-1 root=/dev/nonexistent";
	} else {
		c.ovmf_code = p->ovmf_code;
		c.disk = true;
		c.extra = (const char *const *)p->qemu_args.items;
	}
	rc = atex_qemu_argv(&argv, &c);
	if (!rc)
		rc = vm_spawn(&vm, &argv, p->cancel);
	if (!rc && !kernel)
		rc = vm_prepare(&vm, false);
	if (!rc)
		rc = vm_qmp_setup(&vm, false);
	if (rc && rc != ATEX_ECANCELED) {
		/* QEMU's own first word on it, not our whole story. */
		char *err = vm_stderr(&vm);

		if (err && *err)
			snprintf(why, size, "KVM boot probe: QEMU failed: %.*s",
				 (int)strcspn(err, "\n"), err);
		else
			snprintf(why, size, "KVM boot probe failed: %s",
				 atex_error_last());
		free(err);
	}
	if (!rc && kernel) {
		/* QEMU exits by itself on the panic (-no-reboot). */
		rc = vm_pause(&vm, PROBE_KERNEL_MS, p->cancel);
		if (rc == ATEX_ETIMEDOUT) {
			snprintf(why, size,
				 "KVM boot probe timed out after %d s",
				 PROBE_KERNEL_MS / 1000);
		} else if (rc != ATEX_ECANCELED) {
			char *err = vm_stderr(&vm);

			ok = err && strstr(err, "Kernel panic");
			if (!ok)
				snprintf(why, size,
					 "no kernel panic in the KVM boot "
					 "probe");
			free(err);
		}
	} else if (!rc) {
		double deadline = atex_monotonic_ms() + PROBE_IMAGE_MS;
		const char *args[] = {vm.dir, NULL};

		snprintf(why, size,
			 "KVM boot probe (the image) showed no kernel in %d s",
			 PROBE_IMAGE_MS / 1000);
		while (vm_pause(&vm, 2000, p->cancel) == ATEX_ETIMEDOUT &&
		       atex_monotonic_ms() < deadline) {
			struct atex_run_result res = {0};

			ok = host_sh(&res, p, "probe", CONSOLE_BOOTED, args,
				     NULL, p->cancel) == 0;
			atex_run_result_clear(&res);
			if (ok)
				break;
		}
	}
	atex_error_clear();
	vm_destroy(&vm);
	atex_vec_free_all(&argv, free);
	free(vm.name);
	free(vm.dir);
	return ok;
}

/* The accelerator for the next boot, probed once per provisioner. */
static bool use_kvm(struct qemu_provisioner *p)
{
	char why[1024] = "";
	bool kvm;

	if (p->accel_opt != ATEX_VM_ACCEL_AUTO)
		return p->accel_opt == ATEX_VM_ACCEL_KVM;
	pthread_mutex_lock(&p->probe_lock);
	if (p->accel == ACCEL_UNKNOWN && !atex_cancel_fired(p->cancel)) {
		if (!p->host_kvm) {
			kvm = false;
			snprintf(why, sizeof(why), "no usable /dev/kvm");
		} else {
			kvm = probe_kvm(p, why, sizeof(why));
			if (kvm)
				snprintf(why, sizeof(why),
					 "KVM boot probe passed");
		}
		if (!atex_cancel_fired(p->cancel)) {
			p->accel = kvm ? ACCEL_KVM : ACCEL_TCG;
			atex_log(ATEX_LOG_INFO, COMPONENT, "%s: using %s (%s)",
				 p->name, kvm ? "kvm" : "tcg", why);
		}
	}
	kvm = p->accel == ACCEL_KVM;
	pthread_mutex_unlock(&p->probe_lock);
	return kvm;
}

/* Logs a multi-line message (an error quoting the console) as a warning
 * per line: a log message is one line, its newlines would be escaped. */
static void log_lines(struct qemu_vm *vm, const char *msg)
{
	/* Line by line with lengths (strcspn), no pointer arithmetic on
	 * strchr's NULL: gcc 12 with the sanitizers took that for a null
	 * '%.*s' argument (-Wformat-overflow). */
	for (bool first = true; msg; first = false) {
		int n = (int)strcspn(msg, "\n");

		if (first)
			atex_log(ATEX_LOG_WARNING, COMPONENT, "%.*s", n, msg);
		else
			atex_log(ATEX_LOG_WARNING, COMPONENT, "%s: %s | %.*s",
				 vm->prov->name, vm->name, n, msg);
		msg = msg[n] ? msg + n + 1 : NULL;
	}
}

/* Boots the VM, retrying a VM that does not answer. */
static int vm_provision(struct qemu_vm *vm)
{
	struct qemu_provisioner *p = vm->prov;
	char *last = NULL, *console = NULL;
	bool kvm = use_kvm(p), retry = false;
	int rc = 0;

	for (int attempt = 1; attempt <= p->boot_attempts; attempt++) {
		if (atex_cancel_fired(p->cancel)) {
			rc = atex_error_set(ATEX_ECANCELED, "%s: canceled",
					    p->name);
			break;
		}
		rc = vm_rename(vm);
		if (rc)
			break;
		atex_log(ATEX_LOG_INFO, COMPONENT,
			 "%s: booting %s under %s (attempt %d of %d)", p->name,
			 vm->name, kvm ? "kvm" : "tcg", attempt,
			 p->boot_attempts);
		rc = vm_boot_once(vm, kvm, &last, &retry);
		if (!rc) {
			atex_log(ATEX_LOG_INFO, COMPONENT, "%s: %s is ready",
				 p->name, vm->label);
			break;
		}
		if (rc == ATEX_ECANCELED || rc == ATEX_ENOMEM)
			break;
		/* !retry: a deterministic failure, told as it is, once. */
		if (retry && rc == ATEX_ETIMEDOUT) {
			free(console);
			console = vm_console(vm);
			rc = atex_error_set(
				ATEX_ETIMEDOUT,
				"%s: VM %s did not answer ssh as %s within "
				"the boot timeout of %d s (attempt %d of %d; "
				"last ssh error: %s); %s",
				p->name, vm->name, p->user, p->boot_timeout_s,
				attempt, p->boot_attempts, last ? last : "none",
				console ? console : "(no console)");
		} else if (retry) {
			atex_error_prefix("attempt %d of %d", attempt,
					  p->boot_attempts);
		}
		if (retry)
			log_lines(vm, atex_error_last());
		{
			/* vm_destroy may set errors of its own. */
			char *msg = atex_strdup(atex_error_last());

			vm_destroy(vm);
			atex_error_set(rc, "%s", msg ? msg : "failed");
			free(msg);
		}
		if (!retry)
			break;
	}
	/* A timeout here is a failure for good, not "none ready yet". */
	if (rc == ATEX_ETIMEDOUT)
		rc = atex_error_set(ATEX_EEXTERNAL, "%s", atex_error_last());
	free(last);
	free(console);
	return rc;
}

/* ------------------------------------------------------------------------
 * Starter threads and the books (as in podman.c).
 */

static void vec_remove(struct atex_vec *v, void *item)
{
	for (size_t i = 0; i < v->len; i++) {
		if (v->items[i] != item)
			continue;
		memmove(v->items + i, v->items + i + 1,
			(v->len - i - 1) * sizeof(*v->items));
		v->len--;
		return;
	}
}

static void busy_done(struct qemu_provisioner *p)
{
	p->busy--;
	pthread_cond_broadcast(&p->idle);
}

/* After the boot: queue the VM, or take it off the books. Returns
 * whether the caller must destroy and free it. Lock held. */
static bool vm_arrived(struct qemu_vm *vm, int rc, const char *message)
{
	struct qemu_provisioner *p = vm->prov;

	if (rc == 0 && !vm->discard && !p->aborted && p->started) {
		rc = atex_remote_queue_push(p->queue, &vm->base);
		if (rc == 0) {
			vm->state = VM_READY;
			return false;
		}
		message = "out of memory";
	}
	if (rc < 0 && !vm->discard && !p->aborted && p->started) {
		atex_remote_queue_fail(p->queue, rc, message);
		p->wanted = 0;
	}
	vm->state = VM_GONE;
	p->active--;
	vec_remove(&p->vms, vm);
	return true;
}

static void *starter_main(void *arg)
{
	struct starter *s = arg;
	struct qemu_vm *vm = s->vm;
	struct qemu_provisioner *p = vm->prov;
	char *message = NULL;
	bool remove;
	int rc;

	rc = vm_provision(vm);
	if (rc < 0)
		message = strdup(atex_error_last());
	pthread_mutex_lock(&p->lock);
	remove = vm_arrived(vm, rc, message ? message : "failed");
	pthread_mutex_unlock(&p->lock);
	if (remove) {
		vm_destroy(vm);
		vm_free(vm);
	}
	free(message);
	pthread_mutex_lock(&p->lock);
	s->done = true;
	busy_done(p);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void join_starters(struct qemu_provisioner *p, bool all)
{
	size_t kept = 0;

	for (size_t i = 0; i < p->threads.len; i++) {
		struct starter *s = p->threads.items[i];

		if (!s->done && !all) {
			p->threads.items[kept++] = s;
			continue;
		}
		pthread_join(s->thread, NULL);
		free(s);
	}
	p->threads.len = kept;
}

static int spawn_starter(struct qemu_provisioner *p)
{
	struct qemu_vm *vm;
	struct starter *s = NULL;
	int rc = ATEX_ENOMEM, err;

	join_starters(p, false);
	vm = atex_calloc(1, sizeof(*vm));
	if (!vm)
		return ATEX_ENOMEM;
	vm->base.ops = &remote_ops;
	vm->prov = p;
	vm->qmp_in = vm->qmp_out = vm->err_fd = -1;
	s = atex_calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	s->vm = vm;
	if (atex_vec_push(&p->vms, vm) < 0)
		goto fail;
	if (atex_vec_push(&p->threads, s) < 0)
		goto fail_unlist;
	err = pthread_create(&s->thread, NULL, starter_main, s);
	if (err) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot start a thread: %s",
				    p->name, strerror(err));
		atex_vec_pop(&p->threads);
		goto fail_unlist;
	}
	p->busy++;
	return 0;
fail_unlist:
	vec_remove(&p->vms, vm);
fail:
	free(s);
	vm_free(vm);
	return rc;
}

static int start_more(struct qemu_provisioner *p)
{
	while (p->started && !p->aborted && p->wanted > 0 &&
	       p->active < p->max) {
		int rc = spawn_starter(p);

		if (rc < 0) {
			p->wanted = 0;
			return rc;
		}
		p->wanted--;
		p->active++;
	}
	return 0;
}

/* Takes every booted VM off the books (queued ones out of the queue)
 * into `out`; booting ones are left to their threads, marked unwanted.
 * Lock held. */
static int take_all(struct qemu_provisioner *p, struct atex_vec *out)
{
	int rc = 0;

	while (atex_remote_queue_take(p->queue))
		;
	for (size_t i = 0; i < p->vms.len; i++) {
		struct qemu_vm *vm = p->vms.items[i];

		if (vm->state == VM_STARTING)
			vm->discard = true;
		if (vm->state != VM_READY && vm->state != VM_HANDED)
			continue;
		vm->state = VM_GONE;
		p->active--;
		if (atex_vec_push(out, vm) < 0)
			rc = ATEX_ENOMEM;
	}
	return rc;
}

/* Destroys VMs taken by take_all: every wrapper told to stop first, then
 * waited for, so that N VMs take as long as one. Connections of VMs
 * handed out stay for release (the user may hold them). */
static void destroy_taken(struct qemu_provisioner *p, struct atex_vec *taken)
{
	for (size_t i = 0; i < taken->len; i++)
		vm_close(taken->items[i], true);
	for (size_t i = 0; i < taken->len; i++) {
		struct qemu_vm *vm = taken->items[i];

		if (!vm->handed) {
			atex_connection_free(vm->conn);
			vm->conn = NULL;
		}
		vm_reap(vm);
	}
	(void)p;
}

static void wait_idle(struct qemu_provisioner *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->busy > 0)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------------------
 * Remote operations.
 */

static atex_connection *remote_connection(atex_remote *r)
{
	return to_vm(r)->conn;
}

static const char *remote_name(const atex_remote *r)
{
	return to_vm(r)->label;
}

static void remote_release(atex_remote *r)
{
	struct qemu_vm *vm = to_vm(r);
	struct qemu_provisioner *p = vm->prov;
	bool destroy;

	pthread_mutex_lock(&p->lock);
	destroy = vm->state == VM_HANDED;
	if (destroy) {
		vm->state = VM_GONE;
		p->active--;
		p->busy++;
	}
	vec_remove(&p->vms, vm);
	if (start_more(p) < 0)
		atex_log(ATEX_LOG_WARNING, COMPONENT, "%s", atex_error_last());
	pthread_mutex_unlock(&p->lock);
	if (destroy) {
		atex_debug(COMPONENT, "%s: releasing %s", p->name, vm->name);
		vm_destroy(vm);
		pthread_mutex_lock(&p->lock);
		busy_done(p);
		pthread_mutex_unlock(&p->lock);
	}
	vm_free(vm);
}

static const struct atex_remote_ops remote_ops = {
	.version = ATEX_REMOTE_OPS_VERSION,
	.connection = remote_connection,
	.name = remote_name,
	.release = remote_release,
};

/* ------------------------------------------------------------------------
 * start(): the key, the host check, the orphan sweep.
 */

static void remove_tmpdir(struct qemu_provisioner *p)
{
	if (!p->tmpdir)
		return;
	/* Removed before its lock is let go: a sweeper never takes a
	 * directory still in use. */
	atex_tmpdir_remove(p->tmpdir);
	if (p->tmpdir_lock >= 0)
		close(p->tmpdir_lock);
	p->tmpdir_lock = -1;
	free(p->tmpdir);
	p->tmpdir = NULL;
}

static const char *local_tmp(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp && *tmp ? tmp : "/tmp";
}

int atex_qemu_sweep_tmp(const char *tmp)
{
	return atex_tmpdir_sweep(tmp, "atex-qemu", NULL, NULL);
}

/* Makes the private directory, first sweeping those that killed atex
 * processes left behind (their lock is free). */
static int make_tmpdir(struct qemu_provisioner *p)
{
	if (p->tmpdir)
		return 0;
	if (atex_tmpdir_make(&p->tmpdir, &p->tmpdir_lock, local_tmp(),
			     "atex-qemu", NULL, NULL))
		return atex_error_prefix("%s", p->name);
	return 0;
}

/* The login key: opts.identity, or one generated here. */
static int setup_key(struct qemu_provisioner *p)
{
	char *pub = NULL, *text = NULL;
	size_t len;
	int rc;

	free(p->key_path);
	p->key_path = p->identity_opt ? atex_strdup(p->identity_opt)
				      : atex_path_join(p->tmpdir, "id");
	if (!p->key_path)
		return ATEX_ENOMEM;
	if (!p->identity_opt) {
		rc = atex_provisioner_keygen(p->key_path, "atex-qemu", p->name);
		if (rc)
			return rc;
	}
	pub = atex_sprintf("%s.pub", p->key_path);
	if (!pub)
		return ATEX_ENOMEM;
	rc = atex_file_read(&text, &len, pub);
	if (rc) {
		atex_error_prefix("%s: option identity: no public key",
				  p->name);
		goto out;
	}
	free(p->pubkey);
	p->pubkey = atex_qemu_key_text(text);
	if (!p->pubkey)
		rc = atex_error_prefix("%s: %s", p->name, pub);
out:
	free(pub);
	free(text);
	return rc;
}

/* ProxyCommand=... reaching 127.0.0.1:%p through the host. */
static int setup_proxy(struct qemu_provisioner *p)
{
	const struct atex_ssh_options *h = &p->host_opts;
	struct atex_buf b = ATEX_BUF_INIT;
	struct atex_vec argv = ATEX_VEC_INIT;
	char *port = NULL, *kh = NULL, *cto = NULL;
	int rc = 0;

	free(p->proxy);
	p->proxy = NULL;
	if (!p->host_ssh)
		return 0;
	port = atex_sprintf("%d", h->port ? h->port : 22);
	/* Quoted for ssh, which splits the value at spaces. */
	kh = atex_sprintf("UserKnownHostsFile=\"%s/host_known_hosts\"",
			  p->tmpdir);
	cto = atex_sprintf("ConnectTimeout=%d",
			   h->connect_timeout_s ? h->connect_timeout_s : 10);
	if (!port || !kh || !cto) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	rc = atex_vec_push(&argv,
			   (void *)(h->ssh_program ? h->ssh_program : "ssh"));
	if (!rc && h->identity) {
		rc = atex_vec_push(&argv, "-i");
		if (!rc)
			rc = atex_vec_push(&argv, (void *)h->identity);
		if (!rc)
			rc = atex_vec_push(&argv, "-oIdentitiesOnly=yes");
	}
	if (!rc)
		rc = atex_vec_push(&argv, "-p");
	if (!rc)
		rc = atex_vec_push(&argv, port);
	if (!rc && h->user) {
		rc = atex_vec_push(&argv, "-l");
		if (!rc)
			rc = atex_vec_push(&argv, (void *)h->user);
	}
	for (size_t i = 0; !rc && h->options && h->options[i]; i++) {
		rc = atex_vec_push(&argv, "-o");
		if (!rc)
			rc = atex_vec_push(&argv, (void *)h->options[i]);
	}
	/* The caller's options first: ssh keeps the first value. */
	const char *defaults[] = {"-o",
				  "BatchMode=yes",
				  "-o",
				  cto,
				  "-o",
				  h->strict_host_keys
					  ? "StrictHostKeyChecking=yes"
					  : "StrictHostKeyChecking=accept-new",
				  "-o",
				  h->strict_host_keys ? "LogLevel=ERROR" : kh,
				  "-o",
				  "LogLevel=ERROR",
				  "-W",
				  "127.0.0.1:%p",
				  "--",
				  h->host};
	for (size_t i = 0; !rc && i < ATEX_ARRAY_SIZE(defaults); i++)
		rc = atex_vec_push(&argv, (void *)defaults[i]);
	for (size_t i = 0; !rc && i < argv.len; i++) {
		const char *arg = argv.items[i];
		struct atex_buf q = ATEX_BUF_INIT;

		if (i)
			rc = atex_buf_putc(&b, ' ');
		if (!rc)
			rc = atex_shell_quote(&q, arg);
		/* ssh expands %-tokens in ProxyCommand: a literal % is %%,
		 * except in our own %p. */
		for (const char *s = atex_buf_cstr(&q); !rc && *s; s++)
			rc = *s == '%' && strcmp(arg, "127.0.0.1:%p") != 0
				     ? atex_buf_puts(&b, "%%")
				     : atex_buf_putc(&b, *s);
		atex_buf_free(&q);
	}
	if (!rc)
		p->proxy = atex_buf_detach(&b);
	if (!rc && !p->proxy)
		rc = ATEX_ENOMEM;
out:
	atex_buf_free(&b);
	atex_vec_free(&argv);
	free(port);
	free(kh);
	free(cto);
	return rc;
}

static int set_str(char **dst, const char *value)
{
	free(*dst);
	*dst = atex_strdup(value);
	return *dst ? 0 : ATEX_ENOMEM;
}

/* Reads HOST_CHECK's output. */
static int parse_check(struct qemu_provisioner *p, char *out)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{"workdir", offsetof(struct qemu_provisioner, workdir)},
		{"image", offsetof(struct qemu_provisioner, image)},
		{"kernel", offsetof(struct qemu_provisioner, kernel)},
		{"initrd", offsetof(struct qemu_provisioner, initrd)},
		{"hostkernel", offsetof(struct qemu_provisioner, host_kernel)},
		{"ovmf_code", offsetof(struct qemu_provisioner, ovmf_code)},
		{"ovmf_vars", offsetof(struct qemu_provisioner, ovmf_vars)},
		{"iso", offsetof(struct qemu_provisioner, iso_tool)},
	};
	char *line = out, *json = NULL;
	json_t *info;
	int rc = 0;

	while (!rc && line && *line) {
		char *end = strchr(line, '\n');
		char *eq;

		if (end)
			*end = '\0';
		if (strcmp(line, "json") == 0) {
			json = end ? end + 1 : NULL;
			break;
		}
		eq = strchr(line, '=');
		if (eq) {
			*eq = '\0';
			if (strcmp(line, "kvm") == 0)
				p->host_kvm = strcmp(eq + 1, "1") == 0;
			else if (strcmp(line, "swept") == 0)
				atex_log(ATEX_LOG_INFO, COMPONENT,
					 "%s: removed the orphaned VM %s",
					 p->name, eq + 1);
			for (size_t i = 0; i < ATEX_ARRAY_SIZE(keys); i++)
				if (strcmp(line, keys[i].key) == 0)
					rc = set_str((char **)((char *)p +
							       keys[i].off),
						     eq + 1);
		}
		line = end ? end + 1 : NULL;
	}
	info = json ? json_loads(json, 0, NULL) : NULL;
	if (!rc && json_is_string(json_object_get(info, "format")))
		rc = set_str(&p->format, json_string_value(json_object_get(
						 info, "format")));
	else if (!rc)
		rc = atex_error_set(ATEX_EEXTERNAL,
				    "%s: qemu-img info on the image failed",
				    p->name);
	json_decref(info);
	if (!rc && strcmp(p->format, "qcow2") != 0 &&
	    strcmp(p->format, "raw") != 0)
		rc = atex_error_set(ATEX_EINVAL,
				    "%s: option image: format %s (qcow2 or "
				    "raw)",
				    p->name, p->format);
	return rc;
}

static int check_host(struct qemu_provisioner *p)
{
	struct atex_run_result res = {0};
	const char *args[] = {p->image_opt,
			      p->kernel_opt ? p->kernel_opt : "",
			      p->initrd_opt ? p->initrd_opt : "",
			      p->workdir_opt ? p->workdir_opt : "",
			      p->program,
			      p->uefi ? "1" : "0",
			      p->key_seed ? "1" : "0",
			      NULL};
	int rc;

	rc = atex_connection_connect(p->host, HOST_CMD_MS, p->cancel);
	if (rc)
		return atex_error_prefix("%s: host", p->name);
	rc = host_sh(&res, p, "checking the host", HOST_CHECK, args, NULL,
		     p->cancel);
	if (!rc)
		rc = parse_check(p, res.out);
	atex_run_result_clear(&res);
	return rc;
}

/* ------------------------------------------------------------------------
 * Provisioner operations.
 */

static int prov_start(atex_provisioner *base)
{
	struct qemu_provisioner *p = to_prov(base);
	int rc;

	pthread_mutex_lock(&p->lock);
	rc = p->aborted ? atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name)
			: 0;
	pthread_mutex_unlock(&p->lock);
	if (rc)
		return rc;
	rc = make_tmpdir(p);
	if (!rc)
		rc = setup_key(p);
	if (!rc)
		rc = setup_proxy(p);
	if (!rc)
		rc = check_host(p);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	if (p->aborted)
		rc = atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name);
	else
		p->started = true;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int prov_provision(atex_provisioner *base, int count)
{
	struct qemu_provisioner *p = to_prov(base);
	int rc;

	if (count < 0 && count != ATEX_PROVISION_UNLIMITED)
		return atex_error_set(ATEX_EINVAL, "%s: provision(%d)", p->name,
				      count);
	pthread_mutex_lock(&p->lock);
	if (p->aborted) {
		rc = atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name);
		goto out;
	}
	if (!p->started) {
		rc = atex_error_set(ATEX_EINVAL, "%s: not started", p->name);
		goto out;
	}
	atex_remote_queue_fail(p->queue, 0, NULL);
	if (count == ATEX_PROVISION_UNLIMITED || count > INT_MAX - p->wanted)
		p->wanted = INT_MAX;
	else
		p->wanted += count;
	rc = start_more(p);
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int prov_get_remote(atex_remote **out, atex_provisioner *base,
			   int timeout_ms)
{
	struct qemu_provisioner *p = to_prov(base);
	atex_remote *r = NULL;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->aborted)
		rc = atex_error_set(ATEX_ECANCELED, "%s: aborted", p->name);
	else if (!p->started)
		rc = atex_error_set(ATEX_EINVAL, "%s: not started", p->name);
	else
		p->busy++;
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		return rc;

	rc = atex_remote_queue_pop(&r, p->queue, timeout_ms, p->cancel);

	pthread_mutex_lock(&p->lock);
	if (rc == 0 && to_vm(r)->state == VM_READY) {
		to_vm(r)->state = VM_HANDED;
		to_vm(r)->handed = true;
		*out = r;
	} else if (rc == 0 || (rc == ATEX_ECANCELED && !p->aborted)) {
		rc = atex_error_set(ATEX_ECANCELED, "%s: %s", p->name,
				    p->aborted ? "aborted" : "stopped");
	}
	busy_done(p);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int prov_clear(atex_provisioner *base)
{
	struct qemu_provisioner *p = to_prov(base);

	pthread_mutex_lock(&p->lock);
	p->wanted = 0;
	for (size_t i = 0; i < p->vms.len; i++) {
		struct qemu_vm *vm = p->vms.items[i];

		if (vm->state == VM_STARTING)
			vm->discard = true;
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void prov_abort(atex_provisioner *base)
{
	struct qemu_provisioner *p = to_prov(base);
	struct atex_vec taken = ATEX_VEC_INIT;

	pthread_mutex_lock(&p->lock);
	p->aborted = true;
	p->wanted = 0;
	take_all(p, &taken);
	pthread_mutex_unlock(&p->lock);
	/* Booting VMs: their threads see the token and destroy them. */
	atex_cancel_fire(p->cancel);
	destroy_taken(p, &taken);
	atex_vec_free(&taken);
	wait_idle(p);
	atex_debug(COMPONENT, "%s: aborted", p->name);
}

/* Joins the threads and frees the VMs nobody holds. */
static void reap(struct qemu_provisioner *p)
{
	size_t kept = 0;

	pthread_mutex_lock(&p->lock);
	join_starters(p, true);
	atex_vec_free(&p->threads);
	for (size_t i = 0; i < p->vms.len; i++) {
		struct qemu_vm *vm = p->vms.items[i];

		if (vm->handed)
			p->vms.items[kept++] = vm;
		else
			vm_free(vm);
	}
	p->vms.len = kept;
	pthread_mutex_unlock(&p->lock);
}

static int prov_stop(atex_provisioner *base)
{
	struct qemu_provisioner *p = to_prov(base);
	struct atex_vec taken = ATEX_VEC_INIT;
	int rc;

	pthread_mutex_lock(&p->lock);
	p->started = false;
	p->wanted = 0;
	rc = take_all(p, &taken);
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		atex_error_set(rc, "%s: out of memory while stopping", p->name);
	atex_cancel_fire(p->cancel);
	destroy_taken(p, &taken);
	atex_vec_free(&taken);
	wait_idle(p);
	reap(p);
	atex_remote_queue_fail(p->queue, 0, NULL);
	remove_tmpdir(p);
	if (!p->aborted)
		atex_cancel_reset(p->cancel);
	return rc;
}

static int prov_ready_fd(const atex_provisioner *base)
{
	return atex_remote_queue_fd(to_prov(base)->queue);
}

static const char *prov_name(const atex_provisioner *base)
{
	return to_prov(base)->name;
}

static void prov_free(atex_provisioner *base)
{
	struct qemu_provisioner *p = to_prov(base);

	if (!p)
		return;
	if (p->queue && p->cancel)
		prov_stop(base);
	remove_tmpdir(p);
	for (size_t i = 0; i < p->vms.len; i++)
		vm_free(p->vms.items[i]);
	atex_vec_free(&p->vms);
	atex_remote_queue_free(p->queue);
	atex_cancel_free(p->cancel);
	atex_connection_free(p->host);
	atex_vec_free_all(&p->qemu_args, free);
	char **strs[] = {
		&p->name,     &p->image_opt,  &p->kernel_opt,	&p->initrd_opt,
		&p->cmdline,  &p->user,	      &p->identity_opt, &p->workdir_opt,
		&p->program,  &p->host_name,  &p->key_path,	&p->pubkey,
		&p->proxy,    &p->image,      &p->format,	&p->kernel,
		&p->initrd,   &p->workdir,    &p->ovmf_code,	&p->ovmf_vars,
		&p->iso_tool, &p->host_kernel};
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(strs); i++)
		free(*strs[i]);
	free((char *)p->host_opts.host);
	free((char *)p->host_opts.user);
	free((char *)p->host_opts.identity);
	free((char *)p->host_opts.ssh_program);
	if (p->host_opts.options) {
		for (size_t i = 0; p->host_opts.options[i]; i++)
			free((char *)p->host_opts.options[i]);
		free((void *)p->host_opts.options);
	}
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->probe_lock);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct atex_provisioner_ops qemu_ops = {
	.version = ATEX_PROVISIONER_OPS_VERSION,
	.start = prov_start,
	.stop = prov_stop,
	.provision = prov_provision,
	.get_remote = prov_get_remote,
	.clear = prov_clear,
	.abort = prov_abort,
	.ready_fd = prov_ready_fd,
	.name = prov_name,
	.free = prov_free,
};

/* ------------------------------------------------------------------------
 * Construction.
 */

static char *dup_opt(const char *s, int *rc)
{
	char *d;

	if (!s)
		return NULL;
	d = atex_strdup(s);
	if (!d)
		*rc = ATEX_ENOMEM;
	return d;
}

/* A copy of the host's ssh options (for the ProxyCommand). */
static int copy_host(struct qemu_provisioner *p,
		     const struct atex_ssh_options *h)
{
	int rc = 0;
	size_t n = 0;

	p->host_opts = *h;
	p->host_opts.host = dup_opt(h->host, &rc);
	p->host_opts.user = dup_opt(h->user, &rc);
	p->host_opts.identity = dup_opt(h->identity, &rc);
	p->host_opts.ssh_program = dup_opt(h->ssh_program, &rc);
	p->host_opts.options = NULL;
	while (h->options && h->options[n])
		n++;
	if (h->options) {
		const char **o = atex_calloc(n + 1, sizeof(*o));

		if (!o)
			return ATEX_ENOMEM;
		for (size_t i = 0; i < n; i++)
			o[i] = dup_opt(h->options[i], &rc);
		p->host_opts.options = o;
	}
	if (!rc)
		p->host_name = atex_sprintf("%s%s%s:%d", h->user ? h->user : "",
					    h->user ? "@" : "", h->host,
					    h->port ? h->port : 22);
	return rc ? rc : p->host_name ? 0 : ATEX_ENOMEM;
}

static int prov_init(struct qemu_provisioner *p,
		     const struct atex_qemu_provisioner_options *o)
{
	int rc = 0;

	p->name = atex_sprintf("qemu:%s", o->image);
	p->image_opt = dup_opt(o->image, &rc);
	p->kernel_opt = dup_opt(o->kernel, &rc);
	p->initrd_opt = dup_opt(o->initrd, &rc);
	p->cmdline = dup_opt(o->cmdline, &rc);
	p->user = dup_opt(o->user ? o->user : "root", &rc);
	p->identity_opt = dup_opt(o->identity, &rc);
	p->workdir_opt = dup_opt(o->workdir, &rc);
	p->program = dup_opt(
		o->qemu_program ? o->qemu_program : "qemu-system-x86_64", &rc);
	if (rc || !p->name)
		return ATEX_ENOMEM;
	if (atex_vec_push_copies(&p->qemu_args, o->qemu_args) < 0 ||
	    atex_vec_push(&p->qemu_args, NULL) < 0)
		return ATEX_ENOMEM;
	p->max = o->count > 0 ? o->count : 1;
	p->memory_mib = o->memory_mib > 0 ? o->memory_mib : 1024;
	p->cpus = o->cpus > 0 ? o->cpus : 1;
	p->boot_timeout_s = o->boot_timeout_s > 0 ? o->boot_timeout_s : 300;
	p->boot_attempts = o->boot_attempts > 0 ? o->boot_attempts : 2;
	p->accel_opt = o->accel;
	p->uefi = o->firmware == ATEX_VM_FIRMWARE_UEFI;
	p->key_credential = !o->key || (o->key & ATEX_VM_KEY_CREDENTIAL);
	p->key_seed = !o->key || (o->key & ATEX_VM_KEY_SEED);
	if (o->host) {
		p->host_ssh = true;
		rc = copy_host(p, o->host);
		if (!rc)
			rc = atex_ssh_connection_new(&p->host, o->host);
		if (rc)
			return atex_error_prefix("%s: option host", p->name);
	} else {
		rc = atex_local_connection_new(&p->host, NULL);
	}
	if (!rc)
		rc = atex_remote_queue_new(&p->queue, p->name);
	if (!rc)
		rc = atex_cancel_new(&p->cancel);
	return rc;
}

int atex_qemu_provisioner_new(atex_provisioner **out,
			      const struct atex_qemu_provisioner_options *opts)
{
	struct qemu_provisioner *p;
	int rc;

	if (!out)
		return atex_error_set(ATEX_EINVAL, "qemu provisioner: no out");
	rc = atex_qemu_options_check(opts);
	if (rc)
		return rc;
	p = atex_calloc(1, sizeof(*p));
	if (!p)
		return ATEX_ENOMEM;
	p->base.ops = &qemu_ops;
	p->tmpdir_lock = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->probe_lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	rc = prov_init(p, opts);
	if (rc < 0) {
		prov_free(&p->base);
		return rc;
	}
	*out = &p->base;
	return 0;
}
