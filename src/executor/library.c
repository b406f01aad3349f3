/*
 * library.c - fmf (BeakerLib) libraries: `require`/`recommend` entries
 * `library(REPO/LIB)` or {url, ref, path, name, nick, type: library}.
 *
 * They are resolved once per stage (a stage is shared by every executor
 * of a pool), as tmt resolves them at discovery: a `url` is cloned with
 * git (`library(REPO/LIB)` means https://github.com/beakerlib/REPO), a
 * `path` is a local directory, a lone `nick` is the test's own tree. The
 * library directory (fmf node NAME under the repository root) is staged
 * as libs/REPO/NAME, which is where BeakerLib's rlImport REPO/NAME looks
 * under $BEAKERLIB_LIBRARY_PATH (setup.c exports it) and, as under tmt,
 * upwards from the test's directory. The library's own require/recommend
 * are resolved the same way and their packages added to the test's.
 * A REPO/NAME staged once stays: a later entry for it with another url,
 * ref or path reuses the first (tmt does the same), with a warning.
 *
 * Clones go into a cache directory: $ATEX_LIBRARY_CACHE when set (kept,
 * and shared by processes), else a temporary one removed once staged.
 * One clone per url and ref, made under an flock on KEY.lock so that
 * parallel stagings wait for one another instead of racing, and marked
 * done (KEY.done) only when complete: a clone is never changed after.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/fmf_private.h"
#include "executor/library.h"
#include "executor/stage.h"
#include "util/process.h"

#define LIB_DEFAULT_URL "https://github.com/beakerlib/"
/* Libraries requiring libraries: deeper than this is a loop we missed. */
#define LIB_DEPTH_MAX 32
#define LIB_GIT_MS    (10 * 60 * 1000)

struct lib_ctx {
	atex_fmf_discovery *d;
	size_t test;	   /* index of the test being resolved */
	const char *cache; /* clones */
	const char *libs;  /* stage/libs */
	json_t *done;	   /* "REPO/NAME" -> {"from", "require", "recommend"} */
	char *error;	   /* the test's first error */
	/* The libraries being resolved, outermost first (for messages). */
	const char *chain[LIB_DEPTH_MAX + 1];
};

/* One library entry, parsed. */
struct lib_id {
	char *url, *ref, *path, *name, *repo;
	char *from; /* url#ref or path: what it was fetched from */
};

static void lib_id_free(struct lib_id *id)
{
	free(id->url);
	free(id->ref);
	free(id->path);
	free(id->name);
	free(id->repo);
	free(id->from);
}

bool fmf_library_entry(const json_t *entry)
{
	const char *s = json_string_value(entry);

	return json_is_object(entry) || (s && !strncmp(s, "library(", 8));
}

/* Records the test's first error (later ones follow from it). */
static int lib_fail(struct lib_ctx *c, const char *fmt, ...) ATEX_PRINTF(2, 3);
static int lib_fail(struct lib_ctx *c, const char *fmt, ...)
{
	struct atex_buf b = ATEX_BUF_INIT;
	va_list ap;

	if (c->error)
		return -1;
	atex_buf_printf(&b,
			"%s: ", atex_fmf_discovery_test_name(c->d, c->test));
	va_start(ap, fmt);
	{
		char *msg = NULL;

		if (vasprintf(&msg, fmt, ap) >= 0)
			atex_buf_puts(&b, msg);
		free(msg);
	}
	va_end(ap);
	c->error = atex_buf_detach(&b);
	return -1;
}

/* The repository name of a url: its last component without ".git". */
static char *repo_of_url(const char *url)
{
	size_t n = strlen(url);
	const char *start;

	while (n && url[n - 1] == '/')
		n--;
	if (n > 4 && !strncmp(url + n - 4, ".git", 4))
		n -= 4;
	start = url + n;
	while (start > url && start[-1] != '/')
		start--;
	if (start == url + n)
		return NULL;
	return atex_sprintf("%.*s", (int)(url + n - start), start);
}

/* A nick, repo or name must not climb out of libs/ nor be empty. */
static bool safe_part(const char *s, bool slashes)
{
	if (!*s || !strcmp(s, ".") || strstr(s, ".."))
		return false;
	return slashes || !strchr(s, '/');
}

