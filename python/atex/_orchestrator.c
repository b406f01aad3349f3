/*
 * _orchestrator.c - atex._atex: the orchestrator block (see _atex.h).
 *
 * _atex.AdHocOrchestrator is the handle atex.orchestrator.adhoc's
 * AdHocOrchestrator keeps while started: a libatex ad-hoc orchestrator
 * over a discovery of the plain test names (any executor runs them), with
 * hooks that give Python ATEX's semantics (docs/PYTHON.md):
 *
 * - every provisioner is seen through a shim that remembers which one
 *   handed out each remote, so the executor factory gets the Python
 *   provisioner and Remote of the system;
 * - every executor is seen through a shim: it keeps the Python executor
 *   alive (the orchestrator frees the shim, never the executor), runs the
 *   owner's run_setup() as its start when a subclass overrides it, and
 *   carries the `previous` info (SetupInfo of a fresh system, then the
 *   last FinishedInfo) that next_test() gets. Factory, hooks and shim
 *   free all run in the system's worker thread, so the shim of the
 *   calling thread is found in a thread-local;
 * - next_test, destructive and should_rerun call Python only when the
 *   owner's class overrides the method (hooks bit mask); else C does
 *   Python ATEX's defaults without the GIL: the first test (re-runs after
 *   the others), destroyed when it failed, never re-run.
 *
 * A Python exception in a hook or the factory is kept (the first one)
 * and the run aborted from the serving loop (next_test runs under the
 * orchestrator's lock, where abort cannot be called); serve_once() and
 * serve_forever() raise it. The hooks take the GIL under libatex's hook
 * lock: no thread may hold the GIL while it waits for that lock, so every
 * call into the orchestrator here releases the GIL.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_atex.h"

enum {
	HOOK_RUN_SETUP = 1,
	HOOK_NEXT_TEST = 2,
	HOOK_DESTRUCTIVE = 4,
	HOOK_SHOULD_RERUN = 8,
};

typedef struct orch OrchObject;

/* A provisioner as the orchestrator sees it. */
struct pshim {
	atex_provisioner base;
	OrchObject *o;
	atex_provisioner *inner;
	size_t index;
};

/* A remote handed out, not yet taken by the factory. */
struct given {
	atex_remote *r;
	size_t index;
	struct given *next;
};

/* An executor as the orchestrator sees it (one per system). */
struct xshim {
	atex_executor base;
	OrchObject *o;
	atex_executor *inner; /* borrowed from `executor` */
	PyObject *executor;
	PyObject *sinfo;
	PyObject *previous;
	bool destructive; /* the current attempt's verdict */
	/* Its run_test takes env= (FMFExecutor); Python ATEX's other
	 * executors take none, so ATEX_TEST_ATTEMPT is not given to them. */
	bool pass_env;
	char *why; /* the last run_test error's message */
};

struct orch {
	PyObject_HEAD atex_orchestrator *orch;
	atex_fmf_discovery *discovery;
	PyObject *owner;
	PyObject *keep; /* provisioners, aggregators: alive while we run */
	PyObject *provisioners;
	PyObject *fallback;
	struct pshim *pshims;
	atex_provisioner **pptrs;
	size_t n_prov;
	int hooks;
	pthread_mutex_t given_lock;
	struct given *given;
	unsigned long *rerun_seq; /* per test: when it was queued again */
	unsigned long seq;
	atomic_bool want_abort;
	PyObject *error; /* the first exception of Python code C called */
	/* history=: earlier runs' timings (an atex extension), or NULL. */
	atex_history *history;
};

static __thread struct xshim *current;

/* A Python exception set by code C called: kept, the run to abort. GIL
 * held. */
static void python_failed(OrchObject *o)
{
	atexpy_keep_exception(&o->error);
	atomic_store(&o->want_abort, true);
}

/* The exception instance for libatex error rc (a new reference), or NULL
 * when even that failed (cleared). GIL held. */
