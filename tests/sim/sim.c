/*
 * sim: the runner's engine under a deterministic simulation.
 *
 *   build/sim/sim [-v] [-n SCENARIOS] [-i ITEMS] SEED
 *
 * One process, one thread, a virtual clock (util_clock_hook) and a seeded
 * random source (util_random_seed): from a seed, everything that happens
 * is the same every time, so a failing seed replays exactly.  Several
 * runner processes share one home (in /dev/shm when there is one): each is
 * a real engine (src/engine.c, the journal, state/events, the slot locks)
 * whose children are virtual (struct engine_ops): they "run" on the clock
 * and end the way the scenario says, writing their stderr and result JSON
 * where a child would.
 *
 * A scenario, drawn from its seed: a few batches of ITEMS symbols on one
 * agent and source; a vendor outage for a while (429s, retryable or not),
 * symbols broken for a while, data errors, timeouts, memory kills, slow
 * items; users who pause, resume, cancel and retry-failed batches and
 * resume or cancel groups; runners killed -9 at any step and started again
 * (a daemon, or a `runner run`); slow turns, in which the clock moves
 * between a turn's decisions and the sleep it computes (a loaded machine);
 * then the faults end and no user acts.
 *
 * After every step it checks (a violation prints the seed, the virtual
 * time, the last events and a command that replays it):
 *   1. liveness: no engine has an item that may start but that nothing
 *      would start, and no engine sleeps for ever with work to do
 *      (engine_audit); once the faults end, every batch is final within a
 *      bound of virtual time;
 *   2. an item ends once: in each journal, a final item changes state only
 *      through retry-failed, or a group pausing its failed member;
 *   3. caps: running children never exceed max_children, the agent's
 *      max_concurrent or a batch's concurrency, across runners;
 *   4. replay equals live: a batch held by an engine whose journal is all
 *      written is the batch its journal replays to;
 *   5. counts equal the fold of the items;
 *   6. every job submitted becomes a batch (or is rejected, with a
 *      reason);
 *   7. no attempt starts on a symbol whose circuit is open, or a source
 *      whose group is open, except the one half-open trial;
 *   8. output (at the end): every attempt that ended holds in its lane's
 *      range exactly the stderr its child wrote, no byte more or less.
 */
#include "batch.h"
#include "conf.h"
#include "engine.h"
#include "exec.h"
#include "home.h"
#include "inifile.h"
#include "journal.h"
#include "job.h"
#include "shared.h"
#include "spool.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXR 3			/* runner processes at once */
#define CAP_GLOBAL 4
#define CAP_AGENT 3		/* the agent's max_concurrent at first */
#define TIMEOUT_MS 5000
#define OPEN_FOR_MS 2000
#define TRACE_KEEP 40
#define ZERO_TURNS_MAX 10000	/* turns without the clock moving: livelock */

/* ---- the seeded generator of the scenario (not the engine's) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int64_t rnd_in(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static bool chance(int permille)
{
	return (int)(rnd() % 1000) < permille;
}

/* ---- the world ---- */

struct vchild {
	pid_t pid;
	int owner;		/* runner slot, -1: its runner is gone */
	char batch[ID_MAX + 1], symbol[40];
	unsigned attempt;
	int64_t end_ms;
	int status;		/* the wait status it ends with */
	bool hangs;		/* ends only when killed */
	bool ignores_term;
	char *err_text, *result;
	char *wrote;		/* the stderr it wrote, kept for check 8 */
	char result_path[PATH_MAX];
	int errfd, slot_fd;
	bool done;		/* ended; reaped or not */
	bool reaped;
	int cap;		/* its runner's max_concurrent when it started */
};

struct runner {
	struct engine *e;
	struct home h;
	struct conf *c;
	bool alive, daemon;
	int64_t wake_at;	/* next turn due, INT64_MAX: an event only */
	struct engine_ops ops;
	struct sim *s;
	int slot;
	char conf_path[PATH_MAX + 32];
};

struct fault_symbol {
	char symbol[40];
	int64_t until;		/* broken until then (exit 70) */
	bool delisted;		/* exit 65, always */
};

struct sim {
	uint64_t seed;
	bool verbose;
	int items;
	int64_t now, start, calm_at, deadline;
	char home[PATH_MAX];
	struct runner r[MAXR];
	struct vchild *kids;
	size_t nkids, capkids;
	pid_t next_pid;
	int64_t down_from, down_until;
	bool down_retryable;
	struct fault_symbol faults[6];
	int nfaults;
	char jobs[8][ID_MAX + 1];
	int njobs;
	char trace[TRACE_KEEP][200];
	int ntrace;
	struct sb all;		/* every event of the scenario */
	long steps, spawns, violations;
	struct shared view;	/* state/events as a checker sees it */
	off_t events_size;	/* state/events at the last look */
	bool resumed_all;
	int64_t next_final_look;
	ino_t events_ino;
	bool view_ok;
	int cap_agent;		/* max_concurrent in conf/runner.ini now */
	int max_attempts;
};

static struct sim *S;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	char *line = S->trace[S->ntrace++ % TRACE_KEEP];
	int n = snprintf(line, 200, "%9.3f ", (double)(S->now - S->start) / 1000);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, 200 - (size_t)n, fmt, ap);
	va_end(ap);
	sb_adds(&S->all, line);
	sb_addc(&S->all, '\n');
	if (S->verbose)
		fprintf(stderr, "  %s\n", line);
}

/* The events of the whole scenario that concern what a violation names
 * (its batches and symbols), and every runner's start, kill and exit:
 * the trace shrunk to what led there. */
