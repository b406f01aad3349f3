/*
 * start.c - one start of a test (a test that reboots the system has
 * several): the wrapper process, the control channel, the clock.
 *
 * The channel is read as it comes and fed to the parser (control.c),
 * whose result events go to the reporter. The last FMF_TAIL_MAX bytes of
 * the stream are held back until more comes, FMF_TAIL_MS pass or the
 * stream ends: they may be the wrapper's "exitcode N TOKEN" line, which
 * must not be taken for data a test that died mid-upload still owed. The
 * token is random per start and only the wrapper knows it: an `exitcode`
 * the test writes does not end it. When the deadline passes, what the
 * channel holds is read first (drain): a stalled executor must not kill
 * a test that ended in time. See the top of fmf.c for how a test is
 * stopped and how a reboot goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/control.h"
#include "executor/fmf_private.h"
#include "util/process.h"

/* The result events go to the reporter. */
static int on_result_begin(void *data, json_t *result)
{
	fmf_checks_seen(data, result);
	return atex_reporter_result_begin(((struct run *)data)->rep, result);
}

static int on_file_data(void *data, size_t index, const void *buf, size_t len)
{
	return atex_reporter_file_data(((struct run *)data)->rep, index, buf,
				       len);
}

static int on_result_end(void *data)
{
	return atex_reporter_result_end(((struct run *)data)->rep);
}

static int on_exitcode(void *data, int code)
{
	((struct run *)data)->exitcode = code;
	return 0;
}

/* A test that writes `exitcode` itself does not end by it: it goes on
 * until its own end or its deadline. */
static int on_forged_exitcode(void *data, int code)
{
	struct run *r = data;

	atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
		 "%s: %s: the test wrote 'exitcode %d' itself; only the "
		 "wrapper's counts",
		 fmf_conn_name(r->fx), r->test_name, code);
	return 0;
}

static int on_duration(void *data, enum atex_control_duration_kind kind,
		       double seconds)
{
	struct run *r = data;
	double now = atex_monotonic_ms();

	switch (kind) {
	case ATEX_CONTROL_DURATION_SET:
		r->deadline = now + seconds * 1000;
		break;
	case ATEX_CONTROL_DURATION_ADD:
		r->deadline += seconds * 1000;
		break;
	case ATEX_CONTROL_DURATION_SUB:
		r->deadline -= seconds * 1000;
		break;
	case ATEX_CONTROL_DURATION_SAVE:
		if (r->n_saved == FMF_SAVED_MAX)
			return atex_error_set(ATEX_EFORMAT,
					      "duration save: more than %d "
					      "saved",
					      FMF_SAVED_MAX);
		r->saved[r->n_saved++] = r->deadline - now;
		break;
	case ATEX_CONTROL_DURATION_RESTORE:
		if (!r->n_saved)
			return atex_error_set(ATEX_EFORMAT,
					      "duration restore without save");
		r->deadline = now + r->saved[--r->n_saved];
		break;
	}
	atex_debug(FMF_COMPONENT, "duration: %.1f s left",
		   (r->deadline - now) / 1000);
	return 0;
}

static int on_disconnect(void *data)
{
	struct run *r = data;

	r->disconnect = true;
	/* What the test's exit code would be belongs to the next boot. */
	r->exitcode = -1;
	return 0;
}

struct start_state {
	atex_process *p;
	atex_control *ctl;
	int in_fd; /* the wrapper's stdin, ours; -1 once closed */
	int out_fd;
	double grace; /* after exitcode: when the channel must have ended */
	bool eof;
	/* The stream's last bytes, held back: they may be the wrapper's
	 * "exitcode N\n", which must not be taken as data the test owed. */
	char tail[FMF_TAIL_MAX];
	size_t tail_len;
	double tail_at;
	char *note;
	/* The wrapper's `exitcode` token (FMF_TOKEN_LEN hex digits). */
	char token[FMF_TOKEN_LEN + 1];
};

