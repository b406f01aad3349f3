/*
 * atex/atex.h - the umbrella header: include this to get the whole API.
 */
#ifndef ATEX_ATEX_H
#define ATEX_ATEX_H

#include "atex/common.h"
#include "atex/fmf.h"
#include "atex/connection.h"
#include "atex/provisioner.h"
#include "atex/executor.h"
#include "atex/aggregator.h"
#include "atex/orchestrator.h"
#include "atex/report.h"
#include "atex/history.h"

#endif /* ATEX_ATEX_H */
