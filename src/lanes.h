/*
 * lanes: where the children's stdout and stderr go.  A batch's output is a
 * few files, never one per item:
 *
 *   output/S-K.out, output/S-K.err   lane K of session S
 *   output/S.spawned                 one 8-byte entry per spawn (recovery)
 *
 * A session is one runner process's tenure of the batch (1 for the process
 * that claimed it, then 2, 3, ... for an adoption or a --retry-failed run);
 * a lane is one child at a time.  A child writes into two pipes; the runner
 * splices what arrives to the end of its lane's files, so one attempt's
 * stdout is one range [out_off, out_off + out_len) of S-K.out.  The journal
 * holds the ranges (SPAWNED: the offsets, FINISHED: the lengths).  A
 * grandchild that outlives its item holds only a pipe whose reader is
 * gone: it can never write into another attempt's range.
 *
 * A lane is given to the next attempt only once the journal holds the end
 * of the one before (engine: journal_write before reuse), so a reader that
 * sees an attempt still running in the journal may take every byte up to
 * the lane file's end as that attempt's (`runner output --follow`).
 *
 * S.spawned says which reserved attempts were started, for an adopter that
 * finds an attempt reserved but without its SPAWNED record: started (an
 * interrupted attempt) or not (released).
 */
#ifndef RUNNER_LANES_H
#define RUNNER_LANES_H

#include "batch.h"

#include <stdbool.h>
#include <stdint.h>

enum { STREAM_OUT, STREAM_ERR };

struct lane {
	int fd[2];		/* S-K.out, S-K.err (read and write), -1: not
				   open */
	uint64_t end[2];	/* where the next attempt's bytes start */
	bool busy;		/* an attempt writes into it now */
	bool used;		/* an attempt ended in it (reuse: see above) */
};

struct lanes {
	int dirfd;		/* batches/<id>/output, -1: not open yet */
	uint16_t session;	/* 0: not chosen yet */
	int spawned_fd;		/* output/S.spawned */
	struct lane *v;
	size_t n, cap;
};
#define LANES_INIT { .dirfd = -1, .spawned_fd = -1 }

/* A free lane of this process's session (the first call opens output/ and
 * chooses the session): 0 with *lane, or -1 with errno (printed by the
 * caller: the disk). */
int lanes_take(struct lanes *l, int batch_dirfd, uint16_t *lane);
/* The attempt (item, attempt) starts in lane: noted in S.spawned before
 * the child exists.  -1 with errno when the note could not be written. */
int lanes_note_spawn(struct lanes *l, uint16_t lane, uint32_t item,
		     uint32_t attempt);
/* The attempt in lane ended; its bytes end at out_end/err_end. */
void lanes_give(struct lanes *l, uint16_t lane, uint64_t out_end,
		uint64_t err_end);
void lanes_close(struct lanes *l);

/* One stream of one running attempt: what its pipe brings, kept at the
 * end of the lane file up to a budget shared by both streams. */
struct capture {
	int rd;			/* the pipe's read end (O_NONBLOCK), -1: closed */
	int fd;			/* the lane file (not owned) */
	uint64_t off, len;	/* its bytes: [off, off + len) */
	uint64_t dropped;	/* past the budget, or lost to a write error */
	bool cut;		/* the budget ran out: a note was written */
	bool lost;		/* a write failed (disk full): dropped since */
	int lost_errno;
};

/*
 * Move what the pipe holds now into the lane file, at most `rounds` pipe
 * buffers' worth (a child that prints without end cannot hold the runner).
 * *budget: the bytes both streams may still keep; at 0 a note is written
 * once (limit: the configured size, for the note) and the rest is read and
 * dropped.  1: end of file (the pipe is closed), 0: nothing more for now.
 */
int capture_pump(struct capture *c, uint64_t *budget, uint64_t limit,
		 int rounds);
void capture_close(struct capture *c);

/* Recovery.  Every (item, attempt) noted in any session's S.spawned is
 * handed to fn; 0, or -1 when output/ cannot be read (no output/: 0). */
int lanes_each_spawned(int batch_dirfd,
		       void (*fn)(void *arg, uint32_t item, uint32_t attempt),
		       void *arg);

/* Where an attempt's stream is, below the batch directory: path (its lane
 * file, or items/SYMBOL/attempt-N.out|err of a batch from before lanes)
 * and its range (*len UINT64_MAX: no known end, to the end of the file).
 * 0, or -1 ENOENT for a legacy attempt that never started. */
int lanes_stream_where(const char *symbol, uint32_t attempt,
		       const struct attempt *a, int stream, char *path,
		       size_t n, uint64_t *off, uint64_t *len);
/* The file holding an attempt's stream, opened for reading: its lane file
 * (with *off, *len: its range; *len UINT64_MAX while the attempt has no
 * known end), or, for an attempt of a batch from before lanes,
 * items/SYMBOL/attempt-N.out|err whole.  -1 with errno (ENOENT: it printed
 * nothing, or never ran). */
int lanes_open_stream(int batch_dirfd, const char *symbol, uint32_t attempt,
		      const struct attempt *a, int stream, uint64_t *off,
		      uint64_t *len);

#endif
