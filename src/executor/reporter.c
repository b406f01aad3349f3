/*
 * reporter.c - turns what one test reports into its artifacts directory
 * (reporter.h, docs/PROTOCOL.md sections 2 and 3).
 *
 * How it is built, and why:
 *
 *  - A result line is written whole, with a single write() on an O_APPEND
 *    descriptor, the moment the result closes. Whoever follows the file
 *    (an aggregator, a person after a crash) only ever sees whole lines,
 *    and what was closed survives the executor dying.
 *  - File contents go to disk as they arrive and are never held in memory;
 *    the only things kept are the JSON of the results still open
 *    (partial), in a hash by name, and the set of file names: both
 *    counted against a per-test bound (weight(), below), so a test that
 *    re-sends a growing partial result cannot grow the executor without
 *    end.
 *  - A killed test's own closed results are the one thing changed after
 *    they were written: at finish the file is rewritten beside itself and
 *    renamed over (rewrite_own), so it is whole at every moment.
 *  - In memory, a result's "files" is a plain array of names from the
 *    start (the lengths are the control parser's business). Merging a
 *    partial result is then the generic merge of the protocol, arrays
 *    appending, and a line lists each name once, sorted, when written.
 *  - A result counts at result_end, not at result_begin: a result whose
 *    files did not all arrive (the channel broke, the test was killed) is
 *    not reported. Its bytes stay on disk, unlisted; the fallback or the
 *    channel error result says what happened.
 *  - The testout copies are made at finish, not when their result closes:
 *    a testout is the whole output of the test, also what was written
 *    after the result closed. A copy, not a hard link, because nothing
 *    guarantees the raw output is never appended to again (a process the
 *    test left behind may still hold it open). The copy replaces what is
 *    at its path: a file another result uploaded there loses to it.
 *  - Names have been checked by the control parser already (control.h);
 *    they are checked once more, cheaply, because this is the code that
 *    creates files, and the API can be driven without the parser.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "executor/reporter.h"
#include "fmf/yaml.h"
#include "util/util.h"

#define COMPONENT "reporter"

/* The fallback's testout, named as in tmt. */
#define DEFAULT_TESTOUT "output.txt"

/* Bytes set aside for the results file (result lines) at its creation. */
#define RESULTS_RESERVE (256 * 1024)

/* How much of a name or path a message shows: a whole path, normally. */
#define SHOWN_MAX 4096

/* The key of the test's own open result in `open`: no name is empty. */
#define SELF_KEY ""

/* The key by which tmt-report-result (and its aliases) marks its results:
 * the reporter takes it away, counting the result as such a call. */
#define REPORTED_KEY "atex-tmt-report-result"

/* The default of atex_reporter_set_memory_limit. */
#define DEFAULT_MEMORY_LIMIT ((size_t)64 * 1024 * 1024)

struct atex_reporter {
	char *files_dir;
	char *results_path;
	char *output_path;
	int results_fd;

	/* The results still open ("partial": true), waiting for more of
	 * their name: name (SELF_KEY for the test itself) -> the result as
	 * merged so far (no "partial", "files" plain names). A jansson
	 * object is a hash table that keeps insertion order: found in
	 * constant time, closed in the order first seen. */
	json_t *open;
	/* What the test makes us hold: open results and the names of its
	 * files, in weight() units (about bytes), and its bound. */
	size_t held;
	size_t limit;

	/* The result whose files are arriving, between result_begin and
	 * result_end (NULL otherwise); cur_paths[i] is where file i goes,
	 * cur_fd is open on cur_paths[cur_fd_index]. */
	json_t *cur;
	bool cur_partial;
	char **cur_paths;
	size_t cur_npaths;
	size_t cur_fd_index;
	int cur_fd;
	/* Its "data/..." files for the test itself that no result had
	 * uploaded before (drop_data_copies), or NULL. */
	json_t *cur_fresh;

	/* Paths under files/, as JSON objects used as sets (ordered): every
	 * file a result named, and every target of a closed result's
	 * testout. */
	json_t *uploaded;
	json_t *testouts;
	/* The directories under files/ that hold those files: path -> the
	 * result that first needed it ("" for the test itself). uploaded's
	 * values are the same owners. Both say when a result's file would
	 * land on another's (clash). */
	json_t *dirs;

	size_t count;
	bool failing;	  /* a result written was fail, warn or error */
	bool self_closed; /* a result for the test itself has been closed */
	bool finished;
	bool compat; /* atex_reporter_set_compat_python_atex */

	/* The test's `result` key, and what settles its own result: the
	 * worst status of its tmt-report-result calls (NULL: none), and in
	 * custom mode what its results file says of the test itself. */
	enum atex_result_interpret interpret;
	const char *reported;
	bool cur_reported; /* the result arriving came from such a call */
	char *custom_status;
	char *custom_note;
};

/* ---- small helpers ---- */

/* `s` fit for a one-line message: control bytes become '?', and a long
 * text is cut. A test chooses the names, and may choose them to mislead. */
static const char *shown(char buf[SHOWN_MAX], const char *s)
{
	size_t i;

	for (i = 0; s[i] && i < SHOWN_MAX - 4; i++)
		buf[i] =
			(unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* ATEX_EIO for a failed system call on `path`; uses errno. */
static int sys_error(const char *what, const char *path)
{
	int err = errno;
	char buf[SHOWN_MAX];

	return atex_error_set(ATEX_EIO, "%s: %s: %s", shown(buf, path), what,
			      strerror(err));
}

/* Keeps the first error of a sequence that goes on after failures. */
static void keep(int *rc, int next)
{
	if (*rc == 0)
		*rc = next;
}

/* json_object_set_new, with its failure (which frees `value`, and which a
 * NULL `value` from a failed allocation also causes) recorded. */
static int set_new(json_t *obj, const char *key, json_t *value)
{
	if (json_object_set_new_nocheck(obj, key, value) < 0)
		return atex_error_oom();
	return 0;
}

static int set(json_t *obj, const char *key, json_t *value)
{
	if (json_object_set_nocheck(obj, key, value) < 0)
		return atex_error_oom();
	return 0;
}

/* A JSON string for text the executor wrote (a note), which jansson
 * refuses when it is not UTF-8: such bytes then become '?'. */
static json_t *text_value(const char *s)
{
	json_t *value = json_string(s);
	char *copy;

	if (value)
		return value;
	copy = atex_strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	value = json_string(copy);
	free(copy);
	return value;
}

/* A relative name that stays where it is put: not empty, not absolute,
 * no empty, "." or ".." component. */
static bool name_ok(const char *s)
{
	const char *p = s;

	if (!*s || *s == '/')
		return false;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

/* The result's name, NULL for the test itself. */
static const char *result_name(json_t *result)
{
	return json_string_value(json_object_get(result, "name"));
}

/* `file` of the result `name`, relative to files/. */
static char *relative_path(const char *name, const char *file)
{
	return name ? atex_sprintf("%s/%s", name, file) : atex_strdup(file);
}

/* Whether the array of names `files` holds `s`. */
static bool has_name(json_t *files, const char *s)
{
	json_t *file;
	size_t i;

	json_array_foreach(files, i, file)
	{
		if (json_is_string(file) && !strcmp(json_string_value(file), s))
			return true;
	}
	return false;
}

/* ---- what a test makes us hold ---- */

static size_t weight(json_t *v);

static size_t entry_weight(const char *key, json_t *value)
{
	return 80 + strlen(key) + weight(value);
}

/*
 * About what jansson allocates for `v`, in bytes: what a test makes the
 * executor hold is counted in these units. Any fixed function would do
 * for a bound; this one follows jansson's structures (a value's struct
 * with malloc's overhead, a string's bytes, an array slot, an object
 * entry with its key), so that the bound is near the memory really used:
 * an array of small numbers costs about 50 bytes per 2 bytes of text.
 * Depth is bounded by the JSON parser (2048).
 */
static size_t weight(json_t *v)
{
	const char *key;
	json_t *value;
	size_t i, w;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		w = 64;
		json_object_foreach(v, key, value)
		{
			w += entry_weight(key, value);
		}
		return w;
	case JSON_ARRAY:
		w = 48;
		json_array_foreach(v, i, value)
		{
			w += 16 + weight(value);
		}
		return w;
	case JSON_STRING:
		return 48 + json_string_length(v);
	default:
		return 32;
	}
}

/* What a merge added and took away, in weight() units. */
struct delta {
	size_t add, sub;
};

static void hold(atex_reporter *r, size_t add, size_t sub)
{
	r->held += add;
	r->held = r->held > sub ? r->held - sub : 0;
}

static int check_limit(atex_reporter *r)
{
	if (r->held <= r->limit)
		return 0;
	return atex_error_set(ATEX_EFORMAT,
			      "the test holds more than %zu bytes of open "
			      "partial results and file names in the "
			      "executor's memory (its memory limit)",
			      r->limit);
}

/* ---- directories and files ---- */

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) == 0)
		return 0;
	if (errno == EEXIST) {
		if (atex_path_is_dir(path))
			return 0;
		/* A file where a directory must go: "a", then "a/b". */
		errno = ENOTDIR;
	}
	return sys_error("cannot create directory", path);
}

/* Creates the missing parents of `path`, looking for them from byte
 * `from` on: what comes before is known to exist. */
static int make_parents(char *path, size_t from)
{
	int rc = 0;

	for (char *p = path + from; *p && !rc; p++) {
		if (*p != '/' || p == path)
			continue;
		*p = '\0';
		rc = make_dir(path);
		*p = '/';
	}
	return rc;
}

