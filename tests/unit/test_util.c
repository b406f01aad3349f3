/*
 * test_util.c - the private helpers every block leans on: the thread-local
 * last error, growable buffers and vectors, path helpers, whole-file reads
 * and the logging callback.
 *
 * The ATEX_LOG environment variable is read once per process, so its test
 * re-executes this binary (with --log-level-child) in a forked child
 * instead of trusting the order tests run in.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/util.h"

/* ------------------------------------------------------------------------
 * Errors
 */

static void test_error_set_and_clear(void **state)
{
	atex_error_clear();
	assert_string_equal(atex_error_last(), "");
	assert_int_equal(atex_error_last_code(), ATEX_OK);

	assert_int_equal(atex_error_set(ATEX_ENOTFOUND, "%s: no node '%s'",
					"main.fmf", "/a"),
			 ATEX_ENOTFOUND);
	assert_string_equal(atex_error_last(), "main.fmf: no node '/a'");
	assert_int_equal(atex_error_last_code(), ATEX_ENOTFOUND);

	atex_error_clear();
	assert_string_equal(atex_error_last(), "");
	assert_int_equal(atex_error_last_code(), ATEX_OK);

	assert_int_equal(atex_error_oom(), ATEX_ENOMEM);
	assert_int_equal(atex_error_last_code(), ATEX_ENOMEM);
	assert_string_equal(atex_error_last(), "out of memory");
}

static void test_error_prefix(void **state)
{
	atex_error_set(ATEX_EFORMAT, "line 3: bad indent");
	assert_int_equal(atex_error_prefix("%s", "tests/main.fmf"),
			 ATEX_EFORMAT);
	assert_string_equal(atex_error_last(),
			    "tests/main.fmf: line 3: bad indent");
	assert_int_equal(atex_error_prefix("tree %d", 2), ATEX_EFORMAT);
	assert_string_equal(atex_error_last(),
			    "tree 2: tests/main.fmf: line 3: bad indent");
	assert_int_equal(atex_error_last_code(), ATEX_EFORMAT);
}

/* Wrapping the previous message is common; it must not corrupt it. */
static void test_error_set_from_last(void **state)
{
	atex_error_set(ATEX_EIO, "cannot open: No such file");
	atex_error_set(ATEX_EIO, "%s: %s", "plans/x.fmf", atex_error_last());
	assert_string_equal(atex_error_last(),
			    "plans/x.fmf: cannot open: No such file");
	atex_error_set(ATEX_EIO, "%s (again)", atex_error_last());
	assert_string_equal(atex_error_last(),
			    "plans/x.fmf: cannot open: No such file (again)");
	atex_error_prefix("%s", atex_error_last());
	assert_string_equal(atex_error_last(),
			    "plans/x.fmf: cannot open: No such file (again): "
			    "plans/x.fmf: cannot open: No such file (again)");
}

static void test_error_truncation(void **state)
{
	char *big = malloc(10000);
	size_t len;

	assert_non_null(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	atex_error_set(ATEX_ERROR, "%s", big);
	len = strlen(atex_error_last());
	assert_true(len > 1000 && len < 9999);
	/* A prefix is kept whole; the old message loses its end. */
	atex_error_prefix("context");
	assert_memory_equal(atex_error_last(), "context: xxx", 12);
	assert_int_equal(strlen(atex_error_last()), len);
	free(big);
}

static void test_error_name(void **state)
{
	assert_string_equal(atex_error_name(ATEX_OK), "success");
	assert_string_equal(atex_error_name(ATEX_EINVAL), "invalid argument");
	assert_string_equal(atex_error_name(ATEX_ECANCELED), "canceled");
	assert_string_equal(atex_error_name(-1000), "unknown error");
}

struct error_thread {
	pthread_barrier_t *barrier;
	int code;
	char expected[64];
	char seen[64];
	int seen_code;
};

static void *error_thread_main(void *arg)
{
	struct error_thread *t = arg;

	atex_error_set(t->code, "%s", t->expected);
	/* Both threads have recorded before either reads. */
	pthread_barrier_wait(t->barrier);
	snprintf(t->seen, sizeof(t->seen), "%s", atex_error_last());
	t->seen_code = atex_error_last_code();
	return NULL;
}

static void test_error_per_thread(void **state)
{
	pthread_barrier_t barrier;
	struct error_thread t[2] = {
		{&barrier, ATEX_EIO, "thread one failed", "", 0},
		{&barrier, ATEX_ETIMEDOUT, "thread two timed out", "", 0},
	};
	pthread_t id[2];

	atex_error_set(ATEX_EINVAL, "main thread");
	assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(
			pthread_create(&id[i], NULL, error_thread_main, &t[i]),
			0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(id[i], NULL), 0);
	pthread_barrier_destroy(&barrier);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(t[i].seen, t[i].expected);
		assert_int_equal(t[i].seen_code, t[i].code);
	}
	assert_string_equal(atex_error_last(), "main thread");
	assert_int_equal(atex_error_last_code(), ATEX_EINVAL);
}

