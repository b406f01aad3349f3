/*
 * _connection.c - atex._atex: the connection block (see _atex.h).
 *
 * _atex.ConnectionHandle holds one libatex connection: its own (made by
 * _atex.LocalConnection / PodmanConnection / SSHConnection), or a remote's,
 * borrowed through the remote's handle (_provisioner.c) so that a released
 * remote leaves no dangling pointer behind. The PA-shaped classes in
 * atex/connection/ keep one and call connect, disconnect, command_argv
 * (the local command line cmd() hands to subprocess, as Python ATEX does),
 * copy_to and copy_from.
 *
 * A Python connection that is not a built-in (or overrides one of its
 * operations) reaches C as a bridge: spawn runs the local command line
 * the object's cmd() would hand to subprocess (atex.connection._bridge_*
 * capture it) through a private local connection; copies go through its
 * rsync(); connect/disconnect call its methods. Every op takes the GIL for
 * its own duration only.
 */
#include "_atex.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	PyObject_HEAD atex_connection
		*c;	 /* owned; NULL when borrowed or closed */
	PyObject *owner; /* borrowed from this object (a remote handle) */
	atex_connection *(*get)(PyObject *owner);
} ConnHandle;

static PyTypeObject ConnHandleType;

/* The connection, or NULL with NotConnectedError-ish OSError set. */
static atex_connection *handle_conn(ConnHandle *h)
{
	atex_connection *c = h->owner ? h->get(h->owner) : h->c;

	if (!c)
		PyErr_SetString(PyExc_ConnectionError,
				"the connection is closed (its remote was "
				"released)");
	return c;
}

