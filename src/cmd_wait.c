/*
 * cmd_wait: `runner wait BATCH` (until the batch is final, then its exit
 * status) and `runner log [-f] BATCH` (its human log, logs/ID.log, and
 * with -f what is added to it until the batch is final).
 *
 * Both wait on the journal, not on a timer: the batch directory is watched
 * with inotify (a record appended, a view replaced), and each wake-up
 * reads only the records written since the last (journal_follow).  A look
 * every few seconds is kept as a safety net for a missed event (a batch
 * directory archived while watched, a file system without inotify).
 */
#include "cli.h"
#include "archive.h"
#include "batch.h"
#include "home.h"
#include "job.h"
#include "journal.h"
#include "meta.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Between looks when no event comes (the safety net above). */
#define WAIT_NET_MS 5000

/* The exit status of a batch, as `run` gives it: 0 every item succeeded;
 * 1 some failed or were cancelled, or all that is left waits on paused
 * items (then nothing more happens until a `runner resume`). */
static int batch_exit(const struct batch *b)
{
	int st = batch_status(b);
	return st == BS_COMPLETED ? 0 : 1;
}

static bool settled(const struct batch *b)
{
	int st = batch_status(b);
	return b->final || status_final(st) || st == BS_PAUSED;
}

/* A batch that is still only a job file in spool/ (submitted, not yet
 * claimed): its directory will come. */
static bool in_spool(const char *id)
{
	char name[NAME_MAX + 1];
	struct stat st;
	snprintf(name, sizeof(name), "spool/%s.job", id);
	return fstatat(home_.fd, name, &st, 0) == 0;
}

static bool rejected(const char *id)
{
	char name[NAME_MAX + 1];
	struct stat st;
	snprintf(name, sizeof(name), "%s.job.reason", id);
	return fstatat(home_.rejected, name, &st, 0) == 0;
}

struct follower {
	const char *id;
	int in;		/* inotify, or -1 */
	int dirfd;	/* batches/ID, or -1 while it is not there */
	bool open;	/* j is open on dirfd */
	struct journal j;
	struct batch b;
	int logfd;	/* logs/ID.log for log -f, or -1 */
	off_t printed;
};

static void follower_close(struct follower *f)
{
	if (f->open)
		journal_close(&f->j);
	f->open = false;
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->dirfd = -1;
}

/* Sleep until something changes under batches/ID, batches/ or logs/. */
static void follower_sleep(struct follower *f)
{
	struct pollfd pfd = { .fd = f->in, .events = POLLIN };
	if (poll(&pfd, f->in >= 0 ? 1 : 0, WAIT_NET_MS) > 0) {
		char buf[4096];
		while (read(f->in, buf, sizeof(buf)) > 0)
			;
	}
}

