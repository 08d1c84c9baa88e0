#include "report.h"
#include "results.h"
#include "exec.h"
#include "meta.h"
#include "shared.h"
#include "correlate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that keep a page small whatever the batch (see report.h). */
#define MAX_BARS 1000		/* attempts drawn one by one; above: heat */
#define HEAT_COLS 200		/* time cells of the heat strip */
#define HEAT_BANDS 32		/* its rows of slots, at most */
#define MAX_FAILED_ROWS 500
#define MAX_MEMBERS 50
#define MAX_GROUPS 100
#define MAX_PARAMS 50
#define MAX_MESSAGE 400		/* bytes of one message */
#define MAX_FIELD 200		/* bytes of a name, symbol, param */
#define NSLOWEST 20
#define MAX_NEXT_GROUPS 10	/* groups with resume/cancel commands */
#define MAX_MESSAGES 50		/* rows of failed messages by signature */
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

/*
 * A duration as people write it, the one form on the page: "850ms",
 * "2.5s", "30s", "1m05s", "2m", "1h05m", "3d04h".  Under 10 s it keeps a
 * tenth; above, whole seconds (then minutes above an hour): a report is
 * read, not parsed.
 */
static char *fmt_dur(int64_t ms, char buf[32])
{
	long long s, r;
	if (ms < 0)
		ms = 0;
	if (ms == 0) {
		snprintf(buf, 32, "0s");
	} else if (ms < 1000) {
		snprintf(buf, 32, "%dms", (int)ms);
	} else if (ms < 9950) {
		long long tenths = (ms + 50) / 100;
		if (tenths % 10)
			snprintf(buf, 32, "%lld.%llds", tenths / 10, tenths % 10);
		else
			snprintf(buf, 32, "%llds", tenths / 10);
	} else if ((s = (ms + 500) / 1000) < 60) {
		snprintf(buf, 32, "%llds", s);
	} else if (s < 3600) {
		r = s % 60;
		snprintf(buf, 32, r ? "%lldm%02llds" : "%lldm", s / 60, r);
	} else if (s < 86400) {
		r = s / 60 % 60;
		snprintf(buf, 32, r ? "%lldh%02lldm" : "%lldh", s / 3600, r);
	} else {
		r = s / 3600 % 24;
		snprintf(buf, 32, r ? "%lldd%02lldh" : "%lldd", s / 86400, r);
	}
	return buf;
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
	"rect.hf{fill-opacity:1}"
	"rect.r{stroke:#1d1f23;stroke-width:1.2}"
	"svg text.an{font-size:9px;fill:#fff;font-weight:700}\n"
	".next{border:2px solid #2f6fdb;border-radius:6px;background:#f3f7ff;"
	"padding:2px 16px 8px;margin:18px 0}.next h2{border:0;margin:10px 0 4px}"
	".next p{margin:8px 0 2px}\n"
	"pre{margin:2px 0;padding:4px 8px;background:#fff;border:1px solid "
	"#c9cdd3;border-radius:4px;overflow-x:auto}\n"
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
	char n1[32];
	out(x, " &middot; %s item%s</p>\n", fmt_count(x->b->nitems, n1),
	    x->b->nitems == 1 ? "" : "s");
	out(x, "<nav><a href=\"#summary\">Summary</a>"
	       "<a href=\"#results\">Results</a>"
	       "<a href=\"#timeline\">Timeline</a>"
	       "<a href=\"#errors\">Error categories</a>"
	       "<a href=\"#groups\">Failure groups</a>"
	       "<a href=\"#slowest\">Slowest items</a>"
	       "<a href=\"#failed\">Failed items</a></nav>\n</header>\n");
}

/* ---- next steps ---- */

/* One command in the next-steps box, the batch or group id escaped. */
static void step(struct rctx *x, const char *what, const char *cmd,
		 const char *id, const char *tail)
{
	out(x, "<p>%s</p>\n<pre><code>runner %s ", what, cmd);
	text(x, id, MAX_FIELD);
	out(x, "%s</code></pre>\n", tail ? tail : "");
}

