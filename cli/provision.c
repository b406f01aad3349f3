/*
 * provision.c - the provisioner options every system-using subcommand
 * shares (--local, --ssh, --podman and their companions), and turning them
 * into one atex_provisioner.
 *
 * Parsing is split from building so that a subcommand keeps one getopt
 * loop over its own options and these; every check that needs all the
 * options (exactly one kind, companions without their kind) waits for
 * cli_provision_build. Messages always name the option at fault.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

#define MAX_LOCAL 1024
#define MAX_COUNT 1024

const char cli_provision_usage[] =
	"provisioner (exactly one kind):\n"
	"  --local N               N slots on this machine\n"
	"  --ssh [USER@]HOST[:PORT]\n"
	"                          an SSH machine (repeatable; IPv6 in [])\n"
	"    --identity FILE       private key for all SSH machines\n"
	"    --ssh-option OPT      an ssh -o option (repeatable)\n"
	"    --ssh-strict-host-keys\n"
	"                          check host keys against ~/.ssh/known_hosts\n"
	"                          (default: accept a machine's key at the\n"
	"                          first connect and pin it for the run)\n"
	"  --podman IMAGE          containers from IMAGE\n"
	"    --count N             at most N containers (default 1)\n"
	"    --podman-arg ARG      a global podman argument (repeatable)\n"
	"    --podman-run-arg ARG  a 'podman run' argument (repeatable)\n"
	"    --systemd             systemd as the containers' init (the\n"
	"                          image's /sbin/init): tests may reboot them\n";

int cli_provision_init(struct cli_provision *p, int argc)
{
	size_t n = (size_t)argc + 1; /* room for every argument and NULL */

	memset(p, 0, sizeof(*p));
	p->ssh = calloc(n, sizeof(*p->ssh));
	p->ssh_options = calloc(n, sizeof(*p->ssh_options));
	p->podman_args = calloc(n, sizeof(*p->podman_args));
	p->podman_run_args = calloc(n, sizeof(*p->podman_run_args));
	if (!p->ssh || !p->ssh_options || !p->podman_args ||
	    !p->podman_run_args) {
		cli_error("out of memory");
		return CLI_USAGE;
	}
	return CLI_OK;
}

void cli_provision_free(struct cli_provision *p)
{
	free(p->ssh);
	free(p->ssh_options);
	free(p->podman_args);
	free(p->podman_run_args);
	memset(p, 0, sizeof(*p));
}

/* A whole number 1..max, or 0 after printing a message naming `option`. */
static int parse_count(const char *option, const char *arg, int max)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (end == arg || *end || n < 1 || n > max) {
		cli_error("%s: '%s' is not a number from 1 to %d", option, arg,
			  max);
		return 0;
	}
	return (int)n;
}

/* Sets a once-only option; CLI_USAGE when given twice. */
static int set_once(const char **slot, const char *option, const char *arg)
{
	if (*slot) {
		cli_error("%s given twice", option);
		return CLI_USAGE;
	}
	*slot = arg;
	return 1;
}

static int set_number(int *slot, const char *option, const char *arg, int max)
{
	if (*slot) {
		cli_error("%s given twice", option);
		return CLI_USAGE;
	}
	*slot = parse_count(option, arg, max);
	return *slot ? 1 : CLI_USAGE;
}

int cli_provision_option(struct cli_provision *p, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_LOCAL:
		return set_number(&p->local, "--local", arg, MAX_LOCAL);
	case CLI_OPT_SSH:
		p->ssh[p->n_ssh++] = arg;
		return 1;
	case CLI_OPT_IDENTITY:
		return set_once(&p->identity, "--identity", arg);
	case CLI_OPT_SSH_OPTION:
		p->ssh_options[p->n_ssh_options++] = arg;
		return 1;
	case CLI_OPT_SSH_STRICT_HOST_KEYS:
		p->ssh_strict_host_keys = true;
		return 1;
	case CLI_OPT_PODMAN:
		return set_once(&p->podman, "--podman", arg);
	case CLI_OPT_COUNT:
		return set_number(&p->count, "--count", arg, MAX_COUNT);
	case CLI_OPT_PODMAN_ARG:
		p->podman_args[p->n_podman_args++] = arg;
		return 1;
	case CLI_OPT_PODMAN_RUN_ARG:
		p->podman_run_args[p->n_podman_run_args++] = arg;
		return 1;
	case CLI_OPT_SYSTEMD:
		p->systemd = true;
		return 1;
	}
	return 0;
}