/* Copy what logs/ID.log has past f->printed to stdout. */
static int print_log_tail(struct follower *f)
{
	if (f->logfd < 0) {
		char name[NAME_MAX + 1];
		snprintf(name, sizeof(name), "%s.log", f->id);
		f->logfd = openat(home_.logs, name,
				  O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (f->logfd < 0)
			return errno == ENOENT ? 0 : -1;
	}
	char buf[65536];
	ssize_t n;
	while ((n = pread(f->logfd, buf, sizeof(buf), f->printed)) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -1;
		f->printed += n;
	}
	fflush(stdout);
	return n < 0 ? -1 : 0;
}

/* The batch replayed so far, its directory opened (and watched) when it
 * has come: 0 (f->open says whether it is there), or an exit status. */
static int follower_look(struct follower *f)
{
	if (!f->open) {
		f->dirfd = open_dir_at(home_.batches, f->id);
		if (f->dirfd < 0)
			return 0;
		if (f->in >= 0) {
			char *path = xasprintf("%s/batches/%s", home_.path, f->id);
			inotify_add_watch(f->in, path, IN_MODIFY | IN_MOVED_TO |
							       IN_CLOSE_WRITE);
			free(path);
		}
		batch_init(&f->b);
		if (journal_open(&f->j, f->dirfd, "journal", false,
				 batch_replay, &f->b) < 0) {
			int saved = errno;
			batch_release(&f->b);
			close(f->dirfd);
			f->dirfd = -1;
			if (saved == ENOENT)
				return 0; /* claimed, journal not yet there */
			error("batches/%s/journal: %s", f->id, strerror(saved));
			return EX_IOERR_;
		}
		f->open = true;
	}
	if (journal_follow(&f->j, batch_replay, &f->b) < 0) {
		error("batches/%s/journal: damaged; runner fsck %s", f->id,
		      f->id);
		return EX_IOERR_;
	}
	return 0;
}

/* The runner writes a batch's log lines once their records are durable,
 * then its summary.json: a summary that says the batch is final (or
 * paused) means the log holds its last line.  A runner gone, or a summary
 * that cannot be read, and the log is as whole as it will be. */
static bool log_whole(const struct follower *f)
{
	struct summary s;
	if (meta_read_summary(f->dirfd, &s) < 0)
		return true;
	if (status_final(s.status) || s.status == BS_PAUSED)
		return true;
	return !(f->b.owner_pid > 0 &&
		 (kill(f->b.owner_pid, 0) == 0 || errno == EPERM));
}

/*
 * Follow batch id until it is final (or waits only on paused items): its
 * exit status, or a failure's.  With print_log, logs/ID.log is copied to
 * stdout as it grows, to its end once the batch's runner has let it go.
 */
static int follow(const char *id, bool print_log)
{
	struct follower f = { .id = id, .in = -1, .dirfd = -1, .logfd = -1 };
	int rc = 0;
	bool said = false;
	batch_init(&f.b);
	if (!batch_dir_exists(id) && archive_exists(&home_, id)) {
		/* Archived: final; the log, if kept, is whole. */
		int dirfd;
		rc = load_batch(id, &f.b, &dirfd);
		if (!rc && print_log && print_log_tail(&f) < 0)
			rc = (error("logs/%s.log: %s", id, strerror(errno)),
			      EX_IOERR_);
		if (!rc)
			rc = batch_exit(&f.b);
		batch_release(&f.b);
		return rc;
	}
	if (!batch_dir_exists(id) && !in_spool(id)) {
		error("no such batch: %s", id);
		return EX_NO_SUCH;
	}
	f.in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f.in >= 0) {
		char *path = xasprintf("%s/batches", home_.path);
		inotify_add_watch(f.in, path, IN_CREATE | IN_MOVED_TO);
		free(path);
		if (print_log) {
			path = xasprintf("%s/logs", home_.path);
			inotify_add_watch(f.in, path, IN_MODIFY | IN_CREATE);
			free(path);
		}
	}
	for (;;) {
		if ((rc = follower_look(&f)))
			break;
		if (print_log && print_log_tail(&f) < 0) {
			rc = (error("logs/%s.log: %s", id, strerror(errno)),
			      EX_IOERR_);
			break;
		}
		if (f.open && settled(&f.b) && (!print_log || log_whole(&f))) {
			if (print_log && print_log_tail(&f) < 0) {
				rc = (error("logs/%s.log: %s", id,
					    strerror(errno)), EX_IOERR_);
				break;
			}
			rc = batch_exit(&f.b);
			break;
		}
		if (!f.open && !batch_dir_exists(id) && !in_spool(id)) {
			if (archive_exists(&home_, id)) {
				follower_close(&f);
				batch_release(&f.b);
				if (f.in >= 0)
					close(f.in);
				if (f.logfd >= 0)
					close(f.logfd);
				return follow(id, print_log);
			}
			/* Claimed: in a batches/.claim-* directory on
			 * its way to batches/ID, or rejected. */
			if (rejected(id)) {
				error("%s: rejected (spool/rejected/%s.job.reason "
				      "says why)", id, id);
				rc = EX_INVALID_JOB;
				break;
			}
		}
		if (!said && verbosity > 0) {
			info("batch %s: waiting", id);
			said = true;
		}
		follower_sleep(&f);
	}
	follower_close(&f);
	batch_release(&f.b);
	if (f.in >= 0)
		close(f.in);
	if (f.logfd >= 0)
		close(f.logfd);
	return rc;
}

int cmd_wait(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "wait",
			   "usage: runner wait BATCH\n\n"
			   "Wait until the batch is final (or waits only on paused "
			   "items), then exit\nwith its status as run does: 0 every "
			   "item succeeded, 1 some failed or were\ncancelled, or "
			   "what is left is paused.  A batch still in spool/ is "
			   "waited\nfor too.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos != 1)
		rc = usage_error("wait: name one batch");
	else if (!valid_batch_id(pos[0]))
		rc = usage_error("wait: not a batch id: %s", pos[0]);
	if (!rc && !(rc = open_home()))
		rc = follow(pos[0], false);
	free_cmd(o, NOPTS(o), pos);
	return rc;
}

int cmd_log(void)
{
	struct cmdopt o[] = { { "--help" }, { "--follow", .shortopt = 'f' } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "log",
			   "usage: runner log BATCH [-f|--follow]\n\n"
			   "The batch's log, logs/BATCH.log: one line per event.  "
			   "With -f, what is\nadded to it too, until the batch is "
			   "final (or waits only on paused items);\nthe exit status "
			   "is then the batch's, as for runner wait.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos != 1)
		rc = usage_error("log: name one batch");
	else if (!valid_batch_id(pos[0]))
		rc = usage_error("log: not a batch id: %s", pos[0]);
	if (rc || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	if (o[1].seen) {
		rc = follow(pos[0], true);
	} else {
		struct follower f = { .id = pos[0], .logfd = -1 };
		if (print_log_tail(&f) < 0)
			rc = (error("logs/%s.log: %s", pos[0], strerror(errno)),
			      EX_IOERR_);
		else if (f.logfd < 0 && !batch_dir_exists(pos[0]) &&
			 !archive_exists(&home_, pos[0]))
			rc = (error("no such batch: %s", pos[0]), EX_NO_SUCH);
		if (f.logfd >= 0)
			close(f.logfd);
	}
	free_cmd(o, NOPTS(o), pos);
	return rc;
}