/* Is group id still waiting for a decision (open or resuming)?  Without
 * the shared state: when one of this batch's items in it is paused. */
static bool group_waiting(struct rctx *x, const char *id)
{
	struct sh_group *g = x->sh ? shared_group(x->sh, id) : NULL;
	if (g)
		return g->status != GROUP_RESOLVED;
	for (size_t i = 0; i < x->b->nitems; i++) {
		const struct item *it = &x->b->items[i];
		if (it->failure_group && !strcmp(it->failure_group, id) &&
		    it->state == ST_PAUSED)
			return true;
	}
	return false;
}

/*
 * The commands that apply now, and only those: retry-failed for failed
 * items (and for the most common category alone when there are several),
 * resume or cancel for each failure group still open, resume for the
 * batch's paused items.  Nothing to do: no box.
 */
static void next_steps(struct rctx *x)
{
	const struct batch *b = x->b;
	size_t failed[CAT_COUNT] = { 0 }, ncat = 0, ngroups = 0, more = 0;
	int top = CAT_NONE;
	const char *gid[MAX_NEXT_GROUPS];
	struct strmap seen = STRMAP_INIT;
	char n1[32], n2[32], what[160];

	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		const struct attempt *a;
		if (it->state == ST_FAILED && (a = meta_last_done(it)) &&
		    a->category > CAT_NONE && a->category < CAT_COUNT)
			failed[a->category]++;
		if (!it->failure_group ||
		    strmap_put(&seen, it->failure_group, 0))
			continue;
		if (!group_waiting(x, it->failure_group))
			continue;
		if (ngroups < MAX_NEXT_GROUPS)
			gid[ngroups++] = it->failure_group;
		else
			more++;
	}
	strmap_release(&seen);
	for (int c = CAT_NONE + 1; c < CAT_COUNT; c++) {
		ncat += failed[c] > 0;
		if (failed[c] > failed[top])
			top = c;
	}
	if (!b->count[ST_FAILED] && !ngroups && !b->count[ST_PAUSED])
		return;
	out(x, "<section id=\"next\" class=\"next\">\n<h2>Next steps</h2>\n");
	if (b->count[ST_FAILED]) {
		size_t nf = b->count[ST_FAILED];
		snprintf(what, sizeof(what), "Run the %s failed item%s again:",
			 fmt_count(nf, n1), nf == 1 ? "" : "s");
		step(x, what, "retry-failed", b->c.id, NULL);
		if (ncat > 1 && category_name(top)) {
			char tail[64];
			snprintf(what, sizeof(what), "Only the %s that failed with "
				 "%s, the most common category:",
				 fmt_count(failed[top], n2), category_name(top));
			snprintf(tail, sizeof(tail), " --category %s",
				 category_name(top));
			step(x, what, "retry-failed", b->c.id, tail);
		}
	}
	for (size_t i = 0; i < ngroups; i++) {
		out(x, "<p>Failure group <span class=\"sym\">");
		text(x, gid[i], MAX_FIELD);
		out(x, "</span> is waiting: when its cause is fixed, resume its "
		       "items; or give them up.</p>\n<pre><code>runner resume ");
		text(x, gid[i], MAX_FIELD);
		out(x, "</code></pre>\n<pre><code>runner cancel ");
		text(x, gid[i], MAX_FIELD);
		out(x, "</code></pre>\n");
	}
	if (more)
		out(x, "<p class=\"note\">&hellip; and %s more waiting %s "
		       "(<code>runner groups</code> lists them).</p>\n",
		    fmt_count(more, n1), more == 1 ? "group" : "groups");
	if (b->count[ST_PAUSED]) {
		size_t np = b->count[ST_PAUSED];
		snprintf(what, sizeof(what), "Resume the batch&#39;s %s paused "
			 "item%s:", fmt_count(np, n1), np == 1 ? "" : "s");
		step(x, what, "resume", b->c.id, NULL);
	}
	out(x, "</section>\n");
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
	static const struct {
		int state;
		const char *label;
	} by_state[] = { { ST_SUCCEEDED, "succeeded" }, { ST_FAILED, "failed" },
			 { ST_CANCELLED, "cancelled" }, { ST_RUNNING, "running" },
			 { ST_RETRY_WAIT, "retry wait" }, { ST_PAUSED, "paused" },
			 { ST_PENDING, "pending" } };
	for (size_t i = 0; i < sizeof(by_state) / sizeof(by_state[0]); i++) {
		size_t n = b->count[by_state[i].state];
		if (by_state[i].state == ST_PENDING)
			n += b->count[ST_STARTING];
		out(x, "%s%s %s", i ? ", " : "", fmt_count(n, n1),
		    by_state[i].label);
	}
	out(x, "</td></tr>\n");
	out(x, "<tr><th>attempts</th><td>%s", fmt_count(b->attempts_total, n1));
	if (peak)
		out(x, ", at most %s at once", fmt_count(peak, n1));
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
	out(x, "<tr><th>CPU</th><td>user %s, system %s</td></tr>\n",
	    fmt_dur(b->cpu_user_ms, d1), fmt_dur(b->cpu_system_ms, d2));
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
		    px, y, px, y + h, px, y + h + 13, fmt_dur(t, lab));
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

