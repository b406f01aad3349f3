/*
 * _fmf.c - atex._atex: the fmf block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_fmf(PyObject *module)
{
	(void)module;
	return 0;
}

atex_fmf_discovery *atexpy_discovery_ptr(PyObject *fmf_tests)
{
	(void)fmf_tests;
	PyErr_SetString(PyExc_NotImplementedError, "fmf: not yet");
	return NULL;
}
