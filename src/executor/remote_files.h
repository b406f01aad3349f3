/*
 * remote_files.h - private: the scripts the fmf executor uploads to the
 * system under test (src/executor/remote/: the test wrapper and tmt's
 * helper commands), compiled in by tools/embed.c.
 */
#ifndef ATEX_EXECUTOR_REMOTE_FILES_H
#define ATEX_EXECUTOR_REMOTE_FILES_H

#include <stddef.h>

struct atex_remote_file {
	const char *name; /* "wrapper.sh", "tmt-report-result", ... */
	const char *contents;
	size_t len;
	unsigned int mode; /* 0755 for scripts with "#!", else 0644 */
};

extern const struct atex_remote_file atex_remote_files[];
extern const size_t atex_remote_files_count;

#endif /* ATEX_EXECUTOR_REMOTE_FILES_H */
