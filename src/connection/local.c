/*
 * local.c - the Connection to this machine: commands are plain child
 * processes, and copy_to is a local copy.
 *
 * It is the reference implementation of the block (tests and the local
 * provisioner use it) and the baseline of the connection benchmark, so it
 * adds nothing to atex_process_spawn but the default working directory.
 * copy_to runs `cp -a` rather than walking the tree in C: cp already gets
 * modes, symlinks, timestamps, sparse files and special files right, and
 * coreutils is required on every system atex touches anyway. Running it
 * through this very connection makes it cancelable like any command.
 * copy_from is the same cp the other way; its local side (the
 * destination's directories) is shared with ssh (connection/copy.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "atex/connection.h"
#include "connection/copy.h"
#include "connection/remote.h"
#include "util/process.h"
#include "util/util.h"

struct local_connection {
	atex_connection base; /* first: the generic code casts to it */
	char *cwd;	      /* default working directory; NULL: ours */
};

static struct local_connection *to_local(atex_connection *c)
{
	return (struct local_connection *)c;
}

static int local_connect(atex_connection *c, int timeout_ms,
			 atex_cancel *cancel)
{
	return 0;
}

static int local_disconnect(atex_connection *c)
{
	return 0;
}

static int local_spawn(atex_process **out, atex_connection *c,
		       const struct atex_spawn_options *opts)
{
	const char *cwd = opts->cwd ? opts->cwd : to_local(c)->cwd;
	int rc;

	rc = atex_process_spawn(out, opts->argv, cwd, opts->env, opts->stdin_fd,
				opts->stdout_fd, opts->stderr_fd);
	if (rc)
		atex_error_prefix("local");
	return rc;
}

/* The message for a failed cp: its first line of stderr says why. The
 * channel is fine, so it is the external program's failure (as for ssh's
 * rsync/tar), not ATEX_EIO. */
static int copy_failed(const struct atex_run_result *r, const char *src,
		       const char *dst)
{
	int len = (int)strcspn(r->err ? r->err : "", "\n");

	if (WIFSIGNALED(r->status))
		return atex_error_set(ATEX_EEXTERNAL,
				      "local: copying '%s' to '%s': killed by "
				      "signal %d",
				      src, dst, WTERMSIG(r->status));
	return atex_error_set(ATEX_EEXTERNAL,
			      "local: copying '%s' to '%s': %.*s", src, dst,
			      len, r->err ? r->err : "");
}

static int local_copy_to(atex_connection *c, const char *src, const char *dst,
			 atex_cancel *cancel)
{
	/* `SRC/.` copies the contents, merged into an existing DST. */
	static const char script[] = "mkdir -p -- \"$2\" && cp -a -- \"$1/.\" "
				     "\"$2\"";
	const char *argv[] = {"sh", "-c", script, "sh", NULL, dst, NULL};
	struct atex_run_result r = {0};
	char *abs_src = NULL;
	struct stat st;
	int rc;

	/* src is a path of this program; the command runs in the
	 * connection's directory, so make it absolute first. */
	abs_src = atex_path_abspath(src);
	if (!abs_src)
		return ATEX_ENOMEM;
	if (stat(abs_src, &st) < 0 || !S_ISDIR(st.st_mode)) {
		rc = atex_error_set(ATEX_ENOTFOUND,
				    "local: copy source '%s' is not a "
				    "directory",
				    src);
		goto out;
	}
	argv[4] = abs_src;
	rc = atex_connection_run(&r, c, argv, NULL, 0, -1, cancel);
	if (rc)
		goto out;
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		rc = copy_failed(&r, src, dst);
out:
	atex_run_result_clear(&r);
	free(abs_src);
	return rc;
}

/* Makes `dir` and its missing parents (mkdir -p) on this machine. */
static int make_dirs(const char *dir)
{
	char *p = atex_strdup(dir);
	int rc = 0;

	if (!p)
		return ATEX_ENOMEM;
	for (char *q = p + 1; !rc; q++) {
		bool end = !*q;

		if (*q != '/' && !end)
			continue;
		*q = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST)
			rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", p,
					    strerror(errno));
		if (end)
			break;
		*q = '/';
	}
	free(p);
	return rc;
}

/* The local side of a download, the same for every connection: a tree
 * goes into `dst` (made with its parents), a file replaces `dst` (its
 * parent made), which must then not be a directory. */
int atex_copy_from_prepare(const char *conn, const char *src, const char *dst,
			   bool tree)
{
	char *parent, *slash;
	int rc;

	if (tree)
		return make_dirs(dst);
	if (atex_path_is_dir(dst))
		return atex_error_set(ATEX_EINVAL,
				      "%s: copying '%s' to '%s': '%s' is a "
				      "directory, and '%s' is a file",
				      conn, src, dst, dst, src);
	parent = atex_strdup(dst);
	if (!parent)
		return ATEX_ENOMEM;
	/* "f" and "/f" have no parent to make. */
	slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	rc = slash && *parent ? make_dirs(parent) : 0;
	free(parent);
	return rc;
}

