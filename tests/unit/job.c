/*
 * job.c: job_parse() -- SPEC 4 job files, valid and invalid, with the
 * file:line of every message; symbols and symbols_file (inside the home
 * only); the limits (1,000 symbols on one line past inih's 200-byte
 * default buffer, 100,000 in a file, 1,000,000 at most, 64 MiB).
 */
#include "scratch.h"
#include "tap.h"
#include "conf.h"
#include "inifile.h"
#include "job.h"
#include "util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


static const char *home;
static char outside[300];
static int home_fd = -1;
static struct conf *conf;

static struct job J = JOB_INIT;
static struct diag D = DIAG_INIT("t.job");

static void die_errno(const char *what)
{
	perror(what);
	exit(2);
}

static void write_file(const char *p, const char *text, size_t len)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_all(fd, text, len) < 0 || close(fd) < 0)
		die_errno(p);
}

/* Write HOME/rel. */
static void put(const char *rel, const char *text)
{
	char *p = xasprintf("%s/%s", home, rel);
	write_file(p, text, strlen(text));
	free(p);
}

static int parse_with(const char *buf, size_t len, const struct conf *c)
{
	job_release(&J);
	diag_release(&D);
	D = (struct diag)DIAG_INIT("t.job");
	return job_parse(&J, &D, buf, len, c, home_fd);
}

static int parse(const char *text)
{
	return parse_with(text, strlen(text), conf);
}

static const char *dtext(void)
{
	return D.text.buf ? D.text.buf : "";
}

/* A diag line "t.job:LINE: " (or, line 0, any line) containing part. */
static bool has_msg(int line, const char *part)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "t.job:%d: ", line);
	for (const char *p = dtext(); *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *l = xstrndup(p, n);
		bool hit = (line == 0 || !strncmp(l, prefix, strlen(prefix))) &&
			   strstr(l, part);
		free(l);
		if (hit)
			return true;
		p += n + (nl ? 1 : 0);
	}
	return false;
}

static void good(const char *text, const char *desc)
{
	int rc = parse(text);
	if (!ok(rc == 0 && D.errors == 0, "valid: %s", desc))
		diag("rc %d, diag:\n%s", rc, dtext());
}

/* Invalid, with a message at that line (the first line of the problem). */
static void bad_n(const char *buf, size_t len, int line, const char *part,
		  const char *desc)
{
	int rc = parse_with(buf, len, conf);
	bool found = has_msg(line, part);
	if (!ok(rc == -1 && D.errors > 0 && found, "invalid: %s (line %d: %s)",
		desc, line, part))
		diag("rc %d, errors %d, diag:\n%s", rc, D.errors, dtext());
}

static void bad(const char *text, int line, const char *part, const char *desc)
{
	bad_n(text, strlen(text), line, part, desc);
}

#define HEAD "[job]\nagent = fake\nsymbols = A B\n"	/* lines 1-3 */

/* ---- valid jobs ---- */

static void test_every_key(void)
{
	/* No symbol is repeated here: see test_known_bugs() for why. */
	put("universes/sp500.txt", "# the universe\nNVDA\nBRK.B  # Berkshire\n"
				   "^GSPC\n\nEURUSD=X\n7203.T\n");
	int rc = parse("[job]\n"
		       "agent = fake        ; required\n"
		       "symbols = AAPL MSFT GOOGL, AMZN META   ; comment\n"
		       "symbols_file = universes/sp500.txt\n"
		       "id = nightly-2026-11-22\n"
		       "name = nightly backtest\n"
		       "origin = nightly\n"
		       "timeframe = 1d\n"
		       "start = 2024-01-01\n"
		       "end = 2025-12-31\n"
		       "priority = 7\n"
		       "concurrency = 4\n"
		       "timeout = 5m\n"
		       "batch_timeout = 2h\n"
		       "max_attempts = 3\n"
		       "source = koyfin\n"
		       "\n"
		       "[params]                ; free keys\n"
		       "fast = 10\n"
		       "slow = 50\n"
		       "Mixed_Case_9 = a value with = and : and $(x) `y` | z\n");
	if (!ok(rc == 0 && D.errors == 0 && D.warnings == 0,
		"the SPEC 4 example with every key is valid"))
		diag("diag:\n%s", dtext());
	is_str(J.agent, "fake", "agent");
	is_str(J.id, "nightly-2026-11-22", "id");
	is_str(J.name, "nightly backtest", "name");
	is_str(J.origin, "nightly", "origin");
	is_str(J.timeframe, "1d", "timeframe");
	is_str(J.start, "2024-01-01", "start");
	is_str(J.end, "2025-12-31", "end");
	is_int(J.priority, 7, "priority");
	is_int(J.concurrency, 4, "concurrency");
	is_int(J.timeout_ms, 300000, "timeout");
	is_int(J.batch_timeout_ms, 7200000, "batch_timeout");
	is_int(J.max_attempts, 3, "max_attempts");
	is_str(J.source, "koyfin", "source");
	static const char *const want[] = { "AAPL", "MSFT", "GOOGL", "AMZN",
					    "META", "NVDA", "BRK.B", "^GSPC",
					    "EURUSD=X", "7203.T" };
	bool same = J.nsymbols == 10;
	for (size_t i = 0; same && i < 10; i++)
		same = !strcmp(J.symbols[i], want[i]);
	ok(same, "symbols: the list, then the file, in order");
	if (!same)
		for (size_t i = 0; i < J.nsymbols; i++)
			diag("symbol %zu: %s", i, J.symbols[i]);
	is_int(J.nparams, 3, "three params");
	if (J.nparams == 3) {
		is_str(J.params[0].key, "fast", "param 1 key");
		is_str(J.params[0].value, "10", "param 1 value");
		is_str(J.params[1].key, "slow", "param 2 key");
		is_str(J.params[1].value, "50", "param 2 value");
		is_str(J.params[2].key, "Mixed_Case_9", "param 3 key");
		is_str(J.params[2].value,
		       "a value with = and : and $(x) `y` | z",
		       "param 3 value, kept verbatim (no shell)");
	}
}

