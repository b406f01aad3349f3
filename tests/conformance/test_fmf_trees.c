/*
 * test_fmf_trees.c - every case of the fmf reference data, twice: through
 * the library (load, adjust, prune) and through the CLI contract
 * (`atex fmf dump`, its exit status and stdout). A case is
 * expected/TREE.C.F.json: a tree, a context, filters, and either the
 * selected nodes with their final data or the name of the error the
 * reference raised.
 *
 * Usage: test-fmf-trees CONFORMANCE_FMF_DIR [ATEX_CLI]
 * Prints one line per mismatch and exits 1 if there is any.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atex/atex.h"

static int failures;

static void fail(const char *file, const char *how, const char *detail)
{
	failures++;
	printf("FAIL %s (%s): %s\n", file, how, detail);
}

/* Python's == for the data in these files: 1 == 1.0 and True == 1 do not
 * occur in expected data, so strict JSON equality is the right check. */
static int same(const json_t *a, const json_t *b)
{
	return json_equal((json_t *)a, (json_t *)b);
}

static char *describe_diff(const json_t *want, const json_t *got)
{
	static char buf[4096];
	const char *name;
	json_t *value;

	json_object_foreach((json_t *)want, name, value) {
		json_t *other = json_object_get(got, name);
		char *w, *g;

		if (other && same(value, other))
			continue;
		w = json_dumps(value, JSON_SORT_KEYS | JSON_COMPACT);
		g = other ? json_dumps(other, JSON_SORT_KEYS | JSON_COMPACT)
			  : strdup("(missing)");
		snprintf(buf, sizeof(buf), "node %s: want %.1500s got %.1500s",
			 name, w, g);
		free(w);
		free(g);
		return buf;
	}
	json_object_foreach((json_t *)got, name, value) {
		if (!json_object_get(want, name)) {
			snprintf(buf, sizeof(buf), "unexpected node %s", name);
			return buf;
		}
	}
	return "equal";
}

static int set_context(atex_fmf_context *ctx, json_t *context)
{
	const char *key;
	json_t *value;

	json_object_foreach(context, key, value)
		if (atex_fmf_context_set_json(ctx, key, value) < 0)
			return -1;
	return 0;
}

static void check_library(const char *file, const char *tree_dir,
			  json_t *expected)
{
	json_t *context = json_object_get(expected, "context");
	json_t *filters = json_object_get(expected, "filters");
	json_t *want = json_object_get(expected, "nodes");
	const char *flist[16];
	atex_fmf_context *ctx = NULL;
	atex_fmf_tree *tree = NULL;
	json_t *nodes = NULL;
	size_t n = json_array_size(filters);
	int rc;

	for (size_t i = 0; i < n && i < 16; i++)
		flist[i] = json_string_value(json_array_get(filters, i));
	if (atex_fmf_context_new(&ctx) < 0 || set_context(ctx, context) < 0) {
		fail(file, "library", atex_error_last());
		goto out;
	}
	rc = atex_fmf_tree_load(&tree, tree_dir);
	if (rc == 0)
		rc = atex_fmf_tree_adjust(tree, ctx);
	if (rc == 0)
		rc = atex_fmf_tree_prune(&nodes, tree, NULL, 0, flist, n);
	if (!want) {
		if (rc == 0)
			fail(file, "library", "the reference refuses this tree, "
					      "atex accepted it");
		else if (!atex_error_last()[0])
			fail(file, "library", "refused without a message");
		goto out;
	}
	if (rc < 0)
		fail(file, "library", atex_error_last());
	else if (!same(want, nodes))
		fail(file, "library", describe_diff(want, nodes));
out:
	json_decref(nodes);
	atex_fmf_tree_free(tree);
	atex_fmf_context_free(ctx);
}

/* Runs the CLI; stdout goes to *out (caller frees), returns the exit
 * status or -1. */
