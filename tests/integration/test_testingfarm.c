/*
 * test_testingfarm.c - the Testing Farm provisioner end to end against
 * the fake API of tests/integration/tf-server.py (real HTTP on
 * 127.0.0.1, a real sshd as every request's guest, faults on demand):
 * machines provisioned and used over ssh, release/stop/abort cancel
 * their requests, outages ridden out, failed reservations replaced and
 * counted, the public-ranch ingress rule, the token kept out of logs and
 * messages.
 *
 * Each test starts its own server (fresh requests and faults; the fast
 * profile at half its delays: a request is ready in ~3 s; $ATEX_TF_SCALE
 * sets another factor, make check's ASan run uses a faster pace). The
 * path of the server comes from $ATEX_TF_SERVER (tests/meson.build).
 * Needs root (the server's sshd) like the ssh suite.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/connection.h"
#include "atex/provisioner.h"
#include "provisioner/testingfarm_private.h"
#include "util/http.h"
#include "util/util.h"

#define TOKEN	"atex-Secret-T0ken-4242"
#define POLL_MS 200

struct fixture {
	char dir[64];
	char url[128];
	char port_opt[32]; /* "Port=N" */
	pid_t pid;
};

static struct fixture fx;

/* Every log line, at debug level, to look for the token. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct atex_buf logs;

static void log_handler(int level, const char *component, const char *msg,
			void *data)
{
	(void)data;
	pthread_mutex_lock(&log_lock);
	atex_buf_printf(&logs, "%d %s: %s\n", level, component, msg);
	pthread_mutex_unlock(&log_lock);
	if (getenv("TF_TEST_VERBOSE"))
		fprintf(stderr, "[%s] %s\n", component, msg);
}

/* Whether one log line holds both a and b. */
static bool log_line_has(const char *a, const char *b)
{
	bool found = false;
	const char *p, *start, *end;

	pthread_mutex_lock(&log_lock);
	for (p = atex_buf_cstr(&logs); !found && (p = strstr(p, a)); p++) {
		for (start = p;
		     start > atex_buf_cstr(&logs) && start[-1] != '\n'; start--)
			;
		end = strchr(p, '\n');
		found = memmem(start, (size_t)(end - start), b, strlen(b));
	}
	pthread_mutex_unlock(&log_lock);
	return found;
}

static bool logs_contain(const char *s)
{
	bool found;

	pthread_mutex_lock(&log_lock);
	found = strstr(atex_buf_cstr(&logs), s) != NULL;
	pthread_mutex_unlock(&log_lock);
	return found;
}

/* ------------------------------------------------------------------------
 * The server.
 */

static bool read_small(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(out, 1, size - 1, f);
	fclose(f);
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	return n > 0;
}

