/*
 * blog: the human batch log, logs/<id>.log, one line per event.  A view of
 * the journal like batch.json: blog_line() formats the line of one record
 * given the batch as it is after that record was applied, so the live
 * scheduler and a rebuild from the journal (after a crash) write the same
 * lines.
 *
 *   blog_line(&out, b, r, now)   appends zero or one line to out
 *   blog_rebuild(logs_fd, dirfd, id)
 *                                rewrites logs/<id>.log from the journal
 *                                (atomically); used when adopting a batch
 *                                whose runner died mid-write
 */
#ifndef RUNNER_BLOG_H
#define RUNNER_BLOG_H

#include "batch.h"

void blog_line(struct sb *out, const struct batch *b, const struct rec *r,
	       int64_t now);
int blog_rebuild(int logs_fd, int batch_dirfd, const char *id);

#endif
