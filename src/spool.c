#include "spool.h"
#include "archive.h"
#include "batch.h"
#include "journal.h"
#include "symstats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ITEMS_PER_RECORD 65536

/* ---- rejected/ ---- */

/* Move dirfd/name to spool/rejected/<base> (a free variant of it) and write
 * <that>.reason.  Never follows a symlink: rename moves the link itself. */
static int reject(struct home *h, int dirfd, const char *name,
		  const char *base, const char *reason)
{
	char target[300], rname[320], stem[256];
	int i;
	/* NAME and NAME.reason must both fit in 255 bytes: shorten a long
	 * name in the middle, keeping its ".job". */
	size_t len = strlen(base);
	if (len > 230)
		snprintf(stem, sizeof(stem), "%.200s~%s", base,
			 str_has_suffix(base, ".job") ? ".job" : "");
	else
		snprintf(stem, sizeof(stem), "%s", base);
	for (i = 0; i < 1000; i++) {
		if (i)
			snprintf(target, sizeof(target), "%s.%d", stem, i);
		else
			snprintf(target, sizeof(target), "%s", stem);
		if (rename_noreplace(dirfd, name, h->rejected, target) == 0)
			break;
		if (errno != EEXIST)
			return error("spool/%s: cannot move it to spool/rejected/: %s",
				     base, strerror(errno));
	}
	if (i == 1000)
		return error("spool/rejected: no free name for %s", base);
	snprintf(rname, sizeof(rname), "%s.reason", target);
	char *text = xasprintf("%s\n", reason);
	for (char *p = text; *p; p++)
		if (*p == '\n' && p[1])
			*p = ' ';
	if (home_replace(h->rejected, rname, text, strlen(text)) < 0)
		warning("spool/rejected/%s: %s", rname, strerror(errno));
	free(text);
	fsync_dir(h->rejected);
	fsync_dir(dirfd);
	return 0;
}

/* ---- scanning ---- */

