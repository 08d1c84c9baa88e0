#include "runs.h"
#include "attempt.h"
#include "circuits.h"
#include "sched.h"
#include "classify.h"
#include "correlate.h"
#include "remote.h"
#include "runlog.h"
#include "slots.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The result file of an attempt (tmp/SYMBOL.N.json): read, kept in the
 * journal when it fits RESULT_KEEP_MAX, and removed. */
static void read_result(struct ebatch *eb, const char *symbol, uint32_t attempt,
			struct result *res, struct result_doc *doc)
{
	char path[128];
	snprintf(path, sizeof(path), "%s.%u.json", symbol, attempt);
	if (eb->tmp_fd < 0) {
		result_parse(NULL, 0, res);
		return;
	}
	result_load(eb->tmp_fd, path, res, doc);
	if (res->present || res->unreadable[0])
		unlinkat(eb->tmp_fd, path, 0);
}

/* The last bytes of an attempt's stderr, from its lane. */
static char *read_stderr_tail(const struct run *run)
{
	const struct capture *c = &run->cap[STREAM_ERR];
	if (!c->len || c->fd < 0)
		return NULL;
	uint64_t n = c->len > STDERR_TAIL ? STDERR_TAIL : c->len;
	char *buf = xmalloc(STDERR_TAIL + 1);
	ssize_t got = pread(c->fd, buf, (size_t)n,
			    (off_t)(c->off + c->len - n));
	got = got < 0 ? 0 : got;
	buf[got] = '\0';
	/* NUL bytes in the output must not cut what we look at. */
	for (ssize_t i = 0; i < got; i++)
		if (!buf[i])
			buf[i] = ' ';
	return buf;
}

void runs_pump(struct engine *e, pid_t pid)
{
	for (size_t i = 0; i < e->nruns; i++) {
		struct run *run = &e->runs[i];
		if (run->pid != pid)
			continue;
		uint64_t limit = run->eb->agent->max_output;
		for (int s = 0; s < 2; s++) {
			struct capture *c = &run->cap[s];
			if (c->rd >= 0 && capture_pump(c, &run->budget, limit,
						       16) == 1) {
				epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->rd, NULL);
				capture_close(c);
			}
		}
		return;
	}
}

void runs_close_output(struct engine *e, struct run *run)
{
	uint64_t limit = run->eb->agent->max_output;
	for (int s = 0; s < 2; s++) {
		struct capture *c = &run->cap[s];
		if (c->rd < 0)
			continue;
		/* What is in the pipe now, and no more: a grandchild still
		 * printing must not keep us here. */
		capture_pump(c, &run->budget, limit, 64);
		if (e->epfd >= 0)
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->rd, NULL);
		capture_close(c);
	}
}

/* The record of an attempt's end, but for its decision: what the child
 * did, as classification and the result JSON say, and what it used. */