static void test_defaults_and_forms(void)
{
	good("[job]\nagent = fake\nsymbols = AAPL\n", "the minimal job");
	ok(J.id == NULL && J.name == NULL && J.origin == NULL &&
	   J.source == NULL && J.timeframe == NULL && J.start == NULL &&
	   J.end == NULL, "absent strings are NULL");
	ok(J.priority == 0 && J.concurrency == 0 && J.timeout_ms == 0 &&
	   J.batch_timeout_ms == 0 && J.max_attempts == 0 && J.nparams == 0,
	   "absent numbers are 0");
	is_int(J.nsymbols, 1, "one symbol");

	good("[job]\nagent = fake\nsymbols = A,B C,,D , E\n",
	     "symbols separated by spaces and commas");
	is_int(J.nsymbols, 5, "  five symbols");
	ok(J.nsymbols == 5 && !strcmp(J.symbols[0], "A") &&
	   !strcmp(J.symbols[4], "E"), "  in file order");

	good("[job]\nagent = fake\nsymbols = A B\n  C D\n  ; a comment\n"
	     "\tE,\n    F\n",
	     "continuation lines (spaces and tabs) extend symbols");
	is_int(J.nsymbols, 6, "  six symbols");

	good("[job]\nagent = fake\nname = nightly\n  backtest run\n"
	     "symbols = A\n", "continuation of a string value");
	is_str(J.name, "nightly backtest run", "  joined with one space");

	/* Duplicates only in symbols_file, no 'symbols' key: the warning then
	 * goes to the first [job] line (the other case: test_known_bugs()). */
	put("u/dups.txt", "A\nB\nA\nC\nB\nA\n");
	good("[job]\nagent = fake\nsymbols_file = u/dups.txt\n",
	     "duplicate symbols are a warning");
	is_int(J.nsymbols, 3, "  run once each");
	is_int(D.warnings, 1, "  one warning");
	ok(has_msg(2, "warning: 3 symbols listed twice, run once (first: A)"),
	   "  warning names the count and the first");
	ok(J.nsymbols == 3 && !strcmp(J.symbols[0], "A") &&
	   !strcmp(J.symbols[1], "B") && !strcmp(J.symbols[2], "C"),
	   "  first occurrences kept, in order");

	good("\xEF\xBB\xBF[job]\nagent = fake\nsymbols = A\n",
	     "a UTF-8 BOM is accepted");
	good("[job]\r\nagent = fake\r\nsymbols = A B\r\nname = x y\r\n"
	     "[params]\r\nk = v\r\n", "CRLF line endings");
	ok(J.nsymbols == 2 && !strcmp(J.name, "x y") && J.nparams == 1 &&
	   !strcmp(J.params[0].value, "v"), "  no CR left in any value");
	good("[job]\nagent: fake\nsymbols : A\n", "name: value lines");
	good("; comment\n# comment\n\n[job]\n  agent = fake\nsymbols = A\n",
	     "comments, blank lines, an indented first key");
	good("[job]\nagent = fake\nsymbols = A ; B C\n",
	     "an inline comment ends the value");
	is_int(J.nsymbols, 1, "  only A");
	good("[job]\nagent = fake\nsymbols = ^GSPC BRK.B EURUSD=X 7203.T a_b "
	     "x-y 9\n", "symbols of every allowed form");
	good("[job]\nagent = fake\nsymbols = "
	     "A2345678901234567890123456789012\n", "a 32-character symbol");
	good(HEAD "id = A23456789012345678901234567890123456789012345678901234"
	     "567890123\n", "a 64-character id");
	good(HEAD "id = a.b_c-d\n", "an id with . _ -");
	good(HEAD "priority = -100\nconcurrency = 1\nmax_attempts = 1\n",
	     "lower bounds");
	good(HEAD "priority = 100\nconcurrency = 65535\nmax_attempts = 1000\n",
	     "upper bounds");
	good(HEAD "timeout = 0.5s\nbatch_timeout = 1\n", "short durations");
	is_int(J.timeout_ms, 500, "  0.5s");
	is_int(J.batch_timeout_ms, 1000, "  bare 1 is a second");
	good(HEAD "start = 2024-02-29\nend = 2024-02-29\n",
	     "a leap day, start equal to end");
	good(HEAD "[params]\na = 1\n[job]\nname = n\n[params]\nb = 2\n",
	     "sections may repeat; keys merge");
	is_int(J.nparams, 2, "  both params");

	char name256[300];
	memset(name256, 'n', 256);
	name256[256] = '\0';
	char *t = xasprintf(HEAD "name = %s\norigin = %s\n", name256, name256);
	good(t, "name and origin of 256 bytes");
	free(t);
	char *v4096 = xmalloc(4097);
	memset(v4096, 'v', 4096);
	v4096[4096] = '\0';
	t = xasprintf(HEAD "[params]\nk = %s\n", v4096);
	good(t, "a param value of 4096 bytes");
	free(t);
	free(v4096);
	t = xasprintf(HEAD "[params]\n%s = 1\n",
		      "p234567890123456789012345678901234567890123456789012345678901234");
	good(t, "a param name of 64 characters");
	free(t);
	good("[job]\nagent = fake\nsymbols = A\nname = caf\xC3\xA9 \xE2\x82\xAC\n",
	     "UTF-8 in a name");

	int rc = parse_with("[job]\nagent = not_configured\nsymbols = A\n", 40,
			    NULL);
	ok(rc == 0 && !strcmp(J.agent, "not_configured"),
	   "without a conf the agent is not checked");
}

