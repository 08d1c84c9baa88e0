#include "meta.h"
#include "conf.h"
#include "job.h"
#include "exec.h"
#include "home.h"
#include "shared.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

void json_add_time(cJSON *o, const char *k, int64_t ms)
{
	char buf[TIME_BUF];
	if (ms > 0)
		cJSON_AddStringToObject(o, k, fmt_time(ms, buf));
	else
		cJSON_AddNullToObject(o, k);
}

static void add_int(cJSON *o, const char *k, int64_t v, bool present)
{
	if (present)
		cJSON_AddNumberToObject(o, k, (double)v);
	else
		cJSON_AddNullToObject(o, k);
}

static void add_signal(cJSON *o, const char *k, int sig)
{
	char buf[32];
	add_str(o, k, sig ? exec_signame(sig, buf, sizeof(buf)) : NULL);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

const struct attempt *meta_last_done(const struct item *it)
{
	for (int i = it->nattempts - 1; i >= 0; i--)
		if (it->log[i].completed_ms)
			return &it->log[i];
	return NULL;
}

static int64_t item_started(const struct item *it)
{
	for (int i = 0; i < it->nattempts; i++)
		if (it->log[i].started_ms)
			return it->log[i].started_ms;
	return 0;
}

int64_t meta_attempt_duration(const struct attempt *a)
{
	return a && a->started_ms && a->completed_ms
		       ? a->completed_ms - a->started_ms
		       : -1;
}

struct span {
	int64_t from, to;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->from < y->from ? -1 : x->from > y->from;
}

int64_t meta_busy_ms(const struct batch *b, int64_t now)
{
	size_t n = 0, cap = 0;
	struct span *v = NULL;
	/* An attempt without an end in a final batch cannot be; should a
	 * journal say so, it ends with the batch, not at the reader's now. */
	int64_t open_end = b->final ? b->completed_ms : now;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		for (int k = 0; k < it->nattempts; k++) {
			const struct attempt *a = &it->log[k];
			int64_t to = a->completed_ms ? a->completed_ms : open_end;
			if (!a->started_ms || to < a->started_ms)
				continue;
			GROW(v, cap, n + 1);
			v[n++] = (struct span){ a->started_ms, to };
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_span);
	int64_t busy = 0;
	for (size_t i = 0; i < n;) {
		struct span cur = v[i++];
		while (i < n && v[i].from <= cur.to) {
			if (v[i].to > cur.to)
				cur.to = v[i].to;
			i++;
		}
		busy += cur.to - cur.from;
	}
	free(v);
	return busy;
}

static size_t final_count(const struct batch *b)
{
	return b->count[ST_SUCCEEDED] + b->count[ST_FAILED] +
	       b->count[ST_CANCELLED];
}

void meta_perf(const struct batch *b, int64_t now, struct meta_perf *p)
{
	memset(p, 0, sizeof(*p));
	if (b->started_ms) {
		int64_t end = b->final ? b->completed_ms : now;
		p->duration_s = (double)(end - b->started_ms) / 1000.0;
		if (p->duration_s < 0)
			p->duration_s = 0;
		p->has_duration = true;
		p->busy_s = (double)meta_busy_ms(b, now) / 1000.0;
		if (p->busy_s > 0) {
			p->items_per_s = (double)final_count(b) / p->busy_s;
			p->has_rate = true;
		}
	}
	int64_t *lat = xmalloc((b->nitems + 1) * sizeof(int64_t));
	double sum = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		int64_t d = state_final(it->state)
				    ? meta_attempt_duration(meta_last_done(it))
				    : -1;
		if (d >= 0) {
			lat[p->nlat++] = d;
			sum += (double)d;
		}
	}
	if (p->nlat) {
		qsort(lat, p->nlat, sizeof(int64_t), cmp_i64);
		p->lat_avg = sum / (double)p->nlat;
		p->lat_p50 = lat[(p->nlat - 1) * 50 / 100];
		p->lat_p95 = lat[(p->nlat - 1) * 95 / 100];
		p->lat_max = lat[p->nlat - 1];
	}
	free(lat);
}

static size_t pending_count(const struct batch *b)
{
	return b->count[ST_PENDING] + b->count[ST_STARTING] +
	       b->count[ST_RETRY_WAIT];
}

