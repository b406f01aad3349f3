/*
 * results.c - a results file loaded into memory (atex/report.h): JSON
 * Lines from the JSON Lines aggregator, plain, gzip or xz, with the
 * earlier attempts from old/ next to it, or the SQLite aggregator's
 * database.
 *
 * How it is built, and why:
 *
 *  - A compressed file is inflated whole into memory, then split into
 *    lines like a plain one. A results set is held in memory anyway, and
 *    one code path for the lines keeps the line numbers of messages the
 *    same whatever the compression.
 *  - A run killed while writing leaves a file cut short: a compressed
 *    stream without its end, a last line without its newline. That is
 *    what a report of a crashed run looks like, not an error: what is
 *    whole is kept and a warning names the file. A whole line that is not
 *    a result (a damaged file) does not cost the others: it becomes an
 *    "error" result of its own, named by file:line, with a warning, and
 *    atex_results_damaged() counts it so that a caller can say the input
 *    was damaged. A file that is not results at all (no line of it is
 *    one) is an error.
 *  - The format comes from the name's suffix; a name we do not know is
 *    sniffed by its magic bytes (gzip, xz, SQLite), else read as JSON
 *    Lines, so a renamed file still loads.
 *  - files_dir is made absolute at load time: the HTML renderer computes
 *    links relative to wherever the page goes, which needs both ends
 *    absolute, and a caller gets a path that does not depend on the
 *    working directory staying the same.
 *  - JSON Lines have no attempt numbers: they are counted here. The lines
 *    of one ingest are contiguous (the aggregator writes them with one
 *    write), so an earlier attempt is a run of lines of the same platform
 *    and test; a second run of the same test right after the first is
 *    told apart by a subtest (or the test's own result) repeating.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lzma.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "report/report_private.h"

/* Input is read and decompressed in pieces of this size. */
#define CHUNK 65536

/* ------------------------------------------------------------------------
 * The results set.
 */

/* An empty result: no strings, timings unknown. */
static void result_init(struct atex_result *res)
{
	memset(res, 0, sizeof(*res));
	res->duration = -1;
	res->exit_code = -1;
}

static void result_clear(struct atex_result *res)
{
	free((char *)res->start);
	free((char *)res->end);
	free((char *)res->system);
	free((char *)res->platform);
	free((char *)res->status);
	free((char *)res->test);
	free((char *)res->subtest);
	free((char *)res->note);
	for (size_t i = 0; i < res->n_files; i++)
		free((char *)res->files[i]);
	free((char **)res->files);
	free((char *)res->files_dir);
	memset(res, 0, sizeof(*res));
}

void atex_results_free(atex_results *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		result_clear(&r->items[i]);
	free(r->items);
	report_run_clear(&r->run);
	free(r);
}

size_t atex_results_damaged(const atex_results *r)
{
	return r ? r->damaged : 0;
}

size_t atex_results_count(const atex_results *r)
{
	return r ? r->n : 0;
}

const struct atex_result *atex_results_get(const atex_results *r, size_t i)
{
	if (!r || i >= r->n)
		return NULL;
	return &r->items[i];
}

bool atex_results_passed(const atex_results *r)
{
	if (!r)
		return false;
	for (size_t i = 0; r && i < r->n; i++)
		if (r->items[i].final && !report_status_ok(r->items[i].status))
			return false;
	return true;
}

/* Moves `res` (all of its strings) into the set; on failure it is
 * cleared. Returns 0 or ATEX_ENOMEM. */
static int results_push(atex_results *r, struct atex_result *res)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct atex_result *items =
			realloc(r->items, cap * sizeof(*items));

		if (!items) {
			result_clear(res);
			return atex_error_oom();
		}
		r->items = items;
		r->cap = cap;
	}
	r->items[r->n++] = *res;
	memset(res, 0, sizeof(*res));
	return 0;
}

/* FILES/<platform>/<test without its leading slashes>[/<subtest>]. */
static char *make_files_dir(const char *files, const char *platform,
			    const char *test, const char *subtest)
{
	while (*test == '/')
		test++;
	if (subtest)
		return atex_sprintf("%s/%s/%s/%s", files, platform, test,
				    subtest);
	return atex_sprintf("%s/%s/%s", files, platform, test);
}