static void shrunk_trace(const char *msg)
{
	char words[16][24];
	int nw = 0;
	for (const char *p = msg; *p && nw < 16;) {
		size_t k = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-");
		if (k >= 2 && k < 24 && (strchr("STb", p[0]) || !strncmp(p, "seq", 3)) &&
		    (p[1] >= '0' && p[1] <= '9' ? true : !strncmp(p, "seq", 3))) {
			memcpy(words[nw], p, k);
			words[nw++][k] = '\0';
		}
		p += k ? k : 1;
	}
	/* A symbol named is focus enough; else its batch. */
	int nsym = 0;
	for (int i = 0; i < nw; i++)
		if (words[i][0] == 'S' || words[i][0] == 'T')
			memmove(words[nsym++], words[i], sizeof(words[0]));
	if (nsym)
		nw = nsym;
	fprintf(stderr, "sim: the events that concern it (of %d):\n", S->ntrace);
	for (char *line = S->all.buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		bool keep = strstr(line, "starts") || strstr(line, "killed") ||
			    strstr(line, "exits") || strstr(line, "faults end");
		for (int i = 0; i < nw && !keep; i++) {
			const char *at = strstr(line, words[i]);
			size_t k = strlen(words[i]);
			keep = at && !(at[k] >= '0' && at[k] <= '9');
		}
		if (keep)
			fprintf(stderr, "  %s\n", line);
		if (!nl)
			break;
		*nl = '\n';
		line = nl + 1;
	}
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	S->violations++;
	if (S->violations > 1)
		return;
	fprintf(stderr, "sim: seed %llu: violation at %.3f s (step %ld): %s\n",
		(unsigned long long)S->seed, (double)(S->now - S->start) / 1000,
		S->steps, msg);
	shrunk_trace(msg);
	fprintf(stderr, "sim: replay: build/sim/sim -v -i %d %llu\n", S->items,
		(unsigned long long)S->seed);
}

/* ---- virtual children (struct engine_ops) ---- */