static void handle_dealloc(ConnHandle *h)
{
	atex_connection *c = h->c;

	h->c = NULL;
	if (c) {
		/* ssh's free stops its master: may take a moment. */
		Py_BEGIN_ALLOW_THREADS atex_connection_free(c);
		Py_END_ALLOW_THREADS
	}
	Py_XDECREF(h->owner);
	Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *handle_new(atex_connection *c)
{
	ConnHandle *h = PyObject_New(ConnHandle, &ConnHandleType);

	if (!h) {
		atex_connection_free(c);
		return NULL;
	}
	h->c = c;
	h->owner = NULL;
	h->get = NULL;
	return (PyObject *)h;
}

PyObject *
atexpy_connection_handle_borrowed(PyObject *owner,
				  atex_connection *(*get)(PyObject *owner))
{
	ConnHandle *h = PyObject_New(ConnHandle, &ConnHandleType);

	if (!h)
		return NULL;
	h->c = NULL;
	h->owner = Py_NewRef(owner);
	h->get = get;
	return (PyObject *)h;
}

/* ---- blocking calls through atexpy_call ---- */

struct conn_call {
	atex_connection *c;
	int timeout_ms;
	const char *src, *dst;
	bool from;
	atex_cancel *cancel;
};

static void call_cancel(void *arg)
{
	atex_cancel_fire(((struct conn_call *)arg)->cancel);
}

static int call_connect(void *arg)
{
	struct conn_call *k = arg;
	return atex_connection_connect(k->c, k->timeout_ms, k->cancel);
}

static int call_copy(void *arg)
{
	struct conn_call *k = arg;
	if (k->from)
		return atex_connection_copy_from(k->c, k->src, k->dst,
						 k->cancel);
	return atex_connection_copy_to(k->c, k->src, k->dst, k->cancel);
}

/* Runs fn with a fresh cancel token; 0 or -1 with an exception set. */
static int run_call(int (*fn)(void *), struct conn_call *k)
{
	int rc = atex_cancel_new(&k->cancel);

	if (rc < 0) {
		atexpy_raise(rc, NULL, NULL);
		return -1;
	}
	rc = atexpy_call_raise(fn, k, call_cancel, k, PyExc_ConnectionError);
	atex_cancel_free(k->cancel);
	return rc;
}

static PyObject *handle_connect(ConnHandle *h, PyObject *args)
{
	struct conn_call k = {.timeout_ms = -1};

	if (!PyArg_ParseTuple(args, "|i:connect", &k.timeout_ms))
		return NULL;
	if (!(k.c = handle_conn(h)))
		return NULL;
	if (run_call(call_connect, &k) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *handle_disconnect(ConnHandle *h, PyObject *unused)
{
	atex_connection *c = h->owner ? h->get(h->owner) : h->c;
	int rc = 0;

	(void)unused;
	if (!c)
		Py_RETURN_NONE; /* released: nothing left to close */
	Py_BEGIN_ALLOW_THREADS rc = atex_connection_disconnect(c);
	Py_END_ALLOW_THREADS if (rc < 0) return atexpy_raise(
		rc, NULL, PyExc_ConnectionError);
	Py_RETURN_NONE;
}

static PyObject *do_copy(ConnHandle *h, PyObject *args, bool from)
{
	struct conn_call k = {.from = from};
	PyObject *src, *dst, *ret = NULL;
	char *s = NULL, *d = NULL;

	if (!PyArg_ParseTuple(args, "OO", &src, &dst))
		return NULL;
	if (!(k.c = handle_conn(h)))
		return NULL;
	s = atexpy_path(src, "src");
	d = s ? atexpy_path(dst, "dst") : NULL;
	if (!d)
		goto out;
	k.src = s;
	k.dst = d;
	if (run_call(call_copy, &k) == 0)
		ret = Py_NewRef(Py_None);
out:
	free(s);
	free(d);
	return ret;
}

static PyObject *handle_copy_to(ConnHandle *h, PyObject *args)
{
	return do_copy(h, args, false);
}

static PyObject *handle_copy_from(ConnHandle *h, PyObject *args)
{
	return do_copy(h, args, true);
}

/* command_argv(argv, cwd=None, env=None) -> list of str: the local
 * command line that runs argv on the system. */
static PyObject *handle_command_argv(ConnHandle *h, PyObject *args,
				     PyObject *kw)
{
	static char *kwlist[] = {"argv", "cwd", "env", NULL};
	struct atex_spawn_options opts = ATEX_SPAWN_OPTIONS_INIT;
	PyObject *argv_o, *cwd_o = Py_None, *env_o = Py_None, *ret = NULL;
	char **argv = NULL, **env = NULL, **out = NULL, *cwd = NULL;
	atex_connection *c;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO:command_argv", kwlist,
					 &argv_o, &cwd_o, &env_o))
		return NULL;
	if (!(c = handle_conn(h)))
		return NULL;
	if (!(argv = atexpy_strv(argv_o, "command")))
		return NULL;
	if (!argv[0]) {
		PyErr_SetString(PyExc_ValueError, "command: empty");
		goto out;
	}
	if (cwd_o != Py_None && !(cwd = atexpy_path(cwd_o, "cwd")))
		goto out;
	if (!(env = atexpy_envv(env_o, "env")))
		goto out;
	opts.argv = (const char *const *)argv;
	opts.cwd = cwd;
	opts.env = (const char *const *)env;
	/* ssh takes its lock for the master socket: no GIL. */
	Py_BEGIN_ALLOW_THREADS rc =
		atex_connection_command_argv(&out, c, &opts);
	Py_END_ALLOW_THREADS if (rc < 0)
	{
		atexpy_raise(rc, NULL, PyExc_ConnectionError);
		goto out;
	}
	ret = PyList_New(0);
	for (size_t i = 0; ret && out[i]; i++) {
		PyObject *s = atexpy_str(out[i]);
		if (!s || PyList_Append(ret, s) < 0)
			Py_CLEAR(ret);
		Py_XDECREF(s);
	}
out:
	atex_command_argv_free(out);
	atexpy_strv_free(argv);
	atexpy_strv_free(env);
	free(cwd);
	return ret;
}

static PyObject *handle_name(ConnHandle *h, PyObject *unused)
{
	atex_connection *c = h->owner ? h->get(h->owner) : h->c;

	(void)unused;
	return atexpy_str(c ? atex_connection_name(c) : "(released)");
}

static PyObject *handle_can_reboot(ConnHandle *h, PyObject *unused)
{
	atex_connection *c = handle_conn(h);

	(void)unused;
	if (!c)
		return NULL;
	return PyBool_FromLong(atex_connection_can_reboot(c));
}

static PyObject *handle_alive(ConnHandle *h, PyObject *unused)
{
	atex_connection *c = h->owner ? h->get(h->owner) : h->c;

	(void)unused;
	return PyBool_FromLong(c && atex_ssh_connection_alive(c));
}

static PyObject *handle_closed(ConnHandle *h, void *unused)
{
	(void)unused;
	return PyBool_FromLong(!(h->owner ? h->get(h->owner) : h->c));
}

static PyMethodDef handle_methods[] = {
	{"connect", (PyCFunction)handle_connect, METH_VARARGS,
	 "connect(timeout_ms=-1): establish the channel (Ctrl-C cancels)."},
	{"disconnect", (PyCFunction)handle_disconnect, METH_NOARGS,
	 "Close the channel."},
	{"copy_to", (PyCFunction)handle_copy_to, METH_VARARGS,
	 "copy_to(src, dst): local tree src to dst on the system."},
	{"copy_from", (PyCFunction)handle_copy_from, METH_VARARGS,
	 "copy_from(src, dst): src on the system to the local dst."},
	{"command_argv", (PyCFunction)(void (*)(void))handle_command_argv,
	 METH_VARARGS | METH_KEYWORDS,
	 "command_argv(argv, cwd=None, env=None): the local command line "
	 "that runs argv on the system."},
	{"name", (PyCFunction)handle_name, METH_NOARGS, "The human name."},
	{"can_reboot", (PyCFunction)handle_can_reboot, METH_NOARGS,
	 "Whether tests may reboot the system."},
	{"alive", (PyCFunction)handle_alive, METH_NOARGS,
	 "ssh: whether the master runs."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
	{"closed", (getter)handle_closed, NULL,
	 "True once the connection is gone (its remote released).", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ConnHandleType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.ConnectionHandle",
	.tp_basicsize = sizeof(ConnHandle),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A libatex connection (owned, or a remote's).",
	.tp_dealloc = (destructor)handle_dealloc,
	.tp_methods = handle_methods,
	.tp_getset = handle_getset,
};

/* ---- constructors ---- */

static PyObject *py_local_connection(PyObject *self, PyObject *args,
				     PyObject *kw)
{
	static char *kwlist[] = {"cwd", NULL};
	PyObject *cwd_o = Py_None;
	atex_connection *c = NULL;
	char *cwd = NULL;
	int rc;

	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:LocalConnection", kwlist,
					 &cwd_o))
		return NULL;
	if (cwd_o != Py_None && !(cwd = atexpy_path(cwd_o, "cwd")))
		return NULL;
	rc = atex_local_connection_new(&c, cwd);
	free(cwd);
	if (rc < 0)
		return atexpy_raise(rc, NULL, NULL);
	return handle_new(c);
}

static PyObject *py_podman_connection(PyObject *self, PyObject *args,
				      PyObject *kw)
{
	static char *kwlist[] = {"container", "podman_args", "podman_program",
				 "can_reboot", NULL};
	struct atex_podman_options o = ATEX_PODMAN_OPTIONS_INIT;
	PyObject *cont_o, *args_o = Py_None, *prog_o = Py_None, *ret = NULL;
	char *cont = NULL, *prog = NULL, **pargs = NULL;
	atex_connection *c = NULL;
	int reboot = 0, rc;

	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOp:PodmanConnection",
					 kwlist, &cont_o, &args_o, &prog_o,
					 &reboot))
		return NULL;
	if (!(cont = atexpy_path(cont_o, "container")))
		goto out;
	pargs = args_o == Py_None ? calloc(1, sizeof(char *))
				  : atexpy_strv(args_o, "podman_args");
	if (!pargs) {
		if (!PyErr_Occurred())
			PyErr_NoMemory();
		goto out;
	}
	if (prog_o != Py_None &&
	    !(prog = atexpy_path(prog_o, "podman_program")))
		goto out;
	o.container = cont;
	o.podman_args = (const char *const *)pargs;
	o.podman_program = prog;
	o.can_reboot = reboot;
	rc = atex_podman_connection_new(&c, &o);
	if (rc < 0)
		atexpy_raise(rc, NULL, NULL);
	else
		ret = handle_new(c);
out:
	free(cont);
	free(prog);
	atexpy_strv_free(pargs);
	return ret;
}

