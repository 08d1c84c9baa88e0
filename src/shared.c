#include "shared.h"
#include "job.h"
#include "conf.h"
#include "home.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_FIELDS 16
#define KEEP_RESOLVED_MS (24 * 3600 * 1000LL)

const char *group_status_name(int s)
{
	static const char *const names[] = { "open", "resuming", "resolved" };
	return s >= 0 && s <= GROUP_RESOLVED ? names[s] : "?";
}

int64_t shared_trial_lease_ms(void)
{
	static int64_t lease;
	if (!lease) {
		const char *v = getenv("RUNNER_TRIAL_LEASE_MS");
		long long ms = v ? atoll(v) : 0;
		lease = ms >= 100 ? ms : TRIAL_LEASE_MS;
	}
	return lease;
}

/* ---- the fold ---- */

static void group_free(struct sh_group *g)
{
	free(g->agent);
	free(g->source);
	free(g->category);
	free(g->type);
	free(g->norm);
	free(g->root_cause);
	free(g->trial_batch);
	free(g->trial_symbol);
	for (size_t i = 0; i < g->nm; i++) {
		free(g->m[i].batch);
		free(g->m[i].symbol);
	}
	free(g->m);
	for (size_t i = 0; i < g->nkeys; i++)
		free(g->keys[i]);
	free(g->keys);
	strmap_release(&g->idx);
	free(g);
}

static void fold_reset(struct shared *sh)
{
	for (size_t i = 0; i < sh->ngroups; i++)
		group_free(sh->groups[i]);
	free(sh->groups);
	sh->groups = NULL;
	sh->ngroups = sh->capgroups = 0;
	strmap_release(&sh->group_idx);
	for (size_t i = 0; i < sh->nsymbols; i++) {
		free(sh->symbols[i]->symbol);
		free(sh->symbols[i]);
	}
	free(sh->symbols);
	sh->symbols = NULL;
	sh->nsymbols = sh->capsymbols = 0;
	strmap_release(&sh->symbol_idx);
	int64_t w = sh->corr.window_ms;
	int mg = sh->corr.min_group;
	correlate_release(&sh->corr);
	correlate_init(&sh->corr, w, mg);
	sh->offset = 0;
	sb_reset(&sh->partial);
	sh->gen++;
}

struct sh_group *shared_group(struct shared *sh, const char *id)
{
	struct strmap_entry *e = strmap_get(&sh->group_idx, id);
	return e ? sh->groups[e->value] : NULL;
}

struct sh_symbol *shared_symbol(struct shared *sh, const char *symbol)
{
	struct strmap_entry *e = strmap_get(&sh->symbol_idx, symbol);
	return e ? sh->symbols[e->value] : NULL;
}

static struct sh_symbol *symbol_get(struct shared *sh, const char *symbol)
{
	struct sh_symbol *s = shared_symbol(sh, symbol);
	if (s)
		return s;
	s = xcalloc(1, sizeof(*s));
	s->symbol = xstrdup(symbol);
	GROW(sh->symbols, sh->capsymbols, sh->nsymbols + 1);
	sh->symbols[sh->nsymbols] = s;
	strmap_put(&sh->symbol_idx, s->symbol, sh->nsymbols);
	sh->nsymbols++;
	return s;
}

