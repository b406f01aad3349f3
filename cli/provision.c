/*
 * provision.c - the provisioner options every system-using subcommand
 * shares (--local, --ssh, --podman and their companions), and turning them
 * into one atex_provisioner (--vm: VMs on QEMU, here or on a --vm-host;
 * --testing-farm: machines reserved from Testing Farm).
 *
 * Parsing is split from building so that a subcommand keeps one getopt
 * loop over its own options and these; every check that needs all the
 * options (exactly one kind, companions without their kind) waits for
 * cli_provision_build. Messages always name the option at fault.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

#define MAX_LOCAL	    1024
#define MAX_COUNT	    1024
#define MAX_VM_MEMORY	    (1024 * 1024) /* MiB */
#define MAX_VM_CPUS	    255
#define MAX_VM_BOOT_TIMEOUT 86400	   /* s */
#define MAX_TF_TIMEOUT	    (30 * 24 * 60) /* min */
#define MAX_TF_RETRIES	    1000
#define MAX_TF_POLL	    3600.0	  /* s */
#define MAX_JSON_FILE	    (1024 * 1024) /* bytes */

#define TF_USAGE                                                               \
	"  --testing-farm COMPOSE  machines reserved from Testing Farm "       \
	"(\"Fedora-41\")\n"                                                    \
	"                          API: $TESTING_FARM_API_URL (default\n"      \
	"                          https://api.testing-farm.io), token:\n"     \
	"                          $TESTING_FARM_API_TOKEN, never an "         \
	"option:\n"                                                            \
	"                          every user sees a process's "               \
	"arguments\n" TF_COMPANIONS_USAGE

/* The companions, also `atex tf reserve`'s usage. */
#define TF_COMPANIONS_USAGE                                                    \
	"    --arch ARCH           architecture (default x86_64)\n"            \
	"    --tf-pool POOL        the ranch's pool (default: the service's "  \
	"choice)\n"                                                            \
	"    --tf-timeout MIN      the service frees each machine MIN "        \
	"minutes\n"                                                            \
	"                          after its request, even if atex is "        \
	"killed\n"                                                             \
	"                          (default 60)\n"                             \
	"    --tf-hardware JSON    hardware requirements, a JSON object "      \
	"inline\n"                                                             \
	"                          or @FILE\n"                                 \
	"    --tf-source CIDR      the address atex connects from\n"           \
	"                          (ADDRESS[/PREFIX]), sent as an ingress\n"   \
	"                          rule: required on the public ranch\n"       \
	"    --tf-max-retries N    replace up to N reservations that die\n"    \
	"                          before their machine is ready (default "    \
	"10)\n"                                                                \
	"    --tf-poll SECONDS     how often a pending request is polled\n"    \
	"                          (default 10)\n"                             \
	"    --tf-skip-guest-setup skip the service's guest setup\n"           \
	"    --tf-os-cleaning      remove Testing Farm and Beaker leftovers\n" \
	"                          once after the first login\n"               \
	"    --identity FILE       the login key (FILE.pub goes in; "          \
	"default:\n"                                                           \
	"                          a key made for the run, removed at exit)\n" \
	"    --ssh-option OPT      an ssh -o option for the machines "         \
	"(repeatable)\n"

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
	"    --count N             at most N containers (run; default 1)\n"
	"    --podman-arg ARG      a global podman argument (repeatable)\n"
	"    --podman-run-arg ARG  a 'podman run' argument (repeatable)\n"
	"    --systemd             systemd as the containers' init (the\n"
	"                          image's /sbin/init): tests may reboot them\n"
	"  --vm IMAGE              throw-away QEMU VMs on overlays of IMAGE\n"
	"                          (qcow2 or raw; never written)\n"
	"    --vm-host [USER@]HOST[:PORT]\n"
	"                          run QEMU there over ssh (default: here;\n"
	"                          --ssh-option and --ssh-strict-host-keys\n"
	"                          apply to it)\n"
	"    --count N             at most N VMs at once (run; default 1)\n"
	"    --identity FILE       the VMs' login key (FILE.pub goes in;\n"
	"                          default: a key made for the run)\n"
	"    --vm-memory MiB       memory of each VM (default 1024)\n"
	"    --vm-cpus N           vCPUs of each VM (default 1)\n"
	"    --vm-accel auto|kvm|tcg\n"
	"                          accelerator (default auto: KVM when a\n"
	"                          boot probe shows it works)\n"
	"    --vm-firmware bios|uefi\n"
	"                          firmware (default bios; uefi needs OVMF)\n"
	"    --vm-key credential|seed|both\n"
	"                          how the key goes in: systemd credential,\n"
	"                          cloud-init seed, or both (default)\n"
	"    --vm-kernel FILE      boot this kernel directly\n"
	"      --vm-initrd FILE    with this initrd\n"
	"      --vm-cmdline TEXT   with this kernel command line\n"
	"    --vm-boot-timeout S   seconds until ssh must work (default 300)\n"
	"    --vm-arg ARG          an extra QEMU argument "
	"(repeatable)\n" TF_USAGE
	"    --count N             at most N machines at once (run; 1)\n";

