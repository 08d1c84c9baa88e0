#include "correlate.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || strchr("^=._-", c);
}

/* A number, a date or a time: digits, with '.', ',', '-', ':' or '/'
 * between them ("1,000", "3.14", "2024-01-15", "12:30:00"), or a leading
 * sign ("-5"). */
static bool is_number(const char *w, size_t n)
{
	bool digit = false;
	for (size_t i = 0; i < n; i++) {
		if (isdigit((unsigned char)w[i]))
			digit = true;
		else if (!strchr(".,-:/+", w[i]) ||
			 (i && !isdigit((unsigned char)w[i - 1])) ||
			 (i + 1 < n && !isdigit((unsigned char)w[i + 1])))
			return false;
	}
	return digit;
}

/* The length of the number at p (with separators between digits), 0 if
 * there is none. */
static size_t number_len(const char *p)
{
	size_t n = 0;
	if ((p[0] == '-' || p[0] == '+') && isdigit((unsigned char)p[1]))
		n = 1;
	if (!isdigit((unsigned char)p[n]))
		return 0;
	for (;;) {
		while (isdigit((unsigned char)p[n]))
			n++;
		if (p[n] && strchr(".,-:/", p[n]) && isdigit((unsigned char)p[n + 1]))
			n++;
		else
			return n;
	}
}

/* Ticker-like: the item's own symbol, or 1-10 characters of capitals,
 * digits and the symbol punctuation, with at least one capital letter. */
static bool is_ticker(const char *w, size_t n, const char *symbol)
{
	if (symbol && strlen(symbol) == n && !memcmp(w, symbol, n))
		return true;
	if (n > 10)
		return false;
	bool upper = false;
	for (size_t i = 0; i < n; i++) {
		char c = w[i];
		if (isupper((unsigned char)c))
			upper = true;
		else if (!isdigit((unsigned char)c) && !strchr("^=.-", c))
			return false;
	}
	return upper;
}

void correlate_normalize(const char *msg, const char *symbol, struct sb *out)
{
	const char *p = msg ? msg : "";
	sb_grow(out, strlen(p));
	while (*p) {
		/* A number standing on its own ("1,000", "2024-01-15", "-5"),
		 * not the start of a word ("7203.T" is a ticker). */
		size_t num = (p == msg || !word_char(p[-1])) ? number_len(p) : 0;
		if (num && !isalpha((unsigned char)p[num]) &&
		    !(strchr(".^=_-", p[num]) && p[num] &&
		      isalnum((unsigned char)p[num + 1]))) {
			sb_adds(out, "NUM");
			p += num;
			continue;
		}
		if (!word_char(*p)) {
			sb_addc(out, *p++);
			continue;
		}
		const char *w = p;
		while (*p && word_char(*p))
			p++;
		size_t n = (size_t)(p - w);
		/* Sentence punctuation is not part of the word. */
		while (n > 1 && strchr(".-_", w[n - 1]))
			n--;
		if (is_number(w, n))
			sb_adds(out, "NUM");
		else if (is_ticker(w, n, symbol))
			sb_adds(out, "TICKER");
		else
			sb_add(out, w, n);
		sb_add(out, w + n, (size_t)(p - w) - n);
	}
}

void correlate_fill(struct failure *f, struct sb *storage,
		    char sig[SIG_LEN + 1])
{
	struct sb key = SB_INIT;
	sb_reset(storage);
	correlate_normalize(f->message, f->symbol, storage);
	f->norm = storage->buf ? storage->buf : "";
	sb_addf(&key, "%s\x1f%s\x1f%s\x1f%s\x1f%s", f->agent ? f->agent : "",
		f->category ? f->category : "", f->type ? f->type : "",
		f->source ? f->source : "", f->norm);
	snprintf(sig, SIG_LEN + 1, "%016llx",
		 (unsigned long long)hash64(key.buf, key.len));
	sb_release(&key);
}

/* needle as a whole word (not inside a ticker like CDNS). */
static bool has_word_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; p && *p; p++)
		if (!strncasecmp(p, needle, n) &&
		    (p == hay || !isalnum((unsigned char)p[-1])) &&
		    !isalnum((unsigned char)p[n]))
			return true;
	return false;
}

static bool has_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; hay && *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return false;
}

