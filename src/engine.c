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

#define JOURNAL_COMMIT_MS 20	/* finished records wait at most this long */
#define SLOT_POLL_MS 25		/* slots held by other processes: ask again */
#define STALL_RETRY_MS 1000	/* disk full: try writing again */
#define RESERVE_MAX 64		/* reservations ahead, at least */
#define META_MIN_INTERVAL_MS 1000
#define STDERR_TAIL 4096
#define ORPHAN_CHECK_MS 10000	/* daemon: look for batches whose runner died,
				   and rescan spool/ */
#define METRICS_INTERVAL_MS 5000	/* daemon: rewrite logs/runner.prom */
#define RETENTION_INTERVAL_MS 3600000	/* daemon: archive and delete old batches */
#define CHORES 4		/* the periodic chores of the loop (chores[]) */

/* ---- small containers ---- */

struct u32q {			/* FIFO ring of item indexes */
	uint32_t *v;
	size_t cap, head, n;
};

static void q_push(struct u32q *q, uint32_t x)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		uint32_t *v = xmalloc(cap * sizeof(*v));
		for (size_t i = 0; i < q->n; i++)
			v[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = v;
		q->cap = cap;
		q->head = 0;
	}
	q->v[(q->head + q->n++) % q->cap] = x;
}

static uint32_t q_pop(struct u32q *q)
{
	uint32_t x = q->v[q->head];
	q->head = (q->head + 1) % q->cap;
	q->n--;
	return x;
}

struct due {
	int64_t at;
	uint32_t idx;
};

struct heap {			/* min-heap of retry due times */
	struct due *v;
	size_t n, cap;
};

static void heap_push(struct heap *h, int64_t at, uint32_t idx)
{
	GROW(h->v, h->cap, h->n + 1);
	size_t i = h->n++;
	while (i && h->v[(i - 1) / 2].at > at) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = (struct due){ at, idx };
}

static struct due heap_pop(struct heap *h)
{
	struct due top = h->v[0], last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].at < h->v[c].at)
			c++;
		if (last.at <= h->v[c].at)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

/* ---- state ---- */

enum kill_why { KILL_NONE, KILL_TIMEOUT, KILL_CANCEL, KILL_SHUTDOWN };

struct ebatch;

struct run {
	pid_t pid;
	struct ebatch *eb;
	uint32_t item, attempt;
	int64_t start_ns;
	int64_t deadline_ns;	/* attempt timeout, 0: none */
	int64_t kill_ns;	/* SIGKILL due, 0: not signalled yet */
	bool killed;		/* SIGKILL sent */
	uint8_t why;
	int exec_errno;
	int64_t prep_ns;	/* runner time spent starting it (trace) */
};

/* A group's effect on a batch, done once per change of the group. */
struct grp_mark {
	char id[GROUP_ID_MAX];
	int64_t opened_ms;	/* the opening items were paused for */
	int64_t resumed_ms;	/* the resume that was applied */
};

/* An item holding a half-open trial: its group's (the source's circuit),
 * or (group "") its symbol's. */
struct trial {
	char group[GROUP_ID_MAX];
	struct ebatch *eb;
	uint32_t idx;
	int64_t renew_ms;	/* renew the lease then */
};

/* A reserved attempt whose output files are open, ready to spawn. */
struct prep {
	uint32_t idx;
	int outfd, errfd;
	int64_t prep_ns;
};

struct ebatch {
	struct batch b;
	struct journal j;
	char *id;
	int dirfd, items_fd, lock_fd;
	FILE *log;
	const struct agent_conf *agent;
	/* the child's argv and environment, the parts shared by every item */
	struct sb env_base;
	size_t cursor;
	struct u32q requeue, reserved, unreported;
	struct prep *prepared;	/* FIFO: prepared[prep_head .. nprepared) */
	size_t prep_head, nprepared, capprepared;
	struct u32q deferred;	/* pending items whose symbol circuit is open */
	struct grp_mark *marks;	/* what this batch did for which group */
	size_t nmarks, capmarks;
	struct heap retry;
	int running;
	int64_t deadline_ms;
	int64_t next_flush_ns;
	int64_t flush_cost_ns;
	int shown_status;	/* batch_status() in the last summary written */
	bool meta_dirty;
	bool closed;
	bool finalized;		/* this process recorded its FINAL */
	int result;		/* its part of the exit status once closed */
};

/* A child that exited, reaped but not yet accounted for. */
struct exited {
	struct run run;
	int status;
	struct rusage ru;
	int64_t at_ms;	/* when it was reaped: the attempt's end */
};

struct engine {
	struct home *h;
	const struct conf *c;
	const struct conf *given;	/* the caller's, which we never free */
	const struct conf **old_confs;	/* replaced by reloads, kept for runs */
	size_t nold, capold;
	struct engine_opts o;
	int epfd, sigfd, infd;
	int control_wd, spool_wd, events_wd;
	struct shared sh;	/* groups and circuits of the home */
	bool sh_ok;
	uint64_t seen_gen;	/* the shared state last reacted to */
	uint64_t seen_sym_gen;	/* the symbol circuits last looked at */
	int64_t defer_wake_ms;	/* a deferred item's circuit may allow it */
	struct trial *trials;
	size_t ntrials, captrials;
	char **sym_trials;	/* symbols whose circuit trial we hold */
	size_t nsym_trials, capsym_trials;
	struct alerts *alerts;
	struct symstats stats;	/* per-symbol figures for `runner status` */
	int64_t chore_next_ns[CHORES];	/* when each chore is due */
	bool spool_dirty;	/* daemon: spool/ changed, claim what is there */
	bool draining;		/* daemon: stopping, running attempts finish */
	int64_t drain_deadline_ns;
	sigset_t child_mask;
	struct ebatch **batches;
	size_t nbatches, capbatches;
	struct run *runs;
	size_t nruns, capruns;
	struct exited *exited;
	size_t nexited, capexited;
	pid_t pid;
	int devnull;
	char *home_abs;
	bool shutdown;
	bool no_dispatch;
	int signals;
	int64_t slot_poll_ns;	/* retry blocked slots at this time */
	int64_t audit_next_ns;	/* the next liveness audit */
	int64_t wake_fix_ns;	/* a wake-up the audit had to add */
	size_t liveness_bugs;	/* what the audit found (engine_audit) */
	bool kick;		/* work to do at once: the next turn is now */
	bool stalled;		/* a journal write failed (disk full) */
	int64_t stall_until_ns;
	bool io_failed;
	int exit_status;
	struct progress prog;
	struct metrics metrics;	/* daemon: logs/runner.prom */
	pid_t retention_pid;	/* daemon: the child applying [retention] */
	/* per-item overhead measurement (RUNNER_TRACE_OVERHEAD) */
	bool trace;
	int64_t *overhead_ns;
	size_t noverhead, capoverhead;
};

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

static pid_t spawn_child(struct engine *e, const struct spawn *s,
			 int *exec_errno)
{
	if (e->o.ops)
		return e->o.ops->spawn(e->o.ops->ctx, s, exec_errno);
	return exec_spawn(s, e->pid, exec_errno);
}

static int kill_group(struct engine *e, pid_t pgid, int sig)
{
	if (e->o.ops)
		return e->o.ops->kill_group(e->o.ops->ctx, pgid, sig);
	return exec_kill_group(pgid, sig);
}

static int kill_env(struct engine *e, const char *const *entries, size_t n)
{
	if (e->o.ops)
		return e->o.ops->kill_env(e->o.ops->ctx, entries, n);
	return exec_kill_env(entries, n);
}

/* ---- helpers ---- */

static int64_t batch_cap(const struct engine *e, const struct ebatch *eb)
{
	int64_t cap = e->c->max_children;
	if (eb->agent && eb->agent->max_concurrent < cap)
		cap = eb->agent->max_concurrent;
	if (eb->b.c.concurrency > 0 && eb->b.c.concurrency < cap)
		cap = eb->b.c.concurrency;
	return cap;
}

static int agent_running(const struct engine *e, const struct agent_conf *a)
{
	int n = 0;
	for (size_t i = 0; i < e->nruns; i++)
		if (e->runs[i].eb->agent == a)
			n++;
	return n;
}

static struct ebatch *find_batch(struct engine *e, const char *id)
{
	for (size_t i = 0; i < e->nbatches; i++)
		if (!e->batches[i]->closed && !strcmp(e->batches[i]->id, id))
			return e->batches[i];
	return NULL;
}

static void log_rec(struct ebatch *eb, const struct rec *r)
{
	static struct sb line;
	if (!eb->log)
		return;
	sb_reset(&line);
	blog_line(&line, &eb->b, r, now_ms());
	if (line.len)
		fwrite(line.buf, 1, line.len, eb->log);
}

/* Journal, apply, log: the one way the engine changes a batch. */
static void record(struct ebatch *eb, const struct rec *r)
{
	batch_record(&eb->b, &eb->j, r);
	log_rec(eb, r);
	eb->meta_dirty = true;
}

static void io_fail(struct engine *e, struct ebatch *eb, const char *what)
{
	if (!e->io_failed)
		error("batches/%s/journal: %s: %s; stopping (run `runner run` "
		      "to recover)",
		      eb ? eb->id : "?", what, strerror(errno));
	e->io_failed = true;
	e->shutdown = true;
}

/* Write a batch's pending records; a full disk stalls dispatching. */
static int commit(struct engine *e, struct ebatch *eb, bool sync)
{
	if (e->stalled && mono_ns() < e->stall_until_ns) {
		errno = ENOSPC;
		return -1;
	}
	int rc = sync ? journal_sync(&eb->j) : journal_write(&eb->j);
	if (rc == 0)
		return 0;
	if (eb->j.failed) {
		io_fail(e, eb, "fdatasync failed");
		return -1;
	}
	if (!e->stalled)
		warning("batches/%s/journal: %s; dispatching stops until it "
			"can be written",
			eb->id, strerror(errno));
	e->stalled = true;
	e->stall_until_ns = mono_ns() + STALL_RETRY_MS * 1000000LL;
	return -1;
}

/* ---- the child's argv and environment ---- */

static void env_add(struct sb *env, const char *k, const char *v)
{
	sb_addf(env, "%s=%s", k, v ? v : "");
	sb_addc(env, '\0');
}

static void build_env_base(struct engine *e, struct ebatch *eb)
{
	static const char *const keep[] = { "PATH", "HOME", "LANG", "TZ" };
	struct sb *env = &eb->env_base;
	const struct batch_conf *c = &eb->b.c;
	sb_reset(env);
	for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++) {
		const char *v = getenv(keep[i]);
		if (v)
			env_add(env, keep[i], v);
	}
	if (!getenv("PATH"))
		env_add(env, "PATH", "/usr/local/bin:/usr/bin:/bin");
	for (size_t i = 0; eb->agent && i < eb->agent->nenv; i++) {
		sb_adds(env, eb->agent->env[i]);
		sb_addc(env, '\0');
	}
	env_add(env, "RUNNER_HOME", e->home_abs);
	env_add(env, "RUNNER_BATCH_ID", c->id);
	env_add(env, "RUNNER_AGENT", c->agent);
	env_add(env, "RUNNER_TIMEFRAME", c->timeframe);
	env_add(env, "RUNNER_START", c->start);
	env_add(env, "RUNNER_END", c->end);
	env_add(env, "RUNNER_SOURCE", c->source);
	for (uint32_t i = 0; i < c->nparams; i++) {
		char key[128];
		snprintf(key, sizeof(key), "RUNNER_PARAM_%s", c->params[i].key);
		for (char *p = key; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		env_add(env, key, c->params[i].value);
	}
}

/* Later entries of the same name win: keep only the last of each. */
static size_t env_vector(struct sb *all, char ***out, size_t *cap)
{
	size_t n = 0;
	for (size_t off = 0; off < all->len;) {
		char *s = all->buf + off;
		size_t len = strlen(s);
		const char *eq = strchr(s, '=');
		size_t klen = eq ? (size_t)(eq - s) : len;
		bool dup = false;
		for (size_t i = 0; i < n; i++)
			if (!strncmp((*out)[i], s, klen) && (*out)[i][klen] == '=') {
				(*out)[i] = s;
				dup = true;
				break;
			}
		if (!dup) {
			GROW(*out, *cap, n + 2);
			(*out)[n++] = s;
		}
		off += len + 1;
	}
	(*out)[n] = NULL;
	return n;
}

static size_t build_argv(const struct agent_conf *a, const char *symbol,
			 struct sb *store, char ***argv, size_t *cap)
{
	bool placed = false;
	size_t n = 0;
	struct sb offs = SB_INIT;
	sb_reset(store);
	for (size_t pass = 0; pass < 2; pass++) {
		char **words = pass ? a->command : a->launcher;
		size_t nw = pass ? a->ncommand : a->nlauncher;
		for (size_t i = 0; i < nw; i++) {
			size_t off = store->len;
			const char *w = words[i], *p;
			while ((p = strstr(w, "{symbol}"))) {
				sb_add(store, w, (size_t)(p - w));
				sb_adds(store, symbol);
				w = p + 8;
				placed = true;
			}
			sb_adds(store, w);
			sb_addc(store, '\0');
			sb_add(&offs, &off, sizeof(off));
			n++;
		}
	}
	if (!placed) {
		size_t off = store->len;
		sb_adds(store, symbol);
		sb_addc(store, '\0');
		sb_add(&offs, &off, sizeof(off));
		n++;
	}
	GROW(*argv, *cap, n + 1);
	for (size_t i = 0; i < n; i++)
		(*argv)[i] = store->buf + ((size_t *)offs.buf)[i];
	(*argv)[n] = NULL;
	sb_release(&offs);
	return n;
}

/* ---- spawning ---- */

static int open_output(int items_fd, const char *path)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(items_fd, path, flags, 0644);
	if (fd < 0 && errno == EEXIST) {
		/* Only an attempt number that was released and used again can
		 * meet its own old file; it never ran, so it holds nothing. */
		unlinkat(items_fd, path, 0);
		fd = openat(items_fd, path, flags, 0644);
	}
	return fd;
}

static void finish_attempt(struct engine *e, struct ebatch *eb, uint32_t idx,
			   uint32_t attempt, int wait_status,
			   const struct rusage *ru, uint8_t why, int exec_errno,
			   int64_t timeout_ms, int64_t end_ms);
static void stall(struct engine *e, const char *what, int err)
{
	if (!e->stalled)
		warning("%s: %s; dispatching stops for a while", what,
			strerror(err));
	e->stalled = true;
	e->stall_until_ns = mono_ns() + STALL_RETRY_MS * 1000000LL;
}

