#include "engine.h"
#include "alert.h"
#include "archive.h"
#include "batch.h"
#include "blog.h"
#include "classify.h"
#include "control.h"
#include "exec.h"
#include "job.h"
#include "meta.h"
#include "metrics.h"
#include "progress.h"
#include "runlog.h"
#include "sdnotify.h"
#include "shared.h"
#include "slots.h"
#include "symstats.h"
#include "spool.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "engine_int.h"
#include "sched.h"
#include "circuits.h"
#include "runs.h"
#include "adopt.h"
#include "requests.h"
#include "views.h"

/*
 * The loop's periodic chores, one table: when a chore is wanted, and what
 * it does (returning when it is due next).  Adding one is one line here
 * and its function: the loop and the wake-up read the table.
 */
struct chore {
	const char *name;
	bool (*wanted)(struct engine *e);
	int64_t (*run)(struct engine *e);	/* -> next due (mono ns) */
};
static const struct chore chores[CHORES];

/* ---- the world: real children, or the simulator's ---- */

int64_t engine_next_wakeup(struct engine *e)
{
	int64_t mono = mono_ns(), now = now_ms();
	int64_t best = INT64_MAX;
#define CONSIDER_NS(t) do { if ((t) > 0) { int64_t d = ((t) - mono + 999999) / 1000000; if (d < best) best = d; } } while (0)
	for (size_t i = 0; i < e->nruns; i++) {
		struct run *run = &e->runs[i];
		if (run->kill_ns && !run->killed)
			CONSIDER_NS(run->kill_ns);
		else if (run->deadline_ns && !run->kill_ns)
			CONSIDER_NS(run->deadline_ns);
	}
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		/* A retry that was due when the last dispatch looked and still
		 * waits is held back by the caps (its batch has reserved all
		 * it may): a child's end wakes the loop for it, not the clock
		 * (waking for it now would spin).  One that fell due since (a
		 * slow turn, a loaded machine) is taken at once: comparing
		 * with now instead lost it, and the loop slept for ever. */
		if (eb->retry.n && !e->shutdown &&
		    eb->retry.v[0].at > e->dispatch_ms) {
			int64_t d = eb->retry.v[0].at - now;
			if (d < best)
				best = d;
		}
		if (eb->deadline_ms) {
			int64_t d = eb->deadline_ms - now;
			if (d < best)
				best = d;
		}
		if (journal_dirty(&eb->j) && !e->stalled)
			CONSIDER_NS(eb->j.oldest_unsynced_ns +
				    JOURNAL_COMMIT_MS * 1000000LL);
		if (eb->meta_dirty && !e->stalled)
			CONSIDER_NS(eb->next_flush_ns);
	}
	if (e->slot_poll_ns)
		CONSIDER_NS(e->slot_poll_ns);
	for (size_t i = 0; i < CHORES; i++)
		if (chores[i].wanted(e))
			CONSIDER_NS(e->chore_next_ns[i]);
	if (alerts_next_ns(e->alerts))
		CONSIDER_NS(alerts_next_ns(e->alerts));
	int64_t cm = circ_next_ms(e);
	if (cm) {
		int64_t d = cm - now;
		if (d < best)
			best = d;
	}
	if (e->draining)
		CONSIDER_NS(e->drain_deadline_ns);
	if (e->stalled)
		CONSIDER_NS(e->stall_until_ns);
	if (e->wake_fix_ns)
		CONSIDER_NS(e->wake_fix_ns);
	if (e->kick)
		best = 0;
	if (progress_active(&e->prog))
		CONSIDER_NS(progress_next_ns(&e->prog));
#undef CONSIDER_NS
	if (best < 0)
		best = 0;
	return best;
}

const struct conf *engine_conf(const struct engine *e)
{
	return e->c;
}

/* Leaving: the hooks of the last alerts get a few seconds, not more; then
 * the hooks still running are killed with their groups, the runs never
 * started are said to be dropped (every alert is in alerts.jsonl anyway),
 * and whatever escaped anything of ours is killed: nothing we started
 * outlives us (a bounded wait for it to die, reaped as it does). */
