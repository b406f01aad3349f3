/*
 * test_reporter.c - the reporter (src/executor/reporter.h) driven directly,
 * as the control parser would: result_begin with a parsed object, the
 * files' bytes in small pieces, result_end, and at last finish.
 *
 * The expected artifacts are those of the reference Python implementation's
 * test-suite (one test here per test there), plus the error paths. Lines
 * are compared as JSON (json_equal), contents byte for byte.
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "helpers.h"

#include "executor/reporter.h"
#include "util/util.h"

struct fixture {
	char *tmp;
	char artifacts[4096];
	atex_reporter *r;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->tmp = tmpdir_new();
	/* Two levels that do not exist yet: new creates parents. */
	snprintf(f->artifacts, sizeof(f->artifacts), "%s/run/test", f->tmp);
	assert_int_equal(atex_reporter_new(&f->r, f->artifacts), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	atex_reporter_free(f->r);
	tree_remove(f->tmp);
	free(f);
	return 0;
}

/* ---- driving the reporter ---- */

/* Reports one result (JSON text) whose files' contents are `data`, split
 * at the declared lengths and handed over two bytes at a time. Returns the
 * first error. */
static int send_rc(atex_reporter *r, const char *text, const void *data,
		   size_t len)
{
	json_error_t jerr;
	json_t *result = json_loads(text, 0, &jerr), *file;
	size_t lengths[16], n = 0, i, off = 0;
	int rc;

	if (!result)
		fail_msg("bad JSON in the test: %s: %s", text, jerr.text);
	json_array_foreach(json_object_get(result, "files"), i, file)
	{
		assert_true(n < ATEX_ARRAY_SIZE(lengths));
		lengths[n++] = (size_t)json_integer_value(
			json_object_get(file, "length"));
	}
	rc = atex_reporter_result_begin(r, result);
	if (rc)
		return rc;
	for (i = 0; i < n; i++) {
		/* As the parser: no call for a file of length 0. */
		for (size_t left = lengths[i]; left > 0;) {
			size_t piece = left < 2 ? left : 2;

			assert_true(off + piece <= len);
			rc = atex_reporter_file_data(
				r, i, (const char *)data + off, piece);
			if (rc)
				return rc;
			off += piece;
			left -= piece;
		}
	}
	assert_int_equal(off, len);
	return atex_reporter_result_end(r);
}

#define SEND(f, text) send_ok((f)->r, (text), "", 0)
#define SEND_DATA(f, text, data)                                               \
	send_ok((f)->r, (text), (data), sizeof(data) - 1)

static void send_ok(atex_reporter *r, const char *text, const void *data,
		    size_t len)
{
	int rc = send_rc(r, text, data, len);

	if (rc)
		fail_msg("%s: %d: %s", text, rc, atex_error_last());
}

/* What the test writes to its stdout+stderr. */
static void output(struct fixture *f, const char *text)
{
	int fd = open(atex_reporter_output_path(f->r),
		      O_WRONLY | O_APPEND | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void finish_end(struct fixture *f, enum atex_test_end end,
		       const char *note)
{
	struct atex_test_outcome o = {.end = end, .note = note};
	int rc = atex_reporter_finish(f->r, &o);

	if (rc)
		fail_msg("finish: %d: %s", rc, atex_error_last());
}

static void finish_exit(struct fixture *f, int code)
{
	struct atex_test_outcome o = {.end = ATEX_TEST_EXITED,
				      .exit_code = code};
	int rc = atex_reporter_finish(f->r, &o);

	if (rc)
		fail_msg("finish: %d: %s", rc, atex_error_last());
}

/* ---- checking the artifacts ---- */

static char *artifact_path(struct fixture *f, const char *rel)
{
	char *path = NULL;

	assert_true(asprintf(&path, "%s/%s", f->artifacts, rel) > 0);
	return path;
}

static char *read_artifact(struct fixture *f, const char *rel, size_t *len)
{
	char *path = artifact_path(f, rel), *data = NULL;

	if (atex_file_read(&data, len, path) != 0)
		fail_msg("%s", atex_error_last());
	free(path);
	return data;
}

/* The lines of results, each the JSON given (NULL-terminated list). */
static void assert_lines(struct fixture *f, ...)
{
	char *text = read_artifact(f, "results", NULL), *save = NULL, *line;
	const char *expected;
	size_t n = 0, len = strlen(text);
	va_list ap;

	assert_true(len == 0 || text[len - 1] == '\n');
	va_start(ap, f);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *got = json_loads(line, 0, NULL), *want;

		expected = va_arg(ap, const char *);
		if (!expected)
			fail_msg("unexpected line %zu: %s", n + 1, line);
		want = json_loads(expected, 0, NULL);
		assert_non_null(got);
		assert_non_null(want);
		if (!json_equal(got, want))
			fail_msg("line %zu: got %s, expected %s", n + 1, line,
				 expected);
		json_decref(got);
		json_decref(want);
		n++;
	}
	expected = va_arg(ap, const char *);
	if (expected)
		fail_msg("missing line %zu: %s", n + 1, expected);
	va_end(ap);
	assert_int_equal(atex_reporter_count(f->r), n);
	free(text);
}

static void assert_file(struct fixture *f, const char *rel, const void *data,
			size_t len)
{
	char *path = NULL, *got;
	size_t got_len;

	assert_true(asprintf(&path, "files/%s", rel) > 0);
	got = read_artifact(f, path, &got_len);
	if (got_len != len || memcmp(got, data, len))
		fail_msg("%s: %zu bytes '%s', expected %zu", path, got_len, got,
			 len);
	free(got);
	free(path);
}

#define ASSERT_FILE(f, rel, data)                                              \
	assert_file((f), (rel), (data), sizeof(data) - 1)

static void assert_no_artifact(struct fixture *f, const char *rel)
{
	char *path = artifact_path(f, rel);

	if (atex_path_exists(path))
		fail_msg("%s exists", path);
	free(path);
}

/* The entries of files/, or of a directory under it. */
static size_t count_entries(struct fixture *f, const char *rel)
{
	char *path = artifact_path(f, rel);
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	free(path);
	return n;
}

/* ---- no result: the fallback ---- */

static void test_noresult_pass(void **state)
{
	struct fixture *f = *state;

	output(f, "passing the script\n");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "passing the script\n");
	assert_no_artifact(f, "output.raw");
}

