/*
 * ssh.c - the OpenSSH connection: commands run through the `ssh` client
 * binary over a private ControlMaster, trees are copied with rsync (or a
 * tar stream when rsync is missing), both ways (copy_from: a file, when
 * rsync is missing, is a `cat` into a temporary file renamed over dst).
 *
 * Why the client binary and not libssh: it is what the field trusts, it
 * reads the user's ~/.ssh/config, agent and known_hosts exactly as an
 * interactive `ssh` would, and every command becomes a plain local process
 * (the mux client), so atex_process serves it like any other.
 *
 * The master. connect() makes a private directory (mkdtemp, 0700) and
 * starts `ssh -M -N -S DIR/m -o ControlPersist=no ... host` in the
 * foreground, as our own child: we know its pid, hold a pidfd on it and
 * can always kill it, so disconnect leaves nothing behind. (With -f and
 * ControlPersist the master would be a daemon we could only find again
 * through `-O check`.) OpenSSH creates the control socket only after the
 * user is authenticated, so "the socket appeared" means "ready"; we watch
 * for it with inotify and poll() that, the master's pidfd (it died: read
 * why from its stderr, which goes to DIR/master.log) and the cancel token
 * at once. No sleeping, no `-O check` polling. (`ssh -N` points its own
 * stdin and stdout at /dev/null, so a pipe there cannot serve as the
 * "it died" signal.)
 *
 * Commands. Each spawn is `ssh -S DIR/m -o ControlMaster=no
 * -o ProxyCommand=false -T ... -- host 'cd DIR && { env -- VAR=.. CMD
 * 2>&3 3>&-; } 3>&2 2>/dev/null; exit $?'`, one multiplexed channel,
 * every word shell-quoted. ProxyCommand=false
 * matters: when the control socket is unusable a mux client silently falls
 * back to a fresh connection of its own; "false" as the proxy makes that
 * fallback fail at once (exit 255) instead of bypassing the master.
 *
 * A dropped master. The mux client of a command exits 255 both when the
 * command exits 255 and when the master dies under it. Callers tell the
 * two apart with atex_ssh_connection_alive(): the master is our child, so
 * "alive" is a non-blocking poll() of its pidfd, with no network traffic.
 * connect() after the master died (a reboot) starts a new one.
 *
 * Locking: the mutex guards the master, the directory and the cached
 * "remote has rsync" answer. spawn copies the socket path under the lock
 * and runs without it, so many threads multiplex one master at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atex/connection.h"
#include "connection/copy.h"
#include "connection/remote.h"
#include "util/process.h"
#include "util/util.h"

#define SSH_COMPONENT "ssh"
/* How long a stopping master gets after SIGTERM before SIGKILL. */
#define SSH_STOP_MS 3000
/* At most this much of a failing program's stderr goes into a message. */
#define SSH_STDERR_MAX 1024
/* The control socket's name inside the private directory. ssh binds a
 * temporary name 17 characters longer first, and a socket path has at most
 * 107 characters, so the directory must stay short. */
#define SSH_SOCK_NAME "m"
/* The pinned host keys' file in the private directory. */
#define SSH_KNOWN_HOSTS "known_hosts"
#define SSH_DIR_MAX	64
/* Masters per connection: with sshd's default MaxSessions, 9 commands
 * each (one session stays free for killing, remote.h), 144 in all. */
#define SSH_MASTERS_MAX 16
/* The server's MaxSessions when the caller does not say. */
#define SSH_MAX_SESSIONS_DEFAULT 10

/* One ControlMaster process and its socket. */
struct ssh_master {
	atex_process *proc; /* NULL when not started */
	int pidfd;	    /* ours, for liveness; -1 without pidfds */
	char *sock;	    /* DIR/m, DIR/m1, ... */
};

/*
 * Open channels per master. A server accepts at most MaxSessions sessions
 * on one connection (sshd's default is 10) and refuses the next one while
 * the connection stays up, so concurrent commands beyond that need a
 * second master. A channel is open while its client process lives; the
 * process's exit hook gives the slot back. The hook may run after the
 * connection is freed (a caller frees a process late), hence the
 * reference count; `gen` makes a hook of a master that has since been
 * restarted a no-op.
 */
struct ssh_channels {
	pthread_mutex_t lock;
	int refs;
	unsigned int gen[SSH_MASTERS_MAX];
	int open[SSH_MASTERS_MAX];
};

/* What a spawned client holds: its slot on one master. */
struct ssh_ticket {
	struct ssh_channels *ch;
	size_t master;
	unsigned int gen;
};

struct ssh_conn {
	struct atex_connection base;
	char *host;
	char *user;
	char *identity;
	char *program;
	char *name;
	int port;
	int connect_timeout_s;
	int keepalive_s;
	int channels_per_master;
	bool strict_host_keys;
	struct atex_vec options; /* char *, owned */
	struct ssh_channels *channels;

	pthread_mutex_t lock;
	/* Guarded by lock. masters[0] is the connection: it decides
	 * "connected" and "alive"; the others start on demand. */
	char *dir;    /* private directory, or NULL */
	int dir_lock; /* flock held on DIR/lock while dir lives, or -1 */
	struct ssh_master masters[SSH_MASTERS_MAX];
	int remote_rsync; /* -1 unknown, 0 missing, 1 present */
	/* The host key lines the first connect accepted (known_hosts
	 * format), or NULL before; kept across disconnects, written into
	 * every new private directory. */
	char *pinned;
};

static const struct atex_connection_ops ssh_ops;

static struct ssh_conn *to_ssh(const atex_connection *c)
{
	return (struct ssh_conn *)c;
}

/* ------------------------------------------------------------------------
 * Argument vectors. Additions are sticky on failure so that building a
 * command line is a list of calls with one check at the end.
 */

struct argv {
	struct atex_vec v; /* char *, owned, NULL-terminated by argv_end */
	int rc;
};

#define ARGV_INIT                                                              \
	{                                                                      \
		ATEX_VEC_INIT, 0                                               \
	}

static void argv_add(struct argv *a, const char *s)
{
	char *dup;

	if (a->rc)
		return;
	dup = atex_strdup(s);
	if (!dup) {
		a->rc = ATEX_ENOMEM;
		return;
	}
	a->rc = atex_vec_push(&a->v, dup);
	if (a->rc)
		free(dup);
}

static void argv_opt(struct argv *a, const char *flag, const char *value)
{
	argv_add(a, flag);
	argv_add(a, value);
}

static void argv_opt_int(struct argv *a, const char *key, int value)
{
	char s[64];

	snprintf(s, sizeof(s), "%s=%d", key, value);
	argv_opt(a, "-o", s);
}

/* NULL-terminates the vector; returns the sticky code. */
static int argv_end(struct argv *a)
{
	if (!a->rc)
		a->rc = atex_vec_push(&a->v, NULL);
	return a->rc;
}

static const char *const *argv_get(const struct argv *a)
{
	return (const char *const *)a->v.items;
}

static void argv_free(struct argv *a)
{
	atex_vec_free_all(&a->v, free);
}

/* ------------------------------------------------------------------------
 * Small helpers.
 */

/* Reads up to SSH_STDERR_MAX bytes of what a program wrote to `fd` (a file
 * at offset 0 or rewound), one line, for a message. Never fails: an empty
 * string when there is nothing. Caller frees; NULL only without memory. */
