/*
 * util: the bottom of the dependency graph.  Error reporting, allocation,
 * time, the duration/size/date parsers shared by the configuration and job
 * parsers, a growable string buffer and shell-like word splitting.
 *
 * The one convention for errors, in three tiers:
 *  - a function returns 0 (or a pointer, a count) on success and -1 (or
 *    NULL) on failure with errno meaningful; it prints nothing unless it
 *    is the one that knows what the user must be told, then it prints one
 *    line through error() ("runner: WHAT: WHY", file:line for an input
 *    file), which returns -1 for `return error(...)`; a warning() is one
 *    line that does not fail.  Parsers never print: they fill a caller's
 *    buffer with a short reason ("not a duration: 5x") for the caller to
 *    prefix with file:line.
 *  - a command (cli.h, cmd_*.c) turns a failure into an exit status from
 *    the table below, once: 0 success; 1 some item failed or was
 *    cancelled, or a batch waits only on paused items; 64 usage; 65 an
 *    invalid job file; 66 no such batch, group or file; 70 internal;
 *    73 cannot create, 74 I/O error (a full disk included); 75 temporary
 *    (a lock is held, an owner does not answer: try again); 78 a bad
 *    configuration.  Only main() and die() exit.
 *  - BUG() is for a broken invariant: it prints where and aborts.
 *
 * Allocation failure is treated as fatal (exit 70): the runner cannot keep
 * its promises without memory, and every durable record is already on disk.
 */
#ifndef RUNNER_UTIL_H
#define RUNNER_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit statuses (the table above). */
enum {
	EX_OK_ = 0,
	EX_SOME_FAILED = 1,
	EX_USAGE_ = 64,
	EX_INVALID_JOB = 65,
	EX_NO_SUCH = 66,
	EX_INTERNAL = 70,
	EX_CANTCREAT_ = 73,
	EX_IOERR_ = 74,
	EX_TEMPFAIL_ = 75,
	EX_CONFIG_ = 78,
};

extern const char *progname;
extern int verbosity; /* -1 quiet, 0 normal, 1 verbose */
/* stderr is journald's stream (runlog_stderr sets it): error() and
 * warning() lines start with their sd-daemon(3) priority, <3> or <4>. */
extern bool report_journal;

int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void bug_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define BUG(...) bug_at(__FILE__, __LINE__, __VA_ARGS__)

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Grow *p (of *cap elements of size elem) to hold at least n elements. */
void grow_array(void **p, size_t *cap, size_t n, size_t elem);
#define GROW(p, cap, n) grow_array((void **)&(p), &(cap), (n), sizeof(*(p)))

/* Time.  Wall-clock milliseconds since the epoch, and monotonic time. */
int64_t now_ms(void);
int64_t mono_ns(void);
/* The simulator (tests/sim) runs the engine on a virtual clock: both times
 * read *now (ms) while it is set; NULL goes back to the real clocks.  And
 * a seeded random source (0: the kernel's), so that a seed replays. */
void util_clock_hook(const int64_t *now);
void util_random_seed(uint64_t seed);
static inline int64_t mono_ms(void) { return mono_ns() / 1000000; }
/* RFC 3339 UTC with milliseconds: "2026-11-24T18:20:14.123Z" (25 bytes). */
#define TIME_BUF 32
char *fmt_time(int64_t ms, char buf[TIME_BUF]);
/* A duration for people, the one way text output writes one: "850ms",
 * "6s", "1.5s" (tenths, truncated, below a minute), "1m05s", "2h03m",
 * "3d04h"; parse_duration_ms reads each back (to that precision). */
char *fmt_duration(int64_t ms, char *buf, size_t n);
/* A rate for people: one decimal from 1 up, two significant digits below
 * (0.042, never 0.0 for a rate that is not 0). */
char *fmt_rate(double per_s, char *buf, size_t n);

/* Damerau-Levenshtein distance (optimal string alignment) of a and b,
 * counted up to 255 bytes of each; and the one word of words[0..n) (NULL
 * entries skipped) within distance 2 of w and nearer than any other, or
 * else the one sharing w's first bytes but for at most 2 of them (4 at
 * least: "max_childs" for "max_children"), for a "did you mean" (NULL:
 * none, or a tie). */
int edit_distance(const char *a, const char *b);
const char *did_you_mean(const char *w, const char *const *words, size_t n);

/* The noun for n things in text people read: one when n is 1, else many.
 * printf("%zu %s", n, plural(n, "item", "items")): "1 item", "0 items". */
const char *plural(unsigned long long n, const char *one, const char *many);

/*
 * Parsers.  On failure they return -1 and, when why is not NULL, store a
 * short reason in why (at most 128 bytes).
 */
#define WHY_BUF 160
/* DUR: a bare number of seconds, or NUMBER UNIT parts, larger units
 * first, units ms, s, m, h, d, w ("90s", "1h30m", "1d12h", "2w", "0.5s",
 * "850ms"), at most
 * DURATION_MAX_MS (100 years: in nanoseconds still far from INT64_MAX). */
