/*
 * runlog: logs/runner.log, the daemon's own log: one line per event with
 * its time (claims, batches taken and finished, signals, reloads, errors).
 *
 *   struct runlog *l = runlog_open(logs_fd);   no file: printed, carry on
 *   runlog_printf(l, "claimed %s", id);        l may be NULL: no-op
 *   runlog_reopen(l);                          after SIGHUP (logrotate)
 *   runlog_close(l);
 *
 * It cannot grow without bound: past RUNLOG_MAX bytes the file is renamed
 * to runner.log.1 (replacing the previous one) and a new one is started.
 * Lines are written whole with one write(2) on an O_APPEND descriptor, so
 * a concurrent reader never sees half a line.
 *
 * Each event has a level (runlog_printf: info; runlog_log: any).  The
 * daemon also copies every event to stderr (runlog_stderr), where a
 * service manager collects it: when stderr is the journal's stream
 * ($JOURNAL_STREAM names its device and inode) each line starts with the
 * sd-daemon(3) priority, "<6>" info, "<4>" warning, "<3>" error, which
 * journald strips and keeps as the entry's priority; on anything else the
 * line is "runner: [warning: |error: ]EVENT".  The log file's line is
 * "TIME [PID] [warning: |error: ]EVENT".
 */
#ifndef RUNNER_RUNLOG_H
#define RUNNER_RUNLOG_H

#define RUNLOG_MAX (10u << 20)

#include <stdbool.h>

struct runlog;

enum runlog_level { RUNLOG_ERR = 3, RUNLOG_WARNING = 4, RUNLOG_INFO = 6 };

struct runlog *runlog_open(int logs_fd);
/* Copy every event to stderr from now on. */
void runlog_stderr(struct runlog *l);
/* Events go to stderr too (a caller need not print them again). */
bool runlog_on_stderr(const struct runlog *l);
void runlog_printf(struct runlog *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void runlog_log(struct runlog *l, enum runlog_level level, const char *fmt,
		...) __attribute__((format(printf, 3, 4)));
void runlog_reopen(struct runlog *l);
void runlog_close(struct runlog *l);

#endif