/* error_summary: failed items per category of their last attempt. */
static void add_error_summary(cJSON *o, const struct batch *b)
{
	size_t by_cat[CAT_COUNT] = { 0 };
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		const struct attempt *a;
		if (it->state == ST_FAILED && (a = meta_last_done(it)))
			by_cat[a->category]++;
	}
	cJSON *es = cJSON_AddObjectToObject(o, "error_summary");
	for (int k = CAT_NONE + 1; k < CAT_COUNT; k++)
		if (by_cat[k])
			cJSON_AddNumberToObject(es, category_name(k),
						(double)by_cat[k]);
}

/* The SPEC 7 performance fields, into o. */
/* The failure groups the batch's items belong to, each once, in item
 * order: at most max of them. */
static size_t batch_groups(const struct batch *b, const char **ids, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < b->nitems && n < max; i++) {
		const char *gid = b->items[i].failure_group;
		bool dup = false;
		if (!gid)
			continue;
		for (size_t k = 0; k < n && !dup; k++)
			dup = !strcmp(ids[k], gid);
		if (!dup)
			ids[n++] = gid;
	}
	return n;
}

static void add_perf(cJSON *o, const struct batch *b, const struct meta_perf *p)
{
	if (p->has_duration) {
		cJSON_AddNumberToObject(o, "duration_seconds",
					meta_round(p->duration_s, 3));
		cJSON_AddNumberToObject(o, "busy_seconds",
					meta_round(p->busy_s, 3));
	} else {
		cJSON_AddNullToObject(o, "duration_seconds");
		cJSON_AddNullToObject(o, "busy_seconds");
	}
	if (p->has_rate)
		cJSON_AddNumberToObject(o, "items_per_second",
					meta_round_sig(p->items_per_s, 3));
	else
		cJSON_AddNullToObject(o, "items_per_second");
	cJSON_AddNumberToObject(o, "cpu_user_seconds",
				(double)b->cpu_user_ms / 1000.0);
	cJSON_AddNumberToObject(o, "cpu_system_seconds",
				(double)b->cpu_system_ms / 1000.0);
	add_int(o, "max_rss_kb", b->max_rss_kb, b->attempts_total > 0);
	cJSON *lat = cJSON_AddObjectToObject(o, "latency_ms");
	if (p->nlat) {
		cJSON_AddNumberToObject(lat, "avg", meta_round(p->lat_avg, 1));
		cJSON_AddNumberToObject(lat, "p50", (double)p->lat_p50);
		cJSON_AddNumberToObject(lat, "p95", (double)p->lat_p95);
		cJSON_AddNumberToObject(lat, "max", (double)p->lat_max);
	} else {
		cJSON_AddNullToObject(lat, "avg");
		cJSON_AddNullToObject(lat, "p50");
		cJSON_AddNullToObject(lat, "p95");
		cJSON_AddNullToObject(lat, "max");
	}
}

cJSON *meta_group_json(struct shared *sh, const char *id)
{
	struct sh_group *g = sh ? shared_group(sh, id) : NULL;
	char t[TIME_BUF];
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "group_id", id);
	add_str(o, "root_cause", g ? g->root_cause : NULL);
	cJSON *sig = cJSON_AddObjectToObject(o, "signature");
	add_str(sig, "agent", g ? g->agent : NULL);
	add_str(sig, "category", g ? g->category : NULL);
	add_str(sig, "error_type", g ? g->type : NULL);
	add_str(sig, "source", g ? g->source : NULL);
	add_str(sig, "message", g ? g->norm : NULL);
	cJSON *members = cJSON_AddArrayToObject(o, "members");
	struct sh_counts c = { 0 };
	if (g) {
		for (size_t i = 0; i < g->nm; i++) {
			cJSON *m = cJSON_CreateObject();
			cJSON_AddStringToObject(m, "batch_id", g->m[i].batch);
			cJSON_AddStringToObject(m, "symbol", g->m[i].symbol);
			cJSON_AddStringToObject(m, "state",
						shared_member_state(g, &g->m[i]));
			cJSON_AddItemToArray(members, m);
		}
		shared_group_counts(g, &c);
	}
	add_str(o, "detected_at", g ? fmt_time(g->detected_ms, t) : NULL);
	add_str(o, "status", g ? group_status_name(g->status) : NULL);
	/* resumed: members that started again after a resume; queued: paused
	 * members waiting to (0 while the group is open); the rest by how
	 * the members ended. */
	add_int(o, "resumed", (int64_t)c.resumed, g != NULL);
	add_int(o, "queued", (int64_t)(g && g->status != GROUP_OPEN ? c.paused : 0),
		g != NULL);
	add_int(o, "paused", (int64_t)c.paused, g != NULL);
	add_int(o, "succeeded", (int64_t)c.succeeded, g != NULL);
	add_int(o, "failed", (int64_t)c.failed, g != NULL);
	add_int(o, "cancelled", (int64_t)c.cancelled, g != NULL);
	if (g && g->status == GROUP_RESOLVED)
		add_str(o, "resolved_at", fmt_time(g->resolved_ms, t));
	else
		cJSON_AddNullToObject(o, "resolved_at");
	return o;
}

