/*
 * test_provisioner.c - the provisioner contract checked on the local
 * provisioner (request/ready/release accounting, timeouts, ready_fd, abort
 * from another thread, stop), the generic calls' argument checks, and the
 * static provisioner's host entry parser. Connecting static hosts needs an
 * sshd and is left to the ssh suite.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"

#include "atex/provisioner.h"
#include "provisioner/static.h"
#include "util/util.h"

/* Whether fd is readable right now. */
static bool readable(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static atex_provisioner *started_local(int slots)
{
	atex_provisioner *p = NULL;

	assert_int_equal(atex_local_provisioner_new(&p, slots), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	return p;
}

static void expect_none(atex_provisioner *p)
{
	atex_remote *r = (atex_remote *)1;

	assert_int_equal(atex_provisioner_get_remote(&r, p, 0), ATEX_ETIMEDOUT);
	assert_null(r);
}

static void test_cycle(void **state)
{
	atex_provisioner *p = started_local(1);
	atex_remote *r = NULL;

	assert_string_equal(atex_provisioner_name(p), "local");
	for (int round = 0; round < 3; round++) {
		assert_int_equal(atex_provisioner_provision(p, 1), 0);
		assert_int_equal(atex_provisioner_get_remote(&r, p, 1000), 0);
		assert_non_null(atex_remote_connection(r));
		assert_string_equal(atex_remote_name(r), "local:1");
		expect_none(p);
		atex_remote_release(r);
		/* One request, one remote: nothing comes back by itself. */
		expect_none(p);
	}
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

/* A remote's connection runs commands on this machine. */
static void test_remote_runs(void **state)
{
	atex_provisioner *p = started_local(1);
	const char *argv[] = {"sh", "-c", "echo hi", NULL};
	struct atex_run_result res = {0};
	atex_remote *r = NULL;
	int rc;

	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 0), 0);
	rc = atex_connection_run(&res, atex_remote_connection(r), argv, NULL, 0,
				 10000, NULL);
	atex_remote_release(r);
	atex_provisioner_free(p);
	assert_int_equal(rc, 0);
	assert_true(WIFEXITED(res.status));
	assert_int_equal(WEXITSTATUS(res.status), 0);
	assert_string_equal(res.out, "hi\n");
	atex_run_result_clear(&res);
}

static void test_slots_limit(void **state)
{
	atex_provisioner *p = started_local(2);
	atex_remote *r[2] = {NULL, NULL}, *x = NULL;

	/* Five wanted, two slots: two now, the rest as slots come back. */
	assert_int_equal(atex_provisioner_provision(p, 5), 0);
	assert_int_equal(atex_provisioner_get_remote(&r[0], p, 0), 0);
	assert_int_equal(atex_provisioner_get_remote(&r[1], p, 0), 0);
	assert_ptr_not_equal(r[0], r[1]);
	expect_none(p);
	for (int i = 0; i < 3; i++) {
		atex_remote_release(r[i % 2]);
		assert_int_equal(atex_provisioner_get_remote(&x, p, 0), 0);
		assert_ptr_equal(x, r[i % 2]);
		expect_none(p);
	}
	/* All five handed out: releasing now only frees the slot. */
	atex_remote_release(r[0]);
	atex_remote_release(r[1]);
	expect_none(p);
	atex_provisioner_free(p);
}

static void test_unlimited_and_clear(void **state)
{
	atex_provisioner *p = started_local(3);
	atex_remote *r[3];

	assert_int_equal(
		atex_provisioner_provision(p, ATEX_PROVISION_UNLIMITED), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(atex_provisioner_get_remote(&r[i], p, 0), 0);
	expect_none(p);
	atex_remote_release(r[0]);
	assert_int_equal(atex_provisioner_get_remote(&r[0], p, 0), 0);
	assert_int_equal(atex_provisioner_clear(p), 0);
	for (int i = 0; i < 3; i++)
		atex_remote_release(r[i]);
	expect_none(p);
	atex_provisioner_free(p);
}

static void test_timeout(void **state)
{
	atex_provisioner *p = started_local(1);
	atex_remote *r = NULL;
	double start = atex_monotonic_ms(), took;

	assert_int_equal(atex_provisioner_get_remote(&r, p, 150),
			 ATEX_ETIMEDOUT);
	took = atex_monotonic_ms() - start;
	assert_null(r);
	assert_true(took >= 140 && took < 1000);
	assert_non_null(strstr(atex_error_last(), "local"));
	atex_provisioner_free(p);
}

static void test_ready_fd(void **state)
{
	atex_provisioner *p = started_local(2);
	int fd = atex_provisioner_ready_fd(p);
	atex_remote *a = NULL, *b = NULL;

	assert_true(fd >= 0);
	assert_false(readable(fd));
	assert_int_equal(atex_provisioner_provision(p, 2), 0);
	assert_true(readable(fd));
	assert_int_equal(atex_provisioner_get_remote(&a, p, 0), 0);
	assert_true(readable(fd));
	assert_int_equal(atex_provisioner_get_remote(&b, p, 0), 0);
	assert_false(readable(fd));
	atex_remote_release(a);
	assert_false(readable(fd));
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_true(readable(fd));
	atex_remote_release(b);
	atex_provisioner_free(p);
}

struct later {
	atex_provisioner *p;
	int delay_ms;
	double fired_at;
	int count; /* provision this many instead of aborting when > 0 */
};

static void *abort_later(void *arg)
{
	struct later *l = arg;
	struct timespec ts = {0, (long)l->delay_ms * 1000000L};

	nanosleep(&ts, NULL);
	l->fired_at = atex_monotonic_ms();
	if (l->count > 0)
		atex_provisioner_provision(l->p, l->count);
	else
		atex_provisioner_abort(l->p);
	return NULL;
}

static void test_abort_from_thread(void **state)
{
	atex_provisioner *p = started_local(1);
	struct later l = {.p = p, .delay_ms = 100};
	atex_remote *r = NULL;
	pthread_t t;
	double took;

	assert_int_equal(pthread_create(&t, NULL, abort_later, &l), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, -1),
			 ATEX_ECANCELED);
	took = atex_monotonic_ms() - l.fired_at;
	pthread_join(t, NULL);
	assert_null(r);
	assert_true(took < 100);
	/* Aborted stays aborted until the next start. */
	assert_int_equal(atex_provisioner_provision(p, 1), ATEX_ECANCELED);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 0), ATEX_ECANCELED);
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 0), 0);
	atex_remote_release(r);
	atex_provisioner_free(p);
}