static void describe(struct engine *e, struct ebatch *eb, struct item *it,
		     uint32_t attempt, int wait_status, const struct rusage *ru,
		     uint8_t why, int exec_errno, int64_t timeout_ms,
		     const struct run *run, struct result *res,
		     struct result_doc *doc, struct verdict *v, struct rec *r)
{
	char *tail = NULL;
	(void)e;
	read_result(eb, it->symbol, attempt, res, doc);
	/* Through a launcher: the agent's own end and figures, as the
	 * wrapper on the node wrote them (remote.h), not the launcher's. */
	struct remote_status rs = { 0 };
	const char *exec_path = eb->agent->exec_path;
	if (eb->agent->wrapper) {
		char task[128];
		snprintf(task, sizeof(task), "%s.%u.task", it->symbol, attempt);
		remote_status_load(eb->tmp_fd, task, true, &rs);
		ru = rs.ended ? &rs.ru : NULL;
		if (rs.ended && !exec_errno) {
			wait_status = rs.wait_status;
			exec_errno = rs.exec_errno;
			if (exec_errno)
				exec_path = eb->agent->command[0];
		}
	}
	bool ok_exit = WIFEXITED(wait_status) && !WEXITSTATUS(wait_status);
	if ((!ok_exit || why == KILL_TIMEOUT) && !exec_errno && run)
		tail = read_stderr_tail(run);
	int said = CAT_NONE;
	char said_line[MESSAGE_MAX] = "";
	if (tail && eb->agent->wrapper)
		said = remote_stderr_strip(tail, said_line, sizeof(said_line));
	struct outcome_in in = {
		.wait_status = wait_status,
		.timed_out = why == KILL_TIMEOUT,
		.runner_killed = why != KILL_NONE,
		.timeout_ms = timeout_ms,
		.cpu_limit_ms = eb->agent->cpu_limit_ms,
		.cpu_used_ms = ru ? (ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
				    (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000
			       : 0,
		.exec_errno = exec_errno,
		.exec_path = exec_path,
		.res = res,
		.stderr_tail = tail,
		.rules = &eb->agent->classify,
	};
	classify(&in, v);
	free(tail);
	if (!v->success && why == KILL_NONE && said_line[0] &&
	    (said != CAT_NONE || !rs.started)) {
		/* Slurm ended the step (its time or memory limit), or the
		 * launcher failed before the agent ran: its line says why. */
		v->category = said != CAT_NONE ? said : CAT_ENGINE;
		snprintf(v->message, sizeof(v->message), "%s", said_line);
	}
	if (eb->agent->wrapper && !rs.ended && why == KILL_NONE &&
	    (rs.started || v->success) && !v->warning[0])
		/* Killed on the node before its end, or a home the node does
		 * not share: say whose figures these are. */
		snprintf(v->warning, sizeof(v->warning),
			 "no end from the node (tmp/%s.%u.task%s): exit status "
			 "and figures are the launcher's", it->symbol, attempt,
			 rs.started ? " has its start only" : " missing");
	r->exit_code = v->exit_code;
	r->signal = v->signal;
	r->matches = res->matches;
	r->progress = res->progress;
	r->source = res->source[0] ? res->source : NULL;
	r->warning = v->warning[0] ? v->warning : NULL;
	if (doc->text)
		r->result = doc->text;
	if (run) {
		const struct capture *o = &run->cap[STREAM_OUT],
				     *x = &run->cap[STREAM_ERR];
		r->out_flags = OUTF_ENDED | (o->cut ? OUTF_OUT_CUT : 0) |
			       (x->cut ? OUTF_ERR_CUT : 0) |
			       (o->lost || x->lost ? OUTF_LOST : 0);
		r->out_len = o->len;
		r->err_len = x->len;
	} else if (it->log[attempt - 1].session) {
		/* Given a lane but never a child (clone failed): it printed
		 * nothing, and its range must not run on into the next. */
		r->out_flags = OUTF_ENDED;
	}
	if (ru) {
		r->cpu_user_ms = (uint32_t)(ru->ru_utime.tv_sec * 1000 +
					    ru->ru_utime.tv_usec / 1000);
		r->cpu_system_ms = (uint32_t)(ru->ru_stime.tv_sec * 1000 +
					      ru->ru_stime.tv_usec / 1000);
		r->max_rss_kb = (uint32_t)ru->ru_maxrss;
	}
}

/* The attempt's warnings: classification's, then what became of its
 * output and result (cut, lost, not kept). */
static void output_warning(struct ebatch *eb, const struct run *run,
			   const struct result_doc *doc, const char *first,
			   char *buf, size_t n)
{
	struct sb w = SB_INIT;
	if (first)
		sb_adds(&w, first);
	if (run) {
		const struct capture *o = &run->cap[STREAM_OUT],
				     *x = &run->cap[STREAM_ERR];
		uint64_t dropped = o->dropped + x->dropped;
		if (o->cut || x->cut)
			sb_addf(&w, "%soutput past max_output (%llu bytes): "
				"%llu bytes dropped", w.len ? "; " : "",
				(unsigned long long)eb->agent->max_output,
				(unsigned long long)dropped);
		else if (o->lost || x->lost)
			sb_addf(&w, "%soutput not written (%s): %llu bytes lost",
				w.len ? "; " : "",
				strerror(o->lost ? o->lost_errno : x->lost_errno),
				(unsigned long long)dropped);
	}
	if (doc->full > doc->max)
		sb_addf(&w, "%sresult JSON of %zu bytes not kept (over %zu)",
			w.len ? "; " : "", doc->full, doc->max);
	snprintf(buf, n, "%s", w.buf ? w.buf : "");
	sb_release(&w);
}

/*
 * An attempt ended: describe it, decide what follows (attempt.h), ask the
 * home whether its failure is a group's, record it, and tell the rest of
 * the home and the people (circ_after_attempt).  start_error: it could
 * not start, for that reason.
 */
static void finish(struct engine *e, struct ebatch *eb, uint32_t idx,
		   uint32_t attempt, int wait_status, const struct rusage *ru,
		   uint8_t why, int exec_errno, int64_t timeout_ms,
		   int64_t end_ms, const struct run *run,
		   const char *start_error)
{
	struct item *it = &eb->b.items[idx];
	const struct batch_conf *c = &eb->b.c;
	struct result res;
	struct result_doc doc = { .max = RESULT_KEEP_MAX };
	struct verdict v;
	char warning[WARNING_MAX + 256];
	struct rec r = { .type = R_FINISHED, .item = idx, .attempt = attempt,
			 .time = end_ms ? end_ms : now_ms(), .matches = -1,
			 .progress = -1 };
	describe(e, eb, it, attempt, wait_status, ru, why, exec_errno,
		 timeout_ms, run, &res, &doc, &v, &r);
	if (start_error) {
		/* Not the agent's doing, and no retry would mend it. */
		v.success = false;
		v.category = CAT_ENGINE;
		v.warning[0] = '\0';
		snprintf(v.message, sizeof(v.message), "cannot start: %s",
			 start_error);
		r.exit_code = -1;
		r.signal = 0;
		r.warning = NULL;
		res.retryable = 0;
	}
	output_warning(eb, run, &doc, r.warning, warning, sizeof(warning));
	if (warning[0])
		r.warning = warning;
	struct failure f = {
		.agent = c->agent,
		.source = r.source ? r.source : c->source,
		.category = category_name(v.category),
		.type = res.type[0] ? res.type : NULL,
		.message = v.message,
		.symbol = it->symbol,
		.batch = eb->id,
	};
	struct attempt_in in = {
		.end = why == KILL_CANCEL || it->cancel_requested ? ATT_CANCELLED
		       : why == KILL_SHUTDOWN			  ? ATT_STOPPED
								  : ATT_ENDED,
		.ended_runner = run && run->stopped_runner,
		.interruptions = it->interruptions,
		.success = v.success,
		.category = v.category,
		.result_retryable = res.retryable,
		.retry_after_ms = res.retry_after_ms,
		.source_named = res.source[0] != '\0',
		.cause_is_source = !v.success && correlate_cause(&f) != CAUSE_GENERIC,
		.exec_errno = exec_errno,
		.retry_on = c->retry_on,
		.failures = it->failures,
		.max_attempts = c->max_attempts,
		.delays_ms = c->delays_ms,
		.ndelays = c->ndelays,
		.jitter_permille = c->jitter_permille,
		/* drawn only for a failure: a success has no retry to spread */
		.jitter_draw = v.success ? 0
			       : (double)(random_u64() >> 11) / 9007199254740992.0,
		.end_ms = r.time,
	};
	struct attempt_decision d;
	attempt_assess(&in, &d);
	/* One cause behind many failures?  The home's shared state says. */
	struct sh_failure_result fr = { 0 };
	char group_id[GROUP_ID_MAX] = "";
	if (d.outcome == OUT_FAILED && e->sh_ok &&
	    shared_failure(&e->sh, &f, d.correlate, d.final_alone, r.time,
			   &fr) == 0 &&
	    fr.group && fr.group->status != GROUP_RESOLVED)
		snprintf(group_id, sizeof(group_id), "%s", fr.group->id);
	attempt_decide(&in, group_id[0] != '\0', &d);
	r.outcome = d.outcome;
	r.next_state = d.next_state;
	r.counts_failure = d.counts_failure;
	r.next_retry_at = d.next_retry_at;
	r.group = group_id[0] ? group_id : NULL;
	if (d.outcome == OUT_FAILED) {
		r.category = (uint8_t)v.category;
		r.error_type = f.type;
		r.error_message = v.message;
	} else if (d.outcome == OUT_CANCELLED) {
		r.error_message = "cancelled";
	} else if (d.outcome == OUT_INTERRUPTED) {
		r.category = d.counts_interruption ? CAT_ENGINE : CAT_NONE;
		r.error_message =
			d.next_state == ST_FAILED ? ATTEMPT_INTERRUPTED_FAIL
			: d.counts_interruption
				? "interrupted: the runner stopped at a signal "
				  "from this attempt"
				: "interrupted: the runner stopped";
	}
	circ_before_record(e, eb, idx, &r);
	engine_record(eb, &r);
	const struct attempt *ma = &it->log[attempt - 1];
	metrics_attempt(&e->metrics, eb->b.c.agent, r.outcome,
			r.outcome == OUT_FAILED ? r.category : CAT_NONE,
			ma->started_ms && r.time >= ma->started_ms
				? (double)(r.time - ma->started_ms) / 1000.0
				: -1);
	if (r.outcome != OUT_INTERRUPTED || ru) {
		const struct attempt *a = &it->log[attempt - 1];
		symstats_end(&e->stats, it->symbol, r.time,
			     a->started_ms ? r.time - a->started_ms : 0,
			     r.outcome == OUT_SUCCEEDED);
	}
	if (r.next_state == ST_RETRY_WAIT)
		queue_heap_push(&eb->retry, r.next_retry_at, idx);
	else if (r.next_state == ST_PENDING)
		queue_push(&eb->requeue, idx);
	else if (r.next_state != ST_PAUSED)
		queue_push(&eb->unreported, idx);
	circ_after_attempt(e, eb, idx, &r, &fr, v.message);
	shared_failure_done(&fr);
	free(doc.text);
}

void runs_finish(struct engine *e, struct ebatch *eb, uint32_t idx,
		 uint32_t attempt, int wait_status,
		 const struct rusage *ru, uint8_t why, int exec_errno,
		 int64_t timeout_ms, int64_t end_ms, const struct run *run)
{
	finish(e, eb, idx, attempt, wait_status, ru, why, exec_errno,
	       timeout_ms, end_ms, run, NULL);
}

void runs_start_failed(struct engine *e, struct ebatch *eb, uint32_t idx,
		       const char *why)
{
	uint32_t attempt = eb->b.items[idx].nattempts;
	struct rec r = { .type = R_SPAWNED, .item = idx, .attempt = attempt,
			 .time = now_ms() };
	engine_record(eb, &r);
	finish(e, eb, idx, attempt, W_EXITCODE(127, 0), NULL, KILL_NONE, 0, 0,
	       0, NULL, why);
}

static struct run *runs_find(struct engine *e, pid_t pid)
{
	for (size_t i = 0; i < e->nruns; i++)
		if (e->runs[i].pid == pid)
			return &e->runs[i];
	return NULL;
}

/* The next child that ended: 1 (pid, status, ru), 0 when none has. */
static int reap_one(struct engine *e, pid_t *pid, int *status,
		    struct rusage *ru)
{
	if (e->o.ops)
		return e->o.ops->reap(e->o.ops->ctx, pid, status, ru);
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0)
			return 0;
		*pid = si.si_pid;
		/* The leader is a zombie now, so its group id cannot have been
		 * reused: whatever is left in the group goes with it (an
		 * item's, or a notify hook's). */
		if (runs_find(e, *pid) || alerts_owns(e->alerts, *pid))
			exec_kill_group(*pid, SIGKILL);
		*status = 0;
		if (wait4(*pid, status, 0, ru) == *pid)
			return 1;
	}
}

