#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

const char *progname = "runner";
int verbosity;
bool report_journal;

__attribute__((format(printf, 2, 0)))
static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	char buf[4096];
	/* journald's stream: the sd-daemon(3) priority, error or warning. */
	const char *level = !report_journal ? ""
			    : !strcmp(prefix, "warning: ") ? "<4>" : "<3>";
	int n = snprintf(buf, sizeof(buf), "%s%s: %s", level, progname, prefix);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	/* One line, always: a message never spans lines in the output. */
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "%s\n", buf);
}

int error(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
	errno = saved;
	return -1;
}

void warning(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	if (verbosity < 0)
		return;
	va_start(ap, fmt);
	vreport("warning: ", fmt, ap);
	va_end(ap);
	errno = saved;
}

void info(const char *fmt, ...)
{
	va_list ap;
	if (verbosity < 1)
		return;
	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
}

void die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
	exit(status);
}

void bug_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	char where[256];
	snprintf(where, sizeof(where), "BUG: %s:%d: ", file, line);
	va_start(ap, fmt);
	vreport(where, fmt, ap);
	va_end(ap);
	abort();
}

static void *oom(size_t n)
{
	die(EX_INTERNAL, "out of memory allocating %zu bytes", n);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	return p ? p : oom(n * size);
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	struct sb sb = SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return sb.buf;
}

void grow_array(void **p, size_t *cap, size_t n, size_t elem)
{
	size_t c = *cap;
	if (n <= c)
		return;
	c = c ? c : 8;
	while (c < n) {
		if (c > SIZE_MAX / 2 / elem)
			oom(SIZE_MAX);
		c *= 2;
	}
	*p = xrealloc(*p, c * elem);
	*cap = c;
}

/* The simulator's clock, when it runs one (util_clock_hook). */
static const int64_t *virtual_ms;

void util_clock_hook(const int64_t *now)
{
	virtual_ms = now;
}

int64_t now_ms(void)
{
	struct timespec ts;
	if (virtual_ms)
		return *virtual_ms;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ns(void)
{
	struct timespec ts;
	if (virtual_ms) /* one clock: the monotonic one is the same time */
		return *virtual_ms * 1000000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (*m <= 2));
}

char *fmt_time(int64_t ms, char buf[TIME_BUF])
{
	int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	int msec = (int)(ms - secs * 1000);
	int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t rem = secs - days * 86400;
	int y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) /* not a time a batch can have; keep 4 digits */
		y = y < 0 ? 0 : 9999;
	snprintf(buf, TIME_BUF, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y,
		 m % 13, d % 32, (int)(rem / 3600) % 24, (int)(rem / 60 % 60),
		 (int)(rem % 60), msec % 1000);
	return buf;
}

