/*
 * provisioner.c - the generic provisioner and remote calls: check the
 * arguments and the operations table, then forward.
 *
 * Implementations may be written by users against an older header, so the
 * ops version is checked on every call (cheap) rather than trusted, and
 * operations that have an obvious "nothing to do" meaning (start, stop,
 * clear, abort, ready_fd, name) may be left NULL. provision, get_remote
 * and free are required: a provisioner without them cannot keep its
 * contract.
 */
#include <stddef.h>

#include "atex/provisioner.h"
#include "util/util.h"

static const char *prov_name(const atex_provisioner *p)
{
	if (p->ops->name)
		return p->ops->name(p);
	return "provisioner";
}

/* Whether p can be called at all; records ATEX_EINVAL naming `call`. */
static int check(const atex_provisioner *p, const char *call)
{
	if (!p || !p->ops)
		return atex_error_set(ATEX_EINVAL, "%s: no provisioner", call);
	return atex_check_ops_version(p->ops->version,
				      ATEX_PROVISIONER_OPS_VERSION,
				      "provisioner", call);
}

/* The same for a required operation that is missing. */
static int missing(const atex_provisioner *p, const char *call)
{
	return atex_error_set(ATEX_EINVAL, "%s: %s does not implement it", call,
			      prov_name(p));
}

int atex_provisioner_start(atex_provisioner *p)
{
	int rc = check(p, "atex_provisioner_start");

	if (rc < 0)
		return rc;
	return p->ops->start ? p->ops->start(p) : 0;
}

int atex_provisioner_stop(atex_provisioner *p)
{
	int rc = check(p, "atex_provisioner_stop");

	if (rc < 0)
		return rc;
	return p->ops->stop ? p->ops->stop(p) : 0;
}

int atex_provisioner_provision(atex_provisioner *p, int count)
{
	int rc = check(p, "atex_provisioner_provision");

	if (rc < 0)
		return rc;
	if (count < 0 && count != ATEX_PROVISION_UNLIMITED)
		return atex_error_set(ATEX_EINVAL,
				      "%s: cannot provision %d systems",
				      prov_name(p), count);
	if (!p->ops->provision)
		return missing(p, "atex_provisioner_provision");
	if (count == 0)
		return 0;
	return p->ops->provision(p, count);
}

int atex_provisioner_get_remote(atex_remote **out, atex_provisioner *p,
				int timeout_ms)
{
	int rc = check(p, "atex_provisioner_get_remote");

	if (rc < 0)
		return rc;
	if (!out)
		return atex_error_set(ATEX_EINVAL,
				      "%s: get_remote without an out pointer",
				      prov_name(p));
	*out = NULL;
	if (!p->ops->get_remote)
		return missing(p, "atex_provisioner_get_remote");
	if (timeout_ms < -1)
		timeout_ms = -1;
	return p->ops->get_remote(out, p, timeout_ms);
}

int atex_provisioner_clear(atex_provisioner *p)
{
	int rc = check(p, "atex_provisioner_clear");

	if (rc < 0)
		return rc;
	return p->ops->clear ? p->ops->clear(p) : 0;
}

void atex_provisioner_abort(atex_provisioner *p)
{
	if (check(p, "atex_provisioner_abort") < 0 || !p->ops->abort)
		return;
	p->ops->abort(p);
}

int atex_provisioner_ready_fd(const atex_provisioner *p)
{
	if (check(p, "atex_provisioner_ready_fd") < 0 || !p->ops->ready_fd)
		return -1;
	return p->ops->ready_fd(p);
}

const char *atex_provisioner_name(const atex_provisioner *p)
{
	if (check(p, "atex_provisioner_name") < 0)
		return "(invalid provisioner)";
	return prov_name(p);
}

void atex_provisioner_free(atex_provisioner *p)
{
	if (!p || check(p, "atex_provisioner_free") < 0 || !p->ops->free)
		return;
	p->ops->free(p);
}

/* ------------------------------------------------------------------------
 * Remotes.
 */

static bool remote_ok(const atex_remote *r)
{
	return r && r->ops && r->ops->version >= 1 &&
	       r->ops->version <= ATEX_REMOTE_OPS_VERSION;
}

atex_connection *atex_remote_connection(atex_remote *r)
{
	if (!remote_ok(r) || !r->ops->connection) {
		atex_error_set(ATEX_EINVAL,
			       "atex_remote_connection: no remote");
		return NULL;
	}
	return r->ops->connection(r);
}

const char *atex_remote_name(const atex_remote *r)
{
	if (!remote_ok(r))
		return "(invalid remote)";
	return r->ops->name ? r->ops->name(r) : "remote";
}

void atex_remote_release(atex_remote *r)
{
	if (!remote_ok(r) || !r->ops->release)
		return;
	r->ops->release(r);
}