static int write_all(int fd, const void *data, size_t len, const char *path)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sys_error("cannot write", path);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The test's own files, which its subtests' files must not land on nor
 * under: some arrive only at its end (output.txt, data/ from
 * TMT_TEST_DATA, BeakerLib's), after a subtest could have taken the
 * place. */
static const char *const own_names[] = {
	DEFAULT_TESTOUT, "data",	"packages.txt",		 "journal.txt",
	"journal.xml",	 "TestResults", "beakerlib-install.txt",
};

/* Whether `rel` is `top` or under it. */
static bool at_or_under(const char *rel, const char *top, size_t n)
{
	return !strncmp(rel, top, n) && (!rel[n] || rel[n] == '/');
}

/* Who owns what: a result's name, the test itself for "". */
static char *owner_text(const char *owner)
{
	char buf[SHOWN_MAX];

	return *owner ? atex_sprintf("result '%s'", shown(buf, owner))
		      : atex_strdup("the test itself");
}

/*
 * Whether the file `rel` (under files/) of the result `name` (NULL: the
 * test itself) would land on another result's file, or on the test's own
 * (own_names): NULL when not, else why (allocated). Two results' files
 * share a directory freely; a file is never another's file, nor a
 * directory of another's files, nor under one.
 */
static char *clash(atex_reporter *r, const char *name, const char *rel)
{
	const char *owner = name ? name : "", *other;
	char buf[SHOWN_MAX], *who, *why;
	size_t n = strlen(rel);

	for (size_t i = 0; name && i < ATEX_ARRAY_SIZE(own_names); i++)
		if (at_or_under(rel, own_names[i], strlen(own_names[i])))
			return atex_sprintf("files/%s would land on the "
					    "test's own '%s'",
					    shown(buf, rel), own_names[i]);
	other = json_string_value(json_object_get(r->uploaded, rel));
	if (!other || !strcmp(other, owner))
		other = json_string_value(json_object_get(r->dirs, rel));
	for (size_t i = 1; !other && i < n; i++) {
		char *prefix;

		if (rel[i] != '/')
			continue;
		prefix = atex_strndup(rel, i);
		if (!prefix)
			return NULL;
		other = json_string_value(json_object_get(r->uploaded, prefix));
		free(prefix);
	}
	if (!other || !strcmp(other, owner))
		return NULL;
	who = owner_text(other);
	why = who ? atex_sprintf("files/%s would land on a file of %s",
				 shown(buf, rel), who)
		  : NULL;
	free(who);
	return why;
}

/* Records `rel` (under files/) as a file of `name` (NULL: the test
 * itself), and its directories. */
static int record_file(atex_reporter *r, const char *name, const char *rel)
{
	const char *owner = name ? name : "";
	char *dir = atex_strdup(rel), *slash;
	int rc = 0;

	if (!dir)
		return ATEX_ENOMEM;
	if (!json_object_get(r->uploaded, rel))
		hold(r, 80 + strlen(rel) + strlen(owner), 0);
	rc = set_new(r->uploaded, rel, json_string(owner));
	while (!rc && (slash = strrchr(dir, '/'))) {
		*slash = '\0';
		if (json_object_get(r->dirs, dir))
			break;
		hold(r, 80 + strlen(dir) + strlen(owner), 0);
		rc = set_new(r->dirs, dir, json_string(owner));
	}
	free(dir);
	return rc ? rc : check_limit(r);
}

/*
 * Creates (or keeps, to append to) the file `file` of the result `name`,
 * its directories too, and records it as uploaded. Created now rather than
 * at its first byte: a file of length 0 gets no data at all, and a file
 * that cannot be created is better refused before its data flows.
 */
static int create_file(atex_reporter *r, const char *name, const char *file,
		       char **out)
{
	char *rel = relative_path(name, file), *path = NULL, *why = NULL;
	char buf[SHOWN_MAX];
	int fd, rc = 0;

	if (!rel)
		return ATEX_ENOMEM;
	why = clash(r, name, rel);
	if (why) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "result %s%s%s: file not "
				    "stored: %s",
				    name ? "'" : "",
				    name ? shown(buf, name) : "of the test",
				    name ? "'" : "", why);
		goto out;
	}
	path = atex_path_join(r->files_dir, rel);
	if (!path) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	rc = make_parents(path, strlen(r->files_dir) + 1);
	if (rc)
		goto out;
	/* O_NOFOLLOW: only this file writes under files/, and it makes no
	 * symlinks, so one there was not made for a test's benefit. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0) {
		rc = sys_error("cannot create", path);
		goto out;
	}
	close(fd);
	rc = record_file(r, name, rel);
	if (rc)
		goto out;
	*out = path;
	path = NULL;
out:
	free(why);
	free(path);
	free(rel);
	return rc;
}

/* ---- the result being received ---- */

static void close_cur_fd(atex_reporter *r)
{
	if (r->cur_fd >= 0)
		close(r->cur_fd);
	r->cur_fd = -1;
}

/* Forgets the result being received (a NULL r->cur has been taken). */
static void drop_current(atex_reporter *r)
{
	close_cur_fd(r);
	for (size_t i = 0; i < r->cur_npaths; i++)
		free(r->cur_paths[i]);
	free(r->cur_paths);
	r->cur_paths = NULL;
	r->cur_npaths = 0;
	json_decref(r->cur);
	r->cur = NULL;
	json_decref(r->cur_fresh);
	r->cur_fresh = NULL;
}

/* "files" as plain names: the lengths were the parser's, and plain names
 * merge as any array does. */
static int files_to_names(json_t *result)
{
	json_t *files = json_object_get(result, "files"), *names, *file;
	size_t i;

	if (!files)
		return 0;
	if (!json_is_array(files))
		return atex_error_set(ATEX_EINVAL,
				      "result: 'files' is not an array");
	names = json_array();
	if (!names)
		return atex_error_oom();
	json_array_foreach(files, i, file)
	{
		json_t *name = json_object_get(file, "name");

		if (!json_is_string(name) ||
		    !name_ok(json_string_value(name))) {
			json_decref(names);
			return atex_error_set(
				ATEX_EINVAL,
				"result: 'files'[%zu] has no safe name", i);
		}
		if (json_array_append(names, name) < 0) {
			json_decref(names);
			return atex_error_oom();
		}
	}
	return set_new(result, "files", names);
}

/* Checks what the parser has checked (see the top of the file), drops
 * "partial" into *partial and makes "files" plain names. */
static int normalize(json_t *result, bool *partial)
{
	json_t *value;

	if (!json_is_object(result))
		return atex_error_set(ATEX_EINVAL, "result: not a JSON object");
	value = json_object_get(result, "name");
	if (value &&
	    (!json_is_string(value) || !name_ok(json_string_value(value))))
		return atex_error_set(ATEX_EINVAL,
				      "result: 'name' is not a safe name");
	value = json_object_get(result, "testout");
	if (value && !json_is_null(value) &&
	    (!json_is_string(value) || !name_ok(json_string_value(value))))
		return atex_error_set(ATEX_EINVAL,
				      "result: 'testout' is not a safe name");
	value = json_object_get(result, "partial");
	*partial = json_is_true(value);
	if (value)
		json_object_del(result, "partial");
	return files_to_names(result);
}

/* The open result of `name` (NULL: the test itself), or NULL. */
static json_t *find_open(atex_reporter *r, const char *name)
{
	return json_object_get(r->open, name ? name : SELF_KEY);
}

/*
 * The one rule the parser cannot check alone: the testout of the result
 * as merged must not also be one of its files, or the copy of the output
 * would land on an uploaded file. Checked before anything changes, so a
 * refused result leaves the open one as it was.
 */
static int check_testout(atex_reporter *r, json_t *result, const char *name)
{
	json_t *o = find_open(r, name);
	json_t *value = json_object_get(result, "testout");
	const char *testout;
	char buf[SHOWN_MAX];

	if (!value && o)
		value = json_object_get(o, "testout");
	testout = json_string_value(value);
	if (!testout)
		return 0;
	if (!has_name(json_object_get(result, "files"), testout) &&
	    !(o && has_name(json_object_get(o, "files"), testout)))
		return 0;
	return atex_error_set(ATEX_EFORMAT,
			      "result: 'testout' '%s' is also one of the "
			      "result's files",
			      shown(buf, testout));
}

static int prepare_files(atex_reporter *r, json_t *result, const char *name)
{
	json_t *files = json_object_get(result, "files"), *file;
	size_t i, n = json_array_size(files);
	int rc = 0;

	if (n == 0)
		return 0;
	r->cur_paths = atex_calloc(n, sizeof(*r->cur_paths));
	if (!r->cur_paths)
		return ATEX_ENOMEM;
	r->cur_npaths = n;
	json_array_foreach(files, i, file)
	{
		rc = create_file(r, name, json_string_value(file),
				 &r->cur_paths[i]);
		if (rc)
			break;
	}
	return rc;
}

/* ---- lines ---- */

/* A line's "files": the testout first, then the names sorted, each once
 * (a name repeats when its file was appended to). NULL: out of memory. */
static json_t *file_list(json_t *files, const char *testout)
{
	struct atex_vec names = ATEX_VEC_INIT;
	json_t *list = json_array(), *file;
	size_t i;

	if (!list)
		goto fail;
	if (testout && json_array_append_new(list, json_string(testout)) < 0)
		goto fail;
	json_array_foreach(files, i, file)
	{
		if (json_is_string(file) &&
		    atex_vec_push(&names, (void *)json_string_value(file)) < 0)
			goto fail;
	}
	atex_vec_sort(&names, atex_vec_cmp_str);
	for (i = 0; i < names.len; i++) {
		if (i > 0 && !strcmp(names.items[i - 1], names.items[i]))
			continue;
		if (json_array_append_new(list, json_string(names.items[i])) <
		    0)
			goto fail;
	}
	atex_vec_free(&names);
	return list;
fail:
	atex_vec_free(&names);
	json_decref(list);
	atex_error_oom();
	return NULL;
}

