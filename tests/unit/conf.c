/*
 * conf.c: conf_load() on configuration files written into a temporary
 * directory: the SPEC 5 example with every key, the defaults, and every
 * kind of invalid file (each must give NULL and a "FILE:LINE: message").
 */
#include "scratch.h"
#include "tap.h"
#include "category.h"
#include "conf.h"
#include "inifile.h"
#include "job.h"
#include "util.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>


static const char *dir;
static char path[300];
static char errpath[300];
static struct sb errs;	/* what the last load printed on stderr */

static void write_file(const char *p, const char *text, size_t len)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_all(fd, text, len) < 0 || close(fd) < 0) {
		perror(p);
		exit(2);
	}
}

/* conf_load(p) with its stderr captured in errs. */
static struct conf *load_path(const char *p)
{
	fflush(stderr);
	int saved = dup(2);
	int fd = open(errpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 2);
	struct conf *c = conf_load(p);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	sb_reset(&errs);
	lseek(fd, 0, SEEK_SET);
	read_fd_bounded(fd, 1 << 20, &errs);
	close(fd);
	return c;
}

/* conf_load() of text written to DIR/runner.ini. */
static struct conf *load_n(const char *text, size_t len)
{
	write_file(path, text, len);
	return load_path(path);
}

static struct conf *load(const char *text)
{
	return load_n(text, strlen(text));
}

static const char *err_text(void)
{
	return errs.buf ? errs.buf : "";
}

/* Does errs hold a line "runner: PATH:LINE: ...PART..."? */
static bool err_has(int line, const char *part)
{
	char prefix[400];
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "runner: %s:%d: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "runner: %s", path);
	for (const char *p = err_text(); *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *l = xstrndup(p, n);
		bool hit = !strncmp(l, prefix, strlen(prefix)) &&
			   strstr(l + strlen(prefix), part);
		free(l);
		if (hit)
			return true;
		p += n + (nl ? 1 : 0);
	}
	return false;
}

/* Every printed line is "runner: PATH:N: ..." (a line number, one line). */
static bool err_all_have_lines(void)
{
	char prefix[400];
	int n = snprintf(prefix, sizeof(prefix), "runner: %s:", path);
	const char *p = err_text();
	if (!*p)
		return false;
	while (*p) {
		const char *nl = strchr(p, '\n');
		if (strncmp(p, prefix, (size_t)n) || !isdigit((unsigned char)p[n]))
			return false;
		if (!nl)
			break;
		p = nl + 1;
	}
	return true;
}

/* An invalid file: NULL, and (when line >= 0) the message at that line. */
static void bad(const char *text, int line, const char *part, const char *desc)
{
	struct conf *c = load(text);
	ok(c == NULL, "invalid: %s", desc);
	if (c)
		conf_free(c);
	if (line >= 0) {
		if (!ok(err_has(line, part), "  message at line %d: %s", line,
			part))
			diag("stderr was:\n%s", err_text());
	}
}

static const char full[] =
	"; SPEC 5 example, every key\n"				/* 1 */
	"[runner]\n"						/* 2 */
	"max_children = 8            ; global cap\n"		/* 3 */
	"notify = /usr/local/bin/page-oncall\n"			/* 4 */
	"dedup_window = 5m\n"					/* 5 */
	"kill_grace = 2s\n"					/* 6 */
	"\n"							/* 7 */
	"[retry]\n"						/* 8 */
	"max_attempts = 3\n"					/* 9 */
	"delays = 1 2 4 8 16 30      ; seconds\n"		/* 10 */
	"jitter = 0.2\n"					/* 11 */
	"retry_on = timeout engine_error unknown memory_error\n" /* 12 */
	"\n"							/* 13 */
	"[breaker]\n"						/* 14 */
	"threshold = 3\n"					/* 15 */
	"open_for = 30s\n"					/* 16 */
	"\n"							/* 17 */
	"[correlation]\n"					/* 18 */
	"window = 5m\n"						/* 19 */
	"min_group = 2\n"					/* 20 */
	"\n"							/* 21 */
	"[retention]\n"						/* 22 */
	"archive_after = 7d\n"					/* 23 */
	"delete_archives_after = 90d\n"				/* 24 */
	"compression = gzip          ; gzip | zstd | none\n"	/* 25 */
	"\n"							/* 26 */
	"[agent strategy_analyst]\n"				/* 27 */
	"command = examples/agents/backtest --strategy sma   ; argv\n" /* 28 */
	"max_concurrent = 3\n"					/* 29 */
	"timeout = 2m\n"					/* 30 */
	"memory_limit = 512M\n"					/* 31 */
	"cpu_limit = 60s\n"					/* 32 */
	"source = koyfin\n"					/* 33 */
	"launcher =                  ; optional argv prefix\n"	/* 34 */
	"env = TZ=UTC LANG=C.UTF-8   ; extra environment\n"	/* 35 */
	"output_limit = 10M\n"					/* 36 */
	"\n"							/* 37 */
	"[agent slurm.job-1]\n"					/* 38 */
	"command = '/opt/my tools/scan' --flag \"two words\" {symbol}\n" /* 39 */
	"launcher = srun --ntasks=1 --quiet\n"			/* 40 */
	"env = 'GREETING=hello world' X=\n";			/* 41 */

