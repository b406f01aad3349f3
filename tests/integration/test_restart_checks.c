/*
 * test_restart_checks.c - tmt's restart keys (restart-on-exit-code,
 * restart-max-count, restart-with-reboot) and test checks (check: avc,
 * dmesg) end to end, on the fixture tree
 * $ATEX_TEST_TREES/restart-checks over the local connection (this
 * machine, as root).
 *
 * Each test is run by the fmf executor into its own artifacts directory;
 * its results lines are compared with expected objects (a "note" of
 * "~text" means a note containing text), its output and files byte by
 * byte where they matter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "atex/connection.h"
#include "atex/executor.h"
#include "atex/fmf.h"
#include "helpers.h"

static struct {
	char tree[PATH_MAX];
	char base[64]; /* /tmp/atex-restarttest-XXXXXX: the artifacts */
	atex_connection *conn;
	unsigned long runs;
} g;

struct session {
	atex_fmf_discovery *disc;
	atex_executor *e;
};

struct run {
	char dir[PATH_MAX];
	int rc, exit_code;
	json_t *results; /* array of the results lines */
};

static atex_connection *session_conn; /* NULL: g.conn */

static struct session *session_open(const char *const *env)
{
	struct session *s = calloc(1, sizeof(*s));
	struct atex_fmf_discover_options dopts = ATEX_FMF_DISCOVER_OPTIONS_INIT;
	struct atex_fmf_executor_options eopts = ATEX_FMF_EXECUTOR_OPTIONS_INIT;
	int rc;

	assert_non_null(s);
	dopts.plan = "/plan";
	rc = atex_fmf_discover(&s->disc, g.tree, &dopts);
	if (rc)
		fail_msg("discover %s: %s", g.tree, atex_error_last());
	eopts.connection = session_conn ? session_conn : g.conn;
	eopts.discovery = s->disc;
	eopts.env = env;
	assert_int_equal(atex_fmf_executor_new(&s->e, &eopts), 0);
	rc = atex_executor_start(s->e);
	if (rc)
		fail_msg("start: %d: %s", rc, atex_error_last());
	return s;
}

static void session_close(struct session *s)
{
	assert_int_equal(atex_executor_stop(s->e), 0);
	atex_executor_free(s->e);
	atex_fmf_discovery_free(s->disc);
	free(s);
}

static void run(struct session *s, struct run *r, const char *test)
{
	char *path, *text, *line, *save = NULL;

	snprintf(r->dir, sizeof(r->dir), "%s/%lu", g.base, ++g.runs);
	r->exit_code = -2;
	r->rc = atex_executor_run_test(s->e, test, r->dir, NULL, &r->exit_code);
	path = xsprintf("%s/results", r->dir);
	text = slurp(path, NULL);
	if (!text)
		fail_msg("%s: no results file", test);
	r->results = json_array();
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);

		if (!j)
			fail_msg("%s: bad results line %s", test, line);
		json_array_append_new(r->results, j);
	}
	free(text);
	free(path);
}

static void run_free(struct run *r)
{
	json_decref(r->results);
	r->results = NULL;
}

/* The results, one expected JSON object per line, in order; a "note" of
 * "~text" matches a note containing text. */
static void expect_results(const struct run *r, size_t n, ...)
{
	va_list ap;
	char *have = json_dumps(r->results, JSON_COMPACT);

	if (json_array_size(r->results) != n)
		fail_msg("%s: %zu results, expected %zu: %s", r->dir,
			 json_array_size(r->results), n, have);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		json_t *want = json_loads(va_arg(ap, const char *), 0, NULL);
		json_t *got = json_deep_copy(json_array_get(r->results, i));
		const char *wn =
			json_string_value(json_object_get(want, "note"));
		const char *gn =
			json_string_value(json_object_get(got, "note"));

		assert_non_null(want);
		if (wn && wn[0] == '~') {
			if (!gn || !strstr(gn, wn + 1))
				fail_msg("%s: result %zu: note %s, expected "
					 "one containing '%s'",
					 r->dir, i, gn ? gn : "(none)", wn + 1);
			json_object_del(want, "note");
			json_object_del(got, "note");
		}
		if (!json_equal(want, got))
			fail_msg("%s: result %zu: %s", r->dir, i, have);
		json_decref(want);
		json_decref(got);
	}
	va_end(ap);
	free(have);
}