/* 1,000 symbols on one line: far past inih's default 200-byte line. */
static void test_long_line(void)
{
	struct sb t = SB_INIT;
	sb_adds(&t, "[job]\nagent = fake\nsymbols =");
	for (int i = 0; i < 1000; i++)
		sb_addf(&t, " SYM%04d.X", i);
	sb_adds(&t, "\nname = after the long line\n");
	int rc = parse(t.buf);
	ok(rc == 0 && D.errors == 0, "1,000 symbols on one %zu-byte line",
	   t.len);
	is_int(J.nsymbols, 1000, "  exactly 1,000 symbols");
	int bad = 0;
	for (size_t i = 0; i < J.nsymbols; i++) {
		char want[32];
		snprintf(want, sizeof(want), "SYM%04zu.X", i);
		if (strcmp(J.symbols[i], want) && bad++ < 3)
			diag("symbol %zu is '%s'", i, J.symbols[i]);
	}
	ok(!bad && J.nsymbols == 1000, "  none split or merged");
	is_str(J.name, "after the long line", "  the next line is intact");
	sb_release(&t);

	/* A 10 MB value is refused by size, not cut into pieces. */
	sb_adds(&t, HEAD "name = ");
	for (int i = 0; i < 10 << 20; i += 64)
		sb_adds(&t, "0123456789abcdef0123456789abcdef"
			    "0123456789abcdef0123456789abcdef");
	sb_adds(&t, "\nbogus_after = 1\n");
	bad_n(t.buf, t.len, 4, "name: longer than 256 bytes", "a 10 MB name");
	ok(has_msg(5, "unknown key 'bogus_after'"),
	   "  the line after a 10 MB line has the right number");
	sb_release(&t);
}

