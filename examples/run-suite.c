/*
 * run-suite.c - a complete test runner built from atex's blocks, the kind
 * of small targeted program the library is for:
 *
 *   run-suite TREE SLOTS RESULTS.jsonl[.gz|.xz] [FILES_DIR]
 *
 * discovers every test of TREE, runs them ad hoc on SLOTS local slots
 * (longest first, one re-run of failures), writes the final results as
 * JSON Lines (compressed by the file name's suffix), and prints one line
 * per finished test. Swap atex_local_provisioner_new for the podman or
 * static ssh provisioner to run the same suite on containers or machines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atex/atex.h>

struct runner {
	atex_fmf_discovery *tests;
	int failed;
};

/* The executor factory: the fmf executor on each system that arrives. */
static int new_executor(atex_executor **out, atex_remote *remote, void *data)
{
	struct runner *run = data;
	struct atex_fmf_executor_options o = ATEX_FMF_EXECUTOR_OPTIONS_INIT;

	o.connection = atex_remote_connection(remote);
	o.discovery = run->tests;
	return atex_fmf_executor_new(out, &o);
}

/* Progress: one line per finished attempt. Events come one at a time. */
static void on_event(const struct atex_orchestrator_event *ev, void *data)
{
	static const char *const fine[] = {"pass", "info", "warn", "skip"};
	struct runner *run = data;
	int ok = 0;

	if (ev->type != ATEX_EVENT_TEST_FINISHED)
		return;
	printf("[%zu/%zu] %-5s %s (%s, attempt %u)%s\n", ev->tests_done,
	       ev->tests_total, ev->ended->status, ev->test_name, ev->remote,
	       ev->attempt, ev->rerun ? " - running it again" : "");
	/* ended->status is the worst of the attempt's results. */
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
		ok |= strcmp(ev->ended->status, fine[i]) == 0;
	if (!ev->rerun && !ok)
		run->failed++;
}

int main(int argc, char **argv)
{
	struct atex_jsonl_aggregator_options jo =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	struct atex_orchestrator_options oo = ATEX_ORCHESTRATOR_OPTIONS_INIT;
	struct runner run = {0};
	atex_provisioner *pool = NULL;
	atex_aggregator *results = NULL;
	atex_orchestrator *orch = NULL;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: run-suite TREE SLOTS RESULTS.jsonl "
				"[FILES_DIR]\n");
		return 2;
	}
	jo.path = argv[3];
	jo.files_dir = argc > 4 ? argv[4] : NULL;
	jo.compression = ATEX_COMPRESSION_AUTO;

	rc = atex_fmf_discover(&run.tests, argv[1], NULL);
	if (rc == 0)
		rc = atex_local_provisioner_new(&pool, atoi(argv[2]));
	if (rc == 0)
		rc = atex_provisioner_start(pool);
	if (rc == 0)
		rc = atex_jsonl_aggregator_new(&results, &jo);
	if (rc == 0)
		rc = atex_aggregator_start(results);
	if (rc == 0) {
		oo.platform = "localhost";
		oo.discovery = run.tests;
		oo.provisioners = &pool;
		oo.n_provisioners = 1;
		oo.executor_new = new_executor;
		oo.aggregator = results;
		oo.next_test = atex_policy_longest_first;
		oo.max_reruns = 1;
		oo.event = on_event;
		oo.userdata = &run;
		rc = atex_adhoc_orchestrator_new(&orch, &oo);
	}
	if (rc == 0)
		rc = atex_orchestrator_serve_forever(orch);
	if (rc < 0)
		fprintf(stderr, "run-suite: %s\n", atex_error_last());

	atex_orchestrator_free(orch);
	if (results && atex_aggregator_stop(results) < 0)
		fprintf(stderr, "run-suite: %s\n", atex_error_last());
	atex_aggregator_free(results);
	atex_provisioner_free(pool);
	atex_fmf_discovery_free(run.tests);
	if (rc < 0)
		return 2;
	printf("%d test(s) failed\n", run.failed);
	return run.failed > 0;
}
