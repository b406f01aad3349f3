/*
 * jsonl.c - the JSON Lines aggregator (docs/PROTOCOL.md section 5): one
 * line per result, plain, gzip (zlib) or xz (liblzma).
 *
 * How it is built, and why:
 *
 *  - A run may be killed at any moment, and what it leaves must read
 *    back. So every ingest ends in one write(2) of whole lines on an
 *    O_APPEND descriptor, and a failed write is cut back off the file
 *    (atex_ingest_write): a reader sees whole tests or nothing of them.
 *    The one exception is SIGKILL, which the kernel lets cut a write(2)
 *    at a page boundary: the ingest in flight may end in a torn line,
 *    which readers skip as damaged.
 *  - Compressed output keeps one stream for the whole run and flushes it
 *    to a decodable point after every ingest: Z_SYNC_FLUSH for gzip,
 *    LZMA_SYNC_FLUSH for xz. Both keep the dictionary, so small ingests
 *    still compress well. (LZMA_FULL_FLUSH, which closes an xz block per
 *    ingest, was measured: a block starts with an empty dictionary, and
 *    the file came out 12 times larger and 3 times slower to write.) A
 *    killed run leaves a stream without its end: decoders (zlib,
 *    liblzma, gzip -dc, xz -dc) complain about that, but give every line
 *    up to the last completed ingest. stop() finishes the stream.
 *  - xz uses preset 1 (a 1 MiB dictionary, 9 MiB of encoder memory):
 *    larger presets compressed results no better and wrote slower.
 *  - The lines are built before the lock is taken; under it, only the
 *    compression (the stream is shared) and the write.
 *  - A compressed stream whose write failed is ahead of the file: later
 *    ingests would write garbage after the cut, so the aggregator then
 *    refuses them (ATEX_EIO) rather than corrupt what was written.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <lzma.h>
#include <zlib.h>

#include "aggregator/ingest.h"
#include "atex/aggregator.h"
#include "util/util.h"

#define XZ_PRESET 1

/* One output file and its compressed stream: the results file and the
 * attempts sidecar each have one. Under the aggregator's lock. */
struct sink {
	const char *path; /* NULL: no such output */
	int compression;  /* NONE, GZIP or XZ (AUTO resolved) */
	unsigned int level;
	bool broken; /* a compressed write failed; the stream is lost */
	int fd;
	off_t size; /* bytes written: where a failed write is cut back */
	z_stream z;
	bool z_ready;
	lzma_stream x;
	bool x_ready;
	struct atex_buf out; /* compressed bytes of one write */
};

struct jsonl {
	atex_aggregator base;
	char *path;
	char *files_dir; /* NULL: no files kept */
	int compression; /* NONE, GZIP or XZ (AUTO resolved) */
	bool attempt_dirs;
	bool strict;	    /* ATEX_INGEST_STRICT */
	bool exclusive;	    /* start: EEXISTS for existing outputs */
	unsigned int level; /* 0: the default */
	/* compress_files (cz.compression NONE: off); cz's strings are
	 * owned: suffix, and exclude as a strv. */
	struct atex_ingest_compress cz;
	char *cz_suffix;
	char **cz_exclude;
	/* (Version 4.) The attempts sidecar; NULL: none. earlier: its
	 * lines say "final": false. */
	char *attempts_path;
	bool attempts_earlier;

	pthread_mutex_t lock;
	/* Under the lock: */
	bool started;
	json_t *ingests;      /* attempt_dirs: "platform\xfftest" -> count */
	struct sink main;     /* the results file */
	struct sink attempts; /* the sidecar (path NULL: none) */
	unsigned long writes; /* ingests written, for atex_jsonl_undo */
};

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int dump_to_buf(const char *data, size_t len, void *arg)
{
	return atex_buf_put(arg, data, len) < 0 ? -1 : 0;
}

/* The names of `files` as compress_files placed them: with the suffix
 * unless excluded. A new reference; NULL on error (set). */