static void test_noresult_fail(void **state)
{
	struct fixture *f = *state;

	output(f, "failing the script\n");
	finish_exit(f, 1);
	assert_lines(f, "{\"status\": \"fail\", \"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "failing the script\n");
}

static void test_noresult_timeout(void **state)
{
	struct fixture *f = *state;

	output(f, "sleeping forever-ish\n");
	finish_end(f, ATEX_TEST_TIMED_OUT, "duration exceeded: 5m");
	assert_lines(f,
		     "{\"status\": \"error\", \"note\": \"duration exceeded: "
		     "5m\", \"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "sleeping forever-ish\n");
}

static void test_noresult_infra(void **state)
{
	struct fixture *f = *state;

	finish_end(f, ATEX_TEST_INFRA, "connection lost");
	assert_lines(f,
		     "{\"status\": \"infra\", \"note\": \"connection lost\", "
		     "\"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "");
}

/* NULL notes get a default; cancel is "infra". */
static void test_noresult_canceled(void **state)
{
	struct fixture *f = *state;

	finish_end(f, ATEX_TEST_CANCELED, NULL);
	assert_lines(f,
		     "{\"status\": \"infra\", \"note\": \"canceled\", "
		     "\"files\": [\"output.txt\"]}",
		     NULL);
}

/* ---- results of the test itself ---- */

static void test_trivial(void **state)
{
	struct fixture *f = *state;

	output(f, "discarded\n");
	SEND(f, "{\"status\": \"pass\"}");
	output(f, "discarded too\n");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\"}", NULL);
	assert_int_equal(count_entries(f, "files"), 0);
	assert_no_artifact(f, "output.raw");
}

/* The test's own result wins over the exit code... */
static void test_trivial_exit_mismatch(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\"}");
	finish_exit(f, 1);
	assert_lines(f, "{\"status\": \"pass\"}", NULL);
}

/* ...but not over a timeout: the test did not finish, whatever it said
 * of itself. Its own results become "error" in place, with a note that
 * keeps what it had said; its subtests stay. (Python ATEX keeps the
 * "pass" and raises to its caller; atex's commands read the results.) */
static void test_trivial_timeout(void **state)
{
	struct fixture *f = *state;

	output(f, "some output\n");
	SEND(f, "{\"status\": \"pass\"}");
	SEND(f, "{\"status\": \"pass\", \"name\": \"sub\"}");
	SEND(f, "{\"status\": \"warn\", \"note\": \"slow\"}");
	finish_end(f, ATEX_TEST_TIMED_OUT, "timeout");
	assert_lines(f,
		     "{\"status\": \"error\", \"note\": \"timeout (it had "
		     "reported 'pass')\"}",
		     "{\"status\": \"pass\", \"name\": \"sub\"}",
		     "{\"status\": \"error\", \"note\": \"timeout (it had "
		     "reported 'warn': slow)\"}",
		     NULL);
	assert_int_equal(count_entries(f, "files"), 0);
}

/* A lost system or a cancel: "infra", the same way; an open partial
 * result of its own is settled too, and nothing is added. */
static void test_trivial_infra(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\"}");
	SEND(f, "{\"status\": \"pass\", \"partial\": true}");
	finish_end(f, ATEX_TEST_INFRA, "lost");
	assert_lines(f,
		     "{\"status\": \"infra\", \"note\": \"lost (it had "
		     "reported 'pass')\"}",
		     "{\"status\": \"infra\", \"note\": \"lost (it had "
		     "reported 'pass')\"}",
		     NULL);
}

static void test_trivial_repeated(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\"}");
	SEND(f, "{\"status\": \"fail\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\"}", "{\"status\": \"fail\"}",
		     NULL);
}

/* ---- subtests ---- */

static void test_subtest(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"fail\", \"name\": \"subtest\"}");
	SEND(f, "{\"status\": \"pass\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"fail\", \"name\": \"subtest\"}",
		     "{\"status\": \"pass\"}", NULL);
}

static void test_subtest_no_status(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"name\": \"subtest\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"name\": \"subtest\"}",
		     "{\"status\": \"pass\", \"files\": [\"output.txt\"]}",
		     NULL);
}

static void test_subtest_testout(void **state)
{
	struct fixture *f = *state;

	output(f, "the whole output\n");
	SEND(f, "{\"status\": \"fail\", \"name\": \"subtest\", "
		"\"testout\": \"out.txt\"}");
	SEND(f, "{\"status\": \"pass\"}");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"fail\", \"name\": \"subtest\", "
		     "\"files\": [\"out.txt\"]}",
		     "{\"status\": \"pass\"}", NULL);
	ASSERT_FILE(f, "subtest/out.txt", "the whole output\n");
	assert_no_artifact(f, "files/output.txt");
}

/* ---- files ---- */

static void test_files(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"pass\", \"files\": [{\"name\": "
		  "\"some_file\", \"length\": 5}]}",
		  "\x00\x10\x20\x30\x40");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"some_file\"]}",
		     NULL);
	ASSERT_FILE(f, "some_file", "\x00\x10\x20\x30\x40");
}

static void test_files_subpath(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"pass\", \"files\": [{\"name\": "
		  "\"some/file\", \"length\": 5}]}",
		  "\x00\x10\x20\x30\x40");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"some/file\"]}",
		     NULL);
	ASSERT_FILE(f, "some/file", "\x00\x10\x20\x30\x40");
}

static void test_files_subtest(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"pass\", \"name\": \"sub/res/ult\", "
		  "\"files\": [{\"name\": \"some_file\", \"length\": 5}]}",
		  "\x00\x10\x20\x30\x40");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"pass\", \"name\": \"sub/res/ult\", "
		     "\"files\": [\"some_file\"]}",
		     "{\"status\": \"pass\", \"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "sub/res/ult/some_file", "\x00\x10\x20\x30\x40");
}

static void test_files_multiple(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"pass\", \"files\": ["
		  "{\"name\": \"first_file\", \"length\": 2}, "
		  "{\"name\": \"second_file\", \"length\": 3}]}",
		  "\x00\x10\x20\x30\x40");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"pass\", \"files\": [\"first_file\", "
		     "\"second_file\"]}",
		     NULL);
	ASSERT_FILE(f, "first_file", "\x00\x10");
	ASSERT_FILE(f, "second_file", "\x20\x30\x40");
}

static void test_files_multiple_results(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"fail\", \"files\": ["
		  "{\"name\": \"first_file\", \"length\": 2}]}",
		  "\x00\x10");
	SEND_DATA(f,
		  "{\"status\": \"pass\", \"files\": ["
		  "{\"name\": \"second_file\", \"length\": 3}]}",
		  "\x20\x30\x40");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"fail\", \"files\": [\"first_file\"]}",
		     "{\"status\": \"pass\", \"files\": [\"second_file\"]}",
		     NULL);
	ASSERT_FILE(f, "first_file", "\x00\x10");
	ASSERT_FILE(f, "second_file", "\x20\x30\x40");
}

static void test_files_append(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"pass\", \"files\": ["
		  "{\"name\": \"one_file\", \"length\": 2}, "
		  "{\"name\": \"one_file\", \"length\": 3}]}",
		  "\x00\x10\x20\x30\x40");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"one_file\"]}",
		     NULL);
	ASSERT_FILE(f, "one_file", "\x00\x10\x20\x30\x40");
}

