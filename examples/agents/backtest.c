/*
 * backtest.c - example runner agent: moving-average crossover backtest of
 * one symbol over daily OHLCV bars.
 *
 * Usage: backtest [--strategy sma] [--data DIR] SYMBOL
 *
 * Data: DIR/SYMBOL.csv with header "date,open,high,low,close,volume" and one
 * bar per line in ascending date order (see examples/gen-data.c).  DIR is
 * --data, else $BACKTEST_DATA, else "examples/data" (relative to the
 * current directory).
 *
 * Environment:
 *   RUNNER_START, RUNNER_END   YYYY-MM-DD, inclusive; unset or empty = open
 *   RUNNER_PARAM_FAST          fast SMA window, positive integer (default 10)
 *   RUNNER_PARAM_SLOW          slow SMA window, positive integer (default 50)
 *   RUNNER_RESULT              where to write the result JSON (tmp + rename);
 *                              unset or empty = print it to stdout
 *   RUNNER_CHECKPOINT          accepted and ignored (the run is one pass)
 *
 * Strategy: a signal ("match") is emitted whenever the sign of
 * SMA(fast) - SMA(slow) of the close changes: crossing above is a buy (go
 * long at that bar's close), crossing below is a sell (go flat at that bar's
 * close).  The strategy starts flat with equity 1.0 and has no costs.
 *
 * Exit status: 0 ok; 64 (EX_USAGE) bad usage, unknown strategy or bad
 * parameter; 65 (EX_DATAERR) no data for the symbol/range or malformed CSV;
 * 70 (EX_SOFTWARE) out of memory; 74 (EX_IOERR) I/O error.  For every status
 * except 0 a result JSON {"error":{"type","category","message","retryable"}}
 * is written as well (where possible), with one of the runner's categories:
 * parameter_error (64), data_error (65), memory_error (70), engine_error (74).
 */

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define EX_OK_ 0
#define EX_USAGE_ 64
#define EX_DATAERR_ 65
#define EX_SOFTWARE_ 70
#define EX_IOERR_ 74

#define DEFAULT_DATA_DIR "examples/data"
#define DEFAULT_FAST 10
#define DEFAULT_SLOW 50
#define MAX_WINDOW 1000000L
#define MAX_LINE 1024 /* longest accepted CSV line, excluding newline */
#define MAX_SYMBOL 32
#define TRADING_DAYS 252.0

static const char *const PROG = "backtest";

struct bars {
    int32_t *date;  /* YYYYMMDD */
    double *close;
    size_t n, cap;
};

struct metrics {
    long matches;
    long trades;
    double total_return, sharpe, max_drawdown;
    double win_rate; /* closed long positions that gained, of all closed */
};

/* ---- error reporting --------------------------------------------------- */

/* Print "backtest: MSG" to stderr and return exit code. */
static void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errmsg(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", PROG);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- result output ----------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
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

/*
 * Serialise json and write it to $RUNNER_RESULT (via PATH.tmp.PID and
 * rename) or, when that is unset or empty, to stdout.  Returns 0 or -1
 * (after printing a message).
 */
static int emit_json(const cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    if (!text) {
        errmsg("out of memory serialising result");
        return -1;
    }
    int rc = 0;
    const char *path = getenv("RUNNER_RESULT");
    if (!path || !*path) {
        if (printf("%s\n", text) < 0 || fflush(stdout) != 0) {
            errmsg("writing result to stdout: %s", strerror(errno));
            rc = -1;
        }
        cJSON_free(text);
        return rc;
    }

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        errmsg("out of memory");
        cJSON_free(text);
        return -1;
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        errmsg("cannot create %s: %s", tmp, strerror(errno));
        rc = -1;
    } else {
        size_t len = strlen(text);
        text[len] = '\n'; /* overwrite NUL; length passed explicitly */
        if (write_all(fd, text, len + 1) < 0) {
            errmsg("write %s: %s", tmp, strerror(errno));
            rc = -1;
        }
        text[len] = '\0';
        if (rc == 0 && fsync(fd) < 0 && errno != EINVAL && errno != EROFS) {
            errmsg("fsync %s: %s", tmp, strerror(errno));
            rc = -1;
        }
        if (close(fd) < 0 && rc == 0) {
            errmsg("close %s: %s", tmp, strerror(errno));
            rc = -1;
        }
        if (rc == 0 && rename(tmp, path) < 0) {
            errmsg("rename %s -> %s: %s", tmp, path, strerror(errno));
            rc = -1;
        }
        if (rc != 0)
            unlink(tmp);
    }
    free(tmp);
    cJSON_free(text);
    return rc;
}

