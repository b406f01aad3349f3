/*
 * _aggregator.c - atex._atex: the aggregator block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_aggregator(PyObject *module)
{
	(void)module;
	return 0;
}

atex_aggregator *atexpy_aggregator_ptr(PyObject *aggregator)
{
	(void)aggregator;
	PyErr_SetString(PyExc_NotImplementedError, "aggregator: not yet");
	return NULL;
}