static PyObject *make_exception(OrchObject *o, int rc, const char *msg)
{
	PyObject *type, *value, *tb;

	atexpy_raise(rc, msg, o->fallback);
	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (tb && value)
		PyException_SetTraceback(value, tb);
	Py_XDECREF(type);
	Py_XDECREF(tb);
	return value;
}

/* ------------------------------------------------------------------------
 * Provisioner shim.
 */

#define PSHIM(p) ((struct pshim *)(p))

static int p_provision(atex_provisioner *p, int count)
{
	return atex_provisioner_provision(PSHIM(p)->inner, count);
}

static int p_get_remote(atex_remote **out, atex_provisioner *p, int timeout)
{
	struct pshim *s = PSHIM(p);
	int rc = atex_provisioner_get_remote(out, s->inner, timeout);
	struct given *g;

	if (rc < 0)
		return rc;
	/* Without the note the remote is taken as the first
	 * provisioner's: wrong only with several, and only in names. */
	g = malloc(sizeof(*g));
	if (!g)
		return 0;
	g->r = *out;
	g->index = s->index;
	pthread_mutex_lock(&s->o->given_lock);
	g->next = s->o->given;
	s->o->given = g;
	pthread_mutex_unlock(&s->o->given_lock);
	return 0;
}

static int p_clear(atex_provisioner *p)
{
	return atex_provisioner_clear(PSHIM(p)->inner);
}

static int p_ready_fd(const atex_provisioner *p)
{
	return atex_provisioner_ready_fd(PSHIM(p)->inner);
}

static const char *p_name(const atex_provisioner *p)
{
	return atex_provisioner_name(PSHIM(p)->inner);
}

static void p_free(atex_provisioner *p)
{
	(void)p; /* the Python provisioner owns the real one */
}

static const struct atex_provisioner_ops pshim_ops = {
	.version = ATEX_PROVISIONER_OPS_VERSION,
	.provision = p_provision,
	.get_remote = p_get_remote,
	.clear = p_clear,
	.ready_fd = p_ready_fd,
	.name = p_name,
	.free = p_free,
};

/* Which provisioner handed out r (forgotten now). */
static size_t take_given(OrchObject *o, atex_remote *r)
{
	struct given **pp, *g;
	size_t index = 0;

	pthread_mutex_lock(&o->given_lock);
	for (pp = &o->given; *pp; pp = &(*pp)->next) {
		if ((*pp)->r != r)
			continue;
		g = *pp;
		*pp = g->next;
		index = g->index;
		free(g);
		break;
	}
	pthread_mutex_unlock(&o->given_lock);
	return index;
}

/* ------------------------------------------------------------------------
 * Executor shim.
 */

#define XSHIM(e) ((struct xshim *)(e))

/* Reports a failed setup to the owner (who counts them and raises
 * FailedSetupError past max_failed_setups). GIL held; steals exc. */
static void setup_failed(OrchObject *o, struct xshim *x, PyObject *exc)
{
	PyObject *res =
		PyObject_CallMethod(o->owner, "_atex_setup_failed", "OO",
				    x->sinfo, exc ? exc : Py_None);

	if (!res)
		python_failed(o);
	Py_XDECREF(res);
	Py_XDECREF(exc);
}

static int x_start(atex_executor *e)
{
	struct xshim *x = XSHIM(e);
	OrchObject *o = x->o;
	PyGILState_STATE gil;
	PyObject *res, *exc = NULL, *text;
	char *msg = NULL;
	int rc = ATEX_EEXTERNAL;

	/* A run that is ending sets nothing more up. */
	if (atomic_load(&o->want_abort))
		return atex_error_set_message(ATEX_ECANCELED, "aborted");
	if (!(o->hooks & HOOK_RUN_SETUP)) {
		rc = atex_executor_start(x->inner);
		if (rc == 0 || rc == ATEX_ECANCELED)
			return rc;
		msg = strdup(atex_error_last());
	}
	gil = PyGILState_Ensure();
	if (o->hooks & HOOK_RUN_SETUP) {
		res = PyObject_CallMethod(o->owner, "run_setup", "O", x->sinfo);
		if (res) {
			Py_DECREF(res);
			PyGILState_Release(gil);
			return 0;
		}
		exc = NULL;
		atexpy_keep_exception(&exc);
		text = exc ? PyObject_Str(exc) : NULL;
		msg = text ? strdup(PyUnicode_AsUTF8(text)) : NULL;
		Py_XDECREF(text);
		PyErr_Clear();
	} else {
		exc = make_exception(o, rc, msg);
	}
	setup_failed(o, x, exc);
	PyGILState_Release(gil);
	rc = atex_error_set_message(rc, msg ? msg : "setup failed");
	free(msg);
	return rc;
}