static size_t prepared_count(const struct ebatch *eb)
{
	return eb->nprepared - eb->prep_head;
}

/* Remove the empty output files of an attempt that never ran. */
static void unlink_outputs(struct ebatch *eb, const char *symbol,
			   uint32_t attempt)
{
	char path[96];
	snprintf(path, sizeof(path), "%s/attempt-%u.out", symbol, attempt);
	unlinkat(eb->items_fd, path, 0);
	snprintf(path, sizeof(path), "%s/attempt-%u.err", symbol, attempt);
	unlinkat(eb->items_fd, path, 0);
}

/*
 * Create the output files of a reserved attempt ahead of its spawn, while
 * other children run: the file system work stays off the path from one
 * child's exit to the next child's start.
 */
static int prepare_item(struct engine *e, struct ebatch *eb)
{
	int64_t t0 = mono_ns();
	uint32_t idx = q_pop(&eb->reserved);
	struct item *it = &eb->b.items[idx];
	uint32_t attempt = it->nattempts;
	char out[96], err[96];
	int outfd = -1, errfd = -1, saved;

	if (it->state != ST_STARTING)
		return 0; /* cancelled meanwhile */
	snprintf(out, sizeof(out), "%s/attempt-%u.out", it->symbol, attempt);
	snprintf(err, sizeof(err), "%s/attempt-%u.err", it->symbol, attempt);
	if (mkdirat(eb->items_fd, it->symbol, 0755) < 0 && errno != EEXIST)
		goto fail;
	if ((outfd = open_output(eb->items_fd, out)) < 0 ||
	    (errfd = open_output(eb->items_fd, err)) < 0)
		goto fail;
	if (eb->nprepared == eb->capprepared && eb->prep_head) {
		memmove(eb->prepared, eb->prepared + eb->prep_head,
			prepared_count(eb) * sizeof(*eb->prepared));
		eb->nprepared -= eb->prep_head;
		eb->prep_head = 0;
	}
	GROW(eb->prepared, eb->capprepared, eb->nprepared + 1);
	eb->prepared[eb->nprepared++] = (struct prep){
		idx, outfd, errfd, mono_ns() - t0 };
	return 0;
fail:
	saved = errno;
	if (outfd >= 0)
		close(outfd);
	unlink_outputs(eb, it->symbol, attempt);
	/* Not started: give the reservation back and wait for the disk. */
	struct rec rel = { .type = R_RELEASE, .item = idx, .attempt = attempt };
	record(eb, &rel);
	q_push(&eb->requeue, idx);
	char what[160];
	snprintf(what, sizeof(what), "batches/%s/items/%s", eb->id, it->symbol);
	stall(e, what, saved);
	return -1;
}

/* Give back every reservation of eb that has not been spawned. */
static void release_unspawned(struct ebatch *eb)
{
	for (size_t i = eb->prep_head; i < eb->nprepared; i++) {
		struct prep *p = &eb->prepared[i];
		struct item *it = &eb->b.items[p->idx];
		close(p->outfd);
		close(p->errfd);
		if (it->state != ST_STARTING)
			continue;
		unlink_outputs(eb, it->symbol, it->nattempts);
		struct rec r = { .type = R_RELEASE, .item = p->idx,
				 .attempt = it->nattempts };
		record(eb, &r);
		q_push(&eb->requeue, p->idx);
	}
	eb->prep_head = eb->nprepared = 0;
	while (eb->reserved.n) {
		uint32_t idx = q_pop(&eb->reserved);
		struct item *it = &eb->b.items[idx];
		if (it->state != ST_STARTING)
			continue;
		struct rec r = { .type = R_RELEASE, .item = idx,
				 .attempt = it->nattempts };
		record(eb, &r);
		q_push(&eb->requeue, idx);
	}
}

/* Forget prepared attempts whose items are no longer starting (cancel,
 * pause), and their reservations: a withdrawn one must not count as a
 * reservation ahead, or the batch reserves nothing more (and, with
 * nothing running, nothing wakes it). */
static void drop_cancelled_prepared(struct ebatch *eb)
{
	struct u32q live = { 0 };
	while (eb->reserved.n) {
		uint32_t idx = q_pop(&eb->reserved);
		if (eb->b.items[idx].state == ST_STARTING)
			q_push(&live, idx);
	}
	free(eb->reserved.v);
	eb->reserved = live;
	size_t keep = eb->prep_head;
	for (size_t i = eb->prep_head; i < eb->nprepared; i++) {
		struct prep *p = &eb->prepared[i];
		struct item *it = &eb->b.items[p->idx];
		if (it->state == ST_STARTING) {
			eb->prepared[keep++] = *p;
			continue;
		}
		close(p->outfd);
		close(p->errfd);
		/* The attempt was withdrawn: its number is free again. */
		unlink_outputs(eb, it->symbol, it->nattempts + 1u);
	}
	eb->nprepared = keep;
}

static void spawn_item(struct engine *e, struct ebatch *eb, struct prep p,
		       int slot_fd)
{
	static struct sb env_all, argv_store;
	static char **envp, **argv;
	static size_t envcap, argvcap;
	int64_t t0 = mono_ns();
	uint32_t idx = p.idx;
	struct item *it = &eb->b.items[idx];
	uint32_t attempt = it->nattempts;
	int saved;

	sb_reset(&env_all);
	sb_add(&env_all, eb->env_base.buf, eb->env_base.len);
	env_add(&env_all, "RUNNER_SYMBOL", it->symbol);
	sb_addf(&env_all, "RUNNER_ATTEMPT=%u", attempt);
	sb_addc(&env_all, '\0');
	sb_addf(&env_all, "RUNNER_RESULT=%s/batches/%s/items/%s/attempt-%u.result.json",
		e->home_abs, eb->id, it->symbol, attempt);
	sb_addc(&env_all, '\0');
	sb_addf(&env_all, "RUNNER_CHECKPOINT=%s/batches/%s/items/%s/checkpoint",
		e->home_abs, eb->id, it->symbol);
	sb_addc(&env_all, '\0');
	env_vector(&env_all, &envp, &envcap);
	build_argv(eb->agent, it->symbol, &argv_store, &argv, &argvcap);

	struct spawn s = {
		.path = eb->agent->exec_path,
		.argv = argv,
		.envp = envp,
		.cwd_fd = e->h->fd,
		.stdin_fd = e->devnull,
		.stdout_fd = p.outfd,
		.stderr_fd = p.errfd,
		.keep_fd = slot_fd,
		.limit_as = eb->agent->memory_limit,
		.limit_fsize = eb->agent->output_limit,
		.limit_cpu_ms = eb->agent->cpu_limit_ms,
		.child_mask = &e->child_mask,
	};
	int exec_errno = 0;
	int64_t start_ns = mono_ns();
	pid_t pid = spawn_child(e, &s, &exec_errno);
	saved = errno;
	int64_t t1 = mono_ns();
	close(p.outfd);
	close(p.errfd);
	close(slot_fd);

	struct rec r = { .type = R_SPAWNED, .item = idx, .attempt = attempt,
			 .time = now_ms(), .pid = pid > 0 ? pid : 0 };
	record(eb, &r);
	if (pid < 0) {
		/* clone itself failed (no memory, no pids): a failed attempt */
		finish_attempt(e, eb, idx, attempt, W_EXITCODE(127, 0), NULL,
			       KILL_NONE, saved, 0, 0);
		return;
	}
	GROW(e->runs, e->capruns, e->nruns + 1);
	struct run *run = &e->runs[e->nruns++];
	memset(run, 0, sizeof(*run));
	run->pid = pid;
	run->eb = eb;
	run->item = idx;
	run->attempt = attempt;
	run->start_ns = start_ns;
	run->exec_errno = exec_errno;
	if (eb->b.c.timeout_ms > 0)
		run->deadline_ns = start_ns + eb->b.c.timeout_ms * 1000000LL;
	eb->running++;
	symstats_start(&e->stats, it->symbol);
	if (it->failure_group && e->sh_ok)
		shared_started(&e->sh, eb->id, it->symbol);
	/* The child's own start (clone until exec) is not our overhead. */
	run->prep_ns = p.prep_ns + (start_ns - t0) + (mono_ns() - t1);
}

/* ---- finishing an attempt ---- */

static void read_result(struct ebatch *eb, const char *symbol, uint32_t attempt,
			struct result *res)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/attempt-%u.result.json", symbol,
		 attempt);
	result_load(eb->items_fd, path, res);
}

