/*
 * local.c - the local provisioner: `slots` systems that are all this
 * machine, each remote a local connection.
 *
 * It is the smallest complete provisioner, used to run tests on the
 * developer's own machine and to test orchestration without real systems.
 * Slots are allocated once, with their connections, and never freed
 * before the provisioner: a remote handle is then always valid memory
 * until atex_provisioner_free, so a late or repeated release is harmless.
 *
 * Accounting: `pending` counts requested systems not made yet; whenever a
 * slot is free and a request is pending, the slot goes into the ready
 * queue. A released slot is free again and is refilled while requests
 * remain, so provision(3) on one slot yields three remotes one after the
 * other, as with a real service.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "atex/provisioner.h"
#include "provisioner/queue.h"
#include "util/util.h"

enum slot_state {
	SLOT_FREE,   /* no system: may be filled */
	SLOT_QUEUED, /* in the ready queue */
	SLOT_OUT,    /* handed out by get_remote */
};

struct local_provisioner;

struct local_slot {
	struct atex_remote base; /* first: the remote handed out */
	struct local_provisioner *lp;
	atex_connection *conn;
	enum slot_state state;
	char name[32];
};

struct local_provisioner {
	struct atex_provisioner base;
	pthread_mutex_t lock; /* guards everything below but the queue */
	struct atex_remote_queue *ready;
	atex_cancel *abort; /* fired by abort and stop */
	bool started;
	long pending; /* LONG_MAX: unlimited */
	int n_slots;
	struct local_slot *slots;
};

#define to_lp(p) ((struct local_provisioner *)(p))

/* ------------------------------------------------------------------------
 * Remotes.
 */

static atex_connection *slot_connection(atex_remote *r)
{
	return ((struct local_slot *)r)->conn;
}

static const char *slot_name(const atex_remote *r)
{
	return ((const struct local_slot *)r)->name;
}

/* Queues free slots while requests are pending. Lock held. */
static int refill(struct local_provisioner *lp)
{
	int rc;

	for (int i = 0; i < lp->n_slots && lp->pending > 0; i++) {
		struct local_slot *s = &lp->slots[i];

		if (s->state != SLOT_FREE)
			continue;
		rc = atex_remote_queue_push(lp->ready, &s->base);
		if (rc < 0)
			return rc;
		s->state = SLOT_QUEUED;
		if (lp->pending != LONG_MAX)
			lp->pending--;
	}
	return 0;
}

static void slot_release(atex_remote *r)
{
	struct local_slot *s = (struct local_slot *)r;
	struct local_provisioner *lp = s->lp;

	pthread_mutex_lock(&lp->lock);
	/* Released twice, or after stop took it back: nothing to give. */
	if (s->state != SLOT_OUT)
		goto out;
	s->state = SLOT_FREE;
	if (lp->started && !atex_cancel_fired(lp->abort) && refill(lp) < 0)
		atex_log(ATEX_LOG_WARNING, "local", "%s: cannot queue: %s",
			 s->name, atex_error_last());
out:
	pthread_mutex_unlock(&lp->lock);
}

static const struct atex_remote_ops slot_ops = {
	.version = ATEX_REMOTE_OPS_VERSION,
	.connection = slot_connection,
	.name = slot_name,
	.release = slot_release,
};

/* ------------------------------------------------------------------------
 * The provisioner.
 */

/* Takes every queued slot back. Lock held. */
static void drain(struct local_provisioner *lp)
{
	atex_remote *r;

	while ((r = atex_remote_queue_take(lp->ready)))
		((struct local_slot *)r)->state = SLOT_FREE;
}

static int local_start(atex_provisioner *p)
{
	struct local_provisioner *lp = to_lp(p);

	pthread_mutex_lock(&lp->lock);
	if (!lp->started) {
		/* A new start after abort or stop begins afresh. */
		atex_cancel_reset(lp->abort);
		lp->pending = 0;
		lp->started = true;
	}
	pthread_mutex_unlock(&lp->lock);
	return 0;
}

static int local_stop(atex_provisioner *p)
{
	struct local_provisioner *lp = to_lp(p);

	pthread_mutex_lock(&lp->lock);
	atex_cancel_fire(lp->abort);
	drain(lp);
	/* Local systems hold nothing outside this process: taking the
	 * slots back is all releasing them takes. */
	for (int i = 0; i < lp->n_slots; i++)
		lp->slots[i].state = SLOT_FREE;
	lp->pending = 0;
	lp->started = false;
	pthread_mutex_unlock(&lp->lock);
	return 0;
}

