/*
 * stage.h - private: the local staging directory the fmf executor uploads
 * in one copy: the tests trees (without .git) and the remote scripts.
 */
#ifndef ATEX_EXECUTOR_STAGE_H
#define ATEX_EXECUTOR_STAGE_H

#include <stddef.h>

/*
 * Mirrors the tree at `src` into `dst` (created; its parent must exist):
 * directories made, regular files hard-linked (copied where linking is
 * refused, e.g. across filesystems), symlinks recreated as they are, and
 * every entry named .git left out. Modes are kept. Returns 0, ATEX_EIO
 * (message names the path), ATEX_ENOMEM.
 */
int atex_stage_tree(const char *src, const char *dst);

/* Writes `len` bytes to dir/name with `mode`. Returns 0 or ATEX_EIO. */
int atex_stage_file(const char *dir, const char *name, const char *data,
		    size_t len, unsigned int mode);

/* Removes a staged tree (rm -rf). Never fails; logs what it cannot. */
void atex_stage_remove(const char *dir);

/* This process as the owner of what it makes, "BOOT-PID-START" (boot id
 * prefix, pid, start time), put in the names of the staging and work
 * directories so that a later run can tell when their owner is gone.
 * Static; "x" (never reaped) when the boot id is unknown. */
const char *atex_stage_owner(void);

/* Opens `dir` and takes an exclusive flock on it (held until the
 * descriptor is closed, or the process dies). The descriptor, or -1 when
 * it cannot be opened or another process holds the lock. */
int atex_stage_lock(const char *dir);

/* Removes every directory PREFIX<owner>-XXXXXX in `dir` whose owner is
 * provably gone: made in this boot, ours (uid), its pid gone or reused,
 * and not locked. Never fails; logs what it removes. */
void atex_stage_reap(const char *dir, const char *prefix);

#endif /* ATEX_EXECUTOR_STAGE_H */
