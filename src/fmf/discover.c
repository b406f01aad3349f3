/*
 * discover.c - from an fmf tree and a tmt plan to the ordered list of tests
 * to run, with the plan's environment, prepare and finish steps: the part
 * of tmt atex needs, read the way tmt reads it.
 *
 * Selection, order and names follow tmt (tmt/base/core.py Tree.tests,
 * tmt/steps/discover/{fmf,shell}.py, tmt/steps/__init__.py): a plan is a
 * node with `execute`, not `enabled: false`, after adjusting with the
 * caller's context. The plan's `context` key, under the caller's context,
 * then adjusts the tests and decides phases' `when` (not the plan's own
 * adjust rules, as spec/plans/context.fmf says). Step phases get tmt's default
 * names and `how: shell`, run sorted by `order`, and only when their `when`
 * matches. An fmf phase selects tests from the plan's tree, from `path` inside
 * it, or from a git repository (`url`, `ref`) cloned into a cache directory:
 * nodes with a `test` key, their data after `adjust-tests`, per `test`
 * name (repeats kept) sorted by `order`, then kept by `filter` (over
 * tmt's exported test data), `link`, `exclude`, `include`, keeping only
 * those whose `manual` is false and `enabled` true (absent, or exactly the
 * boolean, as tmt tests with `is`). A shell phase lists its tests; a plan
 * without `discover` has a bare shell phase, which `execute: script`
 * fills. With several phases, each test name is prefixed with
 * "/<phase name>".
 *
 * Test data shares values with other tests (inherited keys are the same
 * values); a test's data is deep-copied the first time a caller asks for it,
 * so a program may change anything in it without touching another test's
 * data, and a run that never looks pays neither the time nor the memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atex/fmf.h"
#include "fmf/fmf_private.h"
#include "util/pyre.h"
#include "util/util.h"

extern char **environ;

struct test {
	const char *name; /* the node's, or own_name with a section prefix */
	char *own_name;
	const char *root; /* the tree's, kept alive by the discovery */
	const char *dir;  /* the tree's, or own_dir */
	char *own_dir;	  /* from the test's `path` key */
	json_t *data;
	bool private; /* data is a deep copy nobody else holds */
};

struct atex_fmf_discovery {
	char *plan_name;
	json_t *plan;
	json_t *environment;
	json_t *prepare;
	json_t *finish;
	struct atex_vec tests; /* struct test * */
	/* The trees tests came from. Test data shares their values, so they
	 * are released with the discovery instead of while a caller waits
	 * for the list (freeing 10,000 nodes costs as much as adjusting). */
	struct atex_vec trees;
	/* Clones shell phases with `url` run their tests in (owned). */
	struct atex_vec roots;
	const char *plan_file; /* the plan node's file, for messages */
};

static void test_free(void *p)
{
	struct test *t = p;

	if (!t)
		return;
	free(t->own_name);
	free(t->own_dir);
	json_decref(t->data);
	free(t);
}

void atex_fmf_discovery_free(atex_fmf_discovery *d)
{
	if (!d)
		return;
	atex_vec_free_all(&d->tests, test_free);
	atex_vec_free_all(&d->trees, (void (*)(void *))atex_fmf_tree_free);
	atex_vec_free_all(&d->roots, free);
	json_decref(d->plan);
	json_decref(d->environment);
	json_decref(d->prepare);
	json_decref(d->finish);
	free(d->plan_name);
	free(d);
}

/* A string or a list of strings as a new list; NULL with an error
 * otherwise. `what` names the key for the message. */
static json_t *string_list(const json_t *value, const char *what,
			   const char *plan)
{
	json_t *list, *item;
	size_t i;

	if (!value)
		return json_array();
	if (json_is_string(value))
		return json_pack("[O]", value);
	if (!json_is_array(value))
		goto bad;
	json_array_foreach(value, i, item) if (!json_is_string(item)) goto bad;
	list = json_copy((json_t *)value);
	if (!list)
		atex_error_oom();
	return list;
bad:
	atex_error_set(ATEX_EFORMAT,
		       "plan %s: '%s' must be a string or a list of strings",
		       plan, what);
	return NULL;
}

/* A dict or a list of dicts (tmt's step forms) as a new list. */
static json_t *step_list(const json_t *value, const char *step,
			 const char *plan)
{
	json_t *item;
	size_t i;

	if (!value || json_is_null(value)) /* `discover:` left empty */
		return json_array();
	if (json_is_object(value))
		return json_pack("[O]", value);
	if (json_is_array(value)) {
		json_array_foreach(value, i,
				   item) if (!json_is_object(item)) goto bad;
		return json_copy((json_t *)value);
	}
bad:
	atex_error_set(ATEX_EFORMAT,
		       "plan %s: '%s' must be a mapping or a list of mappings",
		       plan, step);
	return NULL;
}

/* tmt accepts `environment` as a dict or as a list of "NAME=VALUE". */
static int plan_environment(json_t **out, const json_t *value, const char *plan)
{
	json_t *env = json_object(), *item;
	const char *key;
	size_t i;

	*out = env;
	if (!env)
		return atex_error_oom();
	if (!value || json_is_null(value))
		return 0;
	if (json_is_object(value)) {
		json_object_foreach((json_t *)value, key, item)
		{
			char *text =
				json_is_string(item)
					? atex_strdup(json_string_value(item))
					: atex_py_str(item);

			if (!text || json_object_set_new(
					     env, key, json_string(text)) < 0) {
				free(text);
				return atex_error_oom();
			}
			free(text);
		}
		return 0;
	}
	if (!json_is_array(value))
		goto bad;
	json_array_foreach(value, i, item)
	{
		const char *s = json_string_value(item);
		const char *eq = s ? strchr(s, '=') : NULL;
		char *name;
		int rc;

		if (!eq || eq == s)
			goto bad;
		name = atex_strndup(s, (size_t)(eq - s));
		rc = name ? json_object_set_new(env, name, json_string(eq + 1))
			  : -1;
		free(name);
		if (rc < 0)
			return atex_error_oom();
	}
	return 0;
bad:
	return atex_error_set(ATEX_EFORMAT,
			      "plan %s: 'environment' must be a mapping or a "
			      "list of NAME=VALUE strings",
			      plan);
}

/* ------------------------------------------------------------------------
 * Step phases, as tmt reads them.
 */

/* "FILE: plan NAME: MESSAGE" as ATEX_EFORMAT. */
static int plan_error(const atex_fmf_discovery *d, const char *fmt, ...)
	ATEX_PRINTF(2, 3);

static int plan_error(const atex_fmf_discovery *d, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return atex_error_set(ATEX_EFORMAT, "%s%splan %s: %s",
			      d->plan_file ? d->plan_file : "",
			      d->plan_file ? ": " : "", d->plan_name, msg);
}

/* Python's int() of an `order` value, null being tmt's default (50).
 * Returns 0, or -1 when int() would fail. */
static int order_value(long *out, const json_t *v)
{
	const char *s;
	char *end;

	*out = 50;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v)) {
		*out = json_is_boolean(v)   ? json_is_true(v)
		       : json_is_integer(v) ? (long)json_integer_value(v)
					    : (long)json_real_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	errno = 0;
	*out = strtol(s, &end, 10);
	end += strspn(end, " \t\n\r");
	return end != s && !*end && !errno && s[strspn(s, " \t\n\r")] ? 0 : -1;
}

/* The keys each method atex runs reads, besides the ones every phase may
 * have. A key outside these is refused: tmt would act on it, atex would
 * not, and a run doing less than its plan says must not pass silently. */
static const char *const phase_keys[] = {"name", "how",	    "order",
					 "when", "summary", NULL};
static const char *const fmf_keys[] = {
	"url",	   "ref",     "path",	      "test",  "link", "filter",
	"include", "exclude", "adjust-tests", "prune", NULL};
static const char *const shell_discover_keys[] = {"tests", "url", "ref",
						  "keep-git-metadata", NULL};
static const char *const script_keys[] = {"script", NULL};
static const char *const install_keys[] = {"package", NULL};

