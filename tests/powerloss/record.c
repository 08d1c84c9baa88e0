/*
 * tests/powerloss/record.c: an LD_PRELOAD recorder of every file-system
 * mutation the runner makes under one directory, in order, for the
 * power-loss sweep (tests/powerloss/crashstates builds crash states from
 * the log it writes).
 *
 *   REC_LOG   the log file (appended; several processes share it)
 *   REC_ROOT  the directory whose mutations are recorded (a real path, no
 *             symbolic link in it: paths are compared as the kernel names
 *             them in /proc/self/fd)
 *
 * One record per mutation, a text line, followed for W by the bytes:
 *   C PATH MODE        a file created (open/openat with O_CREAT that made it)
 *   M PATH MODE        a directory made
 *   W PATH OFF LEN     LEN bytes written at OFF (write, pwrite, splice into
 *                      a file, stdio streams of fdopen); LEN raw bytes follow
 *   T PATH SIZE        truncated to SIZE (ftruncate, O_TRUNC)
 *   S PATH             fsync or fdatasync of a file
 *   D PATH             fsync of a directory
 *   R OLD NEW          rename (renameat2 with RENAME_NOREPLACE too)
 *   U PATH             unlink of a file or rmdir of a directory
 * PATH is absolute.  Each record is made under an exclusive flock of the log
 * and after the call succeeded, so the log's order is the order in which the
 * calls took effect, across processes.  Failed calls are not recorded.
 *
 * Only the process that loaded the library records, and its fork()ed
 * children (the runner's retention child); the clone(CLONE_VM) children the
 * runner starts agents with share this memory until exec and are skipped by
 * the pid check.  The environment the runner gives agents has no LD_PRELOAD,
 * so what agents write is not recorded: the runner must not count on it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int log_fd = -1;
static char root[4096];
static size_t root_len;
static pid_t self;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_read)(int, void *, size_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_rmdir)(const char *);
static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t,
			      unsigned);
static pid_t (*real_fork)(void);
static FILE *(*real_fdopen)(int, const char *);
static int (*real_fileno)(FILE *);

#define RESOLVE(name) (real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name))

__attribute__((constructor)) static void rec_init(void)
{
	RESOLVE(write);
	RESOLVE(pwrite);
	RESOLVE(pwrite64);
	RESOLVE(read);
	RESOLVE(ftruncate);
	RESOLVE(ftruncate64);
	RESOLVE(fsync);
	RESOLVE(fdatasync);
	RESOLVE(rename);
	RESOLVE(renameat);
	RESOLVE(renameat2);
	RESOLVE(open);
	RESOLVE(open64);
	RESOLVE(openat);
	RESOLVE(openat64);
	RESOLVE(creat);
	RESOLVE(mkdir);
	RESOLVE(mkdirat);
	RESOLVE(unlink);
	RESOLVE(unlinkat);
	RESOLVE(rmdir);
	RESOLVE(splice);
	RESOLVE(fork);
	RESOLVE(fdopen);
	RESOLVE(fileno);
	const char *l = getenv("REC_LOG"), *r = getenv("REC_ROOT");
	if (!l || !*l || !r || !*r || strlen(r) >= sizeof(root) - 1)
		return;
	log_fd = real_open(l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd >= 0 && log_fd < 200) {
		int hi = fcntl(log_fd, F_DUPFD_CLOEXEC, 200);
		if (hi >= 0) {
			close(log_fd);
			log_fd = hi;
		}
	}
	strcpy(root, r);
	root_len = strlen(root);
	while (root_len > 1 && root[root_len - 1] == '/')
		root[--root_len] = '\0';
	self = (pid_t)syscall(SYS_getpid);
}

static int active(void)
{
	return log_fd >= 0 && (pid_t)syscall(SYS_getpid) == self;
}

/* ---- paths ---- */

struct path {
	char s[4096];
	int ok; /* under root */
};

