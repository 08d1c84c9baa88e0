/*
 * correlate: message normalisation, signatures, root causes, the per-
 * signature windows, and what a failure costs with 10,000 open
 * signatures (src/correlate.h, SPEC 6.3).

 */
#include "correlate.h"
#include "tap.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static char *norm(const char *msg, const char *symbol)
{
	static char out[4096];
	struct sb sb = SB_INIT;
	correlate_normalize(msg, symbol, &sb);
	snprintf(out, sizeof(out), "%s", sb.buf ? sb.buf : "");
	sb_release(&sb);
	return out;
}

#define NORM_IS(msg, sym, want) \
	is_str(norm((msg), (sym)), (want), "normalize '%s' (symbol %s)", \
	       (msg) ? (const char *)(msg) : "(null)", \
	       (sym) ? (const char *)(sym) : "(null)")

static void test_normalize(void)
{
	NORM_IS("429 Too Many Requests", "AAPL", "NUM Too Many Requests");
	NORM_IS("no data for AAPL", "AAPL", "no data for TICKER");
	NORM_IS("no data for AAPL", NULL, "no data for TICKER");
	NORM_IS("no data for MSFT", "AAPL", "no data for TICKER");
	/* the item's own symbol, whatever it looks like */
	NORM_IS("no data for brk.b", "brk.b", "no data for TICKER");
	NORM_IS("no data for brk.b.", "brk.b", "no data for TICKER.");
	NORM_IS("no data for brk.b", NULL, "no data for brk.b");
	NORM_IS("no data for brk.b", "brk", "no data for brk.b");
	NORM_IS("bad symbol aapl", "aapl", "bad symbol TICKER");
	NORM_IS("no data for ThisIsALongSymbolName", "ThisIsALongSymbolName",
		"no data for TICKER");
	/* numbers */
	NORM_IS("pi is 3.14", NULL, "pi is NUM");
	NORM_IS("3.14", NULL, "NUM");
	NORM_IS("retry in 60 s", NULL, "retry in NUM s");
	NORM_IS("took 12345678901234 ms", NULL, "took NUM ms");
	NORM_IS("at 10:30:00", NULL, "at NUM");
	NORM_IS("version 1.2.3", NULL, "version NUM");
	NORM_IS("(42)", NULL, "(NUM)");
	ok(!strcmp(norm("fetched 1,000 rows", NULL), "fetched NUM rows"),
		"normalize '1,000' -> NUM (got '%s')",
		norm("fetched 1,000 rows", NULL));
	ok(!strcmp(norm("offset -5 out of range", NULL),
			"offset NUM out of range") ||
		!strcmp(norm("offset -5 out of range", NULL),
			"offset -NUM out of range"),
		"normalize negative number '-5' (got '%s')",
		norm("offset -5 out of range", NULL));
	ok(!strstr(norm("no bars before 2024-01-15", NULL), "2024"),
		"normalize date '2024-01-15' (got '%s')",
		norm("no bars before 2024-01-15", NULL));
	/* ticker-like words */
	NORM_IS("BRK.B", NULL, "TICKER");
	NORM_IS("BRK-B", NULL, "TICKER");
	NORM_IS("^GSPC", NULL, "TICKER");
	NORM_IS("EURUSD=X", NULL, "TICKER");
	NORM_IS("7203.T", NULL, "TICKER");
	NORM_IS("no quote for ^GSPC, EURUSD=X and 7203.T", NULL,
		"no quote for TICKER, TICKER and TICKER");
	NORM_IS("A", NULL, "TICKER");
	NORM_IS("ABCDEFGHIJ", NULL, "TICKER");		/* 10: still one */
	NORM_IS("ABCDEFGHIJK", NULL, "ABCDEFGHIJK");	/* 11: too long */
	/* words with lower case letters stay */
	NORM_IS("Too Many Requests", NULL, "Too Many Requests");
	NORM_IS("timeout", NULL, "timeout");
	NORM_IS("read timeout on socket", NULL, "read timeout on socket");
	NORM_IS("RateLimitError", NULL, "RateLimitError");
	NORM_IS("rate_limit", NULL, "rate_limit");
	NORM_IS("v2 api", NULL, "v2 api");
	/* sentence punctuation stays outside */
	NORM_IS("no data for AAPL.", NULL, "no data for TICKER.");
	NORM_IS("AAPL...", NULL, "TICKER...");
	NORM_IS("AAPL, MSFT; GOOG!", NULL, "TICKER, TICKER; TICKER!");
	NORM_IS("(AAPL)", NULL, "(TICKER)");
	NORM_IS("'AAPL': 404", NULL, "'TICKER': NUM");
	NORM_IS("retry after 3.5.", NULL, "retry after NUM.");
	NORM_IS("AAPL-", NULL, "TICKER-");
	is_str(norm("tab\tand\nnewline 7", NULL), "tab\tand\nnewline NUM",
	       "normalize keeps TAB and newline");
	NORM_IS(". - _", NULL, ". - _");
	/* empty and NULL */
	NORM_IS("", NULL, "");
	NORM_IS("", "AAPL", "");
	NORM_IS(NULL, NULL, "");
	NORM_IS(NULL, "AAPL", "");
	/* appending, not replacing */
	struct sb sb = SB_INIT;
	sb_adds(&sb, "x:");
	correlate_normalize("AAPL 1", NULL, &sb);
	is_str(sb.buf, "x:TICKER NUM", "normalize appends to the buffer");
	sb_release(&sb);
}

