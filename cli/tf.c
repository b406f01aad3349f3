/*
 * tf.c - `atex tf`: the few Testing Farm chores a user needs by hand,
 * through the library's API client (atex_testingfarm_call) and provisioner:
 *
 *   whoami           the token's identity and ranch, the API's JSON
 *                    pretty-printed
 *   composes         the composes the API lists, one name a line
 *   reserve COMPOSE  one machine, held until Ctrl-C/TERM/HUP: prints the
 *                    ssh command that logs in, then waits; the signal
 *                    cancels the request and atex exits 0
 *   cancel ID...     cancels requests (exit 1 naming those that failed;
 *                    one already ended is not a failure)
 *
 * The API's URL and token come from TESTING_FARM_API_URL and
 * TESTING_FARM_API_TOKEN only (as the testing-farm CLI and tmt take
 * them): process arguments are visible to every user. Nothing here
 * prints the token; the library never puts it in a message.
 */
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atex/atex.h"
#include "cli.h"

/* How long whoami, composes and cancel ride out an API outage or a wrong
 * URL (the library's backoff; the first failure is shown): a person is
 * waiting. */
#define CALL_RETRY_S 60
/* How often `reserve` asks whether its request still lives, by default. */
#define RESERVE_CHECK_MS 30000

enum { OPT_HELP = 'h' };

/* After a usage error: where the whole usage is. */
static void short_usage(void)
{
	fputs("Run 'atex tf --help' for the subcommands and options.\n",
	      stderr);
}

static void tf_usage(FILE *out)
{
	fprintf(out,
		"usage: atex tf whoami\n"
		"       atex tf composes\n"
		"       atex tf reserve COMPOSE [OPTIONS]\n"
		"       atex tf cancel ID...\n"
		"\n"
		"Testing Farm by hand. The API is $TESTING_FARM_API_URL "
		"(default\n"
		"https://api.testing-farm.io), the token "
		"$TESTING_FARM_API_TOKEN: never\n"
		"an option, as every user sees a process's arguments.\n"
		"\n"
		"  whoami    the token's user and ranch (the API's JSON)\n"
		"  composes  the composes the API offers, one a line\n"
		"  reserve   reserve one machine of COMPOSE, print the ssh "
		"command that\n"
		"            logs in, and hold it until Ctrl-C (or TERM): "
		"then cancel\n"
		"            its request and exit 0; 1 if the request ends "
		"first,\n"
		"            130 on Ctrl-C before the machine is ready, 2 "
		"when its\n"
		"            reservation failed for good\n"
		"  cancel    cancel these requests (exit 1 naming those that "
		"failed;\n"
		"            one already ended counts as canceled)\n"
		"\n"
		"Exit status 2 on usage errors and when the API cannot be "
		"used.\n"
		"\n"
		"reserve's options:\n%s",
		cli_tf_usage);
}

/* The API options: the environment's URL and token (library defaults). */
static struct atex_testingfarm_api_options api_options(void)
{
	struct atex_testingfarm_api_options api =
		ATEX_TESTINGFARM_API_OPTIONS_INIT;

	api.retry_total_s = CALL_RETRY_S;
	api.token = cli_tf_token();
	return api;
}

/* A token is needed by every call but the state of one request: say so
 * before the first 401. */
static int need_token(const char *what)
{
	int rc = cli_tf_check_env(what);

	if (rc == CLI_OK)
		cli_log_api_retries(what, CALL_RETRY_S);
	return rc;
}

/* GETs `path` and parses the reply; CLI_OK with *out, or CLI_USAGE
 * (printed, prefixed `what`). */
