/*
 * _fmf.c - atex._atex: the fmf block (see _atex.h).
 *
 * _atex.FMFDiscovery owns one atex_fmf_discovery. The Python side
 * (atex.executor.fmf.discover, FMFTests) keeps the PA-shaped dicts and
 * pushes a script's edits of FMFTests.data back into it (set_data,
 * remove) before C reads it. Test data crosses as JSON text: jansson on
 * this side, the json module on the other, so every value keeps its type
 * (int, float, bool, null) exactly as libatex holds it.
 */
#include "_atex.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	PyObject_HEAD atex_fmf_discovery *d;
} Discovery;

static PyObject *json_mod; /* the json module, for loads/dumps */
static PyTypeObject DiscoveryType;

/* A json_t as a Python object (through its text). */
static PyObject *from_json(const json_t *value)
{
	char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!text)
		return PyErr_NoMemory();
	PyObject *r = PyObject_CallMethod(json_mod, "loads", "s", text);
	free(text);
	return r;
}

/* A Python object as a new json_t, or NULL with an exception naming
 * `what`. */
static json_t *to_json(PyObject *obj, const char *what)
{
	PyObject *text = PyObject_CallMethod(json_mod, "dumps", "O", obj);
	if (!text) {
		PyObject *type, *value, *tb;
		PyErr_Fetch(&type, &value, &tb);
		PyErr_Format(PyExc_TypeError, "%s: not JSON-like data: %S",
			     what, value ? value : Py_None);
		Py_XDECREF(type);
		Py_XDECREF(value);
		Py_XDECREF(tb);
		return NULL;
	}
	json_error_t err;
	json_t *v = json_loads(PyUnicode_AsUTF8(text),
			       JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	Py_DECREF(text);
	if (!v)
		PyErr_Format(PyExc_ValueError, "%s: %s", what, err.text);
	return v;
}

/* A context dict {dimension: value or list} as a new atex context. */
static atex_fmf_context *context_from(PyObject *mapping)
{
	atex_fmf_context *ctx = NULL;
	if (atex_fmf_context_new(&ctx) < 0) {
		PyErr_NoMemory();
		return NULL;
	}
	/* fmf's Context is case sensitive unless told otherwise. */
	if (!mapping || mapping == Py_None)
		return ctx;
	PyObject *items = PyMapping_Items(mapping);
	if (!items) {
		atex_fmf_context_free(ctx);
		return NULL;
	}
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
		PyObject *kv = PyList_GET_ITEM(items, i);
		PyObject *key = PyTuple_GET_ITEM(kv, 0);
		const char *dim =
			PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
		json_t *value =
			dim ? to_json(PyTuple_GET_ITEM(kv, 1), "context")
			    : NULL;
		int rc = value ? atex_fmf_context_set_json(ctx, dim, value) : 0;
		json_decref(value);
		if (!dim && !PyErr_Occurred())
			PyErr_Format(PyExc_TypeError,
				     "context: dimension %R is not a str", key);
		if (rc < 0)
			atexpy_raise(rc, NULL, NULL);
		if (PyErr_Occurred()) {
			Py_DECREF(items);
			atex_fmf_context_free(ctx);
			return NULL;
		}
	}
	Py_DECREF(items);
	return ctx;
}

struct discover_call {
	atex_fmf_discovery *d;
	const char *path;
	struct atex_fmf_discover_options o;
};

static int discover_fn(void *arg)
{
	struct discover_call *c = arg;
	return atex_fmf_discover(&c->d, c->path, &c->o);
}

/* _atex.fmf_discover(path, plan, names, filters, excludes, context,
 * compat): a new FMFDiscovery. */
