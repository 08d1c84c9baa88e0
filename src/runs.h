/*
 * runs: the children once started.  runs_reap() collects the ones that
 * ended (their accounting waits for runs_finish_exited(), so that freed
 * slots are refilled first); runs_finish() turns an attempt's end into its
 * FINISHED record: classification, the decision (attempt.h), the failure
 * groups and circuits, alerts; runs_check_timers() sends SIGTERM at a
 * timeout and SIGKILL after kill_grace, and cancels a batch at its
 * batch_timeout.
 */
#ifndef RUNNER_RUNS_H
#define RUNNER_RUNS_H

#include "engine_int.h"

/* What an attempt's output came to (run: its captures, all read); NULL
 * when it never had any (no child). */
void runs_finish(struct engine *e, struct ebatch *eb, uint32_t idx,
		 uint32_t attempt, int wait_status,
		 const struct rusage *ru, uint8_t why, int exec_errno,
		 int64_t timeout_ms, int64_t end_ms, const struct run *run);
/* A reserved attempt that could not start (why: "WHAT: REASON") is a
 * failed attempt, engine_error "cannot start: WHY", not retried; the
 * other items go on. */
void runs_start_failed(struct engine *e, struct ebatch *eb, uint32_t idx,
		       const char *why);
/* A child's pipe has something (epoll): move it to its lane. */
void runs_pump(struct engine *e, pid_t pid);
/* Read what a run's pipes hold now, then close them: a grandchild left
 * holding one can write no more. */
void runs_close_output(struct engine *e, struct run *run);
void runs_reap(struct engine *e);
bool runs_exits_failed(const struct engine *e);
void runs_finish_exited(struct engine *e);
void runs_signal(struct engine *e, struct run *run, uint8_t why);
void runs_check_timers(struct engine *e);
void runs_kill_all(struct engine *e);

#endif
