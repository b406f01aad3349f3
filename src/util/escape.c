/*
 * escape.c - names and messages made safe to show a person: on a
 * terminal, in a CI log, in one line of a log handler.
 *
 * Test, subtest, plan, host and file names come from metadata and from
 * tests, which may put anything in them. A newline would start a line
 * that reads like atex's own (a forged result, a forged log line); an ESC
 * or a C1 control (U+0080-U+009F, CSI among them) would drive the
 * terminal. Such characters are written as C escapes: \n, \t, \r, \xHH,
 * and so is every byte that is not part of valid UTF-8 (the text is
 * lossless to read back, and no stray byte can start a sequence the
 * terminal decodes its own way). A backslash is written \\, so that what
 * is shown reads back one way only: a name holding the two characters
 * '\' 'n' is shown \\n, one holding a newline \n. Everything else,
 * printable non-ASCII included, is kept as it is.
 *
 * One function does this for the whole project (the log, the terminal
 * summary, the atex tool), so that every place shows a name the same way.
 */
#include <stdlib.h>

#include "util/util.h"

size_t atex_utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || /* overlong */
		    (s[0] == 0xed && s[1] >= 0xa0))  /* surrogate */
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || /* overlong */
		    (s[0] == 0xf4 && s[1] >= 0x90))  /* past U+10FFFF */
			return 0;
		return 4;
	}
	return 0;
}

static int put_byte_escape(struct atex_buf *b, unsigned char c)
{
	switch (c) {
	case '\n':
		return atex_buf_puts(b, "\\n");
	case '\t':
		return atex_buf_puts(b, "\\t");
	case '\r':
		return atex_buf_puts(b, "\\r");
	}
	return atex_buf_printf(b, "\\x%02x", c);
}

int atex_buf_put_printable(struct atex_buf *b, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	int rc = 0;

	while (p && *p && !rc) {
		const unsigned char *start = p;
		size_t n;

		/* A run of printable ASCII at once. */
		while (*p >= 0x20 && *p < 0x7f && *p != '\\')
			p++;
		if (p > start)
			rc = atex_buf_put(b, start, (size_t)(p - start));
		if (rc || !*p)
			break;
		if (*p == '\\') {
			rc = atex_buf_puts(b, "\\\\");
			p++;
			continue;
		}
		n = *p >= 0x80 ? atex_utf8_len(p) : 0;
		/* C1 controls are U+0080-U+009F: C2 80 to C2 9F. */
		if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			n = 0;
		if (n) {
			rc = atex_buf_put(b, p, n);
			p += n;
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) {
			rc = put_byte_escape(b, p[0]);
			rc = rc ? rc : put_byte_escape(b, p[1]);
			p += 2;
		} else {
			rc = put_byte_escape(b, *p++);
		}
	}
	return rc;
}

int atex_text_escape(char **out, const char *text)
{
	struct atex_buf b = ATEX_BUF_INIT;

	if (!out)
		return atex_error_set(ATEX_EINVAL, "text escape: out is NULL");
	*out = NULL;
	if (atex_buf_put_printable(&b, text ? text : "") < 0 ||
	    !(*out = atex_buf_detach(&b))) {
		atex_buf_free(&b);
		return ATEX_ENOMEM;
	}
	return 0;
}
