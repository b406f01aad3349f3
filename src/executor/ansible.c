/*
 * ansible.c - the fmf executor's `how: ansible` prepare and finish phases:
 * ansible-playbook runs on this machine against the system, as tmt runs
 * it (tmt/steps/prepare/ansible.py, tmt/guest: Guest._run_ansible).
 *
 * One mechanism for every kind of connection: atex's own connection plugin
 * (ansible/atex_argv.py, compiled in) runs Ansible's commands through the
 * local command line atex_connection_command_argv gives, the same one
 * atex's own commands go through (the ssh master, `podman exec`, a local
 * shell). Ansible's own ssh, podman or local connections would each need
 * the connection's details again (keys, ports, podman's global arguments,
 * a second ssh session setup) and could disagree with atex's view of the
 * system. Per playbook, a private directory (under $TMPDIR, named and
 * locked as a staging directory so a run killed with SIGKILL has it
 * reaped) holds the plugin, the inventory (one host, default-0: tmt's
 * guest name) and the command line; ansible-playbook runs in the plan's
 * tree with this process's environment plus the plan environment (as tmt
 * does), `extra-args` split as a shell would (tmt: shlex.split) before
 * the inventory, and the playbook: a path relative to the tree root (a
 * leading / or file:// is dropped, as tmt does), an http(s) URL
 * (downloaded first) or a collection's playbook (namespace.collection.
 * name).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/fmf_private.h"
#include "executor/remote_files.h"
#include "executor/stage.h"
#include "util/http.h"
#include "util/process.h"
#include "util/util.h"

/* The connection plugin (ansible/atex_argv.py), compiled in by
 * tools/embed.c. */
extern const struct atex_remote_file atex_ansible_files[];
extern const size_t atex_ansible_files_count;

/* The host name of the system in the inventory: tmt's name of a guest
 * its provision phase does not name. */
#define ANSIBLE_HOST "default-0"

/* The word the plugin replaces with each command (atex_argv.py). */
#define ANSIBLE_PLACEHOLDER "ATEXCOMMANDPLACEHOLDER"

/* One phase's context for messages: "plan P: prepare phase 'N'". */
struct phase_ctx {
	struct fmf_executor *fx;
	const char *step, *name;
	char *dir; /* the private directory */
	int lock_fd;
};

static int phase_error(const struct phase_ctx *c, int code, const char *fmt,
		       ...) ATEX_PRINTF(3, 4);

static int phase_error(const struct phase_ctx *c, int code, const char *fmt,
		       ...)
{
	char msg[3072];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return atex_error_set(
		code, "%s: plan %s: %s phase '%s' (how: ansible): %s",
		fmf_conn_name(c->fx), atex_fmf_discovery_plan_name(c->fx->disc),
		c->step, c->name, msg);
}

/* Splits `s` into words as Python's shlex.split does (POSIX mode, no
 * comments): blanks separate, '...' is literal, "..." lets a backslash
 * escape only \ and ", a backslash outside quotes escapes any character.
 * Returns 0, ATEX_EFORMAT (an open quote or a trailing backslash) or
 * ATEX_ENOMEM. */
int atex_fmf_shell_split(struct atex_vec *out, const char *s)
{
	struct atex_buf w = ATEX_BUF_INIT;
	bool word = false;
	char quote = 0;
	int rc = 0;

	for (; *s && !rc; s++) {
		if (quote == '\'') {
			rc = *s == '\'' ? (quote = 0, 0)
					: atex_buf_putc(&w, *s);
		} else if (quote == '"') {
			if (*s == '"')
				quote = 0;
			else if (*s == '\\' && (s[1] == '\\' || s[1] == '"'))
				rc = atex_buf_putc(&w, *++s);
			else
				rc = atex_buf_putc(&w, *s);
		} else if (*s == ' ' || *s == '\t' || *s == '\n' ||
			   *s == '\r') {
			if (word) {
				rc = atex_vec_push(
					out,
					atex_strndup(atex_buf_cstr(&w), w.len));
				w.len = 0;
				word = false;
			}
		} else if (*s == '\'' || *s == '"') {
			quote = *s;
			word = true;
		} else if (*s == '\\') {
			if (!s[1]) {
				rc = ATEX_EFORMAT;
				break;
			}
			rc = atex_buf_putc(&w, *++s);
			word = true;
		} else {
			rc = atex_buf_putc(&w, *s);
			word = true;
		}
	}
	if (!rc && quote)
		rc = ATEX_EFORMAT;
	if (!rc && word)
		rc = atex_vec_push(out, atex_strndup(atex_buf_cstr(&w), w.len));
	for (size_t i = 0; !rc && i < out->len; i++)
		if (!out->items[i])
			rc = ATEX_ENOMEM;
	atex_buf_free(&w);
	return rc;
}