static char *read_stderr_tail(struct ebatch *eb, const char *symbol,
			      uint32_t attempt)
{
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/attempt-%u.err", symbol, attempt);
	int fd = openat(eb->items_fd, path,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t off = st.st_size > STDERR_TAIL ? st.st_size - STDERR_TAIL : 0;
		buf = xmalloc(STDERR_TAIL + 1);
		ssize_t n = pread(fd, buf, STDERR_TAIL, off);
		n = n < 0 ? 0 : n;
		buf[n] = '\0';
		/* NUL bytes in the output must not cut what we look at. */
		for (ssize_t i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
	}
	close(fd);
	return buf;
}

static int64_t retry_delay_ms(const struct batch_conf *c, int failures,
			      const struct result *res)
{
	int64_t d = 0;
	if (c->ndelays) {
		uint32_t k = failures >= 1 ? (uint32_t)failures - 1 : 0;
		d = c->delays_ms[k < c->ndelays ? k : c->ndelays - 1];
	}
	if (c->jitter_permille && d > 0) {
		double j = (double)c->jitter_permille / 1000.0;
		double u = (double)(random_u64() >> 11) / 9007199254740992.0;
		d = (int64_t)llround((double)d * (1.0 + j * (2.0 * u - 1.0)));
	}
	if (res && res->retry_after_ms > d)
		d = res->retry_after_ms;
	return d < 0 ? 0 : d;
}


/* ---- failure groups, circuits and alerts ---- */

static struct grp_mark *mark_of(struct ebatch *eb, const char *id)
{
	for (size_t i = 0; i < eb->nmarks; i++)
		if (!strcmp(eb->marks[i].id, id))
			return &eb->marks[i];
	GROW(eb->marks, eb->capmarks, eb->nmarks + 1);
	struct grp_mark *m = &eb->marks[eb->nmarks++];
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	return m;
}

static bool same_str(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

static bool group_matches(const struct sh_group *g, const struct ebatch *eb)
{
	return same_str(g->agent, eb->b.c.agent) &&
	       same_str(g->source, eb->b.c.source);
}

/* A trial this process holds: group "" for a symbol's circuit. */
static struct trial *find_trial(struct engine *e, const struct ebatch *eb,
				uint32_t idx, bool group)
{
	for (size_t i = 0; i < e->ntrials; i++)
		if (e->trials[i].eb == eb && e->trials[i].idx == idx &&
		    (e->trials[i].group[0] != '\0') == group)
			return &e->trials[i];
	return NULL;
}

static void add_trial(struct engine *e, const char *group, struct ebatch *eb,
		      uint32_t idx)
{
	GROW(e->trials, e->captrials, e->ntrials + 1);
	struct trial *t = &e->trials[e->ntrials++];
	memset(t, 0, sizeof(*t));
	snprintf(t->group, sizeof(t->group), "%s", group ? group : "");
	t->eb = eb;
	t->idx = idx;
	t->renew_ms = now_ms() + shared_trial_lease_ms() / 2;
}

static void drop_trial(struct engine *e, struct trial *t)
{
	*t = e->trials[--e->ntrials];
}

/* The trial will not be used: give it back at once (its lease would free
 * it too, later). */
static void release_trial(struct engine *e, struct trial *t)
{
	if (e->sh_ok) {
		if (t->group[0])
			shared_trial_release(&e->sh, t->group);
		else
			shared_symbol_trial_release(
				&e->sh, t->eb->b.items[t->idx].symbol);
	}
	drop_trial(e, t);
}

/*
 * Every loop turn: a trial whose item left the way to its attempt (paused,
 * cancelled, its batch closed) is given back; the others have their
 * leases renewed at half-time, so that no other runner takes them while
 * they wait for a slot or run.
 */
static void check_trials(struct engine *e)
{
	int64_t now = now_ms();
	for (size_t i = 0; i < e->ntrials;) {
		struct trial *t = &e->trials[i];
		const struct item *it = t->eb->closed ? NULL
						      : &t->eb->b.items[t->idx];
		if (!it || it->state == ST_PAUSED || state_final(it->state)) {
			release_trial(e, t);
			continue;
		}
		if (now >= t->renew_ms && e->sh_ok) {
			if (t->group[0])
				shared_trial_renew(&e->sh, t->group, t->eb->id,
						   it->symbol, now);
			else
				shared_symbol_trial_renew(&e->sh, it->symbol,
							  now);
			t->renew_ms = now + shared_trial_lease_ms() / 2;
		}
		i++;
	}
}

static void emit_alert(struct engine *e, const char *event,
		       const struct ebatch *eb, const struct item *it,
		       const struct sh_group *g, const char *message)
{
	struct alert al = ALERT_INIT;
	al.event = event;
	al.batch_id = eb ? eb->id : NULL;
	al.symbol = it ? it->symbol : NULL;
	al.message = message;
	if (it && it->nattempts) {
		const struct attempt *a = &it->log[it->nattempts - 1];
		al.category = category_name(a->category);
		al.attempts = it->nattempts;
		al.error_type = it->error_type;
	}
	if (g) {
		al.group_id = g->id;
		al.root_cause = g->root_cause;
		al.group_size = (long long)g->formed_size;
		al.source = g->source;
	}
	alert_emit(e->alerts, &al);
}

/* A group's own alert: status formed, grew, reopened or resolved. */
static void group_alert(struct engine *e, const struct sh_group *g,
			const char *what)
{
	struct sb msg = SB_INIT;
	struct sh_counts c;
	shared_group_message(g, !strcmp(what, "reopened")
				 ? "still failing after a resume: paused again"
				 : what, &msg);
	shared_group_counts(g, &c);
	struct alert al = ALERT_INIT;
	al.event = "failure_group";
	al.group_id = g->id;
	al.root_cause = g->root_cause;
	al.group_size = (long long)g->formed_size;
	al.members = (long long)c.members;
	al.source = g->source;
	al.category = g->category;
	al.error_type = g->type;
	al.status = what;
	al.message = msg.buf;
	alert_emit(e->alerts, &al);
	runlog_printf(e->o.runlog, "%s", msg.buf);
	sb_release(&msg);
}

/* A member's own alert, once: its error and the group's context. */
static void member_alert(struct engine *e, const struct sh_group *g,
			 const char *batch, const char *symbol)
{
	struct ebatch *mb = NULL;
	for (size_t i = 0; i < e->nbatches && !mb; i++)
		if (!strcmp(e->batches[i]->id, batch))
			mb = e->batches[i];
	const struct item *mi = mb ? batch_item(&mb->b, symbol) : NULL;
	const char *err = mi && mi->nattempts &&
				  mi->log[mi->nattempts - 1].error_message
		? mi->log[mi->nattempts - 1].error_message
		: g->norm;
	char *msg = xasprintf("%s: %s (failure group %s: %s)", symbol,
			      err ? err : "failed", g->id,
			      g->root_cause ? g->root_cause : "unknown cause");
	struct alert al = ALERT_INIT;
	al.event = "item_failed";
	al.batch_id = batch;
	al.symbol = symbol;
	al.group_id = g->id;
	al.root_cause = g->root_cause;
	al.group_size = (long long)g->formed_size;
	al.source = g->source;
	al.category = g->category;
	al.error_type = g->type;
	if (mi && mi->nattempts)
		al.attempts = mi->nattempts;
	al.message = msg;
	alert_emit(e->alerts, &al);
	free(msg);
}

/* Pause the listed items (pending, retry_wait, reserved; failed ones only
 * for a group, whose members they are). */
static void pause_items(struct engine *e, struct ebatch *eb,
			const uint32_t *idx, uint32_t n, const char *group,
			const char *reason)
{
	if (!n)
		return;
	struct rec r = { .type = R_PAUSE, .time = now_ms(), .group = group,
			 .text = reason, .n = n, .indexes = idx };
	/* A failed member paused for its group is open again: its end, if
	 * not reported yet, never is; if it was, the progress takes it back. */
	size_t reported = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (eb->b.items[idx[i]].state != ST_FAILED)
			continue;
		bool queued = false;
		for (size_t k = 0; k < eb->unreported.n && !queued; k++) {
			size_t at = (eb->unreported.head + k) % eb->unreported.cap;
			if (eb->unreported.v[at] != idx[i])
				continue;
			/* drop it: the queue keeps its order otherwise */
			for (size_t m = k; m + 1 < eb->unreported.n; m++)
				eb->unreported.v[(eb->unreported.head + m) %
						 eb->unreported.cap] =
					eb->unreported.v[(eb->unreported.head + m + 1) %
							 eb->unreported.cap];
			eb->unreported.n--;
			queued = true;
		}
		reported += !queued;
	}
	record(eb, &r);
	progress_requeue(&e->prog, reported);
	/* Prepared attempts of paused items are withdrawn with their files. */
	drop_cancelled_prepared(eb);
	if (group && e->sh_ok) {
		const char **syms = xmalloc(n * sizeof(char *));
		for (uint32_t i = 0; i < n; i++)
			syms[i] = eb->b.items[idx[i]].symbol;
		shared_paused(&e->sh, group, eb->id, syms, n, r.time);
		free(syms);
	}
	commit(e, eb, true);
	eb->next_flush_ns = 0; /* show it now */
}

static uint32_t *pausable(const struct ebatch *eb, uint32_t *n)
{
	uint32_t *idx = xmalloc((eb->b.nitems + 1) * sizeof(uint32_t));
	*n = 0;
	for (size_t i = 0; i < eb->b.nitems; i++) {
		int st = eb->b.items[i].state;
		if (st == ST_PENDING || st == ST_RETRY_WAIT || st == ST_STARTING)
			idx[(*n)++] = (uint32_t)i;
	}
	return idx;
}

static const struct ebatch *order_batch;
static const char *order_key;

static int cmp_resume(const void *pa, const void *pb)
{
	const struct item *x = &order_batch->b.items[*(const uint32_t *)pa];
	const struct item *y = &order_batch->b.items[*(const uint32_t *)pb];
	if (!strcmp(order_key, "oldest")) {
		if (x->paused_ms != y->paused_ms)
			return x->paused_ms < y->paused_ms ? -1 : 1;
	} else if (!strcmp(order_key, "progress")) {
		if (x->progress != y->progress)
			return x->progress > y->progress ? -1 : 1;
	}
	/* priority: one batch has one; then file order */
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	return a < b ? -1 : a > b;
}

/* Resume paused items in the given order (progress, oldest, priority). */
static void resume_items(struct engine *e, struct ebatch *eb,
			 const char *group, uint32_t *idx, uint32_t n,
			 const char *order, const char *why)
{
	if (!n)
		return;
	e->kick = true; /* they may start now: no sleep first */
	order_batch = eb;
	order_key = order ? order : "progress";
	qsort(idx, n, sizeof(*idx), cmp_resume);
	struct rec r = { .type = R_RESUME, .time = now_ms(), .group = group,
			 .text = why, .n = n, .indexes = idx };
	record(eb, &r);
	for (uint32_t i = 0; i < n; i++)
		q_push(&eb->requeue, idx[i]);
	commit(e, eb, true);
	eb->next_flush_ns = 0;
}

/* An item is final: so is it in every group it is a member of. */
static void note_final(struct engine *e, struct ebatch *eb, uint32_t idx)
{
	const struct item *it = &eb->b.items[idx];
	char resolved[4][GROUP_ID_MAX];
	/* No group known: nothing to tell (a group another runner formed
	 * meanwhile is settled by react_groups once folded). */
	if (!e->sh_ok || !e->sh.ngroups)
		return;
	int n = shared_final(&e->sh, eb->id, it->symbol, state_name(it->state),
			     now_ms(), resolved, 4);
	for (int i = 0; i < n && i < 4; i++) {
		const struct sh_group *g = shared_group(&e->sh, resolved[i]);
		if (g)
			group_alert(e, g, "resolved");
	}
}

/* Failed items of eb that failed through g (its failing members): they
 * wait with the group, like the others (their batch still open). */
static void add_failed_members(const struct ebatch *eb, struct sh_group *g,
			       uint32_t *idx, uint32_t *n)
{
	if (eb->b.final)
		return;
	for (size_t k = 0; k < g->nm; k++) {
		const struct sh_member *m = &g->m[k];
		if (!m->failed || m->final || strcmp(m->batch, eb->id))
			continue;
		const struct item *it = batch_item((struct batch *)&eb->b,
						   m->symbol);
		if (it && it->state == ST_FAILED)
			idx[(*n)++] = (uint32_t)(it - eb->b.items);
	}
}

static void pause_for_group(struct engine *e, struct ebatch *eb,
			    struct sh_group *g)
{
	uint32_t n;
	uint32_t *idx = pausable(eb, &n);
	idx = xrealloc(idx, (n + g->nm + 1) * sizeof(uint32_t));
	add_failed_members(eb, g, idx, &n);
	pause_items(e, eb, idx, n, g->id, NULL);
	if (n)
		runlog_printf(e->o.runlog,
			      "batch %s: %u %s paused by failure group %s (%s)",
			      eb->id, n, plural(n, "item", "items"), g->id,
			      g->root_cause ? g->root_cause : "");
	free(idx);
}

static void resume_for_group(struct engine *e, struct ebatch *eb,
			     const struct sh_group *g)
{
	uint32_t *idx = xmalloc((eb->b.nitems + 1) * sizeof(uint32_t)), n = 0;
	for (size_t i = 0; i < eb->b.nitems; i++) {
		const struct item *it = &eb->b.items[i];
		if (it->state == ST_PAUSED && it->pause_group &&
		    !strcmp(it->pause_group, g->id))
			idx[n++] = (uint32_t)i;
	}
	resume_items(e, eb, g->id, idx, n, g->order, NULL);
	if (n)
		runlog_printf(e->o.runlog,
			      "batch %s: %u %s of group %s resumed (%s order)",
			      eb->id, n, plural(n, "item", "items"), g->id,
			      g->order);
	free(idx);
}

/* Bring our batches in line with the home's groups. */
static void react_groups(struct engine *e)
{
	if (!e->sh_ok || e->sh.gen == e->seen_gen)
		return;
	e->seen_gen = e->sh.gen;
	for (size_t gi = 0; gi < e->sh.ngroups; gi++) {
		struct sh_group *g = e->sh.groups[gi];
		if (g->status == GROUP_RESOLVED)
			continue;
		char gid[GROUP_ID_MAX];
		snprintf(gid, sizeof(gid), "%s", g->id);
		for (size_t i = 0; i < e->nbatches; i++) {
			struct ebatch *eb = e->batches[i];
			/* (a compaction may have folded the groups anew) */
			if (!(g = shared_group(&e->sh, gid)))
				break;
			if (eb->closed)
				continue;
			struct grp_mark *m = mark_of(eb, gid);
			if (g->status == GROUP_OPEN && group_matches(g, eb) &&
			    m->opened_ms != g->opened_ms) {
				/* Opened, or open again: pause for it once. */
				m->opened_ms = g->opened_ms;
				pause_for_group(e, eb, g);
			} else if (g->status == GROUP_RESUMING &&
				   m->resumed_ms != g->resumed_ms) {
				m->resumed_ms = g->resumed_ms;
				m->opened_ms = 0;
				resume_for_group(e, eb, g);
			}
			/* Members of ours already final (failed for good, or
			 * cancelled) count towards the group's resolution. */
			for (size_t k = 0; (g = shared_group(&e->sh, gid)) &&
					   k < g->nm;
			     k++) {
				struct sh_member *mm = &g->m[k];
				if (mm->final || strcmp(mm->batch, eb->id))
					continue;
				struct item *it = batch_item(&eb->b, mm->symbol);
				if (it && state_final(it->state) &&
				    !(it->state == ST_FAILED && mm->failed &&
				      !eb->b.final && g->status == GROUP_OPEN))
					note_final(e, eb, (uint32_t)(it - eb->b.items));
			}
		}
		g = shared_group(&e->sh, gid);
		if (g && e->o.daemon && g->status == GROUP_RESUMING) {
			/* Members nobody runs: the daemon takes their batches. */
			for (size_t k = 0; k < g->nm; k++)
				if (!g->m[k].final && !find_batch(e, g->m[k].batch))
					engine_take(e, g->m[k].batch, -1, 0);
		}
	}
}

static int cmp_pair(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort "batch\0symbol\0" pairs by batch (then symbol). */
static void sort_pairs(struct sb *pairs)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	for (size_t off = 0; off < pairs->len;) {
		char *p = pairs->buf + off;
		size_t lb = strlen(p), ls = strlen(p + lb + 1);
		GROW(v, cap, n + 1);
		/* "batch\x1fsymbol": one string that sorts by batch */
		v[n] = xmalloc(lb + ls + 2);
		memcpy(v[n], p, lb);
		v[n][lb] = '\x1f';
		memcpy(v[n] + lb + 1, p + lb + 1, ls + 1);
		n++;
		off += lb + ls + 2;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_pair);
	sb_reset(pairs);
	for (size_t i = 0; i < n; i++) {
		char *sep = strchr(v[i], '\x1f');
		*sep = '\0';
		sb_adds(pairs, v[i]);
		sb_addc(pairs, '\0');
		sb_adds(pairs, sep + 1);
		sb_addc(pairs, '\0');
		free(v[i]);
	}
	free(v);
}

/*
 * Members whose batch nobody runs and that is final (its runner was killed
 * between its journal and state/events, say) are final in their groups
 * too, with the outcome their batch records: no group stays resuming for
 * ever on a member that ended.  Batches this process holds are settled by
 * react_groups; this looks at the others, at start and with the daemon's
 * periodic look for orphans.
 */
static void settle_groups(struct engine *e)
{
	if (!e->sh_ok)
		return;
	shared_sync(&e->sh);
	struct sb todo = SB_INIT; /* "batch\0symbol\0" pairs */
	for (size_t gi = 0; gi < e->sh.ngroups; gi++) {
		const struct sh_group *g = e->sh.groups[gi];
		if (g->status == GROUP_RESOLVED)
			continue;
		for (size_t k = 0; k < g->nm; k++) {
			const struct sh_member *m = &g->m[k];
			if (m->final || find_batch(e, m->batch))
				continue;
			sb_adds(&todo, m->batch);
			sb_addc(&todo, '\0');
			sb_adds(&todo, m->symbol);
			sb_addc(&todo, '\0');
		}
	}
	sort_pairs(&todo);
	/* One replay per batch, however many of its items are members. */
	char *cur = NULL;
	struct batch b;
	bool have = false;
	batch_init(&b);
	for (size_t off = 0; off < todo.len;) {
		const char *batch = todo.buf + off;
		const char *symbol = batch + strlen(batch) + 1;
		off = (size_t)(symbol + strlen(symbol) + 1 - todo.buf);
		if (!cur || strcmp(cur, batch)) {
			free(cur);
			cur = xstrdup(batch);
			batch_release(&b);
			batch_init(&b);
			have = false;
			struct summary su;
			int bfd = valid_batch_id(batch)
					  ? open_dir_at(e->h->batches, batch)
					  : -1;
			struct journal j;
			if (bfd >= 0 && meta_read_summary(bfd, &su) == 0 &&
			    status_final(su.status) &&
			    journal_open(&j, bfd, "journal", false, batch_replay,
					 &b) == 0) {
				journal_close(&j);
				have = b.final;
			}
			if (bfd >= 0)
				close(bfd);
		}
		const struct item *it = have ? batch_item(&b, symbol) : NULL;
		if (!it || !state_final(it->state))
			continue;
		char resolved[4][GROUP_ID_MAX];
		int n = shared_final(&e->sh, batch, symbol, state_name(it->state),
				     now_ms(), resolved, 4);
		for (int i = 0; i < n && i < 4; i++) {
			const struct sh_group *g = shared_group(&e->sh, resolved[i]);
			if (g)
				group_alert(e, g, "resolved");
		}
	}
	batch_release(&b);
	free(cur);
	sb_release(&todo);
}

/* A symbol's circuit allows an attempt now (closed, or its trial free). */
static bool symbol_allows(struct engine *e, const char *symbol, int64_t now)
{
	const struct sh_symbol *sym = shared_symbol(&e->sh, symbol);
	return !sym || breaker_allows(&sym->brk, now);
}

/* A half-open source circuit lets one paused member try. */
static void try_trials(struct engine *e)
{
	int64_t now = now_ms();
	if (!e->sh_ok || e->shutdown)
		return;
	for (size_t gi = 0; gi < e->sh.ngroups; gi++) {
		struct sh_group *g = e->sh.groups[gi];
		if (g->status != GROUP_OPEN || !breaker_allows(&g->brk, now))
			continue;
		/* The group's paused members in batches of ours: O(members),
		 * not O(items), since this runs every turn while it is due. */
		struct ebatch *best_eb = NULL;
		uint32_t best = 0;
		for (size_t k = 0; k < g->nm; k++) {
			if (!g->m[k].paused || g->m[k].final)
				continue;
			struct ebatch *eb = find_batch(e, g->m[k].batch);
			struct item *it = eb ? batch_item(&eb->b, g->m[k].symbol)
					     : NULL;
			if (!it || it->state != ST_PAUSED || !it->pause_group ||
			    strcmp(it->pause_group, g->id))
				continue;
			/* The source is what is tried: not a symbol whose own
			 * circuit is open. */
			if (!symbol_allows(e, it->symbol, now))
				continue;
			if (!best_eb ||
			    it->progress > best_eb->b.items[best].progress) {
				best_eb = eb;
				best = (uint32_t)(it - eb->b.items);
			}
		}
		if (!best_eb ||
		    shared_trial(&e->sh, g->id, best_eb->id,
				 best_eb->b.items[best].symbol, now) != 1)
			continue;
		g = e->sh.groups[gi];
		add_trial(e, g->id, best_eb, best);
		runlog_printf(e->o.runlog, "group %s half-open: trial with %s of %s",
			      g->id, best_eb->b.items[best].symbol, best_eb->id);
		char why[GROUP_ID_MAX + 40];
		snprintf(why, sizeof(why), "half-open trial of failure group %s",
			 g->id);
		resume_items(e, best_eb, NULL, &best, 1, "progress", why);
	}
}

/* A symbol trial a user forced (retry-failed): the first item takes it,
 * while the circuit is still half-open with its trial out (a failure of
 * another attempt of the symbol may have opened it again: then the forced
 * trial is void). */
static bool take_symbol_trial(struct engine *e, const char *symbol)
{
	for (size_t i = 0; i < e->nsym_trials; i++) {
		if (strcmp(e->sym_trials[i], symbol))
			continue;
		free(e->sym_trials[i]);
		e->sym_trials[i] = e->sym_trials[--e->nsym_trials];
		const struct sh_symbol *sym = shared_symbol(&e->sh, symbol);
		return sym && sym->brk.state == CIRCUIT_HALF_OPEN &&
		       sym->brk.trial_taken;
	}
	return false;
}

static void force_symbol_trial(struct engine *e, const char *symbol)
{
	if (!e->sh_ok || shared_symbol_force_trial(&e->sh, symbol) != 1)
		return;
	GROW(e->sym_trials, e->capsym_trials, e->nsym_trials + 1);
	e->sym_trials[e->nsym_trials++] = xstrdup(symbol);
}

/* When the engine must look again at circuits, groups and trials, 0:
 * never.  Only groups with paused members here: a group whose members
 * another process holds is that process's to try. */
static int64_t circuits_next_ms(struct engine *e)
{
	int64_t best = 0, now = now_ms();
	if (!e->sh_ok)
		return 0;
	for (size_t gi = 0; gi < e->sh.ngroups; gi++) {
		const struct sh_group *g = e->sh.groups[gi];
		if (g->status != GROUP_OPEN || g->brk.until >= INT64_MAX / 4)
			continue;
		bool ours = false;
		for (size_t k = 0; k < g->nm && !ours; k++)
			ours = g->m[k].paused && !g->m[k].final &&
			       find_batch(e, g->m[k].batch);
		if (!ours)
			continue;
		int64_t t = breaker_next_ms(&g->brk, now);
		if (!t)
			t = now + 1000; /* allowed: try_trials takes it, or
					   a member's own circuit holds it */
		if (!best || t < best)
			best = t;
	}
	for (size_t i = 0; i < e->ntrials; i++)
		if (!best || e->trials[i].renew_ms < best)
			best = e->trials[i].renew_ms;
	if (e->defer_wake_ms && (!best || e->defer_wake_ms < best))
		best = e->defer_wake_ms;
	return best;
}

static void finish_attempt(struct engine *e, struct ebatch *eb, uint32_t idx,
			   uint32_t attempt, int wait_status,
			   const struct rusage *ru, uint8_t why, int exec_errno,
			   int64_t timeout_ms, int64_t end_ms)
{
	struct item *it = &eb->b.items[idx];
	const struct batch_conf *c = &eb->b.c;
	struct result res;
	struct verdict v;
	char *tail = NULL;
	struct rec r = { .type = R_FINISHED, .item = idx, .attempt = attempt,
			 .time = end_ms ? end_ms : now_ms(), .matches = -1,
			 .progress = -1 };

	read_result(eb, it->symbol, attempt, &res);
	bool ok_exit = WIFEXITED(wait_status) && !WEXITSTATUS(wait_status);
	if ((!ok_exit || why == KILL_TIMEOUT) && !exec_errno)
		tail = read_stderr_tail(eb, it->symbol, attempt);
	struct outcome_in in = {
		.wait_status = wait_status,
		.timed_out = why == KILL_TIMEOUT,
		.runner_killed = why != KILL_NONE,
		.timeout_ms = timeout_ms,
		.cpu_limit_ms = eb->agent->cpu_limit_ms,
		.cpu_used_ms = ru ? (ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
				    (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000
			       : 0,
		.exec_errno = exec_errno,
		.exec_path = eb->agent->exec_path,
		.res = &res,
		.stderr_tail = tail,
		.rules = &eb->agent->classify,
	};
	classify(&in, &v);
	free(tail);

	r.exit_code = v.exit_code;
	r.signal = v.signal;
	r.matches = res.matches;
	r.progress = res.progress;
	r.source = res.source[0] ? res.source : NULL;
	r.warning = v.warning[0] ? v.warning : NULL;
	if (ru) {
		r.cpu_user_ms = (uint32_t)(ru->ru_utime.tv_sec * 1000 +
					   ru->ru_utime.tv_usec / 1000);
		r.cpu_system_ms = (uint32_t)(ru->ru_stime.tv_sec * 1000 +
					     ru->ru_stime.tv_usec / 1000);
		r.max_rss_kb = (uint32_t)ru->ru_maxrss;
	}
	/* Trials this attempt held: a group's (its source) and its symbol's. */
	char trial_group[GROUP_ID_MAX] = "";
	struct trial *t = find_trial(e, eb, idx, true);
	if (t) {
		snprintf(trial_group, sizeof(trial_group), "%s", t->group);
		drop_trial(e, t);
	}
	bool sym_trial = false;
	if ((t = find_trial(e, eb, idx, false))) {
		sym_trial = true;
		drop_trial(e, t);
	}
	struct sh_failure_result fr = { 0 };
	bool grouped = false;
	if (why == KILL_CANCEL || it->cancel_requested) {
		r.outcome = OUT_CANCELLED;
		r.next_state = ST_CANCELLED;
		r.error_message = "cancelled";
	} else if (why == KILL_SHUTDOWN) {
		r.outcome = OUT_INTERRUPTED;
		r.next_state = ST_PENDING;
		r.error_message = "interrupted: the runner stopped";
	} else if (v.success) {
		r.outcome = OUT_SUCCEEDED;
		r.next_state = ST_SUCCEEDED;
	} else {
		r.outcome = OUT_FAILED;
		r.category = (uint8_t)v.category;
		r.error_type = res.type[0] ? res.type : NULL;
		r.error_message = v.message;
		r.counts_failure = 1;
		bool retryable = (c->retry_on & CAT_BIT(v.category)) != 0;
		if (res.retryable == 1)
			retryable = true;
		else if (res.retryable == 0)
			retryable = false; /* the agent knows it is hopeless */
		if (exec_errno == ENOENT || exec_errno == EACCES ||
		    exec_errno == ENOEXEC)
			retryable = false; /* no retry makes a binary appear */
		int failures = it->failures + 1;
		bool final_alone = !(retryable && failures < c->max_attempts);
		/* One cause behind many failures?  (SPEC 6.3) */
		struct failure f = {
			.agent = c->agent,
			.source = r.source ? r.source : c->source,
			.category = category_name(v.category),
			.type = r.error_type,
			.message = v.message,
			.symbol = it->symbol,
			.batch = eb->id,
		};
		/* A failure speaks for its source when its cause is one
		 * (rate limit, authentication, timeout, network), or when the
		 * agent names the source of a transient error; a failure of
		 * the item itself (no data for it, a bad parameter, a crash)
		 * counts only for the symbol's own circuit. */
		bool correlate = correlate_cause(&f) != CAUSE_GENERIC ||
				 (res.source[0] && retryable);
		if (e->sh_ok &&
		    shared_failure(&e->sh, &f, correlate, final_alone, r.time,
				   &fr) == 0 &&
		    fr.group && fr.group->status != GROUP_RESOLVED) {
			grouped = true;
			r.group = fr.group->id;
		}
		if (grouped) {
			/* The group's failure, not the item's: it waits for
			 * its group whatever its attempts or category, and a
			 * resume runs it again (resume All). */
			r.next_state = ST_PAUSED;
			r.counts_failure = 0;
		} else if (!final_alone) {
			r.next_state = ST_RETRY_WAIT;
			r.next_retry_at = r.time + retry_delay_ms(c, failures, &res);
		} else {
			r.next_state = ST_FAILED;
		}
	}
	/* A trial that failed for the group's cause opens it again, longer;
	 * one that failed for a reason of its own said nothing about the
	 * source: the trial goes to another member. */
	char group_id[GROUP_ID_MAX] = "";
	if (r.group)
		snprintf(group_id, sizeof(group_id), "%s", r.group);
	r.group = group_id[0] ? group_id : NULL;
	if (trial_group[0] && e->sh_ok && r.outcome == OUT_FAILED) {
		if (!strcmp(group_id, trial_group))
			shared_trial_result(&e->sh, trial_group, false, r.time);
		else
			shared_trial_release(&e->sh, trial_group);
	}
	record(eb, &r);
	metrics_attempt(&e->metrics, r.outcome, r.category);
	if (r.outcome != OUT_INTERRUPTED || ru) {
		const struct attempt *a = &it->log[attempt - 1];
		symstats_end(&e->stats, it->symbol, r.time,
			     a->started_ms ? r.time - a->started_ms : 0,
			     r.outcome == OUT_SUCCEEDED);
	}
	if (r.next_state == ST_RETRY_WAIT)
		heap_push(&eb->retry, r.next_retry_at, idx);
	else if (r.next_state == ST_PENDING)
		q_push(&eb->requeue, idx);
	else if (r.next_state != ST_PAUSED)
		q_push(&eb->unreported, idx);

	/* What the rest of the home needs to know, and the people. */
	if (r.outcome == OUT_SUCCEEDED && e->sh_ok) {
		if (shared_success(&e->sh, it->symbol, r.time) == 1)
			runlog_printf(e->o.runlog, "symbol %s: circuit closed",
				      it->symbol);
		if (trial_group[0])
			shared_trial_result(&e->sh, trial_group, true, r.time);
	}
	if (trial_group[0] && e->sh_ok &&
	    (r.outcome == OUT_CANCELLED || r.outcome == OUT_INTERRUPTED))
		shared_trial_release(&e->sh, trial_group);
	/* The symbol's trial: a success closed its circuit and a failure of
	 * its own opened it again; anything else gives it back. */
	if (sym_trial && e->sh_ok && r.outcome != OUT_SUCCEEDED &&
	    !(r.outcome == OUT_FAILED && !grouped))
		shared_symbol_trial_release(&e->sh, it->symbol);
	if (fr.symbol_opened) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s processing failed %u %s",
			 it->symbol, fr.streak,
			 plural(fr.streak, "time", "times"));
		emit_alert(e, "symbol_circuit_open", eb, it, NULL, msg);
		runlog_printf(e->o.runlog, "symbol %s: circuit open (%s)",
			      it->symbol, msg);
	}
	if (r.next_state == ST_PAUSED && group_id[0] && e->sh_ok) {
		const char *sym = it->symbol;
		shared_paused(&e->sh, group_id, eb->id, &sym, 1, r.time);
	}
	const struct sh_group *g = group_id[0] && e->sh_ok
		? shared_group(&e->sh, group_id) : NULL;
	if (fr.formed && g) {
		group_alert(e, g, "formed");
		/* One alert per member not told of yet, with the group. */
		for (size_t k = 0; k < fr.nunreported; k++)
			member_alert(e, g, fr.unreported[k].batch,
				     fr.unreported[k].symbol);
	} else if (g) {
		if (fr.reopened)
			group_alert(e, g, "reopened");
		else if (fr.grown)
			group_alert(e, g, "grew");
		if (fr.new_member)
			member_alert(e, g, eb->id, it->symbol);
	} else if (r.next_state == ST_FAILED) {
		emit_alert(e, "item_failed", eb, it, NULL, v.message);
	}
	shared_failure_done(&fr);
	if (state_final(r.next_state))
		note_final(e, eb, idx);
}

static struct run *find_run(struct engine *e, pid_t pid)
{
	for (size_t i = 0; i < e->nruns; i++)
		if (e->runs[i].pid == pid)
			return &e->runs[i];
	return NULL;
}

/* Reap every exited child; their accounting waits for finish_exited(), so
 * that free slots are refilled first. */
/* The next child that ended: 1 (pid, status, ru), 0 when none has. */
static int reap_one(struct engine *e, pid_t *pid, int *status,
		    struct rusage *ru)
{
	if (e->o.ops)
		return e->o.ops->reap(e->o.ops->ctx, pid, status, ru);
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0)
			return 0;
		*pid = si.si_pid;
		/* The leader is a zombie now, so its group id cannot have been
		 * reused: whatever is left in the group goes with it. */
		if (find_run(e, *pid))
			exec_kill_group(*pid, SIGKILL);
		*status = 0;
		if (wait4(*pid, status, 0, ru) == *pid)
			return 1;
	}
}

