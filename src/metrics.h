/*
 * metrics: the home's figures in the Prometheus text format, in one file
 * (node_exporter's textfile-collector convention: replaced atomically, so
 * a scraper never reads half of it).  `[metrics] textfile` names it
 * (default logs/runner.prom); the daemon writes it every few seconds and
 * at its end, `runner run` at each of its flushes and at its end.
 *
 * Every series has a home="..." label; counters and the attempt-duration
 * histogram an agent="..." label too.  Counters are the home's, across
 * its runner processes: a writer takes state/metrics.lock, reads the
 * counters the file holds and adds what it counted since its own last
 * write, so that a cron job's runs add up instead of each starting at 0.
 * Gauges are what the writing process sees, passed in a view.
 *
 *   metrics_init(&m, now, daemon);
 *   metrics_attempt(&m, agent, outcome, category, seconds);
 *   metrics_item_final(&m, agent, state);    each item made final
 *   metrics_batch_final(&m, status, seconds); each batch that ends
 *   metrics_format(&m, &view, base, &sb);     the text (base: the file's
 *                                             counters, may be NULL)
 *   metrics_write(h, path, &m, &view);        replace the file
 *   metrics_release(&m);
 */
#ifndef RUNNER_METRICS_H
#define RUNNER_METRICS_H

#include "batch.h"
#include "category.h"
#include "home.h"
#include "util.h"

#include <stdbool.h>

#define METRICS_OUTCOMES (OUT_INTERRUPTED + 1)
#define METRICS_BUCKETS 10	/* batch durations */
#define METRICS_ATTEMPT_BUCKETS 6	/* attempt durations, +Inf apart */
#define METRICS_FINALS 3	/* succeeded, failed, cancelled */

/* What one agent's attempts and items added since the last write. */
struct metrics_counts {
	char *agent;
	uint64_t attempts[METRICS_OUTCOMES][CAT_COUNT];
	uint64_t finished[METRICS_FINALS];
	uint64_t dur_bucket[METRICS_ATTEMPT_BUCKETS];	/* not cumulative */
	double dur_sum;
	uint64_t dur_count;
};

struct metrics {
	int64_t started_ms;
	bool daemon;
	struct metrics_counts *agents;	/* since the last write */
	size_t nagents, cap;
	uint64_t batches[BS_CANCELLED + 1];
	uint64_t batch_bucket[METRICS_BUCKETS];	/* not cumulative */
	double batch_sum;
	uint64_t batch_count;
	uint64_t writes;
};

struct metrics_agent {
	const char *name;
	int running;		/* home-wide (slot locks held) */
	int max_concurrent;
	size_t queued;		/* open items of this process's batches */
};

struct metrics_view {
	const char *home;	/* the home label */
	size_t items[ST_COUNT];	/* items of the batches this process has open */
	size_t open_batches;
	const struct metrics_agent *agents;
	size_t nagents;
	size_t symbol_circuits[3];	/* by enum circuit */
	size_t groups[3];		/* by enum group_status */
	int64_t now_ms;
};

/* The counters of a file written before: "name{labels}" -> value. */
struct metrics_base;

void metrics_init(struct metrics *m, int64_t now_ms, bool daemon);
void metrics_release(struct metrics *m);
void metrics_attempt(struct metrics *m, const char *agent, int outcome,
		     int category, double seconds);
void metrics_item_final(struct metrics *m, const char *agent, int state);
void metrics_batch_final(struct metrics *m, int status, double seconds);
/* The counters (lines of *_total, *_bucket, *_sum, *_count) of a file's
 * text; lines that do not parse are skipped.  NULL-safe free. */
struct metrics_base *metrics_base_parse(const char *text, size_t len);
void metrics_base_free(struct metrics_base *b);
void metrics_format(const struct metrics *m, const struct metrics_view *v,
		    const struct metrics_base *base, struct sb *out);
/* Replace path (relative to the home, or absolute) under
 * state/metrics.lock, counters carried on from the file; the deltas are
 * cleared once written.  0, or -1 with errno. */
int metrics_write(const struct home *h, const char *path, struct metrics *m,
		  const struct metrics_view *v);

#endif
