/*
 * testingfarm.c - placeholder until the Testing Farm provisioner lands.
 */
#include "atex/provisioner.h"
#include "util/util.h"

int atex_testingfarm_call(char **reply, long *http_status,
			  const struct atex_testingfarm_api_options *api,
			  const char *method, const char *path,
			  const char *json_body, atex_cancel *cancel)
{
	return atex_error_set(ATEX_EINVAL, "Testing Farm: not built yet");
}

int atex_testingfarm_provisioner_new(
	atex_provisioner **out,
	const struct atex_testingfarm_provisioner_options *opts)
{
	return atex_error_set(ATEX_EINVAL, "Testing Farm: not built yet");
}

int atex_testingfarm_provisioner_stats(struct atex_testingfarm_stats *out,
				       atex_provisioner *p)
{
	return atex_error_set(ATEX_EINVAL, "Testing Farm: not built yet");
}

int atex_testingfarm_remote_login(struct atex_testingfarm_login *out,
				  atex_remote *r)
{
	return atex_error_set(ATEX_EINVAL, "Testing Farm: not built yet");
}
