/*
 * breaker: the circuit-breaker state machine, every state x event, the
 * half-open trial, doubling of the open period up to its cap
 * (src/breaker.h, SPEC 6.3).
 */
#include "breaker.h"
#include "tap.h"

#include <stdint.h>
#include <string.h>

static const char *change_name(int c)
{
	static const char *const n[] = { "none", "opened", "reopened",
					 "half_opened", "closed" };
	return c >= 0 && c <= BRK_CLOSED ? n[c] : "?";
}

#define STEP_IS(b, c, ev, now, want) \
	is_str(change_name(breaker_step((b), (c), (ev), (now))), \
	       change_name(want), "%s: step " #ev " at %lld -> %s", tag, \
	       (long long)(now), change_name(want))

static void state_is(const struct breaker *b, int state, const char *tag)
{
	is_str(circuit_name(b->state), circuit_name(state), "%s: state %s", tag,
	       circuit_name(state));
}

static const struct breaker_conf conf = { 3, 1000, 8000 };

/* A breaker opened at t (threshold failures). */
static struct breaker opened_at(int64_t t)
{
	struct breaker b = { 0 };
	for (uint32_t i = 0; i < conf.threshold; i++)
		breaker_step(&b, &conf, BRK_FAILURE, t);
	return b;
}

static void test_names(void)
{
	is_str(circuit_name(CIRCUIT_CLOSED), "closed", "circuit_name closed");
	is_str(circuit_name(CIRCUIT_OPEN), "open", "circuit_name open");
	is_str(circuit_name(CIRCUIT_HALF_OPEN), "half_open",
	       "circuit_name half_open");
	is_str(circuit_name(3), "?", "circuit_name out of range");
	is_str(circuit_name(-1), "?", "circuit_name negative");
}

static void test_closed(void)
{
	const char *tag = "closed";
	struct breaker b = { 0 };
	state_is(&b, CIRCUIT_CLOSED, "zeroed breaker");
	ok(breaker_allows(&b, 0), "closed allows");
	STEP_IS(&b, &conf, BRK_FAILURE, 10, BRK_NONE);
	is_int(b.streak, 1, "streak 1");
	STEP_IS(&b, &conf, BRK_FAILURE, 20, BRK_NONE);
	is_int(b.streak, 2, "streak 2");
	state_is(&b, CIRCUIT_CLOSED, "below threshold");
	ok(breaker_allows(&b, 20), "closed with a streak allows");
	STEP_IS(&b, &conf, BRK_TIMER, 30, BRK_NONE);
	is_int(b.streak, 2, "timer keeps the streak");
	STEP_IS(&b, &conf, BRK_SUCCESS, 40, BRK_NONE);
	is_int(b.streak, 0, "success resets the streak");
	state_is(&b, CIRCUIT_CLOSED, "after success");
	STEP_IS(&b, &conf, BRK_FAILURE, 50, BRK_NONE);
	STEP_IS(&b, &conf, BRK_FAILURE, 60, BRK_NONE);
	is_int(b.streak, 2, "streak counts again from 0");
	STEP_IS(&b, &conf, BRK_FAILURE, 70, BRK_OPENED);
	state_is(&b, CIRCUIT_OPEN, "threshold reached");
	is_int(b.streak, 3, "streak 3 at opening");
	is_int(b.open_ms, 1000, "open_ms = conf open_ms");
	is_int(b.until, 70 + 1000, "until = now + open_ms");
	ok(!b.trial_taken, "no trial at opening");
	STEP_IS(&b, &conf, BRK_FAILURE, 80, BRK_NONE);
	is_int(b.streak, 4, "a running attempt failing while open: streak 4");
	is_int(b.until, 1070, "that does not move until");

	/* an unknown event changes nothing */
	struct breaker c = { 0 };
	tag = "unknown event";
	STEP_IS(&c, &conf, 42, 0, BRK_NONE);
	ok(c.state == CIRCUIT_CLOSED && c.streak == 0, "unknown event: no change");

	/* threshold 1 opens at the first failure */
	struct breaker_conf one = { 1, 500, 0 };
	struct breaker d = { 0 };
	tag = "threshold 1";
	STEP_IS(&d, &one, BRK_FAILURE, 5, BRK_OPENED);
	is_int(d.until, 505, "threshold 1: until");

	/* open_ms above the cap is capped at the first opening too */
	struct breaker_conf capped = { 1, 5000, 2000 };
	struct breaker e = { 0 };
	breaker_step(&e, &capped, BRK_FAILURE, 0);
	ok(e.open_ms == 2000 && e.until == 2000,
	   "first open period capped at max_open_ms");
}