static void expect_text(const struct run *r, const char *file, const char *want)
{
	char *path = xsprintf("%s/files/%s", r->dir, file);
	char *text = slurp(path, NULL);

	if (!text)
		fail_msg("%s: no %s", r->dir, file);
	if (strcmp(text, want))
		fail_msg("%s: %s is:\n%s\nexpected:\n%s", r->dir, file, text,
			 want);
	free(text);
	free(path);
}

static void fakes_on(bool selinux);
static void fakes_off(void);

#define PASS_OUT "{\"status\": \"pass\", \"files\": [\"output.txt\"]}"
#define FAIL_OUT "{\"status\": \"fail\", \"files\": [\"output.txt\"]}"

/* ------------------------------------------------------------------------
 * Restarts.
 */

/* Restarted on a listed code, TMT_TEST_RESTART_COUNT raised each time,
 * TMT_REBOOT_COUNT not (no reboot); every restart is a line in the
 * output; the last start's exit code counts. */
static void test_restart(void **state)
{
	struct session *s = session_open(NULL);
	struct run r;

	(void)state;
	run(s, &r, "/restart/twice");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 0);
	expect_results(&r, 1, PASS_OUT);
	expect_text(&r, "output.txt",
		    "start restart=0 reboot=0\n"
		    "atex: exit code 3: restarting the test (1 of 2)\n"
		    "start restart=1 reboot=0\n"
		    "atex: exit code 3: restarting the test (2 of 2)\n"
		    "start restart=2 reboot=0\n");
	run_free(&r);

	/* One code, not a list; restart-max-count is 1 by default. */
	run(s, &r, "/restart/one-code");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 0);
	expect_results(&r, 1, PASS_OUT);
	expect_text(&r, "output.txt",
		    "start restart=0\n"
		    "atex: exit code 7: restarting the test (1 of 1)\n"
		    "start restart=1\n");
	run_free(&r);

	/* A code not listed: no restart. */
	run(s, &r, "/restart/other-code");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 1);
	expect_results(&r, 1, FAIL_OUT);
	expect_text(&r, "output.txt", "start restart=0\n");
	run_free(&r);
	session_close(s);
}

/* Over restart-max-count: as in tmt, an error; the last exit code is
 * kept. */
static void test_restart_over_max(void **state)
{
	struct session *s = session_open(NULL);
	struct run r;

	(void)state;
	run(s, &r, "/restart/over-max");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 5);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~restarted 1 times already "
		       "(restart-max-count 1)\"}");
	expect_text(&r, "output.txt",
		    "start restart=0\n"
		    "atex: exit code 5: restarting the test (1 of 1)\n"
		    "start restart=1\n");
	run_free(&r);
	session_close(s);
}

/* restart-with-reboot on the local connection: the system is this
 * machine; an error saying so, nothing rebooted, not restarted. */
static void test_restart_with_reboot_refused(void **state)
{
	struct session *s = session_open(NULL);
	struct run r;

	(void)state;
	run(s, &r, "/restart/with-reboot");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 3);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~restart-with-reboot: local cannot reboot "
		       "(the system is the machine atex runs on)\"}");
	expect_text(&r, "output.txt",
		    "start restart=0\n"
		    "atex: exit code 3: restarting the test (1 of 1) after a "
		    "reboot\n");
	run_free(&r);
	session_close(s);
}

/* Fake boot (helpers.h): a connection around g.conn that says it can
 * reboot and whose boot id is the content of the file $BOOT_FILE, so that
 * a reboot can be acted out (the executor's ATEX_REBOOT_COMMAND changes
 * the file; PATH has fake reboot, systemctl and shutdown besides):
 * nothing here reboots this machine. */

