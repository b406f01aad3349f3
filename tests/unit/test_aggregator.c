/*
 * test_aggregator.c - the aggregators (include/atex/aggregator.h) fed
 * artifacts directories written by hand (a results file and files/...):
 * the JSON Lines format, files placed under FILES_DIR/<platform>/<test>,
 * malformed and missing results, name checks, concurrent ingest, gzip and
 * xz output read back whole and cut at every byte, the SQLite rows and
 * attempts, YAML read back, and the multi aggregator.
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <lzma.h>
#include <pthread.h>
#include <sqlite3.h>
#include <yaml.h>
#include <zlib.h>

#include "helpers.h"

#include "atex/aggregator.h"
#include "fmf/yaml.h"
#include "util/util.h"

struct fixture {
	char *tmp;
	char out[512];	 /* an output file in tmp */
	char files[512]; /* a files directory in tmp */
	char art[512];	 /* an artifacts directory in tmp */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->tmp = tmpdir_new();
	snprintf(f->out, sizeof(f->out), "%s/results.jsonl", f->tmp);
	snprintf(f->files, sizeof(f->files), "%s/files", f->tmp);
	snprintf(f->art, sizeof(f->art), "%s/art", f->tmp);
	assert_int_equal(mkdir(f->art, 0755), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tree_remove(f->tmp);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static char *path_in(const char *dir, const char *rel)
{
	char *p = atex_path_join(dir, rel);

	assert_non_null(p);
	return p;
}

static char *slurp(const char *path, size_t *len)
{
	char *text = NULL;
	size_t n = 0;

	if (atex_file_read(&text, &n, path) < 0)
		fail_msg("%s", atex_error_last());
	if (len)
		*len = n;
	return text;
}

static atex_aggregator *jsonl_new(const char *path, const char *files_dir,
				  int compression)
{
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = NULL;

	o.path = path;
	o.files_dir = files_dir;
	o.compression = compression;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), 0);
	assert_non_null(a);
	return a;
}

static void ingest_ok(atex_aggregator *a, const char *platform,
		      const char *test, const char *art)
{
	int rc = atex_aggregator_ingest(a, platform, test, art);

	if (rc)
		fail_msg("ingest %s: %d: %s", test, rc, atex_error_last());
}

/* The lines of a JSON Lines text, each parsed; every line must parse and
 * the text must end with a newline. */
static json_t *parse_lines(const char *text, size_t len)
{
	json_t *lines = json_array();
	size_t start = 0;

	assert_non_null(lines);
	if (len)
		assert_int_equal(text[len - 1], '\n');
	for (size_t i = 0; i < len; i++) {
		json_error_t err;
		json_t *v;

		if (text[i] != '\n')
			continue;
		v = json_loadb(text + start, i - start, 0, &err);
		if (!v)
			fail_msg("line %.*s: %s", (int)(i - start),
				 text + start, err.text);
		json_array_append_new(lines, v);
		start = i + 1;
	}
	return lines;
}

static json_t *read_lines(const char *path)
{
	size_t len;
	char *text = slurp(path, &len);
	json_t *lines = parse_lines(text, len);

	free(text);
	return lines;
}

static void assert_json(json_t *got, const char *expected)
{
	json_error_t err;
	json_t *want = json_loads(expected, 0, &err);

	if (!want)
		fail_msg("bad expected JSON %s: %s", expected, err.text);
	if (!json_equal(got, want)) {
		char *s = json_dumps(got, JSON_COMPACT);

		fail_msg("got %s\nwant %s", s, expected);
	}
	json_decref(want);
}

/* A test with its own result, a subtest, and files for both. */
static void write_two_results(const char *art)
{
	write_file(art, "results",
		   "{\"name\":\"sub/a\",\"status\":\"fail\",\"note\":\"bad\","
		   "\"files\":[\"log\"],\"extra\":1}\n"
		   "{\"status\":\"pass\",\"files\":[\"output.txt\",\"x/y\"],"
		   "\"testout\":\"output.txt\"}\n");
	write_file(art, "files/output.txt", "the output\n");
	write_file(art, "files/x/y", "y\n");
	write_file(art, "files/sub/a/log", "sub log\n");
}

/* ---- JSON Lines ---- */

static void test_line_format(void **state)
{
	struct fixture *f = *state;
	atex_aggregator *a = jsonl_new(f->out, NULL, 0);
	json_t *lines;

	write_two_results(f->art);
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "rhel-9.6@x86_64", "/unit/syscalls", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	lines = read_lines(f->out);
	assert_json(lines,
		    "[[\"rhel-9.6@x86_64\",\"fail\",\"/unit/syscalls\","
		    "\"sub/a\",[\"log\"],\"bad\"],"
		    "[\"rhel-9.6@x86_64\",\"pass\",\"/unit/syscalls\",null,"
		    "[\"output.txt\",\"x/y\"],null]]");
	json_decref(lines);
	/* The artifacts are untouched. */
	char *p = path_in(f->art, "files/sub/a/log");

	assert_true(atex_path_exists(p));
	free(p);
	atex_aggregator_free(a);
}

/* Ingest by several threads: each ingest's lines stay together. */
struct worker {
	atex_aggregator *a;
	const char *art;
	int id;
	int rc;
	char msg[512]; /* the error, read in the thread that had it */
};

#define THREADS	   8
#define PER_THREAD 60

static void *work(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_THREAD && !w->rc; i++) {
		char name[64];

		snprintf(name, sizeof(name), "/t%d/%d", w->id, i);
		w->rc = atex_aggregator_ingest(w->a, "p", name, w->art);
	}
	if (w->rc)
		snprintf(w->msg, sizeof(w->msg), "%s", atex_error_last());
	return NULL;
}

static void test_concurrent_ingest(void **state)
{
	struct fixture *f = *state;
	atex_aggregator *a = jsonl_new(f->out, f->files, 0);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	json_t *lines, *line;
	size_t i;

	write_file(f->art, "results",
		   "{\"name\":\"a\",\"status\":\"pass\"}\n"
		   "{\"name\":\"b\",\"status\":\"pass\",\"files\":[\"f\"]}\n"
		   "{\"name\":\"c\",\"status\":\"fail\"}\n"
		   "{\"status\":\"fail\"}\n");
	write_file(f->art, "files/b/f", "data\n");
	assert_int_equal(atex_aggregator_start(a), 0);
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){a, f->art, (int)i, 0, ""};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].rc)
			fail_msg("thread %zu: %s", i, w[i].msg);
	}
	assert_int_equal(atex_aggregator_stop(a), 0);
	lines = read_lines(f->out);
	assert_int_equal(json_array_size(lines), THREADS * PER_THREAD * 4);
	json_array_foreach(lines, i, line)
	{
		/* a, b, c, own: in groups of four of the same test. */
		json_t *first = json_array_get(lines, i - i % 4);
		static const char *subs[] = {"a", "b", "c", NULL};
		const char *sub = json_string_value(json_array_get(line, 3));

		assert_int_equal(json_array_size(line), 6);
		assert_string_equal(
			json_string_value(json_array_get(line, 2)),
			json_string_value(json_array_get(first, 2)));
		if (subs[i % 4])
			assert_string_equal(sub, subs[i % 4]);
		else
			assert_null(sub);
	}
	json_decref(lines);
	atex_aggregator_free(a);
}