static int x_run_test(atex_executor *e, const char *test, const char *dir,
		      const char *const *env, int *exit_code)
{
	struct xshim *x = XSHIM(e);
	int rc = atex_executor_run_test(x->inner, test, dir,
					x->pass_env ? env : NULL, exit_code);

	free(x->why);
	x->why = rc < 0 ? strdup(atex_error_last()) : NULL;
	return rc;
}

static void x_cancel(atex_executor *e)
{
	atex_executor_cancel(XSHIM(e)->inner);
}

static int x_stop(atex_executor *e)
{
	return atex_executor_stop(XSHIM(e)->inner);
}

static void x_free(atex_executor *e)
{
	struct xshim *x = XSHIM(e);
	PyGILState_STATE gil;

	if (current == x)
		current = NULL;
	gil = PyGILState_Ensure();
	Py_XDECREF(x->previous);
	Py_XDECREF(x->sinfo);
	Py_XDECREF(x->executor);
	PyGILState_Release(gil);
	free(x->why);
	free(x);
}

static const struct atex_executor_ops xshim_ops = {
	.version = ATEX_EXECUTOR_OPS_VERSION,
	.start = x_start,
	.run_test = x_run_test,
	.cancel = x_cancel,
	.stop = x_stop,
	.free = x_free,
};

/* The owner's _atex_new_system(index, remote) -> (executor, sinfo,
 * takes_env) into a shim. NULL with a Python exception set. GIL held. */
static struct xshim *new_system(OrchObject *o, atex_remote *r, size_t index)
{
	PyObject *remote, *res = NULL;
	struct xshim *x = NULL;

	remote = atexpy_remote_wrap(
		r, PyTuple_GET_ITEM(o->provisioners, (Py_ssize_t)index));
	if (remote)
		res = PyObject_CallMethod(o->owner, "_atex_new_system", "nO",
					  (Py_ssize_t)index, remote);
	Py_XDECREF(remote);
	if (res && !(PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 3))
		PyErr_SetString(PyExc_TypeError,
				"_atex_new_system must return (executor, "
				"sinfo, takes_env)");
	else if (res && !(x = calloc(1, sizeof(*x))))
		PyErr_NoMemory();
	if (!x) {
		Py_XDECREF(res);
		return NULL;
	}
	x->base.ops = &xshim_ops;
	x->o = o;
	x->executor = Py_NewRef(PyTuple_GET_ITEM(res, 0));
	x->sinfo = Py_NewRef(PyTuple_GET_ITEM(res, 1));
	x->previous = Py_NewRef(x->sinfo);
	x->pass_env = PyObject_IsTrue(PyTuple_GET_ITEM(res, 2)) == 1;
	Py_DECREF(res);
	x->inner = atexpy_executor_ptr(x->executor);
	if (!x->inner) {
		x_free(&x->base);
		return NULL;
	}
	return x;
}

static int factory(atex_executor **out, atex_remote *r, void *userdata)
{
	OrchObject *o = userdata;
	size_t index = take_given(o, r);
	PyGILState_STATE gil;
	struct xshim *x;

	if (atomic_load(&o->want_abort))
		return atex_error_set_message(ATEX_ECANCELED, "aborted");
	gil = PyGILState_Ensure();
	x = new_system(o, r, index);

	/* As in Python ATEX, a factory that raises ends the run. */
	if (!x)
		python_failed(o);
	PyGILState_Release(gil);
	if (!x)
		return atex_error_set_message(ATEX_EEXTERNAL,
					      "the executor factory raised");
	current = x;
	*out = &x->base;
	return 0;
}

