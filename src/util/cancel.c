/*
 * cancel.c - cancellation tokens: one eventfd that every blocking wait in
 * atex polls next to the descriptor it is waiting for (DESIGN.md, "Threads,
 * cancellation and signals").
 *
 * Firing writes to the eventfd and is never undone by a waiter: nobody but
 * atex_cancel_reset reads the counter, so the descriptor stays readable and
 * every wait, present or future, sees it. An atomic flag mirrors the state
 * so atex_cancel_fired costs no system call. Both operations of fire (an
 * atomic store and write(2)) are async-signal-safe, so a signal handler or
 * a sigwait thread may fire a token. The eventfd is non-blocking so that
 * neither fire nor reset can ever block.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "atex/connection.h"
#include "util.h"

struct atex_cancel {
	int fd;
	atomic_bool fired;
};

int atex_cancel_new(atex_cancel **out)
{
	atex_cancel *cancel;

	*out = NULL;
	cancel = atex_malloc(sizeof(*cancel));
	if (!cancel)
		return ATEX_ENOMEM;
	cancel->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cancel->fd < 0) {
		int err = errno;

		free(cancel);
		return atex_error_set(ATEX_EIO, "cancel token: eventfd: %s",
				      strerror(err));
	}
	atomic_init(&cancel->fired, false);
	*out = cancel;
	return 0;
}

void atex_cancel_free(atex_cancel *cancel)
{
	if (!cancel)
		return;
	close(cancel->fd);
	free(cancel);
}

void atex_cancel_fire(atex_cancel *cancel)
{
	uint64_t one = 1;
	int saved = errno; /* a signal handler must not clobber errno */

	if (!cancel)
		return;
	atomic_store(&cancel->fired, true);
	/* Fails only with EAGAIN when the counter is near 2^64, and it is
	 * then readable anyway. */
	if (write(cancel->fd, &one, sizeof(one)) < 0)
		errno = saved;
}

bool atex_cancel_fired(const atex_cancel *cancel)
{
	if (!cancel)
		return false;
	return atomic_load((atomic_bool *)&cancel->fired);
}

void atex_cancel_reset(atex_cancel *cancel)
{
	uint64_t count;

	if (!cancel)
		return;
	atomic_store(&cancel->fired, false);
	/* Non-blocking: EAGAIN when it had not fired. */
	if (read(cancel->fd, &count, sizeof(count)) < 0)
		return;
}

int atex_cancel_fd(const atex_cancel *cancel)
{
	return cancel ? cancel->fd : -1;
}
