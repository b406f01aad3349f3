/*
 * ingest.c - the part of ingesting a test that every aggregator shares
 * (ingest.h): names checked, ARTIFACTS/results read, ARTIFACTS/files/
 * placed under the files directory.
 *
 * How it is built, and why:
 *
 *  - The results file is read a line at a time (getline): a test may
 *    report thousands of results, and only the parsed records are kept.
 *    A line that does not parse, or is not a result, is not fatal: the
 *    test's other results are worth more than a strict reader, so the
 *    line becomes an "error" result whose note says which line and why
 *    (the log says PATH:LINE). A result without status is an "error"
 *    that says so, and keeps all it has.
 *  - Files are placed through directory descriptors (openat, linkat,
 *    mkdirat) and never through a path that could pass a symlink: the
 *    files tree is written by the test, and a symlink in it (or left in
 *    the files directory by an earlier ingest) must not make us write
 *    outside FILES_DIR/<platform>/<test name>/. Symlinks are copied as
 *    symlinks, never followed; names come from directory entries only,
 *    so "/" and ".." cannot appear in them.
 *  - A hard link costs nothing and keeps the mode; where one cannot be
 *    made (another filesystem, protected_hardlinks) the file is copied
 *    with its mode. The artifacts directory is only ever read: the caller
 *    removes it, and other aggregators may ingest it too.
 *  - An existing destination is replaced (the same test ingested again
 *    into the same files directory): a file or symlink is unlinked first,
 *    a non-directory where a directory must go is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <lzma.h>
#include <zlib.h>

#include "aggregator/ingest.h"
#include "atex/aggregator.h"

#define COMPONENT "aggregator"

/* ---- names ---- */

static bool utf8_ok(const char *s)
{
	json_t *v = json_string(s);

	json_decref(v);
	return v != NULL;
}

int atex_ingest_check_names(const char *platform, const char *test_name)
{
	const char *p;
	bool any = false;

	if (!platform || !*platform || strchr(platform, '/') ||
	    !strcmp(platform, ".") || !strcmp(platform, ".."))
		return atex_error_set(ATEX_EINVAL,
				      "bad platform name \"%s\": it must be "
				      "non-empty, without \"/\", not \".\" or "
				      "\"..\"",
				      platform ? platform : "(null)");
	if (!test_name || !*test_name)
		return atex_error_set(ATEX_EINVAL,
				      "platform %s: empty test name", platform);
	for (p = test_name; *p;) {
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return atex_error_set(
				ATEX_EINVAL,
				"bad test name \"%s\": a \".\" or "
				"\"..\" component",
				test_name);
		any = any || n > 0;
		p += n;
		if (*p)
			p++;
	}
	if (!any)
		return atex_error_set(ATEX_EINVAL,
				      "bad test name \"%s\": no name in it",
				      test_name);
	if (!utf8_ok(platform) || !utf8_ok(test_name))
		return atex_error_set(ATEX_EINVAL,
				      "platform or test name is not UTF-8: "
				      "%s %s",
				      platform, test_name);
	return 0;
}

/* ---- the results file ---- */

static void ingest_clear(struct atex_ingest *in)
{
	for (size_t i = 0; i < in->n; i++)
		json_decref(in->results[i].obj);
	free(in->results);
	in->results = NULL;
	in->n = 0;
	atex_ingest_attempt_release(&in->attempt);
}

void atex_ingest_release(struct atex_ingest *in)
{
	if (in)
		ingest_clear(in);
}

