/*
 * log.c - the CLI's log handler while Testing Farm is used: the
 * provisioner's info lines (request submitted, ready, canceled) are shown
 * by default, as they are the ids a user needs to cancel what a killed
 * atex left alive (`atex tf cancel ID`); other components' info lines
 * stay hidden. ATEX_LOG, when set, chooses the level as everywhere else.
 *
 * For the one-shot `atex tf` calls, the API client's first retry is a
 * warning naming the URL and the error.
 *
 * The handler also keeps the ids of the requests submitted and not yet
 * seen canceled, so that a second Ctrl-C (which exits at once) can name
 * those that may be left alive.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

#define TF_COMPONENT "testingfarm"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int shown_level;	       /* what ATEX_LOG (or the default) shows */
static bool tf_info_shown;     /* the testingfarm info lines too */
static const char *retry_what; /* one-shot API calls: warn once */
static int retry_s;
static bool retry_warned;
static char **ids; /* submitted, not seen canceled */
static size_t n_ids, cap_ids;

/* The id after `marker` in `message`, or NULL. */
static const char *id_after(const char *message, const char *marker)
{
	const char *at = strstr(message, marker);

	return at ? at + strlen(marker) : NULL;
}

/* Lock held. Out of memory: the id is just not remembered. */
static void remember(const char *id)
{
	char *copy;

	if (n_ids == cap_ids) {
		size_t cap = cap_ids ? 2 * cap_ids : 16;
		char **grown = realloc(ids, cap * sizeof(*ids));

		if (!grown)
			return;
		ids = grown;
		cap_ids = cap;
	}
	copy = strdup(id);
	if (copy)
		ids[n_ids++] = copy;
}

/* Lock held. */
static void forget(const char *id)
{
	for (size_t i = 0; i < n_ids; i++) {
		if (!strcmp(ids[i], id)) {
			free(ids[i]);
			ids[i] = ids[--n_ids];
			return;
		}
	}
}

static void track(const char *message)
{
	const char *id;

	pthread_mutex_lock(&lock);
	if ((id = id_after(message, ": submitted request ")) && *id)
		remember(id);
	else if ((id = id_after(message, ": canceled request ")) && *id)
		forget(id);
	pthread_mutex_unlock(&lock);
}

/* The client's "METHOD URL: WHY, try N in S s" (debug): the first one
 * becomes a warning, so that a wrong URL is not minutes of silence. */
static void warn_retry(const char *message)
{
	const char *tail = strstr(message, ", try ");

	if (retry_warned || !tail)
		return;
	retry_warned = true;
	fprintf(stderr,
		"atex: %s: cannot reach the API: %.*s; retrying for "
		"up to %d s\n",
		retry_what, (int)(tail - message), message, retry_s);
}

static void handler(int level, const char *component, const char *message,
		    void *data)
{
	static const char *const prefix[] = {"error", "warning", "info",
					     "debug"};
	bool tf = !strcmp(component, TF_COMPONENT);

	(void)data;
	if (tf && level == ATEX_LOG_INFO)
		track(message);
	if (retry_what && level == ATEX_LOG_DEBUG && !strcmp(component, "http"))
		warn_retry(message);
	if (level > shown_level &&
	    !(tf && tf_info_shown && level == ATEX_LOG_INFO))
		return;
	if (level < 0 || level > ATEX_LOG_DEBUG)
		level = ATEX_LOG_DEBUG;
	/* As the library's own handler: one fprintf, one whole line. */
	fprintf(stderr, "atex[%s] %s: %s\n", component, prefix[level], message);
}

void cli_log_testingfarm(void)
{
	int level = atex_log_get_level();
	const char *env = getenv("ATEX_LOG");

	shown_level = level;
	tf_info_shown = !env || !*env;
	atex_log_set_handler(handler, NULL);
	if (level < ATEX_LOG_INFO)
		atex_log_set_level(ATEX_LOG_INFO);
}

void cli_log_api_retries(const char *what, int retry_for_s)
{
	shown_level = atex_log_get_level();
	tf_info_shown = false;
	retry_what = what;
	retry_s = retry_for_s;
	atex_log_set_handler(handler, NULL);
	atex_log_set_level(ATEX_LOG_DEBUG);
}

void cli_log_print_alive(void)
{
	pthread_mutex_lock(&lock);
	if (n_ids > 0) {
		fprintf(stderr,
			"atex: %zu Testing Farm request%s may be left alive "
			"(they end at their --tf-timeout); cancel with: atex "
			"tf cancel",
			n_ids, n_ids == 1 ? "" : "s");
		for (size_t i = 0; i < n_ids; i++)
			fprintf(stderr, " %s", ids[i]);
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&lock);
}
