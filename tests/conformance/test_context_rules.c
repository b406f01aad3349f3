/*
 * test_context_rules.c - decides every (context, rule) pair of the
 * reference data $ATEX_CONFORMANCE/fmf/context-rules.jsonl, produced by
 * the Python fmf 1.7 itself, and compares with its answer: true, false,
 * "cannot-decide" or "invalid-rule".
 *
 * When $ATEX_CLI names the atex tool, every line is also decided through
 * the command-line contract (`atex fmf match --context K=V,... RULE`,
 * list values joined with commas) and must print the same word.
 *
 * A plain program rather than one cmocka test per line: the useful output
 * is the full list of mismatches, each with its context, rule, expected
 * and actual answer, and a non-zero exit status when there is any.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/fmf.h"

/* The context of one line; list values stay lists. */
static atex_fmf_context *build_context(const json_t *obj)
{
	atex_fmf_context *ctx;
	const char *key;
	json_t *value;

	if (atex_fmf_context_new(&ctx))
		return NULL;
	json_object_foreach((json_t *)obj, key, value)
	{
		if (atex_fmf_context_set_json(ctx, key, value)) {
			fprintf(stderr, "cannot set context '%s': %s\n", key,
				atex_error_last());
			atex_fmf_context_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

/* Our answer in the words of the data file (static or in `buf`). */
static const char *decide(char *buf, size_t size, const atex_fmf_context *ctx,
			  const char *rule)
{
	int decision, rc;

	rc = atex_fmf_context_match(&decision, ctx, rule);
	if (rc == ATEX_ERULE)
		return "invalid-rule";
	if (rc) {
		snprintf(buf, size, "error %d: %s", rc, atex_error_last());
		return buf;
	}
	switch (decision) {
	case ATEX_FMF_TRUE:
		return "true";
	case ATEX_FMF_FALSE:
		return "false";
	default:
		return "cannot-decide";
	}
}

extern char **environ;

/* The CLI's answer for the line: its stdout without the newline (in
 * `buf`), or a description of what went wrong. */
static const char *cli_decide(char *buf, size_t size, const char *cli,
			      const json_t *jctx, const char *rule)
{
	char *argv[64], *owned[32];
	size_t argc = 0, nowned = 0, i;
	posix_spawn_file_actions_t fa;
	const char *key;
	json_t *value;
	int fds[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	argv[argc++] = (char *)cli;
	argv[argc++] = "fmf";
	argv[argc++] = "match";
	json_object_foreach((json_t *)jctx, key, value) {
		char arg[1024];
		size_t j;
		json_t *item;

		snprintf(arg, sizeof(arg), "%s=", key);
		if (json_is_string(value))
			strncat(arg, json_string_value(value),
				sizeof(arg) - strlen(arg) - 1);
		json_array_foreach(value, j, item) {
			if (j)
				strncat(arg, ",", sizeof(arg) - strlen(arg) - 1);
			strncat(arg, json_string_value(item),
				sizeof(arg) - strlen(arg) - 1);
		}
		if (argc + 3 >= 64 || nowned >= 32)
			return "too many dimensions";
		argv[argc++] = "--context";
		argv[argc++] = owned[nowned++] = strdup(arg);
	}
	argv[argc++] = (char *)rule;
	argv[argc] = NULL;
	if (pipe(fds) < 0)
		return "pipe failed";
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	if (posix_spawn(&pid, cli, &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	while (pid > 0 && (n = read(fds[0], buf + got,
				    size - 1 - (size_t)got)) > 0)
		got += n;
	close(fds[0]);
	for (i = 0; i < nowned; i++)
		free(owned[i]);
	if (pid < 0)
		return "cannot run the CLI";
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return "the CLI failed";
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* The expected answer: JSON true/false or a string. */
static const char *expected_of(const json_t *result)
{
	if (json_is_true(result))
		return "true";
	if (json_is_false(result))
		return "false";
	if (json_is_string(result))
		return json_string_value(result);
	return "?";
}

/* Out of line: GCC's string-compare check misreads the inlined answers. */
static __attribute__((noinline)) int differ(const char *a, const char *b)
{
	return strcmp(a, b) != 0;
}

/* Checks one line; returns 1 on a mismatch, 0 when it agrees, -1 when the
 * line itself is malformed. */
static int check_line(const char *line, size_t lineno, const char *cli)
{
	json_error_t err;
	json_t *case_ = json_loads(line, 0, &err), *jctx, *jrule;
	atex_fmf_context *ctx = NULL;
	const char *expected, *got;
	char buf[4096], *ctx_text = NULL;
	int ret = -1;

	jctx = json_object_get(case_, "context");
	jrule = json_object_get(case_, "rule");
	if (!json_is_object(jctx) || !json_is_string(jrule)) {
		fprintf(stderr, "line %zu: malformed: %s\n", lineno, line);
		goto out;
	}
	ctx = build_context(jctx);
	if (!ctx)
		goto out;
	expected = expected_of(json_object_get(case_, "result"));
	got = decide(buf, sizeof(buf), ctx, json_string_value(jrule));
	ret = differ(expected, got);
	if (!ret && cli) {
		char answer[256];

		got = cli_decide(answer, sizeof(answer), cli, jctx,
				 json_string_value(jrule));
		ret = differ(expected, got);
	}
	if (ret) {
		ctx_text = json_dumps(jctx, JSON_COMPACT);
		printf("MISMATCH line %zu: context %s rule '%s': expected %s, "
		       "got %s\n",
		       lineno, ctx_text ? ctx_text : "?",
		       json_string_value(jrule), expected, got);
	}
out:
	free(ctx_text);
	atex_fmf_context_free(ctx);
	json_decref(case_);
	return ret;
}

int main(void)
{
	const char *dir = getenv("ATEX_CONFORMANCE");
	const char *cli = getenv("ATEX_CLI");
	char path[4096], *line = NULL;
	size_t cap = 0, lineno = 0, bad = 0, total = 0;
	ssize_t len;
	FILE *f;

	if (!dir) {
		fprintf(stderr, "ATEX_CONFORMANCE is not set\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/fmf/context-rules.jsonl", dir);
	f = fopen(path, "r");
	if (!f) {
		perror(path);
		return 2;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		int rc;

		lineno++;
		if (len == 1 && line[0] == '\n')
			continue;
		rc = check_line(line, lineno, cli);
		total++;
		if (rc)
			bad++;
	}
	free(line);
	fclose(f);
	printf("%zu/%zu context rules agree with the reference%s\n",
	       total - bad, total, cli ? " (library and CLI)" : "");
	return bad || !total ? 1 : 0;
}
