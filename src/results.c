#include "results.h"
#include "category.h"
#include "meta.h"
#include "util.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const base_cols[C_BASE] = {
	"symbol", "state", "category", "duration_ms", "attempts", "matches"
};

size_t col_find(const struct table *t, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (!strcmp(t->cols[i], name))
			return i;
	return SIZE_MAX;
}

static size_t col_add(struct table *t, const char *name)
{
	size_t i = col_find(t, name);
	if (i != SIZE_MAX)
		return i;
	GROW(t->cols, t->capcols, t->ncols + 1);
	t->cols[t->ncols] = xstrdup(name);
	return t->ncols++;
}

static struct val text(const char *s)
{
	return (struct val){ .set = s != NULL, .s = s ? xstrdup(s) : NULL };
}

static struct val number(double d)
{
	return (struct val){ .set = true, .num = true, .d = d };
}

/* The metrics of an item's last result onto row r. */
static void take_metrics(struct table *t, struct row *r, const struct item *it)
{
	const struct attempt *a = meta_last_result(it);
	cJSON *flat = a ? meta_metrics_flat(a->result) : NULL;
	for (const cJSON *m = flat ? flat->child : NULL; m; m = m->next) {
		struct val v = cJSON_IsNumber(m) ? number(m->valuedouble)
			       : cJSON_IsString(m) ? text(m->valuestring)
			       : text(cJSON_IsTrue(m) ? "true" : "false");
		/* a metric named like a base column does not replace it */
		size_t c = col_find(t, m->string);
		if (c != SIZE_MAX && c < C_BASE) {
			free(v.s);
			continue;
		}
		col_add(t, m->string);
		r->m = xrealloc(r->m, (r->nm + 1) * sizeof(*r->m));
		r->m[r->nm++] = (struct kv){ xstrdup(m->string), v };
	}
	cJSON_Delete(flat);
}

void table_build(struct table *t, const struct batch *b)
{
	for (size_t i = 0; i < C_BASE; i++)
		col_add(t, base_cols[i]);
	t->nrows = b->nitems;
	t->rows = xcalloc(b->nitems ? b->nitems : 1, sizeof(*t->rows));
	for (size_t i = 0; i < b->nitems; i++)
		take_metrics(t, &t->rows[i], &b->items[i]);
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		const struct attempt *last = meta_last_done(it);
		struct row *r = &t->rows[i];
		r->v = xcalloc(t->ncols, sizeof(*r->v));
		r->v[C_SYMBOL] = text(it->symbol);
		r->v[C_STATE] = text(state_name(it->state));
		if (it->state == ST_FAILED && last)
			r->v[C_CATEGORY] = text(category_name(last->category));
		int64_t d = meta_attempt_duration(last);
		if (d >= 0)
			r->v[C_DURATION] = number((double)d);
		r->v[C_ATTEMPTS] = number(it->nattempts);
		if (it->matches >= 0)
			r->v[C_MATCHES] = number((double)it->matches);
		for (size_t k = 0; k < r->nm; k++) {
			r->v[col_find(t, r->m[k].key)] = r->m[k].v;
			free(r->m[k].key);
		}
		free(r->m);
		r->m = NULL;
	}
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows; i++) {
		for (size_t c = 0; t->rows[i].v && c < t->ncols; c++)
			free(t->rows[i].v[c].s);
		free(t->rows[i].v);
	}
	free(t->rows);
	for (size_t c = 0; c < t->ncols; c++)
		free(t->cols[c]);
	free(t->cols);
}

/* ---- the filter ---- */

static bool parse_number(const char *s, double *d)
{
	char *end;
	errno = 0;
	*d = strtod(s, &end);
	return *s && !*end && !errno && isfinite(*d);
}

