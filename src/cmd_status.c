/*
 * cmd_status: the home now: status (the daemon, agents, symbols, circuits)
 * and groups (failure groups, their members and progress).
 */
#include "cli.h"
#include "archive.h"
#include "batch.h"
#include "conf.h"
#include "control.h"
#include "daemon.h"
#include "engine.h"
#include "home.h"
#include "job.h"
#include "meta.h"
#include "progress.h"
#include "report.h"
#include "shared.h"
#include "slots.h"
#include "symstats.h"
#include "spool.h"
#include "stats.h"
#include "util.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct status_sym {
	char *symbol;
	int64_t last_ms, busy_until;
	uint64_t count, lat_sum, lat_max;
	int64_t lat_min;	/* -1: unknown */
	double p50, p95;	/* -1: unknown */
	bool last_ok, known;
	/* Derived in cmd_status: */
	const char *state;
	int circuit;
	int streak;
};

struct status_ctx {
	struct status_sym *v;
	size_t n, cap;
	struct strmap idx;
	int64_t since;
	const struct strmap *only;	/* the symbols named, or NULL: all */
};

static int cmp_group_new(const void *a, const void *b)
{
	const struct sh_group *x = *(struct sh_group *const *)a;
	const struct sh_group *y = *(struct sh_group *const *)b;
	if (x->detected_ms != y->detected_ms)
		return x->detected_ms > y->detected_ms ? -1 : 1;
	return strcmp(y->id, x->id);
}

int cmd_groups(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "groups",
			   "usage: runner groups [--json]\n\n"
			   "Failure groups, newest first: status, root cause, "
			   "members\nand progress (\"2/5 resumed, 3 queued\", how the "
			   "members ended).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos)
		rc = usage_error("groups: unexpected argument %s", pos[0]);
	free_cmd(o, NOPTS(o), pos);
	if (rc || (rc = open_home()))
		return rc;
	struct shared *sh = view_shared();
	if (!sh)
		return error("state/events: %s", strerror(errno)), EX_IOERR_;
	struct sh_group **v = xmalloc((sh->ngroups + 1) * sizeof(*v));
	if (sh->ngroups) { /* sh->groups is NULL when there are none */
		memcpy(v, sh->groups, sh->ngroups * sizeof(*v));
		qsort(v, sh->ngroups, sizeof(*v), cmp_group_new);
	}
	if (g.json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < sh->ngroups; i++)
			cJSON_AddItemToArray(arr, meta_group_json(sh, v[i]->id));
		char *text = cJSON_Print(arr);
		puts(text ? text : "[]");
		cJSON_free(text);
		cJSON_Delete(arr);
	} else {
		if (!sh->ngroups && verbosity >= 0)
			printf("no failure groups\n");
		else if (sh->ngroups)
			printf("%-24s %-9s %7s  %-24s %s\n", "GROUP", "STATUS",
			       "MEMBERS", "PROGRESS", "ROOT CAUSE");
		else
			puts("no failure groups");
		for (size_t i = 0; i < sh->ngroups; i++) {
			struct sb prog = SB_INIT;
			shared_group_progress_text(v[i], &prog);
			printf("%-24s %-9s %7zu  %-24s %s\n", v[i]->id,
			       group_status_name(v[i]->status), v[i]->nm,
			       prog.buf, v[i]->root_cause ? v[i]->root_cause : "");
			sb_release(&prog);
		}
	}
	free(v);
	return fflush(stdout) == 0 ? 0 : EX_IOERR_;
}

static struct status_sym *status_sym(struct status_ctx *c, const char *sym)
{
	struct strmap_entry *e = strmap_get(&c->idx, sym);
	if (e)
		return &c->v[e->value];
	GROW(c->v, c->cap, c->n + 1);
	struct status_sym *s = &c->v[c->n];
	memset(s, 0, sizeof(*s));
	s->symbol = xstrdup(sym);
	strmap_put(&c->idx, s->symbol, c->n);
	c->n++;
	return s;
}

