/*
 * run.c - `atex run [PROVISIONER] [--context K=V]... [--plan NAME]
 * [--filter EXPR]... [--env K=V]... [--reruns N] [--order ORDER]
 * [--platform NAME] [--max-spares N] [--history PATH]... --results DIR
 * TREE`: discover the
 * tests, provision a pool, run everything ad hoc, and write
 *   DIR/results.jsonl, DIR/files/      the final results (PROTOCOL.md 5)
 *   DIR/old/results.jsonl, DIR/old/files/N/  earlier attempts of re-runs
 *                                      (attempt N's files)
 *   DIR/results.sqlite                 every attempt, queryable
 *   DIR/attempts.jsonl, DIR/old/attempts.jsonl  each attempt's timings
 *                                      (PROTOCOL.md 5, the sidecar)
 *   DIR/run.json                       the run: when, what, where from
 *   DIR/report.html                    the report
 * and with --reportportal URL --rp-project P also a ReportPortal launch
 * (cli/reportportal.c: uploads queued behind the local results, never
 * costing them; exit 2 when one was not uploaded).
 *
 * It is the library's blocks strung together and nothing more: the
 * provisioner from the shared options, the fmf executor as the factory,
 * JSON Lines + SQLite behind a multi aggregator, the ad-hoc orchestrator,
 * the HTML report. On a terminal a live progress line sits under the
 * result lines; otherwise every event is a plain log line.
 *
 * Exit status: 0 when every final result is pass/info/warn/skip, 1 when
 * any is something else, 2 on usage and setup errors (systems could not
 * be had) and when results could not be written (a full disk: the
 * message says why, the artifacts stay in DIR/.running), 128+N after
 * signal N (the first one aborts the run: running
 * tests are canceled and ingested, every system released).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atex/atex.h"
#include "cli.h"

enum {
	OPT_RERUNS = 0x200,
	OPT_ORDER,
	OPT_PLATFORM,
	OPT_MAX_SPARES,
	OPT_RESULTS,
	OPT_HISTORY,
};

static const struct option run_options[] = {
	CLI_PROVISION_LONG_OPTIONS,
	CLI_SUITE_LONG_OPTIONS,
	{"filter", required_argument, NULL, CLI_OPT_FILTER},
	CLI_SUITE_NAME_OPTIONS,
	{"reruns", required_argument, NULL, OPT_RERUNS},
	{"order", required_argument, NULL, OPT_ORDER},
	{"platform", required_argument, NULL, OPT_PLATFORM},
	{"max-spares", required_argument, NULL, OPT_MAX_SPARES},
	{"results", required_argument, NULL, OPT_RESULTS},
	{"history", required_argument, NULL, OPT_HISTORY},
	CLI_RP_LONG_OPTIONS,
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct run_args {
	struct cli_provision prov;
	struct cli_suite suite;
	unsigned int reruns;
	atex_next_test_hook order;
	const char *platform;
	unsigned int max_spares;
	const char *results;
	const char *tree;
	/* --history: earlier runs' results (run.json's "history"). */
	const char **history_paths;
	size_t n_history;
	bool order_given;
	struct cli_rp rp; /* --reportportal... (reportportal.c) */
};

/* What the signal thread, the orchestrator's threads and the main thread
 * share. */
struct run_state {
	/* Stops the provisioner and orchestrator published there. */
	struct cli_signals signals;
	atex_provisioner *prov;
	atex_fmf_discovery *disc;
	atex_fmf_stage *stage; /* one upload source for every system */
	const char *const *env;
	/* Progress; events come one at a time (the orchestrator serializes
	 * them), so no lock is needed for these. */
	bool live; /* stderr is a terminal: keep a progress line */
	bool progress_shown;
	double started;
	size_t total, done, running, systems;
	size_t passed, failed; /* final results, by test */
	size_t not_ingested;   /* attempts no aggregator took */
	char *ingest_error;    /* why the first of them was not (owned) */
	bool all_ok;
	json_t *seen; /* the systems that ran a test, as keys */
	/* --history: expected seconds per discovery index, which tests
	 * started (and when, 0: not running), the queued tests' sum. */
	atex_history *history;
	double *expected, *running_since;
	json_t *index_of;	   /* shown name -> discovery index */
	unsigned char *test_state; /* enum test_state */
	/* The estimate's simulation (atex_history_estimate_run): every
	 * test in the order the run's policy hands them out, and scratch
	 * for the queued tests' and the systems' times (n each). */
	atex_next_test_hook pick;
	void *pick_data;
	size_t *order;
	double *queued_s, *busy_s;
};

enum test_state { TEST_QUEUED, TEST_RUNNING, TEST_DONE };

