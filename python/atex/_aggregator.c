/*
 * _aggregator.c - atex._atex: the aggregator block (see _atex.h).
 *
 *  - _atex.AggregatorHandle: one libatex aggregator (JSON Lines, YAML,
 *    SQLite and its earlier-attempts view), made by the module functions
 *    AggregatorJSONLines, AggregatorYAML, AggregatorSQLite and
 *    AggregatorSQLiteEarlier. start/ingest/stop run with the GIL
 *    released (ingest is thread-safe in libatex: Python threads ingest in
 *    parallel).
 *  - _atex.AggregatorBridge: an atex_aggregator whose operations call a
 *    Python object's start()/ingest()/stop(), taking the GIL per call,
 *    for atexpy_aggregator_ptr() on an aggregator written in Python (or a
 *    built-in one whose Python methods do part of the work). It lives in
 *    the Python object's `_atex_bridge` attribute, so that it lives as
 *    long as the object; the object is borrowed (no cycle).
 *  - _atex.AggregatorDrive: calls an aggregator's libatex operations from
 *    C threads, as the orchestrator does (tests and tools).
 */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "_atex.h"

/* ------------------------------------------------------------------------
 * AggregatorHandle
 */

typedef struct {
	PyObject_HEAD atex_aggregator *agg;
	PyObject *parent; /* AggregatorSQLiteEarlier: the database's handle */
	PyObject *name;	  /* for repr */
	/* Calls in flight with the GIL released (counted with the GIL): a
	 * close() meanwhile only marks the handle closed, and the last call
	 * out frees the aggregator, never under another thread's feet. */
	int busy;
	bool closed;
} Handle;

static PyTypeObject HandleType;

static int handle_ok(Handle *self);
static void handle_release(Handle *self);

