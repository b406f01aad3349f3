/*
 * _aggregator.c - atex._atex: the aggregator block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_aggregator(PyObject *module)
{
	(void)module;
	return 0;
}
