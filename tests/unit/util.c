/*
 * util.c: the shared parsers and helpers of src/util.h -- durations, sizes,
 * integers, dates and times, UTF-8 validation, shell-like word splitting
 * and the string map.
 */
#include "tap.h"
#include "home.h"
#include "inifile.h"
#include "job.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- durations ---- */

static void dur_ok(const char *s, int64_t want)
{
	int64_t ms = -1;
	char why[WHY_BUF] = "";
	int rc = parse_duration_ms(s, &ms, why);
	if (!ok(rc == 0 && ms == want, "duration '%s' = %lld ms", s,
		(long long)want))
		diag("rc %d, got %lld, why '%s'", rc, (long long)ms, why);
}

static void dur_bad(const char *s, const char *why_part)
{
	int64_t ms = 12345;
	char why[WHY_BUF] = "";
	int rc = parse_duration_ms(s, &ms, why);
	ok(rc == -1 && strstr(why, why_part) && ms == 12345,
	   "duration '%s' refused (%s)", s, why_part);
	if (rc != -1 || !strstr(why, why_part))
		diag("rc %d, why '%s'", rc, why);
}

static void test_durations(void)
{
	dur_ok("0", 0);
	dur_ok("5", 5000);
	dur_ok("5s", 5000);
	dur_ok("2m", 120000);
	dur_ok("3h", 3 * 3600000LL);
	dur_ok("7d", 7 * 86400000LL);
	dur_ok("90d", 90 * 86400000LL);
	dur_ok("0.5s", 500);
	dur_ok("1.5m", 90000);
	dur_ok("1.5", 1500);
	dur_ok("0.25", 250);
	dur_ok("0.001s", 1);
	dur_ok("0.0001s", 0);	/* below a millisecond rounds down */
	dur_ok("0.5d", 43200000);
	dur_ok("007s", 7000);
	dur_bad("", "not a duration");
	dur_bad("s", "not a duration");
	dur_bad("5x", "not a duration");
	dur_bad("-5s", "not a duration");
	dur_bad("+5s", "not a duration");
	dur_bad("5 s", "not a duration");
	dur_bad(" 5", "not a duration");
	dur_bad("5s ", "not a duration");
	dur_bad("1.s", "not a duration");
	dur_bad(".5", "not a duration");
	dur_bad("1e3", "not a duration");
	dur_bad("5S", "not a duration");
	dur_bad("1,5s", "not a duration");
	/* Compound durations, larger units first; ms and w. */
	dur_ok("1h30m", 90 * 60000LL);
	dur_ok("1d12h", 36 * 3600000LL);
	dur_ok("2w", 14 * 86400000LL);
	dur_ok("1m05s", 65000);
	dur_ok("850ms", 850);
	dur_ok("1s500ms", 1500);
	dur_ok("1w2d3h4m5s", (9 * 86400LL + 3 * 3600 + 4 * 60 + 5) * 1000);
	dur_bad("1h30", "not a duration");	/* a unit on every part */
	dur_bad("30m1h", "not a duration");	/* larger units first */
	dur_bad("1h1h", "not a duration");
	dur_bad("1hm", "not a duration");
	dur_bad("5w5", "not a duration");
	dur_bad("5300w", "at most 36500d");
	dur_bad("9999999999999999999", "not a duration"); /* 19 digits */
	dur_bad("99999999999999999d", "at most 36500d");
	dur_ok("36500d", 36500 * 86400000LL);
	dur_bad("36501d", "at most 36500d (got 36501d)");
	dur_bad("876001h", "at most 36500d (got 876001h)");
	dur_bad("36500.5d", "at most 36500d");
}

/* ---- sizes ---- */

static void size_ok(const char *s, uint64_t want)
{
	uint64_t v = 1;
	char why[WHY_BUF] = "";
	int rc = parse_size(s, &v, why);
	if (!ok(rc == 0 && v == want, "size '%s' = %llu", s,
		(unsigned long long)want))
		diag("rc %d, got %llu, why '%s'", rc, (unsigned long long)v,
		     why);
}