/* ------------------------------------------------------------------------
 * Buffers and vectors
 */

static void test_buf_basics(void **state)
{
	struct atex_buf b = ATEX_BUF_INIT;
	char *s;

	assert_string_equal(atex_buf_cstr(&b), "");
	assert_int_equal(atex_buf_put(&b, "abc", 2), 0);
	assert_int_equal(atex_buf_puts(&b, "cd"), 0);
	assert_int_equal(atex_buf_putc(&b, '!'), 0);
	assert_int_equal(atex_buf_printf(&b, " %d-%s", 42, "x"), 0);
	assert_string_equal(atex_buf_cstr(&b), "abcd! 42-x");
	assert_int_equal(b.len, 10);
	assert_int_equal(atex_buf_put(&b, "", 0), 0);
	assert_int_equal(atex_buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 10);

	atex_buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(atex_buf_cstr(&b), "");
	assert_int_equal(atex_buf_puts(&b, "again"), 0);

	s = atex_buf_detach(&b);
	assert_string_equal(s, "again");
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(s);
	atex_buf_free(&b);
}

static void test_buf_detach_empty(void **state)
{
	struct atex_buf b = ATEX_BUF_INIT;
	char *s = atex_buf_detach(&b);

	/* Never NULL for an empty buffer: callers need not special-case. */
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	atex_buf_free(&b);
	atex_buf_free(&b); /* twice is harmless */
}