static void close_stdin(struct start_state *s)
{
	if (s->in_fd >= 0)
		close(s->in_fd);
	s->in_fd = -1;
}

/* Stops the test: the wrapper's watcher kills it when its stdin ends;
 * what is still there after FMF_STOP_GRACE_MS is killed (the client, and
 * over ssh and podman every remote process of the run). */
static void stop_test(struct start_state *s)
{
	int status;

	close_stdin(s);
	if (atex_process_wait(&status, s->p, FMF_STOP_GRACE_MS, NULL) == 0)
		return;
	atex_process_kill(s->p, SIGKILL);
	atex_process_wait(&status, s->p, -1, NULL);
}

/* Feeds bytes of the stream, unless the test disconnected. */
static int feed(struct start_state *s, struct run *r, const char *buf, size_t n)
{
	bool was_disconnect = r->disconnect;
	int rc;

	if (r->disconnect || n == 0)
		return 0;
	rc = atex_control_feed(s->ctl, buf, n);
	if (!rc && r->disconnect && !was_disconnect) {
		/* Tell the wrapper: it closes the channel under the test
		 * (whose `noop` writes then fail) and stops watching. */
		static const char line[] = "disconnect\n";

		atex_write_all(s->in_fd, line, sizeof(line) - 1, NULL);
	}
	if (!rc && r->exitcode >= 0 && s->grace == 0)
		s->grace = atex_monotonic_ms() + FMF_EXIT_GRACE_MS;
	if (r->exitcode < 0)
		s->grace = 0;
	return rc;
}

static int flush_tail(struct start_state *s, struct run *r)
{
	size_t n = s->tail_len;

	s->tail_len = 0;
	return feed(s, r, s->tail, n);
}

/* Where the held-back bytes end with a line "exitcode N TOKEN\n" (the
 * wrapper's last words, with our token), with N in *code; -1 when they
 * do not. */
static long tail_exitcode(const struct start_state *s, int *code)
{
	static const char word[] = "exitcode ";
	size_t w = sizeof(word) - 1, t = strlen(s->token);

	if (s->tail_len < w + 2 + t + 1 || s->tail[s->tail_len - 1] != '\n' ||
	    memcmp(s->tail + s->tail_len - 1 - t, s->token, t) ||
	    s->tail[s->tail_len - 2 - t] != ' ')
		return -1;
	for (size_t k = 0; k + w + 2 + t + 1 <= s->tail_len; k++) {
		size_t i, end = s->tail_len - 2 - t;
		int c = 0;

		if (memcmp(s->tail + k, word, w))
			continue;
		for (i = k + w; i < end; i++) {
			if (s->tail[i] < '0' || s->tail[i] > '9')
				break;
			c = c * 10 + (s->tail[i] - '0');
		}
		if (i == end && i > k + w && i - (k + w) <= 3 && c <= 255) {
			*code = c;
			return (long)k;
		}
	}
	return -1;
}

/* The held-back bytes end with the wrapper's exit code: what comes
 * before it is fed, then the exit code, also when the test ended owing
 * bytes (inside a result's JSON or files), which the wrapper's line is
 * not part of. Returns 0 or the parser's error code. */
static int take_tail_exitcode(struct start_state *s, struct run *r)
{
	int rc, code;
	long at = tail_exitcode(s, &code);

	if (at < 0)
		return 0;
	rc = feed(s, r, s->tail, (size_t)at);
	if (rc)
		return rc;
	if (!atex_control_idle(s->ctl)) {
		s->tail_len = 0;
		r->exitcode = code;
		/* The end of the stream follows, and says what was owed. */
		if (s->grace == 0)
			s->grace = atex_monotonic_ms() + FMF_EXIT_GRACE_MS;
		return 0;
	}
	memmove(s->tail, s->tail + at, s->tail_len - (size_t)at);
	s->tail_len -= (size_t)at;
	return flush_tail(s, r);
}

