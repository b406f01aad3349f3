/*
 * _executor.c - atex._atex: the executor block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_executor(PyObject *module)
{
	(void)module;
	return 0;
}
