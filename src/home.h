/*
 * home: the layout of a runner home (SPEC 2) as directory fds, and the
 * file-system primitives every writer uses.
 *
 *   struct home h = HOME_INIT;
 *   if (home_open(&h, path) < 0) ...;      creates missing subdirectories
 *   ... h.batches, h.spool, h.logs, h.state are O_DIRECTORY fds ...
 *   home_release(&h);
 *
 * Every path below the home is opened relative to one of these fds with the
 * *at() calls and O_NOFOLLOW, so a symlink planted in the home cannot send a
 * write elsewhere.  All fds are close-on-exec.
 *
 * Replacing a file (DURABILITY "Replacing a file"): home_replace() writes a
 * whole buffer; for documents produced piecewise (batch.json of 100,000
 * items) use atomic_begin(), write to af.fp, then atomic_commit() or
 * atomic_abort().  On any failure the old file stays and the temp is gone.
 *
 * Functions return 0 or -1 with errno set; they do not print.
 */
#ifndef RUNNER_HOME_H
#define RUNNER_HOME_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct home {
	char *path;	/* as given, for messages and the child's cwd */
	int fd;		/* the home itself */
	int batches, spool, rejected, logs, state, control;
};
#define HOME_INIT { NULL, -1, -1, -1, -1, -1, -1, -1 }

int home_open(struct home *h, const char *path);
void home_release(struct home *h);

/* The names of a directory's entries (not "." and ".."), in the order
 * the file system gives: a NULL-terminated array (words_free), or NULL
 * with errno.  Read through a descriptor of its own, close-on-exec: the
 * one way the runner lists a directory. */
char **home_names(int dirfd, size_t *count);
/* Every batch of batches/ (a directory named a batch id, not archive/):
 * fn(arg, id, fd of the directory, closed after).  0, or -1 with errno
 * when batches/ cannot be read. */
int home_each_batch(const struct home *h,
		    void (*fn)(void *arg, const char *id, int bfd), void *arg);
/* fsync a directory fd. */
int fsync_dir(int dirfd);
/*
 * Directories the runner owns (batches/, logs/, state/ and everything it
 * makes below them, spool/rejected/) are written in only when they are
 * directories (not symlinks) owned by the runner's user or root and not
 * writable by group or others: one planted or handed over by another user
 * is refused, never adopted.  home_open() checks its own on their fds and
 * prints what it refuses; spool/ itself, written by the submitters, must
 * only be owned by the runner's user or root.
 *
 * home_dir_check: 0 when st is such a directory, else -1 with errno
 * (ELOOP a symlink, ENOTDIR, EPERM another owner or a loose mode) and a
 * short reason in why ("owned by uid 65534, not by ...").
 */
struct stat;
int home_dir_check(const struct stat *st, char *why, size_t n);
/* mkdirat that treats EEXIST as success when what is there passes
 * home_dir_check (else -1 with its errno). */
int ensure_dir(int dirfd, const char *name, mode_t mode);
/* Open (creating) dirfd/name and take an exclusive flock without waiting:
 * the fd, or -1 (EWOULDBLOCK: someone holds it). */
int lock_at(int dirfd, const char *name);
/* A batch directory's lock (its file "lock"): the fd, or -1 (EWOULDBLOCK:
 * a runner owns the batch). */
int batch_lock(int batch_dirfd);
/* An exclusive flock on fd, waiting at most timeout_ms for another process
 * to let go (no wait is without an end: a process stopped while it holds a
 * shared file's lock must not stop every runner of the home): 0, or -1
 * with errno (EWOULDBLOCK when it was held all that time). */
#define LOCK_WAIT_MS 10000
int lock_within(int fd, int64_t timeout_ms);
/* Open a directory below dirfd without following a symlink. */
int open_dir_at(int dirfd, const char *name);

/* A new file for writing, dirfd/.NAME.HEX16.tmp under a name nobody can
 * predict, made with O_EXCL|O_NOFOLLOW (never a file someone planted):
 * the fd with its name in tmp, or -1 with errno. */
int home_open_temp(int dirfd, const char *name, char *tmp, size_t n);
int home_replace(int dirfd, const char *name, const void *data, size_t len);

struct atomic_file {
	int dirfd;
	FILE *fp;
	char tmp[300];
	char name[256];
};
int atomic_begin(struct atomic_file *af, int dirfd, const char *name);
int atomic_commit(struct atomic_file *af);
void atomic_abort(struct atomic_file *af);

/*
 * Rename without replacing (renameat2 RENAME_NOREPLACE).  EEXIST when the
 * target exists.
 */
int rename_noreplace(int olddirfd, const char *oldname, int newdirfd,
		     const char *newname);

/*
 * Remove a directory tree below dirfd (no symlink is followed).  Used only
 * for our own scratch directories (failed claims).
 */
int remove_tree(int dirfd, const char *name);

/*
 * Remove the temp files home_replace()/atomic_begin() left in dirfd when a
 * crash came between their creation and their rename (".NAME.HEX16.tmp",
 * only those of NAME unless it is NULL), if older than older_than_s
 * seconds (0: any).  Only call it where no live writer can be using one:
 * under the lock that guards NAME's writers, or with an age no write
 * takes.  Returns how many were removed.
 */
int remove_stale_temps(int dirfd, const char *name, int64_t older_than_s);

#endif
