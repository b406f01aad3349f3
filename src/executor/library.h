/*
 * library.h - private: fmf (BeakerLib) libraries a test requires, fetched
 * and laid out in the stage as tmt lays them out (library.c).
 */
#ifndef ATEX_EXECUTOR_LIBRARY_H
#define ATEX_EXECUTOR_LIBRARY_H

#include <jansson.h>

#include "atex/fmf.h"

/* The environment variable naming a clone cache kept across runs (and
 * shared by processes, flock()ed); unset: a temporary one per stage. */
#define FMF_LIBRARY_CACHE_ENV "ATEX_LIBRARY_CACHE"
/* Where the libraries go in the stage, and so in the work directory. */
#define FMF_LIBRARY_DIR "libs"

/*
 * Resolves the libraries in the `require`/`recommend` of every test of
 * `d`, recursively (a library's own require/recommend from its fmf node),
 * into stage_dir/libs/REPO/NAME. *out: an object, test name -> either
 * {"error": "..."} (a bad entry or a failed fetch: that test's result) or
 * {"require": [packages], "recommend": [packages]} with the packages of
 * its libraries, for the tests that have libraries only. Returns 0,
 * ATEX_EIO (the stage or the cache cannot be written), ATEX_ENOMEM.
 */
int fmf_libraries_stage(json_t **out, atex_fmf_discovery *d,
			const char *stage_dir);

/* Whether a `require`/`recommend` entry is a library (not a package). */
bool fmf_library_entry(const json_t *entry);

#endif /* ATEX_EXECUTOR_LIBRARY_H */
