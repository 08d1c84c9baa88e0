/*
 * breaker: the circuit-breaker state machine, for a symbol (SPEC 6.3: its
 * own consecutive failures across batches) and for a source (a failure
 * group: the vendor is down).  One table, one function; no clock (times
 * are passed in), no files.
 *
 *            failure (streak >= threshold)          timer (now >= until)
 *   CLOSED ---------------------------------> OPEN ------------------> HALF_OPEN
 *     ^  \__ failure below threshold: streak+1  ^                        |  |
 *     |                                         |  trial failure:        |  |
 *     |  trial success                          +---- until = now + 2x ---+  |
 *     +---------------------------------------------------------------------+
 *
 * A success in CLOSED resets the streak.  In HALF_OPEN exactly one trial
 * attempt may run (breaker_take_trial); its outcome closes the circuit or
 * opens it again for twice as long as before (at most max_open_ms).
 * A trial is a lease: it is taken until trial_until, which its holder
 * renews while the attempt is on its way, and gives back when the attempt
 * ends without an outcome (interrupted, cancelled, withdrawn).  A holder
 * that died stops renewing, and at trial_until the trial is free again:
 * no circuit waits for ever on a trial nobody will run.
 * breaker_step() returns the transition it made, so that the caller can
 * journal it and raise the alert of an opening exactly once.
 */
#ifndef RUNNER_BREAKER_H
#define RUNNER_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

enum circuit { CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN };
enum breaker_event { BRK_FAILURE, BRK_SUCCESS, BRK_TIMER };
enum breaker_change {
	BRK_NONE,	/* no change of state */
	BRK_OPENED,	/* closed -> open (the streak reached the threshold) */
	BRK_REOPENED,	/* half_open -> open (the trial failed) */
	BRK_HALF_OPENED,/* open -> half_open (the open period is over) */
	BRK_CLOSED,	/* half_open -> closed (the trial succeeded) */
};

struct breaker {
	uint8_t state;
	bool trial_taken;	/* HALF_OPEN: the one trial has been handed out */
	int64_t trial_until;	/* ... until then (its lease) */
	uint32_t streak;	/* consecutive failures */
	int64_t open_ms;	/* the length of the current open period */
	int64_t until;		/* OPEN: when it becomes HALF_OPEN */
};

struct breaker_conf {
	uint32_t threshold;
	int64_t open_ms;
	int64_t max_open_ms;
};

int breaker_step(struct breaker *b, const struct breaker_conf *c, int event,
		 int64_t now);
/* May an attempt start now?  In HALF_OPEN only the trial (free, or its
 * lease expired). */
bool breaker_allows(const struct breaker *b, int64_t now);
/* Take the trial until lease_until (true), or say no; in CLOSED: true,
 * nothing taken. */
bool breaker_take_trial(struct breaker *b, int64_t now, int64_t lease_until);
/* The holder extends its lease (a running trial attempt). */
void breaker_renew_trial(struct breaker *b, int64_t lease_until);
/* The holder gives the trial back unused: it is free now. */
void breaker_release_trial(struct breaker *b);
/* When the circuit may next allow an attempt (0: now or closed). */
int64_t breaker_next_ms(const struct breaker *b, int64_t now);
const char *circuit_name(int state);

#endif
