/*
 * archive: retention of final batches (SPEC 3 `archive`, `restore`,
 * `list --archived`; SPEC 5 [retention]; DURABILITY "Archiving, then
 * deleting").
 *
 * A final batch becomes batches/archive/<id>.tar.gz (.tar.zst; .tar for
 * compression = none), a pax tar written with libarchive.  Members:
 * <id>/summary.json, batch.json, job.ini, journal, then the rest of the
 * batch's tree (items/...; not its lock, not dot-files at its top), then
 * <id>/<id>.log (logs/<id>.log), and last <id>/.manifest ("CRC32 SIZE
 * PATH" per file, PATH %-escaped), which restore checks every file
 * against.  Only regular files and directories are stored: a symlink or
 * special file an agent left in items/ is skipped with a warning.
 *
 * batches/archive/index.jsonl: one line per archive, the batch's whole
 * summary.json with "archive" (file name), "archived_at", "archive_bytes"
 * and "unpacked_bytes" (what its files hold: the most restore writes)
 * added; `list --archived` and `stats` read it and open no archive.  It
 * is a cache, the files are the truth: readers skip lines whose file is
 * gone (and torn lines) and read summary.json out of an archive the index
 * lacks, or whose line holds the summary fields only (an older version's
 * rewrite); archive_run() and archive_restore() rewrite it atomically when
 * it disagrees with the directory, every line whole.
 *
 * Archiving one batch (under batches/archive/.lock and the batch's lock):
 * write .<file>.HEX16.tmp, fsync, read it back and check every member
 * against the source (count, sizes, CRC-32), rename it to <file> (no
 * replace), fsync the directory, append the index line, rename batches/<id>
 * to batches/.trash-<id>-HEX, fsync, remove it and logs/<id>.log.  Every
 * archive_run() and archive_restore() first sweeps what a crash left: temp
 * files, trash and restore scratch go; a batch directory whose archive
 * exists is finished if the archive matches it, else the batch stays and
 * the archive moves to batches/archive/superseded/ (never deleted); a
 * half-done restore is completed or undone; the log of an archived batch
 * goes.  A crash leaves the batch or its archive, never neither.
 *
 * Errors: functions print their own errors ("runner: WHAT: WHY") and
 * return -1 with errno set, except that a missing archive is silent
 * (ENOENT) for the caller to say "no such batch" its way.
 * archive_restore() is command-level and returns an exit status.
 */
#ifndef RUNNER_ARCHIVE_H
#define RUNNER_ARCHIVE_H

#include "batch.h"
#include "conf.h"
#include "home.h"
#include "meta.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

struct cJSON;

struct archive_opts {
	/* Archive final batches completed at least this long ago (0: every
	 * final batch); -1: archive none. */
	int64_t older_than_ms;
	/* Delete archives of batches completed at least this long ago;
	 * -1: never. */
	int64_t delete_after_ms;
	enum compression compression;
	bool dry_run;	/* report what would happen; change nothing (no
			 * sweep, no lock, no batches/archive/ created) */
	int64_t now_ms;	/* 0: the clock (tests move time forward) */
};
/* [retention]: archive_after, delete_archives_after (0 there means never
 * delete), compression. */
void archive_opts_from_conf(struct archive_opts *o, const struct conf *c);

enum archive_action {
	ARCH_ARCHIVED,	/* batch -> archive (or would be, dry_run) */
	ARCH_DELETED,	/* archive deleted (or would be) */
	ARCH_SKIPPED,	/* old enough, but a live runner owns it */
	ARCH_FAILED,	/* tried, kept the batch; error printed */
	ARCH_RECOVERED,	/* crash leftover resolved; why says how */
};
const char *archive_action_name(enum archive_action a);

struct archive_event {
	enum archive_action action;
	bool dry_run;
	const char *id;
	const char *file;	/* name in batches/archive/, or NULL */
	int64_t completed_ms;	/* 0: unknown */
	int64_t age_ms;		/* now - completed_ms (-1: unknown) */
	uint64_t bytes;		/* of the archive (0 in a dry run) */
	const char *why;	/* SKIPPED/FAILED/RECOVERED: short text */
};
typedef void (*archive_event_fn)(void *arg, const struct archive_event *ev);
/* {"action","dry_run","batch_id","archive","completed_at","age_seconds",
 * "bytes","reason"} for `archive --json` (one object per line). */
struct cJSON *archive_event_json(const struct archive_event *ev);