static json_t *compressed_names(const struct atex_ingest_compress *cz,
				json_t *files)
{
	json_t *out = json_array(), *v;
	size_t i;

	if (!out)
		goto oom;
	json_array_foreach(files, i, v)
	{
		const char *name = json_string_value(v);
		json_t *s = atex_ingest_excluded(cz, name)
				    ? json_incref(v)
				    : json_sprintf("%s%s", name, cz->suffix);

		if (!s || json_array_append_new(out, s) < 0)
			goto oom;
	}
	return out;
oom:
	json_decref(out);
	atex_error_oom();
	return NULL;
}

/* Appends the line of one result to `b`. */
static int put_line(struct jsonl *j, struct atex_buf *b,
		    const struct atex_ingest *in,
		    const struct atex_ingest_result *r)
{
	json_t *files = j->cz.compression && *j->cz.suffix
				? compressed_names(&j->cz, r->files)
				: json_incref(r->files);
	json_t *line =
		files ? json_pack("[s,s?,s,s?,o,s?]", in->platform, r->status,
				  in->test, r->name, files, r->note)
		      : NULL;
	int rc = 0;

	if (!line)
		return atex_error_oom();
	if (json_dump_callback(line, dump_to_buf, b, JSON_COMPACT) < 0 ||
	    atex_buf_putc(b, '\n') < 0)
		rc = atex_error_oom();
	json_decref(line);
	return rc;
}

/* The sidecar line of one ingest (docs/PROTOCOL.md section 5): its
 * attempt.json values beside the platform and test. */
static int put_attempt_line(struct jsonl *j, struct atex_buf *b,
			    const struct atex_ingest *in)
{
	const struct atex_ingest_attempt *at = &in->attempt;
	json_t *line = json_pack("{s:s,s:s,s:o,s:b}", "platform", in->platform,
				 "test", in->test, "attempt",
				 at->attempt > 0 ? json_integer(at->attempt)
						 : json_null(),
				 "final", !j->attempts_earlier);
	int rc = 0;

	if (!line || atex_ingest_attempt_fields(line, at) < 0 ||
	    json_object_set_new(line, "exit_code",
				at->has_exit_code ? json_integer(at->exit_code)
						  : json_null()) < 0)
		rc = atex_error_oom();
	else if (json_dump_callback(line, dump_to_buf, b,
				    JSON_COMPACT | JSON_REAL_PRECISION(15)) <
			 0 ||
		 atex_buf_putc(b, '\n') < 0)
		rc = atex_error_oom();
	json_decref(line);
	return rc;
}

/* ---- compression (under the lock) ---- */

static int gzip_run(struct sink *k, const void *data, size_t len, int flush)
{
	int ret;

	k->z.next_in = (Bytef *)data;
	k->z.avail_in = (uInt)len;
	do {
		if (atex_buf_grow(&k->out, 65536) < 0)
			return ATEX_ENOMEM;
		k->z.next_out = (Bytef *)k->out.ptr + k->out.len;
		k->z.avail_out = (uInt)(k->out.cap - k->out.len - 1);
		size_t before = k->z.avail_out;

		ret = deflate(&k->z, flush);
		if (ret == Z_STREAM_ERROR)
			return atex_error_set(ATEX_EIO, "%s: zlib: %s", k->path,
					      k->z.msg ? k->z.msg
						       : "stream error");
		k->out.len += before - k->z.avail_out;
	} while (k->z.avail_out == 0 ||
		 (flush == Z_FINISH && ret != Z_STREAM_END));
	return 0;
}

static int xz_run(struct sink *k, const void *data, size_t len,
		  lzma_action action)
{
	lzma_ret ret;

	k->x.next_in = data;
	k->x.avail_in = len;
	do {
		if (atex_buf_grow(&k->out, 65536) < 0)
			return ATEX_ENOMEM;
		k->x.next_out = (uint8_t *)k->out.ptr + k->out.len;
		k->x.avail_out = k->out.cap - k->out.len - 1;
		size_t before = k->x.avail_out;

		ret = lzma_code(&k->x, action);
		k->out.len += before - k->x.avail_out;
		if (ret == LZMA_MEM_ERROR)
			return atex_error_oom();
		if (ret != LZMA_OK && ret != LZMA_STREAM_END)
			return atex_error_set(ATEX_EIO, "%s: liblzma error %d",
					      k->path, (int)ret);
	} while (ret != LZMA_STREAM_END);
	return 0;
}