static void size_bad(const char *s, const char *why_part)
{
	uint64_t v = 777;
	char why[WHY_BUF] = "";
	int rc = parse_size(s, &v, why);
	ok(rc == -1 && strstr(why, why_part) && v == 777,
	   "size '%s' refused (%s)", s, why_part);
	if (rc != -1 || !strstr(why, why_part))
		diag("rc %d, why '%s'", rc, why);
}

static void test_sizes(void)
{
	size_ok("0", 0);
	size_ok("512", 512);
	size_ok("10B", 10);
	size_ok("10b", 10);
	size_ok("1K", 1024);
	size_ok("1k", 1024);
	size_ok("1KB", 1024);
	size_ok("1KiB", 1024);
	size_ok("512M", 512ULL << 20);
	size_ok("512MiB", 512ULL << 20);
	size_ok("512m", 512ULL << 20);
	size_ok("2G", 2ULL << 30);
	size_ok("2GB", 2ULL << 30);
	size_ok("1T", 1ULL << 40);
	size_ok("8388607T", 8388607ULL << 40);
	size_bad("", "not a size");
	size_bad("K", "not a size");
	size_bad("1X", "not a size");
	size_bad("1.5M", "not a size");
	size_bad("-1", "not a size");
	size_bad("1 K", "not a size");
	size_bad(" 1K", "not a size");
	size_bad("1K ", "not a size");
	size_bad("1iB", "not a size");
	size_bad("1KBB", "not a size");
	size_bad("1P", "not a size");
	size_bad("0x10", "not a size");
	size_bad("8388608T", "too large");
}

/* ---- integers and numbers ---- */

static void int_case(const char *s, long long lo, long long hi, int want_rc,
		     long long want, const char *why_part)
{
	long long v = 4242;
	char why[WHY_BUF] = "";
	int rc = parse_int(s, lo, hi, &v, why);
	if (want_rc == 0)
		ok(rc == 0 && v == want, "int '%s' in %lld..%lld = %lld", s,
		   lo, hi, want);
	else
		ok(rc == -1 && v == 4242 && strstr(why, why_part),
		   "int '%s' in %lld..%lld refused (%s)", s, lo, hi, why_part);
	if (rc != want_rc)
		diag("rc %d, got %lld, why '%s'", rc, v, why);
}

/* ---- bounds and saturating deadlines ---- */

static void test_bounds(void)
{
	char why[WHY_BUF] = "";
	int64_t ms = -1;
	uint64_t v = 1;
	ok(parse_duration_max("1h", 3600000, &ms, why) == 0 && ms == 3600000,
	   "1h at a bound of 1h: accepted");
	ok(parse_duration_max("3600.001", 3600000, &ms, why) == -1 &&
		   !strcmp(why, "at most 1h (got 3600.001)") && ms == 3600000,
	   "one millisecond above 1h: '%s'", why);
	ok(parse_duration_max("2s", 1500, &ms, why) == -1 &&
		   !strcmp(why, "at most 1.500s (got 2s)"),
	   "a bound of no whole unit: '%s'", why);
	ok(parse_size_max("64T", 1ull << 46, &v, why) == 0 && v == 1ull << 46,
	   "64T at a bound of 64T: accepted");
	ok(parse_size_max("65T", 1ull << 46, &v, why) == -1 &&
		   !strcmp(why, "at most 64T (got 65T)"),
	   "65T above 64T: '%s'", why);
	ok(parse_size_max("4097", 4096, &v, why) == -1 &&
		   !strcmp(why, "at most 4K (got 4097)"),
	   "4097 above 4K: '%s'", why);
	ok(parse_size_max("1001", 1000, &v, why) == -1 &&
		   !strcmp(why, "at most 1000 (got 1001)"),
	   "1001 above 1000: '%s'", why);
	is_int(add_sat(INT64_MAX - 1, 5), INT64_MAX, "add_sat saturates up");
	is_int(add_sat(INT64_MIN + 1, -5), INT64_MIN, "add_sat saturates down");
	is_int(add_sat(40, 2), 42, "add_sat adds");
	is_int(deadline_ns(1000, 106752 * 86400000LL), INT64_MAX,
	       "deadline_ns of 106752 days saturates");
	is_int(deadline_ns(5, 2), 2000005, "deadline_ns adds ms as ns");
	is_int(deadline_ns(INT64_MAX / 2, INT64_MAX / 2), INT64_MAX,
	       "deadline_ns: an overflowing product saturates");
}