/* Downloads an http(s) playbook into the private directory. */
static int fetch_playbook(char **path, const struct phase_ctx *c,
			  const char *url, size_t index)
{
	struct atex_http_request r = ATEX_HTTP_REQUEST_INIT;
	struct atex_http_result res = {0};
	char *shown = atex_http_url_for_message(url);
	FILE *f = NULL;
	int rc;

	r.method = "GET";
	r.url = url;
	r.retry_total_ms = 60 * 1000;
	rc = atex_http_call(&res, &r, c->fx->cancel);
	if (rc == 0 && (res.status < 200 || res.status > 299))
		rc = phase_error(c, ATEX_EEXTERNAL,
				 "cannot fetch playbook %s: HTTP status %ld",
				 shown ? shown : "", res.status);
	else if (rc)
		rc = phase_error(c, rc, "cannot fetch playbook %s: %s",
				 shown ? shown : "", atex_error_last());
	if (!rc) {
		*path = atex_sprintf("%s/playbook-%zu.yml", c->dir, index);
		f = *path ? fopen(*path, "wb") : NULL;
		if (!f || fwrite(res.body, 1, res.body_len, f) != res.body_len)
			rc = *path ? atex_error_set(ATEX_EIO,
						    "cannot write %s: %s",
						    *path, strerror(errno))
				   : ATEX_ENOMEM;
		if (f && fclose(f) && !rc)
			rc = atex_error_set(ATEX_EIO, "cannot write %s: %s",
					    *path, strerror(errno));
	}
	atex_http_result_clear(&res);
	free(shown);
	return rc;
}

/* What ansible-playbook is given for one `playbook` entry, in *path: a
 * local file (checked to exist), a downloaded one or a collection's. */
static int playbook_path(char **path, const struct phase_ctx *c,
			 const char *raw, size_t index)
{
	const char *root = atex_fmf_discovery_root(c->fx->disc);
	const char *rel = atex_playbook_relative(raw);
	struct stat st;

	*path = NULL;
	if (!rel)
		return fetch_playbook(path, c, raw, index);
	if (!root)
		return phase_error(c, ATEX_EINVAL,
				   "playbook '%s': the plan has no tree", raw);
	if (!atex_path_stays_inside(rel))
		return phase_error(c, ATEX_EFORMAT,
				   "playbook '%s' is not inside the tree %s",
				   raw, root);
	*path = atex_path_join(root, rel);
	if (!*path)
		return ATEX_ENOMEM;
	if (stat(*path, &st) == 0 && S_ISREG(st.st_mode))
		return 0;
	if (rel == raw && atex_playbook_is_collection(raw)) {
		free(*path);
		*path = atex_strdup(raw);
		return *path ? 0 : ATEX_ENOMEM;
	}
	return phase_error(c, ATEX_ENOTFOUND,
			   "playbook '%s' does not exist (%s)", raw, *path);
}

/* Writes the plugin, the inventory and the command line into c->dir. */
static int write_setup(const struct phase_ctx *c)
{
	static const char inventory[] =
		ANSIBLE_HOST " ansible_connection=atex_argv\n";
	const char *remote[] = {
		"sh",
		"-c",
		"exec sh -c \"$(printf %s \"$1\" | base64 -d)\"",
		"atex",
		ANSIBLE_PLACEHOLDER,
		NULL};
	struct atex_spawn_options o = ATEX_SPAWN_OPTIONS_INIT;
	char **argv = NULL, *conn = atex_path_join(c->dir, "connection");
	char *file = atex_path_join(c->dir, "argv.json");
	json_t *list = json_array();
	int rc = conn && file && list ? 0 : ATEX_ENOMEM;

	if (!rc && mkdir(conn, 0700) < 0)
		rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", conn,
				    strerror(errno));
	for (size_t i = 0; !rc && i < atex_ansible_files_count; i++)
		rc = atex_stage_file(conn, atex_ansible_files[i].name,
				     atex_ansible_files[i].contents,
				     atex_ansible_files[i].len, 0644);
	if (!rc)
		rc = atex_stage_file(c->dir, "inventory", inventory,
				     strlen(inventory), 0644);
	o.argv = remote;
	if (!rc && (rc = atex_connection_command_argv(&argv, c->fx->conn, &o)))
		rc = phase_error(c, rc, "%s", atex_error_last());
	for (size_t i = 0; !rc && argv[i]; i++)
		if (json_array_append_new(list, json_string(argv[i])) < 0)
			rc = ATEX_ENOMEM;
	if (!rc && json_dump_file(list, file, 0) < 0)
		rc = atex_error_set(ATEX_EIO, "cannot write %s", file);
	atex_command_argv_free(argv);
	json_decref(list);
	free(conn);
	free(file);
	return rc;
}