static const char *env_get(char *const *envp, const char *key)
{
	size_t n = strlen(key);
	for (; envp && *envp; envp++)
		if (!strncmp(*envp, key, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static struct fault_symbol *fault_of(const char *symbol)
{
	for (int i = 0; i < S->nfaults; i++)
		if (!strcmp(S->faults[i].symbol, symbol))
			return &S->faults[i];
	return NULL;
}

/* How this attempt goes: decided at its start, from the world then. */
static void decide(struct vchild *k)
{
	int64_t t = S->now;
	struct fault_symbol *f = fault_of(k->symbol);
	bool calm = t >= S->calm_at;
	k->end_ms = t + rnd_in(50, 1500);
	k->status = W_EXITCODE(0, 0);
	k->result = xstrdup("{\"matches\": 1, \"progress\": 1}");
	if (f && f->delisted) {
		k->status = W_EXITCODE(65, 0);
		k->err_text = xasprintf("No price data found, symbol may be "
					"delisted: %s\n", k->symbol);
	} else if (f && t < f->until) {
		k->status = W_EXITCODE(70, 0);
		k->err_text = xasprintf("model diverged for %s\n", k->symbol);
	} else if (t >= S->down_from && t < S->down_until && !calm) {
		k->end_ms = t + rnd_in(30, 300);
		k->status = W_EXITCODE(1, 0);
		free(k->result);
		k->result = xasprintf(
			"{\"progress\": 0.5, \"error\": {\"type\": "
			"\"RateLimitError\", \"category\": \"data_error\", "
			"\"source\": \"koyfin\", \"message\": \"429 Too Many "
			"Requests\", \"retryable\": %s, \"retry_after\": 1}}",
			S->down_retryable ? "true" : "false");
		k->err_text = xstrdup("429 Too Many Requests\n");
	} else if (!calm && chance(20)) {
		k->hangs = true; /* a timeout */
		k->ignores_term = chance(300);
	} else if (!calm && chance(10)) {
		k->status = W_EXITCODE(0, SIGKILL); /* the OOM killer */
	} else if (!calm && chance(40)) {
		k->status = W_EXITCODE(75, 0);
		k->err_text = xasprintf("flaky failure of %s\n", k->symbol);
	}
	if (k->hangs)
		k->end_ms = INT64_MAX;
	if (k->status != W_EXITCODE(0, 0)) {
		free(k->result);
		k->result = NULL;
		if (WIFEXITED(k->status) && WEXITSTATUS(k->status) == 1)
			k->result = xasprintf(
				"{\"progress\": 0.5, \"error\": {\"type\": "
				"\"RateLimitError\", \"category\": \"data_error\", "
				"\"source\": \"koyfin\", \"message\": \"429 Too "
				"Many Requests\", \"retryable\": %s, "
				"\"retry_after\": 1}}",
				S->down_retryable ? "true" : "false");
	}
}

static void check_spawn_allowed(const struct vchild *k);

/* The agent's cap in the configuration a runner has now. */
static int runner_cap(struct runner *r)
{
	const struct agent_conf *a = conf_agent(engine_conf(r->e), "sim");
	return a ? a->max_concurrent : 0;
}

static pid_t v_spawn(void *ctx, const struct spawn *sp, int *exec_errno)
{
	struct runner *r = ctx;
	*exec_errno = 0;
	GROW(S->kids, S->capkids, S->nkids + 1);
	struct vchild *k = &S->kids[S->nkids++];
	memset(k, 0, sizeof(*k));
	k->pid = S->next_pid++;
	k->owner = r->slot;
	k->cap = runner_cap(r);
	const char *sym = sp->argv[0];
	for (size_t i = 0; sp->argv[i]; i++)
		sym = sp->argv[i];
	snprintf(k->symbol, sizeof(k->symbol), "%s", sym);
	snprintf(k->batch, sizeof(k->batch), "%s",
		 env_get(sp->envp, "RUNNER_BATCH_ID") ?: "?");
	const char *a = env_get(sp->envp, "RUNNER_ATTEMPT");
	k->attempt = a ? (unsigned)atoi(a) : 0;
	snprintf(k->result_path, sizeof(k->result_path), "%s",
		 env_get(sp->envp, "RUNNER_RESULT") ?: "");
	/* The engine closes its copies after the spawn: a child keeps its
	 * stderr and its slot lock (which frees the slot when it dies). */
	k->errfd = fcntl(sp->stderr_fd, F_DUPFD_CLOEXEC, 3);
	k->slot_fd = sp->keep_fd >= 0 ? fcntl(sp->keep_fd, F_DUPFD_CLOEXEC, 3)
				      : -1;
	decide(k);
	S->spawns++;
	note("runner %d spawns %s/%s attempt %u (pid %d)%s", r->slot, k->batch,
	     k->symbol, k->attempt, (int)k->pid,
	     k->hangs ? " [hangs]" : WIFSIGNALED(k->status) ? " [oom]"
	     : WEXITSTATUS(k->status) ? " [fails]" : "");
	check_spawn_allowed(k);
	int mine = 0;
	for (size_t i = 0; i < S->nkids; i++)
		mine += !S->kids[i].done && S->kids[i].owner == r->slot;
	if (mine > k->cap)
		violation("runner %d starts a child with %d of its own running "
			  "(its max_concurrent %d)", r->slot, mine, k->cap);
	return k->pid;
}

static struct vchild *kid(pid_t pid)
{
	for (size_t i = 0; i < S->nkids; i++)
		if (S->kids[i].pid == pid && !S->kids[i].done)
			return &S->kids[i];
	return NULL;
}

static void end_child(struct vchild *k, int status)
{
	if (k->done)
		return;
	k->done = true;
	k->status = status;
	k->end_ms = S->now;
	if (WIFEXITED(status) && k->err_text && k->errfd >= 0 &&
	    write(k->errfd, k->err_text, strlen(k->err_text)) > 0)
		k->wrote = xstrdup(k->err_text);
	if (WIFEXITED(status) && k->result && k->result_path[0]) {
		int fd = open(k->result_path,
			      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			(void)!write(fd, k->result, strlen(k->result));
			close(fd);
		}
	}
	if (k->errfd >= 0)
		close(k->errfd);
	if (k->slot_fd >= 0)
		close(k->slot_fd); /* the slot is free when the child is gone */
	k->errfd = k->slot_fd = -1;
	free(k->err_text);
	free(k->result);
	k->err_text = k->result = NULL;
	if (k->owner < 0)
		k->reaped = true; /* init's, not ours */
}

static int v_kill_group(void *ctx, pid_t pgid, int sig)
{
	(void)ctx;
	struct vchild *k = kid(pgid);
	if (!k)
		return 0;
	if (sig == SIGKILL) {
		end_child(k, W_EXITCODE(0, SIGKILL));
	} else if (sig == SIGTERM && !k->ignores_term) {
		k->hangs = false;
		if (k->end_ms > S->now + 10)
			k->end_ms = S->now + 10;
		k->status = W_EXITCODE(0, SIGTERM);
	}
	return 0;
}

static int v_kill_env(void *ctx, const char *const *entries, size_t n)
{
	(void)ctx;
	const char *batch = NULL;
	for (size_t i = 0; i < n; i++)
		if (!strncmp(entries[i], "RUNNER_BATCH_ID=", 16))
			batch = entries[i] + 16;
	int count = 0;
	for (size_t i = 0; batch && i < S->nkids; i++) {
		struct vchild *k = &S->kids[i];
		if (!k->done && !strcmp(k->batch, batch)) {
			end_child(k, W_EXITCODE(0, SIGKILL));
			count++;
		}
	}
	return count;
}

static int v_reap(void *ctx, pid_t *pid, int *status, struct rusage *ru)
{
	struct runner *r = ctx;
	memset(ru, 0, sizeof(*ru));
	for (size_t i = 0; i < S->nkids; i++) {
		struct vchild *k = &S->kids[i];
		if (k->owner != r->slot || k->reaped)
			continue;
		if (!k->done && !k->hangs && k->end_ms <= S->now)
			end_child(k, k->status);
		if (!k->done)
			continue;
		k->reaped = true;
		*pid = k->pid;
		*status = k->status;
		return 1;
	}
	return 0;
}

/* Children end on the clock: the earliest end to come. */
static int64_t next_child_end(void)
{
	int64_t best = INT64_MAX;
	for (size_t i = 0; i < S->nkids; i++) {
		const struct vchild *k = &S->kids[i];
		if (!k->done && !k->hangs && k->end_ms < best)
			best = k->end_ms;
	}
	return best;
}

/* The runner that owns a child hears of its end at once (SIGCHLD). */
static void deliver_ends(void)
{
	for (size_t i = 0; i < S->nkids; i++) {
		struct vchild *k = &S->kids[i];
		if (k->done || k->hangs || k->end_ms > S->now)
			continue;
		if (k->owner >= 0)
			S->r[k->owner].wake_at = S->now;
		else
			end_child(k, k->status);
	}
	for (size_t i = 0; i < S->nkids; i++)
		if (S->kids[i].done && !S->kids[i].reaped &&
		    S->kids[i].owner >= 0)
			S->r[S->kids[i].owner].wake_at = S->now;
}

/* ---- runners ---- */

static int start_runner(bool daemon)
{
	int slot = -1;
	for (int i = 0; i < MAXR && slot < 0; i++)
		if (!S->r[i].alive)
			slot = i;
	if (slot < 0)
		return -1;
	struct runner *r = &S->r[slot];
	memset(r, 0, sizeof(*r));
	r->slot = slot;
	r->s = S;
	r->daemon = daemon;
	r->h = (struct home)HOME_INIT;
	snprintf(r->conf_path, sizeof(r->conf_path), "%s/conf/runner.ini",
		 S->home);
	r->c = conf_load(r->conf_path);
	if (!r->c || home_open(&r->h, S->home) < 0) {
		violation("cannot start a runner: %s", strerror(errno));
		return -1;
	}
	r->ops = (struct engine_ops){ r, v_spawn, v_kill_group, v_kill_env,
				      v_reap };
	struct engine_opts o = { .daemon = daemon, .ops = &r->ops,
				 .conf_path = r->conf_path };
	r->e = engine_new(&r->h, r->c, &o);
	r->alive = true;
	r->wake_at = S->now;
	spool_sweep(&r->h, r->c);
	engine_take_orphans(r->e);
	engine_begin(r->e);
	note("runner %d starts (%s)", slot, daemon ? "daemon" : "run");
	return slot;
}

static void stop_runner(struct runner *r, bool crash)
{
	if (!r->alive)
		return;
	if (crash) {
		note("runner %d is killed -9", r->slot);
		engine_abandon(r->e);
		/* its children live on, orphans (init reaps them) */
		for (size_t i = 0; i < S->nkids; i++)
			if (S->kids[i].owner == r->slot) {
				S->kids[i].owner = -1;
				if (S->kids[i].done)
					S->kids[i].reaped = true;
			}
	} else {
		engine_end(r->e);
		engine_free(r->e);
		note("runner %d exits", r->slot);
	}
	conf_free(r->c);
	home_release(&r->h);
	r->alive = false;
	r->e = NULL;
}

/* ---- the checks ---- */

static void fold_view(void)
{
	if (!S->view_ok)
		return;
	shared_sync(&S->view);
}

/* 7: an attempt starts only where the circuits allow it. */
static void check_spawn_allowed(const struct vchild *k)
{
	if (!S->view_ok)
		return;
	fold_view();
	const struct sh_symbol *sy = shared_symbol(&S->view, k->symbol);
	if (sy && sy->brk.state != CIRCUIT_CLOSED && !sy->brk.trial_taken)
		violation("%s/%s attempt %u started while its symbol's circuit "
			  "is %s and no trial is taken",
			  k->batch, k->symbol, k->attempt,
			  circuit_name(sy->brk.state));
	/* A source may have several open groups (a rate limit, timeouts):
	 * the attempt must be the half-open trial of one of them. */
	const struct sh_group *open = NULL;
	bool trial = false;
	for (size_t i = 0; i < S->view.ngroups; i++) {
		const struct sh_group *g = S->view.groups[i];
		if (g->status != GROUP_OPEN || strcmp(g->agent, "sim") ||
		    !g->source || strcmp(g->source, "koyfin"))
			continue;
		open = g;
		trial |= g->brk.trial_taken && g->trial_symbol &&
			 !strcmp(g->trial_symbol, k->symbol);
	}
	if (open && !trial)
		violation("%s/%s attempt %u started while group %s is open and "
			  "it is not a group's trial (circuit %s until %+.3f s, "
			  "trial %s %s)",
			  k->batch, k->symbol, k->attempt, open->id,
			  circuit_name(open->brk.state),
			  (double)(open->brk.until - S->now) / 1000,
			  open->brk.trial_taken ? "taken by" : "free, last",
			  open->trial_symbol ? open->trial_symbol : "-");
}

/* 3: caps, across runners. */
static void check_caps(void)
{
	/* One agent, whose cap is below the global one.  After a reload
	 * (SIGHUP) the runners may hold different caps, and children started
	 * under a higher one run on: the bound is the highest cap a live
	 * runner holds or a running child started under. */
	int running = 0, cap = 0;
	for (size_t i = 0; i < S->nkids; i++)
		if (!S->kids[i].done) {
			running++;
			if (S->kids[i].cap > cap)
				cap = S->kids[i].cap;
		}
	for (int i = 0; i < MAXR; i++)
		if (S->r[i].alive && runner_cap(&S->r[i]) > cap)
			cap = runner_cap(&S->r[i]);
	if (running > cap)
		violation("%d children run at once (max_concurrent %d)",
			  running, cap);
	for (int j = 0; j < S->njobs; j++) {
		int n = 0;
		for (size_t i = 0; i < S->nkids; i++)
			n += !S->kids[i].done && !strcmp(S->kids[i].batch, S->jobs[j]);
		if (!strcmp(S->jobs[j], "seq") && n > 1)
			violation("batch seq (concurrency 1) runs %d at once", n);
	}
}

/* 2 and 5: a journal, record by record. */
struct jcheck {
	struct batch b;
	const char *id;
};

static int jcheck_fn(void *arg, const void *payload, size_t len)
{
	struct jcheck *jc = arg;
	struct rec r;
	if (rec_decode(payload, len, &r) < 0)
		return -1;
	uint8_t *before = NULL;
	if (jc->b.nitems) {
		before = xmalloc(jc->b.nitems);
		for (size_t i = 0; i < jc->b.nitems; i++)
			before[i] = jc->b.items[i].state;
	}
	size_t n = jc->b.nitems;
	if (batch_apply(&jc->b, &r) < 0) {
		free(before);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int was = before[i], is = jc->b.items[i].state;
		if (!state_final(was) || was == is)
			continue;
		bool ok = (r.type == R_REQUEUE && was == ST_FAILED) ||
			  (r.type == R_PAUSE && r.group && was == ST_FAILED);
		if (!ok)
			violation("batch %s: item %s went from %s to %s (record "
				  "%d)",
				  jc->id, jc->b.items[i].symbol, state_name(was),
				  state_name(is), r.type);
	}
	free(before);
	return 0;
}

static void check_counts(const struct batch *b, const char *id)
{
	size_t count[ST_COUNT] = { 0 };
	for (size_t i = 0; i < b->nitems; i++)
		count[b->items[i].state]++;
	for (int st = 0; st < ST_COUNT; st++)
		if (count[st] != b->count[st])
			violation("batch %s: %zu items %s, the counts say %zu", id,
				  count[st], state_name(st), b->count[st]);
}

/* 4: a held batch whose journal is written replays to itself. */
static void check_live(const struct batch *live, const struct batch *disk,
		       const char *id)
{
	if (live->nitems != disk->nitems)
		return violation("batch %s: %zu items live, %zu replayed", id,
				 live->nitems, disk->nitems);
	for (size_t i = 0; i < live->nitems; i++) {
		const struct item *a = &live->items[i], *d = &disk->items[i];
		if (a->state != d->state || a->nattempts != d->nattempts)
			return violation("batch %s: %s is %s (attempt %u) live, "
					 "%s (attempt %u) replayed",
					 id, a->symbol, state_name(a->state),
					 a->nattempts, state_name(d->state),
					 d->nattempts);
	}
}

static const struct batch *held(const char *id, struct runner **by)
{
	for (int i = 0; i < MAXR; i++)
		if (S->r[i].alive) {
			const struct batch *b = engine_batch(S->r[i].e, id);
			if (b) {
				*by = &S->r[i];
				return b;
			}
		}
	return NULL;
}

static bool all_final(bool *any_paused)
{
	bool all = true;
	*any_paused = false;
	for (int j = 0; j < S->njobs; j++) {
		char path[PATH_MAX + 128];
		snprintf(path, sizeof(path), "%s/batches/%s", S->home, S->jobs[j]);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (getenv("SIM_DEBUG"))
				fprintf(stderr, "no batch %s\n", S->jobs[j]);
			all = false;
			continue;
		}
		struct jcheck jc = { .id = S->jobs[j] };
		batch_init(&jc.b);
		struct journal jr;
		if (journal_open(&jr, fd, "journal", false, batch_replay, &jc.b) == 0) {
			journal_close(&jr);
			if (!jc.b.final && getenv("SIM_DEBUG"))
				fprintf(stderr, "not final %s\n", S->jobs[j]);
			if (!jc.b.final)
				all = false;
			if (jc.b.count[ST_PAUSED])
				*any_paused = true;
		} else {
			all = false;
		}
		batch_release(&jc.b);
		close(fd);
	}
	return all;
}

/* 6: a job accepted is a batch, or rejected for a reason of its own
 * (never as a duplicate of itself). */
static void check_job(const char *id)
{
	char path[PATH_MAX + 128], why[256] = "";
	snprintf(path, sizeof(path), "%s/spool/rejected/%s.job.reason", S->home,
		 id);
	FILE *fp = fopen(path, "r");
	if (fp) {
		if (!fgets(why, sizeof(why), fp))
			why[0] = '\0';
		fclose(fp);
		violation("job %s was accepted, then rejected: %s", id, why);
	}
}

/* 3 of the groups: a member whose failure joined a group that is open
 * waits with it (paused), it does not end failed, while its batch is
 * open. */
static void check_members(const struct batch *b, const char *id)
{
	if (!S->view_ok || b->final)
		return;
	fold_view();
	for (size_t gi = 0; gi < S->view.ngroups; gi++) {
		const struct sh_group *g = S->view.groups[gi];
		if (g->status != GROUP_OPEN)
			continue;
		for (size_t k = 0; k < g->nm; k++) {
			const struct sh_member *m = &g->m[k];
			if (!m->failed || m->final || strcmp(m->batch, id))
				continue;
			struct item *it = batch_item((struct batch *)b, m->symbol);
			/* Runners learn of another's group at their next turn:
			 * a member seen failed a second of virtual time after
			 * the group opened is left failed. */
			if (it && it->state == ST_FAILED &&
			    S->now > g->opened_ms + 1000)
				violation("batch %s: %s failed through group %s, "
					  "which is open, and is left failed",
					  id, m->symbol, g->id);
		}
	}
}

/* 5 of the groups, at the end (every batch final, every runner gone): a
 * group's members are what their items became, so its counts are the
 * fold of its members' items. */
/* Batch id as its journal says now: the batch directory's fd (b filled,
 * the caller releases it), or -1 (none). */
static int replay_job(const char *id, struct batch *b)
{
	char path[PATH_MAX + 128];
	snprintf(path, sizeof(path), "%s/batches/%s", S->home, id);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct journal jr;
	batch_init(b);
	if (journal_open(&jr, fd, "journal", false, batch_replay, b) == 0)
		journal_close(&jr);
	return fd;
}

static void check_groups_final(void)
{
	if (!S->view_ok)
		return;
	fold_view();
	for (int j = 0; j < S->njobs; j++) {
		struct batch b;
		int fd = replay_job(S->jobs[j], &b);
		if (fd < 0)
			continue;
		close(fd);
		for (size_t gi = 0; gi < S->view.ngroups && b.final; gi++) {
			const struct sh_group *g = S->view.groups[gi];
			for (size_t k = 0; k < g->nm; k++) {
				const struct sh_member *m = &g->m[k];
				if (strcmp(m->batch, S->jobs[j]))
					continue;
				struct item *it = batch_item(&b, m->symbol);
				const char *want = it ? state_name(it->state) : "?";
				if (!m->final || strcmp(m->state, want))
					violation("group %s: member %s/%s is %s "
						  "there, %s in its batch",
						  g->id, m->batch, m->symbol,
						  m->final ? m->state : "not final",
						  want);
			}
			if (g->status != GROUP_RESOLVED) {
				bool open_member = false;
				for (size_t k = 0; k < g->nm; k++)
					open_member |= !g->m[k].final;
				if (!open_member)
					violation("group %s: every member is final "
						  "and it is %s", g->id,
						  group_status_name(g->status));
			}
		}
		batch_release(&b);
	}
}

/* 8: each attempt's stderr range holds what its child wrote. */
static void check_outputs(void)
{
	for (int j = 0; j < S->njobs; j++) {
		struct batch b;
		int fd = replay_job(S->jobs[j], &b);
		if (fd < 0)
			continue;
		for (size_t i = 0; i < S->nkids; i++) {
			const struct vchild *k = &S->kids[i];
			struct item *it = strcmp(k->batch, S->jobs[j]) ? NULL
					: batch_item(&b, k->symbol);
			if (!it || !k->attempt || k->attempt > it->nattempts)
				continue;
			const struct attempt *a = &it->log[k->attempt - 1];
			if (!a->session || !(a->out_flags & OUTF_ENDED) ||
			    a->outcome == OUT_INTERRUPTED || k->owner < 0)
				continue;
			size_t want = k->wrote ? strlen(k->wrote) : 0;
			char name[64], got[512] = "";
			snprintf(name, sizeof(name), "output/%u-%u.err", a->session,
				 a->lane);
			int lf = openat(fd, name, O_RDONLY | O_CLOEXEC);
			ssize_t n = lf >= 0 && a->err_len < sizeof(got)
				? pread(lf, got, a->err_len, (off_t)a->err_off) : -1;
			if (lf >= 0)
				close(lf);
			if (a->err_len != want || n != (ssize_t)want ||
			    (want && memcmp(got, k->wrote, want)))
				violation("batch %s: %s attempt %u: its stderr is "
					  "%llu bytes in %s at %llu, its child "
					  "wrote %zu",
					  S->jobs[j], k->symbol, k->attempt,
					  (unsigned long long)a->err_len, name,
					  (unsigned long long)a->err_off, want);
		}
		batch_release(&b);
		close(fd);
	}
}

static void check_journals(void)
{
	for (int j = 0; j < S->njobs; j++) {
		char path[PATH_MAX + 128];
		snprintf(path, sizeof(path), "%s/batches/%s", S->home, S->jobs[j]);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			check_job(S->jobs[j]);
			continue;
		}
		struct jcheck jc = { .id = S->jobs[j] };
		batch_init(&jc.b);
		struct journal jr;
		if (journal_open(&jr, fd, "journal", false, jcheck_fn, &jc) == 0) {
			journal_close(&jr);
			if (jr.corrupt)
				violation("batch %s: journal damaged at %lld",
					  S->jobs[j], (long long)jr.corrupt_at);
			check_counts(&jc.b, S->jobs[j]);
			struct runner *by = NULL;
			const struct batch *live = held(S->jobs[j], &by);
			bool written = false;
			if (live) {
				check_counts(live, S->jobs[j]);
				engine_batch_written(by->e, S->jobs[j], &written);
				if (written) {
					check_live(live, &jc.b, S->jobs[j]);
					check_members(live, S->jobs[j]);
				}
			}
		}
		batch_release(&jc.b);
		close(fd);
	}
}

static void check_engines(void)
{
	for (int i = 0; i < MAXR; i++)
		if (S->r[i].alive) {
			char what[160] = "";
			size_t lost = engine_audit(S->r[i].e, what, sizeof(what));
			if (lost)
				violation("runner %d: %zu lost: %s", i, lost, what);
		}
}

/* ---- the scenario ---- */

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) {
		fprintf(stderr, "sim: %s: %s\n", path, strerror(errno));
		exit(2);
	}
}

