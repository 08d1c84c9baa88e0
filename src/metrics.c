#include "metrics.h"
#include "breaker.h"
#include "cli.h"
#include "home.h"
#include "shared.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* A file past this is not ours to read: its counters start again. */
#define METRICS_FILE_MAX (4u << 20)

static const double batch_le[METRICS_BUCKETS] = {
	1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600,
};
static const double attempt_le[METRICS_ATTEMPT_BUCKETS] = {
	0.1, 1, 10, 60, 300, 1800,
};
static const int final_state[METRICS_FINALS] = {
	ST_SUCCEEDED, ST_FAILED, ST_CANCELLED,
};

void metrics_init(struct metrics *m, int64_t now_ms, bool daemon)
{
	memset(m, 0, sizeof(*m));
	m->started_ms = now_ms;
	m->daemon = daemon;
}

static void clear_counts(struct metrics *m)
{
	for (size_t i = 0; i < m->nagents; i++) {
		char *name = m->agents[i].agent;
		memset(&m->agents[i], 0, sizeof(m->agents[i]));
		m->agents[i].agent = name;
	}
	memset(m->batches, 0, sizeof(m->batches));
	memset(m->batch_bucket, 0, sizeof(m->batch_bucket));
	m->batch_sum = 0;
	m->batch_count = 0;
}

void metrics_release(struct metrics *m)
{
	for (size_t i = 0; i < m->nagents; i++)
		free(m->agents[i].agent);
	free(m->agents);
	m->agents = NULL;
	m->nagents = m->cap = 0;
}

static struct metrics_counts *counts(struct metrics *m, const char *agent)
{
	if (!agent)
		agent = "";
	for (size_t i = 0; i < m->nagents; i++)
		if (!strcmp(m->agents[i].agent, agent))
			return &m->agents[i];
	GROW(m->agents, m->cap, m->nagents + 1);
	struct metrics_counts *c = &m->agents[m->nagents++];
	memset(c, 0, sizeof(*c));
	c->agent = xstrdup(agent);
	return c;
}

void metrics_attempt(struct metrics *m, const char *agent, int outcome,
		     int category, double seconds)
{
	if (outcome < 0 || outcome >= METRICS_OUTCOMES)
		return;
	if (category < 0 || category >= CAT_COUNT)
		category = CAT_NONE;
	struct metrics_counts *c = counts(m, agent);
	c->attempts[outcome][category]++;
	if (!(seconds >= 0) || !isfinite(seconds))
		return;
	for (int i = 0; i < METRICS_ATTEMPT_BUCKETS; i++)
		if (seconds <= attempt_le[i]) {
			c->dur_bucket[i]++;
			break;
		}
	c->dur_sum += seconds;
	c->dur_count++;
}

void metrics_item_final(struct metrics *m, const char *agent, int state)
{
	for (int i = 0; i < METRICS_FINALS; i++)
		if (final_state[i] == state)
			counts(m, agent)->finished[i]++;
}

void metrics_batch_final(struct metrics *m, int status, double seconds)
{
	if (status < 0 || status > BS_CANCELLED)
		return;
	m->batches[status]++;
	if (!(seconds >= 0) || !isfinite(seconds))
		return;
	for (int i = 0; i < METRICS_BUCKETS; i++)
		if (seconds <= batch_le[i]) {
			m->batch_bucket[i]++;
			break;
		}
	m->batch_sum += seconds;
	m->batch_count++;
}

/* ---- the counters of the file before ---- */

struct base_entry {
	char *key;	/* "name{labels}" as written */
	double value;
};
struct metrics_base {
	struct base_entry *e;	/* open addressing, size a power of 2 */
	size_t size, n;
};

