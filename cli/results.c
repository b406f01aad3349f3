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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
	/* No status: an error that says so (docs/PROTOCOL.md section 2),
	 * as the aggregated results have it. */
	bool missing = !status;

	if (missing)
		status = "error";
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
	if (missing)
		fputs(note ? "  the result has no status: "
			   : "  the result has no status",
		      stdout);
	if (note) {
		fputs(missing ? "" : "  ", stdout);
		put_escaped(note);
	}
	if (suffix)
		fputs(suffix, stdout);
	putchar('\n');
}

/* rm -rf through the library's local connection: no hand-written tree
 * walk here; and no process at all when there is nothing to remove, the
 * usual case for a fresh results or artifacts directory. */
/* rm's message said once: its first line, and how many more it has (rm
 * writes one line per entry it could not remove). */
static void remove_failed(const char *what, const char *path, const char *err)
{
	size_t len = strcspn(err, "\n"), more = 0;

	for (const char *p = err + len; *p; p++)
		more += *p == '\n' && p[1] && p[1] != '\n';
	if (more)
		cli_error("%s: cannot remove %s: %.*s (and %zu more)", what,
			  path, (int)len, err, more);
	else
		cli_error("%s: cannot remove %s: %.*s", what, path, (int)len,
			  err);
}

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
		remove_failed(what, path,
			      r.err && *r.err ? r.err : atex_error_last());
	atex_run_result_clear(&r);
	atex_connection_free(local);
	return rc;
}

static bool ours(uid_t uid)
{
	return uid == geteuid() || uid == 0;
}

/* The first symlink on the way to `dir` (dir itself included) that
 * another user owns, as a new string, or NULL. Such a link can stand in a
 * shared sticky directory (/tmp) and point anywhere: following it would
 * make us empty and write a directory of the owner's choosing (the
 * kernel's fs.protected_symlinks refuses this, when it is on). */
static char *foreign_link(const char *dir)
{
	char *copy = strdup(dir), *slash;
	struct stat sb;

	if (!copy)
		return NULL;
	for (slash = copy + 1;; slash++) {
		char was;

		slash += strcspn(slash, "/");
		was = *slash;
		*slash = '\0';
		if (lstat(copy, &sb) == 0 && S_ISLNK(sb.st_mode) &&
		    !ours(sb.st_uid))
			return copy;
		if (!was)
			break;
		*slash = was;
	}
	free(copy);
	return NULL;
}

int cli_check_owner(const char *dir, const char *what)
{
	char *link = foreign_link(dir);
	struct stat sb;

	if (link && lstat(link, &sb) == 0) {
		cli_error("%s: %s: the symlink %s belongs to user %u, not to "
			  "us: it could point anywhere; use a directory of "
			  "our own",
			  what, dir, link, (unsigned)sb.st_uid);
		free(link);
		return -1;
	}
	free(link);
	if (stat(dir, &sb) < 0) {
		if (errno == ENOENT)
			return 0; /* made by us, later */
		cli_error("%s: %s: %s", what, dir, strerror(errno));
		return -1;
	}
	/* Writable by every user and not sticky: anyone could replace an
	 * entry we made with a link (DIR/NAME -> VICTIM). In a sticky one
	 * (/tmp, a fresh tmpfs) what we make stays ours, and what another
	 * user made first is refused where it is used (cli_confine,
	 * cli_own_dir). */
	if (ours(sb.st_uid) && S_ISDIR(sb.st_mode) && (sb.st_mode & S_IWOTH) &&
	    !(sb.st_mode & S_ISVTX)) {
		cli_error("%s: %s is writable by every user and not sticky: "
			  "they could replace what we make in it with links; "
			  "use a directory of our own",
			  what, dir);
		return -1;
	}
	if (ours(sb.st_uid))
		return 0;
	cli_error("%s: %s belongs to user %u, not to us: they could plant "
		  "links in it that we would follow; use a directory of our "
		  "own",
		  what, dir, (unsigned)sb.st_uid);
	return -1;
}

/* Removes the entry `name` of `dirfd` that is in the way of a directory
 * (a symlink, a file): the entry itself, never what a link points to. */
static int remove_in_the_way(int dirfd, const char *name, const char *shown,
			     const char *what)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	cli_error("%s: cannot remove '%s' under %s: %s", what, name, shown,
		  strerror(errno));
	return -1;
}

/* 0 when the directory `fd` (shown as base/name) is ours; -1, printed,
 * when another user made it: in a sticky directory (/tmp) they could
 * replace what is inside it with links at any time. */
static int own_entry(int fd, const char *base, const char *name,
		     const char *what)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0) {
		cli_error("%s: %s/%s: %s", what, base, name, strerror(errno));
		return -1;
	}
	if (ours(sb.st_uid))
		return 0;
	cli_error("%s: %s/%s belongs to user %u, not to us: they could plant "
		  "links in it that we would follow",
		  what, base, name, (unsigned)sb.st_uid);
	return -1;
}

int cli_own_dir(const char *path, const char *what)
{
	int fd;

	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		cli_error("%s: %s: %s", what, path, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		cli_error("%s: %s: %s", what, path,
			  errno == ELOOP ? "a symlink" : strerror(errno));
		return -1;
	}
	if (own_entry(fd, path, ".", what) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int cli_confine(const char *base, const char *rel, const char *what)
{
	const int dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	char *copy = NULL, *save = NULL, *name;
	int fd, rc = 0;

	/* Every directory on the way is made here, by us, and checked to
	 * be ours: one another user made first (base may be a sticky
	 * directory) is refused. */
	if (mkdir(base, 0755) < 0 && errno != EEXIST) {
		cli_error("%s: %s: %s", what, base, strerror(errno));
		return -1;
	}
	fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		cli_error("%s: %s: %s", what, base, strerror(errno));
		return -1;
	}
	copy = strdup(rel);
	if (!copy) {
		cli_error("%s: out of memory", what);
		rc = -1;
		goto out;
	}
	for (name = strtok_r(copy, "/", &save); name && !rc;
	     name = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, name, dir_flags);

		if (next < 0 && (errno == ELOOP || errno == ENOTDIR)) {
			/* Planted, or left by a test of another name: only
			 * the entry goes, and a directory is made anew. */
			if (remove_in_the_way(fd, name, base, what) < 0) {
				rc = -1;
				break;
			}
			errno = ENOENT;
		}
		if (next < 0 && errno == ENOENT &&
		    (mkdirat(fd, name, 0755) == 0 || errno == EEXIST))
			next = openat(fd, name, dir_flags);
		if (next < 0) {
			cli_error("%s: %s/%s: %s", what, base, name,
				  strerror(errno));
			rc = -1;
			break;
		}
		close(fd);
		fd = next;
		rc = own_entry(fd, base, name, what);
	}
out:
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}