static void test_malformed_line(void **state)
{
	struct fixture *f = *state;
	atex_aggregator *a = jsonl_new(f->out, NULL, ATEX_COMPRESSION_AUTO);
	json_t *lines, *line;

	write_file(f->art, "results",
		   "{\"name\":\"one\",\"status\":\"pass\"}\n"
		   "{\"name\":\"two\",\"status\":\"pa\n"
		   "\n"
		   "{\"name\":\"three\"}\n"
		   "[1, 2]\n"
		   "{\"status\":\"pass\",\"files\":[1]}\n"
		   "{\"status\":\"pass\"}\n");
	atex_log_set_level(ATEX_LOG_ERROR); /* the warnings are expected */
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	atex_log_set_level(ATEX_LOG_WARNING);
	lines = read_lines(f->out);
	assert_int_equal(json_array_size(lines), 6);
	assert_json(json_array_get(lines, 0),
		    "[\"p\",\"pass\",\"/t\",\"one\",[],null]");
	assert_json(json_array_get(lines, 5),
		    "[\"p\",\"pass\",\"/t\",null,[],null]");
	/* Line 2 does not parse: an error result for the test, naming the
	 * line, never the (temporary) artifacts directory. */
	line = json_array_get(lines, 1);
	assert_string_equal(json_string_value(json_array_get(line, 1)),
			    "error");
	assert_true(json_is_null(json_array_get(line, 3)));
	assert_non_null(strstr(json_string_value(json_array_get(line, 5)),
			       "line 2 of the test's results: malformed "
			       "result"));
	for (size_t i = 1; i < 5; i++)
		assert_null(strstr(json_string_value(json_array_get(
					   json_array_get(lines, i), 5)),
				   f->art));
	/* Line 4 parses but has no status: an error that says so, and
	 * keeps its name (docs/PROTOCOL.md section 2). */
	line = json_array_get(lines, 2);
	assert_json(line, "[\"p\",\"error\",\"/t\",\"three\",[],"
			  "\"the result has no status\"]");
	assert_non_null(strstr(
		json_string_value(json_array_get(json_array_get(lines, 3), 5)),
		"line 5 "));
	assert_non_null(strstr(
		json_string_value(json_array_get(json_array_get(lines, 4), 5)),
		"line 6 "));
	json_decref(lines);
	atex_aggregator_free(a);
}

static void test_missing_results(void **state)
{
	struct fixture *f = *state;
	atex_aggregator *a = jsonl_new(f->out, f->files, 0);
	json_t *lines;

	assert_int_equal(atex_aggregator_start(a), 0);
	/* No artifacts directory at all, then one with an empty results
	 * file. */
	ingest_ok(a, "p", "/never", f->files);
	write_file(f->art, "results", "");
	ingest_ok(a, "p", "/empty", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	lines = read_lines(f->out);
	assert_json(lines, "[[\"p\",\"error\",\"/never\",null,[],"
			   "\"no results (the test never reported)\"],"
			   "[\"p\",\"error\",\"/empty\",null,[],"
			   "\"no results (the test never reported)\"]]");
	json_decref(lines);
	atex_aggregator_free(a);
}

/* Files that cannot be placed (a component longer than NAME_MAX) do not
 * cost the results: they are written, with an error that says why. */
static void test_files_not_placed(void **state)
{
	struct fixture *f = *state;
	atex_aggregator *a = jsonl_new(f->out, f->files, 0);
	char name[400] = "/";
	json_t *lines, *line;

	memset(name + 1, 'L', 300);
	write_file(f->art, "results",
		   "{\"status\":\"pass\",\"files\":[\"out.txt\"]}\n");
	write_file(f->art, "files/out.txt", "output\n");
	atex_log_set_level(ATEX_LOG_ERROR); /* the warning is expected */
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", name, f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	atex_log_set_level(ATEX_LOG_WARNING);
	lines = read_lines(f->out);
	assert_int_equal(json_array_size(lines), 2);
	line = json_array_get(lines, 0);
	assert_string_equal(json_string_value(json_array_get(line, 1)), "pass");
	assert_string_equal(json_string_value(json_array_get(line, 2)), name);
	line = json_array_get(lines, 1);
	assert_string_equal(json_string_value(json_array_get(line, 1)),
			    "error");
	assert_true(json_is_null(json_array_get(line, 3)));
	assert_non_null(strstr(json_string_value(json_array_get(line, 5)),
			       "the test's files could not be stored: "));
	assert_non_null(strstr(json_string_value(json_array_get(line, 5)),
			       "File name too long"));
	json_decref(lines);
	atex_aggregator_free(a);
}

static void test_bad_names(void **state)
{
	struct fixture *f = *state;
	atex_aggregator *a = jsonl_new(f->out, f->files, 0);
	static const char *platforms[] = {"", "a/b", ".", "..", "/", "x/"};
	static const char *tests[] = {"",      "/",  "//",  "/a/../b",
				      "/a/..", "..", "/./a"};
	size_t len;
	char *text;

	write_two_results(f->art);
	assert_int_equal(atex_aggregator_ingest(a, "p", "/t", f->art),
			 ATEX_EINVAL); /* not started */
	assert_int_equal(atex_aggregator_start(a), 0);
	assert_int_equal(atex_aggregator_start(a), ATEX_EINVAL);
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(platforms); i++) {
		assert_int_equal(
			atex_aggregator_ingest(a, platforms[i], "/t", f->art),
			ATEX_EINVAL);
		if (*platforms[i])
			assert_non_null(
				strstr(atex_error_last(), platforms[i]));
	}
	assert_int_equal(atex_aggregator_ingest(a, NULL, "/t", f->art),
			 ATEX_EINVAL);
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(tests); i++) {
		assert_int_equal(
			atex_aggregator_ingest(a, "p", tests[i], f->art),
			ATEX_EINVAL);
		if (*tests[i])
			assert_non_null(strstr(atex_error_last(), tests[i]));
	}
	assert_int_equal(atex_aggregator_ingest(a, "p", "/t", NULL),
			 ATEX_EINVAL);
	assert_int_equal(atex_aggregator_ingest(a, "p\xff", "/t", f->art),
			 ATEX_EINVAL);
	/* Dots inside names are fine. */
	ingest_ok(a, "rhel-9.6@x86_64", "/a/..b/c.d", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	text = slurp(f->out, &len);
	/* Only the good ingest was written, and nothing escaped. */
	/* At its place, compared there: gcc 12 -O3 took strstr(text) -
	 * text for a dangling pointer (-Wdangling-pointer). */
	assert_true(len > strlen("[\"rhel-9.6@x86_64\",\"fail\",\""));
	assert_int_equal(
		strncmp(text + strlen("[\"rhel-9.6@x86_64\",\"fail\",\""),
			"/a/..b/c.d\"", 11),
		0);
	free(text);
	text = path_in(f->tmp, "b");
	assert_false(atex_path_exists(text));
	free(text);
	atex_aggregator_free(a);
}