static void run_usage(FILE *out)
{
	fprintf(out,
		"usage: atex run PROVISIONER [--context K=V]... [--plan NAME] "
		"[--filter EXPR]...\n"
		"                [--test REGEX]... [--exclude REGEX]...\n"
		"                [--env K=V]... [--reruns N] [--order ORDER] "
		"[--platform NAME]\n"
		"                [--max-spares N] [--history PATH]... "
		"--results "
		"DIR TREE\n"
		"\n"
		"Runs every test of TREE (its plan) on a pool of systems, the "
		"next test\n"
		"on whichever system is free, and writes DIR/results.jsonl, "
		"DIR/files/,\n"
		"DIR/results.sqlite and DIR/report.html (earlier attempts of "
		"re-run\n"
		"tests in DIR/old/), each attempt's times in "
		"DIR/attempts.jsonl "
		"and the\n"
		"run's (its tree's git commit, context) in DIR/run.json.\n"
		"Exit status: 0 when every final result is pass, info, warn or "
		"skip,\n"
		"1 when any is not (a result without status is an error), 2 "
		"on\n"
		"usage or setup errors, when nothing is selected and when "
		"results\n"
		"could not be written (a full disk), 130 after Ctrl-C.\n"
		"\n"
		"  --filter EXPR     only tests matching the fmf filter "
		"(replaces "
		"the plan's)\n"
		"  --test REGEX      only tests whose name matches one "
		"(re.search)\n"
		"  --exclude REGEX   leave out tests whose name matches\n"
		"  --reruns N        run a failed test (fail, error, infra) up "
		"to "
		"N more times\n"
		"  --order ORDER     fmf (default), longest-first, priority "
		"(extra-priority)\n"
		"                    or history (the default with --history)\n"
		"  --platform NAME   the name results are filed under "
		"(default: "
		"the provisioner kind)\n"
		"  --max-spares N    keep up to N prepared systems idle for "
		"replacements\n"
		"  --history PATH    an earlier run's results.sqlite or "
		"results "
		"folder\n"
		"                    (repeatable): tests run longest measured "
		"time first\n"
		"                    (never seen ones before them), and the "
		"estimate of the\n"
		"                    time left comes from it; an explicit "
		"--order wins\n"
		"                    over its order (--order history is its "
		"default);\n"
		"                    every platform's results count, "
		"whatever --platform;\n"
		"                    DIR may not hold a history\n"
		"\n%s\n%s",
		cli_provision_usage, cli_rp_usage);
}

/* ------------------------------------------------------------------------
 * Progress and events.
 */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void clear_progress(struct run_state *st)
{
	if (st->live && st->progress_shown) {
		fputs("\r\033[K", stderr);
		st->progress_shown = false;
	}
}

/*
 * The time left from history, simulated (atex/history.h): the running
 * tests' expected time left as their systems' free time, the other systems
 * free now, the queued tests handed out in the run's order to the system
 * free first. O(n log systems) per event: 5000 tests take well under a
 * millisecond (tests/unit/test_history_hardening.c measures it).
 */
static double history_left(const struct run_state *st)
{
	size_t n = atex_fmf_discovery_count(st->disc), q = 0, m = 0;
	double now = now_s();

	for (size_t i = 0; i < n; i++) {
		double left = st->expected[i] - (now - st->running_since[i]);

		if (st->test_state[i] == TEST_RUNNING)
			st->busy_s[m++] = left > 0 ? left : 0;
	}
	for (size_t k = 0; k < n; k++) {
		if (st->test_state[st->order[k]] == TEST_QUEUED)
			st->queued_s[q++] = st->expected[st->order[k]];
	}
	/* Idle systems; one while none is ready yet. */
	while (m < n && (m < st->systems || m == 0))
		st->busy_s[m++] = 0;
	return atex_history_estimate_run(st->queued_s, q, st->busy_s, m);
}

/* Test i goes back to the queue, in front (a re-run): it moves in the
 * hand-out order before the first queued test the policy would pick it
 * before. */
static void requeue(struct run_state *st, size_t i)
{
	size_t n = atex_fmf_discovery_count(st->disc), at = 0, to = n - 1;

	while (at < n && st->order[at] != i)
		at++;
	if (at == n)
		return;
	memmove(&st->order[at], &st->order[at + 1],
		(n - at - 1) * sizeof(*st->order));
	for (size_t k = 0; k < n - 1; k++) {
		size_t pair[2] = {i, st->order[k]};

		if (st->test_state[pair[1]] == TEST_QUEUED &&
		    st->pick(st->disc, pair, 2, st->pick_data) == 0) {
			to = k;
			break;
		}
	}
	memmove(&st->order[to + 1], &st->order[to],
		(n - 1 - to) * sizeof(*st->order));
	st->order[to] = i;
}

/* The test an event names, as a discovery index; -1 if unknown. */
static long event_test(const struct run_state *st, const char *name)
{
	json_t *v = name ? json_object_get(st->index_of, name) : NULL;

	return v ? (long)json_integer_value(v) : -1;
}

