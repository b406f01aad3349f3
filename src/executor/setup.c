/*
 * setup.c - the setup of one test start: bash code the wrapper
 * (remote/wrapper.sh) reads from its stdin and evaluates. Every value is
 * shell-quoted, so a test's name, script, metadata or environment cannot
 * break out of it; the code ends with a random sentinel line, so no value
 * can end it early either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor/fmf_private.h"
#include "executor/library.h"
#include "util/process.h"

/* The packages of a `require`/`recommend` value (a string or a list):
 * its strings but libraries (library.c fetched those). */
static int put_package_list(struct atex_buf *b, json_t *value)
{
	size_t i;
	json_t *pkg;
	int rc = 0;

	if (json_is_string(value) && !fmf_library_entry(value))
		return atex_shell_quote(b, json_string_value(value));
	json_array_foreach(value, i, pkg)
	{
		if (!json_is_string(pkg) || fmf_library_entry(pkg))
			continue;
		rc |= atex_buf_putc(b, ' ');
		rc |= atex_shell_quote(b, json_string_value(pkg));
	}
	return rc;
}

/* The test's packages, then those of its libraries. */
static int put_packages(struct atex_buf *b, const char *var, json_t *value,
			json_t *from_libs)
{
	int rc = atex_buf_printf(b, "%s=(", var);

	rc |= put_package_list(b, value);
	rc |= atex_buf_putc(b, ' ');
	rc |= put_package_list(b, from_libs);
	return rc | atex_buf_puts(b, ")\n");
}

static int put_var(struct atex_buf *b, const char *name, const char *value)
{
	int rc = atex_buf_printf(b, "%s=", name);

	rc |= atex_shell_quote(b, value);
	return rc | atex_buf_putc(b, '\n');
}

/* Whether `name` can be a shell variable (others would break `export`). */
static bool valid_name(const char *name, size_t len)
{
	if (!len || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}

static int put_export(struct atex_buf *b, const char *name, size_t name_len,
		      const char *value)
{
	int rc;

	if (!valid_name(name, name_len)) {
		atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
			 "environment variable '%.*s': not a valid name, "
			 "left out",
			 (int)name_len, name);
		return 0;
	}
	rc = atex_buf_printf(b, "\texport %.*s=", (int)name_len, name);
	rc |= atex_shell_quote(b, value);
	return rc | atex_buf_putc(b, '\n');
}

/* An fmf `environment` object: strings, numbers and booleans. */
static int put_env_object(struct atex_buf *b, json_t *obj)
{
	const char *key;
	json_t *value;
	char num[64];
	int rc = 0;

	json_object_foreach(obj, key, value)
	{
		const char *s = json_string_value(value);

		if (json_is_integer(value))
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(value));
		else if (json_is_real(value))
			snprintf(num, sizeof(num), "%g",
				 json_real_value(value));
		else if (json_is_boolean(value))
			snprintf(num, sizeof(num), "%s",
				 json_is_true(value) ? "True" : "False");
		if (!s && (json_is_number(value) || json_is_boolean(value)))
			s = num;
		if (s)
			rc |= put_export(b, key, strlen(key), s);
	}
	return rc;
}

/* A "NAME=VALUE" list. */
static int put_env_list(struct atex_buf *b, const char *const *list)
{
	int rc = 0;

	for (; list && *list; list++) {
		const char *eq = strchr(*list, '=');

		if (eq)
			rc |= put_export(b, *list, (size_t)(eq - *list),
					 eq + 1);
	}
	return rc;
}