static void test_full(void)
{
	struct conf *c = load(full);
	if (!ok(c != NULL, "the full SPEC 5 example loads")) {
		diag("stderr was:\n%s", err_text());
		return;
	}
	is_str(err_text(), "", "  and prints nothing");
	is_str(c->path, path, "path");
	is_int(c->max_children, 8, "max_children");
	is_int(c->nnotify, 1, "notify: one word");
	is_str(c->nnotify ? c->notify[0] : NULL, "/usr/local/bin/page-oncall",
	       "notify");
	is_int(c->dedup_window_ms, 300000, "dedup_window");
	is_int(c->kill_grace_ms, 2000, "kill_grace");
	is_int(c->max_attempts, 3, "max_attempts");
	is_int(c->ndelays, 6, "delays: six");
	static const int64_t want_delays[] = { 1000, 2000, 4000, 8000, 16000,
					       30000 };
	ok(c->ndelays == 6 && !memcmp(c->delays_ms, want_delays,
				      sizeof(want_delays)),
	   "delays: 1 2 4 8 16 30 seconds");
	ok(c->jitter > 0.1999 && c->jitter < 0.2001, "jitter 0.2");
	is_int(c->retry_on,
	       CAT_BIT(CAT_TIMEOUT) | CAT_BIT(CAT_ENGINE) |
		       CAT_BIT(CAT_UNKNOWN) | CAT_BIT(CAT_MEMORY),
	       "retry_on");
	is_int(c->breaker_threshold, 3, "breaker threshold");
	is_int(c->breaker_open_ms, 30000, "breaker open_for");
	is_int(c->corr_window_ms, 300000, "correlation window");
	is_int(c->min_group, 2, "correlation min_group");
	is_int(c->archive_after_ms, 7 * 86400000LL, "archive_after");
	is_int(c->delete_archives_after_ms, 90 * 86400000LL,
	       "delete_archives_after");
	is_int(c->compression, COMPRESS_GZIP, "compression gzip");
	is_int(c->nagents, 2, "two agents");

	const struct agent_conf *a = conf_agent(c, "strategy_analyst");
	if (ok(a != NULL, "agent strategy_analyst found")) {
		is_str(a->name, "strategy_analyst", "  name");
		is_int(a->ncommand, 3, "  command: three words");
		if (a->ncommand == 3) {
			is_str(a->command[0], "examples/agents/backtest",
			       "  command[0]");
			is_str(a->command[1], "--strategy", "  command[1]");
			is_str(a->command[2], "sma", "  command[2]");
			ok(a->command[3] == NULL, "  command is NULL-terminated");
		}
		is_int(a->nlauncher, 0, "  empty launcher");
		is_str(a->exec_path, "examples/agents/backtest",
		       "  exec_path: a path with '/' is kept as is");
		is_int(a->max_concurrent, 3, "  max_concurrent");
		is_int(a->timeout_ms, 120000, "  timeout");
		is_int(a->memory_limit, 512ULL << 20, "  memory_limit");
		is_int(a->cpu_limit_ms, 60000, "  cpu_limit");
		is_int(a->output_limit, 10ULL << 20, "  output_limit");
		is_str(a->source, "koyfin", "  source");
		is_int(a->nenv, 2, "  env: two entries");
		if (a->nenv == 2) {
			is_str(a->env[0], "TZ=UTC", "  env[0]");
			is_str(a->env[1], "LANG=C.UTF-8", "  env[1]");
		}
	}
	a = conf_agent(c, "slurm.job-1");
	if (ok(a != NULL, "agent slurm.job-1 found")) {
		is_int(a->ncommand, 4, "  quoted command: four words");
		if (a->ncommand == 4) {
			is_str(a->command[0], "/opt/my tools/scan",
			       "  single quotes keep the blank");
			is_str(a->command[2], "two words",
			       "  double quotes keep the blank");
			is_str(a->command[3], "{symbol}",
			       "  {symbol} kept for later");
		}
		is_int(a->nlauncher, 3, "  launcher: three words");
		if (a->nlauncher == 3)
			is_str(a->launcher[2], "--quiet", "  launcher[2]");
		ok(a->exec_path && strstr(a->exec_path, "srun"),
		   "  exec_path comes from the launcher");
		is_int(a->max_concurrent, 8,
		       "  max_concurrent defaults to max_children");
		is_int(a->timeout_ms, 3600000, "  timeout defaults to 1h");
		is_int(a->memory_limit, 0, "  no memory_limit");
		is_int(a->cpu_limit_ms, 0, "  no cpu_limit");
		is_int(a->output_limit, 0, "  no output_limit");
		ok(a->source == NULL, "  no source");
		is_int(a->nenv, 2, "  env: two entries");
		if (a->nenv == 2) {
			is_str(a->env[0], "GREETING=hello world",
			       "  quoted env entry");
			is_str(a->env[1], "X=", "  empty env value");
		}
	}
	ok(conf_agent(c, "nope") == NULL, "unknown agent: NULL");
	ok(conf_agent(c, "strategy") == NULL, "no prefix match");
	conf_free(c);
}

