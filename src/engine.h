/*
 * engine: runs batches in this process.  One single-threaded event loop
 * (epoll on a signalfd and an inotify watch of state/control/), the
 * children it forks, the journal records it writes, and the views it keeps
 * up to date (batch.json, logs/<id>.log, progress output).
 *
 *   struct engine *e = engine_new(home, conf, &opts);
 *   engine_take(e, id, lock_fd);     own a batch: lock, replay, adopt
 *   engine_take_orphans(e);          every unfinished batch nobody owns
 *   status = engine_run(e);          until every batch is final or waits
 *                                    only on paused items; SPEC exit status
 *   engine_free(e);
 *
 * Scheduling: batches by priority (higher first), FIFO by creation within
 * a priority; inside a batch, due retries, then items sent back to pending,
 * then pending items in file order.  Caps: the job's concurrency, the
 * agent's max_concurrent and max_children, the last two across processes
 * (slots.h).
 *
 * Durability (DURABILITY.md): a child is spawned only after the record
 * reserving its attempt is fsync'ed.  Reservations are made a few items
 * ahead of free slots, so one fdatasync covers several spawns and a slot
 * that frees up is refilled without waiting for the disk.  Finished records
 * ride the next group commit (at most JOURNAL_COMMIT_MS later); an item is
 * reported final (progress event, batch.json) only after that commit.
 *
 * Adoption: taking a batch whose runner died kills what its children left
 * (processes whose environment names the batch), records their attempts
 * as interrupted, and continues.  Nothing is "fixed up" outside records.
 */
#ifndef RUNNER_ENGINE_H
#define RUNNER_ENGINE_H

#include "conf.h"
#include "home.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>

struct runlog;
struct spawn;
struct rusage;

/*
 * The world the engine acts on: starting, signalling and reaping its
 * children.  NULL in engine_opts: the real one (exec.h, waitid).  The
 * simulator (tests/sim) gives its own, whose children are virtual and live
 * on its virtual clock (util_clock_hook); with it the engine also folds
 * state/events every turn (there is no inotify), and the daemon's chores
 * that need real processes (metrics, retention, orphans) are off.
 */
struct engine_ops {
	void *ctx;
	pid_t (*spawn)(void *ctx, const struct spawn *s, int *exec_errno);
	int (*kill_group)(void *ctx, pid_t pgid, int sig);
	/* every process whose environment holds all the entries: count */
	int (*kill_env)(void *ctx, const char *const *entries, size_t n);
	/* a child that ended: 1 with pid, status, rusage; 0: none now */
	int (*reap)(void *ctx, pid_t *pid, int *status, struct rusage *ru);
};

struct engine_opts {
	bool json;	/* progress events on stdout, one JSON object a line */
	bool progress;	/* the progress line (only drawn on a terminal) */
	bool summary;	/* print each batch's summary when it ends */
	/* daemon mode: watch spool/ (inotify), claim what arrives, adopt
	 * orphans, run until SIGTERM/SIGINT (then drain: nothing new starts,
	 * running attempts get shutdown_grace to finish, then their groups are
	 * killed and the attempts recorded as interrupted; a second signal
	 * kills at once).  SIGHUP reloads conf_path (a bad file is reported
	 * and the old configuration kept) and reopens the log. */
	bool daemon;
	bool once;		/* daemon: exit when spool/ is empty, nothing runs */
	const char *conf_path;
	struct runlog *runlog;	/* logs/runner.log, may be NULL */
	const struct engine_ops *ops;	/* NULL: real children */
};

struct engine;

struct engine *engine_new(struct home *h, const struct conf *c,
			  const struct engine_opts *o);
/* 0: taken; 1: not taken (owned by a live runner, or already final and
 * not TAKE_FINAL); -1: error, printed.  lock_fd: the lock a claim already
 * holds, or -1.  TAKE_FINAL takes a final batch too (retry-failed). */
enum { TAKE_FINAL = 1 };
int engine_take(struct engine *e, const char *id, int lock_fd, int flags);
int engine_take_orphans(struct engine *e);
/*
 * Claim a job file and take its batch.  named: a path given by the user
 * (a file outside spool/ is claimed from a copy); otherwise a name in
 * spool/.  Returns 0, or an exit status (65 invalid named job, 74 I/O).
 * engine_claim_spool() claims every *.job of spool/, oldest first.
 */
int engine_claim(struct engine *e, const char *path, bool named);
int engine_claim_spool(struct engine *e);
/* The configuration now in force (it changes on a daemon's reload). */
const struct conf *engine_conf(const struct engine *e);
int engine_run(struct engine *e);
/*
 * engine_run() is these, around an epoll_wait: the simulator calls them
 * itself.  engine_turn() does one turn of the loop (reap, timers, groups
 * and circuits, chores, dispatch, journal and views) and says whether the
 * loop goes on; engine_wake_ms() is how long it may then sleep (-1: until
 * an event), after a liveness audit; engine_end() writes everything down
 * and gives the exit status.  engine_abandon() drops the engine as a
 * kill -9 would: nothing more is written (what the journal has is what a
 * next runner replays).  engine_audit() counts the items that may start
 * but that nothing would start, and sleeps with items waiting and no end:
 * always 0 (the simulator's liveness check); what gets the first, said.
 */
void engine_begin(struct engine *e);
bool engine_turn(struct engine *e);
int64_t engine_wake_ms(struct engine *e);
int engine_end(struct engine *e);
void engine_abandon(struct engine *e);
/* What a daemon does on SIGHUP (the simulator calls it): load conf_path
 * again; a bad file is reported and the old configuration stays.  Running
 * children keep the caps they started under; new spawns use the new. */
void engine_reload(struct engine *e);
size_t engine_audit(struct engine *e, char *what, size_t nwhat);
/* A batch this engine holds, to read (the simulator's checks); NULL. */
struct batch;
const struct batch *engine_batch(struct engine *e, const char *id);
/* Whether every record of that batch is in its journal file (written, if
 * not yet synced): its replay is then the batch. */
void engine_batch_written(struct engine *e, const char *id, bool *written);
/* From now on start nothing: engine_run() only finishes what runs, records
 * FINAL for batches with no open item, and writes everything down. */
void engine_settle(struct engine *e);
void engine_free(struct engine *e);

/* Operations on a taken batch; reply gets a JSON object for the requester.
 * They return the number of items affected, or -1. */
int engine_cancel(struct engine *e, const char *id, char **symbols,
		  size_t nsymbols, struct sb *reply);
int engine_retry_failed(struct engine *e, const char *id, unsigned categories,
			char **symbols, size_t nsymbols, struct sb *reply);
/* Pause the batch's pending and retrying items (or only those symbols);
 * running ones finish.  Resume its paused items in order ("progress",
 * "oldest", "priority"): those a failure group paused resume with their
 * group (the group is resumed for everyone). */
int engine_pause(struct engine *e, const char *id, char **symbols,
		 size_t nsymbols, const char *reason, struct sb *reply);
int engine_resume(struct engine *e, const char *id, const char *order,
		  struct sb *reply);
/* The home's groups and circuits (NULL if they are not available). */
struct shared *engine_shared(struct engine *e);
/* Handle one control request (a JSON object) for a batch we own. */
void engine_control(struct engine *e, const char *id, const char *json,
		    struct sb *reply);

#endif