const char cli_tf_usage[] = TF_COMPANIONS_USAGE;

int cli_provision_init(struct cli_provision *p, int argc)
{
	size_t n = (size_t)argc + 1; /* room for every argument and NULL */

	memset(p, 0, sizeof(*p));
	p->ssh = calloc(n, sizeof(*p->ssh));
	p->ssh_options = calloc(n, sizeof(*p->ssh_options));
	p->podman_args = calloc(n, sizeof(*p->podman_args));
	p->podman_run_args = calloc(n, sizeof(*p->podman_run_args));
	p->vm_args = calloc(n, sizeof(*p->vm_args));
	if (!p->ssh || !p->ssh_options || !p->podman_args ||
	    !p->podman_run_args || !p->vm_args) {
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
	free(p->vm_args);
	free(p->tf_hardware_text);
	free(p->tf_source_cidr);
	memset(p, 0, sizeof(*p));
}

/* A whole number min..max (min >= 1), or 0 after printing a message
 * naming `option`. */
static int parse_range(const char *option, const char *arg, int min, int max)
{
	char *end;
	long n = strtol(arg, &end, 10);

	/* strtol skips leading blanks and takes a sign: " 3" would pass
	 * where "3 " does not. A number starts with a digit. */
	if (!isdigit((unsigned char)arg[0]) || end == arg || *end || n < min ||
	    n > max) {
		cli_error("%s: '%s' is not a number from %d to %d", option, arg,
			  min, max);
		return 0;
	}
	return (int)n;
}

static int parse_count(const char *option, const char *arg, int max)
{
	return parse_range(option, arg, 1, max);
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

/* Sets *slot to 1 + the index of `arg` among `words` (NULL-terminated):
 * 1, or CLI_USAGE with a message listing the words. */
static int set_word(int *slot, const char *option, const char *arg,
		    const char *const *words, const char *choices)
{
	if (*slot) {
		cli_error("%s given twice", option);
		return CLI_USAGE;
	}
	for (int i = 0; words[i]; i++) {
		if (!strcmp(arg, words[i])) {
			*slot = i + 1;
			return 1;
		}
	}
	cli_error("%s: '%s' is not %s", option, arg, choices);
	return CLI_USAGE;
}

static int vm_option(struct cli_provision *p, int opt, const char *arg)
{
	static const char *const accels[] = {"auto", "kvm", "tcg", NULL};
	static const char *const firmwares[] = {"bios", "uefi", NULL};
	static const char *const keys[] = {"credential", "seed", "both", NULL};

	switch (opt) {
	case CLI_OPT_VM:
		return set_once(&p->vm, "--vm", arg);
	case CLI_OPT_VM_HOST:
		return set_once(&p->vm_host, "--vm-host", arg);
	case CLI_OPT_VM_MEMORY:
		if (p->vm_memory) {
			cli_error("--vm-memory given twice");
			return CLI_USAGE;
		}
		p->vm_memory =
			parse_range("--vm-memory", arg, 64, MAX_VM_MEMORY);
		return p->vm_memory ? 1 : CLI_USAGE;
	case CLI_OPT_VM_CPUS:
		return set_number(&p->vm_cpus, "--vm-cpus", arg, MAX_VM_CPUS);
	case CLI_OPT_VM_BOOT_TIMEOUT:
		return set_number(&p->vm_boot_timeout, "--vm-boot-timeout", arg,
				  MAX_VM_BOOT_TIMEOUT);
	case CLI_OPT_VM_ACCEL:
		return set_word(&p->vm_accel, "--vm-accel", arg, accels,
				"auto, kvm or tcg");
	case CLI_OPT_VM_FIRMWARE:
		return set_word(&p->vm_firmware, "--vm-firmware", arg,
				firmwares, "bios or uefi");
	case CLI_OPT_VM_KEY:
		return set_word(&p->vm_key, "--vm-key", arg, keys,
				"credential, seed or both");
	case CLI_OPT_VM_ARG:
		p->vm_args[p->n_vm_args++] = arg;
		return 1;
	case CLI_OPT_VM_KERNEL:
		return set_once(&p->vm_kernel, "--vm-kernel", arg);
	case CLI_OPT_VM_INITRD:
		return set_once(&p->vm_initrd, "--vm-initrd", arg);
	case CLI_OPT_VM_CMDLINE:
		return set_once(&p->vm_cmdline, "--vm-cmdline", arg);
	}
	return 0;
}

/* The text of a JSON option: `arg` itself, or FILE's content for
 * "@FILE" (kept in *owned). Checked to be a JSON object, so that a typo
 * is named here rather than by the service. The text, or NULL after a
 * message naming `option`. */
static const char *json_option(char **owned, const char *option,
			       const char *arg)
{
	const char *text = arg;
	json_error_t error;
	json_t *value;

	if (arg[0] == '@') {
		FILE *f = fopen(arg + 1, "r");
		size_t n = 0;

		*owned = f ? calloc(1, MAX_JSON_FILE + 1) : NULL;
		if (*owned)
			n = fread(*owned, 1, MAX_JSON_FILE + 1, f);
		if (!f || !*owned || ferror(f) || n > MAX_JSON_FILE) {
			cli_error("%s: cannot read '%s': %s", option, arg + 1,
				  !f || ferror(f) ? strerror(errno)
				  : !*owned	  ? "out of memory"
						  : "larger than 1 MiB");
			if (f)
				fclose(f);
			return NULL;
		}
		fclose(f);
		text = *owned;
	}
	value = json_loads(text, JSON_REJECT_DUPLICATES, &error);
	if (!json_is_object(value)) {
		if (value)
			cli_error("%s: '%s' is not a JSON object", option, arg);
		else
			cli_error("%s: '%s': %s (line %d, column %d)", option,
				  arg, error.text, error.line, error.column);
		json_decref(value);
		return NULL;
	}
	json_decref(value);
	return text;
}

/* --tf-source: an IPv4 or IPv6 address with an optional prefix length
 * (none: the address alone, /32 or /128), kept as "ADDRESS/PREFIX". */
static int tf_source(struct cli_provision *p, const char *arg)
{
	char addr[INET6_ADDRSTRLEN + 1], *end;
	const char *slash = strchr(arg, '/');
	unsigned char buf[sizeof(struct in6_addr)];
	size_t len = slash ? (size_t)(slash - arg) : strlen(arg);
	int family = strchr(arg, ':') ? AF_INET6 : AF_INET;
	int max = family == AF_INET ? 32 : 128;
	long prefix = max;

	if (p->tf_source) {
		cli_error("--tf-source given twice");
		return CLI_USAGE;
	}
	if (len >= sizeof(addr))
		len = sizeof(addr) - 1; /* too long: inet_pton refuses it */
	memcpy(addr, arg, len);
	addr[len] = '\0';
	if (slash) {
		prefix = strtol(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || end == slash + 1 ||
		    *end || prefix < 0 || prefix > max)
			prefix = -1;
	}
	if (inet_pton(family, addr, buf) != 1 || prefix < 0) {
		cli_error("--tf-source: '%s' is not an address with an "
			  "optional prefix (1.2.3.4/32, 2001:db8::/64)",
			  arg);
		return CLI_USAGE;
	}
	if (asprintf(&p->tf_source_cidr, "%s/%ld", addr, prefix) < 0) {
		p->tf_source_cidr = NULL;
		cli_error("out of memory");
		return CLI_USAGE;
	}
	p->tf_source = arg;
	return 1;
}

/* --tf-poll: seconds, fractions allowed (tests poll fast). */
static int tf_poll(struct cli_provision *p, const char *arg)
{
	char *end;
	double s = strtod(arg, &end);

	if (p->tf_poll_ms) {
		cli_error("--tf-poll given twice");
		return CLI_USAGE;
	}
	if ((!isdigit((unsigned char)arg[0]) && arg[0] != '.') || end == arg ||
	    *end || !(s >= 0.01 && s <= MAX_TF_POLL)) {
		cli_error("--tf-poll: '%s' is not a number of seconds from "
			  "0.01 to %.0f",
			  arg, MAX_TF_POLL);
		return CLI_USAGE;
	}
	p->tf_poll_ms = (int)(s * 1000 + 0.5); /* no libm */
	return 1;
}

/* --tf-max-retries: 0 (none) is a value here. */
static int tf_max_retries(struct cli_provision *p, const char *arg)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (p->tf_max_retries) {
		cli_error("--tf-max-retries given twice");
		return CLI_USAGE;
	}
	if (!isdigit((unsigned char)arg[0]) || end == arg || *end || n < 0 ||
	    n > MAX_TF_RETRIES) {
		cli_error("--tf-max-retries: '%s' is not a number from 0 to %d",
			  arg, MAX_TF_RETRIES);
		return CLI_USAGE;
	}
	p->tf_max_retries = (int)n + 1;
	return 1;
}

static int tf_option(struct cli_provision *p, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_TF:
		if (!p->tf && !*arg) {
			cli_error("--testing-farm: the compose is empty");
			return CLI_USAGE;
		}
		return set_once(&p->tf, "--testing-farm", arg);
	case CLI_OPT_TF_ARCH:
		if (!*arg) {
			cli_error("--arch: empty (x86_64, aarch64...)");
			return CLI_USAGE;
		}
		return set_once(&p->tf_arch, "--arch", arg);
	case CLI_OPT_TF_POOL:
		return set_once(&p->tf_pool, "--tf-pool", arg);
	case CLI_OPT_TF_TIMEOUT:
		return set_number(&p->tf_timeout, "--tf-timeout", arg,
				  MAX_TF_TIMEOUT);
	case CLI_OPT_TF_HARDWARE:
		if (p->tf_hardware) {
			cli_error("--tf-hardware given twice");
			return CLI_USAGE;
		}
		p->tf_hardware =
			json_option(&p->tf_hardware_text, "--tf-hardware", arg);
		return p->tf_hardware ? 1 : CLI_USAGE;
	case CLI_OPT_TF_SOURCE:
		return tf_source(p, arg);
	case CLI_OPT_TF_POLL:
		return tf_poll(p, arg);
	case CLI_OPT_TF_SKIP_GUEST_SETUP:
		p->tf_skip_guest_setup = true;
		return 1;
	case CLI_OPT_TF_OS_CLEANING:
		p->tf_os_cleaning = true;
		return 1;
	case CLI_OPT_TF_MAX_RETRIES:
		return tf_max_retries(p, arg);
	}
	return 0;
}