static void test_generic_checks(void **state)
{
	static const struct atex_aggregator_ops future = {.version = 99};
	atex_aggregator bad = {&future}, *a = NULL;
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;

	assert_int_equal(atex_aggregator_start(&bad), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "99"));
	assert_int_equal(atex_aggregator_start(NULL), ATEX_EINVAL);
	assert_int_equal(atex_aggregator_stop(NULL), ATEX_EINVAL);
	atex_aggregator_free(NULL);
	atex_aggregator_free(&bad); /* refused, not called */
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), ATEX_EINVAL);
	assert_null(a);
	o.path = "x.jsonl";
	o.compression = 7;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), ATEX_EINVAL);
	assert_int_equal(atex_jsonl_aggregator_new(&a, NULL), ATEX_EINVAL);
	assert_int_equal(atex_yaml_aggregator_new(&a, NULL, NULL), ATEX_EINVAL);
	assert_int_equal(atex_sqlite_aggregator_new(&a, NULL), ATEX_EINVAL);
	assert_int_equal(atex_multi_aggregator_new(&a, NULL, 0, true),
			 ATEX_EINVAL);
}

/* ---- files ---- */

static void assert_file(const char *dir, const char *rel, const char *content,
			mode_t mode)
{
	char *p = path_in(dir, rel), *text;
	struct stat st;

	if (lstat(p, &st) < 0)
		fail_msg("%s: %s", p, strerror(errno));
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, mode);
	text = slurp(p, NULL);
	assert_string_equal(text, content);
	free(text);
	free(p);
}

static ino_t inode(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	free(p);
	return st.st_ino;
}

static mode_t mode_of(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	free(p);
	return st.st_mode & 07777;
}

static void chmod_in(const char *dir, const char *rel, mode_t mode)
{
	char *p = path_in(dir, rel);

	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static void symlink_in(const char *dir, const char *rel, const char *target)
{
	char *p = path_in(dir, rel);

	assert_int_equal(symlink(target, p), 0);
	free(p);
}

/* Ingests `art` as "/a/test" on "p" and checks FILES_DIR/p/a/test. */
static void check_placed(struct fixture *f, const char *art, bool linked)
{
	atex_aggregator *a = jsonl_new(f->out, f->files, 0);
	char *dest = path_in(f->files, "p/a/test"), target[256];
	char *link = path_in(dest, "link");
	ssize_t n;

	write_two_results(art);
	chmod_in(art, "files/output.txt", 0640);
	chmod_in(art, "files/sub/a/log", 0755);
	symlink_in(art, "files/link", "../../outside");
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/a/test", art);
	assert_file(dest, "output.txt", "the output\n", 0640);
	assert_file(dest, "x/y", "y\n", mode_of(art, "files/x/y"));
	assert_file(dest, "sub/a/log", "sub log\n", 0755);
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "../../outside");
	if (linked)
		assert_int_equal(inode(dest, "sub/a/log"),
				 inode(art, "files/sub/a/log"));
	else
		assert_int_not_equal(inode(dest, "sub/a/log"),
				     inode(art, "files/sub/a/log"));
	/* Again, into the same files directory: replaced, no error. */
	ingest_ok(a, "p", "/a/test", art);
	assert_file(dest, "sub/a/log", "sub log\n", 0755);
	assert_int_equal(atex_aggregator_stop(a), 0);
	/* The artifacts are all still there. */
	assert_file(art, "files/sub/a/log", "sub log\n", 0755);
	free(link);
	free(dest);
	atex_aggregator_free(a);
}

static void test_files_linked(void **state)
{
	struct fixture *f = *state;

	umask(022);
	check_placed(f, f->art, true);
}

/* Another filesystem than /tmp (/dev/shm, usually): files are copied. */
static void test_files_copied(void **state)
{
	struct fixture *f = *state;
	char art[] = "/dev/shm/atex-test-XXXXXX";
	struct stat a, b;

	if (stat("/dev/shm", &a) < 0 || stat(f->tmp, &b) < 0 ||
	    a.st_dev == b.st_dev || !mkdtemp(art))
		skip();
	umask(077); /* the copy's mode is the artifact's, not the umask's */
	check_placed(f, art, false);
	umask(022);
	tree_remove(strdup(art));
}

static void unlink_in(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);

	assert_int_equal(unlink(p), 0);
	free(p);
}

/* attempt_dirs: the Nth ingest of a platform and test puts its files in
 * FILES/N/, so every attempt's files stay; counting is per platform and
 * test, and a new start counts from 1 again. Version 1 options (which end
 * before the field) keep the plain layout. */
static void test_attempt_dirs(void **state)
{
	struct fixture *f = *state;
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = NULL;
	char *p;

	/* FILES/rel holds `want`. */
#define CHECK_FILE(rel, want)                                                  \
	do {                                                                   \
		char *path_ = path_in(f->files, rel),                          \
		     *text_ = slurp(path_, NULL);                              \
		assert_string_equal(text_, want);                              \
		free(text_);                                                   \
		free(path_);                                                   \
	} while (0)

	o.path = f->out;
	o.files_dir = f->files;
	o.attempt_dirs = true;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	write_file(f->art, "results", "{\"status\":\"fail\"}\n");
	write_file(f->art, "files/log", "first\n");
	ingest_ok(a, "p", "/t", f->art);
	/* A new file, as a new attempt's artifacts would have: the
	 * first one is linked into FILES/1 now. */
	unlink_in(f->art, "files/log");
	write_file(f->art, "files/log", "second\n");
	ingest_ok(a, "p", "/t", f->art);
	ingest_ok(a, "q", "/t", f->art);
	CHECK_FILE("1/p/t/log", "first\n");
	CHECK_FILE("2/p/t/log", "second\n");
	p = path_in(f->files, "1/q/t/log");
	assert_true(access(p, F_OK) == 0);
	free(p);
	p = path_in(f->files, "p");
	assert_true(access(p, F_OK) != 0);
	free(p);
	assert_int_equal(atex_aggregator_stop(a), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	unlink_in(f->art, "files/log");
	write_file(f->art, "files/log", "new run\n");
	ingest_ok(a, "p", "/t", f->art);
	CHECK_FILE("1/p/t/log", "new run\n");
	atex_aggregator_free(a);

	o.version = 1;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "v1", "/t", f->art);
	CHECK_FILE("v1/t/log", "new run\n");
	atex_aggregator_free(a);
}
#undef CHECK_FILE

/* Symlinks are never followed: not in the artifacts, not in the files
 * directory left by an earlier ingest. */
