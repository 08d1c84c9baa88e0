/*
 * symstats: per-symbol figures merged into state/symbols by several
 * processes; the latency histogram and its percentiles; older files
 * without a histogram (src/symstats.h, SPEC 8).
 */
#include "home.h"
#include "symstats.h"
#include "scratch.h"
#include "tap.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct seen {
	char sym[32];
	uint64_t count, lat_sum, lat_max;
	int64_t lat_min;
	double p50, p95;
	int64_t busy_until;
	int rows;
};

static void row(void *arg, const struct symstat_row *r)
{
	struct seen *s = arg;
	if (strcmp(r->symbol, s->sym))
		return;
	s->rows++;
	s->count = r->count;
	s->lat_sum = r->lat_sum;
	s->lat_max = r->lat_max;
	s->lat_min = r->lat_min;
	s->busy_until = r->busy_until;
	s->p50 = symstats_percentile(r, 0.50);
	s->p95 = symstats_percentile(r, 0.95);
}

static struct seen read_sym(int state, const char *sym)
{
	struct seen s;
	memset(&s, 0, sizeof(s));
	snprintf(s.sym, sizeof(s.sym), "%s", sym);
	s.p50 = s.p95 = -2;
	ok(symstats_read(state, row, &s) == 0, "read state/symbols (%s)", sym);
	return s;
}

static bool within(double got, double want, double frac)
{
	return fabs(got - want) <= want * frac;
}