static void test_open(void)
{
	const char *tag = "open";
	struct breaker b = opened_at(100);	/* until 1100 */
	state_is(&b, CIRCUIT_OPEN, "opened");
	ok(!breaker_allows(&b, 100), "open before until: not allowed");
	ok(!breaker_allows(&b, 1099), "open at until-1: not allowed");
	ok(breaker_allows(&b, 1100), "open at until: allowed (the trial)");
	ok(breaker_allows(&b, 5000), "open after until: allowed");
	state_is(&b, CIRCUIT_OPEN, "breaker_allows changes nothing");
	STEP_IS(&b, &conf, BRK_SUCCESS, 500, BRK_NONE);
	state_is(&b, CIRCUIT_OPEN, "success while open (an older attempt)");
	STEP_IS(&b, &conf, BRK_TIMER, 500, BRK_NONE);
	STEP_IS(&b, &conf, BRK_TIMER, 1099, BRK_NONE);
	state_is(&b, CIRCUIT_OPEN, "timer before until");
	STEP_IS(&b, &conf, BRK_TIMER, 1100, BRK_HALF_OPENED);
	state_is(&b, CIRCUIT_HALF_OPEN, "timer at until");
	ok(!b.trial_taken, "half-open: trial not yet taken");

	struct breaker c = opened_at(0);
	tag = "open late timer";
	STEP_IS(&c, &conf, BRK_TIMER, 99999, BRK_HALF_OPENED);
	state_is(&c, CIRCUIT_HALF_OPEN, "timer long after until");
	STEP_IS(&c, &conf, BRK_TIMER, 100000, BRK_NONE);
	state_is(&c, CIRCUIT_HALF_OPEN, "timer while half-open: stays");
}

static void test_trial(void)
{
	struct breaker b = opened_at(0);	/* until 1000 */
	ok(!breaker_take_trial(&b, 999, 999 + 60000), "take_trial before until: no");
	state_is(&b, CIRCUIT_OPEN, "still open after refused trial");
	ok(!b.trial_taken, "refused trial not marked");
	ok(breaker_take_trial(&b, 1000, 1000 + 60000), "take_trial when due: yes");
	state_is(&b, CIRCUIT_HALF_OPEN, "take_trial moved open -> half_open");
	ok(b.trial_taken, "trial marked taken");
	ok(!breaker_take_trial(&b, 1001, 1001 + 60000), "second take_trial: no");
	ok(!breaker_take_trial(&b, 60999, 60999 + 60000), "third, within the lease: no");
	ok(!breaker_allows(&b, 1001), "half-open with trial taken: not allowed");
	ok(!breaker_allows(&b, 60999), "  until its lease ends");
	is_int(breaker_next_ms(&b, 2000), 61000, "next: the end of the lease");
	breaker_renew_trial(&b, 90000);
	ok(!breaker_allows(&b, 61000), "a renewed lease holds on");
	ok(breaker_allows(&b, 90000), "an expired lease frees the trial");
	ok(breaker_take_trial(&b, 90000, 150000), "  and it can be taken again");
	breaker_release_trial(&b);
	ok(!b.trial_taken && breaker_allows(&b, 90001), "a released trial is free");
	is_int(breaker_next_ms(&b, 90001), 0, "next: now");
	struct breaker o = opened_at(0);
	is_int(breaker_next_ms(&o, 10), 1000, "next of an open circuit: until");

	struct breaker c = opened_at(0);
	const char *tag = "half-open by timer";
	STEP_IS(&c, &conf, BRK_TIMER, 1000, BRK_HALF_OPENED);
	ok(breaker_allows(&c, 1000), "half-open, trial free: allowed");
	ok(breaker_allows(&c, 0), "half-open allows regardless of time");
	ok(breaker_take_trial(&c, 1000, 1000 + 60000), "half-open: take_trial yes");
	ok(!breaker_take_trial(&c, 1000, 1000 + 60000), "half-open: then no");
	ok(!breaker_allows(&c, 1000), "then not allowed");

	struct breaker d = { 0 };
	ok(breaker_take_trial(&d, 0, 0 + 60000), "closed: take_trial says go");
	state_is(&d, CIRCUIT_CLOSED, "closed stays closed");
	ok(!d.trial_taken, "closed: no trial marked");
}

