/*
 * helpers.c - see helpers.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "helpers.h"

char *xsprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return s;
}

char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return NULL;
	do {
		if (cap - n < 65536) {
			cap = cap * 2 + 65536;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static struct fake_boot_conn *to_fake(const atex_connection *c)
{
	return (struct fake_boot_conn *)c;
}

static int fake_connect(atex_connection *c, int timeout_ms, atex_cancel *cancel)
{
	return atex_connection_connect(to_fake(c)->inner, timeout_ms, cancel);
}

static int fake_disconnect(atex_connection *c)
{
	return atex_connection_disconnect(to_fake(c)->inner);
}

static int fake_spawn(atex_process **out, atex_connection *c,
		      const struct atex_spawn_options *opts)
{
	struct fake_boot_conn *f = to_fake(c);

	if (f->spawn)
		return f->spawn(f, out, opts);
	return atex_connection_spawn(out, f->inner, opts);
}

static int fake_copy_to(atex_connection *c, const char *src, const char *dst,
			atex_cancel *cancel)
{
	return atex_connection_copy_to(to_fake(c)->inner, src, dst, cancel);
}

static const char *fake_name(const atex_connection *c)
{
	struct fake_boot_conn *f = to_fake(c);

	return f->name ? f->name : atex_connection_name(f->inner);
}

static void fake_free(atex_connection *c)
{
	free(c);
}

static bool fake_can_reboot(const atex_connection *c)
{
	return to_fake(c)->can_reboot;
}

static int fake_boot_id(char **out, atex_connection *c, int timeout_ms,
			atex_cancel *cancel)
{
	struct fake_boot_conn *f = to_fake(c);
	const char *argv[] = {"cat", "--", f->boot_file, NULL};
	struct atex_run_result r = {0};
	int rc;

	f->boot_reads++;
	rc = atex_connection_run(&r, f->inner, argv, NULL, 0, timeout_ms,
				 cancel);
	if (rc)
		return rc;
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status)) {
		atex_run_result_clear(&r);
		return ATEX_EEXTERNAL;
	}
	r.out[strcspn(r.out, "\n")] = '\0';
	*out = r.out;
	r.out = NULL;
	atex_run_result_clear(&r);
	return 0;
}

static const struct atex_connection_ops fake_ops = {
	.version = ATEX_CONNECTION_OPS_VERSION,
	.connect = fake_connect,
	.disconnect = fake_disconnect,
	.spawn = fake_spawn,
	.copy_to = fake_copy_to,
	.name = fake_name,
	.free = fake_free,
	.can_reboot = fake_can_reboot,
	.boot_id = fake_boot_id,
};

struct fake_boot_conn *fake_boot_conn_new(atex_connection *inner,
					  bool can_reboot,
					  const char *boot_file)
{
	struct fake_boot_conn *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->base.ops = &fake_ops;
	f->inner = inner;
	f->can_reboot = can_reboot;
	snprintf(f->boot_file, sizeof(f->boot_file), "%s", boot_file);
	return f;
}