/* ---- ssh options (shared with _provisioner.c) ---- */

void atexpy_ssh_options_clear(struct atexpy_ssh_options *s)
{
	free(s->host);
	free(s->user);
	free(s->identity);
	free(s->program);
	atexpy_strv_free(s->options);
	memset(s, 0, sizeof(*s));
}

/* One optional str entry of the dict, copied into *out. */
int atexpy_dict_str(char **out, PyObject *d, const char *key)
{
	PyObject *v = PyDict_GetItemString(d, key);

	*out = NULL;
	if (!v || v == Py_None)
		return 0;
	if (PyLong_Check(v))
		v = PyObject_Str(v);
	else
		Py_INCREF(v);
	if (!v)
		return -1;
	*out = atexpy_path(v, key);
	Py_DECREF(v);
	return *out ? 0 : -1;
}

int atexpy_dict_int(int *out, PyObject *d, const char *key)
{
	PyObject *v = PyDict_GetItemString(d, key);
	long n;

	if (!v || v == Py_None)
		return 0;
	n = PyLong_AsLong(v);
	if (n == -1 && PyErr_Occurred())
		return -1;
	*out = (int)n;
	return 0;
}

int atexpy_ssh_options_from(struct atexpy_ssh_options *s, PyObject *d)
{
	PyObject *opts, *strict;

	memset(s, 0, sizeof(*s));
	s->o = (struct atex_ssh_options)ATEX_SSH_OPTIONS_INIT;
	if (!PyDict_Check(d)) {
		PyErr_SetString(PyExc_TypeError, "ssh options: not a dict");
		return -1;
	}
	if (atexpy_dict_str(&s->host, d, "host") ||
	    atexpy_dict_str(&s->user, d, "user") ||
	    atexpy_dict_str(&s->identity, d, "identity") ||
	    atexpy_dict_str(&s->program, d, "ssh_program") ||
	    atexpy_dict_int(&s->o.port, d, "port") ||
	    atexpy_dict_int(&s->o.connect_timeout_s, d, "connect_timeout") ||
	    atexpy_dict_int(&s->o.keepalive_s, d, "keepalive") ||
	    atexpy_dict_int(&s->o.max_sessions, d, "max_sessions"))
		goto fail;
	opts = PyDict_GetItemString(d, "options");
	if (opts && opts != Py_None &&
	    !(s->options = atexpy_strv(opts, "options")))
		goto fail;
	strict = PyDict_GetItemString(d, "strict_host_keys");
	if (strict) {
		int t = PyObject_IsTrue(strict);
		if (t < 0)
			goto fail;
		s->o.strict_host_keys = t;
	}
	s->o.host = s->host;
	s->o.user = s->user;
	s->o.identity = s->identity;
	s->o.ssh_program = s->program;
	s->o.options = (const char *const *)s->options;
	return 0;
fail:
	atexpy_ssh_options_clear(s);
	return -1;
}