/* Compresses `data` (NULL: finish the stream) into k->out. */
static int compress_locked(struct sink *k, const void *data, size_t len)
{
	atex_buf_clear(&k->out);
	if (k->compression == ATEX_COMPRESSION_GZIP)
		return gzip_run(k, data, len, data ? Z_SYNC_FLUSH : Z_FINISH);
	return xz_run(k, data, len, data ? LZMA_SYNC_FLUSH : LZMA_FINISH);
}

static int write_locked(struct sink *k, const void *data, size_t len)
{
	int rc;

	if (k->compression == ATEX_COMPRESSION_NONE)
		return atex_ingest_write(k->fd, data, len, &k->size, k->path);
	rc = compress_locked(k, data, len);
	if (!rc)
		rc = atex_ingest_write(k->fd, k->out.ptr, k->out.len, &k->size,
				       k->path);
	if (rc)
		k->broken = true;
	/* One big ingest must not pin its buffer for the whole run. */
	if (k->out.cap > 1 << 20)
		atex_buf_free(&k->out);
	return rc;
}

static void streams_end(struct sink *k)
{
	if (k->z_ready)
		deflateEnd(&k->z);
	if (k->x_ready)
		lzma_end(&k->x);
	k->z_ready = k->x_ready = false;
	atex_buf_free(&k->out);
}

/* Cuts the file back to `size` (a write taken back); a compressed stream
 * has gone on past what is in the file, so it takes no more writes. */
static void sink_cut(struct sink *k, off_t size)
{
	if (ftruncate(k->fd, size) < 0) {
		atex_log(ATEX_LOG_ERROR, "aggregator",
			 "%s: cannot take back a test: %s", k->path,
			 strerror(errno));
		return;
	}
	k->size = size;
	if (k->compression != ATEX_COMPRESSION_NONE)
		k->broken = true;
}

/* ---- operations ---- */