struct waiter {
	atex_provisioner *p;
	atex_remote *r;
	int rc;
};

static void *wait_remote(void *arg)
{
	struct waiter *w = arg;

	w->rc = atex_provisioner_get_remote(&w->r, w->p, 5000);
	return NULL;
}

static void test_many_waiters(void **state)
{
	atex_provisioner *p = started_local(3);
	struct waiter w[3];
	pthread_t t[3];

	for (int i = 0; i < 3; i++) {
		w[i] = (struct waiter){.p = p};
		assert_int_equal(
			pthread_create(&t[i], NULL, wait_remote, &w[i]), 0);
	}
	assert_int_equal(atex_provisioner_provision(p, 3), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, 0);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(w[i].r, w[j].r);
	}
	for (int i = 0; i < 3; i++)
		atex_remote_release(w[i].r);
	atex_provisioner_free(p);
}

static void test_stop_releases(void **state)
{
	atex_provisioner *p = started_local(2);
	int fd = atex_provisioner_ready_fd(p);
	atex_remote *out = NULL, *r[2];

	assert_int_equal(atex_provisioner_provision(p, 5), 0);
	assert_int_equal(atex_provisioner_get_remote(&out, p, 0), 0);
	assert_true(readable(fd));
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_false(readable(fd));
	assert_int_equal(atex_provisioner_get_remote(&r[0], p, 0), ATEX_EINVAL);
	assert_int_equal(atex_provisioner_provision(p, 1), ATEX_EINVAL);
	/* A release after stop gives nothing back twice. */
	atex_remote_release(out);
	/* Both slots are free again, and old requests are gone. */
	assert_int_equal(atex_provisioner_start(p), 0);
	expect_none(p);
	assert_int_equal(atex_provisioner_provision(p, 2), 0);
	assert_int_equal(atex_provisioner_get_remote(&r[0], p, 0), 0);
	assert_int_equal(atex_provisioner_get_remote(&r[1], p, 0), 0);
	expect_none(p);
	/* free stops too, with remotes still out. */
	atex_provisioner_free(p);
}

/* A user's own provisioner compiled against a future header. */
static int no_get(atex_remote **out, atex_provisioner *p, int timeout_ms)
{
	return 0;
}

