/*
 * multi.c - one aggregator that fans every call out to several (a JSON
 * Lines file and a SQLite database from the same run, say).
 *
 * Calls go through the generic atex_aggregator_* functions, so the
 * children may be any implementation, a user's own included, and their
 * ops versions are checked as for any other caller. Start is all or
 * nothing: when a child cannot start, those already started are stopped
 * again.
 *
 * Ingest keeps the children in agreement about which tests they hold: it
 * stops at the first child that fails (a full disk, say) and takes the
 * test back from the JSON Lines children before it (ingest.h, a cut of
 * the file). The test is then in none of them, and the caller, told so,
 * keeps its artifacts: `atex run` leaves them in DIR/.running. An ingest
 * is one step under a lock, so that the cut takes back exactly this
 * test's lines. Children that cannot take a test back (SQLite, YAML, a
 * user's own) are best put last; put JSON Lines first.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/ingest.h"
#include "atex/aggregator.h"
#include "util/util.h"

struct multi {
	atex_aggregator base;
	atex_aggregator **children;
	size_t n;
	bool owned;
	pthread_mutex_t lock; /* one ingest at a time (see above) */
};

static int multi_start(atex_aggregator *a)
{
	struct multi *m = (struct multi *)a;
	char *msg;
	int rc = 0;
	size_t i;

	for (i = 0; i < m->n && !rc; i++)
		rc = atex_aggregator_start(m->children[i]);
	if (!rc)
		return 0;
	/* Child i - 1 failed; stop the ones before it, keeping its error. */
	msg = atex_strdup(atex_error_last());
	for (size_t k = 0; k + 1 < i; k++)
		atex_aggregator_stop(m->children[k]);
	atex_error_set(rc, "%s", msg ? msg : "start failed");
	free(msg);
	return rc;
}

static int multi_ingest(atex_aggregator *a, const char *platform,
			const char *test_name, const char *artifacts_dir)
{
	struct multi *m = (struct multi *)a;
	struct atex_jsonl_mark *marks = atex_calloc(m->n, sizeof(*marks));
	bool *undoable = atex_calloc(m->n, sizeof(*undoable));
	size_t i;
	int rc = 0;

	if (!marks || !undoable) {
		free(marks);
		free(undoable);
		return ATEX_ENOMEM;
	}
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n && !rc; i++) {
		undoable[i] = atex_jsonl_mark(m->children[i], &marks[i]);
		rc = atex_aggregator_ingest(m->children[i], platform, test_name,
					    artifacts_dir);
	}
	if (rc) {
		/* Child i - 1 failed; its error stays the one reported. */
		char *msg = atex_strdup(atex_error_last());
		bool kept = false;

		for (size_t k = 0; k + 1 < i; k++) {
			if (undoable[k])
				atex_jsonl_undo(m->children[k], &marks[k]);
			else
				kept = true;
		}
		if (kept)
			atex_log(ATEX_LOG_WARNING, "aggregator",
				 "%s on %s: in some outputs and not in others "
				 "(not every output can take a test back)",
				 test_name, platform);
		atex_error_set(rc, "%s", msg ? msg : "ingest failed");
		free(msg);
	}
	pthread_mutex_unlock(&m->lock);
	free(marks);
	free(undoable);
	return rc;
}

static int multi_stop(atex_aggregator *a)
{
	struct multi *m = (struct multi *)a;
	char *msg = NULL;
	int rc = 0;

	for (size_t i = 0; i < m->n; i++) {
		int r = atex_aggregator_stop(m->children[i]);

		if (r && !rc) {
			rc = r;
			msg = atex_strdup(atex_error_last());
		}
	}
	if (rc)
		atex_error_set(rc, "%s", msg ? msg : "stop failed");
	free(msg);
	return rc;
}

static void multi_free(atex_aggregator *a)
{
	struct multi *m = (struct multi *)a;

	if (m->owned)
		for (size_t i = 0; i < m->n; i++)
			atex_aggregator_free(m->children[i]);
	pthread_mutex_destroy(&m->lock);
	free(m->children);
	free(m);
}

static const struct atex_aggregator_ops multi_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = multi_start,
	.ingest = multi_ingest,
	.stop = multi_stop,
	.free = multi_free,
};

int atex_multi_aggregator_new(atex_aggregator **out,
			      atex_aggregator *const *aggregators, size_t n,
			      bool owned)
{
	struct multi *m;

	if (!out)
		return atex_error_set(ATEX_EINVAL,
				      "atex_multi_aggregator_new: no out "
				      "pointer");
	*out = NULL;
	if (n == 0 || !aggregators)
		return atex_error_set(ATEX_EINVAL,
				      "atex_multi_aggregator_new: no "
				      "aggregators");
	for (size_t i = 0; i < n; i++)
		if (!aggregators[i])
			return atex_error_set(ATEX_EINVAL,
					      "atex_multi_aggregator_new: "
					      "aggregator %zu is NULL",
					      i);
	m = atex_calloc(1, sizeof(*m));
	if (!m)
		return ATEX_ENOMEM;
	m->children = atex_calloc(n, sizeof(*m->children));
	if (!m->children) {
		free(m);
		return ATEX_ENOMEM;
	}
	memcpy(m->children, aggregators, n * sizeof(*m->children));
	m->base.ops = &multi_ops;
	pthread_mutex_init(&m->lock, NULL);
	m->n = n;
	m->owned = owned;
	*out = &m->base;
	return 0;
}
