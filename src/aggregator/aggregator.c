/*
 * aggregator.c - the generic aggregator calls: check the arguments and
 * the operations table, then forward.
 *
 * Implementations may be written by users against an older header, so the
 * ops version is checked on every call (cheap) rather than trusted. start
 * and stop may be left NULL (nothing to open or flush); ingest and free
 * are required. The names of an ingest are checked here too, so that a
 * user's own aggregator gets platform and test names it can use as path
 * components without checking them itself.
 */
#include <stddef.h>

#include "aggregator/ingest.h"
#include "atex/aggregator.h"
#include "util/util.h"

/* Whether a can be called at all; records ATEX_EINVAL naming `call`. */
static int check(const atex_aggregator *a, const char *call)
{
	if (!a || !a->ops)
		return atex_error_set(ATEX_EINVAL, "%s: no aggregator", call);
	return atex_check_ops_version(a->ops->version,
				      ATEX_AGGREGATOR_OPS_VERSION, "aggregator",
				      call);
}

int atex_aggregator_start(atex_aggregator *a)
{
	int rc = check(a, "atex_aggregator_start");

	if (rc < 0)
		return rc;
	return a->ops->start ? a->ops->start(a) : 0;
}

int atex_aggregator_ingest(atex_aggregator *a, const char *platform,
			   const char *test_name, const char *artifacts_dir)
{
	int rc = check(a, "atex_aggregator_ingest");

	if (rc < 0)
		return rc;
	if (!a->ops->ingest)
		return atex_error_set(ATEX_EINVAL,
				      "atex_aggregator_ingest: the aggregator "
				      "does not implement it");
	rc = atex_ingest_check_names(platform, test_name);
	if (rc < 0)
		return rc;
	if (!artifacts_dir)
		return atex_error_set(ATEX_EINVAL,
				      "atex_aggregator_ingest: %s on %s: no "
				      "artifacts directory",
				      test_name, platform);
	return a->ops->ingest(a, platform, test_name, artifacts_dir);
}

int atex_aggregator_stop(atex_aggregator *a)
{
	int rc = check(a, "atex_aggregator_stop");

	if (rc < 0)
		return rc;
	return a->ops->stop ? a->ops->stop(a) : 0;
}

void atex_aggregator_free(atex_aggregator *a)
{
	if (!a || check(a, "atex_aggregator_free") < 0 || !a->ops->free)
		return;
	a->ops->free(a);
}