/* "slot 3", or "slots 1-4": band k of per slots each (numbers from 1). */
static void band_label_text(struct rctx *x, size_t k, size_t per,
			    size_t lanes)
{
	size_t first = k * per + 1, last = (k + 1) * per;
	if (last > lanes)
		last = lanes;
	if (first == last)
		out(x, "slot %zu", first);
	else
		out(x, "slots %zu-%zu", first, last);
}

/* The same on the left of a lane; a band of slots as "10-12" alone, or
 * "slots 10-12" would not fit. */
static void band_label(struct rctx *x, size_t k, size_t per, size_t lanes,
		       double y)
{
	size_t last = (k + 1) * per < lanes ? (k + 1) * per : lanes;
	out(x, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
	    PLOT_L - 6, y);
	if (k * per + 1 == last)
		out(x, "slot %zu", last);
	else
		out(x, "%zu-%zu", k * per + 1, last);
	out(x, "</text>\n");
}

/* What one cell of the heat strip holds: attempts by outcome (one that
 * spans several cells counts in each) and the slot time they used. */
struct heat_cell {
	uint32_t n[5];		/* by outcome; [OUT_NONE]: running */
	double busy_ms;
};

/* The cell's colour: the outcome most of its attempts had, the worse one
 * on a tie (running before succeeded: it has not succeeded yet). */
static int heat_major(const struct heat_cell *c)
{
	static const uint8_t worse_first[] = { OUT_FAILED, OUT_INTERRUPTED,
					       OUT_CANCELLED, OUT_NONE,
					       OUT_SUCCEEDED };
	int best = -1;
	for (size_t i = 0; i < sizeof(worse_first); i++)
		if (best < 0 || c->n[worse_first[i]] > c->n[best])
			best = worse_first[i];
	return c->n[best] ? best : -1;
}

static void heat_counts(struct rctx *x, const struct heat_cell *c)
{
	static const uint8_t order[] = { OUT_FAILED, OUT_INTERRUPTED,
					 OUT_CANCELLED, OUT_NONE,
					 OUT_SUCCEEDED };
	char n1[32];
	bool first = true;
	for (size_t i = 0; i < sizeof(order); i++)
		if (c->n[order[i]]) {
			out(x, "%s%s %s", first ? "" : ", ",
			    fmt_count(c->n[order[i]], n1),
			    outcome_label(order[i]));
			first = false;
		}
}

/*
 * Too many attempts to draw one by one (a barcode): each band of slots is
 * a strip of HEAT_COLS cells.  A cell takes the colour of the outcome most
 * of its attempts had, shaded by how busy its slots were; alike cells side
 * by side are one rect.  Then, on top, every cell where an attempt failed
 * or was interrupted gets a red (or orange) mark, as tall as the share of
 * its attempts that did, never less than 40% of the band: a failure is
 * never hidden by the successes around it.  At most bands x HEAT_COLS
 * rects of each kind, whatever the batch.
 */
