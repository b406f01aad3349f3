/*
 * parallel.c - running one function on several threads at once.
 *
 * Loading a big metadata tree is CPU work that splits into independent
 * pieces (files to parse, subtrees to merge, nodes to adjust); on a
 * machine with several cores those run side by side. The function itself
 * shares out the work (typically through an atomic counter in `arg`), so
 * when a thread cannot be started the others simply do more.
 */
#include <pthread.h>
#include <unistd.h>

#include "util/util.h"

#define MAX_THREADS 8

struct runner {
	pthread_t thread;
	void (*fn)(void *arg);
	void *arg;
};

static void *run(void *p)
{
	struct runner *r = p;

	r->fn(r->arg);
	return NULL;
}

size_t atex_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > MAX_THREADS ? MAX_THREADS : (size_t)n;
}

void atex_run_parallel(size_t n, void (*fn)(void *arg), void *arg)
{
	struct runner runners[MAX_THREADS];
	size_t started = 0;

	if (n > MAX_THREADS)
		n = MAX_THREADS;
	for (size_t i = 1; i < n; i++) {
		runners[started] = (struct runner){.fn = fn, .arg = arg};
		if (pthread_create(&runners[started].thread, NULL, run,
				   &runners[started]) != 0)
			break;
		started++;
	}
	fn(arg);
	for (size_t i = 0; i < started; i++)
		pthread_join(runners[i].thread, NULL);
}