static void test_files_no_escape(void **state)
{
	struct fixture *f = *state;
	atex_aggregator *a = jsonl_new(f->out, f->files, 0);
	char *outside = path_in(f->tmp, "outside"), *d;
	json_t *lines, *last;
	DIR *dir;
	int entries = 0;

	assert_int_equal(mkdir(outside, 0755), 0);
	write_file(f->art, "results", "{\"status\":\"pass\"}\n");
	assert_int_equal(atex_aggregator_start(a), 0);
	/* A symlink "d" to the outside directory is copied as such. */
	write_file(f->art, "files/keep", "k\n");
	symlink_in(f->art, "files/d", outside);
	ingest_ok(a, "p", "/a", f->art);
	/* Now "d" is a real directory in the artifacts: the old symlink in
	 * the files directory is replaced, not written through. */
	d = path_in(f->art, "files/d");
	assert_int_equal(unlink(d), 0);
	free(d);
	write_file(f->art, "files/d/inside", "i\n");
	ingest_ok(a, "p", "/a", f->art);
	d = path_in(f->files, "p/a");
	assert_file(d, "d/inside", "i\n", 0644);
	free(d);
	/* A test below /a whose directory would be /a's symlink "b". */
	symlink_in(f->art, "files/b", outside);
	ingest_ok(a, "p", "/a", f->art);
	/* Its files are refused; its results are kept, with an error
	 * naming the place. */
	atex_log_set_level(ATEX_LOG_ERROR);
	ingest_ok(a, "p", "/a/b/c", f->art);
	atex_log_set_level(ATEX_LOG_WARNING);
	assert_int_equal(atex_aggregator_stop(a), 0);
	lines = read_lines(f->out);
	last = json_array_get(lines, json_array_size(lines) - 1);
	assert_string_equal(json_string_value(json_array_get(last, 1)),
			    "error");
	assert_string_equal(json_string_value(json_array_get(last, 2)),
			    "/a/b/c");
	assert_non_null(
		strstr(json_string_value(json_array_get(last, 5)), "/p/a"));
	json_decref(lines);
	dir = opendir(outside);
	assert_non_null(dir);
	for (struct dirent *e; (e = readdir(dir));)
		entries += e->d_name[0] != '.';
	closedir(dir);
	assert_int_equal(entries, 0);
	free(outside);
	atex_aggregator_free(a);
}

/* ---- compression ---- */

/* Decodes as much of `data` as a decoder gives (a cut stream gives what
 * it has). */
static char *gunzip(const void *data, size_t len, size_t *out_len)
{
	struct atex_buf b = ATEX_BUF_INIT;
	z_stream z;
	int ret;

	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	do {
		assert_int_equal(atex_buf_grow(&b, 65536), 0);
		z.next_out = (Bytef *)b.ptr + b.len;
		z.avail_out = (uInt)(b.cap - b.len - 1);
		size_t before = z.avail_out;

		ret = inflate(&z, Z_SYNC_FLUSH);
		b.len += before - z.avail_out;
	} while (ret == Z_OK && (z.avail_out == 0 || z.avail_in > 0));
	if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
		fail_msg("inflate: %d", ret);
	inflateEnd(&z);
	*out_len = b.len;
	return atex_buf_detach(&b);
}

static char *unxz(const void *data, size_t len, size_t *out_len)
{
	struct atex_buf b = ATEX_BUF_INIT;
	lzma_stream x = LZMA_STREAM_INIT;
	lzma_ret ret;

	assert_int_equal(lzma_stream_decoder(&x, UINT64_MAX, 0), LZMA_OK);
	x.next_in = data;
	x.avail_in = len;
	do {
		assert_int_equal(atex_buf_grow(&b, 65536), 0);
		x.next_out = (uint8_t *)b.ptr + b.len;
		x.avail_out = b.cap - b.len - 1;
		size_t before = x.avail_out;

		ret = lzma_code(&x, LZMA_RUN);
		b.len += before - x.avail_out;
	} while (ret == LZMA_OK && (x.avail_out == 0 || x.avail_in > 0));
	if (ret != LZMA_OK && ret != LZMA_STREAM_END && ret != LZMA_BUF_ERROR)
		fail_msg("lzma_code: %d", ret);
	lzma_end(&x);
	*out_len = b.len;
	return atex_buf_detach(&b);
}

typedef char *(*decoder)(const void *, size_t, size_t *);

/* compress_files (options version 3): gzip with exclusions and the
 * default suffix, xz in place; the big file crosses many buffers. */
static void assert_decoded(const char *dir, const char *rel, decoder decode,
			   const char *want, size_t want_len)
{
	char *path = path_in(dir, rel);
	size_t len, out_len;
	char *data = slurp(path, &len);
	char *plain = decode(data, len, &out_len);

	assert_int_equal(out_len, want_len);
	assert_memory_equal(plain, want, want_len);
	free(plain);
	free(data);
	free(path);
}

static void test_compress_files(void **state)
{
	struct fixture *f = *state;
	const char *const exclude[] = {"keep.txt", NULL};
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	size_t big_len = 300000;
	char *big = malloc(big_len + 1), *dir;
	atex_aggregator *a = NULL;
	json_t *lines;

	assert_non_null(big);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)("abcdefgh"[i % 8] + (i / 4096) % 7);
	big[big_len] = '\0';
	write_file(f->art, "results",
		   "{\"status\":\"pass\",\"files\":[\"big\",\"sub/keep.txt\","
		   "\"link\",\"gone\"]}\n");
	write_file(f->art, "files/big", big);
	write_file(f->art, "files/sub/keep.txt", "plain\n");
	symlink_in(f->art, "files/link", "big");

	o.path = f->out;
	o.files_dir = f->files;
	o.compress_files = ATEX_COMPRESSION_GZIP;
	o.files_exclude = exclude;
	o.level = 9;
	o.compress_files = 7;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), ATEX_EINVAL);
	o.compress_files = ATEX_COMPRESSION_GZIP;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	atex_aggregator_free(a);
	lines = read_lines(f->out);
	/* Names get the suffix, whether the file was there or not, except
	 * excluded basenames. */
	assert_json(lines, "[[\"p\",\"pass\",\"/t\",null,[\"big.gz\","
			   "\"sub/keep.txt\",\"link.gz\",\"gone.gz\"],null]]");
	json_decref(lines);
	dir = path_in(f->files, "p/t");
	assert_decoded(dir, "big.gz", gunzip, big, big_len);
	assert_file(dir, "sub/keep.txt", "plain\n",
		    mode_of(f->art, "files/sub/keep.txt") & 07777);
	assert_int_equal(mode_of(dir, "big.gz") & 0777,
			 mode_of(f->art, "files/big") & 0777);
	{
		char target[64];
		char *link = path_in(dir, "link");
		ssize_t n = readlink(link, target, sizeof(target) - 1);

		assert_true(n > 0);
		target[n] = '\0';
		assert_string_equal(target, "big");
		free(link);
	}
	free(dir);

	/* xz, suffix "": compressed under the same name, lists unchanged. */
	char *files2 = path_in(f->tmp, "files2");
	char *out2 = path_in(f->tmp, "out2.jsonl");

	o.path = out2;
	o.files_dir = files2;
	o.compress_files = ATEX_COMPRESSION_XZ;
	o.files_suffix = "";
	o.files_exclude = NULL;
	o.level = 0;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	atex_aggregator_free(a);
	lines = read_lines(out2);
	assert_json(lines, "[[\"p\",\"pass\",\"/t\",null,[\"big\","
			   "\"sub/keep.txt\",\"link\",\"gone\"],null]]");
	json_decref(lines);
	dir = path_in(files2, "p/t");
	assert_decoded(dir, "big", unxz, big, big_len);
	assert_decoded(dir, "sub/keep.txt", unxz, "plain\n", 6);
	free(dir);
	free(files2);
	free(out2);
	free(big);
}