static void track_test(struct run_state *st,
		       const struct atex_orchestrator_event *ev)
{
	long i;

	if (!st->test_state || (ev->type != ATEX_EVENT_TEST_STARTED &&
				ev->type != ATEX_EVENT_TEST_FINISHED))
		return;
	i = event_test(st, ev->test_name);
	if (i < 0)
		return;
	if (ev->type == ATEX_EVENT_TEST_STARTED) {
		st->test_state[i] = TEST_RUNNING;
		st->running_since[i] = now_s();
	} else {
		st->test_state[i] = ev->rerun ? TEST_QUEUED : TEST_DONE;
		if (ev->rerun)
			requeue(st, (size_t)i);
	}
}

static void show_progress(struct run_state *st)
{
	double elapsed = now_s() - st->started;
	char eta[32] = "?";

	if (!st->live)
		return;
	if (st->test_state && st->done < st->total)
		snprintf(eta, sizeof(eta), "~%.0fs", history_left(st));
	else if (st->done > 0 && st->done < st->total)
		snprintf(eta, sizeof(eta), "~%.0fs",
			 elapsed / (double)st->done *
				 (double)(st->total - st->done));
	else if (st->done == st->total)
		snprintf(eta, sizeof(eta), "0s");
	fprintf(stderr,
		"\r\033[K[%zu/%zu] running %zu on %zu systems, %zu passed, "
		"%zu failed, %.0fs elapsed, %s left",
		st->done, st->total, st->running, st->systems, st->passed,
		st->failed, elapsed, eta);
	fflush(stderr);
	st->progress_shown = true;
}

/* Prints the results of one finished attempt; returns whether they were
 * all fine. */
static bool print_attempt(const struct atex_orchestrator_event *ev)
{
	const struct atex_attempt *a = ev->ended;
	bool ok = json_array_size(a->results) > 0;
	size_t i;
	json_t *r;

	json_array_foreach(a->results, i, r)
	{
		const char *status =
			json_string_value(json_object_get(r, "status"));
		const char *sub = json_string_value(json_object_get(r, "name"));
		const char *note =
			json_string_value(json_object_get(r, "note"));

		char suffix[64] = "";

		ok &= cli_status_ok(status);
		if (ev->rerun || a->attempt > 1)
			snprintf(suffix, sizeof(suffix), "  [attempt %u%s]",
				 a->attempt,
				 ev->rerun ? ", running again" : "");
		cli_print_result(status, a->test_name, sub, note, suffix);
	}
	/* Results that could not be written here (a full disk) are not
	 * the test's doing. */
	if (json_array_size(a->results) == 0)
		cli_print_result("error", a->test_name, NULL,
				 a->rc == ATEX_EIO
					 ? "no results: they could not be "
					   "written on this machine (see the "
					   "errors above)"
					 : "no results",
				 NULL);
	fflush(stdout);
	return ok;
}

/* The length of `s` without its trailing newlines. */
static size_t trimmed_length(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n && s[n - 1] == '\n')
		n--;
	return n;
}

static void on_event(const struct atex_orchestrator_event *ev, void *data)
{
	struct run_state *st = data;

	st->total = ev->tests_total;
	st->done = ev->tests_done;
	st->running = ev->tests_running;
	st->systems = ev->systems;
	track_test(st, ev);
	clear_progress(st);
	switch (ev->type) {
	case ATEX_EVENT_SYSTEM_READY:
		if (!st->live)
			cli_error("run: system %s ready", ev->remote);
		break;
	case ATEX_EVENT_SYSTEM_FAILED:
		/* The message may end with the script's output and its
		 * newline. */
		cli_error("run: system %s failed to set up: %.*s", ev->remote,
			  (int)trimmed_length(ev->message), ev->message);
		break;
	case ATEX_EVENT_SYSTEM_LOST:
		cli_error("run: system %s lost: %s", ev->remote, ev->message);
		break;
	case ATEX_EVENT_SYSTEM_RELEASED:
		if (!st->live)
			cli_error("run: system %s released", ev->remote);
		break;
	case ATEX_EVENT_TEST_STARTED:
		if (st->seen && ev->remote)
			json_object_set_new(st->seen, ev->remote, json_true());
		if (!st->live)
			cli_error("run: %s started on %s", ev->test_name,
				  ev->remote);
		break;
	case ATEX_EVENT_TEST_FINISHED: {
		bool ok = print_attempt(ev);

		/* Its artifacts stay in DIR/.running (the orchestrator keeps
		 * them); the run cannot pass. */
		if (ev->ingest_rc < 0) {
			st->not_ingested++;
			st->all_ok = false;
			/* The worker's error, still the ingest's (a full
			 * disk: the run's last words say so). */
			if (!st->ingest_error)
				st->ingest_error = strdup(atex_error_last());
		}
		if (!ev->rerun) {
			st->all_ok &= ok;
			if (ok)
				st->passed++;
			else
				st->failed++;
		}
		break;
	}
	}
	fflush(stderr);
	show_progress(st);
}

/* ------------------------------------------------------------------------
 * The pieces.
 */