static void server_start(const char *ranch)
{
	const char *script = getenv("ATEX_TF_SERVER");
	const char *scale = getenv("ATEX_TF_SCALE");
	char path[128], port[16];
	double end;

	assert_non_null(script);
	if (!scale || !*scale)
		scale = "0.5";
	strcpy(fx.dir, "/tmp/atex-tf-test-XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	fx.pid = fork();
	assert_true(fx.pid >= 0);
	if (fx.pid == 0) {
		execl("/usr/bin/python3", "python3", script, "--dir", fx.dir,
		      "--token", TOKEN, "--ranch", ranch, "--scale", scale,
		      (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/url", fx.dir);
	end = atex_monotonic_ms() + 20000;
	while (!read_small(path, fx.url, sizeof(fx.url))) {
		int st;

		if (waitpid(fx.pid, &st, WNOHANG) == fx.pid)
			fail_msg("tf-server.py exited (status %d)", st);
		if (atex_monotonic_ms() > end)
			fail_msg("tf-server.py did not come up in 20 s");
		usleep(50000);
	}
	snprintf(path, sizeof(path), "%s/ssh-port", fx.dir);
	assert_true(read_small(path, port, sizeof(port)));
	snprintf(fx.port_opt, sizeof(fx.port_opt), "Port=%s", port);
}

static int setup_public(void **state)
{
	(void)state;
	server_start("public");
	return 0;
}

static int setup_redhat(void **state)
{
	(void)state;
	server_start("redhat");
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];
	int st;

	(void)state;
	if (fx.pid > 0) {
		kill(fx.pid, SIGTERM);
		waitpid(fx.pid, &st, 0);
		fx.pid = 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx.dir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

/* A control API call; the reply's body (caller frees). */
static char *ctl(const char *method, const char *path, const char *body)
{
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http_result res = {0};
	char url[256];
	char *out;

	snprintf(url, sizeof(url), "%s%s", fx.url, path);
	r.method = method;
	r.url = url;
	r.body = body;
	r.retry = false;
	if (atex_http_call(&res, &r, NULL) != 0)
		fail_msg("%s %s: %s", method, path, atex_error_last());
	if (res.status != 200)
		fail_msg("%s %s: HTTP %ld: %s", method, path, res.status,
			 res.body);
	out = res.body;
	res.body = NULL;
	atex_http_result_clear(&res);
	return out;
}

static void fault(const char *json)
{
	free(ctl("POST", "/_control/faults", json));
}

static void request_fault(const char *json)
{
	free(ctl("POST", "/_control/request-faults", json));
}

static json_t *requests(void)
{
	char *text = ctl("GET", "/_control/requests", NULL);
	json_t *v = json_loads(text, 0, NULL);

	assert_true(json_is_array(v));
	free(text);
	return v;
}

static const char *rq_state(json_t *rq)
{
	return json_string_value(json_object_get(rq, "state"));
}

static bool state_alive(const char *s)
{
	return !strcmp(s, "new") || !strcmp(s, "queued") ||
	       !strcmp(s, "running");
}

/* How many requests the service has in new/queued/running. */
static int alive_count(void)
{
	json_t *v = requests(), *rq;
	size_t i;
	int n = 0;

	json_array_foreach(v, i, rq) n += state_alive(rq_state(rq));
	json_decref(v);
	return n;
}

/* The request of that id (new reference). */
static json_t *request_by_id(const char *id)
{
	json_t *v = requests(), *rq, *found = NULL;
	size_t i;

	json_array_foreach(v, i, rq)
	{
		if (!strcmp(json_string_value(json_object_get(rq, "id")), id))
			found = json_incref(rq);
	}
	json_decref(v);
	assert_non_null(found);
	return found;
}

static bool canceled(json_t *rq)
{
	const char *s = rq_state(rq);

	return !strcmp(s, "cancel-requested") || !strcmp(s, "canceled");
}

/* ------------------------------------------------------------------------
 * The provisioner.
 */

static const char *ssh_opts[2];

static void options(struct atex_testingfarm_provisioner_options *o)
{
	struct atex_testingfarm_provisioner_options init =
		ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT;

	*o = init;
	o->api.url = fx.url;
	o->api.token = TOKEN;
	o->compose = "Fedora-41";
	o->source_cidr = "127.0.0.1/32";
	o->poll_ms = POLL_MS;
	o->timeout_min = 30;
	ssh_opts[0] = fx.port_opt;
	ssh_opts[1] = NULL;
	o->ssh_options = ssh_opts;
}

static atex_provisioner *started(struct atex_testingfarm_provisioner_options *o)
{
	atex_provisioner *p = NULL;

	assert_int_equal(atex_testingfarm_provisioner_new(&p, o), 0);
	if (atex_provisioner_start(p) != 0)
		fail_msg("start: %s", atex_error_last());
	return p;
}

static atex_remote *get(atex_provisioner *p, int timeout_ms)
{
	atex_remote *r = NULL;

	if (atex_provisioner_get_remote(&r, p, timeout_ms) != 0)
		fail_msg("get_remote: %s", atex_error_last());
	return r;
}

static void run_on(atex_remote *r, const char *word)
{
	const char *argv[] = {"echo", word, NULL};
	struct atex_run_result res = {0};

	if (atex_connection_run(&res, atex_remote_connection(r), argv, NULL, 0,
				30000, NULL) != 0)
		fail_msg("%s: %s", atex_remote_name(r), atex_error_last());
	assert_int_equal(WEXITSTATUS(res.status), 0);
	assert_non_null(strstr(res.out, word));
	atex_run_result_clear(&res);
}

static void stats(atex_provisioner *p, struct atex_testingfarm_stats *s)
{
	assert_int_equal(atex_testingfarm_provisioner_stats(s, p), 0);
}

/* Neither the logs nor the last error message hold the token. */
static void no_token_anywhere(void)
{
	assert_false(logs_contain(TOKEN));
	assert_null(strstr(atex_error_last(), TOKEN));
}

/* ------------------------------------------------------------------------
 * Tests.
 */

/* 4 remotes at once, each running a command; the ingress rule in every
 * POST; release cancels exactly its request; stop cancels the rest. */
static void test_four_remotes(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	struct atex_testingfarm_stats s;
	struct atex_testingfarm_login login;
	atex_remote *r[4];
	atex_provisioner *p;
	json_t *v, *rq, *rule;
	char id0[64];
	size_t i;

	(void)state;
	options(&o);
	o.count = 4;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 4), 0);
	for (i = 0; i < 4; i++) {
		r[i] = get(p, 40000);
		run_on(r[i], "hello");
		assert_non_null(strstr(atex_remote_name(r[i]), "tf:"));
		assert_non_null(
			strstr(atex_remote_name(r[i]), "root@127.0.0.1"));
	}
	assert_int_equal(atex_testingfarm_remote_login(&login, r[0]), 0);
	assert_string_equal(login.user, "root");
	assert_string_equal(login.host, "127.0.0.1");
	assert_non_null(login.identity);
	assert_true(strlen(login.request_id) < sizeof(id0));
	strcpy(id0, login.request_id);
	assert_non_null(strstr(atex_remote_name(r[0]), id0));

	v = requests();
	assert_int_equal(json_array_size(v), 4);
	json_array_foreach(v, i, rq)
	{
		rule = json_array_get(
			json_object_get(
				json_object_get(
					json_object_get(
						json_array_get(
							json_object_get(
								json_object_get(
									rq,
									"body"),
								"environments"),
							0),
						"settings"),
					"provisioning"),
				"security_group_rules_ingress"),
			0);
		assert_string_equal(
			json_string_value(json_object_get(rule, "cidr")),
			"127.0.0.1/32");
	}
	json_decref(v);

	/* Release cancels exactly that request, without waiting for it. */
	atex_remote_release(r[0]);
	for (int tries = 0; tries < 100; tries++) {
		rq = request_by_id(id0);
		bool done = canceled(rq);

		json_decref(rq);
		if (done)
			break;
		usleep(50000);
	}
	rq = request_by_id(id0);
	assert_true(canceled(rq));
	json_decref(rq);
	assert_int_equal(alive_count(), 3);

	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_int_equal(alive_count(), 0);
	stats(p, &s);
	assert_int_equal(s.submitted, 4);
	assert_int_equal(s.ready, 4);
	assert_int_equal(s.canceled, 4);
	assert_int_equal(s.failed, 0);
	assert_int_equal(s.alive, 0);
	for (i = 1; i < 4; i++)
		atex_remote_release(r[i]);
	atex_provisioner_free(p);
	no_token_anywhere();
}

/* Not the public ranch: no ingress rule, and no source_cidr needed. */
static void test_redhat_no_rule(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	json_t *v, *env;

	(void)state;
	options(&o);
	/* A source_cidr given there is said to be unused, and not sent. */
	p = started(&o);
	assert_true(logs_contain("is not sent, only the public ranch"));
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	options(&o);
	o.source_cidr = NULL;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	for (int tries = 0; tries < 100 && alive_count() < 1; tries++)
		usleep(50000);
	v = requests();
	assert_int_equal(json_array_size(v), 1);
	env = json_array_get(
		json_object_get(json_object_get(json_array_get(v, 0), "body"),
				"environments"),
		0);
	assert_null(json_object_get(
		json_object_get(json_object_get(env, "settings"),
				"provisioning"),
		"security_group_rules_ingress"));
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(
				json_object_get(
					json_object_get(env, "settings"),
					"provisioning"),
				"tags"),
			"ArtemisUseSpot")),
		"false");
	json_decref(v);
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_int_equal(alive_count(), 0);
	atex_provisioner_free(p);
}