static void test_defaults(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct conf *c = load("[agent a]\ncommand = /bin/true\n");
	if (!ok(c != NULL, "an agent alone loads")) {
		diag("stderr was:\n%s", err_text());
		return;
	}
	is_int(c->max_children, ncpu > 0 ? ncpu : 1,
	       "default max_children: number of CPUs");
	ok(c->nnotify == 0 && c->notify == NULL, "default: no notify");
	is_int(c->dedup_window_ms, 300000, "default dedup_window 5m");
	is_int(c->kill_grace_ms, 5000, "default kill_grace 5s");
	is_int(c->max_attempts, 3, "default max_attempts 3");
	static const int64_t want_delays[] = { 1000, 2000, 4000, 8000, 16000,
					       30000 };
	ok(c->ndelays == 6 && !memcmp(c->delays_ms, want_delays,
				      sizeof(want_delays)),
	   "default delays 1 2 4 8 16 30");
	ok(c->jitter > 0.1999 && c->jitter < 0.2001, "default jitter 0.2");
	is_int(c->retry_on,
	       CAT_BIT(CAT_TIMEOUT) | CAT_BIT(CAT_ENGINE) |
		       CAT_BIT(CAT_UNKNOWN) | CAT_BIT(CAT_MEMORY),
	       "default retry_on");
	is_int(c->breaker_threshold, 3, "default threshold 3");
	is_int(c->breaker_open_ms, 30000, "default open_for 30s");
	is_int(c->corr_window_ms, 300000, "default window 5m");
	is_int(c->min_group, 2, "default min_group 2");
	is_int(c->archive_after_ms, 7 * 86400000LL, "default archive_after 7d");
	is_int(c->delete_archives_after_ms, 90 * 86400000LL,
	       "default delete_archives_after 90d");
	is_int(c->compression, COMPRESS_GZIP, "default compression gzip");
	const struct agent_conf *a = conf_agent(c, "a");
	if (ok(a != NULL, "agent a")) {
		is_int(a->max_concurrent, c->max_children,
		       "agent max_concurrent defaults to max_children");
		is_int(a->timeout_ms, 3600000, "agent timeout defaults to 1h");
		ok(!a->memory_limit && !a->cpu_limit_ms && !a->output_limit &&
		   !a->source && !a->nlauncher && !a->nenv,
		   "agent limits, source, launcher, env: none");
		is_str(a->exec_path, "/bin/true", "exec_path");
	}
	conf_free(c);

	c = load("");
	ok(c != NULL && c->nagents == 0, "an empty file loads: no agents");
	conf_free(c);
	c = load("; nothing but\n# comments\n\n");
	ok(c != NULL && c->nagents == 0, "a comment-only file loads");
	conf_free(c);

	c = load("[runner]\r\nmax_children = 2\r\n[agent a]\r\n"
		 "command = /bin/echo hi\r\n");
	ok(c && c->max_children == 2 && c->nagents == 1 &&
	   c->agents[0].ncommand == 2 && !strcmp(c->agents[0].command[1], "hi"),
	   "CRLF line endings load, no CR in values");
	conf_free(c);

	c = load("\xEF\xBB\xBF[runner]\nmax_children = 2\n");
	ok(c && c->max_children == 2, "a UTF-8 BOM is accepted");
	conf_free(c);

	c = load("[runner]\nmax_children = 16\n[agent a]\ncommand = x\n");
	ok(c && c->agents[0].max_concurrent == 16,
	   "agent max_concurrent follows a given max_children");
	conf_free(c);

	c = load("[retry]\nretry_on = data_error, parameter_error,timeout\n"
		 "delays = 0.5 1m\njitter = 0\n[retention]\ncompression = zstd\n");
	ok(c && c->retry_on == (CAT_BIT(CAT_DATA) | CAT_BIT(CAT_PARAM) |
				CAT_BIT(CAT_TIMEOUT)),
	   "retry_on separated by commas and spaces");
	ok(c && c->ndelays == 2 && c->delays_ms[0] == 500 &&
	   c->delays_ms[1] == 60000, "delays with a fraction and a unit");
	ok(c && c->jitter == 0, "jitter 0");
	ok(c && c->compression == COMPRESS_ZSTD, "compression zstd");
	conf_free(c);

	c = load("[retry]\nretry_on =\njitter = 1\n[retention]\n"
		 "compression = none\narchive_after = 0\n[runner]\n"
		 "dedup_window = 0\n");
	ok(c && c->retry_on == 0, "empty retry_on: retry nothing");
	ok(c && c->jitter == 1, "jitter 1");
	ok(c && c->compression == COMPRESS_NONE, "compression none");
	ok(c && c->archive_after_ms == 0 && c->dedup_window_ms == 0,
	   "archive_after and dedup_window may be 0");
	conf_free(c);

	c = load("[agent a]\ncommand = x\n  --more args\n");
	ok(c && c->agents[0].ncommand == 3,
	   "a continuation line extends the command");
	conf_free(c);
}

