/*
 * _provisioner.c - atex._atex: the provisioner block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_provisioner(PyObject *module)
{
	(void)module;
	return 0;
}