static void test_ints(void)
{
	int_case("0", -100, 100, 0, 0, NULL);
	int_case("-100", -100, 100, 0, -100, NULL);
	int_case("100", -100, 100, 0, 100, NULL);
	int_case("+5", -100, 100, 0, 5, NULL);	/* strtoll's sign */
	int_case("007", -100, 100, 0, 7, NULL);	/* decimal, not octal */
	int_case("101", -100, 100, -1, 0, "out of range");
	int_case("-101", -100, 100, -1, 0, "out of range");
	int_case("0", 1, 1000, -1, 0, "out of range");
	int_case("1e9", -100, 100, -1, 0, "not an integer");
	int_case("0x10", -100, 100, -1, 0, "not an integer");
	int_case("1.0", -100, 100, -1, 0, "not an integer");
	int_case("", -100, 100, -1, 0, "not an integer");
	int_case(" 5", -100, 100, -1, 0, "not an integer");
	int_case("5 ", -100, 100, -1, 0, "not an integer");
	int_case("abc", -100, 100, -1, 0, "not an integer");
	int_case("-", -100, 100, -1, 0, "not an integer");
	int_case("99999999999999999999", -100, 100, -1, 0, "not an integer");

	double d = -1;
	char why[WHY_BUF];
	ok(parse_double("0.2", 0, 1, &d, why) == 0 && d == 0.2,
	   "double 0.2 in 0..1");
	ok(parse_double("0", 0, 1, &d, why) == 0 && d == 0, "double 0 in 0..1");
	ok(parse_double("1", 0, 1, &d, why) == 0 && d == 1, "double 1 in 0..1");
	d = 9;
	ok(parse_double("2", 0, 1, &d, why) < 0 && strstr(why, "out of range")
	   && d == 9, "double 2 not in 0..1");
	ok(parse_double("-0.1", 0, 1, &d, why) < 0, "double -0.1 not in 0..1");
	ok(parse_double("nan", 0, 1, &d, why) < 0, "double nan refused");
	ok(parse_double("inf", 0, 1e300, &d, why) < 0, "double inf refused");
	ok(parse_double("1e999", 0, 1e300, &d, why) < 0,
	   "double overflow refused");
	ok(parse_double("", 0, 1, &d, why) < 0, "double '' refused");
	ok(parse_double(" 0.5", 0, 1, &d, why) < 0,
	   "double with a leading blank refused");
	ok(parse_double("0.5x", 0, 1, &d, why) < 0 &&
	   strstr(why, "not a number"), "double '0.5x' refused");
}

/* ---- dates and times ---- */

static void date_ok(const char *s, int64_t want_days)
{
	int64_t days = -1;
	char why[WHY_BUF] = "";
	int rc = parse_date(s, &days, why);
	if (!ok(rc == 0 && days == want_days, "date %s = day %lld", s,
		(long long)want_days))
		diag("rc %d, got %lld, why '%s'", rc, (long long)days, why);
}

static void date_bad(const char *s)
{
	int64_t days = -1;
	char why[WHY_BUF] = "";
	int rc = parse_date(s, &days, why);
	ok(rc == -1 && strstr(why, "not a date"), "date '%s' refused", s);
}