static void test_invalid(void)
{
	/* The cases of the brief, each with the line of the message. */
	bad("[runner]\nmax_children = 4\nmax_kids = 3\n", 3,
	    "unknown key 'max_kids' in [runner]", "unknown key");
	bad("[runner]\nmax_children = 4\n\n[runnr]\nmax_children = 4\n", 5,
	    "unknown section [runnr]", "unknown section");
	bad("[retry]\nmax_attempts = 3\n; comment\nmax_attempts = 4\n", 4,
	    "'max_attempts' given twice (first at line 2)", "key given twice");
	bad("[runner]\nmax_children = 1\n[runner]\nmax_children = 2\n", 4,
	    "given twice", "key twice across a repeated section");
	bad("[agent a]\ncommand = x\n[agent a]\ncommand = y\n", 4,
	    "'command' given twice", "agent command twice across sections");
	bad("[runner]\ndedup_window = 5x\n", 2, "dedup_window: not a duration",
	    "bad duration");
	bad("[runner]\nkill_grace = -1s\n", 2, "kill_grace: not a duration",
	    "negative duration");
	bad("[breaker]\nopen_for = 0\n", 2, "must be greater than 0",
	    "open_for 0");
	bad("[correlation]\nwindow = 0s\n", 2, "must be greater than 0",
	    "window 0");
	{
		/* An agent's timeout of 0 means none. */
		struct conf *c = load("[agent a]\ncommand = x\ntimeout = 0\n");
		ok(c && c->nagents == 1 && c->agents[0].timeout_ms == 0,
		   "agent timeout 0: no timeout");
		conf_free(c);
	}
	bad("[agent a]\ncommand = x\ncpu_limit = 1x\n", 3,
	    "cpu_limit: not a duration", "bad cpu_limit");
	bad("[agent a]\ncommand = x\nmemory_limit = 12Q\n", 3,
	    "memory_limit: not a size", "bad size");
	bad("[agent a]\ncommand = x\nmemory_limit = 1K\n", 3,
	    "memory_limit: at least", "memory_limit below 1M");
	bad("[agent a]\ncommand = x\noutput_limit = 1.5M\n", 3,
	    "output_limit: not a size", "bad output_limit");
	bad("[runner]\nmax_children = 0\n", 2, "max_children: 0 is out of range",
	    "max_children 0");
	bad("[runner]\nmax_children = four\n", 2, "not an integer",
	    "max_children not a number");
	bad("[retry]\nmax_attempts = 0\n", 2, "out of range",
	    "max_attempts 0");
	bad("[retry]\njitter = 2\n", 2, "jitter: 2 is out of range", "jitter 2");
	bad("[retry]\njitter = -0.1\n", 2, "jitter:", "jitter negative");
	bad("[retry]\njitter = nan\n", 2, "jitter: not a number", "jitter nan");
	bad("[retry]\nretry_on = timeout network_error\n", 2,
	    "retry_on: unknown category 'network_error'",
	    "retry_on unknown category");
	bad("[retry]\nretry_on = TIMEOUT\n", 2, "unknown category",
	    "retry_on is case-sensitive");
	bad("[retry]\ndelays = 1 x 4\n", 2, "delays: not a duration",
	    "bad delay");
	bad("[retry]\ndelays =\n", 2, "delays: empty list", "empty delays");
	bad("[agent a]\ncommand =\n", 2, "command: empty", "empty command");
	bad("[agent a]\ncommand = 'unterminated\n", 2,
	    "command: unterminated ' quote", "unterminated quote in command");
	bad("[agent a]\ncommand = \"x\n", 2, "command: unterminated \" quote",
	    "unterminated double quote in command");
	bad("[agent a]\ncommand = x\nlauncher = srun 'x\n", 3,
	    "launcher: unterminated", "unterminated quote in launcher");
	bad("[runner]\nnotify = 'x\n", 2, "notify: unterminated",
	    "unterminated quote in notify");
	bad("[agent bad/name]\ncommand = x\n", 1,
	    "agent name 'bad/name' must match", "bad agent name (slash)");
	bad("[agent ../x]\ncommand = x\n", 1, "agent name", "agent name ../x");
	bad("[agent a b]\ncommand = x\n", 1, "agent name 'a b'",
	    "agent name with a blank");
	bad("[agent ]\ncommand = x\n", 1, "agent name ''", "empty agent name");
	bad("[agent a2345678901234567890123456789012345678901]\ncommand = x\n", 1,
	    "agent name", "agent name of 41 characters");
	bad("[agent]\ncommand = x\n", 2, "unknown section [agent]",
	    "[agent] without a name");
	bad("[agent a]\ncommand = x\nenv = TZ=UTC LANG\n", 3,
	    "env: 'LANG' is not KEY=VALUE", "env entry without '='");
	bad("[agent a]\ncommand = x\nenv = =x\n", 3, "env: '=x' is not KEY=VALUE",
	    "env entry with an empty name");
	bad("[agent a]\ncommand = x\nmax_concurrent = 0\n", 3,
	    "max_concurrent: 0 is out of range", "max_concurrent 0");
	bad("[agent a]\ncommand = x\nsource = a b\n", 3, "source must match",
	    "bad source");
	bad("[agent a]\ncommand = x\nnice = 5\n", 3, "unknown key 'nice' in [agent a]",
	    "unknown agent key");
	bad("[retention]\ncompression = bz2\n", 2,
	    "compression: expected gzip, zstd or none", "bad compression");
	bad("max_children = 3\n[runner]\n", 1,
	    "'max_children' outside any [section]", "key outside any section");
	bad("[runner]\nmax_children\n", 2, "expected KEY = VALUE",
	    "line without '='");
	bad("[runner\nmax_children = 2\n", 1, "malformed section header",
	    "section header without ']'");
	bad("[runner]\n= 3\n", 2, "empty key name", "empty key name");
	bad("[agent a]\ncommand = x\x01y\n", 2, "command: control character",
	    "control character in command");
	bad("[runner]\nnotify = /bin/x\x1b[31m\n", 2, "notify: control character",
	    "ESC in notify");
	{
		static const char nul[] = "[runner]\nmax_children = 4\x00\n";
		struct conf *c = load_n(nul, sizeof(nul) - 1);
		ok(c == NULL, "invalid: NUL byte");
		ok(err_has(2, "NUL byte"), "  message at line 2: NUL byte");
		conf_free(c);
	}
	bad("[runner]\nmax_children = 4\nnotify = \xC0\xAF\n", 3, "invalid UTF-8",
	    "invalid UTF-8");
	bad("[runner]\nmax_children = 0\ndedup_window = x\n[bogus]\nk = v\n", 2,
	    "max_children", "several problems: the first");
	ok(err_has(3, "dedup_window") && err_has(5, "unknown section [bogus]"),
	   "  every problem is reported with its line");
	ok(err_all_have_lines(), "  every line printed carries FILE:LINE:");

	struct conf *c = load("[bogus]\na = 1\nb = 2\nc = 3\n");
	ok(c == NULL && err_has(2, "unknown section [bogus]") &&
	   !err_has(3, "unknown section"),
	   "an unknown section is reported once");
	conf_free(c);

	/* A long key is reported whole, not cut at inih's 50 bytes. */
	bad("[runner]\n"
	    "max_children_but_with_a_very_long_name_past_fifty_bytes_x = 1\n", 2,
	    "unknown key 'max_children_but_with_a_very_long_name_past_fifty_bytes_x'",
	    "a long unknown key");

	/* Files that are not there or not files. */
	c = load_path("/nonexistent/runner.ini");
	ok(c == NULL && strstr(err_text(), "No such file"), "a missing file: NULL");
	c = load_path(dir);
	ok(c == NULL && strstr(err_text(), "not a regular file"),
	   "a directory: NULL");
}