/* "library(REPO/NAME)": REPO has no '/', NAME (kept with its leading
 * '/') no ')'. */
static int parse_simple(struct lib_ctx *c, struct lib_id *id, const char *s)
{
	static const char prefix[] = "library(";
	size_t len = strlen(s), plen = sizeof(prefix) - 1;
	const char *inner = NULL, *slash = NULL;
	size_t inner_len = 0;

	if (len > plen && !strncmp(s, prefix, plen) && s[len - 1] == ')') {
		inner = s + plen;
		inner_len = len - plen - 1;
		slash = memchr(inner, '/', inner_len);
	}
	if (!slash || slash == inner || slash + 1 == inner + inner_len ||
	    memchr(slash, ')', (size_t)(inner + inner_len - slash)))
		return lib_fail(c,
				"'%s': not a library (expected "
				"library(REPO/LIB))",
				s);
	id->repo = atex_sprintf("%.*s", (int)(slash - inner), inner);
	id->name =
		atex_sprintf("%.*s", (int)(inner + inner_len - slash), slash);
	if (id->repo && !safe_part(id->repo, false))
		return lib_fail(c, "'%s': bad library name (repository '%s')",
				s, id->repo);
	id->url =
		id->repo ? atex_sprintf(LIB_DEFAULT_URL "%s", id->repo) : NULL;
	return id->url && id->name ? 0 : ATEX_ENOMEM;
}

/* A string key of an entry, copied, or NULL. */
static char *key_copy(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? atex_strdup(s) : NULL;
}

static const char *const lib_keys[] = {"type", "url",  "ref", "path",
				       "name", "nick", NULL};

/* 1: a library to fetch, 0: nothing to do (type: file), -1: bad. */
static int parse_object(struct lib_ctx *c, struct lib_id *id, json_t *obj,
			const char *what)
{
	const char *type = json_string_value(json_object_get(obj, "type"));
	const char *key, *nick;
	json_t *value;

	/* tmt copies the files; atex uploads the whole tree anyway. */
	if (type && !strcmp(type, "file"))
		return 0;
	if (type && strcmp(type, "library"))
		return lib_fail(c, "%s: unknown type '%s' (library or file)",
				what, type);
	json_object_foreach(obj, key, value)
	{
		size_t k = 0;

		while (lib_keys[k] && strcmp(lib_keys[k], key))
			k++;
		if (!lib_keys[k])
			return lib_fail(c, "%s: unknown key '%s'", what, key);
		if (!json_is_string(value))
			return lib_fail(c, "%s: '%s' is not a string", what,
					key);
	}
	id->url = key_copy(obj, "url");
	id->ref = key_copy(obj, "ref");
	id->path = key_copy(obj, "path");
	id->name = key_copy(obj, "name");
	nick = json_string_value(json_object_get(obj, "nick"));
	if (!id->name)
		id->name = atex_strdup("/");
	if (id->name && id->name[0] != '/')
		return lib_fail(c, "%s: name '%s' does not start with '/'",
				what, id->name);
	if (!id->url && !id->path && !nick)
		return lib_fail(c, "%s: needs 'url', 'path' or 'nick'", what);
	if (!id->url && id->ref)
		return lib_fail(c, "%s: 'ref' needs 'url'", what);
	if (id->ref && id->ref[0] == '-')
		return lib_fail(c, "%s: bad ref '%s'", what, id->ref);
	if (nick && !safe_part(nick, false))
		return lib_fail(c, "%s: bad nick '%s' (one name, no '..')",
				what, nick);
	if (nick)
		id->repo = atex_strdup(nick);
	else if (id->url)
		id->repo = repo_of_url(id->url);
	else
		id->repo = atex_strdup(atex_path_basename(id->path));
	if (!id->repo || !safe_part(id->repo, false))
		return lib_fail(c,
				"%s: cannot tell the repository name "
				"(set 'nick')",
				what);
	/* No url, no path: the test's own tree (tmt 1.65). */
	if (!id->url && !id->path)
		id->path = atex_strdup(
			atex_fmf_discovery_test_root(c->d, c->test));
	return 1;
}