static int make_executor(atex_executor **out, atex_remote *r, void *data)
{
	struct run_state *st = data;
	struct atex_fmf_executor_options o = ATEX_FMF_EXECUTOR_OPTIONS_INIT;

	o.connection = atex_remote_connection(r);
	o.discovery = st->disc;
	o.env = st->env;
	o.stage = st->stage;
	return atex_fmf_executor_new(out, &o);
}

static char *path_in(const char *dir, const char *name)
{
	char *p = malloc(strlen(dir) + strlen(name) + 2);

	if (p)
		sprintf(p, "%s/%s", dir, name);
	return p;
}

/* The results directory: created, and what an earlier run into it left
 * under our names removed, so that nothing stale mixes in. */
static int prepare_results_dir(const char *dir)
{
	static const char *const ours[] = {"files", "old", ".running"};

	struct stat sb;

	if ((mkdir(dir, 0755) < 0 && errno != EEXIST) || stat(dir, &sb) < 0) {
		cli_error("run: --results %s: %s", dir, strerror(errno));
		return CLI_USAGE;
	}
	if (!S_ISDIR(sb.st_mode)) {
		cli_error("run: --results %s: not a directory", dir);
		return CLI_USAGE;
	}
	if (cli_check_owner(dir, "run: --results") < 0)
		return CLI_USAGE;
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		char *p = path_in(dir, ours[i]);
		/* Made again at once, and ours: in a sticky DIR (/tmp)
		 * one another user made first could hold links. */
		int rc = p && cli_remove_tree(p, "run") == 0
				 ? cli_own_dir(p, "run: --results")
				 : -1;

		free(p);
		if (rc < 0)
			return CLI_USAGE;
	}
	return CLI_OK;
}

/* final: a multi borrowing jsonl and sqlite; earlier: a multi owning
 * its JSON Lines file and the SQLite earlier-attempts view. */
struct aggregators {
	atex_aggregator *final, *earlier, *jsonl, *sqlite;
	struct cli_rp_upload *rp; /* with --reportportal */
};

static char *default_launch(const char *tree)
{
	char *abs = realpath(tree, NULL);
	const char *base = abs ? strrchr(abs, '/') : NULL;
	char *name = NULL;

	if (base && base[1] &&
	    (name = malloc(strlen(base) + sizeof("atex run of "))))
		sprintf(name, "atex run of %s", base + 1);
	free(abs);
	return name ? name : strdup("atex run");
}

static int make_aggregators(struct aggregators *ag, const char *dir,
			    const char *run_json, const struct run_args *a)
{
	struct atex_jsonl_aggregator_options jo =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	struct atex_sqlite_aggregator_options so =
		ATEX_SQLITE_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *parts[2] = {NULL, NULL};
	char *jsonl = path_in(dir, "results.jsonl");
	char *files = path_in(dir, "files");
	char *old = path_in(dir, "old");
	char *old_jsonl = old ? path_in(old, "results.jsonl") : NULL;
	char *old_files = old ? path_in(old, "files") : NULL;
	char *db = path_in(dir, "results.sqlite");
	char *attempts = path_in(dir, "attempts.jsonl");
	char *old_attempts = old ? path_in(old, "attempts.jsonl") : NULL;
	int rc = CLI_USAGE;

	if (!jsonl || !files || !old_jsonl || !old_files || !db || !attempts ||
	    !old_attempts)
		goto out;
	if (mkdir(old, 0755) < 0 && errno != EEXIST) {
		cli_error("run: %s: %s", old, strerror(errno));
		rc = CLI_USAGE;
		goto quiet;
	}
	jo.path = jsonl;
	jo.files_dir = files;
	jo.attempts_path = attempts;
	so.path = db;
	so.run_json = run_json;
	if (atex_jsonl_aggregator_new(&ag->jsonl, &jo) < 0 ||
	    atex_sqlite_aggregator_new(&ag->sqlite, &so) < 0)
		goto out;
	parts[0] = ag->jsonl;
	parts[1] = ag->sqlite;
	if (atex_multi_aggregator_new(&ag->final, parts, 2, false) < 0)
		goto out;
	parts[0] = parts[1] = NULL;
	jo.path = old_jsonl;
	jo.files_dir = old_files;
	/* old/files/N/...: a test re-run twice keeps both attempts' files. */
	jo.attempt_dirs = true;
	jo.attempts_path = old_attempts;
	jo.attempts_earlier = true;
	if (atex_jsonl_aggregator_new(&parts[0], &jo) < 0 ||
	    atex_sqlite_aggregator_earlier(&parts[1], ag->sqlite) < 0 ||
	    atex_multi_aggregator_new(&ag->earlier, parts, 2, true) < 0)
		goto out;
	parts[0] = parts[1] = NULL;
	if (a->rp.url) {
		char *launch = default_launch(a->tree);

		rc = launch ? cli_rp_wrap(&ag->rp, &a->rp, launch, dir,
					  &ag->final, &ag->earlier)
			    : CLI_USAGE;
		free(launch);
		if (rc != CLI_OK)
			goto quiet;
		rc = CLI_USAGE;
	}
	if (atex_aggregator_start(ag->final) < 0 ||
	    atex_aggregator_start(ag->earlier) < 0)
		goto out;
	rc = CLI_OK;
out:
	if (rc != CLI_OK)
		cli_fail("run: results");
quiet:
	atex_aggregator_free(parts[0]);
	atex_aggregator_free(parts[1]);
	free(jsonl);
	free(files);
	free(old);
	free(old_jsonl);
	free(old_files);
	free(db);
	free(attempts);
	free(old_attempts);
	return rc;
}

