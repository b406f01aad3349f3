/*
 * remote.c - signalling a command that runs on another system (see
 * remote.h for why). The killing command is bash, which DESIGN.md requires
 * on every system, and reads /proc/PID/environ with builtins only, so it
 * costs one channel and no further processes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "connection/remote.h"
#include "util/util.h"

/* How long the killing command may take before it is given up. */
#define KILL_TIMEOUT_MS 5000

/* LC_ALL=C: in a UTF-8 locale bash's `read -d ''` takes a value ending in
 * an invalid byte (a Latin-1 name) and the NUL after it as one character,
 * merging it with the next variable, which would hide ours. */
static const char kill_script[] =
	"LC_ALL=C; id=$1 sig=$2 n=0; "
	"for f in /proc/[0-9]*/environ; do "
	"while IFS= read -r -d '' v; do "
	"if [ \"$v\" = \"" ATEX_RUN_ID_VAR "=$id\" ]; then "
	"p=${f#/proc/}; kill -n \"$sig\" \"${p%/environ}\" && n=1; "
	"break; fi; "
	"done < \"$f\"; done 2>/dev/null; exit $((1 - n))";

struct remote_kill {
	char **argv; /* prefix, then the command; NULL-terminated */
	size_t n_prefix;
	bool one_string;
	char id[ATEX_RUN_ID_SIZE];
};

void atex_run_id_new(char id[ATEX_RUN_ID_SIZE])
{
	unsigned long long r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (unsigned long long)atex_monotonic_ms() * 2654435761ull;
	snprintf(id, ATEX_RUN_ID_SIZE, "%016llx", r);
}

static void remote_kill_free(void *data)
{
	struct remote_kill *k = data;

	if (!k)
		return;
	for (size_t i = 0; k->argv && k->argv[i]; i++)
		free(k->argv[i]);
	free(k->argv);
	free(k);
}

/* The hook: runs the script through the client with the id and signal;
 * true when it signalled a process there (it exits 0). */
static bool remote_kill(void *data, int sig)
{
	struct remote_kill *k = data;
	char signo[16], *line = NULL;
	const char *tail[7];
	const char **argv;
	atex_process *p = NULL;
	size_t n = 0, i;
	int status = -1;

	snprintf(signo, sizeof(signo), "%d", sig);
	if (k->one_string) {
		struct atex_buf b = ATEX_BUF_INIT;

		atex_buf_puts(&b, "exec bash --norc -c ");
		atex_shell_quote(&b, kill_script);
		atex_buf_puts(&b, " _ ");
		atex_shell_quote(&b, k->id);
		atex_buf_putc(&b, ' ');
		atex_shell_quote(&b, signo);
		line = atex_buf_detach(&b);
		tail[n++] = line;
	} else {
		tail[n++] = "bash";
		tail[n++] = "--norc";
		tail[n++] = "-c";
		tail[n++] = kill_script;
		tail[n++] = "_";
		tail[n++] = k->id;
		tail[n++] = signo;
	}
	argv = calloc(k->n_prefix + n + 1, sizeof(*argv));
	if (!argv || (k->one_string && !line))
		goto out;
	for (i = 0; i < k->n_prefix; i++)
		argv[i] = k->argv[i];
	for (size_t j = 0; j < n; j++)
		argv[i++] = tail[j];
	/* Best effort: a dead channel means the command is going anyway. */
	if (atex_process_spawn(&p, argv, NULL, NULL, ATEX_STDIO_NULL,
			       ATEX_STDIO_NULL, ATEX_STDIO_NULL) == 0 &&
	    atex_process_wait(&status, p, KILL_TIMEOUT_MS, NULL) != 0) {
		atex_process_kill(p, SIGKILL);
		status = -1;
	}
out:
	atex_process_free(p);
	free(argv);
	free(line);
	return status == 0;
}

int atex_remote_kill_hook(atex_process *p, const char *const *prefix, size_t n,
			  bool one_string, const char *id)
{
	struct remote_kill *k = atex_calloc(1, sizeof(*k));

	if (!k)
		return ATEX_ENOMEM;
	k->argv = atex_calloc(n + 1, sizeof(*k->argv));
	if (!k->argv)
		goto oom;
	for (k->n_prefix = 0; k->n_prefix < n; k->n_prefix++)
		if (!(k->argv[k->n_prefix] = atex_strdup(prefix[k->n_prefix])))
			goto oom;
	k->one_string = one_string;
	snprintf(k->id, sizeof(k->id), "%s", id);
	atex_process_set_kill_hook(p, remote_kill, k, remote_kill_free);
	return 0;
oom:
	remote_kill_free(k);
	return ATEX_ENOMEM;
}
