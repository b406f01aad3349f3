/*
 * _atex.h - what the C files of the atex._atex extension module share.
 *
 * The extension is one module (atex._atex) built from one file per block
 * (_connection.c, _provisioner.c, ...) plus _atex.c, which owns module
 * set-up, error mapping, the blocking-call helper and the log bridge.
 * Each block file exports atexpy_init_<block>(module), called once from
 * PyInit__atex.
 *
 * GIL rules (docs/PYTHON.md): every call into libatex that may block or
 * take a lock runs with the GIL released (Py_BEGIN_ALLOW_THREADS or
 * atexpy_call); C callbacks into Python (ops bridges, hooks) take it with
 * PyGILState_Ensure for their own duration only. Log records never take
 * the GIL on the logging thread: they are queued and a bridge thread
 * hands them to Python's logging.
 */
#ifndef ATEXPY_ATEX_H
#define ATEXPY_ATEX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atex/atex.h>

/* The module object's exception base: atex._atex.Error(RuntimeError),
 * with .code (the ATEX_E* value). Set up by PyInit__atex. */
extern PyObject *atexpy_Error;

/*
 * Raises the Python exception for libatex error `rc` with `message` (the
 * atex_error_last() text read in the thread that made the call; NULL: read
 * it now). ENOMEM -> MemoryError, EINVAL -> ValueError, ENOTFOUND ->
 * FileNotFoundError, EEXISTS -> FileExistsError, ETIMEDOUT -> TimeoutError,
 * EIO -> OSError, anything else -> `fallback` when not NULL, else
 * atex._atex.Error. The exception gets an `atex_code` attribute. Always
 * returns NULL (for `return atexpy_raise(...)`). Needs the GIL.
 */
PyObject *atexpy_raise(int rc, const char *message, PyObject *fallback);

/* As atexpy_raise, always with class `cls`. */
PyObject *atexpy_raise_as(PyObject *cls, int rc, const char *message);

/*
 * A blocking libatex call made from Python. `fn(arg)` runs with the GIL
 * released; it returns 0 or an ATEX_E* code. When called from the main
 * thread, fn runs in a helper thread while the caller wakes every 100 ms
 * to run Python's signal handlers: if one raises (Ctrl-C, an alarm),
 * `cancel(cancel_arg)` is called (it must make fn return soon; it is
 * called without the GIL, from the waiting thread), fn is waited for,
 * and atexpy_call returns ATEXPY_EPYTHON with that exception set. From
 * other threads
 * fn just runs with the GIL released.
 *
 * On fn's failure atexpy_call returns its code and, when `message` is not
 * NULL, *message is a copy of atex_error_last() taken in fn's thread
 * (free() it). Returns 0 on success. After ATEXPY_EPYTHON fn has still run to its
 * end: whatever it produced (a remote, an object) is the caller's to
 * free, so initialize out-parameters to NULL and check them.
 */
#define ATEXPY_EPYTHON (-1000) /* not an atex code: a Python exception is set */
int atexpy_call(int (*fn)(void *arg), void *arg, void (*cancel)(void *arg),
		void *cancel_arg, char **message);

/* atexpy_call, then atexpy_raise on failure: returns 0, or -1 with an
 * exception set. */
int atexpy_call_raise(int (*fn)(void *arg), void *arg,
		      void (*cancel)(void *arg), void *cancel_arg,
		      PyObject *fallback);

/*
 * Exceptions raised by Python code that C called (hooks, a Python
 * provisioner's methods): the first is kept in `*slot` (a strong
 * reference to the exception instance, traceback attached) so the
 * orchestrator can raise it from serve_forever(). Needs the GIL; clears
 * the current exception.
 */
void atexpy_keep_exception(PyObject **slot);

/* Makes libatex's log level follow logging.getLogger("atex") now (unless
 * ATEX_LOG names one). Needs the GIL. */
void atexpy_log_sync(void);

/* A str for a C string that may hold any bytes (surrogateescape). */
PyObject *atexpy_str(const char *s);

/* A path argument (str, bytes, os.PathLike) as a new C string, or NULL
 * with an exception set. `name` is used in the error. */
char *atexpy_path(PyObject *obj, const char *name);

/* A sequence of str/PathLike as a NULL-terminated array of new strings
 * (free with atexpy_strv_free), or NULL with an exception set. */
char **atexpy_strv(PyObject *seq, const char *name);
void atexpy_strv_free(char **v);

/* A mapping of str -> str as a NULL-terminated "KEY=VALUE" array, or
 * NULL with an exception set; None gives an empty array. */
char **atexpy_envv(PyObject *mapping, const char *name);

