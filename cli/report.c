/*
 * report.c - `atex report [--html FILE] [--junit FILE] [--summary]
 * [--tmt FILE] [--title TEXT] [--exit-code] RESULTS`: load a results file
 * (JSON Lines, .gz, .xz, or the SQLite database; a results folder of `atex
 * run` stands for its results.jsonl) and render it, as many ways as asked
 * at once.
 *
 * Exit status: 0 when every output asked for was written, whatever the
 * results say (a report is a success when it shows failures); 2 on a usage
 * error or a file that cannot be read or written (the message names it).
 * With --exit-code, as `git diff --exit-code`: 1 when a final result did
 * not pass (pass, info, warn and skip do), so that CI can fail a job on
 * the report alone; every output is still written first. 3 when the input
 * was damaged (lines that are not results): the outputs are written with
 * each such line as an error result named FILE:LINE, and stderr names
 * them too; it wins over 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atex/atex.h"
#include "cli.h"

/* Exit status: the outputs are written, but the input had lines that
 * are not results. */
#define REPORT_DAMAGED 3

static const struct option report_options[] = {
	{"html", required_argument, NULL, 'H'},
	{"junit", required_argument, NULL, 'j'},
	{"summary", no_argument, NULL, 's'},
	{"title", required_argument, NULL, 't'},
	{"exit-code", no_argument, NULL, 'x'},
	{"tmt", required_argument, NULL, 'T'},
	CLI_RP_LONG_OPTIONS,
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct report_args {
	const char *html, *junit, *title, *results, *tmt;
	bool summary, exit_code;
	struct cli_rp rp; /* --reportportal (reportportal.c) */
};

static void report_usage(FILE *out)
{
	fprintf(out,
		"usage: atex report [--html FILE] [--junit FILE] [--summary] "
		"[--tmt FILE]\n"
		"                   [--title TEXT] [--exit-code] RESULTS\n"
		"\n"
		"Renders a results file (results.jsonl[.gz|.xz] with old/ "
		"next to\n"
		"it, or a .sqlite database; a results folder of atex run "
		"stands for\n"
		"its results.jsonl). At least one output:\n"
		"  --html FILE    one self-contained HTML page (links to "
		"the files\n"
		"                 relative to FILE's folder)\n"
		"  --junit FILE   JUnit XML for CI\n"
		"  --summary      a table of counts, the failures and the "
		"slowest tests,\n"
		"                 on stdout\n"
		"  --tmt FILE     tmt's results.yaml (logs relative to FILE's "
		"folder)\n"
		"  --title TEXT   the HTML page's title\n"
		"  --exit-code    exit 1 when a final result is not pass, "
		"info, warn\n"
		"                 or skip\n"
		"\n"
		"Exit status: 0 outputs written (1 with --exit-code when "
		"results\n"
		"failed), 2 error, 3 outputs written but the input was "
		"damaged (lines\n"
		"that are not results, each named FILE:LINE).\n"
		"\n"
		"--reportportal URL --rp-project P [--rp-launch NAME]... "
		"RESULTS_DIR\n"
		"uploads a results folder of atex run (earlier attempts as "
		"retries);\n"
		"exit 2 when a test was not uploaded. The --rp-* options are "
		"atex run's.\n");
}

static int take_option(void *data, int opt, const char *arg, const char *text)
{
	struct report_args *a = data;
	int rc = cli_rp_option(&a->rp, opt, arg);

	(void)text;
	if (rc >= 0)
		return rc;
	switch (opt) {
	case 'H':
		a->html = arg;
		break;
	case 'j':
		a->junit = arg;
		break;
	case 's':
		a->summary = true;
		break;
	case 't':
		a->title = arg;
		break;
	case 'x':
		a->exit_code = true;
		break;
	case 'T':
		a->tmt = arg;
		break;
	}
	return CLI_OK;
}

/* CLI_OK, -1 for --help, or CLI_USAGE (message printed). */
static int parse_args(struct report_args *a, int argc, char **argv)
{
	static const struct cli_options opts = {"h", report_options,
						report_usage, take_option};
	int rc = cli_parse_options(&opts, a, argc, argv);

	if (rc != CLI_OK)
		return rc;
	rc = cli_rp_check(&a->rp);
	if (rc != CLI_OK)
		return rc;
	if (!a->html && !a->junit && !a->summary && !a->tmt && !a->rp.url) {
		cli_error("report: no output asked for (--html FILE, --junit "
			  "FILE, --summary, --tmt FILE or --reportportal URL)");
		report_usage(stderr);
		return CLI_USAGE;
	}
	if (argc - optind != 1) {
		cli_error("report: %s", argc == optind
						? "missing RESULTS"
						: "one RESULTS file only");
		report_usage(stderr);
		return CLI_USAGE;
	}
	a->results = argv[optind];
	return CLI_OK;
}

int cli_report(int argc, char **argv)
{
	struct report_args a = {0};
	atex_results *r = NULL;
	struct stat sb;
	int rc;

	rc = parse_args(&a, argc, argv);
	if (rc != CLI_OK) {
		cli_rp_free(&a.rp);
		return rc < 0 ? CLI_OK : rc;
	}
	if (a.rp.url) {
		rc = stat(a.results, &sb) == 0 && S_ISDIR(sb.st_mode)
			     ? cli_rp_upload_dir(&a.rp, a.results)
			     : (cli_error("report: --reportportal needs a "
					  "results folder of atex run, not "
					  "%s",
					  a.results),
				CLI_USAGE);
		cli_rp_free(&a.rp);
		if (rc != CLI_OK || (!a.html && !a.junit && !a.summary))
			return rc;
	}
	/* The library's messages name the file; a results folder stands
	 * for its results.jsonl (atex_results_load). */
	if (atex_results_load(&r, a.results) < 0)
		return cli_fail("report");
	if (a.html && atex_report_html(r, a.html, a.title) < 0)
		rc = cli_fail("report");
	if (!rc && a.junit && atex_report_junit(r, a.junit) < 0)
		rc = cli_fail("report");
	if (!rc && a.tmt && atex_report_tmt(r, a.tmt) < 0)
		rc = cli_fail("report");
	if (!rc && a.summary && atex_report_summary(r, STDOUT_FILENO) < 0)
		rc = cli_fail("report");
	if (!rc && a.exit_code && !atex_results_passed(r))
		rc = CLI_FAILED;
	/* Every output is written, naming the damaged lines; the status
	 * says the input was not whole. */
	if ((!rc || rc == CLI_FAILED) && atex_results_damaged(r)) {
		size_t n = atex_results_damaged(r);

		cli_error("report: %s: %zu damaged line%s (not results) "
			  "skipped; they are error results in the outputs",
			  a.results, n, n == 1 ? "" : "s");
		rc = REPORT_DAMAGED;
	}
	atex_results_free(r);
	return rc;
}
