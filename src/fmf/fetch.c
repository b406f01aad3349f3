/*
 * fetch.c - the git repositories step phases name with `url` (and `ref`),
 * as tmt fetches them for discover phases: cloned once per url into a
 * cache directory ($XDG_CACHE_HOME/atex/git unless the caller gives one),
 * updated on each discovery, the ref checked out detached, so a phase's
 * tests can come from a tree of their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmf/discover_private.h"
#include "util/util.h"

extern char **environ;

/* ------------------------------------------------------------------------
 * Fetching `url` sections with git.
 */

/* Runs git with `argv` (argv[0] is "git"); stderr is kept for the error
 * message. */
static int run_git(char *const argv[], const char *what)
{
	char errfile[] = "/tmp/atex-git-XXXXXX";
	posix_spawn_file_actions_t fa;
	int fd, status = 0, rc = 0;
	pid_t pid;

	fd = mkstemp(errfile);
	if (fd < 0)
		return atex_error_set(ATEX_EIO, "cannot create a temp file: %s",
				      strerror(errno));
	unlink(errfile);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	if (posix_spawnp(&pid, "git", &fa, NULL, argv, environ) != 0) {
		rc = atex_error_set(ATEX_EEXTERNAL,
				    "%s: cannot run git (is it installed?)",
				    what);
		goto out;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char msg[1024] = "";
		ssize_t n = pread(fd, msg, sizeof(msg) - 1, 0);

		if (n > 0)
			msg[n] = '\0';
		msg[strcspn(msg, "\n")] = '\0';
		rc = atex_error_set(ATEX_EEXTERNAL, "%s: git %s failed: %s",
				    what, argv[1], msg);
	}
out:
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	return rc;
}

static char *default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (xdg && *xdg)
		return atex_sprintf("%s/atex/git", xdg);
	return atex_sprintf("%s/.cache/atex/git",
			    home && *home ? home : "/tmp");
}

static int mkdir_p(const char *path)
{
	char *copy = atex_strdup(path);
	int rc = 0;

	if (!copy)
		return ATEX_ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	if (mkdir(copy, 0755) < 0 && errno != EEXIST)
		rc = -1;
	if (rc < 0)
		rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", path,
				    strerror(errno));
	free(copy);
	return rc;
}

/* Clones (or updates) `url` at `ref` into the cache; *out is the clone. */
int atex_fmf_fetch_repo(char **out, const char *url, const char *ref,
			const char *cache_dir)
{
	char *base = cache_dir ? atex_strdup(cache_dir) : default_cache_dir();
	char *dir = NULL, *gitdir = NULL, *name = NULL;
	int rc;

	*out = NULL;
	if (!base)
		return ATEX_ENOMEM;
	rc = mkdir_p(base);
	if (rc < 0)
		goto out;
	/* One clone per url, named so a person can tell which is which. */
	name = atex_strdup(url);
	if (!name) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			*p = '_';
	dir = atex_path_join(base, name);
	gitdir = dir ? atex_path_join(dir, ".git") : NULL;
	if (!gitdir) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	if (atex_path_is_dir(gitdir)) {
		char *fetch[] = {"git",	    "-C",      dir,
				 "fetch",   "--quiet", "--tags",
				 "--force", "origin",  NULL};

		rc = run_git(fetch, url);
	} else {
		char *clone[] = {"git",	      "clone", "--quiet",
				 (char *)url, dir,     NULL};

		rc = run_git(clone, url);
	}
	if (rc == 0) {
		char *target =
			ref ? atex_strdup(ref) : atex_strdup("origin/HEAD");
		char *checkout[] = {"git",	"-C",	   dir,
				    "checkout", "--quiet", "--force",
				    "--detach", target,	   NULL};

		/* A branch name means the remote's branch, not a stale
		 * local one. */
		if (target && ref) {
			char *remote = atex_sprintf("origin/%s", ref);
			char *probe[] = {"git",	      "-C",	 dir,
					 "rev-parse", "--quiet", "--verify",
					 remote,      NULL};

			if (remote && run_git(probe, url) == 0) {
				free(target);
				target = remote;
				remote = NULL;
				checkout[7] = target;
			}
			free(remote);
		}
		rc = target ? run_git(checkout, url) : ATEX_ENOMEM;
		free(target);
	}
	if (rc == 0) {
		*out = dir;
		dir = NULL;
	}
out:
	free(base);
	free(name);
	free(dir);
	free(gitdir);
	return rc;
}
