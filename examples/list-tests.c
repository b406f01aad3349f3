/*
 * list-tests.c - the smallest program using the discovery API: lists the
 * tests of an fmf tree as tmt would run them for a context, with the
 * directory each one runs in and its duration.
 *
 *   list-tests examples distro=fedora-40 arch=x86_64
 */
#include <stdio.h>

#include <atex/atex.h>

int main(int argc, char **argv)
{
	struct atex_fmf_discover_options opts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_context *ctx = NULL;
	atex_fmf_discovery *d = NULL;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: list-tests PATH [NAME=VALUE...]\n");
		return 2;
	}
	rc = atex_fmf_context_new(&ctx);
	for (int i = 2; rc == 0 && i < argc; i++)
		rc = atex_fmf_context_set_arg(ctx, argv[i]);
	opts.context = ctx;
	if (rc == 0)
		rc = atex_fmf_discover(&d, argv[1], &opts);
	for (size_t i = 0; rc == 0 && i < atex_fmf_discovery_count(d); i++) {
		json_t *data = atex_fmf_discovery_test_data(d, i);
		const char *duration =
			json_string_value(json_object_get(data, "duration"));

		printf("%-40s %-20s %s\n", atex_fmf_discovery_test_name(d, i),
		       atex_fmf_discovery_test_dir(d, i),
		       duration ? duration : "5m"); /* tmt's default */
	}
	if (rc < 0)
		fprintf(stderr, "list-tests: %s\n", atex_error_last());
	atex_fmf_discovery_free(d);
	atex_fmf_context_free(ctx);
	return rc < 0 ? 1 : 0;
}