static PyObject *py_discover(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path",     "plan",	"names",  "filters",
				 "excludes", "context", "compat", NULL};
	PyObject *path_obj, *plan_obj = Py_None, *names = Py_None,
			    *filters = Py_None, *excludes = Py_None,
			    *context = Py_None;
	int compat = 1;
	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOOOOp", kwlist,
					 &path_obj, &plan_obj, &names, &filters,
					 &excludes, &context, &compat))
		return NULL;

	struct discover_call c = {.o = ATEX_FMF_DISCOVER_OPTIONS_INIT};
	char *path = atexpy_path(path_obj, "fmf_tree");
	char *plan = plan_obj == Py_None ? NULL : atexpy_path(plan_obj, "plan");
	char **vn = names == Py_None ? NULL : atexpy_strv(names, "names");
	char **vf = filters == Py_None ? NULL : atexpy_strv(filters, "filters");
	char **vx =
		excludes == Py_None ? NULL : atexpy_strv(excludes, "excludes");
	atex_fmf_context *ctx = PyErr_Occurred() ? NULL : context_from(context);
	PyObject *r = NULL;
	if (!path || PyErr_Occurred())
		goto out;
	c.path = path;
	c.o.plan = plan;
	c.o.context = ctx;
	c.o.compat_python_atex = compat;
	for (char **p = vn; p && *p; p++)
		c.o.n_tests++;
	for (char **p = vf; p && *p; p++)
		c.o.n_filters++;
	for (char **p = vx; p && *p; p++)
		c.o.n_excludes++;
	c.o.tests = (const char *const *)vn;
	c.o.filters = (const char *const *)vf;
	c.o.excludes = (const char *const *)vx;
	/* A plan may clone a git repository: interruptible. */
	if (atexpy_call_raise(discover_fn, &c, NULL, NULL, NULL) < 0) {
		atex_fmf_discovery_free(c.d);
		goto out;
	}
	Discovery *obj = PyObject_New(Discovery, &DiscoveryType);
	if (!obj) {
		atex_fmf_discovery_free(c.d);
		goto out;
	}
	obj->d = c.d;
	r = (PyObject *)obj;
out:
	free(path);
	free(plan);
	atexpy_strv_free(vn);
	atexpy_strv_free(vf);
	atexpy_strv_free(vx);
	atex_fmf_context_free(ctx);
	return r;
}

static void discovery_dealloc(Discovery *self)
{
	atex_fmf_discovery_free(self->d);
	PyObject_Free(self);
}

/* The index argument, checked against the discovery. */
static int index_arg(Discovery *self, PyObject *arg, size_t *i)
{
	Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_IndexError);
	if (n == -1 && PyErr_Occurred())
		return -1;
	if (n < 0 || (size_t)n >= atex_fmf_discovery_count(self->d)) {
		PyErr_Format(PyExc_IndexError, "no test %zd in the discovery",
			     n);
		return -1;
	}
	*i = (size_t)n;
	return 0;
}

static PyObject *discovery_count(Discovery *self, PyObject *unused)
{
	(void)unused;
	return PyLong_FromSize_t(atex_fmf_discovery_count(self->d));
}

/* tests(): [(name, data, dir, root), ...] for every test, in order. */
static PyObject *discovery_tests(Discovery *self, PyObject *unused)
{
	(void)unused;
	size_t n = atex_fmf_discovery_count(self->d);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		json_t *data = atex_fmf_discovery_test_data_ref(self->d, i);
		PyObject *pydata = data ? from_json(data) : PyErr_NoMemory();
		json_decref(data);
		PyObject *item =
			pydata ? Py_BuildValue(
					 "(NNNN)",
					 atexpy_str(
						 atex_fmf_discovery_test_name(
							 self->d, i)),
					 pydata,
					 atexpy_str(atex_fmf_discovery_test_dir(
						 self->d, i)),
					 atexpy_str(
						 atex_fmf_discovery_test_root(
							 self->d, i)))
			       : NULL;
		if (!item) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, item);
	}
	return list;
}

static PyObject *discovery_plan(Discovery *self, PyObject *unused)
{
	(void)unused;
	return from_json(atex_fmf_discovery_plan(self->d));
}

static PyObject *discovery_environment(Discovery *self, PyObject *unused)
{
	(void)unused;
	return from_json(atex_fmf_discovery_environment(self->d));
}

