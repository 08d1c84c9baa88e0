/*
 * engine_int: the state the engine's parts share.  Not a public header:
 * engine.h is the engine's contract; this one is for the files that
 * implement it, each of which has a header of its own (the part's
 * contract) on top of this one:
 *
 *   engine.c    the loop, in phases, and its chores; signals, inotify,
 *               reload, shutdown; the views (batch.json, logs, progress)
 *               and closing batches; the one way a batch changes
 *               (engine_record) and its commits
 *   sched.h     what runs next: the queues, reservations, prepared
 *               attempts, spawns under the caps; the liveness audit
 *   attempt.h   what an attempt's end leads to: a pure decision
 *   runs.h      children: reaping, timeouts and kills, an attempt's end
 *   circuits.h  groups, circuits, trials and their alerts, as this
 *               process's batches meet the home's shared state
 *   adopt.h     taking batches: claims, adoption of orphans
 *   requests.h  cancel, pause, resume, retry-failed and control requests
 *
 * Every part reads and writes struct engine and struct ebatch; a batch's
 * struct batch changes only through engine_record() (journal, then apply).
 */
#ifndef RUNNER_ENGINE_INT_H
#define RUNNER_ENGINE_INT_H

#include "engine.h"
#include "alert.h"
#include "batch.h"
#include "conf.h"
#include "exec.h"
#include "journal.h"
#include "lanes.h"
#include "metrics.h"
#include "progress.h"
#include "queue.h"
#include "shared.h"
#include "symstats.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#define JOURNAL_COMMIT_MS 20	/* finished records wait at most this long */
#define SLOT_POLL_MS 25		/* slots held by other processes: ask again */
#define STALL_RETRY_MS 1000	/* disk full: try writing again */
#define RESERVE_MAX 64		/* reservations ahead, at least */
#define META_MIN_INTERVAL_MS 1000
#define STDERR_TAIL 4096
#define RESULT_KEEP_MAX 65536	/* bytes of a result JSON kept (compact) */
#define EV_PIPE (1ULL << 62)	/* epoll data: a child's pipe (| pid) */
#define ORPHAN_CHECK_MS 10000	/* daemon: look for batches whose runner died,
				   and rescan spool/ */
#define METRICS_INTERVAL_MS 5000	/* rewrite [metrics] textfile */
#define RETENTION_INTERVAL_MS 3600000	/* daemon: archive and delete old batches */
#define CHORES 4		/* the periodic chores of the loop (chores[]) */

/* ---- state ---- */

enum kill_why { KILL_NONE, KILL_TIMEOUT, KILL_CANCEL, KILL_SHUTDOWN };

struct ebatch;

struct run {
	pid_t pid;
	struct ebatch *eb;
	uint32_t item, attempt;
	int64_t start_ns;
	int64_t deadline_ns;	/* attempt timeout, 0: none */
	int64_t kill_ns;	/* SIGKILL due, 0: not signalled yet */
	bool killed;		/* SIGKILL sent */
	uint8_t why;
	bool stopped_runner;	/* a signal from it stopped the runner */
	int exec_errno;
	int64_t prep_ns;	/* runner time spent starting it (trace) */
	uint16_t lane;		/* its output lane (lanes.h) */
	int slot_fd;		/* its slot lock, released when it is reaped */
	struct capture cap[2];	/* its stdout and stderr, on their way */
	uint64_t budget;	/* bytes of output it may still keep */
};

/* A group's effect on a batch, done once per change of the group. */
struct grp_mark {
	char id[GROUP_ID_MAX];
	int64_t opened_ms;	/* the opening items were paused for */
	int64_t resumed_ms;	/* the resume that was applied */
};

/* An item holding a half-open trial: its group's (the source's circuit),
 * or (group "") its symbol's. */
struct trial {
	char group[GROUP_ID_MAX];
	struct ebatch *eb;
	uint32_t idx;
	int64_t renew_ms;	/* renew the lease then */
};

/* A reserved attempt whose output pipes are made, ready to spawn:
 * rd[s] the runner's ends, wr[s] the child's. */
struct prep {
	uint32_t idx;
	int rd[2], wr[2];
	int64_t prep_ns;
};

struct ebatch {
	struct batch b;
	struct journal j;
	char *id;
	int dirfd, lock_fd;
	int tmp_fd;		/* tmp/: result files, removed once read */
	int items_fd;		/* items/ of a batch from before output lanes
				   (checkpoints stay there), or -1 */
	struct lanes lanes;	/* output/: this process's session */
	FILE *log;
	const struct agent_conf *agent;
	/* the child's argv and environment, the parts shared by every item */
	struct sb env_base;
	size_t cursor;
	struct u32q requeue, reserved, unreported;
	struct prep *prepared;	/* FIFO: prepared[prep_head .. nprepared) */
	size_t prep_head, nprepared, capprepared;
	struct u32q deferred;	/* pending items whose symbol circuit is open */
	struct grp_mark *marks;	/* what this batch did for which group */
	size_t nmarks, capmarks;
	struct heap retry;
	int running;
	int64_t deadline_ms;
	int64_t next_flush_ns;
	int64_t flush_cost_ns;
	int shown_status;	/* batch_status() in the last summary written */
	bool meta_dirty;
	bool closed;
	bool finalized;		/* this process recorded its FINAL */
	int result;		/* its part of the exit status once closed */
};