static const struct method {
	const char *step, *how;
	const char *const *keys;
} methods[] = {
	{"discover", "fmf", fmf_keys},
	{"discover", "shell", shell_discover_keys},
	{"prepare", "shell", script_keys},
	{"prepare", "install", install_keys},
	{"finish", "shell", script_keys},
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static int check_phase(const atex_fmf_discovery *d, const char *step,
		       const json_t *phase)
{
	const char *how = json_string_value(json_object_get(phase, "how"));
	const char *name = json_string_value(json_object_get(phase, "name"));
	const struct method *m = NULL;
	struct atex_buf known = ATEX_BUF_INIT;
	const char *key;
	json_t *v;
	int rc = 0;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(methods[i].step, step) &&
		    !strcmp(methods[i].how, how))
			m = &methods[i];
	if (!m)
		return plan_error(
			d,
			"%s phase '%s': unsupported method 'how: "
			"%s' (atex runs %s)",
			step, name, how,
			!strcmp(step, "discover")  ? "'fmf' and 'shell'"
			: !strcmp(step, "prepare") ? "'install' and 'shell'"
						   : "'shell'");
	json_object_foreach((json_t *)phase, key, v)
	{
		if (in_list(phase_keys, key) || in_list(m->keys, key))
			continue;
		for (const char *const *k = phase_keys; *k; k++)
			atex_buf_printf(&known, "%s, ", *k);
		for (const char *const *k = m->keys; *k; k++)
			atex_buf_printf(&known, "%s%s", *k, k[1] ? ", " : "");
		rc = plan_error(d,
				"%s phase '%s' (how: %s): key '%s' is not one "
				"atex reads (it reads %s)",
				step, name, how, key,
				known.ptr ? known.ptr : "");
		break;
	}
	atex_buf_free(&known);
	return rc;
}

/* Whether a phase's `when` (a rule or a list of rules) lets it run: any
 * matching rule does; a rule the context cannot decide does not. Unlike
 * adjust, tmt matches `when` with fmf's default, case-sensitive context
 * (tmt/steps/__init__.py enabled_by_when): `distro == fedora-41` does
 * not hold for Fedora-41 there. */
static int phase_enabled(const atex_fmf_discovery *d, const json_t *phase,
			 const atex_fmf_context *ctx)
{
	json_t *rules = string_list(json_object_get(phase, "when"), "when",
				    d->plan_name),
	       *rule;
	atex_fmf_context *exact = NULL;
	size_t i;
	int rc = 1, decision = ATEX_FMF_FALSE;

	if (!rules)
		return atex_error_last_code();
	if (json_array_size(rules) == 0)
		goto out;
	rc = atex_fmf_context_copy(&exact, ctx);
	if (rc < 0)
		goto out;
	atex_fmf_context_set_case_sensitive(exact, true);
	json_array_foreach(rules, i, rule)
	{
		rc = atex_fmf_context_match(&decision, exact,
					    json_string_value(rule));
		if (rc < 0 || decision == ATEX_FMF_TRUE)
			break;
	}
	if (rc == 0)
		rc = decision == ATEX_FMF_TRUE;
out:
	atex_fmf_context_free(exact);
	json_decref(rules);
	return rc;
}

/* Gives each phase without a name tmt's default-0, default-1... (skipping
 * names taken) and refuses two phases with one name: tmt refuses them,
 * and several discover phases prefix their tests with their names. */
static int name_phases(const atex_fmf_discovery *d, json_t *list,
		       const char *step)
{
	size_t n = json_array_size(list), next = 0;

	for (size_t i = 0; i < n; i++) {
		json_t *phase = json_array_get(list, i);
		char name[64];
		bool taken;

		if (json_object_get(phase, "name"))
			continue;
		do {
			snprintf(name, sizeof(name), "default-%zu", next++);
			taken = false;
			for (size_t j = 0; j < n && !taken; j++) {
				const char *other = json_string_value(
					json_object_get(json_array_get(list, j),
							"name"));

				taken = other && !strcmp(other, name);
			}
		} while (taken);
		if (json_object_set_new(phase, "name", json_string(name)) < 0)
			return atex_error_oom();
	}
	for (size_t i = 0; i < n; i++) {
		const char *a = json_string_value(
			json_object_get(json_array_get(list, i), "name"));

		for (size_t j = i + 1; j < n; j++)
			if (!strcmp(a,
				    json_string_value(json_object_get(
					    json_array_get(list, j), "name"))))
				return plan_error(d,
						  "%s phases %zu and %zu are "
						  "both named '%s'",
						  step, i + 1, j + 1, a);
	}
	return 0;
}

/* The methods tmt has for each step, in the order it tries them
 * (tmt/steps/__init__.py delegate): `how` names the first one it is a
 * prefix of, so `how: sh` is shell. atex runs only some of them; the
 * others resolve all the same, to be refused by name. */
static const char *const tmt_discover[] = {"fmf", "shell", NULL};
static const char *const tmt_prepare[] = {"ansible", "artifact",
					  "feature", "install",
					  "shell",   "verify-installation",
					  NULL};
static const char *const tmt_finish[] = {"ansible", "shell", NULL};
static const char *const tmt_execute[] = {"tmt", "upgrade", NULL};

static const char *tmt_method(const char *step, const char *how)
{
	const char *const *m = !strcmp(step, "discover")  ? tmt_discover
			       : !strcmp(step, "prepare") ? tmt_prepare
			       : !strcmp(step, "finish")  ? tmt_finish
							  : tmt_execute;

	for (; *how && *m; m++)
		if (!strncmp(*m, how, strlen(how)))
			return *m;
	return how;
}

/* One phase as written, with `how` defaulted to shell (tmt for execute)
 * and completed as tmt completes it, checked. */
static int phase_copy(json_t **out, long *order, const atex_fmf_discovery *d,
		      const json_t *raw, const char *step, size_t index)
{
	json_t *phase = json_copy((json_t *)raw), *v;

	*out = phase;
	if (!phase)
		return atex_error_oom();
	v = json_object_get(phase, "name");
	if (v && !json_is_string(v))
		return plan_error(d, "%s phase %zu: 'name' must be a string",
				  step, index + 1);
	v = json_object_get(phase, "how");
	if (v && !json_is_null(v) && !json_is_string(v))
		return plan_error(d, "%s phase %zu: 'how' must be a string",
				  step, index + 1);
	if (json_object_set_new(
		    phase, "how",
		    json_string(tmt_method(
			    step, v && json_is_string(v) ? json_string_value(v)
				  : !strcmp(step, "execute") ? "tmt"
							     : "shell"))) < 0)
		return atex_error_oom();
	if (order_value(order, json_object_get(phase, "order")) < 0)
		return plan_error(d, "%s phase %zu: 'order' must be a number",
				  step, index + 1);
	return 0;
}

/*
 * The phases of `step` as tmt reads them: a mapping or a list of
 * mappings, named, `how: shell` unless said, checked, sorted by `order`
 * (ties as written), without those whose `when` does not match. *total
 * counts every phase (tmt prefixes test names when there are several,
 * enabled or not).
 */
static int step_phases(json_t **out, size_t *total, const atex_fmf_discovery *d,
		       const char *step, const atex_fmf_context *ctx,
		       bool strict)
{
	json_t *raw =
		step_list(json_object_get(d->plan, step), step, d->plan_name);
	json_t *list = json_array(), *phase;
	size_t n = json_array_size(raw), i;
	long *orders = atex_calloc(n + 1, sizeof(*orders));
	int rc = 0;

	*out = NULL;
	*total = n;
	if (!raw || !list || !orders) {
		rc = raw ? atex_error_oom() : atex_error_last_code();
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++) {
		rc = phase_copy(&phase, &orders[i], d, json_array_get(raw, i),
				step, i);
		if (json_array_append_new(list, phase) < 0 && rc == 0)
			rc = atex_error_oom();
	}
	if (rc == 0)
		rc = name_phases(d, list, step);
	for (i = 0; i < n && rc == 0; i++) {
		rc = check_phase(d, step, json_array_get(list, i));
		if (rc == ATEX_EFORMAT && !strict) {
			atex_log(ATEX_LOG_WARNING, "fmf",
				 "%s (listing the tests anyway)",
				 atex_error_last());
			rc = 0;
		}
	}
	/* Stable: insertion sort on a handful of phases. */
	for (i = 1; i < n && rc == 0; i++)
		for (size_t j = i; j > 0 && orders[j - 1] > orders[j]; j--) {
			long o = orders[j];
			json_t *a = json_incref(json_array_get(list, j - 1));

			orders[j] = orders[j - 1];
			orders[j - 1] = o;
			json_array_set(list, j - 1, json_array_get(list, j));
			json_array_set_new(list, j, a);
		}
	for (i = 0; i < json_array_size(list) && rc == 0;) {
		rc = phase_enabled(d, json_array_get(list, i), ctx);
		if (rc == 0)
			json_array_remove(list, i);
		else if (rc > 0)
			i++;
		rc = rc > 0 ? 0 : rc;
	}
	if (rc == 0)
		*out = json_incref(list);
out:
	free(orders);
	json_decref(list);
	json_decref(raw);
	return rc;
}