/*
 * The files folder of an earlier attempt. `atex run` keeps each attempt's
 * files apart (the JSON Lines aggregator's attempt_dirs):
 * OLD_FILES/<attempt>/<platform>/<test>[/<subtest>]; a plain aggregator
 * puts them in OLD_FILES/<platform>/... Replaces res->files_dir.
 */
static int set_earlier_files_dir(struct atex_result *res, const char *old_files)
{
	char *numbered = atex_sprintf("%s/%u", old_files, res->attempt);
	char *probe = numbered ? atex_path_join(numbered, res->platform) : NULL;
	char *dir = NULL;

	if (probe)
		dir = make_files_dir(atex_path_is_dir(probe) ? numbered
							     : old_files,
				     res->platform, res->test, res->subtest);
	free(probe);
	free(numbered);
	if (!dir)
		return atex_error_oom();
	free((char *)res->files_dir);
	res->files_dir = dir;
	return 0;
}

/* ------------------------------------------------------------------------
 * Reading and decompressing into memory.
 */

/* A decompressor fed the file piece by piece (feed_plain copies). */
struct decoder {
	const char *path;
	bool truncated; /* the stream ended before its end marker */
	/* Takes `len` bytes (0 with `eof` at the end); returns 0 or an error
	 * code with the message set. */
	int (*feed)(struct decoder *d, struct atex_buf *out, const uint8_t *in,
		    size_t len, bool eof);
	z_stream z;
	bool z_init, z_ended;
	lzma_stream x;
	bool x_init, x_ended;
};

static int feed_plain(struct decoder *d, struct atex_buf *out,
		      const uint8_t *in, size_t len, bool eof)
{
	return atex_buf_put(out, in, len);
}

static int feed_gzip(struct decoder *d, struct atex_buf *out, const uint8_t *in,
		     size_t len, bool eof)
{
	int zrc;

	d->z.next_in = (Bytef *)in;
	d->z.avail_in = (uInt)len;
	for (;;) {
		if (d->z_ended) {
			if (d->z.avail_in == 0)
				return 0;
			/* Another member follows (a concatenated .gz). */
			if (inflateReset(&d->z) != Z_OK)
				return atex_error_set(ATEX_EFORMAT,
						      "%s: gzip: cannot reset",
						      d->path);
			d->z_ended = false;
		}
		if (d->z.avail_in == 0 && !eof)
			return 0;
		if (atex_buf_grow(out, CHUNK) < 0)
			return ATEX_ENOMEM;
		d->z.next_out = (Bytef *)out->ptr + out->len;
		d->z.avail_out = (uInt)(out->cap - out->len - 1);
		uInt room = d->z.avail_out;
		zrc = inflate(&d->z, Z_NO_FLUSH);
		out->len += room - d->z.avail_out;
		out->ptr[out->len] = '\0';
		if (zrc == Z_STREAM_END) {
			d->z_ended = true;
			continue;
		}
		if (zrc == Z_OK)
			continue;
		if (zrc == Z_BUF_ERROR && d->z.avail_in == 0) {
			/* All input taken and no progress: at the end of the
			 * file, a stream cut short. */
			d->truncated = eof;
			return 0;
		}
		if (zrc == Z_MEM_ERROR)
			return atex_error_oom();
		return atex_error_set(ATEX_EFORMAT,
				      "%s: not valid gzip data (%s)", d->path,
				      d->z.msg ? d->z.msg : "error");
	}
}

static int feed_xz(struct decoder *d, struct atex_buf *out, const uint8_t *in,
		   size_t len, bool eof)
{
	lzma_ret xrc;

	d->x.next_in = in;
	d->x.avail_in = len;
	for (;;) {
		if (d->x_ended)
			return 0;
		if (d->x.avail_in == 0 && !eof)
			return 0;
		if (atex_buf_grow(out, CHUNK) < 0)
			return ATEX_ENOMEM;
		d->x.next_out = (uint8_t *)out->ptr + out->len;
		d->x.avail_out = out->cap - out->len - 1;
		size_t before = d->x.avail_out;
		xrc = lzma_code(&d->x, eof ? LZMA_FINISH : LZMA_RUN);
		out->len += before - d->x.avail_out;
		out->ptr[out->len] = '\0';
		if (xrc == LZMA_STREAM_END) {
			d->x_ended = true;
			continue;
		}
		if (xrc == LZMA_BUF_ERROR && eof) {
			d->truncated = true;
			return 0;
		}
		if (xrc == LZMA_OK)
			continue;
		if (xrc == LZMA_MEM_ERROR)
			return atex_error_oom();
		return atex_error_set(
			ATEX_EFORMAT,
			"%s: not valid xz data (liblzma error %d)", d->path,
			(int)xrc);
	}
}

