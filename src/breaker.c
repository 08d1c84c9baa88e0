#include "breaker.h"

const char *circuit_name(int state)
{
	static const char *const names[] = { "closed", "open", "half_open" };
	return state >= 0 && state <= CIRCUIT_HALF_OPEN ? names[state] : "?";
}

static void open_for(struct breaker *b, const struct breaker_conf *c,
		     int64_t now, int64_t ms)
{
	if (c->max_open_ms > 0 && ms > c->max_open_ms)
		ms = c->max_open_ms;
	b->state = CIRCUIT_OPEN;
	b->trial_taken = false;
	b->trial_until = 0;
	b->open_ms = ms;
	b->until = now + ms;
}

/* The whole machine: state x event. */
int breaker_step(struct breaker *b, const struct breaker_conf *c, int event,
		 int64_t now)
{
	switch (b->state) {
	case CIRCUIT_CLOSED:
		if (event == BRK_SUCCESS) {
			b->streak = 0;
		} else if (event == BRK_FAILURE) {
			if (++b->streak >= c->threshold) {
				open_for(b, c, now, c->open_ms);
				return BRK_OPENED;
			}
		}
		return BRK_NONE;
	case CIRCUIT_OPEN:
		if (event == BRK_FAILURE) {
			b->streak++; /* an attempt already running failed */
		} else if (event == BRK_TIMER && now >= b->until) {
			b->state = CIRCUIT_HALF_OPEN;
			b->trial_taken = false;
			b->trial_until = 0;
			return BRK_HALF_OPENED;
		}
		return BRK_NONE;
	case CIRCUIT_HALF_OPEN:
		if (event == BRK_SUCCESS) {
			b->state = CIRCUIT_CLOSED;
			b->streak = 0;
			b->trial_taken = false;
			b->trial_until = 0;
			b->open_ms = 0;
			return BRK_CLOSED;
		}
		if (event == BRK_FAILURE) {
			b->streak++;
			open_for(b, c, now, b->open_ms ? b->open_ms * 2 : c->open_ms);
			return BRK_REOPENED;
		}
		return BRK_NONE;
	}
	return BRK_NONE;
}

static bool trial_free(const struct breaker *b, int64_t now)
{
	return !b->trial_taken || (b->trial_until && now >= b->trial_until);
}

bool breaker_allows(const struct breaker *b, int64_t now)
{
	switch (b->state) {
	case CIRCUIT_CLOSED:
		return true;
	case CIRCUIT_OPEN:
		return now >= b->until && trial_free(b, now);
	default:
		return trial_free(b, now);
	}
}

bool breaker_take_trial(struct breaker *b, int64_t now, int64_t lease_until)
{
	if (b->state == CIRCUIT_OPEN && now >= b->until) {
		b->state = CIRCUIT_HALF_OPEN;
		b->trial_taken = false;
		b->trial_until = 0;
	}
	if (b->state != CIRCUIT_HALF_OPEN)
		return b->state == CIRCUIT_CLOSED;
	if (!trial_free(b, now))
		return false;
	b->trial_taken = true;
	b->trial_until = lease_until;
	return true;
}

void breaker_renew_trial(struct breaker *b, int64_t lease_until)
{
	if (b->state != CIRCUIT_CLOSED && b->trial_taken &&
	    lease_until > b->trial_until)
		b->trial_until = lease_until;
}

void breaker_release_trial(struct breaker *b)
{
	if (b->state != CIRCUIT_CLOSED) {
		b->trial_taken = false;
		b->trial_until = 0;
		b->trial_until = 0;
	}
}

int64_t breaker_next_ms(const struct breaker *b, int64_t now)
{
	int64_t t = 0;
	if (b->state == CIRCUIT_OPEN && now < b->until)
		t = b->until;
	if (b->state != CIRCUIT_CLOSED && b->trial_taken && b->trial_until &&
	    b->trial_until > t)
		t = b->trial_until;
	return t > now ? t : 0;
}
