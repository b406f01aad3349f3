/*
 * stage.c - building the directory the fmf executor uploads.
 *
 * Why stage at all: a connection copies one directory per call, and every
 * copy is a round trip (an rsync or tar over ssh, a podman exec). Putting
 * the trees and the scripts side by side locally makes the whole upload
 * one copy, and leaves .git behind without asking each copy mechanism to
 * exclude things. Hard links make staging cost a directory walk, not a
 * copy of the data; nothing writes to the staged files afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor/stage.h"
#include "util/util.h"

#define STAGE_COMPONENT "executor"
#define STAGE_FDS	32

/* nftw has no user data: the walk's state lives here, one walk per thread
 * at a time. */
static __thread struct {
	const char *src;
	const char *dst;
	size_t src_len;
	int rc;
} walk;

static int stage_fail(const char *what, const char *path)
{
	walk.rc = atex_error_set(ATEX_EIO, "staging %s: %s: %s", walk.src, what,
				 path);
	return FTW_STOP;
}

/* Copies a regular file where a hard link is refused. */
static int copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	struct stat st;

	if (in < 0 || fstat(in, &st) < 0)
		goto out;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
	if (out < 0)
		goto out;
	for (off_t left = st.st_size; left > 0;) {
		ssize_t n = sendfile(out, in, NULL, (size_t)left);

		if (n <= 0)
			goto out;
		left -= n;
	}
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

static int stage_entry(const char *path, const struct stat *st, int type,
		       struct FTW *ftw)
{
	const char *rel = path + walk.src_len;
	char *to, target[4096];
	ssize_t n;
	int ret = FTW_CONTINUE;

	if (!strcmp(path + ftw->base, ".git"))
		return type == FTW_D ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
	to = atex_sprintf("%s%s", walk.dst, rel);
	if (!to) {
		walk.rc = ATEX_ENOMEM;
		return FTW_STOP;
	}
	switch (type) {
	case FTW_D:
		if (mkdir(to, st->st_mode & 07777) < 0 && errno != EEXIST)
			ret = stage_fail("cannot create", to);
		break;
	case FTW_F:
		if (link(path, to) < 0 && copy_file(path, to, st->st_mode) < 0)
			ret = stage_fail("cannot link or copy", path);
		break;
	case FTW_SL:
	case FTW_SLN:
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			ret = stage_fail("cannot read link", path);
		else if ((target[n] = '\0', symlink(target, to)) < 0)
			ret = stage_fail("cannot create link", to);
		break;
	case FTW_DNR:
	case FTW_NS:
		ret = stage_fail("cannot read", path);
		break;
	default:
		break;
	}
	free(to);
	return ret;
}

int atex_stage_tree(const char *src, const char *dst)
{
	walk.src = src;
	walk.dst = dst;
	walk.src_len = strlen(src);
	walk.rc = 0;
	if (nftw(src, stage_entry, STAGE_FDS, FTW_PHYS | FTW_ACTIONRETVAL) !=
		    0 &&
	    !walk.rc)
		walk.rc = atex_error_set(ATEX_EIO, "staging %s: %s", src,
					 strerror(errno));
	return walk.rc;
}

int atex_stage_file(const char *dir, const char *name, const char *data,
		    size_t len, unsigned int mode)
{
	char *path = atex_path_join(dir, name);
	int fd, rc = 0;

	if (!path)
		return ATEX_ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len ||
	    fchmod(fd, mode) < 0)
		rc = atex_error_set(ATEX_EIO, "cannot write %s: %s", path,
				    strerror(errno));
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		atex_log(ATEX_LOG_WARNING, STAGE_COMPONENT,
			 "cannot remove %s: %s", path, strerror(errno));
	return 0;
}

void atex_stage_remove(const char *dir)
{
	if (dir && atex_path_exists(dir))
		nftw(dir, remove_entry, STAGE_FDS, FTW_PHYS | FTW_DEPTH);
}
