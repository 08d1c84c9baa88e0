/*
 * attempt.c: what an attempt's end leads to (src/attempt.h), as a table:
 * each row an end, a verdict and an item, and the decision it must give.
 */
#include "attempt.h"
#include "batch.h"
#include "category.h"
#include "tap.h"

#include <errno.h>

static const int64_t delays[] = { 1000, 2000, 4000 };

static const char *const state_names[] = { "pending", "starting", "running",
					   "retry_wait", "paused", "succeeded",
					   "failed", "cancelled" };

struct row {
	const char *what;
	int end;
	bool success;
	int category;
	int result_retryable;
	int64_t retry_after;
	bool source_named, cause_is_source;
	int exec_errno;
	int failures;		/* before this attempt; max_attempts is 3 */
	bool grouped;
	/* the decision */
	int outcome, next_state;
	bool counts, correlate;
	int64_t retry_in;	/* next_retry_at - end (jitter 0), -1: none */
};

#define R(...) { __VA_ARGS__ }
static const struct row rows[] = {
	R("success", ATT_ENDED, true, CAT_NONE, -1, -1, false, false, 0, 0,
	  false, OUT_SUCCEEDED, ST_SUCCEEDED, false, false, -1),
	R("cancelled, even a success", ATT_CANCELLED, true, CAT_NONE, -1, -1,
	  false, false, 0, 0, false, OUT_CANCELLED, ST_CANCELLED, false, false,
	  -1),
	R("the runner stopped: interrupted, pending, not counted", ATT_STOPPED,
	  false, CAT_ENGINE, -1, -1, false, false, 0, 2, false, OUT_INTERRUPTED,
	  ST_PENDING, false, false, -1),
	R("engine_error, first failure: retry after the first delay", ATT_ENDED,
	  false, CAT_ENGINE, -1, -1, false, false, 0, 0, false, OUT_FAILED,
	  ST_RETRY_WAIT, true, false, 1000),
	R("engine_error, second failure: the second delay", ATT_ENDED, false,
	  CAT_ENGINE, -1, -1, false, false, 0, 1, false, OUT_FAILED,
	  ST_RETRY_WAIT, true, false, 2000),
	R("engine_error, third of 3: final", ATT_ENDED, false, CAT_ENGINE, -1,
	  -1, false, false, 0, 2, false, OUT_FAILED, ST_FAILED, true, false, -1),
	R("data_error is not in retry_on: final at once", ATT_ENDED, false,
	  CAT_DATA, -1, -1, false, false, 0, 0, false, OUT_FAILED, ST_FAILED,
	  true, false, -1),
	R("data_error the agent says is retryable: retried", ATT_ENDED, false,
	  CAT_DATA, 1, -1, false, false, 0, 0, false, OUT_FAILED, ST_RETRY_WAIT,
	  true, false, 1000),
	R("timeout the agent says is hopeless: final", ATT_ENDED, false,
	  CAT_TIMEOUT, 0, -1, false, true, 0, 0, false, OUT_FAILED, ST_FAILED,
	  true, true, -1),
	R("retry_after longer than the delay wins", ATT_ENDED, false,
	  CAT_ENGINE, -1, 30000, false, false, 0, 0, false, OUT_FAILED,
	  ST_RETRY_WAIT, true, false, 30000),
	R("retry_after shorter than the delay: the delay", ATT_ENDED, false,
	  CAT_ENGINE, -1, 10, false, false, 0, 1, false, OUT_FAILED,
	  ST_RETRY_WAIT, true, false, 2000),
	R("no such program: engine_error, never retried", ATT_ENDED, false,
	  CAT_ENGINE, -1, -1, false, false, ENOENT, 0, false, OUT_FAILED,
	  ST_FAILED, true, false, -1),
	R("permission denied: never retried", ATT_ENDED, false, CAT_ENGINE, 1,
	  -1, false, false, EACCES, 0, false, OUT_FAILED, ST_FAILED, true,
	  false, -1),
	R("a rate limit speaks for its source: correlates", ATT_ENDED, false,
	  CAT_DATA, 1, 1000, true, true, 0, 0, false, OUT_FAILED, ST_RETRY_WAIT,
	  true, true, 1000),
	R("an agent naming the source of a retryable failure correlates",
	  ATT_ENDED, false, CAT_ENGINE, -1, -1, true, false, 0, 0, false,
	  OUT_FAILED, ST_RETRY_WAIT, true, true, 1000),
	R("... but not of a hopeless one", ATT_ENDED, false, CAT_DATA, -1, -1,
	  true, false, 0, 0, false, OUT_FAILED, ST_FAILED, true, false, -1),
	R("a group's failure pauses, does not count", ATT_ENDED, false,
	  CAT_DATA, 1, 1000, true, true, 0, 0, true, OUT_FAILED, ST_PAUSED,
	  false, true, -1),
	R("a group's failure pauses a final one too (resume All)", ATT_ENDED,
	  false, CAT_DATA, 0, -1, true, true, 0, 2, true, OUT_FAILED, ST_PAUSED,
	  false, true, -1),
	R("retry-failed reset its failures: later attempt numbers retry again",
	  ATT_ENDED, false, CAT_ENGINE, -1, -1, false, false, 0, 0, false,
	  OUT_FAILED, ST_RETRY_WAIT, true, false, 1000),
	R("the delays' last repeats", ATT_ENDED, false, CAT_UNKNOWN, -1, -1,
	  false, false, 0, 1, false, OUT_FAILED, ST_RETRY_WAIT, true, false,
	  2000),
};

