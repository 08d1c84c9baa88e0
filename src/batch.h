/*
 * batch: the batch/item model and the one function that changes it.
 *
 * State is a fold over the journal (ARCHITECTURE.md): every change is a
 * struct rec, encoded and appended to the batch's journal, then applied by
 * batch_apply().  The live scheduler calls batch_record() (encode, append,
 * apply); replay calls batch_replay() which decodes and applies each record
 * read back.  Nothing else writes to a struct batch, so a replayed batch is
 * the batch that was running.  batch never forks and knows no processes:
 * pids in records are data.
 *
 *   struct batch b;
 *   batch_init(&b);
 *   journal_open(&j, dirfd, "journal", writable, batch_replay, &b);
 *   ... b.items[i].state, batch_status(&b) ...
 *   batch_release(&b);
 *
 * Records carry decisions, not inputs to decisions: a FINISHED record says
 * which state the item goes to and when a retry is due, so replay never
 * re-runs the retry policy or its random jitter.
 *
 * batch_apply() validates every record against the current state (index in
 * range, attempt numbers in order, legal transition) and returns -1 for a
 * record that does not fit, which replay treats as a damaged journal.  It
 * also checks every name and number a record carries exactly as a job
 * file's are checked (valid_symbol(), valid_batch_id(), ...): a journal is
 * a file anyone with write access to the home can forge, and a symbol is a
 * file name and an argument.  Such a record is refused with b->forged set.
 *
 * An item's life, record by record (every other pair is refused):
 *
 *   ITEMS     -> PENDING
 *   RESERVE   PENDING, RETRY_WAIT -> STARTING (attempt n+1 reserved)
 *   RELEASE   STARTING -> PENDING (attempt withdrawn, never spawned)
 *   SPAWNED   STARTING -> RUNNING
 *   FINISHED  RUNNING (or STARTING, outcome interrupted) -> the state the
 *             record names: SUCCEEDED, FAILED, CANCELLED (final), or
 *             RETRY_WAIT (with when), PENDING, PAUSED (with its group)
 *   PAUSE     PENDING, RETRY_WAIT, STARTING -> PAUSED; FAILED -> PAUSED
 *             only for a group's member whose batch is still open
 *   RESUME    PAUSED -> PENDING
 *   CANCEL    PENDING, RETRY_WAIT, PAUSED, STARTING -> CANCELLED;
 *             RUNNING is only marked (its FINISHED ends it)
 *   REQUEUE   FAILED -> PENDING (`--retry-failed`; a closed batch
 *             opens again for them)
 *   FINAL     every item final -> the batch is closed
 *
 * So between two REQUEUEs an item reaches a final state once: only
 * REQUEUE and a group's PAUSE (open batch only) ever leave FAILED.
 */
#ifndef RUNNER_BATCH_H
#define RUNNER_BATCH_H

#include "category.h"
#include "journal.h"
#include "util.h"

#include <stdint.h>
#include <sys/types.h>

enum item_state {
	ST_PENDING,
	ST_STARTING,	/* start record durable, child not yet spawned */
	ST_RUNNING,
	ST_RETRY_WAIT,
	ST_PAUSED,
	ST_SUCCEEDED,
	ST_FAILED,
	ST_CANCELLED,
	ST_COUNT
};

static inline int state_final(int s)
{
	return s == ST_SUCCEEDED || s == ST_FAILED || s == ST_CANCELLED;
}
/* The SPEC's name of a state (STARTING shows as "pending"). */
const char *state_name(int s);

enum outcome {
	OUT_NONE,
	OUT_SUCCEEDED,
	OUT_FAILED,
	OUT_CANCELLED,
	OUT_INTERRUPTED,	/* the runner died while it ran */
};
const char *outcome_name(int o);

enum batch_status {
	BS_PENDING,
	BS_RUNNING,
	BS_PAUSED,
	BS_COMPLETED,
	BS_PARTIAL,
	BS_FAILED,
	BS_CANCELLED,
};
const char *batch_status_name(int s);
int batch_status_parse(const char *s); /* -1 if unknown */
static inline int status_final(int s) { return s >= BS_COMPLETED; }

enum cancel_reason { CANCEL_USER, CANCEL_BATCH_TIMEOUT, CANCEL_SHUTDOWN };
/* Why a runner took a batch that had another owner: its runner died, or
 * it left the batch waiting only on paused items (a clean hand-over). */