/* The executor's default reboot command never reaches a shell: the fake
 * system "reboots" by changing its boot id instead (and counts it). */
static int default_reboots;

static int reboot_spawn(struct fake_boot_conn *f, atex_process **out,
			const struct atex_spawn_options *opts)
{
	const char *const *argv = opts->argv;
	struct atex_spawn_options o = *opts;
	const char *instead[] = {"sh", "-c", NULL, NULL};
	char *cmd;
	int rc;

	if (!argv[0] || !argv[1] || !argv[2] || strcmp(argv[0], "bash") ||
	    !strstr(argv[2], "reboot || systemctl reboot || shutdown -r now"))
		return atex_connection_spawn(out, g.conn, opts);
	assert_non_null(strstr(argv[2], "trap '' HUP;"));
	default_reboots++;
	cmd = xsprintf("echo boot-%d > '%s'", 10 + default_reboots,
		       f->boot_file);
	instead[2] = cmd;
	o.argv = instead;
	rc = atex_connection_spawn(out, g.conn, &o);
	free(cmd);
	return rc;
}

/* restart-with-reboot where the system can reboot: the reboot command
 * runs, the new boot is awaited, both counters are raised. tmt-reboot
 * raises TMT_TEST_RESTART_COUNT too, and so uses up restart-max-count. */
static void test_restart_with_reboot(void **state)
{
	char *file = xsprintf("%s/state/boot-id", g.base);
	struct fake_boot_conn *f = fake_boot_conn_new(g.conn, true, file);
	char *cmd, *env0, *log;
	const char *env[2];
	struct session *s;
	struct run r;
	FILE *b;

	(void)state;
	free(file);
	f->spawn = reboot_spawn;
	f->name = "fake-boot";
	fakes_on(false);
	b = fopen(f->boot_file, "w");
	assert_non_null(b);
	fputs("boot-1\n", b);
	fclose(b);
	setenv("BOOT_FILE", f->boot_file, 1);
	cmd = xsprintf("echo boot-2 > '%s'", f->boot_file);
	env0 = xsprintf("ATEX_REBOOT_COMMAND=%s", cmd);
	env[0] = env0;
	env[1] = NULL;
	session_conn = &f->base;
	s = session_open(env);
	run(s, &r, "/restart/reboot");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 0);
	expect_results(&r, 1, PASS_OUT);
	expect_text(&r, "output.txt",
		    "start restart=0 reboot=0 boot=boot-1\n"
		    "atex: exit code 3: restarting the test (1 of 2) after a "
		    "reboot\n"
		    "start restart=1 reboot=1 boot=boot-2\n");
	run_free(&r);

	run(s, &r, "/restart/tmt-reboot");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 4);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~restarted 1 times already\"}");
	expect_text(&r, "output.txt",
		    "start restart=0 reboot=0\nstart restart=1 reboot=1\n");
	run_free(&r);
	session_close(s);

	/* The default reboot command, with an executor environment that
	 * does not set ATEX_REBOOT_COMMAND. */
	env[0] = "SOME_VAR=1";
	s = session_open(env);
	run(s, &r, "/restart/reboot");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(default_reboots, 1);
	expect_text(&r, "output.txt",
		    "start restart=0 reboot=0 boot=boot-3\n"
		    "atex: exit code 3: restarting the test (1 of 2) after a "
		    "reboot\n"
		    "start restart=1 reboot=1 boot=boot-11\n");
	run_free(&r);
	session_close(s);
	atex_connection_free(&f->base);
	session_conn = NULL;
	/* Only the executor's command "rebooted". */
	log = xsprintf("%s/state/reboots.log", g.base);
	assert_int_equal(access(log, F_OK), -1);
	free(log);
	unsetenv("BOOT_FILE");
	fakes_off();
	free(env0);
	free(cmd);
}

/* Bad restart keys: an error naming the test and the key; the test does
 * not run. */
