#include "symstats.h"
#include "home.h"

#include <errno.h>
#include <fcntl.h>
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
	s->last_ms = now;
	s->count++;
	s->lat_sum += latency_ms > 0 ? (uint64_t)latency_ms : 0;
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

struct row {
	char *symbol;
	int64_t last_ms, busy_until;
	uint64_t count, lat_sum;
	bool last_ok;
};

struct table {
	struct row *v;
	size_t n, cap;
	struct strmap idx;
};

static void table_add(void *arg, const struct symstat_row *r)
{
	struct table *t = arg;
	GROW(t->v, t->cap, t->n + 1);
	t->v[t->n] = (struct row){ xstrdup(r->symbol), r->last_ms,
				   r->busy_until, r->count, r->lat_sum,
				   r->last_ok };
	t->n++;
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
		char *f[6];
		int nf = 0;
		for (char *q = p; nf < 6;) {
			f[nf++] = q;
			char *tab = strchr(q, '\t');
			if (!tab)
				break;
			*tab = '\0';
			q = tab + 1;
		}
		if (nf == 6 && *f[0]) {
			struct symstat_row r = {
				f[0], strtoll(f[1], NULL, 10),
				strtoull(f[2], NULL, 10), strtoull(f[3], NULL, 10),
				f[4][0] == '1', strtoll(f[5], NULL, 10),
			};
			fn(arg, &r);
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
	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
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

int symstats_flush(struct symstats *st, int state_fd, int64_t now)
{
	struct table t = { 0 };
	bool leases = symstats_busy(st);
	if (!st->dirty && !leases)
		return 0;
	int lock = lock_file(state_fd);
	if (lock < 0)
		return -1;
	symstats_read(state_fd, table_add, &t);
	for (size_t i = 0; i < t.n; i++)
		strmap_put(&t.idx, t.v[i].symbol, i);
	for (size_t i = 0; i < st->n; i++) {
		struct symstat *s = &st->v[i];
		if (!s->dirty && !s->running)
			continue;
		struct strmap_entry *e = strmap_get(&t.idx, s->symbol);
		struct row *r;
		if (e) {
			r = &t.v[e->value];
		} else {
			GROW(t.v, t.cap, t.n + 1);
			r = &t.v[t.n];
			memset(r, 0, sizeof(*r));
			r->symbol = xstrdup(s->symbol);
			strmap_put(&t.idx, r->symbol, t.n);
			t.n++;
		}
		r->count += s->count;
		r->lat_sum += s->lat_sum;
		if (s->last_ms >= r->last_ms && s->last_ms) {
			r->last_ms = s->last_ms;
			r->last_ok = s->last_ok;
		}
		if (s->running)
			r->busy_until = now + SYMSTATS_LEASE_MS;
		else if (s->dirty && r->busy_until > now)
			r->busy_until = 0; /* ours ended */
		s->count = s->lat_sum = 0;
		s->dirty = false;
	}
	struct sb out = SB_INIT;
	for (size_t i = 0; i < t.n; i++) {
		struct row *r = &t.v[i];
		sb_addf(&out, "%s\t%lld\t%llu\t%llu\t%d\t%lld\n", r->symbol,
			(long long)r->last_ms, (unsigned long long)r->count,
			(unsigned long long)r->lat_sum, r->last_ok ? 1 : 0,
			(long long)r->busy_until);
		free(r->symbol);
	}
	free(t.v);
	strmap_release(&t.idx);
	int rc = home_replace(state_fd, "symbols", out.buf ? out.buf : "",
			      out.len);
	sb_release(&out);
	close(lock);
	st->dirty = false;
	return rc;
}

void symstats_release(struct symstats *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->v[i].symbol);
	free(st->v);
	strmap_release(&st->idx);
	memset(st, 0, sizeof(*st));
}