/* A three-digit number in the text within [lo, hi], as a word. */
static bool has_code(const char *s, int lo, int hi)
{
	for (const char *p = s; p && *p; p++) {
		if (!isdigit((unsigned char)*p) ||
		    (p > s && isalnum((unsigned char)p[-1])))
			continue;
		int v = 0, n = 0;
		while (isdigit((unsigned char)p[n]) && n < 4)
			v = v * 10 + (p[n] - '0'), n++;
		if (n == 3 && !isalnum((unsigned char)p[n]) && v >= lo && v <= hi)
			return true;
		p += n - 1;
	}
	return false;
}

int correlate_cause(const struct failure *f)
{
	const char *t = f->type ? f->type : "", *m = f->message;
	if (has_ci(t, "ratelimit") || has_ci(t, "rate_limit") ||
	    has_ci(t, "throttl") || has_code(m, 429, 429) ||
	    has_ci(m, "rate limit") || has_ci(m, "too many requests") ||
	    has_ci(m, "throttl"))
		return CAUSE_RATE_LIMIT;
	if (has_code(m, 401, 401) || has_code(m, 403, 403) ||
	    has_ci(t, "auth") || has_ci(m, "unauthorized") ||
	    has_ci(m, "forbidden") || has_ci(m, "authenticat") ||
	    has_ci(m, "api key"))
		return CAUSE_AUTH;
	if (has_ci(t, "timeout") || has_ci(m, "timed out") ||
	    has_ci(m, "timeout") || has_code(m, 504, 504))
		return CAUSE_TIMEOUT;
	if (has_code(m, 500, 599) || has_ci(t, "connection") ||
	    has_ci(t, "network") || has_ci(m, "connection refused") ||
	    has_ci(m, "connection reset") || has_ci(m, "network") ||
	    has_ci(m, "unreachable") || has_ci(m, "name resolution") ||
	    has_word_ci(m, "dns"))
		return CAUSE_NETWORK;
	/* After the network words: classification files a refused
	 * connection under "timeout" too (classify.c). */
	if (f->category && !strcmp(f->category, "timeout"))
		return CAUSE_TIMEOUT;
	return CAUSE_GENERIC;
}

void correlate_root_cause(const struct failure *f, struct sb *out)
{
	const char *src = f->source && *f->source ? f->source : NULL;
	const char *who = src ? src : f->agent;
	switch (correlate_cause(f)) {
	case CAUSE_RATE_LIMIT:
		sb_addf(out, "%s API rate limit exceeded", who);
		break;
	case CAUSE_AUTH:
		sb_addf(out, "%s API authentication failure", who);
		break;
	case CAUSE_TIMEOUT:
		sb_addf(out, "%s API timeout", who);
		break;
	case CAUSE_NETWORK:
		sb_addf(out, "%s network connectivity issue", who);
		break;
	default:
		if (src)
			sb_addf(out, "%s failure via %s", f->agent, src);
		else
			sb_addf(out, "%s failure", f->agent);
	}
}

void correlate_init(struct correlator *c, int64_t window_ms, int min_group)
{
	memset(c, 0, sizeof(*c));
	c->window_ms = window_ms;
	c->min_group = min_group;
}

static void sig_free(struct corr_sig *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->ev[i].symbol);
		free(s->ev[i].batch);
	}
	free(s->ev);
	free(s);
}

void correlate_release(struct correlator *c)
{
	for (size_t i = 0; i < c->nsigs; i++)
		sig_free(c->sigs[i]);
	free(c->sigs);
	strmap_release(&c->index);
	memset(c, 0, sizeof(*c));
}

static void expire(struct corr_sig *s, int64_t since)
{
	size_t k = 0;
	while (k < s->n && s->ev[k].ms < since) {
		free(s->ev[k].symbol);
		free(s->ev[k].batch);
		k++;
	}
	if (k) {
		memmove(s->ev, s->ev + k, (s->n - k) * sizeof(*s->ev));
		s->n -= k;
	}
}

const struct corr_sig *correlate_add(struct correlator *c, const char *sig,
				     const char *symbol, const char *batch,
				     int64_t ms, size_t *distinct)
{
	const struct corr_sig *s =
		correlate_add_flagged(c, sig, symbol, batch, ms, false);
	if (distinct)
		*distinct = correlate_distinct(c, s);
	return s;
}