static void write_conf(void);

static void make_home(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(S->home, sizeof(S->home), "%s/runner-sim.%d.%llu", base,
		 (int)getpid(), (unsigned long long)S->seed);
	char path[PATH_MAX + 32];
	remove_tree(AT_FDCWD, S->home);
	mkdir(S->home, 0755);
	snprintf(path, sizeof(path), "%s/conf", S->home);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/spool", S->home);
	mkdir(path, 0755);
	S->cap_agent = CAP_AGENT;
	S->max_attempts = (int)rnd_in(2, 5);
	write_conf();
}

static void write_conf(void)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/conf/runner.ini", S->home);
	char *conf = xasprintf(
		"[runner]\nmax_children = %d\nkill_grace = 1s\n"
		"shutdown_grace = 2s\n"
		"[retry]\nmax_attempts = %d\ndelays = 0.2 0.5 1\njitter = 0.2\n"
		"[breaker]\nthreshold = 3\nopen_for = %ds\n"
		"[correlation]\nwindow = 1m\nmin_group = 2\n"
		"[agent sim]\ncommand = /bin/true\nmax_concurrent = %d\n"
		"timeout = %ds\nsource = koyfin\n",
		CAP_GLOBAL, S->max_attempts, OPEN_FOR_MS / 1000, S->cap_agent,
		TIMEOUT_MS / 1000);
	write_file(path, conf);
	free(conf);
}

