#include "sched.h"
#include "circuits.h"
#include "runs.h"
#include "runlog.h"
#include "remote.h"
#include "slots.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int64_t sched_cap(const struct engine *e, const struct ebatch *eb)
{
	int64_t cap = e->c->max_children;
	if (eb->agent && eb->agent->max_concurrent < cap)
		cap = eb->agent->max_concurrent;
	if (eb->b.c.concurrency > 0 && eb->b.c.concurrency < cap)
		cap = eb->b.c.concurrency;
	return cap;
}

int sched_agent_running(const struct engine *e, const struct agent_conf *a)
{
	int n = 0;
	for (size_t i = 0; i < e->nruns; i++)
		if (e->runs[i].eb->agent == a)
			n++;
	return n;
}

static void env_add(struct sb *env, const char *k, const char *v)
{
	sb_addf(env, "%s=%s", k, v ? v : "");
	sb_addc(env, '\0');
}

void sched_env_base(struct engine *e, struct ebatch *eb)
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
	/* A launcher run inside an allocation (salloc, sbatch) finds it in
	 * these, and a test Slurm its configuration. */
	for (char **v = environ; eb->agent && eb->agent->nlauncher && *v; v++)
		if (!strncmp(*v, "SLURM_", 6)) {
			sb_adds(env, *v);
			sb_addc(env, '\0');
		}
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

