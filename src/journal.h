/*
 * journal: an append-only file of framed, checksummed records.  It knows
 * nothing of what the records mean (that is batch.c); it promises only
 * that a record whose journal_sync() returned is read back intact, and that
 * whatever a crash leaves half-written at the end is cut off on replay.
 *
 * Format (internal, version 1):
 *   header  "RUNJRNL\0" | u32 version | u32 salt | u32 crc | u32 0  (24 bytes)
 *   record  u32 length | u32 crc | u64 seq | payload      (16 + length)
 * The header's crc covers its first 16 bytes: a damaged header (a wrong
 * salt) fails the open instead of making every record look torn.
 * A record's crc is CRC-32 (zlib) over salt, seq, length and payload; seq counts from
 * 1 without gaps; the salt is random per journal, so a record spliced in
 * from another batch's journal does not verify.
 *
 * Replay (journal_open) reads records in order and hands each payload to fn.
 * It stops at a short or zero length, a bad checksum or a sequence gap.  If
 * no valid record follows that point it was a torn tail: a read-only open
 * ignores it, a writable one cuts it (and fsyncs) at its first write, or
 * when journal_cut() is called, so that a caller that refuses the batch
 * after replay leaves the file as it found it.  If a valid record does
 * follow, the middle is damaged: j->corrupt is set (with corrupt_at,
 * resume_at and a sentence in j->why), the file is left as it is, and
 * appending is refused.  A damaged header fails the open (EINVAL) with
 * j->why saying what is wrong (empty, short, not a journal, version,
 * checksum).
 *
 * The search for a valid record after the stop is one pass forward that
 * checksums only frames whose length fits and whose seq could follow;
 * the bytes it checksums are bounded by a multiple of the bytes searched,
 * past which it gives up and calls the rest damaged (resume_at -1): a
 * hostile file costs linear time.  Replay and search look every MiB for
 * a pending (blocked) SIGTERM or SIGINT and give up with EINTR, so a
 * runner whose loop reads its signals later stays stoppable.
 *
 * journal_check() is fsck's view: the file cut into spans (verified runs
 * of records, damaged bytes, a torn tail), handed to fn in order.
 *
 * Writing is group commit: journal_add() frames a record in memory,
 * journal_write() hands everything pending to the kernel (one write),
 * journal_sync() also fdatasyncs.  A failed write is undone (truncated
 * back) and may be tried again later (a full disk); a failed fdatasync is
 * never retried: j->failed is set and every later call fails with it.
 */
#ifndef RUNNER_JOURNAL_H
#define RUNNER_JOURNAL_H

#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define JOURNAL_MAX_RECORD (32u << 20)

struct journal {
	int fd;
	uint32_t salt;
	uint64_t next_seq;
	off_t size;		/* end of the last record handed to the kernel */
	off_t synced;		/* end of the last record known durable */
	struct sb pending;	/* framed records not yet written */
	uint64_t pending_records;
	int64_t oldest_unsynced_ns; /* mono time of the oldest unsynced record */
	bool corrupt;
	off_t corrupt_at;	/* where the records stop */
	off_t resume_at;	/* where one verifies again, -1: unknown */
	char why[160];		/* corrupt, or a failed open's EINVAL */
	bool stopped;		/* a pending SIGTERM/SIGINT cut it short */
	off_t torn_bytes;	/* unverified bytes at the end (cut by the
				   first write of a writable open) */
	bool cut;		/* they were cut */
	int failed;		/* errno of a failed fdatasync, sticky */
};
#define JOURNAL_INIT { .fd = -1 }

/* Return 0 to go on, -1 to stop the replay as corrupt. */
typedef int (*journal_fn)(void *arg, const void *payload, size_t len);

int journal_create(struct journal *j, int dirfd, const char *name);
int journal_open(struct journal *j, int dirfd, const char *name,
		 bool writable, journal_fn fn, void *arg);
/* A journal opened read-only while its writer goes on: hand fn the
 * records written since the open or the last call (a record still being
 * written waits for the next call).  The count, or -1 (fn refused one). */
int journal_follow(struct journal *j, journal_fn fn, void *arg);
/* Cut the torn tail a writable open found (journal_write does it first
 * if not done): 0, or -1 with errno. */
int journal_cut(struct journal *j);

/* A span of a journal file, as journal_check() sees it. */
struct journal_span {
	enum { JSPAN_RECORDS, JSPAN_DAMAGED, JSPAN_TORN } kind;
	off_t off, end;
	uint64_t first_seq, last_seq;	/* JSPAN_RECORDS */
	bool gave_up;	/* JSPAN_DAMAGED to the end: the search gave up */
};
typedef void (*journal_span_fn)(void *arg, const struct journal_span *s);
/* Every span of the journal name in dirfd, in order: 0, or -1 with errno
 * (EINVAL with why filled: a header no record can verify against). */
int journal_check(int dirfd, const char *name, journal_span_fn fn, void *arg,
		  char *why, size_t whylen);
void journal_add(struct journal *j, const void *payload, size_t len);
int journal_write(struct journal *j);
int journal_sync(struct journal *j);
/* True when records were added or written since the last sync. */
bool journal_dirty(const struct journal *j);
void journal_close(struct journal *j);

#endif