static PyObject *py_ssh_connection(PyObject *self, PyObject *d)
{
	struct atexpy_ssh_options s;
	atex_connection *c = NULL;
	int rc;

	(void)self;
	if (atexpy_ssh_options_from(&s, d) < 0)
		return NULL;
	rc = atex_ssh_connection_new(&c, &s.o);
	atexpy_ssh_options_clear(&s);
	if (rc < 0)
		return atexpy_raise(rc, NULL, NULL);
	return handle_new(c);
}

/* ---- the bridge: a Python connection as an atex_connection ---- */

struct bridge {
	atex_connection base;
	PyObject *obj;		/* borrowed: the object owns our capsule */
	atex_connection *local; /* spawns the captured command line */
	char *name;
};

static PyObject *bridge_helper(const char *fn)
{
	PyObject *mod = PyImport_ImportModule("atex.connection");
	PyObject *f = mod ? PyObject_GetAttrString(mod, fn) : NULL;

	Py_XDECREF(mod);
	return f;
}

/* Turns the pending Python exception into an atex error naming the
 * bridge; logs it to atex.connection through the log bridge's text. */
static int bridge_fail(struct bridge *b, const char *what)
{
	PyObject *type, *value, *tb, *s = NULL;
	char msg[512];

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (value)
		s = PyObject_Str(value);
	snprintf(msg, sizeof(msg), "%s: %s: %s: %s", b->name, what,
		 type ? ((PyTypeObject *)type)->tp_name : "error",
		 s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "?");
	PyErr_Clear();
	Py_XDECREF(s);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	return atex_error_set_message(ATEX_EIO, msg);
}

