/*
 * progress: what `run`, `retry-failed` and `resume` show while they work.
 *
 * On a terminal (stderr is a tty, and neither --json, -q nor
 * --no-progress) a single line on stderr, redrawn at most 10 times a
 * second, never wider than the terminal:
 *     [#######        ] 45% 45/100 ok 40 failed 5 running 3 ETA 1m05s
 * ("paused N" when some are; the ETA from the throughput of what this
 * process finished, "paused" when all that is left waits on paused
 * items; the bar only when 10 columns are left for it).
 * With --json, one object per line for each item that reaches a final
 * state, once that state is durable:
 *     {"event":"progress","batch_id":..,"completed":K,"total":N,
 *      "symbol":..,"state":..,"time":..,"attempt":..,"outcome":..,
 *      "category":..}
 * where K counts this item (the caller passes 1, 2, 3, ... for a batch's
 * items in the order it reports them) and attempt, outcome and category
 * are those of the attempt that decided the item (null when none ran).
 * And one object when the runner lets go of a batch (final, or waiting
 * only on paused items, or stopped by a signal):
 *     {"event":"batch","batch_id":..,"status":..,"total":N,
 *      "succeeded":..,"failed":..,"cancelled":..,"paused":..,"time":..}
 * with, for a paused batch, "groups" (the failure groups its paused
 * items wait on) and "resume" (the commands that go on).
 *
 * Counts are fed by the engine: progress_add() when a batch is taken (its
 * items and those already final), progress_note() per item made final,
 * progress_requeue() when retry-failed sends failed items back.
 */
#ifndef RUNNER_PROGRESS_H
#define RUNNER_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct batch;
struct item;

struct progress {
	bool enabled;
	bool drawn;
	size_t total, ok, failed, done_at_start;
	int64_t start_ns, last_draw_ns;
};

void progress_init(struct progress *p, bool want);
void progress_add(struct progress *p, size_t total, size_t ok, size_t failed);
void progress_note(struct progress *p, int state);
void progress_requeue(struct progress *p, size_t n);
void progress_draw(struct progress *p, size_t running, size_t paused,
		   bool force);
bool progress_due(const struct progress *p);	/* a redraw may happen now */
void progress_clear(struct progress *p);
bool progress_active(const struct progress *p);
int64_t progress_next_ns(const struct progress *p);
void progress_event(FILE *fp, const struct batch *b, size_t completed,
		    const struct item *it);
void progress_batch_event(FILE *fp, const struct batch *b, int64_t now);

#endif