#define DURATION_MAX_MS (36500 * 86400000LL)
int parse_duration_ms(const char *s, int64_t *ms, char *why);
/* SIZE: "N", "NK", "NM", "NG", "NT" (binary multiples, optional "B"/"iB"). */
int parse_size(const char *s, uint64_t *bytes, char *why);
/* The same, refusing more than max with why "at most 365d (got 400d)"
 * (the bound written in its largest whole unit), for the caller to
 * prefix with the key. */
int parse_duration_max(const char *s, int64_t max_ms, int64_t *ms, char *why);
int parse_size_max(const char *s, uint64_t max, uint64_t *bytes, char *why);

/* a + b, and base_ns + ms milliseconds, saturating at the int64 limits:
 * a deadline computed from a configured (or journaled) duration never
 * wraps into the past. */
static inline int64_t add_sat(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}
static inline int64_t deadline_ns(int64_t base_ns, int64_t ms)
{
	int64_t ns;
	if (__builtin_mul_overflow(ms, (int64_t)1000000, &ns))
		ns = ms > 0 ? INT64_MAX : INT64_MIN;
	return add_sat(base_ns, ns);
}
/* A decimal integer in [lo, hi]. */
int parse_int(const char *s, long long lo, long long hi, long long *out,
	      char *why);
/* A decimal number in [lo, hi]. */
int parse_double(const char *s, double lo, double hi, double *out, char *why);
/* A real calendar date YYYY-MM-DD; *days = days since 1970-01-01. */
int parse_date(const char *s, int64_t *days, char *why);
/* RFC 3339 (with 'Z' or an offset) or a date YYYY-MM-DD (midnight UTC). */
int parse_time_arg(const char *s, int64_t *ms, char *why);
/* What --since and --until read: a time as parse_time_arg, or a duration
 * DUR meaning DUR ago ("24h", "7d", "1h30m"): now - DUR. */
int parse_time_or_ago(const char *s, int64_t now, int64_t *ms, char *why);

bool utf8_valid(const char *s, size_t n);
/* Nonzero when s holds a byte < 0x20 (other than tab when allow_tab) or 0x7f. */
bool has_control(const char *s, bool allow_tab);
bool str_has_suffix(const char *s, const char *suffix);

/*
 * Shell-like word splitting for argv-valued settings ("command", "launcher",
 * "env"): blanks separate words, '...' and "..." quote, backslash escapes.
 * No expansion of any kind happens.  Returns a NULL-terminated vector in
 * *words (free with words_free) and the count, or -1 with why set.
 */
int split_words(const char *s, char ***words, size_t *count, char *why);
void words_free(char **words);

/* Growable byte buffer, always NUL-terminated when len > 0 or after sb_addf. */
struct sb {
	char *buf;
	size_t len, cap;
};
#define SB_INIT { NULL, 0, 0 }
void sb_grow(struct sb *sb, size_t extra);
void sb_add(struct sb *sb, const void *data, size_t n);
void sb_adds(struct sb *sb, const char *s);
void sb_addc(struct sb *sb, char c);
void sb_addf(struct sb *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sb_vaddf(struct sb *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void sb_reset(struct sb *sb);
void sb_release(struct sb *sb);
/*
 * Append s with control characters (C0, DEL, C1) and bytes that are not
 * UTF-8 escaped (\n, \t, \xNN): the result is valid UTF-8 and safe for a
 * log line or a JSON string.  At most max bytes are added (then "..."),
 * never cutting a character or an escape.
 */
void sb_add_escaped(struct sb *sb, const char *s, size_t max);

/* I/O helpers that retry on EINTR and short counts. */
int write_all(int fd, const void *buf, size_t n);
/* pwrite all of buf at off: 0, or -1 with errno. */
int pwrite_all(int fd, const void *buf, size_t n, off_t off);
ssize_t read_all(int fd, void *buf, size_t n);
/* Read a whole regular file (at most max bytes) through an open fd. */
int read_fd_bounded(int fd, size_t max, struct sb *out);

/* Random bytes from getrandom(2). */
void random_bytes(void *buf, size_t n);
uint64_t random_u64(void);

/* FNV-1a, for hash tables and slot offsets. */
uint64_t hash64(const char *s, size_t n);


/*
 * strmap: open-addressing hash map from a string (owned by the caller, who
 * keeps it alive and unchanged) to a size_t.  Used for symbol dedup and
 * lookups in batches of up to a million items.
 */
struct strmap_entry {
	const char *key;
	size_t value;
	uint64_t hash;
};
struct strmap {
	struct strmap_entry *slots;
	size_t cap, n;
};
#define STRMAP_INIT { NULL, 0, 0 }
/* Returns the existing entry for key, or inserts (key, value) and returns NULL. */
struct strmap_entry *strmap_put(struct strmap *m, const char *key, size_t value);
struct strmap_entry *strmap_get(const struct strmap *m, const char *key);
void strmap_release(struct strmap *m);

#endif
