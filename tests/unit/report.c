/*
 * report: the HTML page of a batch built in memory through the model's
 * records (src/report.h): empty and pending batches, escaping of hostile
 * text, the lanes of the timeline, retries and running attempts, failure
 * groups without shared state, the size bounds of a large batch, and a
 * write error.
 */
#include "batch.h"
#include "report.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0 1767225600000LL	/* 2026-01-01T00:00:00Z */

/* Encode, decode, apply: what replay does (ITEMS and CLAIMED read their
 * lists from the encoded payload). */
static void apply(struct batch *b, const struct rec *r)
{
	struct sb buf = SB_INIT;
	struct rec back;
	rec_encode(r, &buf);
	if (rec_decode(buf.buf, buf.len, &back) < 0 || batch_apply(b, &back) < 0) {
		printf("Bail out! record type %d does not apply\n", r->type);
		exit(255);
	}
	sb_release(&buf);
}

static void claim(struct batch *b, const char *id, const char *name,
		  uint32_t total, struct batch_param *params, uint32_t nparams)
{
	struct batch_conf c = {
		.id = id, .name = name, .origin = "unit", .agent = "fake",
		.source = "vendor", .job_file = "unit.job",
		.sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		.created_ms = T0, .max_attempts = 3, .timeout_ms = 60000,
		.params = params, .nparams = nparams, .total_items = total,
	};
	batch_init(b);
	apply(b, &(struct rec){ .type = R_CLAIMED, .conf = &c, .pid = 1 });
}

static void items(struct batch *b, const char *const *syms, uint32_t n)
{
	apply(b, &(struct rec){ .type = R_ITEMS, .first = (uint32_t)b->nitems,
				.n = n, .symbols = syms });
}

static void start(struct batch *b, uint32_t i, int64_t t)
{
	uint32_t att = b->items[i].nattempts + 1u;
	apply(b, &(struct rec){ .type = R_RESERVE, .item = i, .attempt = att });
	apply(b, &(struct rec){ .type = R_SPAWNED, .item = i, .attempt = att,
				.time = t, .pid = 100 + (int32_t)i });
}

static void finish(struct batch *b, uint32_t i, int64_t t, int outcome,
		   int next, int category, const char *msg, const char *group)
{
	apply(b, &(struct rec){
		.type = R_FINISHED, .item = i, .attempt = b->items[i].nattempts,
		.time = t, .outcome = (uint8_t)outcome,
		.next_state = (uint8_t)next, .category = (uint8_t)category,
		.counts_failure = outcome == OUT_FAILED,
		.exit_code = outcome == OUT_SUCCEEDED ? 0 : 1,
		.error_message = msg, .group = group,
		.matches = -1, .progress = -1,
		.cpu_user_ms = 10, .cpu_system_ms = 2, .max_rss_kb = 2048,
		.next_retry_at = next == ST_RETRY_WAIT ? t + 100 : 0 });
}

/* The page of b, as a string (free it). */
static char *page(const struct batch *b, int64_t now, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	*rc = report_write(fp, b, NULL, now);
	fclose(fp);
	return buf;
}

