/*
 * attempt: what an attempt's end leads to.  Pure: no I/O, no clock, no
 * random source of its own (the caller passes its draw for the jitter), so
 * that every rule is a row of a table test (tests/unit/attempt.c).
 *
 *   struct attempt_in in = { ... the end, the verdict, the item, the conf };
 *   struct attempt_decision d;
 *   attempt_assess(&in, &d);        outcome; for a failure: retryable,
 *                                   final_alone (it would end the item
 *                                   were it its own), correlate (it speaks
 *                                   for its source: it may make a group)
 *   ... the caller asks the home's shared state whether the failure is a
 *       group's (shared_failure) ...
 *   attempt_decide(&in, grouped, &d);   next state, counts_failure, and
 *                                       when a retry is due
 *
 * The rules: a cancelled attempt is cancelled; one the runner's stop
 * interrupted goes back to pending (it does not count against
 * max_attempts); but an interruption that ended with the runner itself
 * (its runner died under it, or stopped at a signal from one of the
 * attempt's own processes) counts as one of the item's interruptions, and the
 * ATTEMPT_MAX_INTERRUPTIONS-th fails the item (engine_error): a child
 * that kills its runner would otherwise be run again by every later
 * runner, for ever (the engine runs such an item alone, so that the
 * count is its own).  A success succeeds.  A failure is retryable when
 * its category is in retry_on, unless the result says retryable (either
 * way) or the program could not be run (ENOENT, EACCES, ENOEXEC: not
 * retried).  A failure that is a
 * group's pauses the item with its group and does not count against
 * max_attempts; else it is retried after the backoff (the delays, the
 * last repeated, with +/- jitter, or retry_after when longer) while it is
 * retryable and attempts remain, else it is final.
 */
#ifndef RUNNER_ATTEMPT_H
#define RUNNER_ATTEMPT_H

#include <stdbool.h>
#include <stdint.h>

enum attempt_end {
	ATT_ENDED,	/* the child ended (or its timeout killed it) */
	ATT_CANCELLED,	/* a user cancelled it (or its batch timed out) */
	ATT_STOPPED,	/* the runner stopped: interrupted */
};

/* Not configurable: `runner retry-failed` runs such an item again. */
#define ATTEMPT_MAX_INTERRUPTIONS 3
#define ATTEMPT_STR_(x) #x
#define ATTEMPT_STR(x) ATTEMPT_STR_(x)
/* The error message of the item it fails. */
#define ATTEMPT_INTERRUPTED_FAIL                                        \
	"interrupted " ATTEMPT_STR(ATTEMPT_MAX_INTERRUPTIONS) " times: its " \
	"attempts keep ending with the runner"

struct attempt_in {
	int end;		/* enum attempt_end */
	bool ended_runner;	/* ATT_STOPPED: the runner died under it, or
				   stopped at its signal */
	int interruptions;	/* the item's that count, before this one */
	bool success;		/* the verdict (classify.h) */
	int category;		/* the verdict's, for a failure */
	int result_retryable;	/* the result's error.retryable: -1, 0, 1 */
	int64_t retry_after_ms;	/* the result's, -1: unset */
	bool source_named;	/* the result names the failure's source */
	bool cause_is_source;	/* correlate_cause(): rate limit, auth... */
	int exec_errno;		/* the program could not be run: errno */
	uint32_t retry_on;	/* CAT_BIT()s retried */
	int failures;		/* the item's failures before this attempt */
	int max_attempts;
	const int64_t *delays_ms;
	uint32_t ndelays;
	uint32_t jitter_permille;
	double jitter_draw;	/* uniform in [0, 1): the caller's random */
	int64_t end_ms;		/* when the attempt ended */
};

struct attempt_decision {
	uint8_t outcome;	/* OUT_* (batch.h) */
	bool retryable;		/* failures only */
	bool final_alone;	/* a failure ends the item, if no group's */
	bool correlate;		/* a failure may form or join a group */
	bool counts_interruption; /* interrupted, category engine_error */
	uint8_t next_state;	/* ST_* (batch.h) */
	bool counts_failure;
	int64_t next_retry_at;	/* ST_RETRY_WAIT: when; else 0 */
};

void attempt_assess(const struct attempt_in *in, struct attempt_decision *d);
void attempt_decide(const struct attempt_in *in, bool grouped,
		    struct attempt_decision *d);
/* The backoff before attempt failures+2: the delay (the last repeats),
 * with jitter, or retry_after when longer; never negative. */
int64_t attempt_retry_delay(const struct attempt_in *in);

#endif