/* Reap every exited child; their accounting waits for runs_finish_exited(),
 * so that free slots are refilled first. */
void runs_reap(struct engine *e)
{
	pid_t pid;
	int status;
	struct rusage ru;
	bool reaped = false;
	while (reap_one(e, &pid, &status, &ru) == 1) {
		struct run *run = runs_find(e, pid);
		reaped = true;
		if (!run && pid == e->retention_pid) {
			e->retention_pid = 0;
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				runlog_printf(e->o.runlog,
					      "retention: the run failed "
					      "(status %d); next in an hour",
					      status);
			continue;
		}
		if (!run) {
			/* a notify hook, a scancel, or an orphan reparented
			 * to us */
			alerts_reaped(e->alerts, pid);
			remote_reaped(pid);
			continue;
		}
		/* The item ended: its slot is free now, whatever escaped it
		 * with fd 3 (slots.h). */
		slot_release(run->slot_fd);
		run->slot_fd = -1;
		if (pid == e->isolated)
			e->isolated = 0;
		GROW(e->exited, e->capexited, e->nexited + 1);
		e->exited[e->nexited++] =
			(struct exited){ *run, status, ru, now_ms() };
		run->eb->running--;
		*run = e->runs[--e->nruns];
	}
	/* What the ended ones left outside their groups dies with them. */
	if (reaped)
		engine_sweep(e, false);
}

