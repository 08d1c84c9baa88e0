/*
 * daemon: the one-daemon-per-home lock and what it records.
 *
 *   int fd = daemon_lock(h);      state/daemon.lock held (an OFD lock) for the
 *                                 daemon's life, state/daemon.pid written;
 *                                 -1 with errno EWOULDBLOCK: one runs
 *   daemon_unlock(h, fd);         on a clean exit
 *   daemon_running(h, &info)      1 when a daemon holds the lock (its pid
 *                                 and start time from state/daemon.pid)
 *
 * The lock, not the pid file, is the truth: a daemon killed with -9 leaves
 * its pid file, but its lock goes with it.
 */
#ifndef RUNNER_DAEMON_H
#define RUNNER_DAEMON_H

#include "home.h"

#include <stdint.h>
#include <sys/types.h>

struct daemon_info {
	pid_t pid;
	int64_t started_ms;
};

int daemon_lock(struct home *h);
void daemon_unlock(struct home *h, int fd);
int daemon_running(struct home *h, struct daemon_info *info);

#endif