static void test_buf_binary(void **state)
{
	struct atex_buf b = ATEX_BUF_INIT;

	assert_int_equal(atex_buf_put(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.ptr, "a\0b", 4); /* and the terminating NUL */
	atex_buf_free(&b);
}

static void test_buf_growth(void **state)
{
	struct atex_buf b = ATEX_BUF_INIT;
	const size_t total = 3 * 1024 * 1024 + 17;
	char chunk[1000];
	size_t i;

	for (i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)('a' + i % 26);
	while (b.len + sizeof(chunk) <= total)
		assert_int_equal(atex_buf_put(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(atex_buf_printf(&b, "%*s", (int)(total - b.len), "!"),
			 0);
	assert_int_equal(b.len, total);
	assert_true(b.cap > total);
	assert_int_equal(strlen(b.ptr), total);
	assert_int_equal(b.ptr[total - 1], '!');
	for (i = 0; i + sizeof(chunk) <= 3 * 1024 * 1024; i += sizeof(chunk))
		assert_memory_equal(b.ptr + i, chunk, sizeof(chunk));
	/* One printf larger than everything before it. */
	atex_buf_clear(&b);
	assert_int_equal(atex_buf_printf(&b, "%2000000d", 7), 0);
	assert_int_equal(b.len, 2000000);
	assert_int_equal(b.ptr[1999999], '7');
	atex_buf_free(&b);
}

/* Appending a piece of the buffer to itself survives the reallocation. */
static void test_buf_self_append(void **state)
{
	struct atex_buf b = ATEX_BUF_INIT;

	assert_int_equal(atex_buf_puts(&b, "0123456789"), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(atex_buf_put(&b, b.ptr, b.len), 0);
	assert_int_equal(b.len, 10 << 12);
	for (size_t i = 0; i < b.len; i++)
		assert_int_equal(b.ptr[i], '0' + (char)(i % 10));
	atex_buf_free(&b);
}

/* One escaping for every name shown to a person (escape.c). */
static void test_text_escape(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"/plain/name-1.2", "/plain/name-1.2"},
		{"a\nb\tc\rd", "a\\nb\\tc\\rd"},
		{"\033[31mred\x7f", "\\x1b[31mred\\x7f"},
		{"\x01\x1f", "\\x01\\x1f"},
		/* Printable UTF-8 stays; C1 controls (CSI) do not. */
		{"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80",
		 "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"},
		{"x\xc2\x9b"
		 "2Jy\xc2\x85",
		 "x\\xc2\\x9b2Jy\\xc2\\x85"},
		{"\xc2\xa0", "\xc2\xa0"},
		/* Latin-1, overlong, surrogate, truncated: byte by byte. */
		{"caf\xe9", "caf\\xe9"},
		{"\xc0\xaf", "\\xc0\\xaf"},
		{"\xed\xa0\x80", "\\xed\\xa0\\x80"},
		{"\xe2\x9c", "\\xe2\\x9c"},
		/* A backslash is doubled: "\\n" (two characters) and "\n" (a
		 * newline) are shown apart. */
		{"back\\slash", "back\\\\slash"},
		{"a\\nb", "a\\\\nb"},
		{"\\\n\\x1b\033", "\\\\\\n\\\\x1b\\x1b"},
		{"", ""},
	};
	char *out = NULL;

	(void)state;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(cases); i++) {
		assert_int_equal(atex_text_escape(&out, cases[i].in), 0);
		assert_string_equal(out, cases[i].out);
		free(out);
	}
	assert_int_equal(atex_text_escape(&out, NULL), 0);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(atex_text_escape(NULL, "x"), ATEX_EINVAL);
}

static void test_sprintf_and_dup(void **state)
{
	char *s = atex_sprintf("%s=%d", "tier", 1);
	char *d = atex_strdup("abc");
	char *n = atex_strndup("abcdef", 3);

	assert_string_equal(s, "tier=1");
	assert_string_equal(d, "abc");
	assert_string_equal(n, "abc");
	free(s);
	free(d);
	free(n);
}

static void test_vec_push_pop(void **state)
{
	struct atex_vec v = ATEX_VEC_INIT;
	int values[100];

	assert_null(atex_vec_pop(&v));
	for (int i = 0; i < 100; i++) {
		values[i] = i;
		assert_int_equal(atex_vec_push(&v, &values[i]), 0);
	}
	assert_int_equal(v.len, 100);
	assert_true(v.cap >= 100);
	for (int i = 99; i >= 0; i--)
		assert_ptr_equal(atex_vec_pop(&v), &values[i]);
	assert_int_equal(v.len, 0);
	assert_null(atex_vec_pop(&v));
	assert_int_equal(atex_vec_push(&v, NULL), 0);
	assert_int_equal(v.len, 1);
	atex_vec_free(&v);
	assert_null(v.items);
	assert_int_equal(v.len, 0);
}

static void test_vec_sort(void **state)
{
	static const char *const input[] = {"tests/b", "tests/a",   "Z",
					    "",	       "tests/a/x", "a"};
	static const char *const sorted[] = {"",	"Z",	     "a",
					     "tests/a", "tests/a/x", "tests/b"};
	struct atex_vec v = ATEX_VEC_INIT;

	atex_vec_sort(&v, atex_vec_cmp_str); /* empty: nothing to do */
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(input); i++)
		assert_int_equal(atex_vec_push(&v, (void *)input[i]), 0);
	atex_vec_sort(&v, atex_vec_cmp_str);
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(sorted); i++)
		assert_string_equal(v.items[i], sorted[i]);
	atex_vec_free(&v);
}

/* Counts calls through the item itself, so no global counter is needed. */
struct counted {
	int *freed;
};

static void counted_free(void *item)
{
	struct counted *c = item;

	(*c->freed)++;
	free(c);
}

static void test_vec_free_all(void **state)
{
	struct atex_vec v = ATEX_VEC_INIT;
	int freed = 0;

	for (int i = 0; i < 20; i++) {
		struct counted *c = malloc(sizeof(*c));

		assert_non_null(c);
		c->freed = &freed;
		assert_int_equal(atex_vec_push(&v, c), 0);
	}
	atex_vec_free_all(&v, counted_free);
	assert_int_equal(freed, 20);
	assert_null(v.items);
	assert_int_equal(v.len, 0);
	atex_vec_free_all(&v, counted_free); /* empty again: no calls */
	assert_int_equal(freed, 20);

	/* The usual case: a vector of strdup'ed strings. */
	assert_int_equal(atex_vec_push(&v, atex_strdup("one")), 0);
	assert_int_equal(atex_vec_push(&v, atex_strdup("two")), 0);
	atex_vec_free_all(&v, free);
}

/* ------------------------------------------------------------------------
 * Paths and files
 */

static void assert_join(const char *a, const char *b, const char *expected)
{
	char *joined = atex_path_join(a, b);

	assert_non_null(joined);
	assert_string_equal(joined, expected);
	free(joined);
}

