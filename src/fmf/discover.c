/*
 * discover.c - from an fmf tree and a tmt plan to the ordered list of tests
 * to run, with the plan's environment, prepare and finish steps: the part
 * of tmt atex needs, read the way tmt reads it.
 *
 * A plan is a node with an `execute` or `discover` key. Its `context` key is
 * merged under the caller's context before anything is adjusted (so the
 * plan's own adjust rules see it too). Each `discover` section (how: fmf)
 * selects tests from the plan's tree, from `path` inside it, or from a git
 * repository (`url`, `ref`) cloned into a cache directory: tests are nodes
 * with a `test` key, minus `manual: true`, `enabled: false` and stories,
 * then narrowed by `test` (name regexes, whose order is kept), `filter` and
 * `exclude`. With several sections, each test name is prefixed with
 * "/<section name>", as tmt prefixes phase names.
 *
 * Test data shares values with other tests (inherited keys are the same
 * values); a test's data is deep-copied the first time a caller asks for it,
 * so a program may change anything in it without touching another test's
 * data, and a run that never looks pays neither the time nor the memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
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
	char *own_dir;    /* from the test's `path` key */
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
	json_array_foreach(value, i, item)
		if (!json_is_string(item))
			goto bad;
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

	if (!value)
		return json_array();
	if (json_is_object(value))
		return json_pack("[O]", value);
	if (json_is_array(value)) {
		json_array_foreach(value, i, item)
			if (!json_is_object(item))
				goto bad;
		return json_copy((json_t *)value);
	}
bad:
	atex_error_set(ATEX_EFORMAT,
		       "plan %s: '%s' must be a mapping or a list of mappings",
		       plan, step);
	return NULL;
}

