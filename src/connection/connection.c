/*
 * connection.c - the generic half of the Connection block: argument
 * checks and dispatch through the operations table, and atex_connection_run
 * built on spawn alone, so it works unchanged on every implementation
 * (built in or a program's own).
 *
 * The checks live here, not in each implementation, so that a user's own
 * connection gets the same argument validation and a clear message for an
 * ops table compiled against another version of the header. connect and
 * disconnect are optional operations (nothing to establish is a success);
 * spawn and copy_to are required. The version 2 operations (copy_from,
 * can_reboot, boot_id) are never read from a version 1 table, which ends
 * before them: each has a default here instead.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "atex/connection.h"
#include "connection/remote.h"
#include "util/process.h"
#include "util/util.h"

static const char *conn_name(const atex_connection *c)
{
	const char *name = NULL;

	if (c && c->ops && c->ops->name)
		name = c->ops->name(c);
	return name ? name : "connection";
}

/* A connection whose table this header version can call. */
static int check_conn(const atex_connection *c, const char *call)
{
	if (!c || !c->ops)
		return atex_error_set(ATEX_EINVAL, "%s: no connection", call);
	return atex_check_ops_version(c->ops->version,
				      ATEX_CONNECTION_OPS_VERSION, "connection",
				      call);
}

int atex_connection_connect(atex_connection *c, int timeout_ms,
			    atex_cancel *cancel)
{
	int rc = check_conn(c, "connect");

	if (rc)
		return rc;
	if (!c->ops->connect)
		return 0;
	return c->ops->connect(c, timeout_ms, cancel);
}

int atex_connection_disconnect(atex_connection *c)
{
	int rc = check_conn(c, "disconnect");

	if (rc)
		return rc;
	if (!c->ops->disconnect)
		return 0;
	return c->ops->disconnect(c);
}

static bool stdio_valid(int fd)
{
	return fd >= 0 || fd == ATEX_STDIO_INHERIT || fd == ATEX_STDIO_PIPE ||
	       fd == ATEX_STDIO_NULL;
}

int atex_connection_spawn(atex_process **out, atex_connection *c,
			  const struct atex_spawn_options *opts)
{
	int rc;

	if (out)
		*out = NULL;
	rc = check_conn(c, "spawn");
	if (rc)
		return rc;
	if (!out || !opts)
		return atex_error_set(ATEX_EINVAL, "%s: spawn: %s is NULL",
				      conn_name(c), out ? "opts" : "out");
	if (opts->version == 0 || opts->version > ATEX_SPAWN_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "%s: spawn options version %u is not "
				      "supported",
				      conn_name(c), opts->version);
	if (!opts->argv || !opts->argv[0] || !opts->argv[0][0])
		return atex_error_set(ATEX_EINVAL, "%s: spawn: empty command",
				      conn_name(c));
	if (!stdio_valid(opts->stdin_fd) || !stdio_valid(opts->stdout_fd) ||
	    !stdio_valid(opts->stderr_fd))
		return atex_error_set(ATEX_EINVAL,
				      "%s: spawn '%s': invalid stdio value",
				      conn_name(c), opts->argv[0]);
	if (!c->ops->spawn)
		return atex_error_set(ATEX_EINVAL,
				      "%s: spawn is not implemented",
				      conn_name(c));
	rc = c->ops->spawn(out, c, opts);
	if (rc == 0 && !*out)
		return atex_error_set(ATEX_ERROR,
				      "%s: spawn '%s' returned no process",
				      conn_name(c), opts->argv[0]);
	return rc;
}

int atex_connection_copy_to(atex_connection *c, const char *src,
			    const char *dst, atex_cancel *cancel)
{
	int rc = check_conn(c, "copy_to");

	if (rc)
		return rc;
	if (!src || !*src || !dst || !*dst)
		return atex_error_set(ATEX_EINVAL,
				      "%s: copy_to: empty source or "
				      "destination",
				      conn_name(c));
	if (!c->ops->copy_to)
		return atex_error_set(ATEX_EINVAL,
				      "%s: copy_to is not implemented",
				      conn_name(c));
	return c->ops->copy_to(c, src, dst, cancel);
}

/* A version 2 operation of the table, or NULL (a version 1 table ends
 * before the field). */
#define OP_V2(c, op) ((c)->ops->version >= 2 ? (c)->ops->op : NULL)

int atex_connection_copy_from(atex_connection *c, const char *src,
			      const char *dst, atex_cancel *cancel)
{
	int rc = check_conn(c, "copy_from");

	if (rc)
		return rc;
	if (!src || !*src || !dst || !*dst)
		return atex_error_set(ATEX_EINVAL,
				      "%s: copy_from: empty source or "
				      "destination",
				      conn_name(c));
	if (!OP_V2(c, copy_from))
		return atex_error_set(ATEX_EINVAL,
				      "%s: copy_from is not implemented",
				      conn_name(c));
	return c->ops->copy_from(c, src, dst, cancel);
}

/* A version 3 operation of the table, or NULL. */
#define OP_V3(c, op) ((c)->ops->version >= 3 ? (c)->ops->op : NULL)

