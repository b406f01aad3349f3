/*
 * _atex.c - the atex._atex extension module: set-up, errors, blocking
 * calls that Ctrl-C can interrupt, and the bridge from libatex's log
 * handler to Python's logging.
 */
#include "_atex.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

PyObject *atexpy_Error;

static unsigned long main_thread_ident;

/* ------------------------------------------------------------------------
 * Errors
 */

static PyObject *class_for(int rc, PyObject *fallback)
{
	switch (rc) {
	case ATEX_ENOMEM:
		return PyExc_MemoryError;
	case ATEX_EINVAL:
		return PyExc_ValueError;
	case ATEX_ENOTFOUND:
		return PyExc_FileNotFoundError;
	case ATEX_EEXISTS:
		return PyExc_FileExistsError;
	case ATEX_ETIMEDOUT:
		return PyExc_TimeoutError;
	case ATEX_EIO:
		return PyExc_OSError;
	default:
		return fallback ? fallback : atexpy_Error;
	}
}

PyObject *atexpy_raise_as(PyObject *cls, int rc, const char *message)
{
	if (!message)
		message = atex_error_last();
	if (!*message)
		message = atex_error_name(rc);
	PyObject *text = PyUnicode_DecodeUTF8(message, strlen(message),
					      "replace");
	if (!text)
		return NULL;
	PyObject *exc = PyObject_CallOneArg(cls, text);
	Py_DECREF(text);
	if (!exc)
		return NULL;
	PyObject *code = PyLong_FromLong(rc);
	if (!code || PyObject_SetAttrString(exc, "atex_code", code) < 0)
		PyErr_Clear(); /* the message matters more than the code */
	Py_XDECREF(code);
	PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	Py_DECREF(exc);
	return NULL;
}

PyObject *atexpy_raise(int rc, const char *message, PyObject *fallback)
{
	return atexpy_raise_as(class_for(rc, fallback), rc, message);
}

void atexpy_keep_exception(PyObject **slot)
{
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	if (!type)
		return;
	PyErr_NormalizeException(&type, &value, &tb);
	if (tb && value)
		PyException_SetTraceback(value, tb);
	if (slot && !*slot && value) {
		*slot = value;
		Py_XDECREF(type);
		Py_XDECREF(tb);
		return;
	}
	/* A second one while the first is on its way out: shown, not lost. */
	PyErr_Restore(type, value, tb);
	PyErr_WriteUnraisable(NULL);
}

/* ------------------------------------------------------------------------
 * Blocking calls
 */

struct call {
	int (*fn)(void *arg);
	void *arg;
	int rc;
	char *message;
	bool done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void call_run(struct call *c)
{
	c->rc = c->fn(c->arg);
	if (c->rc < 0)
		c->message = strdup(atex_error_last());
}

static void *call_thread(void *arg)
{
	struct call *c = arg;
	call_run(c);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ms * 1000000L;
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

/* Runs c in a helper thread, checking Python's signals every 100 ms.
 * Called without the GIL; returns -1 when a signal handler raised. */
static int call_watched(struct call *c, PyThreadState **save,
			void (*cancel)(void *), void *cancel_arg)
{
	pthread_t tid;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&tid, NULL, call_thread, c) != 0) {
		call_run(c);
		c->done = true;
	}
	int interrupted = 0;
	pthread_mutex_lock(&c->lock);
	while (!c->done) {
		struct timespec ts;
		deadline_in(&ts, 100);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		if (c->done || interrupted)
			continue;
		pthread_mutex_unlock(&c->lock);
		PyEval_RestoreThread(*save);
		interrupted = PyErr_CheckSignals() < 0;
		*save = PyEval_SaveThread();
		if (interrupted && cancel)
			cancel(cancel_arg);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	pthread_join(tid, NULL);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	return interrupted ? -1 : 0;
}

int atexpy_call(int (*fn)(void *arg), void *arg, void (*cancel)(void *arg),
		void *cancel_arg, char **message)
{
	struct call c = {.fn = fn, .arg = arg};
	int interrupted = 0;
	if (message)
		*message = NULL;
	PyThreadState *save = PyEval_SaveThread();
	if (PyThread_get_thread_ident() == main_thread_ident)
		interrupted = call_watched(&c, &save, cancel, cancel_arg);
	else
		call_run(&c);
	PyEval_RestoreThread(save);
	if (interrupted) {
		free(c.message);
		return ATEXPY_EPYTHON;
	}
	if (c.rc < 0 && message)
		*message = c.message;
	else
		free(c.message);
	return c.rc < 0 ? c.rc : 0;
}

int atexpy_call_raise(int (*fn)(void *arg), void *arg,
		      void (*cancel)(void *arg), void *cancel_arg,
		      PyObject *fallback)
{
	char *message = NULL;
	int rc = atexpy_call(fn, arg, cancel, cancel_arg, &message);
	if (rc == 0 || rc == ATEXPY_EPYTHON)
		return rc == 0 ? 0 : -1;
	atexpy_raise(rc, message ? message : "", fallback);
	free(message);
	return -1;
}

/* ------------------------------------------------------------------------
 * Log bridge: libatex threads queue records; one bridge thread takes the
 * GIL and hands them to logging.getLogger("atex.<component>"). A logging
 * thread never waits for the GIL, so a Python thread holding the GIL
 * while it waits for an atex lock cannot deadlock with it.
 */

struct record {
	struct record *next;
	int level;
	char *component;
	char *message;
};

#define LOG_QUEUE_MAX 100000

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct record *head, **tail;
	size_t queued;
	size_t dropped;
	bool running;  /* the bridge thread exists and takes records */
	bool stopping; /* interpreter exit: drain and end */
	bool busy;     /* the bridge thread is handing a batch over */
	pthread_t thread;
} logq = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static void record_free(struct record *r)
{
	free(r->component);
	free(r->message);
	free(r);
}

