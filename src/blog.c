#include "blog.h"
#include "results.h"
#include "exec.h"
#include "home.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void stamp(struct sb *out, int64_t ms)
{
	char t[TIME_BUF];
	sb_addf(out, "%s ", fmt_time(ms, t));
}

static void final_summary(struct sb *out, const struct batch *b)
{
	char dur[32];
	size_t by_cat[CAT_COUNT] = { 0 };
	long long matches = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (it->matches > 0)
			matches += it->matches;
		if (it->state == ST_FAILED && it->nattempts)
			by_cat[it->log[it->nattempts - 1].category]++;
	}
	size_t done = b->count[ST_SUCCEEDED] + b->count[ST_FAILED] +
		      b->count[ST_CANCELLED];
	sb_addf(out, "batch %s: %zu %s processed (%zu succeeded, %zu failed, "
		     "%zu cancelled), %zu %s",
		batch_status_name(b->final_status), done,
		plural(done, "item", "items"), b->count[ST_SUCCEEDED],
		b->count[ST_FAILED], b->count[ST_CANCELLED], b->count[ST_FAILED],
		plural(b->count[ST_FAILED], "error", "errors"));
	bool first = true;
	for (int c = 1; c < CAT_COUNT; c++) {
		if (!by_cat[c])
			continue;
		sb_addf(out, "%s%s %zu", first ? " (" : ", ", category_name(c),
			by_cat[c]);
		first = false;
	}
	if (!first)
		sb_addc(out, ')');
	sb_addf(out, ", %lld %s", matches, plural(matches, "match", "matches"));
	results_primary_text(b, out);
	sb_addf(out, ", total time %s\n",
		fmt_duration(b->started_ms ? b->completed_ms - b->started_ms : 0,
			     dur, sizeof(dur)));
}

static void add_warning(struct sb *out, const struct rec *r)
{
	if (!r->warning)
		return;
	sb_adds(out, "; warning: ");
	sb_add_escaped(out, r->warning, 512);
}