bool runs_exits_failed(const struct engine *e)
{
	for (size_t i = 0; i < e->nexited; i++)
		if (!WIFEXITED(e->exited[i].status) ||
		    WEXITSTATUS(e->exited[i].status))
			return true;
	return false;
}

void runs_finish_exited(struct engine *e)
{
	for (size_t i = 0; i < e->nexited; i++) {
		struct exited *x = &e->exited[i];
		int64_t t0 = mono_ns();
		runs_close_output(e, &x->run);
		runs_finish(e, x->run.eb, x->run.item, x->run.attempt,
			       x->status, &x->ru, x->run.why,
			       x->run.exec_errno, x->run.eb->b.c.timeout_ms,
			       x->at_ms, &x->run);
		const struct capture *c = x->run.cap;
		lanes_give(&x->run.eb->lanes, x->run.lane,
			   c[STREAM_OUT].off + c[STREAM_OUT].len,
			   c[STREAM_ERR].off + c[STREAM_ERR].len);
		if (e->trace) {
			GROW(e->overhead_ns, e->capoverhead, e->noverhead + 1);
			e->overhead_ns[e->noverhead++] =
				mono_ns() - t0 + x->run.prep_ns;
		}
	}
	e->nexited = 0;
}

/* Through a launcher, the signal goes to the step on its node (remote.h):
 * srun would answer SIGTERM with a SIGKILL of the task, and cannot pass
 * on a SIGKILL of its own.  1 when the step got it. */
