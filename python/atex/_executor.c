/*
 * _executor.c - atex._atex: the executor block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_executor(PyObject *module)
{
	(void)module;
	return 0;
}

atex_executor *atexpy_executor_ptr(PyObject *executor)
{
	(void)executor;
	PyErr_SetString(PyExc_NotImplementedError, "executor: not yet");
	return NULL;
}