/* The result as its line shows it: no "partial" or "testout", "files" a
 * list of names (where it was, or last when only the testout adds it),
 * every other key in its place. */
static int make_line(json_t **out, json_t *result, const char *testout)
{
	json_t *line = json_object(), *value;
	const char *key;
	int rc = 0;

	*out = NULL;
	if (!line)
		return atex_error_oom();
	json_object_foreach(result, key, value)
	{
		if (!strcmp(key, "partial") || !strcmp(key, "testout"))
			continue;
		if (!strcmp(key, "files"))
			rc = set_new(line, key, file_list(value, testout));
		else
			rc = set(line, key, value);
		if (rc)
			goto out;
	}
	if (testout && !json_object_get(result, "files"))
		rc = set_new(line, "files", file_list(NULL, testout));
out:
	if (rc)
		json_decref(line);
	else
		*out = line;
	return rc;
}

static int dump_to_buf(const char *text, size_t len, void *data)
{
	return atex_buf_put(data, text, len) < 0 ? -1 : 0;
}

/* One write() for the whole line: with O_APPEND, a reader sees the line
 * whole or not at all, and a short write (a full disk) is an error rather
 * than a half line followed by the rest. */
static int append_line(atex_reporter *r, const struct atex_buf *b)
{
	ssize_t n;

	do
		n = write(r->results_fd, b->ptr, b->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sys_error("cannot write", r->results_path);
	if ((size_t)n != b->len)
		return atex_error_set(ATEX_EIO,
				      "%s: short write (%zd of %zu bytes)",
				      r->results_path, n, b->len);
	return 0;
}

/* The result's testout, to be copied at finish. */
static int add_testout(atex_reporter *r, const char *name, const char *testout)
{
	char *rel = relative_path(name, testout);
	int rc;

	if (!rel)
		return ATEX_ENOMEM;
	if (!json_object_get(r->testouts, rel))
		hold(r, 80 + strlen(rel), 0);
	rc = set_new(r->testouts, rel, json_true());
	free(rel);
	return rc;
}

/* Writes the line of a closed result (the caller keeps `result`). */
static int close_result(atex_reporter *r, json_t *result)
{
	const char *name = result_name(result);
	const char *testout =
		json_string_value(json_object_get(result, "testout"));
	struct atex_buf b = ATEX_BUF_INIT;
	json_t *line = NULL;
	int rc;

	/* Even if writing fails below: the test did report its own result,
	 * and an I/O error is no reason to invent a fallback. */
	if (!name)
		r->self_closed = true;
	rc = make_line(&line, result, testout);
	if (!rc && testout)
		rc = add_testout(r, name, testout);
	if (rc)
		goto out;
	if (json_dump_callback(line, dump_to_buf, &b, JSON_COMPACT) < 0 ||
	    atex_buf_putc(&b, '\n') < 0) {
		rc = atex_error_oom();
		goto out;
	}
	rc = append_line(r, &b);
	if (!rc) {
		const char *st =
			json_string_value(json_object_get(result, "status"));

		r->count++;
		if (st && (!strcmp(st, "fail") || !strcmp(st, "warn") ||
			   !strcmp(st, "error")))
			r->failing = true;
	}
out:
	atex_buf_free(&b);
	json_decref(line);
	return rc;
}

/* ---- partial results ---- */

/* Merges `src` into `dst` by the rules of PROTOCOL.md section 2; *d gets
 * what that added and took away. */
static int merge(json_t *dst, json_t *src, struct delta *d)
{
	const char *key;
	json_t *value;
	int rc = 0;

	json_object_foreach(src, key, value)
	{
		json_t *old = json_object_get(dst, key);

		if (json_is_null(value)) {
			if (old)
				d->sub += entry_weight(key, old);
			json_object_del(dst, key);
		} else if (!old) {
			d->add += entry_weight(key, value);
			rc = set(dst, key, value);
		} else if (json_typeof(old) == json_typeof(value) &&
			   json_is_object(value)) {
			rc = merge(old, value, d);
		} else if (json_typeof(old) == json_typeof(value) &&
			   json_is_array(value)) {
			/* The slots and elements, not the array itself. */
			d->add += weight(value) - 48;
			rc = json_array_extend(old, value) < 0
				     ? atex_error_oom()
				     : 0;
		} else {
			/* A scalar, or a change of type: replaced. */
			d->sub += weight(old);
			d->add += weight(value);
			rc = set(dst, key, value);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* A result whose files have all arrived (taken): opened, merged into the
 * open one of its name, or closed. */
static int accept_result(atex_reporter *r, json_t *result, bool partial)
{
	const char *name = result_name(result);
	const char *key = name ? name : SELF_KEY;
	json_t *o = json_object_get(r->open, key);
	struct delta d = {0, 0};
	int rc;

	if (!o && partial) {
		hold(r, weight(result), 0);
		/* The key is copied before `result` is taken. */
		if (json_object_set_new_nocheck(r->open, key, result) < 0)
			return atex_error_oom();
		return check_limit(r);
	}
	if (!o) {
		rc = close_result(r, result);
		json_decref(result);
		return rc;
	}
	rc = merge(o, result, &d);
	hold(r, d.add, d.sub);
	if (rc || partial) {
		json_decref(result);
		return rc ? rc : check_limit(r);
	}
	/* Closed: out of the open ones (its key lives in `result`, kept
	 * until now), then written. */
	json_incref(o);
	hold(r, 0, weight(o));
	json_object_del(r->open, key);
	json_decref(result);
	rc = close_result(r, o);
	json_decref(o);
	return rc;
}

/* ---- TMT_TEST_DATA copies of streamed files ---- */

/* The prefix of the files the wrapper uploads from TMT_TEST_DATA. */
#define DATA_PREFIX   "data/"
#define COMPARE_CHUNK 65536

/* The "data/..." files of a result for the test itself that no result has
 * uploaded yet (a JSON array), or NULL (none; or no memory, which only
 * costs the check). */
static json_t *fresh_data_files(atex_reporter *r, json_t *result)
{
	json_t *files = json_object_get(result, "files"), *fresh = NULL, *f;
	size_t i;

	if (result_name(result))
		return NULL;
	json_array_foreach(files, i, f)
	{
		const char *rel = json_string_value(f);

		if (!rel || strncmp(rel, DATA_PREFIX, strlen(DATA_PREFIX)) ||
		    json_object_get(r->uploaded, rel) ||
		    (fresh && has_name(fresh, rel)))
			continue;
		if (!fresh && !(fresh = json_array()))
			return NULL;
		if (json_array_append(fresh, f) < 0)
			break;
	}
	return fresh;
}

/* 1 when the files a and b under files/ hold the same bytes, 0 when not
 * (or one cannot be read: then both are kept). */
static int same_contents(atex_reporter *r, const char *a, const char *b)
{
	char *pa = atex_path_join(r->files_dir, a);
	char *pb = atex_path_join(r->files_dir, b);
	int fa = pa ? open(pa, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	int fb = pb ? open(pb, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	char *ba = atex_malloc(2 * COMPARE_CHUNK), *bb = ba + COMPARE_CHUNK;
	struct stat sa, sb;
	int same = 0;

	if (!ba || fa < 0 || fb < 0 || fstat(fa, &sa) || fstat(fb, &sb) ||
	    !S_ISREG(sa.st_mode) || !S_ISREG(sb.st_mode) ||
	    sa.st_size != sb.st_size)
		goto out;
	for (;;) {
		ssize_t n = read(fa, ba, COMPARE_CHUNK);

		if (n < 0 || read(fb, bb, (size_t)n) != n ||
		    memcmp(ba, bb, (size_t)n))
			goto out;
		if (n == 0)
			break;
	}
	same = 1;
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	free(ba);
	free(pa);
	free(pb);
	return same;
}

/* Removes files/<rel> and its directories left empty (files/ stays). */
static void remove_file(atex_reporter *r, const char *rel)
{
	char *path = atex_path_join(r->files_dir, rel), *slash;
	size_t keep = strlen(r->files_dir);

	if (!path || unlink(path) < 0) {
		free(path);
		return;
	}
	while ((slash = strrchr(path, '/')) && (size_t)(slash - path) > keep) {
		*slash = '\0';
		if (rmdir(path) < 0)
			break;
	}
	free(path);
}

/*
 * A file "data/P" that a result for the test itself uploads for the first
 * time, byte for byte the test's own file "P" already uploaded, is stored
 * once, as P. The wrapper uploads what a test leaves in TMT_TEST_DATA as
 * "data/..." (docs/PROTOCOL.md), and real clients that take TMT_TEST_DATA
 * for "running under tmt" (contest's lib/results.py) write each log there
 * while also streaming it through the channel. Returns whether the result
 * is left empty (a partial result with nothing but those files).
 */
static bool drop_data_copies(atex_reporter *r, json_t *result, json_t *fresh)
{
	json_t *files = json_object_get(result, "files"), *f;
	size_t i, j;

	json_array_foreach(fresh, i, f)
	{
		const char *rel = json_string_value(f);
		const char *own = rel + strlen(DATA_PREFIX);

		if (!json_object_get(r->uploaded, own) ||
		    !same_contents(r, rel, own))
			continue;
		atex_debug(COMPONENT,
			   "%s: files/%s is files/%s again, "
			   "stored once",
			   r->results_path, rel, own);
		remove_file(r, rel);
		json_object_del(r->uploaded, rel);
		for (j = json_array_size(files); j-- > 0;)
			if (!strcmp(json_string_value(json_array_get(files, j)),
				    rel))
				json_array_remove(files, j);
	}
	return fresh && json_array_size(files) == 0 &&
	       json_object_size(result) == 1;
}

/* ---- finish ---- */

static int interpret_own(atex_reporter *r, json_t *result,
			 enum atex_test_end end);
static bool interprets(const atex_reporter *r);
static int load_custom(atex_reporter *r);
static const char *worse(const char *had, const char *status);

/* The status of a killed test, or NULL when the test exited. Python
 * ATEX says "infra" for every kill. */
static const char *killed_status(const atex_reporter *r, enum atex_test_end end)
{
	if (r->compat && end != ATEX_TEST_EXITED)
		return "infra";
	switch (end) {
	case ATEX_TEST_EXITED:
		return NULL;
	case ATEX_TEST_TIMED_OUT:
	case ATEX_TEST_CHANNEL_ERROR:
		return "error";
	case ATEX_TEST_INFRA:
	case ATEX_TEST_CANCELED:
		break;
	}
	return "infra";
}

static const char *default_note(enum atex_test_end end)
{
	switch (end) {
	case ATEX_TEST_EXITED:
		break;
	case ATEX_TEST_TIMED_OUT:
		return "test duration exceeded";
	case ATEX_TEST_CHANNEL_ERROR:
		return "test control channel error";
	case ATEX_TEST_INFRA:
		return "the connection or the test wrapper failed";
	case ATEX_TEST_CANCELED:
		return "canceled";
	}
	return "the test ended abnormally";
}

/* Makes `result` the test's own fallback: the status (a killed test's
 * replaces any; otherwise the result's own, else from the exit code) and
 * the testout, unless there is one or a file has its name already. */
/*
 * Whether the artifacts' file system is full (less room than a result
 * needs): a test writing its output there got ENOSPC and likely failed of
 * it, which its result must say; nothing else would tell.
 */
static bool disk_full(const atex_reporter *r)
{
	struct statvfs sv;

	if (fstatvfs(r->results_fd, &sv) < 0)
		return false;
	return (unsigned long long)sv.f_bavail * sv.f_frsize <
	       RESULTS_RESERVE / 2;
}

#define DISK_FULL_NOTE                                                         \
	"no space left on device where its artifacts go: its output and "      \
	"files may be cut"

/* Appends DISK_FULL_NOTE to the result's note when the test did not pass
 * and the disk is full. */
static int note_disk_full(atex_reporter *r, json_t *result)
{
	const char *status =
		json_string_value(json_object_get(result, "status"));
	const char *note = json_string_value(json_object_get(result, "note"));
	char *text;
	int rc;

	if (!status || !strcmp(status, "pass") || !disk_full(r))
		return 0;
	text = note && *note ? atex_sprintf("%s; %s", note, DISK_FULL_NOTE)
			     : atex_strdup(DISK_FULL_NOTE);
	if (!text)
		return atex_error_oom();
	rc = set_new(result, "note", text_value(text));
	free(text);
	return rc;
}

/* Appends `text` to the result's note ("NOTE; TEXT"), or makes it the
 * note. */
static int add_note(json_t *result, const char *text)
{
	const char *note = json_string_value(json_object_get(result, "note"));
	char *both;
	int rc;

	if (!note || !*note)
		return set_new(result, "note", text_value(text));
	both = atex_sprintf("%s; %s", note, text);
	if (!both)
		return atex_error_oom();
	rc = set_new(result, "note", text_value(both));
	free(both);
	return rc;
}

/* The status of an exit code, as tmt's shell framework reads it: 0
 * pass, 1 fail, anything else (a crash, a missing command, a signal) an
 * error of the test rather than a verdict. Python ATEX: 0 pass, else
 * fail. */
static const char *exit_status(const atex_reporter *r, int code)
{
	if (code == 0)
		return "pass";
	return code == 1 || r->compat ? "fail" : "error";
}

/* Says which exit code made an "error": the status alone does not. */
static int exit_note(json_t *result, int code)
{
	char text[48];

	snprintf(text, sizeof(text), "exit code %d", code);
	return add_note(result, text);
}

/* The test's checks on its result (tmt's interpretation, made by the
 * executor): the worse status of the two, and the checks' notes. */
static int apply_checks(json_t *result, const struct atex_test_outcome *o)
{
	static const char *const order[] = {"infra", "error", "fail", "warn",
					    "pass",  "info",  "skip"};
	const char *had = json_string_value(json_object_get(result, "status"));
	size_t a = 0, b = 0;
	int rc = 0;

	if (o->checks_status && had) {
		while (a < sizeof(order) / sizeof(order[0]) &&
		       strcmp(order[a], had))
			a++;
		while (b < sizeof(order) / sizeof(order[0]) &&
		       strcmp(order[b], o->checks_status))
			b++;
		if (b < a)
			rc = set_new(result, "status",
				     json_string(o->checks_status));
	}
	if (!rc && o->checks_note)
		rc = add_note(result, o->checks_note);
	return rc;
}

static int apply_fallback(atex_reporter *r, json_t *result,
			  const struct atex_test_outcome *outcome)
{
	const char *status = killed_status(r, outcome->end);
	const char *note = outcome->note;
	int rc = 0;

	if (status) {
		rc = set_new(result, "status", json_string(status));
		if (!rc)
			rc = set_new(
				result, "note",
				text_value(note ? note
						: default_note(outcome->end)));
	} else if (!json_is_string(json_object_get(result, "status"))) {
		/* tmt: the test's tmt-report-result calls, when it made
		 * any, are its verdict (the worst of them), not its exit
		 * code; restraint mode makes each its own result only. */
		bool reduce = r->reported && !r->compat &&
			      r->interpret != ATEX_RESULT_RESTRAINT;

		status = reduce ? r->reported
				: exit_status(r, outcome->exit_code);
		rc = set_new(result, "status", json_string(status));
		if (!rc && !reduce && !strcmp(status, "error"))
			rc = exit_note(result, outcome->exit_code);
	}
	/* tmt: the checks first, then the `result` key over both. */
	if (!rc && !killed_status(r, outcome->end))
		rc = apply_checks(result, outcome);
	if (!rc)
		rc = interpret_own(r, result, outcome->end);
	/* A test that ended by itself with something to say about its run
	 * (the system rebooted under it): the note says it. */
	if (!rc && !killed_status(r, outcome->end) && note)
		rc = add_note(result, note);
	if (!rc)
		rc = note_disk_full(r, result);
	if (!rc && !json_object_get(result, "testout") &&
	    !json_object_get(r->uploaded, DEFAULT_TESTOUT))
		rc = set_new(result, "testout", json_string(DEFAULT_TESTOUT));
	return rc;
}

/* Whether a kill overrides what the test said of itself: every kill but
 * a channel error, which adds an "error" result of its own instead.
 * Python ATEX leaves what the test closed as it is. */
static bool kill_overrides(const atex_reporter *r, enum atex_test_end end)
{
	return !r->compat && killed_status(r, end) &&
	       end != ATEX_TEST_CHANNEL_ERROR;
}

/*
 * A result the test closed for itself, when the test was killed: the
 * kill's status replaces the one it reported (which the note keeps),
 * since the test did not get to finish.
 */
static int settle_own(const atex_reporter *r, json_t *result,
		      const struct atex_test_outcome *outcome)
{
	const char *had = json_string_value(json_object_get(result, "status"));
	const char *had_note =
		json_string_value(json_object_get(result, "note"));
	const char *why =
		outcome->note ? outcome->note : default_note(outcome->end);
	char *note;
	int rc;

	if (had && had_note && *had_note)
		note = atex_sprintf("%s (it had reported '%s': %s)", why, had,
				    had_note);
	else if (had)
		note = atex_sprintf("%s (it had reported '%s')", why, had);
	else
		note = atex_strdup(why);
	if (!note)
		return ATEX_ENOMEM;
	rc = set_new(result, "note", text_value(note));
	free(note);
	return rc ? rc
		  : set_new(result, "status",
			    json_string(killed_status(r, outcome->end)));
}

/* Copies the results file to the open temporary file `out`, each line
 * of a result of the test itself settled (settle_own). */
/* Adds the names of `extra` that the line's "files" lacks to it. */
static int add_file_names(json_t *line, json_t *extra)
{
	json_t *files = json_object_get(line, "files"), *name;
	size_t i;

	if (!json_is_array(files)) {
		files = json_array();
		if (set_new(line, "files", files))
			return ATEX_ENOMEM;
	}
	json_array_foreach(extra, i, name)
	{
		if (!json_is_string(name) ||
		    has_name(files, json_string_value(name)))
			continue;
		if (json_array_append(files, name) < 0)
			return atex_error_oom();
	}
	return 0;
}

static int rewrite_lines(atex_reporter *r, int out, const char *out_path,
			 const struct atex_test_outcome *outcome, json_t *extra)
{
	struct atex_buf b = ATEX_BUF_INIT;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *in;
	int fd, rc = 0;

	fd = open(r->results_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	in = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!in) {
		rc = sys_error("cannot read", r->results_path);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while (!rc && (len = getline(&line, &cap, in)) > 0) {
		json_t *result = json_loadb(line, (size_t)len, 0, NULL);

		b.len = 0;
		/* Every line is ours; one that is not a result of the test
		 * itself is copied as it is. */
		if (!json_is_object(result) || result_name(result)) {
			rc = write_all(out, line, (size_t)len, out_path);
			json_decref(result);
			continue;
		}
		if (kill_overrides(r, outcome->end))
			rc = settle_own(r, result, outcome);
		/* tmt: the checks first, then the `result` key over both,
		 * whoever made the test's own result. */
		if (!rc && !killed_status(r, outcome->end))
			rc = apply_checks(result, outcome);
		if (!rc)
			rc = interpret_own(r, result, outcome->end);
		if (!rc && extra) {
			rc = add_file_names(result, extra);
			extra = NULL; /* to the first such line only */
		}
		if (!rc && (json_dump_callback(result, dump_to_buf, &b,
					       JSON_COMPACT) < 0 ||
			    atex_buf_putc(&b, '\n') < 0))
			rc = atex_error_oom();
		if (!rc)
			rc = write_all(out, b.ptr, b.len, out_path);
		json_decref(result);
	}
	if (!rc && ferror(in))
		rc = sys_error("cannot read", r->results_path);
	fclose(in);
	free(line);
	atex_buf_free(&b);
	return rc;
}

/*
 * The results of a killed test that it closed for itself are settled
 * (settle_own) in place: the file is written anew beside the old one and
 * renamed over it, so that it holds either version whole, and later lines
 * go to the new one. Until then each line was on disk the moment its
 * result closed, as always.
 */
static int rewrite_own(atex_reporter *r,
		       const struct atex_test_outcome *outcome, json_t *extra)
{
	char *tmp;
	int fd, rc;

	if (!r->self_closed ||
	    (!kill_overrides(r, outcome->end) && !extra && !interprets(r) &&
	     r->interpret != ATEX_RESULT_CUSTOM && !outcome->checks_status &&
	     !outcome->checks_note))
		return 0;
	tmp = atex_sprintf("%s.XXXXXX", r->results_path);
	if (!tmp)
		return ATEX_ENOMEM;
	/* mkostemp: O_EXCL, a name nobody planted. */
	fd = mkostemp(tmp, O_APPEND | O_CLOEXEC);
	if (fd < 0) {
		rc = sys_error("cannot create", tmp);
		free(tmp);
		return rc;
	}
	rc = rewrite_lines(r, fd, tmp, outcome, extra);
	if (!rc && fchmod(fd, 0644) < 0)
		rc = sys_error("cannot change the mode of", tmp);
	if (!rc && rename(tmp, r->results_path) < 0)
		rc = sys_error("cannot rename to results", tmp);
	if (rc) {
		unlink(tmp);
		close(fd);
	} else {
		close(r->results_fd);
		r->results_fd = fd;
	}
	free(tmp);
	return rc;
}

/*
 * Files sent for the test itself, with no status and nothing else, after
 * the test had closed its own result: the wrapper's upload of what the
 * test left in TMT_TEST_DATA (or packages.txt). They belong to that
 * result, not to a second one without a status. NULL when there are none.
 */
static json_t *late_own_files(atex_reporter *r)
{
	json_t *late = json_object_get(r->open, ""), *value;
	const char *key;

	if (!r->self_closed || !late)
		return NULL;
	json_object_foreach(late, key, value)
	{
		if (strcmp(key, "files") && strcmp(key, "partial"))
			return NULL;
	}
	return json_object_get(late, "files");
}

static int add_fallback(atex_reporter *r,
			const struct atex_test_outcome *outcome)
{
	json_t *result = json_object();
	int rc;

	if (!result)
		return atex_error_oom();
	rc = apply_fallback(r, result, outcome);
	if (!rc)
		rc = close_result(r, result);
	json_decref(result);
	return rc;
}

/*
 * copy_file_range shares extents where the file system can and moves no
 * data through user space elsewhere; the read/write loop covers kernels
 * and file systems that refuse it, going on from where it stopped.
 */
static int copy_fd(int src, int dst, const char *dst_path)
{
	loff_t off = 0;
	char *buf = NULL;
	int rc = 0;

	for (;;) {
		ssize_t n = copy_file_range(src, &off, dst, NULL, 1 << 30, 0);

		if (n == 0)
			return 0;
		if (n > 0 || errno == EINTR)
			continue;
		if (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
		    errno == EOPNOTSUPP)
			break;
		return sys_error("cannot copy the test output", dst_path);
	}
	buf = atex_malloc(65536);
	if (!buf)
		return ATEX_ENOMEM;
	for (;;) {
		ssize_t n = pread(src, buf, 65536, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = sys_error("cannot copy the test output", dst_path);
			break;
		}
		if (n == 0)
			break;
		rc = write_all(dst, buf, (size_t)n, dst_path);
		if (rc)
			break;
		off += n;
	}
	free(buf);
	return rc;
}

/* Copies the output (`src`; -1: there is none, the copy is empty) to the
 * testout `rel`. The copy replaces what is there. */
static int copy_to(atex_reporter *r, int src, const char *rel)
{
	char *path = atex_path_join(r->files_dir, rel);
	int dst = -1, rc;

	if (!path)
		return ATEX_ENOMEM;
	rc = make_parents(path, strlen(r->files_dir) + 1);
	if (rc)
		goto out;
	dst = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		   0644);
	if (dst < 0) {
		rc = sys_error("cannot create", path);
		goto out;
	}
	if (src >= 0)
		rc = copy_fd(src, dst, path);
	if (close(dst) < 0)
		keep(&rc, sys_error("cannot write", path));
out:
	free(path);
	return rc;
}

/* Every testout becomes a copy of the output; then the raw output goes. */
static int copy_output(atex_reporter *r)
{
	const char *rel;
	json_t *value;
	int src, rc = 0;

	src = open(r->output_path, O_RDONLY | O_CLOEXEC);
	if (src < 0 && errno != ENOENT) {
		rc = sys_error("cannot open", r->output_path);
	} else {
		json_object_foreach(r->testouts, rel, value)
		{
			keep(&rc, copy_to(r, src, rel));
		}
	}
	if (src >= 0)
		close(src);
	if (unlink(r->output_path) < 0 && errno != ENOENT)
		keep(&rc, sys_error("cannot remove", r->output_path));
	return rc;
}

/* ---- the test's `result` key ---- */

static const char *const interpret_names[] = {
	[ATEX_RESULT_RESPECT] = "respect",     [ATEX_RESULT_XFAIL] = "xfail",
	[ATEX_RESULT_PASS] = "pass",	       [ATEX_RESULT_INFO] = "info",
	[ATEX_RESULT_WARN] = "warn",	       [ATEX_RESULT_ERROR] = "error",
	[ATEX_RESULT_FAIL] = "fail",	       [ATEX_RESULT_CUSTOM] = "custom",
	[ATEX_RESULT_RESTRAINT] = "restraint",
};

int atex_result_interpret_parse(const char *value)
{
	for (size_t i = 0; value && i < ATEX_ARRAY_SIZE(interpret_names); i++)
		if (!strcmp(value, interpret_names[i]))
			return (int)i;
	return -1;
}

/* The statuses a reduction knows, worst first: tmt's order. */
static const char *const severity[] = {"error", "fail", "warn",	  "pass",
				       "info",	"skip", "pending"};

/* The place of `status` in severity; anything else counts as an error. */
static size_t rank(const char *status)
{
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(severity); i++)
		if (!strcmp(status, severity[i]))
			return i;
	return 0;
}

/* The worse of `had` (NULL: none yet) and `status`, a static string. */
static const char *worse(const char *had, const char *status)
{
	size_t i = rank(status);

	return had && rank(had) <= i ? had : severity[i];
}

static bool known_status(const char *status)
{
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(severity); i++)
		if (!strcmp(status, severity[i]))
			return true;
	return false;
}

/* Whether finish changes the test's own result by its `result` key. */
static bool interprets(const atex_reporter *r)
{
	return r->interpret != ATEX_RESULT_RESPECT &&
	       r->interpret != ATEX_RESULT_RESTRAINT;
}

/*
 * The test's own result settled by its `result` key, as tmt's
 * interpret_result does: xfail swaps pass and fail, an outcome replaces
 * the status (the notes say so and keep the original), custom takes what
 * the test's results file said. Only for a test that ended by itself or
 * ran out of time: lost connections, cancels and a broken channel are
 * atex's verdicts, not the test's.
 */
static int interpret_own(atex_reporter *r, json_t *result,
			 enum atex_test_end end)
{
	const char *had = json_string_value(json_object_get(result, "status"));
	const char *now, *why;
	char *orig, *text;
	int rc;

	if (end != ATEX_TEST_EXITED &&
	    (end != ATEX_TEST_TIMED_OUT || r->compat))
		return 0;
	if (r->interpret == ATEX_RESULT_CUSTOM) {
		if (end != ATEX_TEST_EXITED || !r->custom_status)
			return 0;
		rc = set_new(result, "status", json_string(r->custom_status));
		return rc || !r->custom_note ? rc
					     : add_note(result, r->custom_note);
	}
	if (!had || !interprets(r))
		return 0;
	if (r->interpret == ATEX_RESULT_XFAIL) {
		if (!strcmp(had, "pass")) {
			now = "fail";
			why = "test was expected to fail";
		} else if (!strcmp(had, "fail")) {
			now = "pass";
			why = "test failed as expected";
		} else {
			return 0;
		}
		text = atex_strdup(why);
	} else {
		now = interpret_names[r->interpret];
		text = atex_sprintf("test result overridden: %s", now);
	}
	orig = atex_strdup(had);
	if (!orig || !text) {
		free(orig);
		free(text);
		return ATEX_ENOMEM;
	}
	rc = set_new(result, "status", json_string(now));
	if (!rc)
		rc = add_note(result, text);
	free(text);
	text = strcmp(orig, now)
		       ? atex_sprintf("original test result: %s", orig)
		       : NULL;
	if (!rc && text)
		rc = add_note(result, text);
	free(text);
	free(orig);
	return rc;
}

/* ---- custom results: the test's own results file ---- */

/* What custom mode reads, in TMT_TEST_DATA (files data/...), in order. */
static const char *const custom_files[] = {"results.yaml", "results.json"};

/* Custom mode's verdict on the test itself: an error, the note `msg`. */
static int custom_error(atex_reporter *r, char *msg)
{
	if (!msg)
		return ATEX_ENOMEM;
	free(r->custom_status);
	free(r->custom_note);
	r->custom_note = msg;
	r->custom_status = atex_strdup("error");
	return r->custom_status ? 0 : ATEX_ENOMEM;
}

/* *err = the message; 0, or ATEX_ENOMEM when it cannot be made. */
static int say(char **err, const char *fmt, ...) ATEX_PRINTF(2, 3);

static int say(char **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	return *err ? 0 : atex_error_oom();
}

/* Where result `i` is, for a message: "FILE:LINE" (YAML) or "FILE: result
 * N" (JSON, whose parser keeps no positions). */
static char *custom_where(const char *file, const struct atex_marks *marks,
			  json_t *item, size_t i)
{
	const struct atex_mark *m = atex_marks_find(marks, item, NULL);

	return m ? atex_sprintf("%s:%u", file, m->line)
		 : atex_sprintf("%s: result %zu", file, i + 1);
}

/* A `note` of a custom result (a string or a list of them) as one
 * string, in *out (NULL for none); false when it is neither. */
static bool custom_note_text(json_t *note, char **out)
{
	struct atex_buf b = ATEX_BUF_INIT;
	json_t *v;
	size_t i;

	*out = NULL;
	if (!note || json_is_null(note))
		return true;
	if (json_is_string(note)) {
		*out = atex_strdup(json_string_value(note));
		return true;
	}
	if (!json_is_array(note))
		return false;
	json_array_foreach(note, i, v)
	{
		if (!json_is_string(v)) {
			atex_buf_free(&b);
			return false;
		}
		if ((i && atex_buf_puts(&b, "; ") < 0) ||
		    atex_buf_puts(&b, json_string_value(v)) < 0)
			break;
	}
	*out = b.len ? atex_buf_detach(&b) : NULL;
	atex_buf_free(&b);
	return true;
}

/*
 * A custom result's `log` entry as a path in TMT_TEST_DATA, NULL when it
 * is none: tmt joins it to the directory, so "./log" and "a/../log" are
 * "log"; what is absolute, empty, holds a NUL byte or climbs out of the
 * directory is refused.
 */
static char *custom_log_path(json_t *v)
{
	const char *l = json_string_value(v), *p;
	struct atex_buf b = ATEX_BUF_INIT;

	if (!l || *l == '/' || strlen(l) != json_string_length(v))
		return NULL;
	for (p = l; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && !strncmp(p, "..", 2)) {
			char *slash;

			if (!b.len)
				goto bad;
			slash = memrchr(b.ptr, '/', b.len);
			b.len = slash ? (size_t)(slash - b.ptr) : 0;
		} else if (n && !(n == 1 && *p == '.') &&
			   ((b.len && atex_buf_putc(&b, '/') < 0) ||
			    atex_buf_put(&b, p, n) < 0)) {
			goto bad;
		}
		p += n + (p[n] == '/');
	}
	if (!b.len)
		goto bad;
	b.ptr[b.len] = '\0'; /* a ".." may have shortened it */
	return atex_buf_detach(&b);
bad:
	atex_buf_free(&b);
	return NULL;
}

/* tmt's timestamp (schemas/common.yaml): digits-2-2T2:2:2.FRACTION and
 * +HH:MM or Z, as tmt writes start-time and end-time. */
static bool tmt_timestamp_ok(const char *s)
{
	static const char shape[] = "dd-dd-ddTdd:dd:dd.";
	size_t year = strspn(s, "0123456789");

	if (year < 2)
		return false;
	s += year - 2;
	for (size_t i = 0; shape[i]; i++, s++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)*s)
				    : *s != shape[i])
			return false;
	if (!isdigit((unsigned char)*s))
		return false;
	s += strspn(s, "0123456789");
	if (!strcmp(s, "Z"))
		return true;
	return strlen(s) == 6 && s[0] == '+' && isdigit((unsigned char)s[1]) &&
	       isdigit((unsigned char)s[2]) && s[3] == ':' &&
	       isdigit((unsigned char)s[4]) && isdigit((unsigned char)s[5]);
}

/* tmt's result duration: HH:MM:SS, two or more digits of hours. */
static bool tmt_duration_ok(const char *s)
{
	size_t hours = strspn(s, "0123456789");

	return hours >= 2 && s[hours] == ':' && s[hours + 1] >= '0' &&
	       s[hours + 1] <= '5' && isdigit((unsigned char)s[hours + 2]) &&
	       s[hours + 3] == ':' && s[hours + 4] >= '0' &&
	       s[hours + 4] <= '5' && isdigit((unsigned char)s[hours + 5]) &&
	       !s[hours + 6];
}

/* tmt's keys of a result's times, as tmt writes them (kept by their
 * names on atex's results: docs/PROTOCOL.md section 2 keeps other keys). */
static const struct {
	const char *key;
	bool (*ok)(const char *);
	const char *shape;
} custom_times[] = {
	{"start-time", tmt_timestamp_ok,
	 "a timestamp like "
	 "2026-12-06T22:45:01.123456+00:00"},
	{"end-time", tmt_timestamp_ok,
	 "a timestamp like "
	 "2026-12-06T22:45:01.123456+00:00"},
	{"duration", tmt_duration_ok, "HH:MM:SS"},
};

/* A warning about the test's results file, as tmt's "Result format
 * violation": logged and said in the test's output; the results stand. */
static void custom_warn(atex_reporter *r, const char *fmt, ...)
	ATEX_PRINTF(2, 3);

static void custom_warn(atex_reporter *r, const char *fmt, ...)
{
	char *msg = NULL, *line;
	va_list ap;
	int fd;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return;
	atex_log(ATEX_LOG_WARNING, COMPONENT, "%s", msg);
	line = atex_sprintf("atex: %s\n", msg);
	fd = line ? open(r->output_path, O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
	if (fd >= 0) {
		if (write(fd, line, strlen(line)) < 0)
			atex_debug(COMPONENT, "%s: %s", r->output_path,
				   strerror(errno));
		close(fd);
	}
	free(line);
	free(msg);
}

/* The times custom entry `item` gives (tmt's start-time, end-time,
 * duration) onto `res`, the result made of it, when a subtest's: the test's
 * own are atex's measure of the attempt, as tmt overrides them. An
 * invalid one is left out with a warning naming FILE:LINE (of the key
 * when known, else `where`). */
static int custom_times_of(atex_reporter *r, json_t *item, json_t *res,
			   const char *where, const char *file,
			   const struct atex_marks *marks)
{
	bool own = !result_name(res);
	char buf[SHOWN_MAX], at[SHOWN_MAX];

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(custom_times); i++) {
		json_t *v = json_object_get(item, custom_times[i].key);
		const char *text = json_string_value(v);
		const struct atex_mark *m;
		char *dump;

		if (!v)
			continue;
		if (text && custom_times[i].ok(text)) {
			if (!own && set_new(res, custom_times[i].key,
					    json_string(text)))
				return atex_error_oom();
			continue;
		}
		m = atex_marks_find(marks, item, custom_times[i].key);
		if (m)
			snprintf(at, sizeof(at), "%s:%u", file, m->line);
		dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		custom_warn(r,
			    "%s: '%s': result format violation: '%s' %s is "
			    "not %s (left out)",
			    m ? at : where,
			    shown(buf, json_string_value(
					       json_object_get(item, "name"))),
			    custom_times[i].key, dump ? dump : "?",
			    custom_times[i].shape);
		free(dump);
	}
	return 0;
}

/*
 * One custom result made an atex result (in *out): name without its
 * leading slashes ("" for the test itself), status, note, and its logs
 * as the names of files under data/ (copied under the result's name
 * later). A subresult of an entry (`parent` its name, "" for the test
 * itself) is named PARENT/NAME: atex has one level of subtests. NULL
 * *err when fine, else the message.
 */
static int custom_one(atex_reporter *r, json_t *item, const char *where,
		      const char *parent, json_t **out, char **err)
{
	json_t *name = json_object_get(item, "name");
	json_t *status = json_object_get(item, "result");
	json_t *log = json_object_get(item, "log"), *v, *res, *files;
	const char *n;
	char *note = NULL, *full = NULL, buf[SHOWN_MAX];
	size_t i;

	*out = NULL;
	*err = NULL;
	if (!json_is_object(item))
		return say(err, "%s: not a mapping", where);
	if (!json_is_string(name))
		return say(err, "%s: no 'name' string", where);
	n = json_string_value(name);
	/* Cut at the NUL, the name would be another one. */
	if (strlen(n) != json_string_length(name))
		return say(err, "%s: '%s\\0...': the name holds a NUL byte",
			   where, shown(buf, n));
	if (!json_is_string(status) || !known_status(json_string_value(status)))
		return say(err,
			   "%s: '%s': invalid 'result' (one "
			   "of pass, fail, info, warn, error, "
			   "skip, pending)",
			   where, n);
	if (!custom_note_text(json_object_get(item, "note"), &note))
		return say(err,
			   "%s: '%s': 'note' is not a string "
			   "or a list of strings",
			   where, n);
	res = json_object();
	files = json_array();
	if (!res || !files)
		goto oom;
	if (n[0] != '/' && !parent) {
		char *both = note ? atex_sprintf("%s; custom test result name "
						 "should start with '/'",
						 note)
				  : atex_strdup("custom test result name "
						"should start with '/'");

		free(note);
		note = both;
		if (!note)
			goto oom;
	}
	while (*n == '/')
		n++;
	if (parent && *parent) {
		full = atex_sprintf("%s/%s", parent, n);
		if (!full)
			goto oom;
		n = full;
	}
	if ((*n || parent) && !name_ok(n)) {
		*err = atex_sprintf("%s: '%s': invalid name", where,
				    json_string_value(name));
		goto out;
	}
	if (set_new(res, "status", json_copy(status)) ||
	    (*n && set_new(res, "name", json_string(n))) ||
	    (note && set_new(res, "note", text_value(note))))
		goto oom;
	json_array_foreach(log, i, v)
	{
		char *l = custom_log_path(v);

		if (!l) {
			*err = atex_sprintf(
				"%s: log entry %zu of result '%s' "
				"is not a relative path inside "
				"TMT_TEST_DATA",
				where, i + 1,
				shown(buf, json_string_value(name)));
			goto out;
		}
		if (json_array_append_new(files, json_string(l)) < 0) {
			free(l);
			goto oom;
		}
		free(l);
	}
	if (log && !json_is_array(log)) {
		*err = atex_sprintf("%s: '%s': 'log' is not a list", where,
				    json_string_value(name));
		goto out;
	}
	if (set(res, "files", files))
		goto oom;
	*out = res;
	res = NULL;
out:
	json_decref(res);
	json_decref(files);
	free(note);
	free(full);
	return *err || *out ? 0 : ATEX_ENOMEM;
oom:
	json_decref(res);
	json_decref(files);
	free(note);
	free(full);
	return atex_error_oom();
}

/*
 * The `subresult` list of custom entry `item` (tmt's, as `atex report
 * --tmt` writes it), each a result named ENTRY/NAME appended to `all`.
 * NULL *err when fine, else the message.
 */
static int custom_subresults(atex_reporter *r, json_t *item, json_t *entry,
			     const char *where, const char *file,
			     const struct atex_marks *marks, json_t *all,
			     char **err)
{
	json_t *subs = json_object_get(item, "subresult"), *sub, *res;
	const char *parent = result_name(entry);
	size_t i;
	int rc = 0;

	*err = NULL;
	if (!subs || json_is_null(subs))
		return 0;
	if (!json_is_array(subs))
		return say(err, "%s: '%s': 'subresult' is not a list", where,
			   json_string_value(json_object_get(item, "name")));
	json_array_foreach(subs, i, sub)
	{
		const struct atex_mark *m = atex_marks_find(marks, sub, NULL);
		char *at = m ? atex_sprintf("%s:%u", file, m->line)
			     : atex_sprintf("%s, subresult %zu", where, i + 1);

		res = NULL;
		rc = at ? custom_one(r, sub, at, parent ? parent : "", &res,
				     err)
			: ATEX_ENOMEM;
		if (!rc && !*err)
			rc = custom_times_of(r, sub, res, at, file, marks);
		free(at);
		if (rc || *err) {
			json_decref(res);
			break;
		}
		if (json_array_append_new(all, res) < 0)
			return atex_error_oom();
	}
	return rc;
}

/* The file custom mode reads (a name in custom_files), NULL for none. */
static const char *custom_file(const atex_reporter *r)
{
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(custom_files); i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), DATA_PREFIX "%s", custom_files[i]);
		if (json_object_get(r->uploaded, rel))
			return custom_files[i];
	}
	return NULL;
}