static void heat_strip(struct rctx *x, const struct span *v, size_t n,
		       size_t lanes, int64_t t0, int64_t range)
{
	size_t per = (lanes + HEAT_BANDS - 1) / HEAT_BANDS;
	size_t bands = (lanes + per - 1) / per;
	struct heat_cell *cell = xcalloc(bands * HEAT_COLS, sizeof(*cell));
	double cell_ms = (double)range / HEAT_COLS;
	double pw = SVG_W - PLOT_L - PLOT_R, cw = pw / HEAT_COLS;
	char d1[32], d2[32], n1[32], n2[32];

	for (size_t i = 0; i < n; i++) {
		size_t band = v[i].lane / per;
		int64_t c0 = (v[i].s - t0) * HEAT_COLS / range;
		int64_t c1 = (v[i].e - t0) * HEAT_COLS / range;
		if (c1 >= HEAT_COLS)
			c1 = HEAT_COLS - 1;
		for (int64_t c = c0 < 0 ? 0 : c0; c <= c1; c++) {
			struct heat_cell *hc = &cell[band * HEAT_COLS + c];
			double from = (double)c * cell_ms, to = from + cell_ms;
			double s = (double)(v[i].s - t0), e = (double)(v[i].e - t0);
			hc->n[v[i].outcome]++;
			hc->busy_ms += (e < to ? e : to) - (s > from ? s : from);
		}
	}

	double band_h = 480.0 / (double)bands;
	if (band_h > 16)
		band_h = 16;
	double top = 4, ph = band_h * (double)bands, bh = band_h - 2;
	out(x, "<p class=\"note\">%s attempts on %s slot%s: too many for a bar "
	       "each, so each %s is a strip of %d cells of %s. A cell has the "
	       "colour of the outcome most of its attempts had, darker the "
	       "busier its slots were; a red mark on top (orange: "
	       "interrupted) shows every cell where an attempt failed, as "
	       "tall as the share that did. x: time since the first start; "
	       "the range is %s.</p>\n",
	    fmt_count(n, n1), fmt_count(lanes, n2), lanes == 1 ? "" : "s",
	    per == 1 ? "slot" : "band of slots", HEAT_COLS,
	    fmt_dur(llround(cell_ms), d1), fmt_dur(range, d2));
	out(x, "<p class=\"legend\"><span><i class=\"k-s\"></i>succeeded</span>"
	       "<span><i class=\"k-f\"></i>failed</span>"
	       "<span><i class=\"k-c\"></i>cancelled</span>"
	       "<span><i class=\"k-i\"></i>interrupted</span>"
	       "<span><i class=\"k-u\"></i>running</span></p>\n");
	out(x, "<svg viewBox=\"0 0 %d %.0f\" role=\"img\" class=\"heat\" "
	       "aria-label=\"attempts by outcome on their slots over time\">\n",
	    SVG_W, top + ph + 20);
	time_axis(x, range, top, ph);
	for (size_t k = 0; k < bands; k++) {
		if (band_h >= 9 || k == 0 || k + 1 == bands)
			band_label(x, k, per, lanes, top + (double)k * band_h +
						       band_h - 4);
		size_t slots = (k + 1) * per > lanes ? lanes - k * per : per;
		const struct heat_cell *row = &cell[k * HEAT_COLS];
		for (int c = 0; c < HEAT_COLS;) {
			int major = heat_major(&row[c]);
			double f = row[c].busy_ms / (cell_ms * (double)slots);
			int level = f >= 0.75 ? 4 : f >= 0.5 ? 3 : f >= 0.25 ? 2 : 1;
			int c1 = c + 1;
			if (major < 0) {
				c = c1;
				continue;
			}
			while (c1 < HEAT_COLS && heat_major(&row[c1]) == major) {
				double f1 = row[c1].busy_ms /
					    (cell_ms * (double)slots);
				int l1 = f1 >= 0.75 ? 4 : f1 >= 0.5 ? 3
					 : f1 >= 0.25 ? 2 : 1;
				if (l1 != level)
					break;
				c1++;
			}
			out(x, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			       "height=\"%.1f\" class=\"k-%c\" fill-opacity="
			       "\"%.2f\"><title>",
			    PLOT_L + c * cw, top + (double)k * band_h + 1,
			    (c1 - c) * cw, bh, outcome_class(major),
			    0.25 + 0.1875 * level);
			band_label_text(x, k, per, lanes);
			out(x, ", +%s to +%s: mostly %s, %d%% busy</title>"
			       "</rect>\n",
			    fmt_dur(llround(c * cell_ms), d1),
			    fmt_dur(llround(c1 * cell_ms), d2),
			    outcome_label(major), level * 25);
			c = c1;
		}
	}
	/* the failures, on top */
	for (size_t k = 0; k < bands; k++) {
		const struct heat_cell *row = &cell[k * HEAT_COLS];
		for (int c = 0; c < HEAT_COLS; c++) {
			const struct heat_cell *hc = &row[c];
			uint32_t bad = hc->n[OUT_FAILED] + hc->n[OUT_INTERRUPTED];
			uint32_t all = bad + hc->n[OUT_SUCCEEDED] +
				       hc->n[OUT_CANCELLED] + hc->n[OUT_NONE];
			if (!bad)
				continue;
			double h = bh * (double)bad / (double)all;
			if (h < bh * 0.4)
				h = bh * 0.4;
			out(x, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			       "height=\"%.1f\" class=\"k-%c hf\"><title>",
			    PLOT_L + c * cw, top + (double)k * band_h + 1,
			    cw > 1.5 ? cw - 0.4 : cw, h,
			    hc->n[OUT_FAILED] ? 'f' : 'i');
			band_label_text(x, k, per, lanes);
			out(x, ", +%s to +%s: ", fmt_dur(llround(c * cell_ms), d1),
			    fmt_dur(llround((c + 1) * cell_ms), d2));
			heat_counts(x, hc);
			out(x, "</title></rect>\n");
		}
	}
	out(x, "</svg>\n");
	free(cell);
}

