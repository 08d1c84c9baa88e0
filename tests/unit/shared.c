/*
 * shared: the home-wide event log (src/shared.h, SPEC 6.3) with several
 * instances on one state directory, as several runner processes have:
 * symbol circuits, failure groups and their life (pause, trial, resume,
 * resolution), persistence, a torn last line, compaction, group ids, and
 * concurrent writers (fork).
 *
 * The log's lines carry the wall clock (emit() stamps now_ms()), so this
 * test uses real times: short open periods and short sleeps.
 */
#include "conf.h"
#include "home.h"
#include "shared.h"
#include "scratch.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT "strategy_analyst"
#define SOURCE "koyfin"

static int root_fd = -1;


static void skip(const char *why)
{
	tap_count++;
	printf("ok %d # SKIP %s\n", tap_count, why);
	fflush(stdout);
}

static void bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(255);
}

/* A state directory of its own for one part of the test. */
static int state_dir(const char *name)
{
	if (mkdirat(root_fd, name, 0755) < 0)
		bail("mkdir");
	int fd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		bail("open state dir");
	return fd;
}

static struct conf *make_conf(int min_group, int64_t window_ms, int threshold,
			      int64_t open_ms)
{
	struct conf *c = conf_default();
	c->min_group = min_group;
	c->corr_window_ms = window_ms;
	c->breaker_threshold = threshold;
	c->breaker_open_ms = open_ms;
	return c;
}

static void open_or_bail(struct shared *sh, int fd, const struct conf *c)
{
	if (shared_open(sh, fd, c) < 0)
		bail("shared_open");
}