/* The custom results file parsed (a list), in *out; a message in *err
 * when it is not one. */
static int custom_parse(atex_reporter *r, const char *file, json_t **out,
			struct atex_marks *marks, char **err)
{
	char *rel = atex_sprintf(DATA_PREFIX "%s", file);
	char *path = rel ? atex_path_join(r->files_dir, rel) : NULL;
	char *shown_name = atex_sprintf("TMT_TEST_DATA/%s", file);
	char *text = NULL;
	size_t len = 0;
	json_error_t je;
	int rc = 0;

	*out = NULL;
	*err = NULL;
	if (!path || !shown_name) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	/* Unreadable (it was uploaded, so hardly ever): the test's error,
	 * not the run's. */
	if (atex_file_read(&text, &len, path)) {
		*err = atex_sprintf("%s: %s", shown_name, atex_error_last());
		rc = *err ? 0 : ATEX_ENOMEM;
		goto out;
	}
	if (!strcmp(file, "results.json")) {
		*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
		if (!*out)
			*err = atex_sprintf("%s:%d: %s", shown_name, je.line,
					    je.text);
	} else if (atex_yaml_load(out, text, len, shown_name, marks)) {
		*err = atex_strdup(atex_error_last());
	}
	if (*out && !json_is_array(*out) && !json_is_null(*out)) {
		json_decref(*out);
		*out = NULL;
		*err = atex_sprintf("%s: not a list of results", shown_name);
	}
	if (!*out && !*err)
		rc = ATEX_ENOMEM;
out:
	free(text);
	free(shown_name);
	free(path);
	free(rel);
	return rc;
}