/* set_data(i, dict): the i-th test's data becomes `dict` (copied). The
 * discovery's object is replaced, never changed: executor and
 * orchestrator threads may be reading the old one right now. */
static PyObject *discovery_set_data(Discovery *self, PyObject *args)
{
	PyObject *index, *data;
	size_t i;
	if (!PyArg_ParseTuple(args, "OO!", &index, &PyDict_Type, &data) ||
	    index_arg(self, index, &i) < 0)
		return NULL;
	const char *name = atex_fmf_discovery_test_name(self->d, i);
	json_t *value = to_json(data, name);
	if (!value)
		return NULL;
	int rc = atex_fmf_discovery_set_test_data(self->d, i, value);
	json_decref(value);
	if (rc < 0)
		return atexpy_raise(rc, NULL, NULL);
	Py_RETURN_NONE;
}

/* Whether the Python value `obj` is exactly the JSON value `v`: same
 * structure, same types (1, 1.0 and True differ, as they do in JSON
 * text). 1 same, 0 different, -1 with an exception. Anything json.dumps
 * would turn into something else (a tuple, a str subclass's dict) counts
 * as different, so set_data() gets to judge it. */
static int same_json(PyObject *obj, const json_t *v)
{
	if (obj == Py_None)
		return json_is_null(v);
	if (PyBool_Check(obj))
		return obj == Py_True ? json_is_true(v) : json_is_false(v);
	if (PyLong_CheckExact(obj)) {
		int overflow;
		long long n = PyLong_AsLongLongAndOverflow(obj, &overflow);
		if (n == -1 && PyErr_Occurred())
			return -1;
		return !overflow && json_is_integer(v) &&
		       json_integer_value(v) == n;
	}
	if (PyFloat_CheckExact(obj))
		return json_is_real(v) &&
		       json_real_value(v) == PyFloat_AS_DOUBLE(obj);
	if (PyUnicode_CheckExact(obj)) {
		Py_ssize_t len;
		const char *text = PyUnicode_AsUTF8AndSize(obj, &len);
		if (!text)
			return -1;
		return json_is_string(v) &&
		       json_string_length(v) == (size_t)len &&
		       !memcmp(json_string_value(v), text, (size_t)len);
	}
	if (PyList_CheckExact(obj)) {
		Py_ssize_t n = PyList_GET_SIZE(obj);
		if (!json_is_array(v) || json_array_size(v) != (size_t)n)
			return 0;
		for (Py_ssize_t i = 0; i < n; i++) {
			int r = same_json(PyList_GET_ITEM(obj, i),
					  json_array_get(v, (size_t)i));
			if (r <= 0)
				return r;
		}
		return 1;
	}
	if (PyDict_CheckExact(obj)) {
		if (!json_is_object(v) ||
		    json_object_size(v) != (size_t)PyDict_GET_SIZE(obj))
			return 0;
		PyObject *key, *value;
		Py_ssize_t pos = 0;
		while (PyDict_Next(obj, &pos, &key, &value)) {
			if (!PyUnicode_CheckExact(key))
				return 0;
			Py_ssize_t len;
			const char *k = PyUnicode_AsUTF8AndSize(key, &len);
			if (!k)
				return -1;
			if (strlen(k) != (size_t)len)
				return 0; /* a NUL in the key */
			json_t *item = json_object_get(v, k);
			int r = item ? same_json(value, item) : 0;
			if (r <= 0)
				return r;
		}
		return 1;
	}
	return 0;
}

/* same(i, dict): whether the i-th test's data in libatex is exactly
 * `dict` (so FMFTests._sync pushes only what a script changed). */