static cJSON *header_json(const struct batch *b, int64_t now,
			  struct shared *sh)
{
	const struct batch_conf *c = &b->c;
	cJSON *o = cJSON_CreateObject();
	struct meta_perf p;

	cJSON_AddNumberToObject(o, "schema_version", 1);
	add_str(o, "batch_id", c->id);
	add_str(o, "name", c->name);
	add_str(o, "origin", c->origin);
	add_str(o, "agent", c->agent);
	add_str(o, "source", c->source);
	add_str(o, "job_file", c->job_file);
	add_str(o, "job_sha256", c->sha256);
	json_add_time(o, "created_at", c->created_ms);
	json_add_time(o, "started_at", b->started_ms);
	json_add_time(o, "completed_at", b->final ? b->completed_ms : 0);
	add_str(o, "status", batch_status_name(batch_status(b)));
	cJSON_AddNumberToObject(o, "total_items", (double)b->nitems);
	cJSON_AddNumberToObject(o, "pending_items", (double)pending_count(b));
	cJSON_AddNumberToObject(o, "running_items",
				(double)b->count[ST_RUNNING]);
	cJSON_AddNumberToObject(o, "paused_items", (double)b->count[ST_PAUSED]);
	cJSON_AddNumberToObject(o, "succeeded_items",
				(double)b->count[ST_SUCCEEDED]);
	cJSON_AddNumberToObject(o, "failed_items", (double)b->count[ST_FAILED]);
	cJSON_AddNumberToObject(o, "cancelled_items",
				(double)b->count[ST_CANCELLED]);

	add_error_summary(o, b);

	cJSON *conf = cJSON_AddObjectToObject(o, "configuration");
	add_str(conf, "timeframe", c->timeframe);
	add_str(conf, "start", c->start);
	add_str(conf, "end", c->end);
	cJSON *params = cJSON_AddObjectToObject(conf, "params");
	for (uint32_t i = 0; i < c->nparams; i++)
		cJSON_AddStringToObject(params, c->params[i].key,
					c->params[i].value);
	cJSON_AddNumberToObject(conf, "priority", c->priority);
	add_int(conf, "concurrency", c->concurrency, c->concurrency > 0);
	if (c->timeout_ms > 0)
		cJSON_AddNumberToObject(conf, "timeout_s",
					(double)c->timeout_ms / 1000.0);
	else
		cJSON_AddNullToObject(conf, "timeout_s");
	cJSON_AddNumberToObject(conf, "max_attempts", c->max_attempts);
	cJSON *delays = cJSON_AddArrayToObject(conf, "retry_delays_s");
	for (uint32_t i = 0; i < c->ndelays; i++)
		cJSON_AddItemToArray(delays, cJSON_CreateNumber(
					     (double)c->delays_ms[i] / 1000.0));

	meta_perf(b, now, &p);
	add_perf(cJSON_AddObjectToObject(o, "performance"), b, &p);
	cJSON *groups = cJSON_AddArrayToObject(o, "failure_groups");
	const char *seen[64];
	size_t nseen = batch_groups(b, seen, 64);
	for (size_t k = 0; k < nseen; k++)
		cJSON_AddItemToArray(groups, meta_group_json(sh, seen[k]));
	return o;
}

static void flatten_into(cJSON *flat, const cJSON *o, const char *prefix)
{
	for (const cJSON *m = o ? o->child : NULL; m; m = m->next) {
		if (!m->string)
			continue;
		char *key = prefix ? xasprintf("%s.%s", prefix, m->string)
				   : xstrdup(m->string);
		if (cJSON_IsObject(m))
			flatten_into(flat, m, key);
		else if ((cJSON_IsNumber(m) && isfinite(m->valuedouble)) ||
			 cJSON_IsString(m) || cJSON_IsBool(m))
			cJSON_AddItemToObject(flat, key, cJSON_Duplicate(m, 0));
		free(key);
	}
}

cJSON *meta_metrics_flat(const char *result)
{
	cJSON *doc = result ? cJSON_Parse(result) : NULL;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "metrics");
	cJSON *flat = NULL;
	if (cJSON_IsObject(m)) {
		flat = cJSON_CreateObject();
		flatten_into(flat, m, NULL);
	}
	cJSON_Delete(doc);
	return flat;
}

