/*
 * test_report.c - the report block (atex/report.h): results files loaded
 * in every format, whole and cut short by a killed run, with earlier
 * attempts, then rendered as HTML, JUnit and a summary, the outputs
 * checked for their content, escaping and links.
 *
 * Compressed fixtures are made here with zlib and liblzma, flushed the
 * way the JSON Lines aggregator flushes after each ingest, so that a
 * truncated file is what a killed run leaves.
 */
#include <fcntl.h>
#include <lzma.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <zlib.h>

#include "helpers.h"

#include "atex/report.h"
#include "util/util.h"

/* ---- helpers ---- */

static char *path_in(const char *dir, const char *rel)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
	return p;
}

static void write_bytes(const char *dir, const char *rel, const void *data,
			size_t len)
{
	char *p = path_in(dir, rel);
	FILE *f;

	write_file(dir, rel, ""); /* the directories */
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	free(p);
}

static char *read_whole(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long len;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len >= 0);
	rewind(f);
	data = malloc((size_t)len + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
	data[len] = '\0';
	fclose(f);
	return data;
}

/* gzip of the pieces, a sync flush after each (as the aggregator does
 * after an ingest); the stream is finished when `finish`. *flushed gets
 * the size after each piece. Returns the bytes (caller frees). */
static unsigned char *gzip_pieces(const char *const *pieces, size_t n,
				  bool finish, size_t *len, size_t *flushed)
{
	z_stream z = {0};
	size_t cap = 1 << 16;
	unsigned char *out = malloc(cap);

	assert_non_null(out);
	assert_int_equal(
		deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY),
		Z_OK);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	for (size_t i = 0; i < n; i++) {
		z.next_in = (Bytef *)pieces[i];
		z.avail_in = (uInt)strlen(pieces[i]);
		assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
		flushed[i] = cap - z.avail_out;
	}
	if (finish)
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

/* The same with xz (a sync flush keeps the block open). */
static unsigned char *xz_pieces(const char *const *pieces, size_t n,
				bool finish, size_t *len, size_t *flushed)
{
	lzma_stream x = LZMA_STREAM_INIT;
	size_t cap = 1 << 16;
	unsigned char *out = malloc(cap);
	lzma_ret rc;

	assert_non_null(out);
	assert_int_equal(lzma_easy_encoder(&x, 6, LZMA_CHECK_CRC64), LZMA_OK);
	x.next_out = out;
	x.avail_out = cap;
	for (size_t i = 0; i < n; i++) {
		x.next_in = (const uint8_t *)pieces[i];
		x.avail_in = strlen(pieces[i]);
		while (x.avail_in > 0)
			assert_int_equal(lzma_code(&x, LZMA_RUN), LZMA_OK);
		do
			rc = lzma_code(&x, LZMA_SYNC_FLUSH);
		while (rc == LZMA_OK);
		assert_int_equal(rc, LZMA_STREAM_END);
		flushed[i] = cap - x.avail_out;
	}
	if (finish) {
		do
			rc = lzma_code(&x, LZMA_FINISH);
		while (rc == LZMA_OK);
		assert_int_equal(rc, LZMA_STREAM_END);
	}
	*len = cap - x.avail_out;
	lzma_end(&x);
	return out;
}

/* Warnings logged while a test runs. */
static char warnings[8192];

static void capture(int level, const char *component, const char *message,
		    void *userdata)
{
	size_t used = strlen(warnings);

	(void)userdata;
	if (level <= ATEX_LOG_WARNING)
		snprintf(warnings + used, sizeof(warnings) - used, "%s: %s\n",
			 component, message);
}

static atex_results *load_ok(const char *dir, const char *rel)
{
	atex_results *r = NULL;
	char *p = path_in(dir, rel);
	int rc = atex_results_load(&r, p);

	if (rc)
		fail_msg("loading %s: %s", p, atex_error_last());
	free(p);
	return r;
}