static void handle_dealloc(Handle *self)
{
	/* No call is in flight: each holds a reference. libatex's free
	 * stops a started aggregator. */
	self->closed = true;
	self->busy = 0;
	handle_release(self);
	Py_CLEAR(self->parent);
	Py_CLEAR(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *handle_repr(Handle *self)
{
	return PyUnicode_FromFormat("<_atex.AggregatorHandle %S>",
				    self->name ? self->name : Py_None);
}

static int handle_ok(Handle *self)
{
	if (self->agg && !self->closed)
		return 0;
	PyErr_SetString(PyExc_ValueError, "aggregator handle is closed");
	return -1;
}

/* Frees the aggregator once closed and no call is in flight. With the
 * GIL; libatex's free runs without it (it may write a stream's end). */
static void handle_release(Handle *self)
{
	atex_aggregator *agg = self->agg;

	if (!self->closed || self->busy || !agg)
		return;
	self->agg = NULL;
	Py_BEGIN_ALLOW_THREADS atex_aggregator_free(agg);
	Py_END_ALLOW_THREADS
}

/* A libatex call on the handle with the GIL released. */
static int handle_call(Handle *self, int (*fn)(void *), void *arg,
		       PyObject *fallback)
{
	int rc;

	self->busy++;
	rc = atexpy_call_raise(fn, arg, NULL, NULL, fallback);
	self->busy--;
	handle_release(self);
	return rc;
}

struct op_call {
	atex_aggregator *agg;
	int op; /* 0 start, 1 ingest, 2 stop */
	const char *platform, *test, *artifacts;
	bool consume; /* ingest: remove results and files/ after */
};

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Whether the directory `path` exists and has entries. */
static bool has_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool any = false;

	if (!d)
		return false;
	while (!any && (e = readdir(d)))
		any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return any;
}

/* Python ATEX moves the artifacts; libatex linked (or copied) them: the
 * rest is removed here, in the ingest's own call, so that an ingest is
 * either done and consumed or not done (a Ctrl-C waits for both). An
 * empty files/ is left, as before. Best effort: the results are in. */
static void consume_artifacts(const char *artifacts)
{
	char *results = NULL, *files = NULL;

	if (asprintf(&results, "%s/results", artifacts) < 0)
		results = NULL;
	if (asprintf(&files, "%s/files", artifacts) < 0)
		files = NULL;
	if (results)
		unlink(results);
	if (files && has_entries(files))
		nftw(files, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(results);
	free(files);
}

static int op_run(void *arg)
{
	struct op_call *c = arg;

	switch (c->op) {
	case 0:
		return atex_aggregator_start(c->agg);
	case 1: {
		int rc = atex_aggregator_ingest(c->agg, c->platform, c->test,
						c->artifacts);

		if (!rc && c->consume)
			consume_artifacts(c->artifacts);
		return rc;
	}
	default:
		return atex_aggregator_stop(c->agg);
	}
}

static PyObject *handle_start(Handle *self, PyObject *unused)
{
	struct op_call c = {.op = 0};

	(void)unused;
	if (handle_ok(self) < 0)
		return NULL;
	c.agg = self->agg;
	if (handle_call(self, op_run, &c, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *handle_stop(Handle *self, PyObject *unused)
{
	struct op_call c = {.op = 2};

	(void)unused;
	if (handle_ok(self) < 0)
		return NULL;
	c.agg = self->agg;
	if (handle_call(self, op_run, &c, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* str(obj) as UTF-8 bytes (surrogateescape): a new reference or NULL.
 * A NUL byte is a ValueError naming `what`: C would cut the name there
 * (and write over another test's results). */
static PyObject *name_bytes(PyObject *obj, const char *what)
{
	PyObject *s = PyObject_Str(obj);
	PyObject *b;

	if (!s)
		return NULL;
	b = PyUnicode_AsEncodedString(s, "utf-8", "surrogateescape");
	if (b && strlen(PyBytes_AS_STRING(b)) != (size_t)PyBytes_GET_SIZE(b)) {
		PyErr_Format(PyExc_ValueError, "%s %R: embedded null byte",
			     what, s);
		Py_CLEAR(b);
	}
	Py_DECREF(s);
	return b;
}

static PyObject *handle_ingest(Handle *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"platform", "test_name", "artifacts",
				 "consume", NULL};
	PyObject *platform, *test, *artifacts, *pb = NULL, *tb = NULL;
	struct op_call c = {.op = 1};
	char *dir = NULL;
	PyObject *ret = NULL;
	int consume = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|$p:ingest", kwlist,
					 &platform, &test, &artifacts,
					 &consume))
		return NULL;
	if (handle_ok(self) < 0)
		return NULL;
	c.consume = consume;
	pb = name_bytes(platform, "platform");
	tb = pb ? name_bytes(test, "test name") : NULL;
	dir = tb ? atexpy_path(artifacts, "artifacts") : NULL;
	if (!dir)
		goto out;
	c.agg = self->agg;
	c.platform = PyBytes_AS_STRING(pb);
	c.test = PyBytes_AS_STRING(tb);
	c.artifacts = dir;
	/* A malformed results line (strict reading): ValueError, as
	 * json.loads() raises in Python ATEX. */
	if (handle_call(self, op_run, &c, PyExc_ValueError) == 0)
		ret = Py_NewRef(Py_None);
out:
	free(dir);
	Py_XDECREF(pb);
	Py_XDECREF(tb);
	return ret;
}

static PyObject *handle_close(Handle *self, PyObject *unused)
{
	(void)unused;
	self->closed = true;
	handle_release(self);
	Py_RETURN_NONE;
}

static PyMethodDef handle_methods[] = {
	{"start", (PyCFunction)handle_start, METH_NOARGS,
	 "Starts the aggregator (opens its outputs)."},
	{"ingest", (PyCFunction)(void (*)(void))handle_ingest,
	 METH_VARARGS | METH_KEYWORDS,
	 "ingest(platform, test_name, artifacts, *, consume=False): ingests "
	 "one test, the GIL released; consume: then removes artifacts/results "
	 "and files/ in the same call (all or nothing for Ctrl-C)."},
	{"stop", (PyCFunction)handle_stop, METH_NOARGS,
	 "Flushes and closes the outputs."},
	{"close", (PyCFunction)handle_close, METH_NOARGS,
	 "Frees the aggregator (stopping it first)."},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject HandleType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.AggregatorHandle",
	.tp_basicsize = sizeof(Handle),
	.tp_dealloc = (destructor)handle_dealloc,
	.tp_repr = (reprfunc)handle_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A libatex aggregator (made by _atex.Aggregator* functions).",
	.tp_methods = handle_methods,
};

static PyObject *handle_new(atex_aggregator *agg, const char *name)
{
	Handle *h = PyObject_New(Handle, &HandleType);

	if (!h) {
		atex_aggregator_free(agg);
		return NULL;
	}
	h->agg = agg;
	h->busy = 0;
	h->closed = false;
	h->parent = NULL;
	h->name = atexpy_str(name);
	if (!h->name) {
		Py_DECREF(h);
		return NULL;
	}
	return (PyObject *)h;
}

/* ------------------------------------------------------------------------
 * Constructors
 */

static PyObject *jsonl_new(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path",
				 "files_dir",
				 "compression",
				 "attempt_dirs",
				 "strict",
				 "exclusive",
				 "level",
				 "compress_files",
				 "files_suffix",
				 "files_exclude",
				 NULL};
	struct atex_jsonl_aggregator_options o =
		ATEX_JSONL_AGGREGATOR_OPTIONS_INIT;
	PyObject *path, *files = Py_None, *exclude = Py_None, *ret = NULL;
	int compression = ATEX_COMPRESSION_AUTO, attempt_dirs = 0;
	int strict = 0, exclusive = 0, compress_files = 0;
	unsigned int level = 0;
	const char *suffix = NULL;
	char *p = NULL, *f = NULL, **ex = NULL;
	atex_aggregator *agg = NULL;
	int rc;

	(void)mod;
	if (!PyArg_ParseTupleAndKeywords(
		    args, kw, "O|OipppIizO:AggregatorJSONLines", kwlist, &path,
		    &files, &compression, &attempt_dirs, &strict, &exclusive,
		    &level, &compress_files, &suffix, &exclude))
		return NULL;
	p = atexpy_path(path, "path");
	if (!p)
		return NULL;
	if (files != Py_None && !(f = atexpy_path(files, "files_dir")))
		goto out;
	if (exclude != Py_None && !(ex = atexpy_strv(exclude, "files_exclude")))
		goto out;
	o.path = p;
	o.files_dir = f;
	o.compression = compression;
	o.attempt_dirs = attempt_dirs;
	o.strict = strict;
	o.exclusive = exclusive;
	o.level = level;
	o.compress_files = compress_files;
	o.files_suffix = suffix;
	o.files_exclude = (const char *const *)ex;
	rc = atex_jsonl_aggregator_new(&agg, &o);
	if (rc) {
		atexpy_raise(rc, NULL, NULL);
		goto out;
	}
	ret = handle_new(agg, p);
out:
	atexpy_strv_free(ex);
	free(p);
	free(f);
	return ret;
}

static PyObject *yaml_new(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path",   "files_dir", "compact",
				 "strict", "exclusive", NULL};
	struct atex_yaml_aggregator_options o =
		ATEX_YAML_AGGREGATOR_OPTIONS_INIT;
	PyObject *path, *files = Py_None, *ret = NULL;
	int compact = 0, strict = 0, exclusive = 0;
	char *p = NULL, *f = NULL;
	atex_aggregator *agg = NULL;
	int rc;

	(void)mod;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Oppp:AggregatorYAML",
					 kwlist, &path, &files, &compact,
					 &strict, &exclusive))
		return NULL;
	p = atexpy_path(path, "path");
	if (!p)
		return NULL;
	if (files != Py_None && !(f = atexpy_path(files, "files_dir")))
		goto out;
	o.path = p;
	o.files_dir = f;
	o.compact = compact;
	o.strict = strict;
	o.exclusive = exclusive;
	rc = atex_yaml_aggregator_new_opts(&agg, &o);
	if (rc) {
		atexpy_raise(rc, NULL, NULL);
		goto out;
	}
	ret = handle_new(agg, p);
out:
	free(p);
	free(f);
	return ret;
}

static PyObject *sqlite_new(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path", "files_dir", "run_json", NULL};
	struct atex_sqlite_aggregator_options o =
		ATEX_SQLITE_AGGREGATOR_OPTIONS_INIT;
	PyObject *path, *files = Py_None, *ret = NULL;
	char *p = NULL, *f = NULL;
	const char *run_json = NULL;
	atex_aggregator *agg = NULL;
	int rc;

	(void)mod;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Oz:AggregatorSQLite",
					 kwlist, &path, &files, &run_json))
		return NULL;
	p = atexpy_path(path, "path");
	if (!p)
		return NULL;
	if (files != Py_None && !(f = atexpy_path(files, "files_dir")))
		goto out;
	o.path = p;
	o.files_dir = f;
	o.run_json = run_json;
	rc = atex_sqlite_aggregator_new(&agg, &o);
	if (rc) {
		atexpy_raise(rc, NULL, NULL);
		goto out;
	}
	ret = handle_new(agg, p);
out:
	free(p);
	free(f);
	return ret;
}

