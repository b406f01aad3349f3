/*
 * testingfarm_request.c - the pure parts of the Testing Farm provisioner:
 * checking its options, the body of the reservation request, and reading
 * pipeline.log a piece at a time. No I/O here, so the unit tests cover
 * every case of them directly (testingfarm_private.h).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provisioner/testingfarm_private.h"

/* Testing Farm's own reservation test (as Python ATEX submits it). */
#define RESERVE_URL  "https://gitlab.com/testing-farm/tests"
#define RESERVE_REF  "main"
#define RESERVE_PATH "."
#define RESERVE_NAME "/testing-farm/reserve"

/* Past this, a line without a newline is taken as a line anyway: a log
 * without newlines must not grow memory forever. */
#define MAX_LINE 65536

/* ------------------------------------------------------------------------
 * Options.
 */

/* The JSON object text of option `name`; NULL text is fine. */
static int check_json_object(const char *name, const char *text)
{
	json_error_t err;
	json_t *v;
	int rc = 0;

	if (!text)
		return 0;
	v = json_loads(text, JSON_DECODE_ANY, &err);
	if (!v)
		return atex_error_set(ATEX_EINVAL,
				      "Testing Farm: %s: not a JSON object: "
				      "%s (line %d, column %d)",
				      name, err.text, err.line, err.column);
	if (!json_is_object(v))
		rc = atex_error_set(ATEX_EINVAL,
				    "Testing Farm: %s: not a JSON object: a "
				    "JSON %s",
				    name,
				    json_is_array(v)	? "array"
				    : json_is_string(v) ? "string"
				    : json_is_null(v)	? "null"
							: "scalar");
	json_decref(v);
	return rc;
}

/* A word that goes into the request as it is: no control characters. */
static int check_word(const char *name, const char *value)
{
	if (!value)
		return 0;
	if (!*value)
		return atex_error_set(ATEX_EINVAL, "Testing Farm: %s: empty",
				      name);
	for (const unsigned char *c = (const unsigned char *)value; *c; c++)
		if (*c < ' ' || *c == 0x7f)
			return atex_error_set(ATEX_EINVAL,
					      "Testing Farm: %s: control "
					      "character in \"%s\"",
					      name, value);
	return 0;
}

static int check_min(const char *name, int value, int min)
{
	if (value >= min)
		return 0;
	return atex_error_set(ATEX_EINVAL, "Testing Farm: %s: %d (at least %d)",
			      name, value, min);
}

int atex_tf_options_check(const struct atex_testingfarm_provisioner_options *o)
{
	int rc;

	if (!o)
		return atex_error_set(ATEX_EINVAL, "Testing Farm: no options");
	if (o->version < 1 ||
	    o->version > ATEX_TESTINGFARM_PROVISIONER_OPTIONS_VERSION)
		return atex_error_set(ATEX_EINVAL,
				      "Testing Farm: options version %u "
				      "unknown",
				      o->version);
	if (!o->compose || !*o->compose)
		return atex_error_set(ATEX_EINVAL,
				      "Testing Farm: compose: none given "
				      "(e.g. Fedora-41)");
	if ((rc = check_word("compose", o->compose)) ||
	    (rc = check_word("arch", o->arch)) ||
	    (rc = check_word("pool", o->pool)) ||
	    (rc = check_word("source_cidr", o->source_cidr)) ||
	    (rc = check_word("identity", o->identity)) ||
	    (rc = check_json_object("hardware", o->hardware)) ||
	    (rc = check_json_object("kickstart", o->kickstart)) ||
	    (rc = check_json_object("variables", o->variables)) ||
	    (rc = check_json_object("secrets", o->secrets)) ||
	    (rc = check_json_object("tags", o->tags)) ||
	    (rc = check_min("timeout_min", o->timeout_min, 0)) ||
	    (rc = check_min("count", o->count, 0)) ||
	    (rc = check_min("max_retries", o->max_retries, -1)) ||
	    (rc = check_min("poll_ms", o->poll_ms, 0)) ||
	    (rc = check_min("api.retry_total_s", o->api.retry_total_s, 0)) ||
	    (rc = check_min("api.max_connections", o->api.max_connections, 0)))
		return rc;
	if (o->api.url && strncmp(o->api.url, "http://", 7) != 0 &&
	    strncmp(o->api.url, "https://", 8) != 0)
		return atex_error_set(ATEX_EINVAL,
				      "Testing Farm: api.url: not an http(s) "
				      "URL");
	return 0;
}

