/*
 * meta: views of a batch.  batch.json (SPEC 7) and `show --json`, the small
 * summary.json that `list` reads instead of every full batch.json, and the
 * human summary of `show` and of the end of `run`.
 *
 * batch.json is written by streaming: the top-level fields as one cJSON
 * object, then one small cJSON object per item, printed and freed, so a
 * batch of a million items never becomes one tree in memory.
 *
 *   meta_write_json(fp, b, now, sh);        the SPEC 7 document
 *   meta_flush(batchdir_fd, b, now, sh);    batch.json + summary.json,
 *                                           each replaced atomically
 *   meta_print_summary(stdout, b, opts);    text for people
 *
 * sh (may be NULL) is the home's shared state, for the failure groups the
 * batch's items belong to.  All functions read the batch only.  Errors:
 * -1 with errno (I/O).
 */
#ifndef RUNNER_META_H
#define RUNNER_META_H

#include "batch.h"

#include <stdio.h>

struct cJSON;
struct shared;

int meta_write_json(FILE *fp, const struct batch *b, int64_t now,
		    struct shared *sh);
int meta_flush(int dirfd, const struct batch *b, int64_t now,
	       struct shared *sh);
/* The SPEC 7 failure_groups entry of one group (NULL: unknown to sh). */
struct cJSON *meta_group_json(struct shared *sh, const char *id);

/* The fields of summary.json, as `list` reads them back. */
struct summary {
	char id[80];
	char name[260];
	char origin[260];
	char agent[64];
	int status;
	int64_t created_ms, started_ms, completed_ms;
	long long total, succeeded, failed, cancelled, pending, running, paused;
};
int meta_read_summary(int dirfd, struct summary *s);
void meta_summary_from_json(const struct cJSON *o, struct summary *s);

/*
 * summary.json: the fields above plus what `stats` aggregates (error_summary,
 * duration_seconds, items_per_second, latency_ms, cpu and rss, and the first
 * 100 failed items with their last error).  The reader refuses files over
 * SUMMARY_MAX_BYTES and returns NULL (errno) when absent or damaged.
 */
#define SUMMARY_MAX_BYTES (1u << 20)
struct cJSON *meta_summary_doc(const struct batch *b, int64_t now);
struct cJSON *meta_read_summary_json(int dirfd);
struct cJSON *meta_summary_json(const struct summary *s);

enum {
	SHOW_ITEMS = 1,	/* every item */
	SHOW_FAILED = 2,/* failed items only */
	SHOW_PATHS = 4,	/* where batch.json and the log are */
};
void meta_print_summary(FILE *fp, const struct batch *b, int64_t now,
			int flags, const char *home_path, struct shared *sh);

#endif
