/*
 * meta: the performance figures of a batch built in memory through the
 * model's records (src/meta.h): busy time as the union of attempt
 * intervals (overlaps, gaps, a retry long after, a running attempt),
 * throughput over it, latency percentiles within [min, max], and the same
 * figures in summary.json.
 */
#include "batch.h"
#include "meta.h"
#include "tap.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

static void apply(struct batch *b, const struct rec *r)
{
	struct sb buf = SB_INIT;
	struct rec back;
	rec_encode(r, &buf);
	if (rec_decode(buf.buf, buf.len, &back) < 0 ||
	    batch_apply(b, &back) < 0) {
		printf("Bail out! record type %d does not apply\n", r->type);
		exit(255);
	}
	sb_release(&buf);
}

static void new_batch(struct batch *b, const char *const *syms, uint32_t n)
{
	struct batch_conf c = {
		.id = "meta-unit", .origin = "unit", .agent = "fake",
		.created_ms = T0, .max_attempts = 3, .total_items = n,
	};
	batch_init(b);
	apply(b, &(struct rec){ .type = R_CLAIMED, .conf = &c, .pid = 1 });
	apply(b, &(struct rec){ .type = R_ITEMS, .n = n, .symbols = syms });
}

/* One attempt of item i from T0 + from to T0 + to (to 0: still running). */
static void attempt(struct batch *b, uint32_t i, int64_t from, int64_t to,
		    int outcome, int next)
{
	uint32_t att = b->items[i].nattempts + 1u;
	apply(b, &(struct rec){ .type = R_RESERVE, .item = i, .attempt = att });
	apply(b, &(struct rec){ .type = R_SPAWNED, .item = i, .attempt = att,
				.time = T0 + from, .pid = 100 });
	if (!to)
		return;
	apply(b, &(struct rec){
		.type = R_FINISHED, .item = i, .attempt = att, .time = T0 + to,
		.outcome = (uint8_t)outcome, .next_state = (uint8_t)next,
		.category = outcome == OUT_FAILED ? CAT_ENGINE : CAT_NONE,
		.counts_failure = outcome == OUT_FAILED,
		.exit_code = outcome == OUT_SUCCEEDED ? 0 : 70,
		.matches = -1, .progress = -1 });
}

