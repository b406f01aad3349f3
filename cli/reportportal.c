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
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/atex.h"
#include "cli.h"

/* The default retry budget of one request: generous, an API restart or a
 * short outage costs nothing; --rp-retry-time changes it. */
#define RP_RETRY_DEFAULT_S 1800

static char *join3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
	return p;
}

/* One ingest waiting for its upload: the artifacts linked into the
 * spool (the orchestrator removes its own copy once the local outputs
 * have it). */
struct job {
	struct job *next;
	char *platform, *test, *dir;
	bool earlier; /* through the earlier-attempts view */
};

struct cli_rp_upload {
	atomic_size_t not_uploaded;
	/* The launch's start failed its quick first try with an outage: the
	 * uploader starts it (retrying) before its first job. */
	bool start_later;
	const char *url; /* the options' */
	int probe_ms;
	/* Ctrl-C: the queue left as it is, the launch finished with one
	 * try (cli_rp_on_first, cli_rp_on_again). */
	atomic_bool abandoned, draining, started;
	bool stop_failed;
	atex_aggregator *rp, *view; /* owned by the tees */
	char *spool;		    /* DIR/.rp-spool */
	atomic_size_t seq;
	/* The queue, served in order by one thread: an earlier attempt is
	 * always posted before its re-run, whose retry it becomes. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	size_t queued;
	bool closing, running;
	pthread_t thread;
};

/* Our aggregator: `local`, then the upload queued (`rp` owned). */
struct tee {
	atex_aggregator base;
	atex_aggregator *local, *rp;
	struct cli_rp_upload *up;
	bool main; /* owns the launch and the uploader: starts and stops */
};

/* Hard links of the tree `src` at `dst` (symlinks copied as symlinks,
 * never followed); 0 or -1 with errno. */
static int link_tree(const char *src, const char *dst)
{
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (mkdir(dst, 0700) < 0)
		return -1;
	d = opendir(src);
	if (!d)
		return -1;
	while (!rc && (e = readdir(d))) {
		char *s, *t;
		struct stat sb;
		char target[PATH_MAX];
		ssize_t n;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		s = join3(src, e->d_name, NULL);
		t = join3(dst, e->d_name, NULL);
		if (!s || !t || lstat(s, &sb) < 0)
			rc = -1;
		else if (S_ISDIR(sb.st_mode))
			rc = link_tree(s, t);
		else if (S_ISLNK(sb.st_mode)) {
			n = readlink(s, target, sizeof(target) - 1);
			rc = n < 0 ? -1
				   : (target[n] = '\0', symlink(target, t));
		} else if (S_ISREG(sb.st_mode))
			rc = link(s, t);
		free(s);
		free(t);
	}
	closedir(d);
	return rc;
}

/* The upload of this run, for the signal thread (cli_rp_on_first):
 * under sig_lock, cleared before it is freed. */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cli_rp_upload *sig_up;
static atomic_bool sig_seen;

static void abandon(struct cli_rp_upload *up, const char *why)
{
	size_t n;

	pthread_mutex_lock(&up->lock);
	n = up->queued;
	pthread_mutex_unlock(&up->lock);
	cli_error("run: %s: %zu upload%s to ReportPortal abandoned, the "
		  "launch finished with one try (the local results are "
		  "complete)",
		  why, n, n == 1 ? "" : "s");
	atomic_store(&up->abandoned, true);
	atex_reportportal_cancel(up->rp);
}

void cli_rp_on_first(int sig, void *data)
{
	struct cli_rp_upload *up;
	size_t n;

	(void)sig;
	(void)data;
	atomic_store(&sig_seen, true);
	pthread_mutex_lock(&sig_lock);
	up = sig_up;
	if (up && !atomic_load(&up->started)) {
		/* Still waiting for the launch's start: not any more. */
		abandon(up, "interrupted");
	} else if (up && atomic_load(&up->draining)) {
		pthread_mutex_lock(&up->lock);
		n = up->queued;
		pthread_mutex_unlock(&up->lock);
		if (n)
			cli_error(
				"run: uploading %zu result%s to ReportPortal; "
				"Ctrl-C again to abandon them (the local "
				"results are complete)",
				n, n == 1 ? "" : "s");
	}
	pthread_mutex_unlock(&sig_lock);
}

bool cli_rp_on_again(int sig, void *data)
{
	struct cli_rp_upload *up;
	bool taken = false;

	(void)sig;
	(void)data;
	pthread_mutex_lock(&sig_lock);
	up = sig_up;
	if (up && !atomic_load(&up->abandoned)) {
		abandon(up, "interrupted again");
		taken = true;
	}
	pthread_mutex_unlock(&sig_lock);
	return taken;
}

/* The launch's start in the background (it failed its first try). */
static void start_late(struct cli_rp_upload *up)
{
	if (atex_aggregator_start(up->rp) < 0)
		cli_error("run: %s; the results are kept here only",
			  atex_error_last());
	else if (atex_reportportal_launch_uuid(up->rp))
		cli_error("run: ReportPortal launch %s",
			  atex_reportportal_launch_uuid(up->rp));
	atomic_store(&up->started, true);
}

static void *uploader(void *arg)
{
	struct cli_rp_upload *up = arg;

	if (up->start_later && !atomic_load(&up->abandoned))
		start_late(up);
	atomic_store(&up->started, true);
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&up->lock);
		while (!up->head && !up->closing)
			pthread_cond_wait(&up->cond, &up->lock);
		j = up->head;
		if (j) {
			up->head = j->next;
			if (!up->head)
				up->tail = NULL;
		}
		pthread_mutex_unlock(&up->lock);
		if (!j)
			return NULL;
		/* Abandoned (Ctrl-C): counted, not tried, not named. */
		if (atomic_load(&up->abandoned))
			atomic_fetch_add(&up->not_uploaded, 1);
		else if (atex_aggregator_ingest(j->earlier ? up->view : up->rp,
						j->platform, j->test,
						j->dir) < 0) {
			atomic_fetch_add(&up->not_uploaded, 1);
			cli_error("run: not uploaded: %s", atex_error_last());
		}
		cli_remove_tree(j->dir, "run");
		pthread_mutex_lock(&up->lock);
		up->queued--;
		pthread_mutex_unlock(&up->lock);
		free(j->platform);
		free(j->test);
		free(j->dir);
		free(j);
	}
}

