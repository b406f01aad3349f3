/*
 * _report.c - atex._atex: the report block (see _atex.h).
 *
 * _atex.ReportLoad(path) loads a results file (JSON Lines plain/gz/xz or
 * the SQLite aggregator's database) with the GIL released, into an
 * _atex.ReportResults: a read-only sequence of result tuples
 * (platform, status, test, subtest, note, files, files_dir, attempt,
 * final, start, end, duration, system, exit_code; None for a timing that
 * is unknown) with passed/damaged/run/wall_time and the
 * html/junit/summary/tmt writers (each with the GIL released: rendering
 * is read-only, so threads may render at once). atex.report wraps it.
 */
#include <stdlib.h>

#include "_atex.h"

typedef struct {
	PyObject_HEAD atex_results *r;
} Results;

static PyTypeObject ResultsType;

static void results_dealloc(Results *self)
{
	atex_results_free(self->r);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t results_len(Results *self)
{
	return (Py_ssize_t)atex_results_count(self->r);
}

static PyObject *files_tuple(const struct atex_result *res)
{
	PyObject *t = PyTuple_New((Py_ssize_t)res->n_files);

	for (size_t i = 0; t && i < res->n_files; i++) {
		PyObject *s = atexpy_str(res->files[i]);

		if (!s) {
			Py_CLEAR(t);
			break;
		}
		PyTuple_SET_ITEM(t, (Py_ssize_t)i, s);
	}
	return t;
}

static PyObject *results_item(Results *self, Py_ssize_t i)
{
	const struct atex_result *res;

	if (i < 0 || (size_t)i >= atex_results_count(self->r)) {
		PyErr_SetString(PyExc_IndexError, "result index out of range");
		return NULL;
	}
	res = atex_results_get(self->r, (size_t)i);
	return Py_BuildValue(
		"(NNNNNNNIONNNNN)", atexpy_str(res->platform),
		atexpy_str(res->status), atexpy_str(res->test),
		atexpy_str(res->subtest), atexpy_str(res->note),
		files_tuple(res), atexpy_str(res->files_dir), res->attempt,
		res->final ? Py_True : Py_False, atexpy_str(res->start),
		atexpy_str(res->end),
		res->duration >= 0 ? PyFloat_FromDouble(res->duration)
				   : Py_NewRef(Py_None),
		atexpy_str(res->system),
		res->has_exit_code ? PyLong_FromLong(res->exit_code)
				   : Py_NewRef(Py_None));
}

/* The run's metadata as a dict (context a dict), or None. */
static PyObject *results_run(Results *self, void *unused)
{
	const struct atex_run_info *run = atex_results_run(self->r);
	PyObject *d, *context = NULL, *history = NULL, *json = NULL;

	(void)unused;
	if (!run)
		Py_RETURN_NONE;
	if (run->context || run->history) {
		json = PyImport_ImportModule("json");
		if (!json)
			return NULL;
	}
	if (run->context &&
	    !(context = PyObject_CallMethod(json, "loads", "s", run->context)))
		goto fail;
	if (run->history &&
	    !(history = PyObject_CallMethod(json, "loads", "s", run->history)))
		goto fail;
	Py_XDECREF(json);
	d = Py_BuildValue(
		"{sNsNsNsNsNsNsNsNsNsN}", "started", atexpy_str(run->started),
		"ended", atexpy_str(run->ended), "atex_version",
		atexpy_str(run->atex_version), "platform",
		atexpy_str(run->platform), "provisioner",
		atexpy_str(run->provisioner), "tree", atexpy_str(run->tree),
		"git_commit", atexpy_str(run->git_commit), "context",
		context ? context : Py_NewRef(Py_None), "systems",
		run->systems >= 0 ? PyLong_FromLong(run->systems)
				  : Py_NewRef(Py_None),
		"history", history ? history : Py_NewRef(Py_None));
	return d;
fail:
	Py_XDECREF(context);
	Py_XDECREF(json);
	return NULL;
}

static PyObject *results_wall_time(Results *self, void *unused)
{
	double t = atex_results_wall_time(self->r);

	(void)unused;
	if (t < 0)
		Py_RETURN_NONE;
	return PyFloat_FromDouble(t);
}

static PyObject *results_passed(Results *self, void *unused)
{
	(void)unused;
	return PyBool_FromLong(atex_results_passed(self->r));
}

static PyObject *results_damaged(Results *self, void *unused)
{
	(void)unused;
	return PyLong_FromSize_t(atex_results_damaged(self->r));
}

struct render {
	const atex_results *r;
	const char *path, *title;
	int fd;
	int kind; /* 0 html, 1 junit, 2 summary, 3 tmt */
};

static int render_run(void *arg)
{
	struct render *c = arg;

	switch (c->kind) {
	case 0:
		return atex_report_html(c->r, c->path, c->title);
	case 1:
		return atex_report_junit(c->r, c->path);
	case 3:
		return atex_report_tmt(c->r, c->path);
	default:
		return atex_report_summary(c->r, c->fd);
	}
}

static PyObject *render_to(Results *self, int kind, PyObject *path,
			   const char *title)
{
	struct render c = {.r = self->r, .title = title, .kind = kind};
	char *p = atexpy_path(path, "path");

	if (!p)
		return NULL;
	c.path = p;
	if (atexpy_call_raise(render_run, &c, NULL, NULL, NULL) < 0) {
		free(p);
		return NULL;
	}
	free(p);
	Py_RETURN_NONE;
}

static PyObject *results_html(Results *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path", "title", NULL};
	PyObject *path;
	const char *title = NULL;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|z:html", kwlist, &path,
					 &title))
		return NULL;
	return render_to(self, 0, path, title);
}

