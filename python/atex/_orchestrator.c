/*
 * _orchestrator.c - atex._atex: the orchestrator block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_orchestrator(PyObject *module)
{
	(void)module;
	return 0;
}
