/*
 * control: requests to whichever runner process owns a batch (holds its
 * lock), as files in state/control/, the file system being the only
 * interface between runner processes.
 *
 *   requester:  control_send(h, batch, json, timeout_ms, &reply)
 *               writes state/control/<batch>.<tag>.req atomically and waits
 *               for <batch>.<tag>.ack; returns 0 with the owner's reply,
 *               or -1 with errno ETIMEDOUT when nobody answered.
 *   owner:      control_poll(h, owns, handle, arg) on an inotify event of
 *               that folder: every request for a batch owns() says is ours
 *               is handed to handle(), whose reply is written to the .ack
 *               (atomically) before the .req is removed.
 *
 * Requests are small JSON objects {"op": "cancel"|"retry-failed", ...}; the
 * handler journals what it does before it replies, so an acknowledged
 * request survives a crash of its owner.
 */
#ifndef RUNNER_CONTROL_H
#define RUNNER_CONTROL_H

#include "home.h"
#include "util.h"

#include <stdbool.h>

int control_send(struct home *h, const char *batch, const char *json,
		 int timeout_ms, struct sb *reply);

typedef bool (*control_owns_fn)(void *arg, const char *batch);
typedef void (*control_fn)(void *arg, const char *batch, const char *json,
			   struct sb *reply);
int control_poll(struct home *h, control_owns_fn owns, control_fn fn,
		 void *arg);
/*
 * Remove what nobody will read: requests and acks older than
 * CONTROL_STALE_S, and temp files of ours as old.  A requester waits
 * seconds for its ack and withdraws its request when none comes, so an
 * entry that old is a dead requester's: an ack nobody reads, or a request
 * that must not be carried out hours late by whichever runner next holds
 * the batch.  Other names are left alone.  Returns how many were removed.
 */
#define CONTROL_STALE_S 3600
int control_sweep(struct home *h, int64_t older_than_s);
/* Whether control_poll() acts on an entry of this name (BATCH.TAG.req, not
 * a dot-file): a watcher of state/control needs no poll for another. */
bool control_request_name(const char *name);

#endif
