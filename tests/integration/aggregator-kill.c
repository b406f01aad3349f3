/*
 * aggregator-kill.c - the JSON Lines aggregator killed at random moments.
 *
 * Each round forks a child that ingests test after test into a plain, a
 * gzip and an xz results file, and tells the parent through a pipe after
 * each completed ingest. The parent SIGKILLs it after a random delay
 * (seeded: argv[1] or ATEX_KILL_SEED, printed), then checks every file as
 * a reader after a crash would see it: the plain file, the compressed
 * ones decoded with zlib and liblzma and with the gzip and xz commands
 * (which complain about the missing end, so their exit status is not
 * looked at), must all hold whole, parseable lines, whole ingests only,
 * in order, and at least every ingest the child reported complete.
 *
 * Exit status 0 when every round passed, 1 otherwise (77: skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lzma.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "atex/aggregator.h"
#include "util/util.h"

#define ROUNDS	       16
#define LINES_PER_TEST 4

static const char *const subtests[LINES_PER_TEST] = {"first", "second/x",
						     "third", NULL};

#define FAIL(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "FAIL: " __VA_ARGS__);                         \
		fputc('\n', stderr);                                           \
		exit(1);                                                       \
	} while (0)

static char tmp[] = "/tmp/atex-kill-XXXXXX";

static char *in_tmp(const char *name)
{
	char *p = atex_path_join(tmp, name);

	if (!p)
		FAIL("out of memory");
	return p;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		FAIL("%s: %s", path, strerror(errno));
}

/* ---- the child ---- */

static atex_aggregator *open_output(const char *name)
{
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	atex_aggregator *a;
	char *path = in_tmp(name);

	o.path = path;
	o.compression = ATEX_COMPRESSION_AUTO;
	if (atex_jsonl_aggregator_new(&a, &o) || atex_aggregator_start(a))
		FAIL("%s: %s", name, atex_error_last());
	free(path);
	return a;
}

static void child(int report_fd, const char *art)
{
	atex_aggregator *a[3] = {open_output("r.jsonl"),
				 open_output("r.jsonl.gz"),
				 open_output("r.jsonl.xz")};

	for (unsigned int n = 1;; n++) {
		char name[64];

		snprintf(name, sizeof(name), "/kill/%u", n);
		for (int i = 0; i < 3; i++)
			if (atex_aggregator_ingest(a[i], "p", name, art))
				FAIL("child: %s", atex_error_last());
		if (write(report_fd, &n, sizeof(n)) != sizeof(n))
			FAIL("child: cannot report: %s", strerror(errno));
	}
}

/* ---- decoding ---- */

static char *gunzip(const char *data, size_t len, size_t *out_len)
{
	struct atex_buf b = ATEX_BUF_INIT;
	z_stream z;
	int ret;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		FAIL("inflateInit2");
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	do {
		if (atex_buf_grow(&b, 65536))
			FAIL("out of memory");
		z.next_out = (Bytef *)b.ptr + b.len;
		z.avail_out = (uInt)(b.cap - b.len - 1);
		size_t before = z.avail_out;

		ret = inflate(&z, Z_SYNC_FLUSH);
		b.len += before - z.avail_out;
	} while (ret == Z_OK && (z.avail_out == 0 || z.avail_in > 0));
	if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
		FAIL("zlib: inflate error %d", ret);
	inflateEnd(&z);
	*out_len = b.len;
	return atex_buf_detach(&b);
}

static char *unxz(const char *data, size_t len, size_t *out_len)
{
	struct atex_buf b = ATEX_BUF_INIT;
	lzma_stream x = LZMA_STREAM_INIT;
	lzma_ret ret;

	if (lzma_stream_decoder(&x, UINT64_MAX, 0) != LZMA_OK)
		FAIL("lzma_stream_decoder");
	x.next_in = (const uint8_t *)data;
	x.avail_in = len;
	do {
		if (atex_buf_grow(&b, 65536))
			FAIL("out of memory");
		x.next_out = (uint8_t *)b.ptr + b.len;
		x.avail_out = b.cap - b.len - 1;
		size_t before = x.avail_out;

		ret = lzma_code(&x, LZMA_RUN);
		b.len += before - x.avail_out;
	} while (ret == LZMA_OK && (x.avail_out == 0 || x.avail_in > 0));
	if (ret != LZMA_OK && ret != LZMA_STREAM_END && ret != LZMA_BUF_ERROR)
		FAIL("liblzma: decode error %d", (int)ret);
	lzma_end(&x);
	*out_len = b.len;
	return atex_buf_detach(&b);
}

/* The output of `tool -dc path` (its exit status is not looked at: a
 * cut stream makes it complain). NULL when the tool is not there. */
static char *run_decoder(const char *tool, const char *path, size_t *len)
{
	char *out = in_tmp("decoded"), *cmd, *text = NULL;
	int status;

	cmd = atex_sprintf("%s -dc '%s' > '%s' 2>/dev/null", tool, path, out);
	if (!cmd)
		FAIL("out of memory");
	status = system(cmd);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) == 127)
		goto out;
	if (atex_file_read(&text, len, out))
		FAIL("%s", atex_error_last());
out:
	unlink(out);
	free(cmd);
	free(out);
	return text;
}

/* ---- checking ---- */

/*
 * Whole lines, whole ingests in order, at least `done` of them. Only the
 * ingest in flight at the kill may be cut short: the kernel checks for a
 * fatal signal between the pages a write(2) copies, so SIGKILL can tear
 * even one small append that crosses a page boundary (seen: a file cut
 * at 253952 bytes, 62 pages). Readers skip such a torn last line.
 */