/* Reads `path` whole into `out`, decompressed; *truncated tells a stream
 * cut short. Returns 0, ATEX_ENOTFOUND, ATEX_EIO, ATEX_EFORMAT,
 * ATEX_ENOMEM. */
int report_read_decoded(struct atex_buf *out, bool *truncated, const char *path,
			enum report_format format)
{
	struct decoder d = {.path = path, .feed = feed_plain};
	uint8_t *chunk = NULL;
	int fd = -1, rc;

	*truncated = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = atex_error_set(errno == ENOENT ? ATEX_ENOTFOUND : ATEX_EIO,
				    "%s: %s", path, strerror(errno));
		goto out;
	}
	if (format == REPORT_FORMAT_GZIP) {
		/* 32 + 15: a gzip or zlib header, the largest window. */
		if (inflateInit2(&d.z, 47) != Z_OK) {
			rc = atex_error_oom();
			goto out;
		}
		d.z_init = true;
		d.feed = feed_gzip;
	} else if (format == REPORT_FORMAT_XZ) {
		d.x = (lzma_stream)LZMA_STREAM_INIT;
		if (lzma_stream_decoder(&d.x, UINT64_MAX, LZMA_CONCATENATED) !=
		    LZMA_OK) {
			rc = atex_error_oom();
			goto out;
		}
		d.x_init = true;
		d.feed = feed_xz;
	}
	chunk = atex_malloc(CHUNK);
	if (!chunk) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = atex_error_set(ATEX_EIO, "%s: read: %s", path,
					    strerror(errno));
			goto out;
		}
		rc = d.feed(&d, out, chunk, (size_t)n, n == 0);
		if (rc < 0 || n == 0)
			break;
	}
	*truncated = d.truncated;
out:
	if (d.z_init)
		inflateEnd(&d.z);
	if (d.x_init)
		lzma_end(&d.x);
	free(chunk);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ------------------------------------------------------------------------
 * JSON Lines.
 */

/* A copy of element i of `line` when it is a string (or null with
 * `nullable`); ATEX_EFORMAT naming `what` otherwise. */
static int take_string(char **out, json_t *line, size_t i, bool nullable,
		       const char *what, const char *where)
{
	json_t *v = json_array_get(line, i);

	*out = NULL;
	if (nullable && json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return atex_error_set(ATEX_EFORMAT, "%s: %s is not a string%s",
				      where, what, nullable ? " or null" : "");
	if (!nullable && json_string_length(v) == 0)
		return atex_error_set(ATEX_EFORMAT, "%s: empty %s", where,
				      what);
	*out = atex_strndup(json_string_value(v), json_string_length(v));
	return *out ? 0 : ATEX_ENOMEM;
}

/* Fills res->files from a JSON array of names. */
static int take_files(struct atex_result *res, json_t *files, const char *where)
{
	char **names;
	size_t i;
	json_t *v;

	if (!json_is_array(files))
		return atex_error_set(ATEX_EFORMAT,
				      "%s: files are not an array", where);
	names = atex_calloc(json_array_size(files) + 1, sizeof(*names));
	if (!names)
		return ATEX_ENOMEM;
	res->files = (const char *const *)names;
	json_array_foreach(files, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0)
			return atex_error_set(
				ATEX_EFORMAT,
				"%s: file %zu is not a non-empty string", where,
				i + 1);
		names[i] = atex_strndup(json_string_value(v),
					json_string_length(v));
		if (!names[i])
			return ATEX_ENOMEM;
		res->n_files = i + 1;
	}
	return 0;
}

/* One line, [platform, status, test, subtest|null, [files], note|null],
 * into `res` (cleared on failure). `where` is "path:line". */