static int tee_start(atex_aggregator *a)
{
	struct tee *t = (struct tee *)a;
	struct cli_rp_upload *up = t->up;
	int rc = atex_aggregator_start(t->local);

	if (rc < 0 || !t->main)
		return rc;
	/* One quick try before any system is made: a refusal (token,
	 * project, not ReportPortal) is the user's to fix now; an outage
	 * holds nothing, the uploader retries the start. */
	rc = atomic_load(&up->abandoned)
		     ? ATEX_ECANCELED
		     : atex_reportportal_probe(t->rp, up->probe_ms);
	if (rc == ATEX_EINVAL || rc == ATEX_ENOMEM)
		return rc;
	up->start_later = rc < 0;
	if (up->start_later && !atomic_load(&up->abandoned))
		cli_error("run: ReportPortal at %s unreachable (%s): uploads "
			  "will be retried in the background",
			  up->url, atex_error_last());
	cli_remove_tree(up->spool, "run");
	if (mkdir(up->spool, 0700) < 0) {
		cli_error("run: %s: %s", up->spool, strerror(errno));
		return ATEX_EIO;
	}
	if (!up->start_later)
		start_late(up);
	up->running = pthread_create(&up->thread, NULL, uploader, up) == 0;
	return 0;
}

/* The upload of one ingest, queued; false (printed) when it cannot be. */
static bool enqueue(struct cli_rp_upload *up, const char *platform,
		    const char *test_name, const char *artifacts_dir,
		    bool earlier)
{
	struct job *j = calloc(1, sizeof(*j));
	char num[32];

	snprintf(num, sizeof(num), "%zu", atomic_fetch_add(&up->seq, 1));
	if (j) {
		j->platform = strdup(platform);
		j->test = strdup(test_name);
		j->dir = join3(up->spool, num, NULL);
		j->earlier = earlier;
	}
	if (!j || !j->platform || !j->test || !j->dir ||
	    link_tree(artifacts_dir, j->dir) < 0 || !up->running) {
		cli_error("run: not uploaded: %s on %s: %s", test_name,
			  platform,
			  up->running ? strerror(errno) : "no uploader thread");
		if (j && j->dir)
			cli_remove_tree(j->dir, "run");
		if (j) {
			free(j->platform);
			free(j->test);
			free(j->dir);
		}
		free(j);
		return false;
	}
	pthread_mutex_lock(&up->lock);
	if (up->tail)
		up->tail->next = j;
	else
		up->head = j;
	up->tail = j;
	up->queued++;
	pthread_cond_signal(&up->cond);
	pthread_mutex_unlock(&up->lock);
	return true;
}

