/*
 * requests: what users ask of a batch this engine holds, from the command
 * line in this process or through state/control from another (control.h):
 * cancel, retry-failed, pause and resume, each journaled and answered with
 * a JSON reply.
 */
#ifndef RUNNER_REQUESTS_H
#define RUNNER_REQUESTS_H

#include "engine_int.h"

bool requests_owns(void *arg, const char *id);
void requests_control_cb(void *arg, const char *id, const char *json,
			 struct sb *reply);;

#endif