/* Reads what the channel has; feeds it, all but its last FMF_TAIL_MAX
 * bytes (fed when more comes, after FMF_TAIL_MS, or at the end). Returns
 * 0, or the parser's error code. */
static int read_channel(struct start_state *s, struct run *r)
{
	char buf[FMF_TAIL_MAX + FMF_READ_CHUNK];
	ssize_t n;
	size_t total, keep;
	int rc;

	memcpy(buf, s->tail, s->tail_len);
	n = read(s->out_fd, buf + s->tail_len, FMF_READ_CHUNK);
	if (n < 0) {
		/* A broken stream ends like EOF; the exit code decides. */
		if (errno != EAGAIN && errno != EINTR)
			s->eof = true;
		return 0;
	}
	if (n == 0) {
		s->eof = true;
		if (r->disconnect)
			return 0;
		rc = take_tail_exitcode(s, r);
		if (!rc)
			rc = flush_tail(s, r);
		return rc ? rc : atex_control_finish(s->ctl);
	}
	total = s->tail_len + (size_t)n;
	keep = total < FMF_TAIL_MAX ? total : FMF_TAIL_MAX;
	s->tail_len = 0;
	rc = feed(s, r, buf, total - keep);
	memcpy(s->tail, buf + total - keep, keep);
	s->tail_len = keep;
	s->tail_at = atex_monotonic_ms();
	return rc;
}

/* The deadline has passed: what the channel holds already comes first.
 * An executor that was stalled (stopped, swapped out, starved) finds
 * there the end of a test that ended in time, exit code and all. Only
 * what is there at once, for FMF_DRAIN_MS at most: a test that keeps
 * writing does not keep itself alive. Returns 0 or the parser's error
 * code. */
static int drain(struct start_state *s, struct run *r)
{
	struct pollfd p = {.fd = s->out_fd, .events = POLLIN};
	double until = atex_monotonic_ms() + FMF_DRAIN_MS;
	int rc = 0;

	while (!rc && !s->eof && r->exitcode < 0 && poll(&p, 1, 0) > 0 &&
	       atex_monotonic_ms() < until)
		rc = read_channel(s, r);
	if (!rc && !s->eof && r->exitcode < 0)
		rc = take_tail_exitcode(s, r);
	return rc;
}

/* The channel loop of one start: until EOF (START_EXITED with s->eof),
 * the exit grace running out (START_EXITED without eof), an error, the
 * deadline or a cancel. */
static enum start_end pump(struct start_state *s, struct run *r)
{
	struct pollfd fds[2] = {
		{.fd = s->out_fd, .events = POLLIN},
		{.fd = atex_cancel_fd(r->fx->cancel), .events = POLLIN},
	};

	while (!s->eof) {
		double now = atex_monotonic_ms(), until;
		int rc;

		if (atex_cancel_fired(r->fx->cancel))
			return START_CANCELED;
		/* Once the test has ended, only the grace counts. */
		if (r->exitcode >= 0 && now >= s->grace)
			return START_EXITED;
		if (r->exitcode < 0 && now >= r->deadline) {
			if (drain(s, r)) {
				s->note =
					atex_strdup(atex_control_error(s->ctl));
				return START_CHANNEL_ERROR;
			}
			if (s->eof || r->exitcode >= 0)
				continue;
			return START_TIMED_OUT;
		}
		until = r->exitcode >= 0 ? s->grace : r->deadline;
		if (s->tail_len && s->tail_at + FMF_TAIL_MS < until)
			until = s->tail_at + FMF_TAIL_MS;
		rc = poll(fds, 2, (int)(until - now) + 1);
		if (rc < 0 && errno != EINTR)
			return START_INFRA;
		if (rc == 0 && s->tail_len &&
		    atex_monotonic_ms() >= s->tail_at + FMF_TAIL_MS &&
		    flush_tail(s, r)) {
			s->note = atex_strdup(atex_control_error(s->ctl));
			return START_CHANNEL_ERROR;
		}
		if (rc <= 0 || !fds[0].revents)
			continue;
		if (read_channel(s, r)) {
			s->note = atex_strdup(atex_control_error(s->ctl));
			return START_CHANNEL_ERROR;
		}
	}
	return START_EXITED;
}