/* 0, or -1 with why (a usage error). */
int filter_parse(const struct table *t, const char *expr,
			struct filter *f, char *why, size_t nwhy)
{
	const char *p = expr;
	bool or_before = false;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		const char *k = p;
		while (*p && (isalnum((unsigned char)*p) || strchr("_.-", *p)))
			p++;
		size_t klen = (size_t)(p - k);
		while (isspace((unsigned char)*p))
			p++;
		enum op op;
		size_t olen = 1;
		if (!strncmp(p, "<=", 2)) op = OP_LE, olen = 2;
		else if (!strncmp(p, ">=", 2)) op = OP_GE, olen = 2;
		else if (!strncmp(p, "==", 2)) op = OP_EQ, olen = 2;
		else if (!strncmp(p, "!=", 2)) op = OP_NE, olen = 2;
		else if (*p == '<') op = OP_LT;
		else if (*p == '>') op = OP_GT;
		else if (*p == '=') op = OP_EQ;
		else {
			snprintf(why, nwhy, "expected KEY OP VALUE at '%s'", k);
			return -1;
		}
		if (!klen) {
			snprintf(why, nwhy, "no key before '%.*s'", (int)olen, p);
			return -1;
		}
		char key[128];
		snprintf(key, sizeof(key), "%.*s", (int)(klen < 127 ? klen : 127), k);
		p += olen;
		while (isspace((unsigned char)*p))
			p++;
		char value[256];
		size_t vlen = 0;
		if (*p == '\'' || *p == '"') {
			char q = *p++;
			while (*p && *p != q && vlen < sizeof(value) - 1)
				value[vlen++] = *p++;
			if (*p != q) {
				snprintf(why, nwhy, "unterminated quote");
				return -1;
			}
			p++;
		} else {
			while (*p && !isspace((unsigned char)*p) &&
			       vlen < sizeof(value) - 1)
				value[vlen++] = *p++;
			if (!vlen) {
				snprintf(why, nwhy, "no value after %s %.*s", key,
					 (int)olen, p - olen);
				return -1;
			}
		}
		value[vlen] = '\0';
		size_t col = col_find(t, key);
		f->c = xrealloc(f->c, (f->n + 1) * sizeof(*f->c));
		struct cond *c = &f->c[f->n++];
		*c = (struct cond){ .col = col, .op = op, .or_before = or_before };
		double d;
		c->v = parse_number(value, &d) ? number(d) : text(value);
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return 0;
		if (!strncmp(p, "and", 3) && (isspace((unsigned char)p[3]) || !p[3])) {
			or_before = false;
			p += 3;
		} else if (!strncmp(p, "or", 2) &&
			   (isspace((unsigned char)p[2]) || !p[2])) {
			or_before = true;
			p += 2;
		} else {
			snprintf(why, nwhy, "expected 'and' or 'or' at '%s'", p);
			return -1;
		}
	}
}

int cmp_vals(const struct val *a, const struct val *b)
{
	if (a->num && b->num)
		return a->d < b->d ? -1 : a->d > b->d;
	char na[32], nb[32];
	const char *sa = a->s, *sb = b->s;
	if (a->num)
		snprintf(na, sizeof(na), "%.17g", a->d), sa = na;
	if (b->num)
		snprintf(nb, sizeof(nb), "%.17g", b->d), sb = nb;
	return strcmp(sa, sb);
}

static bool cond_true(const struct cond *c, const struct row *r)
{
	if (c->col == SIZE_MAX || !r->v[c->col].set)
		return false;
	int k = cmp_vals(&r->v[c->col], &c->v);
	switch (c->op) {
	case OP_LT: return k < 0;
	case OP_LE: return k <= 0;
	case OP_GT: return k > 0;
	case OP_GE: return k >= 0;
	case OP_EQ: return k == 0;
	case OP_NE: return k != 0;
	}
	return false;
}

/* An "or" of "and" runs. */
bool filter_true(const struct filter *f, const struct row *r)
{
	if (!f->n)
		return true;
	bool any = false, run = true;
	for (size_t i = 0; i < f->n; i++) {
		if (f->c[i].or_before) {
			any |= run;
			run = true;
		}
		run = run && cond_true(&f->c[i], r);
	}
	return any || run;
}

/* ---- sorting and printing ---- */

static size_t sort_col;
static bool sort_desc;

static int cmp_rows(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;
	const struct val *x = &a->v[sort_col], *y = &b->v[sort_col];
	if (x->set != y->set)
		return x->set ? -1 : 1; /* rows without the key last */
	int k = x->set ? cmp_vals(x, y) : 0;
	if (sort_desc)
		k = -k;
	return k ? k : strcmp(a->v[C_SYMBOL].s, b->v[C_SYMBOL].s);
}