/* A job file, claimed by a runner (a daemon, or a new run). */
static void submit(const char *id, int nsyms, bool sequential)
{
	struct sb text = SB_INIT;
	sb_addf(&text, "[job]\nagent = sim\nid = %s\nsymbols =", id);
	for (int i = 0; i < nsyms; i++)
		sb_addf(&text, " %s%d", i % 7 == 6 ? "T" : "S", i);
	sb_addf(&text, "\n%s", sequential ? "concurrency = 1\n" : "");
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s.job", S->home, id);
	write_file(path, text.buf);
	snprintf(S->jobs[S->njobs++], ID_MAX + 1, "%s", id);
	if (chance(500)) {
		/* runner submit: placed in spool/, claimed by a daemon's
		 * rescan or a runner run */
		struct home h = HOME_INIT;
		char *cpath = xasprintf("%s/conf/runner.ini", S->home);
		struct conf *c = conf_load(cpath);
		struct claim_result res;
		free(cpath);
		int rc = c && home_open(&h, S->home) == 0
				 ? spool_submit(&h, c, path, text.buf, text.len, &res)
				 : -1;
		note("user submits %s: %d (status %d)", id, rc,
		     rc == 0 ? (int)res.status : -1);
		conf_free(c);
		home_release(&h);
		sb_release(&text);
		bool daemon = false;
		for (int i = 0; i < MAXR; i++)
			daemon |= S->r[i].alive && S->r[i].daemon;
		if (!daemon) {
			int who = start_runner(false);
			for (int i = 0; i < MAXR && who < 0; i++)
				if (S->r[i].alive)
					who = i;
			if (who >= 0) {
				engine_claim_spool(S->r[who].e);
				S->r[who].wake_at = S->now;
			}
		}
		return;
	}
	sb_release(&text);
	int who = -1;
	for (int i = 0; i < MAXR && who < 0; i++)
		if (S->r[i].alive && S->r[i].daemon)
			who = i;
	if (who < 0)
		who = start_runner(false);
	for (int i = 0; i < MAXR && who < 0; i++)
		if (S->r[i].alive)
			who = i; /* every slot taken: a run given two jobs */
	if (who < 0) {
		violation("no runner to claim %s", id);
		return;
	}
	int rc = engine_claim(S->r[who].e, path, true);
	note("runner %d claims %s (%d symbols): %d", who, id, nsyms, rc);
	S->r[who].wake_at = S->now;
}