/* The environment ansible-playbook gets on top of ours. */
static int playbook_env(struct atex_vec *env, const struct phase_ctx *c)
{
	json_t *plan = atex_fmf_discovery_environment(c->fx->disc), *value;
	const char *key;
	const char *fixed[] = {"ANSIBLE_CONNECTION_PLUGINS=%s/connection",
			       "ATEX_ANSIBLE_ARGV=%s/argv.json",
			       "ANSIBLE_LOCAL_TEMP=%s/tmp", NULL};
	char *s;

	json_object_foreach(plan, key, value)
	{
		if (!json_is_string(value))
			continue;
		s = atex_sprintf("%s=%s", key, json_string_value(value));
		if (!s || atex_vec_push(env, s))
			goto oom;
	}
	for (const char **f = fixed; *f; f++) {
		s = atex_sprintf(*f, c->dir);
		if (!s || atex_vec_push(env, s))
			goto oom;
	}
	/* Plain output: it ends up in a message and a log. */
	s = atex_strdup("ANSIBLE_NOCOLOR=1");
	if (!s || atex_vec_push(env, s))
		goto oom;
	return atex_vec_push(env, NULL);
oom:
	free(s);
	return ATEX_ENOMEM;
}

/* Logs the end of a failed playbook's output as a warning per line (a
 * log message is one line: its newlines would be escaped) and returns the
 * line that says why: ansible's last "fatal:", "failed:" or "ERROR!"
 * line, else its last line that is not empty. */
static const char *log_output(const struct phase_ctx *c, const char *out)
{
	const char *why = "", *last = "", *line = out;

	while (*line) {
		int n = (int)strcspn(line, "\n");

		atex_log(ATEX_LOG_WARNING, FMF_COMPONENT,
			 "%s: plan %s: %s phase '%s': | %.*s",
			 fmf_conn_name(c->fx),
			 atex_fmf_discovery_plan_name(c->fx->disc), c->step,
			 c->name, n, line);
		if (!strncmp(line, "fatal:", 6) ||
		    !strncmp(line, "failed:", 7) || !strncmp(line, "ERROR!", 6))
			why = line;
		if (strspn(line, " \t*") < (size_t)n)
			last = line;
		line += n + (line[n] == '\n');
	}
	return *why ? why : last;
}