static void finalize(struct batch *b, int64_t at)
{
	apply(b, &(struct rec){ .type = R_FINAL, .time = T0 + at,
				.status = (uint8_t)batch_final_status(b) });
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int main(void)
{
	static const char *const syms[] = { "A", "B", "C", "D" };
	struct batch b;
	struct meta_perf p;

	/* Not started: no duration, no busy time, no rate. */
	new_batch(&b, syms, 2);
	meta_perf(&b, T0 + 5000, &p);
	ok(!p.has_duration && !p.has_rate, "not started: no duration, no rate");
	is_int(meta_busy_ms(&b, T0 + 5000), 0, "not started: busy 0");
	batch_release(&b);

	/* Overlapping, nested and touching attempts, then a gap: A 0-1000
	 * and B 500-1500 overlap, C 600-700 is inside, D 1500-2000 touches;
	 * A is retried 60 s later (1000 ms), after the batch was final. */
	new_batch(&b, syms, 4);
	attempt(&b, 0, 0, 1000, OUT_FAILED, ST_FAILED);
	attempt(&b, 1, 500, 1500, OUT_SUCCEEDED, ST_SUCCEEDED);
	attempt(&b, 2, 600, 700, OUT_SUCCEEDED, ST_SUCCEEDED);
	attempt(&b, 3, 1500, 2000, OUT_SUCCEEDED, ST_SUCCEEDED);
	finalize(&b, 2000);
	is_int(meta_busy_ms(&b, T0 + 3000), 2000, "overlaps merged: busy 2 s");
	meta_perf(&b, T0 + 3000, &p);
	ok(p.has_rate && fabs(p.items_per_s - 2.0) < 1e-9,
	   "4 items over 2 busy seconds: 2 items/s (%.3f)", p.items_per_s);
	uint32_t a = 0;
	apply(&b, &(struct rec){ .type = R_REQUEUE, .time = T0 + 61000,
				 .n = 1, .indexes = &a });
	attempt(&b, 0, 62000, 63000, OUT_SUCCEEDED, ST_SUCCEEDED);
	finalize(&b, 63000);
	meta_perf(&b, T0 + 99000, &p);
	ok(fabs(p.duration_s - 63.0) < 1e-9, "wall: first start to the end (%.3f)",
	   p.duration_s);
	ok(fabs(p.busy_s - 3.0) < 1e-9, "busy: the gap is not counted (%.3f)",
	   p.busy_s);
	ok(fabs(p.items_per_s - 4.0 / 3.0) < 1e-9,
	   "throughput: final items over busy seconds (%.3f)", p.items_per_s);
	/* Latency of the deciding attempts: 1000, 100, 500 and 1000 ms. */
	ok(p.nlat == 4 && p.lat_p50 >= 100 && p.lat_p50 <= p.lat_max &&
		   p.lat_p95 >= p.lat_p50 && p.lat_p95 <= p.lat_max &&
		   p.lat_max == 1000 && p.lat_avg >= 100 &&
		   p.lat_avg <= 1000,
	   "latency: p50 %lld, p95 %lld, avg %.1f within [100, 1000]",
	   (long long)p.lat_p50, (long long)p.lat_p95, p.lat_avg);

	/* summary.json and batch.json carry the same figures. */
	cJSON *s = meta_summary_doc(&b, T0 + 99000);
	ok(num(s, "duration_seconds") == 63.0 && num(s, "busy_seconds") == 3.0,
	   "summary.json: duration_seconds 63, busy_seconds 3");
	ok(num(s, "items_per_second") == 1.33,
	   "summary.json: items_per_second over busy time, 3 significant "
	   "digits (%g)", num(s, "items_per_second"));
	/* Rounded to what they mean: rates to 3 significant digits,
	 * seconds to 3 decimals. */
	ok(meta_round_sig(0.0012345, 3) == 0.00123 &&
		   meta_round_sig(1234.5, 3) == 1230 &&
		   meta_round_sig(78.444, 3) == 78.4 &&
		   meta_round_sig(0, 3) == 0,
	   "meta_round_sig: 3 significant digits");
	ok(meta_round(0.2114, 3) == 0.211 && meta_round(28.56, 1) == 28.6 &&
		   meta_round(0.36363636, 4) == 0.3636,
	   "meta_round: decimals");
	cJSON_Delete(s);
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	meta_write_json(fp, &b, T0 + 99000, NULL);
	fclose(fp);
	cJSON *doc = cJSON_Parse(text);
	const cJSON *perf = cJSON_GetObjectItemCaseSensitive(doc, "performance");
	ok(num(perf, "duration_seconds") == 63.0 &&
		   num(perf, "busy_seconds") == 3.0,
	   "batch.json: performance.duration_seconds and busy_seconds");
	cJSON_Delete(doc);
	free(text);

	/* show: both durations, and the rate. */
	text = NULL;
	fp = open_memstream(&text, &len);
	meta_print_summary(fp, &b, T0 + 99000, 0, "/h", NULL);
	fclose(fp);
	ok(strstr(text, "duration    1m03s (busy 3s)") != NULL,
	   "show: \"duration    1m03s (busy 3s)\"");
	ok(strstr(text, "throughput  1.3 items/s") != NULL,
	   "show: \"throughput  1.3 items/s\"");
	free(text);
	batch_release(&b);

	/* A running attempt is busy until now; a slow batch's rate is not
	 * printed as 0.0. */
	new_batch(&b, syms, 2);
	attempt(&b, 0, 0, 100, OUT_SUCCEEDED, ST_SUCCEEDED);
	attempt(&b, 1, 40000, 0, 0, 0);
	is_int(meta_busy_ms(&b, T0 + 50000), 10100,
	       "a running attempt counts until now");
	meta_perf(&b, T0 + 50000, &p);
	ok(fabs(p.duration_s - 50.0) < 1e-9 && fabs(p.busy_s - 10.1) < 1e-9,
	   "running: wall 50 s, busy 10.1 s");
	text = NULL;
	fp = open_memstream(&text, &len);
	meta_print_summary(fp, &b, T0 + 50000, 0, "/h", NULL);
	fclose(fp);
	ok(strstr(text, "duration    50s so far (busy 10.1s)") != NULL,
	   "show of a running batch: both durations, so far");
	ok(strstr(text, "throughput  0.099 items/s") != NULL,
	   "show: 1 item in 10.1 s is 0.099 items/s, not 0.0");
	free(text);
	batch_release(&b);

	char r[32];
	is_str(fmt_rate(0.0412, r, sizeof(r)), "0.041", "fmt_rate: two digits below 1");
	is_str(fmt_rate(12.34, r, sizeof(r)), "12.3", "fmt_rate: one decimal from 1");
	is_str(fmt_rate(0, r, sizeof(r)), "0", "fmt_rate: 0");
	done_testing();
	return exit_status();
}