/* ------------------------------------------------------------------------
 * The request body.
 */

char *atex_tf_base64(const void *data, size_t len)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = data;
	char *out = atex_malloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		unsigned int v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];

		*o++ = abc[v >> 18 & 63];
		*o++ = abc[v >> 12 & 63];
		*o++ = abc[v >> 6 & 63];
		*o++ = abc[v & 63];
	}
	if (i < len) {
		unsigned int v =
			in[i] << 16 | (i + 1 < len ? in[i + 1] << 8 : 0);

		*o++ = abc[v >> 18 & 63];
		*o++ = abc[v >> 12 & 63];
		*o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* "TYPE KEY atex@tf\n" from a .pub file's text: the comment is replaced,
 * as Python ATEX does, because it often names a user and a host that
 * need not reach the service. */
static char *authorized_key(const char *pubkey)
{
	const char *sp = " \t\r\n";
	size_t t0, tlen, k0, klen;

	t0 = strspn(pubkey, sp);
	tlen = strcspn(pubkey + t0, sp);
	k0 = t0 + tlen + strspn(pubkey + t0 + tlen, sp);
	klen = strcspn(pubkey + k0, sp);
	if (!tlen || !klen) {
		atex_error_set(ATEX_EINVAL,
			       "Testing Farm: the public key is not \"TYPE "
			       "KEY [COMMENT]\"");
		return NULL;
	}
	return atex_sprintf("%.*s %.*s atex@tf\n", (int)tlen, pubkey + t0,
			    (int)klen, pubkey + k0);
}

/* Sets obj[key] to the parsed object text (checked already). */
static int set_json(json_t *obj, const char *key, const char *text)
{
	json_t *v;

	if (!text)
		return 0;
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	if (!v || json_object_set_new(obj, key, v) < 0)
		return ATEX_ENOMEM;
	return 0;
}

/* The environment's settings: tags (ArtemisUseSpot "false" unless given),
 * the ingress rule, skip_guest_setup. */
static json_t *
env_settings(const struct atex_testingfarm_provisioner_options *o,
	     const char *ingress_cidr)
{
	json_t *settings, *prov, *tags, *given = NULL;

	tags = json_pack("{ss}", "ArtemisUseSpot", "false");
	if (tags && o->tags) {
		given = json_loads(o->tags, 0, NULL);
		if (!given || json_object_update(tags, given) < 0) {
			json_decref(tags);
			tags = NULL;
		}
		json_decref(given);
	}
	prov = tags ? json_pack("{so}", "tags", tags) : NULL;
	if (prov && ingress_cidr &&
	    json_object_set_new(prov, "security_group_rules_ingress",
				json_pack("[{sssssssisi}]", "type", "ingress",
					  "protocol", "-1", "cidr",
					  ingress_cidr, "port_min", 0,
					  "port_max", 65535)) < 0) {
		json_decref(prov);
		prov = NULL;
	}
	settings = prov ? json_pack("{so}", "provisioning", prov) : NULL;
	if (settings && o->skip_guest_setup &&
	    json_object_set_new(settings, "pipeline",
				json_pack("{sb}", "skip_guest_setup", 1)) < 0) {
		json_decref(settings);
		settings = NULL;
	}
	return settings;
}

/* secrets (the caller's) plus TF_RESERVATION_AUTHORIZED_KEYS_BASE64. */
static json_t *env_secrets(const char *secrets, const char *key_line)
{
	json_t *s = secrets ? json_loads(secrets, 0, NULL) : json_object();
	char *b64 = atex_tf_base64(key_line, strlen(key_line));

	if (!s || !b64 ||
	    json_object_set_new(s, "TF_RESERVATION_AUTHORIZED_KEYS_BASE64",
				json_string(b64)) < 0) {
		json_decref(s);
		s = NULL;
	}
	free(b64);
	return s;
}

static json_t *environment(const struct atex_testingfarm_provisioner_options *o,
			   const char *key_line, const char *ingress_cidr)
{
	json_t *env, *settings, *secrets;

	env = json_pack("{sss{ss}}", "arch", o->arch ? o->arch : "x86_64", "os",
			"compose", o->compose);
	if (!env)
		return NULL;
	if ((o->pool &&
	     json_object_set_new(env, "pool", json_string(o->pool)) < 0) ||
	    set_json(env, "hardware", o->hardware) < 0 ||
	    set_json(env, "kickstart", o->kickstart) < 0 ||
	    set_json(env, "variables", o->variables) < 0)
		goto fail;
	secrets = env_secrets(o->secrets, key_line);
	if (!secrets || json_object_set_new(env, "secrets", secrets) < 0)
		goto fail;
	settings = env_settings(o, ingress_cidr);
	if (!settings || json_object_set_new(env, "settings", settings) < 0)
		goto fail;
	return env;
fail:
	json_decref(env);
	return NULL;
}

char *atex_tf_request_body(const struct atex_testingfarm_provisioner_options *o,
			   const char *pubkey, const char *ingress_cidr)
{
	json_t *body = NULL, *env;
	char *key_line, *text = NULL;

	key_line = authorized_key(pubkey);
	if (!key_line)
		return NULL;
	env = environment(o, key_line, ingress_cidr);
	if (env)
		body = json_pack("{s{s{ssssssss}}s[o]s{s{si}}}", "test", "fmf",
				 "url", RESERVE_URL, "ref", RESERVE_REF, "path",
				 RESERVE_PATH, "name", RESERVE_NAME,
				 "environments", env, "settings", "pipeline",
				 "timeout",
				 o->timeout_min > 0 ? o->timeout_min : 60);
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	if (!text)
		atex_error_oom();
	json_decref(body);
	/* The key line is not secret, but keep memory tidy. */
	free(key_line);
	return text;
}

/* ------------------------------------------------------------------------
 * pipeline.log.
 */

char *atex_tf_strip_ansi(const char *line)
{
	struct atex_buf b = ATEX_BUF_INIT;
	const char *s = line;

	if (atex_buf_puts(&b, "") < 0)
		return NULL;
	while (*s) {
		if (*s == '\r') {
			s++;
			continue;
		}
		if (*s != '\033') {
			size_t n = strcspn(s, "\033\r");

			if (atex_buf_put(&b, s, n) < 0)
				goto oom;
			s += n;
			continue;
		}
		s++;
		if (*s == '[') {
			/* CSI: parameters and intermediates, one final byte. */
			for (s++; *s && !(*s >= 0x40 && *s <= 0x7e); s++)
				;
			if (*s)
				s++;
		} else if (*s == ']') {
			/* OSC: up to BEL or ESC \. */
			for (s++; *s && *s != '\a' &&
				  !(s[0] == '\033' && s[1] == '\\');
			     s++)
				;
			if (*s == '\a')
				s++;
			else if (*s)
				s += 2;
		} else {
			/* "ESC ( B" and the like: intermediates, a final. */
			while (*s >= 0x20 && *s <= 0x2f)
				s++;
			if (*s)
				s++;
		}
	}
	return atex_buf_detach(&b);
oom:
	atex_buf_free(&b);
	return NULL;
}

bool atex_tf_parse_guest(const char *line, char **user, char **host)
{
	static const char mark[] = "] Guest is ready: ArtemisGuest(";
	const char *s = strstr(line, mark), *u, *at, *h, *end;

	*user = *host = NULL;
	for (; s; s = strstr(s + 1, mark)) {
		const char *name = s + sizeof(mark) - 1;
		size_t nlen = strcspn(name, ",");

		if (!nlen || name[nlen] != ',' || name[nlen + 1] != ' ')
			continue;
		u = name + nlen + 2;
		at = u + strcspn(u, " \t\n\v\f\r@,");
		if (at == u || *at != '@')
			continue;
		h = at + 1;
		end = h + strcspn(h, ",");
		if (end == h || strncmp(end, ", arch=", 7) != 0)
			continue;
		*user = atex_strndup(u, (size_t)(at - u));
		*host = atex_strndup(h, (size_t)(end - h));
		if (*user && *host)
			return true;
		free(*user);
		free(*host);
		*user = *host = NULL;
		return false;
	}
	return false;
}

/* The markers of a (stripped) line. */
static void log_match(struct atex_tf_log *l, const char *line)
{
	if (!l->user && !atex_tf_parse_guest(line, &l->user, &l->host) &&
	    (strstr(line, "] starting tests execution") ||
	     strstr(line, "] machine is reserved")))
		l->no_guest = true;
	else if (!l->tests_started &&
		 strstr(line, "] starting tests execution"))
		l->tests_started = true;
}

/* One complete line (without its '\n'). */
static int log_line(struct atex_tf_log *l, const char *raw)
{
	char *line = atex_tf_strip_ansi(raw);
	size_t slot;

	if (!line)
		return ATEX_ENOMEM;
	log_match(l, line);
	slot = l->n_lines % ATEX_TF_TAIL_LINES;
	free(l->tail[slot]);
	l->tail[slot] = line;
	l->n_lines++;
	return 0;
}

int atex_tf_log_feed(struct atex_tf_log *l, const char *data, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		int rc;

		if (n > MAX_LINE - l->partial.len)
			n = MAX_LINE - l->partial.len;
		if (atex_buf_put(&l->partial, data, n) < 0)
			return ATEX_ENOMEM;
		data += n;
		len -= n;
		if (len > 0 && *data == '\n') {
			data++;
			len--;
		} else if (l->partial.len < MAX_LINE) {
			break; /* a partial last line: wait for the rest */
		}
		rc = log_line(l, atex_buf_cstr(&l->partial));
		atex_buf_clear(&l->partial);
		if (rc < 0)
			return rc;
	}
	/* A last line whose newline has not come (a log cut short) counts
	 * once its marker is whole: the guest line's ends in ", arch=". */
	if (l->partial.len > 0 && !l->no_guest &&
	    (!l->user || !l->tests_started)) {
		char *line = atex_tf_strip_ansi(atex_buf_cstr(&l->partial));

		if (!line)
			return ATEX_ENOMEM;
		log_match(l, line);
		free(line);
	}
	return 0;
}