static int tee_ingest(atex_aggregator *a, const char *platform,
		      const char *test_name, const char *artifacts_dir)
{
	struct tee *t = (struct tee *)a;
	int rc = atex_aggregator_ingest(t->local, platform, test_name,
					artifacts_dir);

	/* Uploads never hold the system the test ran on: queued. */
	if (rc == 0 &&
	    !enqueue(t->up, platform, test_name, artifacts_dir, !t->main))
		atomic_fetch_add(&t->up->not_uploaded, 1);
	return rc;
}

/* The local outputs closed, then every queued upload done, then the
 * launch finished. */
static int tee_stop(atex_aggregator *a)
{
	struct tee *t = (struct tee *)a;
	struct cli_rp_upload *up = t->up;
	int rc = atex_aggregator_stop(t->local);

	if (!t->main)
		return rc;
	pthread_mutex_lock(&up->lock);
	up->closing = true;
	atomic_store(&up->draining, true);
	if (up->queued && !atomic_load(&up->abandoned))
		cli_error("run: uploading the last %zu result%s to "
			  "ReportPortal%s",
			  up->queued, up->queued == 1 ? "" : "s",
			  atomic_load(&sig_seen) ? "; Ctrl-C again to abandon "
						   "them (the local results "
						   "are complete)"
						 : "");
	pthread_cond_signal(&up->cond);
	pthread_mutex_unlock(&up->lock);
	if (up->running)
		pthread_join(up->thread, NULL);
	up->running = false;
	if (atex_aggregator_stop(t->rp) < 0) {
		up->stop_failed = true;
		cli_error("run: %s", atex_error_last());
	}
	cli_remove_tree(up->spool, "run");
	return rc;
}

static void tee_free(atex_aggregator *a)
{
	struct tee *t = (struct tee *)a;

	/* A tee never stopped (setup failed): its uploader ends first. */
	if (t->main && t->up->running)
		tee_stop(a);
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

/* "KEY:VALUE" or "VALUE" whose value is only blanks: ReportPortal
 * refuses a blank value (the key may be blank). */
static bool attribute_value_blank(const char *arg)
{
	const char *colon = strchr(arg, ':');
	const char *value = colon ? colon + 1 : arg;

	return !value[strspn(value, " \t")];
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
		if (attribute_value_blank(arg)) {
			cli_error("--rp-attribute '%s': the value is blank "
				  "(ReportPortal refuses it): KEY:VALUE or "
				  "VALUE",
				  arg);
			return CLI_USAGE;
		}
		o->attributes[o->n_attributes++] = arg;
		return CLI_OK;
	case CLI_OPT_RP_RETRY_TIME:
		return parse_seconds(&o->retry_s, "--rp-retry-time", arg);
	case CLI_OPT_RP_TIMEOUT:
		return parse_seconds(&o->timeout_s, "--rp-timeout", arg);
	case CLI_OPT_RP_PER_PLATFORM:
		o->per_platform = true;
		return CLI_OK;
	}
	return -1;
}

/* The library's checks of the options (the URL, the project, UTF-8...)
 * before anything is done: making an aggregator contacts nobody. */
static int check_by_library(const struct cli_rp *o)
{
	struct atex_reportportal_aggregator_options ro =
		ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *rp = NULL;

	ro.url = o->url;
	ro.project = o->project;
	ro.token = o->token;
	ro.launch_name = o->rerun ? NULL : o->launch ? o->launch : "atex";
	ro.launch_rerun = o->rerun;
	ro.join_subtest = o->join;
	ro.description = o->description;
	ro.attributes = o->n_attributes ? o->attributes : NULL;
	ro.launch_per_platform = o->per_platform;
	if (atex_reportportal_aggregator_new(&rp, &ro) < 0)
		return cli_fail("--reportportal");
	atex_aggregator_free(rp);
	return CLI_OK;
}

