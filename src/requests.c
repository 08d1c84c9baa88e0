#include "requests.h"
#include "job.h"
#include "adopt.h"
#include "circuits.h"
#include "runs.h"
#include "sched.h"
#include <cJSON.h>
#include "control.h"
#include "runlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

static bool symbol_listed(char **symbols, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(symbols[i], s))
			return true;
	return false;
}

int engine_cancel(struct engine *e, const char *id, char **symbols,
		  size_t nsymbols, struct sb *reply)
{
	struct ebatch *eb = engine_find(e, id);
	if (!eb) {
		sb_addf(reply, "{\"ok\":false,\"error\":\"batch not owned\"}");
		return -1;
	}
	struct batch *b = &eb->b;
	uint32_t *idx = xmalloc((b->nitems + 1) * sizeof(uint32_t));
	uint32_t n = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (state_final(it->state))
			continue;
		if (nsymbols && !symbol_listed(symbols, nsymbols, it->symbol))
			continue;
		idx[n++] = (uint32_t)i;
	}
	if (n) {
		int64_t now = now_ms();
		struct rec r = { .type = R_CANCEL, .time = now,
				 .whole = nsymbols == 0, .reason = CANCEL_USER,
				 .n = nsymbols ? n : 0, .indexes = idx };
		engine_record(eb, &r);
		for (uint32_t k = 0; k < n; k++) {
			const struct item *it = &b->items[idx[k]];
			if (it->state == ST_CANCELLED) {
				queue_push(&eb->unreported, idx[k]);
				circ_note_final(e, eb, idx[k]);
			}
		}
		for (size_t k = 0; k < e->nruns; k++) {
			struct run *run = &e->runs[k];
			if (run->eb == eb && b->items[run->item].cancel_requested)
				runs_signal(e, run, KILL_CANCEL);
		}
		/* Reservations of cancelled items were withdrawn. */
		engine_withdraw(eb);
		engine_commit(e, eb, true);
	}
	sb_addf(reply, "{\"ok\":true,\"cancelled\":%u}", n);
	free(idx);
	return (int)n;
}

int engine_retry_failed(struct engine *e, const char *id, unsigned categories,
			char **symbols, size_t nsymbols, struct sb *reply)
{
	struct ebatch *eb = engine_find(e, id);
	if (!eb) {
		sb_addf(reply, "{\"ok\":false,\"error\":\"batch not owned\"}");
		return -1;
	}
	struct batch *b = &eb->b;
	uint32_t *idx = xmalloc((b->nitems + 1) * sizeof(uint32_t));
	uint32_t n = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (it->state != ST_FAILED)
			continue;
		int cat = it->nattempts ? it->log[it->nattempts - 1].category
					: CAT_NONE;
		if (categories && !(categories & CAT_BIT(cat)))
			continue;
		if (nsymbols && !symbol_listed(symbols, nsymbols, it->symbol))
			continue;
		idx[n++] = (uint32_t)i;
	}
	/* summary.json says a batch is final, and every later run's search
	 * for orphans believes it without replaying the journal: it goes,
	 * durably, before the record that reopens the batch, or a runner that
	 * dies during these attempts would leave them running for ever. */
	if (n && ((unlinkat(eb->dirfd, "summary.json", 0) < 0 &&
		   errno != ENOENT) ||
		  fsync_dir(eb->dirfd) < 0)) {
		error("batch %s: summary.json: %s", id, strerror(errno));
		sb_addf(reply, "{\"ok\":false,\"error\":\"cannot reopen the "
			       "batch: summary.json: %s\"}", strerror(errno));
		free(idx);
		return -1;
	}
	if (n) {
		struct rec r = { .type = R_REQUEUE, .time = now_ms(), .n = n,
				 .indexes = idx };
		engine_record(eb, &r);
		for (uint32_t k = 0; k < n; k++) {
			queue_push(&eb->requeue, idx[k]);
			/* The user asks for it now: an open circuit of its
			 * symbol gets its half-open trial at once. */
			circ_force_symbol_trial(e, b->items[idx[k]].symbol);
		}
		progress_requeue(&e->prog, n);
		engine_commit(e, eb, true);
	}
	sb_addf(reply, "{\"ok\":true,\"requeued\":%u}", n);
	free(idx);
	return (int)n;
}

int engine_pause(struct engine *e, const char *id, char **symbols,
		 size_t nsymbols, const char *reason, struct sb *reply)
{
	struct ebatch *eb = engine_find(e, id);
	if (!eb) {
		sb_addf(reply, "{\"ok\":false,\"error\":\"batch not owned\"}");
		return -1;
	}
	uint32_t n = 0;
	uint32_t *idx = circ_pausable(eb, &n), k = 0;
	for (uint32_t i = 0; i < n; i++)
		if (!nsymbols ||
		    symbol_listed(symbols, nsymbols, eb->b.items[idx[i]].symbol))
			idx[k++] = idx[i];
	circ_pause_items(e, eb, idx, k, NULL, reason);
	runlog_printf(e->o.runlog, "batch %s: %u %s paused by a user", id, k,
		      plural(k, "item", "items"));
	/* Symbols named but not paused, and why: a user must not read
	 * "2 items paused" for three names without knowing of the third. */
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddNumberToObject(o, "paused", k);
	cJSON *np = cJSON_AddArrayToObject(o, "not_paused");
	for (size_t i = 0; i < nsymbols; i++) {
		const struct item *it = batch_item(&eb->b, symbols[i]);
		const char *why = !it ? "not in the batch"
			: it->state == ST_RUNNING ? "running: it finishes"
			: it->state == ST_PAUSED ? "paused already"
			: state_final(it->state) ? state_name(it->state)
						 : NULL;
		if (!why)
			continue;
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "symbol", symbols[i]);
		cJSON_AddStringToObject(x, "why", why);
		cJSON_AddItemToArray(np, x);
	}
	char *text = cJSON_PrintUnformatted(o);
	sb_adds(reply, text ? text : "{\"ok\":true}");
	cJSON_free(text);
	cJSON_Delete(o);
	free(idx);
	return (int)k;
}