/* Problems once found by reading src/conf.c, now fixed. */
static void test_known_bugs(void)
{
	struct conf *c;

	/* load_agents(): get_words(..., required) reports a missing command
	 * with line 0, so the message has no line number at all. */
	c = load("[runner]\nmax_children = 2\n[agent a]\nmax_concurrent = 2\n");
	ok(c == NULL, "invalid: agent without command");
	conf_free(c);
	ok(err_has(-1, "has no 'command'"), "  message names the problem");
	ok(err_all_have_lines(),
		"  message carries FILE:LINE:");

	/* An [agent X] section with no key at all defines nothing and is
	 * accepted silently: a job naming X then fails as "not defined". */
	c = load("[runner]\nmax_children = 2\n[agent empty]\n");
	ok(c == NULL,
		"an [agent X] section without any key is an error");
	conf_free(c);

	/* split_words() fails before setting its count, so the delays
	 * message says "empty list" instead of the quoting problem. */
	c = load("[retry]\ndelays = 1 '2\n");
	ok(c == NULL, "invalid: unterminated quote in delays");
	conf_free(c);
	ok(err_has(2, "unterminated"),
		"  message says unterminated quote");
}

/* [classify] and [classify NAME]: the stderr patterns of classification. */
static bool rule_is(const struct classify_rules *rs, size_t i, const char *pat,
		    int cat)
{
	return i < rs->n && !strcmp(rs->v[i].pattern, pat) &&
	       rs->v[i].category == cat;
}