static void test_files_sorted(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"pass\", \"files\": ["
		  "{\"name\": \"file_B\", \"length\": 2}, "
		  "{\"name\": \"file_C\", \"length\": 2}, "
		  "{\"name\": \"file_A\", \"length\": 2}]}",
		  "\x00\x10\x20\x30\x40\x50");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"pass\", \"files\": [\"file_A\", "
		     "\"file_B\", \"file_C\"]}",
		     NULL);
	ASSERT_FILE(f, "file_B", "\x00\x10");
	ASSERT_FILE(f, "file_C", "\x20\x30");
	ASSERT_FILE(f, "file_A", "\x40\x50");
}

/* A file of length 0 gets no data call, but exists. */
static void test_files_empty(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\", \"files\": [{\"name\": \"empty\", "
		"\"length\": 0}]}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"empty\"]}", NULL);
	ASSERT_FILE(f, "empty", "");
}

/* ---- custom keys ---- */

static void test_custom_keys(void **state)
{
	struct fixture *f = *state;
	static const char text[] =
		"{\"status\": \"pass\", \"custom_string\": \"some string\", "
		"\"custom_number\": 123, \"custom_list\": [1, 2, 3], "
		"\"custom_object\": {\"some key\": \"some value\"}}";

	SEND(f, text);
	finish_exit(f, 0);
	assert_lines(f, text, NULL);
}

/* The line keeps the keys in the order received; "files" stays in place,
 * or comes last when only the testout makes it; one line, compact. */
static void test_key_order(void **state)
{
	struct fixture *f = *state;
	char *text;

	SEND(f, "{\"b\": 1, \"files\": [], \"testout\": \"t\", \"a\": "
		"{\"y\": 1, \"x\": 2}, \"partial\": false}");
	SEND(f, "{\"testout\": \"t\", \"z\": null, \"name\": \"n\"}");
	finish_exit(f, 0);
	text = read_artifact(f, "results", NULL);
	assert_string_equal(
		text, "{\"b\":1,\"files\":[\"t\"],\"a\":{\"y\":1,\"x\":2}}"
		      "\n"
		      "{\"z\":null,\"name\":\"n\",\"files\":[\"t\"]}\n");
	free(text);
}

/* ---- partial results ---- */

static void test_partial(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"fail\", \"partial\": true}");
	SEND(f, "{\"status\": \"pass\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\"}", NULL);
	assert_int_equal(count_entries(f, "files"), 0);
}

static void test_partial_false(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"fail\", \"partial\": true}");
	SEND(f, "{\"status\": \"pass\", \"partial\": false}");
	finish_exit(f, 1);
	assert_lines(f, "{\"status\": \"pass\"}", NULL);
	assert_int_equal(count_entries(f, "files"), 0);
}

/* An open partial result for the test becomes the fallback. */
static void test_partial_abrupt(void **state)
{
	struct fixture *f = *state;

	output(f, "out\n");
	SEND(f, "{\"status\": \"fail\", \"partial\": true}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"fail\", \"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "out\n");
}

static void test_partial_no_status(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"partial\": true}");
	finish_exit(f, 1);
	assert_lines(f, "{\"status\": \"fail\", \"files\": [\"output.txt\"]}",
		     NULL);
}

/* A file output.txt of its own: no testout output.txt on top of it. */
static void test_partial_output_file(void **state)
{
	struct fixture *f = *state;

	output(f, "the test's output\n");
	SEND_DATA(f,
		  "{\"status\": \"pass\", \"partial\": true, \"files\": ["
		  "{\"name\": \"output.txt\", \"length\": 13}]}",
		  "custom output");
	finish_exit(f, 1);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "custom output");
}

static void test_partial_custom_file(void **state)
{
	struct fixture *f = *state;

	output(f, "the test's output\n");
	SEND_DATA(f,
		  "{\"status\": \"pass\", \"partial\": true, \"files\": ["
		  "{\"name\": \"custom.txt\", \"length\": 6}]}",
		  "custom");
	finish_exit(f, 1);
	assert_lines(f,
		     "{\"status\": \"pass\", \"files\": [\"output.txt\", "
		     "\"custom.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "the test's output\n");
	ASSERT_FILE(f, "custom.txt", "custom");
}

static void test_partial_custom_file_no_status(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"partial\": true, \"files\": ["
		  "{\"name\": \"custom.txt\", \"length\": 6}]}",
		  "custom");
	finish_exit(f, 1);
	assert_lines(f,
		     "{\"status\": \"fail\", \"files\": [\"output.txt\", "
		     "\"custom.txt\"]}",
		     NULL);
}

/* Killed: the kill's status replaces the partial's. */
static void test_partial_timeout(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\", \"partial\": true}");
	finish_end(f, ATEX_TEST_TIMED_OUT, "timed out");
	assert_lines(f,
		     "{\"status\": \"error\", \"note\": \"timed out\", "
		     "\"files\": [\"output.txt\"]}",
		     NULL);
}

static void test_partial_merging(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"fail\", \"partial\": true, \"attr1\": "
		"\"value1\"}");
	SEND(f, "{\"status\": \"error\", \"partial\": true, \"attr2\": "
		"\"value2\"}");
	SEND(f, "{\"status\": \"pass\"}");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"pass\", \"attr1\": \"value1\", "
		     "\"attr2\": \"value2\"}",
		     NULL);
}

static void test_partial_deleting(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"fail\", \"partial\": true, \"attr1\": "
		"\"value1\", \"obj\": {\"a\": 1, \"b\": 2}}");
	SEND(f, "{\"status\": \"pass\", \"attr1\": null, \"obj\": {\"a\": "
		"null}, \"never\": null}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"obj\": {\"b\": 2}}", NULL);
}

static void test_partial_overwriting(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"fail\", \"partial\": true, "
		"\"custom_string\": \"first string\", \"custom_number\": 123, "
		"\"custom_list\": [1, 2, 3], "
		"\"custom_object\": {\"first key\": \"first value\", "
		"\"deep\": {\"x\": [1]}}}");
	SEND(f, "{\"status\": \"pass\", "
		"\"custom_string\": \"second string\", \"custom_number\": 456, "
		"\"custom_list\": [4, 5, 6], "
		"\"custom_object\": {\"second key\": \"second value\", "
		"\"deep\": {\"x\": [2]}}}");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"pass\", "
		     "\"custom_string\": \"second string\", "
		     "\"custom_number\": 456, "
		     "\"custom_list\": [1, 2, 3, 4, 5, 6], "
		     "\"custom_object\": {\"first key\": \"first value\", "
		     "\"deep\": {\"x\": [1, 2]}, "
		     "\"second key\": \"second value\"}}",
		     NULL);
}