static int bridge_method(struct bridge *b, const char *method)
{
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *r = PyObject_CallMethod(b->obj, method, NULL);
	int rc = 0;

	if (!r)
		rc = bridge_fail(b, method);
	Py_XDECREF(r);
	PyGILState_Release(g);
	return rc;
}

static int bridge_connect(atex_connection *c, int timeout_ms,
			  atex_cancel *cancel)
{
	(void)timeout_ms;
	(void)cancel;
	return bridge_method((struct bridge *)c, "connect");
}

static int bridge_disconnect(atex_connection *c)
{
	return bridge_method((struct bridge *)c, "disconnect");
}

/* Asks atex.connection._bridge_command(obj, argv, cwd, env) for
 * (local_argv, local_cwd or None, env dict or None). */
static int bridge_capture(struct bridge *b,
			  const struct atex_spawn_options *opts, char ***argv,
			  char **cwd, char ***env)
{
	PyObject *f = NULL, *pargv = NULL, *penv = NULL, *r = NULL;
	int rc = -1;

	pargv = PyList_New(0);
	penv = PyList_New(0);
	for (size_t i = 0; pargv && opts->argv[i]; i++) {
		PyObject *s = atexpy_str(opts->argv[i]);
		if (!s || PyList_Append(pargv, s) < 0)
			Py_CLEAR(pargv);
		Py_XDECREF(s);
	}
	for (size_t i = 0; penv && opts->env && opts->env[i]; i++) {
		PyObject *s = atexpy_str(opts->env[i]);
		if (!s || PyList_Append(penv, s) < 0)
			Py_CLEAR(penv);
		Py_XDECREF(s);
	}
	if (pargv && penv && (f = bridge_helper("_bridge_command")))
		r = PyObject_CallFunction(f, "OOsO", b->obj, pargv, opts->cwd,
					  penv);
	if (!r)
		goto out;
	if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 3) {
		PyErr_SetString(PyExc_TypeError, "_bridge_command: bad reply");
		goto out;
	}
	if (!(*argv = atexpy_strv(PyTuple_GET_ITEM(r, 0), "argv")))
		goto out;
	if (PyTuple_GET_ITEM(r, 1) != Py_None &&
	    !(*cwd = atexpy_path(PyTuple_GET_ITEM(r, 1), "cwd")))
		goto out;
	if (!(*env = atexpy_envv(PyTuple_GET_ITEM(r, 2), "env")))
		goto out;
	rc = 0;
out:
	Py_XDECREF(f);
	Py_XDECREF(pargv);
	Py_XDECREF(penv);
	Py_XDECREF(r);
	return rc;
}

static int bridge_spawn(atex_process **out, atex_connection *c,
			const struct atex_spawn_options *opts)
{
	struct bridge *b = (struct bridge *)c;
	struct atex_spawn_options lo = *opts;
	char **argv = NULL, **env = NULL, *cwd = NULL;
	PyGILState_STATE g = PyGILState_Ensure();
	int rc = bridge_capture(b, opts, &argv, &cwd, &env);

	if (rc < 0)
		rc = bridge_fail(b, "cmd");
	PyGILState_Release(g);
	if (rc == 0) {
		lo.argv = (const char *const *)argv;
		lo.cwd = cwd;
		lo.env = (const char *const *)env;
		rc = atex_connection_spawn(out, b->local, &lo);
	}
	free(cwd);
	atexpy_strv_free(argv);
	atexpy_strv_free(env);
	return rc;
}

static int bridge_copy(atex_connection *c, const char *src, const char *dst,
		       bool from)
{
	struct bridge *b = (struct bridge *)c;
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *f = bridge_helper("_bridge_copy"), *r = NULL;
	int rc = 0;

	if (f)
		r = PyObject_CallFunction(f, "Ossi", b->obj, src, dst, from);
	if (!r)
		rc = bridge_fail(b, "rsync");
	Py_XDECREF(f);
	Py_XDECREF(r);
	PyGILState_Release(g);
	return rc;
}