/* Why `obj` is not a result, or NULL when it is one. */
static const char *result_problem(json_t *obj)
{
	json_t *v, *file;
	size_t i;

	if (!json_is_object(obj))
		return "not a JSON object";
	v = json_object_get(obj, "status");
	if (v && !json_is_null(v) && !json_is_string(v))
		return "\"status\" is not a string";
	v = json_object_get(obj, "name");
	if (v && !json_is_null(v) && !json_is_string(v))
		return "\"name\" is not a string";
	v = json_object_get(obj, "note");
	if (v && !json_is_null(v) && !json_is_string(v))
		return "\"note\" is not a string";
	v = json_object_get(obj, "files");
	if (v && !json_is_null(v) && !json_is_array(v))
		return "\"files\" is not an array";
	json_array_foreach(v, i, file)
	{
		if (!json_is_string(file))
			return "\"files\" holds a non-string";
	}
	return NULL;
}

/* Takes `obj` (a checked result) into `in`; `files` always an array. */
static int push_result(struct atex_ingest *in, size_t *cap, json_t *obj)
{
	struct atex_ingest_result *r;
	json_t *files = json_object_get(obj, "files");

	if (!json_is_array(files)) {
		files = json_array();
		if (!files || json_object_set_new(obj, "files", files) < 0) {
			json_decref(obj);
			return atex_error_oom();
		}
	}
	if (in->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		void *p = realloc(in->results, ncap * sizeof(*in->results));

		if (!p) {
			json_decref(obj);
			return atex_error_oom();
		}
		in->results = p;
		*cap = ncap;
	}
	r = &in->results[in->n++];
	r->obj = obj;
	r->status = json_string_value(json_object_get(obj, "status"));
	r->name = json_string_value(json_object_get(obj, "name"));
	r->note = json_string_value(json_object_get(obj, "note"));
	r->files = files;
	return 0;
}

/* An "error" result for the test itself (name NULL) or a subtest. */
static int push_error(struct atex_ingest *in, size_t *cap, const char *name,
		      const char *note)
{
	json_t *obj = json_pack("{s:s, s:s}", "status", "error", "note", note);

	if (!obj)
		return atex_error_oom();
	if (name && json_object_set_new(obj, "name", json_string(name)) < 0) {
		json_decref(obj);
		return atex_error_oom();
	}
	return push_result(in, cap, obj);
}

/* A result without a status is an "error" that says so, everything else
 * of it kept (docs/PROTOCOL.md section 2: the executor, `atex test` and
 * `atex run` all read it so). */
static int no_status(json_t *obj)
{
	const char *note = json_string_value(json_object_get(obj, "note"));
	char *text = note && *note ? atex_sprintf("the result has no status: "
						  "%s",
						  note)
				   : atex_strdup("the result has no status");
	int rc = 0;

	if (!text || json_object_set_new(obj, "note", json_string(text)) < 0 ||
	    json_object_set_new(obj, "status", json_string("error")) < 0)
		rc = atex_error_oom();
	free(text);
	return rc;
}

/* One line of the results file (without its newline). */
static int read_line(struct atex_ingest *in, size_t *cap, const char *path,
		     size_t lineno, const char *text, size_t len, bool strict)
{
	json_error_t jerr;
	json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *why = obj ? result_problem(obj) : jerr.text;
	const char *name;
	char *note;
	int rc;

	if (why && strict) {
		rc = atex_error_set(ATEX_EFORMAT, "%s:%zu: not a result: %s",
				    path, lineno, why);
		json_decref(obj);
		return rc;
	}
	if (!why && !strict &&
	    !json_is_string(json_object_get(obj, "status")) &&
	    (rc = no_status(obj))) {
		json_decref(obj);
		return rc;
	}
	if (!why)
		return push_result(in, cap, obj);
	atex_log(ATEX_LOG_WARNING, COMPONENT,
		 "%s:%zu: not a result (%s); recorded as an error result", path,
		 lineno, why);
	/* A result that names its subtest keeps the name, so the error is
	 * where the result would have been. The note names the line, not
	 * the path: the artifacts directory may be a temporary one. */
	name = json_string_value(json_object_get(obj, "name"));
	note = atex_sprintf("line %zu of the test's results: malformed "
			    "result: %s",
			    lineno, why);
	rc = note ? push_error(in, cap, name, note) : ATEX_ENOMEM;
	free(note);
	json_decref(obj);
	return rc;
}