/* 64-bit FNV-1a of the url and ref, naming the clone. */
static unsigned long long clone_hash(const char *url, const char *ref)
{
	unsigned long long h = 1469598103934665603ULL;

	for (const char *p = url; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '#') * 1099511628211ULL;
	for (const char *p = ref ? ref : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

/* Runs git; a failure says what git said. */
static int run_git(struct lib_ctx *c, const struct lib_id *id,
		   const char *const *argv)
{
	static const char *const env[] = {"GIT_TERMINAL_PROMPT=0",
					  "GIT_ASKPASS=echo", NULL};
	struct atex_buf err = ATEX_BUF_INIT;
	atex_process *p = NULL;
	int status = -1, rc;

	rc = atex_process_spawn(&p, argv, NULL, env, ATEX_STDIO_NULL,
				ATEX_STDIO_NULL, ATEX_STDIO_PIPE);
	if (!rc)
		rc = atex_process_communicate(&status, p, NULL, 0, NULL, &err,
					      LIB_GIT_MS, NULL);
	atex_process_free(p);
	if (!rc && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		atex_buf_free(&err);
		return 0;
	}
	while (err.len && (err.ptr[err.len - 1] == '\n'))
		err.ptr[--err.len] = '\0';
	lib_fail(c, "library '%s%s' (%s): git %s failed: %s", id->repo,
		 id->name, id->from, argv[1][0] == '-' ? argv[3] : argv[1],
		 rc	   ? atex_error_last()
		 : err.len ? atex_buf_cstr(&err)
			   : "no message");
	atex_buf_free(&err);
	return -1;
}

/* Whether a clone marked done is still there: a git work tree. */
static bool clone_intact(const char *dir)
{
	char *git = atex_path_join(dir, ".git");
	bool ok = git && atex_path_exists(git);

	free(git);
	return ok;
}

/* Clones url at ref into the cache (once: under a lock, marked done)
 * and sets *root to the clone. */
static int fetch_clone(struct lib_ctx *c, const struct lib_id *id, char **root)
{
	unsigned long long h = clone_hash(id->url, id->ref);
	char *dir = atex_sprintf("%s/%s-%016llx", c->cache, id->repo, h);
	char *lock = dir ? atex_sprintf("%s.lock", dir) : NULL;
	char *done = dir ? atex_sprintf("%s.done", dir) : NULL;
	int fd = -1, rc = done ? 0 : ATEX_ENOMEM;

	if (!rc) {
		fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || flock(fd, LOCK_EX) < 0)
			rc = atex_error_set(ATEX_EIO, "cannot lock %s: %s",
					    lock, strerror(errno));
	}
	if (!rc && atex_path_exists(done) && !clone_intact(dir)) {
		/* A cache someone pruned by hand: fetched again. */
		atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
			 "library '%s%s' (%s): the cached clone %s is gone or "
			 "broken: cloning it again",
			 id->repo, id->name, id->from, dir);
		unlink(done);
	}
	if (!rc && !atex_path_exists(done)) {
		const char *clone[] = {"git", "clone", "-q", "--depth=1",
				       "--",  id->url, dir,  NULL};
		const char *checkout[] = {"git", "-C",	  dir, "checkout",
					  "-q",	 id->ref, NULL};

		atex_stage_remove(dir);
		/* tmt clones shallow when no ref is asked. */
		if (id->ref)
			memmove(&clone[3], &clone[4], 4 * sizeof(clone[0]));
		if (run_git(c, id, clone) ||
		    (id->ref && run_git(c, id, checkout)))
			rc = -1;
		else if (atex_stage_file(c->cache, atex_path_basename(done), "",
					 0, 0644))
			rc = ATEX_EIO;
	}
	if (fd >= 0)
		close(fd);
	if (!rc)
		*root = dir;
	else
		free(dir);
	free(lock);
	free(done);
	return rc;
}

static int mkdir_p(const char *path)
{
	char *p = atex_strdup(path);
	int rc = 0;

	if (!p)
		return ATEX_ENOMEM;
	for (char *s = p + 1; !rc && *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", p,
					    strerror(errno));
		*s = '/';
	}
	if (!rc && mkdir(p, 0755) < 0 && errno != EEXIST)
		rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", p,
				    strerror(errno));
	free(p);
	return rc;
}