/* Categories are the runner's (SPEC 6.2); I/O failures count as engine_error. */
static const char *category_for(int code)
{
    switch (code) {
    case EX_USAGE_: return "parameter_error";
    case EX_DATAERR_: return "data_error";
    case EX_SOFTWARE_: return "memory_error"; /* only used for allocation failures */
    default: return "engine_error";
    }
}

/*
 * Report a failure: one line on stderr (detail) and an error result JSON
 * (message).  Returns code, for "return fail(...)".
 */
static int fail(int code, const char *type, const char *message, const char *detail)
{
    errmsg("%s", detail ? detail : message);
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    if (!root || !err || !cJSON_AddStringToObject(err, "type", type) ||
        !cJSON_AddStringToObject(err, "category", category_for(code)) ||
        !cJSON_AddStringToObject(err, "message", message) ||
        !cJSON_AddBoolToObject(err, "retryable", code == EX_IOERR_)) {
        errmsg("out of memory building error result");
    } else {
        (void)emit_json(root); /* keep the original exit status regardless */
    }
    cJSON_Delete(root);
    return code;
}

/* fail() with printf-style message used for both stderr and the JSON. */
static int failf(int code, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(int code, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(code, type, msg, NULL);
}

/* ---- parsing helpers --------------------------------------------------- */

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Parse exactly "YYYY-MM-DD" (len bytes) into YYYYMMDD; validates the day. */
static bool parse_date(const char *s, size_t len, int32_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    int md = mdays[m - 1] + (m == 2 && is_leap(y));
    if (d > md)
        return false;
    *out = (int32_t)(y * 10000 + m * 100 + d);
    return true;
}

static void format_date(int32_t v, char out[16])
{
    unsigned u = (unsigned)v;
    snprintf(out, 16, "%04u-%02u-%02u", u / 10000 % 10000, u / 100 % 100, u % 100);
}

/* Strict positive decimal integer <= MAX_WINDOW; no sign, no spaces. */
static bool parse_window(const char *s, long *out)
{
    if (!s || !*s || strlen(s) > 12)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno || v < 1 || v > MAX_WINDOW)
        return false;
    *out = v;
    return true;
}

/* Parse a finite double occupying exactly [s, s+len). */
static bool parse_num(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (isspace((unsigned char)tmp[0]))
        return false;
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (errno == ERANGE || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Symbols: ^[A-Za-z0-9^][A-Za-z0-9.^=_-]{0,31}$ (so never a path). */
static bool valid_symbol(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > MAX_SYMBOL)
        return false;
    if (!isalnum((unsigned char)s[0]) && s[0] != '^')
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '^' || c == '=' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ---- data loading ------------------------------------------------------ */

static int bars_push(struct bars *b, int32_t date, double close)
{
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        if (ncap > SIZE_MAX / sizeof(double))
            return -1;
        int32_t *nd = realloc(b->date, ncap * sizeof *nd);
        if (!nd)
            return -1;
        b->date = nd;
        double *nc = realloc(b->close, ncap * sizeof *nc);
        if (!nc)
            return -1;
        b->close = nc;
        b->cap = ncap;
    }
    b->date[b->n] = date;
    b->close[b->n] = close;
    b->n++;
    return 0;
}

/*
 * Read one line (without its newline) into buf of size cap.  Returns 0 at
 * end of file or on a read error (check ferror), 1 for a line, 2 for a line
 * longer than cap - 1 bytes (the rest of it is consumed), 3 for a line
 * containing a NUL byte.
 */
static int read_line(FILE *f, char *buf, size_t cap, size_t *lenp)
{
    size_t len = 0;
    int c, st = 1;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (c == '\0')
            st = 3;
        else if (len + 1 >= cap)
            st = st == 1 ? 2 : st;
        else
            buf[len++] = (char)c;
    }
    buf[len] = '\0';
    *lenp = len;
    if (c == EOF && len == 0 && st == 1)
        return 0;
    if (c == EOF && ferror(f))
        return 0;
    return st;
}

/*
 * Load bars of path with lo <= date <= hi into b.  Every line is validated,
 * in range or not.  Returns EX_OK_ or an exit status after reporting it;
 * ENOENT/ENOTDIR are returned as -1 so the caller can report "no data".
 */