static void test_symbols_file(void)
{
	put("u/s.txt", "# universe\nA\nB # trailing comment\n\n  C , D\n#E\n");
	good("[job]\nagent = fake\nsymbols_file = u/s.txt\n",
	     "symbols_file with # comments");
	is_int(J.nsymbols, 4, "  four symbols");
	ok(J.nsymbols == 4 && !strcmp(J.symbols[3], "D"), "  A B C D");

	put("u/crlf.txt", "A\r\nB\r\n");
	good("[job]\nagent = fake\nsymbols_file = u/crlf.txt\n",
	     "a CRLF symbols_file");
	is_int(J.nsymbols, 2, "  two symbols");

	good("[job]\nagent = fake\nsymbols = X Y\nsymbols_file = u/s.txt\n",
	     "both symbols and symbols_file");
	is_int(J.nsymbols, 6, "  X Y A B C D");
	ok(J.nsymbols == 6 && !strcmp(J.symbols[1], "Y") &&
	   !strcmp(J.symbols[2], "A"), "  the list first, then the file");

	good("[job]\nagent = fake\nsymbols_file = ./u/../u/s.txt\n",
	     "'..' that stays inside the home");

	/* 100,000 symbols in a file. */
	struct sb t = SB_INIT;
	for (int i = 0; i < 100000; i++) {
		if (i % 1000 == 0)
			sb_addf(&t, "# block %d\n", i / 1000);
		sb_addf(&t, "S%06d\n", i);
	}
	put("u/100k.txt", t.buf);
	sb_release(&t);
	good("[job]\nagent = fake\nsymbols_file = u/100k.txt\n",
	     "a symbols_file of 100,000 symbols");
	is_int(J.nsymbols, 100000, "  100,000 symbols");
	ok(J.nsymbols == 100000 && !strcmp(J.symbols[0], "S000000") &&
	   !strcmp(J.symbols[99999], "S099999"), "  first and last");

	/* The limit: 1,000,000 symbols, and one more. */
	for (int i = 0; i < 1000000; i++)
		sb_addf(&t, "M%d\n", i);
	put("u/1m.txt", t.buf);
	sb_addf(&t, "ONE.MORE\n");
	put("u/1m1.txt", t.buf);
	sb_release(&t);
	good("[job]\nagent = fake\nsymbols_file = u/1m.txt\n",
	     "1,000,000 symbols");
	is_int(J.nsymbols, 1000000, "  all of them");
	bad("[job]\nagent = fake\nsymbols_file = u/1m1.txt\n", 3,
	    "more than 1000000 symbols", "1,000,001 symbols");
	ok(J.symbols == NULL && J.nsymbols == 0, "  no symbol list kept");

	put("u/bad.txt", "A\nB$\nC\n");
	bad("[job]\nagent = fake\nsymbols_file = u/bad.txt\n", 3,
	    "symbols_file u/bad.txt:2: invalid symbol 'B$'",
	    "an invalid symbol in symbols_file names the file's line");
	put("u/empty.txt", "# nothing\n\n");
	bad("[job]\nagent = fake\nsymbols_file = u/empty.txt\n", 3,
	    "no symbols", "an empty symbols_file");
	{
		char *p = xasprintf("%s/u/nul.txt", home);
		write_file(p, "A\nB\0C\n", 6);
		free(p);
	}
	bad("[job]\nagent = fake\nsymbols_file = u/nul.txt\n", 3,
	    "NUL byte or invalid UTF-8", "a NUL in symbols_file");
	put("u/latin1.txt", "A\n\xC4PFEL\n");
	bad("[job]\nagent = fake\nsymbols_file = u/latin1.txt\n", 3,
	    "NUL byte or invalid UTF-8", "invalid UTF-8 in symbols_file");
	{
		char *p = xasprintf("%s/u/huge.txt", home);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, (off_t)JOB_MAX_BYTES + 1) < 0)
			die_errno(p);
		close(fd);
		free(p);
	}
	bad("[job]\nagent = fake\nsymbols_file = u/huge.txt\n", 3,
	    "larger than 64 MiB", "a symbols_file over 64 MiB (sparse)");
}