/* A child that exited, reaped but not yet accounted for. */
struct exited {
	struct run run;
	int status;
	struct rusage ru;
	int64_t at_ms;	/* when it was reaped: the attempt's end */
};

struct engine {
	struct home *h;
	const struct conf *c;
	const struct conf *given;	/* the caller's, which we never free */
	const struct conf **old_confs;	/* replaced by reloads, kept for runs */
	size_t nold, capold;
	struct engine_opts o;
	int epfd, sigfd, infd;
	int control_wd, spool_wd, events_wd;
	struct shared sh;	/* groups and circuits of the home */
	bool sh_ok;
	uint64_t seen_gen;	/* the shared state last reacted to */
	uint64_t seen_sym_gen;	/* the symbol circuits last looked at */
	int64_t defer_wake_ms;	/* a deferred item's circuit may allow it */
	int64_t dispatch_ms;	/* the wall time the last dispatch looked at */
	struct trial *trials;
	size_t ntrials, captrials;
	char **sym_trials;	/* symbols whose circuit trial we hold */
	size_t nsym_trials, capsym_trials;
	struct alerts *alerts;
	struct symstats stats;	/* per-symbol figures for `runner status` */
	int64_t chore_next_ns[CHORES];	/* when each chore is due */
	bool spool_dirty;	/* daemon: spool/ changed, claim what is there */
	bool draining;		/* daemon: stopping, running attempts finish */
	int64_t drain_deadline_ns;
	char told_status[64];	/* daemon: the last STATUS= sent to systemd */
	bool notify_failed;	/* said once in the log */
	sigset_t child_mask;
	struct ebatch **batches;
	size_t nbatches, capbatches;
	struct run *runs;
	size_t nruns, capruns;
	struct exited *exited;
	size_t nexited, capexited;
	pid_t pid;
	int devnull;
	char *home_abs;
	bool shutdown;
	bool no_dispatch;
	int signals;
	uint64_t signals_seen;	/* ignored signals already said (bit: signo) */
	pid_t isolated;		/* a suspect's attempt, running alone */
	bool home_failed;	/* no attempt can start (state/slots): stopping */
	int64_t slot_poll_ns;	/* retry blocked slots at this time */
	int64_t audit_next_ns;	/* the next liveness audit */
	int64_t wake_fix_ns;	/* a wake-up the audit had to add */
	size_t liveness_bugs;	/* what the audit found (engine_audit) */
	char liveness_what[160];	/* the first of it, said */
	bool kick;		/* work to do at once: the next turn is now */
	/* the trials the attempt being finished held (circ_before_record) */
	char last_trial_group[GROUP_ID_MAX];
	bool last_sym_trial;
	bool stalled;		/* a journal write failed (disk full) */
	int64_t stall_until_ns;
	bool io_failed;
	int exit_status;
	struct progress prog;
	struct metrics metrics;	/* [metrics] textfile */
	bool metrics_warned;	/* its write failed once: said so */
	pid_t retention_pid;	/* daemon: the child applying [retention] */
	/* per-item overhead measurement (RUNNER_TRACE_OVERHEAD) */
	bool trace;
	int64_t *overhead_ns;
	size_t noverhead, capoverhead;
};

/* engine.c: the world (real children, or the simulator's), batches, the
 * one way a batch changes, commits and views. */
pid_t engine_spawn_child(struct engine *e, const struct spawn *s,
			 int *exec_errno);
int engine_kill_group(struct engine *e, pid_t pgid, int sig);
int engine_kill_env(struct engine *e, const char *const *entries, size_t n);
/* Kills what escaped: every child of ours but the items' own, the hooks
 * (unless hooks_too), the retention child and orphans whose environment
 * names an item still running, with all below them (exec_kill_orphans).
 * Called after every reap, and when leaving.  How many were alive. */
int engine_sweep(struct engine *e, bool hooks_too);
struct ebatch *engine_find(struct engine *e, const char *id);
void engine_log_rec(struct ebatch *eb, const struct rec *r);
void engine_record(struct ebatch *eb, const struct rec *r);
int engine_commit(struct engine *e, struct ebatch *eb, bool sync);
/* Attempts prepared and not yet spawned; engine_withdraw() forgets the
 * reservations and prepared attempts of items no longer starting (paused,
 * cancelled); engine_prep_close() closes a prepared attempt's pipes. */
size_t engine_prepared(const struct ebatch *eb);
void engine_withdraw(struct ebatch *eb);
void engine_prep_close(struct prep *p);
int64_t engine_next_wakeup(struct engine *e);
void engine_release_reservations(struct engine *e);
/* The home cannot work (what: why): said once, stop as on SIGTERM, and
 * engine_end() returns 73. */
void engine_home_failed(struct engine *e, const char *what, int err);

#endif
