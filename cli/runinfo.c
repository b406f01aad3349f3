/*
 * runinfo.c - DIR/run.json of `atex run` (docs/PROTOCOL.md, "run.json"):
 * what a run was, for the people and tools that read its results later:
 *
 *     {"started": ISO, "ended": ISO or null, "atex_version": "0.1.0",
 *      "platform": "local", "provisioner": "local", "tree": "/abs/path",
 *      "git_commit": "40 hex" or null, "context": {"distro": "fedora-41"},
 *      "systems": 2 or null, "history": null}
 *
 * How it is built, and why:
 *
 *  - Written when the run starts (ended null) and again when it ends,
 *    each time to a temporary file renamed over run.json: a reader never
 *    sees half of one, and a run killed halfway leaves the first one
 *    (ended null says so).
 *  - The tree's commit comes from `git -C TREE rev-parse
 *    --is-inside-work-tree HEAD`, run as a program with no input and its
 *    errors discarded: git missing, a tree outside a work tree, a
 *    repository without commits all give null, never a failed run.
 *    rev-parse reads local files only (no network).
 *  - The context is the --context values, each dimension as one string
 *    (several values joined with "," as --context takes them): the form
 *    tmt's and Python ATEX's context dictionaries have.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atex/atex.h"
#include "cli.h"

extern char **environ;

void cli_runinfo_now(char out[40])
{
	struct timespec ts;
	struct tm tm;
	char date[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%.19s.%03u+00:00", date,
		 (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

static json_t *iso_now(void)
{
	char now[40];

	cli_runinfo_now(now);
	return json_string(now);
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]) || !s[i])
			return false;
	return true;
}

/* The commit of the work tree `tree` is in, or NULL. */
static char *git_commit(const char *tree)
{
	const char *argv[] = {
		"git",	"-C", tree, "rev-parse", "--is-inside-work-tree",
		"HEAD", NULL};
	posix_spawn_file_actions_t fa;
	char out[256];
	size_t len = 0;
	int pipefd[2], status = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "git", &fa, NULL, (char *const *)argv,
			 environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	while (pid > 0 && len < sizeof(out) - 1 &&
	       ((n = read(pipefd[0], out + len, sizeof(out) - 1 - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		len += n > 0 ? (size_t)n : 0;
	close(pipefd[0]);
	out[len] = '\0';
	if (pid < 0)
		return NULL;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    strncmp(out, "true\n", 5))
		return NULL;
	/* SHA-1 or SHA-256 object names. */
	n = (ssize_t)strcspn(out + 5, "\n");
	if ((n != 40 && n != 64) || !all_hex(out + 5, (size_t)n))
		return NULL;
	return strndup(out + 5, (size_t)n);
}

/* {"dim": "v1,v2"} from the context's {"dim": ["v1", "v2"]}. */
static json_t *context_object(const atex_fmf_context *ctx)
{
	json_t *lists = ctx ? atex_fmf_context_to_json(ctx) : json_object();
	json_t *out = json_object(), *values, *v;
	const char *dim;
	size_t i;

	if (!lists || !out)
		goto fail;
	json_object_foreach(lists, dim, values)
	{
		struct {
			char *ptr;
			size_t len;
		} s = {NULL, 0};
		FILE *f = open_memstream(&s.ptr, &s.len);

		if (!f)
			goto fail;
		json_array_foreach(values, i, v)
			fprintf(f, "%s%s", i ? "," : "", json_string_value(v));
		if (fclose(f) != 0 ||
		    json_object_set_new(out, dim, json_string(s.ptr)) < 0) {
			free(s.ptr);
			goto fail;
		}
		free(s.ptr);
	}
	json_decref(lists);
	return out;
fail:
	json_decref(lists);
	json_decref(out);
	return NULL;
}

json_t *cli_runinfo_new(const char *platform, const char *provisioner,
			const char *tree, const atex_fmf_context *ctx)
{
	char *abs = realpath(tree, NULL);
	char *commit = git_commit(abs ? abs : tree);
	json_t *info = json_pack(
		"{s:o,s:n,s:s,s:s,s:s,s:s?,s:s?,s:o?,s:n,s:n}", "started",
		iso_now(), "ended", "atex_version", ATEX_VERSION_STRING,
		"platform", platform, "provisioner", provisioner, "tree",
		abs ? abs : tree, "git_commit", commit, "context",
		context_object(ctx), "systems", "history");

	free(abs);
	free(commit);
	if (!info)
		cli_error("run: run.json: out of memory");
	return info;
}

char *cli_runinfo_sqlite_json(const json_t *info)
{
	json_t *o = json_pack("{s:O,s:O,s:O,s:O,s:O,s:O}", "started",
			      json_object_get(info, "started"), "platform",
			      json_object_get(info, "platform"), "provisioner",
			      json_object_get(info, "provisioner"), "tree",
			      json_object_get(info, "tree"), "git_commit",
			      json_object_get(info, "git_commit"), "context",
			      json_object_get(info, "context"));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

int cli_runinfo_write(const json_t *info, const char *dir)
{
	char *path = NULL, *tmp = NULL, *text = NULL;
	int rc = CLI_USAGE, fd, err;
	size_t len;
	bool ok;

	if (asprintf(&path, "%s/run.json", dir) < 0) {
		path = NULL;
		goto out;
	}
	if (asprintf(&tmp, "%s/.run.json.tmp", dir) < 0) {
		tmp = NULL;
		goto out;
	}
	text = json_dumps(info, JSON_INDENT(2));
	if (!text)
		goto out;
	len = strlen(text);
	/* Ours alone: a file or link left there is replaced, not
	 * followed. */
	if (unlink(tmp) < 0 && errno != ENOENT)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	ok = fd >= 0 && write(fd, text, len) == (ssize_t)len &&
	     write(fd, "\n", 1) == 1;
	err = errno;
	if (fd >= 0 && close(fd) < 0 && ok) {
		ok = false;
		err = errno;
	}
	if (!ok) {
		unlink(tmp);
		errno = err ? err : EIO;
		goto out;
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		goto out;
	}
	rc = CLI_OK;
out:
	if (rc != CLI_OK)
		cli_error("run: %s: cannot write: %s", path ? path : dir,
			  strerror(errno ? errno : ENOMEM));
	free(text);
	free(tmp);
	free(path);
	return rc;
}

int cli_runinfo_finish(json_t *info, const char *dir, size_t systems,
		       const char *ended)
{
	if (json_object_set_new(info, "ended",
				ended ? json_string(ended) : iso_now()) < 0 ||
	    json_object_set_new(info, "systems",
				json_integer((json_int_t)systems)) < 0) {
		cli_error("run: run.json: out of memory");
		return CLI_USAGE;
	}
	return cli_runinfo_write(info, dir);
}