static const char *level_name(int level)
{
	static const char *names[] = {"ERROR", "WARNING", "INFO", "DEBUG"};
	return level >= 0 && level <= 3 ? names[level] : "LOG";
}

static void log_handler(int level, const char *component, const char *message,
			void *userdata)
{
	(void)userdata;
	pthread_mutex_lock(&logq.lock);
	if (!logq.running || logq.stopping) {
		pthread_mutex_unlock(&logq.lock);
		fprintf(stderr, "atex[%s] %s: %s\n", component, level_name(level),
			message);
		return;
	}
	if (logq.queued >= LOG_QUEUE_MAX) {
		logq.dropped++;
		pthread_mutex_unlock(&logq.lock);
		return;
	}
	struct record *r = calloc(1, sizeof(*r));
	if (r) {
		r->level = level;
		r->component = strdup(component ? component : "atex");
		r->message = strdup(message ? message : "");
	}
	if (!r || !r->component || !r->message) {
		if (r)
			record_free(r);
		logq.dropped++;
		pthread_mutex_unlock(&logq.lock);
		return;
	}
	*logq.tail = r;
	logq.tail = &r->next;
	logq.queued++;
	pthread_cond_signal(&logq.cond);
	pthread_mutex_unlock(&logq.lock);
}

static int python_level(int level)
{
	switch (level) {
	case ATEX_LOG_ERROR:
		return 40;
	case ATEX_LOG_WARNING:
		return 30;
	case ATEX_LOG_INFO:
		return 20;
	default:
		return 10;
	}
}

/* Needs the GIL. */
static void log_emit(PyObject *logging, int level, const char *component,
		     const char *message)
{
	PyObject *name = PyUnicode_FromFormat("atex.%s", component);
	PyObject *logger = name ? PyObject_CallMethod(logging, "getLogger", "O",
						      name)
				: NULL;
	Py_XDECREF(name);
	if (logger) {
		PyObject *text = atexpy_str(message);
		PyObject *r = text ? PyObject_CallMethod(logger, "log", "iO",
							 python_level(level),
							 text)
				   : NULL;
		Py_XDECREF(r);
		Py_XDECREF(text);
		Py_DECREF(logger);
	}
	if (PyErr_Occurred())
		PyErr_WriteUnraisable(NULL);
}

static void *log_thread(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&logq.lock);
		while (!logq.head && !logq.stopping)
			pthread_cond_wait(&logq.cond, &logq.lock);
		struct record *batch = logq.head;
		size_t dropped = logq.dropped;
		bool stopping = logq.stopping;
		logq.head = NULL;
		logq.tail = &logq.head;
		logq.queued = 0;
		logq.dropped = 0;
		logq.busy = batch || dropped;
		pthread_mutex_unlock(&logq.lock);
		if (batch || dropped) {
			PyGILState_STATE g = PyGILState_Ensure();
			PyObject *logging = PyImport_ImportModule("logging");
			if (!logging)
				PyErr_WriteUnraisable(NULL);
			for (struct record *r = batch; r;) {
				struct record *next = r->next;
				if (logging)
					log_emit(logging, r->level,
						 r->component, r->message);
				record_free(r);
				r = next;
			}
			if (logging && dropped) {
				char text[128];
				snprintf(text, sizeof(text),
					 "%zu log records dropped (queue full)",
					 dropped);
				log_emit(logging, ATEX_LOG_WARNING, "log", text);
			}
			Py_XDECREF(logging);
			PyGILState_Release(g);
			pthread_mutex_lock(&logq.lock);
			logq.busy = false;
			pthread_mutex_unlock(&logq.lock);
		}
		if (stopping)
			return NULL;
	}
}