static const struct atex_result *get(const atex_results *r, size_t i)
{
	const struct atex_result *res = atex_results_get(r, i);

	assert_non_null(res);
	return res;
}

static int setup(void **state)
{
	warnings[0] = '\0';
	atex_log_set_handler(capture, NULL);
	*state = tmpdir_new();
	return 0;
}

static int teardown(void **state)
{
	atex_log_set_handler(NULL, NULL);
	tree_remove(*state);
	return 0;
}

static const char *const lines[] = {
	"[\"rhel-9.6@x86_64\", \"pass\", \"/unit/a\", null, [\"out.txt\"], "
	"null]\n",
	"[\"rhel-9.6@x86_64\", \"fail\", \"/unit/b\", \"connect\", "
	"[\"test.txt\", \"logs/x y.log\"], \"Got ECONNABORTED\"]\n",
	"[\"fedora-42@x86_64\", \"skip\", \"/unit/c\", null, [], null]\n",
};

/* ---- loading ---- */

static void test_load_plain(void **state)
{
	char *dir = *state, *expect;
	atex_results *r;
	const struct atex_result *res;

	write_file(dir, "run/results.jsonl", "");
	for (size_t i = 0; i < 3; i++) {
		char *p = path_in(dir, "run/results.jsonl");
		FILE *f = fopen(p, "a");

		fputs(lines[i], f);
		fclose(f);
		free(p);
	}
	r = load_ok(dir, "run/results.jsonl");
	assert_int_equal(atex_results_count(r), 3);
	res = get(r, 1);
	assert_string_equal(res->platform, "rhel-9.6@x86_64");
	assert_string_equal(res->status, "fail");
	assert_string_equal(res->test, "/unit/b");
	assert_string_equal(res->subtest, "connect");
	assert_string_equal(res->note, "Got ECONNABORTED");
	assert_int_equal(res->n_files, 2);
	assert_string_equal(res->files[1], "logs/x y.log");
	assert_true(res->final);
	assert_int_equal(res->attempt, 1);
	expect = path_in(dir, "run/files/rhel-9.6@x86_64/unit/b/connect");
	assert_string_equal(res->files_dir, expect);
	free(expect);
	res = get(r, 0);
	assert_null(res->subtest);
	assert_null(res->note);
	expect = path_in(dir, "run/files/rhel-9.6@x86_64/unit/a");
	assert_string_equal(res->files_dir, expect);
	free(expect);
	assert_null(atex_results_get(r, 3));
	assert_string_equal(warnings, "");
	atex_results_free(r);
}

static void test_load_gzip_members(void **state)
{
	char *dir = *state;
	size_t len1, len2, fl[3];
	unsigned char *a = gzip_pieces(lines, 1, true, &len1, fl);
	unsigned char *b = gzip_pieces(lines + 1, 2, true, &len2, fl);
	unsigned char *both = malloc(len1 + len2);
	atex_results *r;

	/* Two members, as `cat a.gz b.gz` or an appending writer makes. */
	memcpy(both, a, len1);
	memcpy(both + len1, b, len2);
	write_bytes(dir, "results.jsonl.gz", both, len1 + len2);
	r = load_ok(dir, "results.jsonl.gz");
	assert_int_equal(atex_results_count(r), 3);
	assert_string_equal(get(r, 2)->test, "/unit/c");
	assert_string_equal(warnings, "");
	atex_results_free(r);
	free(a);
	free(b);
	free(both);
}

static void test_load_xz(void **state)
{
	char *dir = *state;
	size_t len, fl[3];
	unsigned char *data = xz_pieces(lines, 3, true, &len, fl);
	atex_results *r;

	write_bytes(dir, "results.jsonl.xz", data, len);
	r = load_ok(dir, "results.jsonl.xz");
	assert_int_equal(atex_results_count(r), 3);
	assert_string_equal(get(r, 1)->subtest, "connect");
	assert_string_equal(warnings, "");
	atex_results_free(r);
	free(data);
}

/* A stream cut after the flush of the second piece plus a few bytes of
 * the third: two results and a warning naming the file. */