static void check_text(const char *what, const char *text, size_t len,
		       unsigned int done)
{
	size_t start = 0, count = 0;
	bool torn = len && text[len - 1] != '\n';

	while (len && text[len - 1] != '\n')
		len--;
	for (size_t i = 0; i < len; i++) {
		json_error_t err;
		json_t *line;
		char want_test[64];
		const char *sub;

		if (text[i] != '\n')
			continue;
		line = json_loadb(text + start, i - start, 0, &err);
		if (!line)
			FAIL("%s: line %zu does not parse: %s: %.*s", what,
			     count + 1, err.text, (int)(i - start),
			     text + start);
		snprintf(want_test, sizeof(want_test), "/kill/%zu",
			 count / LINES_PER_TEST + 1);
		sub = json_string_value(json_array_get(line, 3));
		if (json_array_size(line) != 6 ||
		    strcmp(json_string_value(json_array_get(line, 2)),
			   want_test) ||
		    (subtests[count % LINES_PER_TEST]
			     ? !sub || strcmp(sub,
					      subtests[count % LINES_PER_TEST])
			     : sub != NULL))
			FAIL("%s: line %zu out of order: %.*s", what, count + 1,
			     (int)(i - start), text + start);
		json_decref(line);
		count++;
		start = i + 1;
	}
	if (count % LINES_PER_TEST && !torn)
		FAIL("%s: %zu lines, not whole ingests", what, count);
	if (count / LINES_PER_TEST < done)
		FAIL("%s: %zu ingests, %u were complete", what,
		     count / LINES_PER_TEST, done);
	/* A torn or partial ingest counts: it is the one in flight. */
	if ((count + LINES_PER_TEST - 1 + torn) / LINES_PER_TEST > done + 1)
		FAIL("%s: %zu ingests, only %u + 1 can be there", what,
		     count / LINES_PER_TEST, done);
}

static void check_file(const char *name, unsigned int done)
{
	char *path = in_tmp(name), *data = NULL, *text;
	size_t len = 0, text_len;
	bool gz = strstr(name, ".gz") != NULL, xz = strstr(name, ".xz") != NULL;

	if (!atex_path_exists(path)) {
		if (done)
			FAIL("%s: missing after %u ingests", name, done);
		goto out;
	}
	if (atex_file_read(&data, &len, path))
		FAIL("%s", atex_error_last());
	if (!gz && !xz) {
		check_text(name, data, len, done);
		goto out;
	}
	text = gz ? gunzip(data, len, &text_len) : unxz(data, len, &text_len);
	check_text(name, text, text_len, done);
	free(text);
	text = run_decoder(gz ? "gzip" : "xz", path, &text_len);
	if (text) {
		char what[64];

		snprintf(what, sizeof(what), "%s -dc %s", gz ? "gzip" : "xz",
			 name);
		check_text(what, text, text_len, done);
		free(text);
	}
out:
	free(data);
	free(path);
}

static unsigned int one_round(const char *art, unsigned int delay_us)
{
	static const char *const outputs[] = {"r.jsonl", "r.jsonl.gz",
					      "r.jsonl.xz"};
	unsigned int done = 0, n;
	int fds[2], status;
	pid_t pid;

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(outputs); i++) {
		char *p = in_tmp(outputs[i]);

		unlink(p);
		free(p);
	}
	fflush(stdout); /* not written twice by a child that fails */
	if (pipe(fds) < 0)
		FAIL("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		child(fds[1], art);
	}
	close(fds[1]);
	usleep(delay_us);
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		FAIL("waitpid: %s", strerror(errno));
	if (!WIFSIGNALED(status))
		FAIL("the child ended by itself (status %d)", status);
	while (read(fds[0], &n, sizeof(n)) == sizeof(n))
		done = n;
	close(fds[0]);
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(outputs); i++)
		check_file(outputs[i], done);
	return done;
}

int main(int argc, char **argv)
{
	const char *seed_text = argc > 1 ? argv[1] : getenv("ATEX_KILL_SEED");
	unsigned int seed = seed_text
				    ? (unsigned int)strtoul(seed_text, NULL, 0)
				    : (unsigned int)time(NULL);
	unsigned int total = 0;
	char *art, *results;

	if (!mkdtemp(tmp))
		FAIL("mkdtemp: %s", strerror(errno));
	art = in_tmp("art");
	results = in_tmp("art/results");
	if (mkdir(art, 0755) < 0)
		FAIL("%s: %s", art, strerror(errno));
	/* Lines of some length: a write crosses page boundaries often. */
	write_text(results,
		   "{\"name\":\"first\",\"status\":\"pass\",\"note\":\"a "
		   "note of some length to make lines longer than tiny\"}\n"
		   "{\"name\":\"second/x\",\"status\":\"fail\",\"files\":"
		   "[\"a.log\",\"b.log\"]}\n"
		   "{\"name\":\"third\",\"status\":\"info\"}\n"
		   "{\"status\":\"fail\",\"note\":\"the test itself\"}\n");
	printf("seed %u\n", seed);
	srand(seed);
	for (int r = 0; r < ROUNDS; r++) {
		/* Now and then at once, to kill it while it starts. */
		unsigned int delay =
			r % 5 == 0 ? (unsigned int)(rand() % 2000)
				   : 5000 + (unsigned int)(rand() % 150000);
		unsigned int done = one_round(art, delay);

		printf("round %d: killed after %u us, %u ingests complete\n", r,
		       delay, done);
		total += done;
	}
	if (total == 0)
		FAIL("no round got an ingest done");
	free(results);
	free(art);
	if (system(NULL)) {
		char *cmd = atex_sprintf("rm -rf '%s'", tmp);

		if (cmd && system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmp);
		free(cmd);
	}
	printf("ok: %u ingests over %d rounds\n", total, ROUNDS);
	return 0;
}
