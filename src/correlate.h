/*
 * correlate: failure signatures, windows and groups (SPEC 6.3), in memory.
 * Pure: no files, no clock (times are passed in), so that every runner
 * process can fold the home's shared event log (shared.h) into the same
 * answers, and unit tests can drive it directly.
 *
 *   correlate_normalize(msg, symbol, out)   ticker-like words -> TICKER,
 *                                           numbers -> NUM
 *   correlate_signature(&f, sig)            the 16-hex-digit signature of
 *                                           (agent, category, error type,
 *                                           source, normalised message)
 *   struct correlator c;  correlate_init(&c, window_ms, min_group);
 *   correlate_add(&c, sig, symbol, batch, now_ms) -> the distinct failures
 *                                           of sig inside the window
 *   correlate_root_cause(&f, buf)           "koyfin API rate limit exceeded"
 *
 * A window is per signature: failures older than window_ms are forgotten
 * when the signature is next touched; correlate_prune() forgets whole
 * signatures that went quiet.  Adding a failure is O(failures in its
 * window) with a hash lookup for the signature.
 */
#ifndef RUNNER_CORRELATE_H
#define RUNNER_CORRELATE_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIG_LEN 16

/* One failed attempt, as correlation sees it. */
struct failure {
	const char *agent, *source, *category, *type;
	const char *message;	/* raw */
	const char *norm;	/* normalised; filled by correlate_fill() */
	const char *symbol, *batch;
};

void correlate_normalize(const char *msg, const char *symbol, struct sb *out);
/* norm = normalised message (into storage), sig = the signature. */
void correlate_fill(struct failure *f, struct sb *storage, char sig[SIG_LEN + 1]);
void correlate_root_cause(const struct failure *f, struct sb *out);
/*
 * What the failure says about its source: rate limit, authentication,
 * timeout, network (from the error type, HTTP-like codes 429/401/403/5xx
 * and message words), or nothing (CAUSE_GENERIC).
 */
enum cause { CAUSE_GENERIC, CAUSE_RATE_LIMIT, CAUSE_AUTH, CAUSE_TIMEOUT,
	     CAUSE_NETWORK };
int correlate_cause(const struct failure *f);

struct corr_event {
	int64_t ms;
	char *symbol, *batch;
	bool alerted;	/* reported as a final failure when it happened */
};

struct corr_sig {
	char sig[SIG_LEN + 1];
	struct corr_event *ev;
	size_t n, cap;
	int64_t last_ms;
};

struct correlator {
	int64_t window_ms;
	int min_group;
	struct strmap index;	/* sig -> slot in sigs */
	struct corr_sig **sigs;
	size_t nsigs, capsigs;
};

void correlate_init(struct correlator *c, int64_t window_ms, int min_group);
void correlate_release(struct correlator *c);
/*
 * Record a failure of sig at ms and return the signature's window: its
 * failures within window_ms of ms, oldest first (at most the last 4096).
 * distinct (if not NULL) gets the number of distinct symbols among them,
 * counted up to min_group (more is not needed to decide).
 */
const struct corr_sig *correlate_add(struct correlator *c, const char *sig,
				     const char *symbol, const char *batch,
				     int64_t ms, size_t *distinct);
/* The same, for a failure that was already reported as final. */
const struct corr_sig *correlate_add_flagged(struct correlator *c,
					     const char *sig, const char *symbol,
					     const char *batch, int64_t ms,
					     bool alerted);
/* Distinct symbols in a window, counted up to min_group. */
size_t correlate_distinct(const struct correlator *c, const struct corr_sig *s);
/* Would a failure of symbol at ms make sig's window reach min_group
 * distinct symbols?  (Changes nothing.) */
bool correlate_would_form(const struct correlator *c, const char *sig,
			  const char *symbol, int64_t ms);
/* A symbol recovered: its failures leave every window (a group is made of
 * symbols failing now, not of symbols that failed once and came back). */
void correlate_drop_symbol(struct correlator *c, const char *symbol);
/* Empty a signature's window (its failures are accounted for). */
void correlate_forget(struct correlator *c, const char *sig);
/* Forget signatures with no failure since before ms - window. */
void correlate_prune(struct correlator *c, int64_t ms);

#endif