/* The runner that holds a batch, or one that takes it (as the CLI's
 * request path does: the owner, else here). */
static struct runner *owner_of(const char *id)
{
	struct runner *by = NULL;
	if (held(id, &by))
		return by;
	int who = start_runner(false);
	if (who < 0)
		return NULL;
	if (engine_take(S->r[who].e, id, -1, TAKE_FINAL) != 0)
		return &S->r[who];
	return &S->r[who];
}

static void user_acts(void)
{
	if (!S->njobs)
		return;
	const char *id = S->jobs[rnd() % (uint64_t)S->njobs];
	struct sb reply = SB_INIT;
	char sym[16], *syms[2] = { sym, NULL };
	snprintf(sym, sizeof(sym), "S%d", (int)rnd_in(0, S->items - 1));
	int what = (int)rnd_in(0, 10);
	struct runner *r = owner_of(id);
	if (!r || !r->alive)
		return;
	int n = -1;
	switch (what) {
	case 0: case 1:
		n = engine_pause(r->e, id, what ? syms : NULL, what ? 1 : 0,
				 "sim", &reply);
		note("user pauses %s%s%s: %d", id, what ? " " : "",
		     what ? sym : "", n);
		break;
	case 2: case 3:
		n = engine_resume(r->e, id, "oldest", &reply);
		note("user resumes %s: %d", id, n);
		break;
	case 4:
		n = engine_cancel(r->e, id, syms, 1, &reply);
		note("user cancels %s %s: %d", id, sym, n);
		break;
	case 5: case 6:
		n = engine_retry_failed(r->e, id, 0, NULL, 0, &reply);
		note("user retries the failed of %s: %d", id, n);
		break;
	case 10:
		/* the vendor's allowance changes: a new cap, and SIGHUP to
		 * the daemons (a run keeps what it started with) */
		S->cap_agent = (int)rnd_in(1, CAP_AGENT);
		write_conf();
		note("user sets max_concurrent = %d and reloads the daemons",
		     S->cap_agent);
		for (int i = 0; i < MAXR; i++)
			if (S->r[i].alive && S->r[i].daemon) {
				engine_reload(S->r[i].e);
				S->r[i].wake_at = S->now;
			}
		break;
	default: {
		struct shared *sh = engine_shared(r->e);
		struct sh_group *g = sh ? shared_open_group(sh, "sim", "koyfin")
					: NULL;
		if (g) {
			shared_resume(sh, g->id, "progress", S->now);
			note("user resumes group %s", g->id);
		}
	}
	}
	r->wake_at = S->now;
	sb_release(&reply);
}