static int parse_line(struct atex_result *res, const char *text, size_t len,
		      const char *files, const char *where)
{
	json_error_t jerr;
	json_t *line = json_loadb(text, len, 0, &jerr);
	char *s[5] = {NULL};
	int rc;

	result_init(res);
	if (!line)
		return atex_error_set(ATEX_EFORMAT, "%s: not JSON: %s", where,
				      jerr.text);
	if (!json_is_array(line) || json_array_size(line) != 6) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s: not a result (an array of 6: "
				    "platform, status, test, subtest, files, "
				    "note)",
				    where);
		goto out;
	}
	if ((rc = take_string(&s[0], line, 0, false, "platform", where)) ||
	    (rc = take_string(&s[1], line, 1, true, "status", where)) ||
	    (rc = take_string(&s[2], line, 2, false, "test", where)) ||
	    (rc = take_string(&s[3], line, 3, true, "subtest", where)) ||
	    (rc = take_string(&s[4], line, 5, true, "note", where)))
		goto out;
	/* A null status (the strict JSON Lines aggregator's, Python ATEX's
	 * format) is a result without status: an error (PROTOCOL.md). */
	if (!s[1] && !(s[1] = atex_strdup("error"))) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	res->platform = s[0];
	res->status = s[1];
	res->test = s[2];
	res->subtest = s[3];
	res->note = s[4];
	memset(s, 0, sizeof(s));
	rc = take_files(res, json_array_get(line, 4), where);
	if (rc)
		goto out;
	res->files_dir =
		make_files_dir(files, res->platform, res->test, res->subtest);
	if (!res->files_dir)
		rc = ATEX_ENOMEM;
out:
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(s); i++)
		free(s[i]);
	if (rc)
		result_clear(res);
	json_decref(line);
	return rc;
}

/*
 * A whole line that is not a result (the error just set names it) becomes
 * an "error" result of its own, platform DAMAGED_PLATFORM, test the
 * file:line: the other results are still reported, and every output
 * shows the damage where a reader looks for failures.
 */
static int damaged_line(struct atex_result *res, const char *where,
			const char *files)
{
	char *note = atex_sprintf("damaged results file: %s; this line is "
				  "not a result and was skipped",
				  atex_error_last());

	result_init(res);
	if (!note)
		return ATEX_ENOMEM;
	atex_error_clear();
	res->platform = atex_strdup(ATEX_RESULTS_DAMAGED_PLATFORM);
	res->status = atex_strdup("error");
	res->test = atex_strdup(where);
	res->note = note;
	res->files = atex_calloc(1, sizeof(char *));
	res->files_dir =
		res->platform && res->test
			? make_files_dir(files, res->platform, res->test, NULL)
			: NULL;
	if (!res->platform || !res->status || !res->test || !res->files ||
	    !res->files_dir) {
		result_clear(res);
		return atex_error_oom();
	}
	return 0;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/*
 * Appends every result of the JSON Lines file `path` (decompressed by
 * `format`) with files under `files` and `final` set as given. Blank lines
 * are skipped; a last line without its newline is kept when it parses
 * (a file written by hand), dropped with a warning otherwise.
 *
 * A file none of whose lines is a result (another YAML, /etc/passwd,
 * random bytes) is ATEX_EFORMAT naming the file and its first bad line:
 * it is not results, and tens of thousands of "damaged" results would
 * bury that. Bad lines among results are damage: each becomes an "error"
 * result; the first MAX_DAMAGE_WARNINGS get a warning each, the rest one
 * warning with their count.
 */
#define MAX_DAMAGE_WARNINGS 10

static void warn_damage(const atex_results *r, size_t from, size_t damaged,
			const char *path)
{
	size_t warned = 0;

	for (size_t i = from; i < r->n && warned < MAX_DAMAGE_WARNINGS; i++)
		if (!strcmp(r->items[i].platform,
			    ATEX_RESULTS_DAMAGED_PLATFORM) &&
		    r->items[i].note) {
			atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT, "%s",
				 r->items[i].note);
			warned++;
		}
	if (damaged > warned)
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%zu more lines of %s are not results (each an "
			 "\"error\" result of platform %s)",
			 damaged - warned, path, ATEX_RESULTS_DAMAGED_PLATFORM);
}

static int load_jsonl(atex_results *r, const char *path,
		      enum report_format format, const char *files, bool final)
{
	struct atex_buf data = ATEX_BUF_INIT;
	bool truncated = false, cut_line = false;
	size_t lineno = 0, pos = 0, n_before = r->n, good = 0, bad = 0;
	char *where = NULL, *first_bad = NULL;
	int rc;

