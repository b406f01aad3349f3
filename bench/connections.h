/*
 * connections.h - the connections benchmarks open: this machine, an ssh
 * server (ATEX_BENCH_SSH_HOST, _PORT, _USER, _KEY) and a running podman
 * container (ATEX_BENCH_PODMAN_CONTAINER, ATEX_BENCH_PODMAN_ARGS). Each
 * returns 0 or an error whose message is the reason to skip.
 */
#ifndef ATEX_BENCH_CONNECTIONS_H
#define ATEX_BENCH_CONNECTIONS_H

#include "atex/connection.h"

int bench_open_local(atex_connection **out);
int bench_open_ssh(atex_connection **out);
int bench_open_podman(atex_connection **out);

#endif /* ATEX_BENCH_CONNECTIONS_H */
