/*
 * classify: an attempt's outcome to one error category and a message
 * (SPEC 6.2), and the result JSON a child may leave (read with cJSON,
 * bounded: at most RESULT_MAX_BYTES and cJSON's nesting limit).
 *
 *   struct result res;
 *   result_parse(buf, len, &res);            absent/invalid: res.present = 0
 *   struct verdict v;
 *   classify(&(struct outcome_in){ ... }, &v);
 *
 * Precedence, as the SPEC lists it: the runner's own timeout (and its
 * cpu_limit: SIGXCPU, or the kernel's SIGKILL at the hard limit once the
 * attempt used that much CPU, is "timeout", not a memory error); the result
 * JSON's error.category; memory exhaustion (SIGKILL the runner did not
 * send, exit 137, or out-of-memory words in the last stderr lines); exit
 * codes 65/66, 64, 70 and crash signals; keywords in the last stderr
 * lines; unknown.  A failed exec of the agent is engine_error ("cannot
 * execute PATH: reason"), since no exit code of the agent exists.
 * v.message is never empty for a failed attempt.
 */
#ifndef RUNNER_CLASSIFY_H
#define RUNNER_CLASSIFY_H

#include "category.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESULT_MAX_BYTES (1u << 20)
#define MESSAGE_MAX 1024

struct result {
	bool present;
	int64_t matches;	/* -1: none */
	int32_t progress;	/* permille, -1: none */
	int category;		/* CAT_NONE: absent or not one of the six */
	int retryable;		/* -1 unset, 0, 1 */
	int64_t retry_after_ms;	/* -1 unset */
	char type[128];
	char source[128];
	char message[MESSAGE_MAX];
};

int result_parse(const char *buf, size_t len, struct result *r);

struct outcome_in {
	int wait_status;	/* from wait4 */
	bool timed_out;		/* the runner killed it for its timeout */
	bool runner_killed;	/* ... or for a cancel */
	int64_t timeout_ms;
	int64_t cpu_limit_ms;	/* the agent's cpu_limit, 0: none */
	int64_t cpu_used_ms;	/* user + system time of the attempt */
	int exec_errno;		/* the exec itself failed */
	const char *exec_path;
	const struct result *res;
	const char *stderr_tail;/* the last bytes of stderr, may be NULL */
};

struct verdict {
	bool success;
	int category;
	int exit_code;		/* -1: none (killed by a signal) */
	int signal;		/* 0: none */
	char message[MESSAGE_MAX];
};

void classify(const struct outcome_in *in, struct verdict *v);

#endif