/* Normalises prepare/finish phases to {"how", "package"|"script": [...],
 * ...}. */
static int plan_steps(json_t **out, const atex_fmf_discovery *d,
		      const char *step, const atex_fmf_context *ctx,
		      bool strict)
{
	json_t *steps = NULL, *item;
	size_t i, total;
	int rc = step_phases(&steps, &total, d, step, ctx, strict);

	*out = NULL;
	if (rc < 0)
		return rc;
	json_array_foreach(steps, i, item)
	{
		const char *how =
			json_string_value(json_object_get(item, "how"));
		const char *key =
			!strcmp(how, "install") ? "package" : "script";
		json_t *list = string_list(json_object_get(item, key), key,
					   d->plan_name);

		if (!list) {
			rc = atex_error_last_code();
			break;
		}
		if (json_object_set_new(item, key, list) < 0) {
			rc = atex_error_oom();
			break;
		}
	}
	if (rc == 0)
		*out = json_incref(steps);
	json_decref(steps);
	return rc;
}
/* ------------------------------------------------------------------------
 * Fetching `url` sections with git.
 */

/* Runs git with `argv` (argv[0] is "git"); stderr is kept for the error
 * message. */
static int run_git(char *const argv[], const char *what)
{
	char errfile[] = "/tmp/atex-git-XXXXXX";
	posix_spawn_file_actions_t fa;
	int fd, status = 0, rc = 0;
	pid_t pid;

	fd = mkstemp(errfile);
	if (fd < 0)
		return atex_error_set(ATEX_EIO, "cannot create a temp file: %s",
				      strerror(errno));
	unlink(errfile);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	if (posix_spawnp(&pid, "git", &fa, NULL, argv, environ) != 0) {
		rc = atex_error_set(ATEX_EEXTERNAL,
				    "%s: cannot run git (is it installed?)",
				    what);
		goto out;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char msg[1024] = "";
		ssize_t n = pread(fd, msg, sizeof(msg) - 1, 0);

		if (n > 0)
			msg[n] = '\0';
		msg[strcspn(msg, "\n")] = '\0';
		rc = atex_error_set(ATEX_EEXTERNAL, "%s: git %s failed: %s",
				    what, argv[1], msg);
	}
out:
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	return rc;
}

static char *default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (xdg && *xdg)
		return atex_sprintf("%s/atex/git", xdg);
	return atex_sprintf("%s/.cache/atex/git",
			    home && *home ? home : "/tmp");
}

static int mkdir_p(const char *path)
{
	char *copy = atex_strdup(path);
	int rc = 0;

	if (!copy)
		return ATEX_ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	if (mkdir(copy, 0755) < 0 && errno != EEXIST)
		rc = -1;
	if (rc < 0)
		rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", path,
				    strerror(errno));
	free(copy);
	return rc;
}

/* Clones (or updates) `url` at `ref` into the cache; *out is the clone. */
static int fetch_repo(char **out, const char *url, const char *ref,
		      const char *cache_dir)
{
	char *base = cache_dir ? atex_strdup(cache_dir) : default_cache_dir();
	char *dir = NULL, *gitdir = NULL, *name = NULL;
	int rc;

	*out = NULL;
	if (!base)
		return ATEX_ENOMEM;
	rc = mkdir_p(base);
	if (rc < 0)
		goto out;
	/* One clone per url, named so a person can tell which is which. */
	name = atex_strdup(url);
	if (!name) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	for (char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			*p = '_';
	dir = atex_path_join(base, name);
	gitdir = dir ? atex_path_join(dir, ".git") : NULL;
	if (!gitdir) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	if (atex_path_is_dir(gitdir)) {
		char *fetch[] = {"git",	    "-C",      dir,
				 "fetch",   "--quiet", "--tags",
				 "--force", "origin",  NULL};

		rc = run_git(fetch, url);
	} else {
		char *clone[] = {"git",	      "clone", "--quiet",
				 (char *)url, dir,     NULL};

		rc = run_git(clone, url);
	}
	if (rc == 0) {
		char *target =
			ref ? atex_strdup(ref) : atex_strdup("origin/HEAD");
		char *checkout[] = {"git",	"-C",	   dir,
				    "checkout", "--quiet", "--force",
				    "--detach", target,	   NULL};

		/* A branch name means the remote's branch, not a stale
		 * local one. */
		if (target && ref) {
			char *remote = atex_sprintf("origin/%s", ref);
			char *probe[] = {"git",	      "-C",	 dir,
					 "rev-parse", "--quiet", "--verify",
					 remote,      NULL};

			if (remote && run_git(probe, url) == 0) {
				free(target);
				target = remote;
				remote = NULL;
				checkout[7] = target;
			}
			free(remote);
		}
		rc = target ? run_git(checkout, url) : ATEX_ENOMEM;
		free(target);
	}
	if (rc == 0) {
		*out = dir;
		dir = NULL;
	}
out:
	free(base);
	free(name);
	free(dir);
	free(gitdir);
	return rc;
}

/* ------------------------------------------------------------------------
 * Selecting tests.
 */

static bool is_plan(const json_t *data)
{
	return json_object_get(data, "execute") != NULL;
}

static char *concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = atex_malloc(la + lb + 1);

	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

/* "FILE: test NAME: 'KEY' WHAT (it is TYPE)" for a test's metadata; no
 * type without `value`. */
static int bad_key(const char *file, const char *name, const char *key,
		   const char *what, const json_t *value)
{
	return atex_error_set(
		ATEX_EFORMAT, "%s%stest %s: '%s' %s%s%s%s", file ? file : "",
		file ? ": " : "", name, key, what, value ? " (it is " : "",
		value ? atex_py_type(value) : "", value ? ")" : "");
}

/* The keys atex itself reads, checked once here: a wrong type would
 * otherwise surface only on a system, after one was provisioned for it,
 * or not at all (a list where a mapping belongs is silently ignored). */
static int check_test(const char *file, const char *name, const json_t *data,
		      const char *root)
{
	json_t *v, *item;
	const char *key;
	double seconds;
	struct stat sb;
	char *dir;
	int rc;

	v = json_object_get(data, "test");
	if (!json_is_string(v))
		return bad_key(file, name, "test",
			       "must be a shell command string", v);
	if (!json_string_value(v)[strspn(json_string_value(v), " \t\n")])
		return bad_key(file, name, "test", "is empty", NULL);
	v = json_object_get(data, "duration");
	if (v && !json_is_string(v) && !json_is_integer(v))
		return bad_key(file, name, "duration",
			       "must be a duration such as "
			       "'5m' or '1h 30m'",
			       v);
	/* A sum of zero ("*2", "0") is tmt's default, 5m, multiplied: only
	 * the syntax can be wrong. */
	if (json_is_string(v) &&
	    atex_duration_parse(&seconds, json_string_value(v)) < 0)
		return bad_key(file, name, "duration",
			       "must be a duration such as '5m', '1h 30m' or "
			       "'*2'",
			       NULL);
	if (json_is_integer(v) && json_integer_value(v) < 0)
		return bad_key(file, name, "duration", "must not be negative",
			       v);
	v = json_object_get(data, "tty");
	if (v && !json_is_boolean(v))
		return bad_key(file, name, "tty", "must be true or false", v);
	v = json_object_get(data, "environment");
	if (v && !json_is_object(v))
		return bad_key(file, name, "environment",
			       "must be a mapping of "
			       "variable names to values",
			       v);
	json_object_foreach(v, key, item)
	{
		if (json_is_object(item) || json_is_array(item) ||
		    json_is_null(item))
			return bad_key(file, name, "environment",
				       "values must be "
				       "strings, numbers or booleans",
				       item);
	}
	v = json_object_get(data, "path");
	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad_key(file, name, "path",
			       "must be a directory of the tree", v);
	dir = atex_sprintf("%s/%s", root, json_string_value(v));
	if (!dir)
		return ATEX_ENOMEM;
	rc = stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)
		     ? 0
		     : atex_error_set(ATEX_EFORMAT,
				      "%s%stest %s: 'path' %s: no such "
				      "directory in the tree",
				      file ? file : "", file ? ": " : "", name,
				      json_string_value(v));
	free(dir);
	return rc;
}

/* A test found by a phase, before it is kept or not. */
struct cand {
	const atex_fmf_node *node; /* NULL for a shell phase's test */
	const char *name;	   /* the node's, or the shell test's */
	const char *file;	   /* for messages; may be NULL */
	const char *dir;	   /* relative to the tree root */
	json_t *data;		   /* a reference */
	long order;
};