/* Below this many free bytes, the file system of a test's artifacts is
 * taken as full when the test has no results. */
#define FULL_BELOW (256 * 1024)

/* The "error" result for a test without results. A full disk under the
 * artifacts is the likelier cause than a test that never reported (the
 * executor always writes at least its fallback result): say so rather
 * than blame the test. */
static int push_no_results(struct atex_ingest *in, size_t *cap,
			   const char *artifacts_dir)
{
	struct statvfs vfs;
	char *note;
	int rc;

	if (statvfs(artifacts_dir, &vfs) < 0 ||
	    (unsigned long long)vfs.f_bavail * vfs.f_frsize >= FULL_BELOW)
		return push_error(in, cap, NULL,
				  "no results (the test never reported)");
	note = atex_sprintf("no results: they could not be stored, no space "
			    "left on device (%s)",
			    artifacts_dir);
	if (!note)
		return atex_error_oom();
	atex_log(ATEX_LOG_WARNING, COMPONENT, "%s on %s: %s", in->test,
		 in->platform, note);
	rc = push_error(in, cap, NULL, note);
	free(note);
	return rc;
}

static int read_results(struct atex_ingest *in, const char *artifacts_dir,
			bool strict)
{
	char *path = atex_path_join(artifacts_dir, "results");
	char *line = NULL;
	size_t cap = 0, linecap = 0, lineno = 0;
	ssize_t len;
	FILE *f = NULL;
	int rc = 0;

	if (!path)
		return ATEX_ENOMEM;
	f = fopen(path, "re");
	if (!f && errno == ENOENT && strict) {
		rc = atex_error_set(ATEX_ENOTFOUND, "%s does not exist", path);
		goto out;
	}
	if (!f && errno == ENOENT) {
		rc = push_no_results(in, &cap, artifacts_dir);
		goto out;
	}
	if (!f) {
		rc = atex_error_set(ATEX_EIO, "%s: cannot open: %s", path,
				    strerror(errno));
		goto out;
	}
	while (!rc && (len = getline(&line, &linecap, f)) >= 0) {
		lineno++;
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (strspn(line, " \t") >= (size_t)len)
			continue;
		rc = read_line(in, &cap, path, lineno, line, (size_t)len,
			       strict);
	}
	if (!rc && ferror(f))
		rc = atex_error_set(ATEX_EIO, "%s: cannot read: %s", path,
				    strerror(errno));
	/* A test that reported nothing at all is no different from one that
	 * never started, as far as its results go. */
	if (!rc && in->n == 0 && !strict)
		rc = push_no_results(in, &cap, artifacts_dir);
out:
	if (f)
		fclose(f);
	free(line);
	free(path);
	return rc;
}

/* The files could not be placed (a name longer than the file system
 * allows, a full disk...): the results are still written, with one more
 * for the test itself that says why, so that the loss is seen and the run
 * does not pass. */
static int files_failed(struct atex_ingest *in)
{
	size_t cap = in->n; /* full: the next push grows the array */
	char *note = atex_sprintf("the test's files could not be stored: %s",
				  atex_error_last());
	int rc;

	if (!note)
		return ATEX_ENOMEM;
	atex_log(ATEX_LOG_WARNING, COMPONENT, "%s on %s: %s", in->test,
		 in->platform, note);
	rc = push_error(in, &cap, NULL, note);
	free(note);
	return rc;
}

int atex_ingest_prepare(struct atex_ingest *in, const char *files_dir,
			const char *platform, const char *test_name,
			const char *artifacts_dir)
{
	return atex_ingest_prepare_flags(in, files_dir, platform, test_name,
					 artifacts_dir, 0, NULL);
}

bool atex_ingest_dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return true;
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

static int ingest_files(const char *files_dir, const char *platform,
			const char *test_name, const char *artifacts_dir,
			const struct atex_ingest_compress *cz);

