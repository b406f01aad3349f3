/*
 * tmpdir.c - private temporary directories that a killed process does not
 * leave behind forever.
 *
 * The owner of TMP/PREFIX-XXXXXX holds flock on DIR/lock for the
 * directory's whole life, on a descriptor opened O_CLOEXEC (so no child,
 * an ssh master for one, inherits the lock and keeps a dead owner's
 * directory "alive"). The kernel drops the lock when the owner dies, even
 * by SIGKILL, so "the lock is free" means "nobody owns this any more":
 * whoever makes a new directory of the same kind first sweeps such
 * orphans. The lock file is created under a temporary name, locked, then
 * renamed to `lock`: a sweeper never finds a `lock` that is not held yet.
 * Directories without a lock file (made by older versions, or caught
 * between mkdtemp and the rename) are removed only when a day old.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define TMPDIR_LOCK	"lock"
#define TMPDIR_LOCK_NEW "lock.new"
/* Age after which a directory without a lock file counts as orphaned. */
#define TMPDIR_UNLOCKED_MAX_S (24 * 3600)

/* Empties `dir` (plain files, sockets, fifos; one level deep, which is
 * all these directories ever hold) and removes it. */
void atex_tmpdir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
}

/* Whether TMP/NAME is an orphaned directory of ours: owned by us, no
 * symlink, and its lock is free (then *lock_fd holds it, keeping other
 * sweepers off while we remove it) or it has no lock file and is old. */
static bool orphaned(int tmp_fd, const char *name, int *lock_fd)
{
	struct stat st;
	int fd;
	bool yes = false;

	*lock_fd = -1;
	if (fstatat(tmp_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return false;
	fd = openat(tmp_fd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	*lock_fd = openat(fd, TMPDIR_LOCK, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (*lock_fd >= 0) {
		yes = flock(*lock_fd, LOCK_EX | LOCK_NB) == 0;
	} else if (errno == ENOENT) {
		yes = st.st_mtime < time(NULL) - TMPDIR_UNLOCKED_MAX_S;
	}
	close(fd);
	if (!yes && *lock_fd >= 0) {
		close(*lock_fd);
		*lock_fd = -1;
	}
	return yes;
}

int atex_tmpdir_sweep(const char *tmp, const char *prefix,
		      void (*before)(const char *dir, void *arg), void *arg)
{
	size_t n = strlen(prefix);
	DIR *d = opendir(tmp);
	struct dirent *e;
	int removed = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		int lock_fd;
		char *dir;

		/* PREFIX-XXXXXX exactly, as mkdtemp makes them. */
		if (strncmp(e->d_name, prefix, n) || e->d_name[n] != '-' ||
		    strlen(e->d_name + n + 1) != 6 ||
		    !orphaned(dirfd(d), e->d_name, &lock_fd))
			continue;
		dir = atex_path_join(tmp, e->d_name);
		if (dir) {
			if (before)
				before(dir, arg);
			atex_tmpdir_remove(dir);
			removed += !atex_path_exists(dir);
		}
		free(dir);
		if (lock_fd >= 0)
			close(lock_fd);
	}
	closedir(d);
	return removed;
}

/* Creates DIR/lock, locked, on a descriptor kept by the caller. */
static int tmpdir_lock(const char *dir, int *lock_fd)
{
	char *tmp = atex_path_join(dir, TMPDIR_LOCK_NEW);
	char *lock = atex_path_join(dir, TMPDIR_LOCK);
	int rc = 0, fd = -1;

	if (!tmp || !lock) {
		rc = atex_error_oom();
		goto out;
	}
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 || rename(tmp, lock)) {
		rc = atex_error_set(ATEX_EIO, "%s: %s", lock, strerror(errno));
		goto out;
	}
	*lock_fd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(lock);
	return rc;
}

int atex_tmpdir_make(char **out, int *lock_fd, const char *tmp,
		     const char *prefix,
		     void (*before)(const char *dir, void *arg), void *arg)
{
	char *dir;
	int rc;

	*out = NULL;
	*lock_fd = -1;
	atex_tmpdir_sweep(tmp, prefix, before, arg);
	dir = atex_sprintf("%s/%s-XXXXXX", tmp, prefix);
	if (!dir)
		return atex_error_oom();
	if (!mkdtemp(dir)) {
		rc = atex_error_set(ATEX_EIO,
				    "cannot create a directory in %s: %s", tmp,
				    strerror(errno));
		free(dir);
		return rc;
	}
	rc = tmpdir_lock(dir, lock_fd);
	if (rc) {
		atex_tmpdir_remove(dir);
		free(dir);
		return rc;
	}
	*out = dir;
	return 0;
}
