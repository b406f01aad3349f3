/*
 * _connection.c - atex._atex: the connection block (see _atex.h).
 */
#include "_atex.h"

int atexpy_init_connection(PyObject *module)
{
	(void)module;
	return 0;
}

atex_connection *atexpy_connection_ptr(PyObject *connection)
{
	(void)connection;
	PyErr_SetString(PyExc_NotImplementedError, "connection: not yet");
	return NULL;
}