const struct attempt *meta_last_result(const struct item *it)
{
	for (int i = it->nattempts; i > 0; i--)
		if (it->log[i - 1].result)
			return &it->log[i - 1];
	return NULL;
}

static cJSON *item_json(const struct batch *b, size_t idx)
{
	const struct item *it = &b->items[idx];
	const struct attempt *last = meta_last_done(it);
	/* A failed item's last attempt failed it (or was its last
	 * interruption: attempt.h). */
	bool failed_last = last && (last->outcome == OUT_FAILED ||
				    it->state == ST_FAILED);
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "item_id", (double)(idx + 1));
	cJSON_AddStringToObject(o, "symbol", it->symbol);
	cJSON_AddStringToObject(o, "state", state_name(it->state));
	cJSON_AddNumberToObject(o, "attempts", it->nattempts);
	json_add_time(o, "started_at", item_started(it));
	json_add_time(o, "completed_at", state_final(it->state) ? it->completed_ms
							   : 0);
	int64_t d = meta_attempt_duration(last);
	add_int(o, "duration_ms", d, d >= 0);
	add_int(o, "exit_code", last ? last->exit_code : 0,
		last && last->exit_code >= 0);
	add_signal(o, "signal", last ? last->signal : 0);
	add_str(o, "error_category",
		failed_last ? category_name(last->category) : NULL);
	add_str(o, "error_type", failed_last ? it->error_type : NULL);
	add_str(o, "error_message", failed_last ? last->error_message : NULL);
	add_str(o, "source", it->source ? it->source : b->c.source);
	add_int(o, "matches", it->matches, it->matches >= 0);
	/* the last result's metrics, nested ones with dotted names */
	const struct attempt *ra = meta_last_result(it);
	cJSON *flat = ra ? meta_metrics_flat(ra->result) : NULL;
	cJSON_AddItemToObject(o, "metrics", flat ? flat : cJSON_CreateNull());
	add_str(o, "failure_group", it->failure_group);
	json_add_time(o, "next_retry_at",
		 it->state == ST_RETRY_WAIT ? it->next_retry_at : 0);
	cJSON *log = cJSON_AddArrayToObject(o, "attempt_log");
	for (int i = 0; i < it->nattempts; i++) {
		const struct attempt *a = &it->log[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "attempt", i + 1);
		json_add_time(e, "started_at", a->started_ms);
		json_add_time(e, "completed_at", a->completed_ms);
		int64_t ad = meta_attempt_duration(a);
		add_int(e, "duration_ms", ad, ad >= 0);
		add_int(e, "exit_code", a->exit_code, a->exit_code >= 0);
		add_signal(e, "signal", a->signal);
		add_str(e, "outcome", a->completed_ms ? outcome_name(a->outcome)
						      : NULL);
		add_str(e, "error_category", category_name(a->category));
		add_str(e, "error_message", a->error_message);
		add_str(e, "warning", a->warning);
		bool ran = a->completed_ms && a->outcome != OUT_INTERRUPTED;
		add_int(e, "cpu_user_ms", a->cpu_user_ms, ran);
		add_int(e, "cpu_system_ms", a->cpu_system_ms, ran);
		add_int(e, "max_rss_kb", a->max_rss_kb, ran);
		bool sized = a->out_flags & OUTF_ENDED;
		add_int(e, "stdout_bytes", (int64_t)a->out_len, sized);
		add_int(e, "stderr_bytes", (int64_t)a->err_len, sized);
		if (a->result)	/* compact JSON, as the runner printed it */
			cJSON_AddItemToObject(e, "result",
					      cJSON_CreateRaw(a->result));
		else
			cJSON_AddNullToObject(e, "result");
		cJSON_AddItemToArray(log, e);
	}
	return o;
}

/* Print o into buf (growing it), without building a second string. */
static const char *print_into(cJSON *o, struct sb *buf)
{
	for (;;) {
		if (buf->cap < 4096)
			sb_grow(buf, 4096);
		if (cJSON_PrintPreallocated(o, buf->buf, (int)buf->cap, 0))
			return buf->buf;
		sb_grow(buf, buf->cap * 2);
	}
}