static PyObject *results_junit(Results *self, PyObject *path)
{
	return render_to(self, 1, path, NULL);
}

static PyObject *results_tmt(Results *self, PyObject *path)
{
	return render_to(self, 3, path, NULL);
}

static PyObject *results_summary(Results *self, PyObject *arg)
{
	struct render c = {.r = self->r, .kind = 2};

	c.fd = PyObject_AsFileDescriptor(arg);
	if (c.fd < 0)
		return NULL;
	if (atexpy_call_raise(render_run, &c, NULL, NULL, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PySequenceMethods results_seq = {
	.sq_length = (lenfunc)results_len,
	.sq_item = (ssizeargfunc)results_item,
};

static PyGetSetDef results_getset[] = {
	{"passed", (getter)results_passed, NULL,
	 "True when every final result is pass, info, warn or skip.", NULL},
	{"damaged", (getter)results_damaged, NULL,
	 "Lines of the file that were not results (each an error result).",
	 NULL},
	{"run", (getter)results_run, NULL,
	 "The run's metadata (a dict), or None (atex_results_run).", NULL},
	{"wall_time", (getter)results_wall_time, NULL,
	 "The run's wall time in seconds, or None.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef results_methods[] = {
	{"html", (PyCFunction)(void (*)(void))results_html,
	 METH_VARARGS | METH_KEYWORDS,
	 "html(path, title=None): a self-contained HTML report."},
	{"junit", (PyCFunction)results_junit, METH_O,
	 "junit(path): JUnit XML."},
	{"tmt", (PyCFunction)results_tmt, METH_O,
	 "tmt(path): tmt's results.yaml."},
	{"summary", (PyCFunction)results_summary, METH_O,
	 "summary(fd or file): the terminal summary."},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject ResultsType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.ReportResults",
	.tp_basicsize = sizeof(Results),
	.tp_dealloc = (destructor)results_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Loaded results (atex_results_load).",
	.tp_as_sequence = &results_seq,
	.tp_getset = results_getset,
	.tp_methods = results_methods,
};

struct load {
	atex_results *r;
	const char *path;
};

static int load_run(void *arg)
{
	struct load *c = arg;

	return atex_results_load(&c->r, c->path);
}

static PyObject *report_load(PyObject *mod, PyObject *arg)
{
	struct load c = {NULL, NULL};
	char *p = atexpy_path(arg, "path");
	Results *res;
	int rc;

	(void)mod;
	if (!p)
		return NULL;
	c.path = p;
	/* EFORMAT: a ValueError naming file:line. */
	rc = atexpy_call_raise(load_run, &c, NULL, NULL, PyExc_ValueError);
	free(p);
	if (rc < 0) {
		atex_results_free(c.r);
		return NULL;
	}
	res = PyObject_New(Results, &ResultsType);
	if (!res) {
		atex_results_free(c.r);
		return NULL;
	}
	res->r = c.r;
	return (PyObject *)res;
}

static PyMethodDef functions[] = {
	{"ReportLoad", (PyCFunction)report_load, METH_O,
	 "ReportLoad(path): an _atex.ReportResults (atex_results_load)."},
	{NULL, NULL, 0, NULL},
};

int atexpy_init_report(PyObject *module)
{
	if (PyType_Ready(&ResultsType) < 0)
		return -1;
	if (PyModule_AddObjectRef(module, "ReportResults",
				  (PyObject *)&ResultsType) < 0 ||
	    PyModule_AddFunctions(module, functions) < 0)
		return -1;
	return 0;
}