/* src is a path on the system, which for us is relative to the default
 * working directory; dst one of this program. A file's top-level symlink
 * is followed (as cp follows a directory's, with "SRC/."). */
static int local_copy_from(atex_connection *c, const char *src, const char *dst,
			   atex_cancel *cancel)
{
	static const char tree[] = "cp -a -- \"$1/.\" \"$2\"";
	static const char file[] = "cp -aL -T --remove-destination -- \"$1\" "
				   "\"$2\"";
	const char *cwd = to_local(c)->cwd;
	const char *argv[] = {"sh", "-c", NULL, "sh", src, NULL, NULL};
	struct atex_run_result r = {0};
	char *abs_dst = atex_path_abspath(dst), *from = NULL;
	struct stat st;
	int rc;

	from = src[0] == '/' || !cwd ? atex_strdup(src)
				     : atex_path_join(cwd, src);
	if (!abs_dst || !from) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	if (stat(from, &st) < 0) {
		rc = atex_error_set(ATEX_ENOTFOUND,
				    "local: copy source '%s': %s", src,
				    strerror(errno));
		goto out;
	}
	rc = atex_copy_from_prepare("local", src, abs_dst, S_ISDIR(st.st_mode));
	if (rc)
		goto out;
	argv[2] = S_ISDIR(st.st_mode) ? tree : file;
	argv[5] = abs_dst;
	rc = atex_connection_run(&r, c, argv, NULL, 0, -1, cancel);
	if (rc)
		goto out;
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		rc = copy_failed(&r, src, dst);
out:
	atex_run_result_clear(&r);
	free(abs_dst);
	free(from);
	return rc;
}

/* This machine is the one atex runs on: never rebooted by a test. */
static bool local_can_reboot(const atex_connection *c)
{
	return false;
}

static const char *local_name(const atex_connection *c)
{
	return "local";
}

static void local_free(atex_connection *c)
{
	struct local_connection *l = to_local(c);

	free(l->cwd);
	free(l);
}

/* The argv itself, or `env [-C CWD] -- [NAME=VALUE...] ARGV` when there
 * is a directory or environment to set. */
static int local_command_argv(char ***out, atex_connection *c,
			      const struct atex_spawn_options *opts)
{
	const char *cwd = opts->cwd ? opts->cwd : to_local(c)->cwd;
	struct atex_vec v = ATEX_VEC_INIT;
	size_t n = 0;
	int rc = 0;

	if (!cwd && (!opts->env || !opts->env[0])) {
		while (opts->argv[n])
			n++;
		return atex_argv_copy(out, opts->argv, n);
	}
	rc |= atex_vec_push(&v, (void *)"env");
	if (cwd) {
		rc |= atex_vec_push(&v, (void *)"-C");
		rc |= atex_vec_push(&v, (void *)cwd);
	}
	rc |= atex_vec_push(&v, (void *)"--");
	for (const char *const *e = opts->env; e && *e; e++)
		rc |= atex_vec_push(&v, (void *)*e);
	for (const char *const *a = opts->argv; *a; a++)
		rc |= atex_vec_push(&v, (void *)*a);
	if (!rc)
		rc = atex_argv_copy(out, (const char *const *)v.items, v.len);
	atex_vec_free(&v);
	return rc ? ATEX_ENOMEM : 0;
}

static const struct atex_connection_ops local_ops = {
	.version = ATEX_CONNECTION_OPS_VERSION,
	.connect = local_connect, /* nothing to establish */
	.disconnect = local_disconnect,
	.spawn = local_spawn,
	.copy_to = local_copy_to,
	.name = local_name,
	.free = local_free,
	.copy_from = local_copy_from,
	.can_reboot = local_can_reboot,
	/* boot_id: the default, this machine's. */
	.command_argv = local_command_argv,
};

int atex_local_connection_new(atex_connection **out, const char *cwd)
{
	struct local_connection *l;

	*out = NULL;
	l = atex_calloc(1, sizeof(*l));
	if (!l)
		return ATEX_ENOMEM;
	l->base.ops = &local_ops;
	if (cwd) {
		l->cwd = atex_strdup(cwd);
		if (!l->cwd) {
			free(l);
			return ATEX_ENOMEM;
		}
	}
	*out = &l->base;
	return 0;
}

bool atex_connection_is_local(const atex_connection *c)
{
	return c && c->ops == &local_ops;
}
