/*
 * signals.c - SIGINT, SIGTERM and SIGHUP for the subcommands that hold
 * systems (DESIGN.md, "Threads, cancellation and signals"): the dispositions
 * are set back to default (a background job of a non-interactive shell starts
 * with SIGINT ignored, and an ignored signal is discarded even while
 * blocked), the signals are blocked before any other thread exists so that
 * every thread inherits the mask, and one thread takes them with sigwait.
 * The first signal calls the subcommand's `on_first` (cancel, abort); a
 * second one calls `on_second` (may be NULL) and exits at once. SIGHUP
 * (the terminal went away) ends a run as Ctrl-C does: systems released,
 * results kept. SIGPIPE is ignored: a closed stdout (`atex run | head`)
 * must not kill a run that holds systems; the writes fail, the results
 * still go to their files. (The library resets every disposition in the
 * processes it starts, so tests do not inherit the ignored SIGPIPE.)
 */
#include <signal.h>
#include <unistd.h>

#include "atex/atex.h"
#include "cli.h"

static void *signal_thread(void *arg)
{
	struct cli_signals *s = arg;
	int sig;

	for (;;) {
		if (sigwait(&s->set, &sig) != 0 || sig == SIGUSR1)
			return NULL;
		if (atomic_load(&s->signo) == 0) {
			pthread_mutex_lock(&s->lock);
			atomic_store(&s->signo, sig);
			if (s->orch)
				atex_orchestrator_abort(s->orch);
			if (s->exec)
				atex_executor_cancel(s->exec);
			if (s->prov)
				atex_provisioner_abort(s->prov);
			pthread_mutex_unlock(&s->lock);
			if (s->on_first)
				s->on_first(sig, s->data);
			continue;
		}
		if (s->on_again && s->on_again(sig, s->data))
			continue;
		/* The user insists: leave now, naming what may be left
		 * alive (Testing Farm requests bill until they end). */
		cli_log_print_alive();
		if (s->on_second)
			s->on_second(sig, s->data);
		_exit(128 + sig);
	}
}

int cli_signals_start(struct cli_signals *s, const char *what,
		      void (*on_first)(int sig, void *data),
		      void (*on_second)(int sig, void *data), void *data)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	struct sigaction ign = {.sa_handler = SIG_IGN};

	s->on_first = on_first;
	s->on_second = on_second;
	s->data = data;

	atomic_store(&s->signo, 0);
	sigemptyset(&s->set);
	sigaddset(&s->set, SIGINT);
	sigaddset(&s->set, SIGTERM);
	sigaddset(&s->set, SIGHUP);
	sigaddset(&s->set, SIGUSR1); /* quits the thread */
	if (pthread_sigmask(SIG_BLOCK, &s->set, NULL) != 0 ||
	    sigaction(SIGINT, &dfl, NULL) < 0 ||
	    sigaction(SIGTERM, &dfl, NULL) < 0 ||
	    sigaction(SIGHUP, &dfl, NULL) < 0 ||
	    sigaction(SIGPIPE, &ign, NULL) < 0 ||
	    pthread_create(&s->thread, NULL, signal_thread, s) != 0) {
		cli_error("%s: cannot set up signal handling", what);
		return CLI_USAGE;
	}
	s->running = true;
	return CLI_OK;
}

void cli_signals_stop(struct cli_signals *s)
{
	if (!s->running)
		return;
	pthread_kill(s->thread, SIGUSR1);
	pthread_join(s->thread, NULL);
	s->running = false;
}

bool cli_signals_publish(struct cli_signals *s, struct atex_provisioner *prov,
			 struct atex_executor *exec,
			 struct atex_orchestrator *orch)
{
	bool go_on;

	pthread_mutex_lock(&s->lock);
	s->prov = prov;
	s->exec = exec;
	s->orch = orch;
	go_on = atomic_load(&s->signo) == 0;
	pthread_mutex_unlock(&s->lock);
	return go_on;
}

int cli_signals_received(const struct cli_signals *s)
{
	return atomic_load(&s->signo);
}