static void test_path_join(void **state)
{
	/* os.path.join semantics */
	assert_join("a", "b", "a/b");
	assert_join("a/", "b", "a/b");
	assert_join("/x/y", "z/w", "/x/y/z/w");
	assert_join("a", "/abs", "/abs");
	assert_join("", "b", "b");
	assert_join("a", "", "a/");
	assert_join("/", "b", "/b");
}

static void test_path_basename(void **state)
{
	assert_string_equal(atex_path_basename("/a/b/main.fmf"), "main.fmf");
	assert_string_equal(atex_path_basename("main.fmf"), "main.fmf");
	assert_string_equal(atex_path_basename("/a/b/"), "");
	assert_string_equal(atex_path_basename("/"), "");
}

static void assert_abspath(const char *path, const char *expected)
{
	char *abs = atex_path_abspath(path);

	assert_non_null(abs);
	assert_string_equal(abs, expected);
	free(abs);
}

static void test_path_abspath_absolute(void **state)
{
	assert_abspath("/", "/");
	assert_abspath("/a/b", "/a/b");
	assert_abspath("/a/b/", "/a/b");
	assert_abspath("/a//b///c", "/a/b/c");
	assert_abspath("//a", "/a");
	assert_abspath("/a/./b/.", "/a/b");
	assert_abspath("/a/b/../c", "/a/c");
	assert_abspath("/a/b/../../c", "/c");
	assert_abspath("/a/b/../../..", "/");
	assert_abspath("/..", "/");
	assert_abspath("/../../x", "/x");
	assert_abspath("/a/../", "/");
	assert_abspath("/./.", "/");
	assert_abspath("/a/..b/.c", "/a/..b/.c");
	/* Lexical: "link/.." is the directory holding link, whatever it is. */
	assert_abspath("/no/such/dir/../file", "/no/such/file");
}

static void test_path_abspath_relative(void **state)
{
	char template[] = "/tmp/atex-test-util-XXXXXX";
	char *dir, *cwd_before, *cwd, *expected;

	cwd_before = getcwd(NULL, 0);
	assert_non_null(cwd_before);
	dir = mkdtemp(template);
	assert_non_null(dir);
	assert_int_equal(chdir(dir), 0);
	cwd = getcwd(NULL, 0);
	assert_non_null(cwd);

	assert_abspath("", cwd);
	assert_abspath(".", cwd);
	assert_abspath("./", cwd);
	expected = atex_sprintf("%s/x/y", cwd);
	assert_abspath("x/y", expected);
	assert_abspath("x//y/", expected);
	assert_abspath("./x/./y", expected);
	assert_abspath("x/z/../y", expected);
	free(expected);
	expected = atex_strdup(cwd);
	*strrchr(expected, '/') = '\0'; /* the parent of a /tmp/... dir */
	assert_abspath("..", expected);
	assert_abspath("x/../..", expected);
	free(expected);

	assert_int_equal(chdir(cwd_before), 0);
	assert_int_equal(rmdir(dir), 0);
	free(cwd);
	free(cwd_before);
}

