#include "batch.h"
#include "conf.h"
#include "job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[ST_COUNT] = {
	"pending", "pending", "running", "retry_wait",
	"paused",  "succeeded", "failed", "cancelled",
};

const char *state_name(int s)
{
	return s >= 0 && s < ST_COUNT ? state_names[s] : "?";
}

const char *outcome_name(int o)
{
	static const char *const names[] = { NULL, "succeeded", "failed",
					     "cancelled", "interrupted" };
	return o > 0 && o <= OUT_INTERRUPTED ? names[o] : NULL;
}

static const char *const status_names[] = {
	"pending", "running", "paused", "completed",
	"partial", "failed",  "cancelled",
};

const char *batch_status_name(int s)
{
	return s >= 0 && s <= BS_CANCELLED ? status_names[s] : "?";
}

int batch_status_parse(const char *s)
{
	for (int i = 0; i <= BS_CANCELLED; i++)
		if (!strcmp(s, status_names[i]))
			return i;
	return -1;
}

/* ---- arena: strings that live as long as the batch ---- */

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	char data[];
};

static void *arena_alloc(struct batch *b, size_t n)
{
	struct arena_block *a = b->arena;
	n = (n + 7) & ~(size_t)7;
	if (!a || a->size - a->used < n) {
		size_t size = n > 65536 ? n : 65536;
		a = xmalloc(sizeof(*a) + size);
		a->used = 0;
		a->size = size;
		a->next = b->arena;
		b->arena = a;
	}
	void *p = a->data + a->used;
	a->used += n;
	return p;
}

char *batch_strdup(struct batch *b, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(b, n);
	memcpy(p, s, n);
	return p;
}

static const char *intern(struct batch *b, const char *s)
{
	if (!s || !*s)
		return NULL;
	struct strmap_entry *e = strmap_get(&b->interned, s);
	if (e)
		return e->key;
	char *p = batch_strdup(b, s);
	strmap_put(&b->interned, p, 0);
	return p;
}

void batch_init(struct batch *b)
{
	memset(b, 0, sizeof(*b));
}

void batch_release(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nitems; i++)
		free(b->items[i].log);
	free(b->items);
	strmap_release(&b->symbols);
	strmap_release(&b->interned);
	while (b->arena) {
		struct arena_block *next = b->arena->next;
		free(b->arena);
		b->arena = next;
	}
	memset(b, 0, sizeof(*b));
}

struct item *batch_item(struct batch *b, const char *symbol)
{
	struct strmap_entry *e = strmap_get(&b->symbols, symbol);
	return e ? &b->items[e->value] : NULL;
}

size_t batch_open_items(const struct batch *b)
{
	return b->nitems - b->count[ST_SUCCEEDED] - b->count[ST_FAILED] -
	       b->count[ST_CANCELLED];
}

int batch_final_status(const struct batch *b)
{
	if (b->user_cancelled)
		return BS_CANCELLED;
	/* Every item cancelled (symbol by symbol, or a group's members):
	 * nothing failed, so the batch did not fail either. */
	if (b->nitems && b->count[ST_CANCELLED] == b->nitems)
		return BS_CANCELLED;
	if (b->count[ST_SUCCEEDED] == b->nitems)
		return BS_COMPLETED;
	if (b->count[ST_SUCCEEDED] == 0)
		return BS_FAILED;
	return BS_PARTIAL;
}

int batch_status(const struct batch *b)
{
	if (b->final)
		return b->final_status;
	if (b->count[ST_RUNNING])
		return BS_RUNNING;
	if (b->count[ST_PAUSED] && !b->count[ST_PENDING] &&
	    !b->count[ST_RETRY_WAIT])
		return BS_PAUSED;
	return b->started_ms ? BS_RUNNING : BS_PENDING;
}

/* ---- encoding: varints, zigzag, NUL-terminated strings ---- */

/*
 * A FINISHED record with a warning has this bit set in its outcome and the
 * warning after its last field.  Journals written before warnings existed
 * have neither and replay as they did; a flag rather than "whatever
 * follows" keeps every cut record undecodable (a record cut just before
 * its warning would otherwise decode as one without).
 */
#define FIN_WARNING 0x40u
#define FIN_OUTPUT 0x80u	/* out_flags and the lengths follow */
#define FIN_RESULT 0x20u	/* the result JSON follows */
#define FIN_FLAGS (FIN_WARNING | FIN_OUTPUT | FIN_RESULT)