	rc = report_read_decoded(&data, &truncated, path, format);
	if (rc)
		goto out;
	while (pos < data.len) {
		const char *start = data.ptr + pos;
		const char *nl = memchr(start, '\n', data.len - pos);
		size_t len = nl ? (size_t)(nl - start) : data.len - pos;
		struct atex_result res;

		lineno++;
		pos += len + (nl ? 1 : 0);
		if (blank(start, len))
			continue;
		free(where);
		where = atex_sprintf("%s:%zu", path, lineno);
		if (!where) {
			rc = ATEX_ENOMEM;
			goto out;
		}
		rc = parse_line(&res, start, len, files, where);
		if (rc == ATEX_EFORMAT && !nl) {
			/* The last line, cut short by a killed run. */
			atex_error_clear();
			cut_line = true;
			rc = 0;
			break;
		}
		if (rc == ATEX_EFORMAT) {
			if (!first_bad &&
			    !(first_bad = atex_strdup(atex_error_last()))) {
				rc = ATEX_ENOMEM;
				goto out;
			}
			rc = damaged_line(&res, where, files);
			bad += rc ? 0 : 1;
		} else if (!rc)
			good++;
		if (rc)
			goto out;
		res.final = final;
		rc = results_push(r, &res);
		if (rc)
			goto out;
	}
	if (bad && !good) {
		while (r->n > n_before)
			result_clear(&r->items[--r->n]);
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s: not a results file (no line of it is "
				    "a result): %s",
				    path, first_bad);
		goto out;
	}
	r->damaged += bad;
	if (bad)
		warn_damage(r, n_before, bad, path);
	if (truncated || cut_line)
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s: %s (a killed run?); reporting the %zu "
			 "complete results",
			 path,
			 truncated ? "the compressed stream ends early"
				   : "the last line is cut short",
			 r->n - n_before);
out:
	free(where);
	free(first_bad);
	atex_buf_free(&data);
	return rc;
}

static bool same(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* "platform\xfftest": a key of `seen` (0xff is never in UTF-8). */
static char *test_key(const struct atex_result *res)
{
	return atex_sprintf("%s\xff%s", res->platform, res->test);
}

/* seen[key] + 1 (1 when absent), recorded as the new seen[key] when
 * `record`. Returns 0 on ATEX_ENOMEM. */
static unsigned int next_attempt(json_t *seen, const struct atex_result *res,
				 bool record)
{
	char *key = test_key(res);
	unsigned int attempt;

	if (!key)
		return 0;
	attempt = (unsigned int)json_integer_value(json_object_get(seen, key)) +
		  1;
	if (record &&
	    json_object_set_new_nocheck(seen, key, json_integer(attempt)) < 0)
		attempt = 0;
	free(key);
	return attempt;
}

/*
 * Numbers the attempts of JSON Lines results: the earlier ones (from
 * index `first_earlier` on) 1, 2... per platform and test in file order,
 * the final ones one more than their test's earlier attempts.
 */
static int number_attempts(atex_results *r, size_t first_earlier)
{
	json_t *seen = json_object();
	size_t i, group = first_earlier;
	unsigned int attempt = 0;
	int rc = 0;

	if (!seen)
		return atex_error_oom();
	for (i = first_earlier; i < r->n; i++) {
		struct atex_result *res = &r->items[i];
		bool repeat = true;

		if (i > first_earlier &&
		    same(res->platform, r->items[i - 1].platform) &&
		    same(res->test, r->items[i - 1].test)) {
			/* The same ingest, unless a result repeats. */
			repeat = false;
			for (size_t j = group; j < i && !repeat; j++)
				repeat =
					same(r->items[j].subtest, res->subtest);
		}
		if (repeat) {
			group = i;
			attempt = next_attempt(seen, res, true);
			if (!attempt) {
				rc = atex_error_oom();
				goto out;
			}
		}
		res->attempt = attempt;
	}
	for (i = 0; i < first_earlier; i++) {
		r->items[i].attempt = next_attempt(seen, &r->items[i], false);
		if (!r->items[i].attempt) {
			rc = atex_error_oom();
			goto out;
		}
	}
out:
	json_decref(seen);
	return rc;
}

char *report_find_jsonl(const char *dir, const char *stem,
			enum report_format format, int *rc)
{
	static const struct {
		const char *suffix;
		enum report_format format;
	} kinds[] = {
		{".jsonl", REPORT_FORMAT_JSONL},
		{".jsonl.gz", REPORT_FORMAT_GZIP},
		{".jsonl.xz", REPORT_FORMAT_XZ},
	};

	*rc = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < ATEX_ARRAY_SIZE(kinds); i++) {
			char *p, *name;

			if ((pass == 0) != (kinds[i].format == format))
				continue;
			name = atex_sprintf("%s%s", stem, kinds[i].suffix);
			p = name ? atex_path_join(dir, name) : NULL;
			free(name);
			if (!p) {
				*rc = ATEX_ENOMEM;
				return NULL;
			}
			if (atex_path_exists(p))
				return p;
			free(p);
		}
	return NULL;
}

