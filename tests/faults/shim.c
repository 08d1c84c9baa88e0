/*
 * tests/faults/shim.c: an LD_PRELOAD fault injector for the runner process.
 *
 * It wraps the libc calls through which the runner makes things durable and
 * fails (or dies at) the Nth call of one of them:
 *
 *   FAULT_OP     write | fdatasync | fsync | rename | openat-creat | mkdirat
 *                  write         write(2), and every write of a stdio stream
 *                                made by fdopen (see below)
 *                  rename        rename, renameat, renameat2
 *                  openat-creat  open, open64, openat, openat64, creat with
 *                                O_CREAT
 *                  mkdirat       mkdir, mkdirat
 *   FAULT_N      which call of that op fails, 1-based, counted across the
 *                process; 0 (or unset): fail nothing, only count
 *   FAULT_ERRNO  ENOSPC (default), EIO, EDQUOT, or a number
 *   FAULT_MODE   once     only the Nth call fails
 *                persist  the Nth and every later call fails
 *                crash    at the Nth call, _exit(137) before doing it (a
 *                         power cut or kill -9 at that point; what was
 *                         written before stays in the page cache, so this
 *                         does not model lost unsynced data)
 *   FAULT_WHILE  (optional, with persist) a path: calls fail only while it
 *                exists, so a test can "free disk space" by removing it
 *   FAULT_COUNT  (optional) a file written at exit():
 *                  write=N fdatasync=N fsync=N rename=N openat-creat=N
 *                  mkdirat=N fired=K fault_fd=F same_fd_after=M
 *                  fault_dir=D
 *                where fired counts the failed calls and same_fd_after the
 *                calls of the faulted op on the faulted call's fd, while
 *                it names the same file (inode and name), after the first
 *                failure (a retried fsync shows up there); fault_dir
 *                is 1 when that fd is a directory's
 *   FAULT_TRACE  (optional) a file that gets one line per wrapped call:
 *                OP N fd=FD NAME [FAIL|CRASH]
 *
 * Only the process that loaded the shim counts: the runner starts its
 * children with clone(CLONE_VM), which shares these counters until exec, so
 * a call made by any other pid goes straight through.  (The children's
 * environment is scrubbed by the runner, so LD_PRELOAD does not reach what
 * they exec.)
 *
 * glibc's stdio does not write through the write symbol (it calls an
 * internal alias), so fdopen() of a writable mode is replaced by a
 * fopencookie() stream whose write goes through the wrapper below, and
 * fileno() knows those streams.  Everything else the wrappers do is
 * system calls and arithmetic: no malloc, no stdio.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum op { OP_WRITE, OP_FDATASYNC, OP_FSYNC, OP_RENAME, OP_CREAT, OP_MKDIR,
	  NOPS };
static const char *const op_names[NOPS] = { "write", "fdatasync", "fsync",
					     "rename", "openat-creat",
					     "mkdirat" };
enum mode { M_ONCE, M_PERSIST, M_CRASH };

static int fault_op = -1;
static unsigned long fault_n;
static int fault_errno = ENOSPC;
static int fault_mode = M_ONCE;
static const char *fault_while;
static const char *count_path;
static int trace_fd = -1;
static pid_t self;
static unsigned long counts[NOPS];
static unsigned long fired, same_fd_after;
static int fault_fd = -1, fault_dir;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_read)(int, void *, size_t);
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
static FILE *(*real_fdopen)(int, const char *);
static int (*real_fileno)(FILE *);

#define RESOLVE(name) (real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name))

/* ---- tiny async-signal-safe formatting ---- */

struct buf {
	char s[768];
	size_t n;
};

static void b_str(struct buf *b, const char *s)
{
	while (s && *s && b->n < sizeof(b->s) - 1)
		b->s[b->n++] = *s++;
}

static void b_num(struct buf *b, long v)
{
	char t[24];
	int i = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	if (v < 0)
		b_str(b, "-");
	do
		t[i++] = (char)('0' + u % 10);
	while ((u /= 10) && i < 23);
	while (i && b->n < sizeof(b->s) - 1)
		b->s[b->n++] = t[--i];
}