static void test_dates(void)
{
	date_ok("1970-01-01", 0);
	date_ok("1970-01-02", 1);
	date_ok("1969-12-31", -1);
	date_ok("2000-02-29", 951782400 / 86400);	/* divisible by 400 */
	date_ok("2000-03-01", 11017);
	date_ok("2024-02-29", 1709164800 / 86400);
	date_ok("2024-12-31", 1709164800 / 86400 + 306);
	date_ok("2100-03-01", 4107542400LL / 86400);
	date_ok("2026-11-24", 1795544414 / 86400);
	date_bad("2023-02-29");
	date_bad("1900-02-29");	/* divisible by 100, not 400 */
	date_bad("2100-02-29");
	date_bad("2023-13-01");
	date_bad("2023-00-10");
	date_bad("2023-01-00");
	date_bad("2023-01-32");
	date_bad("2023-04-31");
	date_bad("2023-06-31");
	date_bad("2023-1-01");
	date_bad("2023-01-1");
	date_bad("23-01-01");
	date_bad("2023/01/01");
	date_bad("2023-01-01x");
	date_bad("2023-01-01 ");
	date_bad(" 2023-01-01");
	date_bad("2023-01-01T00:00:00Z");
	date_bad("");
	date_bad("2023-01");
	date_bad("+023-01-01");
}

static void time_ok(const char *s, int64_t want)
{
	int64_t ms = -1;
	char why[WHY_BUF] = "";
	int rc = parse_time_arg(s, &ms, why);
	if (!ok(rc == 0 && ms == want, "time %s = %lld ms", s, (long long)want))
		diag("rc %d, got %lld, why '%s'", rc, (long long)ms, why);
}

static void time_bad(const char *s)
{
	int64_t ms = -1;
	char why[WHY_BUF] = "";
	int rc = parse_time_arg(s, &ms, why);
	ok(rc == -1 && strstr(why, "not a time"), "time '%s' refused", s);
}

static void test_times(void)
{
	const int64_t t = 1795544414LL * 1000; /* 2026-11-24T18:20:14Z */
	time_ok("1970-01-01T00:00:00Z", 0);
	time_ok("2026-11-24T18:20:14Z", t);
	time_ok("2026-11-24T18:20:14.123Z", t + 123);
	time_ok("2026-11-24T18:20:14.5Z", t + 500);
	time_ok("2026-11-24T18:20:14.05Z", t + 50);
	time_ok("2026-11-24T18:20:14.123456789Z", t + 123);
	time_ok("2026-11-24T20:20:14+02:00", t);
	time_ok("2026-11-24T20:20:14.123+02:00", t + 123);
	time_ok("2026-11-24T13:20:14-05:00", t);
	time_ok("2026-11-24T18:50:14+00:30", t);
	time_ok("2026-11-24T18:20:14+00:00", t);
	time_ok("2026-11-25T00:20:14+06:00", t);
	time_ok("2026-11-24t18:20:14z", t);
	time_ok("2026-11-24 18:20:14Z", t);
	time_ok("2026-11-24", 1795544414LL / 86400 * 86400000);
	time_ok("2000-02-29", 951782400LL * 1000);
	time_ok("1999-12-31T23:59:59Z", 946684799LL * 1000);
	time_bad("2026-11-24T18:20:14");	/* no zone */
	time_bad("2026-11-24T18:20Z");
	time_bad("2026-11-24T24:00:00Z");
	time_bad("2026-11-24T18:60:00Z");
	time_bad("2026-11-24T18:20:14+0200");
	time_bad("2026-11-24T18:20:14+2:00");
	time_bad("2026-11-24T18:20:14.Z");
	time_bad("2026-11-24T18:20:14ZZ");
	time_bad("2026-11-24T");
	time_bad("2023-02-29T00:00:00Z");
	time_bad("2023-02-29");
	time_bad("yesterday");
	time_bad("");
	time_bad("1795544414");
}