static void write_test_n(const char *art, int i)
{
	char text[512];

	/* Some repetition and some variety, for the compressors. */
	snprintf(text, sizeof(text),
		 "{\"name\":\"sub%d\",\"status\":\"pass\",\"note\":\"%x\"}\n"
		 "{\"status\":\"%s\",\"note\":\"round %d\"}\n",
		 i, (unsigned)i * 2654435761u, i % 3 ? "pass" : "fail", i);
	write_file(art, "results", text);
}

/* Plain, gzip and xz outputs of the same ingests through one multi
 * aggregator: decoded whole, both equal the plain file. */
static void test_compressed_round_trip(void **state)
{
	struct fixture *f = *state;
	char *gz = path_in(f->tmp, "r.jsonl.gz"),
	     *xz = path_in(f->tmp, "r.jsonl.xz");
	atex_aggregator *children[] = {
		jsonl_new(f->out, NULL, 0),
		jsonl_new(gz, NULL, ATEX_COMPRESSION_AUTO),
		jsonl_new(xz, NULL, ATEX_COMPRESSION_XZ),
	};
	atex_aggregator *m = NULL;
	char *plain, *data, *dec;
	size_t plain_len, len, dec_len;
	json_t *lines;

	assert_int_equal(atex_multi_aggregator_new(&m, children, 3, true), 0);
	assert_int_equal(atex_aggregator_start(m), 0);
	for (int i = 0; i < 300; i++) {
		char name[32];

		write_test_n(f->art, i);
		snprintf(name, sizeof(name), "/test/%d", i);
		ingest_ok(m, "p", name, f->art);
	}
	assert_int_equal(atex_aggregator_stop(m), 0);
	plain = slurp(f->out, &plain_len);
	lines = parse_lines(plain, plain_len);
	assert_int_equal(json_array_size(lines), 600);
	json_decref(lines);
	data = slurp(gz, &len);
	assert_true(len < plain_len / 2);
	dec = gunzip(data, len, &dec_len);
	assert_int_equal(dec_len, plain_len);
	assert_memory_equal(dec, plain, plain_len);
	free(dec);
	free(data);
	data = slurp(xz, &len);
	/* Compressed, not just framed: the dictionary outlives a flush. */
	assert_true(len < plain_len / 2);
	dec = unxz(data, len, &dec_len);
	assert_int_equal(dec_len, plain_len);
	assert_memory_equal(dec, plain, plain_len);
	free(dec);
	free(data);
	free(plain);
	atex_aggregator_free(m);
	free(gz);
	free(xz);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* A run that was never stopped (killed): the file cut at any byte decodes
 * to at least everything up to the last ingest completed before the cut,
 * and never to anything else than the plain text. */
static void check_cut(struct fixture *f, int compression, decoder decode)
{
	enum { N = 12 };
	char *path = path_in(f->tmp, "cut.jsonl.c");
	atex_aggregator *plain = jsonl_new(f->out, NULL, 0);
	atex_aggregator *a = jsonl_new(path, NULL, compression);
	off_t csize[N + 1], psize[N + 1];
	char *text, *data;
	size_t text_len, len;

	assert_int_equal(atex_aggregator_start(plain), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	csize[0] = psize[0] = 0;
	for (int i = 0; i < N; i++) {
		char name[32];

		write_test_n(f->art, i);
		snprintf(name, sizeof(name), "/test/%d", i);
		ingest_ok(plain, "p", name, f->art);
		ingest_ok(a, "p", name, f->art);
		csize[i + 1] = file_size(path);
		psize[i + 1] = file_size(f->out);
		assert_true(csize[i + 1] > csize[i]);
	}
	text = slurp(f->out, &text_len);
	data = slurp(path, &len);
	assert_int_equal(len, csize[N]);
	for (size_t cut = 0, k = 0; cut <= len; cut++) {
		size_t dec_len;
		char *dec;

		while (k < N && (size_t)csize[k + 1] <= cut)
			k++;
		dec = decode(data, cut, &dec_len);
		if (dec_len < (size_t)psize[k])
			fail_msg("cut at %zu: %zu bytes decoded, %jd expected",
				 cut, dec_len, (intmax_t)psize[k]);
		assert_true(dec_len <= text_len);
		assert_memory_equal(dec, text, dec_len);
		free(dec);
	}
	free(text);
	free(data);
	atex_aggregator_free(a); /* stops: the stream gets its end */
	atex_aggregator_free(plain);
	data = slurp(path, &len);
	assert_true(len > (size_t)csize[N]);
	free(data);
	free(path);
}

static void test_gzip_cut(void **state)
{
	check_cut(*state, ATEX_COMPRESSION_GZIP, gunzip);
}

static void test_xz_cut(void **state)
{
	check_cut(*state, ATEX_COMPRESSION_XZ, unxz);
}

/* ---- SQLite ---- */

static atex_aggregator *sqlite_new(const char *path, const char *files_dir)
{
	struct atex_sqlite_aggregator_options o =
		ATEX_SQLITE_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = NULL;

	o.path = path;
	o.files_dir = files_dir;
	assert_int_equal(atex_sqlite_aggregator_new(&a, &o), 0);
	return a;
}

/* The rows of `sql` as one line per row, columns separated by "|". */
static char *query(sqlite3 *db, const char *sql)
{
	struct atex_buf b = ATEX_BUF_INIT;
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const unsigned char *v = sqlite3_column_text(st, i);

			atex_buf_printf(&b, "%s%s", i ? "|" : "",
					v ? (const char *)v : "NULL");
		}
		atex_buf_putc(&b, '\n');
	}
	sqlite3_finalize(st);
	return atex_buf_detach(&b);
}

