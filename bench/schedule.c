/*
 * schedule - how long a suite takes on a pool of systems under each way of
 * handing out tests, simulated on a virtual clock (nothing sleeps).
 *
 * The question is the one atex exists for: with test durations that are
 * heavy-tailed (most tests take a minute or two, a few take an hour) and
 * systems that arrive one by one, how close does ad-hoc scheduling (the
 * next test to whichever system is free) come to the best possible
 * makespan, and how much does a static split (tests cut into one slice
 * per system up front, as tmt's multi-host mode or a CI matrix does) lose?
 *
 * For each seed the program draws each test's true time (90% lognormal
 * with a median of 2 min, sigma 1; 10% Pareto from 10 min, alpha 1.2;
 * clamped to [10 s, 1 h]: the cap keeps the longest test below total/M,
 * else one test longer than the whole run would decide every schedule)
 * and writes an fmf tree whose `duration` keys are what people write
 * (below), discovers it with atex_fmf_discover() (so the durations are
 * read back exactly as the orchestrator reads them), and simulates M
 * systems arriving at random times over the first 10% of the run.
 * Events (a system arrives, a test ends) sit in a min-heap keyed by time;
 * each system that becomes free asks the policy for its next test, with
 * the real next_test hooks of the library on the queue of tests not yet
 * started, in fmf order, exactly as the orchestrator calls them.
 *
 * Declared durations (issue 14): people write an upper bound, rounded UP
 * to a round value (1m, 2m, 3m, 5m, 10m, 15m, 20m, 30m, 45m, 1h, 90m,
 * 2h, 3h, 4h) with a margin that varies from test to test (log-uniform
 * 1.1x to 20x: the true time is 5% to 90% of the declared one), and a
 * short test (declared 5m or less) has no key at all 60% of the time
 * (tmt's default, 5m). A test takes its true time with run-to-run noise
 * (lognormal, sigma 5%). The history is an earlier simulated run: the
 * same truth with its own noise, written to a database of the SQLite
 * aggregator's schema and read by the real history reader
 * (atex_history_open), which feeds the real atex_policy_history. So
 * longest-`duration`-first orders by the declared bounds, history by
 * what was measured. `--exact` is the model before issue 14: tests take
 * exactly their `duration` (perfect estimates, the best case for
 * longest first), with the same trees and arrivals as then.
 *
 * Two lower bounds are printed, on the times the tests take in this run.
 * The simple one, max(longest test, total/M), ignores that systems
 * arrive late: arriving uniformly over the first 10% of total/M costs 5%
 * of it on average, so no schedule can get within 5% of it by
 * construction. The arrival-aware one, max(first arrival + longest,
 * (total + sum of arrival times)/M), holds for any schedule of these
 * arrivals (system i can work only after a_i); the ratios are given
 * against both, and the history target (within 3% where
 * longest-`duration`-first is 10%+ above) against the arrival-aware one.
 *
 * Usage: schedule [--seeds K] [--seed S] [--tests N] [--systems M]
 *                 [--exact] [--unseen PCT]
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "atex/fmf.h"
#include "atex/history.h"
#include "atex/orchestrator.h"
#include "util/util.h"

#define MIN_DURATION	 10.0
#define MAX_DURATION	 3600.0
#define LOGNORMAL_MEDIAN 120.0
#define LOGNORMAL_SIGMA	 1.0
#define TAIL_SHARE	 0.10
#define TAIL_START	 600.0
#define TAIL_ALPHA	 1.2
#define ARRIVAL_WINDOW	 0.10 /* of total/M */
#define TARGET_LONGEST	 1.05 /* longest-first within 5% of the bound */
#define TARGET_STATIC	 1.5  /* static split at least 1.5x worse */
#define MAX_SEEDS	 1000
#define DEFAULT_SHARE	 0.6 /* short tests without a `duration` key */
#define MARGIN_MIN	 1.1 /* declared / true time: log-uniform */
#define MARGIN_MAX	 20.0
#define RUN_NOISE	 0.05 /* sigma of a run's log time around the truth */
#define QUALIFY		 1.10 /* seeds where longest-duration-first is 10%+ */
#define TARGET_HISTORY	 1.03 /* history within 3% of the arrival bound */

/* ------------------------------------------------------------------------
 * Seeded randomness: splitmix64, the same sequence on every platform.
 */