static void test_partial_type_change(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"partial\": true, \"a\": [1], \"b\": {\"k\": 1}, "
		"\"c\": \"s\", \"d\": 1, \"e\": true}");
	SEND(f, "{\"a\": {\"k\": 2}, \"b\": [2], \"c\": 3, \"d\": 1.5, "
		"\"e\": false}");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"a\": {\"k\": 2}, \"b\": [2], \"c\": 3, \"d\": 1.5, "
		     "\"e\": false}",
		     NULL);
}

static void test_partial_subtests(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"fail\", \"name\": \"sub1\", "
		"\"partial\": true}");
	SEND(f, "{\"status\": \"error\", \"name\": \"sub2\", "
		"\"partial\": true}");
	SEND(f, "{\"status\": \"pass\", \"name\": \"sub1\"}");
	SEND(f, "{\"status\": \"pass\"}");
	assert_int_equal(atex_reporter_count(f->r), 2);
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"name\": \"sub1\"}",
		     "{\"status\": \"pass\"}",
		     "{\"status\": \"error\", \"name\": \"sub2\"}", NULL);
}

/* Open results close at finish in first-seen order, the test's own (with
 * the fallback) among them. */
static void test_partial_finish_order(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"name\": \"b\", \"partial\": true}");
	SEND(f, "{\"status\": \"warn\", \"partial\": true}");
	SEND(f, "{\"name\": \"a\", \"partial\": true}");
	SEND(f, "{\"name\": \"b\", \"partial\": true, \"status\": \"info\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"name\": \"b\", \"status\": \"info\"}",
		     "{\"status\": \"warn\", \"files\": [\"output.txt\"]}",
		     "{\"name\": \"a\"}", NULL);
}

static void test_partial_files(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"fail\", \"partial\": true, \"files\": ["
		  "{\"name\": \"second_file\", \"length\": 2}]}",
		  "\x00\x10");
	SEND_DATA(f,
		  "{\"status\": \"pass\", \"files\": ["
		  "{\"name\": \"first_file\", \"length\": 3}]}",
		  "\x20\x30\x40");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"pass\", \"files\": [\"first_file\", "
		     "\"second_file\"]}",
		     NULL);
	ASSERT_FILE(f, "second_file", "\x00\x10");
	ASSERT_FILE(f, "first_file", "\x20\x30\x40");
}

static void test_partial_files_append(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"fail\", \"partial\": true, \"files\": ["
		  "{\"name\": \"one_file\", \"length\": 2}]}",
		  "\x00\x10");
	SEND_DATA(f,
		  "{\"status\": \"pass\", \"files\": ["
		  "{\"name\": \"one_file\", \"length\": 3}]}",
		  "\x20\x30\x40");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"one_file\"]}",
		     NULL);
	ASSERT_FILE(f, "one_file", "\x00\x10\x20\x30\x40");
}

/* ---- TMT_TEST_DATA copies ---- */

/* A client that streams a log and also writes it to TMT_TEST_DATA (as
 * contest's lib/results.py does under tmt's variables): the wrapper's
 * upload of data/LOG, byte for byte the streamed LOG, is stored once. */
static void test_data_copy_stored_once(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"error\", \"partial\": true, \"files\": ["
		  "{\"name\": \"log\", \"length\": 3}]}",
		  "ab\n");
	SEND_DATA(f,
		  "{\"status\": \"error\", \"partial\": true, \"files\": ["
		  "{\"name\": \"log\", \"length\": 3}]}",
		  "cd\n");
	SEND(f, "{\"status\": \"pass\", \"note\": null}");
	/* What the wrapper sends after the test: the copy, and files that
	 * are not copies (other contents, no such own file) kept. */
	SEND_DATA(f,
		  "{\"partial\": true, \"files\": ["
		  "{\"name\": \"data/log\", \"length\": 6}]}",
		  "ab\ncd\n");
	SEND_DATA(f,
		  "{\"partial\": true, \"files\": ["
		  "{\"name\": \"data/sub/log\", \"length\": 2}, "
		  "{\"name\": \"data/other\", \"length\": 1}]}",
		  "x\ny");
	finish_exit(f, 0);
	/* (they join the result the test closed, see
	 * test_data_after_own_result) */
	assert_lines(f,
		     "{\"status\": \"pass\", \"files\": [\"log\", "
		     "\"data/sub/log\", \"data/other\"]}",
		     NULL);
	ASSERT_FILE(f, "log", "ab\ncd\n");
	ASSERT_FILE(f, "data/other", "y");
	assert_no_artifact(f, "files/data/log");
}

/* Not a copy: different bytes, a subtest's data/ file, or a data/ file
 * that an earlier result uploaded already (its line names it). */
static void test_data_copy_kept(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"partial\": true, \"files\": ["
		  "{\"name\": \"log\", \"length\": 3}, "
		  "{\"name\": \"seen\", \"length\": 1}, "
		  "{\"name\": \"data/seen\", \"length\": 0}]}",
		  "ab\nz");
	SEND_DATA(f,
		  "{\"partial\": true, \"files\": ["
		  "{\"name\": \"data/log\", \"length\": 3}, "
		  "{\"name\": \"data/seen\", \"length\": 1}]}",
		  "ab!z");
	SEND_DATA(f,
		  "{\"name\": \"sub\", \"status\": \"pass\", \"files\": ["
		  "{\"name\": \"data/log\", \"length\": 3}]}",
		  "ab\n");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"pass\", \"name\": \"sub\", \"files\": "
		     "[\"data/log\"]}",
		     "{\"status\": \"pass\", \"files\": [\"output.txt\", "
		     "\"data/log\", \"data/seen\", \"log\", \"seen\"]}",
		     NULL);
	ASSERT_FILE(f, "data/log", "ab!");
	ASSERT_FILE(f, "data/seen", "z");
	ASSERT_FILE(f, "sub/data/log", "ab\n");
}

/* The wrapper's upload of TMT_TEST_DATA after the test closed its own
 * result joins that result: no second result without a status (it read
 * as an error). A late partial with anything else stays its own line. */
static void test_data_after_own_result(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\", \"note\": \"mine\"}");
	SEND_DATA(f,
		  "{\"partial\": true, \"files\": ["
		  "{\"name\": \"data/log\", \"length\": 3}]}",
		  "ab\n");
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"pass\", \"note\": \"mine\", "
		     "\"files\": [\"data/log\"]}",
		     NULL);
	ASSERT_FILE(f, "data/log", "ab\n");
}

static void test_late_own_partial_with_note(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\"}");
	SEND(f, "{\"partial\": true, \"note\": \"late\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\"}", "{\"note\": \"late\"}", NULL);
}

/* ---- testout ---- */

