/*
 * test_ansible_plan.c - `how: ansible` prepare and finish phases as the
 * discovery reads them (playbook and playbooks in one list, extra-args a
 * string, local playbooks checked before any system is reserved) and
 * extra-args split as tmt splits them (shlex.split). Running them:
 * tests/integration/cli-ansible.sh.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "atex/fmf.h"
#include "executor/fmf_private.h"
#include "util/util.h"

/* A tree with .fmf/version, main.fmf = `plans` and pb/setup.yml. */
static char *tree_make(const char *plans)
{
	char *root = atex_strdup("/tmp/atex-ansible-plan-XXXXXX");
	char path[4096];
	FILE *f;

	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/.fmf", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/pb", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/.fmf/version", root);
	f = fopen(path, "w");
	fputs("1\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/pb/setup.yml", root);
	f = fopen(path, "w");
	fputs("- hosts: all\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/main.fmf", root);
	f = fopen(path, "w");
	fputs(plans, f);
	fclose(f);
	return root;
}

static void tree_remove(char *root)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(root);
}

static const char plans[] =
	"/plans:\n"
	"  execute: {how: tmt}\n"
	"  discover: {how: fmf}\n"
	"  /both:\n"
	"    prepare:\n"
	"      how: ansible\n"
	"      playbook: pb/setup.yml\n"
	"      playbooks: [/pb/setup.yml, 'file://pb/setup.yml',\n"
	"                  ns.coll.play, 'https://127.0.0.1:1/x.yml']\n"
	"      extra-args: -vv\n"
	"    finish: {how: ans, playbook: pb/setup.yml}\n"
	"  /badargs:\n"
	"    prepare: {how: ansible, playbook: pb/setup.yml,\n"
	"              extra-args: [-v]}\n"
	"  /missing:\n"
	"    finish: {name: fin, how: ansible, playbook: [pb/setup.yml,\n"
	"             pb/nope.yml]}\n"
	"  /escapes:\n"
	"    prepare: {name: up, how: ansible,\n"
	"              playbook: pb/../../x/setup.yml}\n"
	"  /empty:\n"
	"    prepare: {name: e, how: ansible, playbook: ''}\n"
	"  /dir:\n"
	"    prepare: {name: d, how: ansible, playbook: pb}\n"
	"  /unknownkey:\n"
	"    prepare: {how: ansible, playbook: pb/setup.yml, become: true}\n";

static int discover(atex_fmf_discovery **d, const char *root, const char *plan,
		    bool tests_only)
{
	struct atex_fmf_discover_options o = ATEX_FMF_DISCOVER_OPTIONS_INIT;

	o.plan = plan;
	o.tests_only = tests_only;
	return atex_fmf_discover(d, root, &o);
}

static void phases_read(void **state)
{
	char *root = tree_make(plans);
	atex_fmf_discovery *d = NULL;
	json_t *phase;
	char *s;

	(void)state;
	assert_int_equal(discover(&d, root, "/plans/both", false), 0);
	phase = json_array_get(atex_fmf_discovery_prepare(d), 0);
	s = json_dumps(json_object_get(phase, "playbook"), JSON_COMPACT);
	assert_string_equal(s, "[\"pb/setup.yml\",\"/pb/setup.yml\","
			       "\"file://pb/setup.yml\",\"ns.coll.play\","
			       "\"https://127.0.0.1:1/x.yml\"]");
	free(s);
	assert_null(json_object_get(phase, "playbooks"));
	assert_string_equal(
		json_string_value(json_object_get(phase, "extra-args")), "-vv");
	/* tmt's prefix rule: `ans` is ansible. */
	phase = json_array_get(atex_fmf_discovery_finish(d), 0);
	assert_string_equal(json_string_value(json_object_get(phase, "how")),
			    "ansible");
	assert_int_equal(json_array_size(json_object_get(phase, "playbook")),
			 1);
	atex_fmf_discovery_free(d);

	assert_int_equal(discover(&d, root, "/plans/badargs", false),
			 ATEX_EFORMAT);
	assert_non_null(
		strstr(atex_error_last(),
		       "plan /plans/badargs: prepare phase 'default-0' "
		       "(how: ansible): 'extra-args' must be a string"));
	assert_int_equal(discover(&d, root, "/plans/missing", false),
			 ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(),
			       "main.fmf: plan /plans/missing: finish phase "
			       "'fin' (how: ansible): playbook 'pb/nope.yml' "
			       "does not exist in"));
	assert_int_equal(discover(&d, root, "/plans/escapes", false),
			 ATEX_EFORMAT);
	assert_non_null(
		strstr(atex_error_last(),
		       "prepare phase 'up' (how: ansible): playbook "
		       "'pb/../../x/setup.yml' is not inside the tree"));
	/* An empty name and a directory: refused as a missing playbook
	 * is, not handed to ansible-playbook. */
	assert_int_equal(discover(&d, root, "/plans/empty", false),
			 ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(),
			       "main.fmf: plan /plans/empty: prepare phase 'e' "
			       "(how: ansible): playbook '' (empty)"));
	assert_int_equal(discover(&d, root, "/plans/dir", false), ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(),
			       "main.fmf: plan /plans/dir: prepare phase 'd' "
			       "(how: ansible): playbook 'pb' is a directory"));
	assert_int_equal(discover(&d, root, "/plans/unknownkey", false),
			 ATEX_EFORMAT);
	assert_non_null(strstr(atex_error_last(), "key 'become'"));
	/* Listing tests reads no playbook. */
	assert_int_equal(discover(&d, root, "/plans/missing", true), 0);
	atex_fmf_discovery_free(d);
	tree_remove(root);
}

/* Splits `s` and joins the words with '|'. */
static char *split(const char *s, int *rc)
{
	struct atex_vec v = ATEX_VEC_INIT;
	struct atex_buf b = ATEX_BUF_INIT;
	char *out;

	*rc = atex_fmf_shell_split(&v, s);
	for (size_t i = 0; i < v.len; i++)
		atex_buf_printf(&b, "%s%s", i ? "|" : "", (char *)v.items[i]);
	out = atex_strdup(atex_buf_cstr(&b));
	atex_buf_free(&b);
	atex_vec_free_all(&v, free);
	return out;
}

static void extra_args_split(void **state)
{
	/* What Python's shlex.split gives for each. */
	static const char *const cases[][2] = {
		{"", ""},
		{"  -v  ", "-v"},
		{"-e 'a=b c' -e \"d='e f'\"", "-e|a=b c|-e|d='e f'"},
		{"a\\ b \"x\\\"y\\$z\" ''", "a b|x\"y\\$z|"},
		{"--limit=x\t-vvv\n--check", "--limit=x|-vvv|--check"},
		{"it's\"\"", NULL},
		{"trailing\\", NULL},
	};
	int rc;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = split(cases[i][0], &rc);

		if (cases[i][1]) {
			assert_int_equal(rc, 0);
			assert_string_equal(got, cases[i][1]);
		} else {
			assert_int_equal(rc, ATEX_EFORMAT);
		}
		free(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(phases_read),
		cmocka_unit_test(extra_args_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
