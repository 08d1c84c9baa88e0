/*
 * cmd_fsck: `runner fsck BATCH [--cut]`: what is wrong with a batch's
 * journal and views, and, with --cut, the one repair that keeps only what
 * verifies: the journal copied aside whole, cut where its records stop,
 * and batch.json/summary.json rebuilt from what is left.
 *
 * The journal is the batch; nothing after a damage is replayed, because
 * a record is only meaningful after every record before it.  So the cut
 * forgets what the records after the damage said (their items run again),
 * and a journal damaged inside its claim or item list cannot be cut into
 * a batch at all: the job is submitted again instead.
 */
#include "cli.h"
#include "batch.h"
#include "home.h"
#include "journal.h"
#include "meta.h"
#include "util.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void print_span(void *arg, const struct journal_span *s)
{
	bool *after_damage = arg;
	long long n = (long long)(s->end - s->off);
	switch (s->kind) {
	case JSPAN_RECORDS:
		printf("  %lld-%lld  records %llu-%llu verify%s\n",
		       (long long)s->off, (long long)s->end,
		       (unsigned long long)s->first_seq,
		       (unsigned long long)s->last_seq,
		       *after_damage ? " (after a damage: not replayed)" : "");
		break;
	case JSPAN_DAMAGED:
		printf("  %lld-%lld  damaged: %lld %s that do not verify%s\n",
		       (long long)s->off, (long long)s->end, n,
		       plural(n, "byte", "bytes"),
		       s->gave_up ? " (the search for a record gave up)" : "");
		*after_damage = true;
		break;
	case JSPAN_TORN:
		printf("  %lld-%lld  torn tail: %lld %s that do not verify (a "
		       "runner cuts them when it takes the batch)\n",
		       (long long)s->off, (long long)s->end, n,
		       plural(n, "byte", "bytes"));
		break;
	}
}

/* What is wrong with a view of dirfd (batch.json, summary.json) against
 * the replayed batch: NULL when it agrees. */
static const char *view_fault(int dirfd, const char *name,
			      const struct batch *b)
{
	struct sb text = SB_INIT;
	const char *bad = NULL;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? "missing" : "unreadable";
	if (read_fd_bounded(fd, 64u << 20, &text) < 0) {
		close(fd);
		sb_release(&text);
		return "unreadable or too big";
	}
	close(fd);
	cJSON *o = cJSON_ParseWithLength(text.buf ? text.buf : "", text.len);
	sb_release(&text);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return "does not parse as JSON";
	}
	struct summary v, want;
	cJSON *doc = meta_summary_doc(b, now_ms());
	meta_summary_from_json(o, &v);
	meta_summary_from_json(doc, &want);
	/* A view is written only from durable records: it may be behind
	 * the journal (a live batch), never ahead of it. */
	if (strcmp(v.id, want.id) || v.total != want.total ||
	    v.created_ms != want.created_ms ||
	    v.succeeded > want.succeeded || v.failed > want.failed ||
	    v.cancelled > want.cancelled ||
	    (status_final(v.status) && !b->final) ||
	    (b->final && (v.status != want.status ||
			  v.succeeded != want.succeeded ||
			  v.failed != want.failed ||
			  v.cancelled != want.cancelled)))
		bad = "disagrees with the journal";
	cJSON_Delete(doc);
	cJSON_Delete(o);
	return bad;
}

/* Copy the journal whole to a new name beside it (kept for whoever looks
 * into the damage), durably: 0, or -1 (printed). */