/* The earlier-attempts view of the aggregator behind `arg` (a handle),
 * made by `make`; `who` names the Python call and the aggregator kind
 * in the TypeError. The view keeps its aggregator alive: it must be freed
 * first. */
static PyObject *earlier_view(PyObject *arg, const char *who,
			      int (*make)(atex_aggregator **,
					  atex_aggregator *))
{
	Handle *parent = (Handle *)arg, *h;
	atex_aggregator *agg = NULL;
	int rc;

	if (!PyObject_TypeCheck(arg, &HandleType)) {
		PyErr_Format(PyExc_TypeError, "%s aggregator is needed", who);
		return NULL;
	}
	if (handle_ok(parent) < 0)
		return NULL;
	rc = make(&agg, parent->agg);
	if (rc)
		return atexpy_raise(rc, NULL, NULL);
	h = (Handle *)handle_new(agg, "earlier attempts");
	if (!h)
		return NULL;
	h->parent = Py_NewRef(arg);
	return (PyObject *)h;
}

static PyObject *sqlite_earlier(PyObject *mod, PyObject *arg)
{
	(void)mod;
	return earlier_view(arg,
			    "AggregatorSQLiteEarlier: an AggregatorHandle "
			    "of a SQLite",
			    atex_sqlite_aggregator_earlier);
}

