/*
 * log.c - the logging callback. The default handler writes one line per
 * message to stderr; ATEX_LOG=debug (or info, warning, error) sets the level
 * the first time the level is read, so a program need not call anything.
 *
 * Messages name tests, hosts and files, which may hold anything: every
 * message reaches the handler with its control characters escaped
 * (escape.c), so a handler gets the one line it is promised and a
 * terminal is never driven by a test's name.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static atex_log_handler handler;
static void *handler_data;
/*
 * Read by every logging thread while another may set it: atomic, relaxed
 * (a thread seeing a level change a little late is harmless).
 */
static atomic_int level = ATEX_LOG_WARNING;
static pthread_once_t level_once = PTHREAD_ONCE_INIT;

static void level_from_env(void)
{
	static const char *const names[] = {"error", "warning", "info",
					    "debug"};
	const char *env = getenv("ATEX_LOG");

	if (!env)
		return;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(names); i++)
		if (!strcasecmp(env, names[i]))
			atomic_store_explicit(&level, (int)i,
					      memory_order_relaxed);
	if (!strcasecmp(env, "warn"))
		atomic_store_explicit(&level, ATEX_LOG_WARNING,
				      memory_order_relaxed);
}

void atex_log_set_handler(atex_log_handler fn, void *userdata)
{
	handler = fn;
	handler_data = userdata;
}

void atex_log_set_level(int new_level)
{
	/* Reading the environment later must not undo this call. */
	pthread_once(&level_once, level_from_env);
	atomic_store_explicit(&level, new_level, memory_order_relaxed);
}

int atex_log_get_level(void)
{
	pthread_once(&level_once, level_from_env);
	return atomic_load_explicit(&level, memory_order_relaxed);
}

/* Without memory to escape: control characters become '?', so the line
 * is still one line that drives no terminal. */
static void flatten(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p >= 0x80)
			*p = '?';
}

void atex_log(int msg_level, const char *component, const char *fmt, ...)
{
	static const char *const prefix[] = {"error", "warning", "info",
					     "debug"};
	char message[2048];
	struct atex_buf line = ATEX_BUF_INIT;
	const char *shown = message;
	size_t len;
	va_list ap;

	if (msg_level > atex_log_get_level())
		return;
	if (!component)
		component = "atex";
	va_start(ap, fmt);
	if (vsnprintf(message, sizeof(message), fmt, ap) < 0)
		message[0] = '\0';
	va_end(ap);
	/* Handlers are promised one line without a trailing newline. */
	len = strlen(message);
	while (len > 0 && message[len - 1] == '\n')
		message[--len] = '\0';
	/* The rest may name tests and hosts: escaped, it stays one line. */
	if (atex_buf_put_printable(&line, message) == 0)
		shown = atex_buf_cstr(&line);
	else
		flatten(message);
	if (handler) {
		handler(msg_level, component, shown, handler_data);
	} else {
		if (msg_level < 0 || msg_level > ATEX_LOG_DEBUG)
			msg_level = ATEX_LOG_DEBUG;
		/* One fprintf per line keeps concurrent threads' lines
		 * whole. */
		fprintf(stderr, "atex[%s] %s: %s\n", component,
			prefix[msg_level], shown);
	}
	atex_buf_free(&line);
}