static int bridge_copy_to(atex_connection *c, const char *src, const char *dst,
			  atex_cancel *cancel)
{
	(void)cancel;
	return bridge_copy(c, src, dst, false);
}

static int bridge_copy_from(atex_connection *c, const char *src,
			    const char *dst, atex_cancel *cancel)
{
	(void)cancel;
	return bridge_copy(c, src, dst, true);
}

static const char *bridge_name(const atex_connection *c)
{
	return ((const struct bridge *)c)->name;
}

static void bridge_free(atex_connection *c)
{
	struct bridge *b = (struct bridge *)c;

	atex_connection_free(b->local);
	free(b->name);
	free(b);
}

static const struct atex_connection_ops bridge_ops = {
	.version = ATEX_CONNECTION_OPS_VERSION,
	.connect = bridge_connect,
	.disconnect = bridge_disconnect,
	.spawn = bridge_spawn,
	.copy_to = bridge_copy_to,
	.name = bridge_name,
	.free = bridge_free,
	.copy_from = bridge_copy_from,
};

static void capsule_free(PyObject *cap)
{
	atex_connection *c = PyCapsule_GetPointer(cap, "atex.connection");

	if (c)
		atex_connection_free(c);
}

static char *object_name(PyObject *obj)
{
	PyObject *s = PyObject_Str(obj);
	const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
	char *name = strdup(u ? u : "python connection");

	PyErr_Clear();
	Py_XDECREF(s);
	return name;
}

/* The bridge kept in obj._atex_bridge (made on first use). */
static atex_connection *bridge_of(PyObject *obj)
{
	PyObject *cap = PyObject_GetAttrString(obj, "_atex_bridge");
	struct bridge *b;
	atex_connection *c;

	if (cap && PyCapsule_CheckExact(cap)) {
		c = PyCapsule_GetPointer(cap, "atex.connection");
		Py_DECREF(cap);
		return c;
	}
	Py_XDECREF(cap);
	PyErr_Clear();
	b = calloc(1, sizeof(*b));
	if (!b)
		return (atex_connection *)PyErr_NoMemory();
	b->base.ops = &bridge_ops;
	b->obj = obj;
	b->name = object_name(obj);
	if (!b->name || atex_local_connection_new(&b->local, NULL) < 0) {
		bridge_free(&b->base);
		return (atex_connection *)PyErr_NoMemory();
	}
	cap = PyCapsule_New(b, "atex.connection", capsule_free);
	if (!cap) {
		bridge_free(&b->base);
		return NULL;
	}
	if (PyObject_SetAttrString(obj, "_atex_bridge", cap) < 0) {
		Py_DECREF(cap);
		return NULL;
	}
	Py_DECREF(cap);
	return &b->base;
}

bool atexpy_connection_is_bridge(const atex_connection *c)
{
	return c && c->ops == &bridge_ops;
}

atex_connection *atexpy_connection_ptr(PyObject *connection)
{
	PyObject *h;
	atex_connection *c;

	/* Built-ins not overridden give their own handle; others None. */
	h = PyObject_CallMethod(connection, "_atex_handle", NULL);
	if (!h) {
		if (!PyErr_ExceptionMatches(PyExc_AttributeError))
			return NULL;
		PyErr_Clear();
		PyErr_Format(PyExc_TypeError,
			     "%R is not an atex.connection.Connection",
			     connection);
		return NULL;
	}
	if (h == Py_None) {
		Py_DECREF(h);
		return bridge_of(connection);
	}
	if (!PyObject_TypeCheck(h, &ConnHandleType)) {
		Py_DECREF(h);
		PyErr_SetString(PyExc_TypeError, "_atex_handle: not a handle");
		return NULL;
	}
	c = handle_conn((ConnHandle *)h);
	Py_DECREF(h); /* the object keeps its handle */
	return c;
}

atex_connection *atexpy_connection_handle_ptr(PyObject *handle)
{
	if (!PyObject_TypeCheck(handle, &ConnHandleType)) {
		PyErr_SetString(PyExc_TypeError, "not a ConnectionHandle");
		return NULL;
	}
	return handle_conn((ConnHandle *)handle);
}