static char *read_stderr(int fd)
{
	char raw[SSH_STDERR_MAX + 1];
	ssize_t n = fd < 0 ? -1 : pread(fd, raw, SSH_STDERR_MAX, 0);
	size_t len = n > 0 ? (size_t)n : 0;

	raw[len] = '\0';
	while (len && (raw[len - 1] == '\n' || raw[len - 1] == '\r' ||
		       raw[len - 1] == ' '))
		raw[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (raw[i] == '\n' || raw[i] == '\r')
			raw[i] = ' ';
	return atex_strdup(raw);
}

/* Creates an anonymous file next to the control socket (in the private
 * directory) for a program's stderr. Returns the descriptor or a negative
 * code. */
static int stderr_file(const char *sock)
{
	char *path = atex_sprintf("%s.err-XXXXXX", sock);
	int fd;

	if (!path)
		return ATEX_ENOMEM;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		atex_error_set(ATEX_EIO, "cannot create %s: %s", path,
			       strerror(errno));
		free(path);
		return ATEX_EIO;
	}
	unlink(path);
	free(path);
	return fd;
}

/* Whether an executable `prog` is in PATH (or is a path that exists). */
static bool program_exists(const char *prog)
{
	const char *path = getenv("PATH");
	char full[4096];

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(full, sizeof(full), "%.*s/%s", (int)n, n ? path : ".",
			 prog);
		if (access(full, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

/* Removes the private directory: it only ever holds plain files and the
 * socket, never subdirectories. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		atex_log(ATEX_LOG_WARNING, SSH_COMPONENT,
			 "cannot remove %s: %s", dir, strerror(errno));
}

/* ------------------------------------------------------------------------
 * The master.
 */

/* pidfd_open(2) on our own unreaped child: its pid cannot be reused until
 * atex_process_wait/free reaps it, so this is race-free. -1 where pidfds
 * are missing (old kernels, valgrind). */
static int pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Whether a process runs, without pidfds. A zero-timeout wait records
 * "still running" as the thread's error: the caller's message is kept. */
static bool process_running(atex_process *p)
{
	int code = atex_error_last_code();
	char *saved = code ? atex_strdup(atex_error_last()) : NULL;
	bool running = atex_process_wait(NULL, p, 0, NULL) == ATEX_ETIMEDOUT;

	if (saved)
		atex_error_set(code, "%s", saved);
	else
		atex_error_clear();
	free(saved);
	return running;
}

/* Whether master `m` runs. Lock held. A pidfd becomes readable when its
 * process ends: a poll() of it costs nothing and touches no error. */
static bool master_running(const struct ssh_master *m)
{
	struct pollfd pfd = {.fd = m->pidfd, .events = POLLIN};

	if (!m->proc)
		return false;
	if (m->pidfd < 0)
		return process_running(m->proc);
	return poll(&pfd, 1, 0) == 0;
}

/* Whether the connection is up: its first master runs. Lock held. */
static bool master_alive_locked(const struct ssh_conn *s)
{
	return master_running(&s->masters[0]);
}

/* Forgets the channels counted on master `i` (it is gone); hooks of its
 * clients still to come see another generation. */
static void channels_reset(struct ssh_channels *ch, size_t i)
{
	if (!ch)
		return;
	pthread_mutex_lock(&ch->lock);
	ch->gen[i]++;
	ch->open[i] = 0;
	pthread_mutex_unlock(&ch->lock);
}

static void channels_unref(struct ssh_channels *ch)
{
	int refs;

	pthread_mutex_lock(&ch->lock);
	refs = --ch->refs;
	pthread_mutex_unlock(&ch->lock);
	if (refs)
		return;
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}

/* Stops master `i`. Lock held; safe on any state. `graceful`: SIGTERM
 * first (ssh then says goodbye to the server and removes its socket; its
 * open channels end with it), else SIGKILL at once (a connect that failed
 * has nobody to say goodbye to, and cancel must be prompt). */
static void master_stop_one(struct ssh_conn *s, size_t i, bool graceful)
{
	struct ssh_master *m = &s->masters[i];
	int status;

	if (graceful && master_running(m)) {
		atex_process_kill(m->proc, SIGTERM);
		atex_process_wait(&status, m->proc, SSH_STOP_MS, NULL);
	}
	/* Kills (SIGKILL) and reaps a master that did not stop. */
	atex_process_free(m->proc);
	m->proc = NULL;
	if (m->pidfd >= 0)
		close(m->pidfd);
	m->pidfd = -1;
	if (m->sock)
		unlink(m->sock);
	free(m->sock);
	m->sock = NULL;
	channels_reset(s->channels, i);
}

/* Stops every master and removes the directory. Lock held; idempotent. */
static void master_stop_locked(struct ssh_conn *s, bool graceful)
{
	/* The extra masters first: the first one is "the connection". */
	for (size_t i = SSH_MASTERS_MAX; i-- > 0;)
		master_stop_one(s, i, graceful);
	/* Removed before its lock is let go: a sweeper never takes a
	 * directory still in use. */
	if (s->dir)
		remove_dir(s->dir);
	if (s->dir_lock >= 0)
		close(s->dir_lock);
	s->dir_lock = -1;
	free(s->dir);
	s->dir = NULL;
	s->remote_rsync = -1;
}

/* ------------------------------------------------------------------------
 * Host keys. Unless strict_host_keys, ssh checks the server's key against
 * DIR/known_hosts only, with StrictHostKeyChecking=accept-new: at the
 * first connect the file is empty and ssh adds the key it is shown; that
 * file is then read into `pinned` and written into every later private
 * directory (each connect after a reboot makes a new one), where a
 * different key makes ssh refuse the connection.
 */

static char *known_hosts_path(const struct ssh_conn *s)
{
	return atex_path_join(s->dir, SSH_KNOWN_HOSTS);
}

/* Writes the pinned keys (or nothing) to DIR/known_hosts. Lock held. */
static int known_hosts_write_locked(struct ssh_conn *s)
{
	char *path = known_hosts_path(s);
	size_t len = s->pinned ? strlen(s->pinned) : 0;
	int fd, rc = 0;

	if (!path)
		return ATEX_ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 ||
	    write(fd, s->pinned ? s->pinned : "", len) != (ssize_t)len)
		rc = atex_error_set(ATEX_EIO, "ssh %s: %s: %s", s->name, path,
				    strerror(errno));
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* After the first connect: pins what ssh accepted. Lock held. A file ssh
 * did not write (an option pointed it elsewhere) pins nothing. */
static int known_hosts_pin_locked(struct ssh_conn *s)
{
	char *path, *text = NULL;
	size_t len = 0;
	int rc;

	if (s->strict_host_keys || s->pinned)
		return 0;
	path = known_hosts_path(s);
	if (!path)
		return ATEX_ENOMEM;
	rc = atex_file_read(&text, &len, path);
	free(path);
	if (rc == ATEX_ENOMEM)
		return rc;
	if (rc == 0 && len && !memchr(text, '\0', len)) {
		s->pinned = text;
		atex_debug(SSH_COMPONENT, "%s: host key pinned", s->name);
		return 0;
	}
	free(text);
	atex_error_clear();
	return 0;
}

/* The options that make ssh check host keys as described above; after
 * the caller's own (ssh keeps the first value it sees). */
static void known_hosts_argv(struct argv *a, const struct ssh_conn *s)
{
	char *path;

	if (s->strict_host_keys) {
		argv_opt(a, "-o", "StrictHostKeyChecking=yes");
		return;
	}
	path = known_hosts_path(s);
	if (!path) {
		a->rc = ATEX_ENOMEM;
		return;
	}
	argv_opt(a, "-o", "StrictHostKeyChecking=accept-new");
	argv_add(a, "-o");
	/* Quoted: ssh splits the value at spaces into several files (a
	 * TMPDIR with a space would pin the key in a file elsewhere). */
	if (!a->rc && strchr(path, '"')) {
		a->rc = atex_error_set(ATEX_EINVAL,
				       "%s: the known-hosts path %s holds a "
				       "double quote, which ssh cannot take",
				       s->name, path);
	} else if (!a->rc) {
		char *opt = atex_sprintf("UserKnownHostsFile=\"%s\"", path);

		argv_add(a, opt ? opt : "");
		a->rc = a->rc ? a->rc : (opt ? 0 : ATEX_ENOMEM);
		free(opt);
	}
	/* A system-wide entry is as stale for a new system as the user's. */
	argv_opt(a, "-o", "GlobalKnownHostsFile=/dev/null");
	free(path);
}

/* Whether process `pid` (ours) has "-S" `sock` on its command line: a
 * master of the private directory of a killed atex. */
static bool names_socket(pid_t pid, const char *sock)
{
	/* The master's argv starts "ssh -M -N -T -S SOCK": the head is
	 * enough. Read without atex_file_read: no error of ours to set. */
	char path[64], cmd[8192];
	ssize_t len;
	int fd;
	bool yes = false;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	len = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (len <= 0)
		return false;
	cmd[len] = '\0';
	for (ssize_t i = 0; i + 3 < len && !yes; i += strlen(cmd + i) + 1)
		yes = !strcmp(cmd + i, "-S") && !strcmp(cmd + i + 3, sock);
	return yes;
}

/* Stops the master process(es) still serving `sock`: SIGTERM (it says
 * goodbye to the server), SIGKILL when it has not ended in SSH_STOP_MS. */
static void stale_master_stop(const char *sock)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		int fd;

		if (*end || pid <= 0 || pid == getpid() ||
		    fstatat(dirfd(d), e->d_name, &st, 0) < 0 ||
		    st.st_uid != geteuid() || !names_socket((pid_t)pid, sock))
			continue;
		/* A pidfd first: the pid cannot be reused under us then. */
		fd = pidfd_of((pid_t)pid);
		atex_debug(SSH_COMPONENT, "stopping orphaned master %ld of %s",
			   pid, sock);
		if (fd < 0) { /* no pidfds (valgrind): no waiting either */
			kill((pid_t)pid, SIGTERM);
			continue;
		}
		if (syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0) == 0 &&
		    poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1,
			 SSH_STOP_MS) == 0)
			syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
		close(fd);
	}
	closedir(d);
}

