/*
 * history: every final item of every batch, by symbol, for `runner history`
 * and `list --symbol`: a small index that answers without replaying a
 * journal or opening an archive.
 *
 *   state/history/XX   (XX: two hex digits of the symbol's hash) one line
 *                      per item of a batch that became final:
 *   SYMBOL \t BATCH \t CREATED_MS \t COMPLETED_MS \t STATE \t CATEGORY
 *          \t DURATION_MS \t ATTEMPTS \t METRICS
 *   state/history/.complete   the index holds every batch of the home
 *
 * CATEGORY, DURATION_MS and METRICS are "-" when none; METRICS is the
 * "metrics" object of the item's last result JSON, compact, when it is at
 * most HISTORY_METRICS_MAX bytes.  A batch made final again (retry-failed)
 * appends its lines again: the last line of a (symbol, batch) wins.  Each
 * bucket gets one write(2) per batch, O_APPEND, so runners that end
 * batches at once do not mix their lines.  Batches archived or deleted
 * keep their lines.
 *
 * A home from before the index gets it built on first use, from batches/
 * and the archives (each journal replayed once), and then .complete.
 */
#ifndef RUNNER_HISTORY_H
#define RUNNER_HISTORY_H

#include "batch.h"
#include "home.h"

#include <stdint.h>

#define HISTORY_METRICS_MAX 2048

/* Add a final batch's items: 0, or -1 with errno. */
int history_add_batch(int state_fd, const struct batch *b);

struct hist_row {
	char batch[80];
	int64_t created_ms, completed_ms;
	char state[16], category[32];
	int64_t duration_ms;	/* -1: none */
	long attempts;
	char *metrics;		/* JSON object text (owned), NULL: none */
};

/* The runs of symbol, newest batch first, one per batch: 0 with *rows
 * (free with history_free), or -1 with errno.  Builds the index first if
 * the home has none (a message on stderr). */
int history_lookup(struct home *h, const char *symbol, struct hist_row **rows,
		   size_t *n);
void history_free(struct hist_row *rows, size_t n);

#endif
