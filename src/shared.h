/*
 * shared: what the runner processes of one home share beyond their
 * batches — failure groups, symbol circuits and the correlation windows —
 * as a fold over one append-only event log, state/events (the batch
 * journal's idea, home-wide).  Every process folds the same lines in the
 * same order, so every process sees the same groups and circuits.
 *
 *   struct shared sh;
 *   shared_open(&sh, state_fd, conf);     fold what is there
 *   shared_sync(&sh);                     fold what others appended since
 *   shared_failure(&sh, &f, now, &out);   a failed attempt: correlate it,
 *                                         maybe form or join a group, maybe
 *                                         open the symbol's circuit
 *   shared_success(&sh, symbol, now);     a success (only written when it
 *                                         changes something)
 *   ... shared_paused / shared_final / shared_resume / shared_trial ...
 *   shared_close(&sh);
 *
 * Decisions are transactions: the writer takes an exclusive flock on the
 * log, folds what others wrote, decides, appends its lines with one write,
 * and unlocks; so two processes never form two groups for one cause, and
 * only one of them runs a half-open trial.  Lines are TAB-separated text
 * with escaped fields; a torn last line (no newline) is ignored until it is
 * complete.  When the log passes SHARED_COMPACT bytes, the process that
 * notices rewrites it as a snapshot of the current state (atomically);
 * the others see the new inode and fold it afresh.
 *
 * Line types (after the type letter: the time in ms):
 *   F sig agent source category type symbol batch norm message   a failure
 *                                          (sig "-": not correlated)
 *   S symbol                               a success that ended a streak
 *   Y symbol streak state until open_ms trial   symbol circuit (snapshot)
 *   H symbol                               that symbol's trial is taken
 *   K symbol                               a user forced its trial now
 *   G group sig agent source category type norm root_cause   formed
 *   M group batch symbol                   a failing member joined
 *   P group batch symbol                   an item paused for the group
 *   X group batch symbol                   a member reached a final state
 *   R group order                          resume (the source circuit closes)
 *   T group batch symbol                   the half-open trial is taken
 *   O group until open_ms                  the trial failed: open again
 *   Q group status until open_ms trial     group state (snapshot)
 *   Z group                                resolved: every member final
 */
#ifndef RUNNER_SHARED_H
#define RUNNER_SHARED_H

#include "breaker.h"
#include "correlate.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct conf;

#define SHARED_COMPACT (8u << 20)
#define GROUP_ID_MAX 40

enum group_status { GROUP_OPEN, GROUP_RESUMING, GROUP_RESOLVED };
const char *group_status_name(int s);

struct sh_member {
	char *batch, *symbol;
	bool failed;	/* a failing member (M), not only paused (P) */
	bool paused;
	bool final;
	int64_t paused_ms;
};

struct sh_group {
	char id[GROUP_ID_MAX];
	char sig[SIG_LEN + 1];
	char *agent, *source, *category, *type, *norm, *root_cause;
	int64_t detected_ms, resolved_ms, resumed_ms;
	int status;
	char order[16];		/* of the last resume */
	struct breaker brk;	/* the source's circuit */
	char *trial_batch, *trial_symbol;
	struct sh_member *m;
	size_t nm, capm;
	struct strmap idx;	/* "batch\x1fsymbol" -> member */
	char **keys;
	size_t nkeys, capkeys;
	uint64_t gen;		/* bumps on every change of the group */
};

struct sh_symbol {
	char *symbol;
	struct breaker brk;
	int64_t last_failure_ms;
};

struct shared {
	int state_fd, fd;
	dev_t dev;
	ino_t ino;
	off_t offset;
	struct sb partial;
	bool locked;
	struct correlator corr;
	struct breaker_conf sym_conf, src_conf;
	struct sh_group **groups;
	size_t ngroups, capgroups;
	struct strmap group_idx;
	struct sh_symbol **symbols;
	size_t nsymbols, capsymbols;
	struct strmap symbol_idx;
	struct sb out;		/* lines of the open transaction */
	uint64_t gen;		/* bumps on every group change */
};

int shared_open(struct shared *sh, int state_fd, const struct conf *c);
void shared_close(struct shared *sh);
/* Fold lines appended since the last look. */
int shared_sync(struct shared *sh);

struct sh_failure_result {
	struct sh_group *group;	/* formed or joined, NULL if neither */
	bool formed;
	bool symbol_opened;	/* this failure opened the symbol's circuit */
	uint32_t streak;
};
/* correlate: whether the failure may form or join a group (else it only
 * counts for its symbol's circuit). */
int shared_failure(struct shared *sh, struct failure *f, bool correlate,
		   int64_t now, struct sh_failure_result *out);
/* A success: closes a half-open symbol circuit, ends a streak.
 * Returns 1 when it closed a circuit. */
int shared_success(struct shared *sh, const char *symbol, int64_t now);
int shared_paused(struct shared *sh, const char *group, const char *batch,
		  const char *const *symbols, size_t n, int64_t now);
/* A member reached a final state; the last one resolves the group.
 * Returns 1 when the group became resolved. */
int shared_final(struct shared *sh, const char *group, const char *batch,
		 const char *symbol, int64_t now);
/* A paused member started again after a resume ("K/N resumed"). */
int shared_started(struct shared *sh, const char *group, const char *batch,
		   const char *symbol);
int shared_resume(struct shared *sh, const char *group, const char *order,
		  int64_t now);
/* A user's pause of a group: open again, with no half-open trial until a
 * resume. */
int shared_pause_group(struct shared *sh, const char *group, int64_t now);
/* Take the group's half-open trial for this member: 1 taken, 0 not. */
int shared_trial(struct shared *sh, const char *group, const char *batch,
		 const char *symbol, int64_t now);
/* The trial's outcome: success resumes the group, failure reopens it. */
int shared_trial_result(struct shared *sh, const char *group, bool success,
			int64_t now);
/* Take a symbol's half-open trial: 1 taken, 0 not (someone else has it,
 * or the circuit is not half-open). */
int shared_symbol_trial(struct shared *sh, const char *symbol, int64_t now);
/* A user asked for it (retry-failed, resume): the symbol's circuit goes
 * half-open now and this process holds its trial. */
int shared_symbol_force_trial(struct shared *sh, const char *symbol);

struct sh_group *shared_group(struct shared *sh, const char *id);
/* The open (not resuming, not resolved) group of an agent and source. */
struct sh_group *shared_open_group(struct shared *sh, const char *agent,
				   const char *source);
struct sh_symbol *shared_symbol(struct shared *sh, const char *symbol);
/* Member counts: resumed (started or final since the resume), queued. */
void shared_group_progress(const struct sh_group *g, size_t *members,
			   size_t *final, size_t *paused);

#endif