static uint64_t fnv(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static struct base_entry *base_slot(const struct metrics_base *b,
				    const char *key, size_t n)
{
	size_t i = (size_t)fnv(key, n) & (b->size - 1);
	while (b->e[i].key &&
	       (strlen(b->e[i].key) != n || memcmp(b->e[i].key, key, n)))
		i = (i + 1) & (b->size - 1);
	return &b->e[i];
}

static bool counter_name(const char *s, size_t n)
{
	static const char *const ends[] = { "_total", "_bucket", "_sum",
					    "_count" };
	for (size_t i = 0; i < sizeof(ends) / sizeof(*ends); i++) {
		size_t k = strlen(ends[i]);
		if (n > k && !memcmp(s + n - k, ends[i], k))
			return true;
	}
	return false;
}

struct metrics_base *metrics_base_parse(const char *text, size_t len)
{
	struct metrics_base *b = xcalloc(1, sizeof(*b));
	b->size = 64;
	b->e = xcalloc(b->size, sizeof(*b->e));
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *sp = eol;
		while (sp > p && sp[-1] != ' ')
			sp--;
		size_t klen = sp > p ? (size_t)(sp - 1 - p) : 0;
		size_t nlen = 0;
		while (nlen < klen && p[nlen] != '{')
			nlen++;
		char num[64];
		size_t vlen = (size_t)(eol - sp);
		if (*p != '#' && klen && klen < 4096 && counter_name(p, nlen) &&
		    vlen && vlen < sizeof(num)) {
			memcpy(num, sp, vlen);
			num[vlen] = '\0';
			char *after;
			double v = strtod(num, &after);
			if (*after == '\0' && isfinite(v) && v >= 0) {
				if (2 * (b->n + 1) > b->size) {
					struct metrics_base old = *b;
					b->size *= 2;
					b->n = 0;
					b->e = xcalloc(b->size, sizeof(*b->e));
					for (size_t i = 0; i < old.size; i++)
						if (old.e[i].key) {
							*base_slot(b, old.e[i].key,
								   strlen(old.e[i].key)) =
								old.e[i];
							b->n++;
						}
					free(old.e);
				}
				struct base_entry *s = base_slot(b, p, klen);
				if (!s->key) {
					s->key = xstrndup(p, klen);
					b->n++;
				}
				s->value = v;
			}
		}
		p = nl ? nl + 1 : end;
	}
	return b;
}

void metrics_base_free(struct metrics_base *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->size; i++)
		free(b->e[i].key);
	free(b->e);
	free(b);
}

/* ---- the text ---- */

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct sb *out, const char *s)
{
	sb_addc(out, '"');
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sb_addc(out, '\\');
		if (*s == '\n') {
			sb_adds(out, "\\n");
			continue;
		}
		sb_addc(out, *s);
	}
	sb_addc(out, '"');
}

