#include "progress.h"
#include "batch.h"
#include "meta.h"
#include "util.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define REDRAW_NS 100000000LL

void progress_init(struct progress *p, bool want)
{
	memset(p, 0, sizeof(*p));
	/* On stderr, as pv and parallel --bar: `runner run | tee` keeps it,
	 * and stdout stays free for what the command says. */
	p->enabled = want && isatty(STDERR_FILENO);
	p->start_ns = mono_ns();
}

void progress_add(struct progress *p, size_t total, size_t ok, size_t failed)
{
	p->total += total;
	p->ok += ok;
	p->failed += failed;
	p->done_at_start += ok + failed;
}

void progress_note(struct progress *p, int state)
{
	if (state == ST_SUCCEEDED)
		p->ok++;
	else if (state == ST_FAILED || state == ST_CANCELLED)
		p->failed++;
}

void progress_requeue(struct progress *p, size_t n)
{
	p->failed = p->failed > n ? p->failed - n : 0;
	p->done_at_start = p->done_at_start > n ? p->done_at_start - n : 0;
}

bool progress_active(const struct progress *p)
{
	return p->enabled;
}

int64_t progress_next_ns(const struct progress *p)
{
	return p->last_draw_ns + REDRAW_NS;
}

bool progress_due(const struct progress *p)
{
	return p->enabled && mono_ns() - p->last_draw_ns >= REDRAW_NS;
}

/* The terminal's width now: asked at each redraw (at most 10 a second),
 * so a resized window is followed without a SIGWINCH handler in a
 * process whose signals arrive on a signalfd. */