/* One bar per attempt, on its lane: retries outlined and numbered, the
 * successes first so that failures and retries are drawn on top. */
static void bars(struct rctx *x, const struct span *v, size_t n,
		 size_t lanes, int64_t t0, int64_t range)
{
	char t[TIME_BUF], d1[32], n1[32];
	double lane_h = 480.0 / (double)lanes;
	if (lane_h > 16)
		lane_h = 16;
	if (lane_h < 2)
		lane_h = 2;
	double top = 4, ph = lane_h * (double)lanes;
	out(x, "<p class=\"note\">One lane per slot: each attempt is drawn on "
	       "the lowest lane free when it started (%s lane%s: the most "
	       "attempts whose recorded times overlap). x: time since the "
	       "first start, %s; the range is %s.</p>\n",
	    fmt_count(lanes, n1), lanes == 1 ? "" : "s", fmt_time(t0, t),
	    fmt_dur(range, d1));
	legend_outcomes(x);
	out(x, "<svg viewBox=\"0 0 %d %.0f\" role=\"img\" aria-label=\""
	       "attempts on their slots over time\">\n",
	    SVG_W, top + ph + 20);
	time_axis(x, range, top, ph);
	if (lane_h >= 9) {
		for (size_t l = 0; l < lanes; l++)
			band_label(x, l, 1, lanes,
				   top + (double)l * lane_h + lane_h - 4);
	} else {
		band_label(x, 0, 1, lanes, top + 9);
		band_label(x, lanes - 1, 1, lanes, top + ph);
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].outcome == OUT_SUCCEEDED && !v[i].att)
			draw_span(x, &v[i], t0, range, top, lane_h);
	for (size_t i = 0; i < n; i++)
		if (v[i].outcome != OUT_SUCCEEDED || v[i].att)
			draw_span(x, &v[i], t0, range, top, lane_h);
	out(x, "</svg>\n<p class=\"note\">All %s attempts drawn.</p>\n",
	    fmt_count(n, n1));
}

