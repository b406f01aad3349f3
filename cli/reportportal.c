/*
 * reportportal.c - `atex run --reportportal URL --rp-project P ...`: the
 * ReportPortal aggregator beside the local results, arranged so that it
 * can never cost them.
 *
 * The local aggregators (the JSON Lines + SQLite multi) and ReportPortal
 * are put behind one small aggregator of our own, for the final results
 * and one for the earlier attempts: each ingest goes to the local outputs
 * first, and only when they took it to ReportPortal; an upload that fails
 * is printed (test, request, HTTP status), counted, and not returned as
 * the ingest's error, so that the orchestrator keeps going and the local
 * results hold every test. At the end the run says how many results were
 * not uploaded and exits 2.
 *
 * The token: read once from ATEX_REPORTPORTAL_TOKEN (or tmt's
 * TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN), which are then removed from the
 * environment, so that no test or other child process inherits it (a
 * test printing its environment would upload it otherwise). There is no
 * option for it: a process's arguments are visible to every user.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

/* The default retry budget of one request: generous, an API restart or a
 * short outage costs nothing; --rp-retry-time changes it. */
#define RP_RETRY_DEFAULT_S 1800

struct cli_rp_upload {
	atomic_size_t not_uploaded;
	bool stop_failed;
	char *token;
};

/* Our aggregator: `local` then `rp`, both owned. */
struct tee {
	atex_aggregator base;
	atex_aggregator *local, *rp;
	struct cli_rp_upload *up;
	bool main; /* owns the launch: starts and stops it */
};

static int tee_start(atex_aggregator *a)
{
	struct tee *t = (struct tee *)a;
	int rc = atex_aggregator_start(t->local);

	if (rc < 0 || !t->main)
		return rc;
	if (atex_aggregator_start(t->rp) < 0)
		cli_error("run: %s; the results are kept here only",
			  atex_error_last());
	else
		cli_error("run: ReportPortal launch %s",
			  atex_reportportal_launch_uuid(t->rp));
	return 0;
}

static int tee_ingest(atex_aggregator *a, const char *platform,
		      const char *test_name, const char *artifacts_dir)
{
	struct tee *t = (struct tee *)a;
	int rc = atex_aggregator_ingest(t->local, platform, test_name,
					artifacts_dir);

	if (rc < 0)
		return rc;
	if (atex_aggregator_ingest(t->rp, platform, test_name, artifacts_dir) <
	    0) {
		atomic_fetch_add(&t->up->not_uploaded, 1);
		cli_error("run: not uploaded: %s", atex_error_last());
	}
	return 0;
}

static int tee_stop(atex_aggregator *a)
{
	struct tee *t = (struct tee *)a;
	int rc = atex_aggregator_stop(t->local);

	if (t->main && atex_aggregator_stop(t->rp) < 0) {
		t->up->stop_failed = true;
		cli_error("run: %s", atex_error_last());
	}
	return rc;
}

static void tee_free(atex_aggregator *a)
{
	struct tee *t = (struct tee *)a;

	atex_aggregator_free(t->local);
	atex_aggregator_free(t->rp);
	free(t);
}

static const struct atex_aggregator_ops tee_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = tee_start,
	.ingest = tee_ingest,
	.stop = tee_stop,
	.free = tee_free,
};

static int tee_new(atex_aggregator **inout, atex_aggregator *rp,
		   struct cli_rp_upload *up, bool main)
{
	struct tee *t = calloc(1, sizeof(*t));

	if (!t) {
		cli_error("run: out of memory");
		return CLI_USAGE;
	}
	t->base.ops = &tee_ops;
	t->local = *inout;
	t->rp = rp;
	t->up = up;
	t->main = main;
	*inout = &t->base;
	return CLI_OK;
}

/* ------------------------------------------------------------------------
 * Options
 */

static int parse_seconds(int *out, const char *name, const char *arg)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (end == arg || *end || v < 1 || v > 24 * 3600) {
		cli_error("%s: '%s' is not a number of seconds from 1 to "
			  "86400",
			  name, arg);
		return CLI_USAGE;
	}
	*out = (int)v;
	return CLI_OK;
}

int cli_rp_option(struct cli_rp *o, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_RP_URL:
		o->url = arg;
		return CLI_OK;
	case CLI_OPT_RP_PROJECT:
		o->project = arg;
		return CLI_OK;
	case CLI_OPT_RP_LAUNCH:
		o->launch = arg;
		return CLI_OK;
	case CLI_OPT_RP_RERUN:
		o->rerun = arg;
		return CLI_OK;
	case CLI_OPT_RP_JOIN:
		if (!*arg) {
			cli_error("--rp-join-subtest: the separator is empty");
			return CLI_USAGE;
		}
		o->join = arg;
		return CLI_OK;
	case CLI_OPT_RP_DESCRIPTION:
		o->description = arg;
		return CLI_OK;
	case CLI_OPT_RP_ATTRIBUTE:
		if (o->n_attributes + 1 >= CLI_RP_MAX_ATTRIBUTES) {
			cli_error("--rp-attribute: at most %d",
				  CLI_RP_MAX_ATTRIBUTES - 1);
			return CLI_USAGE;
		}
		o->attributes[o->n_attributes++] = arg;
		return CLI_OK;
	case CLI_OPT_RP_RETRY_TIME:
		return parse_seconds(&o->retry_s, "--rp-retry-time", arg);
	case CLI_OPT_RP_TIMEOUT:
		return parse_seconds(&o->timeout_s, "--rp-timeout", arg);
	}
	return -1;
}