void fmt_val(const struct val *v, char *buf, size_t n)
{
	if (!v->set)
		buf[0] = '\0';
	else if (!v->num)
		snprintf(buf, n, "%s", v->s);
	else if (v->d == floor(v->d) && fabs(v->d) < 1e15)
		snprintf(buf, n, "%.0f", v->d);
	else
		snprintf(buf, n, "%.6g", v->d);
}

static void put_csv(const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

void print_table(const struct table *t, const size_t *cols,
			size_t ncols, const struct row **rows, size_t nrows,
			enum form form)
{
	char buf[512];
	if (form == F_JSON) {
		for (size_t i = 0; i < nrows; i++) {
			cJSON *o = cJSON_CreateObject();
			for (size_t k = 0; k < ncols; k++) {
				const struct val *v = &rows[i]->v[cols[k]];
				const char *name = t->cols[cols[k]];
				if (!v->set)
					cJSON_AddNullToObject(o, name);
				else if (v->num)
					cJSON_AddNumberToObject(o, name, v->d);
				else
					cJSON_AddStringToObject(o, name, v->s);
			}
			char *line = cJSON_PrintUnformatted(o);
			puts(line);
			free(line);
			cJSON_Delete(o);
		}
		return;
	}
	size_t *w = xcalloc(ncols, sizeof(*w));
	bool *right = xcalloc(ncols, sizeof(*right));
	for (size_t k = 0; k < ncols; k++) {
		w[k] = strlen(t->cols[cols[k]]);
		for (size_t i = 0; i < nrows && !right[k]; i++)
			right[k] = rows[i]->v[cols[k]].num;
	}
	for (size_t i = 0; form == F_TEXT && i < nrows; i++)
		for (size_t k = 0; k < ncols; k++) {
			fmt_val(&rows[i]->v[cols[k]], buf, sizeof(buf));
			if (strlen(buf) > w[k])
				w[k] = strlen(buf);
		}
	for (size_t i = 0; i <= nrows; i++) {
		for (size_t k = 0; k < ncols; k++) {
			const struct val *v = i ? &rows[i - 1]->v[cols[k]] : NULL;
			if (v)
				fmt_val(v, buf, sizeof(buf));
			else
				snprintf(buf, sizeof(buf), "%s", t->cols[cols[k]]);
			if (form == F_CSV) {
				if (k)
					putchar(',');
				put_csv(buf);
			} else if (form == F_TSV) {
				for (char *p = buf; *p; p++)
					if (*p == '\t' || *p == '\n' || *p == '\r')
						*p = ' ';
				printf("%s%s", k ? "\t" : "", buf);
			} else {
				if (k)
					fputs("  ", stdout);
				if (k == ncols - 1 && !right[k])
					fputs(buf, stdout);
				else
					printf(right[k] ? "%*s" : "%-*s", (int)w[k],
					       buf);
			}
		}
		fputs(form == F_CSV ? "\r\n" : "\n", stdout);
	}
	free(right);
	free(w);
}


void table_sort(struct table *t, size_t col, bool desc)
{
	sort_col = col;
	sort_desc = desc;
	qsort(t->rows, t->nrows, sizeof(*t->rows), cmp_rows);
}

void filter_free(struct filter *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->c[i].v.s);
	free(f->c);
	f->c = NULL;
	f->n = 0;
}

/* The number at a dotted path of a metrics object, or false. */
static bool metric_at(const cJSON *m, const char *path, double *d)
{
	char key[256];
	snprintf(key, sizeof(key), "%s", path);
	const cJSON *o = m;
	for (char *part = key, *dot; o; part = dot + 1) {
		dot = strchr(part, '.');
		if (dot)
			*dot = '\0';
		o = cJSON_GetObjectItemCaseSensitive(o, part);
		if (!dot)
			break;
	}
	if (!cJSON_IsNumber(o) || !isfinite(o->valuedouble))
		return false;
	*d = o->valuedouble;
	return true;
}