static int load_csv(const char *path, int32_t lo, int32_t hi, struct bars *b)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return -1;
        char d[1200];
        snprintf(d, sizeof d, "cannot open %s: %s", path, strerror(errno));
        return fail(EX_IOERR_, "IOError", d, NULL);
    }

    char line[MAX_LINE + 1];
    unsigned long lineno = 0;
    int32_t prev_date = 0;
    int rc = EX_OK_;
    const char *why = NULL;
    size_t len;
    int st;

    while ((st = read_line(f, line, sizeof line, &len)) > 0) {
        lineno++;
        if (st == 2) {
            why = "line too long";
            break;
        }
        if (st == 3) {
            why = "NUL byte in line";
            break;
        }
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (lineno == 1) {
            if (strcmp(line, "date,open,high,low,close,volume") != 0) {
                why = "expected header date,open,high,low,close,volume";
                break;
            }
            continue;
        }
        if (len == 0)
            continue; /* tolerate blank lines */

        /* Split into exactly 6 comma-separated fields. */
        const char *fld[6];
        size_t flen[6];
        int nf = 0;
        const char *p = line;
        for (;;) {
            const char *c = strchr(p, ',');
            if (nf == 6) {
                nf = 7;
                break;
            }
            fld[nf] = p;
            flen[nf] = c ? (size_t)(c - p) : strlen(p);
            nf++;
            if (!c)
                break;
            p = c + 1;
        }
        if (nf != 6) {
            why = "expected 6 fields";
            break;
        }
        int32_t date;
        if (!parse_date(fld[0], flen[0], &date)) {
            why = "bad date (want YYYY-MM-DD)";
            break;
        }
        if (date <= prev_date) {
            why = "dates not strictly increasing";
            break;
        }
        prev_date = date;
        double v[5];
        bool ok = true;
        for (int i = 0; i < 5 && ok; i++)
            ok = parse_num(fld[i + 1], flen[i + 1], &v[i]);
        if (!ok) {
            why = "bad number";
            break;
        }
        if (v[0] <= 0 || v[1] <= 0 || v[2] <= 0 || v[3] <= 0 || v[4] < 0) {
            why = "prices must be positive and volume non-negative";
            break;
        }
        if (date < lo || date > hi)
            continue;
        if (bars_push(b, date, v[3]) < 0) {
            rc = fail(EX_SOFTWARE_, "OutOfMemory", "out of memory loading bars", NULL);
            break;
        }
    }

    if (why) {
        char m[1300];
        snprintf(m, sizeof m, "%s:%lu: malformed CSV: %s", path, lineno, why);
        rc = fail(EX_DATAERR_, "MalformedDataError", m, NULL);
    } else if (rc == EX_OK_ && ferror(f)) {
        char m[1200];
        snprintf(m, sizeof m, "read %s: %s", path, strerror(errno));
        rc = fail(EX_IOERR_, "IOError", m, NULL);
    } else if (rc == EX_OK_ && lineno == 0) {
        char m[1200];
        snprintf(m, sizeof m, "%s:1: malformed CSV: empty file", path);
        rc = fail(EX_DATAERR_, "MalformedDataError", m, NULL);
    }
    fclose(f); /* read-only stream: nothing to lose */
    return rc;
}

/* ---- strategy ---------------------------------------------------------- */

/*
 * Run the SMA crossover over closes c[0..n-1].
 * The position decided at the close of bar i earns c[i+1]/c[i] - 1 on bar
 * i+1.  "trades" counts position changes (each executed buy or sell), not
 * round trips; a sell signal while already flat is a match but no trade.
 * Sharpe uses all n-1 daily strategy returns (including flat days, which
 * return 0) with the sample standard deviation.
 */
static void run_sma(const double *c, size_t n, long fast, long slow, struct metrics *m)
{
    memset(m, 0, sizeof *m);
    double fsum = 0, ssum = 0;
    int last_sign = 0; /* sign of the last non-zero SMA difference */
    bool long_pos = false;
    double equity = 1.0, peak = 1.0, mdd = 0.0, entry = 1.0;
    long closed = 0, won = 0;
    /* Welford running mean / variance of daily returns. */
    double mean = 0, m2 = 0;
    size_t nret = 0;

    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            double r = long_pos ? c[i] / c[i - 1] - 1.0 : 0.0;
            equity *= 1.0 + r;
            if (equity > peak)
                peak = equity;
            double dd = 1.0 - equity / peak;
            if (dd > mdd)
                mdd = dd;
            nret++;
            double delta = r - mean;
            mean += delta / (double)nret;
            m2 += delta * (r - mean);
        }

        fsum += c[i];
        ssum += c[i];
        if (i >= (size_t)fast)
            fsum -= c[i - (size_t)fast];
        if (i >= (size_t)slow)
            ssum -= c[i - (size_t)slow];
        if (i + 1 < (size_t)slow)
            continue; /* slow SMA not defined yet */

        double diff = fsum / (double)fast - ssum / (double)slow;
        int sign = diff > 0 ? 1 : diff < 0 ? -1 : 0;
        if (sign == 0)
            continue;
        if (last_sign != 0 && sign != last_sign) {
            m->matches++;
            bool want_long = sign > 0;
            if (want_long != long_pos) {
                if (want_long) {
                    entry = equity;
                } else {
                    closed++;
                    won += equity > entry;
                }
                long_pos = want_long;
                m->trades++;
            }
        }
        last_sign = sign;
    }

    m->total_return = equity - 1.0;
    m->max_drawdown = mdd;
    m->win_rate = closed ? (double)won / (double)closed : 0.0;
    m->sharpe = 0.0;
    if (nret >= 2) {
        double var = m2 / (double)(nret - 1);
        double sd = var > 0 ? sqrt(var) : 0.0;
        if (sd > 0 && isfinite(sd))
            m->sharpe = mean / sd * sqrt(TRADING_DAYS);
    }
    if (!isfinite(m->sharpe))
        m->sharpe = 0.0;
}

