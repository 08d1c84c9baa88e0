/*
 * report: `runner report BATCH` (SPEC 3), one self-contained HTML page
 * about one batch: a "next steps" box with the commands that apply
 * (retry-failed, for the top category alone too; resume or cancel of
 * each failure group still open; resume of the paused items), a summary
 * (times, counts by state, throughput,
 * latency, CPU and memory), the results (the top and bottom symbols by
 * the primary metric, or the first metric reported, its histogram, and
 * with report_write_since what changed since the batch before), a
 * timeline of every attempt on the slot it
 * ran in, completions over time, error categories as bars, the failure
 * groups the batch's items belong to with each member's state now, the
 * 20 slowest items, the failed items with their messages (grouped first
 * by their masked signature, correlate_normalize(), with counts) and,
 * when there are any, the attempts that carry a warning (a result JSON
 * that could not be read).  Durations read as people write them (850ms,
 * 2.5s, 30s, 1m05s), counts with a comma every three digits.
 *
 *   struct batch b;                     replayed by the caller
 *   FILE *fp = fopen(path, "w");
 *   if (report_write(fp, &b, sh, now_ms()) < 0 || fclose(fp) ...)
 *
 * The page needs nothing but itself: inline CSS, inline SVG, no script,
 * no URL of any kind, so it can be mailed, archived and opened offline.
 * Every string that came from a job, an agent or a child (names, symbols,
 * params, messages, root causes, group members) has its control bytes and
 * invalid UTF-8 made visible (sb_add_escaped) and is then HTML-escaped.
 *
 * Its size is bounded whatever the batch: the timeline draws one bar per
 * attempt up to 1,000 attempts; above, each slot (or band of slots, 32
 * bands at most) is a heat strip of 200 cells coloured by outcome, with a
 * mark on top of every cell where an attempt failed, so at most about
 * 2 x 32 x 200 rects; a message shows at most 400 bytes, the failed
 * items table and the warnings table 500 rows each, the masked messages
 * 50 rows, a failure group 50 members, the page 100 groups.
 * A 100,000-item batch makes a page of about 1.2 MB, most of it the 500
 * failed rows; the worst case measured (every other attempt failed, each
 * with its own long message of quotes, 64 slots) is 2.3 MB.
 *
 * b is only read.  sh (may be NULL) is the home's shared state, for the
 * failure groups' root causes and members; without it a group shows its
 * id and this batch's members only.  now is the time a running batch is
 * drawn up to.  The caller owns fp and closes it; report_write flushes
 * it.  Returns 0, or -1 with errno set when writing failed (the page may
 * then be partial).  Allocation failure is fatal, as everywhere (util.h).
 */
#ifndef RUNNER_REPORT_H
#define RUNNER_REPORT_H

#include "batch.h"

#include <stdint.h>
#include <stdio.h>

struct shared;

/* Write the report of b (sh may be NULL: no group details) to fp.
 * now: for a batch still running.  Returns 0, or -1 with errno. */
/* The same, with a results section's day-over-day part against prev (the
 * batch before, may be NULL). */
int report_write_since(FILE *fp, const struct batch *b, struct batch *prev,
		       struct shared *sh, int64_t now);
int report_write(FILE *fp, const struct batch *b, struct shared *sh,
		 int64_t now);

#endif