/* The public ranch without source_cidr, and a bad token: start fails
 * with what to do, never showing the token. */
static void test_start_refused(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p = NULL;

	(void)state;
	options(&o);
	o.source_cidr = NULL;
	assert_int_equal(atex_testingfarm_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "source_cidr"));
	assert_non_null(strstr(atex_error_last(), "--tf-source"));
	atex_provisioner_free(p);

	options(&o);
	o.api.token = "wrong-" TOKEN;
	assert_int_equal(atex_testingfarm_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "token was rejected"));
	assert_null(strstr(atex_error_last(), "wrong-"));
	atex_provisioner_free(p);
	assert_int_equal(alive_count(), 0);
	no_token_anywhere();
	assert_false(logs_contain("wrong-"));

	/* An API without whoami: a warning, and no rule needed. */
	fault("{\"status\": 404, \"match\": \"^GET /v0.1/whoami$\"}");
	options(&o);
	o.source_cidr = NULL;
	p = started(&o);
	assert_true(logs_contain("no whoami (HTTP 404)"));
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);

	/* The same API with source_cidr given: the ranch may be the public
	 * one, so the rule goes as given. */
	fault("{\"status\": 404, \"match\": \"^GET /v0.1/whoami$\"}");
	options(&o);
	p = started(&o);
	assert_true(logs_contain("is sent as given"));
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	for (int tries = 0; tries < 100 && alive_count() < 1; tries++)
		usleep(50000);
	{
		json_t *v = requests();
		json_t *env = json_array_get(
			json_object_get(
				json_object_get(json_array_get(v, 0), "body"),
				"environments"),
			0);

		assert_non_null(json_object_get(
			json_object_get(json_object_get(env, "settings"),
					"provisioning"),
			"security_group_rules_ingress"));
		json_decref(v);
	}
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