/* ------------------------------------------------------------------------
 * Hooks.
 */

/* Python ATEX appends re-runs to the tests to run; libatex puts them in
 * front. Order: tests never re-run in queue order, then re-runs in the
 * order they were queued again. */
static int by_rerun_seq(const void *a, const void *b, void *arg)
{
	const size_t *pa = a, *pb = b;
	const size_t **ctx = arg;
	OrchObject *o = (OrchObject *)ctx[0];
	const size_t *queue = ctx[1];
	unsigned long sa = o->rerun_seq[queue[*pa]],
		      sb = o->rerun_seq[queue[*pb]];

	if (sa != sb)
		return sa < sb ? -1 : 1;
	return (*pa > *pb) - (*pa < *pb);
}

static size_t first_by_pa_order(OrchObject *o, const size_t *queue, size_t n)
{
	size_t best = 0;

	for (size_t i = 1; i < n; i++) {
		if (o->rerun_seq[queue[i]] < o->rerun_seq[queue[best]])
			best = i;
	}
	return best;
}

static size_t next_test(atex_fmf_discovery *d, const size_t *queue, size_t n,
			void *userdata)
{
	OrchObject *o = userdata;
	const void *ctx[2] = {o, queue};
	size_t *order, pick;
	PyGILState_STATE gil;
	PyObject *tuple = NULL, *res = NULL;

	/* With history= and no next_test() of the owner's: longest
	 * measured first (atex/history.h). */
	pick = o->history && !(o->hooks & HOOK_NEXT_TEST)
		       ? atex_policy_history(d, queue, n, o->history)
		       : first_by_pa_order(o, queue, n);
	if (!(o->hooks & HOOK_NEXT_TEST) || atomic_load(&o->want_abort))
		return pick;
	gil = PyGILState_Ensure();
	/* The owner's live copy of the queue first: only its length. */
	res = PyObject_CallMethod(o->owner, "_atex_next_test", "nO",
				  (Py_ssize_t)n,
				  current ? current->previous : Py_None);
	if (res == Py_None) {
		Py_CLEAR(res);
		order = malloc(n * sizeof(*order));
		tuple = order ? PyTuple_New((Py_ssize_t)n) : PyErr_NoMemory();
		for (size_t i = 0; tuple && i < n; i++)
			order[i] = i;
		if (tuple)
			qsort_r(order, n, sizeof(*order), by_rerun_seq, ctx);
		for (size_t i = 0; tuple && i < n; i++) {
			PyObject *item = PyLong_FromSize_t(queue[order[i]]);

			if (!item)
				Py_CLEAR(tuple);
			else
				PyTuple_SET_ITEM(tuple, (Py_ssize_t)i, item);
		}
		if (tuple)
			res = PyObject_CallMethod(
				o->owner, "_atex_next_test", "OO", tuple,
				current ? current->previous : Py_None);
		free(order);
	}
	if (res) {
		size_t test = PyLong_AsSize_t(res);

		for (size_t i = 0; !PyErr_Occurred() && i < n; i++) {
			if (queue[i] == test) {
				pick = i;
				break;
			}
		}
	}
	if (PyErr_Occurred() || !res)
		python_failed(o);
	Py_XDECREF(res);
	Py_XDECREF(tuple);
	PyGILState_Release(gil);
	return pick;
}

/* What a Python executor raised in run_test (its bridge kept it), or
 * NULL. GIL held. */
static PyObject *raised_by(struct xshim *x)
{
	PyObject *bridge = PyObject_GetAttrString(x->executor, "_atex_bridge");
	PyObject *exc = NULL;

	if (bridge && PyObject_HasAttrString(bridge, "take_exception"))
		exc = PyObject_CallMethod(bridge, "take_exception", NULL);
	Py_XDECREF(bridge);
	PyErr_Clear();
	if (exc == Py_None)
		Py_CLEAR(exc);
	return exc;
}

/* The owner's _atex_finished(previous, test, exit_code, artifacts, exc)
 * -> (destructive, rerun, previous). GIL held. */