void blog_line(struct sb *out, const struct batch *b, const struct rec *r,
	       int64_t now)
{
	const struct item *it;
	const struct attempt *a;
	char dur[32], t[TIME_BUF], sig[32];
	switch (r->type) {
	case R_CLAIMED:
		stamp(out, b->c.created_ms);
		sb_addf(out, "claimed %s as batch %s: %u %s, agent %s",
			b->c.job_file ? b->c.job_file : "job", b->c.id,
			b->c.total_items,
			plural(b->c.total_items, "symbol", "symbols"),
			b->c.agent);
		if (b->c.source)
			sb_addf(out, ", source %s", b->c.source);
		sb_addf(out, ", priority %d\n", b->c.priority);
		break;
	case R_SPAWNED:
		if (b->attempts_total == 1) {
			stamp(out, r->time);
			sb_addf(out, "started: %zu %s\n", b->nitems,
				plural(b->nitems, "item", "items"));
		}
		break;
	case R_FINISHED:
		it = &b->items[r->item];
		a = &it->log[r->attempt - 1];
		stamp(out, r->time);
		fmt_duration(a->started_ms ? a->completed_ms - a->started_ms : 0,
			     dur, sizeof(dur));
		switch (r->outcome) {
		case OUT_SUCCEEDED:
			sb_addf(out, "%s succeeded in %s (attempt %u", it->symbol,
				dur, r->attempt);
			if (r->matches >= 0)
				sb_addf(out, ", %lld %s", (long long)r->matches,
					plural((unsigned long long)r->matches,
					       "match", "matches"));
			sb_adds(out, ")");
			add_warning(out, r);
			sb_addc(out, '\n');
			return;
		case OUT_INTERRUPTED:
			if (r->next_state == ST_FAILED) {
				sb_addf(out, "%s failed (attempt %u interrupted"
					     "): %s: %s\n",
					it->symbol, r->attempt,
					category_name(r->category),
					r->error_message ? r->error_message
							 : "");
				return;
			}
			sb_addf(out, "%s attempt %u interrupted (its runner "
				     "stopped); it will run again\n",
				it->symbol, r->attempt);
			return;
		case OUT_CANCELLED:
			sb_addf(out, "%s cancelled (attempt %u)\n", it->symbol,
				r->attempt);
			return;
		}
		sb_addf(out, "%s failed in %s (attempt %u", it->symbol, dur,
			r->attempt);
		if (r->exit_code >= 0)
			sb_addf(out, ", exit %d", r->exit_code);
		else if (r->signal)
			sb_addf(out, ", %s",
				exec_signame(r->signal, sig, sizeof(sig)));
		sb_addf(out, "): %s: ", category_name(r->category));
		sb_add_escaped(out, r->error_message ? r->error_message : "",
			       512);
		add_warning(out, r);
		if (r->next_state == ST_RETRY_WAIT && it->failures + 1u ==
							      r->attempt + 1u)
			sb_addf(out, "; retry (attempt %u of %d) at %s",
				r->attempt + 1, b->c.max_attempts,
				fmt_time(r->next_retry_at, t));
		else if (r->next_state == ST_RETRY_WAIT)
			/* after interrupted attempts, or a retry-failed: they
			 * do not count against max_attempts */
			sb_addf(out, "; retry (attempt %u in all, %u of %d "
				     "that count) at %s",
				r->attempt + 1, it->failures + 1u,
				b->c.max_attempts, fmt_time(r->next_retry_at, t));
		else if (r->next_state == ST_PAUSED)
			sb_addf(out, "; paused with failure group %s",
				r->group ? r->group : "?");
		else if (r->group)
			sb_addf(out, "; member of failure group %s", r->group);
		sb_addc(out, '\n');
		break;
	case R_RESUME:
		if (r->text && !r->group && r->n == 1 && !r->whole) {
			/* a half-open trial: one member tries the source */
			stamp(out, r->time);
			sb_adds(out, "trial: ");
			sb_add_escaped(out, r->text, 256);
			sb_addf(out, " with %s\n",
				rec_first_index(r) < b->nitems
					? b->items[rec_first_index(r)].symbol
					: "?");
			break;
		}
		/* fall through */
	case R_PAUSE:
		stamp(out, r->time);
		sb_addf(out, "%s %s", r->type == R_PAUSE ? "paused" : "resumed",
			r->whole ? "every open item" : "");
		if (!r->whole)
			sb_addf(out, "%u %s", r->n,
				plural(r->n, "item", "items"));
		if (r->group)
			sb_addf(out, " (failure group %s)", r->group);
		else if (r->type == R_PAUSE)
			sb_adds(out, " (by a user)");
		if (r->text) {
			sb_adds(out, ": ");
			sb_add_escaped(out, r->text, 256);
		}
		sb_addc(out, '\n');
		break;
	case R_CANCEL:
		stamp(out, r->time);
		if (r->whole)
			sb_addf(out, "cancelled: the whole batch (%s)\n",
				r->reason == CANCEL_BATCH_TIMEOUT
					? "batch_timeout reached"
					: "by a user");
		else
			sb_addf(out, "cancelled: %u %s by a user\n", r->n,
				plural(r->n, "item", "items"));
		break;
	case R_REQUEUE:
		stamp(out, r->time);
		sb_addf(out, "retry-failed: %u failed %s queued again\n", r->n,
			plural(r->n, "item", "items"));
		break;
	case R_FINAL:
		stamp(out, r->time);
		final_summary(out, b);
		break;
	case R_ADOPTED:
		stamp(out, r->time ? r->time : now);
		if (r->reason == ADOPT_PAUSED)
			sb_addf(out, "taken up by runner pid %d (it waited on "
				     "paused items)\n",
				r->pid);
		else
			sb_addf(out, "adopted by runner pid %d (its previous "
				     "runner is gone)\n",
				r->pid);
		break;
	default:
		break;
	}
}

struct rebuild {
	struct batch b;
	struct sb text;
};

static int rebuild_fn(void *arg, const void *payload, size_t len)
{
	struct rebuild *rb = arg;
	struct rec r;
	if (rec_decode(payload, len, &r) < 0 || batch_apply(&rb->b, &r) < 0)
		return -1;
	blog_line(&rb->text, &rb->b, &r, 0);
	return 0;
}

int blog_rebuild(int logs_fd, int batch_dirfd, const char *id)
{
	struct rebuild rb;
	struct journal j;
	char name[128];
	batch_init(&rb.b);
	rb.text = (struct sb)SB_INIT;
	int rc = journal_open(&j, batch_dirfd, "journal", false, rebuild_fn,
			      &rb);
	if (rc == 0) {
		journal_close(&j);
		snprintf(name, sizeof(name), "%s.log", id);
		rc = home_replace(logs_fd, name, rb.text.buf ? rb.text.buf : "",
				  rb.text.len);
	}
	batch_release(&rb.b);
	sb_release(&rb.text);
	return rc;
}