static void status_row(void *arg, const struct symstat_row *r)
{
	struct status_ctx *c = arg;
	if (c->only) {
		if (!strmap_get(c->only, r->symbol))
			return; /* named ones only, however old */
	} else if (r->last_ms < c->since && r->busy_until < c->since) {
		return; /* not seen recently */
	}
	struct status_sym *s = status_sym(c, r->symbol);
	s->last_ms = r->last_ms;
	s->busy_until = r->busy_until;
	s->count = r->count;
	s->lat_sum = r->lat_sum;
	s->lat_max = r->lat_max;
	s->lat_min = r->lat_min;
	s->p50 = symstats_percentile(r, 0.50);
	s->p95 = symstats_percentile(r, 0.95);
	s->last_ok = r->last_ok;
	s->known = true;
}

static int cmp_status_sym(const void *a, const void *b)
{
	return strcmp(((const struct status_sym *)a)->symbol,
		      ((const struct status_sym *)b)->symbol);
}

/*
 * Keys of the per-symbol objects are literals: cJSON need not copy them.
 * Their numbers are formatted here, as raw JSON: cJSON prints every number
 * with "%1.15g" and reads it back to check it, most of the time `status
 * --json` took on 10,000 symbols.  Latencies are kept to 0.1 ms.
 */
static void put_num(cJSON *o, const char *key, double v)
{
	char buf[32];
	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, sizeof(buf), "%lld", (long long)v);
	else
		snprintf(buf, sizeof(buf), "%.1f", v);
	cJSON_AddItemToObjectCS(o, key, cJSON_CreateRaw(buf));
}

static void put_str(cJSON *o, const char *key, const char *v)
{
	cJSON_AddItemToObjectCS(o, key, cJSON_CreateString(v));
}

static void put_null(cJSON *o, const char *key)
{
	cJSON_AddItemToObjectCS(o, key, cJSON_CreateNull());
}

static void put_ms(cJSON *o, const char *key, double v, bool known)
{
	if (known && isfinite(v))
		put_num(o, key, round(v * 10) / 10);
	else
		put_null(o, key);
}

/* One symbol of `status --json` (SPEC 8, and its latency distribution). */
static cJSON *status_sym_json(const struct status_sym *s)
{
	cJSON *so = cJSON_CreateObject();
	char t[TIME_BUF];
	put_str(so, "symbol", s->symbol);
	put_str(so, "state", s->state);
	/* last_processed is the contract's name; last_processed_at says it
	 * is a time, as every other time's name does. */
	if (s->last_ms) {
		put_str(so, "last_processed", fmt_time(s->last_ms, t));
		put_str(so, "last_processed_at", t);
	} else {
		put_null(so, "last_processed");
		put_null(so, "last_processed_at");
	}
	put_num(so, "consecutive_failures", s->streak);
	put_str(so, "circuit_state", circuit_name(s->circuit));
	double avg = s->count ? (double)s->lat_sum / (double)s->count : 0;
	put_ms(so, "avg_latency_ms", avg, s->count);
	/* Beyond SPEC 8: the distribution (p50/p95 within 10%, and within
	 * [min, max]). */
	cJSON *lat = cJSON_CreateObject();
	cJSON_AddItemToObjectCS(so, "latency_ms", lat);
	put_ms(lat, "min", (double)s->lat_min, s->count && s->lat_min >= 0);
	put_ms(lat, "avg", avg, s->count);
	put_ms(lat, "p50", round(s->p50), s->count && s->p50 >= 0);
	put_ms(lat, "p95", round(s->p95), s->count && s->p95 >= 0);
	put_ms(lat, "max", (double)s->lat_max, s->count && s->lat_max);
	return so;
}

/*
 * The symbols array, one object a line.  Each is built, printed and freed
 * in turn rather than held in one tree: with 10,000 symbols that tree is
 * 140,000 allocations, most of the command's time.
 */
static char *status_symbols_json(const struct status_ctx *c)
{
	struct sb out = SB_INIT;
	sb_addf(&out, "[");
	for (size_t i = 0; i < c->n; i++) {
		cJSON *so = status_sym_json(&c->v[i]);
		char *text = cJSON_PrintUnformatted(so);
		cJSON_Delete(so);
		if (!text)
			die(EX_INTERNAL, "out of memory printing status");
		sb_adds(&out, i ? ",\n    " : "\n    ");
		sb_adds(&out, text);
		cJSON_free(text);
	}
	sb_adds(&out, c->n ? "\n  ]" : "]");
	return out.buf;
}