static void reap(struct engine *e)
{
	pid_t pid;
	int status;
	struct rusage ru;
	while (reap_one(e, &pid, &status, &ru) == 1) {
		struct run *run = find_run(e, pid);
		if (!run && pid == e->retention_pid) {
			e->retention_pid = 0;
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				runlog_printf(e->o.runlog,
					      "retention: the run failed "
					      "(status %d); next in an hour",
					      status);
			continue;
		}
		if (!run) {
			/* a notify hook, or an orphan reparented to us */
			alerts_reaped(e->alerts, pid);
			continue;
		}
		GROW(e->exited, e->capexited, e->nexited + 1);
		e->exited[e->nexited++] =
			(struct exited){ *run, status, ru, now_ms() };
		run->eb->running--;
		*run = e->runs[--e->nruns];
	}
}

static bool exits_failed(const struct engine *e)
{
	for (size_t i = 0; i < e->nexited; i++)
		if (!WIFEXITED(e->exited[i].status) ||
		    WEXITSTATUS(e->exited[i].status))
			return true;
	return false;
}

static void finish_exited(struct engine *e)
{
	for (size_t i = 0; i < e->nexited; i++) {
		struct exited *x = &e->exited[i];
		int64_t t0 = mono_ns();
		finish_attempt(e, x->run.eb, x->run.item, x->run.attempt,
			       x->status, &x->ru, x->run.why,
			       x->run.exec_errno, x->run.eb->b.c.timeout_ms,
			       x->at_ms);
		if (e->trace) {
			GROW(e->overhead_ns, e->capoverhead, e->noverhead + 1);
			e->overhead_ns[e->noverhead++] =
				mono_ns() - t0 + x->run.prep_ns;
		}
	}
	e->nexited = 0;
}

