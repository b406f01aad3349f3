/*
 * error.c - the thread-local "last error" of the libgit2 style: every failing
 * call returns a negative code and leaves a message here for its own thread.
 *
 * One fixed buffer per thread keeps recording an error allocation-free, so
 * even ATEX_ENOMEM can be reported. Callers often wrap the previous message
 * (atex_error_set(rc, "%s: %s", path, atex_error_last())), so messages are
 * always formatted into a scratch buffer first: vsnprintf() into the very
 * buffer an argument points to is undefined behaviour.
 */
#include <stdio.h>
#include <string.h>

#include "util.h"

#define ERROR_MAX 4096

static _Thread_local char last_message[ERROR_MAX];
static _Thread_local int last_code;

const char *atex_error_last(void)
{
	return last_message;
}

int atex_error_last_code(void)
{
	return last_code;
}

void atex_error_clear(void)
{
	last_message[0] = '\0';
	last_code = ATEX_OK;
}

int atex_error_setv(int code, const char *fmt, va_list ap)
{
	char message[ERROR_MAX];

	if (vsnprintf(message, sizeof(message), fmt, ap) < 0)
		message[0] = '\0';
	memcpy(last_message, message, strlen(message) + 1);
	last_code = code;
	return code;
}

int atex_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	atex_error_setv(code, fmt, ap);
	va_end(ap);
	return code;
}

int atex_error_set_message(int code, const char *message)
{
	return atex_error_set(code, "%s", message ? message : "");
}

int atex_error_prefix(const char *fmt, ...)
{
	/* Room for both parts whole, so the compiler sees no truncation. */
	char joined[2 * ERROR_MAX + 2];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(joined, ERROR_MAX, fmt, ap);
	va_end(ap);
	if (n < 0)
		return last_code;
	if (n >= ERROR_MAX)
		n = ERROR_MAX - 1;
	if (last_message[0])
		snprintf(joined + n, sizeof(joined) - (size_t)n, ": %s",
			 last_message);
	/* A long message loses its end, never the context being added. */
	joined[ERROR_MAX - 1] = '\0';
	memcpy(last_message, joined, strlen(joined) + 1);
	return last_code;
}

int atex_error_oom(void)
{
	return atex_error_set(ATEX_ENOMEM, "out of memory");
}

const char *atex_error_name(int code)
{
	switch (code) {
	case ATEX_OK: return "success";
	case ATEX_ERROR: return "error";
	case ATEX_ENOMEM: return "out of memory";
	case ATEX_EINVAL: return "invalid argument";
	case ATEX_ENOTFOUND: return "not found";
	case ATEX_EEXISTS: return "already exists";
	case ATEX_EIO: return "input/output error";
	case ATEX_EFORMAT: return "format error";
	case ATEX_EMERGE: return "merge error";
	case ATEX_ERULE: return "invalid rule";
	case ATEX_ETIMEDOUT: return "timed out";
	case ATEX_ECANCELED: return "canceled";
	case ATEX_EEXTERNAL: return "external program failed";
	case ATEX_EINFRA: return "infrastructure failure";
	}
	return "unknown error";
}

int atex_check_ops_version(unsigned int version, unsigned int known,
			   const char *block, const char *call)
{
	if (version >= 1 && version <= known)
		return 0;
	return atex_error_set(ATEX_EINVAL,
			      "%s: %s ops version %u is not supported (this "
			      "library knows 1 to %u)",
			      call, block, version, known);
}
