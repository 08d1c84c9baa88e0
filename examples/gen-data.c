/*
 * gen-data.c - deterministic synthetic OHLCV generator for the example agent.
 *
 * THE DATA WRITTEN BY THIS PROGRAM IS SYNTHETIC.  It is not market data and
 * does not describe any real security; the ticker names are only labels.
 *
 * Usage: gen-data OUTDIR
 *
 * Writes OUTDIR/<SYMBOL>.csv for a fixed list of 120 tickers.  Each file has
 * the header "date,open,high,low,close,volume" followed by 2,000 consecutive
 * business days (Monday to Friday, no holidays) starting 2018-01-02.  Prices
 * follow a geometric random walk driven by a splitmix64 generator seeded from
 * an FNV-1a hash of the symbol.
 *
 * Determinism: everything is computed in 64-bit integer arithmetic (prices
 * in units of 1/10000 dollar, returns in parts per million, normal variates
 * approximated by a sum of 12 uniforms), and nothing depends on the locale,
 * the C library's rand() or its floating-point maths.  The output is
 * therefore byte-identical on every machine and every run.
 *
 * Each file is written to a temporary name in OUTDIR and renamed into place,
 * so readers never see a half-written file.  Prints nothing on success and
 * exits 0; on failure prints a message to stderr and exits 64 (usage) or
 * 74 (I/O error).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define EX_OK_ 0
#define EX_USAGE_ 64
#define EX_IOERR_ 74

#define NBARS 2000
#define PPM 1000000LL
/* Internal price unit: 1/10000 dollar; output unit: cents. */
#define UNITS_PER_CENT 100LL
#define MIN_PRICE_UNITS 10000LL /* $1.00 floor */

static const char *const SYMBOLS[] = {
    "AAPL", "MSFT", "GOOGL", "AMZN",  "META", "NVDA", "TSLA", "BRK.B", "JPM",  "V",
    "JNJ",  "WMT",  "PG",    "MA",    "UNH",  "HD",   "DIS",  "BAC",   "XOM",  "CVX",
    "KO",   "PEP",  "PFE",   "MRK",   "ABBV", "AVGO", "COST", "TMO",   "ABT",  "CSCO",
    "ADBE", "CRM",  "NFLX",  "INTC",  "AMD",  "ORCL", "QCOM", "TXN",   "IBM",  "NKE",
    "MCD",  "SBUX", "LLY",   "T",     "VZ",   "CMCSA", "WFC", "C",     "GS",   "MS",
    "BLK",  "AXP",  "SCHW",  "USB",   "PNC",  "TFC",  "COF",  "BK",    "AIG",  "MET",
    "PRU",  "ALL",  "CB",    "MMC",   "AON",  "SPGI", "MCO",  "ICE",   "CME",  "BA",
    "CAT",  "DE",   "GE",    "HON",   "MMM",  "LMT",  "RTX",  "NOC",   "GD",   "UPS",
    "FDX",  "UNP",  "CSX",   "NSC",   "DAL",  "UAL",  "LUV",  "AAL",   "MAR",  "HLT",
    "BKNG", "ABNB", "UBER",  "LYFT",  "PYPL", "SQ",   "SHOP", "INTU",  "NOW",  "SNOW",
    "AMAT", "LRCX", "KLAC",  "MU",    "ADI",  "MRVL", "NXPI", "ON",    "PANW", "CRWD",
    "F",    "GM",   "LOW",   "TGT",   "NEE",  "DUK",  "SO",   "D",     "AMGN", "GILD",
};

#define NSYMBOLS (sizeof SYMBOLS / sizeof SYMBOLS[0])
_Static_assert(NSYMBOLS == 120, "exactly 120 symbols expected");

/* ---- PRNG ------------------------------------------------------------- */

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (uint64_t)(unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, n), n > 0 (modulo bias is irrelevant here). */
static int64_t urand(uint64_t *st, int64_t n)
{
    return (int64_t)(splitmix64(st) % (uint64_t)n);
}

/*
 * Approximately standard normal variate scaled by 4096 (so 4096 == one
 * standard deviation), as the sum of 12 uniforms on [0, 4096) minus their
 * mean.  Range is [-24576, 24564].
 */
static int64_t nrand4096(uint64_t *st)
{
    int64_t sum = 0;
    for (int i = 0; i < 12; i++)
        sum += (int64_t)(splitmix64(st) >> 52);
    return sum - 6 * 4096;
}

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

/* Round-half-up of x * (PPM + ppm) / PPM for x >= 0. */
static int64_t scale_ppm(int64_t x, int64_t ppm)
{
    int64_t f = PPM + ppm;
    if (f < 0)
        f = 0;
    return (x * f + PPM / 2) / PPM;
}

static int64_t units_to_cents(int64_t u)
{
    return (u + UNITS_PER_CENT / 2) / UNITS_PER_CENT;
}

