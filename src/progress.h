/*
 * progress: what `run`, `retry-failed` and `resume` show while they work.
 *
 * On a terminal (stdout is a tty, and neither --json, -q nor --no-progress)
 * a single line, redrawn at most 10 times a second:
 *     [45/100] 40 ok, 5 failed, 3 running, 0 paused, 12.5 items/s, ETA 4s
 * (throughput over what this process finished; ETA "paused" when all
 * that is left waits on paused items).
 * With --json, one object per line for each item that reaches a final
 * state (SPEC 3):
 *     {"event":"progress","batch_id":..,"completed":K,"total":N,
 *      "symbol":..,"state":..}
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
void progress_event(FILE *fp, const char *batch, size_t completed,
		    size_t total, const char *symbol, const char *state);

#endif