static int resolve_list(struct lib_ctx *c, json_t *list, json_t *req,
			json_t *rec, json_t *out, const char *what,
			bool recommend, int depth);

/* The library's node in its fmf tree: its require/recommend, resolved
 * into rec_out/req_out of `entry`. */
static int library_metadata(struct lib_ctx *c, const struct lib_id *id,
			    const char *root, json_t *entry, int depth)
{
	atex_fmf_tree *tree = NULL;
	const atex_fmf_node *node;
	char *what;
	json_t *data;
	int rc;

	if (atex_fmf_tree_load(&tree, root) < 0)
		return lib_fail(c, "library '%s%s' (%s): %s", id->repo,
				id->name, id->from, atex_error_last());
	node = atex_fmf_tree_find(tree, id->name);
	if (!node) {
		atex_fmf_tree_free(tree);
		return lib_fail(c, "library '%s%s' (%s): no fmf node '%s'",
				id->repo, id->name, id->from, id->name);
	}
	data = atex_fmf_node_data(node);
	what = atex_sprintf("library '%s%s'", id->repo, id->name);
	rc = what ? 0 : ATEX_ENOMEM;
	for (int k = 0; !rc && k < 2; k++)
		rc = resolve_list(
			c, json_object_get(data, k ? "recommend" : "require"),
			json_object_get(entry, "require"),
			json_object_get(entry, "recommend"),
			json_object_get(entry, k ? "recommend" : "require"),
			what, k == 1, depth + 1);
	free(what);
	atex_fmf_tree_free(tree);
	return rc;
}

/* Adds every string of `from` to `to`. */
static int add_all(json_t *to, json_t *from)
{
	size_t i;
	json_t *v;
	int rc = 0;

	/* A library requiring itself: its packages are there already (and
	 * the array would grow while we walk it). */
	if (to == from)
		return 0;
	json_array_foreach(from, i, v) rc |= json_array_append(to, v);
	return rc ? ATEX_ENOMEM : 0;
}

/* Fetches and stages one library (once per REPO/NAME) and adds its
 * packages to req/rec. */
static int fetch_library(struct lib_ctx *c, struct lib_id *id, json_t *req,
			 json_t *rec, int depth)
{
	char *key = atex_sprintf("%s%s", id->repo, id->name);
	char *root = NULL, *src = NULL, *dst = NULL;
	json_t *entry;
	int rc;

	if (!key)
		return ATEX_ENOMEM;
	entry = json_object_get(c->done, key);
	if (entry) {
		const char *from =
			json_string_value(json_object_get(entry, "from"));

		if (strcmp(from, id->from))
			atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
				 "%s: library '%s' from %s: using the one "
				 "already fetched from %s",
				 atex_fmf_discovery_test_name(c->d, c->test),
				 key, id->from, from);
		rc = add_all(req, json_object_get(entry, "require"));
		rc |= add_all(rec, json_object_get(entry, "recommend"));
		free(key);
		return rc;
	}
	if (depth > LIB_DEPTH_MAX) {
		struct atex_buf b = ATEX_BUF_INIT;

		for (int i = 0; i <= LIB_DEPTH_MAX; i++)
			atex_buf_printf(&b, "%s -> ", c->chain[i]);
		atex_buf_puts(&b, key);
		lib_fail(c, "libraries nest deeper than %d: %s", LIB_DEPTH_MAX,
			 atex_buf_cstr(&b));
		atex_buf_free(&b);
		free(key);
		return -1;
	}
	c->chain[depth] = key;
	entry = json_pack("{s:s, s:[], s:[]}", "from", id->from, "require",
			  "recommend");
	/* Set before its own requirements: a loop back to it ends here. */
	rc = entry && !json_object_set_new(c->done, key, entry) ? 0
								: ATEX_ENOMEM;
	if (!rc && id->url)
		rc = fetch_clone(c, id, &root);
	else if (!rc)
		rc = (root = atex_path_abspath(id->path)) ? 0 : ATEX_ENOMEM;
	if (!rc && !id->url && !atex_path_is_dir(root))
		rc = lib_fail(c, "library '%s': path '%s' is not a directory",
			      key, id->path);
	/* With a url, `path` is the fmf root inside the repository. */
	if (!rc && id->url && id->path) {
		char *sub = atex_path_join(root, id->path);

		free(root);
		root = sub;
		rc = root ? 0 : ATEX_ENOMEM;
	}
	src = rc ? NULL : atex_sprintf("%s%s", root, id->name);
	dst = rc ? NULL : atex_sprintf("%s/%s", c->libs, key);
	if (!rc && (!src || !dst))
		rc = ATEX_ENOMEM;
	if (!rc && !atex_path_is_dir(src))
		rc = id->url ? lib_fail(c,
					"library '%s' (%s): no directory %s "
					"in its clone %s",
					key, id->from, id->name, root)
			     : lib_fail(c,
					"library '%s' (%s): no directory %s "
					"in %s",
					key, id->from, id->name, root);
	if (!rc)
		rc = library_metadata(c, id, root, entry, depth);
	if (!rc && (rc = mkdir_p(dst)) == 0) {
		rmdir(dst); /* atex_stage_tree makes it */
		rc = atex_stage_tree(src, dst);
	}
	if (!rc) {
		rc = add_all(req, json_object_get(entry, "require"));
		rc |= add_all(rec, json_object_get(entry, "recommend"));
	} else if (entry) {
		/* Not fetched: the next test asking for it tries again. */
		json_object_del(c->done, key);
	}
	free(key);
	free(root);
	free(src);
	free(dst);
	return rc;
}

