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
 *   F sig agent source category type symbol batch norm message [flags]
 *                                          a failure (sig "-": not
 *                                          correlated; flags: g = it joined
 *                                          or formed a group, so it does not
 *                                          count for its symbol's circuit;
 *                                          a = it was reported as final)
 *   W (as F)                               a window entry (snapshot)
 *   S symbol                               a success that ended a streak;
 *                                          the symbol leaves every window
 *   Y symbol streak state until open_ms trial [trial_until]
 *                                          symbol circuit (snapshot)
 *   H symbol [until]                       that symbol's trial is taken
 *                                          (or its lease renewed) until then
 *   h symbol                               its trial is given back unused
 *   K symbol [until]                       a user forced its trial now
 *   G group sig agent source category type norm root_cause   formed
 *   M group batch symbol [a]               a failing member joined (a: its
 *                                          failure was already reported)
 *   P group batch symbol                   an item paused for the group
 *   U group batch symbol                   a paused member started again
 *   X group batch symbol [state]           a member reached a final state
 *   N group batch symbol failed paused final paused_ms [resumed state]
 *                                          member (snapshot)
 *   L group size                           an alert told of this many members
 *                                          (the first: the size it formed with)
 *   R group order                          resume (the source circuit closes)
 *   T group batch symbol [until]           the half-open trial is taken (or
 *                                          its lease renewed) until then
 *   t group                                the trial is given back unused
 *   O group until open_ms                  open again: the trial failed, a
 *                                          failure came after a resume, or a
 *                                          user paused the group
 *   Q group status until open_ms trial circuit order resumed_ms
 *     trial_batch trial_symbol [trial_until opened_ms reported formed_size]
 *                                          group state (snapshot)
 *   Z group                                resolved: every member final
 *
 * A trial is a lease of TRIAL_LEASE_MS that its holder renews while the
 * attempt waits or runs (breaker.h): a holder that died frees it when the
 * lease ends.
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
#define TRIAL_LEASE_MS 120000	/* a trial's lease; renewed at half */
/* The lease in force: TRIAL_LEASE_MS, or RUNNER_TRIAL_LEASE_MS (tests). */
int64_t shared_trial_lease_ms(void);
#define GROUP_ID_MAX 40

enum group_status { GROUP_OPEN, GROUP_RESUMING, GROUP_RESOLVED };
const char *group_status_name(int s);

struct sh_member {
	char *batch, *symbol;
	bool failed;	/* a failing member (M), not only paused (P) */
	bool paused;	/* waiting for the group now */
	bool resumed;	/* started again after a resume (U) */
	bool final;	/* its item reached a final state (X) */
	char state[12];	/* final: succeeded, failed or cancelled ("" unknown) */
	int64_t paused_ms;
};

struct sh_group {
	char id[GROUP_ID_MAX];
	char sig[SIG_LEN + 1];
	char *agent, *source, *category, *type, *norm, *root_cause;
	int64_t detected_ms, resolved_ms, resumed_ms;
	int64_t opened_ms;	/* its last (re)opening: G or O */
	size_t reported;	/* members the last group alert told of (L) */
	size_t formed_size;	/* members when it formed (the first L) */
	int status;
	char order[16];		/* of the last resume */
	struct breaker brk;	/* the source's circuit */
	char *trial_batch, *trial_symbol;
	struct sh_member *m;
	size_t nm, capm;
	size_t nfinal;		/* members final (so resolving is O(1)) */
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
	uint64_t sym_gen;	/* bumps on every symbol circuit change */
};

int shared_open(struct shared *sh, int state_fd, const struct conf *c);
void shared_close(struct shared *sh);
/* Fold lines appended since the last look. */
int shared_sync(struct shared *sh);
/* The same, when the file grew (one fstat when it did not): whether a
 * group or a circuit changed. */
bool shared_refresh(struct shared *sh);

struct sh_ref {
	char *batch, *symbol;
};

struct sh_failure_result {
	struct sh_group *group;	/* formed or joined, NULL if neither */
	bool formed;
	bool reopened;		/* it joined a resuming group: open again */
	bool new_member;	/* the failure made its item a failing member */
	size_t grown;		/* the group passed this size (alert it), 0 */
	bool symbol_opened;	/* this failure opened the symbol's circuit */
	uint32_t streak;
	/* formed: the members whose failure was not reported yet, the
	 * failing item itself included */
	struct sh_ref *unreported;
	size_t nunreported;
};
/*
 * A failed attempt.  correlate: whether it may form or join a group (else
 * it only counts for its symbol's circuit).  final_alone: the item ends
 * failed unless the failure is the group's (its alert then goes out
 * without a group, and a group formed later does not report it again).
 * A failure that forms or joins a group does not count for its symbol's
 * circuit.  The caller releases out with shared_failure_done().
 */