static void check_truncated(const char *dir, const char *rel,
			    const unsigned char *data, size_t cut)
{
	atex_results *r;

	write_bytes(dir, rel, data, cut);
	r = load_ok(dir, rel);
	assert_int_equal(atex_results_count(r), 2);
	assert_string_equal(get(r, 1)->subtest, "connect");
	assert_non_null(strstr(warnings, rel));
	assert_non_null(strstr(warnings, "report: "));
	atex_results_free(r);
	warnings[0] = '\0';
}

static void test_truncated_gzip(void **state)
{
	char *dir = *state;
	size_t len, fl[3];
	unsigned char *data = gzip_pieces(lines, 3, false, &len, fl);

	check_truncated(dir, "cut.jsonl.gz", data, fl[1]);
	check_truncated(dir, "cut2.jsonl.gz", data, fl[1] + 5);
	/* The third line whole but the stream unfinished: three. */
	write_bytes(dir, "open.jsonl.gz", data, len);
	atex_results *r = load_ok(dir, "open.jsonl.gz");
	assert_int_equal(atex_results_count(r), 3);
	assert_non_null(strstr(warnings, "open.jsonl.gz"));
	atex_results_free(r);
	free(data);
}

static void test_truncated_xz(void **state)
{
	char *dir = *state;
	size_t len, fl[3];
	unsigned char *data = xz_pieces(lines, 3, false, &len, fl);

	check_truncated(dir, "cut.jsonl.xz", data, fl[1]);
	check_truncated(dir, "cut2.jsonl.xz", data, fl[1] + 7);
	free(data);
}

static void test_truncated_last_line(void **state)
{
	char *dir = *state;
	atex_results *r;

	write_file(dir, "results.jsonl",
		   "[\"p\", \"pass\", \"/a\", null, [], null]\n"
		   "\n"
		   "[\"p\", \"fail\", \"/b\", null, [], null]\n"
		   "[\"p\", \"pass\", \"/c\", nu");
	r = load_ok(dir, "results.jsonl");
	assert_int_equal(atex_results_count(r), 2);
	assert_non_null(strstr(warnings, "results.jsonl"));
	atex_results_free(r);

	/* Without its newline but whole: kept, nothing to warn about. */
	warnings[0] = '\0';
	write_file(dir, "results.jsonl",
		   "[\"p\", \"pass\", \"/a\", null, [], null]\n"
		   "[\"p\", \"pass\", \"/c\", null, [], null]");
	r = load_ok(dir, "results.jsonl");
	assert_int_equal(atex_results_count(r), 2);
	assert_string_equal(warnings, "");
	atex_results_free(r);
}

/* `content` has one damaged line, at `where`: it loads, the good lines
 * are kept, and the damaged one is an error result named FILE:LINE whose
 * note says `what`, with a warning naming it too. */
static void expect_damaged(const char *dir, const char *content,
			   const char *where, const char *what, size_t good)
{
	const struct atex_result *bad = NULL;
	atex_results *r = NULL;
	char *p, *test;

	warnings[0] = '\0';
	write_file(dir, "bad.jsonl", content);
	p = path_in(dir, "bad.jsonl");
	test = atex_sprintf("%s:%s", p, where);
	assert_int_equal(atex_results_load(&r, p), 0);
	assert_int_equal(atex_results_count(r), good + 1);
	assert_int_equal(atex_results_damaged(r), 1);
	for (size_t i = 0; i < atex_results_count(r); i++)
		if (!strcmp(get(r, i)->platform, ATEX_RESULTS_DAMAGED_PLATFORM))
			bad = get(r, i);
	assert_non_null(bad);
	assert_string_equal(bad->test, test);
	assert_string_equal(bad->status, "error");
	assert_true(bad->final);
	if (!strstr(bad->note, test) || !strstr(bad->note, what))
		fail_msg("note '%s' lacks '%s' or '%s'", bad->note, test, what);
	if (!strstr(warnings, test))
		fail_msg("warnings '%s' lack '%s'", warnings, test);
	assert_false(atex_results_passed(r));
	atex_results_free(r);
	free(test);
	free(p);
}

