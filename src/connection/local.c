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
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "atex/connection.h"
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

static const struct atex_connection_ops local_ops = {
	.version = ATEX_CONNECTION_OPS_VERSION,
	.connect = local_connect, /* nothing to establish */
	.disconnect = local_disconnect,
	.spawn = local_spawn,
	.copy_to = local_copy_to,
	.name = local_name,
	.free = local_free,
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
