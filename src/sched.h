/*
 * sched: what runs next.  Each batch keeps its items in queues: a cursor
 * over the file order, a requeue (retries that are due, resumed and
 * released items), a heap of retry times, and a deferred list (items whose
 * symbol's circuit is open).  sched_dispatch() reserves attempts a few
 * ahead of the free slots (one fdatasync covers many spawns), budgeted
 * across batches by priority, prepares their output files, and spawns
 * what the caps allow (sched_spawn_ready: the batch's concurrency, the
 * agent's max_concurrent and max_children, the last two across processes
 * through slots.h).  sched_release() gives back every reservation
 * (stopping).  sched_audit() is the liveness check run
 * before the loop sleeps: every item that may start is in a queue, and a
 * sleep with items waiting has an end.
 */
#ifndef RUNNER_SCHED_H
#define RUNNER_SCHED_H

#include "engine_int.h"

int sched_agent_running(const struct engine *e, const struct agent_conf *a);
void sched_env_base(struct engine *e, struct ebatch *eb);
void sched_release(struct ebatch *eb);
void sched_undefer(struct engine *e);
void sched_spawn_ready(struct engine *e);
void sched_dispatch(struct engine *e);
/* Items that may start but are in no queue: their count, repaired
 * (queued again) with repair, told with report (a BUG line, an abort
 * under RUNNER_STRICT); the first one described into what. */
size_t sched_audit_batch(struct ebatch *eb, bool repair, bool report,
			 char *what, size_t nwhat);
void sched_audit(struct engine *e, int64_t timeout);;

#endif