int edit_distance(const char *a, const char *b)
{
	size_t n = strnlen(a, 255), m = strnlen(b, 255);
	/* Three rows of the table: two back for a transposition. */
	unsigned char r0[256], r1[256], r2[256];
	unsigned char *pp = r0, *p = r1, *c = r2;
	for (size_t j = 0; j <= m; j++)
		p[j] = (unsigned char)j;
	for (size_t i = 1; i <= n; i++) {
		c[0] = (unsigned char)(i > 255 ? 255 : i);
		for (size_t j = 1; j <= m; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (p[j - 1] + cost < v)
				v = p[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = (unsigned char)(v > 255 ? 255 : v);
		}
		unsigned char *t = pp;
		pp = p, p = c, c = t;
	}
	return p[m];
}

const char *did_you_mean(const char *w, const char *const *words, size_t n)
{
	const char *best = NULL;
	int best_d = 3;
	bool tie = false;
	for (size_t i = 0; i < n; i++) {
		if (!words[i])
			continue;
		int d = edit_distance(w, words[i]);
		if (d < best_d) {
			best = words[i], best_d = d, tie = false;
		} else if (best && d == best_d && strcmp(best, words[i])) {
			tie = true;
		}
	}
	if (best)
		return tie ? NULL : best;
	/* A word cut short or with a wrong ending ("max_childs" for
	 * "max_children") is further than 2 away: the one word sharing the
	 * longest prefix, at least 4 bytes and all but 2 of w's. */
	size_t wl = strlen(w), best_p = 0;
	for (size_t i = 0; i < n; i++) {
		if (!words[i])
			continue;
		size_t p = 0;
		while (w[p] && w[p] == words[i][p])
			p++;
		if (p > best_p) {
			best = words[i], best_p = p, tie = false;
		} else if (p == best_p && best && strcmp(best, words[i])) {
			tie = true;
		}
	}
	if (best_p < 4 || best_p + 2 < wl || tie)
		return NULL;
	return best;
}

const char *plural(unsigned long long n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

char *fmt_duration(int64_t ms, char *buf, size_t n)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(buf, n, "%dms", (int)ms);
	else if (ms < 60000 && ms % 1000 / 100)
		snprintf(buf, n, "%d.%ds", (int)(ms / 1000),
			 (int)(ms % 1000 / 100));
	else if (ms < 60000)
		snprintf(buf, n, "%ds", (int)(ms / 1000));
	else if (ms < 3600000)
		snprintf(buf, n, "%dm%02ds", (int)(ms / 60000),
			 (int)(ms / 1000 % 60));
	else if (ms < 86400000)
		snprintf(buf, n, "%dh%02dm", (int)(ms / 3600000),
			 (int)(ms / 60000 % 60));
	else
		snprintf(buf, n, "%lldd%02dh", (long long)(ms / 86400000),
			 (int)(ms / 3600000 % 24));
	return buf;
}

char *fmt_rate(double per_s, char *buf, size_t n)
{
	if (!(per_s > 0) || !isfinite(per_s)) {
		snprintf(buf, n, "0");
	} else if (per_s >= 1) {
		snprintf(buf, n, "%.1f", per_s);
	} else {
		int decimals = 1 - (int)floor(log10(per_s));
		snprintf(buf, n, "%.*f", decimals > 9 ? 9 : decimals, per_s);
	}
	return buf;
}

#define WHY(...) do { if (why) snprintf(why, WHY_BUF, __VA_ARGS__); } while (0)

/* Digits only, no sign, no blanks; at most 18 digits so it cannot overflow. */
static int parse_digits(const char **sp, int64_t *out)
{
	const char *s = *sp;
	int64_t v = 0;
	int n = 0;
	while (isdigit((unsigned char)*s)) {
		if (++n > 18)
			return -1;
		v = v * 10 + (*s++ - '0');
	}
	if (!n)
		return -1;
	*sp = s;
	*out = v;
	return 0;
}

/* A bound as it would be written: the largest unit that divides it. */
static void fmt_bound_ms(int64_t ms, char *buf, size_t n)
{
	static const struct { int64_t ms; char unit; } u[] = {
		{ 86400000, 'd' }, { 3600000, 'h' }, { 60000, 'm' }, { 1000, 's' },
	};
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		if (ms >= u[i].ms && ms % u[i].ms == 0) {
			snprintf(buf, n, "%lld%c", (long long)(ms / u[i].ms),
				 u[i].unit);
			return;
		}
	snprintf(buf, n, "%lld.%03llds", (long long)(ms / 1000),
		 (long long)(ms % 1000));
}

/* A duration of at most max_ms (itself at most DURATION_MAX_MS): one or
 * more NUMBER UNIT parts, larger units first ("1h30m", "1d12h", "2w",
 * "1m05s", "850ms"), or a bare number of seconds. */
static int parse_dur_upto(const char *s, int64_t max_ms, int64_t *ms,
			  char *why)
{
	static const struct { const char *name; int64_t ms; } units[] = {
		{ "w", 7 * 86400000LL }, { "d", 86400000 }, { "h", 3600000 },
		{ "ms", 1 }, { "m", 60000 }, { "s", 1000 },
	};
	const char *p = s;
	int64_t total = 0, last = INT64_MAX;
	bool over = false;
	do {
		int64_t v, frac = 0, scale = 1, mult = 1000;
		if (parse_digits(&p, &v) < 0)
			goto bad;
		if (*p == '.') {
			/* A fraction is accepted ("0.5s"): useful for short
			 * timeouts. */
			p++;
			if (!isdigit((unsigned char)*p))
				goto bad;
			for (; isdigit((unsigned char)*p); p++)
				if (scale < 1000000)
					frac = frac * 10 + (*p - '0'), scale *= 10;
		}
		size_t u = 0, nu = sizeof(units) / sizeof(units[0]);
		while (u < nu && strncmp(p, units[u].name, strlen(units[u].name)))
			u++;
		if (u < nu) {
			mult = units[u].ms;
			p += strlen(units[u].name);
		} else if (*p || p != s + strspn(s, "0123456789.")) {
			goto bad;	/* only a lone number goes without unit */
		}
		/* Each part in a smaller unit than the one before. */
		if (mult >= last)
			goto bad;
		last = mult;
		if (v > DURATION_MAX_MS / mult)
			over = true;
		else
			total += v * mult + frac * mult / scale;
		if (total > DURATION_MAX_MS)
			over = true;
	} while (*p);
	if (over || total > max_ms) {
		char bound[32];
		fmt_bound_ms(max_ms, bound, sizeof(bound));
		WHY("at most %s (got %.64s)", bound, s);
		return -1;
	}
	*ms = total;
	return 0;
bad:
	WHY("not a duration (like 30s, 5m, 1h30m, 2d or 1w): %.64s", s);
	return -1;
}

int parse_duration_ms(const char *s, int64_t *ms, char *why)
{
	return parse_dur_upto(s, DURATION_MAX_MS, ms, why);
}

int parse_duration_max(const char *s, int64_t max_ms, int64_t *ms, char *why)
{
	return parse_dur_upto(s, max_ms < DURATION_MAX_MS ? max_ms
							: DURATION_MAX_MS,
			      ms, why);
}

int parse_size_max(const char *s, uint64_t max, uint64_t *bytes, char *why)
{
	static const char units[] = "KMGT";
	uint64_t v;
	char bound[32];
	if (parse_size(s, &v, why) < 0)
		return -1;
	if (v > max) {
		int k = 0;
		while (k < 4 && max % (1ull << (10 * (k + 1))) == 0 &&
		       max >= 1ull << (10 * (k + 1)))
			k++;
		if (k)
			snprintf(bound, sizeof(bound), "%llu%c",
				 (unsigned long long)(max >> (10 * k)),
				 units[k - 1]);
		else
			snprintf(bound, sizeof(bound), "%llu",
				 (unsigned long long)max);
		WHY("at most %s (got %.64s)", bound, s);
		return -1;
	}
	*bytes = v;
	return 0;
}

int parse_size(const char *s, uint64_t *bytes, char *why)
{
	const char *p = s;
	int64_t v;
	int shift = 0;
	if (parse_digits(&p, &v) < 0)
		goto bad;
	switch (toupper((unsigned char)*p)) {
	case '\0': break;
	case 'K': shift = 10; p++; break;
	case 'M': shift = 20; p++; break;
	case 'G': shift = 30; p++; break;
	case 'T': shift = 40; p++; break;
	case 'B': break;
	default: goto bad;
	}
	if (shift && *p == 'i')
		p++;
	if (*p == 'B' || *p == 'b')
		p++;
	if (*p)
		goto bad;
	if (v > (INT64_MAX >> shift)) {
		WHY("size too large: %.64s", s);
		return -1;
	}
	*bytes = (uint64_t)v << shift;
	return 0;
bad:
	WHY("not a size (N, NK, NM, NG or NT): %.64s", s);
	return -1;
}

int parse_int(const char *s, long long lo, long long hi, long long *out,
	      char *why)
{
	char *end;
	long long v;
	if (!*s || isspace((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		goto bad;
	if (v < lo || v > hi) {
		WHY("%.64s is out of range %lld..%lld", s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
bad:
	WHY("not an integer: %.64s", s);
	return -1;
}

int parse_double(const char *s, double lo, double hi, double *out, char *why)
{
	char *end;
	double v;
	if (!*s || isspace((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		goto bad;
	if (v < lo || v > hi) {
		WHY("%.64s is out of range %g..%g", s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
bad:
	WHY("not a number: %.64s", s);
	return -1;
}

static const unsigned month_days[] = { 31, 28, 31, 30, 31, 30,
				       31, 31, 30, 31, 30, 31 };

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Parse "YYYY-MM-DD" at *sp, advancing it. */
static int parse_ymd(const char **sp, int64_t *days)
{
	const char *s = *sp;
	int y, m, d;
	for (int i = 0; i < 10; i++) {
		bool dash = i == 4 || i == 7;
		if (dash ? s[i] != '-' : !isdigit((unsigned char)s[i]))
			return -1;
	}
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (m < 1 || m > 12 || d < 1)
		return -1;
	if (d > (int)month_days[m - 1] + (m == 2 && leap(y)))
		return -1;
	*days = days_from_civil(y, (unsigned)m, (unsigned)d);
	*sp = s + 10;
	return 0;
}

int parse_date(const char *s, int64_t *days, char *why)
{
	const char *p = s;
	if (parse_ymd(&p, days) < 0 || *p) {
		WHY("not a date (YYYY-MM-DD): %.64s", s);
		return -1;
	}
	return 0;
}

static int two_digits(const char *s, int max)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
		return -1;
	int v = (s[0] - '0') * 10 + (s[1] - '0');
	return v > max ? -1 : v;
}

int parse_time_or_ago(const char *s, int64_t now, int64_t *ms, char *why)
{
	int64_t d;
	if (parse_time_arg(s, ms, NULL) == 0)
		return 0;
	if (parse_duration_ms(s, &d, NULL) == 0) {
		*ms = now - d;
		return 0;
	}
	WHY("not a time (RFC 3339, YYYY-MM-DD, or a duration ago like 24h, "
	    "7d, 1h30m): %.64s", s);
	return -1;
}

int parse_time_arg(const char *s, int64_t *ms, char *why)
{
	const char *p = s;
	int64_t days, frac = 0;
	int hh, mm, ss, off = 0;
	if (parse_ymd(&p, &days) < 0)
		goto bad;
	if (!*p) {
		*ms = days * 86400000;
		return 0;
	}
	if (*p != 'T' && *p != 't' && *p != ' ')
		goto bad;
	p++;
	if ((hh = two_digits(p, 23)) < 0 || p[2] != ':' ||
	    (mm = two_digits(p + 3, 59)) < 0 || p[5] != ':' ||
	    (ss = two_digits(p + 6, 60)) < 0)
		goto bad;
	p += 8;
	if (*p == '.') {
		int digits = 0;
		p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		while (isdigit((unsigned char)*p)) {
			if (digits++ < 3)
				frac = frac * 10 + (*p - '0');
			p++;
		}
		while (digits++ < 3)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh = two_digits(p + 1, 23), om;
		if (oh < 0 || p[3] != ':' || (om = two_digits(p + 4, 59)) < 0)
			goto bad;
		off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		goto bad;
	}
	if (*p)
		goto bad;
	*ms = ((days * 86400 + hh * 3600 + mm * 60 + ss) - off * 60) * 1000 +
	      frac;
	return 0;
bad:
	WHY("not a time (RFC 3339 or YYYY-MM-DD): %.64s", s);
	return -1;
}

bool utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + n;
	while (s < end) {
		unsigned c = *s;
		size_t need;
		unsigned min;
		if (c < 0x80) {
			s++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			need = 1, min = 0x80, c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, min = 0x800, c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, min = 0x10000, c &= 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - s) <= need)
			return false;
		for (size_t i = 1; i <= need; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			c = (c << 6) | (s[i] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		s += need + 1;
	}
	return true;
}

bool has_control(const char *s, bool allow_tab)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f)
			return true;
		/* C1 controls U+0080..U+009F (0xC2 0x80..0x9F): CSI and the
		 * like drive terminals as surely as ESC does. */
		if (c == 0xc2 && (unsigned char)s[1] >= 0x80 &&
		    (unsigned char)s[1] <= 0x9f)
			return true;
	}
	return false;
}

bool str_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !memcmp(s + n - m, suffix, m);
}

int split_words(const char *s, char ***words, size_t *count, char *why)
{
	struct sb word = SB_INIT;
	char **v = NULL;
	size_t n = 0, cap = 0;
	bool in_word = false;

	for (;;) {
		char c = *s;
		if (c == '\0' || c == ' ' || c == '\t') {
			if (in_word) {
				GROW(v, cap, n + 2);
				v[n++] = word.buf ? word.buf : xstrdup("");
				word = (struct sb)SB_INIT;
				in_word = false;
			}
			if (!c)
				break;
			s++;
		} else if (c == '\'') {
			const char *close = strchr(s + 1, '\'');
			if (!close) {
				WHY("unterminated ' quote");
				goto fail;
			}
			sb_add(&word, s + 1, (size_t)(close - s - 1));
			sb_grow(&word, 0);
			in_word = true;
			s = close + 1;
		} else if (c == '"') {
			s++;
			for (;; s++) {
				if (!*s) {
					WHY("unterminated \" quote");
					goto fail;
				}
				if (*s == '"')
					break;
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				sb_addc(&word, *s);
			}
			sb_grow(&word, 0);
			in_word = true;
			s++;
		} else if (c == '\\') {
			if (!s[1]) {
				WHY("trailing backslash");
				goto fail;
			}
			sb_addc(&word, s[1]);
			in_word = true;
			s += 2;
		} else {
			sb_addc(&word, c);
			in_word = true;
			s++;
		}
	}
	GROW(v, cap, n + 1);
	v[n] = NULL;
	*words = v;
	*count = n;
	return 0;
fail:
	sb_release(&word);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return -1;
}

void words_free(char **words)
{
	if (!words)
		return;
	for (char **w = words; *w; w++)
		free(*w);
	free(words);
}

void sb_grow(struct sb *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap) {
		if (!sb->buf)
			BUG("sb without buffer");
		sb->buf[sb->len] = '\0';
		return;
	}
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			oom(need);
		cap *= 2;
	}
	sb->buf = xrealloc(sb->buf, cap);
	sb->cap = cap;
	sb->buf[sb->len] = '\0';
}

void sb_add(struct sb *sb, const void *data, size_t n)
{
	sb_grow(sb, n);
	if (!n)
		return;
	memcpy(sb->buf + sb->len, data, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_adds(struct sb *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_addc(struct sb *sb, char c)
{
	sb_grow(sb, 1);
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
}

void sb_vaddf(struct sb *sb, const char *fmt, va_list ap)
{
	va_list cp;
	int n;
	sb_grow(sb, 64);
	va_copy(cp, ap);
	n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, cp);
	va_end(cp);
	if (n < 0)
		BUG("vsnprintf failed");
	if ((size_t)n >= sb->cap - sb->len) {
		sb_grow(sb, (size_t)n);
		n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
	}
	sb->len += (size_t)n;
}

void sb_addf(struct sb *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(sb, fmt, ap);
	va_end(ap);
}

void sb_reset(struct sb *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

void sb_release(struct sb *sb)
{
	free(sb->buf);
	*sb = (struct sb)SB_INIT;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n = s[0] < 0x80		? 1
		   : (s[0] & 0xe0) == 0xc0 ? 2
		   : (s[0] & 0xf0) == 0xe0 ? 3
		   : (s[0] & 0xf8) == 0xf0 ? 4
					   : 0;
	for (size_t i = 1; i < n; i++)
		if (!s[i])
			return 0;
	return n && utf8_valid((const char *)s, n) ? n : 0;
}

void sb_add_escaped(struct sb *sb, const char *str, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t used = 0;
	while (*s) {
		char esc[16];
		const char *piece = esc;
		size_t n = utf8_seq(s), out = 0;
		if (*s == '\n' || *s == '\t' || *s == '\r') {
			out = (size_t)snprintf(esc, sizeof(esc), "\\%c",
					       *s == '\n' ? 'n' : *s == '\t' ? 't' : 'r');
			n = 1;
		} else if (!n || *s < 0x20 || *s == 0x7f ||
			   (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)) {
			/* control, C1 control, or a byte that is not UTF-8 */
			n = n ? n : 1;
			for (size_t i = 0; i < n; i++)
				out += (size_t)snprintf(esc + out,
							sizeof(esc) - out,
							"\\x%02x", s[i]);
		} else {
			piece = (const char *)s;
			out = n;
		}
		if (used + out > max) {
			sb_adds(sb, "...");
			return;
		}
		sb_add(sb, piece, out);
		used += out;
		s += n;
	}
}

int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		off += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int read_fd_bounded(int fd, size_t max, struct sb *out)
{
	char buf[65536];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return 0;
		if (out->len + (size_t)r > max) {
			errno = EFBIG;
			return -1;
		}
		sb_add(out, buf, (size_t)r);
	}
}

/* A seeded generator for the simulator (splitmix64), 0: the kernel's. */
static uint64_t seeded;

void util_random_seed(uint64_t seed)
{
	seeded = seed;
}

void random_bytes(void *buf, size_t n)
{
	char *p = buf;
	if (seeded) {
		while (n) {
			uint64_t z = (seeded += 0x9e3779b97f4a7c15ULL);
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
			z ^= z >> 31;
			size_t k = n < sizeof(z) ? n : sizeof(z);
			memcpy(p, &z, k);
			p += k;
			n -= k;
		}
		return;
	}
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die(EX_INTERNAL, "getrandom: %s", strerror(errno));
		}
		p += r;
		n -= (size_t)r;
	}
}

uint64_t random_u64(void)
{
	uint64_t v;
	random_bytes(&v, sizeof(v));
	return v;
}

uint64_t hash64(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void strmap_insert_slot(struct strmap *m, struct strmap_entry e)
{
	size_t mask = m->cap - 1, i = (size_t)e.hash & mask;
	while (m->slots[i].key)
		i = (i + 1) & mask;
	m->slots[i] = e;
}

struct strmap_entry *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	uint64_t h = hash64(key, strlen(key));
	size_t mask = m->cap - 1, i = (size_t)h & mask;
	while (m->slots[i].key) {
		if (m->slots[i].hash == h && !strcmp(m->slots[i].key, key))
			return &m->slots[i];
		i = (i + 1) & mask;
	}
	return NULL;
}

struct strmap_entry *strmap_put(struct strmap *m, const char *key, size_t value)
{
	struct strmap_entry *e = strmap_get(m, key);
	if (e)
		return e;
	if ((m->n + 1) * 2 > m->cap) {
		struct strmap_entry *old = m->slots;
		size_t oldcap = m->cap;
		m->cap = m->cap ? m->cap * 2 : 64;
		m->slots = xcalloc(m->cap, sizeof(*m->slots));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].key)
				strmap_insert_slot(m, old[i]);
		free(old);
	}
	strmap_insert_slot(m, (struct strmap_entry){
		key, value, hash64(key, strlen(key)) });
	m->n++;
	return NULL;
}

void strmap_release(struct strmap *m)
{
	free(m->slots);
	*m = (struct strmap)STRMAP_INIT;
}
