/*
 * symstats: per-symbol figures for `runner status` (SPEC 8): when each
 * symbol was last processed, how long its attempts take on average, and
 * whether one runs now, kept in state/symbols across runs and processes.
 *
 *   symstats_start(&st, sym);          an attempt of sym starts
 *   symstats_end(&st, sym, now, ms, ok);
 *   symstats_flush(&st, state_fd, now) merge this process's figures into
 *                                      state/symbols (under a lock; the
 *                                      file is replaced atomically)
 *   symstats_read(state_fd, fn, arg)   every symbol in the file
 *
 * The file is text, one symbol a line:
 *   symbol TAB last_ms TAB count TAB latency_sum_ms TAB last_ok TAB busy_until
 *          TAB latency_max_ms TAB histogram TAB latency_min_ms
 * The histogram ("B:N,B:N", sparse) counts attempt latencies in buckets of
 * a quarter of a doubling (bucket 1 + floor(4 log2 ms), 0 for 0 ms), so a
 * percentile read from it is within 10% (symstats_percentile), and never
 * outside [min, max].  Lines without the histogram (older files) read as
 * no histogram; without the minimum ("-", or a line of an older version)
 * as an unknown minimum, which stays unknown as figures are added to it.
 * busy_until is a lease: a symbol is "processing" while it is in the
 * future; a process that runs it renews the lease at every flush, so a
 * killed one's claim runs out on its own.  Only changes since the last
 * flush are merged, so counts from several processes add up.
 */
#ifndef RUNNER_SYMSTATS_H
#define RUNNER_SYMSTATS_H

#include "util.h"

#include <stdbool.h>
#include <stdint.h>

#define SYMSTATS_LEASE_MS 15000

#define SYMSTATS_BUCKETS 96	/* up to 2^23.75 ms, about 3.9 hours */

struct lat_bucket {
	uint32_t bucket;
	uint64_t n;
};

/* A sparse latency histogram, buckets ascending. */
struct lat_hist {
	struct lat_bucket *v;
	size_t n, cap;
};

struct symstat {
	char *symbol;
	int64_t last_ms;
	uint64_t count, lat_sum;	/* deltas since the last flush */
	uint64_t lat_max, lat_min;	/* of the delta, when count > 0 */
	struct lat_hist hist;		/* delta since the last flush */
	bool last_ok;
	int running;
	bool dirty;
	bool merged;			/* flush: its line is written */
};

struct symstats {
	struct strmap idx;
	struct symstat *v;
	size_t n, cap;
	bool dirty;
};

void symstats_start(struct symstats *st, const char *symbol);
void symstats_end(struct symstats *st, const char *symbol, int64_t now,
		  int64_t latency_ms, bool ok);
int symstats_flush(struct symstats *st, int state_fd, int64_t now);
bool symstats_busy(const struct symstats *st);
/* Remove what a crashed flush left (a temp file), under the lock. */
void symstats_sweep(int state_fd);
void symstats_release(struct symstats *st);

struct symstat_row {
	const char *symbol;
	int64_t last_ms;
	uint64_t count, lat_sum;
	bool last_ok;
	int64_t busy_until;
	uint64_t lat_max;
	const struct lat_hist *hist;
	int64_t lat_min;	/* -1: unknown */
};
typedef void (*symstats_fn)(void *arg, const struct symstat_row *row);
/* The latency below which a fraction q of r's attempts fell (ms, within
 * 10%, and within [lat_min, lat_max]); -1 when r has no histogram. */
double symstats_percentile(const struct symstat_row *r, double q);
void lat_hist_add(struct lat_hist *h, uint32_t bucket, uint64_t n);
void lat_hist_release(struct lat_hist *h);
int symstats_read(int state_fd, symstats_fn fn, void *arg);

#endif
