/*
 * sdnotify: tell the service manager how the daemon is doing, by the
 * sd_notify(3) datagram protocol (no libsystemd): one datagram of
 * newline-separated "KEY=VALUE" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a leading '@' is the abstract namespace).
 *
 *   sdnotify("READY=1\nSTATUS=...");   after start-up, before serving
 *   sdnotify("STOPPING=1");            when a shutdown begins
 *
 * Without $NOTIFY_SOCKET (not started by systemd with Type=notify) it
 * does nothing and returns 1; 0 when sent; -1 with errno otherwise (the
 * caller says so once and carries on: a lost status line must not stop
 * the daemon).  The socket is opened and closed on each call, close-on-
 * exec, so no child inherits it.
 */
#ifndef RUNNER_SDNOTIFY_H
#define RUNNER_SDNOTIFY_H

int sdnotify(const char *state);

#endif