static void generate(void)
{
	S->start = S->now = 1800000000000LL + (int64_t)(rnd() % 86400000);
	S->down_from = S->now + rnd_in(0, 20000);
	S->down_until = S->down_from + (chance(700) ? rnd_in(1000, 60000) : 0);
	S->down_retryable = chance(500);
	S->nfaults = (int)rnd_in(0, 3);
	for (int i = 0; i < S->nfaults; i++) {
		struct fault_symbol *f = &S->faults[i];
		snprintf(f->symbol, sizeof(f->symbol), "S%d",
			 (int)rnd_in(0, S->items - 1));
		f->delisted = chance(300);
		f->until = S->now + rnd_in(1000, 90000);
	}
	S->calm_at = S->now + rnd_in(60000, 120000);
	S->deadline = S->calm_at + 2 * 3600 * 1000LL;
}

/* One step: the turns due now, then the clock to the next event. */
static int64_t step(int64_t *next_user, int64_t *next_crash)
{
	S->steps++;
	deliver_ends();
	for (int i = 0; i < MAXR; i++) {
		struct runner *r = &S->r[i];
		if (!r->alive || r->wake_at > S->now)
			continue;
		if (!engine_turn(r->e)) {
			stop_runner(r, false);
			continue;
		}
		/* A slow turn (a loaded machine): the clock moves between the
		 * turn's decisions and the sleep it computes. */
		if (rnd() % 8 == 0)
			S->now += rnd_in(1, 400);
		int64_t w = engine_wake_ms(r->e);
		r->wake_at = w < 0 ? INT64_MAX : S->now + w;
	}
	/* inotify on state/events: a runner's decision wakes the others */
	struct stat st;
	char ev[PATH_MAX + 32];
	snprintf(ev, sizeof(ev), "%s/state/events", S->home);
	if (stat(ev, &st) == 0 && (st.st_size != S->events_size ||
				   st.st_ino != S->events_ino)) {
		S->events_size = st.st_size;
		S->events_ino = st.st_ino;
		for (int i = 0; i < MAXR; i++)
			if (S->r[i].alive)
				S->r[i].wake_at = S->now;
	}
	check_engines();
	check_caps();
	if (S->steps % 64 == 0)
		check_journals();
	bool calm = S->now >= S->calm_at;
	if (calm && !S->resumed_all) {
		/* the faults end; no user acts from now on, but what users
		 * paused is resumed, once: then every batch must end */
		S->resumed_all = true;
		for (int j = 0; j < S->njobs; j++) {
			struct runner *r = owner_of(S->jobs[j]);
			struct sb reply = SB_INIT;
			if (r && r->alive) {
				engine_resume(r->e, S->jobs[j], "progress", &reply);
				r->wake_at = S->now;
			}
			sb_release(&reply);
		}
		note("the faults end; every batch resumed");
	}
	if (!calm && S->now >= *next_user) {
		user_acts();
		*next_user = S->now + rnd_in(2000, 30000);
	}
	if (!calm && S->now >= *next_crash) {
		int i = (int)rnd_in(0, MAXR - 1);
		if (S->r[i].alive)
			stop_runner(&S->r[i], true);
		*next_crash = S->now + rnd_in(5000, 60000);
	}
	/* Nobody runs what is left: a runner comes (cron, systemd). */
	bool anyone = false;
	for (int i = 0; i < MAXR; i++)
		anyone |= S->r[i].alive;
	if (!anyone) {
		bool paused;
		if (!all_final(&paused))
			start_runner(chance(500));
	}
	int64_t next = next_child_end();
	for (int i = 0; i < MAXR; i++)
		if (S->r[i].alive && S->r[i].wake_at < next)
			next = S->r[i].wake_at;
	if (!calm) {
		if (*next_user < next)
			next = *next_user;
		if (*next_crash < next)
			next = *next_crash;
		if (S->calm_at < next)
			next = S->calm_at;
	}
	return next;
}