static bool is_hex16(const char *s)
{
	return strlen(s) == SIG_LEN && strspn(s, "0123456789abcdef") == SIG_LEN;
}

static void sig_of(struct failure f, char sig[SIG_LEN + 1], char *normbuf,
		   size_t n)
{
	struct sb st = SB_INIT;
	correlate_fill(&f, &st, sig);
	if (normbuf)
		snprintf(normbuf, n, "%s", f.norm ? f.norm : "(null)");
	sb_release(&st);
}

static void test_fill(void)
{
	struct failure base = {
		.agent = "strategy_analyst", .source = "koyfin",
		.category = "data_error", .type = "RateLimitError",
		.message = "429 Too Many Requests for AAPL",
		.symbol = "AAPL", .batch = "b1",
	};
	char s0[SIG_LEN + 1], s1[SIG_LEN + 1], nb[256];
	sig_of(base, s0, nb, sizeof(nb));
	ok(is_hex16(s0), "signature is 16 lower-case hex digits ('%s')", s0);
	is_str(nb, "NUM Too Many Requests for TICKER", "fill sets norm");

	struct failure f = base;
	sig_of(f, s1, NULL, 0);
	is_str(s1, s0, "same fields: same signature");
	f.symbol = "MSFT";
	f.batch = "b2";
	f.message = "429 Too Many Requests for MSFT";
	sig_of(f, s1, NULL, 0);
	is_str(s1, s0, "another symbol and batch: same signature");

	const char *what[] = { "agent", "category", "type", "source", "message" };
	for (int i = 0; i < 5; i++) {
		f = base;
		switch (i) {
		case 0: f.agent = "other_agent"; break;
		case 1: f.category = "timeout"; break;
		case 2: f.type = "HTTPError"; break;
		case 3: f.source = "yahoo"; break;
		case 4: f.message = "500 Internal Server Error"; break;
		}
		sig_of(f, s1, NULL, 0);
		ok(is_hex16(s1) && strcmp(s1, s0),
		   "another %s: another signature", what[i]);
	}
	/* field boundaries are not ambiguous */
	struct failure a = base, b = base;
	a.agent = "ab";
	a.category = "c";
	b.agent = "a";
	b.category = "bc";
	sig_of(a, s0, NULL, 0);
	sig_of(b, s1, NULL, 0);
	ok(strcmp(s0, s1), "(ab, c) and (a, bc) differ");
	/* NULL source / type count as empty */
	a = base;
	b = base;
	a.source = NULL;
	b.source = "";
	sig_of(a, s0, NULL, 0);
	sig_of(b, s1, NULL, 0);
	is_str(s0, s1, "NULL source is the empty source");
	a.type = NULL;
	b.type = "";
	sig_of(a, s0, NULL, 0);
	sig_of(b, s1, NULL, 0);
	is_str(s0, s1, "NULL type is the empty type");

	/* only the ticker and the numbers differ */
	a = base;
	b = base;
	a.message = "no data for AAPL after 3 retries (1.5 s)";
	a.symbol = "AAPL";
	b.message = "no data for BRK.B after 12 retries (0.25 s)";
	b.symbol = "BRK.B";
	sig_of(a, s0, nb, sizeof(nb));
	sig_of(b, s1, NULL, 0);
	is_str(s1, s0, "messages differing by ticker and numbers: same signature");
	is_str(nb, "no data for TICKER after NUM retries (NUM s)", "their norm");
	a.message = "no data for brk.b";
	a.symbol = "brk.b";
	b.message = "no data for aapl";
	b.symbol = "aapl";
	sig_of(a, s0, NULL, 0);
	sig_of(b, s1, NULL, 0);
	is_str(s1, s0, "odd own symbols are TICKER too: same signature");
	a.message = "no data for aapl";
	a.symbol = "AAPL";
	sig_of(a, s0, NULL, 0);
	ok(strcmp(s0, s1), "a lower-case word that is not the symbol stays");
	a.message = "fetched 999 rows";
	b.message = "fetched 1,000 rows";
	sig_of(a, s0, NULL, 0);
	sig_of(b, s1, NULL, 0);
	ok(!strcmp(s0, s1),
		"'999 rows' and '1,000 rows': same signature");
	/* storage is reused */
	struct sb st = SB_INIT;
	a = base;
	correlate_fill(&a, &st, s0);
	b = base;
	b.message = "x";
	correlate_fill(&b, &st, s1);
	is_str(b.norm, "x", "fill resets its storage");
	sb_release(&st);
}

