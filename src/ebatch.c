/*
 * ebatch: the engine's few primitives every part uses (declared in
 * engine_int.h): the world its children live in (real, or the
 * simulator's: engine_ops), a held batch found by id, and the one way a
 * batch changes (engine_record: journal, apply, log) and is made durable
 * (engine_commit: a full disk stalls dispatching; a failed fsync stops the
 * runner, never retried).
 */
#include "engine_int.h"
#include "remote.h"
#include "blog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

pid_t engine_spawn_child(struct engine *e, const struct spawn *s,
			 int *exec_errno)
{
	if (e->o.ops)
		return e->o.ops->spawn(e->o.ops->ctx, s, exec_errno);
	return exec_spawn(s, e->pid, exec_errno);
}

int engine_kill_group(struct engine *e, pid_t pgid, int sig)
{
	if (e->o.ops)
		return e->o.ops->kill_group(e->o.ops->ctx, pgid, sig);
	return exec_kill_group(pgid, sig);
}

int engine_kill_env(struct engine *e, const char *const *entries, size_t n)
{
	if (e->o.ops)
		return e->o.ops->kill_env(e->o.ops->ctx, entries, n);
	return exec_kill_env(entries, n);
}

struct sweep {
	struct engine *e;
	bool hooks_too;
};

/* Ours to keep: an item's child, a hook, the retention child, and an
 * orphan whose environment names an item still running (a descendant may
 * live as long as its item).  An orphan of an item that ended, of a hook,
 * or that left its item's environment, is not. */
static bool keep_child(pid_t pid, void *arg)
{
	const struct sweep *s = arg;
	struct engine *e = s->e;
	if (pid == e->retention_pid || remote_is_helper(pid))
		return true;
	if (!s->hooks_too && alerts_owns(e->alerts, pid))
		return true;
	for (size_t i = 0; i < e->nruns; i++)
		if (e->runs[i].pid == pid)
			return true;
	for (size_t i = 0; i < e->nruns; i++) {
		const struct run *r = &e->runs[i];
		char attempt[32];
		char *who[3] = {
			xasprintf("RUNNER_BATCH_ID=%s", r->eb->id),
			xasprintf("RUNNER_SYMBOL=%s",
				  r->eb->b.items[r->item].symbol),
			attempt,
		};
		snprintf(attempt, sizeof(attempt), "RUNNER_ATTEMPT=%u",
			 r->attempt);
		bool mine = exec_env_has(pid, (const char *const *)who, 3);
		free(who[0]);
		free(who[1]);
		if (mine)
			return true;
	}
	return false;
}

int engine_sweep(struct engine *e, bool hooks_too)
{
	struct sweep s = { e, hooks_too };
	if (e->o.ops)
		return 0;
	return exec_kill_orphans(keep_child, &s);
}

struct ebatch *engine_find(struct engine *e, const char *id)
{
	for (size_t i = 0; i < e->nbatches; i++)
		if (!e->batches[i]->closed && !strcmp(e->batches[i]->id, id))
			return e->batches[i];
	return NULL;
}

void engine_log_rec(struct ebatch *eb, const struct rec *r)
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
void engine_record(struct ebatch *eb, const struct rec *r)
{
	batch_record(&eb->b, &eb->j, r);
	engine_log_rec(eb, r);
	eb->meta_dirty = true;
}

static void engine_io_fail(struct engine *e, struct ebatch *eb, const char *what)
{
	if (!e->io_failed)
		error("batches/%s/journal: %s: %s; stopping (run `runner run` "
		      "to recover)",
		      eb ? eb->id : "?", what, strerror(errno));
	e->io_failed = true;
	e->shutdown = true;
}

/* Write a batch's pending records; a full disk stalls dispatching. */
int engine_commit(struct engine *e, struct ebatch *eb, bool sync)
{
	if (e->stalled && mono_ns() < e->stall_until_ns) {
		errno = ENOSPC;
		return -1;
	}
	int rc = sync ? journal_sync(&eb->j) : journal_write(&eb->j);
	if (rc == 0)
		return 0;
	if (eb->j.failed) {
		engine_io_fail(e, eb, "fdatasync failed");
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

size_t engine_prepared(const struct ebatch *eb)
{
	return eb->nprepared - eb->prep_head;
}

/* Forget prepared attempts whose items are no longer starting (cancel,
 * pause), and their reservations: a withdrawn one must not count as a
 * reservation ahead, or the batch reserves nothing more (and, with
 * nothing running, nothing wakes it). */
void engine_withdraw(struct ebatch *eb)
{
	struct u32q live = { 0 };
	while (eb->reserved.n) {
		uint32_t idx = queue_pop(&eb->reserved);
		if (eb->b.items[idx].state == ST_STARTING)
			queue_push(&live, idx);
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
		engine_prep_close(p);
	}
	eb->nprepared = keep;
}

/* Close the pipes of an attempt that never ran. */
void engine_prep_close(struct prep *p)
{
	for (int s = 0; s < 2; s++) {
		if (p->rd[s] >= 0)
			close(p->rd[s]);
		if (p->wr[s] >= 0)
			close(p->wr[s]);
		p->rd[s] = p->wr[s] = -1;
	}
}