static int keep_copy(int dirfd, const char *id, char *name, size_t n)
{
	char stamp[32], buf[65536];
	time_t t = time(NULL);
	struct tm tm;
	int in, out = -1, rc = -1;
	ssize_t got;
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(name, n, "journal.damaged-%s", stamp);
	in = openat(dirfd, "journal", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return error("batches/%s/journal: %s", id, strerror(errno));
	out = openat(dirfd, name,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (out < 0) {
		error("batches/%s/%s: %s", id, name, strerror(errno));
		goto out_close_in;
	}
	while ((got = read(in, buf, sizeof(buf))) > 0)
		if (write_all(out, buf, (size_t)got) < 0)
			break;
	if (got != 0 || fsync(out) < 0 || close(out) < 0 ||
	    fsync_dir(dirfd) < 0) {
		error("batches/%s/%s: %s", id, name, strerror(errno));
		if (got != 0)
			close(out);
		unlinkat(dirfd, name, 0);
		goto out_close_in;
	}
	rc = 0;
out_close_in:
	close(in);
	return rc;
}

/* --cut: the batch's lock held, the journal cut at off (kept whole under
 * another name first), the views rebuilt.  An exit status. */
static int cut(int dirfd, const char *id, off_t off, bool journal_bad)
{
	char kept[64];
	struct batch b;
	int lock = batch_lock(dirfd), rc = EX_IOERR_;
	if (lock < 0) {
		if (errno == EWOULDBLOCK)
			return error("batch %s: a runner holds it; stop it "
				     "first", id), EX_TEMPFAIL_;
		return error("batches/%s/lock: %s", id, strerror(errno)),
		       EX_IOERR_;
	}
	if (journal_bad) {
		int fd;
		if (keep_copy(dirfd, id, kept, sizeof(kept)) < 0)
			goto out_unlock;
		fd = openat(dirfd, "journal",
			    O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || ftruncate(fd, off) < 0 || fdatasync(fd) < 0) {
			error("batches/%s/journal: %s", id, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out_unlock;
		}
		close(fd);
		printf("batches/%s/journal: kept whole as %s; cut at offset "
		       "%lld\n", id, kept, (long long)off);
	}
	if (batch_replay_dir(dirfd, &b) < 0 || b.damage[0]) {
		error("batches/%s/journal: %s", id,
		      b.damage[0] ? b.damage : strerror(errno));
	} else if (meta_flush(dirfd, &b, now_ms(), view_shared()) < 0) {
		error("batches/%s/batch.json: %s", id, strerror(errno));
	} else {
		printf("batches/%s: batch.json and summary.json rebuilt from "
		       "the journal (%s, %zu of %lu items final)\n", id,
		       batch_status_name(batch_status(&b)),
		       b.count[ST_SUCCEEDED] + b.count[ST_FAILED] +
			       b.count[ST_CANCELLED],
		       (unsigned long)b.c.total_items);
		rc = 0;
	}
	batch_release(&b);
out_unlock:
	close(lock);
	return rc;
}

int cmd_fsck(void)
{
	struct cmdopt o[] = { { "--help" }, { "--cut" } };
	char **pos;
	size_t npos;
	char why[160];
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "fsck",
			   "usage: runner fsck BATCH [--cut]\n\n"
			   "Check a batch's journal and views: every span of the "
			   "journal with its\noffsets (records that verify, damaged "
			   "bytes, a torn tail), whether the\nitem list is whole, "
			   "whether batch.json and summary.json agree with it.\n"
			   "Exit 0 when all is well, 74 when something is damaged.  "
			   "--cut keeps the\njournal whole as journal.damaged-TIME, "
			   "cuts it where its records stop and\nrebuilds the views "
			   "(what the records after the damage said is lost:\n"
			   "their items run again).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (g.json) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("--json is not supported by fsck");
	}
	if (npos != 1) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("fsck: name one batch");
	}
	const char *id = pos[0];
	int dirfd;
	if ((rc = open_home()) || (dirfd = open_batch_dir(id)) < 0) {
		free_cmd(o, NOPTS(o), pos);
		return rc ? rc : EX_NO_SUCH;
	}
	struct stat st;
	bool after_damage = false;
	off_t size = fstatat(dirfd, "journal", &st, AT_SYMLINK_NOFOLLOW) == 0
			     ? st.st_size : 0;
	printf("batch %s: journal of %lld %s\n", id, (long long)size,
	       plural(size, "byte", "bytes"));
	if (journal_check(dirfd, "journal", print_span, &after_damage, why,
			  sizeof(why)) < 0) {
		rc = EX_IOERR_;
		error("batches/%s/journal: %s; no record can be kept (the job "
		      "is in batches/%s/job.ini: submit it again)", id,
		      why[0] ? why : strerror(errno), id);
		goto out;
	}
	struct batch b;
	struct journal j;
	batch_init(&b);
	if (journal_open(&j, dirfd, "journal", false, batch_replay, &b) < 0) {
		rc = EX_IOERR_;
		error("batches/%s/journal: %s", id,
		      j.why[0] ? j.why : strerror(errno));
		batch_release(&b);
		goto out;
	}
	journal_close(&j);
	bool journal_bad = batch_damaged(&j, &b) || j.torn_bytes;
	bool whole = b.claimed && b.nitems == b.c.total_items;
	printf("  items     %zu of %lu listed%s\n", b.nitems,
	       (unsigned long)b.c.total_items,
	       whole ? "" : " (the item list is not whole)");
	const char *bj = whole ? view_fault(dirfd, "batch.json", &b) : NULL;
	const char *sj = whole ? view_fault(dirfd, "summary.json", &b) : NULL;
	printf("  batch.json    %s\n", bj ? bj : "agrees with the journal");
	printf("  summary.json  %s\n", sj ? sj : "agrees with the journal");
	if (b.damage[0])
		printf("journal: %s\n", b.damage);
	else if (j.torn_bytes)
		printf("a torn tail of %lld %s at offset %lld\n",
		       (long long)j.torn_bytes,
		       plural(j.torn_bytes, "byte", "bytes"), (long long)j.size);
	rc = b.damage[0] || bj || sj ? EX_IOERR_ : 0;
	if (!o[1].seen) {
		if (rc && whole)
			printf("runner fsck %s --cut: keep the journal whole "
			       "as journal.damaged-TIME, cut it at offset %lld, "
			       "rebuild the views\n", id, (long long)j.size);
	} else if (!whole) {
		rc = EX_IOERR_;
		error("batch %s: cutting at offset %lld keeps no whole item "
		      "list: not cut (the job is in batches/%s/job.ini: submit "
		      "it again)", id, (long long)j.size, id);
	} else if (rc || journal_bad) {
		rc = cut(dirfd, id, j.size, journal_bad);
	} else {
		printf("nothing to cut\n");
	}
	batch_release(&b);
out:
	close(dirfd);
	free_cmd(o, NOPTS(o), pos);
	if (fflush(stdout) != 0 && !rc)
		rc = EX_IOERR_;
	return rc;
}
