/*
 * metrics: logs/runner.prom, the daemon's figures in the Prometheus text
 * format (node_exporter's textfile-collector convention: one file,
 * replaced atomically, so a scraper never reads half of it).
 *
 * Counters count since the daemon started (Prometheus handles resets);
 * gauges are what the engine sees when it writes, passed in a view:
 *
 *   metrics_init(&m, now);
 *   metrics_attempt(&m, outcome, category);    each finished attempt
 *   metrics_batch_final(&m, status, seconds);  each batch that ends
 *   metrics_format(&m, &view, &sb);            the text
 *   metrics_write(logs_fd, &m, &view);         replace logs/runner.prom
 */
#ifndef RUNNER_METRICS_H
#define RUNNER_METRICS_H

#include "batch.h"
#include "category.h"
#include "util.h"

#define METRICS_OUTCOMES (OUT_INTERRUPTED + 1)
#define METRICS_BUCKETS 10

struct metrics {
	int64_t started_ms;
	uint64_t attempts[METRICS_OUTCOMES][CAT_COUNT];
	uint64_t batches[BS_CANCELLED + 1];
	uint64_t dur_bucket[METRICS_BUCKETS];	/* cumulative at write */
	double dur_sum;
	uint64_t dur_count;
	uint64_t writes;
};

struct metrics_agent {
	const char *name;
	int running;		/* home-wide (slot locks held) */
	int max_concurrent;
	size_t queued;		/* open items of this process's batches */
};

struct metrics_view {
	size_t items[ST_COUNT];	/* items of the batches this process has open */
	size_t open_batches;
	const struct metrics_agent *agents;
	size_t nagents;
	size_t symbol_circuits[3];	/* by enum circuit */
	size_t source_circuits_open;	/* failure groups not yet resumed */
	size_t groups[3];		/* by enum group_status */
	int64_t now_ms;
};

void metrics_init(struct metrics *m, int64_t now_ms);
void metrics_attempt(struct metrics *m, int outcome, int category);
void metrics_batch_final(struct metrics *m, int status, double seconds);
void metrics_format(const struct metrics *m, const struct metrics_view *v,
		    struct sb *out);
int metrics_write(int logs_fd, struct metrics *m,
		  const struct metrics_view *v);

#endif