static void test_sqlite(void **state)
{
	struct fixture *f = *state;
	char *db_path = path_in(f->tmp, "r.sqlite"), *wal, *rows;
	atex_aggregator *a = sqlite_new(db_path, f->files), *e = NULL;
	atex_aggregator *j = jsonl_new(f->out, NULL, 0);
	sqlite3 *db;

	/* An earlier run's database and log are replaced. */
	write_file(f->tmp, "r.sqlite", "not a database");
	write_file(f->tmp, "r.sqlite-wal", "junk");
	assert_int_equal(atex_sqlite_aggregator_earlier(&e, j), ATEX_EINVAL);
	assert_int_equal(atex_sqlite_aggregator_earlier(&e, a), 0);
	assert_int_equal(atex_aggregator_ingest(a, "p", "/a", f->art),
			 ATEX_EINVAL);
	assert_int_equal(atex_aggregator_start(a), 0);
	assert_int_equal(atex_aggregator_start(e), 0); /* nothing to do */
	write_two_results(f->art);
	ingest_ok(e, "p", "/a", f->art);
	ingest_ok(e, "p", "/a", f->art);
	ingest_ok(a, "p", "/a", f->art);
	ingest_ok(a, "q", "/a", f->art);
	write_file(f->art, "results",
		   "{\"status\":\"pass\",\"note\":\"it's\"}\n");
	ingest_ok(a, "p", "/b", f->art);
	assert_int_equal(atex_aggregator_stop(e), 0); /* nothing to do */

	/* While it is open, a second connection sees WAL mode and every
	 * committed row. */
	assert_int_equal(
		sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
		SQLITE_OK);
	rows = query(db, "PRAGMA journal_mode");
	assert_string_equal(rows, "wal\n");
	free(rows);
	rows = query(db, "SELECT platform, status, test, subtest, note, files,"
			 " attempt, final FROM results ORDER BY id");
	assert_string_equal(rows,
			    "p|fail|/a|sub/a|bad|[\"log\"]|1|0\n"
			    "p|pass|/a|NULL|NULL|[\"output.txt\",\"x/y\"]|1|0\n"
			    "p|fail|/a|sub/a|bad|[\"log\"]|2|0\n"
			    "p|pass|/a|NULL|NULL|[\"output.txt\",\"x/y\"]|2|0\n"
			    "p|fail|/a|sub/a|bad|[\"log\"]|3|1\n"
			    "p|pass|/a|NULL|NULL|[\"output.txt\",\"x/y\"]|3|1\n"
			    "q|fail|/a|sub/a|bad|[\"log\"]|1|1\n"
			    "q|pass|/a|NULL|NULL|[\"output.txt\",\"x/y\"]|1|1\n"
			    "p|pass|/b|NULL|it's|[]|1|1\n");
	free(rows);
	/* One ingest, one time; and a plausible one. */
	rows = query(db, "SELECT COUNT(DISTINCT ingested), MIN(ingested) > "
			 "1600000000, typeof(ingested) FROM results");
	assert_string_equal(rows, "5|1|real\n");
	free(rows);
	rows = query(db, "SELECT name FROM sqlite_master WHERE type = 'index'"
			 " ORDER BY name");
	assert_string_equal(rows, "results_platform\nresults_status\n"
				  "results_test\n");
	free(rows);
	rows = query(db, "SELECT name, \"notnull\", pk FROM "
			 "pragma_table_info('results') ORDER BY cid");
	assert_string_equal(rows, "id|0|1\nplatform|1|0\nstatus|1|0\n"
				  "test|1|0\nsubtest|0|0\nnote|0|0\n"
				  "files|1|0\ningested|1|0\nattempt|1|0\n"
				  "final|1|0\nstarted|0|0\nended|0|0\n"
				  "duration|0|0\nsystem|0|0\nexit_code|0|0\n");
	free(rows);
	sqlite3_close(db);
	/* The files went to the same directory. */
	rows = path_in(f->files, "q/a/sub/a/log");
	assert_true(atex_path_exists(rows));
	free(rows);

	atex_aggregator_free(e);
	assert_int_equal(atex_aggregator_stop(a), 0);
	/* A restart is a new run. */
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/b", f->art);
	atex_aggregator_free(a);
	wal = path_in(f->tmp, "r.sqlite-wal");
	assert_false(atex_path_exists(wal));
	free(wal);
	assert_int_equal(
		sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
		SQLITE_OK);
	rows = query(db, "SELECT test, attempt, final FROM results");
	assert_string_equal(rows, "/b|1|1\n");
	free(rows);
	sqlite3_close(db);
	atex_aggregator_free(j);
	free(db_path);
}

/* ---- YAML ---- */

static json_t *load_yaml_docs(const char *text)
{
	json_t *docs = json_array();
	const char *p = text;

	assert_non_null(docs);
	assert_true(!strncmp(text, "---", 3));
	while (*p) {
		const char *next = strstr(p + 3, "\n---");
		size_t len = next ? (size_t)(next + 1 - p) : strlen(p);
		json_t *doc = NULL;

		if (atex_yaml_load(&doc, p, len, "results.yaml", NULL) < 0)
			fail_msg("%s\n%.*s", atex_error_last(), (int)len, p);
		json_array_append_new(docs, doc);
		p += len;
	}
	return docs;
}

