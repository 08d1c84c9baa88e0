#include "runlog.h"
#include "home.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct runlog {
	int dirfd;
	int fd;
	off_t size;
};

static int open_log(struct runlog *l)
{
	struct stat st;
	l->fd = openat(l->dirfd, "runner.log",
		       O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		       0644);
	if (l->fd < 0)
		return -1;
	l->size = fstat(l->fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

struct runlog *runlog_open(int logs_fd)
{
	struct runlog *l = xcalloc(1, sizeof(*l));
	l->dirfd = logs_fd;
	if (open_log(l) < 0) {
		error("logs/runner.log: %s", strerror(errno));
		free(l);
		return NULL;
	}
	return l;
}

void runlog_reopen(struct runlog *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	if (open_log(l) < 0)
		error("logs/runner.log: %s", strerror(errno));
}

void runlog_printf(struct runlog *l, const char *fmt, ...)
{
	struct sb line = SB_INIT, msg = SB_INIT;
	char t[TIME_BUF];
	va_list ap;
	if (!l || l->fd < 0)
		return;
	va_start(ap, fmt);
	sb_vaddf(&msg, fmt, ap);
	va_end(ap);
	sb_addf(&line, "%s [%d] ", fmt_time(now_ms(), t), (int)getpid());
	sb_add_escaped(&line, msg.buf ? msg.buf : "", 4096);
	sb_addc(&line, '\n');
	if (l->size + (off_t)line.len > (off_t)RUNLOG_MAX) {
		/* Rotate: the old log becomes runner.log.1. */
		if (renameat(l->dirfd, "runner.log", l->dirfd, "runner.log.1") == 0)
			runlog_reopen(l);
	}
	if (l->fd >= 0 && write_all(l->fd, line.buf, line.len) == 0)
		l->size += (off_t)line.len;
	sb_release(&line);
	sb_release(&msg);
}

void runlog_close(struct runlog *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}