static struct attempt_in input(const struct row *w)
{
	return (struct attempt_in){
		.end = w->end,
		.success = w->success,
		.category = w->category,
		.result_retryable = w->result_retryable,
		.retry_after_ms = w->retry_after,
		.source_named = w->source_named,
		.cause_is_source = w->cause_is_source,
		.exec_errno = w->exec_errno,
		.retry_on = CAT_BIT(CAT_TIMEOUT) | CAT_BIT(CAT_ENGINE) |
			    CAT_BIT(CAT_UNKNOWN) | CAT_BIT(CAT_MEMORY),
		.failures = w->failures,
		.max_attempts = 3,
		.delays_ms = delays,
		.ndelays = 3,
		.jitter_permille = 0,
		.jitter_draw = 0.5,
		.end_ms = 1000000,
	};
}

static void table(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		struct attempt_in in = input(w);
		struct attempt_decision d;
		attempt_assess(&in, &d);
		if (d.outcome == OUT_FAILED)
			ok(d.correlate == w->correlate, "%s: correlate %d",
			   w->what, w->correlate);
		attempt_decide(&in, w->grouped, &d);
		is_int(d.outcome, w->outcome, "%s: outcome", w->what);
		is_str(state_names[d.next_state], state_names[w->next_state],
		       "%s: next state", w->what);
		ok(d.counts_failure == w->counts, "%s: counts %d", w->what,
		   w->counts);
		is_int(d.next_retry_at ? d.next_retry_at - in.end_ms : -1,
		       w->retry_in, "%s: retry in", w->what);
	}
}

static void jitter(void)
{
	struct attempt_in in = input(&rows[3]);
	in.jitter_permille = 200;
	in.jitter_draw = 0.0;
	is_int(attempt_retry_delay(&in), 800, "jitter 0.2, lowest draw: -20%%");
	in.jitter_draw = 0.999999999;
	is_int(attempt_retry_delay(&in), 1200, "highest draw: +20%%");
	in.jitter_draw = 0.5;
	is_int(attempt_retry_delay(&in), 1000, "middle draw: the delay");
	in.ndelays = 0;
	is_int(attempt_retry_delay(&in), 0, "no delays: at once");
	in.retry_after_ms = 5000;
	is_int(attempt_retry_delay(&in), 5000, "no delays, retry_after: it");
	in.failures = 9;
	in.ndelays = 3;
	in.retry_after_ms = -1;
	in.jitter_permille = 0;
	is_int(attempt_retry_delay(&in), 4000, "past the list: its last");
}

/* Interruptions that ended with the runner: counted, the third fails the
 * item; a plain stop never counts. */
static void interruptions(void)
{
	static const struct {
		const char *what;
		bool ended_runner;
		int before;
		bool counts;
		int next_state;
	} t[] = {
		{ "a stop, after 2 that counted: pending", false, 2, false,
		  ST_PENDING },
		{ "ended with the runner, the first: pending", true, 0, true,
		  ST_PENDING },
		{ "ended with the runner, the second: pending", true, 1, true,
		  ST_PENDING },
		{ "ended with the runner, the third: failed", true, 2, true,
		  ST_FAILED },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct attempt_in in = input(&rows[0]);
		in.end = ATT_STOPPED;
		in.success = false;
		in.ended_runner = t[i].ended_runner;
		in.interruptions = t[i].before;
		struct attempt_decision d;
		attempt_assess(&in, &d);
		attempt_decide(&in, false, &d);
		is_int(d.outcome, OUT_INTERRUPTED, "%s: interrupted", t[i].what);
		ok(d.counts_interruption == t[i].counts, "%s: counts %d",
		   t[i].what, t[i].counts);
		ok(!d.counts_failure, "%s: not against max_attempts", t[i].what);
		is_str(state_names[d.next_state], state_names[t[i].next_state],
		       "%s: next state", t[i].what);
	}
}

int main(void)
{
	table();
	jitter();
	interruptions();
	done_testing();
	return exit_status();
}