static void head(struct sb *out, const char *name, const char *type,
		 const char *help)
{
	sb_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "NAME{home="H"": the caller adds ",label=..." and closes it with tail(). */
static size_t series(struct sb *out, const struct metrics_view *v,
		     const char *name)
{
	size_t start = out->len;
	sb_adds(out, name);
	sb_adds(out, "{home=");
	label_value(out, v->home ? v->home : "");
	return start;
}

static void gauge_end(struct sb *out, double value)
{
	sb_addf(out, "} %.15g\n", value);
}

/* Close a counter's sample: its value is the file's before plus delta. */
static void counter_end(struct sb *out, size_t start,
			const struct metrics_base *base, double delta,
			bool seconds)
{
	sb_addc(out, '}');
	double before = 0;
	if (base) {
		const struct base_entry *e =
			base_slot(base, out->buf + start, out->len - start);
		if (e->key)
			before = e->value;
	}
	if (seconds)
		sb_addf(out, " %.3f\n", before + delta);
	else
		sb_addf(out, " %.15g\n", before + delta);
}

static void agent_label(struct sb *out, const char *agent)
{
	sb_adds(out, ",agent=");
	label_value(out, agent);
}

/* Every agent the counters speak of: the configured ones, then those of
 * batches whose agent has left the configuration. */
static void each_agent(const struct metrics *m, const struct metrics_view *v,
		       void (*fn)(void *arg, const char *agent,
				  const struct metrics_counts *c),
		       void *arg)
{
	static const struct metrics_counts zero;
	for (size_t i = 0; i < v->nagents; i++) {
		const struct metrics_counts *c = &zero;
		for (size_t k = 0; k < m->nagents; k++)
			if (!strcmp(m->agents[k].agent, v->agents[i].name))
				c = &m->agents[k];
		fn(arg, v->agents[i].name, c);
	}
	for (size_t k = 0; k < m->nagents; k++) {
		bool known = false;
		for (size_t i = 0; i < v->nagents && !known; i++)
			known = !strcmp(m->agents[k].agent, v->agents[i].name);
		if (!known)
			fn(arg, m->agents[k].agent, &m->agents[k]);
	}
}

struct fmt {
	struct sb *out;
	const struct metrics_view *v;
	const struct metrics_base *base;
};

static void fmt_attempts(void *arg, const char *agent,
			 const struct metrics_counts *c)
{
	struct fmt *f = arg;
	for (int o = OUT_SUCCEEDED; o < METRICS_OUTCOMES; o++)
		for (int k = 0; k < CAT_COUNT; k++) {
			if (o == OUT_FAILED ? k == CAT_NONE : k != CAT_NONE)
				continue;
			size_t s = series(f->out, f->v, "runner_attempts_total");
			agent_label(f->out, agent);
			sb_addf(f->out, ",outcome=\"%s\",category=\"%s\"",
				outcome_name(o),
				k == CAT_NONE ? "none" : category_name(k));
			counter_end(f->out, s, f->base,
				    (double)c->attempts[o][k], false);
		}
}

static void fmt_finished(void *arg, const char *agent,
			 const struct metrics_counts *c)
{
	struct fmt *f = arg;
	for (int i = 0; i < METRICS_FINALS; i++) {
		size_t s = series(f->out, f->v, "runner_items_finished_total");
		agent_label(f->out, agent);
		sb_addf(f->out, ",state=\"%s\"", state_name(final_state[i]));
		counter_end(f->out, s, f->base, (double)c->finished[i], false);
	}
}

static void fmt_attempt_durations(void *arg, const char *agent,
				  const struct metrics_counts *c)
{
	struct fmt *f = arg;
	uint64_t cum = 0;
	for (int i = 0; i < METRICS_ATTEMPT_BUCKETS; i++) {
		cum += c->dur_bucket[i];
		size_t s = series(f->out, f->v,
				  "runner_attempt_duration_seconds_bucket");
		agent_label(f->out, agent);
		sb_addf(f->out, ",le=\"%g\"", attempt_le[i]);
		counter_end(f->out, s, f->base, (double)cum, false);
	}
	size_t s = series(f->out, f->v, "runner_attempt_duration_seconds_bucket");
	agent_label(f->out, agent);
	sb_adds(f->out, ",le=\"+Inf\"");
	counter_end(f->out, s, f->base, (double)c->dur_count, false);
	s = series(f->out, f->v, "runner_attempt_duration_seconds_sum");
	agent_label(f->out, agent);
	counter_end(f->out, s, f->base, c->dur_sum, true);
	s = series(f->out, f->v, "runner_attempt_duration_seconds_count");
	agent_label(f->out, agent);
	counter_end(f->out, s, f->base, (double)c->dur_count, false);
}

void metrics_format(const struct metrics *m, const struct metrics_view *v,
		    const struct metrics_base *base, struct sb *out)
{
	struct fmt f = { out, v, base };

	head(out, "runner_build_info", "gauge",
	     "The runner's version (the value is always 1).");
	series(out, v, "runner_build_info");
	sb_addf(out, ",version=\"%s\"", VERSION);
	gauge_end(out, 1);

	head(out, "runner_items", "gauge",
	     "Items of the batches the writing process has open, by state.");
	for (int s = 0; s < ST_COUNT; s++) {
		if (s == ST_STARTING)
			continue; /* counted as pending, as in batch.json */
		size_t n = v->items[s];
		if (s == ST_PENDING)
			n += v->items[ST_STARTING];
		series(out, v, "runner_items");
		sb_addf(out, ",state=\"%s\"",
			s == ST_RETRY_WAIT ? "retry_wait" : state_name(s));
		gauge_end(out, (double)n);
	}
	head(out, "runner_batches_open", "gauge",
	     "Batches the writing process has open.");
	series(out, v, "runner_batches_open");
	gauge_end(out, (double)v->open_batches);

	head(out, "runner_running_children", "gauge",
	     "Children running now per agent, across every runner process "
	     "of the home.");
	for (size_t i = 0; i < v->nagents; i++) {
		series(out, v, "runner_running_children");
		agent_label(out, v->agents[i].name);
		gauge_end(out, v->agents[i].running);
	}
	head(out, "runner_agent_max_concurrent", "gauge",
	     "Configured max_concurrent per agent.");
	for (size_t i = 0; i < v->nagents; i++) {
		series(out, v, "runner_agent_max_concurrent");
		agent_label(out, v->agents[i].name);
		gauge_end(out, v->agents[i].max_concurrent);
	}
	head(out, "runner_agent_queued_items", "gauge",
	     "Open items waiting for a slot per agent (pending, retry_wait, "
	     "paused).");
	for (size_t i = 0; i < v->nagents; i++) {
		series(out, v, "runner_agent_queued_items");
		agent_label(out, v->agents[i].name);
		gauge_end(out, (double)v->agents[i].queued);
	}

	head(out, "runner_symbol_circuits", "gauge",
	     "Symbol circuit breakers by state.");
	for (int s = CIRCUIT_CLOSED; s <= CIRCUIT_HALF_OPEN; s++) {
		series(out, v, "runner_symbol_circuits");
		sb_addf(out, ",state=\"%s\"", circuit_name(s));
		gauge_end(out, (double)v->symbol_circuits[s]);
	}
	head(out, "runner_failure_groups", "gauge",
	     "Failure groups known to the home, by status (an open group is "
	     "an open source circuit).");
	for (int s = GROUP_OPEN; s <= GROUP_RESOLVED; s++) {
		series(out, v, "runner_failure_groups");
		sb_addf(out, ",status=\"%s\"", group_status_name(s));
		gauge_end(out, (double)v->groups[s]);
	}

	head(out, "runner_attempts_total", "counter",
	     "Finished attempts, by agent, outcome and error category.");
	each_agent(m, v, fmt_attempts, &f);
	head(out, "runner_items_finished_total", "counter",
	     "Items made final, by agent and final state.");
	each_agent(m, v, fmt_finished, &f);
	head(out, "runner_attempt_duration_seconds", "histogram",
	     "Wall time of finished attempts, by agent.");
	each_agent(m, v, fmt_attempt_durations, &f);

	head(out, "runner_batches_finished_total", "counter",
	     "Batches that reached a final state (counted at their first "
	     "end).");
	for (int s = BS_COMPLETED; s <= BS_CANCELLED; s++) {
		size_t st = series(out, v, "runner_batches_finished_total");
		sb_addf(out, ",status=\"%s\"", batch_status_name(s));
		counter_end(out, st, base, (double)m->batches[s], false);
	}
	head(out, "runner_batch_duration_seconds", "histogram",
	     "Wall time of batches that ended.");
	uint64_t cum = 0;
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += m->batch_bucket[i];
		size_t st = series(out, v, "runner_batch_duration_seconds_bucket");
		sb_addf(out, ",le=\"%g\"", batch_le[i]);
		counter_end(out, st, base, (double)cum, false);
	}
	size_t st = series(out, v, "runner_batch_duration_seconds_bucket");
	sb_adds(out, ",le=\"+Inf\"");
	counter_end(out, st, base, (double)m->batch_count, false);
	st = series(out, v, "runner_batch_duration_seconds_sum");
	counter_end(out, st, base, m->batch_sum, true);
	st = series(out, v, "runner_batch_duration_seconds_count");
	counter_end(out, st, base, (double)m->batch_count, false);

	head(out, "runner_start_time_seconds", "gauge",
	     "When the writing process started (Unix time), and whether it "
	     "is the daemon or a run.");
	series(out, v, "runner_start_time_seconds");
	sb_addf(out, ",mode=\"%s\"", m->daemon ? "daemon" : "run");
	sb_addf(out, "} %.3f\n", (double)m->started_ms / 1000.0);
	head(out, "runner_metrics_time_seconds", "gauge",
	     "When this file was written (Unix time).");
	series(out, v, "runner_metrics_time_seconds");
	sb_addf(out, "} %.3f\n", (double)v->now_ms / 1000.0);
}