/* Companion options given without their kind; CLI_OK or CLI_USAGE. */
static int check_companions(const struct cli_provision *p)
{
	const char *alone = NULL;

	if (!p->n_ssh && p->identity)
		alone = "--identity needs --ssh";
	else if (!p->n_ssh && p->n_ssh_options)
		alone = "--ssh-option needs --ssh";
	else if (!p->n_ssh && p->ssh_strict_host_keys)
		alone = "--ssh-strict-host-keys needs --ssh";
	else if (!p->podman && p->count)
		alone = "--count needs --podman";
	else if (!p->podman && p->n_podman_args)
		alone = "--podman-arg needs --podman";
	else if (!p->podman && p->n_podman_run_args)
		alone = "--podman-run-arg needs --podman";
	else if (!p->podman && p->systemd)
		alone = "--systemd needs --podman";
	if (!alone)
		return CLI_OK;
	cli_error("%s", alone);
	return CLI_USAGE;
}

static int build_ssh(struct atex_provisioner **out,
		     const struct cli_provision *p)
{
	struct atex_ssh_options base = ATEX_SSH_OPTIONS_INIT;

	base.identity = p->identity;
	base.options = p->n_ssh_options ? p->ssh_options : NULL;
	base.strict_host_keys = p->ssh_strict_host_keys;
	if (atex_static_provisioner_new(out, p->ssh, &base) < 0)
		return cli_fail("--ssh");
	return CLI_OK;
}

static int build_podman(struct atex_provisioner **out,
			const struct cli_provision *p)
{
	struct atex_podman_provisioner_options opts =
		ATEX_PODMAN_PROVISIONER_OPTIONS_INIT;

	opts.image = p->podman;
	opts.count = p->count ? p->count : 1;
	opts.podman_args = p->n_podman_args ? p->podman_args : NULL;
	opts.run_args = p->n_podman_run_args ? p->podman_run_args : NULL;
	opts.systemd = p->systemd;
	if (atex_podman_provisioner_new(out, &opts) < 0)
		return cli_fail("--podman");
	return CLI_OK;
}

int cli_provision_build(struct atex_provisioner **out,
			const struct cli_provision *p)
{
	int kinds = (p->local > 0) + (p->n_ssh > 0) + (p->podman != NULL);
	int rc;

	if (kinds == 0) {
		cli_error("no provisioner: give --local N, --ssh HOST or "
			  "--podman IMAGE");
		return CLI_USAGE;
	}
	if (kinds > 1) {
		cli_error("choose one of --local, --ssh and --podman");
		return CLI_USAGE;
	}
	rc = check_companions(p);
	if (rc != CLI_OK)
		return rc;
	if (p->n_ssh)
		return build_ssh(out, p);
	if (p->podman)
		return build_podman(out, p);
	if (atex_local_provisioner_new(out, p->local) < 0)
		return cli_fail("--local");
	return CLI_OK;
}

int cli_provision_reserve(atex_remote **out, atex_provisioner *prov,
			  const struct cli_signals *signals, const char *what)
{
	int rc;

	*out = NULL;
	if (atex_provisioner_start(prov) < 0 ||
	    atex_provisioner_provision(prov, 1) < 0)
		return cli_fail(what);
	rc = atex_provisioner_get_remote(out, prov, -1);
	if (rc == ATEX_ECANCELED && cli_signals_received(signals))
		return CLI_FAILED;
	return rc < 0 ? cli_fail(what) : CLI_OK;
}