static void test_testout(void **state)
{
	struct fixture *f = *state;

	output(f, "first line\n");
	SEND(f, "{\"status\": \"pass\", \"testout\": \"here.txt\"}");
	output(f, "second line\n");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"here.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "here.txt", "first line\nsecond line\n");
	assert_no_artifact(f, "files/output.txt");
	assert_no_artifact(f, "output.raw");
}

static void test_testout_partial(void **state)
{
	struct fixture *f = *state;

	output(f, "some line\n");
	SEND(f, "{\"status\": \"fail\", \"testout\": \"here.txt\", "
		"\"partial\": true}");
	SEND(f, "{\"status\": \"pass\", \"testout\": \"there.txt\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"there.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "there.txt", "some line\n");
	assert_no_artifact(f, "files/here.txt");
	assert_no_artifact(f, "files/output.txt");
}

static void test_testout_multiple(void **state)
{
	struct fixture *f = *state;

	output(f, "some line\n");
	SEND(f, "{\"status\": \"pass\", \"testout\": \"here.txt\"}");
	SEND_DATA(f,
		  "{\"status\": \"pass\", \"testout\": \"there.txt\", "
		  "\"files\": [{\"name\": \"a\", \"length\": 1}]}",
		  "z");
	SEND(f, "{\"name\": \"s\", \"testout\": \"here.txt\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"here.txt\"]}",
		     "{\"status\": \"pass\", \"files\": [\"there.txt\", "
		     "\"a\"]}",
		     "{\"name\": \"s\", \"files\": [\"here.txt\"]}", NULL);
	ASSERT_FILE(f, "here.txt", "some line\n");
	ASSERT_FILE(f, "there.txt", "some line\n");
	ASSERT_FILE(f, "s/here.txt", "some line\n");
	ASSERT_FILE(f, "a", "z");
}

static void test_testout_partial_exit(void **state)
{
	struct fixture *f = *state;

	output(f, "some line\n");
	SEND(f, "{\"testout\": \"here.txt\", \"partial\": true}");
	finish_exit(f, 1);
	assert_lines(f, "{\"status\": \"fail\", \"files\": [\"here.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "here.txt", "some line\n");
	assert_no_artifact(f, "files/output.txt");
}

/* ---- minimal results ---- */

static void test_empty_result(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{}");
	finish_exit(f, 1);
	assert_lines(f, "{}", NULL);
}

static void test_only_custom_key(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"attr1\": \"value1\"}");
	finish_exit(f, 1);
	assert_lines(f, "{\"attr1\": \"value1\"}", NULL);
}

static void test_empty_files(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\", \"files\": []}");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": []}", NULL);
}

/* ---- channel errors ---- */

static void test_channel_error(void **state)
{
	struct fixture *f = *state;

	output(f, "out\n");
	SEND(f, "{\"status\": \"pass\"}");
	SEND(f, "{\"status\": \"pass\", \"name\": \"sub\"}");
	finish_end(f, ATEX_TEST_CHANNEL_ERROR, "invalid JSON in result");
	assert_lines(f, "{\"status\": \"pass\"}",
		     "{\"status\": \"pass\", \"name\": \"sub\"}",
		     "{\"status\": \"error\", \"note\": \"invalid JSON in "
		     "result\", \"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "out\n");
}

/* The error merges into the test's open result; a testout of its own
 * keeps output.txt away. */
static void test_channel_error_partial(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"status\": \"pass\", \"partial\": true, \"testout\": "
		"\"log\", \"x\": 1}");
	finish_end(f, ATEX_TEST_CHANNEL_ERROR, NULL);
	assert_lines(f,
		     "{\"status\": \"error\", \"x\": 1, \"note\": \"test "
		     "control channel error\", \"files\": [\"log\"]}",
		     NULL);
	assert_no_artifact(f, "files/output.txt");
}

/* A result whose files did not all arrive is not reported. */
static void test_result_in_progress(void **state)
{
	struct fixture *f = *state;
	json_t *result = json_loads("{\"status\": \"pass\", \"files\": "
				    "[{\"name\": \"f\", \"length\": 4}]}",
				    0, NULL);

	assert_int_equal(atex_reporter_result_begin(f->r, result), 0);
	assert_int_equal(atex_reporter_file_data(f->r, 0, "ab", 2), 0);
	finish_end(f, ATEX_TEST_CHANNEL_ERROR, "EOF when reading data");
	assert_lines(f,
		     "{\"status\": \"error\", \"note\": \"EOF when reading "
		     "data\", \"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "f", "ab");
}

/* ---- the directory ---- */

/* A directory is one run: results and raw output of an earlier one go. */
static void test_new_truncates(void **state)
{
	struct fixture *f = *state;
	atex_reporter *again = NULL;

	SEND(f, "{\"status\": \"pass\"}");
	output(f, "old output\n");
	assert_int_equal(atex_reporter_new(&again, f->artifacts), 0);
	atex_reporter_free(f->r);
	f->r = again;
	assert_lines(f, NULL);
	output(f, "new\n");
	finish_exit(f, 0);
	ASSERT_FILE(f, "output.txt", "new\n");
}

/* Free without finish leaves the raw output in place. */
static void test_free_unfinished(void **state)
{
	struct fixture *f = *state;
	char *raw = artifact_path(f, "output.raw");

	SEND(f, "{\"status\": \"fail\", \"partial\": true}");
	atex_reporter_free(f->r);
	f->r = NULL;
	assert_true(atex_path_exists(raw));
	free(raw);
	assert_int_equal(atex_reporter_new(&f->r, f->artifacts), 0);
}

/* ---- errors ---- */

static void assert_error(int rc, int code, const char *in_message)
{
	assert_int_equal(rc, code);
	assert_int_equal(atex_error_last_code(), code);
	if (!strstr(atex_error_last(), in_message))
		fail_msg("'%s' not in the message: %s", in_message,
			 atex_error_last());
}

static void test_error_file_then_dir(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f, "{\"files\": [{\"name\": \"a\", \"length\": 1}]}", "x");
	assert_error(
		send_rc(f->r,
			"{\"files\": [{\"name\": \"a/b\", \"length\": 1}]}",
			"y", 1),
		ATEX_EIO, "/files/a");
	/* The refused result is gone; the reporter goes on. */
	SEND(f, "{\"status\": \"pass\"}");
	finish_exit(f, 0);
	assert_lines(f, "{\"files\": [\"a\"]}", "{\"status\": \"pass\"}", NULL);
	ASSERT_FILE(f, "a", "x");
}