/* ReportPortal: the strings are copied by libatex; attributes a sequence
 * of "key:value" strings. */
static PyObject *rp_new(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"url",
				 "project",
				 "token",
				 "launch_name",
				 "launch_rerun",
				 "join_subtest",
				 "description",
				 "attributes",
				 "retry_total",
				 "timeout",
				 "launch_per_platform",
				 NULL};
	struct atex_reportportal_aggregator_options o =
		ATEX_REPORTPORTAL_AGGREGATOR_OPTIONS_INIT;
	PyObject *attrs = Py_None, *seq = NULL, *ret = NULL;
	const char **list = NULL;
	double retry = 0, timeout = 0;
	atex_aggregator *agg = NULL;
	Py_ssize_t n = 0;
	int rc, per_platform = 0;

	(void)mod;
	if (!PyArg_ParseTupleAndKeywords(
		    args, kw, "ssz|zzzzOddp:AggregatorReportPortal", kwlist,
		    &o.url, &o.project, &o.token, &o.launch_name,
		    &o.launch_rerun, &o.join_subtest, &o.description, &attrs,
		    &retry, &timeout, &per_platform))
		return NULL;
	o.launch_per_platform = per_platform;
	if (attrs != Py_None) {
		seq = PySequence_Fast(attrs, "attributes: a list of strings");
		if (!seq)
			return NULL;
		n = PySequence_Fast_GET_SIZE(seq);
		list = calloc((size_t)n + 1, sizeof(*list));
		if (!list) {
			PyErr_NoMemory();
			goto out;
		}
		for (Py_ssize_t i = 0; i < n; i++) {
			list[i] = PyUnicode_AsUTF8(
				PySequence_Fast_GET_ITEM(seq, i));
			if (!list[i])
				goto out;
		}
		o.attributes = list;
	}
	if (retry < 0 || retry > 86400 * 7 || timeout < 0 || timeout > 86400) {
		PyErr_SetString(PyExc_ValueError,
				"retry_total: 0 to a week, timeout: 0 to a day "
				"(seconds)");
		goto out;
	}
	o.retry_total_ms = (int)(retry * 1000);
	o.timeout_ms = (int)(timeout * 1000);
	rc = atex_reportportal_aggregator_new(&agg, &o);
	if (rc) {
		atexpy_raise(rc, NULL, NULL);
		goto out;
	}
	ret = handle_new(agg, o.url);