/*
 * One log `l` of a custom result copied (from `fd`) to `to`: 1 when it
 * was, 0 when it could not be (a clash with another result's files, a
 * path the file system refuses): the result keeps its status and says
 * so in its note, never lost for its log.
 */
static int custom_log(atex_reporter *r, json_t *res, int fd, const char *l,
		      const char *to)
{
	char *why = clash(r, result_name(res), to), *msg;
	char buf[SHOWN_MAX];
	int rc = 0;

	if (!why) {
		rc = copy_to(r, fd, to);
		if (!rc)
			return record_file(r, result_name(res), to) ?: 1;
		if (rc != ATEX_EIO)
			return rc;
		/* files/..., not where this run's artifacts happen to be. */
		const char *e = atex_error_last();
		size_t n = strlen(r->files_dir) - strlen("files");

		why = atex_strdup(strncmp(e, r->files_dir, n) ? e : e + n);
		if (!why)
			return ATEX_ENOMEM;
		remove_file(r, to);
	}
	msg = atex_sprintf("log '%s' could not be stored: %s", shown(buf, l),
			   why);
	free(why);
	rc = msg ? add_note(res, msg) : ATEX_ENOMEM;
	free(msg);
	return rc;
}

/* A custom result's logs copied from data/ to under its name; the ones
 * not there are dropped with a note. */