/* ---- calendar ---------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *yy, int *mm, int *dd)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    *yy = (int)(y + (m <= 2));
    *mm = (int)m;
    *dd = (int)d;
}

/* 0 = Sunday ... 6 = Saturday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* ---- output ------------------------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int buf_printf(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t avail = b->cap - b->len;
        int n = vsnprintf(b->p + b->len, avail, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if ((size_t)n < avail) {
            b->len += (size_t)n;
            return 0;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap - b->len <= (size_t)n)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = ncap;
    }
}

static int generate(const char *sym, struct buf *b)
{
    uint64_t st = fnv1a64(sym) ^ 0x5eed0fda7a5eedULL;

    /* Per-symbol characteristics. */
    int64_t price = (2000 + urand(&st, 48001)) * UNITS_PER_CENT; /* $20..$500 */
    int64_t vol_ppm = 10000 + urand(&st, 20001);     /* daily sigma 1%..3% */
    int64_t drift_ppm = -100 + urand(&st, 501);      /* -0.01%..+0.04%/day */
    int64_t base_volume = 200000 + urand(&st, 49800001); /* 0.2M..50M */

    b->len = 0;
    if (buf_printf(b, "date,open,high,low,close,volume\n") < 0)
        return -1;

    int64_t day = days_from_civil(2018, 1, 2);
    for (int bar = 0; bar < NBARS; day++) {
        int wd = weekday(day);
        if (wd == 0 || wd == 6)
            continue;

        int64_t z_close = nrand4096(&st);
        int64_t z_gap = nrand4096(&st);
        int64_t z_hi = nrand4096(&st);
        int64_t z_lo = nrand4096(&st);

        int64_t gap_ppm = z_gap * vol_ppm / (4 * 4096);
        int64_t ret_ppm = drift_ppm + z_close * vol_ppm / 4096;
        if (ret_ppm < -400000)
            ret_ppm = -400000;

        int64_t open_u = scale_ppm(price, gap_ppm);
        price = scale_ppm(price, ret_ppm);
        if (price < MIN_PRICE_UNITS)
            price = MIN_PRICE_UNITS;

        int64_t open_c = units_to_cents(open_u);
        int64_t close_c = units_to_cents(price);
        if (open_c < 1)
            open_c = 1;
        int64_t top = open_c > close_c ? open_c : close_c;
        int64_t bot = open_c < close_c ? open_c : close_c;
        int64_t high_c = top + (top * (iabs64(z_hi) * vol_ppm / (2 * 4096)) + PPM / 2) / PPM;
        int64_t low_c = bot - (bot * (iabs64(z_lo) * vol_ppm / (2 * 4096)) + PPM / 2) / PPM;
        if (low_c < 1)
            low_c = 1;

        int64_t vfac_ppm = 600000 + urand(&st, 800001) + iabs64(z_close) * 300000 / 4096;
        int64_t volume = base_volume * vfac_ppm / PPM;

        int y, m, d;
        civil_from_days(day, &y, &m, &d);
        if (buf_printf(b,
                       "%04d-%02d-%02d,%" PRId64 ".%02" PRId64 ",%" PRId64 ".%02" PRId64
                       ",%" PRId64 ".%02" PRId64 ",%" PRId64 ".%02" PRId64 ",%" PRId64 "\n",
                       y, m, d, open_c / 100, open_c % 100, high_c / 100, high_c % 100,
                       low_c / 100, low_c % 100, close_c / 100, close_c % 100, volume) < 0)
            return -1;
        bar++;
    }
    return 0;
}

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

/* Write b to dir/sym.csv via a temporary file and rename(2). */
static int write_file(const char *dir, const char *sym, const struct buf *b)
{
    char final[4096], tmp[4096];
    int n1 = snprintf(final, sizeof final, "%s/%s.csv", dir, sym);
    int n2 = snprintf(tmp, sizeof tmp, "%s/.%s.csv.tmp.%ld", dir, sym, (long)getpid());
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof final || (size_t)n2 >= sizeof tmp) {
        fprintf(stderr, "gen-data: output path too long: %s\n", dir);
        return -1;
    }

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "gen-data: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, b->p, b->len) < 0) {
        fprintf(stderr, "gen-data: write %s: %s\n", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0) {
        fprintf(stderr, "gen-data: close %s: %s\n", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, final) < 0) {
        fprintf(stderr, "gen-data: rename %s -> %s: %s\n", tmp, final, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: gen-data OUTDIR\n");
        return EX_USAGE_;
    }
    const char *dir = argv[1];

    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "gen-data: mkdir %s: %s\n", dir, strerror(errno));
        return EX_IOERR_;
    }
    struct stat sb;
    if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "gen-data: %s: not a directory\n", dir);
        return EX_IOERR_;
    }

    struct buf b = {0};
    int rc = EX_OK_;
    for (size_t i = 0; i < NSYMBOLS; i++) {
        if (generate(SYMBOLS[i], &b) < 0) {
            fprintf(stderr, "gen-data: out of memory\n");
            rc = EX_IOERR_;
            break;
        }
        if (write_file(dir, SYMBOLS[i], &b) < 0) {
            rc = EX_IOERR_;
            break;
        }
    }
    free(b.p);
    return rc;
}
