/*
 * batch: the record codec, the state machine in batch_apply(), and replay
 * equivalence through a real journal (src/batch.h).
 */
#include "batch.h"
#include "journal.h"
#include "scratch.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static int dfd = -1;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool streq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* ---- the claim ---- */

static int64_t delays[] = { 1000, 5000, 30000, -1, INT64_MAX };
static struct batch_param params[] = {
	{ "strategy", "momentum" },
	{ "lookback", "20" },
	{ "label", "ünïcødé ✓ 株式" },
	{ "empty", "" },
};
static const char *const syms[] = {
	"AAPL", "MSFT", "BRK.B", "^GSPC", "GOOG", "TSLA", "NVDA", "AMZN",
};
enum { NSYMS = 8 };

static struct batch_conf full_conf(void)
{
	return (struct batch_conf){
		.id = "b-20260101-000000-abcd",
		.name = "Nightly ✓ run",
		.origin = "spool",
		.agent = "strategy_analyst",
		.source = "koyfin",
		.job_file = "nightly.ini",
		.sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		.timeframe = "1d",
		.start = "2025-01-01",
		.end = "2025-12-31",
		.created_ms = 1767225600123,
		.priority = -5,
		.concurrency = 4,
		.max_attempts = 3,
		.timeout_ms = 3600000,
		.batch_timeout_ms = 86400000,
		.delays_ms = delays,
		.ndelays = 5,
		.jitter_permille = 250,
		.retry_on = CAT_BIT(CAT_DATA) | CAT_BIT(CAT_TIMEOUT),
		.params = params,
		.nparams = 4,
		.total_items = NSYMS,
	};
}

static const char *conf_diff(const struct batch_conf *a, const struct batch_conf *b,
			     bool lists)
{
#define S(f) if (!streq(a->f, b->f)) return #f
#define N(f) if (a->f != b->f) return #f
	S(id); S(name); S(origin); S(agent); S(source); S(job_file); S(sha256);
	S(timeframe); S(start); S(end);
	N(created_ms); N(priority); N(concurrency); N(max_attempts);
	N(timeout_ms); N(batch_timeout_ms); N(jitter_permille); N(retry_on);
	N(total_items);
	if (lists) {
		N(ndelays); N(nparams);
		for (uint32_t i = 0; i < a->ndelays; i++)
			if (a->delays_ms[i] != b->delays_ms[i])
				return "delays_ms[]";
		for (uint32_t i = 0; i < a->nparams; i++)
			if (!streq(a->params[i].key, b->params[i].key) ||
			    !streq(a->params[i].value, b->params[i].value))
				return "params[]";
	}
#undef S
#undef N
	return NULL;
}

/* ---- record builders ---- */

static struct rec r_claimed(const struct batch_conf *c, int32_t pid)
{
	return (struct rec){ .type = R_CLAIMED, .conf = c, .pid = pid };
}

static struct rec r_items(uint32_t first, uint32_t n, const char *const *s)
{
	return (struct rec){ .type = R_ITEMS, .first = first, .n = n, .symbols = s };
}

static struct rec r_reserve(uint32_t item, uint32_t attempt)
{
	return (struct rec){ .type = R_RESERVE, .item = item, .attempt = attempt };
}

static struct rec r_release(uint32_t item, uint32_t attempt)
{
	return (struct rec){ .type = R_RELEASE, .item = item, .attempt = attempt };
}

static struct rec r_spawned(uint32_t item, uint32_t attempt, int64_t t, int32_t pid)
{
	return (struct rec){ .type = R_SPAWNED, .item = item, .attempt = attempt,
			     .time = t, .pid = pid };
}

static struct rec r_finished(uint32_t item, uint32_t attempt, int64_t t,
			     int outcome, int next_state)
{
	return (struct rec){ .type = R_FINISHED, .item = item, .attempt = attempt,
			     .time = t, .outcome = (uint8_t)outcome,
			     .next_state = (uint8_t)next_state,
			     .exit_code = outcome == OUT_SUCCEEDED ? 0 : -1,
			     .matches = -1, .progress = -1 };
}

static struct rec r_cancel(int64_t t, bool whole, int reason,
			   const uint32_t *idx, uint32_t n)
{
	return (struct rec){ .type = R_CANCEL, .time = t, .whole = whole,
			     .reason = (uint8_t)reason, .indexes = idx, .n = n };
}

static struct rec r_requeue(int64_t t, const uint32_t *idx, uint32_t n)
{
	return (struct rec){ .type = R_REQUEUE, .time = t, .indexes = idx, .n = n };
}

static struct rec r_final(int64_t t, int status)
{
	return (struct rec){ .type = R_FINAL, .time = t, .status = (uint8_t)status };
}

/* Encode, decode, apply: what replay does.  -2 when decoding fails. */
static int apply_codec(struct batch *b, const struct rec *r)
{
	struct sb buf = SB_INIT;
	struct rec back;
	int rc;
	rec_encode(r, &buf);
	/* An exact-size copy, so that a sanitizer sees any overread. */
	unsigned char *p = malloc(buf.len);
	memcpy(p, buf.buf, buf.len);
	if (rec_decode(p, buf.len, &back) < 0)
		rc = -2;
	else
		rc = batch_apply(b, &back);
	free(p);
	sb_release(&buf);
	return rc;
}

/* ---- comparing two batches ---- */

static const char *attempt_diff(const struct attempt *a, const struct attempt *b)
{
#define N(f) if (a->f != b->f) return "attempt." #f
	N(started_ms); N(completed_ms); N(pid); N(exit_code); N(signal);
	N(outcome); N(category); N(cpu_user_ms); N(cpu_system_ms); N(max_rss_kb);
#undef N
	if (!streq(a->error_message, b->error_message))
		return "attempt.error_message";
	return NULL;
}

static char diffbuf[256];

static const char *batch_diff(const struct batch *a, const struct batch *b)
{
	const char *w;
#define N(f) if (a->f != b->f) return #f
	N(claimed); N(nitems); N(started_ms); N(completed_ms); N(final);
	N(final_status); N(user_cancelled); N(owner_pid); N(attempts_total);
	N(cpu_user_ms); N(cpu_system_ms); N(max_rss_kb);
#undef N
	if (a->claimed && (w = conf_diff(&a->c, &b->c, true)))
		return w;
	for (int s = 0; s < ST_COUNT; s++)
		if (a->count[s] != b->count[s]) {
			snprintf(diffbuf, sizeof(diffbuf), "count[%s]", state_name(s));
			return diffbuf;
		}
	if (batch_status(a) != batch_status(b))
		return "batch_status";
	for (size_t i = 0; i < a->nitems; i++) {
		const struct item *x = &a->items[i], *y = &b->items[i];
		const char *f = NULL;
#define N(fl) if (!f && x->fl != y->fl) f = #fl
#define S(fl) if (!f && !streq(x->fl, y->fl)) f = #fl
		S(symbol); N(nattempts); N(failures); N(state); N(cancel_requested);
		N(matches); N(progress); S(error_type); S(source); S(failure_group);
		N(next_retry_at); N(completed_ms);
#undef N
#undef S
		for (uint16_t k = 0; !f && k < x->nattempts; k++)
			f = attempt_diff(&x->log[k], &y->log[k]);
		if (f) {
			snprintf(diffbuf, sizeof(diffbuf), "item %zu (%s): %s", i,
				 x->symbol ? x->symbol : "?", f);
			return diffbuf;
		}
	}
	return NULL;
}

/* Counters add up and agree with the items. */
static const char *counts_consistent(const struct batch *b)
{
	size_t n[ST_COUNT] = { 0 }, total = 0;
	for (size_t i = 0; i < b->nitems; i++)
		n[b->items[i].state]++;
	for (int s = 0; s < ST_COUNT; s++) {
		if (n[s] != b->count[s]) {
			snprintf(diffbuf, sizeof(diffbuf), "count[%d] is %zu, items say %zu",
				 s, b->count[s], n[s]);
			return diffbuf;
		}
		total += b->count[s];
	}
	return total == b->nitems ? NULL : "counts do not add up to nitems";
}

/* Replay journal `name` into a fresh batch. */
static int replay(const char *name, struct batch *b, struct journal *j)
{
	batch_init(b);
	return journal_open(j, dfd, name, false, batch_replay, b);
}

/* ---- 1. the codec ---- */

/* A little varint reader to look inside lists. */
static uint64_t rd_u(const unsigned char **p, const unsigned char *end, bool *bad)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	*bad = true;
	return 0;
}

static bool list_strings_are(const struct rec_list *l, const char *const *want,
			     uint32_t n)
{
	const unsigned char *p = l->p, *end = l->p + l->len;
	bool bad = false;
	if (l->n != n)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t len = rd_u(&p, end, &bad);
		if (bad || len == 0 || len > (uint64_t)(end - p) ||
		    strcmp((const char *)p, want[i]) || strlen(want[i]) + 1 != len)
			return false;
		p += len;
	}
	return p == end;
}