/* The sweep's hook for an orphaned private directory (its owner is gone,
 * util/tmpdir.c): its masters may still run (ControlPersist=no ends them
 * with their connection only), so they are stopped before it goes. */
static void stale_dir_stop(const char *dir, void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;

	(void)arg;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char *sock;

		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			    0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		sock = atex_path_join(dir, e->d_name);
		if (sock)
			stale_master_stop(sock);
		free(sock);
	}
	closedir(d);
}

/* Makes the private directory, first sweeping those that killed atex
 * processes left behind (their lock is free) and stopping their masters.
 * Lock held. */
static int master_dir_locked(struct ssh_conn *s)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp || strlen(tmp) > SSH_DIR_MAX)
		tmp = "/tmp";
	if (atex_tmpdir_make(&s->dir, &s->dir_lock, tmp, "atex-ssh",
			     stale_dir_stop, NULL))
		return atex_error_prefix("ssh %s", s->name);
	return s->strict_host_keys ? 0 : known_hosts_write_locked(s);
}

/* The master's command line. User options come after the settings that
 * make multiplexing work (ssh keeps the first value it sees), and before
 * our defaults, so that a caller may override those. */
static int master_argv(struct argv *a, const struct ssh_conn *s,
		       const char *sock)
{
	argv_add(a, s->program);
	argv_add(a, "-M");
	argv_add(a, "-N");
	argv_add(a, "-T");
	argv_opt(a, "-S", sock);
	argv_opt(a, "-o", "ControlPersist=no");
	argv_opt(a, "-o", "BatchMode=yes");
	argv_opt_int(a, "ConnectTimeout", s->connect_timeout_s);
	argv_opt_int(a, "ServerAliveInterval", s->keepalive_s);
	if (s->port)
		argv_opt_int(a, "Port", s->port);
	if (s->user)
		argv_opt(a, "-l", s->user);
	if (s->identity) {
		argv_opt(a, "-i", s->identity);
		/* Only that key: agent keys would be tried first and could
		 * exhaust the server's MaxAuthTries. */
		argv_opt(a, "-o", "IdentitiesOnly=yes");
	}
	for (size_t i = 0; i < s->options.len; i++)
		argv_opt(a, "-o", s->options.items[i]);
	known_hosts_argv(a, s);
	argv_opt(a, "-o", "ServerAliveCountMax=3");
	/* Hides "Permanently added ... to known hosts" and the like;
	 * authentication and connection errors are still printed. */
	argv_opt(a, "-o", "LogLevel=ERROR");
	argv_add(a, "--");
	argv_add(a, s->host);
	return argv_end(a);
}

