#include "home.h"
#include "job.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int open_dir_at(int dirfd, const char *name)
{
	return openat(dirfd, name,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int home_dir_check(const struct stat *st, char *why, size_t n)
{
	uid_t me = geteuid();
	if (S_ISLNK(st->st_mode)) {
		snprintf(why, n, "a symlink, not a directory");
		errno = ELOOP;
		return -1;
	}
	if (!S_ISDIR(st->st_mode)) {
		snprintf(why, n, "not a directory");
		errno = ENOTDIR;
		return -1;
	}
	if (st->st_uid != me && st->st_uid != 0) {
		snprintf(why, n,
			 "owned by uid %u, not by the runner's user (uid %u) "
			 "or root",
			 (unsigned)st->st_uid, (unsigned)me);
		errno = EPERM;
		return -1;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, n, "writable by %s (mode %04o)",
			 st->st_mode & S_IWOTH ? "others" : "its group",
			 (unsigned)(st->st_mode & 07777));
		errno = EPERM;
		return -1;
	}
	return 0;
}

int ensure_dir(int dirfd, const char *name, mode_t mode)
{
	struct stat st;
	char why[160];
	/* Made here: its name must outlive a power cut as surely as what
	 * will be put in it, so the parent is synced before it is used. */
	if (mkdirat(dirfd, name, mode) == 0) {
		if (fsync_dir(dirfd) < 0)
			return -1;
	} else if (errno != EEXIST) {
		return -1;
	}
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	/* Made just now or found: either way it must be ours, so that a
	 * directory someone else planted is never written in. */
	return home_dir_check(&st, why, sizeof(why));
}

/* A directory of the home the runner writes in, opened (made if missing)
 * and checked on its fd; what is refused is said with its path. */
static int sub(struct home *h, int parent, const char *rel, int *out)
{
	const char *slash = strrchr(rel, '/');
	const char *name = slash ? slash + 1 : rel;
	char why[160];
	struct stat st;
	if (mkdirat(parent, name, 0755) == 0 ? fsync_dir(parent) < 0
					      : errno != EEXIST)
		return error("%s/%s: %s", h->path, rel, strerror(errno));
	*out = open_dir_at(parent, name);
	if (*out < 0 && (errno == ELOOP || errno == ENOTDIR) &&
	    fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		goto check; /* a symlink or a file: say which */
	if (*out < 0 || fstat(*out, &st) < 0)
		return error("%s/%s: %s", h->path, rel, strerror(errno));
check:
	if (home_dir_check(&st, why, sizeof(why)) < 0)
		return error("%s/%s: %s: refused (the runner writes only in "
			     "directories of its own)",
			     h->path, rel, why);
	return 0;
}

/* spool/ is written by the submitters (a group-writable directory), so
 * its mode is theirs to set; but whoever owns it can replace
 * spool/rejected/, so it must belong to the runner's user or root. */
static int spool_dir(struct home *h)
{
	struct stat st;
	if ((mkdirat(h->fd, "spool", 0755) == 0 ? fsync_dir(h->fd) < 0
						 : errno != EEXIST) ||
	    (h->spool = open_dir_at(h->fd, "spool")) < 0 ||
	    fstat(h->spool, &st) < 0)
		return error("%s/spool: %s", h->path, strerror(errno));
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return error("%s/spool: owned by uid %u, not by the runner's "
			     "user (uid %u) or root: refused",
			     h->path, (unsigned)st.st_uid,
			     (unsigned)geteuid());
	return 0;
}

int home_open(struct home *h, const char *path)
{
	h->path = xstrdup(path);
	h->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h->fd < 0)
		return error("home %s: %s", path, strerror(errno));
	if (sub(h, h->fd, "batches", &h->batches) < 0 ||
	    spool_dir(h) < 0 ||
	    sub(h, h->spool, "spool/rejected", &h->rejected) < 0 ||
	    sub(h, h->fd, "logs", &h->logs) < 0 ||
	    sub(h, h->fd, "state", &h->state) < 0 ||
	    sub(h, h->state, "state/control", &h->control) < 0)
		return -1;
	return 0;
}

void home_release(struct home *h)
{
	int *fds[] = { &h->fd, &h->batches, &h->spool, &h->rejected,
		       &h->logs, &h->state, &h->control };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	free(h->path);
	h->path = NULL;
}

int lock_within(int fd, int64_t timeout_ms)
{
	int64_t until = mono_ns() + timeout_ms * 1000000LL;
	long step_us = 500;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		int64_t left = until - mono_ns();
		if (left <= 0) {
			errno = EWOULDBLOCK;
			return -1;
		}
		long us = step_us < left / 1000 ? step_us : (long)(left / 1000) + 1;
		struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
		nanosleep(&ts, NULL);
		if (step_us < 20000)
			step_us *= 2;
	}
}

int fsync_dir(int dirfd)
{
	if (fsync(dirfd) < 0 && errno != EINVAL)
		return -1;
	return 0;
}

