/*
 * helpers.h - what the C integration tests share: formatted strings and
 * whole files (a failed allocation fails the test), and a fake rebootable
 * connection around a real one, so that reboots can be acted out and
 * their confirmation seen without rebooting anything.
 */
#ifndef ATEX_TESTS_HELPERS_H
#define ATEX_TESTS_HELPERS_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "atex/connection.h"

/* vasprintf, asserted. */
char *xsprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The whole file, NUL-terminated (it may hold NULs before; *len, when
 * not NULL, is its length), or NULL when it cannot be opened. */
char *slurp(const char *path, size_t *len);

/*
 * A connection around `inner` (borrowed) that says whether it can reboot
 * and whose boot id is the content of `boot_file` on the system (read
 * with `cat` over `inner`; its first line). `spawn`, when set, is called
 * instead of spawning on `inner` (to act a reboot command out); `name`
 * replaces the inner connection's name when set. Freed with
 * atex_connection_free (the inner one is not).
 */
struct fake_boot_conn {
	atex_connection base;
	atex_connection *inner;
	bool can_reboot;
	const char *name;
	char boot_file[PATH_MAX];
	atomic_int boot_reads;
	int (*spawn)(struct fake_boot_conn *f, atex_process **out,
		     const struct atex_spawn_options *opts);
};

struct fake_boot_conn *fake_boot_conn_new(atex_connection *inner,
					  bool can_reboot,
					  const char *boot_file);

#endif /* ATEX_TESTS_HELPERS_H */