/* ---- scheduling ---- */

/* The next item of eb that may start now, or -1. */
static int64_t next_eligible(struct ebatch *eb, int64_t now)
{
	struct batch *b = &eb->b;
	while (eb->retry.n && eb->retry.v[0].at <= now) {
		struct due d = heap_pop(&eb->retry);
		if (b->items[d.idx].state == ST_RETRY_WAIT &&
		    b->items[d.idx].next_retry_at == d.at)
			return d.idx;
	}
	while (eb->requeue.n) {
		uint32_t idx = q_pop(&eb->requeue);
		const struct item *it = &b->items[idx];
		if (it->state == ST_PENDING)
			return idx;
		/* A due retry that waited for its circuit comes back here. */
		if (it->state == ST_RETRY_WAIT) {
			if (it->next_retry_at <= now)
				return idx;
			heap_push(&eb->retry, it->next_retry_at, idx);
		}
	}
	while (eb->cursor < b->nitems) {
		size_t idx = eb->cursor++;
		if (b->items[idx].state == ST_PENDING)
			return (int64_t)idx;
	}
	return -1;
}

/*
 * Reservations are made well ahead of the free slots, so that one fdatasync
 * covers many spawns, and output files are prepared for as many items as
 * could start next.  Both are budgeted across batches, highest priority
 * first: a home with hundreds of waiting batches reserves for the few that
 * will run soon, not for all of them.  A runner killed with reservations
 * outstanding costs little: adoption releases those whose files were never
 * made, and files exist for at most max_children attempts ahead.
 */
static int64_t reserve_budget(const struct engine *e)
{
	int64_t b = (int64_t)e->c->max_children * 4;
	return b < RESERVE_MAX ? RESERVE_MAX : b;
}

static void reserve(struct engine *e, struct ebatch *eb, int64_t now,
		    int64_t target)
{
	int64_t cap = batch_cap(e, eb);
	int64_t ahead = (int64_t)(eb->reserved.n + prepared_count(eb));
	if (ahead >= cap || ahead >= target)
		return;
	bool added = false;
	const struct sh_group *g = e->sh_ok ? shared_open_group(
		&e->sh, eb->b.c.agent, eb->b.c.source) : NULL;
	while (ahead < target) {
		int64_t idx = next_eligible(eb, now);
		if (idx < 0)
			break;
		struct item *it = &eb->b.items[idx];
		if (g && !find_trial(e, eb, (uint32_t)idx, true)) {
			/* The source's circuit is open: it waits with its group. */
			uint32_t one = (uint32_t)idx;
			pause_items(e, eb, &one, 1, g->id, NULL);
			continue;
		}
		struct sh_symbol *sym = e->sh_ok ? shared_symbol(&e->sh, it->symbol)
						 : NULL;
		if (sym && sym->brk.state != CIRCUIT_CLOSED &&
		    !find_trial(e, eb, (uint32_t)idx, false)) {
			if (take_symbol_trial(e, it->symbol) ||
			    shared_symbol_trial(&e->sh, it->symbol, now) == 1) {
				sym = shared_symbol(&e->sh, it->symbol);
				if (sym && sym->brk.state != CIRCUIT_CLOSED)
					add_trial(e, NULL, eb, (uint32_t)idx);
			} else {
				/* Its symbol's circuit is open: it waits for
				 * the half-open trial, which is due when the
				 * circuit's open period or the lease of a
				 * trial held elsewhere ends. */
				q_push(&eb->deferred, (uint32_t)idx);
				sym = shared_symbol(&e->sh, it->symbol);
				int64_t wake = sym ? breaker_next_ms(&sym->brk, now)
						   : 0;
				if (!wake)
					wake = now + 1000;
				if (!e->defer_wake_ms || wake < e->defer_wake_ms)
					e->defer_wake_ms = wake;
				continue;
			}
		}
		struct rec r = { .type = R_RESERVE, .item = (uint32_t)idx,
				 .attempt = (uint32_t)it->nattempts + 1u };
		record(eb, &r);
		q_push(&eb->reserved, (uint32_t)idx);
		ahead++;
		added = true;
	}
	if (added)
		commit(e, eb, true);
}

/* Deferred items are looked at again when a circuit may allow them: its
 * open period or a trial's lease ended, or a circuit changed (a trial
 * here or in another runner closed it). */
static void undefer(struct engine *e)
{
	bool changed = e->sh_ok && e->sh.sym_gen != e->seen_sym_gen;
	if (e->sh_ok)
		e->seen_sym_gen = e->sh.sym_gen;
	if (!e->defer_wake_ms || (now_ms() < e->defer_wake_ms && !changed))
		return;
	e->defer_wake_ms = 0;
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		while (eb->deferred.n)
			q_push(&eb->requeue, q_pop(&eb->deferred));
	}
}

static bool dispatch_off(struct engine *e)
{
	if (e->shutdown || e->io_failed || e->no_dispatch)
		return true;
	if (e->stalled) {
		if (mono_ns() < e->stall_until_ns)
			return true;
		e->stalled = false;
	}
	return false;
}

/*
 * A prepared attempt whose symbol's circuit opened since it was reserved
 * (another batch's failures, here or in another runner) does not start:
 * it goes back, and waits for the circuit like any other.  Unless it
 * holds the circuit's trial.
 */
static bool circuit_stops(struct engine *e, struct ebatch *eb, struct prep *p)
{
	struct item *it = &eb->b.items[p->idx];
	const struct sh_symbol *sym = e->sh_ok ? shared_symbol(&e->sh, it->symbol)
					       : NULL;
	if (!sym || sym->brk.state == CIRCUIT_CLOSED)
		return false;
	struct trial *t = find_trial(e, eb, p->idx, false);
	if (t && sym->brk.state == CIRCUIT_HALF_OPEN && sym->brk.trial_taken)
		return false;
	/* A trial held, but the circuit opened again meanwhile (another
	 * attempt of the symbol failed): that trial is over. */
	if (t)
		drop_trial(e, t);
	close(p->outfd);
	close(p->errfd);
	unlink_outputs(eb, it->symbol, it->nattempts);
	struct rec r = { .type = R_RELEASE, .item = p->idx,
			 .attempt = it->nattempts };
	record(eb, &r);
	q_push(&eb->requeue, p->idx);
	e->kick = true; /* it waits for its circuit from the next turn */
	return true;
}

/* Spawn prepared items, highest priority first, under every cap. */
static void spawn_ready(struct engine *e)
{
	const struct agent_conf *blocked[64];
	size_t nblocked = 0;
	if (dispatch_off(e))
		return;
	/* What another runner decided since our last look (a group formed,
	 * a circuit opened) is seen before anything starts: one fstat. */
	if (e->sh_ok && shared_refresh(&e->sh))
		react_groups(e);
	for (;;) {
		if ((int)e->nruns >= e->c->max_children)
			break;
		struct ebatch *pick = NULL;
		for (size_t i = 0; i < e->nbatches && !pick; i++) {
			struct ebatch *eb = e->batches[i];
			if (eb->closed || !prepared_count(eb) || !eb->agent)
				continue;
			if (eb->b.c.concurrency > 0 &&
			    eb->running >= eb->b.c.concurrency)
				continue;
			if (agent_running(e, eb->agent) >=
			    eb->agent->max_concurrent)
				continue;
			bool skip = false;
			for (size_t k = 0; k < nblocked; k++)
				skip |= blocked[k] == eb->agent;
			if (!skip)
				pick = eb;
		}
		if (!pick)
			break;
		int why;
		int fd = slot_acquire(e->h->state, e->c->max_children,
				      pick->agent->name,
				      pick->agent->max_concurrent, &why);
		if (fd < 0) {
			if (errno != EAGAIN) {
				stall(e, "state/slots", errno);
				return;
			}
			/* Held by other runner processes: ask again soon. */
			e->slot_poll_ns = mono_ns() + SLOT_POLL_MS * 1000000LL;
			if (why == SLOT_GLOBAL)
				break;
			if (nblocked < 64)
				blocked[nblocked++] = pick->agent;
			continue;
		}
		struct prep p = pick->prepared[pick->prep_head++];
		if (pick->prep_head == pick->nprepared)
			pick->prep_head = pick->nprepared = 0;
		if (circuit_stops(e, pick, &p)) {
			close(fd);
			continue;
		}
		spawn_item(e, pick, p, fd);
	}
}

/* Reserve and prepare what the next free slots will take. */
static void dispatch(struct engine *e)
{
	int64_t now = now_ms();
	int64_t res_budget = reserve_budget(e);
	int64_t prep_budget = e->c->max_children;
	if (dispatch_off(e))
		return;
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed || !eb->agent)
			continue;
		if (res_budget > 0)
			reserve(e, eb, now, res_budget);
		if (e->stalled || e->io_failed)
			return;
		res_budget -= (int64_t)(eb->reserved.n + prepared_count(eb));
		int64_t cap = batch_cap(e, eb);
		prep_budget -= (int64_t)prepared_count(eb);
		while (eb->reserved.n && prep_budget > 0 &&
		       (int64_t)prepared_count(eb) < cap) {
			if (prepare_item(e, eb) < 0)
				return;
			prep_budget--;
		}
	}
	spawn_ready(e);
}

/* ---- timers ---- */

static void signal_run(struct engine *e, struct run *run, uint8_t why)
{
	int64_t mono = mono_ns();
	if (run->kill_ns)
		return;
	run->why = why;
	kill_group(e, run->pid, SIGTERM);
	run->kill_ns = mono + e->c->kill_grace_ms * 1000000LL;
	if (run->kill_ns == mono)
		run->kill_ns = mono + 1;
}

static void check_timers(struct engine *e)
{
	int64_t mono = mono_ns(), now = now_ms();
	for (size_t i = 0; i < e->nruns; i++) {
		struct run *run = &e->runs[i];
		if (run->deadline_ns && mono >= run->deadline_ns && !run->kill_ns)
			signal_run(e, run, KILL_TIMEOUT);
		if (run->kill_ns && mono >= run->kill_ns && !run->killed) {
			kill_group(e, run->pid, SIGKILL);
			run->killed = true;
		}
	}
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed || !eb->deadline_ms || now < eb->deadline_ms ||
		    eb->b.final || !batch_open_items(&eb->b))
			continue;
		struct u32q now_cancelled = { 0 };
		for (size_t k = 0; k < eb->b.nitems; k++) {
			int st = eb->b.items[k].state;
			if (!state_final(st) && st != ST_RUNNING)
				q_push(&now_cancelled, (uint32_t)k);
		}
		struct rec r = { .type = R_CANCEL, .time = now, .whole = 1,
				 .reason = CANCEL_BATCH_TIMEOUT };
		record(eb, &r);
		eb->deadline_ms = 0;
		drop_cancelled_prepared(eb);
		for (size_t k = 0; k < e->nruns; k++)
			if (e->runs[k].eb == eb)
				signal_run(e, &e->runs[k], KILL_CANCEL);
		while (now_cancelled.n) {
			uint32_t k = q_pop(&now_cancelled);
			q_push(&eb->unreported, k);
			note_final(e, eb, k);
		}
		free(now_cancelled.v);
	}
}