static void finish_hooks(struct engine *e)
{
	int64_t until = mono_ns() + 5000000000LL;
	struct epoll_event ev;
	struct signalfd_siginfo si;
	while (alerts_busy(e->alerts) && mono_ns() < until) {
		alerts_run_hooks(e->alerts, e->pid, &e->child_mask);
		alerts_check(e->alerts);
		epoll_wait(e->epfd, &ev, 1, 50);
		while (read(e->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			;
		runs_reap(e);
	}
	size_t dropped = alerts_abandon(e->alerts);
	if (dropped) {
		if (e->o.runlog) /* which copies it to stderr */
			runlog_log(e->o.runlog, RUNLOG_WARNING,
				   "%zu alerts dropped: hook still running",
				   dropped);
		else
			warning("%zu alerts dropped: hook still running",
				dropped);
	}
	until = mono_ns() + 2000000000LL;
	while (engine_sweep(e, true) > 0 && mono_ns() < until) {
		epoll_wait(e->epfd, &ev, 1, 10);
		while (read(e->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			;
		runs_reap(e);
	}
	runs_reap(e);
}

/* state/symbols: about every 2 s, and never more than 5% of the time.
 * Returns when it is due next. */
static int64_t flush_stats(struct engine *e)
{
	int64_t mono = mono_ns();
	symstats_flush(&e->stats, e->h->state, now_ms());
	int64_t cost = mono_ns() - mono;
	int64_t gap = cost * 20 > 2000000000LL ? cost * 20 : 2000000000LL;
	return mono_ns() + gap;
}

static void write_metrics(struct engine *e)
{
	const char *path = e->c->metrics_textfile ? e->c->metrics_textfile
						  : "logs/runner.prom";
	if (!*path)
		return; /* [metrics] textfile = (empty): none */
	char *home = realpath(e->h->path, NULL);
	struct metrics_view v = { .home = home ? home : e->h->path,
				  .now_ms = now_ms() };
	struct metrics_agent *ag = xcalloc(e->c->nagents + 1, sizeof(*ag));
	for (size_t i = 0; i < e->c->nagents; i++) {
		const struct agent_conf *a = &e->c->agents[i];
		int held = slot_count_held(e->h->state, a->name,
					   a->max_concurrent);
		ag[i] = (struct metrics_agent){
			.name = a->name,
			.running = held < 0 ? sched_agent_running(e, a) : held,
			.max_concurrent = a->max_concurrent,
		};
	}
	for (size_t i = 0; i < e->nbatches; i++) {
		const struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		v.open_batches++;
		for (int s = 0; s < ST_COUNT; s++)
			v.items[s] += eb->b.count[s];
		for (size_t k = 0; k < e->c->nagents; k++)
			if (!strcmp(e->c->agents[k].name, eb->b.c.agent))
				ag[k].queued += eb->b.count[ST_PENDING] +
						eb->b.count[ST_STARTING] +
						eb->b.count[ST_RETRY_WAIT] +
						eb->b.count[ST_PAUSED];
	}
	v.agents = ag;
	v.nagents = e->c->nagents;
	if (e->sh_ok) {
		for (size_t i = 0; i < e->sh.nsymbols; i++) {
			int st = e->sh.symbols[i]->brk.state;
			if (st >= CIRCUIT_CLOSED && st <= CIRCUIT_HALF_OPEN)
				v.symbol_circuits[st]++;
		}
		for (size_t i = 0; i < e->sh.ngroups; i++) {
			int st = e->sh.groups[i]->status;
			if (st >= GROUP_OPEN && st <= GROUP_RESOLVED)
				v.groups[st]++;
		}
	}
	if (metrics_write(e->h, path, &e->metrics, &v) < 0 &&
	    !e->metrics_warned) {
		warning("%s: %s", path, strerror(errno));
		e->metrics_warned = true;
	}
	free(ag);
	free(home);
}

static void retention_event(void *arg, const struct archive_event *ev)
{
	struct runlog *l = arg;
	if (ev->action == ARCH_ARCHIVED)
		runlog_printf(l, "retention: archived %s as %s (%llu %s)",
			      ev->id, ev->file ? ev->file : "?",
			      (unsigned long long)ev->bytes,
			      plural(ev->bytes, "byte",
				     "bytes"));
	else if (ev->action == ARCH_DELETED)
		runlog_printf(l, "retention: deleted archive %s",
			      ev->file ? ev->file : ev->id);
	else
		runlog_printf(l, "retention: %s %s%s%s",
			      archive_action_name(ev->action), ev->id,
			      ev->why ? ": " : "", ev->why ? ev->why : "");
}

/*
 * Once at start and then every hour the daemon applies [retention] in a
 * child process, so that compressing a large batch never holds up the
 * event loop.  The child touches only batches no live runner holds (their
 * locks) and is crash-safe on its own; the daemon reaps it and does not
 * start another while it runs.
 */
static void start_retention(struct engine *e)
{
	if (e->retention_pid > 0 || e->c->archive_after_ms < 0)
		return;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		runlog_log(e->o.runlog, RUNLOG_ERR, "retention: fork: %s",
			   strerror(errno));
		return;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_IGN);
		setpgid(0, 0); /* a terminal's ^C stops the daemon, which
				* lets this run finish on its own */
		/* Hold none of the daemon's descriptors: its daemon.lock, the
		 * batches' locks and journals must go when the daemon goes. */
		if (close_range(3, ~0U, 0) < 0)
			for (int fd = 3; fd < 65536; fd++)
				close(fd);
		struct home h = HOME_INIT;
		if (home_open(&h, e->home_abs) < 0)
			_exit(1);
		struct runlog *l = runlog_open(h.logs);
		runlog_stderr(l);
		struct archive_opts o;
		archive_opts_from_conf(&o, e->c);
		int rc = archive_run(&h, &o, retention_event, l);
		_exit(rc < 0 ? 1 : 0);
	}
	e->retention_pid = pid;
}

/* A real daemon tells systemd (Type=notify) what it does: READY=1 once
 * serving, STOPPING=1 when a shutdown begins, and its counts whenever they
 * change.  Without $NOTIFY_SOCKET nothing is sent. */
static void tell_manager(struct engine *e, const char *state)
{
	if (!e->o.daemon || e->o.ops)
		return;
	if (sdnotify(state) < 0 && !e->notify_failed) {
		e->notify_failed = true;
		runlog_log(e->o.runlog, RUNLOG_WARNING,
			   "NOTIFY_SOCKET: %s; systemd is not told more",
			   strerror(errno));
	}
}

static void tell_status(struct engine *e, bool ready)
{
	size_t queued = 0, paused = 0;
	char msg[sizeof(e->told_status) + 16];
	for (size_t i = 0; i < e->nbatches; i++) {
		const struct batch *b = &e->batches[i]->b;
		if (e->batches[i]->closed)
			continue;
		queued += b->count[ST_PENDING] + b->count[ST_RETRY_WAIT];
		paused += b->count[ST_PAUSED];
	}
	char status[sizeof(e->told_status)];
	snprintf(status, sizeof(status), "%zu running, %zu queued, %zu paused",
		 e->nruns, queued, paused);
	if (!ready && !strcmp(status, e->told_status))
		return;
	memcpy(e->told_status, status, sizeof(status));
	snprintf(msg, sizeof(msg), "%sSTATUS=%s", ready ? "READY=1\n" : "",
		 status);
	tell_manager(e, msg);
}

static void start_shutdown(struct engine *e, int sig)
{
	const char *what = sig == SIGINT    ? "interrupt"
			   : sig == SIGQUIT ? "quit"
			   : sig == SIGXCPU ? "cpu time limit"
					    : "terminated";
	e->signals++;
	if (e->o.daemon && e->signals == 1) {
		/* Drain: nothing new starts; what runs gets shutdown_grace. */
		e->draining = true;
		e->shutdown = true;
		e->drain_deadline_ns =
			deadline_ns(mono_ns(), e->c->shutdown_grace_ms);
		tell_manager(e, "STOPPING=1");
		runlog_printf(e->o.runlog,
			      "%s: draining; %zu %s running, given %lld ms to "
			      "finish",
			      what, e->nruns,
			      plural(e->nruns, "attempt", "attempts"),
			      (long long)e->c->shutdown_grace_ms);
		return;
	}
	if (e->signals > 1) {
		runlog_log(e->o.runlog, RUNLOG_WARNING, "%s again: stopping now",
			   what);
		runs_kill_all(e);
		return;
	}
	warning("%s: stopping: children get SIGTERM, their attempts are "
		"recorded as interrupted",
		what);
	e->shutdown = true;
	for (size_t i = 0; i < e->nruns; i++)
		if (!e->runs[i].kill_ns)
			runs_signal(e, &e->runs[i], KILL_SHUTDOWN);
}

static void check_drain(struct engine *e)
{
	if (!e->draining || mono_ns() < e->drain_deadline_ns)
		return;
	if (e->nruns)
		runlog_printf(e->o.runlog,
			      "shutdown_grace over: stopping %zu %s",
			      e->nruns, plural(e->nruns, "attempt", "attempts"));
	for (size_t i = 0; i < e->nruns; i++)
		if (!e->runs[i].kill_ns)
			runs_signal(e, &e->runs[i], KILL_SHUTDOWN);
	e->draining = false; /* from here on like a plain shutdown */
}

/* SIGHUP: build the new configuration, then swap; a bad one is refused. */
void engine_reload(struct engine *e)
{
	runlog_reopen(e->o.runlog);
	if (!e->o.conf_path)
		return;
	struct conf *c = conf_load(e->o.conf_path);
	if (!c) {
		if (e->o.runlog) /* which copies it to stderr */
			runlog_log(e->o.runlog, RUNLOG_ERR,
				   "reload of %s failed; the old configuration "
				   "stays",
				   e->o.conf_path);
		else
			error("reload of %s failed; the old configuration "
			      "stays",
			      e->o.conf_path);
		return;
	}
	/* Children still running point into the old one: keep it. */
	GROW(e->old_confs, e->capold, e->nold + 1);
	e->old_confs[e->nold++] = e->c;
	e->c = c;
	alerts_set_conf(e->alerts, c);
	e->sh.sym_conf.threshold = (uint32_t)c->breaker_threshold;
	e->sh.sym_conf.open_ms = c->breaker_open_ms;
	e->sh.sym_conf.max_open_ms = c->breaker_open_ms * 16;
	e->sh.src_conf = e->sh.sym_conf;
	e->sh.corr.window_ms = c->corr_window_ms;
	e->sh.corr.min_group = c->min_group;
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		const struct agent_conf *a = conf_agent(c, eb->b.c.agent);
		if (a)
			eb->agent = a;
		else
			runlog_printf(e->o.runlog,
				      "batch %s: agent %s left the "
				      "configuration; it keeps the old one",
				      eb->id, eb->b.c.agent);
		sched_env_base(e, eb);
	}
	runlog_printf(e->o.runlog, "configuration reloaded from %s",
		      e->o.conf_path);
}

void engine_release_reservations(struct engine *e)
{
	for (size_t i = 0; i < e->nbatches; i++)
		if (!e->batches[i]->closed)
			sched_release(e->batches[i]);
}

/*
 * Signals.  A child runs as our uid and may send us anything: every
 * signal whose default would end or stop the runner without a word is
 * blocked and read from the signalfd (caught_signals), and handle_signals
 * says what each does.  None is set to SIG_IGN, which a child would
 * inherit: children get the mask the runner was given (child_mask), and
 * exec resets handlers.  The faults cannot be blocked (a real one would
 * then kill at once, without even a sanitizer's report): fault_guard
 * ignores those another process sends.
 */
static void caught_signals(sigset_t *set)
{
	static const int sigs[] = {
		SIGCHLD, SIGTERM, SIGINT,  SIGHUP,    SIGQUIT, SIGUSR1,
		SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ,
		SIGTSTP, SIGTTIN, SIGTTOU, SIGIO,     SIGPWR,
#ifdef SIGSTKFLT
		SIGSTKFLT,
#endif
	};
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(set, sigs[i]);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(set, sig);
}

static struct sigaction fault_prev[NSIG];

/* Async-signal-safe.  si_code <= 0: sent by kill(2) and its like, not a
 * fault; another process's is ignored.  A real fault (or our own abort)
 * goes to the disposition from before: the faulting instruction runs
 * again, the raise is repeated. */
static void fault_guard(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (si->si_code <= 0 && si->si_pid != getpid())
		return;
	sigaction(sig, &fault_prev[sig], NULL);
	if (si->si_code <= 0)
		raise(sig);
}

static void guard_faults(void)
{
	static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL,
				      SIGTRAP, SIGSYS, SIGABRT };
	static bool done;
	if (done)
		return;
	done = true;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fault_guard;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigaction(faults[i], &sa, &fault_prev[faults[i]]);
}