enum report_format report_format_of_name(const char *name)
{
	size_t len = strlen(name);

	if (len > 3 && !strcmp(name + len - 3, ".gz"))
		return REPORT_FORMAT_GZIP;
	if (len > 3 && !strcmp(name + len - 3, ".xz"))
		return REPORT_FORMAT_XZ;
	return REPORT_FORMAT_JSONL;
}

static int load_jsonl_all(atex_results *r, const char *path, const char *dir,
			  enum report_format format)
{
	char *files = NULL, *old_dir = NULL, *old_files = NULL, *old = NULL;
	size_t n_final;
	int rc;

	files = atex_path_join(dir, "files");
	old_dir = atex_path_join(dir, "old");
	old_files = old_dir ? atex_path_join(old_dir, "files") : NULL;
	if (!files || !old_dir || !old_files) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	rc = load_jsonl(r, path, format, files, true);
	if (rc)
		goto out;
	n_final = r->n;
	old = report_find_jsonl(old_dir, "results", format, &rc);
	if (rc)
		goto out;
	if (old) {
		rc = load_jsonl(r, old, report_format_of_name(old), old_files,
				false);
		if (rc)
			goto out;
	}
	rc = number_attempts(r, n_final);
	for (size_t i = n_final; !rc && i < r->n; i++)
		rc = set_earlier_files_dir(&r->items[i], old_files);
	/* Run metadata first: whether a sidecar is missing depends on it. */
	if (!rc)
		rc = report_load_run_json(r, dir);
	if (!rc)
		rc = report_load_timings(r, dir, format, n_final);
out:
	free(files);
	free(old_dir);
	free(old_files);
	free(old);
	return rc;
}

/* ------------------------------------------------------------------------
 * SQLite.
 */

static char *column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	if (!v)
		return NULL;
	return atex_strndup((const char *)v,
			    (size_t)sqlite3_column_bytes(st, col));
}

/* Damaged values of one database: warned about, up to a limit. */
#define MAX_VALUE_WARNINGS 10

struct damage {
	const char *path;
	size_t count;
};

/* A warning that column `col` of the row (`column` its name) is not
 * `what`: its value is unknown. */
static void bad_value(struct damage *d, const struct atex_result *res,
		      sqlite3_stmt *st, int col, const char *column,
		      const char *what)
{
	struct atex_buf v = ATEX_BUF_INIT;
	const char *text = (const char *)sqlite3_column_text(st, col);

	if (d->count++ >= MAX_VALUE_WARNINGS)
		return;
	/* The value as a person can read it, cut short. */
	atex_buf_put_printable(&v, text ? text : "");
	atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
		 "%s: table results, row %lld (test %s, attempt %u): \"%s\" "
		 "is not %s ('%.40s%s'); taken as unknown",
		 d->path, (long long)sqlite3_column_int64(st, 0), res->test,
		 res->attempt, column, what, v.ptr ? v.ptr : "",
		 v.len > 40 ? "..." : "");
	atex_buf_free(&v);
}

/* Text column `col` as a time (NULL: unknown, or damaged: warned). */
static int time_column(const char **out, struct damage *d,
		       const struct atex_result *res, sqlite3_stmt *st, int col,
		       const char *column)
{
	const char *v = (const char *)sqlite3_column_text(st, col);

	*out = NULL;
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return 0;
	if (sqlite3_column_type(st, col) != SQLITE_TEXT ||
	    !atex_iso_time_ok(v)) {
		if (!v &&
		    sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM)
			return atex_error_oom();
		bad_value(d, res, st, col, column, "an ISO 8601 time");
		return 0;
	}
	*out = atex_strdup(v);
	return *out ? 0 : ATEX_ENOMEM;
}