/* atex_testingfarm_call: replies, errors, a reply that is not JSON. */
static void test_call(void **state)
{
	struct atex_testingfarm_api_options api =
		ATEX_TESTINGFARM_API_OPTIONS_INIT;
	char *reply = NULL, url[160];
	long status = 0;

	(void)state;
	snprintf(url, sizeof(url), "%s///", fx.url); /* trailing '/' go */
	api.url = url;
	api.token = TOKEN;
	assert_int_equal(atex_testingfarm_call(&reply, &status, &api, "GET",
					       "/v0.1/whoami", NULL, NULL),
			 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(reply, "public"));
	free(reply);

	/* The environment supplies what the options do not. */
	setenv("TESTING_FARM_API_URL", fx.url, 1);
	setenv("TESTING_FARM_API_TOKEN", TOKEN, 1);
	api.url = NULL;
	api.token = NULL;
	assert_int_equal(atex_testingfarm_call(&reply, &status, &api, "GET",
					       "/v0.1/composes", NULL, NULL),
			 0);
	assert_non_null(strstr(reply, "CentOS-Stream-9"));
	free(reply);
	unsetenv("TESTING_FARM_API_URL");
	unsetenv("TESTING_FARM_API_TOKEN");
	api.url = fx.url;

	api.token = "bad-" TOKEN;
	assert_int_equal(atex_testingfarm_call(&reply, &status, &api, "GET",
					       "/v0.1/whoami", NULL, NULL),
			 ATEX_EIO);
	assert_null(reply);
	assert_non_null(strstr(atex_error_last(), "GET"));
	assert_non_null(strstr(atex_error_last(), "/v0.1/whoami"));
	assert_non_null(strstr(atex_error_last(), "HTTP 401"));
	assert_non_null(strstr(atex_error_last(), "Not authorized"));
	assert_null(strstr(atex_error_last(), TOKEN));

	api.token = TOKEN;
	fault("{\"not_json\": true, \"match\": \"whoami\"}");
	assert_int_equal(atex_testingfarm_call(&reply, &status, &api, "GET",
					       "/v0.1/whoami", NULL, NULL),
			 ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "not JSON"));

	assert_int_equal(atex_testingfarm_call(&reply, &status, &api, "GET",
					       "v0.1/whoami", NULL, NULL),
			 ATEX_EINVAL);
}

struct aborter {
	atex_provisioner *p;
	double called, returned;
};

static void *abort_main(void *arg)
{
	struct aborter *a = arg;

	a->called = atex_monotonic_ms();
	atex_provisioner_abort(a->p);
	a->returned = atex_monotonic_ms();
	return NULL;
}

/* abort from another thread while 4 requests are pending: every one is
 * DELETEd within 5 s, and a blocked get_remote returns ECANCELED. */
static void test_abort(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	struct aborter a = {0};
	atex_provisioner *p;
	atex_remote *r = NULL;
	pthread_t t;
	json_t *v, *rq;
	char want[256];
	size_t i;

	(void)state;
	options(&o);
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 4), 0);
	for (int tries = 0; tries < 100 && alive_count() < 4; tries++)
		usleep(50000);
	assert_int_equal(alive_count(), 4);
	a.p = p;
	assert_int_equal(pthread_create(&t, NULL, abort_main, &a), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 20000),
			 ATEX_ECANCELED);
	pthread_join(t, NULL);
	assert_true(a.returned - a.called < 5000);
	v = requests();
	json_array_foreach(v, i, rq)
	{
		json_t *d = json_object_get(rq, "deleted_at");

		assert_true(json_is_number(d));
		assert_true(canceled(rq));
		/* Every id is told at info level, submitted and canceled. */
		snprintf(want, sizeof(want),
			 "%d testingfarm: testingfarm:Fedora-41/x86_64: "
			 "canceled request %s",
			 ATEX_LOG_INFO,
			 json_string_value(json_object_get(rq, "id")));
		assert_true(logs_contain(want));
		snprintf(want, sizeof(want),
			 "%d testingfarm: testingfarm:Fedora-41/x86_64: "
			 "submitted request %s",
			 ATEX_LOG_INFO,
			 json_string_value(json_object_get(rq, "id")));
		assert_true(logs_contain(want));
	}
	json_decref(v);
	assert_int_equal(alive_count(), 0);
	atex_provisioner_stop(p);
	atex_provisioner_free(p);
}

/* 503 bursts, 429, a dropped connection, a slow reply and an API
 * restart mid-run: two machines arrive all the same. */
static void test_outages(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	struct atex_testingfarm_stats s;
	atex_provisioner *p;
	atex_remote *r[2];

	(void)state;
	atex_tf_set_test_backoff(100, 400);
	options(&o);
	p = started(&o);
	fault("{\"status\": 503, \"count\": 3, \"match\": \"^POST "
	      "/v0.1/requests$\"}");
	fault("{\"status\": 429, \"count\": 2, \"match\": \"^GET "
	      "/v0.1/requests/\"}");
	fault("{\"html\": true, \"status\": 502, \"match\": \"^GET "
	      "/v0.1/requests/\"}");
	fault("{\"drop\": true, \"match\": \"^GET /v0.1/requests/\"}");
	fault("{\"delay\": 2.0, \"match\": \"^GET /v0.1/requests/\"}");
	fault("{\"status\": 503, \"count\": 2, \"match\": \"pipeline.log\"}");
	assert_int_equal(atex_provisioner_provision(p, 2), 0);
	for (int tries = 0; tries < 100 && alive_count() < 2; tries++)
		usleep(50000);
	free(ctl("POST", "/_control/restart", "{\"down_s\": 2}"));
	r[0] = get(p, 40000);
	r[1] = get(p, 40000);
	run_on(r[0], "one");
	run_on(r[1], "two");
	stats(p, &s);
	assert_int_equal(s.submitted, 2);
	assert_int_equal(s.failed, 0);
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_int_equal(alive_count(), 0);
	atex_remote_release(r[0]);
	atex_remote_release(r[1]);
	atex_provisioner_free(p);
	atex_tf_set_test_backoff(0, 0);
	no_token_anywhere();
}