void results_primary(const struct batch *b, const char *metric,
		     struct primary *p)
{
	memset(p, 0, sizeof(*p));
	double sum = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (it->matches > 0)
			p->matches += it->matches;
		if (!metric)
			continue;
		const struct attempt *a = meta_last_result(it);
		cJSON *doc = a ? cJSON_Parse(a->result) : NULL;
		double d;
		if (doc && metric_at(cJSON_GetObjectItemCaseSensitive(doc,
								      "metrics"),
				     metric, &d)) {
			if (!p->n || d < p->min)
				p->min = d, p->min_sym = it->symbol;
			if (!p->n || d > p->max)
				p->max = d, p->max_sym = it->symbol;
			sum += d;
			p->n++;
		}
		cJSON_Delete(doc);
	}
	p->mean = p->n ? sum / (double)p->n : 0;
}

void results_primary_text(const struct batch *b, struct sb *out)
{
	struct primary p;
	const char *metric = b->c.primary_metric;
	if (!metric)
		return;
	results_primary(b, metric, &p);
	if (!p.n)
		return;
	char v[3][64];
	struct val x[3] = { { true, true, p.mean, NULL },
			    { true, true, p.min, NULL },
			    { true, true, p.max, NULL } };
	for (int i = 0; i < 3; i++)
		fmt_val(&x[i], v[i], sizeof(v[i]));
	sb_addf(out, ", %s mean %s (min %s %s, max %s %s; %zu %s)", metric,
		v[0], v[1], p.min_sym, v[2], p.max_sym, p.n,
		p.n == 1 ? "item" : "items");
}

/* ---- two batches ---- */

/* Row of symbol in a table built in item order (before any sort). */
static const struct row *row_of(const struct table *t, struct batch *b,
				const char *symbol)
{
	struct item *it = batch_item(b, symbol);
	return it ? &t->rows[it - b->items] : NULL;
}

static int cmp_change(const void *pa, const void *pb)
{
	const struct change *a = pa, *b = pb;
	double x = fabs(a->after - a->before), y = fabs(b->after - b->before);
	return x < y ? 1 : x > y ? -1 : strcmp(a->symbol, b->symbol);
}

const char *const diff_names[D_LISTS] = {
	"newly_failed", "newly_succeeded", "still_failing", "appeared",
	"disappeared"
};
const char *const diff_text[D_LISTS] = {
	"newly failed", "newly succeeded", "still failing", "appeared",
	"disappeared"
};

static void sl_add(struct symlist *l, const char *s)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = s;
}

void results_diff(struct batch *a, struct batch *b,
		  struct symlist lists[D_LISTS])
{
	memset(lists, 0, D_LISTS * sizeof(*lists));
	for (size_t i = 0; i < a->nitems; i++) {
		const struct item *x = &a->items[i];
		const struct item *y = batch_item(b, x->symbol);
		if (!y)
			sl_add(&lists[D_APPEARED], x->symbol);
		else if (x->state == ST_FAILED && y->state == ST_SUCCEEDED)
			sl_add(&lists[D_NEW_FAIL], x->symbol);
		else if (x->state == ST_SUCCEEDED && y->state == ST_FAILED)
			sl_add(&lists[D_NEW_OK], x->symbol);
		else if (x->state == ST_FAILED && y->state == ST_FAILED)
			sl_add(&lists[D_STILL_FAIL], x->symbol);
	}
	for (size_t i = 0; i < b->nitems; i++)
		if (!batch_item(a, b->items[i].symbol))
			sl_add(&lists[D_GONE], b->items[i].symbol);
}

size_t results_changes(const struct table *ta, struct batch *a,
		       const struct table *tb, struct batch *b, size_t c,
		       struct change *ch)
{
	size_t cb = col_find(tb, ta->cols[c]);
	if (cb == SIZE_MAX)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < a->nitems; i++) {
		const struct row *ra = &ta->rows[i];
		const struct row *rb = row_of(tb, b, a->items[i].symbol);
		if (!rb || !ra->v[c].num || !rb->v[cb].num ||
		    ra->v[c].d == rb->v[cb].d)
			continue;
		ch[n++] = (struct change){ a->items[i].symbol, rb->v[cb].d,
					   ra->v[c].d };
	}
	if (n)
		qsort(ch, n, sizeof(*ch), cmp_change);
	return n;
}