static void test_restart_bad_keys(void **state)
{
	struct session *s = session_open(NULL);
	struct run r;

	(void)state;
	run(s, &r, "/restart/bad-max");
	assert_int_equal(r.rc, ATEX_EFORMAT);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~/restart/bad-max: "
		       "restart-max-count: not an integer from 1 to 10\"}");
	run_free(&r);
	run(s, &r, "/restart/bad-codes");
	assert_int_equal(r.rc, ATEX_EFORMAT);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~/restart/"
		       "bad-codes: restart-on-exit-code: not an exit code\"}");
	run_free(&r);
	session_close(s);
}

/* ------------------------------------------------------------------------
 * Checks.
 */

/* $ATEX_FAKE_STATE and PATH for the fake dmesg, ausearch, sestatus and
 * rpm of the tree's bin/ (inherited by the wrapper over the local
 * connection), SELinux there when `selinux`. */
static char orig_path[8192];

static void fakes_on(bool selinux)
{
	char *state = xsprintf("%s/state", g.base);
	char *cmd = xsprintf("rm -rf '%s' && mkdir '%s'", state, state);
	char *path = xsprintf("%s/bin:%s", g.tree, orig_path);
	char *enforce = xsprintf("%s/enforce", state);

	assert_int_equal(system(cmd), 0);
	setenv("ATEX_FAKE_STATE", state, 1);
	setenv("PATH", path, 1);
	if (selinux) {
		FILE *f = fopen(enforce, "w");

		assert_non_null(f);
		fclose(f);
	}
	setenv("ATEX_CHECK_SELINUX", enforce, 1);
	free(enforce);
	free(path);
	free(cmd);
	free(state);
}

static void fakes_off(void)
{
	setenv("PATH", orig_path, 1);
	unsetenv("ATEX_FAKE_STATE");
	unsetenv("ATEX_CHECK_SELINUX");
}