/* ------------------------------------------------------------------------
 * Between blocks. A Python object of a block's base class (a built-in
 * implementation or a user's subclass) has one libatex object behind it:
 * the built-in's own, or a bridge whose operations table calls the
 * object's Python methods (taking the GIL for each call). A user's
 * subclass of a built-in class that overrides one of the operations'
 * methods gets a bridge too, so the override is what C calls.
 * The pointers are borrowed: they live as long as the Python object (the
 * caller keeps a reference). All need the GIL; NULL means an exception
 * is set.
 */

/* _connection.c: atex.connection.Connection -> atex_connection. */
atex_connection *atexpy_connection_ptr(PyObject *connection);

/* Between _connection.c and _provisioner.c. */

/* A ConnectionHandle for a connection owned by `owner` (a remote handle):
 * each use asks get(owner), which returns NULL once the remote is gone.
 * A new reference, or NULL with an exception set. */
PyObject *atexpy_connection_handle_borrowed(
	PyObject *owner, atex_connection *(*get)(PyObject *owner));

/* A ConnectionHandle's connection, or NULL with an exception set. */
atex_connection *atexpy_connection_handle_ptr(PyObject *handle);

/* Whether c is a bridge over a Python connection. */
bool atexpy_connection_is_bridge(const atex_connection *c);

/* atex_ssh_options from a dict (host, port, user, identity, options,
 * connect_timeout, keepalive, ssh_program, max_sessions,
 * strict_host_keys) with the strings it points to. */
struct atexpy_ssh_options {
	struct atex_ssh_options o;
	char *host, *user, *identity, *program;
	char **options;
};
/* An optional str (or int, as text) / int entry of a dict: absent or None
 * leaves *out NULL / unchanged. 0 or -1 with an exception set. */
int atexpy_dict_str(char **out, PyObject *d, const char *key);
int atexpy_dict_int(int *out, PyObject *d, const char *key);

int atexpy_ssh_options_from(struct atexpy_ssh_options *s, PyObject *dict);
void atexpy_ssh_options_clear(struct atexpy_ssh_options *s);

/* _provisioner.c: atex.provisioner.Provisioner -> atex_provisioner.
 * A Python provisioner's bridge polls get_remote(block=False) from a
 * thread between its start and stop ops; the first exception its methods
 * raise is kept as provisioner._atex_error (a get_remote failure makes
 * the C get_remote fail for good with ATEX_EIO naming it). */
atex_provisioner *atexpy_provisioner_ptr(PyObject *provisioner);

/* _provisioner.c: a Python atex.provisioner.Remote for a remote the C
 * orchestrator got from `provisioner` (the Python provisioner object):
 * cmd()/rsync() work on it; release() tells the orchestrator nothing (it
 * releases the remote itself once the executor is done with it). A new
 * reference. When `r` came from a Python provisioner through its bridge,
 * this is the Python Remote object the provisioner returned. */
PyObject *atexpy_remote_wrap(atex_remote *r, PyObject *provisioner);

/* _provisioner.c: call before C releases a remote that atexpy_remote_wrap
 * wrapped as `wrapped`: a built-in's Remote is marked released (its cmd()
 * then raises NotConnectedError instead of reaching freed memory); a
 * Python provisioner's own Remote is left alone (its release() is what C
 * calls). Needs the GIL; never fails; NULL is accepted. */
void atexpy_remote_unwrap(PyObject *wrapped);

/* _fmf.c: atex.executor.fmf.FMFTests -> its discovery, with the edits a
 * script made to .data (changed, removed tests) applied first. */
atex_fmf_discovery *atexpy_discovery_ptr(PyObject *fmf_tests);

/* _executor.c: atex.executor.Executor -> atex_executor. */
atex_executor *atexpy_executor_ptr(PyObject *executor);

/* _aggregator.c: atex.aggregator.Aggregator -> atex_aggregator. */
atex_aggregator *atexpy_aggregator_ptr(PyObject *aggregator);

/* _aggregator.c: the first exception a Python aggregator's method raised
 * while libatex called it through its bridge (the libatex error message
 * has its text), forgotten after; None when there was none. A new
 * reference. */
PyObject *atexpy_aggregator_take_exception(PyObject *aggregator);

/* Per-block set-up, each in its own file. Return 0 or -1 with an
 * exception set. */
int atexpy_init_connection(PyObject *module);
int atexpy_init_provisioner(PyObject *module);
int atexpy_init_fmf(PyObject *module);
int atexpy_init_executor(PyObject *module);
int atexpy_init_aggregator(PyObject *module);
int atexpy_init_report(PyObject *module);
int atexpy_init_orchestrator(PyObject *module);

#endif /* ATEXPY_ATEX_H */