const struct corr_sig *correlate_add_flagged(struct correlator *c,
					     const char *sig, const char *symbol,
					     const char *batch, int64_t ms,
					     bool alerted)
{
	struct strmap_entry *e = strmap_get(&c->index, sig);
	struct corr_sig *s;
	if (e) {
		s = c->sigs[e->value];
	} else {
		s = xcalloc(1, sizeof(*s));
		snprintf(s->sig, sizeof(s->sig), "%s", sig);
		GROW(c->sigs, c->capsigs, c->nsigs + 1);
		c->sigs[c->nsigs] = s;
		strmap_put(&c->index, s->sig, c->nsigs);
		c->nsigs++;
	}
	expire(s, ms - c->window_ms);
	GROW(s->ev, s->cap, s->n + 1);
	/* Events from several processes may arrive slightly out of order:
	 * keep the window sorted by time. */
	size_t at = s->n;
	while (at > 0 && s->ev[at - 1].ms > ms)
		at--;
	memmove(s->ev + at + 1, s->ev + at, (s->n - at) * sizeof(*s->ev));
	s->ev[at] = (struct corr_event){ ms, xstrdup(symbol),
					 xstrdup(batch ? batch : ""), alerted };
	s->n++;
	if (ms > s->last_ms)
		s->last_ms = ms;
	/* A signature failing without end keeps a bounded window. */
	if (s->n > 4096) {
		size_t drop = s->n - 4096;
		for (size_t i = 0; i < drop; i++) {
			free(s->ev[i].symbol);
			free(s->ev[i].batch);
		}
		memmove(s->ev, s->ev + drop, 4096 * sizeof(*s->ev));
		s->n = 4096;
	}
	return s;
}

bool correlate_would_form(const struct correlator *c, const char *sig,
			  const char *symbol, int64_t ms)
{
	struct strmap_entry *e = strmap_get(&c->index, sig);
	size_t want = (size_t)c->min_group, d = 0;
	if (want <= 1)
		return true;
	if (!e)
		return false;
	const struct corr_sig *s = c->sigs[e->value];
	struct strmap seen = STRMAP_INIT;
	strmap_put(&seen, symbol, 0);
	d = 1;
	for (size_t i = s->n; i-- > 0 && d < want;)
		if (s->ev[i].ms >= ms - c->window_ms &&
		    !strmap_put(&seen, s->ev[i].symbol, i))
			d++;
	strmap_release(&seen);
	return d >= want;
}

void correlate_drop_symbol(struct correlator *c, const char *symbol)
{
	for (size_t i = 0; i < c->nsigs; i++) {
		struct corr_sig *s = c->sigs[i];
		size_t keep = 0;
		for (size_t k = 0; k < s->n; k++) {
			if (strcmp(s->ev[k].symbol, symbol)) {
				s->ev[keep++] = s->ev[k];
				continue;
			}
			free(s->ev[k].symbol);
			free(s->ev[k].batch);
		}
		s->n = keep;
	}
}

size_t correlate_distinct(const struct correlator *c, const struct corr_sig *s)
{
	/* Counting stops at min_group: that is all a caller asks. */
	size_t want = (size_t)c->min_group, d = 0;
	struct strmap seen = STRMAP_INIT;
	for (size_t i = s->n; i-- > 0 && d < want;)
		if (!strmap_put(&seen, s->ev[i].symbol, i))
			d++;
	strmap_release(&seen);
	return d;
}

void correlate_forget(struct correlator *c, const char *sig)
{
	struct strmap_entry *e = strmap_get(&c->index, sig);
	if (!e)
		return;
	struct corr_sig *s = c->sigs[e->value];
	expire(s, INT64_MAX);
}

void correlate_prune(struct correlator *c, int64_t ms)
{
	size_t keep = 0;
	strmap_release(&c->index);
	for (size_t i = 0; i < c->nsigs; i++) {
		struct corr_sig *s = c->sigs[i];
		if (s->last_ms < ms - c->window_ms) {
			sig_free(s);
			continue;
		}
		c->sigs[keep] = s;
		strmap_put(&c->index, s->sig, keep);
		keep++;
	}
	c->nsigs = keep;
}
