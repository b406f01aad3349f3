/*
 * _report.c - atex._atex: the report block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_report(PyObject *module)
{
	(void)module;
	return 0;
}
