/*
 * connections.c - the connections the benchmarks measure, named by the
 * environment (bench/run-all.sh starts the servers and sets it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connections.h"
#include "util/util.h"

int bench_open_local(atex_connection **out)
{
	return atex_local_connection_new(out, NULL);
}

/* An ssh server named by the environment (a throwaway test server: host
 * keys are not checked): ATEX_BENCH_SSH_HOST, and optionally _PORT,
 * _USER, _KEY (a private key file). See bench/README.md for starting one
 * on 127.0.0.1. */
int bench_open_ssh(atex_connection **out)
{
	static const char *const options[] = {
		"StrictHostKeyChecking=no",
		"UserKnownHostsFile=/dev/null",
		NULL,
	};
	struct atex_ssh_options o = ATEX_SSH_OPTIONS_INIT;
	const char *port = getenv("ATEX_BENCH_SSH_PORT");

	o.host = getenv("ATEX_BENCH_SSH_HOST");
	if (!o.host)
		return atex_error_set(ATEX_EINVAL,
				      "ATEX_BENCH_SSH_HOST is not set");
	o.port = port ? atoi(port) : 0;
	o.user = getenv("ATEX_BENCH_SSH_USER");
	o.identity = getenv("ATEX_BENCH_SSH_KEY");
	o.options = options;
	return atex_ssh_connection_new(out, &o);
}

/* A running podman container named by the environment:
 * ATEX_BENCH_PODMAN_CONTAINER, and optionally ATEX_BENCH_PODMAN_ARGS,
 * global podman arguments separated by spaces ("--runtime runc
 * --cgroup-manager cgroupfs"). The connection copies them. */
int bench_open_podman(atex_connection **out)
{
	struct atex_podman_options o = ATEX_PODMAN_OPTIONS_INIT;
	const char *env = getenv("ATEX_BENCH_PODMAN_ARGS");
	const char *args[32];
	char buf[1024];
	size_t n = 0;

	o.container = getenv("ATEX_BENCH_PODMAN_CONTAINER");
	if (!o.container)
		return atex_error_set(ATEX_EINVAL,
				      "ATEX_BENCH_PODMAN_CONTAINER is not set");
	snprintf(buf, sizeof(buf), "%s", env ? env : "");
	for (char *tok = strtok(buf, " "); tok && n + 1 < ATEX_ARRAY_SIZE(args);
	     tok = strtok(NULL, " "))
		args[n++] = tok;
	args[n] = NULL;
	o.podman_args = args;
	return atex_podman_connection_new(out, &o);
}
