/*
 * _provisioner.c - atex._atex: the provisioner block (see _atex.h).
 *
 * _atex.ProvisionerHandle owns one libatex provisioner (local, podman,
 * static, qemu, testingfarm); get_remote gives _atex.RemoteHandle objects.
 * libatex frees a remote at release and releases every remote at stop,
 * behind Python's back: so the provisioner handle keeps a list of the
 * remote handles it gave out, and stop() marks them released first (under
 * the GIL), and a remote handle's connection is only ever reached through
 * the remote handle (NULL once released): no Python object dangles.
 *
 * A Python provisioner that is not a built-in reaches C as a bridge: a
 * poller thread calls its get_remote(block=False) every 100 ms (holding
 * the GIL only for the call), queues what it returns and makes ready_fd
 * (an eventfd) readable; the queued remote's connection is
 * atexpy_connection_ptr(remote); release calls remote.release().
 */
#include "_atex.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct RemoteHandle RemoteHandle;

typedef struct {
	PyObject_HEAD atex_provisioner *p;
	RemoteHandle *remotes; /* live handles of remotes handed out */
	long out;	       /* remotes handed out and not released */
} ProvHandle;

struct RemoteHandle {
	PyObject_HEAD atex_remote *r; /* NULL once released */
	ProvHandle *prov; /* strong; NULL for the orchestrator's remotes */
	RemoteHandle *prev, *next;
	char *name;
};

static PyTypeObject ProvHandleType, RemoteHandleType;

/* atex.provisioner.ProvisionerError (a new reference) or RuntimeError. */
static PyObject *prov_error_class(void)
{
	PyObject *mod = PyImport_ImportModule("atex.provisioner");
	PyObject *cls =
		mod ? PyObject_GetAttrString(mod, "ProvisionerError") : NULL;

	Py_XDECREF(mod);
	if (!cls) {
		PyErr_Clear();
		cls = Py_NewRef(PyExc_RuntimeError);
	}
	return cls;
}

static PyObject *raise_prov(int rc, const char *msg)
{
	PyObject *cls;

	if (rc == ATEX_ENOMEM)
		return atexpy_raise(rc, msg, NULL);
	cls = prov_error_class();
	atexpy_raise_as(cls, rc, msg);
	Py_DECREF(cls);
	return NULL;
}

/* ---- RemoteHandle ---- */

static void remote_unlink(RemoteHandle *h)
{
	if (!h->prov)
		return;
	if (h->prev)
		h->prev->next = h->next;
	else if (h->prov->remotes == h)
		h->prov->remotes = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->prev = h->next = NULL;
}

