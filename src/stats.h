/*
 * stats: aggregates across the batches of a home (`runner stats`).
 *
 * Reads each batch's summary.json (small, written beside batch.json) and
 * never a full batch.json or journal unless the summary is missing, which
 * the caller's loader handles.  Every figure is over the batches created
 * at or after `since`.  Throughput is the final items of final batches
 * over the sum of their busy_seconds (a summary.json without it, written
 * before busy time was kept, gives its duration_seconds); the duration
 * percentiles are of their wall time, duration_seconds.
 *
 *   struct stats st;
 *   stats_init(&st, since);
 *   for each batch: stats_add(&st, summary_doc);
 *   cJSON *doc = stats_finish(&st);     the `stats --json` document
 *   stats_print(stdout, doc);           the same for people
 *   stats_release(&st);
 */
#ifndef RUNNER_STATS_H
#define RUNNER_STATS_H

#include "util.h"

#include <stdio.h>

struct cJSON;
struct stats_agent;
struct stats_symbol;

struct stats {
	int64_t since;
	size_t nbatches;
	size_t by_status[8];
	long long items[7];	/* total succeeded failed cancelled pending running paused */
	long long attempts;
	long long by_cat[8];
	/* Seconds are summed as whole milliseconds, as summary.json keeps
	 * them, so the sums do not depend on the order batches are read. */
	long long final_items, busy_ms;
	double *durations;
	size_t ndur, durcap;
	long long cpu_user_ms, cpu_system_ms;
	struct stats_agent *agents;
	size_t nagents, agentcap;
	struct stats_symbol *syms;
	size_t nsyms, symcap;
	struct strmap symidx;
	struct strmap ids;	/* batches counted: an id counts once */
	char **idkeys;
	size_t nids, idcap;
	size_t narchived;	/* of nbatches, counted from batches/archive/ */
	long long unlisted;	/* failed items beyond a summary's list */
};

void stats_init(struct stats *st, int64_t since);
/* Count one batch from its summary document; false if before `since` or
 * already counted (a batch and its archive both present after a crash). */
bool stats_add(struct stats *st, const struct cJSON *summary, bool archived);
struct cJSON *stats_finish(struct stats *st);
void stats_print(FILE *fp, const struct cJSON *doc);
void stats_release(struct stats *st);

#endif
