/*
 * keygen.c - a provisioner's own login key (keygen.h).
 */
#include <sys/wait.h>

#include "atex/connection.h"
#include "provisioner/keygen.h"
#include "util/util.h"

/* ssh-keygen takes milliseconds; a stuck one must not hang a start. */
#define KEYGEN_MS 30000

int atex_provisioner_keygen(const char *path, const char *comment,
			    const char *who)
{
	const char *argv[] = {"ssh-keygen", "-q",    "-t", "ed25519", "-N", "",
			      "-C",	    comment, "-f", path,      NULL};
	struct atex_run_result res = {0};
	atex_connection *local = NULL;
	int rc;

	if (atex_path_exists(path))
		return 0;
	rc = atex_local_connection_new(&local, NULL);
	if (!rc)
		rc = atex_connection_run(&res, local, argv, NULL, 0, KEYGEN_MS,
					 NULL);
	if (!rc && (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0))
		rc = atex_error_set(ATEX_EEXTERNAL, "%s: ssh-keygen failed: %s",
				    who, res.err ? res.err : "");
	atex_run_result_clear(&res);
	atex_connection_free(local);
	return rc;
}
