#include "symstats.h"
#include "job.h"
#include "home.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static struct symstat *get(struct symstats *st, const char *symbol)
{
	struct strmap_entry *e = strmap_get(&st->idx, symbol);
	if (e)
		return &st->v[e->value];
	GROW(st->v, st->cap, st->n + 1); /* the map holds indexes: no fix-up */
	struct symstat *s = &st->v[st->n];
	memset(s, 0, sizeof(*s));
	s->symbol = xstrdup(symbol);
	strmap_put(&st->idx, s->symbol, st->n);
	st->n++;
	return s;
}

static uint32_t lat_bucket_of(int64_t ms)
{
	if (ms < 1)
		return 0;
	double b = 1.0 + floor(4.0 * log2((double)ms));
	return b >= SYMSTATS_BUCKETS - 1 ? SYMSTATS_BUCKETS - 1 : (uint32_t)b;
}

void lat_hist_add(struct lat_hist *h, uint32_t bucket, uint64_t n)
{
	if (bucket >= SYMSTATS_BUCKETS || !n)
		return;
	size_t i = 0;
	while (i < h->n && h->v[i].bucket < bucket)
		i++;
	if (i < h->n && h->v[i].bucket == bucket) {
		h->v[i].n += n;
		return;
	}
	if (h->n == h->cap) { /* most symbols use a few buckets: start at 2 */
		h->cap = h->cap ? h->cap * 2 : 2;
		h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
	}
	memmove(&h->v[i + 1], &h->v[i], (h->n - i) * sizeof(*h->v));
	h->v[i] = (struct lat_bucket){ bucket, n };
	h->n++;
}

void lat_hist_release(struct lat_hist *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* The middle of the bucket holding the attempt of rank ceil(q n). */
static double hist_percentile(const struct lat_hist *h, double q)
{
	uint64_t total = 0, seen = 0;
	for (size_t i = 0; i < h->n; i++)
		total += h->v[i].n;
	if (!total)
		return -1;
	uint64_t rank = (uint64_t)ceil(q * (double)total);
	if (rank < 1)
		rank = 1;
	for (size_t i = 0; i < h->n; i++) {
		seen += h->v[i].n;
		if (seen >= rank) {
			uint32_t b = h->v[i].bucket;
			/* the middle of [2^((b-1)/4), 2^(b/4)) */
			return b ? pow(2.0, ((double)b - 0.5) / 4.0) : 0;
		}
	}
	return -1;
}

/*
 * The middle of a bucket can lie beyond every latency in it (one attempt
 * of 91 ms reads as 98.7): the exact extremes bound the estimate, which
 * stays within 10% since they lie in the same bucket as what they clamp.
 */
double symstats_percentile(const struct symstat_row *r, double q)
{
	double p = hist_percentile(r->hist, q);
	if (p < 0)
		return -1;
	if (p > (double)r->lat_max)
		p = (double)r->lat_max;
	if (r->lat_min >= 0 && (uint64_t)r->lat_min <= r->lat_max &&
	    p < (double)r->lat_min)
		p = (double)r->lat_min;
	return p;
}

static void hist_format(struct sb *out, const struct lat_hist *h)
{
	for (size_t i = 0; i < h->n; i++)
		sb_addf(out, "%s%u:%llu", i ? "," : "", h->v[i].bucket,
			(unsigned long long)h->v[i].n);
	if (!h->n)
		sb_addc(out, '-');
}

static void hist_parse(const char *s, struct lat_hist *h)
{
	while (s && *s && *s != '-') {
		char *end;
		unsigned long b = strtoul(s, &end, 10);
		if (*end != ':')
			return;
		unsigned long long n = strtoull(end + 1, &end, 10);
		if (b < SYMSTATS_BUCKETS)
			lat_hist_add(h, (uint32_t)b, n);
		if (*end != ',')
			return;
		s = end + 1;
	}
}

void symstats_start(struct symstats *st, const char *symbol)
{
	struct symstat *s = get(st, symbol);
	s->running++;
	s->dirty = st->dirty = true;
}

void symstats_end(struct symstats *st, const char *symbol, int64_t now,
		  int64_t latency_ms, bool ok)
{
	struct symstat *s = get(st, symbol);
	if (s->running)
		s->running--;
	uint64_t ms = latency_ms > 0 ? (uint64_t)latency_ms : 0;
	s->last_ms = now;
	if (!s->count || ms < s->lat_min)
		s->lat_min = ms;
	s->count++;
	s->lat_sum += ms;
	if (ms > s->lat_max)
		s->lat_max = ms;
	lat_hist_add(&s->hist, lat_bucket_of(latency_ms), 1);
	s->last_ok = ok;
	s->dirty = st->dirty = true;
}

bool symstats_busy(const struct symstats *st)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->v[i].running)
			return true;
	return false;
}

