/*
 * history_db.h - what the history tests share: results databases made by
 * hand in the SQLite aggregator's schema (docs/PROTOCOL.md section 6).
 * Header-only (static inline), for test files only.
 */
#ifndef ATEX_TESTS_HISTORY_DB_H
#define ATEX_TESTS_HISTORY_DB_H

#include <sqlite3.h>
#include <stdio.h>

/* The results table with the timing columns (issue 14). */
static const char *const history_schema =
	"CREATE TABLE results(id INTEGER PRIMARY KEY,"
	" platform TEXT NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL,"
	" subtest TEXT, note TEXT, files TEXT NOT NULL,"
	" ingested REAL NOT NULL, attempt INTEGER NOT NULL,"
	" final INTEGER NOT NULL, started TEXT, ended TEXT, duration REAL,"
	" system TEXT, exit_code INTEGER);";

static inline char *path_in(const char *dir, const char *rel)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
	return p;
}

static inline void db_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

/* A new database at `path` made by the SQL `create`. */
static inline sqlite3 *db_new(const char *path, const char *create)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	db_exec(db, create);
	return db;
}

#endif /* ATEX_TESTS_HISTORY_DB_H */
