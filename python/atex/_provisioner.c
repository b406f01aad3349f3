/*
 * _provisioner.c - atex._atex: the provisioner block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_provisioner(PyObject *module)
{
	(void)module;
	return 0;
}

atex_provisioner *atexpy_provisioner_ptr(PyObject *provisioner)
{
	(void)provisioner;
	PyErr_SetString(PyExc_NotImplementedError, "provisioner: not yet");
	return NULL;
}

PyObject *atexpy_remote_wrap(atex_remote *r, PyObject *provisioner)
{
	(void)r;
	(void)provisioner;
	PyErr_SetString(PyExc_NotImplementedError, "provisioner: not yet");
	return NULL;
}