static bool list_u_are(const struct rec_list *l, const uint32_t *want, uint32_t n)
{
	const unsigned char *p = l->p, *end = l->p + l->len;
	bool bad = false;
	if (l->n != n)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (rd_u(&p, end, &bad) != want[i] || bad)
			return false;
	return p == end;
}

/* Every encoding the codec tests use, kept for the rejection tests. */
static struct sb encodings[32];
static const char *enc_names[32];
static int nenc;

static void keep_encoding(const char *name, const struct rec *r)
{
	struct sb *s = &encodings[nenc];
	*s = (struct sb)SB_INIT;
	rec_encode(r, s);
	enc_names[nenc++] = name;
}

static int decode_copy(const void *buf, size_t len, struct rec *r)
{
	unsigned char *p = malloc(len ? len : 1);
	memcpy(p, buf, len);
	int rc = rec_decode(p, len, r);
	free(p);	/* r's strings dangle now: callers only look at rc */
	return rc;
}

static void test_codec(void)
{
	struct batch_conf c = full_conf();
	struct sb buf = SB_INIT;
	struct rec r, d;
	struct batch b;
	const char *w;

	/* CLAIMED, every field set. */
	r = r_claimed(&c, 12345);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0, "CLAIMED decodes");
	is_int(d.type, R_CLAIMED, "CLAIMED type");
	w = conf_diff(&c, &d.decoded, false);
	ok(!w, "CLAIMED scalar and string fields round-trip%s%s", w ? ": " : "", w ? w : "");
	ok(d.conf == &d.decoded, "decoded conf points at the decoded copy");
	is_int(d.pid, 12345, "CLAIMED pid");
	is_int(d.delays.n, 5, "CLAIMED delays count");
	is_int(d.params.n, 4, "CLAIMED params count");
	batch_init(&b);
	ok(batch_apply(&b, &d) == 0, "CLAIMED applies");
	w = conf_diff(&c, &b.c, true);
	ok(!w, "applied conf equals the original, delays and params included%s%s",
	   w ? ": " : "", w ? w : "");
	ok(b.c.id != c.id && b.c.params[2].value != params[2].value,
	   "the batch owns copies of the strings");
	is_int(b.owner_pid, 12345, "owner_pid from CLAIMED");
	ok(b.claimed && b.nitems == 0, "claimed, no items yet");
	is_int(batch_status(&b), BS_PENDING, "a claimed batch is pending");
	batch_release(&b);
	keep_encoding("CLAIMED", &r);

	/* CLAIMED, optional strings NULL, extreme numbers, empty lists. */
	struct batch_conf c2 = {
		.id = "x", .agent = "a", .created_ms = INT64_MIN,
		.priority = INT32_MIN, .concurrency = INT32_MAX,
		.max_attempts = -1, .timeout_ms = INT64_MAX,
		.batch_timeout_ms = -1, .jitter_permille = UINT32_MAX,
		.retry_on = UINT32_MAX, .total_items = 0,
	};
	r = r_claimed(&c2, -7);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && !conf_diff(&c2, &d.decoded, false) &&
		   d.pid == -7 && d.delays.n == 0 && d.params.n == 0 &&
		   !d.decoded.name && !d.decoded.end,
	   "CLAIMED with NULL strings, extreme numbers and empty lists round-trips");
	/* The earliest time that applies (test_wild_times). */
	c2.created_ms = d.decoded.created_ms = -253402300799999LL;
	batch_init(&b);
	ok(batch_apply(&b, &d) < 0 && !b.claimed &&
		   strstr(b.forged, "number (priority"),
	   "but numbers no job may give do not apply (%s)", b.forged);
	batch_release(&b);
	keep_encoding("CLAIMED minimal", &r);
	struct batch_conf c3 = { .id = "x", .agent = "a", .priority = -100,
				 .concurrency = 65535, .max_attempts = 1000 };
	r = r_claimed(&c3, 1);
	rec_encode(&r, &buf);
	batch_init(&b);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && batch_apply(&b, &d) == 0 &&
		   !conf_diff(&c3, &b.c, true) && !b.c.name,
	   "CLAIMED with NULL strings and numbers at a job's bounds applies "
	   "(NULL stays NULL)");
	batch_release(&b);

	/* CLAIMED without id or agent is not a claim. */
	c2.id = NULL;
	r = r_claimed(&c2, 1);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) < 0, "CLAIMED without an id is rejected");
	c2.id = "x";
	c2.agent = NULL;
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) < 0, "CLAIMED without an agent is rejected");

	/* ITEMS */
	r = r_items(7, 4, syms + 2);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_ITEMS &&
		   d.first == 7 && d.n == 4 && list_strings_are(&d.list, syms + 2, 4),
	   "ITEMS round-trips (first, count, symbols)");
	keep_encoding("ITEMS", &r);
	r = r_items(0, 0, NULL);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.n == 0 && d.list.len == 0,
	   "an empty ITEMS round-trips");

	/* RESERVE, RELEASE */
	r = r_reserve(UINT32_MAX, 65535);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_RESERVE &&
		   d.item == UINT32_MAX && d.attempt == 65535,
	   "RESERVE round-trips");
	keep_encoding("RESERVE", &r);
	r = r_release(123456, UINT32_MAX);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_RELEASE &&
		   d.item == 123456 && d.attempt == UINT32_MAX,
	   "RELEASE round-trips");
	keep_encoding("RELEASE", &r);

	/* SPAWNED */
	r = r_spawned(3, 2, INT64_MIN, INT32_MIN);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_SPAWNED &&
		   d.item == 3 && d.attempt == 2 && d.time == INT64_MIN &&
		   d.pid == INT32_MIN,
	   "SPAWNED round-trips (negative time and pid)");
	r = r_spawned(0, 1, 1767225600123, 4194304);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.time == 1767225600123 &&
		   d.pid == 4194304,
	   "SPAWNED round-trips (real time and pid)");
	keep_encoding("SPAWNED", &r);

	/* FINISHED, every field */
	r = r_finished(5, 3, INT64_MAX, OUT_FAILED, ST_RETRY_WAIT);
	r.exit_code = INT32_MIN;
	r.signal = -1;
	r.category = CAT_MEMORY;
	r.error_type = "RateLimitError";
	r.error_message = "429 Too Many Requests — “quoted” ✓\ttab";
	r.source = "koyfin";
	r.matches = INT64_MAX;
	r.progress = INT32_MAX;
	r.cpu_user_ms = UINT32_MAX;
	r.cpu_system_ms = 1;
	r.max_rss_kb = 0x80000000u;
	r.next_retry_at = INT64_MIN;
	r.counts_failure = 1;
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_FINISHED &&
		   d.item == 5 && d.attempt == 3 && d.time == INT64_MAX &&
		   d.outcome == OUT_FAILED && d.exit_code == INT32_MIN &&
		   d.signal == -1 && d.category == CAT_MEMORY &&
		   streq(d.error_type, r.error_type) &&
		   streq(d.error_message, r.error_message) &&
		   streq(d.source, "koyfin") && d.matches == INT64_MAX &&
		   d.progress == INT32_MAX && d.cpu_user_ms == UINT32_MAX &&
		   d.cpu_system_ms == 1 && d.max_rss_kb == 0x80000000u &&
		   d.next_state == ST_RETRY_WAIT && d.next_retry_at == INT64_MIN &&
		   d.counts_failure == 1,
	   "FINISHED round-trips with every field set");
	keep_encoding("FINISHED", &r);
	r = r_finished(0, 1, 0, OUT_INTERRUPTED, ST_PENDING);
	r.matches = -1;
	r.progress = -1;
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && !d.error_type &&
		   !d.error_message && !d.source && d.matches == -1 &&
		   d.progress == -1 && d.exit_code == -1,
	   "FINISHED with NULL strings and -1 numbers round-trips");
	keep_encoding("FINISHED minimal", &r);
	r.error_type = "";
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.error_type &&
		   !*d.error_type,
	   "an empty string stays empty, not NULL");

	/* FINISHED with a warning: a flag in the outcome, the text at the end. */
	r = r_finished(2, 1, 77, OUT_SUCCEEDED, ST_SUCCEEDED);
	r.warning = "result JSON unreadable: truncated after 20 bytes; its figures are lost";
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.outcome == OUT_SUCCEEDED &&
		   streq(d.warning, r.warning) && d.next_state == ST_SUCCEEDED,
	   "FINISHED with a warning round-trips");
	keep_encoding("FINISHED with a warning", &r);
	r.warning = NULL;
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && !d.warning,
	   "FINISHED without a warning decodes with none");
	{
		/* A FINISHED record as journals held it before warnings existed:
		 * item 0, attempt 1, time 0, succeeded, exit 0, signal 0, no
		 * category, no strings, matches -1, progress -1, no CPU, next
		 * state succeeded, no retry, no failure, no group. */
		static const unsigned char old[] = {
			R_FINISHED, 0, 1, 0, OUT_SUCCEEDED, 0, 0, 0, 0, 0, 0,
			1, 1, 0, 0, 0, ST_SUCCEEDED, 0, 0, 0 };
		ok(rec_decode(old, sizeof(old), &d) == 0 && d.outcome == OUT_SUCCEEDED &&
			   d.matches == -1 && d.next_state == ST_SUCCEEDED && !d.warning,
		   "an old FINISHED record (no warning) still decodes");
		r = r_finished(0, 1, 0, OUT_SUCCEEDED, ST_SUCCEEDED);
		rec_encode(&r, &buf);
		ok(buf.len == sizeof(old) && !memcmp(buf.buf, old, sizeof(old)),
		   "... and a record without a warning is written as before");
		unsigned char flagged[sizeof(old) + 4];
		memcpy(flagged, old, sizeof(old));
		flagged[4] = OUT_SUCCEEDED | 0x40;
		ok(rec_decode(flagged, sizeof(old), &d) < 0,
		   "the warning flag without a warning is rejected");
		memcpy(flagged + sizeof(old), "\x03hi", 4);
		ok(rec_decode(flagged, sizeof(old) + 4, &d) == 0 && streq(d.warning, "hi"),
		   "the warning flag with its text decodes");
		flagged[4] = OUT_SUCCEEDED | 0x80;
		ok(rec_decode(flagged, sizeof(old), &d) < 0,
		   "an outcome beyond a byte is rejected");
	}

	/* CANCEL, REQUEUE */
	static const uint32_t idx[] = { 0, 5, 127, 128, UINT32_MAX };
	r = r_cancel(-42, true, CANCEL_SHUTDOWN, idx, 5);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_CANCEL &&
		   d.time == -42 && d.whole == 1 && d.reason == CANCEL_SHUTDOWN &&
		   d.n == 5 && list_u_are(&d.list, idx, 5),
	   "CANCEL round-trips");
	keep_encoding("CANCEL", &r);
	r = r_requeue(99, idx, 5);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_REQUEUE &&
		   d.time == 99 && d.n == 5 && list_u_are(&d.list, idx, 5),
	   "REQUEUE round-trips");
	keep_encoding("REQUEUE", &r);

	/* FINAL, ADOPTED */
	r = r_final(1767225600999, BS_PARTIAL);
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_FINAL &&
		   d.time == 1767225600999 && d.status == BS_PARTIAL,
	   "FINAL round-trips");
	keep_encoding("FINAL", &r);
	r = (struct rec){ .type = R_ADOPTED, .time = 5, .pid = 777 };
	rec_encode(&r, &buf);
	ok(rec_decode(buf.buf, buf.len, &d) == 0 && d.type == R_ADOPTED &&
		   d.time == 5 && d.pid == 777,
	   "ADOPTED round-trips");
	keep_encoding("ADOPTED", &r);

	/* Rejections: every truncation, trailing garbage. */
	for (int e = 0; e < nenc; e++) {
		const struct sb *s = &encodings[e];
		int bad = 0;
		for (size_t len = 0; len < s->len; len++)
			if (decode_copy(s->buf, len, &d) == 0 && bad++ < 3)
				diag("%s truncated to %zu of %zu bytes decodes",
				     enc_names[e], len, s->len);
		ok(!bad, "%s: each of %zu truncations is rejected", enc_names[e], s->len);
		unsigned char *p = malloc(s->len + 1);
		memcpy(p, s->buf, s->len);
		int good = rec_decode(p, s->len, &d) == 0;
		p[s->len] = 0;
		int trail0 = rec_decode(p, s->len + 1, &d);
		p[s->len] = 0x81;
		int trail1 = rec_decode(p, s->len + 1, &d);
		free(p);
		ok(good && trail0 < 0 && trail1 < 0,
		   "%s: decodes whole, rejected with a trailing byte", enc_names[e]);
	}

	/* Unknown types. */
	unsigned char t0[] = { 0 }, tmax[] = { R_TYPE_MAX, 0, 0 },
		      tbig[] = { 0x81, 0x80, 0x80, 0x80, 0x80, 0x01 };
	ok(rec_decode(t0, 1, &d) < 0, "type 0 is rejected");
	ok(rec_decode(tmax, 1, &d) < 0 && rec_decode(tmax, 3, &d) < 0,
	   "type R_TYPE_MAX is rejected");
	ok(rec_decode(tbig, sizeof(tbig), &d) < 0,
	   "a type that only matches modulo 256 is rejected");
	ok(rec_decode(t0, 0, &d) < 0, "an empty payload is rejected");

	/* Over-long and out-of-range numbers. */
	unsigned char longv[] = { R_RESERVE, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
				  0x80, 0x80, 0x80, 0x80, 0x00, 0x01 };
	ok(rec_decode(longv, sizeof(longv), &d) < 0,
	   "a varint of more than 10 bytes is rejected");
	unsigned char big32[] = { R_RESERVE, 0x80, 0x80, 0x80, 0x80, 0x10, 0x01 };
	ok(rec_decode(big32, sizeof(big32), &d) < 0,
	   "an item index of 2^32 is rejected");
	/* SPAWNED pid zigzag 2^32 (i.e. 2^31 after unzigzag) */
	unsigned char bigpid[] = { R_SPAWNED, 0, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x10 };
	ok(rec_decode(bigpid, sizeof(bigpid), &d) < 0,
	   "a pid beyond int32 is rejected");

	/* Strings: embedded NUL, missing terminator, length past the end. */
	r = r_finished(0, 1, 0, OUT_FAILED, ST_FAILED);
	r.error_type = "AxB";
	r.error_message = "m";
	rec_encode(&r, &buf);
	char *at = memmem(buf.buf, buf.len, "AxB", 4);
	ok(at && rec_decode(buf.buf, buf.len, &d) == 0, "(a FINISHED with error_type AxB)");
	if (at) {
		at[1] = '\0';
		ok(decode_copy(buf.buf, buf.len, &d) < 0,
		   "a string with an embedded NUL is rejected");
		at[1] = 'x';
		at[3] = 'C';
		ok(decode_copy(buf.buf, buf.len, &d) < 0,
		   "a string without its terminating NUL is rejected");
		at[3] = '\0';
		at[-1] = 0x7f; /* length 126 > what is left */
		ok(decode_copy(buf.buf, buf.len, &d) < 0,
		   "a string length past the payload is rejected");
	}
	r = r_items(0, 2, syms);
	rec_encode(&r, &buf);
	at = memmem(buf.buf, buf.len, "MSFT", 5);
	if (at) {
		at[4] = 'X';
		/* The record decodes (the list is opaque) but cannot apply. */
		struct batch_conf cc = full_conf();
		struct rec cl = r_claimed(&cc, 1);
		batch_init(&b);
		apply_codec(&b, &cl);
		int rc = decode_copy(buf.buf, buf.len, &d);
		unsigned char *p = malloc(buf.len);
		memcpy(p, buf.buf, buf.len);
		if (rc == 0 && rec_decode(p, buf.len, &d) == 0)
			rc = batch_apply(&b, &d);
		free(p);
		ok(rc < 0, "ITEMS with an unterminated symbol does not apply");
		batch_release(&b);
	}

	/* List count that disagrees with its bytes. */
	r = r_cancel(1, false, CANCEL_USER, idx, 2);
	rec_encode(&r, &buf);
	{
		struct batch_conf cc = full_conf();
		struct rec cl = r_claimed(&cc, 1), it = r_items(0, NSYMS, syms);
		batch_init(&b);
		apply_codec(&b, &cl);
		apply_codec(&b, &it);
		/* bytes: type, time, whole, reason, n=2, len=2, 0, 5 */
		unsigned char *p = (unsigned char *)buf.buf;
		ok(buf.len == 8 && p[4] == 2 && p[5] == 2, "(CANCEL layout as expected)");
		p[4] = 3; /* claims 3 indexes, holds 2 */
		int rc = rec_decode(p, buf.len, &d);
		if (rc == 0)
			rc = batch_apply(&b, &d);
		ok(rc < 0, "a list whose count exceeds its bytes does not apply");
		rec_encode(&r, &buf);
		p = (unsigned char *)buf.buf;
		p[4] = 1; /* claims 1, holds 2 */
		rc = rec_decode(p, buf.len, &d);
		if (rc == 0)
			rc = batch_apply(&b, &d);
		ok(rc < 0, "a list whose bytes exceed its count does not apply");
		batch_release(&b);
	}

	for (int e = 0; e < nenc; e++)
		sb_release(&encodings[e]);
	sb_release(&buf);

	/* Names. */
	is_str(state_name(ST_STARTING), "pending", "STARTING shows as pending");
	is_str(state_name(ST_RETRY_WAIT), "retry_wait", "state_name(RETRY_WAIT)");
	is_str(state_name(99), "?", "state_name out of range");
	is_str(outcome_name(OUT_INTERRUPTED), "interrupted", "outcome_name");
	ok(!outcome_name(OUT_NONE) && !outcome_name(9), "outcome_name of none/out of range is NULL");
	int names_ok = 1;
	for (int s = BS_PENDING; s <= BS_CANCELLED; s++)
		names_ok &= batch_status_parse(batch_status_name(s)) == s;
	ok(names_ok && batch_status_parse("bogus") == -1,
	   "batch_status_name/parse agree; unknown names are -1");
}

