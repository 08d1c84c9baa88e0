#include "adopt.h"
#include "attempt.h"
#include "history.h"
#include "views.h"
#include "job.h"
#include "sched.h"
#include "archive.h"
#include "blog.h"
#include "meta.h"
#include "remote.h"
#include "runlog.h"
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_batches(const void *a, const void *b)
{
	const struct ebatch *x = *(struct ebatch *const *)a;
	const struct ebatch *y = *(struct ebatch *const *)b;
	if (x->b.c.priority != y->b.c.priority)
		return x->b.c.priority > y->b.c.priority ? -1 : 1;
	if (x->b.c.created_ms != y->b.c.created_ms)
		return x->b.c.created_ms < y->b.c.created_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

void adopt_free_batch(struct ebatch *eb)
{
	if (!eb)
		return;
	if (eb->log)
		fclose(eb->log);
	if (eb->j.fd >= 0)
		journal_close(&eb->j);
	if (eb->items_fd >= 0)
		close(eb->items_fd);
	if (eb->tmp_fd >= 0)
		close(eb->tmp_fd);
	lanes_close(&eb->lanes);
	if (eb->lock_fd >= 0)
		close(eb->lock_fd);
	if (eb->dirfd >= 0)
		close(eb->dirfd);
	batch_release(&eb->b);
	sb_release(&eb->env_base);
	free(eb->requeue.v);
	for (size_t i = eb->prep_head; i < eb->nprepared; i++)
		engine_prep_close(&eb->prepared[i]);
	free(eb->prepared);
	free(eb->marks);
	free(eb->deferred.v);
	free(eb->reserved.v);
	free(eb->unreported.v);
	free(eb->retry.v);
	free(eb->id);
	free(eb);
}

/* The attempts S.spawned says were started, of the items reserved. */
struct spawned_look {
	struct batch *b;
	uint8_t *started;	/* per item: its reserved attempt started */
};

static void saw_spawn(void *arg, uint32_t item, uint32_t attempt)
{
	struct spawned_look *l = arg;
	if (item < l->b->nitems && l->b->items[item].state == ST_STARTING &&
	    l->b->items[item].nattempts == attempt)
		l->started[item] = 1;
}

/* Was this reserved attempt of a batch from before output lanes given
 * its files (and so maybe started)? */
static bool legacy_outputs_exist(struct ebatch *eb, const char *symbol,
				 uint32_t attempt)
{
	char path[96];
	struct stat st;
	if (eb->items_fd < 0)
		return false;
	snprintf(path, sizeof(path), "%s/attempt-%u.out", symbol, attempt);
	return fstatat(eb->items_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* An interrupted attempt's output: up to the end of its lane's files,
 * which its dead runner no longer writes. */
static void interrupted_output(struct ebatch *eb, const struct attempt *a,
			       struct rec *r)
{
	if (!a->session || !a->started_ms)
		return;
	uint64_t len[2] = { 0, 0 };
	for (int s = 0; s < 2; s++) {
		char path[64];
		struct stat st;
		uint64_t off, unused;
		lanes_stream_where(NULL, 0, a, s, path, sizeof(path), &off,
				   &unused);
		if (fstatat(eb->dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && (uint64_t)st.st_size > off)
			len[s] = (uint64_t)st.st_size - off;
	}
	r->out_flags = OUTF_ENDED;
	r->out_len = len[0];
	r->err_len = len[1];
}

/*
 * Adopting a batch whose runner died: whatever it left running is stopped,
 * its attempts are recorded as interrupted (a reservation whose files were
 * never made was certainly not spawned: released, not an attempt), and
 * its log is rebuilt.  A batch left waiting only on paused items (a run
 * that returned, a daemon that stopped) is taken up, not adopted.
 * 0, or -1 (printed) when its journal cannot be written.
 */
static int take_adopt(struct engine *e, struct ebatch *eb)
{
	const char *id = eb->id;
	/* Adopting: whatever the previous runner left running is
	 * stopped, and its attempts are recorded as interrupted. */
	struct batch *b = &eb->b;
	/* The home and the id together: ids repeat across homes. */
	char *who[2] = { xasprintf("RUNNER_HOME=%s", e->home_abs),
			 xasprintf("RUNNER_BATCH_ID=%s", id) };
	int stopped = engine_kill_env(e, (const char *const *)who, 2);
	free(who[0]);
	free(who[1]);
	/* Left waiting only on paused items (a run that returned,
	 * a daemon that stopped) is a hand-over, not an orphan. */
	bool handed = b->count[ST_PAUSED] && !b->count[ST_RUNNING] &&
		      !b->count[ST_STARTING] && !b->count[ST_PENDING] &&
		      !b->count[ST_RETRY_WAIT];
	struct rec ad = { .type = R_ADOPTED, .time = now_ms(),
			  .pid = getpid(),
			  .reason = handed ? ADOPT_PAUSED : ADOPT_ORPHAN };
	batch_record(b, &eb->j, &ad);
	size_t interrupted = 0;
	struct spawned_look look = { b, xcalloc(b->nitems + 1, 1) };
	if (b->count[ST_STARTING] &&
	    lanes_each_spawned(eb->dirfd, saw_spawn, &look) < 0)
		warning("batches/%s/output: %s; its reserved attempts are "
			"taken as started", id, strerror(errno));
	for (size_t i = 0; i < b->nitems; i++) {
		struct item *it = &b->items[i];
		if (it->state != ST_RUNNING && it->state != ST_STARTING)
			continue;
		if (it->state == ST_STARTING && !it->cancel_requested &&
		    !look.started[i] &&
		    !legacy_outputs_exist(eb, it->symbol, it->nattempts)) {
			/* Reserved, but its files were never made: it
			 * was certainly not spawned.  Not an attempt. */
			struct rec rel = { .type = R_RELEASE,
					   .item = (uint32_t)i,
					   .attempt = it->nattempts };
			batch_record(b, &eb->j, &rel);
			continue;
		}
		/* Its runner died under it: an interruption that counts. */
		struct attempt_in in = {
			.end = it->cancel_requested ? ATT_CANCELLED : ATT_STOPPED,
			.ended_runner = true,
			.interruptions = it->interruptions,
		};
		struct attempt_decision d;
		attempt_assess(&in, &d);
		attempt_decide(&in, false, &d);
		struct rec r = {
			.type = R_FINISHED, .item = (uint32_t)i,
			.attempt = it->nattempts, .time = now_ms(),
			.outcome = OUT_INTERRUPTED, .exit_code = -1,
			.matches = -1, .progress = -1,
			.category = d.counts_interruption ? CAT_ENGINE : CAT_NONE,
			.next_state = d.next_state,
			.error_message = d.next_state == ST_FAILED
						 ? ATTEMPT_INTERRUPTED_FAIL
						 : "interrupted: its runner died",
		};
		interrupted_output(eb, &it->log[it->nattempts - 1], &r);
		batch_record(b, &eb->j, &r);
		interrupted++;
		/* A step its launcher (now killed) left on a node. */
		char task[128], job[512];
		snprintf(task, sizeof(task), "%s.%u.task", it->symbol,
			 it->nattempts);
		remote_job_name(job, sizeof(job), e->home_abs, id, it->symbol,
				it->nattempts);
		if (eb->agent && eb->agent->wrapper &&
		    remote_signal(eb->tmp_fd, task, job, SIGKILL) > 0)
			stopped++;
	}
	free(look.started);
	if (journal_sync(&eb->j) < 0) {
		error("batches/%s/journal: %s", id, strerror(errno));
		return -1;
	}
	if (blog_rebuild(e->h->logs, eb->dirfd, id) < 0)
		warning("logs/%s.log: %s", id, strerror(errno));
	if (interrupted || stopped)
		info("batch %s: adopted; %zu %s interrupted, %d "
		     "leftover %s stopped",
		     id, interrupted,
		     plural(interrupted, "attempt", "attempts"), stopped,
		     plural(stopped, "process",
			    "processes"));
	if (handed && !interrupted && !stopped)
		runlog_printf(e->o.runlog,
			      "took up batch %s (it waits on paused items)",
			      id);
	else
		runlog_printf(e->o.runlog,
			      "adopted batch %s: %zu %s interrupted, %d "
			      "leftover %s stopped",
			      id, interrupted,
			      plural(interrupted, "attempt", "attempts"),
			      stopped,
			      plural(stopped, "process", "processes"));
	return 0;
}

/* A batch taken: its log open, its retries on the heap, its environment
 * built, among the engine's batches by priority, shown at once. */
static void take_attach(struct engine *e, struct ebatch *eb, bool fresh)
{
	const char *id = eb->id;
	char logname[128];
	snprintf(logname, sizeof(logname), "%s.log", id);
	int lfd = openat(e->h->logs, logname,
			 O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			 0644);
	if (lfd < 0 || !(eb->log = fdopen(lfd, "a"))) {
		warning("logs/%s: %s", logname, strerror(errno));
		if (lfd >= 0)
			close(lfd);
	}
	if (fresh && eb->log) {
		/* The claim wrote its records before this log existed. */
		struct rec r = { .type = R_CLAIMED };
		engine_log_rec(eb, &r);
	}
	for (size_t i = 0; i < eb->b.nitems; i++)
		if (eb->b.items[i].state == ST_RETRY_WAIT)
			queue_heap_push(&eb->retry, eb->b.items[i].next_retry_at,
				  (uint32_t)i);
	if (eb->b.c.batch_timeout_ms > 0)
		eb->deadline_ms = add_sat(eb->b.c.created_ms,
					  eb->b.c.batch_timeout_ms);
	sched_env_base(e, eb);
	eb->meta_dirty = true;
	GROW(e->batches, e->capbatches, e->nbatches + 1);
	e->batches[e->nbatches++] = eb;
	qsort(e->batches, e->nbatches, sizeof(*e->batches), cmp_batches);
	progress_add(&e->prog, eb->b.nitems,
		     eb->b.count[ST_SUCCEEDED], eb->b.count[ST_FAILED] +
						      eb->b.count[ST_CANCELLED]);
	e->seen_gen = 0; /* an open group may concern it */
	views_flush_meta(e, eb, true);
}

int engine_take(struct engine *e, const char *id, int lock_fd, int flags)
{
	struct ebatch *eb = xcalloc(1, sizeof(*eb));
	bool fresh = lock_fd >= 0;
	eb->id = xstrdup(id);
	eb->j.fd = eb->items_fd = eb->tmp_fd = eb->dirfd = -1;
	eb->lanes = (struct lanes)LANES_INIT;
	eb->lock_fd = lock_fd;
	batch_init(&eb->b);

	if (engine_find(e, id)) {
		adopt_free_batch(eb);
		return 1;
	}
	if (!valid_batch_id(id)) {
		adopt_free_batch(eb);
		return error("%s: not a batch id", id);
	}
	eb->dirfd = open_dir_at(e->h->batches, id);
	if (eb->dirfd < 0) {
		int saved = errno;
		adopt_free_batch(eb);
		errno = saved;
		return error("batches/%s: %s", id, strerror(errno));
	}
	if (eb->lock_fd < 0 && (eb->lock_fd = batch_lock(eb->dirfd)) < 0) {
		int saved = errno;
		adopt_free_batch(eb);
		if (saved == EWOULDBLOCK)
			return 1; /* a live runner owns it */
		return error("batches/%s/lock: %s", id, strerror(saved));
	}
	/* We hold its lock: a temp file in it is a crashed writer's. */
	remove_stale_temps(eb->dirfd, NULL, 0);
	int jrc = journal_open(&eb->j, eb->dirfd, "journal", true,
			       batch_replay, &eb->b);
	if (eb->b.forged[0] ||
	    (jrc == 0 && eb->b.claimed && strcmp(eb->b.c.id, id))) {
		/* A forged journal: nothing is run or made for it. */
		if (!eb->b.forged[0])
			snprintf(eb->b.forged, sizeof(eb->b.forged),
				 "it is the journal of batch %s", eb->b.c.id);
		error("batch %s: journal: %s; the batch is refused (left as "
		      "it is)", id, eb->b.forged);
		adopt_free_batch(eb);
		return -1;
	}
	if (jrc < 0 || batch_damaged(&eb->j, &eb->b)) {
		/* Left as it is, torn tail included, for runner fsck. */
		error("batches/%s/journal: %s; the batch is left as it is "
		      "(runner fsck %s)", id,
		      eb->j.fd >= 0 ? eb->b.damage
		      : eb->j.why[0] ? eb->j.why : strerror(errno), id);
		adopt_free_batch(eb);
		return -1;
	}
	if (eb->j.torn_bytes)
		info("batches/%s/journal: cut a torn tail of %lld %s", id,
		     (long long)eb->j.torn_bytes,
		     plural(eb->j.torn_bytes, "byte", "bytes"));
	if (eb->b.final && !(flags & TAKE_FINAL)) {
		/* Nothing to run; make sure the views say so. */
		if (meta_flush(eb->dirfd, &eb->b, now_ms(),
			       e->sh_ok ? &e->sh : NULL) < 0)
			warning("batches/%s/batch.json: %s", id,
				strerror(errno));
		/* (and the history, in case its runner died before) */
		if (history_add_batch(e->h->state, &eb->b) < 0)
			warning("state/history: %s; the index is built again at its next use",
			strerror(errno));
		adopt_free_batch(eb);
		return 1;
	}
	eb->agent = conf_agent(e->c, eb->b.c.agent);
	if (!eb->agent) {
		error("batch %s: agent '%s' is not defined in %s; not run", id,
		      eb->b.c.agent, e->c->path);
		adopt_free_batch(eb);
		return -1;
	}
	/* tmp/: result files until read; checkpoints/: an agent's own; a
	 * batch from before output lanes keeps its items/ (checkpoints). */
	const char *dir = "tmp";
	if (ensure_dir(eb->dirfd, "tmp", 0755) < 0 ||
	    (eb->tmp_fd = open_dir_at(eb->dirfd, "tmp")) < 0 ||
	    ensure_dir(eb->dirfd, dir = "checkpoints", 0755) < 0) {
		error("batches/%s/%s: %s", id, dir, strerror(errno));
		adopt_free_batch(eb);
		return -1;
	}
	eb->items_fd = open_dir_at(eb->dirfd, "items");

	if (!fresh && !eb->b.final && take_adopt(e, eb) < 0) {
		adopt_free_batch(eb);
		return -1;
	}
	take_attach(e, eb, fresh);
	return 0;
}

int engine_take_orphans(struct engine *e)
{
	size_t all;
	char **names = home_names(e->h->batches, &all);
	if (!names)
		return -1;
	char **ids = NULL;
	size_t n = 0, cap = 0;
	for (size_t k = 0; k < all; k++) {
		const char *name = names[k];
		if (name[0] == '.' || !strcmp(name, "archive") ||
		    !valid_batch_id(name))
			continue;
		/* A final batch is never an orphan: skip without locking. */
		int bfd = open_dir_at(e->h->batches, name);
		if (bfd < 0)
			continue;
		struct summary s;
		bool final = meta_read_summary(bfd, &s) == 0 &&
			     status_final(s.status);
		close(bfd);
		if (final)
			continue;
		GROW(ids, cap, n + 1);
		ids[n++] = xstrdup(name);
	}
	words_free(names);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (engine_take(e, ids[i], -1, 0) < 0)
			rc = -1;
		free(ids[i]);
	}
	free(ids);
	return rc;
}

/* The name of path inside this home's spool/, if that is where it is. */
static bool inside_spool(struct engine *e, const char *path, char *name,
			 size_t n)
{
	char *abs = realpath(path, NULL);
	char *spool = xasprintf("%s/spool", e->home_abs);
	bool inside = false;
	if (abs) {
		size_t len = strlen(spool);
		const char *rest = abs + len;
		if (!strncmp(abs, spool, len) && rest[0] == '/' &&
		    !strchr(rest + 1, '/')) {
			snprintf(name, n, "%s", rest + 1);
			inside = true;
		}
	}
	free(abs);
	free(spool);
	return inside;
}

int engine_claim(struct engine *e, const char *path, bool named)
{
	struct claim_result res;
	char name[512];
	if (!named || inside_spool(e, path, name, sizeof(name))) {
		if (spool_claim(e->h, e->c, named ? name : path, &res) < 0)
			return EX_IOERR_;
	} else {
		struct sb text = SB_INIT;
		if (job_read_path(path, &text) < 0) {
			int saved = errno;
			sb_release(&text);
			return saved == ENOENT ? EX_NO_SUCH : EX_INVALID_JOB;
		}
		int rc = spool_claim_bytes(e->h, e->c, path,
					   text.buf ? text.buf : "", text.len,
					   &res);
		sb_release(&text);
		if (rc < 0)
			return EX_IOERR_;
	}
	/* The file as the user knows it: the path given, or spool/NAME. */
	char shown[600];
	snprintf(shown, sizeof(shown), "%s%s", named ? "" : "spool/", path);
	switch (res.status) {
	case CLAIM_OK:
		info("%s: claimed as batch %s (%zu %s)", shown, res.id,
		     res.nsymbols, plural(res.nsymbols, "symbol", "symbols"));
		runlog_printf(e->o.runlog, "claimed %s as batch %s (%zu %s)",
			      shown, res.id, res.nsymbols,
			      plural(res.nsymbols, "symbol", "symbols"));
		if (engine_take(e, res.id, res.lock_fd, 0) < 0)
			return EX_IOERR_;
		return 0;
	case CLAIM_GONE:
		return 0;
	case CLAIM_INVALID:
		/* The reason starts with the file's name already. */
		runlog_log(e->o.runlog, RUNLOG_WARNING, "rejected: %s",
			   res.reason);
		if (named)
			return EX_INVALID_JOB;
		/* The reason was printed as it was found; say where it went. */
		warning("spool/%s: rejected; the reason is in "
			"spool/rejected/%s.reason", path, path);
		return 0;
	case CLAIM_DUPLICATE:
		runlog_log(e->o.runlog, RUNLOG_WARNING,
			   "%s: duplicate of %s; not run", shown, res.dup_of);
		/* once on stderr: the log may copy itself there already */
		if (!runlog_on_stderr(e->o.runlog))
			warning("%s: duplicate of %s; not run", shown,
				res.dup_of);
		return 0;
	case CLAIM_ERROR:
		if (res.fsync_failed) {
			/* Never retried: stop, the next start recovers. */
			e->io_failed = true;
			e->shutdown = true;
		}
		return EX_IOERR_;
	}
	return 0;
}

int engine_claim_spool(struct engine *e)
{
	char **names;
	size_t n;
	int status = 0;
	if (spool_scan(e->h, &names, &n) < 0)
		return EX_IOERR_;
	for (size_t i = 0; i < n; i++) {
		int st = engine_claim(e, names[i], false);
		if (st > status)
			status = st;
	}
	spool_names_free(names, n);
	return status;
}

bool adopt_spool_empty(struct engine *e)
{
	char **names;
	size_t n = 0;
	if (spool_scan(e->h, &names, &n) < 0)
		return true;
	spool_names_free(names, n);
	return n == 0;
}

/* A daemon forgets the batches it has closed. */
void adopt_compact(struct engine *e)
{
	size_t keep = 0;
	for (size_t i = 0; i < e->nbatches; i++) {
		if (e->batches[i]->closed)
			adopt_free_batch(e->batches[i]);
		else
			e->batches[keep++] = e->batches[i];
	}
	e->nbatches = keep;
}