static void put_u(struct sb *sb, uint64_t v)
{
	unsigned char buf[10];
	int n = 0;
	do {
		buf[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			buf[n] |= 0x80;
		n++;
	} while (v);
	sb_add(sb, buf, (size_t)n);
}

static void put_i(struct sb *sb, int64_t v)
{
	put_u(sb, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_s(struct sb *sb, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	put_u(sb, s ? n + 1 : 0); /* 0 = NULL, else length + 1 */
	if (s)
		sb_add(sb, s, n + 1);
}

struct dec {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t get_u(struct dec *d)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (d->p >= d->end) {
			d->bad = true;
			return 0;
		}
		unsigned char c = *d->p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	d->bad = true;
	return 0;
}

static uint32_t get_u32(struct dec *d)
{
	uint64_t v = get_u(d);
	if (v > UINT32_MAX)
		d->bad = true;
	return (uint32_t)v;
}

static int64_t get_i(struct dec *d)
{
	uint64_t v = get_u(d);
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int32_t get_i32(struct dec *d)
{
	int64_t v = get_i(d);
	if (v < INT32_MIN || v > INT32_MAX)
		d->bad = true;
	return (int32_t)v;
}

static const char *get_s(struct dec *d)
{
	uint64_t n = get_u(d);
	if (d->bad || n == 0)
		return NULL;
	if (n > (uint64_t)(d->end - d->p)) {
		d->bad = true;
		return NULL;
	}
	const char *s = (const char *)d->p;
	/* Exactly n-1 bytes, then the NUL: no embedded NUL, no overrun. */
	if (s[n - 1] != '\0' || strlen(s) != n - 1) {
		d->bad = true;
		return NULL;
	}
	d->p += n;
	return s;
}

/* A list: count, byte length, then the elements. */
static struct rec_list get_list(struct dec *d)
{
	struct rec_list l = { NULL, 0, 0 };
	l.n = get_u32(d);
	uint64_t len = get_u(d);
	if (d->bad || len > (uint64_t)(d->end - d->p)) {
		d->bad = true;
		return l;
	}
	l.p = d->p;
	l.len = (size_t)len;
	d->p += len;
	return l;
}

static void put_list_begin(struct sb *sb, struct sb *body)
{
	(void)sb;
	sb_reset(body);
}

static void put_list_end(struct sb *sb, struct sb *body, uint32_t n)
{
	put_u(sb, n);
	put_u(sb, body->len);
	if (body->len)
		sb_add(sb, body->buf, body->len);
	sb_release(body);
}

void rec_encode(const struct rec *r, struct sb *out)
{
	struct sb body = SB_INIT;
	sb_reset(out);
	put_u(out, r->type);
	switch (r->type) {
	case R_CLAIMED: {
		const struct batch_conf *c = r->conf;
		put_s(out, c->id);
		put_s(out, c->name);
		put_s(out, c->origin);
		put_s(out, c->agent);
		put_s(out, c->source);
		put_s(out, c->job_file);
		put_s(out, c->sha256);
		put_s(out, c->timeframe);
		put_s(out, c->start);
		put_s(out, c->end);
		put_i(out, c->created_ms);
		put_i(out, c->priority);
		put_i(out, c->concurrency);
		put_i(out, c->max_attempts);
		put_i(out, c->timeout_ms);
		put_i(out, c->batch_timeout_ms);
		put_u(out, c->jitter_permille);
		put_u(out, c->retry_on);
		put_u(out, c->total_items);
		put_i(out, r->pid);
		put_list_begin(out, &body);
		for (uint32_t i = 0; i < c->ndelays; i++)
			put_i(&body, c->delays_ms[i]);
		put_list_end(out, &body, c->ndelays);
		put_list_begin(out, &body);
		for (uint32_t i = 0; i < c->nparams; i++) {
			put_s(&body, c->params[i].key);
			put_s(&body, c->params[i].value);
		}
		put_list_end(out, &body, c->nparams);
		if (c->primary_metric) /* written since the field exists */
			put_s(out, c->primary_metric);
		break;
	}
	case R_ITEMS:
		put_u(out, r->first);
		put_list_begin(out, &body);
		for (uint32_t i = 0; i < r->n; i++)
			put_s(&body, r->symbols[i]);
		put_list_end(out, &body, r->n);
		break;
	case R_RESERVE:
	case R_RELEASE:
		put_u(out, r->item);
		put_u(out, r->attempt);
		break;
	case R_SPAWNED:
		put_u(out, r->item);
		put_u(out, r->attempt);
		put_i(out, r->time);
		put_i(out, r->pid);
		if (r->session) { /* written since output lanes exist */
			put_u(out, r->session);
			put_u(out, r->lane);
			put_u(out, r->out_off);
			put_u(out, r->err_off);
		}
		break;
	case R_FINISHED:
		put_u(out, r->item);
		put_u(out, r->attempt);
		put_i(out, r->time);
		put_u(out, r->outcome | (r->warning ? FIN_WARNING : 0) |
				   (r->out_flags ? FIN_OUTPUT : 0) |
				   (r->result ? FIN_RESULT : 0));
		put_i(out, r->exit_code);
		put_i(out, r->signal);
		put_u(out, r->category);
		put_s(out, r->error_type);
		put_s(out, r->error_message);
		put_s(out, r->source);
		put_i(out, r->matches);
		put_i(out, r->progress);
		put_u(out, r->cpu_user_ms);
		put_u(out, r->cpu_system_ms);
		put_u(out, r->max_rss_kb);
		put_u(out, r->next_state);
		put_i(out, r->next_retry_at);
		put_u(out, r->counts_failure);
		put_s(out, r->group);
		if (r->warning)
			put_s(out, r->warning);
		if (r->out_flags) {
			put_u(out, r->out_flags);
			put_u(out, r->out_len);
			put_u(out, r->err_len);
		}
		if (r->result)
			put_s(out, r->result);
		break;
	case R_PAUSE:
	case R_RESUME:
		put_i(out, r->time);
		put_u(out, r->whole);
		put_s(out, r->group);
		put_s(out, r->text);
		put_list_begin(out, &body);
		for (uint32_t i = 0; i < r->n; i++)
			put_u(&body, r->indexes[i]);
		put_list_end(out, &body, r->n);
		break;
	case R_CANCEL:
	case R_REQUEUE:
		put_i(out, r->time);
		put_u(out, r->whole);
		put_u(out, r->reason);
		put_list_begin(out, &body);
		for (uint32_t i = 0; i < r->n; i++)
			put_u(&body, r->indexes[i]);
		put_list_end(out, &body, r->n);
		break;
	case R_FINAL:
		put_i(out, r->time);
		put_u(out, r->status);
		break;
	case R_ADOPTED:
		put_i(out, r->time);
		put_i(out, r->pid);
		if (r->reason)
			put_u(out, r->reason);
		break;
	default:
		BUG("encoding record type %d", r->type);
	}
}

int rec_decode(const void *payload, size_t len, struct rec *r)
{
	struct dec d = { payload, (const unsigned char *)payload + len, false };
	memset(r, 0, sizeof(*r));
	uint64_t type = get_u(&d);
	if (d.bad || type == 0 || type >= R_TYPE_MAX)
		return -1;
	r->type = (uint8_t)type;
	switch (r->type) {
	case R_CLAIMED: {
		struct batch_conf *c = &r->decoded;
		c->id = get_s(&d);
		c->name = get_s(&d);
		c->origin = get_s(&d);
		c->agent = get_s(&d);
		c->source = get_s(&d);
		c->job_file = get_s(&d);
		c->sha256 = get_s(&d);
		c->timeframe = get_s(&d);
		c->start = get_s(&d);
		c->end = get_s(&d);
		c->created_ms = get_i(&d);
		c->priority = get_i32(&d);
		c->concurrency = get_i32(&d);
		c->max_attempts = get_i32(&d);
		c->timeout_ms = get_i(&d);
		c->batch_timeout_ms = get_i(&d);
		c->jitter_permille = get_u32(&d);
		c->retry_on = get_u32(&d);
		c->total_items = get_u32(&d);
		r->pid = get_i32(&d);
		r->delays = get_list(&d);
		r->params = get_list(&d);
		if (d.p < d.end && !(c->primary_metric = get_s(&d)))
			d.bad = true;
		r->conf = c;
		if (!c->id || !c->agent)
			return -1;
		break;
	}
	case R_ITEMS:
		r->first = get_u32(&d);
		r->list = get_list(&d);
		r->n = r->list.n;
		break;
	case R_RESERVE:
	case R_RELEASE:
		r->item = get_u32(&d);
		r->attempt = get_u32(&d);
		break;
	case R_SPAWNED:
		r->item = get_u32(&d);
		r->attempt = get_u32(&d);
		r->time = get_i(&d);
		r->pid = get_i32(&d);
		if (d.p < d.end) { /* written since output lanes exist */
			uint32_t session = get_u32(&d), lane = get_u32(&d);
			r->out_off = get_u(&d);
			r->err_off = get_u(&d);
			if (!session || session > UINT16_MAX ||
			    lane > UINT16_MAX)
				d.bad = true;
			r->session = (uint16_t)session;
			r->lane = (uint16_t)lane;
		}
		break;
	case R_FINISHED: {
		r->item = get_u32(&d);
		r->attempt = get_u32(&d);
		r->time = get_i(&d);
		uint32_t outcome = get_u32(&d);
		r->outcome = (uint8_t)(outcome & ~FIN_FLAGS);
		if (outcome > UINT8_MAX)
			d.bad = true;
		r->exit_code = get_i32(&d);
		r->signal = get_i32(&d);
		r->category = (uint8_t)get_u32(&d);
		r->error_type = get_s(&d);
		r->error_message = get_s(&d);
		r->source = get_s(&d);
		r->matches = get_i(&d);
		r->progress = get_i32(&d);
		r->cpu_user_ms = get_u32(&d);
		r->cpu_system_ms = get_u32(&d);
		r->max_rss_kb = get_u32(&d);
		r->next_state = (uint8_t)get_u32(&d);
		r->next_retry_at = get_i(&d);
		r->counts_failure = (uint8_t)get_u32(&d);
		r->group = get_s(&d);
		if ((outcome & FIN_WARNING) && !(r->warning = get_s(&d)))
			d.bad = true;
		if (outcome & FIN_OUTPUT) {
			uint32_t fl = get_u32(&d);
			r->out_len = get_u(&d);
			r->err_len = get_u(&d);
			if (!fl || fl > UINT8_MAX)
				d.bad = true;
			r->out_flags = (uint8_t)fl;
		}
		if ((outcome & FIN_RESULT) && !(r->result = get_s(&d)))
			d.bad = true;
		break;
	}
	case R_PAUSE:
	case R_RESUME:
		r->time = get_i(&d);
		r->whole = (uint8_t)get_u32(&d);
		r->group = get_s(&d);
		r->text = get_s(&d);
		r->list = get_list(&d);
		r->n = r->list.n;
		break;
	case R_CANCEL:
	case R_REQUEUE:
		r->time = get_i(&d);
		r->whole = (uint8_t)get_u32(&d);
		r->reason = (uint8_t)get_u32(&d);
		r->list = get_list(&d);
		r->n = r->list.n;
		break;
	case R_FINAL:
		r->time = get_i(&d);
		r->status = (uint8_t)get_u32(&d);
		break;
	case R_ADOPTED:
		r->time = get_i(&d);
		r->pid = get_i32(&d);
		if (d.p < d.end) { /* written since the field exists */
			r->reason = (uint8_t)get_u32(&d);
			if (!r->reason) /* never written as 0: one encoding */
				d.bad = true;
		}
		break;
	}
	if (d.bad || d.p != d.end)
		return -1;
	return 0;
}

/* ---- names read back: as strict as where a job file gave them ---- */

/* Say in b->forged which name of a record no job could give: the record
 * is refused, as a damaged one is. */
static int forged(struct batch *b, const char *what, const char *name)
{
	struct sb sb = SB_INIT;
	sb_add_escaped(&sb, name, 60);
	snprintf(b->forged, sizeof(b->forged), "%s '%s' is not valid", what,
		 sb.buf ? sb.buf : "");
	sb_release(&sb);
	return -1;
}

/* A failure group's id (grp-YYYYMMDD-HHMMSS-N), NULL allowed. */
static bool group_ok(const char *g)
{
	return !g || (strlen(g) < 40 && valid_source_name(g));
}

/* What a CLAIMED record took from the job file and the configuration. */
static int claim_forged(struct batch *b, const struct rec *r)
{
	const struct batch_conf *c = r->conf;
	const char *text[] = { c->name, c->origin, c->start, c->end };
	struct dec d = { r->params.p, r->params.p + r->params.len, false };
	if (!valid_batch_id(c->id))
		return forged(b, "batch id", c->id);
	if (!valid_agent_name(c->agent))
		return forged(b, "agent", c->agent);
	if (c->source && !valid_source_name(c->source))
		return forged(b, "source", c->source);
	if (c->primary_metric && !valid_source_name(c->primary_metric))
		return forged(b, "primary_metric", c->primary_metric);
	if (c->timeframe &&
	    (strlen(c->timeframe) > 32 || !valid_source_name(c->timeframe)))
		return forged(b, "timeframe", c->timeframe);
	for (size_t i = 0; i < sizeof(text) / sizeof(*text); i++)
		if (text[i] && (strlen(text[i]) > 4096 ||
				has_control(text[i], true)))
			return forged(b, "text", text[i]);
	/* The job file's own name, as the user gave it: printed escaped. */
	if (c->job_file && (strlen(c->job_file) > 255 ||
			    strchr(c->job_file, '/')))
		return forged(b, "job file name", c->job_file);
	if (c->sha256 && (strlen(c->sha256) != 64 ||
			  strspn(c->sha256, "0123456789abcdef") != 64))
		return forged(b, "sha256", c->sha256);
	for (uint32_t i = 0; i < r->params.n; i++) {
		const char *k = get_s(&d), *v = get_s(&d);
		if (!k || !v || !*k || strlen(k) > 64 ||
		    strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			      "0123456789_") != strlen(k))
			return forged(b, "parameter name", k ? k : "");
		if (strlen(v) > 4096 || has_control(v, false))
			return forged(b, "parameter value", v);
	}
	if (c->priority < -100 || c->priority > 100 || c->concurrency < 0 ||
	    c->concurrency > 65535 || c->max_attempts < 0 ||
	    c->max_attempts > 1000 || c->timeout_ms < 0 ||
	    c->batch_timeout_ms < 0 || c->jitter_permille > 1000) {
		char n[96];
		snprintf(n, sizeof(n), "%d %d %d %lld %lld %u", c->priority,
			 c->concurrency, c->max_attempts,
			 (long long)c->timeout_ms,
			 (long long)c->batch_timeout_ms, c->jitter_permille);
		return forged(b, "number (priority, concurrency, max_attempts, "
				 "timeouts, jitter)", n);
	}
	return 0;
}

/* ---- apply: the one place a batch changes ---- */

static void set_state(struct batch *b, struct item *it, int s)
{
	b->count[it->state]--;
	it->state = (uint8_t)s;
	b->count[s]++;
}

static int apply_claimed(struct batch *b, const struct rec *r)
{
	const struct batch_conf *src = r->conf;
	struct batch_conf *c = &b->c;
	struct dec d;
	if (b->claimed || src->total_items > 10000000 || r->delays.n > 1000 ||
	    r->params.n > 1000000)
		return -1;
	/* Check the lists whole before anything is taken from them. */
	d = (struct dec){ r->delays.p, r->delays.p + r->delays.len, false };
	for (uint32_t i = 0; i < r->delays.n; i++)
		get_i(&d);
	if (d.bad || d.p != d.end)
		return -1;
	d = (struct dec){ r->params.p, r->params.p + r->params.len, false };
	for (uint32_t i = 0; i < r->params.n; i++)
		if (!get_s(&d) || !get_s(&d))
			return -1;
	if (d.bad || d.p != d.end || claim_forged(b, r) < 0)
		return -1;
	*c = *src;
	c->id = batch_strdup(b, src->id);
	c->name = batch_strdup(b, src->name);
	c->origin = batch_strdup(b, src->origin);
	c->agent = batch_strdup(b, src->agent);
	c->source = batch_strdup(b, src->source);
	c->job_file = batch_strdup(b, src->job_file);
	c->sha256 = batch_strdup(b, src->sha256);
	c->timeframe = batch_strdup(b, src->timeframe);
	c->start = batch_strdup(b, src->start);
	c->end = batch_strdup(b, src->end);
	c->primary_metric = batch_strdup(b, src->primary_metric);
	c->ndelays = r->delays.n;
	c->delays_ms = arena_alloc(b, (c->ndelays + 1) * sizeof(int64_t));
	d = (struct dec){ r->delays.p, r->delays.p + r->delays.len, false };
	for (uint32_t i = 0; i < c->ndelays; i++)
		c->delays_ms[i] = get_i(&d);
	c->nparams = r->params.n;
	c->params = arena_alloc(b, (c->nparams + 1) * sizeof(*c->params));
	d = (struct dec){ r->params.p, r->params.p + r->params.len, false };
	for (uint32_t i = 0; i < c->nparams; i++) {
		const char *k = get_s(&d), *v = get_s(&d);
		c->params[i].key = batch_strdup(b, k);
		c->params[i].value = batch_strdup(b, v);
	}
	b->items = xcalloc(c->total_items ? c->total_items : 1,
			   sizeof(*b->items));
	b->owner_pid = r->pid;
	b->claimed = true;
	return 0;
}

static int apply_items(struct batch *b, const struct rec *r)
{
	struct dec d = { r->list.p, r->list.p + r->list.len, false };
	struct strmap seen = STRMAP_INIT;
	int rc = 0;
	if (!b->claimed || r->first != b->nitems ||
	    (uint64_t)r->first + r->list.n > b->c.total_items)
		return -1;
	/* Validate the whole record before the batch takes any of it. */
	for (uint32_t i = 0; i < r->list.n && !rc; i++) {
		const char *s = get_s(&d);
		if (!s || strmap_get(&b->symbols, s) || strmap_put(&seen, s, i))
			rc = -1;
		else if (!valid_symbol(s))
			rc = forged(b, "symbol", s);
	}
	strmap_release(&seen);
	if (rc || d.bad || d.p != d.end)
		return -1;
	d = (struct dec){ r->list.p, r->list.p + r->list.len, false };
	for (uint32_t i = 0; i < r->list.n; i++) {
		const char *s = get_s(&d);
		struct item *it = &b->items[b->nitems];
		memset(it, 0, sizeof(*it));
		it->symbol = batch_strdup(b, s);
		it->state = ST_PENDING;
		it->matches = -1;
		it->progress = -1;
		strmap_put(&b->symbols, it->symbol, b->nitems);
		b->count[ST_PENDING]++;
		b->nitems++;
	}
	return 0;
}

/* Every index of a list, checked before anything is applied. */
static int check_indexes(const struct batch *b, const struct rec_list *l,
			 int want_state)
{
	struct dec d = { l->p, l->p + l->len, false };
	for (uint32_t i = 0; i < l->n; i++) {
		uint32_t idx = get_u32(&d);
		if (d.bad || idx >= b->nitems)
			return -1;
		if (want_state >= 0 && b->items[idx].state != want_state)
			return -1;
	}
	return d.bad || d.p != d.end ? -1 : 0;
}

static struct item *rec_item(struct batch *b, const struct rec *r)
{
	return r->item < b->nitems ? &b->items[r->item] : NULL;
}

static int apply_reserve(struct batch *b, const struct rec *r)
{
	struct item *it = rec_item(b, r);
	if (!it || (it->state != ST_PENDING && it->state != ST_RETRY_WAIT) ||
	    r->attempt != (uint32_t)it->nattempts + 1 || it->nattempts == 65535)
		return -1;
	if (it->nattempts == it->logcap) {
		it->logcap = it->logcap ? (uint16_t)(it->logcap * 2) : 1;
		if (it->logcap < it->nattempts + 1)
			it->logcap = 65535;
		it->log = xrealloc(it->log, it->logcap * sizeof(*it->log));
	}
	struct attempt *a = &it->log[it->nattempts++];
	memset(a, 0, sizeof(*a));
	a->exit_code = -1;
	it->next_retry_at = 0;
	set_state(b, it, ST_STARTING);
	return 0;
}

static int apply_spawned(struct batch *b, const struct rec *r)
{
	struct item *it = rec_item(b, r);
	if (!it || it->state != ST_STARTING || r->attempt != it->nattempts)
		return -1;
	struct attempt *a = &it->log[it->nattempts - 1];
	a->started_ms = r->time;
	a->pid = r->pid;
	a->session = r->session;
	a->lane = r->lane;
	a->out_off = r->out_off;
	a->err_off = r->err_off;
	if (!b->started_ms)
		b->started_ms = r->time;
	b->attempts_total++;
	set_state(b, it, ST_RUNNING);
	return 0;
}

static int apply_finished(struct batch *b, const struct rec *r)
{
	struct item *it = rec_item(b, r);
	if (!it || r->attempt != it->nattempts || !it->nattempts)
		return -1;
	/* An attempt that never got a SPAWNED record can only be interrupted. */
	if (it->state != ST_RUNNING &&
	    !(it->state == ST_STARTING && r->outcome == OUT_INTERRUPTED))
		return -1;
	if (r->outcome < OUT_SUCCEEDED || r->outcome > OUT_INTERRUPTED ||
	    r->category >= CAT_COUNT)
		return -1;
	if (!group_ok(r->group))
		return forged(b, "failure group", r->group);
	switch (r->next_state) {
	case ST_SUCCEEDED: case ST_FAILED: case ST_CANCELLED:
	case ST_RETRY_WAIT: case ST_PENDING: case ST_PAUSED:
		break;
	default:
		return -1;
	}
	struct attempt *a = &it->log[it->nattempts - 1];
	a->completed_ms = r->time;
	a->outcome = r->outcome;
	a->category = r->category;
	a->exit_code = r->exit_code;
	a->signal = (int16_t)r->signal;
	a->cpu_user_ms = r->cpu_user_ms;
	a->cpu_system_ms = r->cpu_system_ms;
	a->max_rss_kb = r->max_rss_kb;
	a->error_message = batch_strdup(b, r->error_message);
	a->warning = batch_strdup(b, r->warning);
	a->result = batch_strdup(b, r->result);
	if (r->out_flags) {
		a->out_flags = r->out_flags;
		a->out_len = r->out_len;
		a->err_len = r->err_len;
	}
	b->cpu_user_ms += r->cpu_user_ms;
	b->cpu_system_ms += r->cpu_system_ms;
	if (r->max_rss_kb > b->max_rss_kb)
		b->max_rss_kb = r->max_rss_kb;
	if (r->outcome != OUT_INTERRUPTED) {
		it->error_type = intern(b, r->error_type);
		if (r->source)
			it->source = intern(b, r->source);
		if (r->matches >= 0)
			it->matches = r->matches;
		if (r->progress >= 0)
			it->progress = r->progress;
	}
	if (r->counts_failure)
		it->failures++;
	/* In a row: an attempt that ended on its own clears the count. */
	if (r->outcome == OUT_INTERRUPTED && r->category == CAT_ENGINE)
		it->interruptions++;
	else if (r->outcome != OUT_INTERRUPTED)
		it->interruptions = 0;
	it->next_retry_at = r->next_state == ST_RETRY_WAIT ? r->next_retry_at
							    : 0;
	if (r->group)
		it->failure_group = intern(b, r->group);
	it->pause_group = r->next_state == ST_PAUSED ? intern(b, r->group)
						     : NULL;
	if (r->next_state == ST_PAUSED)
		it->paused_ms = r->time;
	if (state_final(r->next_state))
		it->completed_ms = r->time;
	set_state(b, it, r->next_state);
	return 0;
}

static void pause_one(struct batch *b, struct item *it, const struct rec *r)
{
	switch (it->state) {
	case ST_FAILED:
		/* A member that failed through a group, before it formed,
		 * waits with the group's other members (its batch is still
		 * open: a final batch stays final). */
		if (!r->group || b->final)
			break;
		it->completed_ms = 0;
		it->failures = 0;
		it->interruptions = 0;
		it->next_retry_at = 0;
		it->paused_ms = r->time;
		it->failure_group = intern(b, r->group);
		it->pause_group = it->failure_group;
		set_state(b, it, ST_PAUSED);
		break;
	case ST_STARTING:
		/* Reserved, never spawned: the attempt is withdrawn. */
		it->nattempts--;
		/* fall through */
	case ST_PENDING:
	case ST_RETRY_WAIT:
		it->next_retry_at = 0;
		it->paused_ms = r->time;
		if (r->group)
			it->failure_group = intern(b, r->group);
		it->pause_group = r->group ? it->failure_group : NULL;
		set_state(b, it, ST_PAUSED);
		break;
	default:
		break;
	}
}

static int apply_pause(struct batch *b, const struct rec *r)
{
	struct dec d = { r->list.p, r->list.p + r->list.len, false };
	if ((r->whole && r->list.n) || check_indexes(b, &r->list, -1) < 0)
		return -1;
	if (r->whole) {
		for (size_t i = 0; i < b->nitems; i++)
			pause_one(b, &b->items[i], r);
		return 0;
	}
	for (uint32_t i = 0; i < r->list.n; i++)
		pause_one(b, &b->items[get_u32(&d)], r);
	return 0;
}

static int apply_resume(struct batch *b, const struct rec *r)
{
	struct dec d = { r->list.p, r->list.p + r->list.len, false };
	if ((r->whole && r->list.n) || check_indexes(b, &r->list, -1) < 0)
		return -1;
	for (uint32_t i = 0; r->whole ? i < b->nitems : i < r->list.n; i++) {
		struct item *it = &b->items[r->whole ? i : get_u32(&d)];
		if (it->state != ST_PAUSED)
			continue;
		if (r->whole && r->group &&
		    (!it->pause_group || strcmp(it->pause_group, r->group)))
			continue;
		it->pause_group = NULL;
		set_state(b, it, ST_PENDING);
	}
	return 0;
}

static int apply_release(struct batch *b, const struct rec *r)
{
	struct item *it = rec_item(b, r);
	if (!it || it->state != ST_STARTING || r->attempt != it->nattempts)
		return -1;
	it->nattempts--;
	set_state(b, it, ST_PENDING);
	return 0;
}

static void cancel_one(struct batch *b, struct item *it, int64_t time)
{
	switch (it->state) {
	case ST_STARTING:
		/* Reserved but not spawned: the attempt never happened. */
		it->nattempts--;
		/* fall through */
	case ST_PENDING:
	case ST_RETRY_WAIT:
	case ST_PAUSED:
		it->completed_ms = time;
		it->next_retry_at = 0;
		it->pause_group = NULL;
		set_state(b, it, ST_CANCELLED);
		break;
	case ST_RUNNING:
		it->cancel_requested = 1;
		break;
	default:
		break;
	}
}

static int apply_cancel(struct batch *b, const struct rec *r)
{
	struct dec d = { r->list.p, r->list.p + r->list.len, false };
	if (r->whole && r->list.n)
		return -1;
	if (!r->whole && check_indexes(b, &r->list, -1) < 0)
		return -1;
	if (r->whole) {
		for (size_t i = 0; i < b->nitems; i++)
			cancel_one(b, &b->items[i], r->time);
		if (r->reason == CANCEL_USER)
			b->user_cancelled = true;
		return 0;
	}
	for (uint32_t i = 0; i < r->list.n; i++)
		cancel_one(b, &b->items[get_u32(&d)], r->time);
	return 0;
}

static int apply_requeue(struct batch *b, const struct rec *r)
{
	struct dec d = { r->list.p, r->list.p + r->list.len, false };
	if (check_indexes(b, &r->list, ST_FAILED) < 0)
		return -1;
	/* A listed item given twice would fail the state check on its second
	 * appearance only after the first changed it; look for that first. */
	struct strmap seen = STRMAP_INIT;
	int dup = 0;
	for (uint32_t i = 0; i < r->list.n && !dup; i++)
		dup = strmap_put(&seen, b->items[get_u32(&d)].symbol, i) != NULL;
	strmap_release(&seen);
	if (dup)
		return -1;
	d = (struct dec){ r->list.p, r->list.p + r->list.len, false };
	for (uint32_t i = 0; i < r->list.n; i++) {
		struct item *it = &b->items[get_u32(&d)];
		it->failures = 0;
		it->interruptions = 0;
		it->completed_ms = 0;
		set_state(b, it, ST_PENDING);
	}
	if (r->list.n) {
		b->final = false;
		b->completed_ms = 0;
	}
	return 0;
}

static int apply_final(struct batch *b, const struct rec *r)
{
	if (batch_open_items(b) || r->status < BS_COMPLETED ||
	    r->status > BS_CANCELLED)
		return -1;
	b->final = true;
	b->final_status = r->status;
	b->completed_ms = r->time;
	if (b->finals < UINT16_MAX)
		b->finals++;
	return 0;
}

uint32_t rec_first_index(const struct rec *r)
{
	if (r->indexes)
		return r->n ? r->indexes[0] : 0;
	struct dec d = { r->list.p, r->list.p + r->list.len, false };
	uint32_t idx = r->list.n ? get_u32(&d) : 0;
	return d.bad ? 0 : idx;
}

/* Within year 9999 either side of 1970 (ms): differences of such times,
 * even a hundred times over, fit in an int64_t. */
static bool time_ok(int64_t ms)
{
	return ms >= -253402300799999LL && ms <= 253402300799999LL;
}

int batch_apply(struct batch *b, const struct rec *r)
{
	if (!b->claimed && r->type != R_CLAIMED)
		return -1;
	/* A time no clock gives is damage: the views subtract and add
	 * times, which must not overflow. */
	if (!time_ok(r->time) || !time_ok(r->next_retry_at) ||
	    (r->type == R_CLAIMED && !time_ok(r->conf->created_ms)))
		return -1;
	switch (r->type) {
	case R_CLAIMED: return apply_claimed(b, r);
	case R_ITEMS: return apply_items(b, r);
	case R_RESERVE: return apply_reserve(b, r);
	case R_SPAWNED: return apply_spawned(b, r);
	case R_FINISHED: return apply_finished(b, r);
	case R_RELEASE: return apply_release(b, r);
	case R_CANCEL: return apply_cancel(b, r);
	case R_REQUEUE: return apply_requeue(b, r);
	case R_FINAL: return apply_final(b, r);
	case R_ADOPTED:
		b->owner_pid = r->pid;
		return 0;
	case R_PAUSE:
	case R_RESUME:
		if (!group_ok(r->group))
			return forged(b, "failure group", r->group);
		return r->type == R_PAUSE ? apply_pause(b, r)
					  : apply_resume(b, r);
	}
	return -1;
}

void batch_record(struct batch *b, struct journal *j, const struct rec *r)
{
	static struct sb buf;
	struct rec back;
	rec_encode(r, &buf);
	journal_add(j, buf.buf, buf.len);
	/* Apply what was written, decoded, exactly as replay will. */
	if (rec_decode(buf.buf, buf.len, &back) < 0 || batch_apply(b, &back) < 0)
		BUG("record type %d does not apply to batch %s", r->type,
		    b->c.id ? b->c.id : "?");
}

int batch_damaged(const struct journal *j, struct batch *b)
{
	char tail[96] = "";
	b->damage[0] = '\0';
	if (j->torn_bytes)
		snprintf(tail, sizeof(tail), " (then %lld bytes that do not "
			 "verify)", (long long)j->torn_bytes);
	if (j->corrupt)
		snprintf(b->damage, sizeof(b->damage), "%s", j->why);
	else if (!b->claimed)
		snprintf(b->damage, sizeof(b->damage),
			 "no claim record at offset %lld%s", (long long)j->size,
			 tail);
	else if (b->nitems < b->c.total_items)
		snprintf(b->damage, sizeof(b->damage),
			 "its item list stops after %zu of %lu items at offset "
			 "%lld%s", b->nitems, (unsigned long)b->c.total_items,
			 (long long)j->size, tail);
	return b->damage[0] != '\0';
}

int batch_replay_dir(int dirfd, struct batch *b)
{
	struct journal j;
	batch_init(b);
	if (journal_open(&j, dirfd, "journal", false, batch_replay, b) < 0) {
		if (errno == EINVAL && j.why[0])
			snprintf(b->damage, sizeof(b->damage), "%s", j.why);
		return -1;
	}
	journal_close(&j);
	batch_damaged(&j, b);
	if (!b->claimed || b->forged[0]) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int batch_replay(void *arg, const void *payload, size_t len)
{
	struct rec r;
	if (rec_decode(payload, len, &r) < 0)
		return -1;
	return batch_apply(arg, &r);
}