/* tmt accepts `environment` as a dict or as a list of "NAME=VALUE". */
static int plan_environment(json_t **out, const json_t *value,
			    const char *plan)
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
		json_object_foreach((json_t *)value, key, item) {
			char *text = json_is_string(item)
					     ? atex_strdup(json_string_value(item))
					     : atex_py_str(item);

			if (!text || json_object_set_new(env, key,
							 json_string(text)) < 0) {
				free(text);
				return atex_error_oom();
			}
			free(text);
		}
		return 0;
	}
	if (!json_is_array(value))
		goto bad;
	json_array_foreach(value, i, item) {
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

/* Normalises prepare/finish steps to {"how", "package"|"script": [...]}. */
static int plan_steps(json_t **out, const json_t *value, const char *step,
		      bool allow_install, const char *plan)
{
	json_t *steps = step_list(value, step, plan), *result = NULL, *item;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (!steps)
		return atex_error_last_code();
	result = json_array();
	if (!result) {
		rc = atex_error_oom();
		goto out;
	}
	json_array_foreach(steps, i, item) {
		const char *how = json_string_value(json_object_get(item, "how"));
		const char *key = NULL;
		json_t *list, *norm;

		if (how && !strcmp(how, "shell"))
			key = "script";
		else if (how && !strcmp(how, "install") && allow_install)
			key = "package";
		if (!key) {
			rc = atex_error_set(ATEX_EFORMAT,
					    "plan %s: %s step %zu: unsupported "
					    "method 'how: %s' (atex runs %s)",
					    plan, step, i + 1, how ? how : "?",
					    allow_install ? "'install' and "
							    "'shell'"
							  : "'shell'");
			goto out;
		}
		list = string_list(json_object_get(item, key), key, plan);
		if (!list) {
			rc = atex_error_last_code();
			goto out;
		}
		norm = json_copy(item);
		if (!norm || json_object_set_new(norm, key, list) < 0 ||
		    json_array_append_new(result, norm) < 0) {
			rc = atex_error_oom();
			goto out;
		}
	}
	*out = json_incref(result);
out:
	json_decref(result);
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
	return atex_sprintf("%s/.cache/atex/git", home && *home ? home : "/tmp");
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
		char *fetch[] = {"git", "-C", dir, "fetch", "--quiet",
				 "--tags", "--force", "origin", NULL};

		rc = run_git(fetch, url);
	} else {
		char *clone[] = {"git", "clone", "--quiet", (char *)url, dir,
				 NULL};

		rc = run_git(clone, url);
	}
	if (rc == 0) {
		char *target = ref ? atex_strdup(ref) : atex_strdup("origin/HEAD");
		char *checkout[] = {"git", "-C", dir, "checkout", "--quiet",
				    "--force", "--detach", target, NULL};

		/* A branch name means the remote's branch, not a stale
		 * local one. */
		if (target && ref) {
			char *remote = atex_sprintf("origin/%s", ref);
			char *probe[] = {"git", "-C", dir, "rev-parse", "--quiet",
					 "--verify", remote, NULL};

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

static bool is_test(const json_t *data)
{
	json_t *v;

	if (!json_object_get(data, "test") || json_object_get(data, "story"))
		return false;
	v = json_object_get(data, "manual");
	if (v && json_is_true(v))
		return false;
	v = json_object_get(data, "enabled");
	return !(v && json_is_false(v));
}

static bool is_plan(const json_t *data)
{
	return json_object_get(data, "execute") ||
	       json_object_get(data, "discover");
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
static int bad_key(const atex_fmf_node *node, const char *key, const char *what,
		   const json_t *value)
{
	const char *file = atex_fmf_node_file(node);

	return atex_error_set(
		ATEX_EFORMAT, "%s%stest %s: '%s' %s%s%s%s", file ? file : "",
		file ? ": " : "", atex_fmf_node_name(node), key, what,
		value ? " (it is " : "", value ? atex_py_type(value) : "",
		value ? ")" : "");
}

/* The keys atex itself reads, checked once here: a wrong type would
 * otherwise surface only on a system, after one was provisioned for it,
 * or not at all (a list where a mapping belongs is silently ignored). */
static int check_test(const atex_fmf_tree *tree, const atex_fmf_node *node)
{
	json_t *data = atex_fmf_node_data(node), *v;
	const char *key;
	double seconds;
	struct stat sb;
	char *dir;
	int rc;

	v = json_object_get(data, "test");
	if (!json_is_string(v))
		return bad_key(node, "test", "must be a shell command string",
			       v);
	if (!json_string_value(v)[strspn(json_string_value(v), " \t\n")])
		return bad_key(node, "test", "is empty", NULL);
	v = json_object_get(data, "duration");
	if (v && !json_is_string(v) && !json_is_integer(v))
		return bad_key(node, "duration",
			       "must be a duration such as "
			       "'5m' or '1h 30m'",
			       v);
	/* A sum of zero ("*2", "0") is tmt's default, 5m, multiplied: only
	 * the syntax can be wrong. */
	if (json_is_string(v) &&
	    atex_duration_parse(&seconds, json_string_value(v)) < 0)
		return bad_key(node, "duration",
			       "must be a duration such as '5m', '1h 30m' or "
			       "'*2'",
			       NULL);
	if (json_is_integer(v) && json_integer_value(v) < 0)
		return bad_key(node, "duration", "must not be negative", v);
	v = json_object_get(data, "tty");
	if (v && !json_is_boolean(v))
		return bad_key(node, "tty", "must be true or false", v);
	v = json_object_get(data, "environment");
	if (v && !json_is_object(v))
		return bad_key(node, "environment",
			       "must be a mapping of "
			       "variable names to values",
			       v);
	json_object_foreach(v, key, data)
	{
		if (json_is_object(data) || json_is_array(data) ||
		    json_is_null(data))
			return bad_key(node, "environment",
				       "values must be "
				       "strings, numbers or booleans",
				       data);
	}
	v = json_object_get(atex_fmf_node_data(node), "path");
	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad_key(node, "path", "must be a directory of the tree",
			       v);
	dir = atex_sprintf("%s/%s", atex_fmf_tree_root(tree),
			   json_string_value(v));
	if (!dir)
		return ATEX_ENOMEM;
	rc = stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)
		     ? 0
		     : atex_error_set(ATEX_EFORMAT,
				      "%s%stest %s: 'path' %s: no such "
				      "directory in the tree",
				      atex_fmf_node_file(node)
					      ? atex_fmf_node_file(node)
					      : "",
				      atex_fmf_node_file(node) ? ": " : "",
				      atex_fmf_node_name(node),
				      json_string_value(v));
	free(dir);
	return rc;
}

static int add_test(atex_fmf_discovery *d, const char *prefix,
		    const atex_fmf_tree *tree, const atex_fmf_node *node)
{
	json_t *data = atex_fmf_node_data(node);
	const char *path = json_string_value(json_object_get(data, "path"));
	struct test *t;
	int rc = check_test(tree, node);

	if (rc < 0)
		return rc;
	t = atex_calloc(1, sizeof(*t));
	if (!t)
		return ATEX_ENOMEM;
	t->name = atex_fmf_node_name(node);
	if (prefix[0])
		t->name = t->own_name = concat(prefix, t->name);
	/* A name is a path below the results directory: never "..". */
	rc = atex_fmf_check_test_name(node, atex_fmf_node_name(node));
	if (rc == 0 && prefix[0] && t->name &&
	    (rc = atex_fmf_check_test_name(NULL, t->name)) < 0)
		atex_error_prefix("plan %s: discover phase '%s'", d->plan_name,
				  prefix + 1);
	if (rc < 0) {
		test_free(t);
		return rc;
	}
	t->root = atex_fmf_tree_root(tree);
	t->dir = atex_fmf_node_dir(node);
	/* tmt lets a test say where it runs with `path` (from the root). */
	if (path) {
		path += strspn(path, "/");
		t->dir = t->own_dir = atex_strdup(*path ? path : ".");
	}
	t->data = json_incref(data);
	if (!t->name || !t->root || !t->dir || !t->data ||
	    atex_vec_push(&d->tests, t) < 0) {
		test_free(t);
		return atex_error_oom();
	}
	return 0;
}

/* Whether `name` matches any regex in `list` (re.search). */
static int name_matches(const json_t *list, const char *name)
{
	json_t *item;
	size_t i;
	int rc;

	json_array_foreach(list, i, item) {
		rc = atex_pyre_search_str(json_string_value(item), name);
		if (rc != 0)
			return rc;
	}
	return 0;
}

struct section {
	const char *prefix;   /* "" or "/name" */
	json_t *tests;        /* `test`: name regexes, in order */
	json_t *exclude;      /* `exclude`: name regexes */
	json_t *filters;      /* `filter` plus the caller's */
};

/* The selected test nodes of `tree` that pass every filter, in tree
 * order. */
static int candidates(struct atex_vec *out, const atex_fmf_tree *tree,
		      const json_t *filters)
{
	size_t n = json_array_size(filters), i;
	atex_fmf_filter **compiled = atex_calloc(n + 1, sizeof(*compiled));
	const atex_fmf_node *node = NULL;
	int rc = 0;

	if (!compiled)
		return ATEX_ENOMEM;
	for (i = 0; i < n && rc == 0; i++)
		rc = atex_fmf_filter_new(
			&compiled[i], json_string_value(json_array_get(filters, i)));
	while (rc == 0 && (node = atex_fmf_tree_next(tree, node))) {
		json_t *data = atex_fmf_node_data(node);
		int keep = atex_fmf_node_is_selected(node) && is_test(data);

		for (i = 0; i < n && keep > 0; i++)
			keep = atex_fmf_filter_match(compiled[i], data,
						     atex_fmf_node_name(node));
		if (keep < 0)
			rc = keep;
		else if (keep)
			rc = atex_vec_push(out, (void *)node);
	}
	for (i = 0; i < n; i++)
		atex_fmf_filter_free(compiled[i]);
	free(compiled);
	return rc;
}

/* Adds the tests of `tree` a section selects: in tree order, or with a
 * `test` list, one pass per listed name so the plan's order is kept
 * (a test matched twice is taken once). */
static int select_tests(atex_fmf_discovery *d, const atex_fmf_tree *tree,
			const struct section *s)
{
	struct atex_vec nodes = ATEX_VEC_INIT;
	size_t passes = json_array_size(s->tests), i, j;
	bool *taken = NULL;
	int rc;

	rc = candidates(&nodes, tree, s->filters);
	if (rc == 0 && !(taken = atex_calloc(nodes.len + 1, sizeof(*taken))))
		rc = ATEX_ENOMEM;
	for (i = 0; rc == 0 && i < (passes ? passes : 1); i++) {
		const char *one = json_string_value(json_array_get(s->tests, i));

		for (j = 0; rc == 0 && j < nodes.len; j++) {
			const char *name = atex_fmf_node_name(nodes.items[j]);

			if (taken[j])
				continue;
			if (one && (rc = atex_pyre_search_str(one, name)) <= 0)
				continue;
			taken[j] = true;
			rc = name_matches(s->exclude, name);
			if (rc == 0)
				rc = add_test(d, s->prefix, tree, nodes.items[j]);
			else if (rc > 0)
				rc = 0;
		}
	}
	free(taken);
	atex_vec_free(&nodes);
	return rc;
}

static int add_filters(json_t *list, const struct atex_fmf_discover_options *o)
{
	for (size_t i = 0; i < o->n_filters; i++)
		if (json_array_append_new(list, json_string(o->filters[i])) < 0)
			return atex_error_oom();
	return 0;
}

/* Loads and adjusts a tree for a section whose tests live elsewhere. */
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

static int run_section(atex_fmf_discovery *d, const atex_fmf_tree *plan_tree,
		       const json_t *section, size_t index, size_t count,
		       const atex_fmf_context *ctx,
		       const struct atex_fmf_discover_options *o)
{
	const char *how = json_string_value(json_object_get(section, "how"));
	const char *name = json_string_value(json_object_get(section, "name"));
	const char *url = json_string_value(json_object_get(section, "url"));
	const char *ref = json_string_value(json_object_get(section, "ref"));
	const char *path = json_string_value(json_object_get(section, "path"));
	struct section s = {0};
	atex_fmf_tree *other = NULL;
	char *repo = NULL, *where = NULL, *prefix = NULL;
	int rc = 0;

	if (how && strcmp(how, "fmf"))
		return atex_error_set(ATEX_EFORMAT,
				      "plan %s: discover method 'how: %s' is "
				      "not supported (atex reads 'fmf')",
				      d->plan_name, how);
	if (count > 1)
		prefix = name ? atex_sprintf("/%s", name)
			      : atex_sprintf("/default-%zu", index);
	else
		prefix = atex_strdup("");
	s.prefix = prefix;
	s.tests = string_list(json_object_get(section, "test"), "test",
			      d->plan_name);
	s.exclude = string_list(json_object_get(section, "exclude"), "exclude",
				d->plan_name);
	s.filters = string_list(json_object_get(section, "filter"), "filter",
				d->plan_name);
	if (!prefix || !s.tests || !s.exclude || !s.filters) {
		rc = prefix ? atex_error_last_code() : ATEX_ENOMEM;
		goto out;
	}
	rc = add_filters(s.filters, o);
	if (rc < 0)
		goto out;
	if (url) {
		rc = fetch_repo(&repo, url, ref, o->cache_dir);
		if (rc < 0)
			goto out;
		where = atex_path_join(repo, path ? path + strspn(path, "/")
						  : ".");
	} else if (path) {
		where = atex_path_join(atex_fmf_tree_root(plan_tree), path);
	}
	if ((url || path) && !where) {
		rc = ATEX_ENOMEM;
		goto out;
	}
	if (where && (rc = load_adjusted(&other, where, ctx)) < 0)
		goto out;
	/* Tests point into their tree: the discovery owns it from now on. */
	if (other && (rc = atex_vec_push(&d->trees, other)) < 0)
		goto out;
	rc = select_tests(d, other ? other : plan_tree, &s);
	other = NULL;
out:
	atex_fmf_tree_free(other);
	json_decref(s.tests);
	json_decref(s.exclude);
	json_decref(s.filters);
	free(prefix);
	free(repo);
	free(where);
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
	json_object_foreach(keys, key, value) {
		rc = atex_fmf_context_set_json(*out, key, value);
		if (rc < 0)
			return rc;
	}
	mine = given ? atex_fmf_context_to_json(given) : NULL;
	json_object_foreach(mine, key, value) {
		rc = atex_fmf_context_set_json(*out, key, value);
		if (rc < 0)
			break;
	}
	json_decref(mine);
	return rc;
}

static int plan_not_found(const atex_fmf_tree *tree, const char *plan)
{
	struct atex_buf names = ATEX_BUF_INIT;
	const atex_fmf_node *node = NULL;

	while ((node = atex_fmf_tree_next(tree, node)))
		if (atex_fmf_node_is_selected(node) &&
		    is_plan(atex_fmf_node_data(node)))
			atex_buf_printf(&names, "%s%s", names.len ? ", " : "",
					atex_fmf_node_name(node));
	atex_error_set(ATEX_ENOTFOUND, "%s: no plan '%s' (plans here: %s)",
		       atex_fmf_tree_root(tree), plan,
		       names.len ? names.ptr : "none");
	atex_buf_free(&names);
	return ATEX_ENOTFOUND;
}

/* Several discover phases prefix their tests with their names: two with
 * one name would give two tests one name, and their results would land
 * on each other. tmt refuses such a plan too. */
static int unique_phase_names(const json_t *sections, const char *plan)
{
	size_t n = json_array_size(sections);

	for (size_t i = 0; n > 1 && i < n; i++) {
		const char *a = json_string_value(
			json_object_get(json_array_get(sections, i), "name"));

		for (size_t j = i + 1; a && j < n; j++) {
			const char *b = json_string_value(json_object_get(
				json_array_get(sections, j), "name"));

			if (b && !strcmp(a, b))
				return atex_error_set(
					ATEX_EFORMAT,
					"plan %s: discover phases %zu and %zu "
					"are both named '%s' (their tests "
					"would have the same names)",
					plan, i + 1, j + 1, a);
		}
	}
	return 0;
}

static int discover_plan(atex_fmf_discovery *d, atex_fmf_tree *tree,
			 const struct atex_fmf_discover_options *o)
{
	const atex_fmf_node *node = atex_fmf_tree_find(tree, o->plan);
	atex_fmf_context *ctx = NULL;
	json_t *sections = NULL, *section;
	size_t i;
	int rc;

	if (!node || !is_plan(atex_fmf_node_data(node)))
		return plan_not_found(tree, o->plan);
	/* The plan's context must be known before anything is adjusted. */
	rc = plan_context(&ctx, atex_fmf_node_data(node), o->context);
	if (rc < 0)
		goto out;
	rc = atex_fmf_tree_adjust(tree, ctx);
	if (rc < 0)
		goto out;
	d->plan = json_deep_copy(atex_fmf_node_data(node));
	if (!d->plan) {
		rc = atex_error_oom();
		goto out;
	}
	rc = plan_environment(&d->environment,
			      json_object_get(d->plan, "environment"),
			      d->plan_name);
	if (rc == 0)
		rc = plan_steps(&d->prepare, json_object_get(d->plan, "prepare"),
				"prepare", true, d->plan_name);
	if (rc == 0)
		rc = plan_steps(&d->finish, json_object_get(d->plan, "finish"),
				"finish", false, d->plan_name);
	if (rc < 0)
		goto out;
	sections = step_list(json_object_get(d->plan, "discover"), "discover",
			     d->plan_name);
	if (!sections) {
		rc = atex_error_last_code();
		goto out;
	}
	if (json_array_size(sections) == 0) {
		/* tmt's default: every test of the plan's tree. */
		json_array_append_new(sections, json_pack("{ss}", "how", "fmf"));
	}
	rc = unique_phase_names(sections, d->plan_name);
	json_array_foreach(sections, i, section) {
		if (rc < 0)
			break;
		rc = run_section(d, tree, section, i, json_array_size(sections),
				 ctx, o);
		if (rc < 0)
			break;
	}
out:
	json_decref(sections);
	atex_fmf_context_free(ctx);
	return rc;
}

static int discover_all(atex_fmf_discovery *d, atex_fmf_tree *tree,
			const struct atex_fmf_discover_options *o)
{
	struct section s = {.prefix = ""};
	atex_fmf_context *ctx = NULL;
	int rc;

	rc = plan_context(&ctx, NULL, o->context);
	if (rc == 0)
		rc = atex_fmf_tree_adjust(tree, ctx);
	atex_fmf_context_free(ctx);
	if (rc < 0)
		return rc;
	d->plan = json_object();
	d->environment = json_object();
	d->prepare = json_array();
	d->finish = json_array();
	s.tests = json_array();
	s.exclude = json_array();
	s.filters = json_array();
	if (!d->plan || !d->environment || !d->prepare || !d->finish ||
	    !s.tests || !s.exclude || !s.filters)
		rc = atex_error_oom();
	if (rc == 0)
		rc = add_filters(s.filters, o);
	if (rc == 0)
		rc = select_tests(d, tree, &s);
	json_decref(s.tests);
	json_decref(s.exclude);
	json_decref(s.filters);
	return rc;
}

int atex_fmf_discover(atex_fmf_discovery **out, const char *path,
		      const struct atex_fmf_discover_options *opts)
{
	struct atex_fmf_discover_options defaults =
		ATEX_FMF_DISCOVER_OPTIONS_INIT;
	atex_fmf_discovery *d;
	atex_fmf_tree *tree = NULL;
	int rc;

	if (!out || !path)
		return atex_error_set(ATEX_EINVAL, "discover: %s is NULL",
				      out ? "path" : "out");
	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->version != ATEX_FMF_DISCOVER_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "atex_fmf_discover: options version %u "
				      "is not %u",
				      opts->version,
				      ATEX_FMF_DISCOVER_OPTIONS_VERSION);
	d = atex_calloc(1, sizeof(*d));
	if (!d)
		return ATEX_ENOMEM;
	rc = atex_fmf_tree_load_lean(&tree, path);
	if (rc < 0)
		goto fail;
	if (opts->plan) {
		d->plan_name = atex_strdup(opts->plan);
		rc = d->plan_name ? discover_plan(d, tree, opts) : ATEX_ENOMEM;
	} else {
		rc = discover_all(d, tree, opts);
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
	return d->trees.len ? atex_fmf_tree_root(
				      d->trees.items[d->trees.len - 1])
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

		if (json_array_append_new(tests,
					  json_pack("{ss ss ss sO}", "name",
						    t->name, "root", t->root,
						    "dir", t->dir, "data",
						    t->data)) < 0) {
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