static char *make_temp_dir(void)
{
	char *dir = atex_strdup("/tmp/atex-test-util-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void test_path_exists(void **state)
{
	char *dir = make_temp_dir();
	char *file = atex_path_join(dir, "f");
	char *missing = atex_path_join(dir, "missing");

	write_file(file, "x", 1);
	assert_true(atex_path_exists(dir));
	assert_true(atex_path_is_dir(dir));
	assert_true(atex_path_exists(file));
	assert_false(atex_path_is_dir(file));
	assert_false(atex_path_exists(missing));
	assert_false(atex_path_is_dir(missing));
	assert_int_equal(unlink(file), 0);
	assert_int_equal(rmdir(dir), 0);
	free(missing);
	free(file);
	free(dir);
}

static void test_file_read(void **state)
{
	char *dir = make_temp_dir();
	char *path = atex_path_join(dir, "data.fmf");
	char *content = NULL;
	size_t len = 0;

	write_file(path, "summary: x\n", 11);
	assert_int_equal(atex_file_read(&content, &len, path), 0);
	assert_int_equal(len, 11);
	assert_string_equal(content, "summary: x\n");
	free(content);

	/* Empty: a valid empty string, not NULL. */
	write_file(path, "", 0);
	assert_int_equal(atex_file_read(&content, NULL, path), 0);
	assert_non_null(content);
	assert_string_equal(content, "");
	free(content);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	free(path);
	free(dir);
}

/* Larger than one read and holding NUL bytes: length, not strlen, counts. */
static void test_file_read_large(void **state)
{
	const size_t size = 300 * 1000 + 7;
	char *dir = make_temp_dir();
	char *path = atex_path_join(dir, "big");
	char *data = malloc(size), *content = NULL;
	size_t len = 0;

	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i * 7 % 251);
	write_file(path, data, size);
	assert_int_equal(atex_file_read(&content, &len, path), 0);
	assert_int_equal(len, size);
	assert_memory_equal(content, data, size);
	assert_int_equal(content[size], '\0');
	free(content);
	free(data);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	free(path);
	free(dir);
}

static void test_file_read_errors(void **state)
{
	char *dir = make_temp_dir();
	char *missing = atex_path_join(dir, "no-such.fmf");
	char *content = (char *)"untouched";
	size_t len = 99;

	assert_int_equal(atex_file_read(&content, &len, missing), ATEX_EIO);
	assert_null(content);
	assert_int_equal(atex_error_last_code(), ATEX_EIO);
	assert_non_null(strstr(atex_error_last(), missing));
	assert_non_null(strstr(atex_error_last(), strerror(ENOENT)));

	/* A directory opens but does not read. */
	assert_int_equal(atex_file_read(&content, &len, dir), ATEX_EIO);
	assert_null(content);
	assert_non_null(strstr(atex_error_last(), dir));

	assert_int_equal(rmdir(dir), 0);
	free(missing);
	free(dir);
}

/* ------------------------------------------------------------------------
 * Logging
 */

struct log_capture {
	int calls;
	int level;
	char component[64];
	char message[4096];
};

static void capture_handler(int level, const char *component,
			    const char *message, void *userdata)
{
	struct log_capture *c = userdata;

	c->calls++;
	c->level = level;
	snprintf(c->component, sizeof(c->component), "%s", component);
	snprintf(c->message, sizeof(c->message), "%s", message);
}

static int log_teardown(void **state)
{
	atex_log_set_handler(NULL, NULL);
	atex_log_set_level(ATEX_LOG_WARNING);
	return 0;
}

static void test_log_handler(void **state)
{
	struct log_capture c = {0};

	atex_log_set_handler(capture_handler, &c);
	atex_log_set_level(ATEX_LOG_WARNING);
	atex_log(ATEX_LOG_ERROR, "ssh", "host %s: %s", "box1", "refused");
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.level, ATEX_LOG_ERROR);
	assert_string_equal(c.component, "ssh");
	assert_string_equal(c.message, "host box1: refused");

	atex_log(ATEX_LOG_WARNING, "fmf", "deprecated key");
	assert_int_equal(c.calls, 2);
	assert_int_equal(c.level, ATEX_LOG_WARNING);
	assert_string_equal(c.component, "fmf");

	/* One line without its newline, as the handler is promised. */
	atex_log(ATEX_LOG_ERROR, "fmf", "ends in newlines\n\n");
	assert_string_equal(c.message, "ends in newlines");

	/* A test name with a newline or ESC forges no line and drives no
	 * terminal: the message is escaped. */
	atex_log(ATEX_LOG_ERROR, "orchestrator", "%s: lost",
		 "/t\natex[orchestrator] error: /x: pass\033[2J");
	assert_string_equal(c.message, "/t\\natex[orchestrator] error: /x: "
				       "pass\\x1b[2J: lost");
}

static void test_log_level_filter(void **state)
{
	struct log_capture c = {0};

	atex_log_set_handler(capture_handler, &c);
	atex_log_set_level(ATEX_LOG_INFO);
	assert_int_equal(atex_log_get_level(), ATEX_LOG_INFO);
	atex_log(ATEX_LOG_DEBUG, "fmf", "too verbose");
	atex_debug("fmf", "too verbose %d", 2);
	assert_int_equal(c.calls, 0);
	atex_log(ATEX_LOG_INFO, "fmf", "shown");
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.level, ATEX_LOG_INFO);

	atex_log_set_level(ATEX_LOG_DEBUG);
	atex_debug("fmf", "now shown %d", 3);
	assert_int_equal(c.calls, 2);
	assert_int_equal(c.level, ATEX_LOG_DEBUG);
	assert_string_equal(c.message, "now shown 3");

	atex_log_set_level(ATEX_LOG_ERROR);
	atex_log(ATEX_LOG_WARNING, "fmf", "hidden");
	atex_log(ATEX_LOG_INFO, "fmf", "hidden");
	assert_int_equal(c.calls, 2);
	atex_log(ATEX_LOG_ERROR, "fmf", "errors always pass");
	assert_int_equal(c.calls, 3);
}

