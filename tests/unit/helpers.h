/*
 * helpers.h - small helpers for the unit tests: temporary fmf trees written
 * from C strings. Header-only so each test binary stays one file.
 */
#ifndef ATEX_TEST_HELPERS_H
#define ATEX_TEST_HELPERS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* Creates a fresh temporary directory; the caller frees the string. */
static inline char *tmpdir_new(void)
{
	char *dir = strdup("/tmp/atex-test-XXXXXX");

	/* abort(), not only the assert: gcc then knows dir is not NULL
	 * (-Wformat-truncation in callers under the sanitizers). */
	if (!dir)
		abort();
	assert_non_null(mkdtemp(dir));
	return dir;
}

/* Writes `content` to dir/rel, creating parent directories. */
static inline void write_file(const char *dir, const char *rel,
			      const char *content)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *p = path + strlen(dir) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0)
			assert_int_equal(errno, EEXIST);
		*p = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* A new tree: dir/.fmf/version plus the files given as path, content
 * pairs ending with NULL. */
static inline char *tree_new(const char *first, ...)
{
	char *dir = tmpdir_new();
	va_list ap;

	write_file(dir, ".fmf/version", "1\n");
	va_start(ap, first);
	for (const char *rel = first; rel; rel = va_arg(ap, const char *))
		write_file(dir, rel, va_arg(ap, const char *));
	va_end(ap);
	return dir;
}

static inline void tree_remove(char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

#endif /* ATEX_TEST_HELPERS_H */
