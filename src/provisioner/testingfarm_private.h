/*
 * testingfarm_private.h - private: the pure parts of the Testing Farm
 * provisioner (testingfarm.c), apart so that the unit tests reach them:
 * the options check, the request body, and the pipeline.log reader.
 */
#ifndef ATEX_PROVISIONER_TESTINGFARM_PRIVATE_H
#define ATEX_PROVISIONER_TESTINGFARM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "atex/provisioner.h"
#include "executor/remote_files.h"
#include "util/util.h"

/* The last pipeline.log lines kept for error messages. */
#define ATEX_TF_TAIL_LINES 20

/* Checks the options as _new does: 0, or ATEX_EINVAL naming the option
 * ("hardware: not a JSON object: ..."). */
int atex_tf_options_check(const struct atex_testingfarm_provisioner_options *o);

/*
 * The POST /v0.1/requests body (JSON text, caller frees) for the options
 * (checked), the public key file's text `pubkey` ("TYPE KEY [COMMENT]")
 * and the ingress CIDR (NULL: no security group rule, not the public
 * ranch). NULL with the error set (ATEX_EINVAL for a malformed key,
 * ATEX_ENOMEM).
 */
char *atex_tf_request_body(const struct atex_testingfarm_provisioner_options *o,
			   const char *pubkey, const char *ingress_cidr);

/* A copy of the len bytes at s with every occurrence of `token` (NULL or
 * "": none) replaced by "***" (so "Bearer TOKEN" reads "Bearer ***"),
 * NUL-terminated; caller frees; NULL: ENOMEM. */
char *atex_tf_redact(const char *s, size_t len, const char *token);

/* Whether a request id from the API can go into a URL path: 1 to 128
 * of [A-Za-z0-9._-], not "." or "..". */
bool atex_tf_valid_id(const char *id);

/* base64 (RFC 4648, padded) of len bytes; caller frees; NULL: ENOMEM. */
char *atex_tf_base64(const void *data, size_t len);

/* A copy of `line` without ANSI escape sequences (CSI "ESC [ ... final",
 * OSC "ESC ] ... BEL|ST", "ESC [intermediates] final") or carriage returns. */
char *atex_tf_strip_ansi(const char *line);

/* Whether a (stripped) line is "...] Guest is ready: ArtemisGuest(NAME,
 * USER@HOST, arch=..."; on true *user and *host are set (caller frees). */
bool atex_tf_parse_guest(const char *line, char **user, char **host);

/* pipeline.log read a piece at a time. Zero-initialise. */
struct atex_tf_log {
	struct atex_buf partial;	/* a last line without '\n' yet */
	char *tail[ATEX_TF_TAIL_LINES]; /* ring of stripped lines */
	size_t n_lines;			/* lines seen in all */
	char *user, *host;		/* from the "Guest is ready" line */
	bool tests_started; /* "] starting tests execution" after it */
	/* "] starting tests execution" or "] machine is reserved" (the key
	 * is in) came with no Guest line parsed before: no login to try. */
	bool no_guest;
};

/* Feeds bytes; complete lines are stripped, kept in the tail and matched
 * (a partial last line is matched too: a marker in it is whole). 0 or
 * ATEX_ENOMEM. */
int atex_tf_log_feed(struct atex_tf_log *l, const char *data, size_t len);

/* The kept lines, oldest first, each ending in '\n' ("" when none; the
 * partial line too, marked as such). Caller frees; NULL: ENOMEM. */
char *atex_tf_log_tail(const struct atex_tf_log *l);

void atex_tf_log_clear(struct atex_tf_log *l);

/* For tests: the retry backoff of the clients of provisioners started
 * from now on (atex_http_set_backoff); 0, 0: the default. */
void atex_tf_set_test_backoff(int first_ms, int max_ms);

/* For tests: one try's timeout of the exchanges (other than POST) and of
 * the POSTs started from now on (0: the defaults, 60 s
 * and 10 min). */
void atex_tf_set_test_try_timeouts(int try_ms, int post_try_ms);

/* For tests: when a login that keeps failing is first told, and then how
 * often (0, 0: 2 min, 5 min). */
void atex_tf_set_test_login_warn(int first_ms, int every_ms);

/* For tests: how long API failures last before they are told (0: 30 s). */
void atex_tf_set_test_outage_warn(int ms);

/* For tests: the text run instead of the OS-cleaning script by
 * provisioners with os_cleaning (not copied; NULL: the real one). */
void atex_tf_set_test_cleaning(const char *script);

/* The OS-cleaning script, src/provisioner/tf-cleaning.sh, compiled in
 * by tools/embed.c (the only entry). */
extern const struct atex_remote_file atex_tf_files[];
extern const size_t atex_tf_files_count;

#endif /* ATEX_PROVISIONER_TESTINGFARM_PRIVATE_H */