static void b_flush(int fd, struct buf *b)
{
	size_t off = 0;
	while (off < b->n && real_write) {
		ssize_t w = real_write(fd, b->s + off, b->n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

static dev_t fault_dev;
static ino_t fault_ino;
static char fault_path[512];

static void fd_name(int fd, char *out, size_t n)
{
	char link[40];
	struct buf b = { .n = 0 };
	b_str(&b, "/proc/self/fd/");
	b_num(&b, fd);
	b.s[b.n] = '\0';
	memcpy(link, b.s, b.n + 1);
	ssize_t l = readlink(link, out, n - 1);
	out[l > 0 ? l : 0] = '\0';
}

/* fd still names the file the failed call was made on: a descriptor
 * number is reused once closed, and an inode number once its file is
 * removed, so a later call on another file through them is no retry.
 * The same inode under the same name is. */
static int same_file(int fd)
{
	struct stat st;
	char now[512];
	if (fstat(fd, &st) != 0 || st.st_dev != fault_dev ||
	    st.st_ino != fault_ino)
		return 0;
	fd_name(fd, now, sizeof(now));
	return !strcmp(now, fault_path);
}

static void trace(int op, int fd, const char *name, const char *what)
{
	struct buf b = { .n = 0 };
	char link[256];
	if (trace_fd < 0)
		return;
	b_str(&b, op_names[op]);
	b_str(&b, " ");
	b_num(&b, (long)counts[op]);
	b_str(&b, " fd=");
	b_num(&b, fd);
	b_str(&b, " ");
	if (!name && fd >= 0) {
		char p[40];
		struct buf pb = { .n = 0 };
		b_str(&pb, "/proc/self/fd/");
		b_num(&pb, fd);
		pb.s[pb.n] = '\0';
		memcpy(p, pb.s, pb.n + 1);
		ssize_t l = readlink(p, link, sizeof(link) - 1);
		if (l > 0) {
			link[l] = '\0';
			name = link;
		}
	}
	b_str(&b, name ? name : "?");
	if (what) {
		b_str(&b, " ");
		b_str(&b, what);
	}
	b_str(&b, "\n");
	b_flush(trace_fd, &b);
}

/* ---- the decision ---- */

/* Count one call of op; 0: do it, -1: fail it (errno is set).  Dies in
 * crash mode. */
static int fault(int op, int fd, const char *name)
{
	if (self == 0 || (pid_t)syscall(SYS_getpid) != self)
		return 0;
	unsigned long n = ++counts[op];
	int fail = 0;
	if (op == fault_op && fault_n) {
		if (fault_mode == M_CRASH) {
			if (n == fault_n) {
				trace(op, fd, name, "CRASH");
				_exit(137);
			}
		} else if (fault_mode == M_ONCE) {
			fail = n == fault_n;
		} else {
			fail = n >= fault_n;
			if (fail && fault_while &&
			    syscall(SYS_faccessat, AT_FDCWD, fault_while, F_OK) != 0)
				fail = 0;
		}
		/* The faulted op again on the faulted call's descriptor: a
		 * retried fsync, say. */
		if (fired && fd >= 0 && fd == fault_fd && same_file(fd))
			same_fd_after++;
		if (fail && !fired++) {
			struct stat st;
			fault_fd = fd;
			fault_dir = 0;
			if (fd >= 0 && fstat(fd, &st) == 0) {
				fault_dir = S_ISDIR(st.st_mode);
				fault_dev = st.st_dev;
				fault_ino = st.st_ino;
				fd_name(fd, fault_path, sizeof(fault_path));
			}
		}
	}
	trace(op, fd, name, fail ? "FAIL" : NULL);
	if (fail) {
		errno = fault_errno;
		return -1;
	}
	return 0;
}

/* ---- setup and the count file ---- */

__attribute__((constructor)) static void shim_init(void)
{
	const char *v;
	RESOLVE(write);
	RESOLVE(read);
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
	RESOLVE(fdopen);
	RESOLVE(fileno);

	if ((v = getenv("FAULT_OP")) && *v) {
		for (int i = 0; i < NOPS; i++)
			if (!strcmp(v, op_names[i]))
				fault_op = i;
		if (fault_op < 0) {
			static const char m[] = "fault shim: unknown FAULT_OP\n";
			real_write(2, m, sizeof(m) - 1);
			_exit(99);
		}
	}
	if ((v = getenv("FAULT_N")))
		fault_n = strtoul(v, NULL, 10);
	if ((v = getenv("FAULT_ERRNO"))) {
		if (!strcmp(v, "EIO"))
			fault_errno = EIO;
		else if (!strcmp(v, "EDQUOT"))
			fault_errno = EDQUOT;
		else if (!strcmp(v, "ENOSPC") || !*v)
			fault_errno = ENOSPC;
		else
			fault_errno = atoi(v) > 0 ? atoi(v) : ENOSPC;
	}
	if ((v = getenv("FAULT_MODE"))) {
		if (!strcmp(v, "persist"))
			fault_mode = M_PERSIST;
		else if (!strcmp(v, "crash"))
			fault_mode = M_CRASH;
	}
	if ((v = getenv("FAULT_WHILE")) && *v)
		fault_while = v;
	if ((v = getenv("FAULT_COUNT")) && *v)
		count_path = v;
	if ((v = getenv("FAULT_TRACE")) && *v)
		trace_fd = real_open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				     0644);
	if (trace_fd >= 0 && trace_fd < 100) {
		/* Out of the way of the descriptors the runner counts on. */
		int hi = fcntl(trace_fd, F_DUPFD_CLOEXEC, 100);
		if (hi >= 0) {
			close(trace_fd);
			trace_fd = hi;
		}
	}
	self = (pid_t)syscall(SYS_getpid);
}

__attribute__((destructor)) static void shim_fini(void)
{
	struct buf b = { .n = 0 };
	if (!count_path || (pid_t)syscall(SYS_getpid) != self)
		return;
	for (int i = 0; i < NOPS; i++) {
		b_str(&b, op_names[i]);
		b_str(&b, "=");
		b_num(&b, (long)counts[i]);
		b_str(&b, " ");
	}
	b_str(&b, "fired=");
	b_num(&b, (long)fired);
	b_str(&b, " fault_fd=");
	b_num(&b, fault_fd);
	b_str(&b, " same_fd_after=");
	b_num(&b, (long)same_fd_after);
	b_str(&b, " fault_dir=");
	b_num(&b, fault_dir);
	b_str(&b, "\n");
	int fd = real_open(count_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			   0644);
	if (fd >= 0) {
		b_flush(fd, &b);
		close(fd);
	}
}

/* ---- the wrappers ---- */

ssize_t write(int fd, const void *buf, size_t n)
{
	if (fault(OP_WRITE, fd, NULL) < 0)
		return -1;
	return real_write(fd, buf, n);
}

int fsync(int fd)
{
	if (fault(OP_FSYNC, fd, NULL) < 0)
		return -1;
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	if (fault(OP_FDATASYNC, fd, NULL) < 0)
		return -1;
	return real_fdatasync(fd);
}

int rename(const char *a, const char *b)
{
	if (fault(OP_RENAME, AT_FDCWD, b) < 0)
		return -1;
	return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
	if (fault(OP_RENAME, db, b) < 0)
		return -1;
	return real_renameat(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
	if (fault(OP_RENAME, db, b) < 0)
		return -1;
	return real_renameat2(da, a, db, b, flags);
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE
		       ? (mode_t)va_arg(ap, int)
		       : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if ((flags & O_CREAT) && fault(OP_CREAT, AT_FDCWD, path) < 0)
		return -1;
	return real_open(path, flags, m);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if ((flags & O_CREAT) && fault(OP_CREAT, AT_FDCWD, path) < 0)
		return -1;
	return (real_open64 ? real_open64 : real_open)(path, flags, m);
}

int openat(int dfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if ((flags & O_CREAT) && fault(OP_CREAT, dfd, path) < 0)
		return -1;
	return real_openat(dfd, path, flags, m);
}

int openat64(int dfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if ((flags & O_CREAT) && fault(OP_CREAT, dfd, path) < 0)
		return -1;
	return (real_openat64 ? real_openat64 : real_openat)(dfd, path, flags,
							     m);
}

int creat(const char *path, mode_t m)
{
	if (fault(OP_CREAT, AT_FDCWD, path) < 0)
		return -1;
	return real_creat(path, m);
}

int mkdir(const char *path, mode_t m)
{
	if (fault(OP_MKDIR, AT_FDCWD, path) < 0)
		return -1;
	return real_mkdir(path, m);
}

int mkdirat(int dfd, const char *path, mode_t m)
{
	if (fault(OP_MKDIR, dfd, path) < 0)
		return -1;
	return real_mkdirat(dfd, path, m);
}

/* ---- stdio streams made by fdopen, written through write() above ---- */

#include "cookie.h"