static void touch_state(const char *name, const char *text)
{
	char *path = xsprintf("%s/state/%s", g.base, name);
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

#define DMESG_PASS(event)                                                      \
	"{\"name\": \"check/dmesg/" event "\", \"status\": \"pass\", "         \
	"\"check\": \"dmesg\", \"event\": \"" event "\", \"files\": "          \
	"[\"dmesg-" event ".txt\"]}"

/* The real dmesg, as root on this machine: before and after, each a
 * check result with its snapshot. (Whether they pass depends on what
 * this machine's kernel said lately: a segfault elsewhere fails them.) */
static void test_check_dmesg_real(void **state)
{
	static const char *const events[] = {"before-test", "after-test"};
	struct session *s;
	struct run r;
	char *path, *text;

	(void)state;
	fakes_off();
	s = session_open(NULL);
	run(s, &r, "/check/dmesg-real");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(json_array_size(r.results), 3);
	for (size_t i = 0; i < 2; i++) {
		json_t *c = json_array_get(r.results, i);
		const char *st =
			json_string_value(json_object_get(c, "status"));
		char *name = xsprintf("check/dmesg/%s", events[i]);

		assert_string_equal(
			json_string_value(json_object_get(c, "name")), name);
		assert_string_equal(
			json_string_value(json_object_get(c, "event")),
			events[i]);
		assert_non_null(st);
		assert_true(!strcmp(st, "pass") || !strcmp(st, "fail"));
		free(name);
	}
	/* The first snapshot of a run has the whole buffer. */
	path = xsprintf("%s/files/check/dmesg/before-test/"
			"dmesg-before-test.txt",
			r.dir);
	text = slurp(path, NULL);
	assert_non_null(text);
	assert_true(strlen(text) > 0);
	free(text);
	free(path);
	run_free(&r);
	session_close(s);
}

#define DMESG_FAIL(event)                                                      \
	"{\"name\": \"check/dmesg/" event "\", \"status\": \"fail\", "         \
	"\"check\": \"dmesg\", \"event\": \"" event "\", \"files\": "          \
	"[\"dmesg-" event ".txt\", \"failures.txt\"]}"

/* dmesg, faked: what came after the last line seen, tmt's failure
 * patterns, and the test's result as tmt interprets the check: respect,
 * xfail, info, enabled: false. */
static void test_check_dmesg(void **state)
{
	struct session *s;
	struct run r;

	(void)state;
	fakes_on(false);
	touch_state("dmesg", "[ 1.000000] booted\n");
	s = session_open(NULL);

	/* The first snapshot has all of it; the after one what came. */
	run(s, &r, "/check/dmesg-fail");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.exit_code, 0);
	expect_results(&r, 3, DMESG_PASS("before-test"),
		       DMESG_FAIL("after-test"),
		       "{\"status\": \"fail\", \"note\": \"check 'dmesg' "
		       "failed\", \"files\": [\"output.txt\"]}");
	expect_text(&r, "check/dmesg/before-test/dmesg-before-test.txt",
		    "[ 1.000000] booted\n");
	expect_text(&r, "check/dmesg/after-test/dmesg-after-test.txt",
		    "[ 2.000000] Call Trace:\n");
	expect_text(&r, "check/dmesg/after-test/failures.txt",
		    "[ 2.000000] Call Trace:\n");
	run_free(&r);

	/* The test's own result (tmt-report-result /, a BeakerLib
	 * test's): the check reduces it too, as tmt. */
	run(s, &r, "/check/dmesg-fail-own");
	assert_int_equal(r.rc, 0);
	expect_results(&r, 3, DMESG_PASS("before-test"),
		       "{\"status\": \"fail\", \"note\": \"check 'dmesg' "
		       "failed\"}",
		       DMESG_FAIL("after-test"));
	run_free(&r);

	/* xfail: a failing check passes the test, with a note, and its
	 * own line passes too (what atex's commands count)... */
	run(s, &r, "/check/dmesg-xfail");
	assert_int_equal(r.rc, 0);
	expect_results(&r, 3, DMESG_PASS("before-test"),
		       "{\"name\": \"check/dmesg/after-test\", \"status\": "
		       "\"pass\", \"check\": \"dmesg\", \"event\": "
		       "\"after-test\", \"files\": [\"dmesg-after-test.txt\", "
		       "\"failures.txt\"], \"note\": \"the check's outcome: "
		       "fail, failed as expected (result: xfail)\"}",
		       "{\"status\": \"pass\", \"note\": \"check 'dmesg' "
		       "failed as expected\", \"files\": [\"output.txt\"]}");
	/* (nothing new since the last test's after snapshot) */
	expect_text(&r, "check/dmesg/before-test/dmesg-before-test.txt", "");
	expect_text(&r, "check/dmesg/after-test/failures.txt",
		    "[ 3.000000] app[1]: segfault at 0 ip 0 sp 0\n");
	run_free(&r);

	/* ... and a passing one fails it. */
	run(s, &r, "/check/dmesg-xfail-clean");
	expect_results(&r, 3, DMESG_PASS("before-test"),
		       DMESG_PASS("after-test"),
		       "{\"status\": \"fail\", \"note\": \"check 'dmesg' did "
		       "not fail as expected\", \"files\": [\"output.txt\"]}");
	run_free(&r);

	/* info: reported ("info" on its line), the test's result left as
	 * it is. */
	run(s, &r, "/check/dmesg-info");
	expect_results(&r, 3, DMESG_PASS("before-test"),
		       "{\"name\": \"check/dmesg/after-test\", \"status\": "
		       "\"info\", \"check\": \"dmesg\", \"event\": "
		       "\"after-test\", \"files\": [\"dmesg-after-test.txt\", "
		       "\"failures.txt\"], \"note\": \"the check's outcome: "
		       "fail, informational (result: info)\"}",
		       "{\"status\": \"pass\", \"note\": \"check 'dmesg' is "
		       "informational\", \"files\": [\"output.txt\"]}");
	run_free(&r);

	/* failure-pattern instead of tmt's defaults. */
	run(s, &r, "/check/dmesg-pattern");
	expect_results(&r, 3, DMESG_PASS("before-test"),
		       DMESG_FAIL("after-test"),
		       "{\"status\": \"fail\", \"note\": \"check 'dmesg' "
		       "failed\", \"files\": [\"output.txt\"]}");
	expect_text(&r, "check/dmesg/after-test/failures.txt",
		    "[ 5.100000] [Firmware Bug]: bad table\n");
	run_free(&r);

	/* A start that asks for a restart: after-test skipped; all starts'
	 * checks are in the artifacts, the last one's make the verdict. */
	run(s, &r, "/check/dmesg-restart");
	assert_int_equal(r.exit_code, 0);
	expect_results(&r, 5, DMESG_PASS("before-test"),
		       "{\"name\": \"check/dmesg/after-test\", \"status\": "
		       "\"skip\", \"check\": \"dmesg\", \"event\": "
		       "\"after-test\", \"note\": \"~asked for a restart "
		       "(exit code 3)\"}",
		       DMESG_PASS("before-test"), DMESG_PASS("after-test"),
		       PASS_OUT);
	run_free(&r);

	run(s, &r, "/check/dmesg-disabled");
	expect_results(&r, 1, PASS_OUT);
	run_free(&r);

	/* No privileges to read the buffer: skipped, as tmt skips it. */
	touch_state("dmesg-denied", "");
	run(s, &r, "/check/dmesg-denied");
	assert_int_equal(r.rc, 0);
	expect_results(&r, 3,
		       "{\"name\": \"check/dmesg/before-test\", \"status\": "
		       "\"skip\", \"check\": \"dmesg\", \"event\": "
		       "\"before-test\", \"note\": \"~lacks the privileges\"}",
		       "{\"name\": \"check/dmesg/after-test\", \"status\": "
		       "\"skip\", \"check\": \"dmesg\", \"event\": "
		       "\"after-test\", \"note\": \"~lacks the privileges\"}",
		       PASS_OUT);
	run_free(&r);
	session_close(s);
	fakes_off();
}