static void test_symbols_file_escapes(void)
{
	char *p;
	/* A file outside the home, and ways to reach it. */
	write_file(outside, "SECRET\n", 7);
	p = xasprintf("%s/u/out.txt", home);
	if (symlink(outside, p) < 0)
		die_errno(p);
	free(p);
	p = xasprintf("%s/u/in.txt", home);
	if (symlink("s.txt", p) < 0)
		die_errno(p);
	free(p);
	p = xasprintf("%s/u/sub", home);
	mkdir(p, 0755);
	free(p);
	p = xasprintf("%s/u/sub/up", home);
	if (symlink("..", p) < 0)
		die_errno(p);
	free(p);
	p = xasprintf("%s/esc", home);
	char *odir = xstrdup(outside);
	*strrchr(odir, '/') = '\0';
	if (symlink(odir, p) < 0)
		die_errno(p);
	free(odir);
	free(p);
	p = xasprintf("%s/u/fifo", home);
	if (mkfifo(p, 0644) < 0)
		die_errno(p);
	free(p);

	bad("[job]\nagent = fake\nsymbols_file = /etc/passwd\n", 3,
	    "symbols_file must be relative to the home: /etc/passwd",
	    "an absolute symbols_file");
	bad("[job]\nagent = fake\nsymbols_file = ../x\n", 3,
	    "symbols_file ../x leads outside the home", "symbols_file ../x");
	bad("[job]\nagent = fake\nsymbols_file = u/../../x\n", 3,
	    "leads outside the home", "symbols_file u/../../x");
	bad("[job]\nagent = fake\nsymbols_file = u/out.txt\n", 3,
	    "symbols_file u/out.txt leads outside the home",
	    "a symlink inside the home pointing outside");
	ok(!strstr(dtext(), "SECRET"), "  the outside file is not read");
	bad("[job]\nagent = fake\nsymbols_file = esc/x.txt\n", 3,
	    "leads outside the home",
	    "a directory symlink inside the home pointing outside");
	/*
	 * A symlink inside pointing inside: RESOLVE_BENEATH alone would allow
	 * it: a symlink that stays inside the home is followed, whether it is
	 * the last component or a directory earlier in the path.
	 */
	good("[job]\nagent = fake\nsymbols_file = u/in.txt\n",
	     "a final symlink inside pointing inside is followed");
	good("[job]\nagent = fake\nsymbols_file = u/sub/up/s.txt\n",
	     "an in-tree directory symlink on the way is followed");
	is_int(J.nsymbols, 4, "  and the file read");
	bad("[job]\nagent = fake\nsymbols_file = u\n", 3,
	    "symbols_file u: not a regular file", "a directory");
	bad("[job]\nagent = fake\nsymbols_file = u/missing.txt\n", 3,
	    "symbols_file u/missing.txt: No such file or directory",
	    "a missing file");
	bad("[job]\nagent = fake\nsymbols_file = u/fifo\n", 3,
	    "symbols_file u/fifo: not a regular file",
	    "a FIFO (opened without blocking)");
	bad("[job]\nagent = fake\nsymbols_file =\n", 3, "symbols_file",
	    "an empty symbols_file value");
	char *longpath = xmalloc(5000);
	memset(longpath, 'a', 4999);
	longpath[4999] = '\0';
	char *t = xasprintf("[job]\nagent = fake\nsymbols_file = %s\n", longpath);
	bad(t, 3, "symbols_file: too long", "a symbols_file path over 4096 bytes");
	free(t);
	free(longpath);
}

/* ---- invalid jobs, each with its line ---- */