static int bad_entry(struct lib_ctx *c, json_t *item, const char *what)
{
	char *text = json_dumps(item, JSON_ENCODE_ANY | JSON_COMPACT);

	lib_fail(c, "%s: entry %s is neither a string nor an object", what,
		 text ? text : "?");
	free(text);
	return -1;
}

/* A recommended library that cannot be fetched is best effort, as in tmt
 * (which then tries it as a package): a warning, and the test runs. */
static int recommend_failed(struct lib_ctx *c)
{
	atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
		 "%s (a recommended library: the test runs without it)",
		 c->error ? c->error : atex_error_last());
	free(c->error);
	c->error = NULL;
	return 0;
}

/* One require/recommend value (a string, an object or a list of them):
 * packages into `out`, libraries fetched with their packages into
 * req/rec. */
static int resolve_list(struct lib_ctx *c, json_t *list, json_t *req,
			json_t *rec, json_t *out, const char *what,
			bool recommend, int depth)
{
	json_t *one = NULL, *item;
	size_t i;
	int rc = 0;

	if (!list)
		return 0;
	if (!json_is_array(list))
		list = one = json_pack("[O]", list);
	if (!list)
		return ATEX_ENOMEM;
	json_array_foreach(list, i, item)
	{
		struct lib_id id = {0};
		const char *s = json_string_value(item);
		int is = 1;

		if (rc)
			break;
		if (s && !fmf_library_entry(item)) {
			rc = json_array_append(out, item) ? ATEX_ENOMEM : 0;
			continue;
		}
		if (s)
			rc = parse_simple(c, &id, s);
		else if (json_is_object(item))
			rc = (is = parse_object(c, &id, item, what)) < 0 ? -1
									 : 0;
		else
			rc = bad_entry(c, item, what);
		if (!rc && is && !safe_part(id.name + 1, true) &&
		    strcmp(id.name, "/"))
			rc = lib_fail(c, "%s: bad library name '%s'", what,
				      id.name);
		if (!rc && is) {
			id.from = id.url ? atex_sprintf("%s%s%s", id.url,
							id.ref ? "#" : "",
							id.ref ? id.ref : "")
					 : atex_strdup(id.path);
			rc = id.from ? fetch_library(c, &id, req, rec, depth)
				     : ATEX_ENOMEM;
			if (rc && rc != ATEX_ENOMEM && recommend)
				rc = recommend_failed(c);
		}
		lib_id_free(&id);
	}
	json_decref(one);
	return rc;
}

/* Whether a require/recommend value has anything but packages: a
 * library, or a bad entry to report. */
