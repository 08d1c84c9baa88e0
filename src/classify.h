/*
 * classify: an attempt's outcome to one error category and a message
 * (SPEC 6.2), and the result JSON a child may leave (read with cJSON,
 * bounded: at most RESULT_MAX_BYTES and cJSON's nesting limit).
 *
 *   struct result res;
 *   result_load(dirfd, "SYM.1.json", &res, NULL);
 *   struct verdict v;
 *   classify(&(struct outcome_in){ ..., .res = &res, .rules = rs }, &v);
 *
 * Precedence, as the SPEC lists it: the runner's own timeout (and its
 * cpu_limit: SIGXCPU, or the kernel's SIGKILL at the hard limit once the
 * attempt used that much CPU, is "timeout", not a memory error); the result
 * JSON's error.category; memory exhaustion (SIGKILL the runner did not
 * send, exit 137, or out-of-memory words in the last stderr lines); exit
 * codes 65/66, 64, 70 and crash signals; stderr patterns in the last
 * stderr lines; unknown.  A failed exec of the agent is engine_error
 * ("cannot execute PATH: reason"), since no exit code of the agent exists.
 * v.message is never empty for a failed attempt.
 *
 * Stderr patterns: the last (up to five) non-empty stderr lines are tried
 * from the last line up; on each line the rules' own patterns in order,
 * then (rules->builtin) the built-in set; the first pattern found decides.
 * A pattern is a substring matched without regard to ASCII case, in which
 * '*' stands for any run of characters.  The built-in set holds the SPEC's
 * keywords after more specific ones: Python exception names, network, rate
 * limit and "delisted" vendor wording (see classify.c and runner(1)).
 * rules NULL: the built-in set alone.
 *
 * A result file that exists but cannot be used (unreadable, too large, not
 * JSON, truncated, not an object) leaves res.present 0 and says why in
 * res.unreadable; classify() turns that into v.warning, unless the runner
 * killed the child (a timeout or a cancel stops it mid-write).  The
 * attempt's outcome does not change: the exit status decides success.
 */
#ifndef RUNNER_CLASSIFY_H
#define RUNNER_CLASSIFY_H

#include "category.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESULT_MAX_BYTES (1u << 20)
#define MESSAGE_MAX 1024
#define WARNING_MAX 256

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
	char unreadable[128];	/* why an existing file was not used, or "" */
};

/* -1 (res.present 0) when buf is not a JSON object; unreadable says why
 * unless buf is NULL (which only resets r). */
int result_parse(const char *buf, size_t len, struct result *r);
/* The document itself, compact (no white space), when it fits in max
 * bytes: text (malloc'd, the caller frees) or NULL; full its size
 * compact (0: no document). */
struct result_doc {
	size_t max;
	char *text;
	size_t full;
};
/* The result file path under dirfd (O_NOFOLLOW, a regular file of at most
 * RESULT_MAX_BYTES): absent is no result and no complaint.  doc may be
 * NULL. */
void result_load(int dirfd, const char *path, struct result *r,
		 struct result_doc *doc);

/* Stderr patterns to categories; see the top of this file. */
#define CLASSIFY_PATTERN_MAX 200	/* bytes of one pattern */
#define CLASSIFY_RULES_MAX 256		/* patterns of one configuration section */
struct classify_rule {
	char *pattern;
	int category;
};
struct classify_rules {
	struct classify_rule *v;	/* owned, tried in order */
	size_t n, cap;
	bool builtin;			/* the built-in set after v */
};
#define CLASSIFY_RULES_INIT { NULL, 0, 0, true }
/* 0, or -1 with why (WHY_BUF) when s cannot be a pattern. */
int classify_pattern_check(const char *s, char *why);
void classify_rules_add(struct classify_rules *rs, const char *pattern,
			int category);
void classify_rules_release(struct classify_rules *rs);
/* The category the rules give one line of stderr; CAT_NONE: no pattern. */
int classify_line(const struct classify_rules *rs, const char *line,
		  size_t len);

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
	const struct classify_rules *rules;	/* NULL: built-in patterns */
};

struct verdict {
	bool success;
	int category;
	int exit_code;		/* -1: none (killed by a signal) */
	int signal;		/* 0: none */
	char message[MESSAGE_MAX];
	char warning[WARNING_MAX];	/* "" when none */
};

void classify(const struct outcome_in *in, struct verdict *v);

#endif