enum adopt_reason { ADOPT_ORPHAN, ADOPT_PAUSED };

struct attempt {
	int64_t started_ms;	/* 0: reserved, never known to have started */
	int64_t completed_ms;
	char *error_message;	/* arena; NULL when none */
	char *warning;		/* arena; NULL when none (a lost result) */
	int32_t pid;
	int32_t exit_code;	/* -1: none */
	int16_t signal;		/* 0: none */
	uint8_t outcome;
	uint8_t category;
	uint8_t out_flags;	/* OUTF_*: how its output was kept */
	uint16_t session;	/* output/SESSION-LANE.out|err, 0: none
				   (never spawned, or a batch from before
				   output lanes: items/SYMBOL/attempt-N.*) */
	uint16_t lane;
	uint32_t cpu_user_ms, cpu_system_ms, max_rss_kb;
	uint64_t out_off, err_off;	/* where its bytes start in the lane */
	uint64_t out_len, err_len;	/* how many (known once it ended) */
	char *result;	/* arena; its result JSON (compact), NULL: none */
};

/* struct attempt.out_flags */
enum {
	OUTF_ENDED = 1,		/* out_len/err_len are known */
	OUTF_OUT_CUT = 2,	/* stdout went past max_output: rest dropped */
	OUTF_ERR_CUT = 4,	/* stderr went past max_output */
	OUTF_LOST = 8,		/* some output could not be written (disk) */
};

struct item {
	const char *symbol;
	struct attempt *log;
	uint16_t nattempts, logcap;
	uint16_t failures;	/* failed attempts counted against max_attempts */
	uint16_t interruptions;	/* interrupted attempts in a row that count
				   (category engine_error: they ended with
				   the runner); 0 again when an attempt ends
				   otherwise, or the item is queued again */
	uint8_t state;
	uint8_t cancel_requested;
	int64_t matches;	/* -1: none */
	int32_t progress;	/* permille, -1: none */
	const char *error_type;	/* interned, NULL when none */
	const char *source;	/* interned */
	const char *failure_group;	/* the last group it belonged to */
	const char *pause_group;	/* PAUSED: the group it waits for,
					   NULL for a user's pause */
	int64_t next_retry_at;
	int64_t completed_ms;
	int64_t paused_ms;	/* when it was last paused */
};

struct batch_param {
	const char *key, *value;
};

/* What the job and the configuration said at claim time. */
struct batch_conf {
	const char *id, *name, *origin, *agent, *source, *job_file, *sha256;
	const char *timeframe, *start, *end;
	const char *primary_metric;	/* the agent's at claim time, or NULL */
	int64_t created_ms;
	int32_t priority, concurrency, max_attempts;
	int64_t timeout_ms, batch_timeout_ms;
	int64_t *delays_ms;
	uint32_t ndelays;
	uint32_t jitter_permille;
	uint32_t retry_on;
	struct batch_param *params;
	uint32_t nparams;
	uint32_t total_items;
};

struct arena_block;
struct batch {
	struct batch_conf c;
	bool claimed;		/* the CLAIMED record was seen */
	struct item *items;
	size_t nitems;
	size_t count[ST_COUNT];
	int64_t started_ms;	/* first spawn */
	int64_t completed_ms;	/* when final */
	bool final;
	uint8_t final_status;
	uint16_t finals;	/* FINAL records applied (retry-failed reopens) */
	bool user_cancelled;
	int32_t owner_pid;
	uint64_t attempts_total;
	uint64_t cpu_user_ms, cpu_system_ms;
	uint32_t max_rss_kb;
	char damage[240];	/* what is wrong with the journal it was
				   replayed from ("": nothing; see
				   batch_damaged) */
	struct strmap symbols;	/* symbol -> item index */
	struct strmap interned;
	struct arena_block *arena;
	/* Why replay refused a record: it names what no job file could give
	 * (a symbol, the id, the agent, a group, a number out of bounds),
	 * escapes made visible; "" when none.  Such a batch is refused. */
	char forged[160];
};

void batch_init(struct batch *b);
void batch_release(struct batch *b);
int batch_status(const struct batch *b);
/* The item of a symbol, or NULL. */
struct item *batch_item(struct batch *b, const char *symbol);
size_t batch_open_items(const struct batch *b); /* not final */
/* The status a batch takes when all its items are final. */
int batch_final_status(const struct batch *b);

