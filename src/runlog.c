#include "runlog.h"
#include "home.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct runlog {
	int dirfd;
	int fd;
	off_t size;
	bool to_stderr;
	bool journal;	/* stderr is journald's stream: "<N>" prefixes */
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
	/* Without the file the events still go to stderr (runlog_stderr). */
	if (open_log(l) < 0)
		error("logs/runner.log: %s", strerror(errno));
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

/* Whether stderr is the stream $JOURNAL_STREAM ("DEV:INODE") names:
 * a descriptor inherited from a unit's journal, not one redirected
 * since (systemd.exec(5) says to compare both). */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	       fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void runlog_stderr(struct runlog *l)
{
	if (!l)
		return;
	l->to_stderr = true;
	l->journal = stderr_is_journal();
	report_journal = l->journal;
}

bool runlog_on_stderr(const struct runlog *l)
{
	return l && l->to_stderr;
}

static const char *level_word(enum runlog_level level)
{
	return level <= RUNLOG_ERR ? "error: "
	       : level <= RUNLOG_WARNING ? "warning: " : "";
}

__attribute__((format(printf, 3, 0)))
static void vlog(struct runlog *l, enum runlog_level level, const char *fmt,
		 va_list ap)
{
	struct sb line = SB_INIT, msg = SB_INIT, esc = SB_INIT;
	char t[TIME_BUF];
	if (!l)
		return;
	sb_vaddf(&msg, fmt, ap);
	sb_adds(&esc, level_word(level));
	sb_add_escaped(&esc, msg.buf ? msg.buf : "", 4096);
	if (l->to_stderr) {
		/* One write, so that lines of two processes never mix. */
		if (l->journal)
			sb_addf(&line, "<%d>%s\n", (int)level, esc.buf);
		else
			sb_addf(&line, "runner: %s\n", esc.buf);
		(void)write_all(STDERR_FILENO, line.buf, line.len);
		sb_reset(&line);
	}
	if (l->fd < 0)
		goto out;
	sb_addf(&line, "%s [%d] %s\n", fmt_time(now_ms(), t), (int)getpid(),
		esc.buf);
	if (l->size + (off_t)line.len > (off_t)RUNLOG_MAX) {
		/* Rotate: the old log becomes runner.log.1. */
		if (renameat(l->dirfd, "runner.log", l->dirfd, "runner.log.1") == 0)
			runlog_reopen(l);
	}
	if (l->fd >= 0 && write_all(l->fd, line.buf, line.len) == 0)
		l->size += (off_t)line.len;
out:
	sb_release(&line);
	sb_release(&msg);
	sb_release(&esc);
}

void runlog_printf(struct runlog *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(l, RUNLOG_INFO, fmt, ap);
	va_end(ap);
}

void runlog_log(struct runlog *l, enum runlog_level level, const char *fmt,
		...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(l, level, fmt, ap);
	va_end(ap);
}

void runlog_close(struct runlog *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}