static int run_cli(char **out, char *const argv[])
{
	char outfile[] = "/tmp/atex-conf-XXXXXX";
	int fd = mkstemp(outfile), status;
	pid_t pid;
	FILE *f;
	long size;

	*out = NULL;
	if (fd < 0)
		return -1;
	unlink(outfile);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", 1);

		dup2(fd, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	f = fdopen(fd, "r");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	*out = calloc(1, (size_t)size + 1);
	if (fread(*out, 1, (size_t)size, f) != (size_t)size)
		size = 0;
	fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void check_cli(const char *file, const char *cli, const char *tree_dir,
		      json_t *expected)
{
	json_t *context = json_object_get(expected, "context");
	json_t *filters = json_object_get(expected, "filters");
	json_t *want = json_object_get(expected, "nodes");
	char *argv[64], *strings[64], *output = NULL;
	size_t argc = 0, ns = 0, i;
	const char *key;
	json_t *value, *item, *got = NULL;
	int status;

	argv[argc++] = (char *)cli;
	argv[argc++] = "fmf";
	argv[argc++] = "dump";
	json_object_foreach(context, key, value) {
		char buf[1024] = "";

		if (json_is_string(value)) {
			snprintf(buf, sizeof(buf), "%s=%s", key,
				 json_string_value(value));
		} else {
			snprintf(buf, sizeof(buf), "%s=", key);
			json_array_foreach(value, i, item) {
				if (i)
					strcat(buf, ",");
				strcat(buf, json_string_value(item));
			}
		}
		argv[argc++] = "--context";
		argv[argc++] = strings[ns++] = strdup(buf);
	}
	json_array_foreach(filters, i, item) {
		argv[argc++] = "--filter";
		argv[argc++] = (char *)json_string_value(item);
	}
	argv[argc++] = (char *)tree_dir;
	argv[argc] = NULL;
	status = run_cli(&output, argv);
	if (!want) {
		if (status != 2)
			fail(file, "cli", "refused tree: exit status is not 2");
		else if (output && output[0])
			fail(file, "cli", "refused tree: partial output on stdout");
		goto out;
	}
	if (status != 0) {
		fail(file, "cli", "exit status is not 0");
		goto out;
	}
	got = json_loads(output, 0, NULL);
	if (!got || !json_object_get(got, "nodes"))
		fail(file, "cli", "stdout is not {\"nodes\": ...}");
	else if (!same(want, json_object_get(got, "nodes")))
		fail(file, "cli", describe_diff(want, json_object_get(got, "nodes")));
out:
	json_decref(got);
	free(output);
	for (i = 0; i < ns; i++)
		free(strings[i]);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	char path[4096], tree_dir[4096];
	const char *dir = argc > 1 ? argv[1] : NULL;
	const char *cli = argc > 2 ? argv[2] : NULL;
	char *names[2048];
	size_t n = 0;
	struct dirent *e;
	DIR *d;

	if (!dir) {
		fprintf(stderr, "usage: %s CONFORMANCE_FMF_DIR [ATEX_CLI]\n",
			argv[0]);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/expected", dir);
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 2;
	}
	while ((e = readdir(d)) && n < 2048)
		if (strstr(e->d_name, ".json"))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	for (size_t i = 0; i < n; i++) {
		json_error_t err;
		json_t *expected;

		snprintf(path, sizeof(path), "%s/expected/%s", dir, names[i]);
		expected = json_load_file(path, 0, &err);
		if (!expected) {
			fail(names[i], "load", err.text);
			continue;
		}
		snprintf(tree_dir, sizeof(tree_dir), "%s/trees/%s", dir,
			 json_string_value(json_object_get(expected, "tree")));
		check_library(names[i], tree_dir, expected);
		if (cli)
			check_cli(names[i], cli, tree_dir, expected);
		json_decref(expected);
		free(names[i]);
	}
	printf("%zu cases, %d failures\n", n, failures);
	if (n == 0)
		return 1;
	return failures ? 1 : 0;
}