/* _bridge_selftest(connection, argv, cwd, env, input): spawns argv
 * through atexpy_connection_ptr(connection) (the path the executor
 * takes) and returns (status, stdout, stderr). */
static int selftest_run(void *arg)
{
	void **a = arg;
	return atex_connection_run(a[0], a[1], a[2], a[3], *(size_t *)a[4],
				   60000, NULL);
}

static PyObject *py_selftest_run(PyObject *self, PyObject *args)
{
	PyObject *conn, *argv_o, *ret = NULL;
	Py_buffer in = {0};
	struct atex_run_result r = {0};
	atex_connection *c;
	char **argv;
	size_t len;
	void *a[5];

	(void)self;
	if (!PyArg_ParseTuple(args, "OOy*", &conn, &argv_o, &in))
		return NULL;
	c = atexpy_connection_ptr(conn);
	argv = c ? atexpy_strv(argv_o, "argv") : NULL;
	if (!argv)
		goto out;
	len = (size_t)in.len;
	a[0] = &r;
	a[1] = c;
	a[2] = argv;
	a[3] = in.buf;
	a[4] = &len;
	if (atexpy_call_raise(selftest_run, a, NULL, NULL, NULL) == 0)
		ret = Py_BuildValue("iy#y#", r.status, r.out,
				    (Py_ssize_t)r.out_len, r.err,
				    (Py_ssize_t)r.err_len);
	atex_run_result_clear(&r);
	atexpy_strv_free(argv);
out:
	PyBuffer_Release(&in);
	return ret;
}

/* _bridge_selftest_copy(connection, src, dst, from): copy through C. */
static PyObject *py_selftest_copy(PyObject *self, PyObject *args)
{
	PyObject *conn;
	const char *src, *dst;
	struct conn_call k = {0};
	int from;

	(void)self;
	if (!PyArg_ParseTuple(args, "Ossp", &conn, &src, &dst, &from))
		return NULL;
	if (!(k.c = atexpy_connection_ptr(conn)))
		return NULL;
	k.src = src;
	k.dst = dst;
	k.from = from;
	if (run_call(call_copy, &k) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *py_selftest_connect(PyObject *self, PyObject *conn)
{
	struct conn_call k = {.timeout_ms = -1};

	(void)self;
	if (!(k.c = atexpy_connection_ptr(conn)))
		return NULL;
	if (run_call(call_connect, &k) < 0)
		return NULL;
	return atexpy_str(atex_connection_name(k.c));
}

static PyMethodDef conn_functions[] = {
	{"LocalConnection", (PyCFunction)(void (*)(void))py_local_connection,
	 METH_VARARGS | METH_KEYWORDS,
	 "LocalConnection(cwd=None) -> ConnectionHandle"},
	{"PodmanConnection", (PyCFunction)(void (*)(void))py_podman_connection,
	 METH_VARARGS | METH_KEYWORDS,
	 "PodmanConnection(container, podman_args=None, podman_program=None, "
	 "can_reboot=False) -> ConnectionHandle"},
	{"SSHConnection", (PyCFunction)py_ssh_connection, METH_O,
	 "SSHConnection(dict of host, port, user, identity, options, "
	 "connect_timeout, keepalive, ssh_program, max_sessions, "
	 "strict_host_keys) -> ConnectionHandle"},
	{"_connection_selftest_run", (PyCFunction)py_selftest_run, METH_VARARGS,
	 "Run argv through the connection's libatex side (tests)."},
	{"_connection_selftest_copy", (PyCFunction)py_selftest_copy,
	 METH_VARARGS, "Copy through the connection's libatex side (tests)."},
	{"_connection_selftest_connect", (PyCFunction)py_selftest_connect,
	 METH_O, "Connect through the libatex side; its name (tests)."},
	{NULL, NULL, 0, NULL},
};

int atexpy_init_connection(PyObject *module)
{
	if (PyType_Ready(&ConnHandleType) < 0)
		return -1;
	if (PyModule_AddObjectRef(module, "ConnectionHandle",
				  (PyObject *)&ConnHandleType) < 0)
		return -1;
	return PyModule_AddFunctions(module, conn_functions);
}