static PyObject *discovery_same(Discovery *self, PyObject *args)
{
	PyObject *index, *data;
	size_t i;
	if (!PyArg_ParseTuple(args, "OO", &index, &data) ||
	    index_arg(self, index, &i) < 0)
		return NULL;
	json_t *own = atex_fmf_discovery_test_data_ref(self->d, i);
	if (!own)
		return PyErr_NoMemory();
	int r = same_json(data, own);
	json_decref(own);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *discovery_remove(Discovery *self, PyObject *index)
{
	size_t i;
	if (index_arg(self, index, &i) < 0)
		return NULL;
	int rc = atex_fmf_discovery_remove(self->d, i);
	if (rc < 0)
		return atexpy_raise(rc, NULL, NULL);
	Py_RETURN_NONE;
}

static PyObject *discovery_get_root(Discovery *self, void *unused)
{
	(void)unused;
	return atexpy_str(atex_fmf_discovery_root(self->d));
}

static PyObject *discovery_get_plan_name(Discovery *self, void *unused)
{
	(void)unused;
	return atexpy_str(atex_fmf_discovery_plan_name(self->d));
}

static PyMethodDef discovery_methods[] = {
	{"count", (PyCFunction)discovery_count, METH_NOARGS,
	 "Number of tests."},
	{"tests", (PyCFunction)discovery_tests, METH_NOARGS,
	 "[(name, data, dir, root), ...]: every test, in order."},
	{"plan", (PyCFunction)discovery_plan, METH_NOARGS,
	 "The plan's adjusted data (a new dict; {} without a plan)."},
	{"environment", (PyCFunction)discovery_environment, METH_NOARGS,
	 "The plan's environment as a dict of strings."},
	{"set_data", (PyCFunction)discovery_set_data, METH_VARARGS,
	 "set_data(i, dict): replace the i-th test's data."},
	{"same", (PyCFunction)discovery_same, METH_VARARGS,
	 "same(i, dict): whether the i-th test's data is exactly dict."},
	{"remove", (PyCFunction)discovery_remove, METH_O,
	 "remove(i): drop the i-th test."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef discovery_getset[] = {
	{"root", (getter)discovery_get_root, NULL,
	 "The absolute path of the tree root.", NULL},
	{"plan_name", (getter)discovery_get_plan_name, NULL,
	 "The plan's name, or None.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DiscoveryType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.FMFDiscovery",
	.tp_basicsize = sizeof(Discovery),
	.tp_dealloc = (destructor)discovery_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "libatex's fmf discovery (made by _atex.fmf_discover).",
	.tp_methods = discovery_methods,
	.tp_getset = discovery_getset,
};

static PyMethodDef fmf_functions[] = {
	{"fmf_discover", (PyCFunction)(void (*)(void))py_discover,
	 METH_VARARGS | METH_KEYWORDS,
	 "fmf_discover(path, plan=None, names=None, filters=None, "
	 "excludes=None, context=None, compat=True) -> FMFDiscovery"},
	{NULL, NULL, 0, NULL},
};

int atexpy_init_fmf(PyObject *module)
{
	json_mod = PyImport_ImportModule("json");
	if (!json_mod || PyType_Ready(&DiscoveryType) < 0 ||
	    PyModule_AddObjectRef(module, "FMFDiscovery",
				  (PyObject *)&DiscoveryType) < 0)
		return -1;
	return PyModule_AddFunctions(module, fmf_functions);
}

atex_fmf_discovery *atexpy_discovery_ptr(PyObject *fmf_tests)
{
	/* FMFTests._sync() pushes the script's edits of .data and returns
	 * the FMFDiscovery. */
	PyObject *obj = PyObject_CallMethod(fmf_tests, "_sync", NULL);
	if (!obj)
		return NULL;
	if (!PyObject_TypeCheck(obj, &DiscoveryType)) {
		PyErr_Format(PyExc_TypeError,
			     "%.100s._sync() did not give an FMFDiscovery",
			     Py_TYPE(fmf_tests)->tp_name);
		Py_DECREF(obj);
		return NULL;
	}
	atex_fmf_discovery *d = ((Discovery *)obj)->d;
	/* Borrowed: fmf_tests keeps the FMFDiscovery alive. */
	Py_DECREF(obj);
	return d;
}