static void timeline(struct rctx *x, struct span *v, size_t n, size_t lanes)
{
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
	if (n > MAX_BARS)
		heat_strip(x, v, n, lanes, t0, range);
	else
		bars(x, v, n, lanes, t0, range);
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

/* A member's state now: its item's, when it is one of this batch's;
 * otherwise what the shared state knows of it. */
static const char *member_state(struct rctx *x, const struct sh_member *m,
				bool ours)
{
	struct strmap_entry *e;
	if (ours && m->symbol && (e = strmap_get(&x->b->symbols, m->symbol)))
		return state_name(x->b->items[e->value].state);
	if (m->final)
		return m->state[0] ? m->state : "final";
	if (m->paused)
		return "paused";
	return m->resumed ? "resumed, not final" : "not final";
}

static void group_block(struct rctx *x, const char *id, size_t here,
			const char **syms, size_t nsyms)
{
	struct sh_group *g = x->sh ? shared_group(x->sh, id) : NULL;
	char n1[32], n2[32];
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
		       "%s in this batch</td></tr>\n</table>\n",
		    fmt_count(g->nm, n1), fmt_count(here, n2));
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
			out(x, "</span> %s%s</li>\n",
			    member_state(x, m, ours),
			    m->failed ? "" : " (did not fail: paused with the group)");
		}
		out(x, "</ul>\n");
		if (g->nm > MAX_MEMBERS)
			out(x, "<p class=\"note\">&hellip; and %s more "
			       "members.</p>\n",
			    fmt_count(g->nm - MAX_MEMBERS, n1));
	} else {
		out(x, "<tr><th>root cause</th><td>unknown (not in the "
		       "home&#39;s shared state)</td></tr>\n"
		       "<tr><th>members</th><td>%s in this batch</td></tr>\n"
		       "</table>\n<ul class=\"members\">\n",
		    fmt_count(here, n1));
		for (size_t i = 0; i < nsyms; i++) {
			struct strmap_entry *e = strmap_get(&x->b->symbols,
							    syms[i]);
			out(x, "<li><span class=\"sym\">");
			text(x, syms[i], MAX_FIELD);
			out(x, "</span> %s</li>\n",
			    e ? state_name(x->b->items[e->value].state) : "");
		}
		out(x, "</ul>\n");
		if (here > nsyms)
			out(x, "<p class=\"note\">&hellip; and %s more.</p>\n",
			    fmt_count(here - nsyms, n1));
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
	char n1[32];
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
		out(x, "<p class=\"note\">&hellip; and %s more %s "
		       "(<code>runner groups</code> lists them).</p>\n",
		    fmt_count(more, n1),
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
	char n1[32];
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
		       "height=\"%.1f\"><title>%s</title></rect>\n",
		    150 + k * bw, 125 - h, bw - 2, h, fmt_count(bins[k], n1));
	}
	out(x, "<text x=\"150\" y=\"142\">%s</text><text x=\"850\" y=\"142\" "
	       "text-anchor=\"end\">%s</text>\n<text x=\"140\" y=\"14\" "
	       "text-anchor=\"end\">%s</text>\n</svg>\n",
	    a, b, fmt_count(top, n1));
}