static void test_error_dir_then_file(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f, "{\"files\": [{\"name\": \"a/b\", \"length\": 1}]}", "x");
	assert_error(send_rc(f->r,
			     "{\"files\": [{\"name\": \"a\", \"length\": 1}]}",
			     "y", 1),
		     ATEX_EIO, "/files/a");
	/* Within one result too, and for a subtest's directory. */
	assert_error(send_rc(f->r,
			     "{\"files\": [{\"name\": \"c\", \"length\": 0}, "
			     "{\"name\": \"c/d\", \"length\": 0}]}",
			     "", 0),
		     ATEX_EIO, "/files/c");
	/* A subtest's file under another result's file: refused before
	 * the file system is asked, saying whose file it is. */
	assert_error(send_rc(f->r,
			     "{\"name\": \"a/b\", \"files\": [{\"name\": "
			     "\"x\", \"length\": 0}]}",
			     "", 0),
		     ATEX_EFORMAT,
		     "files/a/b/x would land on a file of the test itself");
}

/* A subtest's files never land on the test's own (some arrive only at
 * its end) nor on another result's: refused, saying whose they are. */
static void test_error_clash(void **state)
{
	struct fixture *f = *state;

	assert_error(
		send_rc(f->r,
			"{\"name\": \"output.txt\", \"files\": [{\"name\": "
			"\"x\", \"length\": 0}]}",
			"", 0),
		ATEX_EFORMAT,
		"result 'output.txt': file not stored: files/output.txt/x "
		"would land on the test's own 'output.txt'");
	assert_error(send_rc(f->r,
			     "{\"name\": \"data/sub\", \"files\": [{\"name\": "
			     "\"log\", \"length\": 0}]}",
			     "", 0),
		     ATEX_EFORMAT, "would land on the test's own 'data'");
	SEND(f, "{\"name\": \"a\", \"files\": [{\"name\": \"b\", "
		"\"length\": 0}]}");
	assert_error(send_rc(f->r,
			     "{\"name\": \"a/b\", \"files\": [{\"name\": "
			     "\"c\", \"length\": 0}]}",
			     "", 0),
		     ATEX_EFORMAT,
		     "files/a/b/c would land on a file of result 'a'");
	SEND(f, "{\"name\": \"q\", \"files\": [{\"name\": \"r/s\", "
		"\"length\": 0}]}");
	assert_error(
		send_rc(f->r,
			"{\"files\": [{\"name\": \"q/r\", \"length\": 0}]}", "",
			0),
		ATEX_EFORMAT, "files/q/r would land on a file of result 'q'");
	/* Sharing a directory is fine, and so is the same name again. */
	SEND(f, "{\"files\": [{\"name\": \"q/t\", \"length\": 0}, "
		"{\"name\": \"data/x\", \"length\": 0}]}");
	SEND(f, "{\"name\": \"a\", \"files\": [{\"name\": \"b\", "
		"\"length\": 0}]}");
	finish_exit(f, 0);
	assert_lines(f, "{\"name\": \"a\", \"files\": [\"b\"]}",
		     "{\"name\": \"q\", \"files\": [\"r/s\"]}",
		     "{\"files\": [\"data/x\", \"q/t\"]}",
		     "{\"name\": \"a\", \"files\": [\"b\"]}", NULL);
}

/* The testout of the merged result must not be one of its files. */
static void test_error_testout_in_files(void **state)
{
	struct fixture *f = *state;

	SEND_DATA(f,
		  "{\"status\": \"fail\", \"partial\": true, \"files\": "
		  "[{\"name\": \"log\", \"length\": 1}]}",
		  "x");
	assert_error(send_rc(f->r, "{\"testout\": \"log\"}", "", 0),
		     ATEX_EFORMAT, "'log'");
	SEND(f, "{\"name\": \"s\", \"testout\": \"out\", \"partial\": true}");
	assert_error(send_rc(f->r,
			     "{\"name\": \"s\", \"files\": [{\"name\": "
			     "\"out\", \"length\": 0}]}",
			     "", 0),
		     ATEX_EFORMAT, "'out'");
	/* A refused result changes nothing. */
	finish_exit(f, 0);
	assert_lines(f,
		     "{\"status\": \"fail\", \"files\": [\"output.txt\", "
		     "\"log\"]}",
		     "{\"name\": \"s\", \"files\": [\"out\"]}", NULL);
}

static void test_error_after_finish(void **state)
{
	struct fixture *f = *state;
	struct atex_test_outcome o = {.end = ATEX_TEST_EXITED};

	finish_exit(f, 0);
	assert_error(atex_reporter_result_begin(f->r, json_object()),
		     ATEX_EINVAL, "after finish");
	assert_error(atex_reporter_file_data(f->r, 0, "x", 1), ATEX_EINVAL,
		     "after finish");
	assert_error(atex_reporter_result_end(f->r), ATEX_EINVAL,
		     "after finish");
	assert_error(atex_reporter_finish(f->r, &o), ATEX_EINVAL,
		     "finished already");
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"output.txt\"]}",
		     NULL);
}

static void test_error_out_of_order(void **state)
{
	struct fixture *f = *state;

	assert_error(atex_reporter_file_data(f->r, 0, "x", 1), ATEX_EINVAL,
		     "outside a result");
	assert_error(atex_reporter_result_end(f->r), ATEX_EINVAL,
		     "outside a result");
	assert_int_equal(atex_reporter_result_begin(
				 f->r, json_loads("{\"files\": [{\"name\": "
						  "\"f\", \"length\": 1}]}",
						  0, NULL)),
			 0);
	assert_error(atex_reporter_file_data(f->r, 1, "x", 1), ATEX_EINVAL,
		     "file 1");
	assert_error(atex_reporter_result_begin(f->r, json_object()),
		     ATEX_EINVAL, "previous result");
	assert_int_equal(atex_reporter_file_data(f->r, 0, "x", 1), 0);
	assert_int_equal(atex_reporter_result_end(f->r), 0);
	assert_error(atex_reporter_finish(f->r, NULL), ATEX_EINVAL, "outcome");
	finish_exit(f, 0);
	assert_lines(f, "{\"files\": [\"f\"]}", NULL);
}

/* What the parser refuses is refused here too: this code makes files. */
static void test_error_unchecked(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"[]",
		"{\"name\": \"../x\"}",
		"{\"name\": 1}",
		"{\"name\": \"a//b\"}",
		"{\"testout\": \"/etc/x\"}",
		"{\"testout\": \"\"}",
		"{\"files\": {}}",
		"{\"files\": [{\"name\": \"a/../../x\", \"length\": 0}]}",
		"{\"files\": [{\"name\": \".\", \"length\": 0}]}",
		"{\"files\": [{\"length\": 0}]}",
	};

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(bad); i++)
		assert_error(send_rc(f->r, bad[i], "", 0), ATEX_EINVAL,
			     "result");
	finish_exit(f, 0);
	assert_lines(f, "{\"status\": \"pass\", \"files\": [\"output.txt\"]}",
		     NULL);
	assert_int_equal(count_entries(f, "files"), 1);
}