static void test_invalid(void)
{
	bad("", 1, "empty job file", "an empty file");
	bad("; only\n# comments\n", 1, "[job] has no 'agent'",
	    "a comment-only file");
	bad("[job]\nsymbols = A\n", 2, "[job] has no 'agent'", "no agent");
	bad("[job]\nagent = fake\nname = x\n", 2,
	    "[job] has neither 'symbols' nor 'symbols_file'", "no symbols");
	bad("[job]\nagent = fake\nsymbols =\n", 3, "no symbols",
	    "an empty symbols value");
	bad("[job]\nagent = fake\nsymbols = , ,\n", 3, "no symbols",
	    "only separators");
	bad("agent = fake\n[job]\nagent = fake\nsymbols = A\n", 1,
	    "'agent' outside [job] and [params]", "a key before any section");
	bad(HEAD "[extra]\nx = 1\n", 5,
	    "unknown section [extra] (only [job] and [params])",
	    "an unknown section");
	bad(HEAD "[JOB]\nname = x\n", 5, "unknown section [JOB]",
	    "section names are case-sensitive");
	bad(HEAD "symbol = C\n", 4, "unknown key 'symbol' in [job]",
	    "a typo of a key");
	bad(HEAD "Agent = fake\n", 4, "unknown key 'Agent' in [job]",
	    "keys are case-sensitive");
	bad(HEAD "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = 1\n", 4,
	    "unknown key 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' in [job]",
	    "a 100-character key, reported whole");
	bad("[job]\nagent = fake\nsymbols = A\n; x\nagent = fake\n", 5,
	    "'agent' given twice (first at line 2)", "a key given twice");
	bad(HEAD "[params]\nk = 1\n[job]\nname = a\n[params]\nk = 2\n", 9,
	    "'k' given twice (first at line 5)",
	    "a param given twice across repeated sections");
	bad(HEAD "[job]\nsymbols = C\n", 5, "'symbols' given twice",
	    "a key given twice across repeated sections");

	static const char nul1[] = "[job]\nagent = fake\nsymbols = A\0B\n";
	bad_n(nul1, sizeof(nul1) - 1, 3, "NUL byte in file", "NUL in a value");
	static const char nul2[] = "\0[job]\nagent = fake\nsymbols = A\n";
	bad_n(nul2, sizeof(nul2) - 1, 1, "NUL byte in file", "NUL first");
	static const char nul3[] = "[job]\nagent = fake\nsymbols = A\n\0";
	bad_n(nul3, sizeof(nul3) - 1, 4, "NUL byte in file", "NUL last");
	bad(HEAD "name = \xFF\n", 4, "invalid UTF-8", "byte FF");
	bad(HEAD "name = \xC0\xAF\n", 4, "invalid UTF-8", "an overlong '/'");
	bad(HEAD "name = \xED\xA0\x80\n", 4, "invalid UTF-8", "a surrogate");
	bad(HEAD "; comment \xE2\x82\n", 4, "invalid UTF-8",
	    "a truncated sequence in a comment");

	bad(HEAD "name = a\x01z\n", 4, "name: control character in value",
	    "a control character");
	bad(HEAD "name = red \x1b[31m\n", 4, "name: control character in value",
	    "an ESC sequence");
	bad(HEAD "name = a\x7fz\n", 4, "name: control character in value",
	    "DEL");
	bad(HEAD "name = a\rz\n", 4, "name: control character in value",
	    "a lone CR inside a value");
	good(HEAD "name = a\tz\n", "a tab inside a [job] value (it may separate "
				    "symbols)");
	bad(HEAD "[params]\nk = a\tz\n", 5, "k: control character in value",
	    "a tab inside a [params] value");
	bad(HEAD "[params]\nk = \x07\n", 5, "k: control character in value",
	    "a control character in a param");

	bad(HEAD "start = 2023-02-29\n", 4, "start: not a date (YYYY-MM-DD): "
	    "2023-02-29", "2023-02-29");
	bad(HEAD "end = 2023-13-01\n", 4, "end: not a date", "month 13");
	bad(HEAD "start = 2024-1-1\n", 4, "start: not a date", "short date");
	bad(HEAD "start = yesterday\n", 4, "start: not a date", "a word");
	bad(HEAD "start = 2025-01-02\nend = 2025-01-01\n", 5,
	    "end 2025-01-01 is before start 2025-01-02", "end before start");

	bad(HEAD "priority = 101\n", 4, "priority: 101 is out of range -100..100",
	    "priority 101");
	bad(HEAD "priority = -101\n", 4, "out of range", "priority -101");
	bad(HEAD "priority = 1e9\n", 4, "priority: not an integer: 1e9",
	    "priority 1e9");
	bad(HEAD "priority = 0x10\n", 4, "priority: not an integer: 0x10",
	    "priority 0x10");
	bad(HEAD "priority = 99999999999999999999\n", 4, "priority:",
	    "priority overflowing");
	bad(HEAD "priority =\n", 4, "priority: not an integer",
	    "an empty priority");
	bad(HEAD "concurrency = 0\n", 4, "concurrency: 0 is out of range",
	    "concurrency 0");
	bad(HEAD "concurrency = -1\n", 4, "concurrency: -1 is out of range",
	    "concurrency -1");
	bad(HEAD "max_attempts = 0\n", 4, "max_attempts: 0 is out of range",
	    "max_attempts 0");
	bad(HEAD "max_attempts = 1001\n", 4, "max_attempts: 1001 is out of range",
	    "max_attempts 1001");
	bad(HEAD "timeout = 0\n", 4, "timeout: must be greater than 0",
	    "timeout 0");
	/* Durations are bounded where they are parsed: at most 365 days. */
	good(HEAD "timeout = 365d\nbatch_timeout = 8760h\n",
	     "timeout and batch_timeout at 365d, the largest");
	is_int(J.timeout_ms, 365 * 86400000LL, "  timeout 365d");
	bad(HEAD "timeout = 366d\n", 4, "timeout: at most 365d (got 366d)",
	    "timeout above 365d");
	bad(HEAD "timeout = 106752d\n", 4,
	    "timeout: at most 365d (got 106752d)",
	    "timeout 106752d (past 2^63 ns)");
	bad(HEAD "batch_timeout = 365.5d\n", 4,
	    "batch_timeout: at most 365d (got 365.5d)",
	    "batch_timeout above 365d");
	bad(HEAD "timeout = 0.0001s\n", 4, "timeout: must be greater than 0",
	    "timeout rounding to 0 ms");
	bad(HEAD "timeout = 5x\n", 4, "timeout: not a duration", "timeout 5x");
	bad(HEAD "timeout = -1s\n", 4, "timeout: not a duration",
	    "a negative timeout");
	bad(HEAD "batch_timeout = 0s\n", 4,
	    "batch_timeout: must be greater than 0", "batch_timeout 0");
	bad(HEAD "batch_timeout = soon\n", 4, "batch_timeout: not a duration",
	    "batch_timeout soon");

	char big[600];
	memset(big, 'n', 257);
	big[257] = '\0';
	char *t = xasprintf(HEAD "name = %s\n", big);
	bad(t, 4, "name: longer than 256 bytes", "a 257-byte name");
	free(t);
	t = xasprintf(HEAD "origin = %s\n", big);
	bad(t, 4, "origin: longer than 256 bytes", "a 257-byte origin");
	free(t);
	char *v = xmalloc(4098);
	memset(v, 'v', 4097);
	v[4097] = '\0';
	t = xasprintf(HEAD "[params]\nk = %s\n", v);
	bad(t, 5, "k: longer than 4096 bytes", "a 4097-byte param value");
	free(t);
	free(v);
	bad(HEAD "timeframe = 1d;rm\n", 4, "timeframe must match",
	    "a timeframe with ';'");
	bad(HEAD "timeframe = 123456789012345678901234567890123\n", 4,
	    "timeframe must match", "a 33-character timeframe");
	bad(HEAD "source = a b\n", 4, "source must match", "a source with a blank");

	bad(HEAD "[params]\nfast-ma = 1\n", 5,
	    "parameter name 'fast-ma' must match [A-Za-z0-9_]{1,64}",
	    "a param name with a dash");
	bad(HEAD "[params]\nx.y = 1\n", 5, "parameter name 'x.y'",
	    "a param name with a dot");
	bad(HEAD "[params]\n$(id) = 1\n", 5, "parameter name '$(id)'",
	    "a param name with shell characters");
	bad(HEAD "[params]\np2345678901234567890123456789012345678901234567890"
	    "123456789012345 = 1\n", 5, "parameter name", "a 65-character name");
	bad(HEAD "[params]\n= 1\n", 5, "empty key name", "an empty param name");

	bad(HEAD "id = ../x\n", 4, "id '../x' must match", "id ../x");
	bad(HEAD "id = a/b\n", 4, "id 'a/b' must match", "id a/b");
	bad(HEAD "id = ..\n", 4, "id '..' must match", "id ..");
	bad(HEAD "id = a..b\n", 4, "id 'a..b' must match", "id a..b");
	bad(HEAD "id = .hidden\n", 4, "id '.hidden' must match", "id .hidden");
	bad(HEAD "id = -x\n", 4, "id '-x' must match", "id -x");
	bad(HEAD "id = $(rm -rf /)\n", 4, "id '$(rm -rf /)' must match",
	    "id with a command substitution");
	bad(HEAD "id =\n", 4, "id '' must match", "an empty id");
	bad(HEAD "id = A234567890123456789012345678901234567890123456789012345"
	    "6789012345\n", 4, "must match", "a 65-character id");

	bad("[job]\nagent = fake\nsymbols = A $(rm -rf /)\n", 3,
	    "invalid symbol '$(rm'", "a command substitution in symbols");
	bad("[job]\nagent = fake\nsymbols = `reboot`\n", 3,
	    "invalid symbol '`reboot`'", "backticks in symbols");
	bad("[job]\nagent = fake\nsymbols = A;B\n", 3, "invalid symbol 'A;B'",
	    "';' in a symbol");
	bad("[job]\nagent = fake\nsymbols = A|B\n", 3, "invalid symbol 'A|B'",
	    "'|' in a symbol");
	bad("[job]\nagent = fake\nsymbols = A&&B\n", 3, "invalid symbol 'A&&B'",
	    "'&&' in a symbol");
	bad("[job]\nagent = fake\nsymbols = ../etc\n", 3,
	    "invalid symbol '../etc'", "a path as a symbol");
	bad("[job]\nagent = fake\nsymbols = -rf\n", 3, "invalid symbol '-rf'",
	    "an option-like symbol");
	bad("[job]\nagent = fake\nsymbols = .A\n", 3, "invalid symbol '.A'",
	    "a symbol starting with '.'");
	bad("[job]\nagent = fake\nsymbols = \xC3\x84PFEL\n", 3, "invalid symbol",
	    "a non-ASCII symbol");
	bad("[job]\nagent = fake\nsymbols = A23456789012345678901234567890123\n",
	    3, "longer than 32", "a 33-character symbol");

	bad("[job]\nagent = nosuch\nsymbols = A\n", 2,
	    "agent 'nosuch' is not defined in", "an agent not in the conf");
	bad("[job]\nagent = ../../bin/sh\nsymbols = A\n", 2,
	    "agent '../../bin/sh' is not a valid name", "an agent path");
	bad("[job]\nagent =\nsymbols = A\n", 2, "is not a valid name",
	    "an empty agent");

	bad("[job\nagent = fake\nsymbols = A\n", 1, "malformed section header",
	    "a section header without ']'");
	bad(HEAD "[params\nk = 1\n", 4, "malformed section header",
	    "a later header without ']'");
	bad(HEAD "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n"
	    "k = 1\n", 4, "section name too long", "a 60-character section");
	bad(HEAD "just some words\n", 4, "expected KEY = VALUE",
	    "a line without '='");
	bad(HEAD "k ; = v\n", 4, "expected KEY = VALUE",
	    "'=' only inside a comment");
	bad(HEAD "= v\n", 4, "empty key name", "an empty key");

	/* Several problems: each reported, each with its own line. */
	bad("[job]\nagent = fake\nsymbols = A $B\npriority = 500\n"
	    "start = 2023-02-29\nbogus = 1\n", 3, "invalid symbol '$B'",
	    "several problems at once");
	ok(has_msg(4, "priority") && has_msg(5, "start") &&
	   has_msg(6, "unknown key 'bogus'"), "  every one with its line");
	is_int(D.errors, 4, "  four errors");

	/* A flood of bad symbols is counted, not printed in full. */
	struct sb fl = SB_INIT;
	sb_adds(&fl, "[job]\nagent = fake\nsymbols =");
	for (int i = 0; i < 200; i++)
		sb_addf(&fl, " $X%d", i);
	sb_adds(&fl, "\n");
	bad(fl.buf, 3, "invalid symbol '$X0'", "200 bad symbols");
	is_int(D.errors, 200, "  200 errors counted");
	int lines = 0;
	for (const char *p = dtext(); *p; p++)
		lines += *p == '\n';
	ok(lines <= 50 && D.suppressed == 200 - lines,
	   "  at most 50 lines written, the rest counted (%d, %d)", lines,
	   D.suppressed);
	sb_release(&fl);

	/* The 64 MiB bound is checked before anything else. */
	size_t n = (size_t)JOB_MAX_BYTES + 1;
	char *huge = xmalloc(n);
	memset(huge, ';', n);
	memcpy(huge, HEAD, strlen(HEAD));
	bad_n(huge, n, 1, "job file larger than 64 MiB", "64 MiB + 1 byte");
	huge[n - 2] = '\n';
	int rc = parse_with(huge, n - 1, conf);
	ok(rc == 0, "exactly 64 MiB (a long comment line) is valid");
	if (rc)
		diag("%.300s", dtext());
	free(huge);
}