int engine_resume(struct engine *e, const char *id, const char *order,
		  struct sb *reply)
{
	struct ebatch *eb = engine_find(e, id);
	if (!eb) {
		sb_addf(reply, "{\"ok\":false,\"error\":\"batch not owned\"}");
		return -1;
	}
	uint32_t *idx = xmalloc((eb->b.nitems + 1) * sizeof(uint32_t)), own = 0;
	size_t groups = 0, by_group = 0;
	for (size_t i = 0; i < eb->b.nitems; i++) {
		const struct item *it = &eb->b.items[i];
		if (it->state != ST_PAUSED)
			continue;
		const struct sh_group *g =
			it->pause_group && e->sh_ok
				? shared_group(&e->sh, it->pause_group)
				: NULL;
		if (g && g->status != GROUP_RESOLVED) {
			/* It waits on its group: resuming the batch resumes
			 * the group, for every batch it holds. */
			if (g->status == GROUP_OPEN) {
				shared_resume(&e->sh, g->id,
					      order ? order : "progress",
					      now_ms());
				groups++;
			}
			by_group++;
			continue;
		}
		idx[own++] = (uint32_t)i; /* a user's pause */
	}
	circ_resume_items(e, eb, NULL, idx, own, order, NULL);
	circ_react(e);
	runlog_printf(e->o.runlog,
		      "batch %s: resumed %u %s, and %zu through %zu %s",
		      id, own, plural(own, "item", "items"), by_group, groups,
		      plural(groups, "group", "groups"));
	sb_addf(reply, "{\"ok\":true,\"resumed\":%zu,\"groups\":%zu}",
		own + by_group, groups);
	free(idx);
	return (int)(own + by_group);
}

struct shared *engine_shared(struct engine *e)
{
	return e->sh_ok ? &e->sh : NULL;
}

static char **json_strings(const cJSON *arr, size_t *n)
{
	size_t cnt = 0, cap = 0;
	char **v = NULL;
	const cJSON *x;
	cJSON_ArrayForEach(x, arr)
	{
		if (!cJSON_IsString(x) || !x->valuestring)
			continue;
		GROW(v, cap, cnt + 2);
		v[cnt++] = xstrdup(x->valuestring);
	}
	if (v)
		v[cnt] = NULL;
	*n = cnt;
	return v;
}

void engine_control(struct engine *e, const char *id, const char *json,
		    struct sb *reply)
{
	cJSON *req = cJSON_Parse(json);
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(req, "op");
	size_t ns = 0, nc = 0;
	char **syms = json_strings(
		cJSON_GetObjectItemCaseSensitive(req, "symbols"), &ns);
	char **cats = json_strings(
		cJSON_GetObjectItemCaseSensitive(req, "categories"), &nc);
	if (!cJSON_IsString(op)) {
		sb_adds(reply, "{\"ok\":false,\"error\":\"bad request\"}");
	} else if (!strcmp(op->valuestring, "cancel")) {
		engine_cancel(e, id, syms, ns, reply);
	} else if (!strcmp(op->valuestring, "pause")) {
		const cJSON *why = cJSON_GetObjectItemCaseSensitive(req, "reason");
		engine_pause(e, id, syms, ns,
			     cJSON_IsString(why) ? why->valuestring : NULL, reply);
	} else if (!strcmp(op->valuestring, "resume")) {
		const cJSON *ord = cJSON_GetObjectItemCaseSensitive(req, "order");
		engine_resume(e, id, cJSON_IsString(ord) ? ord->valuestring : NULL,
			      reply);
	} else if (!strcmp(op->valuestring, "retry-failed")) {
		unsigned mask = 0;
		for (size_t i = 0; i < nc; i++)
			mask |= CAT_BIT(category_parse(cats[i]));
		engine_retry_failed(e, id, mask, syms, ns, reply);
	} else {
		sb_addf(reply, "{\"ok\":false,\"error\":\"unknown op\"}");
	}
	words_free(syms);
	words_free(cats);
	cJSON_Delete(req);
}

/* A daemon answers for every batch of its home that no other runner
 * process holds: it takes the batch to carry the request out. */
bool requests_owns(void *arg, const char *id)
{
	struct engine *e = arg;
	if (engine_find(e, id))
		return true;
	if (!e->o.daemon || e->shutdown || !valid_batch_id(id))
		return false;
	return engine_take(e, id, -1, TAKE_FINAL) == 0;
}

void requests_control_cb(void *arg, const char *id, const char *json,
			 struct sb *reply)
{
	engine_control(arg, id, json, reply);
}