static void fd_path(int fd, struct path *p)
{
	char link[64];
	snprintf(link, sizeof(link), fd == AT_FDCWD ? "/proc/self/cwd"
						    : "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, p->s, sizeof(p->s) - 1);
	p->ok = 0;
	if (n <= 0) {
		p->s[0] = '\0';
		return;
	}
	p->s[n] = '\0';
}

static void under_root(struct path *p)
{
	size_t n = strlen(p->s);
	p->ok = 0;
	if (n >= 10 && !strcmp(p->s + n - 10, " (deleted)"))
		return;
	if (strncmp(p->s, root, root_len) ||
	    (p->s[root_len] != '/' && p->s[root_len] != '\0'))
		return;
	/* Collapse "/./" and a trailing "/." (names the runner may build). */
	char *q;
	while ((q = strstr(p->s, "/./")))
		memmove(q, q + 2, strlen(q + 2) + 1);
	n = strlen(p->s);
	if (n >= 2 && !strcmp(p->s + n - 2, "/."))
		p->s[n - 2] = '\0';
	p->ok = 1;
}

static void at_path(int dfd, const char *name, struct path *p)
{
	if (name[0] == '/') {
		snprintf(p->s, sizeof(p->s), "%s", name);
	} else {
		struct path d;
		fd_path(dfd, &d);
		if (!d.s[0]) {
			p->s[0] = '\0';
			p->ok = 0;
			return;
		}
		size_t dl = strlen(d.s), nl = strlen(name);
		if (dl + 1 + nl >= sizeof(p->s)) {
			p->s[0] = '\0';
			p->ok = 0;
			return;
		}
		memcpy(p->s, d.s, dl);
		p->s[dl] = '/';
		memcpy(p->s + dl + 1, name, nl + 1);
	}
	under_root(p);
}

static void of_fd(int fd, struct path *p)
{
	fd_path(fd, p);
	under_root(p);
}

static int is_reg(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- the log ---- */

static void put(const void *b, size_t n)
{
	const char *s = b;
	while (n) {
		ssize_t w = real_write(log_fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void lock(void)
{
	while (flock(log_fd, LOCK_EX) < 0 && errno == EINTR)
		;
}

static void unlock(void)
{
	flock(log_fd, LOCK_UN);
}

__attribute__((format(printf, 1, 2))) static void line(const char *fmt, ...)
{
	char b[9000];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(b, (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
}

/* The bytes [off, off+len) of fd as the page cache has them now. */
static void put_range(int fd, off_t off, size_t len)
{
	char b[65536];
	while (len) {
		size_t want = len < sizeof(b) ? len : sizeof(b);
		ssize_t n = pread(fd, b, want, off);
		if (n <= 0) {
			/* Cannot happen for bytes just written; keep the
			 * record's length true anyway. */
			memset(b, 0, want);
			n = (ssize_t)want;
		}
		put(b, (size_t)n);
		off += n;
		len -= (size_t)n;
	}
}

/* ---- the wrappers ---- */

static ssize_t rec_write(int fd, const void *buf, size_t n, off_t at,
			 int positional)
{
	struct path p = { .ok = 0 };
	if (!active() || !is_reg(fd))
		return positional ? real_pwrite(fd, buf, n, at)
				  : real_write(fd, buf, n);
	of_fd(fd, &p);
	if (!p.ok)
		return positional ? real_pwrite(fd, buf, n, at)
				  : real_write(fd, buf, n);
	lock();
	ssize_t w = positional ? real_pwrite(fd, buf, n, at)
			       : real_write(fd, buf, n);
	int saved = errno;
	if (w > 0) {
		off_t off = positional ? at : lseek(fd, 0, SEEK_CUR) - w;
		line("W %s %lld %zd\n", p.s, (long long)off, w);
		put(buf, (size_t)w);
	}
	unlock();
	errno = saved;
	return w;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	return rec_write(fd, buf, n, 0, 0);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return rec_write(fd, buf, n, off, 1);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return rec_write(fd, buf, n, off, 1);
}

ssize_t splice(int in, loff_t *in_off, int out, loff_t *out_off, size_t n,
	       unsigned flags)
{
	struct path p = { .ok = 0 };
	if (active() && is_reg(out))
		of_fd(out, &p);
	if (!p.ok)
		return real_splice(in, in_off, out, out_off, n, flags);
	lock();
	ssize_t w = real_splice(in, in_off, out, out_off, n, flags);
	int saved = errno;
	if (w > 0) {
		off_t off = out_off ? *out_off - w : lseek(out, 0, SEEK_CUR) - w;
		line("W %s %lld %zd\n", p.s, (long long)off, w);
		put_range(out, off, (size_t)w);
	}
	unlock();
	errno = saved;
	return w;
}

static int rec_trunc(int fd, off_t len, int (*fn)(int, off_t))
{
	struct path p = { .ok = 0 };
	if (active())
		of_fd(fd, &p);
	if (!p.ok)
		return fn(fd, len);
	lock();
	int rc = fn(fd, len), saved = errno;
	if (rc == 0)
		line("T %s %lld\n", p.s, (long long)len);
	unlock();
	errno = saved;
	return rc;
}

int ftruncate(int fd, off_t len)
{
	return rec_trunc(fd, len, real_ftruncate);
}

int ftruncate64(int fd, off_t len)
{
	return rec_trunc(fd, len, real_ftruncate64 ? real_ftruncate64
						    : real_ftruncate);
}

static int rec_sync(int fd, int (*fn)(int))
{
	struct path p = { .ok = 0 };
	struct stat st;
	if (active())
		of_fd(fd, &p);
	if (!p.ok)
		return fn(fd);
	int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
	lock();
	int rc = fn(fd), saved = errno;
	if (rc == 0)
		line("%c %s\n", dir ? 'D' : 'S', p.s);
	unlock();
	errno = saved;
	return rc;
}

int fsync(int fd)
{
	return rec_sync(fd, real_fsync);
}

int fdatasync(int fd)
{
	return rec_sync(fd, real_fdatasync);
}

static int rec_rename(int da, const char *a, int db, const char *b,
		      unsigned flags)
{
	struct path pa = { .ok = 0 }, pb = { .ok = 0 };
	if (active()) {
		at_path(da, a, &pa);
		at_path(db, b, &pb);
	}
	if (!pa.ok && !pb.ok)
		return real_renameat2(da, a, db, b, flags);
	lock();
	int rc = real_renameat2(da, a, db, b, flags), saved = errno;
	if (rc == 0) {
		if (pa.ok && pb.ok)
			line("R %s %s\n", pa.s, pb.s);
		else if (pa.ok)
			line("U %s\n", pa.s); /* moved out of the root */
		else
			line("C %s 0644\n", pb.s); /* moved in: unknown bytes */
	}
	unlock();
	errno = saved;
	return rc;
}

int rename(const char *a, const char *b)
{
	return rec_rename(AT_FDCWD, a, AT_FDCWD, b, 0);
}

int renameat(int da, const char *a, int db, const char *b)
{
	return rec_rename(da, a, db, b, 0);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
	return rec_rename(da, a, db, b, flags);
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE
		       ? (mode_t)va_arg(ap, int)
		       : 0;
}

static mode_t umask_now(void)
{
	mode_t m = umask(0);
	umask(m);
	return m;
}

static int rec_open(int dfd, const char *name, int flags, mode_t m)
{
	struct path p = { .ok = 0 };
	if (active() && (flags & (O_CREAT | O_TRUNC)))
		at_path(dfd, name, &p);
	if (!p.ok)
		return real_openat(dfd, name, flags, m);
	lock();
	struct stat st;
	int existed = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	int fd = real_openat(dfd, name, flags, m), saved = errno;
	if (fd >= 0 && is_reg(fd)) {
		if (!existed)
			line("C %s %o\n", p.s, m & ~umask_now() & 07777);
		else if (flags & O_TRUNC)
			line("T %s 0\n", p.s);
	}
	unlock();
	errno = saved;
	return fd;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	return rec_open(AT_FDCWD, path, flags, m);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	return rec_open(AT_FDCWD, path, flags, m);
}

int openat(int dfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	return rec_open(dfd, path, flags, m);
}

int openat64(int dfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	return rec_open(dfd, path, flags, m);
}

int creat(const char *path, mode_t m)
{
	return rec_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, m);
}

static int rec_mkdir(int dfd, const char *name, mode_t m)
{
	struct path p = { .ok = 0 };
	if (active())
		at_path(dfd, name, &p);
	if (!p.ok)
		return real_mkdirat(dfd, name, m);
	lock();
	int rc = real_mkdirat(dfd, name, m), saved = errno;
	if (rc == 0)
		line("M %s %o\n", p.s, m & ~umask_now() & 07777);
	unlock();
	errno = saved;
	return rc;
}

int mkdir(const char *path, mode_t m)
{
	return rec_mkdir(AT_FDCWD, path, m);
}

int mkdirat(int dfd, const char *path, mode_t m)
{
	return rec_mkdir(dfd, path, m);
}

static int rec_unlink(int dfd, const char *name, int flags)
{
	struct path p = { .ok = 0 };
	if (active())
		at_path(dfd, name, &p);
	if (!p.ok)
		return real_unlinkat(dfd, name, flags);
	lock();
	int rc = real_unlinkat(dfd, name, flags), saved = errno;
	if (rc == 0)
		line("U %s\n", p.s);
	unlock();
	errno = saved;
	return rc;
}

int unlink(const char *path)
{
	return rec_unlink(AT_FDCWD, path, 0);
}

int unlinkat(int dfd, const char *path, int flags)
{
	return rec_unlink(dfd, path, flags);
}

int rmdir(const char *path)
{
	return rec_unlink(AT_FDCWD, path, AT_REMOVEDIR);
}

pid_t fork(void)
{
	pid_t pid = real_fork();
	if (pid == 0 && log_fd >= 0)
		self = (pid_t)syscall(SYS_getpid);
	return pid;
}

/* ---- stdio streams made by fdopen, written through write() above ---- */

#include "../faults/cookie.h"
