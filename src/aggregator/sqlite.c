/*
 * sqlite.c - the SQLite aggregator: one row per result in
 *
 *     results(id INTEGER PRIMARY KEY, platform TEXT NOT NULL,
 *             status TEXT NOT NULL, test TEXT NOT NULL, subtest TEXT,
 *             note TEXT, files TEXT NOT NULL, ingested REAL NOT NULL,
 *             attempt INTEGER NOT NULL, final INTEGER NOT NULL)
 *
 * with indexes on status, test and platform, and its "earlier attempts"
 * view, a second aggregator writing rows with final = 0 into the same
 * database.
 *
 * How it is built, and why:
 *
 *  - One transaction per ingest (BEGIN IMMEDIATE ... COMMIT): a killed
 *    run leaves whole tests, and the attempt number, 1 + the largest of
 *    the rows already there for the same platform and test, is read in
 *    the same transaction that uses it.
 *  - WAL mode with synchronous=NORMAL: a commit is an append to the log,
 *    cheap enough for one per test, and readers (a report made while the
 *    run goes on) do not block the writer. A busy timeout covers such a
 *    reader holding a lock for a moment. stop() goes back to a rollback
 *    journal: an archived database is one file that needs no -shm, so
 *    that it can be read where it cannot be written.
 *  - One connection, guarded by our own mutex, which the earlier view
 *    shares: the statements are prepared once and used under the lock.
 *    Results are read and files placed before the lock is taken.
 *  - `files` is the result's file names as JSON array text, the same
 *    names the JSON Lines aggregator writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "aggregator/ingest.h"
#include "atex/aggregator.h"
#include "util/util.h"

#define BUSY_TIMEOUT_MS 10000

static const char schema[] =
	"CREATE TABLE results(id INTEGER PRIMARY KEY,"
	" platform TEXT NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL,"
	" subtest TEXT, note TEXT, files TEXT NOT NULL,"
	" ingested REAL NOT NULL, attempt INTEGER NOT NULL,"
	" final INTEGER NOT NULL, started TEXT, ended TEXT, duration REAL,"
	" system TEXT, exit_code INTEGER);"
	"CREATE INDEX results_status ON results(status);"
	"CREATE INDEX results_test ON results(test);"
	"CREATE INDEX results_platform ON results(platform);"
	"CREATE TABLE run(started TEXT NOT NULL, ended TEXT,"
	" atex_version TEXT NOT NULL, platform TEXT, provisioner TEXT,"
	" tree TEXT, git_commit TEXT, context TEXT, first_test TEXT,"
	" systems INTEGER);";

/* The string keys of run_json, in the `run` table's column order. */
static const char *const run_keys[] = {"platform", "provisioner", "tree",
				       "git_commit"};

struct sqlite_agg {
	atex_aggregator base;
	char *path;
	char *files_dir;
	json_t *run; /* run_json parsed (an object); NULL: none */

	pthread_mutex_t lock;
	/* Under the lock: */
	bool started;
	char ended[40]; /* atex_sqlite_aggregator_set_ended's; "": now */
	sqlite3 *db;
	sqlite3_stmt *attempt; /* the next attempt of (platform, test) */
	sqlite3_stmt *insert;
};

/* The earlier-attempts view: rows with final = 0 in `main`'s database. */
struct sqlite_earlier {
	atex_aggregator base;
	struct sqlite_agg *main;
};

static const struct atex_aggregator_ops sqlite_ops;

/* ATEX_EIO with SQLite's message for `what`, and the system's error
 * under it ("database or disk is full" does not say which). */
static int db_error(struct sqlite_agg *s, const char *what)
{
	int sys = s->db ? sqlite3_system_errno(s->db) : 0;

	if (s->db && sqlite3_errcode(s->db) == SQLITE_NOMEM)
		return atex_error_oom();
	/* SQLite reports a full disk without errno at times. */
	if (s->db && sqlite3_errcode(s->db) == SQLITE_FULL && sys != ENOSPC &&
	    sys != EDQUOT)
		sys = ENOSPC;
	if (sys > 0)
		return atex_error_set(ATEX_EIO, "%s: %s: %s (%s)", s->path,
				      what, sqlite3_errmsg(s->db),
				      strerror(sys));
	return atex_error_set(ATEX_EIO, "%s: %s: %s", s->path, what,
			      s->db ? sqlite3_errmsg(s->db) : "no database");
}

