/*
 * walk.c - reading every metadata file of a tree, in parallel.
 *
 * Parsing YAML is most of the cost of loading a big tree, and files are
 * independent, so the walk is split in two: a sequential pass lists
 * directories exactly as fmf's grow() visits them (main.fmf first, other
 * *.fmf files sorted, then sorted subdirectories; hidden names skipped
 * unless .fmf/config includes them; nested trees and symlink loops
 * skipped), recording "enter", "file" and "leave" steps; then threads
 * parse the files (no positions are kept: locate.c finds them again if an
 * error needs one) while one of them hands the steps, in order, to
 * tree.c, so the result and the first error reported are the same as a
 * sequential load would give.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmf/fmf_private.h"
#include "util/util.h"

/* Below this many files threads cost more than they save. */
#define PARALLEL_MIN_FILES 16

void atex_walk_free(struct atex_walk *w)
{
	for (size_t i = 0; i < w->len; i++) {
		free(w->steps[i].path);
		free(w->steps[i].error);
		json_decref(w->steps[i].data);
	}
	free(w->steps);
	atex_vec_free_all(&w->symlinks, free);
	memset(w, 0, sizeof(*w));
}

static int add_step(struct atex_walk *w, enum atex_walk_kind kind,
		    const char *dir, const char *name)
{
	struct atex_walk_step *s;

	if (w->len == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		void *p = realloc(w->steps, cap * sizeof(*w->steps));

		if (!p)
			return atex_error_oom();
		w->steps = p;
		w->cap = cap;
	}
	s = &w->steps[w->len];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	if (kind != ATEX_WALK_LEAVE) {
		s->path = atex_path_join(dir, name);
		if (!s->path)
			return ATEX_ENOMEM;
		s->name = atex_path_basename(s->path);
	}
	w->len++;
	return 0;
}

static bool is_included(const json_t *include, const char *name)
{
	json_t *item;
	size_t i;

	json_array_foreach(include, i, item)
		if (json_is_string(item) && !strcmp(json_string_value(item), name))
			return true;
	return false;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* Lists a directory as os.walk's first step does: sorted subdirectory
 * names (symlinks to directories included) and sorted other names. An
 * unreadable directory is skipped, as fmf skips it. */
static int list_dir(struct atex_vec *dirs, struct atex_vec *files,
		    const char *path)
{
	struct dirent *e;
	DIR *d = opendir(path);
	int rc = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		bool is_dir = e->d_type == DT_DIR;
		char *copy;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
			char *full = atex_path_join(path, e->d_name);

			if (!full) {
				rc = ATEX_ENOMEM;
				break;
			}
			is_dir = atex_path_is_dir(full);
			free(full);
		}
		copy = atex_strdup(e->d_name);
		if (!copy || atex_vec_push(is_dir ? dirs : files, copy) < 0) {
			free(copy);
			rc = ATEX_ENOMEM;
			break;
		}
	}
	closedir(d);
	atex_vec_sort(dirs, atex_vec_cmp_str);
	atex_vec_sort(files, atex_vec_cmp_str);
	return rc;
}

/* Whether a symlinked directory leads where the walk has been (a loop);
 * fmf remembers every symlink target it entered. */
static int seen_symlink(struct atex_walk *w, const char *full, bool *seen)
{
	struct stat st;
	char *real;

	*seen = false;
	if (lstat(full, &st) < 0 || !S_ISLNK(st.st_mode))
		return 0;
	real = realpath(full, NULL);
	if (!real)
		return 0;
	for (size_t i = 0; i < w->symlinks.len; i++) {
		if (!strcmp(w->symlinks.items[i], real)) {
			*seen = true;
			free(real);
			return 0;
		}
	}
	if (atex_vec_push(&w->symlinks, real) < 0) {
		free(real);
		return ATEX_ENOMEM;
	}
	return 0;
}

/* Whether the subdirectory is entered: not a symlink loop, not a tree of
 * its own (a directory holding .fmf/). */
static int should_enter(struct atex_walk *w, const char *path,
			const char *name, bool *enter)
{
	char *full = atex_path_join(path, name), *sub = NULL;
	bool seen;
	int rc;

	*enter = false;
	if (!full)
		return ATEX_ENOMEM;
	rc = seen_symlink(w, full, &seen);
	if (rc == 0 && !seen) {
		sub = atex_path_join(full, ".fmf");
		if (!sub)
			rc = ATEX_ENOMEM;
		else
			*enter = !atex_path_is_dir(sub);
	}
	free(sub);
	free(full);
	return rc;
}