static void test_malformed_line(void **state)
{
	char *dir = *state;

	expect_damaged(dir,
		       "[\"p\", \"pass\", \"/a\", null, [], null]\n"
		       "{\"not\": \"a result\"}\n"
		       "[\"p\", \"pass\", \"/c\", null, [], null]\n",
		       "2", "not a result", 2);
	expect_damaged(dir, "[\"p\", \"pass\", \"/a\", null, [], null\n\n", "1",
		       "not JSON", 0);
	expect_damaged(dir, "[\"p\", 5, \"/a\", null, [], null]\n", "1",
		       "status", 0);
	expect_damaged(dir, "\n\n[\"p\", \"pass\", \"\", null, [], null]\n",
		       "3", "empty test", 0);
	expect_damaged(dir,
		       "[\"p\", \"pass\", \"/a\", 1, [], null]\n"
		       "[\"p\", \"pass\", \"/b\", null, [], null]\n",
		       "1", "subtest", 1);
	expect_damaged(dir, "[\"p\", \"pass\", \"/a\", null, [3], null]\n", "1",
		       "file 1", 0);
	expect_damaged(dir, "[\"p\", \"pass\", \"/a\", null, {}, null]\n", "1",
		       "files", 0);
}

/* A null status (Python ATEX's format, the strict JSON Lines aggregator)
 * is a result without status: loaded as an error, not as damage. */
static void test_null_status(void **state)
{
	char *dir = *state;
	atex_results *r;

	write_file(dir, "n/results.jsonl",
		   "[\"p\", null, \"/a\", \"s\", [], null]\n");
	r = load_ok(dir, "n/results.jsonl");
	assert_int_equal(atex_results_count(r), 1);
	assert_int_equal(atex_results_damaged(r), 0);
	assert_string_equal(get(r, 0)->status, "error");
	assert_string_equal(get(r, 0)->subtest, "s");
	assert_false(atex_results_passed(r));
	atex_results_free(r);
}

static void test_not_found(void **state)
{
	char *p = path_in(*state, "nothing.jsonl");
	atex_results *r = NULL;

	assert_int_equal(atex_results_load(&r, p), ATEX_ENOTFOUND);
	assert_non_null(strstr(atex_error_last(), p));
	assert_null(r);
	free(p);
}

/* ---- earlier attempts ---- */

static void test_earlier_attempts(void **state)
{
	char *dir = *state, *expect;
	atex_results *r;
	const struct atex_result *res;

	write_file(dir, "run/results.jsonl",
		   "[\"p1\", \"pass\", \"/a\", null, [], null]\n"
		   "[\"p1\", \"pass\", \"/a\", \"sub\", [], null]\n"
		   "[\"p1\", \"pass\", \"/b\", null, [], null]\n"
		   "[\"p2\", \"pass\", \"/a\", null, [], null]\n");
	/* /a on p1 ran twice before (the second time right after the
	 * first), /a on p2 once; /b never re-ran. */
	write_file(dir, "run/old/results.jsonl",
		   "[\"p1\", \"fail\", \"/a\", null, [\"f.txt\"], \"one\"]\n"
		   "[\"p1\", \"fail\", \"/a\", \"sub\", [], null]\n"
		   "[\"p1\", \"infra\", \"/a\", null, [], \"two\"]\n"
		   "[\"p2\", \"error\", \"/a\", null, [], null]\n");
	r = load_ok(dir, "run/results.jsonl");
	assert_int_equal(atex_results_count(r), 8);
	/* The final ones first, in file order. */
	assert_true(get(r, 0)->final);
	assert_int_equal(get(r, 0)->attempt, 3);
	assert_int_equal(get(r, 1)->attempt, 3);
	assert_int_equal(get(r, 2)->attempt, 1);
	assert_int_equal(get(r, 3)->attempt, 2);
	assert_true(get(r, 3)->final);
	/* Then the earlier ones. */
	res = get(r, 4);
	assert_false(res->final);
	assert_string_equal(res->note, "one");
	assert_int_equal(res->attempt, 1);
	expect = path_in(dir, "run/old/files/p1/a");
	assert_string_equal(res->files_dir, expect);
	free(expect);
	assert_int_equal(get(r, 5)->attempt, 1);
	assert_string_equal(get(r, 5)->subtest, "sub");
	assert_int_equal(get(r, 6)->attempt, 2);
	assert_string_equal(get(r, 6)->note, "two");
	assert_int_equal(get(r, 7)->attempt, 1);
	assert_false(get(r, 7)->final);
	/* Earlier failures do not fail the run. */
	assert_true(atex_results_passed(r));
	atex_results_free(r);
}