static int log_start(void)
{
	pthread_mutex_lock(&logq.lock);
	logq.tail = &logq.head;
	int rc = pthread_create(&logq.thread, NULL, log_thread, NULL);
	logq.running = rc == 0;
	pthread_mutex_unlock(&logq.lock);
	/* Without the thread the handler writes to stderr: still not lost. */
	atex_log_set_handler(log_handler, NULL);
	return 0;
}

/* atexit: hand over what is queued, then log to stderr directly. */
static PyObject *py_log_shutdown(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	pthread_mutex_lock(&logq.lock);
	bool running = logq.running && !logq.stopping;
	logq.stopping = true;
	pthread_cond_signal(&logq.cond);
	pthread_mutex_unlock(&logq.lock);
	if (running) {
		Py_BEGIN_ALLOW_THREADS
		pthread_join(logq.thread, NULL);
		Py_END_ALLOW_THREADS
	}
	Py_RETURN_NONE;
}

void atexpy_log_sync(void)
{
	const char *env = getenv("ATEX_LOG");
	if (env && *env)
		return;
	PyObject *logging = PyImport_ImportModule("logging");
	PyObject *logger = logging ? PyObject_CallMethod(logging, "getLogger",
							  "s", "atex")
				   : NULL;
	PyObject *lv = logger ? PyObject_CallMethod(logger,
						    "getEffectiveLevel", NULL)
			      : NULL;
	long level = lv ? PyLong_AsLong(lv) : 30;
	Py_XDECREF(lv);
	Py_XDECREF(logger);
	Py_XDECREF(logging);
	if (PyErr_Occurred())
		PyErr_Clear();
	if (level <= 10)
		atex_log_set_level(ATEX_LOG_DEBUG);
	else if (level <= 20)
		atex_log_set_level(ATEX_LOG_INFO);
	else if (level <= 30)
		atex_log_set_level(ATEX_LOG_WARNING);
	else
		atex_log_set_level(ATEX_LOG_ERROR);
}