/* Whether ARTIFACTS/files has anything to place (strict mode). */
static bool has_files(const char *artifacts_dir)
{
	char *path = atex_path_join(artifacts_dir, "files");
	bool any = path && !atex_ingest_dir_empty(path);

	free(path);
	return any;
}

int atex_ingest_prepare_flags(struct atex_ingest *in, const char *files_dir,
			      const char *platform, const char *test_name,
			      const char *artifacts_dir, unsigned int flags,
			      const struct atex_ingest_compress *cz)
{
	bool strict = flags & ATEX_INGEST_STRICT;
	int rc = atex_ingest_check_names(platform, test_name);

	*in = (struct atex_ingest)ATEX_INGEST_INIT;
	if (rc < 0)
		return rc;
	if (!artifacts_dir)
		return atex_error_set(ATEX_EINVAL,
				      "%s on %s: no artifacts "
				      "directory",
				      test_name, platform);
	in->platform = platform;
	in->test = test_name;
	rc = read_results(in, artifacts_dir, strict);
	/* Its values or unknowns: only memory can fail the ingest. */
	if (!rc && atex_ingest_read_attempt(&in->attempt, artifacts_dir) ==
			   ATEX_ENOMEM)
		rc = atex_error_oom();
	if (!rc && files_dir && (!strict || has_files(artifacts_dir)))
		rc = ingest_files(files_dir, platform, test_name, artifacts_dir,
				  cz);
	if (rc < 0 && rc != ATEX_ENOMEM && in->n && !strict)
		rc = files_failed(in);
	if (rc < 0)
		ingest_clear(in);
	return rc;
}

/* ---- files ---- */

/* ATEX_EIO for a failed system call on dir/name; uses errno. */
static int sys_error(const char *what, const char *dir, const char *name)
{
	int err = errno;

	return atex_error_set(ATEX_EIO, "%s%s%s: %s: %s", dir, name ? "/" : "",
			      name ? name : "", what, strerror(err));
}

int atex_ingest_check_absent(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return atex_error_set(ATEX_EEXISTS, "%s already exists", path);
	if (errno != ENOENT)
		return atex_error_set(ATEX_EIO, "%s: %s", path,
				      strerror(errno));
	return 0;
}

int atex_ingest_mkdirs(const char *path)
{
	char *copy;
	int rc = 0;

	if (!*path)
		return atex_error_set(ATEX_EIO, "empty directory name");
	copy = atex_strdup(path);
	if (!copy)
		return ATEX_ENOMEM;
	for (char *p = copy + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			rc = sys_error("cannot create directory", copy, NULL);
			break;
		}
		*p = c;
		if (!c)
			break;
	}
	if (!rc && !atex_path_is_dir(path))
		rc = atex_error_set(ATEX_EIO, "%s: not a directory", path);
	free(copy);
	return rc;
}

/*
 * Opens the directory `name` under `dirfd`, creating it (with `mode`) when
 * missing. With `replace`, a non-directory there is removed first;
 * otherwise it is an error (a symlink is never followed). `shown` is the
 * parent's path for messages.
 */
static int open_dir_at(int *out, int dirfd, const char *name, mode_t mode,
		       bool replace, const char *shown)
{
	int fd;

	for (int tries = 0;; tries++) {
		if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
			return sys_error("cannot create directory", shown,
					 name);
		fd = openat(dirfd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			break;
		if ((errno != ENOTDIR && errno != ELOOP) || !replace ||
		    tries > 0)
			return sys_error("refusing to write into it (not a "
					 "directory)",
					 shown, name);
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return sys_error("cannot replace", shown, name);
	}
	*out = fd;
	return 0;
}

static int copy_data(int in, int out, const char *shown, const char *name)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sys_error("cannot read", shown, name);
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return sys_error("cannot write", shown, name);
			off += w;
		}
	}
}