/* A request that goes to error is logged with its id and log lines,
 * replaced and counted. */
static void test_error_replaced(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	struct atex_testingfarm_stats s;
	atex_provisioner *p;
	atex_remote *r;
	json_t *v;
	char want[128];

	(void)state;
	request_fault("{\"error\": true}");
	options(&o);
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get(p, 40000);
	run_on(r, "replacement");
	stats(p, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.submitted, 2);
	assert_int_equal(s.ready, 1);
	v = requests();
	snprintf(
		want, sizeof(want), "request %s ended in state \"error\"",
		json_string_value(json_object_get(json_array_get(v, 0), "id")));
	assert_string_equal(rq_state(json_array_get(v, 0)), "error");
	json_decref(v);
	assert_true(logs_contain(want));
	assert_true(logs_contain("Guest provisioning failed"));
	/* On the same line, the log's lines joined with " | ". */
	assert_true(log_line_has(want, " | "));
	assert_true(log_line_has(want, "Guest provisioning failed"));
	atex_remote_release(r);
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_int_equal(alive_count(), 0);
	atex_provisioner_free(p);
}

/* No retries left: get_remote fails with the id, the state and the last
 * pipeline.log lines. */
static void test_retries_exhausted(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	atex_remote *r = NULL;
	json_t *v;
	const char *id;

	(void)state;
	request_fault("{\"error\": true, \"count\": 2}");
	options(&o);
	o.max_retries = 1;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 40000),
			 ATEX_EINFRA);
	v = requests();
	assert_int_equal(json_array_size(v), 2);
	id = json_string_value(json_object_get(json_array_get(v, 1), "id"));
	assert_non_null(strstr(atex_error_last(), id));
	assert_non_null(strstr(atex_error_last(), "\"error\""));
	assert_non_null(strstr(atex_error_last(), "Guest provisioning failed"));
	assert_non_null(strstr(atex_error_last(), "max_retries"));
	json_decref(v);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

/* pipeline.log quirks, one per request: lines arriving in two parts, a
 * server ignoring Range, a long 404, 403 while missing. */
static void test_log_quirks(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	atex_remote *r[4];

	(void)state;
	request_fault("{\"split_lines\": true}");
	request_fault("{\"ignore_range\": true}");
	request_fault("{\"log_404_s\": 3}");
	request_fault("{\"log_403\": true}");
	options(&o);
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 4), 0);
	for (int i = 0; i < 4; i++) {
		r[i] = get(p, 40000);
		run_on(r[i], "quirk");
	}
	assert_int_equal(atex_provisioner_stop(p), 0);
	for (int i = 0; i < 4; i++)
		atex_remote_release(r[i]);
	atex_provisioner_free(p);
	assert_int_equal(alive_count(), 0);
}

/* clear() cancels what is not ready yet; count bounds what is alive. */
static void test_clear_and_count(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;

	(void)state;
	options(&o);
	o.count = 2;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 5), 0);
	for (int tries = 0; tries < 100 && alive_count() < 2; tries++)
		usleep(50000);
	usleep(500000);
	assert_int_equal(alive_count(), 2);
	assert_int_equal(atex_provisioner_clear(p), 0);
	for (int tries = 0; tries < 100 && alive_count() > 0; tries++)
		usleep(50000);
	assert_int_equal(alive_count(), 0);
	usleep(3 * POLL_MS * 1000);
	assert_int_equal(alive_count(), 0);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

/* os_cleaning: the script runs once per machine before it is handed out
 * (its output in the log); a failing one fails that machine: canceled,
 * counted, replaced, and with no retries left reported by get_remote.
 * (A stand-in script: the real one would change this machine.) */
static void test_os_cleaning(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	struct atex_testingfarm_stats s;
	atex_provisioner *p;
	atex_remote *r[2], *none = NULL;
	char script[256], path[128], text[64];

	(void)state;
	snprintf(path, sizeof(path), "%s/cleaned", fx.dir);
	snprintf(script, sizeof(script),
		 "echo 'atex-cleaning: stand-in ran'; echo x >>%s\n", path);
	atex_tf_set_test_cleaning(script);
	options(&o);
	o.os_cleaning = true;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 2), 0);
	r[0] = get(p, 40000);
	r[1] = get(p, 40000);
	assert_true(read_small(path, text, sizeof(text)));
	assert_string_equal(text, "x\nx");
	assert_true(logs_contain("atex-cleaning: stand-in ran"));
	atex_remote_release(r[0]);
	atex_remote_release(r[1]);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);

	atex_tf_set_test_cleaning("echo 'something broke' >&2; exit 3\n");
	options(&o);
	o.os_cleaning = true;
	o.max_retries = -1;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(atex_provisioner_get_remote(&none, p, 40000),
			 ATEX_EINFRA);
	assert_non_null(strstr(atex_error_last(),
			       "OS-cleaning script failed (status 3): "
			       "something broke"));
	stats(p, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.ready, 0);
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_int_equal(alive_count(), 0);
	atex_provisioner_free(p);
	atex_tf_set_test_cleaning(NULL);
}