static int exec(struct sqlite_agg *s, const char *sql)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	return db_error(s, sql);
}

/* ---- start and stop ---- */

/* Removes the database of an earlier run and its WAL files (a symlink
 * in their place is removed, not what it points to). */
static int remove_old(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	int rc = 0;

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(suffixes) && !rc; i++) {
		char *p = atex_sprintf("%s%s", path, suffixes[i]);

		if (!p)
			return ATEX_ENOMEM;
		if (unlink(p) < 0 && errno != ENOENT)
			rc = atex_error_set(ATEX_EIO, "%s: cannot remove: %s",
					    p, strerror(errno));
		free(p);
	}
	return rc;
}

static int wal_mode(struct sqlite_agg *s)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		rc = db_error(s, "cannot set WAL mode");
	else if (strcmp((const char *)sqlite3_column_text(st, 0), "wal"))
		rc = atex_error_set(ATEX_EIO, "%s: WAL mode refused (%s)",
				    s->path, sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc;
}

/* Back to a rollback journal (which checkpoints the log first): a
 * finished database is one plain file, which readers without write
 * access to its folder can open (a WAL database needs its -shm). A
 * failure leaves a good WAL database: said, not fatal. */
static void rollback_mode(struct sqlite_agg *s)
{
	sqlite3_stmt *st = NULL;
	const char *mode = NULL;

	sqlite3_finalize(s->attempt);
	sqlite3_finalize(s->insert);
	s->attempt = s->insert = NULL;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=DELETE", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "delete"))
		atex_log(ATEX_LOG_WARNING, "aggregator",
			 "%s: left in WAL mode (%s): readers need write "
			 "access to its folder",
			 s->path, mode ? mode : sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
}

static int close_db(struct sqlite_agg *s)
{
	int rc = 0;

	sqlite3_finalize(s->attempt);
	sqlite3_finalize(s->insert);
	s->attempt = s->insert = NULL;
	if (s->db && sqlite3_close(s->db) != SQLITE_OK) {
		rc = db_error(s, "cannot close");
		/* Not closed: let go of it anyway, as the caller does. */
		sqlite3_close_v2(s->db);
	}
	s->db = NULL;
	return rc;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *text)
{
	if (text && *text)
		sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void now_iso(char out[40])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	atex_ingest_iso_time(out, &ts);
}

/* The `run` row, at start: what the options say about the run. */
static int insert_run(struct sqlite_agg *s)
{
	sqlite3_stmt *st = NULL;
	json_t *ctx = s->run ? json_object_get(s->run, "context") : NULL;
	char *ctx_text =
		json_is_object(ctx)
			? json_dumps(ctx, JSON_COMPACT | JSON_SORT_KEYS)
			: NULL;
	char started[40];
	int rc = 0;

	if (json_is_object(ctx) && !ctx_text)
		return atex_error_oom();
	/* The program's own start of the run, so that its record of the
	 * run (run.json) and this one agree. */
	if (s->run && json_is_string(json_object_get(s->run, "started")))
		snprintf(started, sizeof(started), "%s",
			 json_string_value(json_object_get(s->run, "started")));
	else
		now_iso(started);
	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO run(started, atex_version, "
			       "platform, provisioner, tree, git_commit, "
			       "context) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			       -1, &st, NULL) != SQLITE_OK) {
		free(ctx_text);
		return db_error(s, "cannot prepare");
	}
	sqlite3_bind_text(st, 1, started, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, ATEX_VERSION_STRING, -1, SQLITE_STATIC);
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(run_keys); i++)
		bind_text_or_null(st, 3 + (int)i,
				  s->run ? json_string_value(json_object_get(
						   s->run, run_keys[i]))
					 : NULL);
	bind_text_or_null(st, 7, ctx_text);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(s, "cannot record the run");
	sqlite3_finalize(st);
	free(ctx_text);
	return rc;
}