int cli_rp_check(struct cli_rp *o)
{
	const char *names[] = {"ATEX_REPORTPORTAL_TOKEN",
			       "TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN"};
	bool any = o->project || o->launch || o->rerun || o->join ||
		   o->description || o->n_attributes || o->retry_s ||
		   o->timeout_s;

	if (!o->url) {
		if (any) {
			cli_error("--rp-* options need --reportportal URL");
			return CLI_USAGE;
		}
		return CLI_OK;
	}
	if (!o->project) {
		cli_error("--reportportal needs --rp-project NAME");
		return CLI_USAGE;
	}
	if (o->launch && o->rerun) {
		cli_error("--rp-launch and --rp-rerun: one or the other (a "
			  "rerun keeps its launch's name)");
		return CLI_USAGE;
	}
	/* Read once, then out of the environment: no child inherits it. */
	for (size_t i = 0; i < 2 && !o->token; i++) {
		const char *v = getenv(names[i]);

		if (v && *v)
			o->token = strdup(v);
	}
	for (size_t i = 0; i < 2; i++)
		unsetenv(names[i]);
	if (!o->token) {
		cli_error("--reportportal: no token: set "
			  "ATEX_REPORTPORTAL_TOKEN (or "
			  "TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN)");
		return CLI_USAGE;
	}
	return CLI_OK;
}

int cli_rp_wrap(struct cli_rp_upload **out, const struct cli_rp *o,
		const char *default_launch, atex_aggregator **final,
		atex_aggregator **earlier)
{
	struct atex_reportportal_aggregator_options ro =
		ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_INIT;
	struct cli_rp_upload *up;
	atex_aggregator *rp = NULL, *view = NULL;

	*out = NULL;
	if (!o->url)
		return CLI_OK;
	up = calloc(1, sizeof(*up));
	if (!up) {
		cli_error("run: out of memory");
		return CLI_USAGE;
	}
	ro.url = o->url;
	ro.project = o->project;
	ro.token = o->token;
	ro.launch_name = o->rerun    ? NULL
			 : o->launch ? o->launch
				     : default_launch;
	ro.launch_rerun = o->rerun;
	ro.join_subtest = o->join;
	ro.description = o->description;
	ro.attributes = o->n_attributes ? o->attributes : NULL;
	ro.retry_total_ms =
		(o->retry_s ? o->retry_s : RP_RETRY_DEFAULT_S) * 1000;
	ro.timeout_ms = o->timeout_s * 1000;
	/* For tests: retries in a fraction of a second. */
	if (getenv("ATEX_TEST_RP_BACKOFF_MS"))
		ro.backoff_first_ms = atoi(getenv("ATEX_TEST_RP_BACKOFF_MS"));
	if (atex_reportportal_aggregator_new(&rp, &ro) < 0 ||
	    atex_reportportal_aggregator_earlier(&view, rp) < 0) {
		atex_aggregator_free(rp);
		free(up);
		return cli_fail("run: --reportportal");
	}
	/* The view goes with `earlier`, freed before `final`: before rp. */
	if (tee_new(earlier, view, up, false) != CLI_OK) {
		atex_aggregator_free(view);
		atex_aggregator_free(rp);
		free(up);
		return CLI_USAGE;
	}
	if (tee_new(final, rp, up, true) != CLI_OK) {
		atex_aggregator_free(rp);
		free(up); /* `earlier` (a tee) still points at it: not used */
		return CLI_USAGE;
	}
	*out = up;
	return CLI_OK;
}

int cli_rp_finish(struct cli_rp_upload *up)
{
	size_t n;
	int rc = CLI_OK;

	if (!up)
		return CLI_OK;
	n = atomic_load(&up->not_uploaded);
	if (n) {
		cli_error("run: %zu test result%s not uploaded to ReportPortal "
			  "(the local results have %s)",
			  n, n == 1 ? " was" : "s were",
			  n == 1 ? "it" : "them");
		rc = CLI_USAGE;
	}
	if (up->stop_failed)
		rc = CLI_USAGE;
	free(up);
	return rc;
}

void cli_rp_free(struct cli_rp *o)
{
	if (o->token) {
		memset(o->token, 0, strlen(o->token));
		free(o->token);
		o->token = NULL;
	}
}

const char cli_rp_usage[] =
	"ReportPortal (the token from $ATEX_REPORTPORTAL_TOKEN or tmt's\n"
	"$TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN, never an option):\n"
	"  --reportportal URL    upload the run to this ReportPortal too\n"
	"  --rp-project NAME     its project (required with --reportportal)\n"
	"  --rp-launch NAME      the launch's name (default: atex run of "
	"TREE)\n"
	"  --rp-rerun UUID       rerun this launch instead of a new one\n"
	"  --rp-join-subtest SEP subtests as items TEST<SEP>SUBTEST (default:\n"
	"                        nested under their test)\n"
	"  --rp-description TEXT, --rp-attribute KEY:VALUE (repeatable)\n"
	"  --rp-retry-time S     how long one request is retried through "
	"outages\n"
	"                        (default 1800)\n"
	"  --rp-timeout S        how long one try may take (default 60)\n"
	"Results not uploaded are named; the run then exits 2 (the local "
	"results\n"
	"are complete).\n";