static void test_classify(void)
{
	struct conf *c = load("[agent a]\ncommand = x\n");
	ok(c && c->agents[0].classify.n == 0 && c->agents[0].classify.builtin &&
		   c->classify.builtin,
	   "classify: no section, no patterns of its own, the built-ins on");
	conf_free(c);
	c = conf_default();
	ok(c->classify.n == 0 && c->classify.builtin,
	   "classify: conf_default has the built-ins on");
	conf_free(c);

	c = load("[classify]\n"					/* 1 */
		 "data_error = \"No price data found\" delisted\n"	/* 2 */
		 "timeout = 'Connection refused' HTTP*503\n"		/* 3 */
		 "[agent a]\n"						/* 4 */
		 "command = x\n"					/* 5 */
		 "timeout = 1m\n"					/* 6 */
		 "[agent b]\n"						/* 7 */
		 "command = y\n"					/* 8 */
		 "[classify a]\n"					/* 9 */
		 "unknown = invalid\n"					/* 10 */
		 "timeout = \"invalid session\"\n"			/* 11 */
		 "builtin = no\n");					/* 12 */
	if (!ok(c != NULL, "classify: home and agent sections load"))
		diag("stderr:\n%s", err_text());
	if (c) {
		const struct classify_rules *h = &c->classify;
		ok(h->n == 4 && rule_is(h, 0, "No price data found", CAT_DATA) &&
			   rule_is(h, 1, "delisted", CAT_DATA) &&
			   rule_is(h, 2, "Connection refused", CAT_TIMEOUT) &&
			   rule_is(h, 3, "HTTP*503", CAT_TIMEOUT) && h->builtin,
		   "classify: [classify] patterns in file order, quoted words kept whole");
		const struct agent_conf *a = conf_agent(c, "a");
		ok(a && a->timeout_ms == 60000, "classify: the agent's own timeout key is untouched");
		ok(a && a->classify.n == 6 &&
			   rule_is(&a->classify, 0, "invalid", CAT_UNKNOWN) &&
			   rule_is(&a->classify, 1, "invalid session", CAT_TIMEOUT) &&
			   rule_is(&a->classify, 2, "No price data found", CAT_DATA) &&
			   rule_is(&a->classify, 5, "HTTP*503", CAT_TIMEOUT) &&
			   !a->classify.builtin,
		   "classify: agent a: its patterns, then the home's; builtin = no");
		const struct agent_conf *b = conf_agent(c, "b");
		ok(b && b->classify.n == 4 &&
			   rule_is(&b->classify, 0, "No price data found", CAT_DATA) &&
			   b->classify.builtin,
		   "classify: agent b: the home's patterns and the built-ins");
		conf_free(c);
	}
	c = load("[classify]\nbuiltin = no\n[agent a]\ncommand = x\n"
		 "[classify a]\nbuiltin = yes\n[agent b]\ncommand = x\n");
	ok(c && !c->classify.builtin && conf_agent(c, "a")->classify.builtin &&
		   !conf_agent(c, "b")->classify.builtin,
	   "classify: builtin of [classify NAME] beats the home's");
	conf_free(c);

	bad("[classify]\ndata_error = \"\"\n", 2, "data_error: '': empty pattern",
	    "classify: an empty pattern");
	bad("[classify]\ndata_error =\n", 2, "data_error: no pattern",
	    "classify: an empty list");
	bad("[classify]\ntimeout = 'unterminated\n", 2,
	    "timeout: unterminated ' quote", "classify: an unterminated quote");
	bad("[classify]\nnetwork_error = refused\n", 2,
	    "unknown key 'network_error' in [classify]",
	    "classify: a key that is no category");
	bad("[classify]\nbuiltin = off\n", 2, "builtin: expected yes or no",
	    "classify: builtin neither yes nor no");
	bad("[agent a]\ncommand = x\n[classify b]\ntimeout = x\n", 3,
	    "[classify b]: no agent 'b' is defined",
	    "classify: a section for an agent that does not exist");
	bad("[agent a]\ncommand = x\n[classify a]\nretry = x\n", 4,
	    "unknown key 'retry' in [classify a]",
	    "classify: an unknown key in an agent's section");
	bad("[classify]\ntimeout = \"a\tb\" \"x\x01y\"\n", 2,
	    "control character", "classify: a control character in a pattern");
	{
		struct sb t = SB_INIT;
		sb_adds(&t, "[classify]\nunknown = ");
		for (int i = 0; i < CLASSIFY_PATTERN_MAX + 1; i++)
			sb_addc(&t, 'x');
		sb_adds(&t, "\n");
		bad(t.buf, 2, "longer than 200 bytes", "classify: a pattern too long");
		sb_reset(&t);
		sb_adds(&t, "[classify]\nunknown =");
		for (int i = 0; i < CLASSIFY_RULES_MAX + 1; i++)
			sb_addf(&t, " p%d", i);
		sb_adds(&t, "\n");
		bad(t.buf, 2, "more than 256 patterns in [classify]",
		    "classify: too many patterns");
		sb_release(&t);
	}
}