/* Runs one ansible-playbook and judges its exit status. */
static int run_playbook(const struct phase_ctx *c, const char *playbook,
			const char *raw, const char *extra_args)
{
	struct atex_vec argv = ATEX_VEC_INIT, env = ATEX_VEC_INIT;
	struct atex_buf out = ATEX_BUF_INIT;
	char *inventory = atex_path_join(c->dir, "inventory");
	atex_process *p = NULL;
	const char *tail;
	int rc = inventory ? 0 : ATEX_ENOMEM, status = 0;

	rc = rc ? rc : atex_vec_push(&argv, atex_strdup("ansible-playbook"));
	if (!rc && extra_args && atex_fmf_shell_split(&argv, extra_args))
		rc = phase_error(c, ATEX_EFORMAT,
				 "extra-args '%s': an open quote or a "
				 "trailing backslash",
				 extra_args);
	rc = rc ? rc : atex_vec_push(&argv, atex_strdup("-i"));
	rc = rc ? rc : atex_vec_push(&argv, atex_strdup(inventory));
	rc = rc ? rc : atex_vec_push(&argv, atex_strdup("--limit"));
	rc = rc ? rc : atex_vec_push(&argv, atex_strdup(ANSIBLE_HOST));
	rc = rc ? rc : atex_vec_push(&argv, atex_strdup(playbook));
	rc = rc ? rc : atex_vec_push(&argv, NULL);
	for (size_t i = 0; !rc && i + 1 < argv.len; i++)
		if (!argv.items[i])
			rc = ATEX_ENOMEM;
	rc = rc ? rc : playbook_env(&env, c);
	if (rc)
		goto out;
	atex_debug(FMF_COMPONENT, "%s: %s phase '%s': ansible-playbook %s",
		   fmf_conn_name(c->fx), c->step, c->name, playbook);
	rc = atex_process_spawn(&p, (const char *const *)argv.items,
				atex_fmf_discovery_root(c->fx->disc),
				(const char *const *)env.items, ATEX_STDIO_NULL,
				ATEX_STDIO_PIPE, ATEX_STDIO_PIPE);
	if (rc == ATEX_ENOTFOUND) {
		rc = phase_error(c, ATEX_ENOTFOUND,
				 "ansible-playbook is not installed on this "
				 "machine (Debian and Fedora: the ansible-core "
				 "package)");
		goto out;
	}
	if (rc) {
		rc = phase_error(c, rc, "%s", atex_error_last());
		goto out;
	}
	rc = atex_process_communicate(&status, p, NULL, 0, &out, &out,
				      FMF_COMMAND_MS, c->fx->cancel);
	if (rc) {
		rc = phase_error(c, rc, "playbook %s: %s", raw,
				 atex_error_last());
		goto out;
	}
	tail = atex_buf_cstr(&out);
	atex_debug(FMF_COMPONENT,
		   "%s: %s phase '%s': playbook %s: status %d:\n%s",
		   fmf_conn_name(c->fx), c->step, c->name, raw, status, tail);
	/* The end of the output says why (PLAY RECAP and the failed task),
	 * in a message of bounded size. */
	if (out.len > 2500)
		tail += out.len - 2500;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		const char *why = log_output(c, tail);
		int n = (int)strcspn(why, "\n");

		rc = phase_error(c, ATEX_EEXTERNAL,
				 "playbook %s failed (exit status %d)%s%.*s%s",
				 raw,
				 WIFEXITED(status) ? WEXITSTATUS(status)
						   : 128 + WTERMSIG(status),
				 n ? ": " : "", n, why,
				 out.len ? " (the end of its output is logged "
					   "above, line by line)"
					 : "");
	}
out:
	atex_process_free(p);
	atex_buf_free(&out);
	atex_vec_free_all(&argv, free);
	atex_vec_free_all(&env, free);
	free(inventory);
	return rc;
}

int atex_fmf_run_ansible(struct fmf_executor *fx, const char *step,
			 json_t *phase)
{
	struct phase_ctx c = {fx, step,
			      json_string_value(json_object_get(phase, "name")),
			      NULL, -1};
	json_t *books = json_object_get(phase, "playbook"), *book;
	const char *args =
		json_string_value(json_object_get(phase, "extra-args"));
	const char *tmp = getenv("TMPDIR");
	char *path = NULL;
	size_t i;
	int rc;

	if (!c.name)
		c.name = "?";
	if (json_array_size(books) == 0)
		return 0;
	c.dir = atex_sprintf("%s/atex-stage-%s-XXXXXX",
			     tmp && *tmp ? tmp : "/tmp", atex_stage_owner());
	if (!c.dir)
		return ATEX_ENOMEM;
	if (!mkdtemp(c.dir)) {
		rc = atex_error_set(ATEX_EIO, "cannot create %s: %s", c.dir,
				    strerror(errno));
		free(c.dir);
		return rc;
	}
	/* Held while we live: see atex_stage_reap. */
	c.lock_fd = atex_stage_lock(c.dir);
	rc = write_setup(&c);
	json_array_foreach(books, i, book)
	{
		if (rc)
			break;
		rc = playbook_path(&path, &c, json_string_value(book), i);
		if (!rc)
			rc = run_playbook(&c, path, json_string_value(book),
					  args);
		free(path);
		path = NULL;
	}
	atex_stage_remove(c.dir);
	if (c.lock_fd >= 0)
		close(c.lock_fd);
	free(c.dir);
	return rc;
}