static int64_t next_wakeup_ms(struct engine *e)
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
		/* A retry that is due and still waits is held back by the
		 * caps (its batch has reserved all it may): a child's end
		 * wakes the loop for it, not the clock (waking for it now
		 * would spin). */
		if (eb->retry.n && !e->shutdown && eb->retry.v[0].at > now) {
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
	int64_t cm = circuits_next_ms(e);
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

/* ---- views ---- */

/*
 * Items made final since the last commit, now durable, one event each.
 * The batch's counts already include every item still in the queue, so
 * each event counts up from below them: several items of one commit get
 * successive counts, not the same one.
 */
static void report_durable(struct engine *e, struct ebatch *eb)
{
	struct u32q *q = &eb->unreported;
	size_t done = eb->b.count[ST_SUCCEEDED] + eb->b.count[ST_FAILED] +
		      eb->b.count[ST_CANCELLED];
	for (size_t i = 0; i < q->n; i++) {
		uint32_t idx = q->v[(q->head + i) % q->cap];
		if (state_final(eb->b.items[idx].state) && done)
			done--;
	}
	while (q->n) {
		uint32_t idx = q_pop(q);
		const struct item *it = &eb->b.items[idx];
		/* Sent back by retry-failed before it was reported. */
		if (!state_final(it->state))
			continue;
		done++;
		if (e->o.json)
			progress_event(stdout, &eb->b, done, it);
		progress_note(&e->prog, it->state);
	}
	if (eb->log)
		fflush(eb->log);
}

static void flush_meta(struct engine *e, struct ebatch *eb, bool force)
{
	int64_t mono = mono_ns();
	int st = batch_status(&eb->b);
	if (!eb->meta_dirty)
		return;
	if (!force && mono < eb->next_flush_ns) {
		if (st == eb->shown_status)
			return;
		/* A new status (the first spawn: pending -> running) is shown
		 * at the next turn, not a second later.  Not now: dispatch may
		 * have just spawned this batch's prepared item, and a write
		 * here would hold up the preparing of its next one, leaving a
		 * slot freed meanwhile to a batch of lower priority. */
		eb->next_flush_ns = mono;
		return;
	}
	/* Views show only what is durable. */
	if (commit(e, eb, true) < 0)
		return;
	report_durable(e, eb);
	if (meta_flush(eb->dirfd, &eb->b, now_ms(), e->sh_ok ? &e->sh : NULL) < 0) {
		warning("batches/%s/batch.json: %s", eb->id, strerror(errno));
	} else {
		eb->meta_dirty = false;
	}
	eb->shown_status = st; /* a failed write is tried again later, not
				* on every turn */
	int64_t cost = mono_ns() - mono;
	eb->flush_cost_ns = cost;
	/* At most about once a second, and never more than 10% of the time. */
	int64_t gap = cost * 10;
	if (gap < META_MIN_INTERVAL_MS * 1000000LL)
		gap = META_MIN_INTERVAL_MS * 1000000LL;
	eb->next_flush_ns = mono_ns() + gap;
}

static void close_batch(struct engine *e, struct ebatch *eb)
{
	if (eb->closed)
		return;
	flush_meta(e, eb, true);
	if (eb->log) {
		fclose(eb->log);
		eb->log = NULL;
	}
	int st = batch_status(&eb->b);
	eb->result = st == BS_COMPLETED ? 0 : 1;
	if (e->o.json)
		progress_batch_event(stdout, &eb->b, now_ms());
	for (size_t i = 0; i < e->ntrials;)
		if (e->trials[i].eb == eb)
			release_trial(e, &e->trials[i]);
		else
			i++;
	/* The metrics count a batch once, at its first end (retry-failed
	 * ends it again); the alert tells of every end. */
	if (status_final(st) && eb->finalized && eb->b.finals == 1)
		metrics_batch_final(&e->metrics, st,
				    eb->b.started_ms && eb->b.completed_ms
					    ? (double)(eb->b.completed_ms -
						       eb->b.started_ms) / 1000.0
					    : -1);
	if (status_final(st) && eb->finalized) {
		char msg[256];
		snprintf(msg, sizeof(msg),
			 "batch %s %s: %zu succeeded, %zu failed, %zu cancelled",
			 eb->id, batch_status_name(st), eb->b.count[ST_SUCCEEDED],
			 eb->b.count[ST_FAILED], eb->b.count[ST_CANCELLED]);
		struct alert al = ALERT_INIT;
		al.event = "batch_final";
		al.batch_id = eb->id;
		al.status = batch_status_name(st);
		al.message = msg;
		al.count = (long long)eb->b.nitems;
		alert_emit(e->alerts, &al);
	}
	runlog_printf(e->o.runlog, "batch %s %s: %zu succeeded, %zu failed, %zu "
				   "cancelled, %zu open",
		      eb->id, batch_status_name(st), eb->b.count[ST_SUCCEEDED],
		      eb->b.count[ST_FAILED], eb->b.count[ST_CANCELLED],
		      batch_open_items(&eb->b));
	if (e->o.summary && !e->o.json && verbosity >= 0) {
		progress_clear(&e->prog);
		meta_print_summary(stdout, &eb->b, now_ms(), SHOW_PATHS,
				   e->h->path, e->sh_ok ? &e->sh : NULL);
		fflush(stdout);
	}
	if (st == BS_PAUSED && !e->o.json && !e->o.daemon && verbosity >= 0) {
		/* What it waits for, and how to go on: one line per cause. */
		const char *seen[16];
		size_t nseen = 0, user = 0;
		for (size_t i = 0; i < eb->b.nitems; i++) {
			const struct item *it = &eb->b.items[i];
			if (it->state != ST_PAUSED)
				continue;
			if (!it->pause_group) {
				user++;
				continue;
			}
			bool dup = false;
			for (size_t k = 0; k < nseen; k++)
				dup |= !strcmp(seen[k], it->pause_group);
			if (dup || nseen == 16)
				continue;
			seen[nseen++] = it->pause_group;
			const struct sh_group *g =
				e->sh_ok ? shared_group(&e->sh, it->pause_group)
					 : NULL;
			printf("batch %s waits on failure group %s (%s); resume "
			       "with: runner resume %s\n",
			       eb->id, it->pause_group,
			       g && g->root_cause ? g->root_cause : "paused",
			       it->pause_group);
		}
		if (user)
			printf("batch %s: %zu %s paused; resume with: runner "
			       "resume %s\n",
			       eb->id, user, plural(user, "item", "items"),
			       eb->id);
		fflush(stdout);
	}
	journal_close(&eb->j);
	if (eb->items_fd >= 0)
		close(eb->items_fd);
	if (eb->lock_fd >= 0)
		close(eb->lock_fd);
	close(eb->dirfd);
	eb->items_fd = eb->lock_fd = eb->dirfd = -1;
	eb->closed = true;
}

static void check_done(struct engine *e)
{
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		struct batch *b = &eb->b;
		if (!b->final && batch_open_items(b) == 0 && !eb->running) {
			struct rec r = { .type = R_FINAL, .time = now_ms(),
					 .status = (uint8_t)batch_final_status(b) };
			record(eb, &r);
			eb->finalized = true;
			if (commit(e, eb, true) < 0)
				continue;
			close_batch(e, eb);
		} else if (b->final && !eb->running && !batch_open_items(b) &&
			   commit(e, eb, true) == 0) {
			close_batch(e, eb); /* final, and all of it on disk */
		} else if (!e->o.daemon && !b->final && !eb->running &&
			   !eb->reserved.n && !prepared_count(eb) &&
			   b->count[ST_PAUSED] && !b->count[ST_PENDING] &&
			   !b->count[ST_RETRY_WAIT] && !b->count[ST_STARTING]) {
			close_batch(e, eb); /* waits only on paused items */
		}
	}
}

/* ---- taking batches ---- */

static int cmp_batches(const void *a, const void *b)
{
	const struct ebatch *x = *(struct ebatch *const *)a;
	const struct ebatch *y = *(struct ebatch *const *)b;
	if (x->b.c.priority != y->b.c.priority)
		return x->b.c.priority > y->b.c.priority ? -1 : 1;
	if (x->b.c.created_ms != y->b.c.created_ms)
		return x->b.c.created_ms < y->b.c.created_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void ebatch_free(struct ebatch *eb)
{
	if (!eb)
		return;
	if (eb->log)
		fclose(eb->log);
	if (eb->j.fd >= 0)
		journal_close(&eb->j);
	if (eb->items_fd >= 0)
		close(eb->items_fd);
	if (eb->lock_fd >= 0)
		close(eb->lock_fd);
	if (eb->dirfd >= 0)
		close(eb->dirfd);
	batch_release(&eb->b);
	sb_release(&eb->env_base);
	free(eb->requeue.v);
	for (size_t i = eb->prep_head; i < eb->nprepared; i++) {
		close(eb->prepared[i].outfd);
		close(eb->prepared[i].errfd);
	}
	free(eb->prepared);
	free(eb->marks);
	free(eb->deferred.v);
	free(eb->reserved.v);
	free(eb->unreported.v);
	free(eb->retry.v);
	free(eb->id);
	free(eb);
}

static bool outputs_exist(struct ebatch *eb, const char *symbol,
			  uint32_t attempt)
{
	char path[96];
	struct stat st;
	snprintf(path, sizeof(path), "%s/attempt-%u.out", symbol, attempt);
	return fstatat(eb->items_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int engine_take(struct engine *e, const char *id, int lock_fd, int flags)
{
	struct ebatch *eb = xcalloc(1, sizeof(*eb));
	bool fresh = lock_fd >= 0;
	char logname[128];
	eb->id = xstrdup(id);
	eb->j.fd = eb->items_fd = eb->dirfd = -1;
	eb->lock_fd = lock_fd;
	batch_init(&eb->b);

	if (find_batch(e, id)) {
		ebatch_free(eb);
		return 1;
	}
	if (!valid_batch_id(id)) {
		ebatch_free(eb);
		return error("%s: not a batch id", id);
	}
	eb->dirfd = open_dir_at(e->h->batches, id);
	if (eb->dirfd < 0) {
		int saved = errno;
		ebatch_free(eb);
		errno = saved;
		return error("batches/%s: %s", id, strerror(errno));
	}
	if (eb->lock_fd < 0 && (eb->lock_fd = batch_lock(eb->dirfd)) < 0) {
		int saved = errno;
		ebatch_free(eb);
		if (saved == EWOULDBLOCK)
			return 1; /* a live runner owns it */
		return error("batches/%s/lock: %s", id, strerror(saved));
	}
	/* We hold its lock: a temp file in it is a crashed writer's. */
	remove_stale_temps(eb->dirfd, NULL, 0);
	if (journal_open(&eb->j, eb->dirfd, "journal", true, batch_replay,
			 &eb->b) < 0 ||
	    !eb->b.claimed) {
		error("batches/%s/journal: %s", id,
		      eb->j.fd < 0 ? strerror(errno) : "no claim record");
		ebatch_free(eb);
		return -1;
	}
	if (eb->j.corrupt) {
		error("batches/%s/journal: damaged at offset %lld (records after "
		      "it are intact); the batch is left as it is",
		      id, (long long)eb->j.corrupt_at);
		ebatch_free(eb);
		return -1;
	}
	if (eb->j.torn_bytes)
		info("batches/%s/journal: cut a torn tail of %lld %s", id,
		     (long long)eb->j.torn_bytes,
		     plural(eb->j.torn_bytes, "byte", "bytes"));
	if (eb->b.final && !(flags & TAKE_FINAL)) {
		/* Nothing to run; make sure the views say so. */
		if (meta_flush(eb->dirfd, &eb->b, now_ms(),
			       e->sh_ok ? &e->sh : NULL) < 0)
			warning("batches/%s/batch.json: %s", id,
				strerror(errno));
		ebatch_free(eb);
		return 1;
	}
	eb->agent = conf_agent(e->c, eb->b.c.agent);
	if (!eb->agent) {
		error("batch %s: agent '%s' is not defined in %s; not run", id,
		      eb->b.c.agent, e->c->path);
		ebatch_free(eb);
		return -1;
	}
	if (ensure_dir(eb->dirfd, "items", 0755) < 0 ||
	    (eb->items_fd = open_dir_at(eb->dirfd, "items")) < 0) {
		error("batches/%s/items: %s", id, strerror(errno));
		ebatch_free(eb);
		return -1;
	}

	if (!fresh && !eb->b.final) {
		/* Adopting: whatever the previous runner left running is
		 * stopped, and its attempts are recorded as interrupted. */
		struct batch *b = &eb->b;
		/* The home and the id together: ids repeat across homes. */
		char *who[2] = { xasprintf("RUNNER_HOME=%s", e->home_abs),
				 xasprintf("RUNNER_BATCH_ID=%s", id) };
		int stopped = kill_env(e, (const char *const *)who, 2);
		free(who[0]);
		free(who[1]);
		/* Left waiting only on paused items (a run that returned,
		 * a daemon that stopped) is a hand-over, not an orphan. */
		bool handed = b->count[ST_PAUSED] && !b->count[ST_RUNNING] &&
			      !b->count[ST_STARTING] && !b->count[ST_PENDING] &&
			      !b->count[ST_RETRY_WAIT];
		struct rec ad = { .type = R_ADOPTED, .time = now_ms(),
				  .pid = getpid(),
				  .reason = handed ? ADOPT_PAUSED : ADOPT_ORPHAN };
		batch_record(b, &eb->j, &ad);
		size_t interrupted = 0;
		for (size_t i = 0; i < b->nitems; i++) {
			struct item *it = &b->items[i];
			if (it->state != ST_RUNNING && it->state != ST_STARTING)
				continue;
			if (it->state == ST_STARTING && !it->cancel_requested &&
			    !outputs_exist(eb, it->symbol, it->nattempts)) {
				/* Reserved, but its files were never made: it
				 * was certainly not spawned.  Not an attempt. */
				struct rec rel = { .type = R_RELEASE,
						   .item = (uint32_t)i,
						   .attempt = it->nattempts };
				batch_record(b, &eb->j, &rel);
				continue;
			}
			struct rec r = {
				.type = R_FINISHED, .item = (uint32_t)i,
				.attempt = it->nattempts, .time = now_ms(),
				.outcome = OUT_INTERRUPTED, .exit_code = -1,
				.matches = -1, .progress = -1,
				.next_state = it->cancel_requested ? ST_CANCELLED
								   : ST_PENDING,
				.error_message = "interrupted: its runner died",
			};
			batch_record(b, &eb->j, &r);
			interrupted++;
		}
		if (journal_sync(&eb->j) < 0) {
			error("batches/%s/journal: %s", id, strerror(errno));
			ebatch_free(eb);
			return -1;
		}
		if (blog_rebuild(e->h->logs, eb->dirfd, id) < 0)
			warning("logs/%s.log: %s", id, strerror(errno));
		if (interrupted || stopped)
			info("batch %s: adopted; %zu %s interrupted, %d "
			     "leftover %s stopped",
			     id, interrupted,
			     plural(interrupted, "attempt", "attempts"), stopped,
			     plural(stopped, "process",
				    "processes"));
		if (handed && !interrupted && !stopped)
			runlog_printf(e->o.runlog,
				      "took up batch %s (it waits on paused items)",
				      id);
		else
			runlog_printf(e->o.runlog,
				      "adopted batch %s: %zu %s interrupted, %d "
				      "leftover %s stopped",
				      id, interrupted,
				      plural(interrupted, "attempt", "attempts"),
				      stopped,
				      plural(stopped, "process", "processes"));
	}
	snprintf(logname, sizeof(logname), "%s.log", id);
	int lfd = openat(e->h->logs, logname,
			 O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			 0644);
	if (lfd < 0 || !(eb->log = fdopen(lfd, "a"))) {
		warning("logs/%s: %s", logname, strerror(errno));
		if (lfd >= 0)
			close(lfd);
	}
	if (fresh && eb->log) {
		/* The claim wrote its records before this log existed. */
		struct rec r = { .type = R_CLAIMED };
		log_rec(eb, &r);
	}
	for (size_t i = 0; i < eb->b.nitems; i++)
		if (eb->b.items[i].state == ST_RETRY_WAIT)
			heap_push(&eb->retry, eb->b.items[i].next_retry_at,
				  (uint32_t)i);
	if (eb->b.c.batch_timeout_ms > 0)
		eb->deadline_ms = eb->b.c.created_ms + eb->b.c.batch_timeout_ms;
	build_env_base(e, eb);
	eb->meta_dirty = true;
	GROW(e->batches, e->capbatches, e->nbatches + 1);
	e->batches[e->nbatches++] = eb;
	qsort(e->batches, e->nbatches, sizeof(*e->batches), cmp_batches);
	progress_add(&e->prog, eb->b.nitems,
		     eb->b.count[ST_SUCCEEDED], eb->b.count[ST_FAILED] +
						      eb->b.count[ST_CANCELLED]);
	e->seen_gen = 0; /* an open group may concern it */
	flush_meta(e, eb, true);
	return 0;
}

int engine_take_orphans(struct engine *e)
{
	int fd = dup(e->h->batches);
	if (fd < 0)
		return -1;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	char **ids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "archive") ||
		    !valid_batch_id(de->d_name))
			continue;
		/* A final batch is never an orphan: skip without locking. */
		int bfd = open_dir_at(e->h->batches, de->d_name);
		if (bfd < 0)
			continue;
		struct summary s;
		bool final = meta_read_summary(bfd, &s) == 0 &&
			     status_final(s.status);
		close(bfd);
		if (final)
			continue;
		GROW(ids, cap, n + 1);
		ids[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (engine_take(e, ids[i], -1, 0) < 0)
			rc = -1;
		free(ids[i]);
	}
	free(ids);
	return rc;
}


/* ---- claiming ---- */

/* The name of path inside this home's spool/, if that is where it is. */
static bool inside_spool(struct engine *e, const char *path, char *name,
			 size_t n)
{
	char *abs = realpath(path, NULL);
	char *spool = xasprintf("%s/spool", e->home_abs);
	bool inside = false;
	if (abs) {
		size_t len = strlen(spool);
		const char *rest = abs + len;
		if (!strncmp(abs, spool, len) && rest[0] == '/' &&
		    !strchr(rest + 1, '/')) {
			snprintf(name, n, "%s", rest + 1);
			inside = true;
		}
	}
	free(abs);
	free(spool);
	return inside;
}

int engine_claim(struct engine *e, const char *path, bool named)
{
	struct claim_result res;
	char name[512];
	if (!named || inside_spool(e, path, name, sizeof(name))) {
		if (spool_claim(e->h, e->c, named ? name : path, &res) < 0)
			return EX_IOERR_;
	} else {
		struct sb text = SB_INIT;
		if (job_read_path(path, &text) < 0) {
			int saved = errno;
			sb_release(&text);
			return saved == ENOENT ? EX_NO_SUCH : EX_INVALID_JOB;
		}
		int rc = spool_claim_bytes(e->h, e->c, path,
					   text.buf ? text.buf : "", text.len,
					   &res);
		sb_release(&text);
		if (rc < 0)
			return EX_IOERR_;
	}
	switch (res.status) {
	case CLAIM_OK:
		info("%s: claimed as batch %s (%zu %s)", path, res.id,
		     res.nsymbols, plural(res.nsymbols, "symbol", "symbols"));
		runlog_printf(e->o.runlog, "claimed %s as batch %s (%zu %s)",
			      path, res.id, res.nsymbols,
			      plural(res.nsymbols, "symbol", "symbols"));
		if (engine_take(e, res.id, res.lock_fd, 0) < 0)
			return EX_IOERR_;
		return 0;
	case CLAIM_GONE:
		return 0;
	case CLAIM_INVALID:
		runlog_printf(e->o.runlog, "%s: rejected: %s", path, res.reason);
		if (named)
			return EX_INVALID_JOB;
		/* The reason was printed as it was found; say where it went. */
		warning("spool/%s: rejected; the reason is in "
			"spool/rejected/%s.reason", path, path);
		return 0;
	case CLAIM_DUPLICATE:
		runlog_printf(e->o.runlog, "%s: duplicate of %s; not run", path,
			      res.dup_of);
		warning("%s: duplicate of %s; not run", path, res.dup_of);
		return 0;
	case CLAIM_ERROR:
		if (res.fsync_failed) {
			/* Never retried: stop, the next start recovers. */
			e->io_failed = true;
			e->shutdown = true;
		}
		return EX_IOERR_;
	}
	return 0;
}

int engine_claim_spool(struct engine *e)
{
	char **names;
	size_t n;
	int status = 0;
	if (spool_scan(e->h, &names, &n) < 0)
		return EX_IOERR_;
	for (size_t i = 0; i < n; i++) {
		int st = engine_claim(e, names[i], false);
		if (st > status)
			status = st;
	}
	spool_names_free(names, n);
	return status;
}

static bool spool_empty(struct engine *e)
{
	char **names;
	size_t n = 0;
	if (spool_scan(e->h, &names, &n) < 0)
		return true;
	spool_names_free(names, n);
	return n == 0;
}

const struct conf *engine_conf(const struct engine *e)
{
	return e->c;
}

/* A daemon forgets the batches it has closed. */
static void compact_batches(struct engine *e)
{
	size_t keep = 0;
	for (size_t i = 0; i < e->nbatches; i++) {
		if (e->batches[i]->closed)
			ebatch_free(e->batches[i]);
		else
			e->batches[keep++] = e->batches[i];
	}
	e->nbatches = keep;
}

/* ---- operations ---- */

static bool symbol_listed(char **symbols, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(symbols[i], s))
			return true;
	return false;
}

