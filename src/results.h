/*
 * results: a batch's results as a table, for `runner results` and
 * `runner diff`: one row per item (symbol, state, category, duration_ms,
 * attempts, matches, then every metric of the result JSON of its last
 * attempt that kept one), a small filter language, and the printed forms.
 *
 * Metrics are the result's "metrics" object, nested objects flattened with
 * dots ({"risk": {"var": 2}} is risk.var); numbers, strings and booleans
 * (true/false) are kept, arrays and nulls are not.
 *
 * The filter: COND [and|or COND]..., "and" binding tighter than "or", COND
 * being KEY OP VALUE with OP one of < <= > >= = == !=; two numbers compare
 * as numbers, anything else as text; a row without KEY fails the COND.
 *
 *   struct table t = { 0 };
 *   table_build(&t, &b);              rows in item order
 *   ... t.rows[i].v[col_find(&t, "sharpe")] ...
 *   table_free(&t);
 */
#ifndef RUNNER_RESULTS_H
#define RUNNER_RESULTS_H

#include "batch.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>

/* A value: a number, or text (booleans are "true"/"false"). */
struct val {
	bool set, num;
	double d;
	char *s;	/* owned */
};

struct kv {
	char *key;
	struct val v;
};

struct row {
	struct val *v;	/* one per column */
	struct kv *m;	/* its metrics, before columns are known */
	size_t nm;
};

struct table {
	char **cols;	/* the base columns, then metrics as first seen */
	size_t ncols, capcols;
	struct row *rows;
	size_t nrows;
};

enum { C_SYMBOL, C_STATE, C_CATEGORY, C_DURATION, C_ATTEMPTS, C_MATCHES,
       C_BASE };

enum op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE };
struct cond {
	size_t col;
	enum op op;
	struct val v;
	bool or_before;	/* "or" joins it to what comes before */
};
struct filter {
	struct cond *c;
	size_t n;
};

enum form { F_TEXT, F_CSV, F_TSV, F_JSON };

void table_build(struct table *t, const struct batch *b);
void table_free(struct table *t);
/* A column's index, SIZE_MAX: none. */
size_t col_find(const struct table *t, const char *name);
/* 0, or -1 with why (for a usage error). */
int filter_parse(const struct table *t, const char *expr, struct filter *f,
		 char *why, size_t nwhy);
void filter_free(struct filter *f);
bool filter_true(const struct filter *f, const struct row *r);
/* Numbers as numbers, anything else as text. */
int cmp_vals(const struct val *a, const struct val *b);
/* A cell as printed: "" when unset, a whole number without decimals,
 * else %.6g. */
void fmt_val(const struct val *v, char *buf, size_t n);
/* Sort rows by column col (ties by symbol, rows without it last). */
void table_sort(struct table *t, size_t col, bool desc);
/* The batch's sum of matches, and the primary metric (dotted path in the
 * result's metrics) over the items whose last result reports it: how
 * many, mean, min and max, with the symbols of min and max. */
struct primary {
	long long matches;
	size_t n;
	double mean, min, max;
	const char *min_sym, *max_sym;
};
void results_primary(const struct batch *b, const char *metric,
		     struct primary *p);
/* ", sharpe mean 0.42 (min -0.31 MSFT, max 1.21 AAPL; 98 items)", or ""
 * when the batch has no primary metric or no item reports it. */
void results_primary_text(const struct batch *b, struct sb *out);
/* Two batches, a against b (b the earlier): the symbols of each list. */
enum { D_NEW_FAIL, D_NEW_OK, D_STILL_FAIL, D_APPEARED, D_GONE, D_LISTS };
extern const char *const diff_names[D_LISTS];	/* newly_failed, ... */
extern const char *const diff_text[D_LISTS];	/* "newly failed", ... */
struct symlist {
	const char **v;
	size_t n;
};
void results_diff(struct batch *a, struct batch *b,
		  struct symlist lists[D_LISTS]);
/* Metric column c of ta (a's table, in item order) against the same
 * metric of tb: ch (room for a's items) gets the symbols whose value
 * changed, the largest change first; their count. */
struct change {
	const char *symbol;
	double before, after;
};
size_t results_changes(const struct table *ta, struct batch *a,
		       const struct table *tb, struct batch *b, size_t c,
		       struct change *ch);
void print_table(const struct table *t, const size_t *cols, size_t ncols,
		 const struct row **rows, size_t nrows, enum form form);

#endif