static void test_yaml(void **state)
{
	struct fixture *f = *state;
	char *path = path_in(f->tmp, "r.yaml"), *text;
	atex_aggregator *a = NULL;
	json_t *docs;

	assert_int_equal(atex_yaml_aggregator_new(&a, path, f->files), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	write_two_results(f->art);
	ingest_ok(a, "rhel-9.6@x86_64", "/unit/syscalls", f->art);
	/* Strings that plain would turn into something else; only
	 * subtests. */
	write_file(f->art, "results",
		   "{\"name\":\"yes\",\"status\":\"null\",\"note\":\"1.5\"}\n"
		   "{\"name\":\"- x: y\",\"status\":\"true\",\"note\":"
		   "\"two\\nlines: and # more\",\"files\":[\"~\",\"0x1\"]}\n");
	ingest_ok(a, "p", "/q", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	text = slurp(path, NULL);
	docs = load_yaml_docs(text);
	assert_json(docs,
		    "[{\"platform\":\"rhel-9.6@x86_64\","
		    "\"test\":\"/unit/syscalls\",\"status\":\"pass\","
		    "\"note\":null,\"files\":[\"output.txt\",\"x/y\"],"
		    "\"subtests\":[{\"name\":\"sub/a\",\"status\":\"fail\","
		    "\"note\":\"bad\",\"files\":[\"log\"]}]},"
		    "{\"platform\":\"p\",\"test\":\"/q\",\"status\":null,"
		    "\"note\":null,\"files\":[],\"subtests\":["
		    "{\"name\":\"yes\",\"status\":\"null\",\"note\":\"1.5\","
		    "\"files\":[]},"
		    "{\"name\":\"- x: y\",\"status\":\"true\","
		    "\"note\":\"two\\nlines: and # more\","
		    "\"files\":[\"~\",\"0x1\"]}]}]");
	json_decref(docs);
	free(text);
	free(path);
	text = path_in(f->files, "rhel-9.6@x86_64/unit/syscalls/sub/a/log");
	assert_true(atex_path_exists(text));
	free(text);
	atex_aggregator_free(a);
}

/* libyaml itself reads the stream too (several documents). */
static void test_yaml_libyaml(void **state)
{
	struct fixture *f = *state;
	char *path = path_in(f->tmp, "r.yaml"), *text;
	atex_aggregator *a = NULL;
	yaml_parser_t parser;
	size_t len;
	int docs = 0;

	assert_int_equal(atex_yaml_aggregator_new(&a, path, NULL), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	for (int i = 0; i < 5; i++) {
		write_test_n(f->art, i);
		ingest_ok(a, "p", "/t", f->art);
	}
	atex_aggregator_free(a);
	text = slurp(path, &len);
	assert_true(yaml_parser_initialize(&parser));
	yaml_parser_set_input_string(&parser, (unsigned char *)text, len);
	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;

		if (!yaml_parser_load(&parser, &doc))
			fail_msg("libyaml: %s", parser.problem);
		root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		assert_int_equal(root->type, YAML_MAPPING_NODE);
		docs++;
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	assert_int_equal(docs, 5);
	free(text);
	free(path);
}

/* ---- multi ---- */

/* A user's own aggregator that counts its calls. */
struct counting {
	atex_aggregator base;
	int starts, ingests, stops, *frees;
	int fail_start, fail_ingest;
	char log[256];
};

static void note_call(struct counting *c, const char *what)
{
	strncat(c->log, what, sizeof(c->log) - strlen(c->log) - 1);
}

static int c_start(atex_aggregator *a)
{
	struct counting *c = (struct counting *)a;

	note_call(c, "S");
	c->starts++;
	if (c->fail_start)
		return atex_error_set(ATEX_EIO, "start failed here");
	return 0;
}

static int c_ingest(atex_aggregator *a, const char *p, const char *t,
		    const char *d)
{
	struct counting *c = (struct counting *)a;

	note_call(c, "I");
	c->ingests++;
	if (c->fail_ingest)
		return atex_error_set(c->fail_ingest, "ingest failed: %s", t);
	return 0;
}

static int c_stop(atex_aggregator *a)
{
	struct counting *c = (struct counting *)a;

	note_call(c, "T");
	c->stops++;
	return 0;
}

static void c_free(atex_aggregator *a)
{
	struct counting *c = (struct counting *)a;

	(*c->frees)++;
	free(c);
}

static const struct atex_aggregator_ops counting_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = c_start,
	.ingest = c_ingest,
	.stop = c_stop,
	.free = c_free,
};

static struct counting *counting_new(int *frees)
{
	struct counting *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->base.ops = &counting_ops;
	c->frees = frees;
	return c;
}

static void test_multi(void **state)
{
	int frees = 0;
	struct counting *c[3] = {counting_new(&frees), counting_new(&frees),
				 counting_new(&frees)};
	atex_aggregator *list[3] = {&c[0]->base, &c[1]->base, &c[2]->base};
	atex_aggregator *m = NULL;

	/* Borrowed: freeing the multi leaves them alone. */
	assert_int_equal(atex_multi_aggregator_new(&m, list, 3, false), 0);
	list[0] = NULL; /* the array was copied */
	assert_int_equal(atex_aggregator_start(m), 0);
	ingest_ok(m, "p", "/t", "/nonexistent");
	/* The first failure ends the ingest: the others do not get the
	 * test. */
	c[0]->fail_ingest = ATEX_EIO;
	c[1]->fail_ingest = ATEX_ENOMEM;
	assert_int_equal(atex_aggregator_ingest(m, "p", "/u", "/x"), ATEX_EIO);
	assert_string_equal(atex_error_last(), "ingest failed: /u");
	assert_int_equal(atex_aggregator_stop(m), 0);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(c[i]->log, i == 0 ? "SIIT" : "SIT");
		c[i]->log[0] = '\0';
		c[i]->fail_ingest = 0;
	}
	/* A start that fails stops those started before it. */
	c[2]->fail_start = 1;
	assert_int_equal(atex_aggregator_start(m), ATEX_EIO);
	assert_string_equal(atex_error_last(), "start failed here");
	assert_string_equal(c[0]->log, "ST");
	assert_string_equal(c[1]->log, "ST");
	assert_string_equal(c[2]->log, "S");
	atex_aggregator_free(m);
	assert_int_equal(frees, 0);

	/* Owned: freed with it. */
	list[0] = &c[0]->base;
	assert_int_equal(atex_multi_aggregator_new(&m, list, 3, true), 0);
	atex_aggregator_free(m);
	assert_int_equal(frees, 3);
	assert_int_equal(atex_multi_aggregator_new(&m, list, 0, true),
			 ATEX_EINVAL);
}

/* ---- outputs never follow a planted link ---- */

/* `path` is a symlink to `victim` (and, for `hard`, then a hard link to
 * a second victim): starting `a` and ingesting leaves both victims as
 * they were and makes `path` a file of its own. */
static void check_no_follow(struct fixture *f, atex_aggregator *a,
			    const char *path)
{
	char *victim = path_in(f->tmp, "victim");
	char *victim2 = path_in(f->tmp, "victim2");
	char *text;
	struct stat st;

	write_file(f->tmp, "victim", "precious\n");
	write_file(f->tmp, "victim2", "precious too\n");
	unlink(path);
	assert_int_equal(symlink(victim, path), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	write_two_results(f->art);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	text = slurp(victim, NULL);
	assert_string_equal(text, "precious\n");
	free(text);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_nlink, 1);

	/* A hard link to someone else's file is not written through
	 * either. */
	unlink(path);
	assert_int_equal(link(victim2, path), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	text = slurp(victim2, NULL);
	assert_string_equal(text, "precious too\n");
	free(text);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_nlink, 1);

	/* A FIFO nobody reads: replaced, never a blocking open (the
	 * alarm's default action fails the test instead of a hang). */
	unlink(path);
	assert_int_equal(mkfifo(path, 0644), 0);
	alarm(10);
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	alarm(0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true(st.st_size > 0);
	free(victim);
	free(victim2);
}

static void test_outputs_no_follow(void **state)
{
	struct fixture *f = *state;
	char *yaml = path_in(f->tmp, "r.yaml");
	char *db = path_in(f->tmp, "r.sqlite");
	char *wal = path_in(f->tmp, "r.sqlite-wal");
	char *victim = path_in(f->tmp, "victim");
	atex_aggregator *a = jsonl_new(f->out, NULL, ATEX_COMPRESSION_NONE);
	char *text;

	check_no_follow(f, a, f->out);
	atex_aggregator_free(a);
	a = jsonl_new(f->out, NULL, ATEX_COMPRESSION_GZIP);
	check_no_follow(f, a, f->out);
	atex_aggregator_free(a);
	assert_int_equal(atex_yaml_aggregator_new(&a, yaml, NULL), 0);
	check_no_follow(f, a, yaml);
	atex_aggregator_free(a);
	/* SQLite: the database and its log. */
	a = sqlite_new(db, NULL);
	check_no_follow(f, a, db);
	assert_int_equal(symlink(victim, wal), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	text = slurp(victim, NULL);
	assert_string_equal(text, "precious\n");
	free(text);
	atex_aggregator_free(a);
	free(yaml);
	free(db);
	free(wal);
	free(victim);
}

/* A full disk under one output: the multi aggregator takes the test back
 * from the JSON Lines file before it, so that both hold the same tests. */
static void test_multi_agreement(void **state)
{
	struct fixture *f = *state;
	int frees = 0;
	struct counting *c = counting_new(&frees);
	atex_aggregator *j = jsonl_new(f->out, NULL, ATEX_COMPRESSION_NONE);
	atex_aggregator *list[2] = {j, &c->base};
	atex_aggregator *m = NULL;
	json_t *lines;

	assert_int_equal(atex_multi_aggregator_new(&m, list, 2, true), 0);
	assert_int_equal(atex_aggregator_start(m), 0);
	write_two_results(f->art);
	ingest_ok(m, "p", "/t", f->art);
	c->fail_ingest = ATEX_EIO;
	assert_int_equal(atex_aggregator_ingest(m, "p", "/u", f->art),
			 ATEX_EIO);
	c->fail_ingest = 0;
	ingest_ok(m, "p", "/v", f->art);
	assert_int_equal(atex_aggregator_stop(m), 0);
	lines = read_lines(f->out);
	assert_int_equal(json_array_size(lines), 4);
	for (size_t i = 0; i < json_array_size(lines); i++)
		assert_string_not_equal(json_string_value(json_array_get(
						json_array_get(lines, i), 2)),
					"/u");
	json_decref(lines);
	atex_aggregator_free(m);
	assert_int_equal(frees, 1);
}

/* Version 3 options: strict reading (Python ATEX's semantics), exclusive
 * start, and the compression level. */
static atex_aggregator *strict_new(const char *path, const char *files_dir,
				   int compression, unsigned int level)
{
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = NULL;

	o.path = path;
	o.files_dir = files_dir;
	o.compression = compression;
	o.strict = true;
	o.exclusive = true;
	o.level = level;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), 0);
	return a;
}

static void test_strict_exclusive(void **state)
{
	struct fixture *f = *state;
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a = NULL, *b;
	char *p;
	json_t *lines;

	/* A level out of range is refused at creation. */
	o.path = f->out;
	o.compression = ATEX_COMPRESSION_GZIP;
	o.level = 10;
	assert_int_equal(atex_jsonl_aggregator_new(&a, &o), ATEX_EINVAL);
	assert_null(a);

	a = strict_new(f->out, f->files, 0, 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	/* No results file: ENOTFOUND naming it, nothing written. */
	assert_int_equal(atex_aggregator_ingest(a, "p", "/missing", f->art),
			 ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), "results does not exist"));
	/* A malformed line: EFORMAT with file:line, nothing written. */
	write_file(f->art, "results", "{\"status\":\"pass\"}\nnot json\n");
	assert_int_equal(atex_aggregator_ingest(a, "p", "/bad", f->art),
			 ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "results:2:"));
	/* No status stays null; an empty files/ makes no directory. */
	write_file(f->art, "results", "{\"name\":\"s\"}\n");
	p = path_in(f->art, "files");
	assert_int_equal(mkdir(p, 0755), 0);
	ingest_ok(a, "p", "/nostatus", f->art);
	free(p);
	p = path_in(f->files, "p");
	assert_false(atex_path_is_dir(p));
	free(p);
	/* An empty results file: no line. */
	write_file(f->art, "results", "");
	ingest_ok(a, "p", "/empty", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	lines = read_lines(f->out);
	assert_json(lines, "[[\"p\",null,\"/nostatus\",\"s\",[],null]]");
	json_decref(lines);

	/* Exclusive: the outputs exist now, so a second start fails. */
	b = strict_new(f->out, f->tmp, 0, 0);
	assert_int_equal(atex_aggregator_start(b), ATEX_EEXISTS);
	assert_non_null(strstr(atex_error_last(), "already exists"));
	atex_aggregator_free(b);
	p = path_in(f->tmp, "new.jsonl");
	b = strict_new(p, f->files, 0, 0);
	assert_int_equal(atex_aggregator_start(b), ATEX_EEXISTS);
	atex_aggregator_free(b);
	free(p);
	atex_aggregator_free(a);

	/* Levels: gzip 9 and xz 9 | extreme write readable streams. */
	p = path_in(f->tmp, "l.jsonl.gz");
	a = strict_new(p, NULL, ATEX_COMPRESSION_GZIP, 9);
	assert_int_equal(atex_aggregator_start(a), 0);
	write_file(f->art, "results", "{\"status\":\"pass\"}\n");
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	atex_aggregator_free(a);
	free(p);
	p = path_in(f->tmp, "l.jsonl.xz");
	a = strict_new(p, NULL, ATEX_COMPRESSION_XZ, 6 | LZMA_PRESET_EXTREME);
	assert_int_equal(atex_aggregator_start(a), 0);
	ingest_ok(a, "p", "/t", f->art);
	assert_int_equal(atex_aggregator_stop(a), 0);
	atex_aggregator_free(a);
	free(p);
}