/* ---- writing ---- */

int metrics_write(const struct home *h, const char *path, struct metrics *m,
		  const struct metrics_view *v)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (!*name || strlen(path) >= sizeof(dir)) {
		errno = EINVAL;
		return -1;
	}
	if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		snprintf(dir, sizeof(dir), ".");
	int dfd = openat(h->fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	/* One writer at a time: the counters are read, added to, written.
	 * A bounded wait, as for every lock of the home: a writer stopped
	 * while it holds it stops no other runner. */
	int lock = openat(h->state, "metrics.lock",
			  O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (lock < 0 || lock_within(lock, 10000) < 0) {
		int saved = errno;
		if (lock >= 0)
			close(lock);
		close(dfd);
		errno = saved;
		return -1;
	}
	/* Under the lock no writer is between its temp file and its rename:
	 * a temp file left is a crashed writer's. */
	remove_stale_temps(dfd, name, 0);
	struct sb old = SB_INIT, text = SB_INIT;
	struct metrics_base *base = NULL;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		if (read_fd_bounded(fd, METRICS_FILE_MAX, &old) == 0)
			base = metrics_base_parse(old.buf ? old.buf : "",
						  old.len);
		close(fd);
	}
	metrics_format(m, v, base, &text);
	int rc = home_replace(dfd, name, text.buf, text.len);
	int saved = errno;
	if (rc == 0) {
		m->writes++;
		clear_counts(m);
	}
	metrics_base_free(base);
	sb_release(&old);
	sb_release(&text);
	close(lock); /* and its lock */
	close(dfd);
	errno = saved;
	return rc;
}