static const char *cause_names[] = { "generic", "rate_limit", "auth",
				     "timeout", "network" };

static void cause_is(const char *type, const char *category, const char *msg,
		     const char *source, int want, const char *want_root)
{
	struct failure f = {
		.agent = "strategy_analyst", .source = source,
		.category = category ? category : "data_error", .type = type,
		.message = msg, .symbol = "AAPL", .batch = "b1",
	};
	int got = correlate_cause(&f);
	struct sb sb = SB_INIT;
	correlate_root_cause(&f, &sb);
	ok(got == want && !strcmp(sb.buf ? sb.buf : "", want_root),
	   "cause type=%s cat=%s msg='%s' src=%s -> %s / '%s'",
	   type ? type : "-", f.category, msg ? msg : "(null)",
	   source ? source : "(null)", cause_names[want], want_root);
	if (got != want || strcmp(sb.buf ? sb.buf : "", want_root))
		diag("got %s / '%s'", got >= 0 && got <= 4 ? cause_names[got] : "?",
		     sb.buf ? sb.buf : "");
	sb_release(&sb);
}

static void test_cause(void)
{
	const char *RL = "koyfin API rate limit exceeded";
	const char *AU = "koyfin API authentication failure";
	const char *TO = "koyfin API timeout";
	const char *NW = "koyfin network connectivity issue";
	const char *GE = "strategy_analyst failure via koyfin";

	cause_is("RateLimitError", NULL, "something", "koyfin", CAUSE_RATE_LIMIT, RL);
	cause_is("rate_limit_exceeded", NULL, "x", "koyfin", CAUSE_RATE_LIMIT, RL);
	cause_is("ThrottledError", NULL, "x", "koyfin", CAUSE_RATE_LIMIT, RL);
	cause_is(NULL, NULL, "429", "koyfin", CAUSE_RATE_LIMIT, RL);
	cause_is(NULL, NULL, "HTTP 429: slow down", "koyfin", CAUSE_RATE_LIMIT, RL);
	cause_is(NULL, NULL, "status=429", "koyfin", CAUSE_RATE_LIMIT, RL);
	cause_is(NULL, NULL, "Too Many Requests", "koyfin", CAUSE_RATE_LIMIT, RL);
	cause_is(NULL, NULL, "too many requests", "koyfin", CAUSE_RATE_LIMIT, RL);
	cause_is(NULL, NULL, "request throttled by vendor", "koyfin",
		 CAUSE_RATE_LIMIT, RL);
	cause_is(NULL, NULL, "rate limit hit", "koyfin", CAUSE_RATE_LIMIT, RL);
	/* rate limit wins over the others */
	cause_is(NULL, "timeout", "429 then timed out", "koyfin",
		 CAUSE_RATE_LIMIT, RL);

	cause_is(NULL, NULL, "401", "koyfin", CAUSE_AUTH, AU);
	cause_is(NULL, NULL, "HTTP 403 Forbidden", "koyfin", CAUSE_AUTH, AU);
	cause_is(NULL, NULL, "Unauthorized", "koyfin", CAUSE_AUTH, AU);
	cause_is(NULL, NULL, "unauthorized request", "koyfin", CAUSE_AUTH, AU);
	cause_is("AuthError", NULL, "denied", "koyfin", CAUSE_AUTH, AU);
	cause_is(NULL, NULL, "invalid API key", "koyfin", CAUSE_AUTH, AU);

	cause_is(NULL, "timeout", "killed", "koyfin", CAUSE_TIMEOUT, TO);
	cause_is(NULL, NULL, "read timed out", "koyfin", CAUSE_TIMEOUT, TO);
	cause_is(NULL, NULL, "HTTP 504", "koyfin", CAUSE_TIMEOUT, TO);
	cause_is("TimeoutError", NULL, "x", "koyfin", CAUSE_TIMEOUT, TO);

	cause_is(NULL, NULL, "HTTP 500", "koyfin", CAUSE_NETWORK, NW);
	cause_is(NULL, NULL, "502 Bad Gateway", "koyfin", CAUSE_NETWORK, NW);
	cause_is(NULL, NULL, "503 Service Unavailable", "koyfin", CAUSE_NETWORK, NW);
	cause_is(NULL, NULL, "connect: Connection refused", "koyfin",
		 CAUSE_NETWORK, NW);
	cause_is("ConnectionError", NULL, "x", "koyfin", CAUSE_NETWORK, NW);
	cause_is(NULL, NULL, "host unreachable", "koyfin", CAUSE_NETWORK, NW);
	/* stderr patterns file a refused connection under "timeout" */
	cause_is(NULL, "timeout", "ConnectionRefusedError: [Errno 111] Connection refused",
		 "koyfin", CAUSE_NETWORK, NW);
	cause_is(NULL, "timeout", "socket.gaierror: Temporary failure in name resolution",
		 "koyfin", CAUSE_NETWORK, NW);
	cause_is(NULL, "timeout", "Connection timed out", "koyfin", CAUSE_TIMEOUT, TO);

	cause_is(NULL, NULL, "no data for AAPL", "koyfin", CAUSE_GENERIC, GE);
	cause_is("DataError", NULL, "bad", "koyfin", CAUSE_GENERIC, GE);
	cause_is(NULL, NULL, "", "koyfin", CAUSE_GENERIC, GE);
	cause_is(NULL, NULL, NULL, "koyfin", CAUSE_GENERIC, GE);
	cause_is(NULL, NULL, "no data", NULL, CAUSE_GENERIC,
		 "strategy_analyst failure");
	cause_is(NULL, NULL, "no data", "", CAUSE_GENERIC,
		 "strategy_analyst failure");
	/* codes are words: 4290 and 1429 are not 429, 5000 not 500 */
	cause_is(NULL, NULL, "fetched 4290 rows", "koyfin", CAUSE_GENERIC, GE);
	cause_is(NULL, NULL, "fetched 1429 rows", "koyfin", CAUSE_GENERIC, GE);
	cause_is(NULL, NULL, "id x429 and 429x", "koyfin", CAUSE_GENERIC, GE);
	cause_is(NULL, NULL, "code 14290", "koyfin", CAUSE_GENERIC, GE);
	cause_is(NULL, NULL, "5000 bars", "koyfin", CAUSE_GENERIC, GE);
	cause_is(NULL, NULL, "4010", "koyfin", CAUSE_GENERIC, GE);
	/* without a source the API forms name the agent */
	cause_is("RateLimitError", NULL, "x", NULL, CAUSE_RATE_LIMIT,
		 "strategy_analyst API rate limit exceeded");
	cause_is(NULL, NULL, "401", "", CAUSE_AUTH,
		 "strategy_analyst API authentication failure");
	cause_is(NULL, "timeout", "x", NULL, CAUSE_TIMEOUT,
		 "strategy_analyst API timeout");
	cause_is(NULL, NULL, "connection refused", NULL, CAUSE_NETWORK,
		 "strategy_analyst network connectivity issue");

	/* Words are matched inside tickers of the raw message. */
	struct failure f = { .agent = "strategy_analyst", .source = "koyfin",
			     .category = "data_error", .type = NULL,
			     .message = "no data for CDNS", .symbol = "CDNS" };
	int c = correlate_cause(&f);
	ok(c == CAUSE_GENERIC,
		"'no data for CDNS' is generic (got %s)",
		c >= 0 && c <= 4 ? cause_names[c] : "?");
}

