#include "report.h"
#include "results.h"
#include "exec.h"
#include "meta.h"
#include "shared.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that keep a page small whatever the batch (see report.h). */
#define MAX_RECTS 3000		/* attempts drawn on the timeline */
#define MAX_NOTABLE (MAX_RECTS / 2)
#define MAX_FAILED_ROWS 500
#define MAX_MEMBERS 50
#define MAX_GROUPS 100
#define MAX_PARAMS 50
#define MAX_MESSAGE 400		/* bytes of one message */
#define MAX_FIELD 200		/* bytes of a name, symbol, param */
#define NSLOWEST 20
#define NBUCKETS 100		/* completions chart */

/* SVG geometry (viewBox units; the SVG scales to the page width). */
#define SVG_W 1100
#define PLOT_L 64
#define PLOT_R 14

struct rctx {
	FILE *fp;
	const struct batch *b;
	struct shared *sh;
	int64_t now;
	struct sb tmp;
};

static void out(struct rctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void out(struct rctx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(x->fp, fmt, ap);
	va_end(ap);
}

/* Untrusted text, made printable UTF-8 (at most max bytes), HTML-escaped
 * for element content and double- or single-quoted attributes alike. */
static void text(struct rctx *x, const char *s, size_t max)
{
	if (!s)
		return;
	sb_reset(&x->tmp);
	sb_add_escaped(&x->tmp, s, max);
	for (size_t i = 0; i < x->tmp.len; i++) {
		char c = x->tmp.buf[i];
		switch (c) {
		case '&': fputs("&amp;", x->fp); break;
		case '<': fputs("&lt;", x->fp); break;
		case '>': fputs("&gt;", x->fp); break;
		case '"': fputs("&quot;", x->fp); break;
		case '\'': fputs("&#39;", x->fp); break;
		default: fputc(c, x->fp);
		}
	}
}

/* text(), or a dash for a field that does not apply. */
static void field(struct rctx *x, const char *s)
{
	if (s && *s)
		text(x, s, MAX_FIELD);
	else
		fputs("&ndash;", x->fp);
}

/* 12345 -> "12,345" */
static char *fmt_count(uint64_t n, char buf[32])
{
	char digits[24];
	int len = snprintf(digits, sizeof(digits), "%llu",
			   (unsigned long long)n);
	int o = 0;
	for (int i = 0; i < len; i++) {
		if (i && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

static char *fmt_dur(int64_t ms, char buf[32])
{
	return fmt_duration(ms, buf, 32);
}

/* ---- reading the model ---- */

/* ---- the page frame ---- */

static const char css[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,"
	"Helvetica,Arial,sans-serif;color:#1d1f23;background:#fff;"
	"margin:0 auto;padding:16px 24px 40px;max-width:1180px}\n"
	"h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:28px 0 8px;"
	"border-bottom:1px solid #d8dbe0;padding-bottom:3px}\n"
	"h3{font-size:15px;margin:14px 0 4px}\n"
	".sub{color:#59606b;margin:0 0 10px}\n"
	"nav{font-size:13px;margin:6px 0 0}nav a{margin-right:12px;color:#2f6fdb}\n"
	"table{border-collapse:collapse;margin:4px 0}"
	"td,th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}\n"
	"th{font-weight:600;color:#3b4049;border-bottom:1px solid #c9cdd3}\n"
	"table.list tr:nth-child(even) td{background:#f5f6f8}\n"
	"table.kv th{border:0;color:#59606b;font-weight:500;white-space:nowrap;"
	"padding-right:18px}\n"
	"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\n"
	"td.msg{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;"
	"word-break:break-word;max-width:560px}\n"
	".sym{font-family:ui-monospace,Menlo,Consolas,monospace;"
	"word-break:break-all}\n"
	".note{color:#59606b;font-size:13px;margin:4px 0}\n"
	".st{display:inline-block;padding:1px 8px;border-radius:9px;"
	"color:#fff;font-size:13px;font-weight:600;vertical-align:middle}\n"
	".st-completed,.st-succeeded{background:#2e9d4f}"
	".st-failed{background:#d63c3c}.st-partial{background:#e07b24}"
	".st-cancelled{background:#8a8f98}.st-running{background:#2f6fdb}"
	".st-pending,.st-paused,.st-retry_wait{background:#6b7380}\n"
	".legend span{display:inline-block;margin-right:14px;font-size:13px}\n"
	".legend i{display:inline-block;width:11px;height:11px;"
	"margin-right:4px;vertical-align:-1px;border-radius:2px}\n"
	".bar{display:inline-block;height:9px;background:#9aa3b0;"
	"border-radius:2px;vertical-align:middle}\n"
	".group{border:1px solid #d8dbe0;border-radius:6px;padding:6px 12px;"
	"margin:10px 0}\n"
	"ul.members{columns:3 220px;margin:4px 0;padding-left:18px;"
	"font-size:13px}\n"
	"svg{display:block;width:100%;height:auto;max-width:1100px}\n"
	"svg text{font:11px system-ui,sans-serif;fill:#3b4049}\n"
	"svg .ax{stroke:#c9cdd3;stroke-width:1}"
	"svg .gr{stroke:#eceef1;stroke-width:1}\n"
	".k-s{fill:#2e9d4f;background:#2e9d4f}.k-f{fill:#d63c3c;background:#d63c3c}"
	".k-c{fill:#9a9a9a;background:#9a9a9a}.k-i{fill:#f08c00;background:#f08c00}"
	".k-u{fill:#2f6fdb;background:#2f6fdb}.k-p{fill:#c9ced6;background:#c9ced6}"
	".k-w{fill:#b9a3e3;background:#b9a3e3}.k-z{fill:#8fb3ef;background:#8fb3ef}\n"
	"rect.r{stroke:#1d1f23;stroke-width:1.2}"
	"svg text.an{font-size:9px;fill:#fff;font-weight:700}\n"
	"footer{margin-top:36px;color:#8a8f98;font-size:12px}\n"
	"@media print{nav{display:none}body{padding:0}}\n";

/* An attempt's outcome in words; OUT_NONE: it has not ended. */
static const char *outcome_label(int o)
{
	const char *s = outcome_name(o);
	return s ? s : "running";
}

/* The outcome of a drawn attempt as a CSS class letter. */
static char outcome_class(int o)
{
	switch (o) {
	case OUT_SUCCEEDED: return 's';
	case OUT_FAILED: return 'f';
	case OUT_CANCELLED: return 'c';
	case OUT_INTERRUPTED: return 'i';
	default: return 'u';
	}
}

static void head(struct rctx *x, int status)
{
	const struct batch_conf *c = &x->b->c;
	out(x, "<!doctype html>\n<html lang=\"en\">\n<head>\n"
	       "<meta charset=\"utf-8\">\n"
	       "<meta name=\"viewport\" content=\"width=device-width, "
	       "initial-scale=1\">\n"
	       "<meta name=\"generator\" content=\"runner report\">\n"
	       "<title>runner report: ");
	text(x, c->id, MAX_FIELD);
	out(x, " (%s)</title>\n<style>\n%s</style>\n</head>\n<body>\n",
	    batch_status_name(status), css);
	out(x, "<header>\n<h1>Batch <span class=\"sym\">");
	text(x, c->id, MAX_FIELD);
	out(x, "</span> <span class=\"st st-%s\">%s</span></h1>\n",
	    batch_status_name(status), batch_status_name(status));
	out(x, "<p class=\"sub\">");
	if (c->name && *c->name) {
		text(x, c->name, MAX_FIELD);
		out(x, " &middot; ");
	}
	out(x, "agent ");
	field(x, c->agent);
	out(x, " &middot; %zu item%s</p>\n", x->b->nitems,
	    x->b->nitems == 1 ? "" : "s");
	out(x, "<nav><a href=\"#summary\">Summary</a>"
	       "<a href=\"#results\">Results</a>"
	       "<a href=\"#timeline\">Timeline</a>"
	       "<a href=\"#errors\">Error categories</a>"
	       "<a href=\"#groups\">Failure groups</a>"
	       "<a href=\"#slowest\">Slowest items</a>"
	       "<a href=\"#failed\">Failed items</a></nav>\n</header>\n");
}

/* ---- summary ---- */

static void kv_time(struct rctx *x, const char *k, int64_t ms,
		    const char *none)
{
	char t[TIME_BUF];
	out(x, "<tr><th>%s</th><td>%s</td></tr>\n", k,
	    ms > 0 ? fmt_time(ms, t) : none);
}

/* One bar of every item by state, with its legend. */
static void state_bar(struct rctx *x)
{
	static const struct {
		int state;
		char cls;
		const char *label;
	} parts[] = {
		{ ST_SUCCEEDED, 's', "succeeded" },
		{ ST_FAILED, 'f', "failed" },
		{ ST_CANCELLED, 'c', "cancelled" },
		{ ST_RUNNING, 'u', "running" },
		{ ST_RETRY_WAIT, 'w', "retry wait" },
		{ ST_PAUSED, 'z', "paused" },
		{ ST_PENDING, 'p', "pending" },
	};
	const struct batch *b = x->b;
	char n1[32];
	if (!b->nitems)
		return;
	out(x, "<svg viewBox=\"0 0 %d 18\" role=\"img\" "
	       "aria-label=\"items by state\">\n", SVG_W);
	double at = 0;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t n = b->count[parts[i].state];
		if (parts[i].state == ST_PENDING)
			n += b->count[ST_STARTING];
		if (!n)
			continue;
		double w = (double)n * SVG_W / (double)b->nitems;
		out(x, "<rect x=\"%.1f\" y=\"0\" width=\"%.1f\" height=\"18\" "
		       "class=\"k-%c\"><title>%s: %s</title></rect>\n",
		    at, w, parts[i].cls, parts[i].label, fmt_count(n, n1));
		at += w;
	}
	out(x, "</svg>\n<p class=\"legend\">");
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t n = b->count[parts[i].state];
		if (parts[i].state == ST_PENDING)
			n += b->count[ST_STARTING];
		out(x, "<span><i class=\"k-%c\"></i>%s %s</span>",
		    parts[i].cls, parts[i].label, fmt_count(n, n1));
	}
	out(x, "</p>\n");
}

static size_t count_warnings(const struct batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->nitems; i++)
		for (uint16_t k = 0; k < b->items[i].nattempts; k++)
			n += b->items[i].log[k].warning != NULL;
	return n;
}

static void summary(struct rctx *x, int status, size_t peak)
{
	const struct batch *b = x->b;
	const struct batch_conf *c = &b->c;
	char d1[32], d2[32], d3[32], d4[32], n1[32];
	struct meta_perf p;

	meta_perf(b, x->now, &p);
	int64_t duration_ms = llround(p.duration_s * 1000.0);
	int64_t lat_avg = (int64_t)(p.lat_avg + 0.5);
	out(x, "<section id=\"summary\">\n<h2>Summary</h2>\n");
	state_bar(x);
	out(x, "<table class=\"kv\">\n");
	out(x, "<tr><th>batch</th><td class=\"sym\">");
	text(x, c->id, MAX_FIELD);
	out(x, "</td></tr>\n<tr><th>name</th><td>");
	field(x, c->name);
	out(x, "</td></tr>\n<tr><th>status</th><td>%s</td></tr>\n",
	    batch_status_name(status));
	out(x, "<tr><th>origin</th><td>");
	field(x, c->origin);
	out(x, "</td></tr>\n<tr><th>agent</th><td>");
	field(x, c->agent);
	out(x, "</td></tr>\n<tr><th>source</th><td>");
	field(x, c->source);
	out(x, "</td></tr>\n<tr><th>job file</th><td>");
	field(x, c->job_file);
	if (c->sha256) {
		out(x, " <span class=\"note\">sha256 ");
		text(x, c->sha256, 64);
		out(x, "</span>");
	}
	out(x, "</td></tr>\n");
	kv_time(x, "created", c->created_ms, "&ndash;");
	kv_time(x, "started", b->started_ms, "not started");
	kv_time(x, "completed", b->final ? b->completed_ms : 0,
		b->started_ms ? "not yet" : "&ndash;");
	if (p.has_duration) {
		out(x, "<tr><th>duration</th><td>%s%s",
		    fmt_dur(duration_ms, d1), b->final ? "" : " so far");
		if (strcmp(d1, fmt_dur(llround(p.busy_s * 1000.0), d2)))
			out(x, " (busy %s)", d2);
		out(x, "</td></tr>\n");
	} else
		out(x, "<tr><th>duration</th><td>not started</td></tr>\n");
	out(x, "<tr><th>items</th><td>%s total: ", fmt_count(b->nitems, n1));
	out(x, "%zu succeeded, %zu failed, %zu cancelled, %zu running, "
	       "%zu retry wait, %zu paused, %zu pending</td></tr>\n",
	    b->count[ST_SUCCEEDED], b->count[ST_FAILED], b->count[ST_CANCELLED],
	    b->count[ST_RUNNING], b->count[ST_RETRY_WAIT], b->count[ST_PAUSED],
	    b->count[ST_PENDING] + b->count[ST_STARTING]);
	out(x, "<tr><th>attempts</th><td>%s", fmt_count(b->attempts_total, n1));
	if (peak)
		out(x, ", at most %zu at once", peak);
	out(x, "</td></tr>\n");
	size_t nwarn = count_warnings(b);
	if (nwarn)
		out(x, "<tr><th>warnings</th><td>%s attempt%s with a warning "
		       "(see Warnings)</td></tr>\n",
		    fmt_count(nwarn, n1), nwarn == 1 ? "" : "s");
	if (p.has_rate)
		out(x, "<tr><th>throughput</th><td>%s items/s</td></tr>\n",
		    fmt_rate(p.items_per_s, d1, sizeof(d1)));
	else
		out(x, "<tr><th>throughput</th><td>&ndash;</td></tr>\n");
	if (p.nlat)
		out(x, "<tr><th>latency</th><td>p50 %s, p95 %s, max %s "
		       "(avg %s)</td></tr>\n",
		    fmt_dur(p.lat_p50, d1), fmt_dur(p.lat_p95, d2),
		    fmt_dur(p.lat_max, d3), fmt_dur(lat_avg, d4));
	else
		out(x, "<tr><th>latency</th><td>&ndash;</td></tr>\n");
	out(x, "<tr><th>CPU</th><td>user %.3fs, system %.3fs</td></tr>\n",
	    (double)b->cpu_user_ms / 1000.0, (double)b->cpu_system_ms / 1000.0);
	if (b->attempts_total)
		out(x, "<tr><th>max RSS</th><td>%.1f MiB</td></tr>\n",
		    (double)b->max_rss_kb / 1024.0);
	else
		out(x, "<tr><th>max RSS</th><td>&ndash;</td></tr>\n");

	out(x, "<tr><th>configuration</th><td>");
	if (c->concurrency > 0)
		out(x, "concurrency %d, ", (int)c->concurrency);
	out(x, "max attempts %d", (int)c->max_attempts);
	if (c->timeout_ms > 0)
		out(x, ", timeout %s", fmt_dur(c->timeout_ms, d1));
	if (c->ndelays) {
		out(x, ", retry delays");
		for (uint32_t i = 0; i < c->ndelays && i < 10; i++)
			out(x, " %s", fmt_dur(c->delays_ms[i], d1));
	}
	out(x, ", priority %d</td></tr>\n", (int)c->priority);
	if (c->timeframe || c->start || c->end) {
		out(x, "<tr><th>timeframe</th><td>");
		field(x, c->timeframe);
		out(x, ", ");
		field(x, c->start);
		out(x, " to ");
		field(x, c->end);
		out(x, "</td></tr>\n");
	}
	if (c->nparams) {
		out(x, "<tr><th>params</th><td>");
		for (uint32_t i = 0; i < c->nparams && i < MAX_PARAMS; i++) {
			out(x, "%s<span class=\"sym\">", i ? ", " : "");
			text(x, c->params[i].key, MAX_FIELD);
			out(x, "=");
			text(x, c->params[i].value, MAX_FIELD);
			out(x, "</span>");
		}
		if (c->nparams > MAX_PARAMS)
			out(x, ", &hellip; %u more", c->nparams - MAX_PARAMS);
		out(x, "</td></tr>\n");
	}
	out(x, "</table>\n</section>\n");
}

/* ---- the timeline ---- */

struct span {
	int64_t s, e;
	uint32_t item, lane;
	uint16_t att;		/* index in the item's log */
	uint8_t outcome;	/* OUT_NONE: still running */
	bool notable;		/* did not succeed, or a retry */
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	if (x->e != y->e)
		return x->e < y->e ? -1 : 1;
	return x->item < y->item ? -1 : x->item > y->item;
}

/* A binary min-heap of (key, lane), for the interval partitioning. */
struct hent {
	int64_t key;
	uint32_t lane;
};
struct heap {
	struct hent *v;
	size_t n, cap;
};

static bool hless(const struct hent *a, const struct hent *b)
{
	return a->key < b->key || (a->key == b->key && a->lane < b->lane);
}

static void heap_push(struct heap *h, int64_t key, uint32_t lane)
{
	GROW(h->v, h->cap, h->n + 1);
	size_t i = h->n++;
	h->v[i] = (struct hent){ key, lane };
	while (i && hless(&h->v[i], &h->v[(i - 1) / 2])) {
		struct hent t = h->v[i];
		h->v[i] = h->v[(i - 1) / 2];
		h->v[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct hent heap_pop(struct heap *h)
{
	struct hent top = h->v[0];
	h->v[0] = h->v[--h->n];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && hless(&h->v[l], &h->v[m]))
			m = l;
		if (r < h->n && hless(&h->v[r], &h->v[m]))
			m = r;
		if (m == i)
			break;
		struct hent t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
	return top;
}

/*
 * Every attempt that started, sorted by start, each on the lowest lane
 * free at its start (interval partitioning, O(n log n)).  The number of
 * lanes is the most attempts whose recorded times overlap.  That can be
 * more than ran at once: a FINISHED record is stamped when the runner
 * gets to the exit, and by then the child's slot may already be taken.
 */
static struct span *collect_spans(const struct batch *b, int64_t now,
				  size_t *nspans, size_t *nlanes)
{
	size_t n = 0, cap = 0;
	struct span *v = NULL;
	int64_t view_end = b->final ? b->completed_ms : now;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		for (uint16_t k = 0; k < it->nattempts; k++) {
			const struct attempt *a = &it->log[k];
			if (!a->started_ms)
				continue;
			GROW(v, cap, n + 1);
			struct span *sp = &v[n++];
			sp->s = a->started_ms;
			sp->e = a->completed_ms ? a->completed_ms : view_end;
			if (sp->e < sp->s)
				sp->e = sp->s;
			sp->item = (uint32_t)i;
			sp->att = k;
			sp->lane = 0;
			sp->outcome = a->completed_ms ? a->outcome : OUT_NONE;
			sp->notable = sp->outcome != OUT_SUCCEEDED || k > 0;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_span);
	struct heap busy = { NULL, 0, 0 }, idle = { NULL, 0, 0 };
	uint32_t lanes = 0;
	for (size_t i = 0; i < n; i++) {
		while (busy.n && busy.v[0].key <= v[i].s) {
			struct hent e = heap_pop(&busy);
			heap_push(&idle, e.lane, e.lane);
		}
		v[i].lane = idle.n ? heap_pop(&idle).lane : lanes++;
		heap_push(&busy, v[i].e, v[i].lane);
	}
	free(busy.v);
	free(idle.v);
	*nspans = n;
	*nlanes = lanes;
	return v;
}

/* A round tick step giving at most about 8 ticks over range ms. */
static int64_t tick_step(int64_t range)
{
	static const int64_t steps[] = {
		1, 2, 5, 10, 20, 50, 100, 200, 500,
		1000, 2000, 5000, 10000, 15000, 30000,
		60000, 120000, 300000, 600000, 900000, 1800000,
		3600000, 7200000, 10800000, 21600000, 43200000,
		86400000, 172800000, 604800000,
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (range / steps[i] <= 8)
			return steps[i];
	int64_t s = 604800000;
	while (range / s > 8)
		s *= 2;
	return s;
}

/* "0", "250ms", "1.5s", "30s", "2m", "1m30s", "1h", "2h30m", "3d" */
static char *tick_label(int64_t ms, char buf[32])
{
	static const struct {
		int64_t ms;
		char unit;
	} units[] = { { 86400000, 'd' }, { 3600000, 'h' }, { 60000, 'm' },
		      { 1000, 's' } };
	size_t o = 0;
	if (!ms) {
		snprintf(buf, 32, "0");
	} else if (ms < 1000) {
		snprintf(buf, 32, "%dms", (int)ms);
	} else if (ms % 1000) {
		snprintf(buf, 32, "%.3f", (double)ms / 1000.0);
		o = strlen(buf);
		while (buf[o - 1] == '0')
			o--;
		snprintf(buf + o, 32 - o, "s");
	} else {
		buf[0] = '\0';
		for (size_t i = 0; i < 4 && o < 24; i++) {
			int64_t q = ms / units[i].ms;
			ms %= units[i].ms;
			if (q)
				o += (size_t)snprintf(buf + o, 32 - o, "%lld%c",
						      (long long)q,
						      units[i].unit);
		}
	}
	return buf;
}

/* Vertical grid lines and labels under a plot of height h starting at y. */
static void time_axis(struct rctx *x, int64_t range, double y, double h)
{
	char lab[32];
	double pw = SVG_W - PLOT_L - PLOT_R;
	int64_t step = tick_step(range);
	for (int64_t t = 0; t <= range; t += step) {
		double px = PLOT_L + (double)t * pw / (double)range;
		out(x, "<line class=\"gr\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
		       "y2=\"%.1f\"/>"
		       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
		       "%s</text>\n",
		    px, y, px, y + h, px, y + h + 13, tick_label(t, lab));
	}
	out(x, "<line class=\"ax\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
	       "y2=\"%.1f\"/>\n",
	    PLOT_L, y + h, SVG_W - PLOT_R, y + h);
}

static void span_title(struct rctx *x, const struct span *sp, int64_t t0)
{
	const struct item *it = &x->b->items[sp->item];
	const struct attempt *a = &it->log[sp->att];
	char d1[32], d2[32];
	out(x, "<title>");
	text(x, it->symbol, MAX_FIELD);
	out(x, ": attempt %d of %d, %s", sp->att + 1, it->nattempts,
	    outcome_label(sp->outcome));
	if (sp->outcome == OUT_FAILED && category_name(a->category))
		out(x, " (%s)", category_name(a->category));
	out(x, ", %s%s, from +%s</title>", fmt_dur(sp->e - sp->s, d1),
	    sp->outcome ? "" : " so far", fmt_dur(sp->s - t0, d2));
}

static void draw_span(struct rctx *x, const struct span *sp, int64_t t0,
		      int64_t range, double top, double lane_h)
{
	const struct item *it = &x->b->items[sp->item];
	double pw = SVG_W - PLOT_L - PLOT_R;
	double px = PLOT_L + (double)(sp->s - t0) * pw / (double)range;
	double w = (double)(sp->e - sp->s) * pw / (double)range;
	double bh = lane_h > 4 ? lane_h - 2 : lane_h;
	double py = top + sp->lane * lane_h + (lane_h - bh) / 2;
	bool retried = it->nattempts > 1;
	/* a hairline gap between attempts that follow each other */
	w = w > 2 ? w - 0.6 : w < 0.6 ? 0.6 : w;
	out(x, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
	       "class=\"k-%c%s\">",
	    px, py, w, bh, outcome_class(sp->outcome), retried ? " r" : "");
	span_title(x, sp, t0);
	out(x, "</rect>\n");
	if (sp->att > 0 && w >= 12 && bh >= 10)
		out(x, "<text class=\"an\" x=\"%.1f\" y=\"%.1f\">%d</text>\n",
		    px + 2, py + bh - 2.5, sp->att + 1);
}

/* Completions per time bucket, stacked by outcome: every attempt counts,
 * whatever the timeline sampled. */
static void completions(struct rctx *x, const struct span *v, size_t n,
			int64_t t0, int64_t range)
{
	static const uint8_t order[] = { OUT_SUCCEEDED, OUT_FAILED,
					 OUT_CANCELLED, OUT_INTERRUPTED };
	size_t (*cnt)[5] = xcalloc(NBUCKETS, sizeof(*cnt));
	size_t max = 0, done = 0;
	char n1[32], l1[32], l2[32];
	for (size_t i = 0; i < n; i++) {
		if (!v[i].outcome)
			continue;
		int64_t k = (v[i].e - t0) * NBUCKETS / range;
		if (k >= NBUCKETS)
			k = NBUCKETS - 1;
		if (k < 0)
			k = 0;
		cnt[k][v[i].outcome]++;
		done++;
	}
	for (int k = 0; k < NBUCKETS; k++) {
		size_t t = 0;
		for (int o = 1; o < 5; o++)
			t += cnt[k][o];
		if (t > max)
			max = t;
	}
	if (!done)
		goto out_free;
	double ph = 90, top = 8, pw = SVG_W - PLOT_L - PLOT_R;
	double bw = pw / NBUCKETS;
	out(x, "<h3>Attempts completed over time</h3>\n");
	out(x, "<svg viewBox=\"0 0 %d %.0f\" role=\"img\" aria-label=\""
	       "attempts completed per time bucket\">\n",
	    SVG_W, top + ph + 20);
	out(x, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
	    PLOT_L - 6, top + 9, fmt_count(max, n1));
	out(x, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">0</text>\n",
	    PLOT_L - 6, top + ph);
	time_axis(x, range, top, ph);
	for (int k = 0; k < NBUCKETS; k++) {
		double y = top + ph;
		int64_t from = range * k / NBUCKETS;
		int64_t to = range * (k + 1) / NBUCKETS;
		for (size_t j = 0; j < sizeof(order); j++) {
			size_t c = cnt[k][order[j]];
			if (!c)
				continue;
			double h = (double)c * ph / (double)max;
			y -= h;
			out(x, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			       "height=\"%.1f\" class=\"k-%c\"><title>"
			       "+%s to +%s: %s %s</title></rect>\n",
			    PLOT_L + k * bw, y, bw > 1.5 ? bw - 0.5 : bw, h,
			    outcome_class(order[j]), fmt_dur(from, l1),
			    fmt_dur(to, l2), fmt_count(c, n1),
			    outcome_label(order[j]));
		}
	}
	out(x, "</svg>\n<p class=\"note\">Each bar: the attempts that ended in "
	       "one hundredth of the time range, by outcome; every attempt is "
	       "counted.</p>\n");
out_free:
	free(cnt);
}

static void legend_outcomes(struct rctx *x)
{
	out(x, "<p class=\"legend\"><span><i class=\"k-s\"></i>succeeded</span>"
	       "<span><i class=\"k-f\"></i>failed</span>"
	       "<span><i class=\"k-c\"></i>cancelled</span>"
	       "<span><i class=\"k-i\"></i>interrupted</span>"
	       "<span><i class=\"k-u\"></i>running</span>"
	       "<span><i class=\"k-p\" style=\"outline:1.5px solid #1d1f23;"
	       "outline-offset:-1.5px\"></i>outlined: an item that ran more "
	       "than once (attempt number on the bar when it fits)</span></p>\n");
}

static void timeline(struct rctx *x, struct span *v, size_t n, size_t lanes)
{
	char n1[32], n2[32], n3[32], t[TIME_BUF], d1[32];
	out(x, "<section id=\"timeline\">\n<h2>Timeline</h2>\n");
	if (!n) {
		out(x, "<p class=\"note\">Not started: no attempt has run "
		       "yet.</p>\n</section>\n");
		return;
	}
	int64_t t0 = v[0].s, t1 = v[0].e;
	for (size_t i = 0; i < n; i++)
		if (v[i].e > t1)
			t1 = v[i].e;
	int64_t range = t1 - t0 > 0 ? t1 - t0 : 1;

	/* What to draw: everything, or every notable attempt (up to half the
	 * budget) and an even sample of the others. */
	size_t nnot = 0, kn = 1, ko = 1, drawn = 0, drawn_not = 0;
	for (size_t i = 0; i < n; i++)
		nnot += v[i].notable;
	bool sampled = n > MAX_RECTS;
	if (sampled) {
		kn = (nnot + MAX_NOTABLE - 1) / MAX_NOTABLE;
		if (kn < 1)
			kn = 1;
		size_t shown_not = (nnot + kn - 1) / kn;
		size_t budget = MAX_RECTS - shown_not;
		ko = (n - nnot + budget - 1) / budget;
		if (ko < 1)
			ko = 1;
	}

	double lane_h = 480.0 / (double)lanes;
	if (lane_h > 16)
		lane_h = 16;
	if (lane_h < 2)
		lane_h = 2;
	double top = 4, ph = lane_h * (double)lanes;
	out(x, "<p class=\"note\">One lane per slot: each attempt is drawn on "
	       "the lowest lane free when it started (%zu lane%s: the most "
	       "attempts whose recorded times overlap). x: time since the "
	       "first start, %s; the range is %s.</p>\n",
	    lanes, lanes == 1 ? "" : "s", fmt_time(t0, t), fmt_dur(range, d1));
	legend_outcomes(x);
	out(x, "<svg viewBox=\"0 0 %d %.0f\" role=\"img\" aria-label=\""
	       "attempts on their slots over time\">\n",
	    SVG_W, top + ph + 20);
	time_axis(x, range, top, ph);
	if (lane_h >= 9) {
		for (size_t l = 0; l < lanes; l++)
			out(x, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">"
			       "slot %zu</text>\n",
			    PLOT_L - 6, top + (double)l * lane_h + lane_h - 4,
			    l + 1);
	} else {
		out(x, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">slot 1"
		       "</text>\n<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">"
		       "slot %zu</text>\n",
		    PLOT_L - 6, top + 9, PLOT_L - 6, top + ph, lanes);
	}
	/* Successes first, so that failures and retries are drawn on top. */
	size_t seen_other = 0, seen_not = 0;
	for (size_t i = 0; i < n; i++)
		if (!v[i].notable && seen_other++ % ko == 0) {
			draw_span(x, &v[i], t0, range, top, lane_h);
			drawn++;
		}
	for (size_t i = 0; i < n; i++)
		if (v[i].notable && seen_not++ % kn == 0) {
			draw_span(x, &v[i], t0, range, top, lane_h);
			drawn++;
			drawn_not++;
		}
	out(x, "</svg>\n");
	if (sampled) {
		out(x, "<p class=\"note\"><b>Sampled:</b> %s of %s attempts "
		       "drawn: ",
		    fmt_count(drawn, n1), fmt_count(n, n2));
		if (kn == 1)
			out(x, "all %s that did not succeed or were retries",
			    fmt_count(nnot, n3));
		else
			out(x, "%s of the %s that did not succeed or were "
			       "retries (one in %zu)",
			    fmt_count(drawn_not, n1), fmt_count(nnot, n3), kn);
		out(x, ", and one in %zu of the other %s. The lanes and the "
		       "chart below count every attempt.</p>\n",
		    ko, fmt_count(n - nnot, n2));
	} else {
		out(x, "<p class=\"note\">All %s attempts drawn.</p>\n",
		    fmt_count(n, n1));
	}
	completions(x, v, n, t0, range);
	out(x, "</section>\n");
}

/* ---- error categories ---- */

static void categories(struct rctx *x)
{
	static const char *const colour[CAT_COUNT] = {
		NULL,	   "#d63c3c", "#b5367a", "#7a3cd6",
		"#f08c00", "#8c5a2b", "#6b7380",
	};
	const struct batch *b = x->b;
	size_t items[CAT_COUNT] = { 0 }, attempts[CAT_COUNT] = { 0 }, max = 0;
	char n1[32], n2[32];
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		const struct attempt *a;
		for (uint16_t k = 0; k < it->nattempts; k++)
			if (it->log[k].completed_ms &&
			    it->log[k].outcome == OUT_FAILED &&
			    it->log[k].category < CAT_COUNT)
				attempts[it->log[k].category]++;
		if (it->state == ST_FAILED && (a = meta_last_done(it)) &&
		    a->category < CAT_COUNT)
			items[a->category]++;
	}
	int rows = 0;
	for (int c = CAT_NONE + 1; c < CAT_COUNT; c++) {
		/* a failed item's last attempt is one of the failed attempts,
		 * so attempts[c] >= items[c]: they set the scale */
		if (attempts[c] > max)
			max = attempts[c];
		if (items[c] > max)
			max = items[c];
		rows += items[c] || attempts[c];
	}
	out(x, "<section id=\"errors\">\n<h2>Error categories</h2>\n");
	if (!rows) {
		out(x, "<p class=\"note\">No failed attempts.</p>\n"
		       "</section>\n");
		return;
	}
	out(x, "<p class=\"note\">Solid: failed items, by the category of "
	       "their last attempt. Pale: every failed attempt of that "
	       "category, retried ones and those of items not final "
	       "included.</p>\n");
	out(x, "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\""
	       "failed items by error category\">\n",
	    SVG_W, rows * 24 + 4);
	int row = 0;
	double bw = 700;
	for (int c = CAT_NONE + 1; c < CAT_COUNT; c++) {
		const char *cn = category_name(c);
		if ((!items[c] && !attempts[c]) || !cn)
			continue;
		double y = 4 + row++ * 24;
		double w = (double)items[c] * bw / (double)max;
		double wa = (double)attempts[c] * bw / (double)max;
		if (items[c] && w < 2)
			w = 2;
		if (attempts[c] && wa < 2)
			wa = 2;
		out(x, "<text x=\"150\" y=\"%.0f\" text-anchor=\"end\">%s"
		       "</text>\n",
		    y + 13, cn);
		out(x, "<rect x=\"160\" y=\"%.0f\" width=\"%.1f\" height=\"17\" "
		       "fill=\"%s\" fill-opacity=\"0.3\" rx=\"2\"><title>%s: %s "
		       "failed attempt%s</title></rect>\n",
		    y, wa, colour[c], cn, fmt_count(attempts[c], n2),
		    attempts[c] == 1 ? "" : "s");
		if (items[c])
			out(x, "<rect x=\"160\" y=\"%.0f\" width=\"%.1f\" "
			       "height=\"17\" fill=\"%s\" rx=\"2\"><title>%s: %s "
			       "failed item%s, %s failed attempt%s</title></rect>\n",
			    y, w, colour[c], cn, fmt_count(items[c], n1),
			    items[c] == 1 ? "" : "s", fmt_count(attempts[c], n2),
			    attempts[c] == 1 ? "" : "s");
		out(x, "<text x=\"%.1f\" y=\"%.0f\">%s item%s (%s attempt%s)"
		       "</text>\n",
		    166 + (wa > w ? wa : w), y + 13, fmt_count(items[c], n1),
		    items[c] == 1 ? "" : "s", fmt_count(attempts[c], n2),
		    attempts[c] == 1 ? "" : "s");
	}
	out(x, "</svg>\n</section>\n");
}

/* ---- failure groups ---- */

static void group_block(struct rctx *x, const char *id, size_t here,
			const char **syms, size_t nsyms)
{
	struct sh_group *g = x->sh ? shared_group(x->sh, id) : NULL;
	char n1[32];
	out(x, "<div class=\"group\">\n<h3 class=\"sym\">");
	text(x, id, MAX_FIELD);
	out(x, "</h3>\n<table class=\"kv\">\n");
	if (g) {
		struct sb prog = SB_INIT;
		shared_group_progress_text(g, &prog);
		out(x, "<tr><th>root cause</th><td>");
		field(x, g->root_cause);
		out(x, "</td></tr>\n<tr><th>status</th><td>%s (",
		    group_status_name(g->status));
		text(x, prog.buf, MAX_FIELD);
		out(x, ")</td></tr>\n");
		sb_release(&prog);
		kv_time(x, "detected", g->detected_ms, "&ndash;");
		if (g->status == GROUP_RESOLVED)
			kv_time(x, "resolved", g->resolved_ms, "&ndash;");
		out(x, "<tr><th>signature</th><td>agent ");
		field(x, g->agent);
		out(x, ", source ");
		field(x, g->source);
		out(x, ", category ");
		field(x, g->category);
		out(x, ", type ");
		field(x, g->type);
		out(x, "</td></tr>\n<tr><th>message</th><td class=\"msg\">");
		if (g->norm)
			text(x, g->norm, MAX_MESSAGE);
		out(x, "</td></tr>\n<tr><th>members</th><td>%s in all, "
		       "%zu in this batch</td></tr>\n</table>\n",
		    fmt_count(g->nm, n1), here);
		out(x, "<ul class=\"members\">\n");
		for (size_t i = 0; i < g->nm && i < MAX_MEMBERS; i++) {
			const struct sh_member *m = &g->m[i];
			bool ours = m->batch && x->b->c.id &&
				    !strcmp(m->batch, x->b->c.id);
			out(x, "<li><span class=\"sym\">");
			if (!ours) {
				text(x, m->batch, MAX_FIELD);
				out(x, "/");
			}
			text(x, m->symbol, MAX_FIELD);
			out(x, "</span>%s%s</li>\n",
			    m->failed ? " failed" : "",
			    m->final ? ", final" : m->paused ? ", paused" : "");
		}
		out(x, "</ul>\n");
		if (g->nm > MAX_MEMBERS)
			out(x, "<p class=\"note\">&hellip; and %s more "
			       "members.</p>\n",
			    fmt_count(g->nm - MAX_MEMBERS, n1));
	} else {
		out(x, "<tr><th>root cause</th><td>unknown (not in the "
		       "home&#39;s shared state)</td></tr>\n"
		       "<tr><th>members</th><td>%zu in this batch</td></tr>\n"
		       "</table>\n<ul class=\"members\">\n",
		    here);
		for (size_t i = 0; i < nsyms; i++) {
			out(x, "<li class=\"sym\">");
			text(x, syms[i], MAX_FIELD);
			out(x, "</li>\n");
		}
		out(x, "</ul>\n");
		if (here > nsyms)
			out(x, "<p class=\"note\">&hellip; and %zu more.</p>\n",
			    here - nsyms);
	}
	out(x, "</div>\n");
}

struct gref {
	const char *id;
	size_t here;		/* members in this batch */
	const char *syms[MAX_MEMBERS];
	size_t nsyms;
};

static void groups(struct rctx *x)
{
	const struct batch *b = x->b;
	struct strmap seen = STRMAP_INIT;
	struct gref *g = NULL;
	size_t n = 0, cap = 0, more = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		struct strmap_entry *e;
		if (!it->failure_group)
			continue;
		size_t k;
		if ((e = strmap_get(&seen, it->failure_group))) {
			k = e->value;
		} else if (n < MAX_GROUPS) {
			GROW(g, cap, n + 1);
			k = n++;
			memset(&g[k], 0, sizeof(g[k]));
			g[k].id = it->failure_group;
			strmap_put(&seen, it->failure_group, k);
		} else {
			if (!strmap_put(&seen, it->failure_group, SIZE_MAX))
				more++;
			continue;
		}
		if (k == SIZE_MAX)
			continue;
		if (g[k].nsyms < MAX_MEMBERS)
			g[k].syms[g[k].nsyms++] = it->symbol;
		g[k].here++;
	}
	out(x, "<section id=\"groups\">\n<h2>Failure groups</h2>\n");
	if (!n)
		out(x, "<p class=\"note\">No item of this batch belongs to a "
		       "failure group.</p>\n");
	for (size_t i = 0; i < n; i++)
		group_block(x, g[i].id, g[i].here, g[i].syms, g[i].nsyms);
	if (more)
		out(x, "<p class=\"note\">&hellip; and %zu more %s "
		       "(<code>runner groups</code> lists them).</p>\n", more,
		    plural(more, "group", "groups"));
	out(x, "</section>\n");
	strmap_release(&seen);
	free(g);
}

/* ---- results ---- */

#define NRESULTS 10	/* top and bottom rows */
#define HIST_BINS 20

struct ranked {
	size_t row;
	double v;
};

static int cmp_ranked(const void *pa, const void *pb)
{
	const struct ranked *a = pa, *b = pb;
	return a->v < b->v ? 1 : a->v > b->v ? -1 : 0;
}

static void ranked_rows(struct rctx *x, const struct table *t,
			const struct ranked *r, size_t from, size_t to,
			size_t col)
{
	char v[64];
	out(x, "<table class=\"list\">\n<tr><th class=\"n\">#</th>"
	       "<th>symbol</th><th class=\"n\">");
	text(x, t->cols[col], MAX_FIELD);
	out(x, "</th><th class=\"n\">matches</th></tr>\n");
	for (size_t i = from; i < to; i++) {
		const struct row *row = &t->rows[r[i].row];
		out(x, "<tr><td class=\"n\">%zu</td><td class=\"sym\">", i + 1);
		text(x, row->v[C_SYMBOL].s, MAX_FIELD);
		fmt_val(&row->v[col], v, sizeof(v));
		out(x, "</td><td class=\"n\">%s</td><td class=\"n\">", v);
		fmt_val(&row->v[C_MATCHES], v, sizeof(v));
		out(x, "%s</td></tr>\n", v[0] ? v : "&ndash;");
	}
	out(x, "</table>\n");
}

static void histogram(struct rctx *x, const struct ranked *r, size_t n,
		      const char *metric)
{
	double lo = r[n - 1].v, hi = r[0].v;
	size_t bins[HIST_BINS] = { 0 }, top = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = hi > lo ? (size_t)((r[i].v - lo) / (hi - lo) *
					      HIST_BINS) : 0;
		if (k >= HIST_BINS)
			k = HIST_BINS - 1;
		if (++bins[k] > top)
			top = bins[k];
	}
	char a[64], b[64];
	struct val vl = { true, true, lo, NULL }, vh = { true, true, hi, NULL };
	fmt_val(&vl, a, sizeof(a));
	fmt_val(&vh, b, sizeof(b));
	out(x, "<svg viewBox=\"0 0 %d 150\" role=\"img\" aria-label=\""
	       "histogram of ", SVG_W);
	text(x, metric, MAX_FIELD);
	out(x, "\">\n");
	double bw = 700.0 / HIST_BINS;
	for (int k = 0; k < HIST_BINS; k++) {
		double h = top ? 120.0 * (double)bins[k] / (double)top : 0;
		if (bins[k] && h < 1)
			h = 1;
		out(x, "<rect class=\"k-u\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
		       "height=\"%.1f\"><title>%zu</title></rect>\n",
		    150 + k * bw, 125 - h, bw - 2, h, bins[k]);
	}
	out(x, "<text x=\"150\" y=\"142\">%s</text><text x=\"850\" y=\"142\" "
	       "text-anchor=\"end\">%s</text>\n<text x=\"140\" y=\"14\" "
	       "text-anchor=\"end\">%zu</text>\n</svg>\n",
	    a, b, top);
}

/* The day-over-day part: what changed since prev. */
static void since_prev(struct rctx *x, struct table *t, struct batch *prev,
		       size_t col)
{
	struct batch *b = (struct batch *)x->b;
	struct symlist lists[D_LISTS];
	char t1[TIME_BUF];
	results_diff(b, prev, lists);
	out(x, "<h3>Since ");
	text(x, prev->c.id, MAX_FIELD);
	out(x, " (created %s)</h3>\n<table class=\"kv\">\n",
	    fmt_time(prev->c.created_ms, t1));
	for (int k = 0; k < D_LISTS; k++) {
		out(x, "<tr><th>%s</th><td>%zu", diff_text[k], lists[k].n);
		for (size_t i = 0; i < lists[k].n && i < 20; i++) {
			out(x, "%s", i ? ", " : ": ");
			text(x, lists[k].v[i], MAX_FIELD);
		}
		if (lists[k].n > 20)
			out(x, ", &hellip; (%zu more)", lists[k].n - 20);
		out(x, "</td></tr>\n");
		free(lists[k].v);
	}
	out(x, "</table>\n");
	if (col == SIZE_MAX)
		return;
	struct table tp = { 0 };
	table_build(&tp, prev);
	struct change *ch = xcalloc(b->nitems + 1, sizeof(*ch));
	size_t n = results_changes(t, b, &tp, prev, col, ch);
	if (n) {
		out(x, "<p class=\"note\">The largest changes of ");
		text(x, t->cols[col], MAX_FIELD);
		out(x, " (%zu changed):</p>\n<table class=\"list\">\n"
		       "<tr><th>symbol</th><th class=\"n\">before</th>"
		       "<th class=\"n\">after</th><th class=\"n\">change</th>"
		       "</tr>\n", n);
		for (size_t i = 0; i < n && i < NRESULTS; i++) {
			char v[3][64];
			struct val w[3] = {
				{ true, true, ch[i].before, NULL },
				{ true, true, ch[i].after, NULL },
				{ true, true, ch[i].after - ch[i].before, NULL } };
			for (int k = 0; k < 3; k++)
				fmt_val(&w[k], v[k], sizeof(v[k]));
			out(x, "<tr><td class=\"sym\">");
			text(x, ch[i].symbol, MAX_FIELD);
			out(x, "</td><td class=\"n\">%s</td><td class=\"n\">%s"
			       "</td><td class=\"n\">%s%s</td></tr>\n",
			    v[0], v[1], w[2].d > 0 ? "+" : "", v[2]);
		}
		out(x, "</table>\n");
	}
	free(ch);
	table_free(&tp);
}

static void results(struct rctx *x, struct batch *prev)
{
	struct table t = { 0 };
	table_build(&t, x->b);
	size_t col = x->b->c.primary_metric
			     ? col_find(&t, x->b->c.primary_metric) : SIZE_MAX;
	bool primary = col != SIZE_MAX;
	for (size_t c = C_BASE; col == SIZE_MAX && c < t.ncols; c++)
		for (size_t i = 0; i < t.nrows && col == SIZE_MAX; i++)
			if (t.rows[i].v[c].num)
				col = c;
	out(x, "<section id=\"results\">\n<h2>Results</h2>\n");
	struct ranked *r = xcalloc(t.nrows + 1, sizeof(*r));
	size_t n = 0;
	for (size_t i = 0; col != SIZE_MAX && i < t.nrows; i++)
		if (t.rows[i].v[col].num)
			r[n++] = (struct ranked){ i, t.rows[i].v[col].d };
	if (!n) {
		out(x, "<p class=\"note\">No item reports a numeric metric in "
		       "its result JSON.</p>\n");
	} else {
		qsort(r, n, sizeof(*r), cmp_ranked);
		out(x, "<p class=\"note\">By ");
		text(x, t.cols[col], MAX_FIELD);
		out(x, " (%s), which %zu item%s report%s; every metric: "
		       "<code>runner results ",
		    primary ? "the agent&#39;s primary metric"
			    : "the first metric the results report",
		    n, n == 1 ? "" : "s", n == 1 ? "s" : "");
		text(x, x->b->c.id, MAX_FIELD);
		out(x, " --sort ");
		text(x, t.cols[col], MAX_FIELD);
		out(x, " --desc</code>.</p>\n<h3>Top</h3>\n");
		ranked_rows(x, &t, r, 0, n < NRESULTS ? n : NRESULTS, col);
		if (n > NRESULTS) {
			out(x, "<h3>Bottom</h3>\n");
			ranked_rows(x, &t, r,
				    n - NRESULTS > NRESULTS ? n - NRESULTS
							    : NRESULTS,
				    n, col);
		}
		out(x, "<h3>Distribution</h3>\n");
		histogram(x, r, n, t.cols[col]);
	}
	if (prev)
		since_prev(x, &t, prev, n ? col : SIZE_MAX);
	out(x, "</section>\n");
	free(r);
	table_free(&t);
}

/* ---- slowest and failed items ---- */

struct slow {
	size_t idx;
	int64_t ms;
};

static int cmp_slow(const void *a, const void *b)
{
	const struct slow *x = a, *y = b;
	if (x->ms != y->ms)
		return x->ms > y->ms ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void slowest(struct rctx *x)
{
	const struct batch *b = x->b;
	struct slow *sl = xmalloc((b->nitems + 1) * sizeof(*sl));
	size_t n = 0;
	char d1[32];
	for (size_t i = 0; i < b->nitems; i++) {
		int64_t d = meta_attempt_duration(meta_last_done(&b->items[i]));
		if (d >= 0)
			sl[n++] = (struct slow){ i, d };
	}
	qsort(sl, n, sizeof(*sl), cmp_slow);
	out(x, "<section id=\"slowest\">\n<h2>Slowest items</h2>\n");
	if (!n) {
		out(x, "<p class=\"note\">No item has finished an attempt "
		       "yet.</p>\n</section>\n");
		free(sl);
		return;
	}
	out(x, "<p class=\"note\">The %zu item%s whose last finished "
	       "attempt took longest.</p>\n",
	    n < NSLOWEST ? n : (size_t)NSLOWEST, n == 1 ? "" : "s");
	out(x, "<table class=\"list\">\n<tr><th class=\"n\">#</th>"
	       "<th>symbol</th><th class=\"n\">duration</th><th></th>"
	       "<th class=\"n\">attempts</th><th>state</th></tr>\n");
	for (size_t i = 0; i < n && i < NSLOWEST; i++) {
		const struct item *it = &b->items[sl[i].idx];
		double pct = sl[0].ms ? 100.0 * (double)sl[i].ms /
						(double)sl[0].ms
				      : 0;
		out(x, "<tr><td class=\"n\">%zu</td><td class=\"sym\">", i + 1);
		text(x, it->symbol, MAX_FIELD);
		out(x, "</td><td class=\"n\">%s</td><td style=\"width:160px\">"
		       "<span class=\"bar\" style=\"width:%.0f%%\"></span></td>"
		       "<td class=\"n\">%d</td><td>%s</td></tr>\n",
		    fmt_dur(sl[i].ms, d1), pct, it->nattempts,
		    state_name(it->state));
	}
	out(x, "</table>\n</section>\n");
	free(sl);
}

static void failed_items(struct rctx *x)
{
	const struct batch *b = x->b;
	size_t shown = 0;
	char code[32], n1[32];
	out(x, "<section id=\"failed\">\n<h2>Failed items</h2>\n");
	if (!b->count[ST_FAILED]) {
		out(x, "<p class=\"note\">No failed items.</p>\n</section>\n");
		return;
	}
	out(x, "<p class=\"note\">%s failed item%s, in batch order; the "
	       "message is the last attempt&#39;s. Their output: "
	       "<code>runner output ",
	    fmt_count(b->count[ST_FAILED], n1),
	    b->count[ST_FAILED] == 1 ? "" : "s");
	text(x, b->c.id, MAX_FIELD);
	out(x, " SYMBOL --stderr</code>, or the last lines of each: "
	       "<code>runner output ");
	text(x, b->c.id, MAX_FIELD);
	out(x, " --failed</code>.</p>\n");
	out(x, "<table class=\"list\">\n<tr><th>symbol</th>"
	       "<th class=\"n\">attempts</th><th>category</th><th>type</th>"
	       "<th>exit</th><th>message</th></tr>\n");
	for (size_t i = 0; i < b->nitems && shown < MAX_FAILED_ROWS; i++) {
		const struct item *it = &b->items[i];
		if (it->state != ST_FAILED)
			continue;
		const struct attempt *a = meta_last_done(it);
		shown++;
		snprintf(code, sizeof(code), "&ndash;");
		if (a && a->signal)
			exec_signame(a->signal, code, sizeof(code));
		else if (a && a->exit_code >= 0)
			snprintf(code, sizeof(code), "%d", (int)a->exit_code);
		out(x, "<tr><td class=\"sym\">");
		text(x, it->symbol, MAX_FIELD);
		out(x, "</td><td class=\"n\">%d</td><td>", it->nattempts);
		field(x, a ? category_name(a->category) : NULL);
		out(x, "</td><td>");
		field(x, it->error_type);
		out(x, "</td><td>%s</td><td class=\"msg\">", code);
		if (a && a->error_message)
			text(x, a->error_message, MAX_MESSAGE);
		out(x, "</td></tr>\n");
	}
	out(x, "</table>\n");
	if (b->count[ST_FAILED] > shown) {
		out(x, "<p class=\"note\">&hellip; and %s more failed items "
		       "(<code>runner show ",
		    fmt_count(b->count[ST_FAILED] - shown, n1));
		text(x, b->c.id, MAX_FIELD);
		out(x, " --failed</code> lists them all).</p>\n");
	}
	out(x, "</section>\n");
}

/* Attempts that ended with a warning (a result JSON that could not be
 * read): only when there are any. */
static void warnings(struct rctx *x)
{
	const struct batch *b = x->b;
	size_t n = count_warnings(b), shown = 0;
	char n1[32];
	if (!n)
		return;
	out(x, "<section id=\"warnings\">\n<h2>Warnings</h2>\n");
	out(x, "<p class=\"note\">%s attempt%s ended with a warning: the "
	       "outcome stands, but what the attempt reported was lost.</p>\n",
	    fmt_count(n, n1), n == 1 ? "" : "s");
	out(x, "<table class=\"list\">\n<tr><th>symbol</th>"
	       "<th class=\"n\">attempt</th><th>outcome</th><th>warning</th>"
	       "</tr>\n");
	for (size_t i = 0; i < b->nitems && shown < MAX_FAILED_ROWS; i++) {
		const struct item *it = &b->items[i];
		for (uint16_t k = 0; k < it->nattempts && shown < MAX_FAILED_ROWS;
		     k++) {
			const struct attempt *a = &it->log[k];
			if (!a->warning)
				continue;
			shown++;
			out(x, "<tr><td class=\"sym\">");
			text(x, it->symbol, MAX_FIELD);
			out(x, "</td><td class=\"n\">%d</td><td>", k + 1);
			field(x, outcome_name(a->outcome));
			out(x, "</td><td class=\"msg\">");
			text(x, a->warning, MAX_MESSAGE);
			out(x, "</td></tr>\n");
		}
	}
	out(x, "</table>\n");
	if (n > shown)
		out(x, "<p class=\"note\">&hellip; and %s more.</p>\n",
		    fmt_count(n - shown, n1));
	out(x, "</section>\n");
}

int report_write(FILE *fp, const struct batch *b, struct shared *sh,
		 int64_t now)
{
	return report_write_since(fp, b, NULL, sh, now);
}

int report_write_since(FILE *fp, const struct batch *b, struct batch *prev,
		       struct shared *sh, int64_t now)
{
	struct rctx x = { fp, b, sh, now, SB_INIT };
	char t[TIME_BUF];
	size_t nspans, lanes;
	int status = batch_status(b);

	errno = 0;
	struct span *v = collect_spans(b, now, &nspans, &lanes);
	head(&x, status);
	summary(&x, status, lanes);
	results(&x, prev);
	timeline(&x, v, nspans, lanes);
	free(v);
	categories(&x);
	groups(&x);
	slowest(&x);
	failed_items(&x);
	warnings(&x);
	out(&x, "<footer>Written by runner report at %s. Times are UTC.</footer>"
		"\n</body>\n</html>\n",
	    fmt_time(now, t));
	sb_release(&x.tmp);
	if (fflush(fp) != 0 || ferror(fp)) {
		if (!errno)
			errno = EIO;
		return -1;
	}
	return 0;
}