int meta_write_json(FILE *fp, const struct batch *b, int64_t now,
		    struct shared *sh)
{
	struct sb buf = SB_INIT;
	cJSON *h = header_json(b, now, sh);
	const char *s = print_into(h, &buf);
	size_t n = strlen(s);
	cJSON_Delete(h);
	/* The header object without its closing brace, then the items. */
	fwrite(s, 1, n - 1, fp);
	fputs(",\"items\":[\n", fp);
	for (size_t i = 0; i < b->nitems; i++) {
		cJSON *o = item_json(b, i);
		fputs(print_into(o, &buf), fp);
		cJSON_Delete(o);
		if (i + 1 < b->nitems)
			fputs(",\n", fp);
	}
	fputs("]}\n", fp);
	sb_release(&buf);
	return ferror(fp) ? -1 : 0;
}

/* Up to this many failed items are listed in summary.json, for `stats`. */
#define SUMMARY_FAILED_MAX 100

cJSON *meta_summary_doc(const struct batch *b, int64_t now)
{
	cJSON *o = cJSON_CreateObject();
	struct meta_perf p;
	add_str(o, "batch_id", b->c.id);
	add_str(o, "name", b->c.name);
	add_str(o, "origin", b->c.origin);
	add_str(o, "agent", b->c.agent);
	add_str(o, "source", b->c.source);
	add_str(o, "status", batch_status_name(batch_status(b)));
	cJSON_AddNumberToObject(o, "priority", b->c.priority);
	json_add_time(o, "created_at", b->c.created_ms);
	json_add_time(o, "started_at", b->started_ms);
	json_add_time(o, "completed_at", b->final ? b->completed_ms : 0);
	cJSON_AddNumberToObject(o, "total_items", (double)b->nitems);
	cJSON_AddNumberToObject(o, "succeeded_items",
				(double)b->count[ST_SUCCEEDED]);
	cJSON_AddNumberToObject(o, "failed_items", (double)b->count[ST_FAILED]);
	cJSON_AddNumberToObject(o, "cancelled_items",
				(double)b->count[ST_CANCELLED]);
	cJSON_AddNumberToObject(o, "pending_items", (double)pending_count(b));
	cJSON_AddNumberToObject(o, "running_items",
				(double)b->count[ST_RUNNING]);
	cJSON_AddNumberToObject(o, "paused_items", (double)b->count[ST_PAUSED]);
	cJSON_AddNumberToObject(o, "attempts", (double)b->attempts_total);

	add_error_summary(o, b);
	meta_perf(b, now, &p);
	add_perf(o, b, &p);
	cJSON *failed = cJSON_AddArrayToObject(o, "failed");
	size_t listed = 0;
	for (size_t i = 0; i < b->nitems && listed < SUMMARY_FAILED_MAX; i++) {
		const struct item *it = &b->items[i];
		const struct attempt *a;
		if (it->state != ST_FAILED || !(a = meta_last_done(it)))
			continue;
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "symbol", it->symbol);
		cJSON_AddStringToObject(f, "category",
					category_name(a->category));
		add_str(f, "error_message", a->error_message);
		json_add_time(f, "completed_at", a->completed_ms);
		cJSON_AddItemToArray(failed, f);
		listed++;
	}
	return o;
}

int meta_flush(int dirfd, const struct batch *b, int64_t now,
	       struct shared *sh)
{
	struct atomic_file af;
	if (atomic_begin(&af, dirfd, "batch.json") < 0)
		return -1;
	if (meta_write_json(af.fp, b, now, sh) < 0) {
		int saved = errno ? errno : EIO;
		atomic_abort(&af);
		errno = saved;
		return -1;
	}
	if (atomic_commit(&af) < 0)
		return -1;
	return meta_write_summary(dirfd, b, now);
}

int meta_write_summary(int dirfd, const struct batch *b, int64_t now)
{
	cJSON *s = meta_summary_doc(b, now);
	char *text = cJSON_PrintUnformatted(s);
	cJSON_Delete(s);
	if (!text)
		die(EX_INTERNAL, "out of memory");
	size_t n = strlen(text);
	text[n] = '\n';
	int rc = home_replace(dirfd, "summary.json", text, n + 1);
	cJSON_free(text);
	return rc;
}

void json_get_str(const cJSON *o, const char *k, char *dst, size_t n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	snprintf(dst, n, "%s",
		 cJSON_IsString(v) && v->valuestring ? v->valuestring : "");
}

long long json_get_count(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) && v->valuedouble >= 0 &&
			       v->valuedouble < 9e18
		       ? (long long)v->valuedouble
		       : 0;
}

int64_t json_get_time(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	int64_t ms;
	if (cJSON_IsString(v) && v->valuestring &&
	    parse_time_arg(v->valuestring, &ms, NULL) == 0)
		return ms;
	return 0;
}