static void test_error_new(void **state)
{
	struct fixture *f = *state;
	atex_reporter *r = (atex_reporter *)1;
	char path[4200];

	write_file(f->tmp, "plain", "x");
	snprintf(path, sizeof(path), "%s/plain/sub", f->tmp);
	assert_error(atex_reporter_new(&r, path), ATEX_EIO, "/plain");
	assert_null(r);
	snprintf(path, sizeof(path), "%s/plain", f->tmp);
	assert_error(atex_reporter_new(&r, path), ATEX_EIO, "/plain");
	assert_error(atex_reporter_new(&r, ""), ATEX_EINVAL, "artifacts");
	assert_error(atex_reporter_new(&r, NULL), ATEX_EINVAL, "artifacts");
	/* files/ taken by a file */
	write_file(f->tmp, "other/files", "x");
	snprintf(path, sizeof(path), "%s/other", f->tmp);
	assert_error(atex_reporter_new(&r, path), ATEX_EIO, "/other/files");
	atex_reporter_free(NULL);
}

/* A testout that cannot be made: the other results are written and the
 * raw output is removed all the same. */
static void test_error_testout_copy(void **state)
{
	struct fixture *f = *state;
	struct atex_test_outcome o = {.end = ATEX_TEST_EXITED};

	output(f, "out\n");
	SEND(f, "{\"name\": \"d\", \"files\": [{\"name\": \"x\", "
		"\"length\": 0}]}");
	SEND(f, "{\"status\": \"pass\", \"testout\": \"d\"}");
	SEND(f, "{\"status\": \"pass\", \"testout\": \"e\"}");
	assert_error(atex_reporter_finish(f->r, &o), ATEX_EIO, "/files/d");
	assert_lines(f, "{\"name\": \"d\", \"files\": [\"x\"]}",
		     "{\"status\": \"pass\", \"files\": [\"d\"]}",
		     "{\"status\": \"pass\", \"files\": [\"e\"]}", NULL);
	ASSERT_FILE(f, "e", "out\n");
	assert_no_artifact(f, "output.raw");
}

/* The raw output gone before finish: the testouts are empty. */
static void test_output_missing(void **state)
{
	struct fixture *f = *state;
	char *raw = artifact_path(f, "output.raw");

	assert_int_equal(unlink(raw), 0);
	free(raw);
	finish_exit(f, 0);
	ASSERT_FILE(f, "output.txt", "");
}

/* A larger output, to see the copy loop go round. */
static void test_output_large(void **state)
{
	struct fixture *f = *state;
	size_t len = 3 * 1024 * 1024 + 17;
	char *big = malloc(len + 1), *got;
	size_t got_len;

	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + i % 23);
	big[len] = '\0';
	output(f, big);
	SEND(f, "{\"testout\": \"a\"}");
	SEND(f, "{\"testout\": \"b\", \"name\": \"x/y\"}");
	finish_exit(f, 0);
	got = read_artifact(f, "files/a", &got_len);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, big, len);
	free(got);
	got = read_artifact(f, "files/x/y/b", &got_len);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, big, len);
	free(got);
	free(big);
}

/* ---- Python ATEX's results (atex_reporter_set_compat_python_atex) ---- */

/* A kill with no result of its own closed: one "infra" result with the
 * note given (the exception's text), the testout, merged into an open
 * partial of its own whose status it overrides. */
static void test_compat_noresult_timeout(void **state)
{
	struct fixture *f = *state;

	atex_reporter_set_compat_python_atex(f->r, true);
	output(f, "sleeping forever-ish\n");
	SEND(f, "{\"status\": \"pass\", \"partial\": true, \"a\": 1}");
	finish_end(f, ATEX_TEST_TIMED_OUT,
		   "TestAbortedError(test duration timeout reached)");
	assert_lines(f,
		     "{\"status\": \"infra\", \"a\": 1, \"note\": "
		     "\"TestAbortedError(test duration timeout reached)\", "
		     "\"files\": [\"output.txt\"]}",
		     NULL);
	ASSERT_FILE(f, "output.txt", "sleeping forever-ish\n");
}

/* What the test closed for itself stays as it said, whatever the kill
 * (a channel error adds nothing either); nothing is added. */
static void test_compat_trivial_kills(void **state)
{
	static const enum atex_test_end ends[] = {
		ATEX_TEST_TIMED_OUT, ATEX_TEST_CHANNEL_ERROR, ATEX_TEST_INFRA,
		ATEX_TEST_CANCELED};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		atex_reporter_free(f->r);
		assert_int_equal(atex_reporter_new(&f->r, f->artifacts), 0);
		atex_reporter_set_compat_python_atex(f->r, true);
		output(f, "some output\n");
		SEND(f, "{\"status\": \"pass\"}");
		SEND(f, "{\"status\": \"fail\", \"name\": \"sub\"}");
		finish_end(f, ends[i], "BadControlError(x)");
		assert_lines(f, "{\"status\": \"pass\"}",
			     "{\"status\": \"fail\", \"name\": \"sub\"}", NULL);
		assert_int_equal(count_entries(f, "files"), 0);
	}
}

/* Every kill is "infra" (a timeout and a channel error too). */
static void test_compat_channel_error(void **state)
{
	struct fixture *f = *state;

	atex_reporter_set_compat_python_atex(f->r, true);
	SEND(f, "{\"status\": \"pass\", \"name\": \"sub\"}");
	finish_end(f, ATEX_TEST_CHANNEL_ERROR,
		   "BadControlError(EOF when reading data)");
	assert_lines(f, "{\"status\": \"pass\", \"name\": \"sub\"}",
		     "{\"status\": \"infra\", \"note\": "
		     "\"BadControlError(EOF when reading data)\", "
		     "\"files\": [\"output.txt\"]}",
		     NULL);
}