/* Whether the control socket exists yet. */
static bool socket_ready(const char *sock)
{
	struct stat st;

	return stat(sock, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Drains pending inotify events; we only use them as a wake-up. */
static void drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* How often connect looks at the master where there are no pidfds. */
#define SSH_NO_PIDFD_CHECK_MS 50

/* Waits until the socket of `m` appears, the master ends, time runs out
 * or the token fires. Returns 0, ATEX_EIO (the master ended),
 * ATEX_ETIMEDOUT, ATEX_ECANCELED; no message is set. Without a pidfd the
 * master's end is noticed by looking every SSH_NO_PIDFD_CHECK_MS: the one
 * bounded check loop, only on systems that leave no other way. */
static int master_wait_ready(const struct ssh_master *m, int inotify_fd,
			     int timeout_ms, atex_cancel *cancel)
{
	double deadline = atex_monotonic_ms() + timeout_ms;
	struct pollfd fds[3] = {
		{.fd = inotify_fd, .events = POLLIN},
		{.fd = m->pidfd, .events = POLLIN},
		{.fd = cancel ? atex_cancel_fd(cancel) : -1, .events = POLLIN},
	};

	for (;;) {
		int wait_ms = m->pidfd < 0 ? SSH_NO_PIDFD_CHECK_MS : -1;

		if (socket_ready(m->sock))
			return 0;
		/* Checked after the socket: it may have appeared just
		 * before the master died (ssh -N has no reason to). */
		if (!master_running(m))
			return ATEX_EIO;
		if (cancel && atex_cancel_fired(cancel))
			return ATEX_ECANCELED;
		if (timeout_ms >= 0) {
			int left = (int)(deadline - atex_monotonic_ms()) + 1;

			if (left <= 1)
				return ATEX_ETIMEDOUT;
			if (wait_ms < 0 || left < wait_ms)
				wait_ms = left;
		}
		if (poll(fds, 3, wait_ms) < 0 && errno != EINTR)
			return ATEX_EIO;
		if (fds[0].revents)
			drain(inotify_fd);
	}
}

/* Records why the master failed, with what ssh printed. */
static int master_fail(struct ssh_conn *s, int rc, int timeout_ms, int log_fd)
{
	char *why = read_stderr(log_fd);
	const char *sep = why && *why ? ": " : "";

	if (!why)
		return ATEX_ENOMEM;
	/* ssh's banner for it is a page of '@' and advice about
	 * known_hosts; say what it means here instead. */
	if (strstr(why, "REMOTE HOST IDENTIFICATION HAS CHANGED")) {
		atex_error_set(ATEX_EIO,
			       "ssh %s: cannot connect: the host key changed "
			       "since %s (another system at this address?); "
			       "Host key verification failed",
			       s->name,
			       s->strict_host_keys ? "it was put in known_hosts"
						   : "the first connect "
						     "pinned it");
		free(why);
		return ATEX_EIO;
	}
	if (rc == ATEX_ECANCELED)
		atex_error_set(rc, "ssh %s: connect canceled%s%s", s->name, sep,
			       why);
	else if (rc == ATEX_ETIMEDOUT)
		atex_error_set(rc, "ssh %s: not connected within %d ms%s%s",
			       s->name, timeout_ms, sep, why);
	else
		atex_error_set(ATEX_EIO, "ssh %s: cannot connect%s%s", s->name,
			       sep, *why ? why : " (ssh ended)");
	free(why);
	return rc == ATEX_ECANCELED || rc == ATEX_ETIMEDOUT ? rc : ATEX_EIO;
}

/* Starts master `i` in the private directory (made first for master 0)
 * and waits for it. Lock held; on failure nothing of it is left (for
 * master 0, not the directory either). */
static int master_start_locked(struct ssh_conn *s, size_t i, int timeout_ms,
			       atex_cancel *cancel)
{
	struct ssh_master *m = &s->masters[i];
	struct argv a = ARGV_INIT;
	int inotify_fd = -1, log_fd = -1;
	char *log = NULL;
	int rc = 0;

	if (!s->dir)
		rc = master_dir_locked(s);
	if (rc)
		goto out;
	m->sock = i ? atex_sprintf("%s/" SSH_SOCK_NAME "%zu", s->dir, i)
		    : atex_path_join(s->dir, SSH_SOCK_NAME);
	log = m->sock ? atex_sprintf("%s.log", m->sock) : NULL;
	rc = log ? master_argv(&a, s, m->sock) : ATEX_ENOMEM;
	if (rc)
		goto out;
	log_fd = open(log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (log_fd < 0 || inotify_fd < 0 ||
	    inotify_add_watch(inotify_fd, s->dir, IN_CREATE | IN_MOVED_TO) <
		    0) {
		rc = atex_error_set(ATEX_EIO, "ssh %s: %s: %s", s->name, s->dir,
				    strerror(errno));
		goto out;
	}
	atex_debug(SSH_COMPONENT, "%s: starting master %zu in %s", s->name, i,
		   s->dir);
	rc = atex_process_spawn(&m->proc, argv_get(&a), NULL, NULL,
				ATEX_STDIO_NULL, ATEX_STDIO_NULL, log_fd);
	if (rc) {
		atex_error_prefix("ssh %s", s->name);
		goto out;
	}
	m->pidfd = pidfd_of(atex_process_pid(m->proc));
	rc = master_wait_ready(m, inotify_fd, timeout_ms, cancel);
	if (!rc && i == 0)
		rc = known_hosts_pin_locked(s);
	if (rc) {
		/* Stopped first: its stderr is then complete, and the
		 * cleanup's own calls cannot overwrite our message. */
		master_stop_one(s, i, false);
		rc = master_fail(s, rc, timeout_ms, log_fd);
	}
out:
	if (rc && i == 0)
		master_stop_locked(s, false);
	else if (rc)
		master_stop_one(s, i, false);
	if (inotify_fd >= 0)
		close(inotify_fd);
	if (log_fd >= 0)
		close(log_fd);
	if (log)
		unlink(log);
	free(log);
	argv_free(&a);
	return rc;
}

static int ssh_connect(atex_connection *c, int timeout_ms, atex_cancel *cancel)
{
	struct ssh_conn *s = to_ssh(c);
	double t0 = atex_monotonic_ms();
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (master_alive_locked(s))
		goto out;
	/* A master that died (a reboot, a dropped network) leaves its
	 * directory and maybe a stale socket: start over cleanly. */
	master_stop_locked(s, false);
	rc = master_start_locked(s, 0, timeout_ms, cancel);
	if (!rc)
		atex_debug(SSH_COMPONENT, "%s: connected in %.1f ms", s->name,
			   atex_monotonic_ms() - t0);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int ssh_disconnect(atex_connection *c)
{
	struct ssh_conn *s = to_ssh(c);

	pthread_mutex_lock(&s->lock);
	master_stop_locked(s, true);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

bool atex_ssh_connection_alive(atex_connection *c)
{
	struct ssh_conn *s;
	bool alive;

	if (!c || c->ops != &ssh_ops)
		return false;
	s = to_ssh(c);
	pthread_mutex_lock(&s->lock);
	alive = master_alive_locked(s);
	pthread_mutex_unlock(&s->lock);
	return alive;
}

/* ------------------------------------------------------------------------
 * Channels: which master a new command goes through.
 */

/* Takes a free slot on a running master, or -1. Both locks held. */
static int channel_find(struct ssh_conn *s)
{
	for (size_t i = 0; i < SSH_MASTERS_MAX; i++)
		if (master_running(&s->masters[i]) &&
		    s->channels->open[i] < s->channels_per_master)
			return (int)i;
	return -1;
}

/* The first master slot that is not running (a dead extra master is
 * cleaned up first), or -1 when all run. Lock held. */
static int master_free_slot(struct ssh_conn *s)
{
	for (size_t i = 1; i < SSH_MASTERS_MAX; i++) {
		if (master_running(&s->masters[i]))
			continue;
		master_stop_one(s, i, false);
		return (int)i;
	}
	return -1;
}

/*
 * Reserves a channel for one client: a copy of the socket to use in *sock
 * and the ticket that gives the slot back (ticket_attach, or ticket_free
 * if no process came of it). Starts another master when every running one
 * is full. Returns 0, ATEX_EIO (not connected, or another master could not
 * start, or SSH_MASTERS_MAX masters are all full), ATEX_ENOMEM.
 */
static int channel_take(char **sock, struct ssh_ticket **ticket,
			struct ssh_conn *s)
{
	struct ssh_channels *ch = s->channels;
	int i, rc = 0;

	*sock = NULL;
	*ticket = atex_calloc(1, sizeof(**ticket));
	if (!*ticket)
		return ATEX_ENOMEM;
	pthread_mutex_lock(&s->lock);
	if (!master_alive_locked(s)) {
		rc = atex_error_set(
			ATEX_EIO, "ssh %s: not connected%s", s->name,
			s->masters[0].proc ? " (the master ended)" : "");
		goto out;
	}
	pthread_mutex_lock(&ch->lock);
	i = channel_find(s);
	pthread_mutex_unlock(&ch->lock);
	if (i < 0 && (i = master_free_slot(s)) < 0) {
		rc = atex_error_set(
			ATEX_EIO, "ssh %s: %d commands already run at once",
			s->name, SSH_MASTERS_MAX * s->channels_per_master);
		goto out;
	}
	if (!s->masters[i].proc) {
		rc = master_start_locked(s, (size_t)i,
					 s->connect_timeout_s * 1000, NULL);
		if (rc) {
			atex_error_prefix("another master for more than %d "
					  "concurrent commands",
					  i * s->channels_per_master);
			goto out;
		}
	}
	*sock = atex_strdup(s->masters[i].sock);
	if (!*sock) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&ch->lock);
	ch->open[i]++;
	ch->refs++;
	(*ticket)->ch = ch;
	(*ticket)->master = (size_t)i;
	(*ticket)->gen = ch->gen[i];
	pthread_mutex_unlock(&ch->lock);
out:
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		free(*ticket);
		*ticket = NULL;
	}
	return rc;
}

/* Gives the slot back (the exit hook of the client). */
static void ticket_free(void *data)
{
	struct ssh_ticket *t = data;

	if (!t)
		return;
	pthread_mutex_lock(&t->ch->lock);
	if (t->ch->gen[t->master] == t->gen && t->ch->open[t->master] > 0)
		t->ch->open[t->master]--;
	pthread_mutex_unlock(&t->ch->lock);
	channels_unref(t->ch);
	free(t);
}

/* The slot is given back when the client process ends. */
static void ticket_attach(atex_process *p, struct ssh_ticket *t)
{
	atex_process_set_exit_hook(p, ticket_free, t);
}

/* ------------------------------------------------------------------------
 * Commands.
 */

/* A copy of the first master's socket path (for the private directory),
 * or ATEX_EIO when not connected. */
static int socket_path(char **out, struct ssh_conn *s)
{
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&s->lock);
	if (!master_alive_locked(s))
		rc = atex_error_set(
			ATEX_EIO, "ssh %s: not connected%s", s->name,
			s->masters[0].proc ? " (the master ended)" : "");
	else if (!(*out = atex_strdup(s->masters[0].sock)))
		rc = ATEX_ENOMEM;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The mux client's options, up to and excluding the host. */
static void client_argv(struct argv *a, const struct ssh_conn *s,
			const char *sock)
{
	argv_add(a, s->program);
	argv_opt(a, "-S", sock);
	argv_opt(a, "-o", "ControlMaster=no");
	/* Without a usable master, fail instead of connecting directly. */
	argv_opt(a, "-o", "ProxyCommand=false");
	argv_add(a, "-T");
	argv_opt(a, "-o", "BatchMode=yes");
	argv_opt(a, "-o", "LogLevel=ERROR");
}

/* The remote shell command: cd, environment (with the run id that lets a
 * kill find the command, remote.h), then the argv, every word quoted. The
 * remote login shell runs it and waits (no exec, hence "; exit $?"): a
 * command killed by signal N then ends the session with status 128+N, as
 * locally, where sshd would report the signal and the client turn it
 * into 255, which also means "the connection failed". The shell is not
 * marked with the run id, so a kill leaves it to report. Its own stderr
 * is /dev/null around the command (which gets the real one as fd 3 made
 * 2): otherwise it would add "Killed ..." to the command's output. */
static int remote_command(struct atex_buf *b,
			  const struct atex_spawn_options *o, const char *id)
{
	int rc = 0;

	if (o->cwd) {
		rc |= atex_buf_puts(b, "cd ");
		rc |= atex_shell_quote(b, o->cwd);
		rc |= atex_buf_puts(b, " && ");
	}
	rc |= atex_buf_puts(b, "{ env --");
	if (id)
		rc |= atex_buf_printf(b, " " ATEX_RUN_ID_VAR "=%s", id);
	for (const char *const *e = o->env; e && *e; e++) {
		rc |= atex_buf_putc(b, ' ');
		rc |= atex_shell_quote(b, *e);
	}
	for (const char *const *arg = o->argv; *arg; arg++) {
		rc |= atex_buf_putc(b, ' ');
		rc |= atex_shell_quote(b, *arg);
	}
	rc |= atex_buf_puts(b, " 2>&3 3>&-; } 3>&2 2>/dev/null; exit $?");
	return rc ? ATEX_ENOMEM : 0;
}

/* Spawns `command` (already a shell command line) on the system; with a
 * run id, killing the process also signals the remote command. */
static int spawn_shell(atex_process **out, struct ssh_conn *s,
		       const char *command, int in, int outfd, int err,
		       const char *run_id)
{
	struct argv a = ARGV_INIT;
	struct ssh_ticket *ticket = NULL;
	char *sock = NULL;
	int rc;

	rc = channel_take(&sock, &ticket, s);
	if (rc)
		goto out;
	client_argv(&a, s, sock);
	argv_add(&a, "--");
	argv_add(&a, s->host);
	argv_add(&a, command);
	rc = argv_end(&a);
	if (rc)
		goto out;
	rc = atex_process_spawn(out, argv_get(&a), NULL, NULL, in, outfd, err);
	if (rc) {
		atex_error_prefix("ssh %s", s->name);
		goto out;
	}
	ticket_attach(*out, ticket);
	ticket = NULL;
	/* The prefix is everything before the command: ... -- host. */
	if (run_id && (rc = atex_remote_kill_hook(*out, argv_get(&a),
						  a.v.len - 2, true, run_id))) {
		atex_process_free(*out);
		*out = NULL;
	}
out:
	ticket_free(ticket);
	argv_free(&a);
	free(sock);
	return rc;
}

static int ssh_spawn(atex_process **out, atex_connection *c,
		     const struct atex_spawn_options *opts)
{
	struct ssh_conn *s = to_ssh(c);
	struct atex_buf cmd = ATEX_BUF_INIT;
	char id[ATEX_RUN_ID_SIZE];
	int rc;

	*out = NULL;
	if (!opts->argv || !opts->argv[0])
		return atex_error_set(ATEX_EINVAL, "ssh %s: empty command",
				      s->name);
	atex_run_id_new(id);
	rc = remote_command(&cmd, opts, id);
	if (!rc)
		rc = spawn_shell(out, s, atex_buf_cstr(&cmd), opts->stdin_fd,
				 opts->stdout_fd, opts->stderr_fd, id);
	atex_buf_free(&cmd);
	return rc;
}

/* The mux client line through the first master, with the command of
 * ssh_spawn minus the run id (no kill hook: the caller spawns it). */
static int ssh_command_argv(char ***out, atex_connection *c,
			    const struct atex_spawn_options *opts)
{
	struct ssh_conn *s = to_ssh(c);
	struct atex_buf cmd = ATEX_BUF_INIT;
	struct argv a = ARGV_INIT;
	char *sock = NULL;
	int rc;

	rc = remote_command(&cmd, opts, NULL);
	if (!rc)
		rc = socket_path(&sock, s);
	if (!rc) {
		client_argv(&a, s, sock);
		argv_add(&a, "--");
		argv_add(&a, s->host);
		argv_add(&a, atex_buf_cstr(&cmd));
		rc = a.rc ? a.rc : atex_argv_copy(out, argv_get(&a), a.v.len);
	}
	argv_free(&a);
	free(sock);
	atex_buf_free(&cmd);
	return rc;
}

/* ------------------------------------------------------------------------
 * Copying trees.
 */

/* Waits for a copying process; on cancel kills it. Returns the wait code
 * and sets *status. */
static int copy_wait(int *status, atex_process *p, atex_cancel *cancel)
{
	int rc = atex_process_wait(status, p, -1, cancel);

	if (rc) {
		atex_process_kill(p, SIGKILL);
		atex_process_wait(status, p, -1, NULL);
	}
	return rc;
}

/* Turns the outcome of a copy into a code and message: the connection
 * dropped (ATEX_EIO), or the copying program failed (ATEX_EEXTERNAL).
 * `where` is "to DST" or "from SRC". */
static int copy_result_at(struct ssh_conn *s, int rc, int status,
			  const char *what, const char *where, int err_fd)
{
	char *why;

	if (rc == ATEX_ECANCELED)
		return atex_error_set(rc, "ssh %s: copy %s canceled", s->name,
				      where);
	if (rc)
		return atex_error_prefix("ssh %s: copy %s", s->name, where);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	why = read_stderr(err_fd);
	if (!why)
		return ATEX_ENOMEM;
	rc = atex_ssh_connection_alive(&s->base) ? ATEX_EEXTERNAL : ATEX_EIO;
	atex_error_set(rc, "ssh %s: copy %s: %s failed (status %d)%s%s",
		       s->name, where, what,
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		       *why ? ": " : "", why);
	free(why);
	return rc;
}

static int copy_result(struct ssh_conn *s, int rc, int status, const char *what,
		       const char *dst, int err_fd)
{
	char *where = atex_sprintf("to %s", dst);

	if (!where)
		return ATEX_ENOMEM;
	rc = copy_result_at(s, rc, status, what, where, err_fd);
	free(where);
	return rc;
}

/* Runs `command -v rsync` once per master and remembers the answer. */
static int remote_has_rsync(bool *yes, struct ssh_conn *s, atex_cancel *cancel)
{
	atex_process *p = NULL;
	int status = 0, known, rc;

	pthread_mutex_lock(&s->lock);
	known = s->remote_rsync;
	pthread_mutex_unlock(&s->lock);
	if (known >= 0) {
		*yes = known;
		return 0;
	}
	rc = spawn_shell(&p, s, "command -v rsync", ATEX_STDIO_NULL,
			 ATEX_STDIO_NULL, ATEX_STDIO_NULL, NULL);
	if (!rc)
		rc = copy_wait(&status, p, cancel);
	atex_process_free(p);
	if (rc)
		return copy_result(s, rc, status, "command -v", "", -1);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 255 &&
	    !atex_ssh_connection_alive(&s->base))
		return atex_error_set(ATEX_EIO,
				      "ssh %s: the connection "
				      "dropped",
				      s->name);
	*yes = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	pthread_mutex_lock(&s->lock);
	s->remote_rsync = *yes;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The -e value for rsync: our mux client options as one quoted string
 * (rsync splits it on spaces and honours single quotes). */
static int rsync_rsh(struct atex_buf *b, const struct ssh_conn *s,
		     const char *sock)
{
	struct argv a = ARGV_INIT;
	int rc;

	client_argv(&a, s, sock);
	rc = a.rc;
	for (size_t i = 0; !rc && i < a.v.len; i++) {
		if (i)
			rc = atex_buf_putc(b, ' ');
		if (!rc)
			rc = atex_shell_quote(b, a.v.items[i]);
	}
	argv_free(&a);
	return rc;
}

/* rsync's "host:path"; an IPv6 address needs brackets. */
static char *rsync_target(const struct ssh_conn *s, const char *dst)
{
	if (strchr(s->host, ':'))
		return atex_sprintf("[%s]:%s/", s->host, dst);
	return atex_sprintf("%s:%s/", s->host, dst);
}

static int copy_rsync(struct ssh_conn *s, const char *src, const char *dst,
		      int err_fd, atex_cancel *cancel)
{
	struct atex_buf rsh = ATEX_BUF_INIT, rpath = ATEX_BUF_INIT;
	struct argv a = ARGV_INIT;
	struct ssh_ticket *ticket = NULL;
	atex_process *p = NULL;
	char *from = atex_sprintf("%s/", src);
	char *to = rsync_target(s, dst);
	char *sock = NULL;
	int status = 0, rc;

	rc = from && to ? channel_take(&sock, &ticket, s) : ATEX_ENOMEM;
	rc = rc ? rc : rsync_rsh(&rsh, s, sock);
	/* rsync makes only the last component of a missing destination. */
	rc = rc ? rc : atex_buf_puts(&rpath, "--rsync-path=mkdir -p ");
	rc = rc ? rc : atex_shell_quote(&rpath, dst);
	rc = rc ? rc : atex_buf_puts(&rpath, " && rsync");
	if (rc)
		goto out;
	argv_add(&a, "rsync");
	argv_add(&a, "-a");
	argv_opt(&a, "-e", atex_buf_cstr(&rsh));
	argv_add(&a, atex_buf_cstr(&rpath));
	argv_add(&a, "--");
	argv_add(&a, from);
	argv_add(&a, to);
	rc = argv_end(&a);
	if (!rc)
		rc = atex_process_spawn(&p, argv_get(&a), NULL, NULL,
					ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					err_fd);
	if (rc) {
		atex_error_prefix("ssh %s", s->name);
		goto out;
	}
	ticket_attach(p, ticket);
	ticket = NULL;
	rc = copy_wait(&status, p, cancel);
	rc = copy_result(s, rc, status, "rsync", dst, err_fd);
out:
	atex_process_free(p);
	ticket_free(ticket);
	free(sock);
	argv_free(&a);
	atex_buf_free(&rsh);
	atex_buf_free(&rpath);
	free(from);
	free(to);
	return rc;
}

/* The fallback: `tar -C SRC -cf - .` piped into the remote
 * `mkdir -p DST && tar -C DST -xpf -`. Two processes and a pipe, no local
 * shell. */
static int copy_tar(struct ssh_conn *s, const char *src, const char *dst,
		    int err_fd, atex_cancel *cancel)
{
	const char *tar_argv[] = {"tar", "-C", src, "-cf", "-", ".", NULL};
	struct atex_buf cmd = ATEX_BUF_INIT;
	atex_process *tar = NULL, *remote = NULL;
	int status = 0, pipe_fd = -1, rc;

	rc = atex_buf_puts(&cmd, "mkdir -p ");
	rc = rc ? rc : atex_shell_quote(&cmd, dst);
	rc = rc ? rc : atex_buf_puts(&cmd, " && exec tar -C ");
	rc = rc ? rc : atex_shell_quote(&cmd, dst);
	rc = rc ? rc : atex_buf_puts(&cmd, " -xpf -");
	if (rc)
		goto out;
	rc = atex_process_spawn(&tar, tar_argv, NULL, NULL, ATEX_STDIO_NULL,
				ATEX_STDIO_PIPE, err_fd);
	if (rc) {
		atex_error_prefix("ssh %s", s->name);
		goto out;
	}
	pipe_fd = atex_process_take_fd(tar, 1);
	rc = spawn_shell(&remote, s, atex_buf_cstr(&cmd), pipe_fd,
			 ATEX_STDIO_NULL, err_fd, NULL);
	/* Only the two children may hold the pipe, or EOF never comes. */
	close(pipe_fd);
	if (rc)
		goto out;
	rc = copy_wait(&status, remote, cancel);
	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = copy_wait(&status, tar, cancel);
	rc = copy_result(s, rc, status, "tar", dst, err_fd);
out:
	/* A local tar still running (the remote side failed) is killed. */
	atex_process_free(tar);
	atex_process_free(remote);
	atex_buf_free(&cmd);
	return rc;
}

static int ssh_copy_to(atex_connection *c, const char *src, const char *dst,
		       atex_cancel *cancel)
{
	struct ssh_conn *s = to_ssh(c);
	char *sock = NULL;
	bool rsync = false;
	int err_fd = -1, rc;

	if (!atex_path_is_dir(src))
		return atex_error_set(ATEX_EINVAL,
				      "ssh %s: copy: %s is not "
				      "a directory",
				      s->name, src);
	rc = socket_path(&sock, s);
	if (rc)
		goto out;
	rc = stderr_file(sock);
	if (rc < 0)
		goto out;
	err_fd = rc;
	rc = 0;
	if (program_exists("rsync"))
		rc = remote_has_rsync(&rsync, s, cancel);
	if (rc)
		goto out;
	atex_debug(SSH_COMPONENT, "%s: copying %s to %s with %s", s->name, src,
		   dst, rsync ? "rsync" : "tar");
	if (rsync)
		rc = copy_rsync(s, src, dst, err_fd, cancel);
	else
		rc = copy_tar(s, src, dst, err_fd, cancel);
out:
	if (err_fd >= 0)
		close(err_fd);
	free(sock);
	return rc;
}

/* ------------------------------------------------------------------------
 * Copying from the system.
 */

/* What `src` is on the system: *tree for a directory (a symlink to one
 * too), else a file whose permission bits go in *mode. One command.
 * ATEX_ENOTFOUND when there is nothing there. */
static int remote_kind(bool *tree, unsigned int *mode, struct ssh_conn *s,
		       const char *src, atex_cancel *cancel)
{
	static const char probe[] =
		"if [ -d \"$1\" ]; then echo d; elif [ -e \"$1\" ]; then "
		"stat -L -c 'f %a' -- \"$1\"; else echo -; fi";
	const char *argv[] = {"sh", "-c", probe, "sh", src, NULL};
	struct atex_run_result r = {0};
	int rc;

	rc = atex_connection_run(&r, &s->base, argv, NULL, 0, -1, cancel);
	if (rc)
		return rc;
	if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 255 &&
	    !atex_ssh_connection_alive(&s->base))
		rc = atex_error_set(ATEX_EIO, "ssh %s: the connection dropped",
				    s->name);
	else if (r.out[0] == '-')
		rc = atex_error_set(ATEX_ENOTFOUND,
				    "ssh %s: copy source %s does not exist",
				    s->name, src);
	else if (r.out[0] == 'd')
		*tree = true;
	else if (sscanf(r.out, "f %o", mode) == 1)
		*tree = false;
	else
		rc = atex_error_set(ATEX_EEXTERNAL,
				    "ssh %s: cannot tell what %s is (status "
				    "%d): %.200s",
				    s->name, src,
				    WIFEXITED(r.status) ? WEXITSTATUS(r.status)
							: -1,
				    r.err);
	atex_run_result_clear(&r);
	return rc;
}

/* rsync's "host:path", with a slash for a tree (its contents). */
static char *rsync_source(const struct ssh_conn *s, const char *src, bool tree)
{
	if (strchr(s->host, ':'))
		return atex_sprintf("[%s]:%s%s", s->host, src, tree ? "/" : "");
	return atex_sprintf("%s:%s%s", s->host, src, tree ? "/" : "");
}

static int copy_from_rsync(struct ssh_conn *s, const char *src, const char *dst,
			   bool tree, int err_fd, const char *where,
			   atex_cancel *cancel)
{
	struct atex_buf rsh = ATEX_BUF_INIT;
	struct argv a = ARGV_INIT;
	struct ssh_ticket *ticket = NULL;
	atex_process *p = NULL;
	char *from = rsync_source(s, src, tree);
	char *to = atex_sprintf("%s%s", dst, tree ? "/" : "");
	char *sock = NULL;
	int status = 0, rc;

	rc = from && to ? channel_take(&sock, &ticket, s) : ATEX_ENOMEM;
	rc = rc ? rc : rsync_rsh(&rsh, s, sock);
	if (rc)
		goto out;
	argv_add(&a, "rsync");
	/* A file's own symlink is followed, a tree's members are kept. */
	argv_add(&a, tree ? "-a" : "-aL");
	argv_opt(&a, "-e", atex_buf_cstr(&rsh));
	argv_add(&a, "--");
	argv_add(&a, from);
	argv_add(&a, to);
	rc = argv_end(&a);
	if (!rc)
		rc = atex_process_spawn(&p, argv_get(&a), NULL, NULL,
					ATEX_STDIO_NULL, ATEX_STDIO_NULL,
					err_fd);
	if (rc) {
		atex_error_prefix("ssh %s", s->name);
		goto out;
	}
	ticket_attach(p, ticket);
	ticket = NULL;
	rc = copy_wait(&status, p, cancel);
	rc = copy_result_at(s, rc, status, "rsync", where, err_fd);
out:
	atex_process_free(p);
	ticket_free(ticket);
	free(sock);
	argv_free(&a);
	atex_buf_free(&rsh);
	free(from);
	free(to);
	return rc;
}

/* Without rsync: a tree as `tar -cf - .` on the system into a local
 * `tar -xpf -` in dst; a file as `cat` into a temporary file beside dst,
 * given the file's mode and renamed over dst. */
static int copy_from_stream(struct ssh_conn *s, const char *src,
			    const char *dst, bool tree, unsigned int mode,
			    int err_fd, const char *where, atex_cancel *cancel)
{
	const char *tar_argv[] = {"tar", "-C", dst, "-xpf", "-", NULL};
	struct atex_buf cmd = ATEX_BUF_INIT;
	atex_process *local = NULL, *remote = NULL;
	char *tmp = NULL;
	int status = 0, pipe_fd = -1, out_fd = -1, rc;

	rc = atex_buf_puts(&cmd, tree ? "cd " : "exec cat -- ");
	rc = rc ? rc : atex_shell_quote(&cmd, src);
	rc = rc ? rc : atex_buf_puts(&cmd, tree ? " && exec tar -cf - ." : "");
	if (rc)
		goto out;
	if (tree) {
		rc = atex_process_spawn(&local, tar_argv, NULL, NULL,
					ATEX_STDIO_PIPE, ATEX_STDIO_NULL,
					err_fd);
		if (rc) {
			atex_error_prefix("ssh %s", s->name);
			goto out;
		}
		pipe_fd = atex_process_take_fd(local, 0);
		out_fd = pipe_fd;
	} else {
		tmp = atex_sprintf("%s.atex-XXXXXX", dst);
		if (!tmp) {
			rc = ATEX_ENOMEM;
			goto out;
		}
		out_fd = mkostemp(tmp, O_CLOEXEC);
		if (out_fd < 0) {
			rc = atex_error_set(ATEX_EIO, "cannot create %s: %s",
					    tmp, strerror(errno));
			free(tmp);
			tmp = NULL;
			goto out;
		}
	}
	rc = spawn_shell(&remote, s, atex_buf_cstr(&cmd), ATEX_STDIO_NULL,
			 out_fd, err_fd, NULL);
	/* Only the two children may hold the pipe, or EOF never comes. */
	if (pipe_fd >= 0)
		close(pipe_fd);
	if (rc)
		goto out;
	rc = copy_wait(&status, remote, cancel);
	if (tree && rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = copy_wait(&status, local, cancel);
	rc = copy_result_at(s, rc, status, tree ? "tar" : "cat", where, err_fd);
	if (!rc && !tree) {
		if (fchmod(out_fd, mode & 07777) < 0 || rename(tmp, dst) < 0)
			rc = atex_error_set(ATEX_EIO, "cannot write %s: %s",
					    dst, strerror(errno));
		else
			*tmp = '\0'; /* renamed: nothing to remove */
	}
out:
	if (!tree && out_fd >= 0)
		close(out_fd);
	if (tmp && *tmp)
		unlink(tmp);
	free(tmp);
	/* A local tar still running (the remote side failed) is killed. */
	atex_process_free(local);
	atex_process_free(remote);
	atex_buf_free(&cmd);
	return rc;
}

static int ssh_copy_from(atex_connection *c, const char *src, const char *dst,
			 atex_cancel *cancel)
{
	struct ssh_conn *s = to_ssh(c);
	char *sock = NULL, *where = atex_sprintf("from %s", src);
	char *abs_dst = atex_path_abspath(dst);
	bool rsync = false, tree = false;
	unsigned int mode = 0644;
	int err_fd = -1, rc;

	if (!where || !abs_dst) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	rc = socket_path(&sock, s);
	rc = rc ? rc : remote_kind(&tree, &mode, s, src, cancel);
	rc = rc ? rc : atex_copy_from_prepare(s->name, src, abs_dst, tree);
	if (rc)
		goto out;
	rc = stderr_file(sock);
	if (rc < 0)
		goto out;
	err_fd = rc;
	rc = 0;
	if (program_exists("rsync"))
		rc = remote_has_rsync(&rsync, s, cancel);
	if (rc)
		goto out;
	atex_debug(SSH_COMPONENT, "%s: copying %s %s from %s with %s", s->name,
		   tree ? "the tree" : "the file", src, dst,
		   rsync  ? "rsync"
		   : tree ? "tar"
			  : "cat");
	if (rsync)
		rc = copy_from_rsync(s, src, abs_dst, tree, err_fd, where,
				     cancel);
	else
		rc = copy_from_stream(s, src, abs_dst, tree, mode, err_fd,
				      where, cancel);
out:
	if (err_fd >= 0)
		close(err_fd);
	free(sock);
	free(where);
	free(abs_dst);
	return rc;
}

/* The system behind an ssh server reboots and answers again. */
static bool ssh_can_reboot(const atex_connection *c)
{
	return true;
}

/* ------------------------------------------------------------------------
 * Life cycle.
 */

static const char *ssh_name(const atex_connection *c)
{
	return to_ssh(c)->name;
}

static void ssh_free(atex_connection *c)
{
	struct ssh_conn *s = to_ssh(c);

	if (!s)
		return;
	ssh_disconnect(c);
	pthread_mutex_destroy(&s->lock);
	if (s->channels)
		channels_unref(s->channels);
	atex_vec_free_all(&s->options, free);
	free(s->pinned);
	free(s->host);
	free(s->user);
	free(s->identity);
	free(s->program);
	free(s->name);
	free(s);
}

static const struct atex_connection_ops ssh_ops = {
	.version = ATEX_CONNECTION_OPS_VERSION,
	.connect = ssh_connect,
	.disconnect = ssh_disconnect,
	.spawn = ssh_spawn,
	.copy_to = ssh_copy_to,
	.name = ssh_name,
	.free = ssh_free,
	.copy_from = ssh_copy_from,
	.can_reboot = ssh_can_reboot,
	/* boot_id: the default, the kernel's. */
	.command_argv = ssh_command_argv,
};

static int copy_options(struct ssh_conn *s, const struct atex_ssh_options *o)
{
	s->host = atex_strdup(o->host);
	s->user = o->user ? atex_strdup(o->user) : NULL;
	s->identity = o->identity ? atex_strdup(o->identity) : NULL;
	s->program = atex_strdup(o->ssh_program ? o->ssh_program : "ssh");
	if (!s->host || (o->user && !s->user) ||
	    (o->identity && !s->identity) || !s->program)
		return ATEX_ENOMEM;
	for (const char *const *opt = o->options; opt && *opt; opt++) {
		char *dup = atex_strdup(*opt);

		if (!dup || atex_vec_push(&s->options, dup)) {
			free(dup);
			return ATEX_ENOMEM;
		}
	}
	s->port = o->port;
	s->connect_timeout_s =
		o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;
	s->keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : 5;
	/* One session of each master stays free for killing a command. */
	s->channels_per_master = o->max_sessions > 0 ? o->max_sessions
						     : SSH_MAX_SESSIONS_DEFAULT;
	if (s->channels_per_master > 1)
		s->channels_per_master--;
	s->strict_host_keys = o->version >= 2 && o->strict_host_keys;
	s->name = atex_sprintf("%s%s%s:%d", o->user ? o->user : "",
			       o->user ? "@" : "", o->host,
			       o->port ? o->port : 22);
	return s->name ? 0 : ATEX_ENOMEM;
}

/* Whether every character of `s` is an ASCII letter or digit or in
 * `extra`, and the first is no '-' (ssh would take it for an option). */
static bool word_ok(const char *s, const char *extra)
{
	if (!*s || *s == '-')
		return false;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && !strchr(extra, *s))
			return false;
	return true;
}

/*
 * The host, user and port, checked before anything runs: a value ssh
 * would take for an option, or one with shell metacharacters or spaces
 * (it cannot name a system; the remote side parses "user@host" as
 * nothing else), fails at once with the value named, not after attempts
 * to connect. A host is a DNS name or an IPv4/IPv6 address (a zone after
 * '%'); a user a POSIX login name (Samba machine accounts end in '$').
 */
static int check_address(const struct atex_ssh_options *o)
{
	if (!word_ok(o->host, ".-_:%"))
		return atex_error_set(ATEX_EINVAL,
				      "ssh: invalid host \"%s\": a host is a "
				      "name or an address (letters, digits, "
				      "'.', '-', '_', ':', '%%'), not starting "
				      "with '-'",
				      o->host);
	if (o->user && !word_ok(o->user, ".-_$"))
		return atex_error_set(ATEX_EINVAL,
				      "ssh %s: invalid user \"%s\": a user is "
				      "a login name (letters, digits, '.', "
				      "'-', '_', '$'), not starting with '-'",
				      o->host, o->user);
	if (o->port < 0 || o->port > 65535)
		return atex_error_set(ATEX_EINVAL,
				      "ssh %s: invalid port %d (0 to 65535; "
				      "0: 22)",
				      o->host, o->port);
	return 0;
}

int atex_ssh_connection_new(atex_connection **out,
			    const struct atex_ssh_options *opts)
{
	struct ssh_conn *s;
	int rc;

	if (!out)
		return atex_error_set(ATEX_EINVAL, "ssh: out is NULL");
	*out = NULL;
	if (!opts || !opts->host || !*opts->host)
		return atex_error_set(ATEX_EINVAL, "ssh: no host given");
	if (opts->version < 1 || opts->version > ATEX_SSH_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "ssh %s: options version %u unknown",
				      opts->host, opts->version);
	rc = check_address(opts);
	if (rc)
		return rc;
	s = atex_calloc(1, sizeof(*s));
	if (!s)
		return ATEX_ENOMEM;
	s->base.ops = &ssh_ops;
	s->remote_rsync = -1;
	for (size_t i = 0; i < SSH_MASTERS_MAX; i++)
		s->masters[i].pidfd = -1;
	s->dir_lock = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->channels = atex_calloc(1, sizeof(*s->channels));
	if (!s->channels) {
		ssh_free(&s->base);
		return ATEX_ENOMEM;
	}
	s->channels->refs = 1;
	pthread_mutex_init(&s->channels->lock, NULL);
	rc = copy_options(s, opts);
	if (rc) {
		ssh_free(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