/* Copies the regular file `name` with its mode; `dst` has no `name`. */
static int copy_file(int src, int dst, const char *name, mode_t mode,
		     const char *src_shown, const char *dst_shown)
{
	int in = -1, out = -1, rc;

	in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return sys_error("cannot open", src_shown, name);
	out = openat(dst, name,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     mode & 07777);
	if (out < 0) {
		rc = sys_error("cannot create", dst_shown, name);
		goto out;
	}
	rc = copy_data(in, out, src_shown, name);
	/* The umask took bits off at creation; the artifact's mode wins. */
	if (!rc && fchmod(out, mode & 07777) < 0)
		rc = sys_error("cannot change the mode of", dst_shown, name);
out:
	if (out >= 0 && close(out) < 0 && !rc)
		rc = sys_error("cannot write", dst_shown, name);
	close(in);
	return rc;
}

/* Removes a file or symlink at dst/name (a directory there stays, and
 * the caller's next step fails naming it). */
static int clear_name(int dst, const char *name, const char *dst_shown)
{
	if (unlinkat(dst, name, 0) == 0 || errno == ENOENT)
		return 0;
	return sys_error("cannot replace", dst_shown, name);
}

static int place_file(int src, int dst, const char *name, mode_t mode,
		      const char *src_shown, const char *dst_shown)
{
	int rc;

	if (linkat(src, name, dst, name, 0) == 0)
		return 0;
	if (errno == EEXIST) {
		rc = clear_name(dst, name, dst_shown);
		if (rc)
			return rc;
		if (linkat(src, name, dst, name, 0) == 0)
			return 0;
	}
	if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
	    errno != EOPNOTSUPP && errno != EACCES)
		return sys_error("cannot link", dst_shown, name);
	rc = clear_name(dst, name, dst_shown);
	return rc ? rc : copy_file(src, dst, name, mode, src_shown, dst_shown);
}

static int place_symlink(int src, int dst, const char *name,
			 const char *src_shown, const char *dst_shown)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(src, name, target, sizeof(target) - 1);
	int rc;

	if (n < 0)
		return sys_error("cannot read the symlink", src_shown, name);
	target[n] = '\0';
	rc = clear_name(dst, name, dst_shown);
	if (!rc && symlinkat(target, dst, name) < 0)
		rc = sys_error("cannot create the symlink", dst_shown, name);
	return rc;
}

/* ---- compressed files (struct atex_ingest_compress) ---- */

bool atex_ingest_excluded(const struct atex_ingest_compress *cz,
			  const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (const char *const *e = cz->exclude; e && *e; e++)
		if (!strcmp(*e, base))
			return true;
	return false;
}

static int write_all(int fd, const uint8_t *p, size_t n, const char *shown,
		     const char *name)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return sys_error("cannot write", shown, name);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One step of gzip or xz: `in_len` bytes of `in` (finish: the end),
 * output into `out` (`*out_len` its room, then what was produced).
 * Returns 1 at the stream's end, 0 to go on, or an error. */
static int compress_step(bool gz, z_stream *z, lzma_stream *x,
			 const uint8_t *in, size_t *in_len, uint8_t *out,
			 size_t *out_len, bool finish)
{
	int ret;

	if (gz) {
		z->next_in = (Bytef *)in;
		z->avail_in = (uInt)*in_len;
		z->next_out = out;
		z->avail_out = (uInt)*out_len;
		ret = deflate(z, finish ? Z_FINISH : Z_NO_FLUSH);
		*in_len = z->avail_in;
		*out_len -= z->avail_out;
		if (ret == Z_STREAM_ERROR)
			return atex_error_set(ATEX_EIO, "zlib stream error");
		return ret == Z_STREAM_END;
	}
	x->next_in = in;
	x->avail_in = *in_len;
	x->next_out = out;
	x->avail_out = *out_len;
	ret = lzma_code(x, finish ? LZMA_FINISH : LZMA_RUN);
	*in_len = x->avail_in;
	*out_len -= x->avail_out;
	if (ret == LZMA_MEM_ERROR)
		return atex_error_oom();
	if (ret != LZMA_OK && ret != LZMA_STREAM_END)
		return atex_error_set(ATEX_EIO, "liblzma error %d", ret);
	return ret == LZMA_STREAM_END;
}