static int walk_dir(struct atex_walk *w, const char *path,
		    const json_t *include)
{
	struct atex_vec dirs = ATEX_VEC_INIT, files = ATEX_VEC_INIT;
	size_t i;
	int rc;

	rc = list_dir(&dirs, &files, path);
	for (i = 0; i < files.len && rc == 0; i++)
		if (!strcmp(files.items[i], "main.fmf"))
			rc = add_step(w, ATEX_WALK_FILE, path, "main.fmf");
	for (i = 0; i < files.len && rc == 0; i++) {
		const char *name = files.items[i];

		if (!ends_with(name, ".fmf") || !strcmp(name, "main.fmf"))
			continue;
		if (name[0] == '.' && !is_included(include, name))
			continue;
		rc = add_step(w, ATEX_WALK_FILE, path, name);
	}
	for (i = 0; i < dirs.len && rc == 0; i++) {
		const char *name = dirs.items[i];
		bool enter;

		if (name[0] == '.' && !is_included(include, name))
			continue;
		rc = should_enter(w, path, name, &enter);
		if (rc < 0 || !enter)
			continue;
		rc = add_step(w, ATEX_WALK_ENTER, path, name);
		if (rc == 0)
			rc = walk_dir(w, w->steps[w->len - 1].path, include);
		if (rc == 0)
			rc = add_step(w, ATEX_WALK_LEAVE, NULL, NULL);
	}
	atex_vec_free_all(&dirs, free);
	atex_vec_free_all(&files, free);
	return rc;
}

/*
 * The parallel part. Every thread parses files in walk order (an atomic
 * counter hands them out); one of them, the first to arrive, is also the
 * replayer: whenever the next step in order is ready it hands it to
 * `apply`, otherwise it parses a file itself, and when nothing is left to
 * parse it waits for the step it needs. So building the tree overlaps
 * parsing instead of following it.
 */
struct parse_job {
	struct atex_walk *walk;
	atomic_size_t next;        /* next step to parse */
	atomic_bool replayer_taken;
	atex_walk_apply_fn apply;
	void *ctx;
	atomic_bool stop;          /* apply failed: parse nothing more */
	pthread_mutex_t lock;      /* with `parsed`: a step became ready */
	pthread_cond_t parsed;
	int rc;                    /* apply's result, and its message */
	char *error;
};

static bool parse_one(struct parse_job *job)
{
	struct atex_walk *w = job->walk;
	size_t i = atomic_fetch_add(&job->next, 1);
	struct atex_walk_step *s;

	if (i >= w->len)
		return false;
	s = &w->steps[i];
	if (s->kind == ATEX_WALK_FILE && !atomic_load(&job->stop)) {
		s->rc = atex_yaml_load_file(&s->data, s->path, NULL);
		if (s->rc < 0)
			s->error = strdup(atex_error_last());
	}
	pthread_mutex_lock(&job->lock);
	atomic_store_explicit(&s->ready, true, memory_order_release);
	pthread_cond_broadcast(&job->parsed);
	pthread_mutex_unlock(&job->lock);
	return true;
}

static void wait_ready(struct parse_job *job, struct atex_walk_step *s)
{
	pthread_mutex_lock(&job->lock);
	while (!atomic_load_explicit(&s->ready, memory_order_acquire))
		pthread_cond_wait(&job->parsed, &job->lock);
	pthread_mutex_unlock(&job->lock);
}

static void replay(struct parse_job *job)
{
	struct atex_walk *w = job->walk;

	for (size_t i = 0; i < w->len && job->rc == 0; i++) {
		struct atex_walk_step *s = &w->steps[i];

		while (!atomic_load_explicit(&s->ready, memory_order_acquire))
			if (!parse_one(job))
				wait_ready(job, s);
		job->rc = job->apply(s, job->ctx);
	}
	if (job->rc < 0) {
		job->error = strdup(atex_error_last());
		atomic_store(&job->stop, true);
	}
}

static void parse_files(void *arg)
{
	struct parse_job *job = arg;

	if (!atomic_exchange(&job->replayer_taken, true))
		replay(job);
	while (parse_one(job))
		;
}

int atex_walk_tree(struct atex_walk *w, const char *root,
		   const json_t *include, atex_walk_apply_fn apply, void *ctx)
{
	struct parse_job job = {.walk = w, .apply = apply, .ctx = ctx};
	size_t files = 0;
	int rc;

	memset(w, 0, sizeof(*w));
	rc = walk_dir(w, root, include);
	if (rc < 0) {
		atex_walk_free(w);
		return rc;
	}
	for (size_t i = 0; i < w->len; i++)
		files += w->steps[i].kind == ATEX_WALK_FILE;
	atomic_init(&job.next, 0);
	atomic_init(&job.replayer_taken, false);
	atomic_init(&job.stop, false);
	pthread_mutex_init(&job.lock, NULL);
	pthread_cond_init(&job.parsed, NULL);
	atex_run_parallel(files < PARALLEL_MIN_FILES ? 1 : atex_cpu_count(),
			  parse_files, &job);
	pthread_cond_destroy(&job.parsed);
	pthread_mutex_destroy(&job.lock);
	/* apply may have run on another thread: its message moves here. */
	if (job.rc < 0)
		atex_error_set(job.rc, "%s", job.error ? job.error : "");
	free(job.error);
	return job.rc;
}