static bool same(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

struct sh_group *shared_open_group(struct shared *sh, const char *agent,
				   const char *source)
{
	for (size_t i = sh->ngroups; i-- > 0;) {
		struct sh_group *g = sh->groups[i];
		if (g->status == GROUP_OPEN && same(g->agent, agent) &&
		    same(g->source, source))
			return g;
	}
	return NULL;
}

static struct sh_member *member_get(struct sh_group *g, const char *batch,
				    const char *symbol, bool create)
{
	char *key = xasprintf("%s\x1f%s", batch, symbol);
	struct strmap_entry *e = strmap_get(&g->idx, key);
	if (e || !create) {
		free(key);
		return e ? &g->m[e->value] : NULL;
	}
	GROW(g->m, g->capm, g->nm + 1);
	struct sh_member *m = &g->m[g->nm];
	memset(m, 0, sizeof(*m));
	m->batch = xstrdup(batch);
	m->symbol = xstrdup(symbol);
	GROW(g->keys, g->capkeys, g->nkeys + 1);
	g->keys[g->nkeys++] = key;
	strmap_put(&g->idx, key, g->nm);
	g->nm++;
	return m;
}

static void set_final(struct sh_group *g, struct sh_member *m, bool final)
{
	if (m->final != final)
		g->nfinal += final ? 1 : (size_t)-1;
	m->final = final;
}

void shared_group_progress(const struct sh_group *g, size_t *members,
			   size_t *final, size_t *paused)
{
	*members = g->nm;
	*final = *paused = 0;
	for (size_t i = 0; i < g->nm; i++) {
		*final += g->m[i].final;
		*paused += g->m[i].paused && !g->m[i].final;
	}
}

void shared_group_counts(const struct sh_group *g, struct sh_counts *c)
{
	memset(c, 0, sizeof(*c));
	c->members = g->nm;
	for (size_t i = 0; i < g->nm; i++) {
		const struct sh_member *m = &g->m[i];
		c->resumed += m->resumed;
		if (!m->final) {
			c->paused += m->paused;
			continue;
		}
		c->final++;
		if (!strcmp(m->state, "succeeded"))
			c->succeeded++;
		else if (!strcmp(m->state, "cancelled"))
			c->cancelled++;
		else
			c->failed++;
	}
}

const char *shared_member_state(const struct sh_group *g,
				const struct sh_member *m)
{
	if (m->final)
		return m->state[0] ? m->state : "final";
	if (m->paused)
		return g->status == GROUP_RESUMING ? "queued" : "paused";
	if (m->resumed)
		return "running";
	return m->failed ? "failed" : "open";
}

void shared_group_progress_text(const struct sh_group *g, struct sb *out)
{
	struct sh_counts c;
	shared_group_counts(g, &c);
	if (g->status == GROUP_OPEN)
		sb_addf(out, "%zu paused", c.paused);
	else if (g->status == GROUP_RESUMING)
		sb_addf(out, "%zu/%zu resumed, %zu queued", c.resumed,
			c.members, c.paused);
	else
		sb_addf(out, "%zu/%zu resumed", c.resumed, c.members);
	if (c.final)
		sb_addf(out, "; %zu succeeded, %zu failed, %zu cancelled",
			c.succeeded, c.failed, c.cancelled);
}

void shared_group_message(const struct sh_group *g, const char *what,
			  struct sb *out)
{
	struct sh_counts c;
	shared_group_counts(g, &c);
	size_t failing = 0;
	for (size_t i = 0; i < g->nm; i++)
		failing += g->m[i].failed;
	sb_addf(out, "failure group %s %s: %zu symbol%s failed with one cause, "
		     "%s",
		g->id, what, failing, failing == 1 ? "" : "s",
		g->root_cause ? g->root_cause : "unknown cause");
	size_t shown = 0;
	for (size_t i = 0; i < g->nm && shown < 10; i++) {
		bool dup = false;
		for (size_t k = 0; k < i && !dup; k++)
			dup = !strcmp(g->m[k].symbol, g->m[i].symbol);
		if (dup)
			continue;
		sb_addf(out, "%s%s", shown ? " " : " (", g->m[i].symbol);
		shown++;
	}
	if (shown)
		sb_addf(out, "%s)", c.members > shown ? " ..." : "");
	if (c.members > failing)
		sb_addf(out, "; %zu member%s in all", c.members,
			c.members == 1 ? "" : "s");
	if (g->status == GROUP_RESOLVED)
		sb_addf(out, "; %zu succeeded, %zu failed, %zu cancelled",
			c.succeeded, c.failed, c.cancelled);
	else
		sb_addf(out, "; resume with: runner resume %s; or cancel "
			     "with: runner cancel %s",
			g->id, g->id);
}

static void resolved(struct shared *sh, struct sh_group *g, int64_t ms)
{
	g->status = GROUP_RESOLVED;
	g->resolved_ms = ms;
	g->gen = ++sh->gen;
	/* The failures that made it are accounted for: a new group of the
	 * signature needs min_group new ones. */
	correlate_forget(&sh->corr, g->sig);
}

static void maybe_resolve(struct shared *sh, struct sh_group *g, int64_t ms)
{
	if (g->status == GROUP_RESOLVED)
		return;
	if (g->nm && g->nfinal == g->nm)
		resolved(sh, g, ms);
}

static int64_t num(const char *s)
{
	return strtoll(s, NULL, 10);
}

static char *opt(const char *s)
{
	return *s ? xstrdup(s) : NULL;
}

/* A failure group's id as group_id() makes it. */
static bool group_id_ok(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
	return n && !s[n] && n < GROUP_ID_MAX;
}

/*
 * The group, batch and symbol a line names, checked as strictly as where
 * they were first accepted (a job's id and symbols, group_id()): the log
 * is a file anyone who can write to the home can forge, and its names
 * reach messages, `runner cancel GROUP` and batch directories.  A line
 * naming one no job could is skipped, as a torn one is.
 */
static bool line_names_ok(char **f, int nf)
{
	int grp = -1, batch = -1, sym = -1;
	switch (f[0][0]) {
	case 'F': case 'W': sym = 7; batch = 8; break;
	case 'S': case 'Y': case 'H': case 'h': case 'K': sym = 2; break;
	case 'M': case 'P': case 'U': case 'X': case 'N': case 'T':
		grp = 2; batch = 3; sym = 4; break;
	case 'G': case 'L': case 'R': case 't': case 'O': case 'Z': case 'Q':
		grp = 2; break;
	}
	if (grp >= 0 && grp < nf && !group_id_ok(f[grp]))
		return false;
	/* A failure without a batch (F, W) leaves its field empty. */
	if (batch >= 0 && batch < nf && !valid_batch_id(f[batch]) &&
	    (batch != 8 || *f[batch]))
		return false;
	if (sym >= 0 && sym < nf && !valid_symbol(f[sym]))
		return false;
	/* Q: trial_batch, trial_symbol ("" when none). */
	if (f[0][0] == 'Q' && nf >= 12 &&
	    ((*f[10] && !valid_batch_id(f[10])) ||
	     (*f[11] && !valid_symbol(f[11]))))
		return false;
	return true;
}

static void fold_line(struct shared *sh, char **f, int nf)
{
	int64_t ms, until;
	const char *flags;
	struct sh_group *g;
	struct sh_symbol *s;
	if (nf < 2 || strlen(f[0]) != 1 || !line_names_ok(f, nf))
		return;
	ms = num(f[1]);
	switch (f[0][0]) {
	case 'F': /* sig agent source category type symbol batch norm msg
		     [flags] */
	case 'W': /* the same, for the window only (a snapshot) */
		if (nf < 11)
			return;
		flags = nf > 11 ? f[11] : "";
		if (strcmp(f[2], "-"))
			correlate_add_flagged(&sh->corr, f[2], f[7], f[8], ms,
					      strchr(flags, 'a') != NULL);
		if (f[0][0] == 'F' && !strchr(flags, 'g')) {
			s = symbol_get(sh, f[7]);
			breaker_step(&s->brk, &sh->sym_conf, BRK_TIMER, ms);
			breaker_step(&s->brk, &sh->sym_conf, BRK_FAILURE, ms);
			s->last_failure_ms = ms;
			sh->sym_gen++;
		}
		break;
	case 'S':
		if (nf < 3)
			return;
		s = symbol_get(sh, f[2]);
		breaker_step(&s->brk, &sh->sym_conf, BRK_TIMER, ms);
		breaker_step(&s->brk, &sh->sym_conf, BRK_SUCCESS, ms);
		correlate_drop_symbol(&sh->corr, f[2]);
		sh->sym_gen++;
		break;
	case 'Y': /* symbol streak state until open_ms trial */
		if (nf < 8)
			return;
		s = symbol_get(sh, f[2]);
		s->brk.streak = (uint32_t)num(f[3]);
		s->brk.state = (uint8_t)num(f[4]);
		s->brk.until = num(f[5]);
		s->brk.open_ms = num(f[6]);
		s->brk.trial_taken = num(f[7]) != 0;
		s->brk.trial_until = nf > 8 ? num(f[8]) : 0;
		if (s->brk.trial_taken && !s->brk.trial_until)
			s->brk.trial_until = ms + TRIAL_LEASE_MS;
		sh->sym_gen++;
		break;
	case 'H': /* symbol [until]: taken, or its lease renewed */
		if (nf < 3)
			return;
		s = symbol_get(sh, f[2]);
		until = nf > 3 ? num(f[3]) : ms + TRIAL_LEASE_MS;
		if (!breaker_take_trial(&s->brk, ms, until))
			breaker_renew_trial(&s->brk, until);
		sh->sym_gen++;
		break;
	case 'h':
		if (nf < 3)
			return;
		s = symbol_get(sh, f[2]);
		breaker_release_trial(&s->brk);
		sh->sym_gen++;
		break;
	case 'K':
		if (nf < 3)
			return;
		s = symbol_get(sh, f[2]);
		if (s->brk.state != CIRCUIT_CLOSED) {
			s->brk.state = CIRCUIT_HALF_OPEN;
			s->brk.trial_taken = true;
			s->brk.trial_until = nf > 3 ? num(f[3])
						    : ms + TRIAL_LEASE_MS;
		}
		sh->sym_gen++;
		break;
	case 'G': /* group sig agent source category type norm root_cause */
		if (nf < 10 || shared_group(sh, f[2]))
			return;
		g = xcalloc(1, sizeof(*g));
		snprintf(g->id, sizeof(g->id), "%s", f[2]);
		snprintf(g->sig, sizeof(g->sig), "%s", f[3]);
		g->agent = opt(f[4]);
		g->source = opt(f[5]);
		g->category = opt(f[6]);
		g->type = opt(f[7]);
		g->norm = opt(f[8]);
		g->root_cause = opt(f[9]);
		g->detected_ms = ms;
		g->opened_ms = ms;
		g->status = GROUP_OPEN;
		g->brk.state = CIRCUIT_OPEN;
		g->brk.open_ms = sh->src_conf.open_ms;
		g->brk.until = ms + sh->src_conf.open_ms;
		GROW(sh->groups, sh->capgroups, sh->ngroups + 1);
		sh->groups[sh->ngroups] = g;
		strmap_put(&sh->group_idx, g->id, sh->ngroups);
		sh->ngroups++;
		g->gen = ++sh->gen;
		break;
	case 'M':
	case 'P':
	case 'X':
	case 'U': {
		if (nf < 5 || !(g = shared_group(sh, f[2])))
			return;
		/* Only a failure or a pause makes a member. */
		bool joins = f[0][0] == 'M' || f[0][0] == 'P';
		struct sh_member *m = member_get(g, f[3], f[4], joins);
		if (!m)
			return;
		if (f[0][0] == 'M') {
			m->failed = true;
			set_final(g, m, false);
		} else if (f[0][0] == 'P') {
			m->paused = true;
			set_final(g, m, false);
			m->paused_ms = ms;
		} else if (f[0][0] == 'X') {
			set_final(g, m, true);
			m->paused = false;
			snprintf(m->state, sizeof(m->state), "%s",
				 nf > 5 ? f[5] : "");
			maybe_resolve(sh, g, ms);
		} else if (m->paused) {
			/* started again after a resume */
			m->paused = false;
			m->resumed = true;
		}
		g->gen = ++sh->gen;
		break;
	}
	case 'L':
		if (nf < 4 || !(g = shared_group(sh, f[2])))
			return;
		g->reported = (size_t)num(f[3]);
		if (!g->formed_size)
			g->formed_size = g->reported;
		break;
	case 'R':
		if (nf < 4 || !(g = shared_group(sh, f[2])) ||
		    g->status == GROUP_RESOLVED)
			return;
		g->status = GROUP_RESUMING;
		g->resumed_ms = ms;
		snprintf(g->order, sizeof(g->order), "%s", f[3]);
		g->brk.state = CIRCUIT_CLOSED;
		g->brk.trial_taken = false;
		g->brk.trial_until = 0;
		g->gen = ++sh->gen;
		break;
	case 'T': /* group batch symbol [until] */
		if (nf < 5 || !(g = shared_group(sh, f[2])))
			return;
		until = nf > 5 ? num(f[5]) : ms + TRIAL_LEASE_MS;
		if (!breaker_take_trial(&g->brk, ms, until))
			breaker_renew_trial(&g->brk, until);
		free(g->trial_batch);
		free(g->trial_symbol);
		g->trial_batch = xstrdup(f[3]);
		g->trial_symbol = xstrdup(f[4]);
		g->gen = ++sh->gen;
		break;
	case 't':
		if (nf < 3 || !(g = shared_group(sh, f[2])))
			return;
		breaker_release_trial(&g->brk);
		g->gen = ++sh->gen;
		break;
	case 'O':
		if (nf < 5 || !(g = shared_group(sh, f[2])) ||
		    g->status == GROUP_RESOLVED)
			return;
		g->status = GROUP_OPEN;
		g->opened_ms = ms;
		g->brk.state = CIRCUIT_OPEN;
		g->brk.trial_taken = false;
		g->brk.trial_until = 0;
		g->brk.until = num(f[3]);
		g->brk.open_ms = num(f[4]);
		g->gen = ++sh->gen;
		break;
	case 'Q': /* group status until open_ms trial circuit order
		     resumed_ms trial_batch trial_symbol (snapshot) */
		if (nf < 12 || !(g = shared_group(sh, f[2])))
			return;
		g->status = (int)num(f[3]);
		g->brk.until = num(f[4]);
		g->brk.open_ms = num(f[5]);
		g->brk.trial_taken = num(f[6]) != 0;
		g->brk.state = (uint8_t)num(f[7]);
		snprintf(g->order, sizeof(g->order), "%s", f[8]);
		g->resumed_ms = num(f[9]);
		free(g->trial_batch);
		free(g->trial_symbol);
		g->trial_batch = opt(f[10]);
		g->trial_symbol = opt(f[11]);
		g->brk.trial_until = nf > 12 ? num(f[12]) : 0;
		if (g->brk.trial_taken && !g->brk.trial_until)
			g->brk.trial_until = ms + TRIAL_LEASE_MS;
		if (nf > 13)
			g->opened_ms = num(f[13]);
		if (nf > 14)
			g->reported = (size_t)num(f[14]);
		if (nf > 15)
			g->formed_size = (size_t)num(f[15]);
		if (g->status == GROUP_RESOLVED)
			g->resolved_ms = ms;
		g->gen = ++sh->gen;
		break;
	case 'N': { /* group batch symbol failed paused final paused_ms */
		if (nf < 9 || !(g = shared_group(sh, f[2])))
			return;
		struct sh_member *m = member_get(g, f[3], f[4], true);
		m->failed = num(f[5]) != 0;
		m->paused = num(f[6]) != 0;
		set_final(g, m, num(f[7]) != 0);
		m->paused_ms = num(f[8]);
		m->resumed = nf > 9 && num(f[9]) != 0;
		snprintf(m->state, sizeof(m->state), "%s", nf > 10 ? f[10] : "");
		g->gen = ++sh->gen;
		break;
	}
	case 'Z':
		if (nf < 3 || !(g = shared_group(sh, f[2])))
			return;
		if (g->status != GROUP_RESOLVED)
			resolved(sh, g, ms);
		break;
	}
}

static uint32_t line_crc(const char *s, size_t n)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)s, (uInt)n);
}