static void remote_dealloc(RemoteHandle *h)
{
	/* Not released: the provisioner still owns it (stop releases). */
	remote_unlink(h);
	Py_CLEAR(h->prov);
	free(h->name);
	Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *remote_handle_new(atex_remote *r, ProvHandle *prov)
{
	RemoteHandle *h = PyObject_New(RemoteHandle, &RemoteHandleType);

	if (!h)
		return NULL;
	h->r = r;
	h->prov = prov;
	h->prev = h->next = NULL;
	h->name = strdup(atex_remote_name(r));
	if (prov) {
		Py_INCREF(prov);
		h->next = prov->remotes;
		if (h->next)
			h->next->prev = h;
		prov->remotes = h;
	}
	return (PyObject *)h;
}

static atex_connection *remote_conn_of(PyObject *owner)
{
	RemoteHandle *h = (RemoteHandle *)owner;
	return h->r ? atex_remote_connection(h->r) : NULL;
}

static PyObject *remote_release(RemoteHandle *h, PyObject *unused)
{
	atex_remote *r = h->r;
	bool owned = h->prov != NULL;

	(void)unused;
	h->r = NULL; /* idempotent, also against another thread */
	if (r && owned)
		h->prov->out--;
	remote_unlink(h);
	if (r && owned) {
		/* podman rm, ssh master stop: may take a while. */
		Py_BEGIN_ALLOW_THREADS atex_remote_release(r);
		Py_END_ALLOW_THREADS
	}
	Py_RETURN_NONE;
}

static PyObject *remote_connection(RemoteHandle *h, PyObject *unused)
{
	(void)unused;
	return atexpy_connection_handle_borrowed((PyObject *)h, remote_conn_of);
}

static PyObject *remote_name(RemoteHandle *h, PyObject *unused)
{
	(void)unused;
	return atexpy_str(h->name ? h->name : "remote");
}

static PyObject *remote_released(RemoteHandle *h, void *unused)
{
	(void)unused;
	return PyBool_FromLong(h->r == NULL);
}

static PyObject *remote_testingfarm_login(RemoteHandle *h, PyObject *unused)
{
	struct atex_testingfarm_login l;
	int rc;

	(void)unused;
	if (!h->r)
		return raise_prov(ATEX_EINVAL, "the remote was released");
	rc = atex_testingfarm_remote_login(&l, h->r);
	if (rc < 0)
		return atexpy_raise(rc, NULL, NULL);
	return Py_BuildValue("{s:s,s:s,s:s,s:s}", "request_id", l.request_id,
			     "user", l.user, "host", l.host, "identity",
			     l.identity);
}

static PyMethodDef remote_methods[] = {
	{"release", (PyCFunction)remote_release, METH_NOARGS,
	 "Give the system back (idempotent)."},
	{"connection", (PyCFunction)remote_connection, METH_NOARGS,
	 "The remote's ConnectionHandle (closed once released)."},
	{"name", (PyCFunction)remote_name, METH_NOARGS, "The human name."},
	{"testingfarm_login", (PyCFunction)remote_testingfarm_login,
	 METH_NOARGS, "Testing Farm: request_id, user, host, identity."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef remote_getset[] = {
	{"released", (getter)remote_released, NULL,
	 "True once released (by release() or the provisioner's stop()).",
	 NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RemoteHandleType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.RemoteHandle",
	.tp_basicsize = sizeof(RemoteHandle),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A libatex remote handed out by a provisioner.",
	.tp_dealloc = (destructor)remote_dealloc,
	.tp_methods = remote_methods,
	.tp_getset = remote_getset,
};

/* ---- ProvisionerHandle ---- */

/* Marks every remote handed out as released: libatex is about to
 * release (stop) or free them. GIL held. */
static void forget_remotes(ProvHandle *h)
{
	while (h->remotes) {
		RemoteHandle *r = h->remotes;
		r->r = NULL;
		remote_unlink(r);
	}
	h->out = 0;
}

static void prov_dealloc(ProvHandle *h)
{
	atex_provisioner *p = h->p;

	forget_remotes(h);
	h->p = NULL;
	if (p) {
		Py_BEGIN_ALLOW_THREADS atex_provisioner_free(p);
		Py_END_ALLOW_THREADS
	}
	Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *prov_new(atex_provisioner *p)
{
	ProvHandle *h = PyObject_New(ProvHandle, &ProvHandleType);

	if (!h) {
		atex_provisioner_free(p);
		return NULL;
	}
	h->p = p;
	h->remotes = NULL;
	h->out = 0;
	return (PyObject *)h;
}

static int call_start(void *arg)
{
	return atex_provisioner_start(arg);
}

static int call_stop(void *arg)
{
	return atex_provisioner_stop(arg);
}

/* A call through atexpy_call without a cancel: Ctrl-C is raised once it
 * ended (a half-done stop would leave systems behind). */
static PyObject *prov_run(ProvHandle *h, int (*fn)(void *))
{
	char *msg = NULL;
	int rc = atexpy_call(fn, h->p, NULL, NULL, &msg);

	if (rc == ATEXPY_EPYTHON)
		return NULL;
	if (rc < 0) {
		raise_prov(rc, msg);
		free(msg);
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *prov_start(ProvHandle *h, PyObject *unused)
{
	(void)unused;
	return prov_run(h, call_start);
}

static PyObject *prov_stop(ProvHandle *h, PyObject *unused)
{
	(void)unused;
	forget_remotes(h);
	return prov_run(h, call_stop);
}

static PyObject *prov_provision(ProvHandle *h, PyObject *args)
{
	int count = 1, rc;

	if (!PyArg_ParseTuple(args, "|i:provision", &count))
		return NULL;
	Py_BEGIN_ALLOW_THREADS rc = atex_provisioner_provision(h->p, count);
	Py_END_ALLOW_THREADS if (rc < 0) return raise_prov(rc, NULL);
	Py_RETURN_NONE;
}

/* get_remote(timeout_ms): a RemoteHandle, or None when none was ready in
 * time. Callers wait in short slices (Ctrl-C runs between them). */
static PyObject *prov_get_remote(ProvHandle *h, PyObject *args)
{
	atex_remote *r = NULL;
	int timeout_ms = 0, rc;
	char *msg = NULL;
	PyObject *ret;

	if (!PyArg_ParseTuple(args, "|i:get_remote", &timeout_ms))
		return NULL;
	Py_BEGIN_ALLOW_THREADS rc =
		atex_provisioner_get_remote(&r, h->p, timeout_ms);
	if (rc < 0 && rc != ATEX_ETIMEDOUT)
		msg = strdup(atex_error_last());
	Py_END_ALLOW_THREADS if (rc == ATEX_ETIMEDOUT) Py_RETURN_NONE;
	if (rc < 0) {
		raise_prov(rc, msg);
		free(msg);
		return NULL;
	}
	ret = remote_handle_new(r, h);
	if (!ret)
		atex_remote_release(r);
	else
		h->out++;
	return ret;
}

static PyObject *prov_clear(ProvHandle *h, PyObject *unused)
{
	int rc;

	(void)unused;
	Py_BEGIN_ALLOW_THREADS rc = atex_provisioner_clear(h->p);
	Py_END_ALLOW_THREADS if (rc < 0) return raise_prov(rc, NULL);
	Py_RETURN_NONE;
}

static PyObject *prov_name(ProvHandle *h, PyObject *unused)
{
	(void)unused;
	return atexpy_str(atex_provisioner_name(h->p));
}

static PyObject *prov_outstanding(ProvHandle *h, PyObject *unused)
{
	(void)unused;
	return PyLong_FromLong(h->out);
}

static PyObject *prov_testingfarm_stats(ProvHandle *h, PyObject *unused)
{
	struct atex_testingfarm_stats s;
	int rc;

	(void)unused;
	rc = atex_testingfarm_provisioner_stats(&s, h->p);
	if (rc < 0)
		return atexpy_raise(rc, NULL, NULL);
	return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i}", "submitted", s.submitted,
			     "failed", s.failed, "ready", s.ready, "canceled",
			     s.canceled, "alive", s.alive);
}

static PyMethodDef prov_methods[] = {
	{"start", (PyCFunction)prov_start, METH_NOARGS, "Start."},
	{"stop", (PyCFunction)prov_stop, METH_NOARGS,
	 "Release every system (remote handles become released)."},
	{"provision", (PyCFunction)prov_provision, METH_VARARGS,
	 "provision(count=1); -1: as many as it can."},
	{"get_remote", (PyCFunction)prov_get_remote, METH_VARARGS,
	 "get_remote(timeout_ms=0) -> RemoteHandle or None."},
	{"clear", (PyCFunction)prov_clear, METH_NOARGS,
	 "Forget pending requests."},
	{"name", (PyCFunction)prov_name, METH_NOARGS, "The human name."},
	{"outstanding", (PyCFunction)prov_outstanding, METH_NOARGS,
	 "How many remotes handed out are not released."},
	{"testingfarm_stats", (PyCFunction)prov_testingfarm_stats, METH_NOARGS,
	 "Testing Farm: request counters."},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject ProvHandleType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "atex._atex.ProvisionerHandle",
	.tp_basicsize = sizeof(ProvHandle),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A libatex provisioner.",
	.tp_dealloc = (destructor)prov_dealloc,
	.tp_methods = prov_methods,
};

/* ---- constructors ---- */

/* `pp` is read after the constructor call (argument order). */
static PyObject *made(int rc, atex_provisioner **pp)
{
	if (rc < 0)
		return atexpy_raise(rc, NULL, NULL);
	return prov_new(*pp);
}

static PyObject *py_local_provisioner(PyObject *self, PyObject *args)
{
	atex_provisioner *p = NULL;
	int slots;

	(void)self;
	if (!PyArg_ParseTuple(args, "i:LocalProvisioner", &slots))
		return NULL;
	return made(atex_local_provisioner_new(&p, slots), &p);
}

/* An optional list entry of a dict as a string array (NULL: absent). */
static int dict_strv(char ***out, PyObject *d, const char *key)
{
	PyObject *v = PyDict_GetItemString(d, key);

	*out = NULL;
	if (!v || v == Py_None)
		return 0;
	*out = atexpy_strv(v, key);
	return *out ? 0 : -1;
}

static int dict_bool(bool *out, PyObject *d, const char *key)
{
	PyObject *v = PyDict_GetItemString(d, key);
	int t;

	if (!v)
		return 0;
	if ((t = PyObject_IsTrue(v)) < 0)
		return -1;
	*out = t;
	return 0;
}

static PyObject *py_podman_provisioner(PyObject *self, PyObject *d)
{
	struct atex_podman_provisioner_options o =
		ATEX_PODMAN_PROVISIONER_OPTIONS_INIT;
	char *image = NULL, *program = NULL, **pargs = NULL, **rargs = NULL,
	     **cmd = NULL;
	atex_provisioner *p = NULL;
	PyObject *ret = NULL;

	(void)self;
	if (!PyDict_Check(d))
		return PyErr_Format(PyExc_TypeError, "expected a dict");
	if (atexpy_dict_str(&image, d, "image") ||
	    atexpy_dict_str(&program, d, "podman_program") ||
	    atexpy_dict_int(&o.count, d, "count") ||
	    dict_strv(&pargs, d, "podman_args") ||
	    dict_strv(&rargs, d, "run_args") ||
	    dict_strv(&cmd, d, "run_command") ||
	    dict_bool(&o.systemd, d, "systemd"))
		goto out;
	o.image = image;
	o.podman_program = program;
	o.podman_args = (const char *const *)pargs;
	o.run_args = (const char *const *)rargs;
	o.run_command = (const char *const *)cmd;
	ret = made(atex_podman_provisioner_new(&p, &o), &p);
out:
	free(image);
	free(program);
	atexpy_strv_free(pargs);
	atexpy_strv_free(rargs);
	atexpy_strv_free(cmd);
	return ret;
}

static PyObject *py_static_provisioner(PyObject *self, PyObject *args)
{
	struct atexpy_ssh_options s;
	PyObject *hosts_o, *base_o, *ret;
	atex_provisioner *p = NULL;
	char **hosts;

	(void)self;
	if (!PyArg_ParseTuple(args, "OO!:StaticProvisioner", &hosts_o,
			      &PyDict_Type, &base_o))
		return NULL;
	if (!(hosts = atexpy_strv(hosts_o, "hosts")))
		return NULL;
	if (atexpy_ssh_options_from(&s, base_o) < 0) {
		atexpy_strv_free(hosts);
		return NULL;
	}
	if (!s.o.host)
		s.o.host = "unused"; /* the base's host is ignored */
	ret = made(atex_static_provisioner_new(&p, (const char *const *)hosts,
					       &s.o),
		   &p);
	atexpy_ssh_options_clear(&s);
	atexpy_strv_free(hosts);
	return ret;
}

static PyObject *py_qemu_provisioner(PyObject *self, PyObject *d)
{
	struct atex_qemu_provisioner_options o =
		ATEX_QEMU_PROVISIONER_OPTIONS_INIT;
	struct atexpy_ssh_options host;
	char *image = NULL, *kernel = NULL, *initrd = NULL, *cmdline = NULL,
	     *program = NULL, *user = NULL, *identity = NULL, *workdir = NULL,
	     **qargs = NULL;
	int accel = 0, firmware = 0, key = 0;
	bool have_host = false;
	atex_provisioner *p = NULL;
	PyObject *ret = NULL, *host_o;

	(void)self;
	if (!PyDict_Check(d))
		return PyErr_Format(PyExc_TypeError, "expected a dict");
	if (atexpy_dict_str(&image, d, "image") ||
	    atexpy_dict_str(&kernel, d, "kernel") ||
	    atexpy_dict_str(&initrd, d, "initrd") ||
	    atexpy_dict_str(&cmdline, d, "cmdline") ||
	    atexpy_dict_str(&program, d, "qemu_program") ||
	    atexpy_dict_str(&user, d, "user") ||
	    atexpy_dict_str(&identity, d, "identity") ||
	    atexpy_dict_str(&workdir, d, "workdir") ||
	    dict_strv(&qargs, d, "qemu_args") ||
	    atexpy_dict_int(&o.count, d, "count") ||
	    atexpy_dict_int(&o.memory_mib, d, "memory_mib") ||
	    atexpy_dict_int(&o.cpus, d, "cpus") ||
	    atexpy_dict_int(&accel, d, "accel") ||
	    atexpy_dict_int(&firmware, d, "firmware") ||
	    atexpy_dict_int(&key, d, "key") ||
	    atexpy_dict_int(&o.boot_timeout_s, d, "boot_timeout") ||
	    atexpy_dict_int(&o.boot_attempts, d, "boot_attempts"))
		goto out;
	host_o = PyDict_GetItemString(d, "host");
	if (host_o && host_o != Py_None) {
		if (atexpy_ssh_options_from(&host, host_o) < 0)
			goto out;
		have_host = true;
		o.host = &host.o;
	}
	o.image = image;
	o.kernel = kernel;
	o.initrd = initrd;
	o.cmdline = cmdline;
	o.qemu_program = program;
	o.user = user;
	o.identity = identity;
	o.workdir = workdir;
	o.qemu_args = (const char *const *)qargs;
	o.accel = (enum atex_vm_accel)accel;
	o.firmware = (enum atex_vm_firmware)firmware;
	o.key = (unsigned int)key;
	ret = made(atex_qemu_provisioner_new(&p, &o), &p);
	if (have_host)
		atexpy_ssh_options_clear(&host);
out:
	free(image);
	free(kernel);
	free(initrd);
	free(cmdline);
	free(program);
	free(user);
	free(identity);
	free(workdir);
	atexpy_strv_free(qargs);
	return ret;
}

static PyObject *py_testingfarm_provisioner(PyObject *self, PyObject *d)
{
	struct atex_testingfarm_provisioner_options o =
		ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT;
	enum {
		URL,
		TOKEN,
		COMPOSE,
		ARCH,
		POOL,
		HW,
		KS,
		VARS,
		SECRETS,
		TAGS,
		IDENTITY,
		CIDR,
		N_STR
	};
	static const char *const keys[N_STR] = {
		"url",	   "token",    "compose",   "arch",
		"pool",	   "hardware", "kickstart", "variables",
		"secrets", "tags",     "identity",  "source_cidr"};
	char *str[N_STR] = {0}, **ssh_opts = NULL;
	atex_provisioner *p = NULL;
	PyObject *ret = NULL;

	(void)self;
	if (!PyDict_Check(d))
		return PyErr_Format(PyExc_TypeError, "expected a dict");
	for (int i = 0; i < N_STR; i++)
		if (atexpy_dict_str(&str[i], d, keys[i]))
			goto out;
	if (dict_strv(&ssh_opts, d, "ssh_options") ||
	    atexpy_dict_int(&o.api.retry_total_s, d, "retry_total") ||
	    atexpy_dict_int(&o.api.max_connections, d, "max_connections") ||
	    atexpy_dict_int(&o.timeout_min, d, "timeout") ||
	    atexpy_dict_int(&o.count, d, "count") ||
	    atexpy_dict_int(&o.max_retries, d, "max_retries") ||
	    atexpy_dict_int(&o.poll_ms, d, "poll_ms") ||
	    dict_bool(&o.skip_guest_setup, d, "skip_guest_setup") ||
	    dict_bool(&o.os_cleaning, d, "os_cleaning"))
		goto out;
	o.api.url = str[URL];
	o.api.token = str[TOKEN];
	o.compose = str[COMPOSE];
	o.arch = str[ARCH];
	o.pool = str[POOL];
	o.hardware = str[HW];
	o.kickstart = str[KS];
	o.variables = str[VARS];
	o.secrets = str[SECRETS];
	o.tags = str[TAGS];
	o.identity = str[IDENTITY];
	o.source_cidr = str[CIDR];
	o.ssh_options = (const char *const *)ssh_opts;
	ret = made(atex_testingfarm_provisioner_new(&p, &o), &p);
out:
	for (int i = 0; i < N_STR; i++)
		free(str[i]);
	atexpy_strv_free(ssh_opts);
	return ret;
}

/* podman_image_build(tag, base, packages, systemd, podman_args) */
struct build_call {
	const char *tag, *base;
	char **packages, **podman_args;
	bool systemd;
	atex_cancel *cancel;
};

static int call_build(void *arg)
{
	struct build_call *b = arg;
	return atex_podman_image_build(
		b->tag, b->base, (const char *const *)b->packages, b->systemd,
		(const char *const *)b->podman_args, b->cancel);
}

static void cancel_build(void *arg)
{
	atex_cancel_fire(((struct build_call *)arg)->cancel);
}

static PyObject *py_image_build(PyObject *self, PyObject *args)
{
	struct build_call b = {0};
	PyObject *pk_o, *pa_o, *ret = NULL;
	int systemd, rc;

	(void)self;
	if (!PyArg_ParseTuple(args, "ssOpO:podman_image_build", &b.tag, &b.base,
			      &pk_o, &systemd, &pa_o))
		return NULL;
	b.systemd = systemd;
	if (!(b.packages = atexpy_strv(pk_o, "extra_pkgs")) ||
	    !(b.podman_args = atexpy_strv(pa_o, "podman_args")))
		goto out;
	if ((rc = atex_cancel_new(&b.cancel)) < 0) {
		atexpy_raise(rc, NULL, NULL);
		goto out;
	}
	if (atexpy_call_raise(call_build, &b, cancel_build, &b, NULL) == 0)
		ret = Py_NewRef(Py_None);
out:
	atex_cancel_free(b.cancel);
	atexpy_strv_free(b.packages);
	atexpy_strv_free(b.podman_args);
	return ret;
}

/* ---- the bridge: a Python provisioner as an atex_provisioner ---- */

struct bremote {
	atex_remote base;
	PyObject *remote;      /* strong: the Python Remote */
	PyObject *prov;	       /* strong: its provisioner (keeps errors) */
	atex_connection *conn; /* atexpy_connection_ptr(remote) */
	char *name;
	struct bremote *next;
};

struct pbridge {
	atex_provisioner base;
	PyObject *obj; /* borrowed; the poller holds a reference */
	char *name;
	int efd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct bremote *head, *tail;
	bool polling, stop_poll, aborted;
	int fail_rc;
	char *fail_msg;
	pthread_t poller;
};

static const struct atex_remote_ops bremote_ops;

/* str(obj), malloc'd, or NULL with the exception set (__str__ raised:
 * the caller keeps that exception, as any other of a bridged call). */
static char *py_name(PyObject *obj)
{
	PyObject *s = PyObject_Str(obj);
	const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
	char *name = u ? strdup(u) : NULL;

	if (u && !name)
		PyErr_NoMemory();
	Py_XDECREF(s);
	return name;
}

/* The pending exception: kept on obj._atex_error (the first one), its
 * text an atex error. GIL held. */
static int bridge_fail(PyObject *obj, const char *name, const char *what)
{
	PyObject *type, *value, *tb, *s = NULL, *kept;
	char msg[512];

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (tb && value)
		PyException_SetTraceback(value, tb);
	if (value)
		s = PyObject_Str(value);
	snprintf(msg, sizeof(msg), "%s: %s: %s: %s", name, what,
		 type ? ((PyTypeObject *)type)->tp_name : "error",
		 s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "?");
	PyErr_Clear();
	kept = PyObject_GetAttrString(obj, "_atex_error");
	PyErr_Clear();
	if ((!kept || kept == Py_None) && value &&
	    PyObject_SetAttrString(obj, "_atex_error", value) < 0)
		PyErr_Clear();
	Py_XDECREF(kept);
	Py_XDECREF(s);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	return atex_error_set_message(ATEX_EIO, msg);
}

/* A failure nobody in C can be told of (release returns nothing): kept
 * on the provisioner as any other, and logged now. GIL held, the
 * exception pending. */
static void bridge_fail_logged(PyObject *obj, const char *name,
			       const char *what)
{
	PyObject *type, *value, *tb, *logging, *logger, *r = NULL;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (tb && value)
		PyException_SetTraceback(value, tb);
	logging = PyImport_ImportModule("logging");
	logger = logging ? PyObject_CallMethod(logging, "getLogger", "s",
					       "atex.provisioner")
			 : NULL;
	if (logger && value) {
		PyObject *kw = Py_BuildValue("{s:O}", "exc_info", value);
		PyObject *fn = PyObject_GetAttrString(logger, "error");
		PyObject *args =
			Py_BuildValue("(sss)", "%s: %s failed", name, what);

		if (kw && fn && args)
			r = PyObject_Call(fn, args, kw);
		Py_XDECREF(kw);
		Py_XDECREF(fn);
		Py_XDECREF(args);
	}
	Py_XDECREF(r);
	Py_XDECREF(logger);
	Py_XDECREF(logging);
	PyErr_Clear(); /* a failing log must not hide the error kept below */
	PyErr_Restore(type, value, tb);
	bridge_fail(obj, name, what);
}

static atex_connection *bremote_connection(atex_remote *r)
{
	return ((struct bremote *)r)->conn;
}

static const char *bremote_name(const atex_remote *r)
{
	return ((const struct bremote *)r)->name;
}

static void bremote_release(atex_remote *r)
{
	struct bremote *br = (struct bremote *)r;
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *res = PyObject_CallMethod(br->remote, "release", NULL);

	if (!res)
		bridge_fail_logged(br->prov, br->name, "release");
	Py_XDECREF(res);
	Py_DECREF(br->remote);
	Py_DECREF(br->prov);
	PyGILState_Release(g);
	free(br->name);
	free(br);
}

static const struct atex_remote_ops bremote_ops = {
	.version = ATEX_REMOTE_OPS_VERSION,
	.connection = bremote_connection,
	.name = bremote_name,
	.release = bremote_release,
};

static void efd_set(struct pbridge *b, bool ready)
{
	uint64_t v = 1;

	if (ready) {
		if (write(b->efd, &v, sizeof(v)) < 0)
			(void)errno;
	} else if (read(b->efd, &v, sizeof(v)) < 0) {
		(void)errno; /* EAGAIN: it was not set */
	}
}

/* The poller fails for good with rc (the atex error set). */
static int poll_failed(struct pbridge *b, int rc)
{
	pthread_mutex_lock(&b->lock);
	b->fail_rc = rc;
	free(b->fail_msg);
	b->fail_msg = strdup(atex_error_last());
	efd_set(b, true); /* wake the orchestrator to see the error */
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return -1;
}

/* One poll: a remote from get_remote(block=False), queued. GIL held.
 * Returns 1 (got one), 0 (none) or -1 (failed for good). */
static int poll_once(struct pbridge *b)
{
	PyObject *r =
		PyObject_CallMethod(b->obj, "get_remote", "(O)", Py_False);
	struct bremote *br;
	atex_connection *c;

	if (!r)
		goto fail;
	if (r == Py_None) {
		Py_DECREF(r);
		return 0;
	}
	if (!(c = atexpy_connection_ptr(r))) {
		Py_DECREF(r);
		goto fail;
	}
	br = calloc(1, sizeof(*br));
	if (!br) {
		Py_DECREF(r);
		PyErr_NoMemory();
		goto fail;
	}
	br->base.ops = &bremote_ops;
	br->remote = r;
	br->prov = Py_NewRef(b->obj);
	br->conn = c;
	br->name = py_name(r);
	if (!br->name) {
		/* A remote C cannot name is of no use: kept as get_remote's
		 * error, and the system given back (its own failure logged). */
		int rc =
			bridge_fail(b->obj, b->name, "get_remote: str(remote)");

		br->name = strdup("remote");
		bremote_release(&br->base);
		return poll_failed(b, rc);
	}
	pthread_mutex_lock(&b->lock);
	if (b->tail)
		b->tail->next = br;
	else
		b->head = br;
	b->tail = br;
	efd_set(b, true);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return 1;
fail:
	return poll_failed(b, bridge_fail(b->obj, b->name, "get_remote"));
}

static void *poller(void *arg)
{
	struct pbridge *b = arg;
	struct timespec ts;
	int got = 0;

	for (;;) {
		pthread_mutex_lock(&b->lock);
		if (!got && !b->stop_poll) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += 100 * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&b->cond, &b->lock, &ts);
		}
		bool stop = b->stop_poll;
		pthread_mutex_unlock(&b->lock);
		if (stop)
			break;
		PyGILState_STATE g = PyGILState_Ensure();
		got = poll_once(b);
		PyGILState_Release(g);
		if (got < 0)
			break;
	}
	return NULL;
}

static void poller_stop(struct pbridge *b)
{
	pthread_mutex_lock(&b->lock);
	bool was = b->polling;
	b->stop_poll = true;
	b->polling = false;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (!was)
		return;
	/* The poller takes the GIL: never join it holding the GIL. */
	if (PyGILState_Check()) {
		Py_BEGIN_ALLOW_THREADS pthread_join(b->poller, NULL);
		Py_END_ALLOW_THREADS
	} else {
		pthread_join(b->poller, NULL);
	}
	PyGILState_STATE g = PyGILState_Ensure();
	Py_DECREF(b->obj); /* the poller's reference */
	PyGILState_Release(g);
}

static int pcall(struct pbridge *b, const char *method, PyObject *arg)
{
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *r = arg ? PyObject_CallMethod(b->obj, method, "(O)", arg)
			  : PyObject_CallMethod(b->obj, method, NULL);
	int rc = 0;

	if (!r)
		rc = bridge_fail(b->obj, b->name, method);
	Py_XDECREF(r);
	PyGILState_Release(g);
	return rc;
}

/* Starts the poller unless it runs. 0 or an error. */
static int poller_start(struct pbridge *b)
{
	bool started = false;
	PyGILState_STATE g;
	int rc = 0;

	/* The poller's reference; taken before the lock (the poller holds
	 * the GIL when it takes the lock: never the other order). */
	g = PyGILState_Ensure();
	Py_INCREF(b->obj);
	PyGILState_Release(g);
	pthread_mutex_lock(&b->lock);
	if (!b->polling) {
		b->stop_poll = false;
		b->aborted = false;
		b->fail_rc = 0;
		started = pthread_create(&b->poller, NULL, poller, b) == 0;
		b->polling = started;
		if (!started)
			rc = atex_error_set_message(ATEX_EIO,
						    "pthread_create failed");
	}
	pthread_mutex_unlock(&b->lock);
	if (!started) {
		g = PyGILState_Ensure();
		Py_DECREF(b->obj);
		PyGILState_Release(g);
	}
	return rc;
}

static int pb_start(atex_provisioner *p)
{
	struct pbridge *b = (struct pbridge *)p;
	int rc = pcall(b, "start", NULL);

	return rc < 0 ? rc : poller_start(b);
}

/* Releases the remotes got from Python but not handed to C yet. */
static void drain(struct pbridge *b)
{
	struct bremote *br;

	pthread_mutex_lock(&b->lock);
	br = b->head;
	b->head = b->tail = NULL;
	efd_set(b, false);
	pthread_mutex_unlock(&b->lock);
	while (br) {
		struct bremote *next = br->next;
		bremote_release(&br->base);
		br = next;
	}
}

static int pb_stop(atex_provisioner *p)
{
	struct pbridge *b = (struct pbridge *)p;

	poller_stop(b);
	drain(b);
	return pcall(b, "stop", NULL);
}

static int pb_provision(atex_provisioner *p, int count)
{
	struct pbridge *b = (struct pbridge *)p;
	PyGILState_STATE g = PyGILState_Ensure();
	/* "Unlimited" is Python ATEX's math.inf. */
	PyObject *n = count < 0 ? PyFloat_FromDouble(Py_HUGE_VAL)
				: PyLong_FromLong(count);
	PyGILState_Release(g);
	int rc = n ? pcall(b, "provision", n) : ATEX_ENOMEM;

	/* A Python provisioner reaches C already started by Python (the
	 * orchestrator takes started ones): the poller starts with the
	 * first request then. */
	if (rc == 0)
		rc = poller_start(b);

	g = PyGILState_Ensure();
	Py_XDECREF(n);
	PyGILState_Release(g);
	return rc;
}

static int pb_get_remote(atex_remote **out, atex_provisioner *p, int timeout_ms)
{
	struct pbridge *b = (struct pbridge *)p;
	struct timespec ts;
	int rc = 0;

	*out = NULL;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ms > 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
	}
	pthread_mutex_lock(&b->lock);
	for (;;) {
		if (b->aborted) {
			rc = atex_error_set_message(ATEX_ECANCELED,
						    "provisioner aborted");
			break;
		}
		if (b->head) {
			*out = &b->head->base;
			b->head = b->head->next;
			if (!b->head) {
				b->tail = NULL;
				efd_set(b, false);
			}
			break;
		}
		if (b->fail_rc) {
			rc = atex_error_set_message(b->fail_rc,
						    b->fail_msg ? b->fail_msg
								: "failed");
			break;
		}
		if (timeout_ms == 0 ||
		    (timeout_ms > 0 &&
		     pthread_cond_timedwait(&b->cond, &b->lock, &ts) ==
			     ETIMEDOUT)) {
			rc = atex_error_set_message(ATEX_ETIMEDOUT,
						    "no remote ready");
			break;
		}
		if (timeout_ms < 0)
			pthread_cond_wait(&b->cond, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

/* Nothing more is wanted: the poller stops (an orchestrator clears at
 * the end of its run, and the Python object's own stop() never reaches
 * the bridge) and remotes it queued are released; provision() starts it
 * again. */
static int pb_clear(atex_provisioner *p)
{
	struct pbridge *b = (struct pbridge *)p;
	int rc = pcall(b, "clear", NULL);

	poller_stop(b);
	drain(b);
	return rc;
}

static void pb_abort(atex_provisioner *p)
{
	struct pbridge *b = (struct pbridge *)p;

	pthread_mutex_lock(&b->lock);
	b->aborted = true;
	b->stop_poll = true;
	efd_set(b, true);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static int pb_ready_fd(const atex_provisioner *p)
{
	return ((const struct pbridge *)p)->efd;
}

static const char *pb_name(const atex_provisioner *p)
{
	return ((const struct pbridge *)p)->name;
}

static void pb_free(atex_provisioner *p)
{
	struct pbridge *b = (struct pbridge *)p;

	poller_stop(b);
	drain(b);
	close(b->efd);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b->fail_msg);
	free(b->name);
	free(b);
}

static const struct atex_provisioner_ops pbridge_ops = {
	.version = ATEX_PROVISIONER_OPS_VERSION,
	.start = pb_start,
	.stop = pb_stop,
	.provision = pb_provision,
	.get_remote = pb_get_remote,
	.clear = pb_clear,
	.abort = pb_abort,
	.ready_fd = pb_ready_fd,
	.name = pb_name,
	.free = pb_free,
};

static void pcapsule_free(PyObject *cap)
{
	atex_provisioner *p = PyCapsule_GetPointer(cap, "atex.provisioner");

	if (p)
		atex_provisioner_free(p);
}

static atex_provisioner *pbridge_of(PyObject *obj)
{
	PyObject *cap = PyObject_GetAttrString(obj, "_atex_bridge");
	pthread_condattr_t attr;
	struct pbridge *b;

	if (cap && PyCapsule_CheckExact(cap)) {
		atex_provisioner *p =
			PyCapsule_GetPointer(cap, "atex.provisioner");
		Py_DECREF(cap);
		return p;
	}
	Py_XDECREF(cap);
	PyErr_Clear();
	b = calloc(1, sizeof(*b));
	if (!b)
		return (atex_provisioner *)PyErr_NoMemory();
	b->base.ops = &pbridge_ops;
	b->obj = obj;
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	b->name = py_name(obj);
	if (!b->name) {
		free(b);
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (b->efd < 0) {
		pb_free(&b->base);
		return (atex_provisioner *)PyErr_SetFromErrno(PyExc_OSError);
	}
	cap = PyCapsule_New(b, "atex.provisioner", pcapsule_free);
	if (!cap) {
		pb_free(&b->base);
		return NULL;
	}
	if (PyObject_SetAttrString(obj, "_atex_bridge", cap) < 0) {
		Py_DECREF(cap);
		return NULL;
	}
	Py_DECREF(cap);
	return &b->base;
}

atex_provisioner *atexpy_provisioner_ptr(PyObject *provisioner)
{
	PyObject *h = PyObject_CallMethod(provisioner, "_atex_handle", NULL);
	atex_provisioner *p;

	if (!h) {
		if (!PyErr_ExceptionMatches(PyExc_AttributeError))
			return NULL;
		PyErr_Clear();
		PyErr_Format(PyExc_TypeError,
			     "%R is not an atex.provisioner.Provisioner",
			     provisioner);
		return NULL;
	}
	if (h == Py_None) {
		Py_DECREF(h);
		return pbridge_of(provisioner);
	}
	if (!PyObject_TypeCheck(h, &ProvHandleType)) {
		Py_DECREF(h);
		PyErr_SetString(PyExc_TypeError, "_atex_handle: not a handle");
		return NULL;
	}
	p = ((ProvHandle *)h)->p;
	Py_DECREF(h); /* the object keeps its handle */
	return p;
}

PyObject *atexpy_remote_wrap(atex_remote *r, PyObject *provisioner)
{
	PyObject *h, *ret;

	if (!r) {
		PyErr_SetString(PyExc_ValueError, "no remote");
		return NULL;
	}
	if (r->ops == &bremote_ops)
		return Py_NewRef(((struct bremote *)r)->remote);
	h = remote_handle_new(r, NULL);
	if (!h)
		return NULL;
	ret = PyObject_CallMethod(provisioner, "_atex_wrap_remote", "(O)", h);
	if (!ret && PyErr_ExceptionMatches(PyExc_AttributeError)) {
		PyObject *mod = PyImport_ImportModule("atex.provisioner");
		PyErr_Clear();
		if (mod) {
			ret = PyObject_CallMethod(mod, "_wrap_remote", "(O)",
						  h);
			Py_DECREF(mod);
		}
	}
	Py_DECREF(h);
	return ret;
}

void atexpy_remote_unwrap(PyObject *wrapped)
{
	PyObject *h;

	if (!wrapped)
		return;
	h = PyObject_GetAttrString(wrapped, "_rhandle");
	if (h && PyObject_TypeCheck(h, &RemoteHandleType) &&
	    !((RemoteHandle *)h)->prov)
		((RemoteHandle *)h)->r = NULL; /* C releases it, not us */
	else
		PyErr_Clear();
	Py_XDECREF(h);
}

/* _provisioner_selftest(provisioner, timeout_ms, count=1): what the C
 * orchestrator does: start, provision, get_remote, run `echo` through
 * the remote's connection, wrap it, release it, stop. Returns
 * (remote name, output, wrapped Remote). */
struct selftest {
	atex_provisioner *p;
	atex_cancel *cancel;
	int timeout_ms, count;
	atex_remote *r;
	struct atex_run_result res;
	int step;
};

static int selftest_get(void *arg)
{
	struct selftest *t = arg;
	const char *argv[] = {"echo", "hello from C", NULL};
	int rc;

	if (t->step == 0) {
		rc = atex_provisioner_start(t->p);
		if (!rc)
			rc = atex_provisioner_provision(t->p, t->count);
		if (!rc)
			rc = atex_provisioner_get_remote(&t->r, t->p,
							 t->timeout_ms);
		if (!rc)
			rc = atex_connection_run(
				&t->res, atex_remote_connection(t->r), argv,
				NULL, 0, 30000, t->cancel);
		return rc;
	}
	atex_remote_release(t->r);
	return atex_provisioner_stop(t->p);
}

/* Ctrl-C: as the orchestrator, abort the provisioner (a waiting
 * get_remote returns) and cancel the command. */
static void selftest_cancel(void *arg)
{
	struct selftest *t = arg;

	atex_provisioner_abort(t->p);
	atex_cancel_fire(t->cancel);
}

/* The exception a bridged call kept on obj during the selftest (one that
 * C could not be told of: a Remote's release()), raised. */
static int selftest_kept(PyObject *obj, PyObject *before)
{
	PyObject *kept = PyObject_GetAttrString(obj, "_atex_error");

	if (!kept) {
		PyErr_Clear();
		return 0;
	}
	if (kept != before && PyExceptionInstance_Check(kept)) {
		PyErr_SetObject((PyObject *)Py_TYPE(kept), kept);
		Py_DECREF(kept);
		return -1;
	}
	Py_DECREF(kept);
	return 0;
}

static PyObject *py_selftest(PyObject *self, PyObject *args)
{
	struct selftest t = {0};
	PyObject *prov, *wrapped = NULL, *ret = NULL, *before;
	int pollable, rc;

	(void)self;
	t.count = 1;
	if (!PyArg_ParseTuple(args, "Oi|i", &prov, &t.timeout_ms, &t.count))
		return NULL;
	if (!(t.p = atexpy_provisioner_ptr(prov)))
		return NULL;
	if ((rc = atex_cancel_new(&t.cancel)) < 0)
		return atexpy_raise(rc, NULL, NULL);
	before = PyObject_GetAttrString(prov, "_atex_error");
	PyErr_Clear();
	pollable = atex_provisioner_ready_fd(t.p) >= 0;
	if (atexpy_call_raise(selftest_get, &t, selftest_cancel, &t, NULL) <
	    0) {
		/* Not left half done: what C got goes back. */
		PyObject *type, *value, *tb;

		PyErr_Fetch(&type, &value, &tb);
		t.step = 1;
		Py_BEGIN_ALLOW_THREADS if (t.r) atex_remote_release(t.r);
		atex_provisioner_stop(t.p);
		Py_END_ALLOW_THREADS PyErr_Restore(type, value, tb);
		goto out;
	}
	wrapped = atexpy_remote_wrap(t.r, prov);
	if (wrapped)
		ret = Py_BuildValue("sy#Oi", atex_remote_name(t.r), t.res.out,
				    (Py_ssize_t)t.res.out_len, wrapped,
				    pollable);
	/* The orchestrator's Remote must not outlive the release below. */
	atexpy_remote_unwrap(wrapped);
	t.step = 1;
	if (atexpy_call_raise(selftest_get, &t, NULL, NULL, NULL) < 0 ||
	    selftest_kept(prov, before) < 0)
		Py_CLEAR(ret);
out:
	Py_XDECREF(before);
	Py_XDECREF(wrapped);
	atex_run_result_clear(&t.res);
	atex_cancel_free(t.cancel);
	return ret;
}

static PyMethodDef prov_functions[] = {
	{"LocalProvisioner", (PyCFunction)py_local_provisioner, METH_VARARGS,
	 "LocalProvisioner(slots) -> ProvisionerHandle"},
	{"PodmanProvisioner", (PyCFunction)py_podman_provisioner, METH_O,
	 "PodmanProvisioner(dict) -> ProvisionerHandle"},
	{"StaticProvisioner", (PyCFunction)py_static_provisioner, METH_VARARGS,
	 "StaticProvisioner(hosts, ssh options dict) -> ProvisionerHandle"},
	{"QemuProvisioner", (PyCFunction)py_qemu_provisioner, METH_O,
	 "QemuProvisioner(dict) -> ProvisionerHandle"},
	{"TestingFarmProvisioner", (PyCFunction)py_testingfarm_provisioner,
	 METH_O, "TestingFarmProvisioner(dict) -> ProvisionerHandle"},
	{"podman_image_build", (PyCFunction)py_image_build, METH_VARARGS,
	 "podman_image_build(tag, base, packages, systemd, podman_args)"},
	{"_provisioner_selftest", (PyCFunction)py_selftest, METH_VARARGS,
	 "Drive a provisioner from C like the orchestrator (tests)."},
	{NULL, NULL, 0, NULL},
};

int atexpy_init_provisioner(PyObject *module)
{
	if (PyType_Ready(&ProvHandleType) < 0 ||
	    PyType_Ready(&RemoteHandleType) < 0)
		return -1;
	if (PyModule_AddObjectRef(module, "ProvisionerHandle",
				  (PyObject *)&ProvHandleType) < 0 ||
	    PyModule_AddObjectRef(module, "RemoteHandle",
				  (PyObject *)&RemoteHandleType) < 0)
		return -1;
	return PyModule_AddFunctions(module, prov_functions);
}