#define CZ_BUF 65536

/* Streams `in` through gzip or xz into `out`. */
static int compress_data(int in, int out, const struct atex_ingest_compress *cz,
			 const char *src_shown, const char *name,
			 const char *dst_shown, const char *dst_name)
{
	bool gz = cz->compression == ATEX_COMPRESSION_GZIP;
	z_stream z = {0};
	lzma_stream x = LZMA_STREAM_INIT;
	uint8_t *ib = malloc(CZ_BUF), *ob = malloc(CZ_BUF);
	int rc = 0, end = 0;
	bool ready;

	ready = gz ? deflateInit2(
			     &z,
			     cz->level ? (int)cz->level : Z_DEFAULT_COMPRESSION,
			     Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK
		   : lzma_easy_encoder(&x, cz->level ? cz->level : 1,
				       LZMA_CHECK_CRC64) == LZMA_OK;
	if (!ib || !ob || !ready) {
		rc = atex_error_oom();
		goto out;
	}
	while (!rc && !end) {
		ssize_t n = read(in, ib, CZ_BUF);
		size_t left;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = sys_error("cannot read", src_shown, name);
			break;
		}
		left = (size_t)n;
		/* Until the input is taken (and, at its end, the stream
		 * is finished). */
		do {
			size_t produced = CZ_BUF;

			end = compress_step(gz, &z, &x, ib + (n - left), &left,
					    ob, &produced, n == 0);
			if (end < 0) {
				rc = atex_error_prefix("%s/%s", dst_shown,
						       dst_name);
				break;
			}
			rc = write_all(out, ob, produced, dst_shown, dst_name);
		} while (!rc && (left || (n == 0 && !end)));
	}
out:
	if (ready && gz)
		deflateEnd(&z);
	else if (ready)
		lzma_end(&x);
	free(ib);
	free(ob);
	return rc;
}

/* Writes the regular file `name` compressed as name + suffix, with the
 * artifact's mode (an existing file there replaced). */
static int compress_file(int src, int dst, const char *name, mode_t mode,
			 const char *src_shown, const char *dst_shown,
			 const struct atex_ingest_compress *cz)
{
	char *dst_name = atex_sprintf("%s%s", name, cz->suffix);
	int in = -1, out = -1, rc;

	if (!dst_name)
		return atex_error_oom();
	rc = clear_name(dst, dst_name, dst_shown);
	if (rc)
		goto out;
	in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) {
		rc = sys_error("cannot open", src_shown, name);
		goto out;
	}
	out = openat(dst, dst_name,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     mode & 07777);
	if (out < 0) {
		rc = sys_error("cannot create", dst_shown, dst_name);
		goto out;
	}
	rc = compress_data(in, out, cz, src_shown, name, dst_shown, dst_name);
	if (!rc && fchmod(out, mode & 07777) < 0)
		rc = sys_error("cannot change the mode of", dst_shown,
			       dst_name);
out:
	if (out >= 0 && close(out) < 0 && !rc)
		rc = sys_error("cannot write", dst_shown, dst_name);
	if (in >= 0)
		close(in);
	free(dst_name);
	return rc;
}

static int copy_tree(int src, int dst, const char *src_shown,
		     const char *dst_shown,
		     const struct atex_ingest_compress *cz);