int atex_connection_command_argv(char ***out, atex_connection *c,
				 const struct atex_spawn_options *opts)
{
	int rc;

	if (!out)
		return atex_error_set(ATEX_EINVAL, "command_argv: no output");
	*out = NULL;
	rc = check_conn(c, "command_argv");
	if (rc)
		return rc;
	if (!opts || !opts->argv || !opts->argv[0] || !opts->argv[0][0])
		return atex_error_set(ATEX_EINVAL,
				      "%s: command_argv without a command",
				      conn_name(c));
	if (!OP_V3(c, command_argv))
		return atex_error_set(ATEX_EINVAL,
				      "%s: command_argv is not implemented",
				      conn_name(c));
	return c->ops->command_argv(out, c, opts);
}

int atex_argv_copy(char ***out, const char *const *v, size_t n)
{
	char **a = calloc(n + 1, sizeof(*a));

	*out = NULL;
	if (!a)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		a[i] = atex_strdup(v[i]);
		if (!a[i]) {
			atex_command_argv_free(a);
			return ATEX_ENOMEM;
		}
	}
	*out = a;
	return 0;
}

void atex_command_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

bool atex_connection_can_reboot(const atex_connection *c)
{
	if (check_conn(c, "can_reboot") || !OP_V2(c, can_reboot))
		return false;
	return c->ops->can_reboot(c);
}

/* The default boot id: the kernel's, which changes at every boot. */
static int default_boot_id(char **out, atex_connection *c, int timeout_ms,
			   atex_cancel *cancel)
{
	static const char *const argv[] = {
		"cat", "/proc/sys/kernel/random/boot_id", NULL};
	struct atex_run_result r = {0};
	size_t len;
	int rc;

	rc = atex_connection_run(&r, c, argv, NULL, 0, timeout_ms, cancel);
	if (rc)
		return atex_error_prefix("boot id");
	len = strcspn(r.out, "\r\n");
	while (len && (r.out[len - 1] == ' ' || r.out[len - 1] == '\t'))
		len--;
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0 || !len) {
		int elen = (int)strcspn(r.err, "\n");

		rc = atex_error_set(ATEX_EEXTERNAL,
				    "%s: boot id: cat %s failed (status "
				    "%d)%s%.*s",
				    conn_name(c), argv[1],
				    WIFEXITED(r.status) ? WEXITSTATUS(r.status)
							: -1,
				    elen ? ": " : "", elen, r.err);
		goto out;
	}
	r.out[len] = '\0';
	*out = atex_strdup(r.out);
	rc = *out ? 0 : ATEX_ENOMEM;
out:
	atex_run_result_clear(&r);
	return rc;
}

int atex_connection_boot_id(char **out, atex_connection *c, int timeout_ms,
			    atex_cancel *cancel)
{
	int rc;

	if (out)
		*out = NULL;
	rc = check_conn(c, "boot_id");
	if (rc)
		return rc;
	if (!out)
		return atex_error_set(ATEX_EINVAL, "%s: boot_id: out is NULL",
				      conn_name(c));
	if (!OP_V2(c, boot_id))
		return default_boot_id(out, c, timeout_ms, cancel);
	rc = c->ops->boot_id(out, c, timeout_ms, cancel);
	if (rc == 0 && !*out)
		return atex_error_set(ATEX_ERROR,
				      "%s: boot_id returned no identifier",
				      conn_name(c));
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

const char *atex_connection_name(const atex_connection *c)
{
	if (!c || !c->ops)
		return "(null)";
	return conn_name(c);
}

void atex_connection_free(atex_connection *c)
{
	if (!c || !c->ops || !c->ops->free)
		return;
	c->ops->free(c);
}

void atex_run_result_clear(struct atex_run_result *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

int atex_connection_run(struct atex_run_result *r, atex_connection *c,
			const char *const *argv, const void *input,
			size_t input_len, int timeout_ms, atex_cancel *cancel)
{
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	struct atex_buf out = ATEX_BUF_INIT, err = ATEX_BUF_INIT;
	atex_process *p = NULL;
	int rc;

	if (!r)
		return atex_error_set(ATEX_EINVAL, "run: no result");
	memset(r, 0, sizeof(*r));
	opts.argv = argv;
	opts.stdin_fd = input ? ATEX_STDIO_PIPE : ATEX_STDIO_NULL;
	opts.stdout_fd = ATEX_STDIO_PIPE;
	opts.stderr_fd = ATEX_STDIO_PIPE;
	rc = atex_connection_spawn(&p, c, &opts);
	if (rc)
		goto out;
	rc = atex_process_communicate(&r->status, p, input, input_len, &out,
				      &err, timeout_ms, cancel);
	if (rc) {
		atex_error_prefix("%s", conn_name(c));
		goto out;
	}
	r->out_len = out.len;
	r->err_len = err.len;
	r->out = atex_buf_detach(&out);
	r->err = atex_buf_detach(&err);
	if (!r->out || !r->err)
		rc = ATEX_ENOMEM;
out:
	/* On failure nothing is left for the caller to free. */
	if (rc)
		atex_run_result_clear(r);
	atex_buf_free(&out);
	atex_buf_free(&err);
	atex_process_free(p);
	return rc;
}