/* A request whose DELETE keeps failing: stop says which, and that the
 * pipeline timeout frees it. */
static void test_stop_cannot_cancel(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	json_t *v;
	const char *id;

	(void)state;
	atex_tf_set_test_backoff(100, 200);
	options(&o);
	o.api.retry_total_s = 1;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	for (int tries = 0; tries < 100 && alive_count() < 1; tries++)
		usleep(50000);
	fault("{\"status\": 500, \"count\": 1000, \"match\": \"^DELETE \"}");
	assert_int_equal(atex_provisioner_stop(p), ATEX_EIO);
	v = requests();
	id = json_string_value(json_object_get(json_array_get(v, 0), "id"));
	assert_non_null(strstr(atex_error_last(), id));
	assert_non_null(strstr(atex_error_last(), "could not be canceled"));
	assert_non_null(strstr(atex_error_last(), "HTTP 500"));
	assert_non_null(strstr(atex_error_last(), "pipeline timeout (30 min)"));
	/* Said at once, not only after the minute. */
	assert_true(logs_contain("retrying for up to 1 s"));
	json_decref(v);
	atex_provisioner_free(p);
	atex_tf_set_test_backoff(0, 0);
}

/* count 1: the next machine is asked for only once the released one's
 * request is gone (DELETEd before the new POST). */
static void test_count_one(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	atex_remote *r;
	json_t *v, *first, *second;

	(void)state;
	options(&o);
	o.count = 1;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get(p, 40000);
	/* Asked for while the slot is taken; the DELETE answered late. */
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	fault("{\"delay\": 1.0, \"match\": \"^DELETE \"}");
	atex_remote_release(r);
	r = get(p, 40000);
	run_on(r, "second");
	v = requests();
	assert_int_equal(json_array_size(v), 2);
	first = json_array_get(v, 0);
	second = json_array_get(v, 1);
	assert_true(json_is_number(json_object_get(first, "deleted_at")));
	assert_true(
		json_number_value(json_object_get(first, "deleted_at")) <=
		json_number_value(json_array_get(
			json_array_get(json_object_get(second, "history"), 0),
			1)));
	json_decref(v);
	atex_remote_release(r);
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_int_equal(alive_count(), 0);
	atex_provisioner_free(p);
}

/* abort while the POST waits to be retried (503 x5): no try starts any
 * more, so nothing is created, and abort returns at once. */
static void test_abort_post_retrying(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	double t0;
	json_t *v;

	(void)state;
	atex_tf_set_test_backoff(200, 400);
	options(&o);
	p = started(&o);
	fault("{\"status\": 503, \"count\": 5, \"match\": \"^POST "
	      "/v0.1/requests$\"}");
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	usleep(300000);
	t0 = atex_monotonic_ms();
	atex_provisioner_abort(p);
	assert_true(atex_monotonic_ms() - t0 < 1000);
	usleep(2500000); /* the 6th try would have come by now */
	v = requests();
	assert_int_equal(json_array_size(v), 0);
	json_decref(v);
	atex_provisioner_stop(p);
	atex_provisioner_free(p);
	atex_tf_set_test_backoff(0, 0);
}

/* abort while a POST's answer is slow: waited for ~3 s, then given up
 * with a warning, abort within 5 s; an answer within the grace gets its
 * request DELETEd. */
static void test_abort_post_in_flight(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	double t0;
	json_t *v;

	(void)state;
	options(&o);
	p = started(&o);
	fault("{\"delay\": 8.0, \"match\": \"^POST /v0.1/requests$\"}");
	fault("{\"delay\": 1.5, \"match\": \"^POST /v0.1/requests$\"}");
	assert_int_equal(atex_provisioner_provision(p, 2), 0);
	usleep(300000);
	t0 = atex_monotonic_ms();
	atex_provisioner_abort(p);
	assert_true(atex_monotonic_ms() - t0 < 5000);
	assert_true(logs_contain("a request being submitted may be left "
				 "alive; Testing Farm frees it at the "
				 "pipeline timeout of 30 min"));
	v = requests();
	assert_int_equal(json_array_size(v), 1);
	assert_true(canceled(json_array_get(v, 0)));
	json_decref(v);
	atex_provisioner_stop(p);
	atex_provisioner_free(p);
}

/* State replies that are not JSON are passing faults: the request is
 * kept; ten in a row give it up, and it is DELETEd. */
