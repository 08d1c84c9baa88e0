/*
 * alert: logs/alerts.jsonl and the notify hook (SPEC 9).
 *
 *   struct alerts *a = alerts_open(home, conf);
 *   alert_emit(a, &(struct alert){ .event = "item_failed", ... });
 *   ... in the event loop:
 *   alerts_run_hooks(a, parent_pid, child_mask);   start queued hook runs
 *   alerts_reaped(a, pid);                          a hook child exited
 *   alerts_check(a);                                kill hooks past timeout
 *   alerts_next_ns(a);                              next deadline, 0: none
 *   alerts_close(a);
 *
 * Each alert is one JSON object on one line, appended with one write(2)
 * to an O_APPEND file before anything else happens to it: a hook that
 * hangs, fails or floods can delay or drop its own runs, never the line.
 * The hook ([runner] notify) runs once per alert, as argv without a shell,
 * in its own process group, with the alert JSON on stdin (a file, so that
 * a hook that does not read it cannot block anything) and RUNNER_EVENT,
 * RUNNER_MESSAGE, RUNNER_BATCH_ID, RUNNER_SYMBOL (and RUNNER_GROUP_ID,
 * RUNNER_ROOT_CAUSE) in
 * its environment; at most ALERT_HOOKS run at once, each for at most
 * ALERT_HOOK_TIMEOUT_MS, and at most ALERT_QUEUE wait (the oldest waiting
 * runs are dropped first, with a warning).
 *
 * A hook is killed with its whole process group (SIGKILL) at its timeout,
 * when it exits (the engine kills what it left in its group before it
 * reaps it: alerts_owns()), and when the runner leaves:
 * alerts_abandon() kills every hook still running and drops the runs still
 * waiting, and says how many it dropped (the caller warns).  What a hook
 * left outside its group (a session of its own) comes back to the runner,
 * a child subreaper, when the hook's process dies: the engine kills it
 * then (exec_kill_orphans(); alerts_owns() tells a hook from an orphan).
 */
#ifndef RUNNER_ALERT_H
#define RUNNER_ALERT_H

#include "home.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define ALERT_HOOKS 2
#define ALERT_HOOK_TIMEOUT_MS 10000
#define ALERT_QUEUE 1000

struct conf;

struct alert {
	const char *event;	/* item_failed, symbol_circuit_open, failure_group, batch_final */
	const char *batch_id, *symbol, *group_id, *root_cause, *message;
	const char *category, *error_type, *status, *source;
	/* -1: not applicable.  group_size: members when the group formed
	 * (the same in every alert of a group); members: now. */
	long long attempts, group_size, members, count;
};
#define ALERT_INIT { .attempts = -1, .group_size = -1, .members = -1, \
		     .count = -1 }

struct alerts;

struct alerts *alerts_open(struct home *h, const struct conf *c);
void alerts_set_conf(struct alerts *a, const struct conf *c);
void alert_emit(struct alerts *a, const struct alert *al);
void alerts_run_hooks(struct alerts *a, pid_t parent,
		      const sigset_t *child_mask);
bool alerts_reaped(struct alerts *a, pid_t pid);
/* pid is a hook run's own process (running, or exited and not reaped). */
bool alerts_owns(const struct alerts *a, pid_t pid);
/* Kills the running hooks, drops the waiting runs: how many it dropped. */
size_t alerts_abandon(struct alerts *a);
void alerts_check(struct alerts *a);
int64_t alerts_next_ns(const struct alerts *a);
/* Waiting or running hook runs (a stopping runner gives them a moment). */
size_t alerts_busy(const struct alerts *a);
void alerts_close(struct alerts *a);

#endif
