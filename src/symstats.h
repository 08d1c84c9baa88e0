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

struct symstat {
	char *symbol;
	int64_t last_ms;
	uint64_t count, lat_sum;	/* deltas since the last flush */
	bool last_ok;
	int running;
	bool dirty;
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
};
typedef void (*symstats_fn)(void *arg, const struct symstat_row *row);
int symstats_read(int state_fd, symstats_fn fn, void *arg);

#endif