/* The symbols of a batch's paused items, NUL-separated into out. */
static void paused_symbols(int bfd, struct sb *out)
{
	struct batch b;
	if (batch_replay_dir(bfd, &b) == 0)
		for (size_t i = 0; i < b.nitems; i++)
			if (b.items[i].state == ST_PAUSED) {
				sb_adds(out, b.items[i].symbol);
				sb_addc(out, '\0');
			}
	batch_release(&b);
}

/*
 * `status SYMBOL...`: those symbols only, in the order named: a table, or
 * with --json an array of their objects.  A symbol this home has no record
 * of is a one-line error; the others are still shown.  0, or 66.
 */
static int status_named(struct status_ctx *c, char **names, size_t n)
{
	int rc = 0;
	size_t shown = 0;
	if (g.json)
		fputs("[", stdout);
	for (size_t i = 0; i < n; i++) {
		/* c->v is sorted by now: c->idx no longer points into it. */
		struct status_sym key = { .symbol = names[i] };
		const struct status_sym *s =
			c->n ? bsearch(&key, c->v, c->n, sizeof(*c->v),
				       cmp_status_sym)
			     : NULL;
		if (!s) {
			error("status: %s: no such symbol (not seen by this home)",
			      names[i]);
			rc = EX_NO_SUCH;
			continue;
		}
		if (g.json) {
			cJSON *so = status_sym_json(s);
			char *text = cJSON_PrintUnformatted(so);
			cJSON_Delete(so);
			if (!text)
				die(EX_INTERNAL, "out of memory printing status");
			printf("%s\n  %s", shown++ ? "," : "", text);
			cJSON_free(text);
			continue;
		}
		char t[TIME_BUF], avg[32];
		if (!shown++)
			printf("%-12s %-10s %-9s %8s  %-24s %s\n", "SYMBOL",
			       "STATE", "CIRCUIT", "FAILURES", "LAST PROCESSED",
			       "AVG LATENCY");
		if (s->count)
			fmt_duration((int64_t)(s->lat_sum / s->count), avg,
				     sizeof(avg));
		printf("%-12s %-10s %-9s %8d  %-24s %s\n", s->symbol, s->state,
		       circuit_name(s->circuit), s->streak,
		       s->last_ms ? fmt_time(s->last_ms, t) : "-",
		       s->count ? avg : "-");
	}
	if (g.json)
		puts(shown ? "\n]" : "]");
	return rc;
}

/* What a batch that is not final adds to `status`: it is active, its
 * pending items are queued for its agent, its paused items' symbols are
 * paused. */
struct active_ctx {
	long long *queued;
	char **active;
	size_t n, cap;
	struct sb *paused;
};

static void active_batch(void *arg, const char *id, int bfd)
{
	struct active_ctx *ac = arg;
	struct summary su;
	(void)id;
	if (meta_read_summary(bfd, &su) < 0 || status_final(su.status))
		return;
	GROW(ac->active, ac->cap, ac->n + 1);
	ac->active[ac->n++] = xstrdup(su.id);
	for (size_t i = 0; i < conf_->nagents; i++)
		if (!strcmp(conf_->agents[i].name, su.agent))
			ac->queued[i] += su.pending;
	if (su.paused > 0)
		paused_symbols(bfd, ac->paused);
}

/* What `status` shows, gathered once for either form. */
struct status_view {
	struct status_ctx c;
	struct daemon_info info;
	bool daemon;
	long long *queued;	/* per agent of the configuration */
	char **active;
	size_t nactive;
	size_t healthy, npaused, open;
	const char *overall;
};

