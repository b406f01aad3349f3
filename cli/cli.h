/*
 * cli.h - what the subcommand files of the atex tool share. Each file in
 * cli/ implements one subcommand group on top of the public API only.
 */
#ifndef ATEX_CLI_H
#define ATEX_CLI_H

#include <stdio.h>

/* Exit statuses shared by every subcommand. */
enum {
	CLI_OK = 0,
	CLI_FAILED = 1, /* the work ran and something in it failed */
	CLI_USAGE = 2,  /* usage, input or setup error */
};

/* Prints "atex: " + message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the last library error with a prefix and returns CLI_USAGE. */
int cli_fail(const char *what);

int cli_fmf(int argc, char **argv);
int cli_exec(int argc, char **argv);

#endif /* ATEX_CLI_H */