/* The `run` row, at stop: the end, and what the results tell. */
static int finish_run(struct sqlite_agg *s)
{
	sqlite3_stmt *st = NULL;
	char ended[40];
	int rc = 0;

	if (s->ended[0])
		memcpy(ended, s->ended, sizeof(ended));
	else
		now_iso(ended);
	if (sqlite3_prepare_v2(s->db,
			       "UPDATE run SET ended = ?1, first_test = "
			       "(SELECT MIN(started) FROM results), systems = "
			       "(SELECT COUNT(DISTINCT system) FROM results)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "cannot prepare");
	sqlite3_bind_text(st, 1, ended, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(s, "cannot record the end of the run");
	sqlite3_finalize(st);
	return rc;
}

static int open_db(struct sqlite_agg *s)
{
	int rc = remove_old(s->path);

	struct stat made, now;
	int fd;

	if (rc)
		return rc;
	/* The database is made here, O_EXCL (an empty file is a new
	 * database to SQLite), and is still the file we made once SQLite
	 * has it open: a link planted in a shared results directory is
	 * never followed. SQLite opens its -wal and -shm O_NOFOLLOW
	 * itself. (SQLITE_OPEN_NOFOLLOW would also refuse a symlink in
	 * the directories above, which a user may well have.) */
	fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0)
		return atex_error_set(ATEX_EIO, "%s: cannot create: %s",
				      s->path, strerror(errno));
	if (fstat(fd, &made) < 0 ||
	    sqlite3_open_v2(s->path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		close(fd);
		return db_error(s, "cannot open");
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	rc = wal_mode(s);
	if (!rc && (lstat(s->path, &now) < 0 || now.st_dev != made.st_dev ||
		    now.st_ino != made.st_ino))
		rc = atex_error_set(ATEX_EIO,
				    "%s: replaced by something else while "
				    "being opened; refusing it",
				    s->path);
	close(fd);
	if (!rc)
		rc = exec(s, "PRAGMA synchronous=NORMAL");
	if (!rc)
		rc = exec(s, schema);
	if (!rc &&
	    sqlite3_prepare_v2(s->db,
			       "SELECT COALESCE(MAX(attempt), 0) + 1 FROM "
			       "results WHERE platform = ?1 AND test = ?2",
			       -1, &s->attempt, NULL) != SQLITE_OK)
		rc = db_error(s, "cannot prepare");
	if (!rc &&
	    sqlite3_prepare_v2(s->db,
			       "INSERT INTO results(platform, status, test, "
			       "subtest, note, files, ingested, attempt, "
			       "final, started, ended, duration, system, "
			       "exit_code) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
			       "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
			       -1, &s->insert, NULL) != SQLITE_OK)
		rc = db_error(s, "cannot prepare");
	if (!rc)
		rc = insert_run(s);
	return rc;
}

static int sqlite_start(atex_aggregator *a)
{
	struct sqlite_agg *s = (struct sqlite_agg *)a;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (s->started) {
		rc = atex_error_set(ATEX_EINVAL, "%s: started twice", s->path);
		goto out;
	}
	if (s->files_dir)
		rc = atex_ingest_mkdirs(s->files_dir);
	if (!rc)
		rc = open_db(s);
	if (rc)
		close_db(s);
	else
		s->started = true;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sqlite_stop(atex_aggregator *a)
{
	struct sqlite_agg *s = (struct sqlite_agg *)a;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	/* A finished run leaves one file, in rollback-journal mode. */
	if (s->started)
		rc = finish_run(s);
	if (s->started)
		rollback_mode(s);
	if (s->started) {
		int closed = close_db(s);

		rc = rc ? rc : closed;
	}
	s->started = false;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- ingest ---- */

static int insert_row(struct sqlite_agg *s, const struct atex_ingest *in,
		      const struct atex_ingest_result *r, double now,
		      sqlite3_int64 attempt, bool final)
{
	const struct atex_ingest_attempt *at = &in->attempt;
	sqlite3_stmt *st = s->insert;
	char *files = json_dumps(r->files, JSON_COMPACT);
	int rc = 0;

	if (!files)
		return atex_error_oom();
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sqlite3_bind_text(st, 1, in->platform, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, in->test, -1, SQLITE_STATIC);
	if (r->name)
		sqlite3_bind_text(st, 4, r->name, -1, SQLITE_STATIC);
	if (r->note)
		sqlite3_bind_text(st, 5, r->note, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, files, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 7, now);
	sqlite3_bind_int64(st, 8, attempt);
	sqlite3_bind_int(st, 9, final ? 1 : 0);
	bind_text_or_null(st, 10, at->start);
	bind_text_or_null(st, 11, at->end);
	if (at->duration >= 0)
		sqlite3_bind_double(st, 12, at->duration);
	bind_text_or_null(st, 13, at->system);
	if (at->has_exit_code)
		sqlite3_bind_int(st, 14, at->exit_code);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(s, "cannot insert");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(files);
	return rc;
}

static int next_attempt(struct sqlite_agg *s, const struct atex_ingest *in,
			sqlite3_int64 *attempt)
{
	sqlite3_stmt *st = s->attempt;
	int rc = 0;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, in->platform, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, in->test, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*attempt = sqlite3_column_int64(st, 0);
	else
		rc = db_error(s, "cannot count attempts");
	sqlite3_reset(st);
	return rc;
}

/* Writes the rows of one ingest in one transaction (under the lock). */
static int write_rows(struct sqlite_agg *s, const struct atex_ingest *in,
		      bool final)
{
	double now = atex_ingest_now();
	sqlite3_int64 attempt = 1;
	int rc = exec(s, "BEGIN IMMEDIATE");

	if (rc)
		return rc;
	/* attempt.json's number when there is one: the orchestrator's
	 * count, which also numbers attempts other aggregators got. */
	if (in->attempt.attempt > 0)
		attempt = in->attempt.attempt;
	else
		rc = next_attempt(s, in, &attempt);
	for (size_t i = 0; i < in->n && !rc; i++)
		rc = insert_row(s, in, &in->results[i], now, attempt, final);
	if (!rc)
		rc = exec(s, "COMMIT");
	/* A failed COMMIT (a full disk) may have rolled back already. */
	if (rc && !sqlite3_get_autocommit(s->db) &&
	    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		atex_log(ATEX_LOG_ERROR, "aggregator",
			 "%s: cannot roll back: %s", s->path,
			 sqlite3_errmsg(s->db));
	return rc;
}

static int ingest_into(struct sqlite_agg *s, const char *platform,
		       const char *test_name, const char *artifacts_dir,
		       bool final)
{
	struct atex_ingest in;
	bool started;
	int rc;

	pthread_mutex_lock(&s->lock);
	started = s->started;
	pthread_mutex_unlock(&s->lock);
	if (!started)
		return atex_error_set(ATEX_EINVAL, "%s: ingest before start",
				      s->path);
	rc = atex_ingest_prepare(&in, s->files_dir, platform, test_name,
				 artifacts_dir);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->lock);
	if (!s->started)
		rc = atex_error_set(ATEX_EINVAL, "%s: stopped during ingest",
				    s->path);
	else
		rc = write_rows(s, &in, final);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		atex_error_prefix("%s on %s", test_name, platform);
	atex_ingest_release(&in);
	return rc;
}

static int sqlite_ingest(atex_aggregator *a, const char *platform,
			 const char *test_name, const char *artifacts_dir)
{
	return ingest_into((struct sqlite_agg *)a, platform, test_name,
			   artifacts_dir, true);
}

static void sqlite_free(atex_aggregator *a)
{
	struct sqlite_agg *s = (struct sqlite_agg *)a;

	sqlite_stop(a);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s->files_dir);
	json_decref(s->run);
	free(s);
}

static const struct atex_aggregator_ops sqlite_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = sqlite_start,
	.ingest = sqlite_ingest,
	.stop = sqlite_stop,
	.free = sqlite_free,
};

/* No key but the known ones (a misspelt "git-commit" would be lost
 * silently), and the context's values strings (docs/PROTOCOL.md 5). */
static int check_run_keys(json_t *run, json_t *context)
{
	const char *key;
	json_t *v;
	bool known;

	json_object_foreach(run, key, v)
	{
		/* started: the run's start (parse_run checks it). */
		known = !strcmp(key, "context") || !strcmp(key, "started");
		for (size_t i = 0; !known && i < ATEX_ARRAY_SIZE(run_keys); i++)
			known = !strcmp(key, run_keys[i]);
		if (!known)
			return atex_error_set(ATEX_EINVAL,
					      "atex_sqlite_aggregator_new: "
					      "run_json: unknown key \"%s\" "
					      "(platform, provisioner, tree, "
					      "git_commit, context, started)",
					      key);
	}
	json_object_foreach(context, key, v)
	{
		if (!json_is_string(v))
			return atex_error_set(ATEX_EINVAL,
					      "atex_sqlite_aggregator_new: "
					      "run_json: context \"%s\" is not "
					      "a string",
					      key);
	}
	return 0;
}

/* run_json: a JSON object whose keys are known and have the right
 * types. */
static int parse_run(json_t **out, const char *text)
{
	json_error_t jerr;
	json_t *run = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	json_t *v;

	if (!json_is_object(run)) {
		json_decref(run);
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_new: run_json "
				      "is not a JSON object: %s",
				      run ? "another value" : jerr.text);
	}
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(run_keys); i++) {
		v = json_object_get(run, run_keys[i]);
		if (v && !json_is_null(v) && !json_is_string(v)) {
			json_decref(run);
			return atex_error_set(ATEX_EINVAL,
					      "atex_sqlite_aggregator_new: "
					      "run_json: \"%s\" is not a "
					      "string or null",
					      run_keys[i]);
		}
	}
	v = json_object_get(run, "started");
	if (v && !json_is_null(v) &&
	    (!json_is_string(v) || !atex_iso_time_ok(json_string_value(v)))) {
		json_decref(run);
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_new: run_json: "
				      "\"started\" is not an ISO 8601 time or "
				      "null");
	}
	v = json_object_get(run, "context");
	if (v && !json_is_null(v) && !json_is_object(v)) {
		json_decref(run);
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_new: run_json: "
				      "\"context\" is not an object or null");
	}
	if (check_run_keys(run, v) < 0) {
		json_decref(run);
		return ATEX_EINVAL;
	}
	*out = run;
	return 0;
}