/* ---- 2. the state machine through batch_record() ---- */

static const char *ckitem(const struct batch *b, uint32_t i, int state,
			  uint16_t nattempts, uint16_t failures)
{
	const struct item *it = &b->items[i];
	static char why[200];
	if (it->state != state || it->nattempts != nattempts ||
	    it->failures != failures) {
		snprintf(why, sizeof(why),
			 "item %u: state %s/%d attempts %u failures %u, want %s/%d %u %u",
			 i, state_name(it->state), it->state, it->nattempts,
			 it->failures, state_name(state), state, nattempts, failures);
		return why;
	}
	return counts_consistent(b);
}

#define CHECK_ITEM(b, i, st, na, nf, name)                                   \
	do {                                                                 \
		const char *w_ = ckitem((b), (i), (st), (na), (nf));         \
		ok(!w_, "%s%s%s", (name), w_ ? ": " : "", w_ ? w_ : "");     \
	} while (0)

/* A journal and a batch recorded together. */
struct live {
	struct journal j;
	struct batch b;
	const char *name;
};

static void live_start(struct live *l, const char *name, struct batch_conf *c,
		       uint32_t first_chunk)
{
	struct rec r;
	l->name = name;
	unlinkat(dfd, name, 0);
	if (journal_create(&l->j, dfd, name) < 0) {
		printf("Bail out! journal_create: %s\n", strerror(errno));
		exit(255);
	}
	batch_init(&l->b);
	r = r_claimed(c, 4000);
	batch_record(&l->b, &l->j, &r);
	r = r_items(0, first_chunk, syms);
	batch_record(&l->b, &l->j, &r);
	r = r_items(first_chunk, c->total_items - first_chunk, syms + first_chunk);
	batch_record(&l->b, &l->j, &r);
}