static void finished_py(OrchObject *o, struct xshim *x,
			const struct atex_attempt *a, bool *destructive,
			bool *rerun)
{
	PyObject *exc = NULL, *res, *code;
	char msg[1024];

	if (a->rc < 0)
		exc = raised_by(x);
	if (a->rc < 0 && !exc) {
		snprintf(msg, sizeof(msg), "'%s' on %s: %s", a->test_name,
			 a->remote, x->why ? x->why : atex_error_name(a->rc));
		exc = make_exception(o, a->rc, msg);
	}
	code = a->rc < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(a->exit_code);
	res = code ? PyObject_CallMethod(o->owner, "_atex_finished", "OnOsO",
					 x->previous, (Py_ssize_t)a->test, code,
					 a->artifacts_dir, exc ? exc : Py_None)
		   : NULL;
	Py_XDECREF(code);
	Py_XDECREF(exc);
	if (res && PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 3) {
		*destructive = PyObject_IsTrue(PyTuple_GET_ITEM(res, 0)) != 0;
		*rerun = PyObject_IsTrue(PyTuple_GET_ITEM(res, 1)) == 1;
		Py_SETREF(x->previous, Py_NewRef(PyTuple_GET_ITEM(res, 2)));
	} else if (res) {
		PyErr_SetString(PyExc_TypeError,
				"_atex_finished must return a 3-tuple");
	}
	if (!res || PyErr_Occurred()) {
		*destructive = true;
		*rerun = false;
		python_failed(o);
	}
	Py_XDECREF(res);
}

/* libatex asks should_rerun first, then destructive, for one attempt in
 * the same thread: both are decided here (Python ATEX asks destructive
 * first) and destructive() returns the verdict kept. */
static bool should_rerun(atex_fmf_discovery *d, const struct atex_attempt *a,
			 void *userdata)
{
	OrchObject *o = userdata;
	struct xshim *x = current;
	bool destructive = a->rc != 0 || a->exit_code != 0, rerun = false;
	PyGILState_STATE gil;

	(void)d;
	if (x && !atomic_load(&o->want_abort) &&
	    (o->hooks &
	     (HOOK_NEXT_TEST | HOOK_DESTRUCTIVE | HOOK_SHOULD_RERUN))) {
		gil = PyGILState_Ensure();
		finished_py(o, x, a, &destructive, &rerun);
		PyGILState_Release(gil);
	}
	if (rerun)
		o->rerun_seq[a->test] = ++o->seq;
	if (x)
		x->destructive = destructive;
	return rerun;
}

static bool destructive(atex_fmf_discovery *d, const struct atex_attempt *a,
			void *userdata)
{
	(void)d;
	(void)a;
	(void)userdata;
	return current ? current->destructive : true;
}

/* ------------------------------------------------------------------------
 * The handle type.
 */

static void orch_close(OrchObject *o)
{
	atex_orchestrator *orch = o->orch;

	o->orch = NULL;
	/* Workers end here (their shims take the GIL to let go of the
	 * Python executors): not with the GIL held. */
	if (orch) {
		Py_BEGIN_ALLOW_THREADS atex_orchestrator_free(orch);
		Py_END_ALLOW_THREADS
	}
	atex_fmf_discovery_free(o->discovery);
	o->discovery = NULL;
	while (o->given) {
		struct given *g = o->given;

		o->given = g->next;
		free(g);
	}
	free(o->pshims);
	o->pshims = NULL;
	free(o->pptrs);
	o->pptrs = NULL;
	free(o->rerun_seq);
	o->rerun_seq = NULL;
	atex_history_free(o->history);
	o->history = NULL;
	Py_CLEAR(o->owner);
	Py_CLEAR(o->keep);
	Py_CLEAR(o->provisioners);
	Py_CLEAR(o->fallback);
	Py_CLEAR(o->error);
}

static void orch_dealloc(OrchObject *o)
{
	orch_close(o);
	pthread_mutex_destroy(&o->given_lock);
	Py_TYPE(o)->tp_free((PyObject *)o);
}