static int place_dir(int src, int dst, const char *name, mode_t mode,
		     const char *src_shown, const char *dst_shown,
		     const struct atex_ingest_compress *cz)
{
	char *sub_src_shown = atex_path_join(src_shown, name);
	char *sub_dst_shown = atex_path_join(dst_shown, name);
	int sub_src = -1, sub_dst = -1, rc;

	if (!sub_src_shown || !sub_dst_shown) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	sub_src = openat(src, name,
			 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub_src < 0) {
		rc = sys_error("cannot open", src_shown, name);
		goto out;
	}
	/* Writable by us whatever the artifact's mode: we fill it. */
	rc = open_dir_at(&sub_dst, dst, name, (mode & 07777) | 0700, true,
			 dst_shown);
	if (!rc)
		rc = copy_tree(sub_src, sub_dst, sub_src_shown, sub_dst_shown,
			       cz);
out:
	if (sub_dst >= 0)
		close(sub_dst);
	if (sub_src >= 0)
		close(sub_src);
	free(sub_src_shown);
	free(sub_dst_shown);
	return rc;
}

/* Copies the entries of the open directory `src` into `dst`. */
static int copy_tree(int src, int dst, const char *src_shown,
		     const char *dst_shown,
		     const struct atex_ingest_compress *cz)
{
	int fd = dup(src), rc = 0;
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return sys_error("cannot read", src_shown, NULL);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return sys_error("cannot read", src_shown, NULL);
	}
	while (!rc && (errno = 0, e = readdir(d))) {
		const char *name = e->d_name;
		struct stat st;

		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			rc = sys_error("cannot stat", src_shown, name);
		else if (S_ISDIR(st.st_mode))
			rc = place_dir(src, dst, name, st.st_mode, src_shown,
				       dst_shown, cz);
		else if (S_ISREG(st.st_mode) && cz &&
			 !atex_ingest_excluded(cz, name))
			rc = compress_file(src, dst, name, st.st_mode,
					   src_shown, dst_shown, cz);
		else if (S_ISREG(st.st_mode))
			rc = place_file(src, dst, name, st.st_mode, src_shown,
					dst_shown);
		else if (S_ISLNK(st.st_mode))
			rc = place_symlink(src, dst, name, src_shown,
					   dst_shown);
		else
			atex_log(ATEX_LOG_WARNING, COMPONENT,
				 "%s/%s: not a file, directory or symlink; "
				 "not kept",
				 src_shown, name);
	}
	if (!rc && errno)
		rc = sys_error("cannot read", src_shown, NULL);
	closedir(d);
	return rc;
}

/* Opens FILES_DIR/<platform>/<test name> component by component, creating
 * what is missing and following no symlink. */