static void rec(struct live *l, struct rec r)
{
	batch_record(&l->b, &l->j, &r);
}

/* Sync, replay twice into fresh batches, compare with the live one. */
static void check_replay(struct live *l, const char *what)
{
	struct batch b1, b2;
	struct journal j1, j2;
	ok(journal_sync(&l->j) == 0, "%s: journal_sync", what);
	int rc1 = replay(l->name, &b1, &j1);
	int rc2 = replay(l->name, &b2, &j2);
	ok(rc1 == 0 && rc2 == 0 && !j1.corrupt && !j2.corrupt && !j1.torn_bytes &&
		   j1.next_seq == l->j.next_seq,
	   "%s: the journal replays cleanly (%llu records)", what,
	   (unsigned long long)(j1.next_seq - 1));
	const char *w = batch_diff(&l->b, &b1);
	ok(!w, "%s: replayed batch equals the live one%s%s", what, w ? ": " : "",
	   w ? w : "");
	w = batch_diff(&b1, &b2);
	ok(!w, "%s: replaying twice gives the same batch%s%s", what, w ? ": " : "",
	   w ? w : "");
	journal_close(&j1);
	journal_close(&j2);
	batch_release(&b1);
	batch_release(&b2);
}

static void live_end(struct live *l)
{
	journal_close(&l->j);
	batch_release(&l->b);
	unlinkat(dfd, l->name, 0);
}

