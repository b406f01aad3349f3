/*
 * results.c - results as `atex test` and `atex run` show and keep them:
 * one line per result on stdout, STATUS NAME[/SUBTEST][  NOTE][  SUFFIX],
 * and what an earlier run left removed before a new one writes there.
 *
 * Names and notes come from tests, which may put anything in them: a
 * newline would make a second line that reads like another result, and an
 * escape sequence would act on the terminal. Control characters are
 * therefore written escaped (\n, \t, \r, \xHH, atex_text_escape); the
 * results files keep the text as it was.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "atex/atex.h"

#include "cli.h"

bool cli_status_ok(const char *status)
{
	static const char *const ok[] = {"pass", "info", "warn", "skip"};

	if (!status)
		return false;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(status, ok[i]))
			return true;
	return false;
}

static void put_escaped(const char *text)
{
	cli_put_escaped(stdout, text);
}

void cli_print_result(const char *status, const char *test, const char *sub,
		      const char *note, const char *suffix)
{
	if (!status)
		status = "-";
	put_escaped(status);
	/* Statuses are short words: a column five wide. */
	for (size_t n = strlen(status); n < 5; n++)
		putchar(' ');
	putchar(' ');
	put_escaped(test);
	if (sub) {
		putchar('/');
		put_escaped(sub);
	}
	if (note) {
		fputs("  ", stdout);
		put_escaped(note);
	}
	if (suffix)
		fputs(suffix, stdout);
	putchar('\n');
}

/* rm -rf through the library's local connection: no hand-written tree
 * walk here; and no process at all when there is nothing to remove, the
 * usual case for a fresh results or artifacts directory. */
int cli_remove_tree(const char *path, const char *what)
{
	const char *argv[] = {"rm", "-rf", "--", path, NULL};
	struct atex_run_result r = {0};
	atex_connection *local = NULL;
	struct stat sb;
	int rc = -1;

	if (lstat(path, &sb) < 0 && errno == ENOENT)
		return 0;

	if (atex_local_connection_new(&local, NULL) == 0 &&
	    atex_connection_run(&r, local, argv, NULL, 0, 60000, NULL) == 0 &&
	    WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)
		rc = 0;
	else
		cli_error("%s: cannot remove %s: %s", what, path,
			  r.err && *r.err ? r.err : atex_error_last());
	atex_run_result_clear(&r);
	atex_connection_free(local);
	return rc;
}
