/*
 * _fmf.c - atex._atex: the fmf block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_fmf(PyObject *module)
{
	(void)module;
	return 0;
}
