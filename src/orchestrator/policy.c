/*
 * policy.c - the ready policies a program plugs into the orchestrator's
 * hooks: which test next (fmf order, longest first, extra-priority), was
 * the system broken (the `destructive` tag), run it again (limited
 * re-runs).
 *
 * Why longest first: with tests of very different lengths, the makespan
 * of an ad-hoc pool is decided by the long tests that start last; starting
 * them first leaves only short tests to fill the gaps at the end (the LPT
 * rule, within 4/3 of the optimum). bench/schedule measures it.
 *
 * The policies read the test's metadata at each call, so a program that
 * changes metadata (doubles every duration) between runs is honoured; a
 * call is linear in the queue, which is cheap next to running a test.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atex/orchestrator.h"
#include "orchestrator/policy.h"
#include "util/util.h"

size_t atex_policy_fmf_order(atex_fmf_discovery *d, const size_t *queue,
			     size_t n, void *userdata)
{
	(void)d;
	(void)queue;
	(void)n;
	(void)userdata;
	return 0;
}

/* The test's duration in seconds as tmt reads it: 5m when missing or bad,
 * and a text of multipliers only ("*2") applies them to 5m. */
double atex_policy_declared_duration(atex_fmf_discovery *d, size_t test)
{
	json_t *data = atex_fmf_discovery_test_data_ref(d, test);
	const char *text = json_string_value(json_object_get(data, "duration"));
	double seconds = 300;
	char *with_default;

	if (!text || atex_duration_parse(&seconds, text) < 0)
		seconds = 300;
	if (!text || seconds > 0) {
		json_decref(data);
		return seconds > 0 ? seconds : 300;
	}
	with_default = atex_sprintf("5m %s", text);
	if (!with_default || atex_duration_parse(&seconds, with_default) < 0)
		seconds = 300;
	free(with_default);
	json_decref(data);
	atex_error_clear();
	return seconds;
}

size_t atex_policy_longest_first(atex_fmf_discovery *d, const size_t *queue,
				 size_t n, void *userdata)
{
	size_t best = 0;
	double best_duration = -1;

	(void)userdata;
	for (size_t i = 0; i < n; i++) {
		double duration = atex_policy_declared_duration(d, queue[i]);

		if (duration > best_duration) {
			best = i;
			best_duration = duration;
		}
	}
	return best;
}

/* `extra-priority` as a number; 0 when missing or not a number (a string
 * of digits counts, as YAML authors write "10" too). */
static double test_priority(atex_fmf_discovery *d, size_t test)
{
	json_t *data = atex_fmf_discovery_test_data_ref(d, test);
	json_t *v = json_object_get(data, "extra-priority");
	const char *text = json_string_value(v);
	char *end;
	double p = 0;

	if (json_is_number(v))
		p = json_number_value(v);
	else if (text) {
		p = strtod(text, &end);
		if (end == text || *end != '\0' || !isfinite(p))
			p = 0;
	}
	json_decref(data);
	return p;
}

size_t atex_policy_priority(atex_fmf_discovery *d, const size_t *queue,
			    size_t n, void *userdata)
{
	size_t best = 0;
	double best_priority = 0, best_duration = 0;

	(void)userdata;
	for (size_t i = 0; i < n; i++) {
		double priority = test_priority(d, queue[i]);
		double duration = atex_policy_declared_duration(d, queue[i]);

		if (i == 0 || priority > best_priority ||
		    (priority == best_priority && duration > best_duration)) {
			best = i;
			best_priority = priority;
			best_duration = duration;
		}
	}
	return best;
}

static bool has_tag(json_t *data, const char *tag)
{
	json_t *tags = json_object_get(data, "tag");
	json_t *t;
	size_t i;

	if (json_is_string(tags))
		return strcmp(json_string_value(tags), tag) == 0;
	json_array_foreach(tags, i, t)
	{
		if (json_is_string(t) && strcmp(json_string_value(t), tag) == 0)
			return true;
	}
	return false;
}

bool atex_policy_destructive_tag(atex_fmf_discovery *d,
				 const struct atex_attempt *a, void *userdata)
{
	(void)userdata;
	/* A test killed for its time limit or for breaking the protocol
	 * may have left anything running or half done. */
	if (a->rc == ATEX_ETIMEDOUT || a->rc == ATEX_EFORMAT)
		return true;
	json_t *data = atex_fmf_discovery_test_data_ref(d, a->test);
	bool destructive = has_tag(data, "destructive");

	json_decref(data);
	return destructive;
}

bool atex_policy_rerun(const struct atex_attempt *a, unsigned int max_reruns,
		       const char *const *statuses)
{
	static const char *const failing[] = {"fail", "error", "infra", NULL};

	if (a->attempt > max_reruns)
		return false;
	if (!statuses)
		statuses = failing;
	for (size_t i = 0; statuses[i]; i++) {
		if (strcmp(statuses[i], a->status) == 0)
			return true;
	}
	return false;
}