/* The attempt's timings (columns 9 to 13: started, ended, duration,
 * system, exit_code; NULL when unknown). A value of the wrong type or
 * out of range is damage: a warning, and unknown. */
static int sqlite_timings(struct atex_result *res, sqlite3_stmt *st,
			  struct damage *d)
{
	int type = sqlite3_column_type(st, 11);

	if (time_column(&res->start, d, res, st, 9, "started") ||
	    time_column(&res->end, d, res, st, 10, "ended"))
		return ATEX_ENOMEM;
	res->system = column_dup(st, 12);
	if (!res->system && sqlite3_column_type(st, 12) != SQLITE_NULL)
		return atex_error_oom();
	if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
		double v = sqlite3_column_double(st, 11);

		res->duration = v >= 0 && v <= REPORT_MAX_DURATION ? v : -1;
	}
	if (type != SQLITE_NULL && res->duration < 0)
		bad_value(d, res, st, 11, "duration", "a number of seconds");
	type = sqlite3_column_type(st, 13);
	if (type == SQLITE_INTEGER &&
	    sqlite3_column_int64(st, 13) == sqlite3_column_int(st, 13)) {
		res->exit_code = sqlite3_column_int(st, 13);
		res->has_exit_code = true;
	} else if (type != SQLITE_NULL) {
		bad_value(d, res, st, 13, "exit_code", "an integer");
	}
	return 0;
}

/* One row into `res`; `where` is "path: row N". */
static int sqlite_row(struct atex_result *res, sqlite3_stmt *st,
		      const char *files, const char *old_files,
		      const char *where, struct damage *d)
{
	static const char *const names[] = {"platform", "status", "test"};
	json_error_t jerr;
	json_t *list = NULL;
	char *s[3];
	int rc = 0;

	result_init(res);
	for (int i = 0; i < 3; i++) {
		if (sqlite3_column_type(st, i + 1) == SQLITE_NULL ||
		    sqlite3_column_bytes(st, i + 1) == 0)
			return atex_error_set(ATEX_EFORMAT, "%s: empty %s",
					      where, names[i]);
	}
	for (int i = 0; i < 3; i++)
		s[i] = column_dup(st, i + 1);
	res->platform = s[0];
	res->status = s[1];
	res->test = s[2];
	res->subtest = column_dup(st, 4);
	res->note = column_dup(st, 5);
	if (!res->platform || !res->status || !res->test ||
	    (!res->subtest && sqlite3_column_type(st, 4) != SQLITE_NULL) ||
	    (!res->note && sqlite3_column_type(st, 5) != SQLITE_NULL)) {
		rc = atex_error_oom();
		goto out;
	}
	list = json_loads(sqlite3_column_text(st, 6)
				  ? (const char *)sqlite3_column_text(st, 6)
				  : "",
			  0, &jerr);
	if (!list) {
		rc = atex_error_set(ATEX_EFORMAT, "%s: files: not JSON: %s",
				    where, jerr.text);
		goto out;
	}
	rc = take_files(res, list, where);
	if (rc)
		goto out;
	res->attempt = (unsigned int)sqlite3_column_int64(st, 7);
	res->final = sqlite3_column_int64(st, 8) != 0;
	rc = sqlite_timings(res, st, d);
	if (rc)
		goto out;
	res->files_dir =
		make_files_dir(files, res->platform, res->test, res->subtest);
	if (!res->files_dir)
		rc = ATEX_ENOMEM;
	else if (!res->final)
		rc = set_earlier_files_dir(res, old_files);
out:
	json_decref(list);
	if (rc)
		result_clear(res);
	return rc;
}