/* Runs `fn` in a forked child with stderr in a pipe; returns the output. */
static char *child_stderr(void (*fn)(void))
{
	struct atex_buf out = ATEX_BUF_INIT;
	int fds[2], status;
	char chunk[512];
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		fn();
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], chunk, sizeof(chunk))) > 0)
		assert_int_equal(atex_buf_put(&out, chunk, (size_t)n), 0);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return atex_buf_detach(&out);
}

static void log_to_default_handler(void)
{
	atex_log_set_handler(NULL, NULL);
	atex_log_set_level(ATEX_LOG_INFO);
	atex_log(ATEX_LOG_WARNING, "podman", "container %s gone", "c1");
	atex_log(ATEX_LOG_DEBUG, "podman", "not shown");
	atex_log(ATEX_LOG_INFO, NULL, "no component");
}

static void test_log_default_handler(void **state)
{
	char *out = child_stderr(log_to_default_handler);

	assert_string_equal(out, "atex[podman] warning: container c1 gone\n"
				 "atex[atex] info: no component\n");
	free(out);
}

/*
 * ATEX_LOG is read the first time the level is needed, once per process:
 * this binary may have read it already, so the child execs a fresh copy.
 */
static int level_in_child(const char *env)
{
	char self[PATH_MAX];
	ssize_t n;
	int status;
	pid_t pid;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (env)
			setenv("ATEX_LOG", env, 1);
		else
			unsetenv("ATEX_LOG");
		execl(self, self, "--log-level-child", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_log_env(void **state)
{
	assert_int_equal(level_in_child("debug"), ATEX_LOG_DEBUG);
	assert_int_equal(level_in_child("DEBUG"), ATEX_LOG_DEBUG);
	assert_int_equal(level_in_child("info"), ATEX_LOG_INFO);
	assert_int_equal(level_in_child("warn"), ATEX_LOG_WARNING);
	assert_int_equal(level_in_child("error"), ATEX_LOG_ERROR);
	assert_int_equal(level_in_child("nonsense"), ATEX_LOG_WARNING);
	assert_int_equal(level_in_child(NULL), ATEX_LOG_WARNING);
}

/* The child side of test_log_env: the exit code is the level seen. */
static int log_level_child(void)
{
	struct log_capture c = {0};
	int level = atex_log_get_level();

	/* ...and the level really filters: debug is delivered. */
	atex_log_set_handler(capture_handler, &c);
	atex_debug("env", "hello");
	if ((level == ATEX_LOG_DEBUG) != (c.calls == 1))
		return 100;
	return level;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_set_and_clear),
		cmocka_unit_test(test_error_prefix),
		cmocka_unit_test(test_error_set_from_last),
		cmocka_unit_test(test_error_truncation),
		cmocka_unit_test(test_error_name),
		cmocka_unit_test(test_error_per_thread),
		cmocka_unit_test(test_buf_basics),
		cmocka_unit_test(test_buf_detach_empty),
		cmocka_unit_test(test_buf_binary),
		cmocka_unit_test(test_buf_growth),
		cmocka_unit_test(test_buf_self_append),
		cmocka_unit_test(test_text_escape),
		cmocka_unit_test(test_sprintf_and_dup),
		cmocka_unit_test(test_vec_push_pop),
		cmocka_unit_test(test_vec_sort),
		cmocka_unit_test(test_vec_free_all),
		cmocka_unit_test(test_path_join),
		cmocka_unit_test(test_path_basename),
		cmocka_unit_test(test_path_abspath_absolute),
		cmocka_unit_test(test_path_abspath_relative),
		cmocka_unit_test(test_path_exists),
		cmocka_unit_test(test_file_read),
		cmocka_unit_test(test_file_read_large),
		cmocka_unit_test(test_file_read_errors),
		cmocka_unit_test_teardown(test_log_handler, log_teardown),
		cmocka_unit_test_teardown(test_log_level_filter, log_teardown),
		cmocka_unit_test(test_log_default_handler),
		cmocka_unit_test(test_log_env),
	};

	if (argc == 2 && !strcmp(argv[1], "--log-level-child"))
		return log_level_child();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