static int open_destination(int *out, const char *files_dir,
			    const char *platform, const char *test_name)
{
	struct atex_buf shown = ATEX_BUF_INIT;
	int fd, next, rc = 0;
	const char *p = test_name;

	fd = open(files_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sys_error("cannot open", files_dir, NULL);
	rc = atex_buf_puts(&shown, files_dir);
	if (!rc)
		rc = open_dir_at(&next, fd, platform, 0755, false, files_dir);
	if (!rc) {
		close(fd);
		fd = next;
		rc = atex_buf_printf(&shown, "/%s", platform);
	}
	while (!rc && *p) {
		size_t n = strcspn(p, "/");
		char *name = n ? atex_strndup(p, n) : NULL;

		p += n + (p[n] ? 1 : 0);
		if (!n)
			continue;
		rc = name ? open_dir_at(&next, fd, name, 0755, false,
					atex_buf_cstr(&shown))
			  : ATEX_ENOMEM;
		if (!rc) {
			close(fd);
			fd = next;
			rc = atex_buf_printf(&shown, "/%s", name);
		}
		free(name);
	}
	atex_buf_free(&shown);
	if (rc) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int atex_ingest_files(const char *files_dir, const char *platform,
		      const char *test_name, const char *artifacts_dir)
{
	return ingest_files(files_dir, platform, test_name, artifacts_dir,
			    NULL);
}

static int ingest_files(const char *files_dir, const char *platform,
			const char *test_name, const char *artifacts_dir,
			const struct atex_ingest_compress *cz)
{
	char *src_shown = atex_path_join(artifacts_dir, "files");
	char *dst_shown = NULL;
	int src = -1, dst = -1, rc = 0;

	if (!src_shown)
		return ATEX_ENOMEM;
	src = open(src_shown, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0 && errno == ENOENT)
		goto out; /* nothing uploaded */
	if (src < 0) {
		rc = sys_error("cannot open", src_shown, NULL);
		goto out;
	}
	dst_shown = atex_sprintf("%s/%s/%s", files_dir, platform,
				 test_name + strspn(test_name, "/"));
	if (!dst_shown) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	rc = open_destination(&dst, files_dir, platform, test_name);
	if (!rc)
		rc = copy_tree(src, dst, src_shown, dst_shown, cz);
out:
	if (dst >= 0)
		close(dst);
	if (src >= 0)
		close(src);
	free(dst_shown);
	free(src_shown);
	return rc;
}

/* ---- output ---- */

/*
 * Opens `path` for a new run, emptied. A symlink there is removed, never
 * followed, and so is a file with other hard links: a results directory
 * may be shared (/tmp), and whoever planted the link must not get the
 * file it points to truncated and written by us. A regular file of our
 * own is truncated in place; a FIFO being read or a device is written as
 * it is, a FIFO nobody reads (it would block the run) is replaced.
 */
int atex_ingest_open_output(int *out, const char *path)
{
	const int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC;
	struct stat st;
	int fd = -1;

	for (int tries = 0; tries < 3; tries++) {
		/* O_NONBLOCK: a FIFO nobody reads would block the open
		 * for ever (ENXIO instead, and it is replaced). */
		fd = open(path, flags | O_CREAT | O_NONBLOCK, 0644);
		if (fd < 0 && errno != ELOOP && errno != ENXIO)
			break;
		if (fd >= 0 && fcntl(fd, F_SETFL, flags & ~O_CLOEXEC) < 0) {
			close(fd);
			fd = -1;
			break;
		}
		if (fd >= 0 && fstat(fd, &st) < 0) {
			close(fd);
			fd = -1;
			break;
		}
		if (fd >= 0 && (!S_ISREG(st.st_mode) || st.st_nlink <= 1)) {
			if (S_ISREG(st.st_mode) && ftruncate(fd, 0) < 0) {
				close(fd);
				fd = -1;
				break;
			}
			*out = fd;
			return 0;
		}
		if (fd >= 0)
			close(fd);
		fd = -1;
		/* A symlink, a FIFO nobody reads, or a hard link to some
		 * other file: gone, and a file of our own made in its
		 * place. */
		if (unlink(path) < 0 && errno != ENOENT)
			break;
		fd = open(path, flags | O_CREAT | O_EXCL, 0644);
		if (fd >= 0) {
			*out = fd;
			return 0;
		}
		if (errno != EEXIST)
			break;
	}
	return atex_error_set(ATEX_EIO, "%s: cannot create: %s", path,
			      errno == ELOOP || errno == EEXIST
				      ? "a symlink or hard link keeps coming "
					"back"
				      : strerror(errno));
}

int atex_ingest_write(int fd, const void *data, size_t len, off_t *size,
		      const char *path)
{
	const char *p = data;
	size_t left = len;
	int err;

	while (left > 0) {
		ssize_t n = write(fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		p += n;
		left -= (size_t)n;
	}
	*size += (off_t)len;
	return 0;
fail:
	err = errno;
	/* Nothing of this ingest stays: a reader sees whole ingests only. */
	if (ftruncate(fd, *size) < 0)
		atex_log(ATEX_LOG_ERROR, COMPONENT,
			 "%s: cannot cut back a failed write: %s", path,
			 strerror(errno));
	return atex_error_set(ATEX_EIO, "%s: cannot write: %s", path,
			      strerror(err));
}

double atex_ingest_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