/* Stops and frees; the SQLite view (in `earlier`) goes before its
 * database. */
static void free_aggregators(struct aggregators *ag)
{
	if (ag->earlier && atex_aggregator_stop(ag->earlier) < 0)
		cli_fail("run: results");
	if (ag->final && atex_aggregator_stop(ag->final) < 0)
		cli_fail("run: results");
	atex_aggregator_free(ag->earlier);
	atex_aggregator_free(ag->final);
	atex_aggregator_free(ag->jsonl);
	atex_aggregator_free(ag->sqlite);
}

/* DIR/report.html from DIR/results.jsonl; *passed tells whether every
 * final result there passed. */
static int write_report(const char *dir, bool *passed)
{
	char *jsonl = path_in(dir, "results.jsonl");
	char *html = path_in(dir, "report.html");
	atex_results *res = NULL;
	int rc = CLI_OK;

	if (!jsonl || !html || atex_results_load(&res, jsonl) < 0 ||
	    atex_report_html(res, html, "atex run") < 0)
		rc = cli_fail("run: report");
	else
		cli_error("run: report in %s", html);
	/* What was written counts too: an aggregator adds an error result
	 * when a test's files could not be stored. */
	*passed = res && atex_results_passed(res);
	atex_results_free(res);
	free(jsonl);
	free(html);
	return rc;
}

/* ------------------------------------------------------------------------
 * Running.
 */

static const char *default_platform(const struct run_args *a)
{
	if (a->prov.podman)
		return "podman";
	if (a->prov.vm)
		return "vm";
	if (a->prov.n_ssh)
		return "ssh";
	if (a->prov.tf)
		return "testingfarm";
	return "local";
}

/* Serves until the run ends; CLI_OK or CLI_USAGE (systems could not be
 * had: printed). */
static int serve(struct run_state *st, const struct run_args *a,
		 struct aggregators *ag)
{
	struct atex_orchestrator_options o = ATEX_ORCHESTRATOR_OPTIONS_INIT;
	atex_orchestrator *orch = NULL;
	char *work = path_in(a->results, ".running");
	int rc;

	o.platform = a->platform ? a->platform : default_platform(a);
	o.discovery = st->disc;
	o.provisioners = &st->prov;
	o.n_provisioners = 1;
	o.executor_new = make_executor;
	o.aggregator = ag->final;
	o.earlier = ag->earlier;
	o.work_dir = work;
	o.next_test = a->order;
	o.event = on_event;
	o.userdata = st;
	o.max_reruns = a->reruns;
	o.max_spares = a->max_spares;
	/* An explicit --order wins; the history's order is the default. */
	if (!a->order)
		o.history = st->history;
	if (!work || atex_adhoc_orchestrator_new(&orch, &o) < 0) {
		free(work);
		return cli_fail("run");
	}
	rc = CLI_OK;
	/* While serving, a signal aborts the orchestrator alone: its
	 * workers cancel their tests, clean their systems (the work
	 * directory goes over the still open connection) and release them
	 * within a second; the provisioner is stopped after, which also
	 * ends systems still being made. Aborting it at once would cut the
	 * connections under that cleanup. */
	if (cli_signals_publish(&st->signals, NULL, NULL, orch)) {
		rc = atex_orchestrator_serve_forever(orch);
		clear_progress(st);
		if (rc < 0 && rc != ATEX_ECANCELED) {
			cli_fail("run");
			if (atex_orchestrator_not_run(orch))
				cli_error("run: %zu tests not run",
					  atex_orchestrator_not_run(orch));
			rc = CLI_USAGE;
		} else {
			rc = CLI_OK;
		}
	}
	cli_signals_publish(&st->signals, st->prov, NULL, NULL);
	atex_orchestrator_free(orch);
	if (st->not_ingested)
		cli_error("run: the results of %zu attempts could not be "
			  "written (%s); their artifacts are kept in %s",
			  st->not_ingested,
			  st->ingest_error ? st->ingest_error : "?", work);
	else if (rmdir(work) < 0 && errno != ENOENT)
		cli_remove_tree(work, "run");
	free(work);
	return rc;
}

