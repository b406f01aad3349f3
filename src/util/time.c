/*
 * time.c - the monotonic clock, in the unit atex reports durations in.
 */
#include <time.h>

#include "util/util.h"

double atex_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