/* What a crash left of an archive or a restore, swept as archive_run()
 * and archive_restore() do first (a restore cut short is finished or
 * undone, so that the batch is in batches/ or archived, never under a
 * scratch name); nothing if another process holds the archive lock.
 * `run` and the daemon call it at start. */
int archive_recover(struct home *h);

/*
 * Apply retention once: sweep crash leftovers, archive every final batch
 * old enough whose lock is free, delete archives old enough.  fn (may be
 * NULL) hears of each action as it happens.  Returns 0, or -1 when
 * something failed (printed; each failed batch is kept whole) with errno
 * that of the first failure: EWOULDBLOCK, another archive or restore
 * holds the home's archive lock (exit 75); ENOSPC, EDQUOT, EIO (also a
 * failed verification), EROFS: the run stopped there (74); others (a
 * file that changed while it was read, EAGAIN) went on with the rest.
 * Takes seconds per gigabyte of batch data: a daemon should run it in a
 * child process or accept the pause.
 */
int archive_run(struct home *h, const struct archive_opts *o,
		archive_event_fn fn, void *arg);

/* Every archived batch (as archive_list) as a JSON document: its index
 * line, which holds the batch's whole summary.json, so that `stats` gives
 * an archived batch the figures it had in batches/. */
int archive_index_docs(struct home *h,
		       void (*fn)(void *arg, const struct cJSON *doc),
		       void *arg);

/* One archived batch as the index (or the archive itself) describes it. */
struct archive_info {
	struct summary s;
	char file[96];		/* "<id>.tar.gz" in batches/archive/ */
	int64_t archived_ms;
	uint64_t bytes;
	uint64_t unpacked;	/* "unpacked_bytes": what its files hold, the
				   most restore writes; 0: not recorded */
};
/* Return 0 to go on, anything else stops the walk (and is returned). */
typedef int (*archive_list_fn)(void *arg, const struct archive_info *ai);
/* Every archived batch, by file name (sort as the view wants); no archive
 * is extracted, nothing is written (a read-only home works). */
int archive_list(struct home *h, archive_list_fn fn, void *arg);
/* meta_summary_json() plus "archived": true, "archive" (path below the
 * home), "archived_at", "archive_bytes". */
struct cJSON *archive_info_json(const struct archive_info *ai);

/* The archive of batch id into ai: 0; -1 ENOENT (silent) when there is
 * none, EINVAL (printed) when its summary cannot be read. */
int archive_find(struct home *h, const char *id, struct archive_info *ai);
bool archive_exists(struct home *h, const char *id);

/*
 * Stream one member out of batch id's archive without extracting it.
 * member is relative to the batch directory: "batch.json", "journal",
 * "job.ini", "items/AAPL/attempt-1.out", or "<id>.log" for the log.
 * read_member appends to out (at most max bytes, else EFBIG); copy_member
 * writes to fd.  -1 ENOENT (silent) when there is no such archive or
 * member.
 */
int archive_read_member(struct home *h, const char *id, const char *member,
			size_t max, struct sb *out);
int archive_copy_member(struct home *h, const char *id, const char *member,
			int fd);
/*
 * Replay an archived batch's journal into b (batch_init'ed here; the
 * caller batch_release()s it, also on failure), for `show` without
 * --json.  The journal is copied to a private directory under $TMPDIR
 * (the journal reader wants a file) and removed at once.
 */
int archive_load_batch(struct home *h, const char *id, struct batch *b);

/*
 * Bring batch id back to batches/<id> and logs/<id>.log, then remove its
 * archive and index line.  Every member is checked before it is written
 * (a "<id>/..." path without "." or ".." parts, a regular file or a
 * directory: no symlink, hardlink or device) and extraction uses
 * libarchive's secure flags into a private batches/.restore-<id>-HEX, so
 * a hostile archive writes nothing outside it; files are checked against
 * the manifest, fsynced, and the directory renamed into place.  It writes
 * no more than the index's unpacked_bytes (when the line has it) nor than
 * the free space, and replays the journal (checked as a new job's, and
 * naming this batch) before the batch is placed.  libarchive
 * extracts relative to the working directory: this fchdir()s into the
 * scratch directory and back, so it is not for a threaded caller.
 * Returns an exit status, errors printed: 0; 66 no such archive; 73 a
 * batch <id> exists; 65 the archive would write outside the batch
 * directory or past its bound, or its journal is refused (kept); 74 corrupt archive or I/O error; 75 the
 * archive lock is held.
 */
int archive_restore(struct home *h, const char *id);

#endif