cJSON *meta_read_summary_json(int dirfd)
{
	struct sb text = SB_INIT;
	int fd = openat(dirfd, "summary.json",
			O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	int rc = read_fd_bounded(fd, SUMMARY_MAX_BYTES, &text);
	close(fd);
	cJSON *o = NULL;
	if (rc == 0 && text.len) {
		sb_addc(&text, '\0');
		o = cJSON_Parse(text.buf);
	}
	sb_release(&text);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		errno = EINVAL;
		return NULL;
	}
	return o;
}

void meta_summary_from_json(const cJSON *o, struct summary *s)
{
	memset(s, 0, sizeof(*s));
	json_get_str(o, "batch_id", s->id, sizeof(s->id));
	json_get_str(o, "name", s->name, sizeof(s->name));
	json_get_str(o, "origin", s->origin, sizeof(s->origin));
	json_get_str(o, "agent", s->agent, sizeof(s->agent));
	char st[32];
	json_get_str(o, "status", st, sizeof(st));
	s->status = batch_status_parse(st);
	s->created_ms = json_get_time(o, "created_at");
	s->started_ms = json_get_time(o, "started_at");
	s->completed_ms = json_get_time(o, "completed_at");
	s->total = json_get_count(o, "total_items");
	s->succeeded = json_get_count(o, "succeeded_items");
	s->failed = json_get_count(o, "failed_items");
	s->cancelled = json_get_count(o, "cancelled_items");
	s->pending = json_get_count(o, "pending_items");
	s->running = json_get_count(o, "running_items");
	s->paused = json_get_count(o, "paused_items");
}

bool meta_summary_ok(const struct summary *s)
{
	return s->status >= 0 && valid_batch_id(s->id) &&
	       (!*s->agent || valid_agent_name(s->agent)) &&
	       !has_control(s->name, true) && !has_control(s->origin, true);
}

int meta_read_summary(int dirfd, struct summary *s)
{
	cJSON *o = meta_read_summary_json(dirfd);
	if (!o)
		return -1;
	meta_summary_from_json(o, s);
	cJSON_Delete(o);
	return meta_summary_ok(s) ? 0 : -1;
}

cJSON *meta_summary_json(const struct summary *s)
{
	cJSON *o = cJSON_CreateObject();
	add_str(o, "batch_id", s->id);
	add_str(o, "name", *s->name ? s->name : NULL);
	add_str(o, "origin", *s->origin ? s->origin : NULL);
	add_str(o, "agent", s->agent);
	add_str(o, "status", batch_status_name(s->status));
	json_add_time(o, "created_at", s->created_ms);
	json_add_time(o, "started_at", s->started_ms);
	json_add_time(o, "completed_at", s->completed_ms);
	cJSON_AddNumberToObject(o, "total_items", (double)s->total);
	cJSON_AddNumberToObject(o, "succeeded_items", (double)s->succeeded);
	cJSON_AddNumberToObject(o, "failed_items", (double)s->failed);
	cJSON_AddNumberToObject(o, "cancelled_items", (double)s->cancelled);
	cJSON_AddNumberToObject(o, "pending_items", (double)s->pending);
	cJSON_AddNumberToObject(o, "running_items", (double)s->running);
	cJSON_AddNumberToObject(o, "paused_items", (double)s->paused);
	return o;
}

static char *fmt_kb(uint64_t kb, char *buf, size_t n)
{
	if (kb >= 1024 * 1024)
		snprintf(buf, n, "%.1f GiB", (double)kb / (1024.0 * 1024.0));
	else if (kb >= 1024)
		snprintf(buf, n, "%.1f MiB", (double)kb / 1024.0);
	else
		snprintf(buf, n, "%llu KiB", (unsigned long long)kb);
	return buf;
}

struct slow {
	size_t idx;
	int64_t ms;
};

static int cmp_slow(const void *a, const void *b)
{
	const struct slow *x = a, *y = b;
	return x->ms > y->ms ? -1 : x->ms < y->ms;
}