static void test_bad_state_replies(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	struct atex_testingfarm_stats s;
	atex_provisioner *p;
	atex_remote *r;
	int tries;

	(void)state;
	options(&o);
	p = started(&o);
	fault("{\"not_json\": true, \"count\": 3, \"match\": \"^GET "
	      "/v0.1/requests/\"}");
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get(p, 30000);
	stats(p, &s);
	assert_int_equal(s.submitted, 1);
	assert_int_equal(s.failed, 0);
	atex_remote_release(r);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);

	options(&o);
	o.max_retries = -1;
	p = started(&o);
	fault("{\"not_json\": true, \"count\": 1000, \"match\": \"^GET "
	      "/v0.1/requests/\"}");
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 20000),
			 ATEX_EINFRA);
	assert_non_null(strstr(atex_error_last(), "has no state in its last"));
	for (tries = 0; tries < 60 && alive_count() > 0; tries++)
		usleep(50000);
	assert_int_equal(alive_count(), 0);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

/* abort with every DELETE failing: abort is bounded and names the ids
 * left alive; stop after it does not wait its minute again. */
static void test_abort_delete_failing(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	double t0;
	json_t *v, *rq;
	size_t i;

	(void)state;
	atex_tf_set_test_backoff(100, 200);
	options(&o);
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 2), 0);
	for (int tries = 0; tries < 100 && alive_count() < 2; tries++)
		usleep(50000);
	fault("{\"status\": 503, \"count\": 100000, \"match\": \"^DELETE \"}");
	t0 = atex_monotonic_ms();
	atex_provisioner_abort(p);
	assert_true(atex_monotonic_ms() - t0 < 5000);
	assert_true(logs_contain("requests that could not be canceled: "));
	assert_true(logs_contain("or `atex tf cancel "));
	v = requests();
	json_array_foreach(v, i, rq) assert_true(
		logs_contain(json_string_value(json_object_get(rq, "id"))));
	json_decref(v);
	t0 = atex_monotonic_ms();
	assert_int_equal(atex_provisioner_stop(p), ATEX_EIO);
	assert_true(atex_monotonic_ms() - t0 < 2000);
	assert_non_null(strstr(atex_error_last(), "atex tf cancel "));
	atex_provisioner_free(p);
	atex_tf_set_test_backoff(0, 0);
}

/* A POST slower than a try of the other exchanges is not tried again
 * (that would make a second reservation). */
static void test_post_slow(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	atex_remote *r;
	json_t *v;

	(void)state;
	atex_tf_set_test_try_timeouts(1000, 10000);
	options(&o);
	p = started(&o);
	fault("{\"delay\": 2.5, \"match\": \"^POST /v0.1/requests$\"}");
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get(p, 30000);
	v = requests();
	assert_int_equal(json_array_size(v), 1);
	json_decref(v);
	atex_remote_release(r);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	atex_tf_set_test_try_timeouts(0, 0);
}

/* A server quoting the Authorization header back: the token is in no
 * error and no log line. */
static void test_token_echoed(void **state)
{
	struct atex_testingfarm_api_options api =
		ATEX_TESTINGFARM_API_OPTIONS_INIT;
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	atex_remote *r = NULL;
	char *reply = NULL;
	long status = 0;

	(void)state;
	api.url = fx.url;
	api.token = TOKEN;
	fault("{\"echo_auth\": true, \"status\": 400, \"match\": \"^GET "
	      "/v0.1/whoami\"}");
	assert_int_equal(atex_testingfarm_call(&reply, &status, &api, "GET",
					       "/v0.1/whoami", NULL, NULL),
			 ATEX_EIO);
	assert_non_null(strstr(atex_error_last(), "Bearer ***"));
	no_token_anywhere();

	options(&o);
	p = started(&o);
	fault("{\"echo_auth\": true, \"status\": 400, \"match\": \"^POST "
	      "/v0.1/requests$\"}");
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_not_equal(atex_provisioner_get_remote(&r, p, 20000), 0);
	assert_non_null(strstr(atex_error_last(), "Bearer ***"));
	no_token_anywhere();
	atex_provisioner_stop(p);
	atex_provisioner_free(p);
}

/* A request id that cannot go into a URL is an error naming it, and the
 * reservation counts as failed (and is replaced). */
