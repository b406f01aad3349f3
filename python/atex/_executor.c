/*
 * _executor.c - atex._atex: the executor block (see _atex.h).
 *
 * _atex.FMFExecutorHandle owns one libatex fmf executor (made with
 * compat_python_atex: Python ATEX's results and notes), keeping the
 * Python connection and FMFTests it borrows from alive. Its run_test
 * returns (rc, exit_code, message) instead of raising: the Python class
 * (atex.executor.fmf.FMFExecutor) turns that into Python ATEX's
 * exceptions.
 *
 * _atex.ExecutorBridge is the libatex executor of any other
 * atex.executor.Executor: its operations call the object's Python
 * methods, each under the GIL for its own duration; an exception one of
 * them raises is kept (atexpy_keep_exception) and C gets an error code.
 */
#include "_atex.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * The built-in fmf executor.
 */

typedef struct {
	PyObject_HEAD atex_executor *e;
	PyObject *connection; /* kept alive: e borrows its atex_connection */
	PyObject *fmf_tests;  /* kept alive: e borrows its discovery */
	PyObject *stage;      /* kept alive: e borrows it (or NULL) */
} FmfHandle;

static void stage_free(PyObject *capsule)
{
	atex_fmf_stage *st = PyCapsule_GetPointer(capsule, "atex.stage");

	Py_BEGIN_ALLOW_THREADS atex_fmf_stage_free(st);
	Py_END_ALLOW_THREADS
}

/* One stage (the tree copy every system is uploaded from) shared by the
 * executors of one FMFTests, as atex run shares it: kept on the object
 * as _atex_stage for its current discovery. A new reference, or NULL
 * (no exception) when none could be made: the executor then stages on
 * its own. Without it, 100 systems copy the tree 100 times. */
static PyObject *shared_stage(PyObject *fmf_tests, atex_fmf_discovery *d)
{
	PyObject *cap = PyObject_GetAttrString(fmf_tests, "_atex_stage");
	atex_fmf_stage *st = NULL;
	int rc;

	if (cap && PyCapsule_IsValid(cap, "atex.stage") &&
	    PyCapsule_GetContext(cap) == d)
		return cap;
	Py_XDECREF(cap);
	PyErr_Clear();
	Py_BEGIN_ALLOW_THREADS rc = atex_fmf_stage_new(&st, d);
	Py_END_ALLOW_THREADS if (rc < 0) return NULL;
	cap = PyCapsule_New(st, "atex.stage", stage_free);
	if (!cap || PyCapsule_SetContext(cap, d) < 0 ||
	    PyObject_SetAttrString(fmf_tests, "_atex_stage", cap) < 0)
		PyErr_Clear();
	if (!cap)
		atex_fmf_stage_free(st);
	return cap;
}

static PyObject *fmf_handle_new(PyTypeObject *type, PyObject *args,
				PyObject *kw)
{
	static char *kwlist[] = {"connection", "fmf_tests", "env", "framework",
				 NULL};
	PyObject *connection, *fmf_tests, *env = Py_None;
	const char *framework = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|Oz", kwlist, &connection,
					 &fmf_tests, &env, &framework))
		return NULL;
	struct atex_fmf_executor_options o = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	o.connection = atexpy_connection_ptr(connection);
	if (!o.connection)
		return NULL;
	o.discovery = atexpy_discovery_ptr(fmf_tests);
	if (!o.discovery)
		return NULL;
	char **envv = atexpy_envv(env, "env");
	if (!envv)
		return NULL;
	o.env = (const char *const *)envv;
	o.compat_python_atex = true;
	o.framework = framework;
	PyObject *stage = shared_stage(fmf_tests, o.discovery);
	o.stage = stage ? PyCapsule_GetPointer(stage, "atex.stage") : NULL;
	FmfHandle *self = (FmfHandle *)type->tp_alloc(type, 0);
	int rc = self ? atex_fmf_executor_new(&self->e, &o) : 0;
	atexpy_strv_free(envv);
	if (self)
		self->stage = stage;
	else
		Py_XDECREF(stage);
	if (!self)
		return NULL;
	if (rc < 0) {
		Py_DECREF(self);
		return atexpy_raise(rc, NULL, NULL);
	}
	self->connection = Py_NewRef(connection);
	self->fmf_tests = Py_NewRef(fmf_tests);
	return (PyObject *)self;
}