static void test_fmt_time(void)
{
	char buf[TIME_BUF];
	is_str(fmt_time(0, buf), "1970-01-01T00:00:00.000Z", "fmt_time(0)");
	is_str(fmt_time(1795544414123LL, buf), "2026-11-24T18:20:14.123Z",
	       "fmt_time of the SPEC's example");
	is_str(fmt_time(951782400000LL + 86399999, buf),
	       "2000-02-29T23:59:59.999Z", "fmt_time on a leap day");
	is_str(fmt_time(2147483648000LL, buf), "2038-01-19T03:14:08.000Z",
	       "fmt_time past 2^31 seconds");
	is_int(strlen(fmt_time(1795544414123LL, buf)), 24,
	       "fmt_time is 24 characters");

	/* Round trips: parse(fmt(x)) == x, fmt(parse(s)) == s. */
	static const int64_t samples[] = {
		0, 1, 999, 1000, 86399999, 86400000, 951782400000LL,
		951868799999LL, 1709164800000LL, 1795544414123LL,
		4102444799999LL, 253402300799999LL, /* 9999-12-31T23:59:59.999Z */
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof(samples) / sizeof(*samples); i++) {
		int64_t back = -1;
		fmt_time(samples[i], buf);
		if (parse_time_arg(buf, &back, NULL) < 0 || back != samples[i]) {
			diag("round trip of %lld: '%s' -> %lld",
			     (long long)samples[i], buf, (long long)back);
			bad++;
		}
	}
	ok(!bad, "fmt_time/parse_time_arg round trip on fixed samples");

	bad = 0;
	srand(42);
	for (int i = 0; i < 20000; i++) {
		int64_t x = ((int64_t)rand() << 20 ^ rand()) % 4102444800000LL;
		int64_t back = -1;
		if (x < 0)
			x = -x;
		fmt_time(x, buf);
		if (parse_time_arg(buf, &back, NULL) < 0 || back != x) {
			if (bad++ < 3)
				diag("round trip of %lld: '%s' -> %lld",
				     (long long)x, buf, (long long)back);
		}
	}
	ok(!bad, "fmt_time/parse_time_arg round trip on 20000 random times");

	static const char *const strs[] = {
		"2024-02-29T12:00:00.000Z", "1999-12-31T23:59:59.999Z",
		"2026-11-24T18:20:14.123Z", "2100-02-28T00:00:00.001Z",
	};
	bad = 0;
	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++) {
		int64_t ms;
		if (parse_time_arg(strs[i], &ms, NULL) < 0 ||
		    strcmp(fmt_time(ms, buf), strs[i])) {
			diag("'%s' -> '%s'", strs[i], buf);
			bad++;
		}
	}
	ok(!bad, "parse_time_arg/fmt_time round trip on strings");
}

/* ---- UTF-8 ---- */

static void utf8_case(const char *s, size_t n, bool want, const char *desc)
{
	ok(utf8_valid(s, n) == want, "utf8 %s: %s", want ? "valid" : "invalid",
	   desc);
}
#define U(s, want, desc) utf8_case((s), sizeof(s) - 1, (want), (desc))