static void test_earlier_other_compression(void **state)
{
	char *dir = *state;
	size_t len, fl[3];
	unsigned char *gz = gzip_pieces(lines, 3, true, &len, fl);
	unsigned char *xz;
	atex_results *r;

	write_bytes(dir, "results.jsonl.gz", gz, len);
	xz = xz_pieces(lines + 1, 1, true, &len, fl);
	write_bytes(dir, "old/results.jsonl.xz", xz, len);
	r = load_ok(dir, "results.jsonl.gz");
	assert_int_equal(atex_results_count(r), 4);
	assert_false(get(r, 3)->final);
	assert_int_equal(get(r, 3)->attempt, 1);
	assert_int_equal(get(r, 1)->attempt, 2);
	assert_int_equal(get(r, 0)->attempt, 1);
	atex_results_free(r);
	free(gz);
	free(xz);
}

/* ---- SQLite ---- */

static void sql(sqlite3 *db, const char *text)
{
	char *err = NULL;

	if (sqlite3_exec(db, text, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", text, err);
}

static void test_load_sqlite(void **state)
{
	char *dir = *state, *p = path_in(dir, "results.sqlite"), *expect;
	sqlite3 *db;
	atex_results *r;
	const struct atex_result *res;

	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sql(db, "CREATE TABLE results(id INTEGER PRIMARY KEY, platform TEXT "
		"NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL, subtest "
		"TEXT, note TEXT, files TEXT NOT NULL, ingested REAL NOT NULL, "
		"attempt INTEGER NOT NULL, final INTEGER NOT NULL)");
	sql(db,
	    "INSERT INTO results VALUES"
	    "(1, 'p', 'fail', '/a', NULL, 'first', '[\"a.txt\"]', 1.5, 1, 0),"
	    "(2, 'p', 'pass', '/a', NULL, NULL, '[]', 2.5, 2, 1),"
	    "(3, 'p', 'fail', '/b', 's', 'n', '[\"x\", \"y z\"]', 3, 1, 1)");
	sqlite3_close(db);
	r = load_ok(dir, "results.sqlite");
	assert_int_equal(atex_results_count(r), 3);
	res = get(r, 0);
	assert_string_equal(res->test, "/a");
	assert_true(res->final);
	assert_int_equal(res->attempt, 2);
	res = get(r, 1);
	assert_string_equal(res->subtest, "s");
	assert_int_equal(res->n_files, 2);
	assert_string_equal(res->files[1], "y z");
	expect = path_in(dir, "files/p/b/s");
	assert_string_equal(res->files_dir, expect);
	free(expect);
	res = get(r, 2);
	assert_false(res->final);
	assert_int_equal(res->attempt, 1);
	assert_string_equal(res->note, "first");
	assert_false(atex_results_passed(r));
	atex_results_free(r);

	/* Not a results database. */
	unlink(p);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sql(db, "CREATE TABLE other(x)");
	sqlite3_close(db);
	assert_int_equal(atex_results_load(&r, p), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), p));
	free(p);
}

/* ---- passed ---- */