out:
	free(list);
	Py_XDECREF(seq);
	return ret;
}

static PyObject *rp_earlier(PyObject *mod, PyObject *arg)
{
	(void)mod;
	return earlier_view(arg,
			    "AggregatorReportPortalEarlier: an "
			    "AggregatorHandle of a ReportPortal",
			    atex_reportportal_aggregator_earlier);
}

static PyObject *rp_launch(PyObject *mod, PyObject *arg)
{
	(void)mod;
	if (!PyObject_TypeCheck(arg, &HandleType)) {
		PyErr_SetString(PyExc_TypeError,
				"ReportPortalLaunch: an AggregatorHandle is "
				"needed");
		return NULL;
	}
	if (handle_ok((Handle *)arg) < 0)
		return NULL;
	return atexpy_str(atex_reportportal_launch_uuid(((Handle *)arg)->agg));
}

/* ------------------------------------------------------------------------
 * The bridge: libatex calls a Python object's methods.
 */

struct bridge {
	atex_aggregator base;
	PyObject *obj; /* borrowed: the object owns the bridge */
	PyObject *exc; /* the first exception its methods raised */
};

typedef struct {
	PyObject_HEAD struct bridge b;
} Bridge;

static PyTypeObject BridgeType;

/* The libatex code for a Python exception (set), and its text as the
 * thread's libatex error message; the exception is kept. With the GIL. */
static int bridge_fail(struct bridge *b, const char *op)
{
	static const struct {
		PyObject **cls;
		int code;
	} map[] = {
		{&PyExc_FileNotFoundError, ATEX_ENOTFOUND},
		{&PyExc_FileExistsError, ATEX_EEXISTS},
		{&PyExc_TimeoutError, ATEX_ETIMEDOUT},
		{&PyExc_MemoryError, ATEX_ENOMEM},
		{&PyExc_ValueError, ATEX_EINVAL},
		{&PyExc_TypeError, ATEX_EINVAL},
		{&PyExc_OSError, ATEX_EIO},
	};
	PyObject *type, *value, *tb, *text = NULL, *code = NULL;
	const char *msg = NULL;
	int rc = ATEX_ERROR;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	code = value ? PyObject_GetAttrString(value, "atex_code") : NULL;
	if (code && PyLong_Check(code))
		rc = (int)PyLong_AsLong(code);
	else
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (PyErr_GivenExceptionMatches(type, *map[i].cls)) {
				rc = map[i].code;
				break;
			}
	Py_XDECREF(code);
	PyErr_Clear();
	text = value ? PyUnicode_FromFormat("%s.%s() raised %s: %S",
					    Py_TYPE(b->obj)->tp_name, op,
					    ((PyTypeObject *)type)->tp_name,
					    value)
		     : NULL;
	msg = text ? PyUnicode_AsUTF8(text) : NULL;
	atex_error_set_message(rc, msg ? msg : "a Python exception");
	PyErr_Clear();
	Py_XDECREF(text);
	PyErr_Restore(type, value, tb);
	atexpy_keep_exception(&b->exc);
	return rc;
}

static int bridge_method(struct bridge *b, const char *op, PyObject *args)
{
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *m = PyObject_GetAttrString(b->obj, op);
	PyObject *r = m ? PyObject_CallObject(m, args) : NULL;
	int rc = r ? 0 : bridge_fail(b, op);

	Py_XDECREF(r);
	Py_XDECREF(m);
	PyGILState_Release(g);
	return rc;
}

static int bridge_start(atex_aggregator *a)
{
	return bridge_method((struct bridge *)a, "start", NULL);
}

static int bridge_stop(atex_aggregator *a)
{
	return bridge_method((struct bridge *)a, "stop", NULL);
}

