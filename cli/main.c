/*
 * main.c - the atex command-line tool: a thin demonstration of the library.
 * Every feature lives in libatex; this only parses arguments and prints.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atex/atex.h"
#include "cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"fmf", cli_fmf, "read fmf metadata: discover, dump, match"},
	{"exec", cli_exec, "run one command on a reserved system"},
	{"test", cli_test, "run fmf tests one after another on a system"},
	{"report", cli_report, "render a results file: HTML, JUnit, summary"},
	{"run", cli_run, "run a whole test suite on a pool of systems"},
	{"tf", cli_tf, "Testing Farm: whoami, composes, reserve, cancel"},
};

void cli_put_escaped(FILE *out, const char *text)
{
	char *shown = NULL;

	if (atex_text_escape(&shown, text) == 0)
		fputs(shown, out);
	else
		fputs("(out of memory)", out);
	free(shown);
}

/* Messages name tests, hosts and files (and quote the library's errors,
 * which name them too): escaped whole, one message is one line. */
void cli_error(const char *fmt, ...)
{
	char *message = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&message, fmt, ap);
	va_end(ap);
	fputs("atex: ", stderr);
	cli_put_escaped(stderr, n < 0 ? "(out of memory)" : message);
	fputc('\n', stderr);
	free(message);
}

int cli_fail(const char *what)
{
	if (what && *what)
		cli_error("%s: %s", what, atex_error_last());
	else
		cli_error("%s", atex_error_last());
	return CLI_USAGE;
}

/* Options that set one value (a directory, a plan, a number): given
 * twice, the first would be silently lost, so that is an error. Every
 * other option with a value (--context, --env, --filter, --ssh...) adds
 * to a list. */
bool cli_option_once(const char *name)
{
	static const char *const once[] = {
		"artifacts", "results",	   "plan",  "reruns",	"order",
		"platform",  "max-spares", "html",  "junit",	"title",
		"local",     "podman",	   "count", "identity",
	};

	for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
		if (!strcmp(name, once[i]))
			return true;
	/* --reportportal and its --rp-* options set one value each but
	 * --rp-attribute (reportportal.c). */
	return !strcmp(name, "reportportal") ||
	       (!strncmp(name, "rp-", 3) && strcmp(name, "rp-attribute"));
}

/* CLI_USAGE with a message when long option `i` of `o` sets one value and
 * was seen before (`seen` has one flag per entry of o->longopts). */
static int check_once(const struct cli_options *o, int i, bool *seen,
		      size_t n_seen)
{
	if (i < 0 || (size_t)i >= n_seen ||
	    !cli_option_once(o->longopts[i].name))
		return CLI_OK;
	if (seen[i]) {
		cli_error("--%s given twice", o->longopts[i].name);
		return CLI_USAGE;
	}
	seen[i] = true;
	return CLI_OK;
}

int cli_parse_options(const struct cli_options *o, void *data, int argc,
		      char **argv)
{
	bool seen[64] = {false};
	int opt, rc, i;

	optind = 1;
	opterr = 0; /* our own messages, naming the option */
	for (;;) {
		i = -1; /* stays -1 for a short option */
		opt = getopt_long(argc, argv, o->shortopts, o->longopts, &i);
		if (opt == -1)
			break;
		if (opt == 'h') {
			o->usage(stdout);
			return -1;
		}
		if (opt == '?') {
			if (optopt)
				cli_error("option '%s' needs a value",
					  argv[optind - 1]);
			else
				cli_error("unknown option '%s'",
					  argv[optind - 1]);
			o->usage(stderr);
			return CLI_USAGE;
		}
		rc = check_once(o, i, seen, sizeof(seen) / sizeof(seen[0]));
		if (rc == CLI_OK)
			rc = o->take(data, opt, optarg, argv[optind - 1]);
		if (rc != CLI_OK)
			return rc;
	}
	return CLI_OK;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: atex COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out, "  %-10s %s\n", "help",
		"this text; help COMMAND: its options");
	fprintf(out, "  %-10s %s\n", "version", "the version of atex");
	fprintf(out, "\nRun 'atex COMMAND --help' for a command's options.\n");
	fprintf(out, "\nATEX_LOG=error|warning|info|debug sets what the "
		     "library logs on stderr\n(default warning; with "
		     "--testing-farm, the requests' ids too).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	/* `atex help COMMAND` is `atex COMMAND --help`; help and version
	 * are words of their own and take nothing more. */
	if ((!strcmp(argv[1], "help") && argc > 3) ||
	    (!strcmp(argv[1], "version") && argc > 2)) {
		cli_error("%s: too many arguments", argv[1]);
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "help") && argc > 2 && strcmp(argv[2], "help") &&
	    strcmp(argv[2], "version")) {
		char *help[] = {argv[2], "--help", NULL};

		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]);
		     i++)
			if (!strcmp(argv[2], commands[i].name))
				return commands[i].run(2, help);
		cli_error("help: unknown command '%s'", argv[2]);
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("atex %s\n", ATEX_VERSION_STRING);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	cli_error("unknown command '%s'", argv[1]);
	usage(stderr);
	return CLI_USAGE;
}