/* run.json's "history": the --history paths, absolute (null without). */
static int set_history_paths(json_t *info, const struct run_args *a)
{
	json_t *list;

	if (!a->n_history)
		return 0;
	list = json_array();
	for (size_t i = 0; list && i < a->n_history; i++) {
		char *abs = realpath(a->history_paths[i], NULL);

		if (json_array_append_new(
			    list,
			    json_string(abs ? abs : a->history_paths[i])) < 0) {
			free(abs);
			json_decref(list);
			list = NULL;
			break;
		}
		free(abs);
	}
	if (!list || json_object_set_new(info, "history", list) < 0) {
		cli_error("run: run.json: out of memory");
		return -1;
	}
	return 0;
}

/* DIR/run.json at the start, and the SQLite run_json from it. */
static int start_runinfo(json_t **info, char **run_json,
			 const struct run_args *a)
{
	*info = cli_runinfo_new(a->platform ? a->platform : default_platform(a),
				default_platform(a), a->tree, a->suite.context);
	if (!*info || set_history_paths(*info, a) < 0)
		return CLI_USAGE;
	*run_json = cli_runinfo_sqlite_json(*info);
	if (!*run_json) {
		cli_error("run: run.json: out of memory");
		return CLI_USAGE;
	}
	return cli_runinfo_write(*info, a->results);
}

static int run_suite(struct run_state *st, const struct run_args *a)
{
	struct aggregators ag = {0};
	bool passed = true;
	json_t *info = NULL;
	char *run_json = NULL, ended[40];
	int rc;

	rc = prepare_results_dir(a->results);
	if (rc == CLI_OK)
		rc = start_runinfo(&info, &run_json, a);
	if (rc == CLI_OK)
		rc = make_aggregators(&ag, a->results, run_json, a);
	if (rc == CLI_OK && atex_fmf_discovery_count(st->disc) == 0)
		fprintf(stderr, "atex: run: no tests to run\n");
	if (rc == CLI_OK && atex_fmf_discovery_count(st->disc) > 0) {
		if (atex_fmf_stage_new(&st->stage, st->disc) < 0 ||
		    atex_provisioner_start(st->prov) < 0)
			rc = cli_fail("run");
		else
			rc = serve(st, a, &ag);
	}
	/* One end for run.json and the `run` table. */
	cli_runinfo_now(ended);
	if (ag.sqlite)
		atex_sqlite_aggregator_set_ended(ag.sqlite, ended);
	/* Results so far are kept whatever happened: flushed, reported. */
	free_aggregators(&ag);
	/* Not uploaded: the run failed, its results here are complete. */
	if (cli_rp_finish(ag.rp) != CLI_OK && rc == CLI_OK)
		rc = CLI_USAGE;
	if (info &&
	    cli_runinfo_finish(info, a->results, json_object_size(st->seen),
			       ended) != CLI_OK &&
	    rc == CLI_OK)
		rc = CLI_USAGE;
	json_decref(info);
	free(run_json);
	if (ag.final && write_report(a->results, &passed) != CLI_OK &&
	    rc == CLI_OK)
		rc = CLI_USAGE;
	/* Results that could not be written (a full disk) are not a
	 * verdict on the tests: the run itself failed. */
	if (rc == CLI_OK && st->not_ingested)
		rc = CLI_USAGE;
	if (rc == CLI_OK && (!st->all_ok || !passed))
		rc = CLI_FAILED;
	return rc;
}

/* Whether `path` or a folder above it (real paths) is the directory sb
 * describes (st_dev and st_ino: links and mounts of it count). */
static bool is_inside(const char *path, const struct stat *sb)
{
	char *real = realpath(path, NULL);
	bool inside = false;

	for (char *slash; real && !inside;) {
		struct stat up;

		inside = stat(real, &up) == 0 && up.st_dev == sb->st_dev &&
			 up.st_ino == sb->st_ino;
		slash = strrchr(real, '/');
		if (!slash || !strcmp(real, "/"))
			break;
		slash[slash == real] = '\0'; /* "/x" -> "/" */
	}
	free(real);
	return inside;
}

/* --results must not hold a --history: the run empties its files/ and
 * old/ and writes its results files anew, which would destroy the
 * history before it was read (or while). CLI_OK or CLI_USAGE. */