/* ---- main -------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [--strategy sma] [--data DIR] SYMBOL\n"
            "env: RUNNER_START RUNNER_END (YYYY-MM-DD), RUNNER_PARAM_FAST (10),\n"
            "     RUNNER_PARAM_SLOW (50), RUNNER_RESULT, BACKTEST_DATA\n",
            PROG);
}

static int usage_error(const char *msg)
{
    usage(stderr);
    return fail(EX_USAGE_, "UsageError", msg, NULL);
}

static int run(int argc, char **argv, struct bars *b)
{
    const char *strategy = "sma";
    const char *data_dir = NULL;
    const char *symbol = NULL;
    bool opts_done = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *val = NULL;
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (!opts_done && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            usage(stdout);
            return fflush(stdout) == 0 ? EX_OK_ : EX_IOERR_;
        }
        if (!opts_done && strncmp(a, "--strategy", 10) == 0 && (a[10] == '\0' || a[10] == '='))
            dst = &strategy, val = a[10] ? a + 11 : NULL;
        else if (!opts_done && strncmp(a, "--data", 6) == 0 && (a[6] == '\0' || a[6] == '='))
            dst = &data_dir, val = a[6] ? a + 7 : NULL;
        else if (!opts_done && a[0] == '-' && a[1] != '\0') {
            char m[256];
            snprintf(m, sizeof m, "unknown option '%.200s'", a);
            return usage_error(m);
        }
        if (dst) {
            if (!val) {
                if (i + 1 >= argc) {
                    char m[64];
                    snprintf(m, sizeof m, "option %s needs a value", a);
                    return usage_error(m);
                }
                val = argv[++i];
            }
            *dst = val;
            continue;
        }
        if (symbol)
            return usage_error("exactly one SYMBOL expected");
        symbol = a;
    }
    if (!symbol)
        return usage_error("missing SYMBOL");
    if (!valid_symbol(symbol)) {
        char m[256];
        snprintf(m, sizeof m, "invalid symbol '%.64s'", symbol);
        return usage_error(m);
    }
    if (strcmp(strategy, "sma") != 0)
        return failf(EX_USAGE_, "ParameterError", "unknown strategy '%.64s' (supported: sma)",
                     strategy);
    if (!data_dir) {
        const char *e = getenv("BACKTEST_DATA");
        data_dir = (e && *e) ? e : DEFAULT_DATA_DIR;
    }
    if (!*data_dir)
        return usage_error("empty data directory");

    /* Parameters. */
    long fast = DEFAULT_FAST, slow = DEFAULT_SLOW;
    const char *fs = getenv("RUNNER_PARAM_FAST");
    const char *ss = getenv("RUNNER_PARAM_SLOW");
    if (fs && !parse_window(fs, &fast))
        return failf(EX_USAGE_, "ParameterError",
                     "RUNNER_PARAM_FAST must be an integer in 1..%ld, got '%.32s'", MAX_WINDOW, fs);
    if (ss && !parse_window(ss, &slow))
        return failf(EX_USAGE_, "ParameterError",
                     "RUNNER_PARAM_SLOW must be an integer in 1..%ld, got '%.32s'", MAX_WINDOW, ss);
    if (fast >= slow)
        return failf(EX_USAGE_, "ParameterError",
                     "fast window (%ld) must be smaller than slow window (%ld)", fast, slow);

    int32_t lo = 0, hi = INT32_MAX;
    const char *st = getenv("RUNNER_START");
    const char *en = getenv("RUNNER_END");
    if (st && *st && !parse_date(st, strlen(st), &lo))
        return failf(EX_USAGE_, "ParameterError", "RUNNER_START must be YYYY-MM-DD, got '%.32s'",
                     st);
    if (en && *en && !parse_date(en, strlen(en), &hi))
        return failf(EX_USAGE_, "ParameterError", "RUNNER_END must be YYYY-MM-DD, got '%.32s'", en);
    if (lo > hi)
        return failf(EX_USAGE_, "ParameterError", "RUNNER_START %s is after RUNNER_END %s", st, en);

    /* Data. */
    size_t plen = strlen(data_dir) + strlen(symbol) + 6;
    char *path = malloc(plen);
    if (!path)
        return fail(EX_SOFTWARE_, "OutOfMemory", "out of memory", NULL);
    snprintf(path, plen, "%s/%s.csv", data_dir, symbol);
    int rc = load_csv(path, lo, hi, b);
    free(path);

    bool ranged = (st && *st) || (en && *en);
    if (rc < 0 || (rc == EX_OK_ && b->n == 0)) {
        char msg[256], detail[1600];
        if (rc < 0 || !ranged) {
            snprintf(msg, sizeof msg, "no data for %s", symbol);
            snprintf(detail, sizeof detail, "no data for %s in %.1200s", symbol, data_dir);
        } else {
            snprintf(msg, sizeof msg, "no data for %s between %.10s and %.10s", symbol,
                     (st && *st) ? st : "start", (en && *en) ? en : "end");
            snprintf(detail, sizeof detail, "%s in %.1200s", msg, data_dir);
        }
        return fail(EX_DATAERR_, "NoDataError", msg, detail);
    }
    if (rc != EX_OK_)
        return rc;

    struct metrics m;
    run_sma(b->close, b->n, fast, slow, &m);

    cJSON *root = cJSON_CreateObject();
    cJSON *mj = cJSON_CreateObject();
    bool ok = root && mj && cJSON_AddStringToObject(root, "symbol", symbol) &&
              cJSON_AddNumberToObject(root, "matches", (double)m.matches);
    if (ok && cJSON_AddItemToObject(root, "metrics", mj)) {
        mj = NULL; /* now owned by root */
        cJSON *mm = cJSON_GetObjectItemCaseSensitive(root, "metrics");
        ok = cJSON_AddNumberToObject(mm, "total_return", m.total_return) &&
             cJSON_AddNumberToObject(mm, "sharpe", m.sharpe) &&
             cJSON_AddNumberToObject(mm, "max_drawdown", m.max_drawdown) &&
             cJSON_AddNumberToObject(mm, "trades", (double)m.trades) &&
             cJSON_AddNumberToObject(mm, "win_rate", m.win_rate) &&
             cJSON_AddNumberToObject(mm, "bars", (double)b->n) &&
             cJSON_AddNumberToObject(root, "progress", 1.0);
    } else {
        ok = false;
    }
    cJSON_Delete(mj);
    if (!ok) {
        cJSON_Delete(root);
        return fail(EX_SOFTWARE_, "OutOfMemory", "out of memory building result", NULL);
    }
    /*
     * Human summary.  With RUNNER_RESULT it goes to stdout *before* the
     * result file is written, so a failing stdout yields an error result
     * rather than a success result with a non-zero exit.  Without
     * RUNNER_RESULT stdout carries the JSON and the summary goes to stderr.
     */
    const char *res = getenv("RUNNER_RESULT");
    bool to_file = res && *res;
    char d0[16], d1[16], summary[512];
    format_date(b->date[0], d0);
    format_date(b->date[b->n - 1], d1);
    snprintf(summary, sizeof summary,
             "%s sma(%ld,%ld) %s..%s bars=%zu signals=%ld trades=%ld "
             "total_return=%+.2f%% sharpe=%.2f max_drawdown=%.2f%%\n",
             symbol, fast, slow, d0, d1, b->n, m.matches, m.trades, m.total_return * 100.0,
             m.sharpe, m.max_drawdown * 100.0);
    if (to_file && (fputs(summary, stdout) == EOF || fflush(stdout) != 0)) {
        char msg[128];
        snprintf(msg, sizeof msg, "writing summary to stdout: %s", strerror(errno));
        cJSON_Delete(root);
        return fail(EX_IOERR_, "IOError", msg, NULL);
    }
    int erc = emit_json(root);
    cJSON_Delete(root);
    if (erc < 0)
        return EX_IOERR_; /* already reported; writing an error result would fail too */
    if (!to_file)
        fputs(summary, stderr); /* best effort: nowhere to report a failure */
    return EX_OK_;
}

int main(int argc, char **argv)
{
    struct bars b = {0};
    int rc = run(argc, argv, &b);
    free(b.date);
    free(b.close);
    return rc;
}