/* Each symbol's state and circuit, and the totals. */
static void status_classify(struct status_view *v, struct shared *sh,
			    const struct strmap *paused, size_t groups_open,
			    int64_t now)
{
	struct status_ctx *c = &v->c;
	v->open = groups_open;
	for (size_t i = 0; i < c->n; i++) {
		struct status_sym *s = &c->v[i];
		struct sh_symbol *ss = sh ? shared_symbol(sh, s->symbol) : NULL;
		int circuit = ss ? ss->brk.state : CIRCUIT_CLOSED;
		if (circuit == CIRCUIT_OPEN && ss && now >= ss->brk.until)
			circuit = CIRCUIT_HALF_OPEN;
		s->circuit = circuit;
		s->streak = ss ? ss->brk.streak : 0;
		s->state = s->busy_until > now ? "processing"
			: strmap_get(paused, s->symbol) ? "paused"
			: (s->known && !s->last_ok) || s->streak ||
				  circuit != CIRCUIT_CLOSED
				? "failed"
				: "idle";
		if (circuit != CIRCUIT_CLOSED)
			v->open++;
		if (!strcmp(s->state, "paused"))
			v->npaused++;
		if ((!strcmp(s->state, "idle") ||
		     !strcmp(s->state, "processing")) &&
		    circuit == CIRCUIT_CLOSED)
			v->healthy++;
	}
	v->overall = v->open > 3 ? "unhealthy"
		     : c->n && v->healthy * 5 < c->n * 4 ? "degraded"
							 : "healthy";
}

/* The symbols to show: seen in 24 h (or named), paused in an open batch,
 * or with a failure streak or a circuit not closed. */
static void status_gather(struct status_view *v, struct shared *sh,
			  int64_t now)
{
	struct sb paused_store = SB_INIT; /* NUL-separated paused symbols */
	v->queued = xcalloc(conf_->nagents + 1, sizeof(long long));
	struct active_ctx ac = { v->queued, NULL, 0, 0, &paused_store };
	each_batch(active_batch, &ac);
	v->active = ac.active;
	v->nactive = ac.n;

	struct status_ctx *c = &v->c;
	symstats_read(home_.state, status_row, c);
	/* A symbol is paused while an item of it is (in any open batch). */
	struct strmap paused = STRMAP_INIT;
	for (size_t off = 0; off < paused_store.len;) {
		const char *sym = paused_store.buf + off;
		off += strlen(sym) + 1;
		if (c->only && !strmap_get(c->only, sym))
			continue;
		status_sym(c, sym);
		strmap_put(&paused, sym, 1);
	}
	size_t groups_open = 0;
	for (size_t i = 0; sh && i < sh->ngroups; i++)
		if (sh->groups[i]->status == GROUP_OPEN)
			groups_open++;
	for (size_t i = 0; sh && i < sh->nsymbols; i++) {
		struct sh_symbol *ss = sh->symbols[i];
		if ((ss->brk.streak || ss->brk.state != CIRCUIT_CLOSED) &&
		    (!c->only || strmap_get(c->only, ss->symbol)))
			status_sym(c, ss->symbol);
	}
	if (c->n)
		qsort(c->v, c->n, sizeof(*c->v), cmp_status_sym);
	status_classify(v, sh, &paused, groups_open, now);
	strmap_release(&paused);
	sb_release(&paused_store);
}

static cJSON *status_doc(const struct status_view *v)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "overall_status", v->overall);
	cJSON *dj = cJSON_AddObjectToObject(root, "daemon");
	cJSON_AddBoolToObject(dj, "running", v->daemon);
	char t[TIME_BUF];
	if (v->daemon && v->info.pid)
		cJSON_AddNumberToObject(dj, "pid", v->info.pid);
	else
		cJSON_AddNullToObject(dj, "pid");
	if (v->daemon && v->info.started_ms)
		cJSON_AddStringToObject(dj, "started_at",
					fmt_time(v->info.started_ms, t));
	else
		cJSON_AddNullToObject(dj, "started_at");
	cJSON *ja = cJSON_AddArrayToObject(root, "agents");
	for (size_t i = 0; i < conf_->nagents; i++) {
		const struct agent_conf *a = &conf_->agents[i];
		cJSON *ao = cJSON_CreateObject();
		int running = slot_count_held(home_.state, a->name,
					      a->max_concurrent);
		cJSON_AddStringToObject(ao, "agent", a->name);
		cJSON_AddNumberToObject(ao, "running", running < 0 ? 0 : running);
		cJSON_AddNumberToObject(ao, "max_concurrent", a->max_concurrent);
		cJSON_AddNumberToObject(ao, "queued", (double)v->queued[i]);
		cJSON_AddItemToArray(ja, ao);
	}
	char *symbols = status_symbols_json(&v->c);
	cJSON_AddRawToObject(root, "symbols", symbols);
	free(symbols);
	cJSON_AddNumberToObject(root, "total_symbols", (double)v->c.n);
	cJSON_AddNumberToObject(root, "healthy_symbols", (double)v->healthy);
	cJSON_AddNumberToObject(root, "paused_symbols", (double)v->npaused);
	cJSON_AddNumberToObject(root, "circuit_breakers_open", (double)v->open);
	cJSON *jb = cJSON_AddArrayToObject(root, "active_batches");
	for (size_t i = 0; i < v->nactive; i++)
		cJSON_AddItemToArray(jb, cJSON_CreateString(v->active[i]));
	return root;
}