static int local_provision(atex_provisioner *p, int count)
{
	struct local_provisioner *lp = to_lp(p);
	int rc = 0;

	pthread_mutex_lock(&lp->lock);
	if (!lp->started) {
		rc = atex_error_set(ATEX_EINVAL, "local: not started");
		goto out;
	}
	if (atex_cancel_fired(lp->abort)) {
		rc = atex_error_set(ATEX_ECANCELED, "local: aborted");
		goto out;
	}
	if (count == ATEX_PROVISION_UNLIMITED || lp->pending > LONG_MAX - count)
		lp->pending = LONG_MAX;
	else
		lp->pending += count;
	rc = refill(lp);
out:
	pthread_mutex_unlock(&lp->lock);
	return rc;
}

static int local_get_remote(atex_remote **out, atex_provisioner *p,
			    int timeout_ms)
{
	struct local_provisioner *lp = to_lp(p);
	struct local_slot *s;
	atex_remote *r;
	bool started;
	int rc;

	pthread_mutex_lock(&lp->lock);
	started = lp->started;
	pthread_mutex_unlock(&lp->lock);
	if (!started)
		return atex_error_set(ATEX_EINVAL, "local: not started");
	rc = atex_remote_queue_pop(&r, lp->ready, timeout_ms, lp->abort);
	if (rc < 0)
		return rc;
	s = (struct local_slot *)r;
	pthread_mutex_lock(&lp->lock);
	/* abort or stop may have come between the pop and now. */
	if (s->state != SLOT_QUEUED || atex_cancel_fired(lp->abort)) {
		if (s->state == SLOT_QUEUED)
			s->state = SLOT_FREE;
		rc = atex_error_set(ATEX_ECANCELED, "local: aborted");
	} else {
		s->state = SLOT_OUT;
		*out = r;
	}
	pthread_mutex_unlock(&lp->lock);
	return rc;
}

static int local_clear(atex_provisioner *p)
{
	struct local_provisioner *lp = to_lp(p);

	pthread_mutex_lock(&lp->lock);
	lp->pending = 0;
	pthread_mutex_unlock(&lp->lock);
	return 0;
}

static void local_abort(atex_provisioner *p)
{
	struct local_provisioner *lp = to_lp(p);

	pthread_mutex_lock(&lp->lock);
	atex_cancel_fire(lp->abort);
	drain(lp);
	lp->pending = 0;
	pthread_mutex_unlock(&lp->lock);
}

static int local_ready_fd(const atex_provisioner *p)
{
	return atex_remote_queue_fd(to_lp(p)->ready);
}

static const char *local_name(const atex_provisioner *p)
{
	return "local";
}

static void local_free(atex_provisioner *p)
{
	struct local_provisioner *lp = to_lp(p);

	for (int i = 0; lp->slots && i < lp->n_slots; i++)
		atex_connection_free(lp->slots[i].conn);
	free(lp->slots);
	atex_remote_queue_free(lp->ready);
	atex_cancel_free(lp->abort);
	pthread_mutex_destroy(&lp->lock);
	free(lp);
}

static const struct atex_provisioner_ops local_ops = {
	.version = ATEX_PROVISIONER_OPS_VERSION,
	.start = local_start,
	.stop = local_stop,
	.provision = local_provision,
	.get_remote = local_get_remote,
	.clear = local_clear,
	.abort = local_abort,
	.ready_fd = local_ready_fd,
	.name = local_name,
	.free = local_free,
};

static int slots_new(struct local_provisioner *lp)
{
	int rc;

	lp->slots = atex_calloc((size_t)lp->n_slots, sizeof(*lp->slots));
	if (!lp->slots)
		return ATEX_ENOMEM;
	for (int i = 0; i < lp->n_slots; i++) {
		struct local_slot *s = &lp->slots[i];

		s->base.ops = &slot_ops;
		s->lp = lp;
		snprintf(s->name, sizeof(s->name), "local:%d", i + 1);
		rc = atex_local_connection_new(&s->conn, NULL);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int atex_local_provisioner_new(atex_provisioner **out, int slots)
{
	struct local_provisioner *lp;
	int rc;

	if (!out || slots < 1)
		return atex_error_set(ATEX_EINVAL,
				      "local: %d slots; at least one is needed",
				      slots);
	lp = atex_calloc(1, sizeof(*lp));
	if (!lp)
		return ATEX_ENOMEM;
	lp->base.ops = &local_ops;
	lp->n_slots = slots;
	pthread_mutex_init(&lp->lock, NULL);
	rc = atex_remote_queue_new(&lp->ready, "local");
	if (rc == 0)
		rc = atex_cancel_new(&lp->abort);
	if (rc == 0)
		rc = slots_new(lp);
	if (rc < 0) {
		local_free(&lp->base);
		return rc;
	}
	*out = &lp->base;
	return 0;
}