/* The running attempt whose environment pid has (RUNNER_HOME, _BATCH_ID
 * and _SYMBOL, as sched.c gives them): a descendant that left the
 * attempt's group keeps them.  NULL when none, or pid is gone. */
static struct run *run_of_environ(struct engine *e, pid_t pid)
{
	char path[64];
	const char *home = NULL, *batch = NULL, *symbol = NULL;
	struct sb env = SB_INIT;
	struct run *found = NULL;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (read_fd_bounded(fd, 1 << 20, &env) < 0 || !env.len)
		goto out;
	sb_addc(&env, '\0');
	for (size_t i = 0; i < env.len;) {
		const char *kv = env.buf + i;
		if (!strncmp(kv, "RUNNER_HOME=", 12))
			home = kv + 12;
		else if (!strncmp(kv, "RUNNER_BATCH_ID=", 16))
			batch = kv + 16;
		else if (!strncmp(kv, "RUNNER_SYMBOL=", 14))
			symbol = kv + 14;
		i += strlen(kv) + 1;
	}
	if (!home || !batch || !symbol || strcmp(home, e->home_abs))
		goto out;
	for (size_t i = 0; i < e->nruns && !found; i++)
		if (!strcmp(e->runs[i].eb->id, batch) &&
		    !strcmp(e->runs[i].eb->b.items[e->runs[i].item].symbol,
			    symbol))
			found = &e->runs[i];
out:
	close(fd);
	sb_release(&env);
	return found;
}