static int orch_provisioners(OrchObject *o)
{
	o->n_prov = (size_t)PyTuple_GET_SIZE(o->provisioners);
	o->pshims = calloc(o->n_prov + 1, sizeof(*o->pshims));
	o->pptrs = calloc(o->n_prov + 1, sizeof(*o->pptrs));
	if (!o->pshims || !o->pptrs) {
		PyErr_NoMemory();
		return -1;
	}
	for (size_t i = 0; i < o->n_prov; i++) {
		atex_provisioner *p = atexpy_provisioner_ptr(
			PyTuple_GET_ITEM(o->provisioners, (Py_ssize_t)i));

		if (!p)
			return -1;
		o->pshims[i].base.ops = &pshim_ops;
		o->pshims[i].o = o;
		o->pshims[i].inner = p;
		o->pshims[i].index = i;
		o->pptrs[i] = &o->pshims[i].base;
	}
	return 0;
}

static int make_discovery(OrchObject *o, PyObject *names, size_t *n)
{
	char **v = atexpy_strv(names, "tests");
	int rc;

	if (!v)
		return -1;
	for (*n = 0; v[*n]; (*n)++)
		;
	rc = atex_fmf_discovery_new_names(&o->discovery, (const char *const *)v,
					  *n);
	atexpy_strv_free(v);
	if (rc < 0) {
		atexpy_raise(rc, NULL, NULL);
		return -1;
	}
	return 0;
}

/* history=: a sequence of paths (str or os.PathLike), read now so that
 * a bad path fails the start, naming it. */
static int open_history(OrchObject *o, PyObject *paths, PyObject *fallback)
{
	struct atex_history_options ho = ATEX_HISTORY_OPTIONS_INIT;
	PyObject *seq = PySequence_Tuple(paths), *encoded = NULL;
	const char **v = NULL;
	Py_ssize_t n;
	int rc = -1;

	if (!seq)
		return -1;
	n = PyTuple_GET_SIZE(seq);
	encoded = PyTuple_New(n);
	v = calloc((size_t)n + 1, sizeof(*v));
	if (!encoded || !v) {
		PyErr_NoMemory();
		goto out;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *b = NULL;

		if (!PyUnicode_FSConverter(PyTuple_GET_ITEM(seq, i), &b))
			goto out;
		PyTuple_SET_ITEM(encoded, i, b);
		v[i] = PyBytes_AS_STRING(b);
	}
	ho.paths = v;
	ho.n_paths = (size_t)n;
	rc = atex_history_open(&o->history, &ho);
	if (rc < 0) {
		atexpy_raise(rc, NULL, fallback);
		rc = -1;
	}
out:
	free(v);
	Py_XDECREF(encoded);
	Py_DECREF(seq);
	return rc;
}