static void test_utf8(void)
{
	U("", true, "empty");
	U("plain ASCII, ~!@#$%^&*()", true, "ASCII");
	U("caf\xC3\xA9", true, "2-byte e-acute");
	U("\xE2\x82\xAC", true, "3-byte euro sign");
	U("\xF0\x9F\x98\x80", true, "4-byte emoji");
	U("\xEF\xBB\xBF[job]", true, "BOM");
	U("\xC2\x80", true, "U+0080, smallest 2-byte");
	U("\xDF\xBF", true, "U+07FF");
	U("\xE0\xA0\x80", true, "U+0800, smallest 3-byte");
	U("\xED\x9F\xBF", true, "U+D7FF, below the surrogates");
	U("\xEE\x80\x80", true, "U+E000, above the surrogates");
	U("\xEF\xBF\xBF", true, "U+FFFF");
	U("\xF0\x90\x80\x80", true, "U+10000, smallest 4-byte");
	U("\xF4\x8F\xBF\xBF", true, "U+10FFFF, the largest");
	utf8_case("a\0b", 3, true, "NUL is a valid code point (checked elsewhere)");

	U("\xC0\xAF", false, "overlong '/' (C0 AF)");
	U("\xC1\xBF", false, "overlong C1 BF");
	U("\xC0\x80", false, "overlong NUL (C0 80)");
	U("\xE0\x80\xAF", false, "overlong 3-byte '/'");
	U("\xE0\x9F\xBF", false, "overlong 3-byte U+07FF");
	U("\xF0\x80\x80\xAF", false, "overlong 4-byte '/'");
	U("\xF0\x8F\xBF\xBF", false, "overlong 4-byte U+FFFF");
	U("\xED\xA0\x80", false, "surrogate U+D800");
	U("\xED\xBF\xBF", false, "surrogate U+DFFF");
	U("\xED\xA0\xBD\xED\xB8\x80", false, "CESU-8 surrogate pair");
	U("\xF4\x90\x80\x80", false, "U+110000, beyond Unicode");
	U("\xF5\x80\x80\x80", false, "lead byte F5");
	U("\xF8\x88\x80\x80\x80", false, "5-byte form");
	U("\xFC\x84\x80\x80\x80\x80", false, "6-byte form");
	U("\xFE", false, "byte FE");
	U("\xFF", false, "byte FF");
	U("\x80", false, "lone continuation byte");
	U("a\xBF" "b", false, "continuation byte inside ASCII");
	U("\xC3", false, "truncated 2-byte at the end");
	U("\xE2\x82", false, "truncated 3-byte at the end");
	U("\xF0\x9F\x98", false, "truncated 4-byte at the end");
	U("\xC3" "A", false, "2-byte lead followed by ASCII");
	U("\xE2\x82" "A", false, "3-byte lead, one continuation, ASCII");
	U("\xC3\n\xA9", false, "sequence broken by a newline");
	utf8_case("caf\xC3\xA9", 4, false, "length cuts a sequence");
	utf8_case("\xF0\x9F\x98\x80", 3, false, "length cuts an emoji");
}

/* ---- words ---- */

/* Split s and compare with want (words joined by '|'); NULL want: error. */
static void words_case(const char *s, const char *want, const char *why_part)
{
	char **w = (char **)0x1;
	size_t n = 99;
	char why[WHY_BUF] = "";
	int rc = split_words(s, &w, &n, why);
	if (!want) {
		ok(rc == -1 && strstr(why, why_part), "split [%s] fails: %s", s,
		   why_part);
		if (rc != -1)
			words_free(w);
		return;
	}
	struct sb got = SB_INIT;
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			sb_addf(&got, "%s%s", i ? "|" : "", w[i]);
		if (w[n] != NULL)
			sb_adds(&got, "<not NULL-terminated>");
	}
	char desc[256];
	snprintf(desc, sizeof(desc), "split [%s]", s);
	is_str(rc == 0 ? (got.buf ? got.buf : "") : "<error>", want, "%s", desc);
	if (rc == 0)
		words_free(w);
	sb_release(&got);
}

static void words_count(const char *s, size_t want)
{
	char **w = NULL;
	size_t n = 99;
	int rc = split_words(s, &w, &n, NULL);
	ok(rc == 0 && n == want, "split [%s] gives %zu words", s, want);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			if (!w[i] || w[i][0]) {
				ok(0, "word %zu of [%s] is empty", i, s);
				break;
			}
		words_free(w);
	}
}

static void test_words(void)
{
	words_case("a b c", "a|b|c", NULL);
	words_case("  a \t b\t\tc  ", "a|b|c", NULL);
	words_case("examples/agents/backtest --strategy sma",
		   "examples/agents/backtest|--strategy|sma", NULL);
	words_case("'a b' c", "a b|c", NULL);
	words_case("\"a b\" c", "a b|c", NULL);
	words_case("a\\ b c", "a b|c", NULL);
	words_case("x'a b'y", "xa by", NULL);
	words_case("'it'\"'\"'s'", "it's", NULL);
	words_case("\"say \\\"hi\\\"\"", "say \"hi\"", NULL);
	words_case("\"back\\\\slash\"", "back\\slash", NULL);
	words_case("\"a\\nb\"", "a\\nb", NULL);	/* only \" and \\ escape */
	words_case("'a\\b'", "a\\b", NULL);	/* nothing escapes in '' */
	words_case("\\'x", "'x", NULL);
	words_case("\\\\", "\\", NULL);
	words_case("$HOME `id` $(rm -rf /) ; | && *",
		   "$HOME|`id`|$(rm|-rf|/)|;|||&&|*", NULL);
	words_case("TZ=UTC LANG=C.UTF-8", "TZ=UTC|LANG=C.UTF-8", NULL);
	words_case("\"\xC3\xA9t\xC3\xA9\"", "\xC3\xA9t\xC3\xA9", NULL);
	words_count("", 0);
	words_count("   \t ", 0);
	words_count("''", 1);
	words_count("\"\"", 1);
	words_count("'' \"\" ''", 3);
	words_case("a '' b", "a||b", NULL);
	words_case("'unterminated", NULL, "unterminated");
	words_case("a 'b c", NULL, "unterminated");
	words_case("\"open", NULL, "unterminated");
	words_case("\"a\\\"", NULL, "unterminated");
	words_case("x\\", NULL, "trailing backslash");
}