/*
 * Every duration and size has a largest value: accepted at it, refused one
 * unit above with "KEY: at most BOUND (got VALUE)" at the key's line.
 */
static void test_bounds(void)
{
	static const struct {
		const char *sec, *key, *at, *above, *bound;
	} b[] = {
		{ "runner", "dedup_window", "30d", "31d", "30d" },
		{ "runner", "kill_grace", "1h", "61m", "1h" },
		{ "runner", "kill_grace", "3600", "3601", "1h" },
		{ "runner", "shutdown_grace", "1d", "25h", "1d" },
		{ "runner", "max_output", "1T", "1025G", "1T" },
		{ "retry", "delays", "1s 30d", "1s 31d", "30d" },
		{ "breaker", "open_for", "30d", "30.5d", "30d" },
		{ "correlation", "window", "30d", "31d", "30d" },
		{ "retention", "archive_after", "36500d", "36501d", "36500d" },
		{ "retention", "delete_archives_after", "36500d", "36501d",
		  "36500d" },
		{ "agent a", "timeout", "365d", "366d", "365d" },
		{ "agent a", "cpu_limit", "365d", "8761h", "365d" },
		{ "agent a", "memory_limit", "64T", "65T", "64T" },
		{ "agent a", "output_limit", "1T", "1025G", "1T" },
		{ "agent a", "max_output", "1T", "1099511627777", "1T" },
	};
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		const char *cmd = strcmp(b[i].sec, "agent a") ? ""
							       : "command = x\n";
		char *text = xasprintf("[%s]\n%s%s = %s\n", b[i].sec, cmd,
				       b[i].key, b[i].at);
		struct conf *c = load(text);
		if (!ok(c != NULL, "%s = %s (the largest) is accepted",
			b[i].key, b[i].at))
			diag("%s", err_text());
		conf_free(c);
		free(text);
		text = xasprintf("[%s]\n%s%s = %s\n", b[i].sec, cmd, b[i].key,
				 b[i].above);
		char *msg = xasprintf("%s: at most %s (got %s)", b[i].key,
				      b[i].bound,
				      strchr(b[i].above, ' ')
					      ? strchr(b[i].above, ' ') + 1
					      : b[i].above);
		bad(text, *cmd ? 3 : 2, msg, b[i].key);
		free(msg);
		free(text);
	}
	/* The durations of the issue: refused, not overflowing later. */
	bad("[runner]\nkill_grace = 1000000000d\n", 2,
	    "kill_grace: at most 1h (got 1000000000d)", "kill_grace 1e9 days");
	bad("[agent a]\ncommand = x\ntimeout = 106752d\n", 3,
	    "timeout: at most 365d (got 106752d)", "timeout 106752d");
}

int main(void)
{
	inifile_setup(JOB_MAX_BYTES + 16);
	dir = scratch_make("conf");
	snprintf(path, sizeof(path), "%s/runner.ini", dir);
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);

	test_full();
	test_defaults();
	test_invalid();
	test_bounds();
	test_known_bugs();
	test_classify();

	scratch_remove();
	sb_release(&errs);
	done_testing();
	return exit_status();
}
