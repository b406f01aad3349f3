/*
 * log.c - the logging callback. The default handler writes one line per
 * message to stderr; ATEX_LOG=debug (or info, warning, error) sets the level
 * the first time the level is read, so a program need not call anything.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static atex_log_handler handler;
static void *handler_data;
static int level = -1;
static pthread_once_t level_once = PTHREAD_ONCE_INIT;

static void level_from_env(void)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	const char *env = getenv("ATEX_LOG");

	if (level >= 0)
		return;
	level = ATEX_LOG_WARNING;
	if (!env)
		return;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(names); i++)
		if (!strcasecmp(env, names[i]))
			level = (int)i;
	if (!strcasecmp(env, "warn"))
		level = ATEX_LOG_WARNING;
}

void atex_log_set_handler(atex_log_handler fn, void *userdata)
{
	handler = fn;
	handler_data = userdata;
}

void atex_log_set_level(int new_level)
{
	pthread_once(&level_once, level_from_env);
	level = new_level;
}

int atex_log_get_level(void)
{
	pthread_once(&level_once, level_from_env);
	return level;
}

void atex_log(int msg_level, const char *component, const char *fmt, ...)
{
	static const char *const prefix[] = {"error", "warning", "info", "debug"};
	char message[2048];
	va_list ap;

	if (msg_level > atex_log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (handler) {
		handler(msg_level, component, message, handler_data);
		return;
	}
	if (msg_level < 0 || msg_level > ATEX_LOG_DEBUG)
		msg_level = ATEX_LOG_DEBUG;
	/* One fprintf per line keeps concurrent threads' lines whole. */
	fprintf(stderr, "atex[%s] %s: %s\n", component, prefix[msg_level],
		message);
}
