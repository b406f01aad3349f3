/*
 * executor.c - the generic half of the Executor block: argument checks and
 * dispatch through the operations table, so a program's own executor gets
 * the same validation and messages as the built-in one.
 */
#include "atex/executor.h"
#include "util/util.h"

static int check_executor(const atex_executor *e, const char *call)
{
	if (!e || !e->ops)
		return atex_error_set(ATEX_EINVAL, "%s: no executor", call);
	return atex_check_ops_version(
		e->ops->version, ATEX_EXECUTOR_OPS_VERSION, "executor", call);
}

int atex_executor_start(atex_executor *e)
{
	int rc = check_executor(e, "start");

	if (rc)
		return rc;
	return e->ops->start ? e->ops->start(e) : 0;
}

int atex_executor_run_test(atex_executor *e, const char *test_name,
			   const char *artifacts_dir, const char *const *env,
			   int *exit_code)
{
	int rc = check_executor(e, "run_test");

	if (exit_code)
		*exit_code = -1;
	if (rc)
		return rc;
	if (!test_name || !*test_name || !artifacts_dir || !*artifacts_dir)
		return atex_error_set(ATEX_EINVAL,
				      "run_test: no test name or artifacts "
				      "directory");
	return e->ops->run_test(e, test_name, artifacts_dir, env, exit_code);
}

void atex_executor_cancel(atex_executor *e)
{
	if (check_executor(e, "cancel") == 0 && e->ops->cancel)
		e->ops->cancel(e);
}

int atex_executor_stop(atex_executor *e)
{
	int rc = check_executor(e, "stop");

	if (rc)
		return rc;
	return e->ops->stop ? e->ops->stop(e) : 0;
}

void atex_executor_free(atex_executor *e)
{
	if (e && e->ops && e->ops->free)
		e->ops->free(e);
}