static void status_text(const struct status_view *v)
{
	char t[TIME_BUF];
	printf("overall      %s\n", v->overall);
	if (v->daemon)
		printf("daemon       running, pid %d, since %s\n",
		       (int)v->info.pid, fmt_time(v->info.started_ms, t));
	else
		printf("daemon       not running\n");
	for (size_t i = 0; i < conf_->nagents; i++) {
		const struct agent_conf *a = &conf_->agents[i];
		int running = slot_count_held(home_.state, a->name,
					      a->max_concurrent);
		printf("agent        %s: %d/%d running, %lld queued\n", a->name,
		       running < 0 ? 0 : running, a->max_concurrent,
		       v->queued[i]);
	}
	printf("symbols      %zu seen in 24 h: %zu healthy, %zu paused, "
	       "%zu %s open\n",
	       v->c.n, v->healthy, v->npaused, v->open,
	       plural(v->open, "circuit", "circuits"));
	printf("batches      %zu active\n", v->nactive);
	size_t shown = 0;
	for (size_t i = 0; i < v->c.n; i++) {
		const struct status_sym *s = &v->c.v[i];
		if (!strcmp(s->state, "failed") || !strcmp(s->state, "paused") ||
		    s->circuit != CIRCUIT_CLOSED) {
			if (!shown++)
				printf("%-12s %-10s %-9s %s\n", "SYMBOL",
				       "STATE", "CIRCUIT", "FAILURES");
			printf("%-12s %-10s %-9s %d\n", s->symbol, s->state,
			       circuit_name(s->circuit), s->streak);
		}
	}
}

int cmd_status(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "status",
			   "usage: runner status [SYMBOL...] [--json]\n\n"
			   "The home now: the daemon, each agent's running/max/queued, "
			   "every symbol\nseen in the last 24 hours (state, circuit, "
			   "consecutive failures, average\nlatency), open circuits and "
			   "the overall status.\n"
			   "With SYMBOLs: those symbols only, however long ago they ran "
			   "(--json: an\narray of their objects); a symbol the home has "
			   "never seen is an error (66).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct strmap named = STRMAP_INIT;
	for (size_t i = 0; i < npos; i++)
		strmap_put(&named, pos[i], i);
	int64_t now = now_ms();
	struct status_view v = {
		.c = { .since = now - 24 * 3600 * 1000LL,
		       .only = npos ? &named : NULL },
	};
	v.daemon = daemon_running(&home_, &v.info);
	status_gather(&v, view_shared(), now);

	if (npos) {
		rc = status_named(&v.c, pos, npos);
	} else if (g.json) {
		cJSON *root = status_doc(&v);
		char *text = cJSON_Print(root);
		puts(text ? text : "{}");
		cJSON_free(text);
		cJSON_Delete(root);
	} else {
		status_text(&v);
	}
	for (size_t i = 0; i < v.c.n; i++)
		free(v.c.v[i].symbol);
	free(v.c.v);
	strmap_release(&v.c.idx);
	strmap_release(&named);
	free_cmd(o, NOPTS(o), pos);
	for (size_t i = 0; i < v.nactive; i++)
		free(v.active[i]);
	free(v.active);
	free(v.queued);
	return fflush(stdout) == 0 ? rc : EX_IOERR_;
}
