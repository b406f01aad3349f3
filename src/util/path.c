/*
 * path.c - path helpers. atex_path_abspath normalises lexically, without
 * touching the file system, because fmf names nodes by the paths it walked
 * (symlinks included), not by where they lead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

char *atex_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);

	if (b[0] == '/' || la == 0)
		return atex_strdup(b);
	if (a[la - 1] == '/')
		return atex_sprintf("%s%s", a, b);
	return atex_sprintf("%s/%s", a, b);
}

const char *atex_path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

bool atex_path_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool atex_path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

bool atex_path_stays_inside(const char *rel)
{
	long depth = 0;

	while (*rel) {
		size_t n = strcspn(rel, "/");

		if (n == 2 && !strncmp(rel, "..", 2))
			depth--;
		else if (n && !(n == 1 && *rel == '.'))
			depth++;
		if (depth < 0)
			return false;
		rel += n + (rel[n] == '/');
	}
	return true;
}

const char *atex_playbook_relative(const char *raw)
{
	if (!strncasecmp(raw, "http://", 7) || !strncasecmp(raw, "https://", 8))
		return NULL;
	if (!strncasecmp(raw, "file://", 7))
		raw += 7;
	while (*raw == '/')
		raw++;
	return raw;
}

bool atex_playbook_is_collection(const char *s)
{
	int dots = 0;
	bool empty = true;

	for (; *s; s++) {
		if (*s == '.') {
			if (empty)
				return false;
			dots++;
			empty = true;
		} else if ((*s >= 'a' && *s <= 'z') ||
			   (*s >= 'A' && *s <= 'Z') ||
			   (*s >= '0' && *s <= '9') || *s == '_') {
			empty = false;
		} else {
			return false;
		}
	}
	return dots == 2 && !empty;
}

char *atex_path_abspath(const char *path)
{
	struct atex_buf in = ATEX_BUF_INIT, out = ATEX_BUF_INIT;
	char *result = NULL;
	char *save = NULL, *part;

	if (path[0] != '/') {
		/* glibc sizes the buffer: the directory may exceed PATH_MAX. */
		char *cwd = getcwd(NULL, 0);
		int rc;

		if (!cwd) {
			atex_error_set(ATEX_EIO,
				       "cannot get the working directory: %s",
				       strerror(errno));
			return NULL;
		}
		rc = atex_buf_puts(&in, cwd);
		free(cwd);
		if (rc < 0 || atex_buf_putc(&in, '/') < 0)
			goto out;
	}
	if (atex_buf_puts(&in, path) < 0)
		goto out;
	for (part = strtok_r(in.ptr, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		if (!strcmp(part, "."))
			continue;
		if (!strcmp(part, "..")) {
			char *slash = out.ptr ? strrchr(out.ptr, '/') : NULL;

			if (slash) {
				out.len = (size_t)(slash - out.ptr);
				out.ptr[out.len] = '\0';
			}
			continue;
		}
		if (atex_buf_putc(&out, '/') < 0 ||
		    atex_buf_puts(&out, part) < 0)
			goto out;
	}
	if (out.len == 0 && atex_buf_putc(&out, '/') < 0)
		goto out;
	result = atex_buf_detach(&out);
out:
	atex_buf_free(&in);
	atex_buf_free(&out);
	return result;
}

int atex_file_read(char **out, size_t *len, const char *path)
{
	struct atex_buf b = ATEX_BUF_INIT;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return atex_error_set(ATEX_EIO, "%s: cannot open: %s", path,
				      strerror(errno));
	for (;;) {
		ssize_t n;

		if ((rc = atex_buf_grow(&b, 65536)) < 0)
			goto out;
		n = read(fd, b.ptr + b.len, b.cap - b.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = atex_error_set(ATEX_EIO, "%s: cannot read: %s",
					    path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	b.ptr[b.len] = '\0';
	if (len)
		*len = b.len;
	*out = atex_buf_detach(&b);
	if (!*out)
		rc = ATEX_ENOMEM;
out:
	close(fd);
	atex_buf_free(&b);
	return rc;
}
