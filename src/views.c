#include "views.h"
#include "circuits.h"
#include "meta.h"
#include "runlog.h"
#include "sched.h"
#include "history.h"
#include "results.h"
#include "home.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Items made final since the last commit, now durable, one event each.
 * The batch's counts already include every item still in the queue, so
 * each event counts up from below them: several items of one commit get
 * successive counts, not the same one.
 */
void views_report_durable(struct engine *e, struct ebatch *eb)
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
		uint32_t idx = queue_pop(q);
		const struct item *it = &eb->b.items[idx];
		/* Sent back by retry-failed before it was reported. */
		if (!state_final(it->state))
			continue;
		done++;
		metrics_item_final(&e->metrics, eb->b.c.agent, it->state);
		if (e->o.json)
			progress_event(stdout, &eb->b, done, it);
		progress_note(&e->prog, it->state);
	}
	if (eb->log)
		fflush(eb->log);
}

void views_flush_meta(struct engine *e, struct ebatch *eb, bool force)
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
	if (engine_commit(e, eb, true) < 0)
		return;
	views_report_durable(e, eb);
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

void views_close_batch(struct engine *e, struct ebatch *eb)
{
	if (eb->closed)
		return;
	views_flush_meta(e, eb, true);
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
			circ_release_trial(e, &e->trials[i]);
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
		struct primary p;
		results_primary(&eb->b, NULL, &p);
		struct sb line = SB_INIT;
		results_primary_text(&eb->b, &line);
		if (p.matches || line.len)
			printf("  results     %lld %s%s; runner results %s\n",
			       p.matches, plural(p.matches, "match", "matches"),
			       line.len ? line.buf : "", eb->id);
		sb_release(&line);
		fflush(stdout);
	}
	if (st == BS_PAUSED && e->o.summary && !e->o.json && !e->o.daemon &&
	    verbosity >= 0) {
		/* What it waits for, and how to go on: one line per cause (a
		 * pause or cancel, which prints no summary, says its own). */
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
	/* A final batch's items join the per-symbol history. */
	if (eb->b.final && history_add_batch(e->h->state, &eb->b) < 0)
		warning("state/history: %s; the index is built again at its next use",
			strerror(errno));
	if (eb->items_fd >= 0)
		close(eb->items_fd);
	if (eb->tmp_fd >= 0) {
		/* Result files nobody will read: a grandchild's, written
		 * after its item ended, or a crashed runner's. */
		char **names = home_names(eb->tmp_fd, NULL);
		for (size_t i = 0; names && names[i]; i++)
			unlinkat(eb->tmp_fd, names[i], 0);
		words_free(names);
		close(eb->tmp_fd);
	}
	lanes_close(&eb->lanes);
	if (eb->lock_fd >= 0)
		close(eb->lock_fd);
	close(eb->dirfd);
	eb->items_fd = eb->tmp_fd = eb->lock_fd = eb->dirfd = -1;
	eb->closed = true;
}

void views_check_done(struct engine *e)
{
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed)
			continue;
		struct batch *b = &eb->b;
		if (!b->final && batch_open_items(b) == 0 && !eb->running) {
			struct rec r = { .type = R_FINAL, .time = now_ms(),
					 .status = (uint8_t)batch_final_status(b) };
			engine_record(eb, &r);
			eb->finalized = true;
			if (engine_commit(e, eb, true) < 0)
				continue;
			views_close_batch(e, eb);
		} else if (b->final && !eb->running && !batch_open_items(b) &&
			   engine_commit(e, eb, true) == 0) {
			views_close_batch(e, eb); /* final, and all of it on disk */
		} else if (!e->o.daemon && !b->final && !eb->running &&
			   !eb->reserved.n && !engine_prepared(eb) &&
			   b->count[ST_PAUSED] && !b->count[ST_PENDING] &&
			   !b->count[ST_RETRY_WAIT] && !b->count[ST_STARTING]) {
			views_close_batch(e, eb); /* waits only on paused items */
		}
	}
}
