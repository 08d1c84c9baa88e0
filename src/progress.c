#include "progress.h"
#include "batch.h"
#include "util.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDRAW_NS 100000000LL

void progress_init(struct progress *p, bool want)
{
	memset(p, 0, sizeof(*p));
	p->enabled = want && isatty(STDOUT_FILENO);
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
	char eta[32] = "--", rate_s[32] = "-";
	double secs = (double)(now - p->start_ns) / 1e9;
	size_t done_here = done > p->done_at_start ? done - p->done_at_start : 0;
	double rate = done_here && secs > 0 ? (double)done_here / secs : 0;
	if (rate > 0)
		snprintf(rate_s, sizeof(rate_s), "%.1f", rate);
	if (rate > 0 && p->total > done) {
		fmt_duration((int64_t)((double)(p->total - done) / rate * 1000),
			     eta, sizeof(eta));
	} else if (p->total == done) {
		snprintf(eta, sizeof(eta), "0s");
	}
	if (paused && done + paused >= p->total && !running)
		snprintf(eta, sizeof(eta), "paused");
	printf("\r[%zu/%zu] %zu ok, %zu failed, %zu running, %zu paused, "
	       "%s items/s, ETA %s\033[K",
	       done, p->total, p->ok, p->failed, running, paused, rate_s, eta);
	fflush(stdout);
	p->drawn = true;
}

void progress_clear(struct progress *p)
{
	if (!p->drawn)
		return;
	printf("\r\033[K");
	fflush(stdout);
	p->drawn = false;
}

void progress_event(FILE *fp, const char *batch, size_t completed,
		    size_t total, const char *symbol, const char *state)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", "progress");
	cJSON_AddStringToObject(o, "batch_id", batch);
	cJSON_AddNumberToObject(o, "completed", (double)completed);
	cJSON_AddNumberToObject(o, "total", (double)total);
	cJSON_AddStringToObject(o, "symbol", symbol);
	cJSON_AddStringToObject(o, "state", state);
	char *s = cJSON_PrintUnformatted(o);
	if (s) {
		fputs(s, fp);
		fputc('\n', fp);
		cJSON_free(s);
	}
	cJSON_Delete(o);
	fflush(fp);
}
