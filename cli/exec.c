/* exec.c: being written. */
#include "cli.h"

int cli_exec(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("exec: not written yet");
	return CLI_USAGE;
}
