/*
 * runlog: logs/runner.log, the daemon's own log: one line per event with
 * its time (claims, batches taken and finished, signals, reloads, errors).
 *
 *   struct runlog *l = runlog_open(logs_fd);   NULL: printed, carry on
 *   runlog_printf(l, "claimed %s", id);        l may be NULL: no-op
 *   runlog_reopen(l);                          after SIGHUP (logrotate)
 *   runlog_close(l);
 *
 * It cannot grow without bound: past RUNLOG_MAX bytes the file is renamed
 * to runner.log.1 (replacing the previous one) and a new one is started.
 * Lines are written whole with one write(2) on an O_APPEND descriptor, so
 * a concurrent reader never sees half a line.
 */
#ifndef RUNNER_RUNLOG_H
#define RUNNER_RUNLOG_H

#define RUNLOG_MAX (10u << 20)

struct runlog;

struct runlog *runlog_open(int logs_fd);
void runlog_printf(struct runlog *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void runlog_reopen(struct runlog *l);
void runlog_close(struct runlog *l);

#endif