int home_open_temp(int dirfd, const char *name, char *tmp, size_t n)
{
	for (int tries = 0; tries < 100; tries++) {
		snprintf(tmp, n, ".%.200s.%016llx.tmp", name,
			 (unsigned long long)random_u64());
		int fd = openat(dirfd, tmp,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					O_CLOEXEC,
				0644);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

int home_replace(int dirfd, const char *name, const void *data, size_t len)
{
	char tmp[300];
	int fd = home_open_temp(dirfd, name, tmp, sizeof(tmp)), saved;
	if (fd < 0)
		return -1;
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0)
		goto out_unlink;
	if (close(fd) < 0) {
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0)
		goto out_unlink;
	return fsync_dir(dirfd);
out_unlink:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	errno = saved;
	return -1;
}

int atomic_begin(struct atomic_file *af, int dirfd, const char *name)
{
	int fd;
	af->dirfd = dirfd;
	af->fp = NULL;
	snprintf(af->name, sizeof(af->name), "%s", name);
	fd = home_open_temp(dirfd, name, af->tmp, sizeof(af->tmp));
	if (fd < 0)
		return -1;
	af->fp = fdopen(fd, "w");
	if (!af->fp) {
		int saved = errno;
		close(fd);
		unlinkat(dirfd, af->tmp, 0);
		errno = saved;
		return -1;
	}
	/* Large buffer: batch.json of a big batch is tens of megabytes. */
	setvbuf(af->fp, NULL, _IOFBF, 1 << 16);
	return 0;
}

int atomic_commit(struct atomic_file *af)
{
	int saved;
	FILE *fp = af->fp;
	af->fp = NULL;
	if (fflush(fp) != 0 || ferror(fp) || fsync(fileno(fp)) < 0) {
		saved = errno ? errno : EIO;
		fclose(fp);
		goto out_unlink;
	}
	if (fclose(fp) != 0) {
		saved = errno;
		goto out_unlink;
	}
	if (renameat(af->dirfd, af->tmp, af->dirfd, af->name) < 0) {
		saved = errno;
		goto out_unlink;
	}
	return fsync_dir(af->dirfd);
out_unlink:
	unlinkat(af->dirfd, af->tmp, 0);
	errno = saved;
	return -1;
}

void atomic_abort(struct atomic_file *af)
{
	if (!af->fp)
		return;
	fclose(af->fp);
	af->fp = NULL;
	unlinkat(af->dirfd, af->tmp, 0);
}

int rename_noreplace(int olddirfd, const char *oldname, int newdirfd,
		     const char *newname)
{
	return renameat2(olddirfd, oldname, newdirfd, newname,
			 RENAME_NOREPLACE);
}

char **home_names(int dirfd, size_t *count)
{
	/* A descriptor of its own: reading moves no offset another reader
	 * of dirfd shares, and nothing of it outlives an exec. */
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	char **v = NULL;
	size_t n = 0, cap = 0;
	if (!d) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return NULL;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		GROW(v, cap, n + 2);
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	GROW(v, cap, n + 1);
	v[n] = NULL;
	if (count)
		*count = n;
	return v;
}

int remove_tree(int parent, const char *name)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0);
	int fd = open_dir_at(parent, name);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (remove_tree(dirfd(d), de->d_name) < 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0)
		rc = -1;
	return rc;
}

int remove_stale_temps(int dirfd, const char *name, int64_t older_than_s)
{
	size_t all;
	int removed = 0;
	char **names = home_names(dirfd, &all);
	if (!names)
		return -1;
	time_t now = time(NULL);
	for (size_t k = 0; k < all; k++) {
		const char *e = names[k];
		struct stat st;
		/* Only the names our own temp files have: ".NAME.HEX16.tmp". */
		size_t n = strlen(e);
		if (e[0] != '.' || n < 22 || strcmp(e + n - 4, ".tmp") ||
		    e[n - 21] != '.')
			continue;
		if (name && (n - 22 != strlen(name) || strncmp(e + 1, name, n - 22)))
			continue;
		if (fstatat(dirfd, e, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) ||
		    (older_than_s > 0 && now - st.st_mtime < older_than_s))
			continue;
		if (unlinkat(dirfd, e, 0) == 0)
			removed++;
	}
	words_free(names);
	return removed;
}

int batch_lock(int dirfd)
{
	return lock_at(dirfd, "lock");
}

int lock_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			0644);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int home_each_batch(const struct home *h,
		    void (*fn)(void *arg, const char *id, int bfd), void *arg)
{
	size_t n;
	char **names = home_names(h->batches, &n);
	if (!names)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (names[i][0] == '.' || !valid_batch_id(names[i]) ||
		    !strcmp(names[i], "archive"))
			continue;
		int bfd = open_dir_at(h->batches, names[i]);
		if (bfd < 0)
			continue;
		fn(arg, names[i], bfd);
		close(bfd);
	}
	words_free(names);
	return 0;
}