static void test_lifecycle(void)
{
	struct batch_conf c = full_conf();
	struct live L;
	struct batch *b = &L.b;
	struct rec r;

	c.total_items = 3;
	live_start(&L, "life", &c, 2);
	is_int(b->nitems, 3, "two ITEMS chunks make 3 items");
	ok(!strcmp(b->items[2].symbol, "BRK.B") && batch_item(b, "MSFT") == &b->items[1] &&
		   !batch_item(b, "NOPE"),
	   "symbols and batch_item lookup");
	is_int(b->count[ST_PENDING], 3, "all pending");
	is_int(batch_status(b), BS_PENDING, "status pending before anything starts");
	is_int(batch_open_items(b), 3, "3 open items");
	ok(b->items[0].matches == -1 && b->items[0].progress == -1 &&
		   !b->items[0].error_type && !b->items[0].nattempts,
	   "a new item has no matches, progress, error or attempts");

	/* Item 0: success. */
	rec(&L, r_reserve(0, 1));
	CHECK_ITEM(b, 0, ST_STARTING, 1, 0, "RESERVE: pending -> starting, attempt 1");
	is_int(b->items[0].log[0].exit_code, -1, "a reserved attempt has no exit code");
	is_int(b->items[0].log[0].started_ms, 0, "... and no start time");
	ok(batch_status(b) == BS_PENDING,
	   "status still pending while the only attempt is reserved, not spawned");
	rec(&L, r_spawned(0, 1, 1000, 4242));
	CHECK_ITEM(b, 0, ST_RUNNING, 1, 0, "SPAWNED: starting -> running");
	ok(b->items[0].log[0].started_ms == 1000 && b->items[0].log[0].pid == 4242,
	   "attempt start time and pid");
	is_int(b->started_ms, 1000, "batch started_ms is the first spawn");
	is_int(b->attempts_total, 1, "attempts_total 1");
	is_int(batch_status(b), BS_RUNNING, "status running");
	r = r_finished(0, 1, 1500, OUT_SUCCEEDED, ST_SUCCEEDED);
	r.exit_code = 0;
	r.matches = 12;
	r.progress = 1000;
	r.source = "koyfin";
	r.cpu_user_ms = 120;
	r.cpu_system_ms = 30;
	r.max_rss_kb = 20480;
	r.warning = "result JSON unreadable: empty; its figures are lost";
	rec(&L, r);
	CHECK_ITEM(b, 0, ST_SUCCEEDED, 1, 0, "FINISHED succeeded: running -> succeeded");
	{
		const struct item *it = &b->items[0];
		const struct attempt *a = &it->log[0];
		ok(it->matches == 12 && it->progress == 1000 &&
			   streq(it->source, "koyfin") && !it->error_type &&
			   it->completed_ms == 1500 && it->next_retry_at == 0,
		   "item fields after success");
		ok(a->outcome == OUT_SUCCEEDED && a->category == CAT_NONE &&
			   a->exit_code == 0 && a->signal == 0 && a->completed_ms == 1500 &&
			   a->cpu_user_ms == 120 && a->cpu_system_ms == 30 &&
			   a->max_rss_kb == 20480 && !a->error_message,
		   "attempt_log entry after success");
		ok(streq(a->warning, "result JSON unreadable: empty; its figures are lost"),
		   "the attempt keeps its warning");
	}
	is_int(batch_status(b), BS_RUNNING, "running while items remain");

	/* Item 1: fails, waits, fails for good. */
	rec(&L, r_reserve(1, 1));
	rec(&L, r_spawned(1, 1, 2000, 5001));
	r = r_finished(1, 1, 2600, OUT_FAILED, ST_RETRY_WAIT);
	r.exit_code = 65;
	r.category = CAT_DATA;
	r.error_type = "RateLimitError";
	r.error_message = "429 Too Many Requests ✓";
	r.source = "koyfin";
	r.progress = 400;
	r.cpu_user_ms = 5;
	r.max_rss_kb = 40000;
	r.next_retry_at = 99000;
	r.counts_failure = 1;
	rec(&L, r);
	CHECK_ITEM(b, 1, ST_RETRY_WAIT, 1, 1, "FINISHED failed: running -> retry_wait, 1 failure");
	ok(b->items[1].next_retry_at == 99000, "next_retry_at kept");
	ok(streq(b->items[1].error_type, "RateLimitError") && b->items[1].progress == 400 &&
		   b->items[1].matches == -1 && b->items[1].completed_ms == 0,
	   "error_type, progress; matches untouched; not completed");
	ok(b->items[1].log[0].outcome == OUT_FAILED && b->items[1].log[0].category == CAT_DATA &&
		   b->items[1].log[0].exit_code == 65 &&
		   streq(b->items[1].log[0].error_message, "429 Too Many Requests ✓") &&
		   !b->items[1].log[0].warning,
	   "attempt_log entry of the failure (no warning)");
	is_int(b->count[ST_RETRY_WAIT], 1, "count[retry_wait]");
	is_int(b->max_rss_kb, 40000, "batch max_rss_kb is the maximum");
	is_int(b->cpu_user_ms, 125, "batch cpu_user_ms is the sum");

	rec(&L, r_reserve(1, 2));
	CHECK_ITEM(b, 1, ST_STARTING, 2, 1, "RESERVE from retry_wait, attempt 2");
	is_int(b->items[1].next_retry_at, 0, "next_retry_at cleared on reserve");
	rec(&L, r_spawned(1, 2, 100000, 5002));
	r = r_finished(1, 2, 100300, OUT_FAILED, ST_FAILED);
	r.signal = SIGSEGV;
	r.category = CAT_ENGINE;
	r.error_type = "Crash";
	r.error_message = "killed by SIGSEGV";
	r.counts_failure = 1;
	r.cpu_system_ms = 7;
	rec(&L, r);
	CHECK_ITEM(b, 1, ST_FAILED, 2, 2, "second failure: final failed, 2 failures");
	ok(b->items[1].log[1].signal == SIGSEGV && b->items[1].log[1].exit_code == -1 &&
		   b->items[1].log[1].category == CAT_ENGINE &&
		   b->items[1].log[1].started_ms == 100000 &&
		   b->items[1].log[1].pid == 5002 &&
		   b->items[1].log[0].exit_code == 65,
	   "both attempts in the log");
	ok(streq(b->items[1].error_type, "Crash") && b->items[1].completed_ms == 100300 &&
		   b->items[1].next_retry_at == 0,
	   "final item fields");

	/* Item 2: interrupted while running, then while starting. */
	rec(&L, r_reserve(2, 1));
	rec(&L, r_spawned(2, 1, 3000, 6001));
	rec(&L, r_finished(2, 1, 3100, OUT_INTERRUPTED, ST_PENDING));
	CHECK_ITEM(b, 2, ST_PENDING, 1, 0, "interrupted from running -> pending, no failure");
	ok(b->items[2].log[0].outcome == OUT_INTERRUPTED && !b->items[2].error_type &&
		   b->items[2].completed_ms == 0,
	   "interrupted attempt logged, no error on the item");
	rec(&L, r_reserve(2, 2));
	rec(&L, r_finished(2, 2, 3200, OUT_INTERRUPTED, ST_PENDING));
	CHECK_ITEM(b, 2, ST_PENDING, 2, 0, "interrupted from starting (no SPAWNED) -> pending");
	ok(b->items[2].log[1].started_ms == 0 && b->items[2].log[1].outcome == OUT_INTERRUPTED,
	   "the never-spawned attempt has no start time");
	is_int(b->attempts_total, 4, "attempts_total counts spawns only");

	/* RELEASE gives the attempt back. */
	rec(&L, r_reserve(2, 3));
	CHECK_ITEM(b, 2, ST_STARTING, 3, 0, "reserve attempt 3");
	rec(&L, r_release(2, 3));
	CHECK_ITEM(b, 2, ST_PENDING, 2, 0, "RELEASE: starting -> pending, attempt count back to 2");
	rec(&L, r_reserve(2, 3));
	rec(&L, r_spawned(2, 3, 4000, 6003));
	r = r_finished(2, 3, 4100, OUT_FAILED, ST_FAILED);
	r.exit_code = 64;
	r.category = CAT_PARAM;
	r.error_type = "RateLimitError";
	r.counts_failure = 1;
	r.error_message = "bad lookback";
	rec(&L, r);
	CHECK_ITEM(b, 2, ST_FAILED, 3, 1, "item 2 final failed after the released attempt");
	ok(streq(b->items[2].error_type, "RateLimitError") &&
		   streq(b->items[2].log[2].error_message, "bad lookback"),
	   "item 2 error_type and message");
	is_int(batch_open_items(b), 0, "no open items");
	is_int(batch_final_status(b), BS_PARTIAL, "final status would be partial");
	ok(!b->final, "not final until the FINAL record");
	rec(&L, r_final(5000, batch_final_status(b)));
	ok(b->final && b->completed_ms == 5000, "FINAL: final, completed_ms");
	is_int(batch_status(b), BS_PARTIAL, "status partial");
	check_replay(&L, "partial batch");

	/* retry-failed: the failed item runs again in the same batch. */
	rec(&L, r_requeue(6000, (const uint32_t[]){ 2 }, 1));
	CHECK_ITEM(b, 2, ST_PENDING, 3, 0, "REQUEUE: failed -> pending, failures reset, attempts kept");
	is_int(b->items[2].completed_ms, 0, "requeued item is not completed");
	ok(!b->final && b->completed_ms == 0, "REQUEUE: the batch is no longer final");
	is_int(batch_status(b), BS_RUNNING, "status running again");
	rec(&L, r_reserve(2, 4));
	rec(&L, r_spawned(2, 4, 6100, 6004));
	r = r_finished(2, 4, 6200, OUT_FAILED, ST_RETRY_WAIT);
	r.error_type = "RateLimitError";
	r.category = CAT_DATA;
	r.counts_failure = 1;
	r.next_retry_at = 7000;
	rec(&L, r);
	CHECK_ITEM(b, 2, ST_RETRY_WAIT, 4, 1, "requeued item fails once more: retry_wait");
	rec(&L, r_reserve(2, 5));
	rec(&L, r_spawned(2, 5, 8000, 6005));
	r = r_finished(2, 5, 8100, OUT_SUCCEEDED, ST_SUCCEEDED);
	r.matches = 0;
	rec(&L, r);
	CHECK_ITEM(b, 2, ST_SUCCEEDED, 5, 1, "requeued item succeeds on attempt 5");
	ok(!b->items[2].error_type && b->items[2].matches == 0,
	   "success clears error_type; matches 0 is kept");
	rec(&L, r_requeue(9000, (const uint32_t[]){ 1 }, 1));
	CHECK_ITEM(b, 1, ST_PENDING, 2, 0, "requeue item 1");
	rec(&L, r_reserve(1, 3));
	rec(&L, r_spawned(1, 3, 9100, 5003));
	rec(&L, r_finished(1, 3, 9200, OUT_SUCCEEDED, ST_SUCCEEDED));
	is_int(batch_final_status(b), BS_COMPLETED, "all succeeded: completed");
	rec(&L, r_final(9300, BS_COMPLETED));
	is_int(batch_status(b), BS_COMPLETED, "status completed");
	rec(&L, ((struct rec){ .type = R_ADOPTED, .time = 9400, .pid = 31337 }));
	is_int(b->owner_pid, 31337, "ADOPTED sets owner_pid");
	check_replay(&L, "completed batch");
	live_end(&L);

	/* Interning across items. */
	c.total_items = 3;
	live_start(&L, "intern", &c, 3);
	for (uint32_t i = 0; i < 3; i++) {
		rec(&L, r_reserve(i, 1));
		rec(&L, r_spawned(i, 1, 10 + i, 100 + (int32_t)i));
		r = r_finished(i, 1, 20 + i, OUT_FAILED, ST_FAILED);
		char et[32], src[32];
		snprintf(et, sizeof(et), "RateLimitError");
		snprintf(src, sizeof(src), "koyfin");
		r.error_type = et;
		r.source = src;
		r.category = CAT_DATA;
		r.counts_failure = 1;
		rec(&L, r);
	}
	ok(b->items[0].error_type == b->items[1].error_type &&
		   b->items[1].error_type == b->items[2].error_type &&
		   streq(b->items[0].error_type, "RateLimitError"),
	   "error_type is interned: one pointer for equal strings");
	ok(b->items[0].source == b->items[2].source, "source is interned");
	is_int(batch_final_status(b), BS_FAILED, "none succeeded: failed");
	rec(&L, r_final(30, BS_FAILED));
	is_int(batch_status(b), BS_FAILED, "status failed");
	check_replay(&L, "failed batch");
	live_end(&L);
}