static int run_scenario(void)
{
	S->next_pid = 1000000;
	make_home();
	util_clock_hook(&S->now);
	util_random_seed(S->seed * 2654435761ULL + 1);
	generate();
	char state[PATH_MAX + 16];
	snprintf(state, sizeof(state), "%s/state", S->home);
	mkdir(state, 0755);
	int sfd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* The checker folds state/events with the runners' configuration:
	 * a group's open period comes from it. */
	char cpath[PATH_MAX + 32];
	snprintf(cpath, sizeof(cpath), "%s/conf/runner.ini", S->home);
	struct conf *c = conf_load(cpath);
	S->view_ok = c && sfd >= 0 && shared_open(&S->view, sfd, c) == 0;
	conf_free(c);
	start_runner(chance(500));
	int nb = (int)rnd_in(1, 3);
	for (int b = 0; b < nb; b++) {
		char id[32];
		snprintf(id, sizeof(id), b == 2 ? "seq" : "b%d", b);
		submit(id, b == 2 ? 6 : S->items, b == 2);
	}
	int64_t next_user = S->now + rnd_in(1000, 20000);
	int64_t next_crash = chance(600) ? S->now + rnd_in(1000, 60000)
					 : INT64_MAX;
	long same = 0;
	while (!S->violations) {
		int64_t next = step(&next_user, &next_crash);
		bool paused;
		/* (a replay of every journal: once a virtual second) */
		if (S->now >= S->calm_at && S->now >= S->next_final_look) {
			S->next_final_look = S->now + 1000;
			if (all_final(&paused))
				break;
		}
		if (S->now > S->deadline) {
			struct sb why = SB_INIT;
			for (int j = 0; j < S->njobs; j++) {
				struct runner *by = NULL;
				const struct batch *b = held(S->jobs[j], &by);
				if (!b || b->final)
					continue;
				sb_addf(&why, " %s (runner %d):", S->jobs[j],
					by->slot);
				for (int st = 0; st < ST_COUNT; st++)
					if (b->count[st])
						sb_addf(&why, " %zu %s", b->count[st],
							state_name(st));
			}
			violation("faults ended %.0f s ago and batches are not "
				  "final:%s",
				  (double)(S->now - S->calm_at) / 1000,
				  why.buf ? why.buf : " (none held)");
			sb_release(&why);
			break;
		}
		if (next == INT64_MAX) {
			bool any = false;
			for (int i = 0; i < MAXR; i++)
				any |= S->r[i].alive;
			if (any) {
				violation("every runner sleeps with no wake-up and "
					  "no child runs");
				break;
			}
			next = S->next_final_look > S->now ? S->next_final_look
							   : S->now;
		}
		if (next > S->now) {
			S->now = next;
			same = 0;
		} else if (++same > ZERO_TURNS_MAX) {
			violation("%d turns without the clock moving (a busy "
				  "loop)",
				  ZERO_TURNS_MAX);
			break;
		}
	}
	if (!S->violations)
		check_journals();
	for (int i = 0; i < MAXR; i++)
		if (S->r[i].alive)
			stop_runner(&S->r[i], false);
	if (!S->violations)
		check_groups_final();
	if (!S->violations)
		check_outputs();
	for (size_t i = 0; i < S->nkids; i++)
		if (!S->kids[i].done)
			end_child(&S->kids[i], W_EXITCODE(0, SIGKILL));
	if (S->view_ok)
		shared_close(&S->view);
	if (sfd >= 0)
		close(sfd);
	util_clock_hook(NULL);
	if (!S->violations || !S->verbose)
		remove_tree(AT_FDCWD, S->home);
	for (size_t i = 0; i < S->nkids; i++)
		free(S->kids[i].wrote);
	free(S->kids);
	sb_release(&S->all);
	return S->violations ? 1 : 0;
}

int main(int argc, char **argv)
{
	int opt, n = 1, items = 20, jobs = 1;
	bool verbose = false;
	while ((opt = getopt(argc, argv, "vn:i:j:")) != -1) {
		if (opt == 'v')
			verbose = true;
		else if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'i')
			items = atoi(optarg);
		else if (opt == 'j')
			jobs = atoi(optarg);
		else
			return 64;
	}
	if (optind != argc - 1 || n < 1 || items < 1 || jobs < 1) {
		fprintf(stderr, "usage: sim [-v] [-n SCENARIOS] [-i ITEMS] "
				"[-j PROCESSES] SEED\n");
		return 64;
	}
	uint64_t seed0 = strtoull(argv[optind], NULL, 10);
	if (jobs > 1 && n > 1) {
		/* Seeds dealt out to worker processes, each its own slice. */
		int per = (n + jobs - 1) / jobs, failed = 0;
		int64_t t0 = mono_ns();
		for (int w = 0; w < jobs && w * per < n; w++) {
			pid_t pid = fork();
			if (pid == 0) {
				char a[4][32];
				snprintf(a[0], 32, "%d", per < n - w * per ? per
									   : n - w * per);
				snprintf(a[1], 32, "%d", items);
				snprintf(a[2], 32, "%llu",
					 (unsigned long long)(seed0 + (uint64_t)(w * per)));
				execl("/proc/self/exe", argv[0], "-n", a[0], "-i",
				      a[1], a[2], (char *)NULL);
				_exit(127);
			}
		}
		int st;
		while (wait(&st) > 0)
			failed += !WIFEXITED(st) || WEXITSTATUS(st);
		fprintf(stderr, "sim: %d scenarios of %d items from seed %llu in "
				"%d processes: %s, %.1f s\n",
			n, items, (unsigned long long)seed0, jobs,
			failed ? "FAILED" : "all passed",
			(double)(mono_ns() - t0) / 1e9);
		return failed ? 1 : 0;
	}
	inifile_setup(JOB_MAX_BYTES + 16); /* as main() does: long lines */
	int failed = 0;
	long items_run = 0;
	int64_t t0 = mono_ns();
	verbosity = verbose ? 0 : -1;
	for (int k = 0; k < n; k++) {
		struct sim sim;
		memset(&sim, 0, sizeof(sim));
		S = &sim;
		sim.seed = seed0 + (uint64_t)k;
		sim.verbose = verbose;
		sim.items = items;
		rng_state = sim.seed;
		failed += run_scenario();
		items_run += sim.spawns;
	}
	double secs = (double)(mono_ns() - t0) / 1e9;
	fprintf(stderr, "sim: %d scenarios from seed %llu, %d failed; %ld "
			"attempts in %.1f s (%.0f scenarios/s)\n",
		n, (unsigned long long)seed0, failed, items_run, secs,
		secs > 0 ? n / secs : 0);
	return failed ? 1 : 0;
}