static int bridge_ingest(atex_aggregator *a, const char *platform,
			 const char *test_name, const char *artifacts_dir)
{
	struct bridge *b = (struct bridge *)a;
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *args =
		Py_BuildValue("(NNN)", atexpy_str(platform),
			      atexpy_str(test_name), atexpy_str(artifacts_dir));
	int rc;

	if (!args) {
		rc = bridge_fail(b, "ingest");
		PyGILState_Release(g);
		return rc;
	}
	rc = bridge_method(b, "ingest", args);
	Py_DECREF(args);
	PyGILState_Release(g);
	return rc;
}

/* The Python object owns the bridge: libatex's free leaves it. */
static void bridge_free(atex_aggregator *a)
{
	(void)a;
}

static const struct atex_aggregator_ops bridge_ops = {
	.version = ATEX_AGGREGATOR_OPS_VERSION,
	.start = bridge_start,
	.ingest = bridge_ingest,
	.stop = bridge_stop,
	.free = bridge_free,
};

static void bridge_dealloc(Bridge *self)
{
	Py_CLEAR(self->b.exc);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *bridge_take_exception(Bridge *self, PyObject *unused)
{
	PyObject *e = self->b.exc;

	(void)unused;
	self->b.exc = NULL;
	return e ? e : Py_NewRef(Py_None);
}

static PyMethodDef bridge_methods[] = {
	{"take_exception", (PyCFunction)bridge_take_exception, METH_NOARGS,
	 "The first exception the object's methods raised when libatex "
	 "called them (None), forgotten after."},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject BridgeType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.AggregatorBridge",
	.tp_basicsize = sizeof(Bridge),
	.tp_dealloc = (destructor)bridge_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "libatex's view of an aggregator written in Python.",
	.tp_methods = bridge_methods,
};

static Bridge *bridge_of(PyObject *obj, bool make)
{
	PyObject *v = PyObject_GetAttrString(obj, "_atex_bridge");
	Bridge *b;

	if (v && PyObject_TypeCheck(v, &BridgeType)) {
		Py_DECREF(v); /* kept alive by the attribute */
		return (Bridge *)v;
	}
	Py_XDECREF(v);
	PyErr_Clear();
	if (!make)
		return NULL;
	b = PyObject_New(Bridge, &BridgeType);
	if (!b)
		return NULL;
	b->b.base.ops = &bridge_ops;
	b->b.obj = obj;
	b->b.exc = NULL;
	if (PyObject_SetAttrString(obj, "_atex_bridge", (PyObject *)b) < 0) {
		Py_DECREF(b);
		return NULL;
	}
	Py_DECREF(b);
	return b;
}

atex_aggregator *atexpy_aggregator_ptr(PyObject *aggregator)
{
	PyObject *native;

	if (PyObject_TypeCheck(aggregator, &HandleType))
		return handle_ok((Handle *)aggregator) < 0
			       ? NULL
			       : ((Handle *)aggregator)->agg;
	for (const char *const *m =
		     (const char *const[]){"start", "ingest", "stop", NULL};
	     *m; m++)
		if (!PyObject_HasAttrString(aggregator, *m)) {
			PyErr_Format(PyExc_TypeError,
				     "%s is not an aggregator: no %s() method",
				     Py_TYPE(aggregator)->tp_name, *m);
			return NULL;
		}
	/* A built-in whose libatex aggregator does all the work, and whose
	 * methods the object's class does not override. */
	native = PyObject_CallMethod(aggregator, "_atex_native", NULL);
	if (!native)
		PyErr_Clear();
	if (native && PyObject_TypeCheck(native, &HandleType)) {
		atex_aggregator *a = handle_ok((Handle *)native) < 0
					     ? NULL
					     : ((Handle *)native)->agg;

		Py_DECREF(native); /* the object keeps its handle */
		return a;
	}
	Py_XDECREF(native);
	Bridge *b = bridge_of(aggregator, true);
	return b ? &b->b.base : NULL;
}

PyObject *atexpy_aggregator_take_exception(PyObject *aggregator)
{
	Bridge *b = bridge_of(aggregator, false);

	return b ? bridge_take_exception(b, NULL) : Py_NewRef(Py_None);
}

/* ------------------------------------------------------------------------
 * AggregatorDrive: libatex calls from C threads.
 */

struct drive_item {
	char *platform, *test, *artifacts;
	int rc;
	char *message;
};

struct drive {
	atex_aggregator *agg;
	struct drive_item *items;
	size_t n, threads;
	bool start, stop;
	int start_rc, stop_rc;
	char *start_msg, *stop_msg;
	size_t next; /* under lock */
	pthread_mutex_t lock;
};

static void *drive_worker(void *arg)
{
	struct drive *d = arg;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&d->lock);
		i = d->next++;
		pthread_mutex_unlock(&d->lock);
		if (i >= d->n)
			return NULL;
		struct drive_item *it = &d->items[i];

		it->rc = atex_aggregator_ingest(d->agg, it->platform, it->test,
						it->artifacts);
		if (it->rc)
			it->message = strdup(atex_error_last());
	}
}