static void test_generic_checks(void **state)
{
	static const struct atex_provisioner_ops future = {
		.version = ATEX_PROVISIONER_OPS_VERSION + 1,
		.get_remote = no_get,
	};
	atex_provisioner bad = {.ops = &future};
	atex_provisioner *p = NULL;
	atex_remote *r = NULL;

	assert_int_equal(atex_local_provisioner_new(&p, 0), ATEX_EINVAL);
	assert_int_equal(atex_provisioner_start(NULL), ATEX_EINVAL);
	assert_int_equal(atex_provisioner_get_remote(&r, &bad, 0), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "version"));
	assert_int_equal(atex_provisioner_ready_fd(NULL), -1);
	/* Option structs of an unknown version are refused, not read. */
	{
		struct atex_ssh_options so = ATEX_SSH_OPTIONS_INIT;
		struct atex_podman_options po = ATEX_PODMAN_OPTIONS_INIT;
		struct atex_podman_provisioner_options pp =
			ATEX_PODMAN_PROVISIONER_OPTIONS_INIT;
		atex_connection *c = NULL;

		so.host = "h";
		so.version = 99;
		assert_int_equal(atex_ssh_connection_new(&c, &so), ATEX_EINVAL);
		assert_non_null(strstr(atex_error_last(), "version 99"));
		po.container = "c";
		po.version = 99;
		assert_int_equal(atex_podman_connection_new(&c, &po),
				 ATEX_EINVAL);
		pp.image = "i";
		pp.version = 0;
		assert_int_equal(atex_podman_provisioner_new(&p, &pp),
				 ATEX_EINVAL);
		assert_non_null(strstr(atex_error_last(), "version 0"));
		assert_null(c);
	}
	atex_provisioner_free(NULL);
	atex_remote_release(NULL);
	assert_null(atex_remote_connection(NULL));

	assert_int_equal(atex_local_provisioner_new(&p, 1), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), ATEX_EINVAL);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 0), ATEX_EINVAL);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, -5), ATEX_EINVAL);
	assert_int_equal(atex_provisioner_get_remote(NULL, p, 0), ATEX_EINVAL);
	atex_provisioner_free(p);
}

static void expect_host(const char *entry, const char *user, const char *host,
			int port)
{
	struct atex_static_host h = {0};

	assert_int_equal(atex_static_host_parse(&h, entry), 0);
	if (user)
		assert_string_equal(h.user, user);
	else
		assert_null(h.user);
	assert_string_equal(h.host, host);
	assert_int_equal(h.port, port);
	atex_static_host_clear(&h);
}

static void test_host_parse(void **state)
{
	static const char *const bad[] = {
		"",	   "@host",	 "user@",    "host:",
		"host:0",  "host:65536", "host:22x", "host:-1",
		"::1",	   "fe80::1:22", "[::1",     "[]:22",
		"[::1]22", "[::1]:",	 "a@b@c",    "-oProxyCommand=x",
		"-l@host", "host name",	 "user@:22", "host:22:33",
	};

	expect_host("host", NULL, "host", 0);
	expect_host("root@10.0.0.5", "root", "10.0.0.5", 0);
	expect_host("host.example.com:2222", NULL, "host.example.com", 2222);
	expect_host("u@h:1", "u", "h", 1);
	expect_host("[::1]", NULL, "::1", 0);
	expect_host("[::1]:22", NULL, "::1", 22);
	expect_host("root@[fe80::1%eth0]:65535", "root", "fe80::1%eth0", 65535);
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(bad); i++) {
		struct atex_static_host h = {0};

		assert_int_equal(atex_static_host_parse(&h, bad[i]),
				 ATEX_EINVAL);
		assert_null(h.host);
		if (*bad[i])
			assert_non_null(strstr(atex_error_last(), bad[i]));
	}
}

static void test_static_new(void **state)
{
	const char *const hosts[] = {"root@localhost:2222", "[::1]", NULL};
	const char *const bad[] = {"good", "bad:port", NULL};
	const char *const none[] = {NULL};
	struct atex_ssh_options base = ATEX_SSH_OPTIONS_INIT;
	atex_provisioner *p = NULL;

	assert_int_equal(atex_static_provisioner_new(&p, bad, &base),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "bad:port"));
	assert_int_equal(atex_static_provisioner_new(&p, none, &base),
			 ATEX_EINVAL);
	assert_int_equal(atex_static_provisioner_new(&p, hosts, &base), 0);
	assert_string_equal(atex_provisioner_name(p), "static");
	assert_int_equal(atex_provisioner_provision(p, 1), ATEX_EINVAL);
	atex_provisioner_free(p);
}

/* Hosts, users, ports, images and containers are checked when the
 * object is made, with the value named: nothing that looks like an
 * option reaches ssh or podman, no shell metacharacter reaches a
 * connect attempt. */