int cli_rp_check(struct cli_rp *o)
{
	const char *names[] = {"ATEX_REPORTPORTAL_TOKEN",
			       "TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN"};
	bool any = o->project || o->launch || o->rerun || o->join ||
		   o->description || o->n_attributes || o->retry_s ||
		   o->per_platform || o->timeout_s;

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
	/* unsetenv() only drops the pointer: the value stays in the
	 * process's original environment block, which /proc/PID/environ
	 * shows; overwritten first. */
	for (size_t i = 0; i < 2; i++) {
		char *v = getenv(names[i]);

		if (v)
			memset(v, 'x', strlen(v));
		unsetenv(names[i]);
	}
	if (!o->token) {
		cli_error("--reportportal: no token: set "
			  "ATEX_REPORTPORTAL_TOKEN (or "
			  "TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN)");
		return CLI_USAGE;
	}
	return check_by_library(o);
}

static void upload_free(struct cli_rp_upload *up)
{
	if (!up)
		return;
	pthread_mutex_destroy(&up->lock);
	pthread_cond_destroy(&up->cond);
	free(up->spool);
	free(up);
}

int cli_rp_wrap(struct cli_rp_upload **out, const struct cli_rp *o,
		const char *default_launch, const char *dir,
		atex_aggregator **final, atex_aggregator **earlier)
{
	struct atex_reportportal_aggregator_options ro =
		ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_INIT;
	struct cli_rp_upload *up;
	atex_aggregator *rp = NULL, *view = NULL;

	*out = NULL;
	if (!o->url)
		return CLI_OK;
	up = calloc(1, sizeof(*up));
	if (!up || !(up->spool = join3(dir, ".rp-spool", NULL))) {
		free(up);
		cli_error("run: out of memory");
		return CLI_USAGE;
	}
	pthread_mutex_init(&up->lock, NULL);
	pthread_cond_init(&up->cond, NULL);
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
	ro.launch_per_platform = o->per_platform;
	/* For tests: retries in a fraction of a second. */
	if (getenv("ATEX_TEST_RP_BACKOFF_MS"))
		ro.backoff_first_ms = atoi(getenv("ATEX_TEST_RP_BACKOFF_MS"));
	if (atex_reportportal_aggregator_new(&rp, &ro) < 0 ||
	    atex_reportportal_aggregator_earlier(&view, rp) < 0) {
		atex_aggregator_free(rp);
		upload_free(up);
		return cli_fail("run: --reportportal");
	}
	up->rp = rp;
	up->view = view;
	up->url = o->url;
	/* The first try is quick: a server that does not answer in 10 s is
	 * an outage (retried in the background), not a wait. */
	up->probe_ms =
		o->timeout_s && o->timeout_s < 10 ? o->timeout_s * 1000 : 10000;
	/* The view goes with `earlier`, freed before `final`: before rp. */
	if (tee_new(earlier, view, up, false) != CLI_OK) {
		atex_aggregator_free(view);
		atex_aggregator_free(rp);
		upload_free(up);
		return CLI_USAGE;
	}
	if (tee_new(final, rp, up, true) != CLI_OK) {
		atex_aggregator_free(rp);
		/* `earlier` (a tee) still points at it: not used */
		upload_free(up);
		return CLI_USAGE;
	}
	*out = up;
	pthread_mutex_lock(&sig_lock);
	sig_up = up;
	pthread_mutex_unlock(&sig_lock);
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
	pthread_mutex_lock(&sig_lock);
	if (sig_up == up)
		sig_up = NULL;
	pthread_mutex_unlock(&sig_lock);
	upload_free(up);
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
	"  --rp-launch-per-platform  a launch \"NAME PLATFORM\" per platform\n"
	"Results not uploaded are named; the run then exits 2 (the local "
	"results\n"
	"are complete).\n";

/* ------------------------------------------------------------------------
 * `atex report --reportportal ... DIR`: a results folder of `atex run`
 * uploaded afterwards. Each test's ingest is made again as an artifacts
 * directory (DIR/.rp-upload/N: `results`, `files/` hard links to the
 * stored files, `attempt.json` from attempts.jsonl when part A's sidecar
 * is there) and handed to the same aggregator: earlier attempts
 * (old/results.jsonl, their files in old/files/K/) first, through its
 * earlier view, so that re-runs are retries again.
 */

struct upload_group {
	char *platform, *test;
	json_t *lines;	 /* the result lines of the ingest */
	json_t *attempt; /* its attempts.jsonl line, or NULL */
	unsigned int k;	 /* old: the ingest's number for its test (1...) */
};

/* Reads a JSON Lines file (NULL when missing; a bad line is skipped with
 * a message). */
static json_t *read_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	json_t *all = json_array();
	char *line = NULL;
	size_t cap = 0;
	unsigned long no = 0;

	if (!f || !all) {
		if (f)
			fclose(f);
		json_decref(all);
		return NULL;
	}
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);

		no++;
		if (j)
			json_array_append_new(all, j);
		else
			cli_error("report: %s:%lu: not JSON, skipped", path,
				  no);
	}
	free(line);
	fclose(f);
	return all;
}