static void test_cancel(void)
{
	struct batch_conf c = full_conf();
	struct live L;
	struct batch *b = &L.b;
	struct rec r;

	live_start(&L, "cancel", &c, 5);
	/* 0 succeeded, 1 failed, 2 pending, 3 running, 4 retry_wait,
	 * 5 paused, 6 starting, 7 pending (cancelled alone first). */
	rec(&L, r_reserve(0, 1));
	rec(&L, r_spawned(0, 1, 100, 1));
	rec(&L, r_finished(0, 1, 110, OUT_SUCCEEDED, ST_SUCCEEDED));
	rec(&L, r_reserve(1, 1));
	rec(&L, r_spawned(1, 1, 100, 2));
	r = r_finished(1, 1, 120, OUT_FAILED, ST_FAILED);
	r.category = CAT_UNKNOWN;
	r.exit_code = 3;
	r.counts_failure = 1;
	rec(&L, r);
	rec(&L, r_reserve(3, 1));
	rec(&L, r_spawned(3, 1, 130, 3));
	rec(&L, r_reserve(4, 1));
	rec(&L, r_spawned(4, 1, 130, 4));
	r = r_finished(4, 1, 140, OUT_FAILED, ST_RETRY_WAIT);
	r.category = CAT_TIMEOUT;
	r.next_retry_at = 5000;
	r.counts_failure = 1;
	rec(&L, r);
	rec(&L, r_reserve(5, 1));
	rec(&L, r_spawned(5, 1, 130, 5));
	r = r_finished(5, 1, 150, OUT_FAILED, ST_PAUSED);
	r.category = CAT_DATA;
	r.counts_failure = 1;
	rec(&L, r);
	rec(&L, r_reserve(6, 1));
	ok(b->count[ST_SUCCEEDED] == 1 && b->count[ST_FAILED] == 1 &&
		   b->count[ST_PENDING] == 2 && b->count[ST_RUNNING] == 1 &&
		   b->count[ST_RETRY_WAIT] == 1 && b->count[ST_PAUSED] == 1 &&
		   b->count[ST_STARTING] == 1 && !counts_consistent(b),
	   "set up: one item in each state");

	/* Cancel listed items: a pending one and a final one. */
	rec(&L, r_cancel(200, false, CANCEL_USER, (const uint32_t[]){ 7, 0 }, 2));
	CHECK_ITEM(b, 7, ST_CANCELLED, 0, 0, "CANCEL of a listed pending item -> cancelled");
	CHECK_ITEM(b, 0, ST_SUCCEEDED, 1, 0, "CANCEL of a listed succeeded item changes nothing");
	ok(!b->user_cancelled, "cancelling items is not cancelling the batch");
	is_int(b->items[7].completed_ms, 200, "cancelled item completed_ms");
	check_replay(&L, "after a listed cancel");

	/* Cancel the whole batch. */
	rec(&L, r_cancel(300, true, CANCEL_USER, NULL, 0));
	CHECK_ITEM(b, 2, ST_CANCELLED, 0, 0, "whole CANCEL: pending -> cancelled");
	CHECK_ITEM(b, 3, ST_RUNNING, 1, 0, "whole CANCEL: running stays running...");
	ok(b->items[3].cancel_requested, "... with cancel_requested");
	CHECK_ITEM(b, 4, ST_CANCELLED, 1, 1, "whole CANCEL: retry_wait -> cancelled");
	is_int(b->items[4].next_retry_at, 0, "next_retry_at cleared");
	CHECK_ITEM(b, 5, ST_CANCELLED, 1, 1, "whole CANCEL: paused -> cancelled");
	CHECK_ITEM(b, 6, ST_CANCELLED, 0, 0, "whole CANCEL: starting -> cancelled, the reserved attempt given back");
	CHECK_ITEM(b, 1, ST_FAILED, 1, 1, "whole CANCEL: failed stays failed");
	ok(b->user_cancelled, "user_cancelled set");
	is_int(batch_open_items(b), 1, "one open item (the running one)");
	is_int(batch_status(b), BS_RUNNING, "still running");
	r = r_finished(3, 1, 400, OUT_CANCELLED, ST_CANCELLED);
	r.signal = SIGTERM;
	rec(&L, r);
	CHECK_ITEM(b, 3, ST_CANCELLED, 1, 0, "the running item finishes cancelled");
	is_int(b->items[3].log[0].outcome, OUT_CANCELLED, "attempt outcome cancelled");
	is_int(batch_final_status(b), BS_CANCELLED, "final status cancelled");
	rec(&L, r_final(500, BS_CANCELLED));
	is_int(batch_status(b), BS_CANCELLED, "status cancelled");
	check_replay(&L, "cancelled batch");
	live_end(&L);

	/* Paused: nothing running, every open item paused. */
	c.total_items = 3;
	live_start(&L, "paused", &c, 3);
	for (uint32_t i = 0; i < 3; i++) {
		rec(&L, r_reserve(i, 1));
		rec(&L, r_spawned(i, 1, 100, (int32_t)i + 1));
	}
	rec(&L, r_finished(0, 1, 110, OUT_SUCCEEDED, ST_SUCCEEDED));
	r = r_finished(1, 1, 120, OUT_FAILED, ST_PAUSED);
	r.category = CAT_DATA;
	r.counts_failure = 1;
	rec(&L, r);
	is_int(batch_status(b), BS_RUNNING, "one paused, one running: running");
	r.item = 2;
	rec(&L, r);
	is_int(batch_status(b), BS_PAUSED, "every open item paused: paused");
	rec(&L, r_requeue(130, NULL, 0));
	is_int(batch_status(b), BS_PAUSED, "an empty REQUEUE changes nothing");
	check_replay(&L, "paused batch");
	live_end(&L);

	/* A cancel for the batch timeout or a shutdown is not the user's. */
	c.total_items = 2;
	live_start(&L, "cancel2", &c, 2);
	rec(&L, r_reserve(0, 1));
	rec(&L, r_spawned(0, 1, 100, 1));
	rec(&L, r_finished(0, 1, 110, OUT_SUCCEEDED, ST_SUCCEEDED));
	rec(&L, r_cancel(200, true, CANCEL_BATCH_TIMEOUT, NULL, 0));
	ok(!b->user_cancelled && b->items[1].state == ST_CANCELLED,
	   "a batch-timeout cancel cancels items but is not user_cancelled");
	is_int(batch_final_status(b), BS_PARTIAL, "... and ends partial");
	check_replay(&L, "batch-timeout cancel");
	live_end(&L);
}

/* ---- batch_apply refuses what does not fit ---- */

/* A batch with 3 items: 0 running (attempt 2), 1 pending, 2 failed. */
static void base(struct batch *b, struct batch_conf *c)
{
	struct rec r;
	*c = full_conf();
	c->total_items = 4;
	batch_init(b);
	r = r_claimed(c, 1);
	apply_codec(b, &r);
	r = r_items(0, 3, syms);
	apply_codec(b, &r);
	r = r_reserve(0, 1);
	apply_codec(b, &r);
	r = r_finished(0, 1, 5, OUT_INTERRUPTED, ST_PENDING);
	apply_codec(b, &r);
	r = r_reserve(0, 2);
	apply_codec(b, &r);
	r = r_spawned(0, 2, 10, 100);
	apply_codec(b, &r);
	r = r_reserve(2, 1);
	apply_codec(b, &r);
	r = r_spawned(2, 1, 10, 101);
	apply_codec(b, &r);
	r = r_finished(2, 1, 20, OUT_FAILED, ST_FAILED);
	r.category = CAT_DATA;
	apply_codec(b, &r);
}

static void reject(const char *what, struct rec r)
{
	struct batch b, ref;
	struct batch_conf c1, c2;
	base(&b, &c1);
	base(&ref, &c2);
	const char *w = counts_consistent(&b);
	if (w || b.items[0].state != ST_RUNNING || b.items[2].state != ST_FAILED) {
		ok(0, "base batch: %s", w ? w : "states");
		return;
	}
	int rc = apply_codec(&b, &r);
	w = batch_diff(&ref, &b);
	if (!w)
		w = counts_consistent(&b);
	ok((rc == -1 || rc == -2) && !w, "rejects %s, batch unchanged (rc %d%s%s)",
	   what, rc, w ? ", changed: " : "", w ? w : "");
	batch_release(&b);
	batch_release(&ref);
}

/* Same, and the batch must be left exactly as it was. */
static int reject_clean(struct rec r, const char **w)
{
	struct batch b, ref;
	struct batch_conf c1, c2;
	base(&b, &c1);
	base(&ref, &c2);
	int rc = apply_codec(&b, &r);
	*w = batch_diff(&ref, &b);
	if (!*w)
		*w = counts_consistent(&b);
	batch_release(&b);
	batch_release(&ref);
	return rc;
}