/* launcher... [wrapper exec-remote STATUS] command... (remote.h) */
static size_t build_argv(const struct agent_conf *a, const char *symbol,
			 const char *status, struct sb *store, char ***argv,
			 size_t *cap)
{
	bool placed = false;
	size_t n = 0;
	struct sb offs = SB_INIT;
	const char *wrap[] = { a->wrapper, REMOTE_COMMAND, status };
	sb_reset(store);
	for (size_t pass = 0; pass < 2; pass++) {
		char **words = pass ? a->command : a->launcher;
		size_t nw = pass ? a->ncommand : a->nlauncher;
		for (size_t i = 0; pass && a->wrapper && i < 3; i++) {
			size_t off = store->len;
			sb_adds(store, wrap[i]);
			sb_addc(store, '\0');
			sb_add(&offs, &off, sizeof(off));
			n++;
		}
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

static void sched_stall(struct engine *e, const char *what, int err)
{
	if (!e->stalled)
		warning("%s: %s; dispatching stops for a while", what,
			strerror(err));
	e->stalled = true;
	e->stall_until_ns = mono_ns() + STALL_RETRY_MS * 1000000LL;
}

/* Make the pipes of a reserved attempt: a descriptor is all a spawn needs
 * beyond the clone, and a pipe is what keeps a grandchild that outlives
 * its item out of the next item's output (lanes.h). */
static int make_pipes(struct prep *p)
{
	for (int s = 0; s < 2; s++) {
		int fds[2];
		if (pipe2(fds, O_CLOEXEC) < 0)
			return -1;
		p->rd[s] = fds[0];
		p->wr[s] = fds[1];
		if (fcntl(p->rd[s], F_SETFL, O_NONBLOCK) < 0)
			return -1;
	}
	return 0;
}

/* Give a reserved attempt back: it was never spawned. */
static void give_back(struct ebatch *eb, uint32_t idx)
{
	struct rec rel = { .type = R_RELEASE, .item = idx,
			   .attempt = eb->b.items[idx].nattempts };
	engine_record(eb, &rel);
	queue_push(&eb->requeue, idx);
}

/*
 * Ready a reserved attempt ahead of its spawn, while other children run:
 * the work stays off the path from one child's exit to the next child's
 * start.
 */
static int prepare_item(struct engine *e, struct ebatch *eb)
{
	int64_t t0 = mono_ns();
	uint32_t idx = queue_pop(&eb->reserved);
	struct item *it = &eb->b.items[idx];
	struct prep p = { idx, { -1, -1 }, { -1, -1 }, 0 };

	if (it->state != ST_STARTING)
		return 0; /* cancelled meanwhile */
	if (make_pipes(&p) < 0) {
		int saved = errno;
		engine_prep_close(&p);
		/* Not started: give the reservation back, wait a while. */
		give_back(eb, idx);
		char what[160];
		snprintf(what, sizeof(what), "pipes for batch %s", eb->id);
		sched_stall(e, what, saved);
		return -1;
	}
	if (eb->nprepared == eb->capprepared && eb->prep_head) {
		memmove(eb->prepared, eb->prepared + eb->prep_head,
			engine_prepared(eb) * sizeof(*eb->prepared));
		eb->nprepared -= eb->prep_head;
		eb->prep_head = 0;
	}
	GROW(eb->prepared, eb->capprepared, eb->nprepared + 1);
	p.prep_ns = mono_ns() - t0;
	eb->prepared[eb->nprepared++] = p;
	return 0;
}

/* Give back every reservation of eb that has not been spawned. */
void sched_release(struct ebatch *eb)
{
	for (size_t i = eb->prep_head; i < eb->nprepared; i++) {
		struct prep *p = &eb->prepared[i];
		struct item *it = &eb->b.items[p->idx];
		engine_prep_close(p);
		if (it->state != ST_STARTING)
			continue;
		give_back(eb, p->idx);
	}
	eb->prep_head = eb->nprepared = 0;
	while (eb->reserved.n) {
		uint32_t idx = queue_pop(&eb->reserved);
		struct item *it = &eb->b.items[idx];
		if (it->state != ST_STARTING)
			continue;
		struct rec r = { .type = R_RELEASE, .item = idx,
				 .attempt = it->nattempts };
		engine_record(eb, &r);
		queue_push(&eb->requeue, idx);
	}
}

/* A failure that time may mend (a full disk, an I/O error, no
 * descriptor left): dispatch waits and tries again, as for a journal
 * write.  Anything else (a file where a directory should be, a symbolic
 * link, no permission) is the item's or its batch's files': trying again
 * each second would stall the runner for ever. */
static bool passing(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EIO ||
	       err == EMFILE || err == ENFILE || err == ENOMEM ||
	       err == EAGAIN || err == EINTR;
}

/* A lane for the attempt, noted as started in S.spawned: 0, or -1 (the
 * attempt was given back, dispatch waits for the disk; or, for an error
 * time does not mend, the attempt failed). */
static int take_lane(struct engine *e, struct ebatch *eb, struct prep *p,
		     uint16_t *lane)
{
	struct item *it = &eb->b.items[p->idx];
	if (lanes_take(&eb->lanes, eb->dirfd, lane) == 0) {
		struct lane *ln = &eb->lanes.v[*lane];
		/* The end of the lane's last attempt reaches the journal
		 * before the next attempt's first byte reaches the lane. */
		if (ln->used && eb->j.pending.len)
			engine_commit(e, eb, false);
		if (lanes_note_spawn(&eb->lanes, *lane, p->idx,
				     it->nattempts) == 0)
			return 0;
		lanes_give(&eb->lanes, *lane, ln->end[0], ln->end[1]);
	}
	int saved = errno;
	engine_prep_close(p);
	char what[160];
	snprintf(what, sizeof(what), "batches/%s/output", eb->id);
	if (!passing(saved)) {
		char why[200];
		snprintf(why, sizeof(why), "%s: %s", what, strerror(saved));
		runs_start_failed(e, eb, p->idx, why);
		return -1;
	}
	give_back(eb, p->idx);
	sched_stall(e, what, saved);
	return -1;
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
	uint16_t lane;
	int saved;

	if (take_lane(e, eb, &p, &lane) < 0) {
		close(slot_fd);
		return;
	}
	struct lane *ln = &eb->lanes.v[lane];
	sb_reset(&env_all);
	sb_add(&env_all, eb->env_base.buf, eb->env_base.len);
	env_add(&env_all, "RUNNER_SYMBOL", it->symbol);
	sb_addf(&env_all, "RUNNER_ATTEMPT=%u", attempt);
	sb_addc(&env_all, '\0');
	sb_addf(&env_all, "RUNNER_RESULT=%s/batches/%s/tmp/%s.%u.json",
		e->home_abs, eb->id, it->symbol, attempt);
	sb_addc(&env_all, '\0');
	if (eb->items_fd >= 0) {
		/* A batch from before output lanes keeps its checkpoints. */
		mkdirat(eb->items_fd, it->symbol, 0755);
		sb_addf(&env_all,
			"RUNNER_CHECKPOINT=%s/batches/%s/items/%s/checkpoint",
			e->home_abs, eb->id, it->symbol);
	} else {
		sb_addf(&env_all, "RUNNER_CHECKPOINT=%s/batches/%s/checkpoints/%s",
			e->home_abs, eb->id, it->symbol);
	}
	sb_addc(&env_all, '\0');
	if (eb->agent->wrapper) {
		/* The job srun makes is known by this name before its task
		 * can say its id (remote.h). */
		char job[512];
		remote_job_name(job, sizeof(job), e->home_abs, eb->id,
				it->symbol, attempt);
		env_add(&env_all, "SLURM_JOB_NAME", job);
	}
	env_vector(&env_all, &envp, &envcap);
	char *status = NULL;
	if (eb->agent->wrapper)
		status = xasprintf("%s/batches/%s/tmp/%s.%u.task", e->home_abs,
				   eb->id, it->symbol, attempt);
	build_argv(eb->agent, it->symbol, status, &argv_store, &argv,
		   &argvcap);
	free(status);

	struct spawn s = {
		.path = eb->agent->exec_path,
		.argv = argv,
		.envp = envp,
		.cwd_fd = e->h->fd,
		.stdin_fd = e->devnull,
		.stdout_fd = p.wr[STREAM_OUT],
		.stderr_fd = p.wr[STREAM_ERR],
		.keep_fd = slot_fd,
		.limit_as = eb->agent->memory_limit,
		.limit_fsize = eb->agent->output_limit,
		.limit_cpu_ms = eb->agent->cpu_limit_ms,
		.child_mask = &e->child_mask,
	};
	int exec_errno = 0;
	int64_t start_ns = mono_ns();
	pid_t pid = engine_spawn_child(e, &s, &exec_errno);
	saved = errno;
	int64_t t1 = mono_ns();
	/* Only the child writes into its pipes: at its end (and its
	 * grandchildren's), we read end of file. */
	for (int k = 0; k < 2; k++) {
		close(p.wr[k]);
		p.wr[k] = -1;
	}

	struct rec r = { .type = R_SPAWNED, .item = idx, .attempt = attempt,
			 .time = now_ms(), .pid = pid > 0 ? pid : 0,
			 .session = eb->lanes.session, .lane = lane,
			 .out_off = ln->end[STREAM_OUT],
			 .err_off = ln->end[STREAM_ERR] };
	engine_record(eb, &r);
	if (pid < 0) {
		/* clone itself failed (no memory, no pids): a failed attempt */
		close(slot_fd);
		engine_prep_close(&p);
		lanes_give(&eb->lanes, lane, ln->end[0], ln->end[1]);
		runs_finish(e, eb, idx, attempt, W_EXITCODE(127, 0), NULL,
			    KILL_NONE, saved, 0, 0, NULL);
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
	run->lane = lane;
	/* Ours until the child is reaped: the slot is then released
	 * whatever its descendants still hold (slots.h). */
	run->slot_fd = slot_fd;
	run->budget = eb->agent->max_output;
	for (int k = 0; k < 2; k++) {
		run->cap[k] = (struct capture){ .rd = p.rd[k], .fd = ln->fd[k],
						.off = ln->end[k] };
		if (e->epfd >= 0) {
			struct epoll_event ev = {
				.events = EPOLLIN,
				.data.u64 = EV_PIPE | (uint32_t)pid };
			epoll_ctl(e->epfd, EPOLL_CTL_ADD, p.rd[k], &ev);
		}
	}
	if (eb->b.c.timeout_ms > 0)
		run->deadline_ns = deadline_ns(start_ns, eb->b.c.timeout_ms);
	eb->running++;
	symstats_start(&e->stats, it->symbol);
	if (it->failure_group && e->sh_ok)
		shared_started(&e->sh, eb->id, it->symbol);
	/* The child's own start (clone until exec) is not our overhead. */
	run->prep_ns = p.prep_ns + (start_ns - t0) + (mono_ns() - t1);
}

/* The next item of eb that may start now, or -1. */
static int64_t next_eligible(struct ebatch *eb, int64_t now)
{
	struct batch *b = &eb->b;
	while (eb->retry.n && eb->retry.v[0].at <= now) {
		struct due d = queue_heap_pop(&eb->retry);
		if (b->items[d.idx].state == ST_RETRY_WAIT &&
		    b->items[d.idx].next_retry_at == d.at)
			return d.idx;
	}
	while (eb->requeue.n) {
		uint32_t idx = queue_pop(&eb->requeue);
		const struct item *it = &b->items[idx];
		if (it->state == ST_PENDING)
			return idx;
		/* A due retry that waited for its circuit comes back here. */
		if (it->state == ST_RETRY_WAIT) {
			if (it->next_retry_at <= now)
				return idx;
			queue_heap_push(&eb->retry, it->next_retry_at, idx);
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
	int64_t cap = sched_cap(e, eb);
	int64_t ahead = (int64_t)(eb->reserved.n + engine_prepared(eb));
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
		if (g && !circ_find_trial(e, eb, (uint32_t)idx, true)) {
			/* The source's circuit is open: it waits with its group. */
			uint32_t one = (uint32_t)idx;
			circ_pause_items(e, eb, &one, 1, g->id, NULL);
			continue;
		}
		struct sh_symbol *sym = e->sh_ok ? shared_symbol(&e->sh, it->symbol)
						 : NULL;
		if (sym && sym->brk.state != CIRCUIT_CLOSED &&
		    !circ_find_trial(e, eb, (uint32_t)idx, false)) {
			if (circ_take_symbol_trial(e, it->symbol) ||
			    shared_symbol_trial(&e->sh, it->symbol, now) == 1) {
				sym = shared_symbol(&e->sh, it->symbol);
				if (sym && sym->brk.state != CIRCUIT_CLOSED)
					circ_add_trial(e, NULL, eb, (uint32_t)idx);
			} else {
				/* Its symbol's circuit is open: it waits for
				 * the half-open trial, which is due when the
				 * circuit's open period or the lease of a
				 * trial held elsewhere ends. */
				queue_push(&eb->deferred, (uint32_t)idx);
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
		engine_record(eb, &r);
		queue_push(&eb->reserved, (uint32_t)idx);
		ahead++;
		added = true;
	}
	if (added)
		engine_commit(e, eb, true);
}

/* Deferred items are looked at again when a circuit may allow them: its
 * open period or a trial's lease ended, or a circuit changed (a trial
 * here or in another runner closed it). */
void sched_undefer(struct engine *e)
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
			queue_push(&eb->requeue, queue_pop(&eb->deferred));
	}
}

static bool sched_off(struct engine *e)
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
	struct trial *t = circ_find_trial(e, eb, p->idx, false);
	if (t && sym->brk.state == CIRCUIT_HALF_OPEN && sym->brk.trial_taken)
		return false;
	/* A trial held, but the circuit opened again meanwhile (another
	 * attempt of the symbol failed): that trial is over. */
	if (t)
		circ_drop_trial(e, t);
	engine_prep_close(p);
	give_back(eb, p->idx);
	e->kick = true; /* it waits for its circuit from the next turn */
	return true;
}

/* Spawn prepared items, highest priority first, under every cap. */
void sched_spawn_ready(struct engine *e)
{
	const struct agent_conf *blocked[64];
	size_t nblocked = 0;
	if (sched_off(e))
		return;
	/* What another runner decided since our last look (a group formed,
	 * a circuit opened) is seen before anything starts: one fstat. */
	if (e->sh_ok && shared_refresh(&e->sh))
		circ_react(e);
	for (;;) {
		if ((int)e->nruns >= e->c->max_children || e->isolated)
			break;
		struct ebatch *pick = NULL;
		for (size_t i = 0; i < e->nbatches && !pick; i++) {
			struct ebatch *eb = e->batches[i];
			if (eb->closed || !engine_prepared(eb) || !eb->agent)
				continue;
			if (eb->b.c.concurrency > 0 &&
			    eb->running >= eb->b.c.concurrency)
				continue;
			if (sched_agent_running(e, eb->agent) >=
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
		/* A suspect (its attempts ended with the runner, attempt.h)
		 * runs alone, so that the next runner death while it runs is
		 * surely its own: nothing else starts until what runs has
		 * ended, nor while it runs. */
		bool suspect = pick->b.items[pick->prepared[pick->prep_head].idx]
				       .interruptions > 0;
		if (suspect && e->nruns)
			break;
		int why;
		int fd = slot_acquire(e->h->state, e->c->max_children,
				      pick->agent->name,
				      pick->agent->max_concurrent, &why);
		if (fd < 0) {
			if (errno != EAGAIN && passing(errno)) {
				sched_stall(e, "state/slots", errno);
				return;
			}
			if (errno != EAGAIN) {
				/* No attempt of this home can start. */
				engine_home_failed(e, "state/slots", errno);
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
		size_t before = e->nruns;
		spawn_item(e, pick, p, fd);
		if (suspect && e->nruns > before)
			e->isolated = e->runs[e->nruns - 1].pid;
	}
}

/* Reserve and prepare what the next free slots will take. */
void sched_dispatch(struct engine *e)
{
	int64_t now = now_ms();
	int64_t res_budget = reserve_budget(e);
	int64_t prep_budget = e->c->max_children;
	e->dispatch_ms = now;
	if (sched_off(e))
		return;
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed || !eb->agent)
			continue;
		if (res_budget > 0)
			reserve(e, eb, now, res_budget);
		if (e->stalled || e->io_failed)
			return;
		res_budget -= (int64_t)(eb->reserved.n + engine_prepared(eb));
		int64_t cap = sched_cap(e, eb);
		prep_budget -= (int64_t)engine_prepared(eb);
		while (eb->reserved.n && prep_budget > 0 &&
		       (int64_t)engine_prepared(eb) < cap) {
			if (prepare_item(e, eb) < 0)
				return;
			prep_budget--;
		}
	}
	sched_spawn_ready(e);
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

size_t sched_audit_batch(struct ebatch *eb, bool repair, bool report,
			 char *what, size_t nwhat)
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
		if (!lost && what && !what[0])
			snprintf(what, nwhat, "%s/%s is %s but nothing would "
					      "start it",
				 eb->id, b->items[i].symbol, state_name(st));
		lost++;
		if (strict_checks() && report)
			BUG("lost item %s of batch %s", b->items[i].symbol, eb->id);
		if (!repair)
			continue;
		if (st == ST_RETRY_WAIT)
			queue_heap_push(&eb->retry, b->items[i].next_retry_at,
				  (uint32_t)i);
		else if (st == ST_PENDING)
			queue_push(&eb->requeue, (uint32_t)i);
		else
			queue_push(&eb->reserved, (uint32_t)i);
	}
	free(seen);
	return lost;
}

void sched_audit(struct engine *e, int64_t timeout)
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
		e->liveness_bugs += sched_audit_batch(eb, true, !e->o.ops,
						      e->liveness_what,
						      sizeof(e->liveness_what));
		waiting += eb->b.count[ST_PENDING] + eb->b.count[ST_RETRY_WAIT] +
			   eb->b.count[ST_STARTING];
	}
	if (waiting && timeout < 0) {
		e->liveness_bugs++;
		if (!e->liveness_what[0])
			snprintf(e->liveness_what, sizeof(e->liveness_what),
				 "%zu items wait, nothing runs, and no wake-up "
				 "is set", waiting);
		if (strict_checks() && !e->o.ops)
			BUG("%zu items wait, nothing runs, and no wake-up is set",
			    waiting);
		if (!e->o.ops)
			error("BUG: %zu items wait, nothing runs, and no wake-up "
			      "is set; looking again in a second",
			      waiting);
		e->wake_fix_ns = mono + 1000000000LL;
	}
}
