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
/* summary.json alone (a claim writes it before its batch appears, so that
 * no reader finds a batch without a view). */
int meta_write_summary(int dirfd, const struct batch *b, int64_t now);
/* JSON numbers rounded to what they mean (runner(1), JSON FIELDS):
 * seconds to 3 decimals (the clock's milliseconds), milliseconds to 1,
 * ratios to 4, rates (items per second) to 3 significant digits. */
double meta_round(double v, int decimals);
double meta_round_sig(double v, int digits);
/* --json of a command: o on one line of stdout, then freed. */
void meta_print_line(struct cJSON *o);
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
/* summary.json of a batch directory: 0, or -1 when it is missing,
 * unreadable or not meta_summary_ok() (a forged one: read the journal). */
int meta_read_summary(int dirfd, struct summary *s);
/* Its id, agent, name and origin are what a job may give, its status
 * one a batch has. */
bool meta_summary_ok(const struct summary *s);
void meta_summary_from_json(const struct cJSON *o, struct summary *s);
/* Fields of a JSON object as summary.json writes them: a string ("" when
 * absent), a count (0 unless a number in [0, 9e18)), a time (ms; 0 unless
 * a timestamp). */
void json_get_str(const struct cJSON *o, const char *k, char *dst, size_t n);
long long json_get_count(const struct cJSON *o, const char *k);
int64_t json_get_time(const struct cJSON *o, const char *k);
/* k: the time ms as a timestamp; null unless ms > 0. */
void json_add_time(struct cJSON *o, const char *k, int64_t ms);

/* The attempt that decided an item's visible outcome: the last completed. */
const struct attempt *meta_last_done(const struct item *it);
/* The last attempt of an item that kept a result JSON, NULL: none. */
const struct attempt *meta_last_result(const struct item *it);
/* A result JSON's "metrics" as one flat object (nested members named
 * with dots; numbers, strings and booleans), or NULL when it has none. */
struct cJSON *meta_metrics_flat(const char *result);
/* An attempt's duration in ms; -1 unless it started and completed. */
int64_t meta_attempt_duration(const struct attempt *a);

/*
 * batch.json's performance figures, the same for show, summary.json, stats
 * and the report:
 *   wall   from the first attempt's start to the batch's completion (until
 *          now while it runs): duration_seconds;
 *   busy   the time during which at least one attempt of the batch ran,
 *          the union of the attempts' [start, end] intervals (one still
 *          running ends now): pauses, retry delays and the gap before a
 *          retry-failed are not busy: busy_seconds;
 *   rate   final items (succeeded, failed, cancelled) per busy second:
 *          items_per_second; none while busy is 0;
 *   latency  of the attempt that decided each final item.
 */
struct meta_perf {
	double duration_s;	/* wall */
	double busy_s;
	bool has_duration;	/* an attempt has started */
	double items_per_s;
	bool has_rate;		/* busy_s > 0 */
	size_t nlat;
	double lat_avg;
	int64_t lat_p50, lat_p95, lat_max;
};
/* The busy time of b in ms (see above). */
int64_t meta_busy_ms(const struct batch *b, int64_t now);
void meta_perf(const struct batch *b, int64_t now, struct meta_perf *p);

/*
 * summary.json: the fields above plus what `stats` aggregates (error_summary,
 * duration_seconds, busy_seconds, items_per_second, latency_ms, cpu and
 * rss, and the first 100 failed items with their last error).  The reader refuses files over
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