static void test_address_checks(void **state)
{
	static const char *const bad_hosts[] = {
		"-oProxyCommand=x",
		"a;b",
		"h$(id)",
		"h`id`",
		"a b",
		"h|x",
		"h>f",
		"h\nx",
		"h'q",
		"h/x",
		"h@x",
		"",
	};
	static const char *const good_hosts[] = {
		"host", "host.example.com", "10.0.0.5",
		"::1",	"fe80::1%eth0",	    "my_host-2",
	};
	static const char *const bad_users[] = {"-l",  "a;b",	"r t",
						"u@h", "$(id)", ""};
	static const char *const bad_images[] = {
		"--privileged", "-v",	 "a b", "img\n", "",   "img;rm",
		"i$(id)",	"i`id`", "i|x", "i>x",	 "i&", "i\\x",
	};
	struct atex_ssh_options so = ATEX_SSH_OPTIONS_INIT;
	struct atex_podman_options po = ATEX_PODMAN_OPTIONS_INIT;
	struct atex_podman_provisioner_options pp =
		ATEX_PODMAN_PROVISIONER_OPTIONS_INIT;
	const char *const pool[] = {"root@good", "root@a;b", NULL};
	atex_connection *c = NULL;
	atex_provisioner *p = NULL;

	(void)state;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(bad_hosts); i++) {
		so.host = bad_hosts[i];
		assert_int_equal(atex_ssh_connection_new(&c, &so), ATEX_EINVAL);
		assert_null(c);
		if (*bad_hosts[i])
			assert_non_null(
				strstr(atex_error_last(), bad_hosts[i]));
	}
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(good_hosts); i++) {
		so.host = good_hosts[i];
		so.user = "root";
		so.port = 65535;
		assert_int_equal(atex_ssh_connection_new(&c, &so), 0);
		atex_connection_free(c);
		c = NULL;
	}
	so.host = "h";
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(bad_users); i++) {
		so.user = bad_users[i];
		assert_int_equal(atex_ssh_connection_new(&c, &so), ATEX_EINVAL);
		assert_non_null(strstr(atex_error_last(), "invalid user"));
	}
	so.user = "machine$";
	so.port = 65536;
	assert_int_equal(atex_ssh_connection_new(&c, &so), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "65536"));
	so.port = -1;
	assert_int_equal(atex_ssh_connection_new(&c, &so), ATEX_EINVAL);
	assert_null(c);

	/* The pool names the bad entry before any host is tried. */
	assert_int_equal(atex_static_provisioner_new(&p, pool, NULL),
			 ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "a;b"));
	assert_null(p);

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(bad_images); i++) {
		pp.image = bad_images[i];
		assert_int_equal(atex_podman_provisioner_new(&p, &pp),
				 ATEX_EINVAL);
		assert_null(p);
	}
	pp.image = "--privileged";
	assert_int_equal(atex_podman_provisioner_new(&p, &pp), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "\"--privileged\""));
	pp.image = "docker://quay.io/x/y:1@sha256:ab";
	assert_int_equal(atex_podman_provisioner_new(&p, &pp), 0);
	atex_provisioner_free(p);
	po.container = "--privileged";
	assert_int_equal(atex_podman_connection_new(&c, &po), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "--privileged"));
	assert_null(c);
}

/* A program built against version 1 of the ssh options (no
 * strict_host_keys) still makes a pool: only version 1's fields are
 * read. */
static void test_static_old_options(void **state)
{
	const char *const hosts[] = {"root@localhost", NULL};
	struct atex_ssh_options base = ATEX_SSH_OPTIONS_INIT;
	atex_provisioner *p = NULL;

	(void)state;
	base.version = 1;
	assert_int_equal(atex_static_provisioner_new(&p, hosts, &base), 0);
	atex_provisioner_free(p);
	base.version = ATEX_SSH_OPTIONS_VERSION + 1;
	assert_int_equal(atex_static_provisioner_new(&p, hosts, &base),
			 ATEX_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_remote_runs),
		cmocka_unit_test(test_slots_limit),
		cmocka_unit_test(test_unlimited_and_clear),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_ready_fd),
		cmocka_unit_test(test_abort_from_thread),
		cmocka_unit_test(test_many_waiters),
		cmocka_unit_test(test_stop_releases),
		cmocka_unit_test(test_generic_checks),
		cmocka_unit_test(test_host_parse),
		cmocka_unit_test(test_static_new),
		cmocka_unit_test(test_address_checks),
		cmocka_unit_test(test_static_old_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