static PyObject *py_log_sync(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	atexpy_log_sync();
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * Conversions
 */

PyObject *atexpy_str(const char *s)
{
	if (!s)
		Py_RETURN_NONE;
	return PyUnicode_DecodeUTF8(s, strlen(s), "surrogateescape");
}

char *atexpy_path(PyObject *obj, const char *name)
{
	PyObject *bytes = NULL;
	if (!PyUnicode_FSConverter(obj, &bytes)) {
		/* Only a wrong type is a TypeError: a NUL inside (ValueError)
		 * or a string the file system cannot encode keep their class,
		 * with the argument named. */
		if (PyErr_ExceptionMatches(PyExc_TypeError)) {
			PyErr_Clear();
			PyErr_Format(PyExc_TypeError,
				     "%s: expected a str, bytes or os.PathLike, "
				     "not %.100s",
				     name, Py_TYPE(obj)->tp_name);
		} else if (PyErr_ExceptionMatches(PyExc_ValueError) &&
			   !PyErr_ExceptionMatches(PyExc_UnicodeError)) {
			PyErr_Clear();
			PyErr_Format(PyExc_ValueError,
				     "%s: embedded null byte in %R", name, obj);
		}
		return NULL;
	}
	char *s = strdup(PyBytes_AS_STRING(bytes));
	Py_DECREF(bytes);
	if (!s)
		PyErr_NoMemory();
	return s;
}

void atexpy_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

char **atexpy_strv(PyObject *seq, const char *name)
{
	if (PyUnicode_Check(seq) || PyBytes_Check(seq)) {
		PyErr_Format(PyExc_TypeError,
			     "%s: expected a sequence of strings, not one string",
			     name);
		return NULL;
	}
	PyObject *fast = PySequence_Fast(seq, name);
	if (!fast)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
	char **v = calloc((size_t)n + 1, sizeof(*v));
	if (!v) {
		Py_DECREF(fast);
		PyErr_NoMemory();
		return NULL;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
		if (PyLong_Check(item) || PyFloat_Check(item))
			item = PyObject_Str(item); /* argv items may be numbers */
		else
			Py_INCREF(item);
		v[i] = item ? atexpy_path(item, name) : NULL;
		Py_XDECREF(item);
		if (!v[i]) {
			Py_DECREF(fast);
			atexpy_strv_free(v);
			return NULL;
		}
	}
	Py_DECREF(fast);
	return v;
}

char **atexpy_envv(PyObject *mapping, const char *name)
{
	if (!mapping || mapping == Py_None)
		return calloc(1, sizeof(char *));
	PyObject *items = PyMapping_Items(mapping);
	if (!items) {
		PyErr_Format(PyExc_TypeError, "%s: expected a mapping", name);
		return NULL;
	}
	Py_ssize_t n = PyList_GET_SIZE(items);
	char **v = calloc((size_t)n + 1, sizeof(*v));
	if (!v) {
		Py_DECREF(items);
		PyErr_NoMemory();
		return NULL;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *kv = PyList_GET_ITEM(items, i);
		PyObject *line = PyUnicode_FromFormat(
			"%S=%S", PyTuple_GET_ITEM(kv, 0), PyTuple_GET_ITEM(kv, 1));
		v[i] = line ? atexpy_path(line, name) : NULL;
		Py_XDECREF(line);
		if (!v[i]) {
			Py_DECREF(items);
			atexpy_strv_free(v);
			return NULL;
		}
	}
	Py_DECREF(items);
	return v;
}

/* ------------------------------------------------------------------------
 * The module
 */

static PyObject *py_log_level(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return PyLong_FromLong(atex_log_get_level());
}

static PyObject *py_error_name(PyObject *self, PyObject *arg)
{
	(void)self;
	long code = PyLong_AsLong(arg);
	if (code == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(atex_error_name((int)code));
}

/* ------------------------------------------------------------------------
 * Self-test hooks for tests/python/test_core.py: they reach the error
 * mapping, the blocking helper and the log bridge without another block.
 */

static PyObject *py_selftest_raise(PyObject *self, PyObject *args)
{
	(void)self;
	int code;
	const char *message;
	if (!PyArg_ParseTuple(args, "is", &code, &message))
		return NULL;
	return atexpy_raise(code, message, NULL);
}

struct selftest_wait {
	atex_cancel *cancel;
	int ms;
};

static int selftest_wait_fn(void *arg)
{
	struct selftest_wait *w = arg;
	struct pollfd p = {.fd = atex_cancel_fd(w->cancel), .events = POLLIN};
	int n = poll(&p, 1, w->ms);
	if (n > 0)
		return atex_error_set_message(ATEX_ECANCELED, "selftest canceled");
	return 0;
}

static void selftest_wait_cancel(void *arg)
{
	atex_cancel_fire(((struct selftest_wait *)arg)->cancel);
}

/* Waits `ms` milliseconds in C; Ctrl-C cancels it. */
static PyObject *py_selftest_wait(PyObject *self, PyObject *args)
{
	(void)self;
	struct selftest_wait w = {0};
	if (!PyArg_ParseTuple(args, "i", &w.ms))
		return NULL;
	int rc = atex_cancel_new(&w.cancel);
	if (rc < 0)
		return atexpy_raise(rc, NULL, NULL);
	rc = atexpy_call_raise(selftest_wait_fn, &w, selftest_wait_cancel, &w,
			       NULL);
	bool fired = atex_cancel_fired(w.cancel);
	atex_cancel_free(w.cancel);
	if (rc < 0)
		return NULL;
	return PyBool_FromLong(fired);
}

struct selftest_log {
	int level;
	char *component;
	char *message;
	int count;
};

static void *selftest_log_thread(void *arg)
{
	struct selftest_log *l = arg;
	for (int i = 0; i < l->count; i++)
		log_handler(l->level, l->component, l->message, NULL);
	return NULL;
}

/* Logs `count` records from a C thread (or this one) as libatex would. */
static PyObject *py_selftest_log(PyObject *self, PyObject *args)
{
	(void)self;
	struct selftest_log l = {.count = 1};
	int threaded = 1;
	const char *component, *message;
	if (!PyArg_ParseTuple(args, "iss|ip", &l.level, &component, &message,
			      &l.count, &threaded))
		return NULL;
	l.component = (char *)component;
	l.message = (char *)message;
	pthread_t tid;
	Py_BEGIN_ALLOW_THREADS
	if (threaded && pthread_create(&tid, NULL, selftest_log_thread, &l) == 0)
		pthread_join(tid, NULL);
	else
		selftest_log_thread(&l);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}

/* Waits until the bridge thread has handed over every queued record. */
static PyObject *py_log_flush(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&logq.lock);
		bool empty = !logq.head && !logq.busy;
		pthread_mutex_unlock(&logq.lock);
		if (empty)
			Py_RETURN_NONE;
		Py_BEGIN_ALLOW_THREADS
		usleep(10000);
		Py_END_ALLOW_THREADS
	}
	Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
	{"_selftest_raise", py_selftest_raise, METH_VARARGS,
	 "Raise the exception libatex error CODE with MESSAGE maps to."},
	{"_selftest_wait", py_selftest_wait, METH_VARARGS,
	 "Wait MS milliseconds in C (interruptible); True when canceled."},
	{"_selftest_log", py_selftest_log, METH_VARARGS,
	 "Log as libatex does: (level, component, message, count, threaded)."},
	{"log_flush", py_log_flush, METH_NOARGS,
	 "Wait (up to 5 s) until queued libatex log records reached logging."},
	{"log_sync", py_log_sync, METH_NOARGS,
	 "Make libatex's log level follow logging.getLogger('atex') now."},
	{"_log_shutdown", py_log_shutdown, METH_NOARGS,
	 "Hand queued log records to logging; later ones go to stderr."},
	{"log_level", py_log_level, METH_NOARGS,
	 "libatex's log level now (0 error .. 3 debug)."},
	{"error_name", py_error_name, METH_O,
	 "A short description of an ATEX_E* code."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "atex._atex",
	.m_doc = "The C core of the atex Python package (libatex).",
	.m_size = -1,
	.m_methods = module_methods,
};

static int add_codes(PyObject *m)
{
	static const struct {
		const char *name;
		int code;
	} codes[] = {
		{"E_ERROR", ATEX_ERROR},	 {"E_NOMEM", ATEX_ENOMEM},
		{"E_INVAL", ATEX_EINVAL},	 {"E_NOTFOUND", ATEX_ENOTFOUND},
		{"E_EXISTS", ATEX_EEXISTS},	 {"E_IO", ATEX_EIO},
		{"E_FORMAT", ATEX_EFORMAT},	 {"E_MERGE", ATEX_EMERGE},
		{"E_RULE", ATEX_ERULE},		 {"E_TIMEDOUT", ATEX_ETIMEDOUT},
		{"E_CANCELED", ATEX_ECANCELED}, {"E_EXTERNAL", ATEX_EEXTERNAL},
		{"E_INFRA", ATEX_EINFRA},
	};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (PyModule_AddIntConstant(m, codes[i].name, codes[i].code) < 0)
			return -1;
	return PyModule_AddStringConstant(m, "version", ATEX_VERSION_STRING);
}

static int remember_main_thread(void)
{
	PyObject *threading = PyImport_ImportModule("threading");
	PyObject *main = threading ? PyObject_CallMethod(threading,
							 "main_thread", NULL)
				   : NULL;
	PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : NULL;
	if (ident)
		main_thread_ident = PyLong_AsUnsignedLong(ident);
	Py_XDECREF(ident);
	Py_XDECREF(main);
	Py_XDECREF(threading);
	return PyErr_Occurred() ? -1 : 0;
}

static int register_shutdown(PyObject *m)
{
	PyObject *atexit = PyImport_ImportModule("atexit");
	PyObject *fn = PyObject_GetAttrString(m, "_log_shutdown");
	PyObject *r = atexit && fn ? PyObject_CallMethod(atexit, "register",
							 "O", fn)
				   : NULL;
	Py_XDECREF(r);
	Py_XDECREF(fn);
	Py_XDECREF(atexit);
	return r ? 0 : -1;
}

PyMODINIT_FUNC PyInit__atex(void);
PyMODINIT_FUNC PyInit__atex(void)
{
	PyObject *m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	atexpy_Error = PyErr_NewExceptionWithDoc(
		"atex._atex.Error",
		"A libatex failure with no closer Python exception; "
		".atex_code holds the ATEX_E* code.",
		PyExc_RuntimeError, NULL);
	if (!atexpy_Error || PyModule_AddObjectRef(m, "Error", atexpy_Error) < 0 ||
	    add_codes(m) < 0 || remember_main_thread() < 0)
		goto fail;
	if (atexpy_init_connection(m) < 0 || atexpy_init_provisioner(m) < 0 ||
	    atexpy_init_fmf(m) < 0 || atexpy_init_executor(m) < 0 ||
	    atexpy_init_aggregator(m) < 0 || atexpy_init_report(m) < 0 ||
	    atexpy_init_orchestrator(m) < 0)
		goto fail;
	if (register_shutdown(m) < 0 || log_start() < 0)
		goto fail;
	atexpy_log_sync();
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
