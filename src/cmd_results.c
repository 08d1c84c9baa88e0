/*
 * cmd_results: `runner results`, a batch's results as a table (results.h
 * builds it), `runner diff`, what changed between two batches, and
 * `runner history`, a symbol's runs across batches (history.h).
 */
#include "cli.h"
#include "archive.h"
#include "batch.h"
#include "history.h"
#include "meta.h"
#include "results.h"
#include "util.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_results(void)
{
	size_t sort_col = C_SYMBOL;
	struct cmdopt o[] = { { "--help" }, { "--sort", true }, { "--desc" },
			      { "--where", true }, { "--columns", true },
			      { "--csv" }, { "--tsv" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(
		o, NOPTS(o), &pos, &npos, "results",
		"usage: runner results BATCH [--sort KEY] [--desc] "
		"[--where EXPR] [--columns A,B,...]\n"
		"                     [--csv | --tsv | --json]\n\n"
		"One row per symbol: state, category, duration_ms, attempts, "
		"matches and every\nmetric of its result JSON (nested objects "
		"flattened with dots).  --where keeps\nthe rows where EXPR holds: "
		"KEY OP VALUE (OP: < <= > >= = !=) joined by 'and'\nand 'or', "
		"as in 'sharpe>1.5 and trades>=10'.  --csv is RFC 4180, --json "
		"one\nobject a line.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (o[5].seen + o[6].seen + g.json > 1) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("results: one of --csv, --tsv, --json");
	}
	int dirfd;
	struct batch b;
	if ((rc = load_one_batch(pos, npos, "results", &b, &dirfd))) {
		batch_release(&b);
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct table t = { 0 };
	struct filter f = { 0 };
	size_t *cols = NULL, ncols = 0;
	const struct row **rows = NULL;
	char why[256];
	table_build(&t, &b);
	/* The columns: as asked, else all of them. */
	if (o[4].seen) {
		char **w = NULL;
		size_t nw = 0;
		char *list = xstrdup(last_value(&o[4]));
		for (char *p = list; *p; p++)
			if (*p == ',')
				*p = ' ';
		if (split_words(list, &w, &nw, why) < 0 || !nw)
			rc = usage_error("results: --columns: %s",
					 nw ? why : "no column");
		for (size_t i = 0; !rc && i < nw; i++) {
			size_t c = col_find(&t, w[i]);
			if (c == SIZE_MAX)
				rc = usage_error("results: no column %s in batch "
						 "%s (runner results %s shows "
						 "them all)",
						 w[i], pos[0], pos[0]);
			cols = xrealloc(cols, (ncols + 1) * sizeof(*cols));
			cols[ncols++] = c;
		}
		for (size_t i = 0; i < nw; i++)
			free(w[i]);
		free(w);
		free(list);
	} else {
		ncols = t.ncols;
		cols = xcalloc(ncols, sizeof(*cols));
		for (size_t i = 0; i < ncols; i++)
			cols[i] = i;
	}
	if (!rc && o[3].seen &&
	    filter_parse(&t, last_value(&o[3]), &f, why, sizeof(why)) < 0)
		rc = usage_error("results: --where: %s", why);
	if (!rc && o[1].seen &&
	    (sort_col = col_find(&t, last_value(&o[1]))) == SIZE_MAX)
		rc = usage_error("results: --sort: no column %s in batch %s",
				 last_value(&o[1]), pos[0]);
	if (!rc) {
		table_sort(&t, o[1].seen ? sort_col : C_SYMBOL, o[2].seen);
		rows = xcalloc(t.nrows + 1, sizeof(*rows));
		size_t n = 0;
		for (size_t i = 0; i < t.nrows; i++)
			if (filter_true(&f, &t.rows[i]))
				rows[n++] = &t.rows[i];
		print_table(&t, cols, ncols, rows, n,
			    g.json ? F_JSON : o[5].seen ? F_CSV
				    : o[6].seen ? F_TSV : F_TEXT);
		if (fflush(stdout) != 0)
			rc = EX_IOERR_;
	}
	filter_free(&f);
	free(rows);
	free(cols);
	table_free(&t);
	batch_release(&b);
	if (dirfd >= 0)
		close(dirfd);
	free_cmd(o, NOPTS(o), pos);
	return rc;
}

/* ---- diff ---- */

/* The batch a diff compares with by default: the newest created before
 * this one with the same name; without a name, the same origin and agent;
 * without either, the same agent. */
struct prev_look {
	const struct batch_conf *c;
	char id[80];
	int64_t created;
};

static bool prev_matches(const struct prev_look *p, const struct summary *s)
{
	const struct batch_conf *c = p->c;
	if (!strcmp(s->id, c->id) || s->created_ms > c->created_ms ||
	    s->created_ms < p->created ||
	    (s->created_ms == c->created_ms && strcmp(s->id, c->id) > 0))
		return false;
	if (c->name && *c->name)
		return !strcmp(s->name, c->name);
	if (c->origin && *c->origin)
		return !strcmp(s->origin, c->origin) && !strcmp(s->agent, c->agent);
	return !*s->name && !*s->origin && !strcmp(s->agent, c->agent);
}

static void prev_take(struct prev_look *p, const struct summary *s)
{
	if (!prev_matches(p, s))
		return;
	if (s->created_ms == p->created && p->id[0] && strcmp(s->id, p->id) < 0)
		return;
	snprintf(p->id, sizeof(p->id), "%s", s->id);
	p->created = s->created_ms;
}

static void prev_batch(void *arg, const char *id, int bfd)
{
	struct summary s;
	(void)id;
	if (meta_read_summary(bfd, &s) == 0)
		prev_take(arg, &s);
}

static int prev_archived(void *arg, const struct archive_info *ai)
{
	prev_take(arg, &ai->s);
	return 0;
}

int previous_batch(const struct batch_conf *c, char *id, size_t n)
{
	struct prev_look p = { .c = c };
	if (each_batch(prev_batch, &p) < 0 && errno != ENOENT)
		warning("batches: %s", strerror(errno));
	archive_list(&home_, prev_archived, &p);
	if (!p.id[0])
		return -1;
	snprintf(id, n, "%s", p.id);
	return 0;
}

#define DIFF_SHOW 20	/* symbols a text list names before "and N more" */

int cmd_diff(void)
{
	struct cmdopt o[] = { { "--help" }, { "--limit", true } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(
		o, NOPTS(o), &pos, &npos, "diff",
		"usage: runner diff BATCH [OTHER] [--limit N] [--json]\n\n"
		"What changed from OTHER to BATCH: symbols newly failed, newly "
		"succeeded, still\nfailing, appeared and disappeared, and for "
		"each metric the N (default 5)\nlargest changes.  OTHER defaults "
		"to the newest batch created before BATCH with\nthe same name "
		"(without a name: the same origin and agent).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	long long limit = 5;
	rc = cmd_number(&o[1], "diff", 0, 1000000, &limit);
	if (!rc && (npos < 1 || npos > 2))
		rc = usage_error("diff: name a batch (and the one to compare "
				 "it with)");
	if (!rc)
		rc = open_home();
	if (rc) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct batch a, b;
	int afd = -1, bfd = -1;
	bool have_b = false;
	const char *why_other = "as asked";
	char other[80];
	batch_init(&b);
	if ((rc = load_batch(pos[0], &a, &afd)))
		goto out_a;
	if (npos == 2) {
		snprintf(other, sizeof(other), "%s", pos[1]);
	} else {
		if (previous_batch(&a.c, other, sizeof(other)) < 0) {
			error("diff: no batch before %s with %s", pos[0],
			      a.c.name && *a.c.name ? "its name"
			      : a.c.origin && *a.c.origin ? "its origin and agent"
							  : "its agent");
			rc = EX_NO_SUCH;
			goto out_a;
		}
		why_other = a.c.name && *a.c.name ? "the previous batch of the same name"
			    : a.c.origin && *a.c.origin
				    ? "the previous batch of the same origin and agent"
				    : "the previous batch of the same agent";
	}
	batch_release(&b);
	if ((rc = load_batch(other, &b, &bfd)))
		goto out_a;
	have_b = true;

	struct table ta = { 0 }, tb = { 0 };
	table_build(&ta, &a);
	table_build(&tb, &b);
	struct symlist lists[D_LISTS];
	results_diff(&a, &b, lists);

	cJSON *doc = g.json ? cJSON_CreateObject() : NULL;
	if (doc) {
		cJSON_AddStringToObject(doc, "batch", a.c.id);
		cJSON_AddStringToObject(doc, "other", b.c.id);
		for (int k = 0; k < D_LISTS; k++) {
			cJSON *arr = cJSON_AddArrayToObject(doc, diff_names[k]);
			for (size_t i = 0; i < lists[k].n; i++)
				cJSON_AddItemToArray(arr,
					cJSON_CreateString(lists[k].v[i]));
		}
	} else {
		printf("diff %s against %s (%s)\n", a.c.id, b.c.id, why_other);
		for (int k = 0; k < D_LISTS; k++) {
			printf("  %-16s %zu", diff_text[k], lists[k].n);
			for (size_t i = 0; i < lists[k].n && i < DIFF_SHOW; i++)
				printf("%s%s", i ? ", " : "  ", lists[k].v[i]);
			if (lists[k].n > DIFF_SHOW)
				printf(", ... (%zu more)", lists[k].n - DIFF_SHOW);
			putchar('\n');
		}
	}
	/* Each metric both batches have: its largest changes. */
	cJSON *mj = doc ? cJSON_AddObjectToObject(doc, "metric_changes") : NULL;
	struct change *ch = xcalloc(a.nitems + 1, sizeof(*ch));
	for (size_t c = C_BASE; c < ta.ncols; c++) {
		size_t n = results_changes(&ta, &a, &tb, &b, c, ch);
		if (!n)
			continue;
		size_t shown = n < (size_t)limit ? n : (size_t)limit;
		int symw = 12;	/* up to the longest symbol shown (32) */
		for (size_t i = 0; i < shown; i++)
			if ((int)strlen(ch[i].symbol) > symw)
				symw = (int)strlen(ch[i].symbol);
		cJSON *arr = mj ? cJSON_AddArrayToObject(mj, ta.cols[c]) : NULL;
		if (!mj && shown)
			printf("  %s, largest changes (%zu changed):\n",
			       ta.cols[c], n);
		for (size_t i = 0; i < shown; i++) {
			struct val bv = { .set = true, .num = true, .d = ch[i].before };
			struct val av = { .set = true, .num = true, .d = ch[i].after };
			struct val dv = { .set = true, .num = true,
					  .d = ch[i].after - ch[i].before };
			if (arr) {
				cJSON *e = cJSON_CreateObject();
				cJSON_AddStringToObject(e, "symbol", ch[i].symbol);
				cJSON_AddNumberToObject(e, "before", bv.d);
				cJSON_AddNumberToObject(e, "after", av.d);
				cJSON_AddNumberToObject(e, "change", dv.d);
				cJSON_AddItemToArray(arr, e);
				continue;
			}
			char s1[64], s2[64], s3[64];
			fmt_val(&bv, s1, sizeof(s1));
			fmt_val(&av, s2, sizeof(s2));
			fmt_val(&dv, s3, sizeof(s3));
			printf("    %-*s %10s -> %-10s %s%s\n", symw, ch[i].symbol, s1,
			       s2, dv.d > 0 ? "+" : "", s3);
		}
	}
	free(ch);
	if (doc) {
		char *text = cJSON_PrintUnformatted(doc);
		puts(text);
		free(text);
		cJSON_Delete(doc);
	}
	if (fflush(stdout) != 0)
		rc = EX_IOERR_;
	for (int k = 0; k < D_LISTS; k++)
		free(lists[k].v);
	table_free(&ta);
	table_free(&tb);
out_a:
	batch_release(&a);
	if (have_b || npos == 2 || rc)
		batch_release(&b);
	if (afd >= 0)
		close(afd);
	if (bfd >= 0)
		close(bfd);
	free_cmd(o, NOPTS(o), pos);
	return rc;
}

/* ---- history ---- */

/* Up to four metrics, k=v, for the text form. */
static void key_metrics(const char *json, char *buf, size_t n)
{
	buf[0] = '\0';
	cJSON *m = json ? cJSON_Parse(json) : NULL;
	size_t len = 0;
	int shown = 0;
	for (const cJSON *c = m ? m->child : NULL; c && shown < 4; c = c->next) {
		char v[64];
		if (cJSON_IsNumber(c)) {
			struct val x = { .set = true, .num = true, .d = c->valuedouble };
			fmt_val(&x, v, sizeof(v));
		} else if (cJSON_IsString(c) && c->valuestring) {
			snprintf(v, sizeof(v), "%s", c->valuestring);
		} else if (cJSON_IsBool(c)) {
			snprintf(v, sizeof(v), "%s", cJSON_IsTrue(c) ? "true" : "false");
		} else {
			continue;
		}
		int k = snprintf(buf + len, n - len, "%s%s=%s", shown ? " " : "",
				 c->string, v);
		if (k < 0 || (size_t)k >= n - len)
			break;
		len += (size_t)k;
		shown++;
	}
	cJSON_Delete(m);
}

int cmd_history(void)
{
	struct cmdopt o[] = { { "--help" }, { "--limit", true } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(
		o, NOPTS(o), &pos, &npos, "history",
		"usage: runner history SYMBOL [--limit N] [--json]\n\n"
		"The symbol's last N (default 10) runs across batches, archived "
		"ones included,\nnewest first: batch, date, state, category, "
		"duration and its metrics.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	long long limit = 10;
	rc = cmd_number(&o[1], "history", 1, 1000000, &limit);
	if (!rc && npos != 1)
		rc = usage_error("history: name one symbol");
	if (!rc)
		rc = open_home();
	if (rc) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct hist_row *rows;
	size_t n;
	if (history_lookup(&home_, pos[0], &rows, &n) < 0) {
		error("state/history: %s", strerror(errno));
		free_cmd(o, NOPTS(o), pos);
		return EX_IOERR_;
	}
	if (!n)
		error("%s: no run in any final batch of this home", pos[0]);
	/* The batch column as wide as the longest id shown. */
	int idw = 24;
	for (size_t i = 0; i < n && i < (size_t)limit; i++)
		if ((int)strlen(rows[i].batch) > idw)
			idw = (int)strlen(rows[i].batch);
	if (!g.json && n)
		printf("%-*s %-20s %-10s %-12s %10s  %s\n", idw, "BATCH",
		       "CREATED", "STATE", "CATEGORY", "DURATION", "METRICS");
	for (size_t i = 0; i < n && i < (size_t)limit; i++) {
		const struct hist_row *r = &rows[i];
		char t[TIME_BUF];
		if (g.json) {
			cJSON *j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "batch", r->batch);
			cJSON_AddStringToObject(j, "symbol", pos[0]);
			json_add_time(j, "created_at", r->created_ms);
			json_add_time(j, "completed_at", r->completed_ms);
			cJSON_AddStringToObject(j, "state", r->state);
			if (r->category[0])
				cJSON_AddStringToObject(j, "category", r->category);
			else
				cJSON_AddNullToObject(j, "category");
			if (r->duration_ms >= 0)
				cJSON_AddNumberToObject(j, "duration_ms",
							(double)r->duration_ms);
			else
				cJSON_AddNullToObject(j, "duration_ms");
			cJSON_AddNumberToObject(j, "attempts", (double)r->attempts);
			cJSON *m = r->metrics ? cJSON_Parse(r->metrics) : NULL;
			cJSON_AddItemToObject(j, "metrics",
					      m ? m : cJSON_CreateNull());
			char *text = cJSON_PrintUnformatted(j);
			puts(text);
			free(text);
			cJSON_Delete(j);
			continue;
		}
		char d[32], km[256];
		if (r->duration_ms >= 0)
			fmt_duration(r->duration_ms, d, sizeof(d));
		else
			snprintf(d, sizeof(d), "-");
		key_metrics(r->metrics, km, sizeof(km));
		fmt_time(r->created_ms, t);
		t[19] = '\0'; /* to the second */
		printf("%-*s %-20s %-10s %-12s %10s  %s\n", idw, r->batch, t,
		       r->state, r->category[0] ? r->category : "-", d, km);
	}
	history_free(rows, n);
	free_cmd(o, NOPTS(o), pos);
	if (fflush(stdout) != 0)
		return EX_IOERR_;
	return n ? 0 : EX_NO_SUCH;
}
