/*
 * queue.h - private: the "ready queue" a provisioner implementation keeps
 * its ready remotes in, first in, first out.
 *
 * It exists so that every implementation gets the hard parts of the
 * provisioner contract right the same way: get_remote() blocks in poll()
 * with a timeout and a cancellation token (never a sleep loop), several
 * threads may wait at once, and the provisioner's ready_fd (the queue's
 * eventfd) is readable exactly while a get_remote would return at once:
 * while a remote is queued, or after the provisioner failed for good.
 *
 * The queue only stores pointers: it never releases or frees a remote.
 */
#ifndef ATEX_PROVISIONER_QUEUE_H
#define ATEX_PROVISIONER_QUEUE_H

#include "atex/provisioner.h"

struct atex_remote_queue;

/* An empty queue. `name` (copied) names the provisioner in messages.
 * Returns 0, ATEX_EIO (no eventfd) or ATEX_ENOMEM. */
int atex_remote_queue_new(struct atex_remote_queue **out, const char *name);

/* Frees the queue; remotes still in it are forgotten, not released (take
 * them out first). NULL is accepted. No thread may be waiting in pop. */
void atex_remote_queue_free(struct atex_remote_queue *q);

/* Appends a ready remote (the queue does not own it) and wakes one
 * waiter. Returns 0 or ATEX_ENOMEM. Any thread. */
int atex_remote_queue_push(struct atex_remote_queue *q, atex_remote *r);

/*
 * Takes the oldest remote, waiting at most timeout_ms (0: just look, -1:
 * no limit) or until `cancel` (may be NULL) fires. Returns 0 with *out
 * set, ATEX_ETIMEDOUT, ATEX_ECANCELED, or, once the queue is empty, the
 * failure recorded by atex_remote_queue_fail. Any thread.
 */
int atex_remote_queue_pop(atex_remote **out, struct atex_remote_queue *q,
			  int timeout_ms, atex_cancel *cancel);

/* Takes the oldest remote without waiting; NULL when empty. Used to empty
 * the queue on stop and abort. Any thread. */
atex_remote *atex_remote_queue_take(struct atex_remote_queue *q);

/*
 * Records that the provisioner failed for good (code < 0, message copied):
 * pop returns it once the queue is empty, and the fd stays readable so
 * that waiters wake up. code 0 forgets a recorded failure. Any thread.
 */
void atex_remote_queue_fail(struct atex_remote_queue *q, int code,
			    const char *message);

/* The eventfd readable (POLLIN) while pop would return at once. Owned by
 * the queue: never read it. */
int atex_remote_queue_fd(const struct atex_remote_queue *q);

#endif /* ATEX_PROVISIONER_QUEUE_H */