static void test_passed(void **state)
{
	char *dir = *state;
	atex_results *r;

	write_file(dir, "ok.jsonl",
		   "[\"p\", \"pass\", \"/a\", null, [], null]\n"
		   "[\"p\", \"info\", \"/b\", null, [], null]\n"
		   "[\"p\", \"warn\", \"/c\", null, [], null]\n"
		   "[\"p\", \"skip\", \"/d\", null, [], null]\n");
	r = load_ok(dir, "ok.jsonl");
	assert_true(atex_results_passed(r));
	atex_results_free(r);
	static const char *const failing[] = {"fail", "error", "infra",
					      "custom"};
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(failing); i++) {
		char line[256];

		snprintf(line, sizeof(line),
			 "[\"p\", \"pass\", \"/a\", null, [], null]\n"
			 "[\"p\", \"%s\", \"/b\", \"x\", [], null]\n",
			 failing[i]);
		write_file(dir, "bad.jsonl", line);
		r = load_ok(dir, "bad.jsonl");
		assert_false(atex_results_passed(r));
		atex_results_free(r);
	}
}

/* ---- HTML ---- */

static atex_results *sample(const char *dir)
{
	write_file(dir, "run/results.jsonl",
		   "[\"p1\", \"pass\", \"/a\", null, [\"out.txt\"], null]\n"
		   "[\"p1\", \"fail\", \"/t&<b>\", \"s\\\"q'\", "
		   "[\"x y#?.txt\", \"d/z.log\"], "
		   "\"bad <script>alert(1)</script>\"]\n"
		   "[\"p2\", \"error\", \"/c\", null, [], \"line1\\nline2\"]\n"
		   "[\"p2\", \"odd\", \"/d\", null, [], null]\n");
	write_file(dir, "run/old/results.jsonl",
		   "[\"p1\", \"fail\", \"/a\", null, [\"old.txt\"], "
		   "\"flaky\"]\n");
	return load_ok(dir, "run/results.jsonl");
}

static void test_html_escaping(void **state)
{
	char *dir = *state, *html, *p = path_in(dir, "run/report.html");
	atex_results *r = sample(dir);

	assert_int_equal(atex_report_html(r, p, "T <i>itle</i>"), 0);
	html = read_whole(p);
	assert_null(strstr(html, "<script>alert"));
	assert_non_null(
		strstr(html, "bad &lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(html, "data-test=\"/t&amp;&lt;b&gt;\""));
	assert_non_null(strstr(html, "data-subtest=\"s&quot;q&#39;\""));
	assert_non_null(strstr(html, "<title>T &lt;i&gt;itle&lt;/i&gt;"));
	/* Self-contained: nothing from the network. */
	assert_null(strstr(html, "http://"));
	assert_null(strstr(html, "https://"));
	assert_null(strstr(html, "<link"));
	assert_null(strstr(html, "src="));
	/* Exactly one script element, ours. */
	assert_non_null(strstr(html, "<script>"));
	assert_null(strstr(strstr(html, "<script>") + 1, "<script"));
	/* The counts, the filters, the columns. */
	assert_non_null(strstr(html, "data-status=\"fail\" data-count=\"1\""));
	assert_non_null(strstr(html, "data-status=\"odd\" data-count=\"1\""));
	assert_non_null(strstr(html, "data-status=\"pass\" data-count=\"1\""));
	assert_non_null(strstr(html, "name=\"status\" value=\"fail\""));
	assert_non_null(strstr(html, "<option value=\"p2\">p2</option>"));
	assert_non_null(strstr(html, "id=\"f-test\""));
	assert_non_null(strstr(html, "<th>Attempt</th>"));
	free(html);
	free(p);
	atex_results_free(r);
}