static int custom_logs(atex_reporter *r, json_t *res)
{
	json_t *files = json_object_get(res, "files"), *kept = json_array();
	const char *name = result_name(res);
	json_t *v;
	size_t i;
	int rc = kept ? 0 : ATEX_ENOMEM;

	json_array_foreach(files, i, v)
	{
		const char *l = json_string_value(v);
		char *from = atex_sprintf(DATA_PREFIX "%s", l);
		char *to = relative_path(name, l);
		char *path = from ? atex_path_join(r->files_dir, from) : NULL;
		char *msg;
		int fd;

		if (rc || !to || !path) {
			keep(&rc, ATEX_ENOMEM);
		} else if (!json_object_get(r->uploaded, from) ||
			   (fd = open(path,
				      O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			msg = atex_sprintf("log '%s' not found in "
					   "TMT_TEST_DATA",
					   l);
			rc = msg ? add_note(res, msg) : ATEX_ENOMEM;
			free(msg);
		} else {
			rc = custom_log(r, res, fd, l, to);
			close(fd);
			if (rc > 0 && json_array_append(kept, v) < 0)
				rc = ATEX_ENOMEM;
			else if (rc > 0)
				rc = 0;
		}
		free(path);
		free(to);
		free(from);
	}
	if (!rc && json_array_size(kept))
		rc = set(res, "files", kept);
	else if (!rc)
		json_object_del(res, "files");
	json_decref(kept);
	return rc;
}

/*
 * Custom mode, at the end of a test that exited: its results file read
 * into results, as tmt reads it. The named ones are written; what it
 * says of the test itself (name "/"; else the worst of them) waits in
 * custom_status/custom_note for the test's own result. A missing or
 * invalid file makes that an error naming it, and nothing else counts.
 */
static int load_custom(atex_reporter *r)
{
	const char *file = custom_file(r);
	struct atex_marks *marks = atex_marks_new();
	json_t *list = NULL, *item, *all = json_array(), *res;
	const char *worst = NULL, *own = NULL;
	char *err = NULL, *where, *own_note = NULL;
	size_t i;
	int rc = marks && all ? 0 : ATEX_ENOMEM;

	if (!rc && !file)
		err = atex_strdup("custom results file not found: the test "
				  "wrote neither TMT_TEST_DATA/results.yaml "
				  "nor TMT_TEST_DATA/results.json");
	if (!rc && file)
		rc = custom_parse(r, file, &list, marks, &err);
	if (!rc && !err && json_array_size(list) == 0)
		err = atex_strdup("no custom results were provided");
	json_array_foreach(list, i, item)
	{
		char shown_name[64];

		if (rc || err)
			break;
		snprintf(shown_name, sizeof(shown_name), "TMT_TEST_DATA/%s",
			 file);
		where = custom_where(shown_name, marks, item, i);
		rc = where ? custom_one(r, item, where, NULL, &res, &err)
			   : ATEX_ENOMEM;
		if (!rc && res &&
		    (rc = custom_times_of(r, item, res, where, shown_name,
					  marks)))
			json_decref(res);
		else if (!rc && res && json_array_append_new(all, res) < 0)
			rc = ATEX_ENOMEM;
		if (!rc && res)
			rc = custom_subresults(r, item, res, where, shown_name,
					       marks, all, &err);
		free(where);
	}
	if (!rc && err)
		rc = custom_error(r, err);
	else
		free(err);
	json_array_foreach(all, i, res)
	{
		const char *status =
			json_string_value(json_object_get(res, "status"));

		if (rc || r->custom_status)
			break;
		worst = worse(worst, status);
		if (!result_name(res)) {
			own = status;
			own_note = (char *)json_string_value(
				json_object_get(res, "note"));
			continue;
		}
		rc = custom_logs(r, res);
		if (!rc)
			rc = close_result(r, res);
	}
	if (!rc && !r->custom_status) {
		r->custom_status = atex_strdup(own ? own : worst);
		r->custom_note = own_note ? atex_strdup(own_note) : NULL;
		if (!r->custom_status || (own_note && !r->custom_note))
			rc = ATEX_ENOMEM;
	}
	json_decref(all);
	json_decref(list);
	atex_marks_free(marks);
	return rc;
}

/* load_custom, whose failure (the results not all written: a full disk)
 * is the test's error, never a verdict from its exit code. */
static int custom_or_error(atex_reporter *r)
{
	int rc = load_custom(r);

	if (rc)
		keep(&rc, custom_error(r, atex_sprintf("custom results could "
						       "not all be stored: %s",
						       atex_error_last())));
	return rc;
}

/* ---- the API ---- */

int atex_reporter_new(atex_reporter **out, const char *artifacts_dir)
{
	atex_reporter *r = NULL;
	char *dir = NULL;
	int fd, rc = 0;

	*out = NULL;
	if (!artifacts_dir || !*artifacts_dir)
		return atex_error_set(ATEX_EINVAL,
				      "reporter: no artifacts directory");
	r = atex_calloc(1, sizeof(*r));
	if (!r)
		return ATEX_ENOMEM;
	r->results_fd = r->cur_fd = -1;
	dir = atex_strdup(artifacts_dir);
	r->files_dir = atex_path_join(artifacts_dir, "files");
	r->results_path = atex_path_join(artifacts_dir, "results");
	r->output_path = atex_path_join(artifacts_dir, "output.raw");
	r->uploaded = json_object();
	r->testouts = json_object();
	r->dirs = json_object();
	r->open = json_object();
	r->limit = DEFAULT_MEMORY_LIMIT;
	if (!dir || !r->files_dir || !r->results_path || !r->output_path ||
	    !r->uploaded || !r->testouts || !r->dirs || !r->open) {
		rc = atex_error_oom();
		goto out;
	}
	rc = make_parents(dir, 0);
	if (!rc)
		rc = make_dir(dir);
	if (!rc)
		rc = make_dir(r->files_dir);
	if (rc)
		goto out;
	r->results_fd =
		open(r->results_path,
		     O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (r->results_fd < 0) {
		rc = sys_error("cannot create", r->results_path);
		goto out;
	}
	/* Room for the result lines set aside now, past the end of the
	 * file: when the test fills the disk with its files, what it
	 * reported is still written, and says why its files are missing.
	 * Best effort (not every file system can). */
	if (fallocate(r->results_fd, FALLOC_FL_KEEP_SIZE, 0, RESULTS_RESERVE) <
	    0)
		atex_debug(COMPONENT, "%s: no room set aside: %s",
			   r->results_path, strerror(errno));
	/* Emptied too: the output of an earlier run is not this one's. */
	fd = open(r->output_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		  0644);
	if (fd < 0) {
		rc = sys_error("cannot create", r->output_path);
		goto out;
	}
	close(fd);
	*out = r;
	r = NULL;
out:
	free(dir);
	atex_reporter_free(r);
	return rc;
}

void atex_reporter_set_memory_limit(atex_reporter *r, size_t bytes)
{
	r->limit = bytes ? bytes : DEFAULT_MEMORY_LIMIT;
}

void atex_reporter_set_compat_python_atex(atex_reporter *r, bool on)
{
	r->compat = on;
}

void atex_reporter_set_interpret(atex_reporter *r,
				 enum atex_result_interpret how)
{
	r->interpret = how;
}

size_t atex_reporter_held(const atex_reporter *r)
{
	return r->held;
}

const char *atex_reporter_output_path(const atex_reporter *r)
{
	return r->output_path;
}

/* Whether an event may come now: before finish, and inside a result or
 * not as `in_result` says. */
static int check_event(atex_reporter *r, bool in_result, const char *event)
{
	if (r->finished)
		return atex_error_set(ATEX_EINVAL, "reporter: %s after finish",
				      event);
	if (in_result && !r->cur)
		return atex_error_set(ATEX_EINVAL,
				      "reporter: %s outside a result", event);
	if (!in_result && r->cur)
		return atex_error_set(ATEX_EINVAL,
				      "reporter: %s before the end of the "
				      "previous result",
				      event);
	return 0;
}

int atex_reporter_result_begin(void *reporter, json_t *result)
{
	atex_reporter *r = reporter;
	bool partial = false;
	int rc;

	rc = check_event(r, false, "result");
	if (!rc) {
		r->cur_reported =
			json_is_true(json_object_get(result, REPORTED_KEY));
		json_object_del(result, REPORTED_KEY);
		rc = normalize(result, &partial);
	}
	if (!rc)
		rc = check_testout(r, result, result_name(result));
	if (rc) {
		json_decref(result);
		return rc;
	}
	r->cur = result;
	r->cur_partial = partial;
	r->cur_fresh = fresh_data_files(r, result);
	rc = prepare_files(r, result, result_name(result));
	if (rc)
		drop_current(r);
	return rc;
}

int atex_reporter_file_data(void *reporter, size_t index, const void *data,
			    size_t len)
{
	atex_reporter *r = reporter;
	int rc = check_event(r, true, "file data");

	if (rc)
		return rc;
	if (index >= r->cur_npaths)
		return atex_error_set(ATEX_EINVAL,
				      "reporter: file data for file %zu of a "
				      "result with %zu",
				      index, r->cur_npaths);
	/* One descriptor kept across the pieces of a file: the parser hands
	 * them over as they arrive, often a few KiB at a time. */
	if (r->cur_fd < 0 || r->cur_fd_index != index) {
		close_cur_fd(r);
		r->cur_fd = open(r->cur_paths[index],
				 O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
		if (r->cur_fd < 0)
			return sys_error("cannot open", r->cur_paths[index]);
		r->cur_fd_index = index;
	}
	return write_all(r->cur_fd, data, len, r->cur_paths[index]);
}

int atex_reporter_result_end(void *reporter)
{
	atex_reporter *r = reporter;
	json_t *result, *fresh;
	bool empty;
	int rc = check_event(r, true, "result end");

	if (rc)
		return rc;
	result = r->cur;
	r->cur = NULL;
	fresh = r->cur_fresh;
	r->cur_fresh = NULL;
	drop_current(r);
	empty = drop_data_copies(r, result, fresh);
	json_decref(fresh);
	if (r->cur_reported && result_name(result)) {
		const char *status =
			json_string_value(json_object_get(result, "status"));

		r->reported = worse(r->reported, status ? status : "error");
	}
	if (empty && r->cur_partial) {
		json_decref(result);
		return 0;
	}
	return accept_result(r, result, r->cur_partial);
}

int atex_reporter_finish(atex_reporter *r,
			 const struct atex_test_outcome *outcome)
{
	bool want_self, self_done = false;
	const char *key;
	json_t *o, *extra;
	int rc = 0;

	if (!outcome)
		return atex_error_set(ATEX_EINVAL, "reporter: no outcome");
	if (r->finished)
		return atex_error_set(ATEX_EINVAL,
				      "reporter: finished already");
	r->finished = true;
	if (r->cur)
		atex_debug(COMPONENT, "%s: a result ended before its files",
			   r->results_path);
	drop_current(r);
	if (r->interpret == ATEX_RESULT_CUSTOM &&
	    outcome->end == ATEX_TEST_EXITED)
		keep(&rc, custom_or_error(r));

	/* What a killed test closed for itself, settled; then what it
	 * left open. */
	extra = late_own_files(r);
	keep(&rc, rewrite_own(r, outcome, extra));
	if (extra && !rc)
		json_object_del(r->open, "");
	/* A channel error is worth its own result even after the test's:
	 * the test could not report all it meant to. */
	want_self = !r->self_closed ||
		    (!r->compat && outcome->end == ATEX_TEST_CHANNEL_ERROR);
	json_object_foreach(r->open, key, o)
	{
		if (!*key && want_self) {
			keep(&rc, apply_fallback(r, o, outcome));
			self_done = true;
		} else if (!*key && kill_overrides(r, outcome->end)) {
			keep(&rc, settle_own(r, o, outcome));
		}
		keep(&rc, close_result(r, o));
	}
	json_object_clear(r->open);
	r->held = 0;
	if (want_self && !self_done)
		keep(&rc, add_fallback(r, outcome));
	keep(&rc, copy_output(r));
	return rc;
}

size_t atex_reporter_count(const atex_reporter *r)
{
	return r->count;
}

bool atex_reporter_failing(const atex_reporter *r)
{
	return r->failing;
}

void atex_reporter_free(atex_reporter *r)
{
	if (!r)
		return;
	drop_current(r);
	json_decref(r->open);
	if (r->results_fd >= 0) {
		struct stat st;

		/* The room set aside and not used goes back (a kept
		 * artifacts directory must not hold it): a truncation to
		 * the file's own size frees the blocks past its end. */
		if (fstat(r->results_fd, &st) == 0 &&
		    ftruncate(r->results_fd, st.st_size) < 0)
			atex_debug(COMPONENT, "%s: room set aside kept: %s",
				   r->results_path, strerror(errno));
		close(r->results_fd);
	}
	json_decref(r->uploaded);
	json_decref(r->testouts);
	json_decref(r->dirs);
	free(r->custom_status);
	free(r->custom_note);
	free(r->files_dir);
	free(r->results_path);
	free(r->output_path);
	free(r);
}