static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Groups the lines ([platform, status, test, subtest, files, note]) into
 * ingests: consecutive lines of one platform and test, a new ingest after
 * the test's own result when the next line is the same test's again. */
static size_t group_lines(struct upload_group **out, size_t n, json_t *lines,
			  json_t *attempts)
{
	struct upload_group *g = *out, *cur = NULL;
	bool own_seen = false;
	size_t i;
	json_t *l;

	json_array_foreach(lines, i, l)
	{
		const char *p = json_string_value(json_array_get(l, 0));
		const char *t = json_string_value(json_array_get(l, 2));
		bool own = json_is_null(json_array_get(l, 3));

		if (!p || !t || json_array_size(l) < 6)
			continue;
		if (!cur || strcmp(cur->platform, p) || strcmp(cur->test, t) ||
		    own_seen) {
			struct upload_group *ng =
				realloc(g, (n + 1) * sizeof(*g));

			if (!ng)
				break;
			g = ng;
			cur = &g[n++];
			memset(cur, 0, sizeof(*cur));
			cur->platform = strdup(p);
			cur->test = strdup(t);
			cur->lines = json_array();
			own_seen = false;
			for (size_t k = 0; k + 1 < n; k++)
				if (!strcmp(g[k].platform, p) &&
				    !strcmp(g[k].test, t) && g[k].k)
					cur->k = g[k].k;
			cur->k++;
		}
		own_seen |= own;
		json_array_append(cur->lines, l);
	}
	/* attempts.jsonl: one line per ingest, in the same order per test. */
	for (size_t k = 0; attempts && k < n; k++) {
		unsigned int seen = 0;

		json_array_foreach(attempts, i, l)
		{
			const char *p = json_string_value(
				json_object_get(l, "platform"));
			const char *t =
				json_string_value(json_object_get(l, "test"));

			if (p && t && !strcmp(p, g[k].platform) &&
			    !strcmp(t, g[k].test) && ++seen == g[k].k) {
				g[k].attempt = json_incref(l);
				break;
			}
		}
	}
	*out = g;
	return n;
}