static int streams_begin(struct sink *k)
{
	if (k->compression == ATEX_COMPRESSION_GZIP) {
		memset(&k->z, 0, sizeof(k->z));
		/* 15 + 16: a gzip header and trailer around the deflate
		 * stream. */
		if (deflateInit2(
			    &k->z,
			    k->level ? (int)k->level : Z_DEFAULT_COMPRESSION,
			    Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return atex_error_oom();
		k->z_ready = true;
	} else if (k->compression == ATEX_COMPRESSION_XZ) {
		k->x = (lzma_stream)LZMA_STREAM_INIT;
		if (lzma_easy_encoder(&k->x, k->level ? k->level : XZ_PRESET,
				      LZMA_CHECK_CRC64) != LZMA_OK)
			return atex_error_oom();
		k->x_ready = true;
	}
	return 0;
}

/* Opens (emptied) the file of a new run and begins its stream. */
static int sink_open(struct sink *k)
{
	int rc = atex_ingest_open_output(&k->fd, k->path);

	if (rc)
		return rc;
	rc = streams_begin(k);
	if (rc) {
		streams_end(k);
		close(k->fd);
		k->fd = -1;
		return rc;
	}
	k->size = 0;
	k->broken = false;
	return 0;
}

/* Finishes the stream and closes the file. */
static int sink_close(struct sink *k)
{
	int rc = 0;

	if (k->compression != ATEX_COMPRESSION_NONE && !k->broken)
		rc = write_locked(k, NULL, 0);
	streams_end(k);
	if (close(k->fd) < 0 && !rc)
		rc = atex_error_set(ATEX_EIO, "%s: cannot close: %s", k->path,
				    strerror(errno));
	k->fd = -1;
	return rc;
}

static int jsonl_start(atex_aggregator *a)
{
	struct jsonl *j = (struct jsonl *)a;
	int rc = 0;

	pthread_mutex_lock(&j->lock);
	if (j->started) {
		rc = atex_error_set(ATEX_EINVAL, "%s: started twice", j->path);
		goto out;
	}
	if (j->exclusive) {
		rc = atex_ingest_check_absent(j->path);
		if (!rc && j->files_dir)
			rc = atex_ingest_check_absent(j->files_dir);
		if (!rc && j->attempts.path)
			rc = atex_ingest_check_absent(j->attempts.path);
		if (rc)
			goto out;
	}
	if (j->files_dir) {
		rc = atex_ingest_mkdirs(j->files_dir);
		if (rc)
			goto out;
	}
	/* A new run: attempts count from 1 again. */
	if (j->ingests)
		json_object_clear(j->ingests);
	rc = sink_open(&j->main);
	if (rc)
		goto out;
	if (j->attempts.path) {
		rc = sink_open(&j->attempts);
		if (rc) {
			streams_end(&j->main);
			close(j->main.fd);
			j->main.fd = -1;
			goto out;
		}
	}
	j->started = true;
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

/* attempt_dirs: FILES_DIR/N for the Nth ingest of this platform and test
 * (made), counted under the lock. NULL on error (set). */
static char *attempt_dir(struct jsonl *j, const char *platform,
			 const char *test_name)
{
	char *key = atex_sprintf("%s\xff%s", platform, test_name);
	json_int_t n = 0;
	char *dir = NULL;

	if (!key) {
		atex_error_oom();
		return NULL;
	}
	pthread_mutex_lock(&j->lock);
	n = json_integer_value(json_object_get(j->ingests, key)) + 1;
	if (json_object_set_new_nocheck(j->ingests, key, json_integer(n)) < 0)
		n = 0;
	pthread_mutex_unlock(&j->lock);
	free(key);
	if (n > 0)
		dir = atex_sprintf("%s/%lld", j->files_dir, (long long)n);
	if (!dir) {
		atex_error_oom();
		return NULL;
	}
	if (atex_ingest_mkdirs(dir) < 0) {
		free(dir);
		return NULL;
	}
	return dir;
}

/* Writes one ingest's lines and its sidecar line, both or neither: a
 * sidecar that cannot be written takes the results back (lock held). */
static int write_ingest(struct jsonl *j, const struct atex_buf *lines,
			const struct atex_buf *attempt)
{
	off_t before = j->main.size;
	int rc;

	if (j->main.broken || (j->attempts.path && j->attempts.broken))
		return atex_error_set(ATEX_EIO,
				      "%s: an earlier write failed, the "
				      "compressed stream cannot go on",
				      j->main.broken ? j->main.path
						     : j->attempts.path);
	rc = write_locked(&j->main, lines->ptr, lines->len);
	if (!rc && j->attempts.path) {
		rc = write_locked(&j->attempts, attempt->ptr, attempt->len);
		if (rc)
			sink_cut(&j->main, before);
	}
	return rc;
}

static int jsonl_ingest(atex_aggregator *a, const char *platform,
			const char *test_name, const char *artifacts_dir)
{
	struct jsonl *j = (struct jsonl *)a;
	struct atex_ingest in;
	struct atex_buf lines = ATEX_BUF_INIT, attempt = ATEX_BUF_INIT;
	char *files_dir = NULL;
	bool started;
	int rc;

	pthread_mutex_lock(&j->lock);
	started = j->started;
	pthread_mutex_unlock(&j->lock);
	if (!started)
		return atex_error_set(ATEX_EINVAL, "%s: ingest before start",
				      j->path);
	if (j->files_dir && j->attempt_dirs) {
		rc = atex_ingest_check_names(platform, test_name);
		if (rc)
			return rc;
		files_dir = attempt_dir(j, platform, test_name);
		if (!files_dir)
			return atex_error_last_code();
	}
	rc = atex_ingest_prepare_flags(
		&in, files_dir ? files_dir : j->files_dir, platform, test_name,
		artifacts_dir, j->strict ? ATEX_INGEST_STRICT : 0,
		j->cz.compression ? &j->cz : NULL);
	free(files_dir);
	if (rc)
		return rc;
	for (size_t i = 0; i < in.n && !rc; i++)
		rc = put_line(j, &lines, &in, &in.results[i]);
	if (!rc && j->attempts_path)
		rc = put_attempt_line(j, &attempt, &in);
	if (rc)
		goto out;

	pthread_mutex_lock(&j->lock);
	if (!j->started)
		rc = atex_error_set(ATEX_EINVAL, "%s: stopped during ingest",
				    j->path);
	else
		rc = write_ingest(j, &lines, &attempt);
	if (!rc)
		j->writes++;
	pthread_mutex_unlock(&j->lock);
	if (rc)
		atex_error_prefix("%s on %s", test_name, platform);
out:
	atex_buf_free(&lines);
	atex_buf_free(&attempt);
	atex_ingest_release(&in);
	return rc;
}

/* ---- undo, for the multi aggregator (ingest.h) ---- */

static const struct atex_aggregator_ops jsonl_ops;

bool atex_jsonl_mark(atex_aggregator *a, struct atex_jsonl_mark *mark)
{
	struct jsonl *j = (struct jsonl *)a;

	if (!a || a->ops != &jsonl_ops)
		return false;
	pthread_mutex_lock(&j->lock);
	mark->size = j->main.size;
	mark->attempts_size = j->attempts.size;
	mark->writes = j->writes;
	pthread_mutex_unlock(&j->lock);
	return true;
}

void atex_jsonl_undo(atex_aggregator *a, const struct atex_jsonl_mark *mark)
{
	struct jsonl *j = (struct jsonl *)a;

	pthread_mutex_lock(&j->lock);
	/* Only the one write made since the mark, and only while the file
	 * is open: anything else is not ours to take back. */
	if (!j->started || j->writes != mark->writes + 1)
		goto out;
	sink_cut(&j->main, mark->size);
	if (j->attempts.path)
		sink_cut(&j->attempts, mark->attempts_size);
	j->writes = mark->writes;
out:
	pthread_mutex_unlock(&j->lock);
}

static int jsonl_stop(atex_aggregator *a)
{
	struct jsonl *j = (struct jsonl *)a;
	int rc = 0;

	pthread_mutex_lock(&j->lock);
	if (!j->started)
		goto out;
	rc = sink_close(&j->main);
	if (j->attempts.path) {
		int r = sink_close(&j->attempts);

		rc = rc ? rc : r;
	}
	j->started = false;
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

static void jsonl_free(atex_aggregator *a)
{
	struct jsonl *j = (struct jsonl *)a;

	if (jsonl_stop(a) < 0)
		atex_log(ATEX_LOG_ERROR, "aggregator", "%s", atex_error_last());
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j->files_dir);
	free(j->attempts_path);
	json_decref(j->ingests);
	free(j->cz_suffix);
	strv_free(j->cz_exclude);
	free(j);
}

static const struct atex_aggregator_ops jsonl_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = jsonl_start,
	.ingest = jsonl_ingest,
	.stop = jsonl_stop,
	.free = jsonl_free,
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* The compression a file's name asks for: .gz, .xz, else none. */
static int suffix_compression(const char *path)
{
	if (!path)
		return ATEX_COMPRESSION_NONE;
	return ends_with(path, ".gz")	? ATEX_COMPRESSION_GZIP
	       : ends_with(path, ".xz") ? ATEX_COMPRESSION_XZ
					: ATEX_COMPRESSION_NONE;
}

static bool level_ok(int compression, unsigned int level)
{
	if (!level)
		return true;
	if (compression == ATEX_COMPRESSION_GZIP)
		return level <= 9;
	if (compression == ATEX_COMPRESSION_XZ)
		return (level & ~LZMA_PRESET_EXTREME) <= 9;
	return true; /* no compression: nothing to set */
}

/* Options version 3: compress_files, files_suffix, files_exclude. */
static int compress_files_init(struct jsonl *j,
			       const struct atex_jsonl_aggregator_options *o,
			       int compression)
{
	int cz = o->compress_files;
	size_t n = 0;

	if (cz == ATEX_COMPRESSION_AUTO)
		cz = compression;
	if (cz == ATEX_COMPRESSION_NONE)
		return 0;
	if (cz != ATEX_COMPRESSION_GZIP && cz != ATEX_COMPRESSION_XZ)
		return atex_error_set(ATEX_EINVAL,
				      "%s: unknown compress_files %d", o->path,
				      o->compress_files);
	if (!level_ok(cz, o->level))
		return atex_error_set(ATEX_EINVAL,
				      "%s: compression level %u out of range",
				      o->path, o->level);
	j->cz_suffix = atex_strdup(o->files_suffix ? o->files_suffix
				   : cz == ATEX_COMPRESSION_GZIP ? ".gz"
								 : ".xz");
	while (o->files_exclude && o->files_exclude[n])
		n++;
	j->cz_exclude = atex_calloc(n + 1, sizeof(char *));
	if (!j->cz_suffix || !j->cz_exclude)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(j->cz_exclude[i] = atex_strdup(o->files_exclude[i])))
			return ATEX_ENOMEM;
	j->cz.compression = cz;
	j->cz.level = o->level;
	j->cz.suffix = j->cz_suffix;
	j->cz.exclude = (const char *const *)j->cz_exclude;
	return 0;
}

int atex_jsonl_aggregator_new(atex_aggregator **out,
			      const struct atex_jsonl_aggregator_options *opts)
{
	struct jsonl *j;
	int compression;

	if (!out)
		return atex_error_set(ATEX_EINVAL,
				      "atex_jsonl_aggregator_new: no out "
				      "pointer");
	*out = NULL;
	if (!opts || opts->version < 1 ||
	    opts->version > ATEX_JSONL_AGGREGATOR_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "atex_jsonl_aggregator_new: no options "
				      "or unknown options version");
	if (!opts->path || !*opts->path)
		return atex_error_set(ATEX_EINVAL,
				      "atex_jsonl_aggregator_new: no path");
	compression = opts->compression;
	if (compression == ATEX_COMPRESSION_AUTO)
		compression = suffix_compression(opts->path);
	if (opts->version >= 4 && opts->attempts_path &&
	    (!*opts->attempts_path || !strcmp(opts->attempts_path, opts->path)))
		return atex_error_set(ATEX_EINVAL,
				      "%s: attempts_path \"%s\" is empty or "
				      "the results file",
				      opts->path, opts->attempts_path);
	if (compression < ATEX_COMPRESSION_NONE ||
	    compression > ATEX_COMPRESSION_XZ)
		return atex_error_set(ATEX_EINVAL, "%s: unknown compression %d",
				      opts->path, opts->compression);
	if (opts->version >= 3 &&
	    (!level_ok(compression, opts->level) ||
	     (opts->version >= 4 &&
	      !level_ok(suffix_compression(opts->attempts_path), opts->level))))
		return atex_error_set(ATEX_EINVAL,
				      "%s: compression level %u out of range",
				      opts->path, opts->level);
	j = atex_calloc(1, sizeof(*j));
	if (!j)
		return ATEX_ENOMEM;
	j->base.ops = &jsonl_ops;
	if (opts->version >= 3) {
		j->strict = opts->strict;
		j->exclusive = opts->exclusive;
		j->level = opts->level;
		if (compress_files_init(j, opts, compression) < 0) {
			int rc = atex_error_last_code();

			free(j->cz_suffix);
			strv_free(j->cz_exclude);
			free(j);
			return rc;
		}
	}
	j->compression = compression;
	j->path = atex_strdup(opts->path);
	j->files_dir = opts->files_dir ? atex_strdup(opts->files_dir) : NULL;
	if (opts->version >= 4 && opts->attempts_path) {
		j->attempts_path = atex_strdup(opts->attempts_path);
		j->attempts_earlier = opts->attempts_earlier;
	}
	j->main = (struct sink){.path = j->path,
				.compression = compression,
				.level = j->level,
				.fd = -1};
	/* The sidecar's compression follows its own name. */
	j->attempts = (struct sink){
		.path = j->attempts_path,
		.compression = suffix_compression(j->attempts_path),
		.level = j->level,
		.fd = -1};
	/* Version 1 callers' structs end before attempt_dirs. */
	j->attempt_dirs = opts->version >= 2 && opts->attempt_dirs;
	j->ingests = j->attempt_dirs ? json_object() : NULL;
	if (!j->path || (opts->files_dir && !j->files_dir) ||
	    (j->attempt_dirs && !j->ingests) ||
	    (opts->version >= 4 && opts->attempts_path && !j->attempts_path)) {
		free(j->path);
		free(j->files_dir);
		free(j->attempts_path);
		json_decref(j->ingests);
		free(j);
		return ATEX_ENOMEM;
	}
	pthread_mutex_init(&j->lock, NULL);
	*out = &j->base;
	return 0;
}