int engine_cancel(struct engine *e, const char *id, char **symbols,
		  size_t nsymbols, struct sb *reply)
{
	struct ebatch *eb = find_batch(e, id);
	if (!eb) {
		sb_addf(reply, "{\"ok\":false,\"error\":\"batch not owned\"}");
		return -1;
	}
	struct batch *b = &eb->b;
	uint32_t *idx = xmalloc((b->nitems + 1) * sizeof(uint32_t));
	uint32_t n = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (state_final(it->state))
			continue;
		if (nsymbols && !symbol_listed(symbols, nsymbols, it->symbol))
			continue;
		idx[n++] = (uint32_t)i;
	}
	if (n) {
		int64_t now = now_ms();
		struct rec r = { .type = R_CANCEL, .time = now,
				 .whole = nsymbols == 0, .reason = CANCEL_USER,
				 .n = nsymbols ? n : 0, .indexes = idx };
		record(eb, &r);
		for (uint32_t k = 0; k < n; k++) {
			const struct item *it = &b->items[idx[k]];
			if (it->state == ST_CANCELLED) {
				q_push(&eb->unreported, idx[k]);
				note_final(e, eb, idx[k]);
			}
		}
		for (size_t k = 0; k < e->nruns; k++) {
			struct run *run = &e->runs[k];
			if (run->eb == eb && b->items[run->item].cancel_requested)
				signal_run(e, run, KILL_CANCEL);
		}
		/* Reservations of cancelled items were withdrawn. */
		drop_cancelled_prepared(eb);
		commit(e, eb, true);
	}
	sb_addf(reply, "{\"ok\":true,\"cancelled\":%u}", n);
	free(idx);
	return (int)n;
}

int engine_retry_failed(struct engine *e, const char *id, unsigned categories,
			char **symbols, size_t nsymbols, struct sb *reply)
{
	struct ebatch *eb = find_batch(e, id);
	if (!eb) {
		sb_addf(reply, "{\"ok\":false,\"error\":\"batch not owned\"}");
		return -1;
	}
	struct batch *b = &eb->b;
	uint32_t *idx = xmalloc((b->nitems + 1) * sizeof(uint32_t));
	uint32_t n = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (it->state != ST_FAILED)
			continue;
		int cat = it->nattempts ? it->log[it->nattempts - 1].category
					: CAT_NONE;
		if (categories && !(categories & CAT_BIT(cat)))
			continue;
		if (nsymbols && !symbol_listed(symbols, nsymbols, it->symbol))
			continue;
		idx[n++] = (uint32_t)i;
	}
	if (n) {
		struct rec r = { .type = R_REQUEUE, .time = now_ms(), .n = n,
				 .indexes = idx };
		record(eb, &r);
		for (uint32_t k = 0; k < n; k++) {
			q_push(&eb->requeue, idx[k]);
			/* The user asks for it now: an open circuit of its
			 * symbol gets its half-open trial at once. */
			force_symbol_trial(e, b->items[idx[k]].symbol);
		}
		progress_requeue(&e->prog, n);
		commit(e, eb, true);
	}
	sb_addf(reply, "{\"ok\":true,\"requeued\":%u}", n);
	free(idx);
	return (int)n;
}

int engine_pause(struct engine *e, const char *id, char **symbols,
		 size_t nsymbols, const char *reason, struct sb *reply)
{
	struct ebatch *eb = find_batch(e, id);
	if (!eb) {
		sb_addf(reply, "{\"ok\":false,\"error\":\"batch not owned\"}");
		return -1;
	}
	uint32_t n = 0;
	uint32_t *idx = pausable(eb, &n), k = 0;
	for (uint32_t i = 0; i < n; i++)
		if (!nsymbols ||
		    symbol_listed(symbols, nsymbols, eb->b.items[idx[i]].symbol))
			idx[k++] = idx[i];
	pause_items(e, eb, idx, k, NULL, reason);
	runlog_printf(e->o.runlog, "batch %s: %u %s paused by a user", id, k,
		      plural(k, "item", "items"));
	/* Symbols named but not paused, and why: a user must not read
	 * "2 items paused" for three names without knowing of the third. */
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddNumberToObject(o, "paused", k);
	cJSON *np = cJSON_AddArrayToObject(o, "not_paused");
	for (size_t i = 0; i < nsymbols; i++) {
		const struct item *it = batch_item(&eb->b, symbols[i]);
		const char *why = !it ? "not in the batch"
			: it->state == ST_RUNNING ? "running: it finishes"
			: it->state == ST_PAUSED ? "paused already"
			: state_final(it->state) ? state_name(it->state)
						 : NULL;
		if (!why)
			continue;
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "symbol", symbols[i]);
		cJSON_AddStringToObject(x, "why", why);
		cJSON_AddItemToArray(np, x);
	}
	char *text = cJSON_PrintUnformatted(o);
	sb_adds(reply, text ? text : "{\"ok\":true}");
	cJSON_free(text);
	cJSON_Delete(o);
	free(idx);
	return (int)k;
}

int engine_resume(struct engine *e, const char *id, const char *order,
		  struct sb *reply)
{
	struct ebatch *eb = find_batch(e, id);
	if (!eb) {
		sb_addf(reply, "{\"ok\":false,\"error\":\"batch not owned\"}");
		return -1;
	}
	uint32_t *idx = xmalloc((eb->b.nitems + 1) * sizeof(uint32_t)), own = 0;
	size_t groups = 0, by_group = 0;
	for (size_t i = 0; i < eb->b.nitems; i++) {
		const struct item *it = &eb->b.items[i];
		if (it->state != ST_PAUSED)
			continue;
		const struct sh_group *g =
			it->pause_group && e->sh_ok
				? shared_group(&e->sh, it->pause_group)
				: NULL;
		if (g && g->status != GROUP_RESOLVED) {
			/* It waits on its group: resuming the batch resumes
			 * the group, for every batch it holds. */
			if (g->status == GROUP_OPEN) {
				shared_resume(&e->sh, g->id,
					      order ? order : "progress",
					      now_ms());
				groups++;
			}
			by_group++;
			continue;
		}
		idx[own++] = (uint32_t)i; /* a user's pause */
	}
	resume_items(e, eb, NULL, idx, own, order, NULL);
	react_groups(e);
	runlog_printf(e->o.runlog,
		      "batch %s: resumed %u %s, and %zu through %zu %s",
		      id, own, plural(own, "item", "items"), by_group, groups,
		      plural(groups, "group", "groups"));
	sb_addf(reply, "{\"ok\":true,\"resumed\":%zu,\"groups\":%zu}",
		own + by_group, groups);
	free(idx);
	return (int)(own + by_group);
}

struct shared *engine_shared(struct engine *e)
{
	return e->sh_ok ? &e->sh : NULL;
}

static char **json_strings(const cJSON *arr, size_t *n)
{
	size_t cnt = 0, cap = 0;
	char **v = NULL;
	const cJSON *x;
	cJSON_ArrayForEach(x, arr)
	{
		if (!cJSON_IsString(x) || !x->valuestring)
			continue;
		GROW(v, cap, cnt + 2);
		v[cnt++] = xstrdup(x->valuestring);
	}
	if (v)
		v[cnt] = NULL;
	*n = cnt;
	return v;
}

void engine_control(struct engine *e, const char *id, const char *json,
		    struct sb *reply)
{
	cJSON *req = cJSON_Parse(json);
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(req, "op");
	size_t ns = 0, nc = 0;
	char **syms = json_strings(
		cJSON_GetObjectItemCaseSensitive(req, "symbols"), &ns);
	char **cats = json_strings(
		cJSON_GetObjectItemCaseSensitive(req, "categories"), &nc);
	if (!cJSON_IsString(op)) {
		sb_adds(reply, "{\"ok\":false,\"error\":\"bad request\"}");
	} else if (!strcmp(op->valuestring, "cancel")) {
		engine_cancel(e, id, syms, ns, reply);
	} else if (!strcmp(op->valuestring, "pause")) {
		const cJSON *why = cJSON_GetObjectItemCaseSensitive(req, "reason");
		engine_pause(e, id, syms, ns,
			     cJSON_IsString(why) ? why->valuestring : NULL, reply);
	} else if (!strcmp(op->valuestring, "resume")) {
		const cJSON *ord = cJSON_GetObjectItemCaseSensitive(req, "order");
		engine_resume(e, id, cJSON_IsString(ord) ? ord->valuestring : NULL,
			      reply);
	} else if (!strcmp(op->valuestring, "retry-failed")) {
		unsigned mask = 0;
		for (size_t i = 0; i < nc; i++)
			mask |= CAT_BIT(category_parse(cats[i]));
		engine_retry_failed(e, id, mask, syms, ns, reply);
	} else {
		sb_addf(reply, "{\"ok\":false,\"error\":\"unknown op\"}");
	}
	words_free(syms);
	words_free(cats);
	cJSON_Delete(req);
}

/* A daemon answers for every batch of its home that no other runner
 * process holds: it takes the batch to carry the request out. */
static bool owns_batch(void *arg, const char *id)
{
	struct engine *e = arg;
	if (find_batch(e, id))
		return true;
	if (!e->o.daemon || e->shutdown || !valid_batch_id(id))
		return false;
	return engine_take(e, id, -1, TAKE_FINAL) == 0;
}

static void control_cb(void *arg, const char *id, const char *json,
		       struct sb *reply)
{
	engine_control(arg, id, json, reply);
}

/* Leaving: the hooks of the last alerts get a few seconds, not more (they
 * die with us: PR_SET_PDEATHSIG).  Every alert is in alerts.jsonl anyway. */