static void test_reject(void)
{
	struct batch b;
	struct batch_conf c = full_conf();
	struct rec r;
	const char *w;
	int rc;

	/* Before CLAIMED. */
	static const int types[] = { R_ITEMS, R_RESERVE, R_SPAWNED, R_FINISHED,
				     R_RELEASE, R_CANCEL, R_REQUEUE, R_FINAL,
				     R_ADOPTED };
	int bad = 0;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		batch_init(&b);
		r = (struct rec){ .type = (uint8_t)types[t], .outcome = OUT_FAILED,
				  .next_state = ST_FAILED, .status = BS_FAILED,
				  .whole = 1 };
		if (types[t] == R_ITEMS)
			r = r_items(0, 1, syms);
		if (apply_codec(&b, &r) != -1 || b.claimed || b.nitems) {
			bad++;
			diag("record type %d applied before CLAIMED", types[t]);
		}
		batch_release(&b);
	}
	ok(!bad, "no record applies before CLAIMED");

	batch_init(&b);
	r = r_claimed(&c, 1);
	ok(apply_codec(&b, &r) == 0, "CLAIMED");
	ok(apply_codec(&b, &r) == -1, "a second CLAIMED is rejected");
	r = r_items(1, 1, syms);
	ok(apply_codec(&b, &r) == -1, "ITEMS with the wrong first index (1, want 0)");
	r = r_items(0, NSYMS + 1, (const char *const[]){ "A", "B", "C", "D", "E", "F", "G", "H", "I" });
	ok(apply_codec(&b, &r) == -1, "ITEMS beyond total_items");
	r = r_items(0, 4, syms);
	ok(apply_codec(&b, &r) == 0, "ITEMS 0..3");
	r = r_items(3, 1, syms);
	ok(apply_codec(&b, &r) == -1, "ITEMS that overlaps (first 3, want 4)");
	r = r_items(4, 1, syms + 1);
	ok(apply_codec(&b, &r) == -1, "ITEMS repeating a symbol of an earlier chunk");
	r = r_items(4, NSYMS - 3, syms + 3);
	ok(apply_codec(&b, &r) == -1, "ITEMS one past total_items");
	batch_release(&b);

	batch_init(&b);
	r = r_claimed(&c, 1);
	apply_codec(&b, &r);
	r = r_items(0, 3, (const char *const[]){ "A", "B", "A" });
	ok(apply_codec(&b, &r) == -1, "ITEMS with a duplicate symbol in one chunk");
	ok(b.nitems == 0 && b.count[ST_PENDING] == 0,
	   "a rejected ITEMS adds no items (nitems %zu, count[pending] %zu)",
	   b.nitems, b.count[ST_PENDING]);
	batch_release(&b);

	/* Names no job may give: refused, and said in b.forged. */
	static const char *const bad_syms[] = {
		"../x", "/tmp/x", "-rf", "--output=x", ".x", "a/b",
		"\033[31mRED", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", "a b",
	};
	for (size_t k = 0; k < sizeof(bad_syms) / sizeof(*bad_syms); k++) {
		batch_init(&b);
		r = r_claimed(&c, 1);
		apply_codec(&b, &r);
		r = r_items(0, 2, (const char *const[]){ "OK", bad_syms[k] });
		ok(apply_codec(&b, &r) == -1 && b.nitems == 0 &&
			   !strncmp(b.forged, "symbol '", 8) &&
			   !strchr(b.forged, '\033'),
		   "ITEMS with symbol #%zu refused: %s", k, b.forged);
		batch_release(&b);
	}
	{
		struct batch_conf forged_conf = full_conf();
		forged_conf.id = "../x";
		batch_init(&b);
		r = r_claimed(&forged_conf, 1);
		ok(apply_codec(&b, &r) == -1 && !b.claimed &&
			   !strcmp(b.forged, "batch id '../x' is not valid"),
		   "CLAIMED with id ../x refused: %s", b.forged);
		batch_release(&b);
		forged_conf = full_conf();
		forged_conf.agent = "a/b";
		batch_init(&b);
		r = r_claimed(&forged_conf, 1);
		ok(apply_codec(&b, &r) == -1 && strstr(b.forged, "agent"),
		   "CLAIMED with agent a/b refused: %s", b.forged);
		batch_release(&b);
	}

	/* CLAIMED limits. */
	{
		struct batch_conf big = full_conf();
		big.total_items = 10000001;
		batch_init(&b);
		r = r_claimed(&big, 1);
		ok(apply_codec(&b, &r) == -1, "CLAIMED with more than 10,000,000 items");
		batch_release(&b);
		static int64_t many[1001];
		big = full_conf();
		big.delays_ms = many;
		big.ndelays = 1001;
		batch_init(&b);
		r = r_claimed(&big, 1);
		rc = apply_codec(&b, &r);
		ok(rc == -1 && !b.claimed, "CLAIMED with more than 1000 delays");
		ok(!b.c.id, "a rejected CLAIMED leaves the conf empty (c.id = %s)",
		   b.c.id ? b.c.id : "NULL");
		batch_release(&b);
	}

	/* Transitions, on the base batch. */
	reject("RESERVE on a running item", r_reserve(0, 3));
	reject("RESERVE on a failed item", r_reserve(2, 2));
	reject("RESERVE with the wrong attempt (2, want 1)", r_reserve(1, 2));
	reject("RESERVE with attempt 0", r_reserve(1, 0));
	reject("RESERVE of an item out of range", r_reserve(3, 1));
	reject("RESERVE of item UINT32_MAX", r_reserve(UINT32_MAX, 1));
	reject("SPAWNED on a pending item", r_spawned(1, 1, 1, 1));
	reject("SPAWNED on a running item", r_spawned(0, 2, 1, 1));
	reject("SPAWNED of an item out of range", r_spawned(9, 1, 1, 1));
	reject("FINISHED for an earlier attempt", r_finished(0, 1, 30, OUT_SUCCEEDED, ST_SUCCEEDED));
	reject("FINISHED for a later attempt", r_finished(0, 3, 30, OUT_SUCCEEDED, ST_SUCCEEDED));
	reject("FINISHED on a pending item with no attempt", r_finished(1, 0, 30, OUT_SUCCEEDED, ST_SUCCEEDED));
	reject("FINISHED on a failed item", r_finished(2, 1, 30, OUT_SUCCEEDED, ST_SUCCEEDED));
	reject("FINISHED with outcome none", r_finished(0, 2, 30, OUT_NONE, ST_SUCCEEDED));
	reject("FINISHED with an unknown outcome", r_finished(0, 2, 30, OUT_INTERRUPTED + 1, ST_SUCCEEDED));
	reject("FINISHED with next_state running", r_finished(0, 2, 30, OUT_FAILED, ST_RUNNING));
	reject("FINISHED with next_state starting", r_finished(0, 2, 30, OUT_FAILED, ST_STARTING));
	reject("FINISHED with next_state out of range", r_finished(0, 2, 30, OUT_FAILED, ST_COUNT));
	r = r_finished(0, 2, 30, OUT_FAILED, ST_FAILED);
	r.category = CAT_COUNT;
	reject("FINISHED with category CAT_COUNT", r);
	reject("FINISHED of an item out of range", r_finished(3, 1, 30, OUT_FAILED, ST_FAILED));
	reject("RELEASE of a running item", r_release(0, 2));
	reject("RELEASE of a pending item", r_release(1, 0));
	reject("REQUEUE of a pending item", r_requeue(1, (const uint32_t[]){ 1 }, 1));
	reject("REQUEUE of a running item", r_requeue(1, (const uint32_t[]){ 0 }, 1));
	reject("REQUEUE of an item out of range", r_requeue(1, (const uint32_t[]){ 3 }, 1));
	reject("CANCEL of an item out of range", r_cancel(1, false, CANCEL_USER, (const uint32_t[]){ 3 }, 1));
	reject("FINAL with open items", r_final(1, BS_PARTIAL));
	reject("FINAL with a non-final status", r_final(1, BS_RUNNING));

	/* FINISHED non-interrupted on a STARTING item. */
	{
		struct batch_conf cc;
		base(&b, &cc);
		r = r_reserve(1, 1);
		ok(apply_codec(&b, &r) == 0, "reserve item 1");
		static const int outs[] = { OUT_SUCCEEDED, OUT_FAILED, OUT_CANCELLED };
		for (int o = 0; o < 3; o++) {
			r = r_finished(1, 1, 40, outs[o], outs[o] == OUT_SUCCEEDED ? ST_SUCCEEDED : ST_FAILED);
			ok(apply_codec(&b, &r) == -1 && b.items[1].state == ST_STARTING,
			   "FINISHED %s on a STARTING item is rejected", outcome_name(outs[o]));
		}
		r = r_release(1, 2);
		ok(apply_codec(&b, &r) == -1, "RELEASE with the wrong attempt");
		r = r_spawned(1, 2, 1, 1);
		ok(apply_codec(&b, &r) == -1, "SPAWNED with the wrong attempt");
		batch_release(&b);
	}

	/* FINAL once every item is final, with a bad status still refused. */
	{
		struct batch_conf cc = full_conf();
		cc.total_items = 1;
		batch_init(&b);
		r = r_claimed(&cc, 1);
		apply_codec(&b, &r);
		r = r_items(0, 1, syms);
		apply_codec(&b, &r);
		r = r_final(1, BS_COMPLETED);
		ok(apply_codec(&b, &r) == -1, "FINAL with a pending item");
		r = r_cancel(2, false, CANCEL_USER, (const uint32_t[]){ 0 }, 1);
		apply_codec(&b, &r);
		r = r_final(3, BS_CANCELLED + 1);
		ok(apply_codec(&b, &r) == -1, "FINAL with a status beyond cancelled");
		r = r_final(3, BS_PARTIAL);
		ok(apply_codec(&b, &r) == 0 && b.final, "FINAL when nothing is open");
		batch_release(&b);
	}

	/* A rejected record leaves no trace. */
	rc = reject_clean(r_cancel(1, true, CANCEL_USER, (const uint32_t[]){ 1 }, 1), &w);
	ok(rc == -1, "a whole-batch CANCEL that also lists items is rejected");
	ok(!w, "... and changes nothing (%s)", w ? w : "unchanged");
	rc = reject_clean(r_requeue(1, (const uint32_t[]){ 2, 1 }, 2), &w);
	ok(rc == -1, "REQUEUE of a failed and a pending item is rejected");
	ok(!w, "... and changes nothing (%s)", w ? w : "unchanged");
	rc = reject_clean(r_cancel(1, false, CANCEL_USER, (const uint32_t[]){ 1, 3 }, 2), &w);
	ok(rc == -1, "CANCEL of a good and an out-of-range index is rejected");
	ok(!w, "... and changes nothing (%s)", w ? w : "unchanged");
}