#define AVC_FAIL                                                               \
	"{\"name\": \"check/avc/after-test\", \"status\": \"fail\", "          \
	"\"check\": \"avc\", \"event\": \"after-test\", \"files\": "           \
	"[\"avc.txt\", \"failures.txt\"]}"

/* avc with a fake ausearch (checkpoint before, "-ts checkpoint" after),
 * sestatus and rpm: denials since the test started fail it, tmt's
 * ignored policyload notice aside; no result before the test, as tmt. */
static void test_check_avc(void **state)
{
	struct session *s;
	struct run r;
	char *path, *log;

	(void)state;
	fakes_on(true);
	s = session_open(NULL);
	run(s, &r, "/check/avc-clean");
	assert_int_equal(r.rc, 0);
	expect_results(&r, 2,
		       "{\"name\": \"check/avc/after-test\", \"status\": "
		       "\"pass\", \"check\": \"avc\", \"event\": "
		       "\"after-test\", \"files\": [\"avc.txt\"]}",
		       PASS_OUT);
	run_free(&r);
	path = xsprintf("%s/state/ausearch.log", g.base);
	log = slurp(path, NULL);
	assert_non_null(log);
	assert_non_null(strstr(log, "-m AVC,USER_AVC,SELINUX_ERR\n"));
	assert_non_null(strstr(log, "-i -ts checkpoint\n"));
	free(log);
	free(path);

	run(s, &r, "/check/avc-denial");
	assert_int_equal(r.rc, 0);
	expect_results(&r, 4, DMESG_PASS("before-test"), AVC_FAIL,
		       DMESG_PASS("after-test"),
		       "{\"status\": \"fail\", \"note\": \"check 'avc' "
		       "failed\", \"files\": [\"output.txt\"]}");
	expect_text(&r, "check/avc/after-test/failures.txt",
		    "type=AVC msg=audit(1.0:1): avc:  denied  { read } for "
		    "pid=1\n");
	run_free(&r);

	/* ignore-pattern: a denial the test expects. */
	run(s, &r, "/check/avc-ignore");
	expect_results(&r, 2,
		       "{\"name\": \"check/avc/after-test\", \"status\": "
		       "\"pass\", \"check\": \"avc\", \"event\": "
		       "\"after-test\", \"files\": [\"avc.txt\"]}",
		       PASS_OUT);
	run_free(&r);

	/* A failing test stays failed; the check's note is added. */
	run(s, &r, "/check/avc-fail-exit");
	assert_int_equal(r.exit_code, 1);
	expect_results(&r, 2, AVC_FAIL,
		       "{\"status\": \"fail\", \"note\": \"check 'avc' "
		       "failed\", \"files\": [\"output.txt\"]}");
	run_free(&r);
	session_close(s);

	/* No SELinux: skipped after the test, with a note. */
	fakes_on(false);
	s = session_open(NULL);
	run(s, &r, "/check/avc-clean");
	expect_results(&r, 2,
		       "{\"name\": \"check/avc/after-test\", \"status\": "
		       "\"skip\", \"check\": \"avc\", \"event\": "
		       "\"after-test\", \"note\": \"~SELinux is not "
		       "available\"}",
		       PASS_OUT);
	run_free(&r);
	session_close(s);
	fakes_off();
}