/* The day-over-day part: what changed since prev. */
static void since_prev(struct rctx *x, struct table *t, struct batch *prev,
		       size_t col)
{
	struct batch *b = (struct batch *)x->b;
	struct symlist lists[D_LISTS];
	char t1[TIME_BUF], n1[32];
	results_diff(b, prev, lists);
	out(x, "<h3>Since ");
	text(x, prev->c.id, MAX_FIELD);
	out(x, " (created %s)</h3>\n<table class=\"kv\">\n",
	    fmt_time(prev->c.created_ms, t1));
	for (int k = 0; k < D_LISTS; k++) {
		out(x, "<tr><th>%s</th><td>%s", diff_text[k],
		    fmt_count(lists[k].n, n1));
		for (size_t i = 0; i < lists[k].n && i < 20; i++) {
			out(x, "%s", i ? ", " : ": ");
			text(x, lists[k].v[i], MAX_FIELD);
		}
		if (lists[k].n > 20)
			out(x, ", &hellip; (%s more)",
			    fmt_count(lists[k].n - 20, n1));
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
		out(x, " (%s changed):</p>\n<table class=\"list\">\n"
		       "<tr><th>symbol</th><th class=\"n\">before</th>"
		       "<th class=\"n\">after</th><th class=\"n\">change</th>"
		       "</tr>\n", fmt_count(n, n1));
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
	char n1[32];
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
		out(x, " (%s), which %s item%s report%s; every metric: "
		       "<code>runner results ",
		    primary ? "the agent&#39;s primary metric"
			    : "the first metric the results report",
		    fmt_count(n, n1), n == 1 ? "" : "s", n == 1 ? "s" : "");
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

struct msg_group {
	char *key;		/* category, type, masked message */
	const char *norm;	/* inside key */
	int category;
	const char *type;
	size_t n;
	size_t first;		/* an item showing it */
};

static int cmp_msg_group(const void *pa, const void *pb)
{
	const struct msg_group *a = pa, *b = pb;
	if (a->n != b->n)
		return a->n > b->n ? -1 : 1;
	return a->first < b->first ? -1 : a->first > b->first;
}

/*
 * The failed items' last messages grouped by their masked signature: the
 * message as failure groups normalise it (numbers NUM, tickers TICKER),
 * with the category and error type; most frequent first, with a count and
 * one item that shows it.
 */
static void failed_messages(struct rctx *x)
{
	const struct batch *b = x->b;
	struct strmap idx = STRMAP_INIT;
	struct msg_group *g = NULL;
	size_t n = 0, cap = 0;
	struct sb norm = SB_INIT;
	char n1[32], n2[32];

	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		const struct attempt *a;
		if (it->state != ST_FAILED)
			continue;
		a = meta_last_done(it);
		sb_reset(&norm);
		correlate_normalize(a ? a->error_message : NULL, it->symbol,
				    &norm);
		int cat = a ? a->category : CAT_NONE;
		char *key = xasprintf("%d\x1f%s\x1f%s", cat,
				      it->error_type ? it->error_type : "",
				      norm.buf ? norm.buf : "");
		struct strmap_entry *e = strmap_put(&idx, key, n);
		if (e) {
			g[e->value].n++;
			free(key);
			continue;
		}
		GROW(g, cap, n + 1);
		/* the masked message ends the key (it may hold a 0x1f) */
		g[n] = (struct msg_group){ key, key + strlen(key) - norm.len, cat,
					   it->error_type, 1, i };
		n++;
	}
	sb_release(&norm);
	strmap_release(&idx);
	if (!n)
		return;
	qsort(g, n, sizeof(*g), cmp_msg_group);
	out(x, "<h3>Messages</h3>\n<p class=\"note\">%s distinct "
	       "message%s once numbers (NUM) and symbols (TICKER) are masked, "
	       "as failure groups compare them; most frequent first.</p>\n"
	       "<table class=\"list\">\n<tr><th class=\"n\">items</th>"
	       "<th>category</th><th>type</th><th>message</th><th>for "
	       "example</th></tr>\n",
	    fmt_count(n, n1), n == 1 ? "" : "s");
	for (size_t i = 0; i < n && i < MAX_MESSAGES; i++) {
		out(x, "<tr><td class=\"n\">%s</td><td>", fmt_count(g[i].n, n2));
		field(x, category_name(g[i].category));
		out(x, "</td><td>");
		field(x, g[i].type);
		out(x, "</td><td class=\"msg\">");
		if (*g[i].norm)
			text(x, g[i].norm, MAX_MESSAGE);
		else
			out(x, "&ndash;");
		out(x, "</td><td class=\"sym\">");
		text(x, b->items[g[i].first].symbol, MAX_FIELD);
		out(x, "</td></tr>\n");
	}
	out(x, "</table>\n");
	if (n > MAX_MESSAGES)
		out(x, "<p class=\"note\">&hellip; and %s more messages.</p>\n",
		    fmt_count(n - MAX_MESSAGES, n1));
	for (size_t i = 0; i < n; i++)
		free(g[i].key);
	free(g);
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
	failed_messages(x);
	out(x, "<h3>Items</h3>\n<table class=\"list\">\n<tr><th>symbol</th>"
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
	next_steps(&x);
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