static int term_cols(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/*
 * "[####    ] 42% 420/1000 ok 400 failed 20 running 4 ETA 1m05s": the
 * counts, then a bar in what is left of the width (none when under 10
 * columns are left), the whole one column short of the terminal's width
 * so that it never wraps: a wrapped line is a new line at each redraw.
 */
void progress_draw(struct progress *p, size_t running, size_t paused,
		   bool force)
{
	if (!p->enabled)
		return;
	int64_t now = mono_ns();
	if (!force && now - p->last_draw_ns < REDRAW_NS)
		return;
	p->last_draw_ns = now;
	size_t done = p->ok + p->failed;
	char eta[32] = "--", text[256], paused_s[48] = "";
	double secs = (double)(now - p->start_ns) / 1e9;
	size_t done_here = done > p->done_at_start ? done - p->done_at_start : 0;
	double rate = done_here && secs > 0 ? (double)done_here / secs : 0;
	if (rate > 0 && p->total > done) {
		/* Whole seconds, rounded up: "0s" only when all is done. */
		double left_s = (double)(p->total - done) / rate;
		fmt_duration((int64_t)ceil(left_s < 1 ? 1 : left_s) * 1000, eta,
			     sizeof(eta));
	} else if (p->total == done) {
		snprintf(eta, sizeof(eta), "0s");
	}
	if (paused && done + paused >= p->total && !running)
		snprintf(eta, sizeof(eta), "paused");
	if (paused)
		snprintf(paused_s, sizeof(paused_s), " paused %zu", paused);
	unsigned pct = p->total ? (unsigned)(done * 100 / p->total) : 100;
	int tn = snprintf(text, sizeof(text),
			  "%u%% %zu/%zu ok %zu failed %zu running %zu%s ETA %s",
			  pct, done, p->total, p->ok, p->failed, running,
			  paused_s, eta);
	if (tn < 0)
		return;
	int cols = term_cols() - 1, bar = cols - tn - 3;
	if (bar > 40)
		bar = 40;
	fputs("\r", stderr);
	if (bar >= 10) {
		int fill = p->total ? (int)((double)done / (double)p->total * bar)
				    : bar;
		fputc('[', stderr);
		for (int i = 0; i < bar; i++)
			fputc(i < fill ? '#' : ' ', stderr);
		fputs("] ", stderr);
	}
	fprintf(stderr, "%.*s\033[K", tn < cols ? tn : (cols > 0 ? cols : 0),
		text);
	fflush(stderr);
	p->drawn = true;
}

void progress_clear(struct progress *p)
{
	if (!p->drawn)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	p->drawn = false;
}

/* One object on one line, flushed: a reader sees each event as it happens. */
static void put_event(FILE *fp, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	if (s) {
		fputs(s, fp);
		fputc('\n', fp);
		cJSON_free(s);
	}
	cJSON_Delete(o);
	fflush(fp);
}

static void add_name(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

void progress_event(FILE *fp, const struct batch *b, size_t completed,
		    const struct item *it)
{
	const struct attempt *a = meta_last_done(it);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", "progress");
	cJSON_AddStringToObject(o, "batch_id", b->c.id);
	cJSON_AddNumberToObject(o, "completed", (double)completed);
	cJSON_AddNumberToObject(o, "total", (double)b->nitems);
	cJSON_AddStringToObject(o, "symbol", it->symbol);
	cJSON_AddStringToObject(o, "state", state_name(it->state));
	json_add_time(o, "time", it->completed_ms ? it->completed_ms : now_ms());
	json_add_time(o, "time_at", it->completed_ms ? it->completed_ms : now_ms());
	if (a)
		cJSON_AddNumberToObject(o, "attempt", (double)(a - it->log + 1));
	else
		cJSON_AddNullToObject(o, "attempt");
	add_name(o, "outcome", a ? outcome_name(a->outcome) : NULL);
	add_name(o, "category", a ? category_name(a->category) : NULL);
	put_event(fp, o);
}

/* What a paused batch waits on: its paused items' failure groups, and a
 * resume command per group (and one for the batch when a user paused
 * items).  Few groups touch one batch: a linear search is enough. */
static void add_waits(cJSON *o, const struct batch *b)
{
	cJSON *groups = cJSON_AddArrayToObject(o, "groups");
	cJSON *resume = cJSON_AddArrayToObject(o, "resume");
	bool user = false;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (it->state != ST_PAUSED)
			continue;
		if (!it->failure_group) {
			user = true;
			continue;
		}
		bool seen = false;
		const cJSON *g;
		cJSON_ArrayForEach(g, groups)
			seen |= !strcmp(g->valuestring, it->failure_group);
		if (seen)
			continue;
		cJSON_AddItemToArray(groups,
				     cJSON_CreateString(it->failure_group));
		char *cmd = xasprintf("runner resume %s", it->failure_group);
		cJSON_AddItemToArray(resume, cJSON_CreateString(cmd));
		free(cmd);
	}
	if (user) {
		char *cmd = xasprintf("runner resume %s", b->c.id);
		cJSON_AddItemToArray(resume, cJSON_CreateString(cmd));
		free(cmd);
	}
}

void progress_batch_event(FILE *fp, const struct batch *b, int64_t now)
{
	int st = batch_status(b);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", "batch");
	cJSON_AddStringToObject(o, "batch_id", b->c.id);
	cJSON_AddStringToObject(o, "status", batch_status_name(st));
	cJSON_AddNumberToObject(o, "total", (double)b->nitems);
	cJSON_AddNumberToObject(o, "succeeded", (double)b->count[ST_SUCCEEDED]);
	cJSON_AddNumberToObject(o, "failed", (double)b->count[ST_FAILED]);
	cJSON_AddNumberToObject(o, "cancelled", (double)b->count[ST_CANCELLED]);
	cJSON_AddNumberToObject(o, "paused", (double)b->count[ST_PAUSED]);
	json_add_time(o, "time", b->final && b->completed_ms ? b->completed_ms
							     : now);
	json_add_time(o, "time_at", b->final && b->completed_ms ? b->completed_ms
								: now);
	if (st == BS_PAUSED)
		add_waits(o, b);
	put_event(fp, o);
}