char *atex_tf_log_tail(const struct atex_tf_log *l)
{
	struct atex_buf b = ATEX_BUF_INIT;
	size_t n = l->n_lines < ATEX_TF_TAIL_LINES ? l->n_lines
						   : ATEX_TF_TAIL_LINES;
	int rc = atex_buf_puts(&b, "");

	for (size_t i = l->n_lines - n; rc == 0 && i < l->n_lines; i++)
		rc = atex_buf_printf(&b, "%s\n",
				     l->tail[i % ATEX_TF_TAIL_LINES]);
	if (rc == 0 && l->partial.len > 0) {
		char *part = atex_tf_strip_ansi(atex_buf_cstr(&l->partial));

		rc = part ? atex_buf_printf(&b, "%s (no newline yet)\n", part)
			  : ATEX_ENOMEM;
		free(part);
	}
	if (rc < 0) {
		atex_buf_free(&b);
		return NULL;
	}
	return atex_buf_detach(&b);
}

void atex_tf_log_clear(struct atex_tf_log *l)
{
	atex_buf_free(&l->partial);
	for (size_t i = 0; i < ATEX_TF_TAIL_LINES; i++)
		free(l->tail[i]);
	free(l->user);
	free(l->host);
	memset(l, 0, sizeof(*l));
}
