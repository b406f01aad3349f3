/*
 * buf.c - growable strings and pointer vectors, plus allocation wrappers
 * that record ATEX_ENOMEM so callers only propagate the code.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void *atex_malloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		atex_error_oom();
	return p;
}

void *atex_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		atex_error_oom();
	return p;
}

char *atex_strdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		atex_error_oom();
	return p;
}

char *atex_strndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		atex_error_oom();
	return p;
}

char *atex_sprintf(const char *fmt, ...)
{
	char *p = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		p = NULL;
	va_end(ap);
	if (!p)
		atex_error_oom();
	return p;
}

int atex_buf_grow(struct atex_buf *b, size_t extra)
{
	size_t want = b->len + extra + 1;
	size_t cap;
	char *p;

	/* A wrapped size would "fit" and then be written past. */
	if (extra > SIZE_MAX - b->len - 1)
		return atex_error_oom();
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->ptr, cap);
	if (!p)
		return atex_error_oom();
	b->ptr = p;
	b->cap = cap;
	return 0;
}

/* True when `data` points into the buffer's own storage. */
static bool buf_owns(const struct atex_buf *b, const void *data)
{
	uintptr_t p = (uintptr_t)data, start = (uintptr_t)b->ptr;

	return b->ptr && p >= start && p < start + b->cap;
}

int atex_buf_put(struct atex_buf *b, const void *data, size_t len)
{
	/* Appending a piece of itself: growing may move the storage. */
	bool own = buf_owns(b, data);
	size_t offset = own ? (size_t)((const char *)data - b->ptr) : 0;

	if (atex_buf_grow(b, len) < 0)
		return ATEX_ENOMEM;
	if (own)
		data = b->ptr + offset;
	if (len)
		memmove(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return 0;
}

int atex_buf_puts(struct atex_buf *b, const char *s)
{
	return atex_buf_put(b, s, strlen(s));
}

int atex_buf_putc(struct atex_buf *b, char c)
{
	return atex_buf_put(b, &c, 1);
}

int atex_buf_printf(struct atex_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return atex_error_set(ATEX_EINVAL, "bad format string");
	if (atex_buf_grow(b, (size_t)n) < 0)
		return ATEX_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void atex_buf_clear(struct atex_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

char *atex_buf_detach(struct atex_buf *b)
{
	char *p = b->ptr;

	if (!p)
		p = atex_strdup("");
	b->ptr = NULL;
	b->len = b->cap = 0;
	return p;
}

void atex_buf_free(struct atex_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}

int atex_vec_push(struct atex_vec *v, void *item)
{
	if (v->len == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		void **p;

		if (cap > SIZE_MAX / 2 / sizeof(*p))
			return atex_error_oom();
		p = realloc(v->items, cap * sizeof(*p));
		if (!p)
			return atex_error_oom();
		v->items = p;
		v->cap = cap;
	}
	v->items[v->len++] = item;
	return 0;
}

int atex_vec_push_copies(struct atex_vec *v, const char *const *list)
{
	for (; list && *list; list++) {
		char *s = atex_strdup(*list);

		if (!s || atex_vec_push(v, s) < 0) {
			free(s);
			return ATEX_ENOMEM;
		}
	}
	return 0;
}

void *atex_vec_pop(struct atex_vec *v)
{
	return v->len ? v->items[--v->len] : NULL;
}

void atex_vec_sort(struct atex_vec *v, int (*cmp)(const void *, const void *))
{
	if (v->len > 1)
		qsort(v->items, v->len, sizeof(*v->items), cmp);
}

int atex_vec_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void atex_vec_free(struct atex_vec *v)
{
	free(v->items);
	v->items = NULL;
	v->len = v->cap = 0;
}

void atex_vec_free_all(struct atex_vec *v, void (*free_fn)(void *))
{
	for (size_t i = 0; i < v->len; i++)
		free_fn(v->items[i]);
	atex_vec_free(v);
}