int cli_provision_option(struct cli_provision *p, int opt, const char *arg)
{
	int rc;

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
	rc = vm_option(p, opt, arg);
	return rc ? rc : tf_option(p, opt, arg);
}

/* A --vm companion given without --vm, or a direct-boot option without
 * --vm-kernel: its message, or NULL. */
static const char *vm_alone(const struct cli_provision *p)
{
	const struct {
		bool given;
		const char *message;
	} companions[] = {
		{p->vm_host, "--vm-host needs --vm"},
		{p->vm_memory, "--vm-memory needs --vm"},
		{p->vm_cpus, "--vm-cpus needs --vm"},
		{p->vm_accel, "--vm-accel needs --vm"},
		{p->n_vm_args, "--vm-arg needs --vm"},
		{p->vm_kernel, "--vm-kernel needs --vm"},
		{p->vm_initrd, "--vm-initrd needs --vm"},
		{p->vm_cmdline, "--vm-cmdline needs --vm"},
		{p->vm_boot_timeout, "--vm-boot-timeout needs --vm"},
		{p->vm_firmware, "--vm-firmware needs --vm"},
		{p->vm_key, "--vm-key needs --vm"},
	};

	for (size_t i = 0;
	     !p->vm && i < sizeof(companions) / sizeof(companions[0]); i++)
		if (companions[i].given)
			return companions[i].message;
	if (!p->vm_kernel && p->vm_initrd)
		return "--vm-initrd needs --vm-kernel";
	if (!p->vm_kernel && p->vm_cmdline)
		return "--vm-cmdline needs --vm-kernel";
	return NULL;
}