/* A check atex does not run, or a bad key: an error naming the test and
 * the check; the test does not run. */
static void test_check_refused(void **state)
{
	struct session *s = session_open(NULL);
	struct run r;

	(void)state;
	run(s, &r, "/check/unknown");
	assert_int_equal(r.rc, ATEX_EFORMAT);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~/check/unknown: check 'journal': atex "
		       "has no such check\"}");
	run_free(&r);
	run(s, &r, "/check/bad-result");
	assert_int_equal(r.rc, ATEX_EFORMAT);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~/check/bad-result: check 'avc': result: "
		       "not respect, xfail or info\"}");
	run_free(&r);
	run(s, &r, "/check/dmesg-bad-pattern");
	assert_int_equal(r.rc, ATEX_EFORMAT);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~/check/dmesg-bad-pattern: check 'dmesg': "
		       "failure-pattern: not a pattern\"}");
	run_free(&r);
	run(s, &r, "/check/dmesg-bad-regex");
	assert_int_equal(r.rc, ATEX_EFORMAT);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~/check/dmesg-bad-regex: check 'avc': "
		       "ignore-pattern: \"}");
	run_free(&r);
	run(s, &r, "/check/no-how");
	assert_int_equal(r.rc, ATEX_EFORMAT);
	expect_results(&r, 1,
		       "{\"status\": \"error\", \"files\": [\"output.txt\"], "
		       "\"note\": \"~/check/no-how: check 1: no 'how'\"}");
	run_free(&r);
	session_close(s);
}

static int setup(void **state)
{
	const char *trees = getenv("ATEX_TEST_TREES");

	(void)state;
	if (!trees)
		return -1;
	snprintf(orig_path, sizeof(orig_path), "%s",
		 getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	snprintf(g.tree, sizeof(g.tree), "%s/restart-checks", trees);
	snprintf(g.base, sizeof(g.base), "/tmp/atex-restarttest-XXXXXX");
	if (!mkdtemp(g.base))
		return -1;
	return atex_local_connection_new(&g.conn, NULL) ? -1 : 0;
}

static int teardown(void **state)
{
	char *cmd = xsprintf("rm -rf -- '%s'", g.base);

	(void)state;
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", g.base);
	free(cmd);
	atex_connection_free(g.conn);
	return 0;
}

int main(void)
{
	const struct CMUnitTest all[] = {
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_restart_over_max),
		cmocka_unit_test(test_restart_with_reboot_refused),
		cmocka_unit_test(test_restart_with_reboot),
		cmocka_unit_test(test_restart_bad_keys),
		cmocka_unit_test(test_check_dmesg_real),
		cmocka_unit_test(test_check_dmesg),
		cmocka_unit_test(test_check_avc),
		cmocka_unit_test(test_check_refused),
	};

	return cmocka_run_group_tests(all, setup, teardown);
}