static void print_item_line(FILE *fp, const struct batch *b, size_t i,
			    int symw)
{
	const struct item *it = &b->items[i];
	const struct attempt *a = meta_last_done(it);
	char dur[32] = "-", code[32] = "-";
	int64_t d = meta_attempt_duration(a);
	if (d >= 0)
		fmt_duration(d, dur, sizeof(dur));
	if (a && a->signal)
		exec_signame(a->signal, code, sizeof(code));
	else if (a && a->exit_code >= 0)
		snprintf(code, sizeof(code), "%d", a->exit_code);
	char cpu[32] = "-", rss[32] = "-";
	if (a && a->started_ms) {
		fmt_duration((int64_t)a->cpu_user_ms + a->cpu_system_ms, cpu,
			     sizeof(cpu));
		fmt_kb(a->max_rss_kb, rss, sizeof(rss));
	}
	fprintf(fp, "  %-*s %-10s %8d %10s %8s %8s %9s", symw, it->symbol,
		state_name(it->state), it->nattempts, dur, code, cpu, rss);
	if (a && (a->outcome == OUT_FAILED || it->state == ST_FAILED))
		fprintf(fp, "  %s: %s", category_name(a->category),
			a->error_message ? a->error_message : "");
	else if (it->state == ST_RETRY_WAIT)
		fprintf(fp, "  retry due");
	if (a && a->warning)
		fprintf(fp, "  warning: %s", a->warning);
	fputc('\n', fp);
}

/* The attempts that carry a warning: how many, and the first few. */
#define SHOW_WARNINGS 5
static void print_warnings(FILE *fp, const struct batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->nitems; i++)
		for (uint16_t k = 0; k < b->items[i].nattempts; k++)
			n += b->items[i].log[k].warning != NULL;
	if (!n)
		return;
	fprintf(fp, "  warnings    %zu attempt%s with a warning%s\n", n,
		n == 1 ? "" : "s", n > SHOW_WARNINGS ? ", the first:" : ":");
	size_t shown = 0;
	for (size_t i = 0; i < b->nitems && shown < SHOW_WARNINGS; i++) {
		const struct item *it = &b->items[i];
		for (uint16_t k = 0; k < it->nattempts && shown < SHOW_WARNINGS;
		     k++)
			if (it->log[k].warning) {
				fprintf(fp, "              %s attempt %d: %s\n",
					it->symbol, k + 1, it->log[k].warning);
				shown++;
			}
	}
}