/* Why a wrapper that ended with `status` failed the test. The wrapper's
 * own failures (remote/wrapper.sh): 70 it could not set the test up, 71
 * required packages could not be installed. */
static char *wrapper_failure(struct run *r, int status)
{
	const char *host = fmf_conn_name(r->fx);
	int code = WIFEXITED(status) ? WEXITSTATUS(status)
				     : 128 + WTERMSIG(status);

	r->wrapper_code = code;

	if (r->exitcode < 0 && code == 71)
		return atex_sprintf("required packages could not be installed "
				    "on %s",
				    host);
	if (r->exitcode < 0 && code == 70)
		return atex_sprintf("the test wrapper on %s could not set the "
				    "test up (its message is in the test's "
				    "output)",
				    host);
	if (r->exitcode >= 0)
		return atex_sprintf("the test wrapper on %s exited with status "
				    "%d",
				    host, code);
	return atex_sprintf("the test ended without an exit code: the "
			    "connection to %s was lost or the system went "
			    "down (disconnect was not sent), wrapper status %d",
			    host, code);
}

/* After the channel ended: waits for the wrapper and tells how it went. */
static enum start_end wrapper_end(struct start_state *s, struct run *r)
{
	double left = r->deadline - atex_monotonic_ms();
	int status = 0, rc;

	/* Rebooting: the wrapper ends with the system (or the connection),
	 * whenever that is within the test's time. */
	rc = atex_process_wait(&status, s->p,
			       r->disconnect ? (left > 0 ? (int)left : 0)
					     : FMF_EXIT_GRACE_MS,
			       r->fx->cancel);
	if (rc == ATEX_ECANCELED)
		return START_CANCELED;
	if (rc) {
		/* Still there: a leftover holds the channel or the system
		 * does not go down. */
		stop_test(s);
		if (r->disconnect)
			return START_TIMED_OUT;
		if (r->exitcode >= 0)
			return START_EXITED;
		s->note = atex_sprintf("the test wrapper on %s did not end",
				       fmf_conn_name(r->fx));
		return START_INFRA;
	}
	if (r->disconnect)
		return START_DISCONNECT;
	if (r->exitcode >= 0 && WIFEXITED(status) && !WEXITSTATUS(status))
		return START_EXITED;
	/* The wrapper reported the missing packages as the test's "infra"
	 * result: the test's doing (its metadata), not the system's, which
	 * stays usable; a re-run is the caller's policy. */
	if (r->exitcode < 0 && WIFEXITED(status) && WEXITSTATUS(status) == 71)
		return START_NO_PACKAGES;
	/* No exit code and no `disconnect`: the connection went (or the
	 * system rebooted under the test, which fmf.c finds out). */
	r->lost = r->exitcode < 0 &&
		  !(WIFEXITED(status) && WEXITSTATUS(status) == 70);
	s->note = wrapper_failure(r, status);
	return START_INFRA;
}

/* The exit code came, the channel did not end within the grace: a
 * wrapper that ended badly is still an infrastructure failure; one that
 * is still there (a leftover holds the channel) is stopped. */
static enum start_end grace_end(struct start_state *s, struct run *r)
{
	int status = 0;

	if (atex_process_wait(&status, s->p, 0, NULL) != 0) {
		stop_test(s);
		return START_EXITED;
	}
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return START_EXITED;
	s->note = wrapper_failure(r, status);
	return START_INFRA;
}

/* A fresh token for the wrapper's `exitcode`, from the kernel's random
 * source: a test must not be able to guess it. */