enum rec_type {
	R_CLAIMED = 1,
	R_ITEMS,
	R_RESERVE,
	R_SPAWNED,
	R_FINISHED,
	R_RELEASE,
	R_CANCEL,
	R_REQUEUE,
	R_FINAL,
	R_ADOPTED,
	R_PAUSE,
	R_RESUME,
	R_TYPE_MAX
};

/* Decoded lists stay in the payload; apply walks them. */
struct rec_list {
	const unsigned char *p;
	size_t len;
	uint32_t n;
};

struct rec {
	uint8_t type;
	uint32_t item, attempt;
	int64_t time;
	/* SPAWNED / ADOPTED */
	int32_t pid;
	/* SPAWNED: its output lane (session 0: none); FINISHED: out_flags
	 * (OUTF_ENDED: the lengths follow) */
	uint16_t session, lane;
	uint64_t out_off, err_off, out_len, err_len;
	uint8_t out_flags;
	const char *result;	/* FINISHED: the result JSON kept, or NULL */
	/* FINISHED */
	uint8_t outcome, category, next_state, counts_failure;
	int32_t exit_code, signal;
	const char *error_type, *error_message, *source;
	const char *warning;	/* may be NULL; see rec_encode() */
	int64_t matches;
	int32_t progress;
	uint32_t cpu_user_ms, cpu_system_ms, max_rss_kb;
	int64_t next_retry_at;
	/* CLAIMED (encode: conf points at the values to write) */
	const struct batch_conf *conf;
	struct batch_conf decoded;	/* strings point into the payload */
	struct rec_list delays, params;
	/* ITEMS: symbols[first .. first+n); CANCEL/REQUEUE: item indexes */
	uint32_t first, n;
	const char *const *symbols;
	const uint32_t *indexes;
	struct rec_list list;
	/* CANCEL (whole, reason), PAUSE and RESUME (whole, group, text);
	 * ADOPTED: reason ADOPT_* */
	uint8_t whole, reason;
	const char *group, *text;
	/* FINAL */
	uint8_t status;
};

void rec_encode(const struct rec *r, struct sb *out);
/* The first item index of a list record (encoded, or decoded). */
uint32_t rec_first_index(const struct rec *r);
int rec_decode(const void *payload, size_t len, struct rec *r);
int batch_apply(struct batch *b, const struct rec *r);

/*
 * PAUSE: the listed (or, whole, every) pending, retry_wait or starting
 * item becomes paused, with group (may be NULL: a user's pause, text its
 * reason); with a group, so does a failed item of a batch not yet final
 * (a member that failed through the group before it formed); others are
 * left as they are.  RESUME: the listed (or every,
 * or, with group, every item paused by that group) paused item becomes
 * pending.  FINISHED may carry a group: the failure that made the item a
 * member of it (and next_state PAUSED for one that would retry).
 */
/* Encode, append to j (not yet written), apply.  BUG() if it does not apply. */
void batch_record(struct batch *b, struct journal *j, const struct rec *r);
/* A journal_fn: decode and apply (arg is the struct batch). */
int batch_replay(void *arg, const void *payload, size_t len);
/* The batch in directory dirfd as its journal says, for reading (b
 * batch_init'ed here; the caller releases it, also on failure): 0, or -1
 * with errno (EINVAL: no CLAIMED record, or a header no record verifies
 * against: b->damage says which; or b->forged says what a record names
 * that no job could).  0 with b->damage set: the journal is damaged
 * (batch_damaged) and b is the state before the damage; a view must say
 * so, not show it as the batch. */
int batch_replay_dir(int dirfd, struct batch *b);
/*
 * Whether the journal j that b was just replayed from lies about the
 * batch: 1 with a sentence in b->damage (offsets included), else 0.
 * Damaged: records stop in the middle and others verify after them
 * (j->corrupt), or the item list is incomplete (a batch in batches/ was
 * claimed with all its ITEMS written and synced before it got there, so
 * fewer items than the CLAIMED record counts means the journal was cut
 * inside the list: such a batch is damaged, not empty).
 */
int batch_damaged(const struct journal *j, struct batch *b);

/* Copy a string into the batch's arena (lives as long as the batch). */
char *batch_strdup(struct batch *b, const char *s);

#endif