static int signal_remote(const struct engine *e, const struct run *run,
			 int sig)
{
	if (!run->eb->agent || !run->eb->agent->wrapper)
		return 0;
	const char *symbol = run->eb->b.items[run->item].symbol;
	char task[128], job[512];
	snprintf(task, sizeof(task), "%s.%u.task", symbol, run->attempt);
	remote_job_name(job, sizeof(job), e->home_abs, run->eb->id, symbol,
			run->attempt);
	return remote_signal(run->eb->tmp_fd, task, job, sig) > 0;
}

void runs_signal(struct engine *e, struct run *run, uint8_t why)
{
	int64_t mono = mono_ns();
	if (run->kill_ns)
		return;
	run->why = why;
	if (!signal_remote(e, run, SIGTERM))
		engine_kill_group(e, run->pid, SIGTERM);
	run->kill_ns = deadline_ns(mono, e->c->kill_grace_ms);
	if (run->kill_ns == mono)
		run->kill_ns = mono + 1;
}


void runs_check_timers(struct engine *e)
{
	int64_t mono = mono_ns(), now = now_ms();
	for (size_t i = 0; i < e->nruns; i++) {
		struct run *run = &e->runs[i];
		if (run->deadline_ns && mono >= run->deadline_ns && !run->kill_ns)
			runs_signal(e, run, KILL_TIMEOUT);
		if (run->kill_ns && mono >= run->kill_ns && !run->killed) {
			signal_remote(e, run, SIGKILL);
			engine_kill_group(e, run->pid, SIGKILL);
			run->killed = true;
		}
	}
	for (size_t i = 0; i < e->nbatches; i++) {
		struct ebatch *eb = e->batches[i];
		if (eb->closed || !eb->deadline_ms || now < eb->deadline_ms ||
		    eb->b.final || !batch_open_items(&eb->b))
			continue;
		struct u32q now_cancelled = { 0 };
		for (size_t k = 0; k < eb->b.nitems; k++) {
			int st = eb->b.items[k].state;
			if (!state_final(st) && st != ST_RUNNING)
				queue_push(&now_cancelled, (uint32_t)k);
		}
		struct rec r = { .type = R_CANCEL, .time = now, .whole = 1,
				 .reason = CANCEL_BATCH_TIMEOUT };
		engine_record(eb, &r);
		eb->deadline_ms = 0;
		engine_withdraw(eb);
		for (size_t k = 0; k < e->nruns; k++)
			if (e->runs[k].eb == eb)
				runs_signal(e, &e->runs[k], KILL_CANCEL);
		while (now_cancelled.n) {
			uint32_t k = queue_pop(&now_cancelled);
			queue_push(&eb->unreported, k);
			circ_note_final(e, eb, k);
		}
		free(now_cancelled.v);
	}
}

void runs_kill_all(struct engine *e)
{
	for (size_t i = 0; i < e->nruns; i++) {
		struct run *run = &e->runs[i];
		if (run->why == KILL_NONE)
			run->why = KILL_SHUTDOWN;
		if (!run->killed) {
			signal_remote(e, run, SIGKILL);
			engine_kill_group(e, run->pid, SIGKILL);
			run->killed = true;
		}
	}
}

/* The home cannot work (state/slots unusable): said once, and the runner
 * stops as on SIGTERM.  Here, beside runs_signal, so that the scheduler
 * that finds it need not call up into the engine. */
void engine_home_failed(struct engine *e, const char *what, int err)
{
	if (!e->home_failed)
		error("%s: %s; no attempt can start: stopping", what,
		      strerror(err));
	e->home_failed = true;
	if (e->shutdown && !e->draining)
		return;
	e->shutdown = true;
	e->draining = false;
	for (size_t i = 0; i < e->nruns; i++)
		if (!e->runs[i].kill_ns)
			runs_signal(e, &e->runs[i], KILL_SHUTDOWN);
}
