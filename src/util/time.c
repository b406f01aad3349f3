/*
 * time.c - the monotonic clock, in the unit atex reports durations in;
 * the shape of the ISO 8601 times atex writes.
 */
#include <ctype.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

double atex_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool atex_iso_time_ok(const char *iso)
{
	/* d: a digit; anything else: itself. */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	const char *p = iso;

	if (!iso || strlen(iso) >= 40 || strlen(iso) < sizeof(shape) - 1)
		return false;
	for (size_t i = 0; i < sizeof(shape) - 1; i++, p++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)*p)
				    : *p != shape[i])
			return false;
	if (*p == '.' && isdigit((unsigned char)p[1]))
		for (p++; isdigit((unsigned char)*p); p++)
			;
	/* No zone: UTC, as the readers take it. */
	if (*p == '\0')
		return true;
	if (*p == 'Z')
		return p[1] == '\0';
	return (*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	       isdigit((unsigned char)p[2]) && p[3] == ':' &&
	       isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]) &&
	       p[6] == '\0';
}
