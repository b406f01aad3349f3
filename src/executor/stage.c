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
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

/* ------------------------------------------------------------------------
 * Owners, and the leftovers of dead ones.
 *
 * A run killed with SIGKILL cannot remove its staging directory nor its
 * work directory (on a local system, under /var/tmp), and nobody else
 * would: the next run does. For that, every such directory names its
 * owner, BOOT-PID-START: the first 8 hex digits of the kernel's boot_id,
 * the pid, and the process's start time (/proc/PID/stat, clock ticks
 * since boot), which a reused pid does not share. A directory is removed
 * only when its owner is provably gone: the same boot (a work directory
 * made by a controller on another machine, over ssh, names another boot
 * and is never touched), our user, and no process with that pid and
 * start time. The staging directory is also flock()ed by its owner for
 * its lifetime, which the kernel releases when the owner dies: a live
 * owner that a pid namespace hides from us still keeps it.
 */

static char owner_tag[64];
static pthread_once_t owner_once = PTHREAD_ONCE_INIT;

/* The start time of process `pid` (field 22 of /proc/PID/stat), or 0
 * when there is no such process. */
static unsigned long long start_time_of(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name may hold spaces and ")": count from the last. */
	p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

/* The first 8 hex digits of this boot's id, or "" when unknown. */
static void boot_id(char out[9])
{
	char buf[64] = "";
	size_t j = 0;
	ssize_t n;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	out[0] = '\0';
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (ssize_t i = 0; i < n && j < 8; i++)
		if (isxdigit((unsigned char)buf[i]))
			out[j++] = (char)tolower((unsigned char)buf[i]);
	out[j == 8 ? 8 : 0] = '\0';
}

static void owner_init(void)
{
	unsigned long long start = start_time_of(getpid());
	char boot[9];

	boot_id(boot);
	/* No tag (no /proc to tell the living from the dead): nothing is
	 * ever reaped, ours or anyone's. */
	if (!*boot || !start)
		return;
	snprintf(owner_tag, sizeof(owner_tag), "%s-%d-%llu", boot,
		 (int)getpid(), start);
}

const char *atex_stage_owner(void)
{
	pthread_once(&owner_once, owner_init);
	return owner_tag[0] ? owner_tag : "x";
}

/* Whether `name` is PREFIX BOOT-PID-START-XXXXXX of an owner provably
 * gone. */
static bool owner_gone(const char *name, const char *prefix)
{
	char boot[9];
	const char *p = name + strlen(prefix);
	unsigned long long start;
	char *end;
	long pid;

	if (strncmp(name, prefix, strlen(prefix)))
		return false;
	atex_stage_owner();
	memcpy(boot, owner_tag, 8);
	boot[8] = '\0';
	if (!owner_tag[0] || strncmp(p, boot, 8) || p[8] != '-')
		return false;
	p += 9;
	if (!isdigit((unsigned char)*p))
		return false;
	pid = strtol(p, &end, 10);
	if (*end != '-' || pid <= 0 || !isdigit((unsigned char)end[1]))
		return false;
	start = strtoull(end + 1, &end, 10);
	if (*end != '-' || strlen(end + 1) != 6)
		return false;
	/* Alive, and the same process (not a reused pid): not ours to
	 * take. */
	if (start_time_of((pid_t)pid) == start)
		return false;
	return true;
}

int atex_stage_lock(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void atex_stage_reap(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		char *path;
		int lock;

		if (!owner_gone(e->d_name, prefix) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			    0 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
			continue;
		path = atex_path_join(dir, e->d_name);
		if (!path)
			break;
		/* Held: a live owner we cannot see (another pid
		 * namespace). */
		lock = atex_stage_lock(path);
		if (lock >= 0) {
			atex_log(ATEX_LOG_INFO, STAGE_COMPONENT,
				 "removing %s, left by a run that is gone",
				 path);
			atex_stage_remove(path);
			close(lock);
		}
		free(path);
	}
	closedir(d);
}