/* ---- the attempt counter's limit ---- */

static void test_attempt_limit(void)
{
	struct batch_conf c = full_conf();
	struct batch b;
	struct rec r;
	int bad = 0;

	c.total_items = 1;
	batch_init(&b);
	r = r_claimed(&c, 1);
	apply_codec(&b, &r);
	r = r_items(0, 1, syms);
	apply_codec(&b, &r);
	for (uint32_t a = 1; a <= 65535; a++) {
		r = r_reserve(0, a);
		if (batch_apply(&b, &r) < 0 && bad++ < 3)
			diag("RESERVE attempt %u refused", a);
		r = r_finished(0, a, a, OUT_INTERRUPTED, ST_PENDING);
		if (batch_apply(&b, &r) < 0 && bad++ < 3)
			diag("FINISHED attempt %u refused", a);
	}
	ok(!bad && b.items[0].nattempts == 65535 && b.items[0].log[65534].completed_ms == 65535 &&
		   b.items[0].log[0].completed_ms == 1,
	   "65535 attempts are kept in the log");
	r = r_reserve(0, 65536);
	ok(batch_apply(&b, &r) == -1 && b.items[0].nattempts == 65535 &&
		   b.items[0].state == ST_PENDING,
	   "attempt 65536 is refused, not wrapped");
	batch_release(&b);
}

/* ---- a replayed journal with a record that does not apply ---- */

static void test_replay_stops(void)
{
	struct batch_conf c = full_conf();
	struct journal j;
	struct batch b;
	struct sb buf = SB_INIT;
	struct rec r;

	c.total_items = 2;
	unlinkat(dfd, "bad", 0);
	if (journal_create(&j, dfd, "bad") < 0) {
		ok(0, "journal_create");
		return;
	}
	batch_init(&b);
	r = r_claimed(&c, 1);
	batch_record(&b, &j, &r);
	r = r_items(0, 2, syms);
	batch_record(&b, &j, &r);
	/* Records that decode but do not apply, written around batch_record. */
	r = r_spawned(0, 1, 5, 5);
	rec_encode(&r, &buf);
	journal_add(&j, buf.buf, buf.len);
	r = r_reserve(1, 1);
	rec_encode(&r, &buf);
	journal_add(&j, buf.buf, buf.len);
	/* And a payload that does not decode. */
	journal_add(&j, "\x7f", 1);
	ok(journal_sync(&j) == 0, "journal with a record that does not apply");
	journal_close(&j);
	batch_release(&b);

	struct journal j2;
	batch_init(&b);
	ok(journal_open(&j2, dfd, "bad", true, batch_replay, &b) == 0,
	   "open succeeds");
	ok(j2.corrupt && j2.next_seq == 3 && b.nitems == 2 && b.count[ST_PENDING] == 2,
	   "replay stops as corrupt at the record that does not apply (next_seq %llu)",
	   (unsigned long long)j2.next_seq);
	journal_close(&j2);
	batch_release(&b);
	sb_release(&buf);
	unlinkat(dfd, "bad", 0);
}

/* ---- 100,000 items ---- */

static void test_big(void)
{
	enum { NB = 100000 };
	struct batch_conf c = full_conf();
	struct journal j, j2;
	struct batch b, b2;
	struct rec r;
	char **names = malloc(NB * sizeof(*names));
	int64_t t0, t1, t2;

	for (int i = 0; i < NB; i++) {
		names[i] = malloc(16);
		snprintf(names[i], 16, "SYM%06d", i);
	}
	c.total_items = NB;
	unlinkat(dfd, "big", 0);
	if (journal_create(&j, dfd, "big") < 0) {
		ok(0, "journal_create big");
		return;
	}
	t0 = now_ns();
	batch_init(&b);
	r = r_claimed(&c, 1);
	batch_record(&b, &j, &r);
	for (int i = 0; i < NB; i += 10000) {
		r = r_items((uint32_t)i, 10000, (const char *const *)names + i);
		batch_record(&b, &j, &r);
	}
	int sync_fail = 0;
	for (uint32_t i = 0; i < NB; i++) {
		r = r_reserve(i, 1);
		batch_record(&b, &j, &r);
		r = r_spawned(i, 1, 1000 + i, (int32_t)(10000 + i));
		batch_record(&b, &j, &r);
		r = r_finished(i, 1, 2000 + i, i % 10 ? OUT_SUCCEEDED : OUT_FAILED,
			       i % 10 ? ST_SUCCEEDED : ST_FAILED);
		r.cpu_user_ms = i % 97;
		r.max_rss_kb = i;
		r.matches = i % 13;
		if (i % 10 == 0) {
			r.exit_code = 65;
			r.category = CAT_DATA;
			r.error_type = "NoData";
			r.error_message = "no data for symbol";
			r.counts_failure = 1;
		}
		batch_record(&b, &j, &r);
		if (i % 20000 == 19999 && journal_sync(&j) < 0)
			sync_fail++;
	}
	r = r_final(5000000, batch_final_status(&b));
	batch_record(&b, &j, &r);
	ok(journal_sync(&j) == 0 && !sync_fail, "100,000 items recorded and synced");
	t1 = now_ns();
	ok(b.count[ST_SUCCEEDED] == 90000 && b.count[ST_FAILED] == 10000 && b.final &&
		   batch_status(&b) == BS_PARTIAL && b.attempts_total == NB,
	   "90,000 succeeded, 10,000 failed, partial");
	diag("recording 300,000 records took %.3f s; journal %lld bytes",
	     (double)(t1 - t0) / 1e9, (long long)j.size);

	batch_init(&b2);
	t1 = now_ns();
	int rc = journal_open(&j2, dfd, "big", false, batch_replay, &b2);
	t2 = now_ns();
	double secs = (double)(t2 - t1) / 1e9;
	diag("replaying %llu records took %.3f s", (unsigned long long)(j2.next_seq - 1), secs);
	ok(rc == 0 && !j2.corrupt && j2.next_seq == j.next_seq, "100,000-item journal replays");
	ok(secs < 2.0, "replay under 2 s (%.3f s)", secs);
	const char *w = batch_diff(&b, &b2);
	ok(!w, "replayed 100,000-item batch equals the live one%s%s", w ? ": " : "", w ? w : "");
	ok(batch_item(&b2, "SYM099999") == &b2.items[99999], "symbol lookup in the replayed batch");
	journal_close(&j2);
	batch_release(&b2);
	journal_close(&j);
	batch_release(&b);
	for (int i = 0; i < NB; i++)
		free(names[i]);
	free(names);
	unlinkat(dfd, "big", 0);
}

/* Times no clock gives (a damaged journal's) are refused: every view
 * subtracts and adds times, and INT64_MAX - (-1000) overflowed in
 * meta_busy_ms() and the report's timeline (found by tests/fuzz). */
static void test_wild_times(void)
{
	struct batch b;
	struct batch_conf c = full_conf();
	struct rec r;
	batch_init(&b);
	c.created_ms = INT64_MIN;
	r = r_claimed(&c, 1);
	ok(apply_codec(&b, &r) == -1, "CLAIMED created at INT64_MIN is refused");
	c = full_conf();
	r = r_claimed(&c, 1);
	ok(apply_codec(&b, &r) == 0, "CLAIMED");
	r = r_items(0, 1, syms);
	ok(apply_codec(&b, &r) == 0, "ITEMS");
	r = r_reserve(0, 1);
	ok(apply_codec(&b, &r) == 0, "RESERVE");
	r = r_spawned(0, 1, -1000, 42);
	ok(apply_codec(&b, &r) == 0, "SPAWNED before 1970 (a clock set back) applies");
	r = r_finished(0, 1, INT64_MAX - 1, OUT_FAILED, ST_FAILED);
	ok(apply_codec(&b, &r) == -1, "FINISHED at INT64_MAX - 1 is refused");
	r.time = 1767225600000LL;
	r.next_retry_at = INT64_MIN;
	ok(apply_codec(&b, &r) == -1, "FINISHED with a retry due at INT64_MIN is refused");
	r.time = 253402300799999LL; /* 9999-12-31T23:59:59.999Z */
	r.next_retry_at = 0;
	ok(apply_codec(&b, &r) == 0, "FINISHED in the last ms of year 9999 applies");
	ok(b.items[0].state == ST_FAILED, "the item failed");
	batch_release(&b);
}

int main(void)
{
	int64_t t0 = now_ns();
	scratch_make("batch");
	dfd = scratch_open();
	test_codec();
	test_lifecycle();
	test_cancel();
	test_reject();
	test_attempt_limit();
	test_replay_stops();
	test_big();
	test_wild_times();
	close(dfd);
	scratch_remove();
	diag("batch tests took %.2f s", (double)(now_ns() - t0) / 1e9);
	done_testing();
	return exit_status();
}