struct cand {
	char *name;
	struct timespec mtime;
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

bool spool_job_name(const char *name)
{
	return name[0] != '.' && str_has_suffix(name, ".job");
}

int spool_scan(struct home *h, char ***names, size_t *n)
{
	struct cand *c = NULL;
	size_t nc = 0, cap = 0, all;
	char **entries = home_names(h->spool, &all);
	if (!entries)
		return -1;
	for (size_t k = 0; k < all; k++) {
		const char *name = entries[k];
		struct stat st;
		if (!spool_job_name(name))
			continue;
		if (fstatat(h->spool, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISREG(st.st_mode)) {
			const char *what = S_ISLNK(st.st_mode)	  ? "a symlink"
					   : S_ISFIFO(st.st_mode) ? "a FIFO"
					   : S_ISDIR(st.st_mode)  ? "a directory"
					   : S_ISSOCK(st.st_mode) ? "a socket"
					   : S_ISCHR(st.st_mode)  ? "a character device"
					   : S_ISBLK(st.st_mode)  ? "a block device"
								  : "of an unknown type";
			/* The reason file says which entry, as every other
			 * reason does ("spool/NAME: ..."). */
			char *why = xasprintf("spool/%s: not a regular file "
					      "(%s); not opened",
					      name, what);
			if (reject(h, h->spool, name, name, why) == 0)
				warning("%s; moved to spool/rejected/", why);
			free(why);
			continue;
		}
		GROW(c, cap, nc + 1);
		c[nc].name = xstrdup(name);
		c[nc].mtime = st.st_mtim;
		nc++;
	}
	words_free(entries);
	if (nc)
		qsort(c, nc, sizeof(*c), cmp_cand);
	*names = xmalloc((nc + 1) * sizeof(char *));
	for (size_t i = 0; i < nc; i++)
		(*names)[i] = c[i].name;
	(*names)[nc] = NULL;
	*n = nc;
	free(c);
	return 0;
}

void spool_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* ---- dedup by bytes: state/recent-jobs ---- */

struct recent {
	int fd;
};

static int recent_lock(struct home *h, struct recent *r)
{
	r->fd = openat(h->state, "recent-jobs",
		       O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
		       0644);
	if (r->fd < 0)
		return -1;
	if (lock_within(r->fd, LOCK_WAIT_MS) < 0) {
		int saved = errno;
		close(r->fd);
		errno = saved == EWOULDBLOCK ? EAGAIN : saved;
		return -1;
	}
	remove_stale_temps(h->state, "recent-jobs", 0);
	return 0;
}

/*
 * The batch that claimed (or was submitted with) these bytes within the
 * window, if any.  An entry naming self_id is the job's own submission
 * (submit records the bytes it placed under the id they carry), never a
 * duplicate of it: an id that is taken is caught by the batch itself.
 */
static bool recent_find(struct recent *r, const char *sha, int64_t since,
			const char *self_id, char *dup_of, size_t n)
{
	struct sb text = SB_INIT;
	bool found = false;
	if (lseek(r->fd, 0, SEEK_SET) < 0 ||
	    read_fd_bounded(r->fd, 64 << 20, &text) < 0) {
		sb_release(&text);
		return false;
	}
	for (char *line = text.buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		long long ms;
		char s[80], id[80];
		/* An id no job could give is a forged line: not a dup. */
		if (sscanf(line, "%lld %79s %79s", &ms, s, id) == 3 &&
		    ms >= since && !strcmp(s, sha) && valid_batch_id(id) &&
		    !(self_id && !strcmp(id, self_id))) {
			size_t len = strnlen(id, n - 1);
			memcpy(dup_of, id, len);
			dup_of[len] = '\0';
			found = true;
		}
		line = nl ? nl + 1 : NULL;
	}
	sb_release(&text);
	return found;
}

static void recent_add(struct home *h, struct recent *r, const char *sha,
		       const char *id, int64_t since)
{
	char line[256];
	struct stat st;
	snprintf(line, sizeof(line), "%lld %s %s\n", (long long)now_ms(), sha,
		 id);
	if (write_all(r->fd, line, strlen(line)) < 0)
		warning("state/recent-jobs: %s", strerror(errno));
	/* Keep it small: rewrite with only the entries still in the window. */
	if (fstat(r->fd, &st) == 0 && st.st_size > (1 << 20)) {
		struct sb text = SB_INIT, keep = SB_INIT;
		if (lseek(r->fd, 0, SEEK_SET) == 0 &&
		    read_fd_bounded(r->fd, 64 << 20, &text) == 0) {
			for (char *l = text.buf; l && *l;) {
				char *nl = strchr(l, '\n');
				if (nl)
					*nl = '\0';
				if (atoll(l) >= since)
					sb_addf(&keep, "%s\n", l);
				l = nl ? nl + 1 : NULL;
			}
			home_replace(h->state, "recent-jobs",
				     keep.buf ? keep.buf : "", keep.len);
		}
		sb_release(&text);
		sb_release(&keep);
	}
}

static void recent_unlock(struct recent *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* ---- claiming ---- */

struct claim {
	char dir[64];		/* batches/.claim-XXXX */
	int dirfd;
	int lock_fd;
};

#define NEW_CLAIM_PREFIX ".new-claim-"

/*
 * A claim directory is made as .new-claim-X, locked, and only then renamed
 * to .claim-X: another runner's sweep of interrupted claims (spool_sweep)
 * takes any .claim-* it can lock for a dead claimer's, so it must never see
 * one whose claimer is alive but does not hold the lock yet.
 */
static int claim_dir_create(struct home *h, struct claim *cl)
{
	char tmp[64];
	int tries;
	for (tries = 0; tries < 100; tries++) {
		snprintf(tmp, sizeof(tmp), NEW_CLAIM_PREFIX "%016llx",
			 (unsigned long long)random_u64());
		if (mkdirat(h->batches, tmp, 0755) == 0)
			break;
		if (errno != EEXIST)
			return -1;
	}
	if (tries == 100)
		return -1;
	cl->dirfd = open_dir_at(h->batches, tmp);
	if (cl->dirfd >= 0)
		cl->lock_fd = batch_lock(cl->dirfd);
	snprintf(cl->dir, sizeof(cl->dir), ".claim-%s",
		 tmp + strlen(NEW_CLAIM_PREFIX));
	if (cl->dirfd < 0 || cl->lock_fd < 0 ||
	    rename_noreplace(h->batches, tmp, h->batches, cl->dir) < 0) {
		int saved = errno;
		remove_tree(h->batches, tmp);
		if (cl->dirfd >= 0)
			close(cl->dirfd);
		if (cl->lock_fd >= 0)
			close(cl->lock_fd);
		cl->dirfd = cl->lock_fd = -1;
		cl->dir[0] = '\0';
		errno = saved;
		return -1;
	}
	/* The claim directory's name is durable before a job moves into it:
	 * else a power cut could keep the job's rename out of spool/ and
	 * lose the directory it went into. */
	if (fsync_dir(h->batches) < 0) {
		int saved = errno;
		close(cl->dirfd);
		remove_tree(h->batches, cl->dir);
		close(cl->lock_fd);
		cl->dirfd = cl->lock_fd = -1;
		cl->dir[0] = '\0';
		errno = saved;
		return -1;
	}
	return 0;
}

static void claim_drop(struct home *h, struct claim *cl)
{
	if (cl->dirfd >= 0)
		close(cl->dirfd);
	remove_tree(h->batches, cl->dir);
	fsync_dir(h->batches);
	if (cl->lock_fd >= 0)
		close(cl->lock_fd);
	cl->dirfd = cl->lock_fd = -1;
}

static void gen_id(char *id, size_t n)
{
	snprintf(id, n, "batch-%08x", (unsigned)(random_u64() & 0xffffffffu));
}

static void fill_conf(struct batch_conf *bc, const struct job *j,
		      const struct conf *c, const char *id,
		      const char *job_file, const char *sha)
{
	const struct agent_conf *a = conf_agent(c, j->agent);
	memset(bc, 0, sizeof(*bc));
	bc->id = id;
	bc->name = j->name;
	bc->origin = j->origin;
	bc->agent = j->agent;
	bc->source = j->source ? j->source : a ? a->source : NULL;
	bc->primary_metric = a ? a->primary_metric : NULL;
	bc->job_file = job_file;
	bc->sha256 = sha;
	bc->timeframe = j->timeframe;
	bc->start = j->start;
	bc->end = j->end;
	bc->created_ms = now_ms();
	bc->priority = j->priority;
	bc->concurrency = j->concurrency;
	bc->max_attempts = j->max_attempts ? j->max_attempts : c->max_attempts;
	bc->timeout_ms = j->timeout_ms ? j->timeout_ms
			 : a		? a->timeout_ms
					: 0;
	bc->batch_timeout_ms = j->batch_timeout_ms;
	bc->delays_ms = c->delays_ms;
	bc->ndelays = (uint32_t)c->ndelays;
	bc->jitter_permille = (uint32_t)(c->jitter * 1000 + 0.5);
	bc->retry_on = c->retry_on;
	bc->params = xcalloc(j->nparams + 1, sizeof(*bc->params));
	for (size_t i = 0; i < j->nparams; i++) {
		bc->params[i].key = j->params[i].key;
		bc->params[i].value = j->params[i].value;
	}
	bc->nparams = (uint32_t)j->nparams;
	bc->total_items = (uint32_t)j->nsymbols;
}

static int write_first_records(struct claim *cl, const struct job *j,
			       const struct batch_conf *bc)
{
	struct journal jr;
	struct sb buf = SB_INIT;
	struct rec r;
	if (journal_create(&jr, cl->dirfd, "journal") < 0)
		return -1;
	memset(&r, 0, sizeof(r));
	r.type = R_CLAIMED;
	r.conf = bc;
	r.pid = getpid();
	rec_encode(&r, &buf);
	journal_add(&jr, buf.buf, buf.len);
	for (size_t first = 0; first < j->nsymbols; first += ITEMS_PER_RECORD) {
		size_t n = j->nsymbols - first;
		if (n > ITEMS_PER_RECORD)
			n = ITEMS_PER_RECORD;
		memset(&r, 0, sizeof(r));
		r.type = R_ITEMS;
		r.first = (uint32_t)first;
		r.n = (uint32_t)n;
		r.symbols = (const char *const *)j->symbols + first;
		rec_encode(&r, &buf);
		journal_add(&jr, buf.buf, buf.len);
	}
	sb_release(&buf);
	int rc = journal_sync(&jr);
	int saved = errno;
	journal_close(&jr);
	errno = saved;
	return rc;
}

/* Steps 3-5 of a claim: the job is in cl->dir/job.ini with these bytes. */
static int claim_commit(struct home *h, const struct conf *c, struct claim *cl,
			const char *display, const char *job_file,
			const char *buf, size_t len, int src_dirfd,
			const char *src_name, struct claim_result *res)
{
	struct job j = JOB_INIT;
	struct diag d = DIAG_INIT(display);
	struct recent rc = { -1 };
	struct batch_conf bc = { 0 };
	char sha[65];
	int rcode = -1;

	sha256_hex(buf, len, sha);
	if (job_parse(&j, &d, buf, len, c, h->fd) < 0) {
		diag_print(&d);
		res->status = CLAIM_INVALID;
		const char *t = d.text.buf ? d.text.buf : "invalid job file";
		const char *nl = strchr(t, '\n');
		snprintf(res->reason, sizeof(res->reason), "%.*s%s",
			 (int)(nl ? nl - t : (long)strlen(t)), t,
			 d.errors > 1 ? " (and more problems: runner check)"
				      : "");
		if (src_dirfd >= 0)
			reject(h, src_dirfd, src_name, job_file, res->reason);
		goto out;
	}
	diag_print(&d); /* warnings */
	res->nsymbols = j.nsymbols;
	if (j.id)
		snprintf(res->id, sizeof(res->id), "%s", j.id);
	else
		gen_id(res->id, sizeof(res->id));

	if (recent_lock(h, &rc) < 0) {
		error("state/recent-jobs: %s", strerror(errno));
		res->status = CLAIM_ERROR;
		goto out;
	}
	bool dup = false;
	if (c->dedup_window_ms > 0 &&
	    recent_find(&rc, sha, now_ms() - c->dedup_window_ms, j.id,
			res->dup_of, sizeof(res->dup_of)))
		dup = true;
	struct stat st;
	if (!j.id)
		for (int k = 0; k < 20 && archive_exists(h, res->id); k++)
			gen_id(res->id, sizeof(res->id));
	if (!dup && j.id && (fstatat(h->batches, j.id, &st,
				     AT_SYMLINK_NOFOLLOW) == 0 ||
			     archive_exists(h, j.id))) {
		snprintf(res->dup_of, sizeof(res->dup_of), "%s", j.id);
		dup = true;
	}
	for (int tries = 0; !dup; tries++) {
		fill_conf(&bc, &j, c, res->id, job_file, sha);
		if (write_first_records(cl, &j, &bc) < 0) {
			error("batches/%s/journal: %s", cl->dir,
			      strerror(errno));
			res->status = CLAIM_ERROR;
			goto out;
		}
		/* Its summary.json too, before the batch appears: `list`
		 * reads views only, and must never meet a batch without
		 * one (it would call it damaged). */
		struct batch nb;
		if (batch_replay_dir(cl->dirfd, &nb) < 0 ||
		    meta_write_summary(cl->dirfd, &nb, now_ms()) < 0) {
			error("batches/%s/summary.json: %s", cl->dir,
			      strerror(errno));
			batch_release(&nb);
			res->status = CLAIM_ERROR;
			goto out;
		}
		batch_release(&nb);
		if (rename_noreplace(h->batches, cl->dir, h->batches,
				     res->id) == 0)
			break;
		if (errno != EEXIST && errno != ENOTEMPTY) {
			error("batches/%s: %s", res->id, strerror(errno));
			res->status = CLAIM_ERROR;
			goto out;
		}
		if (j.id || tries > 20) {
			snprintf(res->dup_of, sizeof(res->dup_of), "%s",
				 res->id);
			dup = true;
			break;
		}
		/* A generated id that clashed: draw another. */
		unlinkat(cl->dirfd, "journal", 0);
		free(bc.params);
		bc.params = NULL;
		gen_id(res->id, sizeof(res->id));
	}
	if (dup) {
		res->status = CLAIM_DUPLICATE;
		snprintf(res->reason, sizeof(res->reason), "duplicate of %s",
			 res->dup_of);
		if (src_dirfd >= 0)
			reject(h, src_dirfd, src_name, job_file, res->reason);
		goto out;
	}
	/* The rename was the commit: the claim directory is now batches/<id>
	 * and nothing may undo that, whatever happens next. */
	snprintf(cl->dir, sizeof(cl->dir), "%s", "");
	res->committed = true;
	unlinkat(cl->dirfd, "spool_name", 0);
	recent_add(h, &rc, sha, res->id, now_ms() - c->dedup_window_ms);
	if (fsync_dir(h->batches) < 0) {
		/* Not retried (DURABILITY rule 3): the caller stops, and the
		 * next start adopts the batch from its journal. */
		error("batches: fsync: %s", strerror(errno));
		res->status = CLAIM_ERROR;
		res->fsync_failed = true;
		goto out;
	}
	res->status = CLAIM_OK;
	res->lock_fd = cl->lock_fd;
	cl->lock_fd = -1;
	rcode = 0;
out:
	recent_unlock(&rc);
	free(bc.params);
	job_release(&j);
	diag_release(&d);
	return rcode;
}

int spool_claim(struct home *h, const struct conf *c, const char *name,
		struct claim_result *res)
{
	struct claim cl = { "", -1, -1 };
	struct sb text = SB_INIT;
	struct stat st;
	char display[300];
	int fd = -1;

	memset(res, 0, sizeof(*res));
	res->lock_fd = -1;
	snprintf(display, sizeof(display), "spool/%s", name);
	if (fstatat(h->spool, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		res->status = CLAIM_GONE;
		return 0;
	}
	if (claim_dir_create(h, &cl) < 0) {
		res->status = CLAIM_ERROR;
		error("batches: cannot create a claim directory: %s",
		      strerror(errno));
		goto out;
	}
	if (home_replace(cl.dirfd, "spool_name", name, strlen(name)) < 0 ||
	    rename_noreplace(h->spool, name, cl.dirfd, "job.ini") < 0) {
		if (errno == ENOENT) {
			res->status = CLAIM_GONE;
		} else {
			res->status = CLAIM_ERROR;
			error("%s: cannot claim: %s", display, strerror(errno));
		}
		goto out;
	}
	if (fsync_dir(cl.dirfd) < 0 || fsync_dir(h->spool) < 0) {
		res->status = CLAIM_ERROR;
		res->fsync_failed = true;
		error("%s: fsync: %s", display, strerror(errno));
		goto out_back;
	}
	/* Now private to us: open without following, and check what it is. */
	fd = openat(cl.dirfd, "job.ini",
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	const char *bad = NULL;
	if (fd < 0 || fstat(fd, &st) < 0)
		bad = "cannot be opened";
	else if (!S_ISREG(st.st_mode))
		bad = "not a regular file";
	else if (st.st_nlink != 1)
		bad = "has more than one hard link";
	else if (st.st_uid != geteuid() && st.st_uid != 0)
		bad = "owned by another user";
	else if (st.st_size > (off_t)JOB_MAX_BYTES)
		bad = "larger than 64 MiB";
	else if (read_fd_bounded(fd, JOB_MAX_BYTES, &text) < 0)
		bad = "cannot be read";
	if (bad) {
		char *why = xasprintf("%s: %s", display, bad);
		error("%s", why);
		reject(h, cl.dirfd, "job.ini", name, why);
		snprintf(res->reason, sizeof(res->reason), "%s", why);
		free(why);
		res->status = CLAIM_INVALID;
		goto out;
	}
	/* The batch is the bytes just read: a copy of them replaces the
	 * claimed inode, which a writer holding it open could still extend
	 * with lines never validated. */
	if (home_replace(cl.dirfd, "job.ini", text.buf ? text.buf : "",
			 text.len) < 0) {
		res->status = CLAIM_ERROR;
		error("%s: cannot copy it into batches/%s: %s", display, cl.dir,
		      strerror(errno));
		goto out_back;
	}
	claim_commit(h, c, &cl, display, name, text.buf ? text.buf : "",
		     text.len, cl.dirfd, "job.ini", res);
	if (res->status == CLAIM_ERROR && !res->committed)
		goto out_back;
	goto out;
out_back:
	/* Not claimed after all: the file goes back where it was. */
	if (rename_noreplace(cl.dirfd, "job.ini", h->spool, name) == 0)
		fsync_dir(h->spool);
out:
	if (fd >= 0)
		close(fd);
	sb_release(&text);
	if (cl.dir[0])
		claim_drop(h, &cl);
	else if (cl.dirfd >= 0)
		close(cl.dirfd);
	if (cl.lock_fd >= 0)
		close(cl.lock_fd);
	return res->status == CLAIM_ERROR ? -1 : 0;
}

int spool_claim_bytes(struct home *h, const struct conf *c,
		      const char *display, const char *buf, size_t len,
		      struct claim_result *res)
{
	struct claim cl = { "", -1, -1 };
	const char *base = strrchr(display, '/');
	base = base ? base + 1 : display;
	memset(res, 0, sizeof(*res));
	res->lock_fd = -1;
	if (claim_dir_create(h, &cl) < 0 ||
	    home_replace(cl.dirfd, "job.ini", buf, len) < 0) {
		res->status = CLAIM_ERROR;
		error("batches: cannot create a claim directory: %s",
		      strerror(errno));
		goto out;
	}
	claim_commit(h, c, &cl, display, base, buf, len, -1, NULL, res);
out:
	if (cl.dir[0])
		claim_drop(h, &cl);
	else if (cl.dirfd >= 0)
		close(cl.dirfd);
	if (cl.lock_fd >= 0)
		close(cl.lock_fd);
	return res->status == CLAIM_ERROR ? -1 : 0;
}

/* ---- sweeping half-done claims ---- */

/* A .new-claim-* whose claimer died between its mkdir and its rename: it
 * holds nothing but a lock file.  Left alone while young (its claimer may
 * be about to lock it) or locked. */
static void sweep_new_claim(struct home *h, const char *dir)
{
	struct stat st;
	if (fstatat(h->batches, dir, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISDIR(st.st_mode) || time(NULL) - st.st_mtime < 60)
		return;
	int dirfd = open_dir_at(h->batches, dir);
	if (dirfd < 0)
		return;
	int lock = batch_lock(dirfd);
	close(dirfd);
	if (lock < 0)
		return;
	remove_tree(h->batches, dir);
	close(lock);
}

static void sweep_one(struct home *h, const char *dir)
{
	int dirfd = open_dir_at(h->batches, dir), lock;
	struct journal j;
	struct batch b;
	struct stat st;
	char name[300] = "";
	if (dirfd < 0)
		return;
	lock = batch_lock(dirfd);
	if (lock < 0) { /* its claimer is alive */
		close(dirfd);
		return;
	}
	int fd = openat(dirfd, "spool_name", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read_all(fd, name, sizeof(name) - 1);
		name[n > 0 ? n : 0] = '\0';
		close(fd);
		if (strchr(name, '/') || name[0] == '.' || !name[0])
			name[0] = '\0';
	}
	batch_init(&b);
	if (journal_open(&j, dirfd, "journal", false, batch_replay, &b) == 0 &&
	    b.claimed && b.nitems == b.c.total_items && !j.corrupt) {
		/* The first records are durable: finish the commit. */
		char id[ID_MAX + 1];
		snprintf(id, sizeof(id), "%s", b.c.id);
		journal_close(&j);
		if (rename_noreplace(h->batches, dir, h->batches, id) == 0) {
			fsync_dir(h->batches);
			unlinkat(dirfd, "spool_name", 0);
			info("finished an interrupted claim of batch %s", id);
			goto out;
		}
		char *why = xasprintf("duplicate of %s", id);
		if (fstatat(dirfd, "job.ini", &st, AT_SYMLINK_NOFOLLOW) == 0)
			reject(h, dirfd, "job.ini",
			       name[0] ? name : "interrupted-claim.job", why);
		free(why);
	} else {
		if (j.fd >= 0)
			journal_close(&j);
		if (b.forged[0]) /* never a path: its job is claimed anew */
			warning("batches/%s: journal: %s; not finished as a "
				"claim", dir, b.forged);
		if (fstatat(dirfd, "job.ini", &st, AT_SYMLINK_NOFOLLOW) == 0) {
			/* Not committed: the job goes back to the spool. */
			if (!name[0] ||
			    rename_noreplace(dirfd, "job.ini", h->spool, name) < 0)
				reject(h, dirfd, "job.ini",
				       name[0] ? name : "interrupted-claim.job",
				       "interrupted claim whose name was lost");
			fsync_dir(h->spool);
		}
	}
	remove_tree(h->batches, dir);
	fsync_dir(h->batches);
out:
	batch_release(&b);
	close(lock);
	close(dirfd);
}

int spool_sweep(struct home *h, const struct conf *c)
{
	(void)c;
	/* Temp files a crash left in the runner's own directories; an hour
	 * is far longer than any write of ours takes.  (Dot-files in spool/
	 * itself belong to whoever is writing a job, and are left alone.) */
	int own[] = { h->state, h->control, h->logs, h->rejected };
	for (size_t i = 0; i < sizeof(own) / sizeof(*own); i++)
		remove_stale_temps(own[i], NULL, 3600);
	symstats_sweep(h->state);
	size_t all;
	char **names = home_names(h->batches, &all);
	if (!names)
		return -1;
	char **dirs = NULL;
	size_t n = 0, cap = 0;
	for (size_t k = 0; k < all; k++)
		if (!strncmp(names[k], ".claim-", 7)) {
			GROW(dirs, cap, n + 1);
			dirs[n++] = xstrdup(names[k]);
		} else if (!strncmp(names[k], NEW_CLAIM_PREFIX,
				    strlen(NEW_CLAIM_PREFIX))) {
			sweep_new_claim(h, names[k]);
		}
	words_free(names);
	for (size_t i = 0; i < n; i++) {
		sweep_one(h, dirs[i]);
		free(dirs[i]);
	}
	free(dirs);
	return 0;
}

/* ---- submit ---- */

/* The bytes of a job with "id = ID" added after its [job] header. */
void spool_add_id(const char *buf, size_t len, const char *id, struct sb *out)
{
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl + 1 : end;
		const char *t = p;
		if (p == buf && end - p >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
			t += 3;
		while (t < le && (*t == ' ' || *t == '\t'))
			t++;
		if ((size_t)(le - t) >= 5 && !memcmp(t, "[job]", 5)) {
			sb_add(out, buf, (size_t)(le - buf));
			if (!nl)
				sb_addc(out, '\n');
			sb_addf(out, "id = %s\n", id);
			sb_add(out, le, (size_t)(end - le));
			return;
		}
		p = le;
	}
	/* No [job] line (cannot happen for a valid job): put one first. */
	sb_addf(out, "[job]\nid = %s\n", id);
	sb_add(out, buf, len);
}

/* A file in spool/ that another user placed (not this user, not root). */
static bool spool_squatted(const struct stat *st)
{
	return st->st_uid != geteuid() && st->st_uid != 0;
}

int spool_submit(struct home *h, const struct conf *c, const char *display,
		 const char *buf, size_t len, struct claim_result *res)
{
	struct job j = JOB_INIT;
	struct diag d = DIAG_INIT(display);
	struct recent rc = { -1 };
	struct sb text = SB_INIT;
	struct stat st;
	char sha[65], tmp[300] = "", name[128];
	int fd = -1, rcode = -1;

	memset(res, 0, sizeof(*res));
	res->lock_fd = -1;
	if (job_parse(&j, &d, buf, len, c, h->fd) < 0) {
		diag_print(&d);
		res->status = CLAIM_INVALID;
		goto out;
	}
	diag_print(&d);
	res->nsymbols = j.nsymbols;
	sha256_hex(buf, len, sha);
	if (recent_lock(h, &rc) < 0) {
		error("state/recent-jobs: %s", strerror(errno));
		res->status = CLAIM_ERROR;
		goto out;
	}
	if (c->dedup_window_ms > 0 &&
	    recent_find(&rc, sha, now_ms() - c->dedup_window_ms, NULL,
			res->dup_of, sizeof(res->dup_of))) {
		res->status = CLAIM_DUPLICATE;
		rcode = 0;
		goto out;
	}
	if (j.id) {
		snprintf(res->id, sizeof(res->id), "%s", j.id);
		sb_add(&text, buf, len);
	} else {
		gen_id(res->id, sizeof(res->id));
		spool_add_id(buf, len, res->id, &text);
	}
	snprintf(name, sizeof(name), "%s.job", res->id);
	bool squatted = false;
	if (fstatat(h->batches, res->id, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    (fstatat(h->spool, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	     !(squatted = spool_squatted(&st))) ||
	    archive_exists(h, res->id)) {
		snprintf(res->dup_of, sizeof(res->dup_of), "%s", res->id);
		res->status = CLAIM_DUPLICATE;
		rcode = 0;
		goto out;
	}
	/* spool/.NAME.HEX.tmp (a new file nobody could have planted),
	 * fsync, rename: a reader never sees half a job. */
	fd = home_open_temp(h->spool, name, tmp, sizeof(tmp));
	if (fd < 0 || write_all(fd, text.buf, text.len) < 0 || fsync(fd) < 0 ||
	    close(fd) < 0) {
		fd = -1;
		error("spool/%s: %s", tmp[0] ? tmp : name, strerror(errno));
		if (tmp[0])
			unlinkat(h->spool, tmp, 0);
		res->status = CLAIM_ERROR;
		goto out;
	}
	fd = -1;
	int placed = squatted ? -1
			      : rename_noreplace(h->spool, tmp, h->spool, name);
	if (placed < 0 &&
	    (squatted ||
	     (errno == EEXIST &&
	      fstatat(h->spool, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	      spool_squatted(&st)))) {
		/* Another user's file holds the name: it is not this job
		 * (nor a duplicate of it).  Say so; place the job beside. */
		char alt[128];
		snprintf(alt, sizeof(alt), "%s.%08x.job", res->id,
			 (unsigned)(random_u64() & 0xffffffffu));
		error("spool/%s: a file of another user (uid %u) holds the name; "
		      "this job goes in as spool/%s",
		      name, (unsigned)st.st_uid, alt);
		snprintf(name, sizeof(name), "%s", alt);
		placed = rename_noreplace(h->spool, tmp, h->spool, name);
	}
	if (placed < 0) {
		int saved = errno;
		unlinkat(h->spool, tmp, 0);
		if (saved == EEXIST) {
			snprintf(res->dup_of, sizeof(res->dup_of), "%s", res->id);
			res->status = CLAIM_DUPLICATE;
			rcode = 0;
		} else {
			error("spool/%s: %s", name, strerror(saved));
			res->status = CLAIM_ERROR;
		}
		goto out;
	}
	if (fsync_dir(h->spool) < 0) {
		error("spool: fsync: %s", strerror(errno));
		res->status = CLAIM_ERROR;
		goto out;
	}
	/* The bytes as submitted: the same file submitted again is a
	 * duplicate, although the placed copy carries a generated id. */
	recent_add(h, &rc, sha, res->id, now_ms() - c->dedup_window_ms);
	res->status = CLAIM_OK;
	rcode = 0;
out:
	if (fd >= 0)
		close(fd);
	recent_unlock(&rc);
	sb_release(&text);
	job_release(&j);
	diag_release(&d);
	return rcode;
}
