/*
 * policy.h - what the ready policies share inside the library (private).
 */
#ifndef ATEX_ORCHESTRATOR_POLICY_H
#define ATEX_ORCHESTRATOR_POLICY_H

#include <stddef.h>

#include "atex/fmf.h"

/* A test's `duration` in seconds as tmt reads it (5m when missing or
 * bad; multipliers alone apply to 5m): what atex_policy_longest_first
 * orders by. */
double atex_policy_declared_duration(atex_fmf_discovery *d, size_t test);

#endif /* ATEX_ORCHESTRATOR_POLICY_H */