static int make_token(char token[FMF_TOKEN_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[FMF_TOKEN_LEN / 2];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return atex_error_set(ATEX_EIO, "getrandom: %s",
				      strerror(errno));
	for (size_t i = 0; i < sizeof(rnd); i++) {
		token[2 * i] = hex[rnd[i] >> 4];
		token[2 * i + 1] = hex[rnd[i] & 15];
	}
	token[FMF_TOKEN_LEN] = '\0';
	return 0;
}

/* Starts the wrapper with its setup written to its stdin. */
static int start_wrapper(struct start_state *s, struct run *r,
			 const struct test_start *t, int output_fd)
{
	struct fmf_executor *fx = r->fx;
	struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
	struct atex_buf setup = ATEX_BUF_INIT;
	char sentinel[40], *wrapper;
	unsigned long long rnd = 0;
	int rc;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (unsigned long long)atex_monotonic_ms();
	snprintf(sentinel, sizeof(sentinel), "ATEX-END-OF-SETUP-%016llx", rnd);
	wrapper = atex_sprintf("%s/atex/wrapper.sh", fx->workdir);
	/* Not exported: the wrapper's own, never the test's. */
	rc = wrapper ? atex_buf_printf(&setup, "ATEX_EXIT_TOKEN=%s\n", s->token)
		     : ATEX_ENOMEM;
	rc = rc ? ATEX_ENOMEM : fmf_build_setup(&setup, fx, t, sentinel);
	if (rc)
		goto out;
	/* --norc: bash sources ~/.bashrc when its stdin is the ssh
	 * connection, even for a script; the login shell that sshd starts
	 * already did, and on some systems it costs more than the test. */
	o.argv = (const char *const[]){"bash", "--norc", wrapper,
				       "test", sentinel, NULL};
	o.stdin_fd = ATEX_STDIO_PIPE;
	o.stdout_fd = ATEX_STDIO_PIPE;
	o.stderr_fd = output_fd;
	rc = atex_connection_spawn(&s->p, fx->conn, &o);
	if (rc)
		goto out;
	s->in_fd = atex_process_take_fd(s->p, 0);
	s->out_fd = atex_process_stdout(s->p);
	fcntl(s->out_fd, F_SETFL, fcntl(s->out_fd, F_GETFL) | O_NONBLOCK);
	/* A wrapper that dies at once shows as EPIPE here and as a missing
	 * exit code later; that later report is the clearer one. */
	atex_write_all(s->in_fd, atex_buf_cstr(&setup), setup.len, fx->cancel);
out:
	atex_buf_free(&setup);
	free(wrapper);
	return rc;
}

enum start_end fmf_run_start(struct run *r, const struct test_start *t,
			     int output_fd, char **note)
{
	const struct atex_control_handler handler = {
		.result_begin = on_result_begin,
		.file_data = on_file_data,
		.result_end = on_result_end,
		.exitcode = on_exitcode,
		.duration = on_duration,
		.disconnect = on_disconnect,
		.forged_exitcode = on_forged_exitcode,
	};
	struct start_state s = {.in_fd = -1, .out_fd = -1};
	enum start_end end;

	r->exitcode = -1;
	r->disconnect = false;
	r->lost = false;
	*note = NULL;
	if (make_token(s.token) ||
	    atex_control_new(&s.ctl, &handler, r, r->fx->json_limit))
		return START_INFRA;
	if (atex_control_set_exit_token(s.ctl, s.token)) {
		atex_control_free(s.ctl);
		return START_INFRA;
	}
	if (start_wrapper(&s, r, t, output_fd)) {
		*note = atex_strdup(atex_error_last());
		atex_control_free(s.ctl);
		return START_INFRA;
	}
	end = pump(&s, r);
	if (end == START_EXITED && s.eof)
		end = wrapper_end(&s, r);
	else if (end == START_EXITED)
		end = grace_end(&s, r);
	else
		stop_test(&s);
	close_stdin(&s);
	atex_process_free(s.p);
	atex_control_free(s.ctl);
	*note = s.note;
	return end;
}
