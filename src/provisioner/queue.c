/*
 * queue.c - the ready queue of provisioner implementations (queue.h).
 *
 * A mutex-protected FIFO of remote pointers plus an eventfd whose counter
 * is kept at 1 while the queue has something to say (a remote, or a
 * failure for good) and at 0 otherwise, so that the eventfd can serve as
 * the provisioner's ready_fd and as the descriptor get_remote() polls.
 * Waiters poll without holding the lock and re-check under it: with
 * several waiters only one gets each remote, the others wait again for
 * what is left of their timeout.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "provisioner/queue.h"
#include "util/process.h"
#include "util/util.h"

struct atex_remote_queue {
	pthread_mutex_t lock;
	struct atex_vec items; /* oldest first */
	int fd;		       /* eventfd, counter 0 or 1 */
	bool signalled;	       /* the counter is 1 */
	int fail_code;	       /* < 0: failed for good */
	char *fail_message;
	char *name;
};

int atex_remote_queue_new(struct atex_remote_queue **out, const char *name)
{
	struct atex_remote_queue *q;

	q = atex_calloc(1, sizeof(*q));
	if (!q)
		return ATEX_ENOMEM;
	q->name = atex_strdup(name ? name : "provisioner");
	if (!q->name) {
		free(q);
		return ATEX_ENOMEM;
	}
	q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->fd < 0) {
		int rc = atex_error_set(ATEX_EIO, "%s: eventfd: %s", q->name,
					strerror(errno));

		free(q->name);
		free(q);
		return rc;
	}
	pthread_mutex_init(&q->lock, NULL);
	*out = q;
	return 0;
}

void atex_remote_queue_free(struct atex_remote_queue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	close(q->fd);
	atex_vec_free(&q->items);
	free(q->fail_message);
	free(q->name);
	free(q);
}

/* Makes the eventfd readable exactly while a pop would return at once.
 * Called with the lock held after every change. */
static void sync_fd(struct atex_remote_queue *q)
{
	bool want = q->items.len > 0 || q->fail_code < 0;
	uint64_t value = 1;

	if (want == q->signalled)
		return;
	/* Neither can fail: the counter only moves between 0 and 1. */
	if (want)
		(void)!write(q->fd, &value, sizeof(value));
	else
		(void)!read(q->fd, &value, sizeof(value));
	q->signalled = want;
}

int atex_remote_queue_push(struct atex_remote_queue *q, atex_remote *r)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = atex_vec_push(&q->items, r);
	if (rc == 0)
		sync_fd(q);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* Removes the oldest item; the lock is held and the queue not empty. */
static atex_remote *shift(struct atex_remote_queue *q)
{
	atex_remote *r = q->items.items[0];

	q->items.len--;
	memmove(q->items.items, q->items.items + 1,
		q->items.len * sizeof(*q->items.items));
	sync_fd(q);
	return r;
}

atex_remote *atex_remote_queue_take(struct atex_remote_queue *q)
{
	atex_remote *r = NULL;

	pthread_mutex_lock(&q->lock);
	if (q->items.len > 0)
		r = shift(q);
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* One look under the lock: 1 with *out set, a failure code, or 0 when
 * there is nothing yet. */
static int try_pop(atex_remote **out, struct atex_remote_queue *q)
{
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	if (q->items.len > 0) {
		*out = shift(q);
		rc = 1;
	} else if (q->fail_code < 0) {
		rc = atex_error_set(q->fail_code, "%s",
				    q->fail_message ? q->fail_message
						    : "provisioning failed");
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int atex_remote_queue_pop(atex_remote **out, struct atex_remote_queue *q,
			  int timeout_ms, atex_cancel *cancel)
{
	double deadline = atex_monotonic_ms() + timeout_ms;
	int rc, wait_ms = timeout_ms;

	for (;;) {
		/* An aborted provisioner hands out nothing, even if a remote
		 * slipped into the queue meanwhile. */
		if (cancel && atex_cancel_fired(cancel))
			return atex_error_set(ATEX_ECANCELED, "%s: aborted",
					      q->name);
		rc = try_pop(out, q);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		if (timeout_ms >= 0) {
			wait_ms = (int)(deadline - atex_monotonic_ms());
			if (wait_ms <= 0)
				break;
		}
		rc = atex_wait_fd(q->fd, POLLIN, wait_ms, cancel);
		if (rc == ATEX_ECANCELED)
			return atex_error_set(rc, "%s: aborted", q->name);
		if (rc < 0 && rc != ATEX_ETIMEDOUT)
			return rc;
	}
	return atex_error_set(ATEX_ETIMEDOUT,
			      "%s: no remote ready within %d ms", q->name,
			      timeout_ms);
}

void atex_remote_queue_fail(struct atex_remote_queue *q, int code,
			    const char *message)
{
	char *copy = code < 0 ? strdup(message ? message : "failed") : NULL;

	/* Without memory for the message, the code alone still gets out. */
	pthread_mutex_lock(&q->lock);
	free(q->fail_message);
	q->fail_message = copy;
	q->fail_code = code < 0 ? code : 0;
	sync_fd(q);
	pthread_mutex_unlock(&q->lock);
}

int atex_remote_queue_fd(const struct atex_remote_queue *q)
{
	return q->fd;
}