/* Problems found by reading src/inifile.c and src/job.c. */
static void test_known_bugs(void)
{
	/*
	 * A [params] key of 49..64 characters followed by a continuation
	 * line: inih hands the continuation over with its 50-byte prev_name,
	 * raw_key() then takes the key from the *continuation's* raw line
	 * ("2\n"), and collect_fn() records a new param named "2\n".
	 */
	int rc = parse(HEAD "[params]\n"
		       "p2345678901234567890123456789012345678901234567890 = 1\n"
		       "  2\n");
	ok(rc == 0 && J.nparams == 1 &&
		!strcmp(J.params[0].value, "1 2"),
		"a 50-character param continued on the next line is valid");
	if (rc)
		diag("%s", dtext());

	/*
	 * Duplicates with a 'symbols' key: job_parse() calls inidoc_release()
	 * and then reads sym->line (sym points into the released doc) for the
	 * warning -- a use after free.  Plain builds usually read the old
	 * value; under AddressSanitizer (make asan) or valgrind the parse
	 * aborts.  Run in a child so that an abort is one failing line.
	 */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int r = parse("[job]\nagent = fake\nsymbols = A B A C B A\n");
		_exit(r == 0 && J.nsymbols == 3 && D.warnings == 1 &&
		      has_msg(3, "warning: 3 symbols listed twice, run once "
				 "(first: A)") ? 0 : 3);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	ok(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"duplicates in 'symbols': one warning at line 3, run once");
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		diag("child status %d", st);

	/*
	 * A bad symbol on a continuation line is reported at the line of
	 * "symbols =", not where it is: the value is joined before parsing.
	 */
	rc = parse("[job]\nagent = fake\nsymbols = A B\n  C D\n  E $F\n");
	ok(rc == -1, "a bad symbol on a continuation line is an error");
	ok(has_msg(5, "invalid symbol '$F'"),
		"  reported at its own line 5");
	if (!has_msg(5, "invalid symbol"))
		diag("%s", dtext());
}

int main(void)
{
	alarm(120);	/* a FIFO or a loop must not hang the suite */
	inifile_setup(JOB_MAX_BYTES + 16);
	home = scratch_make("job");
	char *p = xasprintf("%s/u", home);
	mkdir(p, 0755);
	free(p);
	p = xasprintf("%s/universes", home);
	mkdir(p, 0755);
	free(p);
	snprintf(outside, sizeof(outside), "%s.outside", home);
	home_fd = scratch_open();

	put("runner.ini", "[agent fake]\ncommand = /bin/true\n"
			  "[agent other]\ncommand = /bin/false\n");
	p = xasprintf("%s/runner.ini", home);
	conf = conf_load(p);
	free(p);
	if (!conf) {
		printf("Bail out! cannot load the test configuration\n");
		return 1;
	}

	test_every_key();
	test_defaults_and_forms();
	test_long_line();
	test_symbols_file();
	test_symbols_file_escapes();
	test_invalid();
	test_known_bugs();

	job_release(&J);
	diag_release(&D);
	conf_free(conf);
	close(home_fd);
	unlink(outside);
	scratch_remove();
	done_testing();
	return exit_status();
}