/* A --testing-farm companion given without it: its message, or NULL. */
static const char *tf_alone(const struct cli_provision *p)
{
	const struct {
		bool given;
		const char *message;
	} companions[] = {
		{p->tf_arch, "--arch needs --testing-farm"},
		{p->tf_pool, "--tf-pool needs --testing-farm"},
		{p->tf_timeout, "--tf-timeout needs --testing-farm"},
		{p->tf_hardware, "--tf-hardware needs --testing-farm"},
		{p->tf_source, "--tf-source needs --testing-farm"},
		{p->tf_poll_ms, "--tf-poll needs --testing-farm"},
		{p->tf_skip_guest_setup,
		 "--tf-skip-guest-setup needs --testing-farm"},
		{p->tf_os_cleaning, "--tf-os-cleaning needs --testing-farm"},
		{p->tf_max_retries, "--tf-max-retries needs --testing-farm"},
	};

	for (size_t i = 0;
	     !p->tf && i < sizeof(companions) / sizeof(companions[0]); i++)
		if (companions[i].given)
			return companions[i].message;
	return NULL;
}

/* Companion options given without their kind; CLI_OK or CLI_USAGE. The
 * ssh options also serve the --vm-host connection, --identity the VMs'
 * login, --count the VMs. */
static int check_companions(const struct cli_provision *p)
{
	bool ssh_host = p->n_ssh || p->vm_host;
	const char *alone = NULL;

	if (!p->n_ssh && !p->vm && !p->tf && p->identity)
		alone = "--identity needs --ssh, --vm or --testing-farm";
	else if (!ssh_host && !p->tf && p->n_ssh_options)
		alone = "--ssh-option needs --ssh, --vm-host or --testing-farm";
	else if (!ssh_host && p->ssh_strict_host_keys)
		alone = "--ssh-strict-host-keys needs --ssh or --vm-host";
	else if (!p->podman && !p->vm && !p->tf && p->count)
		alone = "--count needs --podman, --vm or --testing-farm";
	else if (!p->podman && p->n_podman_args)
		alone = "--podman-arg needs --podman";
	else if (!p->podman && p->n_podman_run_args)
		alone = "--podman-run-arg needs --podman";
	else if (!p->podman && p->systemd)
		alone = "--systemd needs --podman";
	else if (!(alone = vm_alone(p)))
		alone = tf_alone(p);
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

/* --vm-host "[USER@]HOST[:PORT]" (an IPv6 address in brackets), the
 * syntax of --ssh hosts, parsed in place into `copy` (a strdup of the
 * value) and set in *o. CLI_OK or CLI_USAGE (printed, quoting it). */
static int parse_vm_host(struct atex_ssh_options *o, char *copy,
			 const char *value)
{
	char *host = copy, *at = strchr(copy, '@'), *port = NULL, *end;
	const char *why = NULL;
	long n = 0;

	if (at) {
		*at = '\0';
		o->user = copy;
		host = at + 1;
	}
	if (*host == '[') {
		end = strchr(host, ']');
		port = end && end[1] == ':' ? end + 2 : NULL;
		if (!end || (end[1] && !port))
			why = "expected [ADDRESS] or [ADDRESS]:PORT";
		else
			*end = '\0';
		host++;
	} else if ((port = strchr(host, ':')) && strchr(port + 1, ':')) {
		why = "an IPv6 address goes in brackets: [ADDRESS]:PORT";
	} else if (port) {
		*port++ = '\0';
	}
	if (!why && port) {
		n = strtol(port, &end, 10);
		if (!isdigit((unsigned char)*port) || end == port || *end ||
		    n < 1 || n > 65535)
			why = "the port is not a number 1-65535";
	}
	if (!why && (at && !*copy))
		why = "expected USER@HOST";
	else if (!why && (!*host || strchr(host, '@')))
		why = "expected [USER@]HOST[:PORT]";
	else if (!why && (*host == '-' || (o->user && *o->user == '-')))
		why = "a user or host may not start with '-'";
	if (why) {
		cli_error("--vm-host: bad host '%s': %s", value, why);
		return CLI_USAGE;
	}
	o->host = host;
	o->port = (int)n;
	return CLI_OK;
}

static int build_vm(struct atex_provisioner **out,
		    const struct cli_provision *p)
{
	struct atex_qemu_provisioner_options opts =
		ATEX_QEMU_PROVISIONER_OPTIONS_INIT;
	struct atex_ssh_options host = ATEX_SSH_OPTIONS_INIT;
	char *host_copy = NULL;
	int rc = CLI_OK;

	opts.image = p->vm;
	opts.count = p->count ? p->count : 1;
	opts.memory_mib = p->vm_memory;
	opts.cpus = p->vm_cpus;
	if (p->vm_accel)
		opts.accel = (enum atex_vm_accel)(p->vm_accel - 1);
	if (p->vm_firmware)
		opts.firmware = (enum atex_vm_firmware)(p->vm_firmware - 1);
	opts.key = (unsigned int)p->vm_key; /* credential 1, seed 2, both 3 */
	opts.kernel = p->vm_kernel;
	opts.initrd = p->vm_initrd;
	opts.cmdline = p->vm_cmdline;
	opts.qemu_args = p->n_vm_args ? p->vm_args : NULL;
	opts.boot_timeout_s = p->vm_boot_timeout;
	opts.identity = p->identity;
	if (p->vm_host) {
		host_copy = strdup(p->vm_host);
		if (!host_copy) {
			cli_error("out of memory");
			return CLI_USAGE;
		}
		rc = parse_vm_host(&host, host_copy, p->vm_host);
		host.identity = p->identity;
		host.options = p->n_ssh_options ? p->ssh_options : NULL;
		host.strict_host_keys = p->ssh_strict_host_keys;
		opts.host = &host;
	}
	if (rc == CLI_OK && atex_qemu_provisioner_new(out, &opts) < 0)
		rc = cli_fail(p->vm_host ? "--vm-host" : "--vm");
	free(host_copy);
	return rc;
}

/* Kept for the whole process (never freed: one string). */
static char *tf_token;

const char *cli_tf_token(void)
{
	static bool read;
	const char *env;

	if (read)
		return tf_token;
	read = true;
	env = getenv("TESTING_FARM_API_TOKEN");
	if (env && *env)
		tf_token = strdup(env);
	/* ssh, podman and local tests' commands are our children: the
	 * token is none of their business. */
	unsetenv("TESTING_FARM_API_TOKEN");
	return tf_token;
}

int cli_tf_check_env(const char *what)
{
	const char *url = getenv("TESTING_FARM_API_URL");

	if (url && !*url) {
		cli_error("%s: TESTING_FARM_API_URL is empty: unset it for "
			  "https://api.testing-farm.io, or set the API's URL",
			  what);
		return CLI_USAGE;
	}
	if (!cli_tf_token()) {
		cli_error("%s: no API token: set TESTING_FARM_API_TOKEN (it "
			  "is never an option)",
			  what);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* The token comes from the environment only (--help says why); without
 * one, say so here rather than after the first request's 401. */
static int build_tf(struct atex_provisioner **out,
		    const struct cli_provision *p)
{
	struct atex_testingfarm_provisioner_options opts =
		ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT;

	if (cli_tf_check_env("--testing-farm") != CLI_OK)
		return CLI_USAGE;
	opts.api.token = cli_tf_token();
	opts.compose = p->tf;
	opts.arch = p->tf_arch;
	opts.pool = p->tf_pool;
	opts.hardware = p->tf_hardware;
	opts.timeout_min = p->tf_timeout;
	opts.count = p->count ? p->count : 1;
	opts.max_retries = p->tf_max_retries == 1 ? -1
			   : p->tf_max_retries	  ? p->tf_max_retries - 1
						  : 0;
	opts.identity = p->identity;
	opts.source_cidr = p->tf_source_cidr;
	opts.skip_guest_setup = p->tf_skip_guest_setup;
	opts.os_cleaning = p->tf_os_cleaning;
	opts.ssh_options = p->n_ssh_options ? p->ssh_options : NULL;
	opts.poll_ms = p->tf_poll_ms;
	cli_log_testingfarm();
	if (atex_testingfarm_provisioner_new(out, &opts) < 0)
		return cli_fail("--testing-farm");
	return CLI_OK;
}

int cli_provision_build(struct atex_provisioner **out,
			const struct cli_provision *p)
{
	int kinds = (p->local > 0) + (p->n_ssh > 0) + (p->podman != NULL) +
		    (p->vm != NULL) + (p->tf != NULL);
	int rc;

	if (kinds > 1) {
		cli_error("choose one of --local, --ssh, --podman, --vm and "
			  "--testing-farm");
		return CLI_USAGE;
	}
	/* Before "no provisioner": `--vm-memory 512` alone is a forgotten
	 * --vm, and the message should say so. */
	rc = check_companions(p);
	if (rc != CLI_OK)
		return rc;
	if (kinds == 0) {
		cli_error("no provisioner: give --local N, --ssh HOST, "
			  "--podman IMAGE, --vm IMAGE or --testing-farm "
			  "COMPOSE");
		return CLI_USAGE;
	}
	if (p->n_ssh)
		return build_ssh(out, p);
	if (p->podman)
		return build_podman(out, p);
	if (p->vm)
		return build_vm(out, p);
	if (p->tf)
		return build_tf(out, p);
	if (atex_local_provisioner_new(out, p->local) < 0)
		return cli_fail("--local");
	return CLI_OK;
}

int cli_provision_one_system(const struct cli_provision *p, const char *what)
{
	/* Only the kinds that take --count: alone, its own message says
	 * which it needs. */
	if (!p->count || !(p->podman || p->vm || p->tf))
		return CLI_OK;
	cli_error("%s: --count: %s uses one system (--count is for atex run)",
		  what, what);
	return CLI_USAGE;
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