/* DIR/.rp-upload/N made from one group; its path, or NULL (printed). */
static char *make_artifacts(const char *work, size_t n,
			    const struct upload_group *g, const char *files)
{
	char num[32], *dir, *res, *att;
	FILE *f;
	size_t i;
	json_t *l;

	snprintf(num, sizeof(num), "%zu", n);
	dir = join3(work, num, NULL);
	res = dir ? join3(dir, "results", NULL) : NULL;
	att = dir ? join3(dir, "attempt.json", NULL) : NULL;
	if (!res || !att || mkdirs(dir) < 0 || !(f = fopen(res, "w"))) {
		cli_error("report: %s: %s", dir ? dir : work, strerror(errno));
		free(dir);
		free(res);
		free(att);
		return NULL;
	}
	json_array_foreach(g->lines, i, l)
	{
		json_t *r = json_object(), *fl = json_array_get(l, 4);
		const char *sub = json_string_value(json_array_get(l, 3));
		size_t k;
		json_t *name;
		char *text;

		json_object_set(r, "status", json_array_get(l, 1));
		if (sub)
			json_object_set_new(r, "name", json_string(sub));
		if (json_is_string(json_array_get(l, 5)))
			json_object_set(r, "note", json_array_get(l, 5));
		json_object_set(r, "files",
				json_is_array(fl) ? fl : json_array());
		text = json_dumps(r, JSON_COMPACT);
		if (text)
			fprintf(f, "%s\n", text);
		free(text);
		json_decref(r);
		/* The stored files, linked where the test had them:
		 * FILES/PLATFORM/TEST/[SUB/]NAME -> files/[SUB/]NAME. */
		json_array_foreach(fl, k, name)
		{
			const char *fn = json_string_value(name);
			const char *test = g->test + (g->test[0] == '/');
			const char *s2 = sub ? sub + (sub[0] == '/') : NULL;
			char *inner = NULL, *src = NULL, *dst = NULL, *slash;

			if (!fn)
				continue;
			inner = s2 && *s2 ? join3(s2, fn, NULL) : strdup(fn);
			src = inner ? malloc(strlen(files) +
					     strlen(g->platform) +
					     strlen(test) + strlen(inner) + 4)
				    : NULL;
			dst = inner ? join3(dir, "files", inner) : NULL;
			if (src && dst) {
				sprintf(src, "%s/%s/%s/%s", files, g->platform,
					test, inner);
				slash = strrchr(dst, '/');
				*slash = '\0';
				mkdirs(dst);
				*slash = '/';
				if (link(src, dst) < 0 && errno != EEXIST)
					cli_error("report: %s: %s", src,
						  strerror(errno));
			}
			free(inner);
			free(src);
			free(dst);
		}
	}
	fclose(f);
	if (g->attempt && (f = fopen(att, "w"))) {
		char *text = json_dumps(g->attempt, JSON_COMPACT);

		if (text)
			fputs(text, f);
		free(text);
		fclose(f);
	}
	free(res);
	free(att);
	return dir;
}

static size_t upload_groups(atex_aggregator *agg, const char *work,
			    size_t *counter, struct upload_group *g, size_t n,
			    const char *files, bool old)
{
	size_t failed = 0;

	for (size_t i = 0; i < n; i++) {
		char *fdir = NULL, num[32], *dir;

		if (old) {
			snprintf(num, sizeof(num), "%u", g[i].k);
			fdir = join3(files, num, NULL);
		}
		dir = make_artifacts(work, ++*counter, &g[i],
				     old ? fdir : files);
		if (!dir || atex_aggregator_ingest(agg, g[i].platform,
						   g[i].test, dir) < 0) {
			if (dir)
				cli_error("report: not uploaded: %s",
					  atex_error_last());
			failed++;
		}
		if (dir)
			cli_remove_tree(dir, "report");
		free(dir);
		free(fdir);
	}
	return failed;
}

static void free_groups(struct upload_group *g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(g[i].platform);
		free(g[i].test);
		json_decref(g[i].lines);
		json_decref(g[i].attempt);
	}
	free(g);
}

/* The launch starts with the earliest attempt (ISO times of one format
 * compare as strings); NULL: now. */
static const char *earliest_start(const struct upload_group *a, size_t na,
				  const struct upload_group *b, size_t nb)
{
	const char *min = NULL;

	for (size_t i = 0; i < na + nb; i++) {
		const struct upload_group *g = i < na ? &a[i] : &b[i - na];
		const char *s =
			json_string_value(json_object_get(g->attempt, "start"));

		if (s && (!min || strcmp(s, min) < 0))
			min = s;
	}
	return min;
}

/* The launch ends with the run: run.json's "ended", else the latest
 * attempt's end; NULL: now. */
static const char *run_end(const json_t *info, const struct upload_group *a,
			   size_t n)
{
	const char *max = json_string_value(json_object_get(info, "ended"));

	for (size_t i = 0; !max && i < n; i++) {
		const char *e =
			json_string_value(json_object_get(a[i].attempt, "end"));

		if (e && (!max || strcmp(e, max) > 0))
			max = e;
	}
	for (size_t i = 0; i < n; i++) {
		const char *e =
			json_string_value(json_object_get(a[i].attempt, "end"));

		if (e && max && strcmp(e, max) > 0)
			max = e;
	}
	return max;
}