static int drive_run(void *arg)
{
	struct drive *d = arg;
	pthread_t *t = calloc(d->threads, sizeof(*t));
	size_t started = 0;

	if (!t)
		return ATEX_ENOMEM;
	if (d->start && (d->start_rc = atex_aggregator_start(d->agg)))
		d->start_msg = strdup(atex_error_last());
	if (!d->start_rc)
		for (; started < d->threads; started++)
			if (pthread_create(&t[started], NULL, drive_worker, d))
				break;
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	if (d->stop && (d->stop_rc = atex_aggregator_stop(d->agg)))
		d->stop_msg = strdup(atex_error_last());
	free(t);
	return 0;
}

static PyObject *rc_pair(int rc, const char *msg)
{
	return Py_BuildValue("(iN)", rc, atexpy_str(msg));
}

static void drive_clear(struct drive *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].platform);
		free(d->items[i].test);
		free(d->items[i].artifacts);
		free(d->items[i].message);
	}
	free(d->items);
	free(d->start_msg);
	free(d->stop_msg);
	pthread_mutex_destroy(&d->lock);
}

static int drive_items(struct drive *d, PyObject *items)
{
	PyObject *seq = PySequence_Fast(items, "items must be a sequence");

	if (!seq)
		return -1;
	d->n = (size_t)PySequence_Fast_GET_SIZE(seq);
	d->items = calloc(d->n ? d->n : 1, sizeof(*d->items));
	if (!d->items) {
		Py_DECREF(seq);
		PyErr_NoMemory();
		return -1;
	}
	for (size_t i = 0; i < d->n; i++) {
		PyObject *it = PySequence_Fast_GET_ITEM(seq, i), *pb, *tb;
		PyObject *p, *t, *a;

		if (!PyArg_ParseTuple(it,
				      "OOO;items are (platform, test_name, "
				      "artifacts)",
				      &p, &t, &a))
			goto fail;
		pb = name_bytes(p, "platform");
		tb = pb ? name_bytes(t, "test name") : NULL;
		if (tb) {
			d->items[i].platform = strdup(PyBytes_AS_STRING(pb));
			d->items[i].test = strdup(PyBytes_AS_STRING(tb));
			d->items[i].artifacts = atexpy_path(a, "artifacts");
		}
		Py_XDECREF(pb);
		Py_XDECREF(tb);
		if (!d->items[i].artifacts)
			goto fail;
	}
	Py_DECREF(seq);
	return 0;
fail:
	Py_DECREF(seq);
	return -1;
}

static PyObject *drive(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"aggregator", "items", "threads",
				 "start",      "stop",	NULL};
	struct drive d = {.threads = 1};
	PyObject *agg, *items, *res = NULL, *list = NULL;
	Py_ssize_t threads = 1;
	int start = 0, stop = 0;

	(void)mod;
	pthread_mutex_init(&d.lock, NULL);
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|npp:AggregatorDrive",
					 kwlist, &agg, &items, &threads, &start,
					 &stop))
		goto out;
	if (threads < 1 || threads > 64) {
		PyErr_SetString(PyExc_ValueError, "threads: 1 to 64");
		goto out;
	}
	d.agg = atexpy_aggregator_ptr(agg);
	if (!d.agg || drive_items(&d, items) < 0)
		goto out;
	d.threads = (size_t)threads;
	d.start = start;
	d.stop = stop;
	/* The aggregator object must outlive the call: `agg` is the
	 * caller's argument, held for its duration. */
	if (atexpy_call(drive_run, &d, NULL, NULL, NULL) == ATEXPY_EPYTHON)
		goto out;
	list = PyList_New((Py_ssize_t)d.n);
	for (size_t i = 0; list && i < d.n; i++) {
		PyObject *p = rc_pair(d.items[i].rc, d.items[i].message);

		if (!p) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, p);
	}
	if (list)
		res = Py_BuildValue("{s:N,s:N,s:N}", "start",
				    rc_pair(d.start_rc, d.start_msg), "ingest",
				    list, "stop",
				    rc_pair(d.stop_rc, d.stop_msg));
