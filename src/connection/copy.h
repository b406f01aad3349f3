/*
 * copy.h - private: what the connections' copy_from share on this
 * machine's side.
 */
#ifndef ATEX_CONNECTION_COPY_H
#define ATEX_CONNECTION_COPY_H

#include <stdbool.h>

/*
 * Prepares the local destination `dst` (absolute or relative to our
 * directory) of a download of `src` from the connection named `conn`: a
 * tree (`tree`) goes into dst, made with its missing parents; a file
 * replaces dst, whose parent is made, and dst must not be a directory
 * (ATEX_EINVAL naming both). Returns 0, ATEX_EINVAL, ATEX_EIO or
 * ATEX_ENOMEM.
 */
int atex_copy_from_prepare(const char *conn, const char *src, const char *dst,
			   bool tree);

#endif /* ATEX_CONNECTION_COPY_H */