/* Split a line in place at TABs and fold it.  Its last field is the CRC-32
 * of what precedes it: a torn line, or one spliced together with another,
 * folds to nothing in every process. */
static void fold_text(struct shared *sh, char *line)
{
	char *f[MAX_FIELDS];
	int nf = 0;
	char *sum = strrchr(line, '\t');
	if (!sum || strlen(sum + 1) != 8 ||
	    strtoul(sum + 1, NULL, 16) != line_crc(line, (size_t)(sum - line)))
		return;
	*sum = '\0';
	for (char *p = line; nf < MAX_FIELDS;) {
		f[nf++] = p;
		char *tab = strchr(p, '\t');
		if (!tab)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	fold_line(sh, f, nf);
}

/* ---- the file ---- */

static int open_log(struct shared *sh)
{
	struct stat st;
	sh->fd = openat(sh->state_fd, "events",
			O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			0644);
	if (sh->fd < 0 || fstat(sh->fd, &st) < 0)
		return -1;
	sh->dev = st.st_dev;
	sh->ino = st.st_ino;
	return 0;
}

int shared_sync(struct shared *sh)
{
	struct stat st;
	/* A compaction replaced the file: fold the new one from the start. */
	if (fstatat(sh->state_fd, "events", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (st.st_ino != sh->ino || st.st_dev != sh->dev)) {
		close(sh->fd);
		if (open_log(sh) < 0)
			return -1;
		fold_reset(sh);
	}
	char buf[65536];
	for (;;) {
		ssize_t n = pread(sh->fd, buf, sizeof(buf), sh->offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		sh->offset += n;
		sb_add(&sh->partial, buf, (size_t)n);
	}
	/* Whole lines only; a torn tail waits for its newline. */
	char *p = sh->partial.buf, *end = p + sh->partial.len;
	while (p && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		*nl = '\0';
		fold_text(sh, p);
		p = nl + 1;
	}
	if (p && p < end) {
		size_t rest = (size_t)(end - p);
		memmove(sh->partial.buf, p, rest);
		sh->partial.len = rest;
		sh->partial.buf[rest] = '\0';
	} else {
		sb_reset(&sh->partial);
	}
	return 0;
}

int shared_open(struct shared *sh, int state_fd, const struct conf *c)
{
	memset(sh, 0, sizeof(*sh));
	sh->state_fd = state_fd;
	sh->sym_conf.threshold = (uint32_t)c->breaker_threshold;
	sh->sym_conf.open_ms = c->breaker_open_ms;
	sh->sym_conf.max_open_ms = c->breaker_open_ms * 16;
	sh->src_conf = sh->sym_conf;
	correlate_init(&sh->corr, c->corr_window_ms, c->min_group);
	if (open_log(sh) < 0)
		return -1;
	return shared_sync(sh);
}

void shared_close(struct shared *sh)
{
	fold_reset(sh);
	correlate_release(&sh->corr);
	sb_release(&sh->partial);
	sb_release(&sh->out);
	if (sh->fd >= 0)
		close(sh->fd);
	sh->fd = -1;
}

/* ---- transactions ---- */

static int begin(struct shared *sh)
{
	for (int tries = 0; tries < 100; tries++) {
		if (lock_within(sh->fd, LOCK_WAIT_MS) < 0) {
			if (errno == EWOULDBLOCK)
				warning("state/events: locked by another process "
					"for %d s; this decision is skipped",
					LOCK_WAIT_MS / 1000);
			return -1;
		}
		/* Still the live file?  (A compaction may have replaced it
		 * while we waited for its lock.) */
		struct stat st;
		if (fstatat(sh->state_fd, "events", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_ino == sh->ino && st.st_dev == sh->dev) {
			sh->locked = true;
			sb_reset(&sh->out);
			remove_stale_temps(sh->state_fd, "events", 0);
			if (shared_sync(sh) < 0) {
				flock(sh->fd, LOCK_UN);
				sh->locked = false;
				return -1;
			}
			/* With the lock held nobody is writing: a line without
			 * its newline is a crashed writer's.  End it, so that
			 * ours start on a line of their own; its checksum
			 * fails, so it folds to nothing, here and everywhere. */
			if (sh->partial.len) {
				if (write_all(sh->fd, "\n", 1) == 0)
					sh->offset++;
				sb_reset(&sh->partial);
			}
			return 0;
		}
		flock(sh->fd, LOCK_UN);
		if (shared_sync(sh) < 0)
			return -1;
	}
	errno = EAGAIN;
	return -1;
}

/* A whole line: its text, a TAB, its CRC, a newline. */
static void add_line(struct sb *out, const char *text, size_t n)
{
	sb_add(out, text, n);
	sb_addf(out, "\t%08x\n", line_crc(text, n));
}

/* Add one line to the transaction and fold it at once. */
__attribute__((format(printf, 3, 4)))
static void emit(struct shared *sh, char type, const char *fmt, ...)
{
	struct sb line = SB_INIT;
	va_list ap;
	sb_addf(&line, "%c\t%lld\t", type, (long long)now_ms());
	va_start(ap, fmt);
	sb_vaddf(&line, fmt, ap);
	va_end(ap);
	size_t start = sh->out.len;
	add_line(&sh->out, line.buf, line.len);
	/* Fold what will be written, exactly as readers will. */
	char *copy = xstrndup(sh->out.buf + start, sh->out.len - start - 1);
	fold_text(sh, copy);
	free(copy);
	sb_release(&line);
}

static void compact(struct shared *sh);

static int end(struct shared *sh)
{
	int rc = 0;
	if (sh->out.len) {
		if (write_all(sh->fd, sh->out.buf, sh->out.len) < 0) {
			rc = -1;
			warning("state/events: %s", strerror(errno));
		} else {
			/* Folded already, and nobody wrote in between. */
			sh->offset += (off_t)sh->out.len;
			if (sh->offset > (off_t)SHARED_COMPACT)
				compact(sh);
		}
		sb_reset(&sh->out);
	}
	flock(sh->fd, LOCK_UN);
	sh->locked = false;
	if (rc < 0) {
		/* What we folded may not be on disk: fold the file again. */
		fold_reset(sh);
		shared_sync(sh);
	}
	return rc;
}

/* An escaped, TAB-free field ("" for NULL). */
static const char *field(struct sb *sb, const char *s)
{
	sb_reset(sb);
	if (s)
		sb_add_escaped(sb, s, 1024);
	sb_grow(sb, 0);
	return sb->buf;
}

static void group_id(struct shared *sh, int64_t now, char *id, size_t n)
{
	char t[TIME_BUF];
	fmt_time(now, t);
	/* grp-YYYYMMDD-HHMMSS-N */
	char stamp[32];
	snprintf(stamp, sizeof(stamp), "%.4s%.2s%.2s-%.2s%.2s%.2s", t, t + 5,
		 t + 8, t + 11, t + 14, t + 17);
	for (unsigned k = 1;; k++) {
		char buf[64];
		snprintf(buf, sizeof(buf), "grp-%.20s-%u", stamp, k % 100000);
		snprintf(id, n, "%.*s", (int)n - 1, buf);
		if (!shared_group(sh, id))
			return;
	}
}

/* The open (not resolved) group of a signature, newest first. */
static struct sh_group *group_of_sig(struct shared *sh, const char *sig)
{
	for (size_t i = sh->ngroups; i-- > 0;)
		if (!strcmp(sh->groups[i]->sig, sig) &&
		    sh->groups[i]->status != GROUP_RESOLVED)
			return sh->groups[i];
	return NULL;
}

static void ref_add(struct sh_failure_result *out, const char *batch,
		    const char *symbol)
{
	for (size_t i = 0; i < out->nunreported; i++)
		if (!strcmp(out->unreported[i].batch, batch) &&
		    !strcmp(out->unreported[i].symbol, symbol))
			return;
	out->unreported = xrealloc(out->unreported, (out->nunreported + 1) *
							    sizeof(struct sh_ref));
	out->unreported[out->nunreported++] =
		(struct sh_ref){ xstrdup(batch), xstrdup(symbol) };
}

void shared_failure_done(struct sh_failure_result *out)
{
	for (size_t i = 0; i < out->nunreported; i++) {
		free(out->unreported[i].batch);
		free(out->unreported[i].symbol);
	}
	free(out->unreported);
	out->unreported = NULL;
	out->nunreported = 0;
}

/* The source is still failing after a resume: open the group again, for
 * twice as long as its last open period. */
static void reopen(struct shared *sh, struct sh_group *g, int64_t now)
{
	int64_t ms = g->brk.open_ms ? g->brk.open_ms * 2 : sh->src_conf.open_ms;
	if (sh->src_conf.max_open_ms && ms > sh->src_conf.max_open_ms)
		ms = sh->src_conf.max_open_ms;
	emit(sh, 'O', "%s\t%lld\t%lld", g->id, (long long)(now + ms),
	     (long long)ms);
}

int shared_failure(struct shared *sh, struct failure *f, bool correlate,
		   bool final_alone, int64_t now, struct sh_failure_result *out)
{
	struct sb norm = SB_INIT, a = SB_INIT, b = SB_INIT, c = SB_INIT,
		  d = SB_INIT;
	char sig[SIG_LEN + 1], gid[GROUP_ID_MAX] = "";
	memset(out, 0, sizeof(*out));
	correlate_fill(f, &norm, sig);
	if (begin(sh) < 0) {
		sb_release(&norm);
		return -1;
	}
	struct sh_symbol *s = symbol_get(sh, f->symbol);
	int was = s->brk.state;
	/* Decided before the line is written, so that every reader folds
	 * the same answer: does this failure belong to a group? */
	struct sh_group *g = correlate ? group_of_sig(sh, sig) : NULL;
	bool forms = correlate && !g &&
		     correlate_would_form(&sh->corr, sig, f->symbol, now);
	bool grouped = g || forms;
	const char *flags = grouped ? "g" : final_alone ? "a" : "";
	emit(sh, 'F', "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s",
	     correlate ? sig : "-", field(&d, f->agent),
	     f->source ? f->source : "", f->category ? f->category : "",
	     field(&a, f->type), f->symbol, f->batch ? f->batch : "",
	     field(&b, f->norm), field(&c, f->message), flags);
	s = symbol_get(sh, f->symbol);
	out->streak = s->brk.streak;
	/* The alert is for an opening, not for each failed trial after it. */
	out->symbol_opened = s->brk.state == CIRCUIT_OPEN && was == CIRCUIT_CLOSED;

	if (g) {
		struct sh_member *m = member_get(g, f->batch, f->symbol, false);
		out->new_member = !m || !m->failed;
		if (g->status == GROUP_RESUMING) {
			reopen(sh, g, now);
			out->reopened = true;
		}
		emit(sh, 'M', "%s\t%s\t%s", g->id, f->batch, f->symbol);
		snprintf(gid, sizeof(gid), "%s", g->id);
	} else if (forms) {
		struct strmap_entry *se = strmap_get(&sh->corr.index, sig);
		const struct corr_sig *w = se ? sh->corr.sigs[se->value] : NULL;
		char id[GROUP_ID_MAX];
		struct sb cause = SB_INIT;
		correlate_root_cause(f, &cause);
		group_id(sh, now, id, sizeof(id));
		emit(sh, 'G', "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", id, sig,
		     f->agent, f->source ? f->source : "", f->category,
		     field(&a, f->type), field(&b, f->norm),
		     field(&d, cause.buf));
		sb_release(&cause);
		/* Every failure of the window is a member; those already
		 * reported as final failures are not reported again. */
		for (size_t i = 0; w && i < w->n; i++) {
			if (w->ev[i].ms < now - sh->corr.window_ms)
				continue;
			emit(sh, 'M', "%s\t%s\t%s", id, w->ev[i].batch,
			     w->ev[i].symbol);
			if (!w->ev[i].alerted)
				ref_add(out, w->ev[i].batch, w->ev[i].symbol);
		}
		ref_add(out, f->batch ? f->batch : "", f->symbol);
		out->formed = true;
		out->new_member = true;
		snprintf(gid, sizeof(gid), "%s", id);
	}
	if (gid[0]) {
		struct sh_group *gg = shared_group(sh, gid);
		/* Growth is told when the failing members double since the
		 * last group alert (so at most log2(N) of them); members only
		 * paused for the group do not make it grow. */
		size_t failing = 0;
		for (size_t i = 0; gg && i < gg->nm; i++)
			failing += gg->m[i].failed;
		if (gg && (out->formed || failing >= 2 * gg->reported)) {
			emit(sh, 'L', "%s\t%zu", gid, failing);
			if (!out->formed)
				out->grown = failing;
		}
	}
	int rc = end(sh); /* may compact: every group is folded anew */
	out->group = gid[0] ? shared_group(sh, gid) : NULL;
	sb_release(&norm);
	sb_release(&a);
	sb_release(&b);
	sb_release(&c);
	sb_release(&d);
	return rc;
}

/* Fold what others appended, if anything: one fstat when nothing was. */
static void catch_up(struct shared *sh)
{
	struct stat st;
	if (fstat(sh->fd, &st) == 0 && st.st_size == sh->offset &&
	    st.st_nlink > 0)
		return;
	shared_sync(sh);
}

bool shared_refresh(struct shared *sh)
{
	uint64_t gen = sh->gen, sym_gen = sh->sym_gen;
	catch_up(sh);
	return sh->gen != gen || sh->sym_gen != sym_gen;
}

int shared_success(struct shared *sh, const char *symbol, int64_t now)
{
	catch_up(sh);
	struct sh_symbol *s = shared_symbol(sh, symbol);
	(void)now;
	/* Nothing to end: no line (the common case costs nothing). */
	if (!s || (!s->brk.streak && s->brk.state == CIRCUIT_CLOSED))
		return 0;
	if (begin(sh) < 0)
		return -1;
	s = symbol_get(sh, symbol);
	int was = s->brk.state;
	if (s->brk.streak || s->brk.state != CIRCUIT_CLOSED)
		emit(sh, 'S', "%s", symbol);
	int closed = was != CIRCUIT_CLOSED && s->brk.state == CIRCUIT_CLOSED;
	end(sh);
	return closed;
}

int shared_paused(struct shared *sh, const char *group, const char *batch,
		  const char *const *symbols, size_t n, int64_t now)
{
	(void)now;
	if (!n)
		return 0;
	if (begin(sh) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		emit(sh, 'P', "%s\t%s\t%s", group, batch, symbols[i]);
	return end(sh);
}

size_t shared_member_groups(struct shared *sh, const char *batch,
			    const char *symbol, struct sh_group **out,
			    size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sh->ngroups && n < max; i++) {
		struct sh_group *g = sh->groups[i];
		struct sh_member *m = g->status == GROUP_RESOLVED
			? NULL : member_get(g, batch, symbol, false);
		if (m && !m->final)
			out[n++] = g;
	}
	return n;
}

/* The groups whose member (batch, symbol) is not yet final, or is final
 * with another state (it was retried since, `retry-failed`). */
static size_t groups_to_tell(struct shared *sh, const char *batch,
			     const char *symbol, const char *state,
			     char (*ids)[GROUP_ID_MAX], size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sh->ngroups && n < max; i++) {
		struct sh_group *g = sh->groups[i];
		struct sh_member *m = member_get(g, batch, symbol, false);
		if (m && (!m->final || strcmp(m->state, state)))
			snprintf(ids[n++], GROUP_ID_MAX, "%s", g->id);
	}
	return n;
}

int shared_final(struct shared *sh, const char *batch, const char *symbol,
		 const char *state, int64_t now, char (*resolved)[GROUP_ID_MAX],
		 size_t nresolved)
{
	char ids[16][GROUP_ID_MAX];
	(void)now;
	if (!state)
		state = "";
	catch_up(sh);
	if (!groups_to_tell(sh, batch, symbol, state, ids, 16))
		return 0;
	if (begin(sh) < 0)
		return -1;
	size_t n = groups_to_tell(sh, batch, symbol, state, ids, 16);
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		struct sh_group *g = shared_group(sh, ids[i]);
		bool was = g && g->status == GROUP_RESOLVED;
		emit(sh, 'X', "%s\t%s\t%s\t%s", ids[i], batch, symbol, state);
		g = shared_group(sh, ids[i]);
		if (g && !was && g->status == GROUP_RESOLVED) {
			emit(sh, 'Z', "%s", ids[i]);
			if ((size_t)count < nresolved)
				memcpy(resolved[count], ids[i], GROUP_ID_MAX);
			count++;
		}
	}
	end(sh);
	return count;
}

int shared_started(struct shared *sh, const char *batch, const char *symbol)
{
	struct sh_group *v[16];
	size_t n = shared_member_groups(sh, batch, symbol, v, 16), want = 0;
	for (size_t i = 0; i < n; i++) {
		struct sh_member *m = member_get(v[i], batch, symbol, false);
		want += m && m->paused && v[i]->status == GROUP_RESUMING;
	}
	if (!want)
		return 0;
	if (begin(sh) < 0)
		return -1;
	n = shared_member_groups(sh, batch, symbol, v, 16);
	for (size_t i = 0; i < n; i++) {
		struct sh_member *m = member_get(v[i], batch, symbol, false);
		if (m && m->paused && v[i]->status == GROUP_RESUMING)
			emit(sh, 'U', "%s\t%s\t%s", v[i]->id, batch, symbol);
	}
	return end(sh);
}

int shared_resume(struct shared *sh, const char *group, const char *order,
		  int64_t now)
{
	(void)now;
	if (begin(sh) < 0)
		return -1;
	struct sh_group *g = shared_group(sh, group);
	if (g && g->status != GROUP_RESOLVED)
		emit(sh, 'R', "%s\t%s", group, order);
	return end(sh);
}

int shared_pause_group(struct shared *sh, const char *group, int64_t now)
{
	if (begin(sh) < 0)
		return -1;
	struct sh_group *g = shared_group(sh, group);
	if (g && g->status != GROUP_RESOLVED) {
		/* "until" a century away: only a resume ends this pause. */
		int64_t far = now + 100LL * 365 * 86400000LL;
		emit(sh, 'O', "%s\t%lld\t%lld", group, (long long)far,
		     (long long)g->brk.open_ms);
	}
	return end(sh);
}

int shared_trial(struct shared *sh, const char *group, const char *batch,
		 const char *symbol, int64_t now)
{
	struct sh_group *g = shared_group(sh, group);
	if (!g || g->status != GROUP_OPEN || !breaker_allows(&g->brk, now))
		return 0;
	if (begin(sh) < 0)
		return -1;
	g = shared_group(sh, group);
	int taken = 0;
	if (g && g->status == GROUP_OPEN && breaker_allows(&g->brk, now)) {
		emit(sh, 'T', "%s\t%s\t%s\t%lld", group, batch, symbol,
		     (long long)(now + shared_trial_lease_ms()));
		taken = 1;
	}
	end(sh);
	return taken;
}

int shared_trial_renew(struct shared *sh, const char *group,
		       const char *batch, const char *symbol, int64_t now)
{
	struct sh_group *g = shared_group(sh, group);
	if (!g || g->status != GROUP_OPEN || !g->brk.trial_taken)
		return 0;
	if (begin(sh) < 0)
		return -1;
	emit(sh, 'T', "%s\t%s\t%s\t%lld", group, batch, symbol,
	     (long long)(now + shared_trial_lease_ms()));
	return end(sh);
}

int shared_trial_release(struct shared *sh, const char *group)
{
	struct sh_group *g = shared_group(sh, group);
	if (!g || g->status != GROUP_OPEN || !g->brk.trial_taken)
		return 0;
	if (begin(sh) < 0)
		return -1;
	emit(sh, 't', "%s", group);
	return end(sh);
}

int shared_trial_result(struct shared *sh, const char *group, bool success,
			int64_t now)
{
	if (begin(sh) < 0)
		return -1;
	struct sh_group *g = shared_group(sh, group);
	if (g && g->status == GROUP_OPEN) {
		if (success)
			emit(sh, 'R', "%s\t%s", group, "progress");
		else
			reopen(sh, g, now);
	}
	return end(sh);
}

int shared_symbol_trial(struct shared *sh, const char *symbol, int64_t now)
{
	catch_up(sh);
	struct sh_symbol *s = shared_symbol(sh, symbol);
	if (!s || s->brk.state == CIRCUIT_CLOSED)
		return 1;
	if (!breaker_allows(&s->brk, now))
		return 0;
	if (begin(sh) < 0)
		return -1;
	s = symbol_get(sh, symbol);
	int taken = 0;
	if (s->brk.state == CIRCUIT_CLOSED) {
		taken = 1;
	} else if (breaker_allows(&s->brk, now)) {
		emit(sh, 'H', "%s\t%lld", symbol,
		     (long long)(now + shared_trial_lease_ms()));
		taken = 1;
	}
	end(sh);
	return taken;
}

int shared_symbol_trial_renew(struct shared *sh, const char *symbol,
			      int64_t now)
{
	struct sh_symbol *s = shared_symbol(sh, symbol);
	if (!s || s->brk.state == CIRCUIT_CLOSED || !s->brk.trial_taken)
		return 0;
	if (begin(sh) < 0)
		return -1;
	emit(sh, 'H', "%s\t%lld", symbol, (long long)(now + shared_trial_lease_ms()));
	return end(sh);
}

int shared_symbol_trial_release(struct shared *sh, const char *symbol)
{
	struct sh_symbol *s = shared_symbol(sh, symbol);
	if (!s || s->brk.state == CIRCUIT_CLOSED || !s->brk.trial_taken)
		return 0;
	if (begin(sh) < 0)
		return -1;
	emit(sh, 'h', "%s", symbol);
	return end(sh);
}

int shared_symbol_force_trial(struct shared *sh, const char *symbol)
{
	struct sh_symbol *s = shared_symbol(sh, symbol);
	if (!s || s->brk.state == CIRCUIT_CLOSED)
		return 0;
	if (begin(sh) < 0)
		return -1;
	emit(sh, 'K', "%s\t%lld", symbol, (long long)(now_ms() + shared_trial_lease_ms()));
	return end(sh) < 0 ? -1 : 1;
}

/* ---- compaction ---- */

/* Rewrite the log as the state it folds to (under the lock). */
__attribute__((format(printf, 2, 3)))
static void snap(struct sb *out, const char *fmt, ...)
{
	struct sb line = SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&line, fmt, ap);
	va_end(ap);
	add_line(out, line.buf, line.len);
	sb_release(&line);
}

static void compact(struct shared *sh)
{
	struct sb a = SB_INIT, b = SB_INIT, c = SB_INIT, out = SB_INIT;
	int64_t now = now_ms();
	for (size_t i = 0; i < sh->nsymbols; i++) {
		struct sh_symbol *s = sh->symbols[i];
		if (!s->brk.streak && s->brk.state == CIRCUIT_CLOSED)
			continue;
		snap(&out, "Y\t%lld\t%s\t%u\t%d\t%lld\t%lld\t%d\t%lld",
		     (long long)now, s->symbol, s->brk.streak, s->brk.state,
		     (long long)s->brk.until, (long long)s->brk.open_ms,
		     s->brk.trial_taken, (long long)s->brk.trial_until);
	}
	for (size_t i = 0; i < sh->corr.nsigs; i++) {
		const struct corr_sig *w = sh->corr.sigs[i];
		for (size_t k = 0; k < w->n; k++)
			if (w->ev[k].ms >= now - sh->corr.window_ms)
				snap(&out, "W\t%lld\t%s\t\t\t\t\t%s\t%s\t\t\t%s",
				     (long long)w->ev[k].ms, w->sig,
				     w->ev[k].symbol, w->ev[k].batch,
				     w->ev[k].alerted ? "a" : "");
	}
	for (size_t i = 0; i < sh->ngroups; i++) {
		struct sh_group *g = sh->groups[i];
		if (g->status == GROUP_RESOLVED &&
		    now - g->resolved_ms > KEEP_RESOLVED_MS)
			continue;
		snap(&out, "G\t%lld\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s",
		     (long long)g->detected_ms, g->id, g->sig, g->agent,
		     g->source ? g->source : "", g->category ? g->category : "",
		     field(&a, g->type), field(&b, g->norm),
		     field(&c, g->root_cause));
		for (size_t k = 0; k < g->nm; k++) {
			struct sh_member *m = &g->m[k];
			snap(&out, "N\t%lld\t%s\t%s\t%s\t%d\t%d\t%d\t%lld\t%d\t%s",
			     (long long)g->detected_ms, g->id, m->batch,
			     m->symbol, m->failed, m->paused, m->final,
			     (long long)m->paused_ms, m->resumed, m->state);
		}
		snap(&out, "Q\t%lld\t%s\t%d\t%lld\t%lld\t%d\t%d\t%s\t%lld\t%s\t%s\t%lld\t%lld\t%zu\t%zu",
		     (long long)(g->status == GROUP_RESOLVED ? g->resolved_ms
							     : now),
		     g->id, g->status, (long long)g->brk.until,
		     (long long)g->brk.open_ms, g->brk.trial_taken,
		     g->brk.state, g->order, (long long)g->resumed_ms,
		     g->trial_batch ? g->trial_batch : "",
		     g->trial_symbol ? g->trial_symbol : "",
		     (long long)g->brk.trial_until, (long long)g->opened_ms,
		     g->reported, g->formed_size);
	}
	sb_release(&a);
	sb_release(&b);
	sb_release(&c);
	if (home_replace(sh->state_fd, "events", out.buf ? out.buf : "",
			 out.len) < 0) {
		warning("state/events: compaction: %s", strerror(errno));
		sb_release(&out);
		return;
	}
	sb_release(&out);
	/* Our lock was on the old file: the new one starts here. */
	close(sh->fd);
	open_log(sh);
	fold_reset(sh);
	shared_sync(sh);
}