static int orch_init(OrchObject *o, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = {"owner",	 "platform",   "tests",
				 "provisioners", "aggregator", "old_aggregator",
				 "max_spares",	 "hooks",      "error",
				 "history",	 NULL};
	struct atex_orchestrator_options opts = ATEX_ORCHESTRATOR_OPTIONS_INIT;
	PyObject *owner, *names, *provs, *agg, *old, *fallback;
	PyObject *history = Py_None;
	const char *platform;
	Py_ssize_t max_spares;
	atex_aggregator *a, *earlier = NULL;
	size_t n_tests = 0;
	int hooks, rc;

	if (o->owner) {
		PyErr_SetString(PyExc_RuntimeError, "already initialized");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OsOOOOniO|O", kwlist,
					 &owner, &platform, &names, &provs,
					 &agg, &old, &max_spares, &hooks,
					 &fallback, &history))
		return -1;
	if (max_spares < 0) {
		PyErr_SetString(PyExc_ValueError, "max_spares < 0");
		return -1;
	}
	o->owner = Py_NewRef(owner);
	o->fallback = Py_NewRef(fallback);
	o->hooks = hooks;
	o->provisioners = PySequence_Tuple(provs);
	o->keep = Py_BuildValue("(OO)", agg, old);
	if (!o->provisioners || !o->keep || orch_provisioners(o) < 0 ||
	    make_discovery(o, names, &n_tests) < 0)
		return -1;
	o->rerun_seq = calloc(n_tests + 1, sizeof(*o->rerun_seq));
	if (!o->rerun_seq) {
		PyErr_NoMemory();
		return -1;
	}
	a = atexpy_aggregator_ptr(agg);
	if (!a || (old != Py_None && !(earlier = atexpy_aggregator_ptr(old))))
		return -1;
	if (history != Py_None && open_history(o, history, fallback) < 0)
		return -1;

	opts.platform = platform;
	opts.discovery = o->discovery;
	opts.provisioners = o->pptrs;
	opts.n_provisioners = o->n_prov;
	opts.executor_new = factory;
	opts.aggregator = a;
	opts.earlier = earlier;
	opts.next_test = next_test;
	opts.destructive = destructive;
	opts.should_rerun = should_rerun;
	opts.userdata = o;
	/* Python ATEX: a re-run stays on its system unless destructive. */
	opts.rerun_on_same_system = true;
	opts.max_spares = (size_t)max_spares;
	/* Counted in total by the owner (_atex_setup_failed). */
	opts.max_setup_failures = UINT_MAX;
	rc = atex_adhoc_orchestrator_new(&o->orch, &opts);
	if (rc < 0) {
		atexpy_raise(rc, NULL, fallback);
		return -1;
	}
	return 0;
}

/* The result of a serve call: the kept exception first, then rc. */
static PyObject *served(OrchObject *o, int rc, const char *msg)
{
	PyObject *error = o->error;

	if (error) {
		o->error = NULL;
		PyErr_SetObject((PyObject *)Py_TYPE(error), error);
		Py_DECREF(error);
		return NULL;
	}
	if (rc < 0)
		return atexpy_raise(rc, msg, o->fallback);
	return PyBool_FromLong(rc == 1);
}

static int check_open(OrchObject *o)
{
	if (o->orch)
		return 0;
	PyErr_SetString(PyExc_RuntimeError, "the orchestrator is closed");
	return -1;
}

/* One serve step; aborts first when a hook asked for it. No GIL. */
static int serve_step(OrchObject *o, int timeout_ms)
{
	int rc;

	if (atomic_load(&o->want_abort))
		atex_orchestrator_abort(o->orch);
	rc = atex_orchestrator_serve_once(o->orch, timeout_ms);
	if (rc == 1 && atomic_load(&o->want_abort)) {
		atex_orchestrator_abort(o->orch);
		rc = atex_orchestrator_serve_once(o->orch, 0);
	}
	return rc;
}