static bool has_library(json_t *value)
{
	size_t i;
	json_t *item;

	if (!json_is_array(value))
		return value && !json_is_string(value)
			       ? true
			       : value && fmf_library_entry(value);
	json_array_foreach(value, i, item)
	{
		if (!json_is_string(item) || fmf_library_entry(item))
			return true;
	}
	return false;
}

/* One test: its entry in *out, or nothing when it has no libraries. */
static int resolve_test(struct lib_ctx *c, json_t *out)
{
	json_t *data = atex_fmf_discovery_test_data_ref(c->d, c->test);
	json_t *req = json_array(), *rec = json_array(),
	       *ignored = json_array();
	json_t *entry = NULL;
	int rc = data && req && rec && ignored ? 0 : ATEX_ENOMEM;

	if (!rc && (has_library(json_object_get(data, "require")) ||
		    has_library(json_object_get(data, "recommend")))) {
		for (int k = 0; !rc && k < 2; k++)
			rc = resolve_list(c,
					  json_object_get(data, k ? "recommend"
								  : "require"),
					  req, rec, ignored,
					  k ? "recommend" : "require", k == 1,
					  0);
		/* A library that cannot be staged fails its test only. */
		if (rc && rc != ATEX_ENOMEM && !c->error)
			lib_fail(c, "%s", atex_error_last());
		if (c->error)
			entry = json_pack("{s:s}", "error", c->error);
		else if (!rc)
			entry = json_pack("{s:O, s:O}", "require", req,
					  "recommend", rec);
		if ((c->error || !rc) &&
		    (!entry ||
		     json_object_set_new(
			     out, atex_fmf_discovery_test_name(c->d, c->test),
			     entry)))
			rc = ATEX_ENOMEM;
		else if (c->error)
			rc = 0;
	}
	free(c->error);
	c->error = NULL;
	json_decref(data);
	json_decref(req);
	json_decref(rec);
	json_decref(ignored);
	return rc;
}

static bool any_library(atex_fmf_discovery *d)
{
	for (size_t i = 0; i < atex_fmf_discovery_count(d); i++) {
		json_t *data = atex_fmf_discovery_test_data_ref(d, i);
		bool has = data &&
			   (has_library(json_object_get(data, "require")) ||
			    has_library(json_object_get(data, "recommend")));

		json_decref(data);
		if (has)
			return true;
	}
	return false;
}

int fmf_libraries_stage(json_t **out, atex_fmf_discovery *d,
			const char *stage_dir)
{
	const char *cache = getenv(FMF_LIBRARY_CACHE_ENV);
	const char *tmp = getenv("TMPDIR");
	struct lib_ctx c = {.d = d};
	char *own_cache = NULL, *libs = NULL;
	int rc = 0;

	*out = json_object();
	if (!*out)
		return ATEX_ENOMEM;
	if (!any_library(d))
		return 0;
	libs = atex_path_join(stage_dir, FMF_LIBRARY_DIR);
	if (!libs)
		return ATEX_ENOMEM;
	if (cache && *cache)
		rc = mkdir_p(cache);
	else {
		/* Named as a stage: reaped like one when we are killed. */
		own_cache = atex_sprintf("%s/atex-stage-%s-XXXXXX",
					 tmp && *tmp ? tmp : "/tmp",
					 atex_stage_owner());
		if (!own_cache)
			rc = ATEX_ENOMEM;
		else if (!mkdtemp(own_cache))
			rc = atex_error_set(ATEX_EIO, "cannot create %s: %s",
					    own_cache, strerror(errno));
		cache = own_cache;
	}
	if (!rc && mkdir(libs, 0755) < 0)
		rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", libs,
				    strerror(errno));
	c.cache = cache;
	c.libs = libs;
	c.done = json_object();
	if (!rc && !c.done)
		rc = ATEX_ENOMEM;
	for (size_t i = 0; !rc && i < atex_fmf_discovery_count(d); i++) {
		c.test = i;
		rc = resolve_test(&c, *out);
	}
	if (own_cache)
		atex_stage_remove(own_cache);
	json_decref(c.done);
	free(own_cache);
	free(libs);
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}