struct rng {
	uint64_t state;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1): never 0, so that log() and 1/u are defined. */
static double rng_uniform(struct rng *r)
{
	return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(struct rng *r)
{
	double u = rng_uniform(r), v = rng_uniform(r);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* One test's duration in whole seconds (fmf durations have no fraction). */
static long draw_duration(struct rng *r)
{
	double s;

	if (rng_uniform(r) < TAIL_SHARE)
		s = TAIL_START / pow(rng_uniform(r), 1.0 / TAIL_ALPHA);
	else
		s = LOGNORMAL_MEDIAN * exp(LOGNORMAL_SIGMA * rng_normal(r));
	if (s < MIN_DURATION)
		s = MIN_DURATION;
	if (s > MAX_DURATION)
		s = MAX_DURATION;
	return lround(s);
}

/* ------------------------------------------------------------------------
 * The generated tree: one main.fmf with the plan and every test, named
 * /t0001... so that fmf order (by name) is generation order, which is
 * random with respect to duration.
 */

static int write_text(const char *dir, const char *name, const char *text,
		      size_t len)
{
	char *path = atex_path_join(dir, name);
	FILE *f = NULL;
	int rc = ATEX_ENOMEM;

	if (!path)
		goto out;
	rc = 0;
	f = fopen(path, "w");
	if (!f || fwrite(text, 1, len, f) != len)
		rc = atex_error_set(ATEX_EIO, "%s: cannot write: %s", path,
				    strerror(errno));
	if (f && fclose(f) != 0 && rc == 0)
		rc = atex_error_set(ATEX_EIO, "%s: cannot write: %s", path,
				    strerror(errno));
out:
	free(path);
	return rc;
}

/*
 * A duration as people write it for a test that takes `t` seconds: a
 * safety margin of 1.2x to 3x rounded UP to a round value, and for short
 * tests often nothing at all (tmt's default, 5m). Returns 0 for "no key".
 */
static const long round_durations[] = {60,   120,  180,	  300,	600,
				       900,  1200, 1800,  2700, 3600,
				       5400, 7200, 10800, 14400};

static long declare_duration(struct rng *r, double t)
{
	double want =
		t * exp(log(MARGIN_MIN) +
			(log(MARGIN_MAX) - log(MARGIN_MIN)) * rng_uniform(r));
	size_t n = sizeof(round_durations) / sizeof(round_durations[0]);
	long d = round_durations[n - 1];

	for (size_t i = 0; i < n; i++) {
		if (round_durations[i] >= want) {
			d = round_durations[i];
			break;
		}
	}
	if (d <= 300 && rng_uniform(r) < DEFAULT_SHARE)
		return 0;
	return d;
}

/* A measured time: the true one with run-to-run noise. */
static double measure(struct rng *r, double t)
{
	return t * exp(RUN_NOISE * rng_normal(r));
}

/*
 * The tree. truth[i] gets test i's true time; with `human` (r2 not NULL)
 * the `duration` keys are written as people write them (declare_duration,
 * drawn from r2), else they are the true times (the exact model: the
 * same sequence as before issue 14).
 */
static int write_tree(const char *root, int n_tests, struct rng *r,
		      struct rng *r2, double *truth)
{
	struct atex_buf b = ATEX_BUF_INIT;
	char *marker = atex_path_join(root, ".fmf");
	int rc = ATEX_ENOMEM;

	if (!marker)
		goto out;
	if (mkdir(marker, 0755) != 0 && errno != EEXIST) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot create: %s", marker,
				    strerror(errno));
		goto out;
	}
	rc = write_text(marker, "version", "1\n", 2);
	if (rc == 0)
		rc = atex_buf_puts(&b, "/plan:\n"
				       "    discover:\n"
				       "        how: fmf\n"
				       "    execute:\n"
				       "        how: tmt\n");
	for (int i = 0; rc == 0 && i < n_tests; i++) {
		long t = draw_duration(r);
		long declared = r2 ? declare_duration(r2, (double)t) : t;

		truth[i] = (double)t;
		rc = atex_buf_printf(&b, "/t%06d:\n    test: 'true'\n", i + 1);
		if (rc == 0 && declared)
			rc = atex_buf_printf(&b, "    duration: %lds\n",
					     declared);
	}
	if (rc == 0)
		rc = write_text(root, "main.fmf", b.ptr, b.len);
out:
	atex_buf_free(&b);
	free(marker);
	return rc;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "schedule: cannot remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

static void remove_tree(const char *root)
{
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------------
 * The suite as discovered: durations in seconds, in fmf order.
 */

struct suite {
	atex_fmf_discovery *d;
	size_t n;
	double *duration; /* what each test takes in the simulated run */
	double *declared; /* its `duration` key (5m when missing) */
	double total, longest;
};

static void suite_free(struct suite *s)
{
	atex_fmf_discovery_free(s->d);
	free(s->duration);
	free(s->declared);
	memset(s, 0, sizeof(*s));
}

/* Loads the tree; the tests take `actual` (by generation index, which
 * is fmf order). */
static int suite_load(struct suite *s, const char *root, size_t expected,
		      const double *actual)
{
	struct atex_fmf_discover_options opts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	int rc;

	memset(s, 0, sizeof(*s));
	opts.plan = "/plan";
	rc = atex_fmf_discover(&s->d, root, &opts);
	if (rc < 0)
		return rc;
	s->n = atex_fmf_discovery_count(s->d);
	if (s->n != expected)
		return atex_error_set(ATEX_ERROR,
				      "%s: discovered %zu tests, expected %zu",
				      root, s->n, expected);
	s->duration = atex_calloc(s->n, sizeof(*s->duration));
	s->declared = atex_calloc(s->n, sizeof(*s->declared));
	if (!s->duration || !s->declared)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		json_t *data = atex_fmf_discovery_test_data(s->d, i);
		const char *text =
			json_string_value(json_object_get(data, "duration"));

		s->declared[i] = 300;
		rc = text ? atex_duration_parse(&s->declared[i], text) : 0;
		if (rc < 0)
			return atex_error_prefix(
				"%s", atex_fmf_discovery_test_name(s->d, i));
		s->duration[i] = actual[i];
		s->total += s->duration[i];
		if (s->duration[i] > s->longest)
			s->longest = s->duration[i];
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The simulation.
 */

struct event {
	double time;
	size_t system;
};

/* A binary min-heap of events; ties go to the lower system index, so a
 * run depends on nothing but the seed. */
struct heap {
	struct event *e;
	size_t len;
};

static bool event_before(const struct event *a, const struct event *b)
{
	return a->time < b->time ||
	       (a->time == b->time && a->system < b->system);
}

static void heap_push(struct heap *h, struct event ev)
{
	size_t i = h->len++;

	while (i > 0 && event_before(&ev, &h->e[(i - 1) / 2])) {
		h->e[i] = h->e[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->e[i] = ev;
}

static struct event heap_pop(struct heap *h)
{
	struct event top = h->e[0], last = h->e[--h->len];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->len)
			break;
		if (c + 1 < h->len && event_before(&h->e[c + 1], &h->e[c]))
			c++;
		if (!event_before(&h->e[c], &last))
			break;
		h->e[i] = h->e[c];
		i = c;
	}
	if (h->len > 0)
		h->e[i] = last;
	return top;
}

/*
 * Ad hoc: every system, when it arrives and whenever its test ends, takes
 * the test `next` picks from the queue of tests not started (fmf order).
 * Returns the makespan (the last test's end), or a negative error.
 */
static double simulate_adhoc(const struct suite *s, const double *arrival,
			     size_t m, atex_next_test_hook next, void *data)
{
	struct heap h = {atex_calloc(m, sizeof(struct event)), 0};
	size_t *queue = atex_calloc(s->n, sizeof(*queue));
	size_t n = s->n;
	double makespan = -1;

	if (!h.e || !queue)
		goto out;
	for (size_t i = 0; i < n; i++)
		queue[i] = i;
	for (size_t j = 0; j < m; j++)
		heap_push(&h, (struct event){arrival[j], j});
	makespan = 0;
	while (h.len > 0) {
		struct event ev = heap_pop(&h);
		size_t k, test;

		if (ev.time > makespan)
			makespan = ev.time;
		if (n == 0)
			continue; /* nothing left: the system is released */
		k = next(s->d, queue, n, data);
		if (k >= n)
			k = 0; /* as the orchestrator does */
		test = queue[k];
		memmove(&queue[k], &queue[k + 1], (n - k - 1) * sizeof(*queue));
		n--;
		heap_push(&h, (struct event){ev.time + s->duration[test],
					     ev.system});
	}
out:
	free(h.e);
	free(queue);
	return makespan;
}

/*
 * Static split: the tests in fmf order cut into m contiguous slices of
 * n/m tests (the first n%m slices one more), slice j run one test after
 * another on the j-th system to arrive.
 */
static double simulate_static(const struct suite *s, const double *arrival,
			      size_t m)
{
	double makespan = 0;
	size_t next = 0;

	for (size_t j = 0; j < m; j++) {
		size_t count = s->n / m + (j < s->n % m);
		double end = arrival[j];

		for (size_t i = 0; i < count; i++)
			end += s->duration[next++];
		if (end > makespan)
			makespan = end;
	}
	return makespan;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *values, size_t n)
{
	qsort(values, n, sizeof(*values), cmp_double);
	return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/* ------------------------------------------------------------------------
 * The history: a simulated earlier run's measured times, in a database
 * of the SQLite aggregator's schema (docs/PROTOCOL.md), read back by the
 * library's history reader.
 */

static int write_history(const char *path, const struct suite *s,
			 const double *measured, const bool *seen)
{
	static const char *const create =
		"CREATE TABLE results(id INTEGER PRIMARY KEY,"
		" platform TEXT NOT NULL, status TEXT NOT NULL,"
		" test TEXT NOT NULL, subtest TEXT, note TEXT,"
		" files TEXT NOT NULL, ingested REAL NOT NULL,"
		" attempt INTEGER NOT NULL, final INTEGER NOT NULL,"
		" started TEXT, ended TEXT, duration REAL, system TEXT,"
		" exit_code INTEGER); BEGIN;";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, create, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO results(platform, status, test,"
			       " files, ingested, attempt, final, started,"
			       " duration, exit_code) VALUES ('sim', 'pass',"
			       " ?, '[]', 0, 1, 1, ?, ?, 0)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = atex_error_set(ATEX_EIO, "%s: %s", path,
				    sqlite3_errmsg(db));
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < s->n; i++) {
		char started[40];

		if (!seen[i])
			continue;
		/* Any increasing start does: one run, one attempt each. */
		snprintf(started, sizeof(started),
			 "2026-01-01T%02zu:%02zu:%02zu.000+00:00",
			 i / 3600 % 24, i / 60 % 60, i % 60);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, atex_fmf_discovery_test_name(s->d, i),
				  -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, started, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 3, measured[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = atex_error_set(ATEX_EIO, "%s: %s", path,
					    sqlite3_errmsg(db));
	}
	if (rc == 0 &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = atex_error_set(ATEX_EIO, "%s: %s", path,
				    sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* ------------------------------------------------------------------------
 * One seed, and the summary over all of them.
 */

enum { FMF_ORDER, LONGEST_FIRST, HISTORY, STATIC_SPLIT, N_SCHEDULES };

static const char *const schedule_names[N_SCHEDULES] = {
	"ad hoc, fmf order",
	"ad hoc, longest first",
	"ad hoc, history",
	"static split",
};

struct outcome {
	double makespan[N_SCHEDULES];
	double bound;	      /* max(longest, total/M) */
	double arrival_bound; /* the same, counting the arrivals */
};

struct options {
	int seeds;
	unsigned long seed;
	int tests, systems;
	bool exact;	/* tests take their `duration` exactly */
	int unseen_pct; /* tests the history has not seen */
};

/* Arrival times, sorted: uniform over the first 10% of total/M. */
static double *draw_arrivals(struct rng *r, size_t m, double total)
{
	double *arrival = atex_calloc(m, sizeof(*arrival));

	for (size_t j = 0; arrival && j < m; j++)
		arrival[j] =
			rng_uniform(r) * ARRIVAL_WINDOW * total / (double)m;
	if (arrival)
		qsort(arrival, m, sizeof(*arrival), cmp_double);
	return arrival;
}

static double sum_of(const double *v, size_t n)
{
	double sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += v[i];
	return sum;
}

static void print_seed(unsigned long seed, const struct suite *s,
		       const struct outcome *o)
{
	double *sorted = atex_calloc(s->n, sizeof(*sorted));

	if (sorted) {
		double mid;

		memcpy(sorted, s->duration, s->n * sizeof(*sorted));
		mid = median(sorted, s->n); /* sorts: sorted[0] is the least */
		printf("\nseed %lu: %zu tests, time min %.0f s, median "
		       "%.0f s, max %.0f s, total %.0f s",
		       seed, s->n, sorted[0], mid, s->longest, s->total);
		memcpy(sorted, s->declared, s->n * sizeof(*sorted));
		printf("; declared total %.0f s (median %.0f s)\n",
		       sum_of(sorted, s->n), median(sorted, s->n));
	}
	free(sorted);
	printf("  lower bound max(longest, total/M):         %8.0f s\n",
	       o->bound);
	printf("  lower bound with the arrivals:             %8.0f s\n",
	       o->arrival_bound);
	printf("  %-24s %10s %10s %14s\n", "schedule", "makespan", "/bound",
	       "/arrival bound");
	for (int k = 0; k < N_SCHEDULES; k++)
		printf("  %-24s %9.0fs %10.3f %14.3f\n", schedule_names[k],
		       o->makespan[k], o->makespan[k] / o->bound,
		       o->makespan[k] / o->arrival_bound);
}

static int run_seed(struct outcome *o, const char *root, unsigned long seed,
		    const struct options *opts)
{
	static const atex_next_test_hook hooks[] = {
		[FMF_ORDER] = atex_policy_fmf_order,
		[LONGEST_FIRST] = atex_policy_longest_first,
		[HISTORY] = atex_policy_history,
	};
	struct atex_history_options ho = ATEX_HISTORY_OPTIONS_INIT;
	/* Margins, defaults and noise from a stream of their own: the
	 * tree and arrivals stay those of the exact model. */
	struct rng r = {seed}, r2 = {seed * 0x2545f4914f6cdd1dULL + 1};
	struct suite s = {0};
	size_t m = (size_t)opts->systems, n = (size_t)opts->tests;
	double *arrival = NULL, sum_arrivals = 0;
	double *truth = atex_calloc(n, sizeof(*truth));
	double *first = atex_calloc(n, sizeof(*first));
	double *actual = atex_calloc(n, sizeof(*actual));
	bool *seen = atex_calloc(n, sizeof(*seen));
	char *db = atex_path_join(root, "history.sqlite");
	atex_history *h = NULL;
	const char *paths[1] = {db};
	int rc = ATEX_ENOMEM;

	if (!truth || !first || !actual || !seen || !db)
		goto out;
	rc = write_tree(root, opts->tests, &r, opts->exact ? NULL : &r2, truth);
	/* The earlier run and this one: the truth with run-to-run noise
	 * each (exactly the truth in the exact model). */
	for (size_t i = 0; i < n; i++) {
		first[i] = opts->exact ? truth[i] : measure(&r2, truth[i]);
		actual[i] = opts->exact ? truth[i] : measure(&r2, truth[i]);
		seen[i] = rng_uniform(&r2) * 100 >= opts->unseen_pct;
	}
	if (rc == 0)
		rc = suite_load(&s, root, n, actual);
	if (rc == 0)
		rc = write_history(db, &s, first, seen);
	ho.paths = paths;
	ho.n_paths = 1;
	if (rc == 0)
		rc = atex_history_open(&h, &ho);
	if (rc < 0)
		goto out;
	arrival = draw_arrivals(&r, m, s.total);
	if (!arrival) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (size_t j = 0; j < m; j++)
		sum_arrivals += arrival[j];
	o->bound = fmax(s.longest, s.total / (double)m);
	o->arrival_bound = fmax(arrival[0] + s.longest,
				(s.total + sum_arrivals) / (double)m);
	for (int k = FMF_ORDER; k <= HISTORY; k++) {
		o->makespan[k] = simulate_adhoc(&s, arrival, m, hooks[k],
						k == HISTORY ? h : NULL);
		if (o->makespan[k] < 0) {
			rc = ATEX_ENOMEM;
			goto out;
		}
	}
	o->makespan[STATIC_SPLIT] = simulate_static(&s, arrival, m);
	print_seed(seed, &s, o);
out:
	atex_history_free(h);
	free(arrival);
	free(truth);
	free(first);
	free(actual);
	free(seen);
	free(db);
	suite_free(&s);
	return rc;
}

/* The exact model's targets (before issue 14): longest first within 5%
 * of the bounds, the static split 1.5x worse. */
static void print_exact_targets(const struct outcome *o, int seeds, double *v)
{
	double lf, lf_arrival, st_over_lf;

	for (int i = 0; i < seeds; i++)
		v[i] = o[i].makespan[LONGEST_FIRST] / o[i].bound;
	lf = median(v, (size_t)seeds);
	for (int i = 0; i < seeds; i++)
		v[i] = o[i].makespan[LONGEST_FIRST] / o[i].arrival_bound;
	lf_arrival = median(v, (size_t)seeds);
	for (int i = 0; i < seeds; i++)
		v[i] = o[i].makespan[STATIC_SPLIT] /
		       o[i].makespan[LONGEST_FIRST];
	st_over_lf = median(v, (size_t)seeds);
	printf("\ntargets (medians):\n");
	printf("  longest first within %.0f%% of max(longest, total/M): "
	       "%.3f %s\n",
	       (TARGET_LONGEST - 1) * 100, lf,
	       lf <= TARGET_LONGEST ? "yes" : "NO");
	printf("  longest first within %.0f%% of the arrival bound:     "
	       "%.3f %s\n",
	       (TARGET_LONGEST - 1) * 100, lf_arrival,
	       lf_arrival <= TARGET_LONGEST ? "yes" : "NO");
	printf("  static split at least %.1fx longest first:          "
	       "%.3f %s\n",
	       TARGET_STATIC, st_over_lf,
	       st_over_lf >= TARGET_STATIC ? "yes" : "NO");
}

/*
 * Issue 14's target: on the seeds where longest-`duration`-first is 10%
 * or more above the arrival bound (the simple bound is out of reach by
 * construction, see above), history within 3% of it.
 */
static void print_history_target(const struct outcome *o, int seeds, double *v)
{
	size_t k = 0, within = 0;
	double worst = 0, lf;

	for (int i = 0; i < seeds; i++) {
		double ratio = o[i].makespan[HISTORY] / o[i].arrival_bound;

		if (o[i].makespan[LONGEST_FIRST] / o[i].arrival_bound < QUALIFY)
			continue;
		v[k++] = ratio;
		within += ratio <= TARGET_HISTORY;
		worst = fmax(worst, ratio);
	}
	printf("\ntarget: history within %.0f%% of the arrival bound where "
	       "longest first is %.0f%%+ above it\n",
	       (TARGET_HISTORY - 1) * 100, (QUALIFY - 1) * 100);
	if (k == 0) {
		printf("  no seed qualifies (longest first is within %.0f%% "
		       "on all %d)\n",
		       (QUALIFY - 1) * 100, seeds);
		return;
	}
	printf("  seeds qualifying: %zu of %d; history within %.0f%% on %zu; "
	       "median %.3f, worst %.3f: %s\n",
	       k, seeds, (TARGET_HISTORY - 1) * 100, within, median(v, k),
	       worst, within == k ? "yes" : "NO");
	k = 0;
	for (int i = 0; i < seeds; i++) {
		if (o[i].makespan[LONGEST_FIRST] / o[i].arrival_bound >=
		    QUALIFY)
			v[k++] = o[i].makespan[LONGEST_FIRST] /
				 o[i].arrival_bound;
	}
	lf = median(v, k);
	printf("  longest first on them: median %.3f of the arrival bound\n",
	       lf);
}

/* Medians over the seeds, and whether the targets hold for them. */
static void print_summary(const struct outcome *o, const struct options *opts)
{
	int seeds = opts->seeds;
	double *v = atex_calloc((size_t)seeds, sizeof(*v));

	if (!v)
		return;
	printf("\nmedian over %d seeds          /bound  /arrival bound\n",
	       seeds);
	for (int k = 0; k < N_SCHEDULES; k++) {
		double a, b;

		for (int i = 0; i < seeds; i++)
			v[i] = o[i].makespan[k] / o[i].bound;
		a = median(v, (size_t)seeds);
		for (int i = 0; i < seeds; i++)
			v[i] = o[i].makespan[k] / o[i].arrival_bound;
		b = median(v, (size_t)seeds);
		printf("  %-24s %8.3f %15.3f\n", schedule_names[k], a, b);
	}
	if (opts->exact)
		print_exact_targets(o, seeds, v);
	else
		print_history_target(o, seeds, v);
	free(v);
}

/* ------------------------------------------------------------------------
 * Command line.
 */

static void usage(FILE *f)
{
	fprintf(f, "usage: schedule [--seeds K] [--seed S] [--tests N] "
		   "[--systems M] [--exact]\n"
		   "                [--unseen PCT]\n"
		   "  --seeds K    simulations, seeds S..S+K-1 (default 5)\n"
		   "  --seed S     the first seed (default 1)\n"
		   "  --tests N    tests in the suite (default 500)\n"
		   "  --systems M  systems in the pool (default 20)\n"
		   "  --exact      tests take their `duration` exactly (the "
		   "model before\n"
		   "               history: declared = measured, no noise)\n"
		   "  --unseen PCT tests the history has not seen (default "
		   "0)\n");
}

static int parse_number(unsigned long *out, const char *opt, const char *value,
			unsigned long min, unsigned long max)
{
	char *end;

	errno = 0;
	*out = strtoul(value, &end, 10);
	if (errno || *end || end == value || value[0] == '-' || *out < min ||
	    *out > max)
		return atex_error_set(ATEX_EINVAL,
				      "%s: '%s' is not a number from %lu to "
				      "%lu",
				      opt, value, min, max);
	return 0;
}

static int parse_args(struct options *o, int argc, char **argv)
{
	*o = (struct options){5, 1, 500, 20, false, 0};
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned long n;
		int rc;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(arg, "--exact")) {
			o->exact = true;
			continue;
		}
		if (strcmp(arg, "--seeds") && strcmp(arg, "--seed") &&
		    strcmp(arg, "--tests") && strcmp(arg, "--systems") &&
		    strcmp(arg, "--unseen"))
			return atex_error_set(ATEX_EINVAL, "unknown option %s",
					      arg);
		if (!value)
			return atex_error_set(ATEX_EINVAL, "%s needs a value",
					      arg);
		i++;
		if (!strcmp(arg, "--seed")) {
			rc = parse_number(&o->seed, arg, value, 0, ULONG_MAX);
		} else if (!strcmp(arg, "--unseen")) {
			rc = parse_number(&n, arg, value, 0, 100);
			o->unseen_pct = (int)n;
		} else {
			rc = parse_number(&n, arg, value, 1,
					  !strcmp(arg, "--seeds") ? MAX_SEEDS
								  : 100000);
			if (!strcmp(arg, "--seeds"))
				o->seeds = (int)n;
			else if (!strcmp(arg, "--tests"))
				o->tests = (int)n;
			else
				o->systems = (int)n;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static char *make_temp_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char *root =
		atex_sprintf("%s/atex-schedule-XXXXXX", tmp ? tmp : "/tmp");

	if (root && !mkdtemp(root)) {
		atex_error_set(ATEX_EIO, "%s: %s", root, strerror(errno));
		free(root);
		return NULL;
	}
	return root;
}

int main(int argc, char **argv)
{
	struct outcome *outcomes = NULL;
	struct options o;
	char *root = NULL;
	int rc;

	rc = parse_args(&o, argc, argv);
	if (rc < 0) {
		fprintf(stderr, "schedule: %s\n", atex_error_last());
		usage(stderr);
		return 2;
	}
	outcomes = atex_calloc((size_t)o.seeds, sizeof(*outcomes));
	if (!outcomes) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	printf("%d tests on %d systems arriving over the first %.0f%% of "
	       "total/M; durations %.0f s to %.0f s: %.0f%% lognormal "
	       "(median %.0f s, sigma %.1f), %.0f%% Pareto from %.0f s "
	       "(alpha %.1f)\n",
	       o.tests, o.systems, ARRIVAL_WINDOW * 100, MIN_DURATION,
	       MAX_DURATION, (1 - TAIL_SHARE) * 100, LOGNORMAL_MEDIAN,
	       LOGNORMAL_SIGMA, TAIL_SHARE * 100, TAIL_START, TAIL_ALPHA);
	for (int i = 0; rc == 0 && i < o.seeds; i++) {
		root = make_temp_dir();
		if (!root) {
			rc = atex_error_last_code();
			break;
		}
		rc = run_seed(&outcomes[i], root, o.seed + (unsigned long)i,
			      &o);
		remove_tree(root);
		free(root);
		root = NULL;
	}
	if (rc == 0)
		print_summary(outcomes, &o);
out:
	if (rc < 0)
		fprintf(stderr, "schedule: %s\n", atex_error_last());
	free(outcomes);
	return rc < 0 ? 1 : 0;
}
