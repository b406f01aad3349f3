/*
 * test_context_rules.c - decides every (context, rule) pair of the
 * reference data $ATEX_CONFORMANCE/fmf/context-rules.jsonl, produced by
 * the Python fmf 1.7 itself, and compares with its answer: true, false,
 * "cannot-decide" or "invalid-rule".
 *
 * A plain program rather than one cmocka test per line: the useful output
 * is the full list of mismatches, each with its context, rule, expected
 * and actual answer, and a non-zero exit status when there is any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Checks one line; returns 1 on a mismatch, 0 when it agrees, -1 when the
 * line itself is malformed. */
static int check_line(const char *line, size_t lineno)
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
	ret = strcmp(expected, got) != 0;
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
		rc = check_line(line, lineno);
		total++;
		if (rc)
			bad++;
	}
	free(line);
	fclose(f);
	printf("%zu/%zu context rules agree with the reference\n", total - bad,
	       total);
	return bad || !total ? 1 : 0;
}