/* ---- strmap ---- */

static void test_strmap(void)
{
	enum { N = 100000 };
	struct strmap m = STRMAP_INIT;
	char **keys = xmalloc(N * sizeof(char *));
	int bad = 0;

	ok(strmap_get(&m, "x") == NULL, "strmap: get on an empty map");
	for (size_t i = 0; i < N; i++) {
		keys[i] = xasprintf("key-%zu", i);
		if (strmap_put(&m, keys[i], i) != NULL)
			bad++;
	}
	ok(!bad, "strmap: %d fresh keys inserted", N);
	is_int(m.n, N, "strmap: count");
	ok(m.cap >= 2 * m.n && !(m.cap & (m.cap - 1)),
	   "strmap: capacity a power of two at most half full");

	bad = 0;
	for (size_t i = 0; i < N; i++) {
		char probe[32];
		snprintf(probe, sizeof(probe), "key-%zu", i);
		struct strmap_entry *e = strmap_get(&m, probe);
		if (!e || e->value != i || strcmp(e->key, probe))
			bad++;
	}
	ok(!bad, "strmap: every key found with its value (by a copy)");

	bad = 0;
	for (size_t i = 0; i < N; i += 7) {
		char probe[32];
		snprintf(probe, sizeof(probe), "key-%zu", i);
		struct strmap_entry *e = strmap_put(&m, probe, 424242);
		if (!e || e->value != i)
			bad++;
	}
	ok(!bad, "strmap: put of an existing key returns it unchanged");
	is_int(m.n, N, "strmap: duplicates do not grow the count");

	ok(!strmap_get(&m, "key-100000") && !strmap_get(&m, "key-") &&
	   !strmap_get(&m, "") && !strmap_get(&m, "KEY-1"),
	   "strmap: absent keys are absent");
	ok(strmap_put(&m, "", 5) == NULL && strmap_get(&m, "") &&
	   strmap_get(&m, "")->value == 5, "strmap: the empty key works");

	strmap_release(&m);
	ok(m.n == 0 && m.cap == 0 && !strmap_get(&m, "key-1"),
	   "strmap: released map is empty");
	for (size_t i = 0; i < N; i++)
		free(keys[i]);
	free(keys);
}

/* ---- small helpers ---- */