static void test_html_links(void **state)
{
	char *dir = *state, *html, *p;
	atex_results *r = sample(dir);

	/* Next to the results. */
	p = path_in(dir, "run/report.html");
	assert_int_equal(atex_report_html(r, p, NULL), 0);
	html = read_whole(p);
	assert_non_null(strstr(html, "href=\"files/p1/a/out.txt\""));
	free(html);
	free(p);

	/* Elsewhere, two levels down a sibling tree. */
	write_file(dir, "pages/sub/.keep", "");
	p = path_in(dir, "pages/sub/report.html");
	assert_int_equal(atex_report_html(r, p, NULL), 0);
	html = read_whole(p);
	assert_non_null(strstr(html, "href=\"../../run/files/p1/a/out.txt\""));
	assert_non_null(strstr(html, "href=\"../../run/files/p1/t%26%3Cb%3E/"
				     "s%22q%27/x%20y%23%3F.txt\""));
	assert_non_null(strstr(html,
			       "href=\"../../run/files/p1/t%26%3Cb%3E/s%22q%27/"
			       "d/z.log\""));
	/* An earlier attempt's files are under old/files. */
	assert_non_null(
		strstr(html, "href=\"../../run/old/files/p1/a/old.txt\""));
	free(html);
	free(p);
	atex_results_free(r);
}

static void test_html_earlier(void **state)
{
	char *dir = *state, *html, *p = path_in(dir, "run/report.html");
	atex_results *r = sample(dir);
	const char *final_row, *earlier_row, *next_test;

	assert_int_equal(atex_report_html(r, p, NULL), 0);
	html = read_whole(p);
	final_row = strstr(html, "data-test=\"/a\" data-subtest=\"\" "
				 "data-attempt=\"2\" data-final=\"1\"");
	earlier_row = strstr(html, "data-test=\"/a\" data-subtest=\"\" "
				   "data-attempt=\"1\" data-final=\"0\"");
	next_test = strstr(html, "data-test=\"/t&amp;");
	assert_non_null(final_row);
	assert_non_null(earlier_row);
	assert_non_null(next_test);
	/* Right under its final row, before the next test. */
	assert_true(final_row < earlier_row);
	assert_true(earlier_row < next_test);
	assert_non_null(strstr(earlier_row, "earlier attempt"));
	assert_true(strstr(earlier_row, "earlier attempt") < next_test);
	/* Not hidden in the page as written. */
	assert_null(strstr(html, " hidden"));
	free(html);
	free(p);
	atex_results_free(r);
}

/* ---- JUnit ---- */

static void test_junit(void **state)
{
	char *dir = *state, *xml, *p = path_in(dir, "junit.xml");
	atex_results *r = sample(dir);

	assert_int_equal(atex_report_junit(r, p), 0);
	xml = read_whole(p);
	assert_true(!strncmp(xml, "<?xml version=\"1.0\"", 19));
	/* 4 final results: 2 failures (fail, a custom status), 1 error; the
	 * earlier attempt is not a test case. */
	assert_non_null(strstr(xml, "<testsuites name=\"atex\" tests=\"4\" "
				    "failures=\"2\" errors=\"1\" "
				    "skipped=\"0\">"));
	assert_non_null(strstr(xml, "<testsuite name=\"p1\" tests=\"2\" "
				    "failures=\"1\" errors=\"0\""));
	assert_non_null(strstr(xml, "<testsuite name=\"p2\" tests=\"2\" "
				    "failures=\"1\" errors=\"1\""));
	assert_non_null(strstr(xml, "<testcase classname=\"/t&amp;&lt;b&gt;\" "
				    "name=\"s&quot;q&#39;\">"));
	assert_non_null(strstr(xml, "<failure message=\"bad "
				    "&lt;script&gt;alert(1)&lt;/script&gt;\" "
				    "type=\"fail\">"));
	assert_non_null(strstr(xml, "<error message=\"line1&#10;line2\" "
				    "type=\"error\">"));
	assert_non_null(strstr(xml, "<failure message=\"\" type=\"odd\"/>"));
	assert_null(strstr(xml, "flaky"));
	assert_null(strstr(xml, "<script"));
	free(xml);
	free(p);
	atex_results_free(r);
}