/* A test that ended by itself: as without the switch. */
static void test_compat_exited(void **state)
{
	struct fixture *f = *state;

	atex_reporter_set_compat_python_atex(f->r, true);
	output(f, "x\n");
	finish_exit(f, 3);
	assert_lines(f, "{\"status\": \"fail\", \"files\": [\"output.txt\"]}",
		     NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

/* ---- what a test may make the reporter hold ---- */

/* A partial result of its own carrying `n` small numbers. */
static json_t *numbers_result(size_t n)
{
	json_t *result = json_pack("{s:b}", "partial", 1);
	json_t *data = json_array();

	assert_non_null(result);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(json_array_append_new(data, json_integer(7)),
				 0);
	assert_int_equal(json_object_set_new(result, "data", data), 0);
	return result;
}

static int send_json(atex_reporter *r, json_t *result)
{
	int rc = atex_reporter_result_begin(r, result);

	return rc ? rc : atex_reporter_result_end(r);
}

/* A partial result re-sent with an array (arrays append): what the
 * reporter holds grows with each, up to the limit, which fails the result
 * with a message that says so. */
static void test_memory_limit_arrays(void **state)
{
	struct fixture *f = *state;
	size_t sent = 0;
	int rc = 0;

	atex_reporter_set_memory_limit(f->r, 1000000);
	while (!rc && sent < 1000) {
		rc = send_json(f->r, numbers_result(1000));
		sent++;
		/* Never far beyond the limit: one result's worth at most. */
		assert_true(atex_reporter_held(f->r) < 1000000 + 100000);
	}
	assert_int_equal(rc, ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "memory limit"));
	assert_non_null(strstr(atex_error_last(), "1000000 bytes"));
	/* Each send holds about 48 KB more (1000 numbers): the limit is
	 * near what jansson really allocates, neither 10 times below nor
	 * above. */
	assert_true(sent >= 10 && sent <= 40);
}

/* Replaced values do not add up: a partial result updated 300 times
 * with a 10 KB note holds one note; once closed, it holds nothing. */
static void test_memory_limit_replace(void **state)
{
	struct fixture *f = *state;
	char *note = malloc(10001);
	size_t after_first = 0;

	assert_non_null(note);
	memset(note, 'x', 10000);
	note[10000] = '\0';
	atex_reporter_set_memory_limit(f->r, 100000);
	for (int i = 0; i < 300; i++) {
		json_t *result = json_pack("{s:s,s:b,s:s,s:i}", "name", "sub",
					   "partial", 1, "note", note, "n", i);

		assert_int_equal(send_json(f->r, result), 0);
		if (i == 0)
			after_first = atex_reporter_held(f->r);
		assert_int_equal(atex_reporter_held(f->r), after_first);
	}
	assert_true(after_first > 10000 && after_first < 20000);
	SEND(f, "{\"name\": \"sub\", \"status\": \"pass\"}");
	assert_int_equal(atex_reporter_held(f->r), 0);
	free(note);
	finish_exit(f, 0);
}

/* File names count too: a test cannot make the reporter hold an
 * unbounded set of them. */
static void test_memory_limit_files(void **state)
{
	struct fixture *f = *state;
	char text[128];
	int rc = 0, i;

	atex_reporter_set_memory_limit(f->r, 10000);
	for (i = 0; !rc && i < 1000; i++) {
		snprintf(text, sizeof(text),
			 "{\"status\": \"pass\", \"name\": \"s%d\", \"files\": "
			 "[{\"name\": \"f\", \"length\": 0}]}",
			 i);
		rc = send_rc(f->r, text, "", 0);
	}
	assert_int_equal(rc, ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "memory limit"));
	assert_true(i > 50 && i < 150);
}

/* The CPU time of n open partial results of distinct names, each merged
 * once more, closed at finish. */
static double many_partials(const char *dir, int n)
{
	struct atex_test_outcome o = {.end = ATEX_TEST_EXITED};
	atex_reporter *r;
	char name[32];
	clock_t t0;

	assert_int_equal(atex_reporter_new(&r, dir), 0);
	t0 = clock();
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "s%d", i);
			assert_int_equal(
				send_json(r, json_pack("{s:s,s:b,s:s}", "name",
						       name, "partial", 1,
						       pass ? "note" : "status",
						       pass ? "more" : "pass")),
				0);
		}
	}
	assert_int_equal(atex_reporter_finish(r, &o), 0);
	t0 = clock() - t0;
	/* Every one written, and the test's own fallback. */
	assert_int_equal(atex_reporter_count(r), (size_t)n + 1);
	atex_reporter_free(r);
	return (double)t0 / CLOCKS_PER_SEC;
}

/* Open results are found in constant time: 4 times as many cost about 4
 * times as much (a search through a list, 16 times: 40,000 took 14 s).
 * A ratio, not a time, so that valgrind and a busy machine pass. */
static void test_partials_many(void **state)
{
	struct fixture *f = *state;
	char small[4200], big[4200];
	double t_small, t_big;

	snprintf(small, sizeof(small), "%s/small", f->tmp);
	snprintf(big, sizeof(big), "%s/big", f->tmp);
	t_small = many_partials(small, 10000);
	t_big = many_partials(big, 40000);
	print_message("10,000 partials: %.3f s, 40,000: %.3f s\n", t_small,
		      t_big);
	assert_true(t_big < 10 * (t_small + 0.01));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_noresult_pass),
		T(test_noresult_fail),
		T(test_noresult_timeout),
		T(test_noresult_infra),
		T(test_noresult_canceled),
		T(test_trivial),
		T(test_trivial_exit_mismatch),
		T(test_trivial_timeout),
		T(test_trivial_infra),
		T(test_trivial_repeated),
		T(test_subtest),
		T(test_subtest_no_status),
		T(test_subtest_testout),
		T(test_files),
		T(test_files_subpath),
		T(test_files_subtest),
		T(test_files_multiple),
		T(test_files_multiple_results),
		T(test_files_append),
		T(test_files_sorted),
		T(test_files_empty),
		T(test_custom_keys),
		T(test_key_order),
		T(test_partial),
		T(test_partial_false),
		T(test_partial_abrupt),
		T(test_partial_no_status),
		T(test_partial_output_file),
		T(test_partial_custom_file),
		T(test_partial_custom_file_no_status),
		T(test_partial_timeout),
		T(test_compat_noresult_timeout),
		T(test_compat_trivial_kills),
		T(test_compat_channel_error),
		T(test_compat_exited),
		T(test_partial_merging),
		T(test_partial_deleting),
		T(test_partial_overwriting),
		T(test_partial_type_change),
		T(test_partial_subtests),
		T(test_partial_finish_order),
		T(test_partial_files),
		T(test_partial_files_append),
		T(test_data_copy_stored_once),
		T(test_data_copy_kept),
		T(test_data_after_own_result),
		T(test_late_own_partial_with_note),
		T(test_testout),
		T(test_testout_partial),
		T(test_testout_multiple),
		T(test_testout_partial_exit),
		T(test_empty_result),
		T(test_only_custom_key),
		T(test_empty_files),
		T(test_channel_error),
		T(test_channel_error_partial),
		T(test_result_in_progress),
		T(test_new_truncates),
		T(test_free_unfinished),
		T(test_error_file_then_dir),
		T(test_error_dir_then_file),
		T(test_error_clash),
		T(test_error_testout_in_files),
		T(test_error_after_finish),
		T(test_error_out_of_order),
		T(test_error_unchecked),
		T(test_error_new),
		T(test_error_testout_copy),
		T(test_output_missing),
		T(test_output_large),
		T(test_memory_limit_arrays),
		T(test_memory_limit_replace),
		T(test_memory_limit_files),
		T(test_partials_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