out:
	drive_clear(&d);
	return res;
}

/* ------------------------------------------------------------------------ */

static PyMethodDef functions[] = {
	{"AggregatorJSONLines", (PyCFunction)(void (*)(void))jsonl_new,
	 METH_VARARGS | METH_KEYWORDS,
	 "AggregatorJSONLines(path, files_dir=None, compression=AUTO, "
	 "attempt_dirs=False, strict=False, exclusive=False, level=0)"},
	{"AggregatorYAML", (PyCFunction)(void (*)(void))yaml_new,
	 METH_VARARGS | METH_KEYWORDS,
	 "AggregatorYAML(path, files_dir=None): atex's YAML layout"},
	{"AggregatorSQLite", (PyCFunction)(void (*)(void))sqlite_new,
	 METH_VARARGS | METH_KEYWORDS,
	 "AggregatorSQLite(path, files_dir=None)"},
	{"AggregatorSQLiteEarlier", (PyCFunction)sqlite_earlier, METH_O,
	 "AggregatorSQLiteEarlier(sqlite_handle): the earlier-attempts view"},
	{"AggregatorReportPortal", (PyCFunction)(void (*)(void))rp_new,
	 METH_VARARGS | METH_KEYWORDS,
	 "AggregatorReportPortal(url, project, token, launch_name=None, "
	 "launch_rerun=None, join_subtest=None, description=None, "
	 "attributes=None, retry_total=0, timeout=0, "
	 "launch_per_platform=False)"},
	{"AggregatorReportPortalEarlier", (PyCFunction)rp_earlier, METH_O,
	 "AggregatorReportPortalEarlier(handle): the earlier-attempts view"},
	{"ReportPortalLaunch", (PyCFunction)rp_launch, METH_O,
	 "ReportPortalLaunch(handle): the launch UUID, or None"},
	{"AggregatorDrive", (PyCFunction)(void (*)(void))drive,
	 METH_VARARGS | METH_KEYWORDS,
	 "AggregatorDrive(aggregator, items, threads=1, start=False, "
	 "stop=False): libatex's start/ingest/stop of `aggregator` (any "
	 "aggregator object) called from `threads` C threads; returns "
	 "{'start': (rc, msg), 'ingest': [(rc, msg)...], 'stop': (rc, msg)}"},
	{NULL, NULL, 0, NULL},
};

int atexpy_init_aggregator(PyObject *module)
{
	static const struct {
		const char *name;
		int value;
	} consts[] = {
		{"AGGREGATOR_COMPRESSION_NONE", ATEX_COMPRESSION_NONE},
		{"AGGREGATOR_COMPRESSION_GZIP", ATEX_COMPRESSION_GZIP},
		{"AGGREGATOR_COMPRESSION_XZ", ATEX_COMPRESSION_XZ},
		{"AGGREGATOR_COMPRESSION_AUTO", ATEX_COMPRESSION_AUTO},
	};

	if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&BridgeType) < 0)
		return -1;
	if (PyModule_AddObjectRef(module, "AggregatorHandle",
				  (PyObject *)&HandleType) < 0 ||
	    PyModule_AddObjectRef(module, "AggregatorBridge",
				  (PyObject *)&BridgeType) < 0 ||
	    PyModule_AddFunctions(module, functions) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
		if (PyModule_AddIntConstant(module, consts[i].name,
					    consts[i].value) < 0)
			return -1;
	return 0;
}