/* A signal from one of an attempt's processes (its group, or a
 * descendant that left it but keeps its environment): that attempt ends
 * with the runner, an interruption that counts (attempt.h).  A process
 * already gone, or that cleared its environment, is not told from a
 * user's. */
static struct run *signal_sender(struct engine *e,
				 const struct signalfd_siginfo *si)
{
	if (e->o.ops || si->ssi_code == SI_KERNEL || !si->ssi_pid)
		return NULL;
	pid_t pid = (pid_t)si->ssi_pid, pgid = getpgid(pid);
	for (size_t i = 0; i < e->nruns; i++)
		if (e->runs[i].pid == pid || e->runs[i].pid == pgid)
			return &e->runs[i];
	return run_of_environ(e, pid);
}

/* A signal that would have stopped or ended the runner silently is
 * ignored, and said once per signal (a child may send thousands). */
static void ignored_signal(struct engine *e, const struct signalfd_siginfo *si)
{
	char name[32];
	int sig = (int)si->ssi_signo;
	if (sig < 64 && (e->signals_seen & (1ull << sig)))
		return;
	if (sig < 64)
		e->signals_seen |= 1ull << sig;
	exec_signame(sig, name, sizeof(name));
	struct run *run = signal_sender(e, si);
	char from[256];
	if (run)
		snprintf(from, sizeof(from), "batch %s, item %s (pid %u)",
			 run->eb->id, run->eb->b.items[run->item].symbol,
			 si->ssi_pid);
	else if (si->ssi_code == SI_KERNEL)
		snprintf(from, sizeof(from), "the kernel");
	else
		snprintf(from, sizeof(from), "pid %u", si->ssi_pid);
	runlog_printf(e->o.runlog, "%s from %s ignored", name, from);
	info("%s from %s ignored", name, from);
}