static int check_results_apart(const struct run_args *a)
{
	struct stat sb;

	if (!a->n_history || stat(a->results, &sb) < 0)
		return CLI_OK; /* a new DIR holds nothing */
	for (size_t i = 0; i < a->n_history; i++) {
		if (!is_inside(a->history_paths[i], &sb))
			continue;
		cli_error("run: --history %s is in --results %s, which the "
			  "run would overwrite; give another --results DIR",
			  a->history_paths[i], a->results);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* --history: read before anything is provisioned, so that a bad path
 * costs nothing. CLI_OK or CLI_USAGE (printed, naming the path). */
static int open_history(struct run_state *st, const struct run_args *a)
{
	struct atex_history_options o = ATEX_HISTORY_OPTIONS_INIT;

	if (!a->n_history)
		return CLI_OK;
	o.paths = a->history_paths;
	o.n_paths = a->n_history;
	if (atex_history_open(&st->history, &o) < 0)
		return cli_fail("run: --history");
	if (!st->live)
		cli_error("run: history of %zu tests from %zu path%s",
			  atex_history_count(st->history), a->n_history,
			  a->n_history == 1 ? "" : "s");
	return CLI_OK;
}

/* The estimate's tables, once the tests are known; without history (or
 * an empty one) the estimate stays the elapsed time per test. */
/* The estimate's hand-out order: the run's policy (atex/history.h). */
static int prepare_order(struct run_state *st, const struct run_args *a)
{
	size_t n = atex_fmf_discovery_count(st->disc);

	st->pick = a->order ? a->order : atex_policy_history;
	st->pick_data = a->order ? (void *)st : (void *)st->history;
	st->order = calloc(n, sizeof(*st->order));
	st->queued_s = calloc(n, sizeof(*st->queued_s));
	st->busy_s = calloc(n, sizeof(*st->busy_s));
	if (!st->order || !st->queued_s || !st->busy_s)
		return CLI_USAGE; /* the caller says so */
	for (size_t i = 0; i < n; i++)
		st->order[i] = i; /* the orchestrator's queue */
	return atex_history_order(st->disc, st->order, n, st->pick,
				  st->pick_data) < 0
		       ? CLI_USAGE
		       : CLI_OK;
}

static int prepare_estimate(struct run_state *st, const struct run_args *a)
{
	size_t n = atex_fmf_discovery_count(st->disc);
	json_t *seen;

	if (!st->history || atex_history_count(st->history) == 0 || n == 0)
		return CLI_OK;
	st->expected = calloc(n, sizeof(*st->expected));
	st->running_since = calloc(n, sizeof(*st->running_since));
	st->test_state = calloc(n, sizeof(*st->test_state));
	st->index_of = json_object();
	seen = json_object();
	for (size_t i = 0; st->index_of && seen && st->test_state &&
			   st->expected && st->running_since && i < n;
	     i++) {
		const char *name = atex_fmf_discovery_test_name(st->disc, i);
		json_int_t k = json_integer_value(json_object_get(seen, name));
		/* Repeats are shown as NAME~K, as the orchestrator names
		 * them (K in discovery order). */
		char *shown = NULL;

		if (k == 0)
			shown = strdup(name);
		else if (asprintf(&shown, "%s~%lld", name, (long long)k + 1) <
			 0)
			shown = NULL;

		if (!shown ||
		    json_object_set_new_nocheck(seen, name,
						json_integer(k + 1)) < 0 ||
		    json_object_set_new_nocheck(st->index_of, shown,
						json_integer((json_int_t)i)) <
			    0) {
			free(shown);
			json_decref(seen);
			return cli_fail("run");
		}
		free(shown);
		st->expected[i] =
			atex_history_estimate(st->history, st->disc, i, 0);
	}
	json_decref(seen);
	if (!st->index_of || !st->test_state || !st->expected ||
	    !st->running_since || prepare_order(st, a) != CLI_OK) {
		free(st->test_state);
		st->test_state = NULL;
		return cli_fail("run");
	}
	return CLI_OK;
}

static void free_estimate(struct run_state *st)
{
	free(st->expected);
	free(st->running_since);
	free(st->test_state);
	free(st->order);
	free(st->queued_s);
	free(st->busy_s);
	json_decref(st->index_of);
	atex_history_free(st->history);
}

static int run_main(struct run_args *a)
{
	struct run_state st = {.signals = CLI_SIGNALS_INIT, .all_ok = true};
	atex_provisioner *prov = NULL;
	int rc;

	st.env = a->suite.env;
	st.seen = json_object();
	st.live = isatty(STDERR_FILENO);
	st.started = now_s();
	rc = check_results_apart(a);
	if (rc == CLI_OK)
		rc = open_history(&st, a);
	if (rc == CLI_OK)
		rc = cli_suite_discover(&st.disc, &a->suite, a->tree, "run");
	if (rc == CLI_OK)
		rc = prepare_estimate(&st, a);
	if (rc == CLI_OK)
		rc = cli_provision_build(&prov, &a->prov);
	/* ReportPortal's uploads: Ctrl-C stops waiting for them. */
	st.signals.on_again = cli_rp_on_again;
	if (rc == CLI_OK)
		rc = cli_signals_start(&st.signals, "run", cli_rp_on_first,
				       NULL, NULL);
	st.prov = prov;
	if (rc == CLI_OK && cli_signals_publish(&st.signals, prov, NULL, NULL))
		rc = run_suite(&st, a);
	cli_signals_publish(&st.signals, NULL, NULL, NULL);
	if (prov && atex_provisioner_stop(prov) < 0)
		cli_fail("run");
	atex_provisioner_free(prov);
	cli_signals_stop(&st.signals);
	if (cli_signals_received(&st.signals))
		rc = 128 + cli_signals_received(&st.signals);
	atex_fmf_stage_free(st.stage);
	free_estimate(&st);
	atex_fmf_discovery_free(st.disc);
	free(st.ingest_error);
	json_decref(st.seen);
	return rc;
}

/* ------------------------------------------------------------------------
 * The command line.
 */

/* A whole number 0..max for option `name`; CLI_OK or CLI_USAGE. */
static int parse_count(unsigned int *out, const char *name, const char *arg,
		       unsigned int max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || !isdigit((unsigned char)arg[0]) ||
	    v > max) {
		cli_error("%s: '%s' is not a number from 0 to %u", name, arg,
			  max);
		return CLI_USAGE;
	}
	*out = (unsigned int)v;
	return CLI_OK;
}

static int parse_order(struct run_args *a, const char *arg)
{
	a->order_given = true;
	if (!strcmp(arg, "history"))
		a->order = NULL; /* the orchestrator's default with history */
	else if (!strcmp(arg, "fmf"))
		a->order = atex_policy_fmf_order;
	else if (!strcmp(arg, "longest-first"))
		a->order = atex_policy_longest_first;
	else if (!strcmp(arg, "priority"))
		a->order = atex_policy_priority;
	else {
		cli_error("--order: '%s' is not fmf, longest-first, priority "
			  "or history",
			  arg);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* --platform names a folder of results: one path component. Each
 * message says what is wrong with the value. */
static int take_platform(struct run_args *a, const char *arg)
{
	const char *why = NULL;

	if (a->platform)
		why = "given twice";
	else if (!*arg)
		why = "the name is empty (give one, such as fedora-41)";
	else if (strchr(arg, '/'))
		why = "a name may not contain '/'";
	else if (!strcmp(arg, ".") || !strcmp(arg, ".."))
		why = "'.' and '..' are not names";
	if (!why) {
		a->platform = arg;
		return CLI_OK;
	}
	if (*arg && !a->platform)
		cli_error("--platform '%s': %s", arg, why);
	else
		cli_error("--platform: %s", why);
	return CLI_USAGE;
}

static int take_option(void *data, int opt, const char *arg, const char *text)
{
	struct run_args *a = data;
	int rc;

	rc = cli_rp_option(&a->rp, opt, arg);
	if (rc >= 0)
		return rc;
	switch (opt) {
	case OPT_RERUNS:
		return parse_count(&a->reruns, "--reruns", arg, 100);
	case OPT_ORDER:
		return parse_order(a, arg);
	case OPT_PLATFORM:
		return take_platform(a, arg);
	case OPT_MAX_SPARES:
		return parse_count(&a->max_spares, "--max-spares", arg, 1024);
	case OPT_HISTORY: {
		const char **more =
			realloc(a->history_paths,
				(a->n_history + 1) * sizeof(*a->history_paths));

		if (!*arg) {
			cli_error("--history: the path is empty");
			return CLI_USAGE;
		}
		if (!more) {
			cli_error("--history: out of memory");
			return CLI_USAGE;
		}
		a->history_paths = more;
		a->history_paths[a->n_history++] = arg;
		return CLI_OK;
	}
	case OPT_RESULTS:
		if (a->results) {
			cli_error("--results given twice");
			return CLI_USAGE;
		}
		a->results = arg;
		return CLI_OK;
	}
	return cli_suite_or_provision_option(&a->suite, &a->prov, opt, arg,
					     text, run_usage);
}

/* CLI_OK, -1 for --help, or CLI_USAGE. */
static int parse_args(struct run_args *a, int argc, char **argv)
{
	static const struct cli_options opts = {"h", run_options, run_usage,
						take_option};
	int rc = cli_parse_options(&opts, a, argc, argv);

	if (rc != CLI_OK)
		return rc;
	if (!a->results) {
		cli_error("run: --results DIR is required");
		return CLI_USAGE;
	}
	if (a->order_given && !a->order && !a->n_history) {
		cli_error("run: --order history needs --history PATH");
		return CLI_USAGE;
	}
	if (argc - optind != 1) {
		cli_error(argc == optind ? "run: missing TREE (atex run "
					   "PROVISIONER --results DIR TREE)"
					 : "run: one TREE only");
		return CLI_USAGE;
	}
	a->tree = argv[optind];
	return cli_rp_check(&a->rp);
}

int cli_run(int argc, char **argv)
{
	struct run_args a = {0};
	int rc;

	rc = cli_provision_init(&a.prov, argc);
	if (rc == CLI_OK)
		rc = cli_suite_init(&a.suite, argc);
	if (rc == CLI_OK)
		rc = parse_args(&a, argc, argv);
	if (rc == CLI_OK)
		rc = run_main(&a);
	cli_suite_free(&a.suite);
	cli_provision_free(&a.prov);
	free(a.history_paths);
	cli_rp_free(&a.rp);
	return rc < 0 ? CLI_OK : rc;
}
