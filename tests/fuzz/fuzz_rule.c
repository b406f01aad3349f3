/*
 * fuzz_rule.c - libFuzzer target for the fmf rule language: every input is
 * decided, as a NUL-terminated string, against a small fixed context that
 * has single and multi-valued dimensions, versions and an empty one, so
 * that parsing, version comparison and the regex operators are all
 * reached. Any answer is fine; crashes, leaks, sanitizer reports and
 * return values outside the contract are not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "atex/fmf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static atex_fmf_context *make_context(void)
{
	atex_fmf_context *ctx;
	json_t *empty;

	if (atex_fmf_context_new(&ctx))
		abort();
	if (atex_fmf_context_set(ctx, "distro", "fedora-40") ||
	    atex_fmf_context_set(ctx, "arch", "x86_64,s390x") ||
	    atex_fmf_context_set(ctx, "component",
				 "bash-5.0.17-1.fc32,python3-3.8.5-5.fc32") ||
	    atex_fmf_context_set(ctx, "module", "perl:5.28") ||
	    atex_fmf_context_set(ctx, "x-y", "centos-8.4.0"))
		abort();
	empty = json_array();
	if (!empty || atex_fmf_context_set_json(ctx, "none", empty))
		abort();
	json_decref(empty);
	return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static atex_fmf_context *ctx;
	char *rule;
	int decision = -1, rc;

	if (!ctx)
		ctx = make_context();
	rule = malloc(size + 1);
	if (!rule)
		return 0;
	memcpy(rule, data, size);
	rule[size] = '\0';
	rc = atex_fmf_context_match(&decision, ctx, rule);
	if (rc == 0 && decision != ATEX_FMF_TRUE &&
	    decision != ATEX_FMF_FALSE && decision != ATEX_FMF_UNDECIDED)
		abort();
	if (rc != 0 && rc != ATEX_ERULE && rc != ATEX_ENOMEM)
		abort();
	free(rule);
	return 0;
}