static int load_sqlite(atex_results *r, const char *path, const char *dir)
{
	/* A database from before issue 14 has no timing columns: NULLs. */
	static const char query[] =
		"SELECT id, platform, status, test, subtest, note, files, "
		"attempt, final, started, ended, duration, system, exit_code "
		"FROM results ORDER BY final DESC, id";
	static const char query_old[] =
		"SELECT id, platform, status, test, subtest, note, files, "
		"attempt, final, NULL, NULL, NULL, NULL, NULL "
		"FROM results ORDER BY final DESC, id";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *files = NULL, *old_files = NULL, *where = NULL;
	struct damage damage = {path, 0};
	int rc = 0, src;

	files = atex_path_join(dir, "files");
	old_files = atex_path_join(dir, "old/files");
	if (!files || !old_files) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	rc = atex_sqlite_open_read(&db, path);
	if (rc)
		goto out;
	/* The aggregator of a running run may be in a transaction. */
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_prepare_v2(db, query, -1, &st, NULL) != SQLITE_OK &&
	    sqlite3_prepare_v2(db, query_old, -1, &st, NULL) != SQLITE_OK) {
		rc = atex_error_set(ATEX_EFORMAT,
				    "%s: not a results database: %s", path,
				    sqlite3_errmsg(db));
		goto out;
	}
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		struct atex_result res;

		free(where);
		where = atex_sprintf("%s: row %lld", path,
				     (long long)sqlite3_column_int64(st, 0));
		if (!where) {
			rc = ATEX_ENOMEM;
			goto out;
		}
		rc = sqlite_row(&res, st, files, old_files, where, &damage);
		if (!rc)
			rc = results_push(r, &res);
		if (rc)
			goto out;
	}
	if (src != SQLITE_DONE) {
		rc = atex_error_set(ATEX_EIO, "%s: %s", path,
				    sqlite3_errmsg(db));
		goto out;
	}
	if (damage.count > MAX_VALUE_WARNINGS)
		atex_log(ATEX_LOG_WARNING, REPORT_COMPONENT,
			 "%s: %zu more damaged values in table results", path,
			 damage.count - MAX_VALUE_WARNINGS);
	/* The run's metadata: its table, else a run.json next to it. */
	rc = report_load_run_table(r, db, path);
	if (rc == 0)
		rc = report_load_run_json(r, dir);
	else if (rc == 1)
		rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(files);
	free(old_files);
	free(where);
	return rc;
}

/* ------------------------------------------------------------------------
 * Loading.
 */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* The format of `path` from its name, else its first bytes. */
static enum report_format detect_format(const char *path)
{
	static const unsigned char xz_magic[] = {0xfd, '7', 'z', 'X', 'Z', 0};
	unsigned char head[16] = {0};
	ssize_t n = 0;
	int fd;

	if (has_suffix(path, ".jsonl"))
		return REPORT_FORMAT_JSONL;
	if (has_suffix(path, ".gz"))
		return REPORT_FORMAT_GZIP;
	if (has_suffix(path, ".xz"))
		return REPORT_FORMAT_XZ;
	if (has_suffix(path, ".sqlite") || has_suffix(path, ".db"))
		return REPORT_FORMAT_SQLITE;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, head, sizeof(head));
		close(fd);
	}
	if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b)
		return REPORT_FORMAT_GZIP;
	if (n >= 6 && !memcmp(head, xz_magic, 6))
		return REPORT_FORMAT_XZ;
	if (n >= 16 && !memcmp(head, "SQLite format 3", 16))
		return REPORT_FORMAT_SQLITE;
	return REPORT_FORMAT_JSONL;
}

int atex_results_load(atex_results **out, const char *path)
{
	atex_results *r = NULL;
	char *abs = NULL, *dir = NULL;
	struct stat st;
	int rc;

	if (!out || !path)
		return atex_error_set(ATEX_EINVAL, "results: %s is NULL",
				      out ? "path" : "out");
	*out = NULL;
	if (stat(path, &st) < 0)
		return atex_error_set(errno == ENOENT ? ATEX_ENOTFOUND
						      : ATEX_EIO,
				      "%s: %s", path, strerror(errno));
	/* A results folder of `atex run` stands for its results file. */
	if (S_ISDIR(st.st_mode)) {
		rc = report_results_in_dir(&dir, path);
		if (!rc)
			rc = atex_results_load(out, dir);
		free(dir);
		return rc;
	}
	r = atex_calloc(1, sizeof(*r));
	abs = atex_path_abspath(path);
	if (!r || !abs) {
		rc = atex_error_last_code() ? atex_error_last_code()
					    : ATEX_ENOMEM;
		goto out;
	}
	dir = atex_strndup(abs, (size_t)(atex_path_basename(abs) - abs));
	if (!dir) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	enum report_format format = detect_format(path);
	if (format == REPORT_FORMAT_SQLITE)
		rc = load_sqlite(r, path, dir);
	else
		rc = load_jsonl_all(r, path, dir, format);
	if (rc)
		goto out;
	*out = r;
	r = NULL;
out:
	atex_results_free(r);
	free(abs);
	free(dir);
	return rc;
}
