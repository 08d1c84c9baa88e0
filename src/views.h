/*
 * views: what the engine writes of a batch for people and tools, always
 * after the records it shows are durable: the progress events and line
 * (views_report_durable, after a commit), batch.json and summary.json
 * (views_flush_meta: at most about once a second, or when the batch's
 * status changes, never more than 10% of the time), the batch's end
 * (views_check_done records FINAL when no item is open;
 * views_close_batch writes the last views, its summary, the batch_final
 * alert, and lets the batch go).
 */
#ifndef RUNNER_VIEWS_H
#define RUNNER_VIEWS_H

#include "engine_int.h"

void views_report_durable(struct engine *e, struct ebatch *eb);
void views_flush_meta(struct engine *e, struct ebatch *eb, bool force);
void views_close_batch(struct engine *e, struct ebatch *eb);
void views_check_done(struct engine *e);

#endif