static size_t occurrences(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static bool has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* Nothing a browser would fetch or run, and no number gone wrong. */
static void check_clean(const char *html, const char *what)
{
	ok(!strncmp(html, "<!doctype html>\n", 16), "%s: doctype first", what);
	ok(has(html, "</html>\n"), "%s: complete", what);
	ok(!has(html, "<script") && !has(html, "<SCRIPT"), "%s: no script", what);
	ok(!has(html, "http:") && !has(html, "https:"), "%s: no URL", what);
	ok(!has(html, "nan") && !has(html, "inf\"") && !has(html, "-nan"),
	   "%s: no NaN or infinity", what);
}

static void test_empty(void)
{
	struct batch b;
	int rc;
	claim(&b, "empty-1", NULL, 0, NULL, 0);
	char *h = page(&b, T0 + 5000, &rc);
	is_int(rc, 0, "empty batch: report_write returns 0");
	check_clean(h, "empty");
	ok(has(h, "<span class=\"sym\">empty-1</span>"), "empty: the id");
	ok(has(h, "Not started: no attempt has run yet."), "empty: timeline says not started");
	ok(has(h, "<tr><th>duration</th><td>not started</td></tr>"), "empty: duration not started");
	ok(has(h, "No failed items."), "empty: no failed items");
	ok(has(h, "No failed attempts."), "empty: no error categories");
	ok(has(h, "No item has finished an attempt yet."), "empty: no slowest items");
	ok(!has(h, "<svg"), "empty: no chart at all");
	free(h);
	batch_release(&b);

	static const char *const syms[] = { "AAPL", "MSFT", "GOOG" };
	claim(&b, "pending-1", "three pending", 3, NULL, 0);
	items(&b, syms, 3);
	h = page(&b, T0 + 5000, &rc);
	is_int(rc, 0, "pending batch: returns 0");
	check_clean(h, "pending");
	ok(has(h, "class=\"st st-pending\">pending<"), "pending: status badge");
	ok(has(h, "Not started: no attempt has run yet."), "pending: not started");
	ok(has(h, "<title>pending: 3</title>"), "pending: the state bar");
	ok(has(h, "<tr><th>throughput</th><td>&ndash;</td></tr>"), "pending: no throughput");
	free(h);
	batch_release(&b);
}

static void test_mixed(void)
{
	static const char *const syms[] = { "A", "B", "C", "D", "E" };
	static struct batch_param params[] = {
		{ "label", "<i>'x'</i> & \"y\"" },
	};
	const char *evil = "bad <script>alert(1)</script> \"double\" & 'single'";
	struct batch b;
	int rc;
	claim(&b, "mixed-1", "<b>name</b>", 5, params, 1);
	items(&b, syms, 5);
	start(&b, 0, T0 + 1000);	/* A: 1000-2000 succeeded */
	start(&b, 1, T0 + 1000);	/* B: 1000-1500 failed, retry */
	start(&b, 2, T0 + 1200);	/* C: running since 1200 */
	finish(&b, 1, T0 + 1500, OUT_FAILED, ST_RETRY_WAIT, CAT_DATA, "first try", NULL);
	start(&b, 1, T0 + 1600);	/* B: 1600-1800 failed for good */
	finish(&b, 1, T0 + 1800, OUT_FAILED, ST_FAILED, CAT_DATA, evil, "grp-unit-1");
	finish(&b, 0, T0 + 2000, OUT_SUCCEEDED, ST_SUCCEEDED, CAT_NONE, NULL, NULL);
	start(&b, 3, T0 + 2000);	/* D: interrupted, then succeeded */
	finish(&b, 3, T0 + 2100, OUT_INTERRUPTED, ST_PENDING, CAT_NONE, NULL, NULL);
	start(&b, 3, T0 + 2100);
	finish(&b, 3, T0 + 2500, OUT_SUCCEEDED, ST_SUCCEEDED, CAT_NONE, NULL, NULL);
	/* E: never started, cancelled */
	apply(&b, &(struct rec){ .type = R_CANCEL, .time = T0 + 2600,
				 .indexes = (const uint32_t[]){ 4 }, .n = 1 });

	char *h = page(&b, T0 + 5000, &rc);
	is_int(rc, 0, "mixed: returns 0");
	check_clean(h, "mixed");
	ok(has(h, "&lt;b&gt;name&lt;/b&gt;"), "the name escaped");
	ok(has(h, "label=&lt;i&gt;&#39;x&#39;&lt;/i&gt; &amp; &quot;y&quot;"), "a param escaped");
	ok(has(h, "bad &lt;script&gt;alert(1)&lt;/script&gt; &quot;double&quot; &amp; &#39;single&#39;"),
	   "the message escaped");
	ok(has(h, "class=\"st st-running\">running<"), "status running");
	ok(has(h, "(3 lanes: the most"), "three lanes (interval partitioning)");
	ok(has(h, "6, at most 3 at once"), "6 attempts, at most 3 at once");
	is_int(occurrences(h, ": attempt "), 6, "every started attempt drawn, E skipped");
	ok(has(h, "class=\"k-u\"><title>C: attempt 1 of 1, running, 3.8s so far"),
	   "the running attempt: blue, up to now");
	ok(has(h, "class=\"k-f r\"><title>B: attempt 1 of 2, failed (data_error)"),
	   "a retried item's first attempt outlined");
	ok(has(h, "class=\"k-f r\"><title>B: attempt 2 of 2, failed (data_error), 200ms, from +600ms"),
	   "its retry: outlined, 200 ms, 600 ms after the first start");
	ok(has(h, "class=\"k-i r\"><title>D: attempt 1 of 2, interrupted"), "interrupted: orange");
	ok(has(h, "class=\"k-s\"><title>A: attempt 1 of 1, succeeded, 1s"), "a success: green");
	/* lanes (16 units high): B (ends first) 1, A 2, C 3, B's retry 1
	 * again (B ended before it), D and its retry the lowest free: 1 */
	ok(has(h, "y=\"21.0\" width=\"254.9\" height=\"14.0\" class=\"k-s\"><title>A:"),
	   "A on lane 2");
	ok(has(h, "y=\"5.0\" width=\"127.2\" height=\"14.0\" class=\"k-f r\"><title>B: attempt 1"),
	   "B on lane 1");
	ok(has(h, "y=\"37.0\" width=\"970.3\" height=\"14.0\" class=\"k-u\"><title>C:"),
	   "C on lane 3, drawn up to now");
	ok(has(h, "y=\"5.0\" width=\"50.5\" height=\"14.0\" class=\"k-f r\"><title>B: attempt 2"),
	   "B's retry back on lane 1");
	ok(has(h, "y=\"5.0\" width=\"24.9\" height=\"14.0\" class=\"k-i r\"><title>D: attempt 1"),
	   "D on the lowest free lane");
	ok(has(h, "<tr><th>completed</th><td>not yet</td></tr>"), "not completed yet");
	ok(has(h, "duration</th><td>4s so far"), "duration so far");
	ok(has(h, "<td class=\"sym\">B</td><td class=\"n\">2</td><td>data_error</td>"),
	   "the failed item with its category");
	ok(has(h, "<h3 class=\"sym\">grp-unit-1</h3>"), "its failure group");
	ok(has(h, "unknown (not in the home&#39;s shared state)"), "without shared state");
	ok(has(h, "<li class=\"sym\">B</li>"), "the group's member in this batch");
	ok(has(h, "<title>data_error: 1 failed item, 2 failed attempts</title>"),
	   "error category bar: items and attempts");
	ok(has(h, "The 3 items whose"), "three items finished");
	free(h);
	batch_release(&b);
}

static void test_hostile_bytes(void)
{
	static const char *const syms[] = { "X" };
	struct batch b;
	int rc;
	claim(&b, "bytes-1", "tab\there \x01 and \xff\xfe", 1, NULL, 0);
	items(&b, syms, 1);
	start(&b, 0, T0 + 10);
	finish(&b, 0, T0 + 20, OUT_FAILED, ST_FAILED, CAT_UNKNOWN,
	       "line1\nline2\r\x1b[31mred\x7f \xc3\x28 </td></tr></table>", NULL);
	char *h = page(&b, T0 + 30, &rc);
	is_int(rc, 0, "hostile bytes: returns 0");
	ok(has(h, "tab\\there \\x01 and \\xff\\xfe"), "control bytes and bad UTF-8 made visible");
	ok(has(h, "line1\\nline2\\r\\x1b[31mred\\x7f \\xc3( &lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;"),
	   "in the message too, markup escaped");
	ok(!has(h, "\x1b") && !has(h, "\xff"), "no raw control byte or invalid UTF-8");
	free(h);
	batch_release(&b);
}

static void test_big(void)
{
	enum { N = 20000, SLOTS = 8 };
	char **names = xmalloc(N * sizeof(*names));
	struct batch b;
	int rc;
	for (int i = 0; i < N; i++)
		names[i] = xasprintf("S%05d", i);
	claim(&b, "big-1", "twenty thousand", N, NULL, 0);
	items(&b, (const char *const *)names, N);
	/* SLOTS at a time, 100 ms apart; one in 20 fails (1,000 failures) */
	for (uint32_t i = 0; i < N; i++) {
		int64_t t = T0 + (int64_t)(i / SLOTS) * 100;
		start(&b, i, t);
		bool fail = i % 20 == 7;
		finish(&b, i, t + 90 - (i % 50), fail ? OUT_FAILED : OUT_SUCCEEDED,
		       fail ? ST_FAILED : ST_SUCCEEDED, fail ? CAT_ENGINE : CAT_NONE,
		       fail ? "engine said no, with a message of a good length for a test" : NULL,
		       NULL);
	}
	apply(&b, &(struct rec){ .type = R_FINAL, .time = T0 + N / SLOTS * 100,
				 .status = BS_PARTIAL });
	struct timespec a, z;
	clock_gettime(CLOCK_MONOTONIC, &a);
	char *h = page(&b, T0, &rc);
	clock_gettime(CLOCK_MONOTONIC, &z);
	size_t len = strlen(h);
	diag("20,000 items: %zu bytes in %.3f s", len,
	     (double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9);
	is_int(rc, 0, "big: returns 0");
	check_clean(h, "big");
	ok(len < 1500000, "big: the page is small (%zu bytes)", len);
	size_t drawn = occurrences(h, ": attempt ");
	ok(drawn <= 3000 && drawn >= 2500, "big: at most 3,000 attempts drawn (%zu)", drawn);
	is_int(occurrences(h, "class=\"k-f\"><title>S"), 1000, "big: every failed attempt drawn");
	ok(has(h, "<b>Sampled:</b>"), "big: says it sampled");
	ok(has(h, "(8 lanes: the most"), "big: 8 lanes");
	is_int(occurrences(h, "<td class=\"sym\">S"), 500 + 20, "big: 500 failed rows and 20 slowest");
	ok(has(h, "&hellip; and 500 more failed items"), "big: says how many more");
	free(h);

	/* More failures than half the budget: those are sampled too. */
	batch_release(&b);
	claim(&b, "big-2", NULL, N, NULL, 0);
	items(&b, (const char *const *)names, N);
	for (uint32_t i = 0; i < N; i++) {
		int64_t t = T0 + (int64_t)(i / SLOTS) * 100;
		start(&b, i, t);
		bool fail = i % 2;
		finish(&b, i, t + 90, fail ? OUT_FAILED : OUT_SUCCEEDED,
		       fail ? ST_FAILED : ST_SUCCEEDED, fail ? CAT_DATA : CAT_NONE,
		       fail ? "no data" : NULL, NULL);
	}
	h = page(&b, T0 + N / SLOTS * 100 + 1, &rc);
	len = strlen(h);
	drawn = occurrences(h, ": attempt ");
	ok(drawn <= 3000, "half failed: at most 3,000 drawn (%zu)", drawn);
	ok(occurrences(h, "class=\"k-f\"><title>S") <= 1500, "half failed: failures capped");
	ok(has(h, "of the 10,000 that did not succeed or were retries (one in 7)"),
	   "half failed: says which");
	ok(len < 1500000, "half failed: small (%zu bytes)", len);
	free(h);
	batch_release(&b);
	for (int i = 0; i < N; i++)
		free(names[i]);
	free(names);
}

static void test_write_error(void)
{
	static const char *const syms[] = { "A" };
	struct batch b;
	FILE *fp = fopen("/dev/full", "w");
	if (!fp) {
		ok(1, "# SKIP no /dev/full");
		return;
	}
	claim(&b, "full-1", NULL, 1, NULL, 0);
	items(&b, syms, 1);
	errno = 0;
	int rc = report_write(fp, &b, NULL, T0);
	int e = errno;
	fclose(fp);
	is_int(rc, -1, "a full disk: -1");
	is_int(e, ENOSPC, "with errno ENOSPC");
	batch_release(&b);
}

int main(void)
{
	test_empty();
	test_mixed();
	test_hostile_bytes();
	test_big();
	test_write_error();
	done_testing();
	return exit_status();
}