static int put_builtins(struct atex_buf *b, const struct fmf_executor *fx,
			const struct test_start *t)
{
	char n[32], restarts[32], fd[16];
	int rc = 0;

	snprintf(n, sizeof(n), "%d", t->reboots);
	snprintf(restarts, sizeof(restarts), "%d", t->restarts);
	snprintf(fd, sizeof(fd), "%d", FMF_CONTROL_FD);
	rc |= put_export(b, "ATEX_TEST_CONTROL", 17, fd);
	rc |= put_export(b, "TMT_TREE", 8, t->tree);
	rc |= atex_buf_printf(b, "\texport TMT_PLAN_ENVIRONMENT_FILE=");
	rc |= atex_shell_quote(b, fx->workdir);
	rc |= atex_buf_puts(b, "/plan-env\n");
	rc |= put_export(b, "TMT_TEST_NAME", 13, t->name);
	rc |= put_export(b, "TMT_TEST_METADATA", 17, t->meta);
	/* What a test leaves there is uploaded as its files (wrapper.sh). */
	rc |= put_export(b, "TMT_TEST_DATA", 13, t->data_dir);
	/* rlImport REPO/LIB finds WORKDIR/libs/REPO/LIB/lib.sh (library.c). */
	if (t->libs) {
		rc |= atex_buf_printf(b, "\texport BEAKERLIB_LIBRARY_PATH=");
		rc |= atex_shell_quote(b, fx->workdir);
		rc |= atex_buf_puts(b, "/" FMF_LIBRARY_DIR "\n");
	}
	rc |= put_export(b, "TMT_REBOOT_COUNT", 16, n);
	rc |= put_export(b, "TMT_TEST_RESTART_COUNT", 22, restarts);
	/* tmt-reboot reads it: where the system cannot reboot (on this very
	 * machine, in a container without an init), it refuses at once. */
	if (atex_connection_is_local(fx->conn))
		rc |= put_export(b, "ATEX_REBOOT_REFUSED", 19,
				 "the system is the machine atex runs on "
				 "(local connection)");
	else if (!atex_connection_can_reboot(fx->conn)) {
		char *why = atex_sprintf("%s cannot reboot (its connection "
					 "does not survive a reboot)",
					 fmf_conn_name(fx));

		rc |= why ? put_export(b, "ATEX_REBOOT_REFUSED", 19, why) : -1;
		free(why);
	}
	return rc;
}

/* `framework: beakerlib`: what tmt exports for BeakerLib. BEAKERLIB_DIR
 * is one per run (beside TMT_TEST_DATA, which the wrapper empties after
 * each start), so the journal survives reboots; TESTID makes rlReport and
 * rlJournalEnd report through the two commands (remote/beakerlib.sh). */
static int put_beakerlib(struct atex_buf *b, const struct fmf_executor *fx,
			 const struct test_start *t)
{
	const char *id = strrchr(t->data_dir, '/');
	int rc = atex_buf_puts(b, "\texport BEAKERLIB_DIR=");

	rc |= atex_shell_quote(b, t->data_dir);
	rc |= atex_buf_puts(b, "-beakerlib\n");
	rc |= put_export(b, "TESTID", 6, id ? id + 1 : t->data_dir);
	rc |= atex_buf_puts(b, "\texport BEAKERLIB_COMMAND_SUBMIT_LOG=");
	rc |= atex_shell_quote(b, fx->workdir);
	rc |= atex_buf_puts(b, "/atex/bin/tmt-file-submit\n");
	/* As tmt: the rhts name takes rlReport's log file as its third
	 * argument. */
	rc |= atex_buf_puts(b, "\texport BEAKERLIB_COMMAND_REPORT_RESULT=");
	rc |= atex_shell_quote(b, fx->workdir);
	return rc | atex_buf_puts(b, "/atex/bin/rhts-report-result\n");
}

/* The exit codes that start the test again (restart-on-exit-code,
 * integers: fmf.c checked): after such a start, checks are skipped
 * (checks.sh) and a BeakerLib journal is not read yet (wrapper.sh), as
 * tmt does. */
static int put_restart_codes(struct atex_buf *b, json_t *data)
{
	json_t *c, *codes = json_object_get(data, "restart-on-exit-code");
	size_t i;
	int rc;

	if (!codes)
		return 0;
	rc = atex_buf_puts(b, "ATEX_RESTART_CODES=(");
	if (json_is_integer(codes))
		rc |= atex_buf_printf(b, " %" JSON_INTEGER_FORMAT,
				      json_integer_value(codes));
	json_array_foreach(codes, i, c)
	{
		rc |= atex_buf_printf(b, " %" JSON_INTEGER_FORMAT,
				      json_integer_value(c));
	}
	return rc | atex_buf_puts(b, ")\n");
}

/* The bash code the wrapper evaluates (remote/wrapper.sh lists what it
 * expects), ended by the sentinel line. */
