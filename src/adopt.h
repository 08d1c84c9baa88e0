/*
 * adopt: taking batches into the engine.  engine_take() locks a batch,
 * replays its journal and, when its runner died, stops what its children
 * left and records their attempts as interrupted (or, when it was left
 * waiting on paused items, takes it up); engine_take_orphans() takes every
 * unfinished batch nobody holds; engine_claim() and engine_claim_spool()
 * claim job files (spool.h) and take their batches.
 */
#ifndef RUNNER_ADOPT_H
#define RUNNER_ADOPT_H

#include "engine_int.h"

void adopt_free_batch(struct ebatch *eb);
int engine_take(struct engine *e, const char *id, int lock_fd, int flags);
int engine_take_orphans(struct engine *e);
int engine_claim_spool(struct engine *e);
bool adopt_spool_empty(struct engine *e);
void adopt_compact(struct engine *e);;

#endif