static int get_json(json_t **out, const char *what, const char *path,
		    int retry_s, atex_cancel *cancel)
{
	struct atex_testingfarm_api_options api = api_options();
	json_error_t error;
	char *reply = NULL;
	long status = 0;

	*out = NULL;
	api.retry_total_s = retry_s;
	if (atex_testingfarm_call(&reply, &status, &api, "GET", path, NULL,
				  cancel) < 0)
		return cli_fail(what);
	*out = json_loads(reply, 0, &error);
	free(reply);
	if (!*out) {
		cli_error("%s: the API's reply to GET %s is not JSON: %s", what,
			  path, error.text);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* A subcommand without arguments or options (but --help). */
static int no_arguments(int argc, char **argv)
{
	if (argc == 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		tf_usage(stdout);
		return -1;
	}
	if (argc > 1) {
		cli_error("tf %s: unexpected argument '%s'", argv[0], argv[1]);
		short_usage();
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* Pretty JSON: jansson escapes control characters in strings, so what
 * the API says cannot drive the terminal. */
static int whoami(int argc, char **argv)
{
	json_t *reply = NULL;
	int rc = no_arguments(argc, argv);

	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	rc = need_token("tf whoami");
	if (rc == CLI_OK)
		rc = get_json(&reply, "tf whoami", "/v0.1/whoami", CALL_RETRY_S,
			      NULL);
	if (rc == CLI_OK &&
	    json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
		rc = CLI_FAILED;
	if (rc == CLI_OK)
		putchar('\n');
	json_decref(reply);
	return rc;
}

/* The names of the reply's "composes", every entry with a name. */
static int composes(int argc, char **argv)
{
	json_t *reply = NULL, *list, *entry;
	int rc = no_arguments(argc, argv);
	size_t i;

	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	rc = need_token("tf composes");
	if (rc == CLI_OK)
		rc = get_json(&reply, "tf composes", "/v0.1/composes",
			      CALL_RETRY_S, NULL);
	if (rc != CLI_OK)
		goto out;
	list = json_object_get(reply, "composes");
	if (!json_is_array(list)) {
		cli_error("tf composes: the API's reply has no \"composes\" "
			  "list");
		rc = CLI_USAGE;
		goto out;
	}
	json_array_foreach(list, i, entry)
	{
		const char *name =
			json_string_value(json_object_get(entry, "name"));

		if (!name)
			continue;
		cli_put_escaped(stdout, name);
		putchar('\n');
	}
out:
	json_decref(reply);
	return rc;
}

/* A request id goes into a URL path: Testing Farm's are UUIDs, so
 * letters, digits, '-', '_' and '.' (not alone) are all we let through. */
static bool valid_id(const char *id)
{
	if (!*id || !strcmp(id, ".") || !strcmp(id, ".."))
		return false;
	for (const char *c = id; *c; c++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.",
			    *c))
			return false;
	return true;
}

static int cancel(int argc, char **argv)
{
	struct atex_testingfarm_api_options api = api_options();
	char *failed = NULL, *path = NULL, *reply = NULL;
	size_t n_failed = 0;
	long status;
	int rc;

	if (argc == 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		tf_usage(stdout);
		return CLI_OK;
	}
	if (argc < 2) {
		cli_error("tf cancel: no request id");
		short_usage();
		return CLI_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		if (!valid_id(argv[i])) {
			cli_error("tf cancel: '%s' is not a request id",
				  argv[i]);
			return CLI_USAGE;
		}
	}
	rc = need_token("tf cancel");
	if (rc != CLI_OK)
		return rc;
	/* The ids that failed, in a buffer as long as all of them. */
	for (int i = 1; i < argc; i++)
		n_failed += strlen(argv[i]) + 1;
	failed = calloc(1, n_failed + 1);
	if (!failed) {
		cli_error("out of memory");
		return CLI_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		if (asprintf(&path, "/v0.1/requests/%s", argv[i]) < 0) {
			path = NULL;
			cli_error("out of memory");
			rc = CLI_USAGE;
			break;
		}
		status = 0;
		if (atex_testingfarm_call(&reply, &status, &api, "DELETE", path,
					  NULL, NULL) == 0) {
			printf("canceled %s\n", argv[i]);
			fflush(stdout);
		} else if (status == 409) {
			/* What the user wanted: the request is over. */
			printf("already ended: %s\n", argv[i]);
			fflush(stdout);
		} else {
			cli_error("tf cancel: %s", atex_error_last());
			strcat(strcat(failed, " "), argv[i]);
		}
		free(reply);
		free(path);
		reply = path = NULL;
	}
	if (rc == CLI_OK && *failed) {
		cli_error("tf cancel: not canceled:%s", failed);
		rc = CLI_FAILED;
	}
	free(failed);
	return rc;
}

/* ------------------------------------------------------------------------
 * reserve.
 */

static const struct option reserve_options[] = {
	{"arch", required_argument, NULL, CLI_OPT_TF_ARCH},
	{"tf-pool", required_argument, NULL, CLI_OPT_TF_POOL},
	{"tf-timeout", required_argument, NULL, CLI_OPT_TF_TIMEOUT},
	{"tf-hardware", required_argument, NULL, CLI_OPT_TF_HARDWARE},
	{"tf-source", required_argument, NULL, CLI_OPT_TF_SOURCE},
	{"tf-poll", required_argument, NULL, CLI_OPT_TF_POLL},
	{"tf-skip-guest-setup", no_argument, NULL, CLI_OPT_TF_SKIP_GUEST_SETUP},
	{"tf-os-cleaning", no_argument, NULL, CLI_OPT_TF_OS_CLEANING},
	{"tf-max-retries", required_argument, NULL, CLI_OPT_TF_MAX_RETRIES},
	{"identity", required_argument, NULL, CLI_OPT_IDENTITY},
	{"ssh-option", required_argument, NULL, CLI_OPT_SSH_OPTION},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static int reserve_take(void *data, int opt, const char *arg, const char *text)
{
	int rc = cli_provision_option(data, opt, arg);

	(void)text;
	if (rc == 1)
		return CLI_OK;
	if (rc == 0) { /* not in the table: cannot happen */
		cli_error("tf reserve: unknown option '%s'", text);
		short_usage();
		return CLI_USAGE;
	}
	return rc;
}

/* Prints `arg` as one shell word: as it is when that is safe, else in
 * single quotes. */
static void put_shell_word(const char *arg)
{
	if (*arg && strspn(arg, "abcdefghijklmnopqrstuvwxyz"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				"@%+=:,./_-") == strlen(arg)) {
		fputs(arg, stdout);
		return;
	}
	putchar('\'');
	for (const char *c = arg; *c; c++) {
		if (*c == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*c);
	}
	putchar('\'');
}

/* "Port=N" or "Port N" (any case): N, else NULL. */
static const char *port_option(const char *opt)
{
	if (strncasecmp(opt, "port", 4) || (opt[4] != '=' && opt[4] != ' '))
		return NULL;
	return opt + 5;
}

/* The command that logs in as atex does: its key, its -o options (a
 * "Port=" as -p). The machine is fresh and its address is reused by the
 * service, so its host key is not checked (as Python ATEX does). */
static void print_login(const struct atex_testingfarm_login *login,
			const struct cli_provision *p)
{
	fputs("ssh -i ", stdout);
	put_shell_word(login->identity);
	for (size_t i = 0; i < p->n_ssh_options; i++) {
		const char *port = port_option(p->ssh_options[i]);

		fputs(port ? " -p " : " -o ", stdout);
		put_shell_word(port ? port : p->ssh_options[i]);
	}
	fputs(" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ",
	      stdout);
	put_shell_word(login->user);
	putchar('@');
	put_shell_word(login->host);
	putchar('\n');
	fflush(stdout);
}

/* Whether request `id` is still alive (new, queued, running); an API
 * that cannot be asked counts as alive (the service's timeout is the
 * bound). *state is the state seen (caller frees), or NULL. */
static bool request_alive(const char *id, char **state, atex_cancel *cancel)
{
	char path[512];
	json_t *reply = NULL;
	const char *s;
	bool alive = true;

	*state = NULL;
	snprintf(path, sizeof(path), "/v0.1/requests/%s", id);
	/* Asked again later anyway. */
	if (get_json(&reply, "tf reserve", path, 60, cancel) != CLI_OK)
		return true;
	s = json_string_value(json_object_get(reply, "state"));
	if (s && strcmp(s, "new") && strcmp(s, "queued") &&
	    strcmp(s, "running")) {
		alive = false;
		*state = strdup(s);
	}
	json_decref(reply);
	return alive;
}

/* The first signal: stop the wait (the signal thread aborts the
 * provisioner itself). */
static void fire(int sig, void *data)
{
	(void)sig;
	atex_cancel_fire(data);
}

/* Holds the machine: CLI_OK after a signal, CLI_FAILED when the request
 * ended first. */
static int hold(const struct atex_testingfarm_login *login, int check_ms,
		atex_cancel *cancel)
{
	struct pollfd pfd = {.fd = atex_cancel_fd(cancel), .events = POLLIN};
	char *state = NULL;

	for (;;) {
		if (poll(&pfd, 1, check_ms) > 0 || atex_cancel_fired(cancel))
			return CLI_OK;
		if (!request_alive(login->request_id, &state, cancel))
			break;
	}
	cli_error("tf reserve: request %s ended (state %s): the machine is "
		  "gone",
		  login->request_id, state ? state : "unknown");
	free(state);
	return CLI_FAILED;
}

static int reserve_held(struct cli_provision *p, struct cli_signals *signals,
			atex_cancel *cancel)
{
	struct atex_testingfarm_login login;
	atex_provisioner *prov = NULL;
	atex_remote *remote = NULL;
	int rc;

	rc = cli_provision_build(&prov, p);
	if (rc == CLI_OK && !cli_signals_publish(signals, prov, NULL, NULL))
		rc = CLI_FAILED;
	if (rc == CLI_OK)
		rc = cli_provision_reserve(&remote, prov, signals,
					   "tf reserve");
	if (rc == CLI_OK && atex_testingfarm_remote_login(&login, remote) < 0)
		rc = cli_fail("tf reserve");
	if (rc == CLI_OK) {
		print_login(&login, p);
		cli_error("tf reserve: request %s holds the machine until "
			  "Ctrl-C%s",
			  login.request_id,
			  p->identity ? "" : "; the key is removed then");
		rc = hold(&login,
			  p->tf_poll_ms ? p->tf_poll_ms : RESERVE_CHECK_MS,
			  cancel);
	}
	if (remote)
		atex_remote_release(remote);
	cli_signals_publish(signals, NULL, NULL, NULL);
	if (prov && atex_provisioner_stop(prov) < 0 && rc == CLI_OK)
		rc = cli_fail("tf reserve");
	atex_provisioner_free(prov);
	return rc;
}

static int reserve(int argc, char **argv)
{
	const struct cli_options o = {
		.shortopts = "h",
		.longopts = reserve_options,
		.usage = tf_usage,
		.take = reserve_take,
	};
	struct cli_signals signals = CLI_SIGNALS_INIT;
	struct cli_provision p;
	atex_cancel *cancel = NULL;
	int rc;

	rc = cli_provision_init(&p, argc);
	if (rc == CLI_OK)
		rc = cli_parse_options(&o, &p, argc, argv);
	if (rc == CLI_OK && optind != argc - 1) {
		cli_error(optind == argc ? "tf reserve: no compose"
					 : "tf reserve: one compose only");
		short_usage();
		rc = CLI_USAGE;
	}
	if (rc == CLI_OK && !*argv[optind]) {
		cli_error("tf reserve: the compose is empty");
		rc = CLI_USAGE;
	}
	if (rc != CLI_OK) {
		cli_provision_free(&p);
		return rc < 0 ? CLI_OK : rc;
	}
	p.tf = argv[optind];
	if (atex_cancel_new(&cancel) < 0)
		rc = cli_fail("tf reserve");
	if (rc == CLI_OK)
		rc = cli_signals_start(&signals, "tf reserve", fire, NULL,
				       cancel);
	if (rc == CLI_OK)
		rc = reserve_held(&p, &signals, cancel);
	cli_signals_stop(&signals);
	/* Ctrl-C while waiting for the machine: 128+N, as other
	 * subcommands; once it was held, Ctrl-C is how it ends: 0. */
	if (rc == CLI_FAILED && cli_signals_received(&signals))
		rc = 128 + cli_signals_received(&signals);
	atex_cancel_free(cancel);
	cli_provision_free(&p);
	return rc;
}

int cli_tf(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} subcommands[] = {
		{"whoami", whoami},
		{"composes", composes},
		{"reserve", reserve},
		{"cancel", cancel},
	};

	if (argc < 2) {
		tf_usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		tf_usage(stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]);
	     i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 1, argv + 1);
	cli_error("tf: unknown subcommand '%s'", argv[1]);
	short_usage();
	return CLI_USAGE;
}