int cli_rp_upload_dir(const struct cli_rp *o, const char *dir)
{
	struct atex_reportportal_aggregator_options ro =
		ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_INIT;
	char *p_final = join3(dir, "results.jsonl", NULL);
	char *p_old = join3(dir, "old/results.jsonl", NULL);
	char *p_att = join3(dir, "attempts.jsonl", NULL);
	char *p_oatt = join3(dir, "old/attempts.jsonl", NULL);
	char *files = join3(dir, "files", NULL);
	char *ofiles = join3(dir, "old/files", NULL);
	char *work = join3(dir, ".rp-upload", NULL);
	json_t *fin = NULL, *old = NULL, *att = NULL, *oatt = NULL;
	json_t *info = NULL;
	struct upload_group *gf = NULL, *go = NULL;
	atex_aggregator *rp = NULL, *view = NULL;
	size_t nf = 0, no = 0, failed = 0, counter = 0;
	int rc = CLI_USAGE;

	if (!p_final || !p_old || !p_att || !p_oatt || !files || !ofiles ||
	    !work)
		goto out;
	fin = read_lines(p_final);
	if (!fin) {
		cli_error("report: --reportportal needs a results folder of "
			  "atex run: %s: %s",
			  p_final, strerror(errno));
		goto out;
	}
	old = read_lines(p_old);
	att = read_lines(p_att);
	oatt = read_lines(p_oatt);
	nf = group_lines(&gf, 0, fin, att);
	no = old ? group_lines(&go, 0, old, oatt) : 0;
	ro.url = o->url;
	ro.project = o->project;
	ro.token = o->token;
	ro.launch_name = o->rerun ? NULL : o->launch ? o->launch : dir;
	ro.launch_rerun = o->rerun;
	ro.join_subtest = o->join;
	ro.description = o->description;
	ro.attributes = o->n_attributes ? o->attributes : NULL;
	ro.retry_total_ms =
		(o->retry_s ? o->retry_s : RP_RETRY_DEFAULT_S) * 1000;
	ro.timeout_ms = o->timeout_s * 1000;
	if (getenv("ATEX_TEST_RP_BACKOFF_MS"))
		ro.backoff_first_ms = atoi(getenv("ATEX_TEST_RP_BACKOFF_MS"));
	ro.start_time = earliest_start(gf, nf, go, no);
	{
		char *p_info = join3(dir, "run.json", NULL);

		info = p_info ? json_load_file(p_info, 0, NULL) : NULL;
		free(p_info);
	}
	ro.end_time = run_end(info, gf, nf);
	ro.launch_per_platform = o->per_platform;
	if (atex_reportportal_aggregator_new(&rp, &ro) < 0 ||
	    atex_reportportal_aggregator_earlier(&view, rp) < 0) {
		cli_fail("report: --reportportal");
		goto out;
	}
	cli_remove_tree(work, "report");
	if (mkdirs(work) < 0) {
		cli_error("report: %s: %s", work, strerror(errno));
		goto out;
	}
	if (atex_aggregator_start(rp) < 0) {
		cli_fail("report");
		goto out;
	}
	if (atex_reportportal_launch_uuid(rp))
		cli_error("report: ReportPortal launch %s",
			  atex_reportportal_launch_uuid(rp));
	failed = upload_groups(view, work, &counter, go, no, ofiles, true);
	failed += upload_groups(rp, work, &counter, gf, nf, files, false);
	rc = CLI_OK;
	if (atex_aggregator_stop(rp) < 0)
		rc = cli_fail("report");
	if (failed) {
		cli_error("report: %zu test result%s not uploaded to "
			  "ReportPortal",
			  failed, failed == 1 ? " was" : "s were");
		rc = CLI_USAGE;
	}
out:
	if (work)
		cli_remove_tree(work, "report");
	atex_aggregator_free(view);
	atex_aggregator_free(rp);
	free_groups(gf, nf);
	free_groups(go, no);
	json_decref(fin);
	json_decref(old);
	json_decref(att);
	json_decref(oatt);
	json_decref(info);
	free(p_final);
	free(p_old);
	free(p_att);
	free(p_oatt);
	free(files);
	free(ofiles);
	free(work);
	return rc;
}