int atex_sqlite_aggregator_new(
	atex_aggregator **out,
	const struct atex_sqlite_aggregator_options *opts)
{
	struct sqlite_agg *s;
	json_t *run = NULL;
	int rc;

	if (!out)
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_new: no out "
				      "pointer");
	*out = NULL;
	if (!opts || opts->version < 1 ||
	    opts->version > ATEX_SQLITE_AGGREGATOR_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_new: no options "
				      "or unknown options version");
	if (!opts->path || !*opts->path)
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_new: no path");
	if (opts->version >= 2 && opts->run_json &&
	    (rc = parse_run(&run, opts->run_json)) < 0)
		return rc;
	s = atex_calloc(1, sizeof(*s));
	if (!s) {
		json_decref(run);
		return ATEX_ENOMEM;
	}
	s->base.ops = &sqlite_ops;
	s->run = run;
	s->path = atex_strdup(opts->path);
	s->files_dir = opts->files_dir ? atex_strdup(opts->files_dir) : NULL;
	if (!s->path || (opts->files_dir && !s->files_dir)) {
		json_decref(s->run);
		free(s->path);
		free(s->files_dir);
		free(s);
		return ATEX_ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	*out = &s->base;
	return 0;
}

int atex_sqlite_aggregator_set_ended(atex_aggregator *sqlite, const char *ended)
{
	struct sqlite_agg *s = (struct sqlite_agg *)sqlite;

	if (!sqlite || sqlite->ops != &sqlite_ops)
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_set_ended: not a "
				      "SQLite aggregator");
	if (ended && !atex_iso_time_ok(ended))
		return atex_error_set(
			ATEX_EINVAL,
			"atex_sqlite_aggregator_set_ended: \"%s\" "
			"is not an ISO 8601 time",
			ended);
	pthread_mutex_lock(&s->lock);
	snprintf(s->ended, sizeof(s->ended), "%s", ended ? ended : "");
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ---- the earlier-attempts view ---- */

static int earlier_ingest(atex_aggregator *a, const char *platform,
			  const char *test_name, const char *artifacts_dir)
{
	struct sqlite_earlier *e = (struct sqlite_earlier *)a;

	return ingest_into(e->main, platform, test_name, artifacts_dir, false);
}

static void earlier_free(atex_aggregator *a)
{
	free(a);
}

/* start and stop: nothing, the database is the main aggregator's. */
static const struct atex_aggregator_ops earlier_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.ingest = earlier_ingest,
	.free = earlier_free,
};

int atex_sqlite_aggregator_earlier(atex_aggregator **out,
				   atex_aggregator *sqlite)
{
	struct sqlite_earlier *e;

	if (!out)
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_earlier: no out "
				      "pointer");
	*out = NULL;
	if (!sqlite || sqlite->ops != &sqlite_ops)
		return atex_error_set(ATEX_EINVAL,
				      "atex_sqlite_aggregator_earlier: not a "
				      "SQLite aggregator");
	e = atex_calloc(1, sizeof(*e));
	if (!e)
		return ATEX_ENOMEM;
	e->base.ops = &earlier_ops;
	e->main = (struct sqlite_agg *)sqlite;
	*out = &e->base;
	return 0;
}