static void finish_hooks(struct engine *e)
{
	int64_t until = mono_ns() + 5000000000LL;
	while (alerts_busy(e->alerts) && mono_ns() < until) {
		alerts_run_hooks(e->alerts, e->pid, &e->child_mask);
		alerts_check(e->alerts);
		struct epoll_event ev;
		epoll_wait(e->epfd, &ev, 1, 50);
		struct signalfd_siginfo si;
		while (read(e->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			;
		reap(e);
	}
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

/* ---- metrics (daemon) ---- */

static void write_metrics(struct engine *e)
{
	struct metrics_view v = { .now_ms = now_ms() };
	struct metrics_agent *ag = xcalloc(e->c->nagents + 1, sizeof(*ag));
	for (size_t i = 0; i < e->c->nagents; i++) {
		const struct agent_conf *a = &e->c->agents[i];
		int held = slot_count_held(e->h->state, a->name,
					   a->max_concurrent);
		ag[i] = (struct metrics_agent){
			.name = a->name,
			.running = held < 0 ? agent_running(e, a) : held,
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
			if (st == GROUP_OPEN)
				v.source_circuits_open++;
		}
	}
	if (metrics_write(e->h->logs, &e->metrics, &v) < 0 &&
	    e->metrics.writes == 0)
		warning("logs/runner.prom: %s", strerror(errno));
	free(ag);
}

/* ---- retention (daemon) ---- */

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
		runlog_printf(e->o.runlog, "retention: fork: %s",
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
		struct archive_opts o;
		archive_opts_from_conf(&o, e->c);
		int rc = archive_run(&h, &o, retention_event, l);
		_exit(rc < 0 ? 1 : 0);
	}
	e->retention_pid = pid;
}

/* ---- the loop ---- */

static void kill_all_now(struct engine *e)
{
	for (size_t i = 0; i < e->nruns; i++) {
		struct run *run = &e->runs[i];
		if (run->why == KILL_NONE)
			run->why = KILL_SHUTDOWN;
		if (!run->killed) {
			kill_group(e, run->pid, SIGKILL);
			run->killed = true;
		}
	}
}

static void start_shutdown(struct engine *e, int sig)
{
	const char *what = sig == SIGINT ? "interrupt" : "terminated";
	e->signals++;
	if (e->o.daemon && e->signals == 1) {
		/* Drain: nothing new starts; what runs gets shutdown_grace. */
		e->draining = true;
		e->shutdown = true;
		e->drain_deadline_ns =
			mono_ns() + e->c->shutdown_grace_ms * 1000000LL;
		runlog_printf(e->o.runlog,
			      "%s: draining; %zu %s running, given %lld ms to "
			      "finish",
			      what, e->nruns,
			      plural(e->nruns, "attempt", "attempts"),
			      (long long)e->c->shutdown_grace_ms);
		return;
	}
	if (e->signals > 1) {
		runlog_printf(e->o.runlog, "%s again: stopping now", what);
		kill_all_now(e);
		return;
	}
	warning("%s: stopping: children get SIGTERM, their attempts are "
		"recorded as interrupted",
		what);
	e->shutdown = true;
	for (size_t i = 0; i < e->nruns; i++)
		if (!e->runs[i].kill_ns)
			signal_run(e, &e->runs[i], KILL_SHUTDOWN);
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
			signal_run(e, &e->runs[i], KILL_SHUTDOWN);
	e->draining = false; /* from here on like a plain shutdown */
}

/* SIGHUP: build the new configuration, then swap; a bad one is refused. */
static void reload(struct engine *e)
{
	runlog_reopen(e->o.runlog);
	if (!e->o.conf_path)
		return;
	struct conf *c = conf_load(e->o.conf_path);
	if (!c) {
		runlog_printf(e->o.runlog,
			      "reload of %s failed; the old configuration stays",
			      e->o.conf_path);
		error("reload of %s failed; the old configuration stays",
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
		build_env_base(e, eb);
	}
	runlog_printf(e->o.runlog, "configuration reloaded from %s",
		      e->o.conf_path);
}

static void release_reservations(struct engine *e)
{
	for (size_t i = 0; i < e->nbatches; i++)
		if (!e->batches[i]->closed)
			release_unspawned(e->batches[i]);
}

static void handle_signals(struct engine *e)
{
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(e->sigfd, &si, sizeof(si));
		if (n != (ssize_t)sizeof(si))
			break;
		switch (si.ssi_signo) {
		case SIGCHLD:
			break; /* reaped below */
		case SIGTERM:
		case SIGINT:
			start_shutdown(e, (int)si.ssi_signo);
			break;
		case SIGHUP:
			if (e->o.daemon)
				reload(e);
			break;
		default:
			break;
		}
	}
	reap(e);
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
				e->spool_dirty = true;
			} else if (ev->wd == e->control_wd) {
				control = true;
			} else if (ev->wd == e->events_wd && e->sh_ok) {
				shared_sync(&e->sh);
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	if (control)
		control_poll(e->h, owns_batch, control_cb, e);
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

/*
 * Liveness: the loop is about to sleep.  Every item that may start
 * (pending, or a retry that is due or waiting) must be where the scheduler
 * will find it (the file-order cursor, a queue, the retry heap, the
 * circuit-deferred list, a reservation), and if nothing runs the sleep must
 * have an end.  Anything else is a lost item and a hang: a bug, said once
 * and repaired by queueing the item again.  With RUNNER_STRICT set (the
 * tests set it) it aborts instead, so that a test sees it.  The full walk
 * is O(items): it is done when nothing runs, at most every 10 s (every
 * time under RUNNER_STRICT).
 */
static bool strict_checks(void)
{
	static int strict = -1;
	if (strict < 0)
		strict = getenv("RUNNER_STRICT") != NULL;
	return strict;
}

static void mark_queue(const struct u32q *q, unsigned char *seen)
{
	for (size_t i = 0; i < q->n; i++)
		seen[q->v[(q->head + i) % q->cap]] = 1;
}

static size_t audit_batch(struct ebatch *eb, bool repair, bool report)
{
	struct batch *b = &eb->b;
	unsigned char *seen = xcalloc(b->nitems + 1, 1);
	size_t lost = 0;
	for (size_t i = eb->cursor; i < b->nitems; i++)
		seen[i] = 1;
	mark_queue(&eb->requeue, seen);
	mark_queue(&eb->deferred, seen);
	mark_queue(&eb->reserved, seen);
	for (size_t i = eb->prep_head; i < eb->nprepared; i++)
		seen[eb->prepared[i].idx] = 1;
	for (size_t i = 0; i < eb->retry.n; i++) {
		const struct due *d = &eb->retry.v[i];
		if (b->items[d->idx].next_retry_at == d->at)
			seen[d->idx] = 1;
	}
	for (size_t i = 0; i < b->nitems; i++) {
		int st = b->items[i].state;
		if (seen[i] || (st != ST_PENDING && st != ST_RETRY_WAIT &&
				st != ST_STARTING))
			continue;
		if (!lost && report)
			error("BUG: batch %s: item %s is %s but nothing will "
			      "start it; queued again",
			      eb->id, b->items[i].symbol, state_name(st));
		lost++;
		if (strict_checks() && report)
			BUG("lost item %s of batch %s", b->items[i].symbol, eb->id);
		if (!repair)
			continue;
		if (st == ST_RETRY_WAIT)
			heap_push(&eb->retry, b->items[i].next_retry_at,
				  (uint32_t)i);
		else if (st == ST_PENDING)
			q_push(&eb->requeue, (uint32_t)i);
		else
			q_push(&eb->reserved, (uint32_t)i);
	}
	free(seen);
	return lost;
}

static void audit_liveness(struct engine *e, int64_t timeout)
{
	if (e->nruns || e->shutdown || e->io_failed || e->no_dispatch)
		return;
	int64_t mono = mono_ns();
	if (!strict_checks() && !e->o.ops && mono < e->audit_next_ns &&
	    timeout >= 0)
		return;
	e->audit_next_ns = mono + 10000000000LL;
	size_t waiting = 0;
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		e->liveness_bugs += audit_batch(eb, true, !e->o.ops);
		waiting += eb->b.count[ST_PENDING] + eb->b.count[ST_RETRY_WAIT] +
			   eb->b.count[ST_STARTING];
	}
	if (waiting && timeout < 0) {
		e->liveness_bugs++;
		if (strict_checks())
			BUG("%zu items wait, nothing runs, and no wake-up is set",
			    waiting);
		error("BUG: %zu items wait, nothing runs, and no wake-up is set; "
		      "looking again in a second",
		      waiting);
		e->wake_fix_ns = mono + 1000000000LL;
	}
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

/* ---- chores ---- */

static bool daemon_up(struct engine *e)
{
	return e->o.daemon && !e->shutdown;
}

/* Metrics and retention (a child process) are a real daemon's. */
static bool real_daemon_up(struct engine *e)
{
	return daemon_up(e) && !e->o.ops;
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
	settle_groups(e);
	e->spool_dirty = true;
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
	{ "metrics", real_daemon_up, chore_metrics },
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

/* ---- the loop, in phases ---- */

/* Children that ended: freed slots first when what exited succeeded (its
 * accounting can wait); a failure is accounted first, so that a forming
 * failure group stops the next spawn. */
static void phase_exits(struct engine *e)
{
	if (e->o.ops)
		reap(e); /* no SIGCHLD in the simulator: look every turn */
	if (exits_failed(e)) {
		finish_exited(e);
		react_groups(e);
		spawn_ready(e);
	} else {
		spawn_ready(e);
		finish_exited(e);
	}
}

/* Groups and circuits: what the home's shared state asks of our batches. */
static void phase_circuits(struct engine *e)
{
	if (e->o.ops && e->sh_ok)
		shared_sync(&e->sh); /* the simulator has no inotify */
	react_groups(e);
	try_trials(e);
	check_trials(e);
	undefer(e);
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
			if (commit(e, eb, due) == 0 && due)
				report_durable(e, eb);
		}
		flush_meta(e, eb, false);
	}
}

/* Whether the loop is over. */
static bool loop_over(struct engine *e)
{
	if (e->io_failed)
		return true;
	if (e->shutdown && !e->nruns) {
		release_reservations(e);
		return true;
	}
	check_done(e);
	if (e->o.daemon) {
		compact_batches(e);
		return e->o.once && !e->nruns && only_paused_left(e) &&
		       spool_empty(e);
	}
	return !e->nruns && (all_closed(e) || e->no_dispatch);
}

void engine_begin(struct engine *e)
{
	control_poll(e->h, owns_batch, control_cb, e);
	if (!e->no_dispatch)
		settle_groups(e);
	if (e->o.daemon) {
		e->spool_dirty = true;
		metrics_init(&e->metrics, now_ms());
		for (size_t i = 0; i < CHORES; i++)
			e->chore_next_ns[i] = mono_ns();
		/* taken at start already (cmd_daemon) */
		e->chore_next_ns[0] = every(ORPHAN_CHECK_MS);
	}
}

bool engine_turn(struct engine *e)
{
	e->kick = false;
	phase_exits(e);
	check_timers(e);
	check_drain(e);
	phase_circuits(e);
	alerts_run_hooks(e->alerts, e->pid, &e->child_mask);
	alerts_check(e->alerts);
	run_chores(e);
	if (e->o.daemon && !e->shutdown && e->spool_dirty) {
		e->spool_dirty = false;
		engine_claim_spool(e);
	}
	dispatch(e);
	phase_write(e);
	if (loop_over(e))
		return false;
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
	int64_t timeout = next_wakeup_ms(e);
	if (e->slot_poll_ns && mono_ns() >= e->slot_poll_ns)
		e->slot_poll_ns = 0;
	audit_liveness(e, timeout > INT_MAX ? -1 : timeout);
	if (e->wake_fix_ns) {
		timeout = next_wakeup_ms(e);
		e->wake_fix_ns = 0;
	}
	return timeout > INT_MAX ? -1 : timeout;
}

int engine_end(struct engine *e)
{
	/* Leaving: every batch still open is written down as it stands. */
	if (e->io_failed) {
		for (size_t i = 0; i < e->nruns; i++)
			kill_group(e, e->runs[i].pid, SIGKILL);
	}
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		if (!e->io_failed)
			commit(e, eb, true);
		if (!e->io_failed)
			flush_meta(e, eb, true);
		close_batch(e, eb);
	}
	flush_stats(e);
	finish_hooks(e);
	if (e->o.daemon && !e->o.ops)
		write_metrics(e);
	progress_clear(&e->prog);
	print_overhead(e);
	if (e->io_failed)
		return EX_IOERR_;
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
	struct epoll_event evs[8];
	engine_begin(e);
	while (engine_turn(e)) {
		int64_t timeout = engine_wake_ms(e);
		int n = epoll_wait(e->epfd, evs, 8, (int)timeout);
		if (n < 0 && errno != EINTR) {
			error("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == e->sigfd)
				handle_signals(e);
			else if (evs[i].data.fd == e->infd)
				drain_inotify(e);
		}
	}
	return engine_end(e);
}

const struct batch *engine_batch(struct engine *e, const char *id)
{
	struct ebatch *eb = find_batch(e, id);
	return eb ? &eb->b : NULL;
}

void engine_batch_written(struct engine *e, const char *id, bool *written)
{
	struct ebatch *eb = find_batch(e, id);
	*written = eb && !eb->j.pending.len;
}

size_t engine_audit(struct engine *e)
{
	size_t lost = e->liveness_bugs;
	for (size_t i = 0; i < e->nbatches; i++)
		if (!e->batches[i]->closed)
			lost += audit_batch(e->batches[i], false, false);
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

	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &e->child_mask);
	sigdelset(&e->child_mask, SIGCHLD);
	sigdelset(&e->child_mask, SIGTERM);
	sigdelset(&e->child_mask, SIGINT);
	sigdelset(&e->child_mask, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	e->sigfd = signalfd(-1, &block, SFD_NONBLOCK | SFD_CLOEXEC);
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	/* The simulator has no inotify (and closing one costs milliseconds). */
	e->infd = o->ops ? -1 : inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (e->sigfd < 0 || e->epfd < 0)
		die(EX_INTERNAL, "signalfd/epoll: %s", strerror(errno));
	/* Grandchildren that escape their group come back to us to reap. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = e->sigfd };
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
		ev.data.fd = e->infd;
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
		ebatch_free(e->batches[i]);
	free(e->batches);
	/* Every configuration the engine loaded itself is its own. */
	if (e->sh_ok)
		shared_close(&e->sh);
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