static void handle_signals(struct engine *e)
{
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(e->sigfd, &si, sizeof(si));
		if (n != (ssize_t)sizeof(si))
			break;
		struct run *from;
		switch (si.ssi_signo) {
		case SIGCHLD:
			break; /* reaped below */
		case SIGTERM:
		case SIGINT:
		case SIGQUIT:
			if ((from = signal_sender(e, &si)))
				from->stopped_runner = true;
			start_shutdown(e, (int)si.ssi_signo);
			break;
		case SIGHUP:
			if (e->o.daemon)
				engine_reload(e);
			break;
		case SIGXCPU:
			/* The kernel's: our own RLIMIT_CPU, SIGKILL is near. */
			if (si.ssi_code == SI_KERNEL) {
				start_shutdown(e, SIGXCPU);
				break;
			}
			ignored_signal(e, &si);
			break;
		default:
			/* SIGXFSZ among them: the write fails (EFBIG) and is
			 * handled as any failed write. */
			ignored_signal(e, &si);
			break;
		}
	}
	runs_reap(e);
}

static void drain_inotify(struct engine *e)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool control = false;
	ssize_t n;
	while ((n = read(e->infd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				/* Events were lost: look at everything. */
				control = true;
				e->spool_dirty = true;
			} else if (ev->wd == e->spool_wd) {
				/* Only a name the scan takes: a dot-file
				 * rewritten all the time costs no scan. */
				if (!ev->len || spool_job_name(ev->name))
					e->spool_dirty = true;
			} else if (ev->wd == e->control_wd) {
				if (!ev->len || control_request_name(ev->name))
					control = true;
			} else if (ev->wd == e->events_wd && e->sh_ok) {
				shared_sync(&e->sh);
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	if (control)
		control_poll(e->h, requests_owns, requests_control_cb, e);
}

/* Nothing open but batches that wait only on paused items. */
static bool only_paused_left(struct engine *e)
{
	for (size_t i = 0; i < e->nbatches; i++) {
		const struct ebatch *eb = e->batches[i];
		const struct batch *b = &eb->b;
		if (eb->closed)
			continue;
		if (eb->running || b->count[ST_PENDING] || b->count[ST_STARTING] ||
		    b->count[ST_RETRY_WAIT] || b->count[ST_RUNNING] ||
		    (!b->final && !b->count[ST_PAUSED]))
			return false;
	}
	return true;
}

static bool all_closed(struct engine *e)
{
	for (size_t i = 0; i < e->nbatches; i++)
		if (!e->batches[i]->closed)
			return false;
	return true;
}

static int cmp_ns(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_overhead(struct engine *e)
{
	if (!e->trace || !e->noverhead)
		return;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
		     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	qsort(e->overhead_ns, e->noverhead, sizeof(int64_t), cmp_ns);
	fprintf(stderr, "runner: per-item overhead: %zu items, median %.1f us, "
			"p95 %.1f us; runner cpu %.1f us per item; peak rss %ld KiB\n",
		e->noverhead, (double)e->overhead_ns[e->noverhead / 2] / 1000,
		(double)e->overhead_ns[e->noverhead * 95 / 100] / 1000,
		cpu / (double)e->noverhead, ru.ru_maxrss);
}

static bool daemon_up(struct engine *e)
{
	return e->o.daemon && !e->shutdown;
}

/* Retention (a child process) is a real daemon's. */
static bool real_daemon_up(struct engine *e)
{
	return daemon_up(e) && !e->o.ops;
}

/* The metrics file: a real daemon's or run's, not a simulation's. */
static bool metrics_wanted(struct engine *e)
{
	return !e->o.ops && (daemon_up(e) || !e->o.daemon);
}

static bool stats_wanted(struct engine *e)
{
	return e->stats.dirty || symstats_busy(&e->stats);
}

static int64_t every(int64_t ms)
{
	return mono_ns() + ms * 1000000LL;
}

/* Batches whose runner died, groups whose members ended elsewhere, and a
 * rescan of spool/ (a lost event, a claim that failed for a passing
 * reason). */
static int64_t chore_orphans(struct engine *e)
{
	engine_take_orphans(e);
	circ_settle(e);
	e->spool_dirty = true;
	control_sweep(e->h, CONTROL_STALE_S);
	return every(ORPHAN_CHECK_MS);
}

static int64_t chore_metrics(struct engine *e)
{
	write_metrics(e);
	return every(METRICS_INTERVAL_MS);
}

static int64_t chore_retention(struct engine *e)
{
	start_retention(e);
	return every(RETENTION_INTERVAL_MS);
}

static const struct chore chores[CHORES] = {
	{ "orphans", daemon_up, chore_orphans },
	{ "metrics", metrics_wanted, chore_metrics },
	{ "retention", real_daemon_up, chore_retention },
	{ "symbols", stats_wanted, flush_stats },
};


static void run_chores(struct engine *e)
{
	int64_t mono = mono_ns();
	for (size_t i = 0; i < CHORES; i++)
		if (chores[i].wanted(e) && mono >= e->chore_next_ns[i])
			e->chore_next_ns[i] = chores[i].run(e);
}

/* Children that ended: freed slots first when what exited succeeded (its
 * accounting can wait); a failure is accounted first, so that a forming
 * failure group stops the next spawn. */
static void phase_exits(struct engine *e)
{
	if (e->o.ops)
		runs_reap(e); /* no SIGCHLD in the simulator: look every turn */
	if (runs_exits_failed(e)) {
		runs_finish_exited(e);
		circ_react(e);
		sched_spawn_ready(e);
	} else {
		sched_spawn_ready(e);
		runs_finish_exited(e);
	}
}

/* A daemon takes the batches of a resuming group's members that nobody
 * runs, to run them. */
static void take_resumed(struct engine *e)
{
	if (!e->o.daemon || !e->sh_ok)
		return;
	for (size_t gi = 0; gi < e->sh.ngroups; gi++) {
		const struct sh_group *g = e->sh.groups[gi];
		if (g->status != GROUP_RESUMING)
			continue;
		for (size_t k = 0; k < g->nm; k++)
			if (!g->m[k].final && !engine_find(e, g->m[k].batch) &&
			    engine_take(e, g->m[k].batch, -1, 0) == 0)
				return; /* the groups may have changed: next turn */
	}
}

/* Groups and circuits: what the home's shared state asks of our batches. */
static void phase_circuits(struct engine *e)
{
	if (e->o.ops && e->sh_ok)
		shared_sync(&e->sh); /* the simulator has no inotify */
	circ_react(e);
	take_resumed(e);
	circ_try_trials(e);
	circ_check_trials(e);
	sched_undefer(e);
}

/* Journal commits and views, per batch. */
static void phase_write(struct engine *e)
{
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		/* A full disk is tried again after STALL_RETRY_MS, not on
		 * every turn. */
		if (e->stalled && mono_ns() < e->stall_until_ns)
			continue;
		if (journal_dirty(&eb->j)) {
			bool due = mono_ns() >= eb->j.oldest_unsynced_ns +
					JOURNAL_COMMIT_MS * 1000000LL;
			if (engine_commit(e, eb, due) == 0 && due)
				views_report_durable(e, eb);
		}
		views_flush_meta(e, eb, false);
	}
}

/* Whether the loop is over. */
static bool loop_over(struct engine *e)
{
	if (e->io_failed)
		return true;
	if (e->shutdown && !e->nruns) {
		engine_release_reservations(e);
		return true;
	}
	views_check_done(e);
	if (e->o.daemon) {
		adopt_compact(e);
		return e->o.once && !e->nruns && only_paused_left(e) &&
		       adopt_spool_empty(e);
	}
	return !e->nruns && (all_closed(e) || e->no_dispatch);
}

void engine_begin(struct engine *e)
{
	control_sweep(e->h, CONTROL_STALE_S);
	control_poll(e->h, requests_owns, requests_control_cb, e);
	if (!e->no_dispatch)
		circ_settle(e);
	if (!e->metrics.started_ms)
		metrics_init(&e->metrics, now_ms(), e->o.daemon);
	if (e->o.daemon) {
		e->spool_dirty = true;
		for (size_t i = 0; i < CHORES; i++)
			e->chore_next_ns[i] = mono_ns();
		/* taken at start already (cmd_daemon) */
		e->chore_next_ns[0] = every(ORPHAN_CHECK_MS);
		tell_status(e, true);
	}
}

bool engine_turn(struct engine *e)
{
	e->kick = false;
	phase_exits(e);
	runs_check_timers(e);
	check_drain(e);
	phase_circuits(e);
	alerts_run_hooks(e->alerts, e->pid, &e->child_mask);
	alerts_check(e->alerts);
	run_chores(e);
	if (e->o.daemon && !e->shutdown && e->spool_dirty) {
		e->spool_dirty = false;
		engine_claim_spool(e);
	}
	sched_dispatch(e);
	phase_write(e);
	if (loop_over(e)) {
		tell_manager(e, "STOPPING=1");
		return false;
	}
	if (e->o.daemon)
		tell_status(e, false);
	if (progress_due(&e->prog)) {
		size_t paused = 0;
		for (size_t i = 0; i < e->nbatches; i++)
			paused += e->batches[i]->b.count[ST_PAUSED];
		progress_draw(&e->prog, e->nruns, paused, false);
	}
	return true;
}

int64_t engine_wake_ms(struct engine *e)
{
	int64_t timeout = engine_next_wakeup(e);
	if (e->slot_poll_ns && mono_ns() >= e->slot_poll_ns)
		e->slot_poll_ns = 0;
	sched_audit(e, timeout > INT_MAX ? -1 : timeout);
	if (e->wake_fix_ns) {
		timeout = engine_next_wakeup(e);
		e->wake_fix_ns = 0;
	}
	return timeout > INT_MAX ? -1 : timeout;
}

int engine_end(struct engine *e)
{
	/* Leaving: every batch still open is written down as it stands. */
	if (e->io_failed) {
		for (size_t i = 0; i < e->nruns; i++)
			engine_kill_group(e, e->runs[i].pid, SIGKILL);
	}
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		if (!e->io_failed)
			engine_commit(e, eb, true);
		if (!e->io_failed)
			views_flush_meta(e, eb, true);
		views_close_batch(e, eb);
	}
	flush_stats(e);
	finish_hooks(e);
	if (!e->o.ops)
		write_metrics(e);
	progress_clear(&e->prog);
	print_overhead(e);
	if (e->io_failed)
		return EX_IOERR_;
	if (e->home_failed)
		return EX_CANTCREAT_;
	if (e->o.daemon)
		return 0;
	if (e->shutdown)
		return EX_TEMPFAIL_;
	int status = e->exit_status;
	for (size_t i = 0; i < e->nbatches; i++)
		if (e->batches[i]->result > status)
			status = e->batches[i]->result;
	return status;
}

int engine_run(struct engine *e)
{
	struct epoll_event evs[64];
	engine_begin(e);
	while (engine_turn(e)) {
		int64_t timeout = engine_wake_ms(e);
		int64_t until = timeout < 0 ? -1 : mono_ns() + timeout * 1000000LL;
		/* What children print only moves into their lanes: it changes
		 * no decision, so it takes no turn (a child's exit closes its
		 * pipes just before its SIGCHLD: one turn, not three). */
		for (bool turn = false; !turn;) {
			int n = epoll_wait(e->epfd, evs, 64, (int)timeout);
			if (n < 0 && errno != EINTR) {
				error("epoll_wait: %s", strerror(errno));
				return engine_end(e);
			}
			turn = n <= 0;
			for (int i = 0; i < n; i++) {
				uint64_t key = evs[i].data.u64;
				if (key & EV_PIPE) {
					runs_pump(e, (pid_t)(uint32_t)key);
					continue;
				}
				turn = true;
				if (key == (uint64_t)e->sigfd)
					handle_signals(e);
				else if (key == (uint64_t)e->infd)
					drain_inotify(e);
			}
			if (!turn && until >= 0) {
				timeout = (until - mono_ns() + 999999) / 1000000;
				if (timeout <= 0)
					turn = true;
			}
		}
	}
	return engine_end(e);
}

const struct batch *engine_batch(struct engine *e, const char *id)
{
	struct ebatch *eb = engine_find(e, id);
	return eb ? &eb->b : NULL;
}

void engine_batch_written(struct engine *e, const char *id, bool *written)
{
	struct ebatch *eb = engine_find(e, id);
	*written = eb && !eb->j.pending.len;
}

size_t engine_audit(struct engine *e, char *what, size_t nwhat)
{
	size_t lost = e->liveness_bugs;
	if (what && nwhat)
		snprintf(what, nwhat, "%s", e->liveness_what);
	for (size_t i = 0; i < e->nbatches; i++)
		if (!e->batches[i]->closed)
			lost += sched_audit_batch(e->batches[i], false, false,
						  what, nwhat);
	return lost;
}

/* As kill -9: the engine's memory and descriptors go, nothing is written
 * (engine_free writes nothing either; a journal's records not yet written
 * are lost, as they would be). */
void engine_abandon(struct engine *e)
{
	engine_free(e);
}

void engine_settle(struct engine *e)
{
	e->no_dispatch = true;
}

struct engine *engine_new(struct home *h, const struct conf *c,
			  const struct engine_opts *o)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	sigset_t block;
	e->h = h;
	e->c = e->given = c;
	e->o = *o;
	e->pid = getpid();
	e->trace = getenv("RUNNER_TRACE_OVERHEAD") != NULL;
	char *abs = realpath(h->path, NULL);
	e->home_abs = abs ? abs : xstrdup(h->path);
	e->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (e->devnull < 0)
		die(EX_INTERNAL, "/dev/null: %s", strerror(errno));

	caught_signals(&block);
	sigprocmask(SIG_BLOCK, &block, &e->child_mask);
	for (int sig = 1; sig < NSIG; sig++) {
		if (sigismember(&block, sig) != 1)
			continue;
		sigdelset(&e->child_mask, sig);
		/* An ignored signal never reaches the signalfd, and children
		 * would inherit SIG_IGN (nohup's SIGHUP, a background job's
		 * SIGINT): blocked, the default does nothing here. */
		signal(sig, SIG_DFL);
	}
	guard_faults();
	signal(SIGPIPE, SIG_IGN);
	e->sigfd = signalfd(-1, &block, SFD_NONBLOCK | SFD_CLOEXEC);
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	/* The simulator has no inotify (and closing one costs milliseconds). */
	e->infd = o->ops ? -1 : inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (e->sigfd < 0 || e->epfd < 0)
		die(EX_INTERNAL, "signalfd/epoll: %s", strerror(errno));
	/* Grandchildren that escape their group come back to us to reap. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = (uint64_t)e->sigfd };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->sigfd, &ev);
	e->control_wd = e->spool_wd = e->events_wd = -1;
	e->sh_ok = shared_open(&e->sh, h->state, c) == 0;
	if (!e->sh_ok)
		warning("state/events: %s; failure groups and circuits are "
			"off in this process",
			strerror(errno));
	e->alerts = alerts_open(h, c);
	if (e->infd >= 0) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/state/control", e->home_abs);
		e->control_wd = inotify_add_watch(e->infd, path,
						  IN_MOVED_TO | IN_CLOSE_WRITE);
		/* Other runners' failures, groups and resumes. */
		snprintf(path, sizeof(path), "%s/state/events", e->home_abs);
		e->events_wd = inotify_add_watch(e->infd, path,
						 IN_MODIFY | IN_MOVE_SELF |
							 IN_DELETE_SELF);
		if (o->daemon) {
			snprintf(path, sizeof(path), "%s/spool", e->home_abs);
			e->spool_wd = inotify_add_watch(
				e->infd, path, IN_MOVED_TO | IN_CLOSE_WRITE);
			if (e->spool_wd < 0)
				warning("cannot watch spool/ (%s): new jobs are "
					"seen when the daemon rescans (every 10 s)",
					strerror(errno));
		}
		ev.data.u64 = (uint64_t)e->infd;
		epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->infd, &ev);
	}
	progress_init(&e->prog, o->progress && !o->json && verbosity >= 0);
	return e;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nbatches; i++)
		adopt_free_batch(e->batches[i]);
	free(e->batches);
	/* Every configuration the engine loaded itself is its own. */
	if (e->sh_ok)
		shared_close(&e->sh);
	metrics_release(&e->metrics);
	alerts_close(e->alerts);
	symstats_release(&e->stats);
	free(e->trials);
	for (size_t i = 0; i < e->nsym_trials; i++)
		free(e->sym_trials[i]);
	free(e->sym_trials);
	for (size_t i = 0; i < e->nold; i++)
		if (e->old_confs[i] != e->given)
			conf_free((struct conf *)e->old_confs[i]);
	if (e->c != e->given)
		conf_free((struct conf *)e->c);
	free(e->old_confs);
	for (size_t i = 0; i < e->nruns; i++) {
		for (int k = 0; k < 2; k++)
			capture_close(&e->runs[i].cap[k]);
		/* Closed, not unlocked: a child still running (the simulator
		 * abandoning a runner) holds its slot with its own copy. */
		if (e->runs[i].slot_fd >= 0)
			close(e->runs[i].slot_fd);
	}
	for (size_t i = 0; i < e->nexited; i++)
		for (int k = 0; k < 2; k++)
			capture_close(&e->exited[i].run.cap[k]);
	free(e->runs);
	free(e->exited);
	free(e->overhead_ns);
	free(e->home_abs);
	close(e->devnull);
	/* A SIGTERM that came after the loop ended, while the last state was
	 * written, has been answered: the runner is stopping.  Take it off
	 * the queue, or restoring the mask would deliver it with its default
	 * action and lose the exit status (a run killed by SIGTERM, 143).
	 * Once told to stop, a repeat (timeout(1) signals the process and
	 * then its group) is ignored for the little that is left. */
	struct signalfd_siginfo si;
	while (read(e->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			e->signals++;
	if (e->signals) {
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
	}
	close(e->sigfd);
	close(e->epfd);
	if (e->infd >= 0)
		close(e->infd);
	sigprocmask(SIG_SETMASK, &e->child_mask, NULL);
	free(e);
}