void meta_print_summary(FILE *fp, const struct batch *b, int64_t now,
			int flags, const char *home_path, struct shared *sh)
{
	const struct batch_conf *c = &b->c;
	char t1[TIME_BUF], dur[32];
	struct meta_perf p;
	meta_perf(b, now, &p);

	fprintf(fp, "batch %s%s%s%s\n", c->id, c->name ? " (" : "",
		c->name ? c->name : "", c->name ? ")" : "");
	fprintf(fp, "  status      %s\n", batch_status_name(batch_status(b)));
	fprintf(fp, "  agent       %s%s%s\n", c->agent,
		c->source ? ", source " : "", c->source ? c->source : "");
	fprintf(fp, "  job         %s (sha256 %.12s)\n",
		c->job_file ? c->job_file : "-", c->sha256 ? c->sha256 : "-");
	fprintf(fp, "  created     %s\n", fmt_time(c->created_ms, t1));
	if (p.has_duration) {
		char busy[32];
		fmt_duration(llround(p.duration_s * 1000), dur, sizeof(dur));
		fmt_duration(llround(p.busy_s * 1000), busy, sizeof(busy));
		fprintf(fp, "  duration    %s%s", dur, b->final ? "" : " so far");
		if (strcmp(dur, busy))
			fprintf(fp, " (busy %s)", busy);
		fputc('\n', fp);
	}
	fprintf(fp,
		"  items       %zu total: %zu succeeded, %zu failed, %zu "
		"cancelled, %zu pending, %zu running, %zu paused\n",
		b->nitems, b->count[ST_SUCCEEDED], b->count[ST_FAILED],
		b->count[ST_CANCELLED], pending_count(b), b->count[ST_RUNNING],
		b->count[ST_PAUSED]);

	size_t by_cat[CAT_COUNT] = { 0 };
	for (size_t i = 0; i < b->nitems; i++) {
		const struct attempt *a;
		if (b->items[i].state == ST_FAILED &&
		    (a = meta_last_done(&b->items[i])))
			by_cat[a->category]++;
	}
	bool any = false;
	for (int k = 1; k < CAT_COUNT; k++) {
		if (!by_cat[k])
			continue;
		fprintf(fp, "%s%s %zu", any ? ", " : "  errors      ",
			category_name(k), by_cat[k]);
		any = true;
	}
	if (any)
		fputc('\n', fp);
	print_warnings(fp, b);
	if (p.has_rate) {
		char rate[32];
		fprintf(fp, "  throughput  %s items/s\n",
			fmt_rate(p.items_per_s, rate, sizeof(rate)));
	}
	if (b->attempts_total) {
		char u[32], sy[32], r[32];
		fprintf(fp, "  resources   cpu %s user, %s system; max rss %s\n",
			fmt_duration((int64_t)b->cpu_user_ms, u, sizeof(u)),
			fmt_duration((int64_t)b->cpu_system_ms, sy, sizeof(sy)),
			fmt_kb(b->max_rss_kb, r, sizeof(r)));
	}
	if (p.nlat) {
		char a1[32], a2[32], a3[32];
		fprintf(fp, "  latency     p50 %s, p95 %s, max %s\n",
			fmt_duration(p.lat_p50, a1, sizeof(a1)),
			fmt_duration(p.lat_p95, a2, sizeof(a2)),
			fmt_duration(p.lat_max, a3, sizeof(a3)));
		struct slow *sl = xmalloc(b->nitems * sizeof(*sl));
		size_t n = 0;
		for (size_t i = 0; i < b->nitems; i++) {
			int64_t d = meta_attempt_duration(meta_last_done(&b->items[i]));
			if (d >= 0)
				sl[n++] = (struct slow){ i, d };
		}
		qsort(sl, n, sizeof(*sl), cmp_slow);
		fprintf(fp, "  slowest    ");
		for (size_t i = 0; i < n && i < 5; i++)
			fprintf(fp, "%s %s %s", i ? "," : "",
				b->items[sl[i].idx].symbol,
				fmt_duration(sl[i].ms, a1, sizeof(a1)));
		fputc('\n', fp);
		free(sl);
	}
	if (flags & (SHOW_ITEMS | SHOW_FAILED)) {
		/* The symbol column as wide as the longest (up to 32). */
		int symw = 12;
		for (size_t i = 0; i < b->nitems; i++)
			if ((int)strlen(b->items[i].symbol) > symw)
				symw = (int)strlen(b->items[i].symbol);
		fprintf(fp, "  %-*s %-10s %8s %10s %8s %8s %9s  %s\n",
			symw, "SYMBOL", "STATE", "ATTEMPTS", "DURATION", "EXIT",
			"CPU", "MAX RSS", "ERROR");
		for (size_t i = 0; i < b->nitems; i++)
			if (!(flags & SHOW_FAILED) ||
			    b->items[i].state == ST_FAILED)
				print_item_line(fp, b, i, symw);
		fprintf(fp, "  output      runner output %s SYMBOL [--stderr] "
			    "[--attempt N]", c->id);
		if (b->count[ST_FAILED])
			fprintf(fp, "; runner output %s --failed", c->id);
		fputc('\n', fp);
	} else if (b->count[ST_FAILED]) {
		size_t shown = 0;
		fprintf(fp, "  failed     ");
		for (size_t i = 0; i < b->nitems && shown < 10; i++)
			if (b->items[i].state == ST_FAILED)
				fprintf(fp, "%s %s", shown++ ? "," : "",
					b->items[i].symbol);
		if (b->count[ST_FAILED] > shown)
			fprintf(fp, ", ... (%zu more)",
				b->count[ST_FAILED] - shown);
		fprintf(fp, "\n");
	}
	const char *seen[16];
	size_t nseen = batch_groups(b, seen, 16);
	for (size_t k = 0; k < nseen; k++) {
		const char *gid = seen[k];
		struct sh_group *g = sh ? shared_group(sh, gid) : NULL;
		fprintf(fp, "  group       %s: %s, %s", gid,
			g && g->root_cause ? g->root_cause : "?",
			g ? group_status_name(g->status) : "?");
		if (g) {
			struct sb prog = SB_INIT;
			shared_group_progress_text(g, &prog);
			fprintf(fp, " (%zu member%s: %s", g->nm,
				g->nm == 1 ? "" : "s", prog.buf);
			if (g->status != GROUP_RESOLVED)
				fprintf(fp, "; runner resume %s, or runner "
					    "cancel %s", gid, gid);
			fputc(')', fp);
			sb_release(&prog);
		}
		fputc('\n', fp);
	}
	if (flags & SHOW_PATHS) {
		fprintf(fp, "  metadata    %s/batches/%s/batch.json\n", home_path,
			c->id);
		fprintf(fp, "  log         %s/logs/%s.log\n", home_path, c->id);
	}
}

double meta_round(double v, int decimals)
{
	if (!isfinite(v))
		return v;
	double f = pow(10, decimals);
	return round(v * f) / f;
}

double meta_round_sig(double v, int digits)
{
	if (!isfinite(v) || v == 0)
		return v;
	int mag = (int)floor(log10(fabs(v))) + 1;
	return meta_round(v, digits - mag);
}

void meta_print_line(cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);
	if (text)
		puts(text);
	cJSON_free(text);
	cJSON_Delete(o);
}