static void test_bad_request_id(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	struct atex_testingfarm_stats s;
	atex_provisioner *p;
	atex_remote *r;

	(void)state;
	options(&o);
	p = started(&o);
	fault("{\"id\": \"../x\", \"match\": \"^POST /v0.1/requests$\"}");
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get(p, 30000);
	assert_true(logs_contain("the API answered request id \"../x\": not "
				 "an id"));
	stats(p, &s);
	assert_int_equal(s.failed, 1);
	atex_remote_release(r);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

/* A server answering pipeline.log a piece at a time (206 covering less
 * than it has): the rest is asked for at once, not a poll later. */
static void test_log_short_reads(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	atex_remote *r;
	double t0;

	(void)state;
	request_fault("{\"log_chunk\": 40}");
	options(&o);
	o.poll_ms = 3000;
	p = started(&o);
	t0 = atex_monotonic_ms();
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	r = get(p, 40000);
	/* At 40 bytes a poll, the lines before the login would take
	 * minutes. */
	assert_true(atex_monotonic_ms() - t0 < 20000);
	atex_remote_release(r);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

/* Tests started with a Guest line atex cannot parse: that reservation
 * fails at once (counted, DELETEd) with the log's last lines. */
static void test_guest_unparsed(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	atex_remote *r = NULL;

	(void)state;
	request_fault("{\"bad_guest\": true}");
	options(&o);
	o.max_retries = -1;
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 20000),
			 ATEX_EINFRA);
	assert_non_null(strstr(atex_error_last(), "atex could parse"));
	assert_non_null(strstr(atex_error_last(), "NewGuest(name="));
	for (int tries = 0; tries < 60 && alive_count() > 0; tries++)
		usleep(50000);
	assert_int_equal(alive_count(), 0);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
}

/* A machine whose key is never installed: the failing login is told
 * (request id, user@host, ssh's error), not waited on in silence. */
static void test_login_keeps_failing(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	json_t *v;
	char want[256];

	(void)state;
	atex_tf_set_test_login_warn(1000, 1500);
	request_fault("{\"no_key\": true}");
	options(&o);
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	for (int tries = 0; tries < 200 && !logs_contain("still cannot log in");
	     tries++)
		usleep(50000);
	v = requests();
	snprintf(
		want, sizeof(want), "tf:%s (",
		json_string_value(json_object_get(json_array_get(v, 0), "id")));
	json_decref(v);
	assert_true(log_line_has("still cannot log in", want));
	assert_true(log_line_has("still cannot log in", "@127.0.0.1)"));
	assert_true(log_line_has("still cannot log in", "attempts): "));
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	atex_tf_set_test_login_warn(0, 0);
}

/* How many log lines hold s. */
static int log_count(const char *s)
{
	int n = 0;

	pthread_mutex_lock(&log_lock);
	for (const char *p = atex_buf_cstr(&logs); (p = strstr(p, s)); p++)
		n++;
	pthread_mutex_unlock(&log_lock);
	return n;
}

/* The API down for a while: one warning when it has lasted, one when it
 * is back, not one per retry. */
static void test_outage_told_once(void **state)
{
	struct atex_testingfarm_provisioner_options o;
	atex_provisioner *p;
	atex_remote *r;

	(void)state;
	atex_tf_set_test_backoff(100, 200);
	atex_tf_set_test_outage_warn(1000);
	pthread_mutex_lock(&log_lock);
	atex_buf_clear(&logs);
	pthread_mutex_unlock(&log_lock);
	options(&o);
	p = started(&o);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	for (int tries = 0; tries < 100 && alive_count() < 1; tries++)
		usleep(50000);
	free(ctl("POST", "/_control/restart", "{\"down_s\": 3}"));
	r = get(p, 40000);
	for (int tries = 0; tries < 100 && !logs_contain("reachable again");
	     tries++)
		usleep(50000);
	assert_int_equal(log_count("Testing Farm API unreachable for "), 1);
	assert_true(log_line_has("Testing Farm API unreachable for ",
				 "; retrying"));
	assert_int_equal(log_count("Testing Farm API reachable again"), 1);
	atex_remote_release(r);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	atex_tf_set_test_outage_warn(0);
	atex_tf_set_test_backoff(0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_four_remotes, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_redhat_no_rule,
						setup_redhat, teardown),
		cmocka_unit_test_setup_teardown(test_start_refused,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_call, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_outages, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_error_replaced,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_retries_exhausted,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_log_quirks, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_clear_and_count,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_os_cleaning, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_cannot_cancel,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_count_one, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_abort_post_retrying,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_abort_post_in_flight,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_bad_state_replies,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_abort_delete_failing,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_post_slow, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_token_echoed, setup_public,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_request_id,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_log_short_reads,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_guest_unparsed,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_login_keeps_failing,
						setup_public, teardown),
		cmocka_unit_test_setup_teardown(test_outage_told_once,
						setup_public, teardown),
	};

	struct CMUnitTest chosen[ATEX_ARRAY_SIZE(tests)];
	const char *only = getenv("TF_TEST_ONLY"); /* for debugging one */
	size_t n = 0;

	for (size_t i = 0; i < ATEX_ARRAY_SIZE(tests); i++)
		if (!only || strstr(tests[i].name, only))
			chosen[n++] = tests[i];
	atex_log_set_handler(log_handler, NULL);
	atex_log_set_level(ATEX_LOG_DEBUG);
	unsetenv("TESTING_FARM_API_TOKEN");
	unsetenv("TESTING_FARM_API_URL");
	return _cmocka_run_group_tests("testingfarm", chosen, n, NULL, NULL);
}