static void test_junit_bad_bytes(void **state)
{
	char *dir = *state, *xml, *p = path_in(dir, "junit.xml");
	atex_results *r;

	/* A control character and an invalid byte in a note. */
	write_file(dir, "r.jsonl",
		   "[\"p\", \"fail\", \"/a\", null, [], \"x\\u0001y\"]\n");
	r = load_ok(dir, "r.jsonl");
	assert_int_equal(atex_report_junit(r, p), 0);
	xml = read_whole(p);
	assert_non_null(strstr(xml, "message=\"x\xef\xbf\xbdy\""));
	free(xml);
	free(p);
	atex_results_free(r);
}

/* ---- summary ---- */

static char *summary_of(atex_results *r)
{
	char *out = NULL, path[] = "/tmp/atex-test-summary-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(atex_report_summary(r, fd), 0);
	close(fd);
	out = read_whole(path);
	unlink(path);
	return out;
}

static void test_summary(void **state)
{
	char *dir = *state, *text;
	atex_results *r = sample(dir);

	text = summary_of(r);
	assert_non_null(strstr(text, "PLATFORM   pass   fail  error  infra   "
				     "warn   info   skip    odd  total\n"));
	assert_non_null(strstr(text, "p1            1      1      0      0"
				     "      0      0      0      0      2\n"));
	assert_non_null(strstr(text, "p2            0      0      1      0"
				     "      0      0      0      1      2\n"));
	assert_non_null(strstr(text, "total         1      1      1"));
	assert_non_null(strstr(text, "1 earlier attempt"));
	assert_non_null(strstr(text, "\nFailures:\n"
				     "fail   p1  /t&<b>/s\"q'  bad "
				     "<script>alert(1)</script>\n"
				     "error  p2  /c           line1\\nline2\n"
				     "odd    p2  /d\n"));
	assert_null(strstr(text, "flaky"));
	free(text);
	atex_results_free(r);

	/* One platform: no platform column, no total row. */
	write_file(dir, "one.jsonl",
		   "[\"p\", \"pass\", \"/a\", null, [], null]\n"
		   "[\"p\", \"fail\", \"/b\", \"x\", [], \"why\"]\n");
	r = load_ok(dir, "one.jsonl");
	text = summary_of(r);
	assert_null(strstr(text, "\ntotal"));
	assert_non_null(strstr(text, "\nFailures:\nfail  /b/x  why\n"));
	free(text);
	atex_results_free(r);

	write_file(dir, "ok.jsonl",
		   "[\"p\", \"pass\", \"/a\", null, [], null]\n");
	r = load_ok(dir, "ok.jsonl");
	text = summary_of(r);
	assert_non_null(strstr(text, "\nNo failures.\n"));
	assert_null(strstr(text, "Failures:"));
	free(text);
	atex_results_free(r);
}

/* NULLs get ATEX_EINVAL and a message, never a crash or an empty report
 * that looks like a good one. */
static void test_null_arguments(void **state)
{
	atex_results *r = NULL;

	(void)state;
	assert_false(atex_results_passed(NULL));
	assert_int_equal(atex_results_load(NULL, "x.jsonl"), ATEX_EINVAL);
	assert_int_equal(atex_results_load(&r, NULL), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "path is NULL"));
	assert_int_equal(atex_report_html(NULL, "x.html", NULL), ATEX_EINVAL);
	assert_int_equal(atex_report_junit(NULL, "x.xml"), ATEX_EINVAL);
	assert_int_equal(atex_report_summary(NULL, 1), ATEX_EINVAL);
	atex_results_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_load_plain),
		T(test_load_gzip_members),
		T(test_load_xz),
		T(test_truncated_gzip),
		T(test_truncated_xz),
		T(test_truncated_last_line),
		T(test_malformed_line),
		T(test_not_found),
		T(test_null_status),
		T(test_earlier_attempts),
		T(test_earlier_other_compression),
		T(test_load_sqlite),
		T(test_passed),
		T(test_html_escaping),
		T(test_html_links),
		T(test_html_earlier),
		T(test_junit),
		T(test_junit_bad_bytes),
		T(test_summary),
		cmocka_unit_test(test_null_arguments),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