/* The compact layout (Python ATEX's), strict and exclusive. */
static void test_yaml_compact(void **state)
{
	struct fixture *f = *state;
	struct atex_yaml_aggregator_options o =
		ATEX_YAML_AGGREGATOR_OPTIONS_INIT;
	char *path = path_in(f->tmp, "c.yaml"), *text;
	atex_aggregator *a = NULL;
	json_t *docs;

	o.version = 99;
	assert_int_equal(atex_yaml_aggregator_new_opts(&a, &o), ATEX_EINVAL);
	o.version = ATEX_YAML_AGGREGATOR_OPTIONS_VERSION;
	o.path = path;
	o.files_dir = f->files;
	o.compact = o.strict = o.exclusive = true;
	assert_int_equal(atex_yaml_aggregator_new_opts(&a, &o), 0);
	assert_int_equal(atex_aggregator_start(a), 0);
	write_file(
		f->art, "results",
		"{\"status\":\"fail\",\"name\":\"s1\",\"files\":[\"s.log\"]}\n"
		"{\"status\":\"error\",\"files\":[\"a\"],\"note\":\"first\"}\n"
		"{\"status\":\"pass\",\"files\":[\"b\"],\"note\":\"last\"}\n"
		"{\"name\":\"s2\"}\n");
	ingest_ok(a, "p", "/t1", f->art);
	write_file(f->art, "results", "{}\n");
	ingest_ok(a, "p", "/t2", f->art);
	unlink_in(f->art, "results");
	assert_int_equal(atex_aggregator_ingest(a, "p", "/t3", f->art),
			 ATEX_ENOTFOUND);
	assert_int_equal(atex_aggregator_stop(a), 0);
	text = slurp(path, NULL);
	/* The key order is the document's. */
	assert_non_null(strstr(text, "platform: p\nname: /t1\nstatus: pass\n"
				     "files:\n- a\n- b\nnote: last\n"
				     "subtests:\n"));
	docs = load_yaml_docs(text);
	assert_json(docs, "[{\"platform\":\"p\",\"name\":\"/t1\","
			  "\"status\":\"pass\",\"files\":[\"a\",\"b\"],"
			  "\"note\":\"last\",\"subtests\":["
			  "{\"name\":\"s1\",\"status\":\"fail\","
			  "\"files\":[\"s.log\"]},{\"name\":\"s2\"}]},"
			  "{\"platform\":\"p\",\"name\":\"/t2\"}]");
	json_decref(docs);
	free(text);
	atex_aggregator_free(a);
	/* Exclusive: the file exists now. */
	assert_int_equal(atex_yaml_aggregator_new_opts(&a, &o), 0);
	assert_int_equal(atex_aggregator_start(a), ATEX_EEXISTS);
	atex_aggregator_free(a);
	free(path);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_line_format),
		T(test_concurrent_ingest),
		T(test_malformed_line),
		T(test_missing_results),
		T(test_files_not_placed),
		T(test_bad_names),
		T(test_generic_checks),
		T(test_files_linked),
		T(test_files_copied),
		T(test_files_no_escape),
		T(test_attempt_dirs),
		T(test_compressed_round_trip),
		T(test_gzip_cut),
		T(test_xz_cut),
		T(test_sqlite),
		T(test_yaml),
		T(test_yaml_libyaml),
		T(test_multi),
		T(test_outputs_no_follow),
		T(test_multi_agreement),
		T(test_strict_exclusive),
		T(test_compress_files),
		T(test_yaml_compact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