int main(void)
{
	scratch_make("symstats");
	int state = scratch_open();

	/* Empty histogram. */
	struct lat_hist h = { NULL, 0, 0 };
	struct symstat_row empty = { .symbol = "E", .hist = &h, .lat_min = -1 };
	ok(symstats_percentile(&empty, 0.5) < 0, "empty histogram: no percentile");

	/* One process: 100 attempts of 1..100 ms. */
	struct symstats a = { 0 };
	for (int i = 1; i <= 100; i++) {
		symstats_start(&a, "AAPL");
		symstats_end(&a, "AAPL", 1000 + i, i, true);
	}
	symstats_start(&a, "ZERO");
	symstats_end(&a, "ZERO", 5, 0, false);
	ok(symstats_flush(&a, state, 2000) == 0, "flush");
	struct seen s = read_sym(state, "AAPL");
	is_int((long long)s.count, 100, "count");
	is_int((long long)s.lat_sum, 5050, "latency sum");
	is_int((long long)s.lat_max, 100, "latency max");
	is_int((long long)s.lat_min, 1, "latency min");
	ok(within(s.p50, 50, 0.10), "p50 of 1..100 ms is 50 within 10%% (%.1f)",
	   s.p50);
	ok(within(s.p95, 95, 0.10), "p95 of 1..100 ms is 95 within 10%% (%.1f)",
	   s.p95);
	s = read_sym(state, "ZERO");
	ok(s.p50 == 0, "a 0 ms attempt is bucket 0 (%.1f)", s.p50);

	/* A second process adds 100 attempts of 1000 ms: merged, not replaced. */
	struct symstats b = { 0 };
	for (int i = 0; i < 100; i++) {
		symstats_start(&b, "AAPL");
		symstats_end(&b, "AAPL", 3000 + i, 1000, true);
	}
	ok(symstats_flush(&b, state, 4000) == 0, "flush from another process");
	s = read_sym(state, "AAPL");
	is_int((long long)s.count, 200, "counts add up");
	is_int((long long)s.lat_max, 1000, "max is the larger");
	ok(within(s.p95, 1000, 0.10), "p95 is now the slow half (%.1f)", s.p95);
	/* Flushing again without news changes nothing. */
	ok(symstats_flush(&a, state, 5000) == 0, "a flush without changes");
	s = read_sym(state, "AAPL");
	is_int((long long)s.count, 200, "deltas are not counted twice");
	is_int(s.rows, 1, "one line per symbol");

	/* After a flush a process keeps entries only for what runs now. */
	struct symstats c = { 0 };
	for (int i = 0; i < 1000; i++) {
		char sym[16];
		snprintf(sym, sizeof(sym), "F%d", i);
		symstats_start(&c, sym);
		symstats_end(&c, sym, 5000, 10, true);
	}
	symstats_start(&c, "LONG");
	ok(symstats_flush(&c, state, 5000) == 0, "flush of 1,001 symbols");
	is_int((long long)c.n, 1, "afterwards only the running one is held");
	s = read_sym(state, "LONG");
	ok(s.busy_until > 5000, "and its lease is in the file");
	s = read_sym(state, "F999");
	is_int((long long)s.count, 1, "a forgotten symbol's figures are in the file");
	symstats_start(&c, "F999");
	symstats_end(&c, "F999", 5500, 30, false);
	symstats_end(&c, "LONG", 5500, 500, true);
	ok(symstats_flush(&c, state, 5500) == 0, "flush again");
	s = read_sym(state, "F999");
	is_int((long long)s.count, 2, "run again: its counts still add up");
	is_int((long long)s.lat_max, 30, "  and its max");
	s = read_sym(state, "LONG");
	is_int((long long)s.count, 1, "the long one ends: counted once");
	ok(s.busy_until == 0, "  its lease released");
	is_int((long long)c.n, 0, "nothing held when nothing runs");
	symstats_release(&c);

	/* Percentiles lie within [min, max] whatever the latencies: the
	 * middle of a bucket may not (one attempt of 91 ms is 98.7 there). */
	static const struct {
		const char *name;
		int64_t ms[8];
		int n, times;
	} table[] = {
		{ "ONE91", { 91 }, 1, 1 },
		{ "ONE100", { 100 }, 1, 1 },
		{ "SAME7", { 7 }, 1, 50 },
		{ "TWO", { 90, 91 }, 2, 20 },
		{ "SPREAD", { 1, 3, 9, 27, 81, 243, 729, 2187 }, 8, 3 },
		{ "TAIL", { 1000, 1000, 1000, 1001 }, 4, 25 },
		{ "ZEROS", { 0, 0, 1 }, 3, 4 },
		{ "EDGE", { 11, 13 }, 2, 1 },
		{ "HOURS", { 3600000, 3700000 }, 2, 2 },
	};
	struct symstats t = { 0 };
	int64_t now = 7000;
	for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); k++)
		for (int rep = 0; rep < table[k].times; rep++)
			for (int i = 0; i < table[k].n; i++) {
				symstats_start(&t, table[k].name);
				symstats_end(&t, table[k].name, now++,
					     table[k].ms[i], true);
			}
	/* A second process adds to EDGE: min and max merge too. */
	struct symstats t2 = { 0 };
	symstats_start(&t2, "EDGE");
	symstats_end(&t2, "EDGE", now++, 12, true);
	ok(symstats_flush(&t, state, now) == 0 &&
		   symstats_flush(&t2, state, now) == 0,
	   "flush the table");
	for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
		int64_t lo = table[k].ms[0], hi = table[k].ms[0];
		for (int i = 0; i < table[k].n; i++) {
			if (table[k].ms[i] < lo)
				lo = table[k].ms[i];
			if (table[k].ms[i] > hi)
				hi = table[k].ms[i];
		}
		s = read_sym(state, table[k].name);
		is_int(s.lat_min, lo, "%s: min", table[k].name);
		is_int((long long)s.lat_max, hi, "%s: max", table[k].name);
		ok(s.p50 >= (double)lo && s.p50 <= (double)hi,
		   "%s: p50 %.1f within [%lld, %lld]", table[k].name, s.p50,
		   (long long)lo, (long long)hi);
		ok(s.p95 >= s.p50 && s.p95 <= (double)hi,
		   "%s: p95 %.1f within [p50, %lld]", table[k].name, s.p95,
		   (long long)hi);
	}
	symstats_release(&t);
	symstats_release(&t2);

	/* Hours: the last bucket holds everything longer. */
	symstats_start(&a, "SLOW");
	symstats_end(&a, "SLOW", 6000, 100LL * 3600 * 1000, false);
	symstats_flush(&a, state, 6000);
	s = read_sym(state, "SLOW");
	ok(s.p50 > 3 * 3600 * 1000.0, "a 100 h attempt lands in the last bucket");

	/* An older file: six fields, no histogram. */
	int fd = openat(state, "symbols", O_WRONLY | O_TRUNC);
	const char *old = "OLD\t1000\t4\t400\t1\t0\n";
	ok(write(fd, old, strlen(old)) == (ssize_t)strlen(old), "write an old-format file");
	close(fd);
	s = read_sym(state, "OLD");
	is_int((long long)s.count, 4, "old line: count");
	ok(s.p50 < 0, "old line: no histogram, no percentile");
	is_int(s.lat_min, -1, "old line: no minimum");
	/* A line of the version before the minimum: it stays unknown as
	 * attempts are added, and the maximum still bounds the percentiles. */
	fd = openat(state, "symbols", O_WRONLY | O_TRUNC);
	old = "MID\t1000\t1\t91\t1\t0\t91\t27:1\n";
	ok(write(fd, old, strlen(old)) == (ssize_t)strlen(old), "write a line without the minimum");
	close(fd);
	s = read_sym(state, "MID");
	ok(s.lat_min == -1 && s.p50 <= 91, "no minimum; p50 %.1f <= max 91", s.p50);
	struct symstats m = { 0 };
	symstats_start(&m, "MID");
	symstats_end(&m, "MID", 9000, 5, true);
	ok(symstats_flush(&m, state, 9000) == 0, "add to it");
	s = read_sym(state, "MID");
	is_int(s.lat_min, -1, "the minimum stays unknown");
	is_int((long long)s.count, 2, "  the count adds up");
	symstats_release(&m);
	/* A hostile histogram field is ignored, not trusted. */
	fd = openat(state, "symbols", O_WRONLY | O_TRUNC);
	old = "BAD\t1000\t4\t400\t1\t0\t9\t999999:5,x:y,3:\n";
	ok(write(fd, old, strlen(old)) == (ssize_t)strlen(old), "write a hostile line");
	close(fd);
	s = read_sym(state, "BAD");
	is_int(s.rows, 1, "hostile histogram: the line still reads");
	ok(s.p50 < 0, "out-of-range buckets are dropped");

	symstats_release(&a);
	symstats_release(&b);
	close(state);
	scratch_remove();
	done_testing();
	return exit_status();
}