static void fmf_handle_dealloc(FmfHandle *self)
{
	/* Frees (and stops, when started) without the GIL: stop may wait
	 * on the system. */
	atex_executor *e = self->e;
	self->e = NULL;
	if (e) {
		Py_BEGIN_ALLOW_THREADS atex_executor_free(e);
		Py_END_ALLOW_THREADS
	}
	Py_CLEAR(self->connection);
	Py_CLEAR(self->fmf_tests);
	Py_CLEAR(self->stage);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static void cancel_fn(void *arg)
{
	atex_executor_cancel(arg);
}

static int start_fn(void *arg)
{
	return atex_executor_start(arg);
}

static int stop_fn(void *arg)
{
	return atex_executor_stop(arg);
}

static PyObject *fmf_handle_start(FmfHandle *self, PyObject *unused)
{
	(void)unused;
	if (atexpy_call_raise(start_fn, self->e, cancel_fn, self->e, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* stop(): 0 or the code (ATEX_EINVAL: was not started). */
static PyObject *fmf_handle_stop(FmfHandle *self, PyObject *unused)
{
	(void)unused;
	int rc = atexpy_call(stop_fn, self->e, cancel_fn, self->e, NULL);
	if (rc == ATEXPY_EPYTHON)
		return NULL;
	return PyLong_FromLong(rc);
}

static PyObject *fmf_handle_cancel(FmfHandle *self, PyObject *unused)
{
	(void)unused;
	Py_BEGIN_ALLOW_THREADS atex_executor_cancel(self->e);
	Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

struct run_call {
	atex_executor *e;
	const char *name;
	const char *artifacts;
	char **env;
	int exit_code;
};

static int run_fn(void *arg)
{
	struct run_call *c = arg;
	return atex_executor_run_test(c->e, c->name, c->artifacts,
				      (const char *const *)c->env,
				      &c->exit_code);
}

/* run_test(name, artifacts, env) -> (rc, exit_code, message). */
static PyObject *fmf_handle_run_test(FmfHandle *self, PyObject *args)
{
	PyObject *name_obj, *artifacts_obj, *env = Py_None;
	if (!PyArg_ParseTuple(args, "OO|O", &name_obj, &artifacts_obj, &env))
		return NULL;
	struct run_call c = {.e = self->e, .exit_code = -1};
	char *name = atexpy_path(name_obj, "test_name");
	char *artifacts = name ? atexpy_path(artifacts_obj, "artifacts") : NULL;
	c.env = artifacts ? atexpy_envv(env, "env") : NULL;
	PyObject *r = NULL;
	char *message = NULL;
	if (!c.env)
		goto out;
	c.name = name;
	c.artifacts = artifacts;
	int rc = atexpy_call(run_fn, &c, cancel_fn, self->e, &message);
	if (rc != ATEXPY_EPYTHON)
		r = Py_BuildValue("(iiN)", rc, c.exit_code,
				  atexpy_str(rc ? message : NULL));
out:
	free(message);
	free(name);
	free(artifacts);
	atexpy_strv_free(c.env);
	return r;
}

static PyMethodDef fmf_handle_methods[] = {
	{"start", (PyCFunction)fmf_handle_start, METH_NOARGS,
	 "Prepare the system (interruptible)."},
	{"stop", (PyCFunction)fmf_handle_stop, METH_NOARGS,
	 "Clean the system up; returns 0 or the libatex code."},
	{"cancel", (PyCFunction)fmf_handle_cancel, METH_NOARGS,
	 "Stop a running test and every later one (final); any thread."},
	{"run_test", (PyCFunction)fmf_handle_run_test, METH_VARARGS,
	 "run_test(name, artifacts, env) -> (rc, exit_code, message)."},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject FmfHandleType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.FMFExecutorHandle",
	.tp_basicsize = sizeof(FmfHandle),
	.tp_dealloc = (destructor)fmf_handle_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "libatex's fmf executor (compat_python_atex).",
	.tp_methods = fmf_handle_methods,
	.tp_new = fmf_handle_new,
};

/* ------------------------------------------------------------------------
 * The bridge: any other Executor, seen from C.
 */

struct bridge {
	struct atex_executor base;
	PyObject *obj;	      /* borrowed: the object owns the bridge */
	PyObject *exc;	      /* the first exception a method raised, or NULL */
	atomic_bool canceled; /* cancel() came during the current run_test */
};

typedef struct {
	PyObject_HEAD struct bridge b;
} Bridge;

static struct bridge *to_bridge(atex_executor *e)
{
	return (struct bridge *)e;
}

/* The exception now set, kept, as an ATEX_E* code C understands, with
 * its text as libatex's error message (read in this thread). */
static int bridge_fail(struct bridge *b, const char *op)
{
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	int rc = ATEX_ERROR;
	if (PyErr_GivenExceptionMatches(type, PyExc_TimeoutError))
		rc = ATEX_ETIMEDOUT;
	else if (PyErr_GivenExceptionMatches(type, PyExc_ValueError))
		rc = ATEX_ENOTFOUND;
	else if (PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt))
		rc = ATEX_ECANCELED;
	else if (PyErr_GivenExceptionMatches(type, PyExc_OSError))
		rc = ATEX_EINFRA;
	PyObject *text = value ? PyObject_Repr(value) : NULL;
	const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
	if (!s)
		PyErr_Clear();
	char msg[1024];
	snprintf(msg, sizeof(msg), "%s: %s", op, s ? s : "a Python exception");
	atex_error_set_message(rc, msg);
	Py_XDECREF(text);
	PyErr_Restore(type, value, tb);
	atexpy_keep_exception(&b->exc);
	return rc;
}

static int bridge_call(atex_executor *e, const char *method)
{
	struct bridge *b = to_bridge(e);
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *r = PyObject_CallMethod(b->obj, method, NULL);
	int rc = r ? 0 : bridge_fail(b, method);
	Py_XDECREF(r);
	PyGILState_Release(g);
	return rc;
}

static int bridge_start(atex_executor *e)
{
	return bridge_call(e, "start");
}

static int bridge_stop(atex_executor *e)
{
	return bridge_call(e, "stop");
}

static void bridge_cancel(atex_executor *e)
{
	atomic_store(&to_bridge(e)->canceled, true);
	(void)bridge_call(e, "cancel");
}

/* env as a dict, or NULL for none given. */
static PyObject *env_dict(const char *const *env)
{
	if (!env || !*env)
		return NULL;
	PyObject *d = PyDict_New();
	for (; d && *env; env++) {
		const char *eq = strchr(*env, '=');
		PyObject *k = eq ? PyUnicode_DecodeUTF8(*env, eq - *env,
							"surrogateescape")
				 : NULL;
		PyObject *v = k ? atexpy_str(eq + 1) : NULL;
		if (!v || PyDict_SetItem(d, k, v) < 0)
			Py_CLEAR(d);
		Py_XDECREF(k);
		Py_XDECREF(v);
	}
	return d;
}

/* path.mkdir(parents=True, exist_ok=True) */
static PyObject *mkdir_p(PyObject *path)
{
	PyObject *fn = PyObject_GetAttrString(path, "mkdir");
	PyObject *args = fn ? PyTuple_New(0) : NULL;
	PyObject *kw = args ? Py_BuildValue("{sOsO}", "parents", Py_True,
					    "exist_ok", Py_True)
			    : NULL;
	PyObject *r = kw ? PyObject_Call(fn, args, kw) : NULL;
	Py_XDECREF(kw);
	Py_XDECREF(args);
	Py_XDECREF(fn);
	return r;
}

/* A run_test that ended after cancel: whatever it returned or raised
 * comes of the kill. Its results get an "infra" result saying so (as
 * libatex's own executor writes) and C gets ATEX_ECANCELED. With the
 * GIL; an exception set is dropped. */
static int bridge_canceled(PyObject *artifacts, const char *test_name)
{
	PyErr_Clear();
	PyObject *mod = PyImport_ImportModule("atex.executor");
	PyObject *r =
		mod ? PyObject_CallMethod(mod, "_mark_canceled", "O", artifacts)
		    : NULL;
	if (!r) {
		/* The results stay as the test left them. */
		PyErr_WriteUnraisable(mod);
		PyErr_Clear();
	}
	Py_XDECREF(r);
	Py_XDECREF(mod);
	char msg[1024];
	snprintf(msg, sizeof(msg), "%s: the run was canceled", test_name);
	return atex_error_set_message(ATEX_ECANCELED, msg);
}

static int bridge_run_test(atex_executor *e, const char *test_name,
			   const char *artifacts_dir, const char *const *env,
			   int *exit_code)
{
	struct bridge *b = to_bridge(e);
	PyGILState_STATE g = PyGILState_Ensure();
	/* A cancel before this test began did not reach it. */
	atomic_store(&b->canceled, false);
	PyObject *name = atexpy_str(test_name);
	PyObject *path = atexpy_str(artifacts_dir);
	PyObject *envd = env_dict(env), *r = NULL, *pathlib, *p = NULL;
	/* Python ATEX's executors get a Path and an existing directory. */
	pathlib = name && path ? PyImport_ImportModule("pathlib") : NULL;
	p = pathlib ? PyObject_CallMethod(pathlib, "Path", "O", path) : NULL;
	PyObject *made = p ? mkdir_p(p) : NULL;
	/* env only when there is some: Executor.run_test takes none. */
	if (made && envd) {
		PyObject *a = Py_BuildValue("(OO)", name, p);
		PyObject *kw = a ? Py_BuildValue("{sO}", "env", envd) : NULL;
		PyObject *fn =
			kw ? PyObject_GetAttrString(b->obj, "run_test") : NULL;
		r = fn ? PyObject_Call(fn, a, kw) : NULL;
		Py_XDECREF(fn);
		Py_XDECREF(kw);
		Py_XDECREF(a);
	} else if (made) {
		r = PyObject_CallMethod(b->obj, "run_test", "OO", name, p);
	}
	int rc = 0;
	long code = -1;
	/* An int exit code; None (no code) is -1. */
	if (r && r != Py_None)
		code = PyLong_AsLong(r);
	if (made && atomic_load(&b->canceled))
		rc = bridge_canceled(p, test_name);
	else if (!r || PyErr_Occurred())
		rc = bridge_fail(b, "run_test");
	else if (exit_code)
		*exit_code = (int)code;
	Py_XDECREF(r);
	Py_XDECREF(made);
	Py_XDECREF(p);
	Py_XDECREF(pathlib);
	Py_XDECREF(envd);
	Py_XDECREF(path);
	Py_XDECREF(name);
	PyGILState_Release(g);
	return rc;
}

static void bridge_free(atex_executor *e)
{
	/* Borrowed by C: the Python object frees it. */
	(void)e;
}

static const struct atex_executor_ops bridge_ops = {
	.version = ATEX_EXECUTOR_OPS_VERSION,
	.start = bridge_start,
	.run_test = bridge_run_test,
	.cancel = bridge_cancel,
	.stop = bridge_stop,
	.free = bridge_free,
};

static void bridge_dealloc(Bridge *self)
{
	Py_CLEAR(self->b.exc);
	PyObject_Free(self);
}

/* take_exception(): the exception a method raised for C (and forgets
 * it), or None. */
static PyObject *bridge_take_exception(Bridge *self, PyObject *unused)
{
	(void)unused;
	PyObject *exc = self->b.exc;
	self->b.exc = NULL;
	if (!exc)
		Py_RETURN_NONE;
	return exc;
}

static PyMethodDef bridge_methods[] = {
	{"take_exception", (PyCFunction)bridge_take_exception, METH_NOARGS,
	 "The first exception a method raised when C called it, or None."},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject BridgeType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.ExecutorBridge",
	.tp_basicsize = sizeof(Bridge),
	.tp_dealloc = (destructor)bridge_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "libatex's view of a Python Executor (calls its methods).",
	.tp_methods = bridge_methods,
};

/* The object's bridge, made on first use and kept as its _atex_bridge
 * attribute (a borrowed pointer back: no cycle). */
static atex_executor *bridge_of(PyObject *executor)
{
	PyObject *have = PyObject_GetAttrString(executor, "_atex_bridge");
	if (have && PyObject_TypeCheck(have, &BridgeType)) {
		atex_executor *e = &((Bridge *)have)->b.base;
		Py_DECREF(have); /* the object keeps it */
		return e;
	}
	Py_XDECREF(have);
	PyErr_Clear();
	Bridge *b = PyObject_New(Bridge, &BridgeType);
	if (!b)
		return NULL;
	b->b.base.ops = &bridge_ops;
	b->b.obj = executor;
	b->b.exc = NULL;
	atomic_init(&b->b.canceled, false);
	int rc =
		PyObject_SetAttrString(executor, "_atex_bridge", (PyObject *)b);
	Py_DECREF(b);
	if (rc < 0)
		return NULL;
	return &b->b.base;
}

/* _atex.executor_bridge_selftest(executor, name, artifacts, env): runs
 * start, run_test, stop through atexpy_executor_ptr as C does, from a C
 * thread; -> (rc of run_test, exit_code, message). */
struct selftest {
	atex_executor *e;
	const char *name, *artifacts;
	char **env;
	int start_rc, rc, stop_rc, exit_code;
	char message[1024];
};

static int selftest_fn(void *arg)
{
	struct selftest *t = arg;
	t->start_rc = atex_executor_start(t->e);
	t->rc = atex_executor_run_test(t->e, t->name, t->artifacts,
				       (const char *const *)t->env,
				       &t->exit_code);
	snprintf(t->message, sizeof(t->message), "%s",
		 t->rc ? atex_error_last() : "");
	t->stop_rc = atex_executor_stop(t->e);
	return 0;
}

static PyObject *py_bridge_selftest(PyObject *self, PyObject *args)
{
	PyObject *executor, *name_obj, *art_obj, *env = Py_None;
	(void)self;
	if (!PyArg_ParseTuple(args, "OOO|O", &executor, &name_obj, &art_obj,
			      &env))
		return NULL;
	struct selftest t = {.exit_code = -1};
	t.e = atexpy_executor_ptr(executor);
	char *name = t.e ? atexpy_path(name_obj, "name") : NULL;
	char *art = name ? atexpy_path(art_obj, "artifacts") : NULL;
	t.env = art ? atexpy_envv(env, "env") : NULL;
	PyObject *r = NULL;
	if (t.env) {
		t.name = name;
		t.artifacts = art;
		/* From another thread, as the orchestrator calls. */
		if (atexpy_call(selftest_fn, &t, NULL, NULL, NULL) == 0)
			r = Py_BuildValue("(iiiis)", t.start_rc, t.rc,
					  t.exit_code, t.stop_rc, t.message);
	}
	free(name);
	free(art);
	atexpy_strv_free(t.env);
	return r;
}

static PyMethodDef executor_functions[] = {
	{"_executor_bridge_selftest", py_bridge_selftest, METH_VARARGS,
	 "(executor, name, artifacts[, env]) -> (start_rc, rc, exit_code, "
	 "stop_rc, message): the calls C makes, from a C thread."},
	{NULL, NULL, 0, NULL},
};

int atexpy_init_executor(PyObject *module)
{
	if (PyType_Ready(&FmfHandleType) < 0 || PyType_Ready(&BridgeType) < 0 ||
	    PyModule_AddObjectRef(module, "FMFExecutorHandle",
				  (PyObject *)&FmfHandleType) < 0 ||
	    PyModule_AddObjectRef(module, "ExecutorBridge",
				  (PyObject *)&BridgeType) < 0)
		return -1;
	return PyModule_AddFunctions(module, executor_functions);
}

atex_executor *atexpy_executor_ptr(PyObject *executor)
{
	/* Built-ins not overridden give their own handle; others None. */
	PyObject *h = PyObject_CallMethod(executor, "_atex_handle", NULL);
	if (!h) {
		if (!PyErr_ExceptionMatches(PyExc_AttributeError))
			return NULL;
		PyErr_Clear();
		PyObject *base = PyImport_ImportModule("atex.executor");
		PyObject *cls =
			base ? PyObject_GetAttrString(base, "Executor") : NULL;
		int is = cls ? PyObject_IsInstance(executor, cls) : -1;
		Py_XDECREF(cls);
		Py_XDECREF(base);
		if (is < 0)
			return NULL;
		if (!is) {
			PyErr_Format(PyExc_TypeError,
				     "%R is not an atex.executor.Executor",
				     executor);
			return NULL;
		}
		return bridge_of(executor);
	}
	if (h == Py_None) {
		Py_DECREF(h);
		return bridge_of(executor);
	}
	if (!PyObject_TypeCheck(h, &FmfHandleType)) {
		Py_DECREF(h);
		PyErr_SetString(PyExc_TypeError, "_atex_handle: not a handle");
		return NULL;
	}
	atex_executor *e = ((FmfHandle *)h)->e;
	Py_DECREF(h); /* the object keeps its handle */
	return e;
}