int shared_failure(struct shared *sh, struct failure *f, bool correlate,
		   bool final_alone, int64_t now, struct sh_failure_result *out);
void shared_failure_done(struct sh_failure_result *out);
/* A success: closes a half-open symbol circuit, ends a streak.
 * Returns 1 when it closed a circuit. */
int shared_success(struct shared *sh, const char *symbol, int64_t now);
int shared_paused(struct shared *sh, const char *group, const char *batch,
		  const char *const *symbols, size_t n, int64_t now);
/* An item reached a final state (state: succeeded, failed, cancelled):
 * it is final with that state in every group it is a member of (a member
 * retried after its group resolved gets its new outcome: a group's
 * counts are what its members' items are); the last member resolves a
 * group.  Returns the number of groups it resolved, and their
 * ids in resolved[] (up to nresolved). */
int shared_final(struct shared *sh, const char *batch, const char *symbol,
		 const char *state, int64_t now, char (*resolved)[GROUP_ID_MAX],
		 size_t nresolved);
/* An item started: a paused member of any group started again after a
 * resume ("K/N resumed"). */
int shared_started(struct shared *sh, const char *batch, const char *symbol);
int shared_resume(struct shared *sh, const char *group, const char *order,
		  int64_t now);
/* A user's pause of a group: open again, with no half-open trial until a
 * resume. */
int shared_pause_group(struct shared *sh, const char *group, int64_t now);
/* Take the group's half-open trial for this member: 1 taken, 0 not.
 * The holder renews it (shared_trial_renew) while the trial waits or
 * runs, and gives it back unused with shared_trial_release. */
int shared_trial(struct shared *sh, const char *group, const char *batch,
		 const char *symbol, int64_t now);
int shared_trial_renew(struct shared *sh, const char *group,
		       const char *batch, const char *symbol, int64_t now);
int shared_trial_release(struct shared *sh, const char *group);
/* The trial's outcome: success resumes the group, failure reopens it. */
int shared_trial_result(struct shared *sh, const char *group, bool success,
			int64_t now);
/* Take a symbol's half-open trial: 1 taken (or the circuit is closed),
 * 0 not (someone else has it, or the circuit is open).  Renew and release
 * as for a group's trial. */
int shared_symbol_trial(struct shared *sh, const char *symbol, int64_t now);
int shared_symbol_trial_renew(struct shared *sh, const char *symbol,
			      int64_t now);
int shared_symbol_trial_release(struct shared *sh, const char *symbol);
/* A user asked for it (retry-failed, resume): the symbol's circuit goes
 * half-open now and this process holds its trial. */
int shared_symbol_force_trial(struct shared *sh, const char *symbol);

struct sh_group *shared_group(struct shared *sh, const char *id);
/* The open (not resuming, not resolved) group of an agent and source. */
struct sh_group *shared_open_group(struct shared *sh, const char *agent,
				   const char *source);
struct sh_symbol *shared_symbol(struct shared *sh, const char *symbol);
/* Member counts (old form): members, final, paused. */
void shared_group_progress(const struct sh_group *g, size_t *members,
			   size_t *final, size_t *paused);
/* A group's members counted by what became of them. */
struct sh_counts {
	size_t members;
	size_t paused;		/* waiting for the group (queued once resumed) */
	size_t resumed;		/* started again after a resume */
	size_t final, succeeded, failed, cancelled;
};
void shared_group_counts(const struct sh_group *g, struct sh_counts *c);
/* "3 paused", "2/5 resumed, 3 queued", "5 succeeded, 1 failed": the
 * group's progress in one phrase, as groups, show and the report say it. */
void shared_group_progress_text(const struct sh_group *g, struct sb *out);
/* The groups that (batch, symbol) is an open (not final) member of. */
size_t shared_member_groups(struct shared *sh, const char *batch,
			    const char *symbol, struct sh_group **out,
			    size_t max);
/* A member's state for views: paused, queued, running, succeeded, ... */
const char *shared_member_state(const struct sh_group *g,
				const struct sh_member *m);
/* Group alerts: the message of a group's alert (formed, grown, reopened,
 * resolved), naming up to 10 symbols, the root cause, and the resume and
 * cancel commands while it is open. */
void shared_group_message(const struct sh_group *g, const char *what,
			  struct sb *out);

#endif