static PyObject *orch_serve_once(OrchObject *o, PyObject *noargs)
{
	char *msg = NULL;
	PyObject *res;
	int rc;

	(void)noargs;
	if (check_open(o) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS rc = serve_step(o, 0);
	if (rc < 0)
		msg = strdup(atex_error_last());
	Py_END_ALLOW_THREADS res = served(o, rc, msg);
	free(msg);
	return res;
}

/* Serves until the run ends. An abort (Ctrl-C, a hook's exception) ends
 * it at once: serving on would wait until every system is released
 * (seconds for many containers), and Ctrl-C must be felt within a
 * second. The workers wind down on their own meanwhile; close() (stop(),
 * leaving the `with` block) waits for them and their releases. */
static int serve_all(void *arg)
{
	OrchObject *o = arg;
	int rc;

	do {
		if (atomic_load(&o->want_abort)) {
			atex_orchestrator_abort(o->orch);
			return atex_error_set_message(ATEX_ECANCELED,
						      "aborted");
		}
		rc = atex_orchestrator_serve_once(o->orch, 100);
	} while (rc == 1);
	return rc;
}

/* Ctrl-C: called in the main thread, its KeyboardInterrupt pending. The
 * abort is left to the serving thread (within its 100 ms slice): an
 * abort here would cancel Python executors from this thread, calling
 * Python with that exception set (and losing it). */
static void serve_cancel(void *arg)
{
	atomic_store(&((OrchObject *)arg)->want_abort, true);
}

static PyObject *orch_serve_forever(OrchObject *o, PyObject *noargs)
{
	char *msg = NULL;
	PyObject *res;
	int rc;

	(void)noargs;
	if (check_open(o) < 0)
		return NULL;
	rc = atexpy_call(serve_all, o, serve_cancel, o, &msg);
	if (rc == ATEXPY_EPYTHON) {
		/* Ctrl-C (or an alarm) wins over what a hook raised. */
		Py_CLEAR(o->error);
		return NULL;
	}
	res = served(o, rc, msg);
	free(msg);
	if (!res)
		return NULL;
	Py_DECREF(res);
	Py_RETURN_NONE;
}

static PyObject *orch_abort(OrchObject *o, PyObject *noargs)
{
	(void)noargs;
	if (o->orch) {
		Py_BEGIN_ALLOW_THREADS atex_orchestrator_abort(o->orch);
		Py_END_ALLOW_THREADS
	}
	Py_RETURN_NONE;
}

static PyObject *orch_close_m(OrchObject *o, PyObject *noargs)
{
	(void)noargs;
	orch_close(o);
	Py_RETURN_NONE;
}

static PyObject *orch_counts(OrchObject *o, PyObject *noargs)
{
	size_t done = 0, not_run = 0;

	(void)noargs;
	if (check_open(o) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS done = atex_orchestrator_done(o->orch);
	not_run = atex_orchestrator_not_run(o->orch);
	Py_END_ALLOW_THREADS return Py_BuildValue("(nn)", (Py_ssize_t)done,
						  (Py_ssize_t)not_run);
}

static PyObject *orch_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	OrchObject *o = (OrchObject *)type->tp_alloc(type, 0);

	(void)args;
	(void)kw;
	if (o)
		pthread_mutex_init(&o->given_lock, NULL);
	return (PyObject *)o;
}

static PyMethodDef orch_methods[] = {
	{"serve_once", (PyCFunction)orch_serve_once, METH_NOARGS,
	 "One non-blocking serving step: True while work remains; raises "
	 "what a hook raised."},
	{"serve_forever", (PyCFunction)orch_serve_forever, METH_NOARGS,
	 "Serves until every test has its result (GIL released; Ctrl-C "
	 "aborts the run and raises KeyboardInterrupt)."},
	{"abort", (PyCFunction)orch_abort, METH_NOARGS,
	 "Stops the run from any thread."},
	{"close", (PyCFunction)orch_close_m, METH_NOARGS,
	 "Aborts what still runs, releases every system, frees."},
	{"counts", (PyCFunction)orch_counts, METH_NOARGS,
	 "(tests done, tests not run)"},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject OrchType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.AdHocOrchestrator",
	.tp_basicsize = sizeof(OrchObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "libatex's ad-hoc orchestrator behind "
		  "atex.orchestrator.adhoc.AdHocOrchestrator.",
	.tp_new = orch_new,
	.tp_init = (initproc)orch_init,
	.tp_dealloc = (destructor)orch_dealloc,
	.tp_methods = orch_methods,
};

int atexpy_init_orchestrator(PyObject *module)
{
	if (PyType_Ready(&OrchType) < 0)
		return -1;
	if (PyModule_AddIntConstant(module, "ORCH_HOOK_RUN_SETUP",
				    HOOK_RUN_SETUP) < 0 ||
	    PyModule_AddIntConstant(module, "ORCH_HOOK_NEXT_TEST",
				    HOOK_NEXT_TEST) < 0 ||
	    PyModule_AddIntConstant(module, "ORCH_HOOK_DESTRUCTIVE",
				    HOOK_DESTRUCTIVE) < 0 ||
	    PyModule_AddIntConstant(module, "ORCH_HOOK_SHOULD_RERUN",
				    HOOK_SHOULD_RERUN) < 0)
		return -1;
	Py_INCREF(&OrchType);
	if (PyModule_AddObject(module, "AdHocOrchestrator",
			       (PyObject *)&OrchType) < 0) {
		Py_DECREF(&OrchType);
		return -1;
	}
	return 0;
}
