#include "attempt.h"
#include "batch.h"
#include "category.h"

#include <errno.h>
#include <math.h>
#include <string.h>

void attempt_assess(const struct attempt_in *in, struct attempt_decision *d)
{
	memset(d, 0, sizeof(*d));
	if (in->end == ATT_CANCELLED) {
		d->outcome = OUT_CANCELLED;
		return;
	}
	if (in->end == ATT_STOPPED) {
		d->outcome = OUT_INTERRUPTED;
		d->counts_interruption = in->ended_runner;
		return;
	}
	if (in->success) {
		d->outcome = OUT_SUCCEEDED;
		return;
	}
	d->outcome = OUT_FAILED;
	bool retryable = (in->retry_on & CAT_BIT(in->category)) != 0;
	if (in->result_retryable == 1)
		retryable = true;
	else if (in->result_retryable == 0)
		retryable = false; /* the agent knows it is hopeless */
	if (in->exec_errno == ENOENT || in->exec_errno == EACCES ||
	    in->exec_errno == ENOEXEC)
		retryable = false; /* no retry makes a binary appear */
	d->retryable = retryable;
	d->final_alone = !(retryable && in->failures + 1 < in->max_attempts);
	/* A failure speaks for its source when its cause is one (rate limit,
	 * authentication, timeout, network), or when the agent names the
	 * source of a transient error; a failure of the item itself (no data
	 * for it, a bad parameter, a crash) counts only for its symbol. */
	d->correlate = in->cause_is_source || (in->source_named && retryable);
}

int64_t attempt_retry_delay(const struct attempt_in *in)
{
	int64_t delay = 0;
	if (in->ndelays) {
		uint32_t k = in->failures >= 0 ? (uint32_t)in->failures : 0;
		delay = in->delays_ms[k < in->ndelays ? k : in->ndelays - 1];
	}
	if (in->jitter_permille && delay > 0) {
		double j = (double)in->jitter_permille / 1000.0;
		delay = (int64_t)llround((double)delay *
					 (1.0 + j * (2.0 * in->jitter_draw - 1.0)));
	}
	if (in->retry_after_ms > delay)
		delay = in->retry_after_ms;
	return delay < 0 ? 0 : delay;
}

void attempt_decide(const struct attempt_in *in, bool grouped,
		    struct attempt_decision *d)
{
	d->counts_failure = false;
	d->next_retry_at = 0;
	switch (d->outcome) {
	case OUT_CANCELLED:
		d->next_state = ST_CANCELLED;
		return;
	case OUT_INTERRUPTED:
		d->next_state = d->counts_interruption &&
					in->interruptions + 1 >=
						ATTEMPT_MAX_INTERRUPTIONS
				? ST_FAILED
				: ST_PENDING;
		return;
	case OUT_SUCCEEDED:
		d->next_state = ST_SUCCEEDED;
		return;
	}
	if (grouped) {
		/* The group's failure, not the item's: it waits for its group
		 * whatever its attempts or category, and a resume runs it
		 * again (resume All). */
		d->next_state = ST_PAUSED;
		return;
	}
	d->counts_failure = true;
	if (d->final_alone) {
		d->next_state = ST_FAILED;
		return;
	}
	d->next_state = ST_RETRY_WAIT;
	d->next_retry_at = in->end_ms + attempt_retry_delay(in);
}