/* ---- windows ---- */

static bool sorted(const struct corr_sig *s)
{
	for (size_t i = 1; i < s->n; i++)
		if (s->ev[i - 1].ms > s->ev[i].ms)
			return false;
	return true;
}

static void test_windows(void)
{
	struct correlator c;
	size_t d = 99;
	const struct corr_sig *w;
	correlate_init(&c, 1000, 3);
	is_int(c.nsigs, 0, "init: no signatures");

	w = correlate_add(&c, "sigA", "AAPL", "b1", 0, &d);
	ok(w && w->n == 1 && d == 1, "first failure: window of 1, 1 distinct");
	is_str(w->sig, "sigA", "window names its signature");
	is_str(w->ev[0].symbol, "AAPL", "event symbol");
	is_str(w->ev[0].batch, "b1", "event batch");
	w = correlate_add(&c, "sigA", "MSFT", NULL, 500, &d);
	ok(w->n == 2 && d == 2, "second symbol: 2 distinct");
	is_str(w->ev[1].batch, "", "NULL batch stored as empty");
	w = correlate_add(&c, "sigA", "AAPL", "b2", 600, &d);
	ok(w->n == 3 && d == 2, "same symbol again counts once (n %zu, d %zu)",
	   w->n, d);
	for (int i = 0; i < 5; i++)
		w = correlate_add(&c, "sigA", "AAPL", "b3", 601 + i, &d);
	ok(w->n == 8 && d == 2, "AAPL failing many times: still 2 distinct");
	w = correlate_add(&c, "sigA", "GOOG", "b1", 700, &d);
	ok(w->n == 9 && d == 3, "third symbol: 3 distinct");
	w = correlate_add(&c, "sigA", "IBM", "b1", 800, &d);
	is_int(d, 3, "distinct counting stops at min_group");
	correlate_add(&c, "sigA", "AMZN", "b1", 800, NULL);
	ok(1, "distinct may be NULL");

	/* another signature is another window */
	w = correlate_add(&c, "sigB", "AAPL", "b1", 800, &d);
	ok(w->n == 1 && d == 1 && c.nsigs == 2, "another signature: own window");

	/* the window slides: events older than ms - window expire */
	w = correlate_add(&c, "sigA", "TSLA", "b1", 1600, &d);
	/* kept: >= 600: AAPL 600..605, GOOG 700, IBM 800, AMZN 800, TSLA */
	ok(w->n == 10 && w->ev[0].ms == 600 && w->ev[w->n - 1].ms == 1600,
	   "older than window expired, boundary kept (n %zu, first %lld)",
	   w->n, (long long)w->ev[0].ms);
	bool none_old = true;
	for (size_t i = 0; i < w->n; i++)
		none_old &= w->ev[i].ms >= 1600 - 1000;
	ok(none_old, "every event within window_ms");
	w = correlate_add(&c, "sigA", "NFLX", "b1", 5000, &d);
	ok(w->n == 1 && d == 1, "after a long quiet: only the new one");

	/* out of order: sorted by time */
	w = correlate_add(&c, "sigA", "A1", "b", 4990, &d);
	w = correlate_add(&c, "sigA", "A2", "b", 4500, &d);
	w = correlate_add(&c, "sigA", "A3", "b", 4995, &d);
	w = correlate_add(&c, "sigA", "A4", "b", 4000, &d);
	w = correlate_add(&c, "sigA", "A5", "b", 4500, &d);
	ok(w->n == 6 && sorted(w), "added out of order: sorted (n %zu)", w->n);
	ok(w->ev[0].ms == 4000 && !strcmp(w->ev[0].symbol, "A4") &&
	   w->ev[5].ms == 5000 && !strcmp(w->ev[5].symbol, "NFLX"),
	   "oldest first, newest last");
	ok(!strcmp(w->ev[1].symbol, "A2") && !strcmp(w->ev[2].symbol, "A5"),
	   "equal times keep arrival order");
	is_int(w->last_ms, 5000, "last_ms is the newest, not the last added");
	is_int(d, 3, "distinct over out-of-order window");

	/* prune forgets quiet signatures */
	correlate_prune(&c, 5500);
	ok(c.nsigs == 1 && !strcmp(c.sigs[0]->sig, "sigA"),
	   "prune: sigB (last 800) forgotten, sigA (last 5000) kept");
	ok(strmap_get(&c.index, "sigA") && !strmap_get(&c.index, "sigB"),
	   "prune rebuilt the index");
	w = correlate_add(&c, "sigB", "AAPL", "b1", 5600, &d);
	ok(w->n == 1 && c.nsigs == 2, "a pruned signature starts afresh");
	w = correlate_add(&c, "sigA", "ZZ", "b", 5600, &d);
	ok(w->n == 4 && w->ev[0].ms == 4990,
	   "sigA kept its window through prune (4000..4500 expired, n %zu)",
	   w->n);
	correlate_prune(&c, 5600 + 1000);
	is_int(c.nsigs, 2, "prune at exactly last + window keeps");
	correlate_prune(&c, 5600 + 1001);
	is_int(c.nsigs, 0, "prune past window forgets all");
	correlate_release(&c);
	is_int(c.nsigs, 0, "release");

	/* the 4096-event cap */
	correlate_init(&c, 1000000, 2);
	for (int i = 0; i < 5000; i++)
		w = correlate_add(&c, "cap", "AAPL", "b", i, &d);
	ok(w->n == 4096 && w->ev[0].ms == 5000 - 4096 && w->ev[4095].ms == 4999,
	   "window capped at 4096, newest kept (n %zu, first %lld)", w->n,
	   (long long)w->ev[0].ms);
	ok(sorted(w), "capped window sorted");
	is_int(d, 1, "one symbol: 1 distinct");
	correlate_release(&c);

	/* distinct counted before the cap drops the oldest */
	correlate_init(&c, 1000000, 2);
	correlate_add(&c, "cap", "OLD", "b", 0, &d);
	for (int i = 1; i <= 4096; i++)
		w = correlate_add(&c, "cap", "NEW", "b", i, &d);
	bool old_in = false;
	for (size_t i = 0; i < w->n; i++)
		old_in |= !strcmp(w->ev[i].symbol, "OLD");
	ok(!old_in && w->n == 4096, "the cap dropped the oldest event");
	ok(d == 1,
		"distinct matches the returned window (got %zu, window has 1)", d);
	correlate_release(&c);

	/* min_group may be up to 1000000 (conf.c): distinct counts to it */
	correlate_init(&c, 1000000, 100);
	char sym[16];
	for (int i = 0; i < 100; i++) {
		snprintf(sym, sizeof(sym), "S%d", i);
		w = correlate_add(&c, "big", sym, "b", i, &d);
	}
	is_int(w->n, 100, "min_group 100: window of 100");
	ok(d == 100,
		"min_group 100: 100 distinct symbols counted (got %zu)", d);
	correlate_release(&c);
}