static void cand_free(void *p)
{
	struct cand *c = p;

	if (c)
		json_decref(c->data);
	free(c);
}

/* What narrows a phase's tests: from the phase, the caller's options. */
struct selector {
	const char *prefix; /* "" or "/phase" */
	const char *root;   /* the tree root tests run from */
	json_t *entries;    /* `test`: [{"name": RE[, "rule": {...}]}] */
	atex_fmf_filter **filters;
	size_t n_filters;
	json_t *links, *includes, *excludes;
	json_t *rules; /* adjust-tests */
	const atex_fmf_context *ctx;
	const struct atex_fmf_discover_options *o;
};

/* Whether `name` matches a regex of `list` (re.search); negative on a
 * bad regex. */
static int any_search(const json_t *list, const char *name)
{
	json_t *item;
	size_t i;
	int rc;

	json_array_foreach(list, i, item)
	{
		rc = atex_pyre_search_str(json_string_value(item), name);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int any_search_c(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		int rc = atex_pyre_search_str(list[i], name);

		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Adds a [True, "true"] form for every boolean, as tmt does before
 * filtering, so "enabled: true" matches. */
static int bools_lowercase(json_t *vars)
{
	const char *key;
	json_t *v;

	json_object_foreach(vars, key, v)
	{
		if (!json_is_boolean(v))
			continue;
		if (json_object_set_new(
			    vars, key,
			    json_pack("[Os]", v,
				      json_is_true(v) ? "true" : "false")) < 0)
			return atex_error_oom();
	}
	return 0;
}

/* A string as a one-item list, for tmt's string-list keys. */
static int listify(json_t *vars, const char *key)
{
	json_t *v = json_object_get(vars, key);

	if (!v || json_is_array(v))
		return 0;
	return json_object_set_new(vars, key,
				   json_is_null(v) ? json_array()
						   : json_pack("[O]", v));
}

/*
 * The test's metadata as tmt filters it: its data with every key tmt
 * defines for a test set to its default when missing (tmt exports them
 * all), string lists as lists, `tier` as a string, `name` the test's
 * name, and booleans also in lowercase text. A new object.
 */
static json_t *filter_vars(const struct cand *c)
{
	static const char *const lists[] = {"author",	 "contact",
					    "component", "require",
					    "recommend", "tag",
					    "link",	 "where",
					    "check",	 "restart-on-exit-code",
					    NULL};
	json_t *vars = json_copy(c->data), *v;
	char *path = NULL, *tier = NULL;
	int rc;

	if (!vars)
		return NULL;
	path = strcmp(c->dir, ".") ? atex_sprintf("/%s", c->dir)
				   : atex_strdup("/");
	rc = path ? 0 : -1;
	for (const char *const *k = lists; *k && rc == 0; k++)
		if (!json_object_get(vars, *k))
			rc = json_object_set_new(vars, *k, json_array());
		else
			rc = listify(vars, *k);
	v = json_object_get(vars, "tier");
	if (rc == 0 && v && !json_is_null(v) && !json_is_string(v)) {
		tier = atex_py_str(v);
		rc = tier ? json_object_set_new(vars, "tier", json_string(tier))
			  : -1;
	}
	if (rc == 0)
		rc = json_object_set_new(vars, "name", json_string(c->name));
	if (rc == 0) {
		json_t *defaults = json_pack(
			"{sn sn sn sn ss sb sb so ss sb si ss sb si ss so}",
			"summary", "description", "id", "tier", "path", path,
			"manual", 0, "tty", 0, "environment", json_object(),
			"framework", "shell", "enabled", 1, "order", 50,
			"duration", "5m", "restart-with-reboot", 0,
			"restart-max-count", 1, "result", "respect", "sources",
			c->file ? json_pack("[s]", c->file) : json_array());
		rc = defaults ? json_object_update_missing(vars, defaults) : -1;
		json_decref(defaults);
	}
	if (rc == 0)
		rc = bools_lowercase(vars);
	free(path);
	free(tier);
	if (rc < 0) {
		json_decref(vars);
		atex_error_oom();
		return NULL;
	}
	return vars;
}

/* Link relations of tmt's spec (a mapping with none of them is an fmf
 * id, related). */
static const char *const relations[] = {
	"verifies",   "verified-by",   "implements", "implemented-by",
	"documents",  "documented-by", "blocks",     "blocked-by",
	"duplicates", "duplicated-by", "parent",     "child",
	"relates",    "test-script",   NULL};

/* Whether one link of the test matches the needle "[RELATION:]TARGET"
 * (both regexes, re.search; an fmf id target by its `name`). */
static int link_matches(const json_t *link, const char *needle)
{
	const char *colon = strchr(needle, ':'), *relation = "relates";
	const json_t *target = link;
	char *rel_re = colon ? atex_strndup(needle, (size_t)(colon - needle))
			     : atex_strdup(".*");
	const char *target_re = colon ? colon + 1 : needle;
	const char *key;
	json_t *v;
	int rc;

	if (!rel_re)
		return atex_error_oom();
	if (json_is_object(link)) {
		json_object_foreach((json_t *)link, key, v)
		{
			if (in_list(relations, key)) {
				relation = key;
				target = v;
			}
		}
	}
	if (json_is_object(target))
		target = json_object_get(target, "name");
	rc = json_is_string(target) ? atex_pyre_search_str(rel_re, relation)
				    : 0;
	if (rc > 0)
		rc = atex_pyre_search_str(target_re, json_string_value(target));
	free(rel_re);
	return rc;
}

/* tmt's `link` selection: any needle matching any link of the test. */
static int links_match(const json_t *needles, const json_t *data)
{
	json_t *links = json_object_get(data, "link"), *link, *needle;
	size_t i, j;
	int rc = 0;

	if (!json_array_size(needles))
		return 1;
	json_array_foreach(needles, i, needle)
	{
		/* A single link (a string or a mapping) is a list of one. */
		if (!json_is_array(links)) {
			rc = link_matches(links, json_string_value(needle));
			if (rc != 0)
				return rc;
			continue;
		}
		json_array_foreach(links, j, link)
		{
			rc = link_matches(link, json_string_value(needle));
			if (rc != 0)
				return rc;
		}
	}
	return rc;
}

/* Whether tmt keeps a test found by a phase: filters over its exported
 * metadata (no node name: a term without a key matches nothing), links,
 * exclude and include by name, not manual, enabled. tmt tests `manual is
 * False` and `enabled is True`: a value other than the boolean (null,
 * "false", 1) drops the test. */
static int keep(const struct selector *s, const struct cand *c)
{
	json_t *v = json_object_get(c->data, "manual"), *vars = NULL;
	int rc = 1;

	if (v && !json_is_false(v))
		return 0;
	v = json_object_get(c->data, "enabled");
	if (v && !json_is_true(v))
		return 0;
	if (s->n_filters && !(vars = filter_vars(c)))
		return ATEX_ENOMEM;
	for (size_t i = 0; i < s->n_filters && rc > 0; i++)
		rc = atex_fmf_filter_match(s->filters[i], vars, NULL);
	json_decref(vars);
	if (rc > 0)
		rc = links_match(s->links, c->data);
	if (rc > 0 && (rc = any_search(s->excludes, c->name)) >= 0)
		rc = !rc;
	if (rc > 0 &&
	    (rc = any_search_c(s->o->excludes, s->o->n_excludes, c->name)) >= 0)
		rc = !rc;
	if (rc > 0 && json_array_size(s->includes))
		rc = any_search(s->includes, c->name);
	return rc;
}

/* Applies adjust rules given by the plan (`adjust-tests`, a test
 * entry's own rule) to a copy of a node's data, after its own adjust as
 * fmf applies additional rules. A new reference in *out. */
static int adjust_extra(json_t **out, const atex_fmf_node *node,
			const json_t *rules, const atex_fmf_context *ctx,
			const char *plan)
{
	struct atex_merge m = {.node = atex_fmf_node_name(node),
			       .skip_adjust_keys = true};
	json_t *data = json_copy(atex_fmf_node_data(node)), *rule;
	size_t i;
	int rc = data ? 0 : atex_error_oom(), decision;

	json_array_foreach(rules, i, rule)
	{
		json_t *cont = json_object_get(rule, "continue"),
		       *when = json_object_get(rule, "when");

		if (rc < 0)
			break;
		decision = ATEX_FMF_TRUE;
		if (when && (rc = atex_fmf_context_match_json(&decision, ctx,
							      when)) < 0)
			break;
		if (decision != ATEX_FMF_TRUE)
			continue;
		rc = atex_fmf_merge(data, rule, &m);
		if (cont && json_is_false(cont))
			break;
	}
	if (rc < 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", atex_error_last());
		rc = atex_error_set(rc, "plan %s: adjust-tests: %s", plan, msg);
		json_decref(data);
		data = NULL;
	}
	*out = data;
	return rc;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = *(struct cand *const *)a,
			  *y = *(struct cand *const *)b;

	return (x->order > y->order) - (x->order < y->order);
}

/* Stable sort by `order`: qsort is not stable, so ties fall back to the
 * position, kept in `seq`. */
static void sort_by_order(struct atex_vec *v)
{
	/* Insertion sort: stable, and lists are in tree order already, so
	 * it is linear unless `order` says otherwise. */
	for (size_t i = 1; i < v->len; i++)
		for (size_t j = i;
		     j > 0 && cand_cmp(&v->items[j - 1], &v->items[j]) > 0;
		     j--) {
			void *t = v->items[j];

			v->items[j] = v->items[j - 1];
			v->items[j - 1] = t;
		}
}

static int new_cand(struct atex_vec *out, const atex_fmf_node *node,
		    const char *name, const char *file, const char *dir,
		    json_t *data)
{
	struct cand *c = atex_calloc(1, sizeof(*c));

	if (!c) {
		json_decref(data);
		return ATEX_ENOMEM;
	}
	*c = (struct cand){node, name, file, dir, data, 50};
	if (order_value(&c->order, json_object_get(data, "order")) < 0) {
		cand_free(c);
		return bad_key(file, name, "order", "must be a whole number",
			       json_object_get(data, "order"));
	}
	if (atex_vec_push(out, c) < 0) {
		cand_free(c);
		return atex_error_oom();
	}
	return 0;
}

/* The nodes of `tree` with a `test` key (stories too) whose name matches
 * `re` (NULL: any) and the caller's --test names, each with its data
 * after `rules`, sorted by `order`. */
static int fmf_cands(struct atex_vec *out, const atex_fmf_tree *tree,
		     const char *re, const json_t *rules,
		     const struct selector *s, const char *plan)
{
	const atex_fmf_node *node = NULL;
	int rc = 0;

	while (rc == 0 && (node = atex_fmf_tree_next(tree, node))) {
		const char *name = atex_fmf_node_name(node);
		json_t *data = NULL;
		int match;

		if (!atex_fmf_node_is_selected(node))
			continue;
		match = re ? atex_pyre_search_str(re, name) : 1;
		if (match > 0 && s->o->n_tests)
			match = any_search_c(s->o->tests, s->o->n_tests, name);
		if (match <= 0) {
			rc = match;
			continue;
		}
		rc = json_array_size(rules)
			     ? adjust_extra(&data, node, rules, s->ctx, plan)
			     : 0;
		if (rc < 0)
			break;
		if (!data)
			data = json_incref(atex_fmf_node_data(node));
		if (!json_object_get(data, "test")) {
			json_decref(data);
			continue;
		}
		rc = new_cand(out, node, name, atex_fmf_node_file(node),
			      atex_fmf_node_dir(node), data);
	}
	sort_by_order(out);
	return rc;
}

/* Adds a kept test under the phase prefix. */
static int add_test(atex_fmf_discovery *d, const struct selector *s,
		    const struct cand *c)
{
	const char *path = json_string_value(json_object_get(c->data, "path"));
	struct test *t;
	int rc = check_test(c->file, c->name, c->data, s->root);

	if (rc < 0)
		return rc;
	t = atex_calloc(1, sizeof(*t));
	if (!t)
		return ATEX_ENOMEM;
	t->name = t->own_name = concat(s->prefix, c->name);
	/* A name is a path below the results directory: never "..". */
	rc = atex_fmf_check_test_name(c->node, c->name);
	if (rc < 0 && !c->node)
		atex_error_prefix("plan %s", d->plan_name);
	if (rc == 0 && s->prefix[0] && t->name &&
	    (rc = atex_fmf_check_test_name(NULL, t->name)) < 0)
		atex_error_prefix("plan %s: discover phase '%s'", d->plan_name,
				  s->prefix + 1);
	if (rc < 0) {
		test_free(t);
		return rc;
	}
	t->root = s->root;
	t->dir = t->own_dir = atex_strdup(c->dir);
	/* tmt lets a test say where it runs with `path` (from the root). */
	if (path) {
		path += strspn(path, "/");
		free(t->own_dir);
		t->dir = t->own_dir = atex_strdup(*path ? path : ".");
	}
	t->data = json_incref(c->data);
	if (!t->name || !t->dir || atex_vec_push(&d->tests, t) < 0) {
		test_free(t);
		return atex_error_oom();
	}
	return 0;
}

/* Keeps and adds what `cands` holds, in order. */
static int add_kept(atex_fmf_discovery *d, const struct selector *s,
		    const struct atex_vec *cands)
{
	int rc = 0;

	for (size_t i = 0; i < cands->len && rc >= 0; i++) {
		const struct cand *c = cands->items[i];

		/* tmt builds every test its names select before filtering,
		 * and refuses one whose `test` is null even if a filter
		 * would drop it: a broken test never passes silently. */
		if (json_is_null(json_object_get(c->data, "test")))
			return bad_key(c->file, c->name, "test",
				       "must be a shell command string",
				       json_null());
		rc = keep(s, cands->items[i]);
		if (rc > 0)
			rc = add_test(d, s, cands->items[i]);
	}
	return rc < 0 ? rc : 0;
}

/* An fmf phase on `tree`: per `test` entry (or once for all), the
 * matching tests sorted by `order`, then kept or not. A test an entry
 * names twice comes twice, as tmt runs it. */
static int select_fmf(atex_fmf_discovery *d, const atex_fmf_tree *tree,
		      const struct selector *s)
{
	size_t n = json_array_size(s->entries), i;
	int rc = 0;

	for (i = 0; rc == 0 && i < (n ? n : 1); i++) {
		json_t *entry = json_array_get(s->entries, i);
		json_t *rule = json_object_get(entry, "rule");
		json_t *rules =
			rule ? json_copy(s->rules) : json_incref(s->rules);
		struct atex_vec cands = ATEX_VEC_INIT;

		if (!rules || (rule && json_array_append(rules, rule) < 0))
			rc = atex_error_oom();
		if (rc == 0)
			rc = fmf_cands(&cands, tree,
				       json_string_value(
					       json_object_get(entry, "name")),
				       rules, s, d->plan_name);
		if (rc == 0)
			rc = add_kept(d, s, &cands);
		atex_vec_free_all(&cands, cand_free);
		json_decref(rules);
	}
	return rc;
}

/* A shell phase's test: a mapping with `name` and `test`; its node name
 * is the name under "/" (os.path.join, as tmt grows its tree), its data
 * the rest, with tmt's duration for such tests (1h) unless given. */
static int shell_cand(struct atex_vec *out, atex_fmf_discovery *d,
		      const json_t *item, size_t index, char **name)
{
	const char *given = json_string_value(json_object_get(item, "name"));
	json_t *data;

	*name = NULL;
	if (!json_is_object(item) || !given || !*given)
		return plan_error(d,
				  "discover 'tests' item %zu must be a "
				  "mapping with a 'name'",
				  index + 1);
	*name = given[0] == '/' ? atex_strdup(given)
				: atex_sprintf("/%s", given);
	data = json_copy((json_t *)item);
	if (!*name || !data || json_object_del(data, "name") < 0 ||
	    (!json_object_get(data, "duration") &&
	     json_object_set_new(data, "duration", json_string("1h")) < 0)) {
		json_decref(data);
		return atex_error_oom();
	}
	return new_cand(out, NULL, *name, d->plan_file, ".", data);
}

/* tmt grows a shell phase's tests as children of an fmf tree: a name
 * listed again updates the first test of that name (its keys win) instead
 * of adding one. Merges the last candidate into an earlier one of its
 * name and drops it; false when the name is new. */
static bool shell_merge(struct atex_vec *cands)
{
	struct cand *last = cands->items[cands->len - 1], *c;

	for (size_t i = 0; i + 1 < cands->len; i++) {
		c = cands->items[i];
		if (strcmp(c->name, last->name))
			continue;
		json_object_update(c->data, last->data);
		/* Both orders were checked: the merged one is valid. */
		order_value(&c->order, json_object_get(c->data, "order"));
		cand_free(atex_vec_pop(cands));
		return true;
	}
	return false;
}

/* A shell phase: the tests it lists, with the caller's --test names,
 * sorted by `order`, then kept or not. */
static int select_shell(atex_fmf_discovery *d, const json_t *phase,
			const struct selector *s)
{
	json_t *tests = json_object_get(phase, "tests"), *item;
	struct atex_vec cands = ATEX_VEC_INIT, names = ATEX_VEC_INIT;
	size_t i;
	int rc = 0;

	if (tests && !json_is_array(tests))
		return plan_error(
			d,
			"discover phase '%s': 'tests' must be a "
			"list of mappings",
			json_string_value(json_object_get(phase, "name")));
	json_array_foreach(tests, i, item)
	{
		char *name = NULL;
		int match;

		rc = shell_cand(&cands, d, item, i, &name);
		if (name && atex_vec_push(&names, name) < 0) {
			free(name);
			rc = atex_error_oom();
		}
		if (rc < 0)
			break;
		if (shell_merge(&cands))
			continue;
		match = s->o->n_tests
				? any_search_c(s->o->tests, s->o->n_tests, name)
				: 1;
		if (match <= 0) {
			cand_free(atex_vec_pop(&cands));
			rc = match;
			if (rc < 0)
				break;
		}
	}
	sort_by_order(&cands);
	if (rc == 0)
		rc = add_kept(d, s, &cands);
	atex_vec_free_all(&cands, cand_free);
	/* Names are copied by add_test: free them only now. */
	atex_vec_free_all(&names, free);
	return rc;
}

/* A `test` value of an fmf phase as entries {"name": RE[, "rule": R]}:
 * names, or mappings whose other keys are an adjust rule for the tests
 * they select. */
static json_t *test_entries(const atex_fmf_discovery *d, const json_t *value)
{
	json_t *list = json_array(), *item, *single = NULL;
	size_t i;

	if (!list)
		return NULL;
	if (value && !json_is_array(value))
		value = single = json_pack("[O]", value);
	json_array_foreach(value, i, item)
	{
		json_t *name = json_is_object(item)
				       ? json_object_get(item, "name")
				       : item;
		json_t *entry = json_is_string(name)
					? json_pack("{sO}", "name", name)
					: NULL;

		if (!entry) {
			plan_error(d,
				   "discover 'test' item %zu must be a "
				   "name or a mapping with a 'name'",
				   i + 1);
			goto fail;
		}
		if (json_is_object(item)) {
			json_t *rule = json_copy(item);

			if (!rule || json_object_del(rule, "name") < 0 ||
			    json_object_set_new(entry, "rule", rule) < 0) {
				json_decref(entry);
				atex_error_oom();
				goto fail;
			}
		}
		if (json_array_append_new(list, entry) < 0)
			goto fail;
	}
	json_decref(single);
	return list;
fail:
	json_decref(single);
	json_decref(list);
	return NULL;
}

/* adjust-tests: a rule or a list of rules, each a mapping. */
static json_t *adjust_rules(const atex_fmf_discovery *d, const json_t *value)
{
	json_t *item;
	size_t i;

	if (!value || json_is_null(value))
		return json_array();
	if (json_is_object(value))
		return json_pack("[O]", value);
	if (!json_is_array(value))
		goto bad;
	json_array_foreach(value, i, item) if (!json_is_object(item)) goto bad;
	return json_copy((json_t *)value);
bad:
	plan_error(d, "'adjust-tests' must be an adjust rule or a list of "
		      "rules");
	return NULL;
}

static void selector_free(struct selector *s)
{
	for (size_t i = 0; i < s->n_filters; i++)
		atex_fmf_filter_free(s->filters[i]);
	free(s->filters);
	json_decref(s->entries);
	json_decref(s->links);
	json_decref(s->includes);
	json_decref(s->excludes);
	json_decref(s->rules);
}

/* Compiles the filters: the caller's when given (they replace the
 * phase's, as `tmt run tests --filter` does), else the phase's. */
static int selector_filters(struct selector *s, const json_t *own)
{
	size_t n = s->o->n_filters ? s->o->n_filters : json_array_size(own);
	int rc = 0;

	s->filters = atex_calloc(n + 1, sizeof(*s->filters));
	if (!s->filters)
		return ATEX_ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++, s->n_filters++)
		rc = atex_fmf_filter_new(
			&s->filters[i],
			s->o->n_filters
				? s->o->filters[i]
				: json_string_value(json_array_get(own, i)));
	return rc;
}

/* The selector of a phase (an fmf phase's keys; a shell phase has only
 * the caller's). */
static int selector_init(struct selector *s, const atex_fmf_discovery *d,
			 const json_t *phase, bool fmf)
{
	const char *plan = d->plan_name ? d->plan_name : "-";
	json_t *filters = NULL;
	int rc;

	if (fmf) {
		s->entries = test_entries(d, json_object_get(phase, "test"));
		s->rules =
			adjust_rules(d, json_object_get(phase, "adjust-tests"));
		filters = string_list(json_object_get(phase, "filter"),
				      "filter", plan);
		s->links = string_list(json_object_get(phase, "link"), "link",
				       plan);
		s->includes = string_list(json_object_get(phase, "include"),
					  "include", plan);
		s->excludes = string_list(json_object_get(phase, "exclude"),
					  "exclude", plan);
	} else {
		s->entries = json_array();
		s->rules = json_array();
		filters = json_array();
		s->links = json_array();
		s->includes = json_array();
		s->excludes = json_array();
	}
	if (!s->entries || !s->rules || !filters || !s->links || !s->includes ||
	    !s->excludes)
		rc = atex_error_last_code() ? atex_error_last_code()
					    : ATEX_ENOMEM;
	else
		rc = selector_filters(s, filters);
	json_decref(filters);
	return rc;
}

/* Loads and adjusts a tree for a phase whose tests live elsewhere. */
static int load_adjusted(atex_fmf_tree **out, const char *path,
			 const atex_fmf_context *ctx)
{
	int rc = atex_fmf_tree_load_lean(out, path);

	if (rc == 0 && (rc = atex_fmf_tree_adjust(*out, ctx)) < 0) {
		atex_fmf_tree_free(*out);
		*out = NULL;
	}
	return rc;
}

/* Where a phase's tests live: the plan's tree, `path` in it, or a clone
 * of `url` (at `ref`), `path` in that. *tree is NULL for the plan's own
 * tree; otherwise the discovery owns it. */
static int phase_tree(atex_fmf_discovery *d, const atex_fmf_tree **tree,
		      const atex_fmf_tree *plan_tree, const json_t *phase,
		      const atex_fmf_context *ctx,
		      const struct atex_fmf_discover_options *o)
{
	const char *url = json_string_value(json_object_get(phase, "url"));
	const char *ref = json_string_value(json_object_get(phase, "ref"));
	const char *path = json_string_value(json_object_get(phase, "path"));
	atex_fmf_tree *other = NULL;
	char *repo = NULL, *where = NULL;
	int rc = 0;

	*tree = plan_tree;
	if (url) {
		rc = fetch_repo(&repo, url, ref, o->cache_dir);
		if (rc < 0)
			return rc;
		where = atex_path_join(repo,
				       path ? path + strspn(path, "/") : ".");
	} else if (path) {
		where = atex_path_join(atex_fmf_tree_root(plan_tree), path);
	}
	if ((url || path) && !where)
		rc = ATEX_ENOMEM;
	if (rc == 0 && where && (rc = load_adjusted(&other, where, ctx)) == 0) {
		/* Tests point into their tree: the discovery owns it. */
		rc = atex_vec_push(&d->trees, other);
		if (rc < 0)
			atex_fmf_tree_free(other);
		else
			*tree = other;
	}
	free(repo);
	free(where);
	return rc;
}

/* A shell phase with `url` runs its tests in a clone of it. */
static int shell_root(atex_fmf_discovery *d, const char **root,
		      const json_t *phase,
		      const struct atex_fmf_discover_options *o)
{
	char *repo = NULL;
	int rc = fetch_repo(
		&repo, json_string_value(json_object_get(phase, "url")),
		json_string_value(json_object_get(phase, "ref")), o->cache_dir);

	if (rc == 0 && atex_vec_push(&d->roots, repo) < 0) {
		free(repo);
		rc = atex_error_oom();
	}
	if (rc == 0)
		*root = repo;
	return rc;
}

static int run_phase(atex_fmf_discovery *d, const atex_fmf_tree *plan_tree,
		     const json_t *phase, size_t total,
		     const atex_fmf_context *ctx,
		     const struct atex_fmf_discover_options *o)
{
	const char *how = json_string_value(json_object_get(phase, "how"));
	const char *name = json_string_value(json_object_get(phase, "name"));
	bool fmf = !strcmp(how, "fmf");
	struct selector s = {.ctx = ctx, .o = o};
	const atex_fmf_tree *tree = plan_tree;
	char *prefix = total > 1 ? atex_sprintf("/%s", name) : atex_strdup("");
	int rc = prefix ? selector_init(&s, d, phase, fmf) : ATEX_ENOMEM;

	s.prefix = prefix;
	if (rc == 0 && fmf)
		rc = phase_tree(d, &tree, plan_tree, phase, ctx, o);
	s.root = atex_fmf_tree_root(tree);
	if (rc == 0 && !fmf && json_object_get(phase, "url"))
		rc = shell_root(d, &s.root, phase, o);
	if (rc == 0)
		rc = fmf ? select_fmf(d, tree, &s) : select_shell(d, phase, &s);
	selector_free(&s);
	free(prefix);
	return rc;
}

/* The caller's context over the plan's own `context` key (plan may be
 * NULL). Case-insensitive, as tmt adjusts its trees. */
static int plan_context(atex_fmf_context **out, const json_t *plan,
			const atex_fmf_context *given)
{
	json_t *keys = json_object_get(plan, "context"), *value, *mine = NULL;
	const char *key;
	int rc;

	rc = atex_fmf_context_new(out);
	if (rc < 0)
		return rc;
	atex_fmf_context_set_case_sensitive(*out, false);
	json_object_foreach(keys, key, value)
	{
		rc = atex_fmf_context_set_json(*out, key, value);
		if (rc < 0)
			return rc;
	}
	mine = given ? atex_fmf_context_to_json(given) : NULL;
	json_object_foreach(mine, key, value)
	{
		rc = atex_fmf_context_set_json(*out, key, value);
		if (rc < 0)
			break;
	}
	json_decref(mine);
	return rc;
}

static int plan_not_found(const atex_fmf_tree *tree, const char *plan,
			  const char *why)
{
	struct atex_buf names = ATEX_BUF_INIT;
	const atex_fmf_node *node = NULL;

	while ((node = atex_fmf_tree_next(tree, node)))
		if (atex_fmf_node_is_selected(node) &&
		    is_plan(atex_fmf_node_data(node)) &&
		    !json_is_false(json_object_get(atex_fmf_node_data(node),
						   "enabled")))
			atex_buf_printf(&names, "%s%s", names.len ? ", " : "",
					atex_fmf_node_name(node));
	atex_error_set(ATEX_ENOTFOUND, "%s: %s'%s'%s (plans here: %s)",
		       atex_fmf_tree_root(tree), why ? "" : "no plan ", plan,
		       why ? why : "", names.len ? names.ptr : "none");
	atex_buf_free(&names);
	return ATEX_ENOTFOUND;
}

/* A plan without `discover` tests what `execute: script` says: tmt makes
 * a shell discover phase of it with tests /script-00, /script-01... (the
 * execute step's duration, 1h by default). A plan with both is refused,
 * as tmt refuses it. */
static int execute_scripts(atex_fmf_discovery *d, json_t *phases)
{
	json_t *exec = json_object_get(d->plan, "execute"), *scripts, *phase,
	       *tests;
	const json_t *duration;
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_array(exec))
		exec = json_array_get(exec, 0);
	scripts = string_list(json_object_get(exec, "script"), "script",
			      d->plan_name);
	if (!scripts)
		return atex_error_last_code();
	if (!json_array_size(scripts)) {
		json_decref(scripts);
		return 0;
	}
	phase = json_array_get(phases, 0);
	json_object_foreach(phase, key, v)
	{
		if (strcmp(key, "name") && strcmp(key, "how")) {
			json_decref(scripts);
			return plan_error(d,
					  "use either 'discover' or 'execute' "
					  "to define tests, not both");
		}
	}
	if (strcmp(json_string_value(json_object_get(phase, "how")), "shell")) {
		json_decref(scripts);
		return plan_error(d,
				  "tests of 'execute: script' need a 'shell' "
				  "discover phase");
	}
	duration = json_object_get(exec, "duration");
	tests = json_array();
	json_array_foreach(scripts, i, v)
	{
		char name[32];

		snprintf(name, sizeof(name), "script-%02zu", i);
		json_array_append_new(
			tests,
			json_pack("{ss sO so}", "name", name, "test", v,
				  "duration",
				  duration ? json_incref((json_t *)duration)
					   : json_string("1h")));
	}
	json_decref(scripts);
	return json_object_set_new(phase, "tests", tests) < 0 ? atex_error_oom()
							      : 0;
}

/* tmt refuses a plan whose execute method it does not have. atex runs
 * only tmt's own (`how: tmt`): `upgrade` is refused too, except when only
 * listing tests, where it is a warning as prepare phases are. */
static int check_execute(const atex_fmf_discovery *d, bool strict)
{
	const json_t *value = json_object_get(d->plan, "execute");
	json_t *raw, *phase, *how;
	const char *method;
	size_t i;
	int rc = 0;

	if (json_is_null(value))
		return 0;
	raw = step_list(value, "execute", d->plan_name);
	if (!raw)
		return atex_error_last_code();
	json_array_foreach(raw, i, phase)
	{
		how = json_object_get(phase, "how");
		if (how && !json_is_null(how) && !json_is_string(how)) {
			rc = plan_error(d,
					"execute phase %zu: 'how' must be a "
					"string",
					i + 1);
			break;
		}
		method = tmt_method("execute", json_is_string(how)
						       ? json_string_value(how)
						       : "tmt");
		if (!in_list(tmt_execute, method)) {
			rc = plan_error(d,
					"execute phase %zu: unsupported method "
					"'how: %s' (tmt has 'tmt' and "
					"'upgrade')",
					i + 1, method);
			break;
		}
		if (!strcmp(method, "tmt"))
			continue;
		rc = plan_error(d,
				"execute phase %zu: unsupported method 'how: "
				"%s' (atex runs 'tmt')",
				i + 1, method);
		if (strict)
			break;
		atex_log(ATEX_LOG_WARNING, "fmf",
			 "%s (listing the tests anyway)", atex_error_last());
		rc = 0;
	}
	json_decref(raw);
	return rc;
}

/* The discover phases to run, in order; *total counts all of them. */
static int discover_phases(json_t **out, size_t *total, atex_fmf_discovery *d,
			   const atex_fmf_context *ctx)
{
	json_t *phases = NULL;
	int rc;

	if (json_is_null(json_object_get(d->plan, "discover")) ||
	    !json_object_get(d->plan, "discover")) {
		/* tmt's default: a bare shell phase, which lists nothing
		 * unless `execute` has scripts. */
		phases = json_pack("[{ss ss}]", "name", "default-0", "how",
				   "shell");
		*total = 1;
		rc = phases ? 0 : atex_error_oom();
	} else {
		rc = step_phases(&phases, total, d, "discover", ctx, true);
	}
	if (rc == 0 && json_array_size(phases))
		rc = execute_scripts(d, phases);
	*out = phases;
	return rc;
}

/* The tree the plan's tests come from. tmt adjusts the plan with the
 * caller's context only (spec/plans/context.fmf: the plan's `context` is
 * not seen by its own adjust rules), and the tests with the plan's
 * context under the caller's: when the plan's context adds a dimension,
 * the tests need a tree of their own, adjusted with it. */
static int tests_tree(const atex_fmf_tree **out, atex_fmf_discovery *d,
		      atex_fmf_tree *plan_tree, const atex_fmf_context *ctx,
		      const struct atex_fmf_discover_options *o)
{
	json_t *keys = json_object_get(d->plan, "context"), *value;
	atex_fmf_tree *other = NULL;
	const char *key;
	bool own = false;
	int rc;

	*out = plan_tree;
	json_object_foreach(keys, key, value) own =
		own || !o->context || !atex_fmf_context_has(o->context, key);
	if (!own)
		return 0;
	rc = load_adjusted(&other, atex_fmf_tree_root(plan_tree), ctx);
	if (rc == 0 && (rc = atex_vec_push(&d->trees, other)) < 0)
		atex_fmf_tree_free(other);
	if (rc == 0)
		*out = other;
	return rc;
}

static int discover_plan(atex_fmf_discovery *d, atex_fmf_tree *tree,
			 const struct atex_fmf_discover_options *o)
{
	const atex_fmf_node *node = atex_fmf_tree_find(tree, o->plan);
	const atex_fmf_tree *tests = tree;
	atex_fmf_context *ctx = NULL;
	json_t *phases = NULL, *phase;
	size_t i, total = 0;
	int rc;

	if (!node || !atex_fmf_node_is_selected(node))
		return plan_not_found(tree, o->plan, NULL);
	d->plan_file = atex_fmf_node_file(node);
	rc = plan_context(&ctx, NULL, o->context);
	if (rc == 0)
		rc = atex_fmf_tree_adjust(tree, ctx);
	atex_fmf_context_free(ctx);
	ctx = NULL;
	if (rc < 0)
		goto out;
	if (!is_plan(atex_fmf_node_data(node)) &&
	    json_object_get(atex_fmf_node_data(node), "plan")) {
		/* tmt's other kind of plan (Tree.plans prunes by `plan` too):
		 * one imported from another repository. */
		rc = plan_error(d, "imports its plan from another repository "
				   "('plan: import:'), which atex does not do");
		goto out;
	}
	if (!is_plan(atex_fmf_node_data(node))) {
		rc = plan_not_found(tree, o->plan,
				    " is not a plan: it has no 'execute' "
				    "(tmt's plans are the nodes with one)");
		goto out;
	}
	if (json_is_false(
		    json_object_get(atex_fmf_node_data(node), "enabled"))) {
		rc = plan_not_found(tree, o->plan,
				    " is disabled (enabled: false) in this "
				    "context");
		goto out;
	}
	d->plan = json_deep_copy(atex_fmf_node_data(node));
	if (!d->plan) {
		rc = atex_error_oom();
		goto out;
	}
	/* Everything below sees the plan's context under the caller's. */
	rc = plan_context(&ctx, d->plan, o->context);
	if (rc == 0)
		rc = tests_tree(&tests, d, tree, ctx, o);
	if (rc == 0)
		rc = plan_environment(&d->environment,
				      json_object_get(d->plan, "environment"),
				      d->plan_name);
	if (rc == 0)
		rc = plan_steps(&d->prepare, d, "prepare", ctx, !o->tests_only);
	if (rc == 0)
		rc = plan_steps(&d->finish, d, "finish", ctx, !o->tests_only);
	if (rc == 0)
		rc = check_execute(d, !o->tests_only);
	if (rc == 0)
		rc = discover_phases(&phases, &total, d, ctx);
	json_array_foreach(phases, i, phase)
	{
		if (rc < 0)
			break;
		rc = run_phase(d, tests, phase, total, ctx, o);
	}
out:
	json_decref(phases);
	atex_fmf_context_free(ctx);
	return rc;
}

/* Without a plan: every test of the tree, as `tmt tests ls` lists them
 * (sorted by `order`), without manual and disabled ones. */
static int discover_all(atex_fmf_discovery *d, atex_fmf_tree *tree,
			const struct atex_fmf_discover_options *o)
{
	struct selector s = {.prefix = "", .o = o};
	atex_fmf_context *ctx = NULL;
	int rc;

	rc = plan_context(&ctx, NULL, o->context);
	if (rc == 0)
		rc = atex_fmf_tree_adjust(tree, ctx);
	s.ctx = ctx;
	if (rc < 0) {
		atex_fmf_context_free(ctx);
		return rc;
	}
	d->plan = json_object();
	d->environment = json_object();
	d->prepare = json_array();
	d->finish = json_array();
	if (!d->plan || !d->environment || !d->prepare || !d->finish)
		rc = atex_error_oom();
	if (rc == 0)
		rc = selector_init(&s, d, NULL, false);
	s.root = atex_fmf_tree_root(tree);
	if (rc == 0)
		rc = select_fmf(d, tree, &s);
	selector_free(&s);
	atex_fmf_context_free(ctx);
	return rc;
}

int atex_fmf_discover(atex_fmf_discovery **out, const char *path,
		      const struct atex_fmf_discover_options *opts)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d;
	atex_fmf_tree *tree = NULL;
	int rc;

	if (!out || !path)
		return atex_error_set(ATEX_EINVAL, "discover: %s is NULL",
				      out ? "path" : "out");
	*out = NULL;
	if (opts && opts->version != 1 &&
	    opts->version != ATEX_FMF_DISCOVER_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "atex_fmf_discover: options version %u "
				      "is not 1 or %u",
				      opts->version,
				      ATEX_FMF_DISCOVER_OPTIONS_VERSION);
	/* A version 1 struct ends before the name selection. */
	if (opts)
		memcpy(&o, opts,
		       opts->version == 1
			       ? offsetof(struct atex_fmf_discover_options,
					  tests)
			       : sizeof(o));
	d = atex_calloc(1, sizeof(*d));
	if (!d)
		return ATEX_ENOMEM;
	rc = atex_fmf_tree_load_lean(&tree, path);
	if (rc < 0)
		goto fail;
	if (o.plan) {
		d->plan_name = atex_strdup(o.plan);
		rc = d->plan_name ? discover_plan(d, tree, &o) : ATEX_ENOMEM;
	} else {
		rc = discover_all(d, tree, &o);
	}
	if (rc < 0)
		goto fail;
	rc = atex_vec_push(&d->trees, tree);
	if (rc < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	atex_fmf_tree_free(tree);
	atex_fmf_discovery_free(d);
	return rc;
}
/* ------------------------------------------------------------------------
 * Access.
 */

const char *atex_fmf_discovery_plan_name(const atex_fmf_discovery *d)
{
	return d->plan_name;
}

const char *atex_fmf_discovery_root(const atex_fmf_discovery *d)
{
	/* The plan's tree went in last (see atex_fmf_discover). */
	return d->trees.len
		       ? atex_fmf_tree_root(d->trees.items[d->trees.len - 1])
		       : NULL;
}

json_t *atex_fmf_discovery_plan(const atex_fmf_discovery *d)
{
	return d->plan;
}

json_t *atex_fmf_discovery_environment(const atex_fmf_discovery *d)
{
	return d->environment;
}

json_t *atex_fmf_discovery_prepare(const atex_fmf_discovery *d)
{
	return d->prepare;
}

json_t *atex_fmf_discovery_finish(const atex_fmf_discovery *d)
{
	return d->finish;
}

size_t atex_fmf_discovery_count(const atex_fmf_discovery *d)
{
	return d->tests.len;
}

static const struct test *test_at(const atex_fmf_discovery *d, size_t i)
{
	return i < d->tests.len ? d->tests.items[i] : NULL;
}

long atex_fmf_discovery_find(const atex_fmf_discovery *d, const char *name)
{
	for (size_t i = 0; i < d->tests.len; i++)
		if (!strcmp(test_at(d, i)->name, name))
			return (long)i;
	return -1;
}

const char *atex_fmf_discovery_test_name(const atex_fmf_discovery *d, size_t i)
{
	const struct test *t = test_at(d, i);

	return t ? t->name : NULL;
}

json_t *atex_fmf_discovery_test_data(atex_fmf_discovery *d, size_t i)
{
	struct test *t = i < d->tests.len ? d->tests.items[i] : NULL;
	json_t *copy;

	if (!t)
		return NULL;
	if (!t->private) {
		copy = json_deep_copy(t->data);
		if (!copy) {
			atex_error_oom();
			return NULL;
		}
		json_decref(t->data);
		t->data = copy;
		t->private = true;
	}
	return t->data;
}

const char *atex_fmf_discovery_test_root(const atex_fmf_discovery *d, size_t i)
{
	const struct test *t = test_at(d, i);

	return t ? t->root : NULL;
}

const char *atex_fmf_discovery_test_dir(const atex_fmf_discovery *d, size_t i)
{
	const struct test *t = test_at(d, i);

	return t ? t->dir : NULL;
}

int atex_fmf_discovery_remove(atex_fmf_discovery *d, size_t i)
{
	if (i >= d->tests.len)
		return atex_error_set(ATEX_EINVAL,
				      "test index %zu out of range (%zu tests)",
				      i, d->tests.len);
	test_free(d->tests.items[i]);
	memmove(&d->tests.items[i], &d->tests.items[i + 1],
		(d->tests.len - i - 1) * sizeof(*d->tests.items));
	d->tests.len--;
	return 0;
}

json_t *atex_fmf_discovery_to_json(const atex_fmf_discovery *d)
{
	json_t *tests = json_array(), *all;

	if (!tests)
		return NULL;
	for (size_t i = 0; i < d->tests.len; i++) {
		const struct test *t = test_at(d, i);

		if (json_array_append_new(
			    tests, json_pack("{ss ss ss sO}", "name", t->name,
					     "root", t->root, "dir", t->dir,
					     "data", t->data)) < 0) {
			json_decref(tests);
			return NULL;
		}
	}
	all = json_pack("{s s? sO sO sO sO so}", "plan", d->plan_name,
			"plan_data", d->plan, "environment", d->environment,
			"prepare", d->prepare, "finish", d->finish, "tests",
			tests);
	if (!all)
		atex_error_oom();
	return all;
}
