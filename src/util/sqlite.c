/*
 * sqlite.c - opening a results database for reading.
 *
 * A database left in WAL mode (a run still going, or killed) needs its
 * -shm file to be read, which SQLite creates next to it: without write
 * access to the folder (an archive, a read-only mount, another user's
 * results) the read-only open fails. Such a database is then opened
 * "immutable" (no locks, no -shm, no -wal): right for a database nobody
 * is writing, which is what a folder we cannot write to holds. A reader
 * never writes: the file is not changed either way.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "util/util.h"

/* file:PATH?immutable=1 with PATH %-escaped where a URI needs it. */
static char *immutable_uri(const char *path)
{
	struct atex_buf b = ATEX_BUF_INIT;
	int rc = atex_buf_puts(&b, "file:");

	for (const unsigned char *p = (const unsigned char *)path; *p && !rc;
	     p++)
		rc = strchr("%?#", *p) || *p < 0x21 || *p > 0x7e
			     ? atex_buf_printf(&b, "%%%02X", *p)
			     : atex_buf_putc(&b, (char)*p);
	if (!rc)
		rc = atex_buf_puts(&b, "?immutable=1");
	if (rc) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

/* Whether the database's first statement works (an open succeeds
 * lazily: a WAL database in a read-only folder fails at the first
 * read). */
static int probe(sqlite3 *db)
{
	return sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL,
			    NULL, NULL);
}

static bool no_write_access(int code)
{
	code &= 0xff;
	return code == SQLITE_CANTOPEN || code == SQLITE_READONLY;
}

int atex_sqlite_open_read(struct sqlite3 **out, const char *path)
{
	sqlite3 *db = NULL;
	char *uri;
	int src, rc;

	*out = NULL;
	src = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	/* Other failures of the first read (not a database...) are the
	 * caller's to report, in its words. */
	if (src == SQLITE_OK && !no_write_access(probe(db))) {
		*out = db;
		return 0;
	}
	if (src != SQLITE_OK && !no_write_access(src)) {
		rc = db ? atex_error_set(ATEX_EIO, "%s: %s", path,
					 sqlite3_errmsg(db))
			: atex_error_oom();
		sqlite3_close(db);
		return rc;
	}
	sqlite3_close(db);
	db = NULL;
	uri = immutable_uri(path);
	if (!uri)
		return atex_error_oom();
	atex_debug("sqlite", "%s: not writable here, read as immutable", path);
	src = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
			      NULL);
	free(uri);
	if (src != SQLITE_OK) {
		rc = db ? atex_error_set(ATEX_EIO, "%s: %s", path,
					 sqlite3_errmsg(db))
			: atex_error_oom();
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}