static void test_half_open(void)
{
	const char *tag = "half-open success";
	struct breaker b = opened_at(0);
	breaker_take_trial(&b, 1000, 1000 + 60000);
	STEP_IS(&b, &conf, BRK_TIMER, 2000, BRK_NONE);
	STEP_IS(&b, &conf, BRK_SUCCESS, 2000, BRK_CLOSED);
	state_is(&b, CIRCUIT_CLOSED, "trial success closes");
	is_int(b.streak, 0, "streak 0 after close");
	ok(!b.trial_taken, "trial cleared");
	is_int(b.open_ms, 0, "open_ms cleared");
	ok(breaker_allows(&b, 2000), "closed again: allowed");
	/* a later opening starts from the base period again */
	breaker_step(&b, &conf, BRK_FAILURE, 3000);
	breaker_step(&b, &conf, BRK_FAILURE, 3000);
	tag = "reopen after close";
	STEP_IS(&b, &conf, BRK_FAILURE, 3000, BRK_OPENED);
	ok(b.open_ms == 1000 && b.until == 4000, "fresh opening: base period");

	tag = "half-open failure";
	struct breaker c = opened_at(0);
	breaker_take_trial(&c, 1000, 1000 + 60000);
	STEP_IS(&c, &conf, BRK_FAILURE, 1500, BRK_REOPENED);
	state_is(&c, CIRCUIT_OPEN, "failed trial reopens");
	is_int(c.open_ms, 2000, "open_ms doubled");
	is_int(c.until, 3500, "until = now + 2 x open_ms");
	ok(!c.trial_taken, "reopened: trial free again");
	is_int(c.streak, 4, "streak counts the failed trial");
	ok(!breaker_allows(&c, 3499), "reopened: not allowed before until");
	ok(!breaker_take_trial(&c, 3499, 3499 + 60000), "reopened: no trial before until");

	/* failed trials keep doubling, up to the cap (8000) */
	int64_t now = 3500, want[] = { 4000, 8000, 8000, 8000 };
	for (int i = 0; i < 4; i++) {
		ok(breaker_take_trial(&c, now, now + 60000),
		   "trial %d taken when due", i + 2);
		int ch = breaker_step(&c, &conf, BRK_FAILURE, now);
		ok(ch == BRK_REOPENED && c.open_ms == want[i] &&
		   c.until == now + want[i],
		   "failed trial %d: open %lld ms (cap 8000), until now + that",
		   i + 2, (long long)want[i]);
		now = c.until;
	}
	/* no cap: doubling goes on */
	struct breaker_conf nocap = { 1, 100, 0 };
	struct breaker d = { 0 };
	breaker_step(&d, &nocap, BRK_FAILURE, 0);
	for (int i = 0; i < 5; i++) {
		breaker_step(&d, &nocap, BRK_TIMER, d.until);
		breaker_step(&d, &nocap, BRK_FAILURE, d.until);
	}
	is_int(d.open_ms, 3200, "max_open_ms 0: no cap (100 x 2^5)");

	/* a failure in half-open without a trial handed out reopens too */
	tag = "half-open, no trial";
	struct breaker e = opened_at(0);
	breaker_step(&e, &conf, BRK_TIMER, 1000);
	STEP_IS(&e, &conf, BRK_FAILURE, 1000, BRK_REOPENED);
	/* a success in half-open closes even without a trial handed out */
	tag = "half-open success no trial";
	struct breaker f = opened_at(0);
	breaker_step(&f, &conf, BRK_TIMER, 1000);
	STEP_IS(&f, &conf, BRK_SUCCESS, 1000, BRK_CLOSED);
}

/* Every state x event, as a table. */
static void test_table(void)
{
	struct row {
		int state;
		bool trial;
		int event;
		int64_t now;
		int want_change, want_state;
	} rows[] = {
		{ CIRCUIT_CLOSED, 0, BRK_FAILURE, 0, BRK_NONE, CIRCUIT_CLOSED },
		{ CIRCUIT_CLOSED, 0, BRK_SUCCESS, 0, BRK_NONE, CIRCUIT_CLOSED },
		{ CIRCUIT_CLOSED, 0, BRK_TIMER, 0, BRK_NONE, CIRCUIT_CLOSED },
		{ CIRCUIT_OPEN, 0, BRK_FAILURE, 0, BRK_NONE, CIRCUIT_OPEN },
		{ CIRCUIT_OPEN, 0, BRK_SUCCESS, 0, BRK_NONE, CIRCUIT_OPEN },
		{ CIRCUIT_OPEN, 0, BRK_TIMER, 999, BRK_NONE, CIRCUIT_OPEN },
		{ CIRCUIT_OPEN, 0, BRK_TIMER, 1000, BRK_HALF_OPENED,
		  CIRCUIT_HALF_OPEN },
		{ CIRCUIT_HALF_OPEN, 1, BRK_FAILURE, 0, BRK_REOPENED, CIRCUIT_OPEN },
		{ CIRCUIT_HALF_OPEN, 1, BRK_SUCCESS, 0, BRK_CLOSED, CIRCUIT_CLOSED },
		{ CIRCUIT_HALF_OPEN, 1, BRK_TIMER, 5000, BRK_NONE,
		  CIRCUIT_HALF_OPEN },
	};
	const char *ev[] = { "failure", "success", "timer" };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct breaker b = { .state = (uint8_t)rows[i].state,
				     .trial_taken = rows[i].trial, .streak = 0,
				     .open_ms = 1000, .until = 1000 };
		int ch = breaker_step(&b, &conf, rows[i].event, rows[i].now);
		ok(ch == rows[i].want_change && b.state == rows[i].want_state,
		   "table: %s + %s at %lld -> %s, %s", circuit_name(rows[i].state),
		   ev[rows[i].event], (long long)rows[i].now,
		   change_name(rows[i].want_change),
		   circuit_name(rows[i].want_state));
	}
}

int main(void)
{
	test_names();
	test_closed();
	test_open();
	test_trial();
	test_half_open();
	test_table();
	done_testing();
	return exit_status();
}
