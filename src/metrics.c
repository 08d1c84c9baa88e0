#include "metrics.h"
#include "breaker.h"
#include "home.h"
#include "shared.h"

#include <string.h>

static const double bucket_le[METRICS_BUCKETS] = {
	1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600,
};

void metrics_init(struct metrics *m, int64_t now_ms)
{
	memset(m, 0, sizeof(*m));
	m->started_ms = now_ms;
}

void metrics_attempt(struct metrics *m, int outcome, int category)
{
	if (outcome < 0 || outcome >= METRICS_OUTCOMES)
		return;
	if (category < 0 || category >= CAT_COUNT)
		category = CAT_NONE;
	m->attempts[outcome][category]++;
}

void metrics_batch_final(struct metrics *m, int status, double seconds)
{
	if (status < 0 || status > BS_CANCELLED)
		return;
	m->batches[status]++;
	if (seconds < 0)
		return;
	for (int i = 0; i < METRICS_BUCKETS; i++)
		if (seconds <= bucket_le[i])
			m->dur_bucket[i]++;
	m->dur_sum += seconds;
	m->dur_count++;
}

/* Label values: backslash, double quote and newline escaped. */
static void label(struct sb *out, const char *s)
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

/* One sample of a per-agent metric: NAME{agent="A"} VALUE. */
static void agent_sample(struct sb *out, const char *metric,
			 const char *agent, long long value)
{
	sb_adds(out, metric);
	sb_adds(out, "{agent=");
	label(out, agent);
	sb_addf(out, "} %lld\n", value);
}

void metrics_format(const struct metrics *m, const struct metrics_view *v,
		    struct sb *out)
{
	head(out, "runner_items", "gauge",
	     "Items of the batches the daemon has open, by state.");
	for (int s = 0; s < ST_COUNT; s++) {
		if (s == ST_STARTING)
			continue; /* counted as pending, as in batch.json */
		size_t n = v->items[s];
		if (s == ST_PENDING)
			n += v->items[ST_STARTING];
		sb_addf(out, "runner_items{state=\"%s\"} %zu\n",
			s == ST_RETRY_WAIT ? "retry_wait" : state_name(s), n);
	}
	head(out, "runner_batches_open", "gauge",
	     "Batches the daemon has open.");
	sb_addf(out, "runner_batches_open %zu\n", v->open_batches);

	head(out, "runner_attempts_total", "counter",
	     "Finished attempts since the daemon started, by outcome and "
	     "error category.");
	for (int o = OUT_SUCCEEDED; o < METRICS_OUTCOMES; o++)
		for (int c = 0; c < CAT_COUNT; c++) {
			if (o == OUT_FAILED ? c == CAT_NONE : c != CAT_NONE)
				continue;
			sb_addf(out,
				"runner_attempts_total{outcome=\"%s\","
				"category=\"%s\"} %llu\n",
				outcome_name(o),
				c == CAT_NONE ? "none" : category_name(c),
				(unsigned long long)m->attempts[o][c]);
		}

	head(out, "runner_running_children", "gauge",
	     "Children running now per agent, across every runner process "
	     "of the home.");
	for (size_t i = 0; i < v->nagents; i++)
		agent_sample(out, "runner_running_children", v->agents[i].name,
			     (long long)v->agents[i].running);
	head(out, "runner_agent_max_concurrent", "gauge",
	     "Configured max_concurrent per agent.");
	for (size_t i = 0; i < v->nagents; i++)
		agent_sample(out, "runner_agent_max_concurrent", v->agents[i].name,
			     (long long)v->agents[i].max_concurrent);
	head(out, "runner_agent_queued_items", "gauge",
	     "Open items waiting for a slot per agent (pending, retry_wait, "
	     "paused).");
	for (size_t i = 0; i < v->nagents; i++)
		agent_sample(out, "runner_agent_queued_items", v->agents[i].name,
			     (long long)v->agents[i].queued);

	head(out, "runner_circuits", "gauge",
	     "Circuit breakers by kind and state (source circuits: failure "
	     "groups not yet resumed).");
	for (int s = CIRCUIT_CLOSED; s <= CIRCUIT_HALF_OPEN; s++)
		sb_addf(out, "runner_circuits{kind=\"symbol\",state=\"%s\"} %zu\n",
			circuit_name(s), v->symbol_circuits[s]);
	sb_addf(out, "runner_circuits{kind=\"source\",state=\"open\"} %zu\n",
		v->source_circuits_open);
	head(out, "runner_circuits_open", "gauge",
	     "Circuits open or half-open, symbol and source together.");
	sb_addf(out, "runner_circuits_open %zu\n",
		v->symbol_circuits[CIRCUIT_OPEN] +
			v->symbol_circuits[CIRCUIT_HALF_OPEN] +
			v->source_circuits_open);
	head(out, "runner_failure_groups", "gauge",
	     "Failure groups known to the home, by status.");
	for (int s = GROUP_OPEN; s <= GROUP_RESOLVED; s++)
		sb_addf(out, "runner_failure_groups{status=\"%s\"} %zu\n",
			group_status_name(s), v->groups[s]);

	head(out, "runner_batches_finished_total", "counter",
	     "Batches that reached a final state since the daemon started.");
	for (int s = BS_COMPLETED; s <= BS_CANCELLED; s++)
		sb_addf(out, "runner_batches_finished_total{status=\"%s\"} %llu\n",
			batch_status_name(s), (unsigned long long)m->batches[s]);
	head(out, "runner_batch_duration_seconds", "histogram",
	     "Wall time of batches that ended since the daemon started.");
	for (int i = 0; i < METRICS_BUCKETS; i++)
		sb_addf(out,
			"runner_batch_duration_seconds_bucket{le=\"%g\"} %llu\n",
			bucket_le[i], (unsigned long long)m->dur_bucket[i]);
	sb_addf(out, "runner_batch_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		(unsigned long long)m->dur_count);
	sb_addf(out, "runner_batch_duration_seconds_sum %.3f\n", m->dur_sum);
	sb_addf(out, "runner_batch_duration_seconds_count %llu\n",
		(unsigned long long)m->dur_count);

	head(out, "runner_daemon_start_time_seconds", "gauge",
	     "When the daemon started (Unix time).");
	sb_addf(out, "runner_daemon_start_time_seconds %.3f\n",
		(double)m->started_ms / 1000.0);
	head(out, "runner_metrics_time_seconds", "gauge",
	     "When this file was written (Unix time).");
	sb_addf(out, "runner_metrics_time_seconds %.3f\n",
		(double)v->now_ms / 1000.0);
}

int metrics_write(int logs_fd, struct metrics *m, const struct metrics_view *v)
{
	struct sb text = SB_INIT;
	metrics_format(m, v, &text);
	int rc = home_replace(logs_fd, "runner.prom", text.buf, text.len);
	sb_release(&text);
	if (rc == 0)
		m->writes++;
	return rc;
}