static void test_misc(void)
{
	ok(!has_control("plain text", false), "has_control: plain text");
	ok(has_control("a\tb", false), "has_control: tab counts");
	ok(!has_control("a\tb", true), "has_control: tab allowed on request");
	ok(has_control("a\x1b[31m", true), "has_control: ESC");
	ok(has_control("a\x7f", true), "has_control: DEL");
	ok(has_control("a\r", true), "has_control: CR");
	ok(!has_control("\xC3\xA9", false), "has_control: UTF-8 is not control");
	ok(str_has_suffix("a.job", ".job") && !str_has_suffix("job", ".job") &&
	   str_has_suffix(".job", ".job"), "str_has_suffix");

	struct sb sb = SB_INIT;
	sb_add_escaped(&sb, "a\nb\tc\x01" "d", 100);
	is_str(sb.buf, "a\\nb\\tc\\x01d", "sb_add_escaped escapes controls");
	sb_reset(&sb);
	sb_add_escaped(&sb, "abcdef", 3);
	is_str(sb.buf, "abc...", "sb_add_escaped truncates with ...");
	sb_release(&sb);

	char buf[64];
	/* One way of writing a duration: each form reads back. */
	static const struct { int64_t ms; const char *text; } fd[] = {
		{ 0, "0ms" }, { 850, "850ms" }, { 1234, "1.2s" },
		{ 6000, "6s" }, { 6090, "6s" }, { 59900, "59.9s" },
		{ 65000, "1m05s" }, { 7380000, "2h03m" },
		{ 273600000, "3d04h" }, { 14 * 86400000LL, "14d00h" },
	};
	for (size_t i = 0; i < sizeof(fd) / sizeof(fd[0]); i++) {
		int64_t back = -1;
		is_str(fmt_duration(fd[i].ms, buf, sizeof(buf)), fd[i].text,
		       "fmt_duration %lld", (long long)fd[i].ms);
		ok(parse_duration_ms(buf, &back, NULL) == 0 &&
		   back <= fd[i].ms, "  %s reads back", buf);
	}
	/* Did you mean: Damerau-Levenshtein at most 2, no ties. */
	static const char *const keys[] = { "agent", "max_children",
					     "timeout", "retries", NULL };
	is_int(edit_distance("agnet", "agent"), 1, "a transposition is 1");
	is_int(edit_distance("", "abc"), 3, "from nothing");
	is_str(did_you_mean("agnet", keys, 5), "agent", "agnet: agent");
	is_str(did_you_mean("max_childs", keys, 5), "max_children",
	       "max_childs: max_children");
	ok(did_you_mean("zzz", keys, 5) == NULL, "zzz: nothing near");
	static const char *const tie[] = { "abcd", "abce" };
	ok(did_you_mean("abcf", tie, 2) == NULL, "a tie: no guess");
	is_str(fmt_duration(723000, buf, sizeof(buf)), "12m03s",
	       "fmt_duration m");
	is_str(fmt_duration(7500000, buf, sizeof(buf)), "2h05m",
	       "fmt_duration h");
	is_str(plural(1, "item", "items"), "item", "plural: 1 item");
	is_str(plural(0, "item", "items"), "items", "plural: 0 items");
	is_str(plural(2, "match", "matches"), "matches", "plural: 2 matches");
}

/* ---- lock_within: no lock wait without an end ---- */

static void test_lock_within(void)
{
	char path[] = "/tmp/runner-lock-XXXXXX";
	int fd = mkstemp(path);
	int pipefd[2];
	if (fd < 0 || pipe(pipefd) < 0) {
		ok(0, "lock file: %s", strerror(errno));
		return;
	}
	unlink(path);
	ok(lock_within(fd, 100) == 0, "a free lock is taken at once");
	flock(fd, LOCK_UN);
	/* Another process holds it: a second open file description. */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	pid_t pid = fork();
	if (pid == 0) {
		int other = open(proc, O_RDWR);
		if (other < 0 || flock(other, LOCK_EX) < 0)
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	ok(read(pipefd[0], &c, 1) == 1, "another process holds the lock");
	int64_t t0 = mono_ns();
	int rc = lock_within(fd, 300);
	int err = errno;
	int64_t ms = (mono_ns() - t0) / 1000000;
	ok(rc < 0 && err == EWOULDBLOCK, "held all along: EWOULDBLOCK");
	ok(ms >= 290 && ms < 2000, "after the time given (%lld ms of 300)",
	   (long long)ms);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ok(lock_within(fd, 1000) == 0, "its holder gone: taken");
	close(fd);
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	inifile_setup(JOB_MAX_BYTES + 16);
	test_durations();
	test_sizes();
	test_bounds();
	test_ints();
	test_dates();
	test_times();
	test_fmt_time();
	test_utf8();
	test_words();
	test_strmap();
	test_misc();
	test_lock_within();
	done_testing();
	return exit_status();
}
