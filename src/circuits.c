#include "circuits.h"
#include "sched.h"
#include "job.h"
#include "journal.h"
#include "meta.h"
#include "runlog.h"

#include <stdlib.h>
#include <string.h>

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
struct trial *circ_find_trial(struct engine *e, const struct ebatch *eb,
			      uint32_t idx, bool group)
{
	for (size_t i = 0; i < e->ntrials; i++)
		if (e->trials[i].eb == eb && e->trials[i].idx == idx &&
		    (e->trials[i].group[0] != '\0') == group)
			return &e->trials[i];
	return NULL;
}

void circ_add_trial(struct engine *e, const char *group, struct ebatch *eb,
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

void circ_drop_trial(struct engine *e, struct trial *t)
{
	*t = e->trials[--e->ntrials];
}

/* The trial will not be used: give it back at once (its lease would free
 * it too, later). */
void circ_release_trial(struct engine *e, struct trial *t)
{
	if (e->sh_ok) {
		if (t->group[0])
			shared_trial_release(&e->sh, t->group);
		else
			shared_symbol_trial_release(
				&e->sh, t->eb->b.items[t->idx].symbol);
	}
	circ_drop_trial(e, t);
}

/*
 * Every loop turn: a trial whose item left the way to its attempt (paused,
 * cancelled, its batch closed) is given back; the others have their
 * leases renewed at half-time, so that no other runner takes them while
 * they wait for a slot or run.
 */
void circ_check_trials(struct engine *e)
{
	int64_t now = now_ms();
	for (size_t i = 0; i < e->ntrials;) {
		struct trial *t = &e->trials[i];
		const struct item *it = t->eb->closed ? NULL
						      : &t->eb->b.items[t->idx];
		if (!it || it->state == ST_PAUSED || state_final(it->state)) {
			circ_release_trial(e, t);
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

void circ_alert(struct engine *e, const char *event,
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
void circ_group_alert(struct engine *e, const struct sh_group *g,
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
void circ_member_alert(struct engine *e, const struct sh_group *g,
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
void circ_pause_items(struct engine *e, struct ebatch *eb,
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
	engine_record(eb, &r);
	progress_requeue(&e->prog, reported);
	/* Prepared attempts of paused items are withdrawn with their files. */
	engine_withdraw(eb);
	if (group && e->sh_ok) {
		const char **syms = xmalloc(n * sizeof(char *));
		for (uint32_t i = 0; i < n; i++)
			syms[i] = eb->b.items[idx[i]].symbol;
		shared_paused(&e->sh, group, eb->id, syms, n, r.time);
		free(syms);
	}
	engine_commit(e, eb, true);
	eb->next_flush_ns = 0; /* show it now */
}

uint32_t *circ_pausable(const struct ebatch *eb, uint32_t *n)
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
void circ_resume_items(struct engine *e, struct ebatch *eb,
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
	engine_record(eb, &r);
	for (uint32_t i = 0; i < n; i++)
		queue_push(&eb->requeue, idx[i]);
	engine_commit(e, eb, true);
	eb->next_flush_ns = 0;
}

/* An item is final: so is it in every group it is a member of. */
void circ_note_final(struct engine *e, struct ebatch *eb, uint32_t idx)
{
	const struct item *it = &eb->b.items[idx];
	char resolved[4][GROUP_ID_MAX];
	/* No group known: nothing to tell (a group another runner formed
	 * meanwhile is settled by circ_react once folded). */
	if (!e->sh_ok || !e->sh.ngroups)
		return;
	int n = shared_final(&e->sh, eb->id, it->symbol, state_name(it->state),
			     now_ms(), resolved, 4);
	for (int i = 0; i < n && i < 4; i++) {
		const struct sh_group *g = shared_group(&e->sh, resolved[i]);
		if (g)
			circ_group_alert(e, g, "resolved");
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
	uint32_t *idx = circ_pausable(eb, &n);
	idx = xrealloc(idx, (n + g->nm + 1) * sizeof(uint32_t));
	add_failed_members(eb, g, idx, &n);
	circ_pause_items(e, eb, idx, n, g->id, NULL);
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
	circ_resume_items(e, eb, g->id, idx, n, g->order, NULL);
	if (n)
		runlog_printf(e->o.runlog,
			      "batch %s: %u %s of group %s resumed (%s order)",
			      eb->id, n, plural(n, "item", "items"), g->id,
			      g->order);
	free(idx);
}

/* Bring our batches in line with the home's groups. */
void circ_react(struct engine *e)
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
					circ_note_final(e, eb, (uint32_t)(it - eb->b.items));
			}
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
 * circ_react; this looks at the others, at start and with the daemon's
 * periodic look for orphans.
 */
void circ_settle(struct engine *e)
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
			if (m->final || engine_find(e, m->batch))
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
				circ_group_alert(e, g, "resolved");
		}
	}
	batch_release(&b);
	free(cur);
	sb_release(&todo);
}

/* A symbol's circuit allows an attempt now (closed, or its trial free). */
static bool circ_symbol_allows(struct engine *e, const char *symbol, int64_t now)
{
	const struct sh_symbol *sym = shared_symbol(&e->sh, symbol);
	return !sym || breaker_allows(&sym->brk, now);
}

/* A half-open source circuit lets one paused member try. */
void circ_try_trials(struct engine *e)
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
			struct ebatch *eb = engine_find(e, g->m[k].batch);
			struct item *it = eb ? batch_item(&eb->b, g->m[k].symbol)
					     : NULL;
			if (!it || it->state != ST_PAUSED || !it->pause_group ||
			    strcmp(it->pause_group, g->id))
				continue;
			/* The source is what is tried: not a symbol whose own
			 * circuit is open. */
			if (!circ_symbol_allows(e, it->symbol, now))
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
		circ_add_trial(e, g->id, best_eb, best);
		runlog_printf(e->o.runlog, "group %s half-open: trial with %s of %s",
			      g->id, best_eb->b.items[best].symbol, best_eb->id);
		char why[GROUP_ID_MAX + 40];
		snprintf(why, sizeof(why), "half-open trial of failure group %s",
			 g->id);
		circ_resume_items(e, best_eb, NULL, &best, 1, "progress", why);
	}
}

/* A symbol trial a user forced (retry-failed): the first item takes it,
 * while the circuit is still half-open with its trial out (a failure of
 * another attempt of the symbol may have opened it again: then the forced
 * trial is void). */
bool circ_take_symbol_trial(struct engine *e, const char *symbol)
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

void circ_force_symbol_trial(struct engine *e, const char *symbol)
{
	if (!e->sh_ok || shared_symbol_force_trial(&e->sh, symbol) != 1)
		return;
	GROW(e->sym_trials, e->capsym_trials, e->nsym_trials + 1);
	e->sym_trials[e->nsym_trials++] = xstrdup(symbol);
}

/* When the engine must look again at circuits, groups and trials, 0:
 * never.  Only groups with paused members here: a group whose members
 * another process holds is that process's to try. */
int64_t circ_next_ms(struct engine *e)
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
			       engine_find(e, g->m[k].batch);
		if (!ours)
			continue;
		int64_t t = breaker_next_ms(&g->brk, now);
		if (!t)
			t = now + 1000; /* allowed: circ_try_trials takes it, or
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

/*
 * Before an attempt's end is recorded: the trials it held.  A group's
 * trial that failed for the group's cause opens the group again, longer;
 * one that failed for a reason of its own said nothing about the source:
 * the trial goes to another member.  (The held trials are remembered for
 * circ_after_attempt in the engine's last_trial fields.)
 */
void circ_before_record(struct engine *e, struct ebatch *eb, uint32_t idx,
			const struct rec *r)
{
	struct trial *t = circ_find_trial(e, eb, idx, true);
	e->last_trial_group[0] = '\0';
	e->last_sym_trial = false;
	if (t) {
		snprintf(e->last_trial_group, sizeof(e->last_trial_group), "%s",
			 t->group);
		circ_drop_trial(e, t);
	}
	if ((t = circ_find_trial(e, eb, idx, false))) {
		e->last_sym_trial = true;
		circ_drop_trial(e, t);
	}
	const char *tg = e->last_trial_group;
	if (tg[0] && e->sh_ok && r->outcome == OUT_FAILED) {
		if (r->group && !strcmp(r->group, tg))
			shared_trial_result(&e->sh, tg, false, r->time);
		else
			shared_trial_release(&e->sh, tg);
	}
}

/* After an attempt's end is recorded: what the rest of the home needs to
 * know (circuits, groups, trials), and the people (alerts). */
void circ_after_attempt(struct engine *e, struct ebatch *eb, uint32_t idx,
			const struct rec *r, const struct sh_failure_result *fr,
			const char *message)
{
	struct item *it = &eb->b.items[idx];
	const char *tg = e->last_trial_group;
	bool grouped = r->group != NULL;
	if (r->outcome == OUT_SUCCEEDED && e->sh_ok) {
		if (shared_success(&e->sh, it->symbol, r->time) == 1)
			runlog_printf(e->o.runlog, "symbol %s: circuit closed",
				      it->symbol);
		if (tg[0])
			shared_trial_result(&e->sh, tg, true, r->time);
	}
	if (tg[0] && e->sh_ok &&
	    (r->outcome == OUT_CANCELLED || r->outcome == OUT_INTERRUPTED))
		shared_trial_release(&e->sh, tg);
	/* The symbol's trial: a success closed its circuit and a failure of
	 * its own opened it again; anything else gives it back. */
	if (e->last_sym_trial && e->sh_ok && r->outcome != OUT_SUCCEEDED &&
	    !(r->outcome == OUT_FAILED && !grouped))
		shared_symbol_trial_release(&e->sh, it->symbol);
	if (fr->symbol_opened) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s processing failed %u %s",
			 it->symbol, fr->streak,
			 plural(fr->streak, "time", "times"));
		circ_alert(e, "symbol_circuit_open", eb, it, NULL, msg);
		runlog_log(e->o.runlog, RUNLOG_WARNING,
			   "symbol %s: circuit open (%s)", it->symbol, msg);
	}
	if (r->next_state == ST_PAUSED && grouped && e->sh_ok) {
		const char *sym = it->symbol;
		shared_paused(&e->sh, r->group, eb->id, &sym, 1, r->time);
	}
	const struct sh_group *g = grouped && e->sh_ok
		? shared_group(&e->sh, r->group) : NULL;
	if (fr->formed && g) {
		circ_group_alert(e, g, "formed");
		/* One alert per member not told of yet, with the group. */
		for (size_t k = 0; k < fr->nunreported; k++)
			circ_member_alert(e, g, fr->unreported[k].batch,
					  fr->unreported[k].symbol);
	} else if (g) {
		if (fr->reopened)
			circ_group_alert(e, g, "reopened");
		else if (fr->grown)
			circ_group_alert(e, g, "grew");
		if (fr->new_member)
			circ_member_alert(e, g, eb->id, it->symbol);
	} else if (r->next_state == ST_FAILED) {
		circ_alert(e, "item_failed", eb, it, NULL, message);
	}
	if (state_final(r->next_state))
		circ_note_final(e, eb, idx);
}