/* The minimum field: digits, else unknown (-1). */
static int64_t parse_min(const char *s)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	long long v = strtoll(s, &end, 10);
	return *end || v < 0 ? -1 : (int64_t)v;
}

int symstats_read(int state_fd, symstats_fn fn, void *arg)
{
	struct sb text = SB_INIT;
	int fd = openat(state_fd, "symbols", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	int rc = read_fd_bounded(fd, 256u << 20, &text);
	close(fd);
	for (char *p = text.buf; rc == 0 && p && *p;) {
		char *nl = strchr(p, '\n');
		if (!nl)
			break; /* a torn last line cannot be: the file is replaced */
		*nl = '\0';
		char *f[9];
		int nf = 0;
		for (char *q = p; nf < 9;) {
			f[nf++] = q;
			char *tab = strchr(q, '\t');
			if (!tab)
				break;
			*tab = '\0';
			q = tab + 1;
		}
		/* A symbol no job could give is a line no runner wrote. */
		if (nf >= 6 && valid_symbol(f[0])) {
			struct lat_hist h = { NULL, 0, 0 };
			if (nf >= 8)
				hist_parse(f[7], &h);
			struct symstat_row r = {
				f[0], strtoll(f[1], NULL, 10),
				strtoull(f[2], NULL, 10), strtoull(f[3], NULL, 10),
				f[4][0] == '1', strtoll(f[5], NULL, 10),
				nf >= 7 ? strtoull(f[6], NULL, 10) : 0, &h,
				nf >= 9 ? parse_min(f[8]) : -1,
			};
			fn(arg, &r);
			lat_hist_release(&h);
		}
		p = nl + 1;
	}
	sb_release(&text);
	return rc;
}

static int lock_file(int state_fd)
{
	int lock = openat(state_fd, "symbols.lock",
			  O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (lock < 0 || lock_within(lock, LOCK_WAIT_MS) < 0) {
		if (lock >= 0)
			close(lock);
		return -1;
	}
	/* Under the lock no other writer has one: a temp is a crash's. */
	remove_stale_temps(state_fd, "symbols", 0);
	return lock;
}

void symstats_sweep(int state_fd)
{
	int lock = lock_file(state_fd);
	if (lock >= 0)
		close(lock);
}

static void row_format(struct sb *out, const struct symstat_row *r)
{
	sb_addf(out, "%s\t%lld\t%llu\t%llu\t%d\t%lld\t%llu\t", r->symbol,
		(long long)r->last_ms, (unsigned long long)r->count,
		(unsigned long long)r->lat_sum, r->last_ok ? 1 : 0,
		(long long)r->busy_until, (unsigned long long)r->lat_max);
	hist_format(out, r->hist);
	if (r->lat_min >= 0)
		sb_addf(out, "\t%lld\n", (long long)r->lat_min);
	else
		sb_adds(out, "\t-\n");
}

struct merge {
	struct symstats *st;
	struct sb out;
	int64_t now;
};

/* What this process learned of s since the last flush, added to row r. */
static void merge_into(struct symstat_row *r, struct lat_hist *h,
		       struct symstat *s, int64_t now)
{
	/* The minimum of the whole: unknown stays unknown. */
	if (s->count && !r->count)
		r->lat_min = (int64_t)s->lat_min;
	else if (s->count && r->lat_min >= 0 &&
		 (int64_t)s->lat_min < r->lat_min)
		r->lat_min = (int64_t)s->lat_min;
	r->count += s->count;
	r->lat_sum += s->lat_sum;
	if (s->lat_max > r->lat_max)
		r->lat_max = s->lat_max;
	for (size_t k = 0; k < s->hist.n; k++)
		lat_hist_add(h, s->hist.v[k].bucket, s->hist.v[k].n);
	if (s->last_ms >= r->last_ms && s->last_ms) {
		r->last_ms = s->last_ms;
		r->last_ok = s->last_ok;
	}
	if (s->running)
		r->busy_until = now + SYMSTATS_LEASE_MS;
	else if (s->dirty && r->busy_until > now)
		r->busy_until = 0; /* ours ended */
	lat_hist_release(&s->hist);
	s->count = s->lat_sum = s->lat_max = s->lat_min = 0;
	s->dirty = false;
	s->merged = true;
}

static void merge_row(void *arg, const struct symstat_row *row)
{
	struct merge *m = arg;
	struct strmap_entry *e = strmap_get(&m->st->idx, row->symbol);
	struct symstat *s = e ? &m->st->v[e->value] : NULL;
	if (!s || s->merged || (!s->dirty && !s->running)) {
		row_format(&m->out, row);
		return;
	}
	struct symstat_row r = *row;
	struct lat_hist h = { NULL, 0, 0 };
	for (size_t k = 0; k < row->hist->n; k++)
		lat_hist_add(&h, row->hist->v[k].bucket, row->hist->v[k].n);
	r.hist = &h;
	merge_into(&r, &h, s, m->now);
	row_format(&m->out, &r);
	lat_hist_release(&h);
}

/*
 * After a flush only the symbols running now need an entry: the rest is in
 * the file.  So a process's memory follows what it runs at once, not every
 * symbol it has run (100,000 in one batch).
 */
static void forget_idle(struct symstats *st)
{
	size_t keep = 0;
	for (size_t i = 0; i < st->n; i++) {
		struct symstat *s = &st->v[i];
		if (s->running || s->dirty) {
			st->v[keep++] = *s;
		} else {
			free(s->symbol);
			lat_hist_release(&s->hist);
		}
	}
	if (keep == st->n)
		return;
	st->n = keep;
	strmap_release(&st->idx);
	for (size_t i = 0; i < st->n; i++)
		strmap_put(&st->idx, st->v[i].symbol, i);
	if (st->cap > 64 && st->n < st->cap / 4) {
		st->cap = st->n > 32 ? st->n * 2 : 64;
		st->v = xrealloc(st->v, st->cap * sizeof(*st->v));
	}
}

/*
 * Merge under the lock, streaming: each line of the file is copied or
 * merged with this process's changes as it is read, then the symbols the
 * file did not have are added.  Memory is the file's text twice, whatever
 * the number of symbols.
 */
int symstats_flush(struct symstats *st, int state_fd, int64_t now)
{
	bool leases = symstats_busy(st);
	if (!st->dirty && !leases)
		return 0;
	int lock = lock_file(state_fd);
	if (lock < 0)
		return -1;
	for (size_t i = 0; i < st->n; i++)
		st->v[i].merged = false;
	struct merge m = { st, SB_INIT, now };
	symstats_read(state_fd, merge_row, &m);
	for (size_t i = 0; i < st->n; i++) {
		struct symstat *s = &st->v[i];
		if (s->merged || (!s->dirty && !s->running))
			continue;
		struct symstat_row r = { .symbol = s->symbol, .lat_min = -1 };
		struct lat_hist h = { NULL, 0, 0 };
		r.hist = &h;
		merge_into(&r, &h, s, now);
		row_format(&m.out, &r);
		lat_hist_release(&h);
	}
	int rc = home_replace(state_fd, "symbols", m.out.buf ? m.out.buf : "",
			      m.out.len);
	sb_release(&m.out);
	close(lock);
	st->dirty = false;
	forget_idle(st);
	return rc;
}

void symstats_release(struct symstats *st)
{
	for (size_t i = 0; i < st->n; i++) {
		free(st->v[i].symbol);
		lat_hist_release(&st->v[i].hist);
	}
	free(st->v);
	strmap_release(&st->idx);
	memset(st, 0, sizeof(*st));
}