/* ---- cost with 10,000 open signatures ---- */

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (b->tv_nsec - a->tv_nsec) / 1e9;
}

static void test_bench(void)
{
	enum { NSIG = 10000, PRE = 2, ADDS = 100000, NSYM = 500 };
	static char sigs[NSIG][SIG_LEN + 1];
	static char syms[NSYM][16];
	struct correlator c;
	struct timespec t0, t1;
	size_t d = 0, total = 0;

	for (int i = 0; i < NSIG; i++)
		snprintf(sigs[i], sizeof(sigs[i]), "%016llx",
			 (unsigned long long)hash64((const char *)&i, sizeof(i)));
	for (int i = 0; i < NSYM; i++)
		snprintf(syms[i], sizeof(syms[i]), "SYM%d", i);
	/* a 10-minute window, events 1 ms apart: nothing expires */
	correlate_init(&c, 10 * 60000, 3);
	int64_t ms = 1700000000000LL;
	for (int k = 0; k < PRE; k++)
		for (int i = 0; i < NSIG; i++)
			correlate_add(&c, sigs[i], syms[(i + k) % NSYM], "batch",
				      ms++, &d);
	is_int(c.nsigs, NSIG, "bench: %d open signatures", NSIG);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < ADDS; i++) {
		/* spread over the signatures, not in slot order */
		unsigned s = (unsigned)((uint64_t)i * 7919u % NSIG);
		const struct corr_sig *w = correlate_add(
			&c, sigs[s], syms[(unsigned)i % NSYM], "batch", ms++, &d);
		total += w->n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double per_us = secs(&t0, &t1) * 1e6 / ADDS;
	is_int(c.nsigs, NSIG, "bench: still %d signatures", NSIG);
	ok(total > (size_t)ADDS * PRE, "bench: windows grew (mean n %.1f)",
	   (double)total / ADDS);
	diag("correlate_add: %.3f us per failure (%d adds over %d open "
	     "signatures, %.1f ms total)",
	     per_us, ADDS, NSIG, secs(&t0, &t1) * 1e3);
	double limit = 10.0;
#if defined(__SANITIZE_ADDRESS__)
	limit *= 10; /* sanitizers: a looser bound, the figure is still shown */
#endif
	ok(per_us < limit, "correlation costs %.3f us per failure (< %.0f us)",
	   per_us, limit);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	correlate_prune(&c, ms + 10 * 60000 + 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	is_int(c.nsigs, 0, "bench: prune of %d quiet signatures (%.1f ms)", NSIG,
	       secs(&t0, &t1) * 1e3);
	correlate_release(&c);
}

int main(void)
{
	test_normalize();
	test_fill();
	test_cause();
	test_windows();
	test_bench();
	done_testing();
	return exit_status();
}
