#include "stats.h"
#include "batch.h"
#include "category.h"
#include "meta.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOP_SYMBOLS 10

static const char *const item_keys[7] = {
	"total_items",	 "succeeded_items", "failed_items", "cancelled_items",
	"pending_items", "running_items",   "paused_items",
};
static const char *const item_names[7] = {
	"total",   "succeeded", "failed", "cancelled",
	"pending", "running",	"paused",
};

struct stats_agent {
	char *name;
	size_t nbatches;
	long long items[7];
	long long final_items, busy_ms;
	double *durations;
	size_t ndur, durcap;
};

struct stats_symbol {
	char *symbol;
	long long failures;	/* batches in which it ended failed */
	int64_t last_ms;
	char *last_error, *last_category, *last_batch;
};

static double num(const cJSON *o, const char *k, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Seconds as whole milliseconds (summary.json writes ms / 1000). */
static long long ms_of(double seconds)
{
	return seconds > 0 && seconds < 9e15 ? llround(seconds * 1000.0) : 0;
}

static int64_t when(const cJSON *o, const char *k)
{
	const char *s = str(o, k);
	int64_t ms;
	return s && parse_time_arg(s, &ms, NULL) == 0 ? ms : 0;
}

void stats_init(struct stats *st, int64_t since)
{
	memset(st, 0, sizeof(*st));
	st->since = since;
	st->symidx = (struct strmap)STRMAP_INIT;
	st->ids = (struct strmap)STRMAP_INIT;
}

static struct stats_agent *agent_of(struct stats *st, const char *name)
{
	for (size_t i = 0; i < st->nagents; i++)
		if (!strcmp(st->agents[i].name, name))
			return &st->agents[i];
	GROW(st->agents, st->agentcap, st->nagents + 1);
	struct stats_agent *a = &st->agents[st->nagents++];
	memset(a, 0, sizeof(*a));
	a->name = xstrdup(name);
	return a;
}

static void add_failure(struct stats *st, const cJSON *f, const char *batch)
{
	const char *sym = str(f, "symbol");
	if (!sym)
		return;
	struct strmap_entry *e = strmap_get(&st->symidx, sym);
	struct stats_symbol *s;
	if (e) {
		s = &st->syms[e->value];
	} else {
		GROW(st->syms, st->symcap, st->nsyms + 1);
		s = &st->syms[st->nsyms];
		memset(s, 0, sizeof(*s));
		s->symbol = xstrdup(sym);
		strmap_put(&st->symidx, s->symbol, st->nsyms++);
	}
	s->failures++;
	int64_t at = when(f, "completed_at");
	if (!s->last_error || at >= s->last_ms) {
		const char *msg = str(f, "error_message");
		const char *cat = str(f, "category");
		free(s->last_error);
		free(s->last_category);
		free(s->last_batch);
		s->last_error = xstrdup(msg ? msg : "");
		s->last_category = xstrdup(cat ? cat : "unknown");
		s->last_batch = xstrdup(batch ? batch : "");
		s->last_ms = at;
	}
}

bool stats_add(struct stats *st, const cJSON *b, bool archived)
{
	int64_t created = when(b, "created_at");
	if (created < st->since)
		return false;
	const char *status = str(b, "status");
	const char *bid = str(b, "batch_id");
	int s = status ? batch_status_parse(status) : -1;
	if (s < 0 || !bid || strmap_get(&st->ids, bid))
		return false;
	GROW(st->idkeys, st->idcap, st->nids + 1);
	st->idkeys[st->nids] = xstrdup(bid);
	strmap_put(&st->ids, st->idkeys[st->nids], st->nids);
	st->nids++;
	if (archived)
		st->narchived++;
	const char *agent = str(b, "agent");
	struct stats_agent *a = agent_of(st, agent ? agent : "?");
	st->nbatches++;
	a->nbatches++;
	st->by_status[s]++;
	for (int k = 0; k < 7; k++) {
		long long v = (long long)num(b, item_keys[k], 0);
		st->items[k] += v;
		a->items[k] += v;
	}
	st->attempts += (long long)num(b, "attempts", 0);
	const cJSON *es = cJSON_GetObjectItemCaseSensitive(b, "error_summary");
	for (int c = CAT_NONE + 1; c < CAT_COUNT; c++)
		st->by_cat[c] += (long long)num(es, category_name(c), 0);
	st->cpu_user_ms += ms_of(num(b, "cpu_user_seconds", 0));
	st->cpu_system_ms += ms_of(num(b, "cpu_system_seconds", 0));

	double dur = num(b, "duration_seconds", -1);
	double busy = num(b, "busy_seconds", dur);
	if (dur >= 0 && busy >= 0 && status_final(s)) {
		long long fin = (long long)num(b, "succeeded_items", 0) +
				(long long)num(b, "failed_items", 0) +
				(long long)num(b, "cancelled_items", 0);
		st->final_items += fin;
		st->busy_ms += ms_of(busy);
		a->final_items += fin;
		a->busy_ms += ms_of(busy);
		GROW(st->durations, st->durcap, st->ndur + 1);
		st->durations[st->ndur++] = dur;
		GROW(a->durations, a->durcap, a->ndur + 1);
		a->durations[a->ndur++] = dur;
	}
	const cJSON *f;
	const char *id = str(b, "batch_id");
	long long listed = 0;
	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(b, "failed"))
	{
		add_failure(st, f, id);
		listed++;
	}
	/* summary.json lists the first 100 failed items: the ranking of
	 * symbols cannot see the rest, and says how many they are. */
	long long failed = (long long)num(b, "failed_items", 0);
	if (failed > listed)
		st->unlisted += failed - listed;
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static cJSON *durations_json(double *v, size_t n)
{
	cJSON *o = cJSON_CreateObject();
	if (!n) {
		cJSON_AddNullToObject(o, "p50");
		cJSON_AddNullToObject(o, "p95");
		cJSON_AddNullToObject(o, "max");
		return o;
	}
	qsort(v, n, sizeof(double), cmp_double);
	cJSON_AddNumberToObject(o, "p50", meta_round(v[(n - 1) * 50 / 100], 3));
	cJSON_AddNumberToObject(o, "p95", meta_round(v[(n - 1) * 95 / 100], 3));
	cJSON_AddNumberToObject(o, "max", meta_round(v[n - 1], 3));
	return o;
}

static void add_rate(cJSON *o, const char *k, double num_, double den)
{
	if (den > 0)
		cJSON_AddNumberToObject(o, k,
					!strcmp(k, "success_rate")
						? meta_round(num_ / den, 4)
						: meta_round_sig(num_ / den, 3));
	else
		cJSON_AddNullToObject(o, k);
}

static cJSON *items_json(const long long items[7])
{
	cJSON *o = cJSON_CreateObject();
	for (int k = 0; k < 7; k++)
		cJSON_AddNumberToObject(o, item_names[k], (double)items[k]);
	return o;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct stats_symbol *x = a, *y = b;
	if (x->failures != y->failures)
		return x->failures > y->failures ? -1 : 1;
	if (x->last_ms != y->last_ms)
		return x->last_ms > y->last_ms ? -1 : 1;
	return strcmp(x->symbol, y->symbol);
}

cJSON *stats_finish(struct stats *st)
{
	char t[TIME_BUF];
	cJSON *o = cJSON_CreateObject();
	if (st->since > INT64_MIN)
		cJSON_AddStringToObject(o, "since", fmt_time(st->since, t));
	else
		cJSON_AddNullToObject(o, "since");
	cJSON_AddNumberToObject(o, "batches", (double)st->nbatches);
	cJSON_AddNumberToObject(o, "archived_batches", (double)st->narchived);
	cJSON *bs = cJSON_AddObjectToObject(o, "batches_by_status");
	for (int s = BS_PENDING; s <= BS_CANCELLED; s++)
		cJSON_AddNumberToObject(bs, batch_status_name(s),
					(double)st->by_status[s]);
	cJSON_AddItemToObject(o, "items", items_json(st->items));
	double fin = (double)(st->items[1] + st->items[2] + st->items[3]);
	add_rate(o, "success_rate", (double)st->items[1], fin);
	cJSON_AddNumberToObject(o, "attempts", (double)st->attempts);
	cJSON *ec = cJSON_AddObjectToObject(o, "error_categories");
	for (int c = CAT_NONE + 1; c < CAT_COUNT; c++)
		cJSON_AddNumberToObject(ec, category_name(c),
					(double)st->by_cat[c]);
	cJSON *tp = cJSON_AddObjectToObject(o, "throughput");
	add_rate(tp, "items_per_second", (double)st->final_items,
		 (double)st->busy_ms / 1000.0);
	cJSON_AddNumberToObject(tp, "busy_seconds",
				(double)st->busy_ms / 1000.0);
	cJSON_AddItemToObject(o, "batch_duration_seconds",
			      durations_json(st->durations, st->ndur));
	cJSON_AddNumberToObject(o, "cpu_user_seconds",
				(double)st->cpu_user_ms / 1000.0);
	cJSON_AddNumberToObject(o, "cpu_system_seconds",
				(double)st->cpu_system_ms / 1000.0);

	if (st->nsyms)
		qsort(st->syms, st->nsyms, sizeof(*st->syms), cmp_sym);
	cJSON_AddNumberToObject(o, "unlisted_failed_items",
				(double)st->unlisted);
	cJSON *top = cJSON_AddArrayToObject(o, "top_failing_symbols");
	for (size_t i = 0; i < st->nsyms && i < TOP_SYMBOLS; i++) {
		const struct stats_symbol *s = &st->syms[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "symbol", s->symbol);
		cJSON_AddNumberToObject(e, "failures", (double)s->failures);
		cJSON_AddStringToObject(e, "last_category", s->last_category);
		cJSON_AddStringToObject(e, "last_error", s->last_error);
		cJSON_AddStringToObject(e, "last_batch_id", s->last_batch);
		if (s->last_ms)
			cJSON_AddStringToObject(e, "last_failed_at",
						fmt_time(s->last_ms, t));
		else
			cJSON_AddNullToObject(e, "last_failed_at");
		cJSON_AddItemToArray(top, e);
	}
	cJSON *agents = cJSON_AddArrayToObject(o, "agents");
	for (size_t i = 0; i < st->nagents; i++) {
		struct stats_agent *a = &st->agents[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "agent", a->name);
		cJSON_AddNumberToObject(e, "batches", (double)a->nbatches);
		cJSON_AddItemToObject(e, "items", items_json(a->items));
		add_rate(e, "success_rate", (double)a->items[1],
			 (double)(a->items[1] + a->items[2] + a->items[3]));
		add_rate(e, "items_per_second", (double)a->final_items,
			 (double)a->busy_ms / 1000.0);
		cJSON_AddItemToObject(e, "batch_duration_seconds",
				      durations_json(a->durations, a->ndur));
		cJSON_AddItemToArray(agents, e);
	}
	return o;
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void print_rate(FILE *fp, const cJSON *v)
{
	if (cJSON_IsNumber(v))
		fprintf(fp, "%.1f%%", v->valuedouble * 100.0);
	else
		fputs("-", fp);
}

static void print_secs(FILE *fp, const cJSON *v)
{
	char buf[32];
	if (cJSON_IsNumber(v))
		fputs(fmt_duration((int64_t)llround(v->valuedouble * 1000.0),
				   buf, sizeof(buf)),
		      fp);
	else
		fputs("-", fp);
}

void stats_print(FILE *fp, const cJSON *o)
{
	const cJSON *since = get(o, "since"), *v;
	fprintf(fp, "batches      %.0f%s%s", num(o, "batches", 0),
		cJSON_IsString(since) ? " since " : "",
		cJSON_IsString(since) ? since->valuestring : "");
	if (num(o, "archived_batches", 0) > 0)
		fprintf(fp, " (%.0f archived)", num(o, "archived_batches", 0));
	fputc('\n', fp);
	bool first = true;
	cJSON_ArrayForEach(v, get(o, "batches_by_status"))
	{
		if (!v->valuedouble)
			continue;
		fprintf(fp, "%s%s %.0f", first ? "  by status  " : ", ",
			v->string, v->valuedouble);
		first = false;
	}
	if (!first)
		fputc('\n', fp);
	const cJSON *it = get(o, "items");
	fprintf(fp,
		"items        %.0f: %.0f succeeded, %.0f failed, %.0f cancelled, "
		"%.0f open\n",
		num(it, "total", 0), num(it, "succeeded", 0),
		num(it, "failed", 0), num(it, "cancelled", 0),
		num(it, "pending", 0) + num(it, "running", 0) +
			num(it, "paused", 0));
	fputs("success      ", fp);
	print_rate(fp, get(o, "success_rate"));
	double attempts = num(o, "attempts", 0);
	fprintf(fp, " of final items, %.0f %s\n", attempts,
		attempts == 1 ? "attempt" : "attempts");
	first = true;
	cJSON_ArrayForEach(v, get(o, "error_categories"))
	{
		if (!v->valuedouble)
			continue;
		fprintf(fp, "%s%s %.0f", first ? "errors       " : ", ",
			v->string, v->valuedouble);
		first = false;
	}
	if (!first)
		fputc('\n', fp);
	const cJSON *tp = get(o, "throughput");
	if (cJSON_IsNumber(get(tp, "items_per_second"))) {
		char rate[32];
		fprintf(fp, "throughput   %s items/s while busy (",
			fmt_rate(num(tp, "items_per_second", 0), rate,
				 sizeof(rate)));
		print_secs(fp, get(tp, "busy_seconds"));
		fputs(" busy)\n", fp);
	}
	const cJSON *d = get(o, "batch_duration_seconds");
	if (cJSON_IsNumber(get(d, "max"))) {
		fputs("duration     p50 ", fp);
		print_secs(fp, get(d, "p50"));
		fputs(", p95 ", fp);
		print_secs(fp, get(d, "p95"));
		fputs(", max ", fp);
		print_secs(fp, get(d, "max"));
		fputc('\n', fp);
	}
	const cJSON *top = get(o, "top_failing_symbols");
	if (cJSON_GetArraySize(top)) {
		fprintf(fp, "most failing symbols\n");
		int symw = 12;	/* up to the longest symbol (32) */
		cJSON_ArrayForEach(v, top) {
			const char *sym = str(v, "symbol");
			if (sym && (int)strlen(sym) > symw)
				symw = (int)strlen(sym);
		}
		cJSON_ArrayForEach(v, top)
		fprintf(fp, "  %-*s %4.0f  %s: %.100s\n", symw, str(v, "symbol"),
			num(v, "failures", 0), str(v, "last_category"),
			str(v, "last_error"));
		if (num(o, "unlisted_failed_items", 0) > 0)
			fprintf(fp, "  (not counted: %.0f failed items beyond "
				    "the first 100 of their batch)\n",
				num(o, "unlisted_failed_items", 0));
	}
	const cJSON *ag = get(o, "agents");
	if (cJSON_GetArraySize(ag)) {
		fprintf(fp, "%-20s %8s %10s %8s %10s %s\n", "AGENT", "BATCHES",
			"ITEMS", "SUCCESS", "ITEMS/S", "DURATION P50");
		cJSON_ArrayForEach(v, ag)
		{
			const cJSON *r = get(v, "items_per_second");
			fprintf(fp, "%-20s %8.0f %10.0f ", str(v, "agent"),
				num(v, "batches", 0),
				num(get(v, "items"), "total", 0));
			char rate[32] = "-", ips[32] = "-";
			const cJSON *sr = get(v, "success_rate");
			if (cJSON_IsNumber(sr))
				snprintf(rate, sizeof(rate), "%.1f%%",
					 sr->valuedouble * 100.0);
			if (cJSON_IsNumber(r))
				fmt_rate(r->valuedouble, ips, sizeof(ips));
			fprintf(fp, "%8s %10s ", rate, ips);
			print_secs(fp, get(get(v, "batch_duration_seconds"),
					   "p50"));
			fputc('\n', fp);
		}
	}
}

void stats_release(struct stats *st)
{
	for (size_t i = 0; i < st->nagents; i++) {
		free(st->agents[i].name);
		free(st->agents[i].durations);
	}
	free(st->agents);
	for (size_t i = 0; i < st->nsyms; i++) {
		free(st->syms[i].symbol);
		free(st->syms[i].last_error);
		free(st->syms[i].last_category);
		free(st->syms[i].last_batch);
	}
	free(st->syms);
	free(st->durations);
	strmap_release(&st->symidx);
	for (size_t i = 0; i < st->nids; i++)
		free(st->idkeys[i]);
	free(st->idkeys);
	strmap_release(&st->ids);
}