static void sleep_until(int64_t t)
{
	for (int64_t now; (now = now_ms()) < t;) {
		struct timespec ts = { 0, (long)(t - now) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* ---- failures ---- */

static char msgbuf[8][2048];
static int msgslot;

/* The rate-limit failure of a symbol: the signature the groups share. */
static struct failure rl(const char *symbol, const char *batch)
{
	char *m = msgbuf[msgslot++ % 8];
	snprintf(m, sizeof(msgbuf[0]), "429 Too Many Requests for %s", symbol);
	return (struct failure){ .agent = AGENT, .source = SOURCE,
				 .category = "data_error",
				 .type = "RateLimitError", .message = m,
				 .symbol = symbol, .batch = batch };
}

/* An item's own failure. */
static struct failure nodata(const char *symbol, const char *batch)
{
	char *m = msgbuf[msgslot++ % 8];
	snprintf(m, sizeof(msgbuf[0]), "no data for %s", symbol);
	return (struct failure){ .agent = AGENT, .source = SOURCE,
				 .category = "data_error", .type = "DataError",
				 .message = m, .symbol = symbol,
				 .batch = batch };
}

static struct sh_failure_result fail(struct shared *sh, struct failure f,
				     bool correlate)
{
	struct sh_failure_result out;
	if (shared_failure(sh, &f, correlate, false, now_ms(), &out) < 0) {
		ok(0, "shared_failure %s: %s", f.symbol, strerror(errno));
		memset(&out, 0, sizeof(out));
	}
	/* The members to report are not looked at here: free them. */
	shared_failure_done(&out);
	return out;
}

static void sig_of(struct failure f, char sig[SIG_LEN + 1])
{
	struct sb st = SB_INIT;
	correlate_fill(&f, &st, sig);
	sb_release(&st);
}

/* ---- state as text, to compare instances ---- */

enum { SNAP_ALL = 0, SNAP_CORE = 1 };

/* SNAP_CORE leaves out what a compaction does not claim to keep:
 * members, resume order/time, trial holder, the breaker's open/half-open. */
static char *snapshot(struct shared *sh, int mode)
{
	struct sb o = SB_INIT;
	for (size_t i = 0; i < sh->ngroups; i++) {
		const struct sh_group *g = sh->groups[i];
		sb_addf(&o, "G %s sig=%s agent=%s src=%s cat=%s type=%s norm=%s "
			"root=%s status=%s det=%lld res=%lld until=%lld "
			"open=%lld trial=%d\n",
			g->id, g->sig, g->agent ? g->agent : "",
			g->source ? g->source : "",
			g->category ? g->category : "", g->type ? g->type : "",
			g->norm ? g->norm : "",
			g->root_cause ? g->root_cause : "",
			group_status_name(g->status), (long long)g->detected_ms,
			(long long)(g->status == GROUP_RESOLVED ? g->resolved_ms
								: 0),
			(long long)g->brk.until, (long long)g->brk.open_ms,
			g->brk.trial_taken);
		if (mode == SNAP_CORE)
			continue;
		sb_addf(&o, "  state=%s order=%s resumed=%lld trial=%s/%s\n",
			circuit_name(g->brk.state), g->order,
			(long long)g->resumed_ms,
			g->trial_batch ? g->trial_batch : "",
			g->trial_symbol ? g->trial_symbol : "");
		sb_addf(&o, "  opened=%lld reported=%zu formed=%zu lease=%lld\n",
			(long long)g->opened_ms, g->reported, g->formed_size,
			(long long)(g->brk.trial_taken ? g->brk.trial_until : 0));
		for (size_t k = 0; k < g->nm; k++)
			sb_addf(&o, "  m %s/%s failed=%d paused=%d final=%d "
				"resumed=%d state=%s\n",
				g->m[k].batch, g->m[k].symbol, g->m[k].failed,
				g->m[k].paused, g->m[k].final, g->m[k].resumed,
				g->m[k].state);
	}
	for (size_t i = 0; i < sh->nsymbols; i++) {
		const struct sh_symbol *s = sh->symbols[i];
		if (!s->brk.streak && s->brk.state == CIRCUIT_CLOSED)
			continue;
		sb_addf(&o, "Y %s streak=%u state=%s until=%lld open=%lld "
			"trial=%d lease=%lld\n",
			s->symbol, s->brk.streak, circuit_name(s->brk.state),
			(long long)s->brk.until, (long long)s->brk.open_ms,
			s->brk.trial_taken,
			(long long)(s->brk.trial_taken ? s->brk.trial_until : 0));
	}
	if (!o.buf)
		sb_adds(&o, "");
	return o.buf;
}

static int same_state(struct shared *a, struct shared *b, int mode,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int same_state(struct shared *a, struct shared *b, int mode,
		      const char *fmt, ...)
{
	char name[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	char *x = snapshot(a, mode), *y = snapshot(b, mode);
	int r = ok(!strcmp(x, y), "%s", name);
	if (!r)
		diag("first:\n%s\nsecond:\n%s", x, y);
	free(x);
	free(y);
	return r;
}

static bool agree(struct shared *a, struct shared *b)
{
	char *x = snapshot(a, SNAP_ALL), *y = snapshot(b, SNAP_ALL);
	bool same = !strcmp(x, y);
	free(x);
	free(y);
	return same;
}

static size_t groups_with_sig(struct shared *sh, const char *sig)
{
	size_t n = 0;
	for (size_t i = 0; i < sh->ngroups; i++)
		n += !strcmp(sh->groups[i]->sig, sig);
	return n;
}

static const struct sh_member *member(const struct sh_group *g,
				      const char *batch, const char *symbol)
{
	for (size_t i = 0; g && i < g->nm; i++)
		if (!strcmp(g->m[i].batch, batch) &&
		    !strcmp(g->m[i].symbol, symbol))
			return &g->m[i];
	return NULL;
}

static bool id_shape(const char *id)
{
	/* grp-YYYYMMDD-HHMMSS-N */
	size_t n = strlen(id);
	if (n < 21 || strncmp(id, "grp-", 4) || id[12] != '-' || id[19] != '-')
		return false;
	for (size_t i = 4; i < n; i++)
		if (i != 12 && i != 19 && (id[i] < '0' || id[i] > '9'))
			return false;
	return id[20] != '0';
}

/* "grp-YYYYMMDD-HHMMSS-" of a time, by gmtime (not by fmt_time). */
static void id_prefix(int64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "grp-%Y%m%d-%H%M%S-", &tm);
}

/* ==== symbol circuits ==== */

static void test_symbols(void)
{
	int fd = state_dir("symbols");
	struct conf *c = make_conf(2, 60000, 3, 250);
	struct shared a, b;
	struct sh_failure_result r;
	open_or_bail(&a, fd, c);
	open_or_bail(&b, fd, c);
	is_int(a.ngroups + a.nsymbols, 0, "symbols: empty log folds to nothing");

	/* uncorrelated: counts for the symbol only, never a group */
	int opened = 0;
	for (int i = 1; i <= 5; i++) {
		r = fail(&a, rl("AAPL", "b1"), false);
		opened += r.symbol_opened;
		ok(!r.group && !r.formed, "uncorrelated failure %d: no group", i);
		is_int(r.streak, i, "uncorrelated failure %d: streak %d", i, i);
		if (i == 3)
			ok(r.symbol_opened, "failure 3 (threshold): symbol opened");
	}
	is_int(opened, 1, "symbol_opened set exactly once in 5 failures");
	const char *others[] = { "MSFT", "GOOG", "IBM", "TSLA" };
	for (int i = 0; i < 4; i++) {
		r = fail(i % 2 ? &a : &b, rl(others[i], i % 2 ? "b1" : "b2"),
			 false);
		ok(!r.group && !r.formed && !r.symbol_opened,
		   "uncorrelated %s: no group", others[i]);
	}
	shared_sync(&a);
	ok(a.ngroups == 0 && b.ngroups == 0,
	   "5 distinct symbols failing uncorrelated: no group anywhere");
	is_int(a.corr.nsigs, 0, "uncorrelated failures stay out of the windows");

	struct sh_symbol *s = shared_symbol(&a, "AAPL");
	ok(s && s->brk.state == CIRCUIT_OPEN && s->brk.streak == 5,
	   "AAPL open, streak 5");
	int64_t until = s ? s->brk.until : 0;
	ok(s && s->brk.open_ms == 250 && until > now_ms() - 1000 &&
	   until <= now_ms() + 250, "AAPL open for breaker_open_ms");
	shared_sync(&b);
	struct sh_symbol *sb_ = shared_symbol(&b, "AAPL");
	ok(sb_ && sb_->brk.state == CIRCUIT_OPEN && sb_->brk.streak == 5 &&
	   sb_->brk.until == until, "other instance: same AAPL circuit");
	same_state(&a, &b, SNAP_ALL, "symbols: both instances agree");

	/* the half-open trial: none before until, one taker after */
	int64_t now = now_ms();
	if (now < until) {
		is_int(shared_symbol_trial(&a, "AAPL", now), 0,
		       "symbol trial before until: A no");
		is_int(shared_symbol_trial(&b, "AAPL", now), 0,
		       "symbol trial before until: B no");
	} else {
		skip("too slow: AAPL's circuit was due already");
		skip("too slow");
	}
	sleep_until(until + 1);
	now = now_ms();
	is_int(shared_symbol_trial(&a, "AAPL", now), 1, "symbol trial due: A takes it");
	is_int(shared_symbol_trial(&b, "AAPL", now), 0, "symbol trial: B does not");
	is_int(shared_symbol_trial(&a, "AAPL", now), 0, "symbol trial: A not twice");
	s = shared_symbol(&b, "AAPL");
	ok(s && s->brk.state == CIRCUIT_HALF_OPEN && s->brk.trial_taken,
	   "B sees AAPL half-open with its trial taken");

	/* the trial succeeds */
	is_int(shared_success(&a, "AAPL", now_ms()), 1,
	       "shared_success closes the half-open circuit: 1");
	s = shared_symbol(&a, "AAPL");
	ok(s && s->brk.state == CIRCUIT_CLOSED && s->brk.streak == 0,
	   "AAPL closed, streak 0");
	is_int(shared_success(&a, "AAPL", now_ms()), 0, "success again: 0");
	is_int(shared_success(&a, "NEVER", now_ms()), 0, "unknown symbol: 0");
	shared_sync(&b);
	s = shared_symbol(&b, "AAPL");
	ok(s && s->brk.state == CIRCUIT_CLOSED && s->brk.streak == 0,
	   "B sees AAPL closed");
	is_int(shared_symbol_trial(&b, "AAPL", now_ms()), 1,
	       "closed symbol: shared_symbol_trial says go");
	is_int(shared_symbol_trial(&b, "NEVER", now_ms()), 1,
	       "unknown symbol: shared_symbol_trial says go");
	r = fail(&b, rl("AAPL", "b2"), false);
	ok(r.streak == 1 && !r.symbol_opened, "after closing: streak from 1");

	/* a success ends a streak below the threshold */
	fail(&a, nodata("NFLX", "b1"), false);
	r = fail(&b, nodata("NFLX", "b2"), false);
	is_int(r.streak, 2, "NFLX streak 2 across instances");
	is_int(shared_success(&a, "NFLX", now_ms()), 0,
	       "success with a streak: 0 (no circuit closed)");
	r = fail(&b, nodata("NFLX", "b2"), false);
	ok(r.streak == 1 && !r.symbol_opened,
	   "success ended the streak: next failure streak 1");

	/* a failed trial: open again for twice as long */
	for (int i = 0; i < 3; i++)
		r = fail(&a, nodata("ORCL", "b1"), false);
	ok(r.symbol_opened, "ORCL opened");
	s = shared_symbol(&a, "ORCL");
	sleep_until(s->brk.until + 1);
	/* B has not folded ORCL's failures: it folds them before it answers. */
	is_int(shared_symbol_trial(&b, "ORCL", now_ms()), 1,
	       "ORCL trial: B (folding what it missed first)");
	is_int(shared_symbol_trial(&a, "ORCL", now_ms()), 0, "ORCL trial: not A");
	is_int(shared_symbol_trial(&b, "ORCL", now_ms()), 0,
	       "ORCL trial: handed out once");
	r = fail(&b, nodata("ORCL", "b2"), false);
	s = shared_symbol(&b, "ORCL");
	ok(s && s->brk.state == CIRCUIT_OPEN && s->brk.open_ms == 500 &&
	   !s->brk.trial_taken, "failed trial: open again for 2 x 250 ms");
	diag("a failed symbol trial reports symbol_opened=%d", r.symbol_opened);
	shared_sync(&a);
	same_state(&a, &b, SNAP_ALL, "after the failed trial: both agree");

	/* a user's forced trial */
	for (int i = 0; i < 3; i++)
		fail(&a, nodata("INTC", "b1"), false);
	shared_sync(&b);
	is_int(shared_symbol_force_trial(&b, "INTC"), 1,
	       "force trial of an open circuit (not due): 1");
	s = shared_symbol(&b, "INTC");
	ok(s && s->brk.state == CIRCUIT_HALF_OPEN && s->brk.trial_taken,
	   "forced: half-open, trial held");
	shared_sync(&a);
	s = shared_symbol(&a, "INTC");
	ok(s && s->brk.state == CIRCUIT_HALF_OPEN && s->brk.trial_taken,
	   "A sees the forced trial");
	is_int(shared_symbol_trial(&a, "INTC", now_ms() + 60000), 0,
	       "no second trial after a forced one (within its lease)");
	is_int(shared_symbol_trial(&a, "INTC", now_ms() + TRIAL_LEASE_MS + 1000),
	       1, "its lease over (the holder gone): the trial is free again");
	is_int(shared_symbol_force_trial(&a, "AAPL"), 0,
	       "force trial of a closed circuit: 0");
	is_int(shared_symbol_force_trial(&a, "NEVER"), 0,
	       "force trial of an unknown symbol: 0");
	is_int(shared_success(&b, "INTC", now_ms()), 1,
	       "forced trial succeeds: circuit closed");

	/* A success seen only by a process whose fold is behind. */
	shared_sync(&b);
	fail(&a, nodata("RACE", "b1"), false);
	fail(&a, nodata("RACE", "b1"), false);
	shared_success(&b, "RACE", now_ms()); /* b has not folded RACE yet */
	r = fail(&a, nodata("RACE", "b1"), false);
	ok(!r.symbol_opened && r.streak == 1,
		"a success in between ends the streak (streak %u, opened %d)",
		r.streak, r.symbol_opened);

	/* persistence: a third instance folds the same */
	shared_sync(&a);
	shared_sync(&b);
	same_state(&a, &b, SNAP_ALL, "symbols: A and B agree at the end");
	char *before = snapshot(&a, SNAP_ALL);
	shared_close(&a);
	shared_close(&b);
	struct shared c3;
	open_or_bail(&c3, fd, c);
	char *after = snapshot(&c3, SNAP_ALL);
	is_str(after, before, "symbols: reopened instance folds the same state");
	free(before);
	free(after);
	shared_close(&c3);
	conf_free(c);
	close(fd);
}

/* ==== failure groups ==== */

static void test_groups(void)
{
	int fd = state_dir("groups");
	struct conf *c = make_conf(3, 60000, 100, 250);
	struct shared a, b;
	struct sh_failure_result r;
	char sig[SIG_LEN + 1], id[GROUP_ID_MAX];
	open_or_bail(&a, fd, c);
	open_or_bail(&b, fd, c);
	sig_of(rl("X", "b"), sig);

	r = fail(&a, rl("S1", "b1"), true);
	ok(!r.group && !r.formed, "1 symbol: no group");
	r = fail(&b, rl("S2", "b2"), true);
	ok(!r.group && !r.formed, "2 symbols (min_group 3): no group");
	r = fail(&a, rl("S1", "b1"), true);
	ok(!r.group && !r.formed, "S1 again: still 2 distinct, no group");
	int64_t t0 = now_ms();
	r = fail(&b, rl("S3", "b2"), true);
	int64_t t1 = now_ms();
	ok(r.group && r.formed, "3 distinct symbols: a group forms");
	if (!r.group) {
		diag("no group: the rest of the group tests cannot run");
		shared_close(&a);
		shared_close(&b);
		conf_free(c);
		close(fd);
		return;
	}
	struct sh_group *g = r.group;
	snprintf(id, sizeof(id), "%s", g->id);
	ok(id_shape(id), "group id '%s' is grp-YYYYMMDD-HHMMSS-N", id);
	is_str(g->sig, sig, "group signature");
	is_str(g->agent, AGENT, "group agent");
	is_str(g->source, SOURCE, "group source");
	is_str(g->category, "data_error", "group category");
	is_str(g->type, "RateLimitError", "group type");
	is_str(g->norm, "NUM Too Many Requests for TICKER", "group norm");
	is_str(g->root_cause, "koyfin API rate limit exceeded", "root cause");
	is_str(group_status_name(g->status), "open", "status open");
	ok(g->detected_ms >= t0 && g->detected_ms <= t1, "detected now");
	ok(g->brk.state == CIRCUIT_OPEN && g->brk.open_ms == 250 &&
	   g->brk.until == g->detected_ms + 250,
	   "source circuit open until detected + open_for");
	is_int(g->nm, 3, "members: the window's failures (S1 twice counts once)");
	ok(member(g, "b1", "S1") && member(g, "b2", "S2") && member(g, "b2", "S3"),
	   "members S1/b1, S2/b2, S3/b2");
	bool all_failed = true;
	for (size_t i = 0; i < g->nm; i++)
		all_failed &= g->m[i].failed && !g->m[i].paused && !g->m[i].final;
	ok(all_failed, "members are failing members, not paused, not final");
	ok(shared_open_group(&b, AGENT, SOURCE) == g, "shared_open_group finds it");
	ok(!shared_open_group(&b, AGENT, "yahoo") && !shared_open_group(&b, "x", SOURCE),
	   "shared_open_group: other agent/source: none");
	ok(shared_group(&b, id) == g && !shared_group(&b, "grp-nope"),
	   "shared_group by id");

	/* the other instance sees it after a sync */
	ok(!shared_group(&a, id), "A does not know the group before a sync");
	shared_sync(&a);
	struct sh_group *ga = shared_group(&a, id);
	ok(ga && ga->status == GROUP_OPEN && ga->nm == 3 &&
	   ga->brk.until == g->brk.until && !strcmp(ga->root_cause, g->root_cause),
	   "A after sync: same id, members, status, circuit");
	same_state(&a, &b, SNAP_ALL, "formed: A and B agree");

	/* later matching failures join; others do not */
	r = fail(&a, rl("S4", "b1"), true);
	ok(r.group && !r.formed && !strcmp(r.group->id, id),
	   "matching failure joins (formed false)");
	ga = shared_group(&a, id);
	ok(ga && ga->nm == 4 && member(ga, "b1", "S4") &&
	   member(ga, "b1", "S4")->failed, "S4 is a failing member");
	r = fail(&b, rl("S7", "b2"), true);
	ok(r.group && !r.formed && !strcmp(r.group->id, id),
	   "B: matching failure joins too");
	r = fail(&a, nodata("S5", "b1"), true);
	ok(!r.group && !r.formed, "another signature does not join");
	r = fail(&a, rl("S6", "b1"), false);
	ok(!r.group && !r.formed, "an uncorrelated failure does not join");
	struct failure other = rl("S9", "b1");
	other.agent = "other_agent";
	r = fail(&a, other, true);
	ok(!r.group, "same message, another agent: does not join");
	shared_sync(&b);
	ga = shared_group(&a, id);
	ok(ga && ga->nm == 5 && !member(ga, "b1", "S5") && !member(ga, "b1", "S6"),
	   "group has 5 members");
	ok(a.ngroups == 1 && b.ngroups == 1, "still exactly one group");

	/* paused items */
	const char *ps[] = { "P1", "P2" };
	is_int(shared_paused(&b, id, "b3", ps, 2, now_ms()), 0, "shared_paused");
	is_int(shared_paused(&b, id, "b3", ps, 0, now_ms()), 0,
	       "shared_paused of none");
	shared_sync(&a);
	ga = shared_group(&a, id);
	const struct sh_member *m = member(ga, "b3", "P1");
	ok(m && m->paused && !m->failed && !m->final && m->paused_ms > 0,
	   "P1 paused member");
	size_t nmem, nfin, npaused;
	shared_group_progress(ga, &nmem, &nfin, &npaused);
	ok(nmem == 7 && nfin == 0 && npaused == 2,
	   "progress: 7 members, 0 final, 2 paused (%zu %zu %zu)", nmem, nfin,
	   npaused);

	/* the half-open trial */
	int64_t until = ga->brk.until, now = now_ms();
	if (now < until) {
		ok(!shared_trial(&a, id, "b3", "P1", now) &&
		   !shared_trial(&b, id, "b3", "P2", now),
		   "no trial before the open period is over");
	} else {
		skip("too slow: the group was due already");
	}
	sleep_until(until + 1);
	now = now_ms();
	is_int(shared_trial(&a, id, "b3", "P1", now), 1, "due: A takes the trial");
	is_int(shared_trial(&b, id, "b3", "P2", now), 0, "B does not");
	is_int(shared_trial(&a, id, "b3", "P1", now), 0, "A not twice");
	g = shared_group(&b, id);
	ok(g && g->brk.state == CIRCUIT_HALF_OPEN && g->brk.trial_taken &&
	   g->trial_symbol && !strcmp(g->trial_symbol, "P1") &&
	   g->status == GROUP_OPEN,
	   "B sees the trial taken by P1, group still open");

	/* trial fails: open again, twice as long */
	now = now_ms();
	is_int(shared_trial_result(&a, id, false, now), 0, "trial failed");
	ga = shared_group(&a, id);
	ok(ga && ga->status == GROUP_OPEN && ga->brk.state == CIRCUIT_OPEN &&
	   ga->brk.open_ms == 500 && ga->brk.until == now + 500 &&
	   !ga->brk.trial_taken,
	   "failed trial: open again until now + 2 x open_for");
	shared_sync(&b);
	same_state(&a, &b, SNAP_ALL, "after the failed trial: A and B agree");
	now = now_ms();
	if (now < ga->brk.until)
		ok(!shared_trial(&b, id, "b3", "P2", now),
		   "no trial before the doubled period is over");
	else
		skip("too slow");
	sleep_until(ga->brk.until + 1);
	now = now_ms();
	is_int(shared_trial(&b, id, "b3", "P2", now), 1, "due again: B takes it");
	is_int(shared_trial(&a, id, "b3", "P1", now), 0, "A does not");

	/* trial succeeds: resuming */
	is_int(shared_trial_result(&b, id, true, now_ms()), 0, "trial succeeded");
	g = shared_group(&b, id);
	ok(g && g->status == GROUP_RESUMING && !strcmp(g->order, "progress") &&
	   g->brk.state == CIRCUIT_CLOSED && g->resumed_ms > 0,
	   "success: resuming, order progress, circuit closed");
	shared_sync(&a);
	ga = shared_group(&a, id);
	ok(ga && ga->status == GROUP_RESUMING, "A sees resuming");
	ok(!shared_open_group(&a, AGENT, SOURCE), "no open group while resuming");
	is_int(shared_trial(&a, id, "b3", "P1", now_ms()), 0,
	       "no trial while resuming");

	/* started members */
	is_int(shared_started(&a, "b3", "P1"), 0, "P1 started");
	m = member(shared_group(&a, id), "b3", "P1");
	ok(m && !m->paused && !m->final, "P1 no longer paused");
	shared_group_progress(shared_group(&a, id), &nmem, &nfin, &npaused);
	ok(nmem == 7 && npaused == 1, "progress: 1 paused left");
	is_int(shared_started(&a, "b3", "P1"), 0, "started again: nothing");
	is_int(shared_started(&a, "b9", "NOPE"), 0, "started, not a member");
	is_int(shared_started(&a, "b3", "P1"), 0,
	       "started, unknown group");
	ga = shared_group(&a, id);
	is_int(ga->nm, 7, "started of a non-member adds no member");

	/* a user's pause: open again, far away */
	now = now_ms();
	is_int(shared_pause_group(&a, id, now), 0, "shared_pause_group");
	ga = shared_group(&a, id);
	int64_t century = 100LL * 365 * 86400000LL;
	ok(ga && ga->status == GROUP_OPEN && ga->brk.state == CIRCUIT_OPEN &&
	   ga->brk.until == now + century && ga->brk.open_ms == 500,
	   "paused by a user: open until a century away, open_for kept");
	ok(shared_open_group(&a, AGENT, SOURCE) == ga, "open group again");
	is_int(shared_trial(&a, id, "b3", "P2", now_ms()), 0,
	       "no trial during a user's pause");
	shared_sync(&b);
	same_state(&a, &b, SNAP_ALL, "after pause: A and B agree");

	/* repeated failed trials double up to 16 x open_for */
	int64_t want[] = { 1000, 2000, 4000, 4000, 4000 };
	for (int i = 0; i < 5; i++) {
		now = now_ms();
		shared_trial_result(i % 2 ? &a : &b, id, false, now);
		g = shared_group(i % 2 ? &a : &b, id);
		ok(g && g->brk.open_ms == want[i] && g->brk.until == now + want[i],
		   "failed trial %d: open %lld ms (cap 4000)", i + 1,
		   (long long)want[i]);
	}

	/* a resume */
	is_int(shared_resume(&b, id, "oldest", now_ms()), 0, "shared_resume");
	g = shared_group(&b, id);
	ok(g && g->status == GROUP_RESUMING && !strcmp(g->order, "oldest") &&
	   g->brk.state == CIRCUIT_CLOSED, "resume: resuming, order oldest");
	is_int(shared_resume(&b, "grp-nope", "oldest", now_ms()), 0,
	       "resume of an unknown group: nothing");
	shared_sync(&a);
	r = fail(&a, rl("S8", "b1"), true);
	ok(r.group && !strcmp(r.group->id, id) && !r.formed,
	   "a failure while resuming joins the group");
	ok(r.reopened && r.group->status == GROUP_OPEN &&
	   r.group->brk.state == CIRCUIT_OPEN,
	   "  and opens it again (the source is still down)");
	ok(r.new_member, "  a member new to failing: its alert is due");
	shared_failure_done(&r);

	/* resolution: every member final */
	ga = shared_group(&a, id);
	size_t n = ga->nm;
	char (*mb)[2][64] = calloc(n, sizeof(*mb));
	for (size_t i = 0; i < n; i++) {
		snprintf(mb[i][0], 64, "%s", ga->m[i].batch);
		snprintf(mb[i][1], 64, "%s", ga->m[i].symbol);
	}
	int early = 0;
	for (size_t i = 0; i + 1 < n; i++)
		early += shared_final(i % 2 ? &a : &b, mb[i][0], mb[i][1], "failed", now_ms(), NULL, 0);
	is_int(early, 0, "final members before the last: 0");
	is_int(shared_final(&b, mb[0][0], mb[0][1], "failed", now_ms(), NULL, 0), 0,
	       "the same member final twice: 0");
	shared_sync(&a);
	shared_group_progress(shared_group(&a, id), &nmem, &nfin, &npaused);
	ok(nfin == n - 1 && shared_group(&a, id)->status != GROUP_RESOLVED,
	   "%zu of %zu final, not resolved", nfin, n);
	is_int(shared_final(&a, mb[n - 1][0], mb[n - 1][1], "failed", now_ms(), NULL, 0), 1,
	       "the last member final: 1 (resolved)");
	is_int(shared_final(&a, mb[n - 1][0], mb[n - 1][1], "failed", now_ms(), NULL, 0), 0,
	       "then 0");
	is_int(shared_final(&b, "b3", "P1", "failed", now_ms(), NULL, 0), 0,
	       "another member again on B: 0");
	is_int(shared_final(&a, "b-nope", "S1", "failed", now_ms(), NULL, 0), 0,
	       "unknown group: 0");
	free(mb);
	ga = shared_group(&a, id);
	ok(ga && ga->status == GROUP_RESOLVED && ga->resolved_ms > 0,
	   "group resolved");
	shared_sync(&b);
	g = shared_group(&b, id);
	ok(g && g->status == GROUP_RESOLVED, "B sees it resolved");
	shared_resume(&b, id, "progress", now_ms());
	shared_pause_group(&b, id, now_ms());
	shared_trial_result(&b, id, false, now_ms());
	shared_trial_result(&b, id, true, now_ms());
	g = shared_group(&b, id);
	ok(g && g->status == GROUP_RESOLVED,
	   "resume, pause, trial results on a resolved group: still resolved");
	r = fail(&b, rl("S10", "b5"), true);
	ok(!r.group || strcmp(r.group->id, id),
	   "a matching failure does not join a resolved group");
	if (r.formed)
		diag("note: one failure after the resolution formed %s at once "
		     "(the resolved group's failures are still in the window; "
		     "%zu members)", r.group->id, r.group->nm);

	/* persistence */
	shared_sync(&a);
	shared_sync(&b);
	same_state(&a, &b, SNAP_ALL, "groups: A and B agree at the end");
	char *before = snapshot(&a, SNAP_ALL);
	shared_close(&a);
	shared_close(&b);
	struct shared c3;
	open_or_bail(&c3, fd, c);
	char *after = snapshot(&c3, SNAP_ALL);
	is_str(after, before, "groups: reopened instance folds the same "
	       "groups, statuses, members, symbols");
	g = shared_group(&c3, id);
	ok(g && g->status == GROUP_RESOLVED && g->nm == n, "reopened: resolved, "
	   "%zu members", n);
	free(before);
	free(after);
	shared_close(&c3);
	conf_free(c);
	close(fd);
}

/* ==== two instances interleaved, and two processes at once ==== */

static void test_interleaved(void)
{
	int fd = state_dir("interleaved");
	struct conf *c = make_conf(3, 60000, 100, 30000);
	struct shared a, b;
	char sig[SIG_LEN + 1], sym[32];
	open_or_bail(&a, fd, c);
	open_or_bail(&b, fd, c);
	sig_of(rl("X", "b"), sig);
	int formed = 0, joined = 0;
	const char *gid = NULL;
	for (int i = 0; i < 20; i++) {
		snprintf(sym, sizeof(sym), "I%d", i);
		struct sh_failure_result r =
			fail(i % 2 ? &a : &b, rl(sym, i % 2 ? "ba" : "bb"), true);
		formed += r.formed;
		joined += r.group && !r.formed;
		if (r.formed)
			gid = r.group->id;
	}
	is_int(formed, 1, "interleaved on two instances: formed once");
	is_int(joined, 17, "the 17 after it joined");
	shared_sync(&a);
	shared_sync(&b);
	ok(groups_with_sig(&a, sig) == 1 && groups_with_sig(&b, sig) == 1,
	   "one group with that signature on both");
	struct sh_group *g = gid ? shared_group(&a, gid) : NULL;
	is_int(g ? g->nm : 0, 20, "all 20 symbols are members");
	same_state(&a, &b, SNAP_ALL, "interleaved: A and B agree");
	shared_close(&a);
	shared_close(&b);
	close(fd);

	/* two processes, at the same time */
	fd = state_dir("processes");
	int go[2];
	if (pipe(go) < 0)
		bail("pipe");
	enum { PROCS = 3, EACH = 30 };
	pid_t pid[PROCS];
	fflush(stdout);
	for (int p = 0; p < PROCS; p++) {
		pid[p] = fork();
		if (pid[p] < 0)
			bail("fork");
		if (pid[p] == 0) {
			struct shared sh;
			char buf, bt[16];
			close(go[1]);
			if (shared_open(&sh, fd, c) < 0)
				_exit(100);
			if (read(go[0], &buf, 1) < 0)
				_exit(101);
			int nformed = 0;
			snprintf(bt, sizeof(bt), "bp%d", p);
			for (int i = 0; i < EACH; i++) {
				char s[32];
				snprintf(s, sizeof(s), "P%d_%d", p, i);
				struct failure f = rl(s, bt);
				struct sh_failure_result r;
				int frc = shared_failure(&sh, &f, true, false,
							 now_ms(), &r);
				shared_failure_done(&r);
				if (frc < 0)
					_exit(102);
				nformed += r.formed;
			}
			shared_close(&sh);
			_exit(nformed);
		}
	}
	close(go[0]);
	close(go[1]); /* EOF: everyone starts */
	int total = 0, bad = 0;
	for (int p = 0; p < PROCS; p++) {
		int st;
		waitpid(pid[p], &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) < 100)
			total += WEXITSTATUS(st);
		else
			bad++;
	}
	is_int(bad, 0, "%d processes recorded %d failures each", PROCS, EACH);
	is_int(total, 1, "%d concurrent processes: the group formed once", PROCS);
	open_or_bail(&a, fd, c);
	is_int(groups_with_sig(&a, sig), 1, "one group in the log");
	is_int(a.ngroups ? a.groups[0]->nm : 0, PROCS * EACH,
	       "every failure is a member");
	shared_close(&a);
	conf_free(c);
	close(fd);
}

/* ==== group ids ==== */

static void test_ids(void)
{
	int fd = state_dir("ids");
	struct conf *c = make_conf(2, 60000, 100, 30000);
	struct shared a, b;
	struct sh_failure_result r;
	open_or_bail(&a, fd, c);
	open_or_bail(&b, fd, c);
	const int64_t fixed = 1700000000123LL; /* 2023-11-14 22:13:20 UTC */
	const char *agents[] = { "agent_one", "agent_two", "agent_three" };
	const char *want[] = { "grp-20231114-221320-1", "grp-20231114-221320-2",
			       "grp-20231114-221320-3" };
	for (int k = 0; k < 3; k++) {
		struct shared *sh = k == 2 ? &b : &a;
		struct failure f1 = rl("AAA", "b1"), f2 = rl("BBB", "b1");
		f1.agent = f2.agent = agents[k];
		shared_failure(sh, &f1, true, false, fixed, &r);
		shared_failure_done(&r);
		shared_failure(sh, &f2, true, false, fixed, &r);
		shared_failure_done(&r);
		ok(r.formed && r.group && !strcmp(r.group->id, want[k]),
		   "group %d formed in the same second: %s (got %s)", k + 1,
		   want[k], r.group ? r.group->id : "none");
	}
	struct failure f1 = rl("AAA", "b1"), f2 = rl("BBB", "b1");
	f1.agent = f2.agent = "agent_four";
	shared_failure(&a, &f1, true, false, fixed + 1000, &r);
	shared_failure_done(&r);
	shared_failure(&a, &f2, true, false, fixed + 1000, &r);
	shared_failure_done(&r);
	ok(r.formed && r.group && !strcmp(r.group->id, "grp-20231114-221321-1"),
	   "next second: -1 again (got %s)", r.group ? r.group->id : "none");
	int64_t now = now_ms();
	char prefix[64];
	f1.agent = f2.agent = "agent_five";
	shared_failure(&a, &f1, true, false, now, &r);
	shared_failure_done(&r);
	shared_failure(&a, &f2, true, false, now, &r);
	shared_failure_done(&r);
	id_prefix(now, prefix, sizeof(prefix));
	ok(r.group && id_shape(r.group->id) &&
	   !strncmp(r.group->id, prefix, strlen(prefix)),
	   "id from the time given (UTC): %s... (got %s)", prefix,
	   r.group ? r.group->id : "none");
	shared_sync(&b);
	same_state(&a, &b, SNAP_ALL, "ids: A and B agree");
	shared_close(&a);
	shared_close(&b);
	conf_free(c);
	close(fd);
}

/* ==== a torn last line ==== */

static void append_raw(int fd, const char *text)
{
	int efd = openat(fd, "events", O_WRONLY | O_APPEND | O_CLOEXEC);
	if (efd < 0 || write(efd, text, strlen(text)) != (ssize_t)strlen(text))
		bail("append to events");
	close(efd);
}

static void test_torn(void)
{
	int fd = state_dir("torn");
	struct conf *c = make_conf(2, 60000, 3, 30000);
	struct shared a, b;
	struct sh_failure_result r;
	char line[512];
	open_or_bail(&a, fd, c);
	open_or_bail(&b, fd, c);
	fail(&a, nodata("AAA", "b1"), false);
	fail(&a, rl("G1", "b1"), true);
	r = fail(&a, rl("G2", "b1"), true);
	ok(r.formed, "torn: a group to keep");

	/* a crashed writer's half line that folds to nothing */
	snprintf(line, sizeof(line), "M\t%lld\tgrp-20", (long long)now_ms());
	append_raw(fd, line);
	shared_sync(&b);
	same_state(&a, &b, SNAP_ALL, "torn tail: the reader ignores it");
	ok(b.partial.len > 0, "torn tail kept aside until its newline");
	r = fail(&a, nodata("AAA", "b1"), false);
	is_int(r.streak, 2, "a transaction after the torn line works");
	shared_sync(&b);
	struct sh_symbol *s = shared_symbol(&b, "AAA");
	ok(s && s->brk.streak == 2, "B folds the transaction after the torn line");
	same_state(&a, &b, SNAP_ALL, "after the torn line: A and B agree");
	r = fail(&b, rl("G3", "b2"), true);
	ok(r.group && !r.formed, "B's transaction joins the group");
	shared_sync(&a);
	same_state(&a, &b, SNAP_ALL, "and A folds it");
	struct shared c3;
	open_or_bail(&c3, fd, c);
	same_state(&a, &c3, SNAP_ALL, "a fresh instance folds the same");
	shared_close(&c3);

	/* a half line whose cut falls in its last field (the message) */
	snprintf(line, sizeof(line),
		 "F\t%lld\t-\t%s\t%s\tdata_error\tDataError\tTORN\tb9\tno data "
		 "for TICKER\tno data fo", (long long)now_ms(), AGENT, SOURCE);
	append_raw(fd, line);
	shared_sync(&b);
	ok(!shared_symbol(&b, "TORN"), "torn failure: not folded while torn");
	r = fail(&a, nodata("AAA", "b1"), false);
	ok(r.streak == 3 && r.symbol_opened, "transaction after it: AAA opens");
	ok(!shared_symbol(&a, "TORN"), "the writer that ended it ignores it");
	shared_sync(&b);
	s = shared_symbol(&b, "AAA");
	ok(s && s->brk.streak == 3 && s->brk.state == CIRCUIT_OPEN,
	   "B folds the transaction after it");
	s = shared_symbol(&b, "TORN");
	ok(!s || (!s->brk.streak && s->brk.state == CIRCUIT_CLOSED),
		"B ignores the torn line too (TORN streak %u)",
		s ? s->brk.streak : 0);
	open_or_bail(&c3, fd, c);
	s = shared_symbol(&c3, "TORN");
	ok(!s || (!s->brk.streak && s->brk.state == CIRCUIT_CLOSED),
		"a fresh instance ignores the torn line (TORN streak %u)",
		s ? s->brk.streak : 0);
	same_state(&b, &c3, SNAP_ALL, "B and a fresh instance agree");
	ok(agree(&a, &b),
		"the instance that ended the torn line agrees with the others");
	shared_close(&c3);
	shared_close(&a);
	shared_close(&b);
	conf_free(c);
	close(fd);
}

/* ==== compaction ==== */

static off_t file_size(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, 0) == 0 ? st.st_size : -1;
}

static void test_compaction(void)
{
	int fd = state_dir("compact");
	int ref = state_dir("compact-ref");
	struct conf *c = make_conf(2, 60000, 3, 250);
	struct shared a, b;
	struct sh_failure_result r;
	char g1[GROUP_ID_MAX] = "", g2[GROUP_ID_MAX] = "";
	open_or_bail(&a, fd, c);
	open_or_bail(&b, fd, c);

	/* G1: resuming, with a paused member and a started one */
	fail(&a, rl("S1", "b1"), true);
	r = fail(&b, rl("S2", "b2"), true);
	if (r.group)
		snprintf(g1, sizeof(g1), "%s", r.group->id);
	const char *ps[] = { "P1", "P2" };
	shared_paused(&a, g1, "b3", ps, 2, now_ms());
	/* G2: open, its trial taken (below) */
	struct failure t1 = rl("T1", "b1"), t2 = rl("T2", "b1");
	t1.agent = t2.agent = "other_agent";
	t1.source = t2.source = "yahoo";
	t1.category = t2.category = "timeout";
	t1.type = t2.type = "TimeoutError";
	t1.message = t2.message = "read timed out";
	fail(&a, t1, true);
	r = fail(&a, t2, true);
	if (r.group)
		snprintf(g2, sizeof(g2), "%s", r.group->id);
	ok(g1[0] && g2[0] && strcmp(g1, g2), "compaction: two groups (%s, %s)",
	   g1, g2);
	/* symbol circuits: open, half-open with a forced trial, a streak */
	for (int i = 0; i < 3; i++) {
		fail(&a, nodata("OPENSYM", "b1"), false);
		fail(&a, nodata("HALFSYM", "b1"), false);
	}
	shared_symbol_force_trial(&a, "HALFSYM");
	fail(&a, nodata("STREAK", "b1"), false);
	fail(&a, nodata("STREAK", "b1"), false);
	shared_resume(&a, g1, "oldest", now_ms());
	shared_started(&a, "b3", "P2");
	shared_sync(&b); /* B's last look: before G2's trial */

	struct sh_group *g = shared_group(&a, g2);
	sleep_until((g ? g->brk.until : 0) + 1);
	is_int(shared_trial(&a, g2, "b1", "T1", now_ms()), 1, "G2's trial taken");

	/* fill the log up to just below SHARED_COMPACT */
	char *big = malloc(1200);
	for (int i = 0; i < 1199; i++)
		big[i] = "abcdefghij klmnopq rstuvw xyz"[i % 29];
	big[1199] = '\0';
	struct failure filler = { .agent = "filler", .source = "",
				  .category = "unknown", .type = "",
				  .message = big, .symbol = "FILL",
				  .batch = "bf" };
	struct timespec ts0, ts1;
	clock_gettime(CLOCK_MONOTONIC, &ts0);
	int txns = 0;
	while ((off_t)SHARED_COMPACT - a.offset >= 100) {
		filler.message = (off_t)SHARED_COMPACT - a.offset > 6000 ? big
									 : "x";
		if (shared_failure(&a, &filler, false, false, now_ms(), &r) < 0) {
			ok(0, "filler failure: %s", strerror(errno));
			break;
		}
		txns++;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts1);
	free(big);
	diag("%d transactions filled the log to %lld bytes in %.0f ms", txns,
	     (long long)a.offset,
	     ((ts1.tv_sec - ts0.tv_sec) * 1e3 + (ts1.tv_nsec - ts0.tv_nsec) / 1e6));
	off_t before_size = file_size(fd, "events");
	ok(before_size > (off_t)SHARED_COMPACT - 100 &&
	   before_size <= (off_t)SHARED_COMPACT, "log just below SHARED_COMPACT");
	/* keep the uncompacted log: a reference fold of the full history */
	if (linkat(fd, "events", ref, "events", 0) < 0)
		bail("linkat");

	/* Another process's failure joins G1 and crosses the limit.  In a
	 * child: a use after free there must not take this test down. */
	int errfd = openat(root_fd, "child.err", O_WRONLY | O_CREAT | O_TRUNC |
			   O_CLOEXEC, 0644);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		bail("fork");
	if (pid == 0) {
		struct shared d;
		if (errfd >= 0)
			dup2(errfd, 2);
		if (shared_open(&d, fd, c) < 0)
			_exit(10);
		struct failure f = rl("S3", "b4");
		struct sh_failure_result out;
		if (shared_failure(&d, &f, true, false, now_ms(), &out) < 0)
			_exit(11);
		struct stat st;
		if (fstatat(fd, "events", &st, 0) < 0 ||
		    st.st_size >= (off_t)SHARED_COMPACT)
			_exit(12); /* no compaction */
		if (!out.group)
			_exit(13);
		if (strcmp(out.group->id, g1) || out.formed)
			_exit(14);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	close(errfd);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	const char *what = code == 0 ? "ok" : code == 12 ? "did not compact"
		: code == 13 ? "out.group NULL" : code == 14 ? "out.group wrong"
		: code == 10 || code == 11 ? "open/failure failed"
		: "crashed (sanitizer?)";
	ok(code != 10 && code != 11 && code != 12,
	   "the crossing transaction compacted the log (%s)", what);
	ok(code == 0,
		"the failure that triggers compaction gets its group back (%s)",
		what);
	if (code != 0) {
		int efd = openat(root_fd, "child.err", O_RDONLY | O_CLOEXEC);
		char eb[4096] = "";
		ssize_t en = efd >= 0 ? read(efd, eb, sizeof(eb) - 1) : 0;
		eb[en > 0 ? en : 0] = '\0';
		char *hit = strstr(eb, "ERROR: AddressSanitizer");
		if (hit) {
			char *nl = strchr(hit, '\n');
			if (nl)
				*nl = '\0';
			diag("child: %s", hit);
		}
		if (efd >= 0)
			close(efd);
	}
	unlinkat(root_fd, "child.err", 0);

	off_t after_size = file_size(fd, "events");
	ok(after_size > 0 && after_size < 64 * 1024,
	   "compacted: %lld -> %lld bytes", (long long)file_size(ref, "events"),
	   (long long)after_size);
	ok(file_size(ref, "events") > (off_t)SHARED_COMPACT,
	   "the old log had passed SHARED_COMPACT");

	/* everybody folds the compacted log; the reference folds it all */
	shared_sync(&a);
	ok(a.offset == after_size, "A refolded the new file from its start");
	struct shared full;
	open_or_bail(&full, ref, c);
	same_state(&a, &full, SNAP_CORE,
		   "compacted fold = full fold: groups (status, circuit, "
		   "cause) and symbol circuits");
	g = shared_group(&a, g1);
	struct sh_group *gf = shared_group(&full, g1);
	ok(g && member(g, "b4", "S3") && member(g, "b4", "S3")->failed,
	   "the crossing failure joined G1 and survived compaction");
	ok(g && gf && member(g, "b3", "P1") && member(g, "b3", "P1")->paused,
	   "paused member P1 survived compaction");
	size_t na = g ? g->nm : 0, nf = gf ? gf->nm : 0;
	ok(g && gf && na == nf,
		"G1 keeps all its members (%zu after, %zu before)", na, nf);
	ok(g && !strcmp(g->order, "oldest"),
		"G1 keeps its resume order 'oldest' (got '%s')", g ? g->order : "");
	ok(g && gf && g->resumed_ms == gf->resumed_ms,
		"G1 keeps resumed_ms (%lld, full fold %lld)",
		(long long)(g ? g->resumed_ms : 0), (long long)(gf ? gf->resumed_ms : 0));
	g = shared_group(&a, g2);
	gf = shared_group(&full, g2);
	ok(g && g->brk.trial_taken && g->status == GROUP_OPEN,
	   "G2: open, trial still taken after compaction");
	ok(g && gf && g->brk.state == gf->brk.state,
		"G2's circuit state kept (%s, full fold %s)",
		g ? circuit_name(g->brk.state) : "-",
		gf ? circuit_name(gf->brk.state) : "-");
	shared_close(&full);

	/* B still has its fold from before G2's trial and the compaction */
	int taken = shared_trial(&b, g2, "b2", "T2", now_ms());
	ok(taken == 0,
		"after compaction a second process gets no second trial "
		"(got %d)", taken);
	shared_sync(&a);
	shared_sync(&b);
	same_state(&a, &b, SNAP_ALL, "after compaction: A and B agree");

	/* transactions go on in the new file */
	r = fail(&b, rl("S5", "b4"), true);
	ok(r.group && !strcmp(r.group->id, g1), "B's failure joins G1 afterwards");
	shared_sync(&a);
	g = shared_group(&a, g1);
	ok(g && member(g, "b4", "S5"), "A folds it");
	same_state(&a, &b, SNAP_ALL, "A and B still agree");
	struct shared c3;
	open_or_bail(&c3, fd, c);
	same_state(&a, &c3, SNAP_ALL, "a fresh instance folds the same");
	shared_close(&c3);
	shared_close(&a);
	shared_close(&b);
	conf_free(c);
	close(fd);
	close(ref);
}

/*
 * Where groups meet items' lives: a failure that is the group's does not
 * count for its symbol; a symbol that recovers leaves the windows; only
 * failures and pauses make members; a member is final in every group it
 * belongs to, with its outcome; a failure after a resume opens the group
 * again; growth is told when the failing members double; trials are
 * leases.
 */
static void test_meeting(void)
{
	int fd = state_dir("meeting");
	struct conf *c = make_conf(2, 60000, 3, 1000);
	struct shared a, b;
	open_or_bail(&a, fd, c);
	open_or_bail(&b, fd, c);
	struct sh_failure_result r;

	/* A recovered symbol leaves the window: A1 failed once, then
	 * succeeded; A2's failure alone does not make a group. */
	r = fail(&a, rl("A1", "b1"), true);
	ok(!r.group, "one failure: no group");
	shared_failure_done(&r);
	is_int(shared_success(&a, "A1", now_ms()), 0, "A1 recovers");
	r = fail(&a, rl("A2", "b1"), true);
	ok(!r.group, "a recovered symbol does not help form a group");
	shared_failure_done(&r);

	/* A final failure, then the group forms: the first is not reported
	 * again. */
	struct failure f = rl("A3", "b1");
	struct sh_failure_result fr;
	shared_failure_done(&r);
	is_int(shared_failure(&a, &f, true, true, now_ms(), &fr), 0,
	       "A3 fails for good (final, reported)");
	ok(fr.group && fr.formed, "A2 and A3 form the group");
	/* A2 (retrying, not reported) and A3 itself are due their alert */
	size_t due = fr.nunreported;
	is_int((long long)due, 2, "two members to report: A2 and the failing A3");
	shared_failure_done(&fr);
	struct sh_group *g = shared_open_group(&a, AGENT, SOURCE);
	char id[GROUP_ID_MAX];
	snprintf(id, sizeof(id), "%s", g ? g->id : "");
	is_int((long long)(g ? g->formed_size : 0), 2, "formed with 2 failing members");

	/* A grouped failure does not count for its symbol's circuit. */
	for (int i = 0; i < 4; i++) {
		r = fail(&a, rl("A4", "b1"), true);
		shared_failure_done(&r);
	}
	const struct sh_symbol *sy = shared_symbol(&a, "A4");
	ok(!sy || (sy->brk.streak == 0 && sy->brk.state == CIRCUIT_CLOSED),
	   "4 failures that joined the group: A4's circuit untouched");
	r = fail(&a, rl("A5", "b1"), true);
	ok(r.group && r.new_member && r.grown == 4,
	   "the 4th failing member: the group grew (2 -> 4), told once");
	shared_failure_done(&r);
	r = fail(&a, rl("A6", "b1"), true);
	ok(!r.grown, "the 5th: no growth alert (next at 8)");
	shared_failure_done(&r);
	r = fail(&a, rl("A6", "b1"), true);
	ok(r.group && !r.new_member, "A6 again: no new member, no second alert");
	shared_failure_done(&r);

	/* Only a failure or a pause makes a member. */
	shared_started(&a, "b9", "ZZ");
	char resolved[4][GROUP_ID_MAX];
	is_int(shared_final(&a, "b9", "ZZ", "failed", now_ms(), resolved, 4), 0,
	       "an item that is no member: no group resolved");
	g = shared_group(&a, id);
	size_t nm = g ? g->nm : 0;
	is_int((long long)nm, 5, "members: A2 A3 A4 A5 A6, nothing else");
	const char *p1 = "P1";
	shared_paused(&a, id, "b2", &p1, 1, now_ms());
	g = shared_group(&a, id);
	is_int((long long)(g ? g->nm : 0), 6, "a pause makes a member");

	/* A trial is a lease: taken, renewed, given back, expired. */
	int64_t due_at = g ? g->brk.until : 0;
	sleep_until(due_at);
	is_int(shared_trial(&a, id, "b2", "P1", now_ms()), 1, "A takes the trial");
	shared_sync(&b);
	is_int(shared_trial(&b, id, "b1", "A2", now_ms()), 0, "B may not");
	is_int(shared_trial_renew(&a, id, "b2", "P1", now_ms()), 0, "A renews");
	is_int(shared_trial_release(&a, id), 0, "A gives it back");
	shared_sync(&b);
	is_int(shared_trial(&b, id, "b1", "A2", now_ms()), 1, "B takes it now");
	g = shared_group(&b, id);
	int64_t lease_end = g ? g->brk.trial_until : 0;
	ok(lease_end > now_ms() && lease_end <= now_ms() + shared_trial_lease_ms(),
	   "its lease ends within the lease time");
	shared_sync(&a);
	g = shared_group(&a, id);
	ok(g && !breaker_allows(&g->brk, now_ms()) &&
	   breaker_allows(&g->brk, lease_end), "A may take it when B's lease ends");

	/* The trial succeeds: resuming; a member fails again: open again. */
	is_int(shared_trial_result(&b, id, true, now_ms()), 0, "trial succeeded");
	shared_sync(&a);
	shared_started(&a, "b2", "P1");
	g = shared_group(&a, id);
	struct sh_counts cnt;
	shared_group_counts(g, &cnt);
	ok(g && g->status == GROUP_RESUMING && cnt.resumed == 1 && cnt.paused == 0,
	   "resuming: P1, the one paused member, started (1 resumed)");
	r = fail(&a, rl("A3", "b1"), true);
	ok(r.reopened && r.group && r.group->status == GROUP_OPEN &&
	   !r.new_member, "a failure after the resume opens it again, no new alert");
	shared_failure_done(&r);

	/* Finals: every member, in every group it is in, with its state. */
	const char *mem[][2] = { { "b1", "A2" }, { "b1", "A3" }, { "b1", "A4" },
				 { "b1", "A5" }, { "b1", "A6" }, { "b2", "P1" } };
	const char *st[] = { "succeeded", "succeeded", "failed", "cancelled",
			     "succeeded", "succeeded" };
	int nres = 0;
	for (int i = 0; i < 6; i++)
		nres += shared_final(i % 2 ? &a : &b, mem[i][0], mem[i][1], st[i],
				     now_ms(), resolved, 4);
	is_int(nres, 1, "the last member's end resolves the group, once");
	shared_sync(&a);
	g = shared_group(&a, id);
	shared_group_counts(g, &cnt);
	ok(g && g->status == GROUP_RESOLVED && cnt.succeeded == 4 &&
	   cnt.failed == 1 && cnt.cancelled == 1 && cnt.final == 6,
	   "resolved: 4 succeeded, 1 failed, 1 cancelled");
	struct sb text = SB_INIT;
	shared_group_progress_text(g, &text);
	is_str(text.buf, "1/6 resumed; 4 succeeded, 1 failed, 1 cancelled",
	       "progress text of a resolved group");
	sb_release(&text);
	shared_sync(&b);
	same_state(&a, &b, SNAP_ALL, "A and B agree on all of it");
	shared_close(&a);
	shared_close(&b);
	conf_free(c);
	close(fd);
}

int main(void)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	scratch_make("shared");
	root_fd = scratch_open();
	test_symbols();
	test_groups();
	test_interleaved();
	test_ids();
	test_torn();
	test_compaction();
	test_meeting();
	close(root_fd);
	scratch_remove();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	diag("shared: %.2f s", (t1.tv_sec - t0.tv_sec) +
			       (t1.tv_nsec - t0.tv_nsec) / 1e9);
	done_testing();
	return exit_status();
}
