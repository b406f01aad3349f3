/*
 * test_testingfarm.c - the Testing Farm provisioner's pure parts: the
 * reservation request's body for every option, the pipeline.log reader
 * (colours, partial lines, hosts that are names or addresses, lines that
 * almost match), and options refused with a message naming the option.
 * The service itself is served by tests/integration/tf-server.py to
 * tests/integration/test_testingfarm.c.
 */
#include "helpers.h"

#include <jansson.h>

#include "atex/provisioner.h"
#include "provisioner/testingfarm_private.h"
#include "util/util.h"

#define PUB "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@laptop.example\n"

static json_t *body_of(const struct atex_testingfarm_provisioner_options *o,
		       const char *cidr)
{
	char *text = atex_tf_request_body(o, PUB, cidr);
	json_t *v;

	assert_non_null(text);
	v = json_loads(text, 0, NULL);
	assert_non_null(v);
	free(text);
	return v;
}

static const char *str_at(json_t *v, const char *path)
{
	char key[256];
	const char *p = path;

	while (*p) {
		size_t n = strcspn(p, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		if (json_is_array(v))
			v = json_array_get(v, (size_t)atoi(key));
		else
			v = json_object_get(v, key);
		p += n + (p[n] == '.');
	}
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *at(json_t *v, const char *path)
{
	char key[256];
	const char *p = path;

	while (*p && v) {
		size_t n = strcspn(p, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		v = json_is_array(v) ? json_array_get(v, (size_t)atoi(key))
				     : json_object_get(v, key);
		p += n + (p[n] == '.');
	}
	return v;
}

static void test_body_minimal(void **state)
{
	struct atex_testingfarm_provisioner_options o =
		ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT;
	json_t *b, *env;
	char *key;

	(void)state;
	o.compose = "Fedora-41";
	b = body_of(&o, NULL);
	assert_string_equal(str_at(b, "test.fmf.url"),
			    "https://gitlab.com/testing-farm/tests");
	assert_string_equal(str_at(b, "test.fmf.ref"), "main");
	assert_string_equal(str_at(b, "test.fmf.path"), ".");
	assert_string_equal(str_at(b, "test.fmf.name"),
			    "/testing-farm/reserve");
	assert_int_equal(json_array_size(at(b, "environments")), 1);
	assert_string_equal(str_at(b, "environments.0.arch"), "x86_64");
	assert_string_equal(str_at(b, "environments.0.os.compose"),
			    "Fedora-41");
	assert_int_equal(json_integer_value(at(b, "settings.pipeline.timeout")),
			 60);
	env = at(b, "environments.0");
	assert_null(json_object_get(env, "pool"));
	assert_null(json_object_get(env, "hardware"));
	assert_null(json_object_get(env, "kickstart"));
	assert_null(json_object_get(env, "variables"));
	assert_null(at(env, "settings.pipeline"));
	/* No ingress rule off the public ranch. */
	assert_null(
		at(env, "settings.provisioning.security_group_rules_ingress"));
	assert_string_equal(
		str_at(env, "settings.provisioning.tags.ArtemisUseSpot"),
		"false");
	/* The key with atex's comment instead of the user's. */
	key = atex_tf_base64(
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample "
		"atex@tf\n",
		strlen("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample "
		       "atex@tf\n"));
	assert_string_equal(
		str_at(env, "secrets.TF_RESERVATION_AUTHORIZED_KEYS_BASE64"),
		key);
	assert_int_equal(json_object_size(json_object_get(env, "secrets")), 1);
	free(key);
	json_decref(b);
}

static void test_body_every_option(void **state)
{
	struct atex_testingfarm_provisioner_options o =
		ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT;
	json_t *b, *env, *rules, *rule;

	(void)state;
	o.compose = "CentOS-Stream-9";
	o.arch = "aarch64";
	o.pool = "beaker";
	o.hardware = "{\"memory\": \">= 8 GiB\", \"cpu\": {\"processors\": 4}}";
	o.kickstart = "{\"post-install\": \"echo hi\"}";
	o.variables = "{\"A\": \"1\"}";
	o.secrets = "{\"S\": \"hush\"}";
	o.tags = "{\"BusinessUnit\": \"atex\", \"ArtemisUseSpot\": \"true\"}";
	o.timeout_min = 720;
	o.skip_guest_setup = true;
	b = body_of(&o, "203.0.113.7/32");
	env = at(b, "environments.0");
	assert_string_equal(str_at(env, "arch"), "aarch64");
	assert_string_equal(str_at(env, "pool"), "beaker");
	assert_string_equal(str_at(env, "hardware.memory"), ">= 8 GiB");
	assert_int_equal(json_integer_value(at(env, "hardware.cpu.processors")),
			 4);
	assert_string_equal(str_at(env, "kickstart.post-install"), "echo hi");
	assert_string_equal(str_at(env, "variables.A"), "1");
	/* The caller's secrets kept, the key added. */
	assert_string_equal(str_at(env, "secrets.S"), "hush");
	assert_non_null(
		str_at(env, "secrets.TF_RESERVATION_AUTHORIZED_KEYS_BASE64"));
	/* Given tags win over the default. */
	assert_string_equal(
		str_at(env, "settings.provisioning.tags.ArtemisUseSpot"),
		"true");
	assert_string_equal(
		str_at(env, "settings.provisioning.tags.BusinessUnit"), "atex");
	assert_true(
		json_is_true(at(env, "settings.pipeline.skip_guest_setup")));
	assert_int_equal(json_integer_value(at(b, "settings.pipeline.timeout")),
			 720);
	rules = at(env, "settings.provisioning.security_group_rules_ingress");
	assert_int_equal(json_array_size(rules), 1);
	rule = json_array_get(rules, 0);
	assert_string_equal(str_at(rule, "type"), "ingress");
	assert_string_equal(str_at(rule, "protocol"), "-1");
	assert_string_equal(str_at(rule, "cidr"), "203.0.113.7/32");
	assert_int_equal(json_integer_value(json_object_get(rule, "port_min")),
			 0);
	assert_int_equal(json_integer_value(json_object_get(rule, "port_max")),
			 65535);
	json_decref(b);
}

static void test_body_bad_key(void **state)
{
	struct atex_testingfarm_provisioner_options o =
		ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT;

	(void)state;
	o.compose = "Fedora-41";
	assert_null(atex_tf_request_body(&o, "ssh-ed25519\n", NULL));
	assert_int_equal(atex_error_last_code(), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "public key"));
}

static void test_base64(void **state)
{
	static const char *const cases[][2] = {
		{"", ""},
		{"f", "Zg=="},
		{"fo", "Zm8="},
		{"foo", "Zm9v"},
		{"foob", "Zm9vYg=="},
		{"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
	};

	(void)state;
	for (size_t i = 0; i < ATEX_ARRAY_SIZE(cases); i++) {
		char *b = atex_tf_base64(cases[i][0], strlen(cases[i][0]));

		assert_string_equal(b, cases[i][1]);
		free(b);
	}
}

static void check_guest(const char *line, const char *user, const char *host)
{
	char *u = NULL, *h = NULL;
	bool ok = atex_tf_parse_guest(line, &u, &h);

	if (!user) {
		assert_false(ok);
		assert_null(u);
		assert_null(h);
		return;
	}
	assert_true(ok);
	assert_string_equal(u, user);
	assert_string_equal(h, host);
	free(u);
	free(h);
}

static void test_guest_line(void **state)
{
	(void)state;
	check_guest("[12:00:01] [+] [abc] Guest is ready: ArtemisGuest("
		    "d1ab-guest, root@10.0.0.5, arch=x86_64, compose=F)",
		    "root", "10.0.0.5");
	check_guest("[x] Guest is ready: ArtemisGuest(g, ec2-user@"
		    "ip-10-0-0-5.ec2.internal, arch=aarch64)",
		    "ec2-user", "ip-10-0-0-5.ec2.internal");
	check_guest("[x] Guest is ready: ArtemisGuest(g, root@2001:db8::1, "
		    "arch=s390x)",
		    "root", "2001:db8::1");
	/* Almost: no arch, no user, an empty name, no "] " before. */
	check_guest("[x] Guest is ready: ArtemisGuest(g, root@10.0.0.5)", NULL,
		    NULL);
	check_guest("[x] Guest is ready: ArtemisGuest(g, 10.0.0.5, arch=x)",
		    NULL, NULL);
	check_guest("[x] Guest is ready: ArtemisGuest(, root@h, arch=x)", NULL,
		    NULL);
	check_guest("Guest is ready: ArtemisGuest(g, root@h, arch=x)", NULL,
		    NULL);
	check_guest("[x] Guest is ready: ArtemisGuest(g, ro ot@h, arch=x)",
		    NULL, NULL);
	check_guest("[x] Guest is ready: ArtemisGuest(g, @h, arch=x)", NULL,
		    NULL);
}

static void test_strip_ansi(void **state)
{
	char *s;

	(void)state;
	s = atex_tf_strip_ansi("\033[32m[12:00]\033[0m \033[1;31mred\033[m"
			       "\r \033]0;title\a\033(Bend");
	assert_string_equal(s, "[12:00] red end");
	free(s);
	s = atex_tf_strip_ansi("cut \033[3");
	assert_string_equal(s, "cut ");
	free(s);
}

static void test_log_feed(void **state)
{
	struct atex_tf_log l = {0};
	const char *part1 = "[1] [+] [id] \033[32mGuest is ready: Artem";
	const char *part2 = "isGuest(g, root@127.0.0.1, arch=x86_64)\033[0m\n"
			    "[2] [+] [id] starting tes";
	const char *part3 = "ts execution\n";
	char *tail;

	(void)state;
	/* A "starting tests execution" before the guest line counts not. */
	assert_int_equal(
		atex_tf_log_feed(&l, "[0] ] starting tests execution\n", 31),
		0);
	assert_false(l.tests_started);
	assert_int_equal(atex_tf_log_feed(&l, part1, strlen(part1)), 0);
	assert_null(l.user);
	assert_int_equal(atex_tf_log_feed(&l, part2, strlen(part2)), 0);
	assert_string_equal(l.user, "root");
	assert_string_equal(l.host, "127.0.0.1");
	/* "starting tes" is not the marker yet. */
	assert_false(l.tests_started);
	tail = atex_tf_log_tail(&l);
	assert_non_null(strstr(tail, "starting tes (no newline yet)\n"));
	free(tail);
	assert_int_equal(atex_tf_log_feed(&l, part3, strlen(part3)), 0);
	assert_true(l.tests_started);
	tail = atex_tf_log_tail(&l);
	/* Stripped of colours, oldest first. */
	assert_string_equal(tail,
			    "[0] ] starting tests execution\n"
			    "[1] [+] [id] Guest is ready: ArtemisGuest(g, "
			    "root@127.0.0.1, arch=x86_64)\n"
			    "[2] [+] [id] starting tests execution\n");
	free(tail);
	atex_tf_log_clear(&l);
}

/* A log cut short: its last line, without a newline, still counts once
 * its marker is whole (a guest line cut before ", arch=" does not). */
static void test_log_cut_short(void **state)
{
	struct atex_tf_log l = {0};
	const char *cut = "[1] ] Guest is ready: ArtemisGuest(g, root@10.1.1.1";
	const char *rest = ", arch=x86_64)\n[2] ] starting tests execution";

	(void)state;
	assert_int_equal(atex_tf_log_feed(&l, cut, strlen(cut)), 0);
	assert_null(l.user);
	assert_int_equal(atex_tf_log_feed(&l, rest, strlen(rest)), 0);
	assert_string_equal(l.host, "10.1.1.1");
	assert_true(l.tests_started);
	atex_tf_log_clear(&l);
}

static void test_log_tail_keeps_last(void **state)
{
	struct atex_tf_log l = {0};
	char line[64], *tail;

	(void)state;
	for (int i = 0; i < 50; i++) {
		snprintf(line, sizeof(line), "line %d\n", i);
		assert_int_equal(atex_tf_log_feed(&l, line, strlen(line)), 0);
	}
	tail = atex_tf_log_tail(&l);
	assert_null(strstr(tail, "line 29\n"));
	assert_non_null(strstr(tail, "line 30\n"));
	assert_true(strlen(tail) > 8 &&
		    !strcmp(tail + strlen(tail) - 8, "line 49\n"));
	free(tail);
	atex_tf_log_clear(&l);
}

/* _new's message for the options, or NULL when accepted. */
static void expect_refused(const struct atex_testingfarm_provisioner_options *o,
			   const char *words)
{
	atex_provisioner *p = NULL;

	assert_int_equal(atex_testingfarm_provisioner_new(&p, o), ATEX_EINVAL);
	assert_null(p);
	if (!strstr(atex_error_last(), words))
		fail_msg("\"%s\" not in \"%s\"", words, atex_error_last());
}

static void test_options(void **state)
{
	struct atex_testingfarm_provisioner_options o =
		ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT;
	atex_provisioner *p = NULL;
	struct atex_testingfarm_stats st;

	(void)state;
	expect_refused(&o, "compose: none given");
	o.compose = "Fedora-41";
	o.hardware = "{\"memory\": ";
	expect_refused(&o, "hardware: not a JSON object: ");
	o.hardware = "[1, 2]";
	expect_refused(&o, "hardware: not a JSON object: a JSON array");
	o.hardware = NULL;
	o.kickstart = "\"text\"";
	expect_refused(&o, "kickstart: not a JSON object");
	o.kickstart = NULL;
	o.variables = "42";
	expect_refused(&o, "variables: not a JSON object");
	o.variables = NULL;
	o.secrets = "nope";
	expect_refused(&o, "secrets: not a JSON object");
	o.secrets = NULL;
	o.tags = "null";
	expect_refused(&o, "tags: not a JSON object");
	o.tags = NULL;
	o.arch = "x86\n64";
	expect_refused(&o, "arch: control character");
	o.arch = NULL;
	o.count = -1;
	expect_refused(&o, "count: -1");
	o.count = 0;
	o.max_retries = -2;
	expect_refused(&o, "max_retries: -2");
	o.max_retries = 0;
	o.api.url = "ftp://x";
	expect_refused(&o, "api.url");
	o.api.url = "http://127.0.0.1:9/";
	o.version = 99;
	expect_refused(&o, "options version 99");
	o.version = ATEX_TESTINGFARM_PROVISIONER_OPTIONS_VERSION;

	/* Accepted; named by compose and arch; stats before anything. */
	o.arch = "s390x";
	assert_int_equal(atex_testingfarm_provisioner_new(&p, &o), 0);
	assert_string_equal(atex_provisioner_name(p),
			    "testingfarm:Fedora-41/s390x");
	assert_int_equal(atex_testingfarm_provisioner_stats(&st, p), 0);
	assert_int_equal(st.submitted + st.failed + st.ready + st.alive, 0);
	/* Not started: provision refused. */
	assert_int_equal(atex_provisioner_provision(p, 1), ATEX_EINVAL);
	atex_provisioner_free(p);

	/* stats and login refuse other kinds. */
	assert_int_equal(atex_local_provisioner_new(&p, 1), 0);
	assert_int_equal(atex_testingfarm_provisioner_stats(&st, p),
			 ATEX_EINVAL);
	atex_provisioner_free(p);
}

/* The script is embedded, and is bash that parses. */
static void test_cleaning_script(void **state)
{
	char *dir = tmpdir_new(), path[4096], cmd[4200];
	FILE *f;

	(void)state;
	assert_int_equal(atex_tf_files_count, 1);
	assert_string_equal(atex_tf_files[0].name, "tf-cleaning.sh");
	assert_true(atex_tf_files[0].len > 100);
	snprintf(path, sizeof(path), "%s/c.sh", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite(atex_tf_files[0].contents, 1, atex_tf_files[0].len, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "bash -n %s", path);
	assert_int_equal(system(cmd), 0);
	unlink(path);
	rmdir(dir);
	free(dir);
}

/* No API token anywhere: start says how to give one. */
static void test_start_without_token(void **state)
{
	struct atex_testingfarm_provisioner_options o =
		ATEX_TESTINGFARM_PROVISIONER_OPTIONS_INIT;
	atex_provisioner *p = NULL;

	(void)state;
	unsetenv("TESTING_FARM_API_TOKEN");
	o.compose = "Fedora-41";
	o.api.url = "http://127.0.0.1:9";
	assert_int_equal(atex_testingfarm_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), ATEX_EINVAL);
	assert_non_null(strstr(atex_error_last(), "TESTING_FARM_API_TOKEN"));
	atex_provisioner_free(p);
}

static void test_valid_id(void **state)
{
	char long_id[130];

	(void)state;
	assert_true(atex_tf_valid_id("9f3c2a10-1b2c-4d5e-8f90-0123456789ab"));
	assert_true(atex_tf_valid_id("a.b_c-D"));
	assert_false(atex_tf_valid_id(""));
	assert_false(atex_tf_valid_id(NULL));
	assert_false(atex_tf_valid_id("."));
	assert_false(atex_tf_valid_id(".."));
	assert_false(atex_tf_valid_id("../x"));
	assert_false(atex_tf_valid_id("a b"));
	assert_false(atex_tf_valid_id("a?b"));
	memset(long_id, 'a', 128);
	long_id[128] = '\0';
	assert_true(atex_tf_valid_id(long_id));
	long_id[128] = 'a';
	long_id[129] = '\0';
	assert_false(atex_tf_valid_id(long_id));
}

static void test_redact(void **state)
{
	const char *in = "Bearer tok1 and tok1tok1, t";
	char *out;

	(void)state;
	out = atex_tf_redact(in, strlen(in), "tok1");
	assert_string_equal(out, "Bearer *** and ******, t");
	free(out);
	out = atex_tf_redact(in, strlen(in), NULL);
	assert_string_equal(out, in);
	free(out);
	out = atex_tf_redact(in, 6, "Bearer tok1");
	assert_string_equal(out, "Bearer");
	free(out);
}

/* Tests started (or the key in) with no Guest line parsed. */
static void test_log_no_guest(void **state)
{
	struct atex_tf_log l = {0};
	const char *odd = "[1] ] Guest is ready: NewGuest(name=g, a=root@h)\n"
			  "[2] ] starting tests execution\n";
	const char *good = "[1] ] Guest is ready: ArtemisGuest(g, root@h, "
			   "arch=x86_64)\n[2] ] starting tests execution\n"
			   "[3] [reservation] machine is reserved\n";

	(void)state;
	assert_int_equal(atex_tf_log_feed(&l, odd, strlen(odd)), 0);
	assert_true(l.no_guest);
	assert_null(l.user);
	atex_tf_log_clear(&l);
	memset(&l, 0, sizeof(l));
	assert_int_equal(atex_tf_log_feed(&l, good, strlen(good)), 0);
	assert_false(l.no_guest);
	assert_true(l.tests_started);
	atex_tf_log_clear(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_minimal),
		cmocka_unit_test(test_body_every_option),
		cmocka_unit_test(test_body_bad_key),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_guest_line),
		cmocka_unit_test(test_strip_ansi),
		cmocka_unit_test(test_log_feed),
		cmocka_unit_test(test_log_cut_short),
		cmocka_unit_test(test_log_tail_keeps_last),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_cleaning_script),
		cmocka_unit_test(test_start_without_token),
		cmocka_unit_test(test_valid_id),
		cmocka_unit_test(test_log_no_guest),
		cmocka_unit_test(test_redact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