int fmf_build_setup(struct atex_buf *b, const struct fmf_executor *fx,
		    const struct test_start *t, const char *sentinel)
{
	json_t *script = json_object_get(t->data, "test");
	char *meta = json_dumps(t->data, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc = meta ? 0 : ATEX_ENOMEM;

	rc |= atex_buf_printf(b, "ATEX_FD=%d\n", FMF_CONTROL_FD);
	rc |= atex_buf_puts(b, "ATEX_PLAN_ENV_FILE=");
	rc |= atex_shell_quote(b, fx->workdir);
	rc |= atex_buf_puts(b, "/plan-env\nATEX_BIN=");
	rc |= atex_shell_quote(b, fx->workdir);
	rc |= atex_buf_puts(b, "/atex/bin\n");
	if (t->no_exitcode)
		rc |= atex_buf_puts(b, "ATEX_NO_EXITCODE=1\n");
	if (t->no_bg_kill)
		rc |= atex_buf_puts(b, "ATEX_NO_BG_KILL=1\n");
	rc |= put_var(b, "ATEX_TEST_DIR", t->test_dir);
	if (t->beakerlib)
		rc |= atex_buf_puts(b, "ATEX_FRAMEWORK=beakerlib\n");
	rc |= atex_buf_printf(b, "ATEX_TTY=%d\n",
			      json_is_true(json_object_get(t->data, "tty")));
	rc |= put_var(b, "ATEX_TEST_SCRIPT", json_string_value(script));
	rc |= put_var(b, "ATEX_METADATA_FILE", t->meta);
	rc |= put_var(b, "ATEX_DATA_DIR", t->data_dir);
	rc |= put_var(b, "ATEX_METADATA", meta ? meta : "");
	rc |= put_packages(b, "ATEX_REQUIRE",
			   json_object_get(t->data, "require"),
			   json_object_get(t->libs, "require"));
	rc |= put_packages(b, "ATEX_RECOMMEND",
			   json_object_get(t->data, "recommend"),
			   json_object_get(t->libs, "recommend"));
	/* Only when this start may really be restarted: after the last
	 * one, checks run and a BeakerLib journal is read, as tmt reads it. */
	if (t->restarts < t->restart_max && !t->restart_refused)
		rc |= put_restart_codes(b, t->data);
	if (json_array_size(t->checks)) {
		json_t *c;
		size_t i;

		rc |= atex_buf_puts(b, "ATEX_CHECKS=(");
		json_array_foreach(t->checks, i, c)
		{
			rc |= atex_buf_putc(b, ' ');
			rc |= atex_shell_quote(
				b,
				json_string_value(json_object_get(c, "how")));
		}
		rc |= atex_buf_puts(b, ")\n");
		json_array_foreach(t->checks, i, c)
		{
			json_t *p = json_object_get(c, "patterns");
			json_t *one;
			size_t k;

			if (!p)
				continue;
			/* ATEX_CHECK_PATTERNS_dmesg, ..._avc */
			rc |= atex_buf_printf(
				b, "ATEX_CHECK_PATTERNS_%s=(",
				json_string_value(json_object_get(c, "how")));
			json_array_foreach(p, k, one)
			{
				rc |= atex_buf_putc(b, ' ');
				rc |= atex_shell_quote(b,
						       json_string_value(one));
			}
			rc |= atex_buf_puts(b, ")\n");
		}
	}
	/* Lowest first: plan environment, (the plan-environment file,
	 * sourced by the wrapper), built-ins, test environment, executor
	 * environment, this run's environment. */
	rc |= atex_buf_puts(b, "atex_env_plan() {\n\t:\n");
	rc |= put_env_object(b, atex_fmf_discovery_environment(fx->disc));
	rc |= atex_buf_puts(b, "}\natex_env_test() {\n\t:\n");
	rc |= put_builtins(b, fx, t);
	if (t->beakerlib)
		rc |= put_beakerlib(b, fx, t);
	rc |= put_env_object(b, json_object_get(t->data, "environment"));
	rc |= put_env_list(b, (const char *const *)fx->env.items);
	rc |= put_env_list(b, t->run_env);
	rc |= atex_buf_printf(b, "}\n%s\n", sentinel);
	free(meta);
	return rc ? ATEX_ENOMEM : 0;
}
